//! HTTPS for the stand-in: a private CA and a server certificate for `127.0.0.1`
//! ([`crate::certs`]), served with rustls (ring), so the
//! watcher's real TLS path (platform verifier plus `extra_ca_file`) is what the tests use.

use std::path::PathBuf;
use std::sync::Arc;

use rustls_pki_types::pem::PemObject as _;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::TlsAcceptor;

/// The CA, the server's key and certificate, and the acceptor serving them.
pub(super) struct Tls {
    pub acceptor: TlsAcceptor,
    pub ca_file: PathBuf,
    /// Holds the files; removed when the stand-in is dropped.
    pub dir: tempfile::TempDir,
}

/// Makes a CA and a server certificate for `127.0.0.1` in a new temporary directory.
pub(super) fn make() -> Tls {
    let dir = tempfile::tempdir().expect("temporary directory for the stand-in's certificates");
    let ca = crate::certs::PrivateCa::new(dir.path(), "postern Graph stand-in CA");
    let pair = ca.issue("cert");
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&pair.certificate)
        .expect("read cert.pem")
        .collect::<Result<_, _>>()
        .expect("parse cert.pem");
    let key = PrivateKeyDer::from_pem_file(&pair.key).expect("read key.pem");
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("TLS versions")
    .with_no_client_auth()
    .with_single_cert(chain, key)
    .expect("server certificate");
    Tls {
        acceptor: TlsAcceptor::from(Arc::new(config)),
        ca_file: ca.certificate(),
        dir,
    }
}
