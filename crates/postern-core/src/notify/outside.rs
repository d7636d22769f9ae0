//! Mail to a Service Desk ticket's outside participants (the customer and the people copied
//! in), who have no account: a member's public answer ([`to_external_participants`]) and the
//! notice that a person closed the ticket ([`ticket_closed`]). Both are composed and queued by
//! [`queue_to_outside`]: from the Service Desk address, with a reply key whose recipient is the
//! Support Bot (an answer comes back as a Support Bot note with its sender as the external
//! author), threaded on the ticket, to the addresses [`outside_recipients`] chooses. Each
//! notification records the address it went to, and each mail carries the unsubscribe headers
//! members' notifications carry: unsubscribing takes that address off the ticket
//! ([`crate::unsubscribe`]), since unsubscribing the Support Bot would change nothing.

use mail_builder::MessageBuilder;
use mail_builder::headers::raw::Raw;
use postern_store::{
    Issue, IssueState, NewOutboxMail, NewSentNotification, Note, Noteable, Project, Tx, User,
};

use super::recipients::outside_recipients;
use super::{
    REPLY_KEY_HEADER, automatic, list_unsubscribe, one_click_link, service_desk_sender,
    subject_text,
};
use crate::config::ProcessorConfig;
use crate::content::escape_html;
use crate::error::ProcessError;

/// Queues a member's comment on a Service Desk ticket to the ticket's outside participants, from
/// the Service Desk address, each with a reply key whose recipient is the Support Bot (their
/// answer comes back as a Support Bot note with them as the external author).
pub async fn to_external_participants(
    tx: &mut Tx,
    config: &ProcessorConfig,
    project: &Project,
    ticket: &Issue,
    note: &Note,
    author: &User,
) -> Result<usize, ProcessError> {
    let participants = outside_recipients(ticket, note.internal, author);
    if participants.is_empty() {
        return Ok(0);
    }
    let mail = OutsideMail {
        note,
        kind: "service_desk_note",
        discussion: Some(note.discussion_id.clone()),
        text: format!("{}\n", note.body),
        html: format!(
            "<div>{}</div>\n",
            crate::mail_html::render(&note.body, config.web_url.as_deref())
        ),
    };
    queue_to_outside(tx, config, project, ticket, participants, mail).await
}

/// Tells the outside participants of `ticket` (as it is once closed) that `actor` closed it;
/// `closed` is the "closed" system note. Help desks send this notice (GitLab does not; its
/// issues 425933 and 6490 ask for it); a reply to it comes back as any answer to ticket mail
/// does, and reopens the ticket when the project's Service Desk says so.
///
/// Only a ticket a member has answered is told (a public note by anyone but the Support Bot:
/// the outside participants' own mail is the Support Bot's, and a ticket is confidential, so
/// nobody else can write one). Closing unanswered tickets is how spam and duplicates are
/// cleared, and their addresses were never verified: a notice would be backscatter, mail to
/// whoever a spammer named as sender or copied in. Once a member answered, the participants
/// already get mail about the ticket, and the notice tells them no more answers are coming.
/// Nothing either when the Support Bot closes it, nor for an issue (no outside participants).
pub(crate) async fn ticket_closed(
    tx: &mut Tx,
    config: &ProcessorConfig,
    project: &Project,
    ticket: &Issue,
    closed: &Note,
    actor: &User,
) -> Result<usize, ProcessError> {
    let participants = outside_recipients(ticket, false, actor);
    if participants.is_empty() || ticket.state != IssueState::Closed {
        return Ok(0);
    }
    let bot = tx.support_bot().await?.map(|bot| bot.id);
    if !tx
        .has_public_comment(Noteable::Issue(ticket.id), bot)
        .await?
    {
        return Ok(0);
    }
    let notice = format!(
        "Your request #{} “{}” was closed by {}.",
        ticket.iid,
        subject_text(&ticket.title),
        subject_text(&actor.name)
    );
    // No link to the ticket: it is confidential, and they have no account to read it with.
    let next = if project
        .service_desk
        .reopen_issue_on_external_participant_note
    {
        "If it is not solved, reply to this mail and it will be reopened."
    } else {
        "You can still reply to this mail to add a comment."
    };
    let mail = OutsideMail {
        note: closed,
        kind: "service_desk_closed",
        // An answer starts a discussion of its own rather than one under a system note.
        discussion: None,
        text: format!("{notice}\n\n{next}\n"),
        html: format!(
            "<p>{}</p>\n<p>{}</p>\n",
            escape_html(&notice),
            escape_html(next)
        ),
    };
    queue_to_outside(tx, config, project, ticket, participants, mail).await
}

/// What one mail to a ticket's outside participants says, and what it is about.
struct OutsideMail<'a> {
    /// The note it tells of (an answer, a "closed" system note): it names the mail
    /// (Message-ID, dedupe key).
    note: &'a Note,
    /// The outbox kind, which also begins the dedupe key.
    kind: &'static str,
    /// The discussion an answer by mail joins; `None` starts a new one.
    discussion: Option<String>,
    /// The text part.
    text: String,
    /// The HTML part, escaped or sanitised by the caller.
    html: String,
}

/// Queues `mail` to each of `participants` (none without an incoming address to answer to).
/// Returns how many were queued.
async fn queue_to_outside(
    tx: &mut Tx,
    config: &ProcessorConfig,
    project: &Project,
    ticket: &Issue,
    participants: &[String],
    mail: OutsideMail<'_>,
) -> Result<usize, ProcessError> {
    let Some(template) = config.incoming_address.as_ref() else {
        return Ok(0);
    };
    let bot = tx.ensure_support_bot().await?;
    let host = &config.host;
    let root_id = format!("issue_{}@{host}", ticket.id);
    let mut queued = 0;
    for to in participants {
        let desk = DeskMail {
            project,
            ticket,
            bot: &bot,
            to,
            discussion: mail.discussion.clone(),
            auto_submitted: "auto-generated",
        };
        let (builder, key) = desk.envelope(tx, config, template).await?;
        let builder = builder
            .message_id(format!("note_{}_{}@{host}", mail.note.id, queued))
            .in_reply_to(root_id.clone())
            .references(vec![
                postern_mail::key::fallback_message_id(&key, host),
                root_id.clone(),
            ])
            .text_body(mail.text.clone())
            .html_body(mail.html.clone());
        let raw = builder
            .write_to_vec()
            .map_err(|e| ProcessError::Internal(format!("cannot compose ticket mail: {e}")))?;
        tx.enqueue_outbox(&NewOutboxMail {
            kind: mail.kind.to_owned(),
            recipients: vec![to.clone()],
            raw,
            inbound_id: None,
            dedupe_key: Some(format!("{}:{}:{to}", mail.kind, mail.note.id)),
            not_before: None,
        })
        .await?;
        queued += 1;
    }
    Ok(queued)
}

/// One mail from the Service Desk to one outside address, as far as every such mail is the
/// same (answers, the closed notice, the thank-you).
pub(super) struct DeskMail<'a> {
    pub(super) project: &'a Project,
    pub(super) ticket: &'a Issue,
    pub(super) bot: &'a User,
    /// The outside address.
    pub(super) to: &'a str,
    /// The discussion an answer by mail joins; `None` starts a new one.
    pub(super) discussion: Option<String>,
    /// `Auto-Submitted`: `auto-replied` for the thank-you, `auto-generated` otherwise.
    pub(super) auto_submitted: &'static str,
}

impl DeskMail<'_> {
    /// Records the sent notification (the Support Bot its recipient, `to` the participant it
    /// went to, so unsubscribing takes `to` off the ticket) and starts the mail: from the
    /// Service Desk address to `to`, the ticket's subject, its reply key as `Reply-To` and in
    /// postern's header, and `List-Unsubscribe`. Returns the mail and the reply key.
    pub(super) async fn envelope(
        self,
        tx: &mut Tx,
        config: &ProcessorConfig,
        template: &postern_mail::AddressTemplate,
    ) -> Result<(MessageBuilder<'static>, String), ProcessError> {
        let sent = tx
            .create_sent_notification(NewSentNotification {
                partition: 0,
                namespace_id: self.project.id,
                recipient_id: self.bot.id,
                noteable: Noteable::Issue(self.ticket.id),
                in_reply_to_discussion_id: self.discussion,
                reply_key: None,
                participant_email: Some(self.to.to_owned()),
            })
            .await?;
        let key = sent.address_key();
        let one_click = one_click_link(tx, config, sent.id).await?;
        let name = self.project.name.clone();
        let builder = automatic(MessageBuilder::new(), self.auto_submitted, &config.host)
            .from((name.clone(), service_desk_sender(config, self.project)))
            .to(self.to.to_owned())
            .reply_to((name, template.address_for_key(&key)))
            .subject(format!(
                "Re: {} (#{})",
                subject_text(&self.ticket.title),
                self.ticket.iid
            ))
            .header(REPLY_KEY_HEADER, Raw::new(key.clone()));
        let builder = list_unsubscribe(
            builder,
            &template.unsubscribe_address(&key),
            one_click.as_deref(),
        );
        Ok((builder, key))
    }
}
