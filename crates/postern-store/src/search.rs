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
//! # The query language
//!
//! One small language, parsed once here ([`SearchText::parse`]) and written out for each
//! backend, so both stores answer the same query the same way:
//!
//! - words are AND-ed: `printer offline` finds issues holding both words;
//! - `"a quoted phrase"` finds the words next to each other, in that order;
//! - `-word` or `-"a phrase"` excludes the issues holding it;
//! - `word*` matches every word starting with `word`;
//! - case does not matter; anything that is not a letter or a digit separates words, so
//!   `alice@example.com` is the phrase `"alice example com"` and `foo-bar` the phrase
//!   `"foo bar"` (both stores index such text as these words, see the migrations).
//!
//! Nothing else is syntax: parentheses, `OR`, `NEAR`, `column:` prefixes, `&`, `|`, `!` and
//! quotes inside words are ordinary text (the punctuation separates words, `OR` and `NEAR` are
//! words). What reaches FTS5's `MATCH` or PostgreSQL's `to_tsquery` is built here from words
//! made of letters and digits only, each quoted, so no input can inject their syntax. A query
//! of only exclusions lists every issue without them. The parse is one pass over at most
//! [`MAX_QUERY_CHARS`] characters and keeps at most [`MAX_TERMS`] terms of at most
//! [`MAX_PHRASE_WORDS`] words; the rest is ignored.

use crate::issues::{Issue, IssueState, IssueType};
use crate::tx::{execute, fetch_all};
use crate::{Backend, StoreError, Tx};
use postern_vocab::named_enum;

/// Characters of an issue's text (title, description, public comments) the index holds; the
/// migration's triggers cut there (a PostgreSQL `tsvector` has a size limit).
pub const MAX_DOCUMENT_CHARS: usize = 100_000;
/// Characters of a search text that are read; the rest is ignored.
pub const MAX_QUERY_CHARS: usize = 256;
/// Terms (words or phrases, included or excluded) kept from one search text.
pub const MAX_TERMS: usize = 16;
/// Words kept in one phrase (or in one word that punctuation splits, such as an address).
pub const MAX_PHRASE_WORDS: usize = 16;
/// The largest page [`Tx::search_issues`] returns, whatever is asked.
pub const MAX_PER_PAGE: u32 = 100;
/// The page size when none is asked.
pub const DEFAULT_PER_PAGE: u32 = 20;
/// The last page number served: beyond it the offset would make every request slow.
pub const MAX_PAGE: u32 = 10_000;

/// One term of a search text: a word (one entry in `words`) or a phrase.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Term {
    /// Lower-case words of letters and digits only: safe inside either store's quotes.
    words: Vec<String>,
    /// The last word is a prefix (`word*`).
    prefix: bool,
    /// `-term`: issues holding it are left out.
    excluded: bool,
}

/// A parsed search text (see the module documentation for the language).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SearchText {
    terms: Vec<Term>,
}

impl SearchText {
    /// Parses what a person typed. Never fails: what is not syntax is text, and text that
    /// holds no letter or digit is no term.
    pub fn parse(input: &str) -> SearchText {
        let chars: Vec<char> = input.chars().take(MAX_QUERY_CHARS).collect();
        let mut terms = Vec::new();
        let mut i = 0;
        while i < chars.len() && terms.len() < MAX_TERMS {
            if chars[i].is_whitespace() {
                i += 1;
                continue;
            }
            let excluded = chars[i] == '-';
            if excluded {
                i += 1;
            }
            let (start, end, prefix);
            if i < chars.len() && chars[i] == '"' {
                // A phrase runs to the next quote, or to the end of the text.
                start = i + 1;
                i = start;
                while i < chars.len() && chars[i] != '"' {
                    i += 1;
                }
                end = i;
                if i < chars.len() {
                    i += 1;
                }
                prefix = i < chars.len() && chars[i] == '*';
                if prefix {
                    i += 1;
                }
            } else {
                start = i;
                while i < chars.len() && !chars[i].is_whitespace() && chars[i] != '"' {
                    i += 1;
                }
                end = i;
                prefix = end > start && chars[end - 1] == '*';
            }
            let words = words_of(&chars[start..end]);
            if !words.is_empty() {
                terms.push(Term {
                    words,
                    prefix,
                    excluded,
                });
            }
        }
        SearchText { terms }
    }

    /// Whether the text holds no term: nothing to search for.
    pub fn is_empty(&self) -> bool {
        self.terms.is_empty()
    }

    fn part(&self, excluded: bool) -> impl Iterator<Item = &Term> {
        self.terms.iter().filter(move |t| t.excluded == excluded)
    }

    /// FTS5 `MATCH` text for the included terms (AND) or the excluded ones (OR), if any.
    fn fts5(&self, excluded: bool) -> Option<String> {
        let parts: Vec<String> = self
            .part(excluded)
            .map(|t| {
                // Words hold letters and digits only; the doubling is a second fence.
                let phrase = t.words.join(" ").replace('"', "\"\"");
                format!("\"{phrase}\"{}", if t.prefix { "*" } else { "" })
            })
            .collect();
        let joiner = if excluded { " OR " } else { " AND " };
        (!parts.is_empty()).then(|| parts.join(joiner))
    }

    /// `to_tsquery('simple', …)` text for the whole search: the included terms AND-ed, and
    /// none of the excluded ones. One condition, so a candidate is checked in one pass over
    /// its document.
    fn tsquery(&self) -> Option<String> {
        match (self.tsquery_part(false), self.tsquery_part(true)) {
            (Some(included), Some(excluded)) => Some(format!("({included}) & !({excluded})")),
            (Some(included), None) => Some(included),
            (None, Some(excluded)) => Some(format!("!({excluded})")),
            (None, None) => None,
        }
    }

    /// `to_tsquery` text for the included terms (AND) or the excluded ones (OR).
    fn tsquery_part(&self, excluded: bool) -> Option<String> {
        let parts: Vec<String> = self
            .part(excluded)
            .map(|t| {
                let last = t.words.len().saturating_sub(1);
                let words: Vec<String> = t
                    .words
                    .iter()
                    .enumerate()
                    .map(|(n, w)| {
                        let star = if t.prefix && n == last { ":*" } else { "" };
                        format!("'{}'{star}", w.replace('\'', "''").replace('\\', ""))
                    })
                    .collect();
                format!("({})", words.join(" <-> "))
            })
            .collect();
        let joiner = if excluded { " | " } else { " & " };
        (!parts.is_empty()).then(|| parts.join(joiner))
    }
}

/// The words of one term: runs of letters and digits, lower-cased.
fn words_of(text: &[char]) -> Vec<String> {
    let mut words = Vec::new();
    let mut word = String::new();
    for &c in text {
        if c.is_alphanumeric() {
            word.extend(c.to_lowercase());
        } else if !word.is_empty() {
            words.push(std::mem::take(&mut word));
        }
    }
    if !word.is_empty() {
        words.push(word);
    }
    words.truncate(MAX_PHRASE_WORDS);
    words
}

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
        let offset = i64::from(page - 1) * i64::from(per_page);
        let wanted = offset + i64::from(per_page) + 1;
        let mut rows = match self.backend() {
            Backend::Sqlite => self.search_rows(query, Candidates::Sqlite, wanted).await?,
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
                    self.search_rows(query, Candidates::Everything, wanted)
                        .await?
                } else {
                    let newest = self.search_rows(query, Candidates::Newest, wanted).await?;
                    if newest.len() as i64 == wanted - offset {
                        newest
                    } else {
                        self.search_rows(query, Candidates::Matching, wanted)
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

    /// One page of `query` (`wanted` is its offset plus one more than a page), looking among
    /// `candidates`.
    async fn search_rows(
        &mut self,
        query: &IssueQuery,
        candidates: Candidates,
        wanted: i64,
    ) -> Result<Vec<Issue>, StoreError> {
        let per_page = query.per_page.clamp(1, MAX_PER_PAGE);
        let offset = wanted - i64::from(per_page) - 1;
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
            Candidates::Newest => (query.text.tsquery(), None, Some(NEWEST_WINDOW + 2 * wanted)),
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
            i64::from(per_page) + 1,
            offset,
            window,
        )?)
    }
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

#[cfg(test)]
mod tests {
    use super::SearchText;

    fn both(
        input: &str,
    ) -> (
        Option<String>,
        Option<String>,
        Option<String>,
        Option<String>,
    ) {
        let text = SearchText::parse(input);
        (
            text.fts5(false),
            text.fts5(true),
            text.tsquery_part(false),
            text.tsquery_part(true),
        )
    }

    #[test]
    fn words_phrases_exclusions_and_prefixes() {
        let (fts_in, fts_out, ts_in, ts_out) =
            both(r#"Printer "paper jam" -toner off* -"out of order""#);
        assert_eq!(
            fts_in.as_deref(),
            Some(r#""printer" AND "paper jam" AND "off"*"#)
        );
        assert_eq!(fts_out.as_deref(), Some(r#""toner" OR "out of order""#));
        assert_eq!(
            ts_in.as_deref(),
            Some("('printer') & ('paper' <-> 'jam') & ('off':*)")
        );
        assert_eq!(
            ts_out.as_deref(),
            Some("('toner') | ('out' <-> 'of' <-> 'order')")
        );
    }

    #[test]
    fn postgresql_gets_one_condition_for_the_whole_search() {
        let text = |t: &str| SearchText::parse(t).tsquery();
        assert_eq!(
            text("invoice -refund -\"credit note\"").as_deref(),
            Some("(('invoice')) & !(('refund') | ('credit' <-> 'note'))")
        );
        assert_eq!(text("-refund").as_deref(), Some("!(('refund'))"));
        assert_eq!(text("invoice").as_deref(), Some("('invoice')"));
        assert_eq!(text("").as_deref(), None);
    }

    #[test]
    fn punctuation_splits_words_into_phrases() {
        let (fts_in, _, ts_in, _) = both("alice@example.com foo-bar");
        assert_eq!(
            fts_in.as_deref(),
            Some(r#""alice example com" AND "foo bar""#)
        );
        assert_eq!(
            ts_in.as_deref(),
            Some("('alice' <-> 'example' <-> 'com') & ('foo' <-> 'bar')")
        );
    }

    #[test]
    fn hostile_text_is_only_words() {
        for input in [
            r#"" OR 1=1 --"#,
            "title:secret NEAR(a b) ) ( AND OR NOT",
            "'); DROP TABLE issues; --",
            "a & !b | c <-> d:* \\' \\\"",
            "\0nul\0 byte",
            "\"unterminated phrase",
            "*",
            "-",
            "--",
            "\"\"",
            "^a +b {c} [d]",
        ] {
            let text = SearchText::parse(input);
            for term in &text.terms {
                for word in &term.words {
                    assert!(
                        word.chars().all(char::is_alphanumeric),
                        "{input:?} gave the word {word:?}"
                    );
                }
            }
            for fts in [text.fts5(false), text.fts5(true)].into_iter().flatten() {
                // Quotes only around phrases, operators only between them.
                let inner: String = fts
                    .split(" AND ")
                    .flat_map(|p| p.split(" OR "))
                    .map(|p| p.trim_end_matches('*'))
                    .map(|p| {
                        assert!(p.starts_with('"') && p.ends_with('"'), "{fts:?}");
                        p[1..p.len() - 1].to_owned()
                    })
                    .collect();
                assert!(!inner.contains('"'), "{fts:?}");
            }
        }
        assert!(SearchText::parse("( ) : * - \"\" ' \\").is_empty());
        assert_eq!(
            SearchText::parse("NEAR(a b)").fts5(false).as_deref(),
            Some(r#""near a" AND "b""#)
        );
    }

    #[test]
    fn long_input_is_capped() {
        let long = "word ".repeat(100_000);
        let text = SearchText::parse(&long);
        assert_eq!(text.terms.len(), super::MAX_TERMS);
        let one = "a".repeat(1_000_000);
        let text = SearchText::parse(&one);
        assert_eq!(text.terms[0].words[0].len(), super::MAX_QUERY_CHARS);
        let dotted = "a.".repeat(1000);
        let text = SearchText::parse(&dotted);
        assert_eq!(text.terms[0].words.len(), super::MAX_PHRASE_WORDS);
    }
}
