use super::*;

fn unique(tag: &str) -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    format!(
        "/ringlog-unit-{tag}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

#[test]
fn spsc_round_trip_and_resume_after_clean_close() {
    let name = unique("spsc");
    let mut rx = spsc::create(&name, 256).unwrap();
    let mut tx = spsc::connect(&name).unwrap();
    tx.push(b"one", None).unwrap();
    tx.push(b"two", None).unwrap();
    // Read but not released: a restarted consumer sees them again.
    assert_eq!(rx.read(None).unwrap().iter().count(), 2);
    drop(rx);
    let mut rx = spsc::open(&name, &ShmOptions::default()).unwrap();
    let batch = rx.try_read().unwrap();
    let got: Vec<_> = batch.iter().map(|r| r.unwrap().to_vec()).collect();
    assert_eq!(got, [b"one".to_vec(), b"two".to_vec()]);
    batch.release();
    drop(tx);
    assert_eq!(
        rx.read(None).unwrap_err(),
        crate::ring::ReadError::Disconnected
    );
    spsc::unlink(&name).unwrap();
}

#[test]
fn second_producer_is_busy_and_exists_is_reported() {
    let name = unique("busy");
    let _rx = spsc::create(&name, 256).unwrap();
    let _tx = spsc::connect(&name).unwrap();
    assert!(matches!(spsc::connect(&name), Err(ShmError::Busy { .. })));
    assert!(matches!(
        spsc::create(&name, 256),
        Err(ShmError::Exists { .. })
    ));
    assert!(matches!(
        spsc::open(&name, &ShmOptions::default()),
        Err(ShmError::Busy { .. })
    ));
    assert!(matches!(
        mpsc::connect(&name),
        Err(ShmError::KindMismatch { .. })
    ));
    spsc::unlink(&name).unwrap();
    assert!(matches!(
        spsc::connect(&name),
        Err(ShmError::NotFound { .. })
    ));
}

#[test]
fn mpsc_slots_are_independent() {
    let name = unique("mpsc");
    let mut rx = mpsc::create(&name, 3, 256).unwrap();
    let mut a = mpsc::connect(&name).unwrap();
    let mut b = mpsc::connect(&name).unwrap();
    let c = mpsc::connect_slot(&name, 2).unwrap();
    assert_eq!((a.slot(), b.slot(), c.slot()), (0, 1, 2));
    assert!(matches!(
        mpsc::connect(&name),
        Err(ShmError::NoFreeSlot { .. })
    ));
    // a fills its ring; b still gets through.
    while a.try_push(&[1; 40]).is_ok() {}
    b.try_push(b"b").unwrap();
    let mut from_b = 0;
    let mut from_a = 0;
    while let Ok(batch) = rx.try_read() {
        let n = batch.iter().count();
        if batch.slot() == 1 {
            from_b += n;
        } else {
            from_a += n;
        }
        batch.release();
    }
    assert_eq!(from_b, 1);
    assert!(from_a > 0);
    drop(c);
    assert_eq!(mpsc::connect(&name).unwrap().slot(), 2);
    mpsc::unlink(&name).unwrap();
}

#[test]
fn waiting_producer_is_woken_by_any_release() {
    // The producer waits for room for a record larger than any single
    // release frees; every release must wake it to re-check.
    let name = unique("wake");
    let mut rx = spsc::create(&name, 256).unwrap();
    let mut tx = spsc::connect(&name).unwrap();
    let small = [7u8; 16];
    while tx.try_push(&small).is_ok() {}
    let t = std::thread::spawn(move || {
        tx.push(&[9u8; 100], None).unwrap();
        tx
    });
    let mut seen = 0;
    while seen < 100 {
        let batch = rx.read(None).unwrap();
        let mut n = 0;
        for r in batch.iter() {
            if r.unwrap().len() == 100 {
                seen = 100;
            }
            n += 1;
        }
        // release one batch at a time, slowly
        batch.release();
        let _ = n;
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
    t.join().unwrap();
    spsc::unlink(&name).unwrap();
}

#[test]
fn anonymous_segment_is_sealed() {
    let (mut rx, seg) = spsc::create_anonymous(4096, &ShmOptions::default()).unwrap();
    assert!(rustix::fs::ftruncate(seg.fd(), 0).is_err());
    let mut tx = spsc::connect_segment(&seg, &ShmOptions::default()).unwrap();
    tx.push(b"x", None).unwrap();
    assert_eq!(rx.try_read().unwrap().iter().count(), 1);
}

#[test]
fn geometry_out_of_range_is_typed() {
    let name = unique("geom");
    assert!(matches!(
        spsc::create(&name, 8),
        Err(ShmError::Geometry { .. })
    ));
    assert!(matches!(
        mpsc::create(&name, 0, 4096),
        Err(ShmError::Geometry { .. })
    ));
    assert!(matches!(
        spsc::create("a/b", 4096),
        Err(ShmError::InvalidName { .. })
    ));
}

#[test]
fn mpsc_consumer_restart_resumes_every_ring_at_its_tail() {
    let name = unique("mpsc-restart");
    let mut rx = mpsc::create(&name, 2, 1024).unwrap();
    let mut a = mpsc::connect(&name).unwrap();
    let mut b = mpsc::connect(&name).unwrap();
    a.push(b"a0", None).unwrap();
    b.push(b"b0", None).unwrap();
    let batch = rx.read(None).unwrap();
    let first = batch.slot();
    batch.release(); // one slot's record is consumed, the other's is not
    drop(rx);
    a.push(b"a1", None).unwrap();
    let mut rx = mpsc::open(&name, &ShmOptions::default()).unwrap();
    let mut got = Vec::new();
    while let Ok(batch) = rx.try_read() {
        got.extend(batch.iter().map(|r| r.unwrap().to_vec()));
        batch.release();
    }
    got.sort();
    let expected: Vec<Vec<u8>> = if first == 0 {
        vec![b"a1".to_vec(), b"b0".to_vec()]
    } else {
        vec![b"a0".to_vec(), b"a1".to_vec()]
    };
    assert_eq!(got, expected);
    mpsc::unlink(&name).unwrap();
}

#[test]
fn consumer_available_ignores_a_rewritten_shared_tail() {
    let name = unique("tail");
    let mut rx = mpsc::create(&name, 1, 1024).unwrap();
    let mut tx = mpsc::connect(&name).unwrap();
    tx.push(b"x", None).unwrap();
    rx.try_read().unwrap().release();
    assert_eq!(rx.available(), 0);
    // A peer rewinds the consumer's shared tail: still nothing to read,
    // and a read with a deadline returns at the deadline.
    let seg = Segment::open(&name).unwrap();
    let file = std::fs::File::from(seg.fd().try_clone_to_owned().unwrap());
    use std::os::unix::fs::FileExt;
    let tail_offset = header::SLOTS_OFFSET + header::SLOT_HEADER_LEN + 128;
    file.write_all_at(&0u64.to_ne_bytes(), tail_offset as u64)
        .unwrap();
    assert_eq!(rx.available(), 0);
    let deadline = std::time::Instant::now() + std::time::Duration::from_millis(20);
    assert!(matches!(
        rx.read(Some(deadline)),
        Err(mpsc::MpscReadError::Timeout)
    ));
    mpsc::unlink(&name).unwrap();
}

#[test]
fn producer_abandoned_without_drop_keeps_its_records_and_its_slot() {
    let name = unique("forget");
    let mut rx = mpsc::create(&name, 2, 1024).unwrap();
    let mut tx = mpsc::connect_slot(&name, 0).unwrap();
    tx.push(b"kept", None).unwrap();
    let _ = tx.try_claim(16).unwrap(); // claimed, never committed
    std::mem::forget(tx); // no Drop: the ring stays open, the slot owned
    let batch = rx.read(None).unwrap();
    assert_eq!(batch.iter().next().unwrap().unwrap(), b"kept");
    batch.release();
    // The owner (this process) is alive, so the slot is not reclaimed...
    assert!(rx.check_producers().is_empty());
    assert!(matches!(
        mpsc::connect_slot(&name, 0),
        Err(ShmError::Busy { .. })
    ));
    // ...and the other slot is unaffected.
    let mut other = mpsc::connect(&name).unwrap();
    assert_eq!(other.slot(), 1);
    other.push(b"other", None).unwrap();
    assert_eq!(rx.read(None).unwrap().slot(), 1);
    mpsc::unlink(&name).unwrap();
}

/// Grants write segment memory only by copy: `write_at` at every unaligned
/// offset and length (the byte and word paths of `ShmRegion::write_bytes`)
/// lands exactly where asked.
#[test]
fn grant_writes_at_unaligned_offsets() {
    let (mut rx, seg) = spsc::create_anonymous(4096, &ShmOptions::default()).unwrap();
    let mut tx = spsc::connect_segment(&seg, &ShmOptions::default()).unwrap();
    for len in [1usize, 7, 8, 9, 23, 64] {
        for offset in 0..9 {
            let total = offset + len + 3;
            let mut want = vec![0u8; total];
            let mut g = tx.try_claim(total).unwrap();
            g.copy_from_slice(&want);
            let piece: Vec<u8> = (0..len).map(|i| (i * 7 + offset + 1) as u8).collect();
            g.write_at(offset, &piece);
            want[offset..offset + len].copy_from_slice(&piece);
            g.commit(total);
            let batch = rx.try_read().unwrap();
            let got: Vec<Vec<u8>> = batch.iter().map(|r| r.unwrap().to_vec()).collect();
            assert_eq!(got, [want], "offset {offset}, len {len}");
            batch.release();
        }
    }
}

/// The consumer reads a private copy: a peer that rewrites the whole
/// segment while a batch is held cannot change what the batch yields.
#[test]
fn held_batch_is_immune_to_a_peer_rewriting_the_segment() {
    use std::os::unix::fs::FileExt;
    let (mut rx, seg) = spsc::create_anonymous(4096, &ShmOptions::default()).unwrap();
    let mut tx = spsc::connect_segment(&seg, &ShmOptions::default()).unwrap();
    let records: Vec<Vec<u8>> = (0..20u8).map(|i| vec![i; 1 + usize::from(i) * 5]).collect();
    for r in &records {
        tx.push(r, None).unwrap();
    }
    let batch = rx.try_read().unwrap();
    let file = std::fs::File::from(seg.fd().try_clone_to_owned().unwrap());
    let scribble = vec![0xa5u8; seg.len() as usize - HEADER_LEN];
    file.write_all_at(&scribble, HEADER_LEN as u64).unwrap();
    let got: Vec<Vec<u8>> = batch.iter().map(|r| r.unwrap().to_vec()).collect();
    assert_eq!(got, records);
}

#[test]
#[should_panic(expected = "exceeds the grant")]
fn grant_write_past_its_end_panics() {
    let (_rx, seg) = spsc::create_anonymous(4096, &ShmOptions::default()).unwrap();
    let mut tx = spsc::connect_segment(&seg, &ShmOptions::default()).unwrap();
    let mut g = tx.try_claim(8).unwrap();
    g.write_at(5, b"abcd");
}

/// The MPSC consumer asleep on the doorbell (liveness far off, so only a
/// wake-up ends its sleeps early) is woken by each commit made while it
/// sleeps: by a producer's first commits, by a new producer in a slot the
/// last one closed (retired), and after the consumer itself restarted (its
/// episodes numbered on from the segment's). A lost wake-up is a `Timeout`
/// at the 10 s deadline.
#[test]
fn mpsc_consumer_asleep_is_woken_by_commits_across_close_and_restart() {
    use std::time::{Duration, Instant};
    let name = unique("bell");
    let options = ShmOptions {
        wait: crate::wait::WaitStrategy::SLEEP,
        liveness_interval: Duration::from_secs(60),
        ..ShmOptions::default()
    };
    let mut rx = mpsc::create_with(&name, 2, 1024, &options).unwrap();
    let producer = |name: String, first: u8| {
        std::thread::spawn(move || {
            let mut tx = mpsc::connect_slot(&name, 0).unwrap();
            for i in 0..3u8 {
                // Long enough for the consumer to be asleep.
                std::thread::sleep(Duration::from_millis(30));
                tx.push(&[first + i], None).unwrap();
            }
            tx
        })
    };
    let read_three = |rx: &mut mpsc::MpscConsumer, first: u8| {
        let mut got = Vec::new();
        while got.len() < 3 {
            let deadline = Instant::now() + Duration::from_secs(10);
            let batch = rx
                .read(Some(deadline))
                .unwrap_or_else(|e| panic!("after {got:?}: {e}"));
            got.extend(batch.iter().map(|r| r.unwrap()[0]));
            batch.release();
        }
        assert_eq!(got, [first, first + 1, first + 2]);
    };
    let t = producer(name.clone(), 0);
    read_three(&mut rx, 0);
    // The slot's producer closes (its handshake retires); a new one takes
    // the slot while the consumer sleeps.
    drop(t.join().unwrap());
    let t = producer(name.clone(), 10);
    read_three(&mut rx, 10);
    let tx = t.join().unwrap();
    // The consumer restarts; the producer stays, armed or not.
    drop(rx);
    let mut rx = mpsc::open(&name, &options).unwrap();
    let t = std::thread::spawn(move || {
        let mut tx = tx;
        for i in 0..3u8 {
            std::thread::sleep(Duration::from_millis(30));
            tx.push(&[20 + i], None).unwrap();
        }
        tx
    });
    read_three(&mut rx, 20);
    drop(t.join().unwrap());
    mpsc::unlink(&name).unwrap();
}
