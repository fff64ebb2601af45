//! Helpers shared by the integration tests.
#![allow(dead_code, unreachable_pub)]

use ringlog::journal::{Reader, Record};
use std::path::Path;

/// Every record of the journal in `dir`, stopping at the first error (a
/// torn tail after a kill); the error, if any, is returned beside them.
pub fn records(dir: &Path) -> (Vec<Record>, Option<String>) {
    let mut out = Vec::new();
    for r in Reader::open(dir).expect("open the journal") {
        match r {
            Ok(r) => out.push(r),
            Err(e) => return (out, Some(e.to_string())),
        }
    }
    (out, None)
}

/// The payload of `r` as text.
pub fn text(r: &Record) -> &str {
    std::str::from_utf8(&r.payload).expect("records are UTF-8 lines")
}

/// The value of field `name` (`name=value`, at the start of the line or
/// after a space) in a formatted line.
pub fn field(line: &str, name: &str) -> Option<u64> {
    let line = format!(" {line}");
    let key = format!(" {name}=");
    let at = line.find(&key)? + key.len();
    let digits: String = line[at..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    digits.parse().ok()
}

/// Checks that, for each thread `t` in `0..threads`, the records carry
/// `i` = 0, 1, 2, … in order (the first `per_thread` of them at least, or
/// exactly that many when `exact`), and that each producer's sequence
/// numbers are consecutive. Returns the records per thread.
pub fn check_order(records: &[Record], threads: u64, per_thread: u64, exact: bool) -> Vec<u64> {
    let mut next = vec![0u64; threads as usize];
    let mut seqs: std::collections::HashMap<u32, u64> = Default::default();
    for r in records {
        let line = text(r);
        let t = field(line, "t").unwrap_or_else(|| panic!("no t= in {line:?}"));
        let i = field(line, "i").unwrap_or_else(|| panic!("no i= in {line:?}"));
        assert_eq!(i, next[t as usize], "thread {t} out of order at {line:?}");
        next[t as usize] += 1;
        let s = seqs.entry(r.producer).or_insert(r.seq);
        assert_eq!(r.seq, *s, "producer {} sequence gap", r.producer);
        *s += 1;
    }
    for (t, &n) in next.iter().enumerate() {
        if exact {
            assert_eq!(n, per_thread, "thread {t}: {n} records of {per_thread}");
        } else {
            assert!(
                n >= per_thread,
                "thread {t}: {n} records, fewer than {per_thread}"
            );
        }
    }
    next
}
