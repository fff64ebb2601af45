//! `ringlog forward` and `ringlog stream-check` from the command line:
//! arguments refused before anything is touched, and a forward, a replay
//! and a check against a real server (skipped without `nats-server`).

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use ringlog::journal::{Journal, JournalOptions};

fn ringlog(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ringlog"))
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

#[test]
fn invalid_arguments_exit_2_and_touch_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let missing = tmp.path().join("missing");
    let m = missing.to_str().unwrap();
    let out = ringlog(&[
        "forward",
        m,
        "--server",
        "nats://127.0.0.1:1",
        "--stream",
        "S",
    ]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.starts_with("ringlog: error: invalid option:"), "{err}");
    assert!(!missing.exists());
    let d = tmp.path().to_str().unwrap();
    for bad in [
        &["--window", "0"][..],
        &["--window", "5000"],
        &["--ack-timeout-ms", "0"],
    ] {
        let mut args = vec![
            "forward",
            d,
            "--server",
            "nats://127.0.0.1:1",
            "--stream",
            "S",
        ];
        args.extend_from_slice(bad);
        let out = ringlog(&args);
        assert_eq!(out.status.code(), Some(2), "{bad:?}: {out:?}");
    }
    let out = ringlog(&[
        "forward",
        d,
        "--server",
        "nats://127.0.0.1:1",
        "--stream",
        "a.b",
    ]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let cursor = tmp.path().join("no-such-dir").join("cursor");
    let out = ringlog(&[
        "forward",
        d,
        "--server",
        "nats://127.0.0.1:1",
        "--stream",
        "S",
        "--cursor",
        cursor.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert_eq!(std::fs::read_dir(tmp.path()).unwrap().count(), 0);
}

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn nats_server() -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join("nats-server"))
        .find(|p| p.is_file())
}

#[test]
fn forward_replay_and_check_against_a_server() {
    let Some(bin) = nats_server() else {
        eprintln!("forward_replay_and_check_against_a_server: skipped: nats-server is not on PATH (ci/nats.sh installs it)");
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let store = tmp.path().join("store");
    let server = Server(
        Command::new(bin)
            .args(["-js", "-a", "127.0.0.1", "-p", &port.to_string(), "-sd"])
            .arg(&store)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "nats-server did not listen");
        std::thread::sleep(Duration::from_millis(20));
    }
    let dir = tmp.path().join("journal");
    let mut j = Journal::open(&dir, JournalOptions::default()).unwrap();
    for seq in 0..300u64 {
        for p in 1..=2u32 {
            j.append(p, seq, seq, format!("record {p} {seq}").as_bytes())
                .unwrap();
        }
    }
    j.sync().unwrap();
    drop(j);
    let url = format!("nats://127.0.0.1:{port}");
    let d = dir.to_str().unwrap();
    let cursor = tmp.path().join("cursor");
    let c = cursor.to_str().unwrap();
    let base = ["--server", url.as_str(), "--stream", "CLI", "--json"];
    let run = |extra: &[&str]| {
        let mut args = vec!["forward", d];
        args.extend_from_slice(&base);
        args.extend_from_slice(&["--quiet"]);
        args.extend_from_slice(extra);
        let out = ringlog(&args);
        assert_eq!(out.status.code(), Some(0), "{out:?}");
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        v["metrics"].clone()
    };
    let m = run(&["--cursor", c]);
    assert_eq!(m["forwarded"], 600, "{m}");
    assert_eq!(m["acknowledged"], 600, "{m}");
    // The stream it created is strict and allows batches: one batch.
    assert_eq!(
        (&m["batched"], &m["batches"]),
        (&true.into(), &1.into()),
        "{m}"
    );
    assert!(cursor.is_file());
    // From the cursor: nothing left.
    let m = run(&["--cursor", c]);
    assert_eq!(m["forwarded"], 0, "{m}");
    assert_eq!(m["lag_bytes"], 0, "{m}");
    // Without it, in relaxed order: deduplicating on Nats-Msg-Id alone is
    // refused, since the strict first run sent none; by the last message
    // of each producer's subject every record is skipped.
    let mut args = vec!["forward", d];
    args.extend_from_slice(&base);
    args.extend_from_slice(&["--dedup", "msg-id", "--order", "relaxed"]);
    let out = ringlog(&args);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("stream CLI conflicts") && err.contains("carry no Nats-Msg-Id"),
        "{err}"
    );
    let m = run(&["--order", "relaxed"]);
    assert_eq!(m["already_in_stream"], 600, "{m}");
    // The stream was created by the forwarder, so strict by default: the
    // stream's last message shows that it holds every record.
    let m = run(&["--dedup", "msg-id"]);
    assert_eq!(m["strict_order"], true, "{m}");
    assert_eq!(
        (&m["already_in_stream"], &m["duplicates"]),
        (&600.into(), &0.into()),
        "{m}"
    );
    // A conflicting configuration is an error naming it.
    let mut args = vec!["forward", d];
    args.extend_from_slice(&base);
    args.extend_from_slice(&["--replicas", "3"]);
    let out = ringlog(&args);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("1 replicas, 3 asked for"), "{err}");

    let mut args = vec!["stream-check", d];
    args.extend_from_slice(&base);
    let out = ringlog(&args);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["messages"], 600, "{v}");
    assert_eq!(v["duplicates"], 0, "{v}");
    // A record the stream does not have makes the check fail.
    let mut j = Journal::open(&dir, JournalOptions::default()).unwrap();
    j.append(1, 300, 300, b"never forwarded").unwrap();
    j.sync().unwrap();
    drop(j);
    let out = ringlog(&args);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["missing"], 1, "{v}");
    // Forwarded with every publish acknowledged on its own, after the
    // stream's last message: the stream is whole again.
    let m = run(&["--cursor", c, "--no-batch"]);
    assert_eq!(
        (
            &m["forwarded"],
            &m["acknowledged"],
            &m["batched"],
            &m["batches"]
        ),
        (&1.into(), &1.into(), &false.into(), &0.into()),
        "{m}"
    );
    let out = ringlog(&args);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    drop(server);
}
