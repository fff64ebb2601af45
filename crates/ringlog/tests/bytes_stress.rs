//! Stress tests of the three MPSC byte queues: 4 writers (more threads than
//! this machine's cores) of sequence-numbered, checksummed records of random
//! size 10..=10,000 bytes, and one reader checking every record.

use ringlog::bytes::{
    double_buffer, fan_in, shared_ring, ByteQueueReader, ByteQueueWriter, Config, Policy, PushError,
};
use std::thread;

const WRITERS: usize = 4;
/// Bytes before the payload: writer id (u16), sequence (u32), FNV-1a of the
/// payload (u32).
const PREFIX: usize = 10;

fn records_per_writer() -> u32 {
    if cfg!(debug_assertions) {
        300
    } else {
        3_000
    }
}

fn fnv1a(bytes: &[u8]) -> u32 {
    bytes.iter().fold(0x811c_9dc5u32, |h, &b| {
        (h ^ u32::from(b)).wrapping_mul(0x0100_0193)
    })
}

/// xorshift64*: a small deterministic generator per writer.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
}

fn make_record(buf: &mut Vec<u8>, rng: &mut Rng, id: usize, seq: u32) {
    let len = 10 + (rng.next() % 9_991) as usize;
    buf.clear();
    buf.resize(len, 0);
    let fill = rng.next();
    for (i, b) in buf[PREFIX..].iter_mut().enumerate() {
        *b = (fill >> ((i % 8) * 8)) as u8 ^ i as u8;
    }
    let sum = fnv1a(&buf[PREFIX..]);
    buf[0..2].copy_from_slice(&(id as u16).to_le_bytes());
    buf[2..6].copy_from_slice(&seq.to_le_bytes());
    buf[6..10].copy_from_slice(&sum.to_le_bytes());
}

/// Runs writers against the reader; returns, per writer, the sequence
/// numbers received and the ones dropped.
fn run<W>(writers: Vec<W>, reader: &mut dyn ByteQueueReader) -> Vec<(Vec<u32>, Vec<u32>)>
where
    W: ByteQueueWriter + 'static,
{
    let n = records_per_writer();
    let threads: Vec<_> = writers
        .into_iter()
        .map(|mut w| {
            thread::spawn(move || {
                let id = w.id();
                let mut rng = Rng(0x9e37_79b9_7f4a_7c15 ^ (id as u64 + 1));
                let mut buf = Vec::new();
                let mut dropped = Vec::new();
                for seq in 0..n {
                    make_record(&mut buf, &mut rng, id, seq);
                    // Alternate copying and writing in place.
                    if seq % 2 == 0 {
                        match w.push(&buf, None) {
                            Ok(()) => {}
                            Err(PushError::Dropped(_)) => dropped.push(seq),
                            Err(e) => panic!("writer {id} seq {seq}: {e}"),
                        }
                    } else {
                        match w.claim(buf.len(), None) {
                            Ok(mut g) => {
                                g.copy_from_slice(&buf);
                                ringlog::bytes::CommitGrant::commit(g, buf.len());
                            }
                            Err(ringlog::bytes::ClaimError::Dropped) => dropped.push(seq),
                            Err(e) => panic!("writer {id} seq {seq}: {e}"),
                        }
                    }
                }
                dropped
            })
        })
        .collect();
    let mut received: Vec<Vec<u32>> = vec![Vec::new(); threads.len()];
    let mut batches = 0u64;
    while let Ok(batch) = reader.read(None) {
        let mut records = 0;
        for rec in batch.records() {
            assert!((10..=10_000).contains(&rec.len()), "length {}", rec.len());
            let id = usize::from(u16::from_le_bytes(rec[0..2].try_into().unwrap()));
            let seq = u32::from_le_bytes(rec[2..6].try_into().unwrap());
            let sum = u32::from_le_bytes(rec[6..10].try_into().unwrap());
            assert_eq!(
                fnv1a(&rec[PREFIX..]),
                sum,
                "checksum of writer {id} seq {seq}"
            );
            received[id].push(seq);
            records += 1;
        }
        assert_eq!(records, batch.len_records());
        assert_eq!(
            batch.as_slices().iter().map(|s| s.len()).sum::<usize>(),
            batch.len_bytes()
        );
        batch.release();
        batches += 1;
    }
    assert!(reader.is_disconnected());
    let dropped: Vec<Vec<u32>> = threads.into_iter().map(|t| t.join().unwrap()).collect();
    let stats = reader.stats();
    assert_eq!(stats.reader.batches, batches);
    for (id, w) in stats.writers.iter().enumerate() {
        assert_eq!(w.records as usize, received[id].len(), "writer {id}");
        assert_eq!(w.dropped as usize, dropped[id].len(), "writer {id}");
    }
    received.into_iter().zip(dropped).collect()
}

fn check_block(results: &[(Vec<u32>, Vec<u32>)]) {
    let n = records_per_writer();
    for (id, (got, dropped)) in results.iter().enumerate() {
        assert!(dropped.is_empty());
        assert_eq!(
            got.len(),
            n as usize,
            "writer {id}: lost or duplicated records"
        );
        assert!(got.iter().copied().eq(0..n), "writer {id}: out of order");
    }
}

fn check_drop_newest(results: &[(Vec<u32>, Vec<u32>)]) {
    let n = records_per_writer();
    for (id, (got, dropped)) in results.iter().enumerate() {
        assert!(
            got.windows(2).all(|p| p[0] < p[1]),
            "writer {id}: out of order or duplicated"
        );
        assert_eq!(
            got.len() + dropped.len(),
            n as usize,
            "writer {id}: received + dropped != sent"
        );
        let mut all: Vec<u32> = got.iter().chain(dropped).copied().collect();
        all.sort_unstable();
        assert!(
            all.iter().copied().eq(0..n),
            "writer {id}: a record both dropped and received"
        );
    }
}

#[test]
#[cfg_attr(miri, ignore = "large counts")]
fn double_buffer_block() {
    let (ws, mut r) = double_buffer::channel(Config::new(256 << 10, WRITERS)).unwrap();
    check_block(&run(ws, &mut r));
}

#[test]
#[cfg_attr(miri, ignore = "large counts")]
fn double_buffer_drop_newest() {
    let (ws, mut r) =
        double_buffer::channel(Config::new(32 << 10, WRITERS).with_policy(Policy::DropNewest))
            .unwrap();
    check_drop_newest(&run(ws, &mut r));
}

#[test]
#[cfg_attr(miri, ignore = "large counts")]
fn fan_in_block() {
    let (ws, mut r) = fan_in::channel(Config::new(64 << 10, WRITERS)).unwrap();
    check_block(&run(ws, &mut r));
}

#[test]
#[cfg_attr(miri, ignore = "large counts")]
fn fan_in_drop_newest() {
    let (ws, mut r) =
        fan_in::channel(Config::new(32 << 10, WRITERS).with_policy(Policy::DropNewest)).unwrap();
    check_drop_newest(&run(ws, &mut r));
}

#[test]
#[cfg_attr(miri, ignore = "large counts")]
fn shared_ring_block() {
    let (ws, mut r) = shared_ring::channel(Config::new(256 << 10, WRITERS)).unwrap();
    check_block(&run(ws, &mut r));
}

#[test]
#[cfg_attr(miri, ignore = "large counts")]
fn shared_ring_drop_newest() {
    let (ws, mut r) =
        shared_ring::channel(Config::new(64 << 10, WRITERS).with_policy(Policy::DropNewest))
            .unwrap();
    check_drop_newest(&run(ws, &mut r));
}
