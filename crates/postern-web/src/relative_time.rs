//! Times as people read them: the template filter `when`, one `<time>` element showing "3 hours
//! ago" with "2026-12-07 05:06:00 UTC" for the `title` a pointer shows, over the RFC 3339 text
//! that `postern_store::Timestamp` serializes to.

use postern_store::Timestamp;

/// Seconds since the epoch of `YYYY-MM-DDTHH:MM:SSZ`, the one form timestamps are written in.
fn parse(text: &str) -> Option<i64> {
    let b = text.as_bytes();
    if b.len() != 20 || b[4] != b'-' || b[7] != b'-' || b[10] != b'T' || b[19] != b'Z' {
        return None;
    }
    let num = |range: std::ops::Range<usize>| text.get(range)?.parse::<i64>().ok();
    let (y, m, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (hh, mm, ss) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&m) || !(1..=31).contains(&d) {
        return None;
    }
    Some(days_from_civil(y, m, d) * 86_400 + hh * 3600 + mm * 60 + ss)
}

/// Proleptic Gregorian date → days since 1970-01-01 (Howard Hinnant's `days_from_civil`, the
/// inverse of the store's `civil_from_days`).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// "3 hours ago" for `text` seen at `now`; text that is no timestamp is shown as it is.
pub(crate) fn ago_at(text: &str, now: i64) -> String {
    let Some(then) = parse(text) else {
        return text.to_owned();
    };
    // A time to come (an outbox retry) reads "in 5 minutes"; within a minute either way, or
    // a little ahead on another instance's clock, "just now".
    let (secs, future) = if then > now {
        (then - now, true)
    } else {
        (now - then, false)
    };
    let units = [
        (365 * 86_400, "year"),
        (30 * 86_400, "month"),
        (7 * 86_400, "week"),
        (86_400, "day"),
        (3600, "hour"),
        (60, "minute"),
    ];
    for (size, name) in units {
        let n = secs / size;
        if n >= 1 {
            let plural = if n == 1 { "" } else { "s" };
            return if future {
                format!("in {n} {name}{plural}")
            } else {
                format!("{n} {name}{plural} ago")
            };
        }
    }
    "just now".to_owned()
}

/// "3 hours ago" for `text`, now.
fn ago(text: &str) -> String {
    ago_at(text, Timestamp::now().0)
}

/// The `when` filter: `<time datetime="…" title="2026-12-07 05:06:00 UTC">3 hours ago</time>`,
/// how every page shows a time. An empty value (a time that has not come) shows nothing.
pub(crate) fn when(text: String) -> minijinja::Value {
    if text.is_empty() || text == "none" {
        return minijinja::Value::from("");
    }
    let escape = |t: &str| minijinja::HtmlEscape(t).to_string();
    minijinja::Value::from_safe_string(format!(
        "<time datetime=\"{}\" title=\"{}\">{}</time>",
        escape(&text),
        escape(&utc(&text)),
        escape(&ago(&text))
    ))
}

/// `2026-12-07 05:06:00 UTC` for `text`.
fn utc(text: &str) -> String {
    match parse(text) {
        Some(_) => format!("{} {} UTC", &text[0..10], &text[11..19]),
        None => text.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::{ago_at, parse, utc, when};
    use postern_store::Timestamp;

    #[test]
    fn reads_what_timestamps_write() {
        for secs in [0, 951_782_400, 1_764_347_820, 4_102_444_800] {
            assert_eq!(parse(&Timestamp(secs).to_string()), Some(secs));
        }
        assert_eq!(parse("yesterday"), None);
        assert_eq!(parse("2026-13-01T00:00:00Z"), None);
    }

    #[test]
    fn relative_and_exact() {
        let then = Timestamp(1_764_347_820).to_string();
        let at = |later: i64| ago_at(&then, 1_764_347_820 + later);
        assert_eq!(at(0), "just now");
        assert_eq!(at(-5), "just now");
        assert_eq!(at(-300), "in 5 minutes");
        assert_eq!(at(59), "just now");
        assert_eq!(at(60), "1 minute ago");
        assert_eq!(at(3 * 3600 + 5), "3 hours ago");
        assert_eq!(at(86_400), "1 day ago");
        assert_eq!(at(15 * 86_400), "2 weeks ago");
        assert_eq!(at(400 * 86_400), "1 year ago");
        assert_eq!(ago_at("not a time", 0), "not a time");
        assert_eq!(utc(&then), "2025-11-28 16:37:00 UTC");
        let shown = when(then).to_string();
        assert!(
            shown.starts_with(
                "<time datetime=\"2025-11-28T16:37:00Z\" title=\"2025-11-28 16:37:00 UTC\">"
            ) && shown.ends_with(" ago</time>"),
            "{shown}"
        );
        assert_eq!(
            when("<b>".to_owned()).to_string(),
            "<time datetime=\"&lt;b&gt;\" title=\"&lt;b&gt;\">&lt;b&gt;</time>"
        );
        assert_eq!(when(String::new()).to_string(), "");
    }
}
