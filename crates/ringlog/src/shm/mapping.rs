//! A shared mapping of a segment, and [`ShmRegion`]: a slice of it that a
//! ring lives in.

use crate::region::{Region, REGION_ALIGN};
use crate::sync::Arc;
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
}
