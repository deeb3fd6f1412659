//! rustls configurations for PostgreSQL's `sslmode`: how much of the
//! server's certificate is checked ([`Verify`]), the CAs trusted, and the
//! client certificate. (etcd's TLS is tonic's, in `etcd::client`.)

use std::path::Path;
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{
    CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme,
};

use super::TlsFiles;
use crate::{Error, Result};

fn unreadable(what: &str, path: &Path, e: impl std::fmt::Display) -> Error {
    Error::Engine(format!("TLS {what} {}: {e}", path.display()))
}

/// How much of the server's certificate is checked. (etcd always checks
/// it all: the weaker levels exist for PostgreSQL's `sslmode`.)
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verify {
    /// The chain up to a trusted CA, and the name (libpq's `verify-full`).
    Full,
    /// The chain only (libpq's `verify-ca`).
    Chain,
    /// Nothing but the handshake's signatures: encryption against a
    /// passive listener only (libpq's `require` and `prefer`).
    Nothing,
}

impl TlsFiles {
    /// The rustls configuration these files describe.
    pub(crate) fn config(&self, verify: Verify) -> Result<ClientConfig> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = ClientConfig::builder_with_provider(Arc::clone(&provider))
            .with_safe_default_protocol_versions()
            .map_err(|e| Error::Engine(format!("TLS: {e}")))?;
        let builder = match verify {
            Verify::Full => builder.with_root_certificates(self.roots()?),
            Verify::Chain => {
                let webpki = WebPkiServerVerifier::builder_with_provider(
                    Arc::new(self.roots()?),
                    Arc::clone(&provider),
                )
                .build()
                .map_err(|e| Error::Engine(format!("TLS: {e}")))?;
                builder
                    .dangerous()
                    .with_custom_certificate_verifier(Arc::new(Relaxed {
                        chain: Some(webpki),
                        provider,
                    }))
            }
            Verify::Nothing => builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(Relaxed {
                    chain: None,
                    provider,
                })),
        };
        match (&self.cert, &self.key) {
            (None, None) => Ok(builder.with_no_client_auth()),
            (Some(cert), Some(key)) => {
                let chain = CertificateDer::pem_file_iter(cert)
                    .map_err(|e| unreadable("certificate", cert, e))?
                    .collect::<std::result::Result<Vec<_>, _>>()
                    .map_err(|e| unreadable("certificate", cert, e))?;
                let key_der =
                    PrivateKeyDer::from_pem_file(key).map_err(|e| unreadable("key", key, e))?;
                builder
                    .with_client_auth_cert(chain, key_der)
                    .map_err(|e| unreadable("certificate", cert, e))
            }
            _ => Err(Error::InvalidUrl(
                "a client certificate needs its key, and a key its certificate".into(),
            )),
        }
    }

    /// The CAs in `cacert`, else the system's trust store (as OpenSSL
    /// finds it: `SSL_CERT_FILE`, `SSL_CERT_DIR`, else the distribution's
    /// bundle, `/etc/ssl/certs` on Debian), as etcdctl and libpq's
    /// `sslrootcert=system` use it; the public web roots where the system
    /// has none (a minimal container).
    fn roots(&self) -> Result<RootCertStore> {
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
            None => {
                let system = rustls_native_certs::load_native_certs();
                roots.add_parsable_certificates(system.certs);
                if roots.is_empty() {
                    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
                }
            }
        }
        Ok(roots)
    }
}

/// libpq's weaker modes: `verify-ca` (`chain`: the chain must lead to a
/// trusted CA, the name in the certificate is not compared with the host)
/// and `require` (no `chain`: any certificate). Either way the handshake
/// must be signed by the certificate's key.
#[derive(Debug)]
struct Relaxed {
    chain: Option<Arc<WebPkiServerVerifier>>,
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for Relaxed {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> std::result::Result<ServerCertVerified, rustls::Error> {
        let Some(chain) = &self.chain else {
            return Ok(ServerCertVerified::assertion());
        };
        match chain.verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now) {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}
