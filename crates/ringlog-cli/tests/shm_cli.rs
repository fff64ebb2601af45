//! `ringlog shm serve` and `ringlog shm produce` as separate processes; the
//! journal they write passes `ringlog verify`, also when a producer is
//! killed mid-run.
#![cfg(target_os = "linux")]

use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

fn ringlog() -> Command {
    Command::new(env!("CARGO_BIN_EXE_ringlog"))
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn spawn(args: &[&str]) -> Child {
    ringlog()
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// Waits for a child, failing (and killing it) past `limit`.
fn finish(mut child: Child, limit: Duration, what: &str) -> Output {
    let end = Instant::now() + limit;
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > end {
            child.kill().unwrap();
            panic!("{what} hung: {}", text(&child.wait_with_output().unwrap()));
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    child.wait_with_output().unwrap()
}

fn verify(dir: &str) -> serde_json::Value {
    let o = ringlog().args(["verify", dir, "--json"]).output().unwrap();
    assert!(o.status.success(), "verify: {}", text(&o));
    serde_json::from_slice(&o.stdout).unwrap()
}

#[test]
fn serve_and_three_producer_processes_then_verify() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("journal");
    let out = out.to_str().unwrap();
    let name = format!("ringlog-cli-serve-{}", std::process::id());
    let serve = spawn(&[
        "shm",
        "serve",
        "--name",
        &name,
        "--producers",
        "3",
        "--capacity",
        "256KiB",
        "--output",
        out,
        "--records",
        "6000",
    ]);
    let producers: Vec<Child> = (0..3)
        .map(|i| {
            spawn(&[
                "shm",
                "produce",
                "--name",
                &name,
                "--records",
                "2000",
                "--min-size",
                "10",
                "--max-size",
                "2000",
                "--id",
                &i.to_string(),
            ])
        })
        .collect();
    for p in producers {
        let o = finish(p, Duration::from_secs(60), "produce");
        assert!(o.status.success(), "produce: {}", text(&o));
    }
    let o = finish(serve, Duration::from_secs(60), "serve");
    assert!(o.status.success(), "serve: {}", text(&o));
    assert!(text(&o).contains("served 6000 records"), "{}", text(&o));
    let v = verify(out);
    assert_eq!(v["records"], 6000);
    assert_eq!(v["clean"], true);
    for p in 0..3 {
        assert_eq!(v["producers"][p.to_string()]["records"], 2000);
        assert_eq!(v["producers"][p.to_string()]["missing"], 0);
    }
}

#[test]
fn killed_producer_leaves_a_valid_prefix() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("journal");
    let out = out.to_str().unwrap();
    let name = format!("ringlog-cli-kill-{}", std::process::id());
    let serve = spawn(&[
        "shm",
        "serve",
        "--name",
        &name,
        "--producers",
        "2",
        "--capacity",
        "64KiB",
        "--output",
        out,
        "--duration",
        "3s",
    ]);
    let mut victim = spawn(&[
        "shm",
        "produce",
        "--name",
        &name,
        "--records",
        "100000000",
        "--max-size",
        "500",
        "--id",
        "7",
    ]);
    let steady = spawn(&[
        "shm",
        "produce",
        "--name",
        &name,
        "--records",
        "5000",
        "--max-size",
        "500",
        "--id",
        "8",
    ]);
    std::thread::sleep(Duration::from_millis(700));
    victim.kill().unwrap();
    victim.wait().unwrap();
    let o = finish(steady, Duration::from_secs(60), "produce");
    assert!(o.status.success(), "produce: {}", text(&o));
    let o = finish(serve, Duration::from_secs(60), "serve");
    assert!(o.status.success(), "serve: {}", text(&o));
    assert!(text(&o).contains("died; slot freed"), "{}", text(&o));
    let v = verify(out);
    assert_eq!(v["clean"], true);
    assert_eq!(v["producers"]["8"]["records"], 5000);
    assert_eq!(v["producers"]["7"]["missing"], 0);
    assert_eq!(v["producers"]["7"]["first_seq"], 0);
    assert!(v["producers"]["7"]["records"].as_u64().unwrap() > 0);
}

#[test]
fn bad_name_and_missing_segment_are_one_line_errors() {
    let o = ringlog()
        .args(["shm", "produce", "--name", "a/b", "--records", "1"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let o = ringlog()
        .args([
            "shm",
            "produce",
            "--name",
            "ringlog-cli-absent",
            "--records",
            "1",
            "--connect-timeout",
            "50ms",
        ])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("does not exist"), "{err}");
}

#[test]
fn killed_server_resumes_without_loss_or_duplicates() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("journal");
    let out = out.to_str().unwrap();
    let name = format!("ringlog-cli-resume-{}", std::process::id());
    let serve = |extra: &[&str]| {
        let mut args = vec!["shm", "serve", "--name", &name, "--output", out];
        args.extend_from_slice(extra);
        spawn(&args)
    };
    let mut first = serve(&["--producers", "1", "--capacity", "64KiB"]);
    // Produces until killed.
    let mut producer = spawn(&[
        "shm",
        "produce",
        "--name",
        &name,
        "--records",
        "1000000000",
        "--max-size",
        "32",
        "--id",
        "5",
    ]);
    std::thread::sleep(Duration::from_millis(300));
    first.kill().unwrap(); // SIGKILL: no unlink, no release, no final sync
    first.wait().unwrap();
    // Long enough for the producer, blocked on its full ring, to notice the
    // death; it then waits for a successor.
    std::thread::sleep(Duration::from_millis(400));
    let second = serve(&["--resume", "--duration", "1s"]);
    let o = finish(second, Duration::from_secs(60), "serve --resume");
    producer.kill().unwrap();
    producer.wait().unwrap();
    assert!(o.status.success(), "serve: {}", text(&o));
    let report = text(&o);
    println!("{report}");
    assert!(!report.contains("served 0 records"), "{report}");
    let v = verify(out);
    // Every record the producer committed before the first server died is
    // in the journal exactly once, followed by what the second one read.
    assert_eq!(v["clean"], true, "{v}");
    assert_eq!(v["producers"]["5"]["missing"], 0, "{v}");
    assert_eq!(v["producers"]["5"]["first_seq"], 0, "{v}");
}
