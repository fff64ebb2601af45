//! `ringlog cat --format text` on a journal written through
//! ringlog-tracing's `BinaryLayer`: events formatted as the fmt layer
//! would, definitions not printed, text records untouched, garbled binary
//! records in hex, and the other formats unchanged (the raw records).

use std::io::Write;

mod common;

use common::ringlog;
use ringlog::journal::{write_utc_timestamp, Reader, Record};
use ringlog_tracing::{BinaryLayer, Builder};
use tracing_subscriber::layer::SubscriberExt;

fn time(ns: u64, digits: u32) -> String {
    let mut s = String::new();
    write_utc_timestamp(&mut s, ns, digits).unwrap();
    s
}

/// The prefix `cat --format text` gives every record.
fn prefix(r: &Record) -> String {
    format!("{} {} {}", time(r.timestamp, 9), r.producer, r.seq)
}

#[test]
fn cat_formats_binary_events_like_the_fmt_layer() {
    let dir = tempfile::tempdir().unwrap();
    let (mut writer, guard) = Builder::new(dir.path()).build().unwrap();
    std::thread::Builder::new()
        .name("worker-7".into())
        .spawn({
            let writer = writer.clone();
            move || {
                let subscriber = tracing_subscriber::registry().with(BinaryLayer::new(&writer));
                tracing::subscriber::with_default(subscriber, || {
                    for i in 0..3u64 {
                        tracing::info!(target: "shop", i, price = 2.5, user = "ada\nlovelace", "order placed");
                    }
                    tracing::error!(target: "shop::db", code = -7i64, retry = false, "query failed: {}", "timeout");
                });
            }
        })
        .unwrap()
        .join()
        .unwrap();
    writeln!(writer, "a plain text line").unwrap();
    guard.shutdown().unwrap();
    let records: Vec<Record> = Reader::open(dir.path())
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    // A thread definition, two callsite definitions, four events, a line.
    assert_eq!(records.len(), 8);
    let events: Vec<&Record> = records
        .iter()
        .filter(|r| r.payload.starts_with(&ringlog_tracing::binary::MAGIC))
        .collect();
    assert_eq!(events.len(), 7);
    let mut want = String::new();
    let is_event = |r: &Record| r.payload.get(5) == Some(&2);
    let mut n = 0;
    for r in &events {
        if !is_event(r) {
            continue;
        }
        let body = if n < 3 {
            format!(" INFO worker-7 shop: order placed i={n} price=2.5 user=\"ada\\\\nlovelace\"")
        } else {
            "ERROR worker-7 shop::db: query failed: timeout code=-7 retry=false".to_owned()
        };
        want.push_str(&format!("{} {} {body}\n", prefix(r), time(r.timestamp, 6)));
        n += 1;
    }
    assert_eq!(n, 4);
    let text_record = records.last().unwrap();
    want.push_str(&format!("{} a plain text line\n", prefix(text_record)));
    let out = ringlog(&["cat", "--format", "text", dir.path().to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8(out.stdout).unwrap(), want);

    // A reader that knows nothing of the format still sees every record.
    let out = ringlog(&["cat", "--format", "hex", dir.path().to_str().unwrap()]);
    assert!(out.status.success());
    assert_eq!(String::from_utf8(out.stdout).unwrap().lines().count(), 8);
    assert!(ringlog::journal::verify(dir.path()).unwrap().is_clean());
}

#[test]
fn cat_shows_garbled_binary_records_in_hex() {
    let dir = tempfile::tempdir().unwrap();
    let mut journal =
        ringlog::journal::Journal::open(dir.path(), ringlog::journal::JournalOptions::default())
            .unwrap();
    let mut bad = ringlog_tracing::binary::MAGIC.to_vec();
    bad.extend_from_slice(&[1, 2, 0xde, 0xad]); // an event cut short
    journal.append(0, 0, 5, &bad).unwrap();
    let mut unknown = ringlog_tracing::binary::MAGIC.to_vec();
    unknown.extend_from_slice(&[9, 1]); // a version from the future
    journal.append(0, 1, 6, &unknown).unwrap();
    journal.sync().unwrap();
    drop(journal);
    let out = ringlog(&["cat", "--format", "text", dir.path().to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines,
        [
            format!(
                "{} 0 0 binary record (binary record truncated at byte 6 (reading callsite id)): f5 52 4c 42 01 02 de ad",
                time(5, 9)
            ),
            format!(
                "{} 0 1 binary record (unknown binary record version 9): f5 52 4c 42 09 01",
                time(6, 9)
            ),
        ]
    );
}

#[test]
fn grep_matches_binary_events_on_their_formatted_text() {
    let dir = tempfile::tempdir().unwrap();
    let (mut writer, guard) = Builder::new(dir.path()).build().unwrap();
    let subscriber = tracing_subscriber::registry().with(BinaryLayer::new(&writer));
    tracing::subscriber::with_default(subscriber, || {
        let conn = tracing::info_span!("conn", peer = "10.0.0.1");
        let _c = conn.enter();
        for i in 0..5u64 {
            tracing::info!(target: "shop", i, user = "ada", "order placed");
        }
        tracing::error!(target: "shop::db", code = -7i64, "query failed: {}", "timeout");
    });
    writeln!(writer, "a plain order placed line").unwrap();
    guard.shutdown().unwrap();
    let path = dir.path().to_str().unwrap();
    let cat = |args: &[&str]| {
        let mut all = vec!["cat"];
        all.extend_from_slice(args);
        all.push(path);
        let out = ringlog(&all);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    // A field value, the message and a span's field: none of these is in
    // a binary record's bytes as text next to its name.
    let text = cat(&["--grep", r"order placed i=3 user="]);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 1, "{text}");
    assert!(
        lines[0].ends_with(r#"conn{peer="10.0.0.1"}: shop: order placed i=3 user="ada""#),
        "{text}"
    );
    let text = cat(&["--grep", r#"peer="10\.0\.0\.1""#]);
    assert_eq!(text.lines().count(), 6, "{text}");
    // The level and the formatted message, in another output format: the
    // record is printed as it is stored.
    let text = cat(&[
        "--grep",
        "ERROR .*query failed: timeout code=-7",
        "--format",
        "jsonl",
    ]);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 1, "{text}");
    assert!(lines[0].contains("\"payload_b64\":\"9VJMQg"), "{text}");
    // Text records still match on their bytes, and binary records never
    // on theirs.
    let text = cat(&["--grep", "order placed"]);
    assert_eq!(text.lines().count(), 6, "{text}");
    assert!(text.ends_with(" a plain order placed line\n"), "{text}");
    assert_eq!(cat(&["--grep", "RLB"]), "");
}
