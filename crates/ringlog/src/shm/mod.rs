//! Layer 8: rings in shared memory between processes (seed 004), safe
//! against crashed and hostile peers.
//!
//! The rings are the in-process byte ring ([`crate::ring`]), the same code,
//! placed in a segment after a header. Shared memory is untrusted input:
//! the geometry is validated once against the mapping's real size and kept
//! in private memory; every index, length and record header read from the
//! segment afterwards is checked by the ring before use, so a peer that
//! writes anything at all can make a ring report
//! [`Corruption`](crate::ring::Corruption), never make the other side read
//! out of bounds, panic or wait for ever. Each role (consumer, producer
//! slot) is held by a process identity (pid plus start time), so a peer that
//! died is noticed at the next liveness check while waiting, and its role can
//! be taken over.
//!
//! Files:
//!
//! | file | what it is |
//! |---|---|
//! | `segment.rs` | [`Segment`]: `shm_open` (exclusive, mode 0600) or sealed `memfd`; memory reserved at creation; unlink |
//! | `mapping.rs` | the shared mapping, and [`ShmRegion`]: a [`Region`](crate::region::Region) inside it |
//! | `header.rs` | the segment header and layout; [`parse_header`] / [`validate`] |
//! | `identity.rs` | [`ProcessIdentity`]: pid + start time from `/proc/<pid>/stat` |
//! | `slot.rs` | a producer slot's owner word: claim, release, reclaim from the dead |
//! | `attached.rs` | a validated mapping: typed access to header, doorbell, slots, rings |
//! | `producer.rs` | [`ShmProducer`] and [`ShmGrant`], for both kinds |
//! | `spsc.rs` | [`spsc`]: one ring; [`spsc::ShmConsumer`] |
//! | `mpsc.rs` | [`mpsc`]: a ring per producer slot plus a doorbell; [`mpsc::MpscConsumer`] |
//! | `error.rs` | [`ShmError`], [`HeaderError`] |
//!
//! Seed 004's names map as: `create`/`connect`/`unlink` keep their names;
//! `claim`/`publish` are [`ShmProducer::claim`]/[`ShmGrant::commit`];
//! `peek`/`release` are `read`/`try_read` returning a batch and
//! [`ReadBatch::release`](crate::ring::ReadBatch::release);
//! `wait_for_data`/`wait_for_space` keep their names but take a deadline.
//!
//! # Examples
//!
//! ```
//! use ringlog::shm::spsc;
//! # if cfg!(miri) { return; }
//! let name = format!("/ringlog-doc-shm-{}", std::process::id());
//! let mut rx = spsc::create(&name, 4096).unwrap();
//! let producer = std::thread::spawn({
//!     let name = name.clone();
//!     move || {
//!         // Usually another process.
//!         let mut tx = spsc::connect(&name).unwrap();
//!         for i in 0..100u32 {
//!             tx.push(&i.to_le_bytes(), None).unwrap();
//!         }
//!     }
//! });
//! let mut next = 0u32;
//! while next < 100 {
//!     let batch = rx.read(None).unwrap();
//!     for r in batch.iter() {
//!         assert_eq!(r.unwrap(), next.to_le_bytes());
//!         next += 1;
//!     }
//!     batch.release();
//! }
//! producer.join().unwrap();
//! spsc::unlink(&name).unwrap();
//! ```

mod attached;
mod error;
mod header;
mod identity;
mod mapping;
pub mod mpsc;
mod producer;
mod segment;
mod slot;
pub mod spsc;

pub use error::{HeaderError, SegmentKind, ShmError};
pub use header::{
    parse_header, validate, Geometry, RawHeader, HEADER_LEN, MAGIC, MAX_SLOTS, VERSION,
};
pub use identity::ProcessIdentity;
pub use mapping::ShmRegion;
pub use producer::{ShmGrant, ShmProducer};
pub use segment::{Segment, DEFAULT_MODE};

use crate::wait::WaitStrategy;
use std::time::Duration;

/// How segments are created and how their handles wait.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ShmOptions {
    /// Permission bits of a new named segment (default 0600).
    pub mode: u32,
    /// Spin and yield budgets before a wait sleeps on the futex.
    pub wait: WaitStrategy,
    /// Longest a blocked call sleeps before it looks at the peer's liveness
    /// (and the MPSC consumer sweeps for dead producers). Also caps every
    /// single futex sleep.
    pub liveness_interval: Duration,
}

impl Default for ShmOptions {
    fn default() -> Self {
        Self {
            mode: DEFAULT_MODE,
            wait: WaitStrategy::DEFAULT,
            liveness_interval: Duration::from_millis(100),
        }
    }
}

impl ShmOptions {
    fn wait_strategy(&self) -> WaitStrategy {
        WaitStrategy {
            max_sleep: Some(
                self.wait
                    .max_sleep
                    .map_or(self.liveness_interval, |s| s.min(self.liveness_interval)),
            ),
            ..self.wait
        }
    }
}

fn geometry(
    name: &str,
    kind: SegmentKind,
    capacity: usize,
    slots: usize,
) -> Result<Geometry, ShmError> {
    Geometry::new(kind, capacity, slots).map_err(|(what, requested, min, max)| ShmError::Geometry {
        name: name.to_owned(),
        what,
        requested,
        min,
        max,
    })
}

fn me(name: &str) -> Result<ProcessIdentity, ShmError> {
    ProcessIdentity::current().map_err(|e| ShmError::io(name, "read /proc/self/stat", e))
}

#[cfg(all(test, not(miri)))]
mod tests;
