//! The records of the `bytes` and `persist` scenarios: random sizes of
//! 10..=10,000 bytes, decided before the clock starts, each stamped with its
//! producer and sequence number in the first 8 bytes and a check byte at the
//! end so the reader can tell a lost, reordered or torn record.

use crate::check::item;

/// Smallest record.
pub const MIN_LEN: usize = 10;
/// Largest record.
pub const MAX_LEN: usize = 10_000;

/// The record sizes of each producer, totalling about the requested bytes.
#[derive(Debug, Clone)]
pub struct Plan {
    /// Per producer, the length of each of its records in order.
    pub sizes: Vec<Vec<u32>>,
}

fn splitmix(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

impl Plan {
    /// `producers` producers sharing about `total_bytes` (at least one
    /// record each), sizes uniform in 10..=10,000, fixed by `seed`.
    pub fn new(producers: usize, total_bytes: u64, seed: u64) -> Self {
        let per = (total_bytes / producers as u64).max(MIN_LEN as u64);
        let sizes = (0..producers)
            .map(|p| {
                let mut s = seed ^ ((p as u64 + 1) << 32);
                let mut v = Vec::new();
                let mut sum = 0u64;
                while sum < per {
                    let n = MIN_LEN + (splitmix(&mut s) % (MAX_LEN - MIN_LEN + 1) as u64) as usize;
                    v.push(n as u32);
                    sum += n as u64;
                }
                v
            })
            .collect();
        Self { sizes }
    }

    /// Records per producer.
    pub fn records(&self) -> Vec<u64> {
        self.sizes.iter().map(|s| s.len() as u64).collect()
    }

    /// Bytes of all records.
    pub fn bytes(&self) -> u64 {
        self.sizes.iter().flatten().map(|&n| u64::from(n)).sum()
    }
}

/// A producer's scratch record: `MAX_LEN` bytes of filler, stamped in place.
pub fn scratch() -> Vec<u8> {
    (0..MAX_LEN).map(|i| (i * 31 + 7) as u8).collect()
}

/// The check byte of a record of `len` bytes with id `id`.
#[inline]
fn tail(id: u64, len: usize) -> u8 {
    (id ^ (id >> 48) ^ len as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) as u8 | 1
}

/// Stamps `rec` (at least [`MIN_LEN`] bytes) as record `seq` of `producer`.
#[inline]
pub fn stamp(rec: &mut [u8], producer: usize, seq: u64) {
    let id = item(producer, seq);
    rec[..8].copy_from_slice(&id.to_le_bytes());
    let n = rec.len();
    rec[n - 1] = tail(id, n);
}

/// The id (`producer << 48 | seq`) of a stamped record, or `None` if it is
/// too short or its check byte is wrong.
#[inline]
pub fn parse(rec: &[u8]) -> Option<u64> {
    if rec.len() < MIN_LEN {
        return None;
    }
    let id = u64::from_le_bytes(rec[..8].try_into().ok()?);
    (rec[rec.len() - 1] == tail(id, rec.len())).then_some(id)
}
