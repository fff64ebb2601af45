//! `ringlog run` and `ringlog shm serve` with a journal already in the
//! output directory: invalid settings are refused (exit 2, one line naming
//! the option) without touching a byte of it; a second run continues it;
//! `--overwrite` replaces it; `--progress-json` tells what is durable; a
//! full disk ends the run with exit 1 and a journal that verifies.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

fn ringlog(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ringlog"))
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run ringlog")
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// Every file under `dir` (recursively) with its contents.
fn snapshot(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.insert(p.clone(), std::fs::read(&p).unwrap());
            }
        }
    }
    out
}

fn run_json(args: &[&str]) -> serde_json::Value {
    let mut all = vec!["run", "--json"];
    all.extend_from_slice(args);
    let o = ringlog(&all);
    assert!(o.status.success(), "{args:?}: {}", text(&o));
    serde_json::from_slice(&o.stdout).unwrap()
}

fn seqs(dir: &Path, producer: u32) -> Vec<u64> {
    ringlog::journal::Reader::open(dir)
        .unwrap()
        .producer(producer)
        .map(|r| r.unwrap().seq)
        .collect()
}

fn assert_clean(dir: &Path) -> ringlog::journal::VerifyReport {
    let v = ringlog::journal::verify(dir).unwrap();
    assert!(v.is_clean(), "{v:?}");
    v
}

#[test]
fn invalid_settings_exit_2_and_leave_an_existing_journal_byte_identical() {
    let tmp = tempfile::tempdir().unwrap();
    let j = tmp.path().join("journal");
    let js = j.to_str().unwrap();
    run_json(&["--records", "2000", "--capacity", "1MiB", "--output", js]);
    std::fs::write(j.join("notes.txt"), b"not part of the journal").unwrap();
    let before = snapshot(&j);
    assert!(before.len() >= 2);
    let segment = j.join("00000000000000000001.rlj");
    let seg_s = segment.to_str().unwrap().to_owned();
    let missing = tmp.path().join("no-such-dir").join("p.jsonl");
    let missing_s = missing.to_str().unwrap().to_owned();
    let file = tmp.path().join("a-file");
    std::fs::write(&file, b"x").unwrap();
    let file_s = file.to_str().unwrap().to_owned();
    // (arguments, the option the message must name)
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (vec!["--writers", "0"], "--writers"),
        (vec!["--writers", "65"], "--writers"),
        (vec!["--writers", "100000"], "--writers"),
        (vec!["--design", "fan-in", "--writers", "257"], "--writers"),
        (vec!["--capacity", "0"], "--capacity"),
        (vec!["--capacity", "1"], "--capacity"),
        (vec!["--capacity", "4KiB"], "--capacity"),
        (vec!["--capacity", "1TiB"], "--capacity"),
        (
            vec!["--design", "fan-in", "--capacity", "1TiB"],
            "--capacity",
        ),
        (
            vec!["--design", "shared-ring", "--capacity", "8GiB"],
            "--capacity",
        ),
        (vec!["--buffers", "0"], "--buffers"),
        (vec!["--buffers", "1"], "--buffers"),
        (vec!["--buffers", "3"], "--buffers"),
        (vec!["--min-size", "0"], "--min-size"),
        (vec!["--min-size", "100", "--max-size", "50"], "--min-size"),
        (vec!["--max-size", "18446744073709551615"], "--max-size"),
        (vec!["--max-size", "1000000000000"], "--max-size"),
        (vec!["--max-size", "67108865"], "--max-size"),
        (
            vec!["--capacity", "64KiB", "--max-size", "40000"],
            "--max-size",
        ),
        (vec!["--progress-json", &seg_s], "--progress-json"),
        (vec!["--progress-json", &missing_s], "--progress-json"),
        (vec!["--progress-json", js], "--progress-json"),
        (vec!["--overwrite", "--buffers", "3"], "--buffers"),
    ];
    for (extra, option) in &cases {
        let mut args = vec!["run", "--records", "100", "--output", js];
        args.extend_from_slice(extra);
        let o = ringlog(&args);
        let err = String::from_utf8_lossy(&o.stderr).into_owned();
        assert_eq!(o.status.code(), Some(2), "{extra:?}: {}", text(&o));
        assert_eq!(err.lines().count(), 1, "{extra:?}: one line: {err}");
        assert!(err.starts_with("ringlog: error: "), "{extra:?}: {err}");
        assert!(err.contains(option), "{extra:?}: names {option}: {err}");
        assert!(!err.contains("panicked"), "{extra:?}: {err}");
        assert_eq!(snapshot(&j), before, "{extra:?} changed the journal");
    }
    // --output that is a file, not a directory.
    let o = ringlog(&["run", "--records", "10", "--output", &file_s]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(String::from_utf8_lossy(&o.stderr).contains("--output"));
    assert_eq!(std::fs::read(&file).unwrap(), b"x");
    // The shared-memory server, with the same journal as its output.
    let name = format!("/ringlog-run-cli-{}", std::process::id());
    for (extra, option) in [
        (vec![], "--resume"),
        (vec!["--producers", "0", "--overwrite"], "--producers"),
        (vec!["--producers", "100000", "--overwrite"], "--producers"),
        (vec!["--capacity", "0", "--overwrite"], "--capacity"),
        (vec!["--capacity", "1", "--overwrite"], "--capacity"),
        (vec!["--capacity", "2TiB", "--overwrite"], "--capacity"),
    ] {
        let mut args = vec!["shm", "serve", "--name", &name, "--output", js];
        args.extend_from_slice(&extra);
        args.extend_from_slice(&["--duration", "1s"]);
        let o = ringlog(&args);
        let err = String::from_utf8_lossy(&o.stderr).into_owned();
        assert_eq!(o.status.code(), Some(2), "shm {extra:?}: {}", text(&o));
        assert_eq!(err.lines().count(), 1, "shm {extra:?}: {err}");
        assert!(err.contains(option), "shm {extra:?}: names {option}: {err}");
        assert_eq!(snapshot(&j), before, "shm {extra:?} changed the journal");
    }
    let o = ringlog(&[
        "shm",
        "produce",
        "--name",
        &name,
        "--records",
        "1",
        "--max-size",
        "18446744073709551615",
        "--connect-timeout",
        "0s",
    ]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(String::from_utf8_lossy(&o.stderr).contains("--max-size"));
    assert_clean(&j);
}

#[test]
fn a_second_run_continues_the_journal_and_it_verifies_clean() {
    let tmp = tempfile::tempdir().unwrap();
    let j = tmp.path().join("journal");
    let js = j.to_str().unwrap();
    let common = ["--records", "3000", "--capacity", "1MiB", "--output", js];
    let first = run_json(&common);
    assert_eq!(first["journal"], "new");
    assert_eq!(first["records"], 3000);
    let second = run_json(&common);
    assert_eq!(second["journal"], "continued");
    assert_eq!(second["records_before"], 3000);
    for w in second["per_writer"].as_array().unwrap() {
        assert_eq!(w["first_seq"], 750, "{w}");
        assert_eq!(w["durable_seq"], 1500, "{w}");
        assert_eq!(w["durable_records"], 750, "{w}");
    }
    // A third run with another design and more writers.
    let third = run_json(&[
        "--records",
        "600",
        "--writers",
        "6",
        "--design",
        "fan-in",
        "--capacity",
        "1MiB",
        "--output",
        js,
    ]);
    assert_eq!(third["journal"], "continued");
    let v = assert_clean(&j);
    assert_eq!(v.records, 6600);
    for p in 0..4 {
        assert_eq!(seqs(&j, p), (0..1600).collect::<Vec<_>>(), "producer {p}");
    }
    assert_eq!(seqs(&j, 5), (0..100).collect::<Vec<_>>());
    let o = ringlog(&["verify", js]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
}

#[test]
fn overwrite_replaces_only_the_journal_and_help_says_so() {
    let tmp = tempfile::tempdir().unwrap();
    let j = tmp.path().join("journal");
    let js = j.to_str().unwrap();
    run_json(&["--records", "4000", "--capacity", "1MiB", "--output", js]);
    std::fs::write(j.join("notes.txt"), b"keep me").unwrap();
    let r = run_json(&[
        "--records",
        "1000",
        "--capacity",
        "1MiB",
        "--output",
        js,
        "--overwrite",
    ]);
    assert_eq!(r["journal"], "replaced");
    let v = assert_clean(&j);
    assert_eq!(v.records, 1000);
    assert_eq!(seqs(&j, 0), (0..250).collect::<Vec<_>>());
    assert_eq!(std::fs::read(j.join("notes.txt")).unwrap(), b"keep me");
    let help = text(&ringlog(&["run", "--help"]));
    assert!(help.contains("--overwrite"), "{help}");
    assert!(help.contains("continued"), "{help}");
}

#[test]
fn the_report_tells_payload_from_frame_bytes() {
    let tmp = tempfile::tempdir().unwrap();
    let j = tmp.path().join("journal");
    let js = j.to_str().unwrap();
    let r = run_json(&[
        "--records",
        "1000",
        "--min-size",
        "8",
        "--max-size",
        "8",
        "--capacity",
        "1MiB",
        "--output",
        js,
    ]);
    assert_eq!(r["payload_bytes"], 8000);
    assert_eq!(r["frame_bytes"], 1000 * 40);
    let writers = r["per_writer"].as_array().unwrap();
    let payload: u64 = writers
        .iter()
        .map(|w| w["payload_bytes"].as_u64().unwrap())
        .sum();
    assert_eq!(payload, 8000);
    let o = ringlog(&[
        "run",
        "--records",
        "1000",
        "--min-size",
        "8",
        "--max-size",
        "8",
        "--capacity",
        "1MiB",
        "--output",
        js,
        "--quiet",
    ]);
    assert!(o.status.success(), "{}", text(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        out.contains("7.81 KiB payload, 39.06 KiB of frames"),
        "{out}"
    );
    assert!(out.contains("durable"), "{out}");
}

#[test]
fn progress_json_lines_are_json_with_durable_sequences_per_writer() {
    let tmp = tempfile::tempdir().unwrap();
    let j = tmp.path().join("journal");
    let js = j.to_str().unwrap();
    let p = tmp.path().join("progress.jsonl");
    let ps = p.to_str().unwrap();
    let mut durable_before = vec![0u64; 2];
    for round in 0..2 {
        let r = run_json(&[
            "--records",
            "20000",
            "--writers",
            "2",
            "--capacity",
            "1MiB",
            "--sync",
            "10ms",
            "--output",
            js,
            "--progress-json",
            ps,
        ]);
        let text = std::fs::read_to_string(&p).unwrap();
        let lines: Vec<serde_json::Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
            .collect();
        let done: Vec<_> = lines.iter().filter(|l| l["done"] == true).collect();
        assert_eq!(done.len(), round + 1, "one final line per run");
        let this_run: Vec<_> = lines
            .iter()
            .skip_while(|l| l["first_seq"][0] != 10_000 * round as u64)
            .collect();
        assert!(this_run.len() >= 2, "{text}");
        let mut last = durable_before.clone();
        for l in &this_run {
            for w in 0..2 {
                let d = l["durable_seq"][w].as_u64().unwrap();
                let f = l["first_seq"][w].as_u64().unwrap();
                assert!(d >= last[w], "durable never goes back: {l}");
                assert_eq!(l["durable_records"][w].as_u64().unwrap(), d - f);
                last[w] = d;
            }
            assert!(l["elapsed_s"].as_f64().unwrap() >= 0.0);
        }
        let end = this_run.last().unwrap();
        assert_eq!(end["done"], true);
        for w in 0..2 {
            let d = end["durable_seq"][w].as_u64().unwrap();
            assert_eq!(d, 10_000 * (round as u64 + 1));
            assert_eq!(r["per_writer"][w]["durable_seq"], d);
            // What the file calls durable is in the journal.
            assert!(seqs(&j, w as u32).len() as u64 >= d);
        }
        durable_before = last;
    }
    assert_clean(&j);
}

fn shm_round(name: &str, out: &str, extra: &[&str]) -> Output {
    let mut args = vec![
        "shm",
        "serve",
        "--name",
        name,
        "--producers",
        "2",
        "--output",
        out,
        "--records",
        "400",
        "--duration",
        "60s",
    ];
    args.extend_from_slice(extra);
    let server = Command::new(env!("CARGO_BIN_EXE_ringlog"))
        .args(&args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let producers: Vec<_> = (0..2)
        .map(|i| {
            Command::new(env!("CARGO_BIN_EXE_ringlog"))
                .args([
                    "shm",
                    "produce",
                    "--name",
                    name,
                    "--records",
                    "200",
                    "--max-size",
                    "500",
                    "--id",
                    &i.to_string(),
                ])
                .output()
                .unwrap()
        })
        .collect();
    for p in &producers {
        assert!(p.status.success(), "{}", text(p));
    }
    server.wait_with_output().unwrap()
}

#[test]
fn shm_serve_refuses_an_existing_journal_unless_told_and_overwrite_works_twice() {
    let tmp = tempfile::tempdir().unwrap();
    let j = tmp.path().join("shm-journal");
    let js = j.to_str().unwrap();
    let name = format!("/ringlog-run-cli-serve-{}", std::process::id());
    for round in 0..2 {
        let o = shm_round(&name, js, &["--overwrite"]);
        assert!(o.status.success(), "round {round}: {}", text(&o));
        let v = assert_clean(&j);
        assert_eq!(v.records, 400, "round {round}: replaced, not appended");
    }
    let before = snapshot(&j);
    let o = ringlog(&[
        "shm",
        "serve",
        "--name",
        &name,
        "--output",
        js,
        "--records",
        "1",
    ]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("--resume") && err.contains("--overwrite"),
        "{err}"
    );
    assert_eq!(snapshot(&j), before);
    let help = text(&ringlog(&["shm", "serve", "--help"]));
    assert!(
        help.contains("--overwrite") && help.contains("--resume"),
        "{help}"
    );
}

/// Unmounts on every path, also when an assertion fails.
struct Mount(PathBuf);

impl Drop for Mount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

#[test]
fn a_full_disk_stops_the_run_with_exit_1_and_keeps_a_valid_prefix() {
    let uid = Command::new("id").arg("-u").output();
    let root = uid.is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0");
    if !root {
        println!("skipped: mounting a small tmpfs needs root");
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let mnt = tmp.path().join("small");
    std::fs::create_dir(&mnt).unwrap();
    let status = Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=20m", "tmpfs"])
        .arg(&mnt)
        .stderr(Stdio::null())
        .status();
    if !status.is_ok_and(|s| s.success()) {
        println!("skipped: mount -t tmpfs failed");
        return;
    }
    let _mount = Mount(mnt.clone());
    let j = mnt.join("journal");
    let js = j.to_str().unwrap();
    let started = Instant::now();
    let o = ringlog(&[
        "run",
        "--records",
        "100000",
        "--capacity",
        "64MiB",
        "--sink-retry",
        "2s",
        "--quiet",
        "--json",
        "--output",
        js,
    ]);
    let took = started.elapsed();
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    // Errors are never quiet: every failure is on stderr, with the path
    // and the OS error, also with --quiet and without a terminal.
    assert!(err.contains("No space left on device"), "{err}");
    assert!(err.contains(js), "{err}");
    assert!(err.lines().count() >= 2, "{err}");
    assert!(
        took < Duration::from_secs(60),
        "stopped within the retry bound: {took:?}"
    );
    let report: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert!(report["error"].as_str().unwrap().contains("No space left"));
    // The journal verifies, and it holds most of the disk: with 32 MiB
    // batches written all or nothing it would hold nothing.
    let v = ringlog::journal::verify(&j).unwrap();
    assert!(v.corrupted.is_empty(), "{v:?}");
    assert!(
        v.frame_bytes > 10 << 20,
        "{} bytes of frames on a 20 MiB disk",
        v.frame_bytes
    );
    assert_eq!(
        v.records,
        report["records"].as_u64().unwrap(),
        "the report tells what the journal holds"
    );
    let vo = ringlog(&["verify", js]);
    assert!(
        matches!(vo.status.code(), Some(0) | Some(3)),
        "{}",
        text(&vo)
    );
}
