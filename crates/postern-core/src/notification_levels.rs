//! How much mail a person gets: GitLab's notification levels. A project's level is `global`
//! (follow the person's global level, the default), `participating` (threads they take part
//! in: author, assignee, commenter, mentioned, subscribed), `watch` (all activity of the
//! project) or `disabled` (nothing). The global level is one of the last three, by default
//! `participating`. `notify` asks [`effective`] of each recipient and [`watchers`] of a project.

use postern_store::{Project, Tx, User};

use crate::error::ProcessError;
use crate::permissions;

/// A notification level, as GitLab names it (`as_str`, `FromStr`). Not a `named_enum!`:
/// the store's `sqlx` decoding that macro adds is of no use here, where no query reads it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Level {
    /// Follow the global level (a project's only).
    Global,
    /// Threads the person takes part in.
    Participating,
    /// All activity of the project.
    Watch,
    /// No mail.
    Disabled,
}

impl Level {
    /// Every level, in the order GitLab lists them.
    pub const ALL: [Level; 4] = [
        Level::Global,
        Level::Participating,
        Level::Watch,
        Level::Disabled,
    ];

    /// Its name.
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Global => "global",
            Level::Participating => "participating",
            Level::Watch => "watch",
            Level::Disabled => "disabled",
        }
    }
}

impl std::str::FromStr for Level {
    type Err = LevelRefusal;

    fn from_str(name: &str) -> Result<Level, LevelRefusal> {
        Level::ALL
            .into_iter()
            .find(|level| level.as_str() == name)
            .ok_or(LevelRefusal::UnknownLevel)
    }
}

/// The global level when none was chosen.
pub const DEFAULT_GLOBAL: Level = Level::Participating;

/// The level that applies to `user_id` in `project_id`: the project's, else the global one
/// (never [`Level::Global`]). A stored name this version does not know counts as the default.
pub async fn effective(tx: &mut Tx, user_id: i64, project_id: i64) -> Result<Level, ProcessError> {
    let chosen = tx
        .notification_level(user_id, project_id)
        .await?
        .and_then(|name| name.parse::<Level>().ok());
    if let Some(level) = chosen.filter(|l| *l != Level::Global) {
        return Ok(level);
    }
    global(tx, user_id).await
}

/// `user_id`'s global level.
pub async fn global(tx: &mut Tx, user_id: i64) -> Result<Level, ProcessError> {
    Ok(tx
        .notification_level(user_id, 0)
        .await?
        .and_then(|name| name.parse::<Level>().ok())
        .filter(|l| *l != Level::Global)
        .unwrap_or(DEFAULT_GLOBAL))
}

/// The people watching `project` (they hear of all its activity, as far as they may read it:
/// the caller checks that per change).
pub async fn watchers(tx: &mut Tx, project: &Project) -> Result<Vec<i64>, ProcessError> {
    Ok(tx.project_watchers(project.id).await?)
}

/// Why a level was not set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum LevelRefusal {
    /// Not one of GitLab's level names.
    #[error("Unknown notification level.")]
    UnknownLevel,
    /// The global level cannot be "global".
    #[error("The global level is participating, watch or disabled.")]
    GlobalIsNotALevel,
    /// The person may not read the project (it looks missing).
    #[error("No such project.")]
    ProjectNotFound,
}

/// Sets `user`'s level for `project` (`None`: the global level). Choosing `global` for a
/// project, or the default as the global level, removes the choice.
pub async fn set(
    tx: &mut Tx,
    user: &User,
    project: Option<&Project>,
    level: Level,
) -> Result<Result<(), LevelRefusal>, ProcessError> {
    let (project_id, stored) = match project {
        Some(project) => {
            // Whoever reads the project (what `Readable::MergeRequest` asks).
            let readable = permissions::Readable::MergeRequest;
            if !permissions::can_read(tx, user, project, readable).await? {
                return Ok(Err(LevelRefusal::ProjectNotFound));
            }
            (project.id, (level != Level::Global).then_some(level))
        }
        None if level == Level::Global => return Ok(Err(LevelRefusal::GlobalIsNotALevel)),
        None => (0, (level != DEFAULT_GLOBAL).then_some(level)),
    };
    tx.set_notification_level(user.id, project_id, stored.map(Level::as_str))
        .await?;
    Ok(Ok(()))
}
