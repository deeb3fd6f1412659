//! The PostgreSQL backend: a session advisory lock
//! (`pg_try_advisory_lock`), held by one connection and released by the
//! server when that connection ends, however it ends.
//!
//! The time to notice a dead holder is the time the server takes to notice
//! the dead connection. A process that is killed closes its socket, and the
//! server sees that at once. A host that vanishes (power, network) sends
//! nothing; then TCP keepalives and `tcp_user_timeout` bound the delay. Both
//! ends are set tight here: client keepalives after 5 s idle, every 2 s, 3
//! probes; server side (`SET` on the session) the same, plus
//! `tcp_user_timeout = 10 s` for data that goes unacknowledged. So a
//! vanished holder's lock is freed within about 11 s.
//!
//! The lock's session can also end while its holder lives on: an
//! administrator's `pg_terminate_backend`, a server restart. The server
//! frees the lock at once; the holder learns of it at once too (its watch
//! drives the connection between round trips, and sees the server close
//! it) and kills its command with no grace period. Against the moment in
//! between, the holder also keeps a **fence**: a second session that holds
//! a shared advisory lock on the same key in PostgreSQL's other key space
//! (two `int4` halves), raised once the lock is taken and dropped only at
//! the release, after the command is dead. A new holder takes the lock,
//! then the fence exclusively, and only then starts its command: after a
//! terminated lock session it waits until the old command is gone. (A
//! restart ends both sessions; then only the holder's quick kill stands
//! between the old command and a client that connects once the server is
//! back.)
//!
//! There is no fencing token: advisory locks carry no number that grows
//! with each holder. Use the etcd backend where writes must be fenced.

use std::os::fd::OwnedFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use postgres::fallible_iterator::FallibleIterator as _;
use postgres::{Client, Config, NoTls};

use crate::deadline::{Bounds, Deadline};
use crate::sslmode::{self, PgTls};
use crate::{pgpass, Error, Holder, Identity, LostFlag, Result};

const SERVER_KEEPALIVES: &str = "SET tcp_keepalives_idle = 5; SET tcp_keepalives_interval = 2; \
     SET tcp_keepalives_count = 3; SET tcp_user_timeout = 10000";

/// How often the holder checks with a round trip that its connection is
/// alive.
const WATCH_PERIOD: Duration = Duration::from_millis(500);
/// Between round trips the watch reads the connection in slices of this
/// length (a server that ends the session is seen within one), and checks
/// whether the lock is being released.
const WATCH_SLICE: Duration = Duration::from_millis(50);

/// The server frees a silent holder's lock no sooner than 10 s after the
/// last round trip the holder saw confirmed: `tcp_user_timeout` (10 s) for
/// an answer that goes unacknowledged, keepalives (5 s idle, then 3 probes
/// 2 s apart: 11 s) when nothing arrives. So SIGTERM 7 s after the last
/// confirmed `SELECT 1` was sent, SIGKILL at 9 s.
const BOUNDS: Bounds = Bounds {
    expiry: Duration::from_secs(10),
    margin: Duration::from_secs(1),
    grace: Duration::from_secs(2),
};

/// The time from the lost flag to SIGKILL.
pub(crate) fn stop_within() -> Duration {
    BOUNDS.grace
}

#[derive(Debug)]
pub(crate) struct PgLock {
    config: Config,
    tls: PgTls,
    name: String,
}

pub(crate) struct PgHold {
    client: Arc<Mutex<Client>>,
    /// The fence's session (module docs), closed after the lock's.
    fence: Option<Client>,
    key: i64,
    pub(crate) lost: LostFlag,
    /// The local deadline's SIGKILL moment ([`crate::deadline`]).
    pub(crate) published: Arc<OwnedFd>,
    stop: Arc<AtomicBool>,
    watcher: Option<JoinHandle<()>>,
}

fn engine(what: &str) -> impl Fn(postgres::Error) -> Error + '_ {
    move |e| Error::Engine(format!("PostgreSQL: {what}: {}", cause(&e)))
}

/// `HOST:PORT[,...]` as the configuration names the servers, for errors
/// (a socket directory as libpq's socket path).
fn servers(config: &Config) -> String {
    let ports = config.get_ports();
    config
        .get_hosts()
        .iter()
        .enumerate()
        .map(|(i, host)| {
            let port = ports.get(i).or(ports.first()).copied().unwrap_or(5432);
            match host {
                postgres::config::Host::Tcp(name) => format!("{name}:{port}"),
                postgres::config::Host::Unix(dir) => {
                    format!("{}/.s.PGSQL.{port}", dir.display())
                }
            }
        })
        .collect::<Vec<_>>()
        .join(",")
}

/// What the server or the connection said, not just "db error": the
/// server's severity and message ("FATAL: password authentication failed
/// for user ..."), or the chain of causes. (`Error`'s display escapes it.)
fn cause(e: &postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => format!("{}: {}", db.severity(), db.message()),
        None => {
            let mut text = e.to_string();
            let mut source = std::error::Error::source(e);
            while let Some(s) = source {
                text.push_str(": ");
                text.push_str(&s.to_string());
                source = s.source();
            }
            crate::tls::hint(text)
        }
    }
}

/// An environment variable that libpq would use: set and not empty.
pub(crate) fn env(key: &str) -> Option<String> {
    std::env::var(key).ok().filter(|v| !v.is_empty())
}

/// The service file's settings (`crate::service`), where the URL gave
/// none: they come before the `PG*` variables, as in libpq. Settings this
/// client has no use for (`options`, `target_session_attrs`, ...) are
/// left out.
fn service_settings(config: &mut Config, service: &[(String, String)]) -> Result<()> {
    let bad = |key: &str, value: &str| {
        Error::InvalidUrl(format!(
            "service file: {key}={}: not a number",
            crate::secret::redact(value)
        ))
    };
    for (key, value) in service {
        match key.as_str() {
            "host" if config.get_hosts().is_empty() => add_hosts(config, value),
            "port" if config.get_ports().is_empty() => {
                config.port(value.parse().map_err(|_| bad(key, value))?);
            }
            "user" if config.get_user().is_none() => {
                config.user(value);
            }
            "dbname" if config.get_dbname().is_none() => {
                config.dbname(value);
            }
            "password" if config.get_password().is_none() => {
                config.password(value);
            }
            _ => {}
        }
    }
    Ok(())
}

/// A libpq host list (`a,b`), as the servers to try in order.
fn add_hosts(config: &mut Config, list: &str) {
    for host in list.split(',') {
        config.host(host);
    }
}

/// libpq's `connect_timeout`, from the URL, else the service file, else
/// `PGCONNECT_TIMEOUT`, else 5 s: 0 waits as long as it takes (whatever
/// comes after it), and less than 2 s is 2 s.
fn connect_timeout(
    config: &mut Config,
    from_url: Option<String>,
    service: &[(String, String)],
) -> Result<()> {
    let (source, value) = match from_url {
        Some(v) => ("connect_timeout", v),
        None => match service.iter().find(|(k, _)| k == "connect_timeout") {
            Some((_, v)) => ("service file: connect_timeout", v.clone()),
            None => match env("PGCONNECT_TIMEOUT") {
                Some(v) => ("PGCONNECT_TIMEOUT", v),
                None => ("default", "5".into()),
            },
        },
    };
    let secs: u64 = value.trim().parse().map_err(|_| {
        Error::InvalidUrl(format!(
            "{source}={}: not a number of seconds",
            crate::secret::redact(&value)
        ))
    })?;
    if secs > 0 {
        config.connect_timeout(Duration::from_secs(secs.max(2)));
    }
    Ok(())
}

/// Where libpq looks for the server's Unix socket when no host is given:
/// Debian's and Fedora's `/run/postgresql` (`/var/run/postgresql`), else
/// upstream's `/tmp`.
const SOCKET_DIRS: [&str; 3] = ["/run/postgresql", "/var/run/postgresql", "/tmp"];

/// libpq's defaults for what the URL leaves out: `PGHOST` (else the local
/// Unix socket, as libpq uses it), `PGPORT`, `PGUSER` (else the login
/// name), `PGDATABASE`, and the password
/// from `PGPASSWORD` or the password file (`PGPASSFILE`, else
/// `~/.pgpass`).
fn libpq_defaults(config: &mut Config) -> Result<()> {
    if let Some(hosts) = env("PGHOST").filter(|_| config.get_hosts().is_empty()) {
        add_hosts(config, &hosts);
    }
    if config.get_hosts().is_empty() {
        let dir = SOCKET_DIRS
            .iter()
            .find(|d| std::path::Path::new(d).is_dir())
            .unwrap_or(&"/tmp");
        config.host_path(dir);
    }
    if config.get_ports().is_empty() {
        if let Some(port) = env("PGPORT") {
            let port = port
                .parse()
                .map_err(|_| Error::InvalidUrl(format!("PGPORT={port}: not a port number")))?;
            config.port(port);
        }
    }
    if config.get_user().is_none() {
        if let Some(user) = env("PGUSER").or_else(|| env("USER")) {
            config.user(&user);
        }
    }
    if config.get_dbname().is_none() {
        if let Some(db) = env("PGDATABASE") {
            config.dbname(&db);
        }
    }
    if config.get_password().is_none() {
        let password = env("PGPASSWORD").or_else(|| {
            let file = env("PGPASSFILE")
                .map(std::path::PathBuf::from)
                .or_else(|| env("HOME").map(|h| std::path::Path::new(&h).join(".pgpass")))?;
            pgpass::lookup(&file, config)
        });
        if let Some(password) = password {
            config.password(password);
        }
    }
    Ok(())
}

impl PgLock {
    pub(crate) fn new(url: &str, name: &str) -> Result<PgLock> {
        let shown = crate::secret::redact(url);
        let (url, tls, service, timeout) = sslmode::split(url)?;
        let mut config: Config = url
            .parse()
            .map_err(|e| Error::InvalidUrl(format!("{shown}: {e}")))?;
        service_settings(&mut config, &service)?;
        libpq_defaults(&mut config)?;
        connect_timeout(&mut config, timeout, &service)?;
        config.ssl_mode(tls.client_mode());
        config
            .keepalives(true)
            .keepalives_idle(Duration::from_secs(5))
            .keepalives_interval(Duration::from_secs(2))
            .keepalives_retries(3);
        Ok(PgLock {
            config,
            tls,
            name: format!("abslock:{name}"),
        })
    }

    fn connect(&self, id: &Identity) -> Result<(Client, i64)> {
        let mut client = self.session(id)?;
        let key: i64 = client
            .query_one("SELECT hashtextextended($1, 0)", &[&self.name])
            .map_err(engine("hashing the lock name"))?
            .get(0);
        Ok((client, key))
    }

    /// A session as `id`, with the server's keepalives set.
    fn session(&self, id: &Identity) -> Result<Client> {
        let mut config = self.config.clone();
        config.application_name(&format!("abslock host={} pid={}", id.host, id.pid));
        let client = match self.tls.connector()? {
            Some(tls) => config.connect(tls),
            None => config.connect(NoTls),
        };
        let mut client = client.map_err(engine(&format!("connecting to {}", servers(&config))))?;
        client
            .batch_execute(SERVER_KEEPALIVES)
            .map_err(engine("setting keepalives"))?;
        Ok(client)
    }

    pub(crate) fn try_acquire(&self, id: &Identity) -> Result<PgHold> {
        let (mut client, key) = self.connect(id)?;
        let got: bool = client
            .query_one("SELECT pg_try_advisory_lock($1)", &[&key])
            .map_err(engine("pg_try_advisory_lock"))?
            .get(0);
        if got {
            // Closing `client` (on an error) gives the lock back.
            return match self.fence(id, key, Fence::Try)? {
                Ok(fence) => PgHold::new(client, key, fence),
                Err(holder) => Err(Error::Held(holder)),
            };
        }
        let holder = holder_of(&mut client, key, Space::Lock)?;
        Err(Error::Held(holder.unwrap_or_else(vanished)))
    }

    /// Raises our fence (module docs) on a new session, once every older
    /// fence is down: at once ([`Fence::Try`]: else the holder of the
    /// fence still standing) or waiting up to the time left.
    fn fence(
        &self,
        id: &Identity,
        key: i64,
        how: Fence,
    ) -> Result<std::result::Result<Client, Holder>> {
        let mut fence = self.session(id)?;
        let (high, low) = halves(key);
        match how {
            Fence::Try => {
                let got: bool = fence
                    .query_one("SELECT pg_try_advisory_lock($1, $2)", &[&high, &low])
                    .map_err(engine("pg_try_advisory_lock on the fence"))?
                    .get(0);
                if !got {
                    let holder = holder_of(&mut fence, key, Space::Fence)?;
                    return Ok(Err(holder.unwrap_or_else(vanished)));
                }
            }
            Fence::Wait(deadline) => {
                let left = deadline.map(|d| d.saturating_duration_since(Instant::now()));
                set_lock_timeout(&mut fence, left)?;
                match fence.execute("SELECT pg_advisory_lock($1, $2)", &[&high, &low]) {
                    Ok(_) => {}
                    Err(e) if e.code() == Some(&postgres::error::SqlState::LOCK_NOT_AVAILABLE) => {
                        return Ok(Err(
                            holder_of(&mut fence, key, Space::Fence)?.unwrap_or_else(vanished)
                        ));
                    }
                    Err(e) => return Err(engine("pg_advisory_lock on the fence")(e)),
                }
            }
        }
        // Ours, exclusive: every older fence is down. Keep it shared, so
        // that the next holder waits for us in turn.
        fence
            .execute("SELECT pg_advisory_lock_shared($1, $2)", &[&high, &low])
            .and_then(|_| fence.execute("SELECT pg_advisory_unlock($1, $2)", &[&high, &low]))
            .map_err(engine("raising the fence"))?;
        Ok(Ok(fence))
    }

    /// A connection whose lock waits end after `timeout` (`None`: never).
    fn connect_waiting(&self, id: &Identity, timeout: Option<Duration>) -> Result<(Client, i64)> {
        let (mut client, key) = self.connect(id)?;
        set_lock_timeout(&mut client, timeout)?;
        Ok((client, key))
    }

    pub(crate) fn acquire(&self, id: &Identity, timeout: Option<Duration>) -> Result<PgHold> {
        let deadline = timeout.and_then(|t| Instant::now().checked_add(t));
        let (mut client, key) = self.connect_waiting(id, timeout)?;
        match client.execute("SELECT pg_advisory_lock($1)", &[&key]) {
            // Closing `client` (on an error) gives the lock back.
            Ok(_) => match self.fence(id, key, Fence::Wait(deadline))? {
                Ok(fence) => PgHold::new(client, key, fence),
                Err(holder) => Err(Error::Timeout(Some(holder))),
            },
            Err(e) if e.code() == Some(&postgres::error::SqlState::LOCK_NOT_AVAILABLE) => Err(
                Error::Timeout(holder_of(&mut client, key, Space::Lock).ok().flatten()),
            ),
            Err(e) => Err(engine("pg_advisory_lock")(e)),
        }
    }

    /// Sleeps in the server until the lock is free, on one connection: a
    /// shared advisory lock queues behind the exclusive holder; once it is
    /// granted (and while it is kept, so that no new holder can come), the
    /// fence of a holder whose lock session ended but whose command may
    /// still run is waited for too (module docs), so that a taker could
    /// start at once. `false` on timeout.
    pub(crate) fn wait_released(&self, id: &Identity, timeout: Option<Duration>) -> Result<bool> {
        let deadline = timeout.and_then(|t| Instant::now().checked_add(t));
        let (mut client, key) = self.connect_waiting(id, timeout)?;
        let (high, low) = halves(key);
        let timed_out =
            |e: &postgres::Error| e.code() == Some(&postgres::error::SqlState::LOCK_NOT_AVAILABLE);
        match client.execute("SELECT pg_advisory_lock_shared($1)", &[&key]) {
            Ok(_) => {}
            Err(e) if timed_out(&e) => return Ok(false),
            Err(e) => return Err(engine("pg_advisory_lock_shared")(e)),
        }
        set_lock_timeout(
            &mut client,
            deadline.map(|d| d.saturating_duration_since(Instant::now())),
        )?;
        // Closing the connection drops both locks as well.
        match client.execute("SELECT pg_advisory_lock($1, $2)", &[&high, &low]) {
            Ok(_) => Ok(true),
            Err(e) if timed_out(&e) => Ok(false),
            Err(e) => Err(engine("waiting for the fence")(e)),
        }
    }

    pub(crate) fn holder(&self) -> Result<Option<Holder>> {
        let (mut client, key) = self.connect(&Identity::current())?;
        holder_of(&mut client, key, Space::Lock)
    }
}

/// Makes the session's lock waits end after `timeout` (`None`: never;
/// PostgreSQL's 0), at least 1 ms.
fn set_lock_timeout(client: &mut Client, timeout: Option<Duration>) -> Result<()> {
    let ms = timeout.map_or(0, |t| t.as_millis().clamp(1, i32::MAX as u128));
    client
        .batch_execute(&format!("SET lock_timeout = {ms}"))
        .map_err(engine("setting lock_timeout"))
}

/// How [`PgLock::fence`] waits for older fences.
enum Fence {
    /// Not at all.
    Try,
    /// Until this moment (`None`: as long as it takes).
    Wait(Option<Instant>),
}

/// Which of PostgreSQL's two advisory key spaces a key is in (`objsubid`
/// in `pg_locks`): one `bigint`, or two `int4`.
#[derive(Clone, Copy)]
enum Space {
    /// The lock: `pg_advisory_lock(bigint)`.
    Lock = 1,
    /// The fence: `pg_advisory_lock(int4, int4)`, the same 64 bits.
    Fence = 2,
}

/// The lock's key as the two `int4` of the fence, high half first: the
/// same 64 bits, so `pg_locks` shows both under one `classid`/`objid`.
fn halves(key: i64) -> (i32, i32) {
    ((key >> 32) as i32, key as i32)
}

/// The holder of a lock whose session left `pg_locks` before we looked.
fn vanished() -> Holder {
    Holder {
        host: "?".into(),
        pid: 0,
        token: None,
        lease_left: None,
        client: Some("a session that left pg_locks before we looked".into()),
    }
}

/// The session holding advisory lock `key` in `space`, from `pg_locks`
/// and the `application_name` it set (`abslock host=H pid=P`).
fn holder_of(client: &mut Client, key: i64, space: Space) -> Result<Option<Holder>> {
    let rows = client
        .query(
            "SELECT a.application_name, a.pid, coalesce(a.usename::text, '') \
             FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid \
             WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = $2 \
             AND l.classid = (($1::bigint >> 32) & 4294967295)::oid \
             AND l.objid = ($1::bigint & 4294967295)::oid",
            &[&key, &(space as i16)],
        )
        .map_err(engine("reading pg_locks"))?;
    Ok(rows.first().map(|row| {
        let app: String = row.get(0);
        let backend: i32 = row.get(1);
        let user: String = row.get(2);
        let field = |k: &str| {
            app.strip_prefix("abslock ")?
                .split_whitespace()
                .find_map(|w| w.strip_prefix(k))
                .map(str::to_string)
        };
        let (host, pid) = (field("host="), field("pid=").and_then(|p| p.parse().ok()));
        let client = match (&host, pid) {
            (Some(_), Some(_)) => None,
            _ => Some(format!(
                "PostgreSQL session {backend} of user {user}, application '{app}'"
            )),
        };
        Holder {
            host: host.unwrap_or_else(|| "?".into()),
            pid: pid.unwrap_or(0),
            token: None,
            lease_left: None,
            client,
        }
    }))
}

impl std::fmt::Debug for PgHold {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgHold")
            .field("key", &self.key)
            .field("lost", &self.lost)
            .finish_non_exhaustive()
    }
}

impl PgHold {
    /// Holds the lock taken on `client`, fenced by `fence`. The session's
    /// statements are bounded from now on (the watch's `SELECT 1`, the
    /// unlock), and the round trip that sets that bound starts the local
    /// deadline.
    fn new(mut client: Client, key: i64, fence: Client) -> Result<PgHold> {
        let sent = Instant::now();
        client
            .batch_execute("SET lock_timeout = 0; SET statement_timeout = 5000")
            .map_err(engine("setting the session's timeouts"))?;
        let client = Arc::new(Mutex::new(client));
        let stop = Arc::new(AtomicBool::new(false));
        let lost = LostFlag::new()?;
        // Owned by the watch thread: stopped when it ends.
        let deadline = Deadline::start(lost.clone(), BOUNDS, sent)?;
        let published = deadline.published();
        let (c, s, l) = (Arc::clone(&client), Arc::clone(&stop), lost.clone());
        let watcher = abslock::__private::spawn_quiet("abslock-pg-watch", move || {
            while !s.load(Ordering::Acquire) {
                let sent = Instant::now();
                let alive = {
                    let mut client = c.lock().unwrap_or_else(PoisonError::into_inner);
                    client.simple_query("SELECT 1").map(drop)
                };
                match alive {
                    Ok(()) => deadline.confirmed(sent),
                    Err(e) if !s.load(Ordering::Acquire) => {
                        let why = format!(
                            "the PostgreSQL session holding the lock ended: {}",
                            cause(&e)
                        );
                        // A session the server ended (or a closed
                        // connection) has freed the lock; a statement that
                        // failed in a live session has not.
                        if e.is_closed()
                            || e.as_db_error().is_some_and(|db| db.severity() == "FATAL")
                        {
                            l.set_freed(why);
                        } else {
                            l.set(why);
                        }
                        return;
                    }
                    Err(_) => return,
                }
                // Until the next round trip, read the connection, so that
                // a server that ends the session is seen at once: the
                // slice then ends early, and the round trip tells.
                let until = Instant::now() + WATCH_PERIOD;
                while Instant::now() < until && !s.load(Ordering::Acquire) {
                    let mut client = c.lock().unwrap_or_else(PoisonError::into_inner);
                    let start = Instant::now();
                    let read = client.notifications().timeout_iter(WATCH_SLICE).next();
                    if read.is_err() || start.elapsed() < WATCH_SLICE / 2 {
                        break;
                    }
                }
            }
        })
        .map_err(|e| Error::Engine(format!("starting the connection's watch thread: {e}")))?;
        Ok(PgHold {
            client,
            fence: Some(fence),
            key,
            lost,
            published,
            stop,
            watcher: Some(watcher),
        })
    }

    /// Stops the watch thread; `false` if the lock was lost while its
    /// round trip is still stuck (a frozen link answers never): the thread
    /// is then left behind, and the connection with it; the fence's
    /// connection, as silent, is closed on a thread of its own (closing
    /// waits for the server's goodbye).
    fn stop_watcher(&mut self) -> bool {
        self.stop.store(true, Ordering::Release);
        let Some(w) = self.watcher.take() else {
            return true;
        };
        // The deadline raises `lost` at the latest 7 s after the last
        // confirmed round trip: this wait ends.
        while !w.is_finished() {
            if self.lost.is_set() {
                if let Some(fence) = self.fence.take() {
                    let _ =
                        abslock::__private::spawn_quiet("abslock-pg-fence", move || drop(fence));
                }
                return false;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let _ = w.join();
        true
    }

    /// Releases the lock, and fails unless the server confirms that this
    /// session held it to the end: a session-level advisory lock lives as
    /// long as the session, so `pg_advisory_unlock` answering `true` on
    /// the same connection proves it was never lost; a dropped connection
    /// (`pg_terminate_backend`, a restart) or `false` is a lost lock.
    pub(crate) fn release(mut self) -> Result<()> {
        if !self.stop_watcher() {
            return Err(Error::Engine(format!(
                "the lock was lost before the release: {}",
                self.lost.reason().unwrap_or_default()
            )));
        }
        let held: bool = self
            .client
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .query_one("SELECT pg_advisory_unlock($1)", &[&self.key])
            .map_err(engine("pg_advisory_unlock"))?
            .get(0);
        // The work done under the lock is over: the next holder may go.
        drop(self.fence.take());
        if held {
            Ok(())
        } else {
            Err(Error::Engine(
                "this PostgreSQL session no longer held the lock at the release".into(),
            ))
        }
    }
}

impl Drop for PgHold {
    fn drop(&mut self) {
        // Closing the connections releases the lock on the server, and
        // then the fence (the fields' order).
        self.stop_watcher();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn timeout_of(url: &str) -> Option<Duration> {
        PgLock::new(url, "job")
            .unwrap()
            .config
            .get_connect_timeout()
            .copied()
    }

    /// libpq's rules for `connect_timeout`: 0 is no limit (the client
    /// library drops it, and a default must not come back in its place),
    /// less than 2 s is 2 s, in a URL or a key=value string alike.
    #[test]
    fn connect_timeout_follows_libpq() {
        assert_eq!(timeout_of("postgres://u@h/db?connect_timeout=0"), None);
        assert_eq!(timeout_of("host=h user=u connect_timeout=0"), None);
        assert_eq!(
            timeout_of("postgres://u@h/db?connect_timeout=1"),
            Some(Duration::from_secs(2))
        );
        assert_eq!(
            timeout_of("host=h connect_timeout=7 user=u"),
            Some(Duration::from_secs(7))
        );
        assert!(PgLock::new("postgres://u@h/db?connect_timeout=soon", "job").is_err());
    }
}
