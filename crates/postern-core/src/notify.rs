//! Notification mail that can be answered: who hears about a change, and the
//! mail each of them gets — queued in the outbox in the same transaction as the change.
//!
//! Every notification carries a fresh reply key (a sent notification): `Reply-To` is the reply
//! address with the project's name, `References` starts with `<reply-KEY@host>` (so replies
//! from clients that drop the `+key` still find their way), and all mail about one issue is
//! threaded on `<issue_ID@host>`. Mail postern sends is marked automatic (`Auto-Submitted`,
//! `X-Auto-Response-Suppress`) and carries [`LOOP_HEADER`], which the intake drops, so postern
//! never answers itself.

use mail_builder::MessageBuilder;
use mail_builder::headers::raw::Raw;
use postern_mail::AddressTemplate;
use postern_store::{
    Issue, IssueType, MergeRequest, NewOutboxMail, NewSentNotification, Note, Noteable, Project,
    Tx, User,
};

use crate::config::ProcessorConfig;
use crate::content::escape_html;
use crate::error::ProcessError;

mod outside;
mod recipients;

pub(crate) use outside::ticket_closed;
pub use outside::to_external_participants;
use recipients::{About, recipients, reply_template};
pub use recipients::{Audience, comment_audience};

/// The header that marks mail sent by postern; the intake treats mail carrying it as automatic.
pub const LOOP_HEADER: &str = postern_mail::auto::LOOP_HEADER;

/// The header carrying the reply key, for clients and filters (GitLab: `X-GitLab-Reply-Key`).
pub const REPLY_KEY_HEADER: &str = "X-Postern-Reply-Key";

/// Marks a mail as postern's own automatic mail: `Auto-Submitted` (`auto-generated`, or
/// `auto-replied` for answers to a person's mail), `X-Auto-Response-Suppress: All` so
/// out-of-office responders stay quiet, and [`LOOP_HEADER`] so it is dropped if it comes back.
pub(crate) fn automatic<'x>(
    builder: MessageBuilder<'x>,
    auto_submitted: &'static str,
    host: &str,
) -> MessageBuilder<'x> {
    builder
        .header("Auto-Submitted", Raw::new(auto_submitted))
        .header("X-Auto-Response-Suppress", Raw::new("All"))
        .header(LOOP_HEADER, Raw::new(host.to_owned()))
}

/// GitLab's Service Desk thank-you text.
pub const THANK_YOU: &str = "Thank you for your support request! We are tracking your request as ticket #{iid}, and will respond as soon as we can.";

/// What happened, for whom to hear about it.
#[derive(Debug, Clone, Copy)]
pub enum Change<'a> {
    /// A new issue (or ticket) was opened.
    IssueOpened(&'a Issue),
    /// A new merge request was opened.
    MergeRequestOpened(&'a MergeRequest),
    /// A comment was added to an issue, ticket or merge request.
    Commented {
        /// The comment.
        note: &'a Note,
        /// Its issue, when it is on one.
        issue: Option<&'a Issue>,
    },
}

/// Queues the notifications for `change` made by `actor`. Returns how many were queued.
pub async fn notify(
    tx: &mut Tx,
    config: &ProcessorConfig,
    project: &Project,
    actor: &User,
    change: Change<'_>,
) -> Result<usize, ProcessError> {
    let Some(reply_template) = reply_template(config) else {
        return Ok(0);
    };
    let (noteable, thread) = match change {
        Change::IssueOpened(issue) => (Noteable::Issue(issue.id), Thread::issue(issue)),
        Change::MergeRequestOpened(mr) => {
            (Noteable::MergeRequest(mr.id), Thread::merge_request(mr))
        }
        Change::Commented { note, issue } => match issue {
            Some(issue) => (note.noteable, Thread::issue(issue)),
            None => {
                let mr = match note.noteable {
                    Noteable::MergeRequest(id) => tx.merge_request_by_id(id).await?,
                    Noteable::Issue(_) => None,
                };
                match mr {
                    Some(mr) => (note.noteable, Thread::merge_request(&mr)),
                    None => return Ok(0),
                }
            }
        },
    };
    let mut queued = 0;
    for recipient in recipients(tx, project, noteable, About::of(change), actor).await? {
        let Some(to) = recipient.primary_email().map(str::to_owned) else {
            continue;
        };
        let sent = tx
            .create_sent_notification(NewSentNotification {
                partition: 0,
                namespace_id: project.id,
                recipient_id: recipient.id,
                noteable,
                in_reply_to_discussion_id: match change {
                    Change::Commented { note, .. } => Some(note.discussion_id.clone()),
                    _ => None,
                },
                reply_key: None,
                participant_email: None,
            })
            .await?;
        let key = sent.address_key();
        let one_click = one_click_link(tx, config, sent.id).await?;
        let mail = Mail {
            config,
            project,
            actor,
            to: &to,
            key: &key,
            reply_template,
            thread: &thread,
            change,
            one_click: one_click.as_deref(),
        };
        let raw = mail.compose()?;
        tx.enqueue_outbox(&NewOutboxMail {
            kind: "notification".to_owned(),
            recipients: vec![to],
            raw,
            inbound_id: None,
            dedupe_key: Some(format!("notification:{key}")),
            not_before: None,
        })
        .await?;
        queued += 1;
    }
    Ok(queued)
}

/// The issue or merge request a thread of mail is about.
struct Thread {
    /// `issue_ID` or `merge_request_ID`: the root Message-ID's local part.
    root: String,
    /// `#IID` or `!IID`.
    reference: String,
    /// Its page under the web UI's address: `issues/IID` or `merge_requests/IID`.
    page: String,
    title: String,
    body: String,
}

impl Thread {
    fn issue(issue: &Issue) -> Thread {
        Thread {
            root: format!("issue_{}", issue.id),
            reference: format!("#{}", issue.iid),
            page: format!("issues/{}", issue.iid),
            title: issue.title.clone(),
            body: issue.description.clone(),
        }
    }

    fn merge_request(mr: &MergeRequest) -> Thread {
        Thread {
            root: format!("merge_request_{}", mr.id),
            reference: format!("!{}", mr.iid),
            page: format!("merge_requests/{}", mr.iid),
            title: mr.title.clone(),
            body: mr.description.clone(),
        }
    }
}

/// One notification mail.
struct Mail<'a> {
    config: &'a ProcessorConfig,
    project: &'a Project,
    actor: &'a User,
    to: &'a str,
    key: &'a str,
    reply_template: &'a AddressTemplate,
    thread: &'a Thread,
    change: Change<'a>,
    /// The one-click unsubscribe link (RFC 8058), when the web UI is reached over HTTPS.
    one_click: Option<&'a str>,
}

/// The web address one-click unsubscribe links are made on: RFC 8058 asks for an HTTPS URI,
/// so an instance reached over plain HTTP (or not at all) offers only the mailto.
fn one_click_base(config: &ProcessorConfig) -> Option<&str> {
    config
        .web_url
        .as_deref()
        .filter(|url| url.starts_with("https://"))
}

/// The one-click unsubscribe link (RFC 8058) of sent notification `sent_id`, with a fresh
/// token stored hashed; `None` when the web UI is not reached over HTTPS.
async fn one_click_link(
    tx: &mut Tx,
    config: &ProcessorConfig,
    sent_id: i64,
) -> Result<Option<String>, ProcessError> {
    Ok(match one_click_base(config) {
        Some(base) => {
            let token = tx.create_unsubscribe_token(sent_id).await?;
            Some(format!("{base}/-/unsubscribe/{token}"))
        }
        None => None,
    })
}

/// Adds `List-Unsubscribe` with the `mailto:` of the key's `-unsubscribe` address and, when
/// there is a `one_click` link, RFC 8058's form: the HTTPS link first, the mailto beside it,
/// and the header that tells the mailbox provider a POST to the link unsubscribes without
/// more questions.
fn list_unsubscribe<'x>(
    builder: MessageBuilder<'x>,
    mailto: &str,
    one_click: Option<&str>,
) -> MessageBuilder<'x> {
    match one_click {
        Some(link) => builder
            .header(
                "List-Unsubscribe",
                Raw::new(format!("<{link}>, <mailto:{mailto}>")),
            )
            .header(
                "List-Unsubscribe-Post",
                Raw::new("List-Unsubscribe=One-Click"),
            ),
        None => builder.header("List-Unsubscribe", Raw::new(format!("<mailto:{mailto}>"))),
    }
}

impl Mail<'_> {
    fn compose(&self) -> Result<Vec<u8>, ProcessError> {
        let host = &self.config.host;
        let root_id = format!("{}@{host}", self.thread.root);
        let (message_id, text) = match self.change {
            Change::Commented { note, .. } => {
                (format!("note_{}@{host}", note.id), note.body.clone())
            }
            _ => (root_id.clone(), self.thread.body.clone()),
        };
        let subject = format!(
            "{} | {} ({})",
            subject_text(&self.project.name),
            subject_text(&self.thread.title),
            self.thread.reference
        );
        let reply_address = self.reply_template.address_for_key(self.key);
        let unsubscribe = self.reply_template.unsubscribe_address(self.key);
        let footer =
            format!("Reply to this email directly, or unsubscribe by writing to {unsubscribe}.");
        // The link lives below the signature delimiter with the rest of the footer, so a reply
        // that quotes the notification loses it with the footer when trimmed.
        let page = self.config.web_url.as_ref().map(|web_url| {
            format!(
                "{web_url}/projects/{}/{}",
                self.project.id, self.thread.page
            )
        });
        let (text_link, html_link) = match &page {
            Some(page) => (
                format!("\nView it on {}: {page}", self.config.instance_name),
                format!(
                    "<br>\n<a href=\"{}\">View it on {}</a>",
                    escape_html(page),
                    escape_html(&self.config.instance_name)
                ),
            ),
            None => (String::new(), String::new()),
        };
        let mut builder = automatic(MessageBuilder::new(), "auto-generated", host)
            .from((
                self.actor.name.as_str(),
                self.config.sender_address.as_str(),
            ))
            .to(self.to)
            .reply_to((self.project.name.as_str(), reply_address.as_str()))
            .subject(subject)
            .message_id(message_id.clone())
            .header(REPLY_KEY_HEADER, Raw::new(self.key.to_owned()))
            .text_body(format!("{text}\n\n-- \n{footer}{text_link}\n"))
            // The Markdown rendered, as GitLab's notification mail renders it; the text part
            // keeps the source.
            .html_body(format!(
                "<div>{}</div>\n<p style=\"color:#666\">{}{html_link}</p>\n",
                crate::mail_html::render(&text, self.config.web_url.as_deref()),
                escape_html(&footer)
            ));
        builder = list_unsubscribe(builder, &unsubscribe, self.one_click);
        // `<reply-KEY@host>` first, then the thread root: GitLab's order (`Notify#mail_thread`).
        let fallback = postern_mail::key::fallback_message_id(self.key, host);
        builder = if message_id == root_id {
            builder.references(vec![fallback])
        } else {
            builder
                .in_reply_to(root_id.clone())
                .references(vec![fallback, root_id])
        };
        builder
            .write_to_vec()
            .map_err(|e| ProcessError::Internal(format!("cannot compose notification: {e}")))
    }
}

/// The mail a thank-you answers, as far as [`thank_you`] needs it.
#[derive(Debug, Clone, Copy)]
pub struct Answering<'a> {
    /// Its Message-ID, which the thank-you's `In-Reply-To` names.
    pub message_id: Option<&'a str>,
    /// Where it asked answers to go; the ticket's outside author when `None`.
    pub answer_to: Option<&'a str>,
    /// The caller's word on it: whether automatic mail may answer its sender.
    pub may_auto_reply: bool,
}

/// Queues the Service Desk thank-you mail for a new ticket to where the mail that opened it
/// asked answers to go ([`Answering`]), from the Service Desk address, with a reply key whose
/// recipient is the Support Bot — if [`crate::auto_mail`] allows an automatic mail to them now. Its subject is GitLab's, `Re: <title> (#<iid>)`, with
/// the title, which the sender chose, cut and cleaned by [`subject_text`]. Returns whether it was
/// queued.
pub async fn thank_you(
    tx: &mut Tx,
    config: &ProcessorConfig,
    project: &Project,
    ticket: &Issue,
    bot: &User,
    answering: Answering<'_>,
) -> Result<bool, ProcessError> {
    let Answering {
        message_id: original_message_id,
        answer_to,
        may_auto_reply,
    } = answering;
    let (Some(to), Some(template)) = (
        answer_to.or(ticket.external_author.as_deref()),
        config.incoming_address.as_ref(),
    ) else {
        return Ok(false);
    };
    if ticket.issue_type != IssueType::Ticket {
        return Ok(false);
    }
    let Some(permit) =
        crate::auto_mail::may_send(tx, config, "service_desk_thank_you", to, may_auto_reply)
            .await?
    else {
        return Ok(false);
    };
    let desk = outside::DeskMail {
        project,
        ticket,
        bot,
        to,
        discussion: None,
        auto_submitted: "auto-replied",
    };
    let (envelope, key) = desk.envelope(tx, config, template).await?;
    let host = &config.host;
    let text = THANK_YOU.replace("{iid}", &ticket.iid.to_string());
    let mut builder = envelope
        .message_id(format!("issue_{}_service_desk@{host}", ticket.id))
        .text_body(format!("{text}\n"))
        .html_body(format!("<p>{}</p>\n", escape_html(&text)));
    let fallback = postern_mail::key::fallback_message_id(&key, host);
    builder = match original_message_id.and_then(postern_mail::header_message_id) {
        Some(original) => builder
            .in_reply_to(original.to_owned())
            .references(vec![fallback, original.to_owned()]),
        None => builder.references(vec![fallback]),
    };
    let raw = builder
        .write_to_vec()
        .map_err(|e| ProcessError::Internal(format!("cannot compose thank-you mail: {e}")))?;
    permit
        .queue(
            tx,
            &NewOutboxMail {
                kind: "service_desk_thank_you".to_owned(),
                recipients: vec![to.to_owned()],
                raw,
                inbound_id: None,
                dedupe_key: Some(format!("thank_you:{}", ticket.id)),
                not_before: None,
            },
        )
        .await
}

/// Longest text from outside (a title, a subject) postern puts into a subject line, in
/// characters: GitLab's subjects carry the whole title, which a sender chooses; 100 characters
/// keep every real title whole and stop a subject from being an advertisement.
pub const MAX_SUBJECT_TEXT_CHARS: usize = 100;

/// `text` fit for a subject line postern sends: control characters (line breaks included),
/// bidirectional overrides and isolates (which can make a subject read differently from what it
/// is) and other invisible format characters removed, runs of white space made one space, and
/// cut to [`MAX_SUBJECT_TEXT_CHARS`] characters with `…`.
pub fn subject_text(text: &str) -> String {
    let visible: String = text
        .chars()
        .filter(|c| !is_invisible_format(*c))
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    let words = visible.split_whitespace().collect::<Vec<_>>().join(" ");
    if words.chars().count() <= MAX_SUBJECT_TEXT_CHARS {
        return words;
    }
    let cut: String = words.chars().take(MAX_SUBJECT_TEXT_CHARS - 1).collect();
    format!("{}…", cut.trim_end())
}

/// Bidirectional marks, embeddings, overrides and isolates, zero-width characters, and the
/// other invisible format characters a subject has no use for.
fn is_invisible_format(c: char) -> bool {
    postern_vocab::bidi::is_bidi_control(c)
        || matches!(
            c,
            '\u{00AD}'
                | '\u{180E}'
                | '\u{200B}'..='\u{200D}'
                | '\u{2060}'..='\u{2065}'
                | '\u{FEFF}'
                | '\u{FFF9}'..='\u{FFFB}'
        )
}

/// The Service Desk's own address: the verified custom email, else the project's Service Desk
/// address on the incoming template, else postern's sender.
fn service_desk_sender(config: &ProcessorConfig, project: &Project) -> String {
    let settings = &project.service_desk;
    if settings.custom_email_enabled
        && let Some(custom) = &settings.custom_email
    {
        return custom.clone();
    }
    match &config.incoming_address {
        Some(template) if template.supports_wildcard() => {
            template.address_for_key(&format!("{}-{}-issue-", project.full_path_slug, project.id))
        }
        _ => config.sender_address.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subject_text_keeps_ordinary_titles_whole() {
        assert_eq!(subject_text("Printer on fire"), "Printer on fire");
        assert_eq!(subject_text("Ünïcödé 日本語 title"), "Ünïcödé 日本語 title");
    }

    #[test]
    fn subject_text_drops_controls_and_bidi_and_folds_space() {
        assert_eq!(
            subject_text("a\r\nBcc: x@y\u{202E}gnp.exe\u{202C}\u{200B} \t b"),
            "a Bcc: x@ygnp.exe b"
        );
        assert_eq!(subject_text("\u{2066}\u{2069}"), "");
    }

    #[test]
    fn subject_text_is_cut_with_an_ellipsis() {
        let cut = subject_text(&"x".repeat(1000));
        assert_eq!(cut.chars().count(), MAX_SUBJECT_TEXT_CHARS);
        assert!(cut.ends_with('…'));
        let exact = "y".repeat(MAX_SUBJECT_TEXT_CHARS);
        assert_eq!(subject_text(&exact), exact);
    }
}
