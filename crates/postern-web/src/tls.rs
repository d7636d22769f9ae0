//! HTTPS of postern's own (`web.tls`), for installations without a reverse proxy: rustls with
//! ring, one certificate chain and key from PEM files, swapped in place on reload.
//!
//! The server configuration is built once and asks [`ServerCertificate`] for the certificate at
//! every handshake, so a reload changes what new connections are served without closing the
//! listener or any open connection. A pair that does not load (missing, unreadable, not PEM, or
//! a key that does not belong to the certificate) is an error and changes nothing.
//!
//! Handshakes run in tasks of their own, at most [`MAX_HANDSHAKES`] at once and each for at
//! most [`HANDSHAKE_TIMEOUT`], so a client that never finishes its hello holds up nobody.

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use rustls::crypto::CryptoProvider;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls_pki_types::pem::PemObject as _;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, mpsc};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;

/// How long a client has for its TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Handshakes in progress at once; further connections wait in the kernel's backlog.
const MAX_HANDSHAKES: usize = 256;

/// Why a certificate and key could not be used. The message names the file and the problem,
/// never a byte of the key.
#[derive(Debug)]
pub struct TlsError(String);

impl fmt::Display for TlsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for TlsError {}

/// The certificate chain and key files of `web.tls`, and the pair currently served.
#[derive(Debug)]
pub struct ServerCertificate {
    certificate_file: PathBuf,
    key_file: PathBuf,
    current: RwLock<Arc<CertifiedKey>>,
}

impl ServerCertificate {
    /// Loads the pair, or says which file is wrong and how.
    pub fn load(certificate_file: &Path, key_file: &Path) -> Result<ServerCertificate, TlsError> {
        let pair = read_pair(certificate_file, key_file)?;
        Ok(ServerCertificate {
            certificate_file: certificate_file.to_owned(),
            key_file: key_file.to_owned(),
            current: RwLock::new(Arc::new(pair)),
        })
    }

    /// Reads both files again and serves the new pair to new connections. On error the pair
    /// in use stays.
    pub fn reload(&self) -> Result<(), TlsError> {
        let pair = Arc::new(read_pair(&self.certificate_file, &self.key_file)?);
        match self.current.write() {
            Ok(mut current) => *current = pair,
            // A poisoned lock only means a panic elsewhere while swapping an `Arc`: the value
            // is whole either way.
            Err(poisoned) => *poisoned.into_inner() = pair,
        }
        Ok(())
    }

    fn current(&self) -> Arc<CertifiedKey> {
        match self.current.read() {
            Ok(current) => current.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }
}

impl ResolvesServerCert for ServerCertificate {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current())
    }
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn read_pair(certificate_file: &Path, key_file: &Path) -> Result<CertifiedKey, TlsError> {
    let certificate_bytes = read("web.tls.certificate", certificate_file)?;
    let chain = CertificateDer::pem_slice_iter(&certificate_bytes)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| {
            TlsError(format!(
                "web.tls.certificate: {} is not a PEM certificate chain: {e}",
                certificate_file.display()
            ))
        })?;
    if chain.is_empty() {
        return Err(TlsError(format!(
            "web.tls.certificate: {} holds no certificate",
            certificate_file.display()
        )));
    }
    let key_bytes = read("web.tls.key", key_file)?;
    // The parser's error says what it expected, not what it read: no key material leaks.
    let key = PrivateKeyDer::from_pem_slice(&key_bytes).map_err(|e| {
        TlsError(format!(
            "web.tls.key: {} holds no usable private key: {e}",
            key_file.display()
        ))
    })?;
    CertifiedKey::from_der(chain, key, &provider()).map_err(|e| {
        TlsError(format!(
            "web.tls: the key in {} does not go with the certificate in {}: {e}",
            key_file.display(),
            certificate_file.display()
        ))
    })
}

fn read(setting: &str, path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path)
        .map_err(|e| TlsError(format!("{setting}: cannot read {}: {e}", path.display())))
}

/// A listener that hands axum connections whose TLS handshake is done. The TCP accept loop
/// runs in a task of its own and ends when this listener is dropped.
pub(crate) struct TlsListener {
    ready: mpsc::Receiver<(TlsStream<TcpStream>, SocketAddr)>,
    local: SocketAddr,
}

impl TlsListener {
    pub(crate) fn new(
        listener: TcpListener,
        certificate: Arc<ServerCertificate>,
    ) -> std::io::Result<TlsListener> {
        let local = listener.local_addr()?;
        let mut config = rustls::ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(std::io::Error::other)?
            .with_no_client_auth()
            .with_cert_resolver(certificate);
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        let acceptor = TlsAcceptor::from(Arc::new(config));
        let (sender, ready) = mpsc::channel(MAX_HANDSHAKES);
        tokio::spawn(accept_loop(listener, acceptor, sender));
        Ok(TlsListener { ready, local })
    }
}

async fn accept_loop(
    listener: TcpListener,
    acceptor: TlsAcceptor,
    ready: mpsc::Sender<(TlsStream<TcpStream>, SocketAddr)>,
) {
    let handshakes = Arc::new(Semaphore::new(MAX_HANDSHAKES));
    loop {
        let Ok(permit) = handshakes.clone().acquire_owned().await else {
            return;
        };
        let accepted = tokio::select! {
            _ = ready.closed() => return,
            accepted = listener.accept() => accepted,
        };
        let (stream, peer) = match accepted {
            Ok(connection) => connection,
            Err(e) => {
                // Out of file descriptors and the like: wait a little rather than spin.
                tracing::warn!(error = %e, "web: cannot accept a connection");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let acceptor = acceptor.clone();
        let ready = ready.clone();
        tokio::spawn(async move {
            let _permit = permit;
            match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                Ok(Ok(tls)) => {
                    let _ = ready.send((tls, peer)).await;
                }
                Ok(Err(e)) => {
                    tracing::debug!(client = %peer, error = %e, "web: TLS handshake failed")
                }
                Err(_) => tracing::debug!(client = %peer, "web: TLS handshake timed out"),
            }
        });
    }
}

impl axum::serve::Listener for TlsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.ready.recv().await {
            Some(connection) => connection,
            // The accept loop only ends once this receiver is gone; until then, wait.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        Ok(self.local)
    }
}
