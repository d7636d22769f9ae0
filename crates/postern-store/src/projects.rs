//! Projects, their Service Desk settings, and members with roles.

use crate::ids::{fold, full_path_slug};
use crate::tx::{execute, fetch_all, fetch_one, fetch_optional, scalar_optional};
use crate::{StoreError, Timestamp, Tx};
use postern_vocab::named_enum;

named_enum! {
    /// Who can see a project.
    pub enum Visibility {
        /// Members only.
        Private = "private",
        /// Any signed-in user.
        Internal = "internal",
        /// Everyone.
        Public = "public",
    }
}

named_enum! {
    /// Progress of a Service Desk custom-email verification.
    pub enum CustomEmailVerificationState {
        /// The verification mail was sent; waiting for it to come back.
        Started = "started",
        /// Verified.
        Finished = "finished",
        /// Failed; the error column says why.
        Failed = "failed",
    }
}

/// A project's Service Desk settings (GitLab's `ServiceDeskSetting`, one per project).
///
/// Stored as `sd_*` columns of the project row. A project that never configured Service Desk
/// has the [`Default`] values, which match GitLab's behaviour without a settings row.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, sqlx::FromRow)]
pub struct ServiceDeskSettings {
    /// Service Desk accepts mail for this project.
    #[sqlx(rename = "sd_enabled")]
    pub enabled: bool,
    /// Alias key: mail to `<slug>-<project_key>@<service desk domain>` lands here. Matches
    /// `\A[a-z0-9_]+\z`, at most 255 characters, unique per project slug.
    #[sqlx(rename = "sd_project_key")]
    pub project_key: Option<String>,
    /// The custom support address (e.g. `support@acme.com`).
    #[sqlx(rename = "sd_custom_email")]
    pub custom_email: Option<String>,
    /// Whether mail is sent from the custom address (only after verification).
    #[sqlx(rename = "sd_custom_email_enabled")]
    pub custom_email_enabled: bool,
    /// Verification progress, if one was ever started.
    #[sqlx(rename = "sd_custom_email_verification_state")]
    pub custom_email_verification_state: Option<CustomEmailVerificationState>,
    /// The 12-character token the verification mail must carry back.
    #[serde(skip)]
    #[sqlx(rename = "sd_custom_email_verification_token")]
    pub custom_email_verification_token: Option<String>,
    /// Why the verification failed (e.g. `incorrect_token`).
    #[sqlx(rename = "sd_custom_email_verification_error")]
    pub custom_email_verification_error: Option<String>,
    /// When the verification was started.
    #[sqlx(rename = "sd_custom_email_verification_triggered_at")]
    pub custom_email_verification_triggered_at: Option<Timestamp>,
    /// Who started it.
    #[sqlx(rename = "sd_custom_email_verification_triggerer_id")]
    pub custom_email_verification_triggerer_id: Option<i64>,
    /// New tickets are confidential (default `true`).
    #[sqlx(rename = "sd_tickets_confidential_by_default")]
    pub tickets_confidential_by_default: bool,
    /// A customer's note on a closed ticket reopens it.
    #[sqlx(rename = "sd_reopen_issue_on_external_participant_note")]
    pub reopen_issue_on_external_participant_note: bool,
    /// `Cc` addresses of a new ticket become email participants.
    #[sqlx(rename = "sd_add_external_participants_from_cc")]
    pub add_external_participants_from_cc: bool,
    /// Name of the issue template appended to new tickets.
    #[sqlx(rename = "sd_issue_template_key")]
    pub issue_template_key: Option<String>,
    /// That template's text (postern keeps it in the database, not in a repository file).
    #[sqlx(rename = "sd_issue_template_content")]
    pub issue_template_content: Option<String>,
}

impl Default for ServiceDeskSettings {
    fn default() -> Self {
        ServiceDeskSettings {
            enabled: false,
            project_key: None,
            custom_email: None,
            custom_email_enabled: false,
            custom_email_verification_state: None,
            custom_email_verification_token: None,
            custom_email_verification_error: None,
            custom_email_verification_triggered_at: None,
            custom_email_verification_triggerer_id: None,
            tickets_confidential_by_default: true,
            reopen_issue_on_external_participant_note: false,
            add_external_participants_from_cc: false,
            issue_template_key: None,
            issue_template_content: None,
        }
    }
}

/// A project.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, sqlx::FromRow)]
pub struct Project {
    /// Row id; the `<id>` in `<slug>-<id>-…` addresses.
    pub id: i64,
    /// The namespace part of the full path (`group/subgroup`); empty for a top-level project.
    pub namespace_path: String,
    /// The last path segment.
    pub path: String,
    /// `namespace_path/path`, unique case-insensitively.
    pub full_path: String,
    /// [`full_path_slug`] of the full path, checked against the `<slug>` of addresses.
    pub full_path_slug: String,
    /// Display name.
    pub name: String,
    /// Who can see it.
    pub visibility: Visibility,
    /// Archived projects are read-only.
    pub archived: bool,
    /// Target branch for merge requests by default.
    pub default_branch: String,
    /// Service Desk settings.
    #[sqlx(flatten)]
    pub service_desk: ServiceDeskSettings,
    /// The project's own sender-authentication policy; `None` follows the instance's.
    pub sender_policy: Option<crate::ProjectSenderPolicy>,
    /// Creation time.
    pub created_at: Timestamp,
    /// Last change to the project row.
    pub updated_at: Timestamp,
}

/// What [`Tx::create_project`] needs.
#[derive(Debug, Clone)]
pub struct NewProject {
    /// `group/subgroup`, or empty.
    pub namespace_path: String,
    /// Last path segment; must not be empty or contain `/`.
    pub path: String,
    /// Display name.
    pub name: String,
    /// Visibility.
    pub visibility: Visibility,
    /// Default branch (`main` if you have no better idea).
    pub default_branch: String,
}

/// A partial update for [`Tx::update_project`]: `None` keeps the current value.
#[derive(Debug, Clone, Default)]
pub struct ProjectUpdate {
    /// New display name.
    pub name: Option<String>,
    /// New visibility.
    pub visibility: Option<Visibility>,
    /// Archive or unarchive.
    pub archived: Option<bool>,
    /// New default branch.
    pub default_branch: Option<String>,
}

/// A member's role, ordered from least to most powerful (`Guest < … < Owner`), stored as
/// GitLab's access level (10, 20, 30, 40, 50).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Access level 10.
    Guest,
    /// Access level 20.
    Reporter,
    /// Access level 30.
    Developer,
    /// Access level 40.
    Maintainer,
    /// Access level 50.
    Owner,
}

impl Role {
    /// Every role, weakest first.
    pub const ALL: &'static [Role] = &[
        Role::Guest,
        Role::Reporter,
        Role::Developer,
        Role::Maintainer,
        Role::Owner,
    ];

    /// GitLab's numeric access level.
    pub fn access_level(self) -> i64 {
        match self {
            Role::Guest => 10,
            Role::Reporter => 20,
            Role::Developer => 30,
            Role::Maintainer => 40,
            Role::Owner => 50,
        }
    }

    /// The role with this access level.
    pub fn from_access_level(level: i64) -> Option<Role> {
        Role::ALL
            .iter()
            .copied()
            .find(|r| r.access_level() == level)
    }

    /// Lowercase name (`guest` … `owner`).
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Guest => "guest",
            Role::Reporter => "reporter",
            Role::Developer => "developer",
            Role::Maintainer => "maintainer",
            Role::Owner => "owner",
        }
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Role {
    type Err = StoreError;

    fn from_str(s: &str) -> Result<Role, StoreError> {
        Role::ALL
            .iter()
            .copied()
            .find(|r| r.as_str() == s)
            .ok_or_else(|| StoreError::Invalid(format!("unknown role {s:?}")))
    }
}

crate::sqltypes::stored_as_i64!(Role);

impl<'r, DB: sqlx::Database> sqlx::Decode<'r, DB> for Role
where
    i64: sqlx::Decode<'r, DB>,
{
    fn decode(value: DB::ValueRef<'r>) -> Result<Self, sqlx::error::BoxDynError> {
        let level = <i64 as sqlx::Decode<'r, DB>>::decode(value)?;
        Role::from_access_level(level).ok_or_else(|| format!("unknown access level {level}").into())
    }
}

/// A user's membership in a project.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, sqlx::FromRow)]
pub struct Member {
    /// The project.
    pub project_id: i64,
    /// The user.
    pub user_id: i64,
    /// The user's username, for listings.
    pub username: String,
    /// The role.
    #[sqlx(rename = "access_level")]
    pub role: Role,
    /// When the membership was granted.
    pub created_at: Timestamp,
}

/// GitLab's `project_key` rule: `\A[a-z0-9_]+\z`, at most 255 characters.
fn valid_project_key(key: &str) -> bool {
    !key.is_empty()
        && key.len() <= 255
        && key
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

impl Tx {
    /// Creates a project with default Service Desk settings.
    pub async fn create_project(&mut self, new: NewProject) -> Result<Project, StoreError> {
        if new.path.is_empty() || new.path.contains('/') {
            return Err(StoreError::Invalid(format!("project path {:?}", new.path)));
        }
        let namespace = new.namespace_path.trim_matches('/');
        let full_path = if namespace.is_empty() {
            new.path.clone()
        } else {
            format!("{namespace}/{}", new.path)
        };
        let now = Timestamp::now().0;
        let project = fetch_one!(
            self,
            Project,
            "INSERT INTO projects (namespace_path, path, full_path, full_path_lower, full_path_slug,
                                   name, visibility, default_branch, created_at, updated_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $9) RETURNING *",
            namespace,
            &new.path,
            &full_path,
            fold(&full_path),
            full_path_slug(&full_path),
            &new.name,
            new.visibility.as_str(),
            &new.default_branch,
            now,
        )?;
        // The default branch starts protected (merge requests by email never write to it).
        self.protect_branch(project.id, &project.default_branch)
            .await?;
        Ok(project)
    }

    /// The project with this id.
    pub async fn project_by_id(&mut self, id: i64) -> Result<Option<Project>, StoreError> {
        Ok(fetch_optional!(
            self,
            Project,
            "SELECT * FROM projects WHERE id = $1",
            id
        )?)
    }

    /// The project at this full path, compared case-insensitively (legacy address forms).
    pub async fn project_by_full_path(
        &mut self,
        full_path: &str,
    ) -> Result<Option<Project>, StoreError> {
        Ok(fetch_optional!(
            self,
            Project,
            "SELECT * FROM projects WHERE full_path_lower = $1",
            fold(full_path.trim_matches('/'))
        )?)
    }

    /// Projects whose Service Desk custom email is `email` (case-insensitively), whether
    /// Service Desk is enabled or not (GitLab's key scan matches every setting; whether Service
    /// Desk takes the mail is decided later, by the handler).
    pub async fn projects_by_custom_email(
        &mut self,
        email: &str,
    ) -> Result<Vec<Project>, StoreError> {
        Ok(fetch_all!(
            self,
            Project,
            "SELECT * FROM projects WHERE sd_custom_email_lower = $1 ORDER BY id",
            fold(email)
        )?)
    }

    /// The custom emails migration 0010 took from projects that shared one with another
    /// project, as (project id, address); the list is emptied.
    pub async fn take_cleared_custom_emails(&mut self) -> Result<Vec<(i64, String)>, StoreError> {
        let cleared = fetch_all!(
            self,
            (i64, String),
            "SELECT project_id, custom_email FROM custom_email_cleared ORDER BY project_id"
        )?;
        execute!(self, "DELETE FROM custom_email_cleared")?;
        Ok(cleared)
    }

    /// Every project with a Service Desk custom email, in path order (the key scan looks at all
    /// of them for every message, so this reads only those rows, by index).
    pub async fn projects_with_custom_email(&mut self) -> Result<Vec<Project>, StoreError> {
        Ok(fetch_all!(
            self,
            Project,
            "SELECT * FROM projects WHERE sd_custom_email_lower IS NOT NULL
             ORDER BY full_path_lower"
        )?)
    }

    /// The project whose Service Desk `project_key` is `key` and whose full path slug is
    /// `slug` (the `<slug>-<key>` alias address form). Enabled or not: the caller decides.
    pub async fn project_by_service_desk_key(
        &mut self,
        slug: &str,
        key: &str,
    ) -> Result<Option<Project>, StoreError> {
        Ok(fetch_optional!(
            self,
            Project,
            "SELECT * FROM projects WHERE full_path_slug = $1 AND sd_project_key = $2",
            slug,
            key
        )?)
    }

    /// Every project, by full path.
    pub async fn list_projects(&mut self) -> Result<Vec<Project>, StoreError> {
        Ok(fetch_all!(
            self,
            Project,
            "SELECT * FROM projects ORDER BY full_path_lower"
        )?)
    }

    /// Changes the given fields and returns the updated project.
    pub async fn update_project(
        &mut self,
        id: i64,
        update: ProjectUpdate,
    ) -> Result<Project, StoreError> {
        fetch_optional!(
            self,
            Project,
            "UPDATE projects SET name = COALESCE($2, name), visibility = COALESCE($3, visibility),
                 archived = COALESCE($4, archived), default_branch = COALESCE($5, default_branch),
                 updated_at = $6
             WHERE id = $1 RETURNING *",
            id,
            update.name,
            update.visibility.map(Visibility::as_str),
            update.archived,
            update.default_branch,
            Timestamp::now().0,
        )?
        .ok_or(StoreError::NotFound("project"))
    }

    /// Replaces the project's Service Desk settings and returns the updated project.
    /// A malformed `project_key` is [`StoreError::Invalid`]; a key already used by another
    /// project with the same slug is a unique violation.
    pub async fn update_service_desk(
        &mut self,
        project_id: i64,
        s: &ServiceDeskSettings,
    ) -> Result<Project, StoreError> {
        if let Some(key) = &s.project_key
            && !valid_project_key(key)
        {
            return Err(StoreError::Invalid(format!(
                "service desk project key {key:?}"
            )));
        }
        fetch_optional!(
            self,
            Project,
            "UPDATE projects SET
                 sd_enabled = $2, sd_project_key = $3, sd_custom_email = $4,
                 sd_custom_email_lower = $5, sd_custom_email_enabled = $6,
                 sd_custom_email_verification_state = $7, sd_custom_email_verification_token = $8,
                 sd_custom_email_verification_error = $9,
                 sd_custom_email_verification_triggered_at = $10,
                 sd_custom_email_verification_triggerer_id = $11,
                 sd_tickets_confidential_by_default = $12,
                 sd_reopen_issue_on_external_participant_note = $13,
                 sd_add_external_participants_from_cc = $14,
                 sd_issue_template_key = $15, sd_issue_template_content = $16, updated_at = $17
             WHERE id = $1 RETURNING *",
            project_id,
            s.enabled,
            &s.project_key,
            &s.custom_email,
            s.custom_email.as_deref().map(fold),
            s.custom_email_enabled,
            s.custom_email_verification_state
                .map(CustomEmailVerificationState::as_str),
            &s.custom_email_verification_token,
            &s.custom_email_verification_error,
            s.custom_email_verification_triggered_at.map(|t| t.0),
            s.custom_email_verification_triggerer_id,
            s.tickets_confidential_by_default,
            s.reopen_issue_on_external_participant_note,
            s.add_external_participants_from_cc,
            &s.issue_template_key,
            &s.issue_template_content,
            Timestamp::now().0,
        )?
        .ok_or(StoreError::NotFound("project"))
    }

    /// Makes `user_id` a member of `project_id` with `role`, or changes their role.
    pub async fn add_member(
        &mut self,
        project_id: i64,
        user_id: i64,
        role: Role,
    ) -> Result<(), StoreError> {
        execute!(
            self,
            "INSERT INTO members (project_id, user_id, access_level, created_at)
             VALUES ($1, $2, $3, $4)
             ON CONFLICT (project_id, user_id) DO UPDATE SET access_level = excluded.access_level",
            project_id,
            user_id,
            role.access_level(),
            Timestamp::now().0,
        )?;
        Ok(())
    }

    /// Removes a membership. Returns whether there was one.
    pub async fn remove_member(
        &mut self,
        project_id: i64,
        user_id: i64,
    ) -> Result<bool, StoreError> {
        let n = execute!(
            self,
            "DELETE FROM members WHERE project_id = $1 AND user_id = $2",
            project_id,
            user_id
        )?;
        Ok(n > 0)
    }

    /// The user's role in the project, if they are a member.
    pub async fn member_role(
        &mut self,
        project_id: i64,
        user_id: i64,
    ) -> Result<Option<Role>, StoreError> {
        Ok(scalar_optional!(
            self,
            Role,
            "SELECT access_level FROM members WHERE project_id = $1 AND user_id = $2",
            project_id,
            user_id
        )?)
    }

    /// The project's members, strongest role first, then by username.
    pub async fn list_members(&mut self, project_id: i64) -> Result<Vec<Member>, StoreError> {
        Ok(fetch_all!(
            self,
            Member,
            "SELECT m.project_id, m.user_id, u.username, m.access_level, m.created_at
             FROM members m JOIN users u ON u.id = m.user_id
             WHERE m.project_id = $1 ORDER BY m.access_level DESC, u.username_lower",
            project_id
        )?)
    }
}

#[cfg(test)]
mod tests {
    use super::{Role, valid_project_key};

    #[test]
    fn roles_are_ordered_by_access_level() {
        assert!(Role::Guest < Role::Reporter && Role::Maintainer < Role::Owner);
        for r in Role::ALL {
            assert_eq!(Role::from_access_level(r.access_level()), Some(*r));
            assert_eq!(r.as_str().parse::<Role>().ok(), Some(*r));
        }
    }

    #[test]
    fn project_key_rule() {
        assert!(valid_project_key("support_1"));
        assert!(!valid_project_key("Support"));
        assert!(!valid_project_key(""));
        assert!(!valid_project_key("a-b"));
    }
}
