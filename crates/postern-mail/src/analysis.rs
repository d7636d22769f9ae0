//! Everything postern understands of one message without a database: `postern inspect`.
//!
//! [`analyse`] runs the receiver's checks in GitLab's order — blank, automatic, key, handler —
//! with the functions processing runs ([`crate::receiver`]), and also fills every other field,
//! so one call shows what each step saw.

use postern_vocab::ErrorKind;
use serde::Serialize;

use crate::address::AddressTemplate;
use crate::attachments::{self, Attachment};
use crate::auto::AutoReason;
use crate::key::KeySource;
use crate::limits::MAX_ATTACHMENTS_LISTED;
use crate::message::Email;
use crate::message::cap_message;
use crate::quick_actions::scan_quick_actions;
use crate::receiver::{self, AttachmentLimits, ByBytes, Mailbox, ReceiverSettings};
use crate::reply::{self, ReplyOptions};
use crate::route::{HandlerKind, Route};

/// The settings that change what a message means.
#[derive(Debug, Clone)]
pub struct AnalysisOptions {
    /// Which mailbox the message came from.
    pub mailbox: Mailbox,
    /// `incoming_email.address`; `None` when not configured.
    pub incoming_address: Option<AddressTemplate>,
    /// `service_desk_email.address`; `None` when not configured.
    pub service_desk_address: Option<AddressTemplate>,
    /// The instance host name used in `References: <reply-KEY@host>`.
    pub host: Option<String>,
    /// Reply-parser switches for `body`.
    pub reply: ReplyOptions,
    /// `limits:` on attachments, which refuse a message before its key is looked for.
    pub limits: AttachmentLimits,
}

impl Default for AnalysisOptions {
    /// The embedded default: `incoming+%{key}@localhost`, host `localhost`, trimming on.
    fn default() -> Self {
        AnalysisOptions {
            mailbox: Mailbox::Incoming,
            incoming_address: Some(AddressTemplate::new("incoming+%{key}@localhost")),
            service_desk_address: None,
            host: Some("localhost".to_owned()),
            reply: ReplyOptions::default(),
            limits: AttachmentLimits::default(),
        }
    }
}

/// One attachment as listed by `inspect`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AttachmentInfo {
    /// Decoded file name.
    pub filename: String,
    /// Lowercased `type/subtype`.
    pub content_type: String,
    /// Decoded size in bytes.
    pub size: usize,
}

/// What `postern inspect` prints.
#[derive(Debug, Clone, Serialize)]
pub struct Analysis {
    /// `Message-ID` without brackets.
    pub message_id: Option<String>,
    /// Decoded subject.
    pub subject: Option<String>,
    /// First `From` address.
    pub from: Option<String>,
    /// First `Reply-To` address.
    pub reply_to: Option<String>,
    /// First `Sender` address.
    pub sender: Option<String>,
    /// The address GitLab treats as the sender: `Reply-To`, else `From`, else `Sender`.
    pub from_address: Option<String>,
    /// The mail key, if any header carried one.
    pub mail_key: Option<String>,
    /// The header the key came from.
    pub key_source: Option<KeySource>,
    /// The handler the key routes to.
    pub handler: Option<HandlerKind>,
    /// What the key says (project, token, reply key …), for debugging routes.
    pub route: Option<Route>,
    /// Whether the message is automatic.
    pub auto_generated: bool,
    /// Why it is automatic.
    pub auto_generated_reason: Option<AutoReason>,
    /// The reply text, as GitLab's reply parser returns it with the chosen options.
    pub body: String,
    /// What trimming cut away (null when trimming is off).
    pub elided: Option<String>,
    /// Quick-action lines in `body`, at most [`MAX_QUICK_ACTIONS`](crate::limits::MAX_QUICK_ACTIONS).
    pub quick_actions: Vec<String>,
    /// How many quick actions `body` has, the ones past the cap included.
    pub quick_actions_total: usize,
    /// Attachments, signature parts of signed mail excluded: at most
    /// [`MAX_ATTACHMENTS_LISTED`], names cut to
    /// [`MAX_ATTACHMENT_NAME_BYTES`](crate::limits::MAX_ATTACHMENT_NAME_BYTES).
    pub attachments: Vec<AttachmentInfo>,
    /// How many attachments the message has, the ones past the listing cap included.
    pub attachments_total: usize,
    /// File names of the `.patch` attachments, in the order they would be applied (at most
    /// the listing cap, names cut as for `attachments`).
    pub patches: Vec<String>,
    /// The receiver's refusal before any handler (blank, automatic, no key or route), as
    /// processing records it.
    pub error: Option<ErrorKind>,
    /// Set when the reply options are contradictory (GitLab raises an ArgumentError).
    pub options_error: Option<String>,
}

/// Understands `raw` under `options`. Never fails and never panics.
pub fn analyse(raw: &[u8], options: &AnalysisOptions) -> Analysis {
    let raw = cap_message(raw);
    let email = Email::parse(&raw);
    let settings = ReceiverSettings {
        mailbox: options.mailbox,
        incoming_address: options.incoming_address.as_ref(),
        service_desk_address: options.service_desk_address.as_ref(),
        host: options.host.as_deref(),
    };
    let all_attachments = attachments::attachments(&email);
    // `inspect` reads the whole input: never a header block kept for its size.
    let by_bytes = receiver::by_bytes(&raw, &email, false, &options.limits, || {
        let bytes = all_attachments.iter().map(|a| a.size).sum();
        (all_attachments.len(), bytes)
    });
    // Found even when the first step refuses, to show what the key step saw.
    let routing = receiver::routing(&email, &settings, None);
    let error = receiver::refusal(by_bytes, &routing);
    let auto_reason = match by_bytes {
        Some(ByBytes::Automatic(reason)) => Some(reason),
        // Refused before the automatic check was made.
        Some(ByBytes::Blank) => crate::auto::auto_generated(&email),
        // The check was made and found nothing.
        Some(ByBytes::TooLarge | ByBytes::OverLimit(_)) | None => None,
    };

    let selected = reply::select_body(email.inner());
    let (body, elided, options_error) = match reply::check_options(options.reply) {
        Ok(()) => {
            let parsed = reply::finish_reply(&selected, options.reply);
            (parsed.body, parsed.elided, None)
        }
        Err(error) => (String::new(), None, Some(error.to_string())),
    };

    let quick_actions = scan_quick_actions(&body);
    Analysis {
        message_id: email.message_id().map(str::to_owned),
        subject: email.subject().map(str::to_owned),
        from: email.from().into_iter().next(),
        reply_to: email.reply_to().into_iter().next(),
        sender: email.sender().into_iter().next(),
        from_address: email.from_address(),
        mail_key: routing.key.as_ref().map(|found| found.key.clone()),
        key_source: routing.key.as_ref().map(|found| found.source),
        handler: routing.route.as_ref().map(Route::kind),
        route: routing.route,
        auto_generated: auto_reason.is_some(),
        auto_generated_reason: auto_reason,
        quick_actions: quick_actions
            .actions
            .into_iter()
            .map(|action| action.line)
            .collect(),
        quick_actions_total: quick_actions.total,
        body,
        elided,
        patches: attachments::patches(&all_attachments)
            .iter()
            .take(MAX_ATTACHMENTS_LISTED)
            .map(|patch| attachments::short_name(&patch.filename))
            .collect(),
        attachments: all_attachments
            .iter()
            .take(MAX_ATTACHMENTS_LISTED)
            .map(info)
            .collect(),
        attachments_total: all_attachments.len(),
        error,
        options_error,
    }
}

fn info(attachment: &Attachment) -> AttachmentInfo {
    AttachmentInfo {
        filename: attachments::short_name(&attachment.filename),
        content_type: attachment.content_type.clone(),
        size: attachment.size,
    }
}
