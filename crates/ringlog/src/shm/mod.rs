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
//! Segment memory is never behind a Rust reference: a `&[u8]` would assert
//! that nobody writes the bytes while it lives, which a peer process can
//! break at will. The rings reach it only through [`ShmRegion`]'s raw
//! pointer accessors, relaxed atomic word (and edge byte) copies into or
//! out of private memory: a producer writes with
//! [`ShmGrant::copy_from_slice`] / [`ShmGrant::write_at`], a consumer's
//! batch is copied into a buffer the consumer owns before any header is
//! parsed, and the records it hands out are slices of that copy.
//!
//! What validation cannot do: payload bytes are the producer's to write,
//! so a hostile producer can change a record's bytes while the consumer
//! copies them out (the copy is then a mix of old and new bytes, which a
//! checksum inside the record, as the journal frames carry, catches; what
//! the consumer validated never changes afterwards); a peer that rewrites the consumer's identity word can make
//! producers believe the consumer died (denial of service); and a peer
//! with write permission can truncate a named segment (a sealed `memfd`
//! cannot be). None of these lets it make the other side read out of
//! bounds, panic or hang.
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
//! | `doorbell.rs` | [`Doorbell`]: the MPSC consumer's futex, rung by every producer |
//! | `options.rs` | [`ShmOptions`]: permission bits, waiting, liveness interval |
//! | `error.rs` | [`ShmError`], [`HeaderError`] |
//!
//! Seed 004's names map as: `create`/`connect`/`unlink` keep their names;
//! `claim`/`publish` are [`ShmProducer::claim`]/[`ShmGrant::commit`];
//! `peek`/`release` are `read`/`try_read` returning a batch and
//! [`CopiedBatch::release`](crate::ring::CopiedBatch::release);
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

// The doorbell is plain atomics over the byte ring, so it also builds
// under loom (`tests/loom_shm.rs`); everything else needs the OS.
mod doorbell;
pub use doorbell::Doorbell;

#[cfg(not(loom))]
mod attached;
#[cfg(not(loom))]
mod error;
#[cfg(not(loom))]
mod header;
#[cfg(not(loom))]
mod identity;
#[cfg(not(loom))]
mod mapping;
#[cfg(not(loom))]
pub mod mpsc;
#[cfg(not(loom))]
mod options;
#[cfg(not(loom))]
mod producer;
#[cfg(not(loom))]
mod segment;
#[cfg(not(loom))]
mod slot;
#[cfg(not(loom))]
pub mod spsc;

#[cfg(not(loom))]
pub use error::{HeaderError, SegmentKind, ShmError};
#[cfg(not(loom))]
pub use header::{
    parse_header, validate, Geometry, RawHeader, HEADER_LEN, MAGIC, MAX_SLOTS, VERSION,
};
#[cfg(not(loom))]
pub use identity::ProcessIdentity;
#[cfg(not(loom))]
pub use mapping::ShmRegion;
#[cfg(not(loom))]
pub use options::ShmOptions;
#[cfg(not(loom))]
use options::{geometry, me};
#[cfg(not(loom))]
pub use producer::{ShmGrant, ShmProducer};
#[cfg(not(loom))]
pub use segment::{Segment, DEFAULT_MODE};

#[cfg(all(test, not(miri), not(loom)))]
mod tests;
