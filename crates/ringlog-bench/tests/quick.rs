//! Runs the binary end to end on tiny sizes and checks its JSON: it parses,
//! every scenario ran, and every row passed its correctness check.

use std::process::{Command, Stdio};

#[test]
fn tiny_quick_run_reports_every_row_ok() {
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_ringlog-bench"))
        .args(["--quick", "--runs", "1", "--scale", "0.002", "--json"])
        .arg("--report")
        .arg(dir.path().join("report.html"))
        .current_dir(dir.path())
        .output()
        .expect("run ringlog-bench");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "exit {:?}\n{stderr}", out.status);
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("stdout is JSON");
    let rows = json["rows"].as_array().expect("rows");
    assert!(!rows.is_empty());
    for scenario in [
        "limits", "spsc", "mpsc", "bytes", "persist", "latency", "ipc", "logging", "read",
    ] {
        assert!(
            rows.iter().any(|r| r["scenario"] == scenario),
            "no row for {scenario}"
        );
    }
    for r in rows {
        assert_eq!(r["ok"], true, "row failed: {r}");
        assert!(r["median"].as_f64().is_some_and(|m| m > 0.0), "{r}");
    }
    assert_eq!(json["failures"], 0);
    // The rows the main job is read against: the hand-off ceiling of the
    // byte ring (pinned and unpinned where two cores exist), the append
    // latency at 1 and 4 writers, and the pipeline against the disk in the
    // same rounds, with its share of that limit.
    let named = |name: &str| rows.iter().filter(|r| r["name"] == name).count();
    assert!(named("4 KiB chunks, one flag per chunk") >= 1);
    let append = "ringlog PipelineWriter::append (double buffer 64 MiB, sync 100 ms)";
    assert_eq!(named(append), 6, "p50, p99, p99.9 at 1 and 4 writers");
    let persist = rows
        .iter()
        .find(|r| r["name"] == "ringlog pipeline double-buffer (64 MiB), sync 100 ms")
        .expect("the persist row");
    assert!(
        persist["vs_limit"].as_f64().is_some_and(|v| v > 0.0),
        "{persist}"
    );
    assert!(json["machine"]["cores"].as_u64().unwrap() >= 1);
    let html = std::fs::read_to_string(dir.path().join("report.html")).unwrap();
    assert!(html.contains("<svg") && !html.contains("<script"));
    // The work directory was removed.
    let left: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .filter(|n| n.to_string_lossy().starts_with(".ringlog-bench-"))
        .collect();
    assert!(left.is_empty(), "left behind: {left:?}");
}

/// Runs `ringlog-bench ipc` at a tiny scale with `env` set; returns its
/// exit code, JSON, stderr, and the segment names it left in /dev/shm.
fn run_ipc(env: &[(&str, &str)]) -> (Option<i32>, serde_json::Value, String, Vec<String>) {
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_ringlog-bench"))
        .args([
            "ipc", "--quick", "--runs", "1", "--scale", "0.002", "--json",
        ])
        .envs(env.iter().copied())
        .current_dir(dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run ringlog-bench");
    let prefix = format!("ringlog-bench-{}-", child.id());
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let json = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("stdout is not JSON ({e})\n{stderr}"));
    let left = std::fs::read_dir("/dev/shm")
        .map(|d| {
            d.map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .filter(|n| n.starts_with(&prefix))
                .collect()
        })
        .unwrap_or_default();
    (out.status.code(), json, stderr, left)
}

#[test]
fn ipc_runs_its_cases_between_processes_and_removes_its_segments() {
    let (code, json, stderr, left) = run_ipc(&[]);
    assert_eq!(code, Some(0), "{stderr}");
    let rows = json["rows"].as_array().expect("rows");
    let names: std::collections::BTreeSet<&str> =
        rows.iter().map(|r| r["name"].as_str().unwrap()).collect();
    for want in [
        "ringlog shm spsc, two rings, hot (spinning)",
        "ringlog shm spsc, two rings, cold (sleep at once)",
        "pipe pair",
        "Unix socket pair",
        "ringlog shm spsc claim/commit, batch reads",
        "pipe, one write per message",
    ] {
        assert!(names.contains(want), "no row for {want}: {names:?}");
    }
    // Four round-trip cases with three percentiles each, two one-way cases.
    assert_eq!(rows.len(), 4 * 3 + 2);
    for r in rows {
        assert_eq!(r["scenario"], "ipc");
        assert_eq!(r["ok"], true, "row failed: {r}");
        assert_eq!(r["threads"], 2, "{r}");
        assert!(r["median"].as_f64().is_some_and(|m| m > 0.0), "{r}");
    }
    assert!(left.is_empty(), "segments left behind: {left:?}");
}

#[test]
fn ipc_runs_whose_peer_saw_or_sent_bad_data_are_error_rows() {
    let (code, json, stderr, left) = run_ipc(&[(ringlog_bench::scenarios::ipc::FAULT_ENV, "1")]);
    assert_eq!(code, Some(1), "{stderr}");
    // Each failed case is named on stderr, where --json leaves no table.
    assert!(
        stderr.contains("error: [ipc] 8-byte round trip") && stderr.contains("lost"),
        "{stderr}"
    );
    let rows = json["rows"].as_array().expect("rows");
    assert_eq!(rows.len(), 4 * 3 + 2);
    for r in rows {
        assert_eq!(r["ok"], false, "a faulty run passed: {r}");
        assert!(r["median"].is_null(), "{r}");
        assert!(!r["error"].as_str().unwrap_or("").is_empty(), "{r}");
    }
    assert_eq!(json["failures"], rows.len());
    assert!(stderr.contains("lost or corrupted"), "{stderr}");
    assert!(left.is_empty(), "segments left behind: {left:?}");
}

#[test]
fn list_names_every_scenario() {
    let out = Command::new(env!("CARGO_BIN_EXE_ringlog-bench"))
        .arg("--list")
        .output()
        .expect("run ringlog-bench");
    assert!(out.status.success());
    let list = String::from_utf8_lossy(&out.stdout);
    for s in ringlog_bench::scenarios::ALL {
        assert!(list.lines().any(|l| l.starts_with(s.name)), "{list}");
    }
    assert!(list.contains("ipc"), "{list}");
}
