//! One etcd client per endpoint, on etcd's gRPC API (the `etcd-client`
//! crate: tonic over HTTP/2, rustls), and the failover between them.
//!
//! Each request goes to the endpoint that answered last, and to the next
//! one when that endpoint cannot be reached or gives no answer within the
//! per-request timeout: a member that accepts TCP and never answers costs
//! one timeout, once. An answer that is a refusal (permissions, a bad
//! password) is final. The async client runs on a runtime of its own (one
//! worker thread), driven from the lock's blocking calls.

use std::future::Future;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use etcd_client::{Certificate, ConnectOptions, Identity as TlsIdentity, TlsOptions};
use tonic::Code;

use crate::tls::TlsFiles;
use crate::{Error, Result};

/// A connection to every endpoint, made on first use.
#[derive(Clone)]
pub(super) struct Client {
    runtime: Arc<tokio::runtime::Runtime>,
    /// `HOST:PORT`, as the user wrote them (for messages).
    hosts: Arc<[String]>,
    /// `http://HOST:PORT` or `https://HOST:PORT`.
    urls: Arc<[String]>,
    clients: Arc<Mutex<Vec<Option<etcd_client::Client>>>>,
    /// The endpoint that answered last, tried first.
    preferred: Arc<AtomicUsize>,
    /// Counts the requests that had to leave an endpoint: a watch on the
    /// endpoint left behind may be stuck on a silent link, and is made
    /// again where requests are answered.
    failovers: Arc<AtomicU64>,
    /// TLS, user and password (never printed: no `Debug`).
    options: Arc<ConnectOptions>,
    /// Per endpoint and request.
    pub(super) timeout: Duration,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("hosts", &self.hosts)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

/// Why one endpoint gave no answer, or the answer that ends the request.
enum Failure {
    /// Not reached, or it could not serve (no leader, shutting down): ask
    /// the next endpoint.
    Unreachable(String),
    /// etcd's answer, a refusal: final.
    Refused(String),
}

impl Client {
    /// A client of `hosts` (`HOST:PORT`), with TLS when `tls` is given and
    /// etcd's user and password when `user` is.
    pub(super) fn new(
        hosts: Vec<String>,
        tls: Option<&TlsFiles>,
        user: Option<(String, String)>,
        timeout: Duration,
    ) -> Result<Client> {
        let scheme = if tls.is_some() { "https" } else { "http" };
        let urls: Vec<String> = hosts.iter().map(|h| format!("{scheme}://{h}")).collect();
        let mut options = ConnectOptions::new()
            .with_connect_timeout(timeout)
            .with_timeout(timeout)
            // A token that expires while we hold the lock is fetched again
            // with the password, as etcdctl does.
            .with_auto_token_refresh(true);
        if let Some((name, password)) = user {
            options = options.with_user(name, password);
        }
        if let Some(files) = tls {
            options = options.with_tls(tls_options(files)?);
        }
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("abslock-etcd")
            // Signals are for the command's supervisor, not for these
            // threads (where SIGTERM's default action would kill abslock).
            .on_thread_start(abslock::__private::quiet_this_thread)
            .enable_all()
            .build()
            .map_err(|e| Error::Engine(format!("starting etcd's client runtime: {e}")))?;
        Ok(Client {
            runtime: Arc::new(runtime),
            clients: Arc::new(Mutex::new(vec![None; hosts.len()])),
            hosts: hosts.into(),
            urls: urls.into(),
            preferred: Arc::new(AtomicUsize::new(0)),
            failovers: Arc::new(AtomicU64::new(0)),
            options: Arc::new(options),
            timeout,
        })
    }

    #[cfg(test)]
    pub(super) fn hosts(&self) -> &[String] {
        &self.hosts
    }

    /// Runs `future` to its end on the client's runtime.
    pub(super) fn block_on<T>(&self, future: impl Future<Output = T>) -> T {
        self.runtime.block_on(future)
    }

    /// How many requests have left an endpoint so far.
    pub(super) fn failovers(&self) -> u64 {
        self.failovers.load(Ordering::Relaxed)
    }

    /// [`Client::request`], blocking.
    pub(super) fn call<T, F, Fut>(&self, what: &str, op: F) -> Result<(T, Instant)>
    where
        F: Fn(etcd_client::Client) -> Fut,
        Fut: Future<Output = std::result::Result<T, etcd_client::Error>>,
    {
        self.block_on(self.request(what, op))
    }

    /// Runs `op` (`what`, for messages) on the first endpoint that answers,
    /// and returns the answer and when the request to that endpoint was
    /// sent: etcd acted on it after that (a renewal's lease lives from then
    /// on), however long the endpoints before it took to fail.
    pub(super) async fn request<T, F, Fut>(&self, what: &str, op: F) -> Result<(T, Instant)>
    where
        F: Fn(etcd_client::Client) -> Fut,
        Fut: Future<Output = std::result::Result<T, etcd_client::Error>>,
    {
        let mut failures = Vec::new();
        let first = self.preferred.load(Ordering::Relaxed);
        let n = self.urls.len();
        for index in (first..first + n).map(|i| i % n) {
            let host = &self.hosts[index];
            let sent = Instant::now();
            let answer = tokio::time::timeout(self.timeout, async {
                let client = self.connect(index).await?;
                op(client).await
            })
            .await;
            let failure = match answer {
                Ok(Ok(value)) => {
                    if !failures.is_empty() {
                        self.failovers.fetch_add(1, Ordering::Relaxed);
                    }
                    self.preferred.store(index, Ordering::Relaxed);
                    return Ok((value, sent));
                }
                Ok(Err(e)) => classify(&e),
                Err(_) => Failure::Unreachable(format!(
                    "no answer within {:.2}s",
                    self.timeout.as_secs_f64()
                )),
            };
            match failure {
                Failure::Unreachable(why) => failures.push(format!("{host}: {why}")),
                Failure::Refused(why) => {
                    self.preferred.store(index, Ordering::Relaxed);
                    return Err(refusal(host, what, &why));
                }
            }
        }
        self.failovers.fetch_add(1, Ordering::Relaxed);
        Err(Error::Engine(crate::tls::hint(format!(
            "no etcd endpoint answered: {}",
            failures.join("; ")
        ))))
    }

    /// The client of endpoint `index`, connected (and logged in, with a
    /// password) on first use.
    async fn connect(
        &self,
        index: usize,
    ) -> std::result::Result<etcd_client::Client, etcd_client::Error> {
        let cached = self.clients.lock().unwrap_or_else(PoisonError::into_inner)[index].clone();
        if let Some(client) = cached {
            return Ok(client);
        }
        let client = etcd_client::Client::connect(
            [&self.urls[index]],
            Some(ConnectOptions::clone(&self.options)),
        )
        .await?;
        self.clients.lock().unwrap_or_else(PoisonError::into_inner)[index] = Some(client.clone());
        Ok(client)
    }
}

/// tonic's TLS settings for etcdctl's files: the CA in `cacert`, else the
/// system's trust store (`SSL_CERT_FILE`, `SSL_CERT_DIR`, else the
/// distribution's bundle), and the client certificate if one is named.
fn tls_options(files: &TlsFiles) -> Result<TlsOptions> {
    let read = |what: &str, path: &std::path::Path| {
        std::fs::read(path)
            .map_err(|e| Error::Engine(format!("TLS {what} {}: {e}", path.display())))
    };
    let mut tls = TlsOptions::new();
    tls = match &files.cacert {
        Some(path) => tls.ca_certificate(Certificate::from_pem(read("CA file", path)?)),
        None => tls.with_native_roots(),
    };
    match (&files.cert, &files.key) {
        (None, None) => Ok(tls),
        (Some(cert), Some(key)) => Ok(tls.identity(TlsIdentity::from_pem(
            read("certificate", cert)?,
            read("key", key)?,
        ))),
        _ => Err(Error::InvalidUrl(
            "a client certificate needs its key, and a key its certificate".into(),
        )),
    }
}

/// Whether `e` means "try the next endpoint", and its text with every
/// cause (tonic keeps a TLS or connection failure in the source chain).
fn classify(e: &etcd_client::Error) -> Failure {
    use std::error::Error as _;
    let (mut text, mut source) = match e {
        etcd_client::Error::GRpcStatus(status) => (status.message().to_string(), status.source()),
        etcd_client::Error::TransportError(t) => (t.to_string(), t.source()),
        other => (other.to_string(), None),
    };
    while let Some(cause) = source {
        let said = cause.to_string();
        if !text.contains(&said) {
            text = format!("{text}: {said}");
        }
        source = cause.source();
    }
    match e {
        etcd_client::Error::GRpcStatus(status)
            if !matches!(
                status.code(),
                Code::Unavailable | Code::DeadlineExceeded | Code::Cancelled | Code::Unknown
            ) =>
        {
            Failure::Refused(text)
        }
        etcd_client::Error::GRpcStatus(_)
        | etcd_client::Error::TransportError(_)
        | etcd_client::Error::IoError(_) => Failure::Unreachable(text),
        _ => Failure::Refused(text),
    }
}

/// etcd's refusal, as one line with its reason and what to do about it.
fn refusal(host: &str, what: &str, why: &str) -> Error {
    let why = why.trim();
    let hint = if why.contains("user name is empty") || why.contains("permission denied") {
        "; the etcd user (etcd://USER@HOST:PORT with ETCDCTL_PASSWORD, ETCDCTL_USER=USER:PASSWORD, \
         or the CommonName of the client certificate) needs read and write on the prefix abslock/"
    } else {
        ""
    };
    Error::Engine(format!("etcd {host} ({what}): {why}{hint}"))
}
