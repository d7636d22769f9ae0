//! Finding issues: the query parameters the project page and the API's issue list share, read
//! into one `postern_store::IssueQuery` (the store's search), and the links between pages.
//!
//! Parameters (all optional, GET): `q` (search text, the store's language: words, `"phrases"`,
//! `-exclusions`, `prefix*`), `state` (`opened`, `closed`; empty or `all`: both), `type`
//! (`issue`, `ticket`, `confidential`), `label`, `author` and `assignee` (usernames), `mine`
//! (assigned to the signed-in user), `sort` (`newest`, `oldest`, `updated`, `updated_asc`),
//! `page` and `per_page`.

use postern_store::{
    Issue, IssueQuery, IssueSort, IssueState, IssueType, Page, SearchText, Tx, User,
};
use serde::Deserialize;

use crate::WebError;
use crate::access::Visible;

/// The list's query parameters as sent (strings, so that a form's empty fields are "any").
#[derive(Debug, Clone, Default, Deserialize, serde::Serialize)]
pub(crate) struct ListParams {
    #[serde(default)]
    pub(crate) q: String,
    #[serde(default)]
    pub(crate) state: String,
    #[serde(default, rename = "type")]
    pub(crate) kind: String,
    #[serde(default)]
    pub(crate) label: String,
    #[serde(default)]
    pub(crate) author: String,
    #[serde(default)]
    pub(crate) assignee: String,
    #[serde(default)]
    pub(crate) mine: String,
    #[serde(default)]
    pub(crate) sort: String,
    #[serde(default)]
    pub(crate) page: String,
    #[serde(default)]
    pub(crate) per_page: String,
}

fn bad(name: &str, value: &str) -> WebError {
    WebError::BadRequest(format!("unknown {name} {value:?}"))
}

impl ListParams {
    /// Whether "assigned to me" is asked (a checkbox sends `on`).
    pub(crate) fn mine(&self) -> bool {
        matches!(self.mine.as_str(), "1" | "on" | "true")
    }

    fn number(name: &str, value: &str) -> Result<Option<u32>, WebError> {
        if value.is_empty() {
            return Ok(None);
        }
        value.parse().map(Some).map_err(|_| bad(name, value))
    }

    /// The query for `visible`'s project as `viewer` may see it, or `None` when a named
    /// user does not exist (nothing can match).
    async fn query(
        &self,
        tx: &mut Tx,
        visible: &Visible,
        viewer: Option<&User>,
    ) -> Result<Option<IssueQuery>, WebError> {
        let mut query = IssueQuery::new(visible.project.id, visible.issue_visibility(viewer));
        query.text = SearchText::parse(&self.q);
        query.state = match self.state.as_str() {
            "" | "all" => None,
            s => Some(s.parse::<IssueState>().map_err(|_| bad("state", s))?),
        };
        match self.kind.as_str() {
            "" | "all" => {}
            "confidential" => query.confidential = Some(true),
            s => query.issue_type = Some(s.parse::<IssueType>().map_err(|_| bad("type", s))?),
        }
        if !self.sort.is_empty() {
            query.sort = self
                .sort
                .parse::<IssueSort>()
                .map_err(|_| bad("sort", &self.sort))?;
        }
        if let Some(page) = Self::number("page", &self.page)? {
            query.page = page;
        }
        if let Some(per_page) = Self::number("per_page", &self.per_page)? {
            query.per_page = per_page;
        }
        let label = self.label.trim();
        if !label.is_empty() {
            query.label = Some(label.to_owned());
        }
        for (name, target) in [
            (self.author.trim(), &mut query.author_id),
            (self.assignee.trim(), &mut query.assignee_id),
        ] {
            if name.is_empty() {
                continue;
            }
            match tx.user_by_username(name.trim_start_matches('@')).await? {
                Some(user) => *target = Some(user.id),
                None => return Ok(None),
            }
        }
        if self.mine() {
            match viewer {
                // Both "assignee" and "mine" given: only the viewer's own can match both.
                Some(me) if query.assignee_id.is_none_or(|id| id == me.id) => {
                    query.assignee_id = Some(me.id);
                }
                _ => return Ok(None),
            }
        }
        Ok(Some(query))
    }

    /// One page of the issues of `visible`'s project that match, as `viewer` may read them.
    pub(crate) async fn search(
        &self,
        tx: &mut Tx,
        visible: &Visible,
        viewer: Option<&User>,
    ) -> Result<Page<Issue>, WebError> {
        let Some(query) = self.query(tx, visible, viewer).await? else {
            return Ok(Page {
                items: Vec::new(),
                page: 1,
                per_page: postern_store::DEFAULT_PER_PAGE,
                has_next: false,
            });
        };
        let mut page = tx.search_issues(&query).await?;
        // The store applied the same rules; every row shown is still checked by the one
        // function the issue page uses, so a difference could only hide, never show.
        page.items
            .retain(|issue| visible.reads_issue(viewer, issue));
        Ok(page)
    }

    /// The query string (`?…`) of page `page` of this list, every other parameter kept: a
    /// link relative to the list's own path.
    pub(crate) fn link(&self, page: u32) -> String {
        let pairs = [
            ("q", self.q.as_str()),
            ("state", &self.state),
            ("type", &self.kind),
            ("label", &self.label),
            ("author", &self.author),
            ("assignee", &self.assignee),
            ("mine", &self.mine),
            ("sort", &self.sort),
            ("per_page", &self.per_page),
        ];
        let mut url = "?".to_owned();
        for (name, value) in pairs.into_iter().filter(|(_, v)| !v.is_empty()) {
            url.push_str(name);
            url.push('=');
            url.push_str(&encode(value));
            url.push('&');
        }
        url.push_str(&format!("page={page}"));
        url
    }
}

/// Percent-encodes everything but RFC 3986's unreserved characters.
fn encode(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for byte in value.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::{ListParams, encode};

    #[test]
    fn links_keep_the_filters() {
        let params = ListParams {
            q: "a \"b\" &c=d".to_owned(),
            state: "opened".to_owned(),
            page: "3".to_owned(),
            ..ListParams::default()
        };
        assert_eq!(
            params.link(4),
            "?q=a%20%22b%22%20%26c%3Dd&state=opened&page=4"
        );
        assert_eq!(encode("é"), "%C3%A9");
    }
}
