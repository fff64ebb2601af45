use super::*;
use crate::bytes::{
    ByteQueueWriter, CommitGrant, PushError, TooLarge, TryClaimError, TryPushError,
};
use std::time::Duration;

fn one(cap: usize) -> (Writer, Reader) {
    let (mut w, r) = channel(Config::new(cap, 1)).unwrap();
    (w.pop().unwrap(), r)
}

#[test]
fn records_come_back_in_one_slice_in_order() {
    let (mut w, mut r) = one(1024);
    assert_eq!(r.try_read().unwrap_err(), TryReadError::Empty);
    for i in 0..10u8 {
        w.try_push(&vec![i; usize::from(i) * 3]).unwrap();
    }
    let b = r.try_read().unwrap();
    assert!(b.as_slices()[1].is_empty(), "one contiguous slice");
    assert_eq!(b.len_records(), 10);
    let total: usize = (0..10).map(|i| record_len(i * 3)).sum();
    assert_eq!(b.len_bytes(), total);
    for (i, rec) in b.records().enumerate() {
        assert_eq!(rec, vec![i as u8; i * 3]);
    }
    b.release();
    assert_eq!(r.try_read().unwrap_err(), TryReadError::Empty);
    let s = r.stats();
    assert_eq!(s.reader.batches, 1);
    assert_eq!(s.reader.records, 10);
    assert_eq!(s.writers[0].records, 10);
    assert_eq!(s.writers[0].bytes, (0..10).map(|i| i * 3).sum::<u64>());
}

#[test]
fn partial_commit_and_abandoned_grant_become_padding() {
    let (mut w, mut r) = one(1024);
    let mut g = w.try_claim(100).unwrap();
    g[..3].copy_from_slice(b"abc");
    g.commit(3);
    drop(w.try_claim(50).unwrap());
    w.try_push(b"after").unwrap();
    let b = r.try_read().unwrap();
    assert_eq!(
        b.len_bytes(),
        record_len(100) + record_len(50) + record_len(5)
    );
    assert_eq!(b.records().collect::<Vec<_>>(), [&b"abc"[..], b"after"]);
    assert_eq!(b.len_records(), 2);
    b.release();
}

#[test]
fn unreleased_batch_is_returned_again() {
    let (mut w, mut r) = one(256);
    w.try_push(b"x").unwrap();
    let unreleased = r.try_read().unwrap();
    assert_eq!(unreleased.len_records(), 1);
    let _ = unreleased;
    w.try_push(b"y").unwrap();
    let b = r.try_read().unwrap();
    assert_eq!(b.records().collect::<Vec<_>>(), [b"x"]);
    b.release();
    let b = r.try_read().unwrap();
    assert_eq!(b.records().collect::<Vec<_>>(), [b"y"]);
    b.release();
}

#[test]
fn straddling_record_is_void_and_the_tail_is_wasted() {
    // 64-byte buffers: a 30-byte payload takes 40 bytes, the second would
    // straddle the end.
    let (mut ws, mut r) = channel(Config::new(64, 1).with_policy(Policy::DropNewest)).unwrap();
    let w = &mut ws[0];
    w.try_push(&[1; 30]).unwrap();
    assert!(matches!(w.try_push(&[2; 30]), Err(TryPushError::Full(_))));
    // Still full, without another reservation.
    assert!(matches!(w.push(&[3; 30], None), Err(PushError::Dropped(_))));
    let b = r.try_read().unwrap();
    assert_eq!(b.len_bytes(), 40);
    assert_eq!(b.records().collect::<Vec<_>>(), [&[1u8; 30][..]]);
    b.release();
    w.try_push(&[4; 30]).unwrap();
    let b = r.try_read().unwrap();
    assert_eq!(b.records().collect::<Vec<_>>(), [&[4u8; 30][..]]);
    b.release();
    let s = r.stats();
    assert_eq!(s.writers[0].dropped, 1);
    assert_eq!(s.writers[0].records, 2);
    assert_eq!(s.reader.wasted_bytes, 24);
}

#[test]
fn record_that_fills_the_buffer_exactly_fits() {
    let (mut w, mut r) = one(64);
    assert_eq!(w.max_record_len(), 56);
    w.try_push(&[9; 56]).unwrap();
    assert!(matches!(w.try_push(b""), Err(TryPushError::Full(_))));
    let b = r.try_read().unwrap();
    assert_eq!(b.len_bytes(), 64);
    b.release();
    let e = w.try_push(&[0; 57]).unwrap_err();
    assert!(matches!(e, TryPushError::TooLarge(_, 56)));
    assert_eq!(
        w.try_claim(57).unwrap_err(),
        TryClaimError::TooLarge(TooLarge {
            requested: 57,
            max: 56
        })
    );
}

#[test]
fn blocked_push_times_out() {
    let (mut w, _r) = one(64);
    w.try_push(&[0; 56]).unwrap();
    let dl = crate::wait::deadline_after(Some(Duration::from_millis(5)));
    assert!(matches!(w.push(b"late", dl), Err(PushError::Timeout(_))));
    assert!(_r.stats().writers[0].blocked >= Duration::from_millis(5));
}

#[test]
fn disconnection_is_seen_on_both_sides() {
    let (mut w, mut r) = one(64);
    w.try_push(b"last").unwrap();
    drop(w);
    assert!(!r.is_disconnected());
    let b = r.read(None).unwrap();
    assert_eq!(b.records().collect::<Vec<_>>(), [b"last"]);
    b.release();
    assert!(r.is_disconnected());
    assert_eq!(r.read(None).unwrap_err(), ReadError::Disconnected);

    let (mut w, r) = one(64);
    w.try_push(&[0; 56]).unwrap();
    drop(r);
    assert!(matches!(
        w.push(b"x", None),
        Err(PushError::Disconnected(_))
    ));
}

#[test]
fn bad_configs_are_rejected() {
    assert!(matches!(
        channel(Config::new(8, 1)),
        Err(NewQueueError::Capacity { .. })
    ));
    assert!(matches!(
        channel(Config::new(64, 0)),
        Err(NewQueueError::Writers { .. })
    ));
    assert!(matches!(
        channel(Config::new(64, 1).with_buffers(3)),
        Err(NewQueueError::Buffers { requested: 3 })
    ));
    assert!(channel(Config::new(64, 1).with_buffers(4)).is_ok());
}

#[test]
fn limits_are_known_before_anything_is_allocated() {
    use crate::bytes::{self, Design, QueueLimits};
    let c = Config::new(1000, 3);
    assert_eq!(
        limits(&c),
        Ok(QueueLimits {
            max_record_len: 1000 - 8,
            memory_bytes: 2000,
        })
    );
    let (w, _r) = channel(c).unwrap();
    assert_eq!(w[0].max_record_len(), 1000 - 8);
    // The ring designs round up to a power of two and keep half of it.
    let l = bytes::limits(Design::SharedRing, &Config::new(1000, 2)).unwrap();
    assert_eq!((l.max_record_len, l.memory_bytes), (512 - 8, 1024));
    let l = bytes::limits(Design::FanIn, &Config::new(1000, 4)).unwrap();
    assert_eq!(l.max_record_len, 512 - 8);
    assert!(l.memory_bytes >= 4 * 1024);
    // Sizes the designs cannot take are errors, not aborts.
    assert!(matches!(
        bytes::limits(Design::FanIn, &Config::new(usize::MAX, 1)),
        Err(NewQueueError::Capacity { .. })
    ));
    assert!(matches!(
        limits(&Config::new(MAX_CAPACITY + 1, 1)),
        Err(NewQueueError::Capacity { .. })
    ));
}

#[test]
#[cfg_attr(miri, ignore = "asks the allocator for a terabyte")]
fn memory_the_allocator_refuses_is_an_error() {
    // 256 rings of 1 TiB: far beyond this machine. The allocator refuses
    // (the error) or, with unlimited overcommit, hands out untouched pages.
    match crate::bytes::fan_in::channel(Config::new(crate::ring::MAX_CAPACITY, 256)) {
        Err(NewQueueError::OutOfMemory { bytes }) => assert!(bytes > 1 << 40),
        Err(e) => panic!("{e}"),
        Ok(_) => {}
    }
}

#[test]
fn writers_and_reader_on_threads_keep_per_writer_order() {
    let per_writer: u32 = if cfg!(miri) { 60 } else { 5_000 };
    for buffers in [2, 4] {
        let (ws, mut r) = channel(Config::new(512, 3).with_buffers(buffers)).unwrap();
        let threads: Vec<_> = ws
            .into_iter()
            .map(|mut w| {
                std::thread::spawn(move || {
                    for seq in 0..per_writer {
                        let mut rec = [0u8; 40];
                        rec[0] = w.id() as u8;
                        rec[4..8].copy_from_slice(&seq.to_le_bytes());
                        let len = 8 + (seq as usize % 33);
                        w.push(&rec[..len], None).unwrap();
                    }
                })
            })
            .collect();
        let mut next = [0u32; 3];
        while let Ok(b) = r.read(None) {
            for rec in b.records() {
                let id = usize::from(rec[0]);
                let seq = u32::from_le_bytes(rec[4..8].try_into().unwrap());
                assert_eq!(seq, next[id], "writer {id}");
                assert_eq!(rec.len(), 8 + (seq as usize % 33));
                next[id] += 1;
            }
            b.release();
        }
        threads.into_iter().for_each(|t| t.join().unwrap());
        assert_eq!(next, [per_writer; 3]);
        assert_eq!(r.stats().reader.records, u64::from(per_writer) * 3);
    }
}
