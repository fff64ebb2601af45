use super::*;
use crate::wait::deadline_after;
use std::time::Duration;

fn records(rx: &mut Consumer) -> Vec<Vec<u8>> {
    match rx.try_read() {
        Ok(batch) => {
            let out = batch.iter().map(|r| r.unwrap().to_vec()).collect();
            batch.release();
            out
        }
        Err(TryReadError::Empty) => Vec::new(),
        Err(e) => panic!("unexpected {e:?}"),
    }
}

#[test]
fn capacity_is_rounded_and_bounded() {
    let (tx, rx) = channel(100).unwrap();
    assert_eq!(tx.capacity(), 128);
    assert_eq!(rx.capacity(), 128);
    assert_eq!(tx.max_record_len(), 56);
    assert!(matches!(
        channel(8),
        Err(NewRingError::Capacity { requested: 8, .. })
    ));
    assert!(channel(MAX_CAPACITY + 1).is_err());
}

#[test]
fn too_large_names_both_sizes() {
    let (mut tx, _rx) = channel(128).unwrap();
    let e = tx.try_claim(57).unwrap_err();
    assert_eq!(
        e,
        TryClaimError::TooLarge(TooLarge {
            requested: 57,
            max: 56
        })
    );
    assert_eq!(
        e.to_string(),
        "record of 57 bytes exceeds the ring's maximum record of 56 bytes"
    );
    assert!(tx.try_claim(56).is_ok());
}

#[test]
fn empty_then_records_in_order() {
    let (mut tx, mut rx) = channel(256).unwrap();
    assert!(matches!(rx.try_read(), Err(TryReadError::Empty)));
    tx.try_push(b"a").unwrap();
    tx.try_push(b"").unwrap();
    tx.try_push(b"0123456789").unwrap();
    assert_eq!(rx.available(), 8 + 8 + 8 + 8 + 16);
    assert_eq!(
        records(&mut rx),
        vec![b"a".to_vec(), vec![], b"0123456789".to_vec()]
    );
    assert_eq!(rx.available(), 0);
    assert_eq!(tx.free_space(), 256);
}

#[test]
fn full_and_partial_commit() {
    let (mut tx, mut rx) = channel(64).unwrap();
    // 64 bytes hold two 24-byte records (8 header + 16 payload) and one 16.
    tx.try_push(&[1; 16]).unwrap();
    tx.try_push(&[2; 16]).unwrap();
    assert_eq!(tx.try_claim(16).unwrap_err(), TryClaimError::Full);
    let mut g = tx.try_claim(8).unwrap();
    assert_eq!(g.len(), 8);
    g[..3].copy_from_slice(b"xyz");
    g.commit(3);
    assert_eq!(tx.free_space(), 0);
    assert_eq!(
        records(&mut rx),
        vec![vec![1; 16], vec![2; 16], b"xyz".to_vec()]
    );
}

#[test]
fn uncommitted_grant_publishes_nothing() {
    let (mut tx, mut rx) = channel(64).unwrap();
    let _ = tx.try_claim(10).unwrap();
    assert!(matches!(rx.try_read(), Err(TryReadError::Empty)));
    tx.try_push(b"ok").unwrap();
    assert_eq!(records(&mut rx), vec![b"ok".to_vec()]);
}

#[test]
#[should_panic(expected = "exceeds the grant")]
fn commit_beyond_grant_panics() {
    let (mut tx, _rx) = channel(64).unwrap();
    tx.try_claim(4).unwrap().commit(5);
}

#[test]
fn wrap_inserts_hidden_padding() {
    let (mut tx, mut rx) = channel(64).unwrap();
    tx.try_push(&[1; 24]).unwrap(); // 32 bytes at 0..32
    tx.try_push(&[2; 8]).unwrap(); // 16 bytes at 32..48
    assert_eq!(records(&mut rx).len(), 2);
    // 24 + 8 = 32 bytes do not fit in the 16 left before the end: 16 bytes of
    // padding, then the record at offset 0.
    tx.try_push(&[3; 24]).unwrap();
    assert_eq!(rx.available(), 16 + 32);
    assert_eq!(records(&mut rx), vec![vec![3; 24]]);
    // The freed space is usable again.
    tx.try_push(&[4; 24]).unwrap();
    tx.try_push(&[5; 8]).unwrap();
    assert_eq!(records(&mut rx), vec![vec![4; 24], vec![5; 8]]);
}

#[test]
fn unreleased_batch_is_read_again() {
    let (mut tx, mut rx) = channel(64).unwrap();
    tx.try_push(b"keep").unwrap();
    let batch = rx.try_read().unwrap();
    assert_eq!(batch.iter().count(), 1);
    let _ = batch;
    assert_eq!(records(&mut rx), vec![b"keep".to_vec()]);
}

#[test]
fn consumer_drains_then_sees_disconnect() {
    let (mut tx, mut rx) = channel(64).unwrap();
    tx.try_push(b"last").unwrap();
    drop(tx);
    assert_eq!(records(&mut rx), vec![b"last".to_vec()]);
    assert!(matches!(rx.try_read(), Err(TryReadError::Disconnected)));
    assert!(matches!(rx.read(None), Err(ReadError::Disconnected)));
}

#[test]
fn producer_sees_consumer_gone_when_full() {
    let (mut tx, rx) = channel(64).unwrap();
    assert!(!tx.is_abandoned());
    drop(rx);
    assert!(tx.is_abandoned());
    tx.try_push(&[0; 24]).unwrap();
    tx.try_push(&[0; 24]).unwrap();
    assert_eq!(tx.try_push(&[0; 24]), Err(TryClaimError::Disconnected));
    assert_eq!(tx.push(&[0; 24], None), Err(ClaimError::Disconnected));
}

#[test]
fn blocking_calls_time_out() {
    let (mut tx, mut rx) = channel(64).unwrap();
    let dl = || deadline_after(Some(Duration::from_millis(5)));
    assert!(matches!(rx.read(dl()), Err(ReadError::Timeout)));
    tx.try_push(&[0; 24]).unwrap();
    tx.try_push(&[0; 24]).unwrap();
    assert_eq!(tx.push(&[0; 24], dl()), Err(ClaimError::Timeout));
}

#[test]
fn blocked_producer_is_woken_by_release() {
    let (mut tx, mut rx) = channel(64).unwrap();
    tx.try_push(&[7; 24]).unwrap();
    tx.try_push(&[7; 24]).unwrap();
    let t = std::thread::spawn(move || {
        tx.push(&[8; 24], deadline_after(Some(Duration::from_secs(10))))
            .unwrap();
        tx
    });
    std::thread::sleep(Duration::from_millis(20));
    assert_eq!(records(&mut rx).len(), 2);
    let _tx = t.join().unwrap();
    assert_eq!(records(&mut rx), vec![vec![8; 24]]);
}

/// Writes `value` as a raw u64 at data offset `off` (simulating a hostile peer).
fn poke(rx: &Consumer, off: u64, value: u64) {
    // SAFETY: test-only; `off` is inside the data area and 8-aligned, and no
    // other thread touches the ring.
    unsafe { rx.ring.data(off).cast::<u64>().write(value) }
}

#[test]
fn garbled_header_is_reported_not_followed() {
    let (mut tx, mut rx) = channel(64).unwrap();
    tx.try_push(b"good").unwrap();
    tx.try_push(b"bad").unwrap();
    poke(&rx, 16, layout::encode_header(1000, layout::KIND_DATA));
    let batch = rx.try_read().unwrap();
    let got: Vec<_> = batch.iter().collect();
    assert_eq!(got[0], Ok(&b"good"[..]));
    let e = got[1].unwrap_err();
    assert_eq!(e.position, 16);
    assert_eq!(got.len(), 2);
    batch.release();
    assert!(matches!(rx.try_read(), Err(TryReadError::Corrupt(_))));
}

#[test]
fn unknown_kind_and_bad_padding_are_corrupt() {
    for word in [
        layout::encode_header(0, 0),
        layout::encode_header(0, 7),
        layout::encode_header(8, layout::KIND_PAD),
    ] {
        let (mut tx, mut rx) = channel(64).unwrap();
        tx.try_push(b"x").unwrap();
        poke(&rx, 0, word);
        let batch = rx.try_read().unwrap();
        assert!(batch.iter().next().unwrap().is_err(), "{word:#x}");
    }
}

#[test]
fn head_beyond_capacity_is_corrupt() {
    let (tx, mut rx) = channel(64).unwrap();
    rx.ring
        .control()
        .producer
        .pos
        .store(1 << 20, crate::sync::Ordering::Release);
    assert!(matches!(rx.try_read(), Err(TryReadError::Corrupt(c)) if c.value == 1 << 20));
    drop(tx);
}

/// Two real threads through a small ring, so Miri's race detector sees the
/// cross-thread protocol (blocking on both sides, wrap-around, padding).
#[test]
fn two_threads_pass_every_record() {
    let n: u32 = if cfg!(miri) { 300 } else { 100_000 };
    let (mut tx, mut rx) = channel(256).unwrap();
    let t = std::thread::spawn(move || {
        for i in 0..n {
            let len = (i % 50) as usize + 4;
            let mut g = tx.claim(len, None).unwrap();
            g[..4].copy_from_slice(&i.to_le_bytes());
            g[4..].fill(i as u8);
            g.commit(len);
        }
    });
    let mut next = 0u32;
    while let Ok(batch) = rx.read(None) {
        for r in batch.iter() {
            let r = r.unwrap();
            assert_eq!(r.len(), (next % 50) as usize + 4);
            assert_eq!(r[..4], next.to_le_bytes());
            assert!(r[4..].iter().all(|&b| b == next as u8));
            next += 1;
        }
        batch.release();
    }
    t.join().unwrap();
    assert_eq!(next, n);
}

#[test]
fn max_record_len_never_exceeds_the_header_length_field() {
    use super::producer::max_record_len;
    // Small rings: half the capacity less a header.
    assert_eq!(max_record_len(128), 56);
    assert_eq!(max_record_len(1 << 33), (1 << 32) - RECORD_HEADER_LEN);
    // From 16 GiB on, half the capacity would not fit the 32-bit length
    // field: the limit is the field's (computed, not allocated).
    for cap in [1u64 << 34, 1 << 35, MAX_CAPACITY as u64] {
        assert_eq!(max_record_len(cap), MAX_RECORD_LEN, "capacity {cap}");
        // A record of that length still fits wherever the ring wrapped.
        assert!(record_len(MAX_RECORD_LEN as u64) <= cap / 2);
    }
    assert_eq!(u32::try_from(MAX_RECORD_LEN), Ok(u32::MAX));
}

/// The largest capacity passes the range check, and 1 TiB of zeroed memory
/// is refused by the allocator: an error, never an abort.
#[test]
#[cfg_attr(miri, ignore = "Miri reports a huge allocation as resource exhaustion")]
fn unallocatable_ring_is_an_error() {
    match channel(MAX_CAPACITY) {
        Err(NewRingError::Alloc { requested, source }) => {
            assert_eq!(requested, MAX_CAPACITY);
            assert!(source.bytes > MAX_CAPACITY);
        }
        other => panic!("{other:?}"),
    }
}

/// `copy_into` (the only read path over shared memory) yields the same
/// records as `iter`, across the wrap and its padding, and releases the
/// same bytes.
#[test]
fn copied_batch_matches_the_ring() {
    let (mut tx, mut rx) = channel(256).unwrap();
    let mut scratch = Vec::new();
    let rounds = if cfg!(miri) { 20 } else { 500 };
    let mut next = 0u32;
    for round in 0..rounds {
        let mut pushed = Vec::new();
        for k in 0..(round % 5) {
            let rec: Vec<u8> = (0..(round * 7 + k) % 60)
                .map(|i| (i as u32 + next) as u8)
                .collect();
            if tx.try_push(&rec).is_err() {
                break;
            }
            next += 1;
            pushed.push(rec);
        }
        let Ok(batch) = rx.try_read() else {
            assert!(pushed.is_empty());
            continue;
        };
        let direct: Vec<Vec<u8>> = batch.iter().map(|r| r.unwrap().to_vec()).collect();
        let span = batch.len_bytes();
        let copied = batch.copy_into(&mut scratch);
        assert_eq!(copied.len_bytes(), span);
        let got: Vec<Vec<u8>> = copied.iter().map(|r| r.unwrap().to_vec()).collect();
        assert_eq!(got, direct);
        assert_eq!(got, pushed);
        copied.release();
        assert_eq!(rx.available(), 0);
    }
}

/// A grant's `write_at` lands exactly where asked, at any offset.
#[test]
fn grant_write_at_any_offset() {
    let (mut tx, mut rx) = channel(256).unwrap();
    let mut g = tx.try_claim(20).unwrap();
    g.copy_from_slice(&[0u8; 20]);
    g.write_at(3, b"hello");
    g.write_at(19, b"!");
    g.commit(20);
    let got = records(&mut rx);
    let mut want = vec![0u8; 20];
    want[3..8].copy_from_slice(b"hello");
    want[19] = b'!';
    assert_eq!(got, [want]);
}
