//! End to end: the `ringlog` binary runs the pipeline, and `verify` checks
//! what it wrote; SIGINT mid-run leaves a complete, clean journal; invalid
//! arguments and I/O failures give the documented exit codes.

use std::process::{Command, Output};
use std::time::{Duration, Instant};

fn ringlog(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ringlog"))
        .args(args)
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

#[test]
fn run_then_verify_each_design() {
    for design in ["double-buffer", "fan-in", "shared-ring"] {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("journal");
        let out_s = out.to_str().unwrap();
        let o = ringlog(&[
            "run",
            "--design",
            design,
            "--records",
            "3000",
            "--writers",
            "4",
            "--capacity",
            "1MiB",
            "--output",
            out_s,
            "--json",
        ]);
        assert!(o.status.success(), "{design}: {}", text(&o));
        let report: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        assert_eq!(report["records"], 3000, "{design}");
        let o = ringlog(&["verify", out_s, "--json"]);
        assert!(o.status.success(), "{design}: {}", text(&o));
        let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        assert_eq!(v["records"], 3000, "{design}");
        assert_eq!(v["clean"], true, "{design}");
        for p in 0..4 {
            assert_eq!(v["producers"][p.to_string()]["missing"], 0, "{design}");
            assert_eq!(v["producers"][p.to_string()]["first_seq"], 0, "{design}");
        }
        let o = ringlog(&[
            "cat",
            out_s,
            "--producer",
            "2",
            "--limit",
            "3",
            "--format",
            "json",
        ]);
        assert!(o.status.success(), "{}", text(&o));
        let lines: Vec<serde_json::Value> = String::from_utf8_lossy(&o.stdout)
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.len(), 3);
        assert!(lines
            .iter()
            .enumerate()
            .all(|(i, l)| l["producer"] == 2 && l["seq"] == i as u64));
    }
}

#[test]
fn sigint_mid_run_leaves_a_clean_journal() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("journal");
    let mut child = Command::new(env!("CARGO_BIN_EXE_ringlog"))
        .args([
            "run",
            "--duration",
            "120s",
            "--capacity",
            "4MiB",
            "--quiet",
            "--output",
            out.to_str().unwrap(),
        ])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(800));
    let kill = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if Instant::now() > deadline {
            child.kill().unwrap();
            panic!("ringlog run did not stop within 60 s of SIGINT");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let o = child.wait_with_output().unwrap();
    assert!(status.success(), "exit {status:?}: {}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("total:"),
        "no report: {}",
        text(&o)
    );
    let o = ringlog(&["verify", out.to_str().unwrap(), "--json"]);
    assert!(o.status.success(), "{}", text(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert!(v["records"].as_u64().unwrap() > 0);
}

#[test]
fn bad_arguments_exit_2_with_one_line() {
    for args in [
        &["run", "--writers", "0"][..],
        &["run", "--capacity", "ten"],
        &["run", "--design", "ring-of-fire"],
        &["run", "--min-size", "100", "--max-size", "10"],
        &["frobnicate"],
    ] {
        let o = ringlog(args);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", text(&o));
        assert!(
            String::from_utf8_lossy(&o.stderr).contains("error"),
            "{args:?}"
        );
    }
}

#[test]
fn io_failures_exit_1_naming_the_path() {
    let o = ringlog(&["verify", "/nonexistent/ringlog-journal"]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("/nonexistent/ringlog-journal"), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
}
