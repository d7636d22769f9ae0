//! Creating a project: one function, one set of rules, for the administration page, the JSON
//! API and `postern admin project add`.
//!
//! A project lives at `namespace/path` (namespaces may nest); every segment follows GitLab's
//! path rule (letters, digits, `_`, `-` and `.`, not starting with `-` or `.`, not ending in
//! `.git` or `.atom`: <https://gitlab.com/gitlab-org/gitlab/-/blob/master/lib/gitlab/path_regex.rb>).
//! Its default branch is a name git accepts and starts protected; its bare git repository
//! exists when the project does (a merge request by email needs it); whoever creates it on a
//! page or through the API becomes its owner, and the command line names one with `--owner`.

use postern_git::Repositories;
use postern_store::{NewProject, Project, Role, Tx, User, Visibility};

use crate::error::{ChangeError, ProcessError, Refusal};

/// The longest path segment GitLab accepts.
const MAX_SEGMENT_CHARS: usize = 255;

/// What a new project is to be.
#[derive(Debug, Clone)]
pub struct ProjectRequest<'a> {
    /// The namespace, nesting with `/` (`group/subgroup`); surrounding slashes and white
    /// space are ignored. Every project has one.
    pub namespace: &'a str,
    /// The project's own path segment.
    pub path: &'a str,
    /// The display name; the last path segment when blank.
    pub name: &'a str,
    /// Who may see it.
    pub visibility: Visibility,
    /// The branch merge requests target by default; `main` when blank.
    pub default_branch: &'a str,
    /// The first owner (the person who creates it), if any.
    pub owner: Option<&'a User>,
}

/// Why a project was not created.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProjectRefusal {
    /// Not `namespace/project`, or a segment GitLab would refuse.
    #[error(
        "A project path is namespace/project, each part of letters, digits, '_', '-' and '.' \
         (not starting with '-' or '.', not ending in .git or .atom): {0:?}"
    )]
    InvalidPath(String),
    /// A project with that path exists (compared case-insensitively).
    #[error("A project with the path {0} exists.")]
    Taken(String),
    /// Not a branch name git accepts.
    #[error("\"{0}\" is not a valid branch name")]
    InvalidBranch(String),
    /// The owner named cannot own a project.
    #[error("The Support Bot cannot own a project.")]
    SupportBotOwner,
}

impl Refusal for ProjectRefusal {}

/// A refusal to show the person who asked, or a store or git failure.
pub type ProjectError = ChangeError<ProjectRefusal>;

/// A project just created, with where its repository is.
#[derive(Debug)]
pub struct CreatedProject {
    /// The project's row.
    pub project: Project,
    /// The absolute path of its bare git repository.
    pub repository: std::path::PathBuf,
}

/// Splits a full path typed as one (`group/sub/project`) into namespace and path; a path
/// without a namespace comes back with an empty one, which [`create`] refuses.
pub fn split_full_path(full_path: &str) -> (&str, &str) {
    full_path
        .trim()
        .trim_matches('/')
        .rsplit_once('/')
        .unwrap_or(("", full_path.trim()))
}

/// Checks a namespace and a path against GitLab's rule; returns them trimmed.
pub fn check_path<'a>(
    namespace: &'a str,
    path: &'a str,
) -> Result<(&'a str, &'a str), ProjectRefusal> {
    let namespace = namespace.trim().trim_matches('/');
    let path = path.trim();
    if !namespace.is_empty() && namespace.split('/').all(valid_segment) && valid_segment(path) {
        Ok((namespace, path))
    } else {
        Err(ProjectRefusal::InvalidPath(format!("{namespace}/{path}")))
    }
}

/// One segment of a project or namespace path, as GitLab's path rule allows it.
fn valid_segment(segment: &str) -> bool {
    segment.chars().count() <= MAX_SEGMENT_CHARS
        && segment
            .chars()
            .next()
            .is_some_and(|first| first.is_ascii_alphanumeric() || first == '_')
        && segment
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_-.".contains(c))
        && !segment.ends_with(".git")
        && !segment.ends_with(".atom")
}

/// Creates the project `request` describes in `tx`: its row (with the default branch
/// protected), its owner's membership, and its bare git repository. The repository is created
/// before the caller commits; should the commit fail, an empty repository is left under an id
/// no project has, which the next project given that id takes over.
pub async fn create(
    tx: &mut Tx,
    repositories: &Repositories,
    request: ProjectRequest<'_>,
) -> Result<CreatedProject, ProjectError> {
    let (namespace, path) = check_path(request.namespace, request.path)?;
    let default_branch = match request.default_branch.trim() {
        "" => "main",
        branch => branch,
    };
    if postern_git::validate_branch_name(default_branch).is_err() {
        return Err(ProjectRefusal::InvalidBranch(default_branch.to_owned()).into());
    }
    if request.owner.is_some_and(User::is_support_bot) {
        return Err(ProjectRefusal::SupportBotOwner.into());
    }
    let name = match request.name.trim() {
        "" => path,
        name => name,
    };
    let created = tx
        .create_project(NewProject {
            namespace_path: namespace.to_owned(),
            path: path.to_owned(),
            name: name.to_owned(),
            visibility: request.visibility,
            default_branch: default_branch.to_owned(),
        })
        .await;
    let project = match created {
        Ok(project) => project,
        Err(e) if e.is_unique_violation() => {
            return Err(ProjectRefusal::Taken(format!("{namespace}/{path}")).into());
        }
        Err(e) => return Err(e.into()),
    };
    if let Some(owner) = request.owner {
        tx.add_member(project.id, owner.id, Role::Owner).await?;
    }
    let repositories = repositories.clone();
    let id = project.id;
    let repository = tokio::task::spawn_blocking(move || repositories.repository(id))
        .await
        .map_err(|e| ProcessError::Internal(format!("repository task failed: {e}")))?
        .map_err(|e| ProcessError::Temporary(format!("cannot create the git repository: {e}")))?;
    Ok(CreatedProject {
        project,
        repository: repository.path().to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::{check_path, split_full_path};

    #[test]
    fn paths_follow_gitlabs_rule() {
        let checked = |full: &str| {
            let (namespace, path) = split_full_path(full);
            check_path(namespace, path).map(|(n, p)| format!("{n}|{p}"))
        };
        assert_eq!(checked("group/project"), Ok("group|project".to_owned()));
        assert_eq!(checked(" /a/b_c/d.e-f/ "), Ok("a/b_c|d.e-f".to_owned()));
        assert_eq!(check_path(" /team/ ", " desk "), Ok(("team", "desk")));
        for refused in [
            "project",
            "",
            "/",
            "a//b/project",
            "group/../project",
            "group/.hidden",
            "group/-dash",
            "group/project.git",
            "group/feed.atom",
            "group/with space",
            "gröup/project",
            "group/pro?ject",
        ] {
            assert!(checked(refused).is_err(), "{refused:?}");
        }
        assert!(check_path("team", "a/b").is_err(), "a path is one segment");
    }
}
