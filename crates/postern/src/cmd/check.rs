//! `postern check`: is this configuration going to work? One line per check, `OK` or `FAIL`
//! with the reason, exit 1 if anything failed — like `gitlab:incoming_email:check`, but for
//! everything `serve` would use: the configuration, the store, each mailbox, outgoing mail.
//!
//! Reasons never contain secrets: each check formats its own error with the secret left out.

use std::future::Future;
use std::pin::Pin;
use std::process::ExitCode;

use crate::ServeArgs;
use crate::exit::Failure;
use crate::setup::{Setup, load_config, runtime};

/// The result of one check.
pub struct CheckLine {
    /// What was checked, e.g. `store` or `incoming_email (imap incoming@mail.example.com:993/inbox)`.
    pub name: String,
    /// `Ok(detail)` or `Err(reason)`.
    pub result: Result<String, String>,
}

/// A check still to run.
pub type PendingCheck<'a> = Pin<Box<dyn Future<Output = CheckLine> + 'a>>;

/// Runs every check and prints one line each.
pub fn run(args: ServeArgs) -> Result<ExitCode, Failure> {
    if let Some(gitlab_config) = args.gitlab_config.as_deref() {
        return crate::cmd::serve::companion::check(gitlab_config);
    }
    let config = match load_config(args.config.as_deref()) {
        Ok(config) => config,
        Err(failure) => {
            println!("FAIL configuration: {:#}", failure.error);
            return Ok(ExitCode::FAILURE);
        }
    };
    println!(
        "OK   configuration: {}",
        args.config
            .as_deref()
            .map(|path| path.display().to_string())
            .unwrap_or_else(|| "embedded defaults".to_owned())
    );
    let setup = Setup::new(config)?;
    let (lines, warnings) = runtime()?.block_on(async {
        let mut lines = Vec::new();
        for check in checks(&setup) {
            lines.push(check.await);
        }
        let mut warnings = sender_policy_warnings(&setup).await;
        let (instance_lines, instance_warnings) =
            crate::cmd::serve::instances::check(&setup, shared_store(&setup).await).await;
        lines.extend(instance_lines);
        warnings.extend(instance_warnings);
        (lines, warnings)
    });
    let mut failed = false;
    for line in lines {
        match line.result {
            Ok(detail) => println!("OK   {}: {detail}", line.name),
            Err(reason) => {
                failed = true;
                println!("FAIL {}: {reason}", line.name);
            }
        }
    }
    // Warnings do not fail the check: the instance works, but not as a project asked.
    for warning in warnings {
        println!("WARN {warning}");
    }
    Ok(if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

fn checks(setup: &Setup) -> Vec<PendingCheck<'_>> {
    let mut checks: Vec<PendingCheck<'_>> = Vec::new();
    checks.push(Box::pin(store(setup)));
    checks.extend(crate::cmd::serve::sources::checks(
        crate::cmd::serve::sources::sections(setup),
        &setup.data_dir,
    ));
    checks.push(Box::pin(outgoing(setup)));
    if setup
        .config
        .web
        .as_ref()
        .is_some_and(|web| web.tls.is_some())
    {
        checks.push(Box::pin(web_tls(setup)));
    }
    checks
}

/// Projects whose own sender-authentication policy the instance cannot honour (its policy is
/// `off`, so nothing is verified). Nothing when the store cannot be read: its check says why.
async fn sender_policy_warnings(setup: &Setup) -> Vec<String> {
    let instance = postern_core::authentication::instance_policy(
        setup.processor_config().sender_authentication.as_ref(),
    );
    let Ok(store) = setup.store().await else {
        return Vec::new();
    };
    let projects = match store.begin_read_only().await {
        Ok(mut read) => read.list_projects().await.unwrap_or_default(),
        Err(_) => Vec::new(),
    };
    store.close().await;
    projects
        .iter()
        .filter_map(|project| {
            postern_core::authentication::unenforced_project_policy(instance, project.sender_policy)
                .map(|warning| format!("sender_authentication ({}): {warning}", project.full_path))
        })
        .collect()
}

/// Whether the store is one several instances share (PostgreSQL). `false` when it cannot be
/// opened: its own check says why.
async fn shared_store(setup: &Setup) -> bool {
    match setup.store().await {
        Ok(store) => {
            let shared = store.backend() == postern_store::Backend::Postgres;
            store.close().await;
            shared
        }
        Err(_) => false,
    }
}

/// `web.tls`: the certificate and key load and belong together, as `serve` will need them.
async fn web_tls(setup: &Setup) -> CheckLine {
    let result = match crate::cmd::serve::web_certificate(setup) {
        Ok(_) => Ok("certificate and key load and belong together".to_owned()),
        Err(failure) => Err(format!("{:#}", failure.error)),
    };
    CheckLine {
        name: "web.tls".to_owned(),
        result,
    }
}

async fn store(setup: &Setup) -> CheckLine {
    {
        let result = match setup.store().await {
            Ok(store) => {
                let result = store
                    .ping()
                    .await
                    .map(|()| format!("{:?}, schema up to date", store.backend()).to_lowercase())
                    .map_err(|e| e.to_string());
                store.close().await;
                result
            }
            Err(failure) => Err(format!("{:#}", failure.error)),
        };
        CheckLine {
            name: "store".to_owned(),
            result,
        }
    }
}

async fn outgoing(setup: &Setup) -> CheckLine {
    let settings = setup.smtp_settings();
    let outbox = setup.data_dir.join("outbox");
    {
        let result = match settings {
            Err(failure) => Err(format!("{:#}", failure.error)),
            Ok(None) => std::fs::create_dir_all(&outbox)
                .map(|()| format!("no smtp: section, mail is written to {}", outbox.display()))
                .map_err(|e| format!("cannot create {}: {e}", outbox.display())),
            Ok(Some(settings)) => {
                let relay = format!("{}:{}", settings.host, settings.port);
                match postern_outbox::SmtpTransport::new(settings) {
                    Err(e) => Err(e.to_string()),
                    Ok(transport) => transport
                        .check()
                        .await
                        .map(|()| format!("relay {relay} accepts connections"))
                        .map_err(|e| e.to_string()),
                }
            }
        };
        CheckLine {
            name: "outgoing mail".to_owned(),
            result,
        }
    }
}
