//! The `postern` binary: command line, configuration and wiring. Everything it does is a thin
//! shell over the library crates; the rules live there.

mod cmd;
mod config;
mod exit;
mod intake;
mod logging;
mod memory;
mod setup;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};

/// `postern --version`: what a bug report needs to name the build (build.rs fills both in).
const LONG_VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    "\ncommit: ",
    env!("POSTERN_GIT_COMMIT"),
    "\nfeatures: ",
    env!("POSTERN_FEATURES"),
);

/// postern turns email into issue-tracker activity: replies become comments, mail to a project's
/// address opens an issue or a merge request, and outsiders' mail becomes Service Desk tickets.
#[derive(Debug, Parser)]
#[command(name = "postern", version, long_version = LONG_VERSION, about, long_about = None)]
pub(crate) struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run postern: the mailbox watchers, the built-in LMTP listener, the processing queue, the
    /// outbox worker and the web server, until SIGTERM or Ctrl-C.
    ///
    /// Mailboxes come from the `incoming_email:` / `service_desk_email:` sections (IMAP with IDLE,
    /// or Microsoft Graph): a message is stored before it is flagged or deleted on the server,
    /// and processed afterwards. Mail handed to the LMTP listener (127.0.0.1:2525 unless
    /// `listener.listen` says otherwise) is stored and processed before the listener answers
    /// 250; a temporary failure answers 451 so the sending MTA keeps it. The web UI, JSON API,
    /// /health, /ready and /metrics listen on 127.0.0.1:8080 unless `web.listen` says otherwise.
    /// Without configuration, data lives in ./postern-data and outgoing mail is written to
    /// ./postern-data/outbox/. Logs go to standard error (`log.format: json` for JSON lines;
    /// level from POSTERN_LOG or `log.level`).
    Serve(ServeArgs),
    /// Check that the configuration will work: store, each mailbox (log in, open the folder, or
    /// get a Microsoft Graph token), outgoing mail. One line per check, OK or FAIL with the
    /// reason; exit 1 if any check failed. Secrets are never printed.
    Check(ServeArgs),
    /// Show what postern understands of one message, as JSON, without touching the store.
    ///
    /// Prints sender fields, the mail key and the header it came from, the handler it routes to,
    /// whether the mail is automatic, the reply text as GitLab's reply parser produces it, quick
    /// actions, attachments, and the error GitLab's receiver would raise before any database
    /// access. Without configuration the address is `incoming+%{key}@localhost` and the host
    /// `localhost`.
    Inspect(InspectArgs),
    /// Run the reply trimmer alone on a plain-text body and print the result as JSON.
    ///
    /// Fields: `trimmed` (the kept reply), `elided` (what was cut away), `embedded` and `before`
    /// (a forwarded mail found inside the text and the text before it, or null).
    Trim(TrimArgs),
    /// Store and process one message (for an MTA pipe), and print the outcome as JSON.
    ///
    /// Exit codes: 0 processed, rejected, ignored or duplicate; 75 temporary failure (the store
    /// is unavailable; nothing was written, the MTA should retry); 78 unusable configuration.
    /// Without configuration the store is SQLite in ./postern-data.
    Receive(ReceiveArgs),
    /// Create and list users, emails, projects, members and settings; look at issues, merge
    /// requests and the inbound log.
    Admin(cmd::admin::AdminArgs),
    /// OAuth for IMAP mailboxes: `postern oauth login --provider google|microsoft` signs a
    /// mailbox in once with the device flow and saves its refresh token in the data directory.
    #[command(name = "oauth")]
    OAuth(cmd::oauth::OAuthArgs),
    /// Print a shell completion script: `postern completions bash > /etc/bash_completion.d/postern`.
    Completions(CompletionsArgs),
    /// Write the man pages (postern(1), one per subcommand, postern.yml(5)) into a directory.
    #[command(hide = true)]
    Manpages(ManpagesArgs),
}

#[derive(Debug, clap::Args)]
struct CompletionsArgs {
    /// The shell: bash, zsh, fish, elvish or powershell.
    #[arg(value_enum)]
    shell: clap_complete::Shell,
}

#[derive(Debug, clap::Args)]
struct ManpagesArgs {
    /// The directory to write the pages into (created if missing).
    #[arg(value_name = "DIR")]
    dir: PathBuf,
}

/// What `serve` runs from, and `check` checks.
#[derive(Debug, clap::Args)]
struct ServeArgs {
    #[command(flatten)]
    config: ConfigArg,
    /// GitLab companion mode: read the mailboxes from GitLab's configuration
    /// (`gitlab.yml`, Omnibus `gitlab.rb` or `mail_room.yml`) and deliver every message to GitLab
    /// instead of processing it; `check` runs the checks of `gitlab:incoming_email:check`, the
    /// delivery path and each mailbox's login. postern.yml (`-c`) still gives the store, data
    /// directory and web server.
    #[arg(
        long = "gitlab-config",
        value_name = "FILE",
        env = "POSTERN_GITLAB_CONFIG"
    )]
    gitlab_config: Option<PathBuf>,
}

/// `-c FILE`, for every subcommand that reads postern's configuration.
#[derive(Debug, clap::Args)]
pub(crate) struct ConfigArg {
    /// Configuration file (postern.yml).
    #[arg(
        short = 'c',
        long = "config",
        value_name = "FILE",
        env = "POSTERN_CONFIG"
    )]
    file: Option<PathBuf>,
}

impl ConfigArg {
    /// The file given, if any; without one postern runs on its defaults.
    pub(crate) fn as_deref(&self) -> Option<&Path> {
        self.file.as_deref()
    }
}

#[derive(Debug, clap::Args)]
struct ReceiveArgs {
    #[command(flatten)]
    message: MessageArgs,
}

/// What `inspect` and `receive` share: where the configuration is, which mailbox, which message.
#[derive(Debug, clap::Args)]
struct MessageArgs {
    // postern.yml: mailbox addresses, instance host, store.
    #[command(flatten)]
    config: ConfigArg,
    /// The mailbox the message arrived in.
    #[arg(long, value_enum, default_value = "incoming")]
    mailbox: MailboxArg,
    /// The message (RFC 5322), or `-` for standard input.
    #[arg(value_name = "FILE", default_value = "-")]
    input: PathBuf,
}

/// Which mailbox a message is read as.
#[derive(Debug, Clone, Copy, ValueEnum)]
enum MailboxArg {
    /// The `incoming_email` mailbox (reply by email, new issue/MR, Service Desk).
    Incoming,
    /// The `service_desk_email` mailbox (every key is a Service Desk key).
    #[value(name = "service_desk")]
    ServiceDesk,
}

#[derive(Debug, clap::Args)]
struct InspectArgs {
    #[command(flatten)]
    message: MessageArgs,
    /// Incoming address template, e.g. `incoming+%{key}@example.com` (overrides the config).
    #[arg(long, value_name = "TEMPLATE")]
    address: Option<String>,
    /// Service Desk address template (overrides the config).
    #[arg(long, value_name = "TEMPLATE")]
    service_desk_address: Option<String>,
    /// Instance host for `References: <reply-KEY@HOST>` (overrides the config).
    #[arg(long, value_name = "HOST")]
    host: Option<String>,
    /// Keep the whole body: no quote, signature or forwarded-mail trimming.
    #[arg(long)]
    no_trim: bool,
    /// Return the elided part separately, as GitLab does for replies to issues.
    #[arg(long)]
    append_reply: bool,
    /// Keep a body made only of `>` quotes (needs --no-trim, as in GitLab).
    #[arg(long)]
    allow_only_quotes: bool,
    /// Trimmer: `gitlab` (GitLab's, byte for byte) or `postern` (overrides `reply_trimming:`,
    /// whose default is `postern`).
    #[arg(long, value_enum, value_name = "MODE")]
    mode: Option<TrimModeArg>,
}

#[derive(Debug, clap::Args)]
struct TrimArgs {
    /// The plain-text body, or `-` for standard input.
    #[arg(value_name = "FILE", default_value = "-")]
    input: PathBuf,
    /// Trimmer: `postern` (default) or `gitlab` (GitLab's, byte for byte).
    #[arg(long, value_enum, value_name = "MODE", default_value = "postern")]
    mode: TrimModeArg,
}

/// `--mode` of `trim` and `inspect`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum TrimModeArg {
    Gitlab,
    Postern,
}

impl From<TrimModeArg> for postern_mail::trim::TrimMode {
    fn from(value: TrimModeArg) -> Self {
        match value {
            TrimModeArg::Gitlab => postern_mail::trim::TrimMode::Gitlab,
            TrimModeArg::Postern => postern_mail::trim::TrimMode::Postern,
        }
    }
}

fn main() -> ExitCode {
    memory::tune_allocator();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Serve(args) => cmd::serve::run(args),
        Command::Check(args) => cmd::check::run(args),
        Command::Inspect(args) => cmd::inspect::run(args),
        Command::Trim(args) => cmd::trim::run(args),
        Command::Receive(args) => cmd::receive::run(args),
        Command::Admin(args) => cmd::admin::run(args),
        Command::OAuth(args) => cmd::oauth::run(args),
        Command::Completions(args) => cmd::docs::completions(args.shell),
        Command::Manpages(args) => cmd::docs::manpages(&args.dir),
    };
    match result {
        Ok(code) => code,
        Err(failure) => {
            eprintln!("postern: {:#}", failure.error);
            ExitCode::from(failure.code)
        }
    }
}
