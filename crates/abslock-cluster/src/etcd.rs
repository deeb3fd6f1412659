//! The etcd backend, through etcd's JSON gateway (`/v3/...`, etcd 3.4+).
//!
//! The lock is etcd's own recipe (the one `etcdctl lock` and the Go
//! `concurrency.Mutex` use): each contender puts the key
//! `abslock/NAME/<lease id in hex>` attached to its lease; the key with the
//! lowest create revision holds the lock. A try-acquire puts its key and
//! looks; a blocking acquire puts its key and asks again (every 25 ms at
//! first, then every 250 ms) until the keys before ours are gone, in short
//! requests that each may take [`request_timeout`] per endpoint, so that a
//! hung endpoint is skipped even mid-wait. A waiter whose lease is lost
//! meanwhile (an election or partition longer than its renewals allow)
//! queues again under a new lease: it loses its place, not its wait. The
//! holder keeps its lease
//! alive every TTL/3 (every 250 ms after a failure), and keeps a local
//! deadline ([`crate::deadline`]) that only a renewal etcd confirmed moves:
//! the command is stopped before etcd could expire the lease. The fencing
//! token is the key's create revision.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use serde_json::{json, Value};

use crate::deadline::{Bounds, Deadline};
use crate::tls::TlsFiles;
use crate::{Error, Holder, Identity, LostFlag, Result};

const DEFAULT_TTL: u64 = 10;
/// How long one endpoint may take to answer a request before the next is
/// tried: a hung endpoint (it accepts TCP and never answers) costs about
/// this much, once: later requests start at the endpoint that answered
/// last.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(2);

/// The time one endpoint gets: [`REQUEST_TIMEOUT`], or a quarter of a
/// short TTL (at least 250 ms), so that a renewal that meets a hung
/// endpoint still reaches the next one before the local deadline.
fn request_timeout(ttl: u64) -> Duration {
    Duration::from_millis(ttl * 250).clamp(Duration::from_millis(250), REQUEST_TIMEOUT)
}
/// How soon a failed renewal is tried again.
const RETRY: Duration = Duration::from_millis(250);

#[derive(Debug)]
pub(crate) struct EtcdLock {
    client: Client,
    prefix: String,
    ttl: u64,
}

/// How one place in the queue ended.
enum Queued {
    /// Our key came first: the lock is ours.
    Held(EtcdHold),
    /// Our lease could not be kept alive while we waited.
    PlaceLost,
}

/// A held etcd lock: the lease and its keep-alive thread.
#[derive(Debug)]
pub(crate) struct EtcdHold {
    client: Client,
    lease: i64,
    ttl: u64,
    pub(crate) token: u64,
    pub(crate) lost: LostFlag,
    stop: Arc<AtomicBool>,
    keeper: Option<JoinHandle<()>>,
}

#[derive(Debug, Clone)]
struct Client {
    /// `http` or `https`.
    scheme: &'static str,
    endpoints: Vec<String>,
    /// The endpoint that answered last, tried first.
    preferred: Arc<AtomicUsize>,
    agent: ureq::Agent,
    auth: Option<Arc<Auth>>,
    /// Per endpoint and request ([`request_timeout`]).
    timeout: Duration,
}

/// etcd's authentication: a user and password exchanged for a token
/// (`/v3/auth/authenticate`), which every request carries and which is
/// fetched again when etcd says it has expired. Shared with the lease's
/// keep-alive thread, so that a renewal never waits on a stale token.
struct Auth {
    user: String,
    password: String,
    token: Mutex<Option<String>>,
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Auth")
            .field("user", &self.user)
            .field("password", &crate::secret::HIDDEN)
            .finish_non_exhaustive()
    }
}

impl Client {
    /// POSTs `body` to `path` on the first endpoint that answers, with a
    /// fresh token if etcd says ours has expired.
    fn call(&self, path: &str, body: &Value) -> Result<Value> {
        self.call_timed(path, body).map(|(answer, _)| answer)
    }

    /// [`Client::call`], also returning when the request that was answered
    /// was sent: etcd acted on it after that (a renewal's lease lives from
    /// then on), however long the endpoints before it took to fail.
    fn call_timed(&self, path: &str, body: &Value) -> Result<(Value, Instant)> {
        match self.call_once(path, body) {
            Err(Error::Engine(why)) if why.contains("invalid auth token") => {
                if let Some(auth) = &self.auth {
                    *auth.token.lock().unwrap_or_else(PoisonError::into_inner) = None;
                }
                self.call_once(path, body)
            }
            result => result,
        }
    }

    fn call_once(&self, path: &str, body: &Value) -> Result<(Value, Instant)> {
        let token = match &self.auth {
            Some(auth) => Some(self.token(auth)?),
            None => None,
        };
        self.post(path, body, token.as_deref())
    }

    /// The current token, authenticating first if there is none.
    fn token(&self, auth: &Auth) -> Result<String> {
        let mut token = auth.token.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(t) = token.as_ref() {
            return Ok(t.clone());
        }
        let (r, _) = self.post(
            "/v3/auth/authenticate",
            &json!({ "name": auth.user, "password": auth.password }),
            None,
        )?;
        let fresh = r["token"]
            .as_str()
            .filter(|t| !t.is_empty())
            .ok_or_else(|| {
                Error::Engine(
                    "etcd authentication: no token in the answer (is auth enabled?)".into(),
                )
            })?
            .to_string();
        *token = Some(fresh.clone());
        Ok(fresh)
    }

    fn post(&self, path: &str, body: &Value, token: Option<&str>) -> Result<(Value, Instant)> {
        let mut failures = Vec::new();
        let first = self.preferred.load(Ordering::Relaxed);
        let n = self.endpoints.len();
        for index in (first..first + n).map(|i| i % n) {
            let endpoint = &self.endpoints[index];
            let sent = Instant::now();
            let mut request = self
                .agent
                .post(&format!("{}://{endpoint}{path}", self.scheme))
                .timeout(self.timeout);
            if let Some(token) = token {
                request = request.set("Authorization", token);
            }
            match request.send_string(&body.to_string()) {
                Ok(response) => {
                    let text = response
                        .into_string()
                        .map_err(|e| Error::Engine(format!("etcd {endpoint}{path}: {e}")))?;
                    let value: Value = serde_json::from_str(&text).map_err(|e| {
                        Error::Engine(format!("etcd {endpoint}{path}: bad JSON: {e}"))
                    })?;
                    // The gateway answers some failures (auth among them)
                    // with 200 and an error object.
                    if let Some(why) = reason(&value) {
                        return Err(refusal(endpoint, path, None, why));
                    }
                    self.preferred.store(index, Ordering::Relaxed);
                    return Ok((value, sent));
                }
                Err(ureq::Error::Status(code, response)) => {
                    // etcd ends an error body with gRPC trailers, which
                    // ureq reports as a read error: keep what was read.
                    let mut raw = Vec::new();
                    let _ = std::io::Read::read_to_end(
                        &mut std::io::Read::take(response.into_reader(), 64 * 1024),
                        &mut raw,
                    );
                    let text = String::from_utf8_lossy(&raw);
                    let body = serde_json::from_str::<Value>(&text).ok();
                    let why = body
                        .as_ref()
                        .and_then(reason)
                        .unwrap_or_else(|| text.trim());
                    self.preferred.store(index, Ordering::Relaxed);
                    return Err(refusal(endpoint, path, Some(code), why));
                }
                Err(ureq::Error::Transport(t)) => failures.push(format!("{endpoint}: {t}")),
            }
        }
        Err(Error::Engine(crate::tls::hint(format!(
            "no etcd endpoint answered: {}",
            failures.join("; ")
        ))))
    }

    /// A new lease, and when the request that granted it was sent.
    fn grant(&self, ttl: u64) -> Result<(i64, Instant)> {
        let (r, sent) = self.call_timed("/v3/lease/grant", &json!({ "TTL": ttl.to_string() }))?;
        let id = int(&r["ID"])
            .ok_or_else(|| Error::Engine(format!("etcd lease grant: no ID in {r}")))?;
        Ok((id, sent))
    }

    /// The lease's remaining TTL in seconds after a renewal (0 if expired),
    /// and when the renewal that etcd answered was sent.
    fn keep_alive(&self, lease: i64) -> Result<(i64, Instant)> {
        let (r, sent) =
            self.call_timed("/v3/lease/keepalive", &json!({ "ID": lease.to_string() }))?;
        Ok((int(&r["result"]["TTL"]).unwrap_or(0), sent))
    }

    fn time_to_live(&self, lease: i64) -> Option<Duration> {
        let r = self
            .call("/v3/lease/timetolive", &json!({ "ID": lease.to_string() }))
            .ok()?;
        let secs = int(&r["TTL"])?;
        u64::try_from(secs).ok().map(Duration::from_secs)
    }

    fn revoke(&self, lease: i64) -> Result<()> {
        self.call("/v3/lease/revoke", &json!({ "ID": lease.to_string() }))
            .map(drop)
    }

    fn put(&self, key: &str, value: &str, lease: i64) -> Result<()> {
        self.call(
            "/v3/kv/put",
            &json!({ "key": B64.encode(key), "value": B64.encode(value), "lease": lease.to_string() }),
        )
        .map(drop)
    }

    /// The first key under `prefix` by create revision: (key, kv).
    fn first(&self, prefix: &str) -> Result<Option<(String, Value)>> {
        let r = self.call(
            "/v3/kv/range",
            &json!({
                "key": B64.encode(prefix),
                "range_end": B64.encode(prefix_end(prefix)),
                "sort_order": "ASCEND",
                "sort_target": "CREATE",
                "limit": "1",
            }),
        )?;
        Ok(r["kvs"].get(0).map(|kv| (text(&kv["key"]), kv.clone())))
    }
}

/// The end of a prefix range: the prefix with its last byte incremented.
fn prefix_end(prefix: &str) -> Vec<u8> {
    let mut end = prefix.as_bytes().to_vec();
    if let Some(last) = end.last_mut() {
        *last += 1;
    }
    end
}

/// An int64 the gateway may render as a string or a number.
/// A key's create revision: the fencing token of the hold it stands for.
fn token_of(kv: &Value) -> u64 {
    int(&kv["create_revision"])
        .and_then(|v| u64::try_from(v).ok())
        .unwrap_or(0)
}

fn int(v: &Value) -> Option<i64> {
    v.as_str()
        .and_then(|s| s.parse().ok())
        .or_else(|| v.as_i64())
}

/// A base64 field as (lossy) text.
fn text(v: &Value) -> String {
    let bytes = v
        .as_str()
        .and_then(|s| B64.decode(s).ok())
        .unwrap_or_default();
    String::from_utf8_lossy(&bytes).into_owned()
}

/// The reason in an etcd error body: `error` or `message` (the same text
/// from the gateway), or a stream's `error.message`.
fn reason(body: &Value) -> Option<&str> {
    body["error"]
        .as_str()
        .or(body["message"].as_str())
        .or(body["error"]["message"].as_str())
}

/// `name` as one level of the key: `/` and `%` percent-encoded, so that
/// the keys of `job/x` are not under the prefix of `job`.
fn key_name(name: &str) -> String {
    name.replace('%', "%25").replace('/', "%2F")
}

/// etcd's refusal, as one line with its reason and what to do about it.
fn refusal(endpoint: &str, path: &str, code: Option<u16>, why: &str) -> Error {
    let why = why.trim();
    let code = code.map(|c| format!(" (HTTP {c})")).unwrap_or_default();
    let hint = if why.contains("user name is empty") {
        "; etcd wants a user: etcd://USER@HOST:PORT with ETCDCTL_PASSWORD, or ETCDCTL_USER=USER:PASSWORD"
    } else if why.contains("CommonName of client") {
        "; etcd's JSON gateway, which abslock speaks, cannot log in by a certificate's CommonName: with authentication on, use a client certificate without a CommonName and a user and password"
    } else {
        ""
    };
    Error::Engine(format!("etcd {endpoint}{path}: {why}{code}{hint}"))
}

/// The endpoints `etcdctl` would use: `ETCDCTL_ENDPOINTS`, and whether
/// they are `https://` (all or none).
fn endpoints_from_env() -> Result<(String, bool)> {
    let Ok(list) = std::env::var("ETCDCTL_ENDPOINTS") else {
        return Ok((String::new(), false));
    };
    let (mut hosts, mut schemes) = (Vec::new(), Vec::new());
    for endpoint in list.split(',').map(str::trim).filter(|e| !e.is_empty()) {
        let (https, host) = match endpoint.split_once("://") {
            Some(("https", host)) => (true, host),
            Some(("http", host)) => (false, host),
            Some(_) => {
                return Err(Error::InvalidUrl(format!(
                    "ETCDCTL_ENDPOINTS: {}: expected http:// or https://",
                    crate::secret::redact(endpoint)
                )))
            }
            None => (false, endpoint),
        };
        hosts.push(host);
        schemes.push(https);
    }
    if schemes.windows(2).any(|w| w[0] != w[1]) {
        return Err(Error::InvalidUrl(
            "ETCDCTL_ENDPOINTS mixes http:// and https://".into(),
        ));
    }
    Ok((hosts.join(","), schemes.first().copied().unwrap_or(false)))
}

/// User and password: `USER[:PASSWORD]@` in the URL, else etcdctl's
/// `ETCDCTL_USER` (`USER` or `USER:PASSWORD`); the password from
/// `ETCDCTL_PASSWORD` when neither carries one.
fn credentials(userinfo: Option<&str>) -> Option<Auth> {
    let env_user = std::env::var("ETCDCTL_USER").ok().filter(|u| !u.is_empty());
    let given = userinfo.map(str::to_string).or(env_user)?;
    let (user, password) = match given.split_once(':') {
        Some((user, password)) => (user.to_string(), password.to_string()),
        None => (
            given.clone(),
            std::env::var("ETCDCTL_PASSWORD").unwrap_or_default(),
        ),
    };
    Some(Auth {
        user,
        password,
        token: Mutex::new(None),
    })
}

impl EtcdLock {
    /// `rest` is the URL after `etcd://` (`tls` false) or `etcds://`.
    pub(crate) fn new(rest: &str, name: &str, tls: bool) -> Result<EtcdLock> {
        let (authority, query) = rest.split_once('?').unwrap_or((rest, ""));
        // The userinfo ends at the last '@' (a password may hold one).
        let (userinfo, hosts) = match authority.rsplit_once('@') {
            Some((userinfo, hosts)) => (Some(userinfo), hosts.to_string()),
            None => (None, authority.to_string()),
        };
        let (hosts, tls) = if hosts.trim().is_empty() {
            let (hosts, https) = endpoints_from_env()?;
            (hosts, tls || https)
        } else {
            (hosts, tls)
        };
        // Endpoints may carry etcdctl's schemes: https:// (TLS) or http://,
        // the same for all.
        let mut endpoints = Vec::new();
        let mut schemes = Vec::new();
        for h in hosts.split(',').map(|h| h.trim().trim_end_matches('/')) {
            let host = match h.split_once("://") {
                Some(("https", host)) => {
                    schemes.push(true);
                    host
                }
                Some(("http", host)) => {
                    schemes.push(false);
                    host
                }
                Some((other, _)) => {
                    return Err(Error::InvalidUrl(format!(
                        "endpoint scheme {other}://: expected http:// or https://"
                    )))
                }
                None => h,
            };
            if !host.is_empty() {
                endpoints.push(host.to_string());
            }
        }
        let https = schemes.contains(&true);
        if (https && schemes.contains(&false)) || (tls && schemes.contains(&false)) {
            return Err(Error::InvalidUrl(
                "endpoints must be all https:// (TLS) or all http://".into(),
            ));
        }
        let tls = tls || https;
        // HOST:PORT, with an IPv6 HOST in brackets ([::1]:2379).
        let valid = |e: &String| {
            e.rsplit_once(':').is_some_and(|(host, port)| {
                let host_ok = match host.strip_prefix('[') {
                    Some(v6) => v6
                        .strip_suffix(']')
                        .is_some_and(|ip| ip.parse::<std::net::Ipv6Addr>().is_ok()),
                    None => !host.is_empty() && !host.contains([':', '[', ']', '/', ' ']),
                };
                host_ok && port.parse::<u16>().is_ok_and(|p| p > 0)
            })
        };
        if endpoints.is_empty() || !endpoints.iter().all(valid) {
            return Err(Error::InvalidUrl(format!(
                "{}: expected etcd://[USER@]HOST:PORT[,HOST:PORT...] with ports 1-65535 (or ETCDCTL_ENDPOINTS)",
                crate::secret::redact(&format!("etcd://{rest}"))
            )));
        }
        let mut ttl = DEFAULT_TTL;
        let env_path = |key: &str| {
            std::env::var_os(key)
                .filter(|v| !v.is_empty())
                .map(PathBuf::from)
        };
        let mut files = TlsFiles {
            cacert: env_path("ETCDCTL_CACERT"),
            cert: env_path("ETCDCTL_CERT"),
            key: env_path("ETCDCTL_KEY"),
        };
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            match pair.split_once('=') {
                Some(("ttl", v)) => {
                    ttl = v.parse().ok().filter(|&t| t >= 1).ok_or_else(|| {
                        Error::InvalidUrl(format!("ttl={v}: expected whole seconds >= 1"))
                    })?;
                }
                Some(("cacert", v)) if tls => files.cacert = Some(PathBuf::from(v)),
                Some(("cert", v)) if tls => files.cert = Some(PathBuf::from(v)),
                Some(("key", v)) if tls => files.key = Some(PathBuf::from(v)),
                Some(("cacert" | "cert" | "key", _)) => {
                    return Err(Error::InvalidUrl(format!(
                        "'{pair}' is a TLS option: write etcds://HOST:PORT for TLS"
                    )))
                }
                _ => {
                    return Err(Error::InvalidUrl(format!(
                    "unknown etcd option '{}' (known: ttl, and for etcds://: cacert, cert, key)",
                    crate::secret::redact(pair)
                )))
                }
            }
        }
        let mut agent = ureq::AgentBuilder::new().timeout_connect(Duration::from_secs(2));
        if tls {
            agent = agent.tls_config(files.client_config()?);
        }
        let agent = agent.build();
        Ok(EtcdLock {
            client: Client {
                scheme: if tls { "https" } else { "http" },
                endpoints,
                preferred: Arc::new(AtomicUsize::new(0)),
                agent,
                auth: credentials(userinfo).map(Arc::new),
                timeout: request_timeout(ttl),
            },
            prefix: format!("abslock/{}/", key_name(name)),
            ttl,
        })
    }

    fn key(&self, lease: i64) -> String {
        format!("{}{lease:x}", self.prefix)
    }

    fn value(&self, id: &Identity) -> String {
        json!({ "host": id.host, "pid": id.pid, "ttl": self.ttl }).to_string()
    }

    pub(crate) fn try_acquire(&self, id: &Identity) -> Result<EtcdHold> {
        let (lease, granted) = self.client.grant(self.ttl)?;
        let key = self.key(lease);
        let attempt = (|| {
            self.client.put(&key, &self.value(id), lease)?;
            match self.client.first(&self.prefix)? {
                Some((first, kv)) if first == key => Ok(Ok(token_of(&kv))),
                Some((_, kv)) => Ok(Err(self.holder_of(&kv))),
                None => Err(Error::Engine(format!("etcd: our key {key} vanished"))),
            }
        })();
        match attempt {
            Ok(Ok(token)) => self.hold(lease, token, granted).inspect_err(|_| {
                let _ = self.client.revoke(lease);
            }),
            Ok(Err(holder)) => {
                // Revoking the lease deletes our key with it.
                let _ = self.client.revoke(lease);
                Err(Error::Held(holder))
            }
            Err(e) => {
                let _ = self.client.revoke(lease);
                Err(e)
            }
        }
    }

    /// Queues as `etcdctl lock` does (our key, under our lease, waits for
    /// every key created before it to go), but asks in short requests
    /// rather than one long-lived `/v3/lock/lock` call: each request has the
    /// per-endpoint timeout, so an endpoint that hangs while we wait costs
    /// [`REQUEST_TIMEOUT`] before the next one is asked, and the lease is
    /// renewed meanwhile.
    pub(crate) fn acquire(&self, id: &Identity, timeout: Option<Duration>) -> Result<EtcdHold> {
        let deadline = timeout.and_then(|t| Instant::now().checked_add(t));
        loop {
            match self.queue(id, deadline)? {
                Queued::Held(hold) => return Ok(hold),
                // Our lease could not be kept alive while we waited (an
                // election, a partition): what is lost is our place in the
                // queue, not a lock we never had. Queue again, with a new
                // lease, while time is left.
                Queued::PlaceLost => {
                    if deadline.is_some_and(|d| Instant::now() >= d) {
                        return Err(Error::Timeout(self.holder().ok().flatten()));
                    }
                }
            }
        }
    }

    /// One place in the queue: our key under a new lease, until it is the
    /// first ([`Queued::Held`]) or the lease is lost ([`Queued::PlaceLost`]).
    fn queue(&self, id: &Identity, deadline: Option<Instant>) -> Result<Queued> {
        let (lease, granted) = self.client.grant(self.ttl)?;
        // The lease must live while we queue, however long that is.
        let (stop, lost, keeper) = match keep_alive(self.client.clone(), lease, self.ttl, granted) {
            Ok(kept) => kept,
            Err(e) => {
                let _ = self.client.revoke(lease);
                return Err(e);
            }
        };
        // Leaves the queue: the keep-alive stops and the lease goes (if
        // etcd can be reached; otherwise it expires within a TTL).
        let leave = || {
            stop.store(true, Ordering::Release);
            let _ = self.client.revoke(lease);
        };
        let key = self.key(lease);
        if let Err(e) = self.client.put(&key, &self.value(id), lease) {
            leave();
            return Err(e);
        }
        let mut pause = Duration::from_millis(25);
        let mut failing_since = None;
        loop {
            if lost.is_set() {
                leave();
                return Ok(Queued::PlaceLost);
            }
            match self.client.first(&self.prefix) {
                Ok(Some((first, kv))) if first == key => {
                    return Ok(Queued::Held(EtcdHold {
                        client: self.client.clone(),
                        lease,
                        ttl: self.ttl,
                        token: token_of(&kv),
                        lost,
                        stop,
                        keeper: Some(keeper),
                    }));
                }
                Ok(Some(_)) => failing_since = None,
                // Our key is gone: its lease expired while we waited.
                Ok(None) => {
                    leave();
                    return Ok(Queued::PlaceLost);
                }
                // No endpoint answered this time: go on asking while the
                // lease may live; the keep-alive raises `lost` after a TTL.
                Err(e) => {
                    let since = *failing_since.get_or_insert_with(Instant::now);
                    if since.elapsed() >= Duration::from_secs(self.ttl) {
                        leave();
                        return Err(e);
                    }
                }
            }
            let now = Instant::now();
            if deadline.is_some_and(|d| now >= d) {
                leave();
                return Err(Error::Timeout(self.holder().ok().flatten()));
            }
            let left = deadline.map_or(pause, |d| d.saturating_duration_since(now));
            std::thread::sleep(pause.min(left));
            pause = (pause * 2).min(Duration::from_millis(250));
        }
    }

    pub(crate) fn holder(&self) -> Result<Option<Holder>> {
        Ok(self
            .client
            .first(&self.prefix)?
            .map(|(_, kv)| self.holder_of(&kv)))
    }

    fn holder_of(&self, kv: &Value) -> Holder {
        let value: Value = serde_json::from_str(&text(&kv["value"])).unwrap_or(Value::Null);
        let host = value["host"].as_str();
        let pid = value["pid"].as_u64().and_then(|p| u32::try_from(p).ok());
        let lease = int(&kv["lease"]);
        let client = match (host, pid) {
            (Some(_), Some(_)) => None,
            _ => Some(format!(
                "etcd key {}, lease {:x}",
                text(&kv["key"]),
                lease.unwrap_or(0)
            )),
        };
        Holder {
            host: host.unwrap_or("?").to_string(),
            pid: pid.unwrap_or(0),
            token: int(&kv["create_revision"]).and_then(|v| u64::try_from(v).ok()),
            lease_left: lease.and_then(|l| self.client.time_to_live(l)),
            client,
        }
    }

    fn hold(&self, lease: i64, token: u64, granted: Instant) -> Result<EtcdHold> {
        let (stop, lost, keeper) = keep_alive(self.client.clone(), lease, self.ttl, granted)?;
        Ok(EtcdHold {
            client: self.client.clone(),
            lease,
            ttl: self.ttl,
            token,
            lost,
            stop,
            keeper: Some(keeper),
        })
    }
}

/// The deadlines of a lease of `ttl` seconds: etcd may expire it `ttl`
/// after the last renewal it confirmed; SIGTERM a fifth of the TTL before
/// a tenth of it before that, SIGKILL at the tenth (with TTL 10: SIGTERM
/// 7 s and SIGKILL 9 s after the last confirmed renewal was sent).
fn bounds(ttl: u64) -> Bounds {
    let ttl = Duration::from_secs(ttl);
    Bounds {
        expiry: ttl,
        margin: ttl / 10,
        grace: ttl / 5,
    }
}

/// Renews `lease` every TTL/3 until `stop` (after a failed renewal, every
/// [`RETRY`]), and watches the local deadline ([`crate::deadline`]) from
/// `granted`, when the lease's grant was sent: the lost flag is raised
/// when etcd says the lease expired, or when no renewal was confirmed for
/// long enough that etcd might expire it before the command is stopped.
fn keep_alive(
    client: Client,
    lease: i64,
    ttl: u64,
    granted: Instant,
) -> Result<(Arc<AtomicBool>, LostFlag, JoinHandle<()>)> {
    let stop = Arc::new(AtomicBool::new(false));
    let lost = LostFlag::new()?;
    // Owned by the keep-alive thread: stopped when it ends.
    let deadline = Deadline::start(lost.clone(), bounds(ttl), granted)?;
    let (stop2, lost2) = (Arc::clone(&stop), lost.clone());
    let period = Duration::from_millis(ttl * 1000 / 3).max(Duration::from_millis(300));
    let keeper = abslock::internals::spawn_quiet("abslock-etcd-lease", move || {
        while !stop2.load(Ordering::Acquire) {
            let pause = match client.keep_alive(lease) {
                Ok((left, sent)) if left > 0 => {
                    deadline.confirmed(sent);
                    period
                }
                Ok(_) => {
                    lost2.set("the etcd lease expired");
                    return;
                }
                Err(_) => RETRY.min(period),
            };
            // Sleep in small steps so a release is not held up.
            let until = Instant::now() + pause;
            while Instant::now() < until && !stop2.load(Ordering::Acquire) {
                std::thread::sleep(Duration::from_millis(50));
            }
        }
    })
    .map_err(|e| Error::Engine(format!("starting the lease's keep-alive thread: {e}")))?;
    Ok((stop, lost, keeper))
}

impl EtcdHold {
    /// The time from the lost flag to SIGKILL.
    pub(crate) fn stop_within(&self) -> Duration {
        bounds(self.ttl).grace
    }

    /// Releases the lock, and fails unless etcd confirms that it was held
    /// to the end: the lease still lives (an expired lease never comes
    /// back, so a live one never lapsed, and nobody else could take the
    /// lock meanwhile). A lease that expired while abslock was paused, or
    /// while the command finished before the keep-alive noticed, is a
    /// lost lock, not a success.
    pub(crate) fn release(mut self) -> Result<()> {
        self.stop_keeper();
        let lease = self.lease;
        self.lease = 0;
        let held = match self.client.keep_alive(lease) {
            Ok((left, _)) if left > 0 => Ok(()),
            Ok(_) => Err(Error::Engine(
                "the etcd lease had expired before the release: another client may have held \
                 the lock meanwhile"
                    .into(),
            )),
            Err(e) => Err(Error::Engine(format!(
                "etcd could not confirm at the release that the lease was still alive: {e}"
            ))),
        };
        let revoked = self.client.revoke(lease);
        held.and(revoked)
    }

    fn stop_keeper(&mut self) {
        self.stop.store(true, Ordering::Release);
        if let Some(keeper) = self.keeper.take() {
            let _ = keeper.join();
        }
    }
}

impl Drop for EtcdHold {
    fn drop(&mut self) {
        self.stop_keeper();
        if self.lease != 0 {
            let _ = self.client.revoke(self.lease);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_parse_strictly() {
        let l = EtcdLock::new("127.0.0.1:2379,10.0.0.2:2379?ttl=3", "job", false).unwrap();
        assert_eq!(l.client.endpoints, vec!["127.0.0.1:2379", "10.0.0.2:2379"]);
        assert_eq!((l.ttl, l.prefix.as_str()), (3, "abslock/job/"));
        let nested = EtcdLock::new("h:1", "job/x%", false).unwrap();
        assert_eq!(nested.prefix, "abslock/job%2Fx%25/");
        for bad in [
            "",
            "host",
            "h:1?ttl=0",
            "h:1?ttl=x",
            "h:1?colour=red",
            "h:1?cacert=/x",
        ] {
            assert!(EtcdLock::new(bad, "job", false).is_err(), "{bad}");
        }
        assert_eq!(prefix_end("abslock/job/"), b"abslock/job0".to_vec());
        assert_eq!(int(&json!("42")), Some(42));
        assert_eq!(int(&json!(7)), Some(7));
    }
}
