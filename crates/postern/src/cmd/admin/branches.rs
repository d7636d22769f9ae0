//! `postern admin project branch …`: the protected branches of a project, which a merge
//! request by email may not use as its source (`postern_core::branches` holds the rule).

use clap::Subcommand;
use postern_core::branches;
use postern_store::Tx;

use super::{Output, change_error, project, store_error};
use crate::exit::Failure;

#[derive(Debug, Subcommand)]
pub enum BranchCommand {
    /// List the protected branches.
    List {
        /// Full path of the project.
        full_path: String,
    },
    /// Protect a branch: merge requests by email may not use it as their source.
    Protect {
        /// Full path of the project.
        full_path: String,
        /// The branch name.
        branch: String,
    },
    /// Unprotect a branch.
    Unprotect {
        /// Full path of the project.
        full_path: String,
        /// The branch name.
        branch: String,
    },
}

pub async fn run(tx: &mut Tx, command: BranchCommand) -> Result<Output, Failure> {
    let (full_path, change) = match command {
        BranchCommand::List { full_path } => (full_path, None),
        BranchCommand::Protect { full_path, branch } => (full_path, Some((true, branch))),
        BranchCommand::Unprotect { full_path, branch } => (full_path, Some((false, branch))),
    };
    let found = project(tx, &full_path).await?;
    let mut human = String::new();
    if let Some((protect, branch)) = change {
        let changed = if protect {
            branches::protect(tx, &found, &branch).await
        } else {
            branches::unprotect(tx, &found, &branch).await
        }
        .map_err(change_error)?;
        let state = if protect {
            "protected"
        } else {
            "not protected"
        };
        let already = if changed { "" } else { " (unchanged)" };
        human.push_str(&format!("{branch} is {state} in {full_path}{already}\n"));
    }
    let protected = tx.protected_branches(found.id).await.map_err(store_error)?;
    human.push_str(&format!("protected branches: {}\n", protected.join(", ")));
    Output::new(
        &serde_json::json!({"project": full_path, "protected_branches": protected}),
        human,
    )
}
