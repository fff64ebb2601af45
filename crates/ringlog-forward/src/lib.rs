//! Forwards a ringlog journal into NATS JetStream, once per record.
//!
//! The journal stays the record of truth. A [`Forwarder`] follows it
//! (`ringlog::journal::Follower`), makes what it read durable locally
//! (`fdatasync` of the segment) before publishing it, publishes every record
//! to `P.<producer>` with its producer, sequence, timestamp and frame CRC as
//! headers and `Nats-Msg-Id: <producer>-<seq>`, keeps a bounded window of
//! unacknowledged publishes, and writes its cursor file only over records
//! whose acknowledgement and every earlier one's arrived. After any restart
//! it replays from that cursor; the server drops what it already holds
//! (`Nats-Msg-Id` within the stream's duplicate window, and beyond it the
//! last sequence stored per producer, [`Dedup::LastSubject`]). Records
//! deleted by retention before they were forwarded stop it with
//! [`ForwardError::Gap`].
//!
//! In [`Order::Strict`] (the default on a stream the forwarder creates)
//! each publish expects the record before it in journal order to be the
//! stream's last message, so a lost publish cannot be overtaken: the ones
//! after it are refused and published again in order, and the stream holds
//! the journal's order. The forwarder must then be the stream's only
//! publisher.
//!
//! [`check_stream`] reads the stream and compares it with the journal;
//! [`import_stream`] is the way back: it reads the stream into a journal,
//! with each record's producer, sequence and timestamp, checking every
//! payload against its CRC header.
//!
//! | file | what it is |
//! |---|---|
//! | `forward.rs` | [`Forwarder`], [`ForwardOptions`], [`Metrics`], the headers |
//! | `window.rs` | [`AckWindow`]: the acknowledgement window and the cursor rule |
//! | `stream.rs` | [`StreamSpec`], [`ensure_stream`]: create or check the stream |
//! | `check.rs` | [`check_stream`], [`StreamCheck`]: compare a stream with its journal |
//! | `import.rs` | [`import_stream`], [`ImportOptions`], [`ImportReport`]: a stream back into a journal |
//! | `error.rs` | [`ForwardError`] |

mod check;
mod error;
mod forward;
mod import;
mod stream;
mod window;

pub use check::{check_stream, StreamCheck, MAX_LISTED};
pub use error::{ForwardError, NatsError};
pub use forward::{
    connect, msg_id, parse_msg_id, Dedup, ForwardOptions, ForwardReport, Forwarder, LosePublish,
    Metrics, Order, Progress, HEADER_CRC, HEADER_PRODUCER, HEADER_SEQ, HEADER_TIMESTAMP,
    MAX_WINDOW,
};
pub use import::{
    import_stream, Existing, ImportOptions, ImportProgress, ImportReport, IMPORT_PULL_BATCH,
};
pub use stream::{ensure_stream, StreamSpec, ORDER_METADATA};
pub use window::{AckWindow, SlotState};
