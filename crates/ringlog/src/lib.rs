//! ringlog: lock-free rings that carry records from many producers to one
//! consumer that persists them.
//!
//! The crate is layered bottom to top; each module depends only on those
//! above it in this list:
//!
//! | module | layer |
//! |---|---|
//! | [`wait`] | spin, yield, then sleep on a futex word; no syscall on the fast path |
//! | [`region`] | the memory a ring lives in: heap now, a shared mapping for `shm` |
//! | [`ring`] | SPSC byte ring: variable-size records, claim/commit, batch read/release |
//! | [`spsc`] | typed SPSC ring of `T` with blocking and batch operations |
//! | [`mpsc`] | typed MPSC ring: Block, DropNewest, DropOldest, SpillToDisk; batches; async |
//! | [`bytes`] | MPSC byte queues: double buffer, fan-in, shared ring behind one reader trait |
//! | [`journal`] | segment files of checksummed records: append, rotate, sync, recover, read, verify |
//! | [`stats`] | counters without shared-line writes, size and latency histograms |
//! | [`pipeline`] | writers -> queue -> reader -> journal, durable acknowledgements |
//! | `shm` | the byte ring in shared memory between processes: SPSC, and MPSC with a doorbell |
//!
//! # Example
//!
//! Two threads pass variable-size records through the byte ring:
//!
//! ```
//! use ringlog::ring;
//!
//! let (mut tx, mut rx) = ring::channel(4096).unwrap();
//! let producer = std::thread::spawn(move || {
//!     for i in 0..100u32 {
//!         let msg = format!("record {i}");
//!         tx.push(msg.as_bytes(), None).unwrap();
//!     }
//! });
//! let mut seen = 0;
//! while let Ok(batch) = rx.read(None) {
//!     for record in batch.iter() {
//!         assert_eq!(record.unwrap(), format!("record {seen}").as_bytes());
//!         seen += 1;
//!     }
//!     batch.release();
//! }
//! producer.join().unwrap();
//! assert_eq!(seen, 100);
//! ```

#![deny(unsafe_op_in_unsafe_fn)]
#![warn(
    missing_docs,
    missing_debug_implementations,
    unreachable_pub,
    clippy::undocumented_unsafe_blocks
)]

pub mod bytes;
pub mod journal;
pub mod mpsc;
pub mod pipeline;
pub mod region;
pub mod ring;
#[cfg(target_os = "linux")]
pub mod shm;
pub mod spsc;
pub mod stats;
pub(crate) mod sync;
pub mod wait;

/// `e` and every error in its `source()` chain on one line, joined with
/// `": "`, so a message ends with the OS error that caused it. A source whose
/// text the message already ends with is not repeated.
///
/// ```
/// let e = std::io::Error::new(std::io::ErrorKind::Other, "disk full");
/// assert_eq!(ringlog::error_chain(&e), "disk full");
/// ```
pub fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut out = e.to_string();
    let mut next = e.source();
    while let Some(s) = next {
        let text = s.to_string();
        if !out.ends_with(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        next = s.source();
    }
    out
}
