//! TLS for the etcd backend, with rustls: the CA that signed the server's
//! certificate (else the public web roots), and a client certificate for
//! servers started with `--client-cert-auth`. The server's name (or IP
//! address) is checked against its certificate, as rustls always does.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::{ClientConfig, RootCertStore};

use crate::{Error, Result};

/// The files of a TLS connection, as etcdctl's `--cacert`, `--cert` and
/// `--key` name them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct TlsFiles {
    pub(crate) cacert: Option<PathBuf>,
    pub(crate) cert: Option<PathBuf>,
    pub(crate) key: Option<PathBuf>,
}

fn unreadable(what: &str, path: &Path, e: impl std::fmt::Display) -> Error {
    Error::Engine(format!(
        "TLS {what} {}: {e}",
        abslock::escape::escape_str(&path.to_string_lossy())
    ))
}

impl TlsFiles {
    /// The rustls configuration these files describe.
    pub(crate) fn client_config(&self) -> Result<Arc<ClientConfig>> {
        let mut roots = RootCertStore::empty();
        match &self.cacert {
            Some(path) => {
                for cert in CertificateDer::pem_file_iter(path)
                    .map_err(|e| unreadable("CA file", path, e))?
                {
                    let cert = cert.map_err(|e| unreadable("CA file", path, e))?;
                    roots
                        .add(cert)
                        .map_err(|e| unreadable("CA file", path, e))?;
                }
                if roots.is_empty() {
                    return Err(unreadable("CA file", path, "no certificate in it"));
                }
            }
            None => roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| Error::Engine(format!("TLS: {e}")))?
            .with_root_certificates(roots);
        let config = match (&self.cert, &self.key) {
            (None, None) => builder.with_no_client_auth(),
            (Some(cert), Some(key)) => {
                let chain = CertificateDer::pem_file_iter(cert)
                    .map_err(|e| unreadable("certificate", cert, e))?
                    .collect::<std::result::Result<Vec<_>, _>>()
                    .map_err(|e| unreadable("certificate", cert, e))?;
                let key_der =
                    PrivateKeyDer::from_pem_file(key).map_err(|e| unreadable("key", key, e))?;
                builder
                    .with_client_auth_cert(chain, key_der)
                    .map_err(|e| unreadable("certificate", cert, e))?
            }
            _ => {
                return Err(Error::InvalidUrl(
                    "a client certificate needs its key, and a key its certificate (cert= and key=, or ETCDCTL_CERT and ETCDCTL_KEY)"
                        .into(),
                ))
            }
        };
        Ok(Arc::new(config))
    }
}
