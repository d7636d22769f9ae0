//! Throttling the stand-in applies by itself, as Graph does to an application that sends much
//! to one mailbox: every few calls (deterministically, or at random from a seeded generator so a
//! failure can be replayed) a call is refused with `429`, `503` or `509`, and the mailbox is
//! closed for the announced `Retry-After`. Calls that arrive inside that window are refused too
//! and recorded as violations.
//!
//! A call that was already on its way when the window opened cannot have known about it: the
//! client only learns of the window from the answer. Calls arriving within
//! [`IN_FLIGHT_GRACE`] of the refusal are therefore refused but not counted; anything later in
//! the window is a client that did not wait. The refused call itself sent again (same method
//! and path) cannot have been on its way: it is a violation whenever it arrives in the window.

use std::time::{Duration, Instant, SystemTime};

/// How long after a refusal another call still counts as sent before the client could know of
/// it: the answer's way back and the client's reading of it, on loopback.
pub const IN_FLIGHT_GRACE: Duration = Duration::from_millis(100);

/// When the stand-in throttles Graph calls (token requests are never throttled).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Throttling {
    /// Every `every`-th Graph call (counting those outside a window) is refused; 0 for never.
    pub every: u64,
    /// Each other call is refused with this probability (0.0 to 1.0).
    pub chance: f64,
    /// The seed of the generator behind `chance`.
    pub seed: u64,
    /// The wait announced in `Retry-After`, in whole seconds (at least 1).
    pub retry_after_secs: u64,
}

/// How one refusal looks. The stand-in cycles through them so a client meets each.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// `429 Too Many Requests` with `Retry-After: <seconds>`.
    TooManyRequests,
    /// `503 Service Unavailable` with `Retry-After` as an HTTP date.
    UnavailableUntil,
    /// `509 Bandwidth Limit Exceeded` without `Retry-After`: no window, the client backs off.
    BandwidthExceeded,
}

/// A call that arrived inside a window it should have waited for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    /// The call: method and path.
    pub call: String,
    /// When the call arrived.
    pub at: Instant,
    /// When the window was opened (the refusal answered).
    pub opened: Instant,
    /// When it ended.
    pub until: Instant,
}

/// The throttling state of one stand-in.
#[derive(Debug, Default)]
pub(super) struct Throttle {
    pub plan: Option<Throttling>,
    rng: u64,
    calls: u64,
    refusals: u64,
    window: Option<Window>,
    pub violations: Vec<Violation>,
}

/// A `Retry-After` window: when it opened, when it ends, and the calls refused in it (method and
/// path), which the client must not send again before the end.
#[derive(Debug)]
struct Window {
    opened: Instant,
    until: Instant,
    refused: Vec<String>,
}

/// What to answer a Graph call with.
pub(super) enum Verdict {
    /// Serve it.
    Pass,
    /// Refuse it; `retry_after` is the header value, if any.
    Refuse {
        refusal: Refusal,
        retry_after: Option<String>,
    },
}

impl Throttle {
    pub fn set(&mut self, plan: Throttling) {
        self.plan = Some(plan);
        self.rng = plan.seed;
    }

    /// The verdict on `call` (method and path) that arrived at `at` and is answered now.
    pub fn judge(&mut self, call: &str, at: Instant) -> Verdict {
        let now = Instant::now();
        if let Some(window) = &mut self.window {
            let (opened, until) = (window.opened, window.until);
            if now < until {
                let resent = window.refused.iter().any(|r| r == call);
                if at < until && (resent || at >= opened + IN_FLIGHT_GRACE) {
                    self.violations.push(Violation {
                        call: call.to_owned(),
                        at,
                        opened,
                        until,
                    });
                }
                window.refused.push(call.to_owned());
                let left = until.saturating_duration_since(now);
                return Verdict::Refuse {
                    refusal: Refusal::TooManyRequests,
                    retry_after: Some(whole_seconds_up(left).to_string()),
                };
            }
            self.window = None;
        }
        let Some(plan) = self.plan else {
            return Verdict::Pass;
        };
        self.calls += 1;
        let due = plan.every > 0 && self.calls.is_multiple_of(plan.every);
        let drawn = plan.chance > 0.0 && self.next_unit() < plan.chance;
        if !due && !drawn {
            return Verdict::Pass;
        }
        let refusal = match self.refusals % 3 {
            0 => Refusal::TooManyRequests,
            1 => Refusal::UnavailableUntil,
            _ => Refusal::BandwidthExceeded,
        };
        self.refusals += 1;
        let seconds = plan.retry_after_secs.max(1);
        let retry_after = match refusal {
            Refusal::TooManyRequests => {
                self.window = Some(Window {
                    opened: now,
                    until: now + Duration::from_secs(seconds),
                    refused: vec![call.to_owned()],
                });
                Some(seconds.to_string())
            }
            Refusal::UnavailableUntil => {
                // An HTTP date has whole seconds: the window ends at the announced second,
                // between `seconds` and `seconds + 1` from now.
                let wall = SystemTime::now();
                let since_epoch = wall
                    .duration_since(SystemTime::UNIX_EPOCH)
                    .unwrap_or_default();
                let end = SystemTime::UNIX_EPOCH
                    + Duration::from_secs(since_epoch.as_secs() + seconds + 1);
                let left = end.duration_since(wall).unwrap_or_default();
                self.window = Some(Window {
                    opened: now,
                    until: now + left,
                    refused: vec![call.to_owned()],
                });
                Some(httpdate::fmt_http_date(end))
            }
            Refusal::BandwidthExceeded => None,
        };
        Verdict::Refuse {
            refusal,
            retry_after,
        }
    }

    /// Refusals so far, windows and follow-up refusals inside them not counted.
    pub fn refusals(&self) -> u64 {
        self.refusals
    }

    /// A number in [0, 1) from a splitmix64 generator: reproducible from the seed.
    fn next_unit(&mut self) -> f64 {
        self.rng = self.rng.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.rng;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        (z >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// `duration` in whole seconds, rounded up, at least 1: what `Retry-After` can say.
fn whole_seconds_up(duration: Duration) -> u64 {
    let seconds = duration.as_secs() + u64::from(duration.subsec_nanos() > 0);
    seconds.max(1)
}
