//! The two mailboxes GitLab's incoming email knows, by the names every layer uses for them: the
//! configuration sections (`incoming_email`, `service_desk_email`), the stored rows
//! (`inbound_messages.mailbox`), `postern inspect`'s JSON and the mail desk's filter.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// The mailbox a message arrived in; each has its own address and routing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mailbox {
    /// `incoming_email`: replies, new issues and merge requests, and Service Desk through the
    /// incoming address.
    #[default]
    Incoming,
    /// `service_desk_email`: the dedicated Service Desk mailbox, where every key is a Service
    /// Desk key.
    ServiceDesk,
}

impl Mailbox {
    /// Every mailbox, in the order GitLab's configuration lists them.
    pub const ALL: &'static [Mailbox] = &[Mailbox::Incoming, Mailbox::ServiceDesk];

    /// The name stored in the database and shown in JSON: `incoming` or `service_desk`.
    pub fn as_str(self) -> &'static str {
        match self {
            Mailbox::Incoming => "incoming",
            Mailbox::ServiceDesk => "service_desk",
        }
    }
}

impl fmt::Display for Mailbox {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A name that is not one of [`Mailbox::as_str`]'s.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownMailbox(String);

impl fmt::Display for UnknownMailbox {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "unknown mailbox {:?}", self.0)
    }
}

impl std::error::Error for UnknownMailbox {}

impl FromStr for Mailbox {
    type Err = UnknownMailbox;

    fn from_str(name: &str) -> Result<Mailbox, UnknownMailbox> {
        Mailbox::ALL
            .iter()
            .copied()
            .find(|mailbox| mailbox.as_str() == name)
            .ok_or_else(|| UnknownMailbox(name.to_owned()))
    }
}

/// For reading a stored name (a database column decoded as text).
impl TryFrom<String> for Mailbox {
    type Error = UnknownMailbox;

    fn try_from(name: String) -> Result<Mailbox, UnknownMailbox> {
        name.parse()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_in_text_and_json() {
        for mailbox in Mailbox::ALL {
            assert_eq!(mailbox.as_str().parse::<Mailbox>(), Ok(*mailbox));
            assert_eq!(Mailbox::try_from(mailbox.to_string()), Ok(*mailbox));
            let json = serde_json::to_string(mailbox).expect("serialises");
            assert_eq!(json, format!("\"{}\"", mailbox.as_str()));
            assert_eq!(
                serde_json::from_str::<Mailbox>(&json).expect("parses"),
                *mailbox
            );
        }
        assert_eq!(Mailbox::ServiceDesk.as_str(), "service_desk");
        assert_eq!(Mailbox::default(), Mailbox::Incoming);
    }

    #[test]
    fn unknown_names_are_refused_with_the_name() {
        let error = "Incoming".parse::<Mailbox>().expect_err("case matters");
        assert_eq!(error.to_string(), "unknown mailbox \"Incoming\"");
        assert!("".parse::<Mailbox>().is_err());
    }
}
