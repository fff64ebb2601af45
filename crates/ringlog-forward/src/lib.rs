//! Forwards a ringlog journal into NATS JetStream, once per record.
//!
//! The journal stays the record of truth. A [`Forwarder`] follows it
//! (`ringlog::journal::Follower`), makes what it read durable locally
//! (`fdatasync` of the segment) before publishing it, publishes every record
//! to `P.<producer>` with its producer, sequence, timestamp and frame CRC in
//! one header ([`HEADER_RECORD`]) and, in relaxed order,
//! `Nats-Msg-Id: <producer>-<seq>`, keeps a bounded window of
//! unacknowledged publishes, and writes its cursor file only over records
//! whose acknowledgement and every earlier one's arrived. After any restart
//! it replays from that cursor and nothing is stored twice: in strict order
//! because each publish names the stream sequence it must follow, in
//! relaxed order because the server drops what it already holds
//! (`Nats-Msg-Id` within the stream's duplicate window, and beyond it the
//! last sequence stored per producer, [`Dedup::LastSubject`]). Records
//! deleted by retention before they were forwarded stop it with
//! [`ForwardError::Gap`].
//!
//! In [`Order::Strict`] (the default on a stream the forwarder creates)
//! each publish carries `Nats-Expected-Last-Sequence`, the stream sequence
//! the record before it in journal order was (or will be) stored at, so a
//! lost publish cannot be overtaken and a stored one cannot be stored
//! again: the ones after a lost one are refused and published again in
//! order, and the stream holds the journal's order, each record once. The
//! forwarder must then be the stream's only publisher.
//!
//! On a stream that allows them (`allow_batched`, set on a stream the
//! forwarder creates in strict order; JetStream 2.14 or later), strict
//! order publishes in fast-ingest batches: the same messages and headers,
//! but the server acknowledges every few hundred of them rather than each
//! one ([`ForwardOptions::batch`]). A batch ends at the first message that
//! did not arrive or was refused, so what it acknowledges is always a
//! prefix of it, and the cursor rule holds as before.
//!
//! [`check_stream`] reads the stream and compares it with the journal;
//! [`import_stream`] is the way back: it reads the stream into a journal,
//! with each record's producer, sequence and timestamp, checking every
//! payload against its CRC header.
//!
//! | file | what it is |
//! |---|---|
//! | `forward.rs` | [`Forwarder`], [`ForwardOptions`], [`Metrics`] |
//! | `headers.rs` | [`RecordHeaders`]: a record's identity on its message |
//! | `batch.rs` | the fast-ingest batch protocol: reply subjects, the server's replies |
//! | `window.rs` | [`AckWindow`]: the acknowledgement window and the cursor rule |
//! | `stream.rs` | [`StreamSpec`], [`ensure_stream`]: create or check the stream |
//! | `check.rs` | [`check_stream`], [`StreamCheck`]: compare a stream with its journal |
//! | `import.rs` | [`import_stream`], [`ImportOptions`], [`ImportReport`]: a stream back into a journal |
//! | `error.rs` | [`ForwardError`] |

mod batch;
mod check;
mod error;
mod forward;
mod headers;
mod import;
mod stream;
mod window;

pub use check::{check_stream, StreamCheck, MAX_LISTED};
pub use error::{ForwardError, NatsError};
pub use forward::{
    connect, msg_id, Dedup, ForwardOptions, ForwardReport, Forwarder, LosePublish, Metrics, Order,
    Progress, MAX_WINDOW,
};
pub use headers::{
    RecordHeaders, HEADER_CRC, HEADER_PRODUCER, HEADER_RECORD, HEADER_SEQ, HEADER_TIMESTAMP,
};
pub use import::{
    import_stream, Existing, ImportOptions, ImportProgress, ImportReport, IMPORT_PULL_BATCH,
};
pub use stream::{ensure_stream, StreamSpec, ORDER_METADATA};
pub use window::{AckWindow, SlotState};
