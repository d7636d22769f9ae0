//! Automatic mail: the one gate every mail postern sends on its own accord passes — reject
//! notices, the Service Desk thank-you, custom-email verification results.
//!
//! Such mail answers whatever address a message names, and that address can be forged: answered
//! freely, postern would mail strangers on an attacker's behalf (backscatter), from the
//! project's own address. So [`may_send`] decides, for one recipient, now:
//!
//! 1. not when the caller says the message may not be answered (`may_auto_reply`: its sender
//!    failed authentication, or it came from the null sender);
//! 2. never to a mailer daemon, a postmaster or one of postern's own addresses (a loop);
//! 3. at most [`AutoMailLimits::per_recipient`] to one address per hour, across every kind;
//! 4. at most [`AutoMailLimits::per_hour`] in all per hour, across every address.
//!
//! The budgets live in the store (`send_counters`) and are taken in the caller's transaction,
//! so a message that rolls back gives its units back, and two workers never both take the last
//! one. Mail a person causes on purpose (notifications of a change, a member's answer to a
//! ticket, the verification mail a maintainer asks for) does not pass here.

use postern_store::{EnqueueOutcome, NewOutboxMail, Timestamp, Tx, bounded_identifier};

use crate::config::ProcessorConfig;
use crate::error::ProcessError;

/// The length of the window both budgets count in: one hour.
pub const AUTO_MAIL_WINDOW_SECONDS: i64 = 3600;

/// The budget of every recipient together.
const INSTANCE_BUCKET: &str = "auto-mail:instance";

/// How much automatic mail may go out (`instance.auto_mail_per_recipient`,
/// `instance.auto_mail_per_hour`); 0 sends none.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AutoMailLimits {
    /// To one address per hour, every kind counted together.
    pub per_recipient: u32,
    /// In all per hour.
    pub per_hour: u32,
}

impl Default for AutoMailLimits {
    /// 5 to one address and 500 in all per hour: a person who writes a few times an hour hears
    /// back each time, and a flood of forged senders costs at most 500 mails an hour.
    fn default() -> Self {
        AutoMailLimits {
            per_recipient: 5,
            per_hour: 500,
        }
    }
}

/// Why an automatic mail is not sent (logged, never told to anyone).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Withheld {
    /// The caller said the message may not be answered.
    NotAnswerable,
    /// The recipient is a machine or postern itself.
    NotAPerson,
    /// The recipient had their share this hour.
    RecipientLimit,
    /// The instance had its share this hour.
    InstanceLimit,
}

impl Withheld {
    /// The snake_case name used in logs.
    pub fn as_str(self) -> &'static str {
        match self {
            Withheld::NotAnswerable => "not_answerable",
            Withheld::NotAPerson => "not_a_person",
            Withheld::RecipientLimit => "recipient_limit",
            Withheld::InstanceLimit => "instance_limit",
        }
    }
}

/// Leave to queue one automatic mail to one recipient: a unit of both budgets, taken.
#[derive(Debug)]
#[must_use = "a permit holds a unit of the budgets until its mail is queued"]
pub struct Permit {
    recipient: String,
    window_start: i64,
}

impl Permit {
    /// Queues `mail` (to the permit's recipient). When its dedupe key shows it was queued
    /// before, the units are given back. Returns whether it was queued now.
    pub async fn queue(self, tx: &mut Tx, mail: &NewOutboxMail) -> Result<bool, ProcessError> {
        debug_assert!(
            mail.recipients
                .iter()
                .all(|to| to.eq_ignore_ascii_case(&self.recipient)),
            "a permit is for one recipient"
        );
        match tx.enqueue_outbox(mail).await? {
            EnqueueOutcome::Queued(_) => Ok(true),
            EnqueueOutcome::Duplicate(_) => {
                tx.give_back_send_unit(&recipient_bucket(&self.recipient), self.window_start)
                    .await?;
                tx.give_back_send_unit(INSTANCE_BUCKET, self.window_start)
                    .await?;
                Ok(false)
            }
        }
    }
}

/// Decides whether an automatic mail of `kind` may go to `recipient` now, and if so takes its
/// units of the budgets (see the module's rules). `may_auto_reply` is the caller's word on the
/// message that causes it; `true` where there is no such message to judge.
pub async fn may_send(
    tx: &mut Tx,
    config: &ProcessorConfig,
    kind: &str,
    recipient: &str,
    may_auto_reply: bool,
) -> Result<Option<Permit>, ProcessError> {
    match take(tx, config, recipient, may_auto_reply).await? {
        Ok(permit) => Ok(Some(permit)),
        Err(withheld) => {
            tracing::info!(kind, reason = withheld.as_str(), "automatic mail withheld");
            Ok(None)
        }
    }
}

async fn take(
    tx: &mut Tx,
    config: &ProcessorConfig,
    recipient: &str,
    may_auto_reply: bool,
) -> Result<Result<Permit, Withheld>, ProcessError> {
    if !may_auto_reply {
        return Ok(Err(Withheld::NotAnswerable));
    }
    if !is_a_person(config, recipient) {
        return Ok(Err(Withheld::NotAPerson));
    }
    let limits = config.auto_mail;
    let now = Timestamp::now().0;
    let window_start = now - now.rem_euclid(AUTO_MAIL_WINDOW_SECONDS);
    // The instance's budget first: a recipient's row is only ever created for a mail the
    // instance's budget allowed, so a flood of made-up senders adds at most `per_hour` rows
    // an hour.
    let Some(used) = tx
        .take_send_unit(INSTANCE_BUCKET, window_start, i64::from(limits.per_hour))
        .await?
    else {
        return Ok(Err(Withheld::InstanceLimit));
    };
    if used == 1 {
        // The first mail of a window: the counters of earlier windows are of no more use.
        tx.prune_send_counters(window_start).await?;
    }
    let bucket = recipient_bucket(recipient);
    if tx
        .take_send_unit(&bucket, window_start, i64::from(limits.per_recipient))
        .await?
        .is_none()
    {
        tx.give_back_send_unit(INSTANCE_BUCKET, window_start)
            .await?;
        return Ok(Err(Withheld::RecipientLimit));
    }
    Ok(Ok(Permit {
        recipient: recipient.to_owned(),
        window_start,
    }))
}

/// One budget per address, whatever its case.
fn recipient_bucket(recipient: &str) -> String {
    bounded_identifier(&format!("auto-mail:to:{}", recipient.to_lowercase()))
}

/// Whether `recipient` may be answered at all: not a mailer daemon or postmaster (answering
/// them is how loops start), not an address of postern's own.
fn is_a_person(config: &ProcessorConfig, recipient: &str) -> bool {
    let local = recipient
        .rsplit_once('@')
        .map_or(recipient, |(local, _)| local)
        .to_ascii_lowercase();
    if matches!(local.as_str(), "mailer-daemon" | "postmaster" | "") {
        return false;
    }
    let own = [
        config.incoming_address.as_ref(),
        config.service_desk_address.as_ref(),
    ];
    let is_own_address = own.iter().flatten().any(|template| {
        template.key_from_address(recipient).is_some()
            || template.as_str().eq_ignore_ascii_case(recipient)
    }) || recipient.eq_ignore_ascii_case(&config.sender_address);
    !is_own_address
}
