//! `cargo bench -p postern-mail --bench hostile`: every pass over untrusted bytes, fed inputs of
//! 1, 4 and 16 MB built to be its worst case, with the time and the peak heap of each run.
//!
//! Linear passes show a 16 MB / 1 MB time ratio near 16 (up to about 20 is still linear); a pass
//! whose cost is matches × length shows hundreds. Peak heap is counted by the global allocator
//! from the start of the pass (the input, already built, is not counted) and printed as a
//! multiple of the input size. Nothing is asserted: timings are never asserted on shared
//! machines.
//!
//! A run whose 4 MB input already took longer than [`SKIP_AFTER`] is not repeated at 16 MB
//! (the row says so): a quadratic pass would take an hour there.

use std::hint::black_box;
use std::time::{Duration, Instant};

use peak_alloc::PeakAlloc;
use postern_mail::{
    AddressTemplate, AnalysisOptions, Email, KeyScan, ReplyOptions, analyse, attachments,
    cap_message, find_mail_key, html::html_to_markdown, redact_quick_actions, reply::finish_reply,
    scan_quick_actions, trim,
};

#[global_allocator]
static HEAP: PeakAlloc = PeakAlloc;

const MB: usize = 1024 * 1024;
const SIZES: [usize; 3] = [MB, 4 * MB, 16 * MB];
/// A 4 MB run slower than this is not repeated at 16 MB.
const SKIP_AFTER: Duration = Duration::from_secs(20);

/// One pass and how to build its worst case of about `n` bytes.
struct Case {
    pass: &'static str,
    shape: &'static str,
    build: fn(usize) -> Vec<u8>,
    run: fn(&[u8]),
}

fn main() {
    let cases = [
        Case {
            pass: "analyse",
            shape: "plain body: commands, quotes, markers",
            build: plain_mail,
            run: run_analyse,
        },
        Case {
            pass: "analyse",
            shape: "HTML-only body, sibling tags",
            build: html_mail,
            run: run_analyse,
        },
        Case {
            pass: "analyse",
            shape: "header flood (To, Received, References)",
            build: header_flood,
            run: run_analyse,
        },
        Case {
            pass: "analyse",
            shape: "attachment flood, 1-byte parts",
            build: attachment_flood,
            run: run_analyse,
        },
        Case {
            pass: "analyse",
            shape: "MIME nesting, one multipart per 60 bytes",
            build: nested_multiparts,
            run: run_analyse,
        },
        Case {
            pass: "quick actions",
            shape: "`/label ~a` lines",
            build: command_lines,
            run: run_quick_actions,
        },
        Case {
            pass: "quick actions",
            shape: "openers never closed (```, <x>, >>>, `)",
            build: unclosed_blocks,
            run: run_quick_actions,
        },
        Case {
            pass: "trimmer",
            shape: "quote/marker/header lines",
            build: trimmer_lines,
            run: run_trim,
        },
        Case {
            pass: "trimmer, uncapped",
            shape: "same, trim_split alone (`postern trim`)",
            build: trimmer_lines,
            run: run_trim_uncapped,
        },
        Case {
            pass: "trimmer",
            shape: "one line: dates, <img, addresses",
            build: trimmer_one_line,
            run: run_trim,
        },
        Case {
            pass: "html → markdown",
            shape: "sibling tags (nesting stops at 256)",
            build: sibling_html,
            run: run_html,
        },
        Case {
            pass: "html → markdown",
            shape: "table cells, links, entities",
            build: table_html,
            run: run_html,
        },
        Case {
            pass: "headers + key scan",
            shape: "header flood",
            build: header_flood,
            run: run_key_scan,
        },
        Case {
            pass: "attachment listing",
            shape: "1-byte parts, long names",
            build: attachment_flood,
            run: run_attachments,
        },
    ];

    println!("postern-mail hostile-input benchmark (release build, one thread)");
    println!(
        "fastest of {RUNS} runs and peak heap (x input) per pass; 16/1 = time(16 MB) / time(1 MB), \
         linear ≈ 16 (a 1 MB input still fits in the CPU caches); 16/4, linear ≈ 4"
    );
    println!();
    println!(
        "| {:<20} | {:<42} | {:>9} | {:>9} | {:>9} | {:>9} | {:>9} | {:>9} | {:>6} | {:>6} |",
        "pass", "input", "1 MB", "heap", "4 MB", "heap", "16 MB", "heap", "16/1", "16/4"
    );
    println!(
        "|{:-<22}|{:-<44}|{:->11}|{:->11}|{:->11}|{:->11}|{:->11}|{:->11}|{:->8}|{:->8}|",
        "", "", "", "", "", "", "", "", "", ""
    );
    let filter = std::env::args().nth(1).filter(|arg| !arg.starts_with('-'));
    for case in &cases {
        if filter
            .as_deref()
            .is_some_and(|f| !case.pass.contains(f) && !case.shape.contains(f))
        {
            continue;
        }
        // Lazily compiled patterns are built outside the timed runs.
        (case.run)(&(case.build)(64 * 1024));
        let mut cells = Vec::new();
        let mut times = Vec::new();
        for size in SIZES {
            if times.last().is_some_and(|&t: &Duration| t > SKIP_AFTER) {
                cells.push("skipped".to_owned());
                cells.push(String::new());
                continue;
            }
            let input = (case.build)(size);
            let (time, heap) = measure(case.run, &input);
            times.push(time);
            cells.push(format!("{:.3} s", time.as_secs_f64()));
            cells.push(format!("{:.1}x", heap as f64 / input.len() as f64));
        }
        let ratio = |small: usize| match (times.get(small), times.get(2)) {
            (Some(first), Some(last)) => {
                format!("{:.1}", last.as_secs_f64() / first.as_secs_f64().max(1e-6))
            }
            _ => "-".to_owned(),
        };
        println!(
            "| {:<20} | {:<42} | {:>9} | {:>9} | {:>9} | {:>9} | {:>9} | {:>9} | {:>6} | {:>6} |",
            case.pass,
            case.shape,
            cells[0],
            cells[1],
            cells[2],
            cells[3],
            cells[4],
            cells[5],
            ratio(0),
            ratio(1)
        );
    }
}

/// Runs per input; the fastest is reported (the others were slowed by the shared machine).
const RUNS: usize = 3;

/// Time (fastest of [`RUNS`]) and peak heap (bytes above what was allocated before) of `run`.
fn measure(run: fn(&[u8]), input: &[u8]) -> (Duration, usize) {
    let mut fastest = Duration::MAX;
    let mut peak = 0;
    for _ in 0..RUNS {
        let baseline = HEAP.current_usage();
        HEAP.reset_peak_usage();
        let start = Instant::now();
        run(black_box(input));
        fastest = fastest.min(start.elapsed());
        peak = peak.max(HEAP.peak_usage().saturating_sub(baseline));
        if fastest > SKIP_AFTER {
            break;
        }
    }
    (fastest, peak)
}

fn run_analyse(raw: &[u8]) {
    let options = AnalysisOptions {
        incoming_address: Some(AddressTemplate::new("incoming+%{key}@example.com")),
        ..AnalysisOptions::default()
    };
    black_box(analyse(raw, &options));
}

fn run_quick_actions(raw: &[u8]) {
    let text = String::from_utf8_lossy(raw);
    black_box(scan_quick_actions(&text));
    black_box(redact_quick_actions(&text));
}

/// The trimmer as messages get it: `finish_reply`, which reads at most `MAX_TRIM_BYTES`.
fn run_trim(raw: &[u8]) {
    let text = String::from_utf8_lossy(raw);
    black_box(finish_reply(&text, ReplyOptions::default()));
}

fn run_trim_uncapped(raw: &[u8]) {
    let text = String::from_utf8_lossy(raw);
    black_box(trim::trim_split(&text));
}

fn run_html(raw: &[u8]) {
    let text = String::from_utf8_lossy(raw);
    black_box(html_to_markdown(&text));
}

fn run_key_scan(raw: &[u8]) {
    let raw = cap_message(raw);
    let email = Email::parse(&raw);
    let template = AddressTemplate::new("incoming+%{key}@example.com");
    let scan = KeyScan {
        template: Some(&template),
        host: Some("example.com"),
        custom_emails: None,
    };
    black_box(find_mail_key(&email, &scan));
    black_box(email.from_address());
    black_box(email.references());
}

fn run_attachments(raw: &[u8]) {
    let email = Email::parse(raw);
    black_box(attachments(&email));
}

/// `line` repeated (cycling through `lines`) up to `n` bytes.
fn repeat_lines(n: usize, lines: &[&str]) -> Vec<u8> {
    let mut out = Vec::with_capacity(n + 256);
    let mut i = 0;
    while out.len() < n {
        out.extend_from_slice(lines[i % lines.len()].as_bytes());
        out.push(b'\n');
        i += 1;
    }
    out
}

const HEADERS: &str = "From: Jake <jake@example.com>\r\n\
    To: incoming+59d8df8370b7e95c5a49fbf86aeb2c93@example.com\r\n\
    Subject: Re: the bug\r\n\
    Message-ID: <hostile@example.com>\r\n";

fn plain_mail(n: usize) -> Vec<u8> {
    let mut out = format!("{HEADERS}Content-Type: text/plain; charset=utf-8\r\n\r\n").into_bytes();
    out.extend(repeat_lines(
        n,
        &[
            "/label ~a",
            "> quoted line",
            "On Mon, 1 Jan 2024 at 10:00, Bob <bob@example.com> wrote:",
            "From: x",
            "text 2024 <img> <a@b.c>",
            "`",
            "<div>",
            "```",
            ">>>",
        ],
    ));
    out
}

fn html_mail(n: usize) -> Vec<u8> {
    let mut out = format!("{HEADERS}Content-Type: text/html; charset=utf-8\r\n\r\n").into_bytes();
    out.extend(sibling_html(n));
    out
}

fn header_flood(n: usize) -> Vec<u8> {
    let mut out = HEADERS.as_bytes().to_vec();
    let lines = [
        "Received: from a by b for <<<<<<<<<<<<<<<<<<<<<<<<<<<<<<<<<<<<<<<<<<<<<<<<<<<<<<<x@y>",
        "To: a@b.c, d@e.f, \"x, y\" <g@h.i>, incoming+@example.com, <<<>>>",
        "References: <a@b> <c@d> <e@f> <reply-x@other> <g@h> <i@j> <k@l> <m@n> <o@p>",
        "X-Original-To: incoming+@example.org",
        "Cc: =?utf-8?q?=C3=A9?= <a@b.c>, =?utf-8?b?w6k=?= <d@e.f>",
    ];
    let mut i = 0;
    while out.len() < n {
        out.extend_from_slice(lines[i % lines.len()].as_bytes());
        out.extend_from_slice(b"\r\n");
        i += 1;
    }
    out.extend_from_slice(b"\r\nbody\r\n");
    out
}

fn attachment_flood(n: usize) -> Vec<u8> {
    let mut out =
        format!("{HEADERS}Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nhi\r\n")
            .into_bytes();
    let long_name = "n".repeat(300);
    let mut i = 0usize;
    while out.len() < n {
        let name = if i.is_multiple_of(2) {
            format!("{i}.txt")
        } else {
            format!("{long_name}{i}.png")
        };
        out.extend_from_slice(
            format!(
                "--b\r\nContent-Type: application/octet-stream; name=\"{name}\"\r\n\
                 Content-Disposition: attachment; filename=\"{name}\"\r\n\r\nx\r\n"
            )
            .as_bytes(),
        );
        i += 1;
    }
    out.extend_from_slice(b"--b--\r\n");
    out
}

fn nested_multiparts(n: usize) -> Vec<u8> {
    let mut out = HEADERS.as_bytes().to_vec();
    let mut depth = 0usize;
    while out.len() < n {
        out.extend_from_slice(
            format!("Content-Type: multipart/mixed; boundary=b{depth}\r\n\r\n--b{depth}\r\n")
                .as_bytes(),
        );
        depth += 1;
    }
    out.extend_from_slice(b"Content-Type: text/plain\r\n\r\ndeep\r\n");
    out
}

fn command_lines(n: usize) -> Vec<u8> {
    repeat_lines(n, &["/label ~a"])
}

/// Every kind of block opener, none ever closed (no line is exactly ``` or `>>>`, no `</…>`
/// line ends with `>`, no backtick ends a line), between commands: each line start tries every
/// branch, and every closing search runs to the end of the text once.
fn unclosed_blocks(n: usize) -> Vec<u8> {
    repeat_lines(
        n,
        &["```x", "<x>", "</x", ">>>x", "/close", "a ` b", "/label ~a"],
    )
}

fn trimmer_lines(n: usize) -> Vec<u8> {
    repeat_lines(
        n,
        &[
            "text",
            "> quote",
            "On Mon, 1 Jan 2024, Bob wrote:",
            "From: a",
            "To: b",
            "-- ",
            ">>>> x",
            "<<<< y",
            ">>> a >>>",
            "Sent from my phone",
            "```",
            "2024 x <a@b.c>",
        ],
    )
}

fn trimmer_one_line(n: usize) -> Vec<u8> {
    let unit = "2024 <img> wrote on 2024 <a@b> ";
    unit.repeat(n / unit.len() + 1).into_bytes()
}

fn sibling_html(n: usize) -> Vec<u8> {
    let unit = "<p>x</p><b>y</b><br><i>z</i><span>w</span>";
    unit.repeat(n / unit.len() + 1).into_bytes()
}

fn table_html(n: usize) -> Vec<u8> {
    let unit = "<table><tr><td>a&amp;b<td><a href=\"http://x/&lt;\">l</a><p>p&nbsp;";
    unit.repeat(n / unit.len() + 1).into_bytes()
}
