//! The ring's memory layout: the control block at the start of the region,
//! then the data area; and the 8-byte record header.

use crate::sync::{AtomicU32, AtomicU64};
use crate::wait::handshake::{Handshake, WakeRef};
use crate::wait::Event;
use crossbeam_utils::CachePadded;

/// Length of a record header in bytes.
pub const RECORD_HEADER_LEN: usize = 8;

/// `kind` of a record carrying a payload.
pub(crate) const KIND_DATA: u32 = 0x5244_4154; // "TADR" little-endian: never 0
/// `kind` of a padding record that runs to the end of the data area.
pub(crate) const KIND_PAD: u32 = 0x5250_4144;

/// One side's shared state, on its own cache line pair.
#[derive(Debug)]
#[repr(C)]
pub(crate) struct Side {
    /// Monotonic byte position this side has published (`write_pos` for the
    /// producer, `read_pos` for the consumer).
    pub(crate) pos: AtomicU64,
    /// Non-zero once this side's handle is dropped.
    pub(crate) closed: AtomicU32,
}

/// The control block at offset 0 of the ring's region.
#[derive(Debug)]
#[repr(C)]
pub(crate) struct Control {
    /// Written by the producer only.
    pub(crate) producer: CachePadded<Side>,
    /// Written by the consumer only.
    pub(crate) consumer: CachePadded<Side>,
    /// The consumer sleeps here waiting for data; the producer notifies
    /// through [`Control::data_wake`].
    pub(crate) data_ready: CachePadded<Event>,
    /// The producer sleeps here waiting for space; the consumer notifies.
    pub(crate) space_ready: CachePadded<Event>,
    /// The handshake of the data direction (`wait::handshake`): a commit
    /// costs the producer a load of this line, and a fence only while the
    /// consumer is in a sleep episode.
    pub(crate) data_handshake: CachePadded<Handshake>,
}

/// Bytes the control block takes; the data area starts here.
pub(crate) const CONTROL_LEN: usize = {
    let n = std::mem::size_of::<Control>();
    (n + crate::region::REGION_ALIGN - 1) & !(crate::region::REGION_ALIGN - 1)
};

impl Control {
    pub(crate) fn new() -> Self {
        let side = || {
            CachePadded::new(Side {
                pos: AtomicU64::new(0),
                closed: AtomicU32::new(0),
            })
        };
        Self {
            producer: side(),
            consumer: side(),
            data_ready: CachePadded::new(Event::new()),
            space_ready: CachePadded::new(Event::new()),
            data_handshake: CachePadded::new(Handshake::new()),
        }
    }

    /// The data direction's wake-up channel: [`Control::data_ready`] with
    /// its handshake.
    #[inline]
    pub(crate) fn data_wake(&self) -> WakeRef<'_> {
        WakeRef::single(&self.data_ready, &self.data_handshake)
    }
}

/// Encodes a record header.
#[inline]
pub(crate) fn encode_header(len: u32, kind: u32) -> u64 {
    u64::from(len) | (u64::from(kind) << 32)
}

/// Decodes a record header into `(len, kind)`.
#[inline]
pub(crate) fn decode_header(word: u64) -> (u32, u32) {
    (word as u32, (word >> 32) as u32)
}
