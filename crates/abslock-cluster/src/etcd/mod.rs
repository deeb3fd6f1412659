//! The etcd backend, on etcd's gRPC API ([`client`]: the `etcd-client`
//! crate, as etcdctl speaks it), etcd 3.4 and later.
//!
//! The lock is etcd's own recipe (the one `etcdctl lock` and the Go
//! `concurrency.Mutex` use): each contender puts the key
//! `abslock/NAME/<lease id in hex>` attached to its lease; the key with the
//! lowest create revision holds the lock. One transaction puts our key and
//! reads the first one: a try-acquire needs nothing more. A waiter reads
//! the key just before its own and watches it until it is deleted, then
//! looks again: it sends nothing while it waits but its lease's renewals,
//! and is woken by the release. A watch on an endpoint that other requests
//! had to leave (a silent link) is made again on one that answers. A
//! waiter whose lease is lost meanwhile (an election or partition longer
//! than its renewals allow) queues again under a new lease: it loses its
//! place, not its wait. The holder keeps its lease alive every TTL/3
//! (every 250 ms after a failure), and keeps a local deadline
//! ([`crate::deadline`]) that only a renewal etcd confirmed moves: the
//! command is stopped before etcd could expire the lease. The fencing
//! token is the key's create revision.

mod client;

use std::os::fd::OwnedFd;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use etcd_client::{
    Compare, CompareOp, EventType, GetOptions, KeyValue, PutOptions, SortOrder, SortTarget, Txn,
    TxnOp, TxnOpResponse, WatchFilterType, WatchOptions, WatchResponse,
};
use serde_json::{json, Value};

use crate::deadline::{Bounds, Deadline};
use crate::tls::TlsFiles;
use crate::{Error, Holder, Identity, LostFlag, Result};
use client::Client;

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
/// How soon a failed renewal or look is tried again.
const RETRY: Duration = Duration::from_millis(250);
/// How often a waiter looks at its own state (lease lost, endpoint left)
/// while its watch is quiet: local, nothing is sent.
const TICK: Duration = Duration::from_millis(50);

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

/// Where our key stands in the queue.
enum Place {
    /// First: the lock is ours.
    First,
    /// Gone: our lease expired or was revoked.
    Gone,
    /// Behind this key, read at this revision.
    Behind(KeyValue, i64),
}

/// How a watch for a key's deletion ended.
enum Watched {
    /// The key was deleted, or the watch broke: look again.
    Again,
    /// The lost flag was raised.
    Lost,
    /// The deadline passed.
    TimedOut,
}

/// A held etcd lock: the lease and its keep-alive thread.
#[derive(Debug)]
pub(crate) struct EtcdHold {
    client: Client,
    /// `None` once the release has revoked it.
    lease: Option<i64>,
    ttl: u64,
    pub(crate) token: u64,
    pub(crate) lost: LostFlag,
    /// The local deadline's SIGKILL moment ([`crate::deadline`]).
    pub(crate) published: Arc<OwnedFd>,
    stop: Arc<AtomicBool>,
    keeper: Option<JoinHandle<()>>,
}

/// Every key under `prefix`, first by create revision.
fn by_creation(order: SortOrder) -> GetOptions {
    GetOptions::new()
        .with_prefix()
        .with_sort(SortTarget::Create, order)
}

/// A key's create revision: the fencing token of the hold it stands for.
fn token_of(kv: &KeyValue) -> u64 {
    u64::try_from(kv.create_revision()).unwrap_or(0)
}

/// The revision an answer was read at.
fn revision(header: Option<&etcd_client::ResponseHeader>) -> i64 {
    header.map_or(0, etcd_client::ResponseHeader::revision)
}

/// `name` as one level of the key: `/` and `%` percent-encoded, so that
/// the keys of `job/x` are not under the prefix of `job`.
fn key_name(name: &str) -> String {
    name.replace('%', "%25").replace('/', "%2F")
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
fn credentials(userinfo: Option<&str>) -> Option<(String, String)> {
    let env_user = std::env::var("ETCDCTL_USER").ok().filter(|u| !u.is_empty());
    let given = userinfo.map(str::to_string).or(env_user)?;
    Some(match given.split_once(':') {
        Some((user, password)) => (user.to_string(), password.to_string()),
        None => (
            given.clone(),
            std::env::var("ETCDCTL_PASSWORD").unwrap_or_default(),
        ),
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
        let client = Client::new(
            endpoints,
            tls.then_some(&files),
            credentials(userinfo),
            request_timeout(ttl),
        )?;
        Ok(EtcdLock {
            client,
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

    /// A new lease, and when the request that granted it was sent.
    fn grant(&self) -> Result<(i64, Instant)> {
        let ttl = i64::try_from(self.ttl).unwrap_or(i64::MAX);
        let (granted, sent) = self.client.call("lease grant", |mut c| async move {
            c.lease_grant(ttl, None).await
        })?;
        Ok((granted.id(), sent))
    }

    /// Puts our key under `lease` (unless it is there already: a retry
    /// after an answer was lost) and reads the first key, in one
    /// transaction, as `concurrency.Mutex` does: our key's create revision,
    /// and the first key.
    fn enqueue(&self, key: &str, value: &str, lease: i64) -> Result<(i64, Option<KeyValue>)> {
        let (answer, _) = self.client.call("put", |mut c| {
            let first = || {
                TxnOp::get(
                    self.prefix.as_str(),
                    Some(by_creation(SortOrder::Ascend).with_limit(1)),
                )
            };
            let txn = Txn::new()
                .when([Compare::create_revision(key, CompareOp::Equal, 0)])
                .and_then([
                    TxnOp::put(key, value, Some(PutOptions::new().with_lease(lease))),
                    first(),
                ])
                .or_else([TxnOp::get(key, None), first()]);
            async move { c.txn(txn).await }
        })?;
        let mut gets = answer.op_responses().into_iter().filter_map(|r| match r {
            TxnOpResponse::Get(get) => Some(get),
            _ => None,
        });
        let ours = if answer.succeeded() {
            Some(revision(answer.header()))
        } else {
            gets.next()
                .and_then(|get| get.kvs().first().map(KeyValue::create_revision))
        };
        let first = gets.next().and_then(|get| get.kvs().first().cloned());
        match ours {
            Some(rev) if rev > 0 => Ok((rev, first)),
            _ => Err(Error::Engine(format!("etcd: our key {key} was not put"))),
        }
    }

    /// Where our key (`key`, created at `ours`) stands: the two last keys
    /// created up to it, ours first, then the one before it.
    fn place(&self, key: &str, ours: i64) -> Result<Place> {
        let (answer, _) = self.client.call("range", |mut c| {
            let options = by_creation(SortOrder::Descend)
                .with_max_create_revision(ours)
                .with_limit(2);
            let prefix = self.prefix.clone();
            async move { c.get(prefix, Some(options)).await }
        })?;
        Ok(match answer.kvs() {
            [mine, ..] if mine.key() != key.as_bytes() => Place::Gone,
            [] => Place::Gone,
            [_] => Place::First,
            [_, before, ..] => Place::Behind(before.clone(), revision(answer.header())),
        })
    }

    /// The first key, and the revision it was read at.
    fn first(&self) -> Result<(Option<KeyValue>, i64)> {
        let (answer, _) = self.client.call("range", |mut c| {
            let options = by_creation(SortOrder::Ascend).with_limit(1);
            let prefix = self.prefix.clone();
            async move { c.get(prefix, Some(options)).await }
        })?;
        Ok((answer.kvs().first().cloned(), revision(answer.header())))
    }

    /// Watches `key` from revision `from` until it is deleted, the watch
    /// breaks, `lost` is raised or `deadline` passes. Nothing is sent while
    /// it waits: the release wakes it.
    fn watch_deleted(
        &self,
        key: &[u8],
        from: i64,
        deadline: Option<Instant>,
        lost: Option<&LostFlag>,
    ) -> Result<Watched> {
        let left_behind = self.client.failovers();
        // Deleted, or the watch was cancelled (a compacted revision): look
        // again.
        let ends = |r: &WatchResponse| {
            r.canceled()
                || r.events()
                    .iter()
                    .any(|e| e.event_type() == EventType::Delete)
        };
        self.client.block_on(async {
            let ((mut stream, first), _) = self
                .client
                .request("watch", |mut c| {
                    let options = WatchOptions::new()
                        .with_start_revision(from)
                        .with_filters([WatchFilterType::NoPut]);
                    let key = key.to_vec();
                    async move {
                        let mut stream = c.watch(key, Some(options)).await?;
                        // etcd's first answer says the watch is made.
                        let first = stream.message().await?;
                        Ok((stream, first))
                    }
                })
                .await?;
            if first.as_ref().is_none_or(ends) {
                return Ok(Watched::Again);
            }
            let mut tick = tokio::time::interval(TICK);
            loop {
                tokio::select! {
                    answer = stream.message() => match answer {
                        Ok(Some(r)) if !ends(&r) => {}
                        Ok(Some(_)) => return Ok(Watched::Again),
                        // Broken: look again, after a pause, where requests
                        // are answered.
                        Ok(None) | Err(_) => {
                            tokio::time::sleep(RETRY).await;
                            return Ok(Watched::Again);
                        }
                    },
                    _ = tick.tick() => {
                        if lost.is_some_and(LostFlag::is_set) {
                            return Ok(Watched::Lost);
                        }
                        if deadline.is_some_and(|d| Instant::now() >= d) {
                            return Ok(Watched::TimedOut);
                        }
                        if self.client.failovers() != left_behind {
                            return Ok(Watched::Again);
                        }
                    }
                }
            }
        })
    }

    fn revoke(&self, lease: i64) {
        revoke(&self.client, lease);
    }

    pub(crate) fn try_acquire(&self, id: &Identity) -> Result<EtcdHold> {
        let (lease, granted) = self.grant()?;
        let key = self.key(lease);
        match self.enqueue(&key, &self.value(id), lease) {
            Ok((_, Some(first))) if first.key() == key.as_bytes() => self
                .hold(lease, token_of(&first), granted)
                .inspect_err(|_| {
                    self.revoke(lease);
                }),
            Ok((_, first)) => {
                // Revoking the lease deletes our key with it.
                self.revoke(lease);
                match first {
                    Some(first) => Err(Error::Held(self.holder_of(&first))),
                    None => Err(Error::Engine(format!("etcd: our key {key} vanished"))),
                }
            }
            Err(e) => {
                self.revoke(lease);
                Err(e)
            }
        }
    }

    /// Queues as `etcdctl lock` does (our key, under our lease, waits for
    /// every key created before it to go), watching the key before ours in
    /// short-lived watches rather than in one long `Lock` call, so that
    /// the lease is renewed meanwhile and an endpoint that hangs is left.
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
        let (lease, granted) = self.grant()?;
        // The lease must live while we queue, however long that is.
        let (stop, lost, published, keeper) =
            match keep_alive(self.client.clone(), lease, self.ttl, granted) {
                Ok(kept) => kept,
                Err(e) => {
                    self.revoke(lease);
                    return Err(e);
                }
            };
        // Leaves the queue: the keep-alive stops and the lease goes (if
        // etcd can be reached; otherwise it expires within a TTL).
        let leave = || {
            stop.store(true, Ordering::Release);
            self.revoke(lease);
        };
        let key = self.key(lease);
        let (ours, first) = match self.enqueue(&key, &self.value(id), lease) {
            Ok(put) => put,
            Err(e) => {
                leave();
                return Err(e);
            }
        };
        let mut place = match first {
            Some(first) if first.key() == key.as_bytes() => Ok(Place::First),
            _ => self.place(&key, ours),
        };
        let mut failing_since = None;
        loop {
            if lost.is_set() {
                leave();
                return Ok(Queued::PlaceLost);
            }
            let watched = match place {
                Ok(Place::First) => {
                    return Ok(Queued::Held(EtcdHold {
                        client: self.client.clone(),
                        lease: Some(lease),
                        ttl: self.ttl,
                        token: u64::try_from(ours).unwrap_or(0),
                        lost,
                        published,
                        stop,
                        keeper: Some(keeper),
                    }));
                }
                // Our key is gone: its lease expired while we waited.
                Ok(Place::Gone) => {
                    leave();
                    return Ok(Queued::PlaceLost);
                }
                Ok(Place::Behind(before, read_at)) => {
                    failing_since = None;
                    self.watch_deleted(before.key(), read_at + 1, deadline, Some(&lost))
                }
                Err(e) => Err(e),
            };
            match watched {
                Ok(Watched::Again | Watched::Lost) => {}
                Ok(Watched::TimedOut) => {
                    leave();
                    return Err(Error::Timeout(self.holder().ok().flatten()));
                }
                // No endpoint answered this time: go on asking while the
                // lease may live; the keep-alive raises `lost` after a TTL.
                Err(e) => {
                    let since = *failing_since.get_or_insert_with(Instant::now);
                    if since.elapsed() >= Duration::from_secs(self.ttl) {
                        leave();
                        return Err(e);
                    }
                    if deadline.is_some_and(|d| Instant::now() >= d) {
                        leave();
                        return Err(Error::Timeout(self.holder().ok().flatten()));
                    }
                    std::thread::sleep(RETRY);
                }
            }
            place = self.place(&key, ours);
        }
    }

    pub(crate) fn holder(&self) -> Result<Option<Holder>> {
        Ok(self.first()?.0.map(|kv| self.holder_of(&kv)))
    }

    /// Waits until nobody holds the lock, watching the holder's key: `true`
    /// once it is free, `false` if `timeout` passed first.
    pub(crate) fn wait_released(&self, timeout: Option<Duration>) -> Result<bool> {
        let deadline = timeout.and_then(|t| Instant::now().checked_add(t));
        loop {
            let (Some(first), read_at) = self.first()? else {
                return Ok(true);
            };
            if let Watched::TimedOut =
                self.watch_deleted(first.key(), read_at + 1, deadline, None)?
            {
                return Ok(false);
            }
        }
    }

    fn holder_of(&self, kv: &KeyValue) -> Holder {
        let value: Value = serde_json::from_slice(kv.value()).unwrap_or(Value::Null);
        let host = value["host"].as_str();
        let pid = value["pid"].as_u64().and_then(|p| u32::try_from(p).ok());
        let lease = kv.lease();
        let client = match (host, pid) {
            (Some(_), Some(_)) => None,
            _ => Some(format!(
                "etcd key {}, lease {lease:x}",
                String::from_utf8_lossy(kv.key())
            )),
        };
        let lease_left = self
            .client
            .call("lease time-to-live", |mut c| async move {
                c.lease_time_to_live(lease, None).await
            })
            .ok()
            .and_then(|(r, _)| u64::try_from(r.ttl()).ok())
            .map(Duration::from_secs);
        Holder {
            host: host.unwrap_or("?").to_string(),
            pid: pid.unwrap_or(0),
            token: Some(token_of(kv)),
            lease_left,
            client,
        }
    }

    fn hold(&self, lease: i64, token: u64, granted: Instant) -> Result<EtcdHold> {
        let (stop, lost, published, keeper) =
            keep_alive(self.client.clone(), lease, self.ttl, granted)?;
        Ok(EtcdHold {
            client: self.client.clone(),
            lease: Some(lease),
            ttl: self.ttl,
            token,
            lost,
            published,
            stop,
            keeper: Some(keeper),
        })
    }
}

/// Renews `lease` once: whether etcd says it still lives, and when the
/// renewal it answered was sent.
fn renew(client: &Client, lease: i64) -> Result<(bool, Instant)> {
    client.call("lease keep-alive", |mut c| async move {
        match c.lease_keep_alive(lease).await {
            Ok(_) => Ok(true),
            // etcd answers a renewal of an expired lease with TTL 0.
            Err(etcd_client::Error::LeaseKeepAliveError(why)) if why.contains("not found") => {
                Ok(false)
            }
            Err(e) => Err(e),
        }
    })
}

/// Revokes `lease` (deleting our key with it) if etcd can be reached;
/// otherwise it expires within a TTL.
fn revoke(client: &Client, lease: i64) {
    let _ = client.call("lease revoke", |mut c| async move {
        c.lease_revoke(lease).await
    });
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

/// What [`keep_alive`] starts: its stop switch, the lost flag, the
/// deadline's published SIGKILL moment, and the thread.
type KeptAlive = (Arc<AtomicBool>, LostFlag, Arc<OwnedFd>, JoinHandle<()>);

/// Renews `lease` every TTL/3 until `stop` (after a failed renewal, every
/// [`RETRY`]), and watches the local deadline ([`crate::deadline`]) from
/// `granted`, when the lease's grant was sent: the lost flag is raised
/// when etcd says the lease expired, or when no renewal was confirmed for
/// long enough that etcd might expire it before the command is stopped.
fn keep_alive(client: Client, lease: i64, ttl: u64, granted: Instant) -> Result<KeptAlive> {
    let stop = Arc::new(AtomicBool::new(false));
    let lost = LostFlag::new()?;
    // Owned by the keep-alive thread: stopped when it ends.
    let deadline = Deadline::start(lost.clone(), bounds(ttl), granted)?;
    let published = deadline.published();
    let (stop2, lost2) = (Arc::clone(&stop), lost.clone());
    let period = Duration::from_millis(ttl * 1000 / 3).max(Duration::from_millis(300));
    let keeper = abslock::__private::spawn_quiet("abslock-etcd-lease", move || {
        while !stop2.load(Ordering::Acquire) {
            let pause = match renew(&client, lease) {
                Ok((true, sent)) => {
                    deadline.confirmed(sent);
                    period
                }
                Ok((false, _)) => {
                    lost2.set_freed("the etcd lease expired");
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
    Ok((stop, lost, published, keeper))
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
        let Some(lease) = self.lease.take() else {
            return Ok(());
        };
        let held = match renew(&self.client, lease) {
            Ok((true, _)) => Ok(()),
            Ok((false, _)) => Err(Error::Engine(
                "the etcd lease had expired before the release: another client may have held \
                 the lock meanwhile"
                    .into(),
            )),
            Err(e) => Err(Error::Engine(format!(
                "etcd could not confirm at the release that the lease was still alive: {e}"
            ))),
        };
        revoke(&self.client, lease);
        held
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
        if let Some(lease) = self.lease.take() {
            revoke(&self.client, lease);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_parse_strictly() {
        let l = EtcdLock::new("127.0.0.1:2379,10.0.0.2:2379?ttl=3", "job", false).unwrap();
        assert_eq!(l.client.hosts(), ["127.0.0.1:2379", "10.0.0.2:2379"]);
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
    }
}
