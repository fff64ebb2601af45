//! The written position: what the reader has handed to the kernel, ahead of
//! what a sync has made durable; and the segment hint that follows rotation.

use ringlog::journal::{Reader, SyncPolicy};
use ringlog::pipeline::{self, Design, PipelineConfig};
use std::time::{Duration, Instant};

/// Polls `done` until it holds, failing the test after 30 s.
fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !done() {
        assert!(Instant::now() < deadline, "gave up waiting for {what}");
        std::thread::sleep(Duration::from_millis(1));
    }
}

#[test]
fn written_runs_ahead_of_durable_and_the_segment_hint_follows_rotation() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = PipelineConfig::new(dir.path(), Design::DoubleBuffer, 1 << 16, 1);
    // No sync while the test looks: only the shutdown syncs.
    config.journal.sync = SyncPolicy::EveryMillis(3_600_000);
    config.journal.segment_bytes = 4096;
    config.reader_thread_name = "written-test".into();
    let (mut writers, pipe) = pipeline::start(config).unwrap();
    let mut w = writers.pop().unwrap();
    assert_eq!(w.written_seq(), 0);
    let first_segment = w.current_segment();
    for i in 0..10u32 {
        w.append(format!("record {i}").as_bytes(), None).unwrap();
    }
    wait_for("10 records written", || w.written_seq() == 10);
    let in_files = Reader::open(dir.path()).unwrap().count();
    assert_eq!(in_files, 10);
    assert_eq!(pipe.durable_seqs(), vec![0], "nothing was synced yet");
    // Enough to rotate past a 4 KiB segment.
    let payload = [7u8; 512];
    for _ in 0..20 {
        w.append(&payload, None).unwrap();
    }
    wait_for("30 records written", || w.written_seq() == 30);
    assert!(w.current_segment() > first_segment);
    drop(w);
    let report = pipe.shutdown().unwrap();
    assert_eq!(report.durable_records(), 30);
}
