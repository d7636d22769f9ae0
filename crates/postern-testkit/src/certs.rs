//! A private certificate authority for the tests, made with Debian's `openssl` (as
//! scripts/mailserver.sh does): EC P-256 keys, a CA certificate, and server certificates for
//! `127.0.0.1` / `localhost` signed by it (`CA:FALSE`, which webpki requires of a leaf).

use std::path::{Path, PathBuf};
use std::process::Command;

/// A CA whose files live in `dir`: `ca.pem` (certificate) and `ca.key`.
pub struct PrivateCa {
    dir: PathBuf,
}

/// A server certificate and its key, as PEM files.
pub struct ServerPair {
    /// The certificate.
    pub certificate: PathBuf,
    /// Its private key.
    pub key: PathBuf,
}

impl PrivateCa {
    /// Makes a new CA called `name` in `dir` (which must exist).
    pub fn new(dir: &Path, name: &str) -> PrivateCa {
        let path = |file: &str| arg(&dir.join(file));
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
            &format!("/CN={name}"),
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign,cRLSign",
            "-keyout",
            &path("ca.key"),
            "-out",
            &path("ca.pem"),
        ]);
        PrivateCa {
            dir: dir.to_owned(),
        }
    }

    /// The CA certificate (PEM), for clients to trust.
    pub fn certificate(&self) -> PathBuf {
        self.dir.join("ca.pem")
    }

    /// Issues a certificate for `127.0.0.1` and `localhost` as `<stem>.pem` and `<stem>.key`
    /// in the CA's directory; each call makes a new key and a new serial number.
    pub fn issue(&self, stem: &str) -> ServerPair {
        let path = |file: &str| self.dir.join(file);
        let key = path(&format!("{stem}.key"));
        let csr = path(&format!("{stem}.csr"));
        let certificate = path(&format!("{stem}.pem"));
        let extensions = path(&format!("{stem}.ext"));
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
            &arg(&key),
            "-out",
            &arg(&csr),
        ]);
        std::fs::write(
            &extensions,
            "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=critical,CA:FALSE\n\
             keyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n",
        )
        .expect("write the certificate's extensions");
        openssl(&[
            "x509",
            "-req",
            "-in",
            &arg(&csr),
            "-CA",
            &arg(&path("ca.pem")),
            "-CAkey",
            &arg(&path("ca.key")),
            "-set_serial",
            &random_serial(),
            "-days",
            "30",
            "-extfile",
            &arg(&extensions),
            "-out",
            &arg(&certificate),
        ]);
        ServerPair { certificate, key }
    }
}

/// The base64 SHA-256 of a certificate's public key (its SPKI), as Chromium's
/// `--ignore-certificate-errors-spki-list` takes it.
pub fn spki_sha256_base64(certificate: &Path) -> String {
    let script = "openssl x509 -in \"$0\" -pubkey -noout | openssl pkey -pubin -outform der \
                  | openssl dgst -sha256 -binary | openssl base64 -A";
    let output = Command::new("sh")
        .args(["-c", script])
        .arg(certificate)
        .output()
        .expect("run openssl for the SPKI hash");
    assert!(
        output.status.success(),
        "openssl (SPKI hash) failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).trim().to_owned()
}

/// A fresh positive serial number (64 random bits), in hex as openssl takes it.
fn random_serial() -> String {
    let mut bytes = [0u8; 8];
    getrandom::fill(&mut bytes).expect("random serial");
    // A leading 0 nibble keeps it positive in DER's signed encoding.
    bytes[0] &= 0x7f;
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    format!("0x{hex}")
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
