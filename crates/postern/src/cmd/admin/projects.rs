//! `postern admin project …`

use std::path::PathBuf;

use clap::Subcommand;
use postern_core::members::{self, Manager, MemberRefusal};
use postern_core::service_desk::{self, ServiceDeskChange};
use postern_core::{ChangeError, projects};
use postern_store::{Project, Role, Store, Visibility};
use serde::Serialize;

use super::{
    Output, begin, change_error, commit, parse_switch, project, store_error, usage_error, user,
};
use crate::exit::Failure;
use crate::setup::Setup;

#[derive(Debug, Subcommand)]
pub enum ProjectCommand {
    /// Create a project (and its git repository) at a full path such as `group/project`,
    /// with the rules of the web UI and the API: each part of the path of letters, digits,
    /// `_`, `-` and `.`; the default branch protected. Without `--owner` the project has no
    /// members until `project member add`; the web UI and the API make their creator the owner.
    Add {
        /// Full path: `namespace/project` (namespaces may nest).
        full_path: String,
        /// The user who owns the project (its first member, with the owner role).
        #[arg(long, value_name = "USERNAME")]
        owner: Option<String>,
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
            owner,
            name,
            visibility,
            default_branch,
        } => {
            let visibility: Visibility = visibility
                .parse()
                .map_err(|_| usage_error(format!("unknown visibility {visibility:?}")))?;
            let owner = match &owner {
                Some(username) => Some(user(&mut tx, username).await?),
                None => None,
            };
            let (namespace, path) = projects::split_full_path(&full_path);
            let request = projects::ProjectRequest {
                namespace,
                path,
                name: name.as_deref().unwrap_or(""),
                visibility,
                default_branch: &default_branch,
                owner: owner.as_ref(),
            };
            let created = projects::create(&mut tx, &setup.repositories(), request)
                .await
                .map_err(change_error)?;
            let members = tx
                .list_members(created.project.id)
                .await
                .map_err(store_error)?;
            let view = ProjectView {
                repository: created.repository.display().to_string(),
                members,
                addresses: addresses(setup, &created.project, None),
                project: created.project,
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
            members::set(&mut tx, &found, Manager::Administrator, &member, role)
                .await
                .map_err(change_error)?;
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
            match members::remove(&mut tx, &found, Manager::Administrator, member.id).await {
                Err(ChangeError::Refused(MemberRefusal::NotMember)) => {
                    return Err(usage_error(format!(
                        "{username} is not a member of {full_path}"
                    )));
                }
                other => other.map_err(change_error)?,
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
    let config = setup.processor_config();
    let change = match command {
        ServiceDeskCommand::Verify { by, .. } => {
            let triggerer = user(tx, &by).await?;
            let sent_to = service_desk::verify(tx, &config, &found, &triggerer)
                .await
                .map_err(change_error)?;
            return Output::new(
                &serde_json::json!({"project": full_path, "verification_sent_to": sent_to}),
                format!("verification mail queued to {sent_to}\n"),
            );
        }
        ServiceDeskCommand::Enable { .. } => ServiceDeskChange {
            enabled: Some(true),
            ..ServiceDeskChange::default()
        },
        ServiceDeskCommand::Disable { .. } => ServiceDeskChange {
            enabled: Some(false),
            ..ServiceDeskChange::default()
        },
        ServiceDeskCommand::Set(set) => change_of(set)?,
    };
    // No triggerer: a new custom address is verified by `service-desk verify --by`.
    let updated = service_desk::update(tx, &config, &found, None, change)
        .await
        .map_err(change_error)?
        .project;
    let view = ProjectView {
        repository: repository_path(setup, updated.id),
        members: Vec::new(),
        addresses: addresses(setup, &updated, None),
        project: updated,
    };
    let human = describe(&view);
    Output::new(&view, human)
}

/// The change `service-desk set` asks for; options not given keep their value, an empty
/// string clears an optional one (`postern_core::service_desk` applies it).
fn change_of(set: ServiceDeskSet) -> Result<ServiceDeskChange, Failure> {
    let issue_template_content = match &set.template_file {
        Some(path) => Some(
            std::fs::read_to_string(path)
                .map_err(|e| usage_error(format!("cannot read {}: {e}", path.display())))?,
        ),
        None => None,
    };
    Ok(ServiceDeskChange {
        enabled: None,
        project_key: set.project_key,
        custom_email: set.custom_email,
        custom_email_enabled: set.custom_email_enabled,
        tickets_confidential_by_default: set.tickets_confidential,
        reopen_issue_on_external_participant_note: set.reopen_on_external_note,
        add_external_participants_from_cc: set.add_cc_participants,
        issue_template_key: set.template_key,
        issue_template_content,
    })
}
