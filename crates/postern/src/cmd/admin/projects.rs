//! `postern admin project …`

use std::path::PathBuf;

use clap::Subcommand;
use postern_store::{NewProject, Project, Role, Store, Visibility};
use serde::Serialize;

use super::{Output, begin, commit, parse_switch, project, store_error, usage_error, user};
use crate::exit::Failure;
use crate::setup::Setup;

#[derive(Debug, Subcommand)]
pub enum ProjectCommand {
    /// Create a project (and its git repository) at a full path such as `group/project`.
    Add {
        /// Full path: `namespace/project` (namespaces may nest).
        full_path: String,
        /// Display name (defaults to the last path segment).
        #[arg(long)]
        name: Option<String>,
        /// private, internal or public.
        #[arg(long, default_value = "private")]
        visibility: String,
        /// The branch merge requests target by default.
        #[arg(long, default_value = "main")]
        default_branch: String,
    },
    /// List projects.
    List,
    /// Show a project, its members, its git repository and its mail addresses.
    Show {
        /// Full path.
        full_path: String,
        /// Show the new-issue and new-merge-request addresses of this user (they carry the
        /// user's token).
        #[arg(long)]
        user: Option<String>,
    },
    /// Members.
    #[command(subcommand)]
    Member(MemberCommand),
    /// Service Desk settings.
    #[command(subcommand, name = "service-desk")]
    ServiceDesk(ServiceDeskCommand),
    /// Protected branches (a merge request by email never uses one as its source; the
    /// default branch is protected from the start).
    #[command(subcommand)]
    Branch(super::branches::BranchCommand),
    /// Show or set the project's sender-authentication policy: `dmarc` or `require` apply
    /// when stricter than the instance's `sender_authentication: policy`, `default` follows it.
    #[command(name = "sender-auth")]
    SenderAuth {
        /// Full path.
        full_path: String,
        /// `dmarc`, `require` or `default`.
        #[arg(long)]
        policy: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
pub enum MemberCommand {
    /// Add a member or change their role (guest, reporter, developer, maintainer, owner).
    Add {
        /// Full path of the project.
        full_path: String,
        /// The user.
        username: String,
        /// The role.
        role: String,
    },
    /// Remove a member: from then on they get no mail about the project's private issues and
    /// their reply keys are refused (`user_not_authorized`).
    Remove {
        /// Full path of the project.
        full_path: String,
        /// The user.
        username: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum ServiceDeskCommand {
    /// Turn Service Desk on.
    Enable {
        /// Full path of the project.
        full_path: String,
    },
    /// Turn Service Desk off (its mail is then refused as "project not found").
    Disable {
        /// Full path of the project.
        full_path: String,
    },
    /// Change Service Desk settings.
    Set(ServiceDeskSet),
    /// Verify the custom email: mail a token to its `+verify` address; when the provider
    /// forwards it back to postern, the result is recorded and mailed to the owners.
    Verify {
        /// Full path of the project.
        full_path: String,
        /// The user who asks (gets the result mail).
        #[arg(long = "by", value_name = "USERNAME")]
        by: String,
    },
}

#[derive(Debug, clap::Args)]
pub struct ServiceDeskSet {
    /// Full path of the project.
    full_path: String,
    /// Key for the Service Desk alias address (`[a-z0-9_]+`).
    #[arg(long)]
    project_key: Option<String>,
    /// Custom support address (e.g. support@example.com), forwarded to postern; no other
    /// project's. It routes mail only once verified (`service-desk verify`) and enabled.
    #[arg(long)]
    custom_email: Option<String>,
    /// Route mail to the custom address and send from it (true/false; only once verified).
    #[arg(long, value_parser = parse_switch)]
    custom_email_enabled: Option<bool>,
    /// New tickets are confidential (true/false).
    #[arg(long, value_parser = parse_switch)]
    tickets_confidential: Option<bool>,
    /// Reopen a closed ticket when an outside participant writes (true/false).
    #[arg(long, value_parser = parse_switch)]
    reopen_on_external_note: Option<bool>,
    /// Add Cc addresses of new tickets as participants (true/false).
    #[arg(long, value_parser = parse_switch)]
    add_cc_participants: Option<bool>,
    /// Name of the issue template appended to new tickets.
    #[arg(long)]
    template_key: Option<String>,
    /// File whose content is that template.
    #[arg(long, value_name = "FILE")]
    template_file: Option<PathBuf>,
}

/// A project with the addresses people write to.
#[derive(Serialize)]
struct ProjectView {
    #[serde(flatten)]
    project: Project,
    repository: String,
    members: Vec<postern_store::Member>,
    addresses: Addresses,
}

#[derive(Serialize, Default)]
struct Addresses {
    new_issue: Option<String>,
    new_merge_request: Option<String>,
    service_desk: Option<String>,
    service_desk_alias: Option<String>,
    custom_email: Option<String>,
}

fn addresses(setup: &Setup, project: &Project, token: Option<&str>) -> Addresses {
    let config = setup.processor_config();
    let incoming = config
        .incoming_address
        .as_ref()
        .filter(|template| template.supports_wildcard());
    let base = format!("{}-{}", project.full_path_slug, project.id);
    let token = token.unwrap_or("<token>");
    let settings = &project.service_desk;
    Addresses {
        new_issue: incoming.map(|t| t.address_for_key(&format!("{base}-{token}-issue"))),
        new_merge_request: incoming
            .map(|t| t.address_for_key(&format!("{base}-{token}-merge-request"))),
        service_desk: incoming
            .filter(|_| settings.enabled)
            .map(|t| t.address_for_key(&format!("{base}-issue-"))),
        service_desk_alias: config
            .service_desk_address
            .as_ref()
            .filter(|_| settings.enabled)
            .map(|t| match &settings.project_key {
                Some(key) => t.address_for_key(&format!("{}-{key}", project.full_path_slug)),
                None => t.address_for_key(&format!("{base}-issue-")),
            }),
        custom_email: settings.custom_email.clone(),
    }
}

/// Where a project's bare repository is, as an absolute path (as `project add` prints it), so
/// `git push <path>` works from any directory.
fn repository_path(setup: &Setup, project_id: i64) -> String {
    let path = setup
        .repositories()
        .root()
        .join(format!("{project_id}.git"));
    std::path::absolute(&path)
        .unwrap_or(path)
        .display()
        .to_string()
}

fn describe(view: &ProjectView) -> String {
    let p = &view.project;
    let mut text = format!(
        "{} (id {}) {}{}\n  name: {}\n  default branch: {}\n  repository: {}\n",
        p.full_path,
        p.id,
        p.visibility.as_str(),
        if p.archived { " archived" } else { "" },
        p.name,
        p.default_branch,
        view.repository
    );
    for member in &view.members {
        text.push_str(&format!(
            "  member: {} ({})\n",
            member.username,
            member.role.as_str()
        ));
    }
    let a = &view.addresses;
    let lines = [
        ("new issue", &a.new_issue),
        ("new merge request", &a.new_merge_request),
        ("service desk", &a.service_desk),
        ("service desk alias", &a.service_desk_alias),
        ("custom email", &a.custom_email),
    ];
    for (label, value) in lines {
        if let Some(value) = value {
            text.push_str(&format!("  {label}: {value}\n"));
        }
    }
    text.push_str(&format!(
        "  service desk: {}\n",
        if p.service_desk.enabled {
            "enabled"
        } else {
            "disabled"
        }
    ));
    text
}

pub async fn run(store: &Store, setup: &Setup, command: ProjectCommand) -> Result<Output, Failure> {
    let mut tx = begin(store).await?;
    let output = match command {
        ProjectCommand::Add {
            full_path,
            name,
            visibility,
            default_branch,
        } => {
            let (namespace, path) = full_path
                .trim_matches('/')
                .rsplit_once('/')
                .ok_or_else(|| usage_error("a project path is namespace/project"))?;
            let visibility: Visibility = visibility
                .parse()
                .map_err(|_| usage_error(format!("unknown visibility {visibility:?}")))?;
            let created = tx
                .create_project(NewProject {
                    namespace_path: namespace.to_owned(),
                    path: path.to_owned(),
                    name: name.unwrap_or_else(|| path.to_owned()),
                    visibility,
                    default_branch,
                })
                .await
                .map_err(store_error)?;
            let repository = setup
                .repositories()
                .repository(created.id)
                .map_err(|e| usage_error(format!("cannot create the git repository: {e}")))?;
            let view = ProjectView {
                repository: repository.path().display().to_string(),
                members: Vec::new(),
                addresses: addresses(setup, &created, None),
                project: created,
            };
            let human = format!("created {}", describe(&view));
            Output::new(&view, human)?
        }
        ProjectCommand::List => {
            let projects = tx.list_projects().await.map_err(store_error)?;
            let human: String = projects
                .iter()
                .map(|p| format!("{}\t{}\t{}\n", p.id, p.full_path, p.visibility.as_str()))
                .collect();
            Output::new(&projects, human)?
        }
        ProjectCommand::Show {
            full_path,
            user: username,
        } => {
            let found = project(&mut tx, &full_path).await?;
            let token = match &username {
                Some(name) => Some(user(&mut tx, name).await?.incoming_email_token),
                None => None,
            };
            let members = tx.list_members(found.id).await.map_err(store_error)?;
            let view = ProjectView {
                repository: repository_path(setup, found.id),
                members,
                addresses: addresses(setup, &found, token.as_deref()),
                project: found,
            };
            let human = describe(&view);
            Output::new(&view, human)?
        }
        ProjectCommand::Member(MemberCommand::Add {
            full_path,
            username,
            role,
        }) => {
            let found = project(&mut tx, &full_path).await?;
            let member = user(&mut tx, &username).await?;
            let role: Role = role
                .parse()
                .map_err(|_| usage_error(format!("unknown role {role:?}")))?;
            tx.add_member(found.id, member.id, role)
                .await
                .map_err(store_error)?;
            let human = format!("{username} is {} of {full_path}\n", role.as_str());
            Output::new(
                &serde_json::json!({"project": full_path, "username": username, "role": role}),
                human,
            )?
        }
        ProjectCommand::Member(MemberCommand::Remove {
            full_path,
            username,
        }) => {
            let found = project(&mut tx, &full_path).await?;
            let member = user(&mut tx, &username).await?;
            let removed = tx
                .remove_member(found.id, member.id)
                .await
                .map_err(store_error)?;
            if !removed {
                return Err(usage_error(format!(
                    "{username} is not a member of {full_path}"
                )));
            }
            Output::new(
                &serde_json::json!({"project": full_path, "username": username, "removed": true}),
                format!("{username} is no longer a member of {full_path}\n"),
            )?
        }
        ProjectCommand::ServiceDesk(command) => service_desk(&mut tx, setup, command).await?,
        ProjectCommand::Branch(command) => super::branches::run(&mut tx, command).await?,
        ProjectCommand::SenderAuth { full_path, policy } => {
            let instance = postern_core::authentication::instance_policy(
                setup.processor_config().sender_authentication.as_ref(),
            );
            super::sender_policy::run(&mut tx, instance, &full_path, policy.as_deref()).await?
        }
    };
    commit(tx).await?;
    Ok(output)
}

async fn service_desk(
    tx: &mut postern_store::Tx,
    setup: &Setup,
    command: ServiceDeskCommand,
) -> Result<Output, Failure> {
    let full_path = match &command {
        ServiceDeskCommand::Enable { full_path }
        | ServiceDeskCommand::Disable { full_path }
        | ServiceDeskCommand::Verify { full_path, .. } => full_path.clone(),
        ServiceDeskCommand::Set(set) => set.full_path.clone(),
    };
    let found = project(tx, &full_path).await?;
    if let ServiceDeskCommand::Verify { by, .. } = &command {
        let triggerer = user(tx, by).await?;
        let sent_to =
            postern_core::verification::start(tx, &setup.processor_config(), &found, &triggerer)
                .await
                .map_err(|e| usage_error(format!("cannot start verification: {e}")))?;
        return Output::new(
            &serde_json::json!({"project": full_path, "verification_sent_to": sent_to}),
            format!("verification mail queued to {sent_to}\n"),
        );
    }
    let mut settings = found.service_desk.clone();
    match command {
        ServiceDeskCommand::Enable { .. } => settings.enabled = true,
        ServiceDeskCommand::Disable { .. } => settings.enabled = false,
        ServiceDeskCommand::Set(set) => apply(tx, found.id, &mut settings, set).await?,
        ServiceDeskCommand::Verify { .. } => {}
    }
    let updated = match tx.update_service_desk(found.id, &settings).await {
        Ok(updated) => updated,
        Err(e) => match postern_core::custom_email::refusal_on_save(&e, &settings) {
            Some(refusal) => return Err(usage_error(refusal.to_string())),
            None => return Err(store_error(e)),
        },
    };
    let view = ProjectView {
        repository: repository_path(setup, updated.id),
        members: Vec::new(),
        addresses: addresses(setup, &updated, None),
        project: updated,
    };
    let human = describe(&view);
    Output::new(&view, human)
}

/// Applies `service-desk set` options; options not given keep their value, an empty string
/// clears an optional one. The custom email follows `postern_core::custom_email`'s rule.
async fn apply(
    tx: &mut postern_store::Tx,
    project_id: i64,
    settings: &mut postern_store::ServiceDeskSettings,
    set: ServiceDeskSet,
) -> Result<(), Failure> {
    if let Some(path) = &set.template_file {
        let content = std::fs::read_to_string(path)
            .map_err(|e| usage_error(format!("cannot read {}: {e}", path.display())))?;
        settings.issue_template_content = Some(content);
    }
    if let Some(key) = set.project_key {
        settings.project_key = Some(key).filter(|k| !k.is_empty());
    }
    if let Some(email) = set.custom_email {
        use postern_core::custom_email::{CustomEmailError, change};
        match change(tx, project_id, settings, Some(email.as_str())).await {
            Ok(_) => {}
            Err(CustomEmailError::Refused(refusal)) => {
                return Err(usage_error(refusal.to_string()));
            }
            Err(CustomEmailError::Failed(failure)) => return Err(super::items::refused(failure)),
        }
    }
    if let Some(enabled) = set.custom_email_enabled {
        postern_core::custom_email::set_enabled(settings, enabled)
            .map_err(|refusal| usage_error(refusal.to_string()))?;
    }
    if let Some(value) = set.tickets_confidential {
        settings.tickets_confidential_by_default = value;
    }
    if let Some(value) = set.reopen_on_external_note {
        settings.reopen_issue_on_external_participant_note = value;
    }
    if let Some(value) = set.add_cc_participants {
        settings.add_external_participants_from_cc = value;
    }
    if let Some(key) = set.template_key {
        settings.issue_template_key = Some(key).filter(|k| !k.is_empty());
    }
    Ok(())
}
