//! `postern oauth login`: the one interactive step of delegated OAuth access to a mailbox
//! (Gmail, Google Workspace or Microsoft 365 with `oauth_grant: refresh_token`). It runs the
//! device flow with the mailbox section's OAuth client, shows the person where to sign in and
//! which code to enter, waits for their approval, and saves the refresh token in the data
//! directory (mode 0600) where `serve` reads it and keeps it current as the provider rotates it.

use std::process::ExitCode;

use clap::ValueEnum;
use postern_inbox::oauth::RefreshTokenFile;
use postern_inbox::oauth::device::DeviceLogin;

use crate::MailboxArg;
use crate::cmd::serve::tokens::{endpoints, refresh_token_path};
use crate::exit::{CONFIG, Failure, TEMPORARY};
use crate::setup::{Setup, load_config, runtime};

/// `postern oauth …`.
#[derive(Debug, clap::Args)]
pub struct OAuthArgs {
    #[command(subcommand)]
    command: OAuthCommand,
}

#[derive(Debug, clap::Subcommand)]
enum OAuthCommand {
    /// Sign a mailbox in once with the device flow and save its refresh token.
    ///
    /// Prints a URL and a code: open the URL on any device, sign in as the mailbox's user and
    /// enter the code. The refresh token is saved to `inbox_options.refresh_token_file`, by
    /// default `<data_dir>/oauth/<section>.refresh-token`, readable by postern's user only.
    /// The section's `inbox_options` give `client_id` (and `client_secret` for Google, and
    /// `tenant_id` for a single Microsoft tenant).
    Login(LoginArgs),
}

#[derive(Debug, clap::Args)]
struct LoginArgs {
    #[command(flatten)]
    config: crate::ConfigArg,
    /// Whose endpoints and scope to use (overrides `inbox_options.provider`).
    #[arg(long, value_enum)]
    provider: Option<Provider>,
    /// The mailbox section to sign in.
    #[arg(long, value_enum, default_value = "incoming")]
    mailbox: MailboxArg,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum Provider {
    /// Gmail and Google Workspace.
    Google,
    /// Microsoft 365 (Exchange Online).
    Microsoft,
}

/// Runs `postern oauth …`.
pub fn run(args: OAuthArgs) -> Result<ExitCode, Failure> {
    let OAuthCommand::Login(args) = args.command;
    let config = load_config(args.config.as_deref())?;
    let setup = Setup::new(config)?;
    let (name, mailbox, section) = match args.mailbox {
        MailboxArg::Incoming => (
            "incoming_email",
            postern_store::Mailbox::Incoming,
            setup.config.incoming_email.as_ref(),
        ),
        MailboxArg::ServiceDesk => (
            "service_desk_email",
            postern_store::Mailbox::ServiceDesk,
            setup.config.service_desk_email.as_ref(),
        ),
    };
    let config_error = |text: String| Failure::new(CONFIG, anyhow::anyhow!(text));
    let section = section
        .ok_or_else(|| config_error(format!("there is no {name}: section")))?
        .settings(mailbox);
    let provider = args.provider.map(|p| match p {
        Provider::Google => "google",
        Provider::Microsoft => "microsoft",
    });
    let endpoints = endpoints(name, &section, provider).map_err(config_error)?;
    let options = section.inbox_options.as_ref();
    let client_id = options
        .and_then(|o| o.client_id.clone())
        .filter(|c| !c.trim().is_empty())
        .ok_or_else(|| config_error(format!("{name}.inbox_options.client_id is required")))?;
    let login = DeviceLogin {
        device_url: endpoints.device_url,
        token_url: endpoints.token_url,
        client_id,
        client_secret: options.and_then(|o| o.client_secret.as_ref()).cloned(),
        scope: endpoints.scope,
    };
    let http = postern_inbox::http::client(section.tls_ca_file.as_deref())
        .map_err(|e| config_error(format!("{name}: {e}")))?;
    let path = refresh_token_path(name, &section, &setup.data_dir);
    let temporary =
        |e: postern_inbox::oauth::OAuthError| Failure::new(TEMPORARY, anyhow::anyhow!(e));
    let approved = runtime()?.block_on(async {
        let code = login.start(&http).await.map_err(temporary)?;
        println!(
            "To sign {name} in, open {} and enter the code {}",
            code.verification_uri, code.user_code
        );
        login.finish(&http, code).await.map_err(temporary)
    })?;
    RefreshTokenFile::create(&path, &approved.refresh_token)
        .map_err(|e| Failure::new(CONFIG, anyhow::anyhow!(e)))?;
    println!(
        "Signed in. The refresh token is saved in {}",
        path.display()
    );
    Ok(ExitCode::SUCCESS)
}
