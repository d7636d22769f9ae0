//! The LMTP/SMTP session state machine (`postern_inbox::listener::serve_stream`) on arbitrary
//! client bytes, delivered in arbitrary read sizes.
//!
//! The first input byte picks the variant: protocol, how the client's bytes are split into
//! reads, a tiny or normal message size limit, a tiny in-memory threshold (so spooling to a
//! file runs too), and what the delivery callback answers. The rest is what the client sends.
//! Besides "no panic, no hang", every reply line must be well formed (three digits, a space
//! or a dash, CRLF) and no delivered message may exceed the size limit.
#![no_main]

use std::io;
use std::pin::Pin;
use std::sync::{Mutex, OnceLock};
use std::task::{Context, Poll};

use libfuzzer_sys::fuzz_target;
use postern_inbox::listener::{
    DeliverError, Delivery, ListenerLimits, Protocol, Settings, serve_stream,
};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// Read sizes the client's bytes are split into, picked by two bits of the first byte.
const READ_SIZES: [usize; 4] = [1, 7, 512, 64 * 1024];

/// The client: hands out the input in reads of `read_size`, then EOF; keeps what it is told.
struct Client<'a> {
    input: &'a [u8],
    read_size: usize,
    output: Vec<u8>,
}

impl AsyncRead for Client<'_> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let n = self.input.len().min(self.read_size).min(buf.remaining());
        let (now, rest) = self.input.split_at(n);
        buf.put_slice(now);
        self.input = rest;
        Poll::Ready(Ok(()))
    }
}

impl AsyncWrite for Client<'_> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.output.extend_from_slice(data);
        Poll::Ready(Ok(data.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

fn runtime() -> &'static tokio::runtime::Runtime {
    static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .expect("runtime")
    })
}

fn spool() -> &'static tempfile::TempDir {
    static SPOOL: OnceLock<tempfile::TempDir> = OnceLock::new();
    SPOOL.get_or_init(|| tempfile::tempdir().expect("spool directory"))
}

fuzz_target!(|data: &[u8]| {
    let Some((&variant, input)) = data.split_first() else {
        return;
    };
    let max_message_size = if variant & 0x08 != 0 { 100 } else { 64 * 1024 };
    let settings = Settings {
        protocol: if variant & 0x01 != 0 {
            Protocol::Smtp
        } else {
            Protocol::Lmtp
        },
        hostname: "fuzz.test".to_owned(),
        limits: ListenerLimits {
            max_message_size,
            max_recipients: 5,
            memory_threshold: if variant & 0x10 != 0 { 16 } else { 4096 },
            memory_budget: 64 * 1024,
            ..ListenerLimits::default()
        },
        spool_directory: spool().path().to_path_buf(),
    };
    let read_size = READ_SIZES[usize::from((variant >> 1) & 0x03)];
    let answer = (variant >> 5) % 3;
    let mut client = Client {
        input,
        read_size,
        output: Vec::new(),
    };
    let delivered = Mutex::new(Vec::new());
    runtime().block_on(async {
        let result = serve_stream(&mut client, &settings, |delivery: Delivery| {
            let delivered = &delivered;
            async move {
                let raw = delivery.raw.bytes().await.expect("a delivered body is readable");
                assert_eq!(raw.len() as u64, delivery.raw.len());
                delivered.lock().expect("lock").push(raw.len());
                match answer {
                    0 => Ok(()),
                    1 => Err(DeliverError::Temporary("/var/lib/postern: internal".into())),
                    _ => Err(DeliverError::Permanent("/var/lib/postern: internal".into())),
                }
            }
        })
        .await;
        assert!(result.is_ok(), "valid settings");
    });
    for size in delivered.lock().expect("lock").iter() {
        assert!(*size <= max_message_size, "a message over the limit was delivered");
    }
    assert!(client.output.ends_with(b"\r\n") || client.output.is_empty());
    for line in client.output.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
        assert!(line.len() >= 4, "short reply line {line:?}");
        assert!(line[..3].iter().all(u8::is_ascii_digit), "reply {line:?}");
        assert!(line[3] == b' ' || line[3] == b'-', "reply {line:?}");
        assert!(line.ends_with(b"\r"), "reply without CRLF {line:?}");
        // The callback's internal text (a path) never reaches the client.
        assert!(!line.windows(8).any(|w| w == b"/var/lib"), "reply {line:?}");
    }
});
