//! The cursor rules and the stream checks against one real server: no
//! cursor advance without an acknowledgement, a replay that the server
//! reports as duplicates and that adds no message, gaps and conflicting
//! stream configurations refused loudly.

use crate::{client, common};

use std::path::Path;
use std::time::Duration;

use async_nats::jetstream::{self, stream::DiscardPolicy};
use client::{messages, rt};
use common::write_journal;
use ringlog::journal::{read_cursor_file, JournalOptions, Reader, Retention, SyncPolicy};
use ringlog_forward::{
    check_stream, connect, ensure_stream, Dedup, ForwardError, ForwardOptions, Forwarder, Order,
    StreamSpec,
};

fn options(dir: &Path, server: &str, stream: &str, dedup: Dedup) -> ForwardOptions {
    let mut o = ForwardOptions::new(dir, server, StreamSpec::new(stream));
    o.dedup = dedup;
    // What a replay does without the strict order's skip of what the
    // stream holds (lost.rs covers strict order).
    o.order = Order::Relaxed;
    o.window = 64;
    o
}

#[test]
fn replay_is_reported_as_duplicates_and_adds_nothing() {
    let Some(bin) = common::server_or_skip("replay_is_reported_as_duplicates_and_adds_nothing")
    else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let cluster = common::Cluster::start(&bin, &tmp.path().join("nats"), 1);
    let server = cluster.urls();
    let dir = tmp.path().join("journal");
    write_journal(&dir, JournalOptions::default(), 3, 400, 0);
    let rt = rt();

    // First pass: everything is new.
    let first = rt
        .block_on(Forwarder::new(options(&dir, &server, "R", Dedup::MsgId)).run())
        .unwrap();
    assert_eq!(first.metrics.forwarded, 1200);
    assert_eq!(first.metrics.acknowledged, 1200);
    assert_eq!(first.metrics.duplicates, 0);
    assert_eq!(rt.block_on(messages(&server, "R")), 1200);

    // A replay of everything (as after a restart whose cursor was lost):
    // every record is reported as a duplicate, none is added.
    let again = rt
        .block_on(Forwarder::new(options(&dir, &server, "R", Dedup::MsgId)).run())
        .unwrap();
    assert_eq!(again.metrics.forwarded, 1200);
    assert_eq!(again.metrics.duplicates, 1200);
    assert_eq!(rt.block_on(messages(&server, "R")), 1200);

    // With the last-subject check the replay publishes nothing at all.
    let skipped = rt
        .block_on(Forwarder::new(options(&dir, &server, "R", Dedup::LastSubject)).run())
        .unwrap();
    assert_eq!(skipped.metrics.forwarded, 0);
    assert_eq!(skipped.metrics.already_in_stream, 1200);

    // With a cursor: a restart publishes only what came after it.
    let cursor = tmp.path().join("cursor");
    let mut o = options(&dir, &server, "R", Dedup::MsgId);
    o.cursor_file = Some(cursor.clone());
    let r = rt.block_on(Forwarder::new(o).run()).unwrap();
    assert_eq!(r.metrics.duplicates, 1200);
    let last = Reader::open(&dir).unwrap().last().unwrap().unwrap();
    assert_eq!(read_cursor_file(&cursor).unwrap(), Some(last.cursor()));
    write_journal(&dir, JournalOptions::default(), 3, 5, 400);
    let mut o = options(&dir, &server, "R", Dedup::MsgId);
    o.cursor_file = Some(cursor.clone());
    let r = rt.block_on(Forwarder::new(o).run()).unwrap();
    assert_eq!(r.metrics.forwarded, 15);
    assert_eq!(r.metrics.duplicates, 0);

    let check = rt
        .block_on(check_stream(&dir, &server, &StreamSpec::new("R")))
        .unwrap();
    assert!(check.is_clean(), "{check:?}");
    assert_eq!(check.messages, 1215);
}

#[test]
fn cursor_stays_before_what_was_not_acknowledged() {
    let Some(bin) = common::server_or_skip("cursor_stays_before_what_was_not_acknowledged") else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let cluster = common::Cluster::start(&bin, &tmp.path().join("nats"), 1);
    let server = cluster.urls();
    let dir = tmp.path().join("journal");
    write_journal(&dir, JournalOptions::default(), 1, 20, 0);
    let rt = rt();
    // A stream that refuses every message after the fifth.
    rt.block_on(async {
        let js = jetstream::new(connect(&server).await.unwrap());
        js.create_stream(jetstream::stream::Config {
            name: "FULL".into(),
            subjects: vec!["ringlog.>".into()],
            max_messages: 5,
            discard: DiscardPolicy::New,
            ..Default::default()
        })
        .await
        .unwrap();
    });
    let cursor = tmp.path().join("cursor");
    let mut o = options(&dir, &server, "FULL", Dedup::MsgId);
    o.cursor_file = Some(cursor.clone());
    o.ack_timeout = Duration::from_millis(300);
    o.retry_for = Some(Duration::from_millis(600));
    let err = rt.block_on(Forwarder::new(o).run()).unwrap_err();
    assert!(
        matches!(
            err,
            ForwardError::GaveUp {
                producer: 1,
                seq: 5,
                ..
            } | ForwardError::Refused {
                producer: 1,
                seq: 5,
                ..
            }
        ),
        "{err:?}"
    );
    let fifth = Reader::open(&dir).unwrap().nth(4).unwrap().unwrap();
    assert_eq!(read_cursor_file(&cursor).unwrap(), Some(fifth.cursor()));
    assert_eq!(rt.block_on(messages(&server, "FULL")), 5);
}

#[test]
fn deleted_records_are_a_gap_and_conflicts_are_refused() {
    let Some(bin) = common::server_or_skip("deleted_records_are_a_gap_and_conflicts_are_refused")
    else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let cluster = common::Cluster::start(&bin, &tmp.path().join("nats"), 1);
    let server = cluster.urls();
    let dir = tmp.path().join("journal");
    let small = JournalOptions {
        segment_bytes: 4096,
        sync: SyncPolicy::Never,
        retention: Retention {
            max_segments: Some(2),
            ..Default::default()
        },
        ..Default::default()
    };
    write_journal(&dir, small, 1, 10, 0);
    let rt = rt();
    let cursor = tmp.path().join("cursor");
    let mut o = options(&dir, &server, "G", Dedup::MsgId);
    o.cursor_file = Some(cursor.clone());
    rt.block_on(Forwarder::new(o).run()).unwrap();
    // Retention deletes the segment the cursor is in before it is read on.
    write_journal(&dir, small, 1, 400, 10);
    let before = read_cursor_file(&cursor).unwrap();
    let mut o = options(&dir, &server, "G", Dedup::MsgId);
    o.cursor_file = Some(cursor.clone());
    let err = rt.block_on(Forwarder::new(o).run()).unwrap_err();
    assert!(matches!(err, ForwardError::Gap { .. }), "{err:?}");
    assert_eq!(read_cursor_file(&cursor).unwrap(), before);
    // No cursor and the oldest records gone: a gap too, unless allowed.
    let mut o = options(&dir, &server, "G2", Dedup::MsgId);
    o.stream.subject_prefix = "g2".into();
    let err = rt.block_on(Forwarder::new(o).run()).unwrap_err();
    assert!(
        matches!(
            err,
            ForwardError::Gap {
                from_position: 0,
                ..
            }
        ),
        "{err:?}"
    );
    let mut o = options(&dir, &server, "G2", Dedup::MsgId);
    o.stream.subject_prefix = "g2".into();
    o.allow_initial_gap = true;
    let r = rt.block_on(Forwarder::new(o).run()).unwrap();
    assert!(r.metrics.acknowledged > 0);

    // An existing stream with other replicas or another window is refused.
    rt.block_on(async {
        let js = jetstream::new(connect(&server).await.unwrap());
        let mut spec = StreamSpec::new("G");
        spec.replicas = Some(3);
        spec.duplicate_window = Some(Duration::from_secs(30));
        let err = ensure_stream(&js, &spec).await.unwrap_err();
        let text = err.to_string();
        assert!(matches!(err, ForwardError::StreamConflict { .. }), "{text}");
        assert!(text.contains("1 replicas, 3 asked for"), "{text}");
        assert!(text.contains("duplicate window"), "{text}");
        let mut spec = StreamSpec::new("G");
        spec.subject_prefix = "other".into();
        let err = ensure_stream(&js, &spec).await.unwrap_err();
        assert!(err.to_string().contains("do not take other.>"), "{err}");
    });
}

#[test]
fn lag_counts_what_is_not_acknowledged() {
    let Some(bin) = common::server_or_skip("lag_counts_what_is_not_acknowledged") else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let cluster = common::Cluster::start(&bin, &tmp.path().join("nats"), 1);
    let server = cluster.urls();
    let dir = tmp.path().join("journal");
    write_journal(&dir, JournalOptions::default(), 2, 50, 0);
    let rt = rt();
    let cursor = tmp.path().join("cursor");

    // Caught up: nothing lags.
    let mut o = options(&dir, &server, "L", Dedup::MsgId);
    o.cursor_file = Some(cursor.clone());
    let r = rt.block_on(Forwarder::new(o).run()).unwrap();
    assert_eq!(r.metrics.acknowledged, 100);
    assert_eq!((r.metrics.lag_records, r.metrics.lag_bytes), (0, 0));

    // Stopped once the first records of 10,000 more are published: the
    // window is drained, the rest is lag, in records and in bytes.
    write_journal(&dir, JournalOptions::default(), 2, 5000, 50);
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut o = options(&dir, &server, "L", Dedup::MsgId);
    o.cursor_file = Some(cursor.clone());
    o.stop = Some(std::sync::Arc::clone(&stop));
    o.progress_interval = Duration::ZERO;
    let flag = std::sync::Arc::clone(&stop);
    o.progress = Some(Box::new(move |m| {
        if m.forwarded > 0 {
            flag.store(true, std::sync::atomic::Ordering::Relaxed);
        }
    }));
    let r = rt.block_on(Forwarder::new(o).run()).unwrap();
    let m = &r.metrics;
    assert!(r.stopped);
    assert!(m.acknowledged > 0 && m.acknowledged < 10_000, "{m:?}");
    assert!(m.lag_records > 0, "{m:?}");
    assert!(m.acknowledged + m.lag_records <= 10_000, "{m:?}");
    let committed = read_cursor_file(&cursor).unwrap().unwrap();
    let end = Reader::open(&dir)
        .unwrap()
        .last()
        .unwrap()
        .unwrap()
        .cursor();
    assert_eq!(m.lag_bytes, end.position() - committed.position(), "{m:?}");
    assert_eq!(m.cursor, Some(committed.to_string()));

    // Run to the end: the lag is gone and every record is there once.
    let mut o = options(&dir, &server, "L", Dedup::MsgId);
    o.cursor_file = Some(cursor.clone());
    let r = rt.block_on(Forwarder::new(o).run()).unwrap();
    assert_eq!((r.metrics.lag_records, r.metrics.lag_bytes), (0, 0));
    assert_eq!(rt.block_on(messages(&server, "L")), 10_100);
}
