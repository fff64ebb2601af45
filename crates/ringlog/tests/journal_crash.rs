//! Crash test: this test binary re-executes itself as a child that appends
//! and syncs in a loop, printing after every sync the last synced sequence
//! number of each producer. The parent kills the child with SIGKILL at a
//! random moment, then opens the journal (recovery) and verifies it: each
//! producer's records must form a gap-free prefix containing every record
//! the child reported as synced. Repeated on one journal directory, so each
//! child also recovers from its predecessor's crash.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use ringlog::journal::{frame_into_vec, verify, Journal, JournalOptions, SyncPolicy};

const CHILD_ENV: &str = "RINGLOG_JOURNAL_CRASH_CHILD_DIR";
const PRODUCERS: u32 = 3;
const KILLS: usize = 36;

fn options() -> JournalOptions {
    JournalOptions {
        segment_bytes: 256 << 10,
        sync: SyncPolicy::Never,
        ..Default::default()
    }
}

struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

fn seed() -> u64 {
    let t = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64;
    (t ^ u64::from(std::process::id()).rotate_left(32)) | 1
}

/// The child's loop: resume each producer after its last recovered record,
/// append random batches, sync every few batches, report.
fn child(dir: &Path) {
    let mut journal = Journal::open(dir, options()).expect("child open");
    let report = verify(dir).expect("child verify");
    let mut next: Vec<u64> = (0..PRODUCERS)
        .map(|p| report.producers.get(&p).map_or(0, |r| r.last_seq + 1))
        .collect();
    let mut rng = XorShift(seed());
    let mut batch = Vec::new();
    let mut payload = vec![0u8; 4096];
    let mut batches = 0u64;
    println!("ready");
    loop {
        batch.clear();
        for _ in 0..1 + rng.next() % 32 {
            let p = (rng.next() % u64::from(PRODUCERS)) as u32;
            let len = (rng.next() % 4000) as usize;
            for b in &mut payload[..len] {
                *b = rng.next() as u8;
            }
            frame_into_vec(&mut batch, p, next[p as usize], 0, &payload[..len]).unwrap();
            next[p as usize] += 1;
        }
        journal.append_frames(&batch).expect("child append");
        batches += 1;
        if batches % 2 == 0 {
            let durable = journal.sync().expect("child sync");
            let synced: Vec<String> = next.iter().map(|n| n.to_string()).collect();
            // One line per sync: "synced <durable position> <next seq of each producer>".
            println!("synced {durable} {}", synced.join(" "));
        }
    }
}

#[test]
#[ignore = "the child side of journal_crash; runs only when re-executed by it"]
fn crash_child() {
    if let Some(dir) = std::env::var_os(CHILD_ENV) {
        child(Path::new(&dir));
    }
}

#[test]
#[cfg_attr(miri, ignore = "spawns and kills processes")]
fn sigkill_at_random_moments_always_recovers_a_valid_prefix() {
    let dir = tempfile::tempdir().unwrap();
    let exe = std::env::current_exe().unwrap();
    let mut rng = XorShift(seed());
    let mut reported_syncs = 0usize;
    for round in 0..KILLS {
        let mut child = Command::new(&exe)
            .args([
                "crash_child",
                "--exact",
                "--ignored",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHILD_ENV, dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        let (ready_tx, ready_rx) = mpsc::channel();
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                // libtest's "test crash_child ... " has no newline, so the
                // child's first line arrives glued to it.
                if line.ends_with("ready") {
                    let _ = ready_tx.send(());
                } else if let Some(rest) = line.find("synced ").map(|i| &line[i + 7..]) {
                    let nums: Vec<u64> = rest.split(' ').map(|n| n.parse().unwrap()).collect();
                    let _ = tx.send(nums);
                }
            }
        });
        // Odd rounds count from the spawn, so some kills land during the
        // child's own recovery; even rounds count from when it is appending.
        if round % 2 == 0 {
            // A child that never gets ready is killed after the timeout
            // and its journal checked all the same.
            let _ = ready_rx.recv_timeout(Duration::from_secs(10));
        }
        std::thread::sleep(Duration::from_millis(20 + rng.next() % 61));
        child.kill().unwrap(); // SIGKILL
        let status = child.wait().unwrap();
        // The pipe closes with the child; bound the wait anyway.
        let deadline = Instant::now() + Duration::from_secs(10);
        while !reader.is_finished() {
            assert!(
                Instant::now() < deadline,
                "round {round}: stdout reader hung"
            );
            std::thread::sleep(Duration::from_millis(1));
        }
        reader.join().unwrap();
        let last = rx.try_iter().last();
        if status.code().is_some() {
            let mut err = String::new();
            std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut err).unwrap();
            panic!("round {round}: child exited by itself ({status}): {err}");
        }

        let journal = Journal::open(dir.path(), options())
            .unwrap_or_else(|e| panic!("round {round}: recovery failed: {e}"));
        let position = journal.position();
        drop(journal);
        let report = verify(dir.path()).unwrap();
        assert!(report.is_clean(), "round {round}: {report:?}");
        if let Some(nums) = last {
            reported_syncs += 1;
            assert!(
                position >= nums[0],
                "round {round}: durable {} lost",
                nums[0]
            );
            for p in 0..PRODUCERS {
                let synced_next = nums[1 + p as usize];
                if synced_next == 0 {
                    continue;
                }
                let got = &report.producers[&p];
                assert_eq!(got.first_seq, 0, "round {round} producer {p}");
                assert!(
                    got.last_seq + 1 >= synced_next,
                    "round {round} producer {p}: synced up to {} but recovered up to {}",
                    synced_next - 1,
                    got.last_seq
                );
            }
        }
    }
    let report = verify(dir.path()).unwrap();
    eprintln!(
        "{KILLS} kills, {reported_syncs} with a reported sync; {} records, {} bytes recovered",
        report.records, report.frame_bytes
    );
    assert!(
        reported_syncs > 0,
        "no child ever got to sync before being killed"
    );
}
