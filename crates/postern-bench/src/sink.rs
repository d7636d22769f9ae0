//! The local HTTP sink both GitLab deliverers POST to in the benchmark (mail_room's `postback`
//! and postern's webhook), and the watch over one drain: POSTs counted, peak RSS sampled.
//! It answers 200 to every POST without checking the token: it stands for GitLab's speed, not
//! its checks (the tests' stand-in checks those).

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use postern_testkit::mailserver::MailServer;
use tokio::io::{AsyncBufReadExt as _, AsyncReadExt as _, AsyncWriteExt as _, BufReader};
use tokio::net::TcpListener;

/// What one drain measured.
pub struct Run {
    /// Spawn → last POST received.
    pub elapsed: Duration,
    /// Peak RSS of the process, MB.
    pub peak_rss: f64,
    /// RSS 3 s after the last POST, MB.
    pub idle_rss: f64,
    /// Subjects of every POSTed message.
    pub titles: Vec<String>,
    /// Messages left undeleted in the folder.
    pub left: usize,
}

/// A running sink.
pub struct Sink {
    port: u16,
    titles: Arc<Mutex<Vec<String>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Sink {
    /// Listens on a free loopback port.
    pub async fn start() -> anyhow::Result<Sink> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let port = listener.local_addr()?.port();
        let titles = Arc::new(Mutex::new(Vec::new()));
        let task = tokio::spawn(sink(listener, titles.clone()));
        Ok(Sink { port, titles, task })
    }

    /// Its port.
    pub fn port(&self) -> u16 {
        self.port
    }

    fn received(&self) -> usize {
        self.titles.lock().map(|t| t.len()).unwrap_or(0)
    }

    /// Waits until `count` messages were POSTed by `child` (sampling its peak RSS), then 3 s for
    /// its idle RSS; stops it and counts what is left in `folder`.
    pub async fn watch(
        self,
        name: &str,
        mut child: tokio::process::Child,
        started: Instant,
        count: usize,
        server: &MailServer,
        folder: &str,
    ) -> anyhow::Result<Run> {
        let pid = child.id().context(format!("{name} exited at once"))?;
        let deadline = started + Duration::from_secs(900);
        let mut peak = 0.0f64;
        let elapsed = loop {
            let got = self.received();
            if let Ok(hwm) = crate::measure::proc_status_mb(pid, "VmHWM") {
                peak = peak.max(hwm);
            }
            if got >= count {
                break started.elapsed();
            }
            anyhow::ensure!(
                Instant::now() < deadline,
                "{name} delivered {got} of {count}"
            );
            if let Ok(Some(status)) = child.try_wait() {
                anyhow::bail!("{name} exited ({status}) after {got} of {count}");
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        tokio::time::sleep(Duration::from_secs(3)).await;
        let idle_rss = crate::measure::proc_status_mb(pid, "VmRSS").unwrap_or(f64::NAN);
        peak = peak.max(crate::measure::proc_status_mb(pid, "VmHWM").unwrap_or(0.0));
        let _ = std::process::Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status();
        if tokio::time::timeout(Duration::from_secs(15), child.wait())
            .await
            .is_err()
        {
            let _ = child.kill().await;
        }
        self.task.abort();
        let left = crate::load::messages_left(server, folder).await?;
        let titles = self.titles.lock().map(|t| t.clone()).unwrap_or_default();
        Ok(Run {
            elapsed,
            peak_rss: peak,
            idle_rss,
            titles,
            left,
        })
    }
}

/// A minimal HTTP/1.1 sink: answers 200 to every POST and records the Subject of its body.
async fn sink(listener: TcpListener, titles: Arc<Mutex<Vec<String>>>) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            return;
        };
        let titles = titles.clone();
        tokio::spawn(async move {
            let mut reader = BufReader::new(stream);
            loop {
                let mut length = 0usize;
                let mut line = String::new();
                if reader.read_line(&mut line).await.unwrap_or(0) == 0 {
                    return;
                }
                loop {
                    let mut header = String::new();
                    if reader.read_line(&mut header).await.unwrap_or(0) == 0 {
                        return;
                    }
                    let header = header.trim_end();
                    if header.is_empty() {
                        break;
                    }
                    if let Some((name, value)) = header.split_once(':')
                        && name.eq_ignore_ascii_case("content-length")
                    {
                        length = value.trim().parse().unwrap_or(0);
                    }
                }
                let mut body = vec![0; length];
                if reader.read_exact(&mut body).await.is_err() {
                    return;
                }
                let text = String::from_utf8_lossy(&body);
                if let Some(subject) = text.lines().find_map(|l| l.strip_prefix("Subject: "))
                    && let Ok(mut titles) = titles.lock()
                {
                    titles.push(subject.trim().to_owned());
                }
                let _ = reader
                    .get_mut()
                    .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
                    .await;
            }
        });
    }
}
