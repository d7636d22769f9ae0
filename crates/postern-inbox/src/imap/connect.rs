//! Opening a session: TCP, TLS (implicit or STARTTLS), authentication and `SELECT`, each step
//! under a timeout so a dead or silent server cannot hang the watcher.

use std::fmt::Debug;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use async_imap::imap_proto::{Response, Status};
use async_imap::types::Capability;
use async_imap::{Authenticator, Client};
use rustls_pki_types::pem::PemObject as _;
use rustls_pki_types::{CertificateDer, ServerName};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::rustls;

use super::limit::{Capped, too_large};
use super::{ImapError, ImapSettings, Security};
use crate::imap::settings::Auth;

/// Any byte stream a session can run over (plain TCP or TLS).
pub(crate) trait Io: AsyncRead + AsyncWrite + Unpin + Send + Debug {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send + Debug> Io for T {}

/// A logged-in session over plain TCP or TLS.
pub(crate) type Session = async_imap::Session<Box<dyn Io>>;

/// What the server offers that changes how the watcher works.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Features {
    /// `IDLE` (RFC 2177): wait for new mail without polling.
    pub idle: bool,
    /// `UIDPLUS` (RFC 4315): `UID EXPUNGE` removes only the given messages.
    pub uidplus: bool,
}

/// A session with the folder selected.
pub(crate) struct Opened {
    pub session: Session,
    /// UIDVALIDITY of the folder.
    pub validity: u32,
    /// Messages in the folder at `SELECT`.
    pub exists: u32,
    pub features: Features,
    /// Every capability the server announced after login, as text.
    pub capabilities: Vec<String>,
}

/// Runs `step` under the settings' command timeout; `what` names it in the error.
pub(crate) async fn timed<T>(
    settings: &ImapSettings,
    what: &str,
    step: impl Future<Output = Result<T, ImapError>>,
) -> Result<T, ImapError> {
    within(settings.config().command_timeout, what, step).await
}

/// Runs `step` for at most `limit`.
pub(crate) async fn within<T>(
    limit: Duration,
    what: &str,
    step: impl Future<Output = Result<T, ImapError>>,
) -> Result<T, ImapError> {
    match tokio::time::timeout(limit, step).await {
        Ok(result) => result,
        Err(_) => Err(ImapError::Timeout(format!(
            "{what} took longer than {} s",
            limit.as_secs_f32()
        ))),
    }
}

/// An error from async-imap as text: without the password, and short, because some errors
/// quote the server's whole response, which may be message text.
pub(crate) fn describe(settings: &ImapSettings, error: &dyn std::fmt::Display) -> String {
    let mut text = error.to_string();
    if let Some(password) = settings.config().auth.password() {
        text = password.scrub(&text);
    }
    if text.len() > 200 {
        let mut cut = 200;
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        text.truncate(cut);
        text.push('…');
    }
    text
}

fn protocol(settings: &ImapSettings, what: &str, error: async_imap::error::Error) -> ImapError {
    match error {
        // A server over the response caps is broken or hostile, not merely disconnected.
        async_imap::error::Error::Io(ref io) if too_large(io).is_some() => {
            ImapError::Protocol(format!("{what}: {}", describe(settings, io)))
        }
        async_imap::error::Error::Io(_) | async_imap::error::Error::ConnectionLost => {
            ImapError::Connection(format!("{what}: {}", describe(settings, &error)))
        }
        other => ImapError::Protocol(format!("{what}: {}", describe(settings, &other))),
    }
}

/// Connects, protects, authenticates and selects the folder.
pub(crate) async fn open(settings: &ImapSettings) -> Result<Opened, ImapError> {
    let config = settings.config();
    let tcp = timed(settings, "connecting", async {
        TcpStream::connect((config.host.as_str(), config.port))
            .await
            .map_err(|e| {
                ImapError::Connection(format!(
                    "connecting to {}:{}: {e}",
                    config.host, config.port
                ))
            })
    })
    .await?;
    tcp.set_nodelay(true).ok();

    // Every byte from the server passes the response caps (see `limit`).
    let largest = config.max_message_size;
    let client = match config.security {
        Security::Plain => {
            let mut client = Client::new(Box::new(Capped::new(tcp, largest)) as Box<dyn Io>);
            timed(settings, "greeting", greeting(settings, &mut client)).await?;
            client
        }
        Security::ImplicitTls => {
            let stream: Box<dyn Io> = Box::new(Capped::new(tls(settings, tcp).await?, largest));
            let mut client = Client::new(stream);
            timed(settings, "greeting", greeting(settings, &mut client)).await?;
            client
        }
        Security::StartTls => {
            let mut client = Client::new(Capped::new(tcp, largest));
            timed(settings, "greeting", greeting(settings, &mut client)).await?;
            timed(settings, "STARTTLS", async {
                client
                    .run_command_and_check_ok("STARTTLS", None)
                    .await
                    .map_err(|e| {
                        ImapError::Tls(format!(
                            "the server refused STARTTLS: {}",
                            describe(settings, &e)
                        ))
                    })
            })
            .await?;
            // The server says nothing more until the handshake, so no buffered bytes are lost
            // by taking the stream back.
            let tcp = client.into_inner().into_inner();
            let stream: Box<dyn Io> = Box::new(Capped::new(tls(settings, tcp).await?, largest));
            Client::new(stream)
        }
    };
    login_and_select(settings, client).await
}

/// Reads the server's greeting: `* OK` goes on, anything else (`BYE`) is an error.
async fn greeting<T: Io>(settings: &ImapSettings, client: &mut Client<T>) -> Result<(), ImapError> {
    let response = client
        .read_response()
        .await
        .map_err(|e| ImapError::Connection(format!("greeting: {}", describe(settings, &e))))?
        .ok_or_else(|| ImapError::Connection("the server closed the connection".to_owned()))?;
    match response.parsed() {
        Response::Data {
            status: Status::Ok, ..
        } => Ok(()),
        Response::Data {
            status: Status::PreAuth,
            ..
        } => Err(ImapError::Protocol(
            "the server pre-authenticated the connection; refusing an unknown identity".to_owned(),
        )),
        _ => Err(ImapError::Connection(
            "the server refused the connection in its greeting".to_owned(),
        )),
    }
}

/// The TLS layer: the platform's roots plus the optional extra CA file, rustls with ring.
async fn tls(
    settings: &ImapSettings,
    tcp: TcpStream,
) -> Result<tokio_rustls::client::TlsStream<TcpStream>, ImapError> {
    let config = settings.config();
    let mut extra = Vec::new();
    if let Some(path) = &config.extra_ca_file {
        for cert in CertificateDer::pem_file_iter(path)
            .map_err(|e| ImapError::Config(format!("CA file {}: {e}", path.display())))?
        {
            extra.push(
                cert.map_err(|e| ImapError::Config(format!("CA file {}: {e}", path.display())))?,
            );
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let verifier =
        rustls_platform_verifier::Verifier::new_with_extra_roots(extra, provider.clone())
            .map_err(|e| ImapError::Tls(format!("certificate roots: {e}")))?;
    let client_config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| ImapError::Tls(e.to_string()))?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(verifier))
        .with_no_client_auth();
    let host = config.host.trim_start_matches('[').trim_end_matches(']');
    let name = ServerName::try_from(host.to_owned())
        .map_err(|e| ImapError::Config(format!("host {host}: {e}")))?;
    timed(settings, "TLS handshake", async {
        TlsConnector::from(Arc::new(client_config))
            .connect(name, tcp)
            .await
            .map_err(|e| ImapError::Tls(format!("TLS with {host}: {e}")))
    })
    .await
}

/// SASL PLAIN (RFC 4616): one response, `\0user\0password`.
struct PlainSasl<'a> {
    user: &'a str,
    password: &'a str,
}

impl Authenticator for PlainSasl<'_> {
    type Response = Vec<u8>;
    fn process(&mut self, _challenge: &[u8]) -> Vec<u8> {
        format!("\0{}\0{}", self.user, self.password).into_bytes()
    }
}

/// XOAUTH2 and OAUTHBEARER (RFC 7628): the bearer token first; when the server answers with
/// an error challenge (a JSON description), the response that ends the exchange (empty for
/// XOAUTH2, `%x01` for OAUTHBEARER), after which it sends the tagged `NO`.
struct BearerSasl<'a> {
    standard: bool,
    user: &'a str,
    host: &'a str,
    port: u16,
    token: &'a str,
    sent: bool,
}

impl Authenticator for BearerSasl<'_> {
    type Response = Vec<u8>;
    fn process(&mut self, _challenge: &[u8]) -> Vec<u8> {
        let again = std::mem::replace(&mut self.sent, true);
        match (self.standard, again) {
            (false, false) => {
                format!("user={}\x01auth=Bearer {}\x01\x01", self.user, self.token).into_bytes()
            }
            (false, true) => Vec::new(),
            (true, false) => {
                // The GS2 header's authzid is a saslname: `,` and `=` escaped (RFC 5801).
                let user = self.user.replace('=', "=3D").replace(',', "=2C");
                format!(
                    "n,a={user},\x01host={}\x01port={}\x01auth=Bearer {}\x01\x01",
                    self.host, self.port, self.token
                )
                .into_bytes()
            }
            (true, true) => vec![1],
        }
    }
}

async fn authenticate(
    settings: &ImapSettings,
    client: Client<Box<dyn Io>>,
) -> Result<Session, ImapError> {
    let config = settings.config();
    let refused = |e: async_imap::error::Error| match e {
        async_imap::error::Error::No(_) | async_imap::error::Error::Bad(_) => {
            ImapError::Auth(format!(
                "the server refused the login of {}: {}",
                config.user,
                describe(settings, &e)
            ))
        }
        other => protocol(settings, "login", other),
    };
    match &config.auth {
        Auth::Login { password } => {
            timed(settings, "LOGIN", async {
                client
                    .login(&config.user, password.expose())
                    .await
                    .map_err(|(e, _)| refused(e))
            })
            .await
        }
        Auth::Plain { password } => {
            timed(settings, "AUTHENTICATE PLAIN", async {
                let sasl = PlainSasl {
                    user: &config.user,
                    password: password.expose(),
                };
                client
                    .authenticate("PLAIN", sasl)
                    .await
                    .map_err(|(e, _)| refused(e))
            })
            .await
        }
        Auth::XOAuth2 { tokens } | Auth::OAuthBearer { tokens } => {
            let standard = matches!(&config.auth, Auth::OAuthBearer { .. });
            let mechanism = if standard { "OAUTHBEARER" } else { "XOAUTH2" };
            let mut client = client;
            for refresh in [false, true] {
                let token = timed(settings, "getting an access token", async {
                    tokens
                        .access_token(refresh)
                        .await
                        .map_err(|e| ImapError::Auth(format!("access token: {e}")))
                })
                .await?;
                let sasl = BearerSasl {
                    standard,
                    user: &config.user,
                    host: &config.host,
                    port: config.port,
                    token: token.expose(),
                    sent: false,
                };
                let attempt = timed(settings, "AUTHENTICATE", async {
                    Ok(client.authenticate(mechanism, sasl).await)
                })
                .await?;
                match attempt {
                    Ok(session) => return Ok(session),
                    Err((e @ async_imap::error::Error::No(_), back)) if !refresh => {
                        tracing::info!(
                            mailbox = %config.name,
                            error = %describe(settings, &e),
                            "the server refused the access token; asking for a fresh one"
                        );
                        client = back;
                    }
                    Err((e, _)) => {
                        return Err(ImapError::Auth(token.scrub(&refused(e).to_string())));
                    }
                }
            }
            Err(ImapError::Auth(
                "the server refused the access token".to_owned(),
            ))
        }
    }
}

async fn login_and_select(
    settings: &ImapSettings,
    client: Client<Box<dyn Io>>,
) -> Result<Opened, ImapError> {
    let mut session = authenticate(settings, client).await?;
    let announced = timed(settings, "CAPABILITY", async {
        session
            .capabilities()
            .await
            .map_err(|e| protocol(settings, "CAPABILITY", e))
    })
    .await?;
    let mut capabilities: Vec<String> = announced
        .iter()
        .map(|c| match c {
            Capability::Imap4rev1 => "IMAP4rev1".to_owned(),
            Capability::Auth(m) => format!("AUTH={m}"),
            Capability::Atom(a) => a.clone(),
        })
        .collect();
    capabilities.sort();
    let features = Features {
        idle: announced.has_str("IDLE"),
        uidplus: announced.has_str("UIDPLUS"),
    };
    let mailbox = &settings.config().mailbox;
    let selected = timed(settings, "SELECT", async {
        session.select(mailbox).await.map_err(|e| match e {
            async_imap::error::Error::No(_) => ImapError::Mailbox(format!(
                "cannot open folder {mailbox:?}: {}",
                describe(settings, &e)
            )),
            other => protocol(settings, "SELECT", other),
        })
    })
    .await?;
    let validity = selected.uid_validity.ok_or_else(|| {
        ImapError::Protocol(format!("the server gave no UIDVALIDITY for {mailbox:?}"))
    })?;
    Ok(Opened {
        session,
        validity,
        exists: selected.exists,
        features,
        capabilities,
    })
}

/// `ImapError` for a failed command on an open session.
pub(crate) fn command_error(
    settings: &ImapSettings,
    what: &str,
    error: async_imap::error::Error,
) -> ImapError {
    protocol(settings, what, error)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sasl(standard: bool) -> BearerSasl<'static> {
        BearerSasl {
            standard,
            user: "a,b=c@example.com",
            host: "imap.example.com",
            port: 993,
            token: "ya29.token",
            sent: false,
        }
    }

    #[test]
    fn bearer_responses_for_both_mechanisms() {
        let mut xoauth2 = sasl(false);
        assert_eq!(
            xoauth2.process(b""),
            b"user=a,b=c@example.com\x01auth=Bearer ya29.token\x01\x01".to_vec()
        );
        assert_eq!(xoauth2.process(b"{\"status\":\"401\"}"), Vec::<u8>::new());

        // RFC 7628: a GS2 header whose authzid escapes `,` and `=`, then host and port.
        let mut bearer = sasl(true);
        assert_eq!(
            bearer.process(b""),
            b"n,a=a=2Cb=3Dc@example.com,\x01host=imap.example.com\x01port=993\x01auth=Bearer ya29.token\x01\x01"
                .to_vec()
        );
        assert_eq!(bearer.process(b"{\"status\":\"invalid_token\"}"), vec![1]);
    }
}
