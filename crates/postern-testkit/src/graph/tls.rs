//! HTTPS for the stand-in: a private CA and a server certificate for `127.0.0.1` made with
//! Debian's `openssl` (as scripts/mailserver.sh does), served with rustls (ring), so the
//! watcher's real TLS path (platform verifier plus `extra_ca_file`) is what the tests use.

use std::path::{Path, PathBuf};
use std::process::Command;
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

/// Makes a CA and a server certificate (EC P-256; `CA:FALSE` on the server's, which webpki
/// requires) in a new temporary directory.
pub(super) fn make() -> Tls {
    let dir = tempfile::tempdir().expect("temporary directory for the stand-in's certificates");
    let path = |name: &str| dir.path().join(name);
    openssl(&[
        "req",
        "-x509",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
        "-days",
        "30",
        "-subj",
        "/CN=postern Graph stand-in CA",
        "-addext",
        "basicConstraints=critical,CA:TRUE",
        "-addext",
        "keyUsage=critical,keyCertSign,cRLSign",
        "-keyout",
        &arg(&path("ca.key")),
        "-out",
        &arg(&path("ca.pem")),
    ]);
    openssl(&[
        "req",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
        "-subj",
        "/CN=127.0.0.1",
        "-keyout",
        &arg(&path("key.pem")),
        "-out",
        &arg(&path("cert.csr")),
    ]);
    std::fs::write(
        path("cert.ext"),
        "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=critical,CA:FALSE\n\
         keyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n",
    )
    .expect("write cert.ext");
    openssl(&[
        "x509",
        "-req",
        "-in",
        &arg(&path("cert.csr")),
        "-CA",
        &arg(&path("ca.pem")),
        "-CAkey",
        &arg(&path("ca.key")),
        "-CAcreateserial",
        "-days",
        "30",
        "-extfile",
        &arg(&path("cert.ext")),
        "-out",
        &arg(&path("cert.pem")),
    ]);
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(path("cert.pem"))
        .expect("read cert.pem")
        .collect::<Result<_, _>>()
        .expect("parse cert.pem");
    let key = PrivateKeyDer::from_pem_file(path("key.pem")).expect("read key.pem");
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
        ca_file: path("ca.pem"),
        dir,
    }
}

fn arg(path: &Path) -> String {
    path.display().to_string()
}

fn openssl(args: &[&str]) {
    let output = Command::new("openssl")
        .args(args)
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "running openssl failed ({e}): apt-get install openssl, or run bash scripts/test.sh"
            )
        });
    assert!(
        output.status.success(),
        "openssl {} failed: {}",
        args.first().copied().unwrap_or_default(),
        String::from_utf8_lossy(&output.stderr)
    );
}
