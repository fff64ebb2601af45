use super::*;
use crate::bytes::{PushError, TryPushError};
use std::time::Duration;

#[test]
fn reader_visits_rings_round_robin() {
    let (mut ws, mut r) = channel(Config::new(256, 3)).unwrap();
    for w in &mut ws {
        let id = w.id() as u8;
        w.try_push(&[id; 5]).unwrap();
        w.try_push(&[id; 6]).unwrap();
    }
    let mut order = Vec::new();
    while let Ok(b) = r.try_read() {
        assert!(b.as_slices()[1].is_empty());
        assert_eq!(b.len_records(), 2);
        let recs: Vec<&[u8]> = b.records().collect();
        assert_eq!(recs[0].len(), 5);
        assert_eq!(recs[1].len(), 6);
        order.push(recs[0][0]);
        b.release();
    }
    assert_eq!(order, [0, 1, 2]);
    let s = r.stats();
    assert_eq!(s.reader.batches, 3);
    assert_eq!(s.reader.records, 6);
    assert!(s.writers.iter().all(|w| w.records == 2 && w.bytes == 11));
}

#[test]
fn a_wrapping_batch_comes_as_two_slices() {
    // 64-byte ring: 24-byte payloads take 32 bytes.
    let (mut ws, mut r) = channel(Config::new(64, 1)).unwrap();
    let w = &mut ws[0];
    w.try_push(&[1; 24]).unwrap(); // 32 bytes at 0
    r.try_read().unwrap().release();
    w.try_push(&[2; 8]).unwrap(); // 16 bytes at 32
    w.try_push(&[3; 16]).unwrap(); // pad 16 at 48, then 24 bytes at 0
    let b = r.try_read().unwrap();
    let slices = b.as_slices();
    assert_eq!(slices.len(), 2);
    assert_eq!(slices[0].len(), 32, "record and the padding to the end");
    assert_eq!(slices[1].len(), 24);
    assert_eq!(b.records().collect::<Vec<_>>(), [&[2u8; 8][..], &[3; 16]]);
    assert_eq!(b.len_records(), 2);
    b.release();
}

#[test]
fn a_full_ring_drops_only_its_own_writer() {
    let (mut ws, mut r) = channel(Config::new(64, 2).with_policy(Policy::DropNewest)).unwrap();
    ws[0].try_push(&[0; 24]).unwrap();
    ws[0].try_push(&[0; 24]).unwrap();
    assert!(matches!(
        ws[0].try_push(&[0; 24]),
        Err(TryPushError::Full(_))
    ));
    assert!(matches!(
        ws[0].push(&[0; 24], None),
        Err(PushError::Dropped(_))
    ));
    ws[1].push(&[1; 24], None).unwrap();
    let mut n = 0;
    while let Ok(b) = r.try_read() {
        n += b.records().count();
        b.release();
    }
    assert_eq!(n, 3);
    let s = r.stats();
    assert_eq!((s.writers[0].dropped, s.writers[1].dropped), (1, 0));
    assert!(matches!(
        ws[0].try_push(&[0; 25]),
        Err(TryPushError::TooLarge(_, 24))
    ));
}

#[test]
fn blocked_push_times_out() {
    let (mut ws, r) = channel(Config::new(64, 1)).unwrap();
    ws[0].try_push(&[0; 24]).unwrap();
    ws[0].try_push(&[0; 24]).unwrap();
    let dl = crate::wait::deadline_after(Some(Duration::from_millis(5)));
    assert!(matches!(ws[0].push(b"x", dl), Err(PushError::Timeout(_))));
    assert!(r.stats().writers[0].blocked >= Duration::from_millis(5));
}

#[test]
fn disconnection_is_seen_on_both_sides() {
    let (mut ws, mut r) = channel(Config::new(64, 2)).unwrap();
    ws[1].try_push(b"last").unwrap();
    drop(ws.pop());
    assert!(!r.is_disconnected());
    let b = r.read(None).unwrap();
    assert_eq!(b.records().collect::<Vec<_>>(), [b"last"]);
    b.release();
    let dl = crate::wait::deadline_after(Some(Duration::from_millis(2)));
    assert_eq!(r.read(dl).unwrap_err(), ReadError::Timeout);
    drop(ws);
    assert!(r.is_disconnected());
    assert_eq!(r.read(None).unwrap_err(), ReadError::Disconnected);

    let (mut ws, r) = channel(Config::new(64, 1)).unwrap();
    ws[0].try_push(&[0; 24]).unwrap();
    ws[0].try_push(&[0; 24]).unwrap();
    drop(r);
    assert!(matches!(
        ws[0].push(b"x", None),
        Err(PushError::Disconnected(_))
    ));
}

#[test]
fn writers_and_reader_on_threads_keep_per_writer_order() {
    let per_writer: u32 = if cfg!(miri) { 60 } else { 5_000 };
    let (ws, mut r) = channel(Config::new(512, 3)).unwrap();
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
            next[id] += 1;
        }
        b.release();
    }
    threads.into_iter().for_each(|t| t.join().unwrap());
    assert_eq!(next, [per_writer; 3]);
}
