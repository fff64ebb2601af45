//! Two threads pass at least 10 million sequence-numbered records of random
//! size 1..=4096 bytes through the SPSC byte ring; the consumer checks every
//! byte of every record against what the producer must have written.

use ringlog::ring;
use ringlog::wait::deadline_after;
use std::time::Duration;

/// Records passed (scaled down under Miri).
const RECORDS: u64 = if cfg!(miri) { 2_000 } else { 10_000_000 };
const MAX_LEN: u64 = 4096;

fn splitmix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

/// The record with sequence number `seq`: its length and where its payload
/// comes from in the shared pattern; the first 8 bytes are the sequence number.
fn shape(seq: u64) -> (usize, usize) {
    let r = splitmix(seq);
    ((r % MAX_LEN + 1) as usize, ((r >> 32) % MAX_LEN) as usize)
}

fn pattern() -> Vec<u8> {
    (0..2 * MAX_LEN)
        .map(|i| splitmix(i ^ 0xABCD) as u8)
        .collect()
}

fn expected<'a>(seq: u64, pat: &'a [u8], buf: &'a mut Vec<u8>) -> &'a [u8] {
    let (len, from) = shape(seq);
    buf.clear();
    buf.extend_from_slice(&pat[from..from + len]);
    let n = len.min(8);
    buf[..n].copy_from_slice(&seq.to_le_bytes()[..n]);
    buf
}

#[test]
#[cfg_attr(
    miri,
    ignore = "too slow under Miri; the unit tests cover the unsafe code"
)]
fn ten_million_checked_records() {
    let (mut tx, mut rx) = ring::channel(1 << 20).unwrap();
    let pat = pattern();
    let producer = {
        let pat = pat.clone();
        std::thread::spawn(move || {
            for seq in 0..RECORDS {
                let (len, from) = shape(seq);
                let deadline = deadline_after(Some(Duration::from_secs(30)));
                let mut g = tx.claim(len, deadline).expect("producer stalled 30 s");
                g.copy_from_slice(&pat[from..from + len]);
                let n = len.min(8);
                g[..n].copy_from_slice(&seq.to_le_bytes()[..n]);
                g.commit(len);
            }
        })
    };
    let mut seq = 0u64;
    let mut buf = Vec::with_capacity(MAX_LEN as usize);
    let mut batches = 0u64;
    loop {
        let batch = match rx.read(deadline_after(Some(Duration::from_secs(30)))) {
            Ok(b) => b,
            Err(ring::ReadError::Disconnected) => break,
            Err(e) => panic!("consumer at record {seq}: {e}"),
        };
        for record in batch.iter() {
            let record = record.unwrap();
            let want = expected(seq, &pat, &mut buf);
            assert!(
                record == want,
                "record {seq} differs (len {} vs {})",
                record.len(),
                want.len()
            );
            seq += 1;
        }
        batch.release();
        batches += 1;
    }
    producer.join().unwrap();
    assert_eq!(seq, RECORDS, "records lost");
    assert!(batches > 0);
}
