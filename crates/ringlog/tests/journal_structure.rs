//! The journal's structure as `verify`, the reader and recovery see it:
//! every state a killed writer can leave is a torn tail that recovery cuts
//! without losing a record (never damage); the dry run plans exactly what
//! opening does and changes nothing; missing segments, FIFOs and damage
//! before the tail are reported, never skipped silently, and never block.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::Duration;

use ringlog::journal::{
    frame_into_vec, plan_recovery, segment_file_name, verify, Journal, JournalError,
    JournalOptions, Reader, RecoveryMode, SegmentHeader, VerifyStatus, FORMAT_VERSION,
    SEGMENT_HEADER_LEN,
};

fn options() -> JournalOptions {
    JournalOptions {
        segment_bytes: 400,
        ..Default::default()
    }
}

/// Three segments of four 50-byte records (producer 1, sequence 0..12).
fn journal() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let mut j = Journal::open(dir.path(), options()).unwrap();
    for seq in 0..12 {
        j.append(1, seq, 0, &[seq as u8; 50]).unwrap();
    }
    j.sync().unwrap();
    assert_eq!(j.current_segment(), 3);
    dir
}

fn seg(dir: &Path, n: u64) -> PathBuf {
    dir.join(segment_file_name(n))
}

/// Every file in `dir` with its bytes.
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

fn header(number: u64, base: u64) -> [u8; SEGMENT_HEADER_LEN] {
    SegmentHeader {
        version: FORMAT_VERSION,
        header_len: SEGMENT_HEADER_LEN as u16,
        flags: 0,
        segment: number,
        created_unix_nanos: 0,
        base_position: base,
    }
    .encode()
}

fn append_bytes(path: &Path, bytes: &[u8]) {
    let mut f = std::fs::OpenOptions::new().append(true).open(path).unwrap();
    std::io::Write::write_all(&mut f, bytes).unwrap();
}

/// The journal-global position where segment 3's frames end.
fn end_of_3(dir: &Path) -> u64 {
    let b = std::fs::read(seg(dir, 3)).unwrap();
    SegmentHeader::decode(&b).unwrap().base_position + (b.len() - SEGMENT_HEADER_LEN) as u64
}

/// The states a writer killed at any moment can leave behind.
fn crash_states() -> Vec<(&'static str, tempfile::TempDir)> {
    let mut states = Vec::new();

    let dir = journal();
    let mut frame = Vec::new();
    frame_into_vec(&mut frame, 1, 12, 0, &[9; 50]).unwrap();
    append_bytes(&seg(dir.path(), 3), &frame[..frame.len() / 2]);
    states.push(("torn last frame", dir));

    for (name, bytes) in [
        ("zero-length newest segment", Vec::new()),
        ("newest segment shorter than a header", vec![0u8; 20]),
        ("zeroed header", vec![0u8; SEGMENT_HEADER_LEN]),
        ("zeroed header and zeroed pages", vec![0u8; 300]),
    ] {
        let dir = journal();
        std::fs::write(seg(dir.path(), 4), bytes).unwrap();
        states.push((name, dir));
    }

    // A header-only newest segment whose positions do not continue.
    let dir = journal();
    let end = end_of_3(dir.path());
    std::fs::write(seg(dir.path(), 4), header(4, end + 88)).unwrap();
    states.push(("header-only newest segment", dir));

    // A batch crossing into a new segment: the new segment is created
    // (header naming the position after the whole batch), then the crash
    // tears the batch's first part in the old one.
    let dir = journal();
    let end = end_of_3(dir.path());
    let mut batch = Vec::new();
    frame_into_vec(&mut batch, 1, 12, 0, &[9; 50]).unwrap();
    std::fs::write(seg(dir.path(), 4), header(4, end + batch.len() as u64)).unwrap();
    append_bytes(&seg(dir.path(), 3), &batch[..40]);
    states.push(("torn frame behind a frameless newest segment", dir));

    let dir = journal();
    std::fs::write(
        dir.path().join(format!("{}.tmp", segment_file_name(4))),
        b"RING",
    )
    .unwrap();
    states.push(("leftover temporary file", dir));

    let dir = journal();
    std::fs::write(
        dir.path().join(format!("{}.tmp", segment_file_name(6))),
        b"",
    )
    .unwrap();
    std::fs::write(seg(dir.path(), 4), header(4, end_of_3(dir.path()))).unwrap();
    std::fs::write(seg(dir.path(), 5), b"").unwrap();
    states.push(("two frameless newest segments and a leftover", dir));

    states
}

#[test]
#[cfg_attr(miri, ignore = "file I/O")]
fn every_crash_state_is_a_torn_tail_that_recovery_cuts_without_loss() {
    for (name, dir) in crash_states() {
        let before = verify(dir.path()).unwrap();
        assert_eq!(
            before.status(),
            VerifyStatus::TornTail,
            "{name}: {before:?}"
        );
        assert_eq!(before.records, 12, "{name}");

        // The dry run plans what opening does, and changes nothing.
        let files = snapshot(dir.path());
        let plan = plan_recovery(dir.path(), RecoveryMode::Strict).unwrap();
        assert_eq!(snapshot(dir.path()), files, "{name}: dry run changed files");
        assert!(
            plan.truncated_bytes > 0
                || !plan.removed_torn_segments.is_empty()
                || plan.removed_temp_files > 0,
            "{name}: {plan:?}"
        );

        let mut j = Journal::open(dir.path(), options()).unwrap();
        assert_eq!(j.recovery_report(), &plan, "{name}");
        j.append(1, 12, 0, b"after").unwrap();
        j.sync().unwrap();
        drop(j);
        let after = verify(dir.path()).unwrap();
        assert_eq!(after.status(), VerifyStatus::Clean, "{name}: {after:?}");
        assert_eq!(after.records, 13, "{name}");
        assert_eq!(after.producers[&1].last_seq, 12, "{name}");
    }
}

#[test]
#[cfg_attr(miri, ignore = "file I/O")]
fn an_empty_newest_segment_that_continues_the_positions_is_clean() {
    // A rotation killed before its first frame, or an append into a new
    // segment rolled back: consistent, nothing lost, nothing to cut.
    let dir = journal();
    std::fs::write(seg(dir.path(), 4), header(4, end_of_3(dir.path()))).unwrap();
    let r = verify(dir.path()).unwrap();
    assert_eq!(r.status(), VerifyStatus::Clean, "{r:?}");
    // Recovery still removes it, as it removes every frameless newest one.
    let plan = plan_recovery(dir.path(), RecoveryMode::Strict).unwrap();
    assert_eq!(plan.removed_torn_segments, [seg(dir.path(), 4)]);
    // Behind a torn tail it is part of the torn tail.
    append_bytes(&seg(dir.path(), 3), &[1; 12]);
    let r = verify(dir.path()).unwrap();
    assert_eq!(r.status(), VerifyStatus::TornTail, "{r:?}");
    assert_eq!(r.torn_segments, [seg(dir.path(), 4)]);
}

#[test]
#[cfg_attr(miri, ignore = "file I/O")]
fn corruption_before_the_tail_fails_open_and_changes_nothing() {
    let dir = journal();
    // A leftover and a frameless newest segment that recovery would
    // remove, and a damaged record in the middle of the last real segment.
    std::fs::write(
        dir.path().join(format!("{}.tmp", segment_file_name(5))),
        b"",
    )
    .unwrap();
    std::fs::write(seg(dir.path(), 4), b"").unwrap();
    let mut bytes = std::fs::read(seg(dir.path(), 3)).unwrap();
    bytes[SEGMENT_HEADER_LEN + 40] ^= 1;
    std::fs::write(seg(dir.path(), 3), &bytes).unwrap();
    assert_eq!(verify(dir.path()).unwrap().status(), VerifyStatus::Damaged);

    let files = snapshot(dir.path());
    let err = plan_recovery(dir.path(), RecoveryMode::Strict).unwrap_err();
    assert!(
        matches!(&err, JournalError::Corrupt { path, offset, .. }
            if *path == seg(dir.path(), 3) && *offset == SEGMENT_HEADER_LEN as u64),
        "{err}"
    );
    let err = Journal::open(dir.path(), options()).unwrap_err();
    assert!(matches!(err, JournalError::Corrupt { .. }), "{err}");
    assert_eq!(snapshot(dir.path()), files, "a failed open changed files");

    // Asked to, point-in-time recovery cuts there.
    let opts = JournalOptions {
        recovery: RecoveryMode::TruncateAtFirstError,
        ..options()
    };
    let plan = plan_recovery(dir.path(), opts.recovery).unwrap();
    let j = Journal::open(dir.path(), opts).unwrap();
    assert_eq!(j.recovery_report(), &plan);
    assert_eq!(plan.truncated_at, Some(SEGMENT_HEADER_LEN as u64));
    drop(j);
    assert_eq!(verify(dir.path()).unwrap().status(), VerifyStatus::Clean);
}

/// Runs `f` on another thread and fails if it does not return in time: a
/// hang is reported as a failure, not waited out.
fn promptly<T: Send + 'static>(what: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx.recv_timeout(Duration::from_secs(30))
        .unwrap_or_else(|_| panic!("{what} blocked on a FIFO"))
}

fn mkfifo(path: &Path) {
    let ok = std::process::Command::new("mkfifo")
        .arg(path)
        .status()
        .unwrap()
        .success();
    assert!(ok, "mkfifo {}", path.display());
}

#[test]
#[cfg_attr(miri, ignore = "file I/O")]
fn a_fifo_named_like_a_segment_never_blocks() {
    let dir = journal();
    let fifo = seg(dir.path(), 4);
    mkfifo(&fifo);
    let path = dir.path().to_owned();

    let p = path.clone();
    let err = promptly("Journal::open", move || {
        Journal::open(&p, options()).map(drop)
    })
    .unwrap_err();
    assert!(
        matches!(&err, JournalError::NotRegularFile { path, file_type: "FIFO" } if *path == fifo),
        "{err}"
    );

    let p = path.clone();
    let err = promptly("plan_recovery", move || {
        plan_recovery(&p, RecoveryMode::Strict).map(drop)
    })
    .unwrap_err();
    assert!(matches!(err, JournalError::NotRegularFile { .. }), "{err}");

    let p = path.clone();
    let results: Vec<_> = promptly("Reader", move || Reader::open(&p).unwrap().collect());
    assert_eq!(results.iter().filter(|r| r.is_ok()).count(), 12);
    assert!(
        matches!(results.last(), Some(Err(JournalError::NotRegularFile { path, .. })) if *path == fifo)
    );

    let p = path.clone();
    let report = promptly("verify", move || verify(&p).unwrap());
    assert_eq!(report.status(), VerifyStatus::Damaged);
}

#[test]
#[cfg_attr(miri, ignore = "file I/O")]
fn the_reader_stops_at_a_missing_segment_and_can_skip_it() {
    let dir = journal();
    std::fs::remove_file(seg(dir.path(), 2)).unwrap();
    let results: Vec<_> = Reader::open(dir.path()).unwrap().collect();
    assert_eq!(results.len(), 5, "four records, then the error");
    match &results[4] {
        Err(JournalError::Structure { path, what }) => {
            assert_eq!(*path, seg(dir.path(), 3));
            assert!(what.contains("segment 2"), "{what}");
        }
        r => panic!("{r:?}"),
    }
    let seqs: Vec<u64> = Reader::open(dir.path())
        .unwrap()
        .skip_corrupted(true)
        .filter_map(Result::ok)
        .map(|r| r.seq)
        .collect();
    assert_eq!(seqs, [0, 1, 2, 3, 8, 9, 10, 11]);

    // Positions that do not continue: segment 2 replaced by segment 3's
    // frames under a header naming segment 2 at segment 3's base.
    let dir = journal();
    let three = std::fs::read(seg(dir.path(), 3)).unwrap();
    let base3 = SegmentHeader::decode(&three).unwrap().base_position;
    let mut two = header(2, base3).to_vec();
    two.extend_from_slice(&three[SEGMENT_HEADER_LEN..]);
    std::fs::write(seg(dir.path(), 2), two).unwrap();
    let err = Reader::open(dir.path())
        .unwrap()
        .find_map(Result::err)
        .unwrap();
    assert!(
        matches!(&err, JournalError::Structure { path, .. } if *path == seg(dir.path(), 2)),
        "{err}"
    );
}

#[test]
#[cfg_attr(miri, ignore = "file I/O")]
fn a_directory_without_segments_is_no_journal() {
    let dir = tempfile::tempdir().unwrap();
    assert!(matches!(
        verify(dir.path()),
        Err(JournalError::NoJournal { .. })
    ));
    assert!(matches!(
        Reader::open(dir.path()),
        Err(JournalError::NoJournal { .. })
    ));
    let err = verify(dir.path().join("missing")).unwrap_err();
    let os = std::error::Error::source(&err).unwrap().to_string();
    assert!(os.contains("os error 2"), "{os}");
}
