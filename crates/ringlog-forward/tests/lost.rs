//! A lost publish, provoked: the publishes of one record are dropped (as a
//! message the server never received would be) while later records of the
//! same window go through. The forwarder must notice, keep its cursor
//! before the lost record while it is not stored, and a restart from the
//! cursor must leave every (producer, seq) in the stream.

mod common;

use std::path::Path;
use std::time::Duration;

use async_nats::jetstream;
use common::write_journal;
use ringlog::journal::{read_cursor_file, JournalOptions, Reader};
use ringlog_forward::{
    check_stream, connect, import_stream, Dedup, ForwardError, ForwardOptions, Forwarder,
    ImportOptions, LosePublish, StreamSpec,
};

const PRODUCERS: u32 = 2;
const PER: u64 = 200;
const N: u64 = PRODUCERS as u64 * PER;
/// The lost record, and its index in journal order (producers interleaved).
const LOST: (u32, u64) = (1, 50);
const LOST_INDEX: usize = 100;
const WINDOW: usize = 64;

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

fn options(dir: &Path, server: &str, stream: &str, dedup: Dedup) -> ForwardOptions {
    let mut o = ForwardOptions::new(dir, server, StreamSpec::new(stream));
    o.dedup = dedup;
    o.window = WINDOW;
    o.ack_timeout = Duration::from_millis(300);
    o
}

async fn messages(server: &str, stream: &str) -> u64 {
    let js = jetstream::new(connect(server).await.unwrap());
    js.get_stream(stream)
        .await
        .unwrap()
        .info()
        .await
        .unwrap()
        .state
        .messages
}

#[test]
fn a_lost_publish_retried_is_stored_out_of_order_and_reported() {
    let Some(bin) =
        common::server_or_skip("a_lost_publish_retried_is_stored_out_of_order_and_reported")
    else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let cluster = common::Cluster::start(&bin, &tmp.path().join("nats"), 1);
    let server = cluster.urls();
    let dir = tmp.path().join("journal");
    write_journal(&dir, JournalOptions::default(), PRODUCERS, PER, 0);
    let journal: Vec<_> = Reader::open(&dir).unwrap().map(Result::unwrap).collect();
    assert_eq!(
        (journal[LOST_INDEX].producer, journal[LOST_INDEX].seq),
        LOST
    );
    let rt = rt();

    // Only the first publish is lost: the retry is stored, behind the
    // records after it that went through.
    let mut o = options(&dir, &server, "LOST1", Dedup::MsgId);
    o.lose_publish = Some(LosePublish {
        producer: LOST.0,
        seq: LOST.1,
        lose_for: Duration::ZERO,
    });
    let cursor = tmp.path().join("cursor");
    o.cursor_file = Some(cursor.clone());
    let r = rt.block_on(Forwarder::new(o).run()).unwrap();
    let m = &r.metrics;
    assert_eq!(m.out_of_order, 1, "{m:?}");
    assert!(m.retried >= 1, "{m:?}");
    let why = m.last_error.as_deref().unwrap_or_default();
    assert!(
        why.contains("record 1-50 stored at stream sequence"),
        "{why}"
    );
    // It is in the stream now, so the cursor passed it.
    assert_eq!(
        read_cursor_file(&cursor).unwrap(),
        Some(journal.last().unwrap().cursor())
    );
    let check = rt
        .block_on(check_stream(&dir, &server, &StreamSpec::new("LOST1")))
        .unwrap();
    assert_eq!(
        (
            check.messages,
            check.missing,
            check.duplicates,
            check.out_of_order
        ),
        (N, 0, 0, 1),
        "{check:?}"
    );
    eprintln!("stream after a retried lost publish: {check:?}");

    // Importing that stream says so: the late record is not written, the
    // journal it makes has a gap where it was.
    let out = tmp.path().join("imported");
    let report = rt
        .block_on(import_stream(ImportOptions::new(
            &out,
            &server,
            StreamSpec::new("LOST1"),
        )))
        .unwrap();
    assert!(!report.is_clean(), "{report:?}");
    assert_eq!(
        (report.written, report.out_of_order, report.gaps),
        (N - 1, 1, 1),
        "{report:?}"
    );
    assert!(
        report
            .problems
            .iter()
            .any(|p| p.contains("(1-50): out of order")),
        "{report:?}"
    );
}

/// The record's publishes are lost for longer than the forwarder retries:
/// it gives up with the typed error, its cursor stays before the lost
/// record although later ones were acknowledged, and a restart from the
/// cursor stores the lost record (behind the later ones: the stream is
/// complete but out of order for that producer).
fn lost_then_restart(dedup: Dedup, stream: &str) {
    let Some(bin) = common::server_or_skip("a_lost_publish_holds_the_cursor") else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let cluster = common::Cluster::start(&bin, &tmp.path().join("nats"), 1);
    let server = cluster.urls();
    let dir = tmp.path().join("journal");
    write_journal(&dir, JournalOptions::default(), PRODUCERS, PER, 0);
    let journal: Vec<_> = Reader::open(&dir).unwrap().map(Result::unwrap).collect();
    let rt = rt();
    let spec = StreamSpec::new(stream);
    let cursor = tmp.path().join("cursor");

    let mut o = options(&dir, &server, stream, dedup);
    o.cursor_file = Some(cursor.clone());
    o.retry_for = Some(Duration::from_secs(1));
    o.lose_publish = Some(LosePublish {
        producer: LOST.0,
        seq: LOST.1,
        lose_for: Duration::from_secs(30),
    });
    let err = rt.block_on(Forwarder::new(o).run()).unwrap_err();
    assert!(
        matches!(err, ForwardError::GaveUp { producer: 1, seq: 50, attempts, .. } if attempts >= 1),
        "{err:?}"
    );
    // Later records of the window were stored and acknowledged, yet the
    // cursor stays after the record before the lost one.
    let stored = rt.block_on(messages(&server, stream));
    assert!(stored > LOST_INDEX as u64, "{stored} stored");
    assert_eq!(
        read_cursor_file(&cursor).unwrap(),
        Some(journal[LOST_INDEX - 1].cursor())
    );
    let check = rt.block_on(check_stream(&dir, &server, &spec)).unwrap();
    assert!(
        check
            .problems
            .iter()
            .any(|p| p == "1-50: missing from the stream"),
        "{check:?}"
    );
    assert_eq!(check.missing, N - stored, "{check:?}");

    // A restart from the cursor, without the fault.
    let mut o = options(&dir, &server, stream, dedup);
    o.cursor_file = Some(cursor.clone());
    let r = rt.block_on(Forwarder::new(o).run()).unwrap();
    let m = &r.metrics;
    let later = stored - LOST_INDEX as u64;
    match dedup {
        // The records after the lost one that the server holds are sent
        // again and dropped by it as duplicates.
        Dedup::MsgId => assert_eq!(m.duplicates, later, "{m:?}"),
        // Producer 2's are skipped. Producer 1's subject lacks a sequence
        // number below its last, so none of its records is skipped (the
        // lost one would be lost for good): they are sent again and dropped
        // as duplicates.
        Dedup::LastSubject => {
            assert_eq!(m.incomplete_producers, 1, "{m:?}");
            assert!(m.already_in_stream > 0 && m.duplicates > 0, "{m:?}");
            assert_eq!(m.duplicates + m.already_in_stream, later, "{m:?}");
            let why = m.last_error.as_deref().unwrap_or_default();
            assert!(why.starts_with("producer 1: the stream holds"), "{why}");
        }
    }
    assert_eq!(
        read_cursor_file(&cursor).unwrap(),
        Some(journal.last().unwrap().cursor())
    );
    let check = rt.block_on(check_stream(&dir, &server, &spec)).unwrap();
    eprintln!("{stream}: first run stored {stored}, restart {m:?}, stream {check:?}");
    assert_eq!(
        (
            check.messages,
            check.missing,
            check.duplicates,
            check.out_of_order
        ),
        (N, 0, 0, 1),
        "{check:?}"
    );
    assert!(
        check
            .problems
            .iter()
            .any(|p| p.starts_with("1-50: out of order at stream sequence")),
        "{check:?}"
    );
}

#[test]
fn a_lost_publish_holds_the_cursor_and_a_restart_repairs_the_stream_msg_id() {
    lost_then_restart(Dedup::MsgId, "LOSTM");
}

#[test]
fn a_lost_publish_holds_the_cursor_and_a_restart_repairs_the_stream_last_subject() {
    lost_then_restart(Dedup::LastSubject, "LOSTL");
}
