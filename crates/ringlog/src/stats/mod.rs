//! Layer 6: statistics that cost no shared-cache-line write on the hot path.
//!
//! - `counter.rs`: [`Counter`], a single-writer counter (a plain load and
//!   store, no read-modify-write) that any thread may read.
//! - `histogram.rs`: [`SizeHistogram`] (log2 buckets of record sizes) and
//!   [`LatencyHistogram`] (nanoseconds, 3 significant digits).
//!
//! Snapshots are plain data: `Debug`, `serde::Serialize`, and a table printer
//! in the CLI.

mod counter;
mod histogram;

pub use counter::Counter;
pub use histogram::{LatencyHistogram, LatencySummary, SizeBucket, SizeHistogram};
