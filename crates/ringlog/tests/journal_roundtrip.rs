//! Round trips through the journal: what goes in comes out, in order,
//! across batches, vectored appends, rotations, reopenings and retention.

use std::io::IoSlice;

use proptest::prelude::*;
use ringlog::journal::{
    frame_into_vec, framed_len, verify, Journal, JournalError, JournalOptions, Reader, Record,
    Retention, SyncPolicy, SEGMENT_HEADER_LEN,
};

/// `(producer, seq, timestamp, payload)`.
type Rec = (u32, u64, u64, Vec<u8>);

fn read_all(dir: &std::path::Path) -> Vec<Rec> {
    Reader::open(dir)
        .unwrap()
        .map(|r| {
            let r: Record = r.unwrap();
            (r.producer, r.seq, r.timestamp, r.payload)
        })
        .collect()
}

fn options(segment_bytes: u64) -> JournalOptions {
    JournalOptions {
        segment_bytes,
        ..Default::default()
    }
}

#[test]
#[cfg_attr(miri, ignore = "touches files")]
fn positions_are_global_and_survive_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let mut j = Journal::open(dir.path(), options(256)).unwrap();
    assert_eq!(j.position(), 0);
    let mut expected = 0;
    for seq in 0..20u64 {
        let payload = vec![seq as u8; seq as usize * 7];
        expected += framed_len(payload.len()) as u64;
        assert_eq!(j.append(3, seq, seq * 10, &payload).unwrap(), expected);
    }
    assert!(j.current_segment() > 1, "small segments rotate");
    assert_eq!(j.sync().unwrap(), expected);
    drop(j);
    let j = Journal::open(dir.path(), options(256)).unwrap();
    assert_eq!(j.position(), expected);
    assert_eq!(j.durable_position(), expected);
    assert!(j.recovery_report().is_clean());
    let recs = read_all(dir.path());
    assert_eq!(recs.len(), 20);
    for (i, r) in recs.iter().enumerate() {
        assert_eq!(r, &(3, i as u64, i as u64 * 10, vec![i as u8; i * 7]));
    }
    // Every segment respects the size limit unless it holds a single frame.
    for entry in std::fs::read_dir(dir.path()).unwrap() {
        let len = entry.unwrap().metadata().unwrap().len();
        assert!(len <= 256 || len <= (SEGMENT_HEADER_LEN + framed_len(19 * 7)) as u64);
    }
}

#[test]
#[cfg_attr(miri, ignore = "touches files")]
fn invalid_batches_are_rejected_and_write_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let mut j = Journal::open(dir.path(), options(1 << 20)).unwrap();
    let mut batch = Vec::new();
    frame_into_vec(&mut batch, 1, 0, 0, b"good").unwrap();
    let good_len = batch.len();
    frame_into_vec(&mut batch, 1, 1, 0, b"cut short").unwrap();
    let err = j.append_frames(&batch[..batch.len() - 8]).unwrap_err();
    assert!(
        matches!(err, JournalError::InvalidBatch { offset, .. } if offset == good_len),
        "{err}"
    );
    assert_eq!(j.position(), 0);
    assert!(matches!(
        j.append(1, 0, 0, &vec![0; ringlog::journal::MAX_PAYLOAD + 1]),
        Err(JournalError::PayloadTooLarge { .. })
    ));
    assert_eq!(j.append_frames(&batch).unwrap(), batch.len() as u64);
    assert_eq!(read_all(dir.path()).len(), 2);
}

#[test]
#[cfg_attr(miri, ignore = "touches files")]
fn retention_deletes_oldest_segments() {
    let dir = tempfile::tempdir().unwrap();
    let opts = JournalOptions {
        segment_bytes: 512,
        retention: Retention {
            max_segments: Some(3),
            max_bytes: None,
        },
        ..Default::default()
    };
    let mut j = Journal::open(dir.path(), opts).unwrap();
    for seq in 0..200u64 {
        j.append(1, seq, 0, &[7u8; 100]).unwrap();
    }
    assert!(j.take_retention_error().is_none());
    let segments = |d: &std::path::Path| {
        std::fs::read_dir(d)
            .unwrap()
            .map(|e| e.unwrap())
            .filter(|e| e.file_name().to_string_lossy().ends_with(".rlj"))
            .collect::<Vec<_>>()
    };
    assert_eq!(segments(dir.path()).len(), 3);
    let recs = read_all(dir.path());
    assert_eq!(recs.last().unwrap().1, 199, "the newest records are kept");
    let report = verify(dir.path()).unwrap();
    assert!(report.is_clean(), "{report:?}");
    drop(j);

    let opts = JournalOptions {
        segment_bytes: 512,
        retention: Retention {
            max_segments: None,
            max_bytes: Some(2048),
        },
        ..Default::default()
    };
    let mut j = Journal::open(dir.path(), opts).unwrap();
    for seq in 200..400u64 {
        j.append(1, seq, 0, &[7u8; 100]).unwrap();
    }
    let total: u64 = segments(dir.path())
        .iter()
        .map(|e| e.metadata().unwrap().len())
        .sum();
    assert!(total <= 2048, "{total} bytes kept");
    assert_eq!(read_all(dir.path()).last().unwrap().1, 399);
}

#[test]
#[cfg_attr(miri, ignore = "touches files")]
fn sync_policies_make_data_durable() {
    for policy in [
        SyncPolicy::Never,
        SyncPolicy::EveryBatch,
        SyncPolicy::EveryMillis(0),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let opts = JournalOptions {
            sync: policy,
            segment_bytes: 300,
            ..Default::default()
        };
        let mut j = Journal::open(dir.path(), opts).unwrap();
        let end = j.append(1, 0, 0, b"one").unwrap();
        let end = j.append(1, 1, 0, &[1; 300]).unwrap().max(end);
        match policy {
            SyncPolicy::Never => assert_eq!(j.durable_position(), 0),
            _ => assert_eq!(j.durable_position(), end),
        }
        assert_eq!(j.sync().unwrap(), end);
        assert_eq!(j.sync_if_due().unwrap(), end);
    }
}

fn frame_batch(records: &[Rec]) -> Vec<u8> {
    let mut buf = Vec::new();
    for (p, s, t, payload) in records {
        frame_into_vec(&mut buf, *p, *s, *t, payload).unwrap();
    }
    buf
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: if cfg!(miri) { 0 } else { 48 },
        ..ProptestConfig::default()
    })]

    /// Arbitrary records in arbitrary batches, written three ways, with
    /// small segments and reopenings: the same records come out.
    #[test]
    fn arbitrary_records_round_trip(
        batches in prop::collection::vec(
            (prop::collection::vec((0u32..4, any::<u64>(), prop::collection::vec(any::<u8>(), 0..300)), 0..12),
             0u8..3, any::<bool>()),
            1..16),
        segment_bytes in 64u64..2048,
    ) {
        let dir = tempfile::tempdir().unwrap();
        let mut j = Journal::open(dir.path(), options(segment_bytes)).unwrap();
        let mut seqs = [0u64; 4];
        let mut expected: Vec<Rec> = Vec::new();
        for (batch, how, reopen) in batches {
            let recs: Vec<Rec> = batch
                .into_iter()
                .map(|(p, ts, payload)| {
                    let seq = seqs[p as usize];
                    seqs[p as usize] += 1;
                    (p, seq, ts, payload)
                })
                .collect();
            match how {
                0 => {
                    j.append_frames(&frame_batch(&recs)).unwrap();
                }
                1 => {
                    let mid = recs.len() / 2;
                    let (a, b) = (frame_batch(&recs[..mid]), frame_batch(&recs[mid..]));
                    j.append_frames_vectored(&[IoSlice::new(&a), IoSlice::new(&b)]).unwrap();
                }
                _ => {
                    for (p, s, t, payload) in &recs {
                        j.append(*p, *s, *t, payload).unwrap();
                    }
                }
            }
            expected.extend(recs);
            if reopen {
                j.sync().unwrap();
                drop(j);
                j = Journal::open(dir.path(), options(segment_bytes)).unwrap();
                prop_assert!(j.recovery_report().is_clean());
            }
        }
        let end = j.sync().unwrap();
        prop_assert_eq!(end, expected.iter().map(|r| framed_len(r.3.len()) as u64).sum::<u64>());
        prop_assert_eq!(read_all(dir.path()), expected.clone());
        for p in 0..4u32 {
            let mine: Vec<Rec> = Reader::open(dir.path()).unwrap().producer(p)
                .map(|r| { let r = r.unwrap(); (r.producer, r.seq, r.timestamp, r.payload) })
                .collect();
            let want: Vec<Rec> = expected.iter().filter(|r| r.0 == p).cloned().collect();
            prop_assert_eq!(mine, want);
        }
        let report = verify(dir.path()).unwrap();
        prop_assert!(report.is_clean(), "{:?}", report);
        prop_assert_eq!(report.records, expected.len() as u64);
    }
}

#[test]
#[cfg_attr(miri, ignore = "touches files")]
fn sync_covers_many_rotated_segments_without_syncing_on_rotation() {
    let dir = tempfile::tempdir().unwrap();
    let fs = ringlog::journal::FaultyFs::new();
    let opts = JournalOptions {
        segment_bytes: 200,
        ..Default::default()
    };
    let mut j = Journal::open_with(fs.clone(), dir.path(), opts).unwrap();
    for seq in 0..60u64 {
        j.append(1, seq, 0, &[5; 100]).unwrap();
    }
    assert!(j.current_segment() > 20);
    assert_eq!(
        j.durable_position(),
        0,
        "rotation under SyncPolicy::Never does not sync"
    );
    // Every rotated-out segment is synced, including those whose files
    // were closed: a failure on any of them surfaces.
    fs.fail_syncs(1);
    assert!(matches!(j.sync(), Err(JournalError::DeviceIo { .. })));
    drop(j);
    let mut j = Journal::open(dir.path(), opts).unwrap();
    assert_eq!(j.sync().unwrap(), j.position());
    assert_eq!(read_all(dir.path()).len(), 60);
}
