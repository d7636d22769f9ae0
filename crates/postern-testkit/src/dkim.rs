//! DKIM keys and signatures for tests: a fresh key, its DNS record, and messages signed with
//! it by mail-auth's signer, the one the sender-authentication crate verifies against.

use base64::Engine as _;
use mail_auth::common::crypto::{Ed25519Key, RsaKey, Sha256, SigningKey};
use mail_auth::common::headers::HeaderWriter as _;
use mail_auth::dkim::DkimSigner;
use rustls_pki_types::{PrivateKeyDer, PrivatePkcs1KeyDer, PrivatePkcs8KeyDer};
use std::process::Command;

use crate::dns::{a_record, txt_record};

/// The address the SPF records of [`domain_records`] authorise.
pub const GOOD_IP: &str = "192.0.2.7";

/// Private key material that signs messages (a mail-auth key is consumed by its signer, so
/// one is built per signature).
pub enum Key {
    /// PKCS#8 DER of an Ed25519 key.
    Ed25519(Vec<u8>),
    /// DER of an RSA key as `openssl genpkey -outform DER` writes it (PKCS#1 or PKCS#8,
    /// depending on the OpenSSL version).
    Rsa(Vec<u8>),
}

impl Key {
    /// `raw` with this key's DKIM signature of `domain`/`selector` prepended.
    pub fn sign(&self, raw: &str, domain: &str, selector: &str) -> String {
        let header = match self {
            Key::Ed25519(der) => signature(
                Ed25519Key::from_pkcs8_der(der).expect("reading the Ed25519 key"),
                raw,
                domain,
                selector,
            ),
            Key::Rsa(der) => signature(
                RsaKey::<Sha256>::from_key_der(PrivateKeyDer::Pkcs1(PrivatePkcs1KeyDer::from(
                    der.as_slice(),
                )))
                .or_else(|_| {
                    RsaKey::<Sha256>::from_key_der(PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(
                        der.as_slice(),
                    )))
                })
                .expect("reading the RSA key"),
                raw,
                domain,
                selector,
            ),
        };
        format!("{header}{raw}")
    }
}

fn signature(key: impl SigningKey, raw: &str, domain: &str, selector: &str) -> String {
    DkimSigner::from_key(key)
        .domain(domain)
        .selector(selector)
        .headers(["From", "To", "Subject", "Date", "Message-ID"])
        .sign(raw.as_bytes())
        .expect("signing")
        .to_header()
}

/// A fresh Ed25519 key and its DKIM record value.
pub fn ed25519_key() -> (Key, String) {
    let pkcs8 = Ed25519Key::generate_pkcs8().expect("generating an Ed25519 key");
    let key = Ed25519Key::from_pkcs8_der(&pkcs8).expect("reading the Ed25519 key");
    let public = base64::engine::general_purpose::STANDARD.encode(key.public_key());
    (
        Key::Ed25519(pkcs8),
        format!("v=DKIM1; k=ed25519; p={public}"),
    )
}

/// A fresh 2048-bit RSA key (from the `openssl` command) and its DKIM record value: about
/// 400 bytes, so the zone splits it into two strings.
pub fn rsa_key() -> (Key, String) {
    let dir = tempfile_dir();
    let private = dir.join("key.der");
    run(Command::new("openssl")
        .args([
            "genpkey",
            "-algorithm",
            "RSA",
            "-pkeyopt",
            "rsa_keygen_bits:2048",
        ])
        .args(["-outform", "DER", "-out"])
        .arg(&private));
    let public = Command::new("openssl")
        .args([
            "pkey", "-inform", "DER", "-pubout", "-outform", "DER", "-in",
        ])
        .arg(&private)
        .output()
        .expect("running openssl pkey");
    assert!(public.status.success(), "openssl pkey failed");
    let der = std::fs::read(&private).expect("reading the key");
    let public = base64::engine::general_purpose::STANDARD.encode(public.stdout);
    let _ = std::fs::remove_dir_all(dir);
    (Key::Rsa(der), format!("v=DKIM1; k=rsa; p={public}"))
}

fn tempfile_dir() -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "postern-auth-key-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0)
    ));
    std::fs::create_dir_all(&dir).expect("key directory");
    dir
}

fn run(command: &mut Command) {
    let status = command
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .expect("running openssl (Debian: apt-get install openssl)");
    assert!(status.success(), "{command:?} failed");
}

/// The DNS records of a domain: its DKIM key, SPF allowing [`GOOD_IP`], and a DMARC policy.
pub fn domain_records(domain: &str, selector: &str, dkim: &str, dmarc: &str) -> Vec<String> {
    let name = domain.trim_end_matches(".test");
    vec![
        txt_record(&format!("{selector}._domainkey.{name}"), dkim),
        txt_record(name, &format!("v=spf1 ip4:{GOOD_IP} -all")),
        txt_record(&format!("_dmarc.{name}"), dmarc),
        a_record(name, GOOD_IP.parse().expect("an IPv4 address")),
    ]
}
