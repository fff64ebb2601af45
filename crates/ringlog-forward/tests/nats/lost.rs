//! A lost publish, provoked: the publishes of one record are dropped (as a
//! message the server never received would be) while later records of the
//! same window go through. The forwarder must notice, keep its cursor
//! before the lost record while it is not stored, and a restart from the
//! cursor must leave every (producer, seq) in the stream. In relaxed order
//! the retried record lands behind later ones and is reported; in strict
//! order the later ones are refused and published again, and the stream
//! ends in journal order.

use crate::{client, common};

use std::path::Path;
use std::time::Duration;

use async_nats::jetstream;
use client::{messages, rt};
use common::write_journal;
use ringlog::journal::{read_cursor_file, write_cursor_file, JournalOptions, Reader};
use ringlog_forward::{
    check_stream, connect, import_stream, Dedup, ForwardError, ForwardOptions, Forwarder,
    ImportOptions, LosePublish, Order, StreamSpec,
};

const PRODUCERS: u32 = 2;
const PER: u64 = 200;
const N: u64 = PRODUCERS as u64 * PER;
/// The lost record, and its index in journal order (producers interleaved).
const LOST: (u32, u64) = (1, 50);
const LOST_INDEX: usize = 100;
const WINDOW: usize = 64;

fn options(dir: &Path, server: &str, stream: &str, dedup: Dedup, order: Order) -> ForwardOptions {
    let mut o = ForwardOptions::new(dir, server, StreamSpec::new(stream));
    o.dedup = dedup;
    o.order = order;
    o.window = WINDOW;
    o.ack_timeout = Duration::from_millis(300);
    o
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
    let mut o = options(&dir, &server, "LOST1", Dedup::MsgId, Order::Relaxed);
    o.lose_publish = Some(LosePublish {
        producer: LOST.0,
        seq: LOST.1,
        lose_for: Duration::ZERO,
        ack_only: false,
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
    let order = Order::Relaxed;
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

    let mut o = options(&dir, &server, stream, dedup, order);
    o.cursor_file = Some(cursor.clone());
    o.retry_for = Some(Duration::from_secs(1));
    o.lose_publish = Some(LosePublish {
        producer: LOST.0,
        seq: LOST.1,
        lose_for: Duration::from_secs(30),
        ack_only: false,
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
    let mut o = options(&dir, &server, stream, dedup, order);
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

/// The (producer, seq) of every message of the stream, in stream order,
/// read back through an import (which writes them in that order).
fn stream_order(
    rt: &tokio::runtime::Runtime,
    server: &str,
    stream: &str,
    out: &Path,
) -> Vec<(u32, u64)> {
    let report = rt
        .block_on(import_stream(ImportOptions::new(
            out,
            server,
            StreamSpec::new(stream),
        )))
        .unwrap();
    assert!(report.is_clean(), "{report:?}");
    Reader::open(out)
        .unwrap()
        .map(|r| r.map(|r| (r.producer, r.seq)).unwrap())
        .collect()
}

fn journal_order(dir: &Path) -> Vec<(u32, u64)> {
    Reader::open(dir)
        .unwrap()
        .map(|r| r.map(|r| (r.producer, r.seq)).unwrap())
        .collect()
}

/// Strict order, the first publish of one record lost: every record once,
/// in journal order. `batch`: in fast-ingest batches, where the server
/// sees the gap and ends the batch; otherwise every publish acknowledged,
/// where the pipelined publishes after it are refused.
fn lost_publish_in_strict_order(batch: bool, stream: &str) {
    let Some(bin) = common::server_or_skip(stream) else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let cluster = common::Cluster::start(&bin, &tmp.path().join("nats"), 1);
    let server = cluster.urls();
    let dir = tmp.path().join("journal");
    write_journal(&dir, JournalOptions::default(), PRODUCERS, PER, 0);
    let journal = journal_order(&dir);
    assert_eq!(journal[LOST_INDEX], LOST);
    let rt = rt();

    // Only the first publish is lost: the pipelined publishes after it are
    // refused (the stream's last message is not the record before them),
    // or in a batch not taken (the batch ends at the gap), and all are
    // published again in order.
    let mut o = options(&dir, &server, stream, Dedup::MsgId, Order::Strict);
    o.batch = batch;
    o.lose_publish = Some(LosePublish {
        producer: LOST.0,
        seq: LOST.1,
        lose_for: Duration::ZERO,
        ack_only: false,
    });
    let cursor = tmp.path().join("cursor");
    o.cursor_file = Some(cursor.clone());
    let r = rt.block_on(Forwarder::new(o).run()).unwrap();
    let m = &r.metrics;
    eprintln!("strict, one lost publish, batch {batch}: {m:?}");
    assert!(m.strict_order, "{m:?}");
    assert_eq!(m.batched, batch, "{m:?}");
    assert_eq!(
        (m.out_of_order, m.forwarded, m.duplicates),
        (0, N, 0),
        "{m:?}"
    );
    if batch {
        // The record lost and those after it that reached the window
        // before the batch ended, in a second batch.
        assert!(m.retried >= 1 && m.batches >= 2, "{m:?}");
        assert_eq!(m.acknowledged + m.already_in_stream, N, "{m:?}");
    } else {
        assert!(
            m.order_refusals >= 1 && m.retried > m.order_refusals,
            "{m:?}"
        );
    }
    assert_cursor_at_end_and_stream_complete(&rt, &dir, &server, stream, &cursor);
    // Exactly the journal's order, every (producer, seq) once.
    assert_eq!(
        stream_order(&rt, &server, stream, &tmp.path().join("imported")),
        journal
    );
}

#[test]
fn a_lost_publish_in_strict_order_leaves_the_stream_in_journal_order() {
    lost_publish_in_strict_order(false, "STRICT1");
}

#[test]
fn a_lost_publish_in_a_batch_leaves_the_stream_in_journal_order() {
    lost_publish_in_strict_order(true, "STRICTB1");
}

#[test]
fn strict_order_a_lost_publish_given_up_and_restarts_store_no_duplicate() {
    let Some(bin) = common::server_or_skip(
        "strict_order_a_lost_publish_given_up_and_restarts_store_no_duplicate",
    ) else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let cluster = common::Cluster::start(&bin, &tmp.path().join("nats"), 1);
    let server = cluster.urls();
    let dir = tmp.path().join("journal");
    write_journal(&dir, JournalOptions::default(), PRODUCERS, PER, 0);
    let records: Vec<_> = Reader::open(&dir).unwrap().map(Result::unwrap).collect();
    let journal = journal_order(&dir);
    let rt = rt();
    let stream = "STRICTR";
    let cursor = tmp.path().join("cursor");

    // Lost for longer than the forwarder retries: it gives up, and nothing
    // after the lost record was stored.
    let mut o = options(&dir, &server, stream, Dedup::MsgId, Order::Auto);
    o.cursor_file = Some(cursor.clone());
    o.retry_for = Some(Duration::from_secs(1));
    o.lose_publish = Some(LosePublish {
        producer: LOST.0,
        seq: LOST.1,
        lose_for: Duration::from_secs(30),
        ack_only: false,
    });
    let err = rt.block_on(Forwarder::new(o).run()).unwrap_err();
    assert!(
        matches!(
            err,
            ForwardError::GaveUp {
                producer: 1,
                seq: 50,
                ..
            }
        ),
        "{err:?}"
    );
    assert_eq!(rt.block_on(messages(&server, stream)), LOST_INDEX as u64);
    assert_eq!(
        read_cursor_file(&cursor).unwrap(),
        Some(records[LOST_INDEX - 1].cursor())
    );

    // A restart from the cursor (the stream created by the first run, so
    // strict by default) stores the rest in order.
    let mut o = options(&dir, &server, stream, Dedup::MsgId, Order::Auto);
    o.cursor_file = Some(cursor.clone());
    let m = rt.block_on(Forwarder::new(o).run()).unwrap().metrics;
    assert!(m.strict_order, "{m:?}");
    assert_eq!(
        (
            m.forwarded,
            m.already_in_stream,
            m.duplicates,
            m.out_of_order
        ),
        (N - LOST_INDEX as u64, 0, 0, 0),
        "{m:?}"
    );

    // A kill after records were acknowledged and before the cursor file
    // said so: the cursor is older than the stream. The restart skips what
    // the stream's last message shows it holds, and stores nothing twice.
    let back = 137;
    write_cursor_file(&cursor, &records[back].cursor()).unwrap();
    let mut o = options(&dir, &server, stream, Dedup::MsgId, Order::Auto);
    o.cursor_file = Some(cursor.clone());
    let m = rt.block_on(Forwarder::new(o).run()).unwrap().metrics;
    assert_eq!(
        (m.forwarded, m.already_in_stream, m.duplicates),
        (0, N - back as u64 - 1, 0),
        "{m:?}"
    );
    // And with no cursor at all: every record is in the stream already.
    let mut o = options(&dir, &server, stream, Dedup::MsgId, Order::Auto);
    o.cursor_file = None;
    let m = rt.block_on(Forwarder::new(o).run()).unwrap().metrics;
    assert_eq!((m.forwarded, m.already_in_stream), (0, N), "{m:?}");

    assert_stream_complete(&rt, &dir, &server, stream);
    assert_eq!(
        stream_order(&rt, &server, stream, &tmp.path().join("imported")),
        journal
    );
}

#[test]
fn strict_order_refuses_a_stream_whose_last_message_is_not_of_the_journal() {
    let Some(bin) = common::server_or_skip(
        "strict_order_refuses_a_stream_whose_last_message_is_not_of_the_journal",
    ) else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let cluster = common::Cluster::start(&bin, &tmp.path().join("nats"), 1);
    let server = cluster.urls();
    let dir = tmp.path().join("journal");
    write_journal(&dir, JournalOptions::default(), PRODUCERS, 5, 0);
    let rt = rt();
    let stream = "FOREIGN";
    rt.block_on(async {
        let js = jetstream::new(connect(&server).await.unwrap());
        ringlog_forward::ensure_stream(&js, &StreamSpec::new(stream))
            .await
            .unwrap();
        js.publish("ringlog.9", "not a record".into())
            .await
            .unwrap()
            .await
            .unwrap();
    });
    let o = options(&dir, &server, stream, Dedup::MsgId, Order::Strict);
    let err = rt.block_on(Forwarder::new(o).run()).unwrap_err();
    assert!(
        matches!(&err, ForwardError::ForeignStream { stream_seq: 1, what, .. } if what.contains("no Ringlog-Record header")),
        "{err:?}"
    );
    // A message with a record's headers that the journal does not hold.
    rt.block_on(async {
        let js = jetstream::new(connect(&server).await.unwrap());
        let mut h = async_nats::HeaderMap::new();
        h.insert(ringlog_forward::HEADER_RECORD, "7 99 1 0x00000000");
        js.publish_with_headers("ringlog.7", h, "x".into())
            .await
            .unwrap()
            .await
            .unwrap();
    });
    let o = options(&dir, &server, stream, Dedup::MsgId, Order::Strict);
    let err = rt.block_on(Forwarder::new(o).run()).unwrap_err();
    assert!(
        matches!(&err, ForwardError::ForeignStream { stream_seq: 2, what, .. } if what.contains("7-99")),
        "{err:?}"
    );
    // A message that names a record the journal holds, with another CRC:
    // the stream holds something else under that record's name.
    rt.block_on(async {
        let js = jetstream::new(connect(&server).await.unwrap());
        let mut h = async_nats::HeaderMap::new();
        h.insert(ringlog_forward::HEADER_RECORD, "1 2 20 0x00000000");
        js.publish_with_headers("ringlog.1", h, "x".into())
            .await
            .unwrap()
            .await
            .unwrap();
    });
    let o = options(&dir, &server, stream, Dedup::MsgId, Order::Strict);
    let err = rt.block_on(Forwarder::new(o).run()).unwrap_err();
    assert!(
        matches!(&err, ForwardError::ForeignStream { stream_seq: 3, what, .. }
            if what.contains("record 1-2 with another CRC than the journal's")),
        "{err:?}"
    );
    // Nothing was published; relaxed order forwards to it.
    assert_eq!(rt.block_on(messages(&server, stream)), 3);
    let o = options(&dir, &server, stream, Dedup::MsgId, Order::Auto);
    let m = rt.block_on(Forwarder::new(o).run()).unwrap().metrics;
    assert!(!m.strict_order, "{m:?}");
    assert_eq!(m.forwarded, PRODUCERS as u64 * 5, "{m:?}");
}

/// The cursor file is after the journal's last record, and the stream
/// holds each of its records once, none missing or out of order.
fn assert_cursor_at_end_and_stream_complete(
    rt: &tokio::runtime::Runtime,
    dir: &Path,
    server: &str,
    stream: &str,
    cursor: &Path,
) {
    let last = Reader::open(dir).unwrap().last().unwrap().unwrap();
    assert_eq!(read_cursor_file(cursor).unwrap(), Some(last.cursor()));
    assert_stream_complete(rt, dir, server, stream);
}

/// The stream holds each of the journal's records once, none missing or
/// out of order.
fn assert_stream_complete(rt: &tokio::runtime::Runtime, dir: &Path, server: &str, stream: &str) {
    let check = rt
        .block_on(check_stream(dir, server, &StreamSpec::new(stream)))
        .unwrap();
    assert_eq!(
        (
            check.messages,
            check.missing,
            check.duplicates,
            check.out_of_order
        ),
        (N, 0, 0, 0),
        "{check:?}"
    );
}

/// A publish stored with its acknowledgement lost. Strict order: its
/// retry would be refused, so the forwarder reads the stream's last
/// message, settles the record as in the stream and publishes nothing
/// again. Relaxed order: it is published again and the server drops it as
/// a duplicate (`Nats-Msg-Id`). Either way the stream holds every record
/// once, and the cursor reaches the end.
fn lost_acknowledgement(order: Order, batch: bool, stream: &str) {
    let Some(bin) = common::server_or_skip(stream) else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let cluster = common::Cluster::start(&bin, &tmp.path().join("nats"), 1);
    let server = cluster.urls();
    let dir = tmp.path().join("journal");
    write_journal(&dir, JournalOptions::default(), PRODUCERS, PER, 0);
    let journal = journal_order(&dir);
    let rt = rt();
    let mut o = options(&dir, &server, stream, Dedup::MsgId, order);
    o.batch = batch;
    o.lose_publish = Some(LosePublish {
        producer: LOST.0,
        seq: LOST.1,
        lose_for: Duration::ZERO,
        ack_only: true,
    });
    // A forwarder that published the stored record again, expecting the
    // sequence it already has, would be refused for ever: give up instead.
    o.retry_for = Some(Duration::from_secs(5));
    // The lost acknowledgement fails at once; a real timeout (a loaded
    // machine, with the 300 ms of the other tests) would add retries that
    // the counts below do not expect.
    o.ack_timeout = Duration::from_secs(2);
    let cursor = tmp.path().join("cursor");
    o.cursor_file = Some(cursor.clone());
    let m = rt.block_on(Forwarder::new(o).run()).unwrap().metrics;
    eprintln!("{order:?}, one lost acknowledgement: {m:?}");
    assert_eq!((m.forwarded, m.out_of_order), (N, 0), "{m:?}");
    if order == Order::Strict && batch {
        // The acknowledgements of the batch from that record on are lost:
        // the batch is given up after the timeout, and the stream's last
        // message settles every record of it that was stored.
        assert!(m.strict_order && m.batched, "{m:?}");
        assert_eq!((m.retried, m.duplicates), (0, 0), "{m:?}");
        assert!(m.already_in_stream >= 1, "{m:?}");
        assert_eq!(m.acknowledged + m.already_in_stream, N, "{m:?}");
    } else if order == Order::Strict {
        assert!(m.strict_order && !m.batched, "{m:?}");
        assert_eq!(
            (
                m.already_in_stream,
                m.retried,
                m.duplicates,
                m.order_refusals
            ),
            (1, 0, 0, 0),
            "{m:?}"
        );
    } else {
        assert_eq!(
            (m.already_in_stream, m.retried, m.duplicates),
            (0, 1, 1),
            "{m:?}"
        );
    }
    assert_cursor_at_end_and_stream_complete(&rt, &dir, &server, stream, &cursor);
    if order == Order::Strict {
        assert_eq!(
            stream_order(&rt, &server, stream, &tmp.path().join("imported")),
            journal
        );
    }
}

#[test]
fn a_lost_acknowledgement_in_strict_order_stores_nothing_twice() {
    lost_acknowledgement(Order::Strict, false, "ACKLOSTS");
}

#[test]
fn a_lost_acknowledgement_in_a_batch_stores_nothing_twice() {
    lost_acknowledgement(Order::Strict, true, "ACKLOSTB");
}

#[test]
fn a_lost_acknowledgement_in_relaxed_order_is_a_duplicate_the_server_drops() {
    lost_acknowledgement(Order::Relaxed, false, "ACKLOSTR");
}
