//! A pipeline started on a directory that already holds a journal continues
//! it: each writer carries on its producer's sequence, after a clean stop
//! and after a process that was killed mid-run, so the journal verifies
//! clean after any number of runs. A damaged journal is refused.

use ringlog::journal::{verify, Journal, JournalOptions, Reader, SyncPolicy};
use ringlog::pipeline::{self, Design, PipelineConfig, PipelineError};
use ringlog::wait::deadline_after;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

fn config(dir: &Path, design: Design, writers: usize) -> PipelineConfig {
    let mut c = PipelineConfig::new(dir, design, 1 << 16, writers);
    c.journal.sync = SyncPolicy::EveryMillis(5);
    c.journal.segment_bytes = 8 << 10;
    c
}

/// Runs one pipeline: each writer appends `n` records; returns the first
/// sequence numbers it was given.
fn one_run(dir: &Path, design: Design, writers: usize, n: u64) -> Vec<u64> {
    let (ws, pipe) = pipeline::start(config(dir, design, writers)).unwrap();
    let first = pipe.first_seqs().to_vec();
    let threads: Vec<_> = ws
        .into_iter()
        .map(|mut w| {
            std::thread::spawn(move || {
                for i in 0..n {
                    let seq = w
                        .append(format!("w{} r{i}", w.id()).as_bytes(), None)
                        .unwrap();
                    assert_eq!(seq, w.next_seq() - 1);
                }
            })
        })
        .collect();
    threads.into_iter().for_each(|t| t.join().unwrap());
    let report = pipe.shutdown().unwrap();
    assert_eq!(report.records, n * writers as u64);
    for (i, w) in report.writers.iter().enumerate() {
        assert_eq!(w.first_seq, first[i]);
        assert_eq!(w.records, n);
        assert_eq!(w.durable_seq, first[i] + n, "writer {i} all durable");
    }
    first
}

fn seqs_of(dir: &Path, producer: u32) -> Vec<u64> {
    Reader::open(dir)
        .unwrap()
        .producer(producer)
        .map(|r| r.unwrap().seq)
        .collect()
}

#[test]
#[cfg_attr(miri, ignore = "files and threads")]
fn a_second_and_third_run_continue_every_writers_sequence() {
    for design in [Design::DoubleBuffer, Design::FanIn, Design::SharedRing] {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(one_run(dir.path(), design, 2, 300), [0, 0]);
        assert_eq!(one_run(dir.path(), design, 2, 200), [300, 300]);
        // More writers than before: the new one starts at 0.
        assert_eq!(one_run(dir.path(), design, 3, 100), [500, 500, 0]);
        let v = verify(dir.path()).unwrap();
        assert!(v.is_clean(), "{design:?}: {v:?}");
        assert_eq!(v.records, 1300);
        assert_eq!(seqs_of(dir.path(), 0), (0..600).collect::<Vec<_>>());
        assert_eq!(seqs_of(dir.path(), 2), (0..100).collect::<Vec<_>>());
    }
}

#[test]
#[cfg_attr(miri, ignore = "files and threads")]
fn a_pipeline_dropped_without_shutdown_is_continued_too() {
    let dir = tempfile::tempdir().unwrap();
    {
        let (mut ws, pipe) = pipeline::start(config(dir.path(), Design::FanIn, 1)).unwrap();
        for i in 0..50u32 {
            ws[0].append(&i.to_le_bytes(), None).unwrap();
        }
        drop(ws);
        drop(pipe);
    }
    assert_eq!(one_run(dir.path(), Design::FanIn, 1, 10), [50]);
    assert!(verify(dir.path()).unwrap().is_clean());
    assert_eq!(seqs_of(dir.path(), 0), (0..60).collect::<Vec<_>>());
}

/// The child half of the kill test: runs a pipeline into
/// `RINGLOG_RESTART_CHILD_DIR`, prints every durable sequence it has been
/// acknowledged, and appends until it is killed.
#[test]
#[ignore = "run as a child process by killed_run_is_continued_and_keeps_every_acknowledged_record"]
fn child_appends_until_killed() {
    let dir = std::env::var("RINGLOG_RESTART_CHILD_DIR").expect("run by the parent test");
    let (mut ws, _pipe) =
        pipeline::start(config(Path::new(&dir), Design::DoubleBuffer, 1)).unwrap();
    let w = &mut ws[0];
    for i in 0u64.. {
        let seq = w.append(&i.to_le_bytes(), None).unwrap();
        if i % 64 == 0 && w.wait_durable(seq, deadline_after(Some(Duration::from_secs(10)))) {
            println!("durable {seq}");
        }
    }
}

#[test]
#[cfg_attr(miri, ignore = "processes")]
fn killed_run_is_continued_and_keeps_every_acknowledged_record() {
    use std::io::{BufRead, BufReader};
    let dir = tempfile::tempdir().unwrap();
    let mut acked = None;
    for round in 0..3 {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args([
                "--ignored",
                "--exact",
                "child_appends_until_killed",
                "--nocapture",
                "--test-threads=1",
            ])
            .env("RINGLOG_RESTART_CHILD_DIR", dir.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let out = BufReader::new(child.stdout.take().unwrap());
        let mut seen = 0;
        for line in out.lines() {
            let line = line.unwrap();
            if let Some(s) = line.strip_prefix("durable ") {
                acked = Some(s.parse::<u64>().unwrap());
                seen += 1;
                if seen == 20 + round * 7 {
                    break;
                }
            }
        }
        child.kill().unwrap();
        child.wait().unwrap();
        let acked = acked.expect("the child acknowledged records");
        // Reopening recovers; the next run starts after every record that
        // survived, which includes every acknowledged one.
        let first = one_run(dir.path(), Design::DoubleBuffer, 1, 25);
        assert!(first[0] > acked, "round {round}: {} <= {acked}", first[0]);
        let v = verify(dir.path()).unwrap();
        assert!(v.is_clean(), "round {round}: {v:?}");
        let seqs = seqs_of(dir.path(), 0);
        assert_eq!(seqs, (0..first[0] + 25).collect::<Vec<_>>());
    }
}

#[test]
#[cfg_attr(miri, ignore = "touches files")]
fn a_damaged_journal_is_refused_not_continued() {
    let dir = tempfile::tempdir().unwrap();
    let mut j = Journal::open(dir.path(), JournalOptions::default()).unwrap();
    j.append(0, 0, 0, b"a").unwrap();
    j.append(0, 5, 0, b"gap").unwrap();
    j.sync().unwrap();
    drop(j);
    let err = pipeline::start(config(dir.path(), Design::DoubleBuffer, 1)).unwrap_err();
    assert!(matches!(err, PipelineError::Damaged { .. }), "{err}");
    let msg = err.to_string();
    assert!(msg.contains("ringlog recover"), "{msg}");
    assert!(msg.contains(&dir.path().display().to_string()), "{msg}");
}

#[test]
#[cfg_attr(miri, ignore = "touches files")]
fn invalid_queue_settings_are_refused_before_the_directory_is_created() {
    let parent = tempfile::tempdir().unwrap();
    let dir = parent.path().join("never-created");
    let mut c = config(&dir, Design::DoubleBuffer, 1);
    c.queue.buffers = 3;
    assert!(matches!(pipeline::start(c), Err(PipelineError::Queue(_))));
    let c = config(&dir, Design::SharedRing, 1000);
    assert!(matches!(pipeline::start(c), Err(PipelineError::Queue(_))));
    assert!(!dir.exists());
}
