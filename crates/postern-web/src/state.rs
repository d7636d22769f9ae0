//! [`WebState`]: what every request handler can reach.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use metrics_exporter_prometheus::PrometheusHandle;
use postern_core::Processor;
use postern_inbox::status::SourceStatus;
use postern_store::{Store, Tx};

use crate::WebError;
use crate::proxy::TrustedProxies;
use crate::secret::{HashingGate, HashingLimits, SignInStats};
use crate::throttle::{SignInThrottle, ThrottlePolicy};

/// Settings of the web UI.
#[derive(Debug, Clone)]
pub struct WebConfig {
    /// Shown in page titles.
    pub instance_name: String,
    /// Where people reach the UI, without a trailing slash (`http://127.0.0.1:8080`), for
    /// links printed outside the browser (the setup link).
    pub base_url: String,
    /// Mark cookies `Secure` (set when the UI is served over HTTPS, directly or by a proxy).
    pub secure_cookies: bool,
    /// How long a sign-in lasts.
    pub session_lifetime: Duration,
    /// Rows per page in the inbound log and the outbox.
    pub page_size: i64,
    /// Limits on failed sign-ins.
    pub sign_in_throttle: ThrottlePolicy,
    /// Reverse proxies whose `Forwarded` / `X-Forwarded-For` name the client (for sign-in
    /// throttling and logs). Empty by default: no header is believed, the peer counts.
    pub trusted_proxies: TrustedProxies,
    /// How many password hashes run at once and how many sign-ins may wait for one.
    pub sign_in_hashing: HashingLimits,
}

impl WebConfig {
    /// Defaults for a UI at `base_url`: two-week sessions, 50 rows a page, cookies not marked
    /// `Secure` unless `base_url` is `https://`.
    pub fn new(instance_name: &str, base_url: &str) -> WebConfig {
        WebConfig {
            instance_name: instance_name.to_owned(),
            base_url: base_url.trim_end_matches('/').to_owned(),
            secure_cookies: base_url.starts_with("https://"),
            session_lifetime: Duration::from_secs(14 * 24 * 3600),
            page_size: 50,
            sign_in_throttle: ThrottlePolicy::default(),
            trusted_proxies: TrustedProxies::default(),
            sign_in_hashing: HashingLimits::default(),
        }
    }
}

/// Shared by every request: the store, the processor, the sources' live status and the
/// metrics handle. Cheap to clone.
#[derive(Clone)]
pub struct WebState {
    pub(crate) inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub(crate) processor: Arc<Processor>,
    pub(crate) sources: Vec<Arc<SourceStatus>>,
    pub(crate) metrics: Option<PrometheusHandle>,
    pub(crate) config: WebConfig,
    pub(crate) templates: minijinja::Environment<'static>,
    pub(crate) throttle: Arc<SignInThrottle>,
    pub(crate) hashing: HashingGate,
    pub(crate) warnings: Warnings,
}

/// What an operator should know though the instance works (another instance processing the
/// same mailbox into a store of its own …): shown by `/ready`, set by whoever notices. Cheap
/// to clone; every clone sees the same list.
#[derive(Debug, Clone, Default)]
pub struct Warnings(Arc<std::sync::RwLock<Vec<String>>>);

impl Warnings {
    /// Replaces the warnings of the topic `topic` (lines starting with `<topic>: `) with
    /// `lines`, each shown as `<topic>: <line>`.
    pub fn set(&self, topic: &str, lines: &[String]) {
        if let Ok(mut all) = self.0.write() {
            let prefix = format!("{topic}: ");
            all.retain(|w| !w.starts_with(&prefix));
            all.extend(lines.iter().map(|line| format!("{prefix}{line}")));
        }
    }

    /// The warnings now.
    pub fn list(&self) -> Vec<String> {
        self.0.read().map(|w| w.clone()).unwrap_or_default()
    }
}

impl WebState {
    /// The state for a UI over `processor` (and its store), showing `sources`.
    pub fn new(
        processor: Arc<Processor>,
        sources: Vec<Arc<SourceStatus>>,
        config: WebConfig,
    ) -> WebState {
        WebState {
            inner: Arc::new(Inner {
                processor,
                sources,
                metrics: None,
                throttle: Arc::new(SignInThrottle::new(config.sign_in_throttle)),
                hashing: HashingGate::new(config.sign_in_hashing),
                warnings: Warnings::default(),
                config,
                templates: crate::pages::environment(),
            }),
        }
    }

    /// The same state with `/metrics` rendering what `handle`'s recorder collected (see
    /// [`install_metrics_recorder`](crate::install_metrics_recorder)). Without it `/metrics`
    /// shows only the gauges computed at scrape time.
    pub fn with_metrics(self, handle: PrometheusHandle) -> WebState {
        let inner = Inner {
            processor: self.inner.processor.clone(),
            sources: self.inner.sources.clone(),
            metrics: Some(handle),
            config: self.inner.config.clone(),
            templates: crate::pages::environment(),
            throttle: self.inner.throttle.clone(),
            hashing: self.inner.hashing.clone(),
            warnings: self.inner.warnings.clone(),
        };
        WebState {
            inner: Arc::new(inner),
        }
    }

    /// The warnings `/ready` shows; set them through the returned handle.
    pub fn warnings(&self) -> Warnings {
        self.inner.warnings.clone()
    }

    /// The store.
    pub fn store(&self) -> &Store {
        self.inner.processor.store()
    }

    /// Runs `read` in a read-only transaction, rolled back afterwards: the shape of every page
    /// and API answer that only looks.
    pub(crate) async fn read<T>(
        &self,
        read: impl AsyncFnOnce(&mut Tx) -> Result<T, WebError>,
    ) -> Result<T, WebError> {
        let mut tx = self.store().begin_read_only().await?;
        let value = read(&mut tx).await?;
        tx.rollback().await?;
        Ok(value)
    }

    /// Runs `write` in one transaction, committed when it succeeds (dropped, so rolled back,
    /// when it fails).
    pub(crate) async fn write<T>(
        &self,
        write: impl AsyncFnOnce(&mut Tx) -> Result<T, WebError>,
    ) -> Result<T, WebError> {
        let mut tx = self.store().begin().await?;
        let value = write(&mut tx).await?;
        tx.commit().await?;
        Ok(value)
    }

    pub(crate) fn processor(&self) -> &Processor {
        &self.inner.processor
    }

    pub(crate) fn config(&self) -> &WebConfig {
        &self.inner.config
    }

    pub(crate) fn throttle(&self) -> &SignInThrottle {
        &self.inner.throttle
    }

    pub(crate) fn hashing(&self) -> &HashingGate {
        &self.inner.hashing
    }

    /// What password hashing has done since start: checks run, the most at once, sign-ins
    /// refused as busy. Also in `/metrics`.
    pub fn sign_in_stats(&self) -> SignInStats {
        self.inner.hashing.stats()
    }

    pub(crate) fn uploads_dir(&self) -> PathBuf {
        self.inner.processor.config().uploads.directory.clone()
    }
}
