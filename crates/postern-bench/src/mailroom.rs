//! mail_room side by side: Debian's `ruby-mail-room` (GitLab's fork 0.0.9) draining the same
//! kind of folder into a local HTTP sink, the way GitLab's webhook delivery is measured in
//! `mail_room-baseline.md`.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use postern_testkit::mailserver::{MailServer, USER};
use tokio::io::{AsyncBufReadExt as _, AsyncReadExt as _, AsyncWriteExt as _, BufReader};
use tokio::net::TcpListener;

/// What one mail_room drain measured.
pub struct Run {
    /// Spawn → last POST received.
    pub elapsed: Duration,
    /// Peak RSS of the mail_room process, MB.
    pub peak_rss: f64,
    /// RSS 3 s after the last POST, MB.
    pub idle_rss: f64,
    /// Subjects of every POSTed message.
    pub titles: Vec<String>,
    /// Messages left undeleted in the folder.
    pub left: usize,
}

/// Whether `mail_room` is installed.
pub fn available() -> bool {
    std::process::Command::new("sh")
        .args(["-c", "command -v mail_room"])
        .output()
        .is_ok_and(|o| o.status.success())
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

/// Drains `folder` with mail_room until `count` messages were POSTed.
pub async fn drain(server: &MailServer, folder: &str, count: usize) -> anyhow::Result<Run> {
    let dir = tempfile::Builder::new()
        .prefix("mail-room-bench-")
        .tempdir()?;
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let port = listener.local_addr()?.port();
    let titles = Arc::new(Mutex::new(Vec::new()));
    let sink_task = tokio::spawn(sink(listener, titles.clone()));
    let config = dir.path().join("mail_room.yml");
    std::fs::write(
        &config,
        format!(
            "---\n:mailboxes:\n  -\n    :host: \"127.0.0.1\"\n    :port: {imap}\n    :ssl: false\n    \
             :start_tls: false\n    :email: \"{USER}\"\n    :password: \"{password}\"\n    \
             :name: \"{folder}\"\n    :delete_after_delivery: true\n    :expunge_deleted: true\n    \
             :delivery_method: postback\n    :delivery_options:\n      \
             :delivery_url: \"http://127.0.0.1:{port}/\"\n      :content_type: \"text/plain\"\n",
            imap = server.imap_port(),
            password = server.password(),
        ),
    )?;
    let started = Instant::now();
    let log = dir.path().join("mail_room.log");
    let mut child = tokio::process::Command::new("mail_room")
        .arg("-c")
        .arg(&config)
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(&log)?)
        .kill_on_drop(true)
        .spawn()
        .context("cannot start mail_room")?;
    let pid = child.id().context("mail_room exited at once")?;
    let deadline = started + Duration::from_secs(900);
    let mut peak = 0.0f64;
    let elapsed = loop {
        let got = titles.lock().map(|t| t.len()).unwrap_or(0);
        if let Ok(hwm) = crate::measure::proc_status_mb(pid, "VmHWM") {
            peak = peak.max(hwm);
        }
        if got >= count {
            break started.elapsed();
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "mail_room delivered {got} of {count}"
        );
        if let Ok(Some(status)) = child.try_wait() {
            let printed = std::fs::read_to_string(&log).unwrap_or_default();
            let first: Vec<&str> = printed.lines().take(3).collect();
            anyhow::bail!(
                "mail_room exited ({status}) after {got} of {count}: {}",
                first.join(" | ")
            );
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    tokio::time::sleep(Duration::from_secs(3)).await;
    let idle_rss = crate::measure::proc_status_mb(pid, "VmRSS").unwrap_or(f64::NAN);
    peak = peak.max(crate::measure::proc_status_mb(pid, "VmHWM").unwrap_or(0.0));
    let _ = child.kill().await;
    sink_task.abort();
    let left = crate::load::messages_left(server, folder).await?;
    let titles = titles.lock().map(|t| t.clone()).unwrap_or_default();
    Ok(Run {
        elapsed,
        peak_rss: peak,
        idle_rss,
        titles,
        left,
    })
}
