//! A project's own sender-authentication policy (the `sender_policy` column of `projects`).
//!
//! Only the stored choice lives here; what it means next to the instance's policy is decided
//! in one place, postern-core's `authentication::effective_policy`.

use crate::tx::fetch_optional;
use crate::{Project, StoreError, Timestamp, Tx};
use postern_vocab::named_enum;

named_enum! {
    /// The sender-authentication policy a project asks for; `None` on the project follows
    /// the instance's.
    pub enum ProjectSenderPolicy {
        /// Honour the From domain's own DMARC policy.
        Dmarc = "dmarc",
        /// Act as a user only on a DMARC pass or an aligned DKIM pass.
        Require = "require",
    }
}

impl Tx {
    /// Sets (or, with `None`, clears) the sender-authentication policy of project
    /// `project_id` and returns the updated project.
    pub async fn set_project_sender_policy(
        &mut self,
        project_id: i64,
        policy: Option<ProjectSenderPolicy>,
    ) -> Result<Project, StoreError> {
        fetch_optional!(
            self,
            Project,
            "UPDATE projects SET sender_policy = $2, updated_at = $3 WHERE id = $1 RETURNING *",
            project_id,
            policy.map(ProjectSenderPolicy::as_str),
            Timestamp::now().0,
        )?
        .ok_or(StoreError::NotFound("project"))
    }
}
