//! What every browser test does around its own steps: `web` served on a loopback port, a
//! headless Chromium (Debian's `chromium` + `chromium-driver`) with a profile of its own, a
//! screenshot when a step fails, and everything stopped afterwards. Screenshots go to
//! `<target>/tmp/chromium/`.

use std::path::{Path, PathBuf};
use std::time::Duration;

use fantoccini::Client;
use postern_testkit::chromium::{self, Browser, Error, skip_reason};

use crate::support::Web;

pub fn screenshot_dir() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR")).join("chromium")
}

/// Saves a screenshot of the current page as `<name>.png`.
pub async fn snap(client: &Client, name: &str) -> Result<(), Error> {
    chromium::snap(client, &screenshot_dir(), name).await
}

/// Runs `steps` (given the browser and the server's base URL) against `web` in Chromium;
/// `name` names the profile directory and the screenshot taken when a step fails. Without
/// Chromium on the machine the test says why and passes (see `skip_reason`).
pub async fn run(
    web: &Web,
    name: &str,
    steps: impl AsyncFnOnce(&Client, &str) -> Result<(), Error>,
) {
    if let Some(reason) = skip_reason() {
        println!("skipped: {reason}");
        return;
    }
    std::fs::create_dir_all(screenshot_dir()).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(postern_web::serve(listener, web.state.clone(), async {
        let _ = stopped.await;
    }));
    let browser = Browser::start(&web.data.path().join(format!("chromium-{name}")))
        .await
        .unwrap();
    let client = &browser.client;
    let result = steps(client, &base).await;
    if result.is_err() {
        let _ = snap(client, &format!("{name}-99-failure")).await;
    }
    browser.close().await;
    let _ = stop.send(());
    let _ = tokio::time::timeout(Duration::from_secs(10), server).await;
    result.unwrap();
}
