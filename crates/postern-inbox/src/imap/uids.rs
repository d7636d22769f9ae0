//! UID sets as IMAP writes them (`1:5,7,9:12`), and the plan that cuts a list of messages
//! into batches bounded by count and bytes.

/// The sorted `uids` as an IMAP sequence set with runs collapsed into ranges.
pub(crate) fn uid_set(uids: &[u32]) -> String {
    let mut out = String::new();
    let mut index = 0;
    while index < uids.len() {
        let start = uids[index];
        let mut end = start;
        while index + 1 < uids.len() && uids[index + 1] == end.saturating_add(1) {
            index += 1;
            end = uids[index];
        }
        if !out.is_empty() {
            out.push(',');
        }
        if start == end {
            out.push_str(&start.to_string());
        } else {
            out.push_str(&format!("{start}:{end}"));
        }
        index += 1;
    }
    out
}

/// `(uid, size)` pairs in UID order cut into batches of at most `max_messages` messages and
/// `max_bytes` bytes; a message larger than `max_bytes` forms a batch of its own.
pub(crate) fn plan_batches(
    sizes: &[(u32, u32)],
    max_messages: usize,
    max_bytes: u64,
) -> Vec<Vec<u32>> {
    let mut batches = Vec::new();
    let mut current: Vec<u32> = Vec::new();
    let mut bytes = 0u64;
    for &(uid, size) in sizes {
        let size = u64::from(size);
        if !current.is_empty()
            && (current.len() >= max_messages || bytes.saturating_add(size) > max_bytes)
        {
            batches.push(std::mem::take(&mut current));
            bytes = 0;
        }
        current.push(uid);
        bytes = bytes.saturating_add(size);
    }
    if !current.is_empty() {
        batches.push(current);
    }
    batches
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn collapses_runs() {
        assert_eq!(uid_set(&[1, 2, 3, 5, 7, 8]), "1:3,5,7:8");
        assert_eq!(uid_set(&[4]), "4");
        assert_eq!(uid_set(&[]), "");
        assert_eq!(
            uid_set(&[u32::MAX - 1, u32::MAX]),
            format!("{}:{}", u32::MAX - 1, u32::MAX)
        );
    }

    #[test]
    fn batches_respect_count_and_bytes() {
        let sizes = [(1, 10), (2, 10), (3, 10), (4, 100), (5, 10)];
        assert_eq!(
            plan_batches(&sizes, 2, 1000),
            vec![vec![1, 2], vec![3, 4], vec![5]]
        );
        // The 100-byte message is larger than the limit: it goes alone.
        assert_eq!(
            plan_batches(&sizes, 10, 30),
            vec![vec![1, 2, 3], vec![4], vec![5]]
        );
    }
}
