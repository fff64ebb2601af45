//! [`ForwardError`]: what can stop a forwarder or a stream check.

use std::path::PathBuf;

use ringlog::journal::JournalError;

/// A boxed error from the NATS client, kept as the source.
pub type NatsError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Why forwarding, checking a stream or importing one stopped.
#[derive(Debug, thiserror::Error)]
pub enum ForwardError {
    /// An option is out of range; nothing was touched.
    #[error("invalid option: {0}")]
    InvalidOption(String),
    /// The output directory of an import already holds a journal and
    /// neither resuming nor overwriting it was asked for; nothing was
    /// touched.
    #[error(
        "{dir} already holds a journal ({files} journal files); \
         resume it or overwrite it explicitly"
    )]
    JournalExists {
        /// The output directory.
        dir: PathBuf,
        /// Journal files found in it.
        files: usize,
    },
    /// A file operation outside the journal's own API failed.
    #[error("{op} {path}")]
    Io {
        /// What was being done.
        op: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// The first connection to the servers failed.
    #[error("connect to {server}")]
    Connect {
        /// The server list as given.
        server: String,
        /// The client's error.
        #[source]
        source: NatsError,
    },
    /// The stream exists with a configuration that conflicts with the one
    /// asked for.
    #[error("stream {stream} conflicts with the configuration asked for: {what}")]
    StreamConflict {
        /// The stream.
        stream: String,
        /// What differs.
        what: String,
    },
    /// A JetStream API request failed.
    #[error("stream {stream}: {op}")]
    Stream {
        /// The stream.
        stream: String,
        /// What was being done.
        op: &'static str,
        /// The client's error.
        #[source]
        source: NatsError,
    },
    /// Reading the journal failed.
    #[error("journal {dir}")]
    Journal {
        /// The journal directory.
        dir: PathBuf,
        /// The journal's error.
        #[source]
        source: JournalError,
    },
    /// Making what is about to be published durable locally failed.
    #[error("sync {path}")]
    Sync {
        /// The segment file.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// Reading or writing the cursor file failed.
    #[error("cursor file {path}")]
    Cursor {
        /// The cursor file.
        path: PathBuf,
        /// The journal's error (with the OS error).
        #[source]
        source: JournalError,
    },
    /// Records were deleted (by retention) before they were forwarded:
    /// they are not in the stream and cannot be.
    #[error(
        "gap: the journal bytes from position {from_position} to {to_position} were deleted \
         before they were forwarded (segments {first_segment}..={last_segment}); \
         they are not in the stream"
    )]
    Gap {
        /// First missing segment.
        first_segment: u64,
        /// Last missing segment.
        last_segment: u64,
        /// Journal-global position where the missing bytes start.
        from_position: u64,
        /// Journal-global position where the journal goes on.
        to_position: u64,
    },
    /// Strict order ([`crate::Order::Strict`]): the stream's last message
    /// is not a record of this journal where one was expected, so the
    /// forwarder is not its only publisher or it holds something else.
    /// Found at the start, nothing is published; found before a retry,
    /// the forwarder stops there, its cursor before the failed record.
    /// Forward to such a stream in relaxed order, or to another stream.
    #[error(
        "stream {stream}: its last message (stream sequence {stream_seq}) {what}; \
         strict order needs the forwarder of this journal as the stream's only publisher"
    )]
    ForeignStream {
        /// The stream.
        stream: String,
        /// The stream sequence of that message.
        stream_seq: u64,
        /// What it is.
        what: String,
    },
    /// The server refused a record for good (too large, or an
    /// expectation header failed).
    #[error("publish of record {producer}-{seq} refused")]
    Refused {
        /// Producer id.
        producer: u32,
        /// Sequence number.
        seq: u64,
        /// The client's error.
        #[source]
        source: NatsError,
    },
    /// A record could not be published within the retry time.
    #[error("publish of record {producer}-{seq} still failing after {attempts} attempts")]
    GaveUp {
        /// Producer id.
        producer: u32,
        /// Sequence number.
        seq: u64,
        /// Attempts made.
        attempts: u64,
        /// The last error.
        #[source]
        source: NatsError,
    },
}
