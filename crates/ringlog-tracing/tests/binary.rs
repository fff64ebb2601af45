//! The binary layer end to end: events from several threads, mixed with
//! fmt lines, read back and formatted; definitions repeated per segment so
//! that what retention leaves is still readable.

mod common;

use common::records;
use ringlog::journal::verify;
use ringlog_tracing::binary::{is_binary, Shown, TextDecoder};
use ringlog_tracing::{BinaryLayer, Builder};
use tracing_subscriber::layer::SubscriberExt;

/// Every line the decoder shows (text records as they are), in journal order.
fn lines(dir: &std::path::Path) -> Vec<String> {
    let (recs, err) = records(dir);
    assert_eq!(err, None);
    let mut d = TextDecoder::default();
    let mut out = Vec::new();
    for r in &recs {
        let mut line = String::new();
        match d.show(r.timestamp, &r.payload, &mut line) {
            Shown::Line => out.push(line),
            Shown::Definition => {}
            Shown::NotBinary => out.push(String::from_utf8(r.payload.clone()).unwrap()),
        }
    }
    out
}

/// `2026-12-01T10:00:00.123456Z` is 27 bytes; what follows it.
fn after_time(line: &str) -> &str {
    &line[27..]
}

#[test]
fn events_of_several_threads_read_back_formatted_and_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let (writer, guard) = Builder::new(dir.path()).build().unwrap();
    const THREADS: u64 = 3;
    const EVENTS: u64 = 2000;
    std::thread::scope(|s| {
        for t in 0..THREADS {
            let writer = writer.clone();
            std::thread::Builder::new()
                .name(format!("worker-{t}"))
                .spawn_scoped(s, move || {
                    let subscriber = tracing_subscriber::registry().with(BinaryLayer::new(&writer));
                    tracing::subscriber::with_default(subscriber, || {
                        for i in 0..EVENTS {
                            tracing::info!(target: "app", t, i, neg = -1i64, ratio = 0.5, ok = true, name = "x y", "served");
                            if i % 500 == 0 {
                                tracing::warn!(target: "app::slow", t, i, value = ?Some(i), "slow {}", i);
                            }
                        }
                    });
                })
                .unwrap();
        }
    });
    let report = guard.shutdown().unwrap();
    assert_eq!(
        (report.dropped, report.rejected, report.io_errors),
        (0, 0, 0)
    );
    assert!(verify(dir.path()).unwrap().is_clean());
    let lines = lines(dir.path());
    let mut next = [0u64; THREADS as usize];
    let mut slow = 0;
    for line in &lines {
        let rest = after_time(line);
        if rest.starts_with("  WARN") {
            slow += 1;
            assert!(rest.contains(" app::slow: slow "), "{line}");
            continue;
        }
        let t = rest
            .strip_prefix("  INFO worker-")
            .and_then(|r| r.chars().next())
            .and_then(|c| c.to_digit(10))
            .unwrap_or_else(|| panic!("{line}")) as usize;
        let want = format!(
            "  INFO worker-{t} app: served t={t} i={} neg=-1 ratio=0.5 ok=true name=\"x y\"",
            next[t]
        );
        assert_eq!(rest, want);
        next[t] += 1;
    }
    assert_eq!(next, [EVENTS; THREADS as usize]);
    assert_eq!(slow, THREADS * 4);
    let t0_slow = lines.iter().find(|l| l.contains("WARN worker-0")).unwrap();
    assert_eq!(
        after_time(t0_slow),
        "  WARN worker-0 app::slow: slow 0 t=0 i=0 value=Some(0)"
    );
}

#[test]
fn fmt_lines_and_binary_events_of_one_thread_share_its_producer_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let (writer, guard) = Builder::new(dir.path()).build().unwrap();
    let subscriber = tracing_subscriber::registry()
        .with(BinaryLayer::new(&writer))
        .with(
            tracing_subscriber::fmt::layer()
                .with_writer(writer.clone())
                .with_ansi(false)
                .with_thread_names(true),
        );
    tracing::subscriber::with_default(subscriber, || {
        for i in 0..10u64 {
            tracing::info!(target: "app", i, "both");
        }
    });
    drop(guard);
    let (recs, _) = records(dir.path());
    let producers: std::collections::HashSet<u32> = recs.iter().map(|r| r.producer).collect();
    assert_eq!(producers.len(), 1);
    let lines = lines(dir.path());
    assert_eq!(lines.len(), 20);
    // Each binary event, then the fmt layer's line for it: the same text
    // after the time.
    for pair in lines.chunks(2) {
        assert_eq!(after_time(&pair[0]), after_time(&pair[1]), "{pair:?}");
    }
}

#[test]
fn each_segment_left_by_retention_carries_its_definitions() {
    let dir = tempfile::tempdir().unwrap();
    let (writer, guard) = Builder::new(dir.path())
        .max_segment_bytes(8 << 10)
        .max_files(3)
        .build()
        .unwrap();
    let subscriber = tracing_subscriber::registry().with(BinaryLayer::new(&writer));
    tracing::subscriber::with_default(subscriber, || {
        for i in 0..5000u64 {
            tracing::info!(target: "app", i, "rotating");
            if i % 50 == 0 {
                // Let the reader take a batch, so that the writer learns
                // of rotations as a live application would.
                guard.flush().unwrap();
            }
        }
    });
    let report = guard.shutdown().unwrap();
    assert!(report.reader.records > 5000);
    let (recs, _) = records(dir.path());
    let first_segment = recs[0].segment;
    assert!(first_segment > 1, "retention deleted the oldest segments");
    let lines = lines(dir.path());
    // Only the events of the one batch after each rotation may lack their
    // definitions; with a flush every 50 events, none reaches the segments
    // kept unresolved except those.
    let unresolved = lines.iter().filter(|l| l.contains("callsite=")).count();
    let resolved: Vec<&String> = lines
        .iter()
        .filter(|l| l.contains(" app: rotating i="))
        .collect();
    assert!(unresolved <= 3 * 50, "{unresolved} unresolved");
    assert!(resolved.len() > 100, "{} resolved", resolved.len());
    let last = resolved.last().unwrap();
    assert!(last.ends_with("rotating i=4999"), "{last}");
    // Every record of the format decodes.
    assert!(!lines.iter().any(|l| l.starts_with("binary record (")));
    assert!(recs.iter().all(|r| is_binary(&r.payload)));
}

#[test]
fn events_in_nested_spans_read_back_with_the_fmt_layers_span_prefix() {
    let dir = tempfile::tempdir().unwrap();
    let (writer, guard) = Builder::new(dir.path()).build().unwrap();
    let subscriber = tracing_subscriber::registry()
        .with(BinaryLayer::new(&writer))
        .with(
            tracing_subscriber::fmt::layer()
                .with_writer(writer.clone())
                .with_ansi(false)
                .with_thread_names(true),
        );
    tracing::subscriber::with_default(subscriber, || {
        tracing::info!(target: "app", "before any span");
        let conn = tracing::info_span!("conn", peer = "10.0.0.1", port = 443u64, tls = true);
        let _c = conn.enter();
        tracing::info!(target: "app", "connected");
        for id in 0..3u64 {
            let req = tracing::info_span!("request", id, path = ?"/a b");
            let _r = req.enter();
            let empty = tracing::debug_span!("parse");
            empty.in_scope(|| tracing::warn!(target: "app::parse", n = -1i64, "slow {}", id));
            // Values recorded after the span was made are shown after the
            // others, as the fmt layer shows them.
            let late = tracing::info_span!("db", table = "users", rows = tracing::field::Empty);
            late.record("rows", 2 * id);
            late.in_scope(|| tracing::info!(target: "app::db", "query"));
            tracing::info!(target: "app", ok = true, "served");
        }
        // An explicit parent, outside the current scope.
        let other = tracing::info_span!(parent: None, "background", job = 9u64);
        tracing::info!(target: "app", parent: &other, "explicit");
    });
    drop(guard);
    let lines = lines(dir.path());
    assert_eq!(lines.len(), 2 * 12);
    // Each binary event, then the fmt layer's line for it: the same text
    // after the time, spans and all.
    for pair in lines.chunks(2) {
        assert_eq!(after_time(&pair[0]), after_time(&pair[1]), "{pair:?}");
    }
    let binary: Vec<&str> = lines.iter().step_by(2).map(|l| after_time(l)).collect();
    let thread = binary[0]
        .strip_prefix("  INFO ")
        .and_then(|r| r.split(' ').next())
        .unwrap();
    let conn = "conn{peer=\"10.0.0.1\" port=443 tls=true}:";
    assert_eq!(binary[0], format!("  INFO {thread} app: before any span"));
    assert_eq!(binary[1], format!("  INFO {thread} {conn} app: connected"));
    assert_eq!(
        binary[2],
        format!(
            "  WARN {thread} {conn}request{{id=0 path=\"/a b\"}}:parse: app::parse: slow 0 n=-1"
        )
    );
    assert_eq!(
        binary[9],
        format!("  INFO {thread} {conn}request{{id=2 path=\"/a b\"}}:db{{table=\"users\" rows=4}}: app::db: query")
    );
    assert_eq!(
        binary[11],
        format!("  INFO {thread} background{{job=9}}: app: explicit")
    );
}

#[test]
fn spans_entered_on_other_threads_are_defined_for_each_producer() {
    let dir = tempfile::tempdir().unwrap();
    let (writer, guard) = Builder::new(dir.path()).build().unwrap();
    let subscriber = tracing_subscriber::registry().with(BinaryLayer::new(&writer));
    let dispatch = tracing::Dispatch::new(subscriber);
    const THREADS: u64 = 3;
    const EVENTS: u64 = 200;
    tracing::dispatcher::with_default(&dispatch, || {
        // Made on this thread, which logs nothing in it: every producer
        // that does must carry its definition.
        let batch = tracing::info_span!("batch", size = 3u64);
        std::thread::scope(|s| {
            for t in 0..THREADS {
                let (batch, dispatch) = (batch.clone(), dispatch.clone());
                std::thread::Builder::new()
                    .name(format!("worker-{t}"))
                    .spawn_scoped(s, move || {
                        tracing::dispatcher::with_default(&dispatch, || {
                            let _b = batch.enter();
                            let job = tracing::info_span!("job", t);
                            let _j = job.enter();
                            for i in 0..EVENTS {
                                tracing::info!(target: "app", i, "step");
                            }
                        });
                    })
                    .unwrap();
            }
        });
        // Then entered here, after the others used it.
        batch.in_scope(|| tracing::info!(target: "app", "done"));
    });
    drop(dispatch);
    drop(guard);
    let lines = lines(dir.path());
    assert_eq!(lines.len() as u64, THREADS * EVENTS + 1);
    let mut next = [0u64; THREADS as usize];
    for line in &lines[..lines.len() - 1] {
        let rest = after_time(line);
        let t = rest
            .strip_prefix("  INFO worker-")
            .and_then(|r| r.chars().next())
            .and_then(|c| c.to_digit(10))
            .unwrap_or_else(|| panic!("{line}")) as usize;
        let want = format!(
            "  INFO worker-{t} batch{{size=3}}:job{{t={t}}}: app: step i={}",
            next[t]
        );
        assert_eq!(rest, want);
        next[t] += 1;
    }
    assert_eq!(next, [EVENTS; THREADS as usize]);
    let last = after_time(lines.last().unwrap());
    assert!(last.ends_with(" batch{size=3}: app: done"), "{last}");
}

#[test]
fn two_subscribers_on_one_thread_each_show_their_own_spans() {
    let dir = tempfile::tempdir().unwrap();
    let (writer, guard) = Builder::new(dir.path()).build().unwrap();
    let layer = BinaryLayer::new(&writer);
    let outer = tracing::Dispatch::new(tracing_subscriber::registry().with(layer.clone()));
    let inner = tracing::Dispatch::new(tracing_subscriber::registry().with(layer));
    tracing::dispatcher::with_default(&outer, || {
        let a = tracing::info_span!("a", n = 1u64);
        let _a = a.enter();
        tracing::info!(target: "app", "in a");
        tracing::dispatcher::with_default(&inner, || {
            // The outer subscriber's span is not this one's current span.
            tracing::info!(target: "app", "in no span of inner");
            let b = tracing::info_span!("b", n = 2u64);
            b.in_scope(|| tracing::info!(target: "app", "in b"));
            tracing::info!(target: "app", "in no span of inner again");
        });
        tracing::info!(target: "app", "in a again");
    });
    drop((outer, inner));
    drop(guard);
    let lines: Vec<String> = lines(dir.path())
        .iter()
        // After the level and the thread's name.
        .map(|l| {
            after_time(l)
                .trim_start()
                .splitn(3, ' ')
                .nth(2)
                .unwrap()
                .to_owned()
        })
        .collect();
    assert_eq!(
        lines,
        [
            "a{n=1}: app: in a",
            "app: in no span of inner",
            "b{n=2}: app: in b",
            "app: in no span of inner again",
            "a{n=1}: app: in a again",
        ]
    );
}
