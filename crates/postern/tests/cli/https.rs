//! A small HTTP/1.1 client for the tests, over TLS (rustls with ring, trusting one private CA)
//! or plain TCP: one request per connection, from a chosen loopback source address, returning
//! the response and the certificate the server presented.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use rustls_pki_types::pem::PemObject as _;
use rustls_pki_types::{CertificateDer, ServerName};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

/// What a test fails with.
pub type Error = Box<dyn std::error::Error + Send + Sync>;

const BOUND: Duration = Duration::from_secs(30);

/// One response.
#[derive(Debug)]
pub struct Reply {
    /// The status code.
    pub status: u16,
    /// The response head (status line and headers).
    pub head: String,
    /// The body, lossily decoded.
    pub body: String,
    /// The DER of the certificate the server presented.
    pub certificate: Vec<u8>,
}

impl Reply {
    /// The first `Set-Cookie` line for cookie `name`, whole (attributes included).
    pub fn set_cookie(&self, name: &str) -> Option<String> {
        let prefix = format!("set-cookie: {name}=");
        self.head
            .lines()
            .find(|line| line.to_ascii_lowercase().starts_with(&prefix))
            .map(|line| line["set-cookie: ".len()..].to_owned())
    }

    /// `name=value` of cookie `name`, for a `Cookie` header.
    pub fn cookie_pair(&self, name: &str) -> Option<String> {
        self.set_cookie(name)
            .and_then(|line| line.split(';').next().map(str::to_owned))
    }

    /// The page's CSRF token.
    pub fn csrf(&self) -> Option<String> {
        let marker = "name=\"csrf\" value=\"";
        let start = self.body.find(marker)? + marker.len();
        let end = self.body[start..].find('"')? + start;
        Some(self.body[start..end].to_owned())
    }
}

/// A client connecting from `source`, over TLS to servers whose certificates a CA signed, or
/// in plain HTTP.
pub struct Client {
    connector: Option<tokio_rustls::TlsConnector>,
    source: IpAddr,
}

/// What a connection runs over.
trait Stream: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send {}
impl<T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send> Stream for T {}

impl Client {
    pub fn new(ca_file: &Path, source: Ipv4Addr) -> Result<Client, Error> {
        let mut roots = rustls::RootCertStore::empty();
        for certificate in CertificateDer::pem_file_iter(ca_file)? {
            roots.add(certificate?)?;
        }
        let config = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth();
        // Every connection does a full handshake: a resumed session would show the certificate
        // of the session it resumes, not the one the server serves now.
        let mut config = config;
        config.resumption = rustls::client::Resumption::disabled();
        Ok(Client {
            connector: Some(tokio_rustls::TlsConnector::from(Arc::new(config))),
            source: IpAddr::V4(source),
        })
    }

    /// A plain-HTTP client connecting from `source`.
    pub fn plain(source: Ipv4Addr) -> Client {
        Client {
            connector: None,
            source: IpAddr::V4(source),
        }
    }

    /// `GET path` with optional extra header lines (each ending in `\r\n`).
    pub async fn get(&self, port: u16, path: &str, headers: &str) -> Result<Reply, Error> {
        let request = format!(
            "GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n{headers}Connection: close\r\n\r\n"
        );
        self.send(port, &request).await
    }

    /// `POST path` of a URL-encoded form, with extra header lines.
    pub async fn post_form(
        &self,
        port: u16,
        path: &str,
        headers: &str,
        fields: &[(&str, &str)],
    ) -> Result<Reply, Error> {
        let body: Vec<String> = fields
            .iter()
            .map(|(name, value)| format!("{}={}", encode(name), encode(value)))
            .collect();
        let body = body.join("&");
        let request = format!(
            "POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n{headers}\
             Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\
             Connection: close\r\n\r\n{body}",
            body.len()
        );
        self.send(port, &request).await
    }

    async fn send(&self, port: u16, request: &str) -> Result<Reply, Error> {
        let connection = self.connect(port).await?;
        connection.send(request).await
    }

    /// A connection (with its TLS handshake done), for a request sent later.
    pub async fn connect(&self, port: u16) -> Result<Connection, Error> {
        let handshake = async {
            let socket = tokio::net::TcpSocket::new_v4()?;
            socket.bind(SocketAddr::new(self.source, 0))?;
            let tcp = socket
                .connect(SocketAddr::from(([127, 0, 0, 1], port)))
                .await?;
            let Some(connector) = &self.connector else {
                return Ok::<_, Error>((Box::new(tcp) as Box<dyn Stream>, Vec::new()));
            };
            let name = ServerName::IpAddress(Ipv4Addr::LOCALHOST.into());
            let tls = connector.connect(name, tcp).await?;
            let certificate = tls
                .get_ref()
                .1
                .peer_certificates()
                .and_then(|chain| chain.first())
                .map(|der| der.as_ref().to_vec())
                .ok_or("the server presented no certificate")?;
            Ok((Box::new(tls) as Box<dyn Stream>, certificate))
        };
        let (stream, certificate) = tokio::time::timeout(BOUND, handshake)
            .await
            .map_err(|_| format!("no connection to 127.0.0.1:{port} in {BOUND:?}"))??;
        Ok(Connection {
            stream,
            certificate,
        })
    }
}

/// An open connection.
pub struct Connection {
    stream: Box<dyn Stream>,
    /// The DER of the certificate the server presented in the handshake (empty in plain HTTP).
    pub certificate: Vec<u8>,
}

impl Connection {
    /// `GET path` on this connection (its last request).
    pub async fn get(self, port: u16, path: &str) -> Result<Reply, Error> {
        let request =
            format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n");
        self.send(&request).await
    }

    async fn send(self, request: &str) -> Result<Reply, Error> {
        tokio::time::timeout(BOUND, self.exchange(request))
            .await
            .map_err(|_| format!("no answer in {BOUND:?}"))?
    }

    async fn exchange(mut self, request: &str) -> Result<Reply, Error> {
        self.stream.write_all(request.as_bytes()).await?;
        let mut response = Vec::new();
        match self.stream.read_to_end(&mut response).await {
            Ok(_) => {}
            // A server may close without TLS's close_notify once the response is complete.
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof && !response.is_empty() => {}
            Err(e) => return Err(e.into()),
        }
        let response = String::from_utf8_lossy(&response).into_owned();
        let (head, body) = response
            .split_once("\r\n\r\n")
            .ok_or_else(|| format!("not an HTTP response: {response:?}"))?;
        let status = head
            .split(' ')
            .nth(1)
            .and_then(|code| code.parse().ok())
            .ok_or_else(|| format!("no status in {head:?}"))?;
        Ok(Reply {
            status,
            head: head.to_owned(),
            body: body.to_owned(),
            certificate: self.certificate,
        })
    }
}

/// The DER of the first certificate in a PEM file.
pub fn certificate_der(path: &Path) -> Vec<u8> {
    CertificateDer::from_pem_file(path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
        .as_ref()
        .to_vec()
}

fn encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}
