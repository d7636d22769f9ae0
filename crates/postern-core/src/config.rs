//! The processor's configuration: what this instance is (its addresses, host and name), what
//! one message may make it do, and when a failed message is tried again. Built once from
//! `postern.yml` by the binary; the processor and every handler read it.

use postern_mail::AddressTemplate;
use postern_work::RetryPolicy;

use crate::content::UploadPolicy;
use crate::limits::MessageLimits;

/// Everything the processor needs to know about this instance.
#[derive(Debug, Clone)]
pub struct ProcessorConfig {
    /// `incoming_email.address`; `None` when incoming email is disabled.
    pub incoming_address: Option<AddressTemplate>,
    /// `service_desk_email.address`; `None` when that mailbox is not configured.
    pub service_desk_address: Option<AddressTemplate>,
    /// Host name for `References: <reply-KEY@host>` and generated Message-IDs.
    pub host: String,
    /// Where attachments are written.
    pub uploads: UploadPolicy,
    /// `From` of the mail postern sends (reject notices).
    pub sender_address: String,
    /// Name of this instance in texts sent to people.
    pub instance_name: String,
    /// At most one reject notice per sender and reason in this many seconds (default 3600).
    pub reject_notice_window_seconds: i64,
    /// How much automatic mail (reject notices, thank-yous, verification results) may go out.
    pub auto_mail: crate::auto_mail::AutoMailLimits,
    /// When a message that failed temporarily is tried again, and when it is set aside: the
    /// count is of failures in a row with the same reason, so a failure that is really
    /// permanent stops costing work. [`RetryPolicy::default`] is processing's schedule.
    pub retry: RetryPolicy,
    /// What one message may make postern do.
    pub limits: MessageLimits,
    /// Where a message goes that the store refuses even as a quarantined row
    /// ([`crate::intake::quarantine_directory`] of the data directory).
    pub quarantine_directory: std::path::PathBuf,
    /// Which trimmer cuts quotes and signatures from replies (`reply_trimming:`): GitLab's for
    /// identical results, postern's to keep what GitLab's is known to eat.
    pub reply_trimming: postern_mail::trim::TrimMode,
    /// Where people reach the web UI (`web.external_url`, no trailing slash): notifications
    /// link to the issue or merge request there. `None`: no link (an address only the
    /// server itself can reach is no use in mail).
    pub web_url: Option<String>,
    /// `reply_key_max_age_days`: a reply key older than this many days is refused as unknown;
    /// `None` (the default) keeps keys valid for ever, as GitLab does.
    pub reply_key_max_age_days: Option<u32>,
    /// Sender authentication (`sender_authentication:`); `None` verifies nothing (policy `off`).
    pub sender_authentication: Option<crate::authentication::SenderAuthentication>,
}
