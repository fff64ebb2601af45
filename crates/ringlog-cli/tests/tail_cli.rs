//! `ringlog tail` with real processes: SIGKILL at random moments while a
//! writer appends, restarts from the cursor file, and what the output
//! holds; filters; refusals.

use std::io::BufRead;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use ringlog::journal::{Journal, JournalOptions, Reader, Retention, SyncPolicy};

const BIN: &str = env!("CARGO_BIN_EXE_ringlog");

/// Records printed after the last cursor write at most (`tail --help`).
const DOCUMENTED_REPEATS: usize = 4096;

fn xorshift(x: &mut u64) -> u64 {
    *x ^= *x << 13;
    *x ^= *x >> 7;
    *x ^= *x << 17;
    *x
}

/// The (segment, offset) of every complete line of a run's output; a last
/// line cut by the kill is dropped (the next run prints it again).
fn positions(path: &Path) -> Vec<(u64, u64)> {
    let bytes = std::fs::read(path).unwrap();
    let mut out = Vec::new();
    for line in bytes.split_inclusive(|&b| b == b'\n') {
        if !line.ends_with(b"\n") {
            break;
        }
        let v: serde_json::Value = serde_json::from_slice(line)
            .unwrap_or_else(|e| panic!("{}: bad line {e}", path.display()));
        out.push((
            v["segment"].as_u64().unwrap(),
            v["offset"].as_u64().unwrap(),
        ));
    }
    out
}

#[test]
fn tail_killed_at_random_moments_never_skips_and_repeats_at_most_a_batch() {
    let dir = tempfile::tempdir().unwrap();
    let journal_dir = dir.path().join("journal");
    let cursor = dir.path().join("cursor");
    let options = JournalOptions {
        segment_bytes: 256 << 10,
        sync: SyncPolicy::Never,
        ..Default::default()
    };
    let mut journal = Journal::open(&journal_dir, options).unwrap();
    journal.append(0, 0, 0, b"first").unwrap();
    // The writer appends until the kills are over (bounded, should the test
    // hang), so that every run has new records to print however slowly a
    // loaded machine starts the processes.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writer_stop = stop.clone();
    let writer = std::thread::spawn(move || {
        let start = Instant::now();
        let mut seq = [1u64, 0, 0];
        let mut n = 0u64;
        while !writer_stop.load(std::sync::atomic::Ordering::Relaxed)
            && start.elapsed() < Duration::from_secs(120)
        {
            for _ in 0..50 {
                let p = (n % 3) as usize;
                let payload = format!(
                    "producer {p} record {} {}",
                    seq[p],
                    "x".repeat((n % 300) as usize)
                );
                journal
                    .append(p as u32, seq[p], n, payload.as_bytes())
                    .unwrap();
                seq[p] += 1;
                n += 1;
            }
            // tail prints what is durable.
            journal.sync().unwrap();
            std::thread::sleep(Duration::from_millis(2));
        }
        journal.sync().unwrap();
        n + 1
    });

    let mut rng = 0x9e37_79b9_7f4a_7c15u64;
    let mut outputs = Vec::new();
    for run in 0..20 {
        let out_path = dir.path().join(format!("out-{run:02}"));
        let out = std::fs::File::create(&out_path).unwrap();
        let mut child = Command::new(BIN)
            .args(["tail", "--follow", "--format", "jsonl", "--cursor"])
            .arg(&cursor)
            .arg(&journal_dir)
            .stdout(out)
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        if run % 2 == 1 {
            // Every other run is killed only after it printed something, so
            // that at least half of the runs print (the assertion below).
            let deadline = Instant::now() + Duration::from_secs(30);
            while std::fs::metadata(&out_path).unwrap().len() == 0 && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(5));
            }
        }
        // Then a random moment; the other runs may die anywhere from
        // start-up on.
        std::thread::sleep(Duration::from_millis(30 + xorshift(&mut rng) % 250));
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        outputs.push(out_path);
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let total = writer.join().unwrap() as usize;
    // A last run without --follow prints the rest and exits.
    let out_path = dir.path().join("out-final");
    let status = Command::new(BIN)
        .args(["tail", "--format", "jsonl", "--cursor"])
        .arg(&cursor)
        .arg(&journal_dir)
        .stdout(std::fs::File::create(&out_path).unwrap())
        .status()
        .unwrap();
    assert!(status.success());
    outputs.push(out_path);

    let journal: Vec<(u64, u64)> = Reader::open(&journal_dir)
        .unwrap()
        .map(|r| r.map(|r| (r.segment, r.offset)).unwrap())
        .collect();
    assert_eq!(journal.len(), total);
    let index: std::collections::HashMap<(u64, u64), usize> =
        journal.iter().enumerate().map(|(i, &p)| (p, i)).collect();
    let mut next = 0usize; // journal index the output has reached
    let mut repeated = 0usize;
    let mut runs_with_output = 0;
    for path in &outputs {
        let run = positions(path);
        let Some(first) = run.first() else { continue };
        runs_with_output += 1;
        let k = index[first];
        assert!(
            k <= next,
            "{}: gap: starts at record {k}, expected {next}",
            path.display()
        );
        assert!(
            next - k <= DOCUMENTED_REPEATS,
            "{}: repeats {} records",
            path.display(),
            next - k
        );
        repeated += next - k;
        for (i, p) in run.iter().enumerate() {
            assert_eq!(
                index[p],
                k + i,
                "{}: out of order at line {i}",
                path.display()
            );
        }
        next = k + run.len();
    }
    assert_eq!(next, total, "every record printed");
    assert!(
        runs_with_output >= 10,
        "only {runs_with_output} runs printed"
    );
    eprintln!("{total} records, {runs_with_output} runs printed, {repeated} repeated");
}

fn small_journal(dir: &Path, retention: Retention) -> Journal {
    let options = JournalOptions {
        segment_bytes: 1024,
        sync: SyncPolicy::Never,
        retention,
        ..Default::default()
    };
    Journal::open(dir, options).unwrap()
}

#[test]
fn filters_formats_and_usage_errors() {
    let dir = tempfile::tempdir().unwrap();
    let mut j = small_journal(dir.path(), Retention::default());
    for seq in 0..300u64 {
        let p = (seq % 3) as u32;
        j.append(p, seq / 3, 1_000 + seq, format!("event {seq}").as_bytes())
            .unwrap();
    }
    j.sync().unwrap();
    drop(j);
    let d = dir.path().to_str().unwrap();
    let run = |args: &[&str]| Command::new(BIN).arg("tail").args(args).output().unwrap();
    let o = run(&[d, "--producer", "1", "--seq-from", "10", "--seq-to", "12"]);
    assert!(o.status.success());
    let text = String::from_utf8(o.stdout).unwrap();
    let seqs: Vec<&str> = text.lines().map(|l| l.split(' ').nth(2).unwrap()).collect();
    assert_eq!(seqs, ["10", "11", "12"], "{text}");
    let o = run(&[d, "--since", "@1290", "--until", "@1292", "--format", "csv"]);
    let text = String::from_utf8(o.stdout).unwrap();
    assert_eq!(text.lines().count(), 4, "{text}");
    assert!(
        text.lines().nth(1).unwrap().ends_with("utf8,\"event 290\""),
        "{text}"
    );
    let o = run(&[
        d,
        "--from-start",
        "--grep",
        "^event 29[0-9]$",
        "--format",
        "raw",
    ]);
    assert_eq!(
        String::from_utf8(o.stdout).unwrap(),
        (290..300).map(|i| format!("event {i}")).collect::<String>()
    );
    // Index built, then used: same answers.
    let o = run(&[d, "--index", "build", "--since", "@1200"]);
    let built = String::from_utf8(o.stdout).unwrap();
    assert!(std::fs::read_dir(dir.path()).unwrap().any(|e| e
        .unwrap()
        .file_name()
        .to_string_lossy()
        .ends_with(".rlx")));
    let o = run(&[d, "--since", "@1200"]);
    assert_eq!(String::from_utf8(o.stdout).unwrap(), built);
    assert_eq!(built.lines().count(), 100);

    for bad in [
        vec![d, "--since", "tomorrow"],
        vec![d, "--since", "@5", "--until", "@4"],
        vec![d, "--grep", "("],
        vec![d, "--seq-from", "5", "--seq-to", "4"],
    ] {
        let o = run(&bad);
        assert_eq!(o.status.code(), Some(2), "{bad:?}");
        assert!(String::from_utf8_lossy(&o.stderr).starts_with("ringlog: error: "));
    }
    let o = run(&["/nonexistent/journal"]);
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("/nonexistent/journal") && err.contains("os error 2"),
        "{err}"
    );
    let o = run(&["--help"]);
    let help = String::from_utf8_lossy(&o.stdout);
    assert!(help.contains("kill -9"), "{help}");
}

#[test]
fn tail_starts_with_the_last_records_and_prints_only_what_is_durable() {
    let dir = tempfile::tempdir().unwrap();
    let mut j = small_journal(dir.path(), Retention::default());
    for seq in 0..300u64 {
        j.append(
            (seq % 3) as u32,
            seq / 3,
            seq,
            format!("event {seq}").as_bytes(),
        )
        .unwrap();
    }
    j.sync().unwrap();
    let d = dir.path().to_str().unwrap();
    let payloads = |args: &[&str]| -> Vec<String> {
        let o = Command::new(BIN)
            .arg("tail")
            .arg(d)
            .args(args)
            .args(["--format", "csv"])
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        String::from_utf8(o.stdout)
            .unwrap()
            .lines()
            .skip(1)
            .map(|l| l.rsplit(',').next().unwrap().trim_matches('"').to_owned())
            .collect()
    };
    let want = |r: std::ops::Range<u64>| r.map(|i| format!("event {i}")).collect::<Vec<_>>();
    // Across segments (of 4 KiB): the last 10, the last 150, none, all.
    assert_eq!(payloads(&[]), want(290..300));
    assert_eq!(payloads(&["-n", "150"]), want(150..300));
    assert_eq!(payloads(&["-n", "0"]), want(0..0));
    assert_eq!(payloads(&["-n", "1000"]), want(0..300));
    assert_eq!(payloads(&["--from-start"]), want(0..300));
    // -n counts the records the filters select.
    let p1 = payloads(&["-n", "2", "--producer", "1"]);
    assert_eq!(p1, ["event 295", "event 298"]);
    // Written, not synced: printed only with --unsynced.
    j.append(0, 100, 300, b"event 300").unwrap();
    assert_eq!(payloads(&["-n", "1"]), want(299..300));
    assert_eq!(payloads(&["-n", "1", "--unsynced"]), want(300..301));
    j.sync().unwrap();
    assert_eq!(payloads(&["-n", "1"]), want(300..301));
}

#[test]
fn a_cursor_past_retention_is_refused_unless_gaps_are_allowed() {
    let dir = tempfile::tempdir().unwrap();
    let journal_dir = dir.path().join("j");
    let cursor = dir.path().join("cursor");
    let mut j = small_journal(
        &journal_dir,
        Retention {
            max_segments: Some(2),
            max_bytes: None,
        },
    );
    j.append(1, 0, 0, b"one").unwrap();
    j.sync().unwrap();
    let tail = |extra: &[&str]| {
        Command::new(BIN)
            .arg("tail")
            .arg(&journal_dir)
            .arg("--cursor")
            .arg(&cursor)
            .args(extra)
            .output()
            .unwrap()
    };
    let o = tail(&[]);
    assert!(o.status.success());
    assert_eq!(o.stdout.lines().count(), 1);
    for seq in 1..100u64 {
        j.append(1, seq, 0, &[b'z'; 40]).unwrap();
    }
    j.sync().unwrap();
    let before = std::fs::read(&cursor).unwrap();
    let o = tail(&[]);
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("--allow-gap") && err.contains("gone"), "{err}");
    assert_eq!(std::fs::read(&cursor).unwrap(), before, "cursor untouched");
    let o = tail(&["--allow-gap"]);
    assert_eq!(
        o.status.code(),
        Some(1),
        "a gap is a failure without --follow"
    );
    assert!(String::from_utf8_lossy(&o.stderr).contains("records lost"));
    assert!(o.stdout.lines().count() > 5);
    // The cursor moved past the gap: the next run prints nothing and is clean.
    let o = tail(&[]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(o.stdout.lines().count(), 0);
}
