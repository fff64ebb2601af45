//! A pipeline on a disk that fills up and stays full: batches keep the
//! whole frames that fit, the reader retries for the configured time and
//! then stops with `SinkFailed` carrying its report, and the journal holds
//! exactly what the report says, as a clean prefix of every writer.

use ringlog::bytes::ClaimError;
use ringlog::journal::{verify, FaultyFs, Journal, Reader, SyncPolicy};
use ringlog::pipeline::{self, AppendError, Design, PipelineConfig, PipelineError};
use ringlog::wait::deadline_after;
use std::time::Duration;

#[test]
#[cfg_attr(miri, ignore = "files and threads")]
fn a_full_disk_keeps_what_fits_and_stops_after_the_retry_bound() {
    for design in [Design::DoubleBuffer, Design::FanIn] {
        let dir = tempfile::tempdir().unwrap();
        let fs = FaultyFs::new();
        // One queue buffer holds far more than the disk: with all-or-nothing
        // batches the journal would keep nothing.
        let mut config = PipelineConfig::new(dir.path(), design, 1 << 20, 2);
        config.journal.sync = SyncPolicy::EveryMillis(10);
        config.sink_retry = Duration::from_millis(300);
        let journal = Journal::open_with(fs.clone(), dir.path(), config.journal).unwrap();
        let room = 150_000u64;
        fs.set_space_left(Some(room));
        let (writers, pipe) = pipeline::start_with_journal(config, journal).unwrap();
        let threads: Vec<_> = writers
            .into_iter()
            .map(|mut w| {
                std::thread::spawn(move || loop {
                    let payload = [w.id() as u8; 300];
                    match w.append(&payload, deadline_after(Some(Duration::from_millis(50)))) {
                        Ok(_) | Err(AppendError::Queue(ClaimError::Timeout)) => {}
                        Err(AppendError::Queue(ClaimError::Disconnected)) => return,
                        Err(e) => panic!("{e}"),
                    }
                })
            })
            .collect();
        threads.into_iter().for_each(|t| t.join().unwrap());
        let err = pipe.shutdown().unwrap_err();
        let PipelineError::SinkFailed {
            retried,
            report,
            source,
        } = err
        else {
            panic!("{design:?}: {err}");
        };
        assert!(source.is_no_space(), "{source}");
        assert!(retried >= Duration::from_millis(300), "{retried:?}");
        assert!(report.write_errors > 0);
        // Most of the room holds whole frames (a frame is 336 bytes).
        assert!(
            report.frame_bytes > room / 2,
            "{design:?}: {} bytes kept of {room}",
            report.frame_bytes
        );
        assert!(report.payload_bytes < report.frame_bytes);
        assert_eq!(report.payload_bytes, report.records * 300);
        let v = verify(dir.path()).unwrap();
        assert!(v.is_clean(), "{design:?}: {v:?}");
        assert_eq!(v.records, report.records);
        for (id, w) in report.writers.iter().enumerate() {
            let seqs: Vec<u64> = Reader::open(dir.path())
                .unwrap()
                .producer(id as u32)
                .map(|r| r.unwrap().seq)
                .collect();
            assert_eq!(seqs, (0..w.records).collect::<Vec<_>>(), "writer {id}");
            // Everything appended was synced before the reader stopped.
            assert_eq!(w.durable_seq, w.records, "writer {id}");
        }
        assert!(report.durable_records() == report.records);
    }
}
