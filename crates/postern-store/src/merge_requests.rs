//! Merge requests and the commits they carry.

use crate::issues::IidKind;
use crate::tx::{execute, fetch_all, fetch_one, fetch_optional};
use crate::{StoreError, Timestamp, Tx};
use postern_vocab::named_enum;

named_enum! {
    /// Lifecycle of a merge request.
    pub enum MergeRequestState {
        /// Open for review.
        Opened = "opened",
        /// Closed without merging.
        Closed = "closed",
        /// Merged.
        Merged = "merged",
    }
}

/// One commit of a merge request, as applied from a patch.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, sqlx::FromRow)]
pub struct Commit {
    /// Full commit id.
    pub sha: String,
    /// First line of the message.
    pub title: String,
    /// Whole message.
    pub message: String,
    /// Author name.
    pub author_name: String,
    /// Author address.
    pub author_email: String,
}

/// A merge request with its commits in order.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, sqlx::FromRow)]
pub struct MergeRequest {
    /// Row id (global).
    pub id: i64,
    /// The project (source and target are the same project).
    pub project_id: i64,
    /// Number within the project (`!iid`).
    pub iid: i64,
    /// Title.
    pub title: String,
    /// Markdown description.
    pub description: String,
    /// Branch with the changes.
    pub source_branch: String,
    /// Branch to merge into.
    pub target_branch: String,
    /// Opened, closed or merged.
    pub state: MergeRequestState,
    /// Author.
    pub author_id: i64,
    /// Creation time.
    pub created_at: Timestamp,
    /// Last change.
    pub updated_at: Timestamp,
    /// Commits, oldest first.
    #[sqlx(skip)]
    pub commits: Vec<Commit>,
}

/// What [`Tx::create_merge_request`] needs.
#[derive(Debug, Clone)]
pub struct NewMergeRequest {
    /// The project.
    pub project_id: i64,
    /// Title.
    pub title: String,
    /// Description.
    pub description: String,
    /// Source branch.
    pub source_branch: String,
    /// Target branch.
    pub target_branch: String,
    /// Author.
    pub author_id: i64,
    /// Commits, oldest first.
    pub commits: Vec<Commit>,
}

impl Tx {
    /// Creates a merge request with the next merge-request iid of its project.
    pub async fn create_merge_request(
        &mut self,
        new: NewMergeRequest,
    ) -> Result<MergeRequest, StoreError> {
        let iid = self
            .allocate_iid(new.project_id, IidKind::MergeRequest)
            .await?;
        let mr = fetch_one!(
            self,
            MergeRequest,
            "INSERT INTO merge_requests (project_id, iid, title, description, source_branch,
                                         target_branch, author_id, created_at, updated_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8) RETURNING *",
            new.project_id,
            iid,
            &*crate::without_nul(&new.title),
            &*crate::without_nul(&new.description),
            &new.source_branch,
            &new.target_branch,
            new.author_id,
            Timestamp::now().0,
        )?;
        self.replace_commits(mr.id, &new.commits).await?;
        self.load_commits(mr).await
    }

    /// Replaces the commits of a merge request (e.g. after more patches were applied).
    pub async fn replace_commits(
        &mut self,
        merge_request_id: i64,
        commits: &[Commit],
    ) -> Result<(), StoreError> {
        execute!(
            self,
            "DELETE FROM merge_request_commits WHERE merge_request_id = $1",
            merge_request_id
        )?;
        for (position, c) in (0i64..).zip(commits) {
            execute!(
                self,
                "INSERT INTO merge_request_commits
                     (merge_request_id, position, sha, title, message, author_name, author_email)
                 VALUES ($1, $2, $3, $4, $5, $6, $7)",
                merge_request_id,
                position,
                &c.sha,
                &c.title,
                &c.message,
                &c.author_name,
                &c.author_email,
            )?;
        }
        Ok(())
    }

    async fn load_commits(&mut self, mut mr: MergeRequest) -> Result<MergeRequest, StoreError> {
        mr.commits = fetch_all!(
            self,
            Commit,
            "SELECT sha, title, message, author_name, author_email FROM merge_request_commits
             WHERE merge_request_id = $1 ORDER BY position",
            mr.id
        )?;
        Ok(mr)
    }

    /// The merge request with this row id.
    pub async fn merge_request_by_id(
        &mut self,
        id: i64,
    ) -> Result<Option<MergeRequest>, StoreError> {
        let mr = fetch_optional!(
            self,
            MergeRequest,
            "SELECT * FROM merge_requests WHERE id = $1",
            id
        )?;
        match mr {
            Some(mr) => Ok(Some(self.load_commits(mr).await?)),
            None => Ok(None),
        }
    }

    /// The merge request `!iid` of a project.
    pub async fn merge_request_by_iid(
        &mut self,
        project_id: i64,
        iid: i64,
    ) -> Result<Option<MergeRequest>, StoreError> {
        let mr = fetch_optional!(
            self,
            MergeRequest,
            "SELECT * FROM merge_requests WHERE project_id = $1 AND iid = $2",
            project_id,
            iid
        )?;
        match mr {
            Some(mr) => Ok(Some(self.load_commits(mr).await?)),
            None => Ok(None),
        }
    }

    /// Merge requests of one project (or of all, with `None`), by project then iid.
    pub async fn list_merge_requests(
        &mut self,
        project_id: Option<i64>,
    ) -> Result<Vec<MergeRequest>, StoreError> {
        let rows = fetch_all!(
            self,
            MergeRequest,
            "SELECT * FROM merge_requests WHERE ($1 IS NULL OR project_id = $1)
             ORDER BY project_id, iid",
            project_id
        )?;
        let mut out = Vec::with_capacity(rows.len());
        for mr in rows {
            out.push(self.load_commits(mr).await?);
        }
        Ok(out)
    }

    /// Changes the state of a merge request. Returns whether it exists.
    pub async fn set_merge_request_state(
        &mut self,
        id: i64,
        state: MergeRequestState,
    ) -> Result<bool, StoreError> {
        let n = execute!(
            self,
            "UPDATE merge_requests SET state = $2, updated_at = $3 WHERE id = $1",
            id,
            state.as_str(),
            Timestamp::now().0,
        )?;
        Ok(n > 0)
    }
}
