//! `ringlog verify`, `recover` and `cat` on broken journals, as real
//! processes on real files: every break in the structure is reported with
//! the file, exit codes tell clean (0), torn tail (3) and damage (1) apart,
//! `recover` cuts exactly what opening cuts and its dry run changes
//! nothing, a FIFO never makes a command hang, and I/O errors end with the
//! OS error.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

mod common;

use common::ringlog;
use ringlog::journal::{segment_file_name, Journal, JournalOptions, SEGMENT_HEADER_LEN};

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn json(o: &Output) -> serde_json::Value {
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("{e}: {}", text(o)))
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// A journal of five segments of four 50-byte records each (producers 0
/// and 1 alternating, sequence 0..10 each), built with small segments.
fn journal() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("J");
    let opts = JournalOptions {
        segment_bytes: 400,
        ..Default::default()
    };
    let mut j = Journal::open(&path, opts).unwrap();
    for i in 0..20u64 {
        j.append((i % 2) as u32, i / 2, 0, &[i as u8; 50]).unwrap();
    }
    j.sync().unwrap();
    assert_eq!(j.current_segment(), 5);
    (dir, path)
}

fn seg(dir: &Path, n: u64) -> PathBuf {
    dir.join(segment_file_name(n))
}

fn snapshot(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let p = e.unwrap().path();
            let bytes = std::fs::read(&p).unwrap();
            (p, bytes)
        })
        .collect()
}

fn append_bytes(path: &Path, bytes: &[u8]) {
    let mut f = std::fs::OpenOptions::new().append(true).open(path).unwrap();
    std::io::Write::write_all(&mut f, bytes).unwrap();
}

/// The faults of `verify --json` as `(kind, file name, offset)`.
fn faults(v: &serde_json::Value) -> Vec<(String, String, u64)> {
    v["faults"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            let file = PathBuf::from(f["file"].as_str().unwrap());
            (
                f["kind"].as_str().unwrap().to_owned(),
                file.file_name().unwrap().to_str().unwrap().to_owned(),
                f["offset"].as_u64().unwrap(),
            )
        })
        .collect()
}

#[test]
fn the_issues_reproduction_a_segment_moved_over_the_next_is_damage() {
    let dir = tempfile::tempdir().unwrap();
    let j = dir.path().join("J");
    let o = ringlog(&[
        "run",
        "--records",
        "30000",
        "--seed",
        "3",
        "--output",
        s(&j),
        "--quiet",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let segments = std::fs::read_dir(&j).unwrap().count() as u64;
    assert!(
        segments >= 3,
        "{segments} segments: the reproduction needs 3"
    );
    let o = ringlog(&["verify", s(&j)]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));

    // `mv J/…02.rlj J/…03.rlj`
    std::fs::rename(seg(&j, 2), seg(&j, 3)).unwrap();
    let o = ringlog(&["verify", s(&j)]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let out = stdout(&o);
    let three = seg(&j, 3);
    assert!(
        out.contains(&format!(
            "fault: {} at byte 0: segment 2 before this one is missing",
            three.display()
        )),
        "{out}"
    );
    assert!(
        out.contains(&format!("fault: {} at byte 16:", three.display())),
        "{out}"
    );
    assert!(out.contains("DAMAGED"), "{out}");
    assert!(!out.contains("OK"), "{out}");

    // Reads every segment, prints nothing (no producer 99).
    let o = ringlog(&["cat", s(&j), "--producer", "99"]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let err = stderr(&o);
    assert!(err.contains(s(&three)), "{err}");
    assert!(err.contains("header says segment 2"), "{err}");
}

#[test]
fn a_deleted_middle_segment_fails_verify_and_cat() {
    let (_tmp, j) = journal();
    let gone = std::fs::metadata(seg(&j, 3)).unwrap().len() - SEGMENT_HEADER_LEN as u64;
    std::fs::remove_file(seg(&j, 3)).unwrap();

    let o = ringlog(&["verify", s(&j), "--json"]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let v = json(&o);
    assert_eq!(v["status"], "damaged");
    assert_eq!(v["clean"], false);
    let f = faults(&v);
    assert!(
        f.contains(&("missing_segments".into(), segment_file_name(4), 0)),
        "{f:?}"
    );
    let missing = v["faults"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["kind"] == "missing_segments")
        .unwrap();
    assert!(
        missing["message"]
            .as_str()
            .unwrap()
            .contains(&format!("({gone} bytes of records)")),
        "{missing}"
    );
    // Each producer lost two records: one sequence gap each, all counted.
    assert_eq!(v["sequence_faults"], 2);
    assert_eq!(v["fault_count"], 3);

    let o = ringlog(&["verify", s(&j)]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stdout(&o).contains("3 faults: 1 missing segment range, 2 sequence faults"),
        "{}",
        text(&o)
    );

    let o = ringlog(&["cat", s(&j)]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let err = stderr(&o);
    assert!(err.contains(s(&seg(&j, 4))), "{err}");
    assert!(err.contains("segment 3 before it is missing"), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert_eq!(stdout(&o).lines().count(), 8, "the records before the gap");
}

#[test]
fn a_gap_in_the_numbering_and_a_copied_header_are_damage() {
    let (_tmp, j) = journal();
    std::fs::rename(seg(&j, 5), seg(&j, 7)).unwrap();
    let o = ringlog(&["verify", s(&j), "--json"]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let f = faults(&json(&o));
    assert!(
        f.contains(&("missing_segments".into(), segment_file_name(7), 0)),
        "{f:?}"
    );
    assert!(
        f.contains(&("name_mismatch".into(), segment_file_name(7), 16)),
        "{f:?}"
    );
    let o = ringlog(&["verify", s(&j)]);
    assert!(
        stdout(&o).contains("segments 5 to 6 before this one are missing"),
        "{}",
        text(&o)
    );

    let (_tmp, j) = journal();
    std::fs::copy(seg(&j, 2), seg(&j, 3)).unwrap();
    let o = ringlog(&["verify", s(&j), "--json"]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let f = faults(&json(&o));
    assert!(
        f.contains(&("name_mismatch".into(), segment_file_name(3), 16)),
        "{f:?}"
    );
    assert!(
        f.contains(&("position_mismatch".into(), segment_file_name(3), 32)),
        "{f:?}"
    );
    let o = ringlog(&["cat", s(&j)]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(stderr(&o).contains(s(&seg(&j, 3))), "{}", text(&o));
}

#[test]
fn a_fifo_named_like_a_segment_is_reported_and_never_blocks() {
    let (_tmp, j) = journal();
    let fifo = seg(&j, 6);
    let ok = Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap()
        .success();
    assert!(ok, "mkfifo");

    // `ringlog` kills and fails a command that hangs.
    let o = ringlog(&["verify", s(&j)]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let out = stdout(&o);
    assert!(
        out.contains(&format!(
            "fault: {} at byte 0: not a regular file but a FIFO",
            fifo.display()
        )),
        "{out}"
    );

    let o = ringlog(&["cat", s(&j)]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let err = stderr(&o);
    assert!(
        err.contains(&format!(
            "{} is not a regular file but a FIFO",
            fifo.display()
        )),
        "{err}"
    );

    let o = ringlog(&["recover", s(&j)]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(fifo.exists());
}

#[test]
fn no_journal_is_an_error_naming_the_path_and_the_os_error() {
    let dir = tempfile::tempdir().unwrap();
    for cmd in ["verify", "cat", "recover"] {
        let o = ringlog(&[cmd, s(dir.path())]);
        assert_eq!(o.status.code(), Some(1), "{cmd}: {}", text(&o));
        let err = stderr(&o);
        assert_eq!(
            err.trim_end(),
            format!(
                "ringlog: error: no journal in {}: no segment files (*.rlj)",
                dir.path().display()
            ),
            "{cmd}"
        );
    }

    let o = ringlog(&["verify", "/"]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(stderr(&o).contains("no journal in /"), "{}", text(&o));

    let missing = dir.path().join("missing");
    for cmd in ["verify", "cat", "recover"] {
        let o = ringlog(&[cmd, s(&missing)]);
        assert_eq!(o.status.code(), Some(1), "{cmd}: {}", text(&o));
        let err = stderr(&o);
        assert!(err.contains(s(&missing)), "{cmd}: {err}");
        assert!(
            err.contains("No such file or directory (os error 2)"),
            "{cmd}: {err}"
        );
        assert_eq!(err.lines().count(), 1, "{cmd}: {err}");
    }
    assert!(!missing.exists(), "recover created the directory");

    let file = dir.path().join("file");
    std::fs::write(&file, b"not a journal").unwrap();
    let o = ringlog(&["verify", s(&file)]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(stderr(&o).contains("(os error 20)"), "{}", text(&o));
}

#[test]
fn a_torn_tail_exits_3_and_recover_makes_it_clean() {
    let (_tmp, j) = journal();
    let last = seg(&j, 5);
    let len = std::fs::metadata(&last).unwrap().len();
    append_bytes(&last, &[0xab; 21]);

    let o = ringlog(&["verify", s(&j)]);
    assert_eq!(o.status.code(), Some(3), "{}", text(&o));
    let out = stdout(&o);
    assert!(
        out.contains(&format!(
            "fault: {} at byte {len}: torn tail",
            last.display()
        )),
        "{out}"
    );
    assert!(out.contains("1 fault: 1 torn tail"), "{out}");
    assert!(
        out.contains(&format!("`ringlog recover {}`", j.display())),
        "{out}"
    );
    let v = json(&ringlog(&["verify", s(&j), "--json"]));
    assert_eq!(v["status"], "torn_tail");
    assert_eq!(
        faults(&v),
        [("torn_tail".into(), segment_file_name(5), len)]
    );

    let o = ringlog(&["recover", s(&j)]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let out = stdout(&o);
    assert!(
        out.contains(&format!("cut 21 bytes at byte {len} of {}", last.display())),
        "{out}"
    );
    assert!(out.contains("records kept: 20"), "{out}");
    assert!(
        out.contains("producer 1: 10 records, last durable sequence 9"),
        "{out}"
    );
    assert_eq!(std::fs::metadata(&last).unwrap().len(), len);
    let o = ringlog(&["verify", s(&j)]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(stdout(&o).contains("OK: journal is clean"));

    // Nothing left to do.
    let o = ringlog(&["recover", s(&j)]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(stdout(&o).contains("nothing to recover"), "{}", text(&o));
}

#[test]
fn a_zero_length_newest_segment_is_a_torn_tail_not_damage() {
    let (_tmp, j) = journal();
    let empty = seg(&j, 6);
    std::fs::write(&empty, b"").unwrap();
    let o = ringlog(&["verify", s(&j), "--json"]);
    assert_eq!(o.status.code(), Some(3), "{}", text(&o));
    assert_eq!(
        faults(&json(&o)),
        [("torn_segment".into(), segment_file_name(6), 0)]
    );

    let o = ringlog(&["recover", s(&j), "--json"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let v = json(&o);
    assert_eq!(v["removed_segments"], serde_json::json!([empty]));
    assert_eq!(v["status_after"], "clean");
    assert_eq!(v["records_kept"], 20);
    assert_eq!(v["producers"]["0"]["last_seq"], 9);
    assert!(!empty.exists());
    assert_eq!(ringlog(&["verify", s(&j)]).status.code(), Some(0));
}

#[test]
fn recover_dry_run_changes_nothing_and_says_what_recover_does() {
    let (_tmp, j) = journal();
    let len = std::fs::metadata(seg(&j, 5)).unwrap().len();
    append_bytes(&seg(&j, 5), &[0; 13]);
    std::fs::write(seg(&j, 6), [0u8; SEGMENT_HEADER_LEN]).unwrap();
    let tmp = j.join(format!("{}.tmp", segment_file_name(7)));
    std::fs::write(&tmp, b"RINGLOGJ").unwrap();
    let before = snapshot(&j);

    let o = ringlog(&["recover", s(&j), "--dry-run", "--json"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert_eq!(snapshot(&j), before, "the dry run changed the journal");
    let dry = json(&o);
    assert_eq!(dry["dry_run"], true);
    assert_eq!(dry["changed"], false);
    assert_eq!(dry["removed_segments"], serde_json::json!([seg(&j, 6)]));
    assert_eq!(dry["removed_temp_files"], serde_json::json!([tmp]));
    assert_eq!(dry["truncated_at"], len);
    assert_eq!(dry["truncated_bytes"], 13);
    assert_eq!(dry["truncated_file"], serde_json::json!(seg(&j, 5)));
    assert_eq!(dry["records_kept"], 20);

    let o = ringlog(&["recover", s(&j), "--dry-run"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(stdout(&o).contains("would cut 13 bytes"), "{}", text(&o));
    assert_eq!(snapshot(&j), before, "the dry run changed the journal");

    let o = ringlog(&["recover", s(&j), "--json"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let done = json(&o);
    assert_eq!(done["changed"], true);
    for key in [
        "removed_segments",
        "removed_temp_files",
        "truncated_at",
        "truncated_bytes",
        "records_kept",
        "producers",
        "position",
    ] {
        assert_eq!(done[key], dry[key], "{key}");
    }
    assert_eq!(ringlog(&["verify", s(&j)]).status.code(), Some(0));
}

#[test]
fn recover_reports_damage_before_the_tail_and_changes_nothing() {
    let (_tmp, j) = journal();
    let mut bytes = std::fs::read(seg(&j, 5)).unwrap();
    bytes[SEGMENT_HEADER_LEN + 40] ^= 1;
    std::fs::write(seg(&j, 5), &bytes).unwrap();
    append_bytes(&seg(&j, 5), &[7; 5]);
    let before = snapshot(&j);

    for dry in [true, false] {
        let mut args = vec!["recover", s(&j)];
        if dry {
            args.push("--dry-run");
        }
        let o = ringlog(&args);
        assert_eq!(o.status.code(), Some(1), "{}", text(&o));
        let out = stdout(&o);
        assert!(out.contains("NOT RECOVERED"), "{out}");
        assert!(
            out.contains(&format!(
                "fault: {} at byte {}: bad record",
                seg(&j, 5).display(),
                SEGMENT_HEADER_LEN
            )),
            "{out}"
        );
        assert_eq!(snapshot(&j), before, "recover changed a damaged journal");
    }

    // Asked to, it cuts the last segment at its first bad record; the dry
    // run says so and that the journal would then be clean.
    let o = ringlog(&[
        "recover",
        s(&j),
        "--mode",
        "truncate",
        "--dry-run",
        "--json",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let v = json(&o);
    assert_eq!(v["truncated_at"], SEGMENT_HEADER_LEN);
    assert_eq!(v["status_after"], "clean");
    assert_eq!(v["records_kept"], 16);
    assert_eq!(snapshot(&j), before, "the dry run changed the journal");
    let o = ringlog(&["recover", s(&j), "--mode", "skip", "--dry-run"]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let o = ringlog(&["recover", s(&j), "--mode", "truncate"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(
        stdout(&o).contains(&format!("at byte {SEGMENT_HEADER_LEN} of")),
        "{}",
        text(&o)
    );
    assert_eq!(ringlog(&["verify", s(&j)]).status.code(), Some(0));

    let o = ringlog(&["recover", s(&j), "--mode", "sideways"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
}

/// A one-segment journal with the given `(timestamp, payload)` records of
/// producer 1.
fn journal_of(records: &[(u64, &[u8])]) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("J");
    let mut j = Journal::open(&path, JournalOptions::default()).unwrap();
    for (seq, (ts, payload)) in records.iter().enumerate() {
        j.append(1, seq as u64, *ts, payload).unwrap();
    }
    j.sync().unwrap();
    (dir, path)
}

/// `cat` reads on one thread and encodes on another. Once the reading
/// thread had sent its last batch it hung up, and the encoding thread,
/// failing to hand back the batch it had just printed, stopped there,
/// leaving up to two full batches unprinted with exit 0. Payloads that
/// JSON must escape make the encoding the slower side, which is when
/// that happened.
#[test]
#[cfg_attr(miri, ignore = "runs processes")]
fn cat_prints_every_record_when_reading_ends_before_encoding() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("J");
    let mut j = Journal::open(&path, JournalOptions::default()).unwrap();
    let payload = [b'"', 0x01, b'\\', 0x1f].repeat(64);
    let n = 40_000u64;
    for seq in 0..n {
        j.append((seq % 3) as u32, seq / 3, seq, &payload).unwrap();
    }
    j.sync().unwrap();
    for _ in 0..3 {
        let o = ringlog(&["cat", s(&path), "--format", "jsonl"]);
        assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
        let mut next = [0u64; 3];
        let mut lines = 0u64;
        for line in stdout(&o).lines() {
            let v: serde_json::Value = serde_json::from_str(line).unwrap();
            let p = v["producer"].as_u64().unwrap() as usize;
            assert_eq!(v["seq"].as_u64(), Some(next[p]), "producer {p}");
            next[p] += 1;
            lines += 1;
        }
        assert_eq!(lines, n, "records printed");
    }
}

#[test]
fn cat_json_gives_binary_payloads_as_base64_and_text_only_when_utf8() {
    let (_tmp, j) = journal_of(&[(5, &[0xff, 0x00, 0xfe, 0x80]), (6, "héllo".as_bytes())]);
    let o = ringlog(&["cat", s(&j), "--format", "json"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let lines: Vec<serde_json::Value> = stdout(&o)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[0]["payload_b64"], "/wD+gA==");
    assert!(lines[0].get("payload").is_none(), "{}", lines[0]);
    assert_eq!(lines[0]["len"], 4);
    assert_eq!(lines[0]["timestamp_ns"], 5);
    assert_eq!(lines[1]["payload_b64"], "aMOpbGxv");
    assert_eq!(lines[1]["payload"], "héllo");
}

#[test]
fn cat_text_prints_utc_time_producer_seq_and_the_payload_as_a_line() {
    let (_tmp, j) = journal_of(&[
        (1_709_294_400_123_456_789, b"line one\nnext\x01 \\ end"),
        (0, &[b'a', 0xff, b'b']),
    ]);
    let o = ringlog(&["cat", s(&j)]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert_eq!(
        stdout(&o),
        "2024-03-01T12:00:00.123456789Z 1 0 line one\\nnext\\u{1} \\\\ end\n\
         1970-01-01T00:00:00.000000000Z 1 1 a\\xffb\n"
    );
    let o = ringlog(&["cat", s(&j), "--format", "hex", "--limit", "1"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert_eq!(
        stdout(&o),
        "1 0 1709294400123456789 6c696e65206f6e650a6e65787401205c20656e64\n"
    );
}

#[test]
fn cat_filters_by_producer_sequence_time_and_text() {
    let dir = tempfile::tempdir().unwrap();
    let options = JournalOptions {
        segment_bytes: 4096,
        ..Default::default()
    };
    let mut j = Journal::open(dir.path(), options).unwrap();
    for i in 0..300u64 {
        let p = (i % 3) as u32;
        j.append(p, i / 3, 5_000 + i, format!("event {i}").as_bytes())
            .unwrap();
    }
    j.sync().unwrap();
    drop(j);
    let d = dir.path().to_str().unwrap();
    let o = ringlog(&[
        "cat",
        d,
        "--producer",
        "2",
        "--seq-from",
        "10",
        "--seq-to",
        "12",
        "--format",
        "jsonl",
    ]);
    assert!(o.status.success(), "{}", text(&o));
    let got: Vec<(u64, u64, String)> = String::from_utf8(o.stdout)
        .unwrap()
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            (
                v["producer"].as_u64().unwrap(),
                v["seq"].as_u64().unwrap(),
                v["payload"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            (2, 10, "event 32".to_owned()),
            (2, 11, "event 35".to_owned()),
            (2, 12, "event 38".to_owned())
        ]
    );
    // Timestamps 5_100..=5_102 are records 100..=102.
    let o = ringlog(&[
        "cat", d, "--since", "@5100", "--until", "@5102", "--format", "raw",
    ]);
    assert_eq!(
        String::from_utf8(o.stdout).unwrap(),
        "event 100event 101event 102"
    );
    let o = ringlog(&[
        "cat",
        d,
        "--grep",
        "^event 29[0-9]$",
        "--limit",
        "3",
        "--format",
        "csv",
    ]);
    let out = String::from_utf8(o.stdout).unwrap();
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 4, "{out}");
    assert!(lines[0].starts_with("producer,seq,"), "{out}");
    assert!(lines[3].ends_with("utf8,\"event 292\""), "{out}");
    // A bad option is a usage error, before anything is read.
    let o = ringlog(&["cat", d, "--grep", "("]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
}
