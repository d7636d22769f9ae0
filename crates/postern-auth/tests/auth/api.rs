//! What the callers rely on beyond the verdict: the verifier can be shared between tasks and
//! its future spawned on a multi-threaded runtime.

use postern_auth::{AuthConfig, Authenticator, Connection, DnsConfig};
use std::time::Duration;

fn assert_send<T: Send>(_: &T) {}
fn assert_send_sync<T: Send + Sync>(_: &T) {}

#[test]
fn the_authenticator_is_shareable_and_its_verification_can_be_spawned() {
    let auth = Authenticator::new(&AuthConfig {
        dns: DnsConfig {
            nameservers: vec!["127.0.0.1:9".parse().expect("address")],
            timeout: Duration::from_millis(100),
            attempts: 1,
        },
        ..AuthConfig::default()
    })
    .expect("authenticator");
    assert_send_sync(&auth);
    let connection = Connection::default();
    let future = auth.verify(b"From: a@b.test\r\n\r\nx", &connection);
    assert_send(&future);
}
