//! Figures: latency percentiles, resident memory and CPU time from `/proc`, and the drain table
//! rows with lost and duplicated counts.

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

    /// The `p`th percentile in milliseconds (nearest rank), NaN without samples.
    pub fn percentile(&self, p: f64) -> f64 {
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
        let (lost, duplicated) = lost_and_duplicated(sent, arrived);
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

/// Of the titles `sent`, how many never `arrived`; and how many arrivals were a second (or
/// later) copy.
pub fn lost_and_duplicated(sent: &[String], arrived: &[String]) -> (usize, usize) {
    let mut seen: HashMap<&str, usize> = HashMap::new();
    for title in arrived {
        *seen.entry(title.as_str()).or_default() += 1;
    }
    let lost = sent
        .iter()
        .filter(|t| !seen.contains_key(t.as_str()))
        .count();
    let duplicated = seen.values().map(|n| n.saturating_sub(1)).sum();
    (lost, duplicated)
}

/// The unit of `/proc`'s CPU times: clock ticks per second from `getconf CLK_TCK`, and whether
/// it was measured (`false`: `getconf` failed and Linux's usual 100 is assumed).
pub fn clock_ticks_per_second() -> (f64, bool) {
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .filter(|o| o.status.success())
        .and_then(|o| {
            String::from_utf8_lossy(&o.stdout)
                .trim()
                .parse::<f64>()
                .ok()
        })
        .filter(|ticks| *ticks > 0.0)
        .map_or((100.0, false), |ticks| (ticks, true))
}

/// One process's CPU figures from `/proc/<pid>/stat`, in clock ticks.
#[derive(Debug, Clone, Copy)]
pub struct ProcCpu {
    /// Its parent.
    pub ppid: u32,
    /// Its own user + system time.
    pub own: u64,
    /// That of its children that have exited and been waited for.
    pub reaped_children: u64,
}

/// `/proc/<pid>/stat`'s parent and CPU times.
pub fn proc_cpu(pid: u32) -> anyhow::Result<ProcCpu> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .with_context(|| format!("process {pid} is gone"))?;
    parse_proc_stat(&stat)
}

/// One `/proc/<pid>/stat` line's parent and CPU times.
fn parse_proc_stat(stat: &str) -> anyhow::Result<ProcCpu> {
    // The command name (field 2) is in parentheses and may hold spaces: count from the last ')'.
    let rest = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest)
        .context("malformed /proc/<pid>/stat")?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // Field n of proc(5) is fields[n - 3]: 4 ppid, 14 utime, 15 stime, 16 cutime, 17 cstime.
    let field = |n: usize| -> anyhow::Result<u64> {
        Ok(fields
            .get(n - 3)
            .context("short /proc/<pid>/stat")?
            .parse::<i64>()?
            .max(0)
            .unsigned_abs())
    };
    Ok(ProcCpu {
        ppid: u32::try_from(field(4)?)?,
        own: field(14)? + field(15)?,
        reaped_children: field(16)? + field(17)?,
    })
}

/// CPU ticks used so far by `root` and its children, including the children that have exited
/// (a server such as PostgreSQL forks a process per connection and waits for each, so those
/// are counted in its own `cutime`/`cstime`).
pub fn tree_cpu(root: u32) -> anyhow::Result<u64> {
    let mut total = 0;
    for entry in std::fs::read_dir("/proc")? {
        let Some(pid) = entry?
            .file_name()
            .to_str()
            .and_then(|name| name.parse::<u32>().ok())
        else {
            continue;
        };
        // Processes come and go while the directory is read: a vanished one counts nothing.
        let Ok(cpu) = proc_cpu(pid) else {
            continue;
        };
        if pid == root || cpu.ppid == root {
            total += cpu.own + cpu.reaped_children;
        }
    }
    Ok(total)
}

/// The whole machine's CPU time so far from `/proc/stat`, in clock ticks summed over every CPU:
/// (busy, total), busy being all but idle and I/O wait.
pub fn machine_cpu() -> anyhow::Result<(u64, u64)> {
    parse_machine_stat(&std::fs::read_to_string("/proc/stat")?)
}

fn parse_machine_stat(stat: &str) -> anyhow::Result<(u64, u64)> {
    let line = stat
        .lines()
        .find(|l| l.starts_with("cpu "))
        .context("no cpu line in /proc/stat")?;
    // user nice system idle iowait irq softirq steal (guest time is already in user).
    let values: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .take(8)
        .map(str::parse)
        .collect::<Result<_, _>>()?;
    anyhow::ensure!(values.len() == 8, "short cpu line in /proc/stat");
    let total: u64 = values.iter().sum();
    Ok((total - values[3] - values[4], total))
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

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "tests may unwrap")]
mod tests {
    use super::*;

    #[test]
    fn a_stat_line_is_read_from_after_the_command_name_whatever_it_holds() {
        // pid (comm) state ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt
        // utime stime cutime cstime …
        let line = "4242 (post (gres): x) S 17 4242 4242 0 -1 4194304 100 0 0 0 \
                    250 50 7 3 20 0 1 0 12345 1000000 200";
        let cpu = parse_proc_stat(line).unwrap();
        assert_eq!((cpu.ppid, cpu.own, cpu.reaped_children), (17, 300, 10));
        assert!(parse_proc_stat("4242 (short) S 17 1 1").is_err());
    }

    #[test]
    fn the_machine_is_busy_for_all_but_its_idle_and_io_wait_time() {
        let stat = "cpu  100 5 30 800 40 2 3 1 9 0\ncpu0 50 2 15 400 20 1 1 0 4 0\n";
        // Guest time (the 9th and 10th values) is already counted in user time.
        assert_eq!(parse_machine_stat(stat).unwrap(), (141, 981));
        assert!(parse_machine_stat("cpu0 1 2 3\n").is_err());
    }

    #[test]
    fn this_process_is_found_under_its_parent_in_proc() {
        let me = std::process::id();
        let cpu = proc_cpu(me).unwrap();
        assert_eq!(cpu.ppid, std::os::unix::process::parent_id());
        // The parent's tree holds at least this process's time.
        assert!(tree_cpu(cpu.ppid).unwrap() >= cpu.own);
        let (busy, total) = machine_cpu().unwrap();
        assert!(busy <= total && total > 0);
    }

    #[test]
    fn lost_and_duplicated_titles_are_counted_against_those_sent() {
        let titles = |list: &[&str]| list.iter().map(|t| (*t).to_owned()).collect::<Vec<_>>();
        let sent = titles(&["a", "b", "c"]);
        let arrived = titles(&["a", "a", "a", "c", "x"]);
        assert_eq!(lost_and_duplicated(&sent, &arrived), (1, 2));
    }
}
