//! Finding issues: the one query behind the web UI's issue list and the API's
//! ([`Tx::search_issues`]): full-text search over an issue's title, description and public
//! comments, filters, sorting and pages.
//!
//! The text index is migration 0016's: an FTS5 table on SQLite, a `tsvector` with a GIN index
//! on PostgreSQL, kept in sync by triggers on `issues` and `notes`. Internal and system notes
//! are not indexed, so a search never tells a reader which words an internal note holds. An
//! issue's document is the first [`MAX_DOCUMENT_CHARS`] characters of its title, description
//! and comments, on both stores.
//!
//! Cost (`cargo bench -p postern-store --bench search`, 100 000 issues): a few milliseconds on
//! either store. PostgreSQL plans each search for its values and looks among the newest issues
//! first ([`Candidates`]); what stays slow there is a rare phrase of words that are in most
//! issues, since GIN keeps no positions and rechecks every issue holding the words.
//!
//! The query language, and what each store is given for it, is `search/text.rs`'s.

use crate::issues::{Issue, IssueState, IssueType};
use crate::tx::{execute, fetch_all};
use crate::{Backend, StoreError, Tx};
use postern_vocab::named_enum;

mod text;

pub use text::{MAX_PHRASE_WORDS, MAX_QUERY_CHARS, MAX_TERMS, SearchText};

/// Characters of an issue's text (title, description, public comments) the index holds; the
/// migration's triggers cut there (a PostgreSQL `tsvector` has a size limit).
pub const MAX_DOCUMENT_CHARS: usize = 100_000;
/// The largest page [`Tx::search_issues`] returns, whatever is asked.
pub const MAX_PER_PAGE: u32 = 100;
/// The page size when none is asked.
pub const DEFAULT_PER_PAGE: u32 = 20;
/// The last page number served: beyond it the offset would make every request slow.
pub const MAX_PAGE: u32 = 10_000;

named_enum! {
    /// The order of an issue list.
    pub enum IssueSort {
        /// Newest first (by iid, which grows with creation time).
        Newest = "newest",
        /// Oldest first.
        Oldest = "oldest",
        /// Most recently changed first.
        Updated = "updated",
        /// Least recently changed first.
        UpdatedAsc = "updated_asc",
    }
}

/// Which issues of the project the viewer may read, as the caller's access rules decided
/// (postern-web's `access`, after `postern_core::permissions::Actor::can_read_issue`): the
/// store only applies it, so pages are full and counts honest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IssueVisibility {
    /// Every issue and ticket (reporters and up, administrators).
    All,
    /// Everything but confidential issues, except those the user wrote or is assigned to.
    Member {
        /// The reader.
        user_id: i64,
    },
    /// Signed out in a public project: neither confidential issues nor tickets.
    Public,
}

/// What [`Tx::search_issues`] looks for. `None` filters match everything.
#[derive(Debug, Clone)]
pub struct IssueQuery {
    /// The project.
    pub project_id: i64,
    /// What the viewer may read.
    pub visibility: IssueVisibility,
    /// Full-text search; empty: no text condition.
    pub text: SearchText,
    /// Open or closed.
    pub state: Option<IssueState>,
    /// Issues or tickets.
    pub issue_type: Option<IssueType>,
    /// Confidential or not.
    pub confidential: Option<bool>,
    /// Carrying this label.
    pub label: Option<String>,
    /// Assigned to this user.
    pub assignee_id: Option<i64>,
    /// Written by this user.
    pub author_id: Option<i64>,
    /// Order.
    pub sort: IssueSort,
    /// 1-based page number, at most [`MAX_PAGE`].
    pub page: u32,
    /// Issues per page, at most [`MAX_PER_PAGE`].
    pub per_page: u32,
}

impl IssueQuery {
    /// Every issue of `project_id` the viewer may read, newest first, first page.
    pub fn new(project_id: i64, visibility: IssueVisibility) -> IssueQuery {
        IssueQuery {
            project_id,
            visibility,
            text: SearchText::default(),
            state: None,
            issue_type: None,
            confidential: None,
            label: None,
            assignee_id: None,
            author_id: None,
            sort: IssueSort::Newest,
            page: 1,
            per_page: DEFAULT_PER_PAGE,
        }
    }
}

/// One page of a list.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Page<T> {
    /// The items of this page.
    pub items: Vec<T>,
    /// Its 1-based number (after capping).
    pub page: u32,
    /// Items per page (after capping).
    pub per_page: u32,
    /// Whether a next page has items.
    pub has_next: bool,
}

impl Tx {
    /// The issues matching `query`, one page of them, with their labels and assignees.
    pub async fn search_issues(&mut self, query: &IssueQuery) -> Result<Page<Issue>, StoreError> {
        let per_page = query.per_page.clamp(1, MAX_PER_PAGE);
        let page = query.page.clamp(1, MAX_PAGE);
        // One row more than a page tells whether a next page has any.
        let rows_wanted = Rows {
            offset: i64::from(page - 1) * i64::from(per_page),
            limit: i64::from(per_page) + 1,
        };
        let mut rows = match self.backend() {
            Backend::Sqlite => {
                self.search_rows(query, Candidates::Sqlite, rows_wanted)
                    .await?
            }
            Backend::Postgres => {
                // Plan each search for its own values: a generic plan cannot see which filters
                // are unset or how rare a word is (80 ms instead of 2 for a plain list page),
                // and JIT compiling an OLTP query costs more than running it.
                execute!(
                    self,
                    "SELECT set_config('plan_cache_mode', 'force_custom_plan', true),
                            set_config('jit', 'off', true)"
                )?;
                if query.text.is_empty() {
                    self.search_rows(query, Candidates::Everything, rows_wanted)
                        .await?
                } else {
                    let newest = self
                        .search_rows(query, Candidates::Newest, rows_wanted)
                        .await?;
                    if newest.len() as i64 == rows_wanted.limit {
                        newest
                    } else {
                        self.search_rows(query, Candidates::Matching, rows_wanted)
                            .await?
                    }
                }
            }
        };
        let has_next = rows.len() > per_page as usize;
        rows.truncate(per_page as usize);
        let mut items = Vec::with_capacity(rows.len());
        for issue in rows {
            items.push(self.load_issue_children(issue).await?);
        }
        Ok(Page {
            items,
            page,
            per_page,
            has_next,
        })
    }

    /// The `rows` of `query`, looking among `candidates`.
    async fn search_rows(
        &mut self,
        query: &IssueQuery,
        candidates: Candidates,
        rows: Rows,
    ) -> Result<Vec<Issue>, StoreError> {
        // The order by `issues` columns, in the outer query (`i.`) and in a candidate list.
        let (order, bare_order) = match query.sort {
            IssueSort::Newest => ("i.iid DESC", "iid DESC"),
            IssueSort::Oldest => ("i.iid ASC", "iid ASC"),
            IssueSort::Updated => ("i.updated_at DESC, i.iid DESC", "updated_at DESC, iid DESC"),
            IssueSort::UpdatedAsc => ("i.updated_at ASC, i.iid ASC", "updated_at ASC, iid ASC"),
        };
        let (included, excluded, window) = match candidates {
            Candidates::Sqlite => (query.text.fts5(false), query.text.fts5(true), None),
            Candidates::Everything | Candidates::Matching => (query.text.tsquery(), None, None),
            // Enough of the newest issues to fill the page when at least one in two holds
            // the text; deeper pages walk further.
            Candidates::Newest => (
                query.text.tsquery(),
                None,
                Some(NEWEST_WINDOW + 2 * (rows.offset + rows.limit)),
            ),
        };
        // Each fragment names every parameter it does not use, so the binds are the same in
        // every case.
        let newest_first = format!(
            "WITH candidates AS MATERIALIZED (
                 SELECT id FROM issues WHERE project_id = $1 ORDER BY {bare_order} LIMIT $14) "
        );
        let (with, text) = match candidates {
            Candidates::Sqlite => (
                "",
                match (&included, &excluded) {
                    (Some(_), Some(_)) => {
                        "i.id IN (SELECT rowid FROM issue_search WHERE issue_search MATCH $10)
                         AND i.id NOT IN (SELECT rowid FROM issue_search
                                          WHERE issue_search MATCH $11) AND $14 IS NULL"
                    }
                    (Some(_), None) => {
                        "i.id IN (SELECT rowid FROM issue_search WHERE issue_search MATCH $10)
                         AND $11 IS NULL AND $14 IS NULL"
                    }
                    (None, Some(_)) => {
                        "$10 IS NULL AND i.id NOT IN (SELECT rowid FROM issue_search
                                                      WHERE issue_search MATCH $11)
                         AND $14 IS NULL"
                    }
                    (None, None) => "$10 IS NULL AND $11 IS NULL AND $14 IS NULL",
                },
            ),
            Candidates::Everything => ("", "$10 IS NULL AND $11 IS NULL AND $14 IS NULL"),
            Candidates::Newest => (
                newest_first.as_str(),
                "i.id IN (SELECT id FROM candidates) AND $11 IS NULL
                 AND EXISTS (SELECT 1 FROM issue_search s
                             WHERE s.issue_id = i.id
                               AND s.document @@ to_tsquery('simple', $10))",
            ),
            Candidates::Matching => (
                "WITH candidates AS MATERIALIZED (
                     SELECT issue_id AS id FROM issue_search
                     WHERE document @@ to_tsquery('simple', $10) LIMIT $14) ",
                "i.id IN (SELECT id FROM candidates) AND $11 IS NULL",
            ),
        };
        let (scope, reader) = match query.visibility {
            IssueVisibility::All => ("all", None),
            IssueVisibility::Member { user_id } => ("member", Some(user_id)),
            IssueVisibility::Public => ("public", None),
        };
        // Every fragment above is a constant of this function; user input is only bound.
        let sql = format!(
            "{with}SELECT i.* FROM issues i
             WHERE i.project_id = $1
               AND ($2 IS NULL OR i.state = $2)
               AND ($3 IS NULL OR i.issue_type = $3)
               AND ($4 IS NULL OR i.confidential = $4)
               AND ($5 IS NULL OR i.author_id = $5)
               AND ($6 IS NULL OR EXISTS (SELECT 1 FROM issue_assignees a
                                          WHERE a.issue_id = i.id AND a.user_id = $6))
               AND ($7 IS NULL OR EXISTS (SELECT 1 FROM issue_labels l
                                          WHERE l.issue_id = i.id AND l.label = $7))
               AND ($8 = 'all'
                    OR ($8 = 'member' AND (NOT i.confidential OR i.author_id = $9
                        OR EXISTS (SELECT 1 FROM issue_assignees v
                                   WHERE v.issue_id = i.id AND v.user_id = $9)))
                    OR ($8 = 'public' AND NOT i.confidential AND i.issue_type <> 'ticket'))
               AND {text}
             ORDER BY {order}
             LIMIT $12 OFFSET $13"
        );
        Ok(fetch_all!(
            self,
            Issue,
            sqlx::AssertSqlSafe(sql.as_str()),
            query.project_id,
            query.state.map(IssueState::as_str),
            query.issue_type.map(IssueType::as_str),
            query.confidential,
            query.author_id,
            query.assignee_id,
            query.label.as_deref(),
            scope,
            reader,
            included.as_deref(),
            excluded.as_deref(),
            rows.limit,
            rows.offset,
            window,
        )?)
    }
}

/// Which rows of a search's result to read.
#[derive(Debug, Clone, Copy)]
struct Rows {
    offset: i64,
    limit: i64,
}

/// The newest issues a PostgreSQL text search looks through first (see [`Candidates`]).
const NEWEST_WINDOW: i64 = 2_000;

/// Where [`Tx::search_rows`] looks for a page. On PostgreSQL a text search has two good plans
/// and the planner cannot tell which: it estimates a phrase as if its words were anywhere in
/// the issue, so `"paper jam"` over two frequent words was walked newest first through 36 000
/// issues (45 ms) to find its 74. So the search first walks a bounded number of the newest
/// issues ([`Candidates::Newest`]), which fills the page unless the text is rare; only then is
/// the index asked for every match ([`Candidates::Matching`]), cheap because the text is rare.
/// A page filled from the newest issues is exact: the others all sort after them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Candidates {
    /// SQLite: FTS5 answers every text search well through the planner.
    Sqlite,
    /// PostgreSQL, no text: every issue of the project.
    Everything,
    /// PostgreSQL: the first issues of the project in the page's order.
    Newest,
    /// PostgreSQL: the issues the text index finds.
    Matching,
}
