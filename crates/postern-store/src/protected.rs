//! Protected branches: the branches a merge request by email may not use as its source.
//!
//! A row per protected branch name of a project; a project's default branch gets one when the
//! project is created (migration 0010 gave one to every existing project).

use crate::tx::{execute, fetch_all};
use crate::{StoreError, Timestamp, Tx};

impl Tx {
    /// Protects `name` in project `project_id`. Returns whether it was not protected before.
    pub async fn protect_branch(
        &mut self,
        project_id: i64,
        name: &str,
    ) -> Result<bool, StoreError> {
        let added = execute!(
            self,
            "INSERT INTO protected_branches (project_id, name, created_at) VALUES ($1, $2, $3)
             ON CONFLICT (project_id, name) DO NOTHING",
            project_id,
            name,
            Timestamp::now().0,
        )?;
        Ok(added > 0)
    }

    /// Unprotects `name` in project `project_id`. Returns whether it was protected.
    pub async fn unprotect_branch(
        &mut self,
        project_id: i64,
        name: &str,
    ) -> Result<bool, StoreError> {
        let removed = execute!(
            self,
            "DELETE FROM protected_branches WHERE project_id = $1 AND name = $2",
            project_id,
            name,
        )?;
        Ok(removed > 0)
    }

    /// The protected branches of project `project_id`, by name.
    pub async fn protected_branches(&mut self, project_id: i64) -> Result<Vec<String>, StoreError> {
        Ok(fetch_all!(
            self,
            (String,),
            "SELECT name FROM protected_branches WHERE project_id = $1 ORDER BY name",
            project_id,
        )?
        .into_iter()
        .map(|(name,)| name)
        .collect())
    }

    /// Whether `name` is protected in project `project_id`.
    pub async fn is_protected_branch(
        &mut self,
        project_id: i64,
        name: &str,
    ) -> Result<bool, StoreError> {
        Ok(self
            .protected_branches(project_id)
            .await?
            .iter()
            .any(|protected| protected == name))
    }
}
