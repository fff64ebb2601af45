use super::*;
use crate::bytes::record::encode_header;
use crate::bytes::{ByteQueueWriter, CommitGrant, PushError, TryPushError};
use std::time::Duration;

#[test]
fn reader_stops_at_the_first_unpublished_record() {
    let (mut ws, mut r) = channel(Config::new(256, 2)).unwrap();
    let (a, b) = ws.split_at_mut(1);
    let mut g = a[0].try_claim(4).unwrap();
    b[0].try_push(b"behind").unwrap();
    assert_eq!(r.try_read().unwrap_err(), TryReadError::Empty);
    g.copy_from_slice(b"head");
    g.commit(4);
    let batch = r.try_read().unwrap();
    assert_eq!(
        batch.records().collect::<Vec<_>>(),
        [&b"head"[..], b"behind"]
    );
    assert_eq!(batch.len_records(), 2);
    batch.release();
    assert_eq!(r.try_read().unwrap_err(), TryReadError::Empty);
}

#[test]
fn partial_commit_and_abandoned_grant_become_padding() {
    let (mut ws, mut r) = channel(Config::new(1024, 1)).unwrap();
    let w = &mut ws[0];
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
    b.release();
}

#[test]
fn old_payloads_that_look_like_headers_are_not_read_as_records() {
    // Payloads full of valid-looking headers, at shifting boundaries, lap
    // after lap: only zeroing every released byte keeps them from being
    // taken for published records.
    let (mut ws, mut r) = channel(Config::new(128, 1)).unwrap();
    let fake = encode_header(8, KIND_DATA).to_ne_bytes().repeat(7);
    let mut sent = 0u32;
    for round in 0..40usize {
        let len = 8 * (1 + round % 6);
        ws[0].try_push(&fake[..len]).unwrap();
        sent += 1;
        // Reserve a slot without publishing it; the reader must stop there.
        let g = ws[0].try_claim(8).unwrap();
        let b = r.try_read().unwrap();
        assert_eq!(b.records().count(), 1, "round {round}");
        b.release();
        drop(g);
        let b = r.try_read().unwrap();
        assert_eq!(b.records().count(), 0);
        b.release();
    }
    assert_eq!(r.stats().reader.records, u64::from(sent));
}

#[test]
fn a_wrapping_batch_comes_as_two_slices() {
    let (mut ws, mut r) = channel(Config::new(64, 1)).unwrap();
    let w = &mut ws[0];
    w.try_push(&[1; 24]).unwrap(); // 32 bytes at 0
    r.try_read().unwrap().release();
    w.try_push(&[2; 8]).unwrap(); // 16 bytes at 32
    w.try_push(&[3; 16]).unwrap(); // pad 16 at 48, then 24 bytes at 0
    let b = r.try_read().unwrap();
    let slices = b.as_slices();
    assert_eq!(
        (slices.len(), slices[0].len(), slices[1].len()),
        (2, 32, 24)
    );
    assert_eq!(b.records().collect::<Vec<_>>(), [&[2u8; 8][..], &[3; 16]]);
    b.release();
}

#[test]
fn full_ring_drops_newest_and_blocks_with_deadline() {
    let (mut ws, mut r) = channel(Config::new(64, 1).with_policy(Policy::DropNewest)).unwrap();
    ws[0].try_push(&[0; 24]).unwrap();
    ws[0].try_push(&[0; 24]).unwrap();
    assert!(matches!(ws[0].try_push(b"x"), Err(TryPushError::Full(_))));
    assert!(matches!(ws[0].push(b"x", None), Err(PushError::Dropped(_))));
    assert!(matches!(
        ws[0].try_push(&[0; 25]),
        Err(TryPushError::TooLarge(_, 24))
    ));
    r.try_read().unwrap().release();
    assert_eq!(r.stats().writers[0].dropped, 1);

    let (mut ws, r) = channel(Config::new(64, 1)).unwrap();
    ws[0].try_push(&[0; 24]).unwrap();
    ws[0].try_push(&[0; 24]).unwrap();
    let dl = crate::wait::deadline_after(Some(Duration::from_millis(5)));
    assert!(matches!(ws[0].push(b"x", dl), Err(PushError::Timeout(_))));
    assert!(r.stats().writers[0].blocked >= Duration::from_millis(5));
    drop(r);
    assert!(matches!(
        ws[0].push(b"x", None),
        Err(PushError::Disconnected(_))
    ));
}

#[test]
fn disconnection_after_drain() {
    let (mut ws, mut r) = channel(Config::new(64, 1)).unwrap();
    ws[0].try_push(b"last").unwrap();
    drop(ws);
    assert!(!r.is_disconnected());
    let b = r.read(None).unwrap();
    assert_eq!(b.records().collect::<Vec<_>>(), [b"last"]);
    b.release();
    assert!(r.is_disconnected());
    assert_eq!(r.read(None).unwrap_err(), ReadError::Disconnected);
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
            assert_eq!(rec.len(), 8 + (seq as usize % 33));
            next[id] += 1;
        }
        b.release();
    }
    threads.into_iter().for_each(|t| t.join().unwrap());
    assert_eq!(next, [per_writer; 3]);
}
