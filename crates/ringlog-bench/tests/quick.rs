//! Runs the binary end to end on tiny sizes and checks its JSON: it parses,
//! every scenario ran, and every row passed its correctness check.

use std::process::Command;

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
        "limits", "spsc", "mpsc", "bytes", "persist", "latency", "ipc",
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
