//! The Graph watcher's size limit against the stand-in: a message over `max_message_size` is
//! handed on as its header block with its declared size, acknowledged like any other, and
//! the messages around it arrive whole.

use std::sync::Arc;

use crate::graph_support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oversized_message_is_handed_on_as_its_header_block_and_marked_read() {
    let stand_in = stand_in().await;
    let mut big = raw(1);
    while big.len() < 300 * 1024 {
        big.extend_from_slice(b"0123456789012345678901234567890123456789012345678901234567\r\n");
    }
    let small_id = stand_in.add_message(USER, "inbox", &raw(0));
    let big_id = stand_in.add_message(USER, "inbox", &big);
    let mut settings = settings(&stand_in);
    settings.max_message_size = 64 * 1024;
    let running = spawn(settings, Arc::default());
    wait_for("every message marked read", || all_read(&stand_in)).await;
    let intake = running.intake.clone();
    let status = running.stop().await;

    let stored = intake.stored.lock().unwrap().clone();
    assert_eq!(stored.get(&identity(&small_id)), Some(&raw(0)), "whole");
    let head_end = big.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
    assert_eq!(
        stored.get(&identity(&big_id)).map(Vec::as_slice),
        Some(&big[..head_end]),
        "only the header block"
    );
    let oversized = intake.oversized.lock().unwrap().clone();
    assert_eq!(oversized.len(), 1);
    assert_eq!(oversized.get(&identity(&big_id)), Some(&(big.len() as u64)));
    assert!(status.snapshot().last_error.is_none());
}
