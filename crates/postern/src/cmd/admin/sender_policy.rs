//! `postern admin project sender-auth …`: a project's own sender-authentication policy, which
//! can only tighten the instance's (`postern_core::authentication::effective_policy` holds the
//! rule).

use postern_core::authentication::{ProjectPolicyView, parse_project_policy, set_project_policy};
use postern_store::Tx;

use super::{Output, project, usage_error};
use crate::exit::Failure;

/// Shows, and with `policy` sets, the sender-authentication policy of `full_path`.
pub async fn run(
    tx: &mut Tx,
    instance: postern_auth::Policy,
    full_path: &str,
    policy: Option<&str>,
) -> Result<Output, Failure> {
    let mut found = project(tx, full_path).await?;
    if let Some(text) = policy {
        let policy = parse_project_policy(text).map_err(usage_error)?;
        found = set_project_policy(tx, &found, policy)
            .await
            .map_err(super::items::refused)?;
    }
    let view = ProjectPolicyView::new(instance, found.sender_policy);
    let mut human = format!(
        "{full_path}: sender authentication {} (project: {}, instance: {})\n",
        view.effective,
        view.project.map_or("default", |p| p.as_str()),
        view.instance,
    );
    if let Some(warning) = &view.warning {
        human.push_str(&format!("warning: {warning}\n"));
    }
    Output::new(
        &serde_json::json!({"project": full_path, "sender_authentication": view}),
        human,
    )
}
