//! Figures: latency percentiles, resident memory from `/proc`, and the drain table rows with
//! lost and duplicated counts.

use std::collections::HashMap;
use std::time::Duration;

use anyhow::Context as _;

/// Latency samples of one run.
#[derive(Debug, Default, Clone)]
pub struct Latency {
    samples: Vec<Duration>,
}

impl Latency {
    /// Adds one sample.
    pub fn push(&mut self, sample: Duration) {
        self.samples.push(sample);
    }

    fn percentile(&self, p: f64) -> f64 {
        let mut sorted = self.samples.clone();
        sorted.sort_unstable();
        if sorted.is_empty() {
            return f64::NAN;
        }
        let rank = ((p / 100.0) * (sorted.len() as f64)).ceil() as usize;
        sorted[rank.clamp(1, sorted.len()) - 1].as_secs_f64() * 1000.0
    }
}

/// One drain: a pre-loaded folder emptied by one client.
#[derive(Debug)]
pub struct Drain {
    client: &'static str,
    label: &'static str,
    count: usize,
    size: usize,
    seconds: f64,
    peak_rss: f64,
    idle_rss: f64,
    lost: usize,
    duplicated: usize,
    left: usize,
}

impl Drain {
    /// Counts lost (sent, never arrived) and duplicated (arrived more than once) titles.
    #[allow(
        clippy::too_many_arguments,
        reason = "one row of the table, named at the call"
    )]
    pub fn new(
        client: &'static str,
        label: &'static str,
        count: usize,
        size: usize,
        elapsed: Duration,
        peak_rss: f64,
        idle_rss: f64,
        sent: &[String],
        arrived: &[String],
        left: usize,
    ) -> Drain {
        let mut seen: HashMap<&str, usize> = HashMap::new();
        for title in arrived {
            *seen.entry(title.as_str()).or_default() += 1;
        }
        let lost = sent
            .iter()
            .filter(|t| !seen.contains_key(t.as_str()))
            .count();
        let duplicated = seen.values().map(|n| n.saturating_sub(1)).sum();
        Drain {
            client,
            label,
            count,
            size,
            seconds: elapsed.as_secs_f64(),
            peak_rss,
            idle_rss,
            lost,
            duplicated,
            left,
        }
    }
}

/// A `/proc/<pid>/status` field in MB.
pub fn proc_status_mb(pid: u32, field: &str) -> anyhow::Result<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .with_context(|| format!("process {pid} is gone"))?;
    let line = status
        .lines()
        .find(|l| l.starts_with(&format!("{field}:")))
        .with_context(|| format!("no {field} in /proc/{pid}/status"))?;
    let kb: f64 = line
        .split_whitespace()
        .nth(1)
        .context("malformed status line")?
        .parse()?;
    Ok(kb / 1024.0)
}

/// Prints the latency table.
pub fn print_latency(rows: &[(String, String, Latency)]) {
    println!();
    println!("### Latency: message handed over → stored (ms)");
    println!();
    println!("| client | via | n | p50 | p95 | max |");
    println!("|---|---|---|---|---|---|");
    for (client, via, latency) in rows {
        println!(
            "| {client} | {via} | {} | {:.1} | {:.1} | {:.1} |",
            latency.samples.len(),
            latency.percentile(50.0),
            latency.percentile(95.0),
            latency.percentile(100.0)
        );
    }
}

/// Prints the drain table.
pub fn print_drains(heading: &str, rows: &[Drain]) {
    println!();
    println!("### {heading}");
    println!();
    println!(
        "| client | messages | bytes each | seconds | msg/s | peak RSS MB | idle RSS after MB | lost | dup | left in folder |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|");
    for row in rows {
        println!(
            "| {} | {} {} | {} | {:.2} | {:.0} | {:.1} | {:.1} | {} | {} | {} |",
            row.client,
            row.count,
            row.label,
            row.size,
            row.seconds,
            row.count as f64 / row.seconds.max(1e-9),
            row.peak_rss,
            row.idle_rss,
            row.lost,
            row.duplicated,
            row.left
        );
    }
}
