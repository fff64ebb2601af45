//! The pipeline over a file layer that runs out of space: the error is
//! reported while the reader retries, writers feel back-pressure, and once
//! space is freed every record — in particular every one acknowledged as
//! durable — is in the journal, exactly once and in order.

use ringlog::journal::{verify, FaultyFs, Journal, Reader};
use ringlog::pipeline::{self, Design, PipelineConfig};
use ringlog::wait::deadline_after;
use std::time::{Duration, Instant};

#[test]
#[cfg_attr(miri, ignore = "files and threads")]
fn enospc_is_reported_and_nothing_acknowledged_is_lost() {
    let dir = tempfile::tempdir().unwrap();
    let fs = FaultyFs::new();
    let mut config = PipelineConfig::new(dir.path(), Design::DoubleBuffer, 64 << 10, 2);
    config.journal.sync = ringlog::journal::SyncPolicy::EveryBatch;
    let journal = Journal::open_with(fs.clone(), dir.path(), config.journal).unwrap();
    fs.set_space_left(Some(200 << 10));
    let (writers, pipe) = pipeline::start_with_journal(config, journal).unwrap();
    let per_writer = 2_000u64;
    let threads: Vec<_> = writers
        .into_iter()
        .map(|mut w| {
            std::thread::spawn(move || {
                let mut acked = None;
                for i in 0..per_writer {
                    let payload = format!(
                        "writer {} record {i} {}",
                        w.id(),
                        "x".repeat((i % 300) as usize)
                    );
                    let seq = w
                        .append(
                            payload.as_bytes(),
                            deadline_after(Some(Duration::from_secs(60))),
                        )
                        .unwrap();
                    if i % 100 == 0
                        && w.wait_durable(seq, deadline_after(Some(Duration::from_millis(1))))
                    {
                        acked = Some(seq);
                    }
                }
                let last = w.next_seq() - 1;
                assert!(
                    w.wait_durable(last, deadline_after(Some(Duration::from_secs(60)))),
                    "writer {} last {last}",
                    w.id()
                );
                (w.id(), acked, last)
            })
        })
        .collect();
    let deadline = Instant::now() + Duration::from_secs(30);
    while pipe.sink_error().is_none() {
        assert!(
            Instant::now() < deadline,
            "the sink never reported running out of space"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    let err = pipe.sink_error().unwrap();
    assert!(err.contains("space"), "{err}");
    fs.clear();
    let results: Vec<_> = threads.into_iter().map(|t| t.join().unwrap()).collect();
    let report = pipe.shutdown().unwrap();
    assert!(report.write_errors > 0);
    assert_eq!(report.records, 2 * per_writer);
    // `EveryBatch` syncs inside each append: the report counts those too.
    assert!(
        report.syncs >= report.batches,
        "{} syncs for {} batches",
        report.syncs,
        report.batches
    );
    for (id, _acked, last) in &results {
        assert_eq!(*last, per_writer - 1, "writer {id}");
    }
    let v = verify(dir.path()).unwrap();
    assert!(v.is_clean(), "{v:?}");
    assert_eq!(v.records, 2 * per_writer);
    for id in 0..2u32 {
        let seqs: Vec<u64> = Reader::open(dir.path())
            .unwrap()
            .producer(id)
            .map(|r| r.unwrap().seq)
            .collect();
        assert_eq!(seqs, (0..per_writer).collect::<Vec<_>>());
    }
}

#[test]
#[cfg_attr(miri, ignore = "files and threads")]
fn durable_wait_returns_after_shutdown() {
    let dir = tempfile::tempdir().unwrap();
    let config = PipelineConfig::new(dir.path(), Design::FanIn, 64 << 10, 1);
    let (mut writers, pipe) = pipeline::start(config).unwrap();
    let mut w = writers.pop().unwrap();
    let seq = w.append(b"before", None).unwrap();
    assert!(w.wait_durable(seq, None));
    pipe.shutdown().unwrap();
    // The reader is gone: a record queued now is never persisted, and the
    // wait says so instead of hanging.
    if let Ok(seq) = w.append(b"after", deadline_after(Some(Duration::from_millis(100)))) {
        assert!(!w.wait_durable(seq, None));
    }
}
