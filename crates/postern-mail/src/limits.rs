//! Caps on the work one message can cause in this crate. Every pass over a message's bytes is
//! linear, and these bound what it keeps: past a cap the input is cut or counted, never processed
//! slowly, and the result says so.

/// Quick actions kept from one text by [`scan_quick_actions`](crate::quick_actions::scan_quick_actions)
/// and listed by `analyse`. A person writes a handful; the caller sees the full count in
/// `total` and decides (postern-core refuses more than its configured limit, 100 by default).
pub const MAX_QUICK_ACTIONS: usize = 100;
