//! The segment header and the segment's layout.
//!
//! ```text
//! offset 0                 SharedHeader (HEADER_LEN = 256 bytes)
//! offset 256               doorbell: an Event on its own cache lines (128)
//! offset SLOTS_OFFSET=384  slot 0: SlotHeader (128: owner, quarantine, takeovers,
//!                          the doorbell's handshake) | ring control block | ring data
//!                          slot 1 ... (slot_stride bytes apart)
//! ```
//!
//! The header is written once by the creator, magic last (Release), and is
//! immutable afterwards except for the consumer word and the generation.
//! Openers load the magic (Acquire), snapshot every field into private
//! memory, validate the snapshot against the mapping's real size, and never
//! read the immutable fields from shared memory again: a peer that rewrites
//! the header later cannot change the geometry a process works with.

use super::error::{HeaderError, SegmentKind};
use crate::region::{HeapRegion, REGION_ALIGN};
use crate::ring::{Ring, MAX_CAPACITY, MIN_CAPACITY};
use crate::sync::{AtomicU32, AtomicU64, Ordering};

/// `"RINGLOGS"` read as a little-endian `u64`.
pub const MAGIC: u64 = u64::from_le_bytes(*b"RINGLOGS");
/// Layout version of this build; any other is refused. Version 2 added
/// the wake-up handshakes (`wait::handshake`): the data direction's in each
/// ring's control block, the doorbell's in each slot's header.
pub const VERSION: u32 = 2;
/// Bytes of the segment header.
pub const HEADER_LEN: usize = 256;
/// Offset of the doorbell.
pub(crate) const DOORBELL_OFFSET: usize = HEADER_LEN;
/// Offset of the first slot.
pub(crate) const SLOTS_OFFSET: usize = DOORBELL_OFFSET + 128;
/// Bytes of a slot's header (the owner word and friends, and the
/// doorbell's handshake with the slot's producer) before its ring.
pub(crate) const SLOT_HEADER_LEN: usize = 128;

const _: () = assert!(std::mem::size_of::<super::slot::SlotHeader>() <= SLOT_HEADER_LEN);
/// Most producer slots a segment holds.
pub const MAX_SLOTS: usize = 1024;

const KIND_SPSC: u32 = 1;
const KIND_MPSC: u32 = 2;

/// The header as it lies in shared memory: atomics only, so concurrent
/// access from any process is defined behaviour whatever it holds.
#[derive(Debug)]
#[repr(C)]
pub(crate) struct SharedHeader {
    /// [`MAGIC`], stored last by the creator (Release).
    pub(crate) magic: AtomicU64,
    pub(crate) version: AtomicU32,
    pub(crate) kind: AtomicU32,
    pub(crate) header_len: AtomicU64,
    /// The cache-line alignment the layout was computed with.
    pub(crate) cache_line: AtomicU64,
    /// Data bytes of each ring, a power of two.
    pub(crate) ring_capacity: AtomicU64,
    pub(crate) slots: AtomicU64,
    pub(crate) slot_stride: AtomicU64,
    pub(crate) slots_offset: AtomicU64,
    pub(crate) total_len: AtomicU64,
    /// Packed identity of the creating process (immutable).
    pub(crate) creator: AtomicU64,
    /// Bumped by every consumer takeover.
    pub(crate) generation: AtomicU64,
    /// Packed identity of the live consumer; 0 when it closed cleanly.
    pub(crate) consumer: AtomicU64,
}

const _: () = assert!(std::mem::size_of::<SharedHeader>() <= HEADER_LEN);
const _: () = assert!(SLOTS_OFFSET % REGION_ALIGN == 0);

/// A private copy of the header's fields, as read once.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RawHeader {
    /// Magic number.
    pub magic: u64,
    /// Layout version.
    pub version: u32,
    /// Kind code.
    pub kind: u32,
    /// Header length.
    pub header_len: u64,
    /// Cache-line alignment.
    pub cache_line: u64,
    /// Ring data capacity.
    pub ring_capacity: u64,
    /// Producer slots.
    pub slots: u64,
    /// Bytes from one slot to the next.
    pub slot_stride: u64,
    /// Offset of slot 0.
    pub slots_offset: u64,
    /// Bytes the whole segment needs.
    pub total_len: u64,
    /// Packed creator identity.
    pub creator: u64,
}

impl RawHeader {
    /// Decodes the header from the first bytes of a segment (native
    /// endian, as written in shared memory); `None` if `bytes` is shorter
    /// than [`HEADER_LEN`].
    pub fn decode(bytes: &[u8]) -> Option<Self> {
        let b = bytes.get(..HEADER_LEN)?;
        let u64_at = |o: usize| u64::from_ne_bytes(b[o..o + 8].try_into().unwrap_or([0; 8]));
        let u32_at = |o: usize| u32::from_ne_bytes(b[o..o + 4].try_into().unwrap_or([0; 4]));
        Some(Self {
            magic: u64_at(0),
            version: u32_at(8),
            kind: u32_at(12),
            header_len: u64_at(16),
            cache_line: u64_at(24),
            ring_capacity: u64_at(32),
            slots: u64_at(40),
            slot_stride: u64_at(48),
            slots_offset: u64_at(56),
            total_len: u64_at(64),
            creator: u64_at(72),
        })
    }
}

/// The validated geometry of a segment, in private memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Geometry {
    /// What the segment holds.
    pub kind: SegmentKind,
    /// Data bytes of each ring, a power of two.
    pub ring_capacity: usize,
    /// Producer slots (1 for SPSC).
    pub slots: usize,
    /// Bytes from one slot to the next.
    pub slot_stride: usize,
    /// Bytes the segment needs in all.
    pub total_len: usize,
    /// Packed identity of the creator.
    pub creator: u64,
}

impl Geometry {
    /// The layout of a new segment, or which argument is out of range.
    pub(crate) fn new(
        kind: SegmentKind,
        ring_capacity: usize,
        slots: usize,
    ) -> Result<Self, (&'static str, u64, u64, u64)> {
        if !(MIN_CAPACITY..=MAX_CAPACITY).contains(&ring_capacity) {
            return Err((
                "ring capacity",
                ring_capacity as u64,
                MIN_CAPACITY as u64,
                MAX_CAPACITY as u64,
            ));
        }
        if !(1..=MAX_SLOTS).contains(&slots) {
            return Err(("producer slots", slots as u64, 1, MAX_SLOTS as u64));
        }
        let cap = ring_capacity.next_power_of_two();
        let stride = slot_stride(cap as u64).ok_or(("ring capacity", cap as u64, 0, 0))?;
        let total = (SLOTS_OFFSET as u64)
            .checked_add(stride.checked_mul(slots as u64).ok_or((
                "ring capacity",
                cap as u64,
                0,
                0,
            ))?)
            .ok_or(("ring capacity", cap as u64, 0, 0))?;
        Ok(Self {
            kind,
            ring_capacity: cap,
            slots,
            slot_stride: stride as usize,
            total_len: total as usize,
            creator: 0,
        })
    }

    /// The header fields describing this geometry.
    pub(crate) fn raw(&self) -> RawHeader {
        RawHeader {
            magic: MAGIC,
            version: VERSION,
            kind: match self.kind {
                SegmentKind::Spsc => KIND_SPSC,
                SegmentKind::Mpsc => KIND_MPSC,
            },
            header_len: HEADER_LEN as u64,
            cache_line: REGION_ALIGN as u64,
            ring_capacity: self.ring_capacity as u64,
            slots: self.slots as u64,
            slot_stride: self.slot_stride as u64,
            slots_offset: SLOTS_OFFSET as u64,
            total_len: self.total_len as u64,
            creator: self.creator,
        }
    }

    /// Offset of slot `i`'s header.
    pub(crate) fn slot_offset(&self, i: usize) -> usize {
        SLOTS_OFFSET + i * self.slot_stride
    }
}

/// Bytes of one slot: its header and its ring, rounded to the alignment.
fn slot_stride(capacity: u64) -> Option<u64> {
    let ring = Ring::<HeapRegion>::region_len(usize::try_from(capacity).ok()?) as u64;
    let n = (SLOT_HEADER_LEN as u64).checked_add(ring)?;
    let align = REGION_ALIGN as u64;
    Some(n.checked_add(align - 1)? & !(align - 1))
}

/// Validates a header snapshot against the segment's real size (from
/// `fstat`). Never panics, whatever the fields hold.
///
/// # Errors
///
/// The first [`HeaderError`] found: magic, version, then each field, then
/// the size.
pub fn validate(raw: &RawHeader, actual_len: u64) -> Result<Geometry, HeaderError> {
    if raw.magic != MAGIC {
        return Err(HeaderError::BadMagic {
            found: raw.magic,
            expected: MAGIC,
        });
    }
    if raw.version != VERSION {
        return Err(HeaderError::Version {
            found: raw.version,
            supported: VERSION,
        });
    }
    let field = |field, value, expected| HeaderError::Field {
        field,
        value,
        expected,
    };
    let kind = match raw.kind {
        KIND_SPSC => SegmentKind::Spsc,
        KIND_MPSC => SegmentKind::Mpsc,
        other => return Err(field("kind", u64::from(other), "1 (spsc) or 2 (mpsc)")),
    };
    if raw.header_len != HEADER_LEN as u64 {
        return Err(field("header_len", raw.header_len, "256"));
    }
    if raw.cache_line != REGION_ALIGN as u64 {
        return Err(field(
            "cache_line",
            raw.cache_line,
            "this build's alignment (128)",
        ));
    }
    let cap = raw.ring_capacity;
    if !cap.is_power_of_two() || cap < MIN_CAPACITY as u64 || cap > MAX_CAPACITY as u64 {
        return Err(field("ring_capacity", cap, "a power of two in 64..=2^40"));
    }
    let max_slots = if kind == SegmentKind::Spsc {
        1
    } else {
        MAX_SLOTS as u64
    };
    if raw.slots == 0 || raw.slots > max_slots {
        return Err(field("slots", raw.slots, "1 for spsc, 1..=1024 for mpsc"));
    }
    if raw.slots_offset != SLOTS_OFFSET as u64 {
        return Err(field("slots_offset", raw.slots_offset, "384"));
    }
    let stride = slot_stride(cap).ok_or(field("ring_capacity", cap, "a size that fits"))?;
    if raw.slot_stride != stride {
        return Err(field(
            "slot_stride",
            raw.slot_stride,
            "the stride for ring_capacity",
        ));
    }
    let needed = stride
        .checked_mul(raw.slots)
        .and_then(|n| n.checked_add(SLOTS_OFFSET as u64))
        .ok_or(field(
            "slots",
            raw.slots,
            "a count whose slots fit in memory",
        ))?;
    if raw.total_len != needed {
        return Err(field("total_len", raw.total_len, "the size of all slots"));
    }
    if actual_len < needed {
        return Err(HeaderError::TooSmall {
            actual: actual_len,
            needed,
        });
    }
    let total_len = usize::try_from(needed)
        .map_err(|_| field("total_len", needed, "a size this machine can map"))?;
    Ok(Geometry {
        kind,
        ring_capacity: cap as usize,
        slots: raw.slots as usize,
        slot_stride: stride as usize,
        total_len,
        creator: raw.creator,
    })
}

/// Decodes and validates a header from raw bytes (as [`RawHeader::decode`]
/// then [`validate`]): the entry point of the header fuzz target.
///
/// # Errors
///
/// As [`validate`]; `TooSmall` if `bytes` holds less than a header.
pub fn parse_header(bytes: &[u8], actual_len: u64) -> Result<Geometry, HeaderError> {
    let raw = RawHeader::decode(bytes).ok_or(HeaderError::TooSmall {
        actual: bytes.len() as u64,
        needed: HEADER_LEN as u64,
    })?;
    validate(&raw, actual_len)
}

impl SharedHeader {
    /// Writes every field but the magic, then the magic (Release).
    pub(crate) fn publish(&self, raw: &RawHeader, consumer: u64) {
        let r = Ordering::Relaxed;
        self.version.store(raw.version, r);
        self.kind.store(raw.kind, r);
        self.header_len.store(raw.header_len, r);
        self.cache_line.store(raw.cache_line, r);
        self.ring_capacity.store(raw.ring_capacity, r);
        self.slots.store(raw.slots, r);
        self.slot_stride.store(raw.slot_stride, r);
        self.slots_offset.store(raw.slots_offset, r);
        self.total_len.store(raw.total_len, r);
        self.creator.store(raw.creator, r);
        self.generation.store(1, r);
        self.consumer.store(consumer, r);
        // Release: everything above (and the rings' control blocks, written
        // before this call) is visible to an opener whose Acquire load of
        // the magic sees it; pairs with `snapshot`.
        self.magic.store(raw.magic, Ordering::Release);
    }

    /// Reads every immutable field once.
    pub(crate) fn snapshot(&self) -> RawHeader {
        // Acquire: pairs with the Release store of the magic in `publish`.
        let magic = self.magic.load(Ordering::Acquire);
        let r = Ordering::Relaxed;
        RawHeader {
            magic,
            version: self.version.load(r),
            kind: self.kind.load(r),
            header_len: self.header_len.load(r),
            cache_line: self.cache_line.load(r),
            ring_capacity: self.ring_capacity.load(r),
            slots: self.slots.load(r),
            slot_stride: self.slot_stride.load(r),
            slots_offset: self.slots_offset.load(r),
            total_len: self.total_len.load(r),
            creator: self.creator.load(r),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn good() -> (RawHeader, u64) {
        let g = Geometry::new(SegmentKind::Mpsc, 4096, 3).unwrap();
        (g.raw(), g.total_len as u64)
    }

    #[test]
    fn valid_header_round_trips() {
        let (raw, len) = good();
        let g = validate(&raw, len).unwrap();
        assert_eq!(
            (g.ring_capacity, g.slots, g.kind),
            (4096, 3, SegmentKind::Mpsc)
        );
        assert_eq!(g.total_len as u64, len);
    }

    #[test]
    fn each_mismatch_is_named() {
        let (raw, len) = good();
        let e = validate(&RawHeader { magic: 7, ..raw }, len).unwrap_err();
        assert!(matches!(e, HeaderError::BadMagic { found: 7, .. }), "{e}");
        let e = validate(&RawHeader { version: 9, ..raw }, len).unwrap_err();
        assert!(
            matches!(
                e,
                HeaderError::Version {
                    found: 9,
                    supported: VERSION
                }
            ),
            "{e}"
        );
        let e = validate(&raw, len - 1).unwrap_err();
        assert!(matches!(e, HeaderError::TooSmall { .. }), "{e}");
        for bad in [
            RawHeader {
                ring_capacity: 4095,
                ..raw
            },
            RawHeader { slots: 0, ..raw },
            RawHeader {
                slots: u64::MAX,
                ..raw
            },
            RawHeader {
                slot_stride: 1,
                ..raw
            },
            RawHeader { kind: 3, ..raw },
            RawHeader {
                total_len: u64::MAX,
                ..raw
            },
            RawHeader {
                cache_line: 64,
                ..raw
            },
        ] {
            let e = validate(&bad, len).unwrap_err();
            assert!(matches!(e, HeaderError::Field { .. }), "{e}");
        }
    }

    proptest::proptest! {
        /// Any header, near-valid or not: validation never panics, and what
        /// it accepts fits the size it was checked against.
        #[test]
        #[cfg_attr(miri, ignore = "proptest is too slow under Miri")]
        fn validation_never_panics_and_accepts_only_what_fits(
            fields in proptest::collection::vec(proptest::prelude::any::<u64>(), 11),
            pick in proptest::collection::vec(proptest::prelude::any::<bool>(), 11),
            actual in proptest::prelude::any::<u64>(),
        ) {
            // Each field either keeps its valid value or takes the random one.
            let (good, _) = good();
            let f = |i: usize, valid: u64| if pick[i] { fields[i] } else { valid };
            let raw = RawHeader {
                magic: f(0, good.magic),
                version: f(1, u64::from(good.version)) as u32,
                kind: f(2, u64::from(good.kind)) as u32,
                header_len: f(3, good.header_len),
                cache_line: f(4, good.cache_line),
                ring_capacity: f(5, good.ring_capacity),
                slots: f(6, good.slots),
                slot_stride: f(7, good.slot_stride),
                slots_offset: f(8, good.slots_offset),
                total_len: f(9, good.total_len),
                creator: f(10, good.creator),
            };
            if let Ok(g) = validate(&raw, actual) {
                proptest::prop_assert!(g.total_len as u64 <= actual);
                proptest::prop_assert!(g.ring_capacity.is_power_of_two());
                proptest::prop_assert!(
                    g.slot_offset(g.slots - 1) + g.slot_stride <= g.total_len
                );
            }
        }
    }

    #[test]
    fn decode_matches_shared_layout() {
        let (raw, len) = good();
        let region = HeapRegion::new(HEADER_LEN);
        // SAFETY: the region is HEADER_LEN zeroed, aligned bytes, enough
        // for a SharedHeader, and only this thread uses it.
        let shared = unsafe { &*crate::region::Region::as_ptr(&region).cast::<SharedHeader>() };
        shared.publish(&raw, 0);
        // SAFETY: as above; the header is fully written.
        let bytes = unsafe {
            std::slice::from_raw_parts(crate::region::Region::as_ptr(&region), HEADER_LEN)
        };
        assert_eq!(RawHeader::decode(bytes), Some(raw));
        assert_eq!(shared.snapshot(), raw);
        assert!(parse_header(bytes, len).is_ok());
        assert!(parse_header(&bytes[..10], len).is_err());
    }
}
