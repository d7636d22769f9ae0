//! What is known of a message before its write transaction ([`Prepared`]), and the receiver's
//! decision (`postern_mail::receiver`, the functions `postern inspect` runs): its first step
//! before the transaction, the key and route inside it.

use postern_mail::receiver::{self, ByBytes, ReceiverSettings};
use postern_mail::{Email, Route};
use postern_store::{Mailbox, Tx};

use crate::authentication::Authenticated;
use crate::config::ProcessorConfig;
use crate::content::{MessageTexts, Uploads};
use crate::custom_email::CustomEmails;
use crate::error::{ProcessError, Rejection};
use crate::handlers;
use crate::limits::MessageLimits;
use crate::sender::SenderTrust;

#[derive(Clone)]
pub(super) enum Decision {
    Ignored(Rejection),
    Rejected(Rejection),
    /// The route, and whether its key was found only in `References`.
    Route(Route, bool),
}

/// What is known of a message before its write transaction: the parse, the receiver's checks
/// that need no database, and the body texts. All of it is a function of the bytes alone and
/// takes time in proportion to them, so none of it runs while the store's write slot is held.
pub(crate) struct Prepared<'raw> {
    pub(super) email: Email<'raw>,
    /// The decision, when the bytes alone decide (blank, automatic, too large, over a limit).
    pub(super) early: Option<Decision>,
    pub(super) texts: MessageTexts,
    /// The attachments, written before the transaction; the handler records those it keeps.
    pub(super) uploads: Uploads,
    /// The git work of a merge request by email ([`Processor::prepare_git`]).
    pub(super) git: handlers::merge_request::GitState,
    /// What sender authentication says of the message, from its verdict computed before the
    /// transaction; `FromCheckOnly` when the instance verifies no senders.
    pub(crate) trust: SenderTrust,
    /// Whether automatic mail may answer this message's sender (`crate::auto_mail`): false
    /// when sender authentication finds its `From` may be forged.
    pub(super) may_auto_reply: bool,
    /// The sender authentication verdict, when the instance verifies senders and the message
    /// is not ignored by its bytes alone.
    pub(super) authenticated: Option<Authenticated>,
}

impl<'raw> Prepared<'raw> {
    /// `raw` is the message as parsed (within the header and MIME caps), `whole` the message
    /// as received, which signatures cover.
    pub(super) async fn new(
        raw: &'raw [u8],
        whole: &[u8],
        declared_size: Option<i64>,
        config: &ProcessorConfig,
        store: &postern_store::Store,
    ) -> Result<Prepared<'raw>, ProcessError> {
        // Parsing and the text work take time in proportion to the message and never wait:
        // on a multi-threaded runtime they leave the worker thread to the other tasks
        // (another LMTP session, the web server) for as long as they run.
        let (email, early, texts) = cpu_bound(|| {
            let email = Email::parse(raw);
            let early = early_decision(raw, &email, declared_size, &config.limits);
            // A message refused by its bytes needs no body text and no uploads.
            let texts = match early {
                None => MessageTexts::of(&email, config.reply_trimming),
                Some(_) => MessageTexts::default(),
            };
            (email, early, texts)
        });
        let uploads = match early {
            None => Uploads::stage(&email, &config.uploads, store).await?,
            Some(_) => Uploads::default(),
        };
        // DNS work, before the transaction like the rest. Ignored mail is never answered and
        // acts as no one, so it is not verified.
        let authenticated = match (&config.sender_authentication, &early) {
            (Some(authentication), None | Some(Decision::Rejected(_))) => {
                Some(authentication.authenticate(whole).await)
            }
            _ => None,
        };
        Ok(Prepared {
            email,
            early,
            texts,
            uploads,
            git: Default::default(),
            trust: authenticated
                .as_ref()
                .map_or_else(SenderTrust::default, Authenticated::trust),
            may_auto_reply: authenticated
                .as_ref()
                .is_none_or(|a| a.decision.may_auto_reply),
            authenticated,
        })
    }
}

impl super::Processor {
    /// [`Prepared::new`] under this processor's configuration.
    pub(super) async fn prepare<'raw>(
        &self,
        raw: &'raw [u8],
        whole: &[u8],
        declared_size: Option<i64>,
    ) -> Result<Prepared<'raw>, ProcessError> {
        Prepared::new(raw, whole, declared_size, &self.config, &self.store).await
    }
}

impl super::Processor {
    /// The receiver's checks before any handler: those the bytes decided in [`Prepared`], then
    /// key and route, with the projects' custom emails as they are in this transaction.
    pub(super) async fn decide(
        &self,
        tx: &mut Tx,
        prepared: &Prepared<'_>,
        mailbox: Mailbox,
    ) -> Result<Decision, ProcessError> {
        if let Some(early) = prepared.early.clone() {
            return Ok(early);
        }
        let custom = CustomEmails::load(tx).await?;
        let settings = ReceiverSettings {
            mailbox: match mailbox {
                Mailbox::Incoming => postern_mail::Mailbox::Incoming,
                Mailbox::ServiceDesk => postern_mail::Mailbox::ServiceDesk,
            },
            incoming_address: self.config.incoming_address.as_ref(),
            service_desk_address: self.config.service_desk_address.as_ref(),
            host: Some(&self.config.host),
        };
        Ok(
            match receiver::routing(&prepared.email, &settings, Some(&custom)).decided() {
                Ok((route, key_only_in_references)) => {
                    Decision::Route(route, key_only_in_references)
                }
                Err(kind) => Decision::Rejected(Rejection::new(kind)),
            },
        )
    }
}

/// Runs `work` where it does not hold up other tasks: in place of the current worker thread,
/// whose other tasks move to another, on a multi-threaded runtime; plainly otherwise (a
/// single-threaded runtime, as in `postern receive`, has nothing else to run).
fn cpu_bound<T>(work: impl FnOnce() -> T) -> T {
    match tokio::runtime::Handle::try_current() {
        Ok(handle) if handle.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => {
            tokio::task::block_in_place(work)
        }
        _ => work(),
    }
}

/// The receiver's checks the bytes alone decide ([`receiver::by_bytes`]: blank, automatic,
/// too large for the source to fetch, over an attachment limit).
fn early_decision(
    raw: &[u8],
    email: &Email<'_>,
    declared_size: Option<i64>,
    limits: &MessageLimits,
) -> Option<Decision> {
    let refused = receiver::by_bytes(
        raw,
        email,
        declared_size.is_some(),
        &limits.attachments(),
        || receiver::attachment_totals(email),
    )?;
    let kind = refused.error_kind();
    Some(match refused {
        ByBytes::Automatic(reason) => Decision::Ignored(Rejection::with_reason(
            kind,
            format!("automatic mail ({})", reason.as_str()),
        )),
        ByBytes::OverLimit(over) => Decision::Rejected(crate::content::over_limit(over)),
        ByBytes::Blank | ByBytes::TooLarge => Decision::Rejected(Rejection::new(kind)),
    })
}
