//! Following, cursors and the sparse index, against real files.

use std::path::Path;
use std::time::{Duration, Instant};

use proptest::prelude::*;
use ringlog::journal::{
    index_file_name, rebuild_index, Cursor, FollowBound, FollowEvent, FollowOptions, Follower,
    IndexUse, Journal, JournalError, JournalOptions, Reader, Record, RecordFilter, Retention,
    SegmentIndex, SyncPolicy,
};

fn options(segment_bytes: u64) -> JournalOptions {
    JournalOptions {
        segment_bytes,
        sync: SyncPolicy::Never,
        ..Default::default()
    }
}

fn next_record(f: &mut Follower) -> Record {
    let deadline = Instant::now() + Duration::from_secs(20);
    match f.next_before(Some(deadline)).unwrap() {
        Some(FollowEvent::Record(r)) => r,
        other => panic!("expected a record, got {other:?}"),
    }
}

#[test]
fn follows_a_writer_across_rotation_without_missing_or_repeating() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_owned();
    // Segments of ~1 KiB: the writer rotates every few records.
    let mut journal = Journal::open(&path, options(1024)).unwrap();
    let mut follower = Follower::open(&path, FollowOptions::default()).unwrap();
    let writer = std::thread::spawn(move || {
        for seq in 0..2000u64 {
            journal
                .append(
                    (seq % 4) as u32,
                    seq,
                    seq,
                    &vec![seq as u8; (seq % 97) as usize],
                )
                .unwrap();
            // The follower yields what is durable: sync now and then.
            if seq % 64 == 0 {
                journal.sync().unwrap();
                std::thread::sleep(Duration::from_millis(1));
            }
        }
        journal.sync().unwrap();
        journal.current_segment()
    });
    for seq in 0..2000u64 {
        let r = next_record(&mut follower);
        assert_eq!((r.seq, r.payload.len() as u64), (seq, seq % 97));
    }
    let last_segment = writer.join().unwrap();
    assert!(last_segment > 100, "rotated {last_segment} times");
    let idle = Instant::now() + Duration::from_millis(50);
    assert!(follower.next_before(Some(idle)).unwrap().is_none());
}

#[test]
fn retention_deleting_unread_segments_is_a_gap() {
    let dir = tempfile::tempdir().unwrap();
    let opts = JournalOptions {
        retention: Retention {
            max_segments: Some(2),
            max_bytes: None,
        },
        ..options(512)
    };
    let mut journal = Journal::open(dir.path(), opts).unwrap();
    let mut follower = Follower::open(dir.path(), FollowOptions::default()).unwrap();
    journal.append(1, 0, 0, &[0u8; 64]).unwrap();
    journal.sync().unwrap();
    let first = next_record(&mut follower);
    assert_eq!(first.seq, 0);
    // The follower holds segment 1 open; retention deletes 1.. while it
    // does not read.
    for seq in 1..200u64 {
        journal.append(1, seq, 0, &[0u8; 64]).unwrap();
    }
    journal.sync().unwrap();
    // Whatever of segment 1 it still has open is read, then a gap, then
    // the records of the surviving segments, in order.
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut seqs = Vec::new();
    let mut gaps = Vec::new();
    while let Some(event) = follower
        .next_before(Some(
            deadline.min(Instant::now() + Duration::from_millis(200)),
        ))
        .unwrap()
    {
        match event {
            FollowEvent::Record(r) => seqs.push(r.seq),
            FollowEvent::Gap(g) => {
                gaps.push(g);
                seqs.push(u64::MAX);
            }
        }
    }
    assert_eq!(gaps.len(), 1, "{gaps:?}");
    let g = gaps[0];
    assert!(g.first_segment >= 2 && g.last_segment >= g.first_segment);
    assert!(g.to_position > g.from_position);
    let split = seqs.iter().position(|&s| s == u64::MAX).unwrap();
    let (before, after) = (&seqs[..split], &seqs[split + 1..]);
    assert!(before.windows(2).all(|w| w[1] == w[0] + 1));
    assert!(after.windows(2).all(|w| w[1] == w[0] + 1));
    assert_eq!(*after.last().unwrap(), 199);
    assert!(
        after[0] > before.last().unwrap() + 1,
        "records really were lost"
    );
    // The follower's cursor after the gap is usable.
    let c = follower.cursor().copied().unwrap();
    assert_eq!(Reader::from_cursor(dir.path(), &c).unwrap().count(), 0);
}

#[test]
fn follower_from_a_deleted_segment_refuses_or_reports_the_gap() {
    let dir = tempfile::tempdir().unwrap();
    let opts = JournalOptions {
        retention: Retention {
            max_segments: Some(2),
            max_bytes: None,
        },
        ..options(512)
    };
    let mut journal = Journal::open(dir.path(), opts).unwrap();
    journal.append(1, 0, 0, &[0u8; 64]).unwrap();
    let c = Reader::open(dir.path())
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .cursor();
    for seq in 1..50u64 {
        journal.append(1, seq, 0, &[0u8; 64]).unwrap();
    }
    journal.sync().unwrap();
    let err = Follower::from_cursor(dir.path(), &c, FollowOptions::default()).unwrap_err();
    assert!(matches!(err, JournalError::CursorMismatch { .. }), "{err}");
    let allow = FollowOptions {
        resume_past_deleted: true,
        ..Default::default()
    };
    let mut f = Follower::from_cursor(dir.path(), &c, allow).unwrap();
    let deadline = Some(Instant::now() + Duration::from_secs(5));
    match f.next_before(deadline).unwrap() {
        Some(FollowEvent::Gap(g)) => assert_eq!(g.first_segment, 1),
        other => panic!("{other:?}"),
    }
    let r = next_record(&mut f);
    assert!(r.seq > 1);
}

#[test]
fn a_torn_tail_is_waited_on_and_damage_in_the_middle_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let mut journal = Journal::open(dir.path(), options(1 << 20)).unwrap();
    for seq in 0..3 {
        journal.append(1, seq, 0, &[1u8; 100]).unwrap();
    }
    journal.sync().unwrap();
    drop(journal);
    let seg = dir.path().join(ringlog::journal::segment_file_name(1));
    // Half a frame at the end, as a writer in the middle of a write leaves.
    let mut frame = Vec::new();
    ringlog::journal::frame_into_vec(&mut frame, 1, 3, 0, &[1u8; 100]).unwrap();
    let mut bytes = std::fs::read(&seg).unwrap();
    let whole = bytes.len();
    bytes.extend_from_slice(&frame[..50]);
    std::fs::write(&seg, &bytes).unwrap();
    // Bytes written by hand are not in the durable watermark: follow what
    // is written.
    let written = FollowOptions {
        bound: FollowBound::Written,
        ..Default::default()
    };
    let mut f = Follower::open(dir.path(), written).unwrap();
    for seq in 0..3 {
        assert_eq!(next_record(&mut f).seq, seq);
    }
    let soon = Some(Instant::now() + Duration::from_millis(100));
    assert!(
        f.next_before(soon).unwrap().is_none(),
        "torn tail waited on"
    );
    // The rest of the frame lands.
    bytes.extend_from_slice(&frame[50..]);
    std::fs::write(&seg, &bytes).unwrap();
    assert_eq!(next_record(&mut f).seq, 3);

    // A damaged frame with valid frames after it is corruption.
    let mut bad = bytes.clone();
    bad[whole - 60] ^= 0xff;
    std::fs::write(&seg, &bad).unwrap();
    let mut f = Follower::open(dir.path(), written).unwrap();
    let mut got = Vec::new();
    let err = loop {
        match f.next_before(Some(Instant::now() + Duration::from_secs(5))) {
            Ok(Some(FollowEvent::Record(r))) => got.push(r.seq),
            Ok(other) => panic!("{other:?}"),
            Err(e) => break e,
        }
    };
    assert!(matches!(err, JournalError::Corrupt { .. }), "{err}");
    assert_eq!(got, [0, 1]);
}

#[test]
fn async_follower_delivers_on_tokio() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_owned();
    let mut journal = Journal::open(&path, options(4096)).unwrap();
    let mut f = Follower::open(&path, FollowOptions::default())
        .unwrap()
        .into_async(16);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    let writer = std::thread::spawn(move || {
        for seq in 0..500u64 {
            journal.append(2, seq, 0, b"x").unwrap();
            if seq % 50 == 49 {
                journal.sync().unwrap();
            }
        }
    });
    let seqs = rt.block_on(async {
        let mut seqs = Vec::new();
        while seqs.len() < 500 {
            let next = tokio::time::timeout(Duration::from_secs(20), f.next()).await;
            match next.expect("an event in time") {
                Some(Ok(FollowEvent::Record(r))) => seqs.push(r.seq),
                other => panic!("{other:?}"),
            }
        }
        seqs
    });
    writer.join().unwrap();
    assert_eq!(seqs, (0..500).collect::<Vec<_>>());
}

#[test]
fn a_record_is_yielded_once_durable_not_once_written() {
    let dir = tempfile::tempdir().unwrap();
    let mut journal = Journal::open(dir.path(), options(1 << 20)).unwrap();
    let mut durable = Follower::open(dir.path(), FollowOptions::default()).unwrap();
    let written_only = FollowOptions {
        bound: FollowBound::Written,
        ..Default::default()
    };
    let mut written = Follower::open(dir.path(), written_only).unwrap();
    journal.append(1, 0, 0, b"synced").unwrap();
    journal.sync().unwrap();
    journal.append(1, 1, 0, b"written").unwrap();
    assert_eq!(next_record(&mut durable).payload, b"synced");
    let soon = || Some(Instant::now() + Duration::from_millis(100));
    assert!(
        durable.next_before(soon()).unwrap().is_none(),
        "a record written but not synced was yielded"
    );
    // Without the bound the same record is there.
    assert_eq!(next_record(&mut written).seq, 0);
    assert_eq!(next_record(&mut written).payload, b"written");
    // After the sync it is yielded, woken by the watermark's change.
    journal.sync().unwrap();
    assert_eq!(next_record(&mut durable).payload, b"written");
    // The bound holds across rotation: a new segment's records wait too.
    drop(journal);
    let mut journal = Journal::open(dir.path(), options(256)).unwrap();
    for seq in 2..10 {
        journal.append(1, seq, 0, &[7u8; 100]).unwrap();
    }
    assert!(journal.current_segment() > 1);
    assert!(durable.next_before(soon()).unwrap().is_none());
    journal.sync().unwrap();
    for seq in 2..10 {
        assert_eq!(next_record(&mut durable).seq, seq);
    }
}

#[test]
fn a_journal_without_a_watermark_is_followed_as_written() {
    let dir = tempfile::tempdir().unwrap();
    let mut journal = Journal::open(dir.path(), options(1 << 20)).unwrap();
    for seq in 0..3 {
        journal.append(1, seq, 0, b"old").unwrap();
    }
    drop(journal);
    // As a journal from before the watermark file existed.
    std::fs::remove_file(dir.path().join(ringlog::journal::DURABLE_FILE_NAME)).unwrap();
    let mut f = Follower::open(dir.path(), FollowOptions::default()).unwrap();
    for seq in 0..3 {
        assert_eq!(next_record(&mut f).seq, seq);
    }
    // A damaged watermark is waited on, never trusted: nothing is yielded
    // past it until a writer publishes a valid one.
    std::fs::write(
        dir.path().join(ringlog::journal::DURABLE_FILE_NAME),
        [0u8; 40],
    )
    .unwrap();
    let mut f = Follower::open(dir.path(), FollowOptions::default()).unwrap();
    let soon = Some(Instant::now() + Duration::from_millis(100));
    assert!(f.next_before(soon).unwrap().is_none());
    let journal = Journal::open(dir.path(), options(1 << 20)).unwrap();
    for seq in 0..3 {
        assert_eq!(next_record(&mut f).seq, seq);
    }
    drop(journal);
}

/// A journal of several producers with non-monotonic timestamps.
fn sample(dir: &Path, records: u64, producers: u32, seed: u64) -> Vec<Record> {
    let mut journal = Journal::open(dir, options(16 << 10)).unwrap();
    let mut x = seed | 1;
    let mut next_seq = vec![0u64; producers as usize];
    for i in 0..records {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let p = (x % u64::from(producers)) as u32;
        let seq = next_seq[p as usize];
        next_seq[p as usize] += 1;
        // Roughly rising time with jitter, as several clocks give.
        let ts = i * 10 + (x >> 40) % 50;
        journal
            .append(p, seq, ts, &vec![p as u8; (x % 200) as usize])
            .unwrap();
    }
    journal.sync().unwrap();
    drop(journal);
    Reader::open(dir).unwrap().map(Result::unwrap).collect()
}

fn query(dir: &Path, filter: RecordFilter, index: IndexUse) -> Vec<(u64, u64)> {
    let opts = FollowOptions {
        filter,
        index,
        ..Default::default()
    };
    let mut f = Follower::open(dir, opts).unwrap();
    let mut out = Vec::new();
    while let Some(e) = f.try_next().unwrap() {
        match e {
            FollowEvent::Record(r) => out.push((r.segment, r.offset)),
            FollowEvent::Gap(g) => panic!("{g:?}"),
        }
    }
    out
}

fn scan(records: &[Record], filter: &RecordFilter) -> Vec<(u64, u64)> {
    records
        .iter()
        .filter(|r| filter.matches(r.producer, r.seq, r.timestamp))
        .map(|r| (r.segment, r.offset))
        .collect()
}

#[test]
fn index_is_built_validated_and_seeks() {
    let dir = tempfile::tempdir().unwrap();
    let records = sample(dir.path(), 3000, 3, 7);
    let report = rebuild_index(dir.path()).unwrap();
    assert!(report.segments > 10);
    assert_eq!(report.written, report.segments);
    assert_eq!(rebuild_index(dir.path()).unwrap().kept, report.segments);
    let ix = SegmentIndex::load(dir.path(), 3)
        .unwrap()
        .expect("valid index");
    assert!(ix.entries() > 3);
    let in_three: Vec<&Record> = records.iter().filter(|r| r.segment == 3).collect();
    let mid = in_three[in_three.len() / 2];
    // The index lets a reader start well inside the segment, and never
    // after a match.
    let seek = RecordFilter {
        since: Some(mid.timestamp),
        ..Default::default()
    };
    let start = ix.start_offset(&seek);
    assert!(start > in_three[1].offset, "seeks past the start: {start}");
    assert!(in_three
        .iter()
        .filter(|r| r.timestamp >= mid.timestamp)
        .all(|r| r.offset >= start));
    let by_seq = RecordFilter {
        producer: Some(mid.producer),
        seq_from: Some(mid.seq),
        ..Default::default()
    };
    let start = ix.start_offset(&by_seq);
    assert!(start <= mid.offset);
    let filter = RecordFilter {
        since: Some(records[2500].timestamp),
        ..Default::default()
    };
    assert_eq!(
        query(dir.path(), filter, IndexUse::Use),
        scan(&records, &filter)
    );
    // An orphan index (segment gone) is removed by the rebuild, never
    // touched by Journal::open.
    std::fs::copy(
        dir.path().join(index_file_name(1)),
        dir.path().join(index_file_name(999)),
    )
    .unwrap();
    drop(Journal::open(dir.path(), options(16 << 10)).unwrap());
    assert!(dir.path().join(index_file_name(1)).exists());
    assert!(dir.path().join(index_file_name(999)).exists());
    assert_eq!(rebuild_index(dir.path()).unwrap().removed, 1);
}

#[test]
fn index_damage_never_changes_an_answer() {
    let dir = tempfile::tempdir().unwrap();
    // One small segment, so its index is small enough to flip every bit.
    let mut journal = Journal::open(dir.path(), options(1 << 20)).unwrap();
    for seq in 0..400u64 {
        journal
            .append((seq % 2) as u32, seq / 2, seq * 3 % 1000, &[seq as u8; 24])
            .unwrap();
    }
    journal.sync().unwrap();
    drop(journal);
    let records: Vec<Record> = Reader::open(dir.path())
        .unwrap()
        .map(Result::unwrap)
        .collect();
    rebuild_index(dir.path()).unwrap();
    let ipath = dir.path().join(index_file_name(1));
    let good = std::fs::read(&ipath).unwrap();
    assert!(good.len() < 2048, "{} bytes", good.len());
    let filters = [
        RecordFilter {
            since: Some(600),
            ..Default::default()
        },
        RecordFilter {
            producer: Some(1),
            seq_from: Some(150),
            ..Default::default()
        },
        RecordFilter {
            producer: Some(0),
            since: Some(900),
            seq_to: Some(190),
            ..Default::default()
        },
    ];
    let expected: Vec<_> = filters.iter().map(|f| scan(&records, f)).collect();
    let check = |what: &str| {
        for (f, want) in filters.iter().zip(&expected) {
            assert_eq!(&query(dir.path(), *f, IndexUse::Use), want, "{what}: {f:?}");
        }
    };
    check("intact");
    // Header (112 bytes) and producer table: what a reader trusts to skip
    // a whole segment, under a CRC of its own.
    let summary_len = 112 + 32 * SegmentIndex::decode(&good).unwrap().producers().len();
    for bit in 0..good.len() * 8 {
        let mut b = good.clone();
        b[bit / 8] ^= 1 << (bit % 8);
        assert!(SegmentIndex::decode(&b).is_err(), "bit {bit} flip accepted");
        if bit < summary_len * 8 {
            assert!(
                SegmentIndex::decode_summary(&b).is_err(),
                "summary bit {bit}"
            );
        }
        std::fs::write(&ipath, &b).unwrap();
        // Answers through the damaged index: every 16th flip (the check
        // above already proves each is rejected before use).
        if bit % 16 == 0 {
            check(&format!("bit {bit}"));
        }
    }
    for len in [0, 1, 8, 103, 108, good.len() / 2, good.len() - 1] {
        std::fs::write(&ipath, &good[..len]).unwrap();
        check(&format!("truncated to {len}"));
    }
    std::fs::remove_file(&ipath).unwrap();
    check("deleted");
    // An index for another instance of the segment (stale) is ignored too.
    std::fs::write(&ipath, &good).unwrap();
    let seg = dir.path().join(ringlog::journal::segment_file_name(1));
    let f = std::fs::OpenOptions::new().write(true).open(&seg).unwrap();
    f.set_len(records[300].offset).unwrap();
    let shorter: Vec<Record> = records[..300].to_vec();
    for fl in &filters {
        assert_eq!(query(dir.path(), *fl, IndexUse::Use), scan(&shorter, fl));
    }
}

#[test]
fn a_follower_can_build_missing_indexes() {
    let dir = tempfile::tempdir().unwrap();
    let records = sample(dir.path(), 1000, 2, 3);
    let opts = RecordFilter::default();
    assert_eq!(
        query(dir.path(), opts, IndexUse::Build).len(),
        records.len()
    );
    let last = records.last().unwrap().segment;
    for n in 1..last {
        assert!(
            SegmentIndex::load(dir.path(), n).unwrap().is_some(),
            "sealed segment {n} got its index"
        );
    }
}

#[test]
fn cursor_resume_through_follower_matches_reader() {
    let dir = tempfile::tempdir().unwrap();
    let records = sample(dir.path(), 500, 2, 11);
    for i in [0usize, 1, 57, 250, 498, 499] {
        let c: Cursor = records[i].cursor().to_string().parse().unwrap();
        let mut f = Follower::from_cursor(dir.path(), &c, FollowOptions::default()).unwrap();
        let mut got = Vec::new();
        while let Some(FollowEvent::Record(r)) = f.try_next().unwrap() {
            got.push(r);
        }
        assert_eq!(got, records[i + 1..], "after {i}");
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    /// Random queries through the index return what a full scan returns.
    #[test]
    fn index_queries_equal_full_scans(
        seed in 1u64..1000,
        since in proptest::option::of(0u64..32_000),
        until in proptest::option::of(0u64..32_000),
        producer in proptest::option::of(0u32..4),
        seq_from in proptest::option::of(0u64..1200),
        seq_to in proptest::option::of(0u64..1200),
    ) {
        let dir = tempfile::tempdir().unwrap();
        let records = sample(dir.path(), 3000, 3, seed);
        rebuild_index(dir.path()).unwrap();
        let filter = RecordFilter { since, until, producer, seq_from, seq_to };
        prop_assert_eq!(query(dir.path(), filter, IndexUse::Use), scan(&records, &filter));
    }
}
