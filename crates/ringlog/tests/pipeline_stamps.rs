//! Small records are stamped by the writer (a tick counter) and sealed by
//! the reader (wall-clock time, CRC-32C), larger ones sealed by the writer:
//! what lands in the journal must be a valid frame whose timestamp is the
//! moment of the append, in every queue design.

use ringlog::journal::{self, Reader, SyncPolicy};
use ringlog::pipeline::{self, Design, PipelineConfig};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

fn wall_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
}

/// Slack for the conversion of ticks to wall-clock time: the anchors'
/// jitter and the rate's error over a short run are far below this.
const SLACK_NS: u64 = 200_000;

#[test]
fn every_design_stores_the_wall_clock_time_of_the_append_and_a_valid_crc() {
    for design in [Design::DoubleBuffer, Design::FanIn, Design::SharedRing] {
        let dir = tempfile::tempdir().unwrap();
        let mut config = PipelineConfig::new(dir.path(), design, 1 << 16, 2);
        config.journal.sync = SyncPolicy::EveryMillis(10);
        let (writers, pipe) = pipeline::start(config).unwrap();
        let threads: Vec<_> = writers
            .into_iter()
            .map(|mut w| {
                std::thread::spawn(move || {
                    let mut windows = Vec::new();
                    for i in 0..2_000u32 {
                        let before = wall_ns();
                        // Lengths on both sides of the size up to which the
                        // reader seals a record and above which its writer does.
                        let pad = if i % 3 == 0 {
                            200 + i as usize % 400
                        } else {
                            i as usize % 50
                        };
                        let payload = format!("{} {i} {}", w.id(), "x".repeat(pad));
                        let seq = w.append(payload.as_bytes(), None).unwrap();
                        windows.push((seq, before, wall_ns(), payload));
                        if i % 500 == 0 {
                            // Let the reader catch up and sleep, so batches
                            // and anchors of every size are exercised.
                            std::thread::sleep(Duration::from_millis(3));
                        }
                    }
                    (w.id(), windows)
                })
            })
            .collect();
        let mut want = Vec::new();
        for t in threads {
            want.push(t.join().unwrap());
        }
        pipe.shutdown().unwrap();
        let report = journal::verify(dir.path()).unwrap();
        assert!(report.is_clean(), "{design:?}: {report:?}");
        let mut got = std::collections::HashMap::new();
        for r in Reader::open(dir.path()).unwrap() {
            let r = r.unwrap();
            got.insert((r.producer, r.seq), (r.timestamp, r.payload));
        }
        assert_eq!(got.len(), 4_000, "{design:?}");
        for (id, windows) in want {
            for (seq, before, after, payload) in windows {
                let (ts, stored) = &got[&(id, seq)];
                assert_eq!(stored, payload.as_bytes(), "{design:?} {id}/{seq}");
                assert!(
                    *ts + SLACK_NS >= before && *ts <= after + SLACK_NS,
                    "{design:?} {id}/{seq}: stamped {ts}, appended in [{before}, {after}]"
                );
            }
        }
    }
}
