//! A shared-memory file: a named POSIX segment (`shm_open`) or an anonymous
//! `memfd` handed to a child by descriptor inheritance.
//!
//! Memory is reserved when the segment is created (`fallocate`), so a full
//! `/dev/shm` is an error then, not a `SIGBUS` when a page is first touched.
//! A `memfd` is sealed against shrinking and growing once sized, so no peer
//! can truncate it under a mapping; a named segment cannot be sealed, so a
//! peer with write permission could truncate it and make the others fault:
//! use a `memfd` when peers are not trusted that far.

use super::error::ShmError;
use super::mapping::Mapping;
use rustix::fd::{AsFd, BorrowedFd, OwnedFd};
use rustix::fs::{FallocateFlags, Mode, SealFlags};

/// Permission bits of a new named segment unless told otherwise.
pub const DEFAULT_MODE: u32 = 0o600;

/// An open shared-memory file and its size.
#[derive(Debug)]
pub struct Segment {
    name: String,
    fd: OwnedFd,
    len: u64,
}

impl Segment {
    /// Creates the named segment `name` exclusively (it must not exist) with
    /// permission bits `mode`, and reserves `len` zeroed bytes.
    ///
    /// A name without a leading `/` gets one. On any error after the name
    /// was created, it is removed again.
    ///
    /// # Errors
    ///
    /// [`ShmError::InvalidName`], [`ShmError::Exists`],
    /// [`ShmError::PermissionDenied`], [`ShmError::NoSpace`], or
    /// [`ShmError::Io`] naming the failed call.
    pub fn create(name: &str, len: usize, mode: u32) -> Result<Self, ShmError> {
        let name = normalize(name)?;
        let flags =
            rustix::shm::OFlags::CREATE | rustix::shm::OFlags::EXCL | rustix::shm::OFlags::RDWR;
        let fd = rustix::shm::open(name.as_str(), flags, Mode::from_raw_mode(mode & 0o777))
            .map_err(|e| ShmError::io(&name, "shm_open", e))?;
        // shm_open applies the umask; the caller's mode is what they asked for.
        let sized = rustix::fs::fchmod(&fd, Mode::from_raw_mode(mode & 0o777))
            .map_err(|e| ShmError::io(&name, "fchmod", e))
            .and_then(|()| reserve(&name, &fd, len as u64));
        if let Err(e) = sized {
            let _ = rustix::shm::unlink(name.as_str());
            return Err(e);
        }
        Ok(Self {
            name,
            fd,
            len: len as u64,
        })
    }

    /// Creates an anonymous segment (`memfd_create`) of `len` zeroed bytes,
    /// sealed against shrinking, growing and further sealing. `label` only
    /// names it in `/proc/<pid>/fd` and in errors.
    ///
    /// The descriptor is close-on-exec; call
    /// [`set_inheritable`](Self::set_inheritable) before spawning a child
    /// that should receive it.
    ///
    /// # Errors
    ///
    /// [`ShmError::NoSpace`] or [`ShmError::Io`].
    pub fn anonymous(label: &str, len: usize) -> Result<Self, ShmError> {
        let name = format!("memfd:{label}");
        let flags = rustix::fs::MemfdFlags::CLOEXEC | rustix::fs::MemfdFlags::ALLOW_SEALING;
        let fd = rustix::fs::memfd_create(label, flags)
            .map_err(|e| ShmError::io(&name, "memfd_create", e))?;
        reserve(&name, &fd, len as u64)?;
        rustix::fs::fcntl_add_seals(&fd, SealFlags::SHRINK | SealFlags::GROW | SealFlags::SEAL)
            .map_err(|e| ShmError::io(&name, "F_ADD_SEALS", e))?;
        Ok(Self {
            name,
            fd,
            len: len as u64,
        })
    }

    /// Opens the existing named segment `name` for reading and writing.
    ///
    /// # Errors
    ///
    /// [`ShmError::NotFound`], [`ShmError::PermissionDenied`],
    /// [`ShmError::InvalidName`], [`ShmError::Io`].
    pub fn open(name: &str) -> Result<Self, ShmError> {
        let name = normalize(name)?;
        let fd = rustix::shm::open(name.as_str(), rustix::shm::OFlags::RDWR, Mode::empty())
            .map_err(|e| ShmError::io(&name, "shm_open", e))?;
        Self::from_fd(fd, &name)
    }

    /// Adopts a descriptor of a shared-memory file (e.g. a `memfd`
    /// inherited from the parent); `label` names it in errors.
    ///
    /// # Errors
    ///
    /// [`ShmError::Io`] if `fstat` fails.
    pub fn from_fd(fd: OwnedFd, label: &str) -> Result<Self, ShmError> {
        let st = rustix::fs::fstat(&fd).map_err(|e| ShmError::io(label, "fstat", e))?;
        Ok(Self {
            name: label.to_owned(),
            len: u64::try_from(st.st_size).unwrap_or(0),
            fd,
        })
    }

    /// Removes the name `name`; mappings and descriptors already open stay
    /// valid until closed.
    ///
    /// # Errors
    ///
    /// [`ShmError::NotFound`], [`ShmError::PermissionDenied`], ...
    pub fn unlink(name: &str) -> Result<(), ShmError> {
        let name = normalize(name)?;
        rustix::shm::unlink(name.as_str()).map_err(|e| ShmError::io(&name, "shm_unlink", e))
    }

    /// The segment's name (`/name`, or `memfd:label`).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Size in bytes, as `fstat` said when the segment was opened.
    #[allow(clippy::len_without_is_empty)]
    pub fn len(&self) -> u64 {
        self.len
    }

    /// The descriptor.
    pub fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    /// Whether the descriptor survives `exec` (off by default).
    ///
    /// # Errors
    ///
    /// [`ShmError::Io`] if `fcntl` fails.
    pub fn set_inheritable(&self, inheritable: bool) -> Result<(), ShmError> {
        let flags = if inheritable {
            rustix::io::FdFlags::empty()
        } else {
            rustix::io::FdFlags::CLOEXEC
        };
        rustix::io::fcntl_setfd(&self.fd, flags).map_err(|e| ShmError::io(&self.name, "F_SETFD", e))
    }

    /// Maps the whole segment shared, readable and writable.
    ///
    /// # Errors
    ///
    /// [`ShmError::PermissionDenied`] or [`ShmError::Io`].
    pub(crate) fn map(&self) -> Result<Mapping, ShmError> {
        let len = usize::try_from(self.len).map_err(|_| {
            ShmError::io(
                &self.name,
                "mmap",
                std::io::Error::from_raw_os_error(libc::EFBIG),
            )
        })?;
        Mapping::new(&self.fd, len).map_err(|e| ShmError::io(&self.name, "mmap", e))
    }
}

/// Reserves `len` bytes: `fallocate` allocates the pages now (tmpfs counts
/// them against its size limit), so a full file system fails here.
fn reserve(name: &str, fd: &OwnedFd, len: u64) -> Result<(), ShmError> {
    match rustix::fs::fallocate(fd, FallocateFlags::empty(), 0, len) {
        Ok(()) => Ok(()),
        Err(e) if e == rustix::io::Errno::NOSPC => Err(ShmError::NoSpace {
            name: name.to_owned(),
            bytes: len,
        }),
        // A file system without fallocate: size it; pages come on first touch.
        Err(e) if e == rustix::io::Errno::OPNOTSUPP || e == rustix::io::Errno::NOSYS => {
            rustix::fs::ftruncate(fd, len).map_err(|e| ShmError::io(name, "ftruncate", e))
        }
        Err(e) => Err(ShmError::io(name, "fallocate", e)),
    }
}

/// `shm_open` names: one leading `/`, no other, no NUL, at most 255 bytes.
fn normalize(name: &str) -> Result<String, ShmError> {
    let full = if name.starts_with('/') {
        name.to_owned()
    } else {
        format!("/{name}")
    };
    let invalid = |reason| ShmError::InvalidName {
        name: name.to_owned(),
        reason,
    };
    if full.len() < 2 {
        return Err(invalid("empty"));
    }
    if full.len() > 255 {
        return Err(invalid("longer than 255 bytes"));
    }
    if full[1..].contains('/') || full.contains('\0') {
        return Err(invalid("contains '/' after the first byte, or NUL"));
    }
    Ok(full)
}
