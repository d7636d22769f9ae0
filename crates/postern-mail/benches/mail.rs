//! `cargo bench -p postern-mail`: throughput, memory and worst cases of the pure mail work.
//!
//! Prints figures; asserts nothing (timings are never asserted anywhere: shared machines are
//! noisy). The figure postern aims for is printed next to each one so a reader can compare.
//!
//! - messages/second of `postern inspect`'s work (`analyse`) over the fixture corpus, one core;
//! - time and peak heap for a 10 MB message with attachments, relative to its size;
//! - time for each pathological input.

use std::hint::black_box;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use peak_alloc::PeakAlloc;
use postern_mail::trim::{TrimMode, trim_reply};
use postern_mail::{AnalysisOptions, analyse};

#[global_allocator]
static HEAP: PeakAlloc = PeakAlloc;

fn main() {
    let options = AnalysisOptions::default();
    println!("postern-mail benchmark (release build, one thread)");
    println!();
    corpus_throughput(&options);
    trim_throughput();
    println!();
    large_message(&options);
    println!();
    pathological(&options);
    println!();
    // The same hostile inputs through the postern trimming mode (the default of serve).
    let mut postern = AnalysisOptions::default();
    postern.reply.trim_mode = TrimMode::Postern;
    println!("(postern trimming mode)");
    pathological(&postern);
    println!();
    pathological_postern();
}

fn load_corpus() -> Vec<Vec<u8>> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../testdata");
    let mut messages = Vec::new();
    for dir in ["gitlab-emails", "mime/rfc", "mime/thirdparty"] {
        let Ok(entries) = std::fs::read_dir(root.join(dir)) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.extension().is_some_and(|ext| ext == "eml")
                && let Ok(raw) = std::fs::read(&path)
            {
                messages.push(raw);
            }
        }
    }
    messages
}

fn corpus_throughput(options: &AnalysisOptions) {
    let corpus = load_corpus();
    let bytes: usize = corpus.iter().map(Vec::len).sum();
    // Warm up lazily compiled patterns.
    for raw in &corpus {
        black_box(analyse(raw, options));
    }
    let budget = Duration::from_secs(3);
    let start = Instant::now();
    let mut messages = 0usize;
    let mut rounds = 0usize;
    while start.elapsed() < budget {
        for raw in &corpus {
            black_box(analyse(black_box(raw), options));
        }
        messages += corpus.len();
        rounds += 1;
    }
    let seconds = start.elapsed().as_secs_f64();
    println!(
        "corpus: {} messages ({:.1} KiB), {rounds} rounds in {seconds:.2} s",
        corpus.len(),
        bytes as f64 / 1024.0
    );
    println!(
        "  inspect throughput: {:.0} messages/s, {:.1} MB/s   (target >= 5000 messages/s)",
        messages as f64 / seconds,
        (bytes * rounds) as f64 / seconds / 1e6
    );
}

/// The reply texts trimming is measured on: the trimmer's own fixture mails.
fn load_trim_corpus() -> Vec<String> {
    let root =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../testdata/reply-trimmer/emails");
    let mut texts = Vec::new();
    if let Ok(entries) = std::fs::read_dir(root) {
        for entry in entries.flatten() {
            if let Ok(text) = std::fs::read_to_string(entry.path()) {
                texts.push(text);
            }
        }
    }
    texts.sort();
    texts
}

/// MB/s of the reply trimmer alone over `texts`, for 2 seconds.
fn trim_rate(texts: &[String], trim: impl Fn(&str) -> String) -> f64 {
    let bytes: usize = texts.iter().map(String::len).sum();
    for text in texts {
        black_box(trim(text));
    }
    let budget = Duration::from_secs(2);
    let start = Instant::now();
    let mut rounds = 0usize;
    while start.elapsed() < budget {
        for text in texts {
            black_box(trim(black_box(text)));
        }
        rounds += 1;
    }
    (bytes * rounds) as f64 / start.elapsed().as_secs_f64() / 1e6
}

fn trim_throughput() {
    let texts = load_trim_corpus();
    for mode in [TrimMode::Gitlab, TrimMode::Postern] {
        println!(
            "  trimming throughput ({mode} mode, {} texts): {:.1} MB/s",
            texts.len(),
            trim_rate(&texts, |text| trim_reply(text, mode))
        );
    }
}

/// Best of three of the postern trimming mode alone on `text`.
fn time_trim(label: &str, text: &str) {
    let mut best = Duration::MAX;
    for _ in 0..3 {
        let start = Instant::now();
        black_box(trim_reply(black_box(text), TrimMode::Postern));
        best = best.min(start.elapsed());
    }
    println!(
        "  {label:<48} {:>9.2} ms   ({:.1} MB; no target, linear: see the 2x line)",
        best.as_secs_f64() * 1000.0,
        text.len() as f64 / 1e6
    );
}

/// Inputs aimed at the postern mode's look-aheads (header blocks, wrapped attributions,
/// signatures, diff hunks, answers under quotes): each must stay linear.
fn pathological_postern() {
    println!("pathological inputs for the postern trimming mode, best of 3:");
    time_trim(
        "100 000 `From:` lines (header-block look-ahead)",
        &"From: a@example.com\nTo: b\n".repeat(50_000),
    );
    time_trim(
        "100 000 lines ending in `:` (attributions)",
        &"On Monday Bob <bob@example.com> said\nwhat:\n".repeat(50_000),
    );
    time_trim(
        "100 000 `--` lines between text (signatures)",
        &"text line\n--\n".repeat(50_000),
    );
    let mut hunks = String::from("@@ -1,99999999 +1,99999999 @@\n");
    hunks.push_str(&" context\n".repeat(100_000));
    time_trim("a 100 000-line diff hunk", &hunks);
    let mut interleaved = String::from("On Mon, 1 Jan 2024, Bob <bob@example.com> wrote:\n");
    interleaved.push_str(&"> question\nanswer\n".repeat(50_000));
    time_trim("50 000 interleaved answers", &interleaved);
    time_trim(
        "100 000 `---` rules between paragraphs",
        &"A paragraph of prose that ends here.\n\n---\n\n".repeat(25_000),
    );
    // Linear means twice the input takes about twice the time, whatever the machine's speed.
    let mixed =
        "From: a@example.com\nOn Mon Bob <b@example.com> said\nwhat:\n--\n> q\nanswer\n---\n";
    let once = best_trim_seconds(&mixed.repeat(20_000));
    let twice = best_trim_seconds(&mixed.repeat(40_000));
    println!(
        "  {:<48} {:>9.2}x   (linear: about 2x)",
        "time for 2x the mixed worst-case input",
        twice / once
    );
}

fn best_trim_seconds(text: &str) -> f64 {
    let mut best = Duration::MAX;
    for _ in 0..3 {
        let start = Instant::now();
        black_box(trim_reply(black_box(text), TrimMode::Postern));
        best = best.min(start.elapsed());
    }
    best.as_secs_f64()
}

/// A 10 MB message: a text reply with a quote, an HTML alternative and three base64 attachments.
fn ten_megabyte_message() -> Vec<u8> {
    let mut raw = String::with_capacity(10_500_000);
    raw.push_str(
        "From: Jake <jake@example.com>\r\nTo: incoming+59d8df8370b7e95c5a49fbf86aeb2c93@localhost\r\n\
         Subject: big\r\nMessage-ID: <big@example.com>\r\nMIME-Version: 1.0\r\n\
         Content-Type: multipart/mixed; boundary=\"outer\"\r\n\r\n--outer\r\n\
         Content-Type: multipart/alternative; boundary=\"inner\"\r\n\r\n--inner\r\n\
         Content-Type: text/plain; charset=utf-8\r\n\r\nHere are the logs.\r\n\r\nOn Mon, X wrote:\r\n> old\r\n\
         --inner\r\nContent-Type: text/html; charset=utf-8\r\n\r\n<p>Here are the logs.</p>\r\n--inner--\r\n",
    );
    let mut seed: u32 = 12345;
    for (index, size) in [5_000_000usize, 2_000_000, 488_000].iter().enumerate() {
        raw.push_str(&format!(
            "--outer\r\nContent-Type: application/octet-stream; name=\"part{index}.bin\"\r\n\
             Content-Disposition: attachment; filename=\"part{index}.bin\"\r\n\
             Content-Transfer-Encoding: base64\r\n\r\n"
        ));
        const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        let encoded_len = size.div_ceil(3) * 4;
        let mut line = String::with_capacity(78);
        for i in 0..encoded_len {
            seed = seed.wrapping_mul(1_103_515_245).wrapping_add(12345);
            line.push(ALPHABET[(seed >> 16) as usize % 64] as char);
            if line.len() == 76 || i + 1 == encoded_len {
                raw.push_str(&line);
                raw.push_str("\r\n");
                line.clear();
            }
        }
    }
    raw.push_str("--outer--\r\n");
    raw.into_bytes()
}

fn large_message(options: &AnalysisOptions) {
    let raw = ten_megabyte_message();
    let size = raw.len();
    let baseline = HEAP.current_usage();
    HEAP.reset_peak_usage();
    let start = Instant::now();
    let analysis = analyse(&raw, options);
    let elapsed = start.elapsed();
    let peak_above_baseline = HEAP.peak_usage().saturating_sub(baseline);
    let total_peak = peak_above_baseline + size;
    println!(
        "10 MB message ({:.2} MB, {} attachments): analysed in {:.1} ms",
        size as f64 / 1e6,
        analysis.attachments.len(),
        elapsed.as_secs_f64() * 1000.0
    );
    println!(
        "  peak heap during analysis: {:.2} MB extra, {:.2} MB with the raw message = {:.2}x its size   (target <= 3x)",
        peak_above_baseline as f64 / 1e6,
        total_peak as f64 / 1e6,
        total_peak as f64 / size as f64
    );
    black_box(analysis);
}

fn time_one(label: &str, raw: &[u8], options: &AnalysisOptions) {
    time_with_target(label, raw, options, "(target < 50 ms)");
}

fn time_with_target(label: &str, raw: &[u8], options: &AnalysisOptions, target: &str) {
    // Best of three, so a scheduler hiccup does not make a fast input look slow.
    let mut best = Duration::MAX;
    for _ in 0..3 {
        let start = Instant::now();
        black_box(analyse(black_box(raw), options));
        best = best.min(start.elapsed());
    }
    println!(
        "  {label:<48} {:>9.2} ms   {target}",
        best.as_secs_f64() * 1000.0
    );
}

fn pathological(options: &AnalysisOptions) {
    println!("pathological inputs ({} bytes and up), best of 3:", 1000);
    let mut received = b"Received: from a by b ".to_vec();
    received.extend(b"for <<".repeat(100_000));
    received.extend(b"\r\nFrom: a@example.com\r\nSubject: x\r\n\r\nhello\r\n");
    time_one("Received with `for <<` x 100 000", &received, options);

    let mut bq = b"From: a@example.com\r\nTo: incoming+59d8df8370b7e95c5a49fbf86aeb2c93@localhost\r\n\r\nMy reply\r\n\r\n".to_vec();
    bq.extend("bq".repeat(100).as_bytes());
    bq.extend(b"\r\n");
    time_one("reply ending in \"bq\" x 100", &bq, options);

    let mut chain = b"From: a@example.com\r\nTo: incoming+59d8df8370b7e95c5a49fbf86aeb2c93@localhost\r\n\r\nMy reply\r\n\r\n".to_vec();
    for depth in 0..20_000 {
        let quote = ">".repeat(depth % 40 + 1);
        if depth % 50 == 0 {
            chain
                .extend(format!("{quote} On Mon, 1 Jan 2024, person{depth} wrote:\r\n").as_bytes());
        } else {
            chain.extend(format!("{quote} line {depth} of the quoted conversation\r\n").as_bytes());
        }
    }
    time_one("20 000-line quote chain", &chain, options);

    let mut nested_html = b"From: a@example.com\r\nContent-Type: text/html\r\n\r\n".to_vec();
    nested_html.extend("<div><blockquote>".repeat(50_000).as_bytes());
    nested_html.extend(b"deep");
    time_one("HTML nested 100 000 elements deep", &nested_html, options);

    let mut big_html = b"From: a@example.com\r\nContent-Type: text/html\r\n\r\n".to_vec();
    while big_html.len() < 10_000_000 {
        big_html.extend(b"<div><p>Some <b>bold</b> and <em>italic</em> text with a <a href=\"https://example.com/x\">link</a>.</p></div>\n");
    }
    time_with_target(
        "10 MB HTML body (large, not pathological)",
        &big_html,
        options,
        "(no target; about 9 MB/s)",
    );

    let mut emphasis = b"From: a@example.com\r\nContent-Type: text/html\r\n\r\n".to_vec();
    emphasis.extend("<em>".repeat(250).as_bytes());
    while emphasis.len() < 2_000_000 {
        emphasis.extend(b"word ");
    }
    let baseline = HEAP.current_usage();
    HEAP.reset_peak_usage();
    time_one("2 MB of text inside 250 nested <em>", &emphasis, options);
    println!(
        "  {:<48} {:>9.1} MB   (input {:.1} MB)",
        "  peak heap for it",
        HEAP.peak_usage().saturating_sub(baseline) as f64 / 1e6,
        emphasis.len() as f64 / 1e6
    );

    let mut nested_mime = b"From: a@example.com\r\n".to_vec();
    for level in 0..200 {
        nested_mime.extend(
            format!("Content-Type: multipart/mixed; boundary=\"b{level}\"\r\n\r\n--b{level}\r\n")
                .as_bytes(),
        );
    }
    nested_mime.extend(b"Content-Type: text/plain\r\n\r\ndeep text\r\n");
    time_one("MIME nested 200 multiparts deep", &nested_mime, options);
}
