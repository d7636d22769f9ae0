//! A small tracker world for the end-to-end tests: a store (SQLite or PostgreSQL), a data
//! directory, the GitLab fixtures with their placeholders filled in, and the users and projects
//! GitLab's specs use.

use postern_core::content::UploadPolicy;
use postern_core::{Processor, ProcessorConfig, ReceiveOutcome};
use postern_mail::AddressTemplate;
use postern_store::{
    InboundSource, Issue, Mailbox, NewIssue, NewProject, NewSentNotification, NewUser, Noteable,
    OutboxFilter, Project, Role, Store, User, Visibility,
};
use postern_testkit::fixtures::gitlab_email_with;
use postern_testkit::{BoxError, TestDb};

/// GitLab's shared-context reply key.
pub const KEY: &str = "59d8df8370b7e95c5a49fbf86aeb2c93";
pub const INCOMING: &str = "incoming+%{key}@appmail.adventuretime.ooo";
pub const REPLY: &str = "reply+%{key}@appmail.adventuretime.ooo";

/// The test world. Dropping it removes the data directory.
pub struct World {
    pub db: TestDb,
    pub data: tempfile::TempDir,
    /// `gitlabhq/gitlabhq`: the project the fixtures name.
    pub project: Project,
    /// jake@adventuretime.ooo, developer; fixtures' `auth_token` becomes his token.
    pub jake: User,
}

impl World {
    pub async fn new(db: TestDb) -> Result<World, BoxError> {
        let data = tempfile::tempdir()?;
        let mut tx = db.store.begin().await?;
        let mut new_jake = NewUser::new("jake", "Jake the Dog", "jake@adventuretime.ooo");
        new_jake.email_verified = true;
        let jake = tx.create_user(new_jake).await?;
        let project = tx
            .create_project(NewProject {
                namespace_path: "gitlabhq".into(),
                path: "gitlabhq".into(),
                name: "GitLab".into(),
                visibility: Visibility::Private,
                default_branch: "master".into(),
            })
            .await?;
        tx.add_member(project.id, jake.id, Role::Developer).await?;
        tx.commit().await?;
        Ok(World {
            db,
            data,
            project,
            jake,
        })
    }

    /// Where messages the store refuses are kept as files.
    pub fn quarantine_directory(&self) -> std::path::PathBuf {
        postern_core::intake::quarantine_directory(self.data.path())
    }

    pub fn store(&self) -> &Store {
        &self.db.store
    }

    /// Stores `batch` as an IMAP watcher's batch for the incoming mailbox (`take_in`).
    pub async fn take_in_imap(
        &self,
        batch: &[postern_core::intake::IntakeMessage],
    ) -> Result<postern_core::intake::IntakeSummary, postern_core::ProcessError> {
        postern_core::intake::take_in(
            self.store(),
            postern_store::Mailbox::Incoming,
            postern_store::InboundSource::Imap,
            batch,
            &self.quarantine_directory(),
        )
        .await
    }

    pub fn config(&self, template: &str) -> ProcessorConfig {
        ProcessorConfig {
            service_desk_address: Some(AddressTemplate::new("support+%{key}@example.com")),
            ..self.config_without_service_desk_mailbox(template)
        }
    }

    /// No `service_desk_email` mailbox: only the incoming address.
    pub fn config_without_service_desk_mailbox(&self, template: &str) -> ProcessorConfig {
        ProcessorConfig {
            incoming_address: Some(AddressTemplate::new(template)),
            service_desk_address: None,
            host: "localhost".into(),
            uploads: UploadPolicy {
                directory: self.data.path().join("uploads"),
                max_bytes: 100 * 1024 * 1024,
            },
            sender_address: "postern@localhost".into(),
            instance_name: "postern".into(),
            reject_notice_window_seconds: 3600,
            auto_mail: postern_core::auto_mail::AutoMailLimits::default(),
            retry: postern_core::RetryPolicy::default(),
            limits: postern_core::MessageLimits::default(),
            quarantine_directory: postern_core::intake::quarantine_directory(self.data.path()),
            // GitLab's trimmer: these compare with GitLab's results.
            reply_trimming: postern_mail::trim::TrimMode::Gitlab,
            web_url: None,
            reply_key_max_age_days: None,
            sender_authentication: None,
        }
    }

    pub fn repositories(&self) -> postern_git::Repositories {
        postern_git::Repositories::new(self.data.path().join("repositories"))
            .with_default_branch("master")
    }

    pub fn processor(&self, template: &str) -> Processor {
        Processor::new(
            self.store().clone(),
            self.repositories(),
            self.config(template),
        )
    }

    /// Receives `raw` on the incoming mailbox with `template`.
    pub async fn receive(&self, template: &str, raw: &[u8]) -> Result<ReceiveOutcome, BoxError> {
        receive_with(&self.processor(template), raw).await
    }

    /// Adds a user with a verified address and a role in the project.
    pub async fn member(
        &self,
        username: &str,
        email: &str,
        role: Option<Role>,
    ) -> Result<User, BoxError> {
        let mut tx = self.store().begin().await?;
        let user = tx
            .create_user(NewUser::new(username, username, email))
            .await?;
        if let Some(role) = role {
            tx.add_member(self.project.id, user.id, role).await?;
        }
        tx.commit().await?;
        Ok(user)
    }

    /// `email/test` (slug `email-test`, as in GitLab's Service Desk specs) with Service Desk on.
    pub async fn service_desk_project(
        &self,
        visibility: Visibility,
        change: impl FnOnce(&mut postern_store::ServiceDeskSettings),
    ) -> Result<Project, BoxError> {
        let mut tx = self.store().begin().await?;
        let project = tx
            .create_project(NewProject {
                namespace_path: "email".into(),
                path: "test".into(),
                name: "test".into(),
                visibility,
                default_branch: "main".into(),
            })
            .await?;
        let mut settings = project.service_desk.clone();
        settings.enabled = true;
        change(&mut settings);
        let project = tx.update_service_desk(project.id, &settings).await?;
        tx.commit().await?;
        Ok(project)
    }

    /// Receives `raw` on the Service Desk mailbox (`support+%{key}@example.com`).
    pub async fn receive_service_desk(&self, raw: &[u8]) -> Result<ReceiveOutcome, BoxError> {
        Ok(self
            .processor(INCOMING)
            .receive(raw, Mailbox::ServiceDesk, InboundSource::Pipe, None)
            .await?)
    }

    pub async fn issue_in(&self, project: &Project, iid: i64) -> Result<Issue, BoxError> {
        let mut tx = self.store().begin().await?;
        let issue = tx
            .issue_by_iid(project.id, iid)
            .await?
            .ok_or("no such issue")?;
        tx.commit().await?;
        Ok(issue)
    }

    pub async fn issue(&self, title: &str) -> Result<Issue, BoxError> {
        let mut tx = self.store().begin().await?;
        let issue = tx
            .create_issue(NewIssue::new(
                self.project.id,
                self.jake.id,
                title,
                "description",
            ))
            .await?;
        tx.commit().await?;
        Ok(issue)
    }

    pub async fn issue_by_iid(&self, iid: i64) -> Result<Issue, BoxError> {
        let mut tx = self.store().begin().await?;
        let issue = tx
            .issue_by_iid(self.project.id, iid)
            .await?
            .ok_or("no such issue")?;
        tx.commit().await?;
        Ok(issue)
    }

    /// A notification about `issue` sent to `recipient`, with GitLab's shared reply key.
    pub async fn notify(&self, issue: &Issue, recipient: &User) -> Result<(), BoxError> {
        let mut tx = self.store().begin().await?;
        tx.create_sent_notification(NewSentNotification {
            partition: 0,
            namespace_id: self.project.id,
            recipient_id: recipient.id,
            noteable: Noteable::Issue(issue.id),
            in_reply_to_discussion_id: None,
            reply_key: Some(KEY.into()),
            participant_email: None,
        })
        .await?;
        tx.commit().await?;
        Ok(())
    }

    pub async fn notes(&self, issue: &Issue) -> Result<Vec<postern_store::Note>, BoxError> {
        let mut tx = self.store().begin().await?;
        let notes = tx.notes_for(Noteable::Issue(issue.id)).await?;
        tx.commit().await?;
        Ok(notes)
    }

    /// A GitLab fixture with `project_id`, `issue_iid` … replaced as GitLab's specs do.
    pub fn fixture(&self, name: &str, issue_iid: i64) -> Vec<u8> {
        self.fixture_for(&self.project, name, issue_iid)
    }

    /// The same, for another project.
    pub fn fixture_for(&self, project: &Project, name: &str, issue_iid: i64) -> Vec<u8> {
        let (id, iid) = (project.id.to_string(), issue_iid.to_string());
        gitlab_email_with(
            name,
            &[
                ("project_id", &id),
                ("issue_iid", &iid),
                ("project_slug", &project.full_path_slug),
                ("project_key", "mykey"),
                ("auth_token", &self.jake.incoming_email_token),
            ],
        )
    }
}

pub use postern_testkit::fixtures::renamed;

/// Receives `raw` on the incoming mailbox, piped, with a processor configured by the test.
pub async fn receive_with(processor: &Processor, raw: &[u8]) -> Result<ReceiveOutcome, BoxError> {
    Ok(processor
        .receive(raw, Mailbox::Incoming, InboundSource::Pipe, None)
        .await?)
}

/// A multipart mail from jake to `to` with a text part `body` and one base64 attachment of
/// `content_type` per (name, content).
pub fn mail_from_jake_with_attachments<N: AsRef<str>>(
    to: &str,
    subject: &str,
    message_id: &str,
    body: &str,
    content_type: &str,
    attachments: &[(N, &[u8])],
) -> Vec<u8> {
    use base64::Engine as _;
    let mut mail = format!(
        "From: Jake the Dog <jake@adventuretime.ooo>\r\nTo: {to}\r\nSubject: {subject}\r\n\
         Message-ID: <{message_id}>\r\nMIME-Version: 1.0\r\n\
         Content-Type: multipart/mixed; boundary=\"b\"\r\n\r\n\
         --b\r\nContent-Type: text/plain\r\n\r\n{body}\r\n"
    );
    for (name, content) in attachments {
        mail.push_str(&format!(
            "--b\r\nContent-Type: {content_type}\r\n\
             Content-Disposition: attachment; filename=\"{}\"\r\n\
             Content-Transfer-Encoding: base64\r\n\r\n{}\r\n",
            name.as_ref(),
            base64::engine::general_purpose::STANDARD.encode(content)
        ));
    }
    mail.push_str("--b--\r\n");
    mail.into_bytes()
}

/// Every queued mail of `kind`, oldest first, as raw text.
pub async fn outbox(world: &World, kind: &str) -> Result<Vec<(Vec<String>, String)>, BoxError> {
    let mut tx = world.store().begin().await?;
    let mails = tx
        .list_outbox(&OutboxFilter {
            kind: Some(kind.to_owned()),
            limit: 1000,
            ..OutboxFilter::default()
        })
        .await?;
    let mut out = Vec::new();
    for mail in mails.iter().rev() {
        let raw = tx.outbox_raw(mail.id).await?.ok_or("raw mail")?;
        out.push((mail.recipients.clone(), String::from_utf8(raw)?));
    }
    tx.commit().await?;
    Ok(out)
}

/// The recipients of every mail in the outbox (of `kind`, when given), sorted, whatever its
/// state.
pub async fn recipients(world: &World, kind: Option<&str>) -> Result<Vec<String>, BoxError> {
    let mut tx = world.store().begin().await?;
    let mails = tx
        .list_outbox(&OutboxFilter {
            kind: kind.map(str::to_owned),
            limit: 1000,
            ..OutboxFilter::default()
        })
        .await?;
    tx.rollback().await?;
    let mut to: Vec<String> = mails.into_iter().flat_map(|m| m.recipients).collect();
    to.sort();
    Ok(to)
}

/// How many mails of `kind` the outbox holds for `address`.
pub async fn mails_to(world: &World, kind: &str, address: &str) -> Result<usize, BoxError> {
    Ok(recipients(world, Some(kind))
        .await?
        .iter()
        .filter(|to| *to == address)
        .count())
}

/// How a mail client answers `notification`: to its Reply-To, threaded, quoting it below.
pub fn reply_to(notification: &str, from: &str, text: &str, id: &str) -> Result<Vec<u8>, BoxError> {
    let email = postern_mail::Email::parse(notification.as_bytes());
    let reply_to = email.reply_to().into_iter().next().ok_or("Reply-To")?;
    let message_id = email.message_id().ok_or("Message-ID")?.to_owned();
    let mut references: Vec<String> = email.references();
    references.push(message_id.clone());
    // A client quotes what the person saw: the decoded text, not the MIME structure.
    let shown = postern_mail::parse_reply(
        &email,
        postern_mail::ReplyOptions {
            trim_reply: false,
            append_reply: false,
            allow_only_quotes: false,
            ..postern_mail::ReplyOptions::default()
        },
    )?;
    let quoted: String = shown
        .body
        .lines()
        .map(|line| format!("> {line}\r\n"))
        .collect();
    let references: Vec<String> = references.iter().map(|r| format!("<{r}>")).collect();
    Ok(format!(
        "From: {from}\r\nTo: {reply_to}\r\nSubject: Re: {}\r\nMessage-ID: <{id}@client.example>\r\n\
         In-Reply-To: <{message_id}>\r\nReferences: {}\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n\
         {text}\r\n\r\nOn Mon, 1 Jan 2024 at 10:00, postern <postern@localhost> wrote:\r\n{quoted}",
        email.subject().unwrap_or(""),
        references.join(" ")
    )
    .into_bytes())
}
