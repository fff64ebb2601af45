//! Durability against real process death: a child process logs, calls
//! `sync()` after event N, and is SIGKILLed; or panics with the panic hook
//! on and dies without unwinding. The journal must hold every event up to
//! N (resp. before the panic).
//!
//! The child is this test binary run again with `--ignored --exact` on one
//! of the `child_*` entries, told what to do through environment variables.

mod common;

use common::{check_order, records};
use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

const DIR: &str = "RINGLOG_TRACING_CHILD_DIR";
const SYNC_AT: &str = "RINGLOG_TRACING_CHILD_SYNC_AT";

fn child(entry: &str, dir: &std::path::Path, sync_at: u64) -> std::process::Child {
    Command::new(std::env::current_exe().unwrap())
        .args([
            "--ignored",
            "--exact",
            entry,
            "--nocapture",
            "--test-threads=1",
        ])
        .env(DIR, dir)
        .env(SYNC_AT, sync_at.to_string())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| panic!("{name} not set: run by the parent test only"))
}

/// Logs `t=T i=I` events from two threads through the fmt layer; thread 0
/// calls `sync()` after its event N, prints `SYNCED`, and both go on
/// logging until killed.
#[test]
#[ignore = "child process of sigkill_after_sync_keeps_every_event_up_to_n"]
fn child_logs_syncs_and_keeps_logging() {
    let dir = env(DIR);
    let sync_at: u64 = env(SYNC_AT).parse().unwrap();
    let (writer, guard) = ringlog_tracing::Builder::new(&dir)
        .sync_interval(Duration::from_millis(50))
        .max_segment_bytes(256 << 10)
        .build()
        .unwrap();
    let guard = &guard;
    std::thread::scope(|s| {
        for t in 0..2u64 {
            let writer = writer.clone();
            s.spawn(move || {
                let subscriber = tracing_subscriber::fmt()
                    .with_writer(writer)
                    .with_ansi(false)
                    .finish();
                let _default = tracing::subscriber::set_default(subscriber);
                // Some events past the sync, then wait for the kill (a
                // bounded amount of disk).
                for i in 0..sync_at + 50_000 {
                    tracing::info!(t, i, "event");
                    if t == 0 && i == sync_at {
                        guard.sync().unwrap();
                        let mut out = std::io::stdout().lock();
                        writeln!(out, "SYNCED").unwrap();
                        out.flush().unwrap();
                    }
                }
                loop {
                    std::thread::park();
                }
            });
        }
    });
}

#[test]
fn sigkill_after_sync_keeps_every_event_up_to_n() {
    let mut seed = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .subsec_nanos() as u64
        | 1;
    for round in 0..5 {
        // xorshift: a kill point in 0..200_000, printed to reproduce.
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let n = seed % 200_000;
        eprintln!("round {round}: sync after event {n}");
        let dir = tempfile::tempdir().unwrap();
        let mut c = child("child_logs_syncs_and_keeps_logging", dir.path(), n);
        // The harness prints its own lines first.
        let mut line = String::new();
        let mut out = BufReader::new(c.stdout.take().unwrap());
        // Bound the wait: a child that never syncs is killed after 120 s.
        let pid = c.id().to_string();
        let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let watchdog = {
            let done = done.clone();
            std::thread::spawn(move || {
                for _ in 0..1200 {
                    if done.load(std::sync::atomic::Ordering::Relaxed) {
                        return;
                    }
                    std::thread::sleep(Duration::from_millis(100));
                }
                let _ = Command::new("kill").args(["-9", &pid]).status();
            })
        };
        // The harness's "test … ..." precedes SYNCED on its line.
        while !line.trim_end().ends_with("SYNCED") {
            line.clear();
            if out.read_line(&mut line).unwrap() == 0 {
                break;
            }
        }
        // Let it log a little past the sync before the kill.
        std::thread::sleep(Duration::from_millis(u64::from(round as u8) * 7));
        c.kill().unwrap();
        let status = c.wait().unwrap();
        done.store(true, std::sync::atomic::Ordering::Relaxed);
        watchdog.join().unwrap();
        if !line.trim_end().ends_with("SYNCED") {
            let mut err = String::new();
            let _ = std::io::Read::read_to_string(&mut c.stderr.take().unwrap(), &mut err);
            panic!("child did not sync ({status}): {line:?} {err}");
        }
        let (recs, _torn) = records(dir.path());
        // Thread 0 has at least 0..=n, in order; thread 1 is in order too.
        check_order(&recs, 2, 0, false);
        let t0 = recs
            .iter()
            .filter(|r| common::field(common::text(r), "t") == Some(0))
            .count() as u64;
        assert!(
            t0 > n,
            "round {round}: {t0} events of thread 0 durable, synced {}",
            n + 1
        );
    }
}

/// Logs N events then panics on a thread; the main thread aborts the
/// process as soon as the panic is over, so no destructor runs: only the
/// panic hook can have drained the queue and waited for the sync (it
/// reports on stderr if it could not).
#[test]
#[ignore = "child process of panic_hook_syncs_the_events_before_the_panic"]
fn child_logs_then_panics() {
    let dir = env(DIR);
    let n: u64 = env(SYNC_AT).parse().unwrap();
    let (writer, guard) = ringlog_tracing::Builder::new(&dir)
        .sync_interval(Duration::from_millis(100))
        .shutdown_timeout(Some(Duration::from_secs(20)))
        .panic_hook(true)
        .build()
        .unwrap();
    std::mem::forget(guard);
    let h = std::thread::spawn(move || {
        let subscriber = tracing_subscriber::fmt()
            .with_writer(writer)
            .with_ansi(false)
            .finish();
        let _default = tracing::subscriber::set_default(subscriber);
        for i in 0..n {
            tracing::info!(t = 0, i, "before the panic");
        }
        panic!("the child panics after {n} events");
    });
    assert!(h.join().is_err());
    std::process::abort();
}

#[test]
fn panic_hook_syncs_the_events_before_the_panic() {
    let dir = tempfile::tempdir().unwrap();
    const N: u64 = 50_000;
    let c = child("child_logs_then_panics", dir.path(), N);
    let out = c.wait_with_output().unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("the child panics after"), "{stderr}");
    // The hook says so when it could not make the events durable.
    assert!(!stderr.contains("may not be durable"), "{stderr}");
    let (recs, torn) = records(dir.path());
    assert_eq!(torn, None);
    check_order(&recs, 1, N, true);
}
