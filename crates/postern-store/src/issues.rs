//! Issues and Service Desk tickets: per-project iids, labels, assignees, email participants and
//! the Message-ID that opened a ticket.

use crate::ids::fold;
use crate::tx::{execute, fetch_all, fetch_one, fetch_optional, scalar_one};
use crate::{StoreError, Timestamp, Tx};
use postern_vocab::named_enum;

named_enum! {
    /// Issue or Service Desk ticket (they share the per-project iid sequence).
    pub enum IssueType {
        /// A regular issue.
        Issue = "issue",
        /// A Service Desk ticket, authored by the Support Bot for an external customer.
        Ticket = "ticket",
    }
}

named_enum! {
    /// Open or closed.
    pub enum IssueState {
        /// Open.
        Opened = "opened",
        /// Closed.
        Closed = "closed",
    }
}

/// An issue or ticket, with its labels, assignees and email participants.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, sqlx::FromRow)]
pub struct Issue {
    /// Row id (global).
    pub id: i64,
    /// The project.
    pub project_id: i64,
    /// Number within the project (`#iid`), allocated without gaps.
    pub iid: i64,
    /// Issue or ticket.
    pub issue_type: IssueType,
    /// Title.
    pub title: String,
    /// Markdown description.
    pub description: String,
    /// Open or closed.
    pub state: IssueState,
    /// Visible to reporters and up only.
    pub confidential: bool,
    /// Only members may comment.
    pub discussion_locked: bool,
    /// Due date, `YYYY-MM-DD`.
    pub due_date: Option<String>,
    /// Author (the Support Bot for tickets).
    pub author_id: i64,
    /// The customer's address for tickets (GitLab's `external_author`).
    pub external_author: Option<String>,
    /// Creation time.
    pub created_at: Timestamp,
    /// Last change.
    pub updated_at: Timestamp,
    /// When it was last closed; `None` while open.
    pub closed_at: Option<Timestamp>,
    /// Labels, sorted.
    #[sqlx(skip)]
    pub labels: Vec<String>,
    /// Assigned user ids, sorted.
    #[sqlx(skip)]
    pub assignee_ids: Vec<i64>,
    /// External email participants, in the order they were added.
    #[sqlx(skip)]
    pub email_participants: Vec<String>,
}

/// What [`Tx::create_issue`] needs.
#[derive(Debug, Clone)]
pub struct NewIssue {
    /// The project.
    pub project_id: i64,
    /// Issue or ticket.
    pub issue_type: IssueType,
    /// Title.
    pub title: String,
    /// Description.
    pub description: String,
    /// Confidential flag.
    pub confidential: bool,
    /// Author.
    pub author_id: i64,
    /// Customer address for tickets.
    pub external_author: Option<String>,
    /// Initial labels.
    pub labels: Vec<String>,
    /// Initial assignees.
    pub assignee_ids: Vec<i64>,
    /// Due date, `YYYY-MM-DD`.
    pub due_date: Option<String>,
}

impl NewIssue {
    /// A plain open issue with no labels, assignees or due date.
    pub fn new(project_id: i64, author_id: i64, title: &str, description: &str) -> NewIssue {
        NewIssue {
            project_id,
            issue_type: IssueType::Issue,
            title: title.to_owned(),
            description: description.to_owned(),
            confidential: false,
            author_id,
            external_author: None,
            labels: Vec::new(),
            assignee_ids: Vec::new(),
            due_date: None,
        }
    }
}

/// A partial update for [`Tx::update_issue`]: `None` keeps the current value. Collections are
/// replaced whole.
#[derive(Debug, Clone, Default)]
pub struct IssueUpdate {
    /// New title.
    pub title: Option<String>,
    /// New description.
    pub description: Option<String>,
    /// Close or reopen (also maintains `closed_at`).
    pub state: Option<IssueState>,
    /// Confidential flag.
    pub confidential: Option<bool>,
    /// Discussion lock.
    pub discussion_locked: Option<bool>,
    /// `Some(None)` clears the due date.
    pub due_date: Option<Option<String>>,
    /// The complete new label set.
    pub labels: Option<Vec<String>>,
    /// The complete new assignee set.
    pub assignee_ids: Option<Vec<i64>>,
}

/// Which issues [`Tx::list_issues`] returns; `None` fields match everything.
#[derive(Debug, Clone, Default)]
pub struct IssueFilter {
    /// Only this project.
    pub project_id: Option<i64>,
    /// Only this state.
    pub state: Option<IssueState>,
    /// Only issues or only tickets.
    pub issue_type: Option<IssueType>,
}

/// Which per-project sequence an iid comes from.
#[derive(Clone, Copy)]
pub(crate) enum IidKind {
    Issue,
    MergeRequest,
}

impl Tx {
    /// The next iid of `kind` in `project_id`. One upsert on the counter row: on PostgreSQL
    /// the row lock serialises concurrent transactions until commit, and a rollback returns
    /// the number, so iids have no gaps and no duplicates. (SQLite serialises writers anyway.)
    pub(crate) async fn allocate_iid(
        &mut self,
        project_id: i64,
        kind: IidKind,
    ) -> Result<i64, StoreError> {
        let kind = match kind {
            IidKind::Issue => "issue",
            IidKind::MergeRequest => "merge_request",
        };
        Ok(scalar_one!(
            self,
            i64,
            "INSERT INTO iid_counters (project_id, kind, last_value) VALUES ($1, $2, 1)
             ON CONFLICT (project_id, kind) DO UPDATE SET last_value = iid_counters.last_value + 1
             RETURNING last_value",
            project_id,
            kind
        )?)
    }

    /// Creates an issue or ticket with the next iid of its project.
    pub async fn create_issue(&mut self, new: NewIssue) -> Result<Issue, StoreError> {
        let iid = self.allocate_iid(new.project_id, IidKind::Issue).await?;
        let issue = fetch_one!(
            self,
            Issue,
            "INSERT INTO issues (project_id, iid, issue_type, title, description, confidential,
                                 due_date, author_id, external_author, created_at, updated_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $10) RETURNING *",
            new.project_id,
            iid,
            new.issue_type.as_str(),
            &*crate::without_nul(&new.title),
            &*crate::without_nul(&new.description),
            new.confidential,
            &new.due_date,
            new.author_id,
            new.external_author.as_deref().map(crate::without_nul),
            Timestamp::now().0,
        )?;
        // A new issue has no children yet: insert them and fill the struct from what was
        // inserted, instead of deleting nothing and reading back (each query is a round trip).
        let mut issue = issue;
        issue.labels = Vec::new();
        for label in &new.labels {
            if !issue.labels.contains(label) {
                self.insert_label(issue.id, label).await?;
                issue.labels.push(label.clone());
            }
        }
        issue.labels.sort();
        issue.assignee_ids = Vec::new();
        for user_id in &new.assignee_ids {
            if !issue.assignee_ids.contains(user_id) {
                self.insert_assignee(issue.id, *user_id).await?;
                issue.assignee_ids.push(*user_id);
            }
        }
        issue.assignee_ids.sort_unstable();
        issue.email_participants = Vec::new();
        Ok(issue)
    }

    async fn replace_labels(&mut self, issue_id: i64, labels: &[String]) -> Result<(), StoreError> {
        execute!(
            self,
            "DELETE FROM issue_labels WHERE issue_id = $1",
            issue_id
        )?;
        for label in labels {
            self.insert_label(issue_id, label).await?;
        }
        Ok(())
    }

    async fn insert_label(&mut self, issue_id: i64, label: &str) -> Result<(), StoreError> {
        execute!(
            self,
            "INSERT INTO issue_labels (issue_id, label) VALUES ($1, $2) ON CONFLICT DO NOTHING",
            issue_id,
            label
        )?;
        Ok(())
    }

    async fn insert_assignee(&mut self, issue_id: i64, user_id: i64) -> Result<(), StoreError> {
        execute!(
            self,
            "INSERT INTO issue_assignees (issue_id, user_id) VALUES ($1, $2)
             ON CONFLICT DO NOTHING",
            issue_id,
            user_id
        )?;
        Ok(())
    }

    async fn replace_assignees(
        &mut self,
        issue_id: i64,
        user_ids: &[i64],
    ) -> Result<(), StoreError> {
        execute!(
            self,
            "DELETE FROM issue_assignees WHERE issue_id = $1",
            issue_id
        )?;
        for user_id in user_ids {
            self.insert_assignee(issue_id, *user_id).await?;
        }
        Ok(())
    }

    pub(crate) async fn load_issue_children(
        &mut self,
        mut issue: Issue,
    ) -> Result<Issue, StoreError> {
        // One round trip for all three child lists (each query costs a round trip, and an
        // issue is loaded several times per message). The NULLs are cast so that PostgreSQL
        // can type the UNION; `ord` keeps participants in the order they joined.
        let rows = fetch_all!(
            self,
            (String, Option<String>, Option<i64>, i64),
            "SELECT 'l', label, CAST(NULL AS BIGINT), CAST(0 AS BIGINT)
               FROM issue_labels WHERE issue_id = $1
             UNION ALL
             SELECT 'a', CAST(NULL AS TEXT), user_id, CAST(0 AS BIGINT)
               FROM issue_assignees WHERE issue_id = $1
             UNION ALL
             SELECT 'p', email, CAST(NULL AS BIGINT), id
               FROM issue_email_participants WHERE issue_id = $1",
            issue.id
        )?;
        let (mut labels, mut assignees, mut participants) = (Vec::new(), Vec::new(), Vec::new());
        for (kind, text, number, ord) in rows {
            match (kind.as_str(), text, number) {
                ("l", Some(label), _) => labels.push(label),
                ("a", _, Some(user_id)) => assignees.push(user_id),
                ("p", Some(email), _) => participants.push((ord, email)),
                (other, _, _) => {
                    return Err(StoreError::Corrupt {
                        column: "issue child kind",
                        value: other.to_owned(),
                    });
                }
            }
        }
        labels.sort();
        assignees.sort_unstable();
        participants.sort_by_key(|(ord, _)| *ord);
        issue.labels = labels;
        issue.assignee_ids = assignees;
        issue.email_participants = participants.into_iter().map(|(_, email)| email).collect();
        Ok(issue)
    }

    async fn load_optional_issue(
        &mut self,
        issue: Option<Issue>,
    ) -> Result<Option<Issue>, StoreError> {
        match issue {
            Some(issue) => Ok(Some(self.load_issue_children(issue).await?)),
            None => Ok(None),
        }
    }

    /// The issue with this row id.
    pub async fn issue_by_id(&mut self, id: i64) -> Result<Option<Issue>, StoreError> {
        let issue = fetch_optional!(self, Issue, "SELECT * FROM issues WHERE id = $1", id)?;
        self.load_optional_issue(issue).await
    }

    /// The issue `#iid` of a project.
    pub async fn issue_by_iid(
        &mut self,
        project_id: i64,
        iid: i64,
    ) -> Result<Option<Issue>, StoreError> {
        let issue = fetch_optional!(
            self,
            Issue,
            "SELECT * FROM issues WHERE project_id = $1 AND iid = $2",
            project_id,
            iid
        )?;
        self.load_optional_issue(issue).await
    }

    /// Issues matching `filter`, by project then iid.
    pub async fn list_issues(&mut self, filter: &IssueFilter) -> Result<Vec<Issue>, StoreError> {
        let rows = fetch_all!(
            self,
            Issue,
            "SELECT * FROM issues
             WHERE ($1 IS NULL OR project_id = $1) AND ($2 IS NULL OR state = $2)
               AND ($3 IS NULL OR issue_type = $3)
             ORDER BY project_id, iid",
            filter.project_id,
            filter.state.map(IssueState::as_str),
            filter.issue_type.map(IssueType::as_str),
        )?;
        let mut out = Vec::with_capacity(rows.len());
        for issue in rows {
            out.push(self.load_issue_children(issue).await?);
        }
        Ok(out)
    }

    /// Applies `update` to the issue and returns the result.
    pub async fn update_issue(
        &mut self,
        id: i64,
        update: IssueUpdate,
    ) -> Result<Issue, StoreError> {
        let (set_due, due) = match update.due_date {
            Some(d) => (true, d),
            None => (false, None),
        };
        // `closed_at` is computed from the old state: UPDATE expressions see the old row.
        let issue = fetch_optional!(
            self,
            Issue,
            "UPDATE issues SET
                 title = COALESCE($2, title),
                 description = COALESCE($3, description),
                 closed_at = CASE WHEN $4 = 'closed' AND state <> 'closed' THEN $9
                                  WHEN $4 = 'opened' THEN NULL
                                  ELSE closed_at END,
                 state = COALESCE($4, state),
                 confidential = COALESCE($5, confidential),
                 discussion_locked = COALESCE($6, discussion_locked),
                 due_date = CASE WHEN $7 THEN $8 ELSE due_date END,
                 updated_at = $9
             WHERE id = $1 RETURNING *",
            id,
            update.title.as_deref().map(crate::without_nul),
            update.description.as_deref().map(crate::without_nul),
            update.state.map(IssueState::as_str),
            update.confidential,
            update.discussion_locked,
            set_due,
            due,
            Timestamp::now().0,
        )?
        .ok_or(StoreError::NotFound("issue"))?;
        if let Some(labels) = &update.labels {
            self.replace_labels(id, labels).await?;
        }
        if let Some(assignees) = &update.assignee_ids {
            self.replace_assignees(id, assignees).await?;
        }
        self.load_issue_children(issue).await
    }

    /// Adds an external email participant. Returns `false` if the address (compared
    /// case-insensitively) already participates. The 10-participant limit is the caller's.
    pub async fn add_issue_participant(
        &mut self,
        issue_id: i64,
        email: &str,
    ) -> Result<bool, StoreError> {
        let n = execute!(
            self,
            "INSERT INTO issue_email_participants (issue_id, email, email_lower, created_at)
             VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
            issue_id,
            &*crate::without_nul(email),
            fold(&crate::without_nul(email)),
            Timestamp::now().0,
        )?;
        Ok(n > 0)
    }

    /// Removes an external email participant. Returns whether it was there.
    pub async fn remove_issue_participant(
        &mut self,
        issue_id: i64,
        email: &str,
    ) -> Result<bool, StoreError> {
        let n = execute!(
            self,
            "DELETE FROM issue_email_participants WHERE issue_id = $1 AND email_lower = $2",
            issue_id,
            fold(email),
        )?;
        Ok(n > 0)
    }

    /// Records the Message-ID of the mail that opened an issue (GitLab's `Issue::Email`).
    /// The first one recorded for an issue stays; later calls change nothing.
    pub async fn record_issue_email(
        &mut self,
        issue_id: i64,
        message_id: &str,
    ) -> Result<(), StoreError> {
        let project_id = scalar_one!(
            self,
            i64,
            "SELECT project_id FROM issues WHERE id = $1",
            issue_id
        )?;
        execute!(
            self,
            "INSERT INTO issue_emails (issue_id, project_id, message_id) VALUES ($1, $2, $3)
             ON CONFLICT DO NOTHING",
            issue_id,
            project_id,
            &*crate::ids::indexed_identifier(message_id),
        )?;
        Ok(())
    }

    /// The issue in `project_id` that was opened by the mail with this Message-ID, i.e. the
    /// ticket a customer's `In-Reply-To` points at. The oldest such issue if several match.
    pub async fn ticket_by_message_id(
        &mut self,
        project_id: i64,
        message_id: &str,
    ) -> Result<Option<Issue>, StoreError> {
        let issue = fetch_optional!(
            self,
            Issue,
            "SELECT i.* FROM issues i JOIN issue_emails e ON e.issue_id = i.id
             WHERE e.project_id = $1 AND e.message_id = $2 ORDER BY i.id LIMIT 1",
            project_id,
            &*crate::ids::indexed_identifier(message_id)
        )?;
        self.load_optional_issue(issue).await
    }
}
