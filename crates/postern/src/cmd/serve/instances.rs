//! Noticing other instances on the same mailboxes (`redis:` in postern.yml). Standalone
//! instances with stores of their own that watch one mailbox each store and process every
//! message they fetch first: each becomes two issues. On one PostgreSQL store they share the
//! work instead. With a Redis they share, each instance records its presence per mailbox
//! (`postern_gitlab::Arbiter::announce`, with its id from the data directory); one that finds
//! another there without a shared store says so loudly: a warning in its log every few
//! minutes, in `/ready`, and in `postern check`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use postern_gitlab::{Arbiter, RedisSettings, mailbox_source};
use postern_vocab::Shutdown;
use postern_web::Warnings;

use super::sources::Section;
use crate::exit::{CONFIG, Failure, SOFTWARE};
use crate::setup::Setup;

/// How often the presence is renewed and the others looked at (well within its lifetime).
const ANNOUNCE_INTERVAL: Duration = Duration::from_secs(60);

/// How often the warning is logged again while the other instance is there.
const WARN_INTERVAL: Duration = Duration::from_secs(5 * 60);

/// The arbiter on `redis:`, if configured, with this instance's id (made now if it has none).
pub fn arbiter(setup: &Setup) -> Result<Option<Arc<Arbiter>>, Failure> {
    arbiter_for(setup, || {
        postern_gitlab::instance_id(&setup.data_dir).map_err(|e| {
            Failure::new(
                SOFTWARE,
                anyhow::anyhow!(
                    "{}: cannot keep this instance's id: {e}",
                    setup.data_dir.display()
                ),
            )
        })
    })
}

/// The arbiter on `redis:` for `check`, which writes nothing in the data directory (it may run
/// as another user than `serve`): with the instance's id if it has one, else with none.
fn arbiter_for_check(setup: &Setup) -> Result<Option<Arc<Arbiter>>, Failure> {
    let kept = std::fs::read_to_string(
        setup
            .data_dir
            .join(postern_gitlab::arbiter::INSTANCE_ID_FILE),
    )
    .map(|id| id.trim().to_owned())
    .unwrap_or_default();
    arbiter_for(setup, || Ok(kept))
}

fn arbiter_for(
    setup: &Setup,
    instance: impl FnOnce() -> Result<String, Failure>,
) -> Result<Option<Arc<Arbiter>>, Failure> {
    let Some(section) = setup.config.redis.as_ref() else {
        return Ok(None);
    };
    let mut settings = RedisSettings::new(section.url.expose());
    settings.namespace = section.namespace.clone();
    settings.configured = true;
    let instance = instance()?;
    let arbiter = Arbiter::new(&settings, &instance)
        .map_err(|e| Failure::new(CONFIG, anyhow::anyhow!("redis.url: {e}")))?;
    Ok(Some(Arc::new(arbiter)))
}

/// What to say about `others` on the mailbox of `name`, or nothing when a shared store makes
/// them harmless.
pub fn warning(others: &[String], shared_store: bool) -> Option<String> {
    if others.is_empty() || shared_store {
        return None;
    }
    Some(format!(
        "other postern instance(s) {} watch this mailbox without a shared store: a message more than one of them fetches is processed by each (run them all on one PostgreSQL store, or stop all but one)",
        others.join(", ")
    ))
}

/// Renews this instance's presence on every watched mailbox until `shutdown`, and warns
/// (log and `/ready`) while another instance is there and the store is not shared.
pub async fn watch(
    arbiter: Arc<Arbiter>,
    sections: Vec<Section>,
    shared_store: bool,
    warnings: Warnings,
    shutdown: Shutdown,
) {
    let mailboxes: Vec<(&'static str, String)> = sections
        .iter()
        .map(|(name, _, settings)| (*name, mailbox_source(settings)))
        .collect();
    let mut last_warned: Vec<Option<Instant>> = vec![None; mailboxes.len()];
    let mut known: Vec<Vec<String>> = vec![Vec::new(); mailboxes.len()];
    loop {
        for (i, (name, source)) in mailboxes.iter().enumerate() {
            let others = match arbiter.announce(source).await {
                Ok(others) => others,
                Err(reason) => {
                    tracing::warn!(
                        mailbox = name,
                        reason,
                        "cannot record this instance's presence on Redis; other instances go unnoticed until it answers"
                    );
                    continue;
                }
            };
            if others != known[i] {
                tracing::info!(mailbox = name, instance = arbiter.instance(), others = ?others, shared_store, "postern instances on this mailbox changed");
                known[i] = others.clone();
            }
            match warning(&others, shared_store) {
                Some(line) => {
                    if last_warned[i].is_none_or(|at| at.elapsed() >= WARN_INTERVAL) {
                        tracing::warn!(mailbox = name, instance = arbiter.instance(), "{line}");
                        last_warned[i] = Some(Instant::now());
                    }
                    warnings.set(name, &[line]);
                }
                None => {
                    last_warned[i] = None;
                    warnings.set(name, &[]);
                }
            }
        }
        if shutdown.sleep(ANNOUNCE_INTERVAL).await {
            return;
        }
    }
}

/// `postern check`'s line about other instances: with `redis:`, the instances present on each
/// watched mailbox (a failure when they would process mail twice); without it, a warning that
/// a second instance would go unnoticed.
pub async fn check(
    setup: &Setup,
    shared_store: bool,
) -> (Vec<crate::cmd::check::CheckLine>, Vec<String>) {
    let sections = super::sources::sections(setup);
    if sections.is_empty() || shared_store {
        return (Vec::new(), Vec::new());
    }
    let arbiter = match arbiter_for_check(setup) {
        Ok(Some(arbiter)) => arbiter,
        Ok(None) => {
            return (
                Vec::new(),
                vec!["instances: no redis: section, so a second postern instance watching these mailboxes with a store of its own would go unnoticed and handle every message it fetches first again; run one instance per mailbox, or several on one PostgreSQL store".to_owned()],
            );
        }
        Err(failure) => {
            return (
                vec![crate::cmd::check::CheckLine {
                    name: "instances".to_owned(),
                    result: Err(format!("{:#}", failure.error)),
                }],
                Vec::new(),
            );
        }
    };
    let mut lines = Vec::new();
    for (name, _, settings) in &sections {
        let result = match arbiter.others_present(&mailbox_source(settings)).await {
            Err(reason) => Err(format!("redis: {reason}")),
            Ok(others) => match warning(&others, shared_store) {
                Some(line) => Err(line),
                None => Ok("no other postern instance watches this mailbox".to_owned()),
            },
        };
        lines.push(crate::cmd::check::CheckLine {
            name: format!("instances on {name}"),
            result,
        });
    }
    (lines, Vec::new())
}
