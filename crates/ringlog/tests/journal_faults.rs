//! Fault injection through `FaultyFs`: ENOSPC after N bytes, EIO on sync,
//! and the n-th operation failing, for n = 1, 2, ... until the workload
//! completes. Nothing acknowledged as durable may be lost, a failed append
//! leaves no trace, and the writer goes on once the fault is gone.

use std::path::Path;

use ringlog::journal::{
    frame_into_vec, segment_file_name, verify, FaultyFs, Journal, JournalError, JournalOptions,
    Reader, SyncPolicy,
};

fn seqs(dir: &Path) -> Vec<u64> {
    Reader::open(dir).unwrap().map(|r| r.unwrap().seq).collect()
}

fn batch(first_seq: u64, count: u64, payload_len: usize) -> Vec<u8> {
    let mut buf = Vec::new();
    for seq in first_seq..first_seq + count {
        frame_into_vec(&mut buf, 1, seq, 0, &vec![seq as u8; payload_len]).unwrap();
    }
    buf
}

fn file_lens(dir: &Path) -> Vec<u64> {
    let mut names: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    names.sort();
    names
        .iter()
        .map(|p| std::fs::metadata(p).unwrap().len())
        .collect()
}

#[test]
#[cfg_attr(miri, ignore = "touches files")]
fn enospc_mid_batch_rolls_back_and_the_same_batch_succeeds_later() {
    let dir = tempfile::tempdir().unwrap();
    let fs = FaultyFs::new();
    let opts = JournalOptions {
        segment_bytes: 1000,
        ..Default::default()
    };
    let mut j = Journal::open_with(fs.clone(), dir.path(), opts).unwrap();
    j.append_frames(&batch(0, 4, 30)).unwrap();
    let durable = j.sync().unwrap();
    // Each later batch spans several segments; give it less room than it
    // needs, at every possible point.
    let big = batch(4, 40, 100);
    let mut next_seq = 4;
    for room in (0..big.len() as u64 + 400).step_by(53) {
        let before = file_lens(dir.path());
        let position = j.position();
        fs.set_space_left(Some(room));
        match j.append_frames(&batch(next_seq, 40, 100)) {
            Ok(end) => {
                assert_eq!(end, position + big.len() as u64);
                next_seq += 40;
            }
            Err(e) => {
                assert!(e.is_no_space(), "{e}");
                let path = e.path().unwrap().to_owned();
                assert!(path.starts_with(dir.path()), "{}", path.display());
                assert_eq!(j.position(), position);
                assert_eq!(
                    file_lens(dir.path()),
                    before,
                    "rolled back to the last good frame"
                );
                fs.set_space_left(None);
                j.append_frames(&batch(next_seq, 40, 100)).unwrap();
                next_seq += 40;
            }
        }
        fs.set_space_left(None);
        assert!(j.sync().unwrap() >= durable);
        assert_eq!(seqs(dir.path()), (0..next_seq).collect::<Vec<_>>());
    }
    drop(j);
    let j = Journal::open(dir.path(), opts).unwrap();
    assert!(j.recovery_report().is_clean());
    assert!(verify(dir.path()).unwrap().is_clean());
}

#[test]
#[cfg_attr(miri, ignore = "touches files")]
fn eio_on_sync_poisons_and_reopen_keeps_everything_durable() {
    let dir = tempfile::tempdir().unwrap();
    let fs = FaultyFs::new();
    let mut j = Journal::open_with(fs.clone(), dir.path(), JournalOptions::default()).unwrap();
    for seq in 0..10 {
        j.append(1, seq, 0, b"durable").unwrap();
    }
    let durable = j.sync().unwrap();
    for seq in 10..20 {
        j.append(1, seq, 0, b"in doubt").unwrap();
    }
    fs.fail_syncs(1);
    let err = j.sync().unwrap_err();
    assert!(
        matches!(&err, JournalError::DeviceIo { path, op: "fdatasync", .. }
        if *path == dir.path().join(segment_file_name(1))),
        "{err}"
    );
    assert_eq!(j.durable_position(), durable);
    assert!(
        matches!(j.append(1, 20, 0, b"x"), Err(JournalError::Poisoned { durable: d }) if d == durable)
    );
    assert!(matches!(j.sync(), Err(JournalError::Poisoned { .. })));
    drop(j);

    let mut j = Journal::open(dir.path(), JournalOptions::default()).unwrap();
    assert!(j.position() >= durable);
    let have = seqs(dir.path());
    assert!(have.len() >= 10 && have.iter().enumerate().all(|(i, &s)| s == i as u64));
    let next = have.len() as u64;
    j.append(1, next, 0, b"after").unwrap();
    j.sync().unwrap();
    assert!(verify(dir.path()).unwrap().is_clean());
}

#[test]
#[cfg_attr(miri, ignore = "touches files")]
fn eio_on_sync_every_batch_surfaces_from_append() {
    let dir = tempfile::tempdir().unwrap();
    let fs = FaultyFs::new();
    let opts = JournalOptions {
        sync: SyncPolicy::EveryBatch,
        ..Default::default()
    };
    let mut j = Journal::open_with(fs.clone(), dir.path(), opts).unwrap();
    j.append(1, 0, 0, b"ok").unwrap();
    fs.fail_syncs(1);
    assert!(matches!(
        j.append(1, 1, 0, b"fails"),
        Err(JournalError::DeviceIo { .. })
    ));
    assert_eq!(j.durable_position(), 40);
}

/// Fails the n-th file operation with EIO or ENOSPC for n = 1, 2, ...:
/// after each failure the journal is reopened (recovery) and must hold
/// every record acknowledged as durable, in order, with no damage.
#[test]
#[cfg_attr(miri, ignore = "touches files")]
fn failing_the_nth_operation_never_loses_durable_records() {
    let nospc = rustix::io::Errno::NOSPC.raw_os_error();
    let eio = rustix::io::Errno::IO.raw_os_error();
    for errno in [eio, nospc] {
        let mut n = 1;
        loop {
            let dir = tempfile::tempdir().unwrap();
            let fs = FaultyFs::new();
            fs.fail_nth_op(n, errno);
            let opts = JournalOptions {
                segment_bytes: 600,
                ..Default::default()
            };
            let mut acked = 0u64; // records acknowledged durable
            let result = (|| -> Result<(), JournalError> {
                let mut j = Journal::open_with(fs.clone(), dir.path(), opts)?;
                let mut seq = 0;
                for round in 0..8 {
                    j.append_frames(&batch(seq, 3 + round, 90))?;
                    seq += 3 + round;
                    if round % 2 == 1 {
                        j.sync()?;
                        acked = seq;
                    }
                }
                j.sync()?;
                acked = seq;
                Ok(())
            })();
            let j = Journal::open(dir.path(), opts).unwrap_or_else(|e| panic!("n={n}: {e}"));
            drop(j);
            let have = seqs(dir.path());
            assert!(
                have.len() as u64 >= acked,
                "n={n}: {} < {acked}",
                have.len()
            );
            assert!(
                have.iter().enumerate().all(|(i, &s)| s == i as u64),
                "n={n}: {have:?}"
            );
            assert!(verify(dir.path()).unwrap().is_clean(), "n={n}");
            if result.is_ok() {
                assert!(n > 10, "the workload performs many operations");
                break;
            }
            n += 1;
        }
    }
}

#[test]
#[cfg_attr(miri, ignore = "touches files")]
fn enospc_mid_batch_keeps_the_longest_whole_frame_prefix_in_partial_mode() {
    use std::io::IoSlice;
    let dir = tempfile::tempdir().unwrap();
    let fs = FaultyFs::new();
    let opts = JournalOptions {
        segment_bytes: 1000,
        ..Default::default()
    };
    let mut j = Journal::open_with(fs.clone(), dir.path(), opts).unwrap();
    j.append_frames(&batch(0, 4, 30)).unwrap();
    j.sync().unwrap();
    let frame = ringlog::journal::framed_len(100);
    let mut next_seq = 4;
    let mut kept_something = 0;
    for room in (0..40 * frame as u64 + 400).step_by(53) {
        let position = j.position();
        let big = batch(next_seq, 40, 100);
        fs.set_space_left(Some(room));
        match j.append_frames_partial(&[IoSlice::new(&big)]) {
            Ok(end) => {
                assert_eq!(end, position + big.len() as u64);
                next_seq += 40;
            }
            Err(e) => {
                assert!(e.error.is_no_space(), "{e}");
                assert_eq!(e.appended % frame, 0, "a frame boundary");
                assert!(e.appended as u64 <= room, "{} > {room}", e.appended);
                assert_eq!(j.position(), position + e.appended as u64);
                if e.appended > 0 {
                    kept_something += 1;
                }
                // The journal on disk holds exactly the kept prefix: no torn
                // frame, no empty segment left by the failed batch.
                let kept = (e.appended / frame) as u64;
                let v = verify(dir.path()).unwrap();
                assert!(v.is_clean(), "room {room}: {v:?}");
                assert_eq!(seqs(dir.path()), (0..next_seq + kept).collect::<Vec<_>>());
                // Once space returns, the rest of the batch follows it.
                fs.set_space_left(None);
                j.append_frames_partial(&[IoSlice::new(&big[e.appended..])])
                    .unwrap();
                next_seq += 40;
            }
        }
        fs.set_space_left(None);
        j.sync().unwrap();
        assert_eq!(seqs(dir.path()), (0..next_seq).collect::<Vec<_>>());
    }
    assert!(
        kept_something > 5,
        "{kept_something} partial appends kept frames"
    );
    drop(j);
    let j = Journal::open(dir.path(), opts).unwrap();
    assert!(j.recovery_report().is_clean());
    assert!(verify(dir.path()).unwrap().is_clean());
}

#[test]
#[cfg_attr(miri, ignore = "touches files")]
fn partial_append_after_the_nth_failed_operation_leaves_a_valid_prefix() {
    use std::io::IoSlice;
    let opts = JournalOptions {
        segment_bytes: 1000,
        sync: SyncPolicy::Never,
        ..Default::default()
    };
    let frame = ringlog::journal::framed_len(100);
    for n in 1..40 {
        let dir = tempfile::tempdir().unwrap();
        let fs = FaultyFs::new();
        let mut j = Journal::open_with(fs.clone(), dir.path(), opts).unwrap();
        let big = batch(0, 40, 100);
        fs.fail_nth_op(n, rustix::io::Errno::NOSPC.raw_os_error());
        let appended = match j.append_frames_partial(&[IoSlice::new(&big)]) {
            Ok(_) => big.len(),
            Err(e) => e.appended,
        };
        fs.clear();
        assert_eq!(appended % frame, 0);
        if j.sync().is_ok() {
            let kept = (appended / frame) as u64;
            assert_eq!(seqs(dir.path()), (0..kept).collect::<Vec<_>>(), "n = {n}");
        }
        drop(j);
        // Whatever happened, reopening recovers a valid prefix.
        let j = Journal::open(dir.path(), opts).unwrap();
        drop(j);
        assert!(verify(dir.path()).unwrap().is_clean(), "n = {n}");
    }
}
