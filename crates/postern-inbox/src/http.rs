//! The HTTP client shared by the token source and the Microsoft Graph watcher.
//!
//! rustls with the `ring` provider (builds without cmake), the platform's certificate verifier
//! plus an optional private CA, keep-alive connections, a connect timeout, and no redirects: a
//! redirect would carry a bearer token somewhere nobody configured. Endpoints must be `https`;
//! plain `http` is accepted only for loopback hosts, where tests run their stand-ins.

use std::net::IpAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

/// The URL type of every endpoint setting (re-exported so callers need no HTTP crate).
pub use reqwest::Url;
use rustls::client::ClientConfig;
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject as _;
use rustls_platform_verifier::Verifier;

/// How long connecting (TCP and TLS) may take.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long an idle keep-alive connection is kept for the next request.
const POOL_IDLE_TIMEOUT: Duration = Duration::from_secs(90);

/// Why the HTTP client could not be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HttpSetupError {
    /// The extra CA file could not be read or holds no certificate.
    #[error("CA file {path}: {reason}")]
    CaFile {
        /// The file.
        path: String,
        /// What went wrong.
        reason: String,
    },
    /// rustls or reqwest refused the configuration.
    #[error("TLS setup: {0}")]
    Tls(String),
}

/// A keep-alive HTTP client on rustls (ring) that trusts the platform's roots and, if given, the
/// PEM certificates in `extra_ca_file`.
pub fn client(extra_ca_file: Option<&Path>) -> Result<reqwest::Client, HttpSetupError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let extra_roots = match extra_ca_file {
        Some(path) => read_ca_file(path)?,
        None => Vec::new(),
    };
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| HttpSetupError::Tls(e.to_string()))?;
    let tls = match Verifier::new_with_extra_roots(extra_roots.clone(), provider) {
        Ok(verifier) => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(verifier))
            .with_no_client_auth(),
        Err(error) => {
            // No system roots (ca-certificates missing): trust only the configured CA, if
            // any, so loopback tests and private deployments still work and public servers
            // fail with a clear certificate error instead of the whole source failing to start.
            tracing::warn!(%error, "platform certificate verifier unavailable; trusting only the extra CA file");
            let mut roots = rustls::RootCertStore::empty();
            for certificate in extra_roots {
                roots
                    .add(certificate)
                    .map_err(|e| HttpSetupError::Tls(e.to_string()))?;
            }
            builder.with_root_certificates(roots).with_no_client_auth()
        }
    };
    reqwest::Client::builder()
        .tls_backend_preconfigured(tls)
        .connect_timeout(CONNECT_TIMEOUT)
        .pool_idle_timeout(POOL_IDLE_TIMEOUT)
        .tcp_keepalive(Duration::from_secs(60))
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("postern/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| HttpSetupError::Tls(describe(&e)))
}

fn read_ca_file(path: &Path) -> Result<Vec<CertificateDer<'static>>, HttpSetupError> {
    let fail = |reason: String| HttpSetupError::CaFile {
        path: path.display().to_string(),
        reason,
    };
    let certificates = CertificateDer::pem_file_iter(path)
        .map_err(|e| fail(e.to_string()))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| fail(e.to_string()))?;
    if certificates.is_empty() {
        return Err(fail("no PEM certificate in it".to_owned()));
    }
    Ok(certificates)
}

/// Parses an endpoint setting (`https://graph.microsoft.com`): `https`, or `http` on a loopback
/// host only; no query, fragment or credentials.
pub fn parse_endpoint(setting: &str, value: &str) -> Result<Url, String> {
    let url = Url::parse(value.trim()).map_err(|e| format!("{setting}: not a URL ({e})"))?;
    let loopback = match url.host() {
        Some(url::Host::Domain(name)) => name.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => IpAddr::V4(ip).is_loopback(),
        Some(url::Host::Ipv6(ip)) => IpAddr::V6(ip).is_loopback(),
        None => return Err(format!("{setting}: no host in {value:?}")),
    };
    match url.scheme() {
        "https" => {}
        "http" if loopback => {}
        "http" => {
            return Err(format!(
                "{setting}: plain http is allowed only on loopback, use https"
            ));
        }
        other => return Err(format!("{setting}: unsupported scheme {other:?}")),
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(format!("{setting}: must not have a query or fragment"));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(format!("{setting}: must not contain credentials"));
    }
    Ok(url)
}

/// `base` with `segments` appended as path segments (each percent-encoded as needed).
pub fn join(base: &Url, segments: &[&str]) -> Url {
    let mut url = base.clone();
    if let Ok(mut path) = url.path_segments_mut() {
        path.pop_if_empty();
        path.extend(segments);
    }
    url
}

/// A reqwest error with its causes (reqwest's `Display` shows only the outermost), which is
/// where "connection refused" or a certificate problem is said. Request bodies never appear.
pub fn describe(error: &reqwest::Error) -> String {
    let mut text = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http_only_on_loopback() {
        assert!(parse_endpoint("e", "https://graph.microsoft.com").is_ok());
        assert!(parse_endpoint("e", "http://127.0.0.1:8080").is_ok());
        assert!(parse_endpoint("e", "http://[::1]:8080").is_ok());
        assert!(parse_endpoint("e", "http://localhost:1").is_ok());
        assert!(parse_endpoint("e", "http://graph.microsoft.com").is_err());
        assert!(parse_endpoint("e", "ftp://127.0.0.1").is_err());
        assert!(parse_endpoint("e", "https://u:p@host").is_err());
        assert!(parse_endpoint("e", "https://host/?a=b").is_err());
    }

    #[test]
    fn join_encodes_segments() {
        let base = Url::parse("https://graph.example/").expect("URL");
        let url = join(&base, &["v1.0", "users", "a b@c", "$value"]);
        assert_eq!(
            url.as_str(),
            "https://graph.example/v1.0/users/a%20b@c/$value"
        );
    }
}
