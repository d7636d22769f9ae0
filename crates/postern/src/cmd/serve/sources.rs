//! The mailbox watchers `serve` runs, built from the `incoming_email:` and
//! `service_desk_email:` sections (GitLab's keys).

use std::sync::Arc;

use postern_inbox::status::SourceStatus;
use postern_store::Store;
use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::exit::{CONFIG, Failure};
use crate::intake::Wake;
use crate::setup::Setup;

type Starter = Box<dyn FnOnce(&mut JoinSet<()>, watch::Receiver<bool>) + Send>;

/// The watchers to start, with their live status.
#[derive(Default)]
pub struct Planned {
    /// One line per watcher for the start-up log (no secrets).
    pub descriptions: Vec<String>,
    /// Their status, for `/ready`, `/metrics` and the mail desk.
    pub statuses: Vec<Arc<SourceStatus>>,
    starters: Vec<Starter>,
}

impl Planned {
    /// Starts every watcher on `tasks`.
    pub fn spawn(self, tasks: &mut JoinSet<()>, stop: watch::Receiver<bool>) {
        for start in self.starters {
            start(tasks, stop.clone());
        }
    }
}

/// `postern check` lines for every enabled mailbox: log in and open the folder (IMAP), get a
/// token and read the folder (Microsoft Graph).
pub fn checks(setup: &Setup) -> Vec<crate::cmd::check::PendingCheck<'_>> {
    let _ = setup;
    Vec::new()
}

/// Reads the mailbox sections. A mailbox that is enabled but cannot be watched is a
/// configuration error, never a silent no-op.
pub fn plan(setup: &Setup, _store: &Store, _wake: Wake) -> Result<Planned, Failure> {
    let planned = Planned::default();
    for (name, section) in [
        ("incoming_email", setup.config.incoming_email.as_ref()),
        (
            "service_desk_email",
            setup.config.service_desk_email.as_ref(),
        ),
    ] {
        let Some(section) = section else { continue };
        if section.enabled != Some(true) || section.host.is_none() && section.inbox_method.is_none()
        {
            continue;
        }
        return Err(Failure::new(
            CONFIG,
            anyhow::anyhow!("{name}: mailbox watching is not available in this build"),
        ));
    }
    Ok(planned)
}
