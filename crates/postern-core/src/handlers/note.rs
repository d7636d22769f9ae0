//! Comments by mail: replies to notifications, mail to an issue's own address, and
//! unsubscribing (GitLab's `CreateNoteHandler`, `CreateNoteOnIssuableHandler` and
//! `UnsubscribeHandler`).

use postern_mail::{ProjectRef, ReplyKey};
use postern_store::{Issue, Noteable, Project, SentNotification, Timestamp, Tx, User};

use super::{
    CommentRequest, Context, Handled, after_comment, check_token_sender, create_comment,
    created_note, project_and_author, reopen_on_external_note, role_of,
};
use crate::content::{self, Variant};
use crate::error::{ErrorKind, ProcessError};
use crate::permissions::{Ability, Actor, Readable, check_reply_key_recipient, validate};
use crate::sender;
use crate::unsubscribe::{Asker, Unsubscribed};

/// The stored form of a reply key, as the notification's lookup takes it.
pub(super) fn key_text(reply_key: &ReplyKey) -> String {
    match reply_key {
        ReplyKey::Legacy { key } => key.clone(),
        ReplyKey::Partitioned {
            partition,
            key,
            namespace_id,
        } => {
            let mut text = format!("{}-{key}", postern_store::base36(u128::from(*partition)));
            if let Some(namespace) = namespace_id {
                text.push('-');
                text.push_str(&postern_store::base36(*namespace));
            }
            text
        }
    }
}

/// The notification a reply key belongs to. A key older than `reply_key_max_age_days` is
/// answered as an unknown one: the refusal does not tell an old key from a guessed one.
async fn sent_notification(
    context: &mut Context<'_, '_>,
    reply_key: &ReplyKey,
) -> Result<SentNotification, ProcessError> {
    let notification = context
        .tx
        .sent_notification_by_key(&key_text(reply_key))
        .await?
        .ok_or(ErrorKind::SentNotificationNotFound)?;
    if is_expired(
        notification.created_at,
        Timestamp::now(),
        context.config.reply_key_max_age_days,
    ) {
        return Err(ErrorKind::SentNotificationNotFound.into());
    }
    Ok(notification)
}

/// Whether a key sent at `sent` is older than `max_age_days` at `now` (never without a limit).
pub(crate) fn is_expired(sent: Timestamp, now: Timestamp, max_age_days: Option<u32>) -> bool {
    max_age_days
        .is_some_and(|days| sent < now.plus_seconds(-i64::from(days).saturating_mul(86_400)))
}

/// Whether the mail comes from the notification's recipient: `From` (never `Reply-To`) is one
/// of the recipient's verified addresses, or, for the Support Bot's keys (sent to a ticket's
/// outside participants), one of the ticket's participants. A key found only in `References`
/// — one a forwarded or quoted notification carries too — also needs the sender
/// authentication policy to pass.
async fn sender_is_recipient(
    context: &mut Context<'_, '_>,
    recipient: &User,
    issue: Option<&Issue>,
) -> Result<bool, ProcessError> {
    let email = context.email;
    if untrusted_key_in_references(context) {
        return Ok(false);
    }
    if !recipient.is_support_bot() {
        return Ok(sender::is_from(email, recipient));
    }
    // The key itself is how an outside participant answers (they have no account); only a
    // key out of `References` must come from one of the ticket's participants.
    if !context.key_only_in_references {
        return Ok(true);
    }
    Ok(issue.is_some_and(|issue| sender::is_participant(email, &issue.email_participants)))
}

/// Whether the key was found only in `References` (which a forwarded or quoted notification
/// carries too) while the sender authentication policy fails: `From` cannot be believed then.
fn untrusted_key_in_references(context: &Context<'_, '_>) -> bool {
    context.key_only_in_references && !context.trust.policy_passes()
}

/// The issue a noteable is, when it is one (merge requests have no issue-only rules).
async fn issue_of(tx: &mut Tx, noteable: Noteable) -> Result<Option<Issue>, ProcessError> {
    Ok(match noteable {
        Noteable::Issue(id) => tx.issue_by_id(id).await?,
        Noteable::MergeRequest(_) => None,
    })
}

async fn noteable_exists(tx: &mut Tx, noteable: Noteable) -> Result<bool, ProcessError> {
    Ok(match noteable {
        Noteable::Issue(id) => tx.issue_by_id(id).await?.is_some(),
        Noteable::MergeRequest(id) => tx.merge_request_by_id(id).await?.is_some(),
    })
}

async fn project_of(tx: &mut Tx, id: i64) -> Result<Project, ProcessError> {
    // A notification always belongs to a project in postern (no group-level items).
    tx.project_by_id(id)
        .await?
        .ok_or_else(|| ErrorKind::ProjectNotFound.into())
}

/// A reply to a notification becomes a comment in the same discussion, by the notification's
/// recipient — if the mail really comes from one of the recipient's verified addresses.
pub async fn create_note(
    context: &mut Context<'_, '_>,
    reply_key: &ReplyKey,
) -> Result<Handled, ProcessError> {
    let config = context.config;
    let notification = sent_notification(context, reply_key).await?;
    let tx = &mut *context.tx;
    let author = tx
        .user_by_id(notification.recipient_id)
        .await?
        .ok_or(ErrorKind::UserNotFound)?;
    let project = project_of(tx, notification.project_id).await?;
    let issue = issue_of(tx, notification.noteable).await?;
    let role = role_of(tx, &project, &author).await?;
    if !author.is_support_bot() {
        // Access as it is now, not as it was when the key was sent. (A deleted issue is
        // checked as its project; `noteable_not_found` follows.)
        let item = issue
            .as_ref()
            .map_or(Readable::MergeRequest, Readable::Issue);
        check_reply_key_recipient(tx, &author, &project, item).await?;
    }
    let actor = Actor {
        user: &author,
        role,
    };
    validate(&actor, &project, Ability::CreateNote, issue.as_ref())?;
    if !sender_is_recipient(context, &author, issue.as_ref()).await? {
        return Err(ErrorKind::UserNotFound.into());
    }
    let tx = &mut *context.tx;
    let exists = match notification.noteable {
        Noteable::Issue(_) => issue.is_some(),
        Noteable::MergeRequest(id) => tx.merge_request_by_id(id).await?.is_some(),
    };
    if !exists {
        return Err(ErrorKind::NoteableNotFound.into());
    }
    let variant = match notification.noteable {
        Noteable::Issue(_) => Variant::TrimmedWithAppendedReply,
        Noteable::MergeRequest(_) => Variant::Trimmed,
    };
    let (body, elided) = context.texts.body(variant);
    let links =
        content::upload_attachments(tx, context.uploads, project.id, author.id, false).await?;
    let text = content::compose(
        &body,
        elided.as_deref(),
        &links,
        author.is_support_bot(),
        variant,
    );
    if text.trim().is_empty() {
        return Err(ErrorKind::EmptyEmail.into());
    }
    let external_author = author
        .is_support_bot()
        .then(|| sender::identity(context.email))
        .flatten();
    let note = create_comment(
        tx,
        CommentRequest {
            project: &project,
            author: &author,
            role,
            noteable: notification.noteable,
            issue: issue.as_ref(),
            text,
            discussion_id: notification.in_reply_to_discussion_id.clone(),
            external_author,
            internal: false,
            config: context.config,
        },
    )
    .await?;
    if let Some(issue) = &issue {
        reopen_on_external_note(tx, &project, issue, &author).await?;
    }
    if let Some(note) = &note {
        after_comment(tx, config, &project, &author, note, issue.as_ref()).await?;
    }
    Ok(Handled {
        created: note.map(|note| created_note(&project, &note)),
    })
}

/// Mail to `<project>-<id>-<token>-issue-<iid>`: a comment on that issue with the whole text.
pub async fn create_note_on_issuable(
    context: &mut Context<'_, '_>,
    project: &ProjectRef,
    token: &str,
    issue_iid: &str,
) -> Result<Handled, ProcessError> {
    let config = context.config;
    let tx = &mut *context.tx;
    let (project, author, role) = project_and_author(tx, project, token).await?;
    let issue = match issue_iid.parse::<i64>() {
        Ok(iid) => tx.issue_by_iid(project.id, iid).await?,
        Err(_) => None,
    };
    let actor = Actor {
        user: &author,
        role,
    };
    validate(&actor, &project, Ability::CreateNote, issue.as_ref())?;
    check_token_sender(context.email, &author)?;
    let issue = issue.ok_or(ErrorKind::NoteableNotFound)?;
    let (body, _) = context.texts.body(Variant::Untrimmed);
    let links =
        content::upload_attachments(tx, context.uploads, project.id, author.id, false).await?;
    let text = content::compose(&body, None, &links, false, Variant::Untrimmed);
    if text.trim().is_empty() {
        return Err(ErrorKind::EmptyEmail.into());
    }
    let note = create_comment(
        tx,
        CommentRequest {
            project: &project,
            author: &author,
            role,
            noteable: Noteable::Issue(issue.id),
            issue: Some(&issue),
            text,
            discussion_id: None,
            external_author: None,
            internal: false,
            config: context.config,
        },
    )
    .await?;
    if let Some(note) = &note {
        after_comment(tx, config, &project, &author, note, Some(&issue)).await?;
    }
    Ok(Handled {
        created: note.map(|note| created_note(&project, &note)),
    })
}

/// Mail to a notification's `-unsubscribe` address: the recipient stops getting that thread.
/// GitLab takes the key alone as the authorisation; postern also asks that the mail come from
/// the recipient (`From`), as for a reply, so a forwarded notification unsubscribes no one.
/// For Service Desk mail (the Support Bot's keys) the recipient is the outside participant it
/// went to, who leaves the ticket ([`crate::unsubscribe`]); the Support Bot's own subscription
/// is never touched.
pub async fn unsubscribe(
    context: &mut Context<'_, '_>,
    reply_key: &ReplyKey,
) -> Result<Handled, ProcessError> {
    let notification = sent_notification(context, reply_key).await?;
    let recipient = context
        .tx
        .user_by_id(notification.recipient_id)
        .await?
        .ok_or(ErrorKind::UserNotFound)?;
    let issue = issue_of(context.tx, notification.noteable).await?;
    if recipient.is_support_bot() {
        return unsubscribe_outside(context, &notification, issue.as_ref()).await;
    }
    if !sender_is_recipient(context, &recipient, issue.as_ref()).await? {
        return Err(ErrorKind::UserNotFound.into());
    }
    let tx = &mut *context.tx;
    if !noteable_exists(tx, notification.noteable).await? {
        return Err(ErrorKind::NoteableNotFound.into());
    }
    tx.set_subscription(notification.recipient_id, notification.noteable, false)
        .await?;
    Ok(Handled::default())
}

/// The outside participant a Service Desk notification went to leaves its ticket, if the mail
/// comes from them (`From`, with the same distrust of a key out of `References` as a reply).
async fn unsubscribe_outside(
    context: &mut Context<'_, '_>,
    notification: &SentNotification,
    ticket: Option<&Issue>,
) -> Result<Handled, ProcessError> {
    if untrusted_key_in_references(context) {
        return Err(ErrorKind::UserNotFound.into());
    }
    let ticket = ticket.ok_or(ErrorKind::NoteableNotFound)?;
    let from = sender::identity(context.email);
    let asker = Asker::Mail(from.as_deref());
    match crate::unsubscribe::outside_participant(context.tx, notification, ticket, asker).await? {
        Unsubscribed::NotTheParticipant => Err(ErrorKind::UserNotFound.into()),
        Unsubscribed::Removed(_) | Unsubscribed::Nothing => Ok(Handled::default()),
    }
}

#[cfg(test)]
mod tests {
    use postern_store::Timestamp;

    use super::is_expired;

    #[test]
    fn keys_expire_only_past_their_lifetime() {
        let day = 86_400;
        let now = Timestamp(100 * day);
        assert!(!is_expired(Timestamp(0), now, None), "no limit: never");
        assert!(!is_expired(Timestamp(70 * day), now, Some(30)));
        assert!(!is_expired(Timestamp(70 * day), now, Some(30 + 1)));
        assert!(is_expired(Timestamp(70 * day - 1), now, Some(30)));
        assert!(is_expired(Timestamp(0), now, Some(90)));
        assert!(
            !is_expired(Timestamp(0), now, Some(u32::MAX)),
            "no overflow"
        );
    }
}
