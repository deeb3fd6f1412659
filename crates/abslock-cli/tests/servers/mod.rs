//! Real etcd and PostgreSQL servers for the tests, each started on free
//! loopback ports with data in a temporary directory: plain, or secured
//! as production servers are (TLS with client certificates made by
//! openssl(1) at test time, passwords, etcd users and roles). Shared by
//! `cluster.rs` (the command line against each engine) and `contract.rs`
//! (the `abslock::Backend` contract on every backend).
//!
//! The servers come from Debian's etcd-server and postgresql packages
//! (`scripts/setup.sh` installs them). Without them the tests say so and
//! pass, unless `ABSLOCK_REQUIRE_CLUSTER=1` (set by `.ci/run`) makes that a
//! failure.
#![allow(dead_code)]

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use crate::common::{self, eventually_within};

/// A server the tests can stop and start again.
pub trait Server {
    fn url(&self) -> String;
    fn stop(&mut self);
    fn start(&mut self);
}

/// A loopback port nothing listens on now, never the same twice in this
/// process: the kernel may hand a port just released to the next `bind`,
/// and tests start their servers in parallel threads.
pub fn free_port() -> u16 {
    static GIVEN: std::sync::Mutex<Vec<u16>> = std::sync::Mutex::new(Vec::new());
    let mut given = GIVEN
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    loop {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        if !given.contains(&port) {
            given.push(port);
            return port;
        }
    }
}

pub fn scratch(tag: &str) -> PathBuf {
    // Tests run in parallel threads of one process: a counter keeps their
    // servers apart.
    static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let dir =
        std::env::temp_dir().join(format!("abslock-cluster-{}-{tag}-{n}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// `None` (and a note) when the server is not installed, unless required.
pub fn missing<T>(what: &str) -> Option<T> {
    if std::env::var_os("ABSLOCK_REQUIRE_CLUSTER").is_some() {
        panic!(
            "{what} is not installed, and ABSLOCK_REQUIRE_CLUSTER is set (run scripts/setup.sh)"
        );
    }
    eprintln!("skipped: {what} is not installed (scripts/setup.sh installs it)");
    None
}

thread_local! {
    /// More environment for every abslock the test on this thread starts:
    /// a secured server's credentials, given as a user gives them (in the
    /// environment, not the URL). libtest runs each test on its own thread.
    static ENV: std::cell::RefCell<Vec<(String, String)>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Every abslock this test starts from now on gets `env`.
pub fn use_env(env: &[(&str, &str)]) {
    ENV.with(|e| {
        *e.borrow_mut() = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    });
}

/// `abslock ARGS` as host `host`.
pub fn abslock(host: &str, args: &[&str]) -> Command {
    let mut cmd = Command::new(common::bin());
    cmd.env("ABSLOCK_HOST", host).args(args);
    ENV.with(|e| cmd.envs(e.borrow().iter().map(|(k, v)| (k, v))));
    cmd
}

// ---- etcd ------------------------------------------------------------------

#[cfg(feature = "etcd")]
pub struct Etcd {
    pub dir: PathBuf,
    pub client: u16,
    pub peer: u16,
    pub child: Option<Child>,
    /// Certificates for a TLS server that wants client certificates.
    pub tls: Option<Certs>,
    /// The environment the start-up probe needs (credentials, once auth
    /// is on).
    pub probe_env: Vec<(&'static str, String)>,
    /// More etcd options.
    pub extra: Vec<&'static str>,
}

/// A CA, a server certificate for 127.0.0.1 and a client certificate,
/// made with openssl(1) for one test.
pub struct Certs {
    pub dir: PathBuf,
}

impl Certs {
    pub fn new(dir: &Path) -> Certs {
        let script = r#"
set -e
key() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" 2>/dev/null; }
key ca.key
openssl req -x509 -new -key ca.key -out ca.pem -days 2 -subj /CN=abslock-test-ca
# No CommonName in the client's certificate: with authentication on,
# etcd takes a certificate's CommonName as the user (Certs::client).
key server.key
openssl req -new -key server.key -out server.csr -subj /CN=127.0.0.1
key client.key
openssl req -new -key client.key -out client.csr -subj /O=abslock-test-client
printf 'subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth,clientAuth\n' > server.ext
printf 'extendedKeyUsage=clientAuth\n' > client.ext
for who in server client; do
  openssl x509 -req -in $who.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 \
    -extfile $who.ext -out $who.pem 2>/dev/null
done
"#;
        let out = Command::new("bash")
            .args(["-c", script])
            .current_dir(dir)
            .output()
            .unwrap();
        assert!(out.status.success(), "openssl: {out:?}");
        Certs {
            dir: dir.to_path_buf(),
        }
    }

    pub fn path(&self, file: &str) -> String {
        self.dir.join(file).to_str().unwrap().to_string()
    }

    /// A client certificate whose CommonName is `user` (the etcd user it
    /// logs in as when authentication is on): `USER.pem` and `USER.key`.
    pub fn client(&self, user: &str) -> (String, String) {
        let script = r#"
set -e
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1.key" 2>/dev/null
openssl req -new -key "$1.key" -out "$1.csr" -subj "/CN=$1"
openssl x509 -req -in "$1.csr" -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 \
  -extfile client.ext -out "$1.pem" 2>/dev/null
"#;
        let out = Command::new("bash")
            .args(["-c", script, "certs", user])
            .current_dir(&self.dir)
            .output()
            .unwrap();
        assert!(out.status.success(), "openssl: {out:?}");
        (
            self.path(&format!("{user}.pem")),
            self.path(&format!("{user}.key")),
        )
    }

    /// etcdctl's TLS flags, with the CommonName-less client certificate.
    pub fn etcdctl_args(&self) -> [String; 3] {
        [
            format!("--cacert={}", self.path("ca.pem")),
            format!("--cert={}", self.path("client.pem")),
            format!("--key={}", self.path("client.key")),
        ]
    }
}

#[cfg(feature = "etcd")]
impl Etcd {
    pub fn new() -> Option<Etcd> {
        if Command::new("etcd").arg("--version").output().is_err() {
            return missing("etcd (Debian package etcd-server)");
        }
        let mut etcd = Etcd {
            dir: scratch("etcd"),
            client: free_port(),
            peer: free_port(),
            child: None,
            tls: None,
            probe_env: Vec::new(),
            extra: Vec::new(),
        };
        etcd.start();
        Some(etcd)
    }

    /// A server as Kubernetes runs etcd: TLS only, and a client must show
    /// a certificate from the cluster's CA (`--client-cert-auth`).
    pub fn with_tls() -> Option<Etcd> {
        if Command::new("etcd").arg("--version").output().is_err() {
            return missing("etcd (Debian package etcd-server)");
        }
        let dir = scratch("etcd-tls");
        let mut etcd = Etcd {
            tls: Some(Certs::new(&dir)),
            dir,
            client: free_port(),
            peer: free_port(),
            child: None,
            probe_env: Vec::new(),
            extra: Vec::new(),
        };
        etcd.start();
        Some(etcd)
    }
}

#[cfg(feature = "etcd")]
impl Server for Etcd {
    fn url(&self) -> String {
        match &self.tls {
            None => format!("etcd://127.0.0.1:{}?ttl=2", self.client),
            Some(c) => format!(
                "etcds://127.0.0.1:{}?ttl=2&cacert={}&cert={}&key={}",
                self.client,
                c.path("ca.pem"),
                c.path("client.pem"),
                c.path("client.key")
            ),
        }
    }

    fn start(&mut self) {
        let scheme = if self.tls.is_some() { "https" } else { "http" };
        let client = format!("{scheme}://127.0.0.1:{}", self.client);
        let mut tls_args = Vec::new();
        if let Some(c) = &self.tls {
            tls_args = vec![
                "--cert-file".to_string(),
                c.path("server.pem"),
                "--key-file".to_string(),
                c.path("server.key"),
                "--trusted-ca-file".to_string(),
                c.path("ca.pem"),
                "--client-cert-auth".to_string(),
            ];
        }
        let peer = format!("http://127.0.0.1:{}", self.peer);
        let child = Command::new("etcd")
            .args(["--name", "t", "--data-dir"])
            .arg(self.dir.join("data"))
            .args([
                "--listen-client-urls",
                &client,
                "--advertise-client-urls",
                &client,
            ])
            .args([
                "--listen-peer-urls",
                &peer,
                "--initial-advertise-peer-urls",
                &peer,
            ])
            .args(["--initial-cluster", &format!("t={peer}")])
            .args(&tls_args)
            .args(&self.extra)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(self.dir.join("etcd.log")).unwrap())
            .spawn()
            .unwrap();
        self.child = Some(child);
        let url = self.url();
        let env = self.probe_env.clone();
        let start = std::time::Instant::now();
        while abslock("probe", &["status", "--backend", &url, "probe"])
            .envs(env.iter().map(|(k, v)| (k, v)))
            .output()
            .unwrap()
            .status
            .code()
            != Some(1)
        {
            if start.elapsed() > Duration::from_secs(30) {
                let log = std::fs::read_to_string(self.dir.join("etcd.log")).unwrap_or_default();
                let tail: Vec<&str> = log.lines().rev().take(15).collect();
                panic!(
                    "etcd did not answer within 30 s; the end of its log:\n{}",
                    tail.into_iter().rev().collect::<Vec<_>>().join("\n")
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

#[cfg(feature = "etcd")]
impl Drop for Etcd {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Whether etcdctl is installed; says why the test is skipped if not (or
/// fails, under `ABSLOCK_REQUIRE_CLUSTER`).
#[cfg(feature = "etcd")]
pub fn have_etcdctl() -> bool {
    Command::new("etcdctl").arg("version").output().is_ok()
        || missing::<()>("etcdctl (Debian package etcd-client)").is_some()
}

/// etcdctl, v3 API, talking to the member whose client port is `port`.
#[cfg(feature = "etcd")]
pub fn etcdctl(port: u16) -> Command {
    let mut cmd = Command::new("etcdctl");
    cmd.env("ETCDCTL_API", "3")
        .arg(format!("--endpoints=127.0.0.1:{port}"));
    cmd
}

/// A 3-member etcd cluster on loopback, for faults that need a quorum (a
/// member or the leader killed), plain or secured.
#[cfg(feature = "etcd")]
pub struct EtcdCluster {
    pub dir: PathBuf,
    pub clients: Vec<u16>,
    pub members: Vec<Option<Child>>,
    /// TLS on the client ports, client certificates required.
    pub tls: Option<Certs>,
}

#[cfg(feature = "etcd")]
impl EtcdCluster {
    /// Plain HTTP.
    pub fn new() -> Option<EtcdCluster> {
        Self::start(false)
    }

    /// TLS only on the client ports, and a client must show a certificate
    /// from the cluster's CA (`--client-cert-auth`).
    pub fn with_tls() -> Option<EtcdCluster> {
        Self::start(true)
    }

    fn start(tls: bool) -> Option<EtcdCluster> {
        if Command::new("etcd").arg("--version").output().is_err() {
            return missing("etcd (Debian package etcd-server)");
        }
        let dir = scratch("etcd-cluster");
        let certs = tls.then(|| Certs::new(&dir));
        let scheme = if tls { "https" } else { "http" };
        let clients: Vec<u16> = (0..3).map(|_| free_port()).collect();
        let peers: Vec<u16> = (0..3).map(|_| free_port()).collect();
        let initial = (0..3)
            .map(|i| format!("m{i}=http://127.0.0.1:{}", peers[i]))
            .collect::<Vec<_>>()
            .join(",");
        let tls_args: Vec<String> = match &certs {
            Some(c) => vec![
                format!("--cert-file={}", c.path("server.pem")),
                format!("--key-file={}", c.path("server.key")),
                format!("--trusted-ca-file={}", c.path("ca.pem")),
                "--client-cert-auth".into(),
            ],
            None => Vec::new(),
        };
        let members = (0..3)
            .map(|i| {
                let client = format!("{scheme}://127.0.0.1:{}", clients[i]);
                let peer = format!("http://127.0.0.1:{}", peers[i]);
                Some(
                    Command::new("etcd")
                        .args(["--name", &format!("m{i}"), "--data-dir"])
                        .arg(dir.join(format!("m{i}")))
                        .args(["--listen-client-urls", &client])
                        .args(["--advertise-client-urls", &client])
                        .args(["--listen-peer-urls", &peer])
                        .args(["--initial-advertise-peer-urls", &peer])
                        .args(["--initial-cluster", &initial])
                        .args(["--initial-cluster-state", "new"])
                        .args(["--initial-cluster-token", "abslock-test"])
                        .args(&tls_args)
                        .stdout(Stdio::null())
                        .stderr(std::fs::File::create(dir.join(format!("m{i}.log"))).unwrap())
                        .spawn()
                        .unwrap(),
                )
            })
            .collect();
        let cluster = EtcdCluster {
            dir,
            clients,
            members,
            tls: certs,
        };
        eventually_within(
            "the etcd cluster to answer",
            Duration::from_secs(30),
            || {
                cluster
                    .etcdctl(0)
                    .args(["endpoint", "health", "--cluster"])
                    .output()
                    .is_ok_and(|o| o.status.success())
            },
        );
        Some(cluster)
    }

    /// etcdctl on member `member`, with the CommonName-less client
    /// certificate when the cluster has TLS.
    pub fn etcdctl(&self, member: usize) -> Command {
        let port = self.clients[member];
        match &self.tls {
            None => etcdctl(port),
            Some(c) => {
                let mut cmd = Command::new("etcdctl");
                cmd.env("ETCDCTL_API", "3")
                    .arg(format!("--endpoints=https://127.0.0.1:{port}"))
                    .args(c.etcdctl_args());
                cmd
            }
        }
    }

    /// Every member's `HOST:PORT`, comma-separated.
    pub fn endpoints(&self) -> String {
        self.clients
            .iter()
            .map(|p| format!("127.0.0.1:{p}"))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// Every member's endpoint, TTL 3 s (plain HTTP).
    pub fn url(&self) -> String {
        format!("etcd://{}?ttl=3", self.endpoints())
    }

    /// The index of the member that leads now, from `etcdctl endpoint
    /// status` of each member.
    pub fn leader(&self) -> Option<usize> {
        let status = |member: usize| -> Option<(String, String)> {
            let out = self
                .etcdctl(member)
                .args(["endpoint", "status", "-w", "json"])
                .output()
                .ok()?;
            let v: serde_json::Value = serde_json::from_slice(&out.stdout).ok()?;
            let s = &v[0]["Status"];
            Some((
                s["header"]["member_id"].to_string(),
                s["leader"].to_string(),
            ))
        };
        (0..3).find(|&i| {
            self.members[i].is_some() && status(i).is_some_and(|(me, leader)| me == leader)
        })
    }

    pub fn kill(&mut self, member: usize) {
        if let Some(mut child) = self.members[member].take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

#[cfg(feature = "etcd")]
impl Drop for EtcdCluster {
    fn drop(&mut self) {
        for i in 0..self.members.len() {
            self.kill(i);
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

// ---- PostgreSQL -------------------------------------------------------------

#[cfg(feature = "postgres")]
pub struct Postgres {
    pub dir: PathBuf,
    pub bin: PathBuf,
    pub port: u16,
    /// TLS on, and the certificates.
    pub tls: Option<Certs>,
}

#[cfg(feature = "postgres")]
impl Postgres {
    pub fn new() -> Option<Postgres> {
        Self::init(None, false)
    }

    /// A server that wants the superuser's `password` over TCP
    /// (scram-sha-256), as production servers do.
    pub fn with_password(password: &str) -> Option<Postgres> {
        Self::init(Some(password), false)
    }

    /// A production-like server: TLS only over TCP (`hostssl`, plain TCP
    /// rejected), scram-sha-256 passwords, and for the superuser a client
    /// certificate from the CA as well; user `app` needs only its password.
    pub fn with_tls(password: &str) -> Option<Postgres> {
        let pg = Self::init(Some(password), true)?;
        let hba = "local all all trust\n\
                   hostssl all postgres 127.0.0.1/32 scram-sha-256 clientcert=verify-ca\n\
                   hostssl all app 127.0.0.1/32 scram-sha-256\n\
                   hostnossl all all 127.0.0.1/32 reject\n";
        std::fs::write(pg.dir.join("data/pg_hba.conf"), hba).unwrap();
        let reload = pg.pg_ctl(&["reload"]);
        assert!(reload.status.success(), "{reload:?}");
        let out = pg
            .as_owner(&pg.bin.join("psql"))
            .args(["-h", pg.dir.to_str().unwrap(), "-p", &pg.port.to_string()])
            .args(["-U", "postgres", "-d", "postgres", "-Atc"])
            .arg(format!("CREATE ROLE app LOGIN PASSWORD '{password}'"))
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        Some(pg)
    }

    pub fn init(password: Option<&str>, tls: bool) -> Option<Postgres> {
        let bin = std::fs::read_dir("/usr/lib/postgresql")
            .ok()?
            .flatten()
            .map(|e| e.path().join("bin"))
            .find(|b| b.join("initdb").exists());
        let Some(bin) = bin else {
            return missing("PostgreSQL (Debian package postgresql)");
        };
        let dir = scratch("postgres");
        let pg = Postgres {
            tls: tls.then(|| Certs::new(&dir)),
            dir,
            bin,
            port: free_port(),
        };
        if common::is_root() {
            // PostgreSQL refuses to run as root.
            let ok = Command::new("chown")
                .args(["-R", "postgres:"])
                .arg(&pg.dir)
                .status()
                .unwrap()
                .success();
            assert!(ok, "chown postgres failed");
        }
        let mut initdb = pg.as_owner(&pg.bin.join("initdb"));
        match password {
            None => initdb.args(["-A", "trust"]),
            Some(password) => {
                let file = pg.dir.join("pwfile");
                std::fs::write(&file, password).unwrap();
                initdb.args(["-A", "scram-sha-256", "--pwfile"]).arg(&file)
            }
        };
        let init = initdb
            .args(["-U", "postgres", "--no-sync", "-D"])
            .arg(pg.dir.join("data"))
            .output()
            .unwrap();
        assert!(init.status.success(), "initdb: {init:?}");
        let mut pg = pg;
        pg.start();
        Some(pg)
    }

    pub fn as_owner(&self, program: &Path) -> Command {
        if common::is_root() {
            let mut cmd = Command::new("runuser");
            cmd.args(["-u", "postgres", "--"]).arg(program);
            cmd
        } else {
            Command::new(program)
        }
    }

    /// `psql -Atc SQL` as the superuser, over TCP to this server.
    pub fn psql(&self, sql: &str) -> Command {
        let mut cmd = self.as_owner(&self.bin.join("psql"));
        cmd.args([
            "-h",
            "127.0.0.1",
            "-p",
            &self.port.to_string(),
            "-U",
            "postgres",
            "-Atc",
        ])
        .arg(sql);
        cmd
    }

    pub fn pg_ctl(&self, args: &[&str]) -> Output {
        self.as_owner(&self.bin.join("pg_ctl"))
            .arg("-D")
            .arg(self.dir.join("data"))
            .args(args)
            .output()
            .unwrap()
    }
}

#[cfg(feature = "postgres")]
/// libpq's default socket directory on Debian.
pub const DEFAULT_SOCKETS: &str = "/run/postgresql";

impl Server for Postgres {
    fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    fn start(&mut self) {
        // As root, also libpq's default socket directory (its socket file
        // carries the port, so it meets no other server's): a client that
        // names no host reaches the server there.
        let mut sockets = self.dir.display().to_string();
        if common::is_root() && std::fs::create_dir_all(DEFAULT_SOCKETS).is_ok() {
            let _ = Command::new("chown")
                .args(["postgres:", DEFAULT_SOCKETS])
                .status();
            sockets.push(',');
            sockets.push_str(DEFAULT_SOCKETS);
        }
        let mut opts = format!(
            "-p {} -k {sockets} -c listen_addresses=127.0.0.1 -c fsync=off",
            self.port,
        );
        if let Some(c) = &self.tls {
            opts.push_str(&format!(
                " -c ssl=on -c ssl_cert_file={} -c ssl_key_file={} -c ssl_ca_file={}",
                c.path("server.pem"),
                c.path("server.key"),
                c.path("ca.pem")
            ));
        }
        let log = self.dir.join("postgres.log");
        let out = self.pg_ctl(&["-w", "-o", &opts, "-l", log.to_str().unwrap(), "start"]);
        assert!(out.status.success(), "pg_ctl start: {out:?}");
    }

    fn stop(&mut self) {
        let _ = self.pg_ctl(&["-w", "-m", "fast", "stop"]);
    }
}

#[cfg(feature = "postgres")]
impl Drop for Postgres {
    fn drop(&mut self) {
        let _ = self.pg_ctl(&["-w", "-m", "immediate", "stop"]);
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// POSTs JSON to etcd's gateway with python3 (the tests have no HTTP
/// client of their own), over TLS with the client certificate when the
/// server wants it; returns the answer.
#[cfg(feature = "etcd")]
pub fn etcd_post(etcd: &Etcd, path: &str, body: &str, token: Option<&str>) -> String {
    let script = r#"
import ssl, sys, urllib.request
url, body, token, ca, cert, key = sys.argv[1:7]
context = None
if ca:
    context = ssl.create_default_context(cafile=ca)
    context.load_cert_chain(cert, key)
req = urllib.request.Request(url, data=body.encode(), method="POST")
if token:
    req.add_header("Authorization", token)
try:
    print(urllib.request.urlopen(req, timeout=10, context=context).read().decode())
except urllib.error.HTTPError as e:
    print(e.read().decode())
"#;
    let (scheme, files) = match &etcd.tls {
        Some(c) => (
            "https",
            [c.path("ca.pem"), c.path("client.pem"), c.path("client.key")],
        ),
        None => ("http", Default::default()),
    };
    let out = Command::new("python3")
        .args([
            "-c",
            script,
            &format!("{scheme}://127.0.0.1:{}{path}", etcd.client),
            body,
        ])
        .arg(token.unwrap_or(""))
        .args(&files)
        .output()
        .unwrap();
    String::from_utf8(out.stdout).unwrap()
}

/// How many `Range` requests the plain-HTTP etcd on `port` has been sent
/// so far, from its Prometheus `/metrics`.
#[cfg(feature = "etcd")]
pub fn range_requests(port: u16) -> u64 {
    use std::io::{Read, Write};
    let mut conn = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(conn, "GET /metrics HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").unwrap();
    let mut text = String::new();
    conn.read_to_string(&mut text).unwrap();
    let line = text
        .lines()
        .find(|l| {
            l.starts_with("grpc_server_started_total{")
                && l.contains(r#"grpc_method="Range""#)
                && l.contains(r#"grpc_service="etcdserverpb.KV""#)
        })
        .unwrap_or_else(|| panic!("no Range counter in etcd's /metrics"));
    line.rsplit(' ').next().unwrap().parse().unwrap()
}

/// etcd's auth, as `etcdctl user add root; etcdctl auth enable` does it,
/// with users `root` and `app` (both with `password`). `app` is what a
/// production client gets: role `abslock`, read-write on the `abslock/`
/// prefix only.
#[cfg(feature = "etcd")]
pub fn enable_auth(etcd: &Etcd, password: &str) {
    for (user, role) in [("root", "root"), ("app", "abslock")] {
        etcd_post(
            etcd,
            "/v3/auth/role/add",
            &format!(r#"{{"name":"{role}"}}"#),
            None,
        );
        let added = etcd_post(
            etcd,
            "/v3/auth/user/add",
            &format!(r#"{{"name":"{user}","password":"{password}"}}"#),
            None,
        );
        assert!(!added.contains("error"), "{added}");
        let granted = etcd_post(
            etcd,
            "/v3/auth/user/grant",
            &format!(r#"{{"user":"{user}","role":"{role}"}}"#),
            None,
        );
        assert!(!granted.contains("error"), "{granted}");
    }
    // READWRITE on [abslock/, abslock0): the prefix (base64 keys).
    let perm = etcd_post(
        etcd,
        "/v3/auth/role/grant",
        r#"{"name":"abslock","perm":{"permType":"READWRITE","key":"YWJzbG9jay8=","range_end":"YWJzbG9jazA="}}"#,
        None,
    );
    assert!(!perm.contains("error"), "{perm}");
    let enabled = etcd_post(etcd, "/v3/auth/enable", "{}", None);
    assert!(!enabled.contains("error"), "{enabled}");
}

// ---- a link the test can freeze ----------------------------------------------

/// A TCP relay on a free loopback port to `127.0.0.1:upstream`. Frozen,
/// it stops passing bytes either way but keeps every connection open: to
/// each end the link looks alive but silent, as a partitioned network or a
/// stalled middlebox does (etcd's keep-alives go unanswered; PostgreSQL's
/// server sees its data acknowledged by the relay and keeps the session).
pub struct Relay {
    pub port: u16,
    frozen: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl Relay {
    pub fn new(upstream: u16) -> Relay {
        use std::sync::atomic::{AtomicBool, Ordering};
        use std::sync::Arc;
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let frozen = Arc::new(AtomicBool::new(false));
        let f = Arc::clone(&frozen);
        std::thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(client) = client else { return };
                let Ok(server) = std::net::TcpStream::connect(("127.0.0.1", upstream)) else {
                    continue;
                };
                for (mut from, mut to) in [
                    (client.try_clone().unwrap(), server.try_clone().unwrap()),
                    (server, client),
                ] {
                    let f = Arc::clone(&f);
                    std::thread::spawn(move || {
                        use std::io::{Read, Write};
                        let mut buf = [0u8; 16384];
                        loop {
                            let n = match from.read(&mut buf) {
                                Ok(0) | Err(_) => break,
                                Ok(n) => n,
                            };
                            // Frozen: the bytes read are held back for good.
                            while f.load(Ordering::Acquire) {
                                std::thread::sleep(Duration::from_millis(50));
                            }
                            if to.write_all(&buf[..n]).is_err() {
                                break;
                            }
                        }
                        let _ = to.shutdown(std::net::Shutdown::Write);
                    });
                }
            }
        });
        Relay { port, frozen }
    }

    pub fn freeze(&self) {
        self.frozen
            .store(true, std::sync::atomic::Ordering::Release);
    }
}
