//! Putting mail in front of the servers: messages of a given size, pre-loaded folders, one
//! message at a time for latency, over IMAP APPEND or LMTP; and the raw-client floor.

use std::time::{Duration, Instant};

use anyhow::Context as _;
use postern_testkit::imap::ImapClient;
use postern_testkit::mailserver::{MailServer, USER};
use tokio::io::{AsyncBufReadExt as _, AsyncWriteExt as _, BufReader};
use tokio::net::TcpStream;

use crate::instance::Instance;
use crate::measure::Latency;

/// Size of a "small" message (the baseline's are 389 bytes in all).
pub const SMALL_BODY: usize = 400;
/// Size of a "1 MB" message (the baseline's are 1 040 762 bytes).
pub const LARGE_BODY: usize = 1_040_762;

/// How long one message may take to show up before the run is called failed.
const ARRIVAL_BOUND: Duration = Duration::from_secs(30);

/// A new-issue mail to `to` with subject `title`, about `size` bytes in all: a plain-text
/// body for small sizes; above 64 KB a short text and an attachment making up the rest (what a
/// large mail is in practice: the baseline's 1 MB messages are 1 040 762 bytes each).
pub fn message(to: &str, title: &str, size: usize) -> Vec<u8> {
    let headers = format!(
        "From: Jake <jake@example.com>\r\nTo: {to}\r\nSubject: {title}\r\n\
         Message-ID: <{title}@bench.example.com>\r\nDate: Sat, 28 Nov 2026 12:00:00 +0000\r\n\
         MIME-Version: 1.0\r\n"
    );
    let line = b"The quick brown fox jumps over the lazy dog, again and again and again.\r\n";
    if size <= 64 * 1024 {
        let mut raw =
            format!("{headers}Content-Type: text/plain; charset=utf-8\r\n\r\n").into_bytes();
        while raw.len() < size {
            raw.extend_from_slice(line);
        }
        return raw;
    }
    let mut raw = format!(
        "{headers}Content-Type: multipart/mixed; boundary=\"b1\"\r\n\r\n--b1\r\n\
         Content-Type: text/plain; charset=utf-8\r\n\r\nThe log from last night is attached.\r\n\
         --b1\r\nContent-Type: application/octet-stream; name=\"{title}.log\"\r\n\
         Content-Disposition: attachment; filename=\"{title}.log\"\r\n\
         Content-Transfer-Encoding: base64\r\n\r\n"
    )
    .into_bytes();
    // Base64 of varied bytes, 76 characters a line.
    let alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut state = 0x2545_f491_4f6c_dd1du64;
    while raw.len() + 80 < size {
        for _ in 0..76 {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            raw.push(alphabet[(state % 64) as usize]);
        }
        raw.extend_from_slice(b"\r\n");
    }
    raw.extend_from_slice(b"--b1--\r\n");
    raw
}

/// The machine's ceiling for a drain: a bare client logs in, selects `folder` and fetches every
/// message with one `UID FETCH 1:* BODY.PEEK[]`, storing nothing and changing no flag. Returns
/// how many messages arrived and how long it took from connecting.
pub async fn imap_fetch_floor(
    server: &MailServer,
    folder: &str,
) -> anyhow::Result<(usize, Duration)> {
    let started = Instant::now();
    let mut client = client(server).await?;
    client.select(folder).await?;
    let fetched = client
        .command("UID FETCH 1:* (BODY.PEEK[])")
        .await?
        .iter()
        .filter(|r| !r.literals.is_empty())
        .count();
    let elapsed = started.elapsed();
    client.logout().await.ok();
    Ok((fetched, elapsed))
}

async fn client(server: &MailServer) -> anyhow::Result<ImapClient> {
    login(server.imap_port(), server.password()).await
}

/// An IMAP client logged in as the test user on `127.0.0.1:port` (for a task that cannot
/// borrow the server).
pub async fn login(port: u16, password: &str) -> anyhow::Result<ImapClient> {
    let mut client = ImapClient::connect(port).await?;
    client.login(USER, password).await?;
    Ok(client)
}

/// Creates `folder` (if needed) and appends `count` messages; returns their titles.
pub async fn preload(
    server: &MailServer,
    folder: &str,
    to: &str,
    count: usize,
    body_size: usize,
) -> anyhow::Result<Vec<String>> {
    let mut client = client(server).await?;
    let _ = client.command(&format!("CREATE \"{folder}\"")).await;
    let mut titles = Vec::with_capacity(count);
    for n in 0..count {
        let title = format!("{folder}-{n}");
        client
            .append(folder, "", &message(to, &title, body_size))
            .await
            .with_context(|| format!("APPEND to {folder}"))?;
        titles.push(title);
    }
    client.logout().await?;
    Ok(titles)
}

/// Messages still in `folder` and not flagged `\Deleted`.
pub async fn messages_left(server: &MailServer, folder: &str) -> anyhow::Result<usize> {
    let mut client = client(server).await?;
    client.select(folder).await?;
    let left = client.uid_search("UNDELETED").await?.len();
    client.logout().await?;
    Ok(left)
}

/// postern's IDLE latency: APPEND one message, then wait for its issue in the store.
pub async fn imap_latency(
    server: &MailServer,
    instance: &Instance,
    folder: &str,
    count: usize,
) -> anyhow::Result<Latency> {
    let mut client = client(server).await?;
    let _ = client.command(&format!("CREATE \"{folder}\"")).await;
    // Give the watcher time to connect and enter IDLE on the (possibly new) folder.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let mut latency = Latency::default();
    for n in 0..count {
        let title = format!("{folder}-idle-{n}");
        client
            .append(folder, "", &message(instance.address(), &title, SMALL_BODY))
            .await?;
        let appended = Instant::now();
        while !instance.has_issue(&title).await? {
            anyhow::ensure!(appended.elapsed() < ARRIVAL_BOUND, "{title} never arrived");
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        latency.push(appended.elapsed());
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    client.logout().await?;
    Ok(latency)
}

/// Reads one SMTP/LMTP reply (all its lines); returns the last.
async fn reply(reader: &mut BufReader<TcpStream>) -> anyhow::Result<String> {
    loop {
        let mut line = String::new();
        anyhow::ensure!(
            reader.read_line(&mut line).await? > 0,
            "LMTP connection closed"
        );
        if line.len() < 4 || line.as_bytes()[3] == b' ' {
            return Ok(line.trim_end().to_owned());
        }
    }
}

/// One LMTP connection to a postern listener, after `LHLO`.
pub struct LmtpSession {
    reader: BufReader<TcpStream>,
}

impl LmtpSession {
    /// Connects to `127.0.0.1:port` and greets.
    pub async fn open(port: u16) -> anyhow::Result<LmtpSession> {
        let stream = TcpStream::connect(("127.0.0.1", port)).await?;
        let mut reader = BufReader::new(stream);
        reply(&mut reader).await?;
        reader.get_mut().write_all(b"LHLO bench\r\n").await?;
        reply(&mut reader).await?;
        Ok(LmtpSession { reader })
    }

    /// Sends `raw` to `to`; returns when the reply to the end of DATA arrived (postern sends
    /// its `250` only after the message is stored and processed) and how long that reply took.
    pub async fn deliver(&mut self, to: &str, raw: &[u8]) -> anyhow::Result<Duration> {
        for command in [
            "MAIL FROM:<jake@example.com>\r\n".to_owned(),
            format!("RCPT TO:<{to}>\r\n"),
            "DATA\r\n".to_owned(),
        ] {
            self.reader.get_mut().write_all(command.as_bytes()).await?;
            reply(&mut self.reader).await?;
        }
        // Dot-stuffing is not needed: no line of `message` starts with a dot.
        let mut data = raw.to_vec();
        data.extend_from_slice(b".\r\n");
        self.reader.get_mut().write_all(&data).await?;
        let sent = Instant::now();
        let answer = reply(&mut self.reader).await?;
        let elapsed = sent.elapsed();
        anyhow::ensure!(answer.starts_with("250"), "LMTP answered {answer}");
        Ok(elapsed)
    }

    /// Ends the session.
    pub async fn quit(mut self) -> anyhow::Result<()> {
        self.reader.get_mut().write_all(b"QUIT\r\n").await?;
        Ok(())
    }
}

/// LMTP latency: from the end of DATA to the `250`, which postern sends only after the message
/// is stored and processed.
pub async fn lmtp_latency(instance: &Instance, count: usize) -> anyhow::Result<Latency> {
    let mut session = LmtpSession::open(instance.lmtp_port()).await?;
    let mut latency = Latency::default();
    for n in 0..count {
        let title = format!("lmtp-{n}");
        let raw = message(instance.address(), &title, SMALL_BODY);
        latency.push(session.deliver(instance.address(), &raw).await?);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    session.quit().await?;
    Ok(latency)
}

/// The floor any IMAP client has on this server: a bare client in IDLE, from APPEND to the
/// message's bytes in hand (EXISTS, DONE, UID FETCH BODY.PEEK[]).
pub async fn imap_idle_floor(
    server: &MailServer,
    folder: &str,
    count: usize,
) -> anyhow::Result<Latency> {
    let mut appender = client(server).await?;
    let _ = appender.command(&format!("CREATE \"{folder}\"")).await;
    let stream = TcpStream::connect(("127.0.0.1", server.imap_port())).await?;
    let mut idle = BufReader::new(stream);
    let mut line = String::new();
    idle.read_line(&mut line).await?;
    let mut tag = 0u32;
    let mut command = async |idle: &mut BufReader<TcpStream>, text: &str| -> anyhow::Result<()> {
        tag += 1;
        idle.get_mut()
            .write_all(format!("f{tag} {text}\r\n").as_bytes())
            .await?;
        let done = format!("f{tag} ");
        loop {
            let mut line = String::new();
            anyhow::ensure!(idle.read_line(&mut line).await? > 0, "closed");
            if line.starts_with(&done) {
                anyhow::ensure!(line[done.len()..].starts_with("OK"), "{line}");
                return Ok(());
            }
        }
    };
    command(
        &mut idle,
        &format!("LOGIN {USER} \"{}\"", server.password()),
    )
    .await?;
    command(&mut idle, &format!("SELECT \"{folder}\"")).await?;
    let mut latency = Latency::default();
    for n in 0..count {
        idle.get_mut().write_all(b"i IDLE\r\n").await?;
        let mut line = String::new();
        idle.read_line(&mut line).await?; // "+ idling"
        appender
            .append(
                folder,
                "",
                &message("floor@example.test", &format!("floor-{n}"), SMALL_BODY),
            )
            .await?;
        let appended = Instant::now();
        loop {
            let mut line = String::new();
            anyhow::ensure!(idle.read_line(&mut line).await? > 0, "closed in IDLE");
            anyhow::ensure!(appended.elapsed() < ARRIVAL_BOUND, "no EXISTS");
            if line.contains("EXISTS") {
                break;
            }
        }
        idle.get_mut().write_all(b"DONE\r\n").await?;
        loop {
            let mut line = String::new();
            idle.read_line(&mut line).await?;
            if line.starts_with("i ") {
                break;
            }
        }
        command(&mut idle, "UID FETCH * BODY.PEEK[]").await?;
        latency.push(appended.elapsed());
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    appender.logout().await?;
    Ok(latency)
}
