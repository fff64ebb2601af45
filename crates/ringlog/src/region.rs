//! Layer 2: the memory a ring lives in.
//!
//! A ring is written once over the [`Region`] trait, so the in-process rings
//! (a [`HeapRegion`]) and the cross-process rings (a shared mapping) are the
//! same code.
//!
//! The two kinds differ in one thing: who else can write the memory. A
//! [`PrivateRegion`] is touched only by this process's ring handles, whose
//! protocol makes a `&[u8]` to committed bytes sound. A region shared with
//! another process can be written by a hostile or broken peer at any time,
//! so no Rust reference to its bytes may exist (a `&[u8]` asserts that
//! nobody writes them while it lives): rings read and write it only through
//! raw pointers, with the region's own [`read_words`](Region::read_words),
//! [`write_word`](Region::write_word) and
//! [`write_bytes`](Region::write_bytes), which a shared region implements
//! with atomic accesses into or out of private memory.

use std::alloc::{self, Layout};
use std::ptr::NonNull;

/// Alignment every region guarantees: two cache lines on x86_64, so that the
/// control block's hot indices never share a line (adjacent-line prefetch).
pub const REGION_ALIGN: usize = 128;

/// A fixed block of memory that stays at one address for its whole life.
///
/// # Safety
///
/// Implementors promise that `as_ptr()` is non-null, aligned to
/// [`REGION_ALIGN`], valid for reads and writes of `len()` bytes for as long as
/// the region lives, that every byte of it is initialised (zeroed when new),
/// and that both values never change.
pub unsafe trait Region: Send + Sync {
    /// The first byte.
    fn as_ptr(&self) -> *mut u8;
    /// The size in bytes.
    fn len(&self) -> usize;
    /// Whether the region has no bytes.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Copies `words` 8-byte words from `src`, inside the region, to `dst`,
    /// in private memory. The default is a plain copy, right for memory that
    /// only this process's ring handles touch.
    ///
    /// # Safety
    ///
    /// `src` is 8-aligned and valid for reads of `words * 8` bytes inside the
    /// region; `dst` is valid for writes of as many bytes and does not
    /// overlap the region. For a plain copy, no thread of this process writes
    /// `src` meanwhile (the ring's protocol).
    unsafe fn read_words(&self, src: *const u64, dst: *mut u64, words: usize) {
        // SAFETY: the caller's promises.
        unsafe { std::ptr::copy_nonoverlapping(src, dst, words) }
    }

    /// Writes one 8-byte word at `dst`, inside the region.
    ///
    /// # Safety
    ///
    /// `dst` is 8-aligned and valid for an 8-byte write inside the region;
    /// for a plain write, no thread of this process accesses it meanwhile.
    unsafe fn write_word(&self, dst: *mut u64, word: u64) {
        // SAFETY: the caller's promises.
        unsafe { dst.write(word) }
    }

    /// Copies `src`, in private memory, to `dst`, inside the region.
    ///
    /// # Safety
    ///
    /// `dst` is valid for writes of `src.len()` bytes inside the region; for
    /// a plain copy, no thread of this process accesses them meanwhile.
    unsafe fn write_bytes(&self, dst: *mut u8, src: &[u8]) {
        // SAFETY: the caller's promises; `src` is private, so no overlap.
        unsafe { std::ptr::copy_nonoverlapping(src.as_ptr(), dst, src.len()) }
    }
}

/// A [`Region`] that no other process maps: only this process's ring
/// handles touch its bytes, so the rings may hand out `&[u8]` / `&mut [u8]`
/// to bytes their protocol reserves for the holder.
///
/// # Safety
///
/// Implementors promise that nothing outside this process's Rust code, which
/// obeys the rings' protocol, reads or writes the region's memory.
pub unsafe trait PrivateRegion: Region {}

/// A zeroed, [`REGION_ALIGN`]-aligned heap allocation.
#[derive(Debug)]
pub struct HeapRegion {
    ptr: NonNull<u8>,
    len: usize,
}

// SAFETY: the region is plain bytes; all concurrent access is coordinated by
// the rings built on it, which is the contract of `Region`.
unsafe impl Send for HeapRegion {}
// SAFETY: as above.
unsafe impl Sync for HeapRegion {}

/// A block of memory could not be allocated: larger than the address space
/// allows, or refused by the allocator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("cannot allocate {bytes} bytes")]
pub struct AllocError {
    /// The size asked for, in bytes (saturated at `usize::MAX` when the
    /// size itself overflowed).
    pub bytes: usize,
}

impl HeapRegion {
    /// Allocates `len` zeroed bytes (at least one).
    ///
    /// # Panics
    ///
    /// On allocation failure (like `Vec`), or if `len` overflows `isize`.
    /// [`try_new`](Self::try_new) reports both as an error instead.
    pub fn new(len: usize) -> Self {
        match Self::try_new(len) {
            Ok(r) => r,
            Err(_) => match Self::layout(len) {
                Some(layout) => alloc::handle_alloc_error(layout),
                None => panic!("region of {len} bytes overflows isize"),
            },
        }
    }

    /// Allocates `len` zeroed bytes (at least one), or says why not.
    ///
    /// # Errors
    ///
    /// [`AllocError`] if `len` rounded to [`REGION_ALIGN`] overflows `isize`
    /// or the allocator refuses.
    pub fn try_new(len: usize) -> Result<Self, AllocError> {
        let layout = Self::layout(len).ok_or(AllocError { bytes: len })?;
        // SAFETY: the layout has a non-zero size (`max(1)`).
        let raw = unsafe { alloc::alloc_zeroed(layout) };
        let ptr = NonNull::new(raw).ok_or(AllocError { bytes: len })?;
        Ok(Self { ptr, len })
    }

    fn layout(len: usize) -> Option<Layout> {
        Layout::from_size_align(len.max(1), REGION_ALIGN).ok()
    }
}

impl Drop for HeapRegion {
    fn drop(&mut self) {
        let layout = Self::layout(self.len).expect("the layout was valid at allocation");
        // SAFETY: allocated in `try_new` with exactly this layout.
        unsafe { alloc::dealloc(self.ptr.as_ptr(), layout) }
    }
}

// SAFETY: `alloc_zeroed` gives a live, zeroed block of `len` bytes aligned to
// REGION_ALIGN, owned until `drop`; `ptr` and `len` never change.
unsafe impl Region for HeapRegion {
    fn as_ptr(&self) -> *mut u8 {
        self.ptr.as_ptr()
    }
    fn len(&self) -> usize {
        self.len
    }
}

// SAFETY: a heap allocation of this process, never shared with another.
unsafe impl PrivateRegion for HeapRegion {}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn heap_region_is_aligned_and_zeroed() {
        let r = HeapRegion::new(1000);
        assert_eq!(r.as_ptr() as usize % REGION_ALIGN, 0);
        assert_eq!(r.len(), 1000);
        // SAFETY: the region is valid for `len` initialised bytes.
        let bytes = unsafe { std::slice::from_raw_parts(r.as_ptr(), r.len()) };
        assert!(bytes.iter().all(|&b| b == 0));
    }

    #[test]
    fn impossible_region_is_an_error() {
        assert_eq!(
            HeapRegion::try_new(usize::MAX).unwrap_err(),
            AllocError { bytes: usize::MAX }
        );
    }
}
