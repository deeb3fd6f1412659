//! TLS for the cluster backends: the files that name the CA that signed
//! the server's certificate (else the system's trust store) and a client
//! certificate for servers that ask for one (etcd's `--client-cert-auth`,
//! PostgreSQL's `clientcert=`), and the hint an unknown issuer gets. etcd
//! checks everything, through tonic (`etcd::client`); PostgreSQL follows
//! libpq's `sslmode` (`verify`).

use std::path::PathBuf;

#[cfg(feature = "postgres")]
mod verify;
#[cfg(feature = "postgres")]
pub(crate) use verify::Verify;

/// The files of a TLS connection, as etcdctl's `--cacert`, `--cert` and
/// `--key` name them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct TlsFiles {
    pub(crate) cacert: Option<PathBuf>,
    pub(crate) cert: Option<PathBuf>,
    pub(crate) key: Option<PathBuf>,
}

/// `message` (a TLS failure's text), with what to do when the server's
/// certificate comes from a CA this host does not trust.
pub(crate) fn hint(message: String) -> String {
    if message.contains("UnknownIssuer") {
        format!(
            "{message}; the server's certificate is signed by a CA this host does not trust: \
             name it (etcd: ?cacert=FILE or ETCDCTL_CACERT; PostgreSQL: sslrootcert=FILE or \
             PGSSLROOTCERT), or add it to the system's trust store (or point SSL_CERT_FILE at it)"
        )
    } else {
        message
    }
}
