//! Crash test of the `ringlog` binary: `ringlog run --sync batch` is killed
//! with SIGKILL at random moments, again and again on one journal
//! directory. After every kill:
//!
//! - `verify` says clean (0) or "only a torn tail" (3), never damage (1);
//! - `recover` cuts what the kill left and exits 0, and `verify` is then clean;
//! - every record the run's `--progress-json` file reported durable is in the
//!   journal, and each writer's sequence numbers are gap-free from 0.
//!
//! Each run continues the journal its killed predecessor left, so this is
//! also the restart test; a last run to completion continues it once more.
//! Small segments make the kills land during rotation too.

use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

const KILLS: usize = 30;
const WRITERS: usize = 3;

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_ringlog"))
}

fn ringlog(args: &[&str]) -> Output {
    bin().args(args).output().expect("run ringlog")
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// Kills the child on every path, so a failed assertion never leaves a
/// writer filling the disk.
struct Guard(Child);

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
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

fn verify_json(out: &str) -> (i32, serde_json::Value) {
    let o = ringlog(&["verify", out, "--json"]);
    let code = o.status.code().expect("verify exited");
    let v = serde_json::from_slice(&o.stdout)
        .unwrap_or_else(|e| panic!("verify --json output ({e}): {}", text(&o)));
    (code, v)
}

/// The last line of a progress file: `durable_seq` per writer.
fn last_durable(progress: &Path) -> Vec<u64> {
    let Ok(body) = std::fs::read_to_string(progress) else {
        return vec![0; WRITERS];
    };
    // A kill may cut the last line short: take the last complete one.
    body.lines()
        .rev()
        .find_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .map(|v| {
            v["durable_seq"]
                .as_array()
                .expect("durable_seq array")
                .iter()
                .map(|d| d.as_u64().expect("durable_seq number"))
                .collect()
        })
        .unwrap_or_else(|| vec![0; WRITERS])
}

fn wait_for_start(progress: &Path, child: &mut Child) {
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(60) {
        if std::fs::metadata(progress).is_ok_and(|m| m.len() > 0) {
            return;
        }
        if let Some(status) = child.try_wait().expect("try_wait") {
            panic!("run ended before it started: {status}");
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    panic!("run did not start within 60 s");
}

fn run_args<'a>(
    out: &'a str,
    progress: &'a str,
    seed: &'a str,
    limit: &'a [&'a str],
) -> Vec<&'a str> {
    let mut a = vec![
        "run",
        "--writers",
        "3",
        "--capacity",
        "1MiB",
        "--min-size",
        "10",
        "--max-size",
        "1000",
        "--segment-size",
        "256KiB",
        "--sync",
        "batch",
        "--output",
        out,
        "--progress-json",
        progress,
        "--seed",
        seed,
        "--quiet",
    ];
    a.extend_from_slice(limit);
    a
}

#[test]
fn sigkill_at_random_moments_never_loses_a_durable_record() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("journal");
    let out_s = out.to_str().unwrap();
    let seed = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
        | 1;
    println!("crash test seed {seed}");
    let mut rng = XorShift(seed);
    let mut torn = 0;
    for kill in 0..KILLS {
        let progress = dir.path().join(format!("progress-{kill}.jsonl"));
        let seed_s = kill.to_string();
        // Each run stops by itself after 16 MiB, so the journal stays small.
        let args = run_args(
            out_s,
            progress.to_str().unwrap(),
            &seed_s,
            &["--bytes", "16MiB"],
        );
        let mut child = Guard(
            bin()
                .args(&args)
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .expect("spawn run"),
        );
        wait_for_start(&progress, &mut child.0);
        std::thread::sleep(Duration::from_millis(20 + rng.next() % 700));
        drop(child); // SIGKILL, then reap

        let (code, v) = verify_json(out_s);
        assert!(
            code == 0 || code == 3,
            "kill {kill} (seed {seed}): verify exit {code}, status {}: {v:#}",
            v["status"]
        );
        if code == 3 {
            torn += 1;
        }
        let o = ringlog(&["recover", out_s]);
        assert_eq!(
            o.status.code(),
            Some(0),
            "kill {kill}: recover: {}",
            text(&o)
        );
        let (code, v) = verify_json(out_s);
        assert_eq!(code, 0, "kill {kill}: verify after recover: {v:#}");

        let durable = last_durable(&progress);
        for (w, &d) in durable.iter().enumerate() {
            let p = &v["producers"][w.to_string()];
            let records = p["records"].as_u64().unwrap_or(0);
            assert!(
                records >= d,
                "kill {kill} (seed {seed}): writer {w} reported {d} durable records, journal holds {records}"
            );
            if records > 0 {
                assert_eq!(p["first_seq"], 0, "kill {kill}: writer {w}");
                assert_eq!(
                    p["last_seq"].as_u64(),
                    Some(records - 1),
                    "kill {kill}: writer {w}"
                );
            }
        }
    }
    println!("{torn} of {KILLS} kills left a torn tail for recovery to cut");

    // A restarted run continues the journal and ends cleanly.
    let (_, before) = verify_json(out_s);
    let progress = dir.path().join("progress-final.jsonl");
    let o = ringlog(&run_args(
        out_s,
        progress.to_str().unwrap(),
        "99",
        &["--records", "3000"],
    ));
    assert!(o.status.success(), "final run: {}", text(&o));
    let (code, after) = verify_json(out_s);
    assert_eq!(code, 0, "{after:#}");
    assert_eq!(
        after["records"].as_u64().unwrap(),
        before["records"].as_u64().unwrap() + 3000
    );
}
