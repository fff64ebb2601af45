//! `ringlog import` from the command line: a journal forwarded to a real
//! server and imported back holds the same records and verifies clean; an
//! output directory that holds a journal is refused without --resume or
//! --overwrite; a damaged message is named and not written. The servers
//! are those of the forwarder's tests (skipped without `nats-server`).

#[path = "../../ringlog-forward/tests/nats/common/mod.rs"]
mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Output, Stdio};

use ringlog::journal::{frame_into_vec, JournalOptions, Reader};

fn ringlog(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ringlog"))
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

fn json(out: &Output) -> serde_json::Value {
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stdout)))
}

/// (producer, seq, timestamp, payload) of every record, in journal order.
fn records(dir: &Path) -> Vec<(u32, u64, u64, Vec<u8>)> {
    Reader::open(dir)
        .unwrap()
        .map(|r| {
            let r = r.unwrap();
            (r.producer, r.seq, r.timestamp, r.payload)
        })
        .collect()
}

/// Every file in `dir` with its bytes.
fn snapshot(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            (
                e.file_name().to_string_lossy().into_owned(),
                std::fs::read(e.path()).unwrap(),
            )
        })
        .collect()
}

fn verify_clean(dir: &Path) {
    let out = ringlog(&["verify", dir.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
}

#[test]
fn import_refuses_an_existing_journal_and_bad_arguments() {
    let tmp = tempfile::tempdir().unwrap();
    let out_dir = tmp.path().join("out");
    common::write_journal(&out_dir, JournalOptions::default(), 2, 5, 0);
    let before = snapshot(&out_dir);
    let o = out_dir.to_str().unwrap();
    // No server is contacted: every check comes first.
    let base = ["import", "--server", "nats://127.0.0.1:1", "--stream", "S"];
    let run = |extra: &[&str]| {
        let mut args = base.to_vec();
        args.extend_from_slice(extra);
        ringlog(&args)
    };
    let out = run(&[o]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("already holds a journal"), "{err}");
    assert!(err.contains("--resume or --overwrite"), "{err}");
    let out = run(&[o, "--resume", "--overwrite"]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert_eq!(snapshot(&out_dir), before);

    let missing = tmp.path().join("no-such-dir").join("out");
    let file = tmp.path().join("a-file");
    std::fs::write(&file, b"not a journal").unwrap();
    let fresh = tmp.path().join("fresh");
    let f = fresh.to_str().unwrap();
    for bad in [
        &[missing.to_str().unwrap()][..],
        &[file.to_str().unwrap()],
        &[f, "--idle-timeout", "0"],
        &[f, "--subject-prefix", "a.>"],
    ] {
        let out = run(bad);
        assert_eq!(out.status.code(), Some(2), "{bad:?}: {out:?}");
        assert!(
            String::from_utf8_lossy(&out.stderr).starts_with("ringlog: error: "),
            "{out:?}"
        );
    }
    let out = ringlog(&[
        "import",
        "--server",
        "nats://127.0.0.1:1",
        "--stream",
        "a.b",
        f,
    ]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(!missing.parent().unwrap().exists());
    assert!(!fresh.exists());
    assert_eq!(std::fs::read(&file).unwrap(), b"not a journal");
}

#[test]
fn forward_then_import_holds_the_same_records() {
    let Some(bin) = common::server_or_skip("forward_then_import_holds_the_same_records") else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let cluster = common::Cluster::start(&bin, &tmp.path().join("nats"), 1);
    let url = cluster.urls();
    let source = tmp.path().join("journal");
    common::write_journal(&source, JournalOptions::default(), 3, 400, 0);
    let s = source.to_str().unwrap();
    let target = [
        "--server",
        url.as_str(),
        "--stream",
        "RT",
        "--subject-prefix",
        "app",
    ];
    let cursor = tmp.path().join("cursor");
    let forward = || {
        let mut args = vec![
            "forward",
            s,
            "--quiet",
            "--cursor",
            cursor.to_str().unwrap(),
        ];
        args.extend_from_slice(&target);
        let out = ringlog(&args);
        assert_eq!(out.status.code(), Some(0), "{out:?}");
    };
    forward();

    let out_dir = tmp.path().join("imported");
    let o = out_dir.to_str().unwrap();
    let import = |extra: &[&str]| {
        let mut args = vec!["import", "--json", "--quiet", "--idle-timeout", "5"];
        args.extend_from_slice(&target);
        args.extend_from_slice(extra);
        args.push(o);
        ringlog(&args)
    };
    let out = import(&[]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let r = json(&out);
    assert_eq!(r["stream_messages"], 1200, "{r}");
    assert_eq!(r["messages"], 1200, "{r}");
    assert_eq!(r["written"], 1200, "{r}");
    assert_eq!(r["producers"], 3, "{r}");
    assert_eq!(r["problems"].as_array().map(Vec::len), Some(0), "{r}");
    verify_clean(&out_dir);
    assert_eq!(records(&out_dir), records(&source));

    // Again without a flag: refused, the journal left as it is.
    let before = snapshot(&out_dir);
    let out = import(&[]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert_eq!(snapshot(&out_dir), before);

    // More records forwarded; --resume appends only those.
    common::write_journal(&source, JournalOptions::default(), 3, 50, 400);
    forward();
    let out = import(&["--resume"]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let r = json(&out);
    assert_eq!(r["journal_records_before"], 1200, "{r}");
    assert_eq!(r["already_present"], 1200, "{r}");
    assert_eq!(r["written"], 150, "{r}");
    verify_clean(&out_dir);
    assert_eq!(records(&out_dir), records(&source));

    // --overwrite replaces it with the same records.
    let out = import(&["--overwrite"]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let r = json(&out);
    assert!(r["removed_files"].as_u64() > Some(0), "{r}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("replaced the journal in"), "{err}");
    assert_eq!(r["written"], 1350, "{r}");
    verify_clean(&out_dir);
    assert_eq!(records(&out_dir), records(&source));
}

#[test]
fn import_of_a_damaged_message_exits_1_naming_it() {
    let Some(bin) = common::server_or_skip("import_of_a_damaged_message_exits_1_naming_it") else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let cluster = common::Cluster::start(&bin, &tmp.path().join("nats"), 1);
    let url = cluster.urls();
    let source = tmp.path().join("journal");
    common::write_journal(&source, JournalOptions::default(), 1, 10, 0);
    let s = source.to_str().unwrap();
    let out = ringlog(&["forward", s, "--quiet", "--server", &url, "--stream", "BAD"]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");

    // Record 1-10 published by hand with a CRC header one bit off, then a
    // message without ringlog headers, then record 1-9 again (sound, with no
    // Nats-Msg-Id, so the server keeps it).
    let payload = b"tampered".to_vec();
    let mut frame = Vec::new();
    frame_into_vec(&mut frame, 1, 10, 100, &payload).unwrap();
    let crc = u32::from_le_bytes(frame[..4].try_into().unwrap()) ^ 1;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let client = async_nats::connect(url.as_str()).await.unwrap();
        let js = async_nats::jetstream::new(client);
        let mut headers = async_nats::HeaderMap::new();
        headers.insert("Ringlog-Producer", "1");
        headers.insert("Ringlog-Seq", "10");
        headers.insert("Ringlog-Timestamp", "100");
        headers.insert("Ringlog-Crc", format!("{crc:#010x}").as_str());
        headers.insert("Nats-Msg-Id", "1-10");
        js.publish_with_headers("ringlog.1", headers, payload.into())
            .await
            .unwrap()
            .await
            .unwrap();
        js.publish("ringlog.1", "no headers".into())
            .await
            .unwrap()
            .await
            .unwrap();
        let mut frame = Vec::new();
        frame_into_vec(&mut frame, 1, 9, 90, &common::payload(1, 9)).unwrap();
        let crc = u32::from_le_bytes(frame[..4].try_into().unwrap());
        let mut headers = async_nats::HeaderMap::new();
        headers.insert("Ringlog-Producer", "1");
        headers.insert("Ringlog-Seq", "9");
        headers.insert("Ringlog-Timestamp", "90");
        headers.insert("Ringlog-Crc", format!("{crc:#010x}").as_str());
        js.publish_with_headers("ringlog.1", headers, common::payload(1, 9).into())
            .await
            .unwrap()
            .await
            .unwrap();
    });

    let out_dir = tmp.path().join("imported");
    let o = out_dir.to_str().unwrap();
    let out = ringlog(&[
        "import",
        "--quiet",
        "--server",
        &url,
        "--stream",
        "BAD",
        "--idle-timeout",
        "5",
        o,
    ]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let text = String::from_utf8_lossy(&out.stdout);
    let named = format!("stream message 11 (1-10): CRC header {crc:#010x}, payload gives");
    assert!(text.contains(&named), "{text}");
    assert!(
        text.contains("stream message 12: no Ringlog-Record header"),
        "{text}"
    );
    assert!(
        text.contains("stream message 13 (1-9): duplicate of the previous message of producer 1"),
        "{text}"
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("ringlog: error: import: 3 messages not imported"),
        "{err}"
    );
    // Neither was written: the imported journal is the forwarded one.
    verify_clean(&out_dir);
    assert_eq!(records(&out_dir), records(&source));

    // The same as JSON, into a fresh directory.
    let other = tmp.path().join("imported-json");
    let out = ringlog(&[
        "import",
        "--quiet",
        "--json",
        "--server",
        &url,
        "--stream",
        "BAD",
        "--idle-timeout",
        "5",
        other.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let r = json(&out);
    assert_eq!(
        (
            &r["messages"],
            &r["written"],
            &r["crc_mismatches"],
            &r["malformed"],
            &r["duplicates"]
        ),
        (&13.into(), &10.into(), &1.into(), &1.into(), &1.into()),
        "{r}"
    );
}
