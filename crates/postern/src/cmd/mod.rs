//! One module per subcommand.

pub mod admin;
pub mod check;
pub mod docs;
pub mod inspect;
pub mod oauth;
pub mod receive;
pub mod serve;
pub mod trim;
