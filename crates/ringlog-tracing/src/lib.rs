//! ringlog under `tracing` and `log`: a non-blocking, allocation-free,
//! durable, rotating writer; the replacement for
//! `tracing_appender::non_blocking`.
//!
//! [`Builder::build`] opens a ringlog journal (a directory of checksummed,
//! crash-recoverable segment files) and returns a [`RingWriter`] and a
//! [`Guard`]. The writer implements `std::io::Write` and
//! tracing-subscriber's `MakeWriter`; each line (each event of the fmt
//! layer) becomes one journal record, framed directly into the queue's
//! memory by the logging thread, with no allocation and no copy into a
//! buffer of ours. A reader thread writes whole batches to the journal with
//! one `writev` each and syncs it periodically.
//!
//! - **Nothing lost by default:** a full queue blocks the logging thread.
//!   [`Builder::lossy`] drops the newest event instead and counts it
//!   ([`Guard::dropped`]).
//! - **In order per thread:** each thread writes through a pipeline writer
//!   of its own (see [`RingWriter`] for what happens past
//!   [`Builder::max_threads`]); its records carry consecutive sequence
//!   numbers.
//! - **Durable when asked:** [`Guard::sync`] returns once every event
//!   written before it is on disk; the journal syncs every
//!   [`Builder::sync_interval`]; dropping the guard drains and syncs;
//!   [`Builder::panic_hook`] syncs before a panicking process dies.
//! - **Errors are told:** [`Guard::io_errors`], [`Guard::last_error`], and a
//!   line on stderr when a guard drops after any loss or error.
//! - **Rotation and retention** on the journal's segments: by size
//!   ([`Builder::max_segment_bytes`]), by UTC minute, hour or day
//!   ([`Builder::rotate`]), by count ([`Builder::max_files`]) and by total
//!   size ([`Builder::max_total_bytes`]).
//! - **`log` too:** [`RingLogger`] is a `log::Log` over the same writer.
//! - **Deferred formatting:** [`BinaryLayer`] stores each event's callsite
//!   id and typed field values as a compact binary record through the same
//!   writer, formatted only when read ([`binary`] is the format and its
//!   decoder, free of `tracing`).
//!
//! Records are the UTF-8 lines the formatter wrote, without their `\n`:
//! `ringlog cat --format text DIR` prints them with their time and producer,
//! `ringlog verify DIR` checks the journal.
//!
//! # Examples
//!
//! The three lines that replace `tracing_appender::non_blocking`:
//!
//! ```
//! # let dir = tempfile::tempdir().unwrap();
//! # let log_dir = dir.path().join("app-log");
//! let (writer, guard) = ringlog_tracing::Builder::new(&log_dir).build().unwrap();
//! let subscriber = tracing_subscriber::fmt().with_writer(writer).with_ansi(false).finish();
//! tracing::subscriber::set_global_default(subscriber).unwrap();
//!
//! std::thread::scope(|s| {
//!     for t in 0..2 {
//!         s.spawn(move || {
//!             for i in 0..100 {
//!                 tracing::info!(thread = t, i, "request served");
//!             }
//!         });
//!     }
//! });
//! guard.sync().unwrap(); // every event above is on disk now
//!
//! let records: Vec<_> = ringlog::journal::Reader::open(&log_dir)
//!     .unwrap()
//!     .collect::<Result<_, _>>()
//!     .unwrap();
//! assert_eq!(records.len(), 200);
//! let line = String::from_utf8(records[0].payload.clone()).unwrap();
//! assert!(line.contains("INFO") && line.contains("request served"), "{line}");
//! assert!(ringlog::journal::verify(&log_dir).unwrap().is_clean());
//! ```

pub mod binary;
mod builder;
mod guard;
mod inner;
mod layer;
mod log_backend;
mod time;
mod writer;

pub use builder::{BuildError, Builder};
pub use guard::{Guard, ShutdownError, ShutdownReport, SyncError};
pub use layer::BinaryLayer;
pub use log_backend::RingLogger;
pub use ringlog::journal::RotateEvery;
pub use ringlog::pipeline::Design;
pub use writer::{EventWriter, RingWriter};
