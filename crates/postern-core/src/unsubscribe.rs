//! An outside participant of a Service Desk ticket unsubscribing: they are removed from the
//! ticket's email participants, so no more answers or notices go to them (GitLab's
//! `SentNotificationsController#unsubscribe_issue_email_participant` and
//! `IssueEmailParticipants::DestroyService`).
//!
//! Mail to outside participants has the Support Bot as its recipient (they have no account), so
//! unsubscribing that recipient would change nothing: what they leave is the ticket's
//! participant list. Both ways to unsubscribe, mail to the key's `-unsubscribe` address
//! (`handlers::note::unsubscribe`) and the one-click link ([`crate::actions::unsubscribe_by_link`]),
//! come here.

use postern_store::{Issue, SentNotification, Tx};

use crate::error::ProcessError;

/// How the unsubscribe reached postern.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Asker<'a> {
    /// The one-click link: its token proves the mail was received, so nothing else is asked.
    Link,
    /// A mail to the key's `-unsubscribe` address, from this sender (`From`; see
    /// [`crate::sender::identity`]).
    Mail(Option<&'a str>),
}

/// What an unsubscribe did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Unsubscribed {
    /// This address left the ticket's participants.
    Removed(String),
    /// Nothing to do: the address had already left (or never was one).
    Nothing,
    /// A mail from someone other than the address the notification went to (a forwarded
    /// notification): nobody is removed.
    NotTheParticipant,
}

/// Removes the outside participant `sent` (a notification whose recipient is the Support Bot)
/// went to from `ticket`, and writes GitLab's system note "removed ADDRESS" as the Support
/// Bot. The address is the one the notification recorded; a mail must come from it. For a
/// notification sent before the address was recorded, a mail's sender is removed if they are
/// one of the ticket's participants (a link has no such notification: it came with the
/// address). Addresses compare case-insensitively. Unsubscribing twice is not an error: the
/// second time there is nothing to remove, and no note is written.
pub(crate) async fn outside_participant(
    tx: &mut Tx,
    sent: &SentNotification,
    ticket: &Issue,
    asker: Asker<'_>,
) -> Result<Unsubscribed, ProcessError> {
    let address = match (sent.participant_email.as_deref(), asker) {
        (Some(participant), Asker::Link) => participant,
        (Some(participant), Asker::Mail(Some(from))) if same_address(participant, from) => {
            participant
        }
        (Some(_), Asker::Mail(_)) => return Ok(Unsubscribed::NotTheParticipant),
        (None, Asker::Mail(Some(from))) => from,
        (None, _) => return Ok(Unsubscribed::Nothing),
    };
    // The note names the address as the ticket spelled it.
    let Some(stored) = ticket
        .email_participants
        .iter()
        .find(|participant| same_address(participant, address))
        .cloned()
    else {
        return Ok(Unsubscribed::Nothing);
    };
    // The delete decides, not the list read before it: of two unsubscribes at once, one
    // removes the row and writes the note, the other finds nothing.
    if !tx.remove_issue_participant(ticket.id, &stored).await? {
        return Ok(Unsubscribed::Nothing);
    }
    let bot = tx.ensure_support_bot().await?;
    crate::system_notes::record(tx, &bot, ticket, format!("removed {stored}")).await?;
    Ok(Unsubscribed::Removed(stored))
}

/// Whether two addresses are the same participant: the store folds them to lower case.
fn same_address(a: &str, b: &str) -> bool {
    a.to_lowercase() == b.to_lowercase()
}
