//! Raw message bytes into `postern_mail::analyse` (what `postern inspect` and intake run): it
//! must never panic, whatever the bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use postern_mail::{AddressTemplate, AnalysisOptions, Mailbox, ReplyOptions, analyse};

fuzz_target!(|raw: &[u8]| {
    // The reply mode and mailbox follow from the length, so that the whole input stays a
    // message (seeds are real mail) and still every mode is reached.
    let mode = raw.len();
    let reply = ReplyOptions {
        trim_reply: mode & 1 == 0,
        append_reply: mode & 2 != 0,
        allow_only_quotes: mode & 4 != 0,
    };
    let options = AnalysisOptions {
        reply,
        mailbox: if mode & 8 == 0 {
            Mailbox::Incoming
        } else {
            Mailbox::ServiceDesk
        },
        incoming_address: Some(AddressTemplate::new("incoming+%{key}@appmail.example.com")),
        service_desk_address: Some(AddressTemplate::new("support+%{key}@example.com")),
        host: Some("gitlab.example.com".to_owned()),
    };
    let _ = analyse(raw, &options);
});
