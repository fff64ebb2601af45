//! `ringlog-bench`: measures ringlog against its peers and against the
//! machine's limits, in one invocation, and checks every run's data before
//! it prints a figure.
//!
//! | module | what it is |
//! |---|---|
//! | [`check`] | the correctness checks every scenario runs: per-producer sequence numbers, counts, byte totals |
//! | [`records`] | the random 10..=10,000-byte records, stamped so a reader can check them |
//! | [`mod@bench`] | running a case `--runs` times, median/min/max, ratios to the best peer and the limit |
//! | [`machine`] | CPU model, core count, the filesystem a temp dir lands on |
//! | [`output`] | the terminal table, JSON and the self-contained HTML report |
//! | [`pin`] | pinned and unpinned runs, CPU time from `getrusage` |
//! | [`scenarios`] | one file per scenario: `limits`, `spsc`, `mpsc`, `bytes`, `persist`, `latency`, `ipc` |

#![deny(unsafe_op_in_unsafe_fn)]
#![warn(
    missing_docs,
    missing_debug_implementations,
    unreachable_pub,
    clippy::undocumented_unsafe_blocks
)]

pub mod bench;
pub mod check;
pub mod machine;
pub mod output;
pub mod pin;
pub mod records;
pub mod scenarios;
pub mod wait;
