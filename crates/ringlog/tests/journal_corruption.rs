//! Damage a small journal every way we can think of — every bit flipped,
//! every truncation point, garbage appended, an older segment garbled — and
//! check that the reader never panics or returns a damaged record, and that
//! recovery keeps exactly the valid prefix.

use std::path::{Path, PathBuf};

use ringlog::journal::{
    framed_len, segment_file_name, verify, Damage, Journal, JournalError, JournalOptions, Reader,
    RecordRef, RecoveryMode, SEGMENT_HEADER_LEN,
};

/// A scratch directory, on tmpfs when there is one: these tests open
/// thousands of journals and each open syncs, which tmpfs makes free.
fn scratch_dir() -> tempfile::TempDir {
    let shm = Path::new("/dev/shm");
    if shm.is_dir() {
        if let Ok(dir) = tempfile::tempdir_in(shm) {
            return dir;
        }
    }
    tempfile::tempdir().unwrap()
}

/// `(producer, seq, payload)` of the records written by [`small_journal`].
fn records() -> Vec<(u32, u64, Vec<u8>)> {
    (0..6u64)
        .map(|i| {
            (
                (i % 2) as u32,
                i / 2,
                (0..(i * 5 + 1) as u8)
                    .map(|b| b.wrapping_mul(37) ^ 0x5a)
                    .collect(),
            )
        })
        .collect()
}

/// A one-segment journal; returns its segment bytes and frame offsets.
fn small_journal() -> (Vec<u8>, Vec<u64>) {
    let dir = scratch_dir();
    let mut j = Journal::open(dir.path(), JournalOptions::default()).unwrap();
    let mut offsets = Vec::new();
    let mut off = SEGMENT_HEADER_LEN as u64;
    for (p, s, payload) in records() {
        offsets.push(off);
        off += framed_len(payload.len()) as u64;
        j.append(p, s, 1000 + s, &payload).unwrap();
    }
    j.sync().unwrap();
    let bytes = std::fs::read(dir.path().join(segment_file_name(1))).unwrap();
    assert_eq!(bytes.len() as u64, off);
    (bytes, offsets)
}

fn write_journal(bytes: &[u8]) -> (tempfile::TempDir, PathBuf) {
    let dir = scratch_dir();
    let path = dir.path().join(segment_file_name(1));
    std::fs::write(&path, bytes).unwrap();
    (dir, path)
}

/// Reads everything the reader yields (continuing past damage) and checks
/// each record is exactly one of the originals, at its original offset.
fn read_checked(dir: &Path, offsets: &[u64], skip: bool) -> Vec<usize> {
    let originals = records();
    let mut found = Vec::new();
    for r in Reader::open(dir).unwrap().skip_corrupted(skip) {
        let Ok(r) = r else { continue };
        let i = offsets
            .iter()
            .position(|&o| o == r.offset)
            .expect("record at a frame offset");
        let (p, s, payload) = &originals[i];
        assert_eq!(
            (r.producer, r.seq, r.timestamp, &r.payload),
            (*p, *s, 1000 + s, payload)
        );
        found.push(i);
    }
    found
}

/// What a reader yields, record by record and error by error, read one at
/// a time with `next_ref` or in bulk with `next_frames`.
type Event = Result<(u32, u64, u64, Vec<u8>, u64, u64), String>;

/// How [`events`] reads.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Mode {
    /// `next_ref`.
    One,
    /// `next_frames`.
    Bulk,
    /// `next_frames_owned`, each buffer handed back as the next spare: it
    /// still holds frames the reader verified before, at other offsets,
    /// which must never be taken for what the file holds now.
    Owned,
}

fn events(dir: &Path, skip: bool, producer: Option<u32>, mode: Mode) -> Vec<Event> {
    let mut reader = Reader::open(dir).unwrap().skip_corrupted(skip);
    if let Some(p) = producer {
        reader = reader.producer(p);
    }
    let mut out = Vec::new();
    let one = |r: RecordRef<'_>| {
        Ok((
            r.producer,
            r.seq,
            r.timestamp,
            r.payload.to_vec(),
            r.segment,
            r.offset,
        ))
    };
    match mode {
        Mode::Bulk => {
            while let Some(frames) = reader.next_frames() {
                match frames {
                    Ok(f) => out.extend(f.iter().map(one)),
                    Err(e) => out.push(Err(e.to_string())),
                }
            }
        }
        Mode::Owned => {
            let mut spare = Vec::new();
            while let Some(frames) = reader.next_frames_owned(spare) {
                spare = Vec::new();
                match frames {
                    Ok(f) => {
                        out.extend(f.frames().iter().map(one));
                        spare = f.into_buffer();
                    }
                    Err(e) => out.push(Err(e.to_string())),
                }
            }
        }
        Mode::One => {
            while let Some(r) = reader.next_ref() {
                out.push(r.map_err(|e| e.to_string()).and_then(one));
            }
        }
    }
    out
}

/// Reading in bulk, borrowed or owned, yields what reading one at a time
/// does, skipping or not, for every producer and for one.
fn assert_bulk_reads_the_same(dir: &Path) {
    for skip in [false, true] {
        for producer in [None, Some(1)] {
            let one = events(dir, skip, producer, Mode::One);
            for mode in [Mode::Bulk, Mode::Owned] {
                assert_eq!(
                    events(dir, skip, producer, mode),
                    one,
                    "{mode:?}, skip {skip}, producer {producer:?}"
                );
            }
        }
    }
}

fn open(dir: &Path, mode: RecoveryMode) -> Result<Journal, JournalError> {
    Journal::open(
        dir,
        JournalOptions {
            recovery: mode,
            ..Default::default()
        },
    )
}

#[test]
#[cfg_attr(miri, ignore = "touches files; thousands of cases")]
fn every_bit_flip_is_caught_and_recovery_keeps_the_valid_prefix() {
    let (bytes, offsets) = small_journal();
    let n = offsets.len();
    for bit in 0..bytes.len() * 8 {
        let mut damaged = bytes.clone();
        damaged[bit / 8] ^= 1 << (bit % 8);
        let byte = (bit / 8) as u64;
        let (dir, _) = write_journal(&damaged);

        let report = verify(dir.path()).unwrap();
        assert!(!report.is_clean(), "flip of bit {bit} not detected");
        // Frame k holds the flipped byte (None: the segment header).
        let k = offsets.iter().rposition(|&o| o <= byte);
        let valid: Vec<usize> = (0..n).filter(|&i| Some(i) != k).collect();
        match k {
            None => assert!(matches!(report.corrupted[0].damage, Damage::Header(_))),
            Some(k) => assert_eq!(report.records, n as u64 - 1, "bit {bit} in frame {k}"),
        }

        // The reader never yields a damaged record; skipping, it yields
        // every undamaged one.
        let strict = read_checked(dir.path(), &offsets, false);
        assert_eq!(strict, valid[..strict.len()].to_vec());
        if k.is_some() {
            assert_eq!(read_checked(dir.path(), &offsets, true), valid);
        }
        assert_bulk_reads_the_same(dir.path());

        match (k, open(dir.path(), RecoveryMode::Strict)) {
            (None, Err(JournalError::BadHeader { path, .. })) => {
                assert!(path.ends_with(segment_file_name(1)))
            }
            (Some(k), Ok(j)) if k == n - 1 => {
                let r = j.recovery_report();
                assert_eq!(r.truncated_at, Some(offsets[k]), "bit {bit}");
                assert_eq!(r.records_scanned, k as u64);
                drop(j);
                assert_eq!(
                    read_checked(dir.path(), &offsets, false),
                    (0..k).collect::<Vec<_>>()
                );
                assert!(verify(dir.path()).unwrap().is_clean());
            }
            (Some(k), Err(JournalError::Corrupt { offset, path, .. })) if k < n - 1 => {
                assert_eq!(offset, offsets[k], "bit {bit}");
                assert!(path.ends_with(segment_file_name(1)));
                // Skip keeps the bad bytes and everything after them.
                let j = open(dir.path(), RecoveryMode::Skip).unwrap();
                let skipped = &j.recovery_report().skipped;
                assert_eq!(
                    (skipped[0].start, skipped[0].end),
                    (offsets[k], offsets[k + 1])
                );
                drop(j);
                // Point-in-time recovery cuts at the damage.
                let (dir2, _) = write_journal(&damaged);
                let j = open(dir2.path(), RecoveryMode::TruncateAtFirstError).unwrap();
                assert_eq!(j.recovery_report().truncated_at, Some(offsets[k]));
                drop(j);
                assert_eq!(
                    read_checked(dir2.path(), &offsets, false),
                    (0..k).collect::<Vec<_>>()
                );
            }
            (k, other) => panic!("bit {bit} (frame {k:?}): unexpected {other:?}"),
        }
    }
}

#[test]
#[cfg_attr(miri, ignore = "touches files")]
fn every_truncation_recovers_the_whole_frames_before_the_cut() {
    let (bytes, offsets) = small_journal();
    for cut in 0..=bytes.len() {
        let (dir, path) = write_journal(&bytes[..cut]);
        let whole = offsets.iter().filter(|&&o| o < cut as u64).count();
        let whole = (0..whole)
            .filter(|&i| offsets[i] + framed_len(records()[i].2.len()) as u64 <= cut as u64)
            .count();
        let before = read_checked(dir.path(), &offsets, false);
        assert_eq!(before, (0..whole).collect::<Vec<_>>(), "cut {cut}");
        match open(dir.path(), RecoveryMode::Strict) {
            Ok(j) if cut < SEGMENT_HEADER_LEN => {
                // Shorter than a header: an interrupted creation, removed.
                assert_eq!(
                    j.recovery_report().removed_torn_segment.as_deref(),
                    Some(&*path)
                );
                assert_eq!(j.position(), 0);
            }
            Ok(j) => {
                let kept = offsets.get(whole).copied().unwrap_or(bytes.len() as u64);
                let r = j.recovery_report();
                assert_eq!(r.records_scanned, whole as u64, "cut {cut}");
                assert_eq!(
                    r.truncated_bytes,
                    cut as u64 - kept.min(cut as u64),
                    "cut {cut}"
                );
                drop(j);
                assert_eq!(
                    std::fs::metadata(&path).unwrap().len(),
                    kept.min(cut as u64)
                );
                assert!(verify(dir.path()).unwrap().is_clean());
            }
            Err(e) => panic!("cut {cut}: {e}"),
        }
    }
}

#[test]
#[cfg_attr(miri, ignore = "touches files")]
fn garbage_after_the_last_frame_is_a_torn_tail() {
    let (bytes, offsets) = small_journal();
    let mut state = 0x1234_5678_9abc_def0u64;
    for len in (1..300).step_by(7) {
        for zeros in [false, true] {
            let mut damaged = bytes.clone();
            for _ in 0..len {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                damaged.push(if zeros { 0 } else { state as u8 });
            }
            let (dir, _) = write_journal(&damaged);
            let report = verify(dir.path()).unwrap();
            assert!(report.torn_tail.is_some() && report.corrupted.is_empty());
            let j = open(dir.path(), RecoveryMode::Strict).unwrap();
            assert_eq!(j.recovery_report().truncated_bytes, len as u64);
            drop(j);
            assert_eq!(
                read_checked(dir.path(), &offsets, false).len(),
                offsets.len()
            );
        }
    }
}

#[test]
#[cfg_attr(miri, ignore = "touches files")]
fn damage_in_an_older_segment_is_reported_with_its_path() {
    let dir = scratch_dir();
    let opts = JournalOptions {
        segment_bytes: 200,
        ..Default::default()
    };
    let mut j = Journal::open(dir.path(), opts).unwrap();
    for seq in 0..20 {
        j.append(1, seq, 0, &[9; 50]).unwrap();
    }
    j.sync().unwrap();
    drop(j);
    let victim = dir.path().join(segment_file_name(2));
    let mut bytes = std::fs::read(&victim).unwrap();
    bytes[SEGMENT_HEADER_LEN + 40] ^= 0x10;
    std::fs::write(&victim, &bytes).unwrap();

    let err = Reader::open(dir.path())
        .unwrap()
        .find_map(Result::err)
        .unwrap();
    match err {
        JournalError::Corrupt { path, offset, .. } => {
            assert_eq!(path, victim);
            assert_eq!(offset, SEGMENT_HEADER_LEN as u64);
        }
        e => panic!("{e}"),
    }
    let report = verify(dir.path()).unwrap();
    assert_eq!(report.corrupted.len(), 1);
    assert_eq!(report.corrupted[0].path, victim);
    assert_eq!(report.producers[&1].missing, 1);
    assert!(!report.is_clean());
    // Only the last segment is scanned on open; appending goes on.
    let mut j = Journal::open(dir.path(), opts).unwrap();
    j.append(1, 20, 0, b"after").unwrap();
}

#[test]
#[cfg_attr(miri, ignore = "touches files")]
fn an_interrupted_segment_creation_is_removed_on_open() {
    let opts = JournalOptions {
        segment_bytes: 200,
        ..Default::default()
    };
    for newest in [
        Vec::new(),
        vec![0u8; 20],
        vec![0u8; SEGMENT_HEADER_LEN],
        vec![0u8; 300],
    ] {
        let dir = scratch_dir();
        let mut j = Journal::open(dir.path(), opts).unwrap();
        for seq in 0..5 {
            j.append(1, seq, 0, &[3; 50]).unwrap();
        }
        let end = j.sync().unwrap();
        let last = j.current_segment();
        drop(j);
        // What a crash can leave of a rotation that was never synced.
        let torn = dir.path().join(segment_file_name(last + 1));
        std::fs::write(&torn, &newest).unwrap();
        let mut j = Journal::open(dir.path(), opts).unwrap();
        assert_eq!(
            j.recovery_report().removed_torn_segment.as_deref(),
            Some(&*torn)
        );
        assert_eq!(j.position(), end);
        j.append(1, 5, 0, b"next").unwrap();
        drop(j);
        let seqs: Vec<u64> = Reader::open(dir.path())
            .unwrap()
            .map(|r| r.unwrap().seq)
            .collect();
        assert_eq!(seqs, (0..6).collect::<Vec<_>>());
    }
    // A zeroed header followed by valid frames is damage, not a torn
    // creation: it is reported, never silently removed.
    let dir = scratch_dir();
    let mut j = Journal::open(dir.path(), opts).unwrap();
    j.append(1, 0, 0, b"kept").unwrap();
    j.sync().unwrap();
    drop(j);
    let path = dir.path().join(segment_file_name(1));
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[..SEGMENT_HEADER_LEN].fill(0);
    std::fs::write(&path, &bytes).unwrap();
    assert!(matches!(
        Journal::open(dir.path(), opts),
        Err(JournalError::BadHeader { .. })
    ));
}

/// A batch that crosses into a new segment creates that segment (header
/// only) before writing its first part into the old one; a crash during that
/// write leaves a torn tail in the old segment behind an empty new one.
/// Recovery must remove the empty segment and cut the old one's tail, not
/// leave the torn frame in the middle of the journal.
#[test]
#[cfg_attr(miri, ignore = "touches files")]
fn crash_while_writing_before_a_fresh_segment_recovers_the_old_tail() {
    let dir = scratch_dir();
    let options = JournalOptions {
        segment_bytes: 4096,
        ..Default::default()
    };
    let payload = [0x5au8; 1000];
    let mut j = Journal::open(dir.path(), options).unwrap();
    let mut seq = 0;
    while std::fs::metadata(dir.path().join(segment_file_name(2))).is_err() {
        j.append(0, seq, 0, &payload).unwrap();
        seq += 1;
    }
    j.sync().unwrap();
    drop(j);
    let old = dir.path().join(segment_file_name(1));
    let new = dir.path().join(segment_file_name(2));
    let old_len = std::fs::metadata(&old).unwrap().len();
    // The crash: the new segment is a header alone, the old one ends in
    // the first 100 bytes of a frame.
    let header = std::fs::read(&new).unwrap()[..SEGMENT_HEADER_LEN].to_vec();
    std::fs::write(&new, header).unwrap();
    let mut frame = Vec::new();
    ringlog::journal::frame_into_vec(&mut frame, 0, 999, 0, &payload).unwrap();
    let mut torn = std::fs::read(&old).unwrap();
    torn.extend_from_slice(&frame[..100]);
    std::fs::write(&old, torn).unwrap();

    let j = Journal::open(dir.path(), options).unwrap();
    let r = j.recovery_report();
    assert_eq!(r.removed_torn_segment.as_deref(), Some(&*new));
    assert_eq!(r.last_segment.as_deref(), Some(&*old));
    assert_eq!(r.truncated_at, Some(old_len));
    assert_eq!(r.truncated_bytes, 100);
    drop(j);
    let report = verify(dir.path()).unwrap();
    assert!(report.is_clean(), "{report:?}");
    // Every record but the one whose frame went into the new segment.
    assert_eq!(report.producers[&0].records, seq - 1);
}

/// After a `Skip` recovery that leaves damage in the last segment, appends
/// go to a new segment, so nothing appended can complete a frame start
/// hidden in the damaged bytes; a later open, whose last segment is clean,
/// appends in place again.
#[test]
#[cfg_attr(miri, ignore = "touches files")]
fn an_append_after_a_skip_recovery_starts_a_new_segment() {
    let (mut bytes, offsets) = small_journal();
    // A payload byte of frame 2: a bad CRC with valid frames after it.
    bytes[offsets[2] as usize + 33] ^= 0x10;
    let (dir, _) = write_journal(&bytes);
    let mut j = open(dir.path(), RecoveryMode::Skip).unwrap();
    assert_eq!(j.recovery_report().skipped.len(), 1);
    j.append(7, 0, 5_000, b"after recovery").unwrap();
    j.sync().unwrap();
    drop(j);
    let v = verify(dir.path()).unwrap();
    assert_eq!(v.segments, 2, "{v:?}");
    assert_eq!(v.records, 6, "five kept and the appended one: {v:?}");
    let second = std::fs::read(dir.path().join(segment_file_name(2))).unwrap();
    assert_eq!(
        second.len(),
        SEGMENT_HEADER_LEN + framed_len(b"after recovery".len()),
        "the appended frame is alone in the new segment"
    );
    let got: Vec<_> = Reader::open(dir.path())
        .unwrap()
        .skip_corrupted(true)
        .filter_map(Result::ok)
        .map(|r| (r.segment, r.producer, r.seq))
        .collect();
    assert_eq!(got.last(), Some(&(2, 7, 0)));
    assert_eq!(got.len(), 6);
    // Reopened: the damage is in an older segment now; the last one is
    // clean, and appends continue in it.
    let mut j = open(dir.path(), RecoveryMode::Skip).unwrap();
    j.append(7, 1, 5_001, b"and again").unwrap();
    j.sync().unwrap();
    drop(j);
    assert_eq!(verify(dir.path()).unwrap().segments, 2);
}

/// Bulk reading across many read windows and segments, with damage in the
/// middle of a segment and a torn tail: the same records and errors, in
/// the same order, as reading one at a time.
#[test]
#[cfg_attr(miri, ignore = "touches files")]
fn bulk_reads_match_single_reads_across_windows_and_damage() {
    let dir = scratch_dir();
    let opts = JournalOptions {
        segment_bytes: 3 << 20,
        ..Default::default()
    };
    let mut j = Journal::open(dir.path(), opts).unwrap();
    let mut x = 0x9e37_79b9_7f4a_7c15_u64;
    let mut seq = [0u64; 3];
    for i in 0..40_000u64 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let p = (i % 3) as usize;
        let len = (x % 700) as usize;
        let payload: Vec<u8> = (0..len).map(|k| (k as u64 ^ i) as u8).collect();
        j.append(p as u32, seq[p], i, &payload).unwrap();
        seq[p] += 1;
    }
    j.sync().unwrap();
    let segments = j.current_segment();
    drop(j);
    assert!(segments >= 4, "{segments} segments");
    assert_bulk_reads_the_same(dir.path());
    // A flipped byte near 1.5 MiB into segment 2, and a torn tail.
    let seg2 = dir.path().join(segment_file_name(2));
    let mut bytes = std::fs::read(&seg2).unwrap();
    bytes[(3 << 19) + 12_345] ^= 0x10;
    std::fs::write(&seg2, &bytes).unwrap();
    let last = dir.path().join(segment_file_name(segments));
    let len = std::fs::metadata(&last).unwrap().len();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&last)
        .unwrap()
        .set_len(len - 5)
        .unwrap();
    let strict = events(dir.path(), false, None, Mode::Bulk);
    assert!(strict.last().unwrap().is_err(), "stops at the damage");
    let skipping = events(dir.path(), true, None, Mode::Bulk);
    assert_eq!(skipping.iter().filter(|e| e.is_err()).count(), 2);
    assert_bulk_reads_the_same(dir.path());
}
