//! Layer 3: the SPSC byte ring — variable-size records in a power-of-two
//! byte region.
//!
//! The algorithm is the classic Lamport ring with monotonic 64-bit byte
//! positions (as in rtrb and bbqueue's grants, over bytes instead of slots):
//!
//! - `write_pos` — bytes ever committed by the producer; only the producer writes it.
//! - `read_pos` — bytes ever released by the consumer; only the consumer writes it.
//! - invariant: `read_pos <= write_pos <= read_pos + capacity`, both multiples of 8; a
//!   position's offset in the data area is `pos & (capacity - 1)`.
//!
//! The producer keeps a private copy of `read_pos` and re-reads the shared one
//! only when its copy says "full"; the consumer reads `write_pos` once per batch.
//! In steady state each side touches the other's cache line once per batch,
//! not once per record.
//!
//! A record is an 8-byte header (`u32` payload length, `u32` kind, native
//! endian) followed by the payload, padded to a multiple of 8. A record that
//! would cross the end of the data area is preceded by a padding record that
//! reaches exactly to the end; readers never see padding.
//!
//! Ring memory is reached through the [`Region`]'s accessors, so the same
//! code serves private and shared memory. Over a
//! [`PrivateRegion`](crate::region::PrivateRegion) (the heap ring of
//! [`channel`]) a [`Grant`] derefs to `&mut [u8]` and
//! [`ReadBatch::iter`] yields `&[u8]` into the ring, with no copy. Over
//! shared memory, which a peer may write at any time, no reference to ring
//! bytes is ever made: the producer writes with [`Grant::copy_from_slice`] /
//! [`Grant::write_at`], and the consumer copies a batch into private memory
//! ([`ReadBatch::copy_into`]) and parses and validates only that copy.
//!
//! Files: `layout.rs` (control block and record header), `producer.rs`
//! (claim/commit), `consumer.rs` (batch read/release), `error.rs`.
//!
//! # Example
//!
//! ```
//! let (mut tx, mut rx) = ringlog::ring::channel(1024).unwrap();
//! let mut grant = tx.try_claim(5).unwrap();
//! grant.copy_from_slice(b"hello");
//! grant.commit(5);
//! let batch = rx.try_read().unwrap();
//! let records: Vec<&[u8]> = batch.iter().map(Result::unwrap).collect();
//! assert_eq!(records, [b"hello"]);
//! batch.release();
//! ```

mod consumer;
mod error;
mod layout;
mod producer;

pub use consumer::{Consumer, CopiedBatch, ReadBatch, Records};
pub use error::{
    ClaimError, Corruption, NewRingError, ReadError, TooLarge, TryClaimError, TryReadError,
};
pub use layout::RECORD_HEADER_LEN;
pub(crate) use producer::Reservation;
pub use producer::{Grant, Producer};

use crate::region::{HeapRegion, Region};
use crate::sync::{Arc, Ordering};
use layout::Control;

/// Smallest data capacity in bytes.
pub const MIN_CAPACITY: usize = 64;
/// Largest data capacity in bytes (1 TiB).
pub const MAX_CAPACITY: usize = 1 << 40;
/// Largest payload of one record in any ring, in bytes: what the record
/// header's 32-bit length field holds. A ring's own limit is
/// [`Producer::max_record_len`] (half its capacity less a header, and never
/// more than this).
pub const MAX_RECORD_LEN: usize = u32::MAX as usize;

/// Largest `write_pos` a ring attached from foreign memory accepts, so that no
/// position arithmetic can overflow (2^62 bytes: centuries at memory speed).
#[cfg(not(loom))]
const MAX_POSITION: u64 = 1 << 62;

/// Creates an in-process byte ring whose data area holds `capacity_bytes`
/// (rounded up to a power of two) and returns its two ends.
///
/// # Errors
///
/// [`NewRingError::Capacity`] when `capacity_bytes` is outside
/// [`MIN_CAPACITY`]`..=`[`MAX_CAPACITY`]; [`NewRingError::Alloc`] when the
/// memory cannot be allocated (never an abort).
pub fn channel(capacity_bytes: usize) -> Result<(Producer, Consumer), NewRingError> {
    if !(MIN_CAPACITY..=MAX_CAPACITY).contains(&capacity_bytes) {
        return Err(NewRingError::Capacity {
            requested: capacity_bytes,
            min: MIN_CAPACITY,
            max: MAX_CAPACITY,
        });
    }
    let capacity = capacity_bytes.next_power_of_two();
    let region =
        HeapRegion::try_new(Ring::<HeapRegion>::region_len(capacity)).map_err(|source| {
            NewRingError::Alloc {
                requested: capacity,
                source,
            }
        })?;
    // SAFETY: the region is fresh, so nobody else uses it.
    let ring = Arc::new(unsafe { Ring::init(region, capacity) });
    Ok((Producer::new(ring.clone()), Consumer::new(ring)))
}

/// The shared part of a ring: the region holding the control block and the
/// data area, plus the geometry, kept in private memory so that it is never
/// re-read from (possibly shared, untrusted) ring memory.
pub(crate) struct Ring<R: Region> {
    region: R,
    /// Data capacity in bytes, a power of two.
    capacity: u64,
    #[cfg(loom)]
    shadow: Box<[crate::sync::UnsafeCell<()>]>,
}

impl<R: Region> std::fmt::Debug for Ring<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ring")
            .field("capacity", &self.capacity)
            .finish_non_exhaustive()
    }
}

impl<R: Region> Ring<R> {
    /// Bytes of region a ring of `capacity` data bytes needs.
    pub(crate) fn region_len(capacity: usize) -> usize {
        layout::CONTROL_LEN + capacity
    }

    /// Writes a fresh control block into `region` and takes it over.
    ///
    /// # Safety
    ///
    /// Nobody else may be using `region`; `capacity` must be a power of two
    /// with `region.len() >= Self::region_len(capacity)`.
    pub(crate) unsafe fn init(region: R, capacity: usize) -> Self {
        debug_assert!(capacity.is_power_of_two());
        assert!(region.len() >= Self::region_len(capacity));
        // SAFETY: the region is valid for CONTROL_LEN bytes, aligned to
        // REGION_ALIGN >= align_of::<Control>(), and nobody else uses it.
        unsafe { region.as_ptr().cast::<Control>().write(Control::new()) };
        Self {
            region,
            capacity: capacity as u64,
            #[cfg(loom)]
            shadow: (0..capacity / 8)
                .map(|_| crate::sync::UnsafeCell::new(()))
                .collect(),
        }
    }

    /// Takes over a region whose control block another handle (possibly in
    /// another process, possibly crashed or hostile) initialised with
    /// [`init`](Self::init) for the same `capacity`; nothing is written.
    ///
    /// `capacity` comes from the caller's private, validated copy of the
    /// geometry and is never re-read from the region. The indices found in
    /// the control block are checked: both multiples of 8, `read_pos <= write_pos <=
    /// read_pos + capacity`, and `write_pos` far from overflow.
    ///
    /// # Safety
    ///
    /// `capacity` must be a power of two with `region.len() >=
    /// Self::region_len(capacity)`, and the region's first `CONTROL_LEN`
    /// bytes must hold a `Control` (every bit pattern of its atomics is
    /// valid, so a garbled one is memory-safe, only wrong).
    #[cfg(not(loom))]
    pub(crate) unsafe fn attach(region: R, capacity: usize) -> Result<Self, Corruption> {
        assert!(capacity.is_power_of_two() && region.len() >= Self::region_len(capacity));
        let ring = Self {
            region,
            capacity: capacity as u64,
        };
        let c = ring.control();
        // Acquire: pairs with the Release stores of the indices by the
        // handles that used the ring before us.
        let read_pos = c.consumer.pos.load(Ordering::Acquire);
        let write_pos = c.producer.pos.load(Ordering::Acquire);
        let bad = |what, value| Corruption {
            what,
            position: read_pos,
            value,
        };
        if read_pos % 8 != 0 {
            return Err(bad("consumer read_pos not a multiple of 8", read_pos));
        }
        if write_pos % 8 != 0 || write_pos < read_pos || write_pos - read_pos > ring.capacity {
            return Err(bad(
                "producer write_pos outside [read_pos, read_pos + capacity]",
                write_pos,
            ));
        }
        if write_pos > MAX_POSITION {
            return Err(bad("producer write_pos too close to overflow", write_pos));
        }
        Ok(ring)
    }

    /// Clears the producer's `closed` flag: a new producer handle takes the
    /// ring over after the previous one dropped or died.
    #[cfg(not(loom))]
    pub(crate) fn reopen_producer(&self) {
        // Release: orders our takeover (the slot claim) before a consumer
        // that sees the flag cleared; pairs with its Acquire load.
        self.control().producer.closed.store(0, Ordering::Release);
    }

    /// Clears the consumer's `closed` flag: a restarted consumer resumes.
    #[cfg(not(loom))]
    pub(crate) fn reopen_consumer(&self) {
        // Release: as in `reopen_producer`, for the producer's Acquire load.
        self.control().consumer.closed.store(0, Ordering::Release);
    }

    #[inline]
    pub(crate) fn control(&self) -> &Control {
        // SAFETY: `init` wrote a Control at the start of the region, which
        // lives as long as `self`; Control is only atomics, so shared access
        // is sound.
        unsafe { &*self.region.as_ptr().cast::<Control>() }
    }

    /// Pointer to the byte at `offset` of the data area.
    #[inline]
    pub(crate) fn data(&self, offset: u64) -> *mut u8 {
        debug_assert!(offset <= self.capacity);
        // SAFETY: offset <= capacity and the region holds CONTROL_LEN +
        // capacity bytes, so the result is in bounds or one past the end.
        unsafe {
            self.region
                .as_ptr()
                .add(layout::CONTROL_LEN + offset as usize)
        }
    }

    /// Writes one word (a record header) at 8-aligned data offset `offset`,
    /// through the region's accessor (atomic in shared memory).
    ///
    /// # Safety
    ///
    /// `offset` is 8-aligned with `offset + 8 <= capacity`, and the ring's
    /// protocol gives those bytes to the caller (the producer's claim).
    #[inline]
    pub(crate) unsafe fn write_word(&self, offset: u64, word: u64) {
        debug_assert!(offset % 8 == 0 && offset + 8 <= self.capacity);
        // SAFETY: in bounds and aligned (the data area is REGION_ALIGN-
        // aligned, CONTROL_LEN a multiple of it); exclusive by the caller.
        unsafe { self.region.write_word(self.data(offset).cast(), word) }
    }

    /// Copies `src` to data offset `offset`, through the region's accessor.
    ///
    /// # Safety
    ///
    /// `offset + src.len() <= capacity`, and the ring's protocol gives those
    /// bytes to the caller (the producer's claim).
    #[inline]
    pub(crate) unsafe fn write_bytes(&self, offset: u64, src: &[u8]) {
        debug_assert!(offset + src.len() as u64 <= self.capacity);
        // SAFETY: in bounds; exclusive by the caller.
        unsafe { self.region.write_bytes(self.data(offset), src) }
    }

    /// Copies the bytes at monotonic positions `pos..pos + dst.len() * 8`
    /// (wrapping at the end of the data area) into `dst`, through the
    /// region's accessor.
    ///
    /// # Safety
    ///
    /// `pos` is a multiple of 8, `dst.len() * 8 <= capacity`, and the ring's
    /// protocol gives those bytes to the caller (the consumer's batch).
    pub(crate) unsafe fn read_words(&self, pos: u64, dst: &mut [std::mem::MaybeUninit<u64>]) {
        let len = dst.len() as u64 * 8;
        debug_assert!(pos % 8 == 0 && len <= self.capacity);
        let offset = pos & self.mask();
        let first = len.min(self.capacity - offset);
        let (a, b) = dst.split_at_mut((first / 8) as usize);
        // SAFETY: `offset..offset + first` and `0..len - first` lie inside
        // the data area and are 8-aligned; `dst` is private memory of the
        // right size (MaybeUninit<u64> has u64's layout); exclusive by the
        // caller.
        unsafe {
            self.region
                .read_words(self.data(offset).cast(), a.as_mut_ptr().cast(), a.len());
            self.region
                .read_words(self.data(0).cast(), b.as_mut_ptr().cast(), b.len());
        }
    }

    #[inline]
    pub(crate) fn capacity(&self) -> u64 {
        self.capacity
    }

    #[inline]
    pub(crate) fn mask(&self) -> u64 {
        self.capacity - 1
    }

    /// Bytes committed and not yet released, as seen now.
    pub(crate) fn used(&self) -> u64 {
        let c = self.control();
        let read_pos = c.consumer.pos.load(Ordering::Relaxed);
        let write_pos = c.producer.pos.load(Ordering::Relaxed);
        write_pos.saturating_sub(read_pos).min(self.capacity)
    }

    /// Tells loom that `len` bytes at `pos` are written (no-op otherwise).
    #[inline]
    pub(crate) fn track_write(&self, pos: u64, len: u64) {
        #[cfg(loom)]
        for g in (pos..pos + len).step_by(8) {
            self.shadow[((g & self.mask()) / 8) as usize].with_mut(|_| ());
        }
        #[cfg(not(loom))]
        let _ = (pos, len);
    }

    /// Tells loom that `len` bytes at `pos` are read (no-op otherwise).
    #[inline]
    pub(crate) fn track_read(&self, pos: u64, len: u64) {
        #[cfg(loom)]
        for g in (pos..pos + len).step_by(8) {
            self.shadow[((g & self.mask()) / 8) as usize].with(|_| ());
        }
        #[cfg(not(loom))]
        let _ = (pos, len);
    }
}

// SAFETY: the shadow cells carry no data; they only let loom check the
// ordering of the ring's own accesses, which are synchronised by the ring's
// protocol. The region itself is Send + Sync by the `Region` contract.
#[cfg(loom)]
unsafe impl<R: Region> Sync for Ring<R> {}
// SAFETY: as above.
#[cfg(loom)]
unsafe impl<R: Region> Send for Ring<R> {}

#[cfg(loom)]
impl<R: Region> Drop for Ring<R> {
    fn drop(&mut self) {
        // SAFETY: `init` wrote the Control; this is the last reference.
        unsafe { std::ptr::drop_in_place(self.region.as_ptr().cast::<Control>()) }
    }
}

/// Total bytes a record of `len` payload bytes occupies in the ring.
#[inline]
pub(crate) const fn record_len(len: u64) -> u64 {
    RECORD_HEADER_LEN as u64 + ((len + 7) & !7)
}

#[cfg(all(test, not(loom)))]
mod tests;
