//! A shared mapping of a segment, and [`ShmRegion`]: a slice of it that a
//! ring lives in.

use crate::region::{Region, REGION_ALIGN};
use crate::sync::{Arc, AtomicU64, AtomicU8, Ordering};
use rustix::fd::OwnedFd;
use rustix::mm::{MapFlags, ProtFlags};
use std::ptr::NonNull;

/// `mmap(MAP_SHARED, PROT_READ | PROT_WRITE)` of a whole segment; unmapped
/// on drop.
#[derive(Debug)]
pub(crate) struct Mapping {
    ptr: NonNull<u8>,
    len: usize,
}

// SAFETY: the mapping is plain shared bytes; every access to it goes through
// atomics or through the rings' protocol, which is the `Region` contract.
unsafe impl Send for Mapping {}
// SAFETY: as above.
unsafe impl Sync for Mapping {}

impl Mapping {
    pub(crate) fn new(fd: &OwnedFd, len: usize) -> rustix::io::Result<Self> {
        if len == 0 {
            return Err(rustix::io::Errno::INVAL);
        }
        // SAFETY: a fresh mapping at an address the kernel picks cannot
        // alias any Rust object; the descriptor is open for reading and
        // writing.
        let ptr = unsafe {
            rustix::mm::mmap(
                std::ptr::null_mut(),
                len,
                ProtFlags::READ | ProtFlags::WRITE,
                MapFlags::SHARED,
                fd,
                0,
            )?
        };
        let ptr = NonNull::new(ptr.cast::<u8>()).ok_or(rustix::io::Errno::INVAL)?;
        Ok(Self { ptr, len })
    }

    pub(crate) fn as_ptr(&self) -> *mut u8 {
        self.ptr.as_ptr()
    }

    pub(crate) fn len(&self) -> usize {
        self.len
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        // SAFETY: `ptr`/`len` are exactly what mmap returned, and every
        // reference into the mapping borrows an `Arc<Mapping>` that is gone.
        let _ = unsafe { rustix::mm::munmap(self.ptr.as_ptr().cast(), self.len) };
    }
}

/// A [`Region`] inside a shared mapping: `len` bytes at `offset`. Keeps the
/// mapping alive.
///
/// Another process can write these bytes at any moment, so this is not a
/// [`PrivateRegion`](crate::region::PrivateRegion): no Rust reference to
/// them is ever made. Every access is a relaxed atomic load or store (of
/// 8-byte words where aligned, of bytes at the unaligned ends of a write)
/// into or out of private memory: a concurrent write by a peer can change
/// which bytes we copy, never make the access undefined. Ordering comes from
/// the ring's Release/Acquire index stores and loads, as for any region.
#[derive(Debug, Clone)]
pub struct ShmRegion {
    map: Arc<Mapping>,
    offset: usize,
    len: usize,
}

impl ShmRegion {
    /// # Panics
    ///
    /// If the range is out of the mapping or `offset` is not aligned to
    /// [`REGION_ALIGN`] (callers pass offsets from a validated geometry).
    pub(crate) fn new(map: Arc<Mapping>, offset: usize, len: usize) -> Self {
        assert!(offset % REGION_ALIGN == 0);
        assert!(offset.checked_add(len).is_some_and(|end| end <= map.len()));
        Self { map, offset, len }
    }
}

// SAFETY: the mapping is page-aligned and `offset` a multiple of
// REGION_ALIGN, so the pointer is aligned; the range lies inside the mapping
// (checked in `new`), which stays mapped while the Arc lives; tmpfs pages
// start zeroed; pointer and length never change. A named segment truncated
// by a hostile peer would fault (see `segment.rs`), never alias.
unsafe impl Region for ShmRegion {
    fn as_ptr(&self) -> *mut u8 {
        // SAFETY: offset + len <= map.len(), checked in `new`.
        unsafe { self.map.as_ptr().add(self.offset) }
    }
    fn len(&self) -> usize {
        self.len
    }

    unsafe fn read_words(&self, src: *const u64, dst: *mut u64, words: usize) {
        for i in 0..words {
            // SAFETY: `src + i` is 8-aligned and inside the mapping (the
            // caller's promise), which stays mapped while `self` lives; in
            // this process the segment is only ever accessed atomically (this
            // accessor, `write_word`, `write_bytes`, the control block's
            // atomics), and a peer's writes are another process's: no data
            // race in this program.
            let word =
                unsafe { AtomicU64::from_ptr(src.add(i).cast_mut()) }.load(Ordering::Relaxed);
            // SAFETY: `dst` is private memory valid for `words` words.
            unsafe { dst.add(i).write(word) };
        }
    }

    unsafe fn write_word(&self, dst: *mut u64, word: u64) {
        // SAFETY: as in `read_words`: aligned, mapped, accessed only
        // atomically.
        unsafe { AtomicU64::from_ptr(dst) }.store(word, Ordering::Relaxed);
    }

    unsafe fn write_bytes(&self, dst: *mut u8, src: &[u8]) {
        let n = src.len();
        let mut i = 0;
        // Byte stores up to the first 8-aligned address, whole words, then
        // byte stores for the rest. Mixed sizes never race within this
        // process: a reader of these bytes is ordered after us by the ring's
        // Release store of `head`.
        while i < n && (dst.addr() + i) % 8 != 0 {
            // SAFETY: inside the caller's range; accessed only atomically.
            unsafe { AtomicU8::from_ptr(dst.add(i)) }.store(src[i], Ordering::Relaxed);
            i += 1;
        }
        while n - i >= 8 {
            let mut w = [0u8; 8];
            w.copy_from_slice(&src[i..i + 8]);
            // SAFETY: 8-aligned (the loop above) and inside the caller's
            // range; accessed only atomically.
            unsafe { AtomicU64::from_ptr(dst.add(i).cast()) }
                .store(u64::from_ne_bytes(w), Ordering::Relaxed);
            i += 8;
        }
        while i < n {
            // SAFETY: as for the leading bytes.
            unsafe { AtomicU8::from_ptr(dst.add(i)) }.store(src[i], Ordering::Relaxed);
            i += 1;
        }
    }
}
