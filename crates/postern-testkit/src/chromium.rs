//! Headless Chromium for the UI tests (Debian's `chromium` + `chromium-driver`, driven over
//! WebDriver with fantoccini): starting it, and the few steps every flow uses. Every lookup
//! waits, bounded, for its element, and a click waits until the next page replaced the old
//! one: on a loaded machine a page may still be loading when the test looks at it.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use fantoccini::elements::Element;
use fantoccini::{Client, ClientBuilder, Locator};

/// The Chromium binary of Debian's package.
pub const CHROMIUM: &str = "/usr/bin/chromium";
/// The WebDriver server of Debian's `chromium-driver`.
pub const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
/// How long one lookup may wait for its element.
const LOOKUP: Duration = Duration::from_secs(10);

/// What a browser step fails with.
pub type Error = Box<dyn std::error::Error>;

/// Why the browser tests cannot run here, if they cannot: `POSTERN_SKIP_CHROMIUM` is set, or
/// a binary is missing. Tests print it and return.
pub fn skip_reason() -> Option<String> {
    if std::env::var_os("POSTERN_SKIP_CHROMIUM").is_some() {
        return Some("POSTERN_SKIP_CHROMIUM is set".into());
    }
    [CHROMIUM, CHROMEDRIVER]
        .into_iter()
        .find(|binary| !Path::new(binary).exists())
        .map(|binary| format!("{binary} is not installed (Debian: chromium chromium-driver)"))
}

/// A headless Chromium with its WebDriver server; the profile lives in `profile_dir`.
pub struct Browser {
    /// The WebDriver session.
    pub client: Client,
    driver: tokio::process::Child,
}

impl Browser {
    /// Starts chromedriver on a free loopback port and opens a 1280×1000 headless session.
    pub async fn start(profile_dir: &Path) -> Result<Browser, Error> {
        Browser::start_with_args(profile_dir, &[]).await
    }

    /// [`Browser::start`] with more Chromium command-line flags (say, a private CA's key in
    /// `--ignore-certificate-errors-spki-list`).
    pub async fn start_with_args(profile_dir: &Path, extra: &[String]) -> Result<Browser, Error> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let driver = tokio::process::Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()?;
        let mut args: Vec<String> = [
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--window-size=1280,1000",
        ]
        .map(String::from)
        .into();
        args.push(format!("--user-data-dir={}", profile_dir.display()));
        args.extend(extra.iter().cloned());
        let mut capabilities = serde_json::Map::new();
        capabilities.insert(
            "goog:chromeOptions".into(),
            serde_json::json!({ "binary": CHROMIUM, "args": args }),
        );
        // chromedriver needs a moment to listen; bounded wait.
        for _ in 0..50 {
            let connector = hyper_util::client::legacy::connect::HttpConnector::new();
            if let Ok(client) = ClientBuilder::new(connector)
                .capabilities(capabilities.clone())
                .connect(&format!("http://127.0.0.1:{port}"))
                .await
            {
                return Ok(Browser { client, driver });
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        Err("chromedriver did not start within 10 s".into())
    }

    /// Ends the session and the driver.
    pub async fn close(mut self) {
        let _ = self.client.close().await;
        let _ = self.driver.kill().await;
    }
}

/// Saves a screenshot of the page as `dir/name.png` and prints its path.
pub async fn snap(client: &Client, dir: &Path, name: &str) -> Result<(), Error> {
    let png = client.screenshot().await?;
    let path = dir.join(format!("{name}.png"));
    std::fs::write(&path, png)?;
    println!("screenshot: {}", path.display());
    Ok(())
}

/// `css` once it is on the page.
pub async fn find(client: &Client, css: &str) -> Result<Element, Error> {
    Ok(client
        .wait()
        .at_most(LOOKUP)
        .for_element(Locator::Css(css))
        .await?)
}

/// Replaces the text of the field `css`.
pub async fn fill(client: &Client, css: &str, text: &str) -> Result<(), Error> {
    let field = find(client, css).await?;
    field.clear().await?;
    field.send_keys(text).await?;
    Ok(())
}

/// Clicks a link or submit button and waits (bounded) until the next page replaced this one,
/// so that the next lookup cannot see the old page.
pub async fn click(client: &Client, css: &str) -> Result<(), Error> {
    let old_page = client.find(Locator::Css("html")).await?;
    find(client, css).await?.click().await?;
    for _ in 0..100 {
        if old_page.tag_name().await.is_err() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    find(client, "main").await?;
    Ok(())
}

/// The text of the page's `main` element.
pub async fn page_text(client: &Client) -> Result<String, Error> {
    Ok(find(client, "main").await?.text().await?)
}
