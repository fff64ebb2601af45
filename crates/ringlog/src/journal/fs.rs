//! The file layer the journal writes through, small enough to replace:
//! [`JournalFs`] (directory operations) and [`JournalFile`] (one open
//! segment). [`StdFs`] is the real one; [`FaultyFs`] wraps it and fails on
//! demand (`ENOSPC` after N bytes, `EIO` on sync, the n-th operation), so
//! tests can drive every error path.

use std::ffi::OsString;
use std::fmt;
use std::fs::{File, OpenOptions};
use std::io::{self, IoSlice, Seek, SeekFrom, Write};
use std::os::unix::fs::{FileExt, FileTypeExt, OpenOptionsExt};
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};

/// Directory-level operations the journal uses.
pub trait JournalFs: fmt::Debug {
    /// An open segment file.
    type File: JournalFile;
    /// Creates `dir` and its parents if missing.
    fn create_dir_all(&self, dir: &Path) -> io::Result<()>;
    /// Names of the entries in `dir`.
    fn list_dir(&self, dir: &Path) -> io::Result<Vec<OsString>>;
    /// Creates a new file for reading and writing; fails if it exists.
    fn create_new(&self, path: &Path) -> io::Result<Self::File>;
    /// Opens an existing file for reading and writing, cursor at 0.
    fn open_rw(&self, path: &Path) -> io::Result<Self::File>;
    /// Opens an existing file for reading only (recovery's dry run reads a
    /// journal it may not write). By default the same as
    /// [`open_rw`](Self::open_rw).
    fn open_read(&self, path: &Path) -> io::Result<Self::File> {
        self.open_rw(path)
    }
    /// Atomically renames `from` to `to`.
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()>;
    /// Removes a file.
    fn remove_file(&self, path: &Path) -> io::Result<()>;
    /// Makes `dir`'s entries (creations, renames, removals) durable.
    fn sync_dir(&self, dir: &Path) -> io::Result<()>;
}

/// Operations on one open segment file.
#[allow(clippy::len_without_is_empty)] // a file length, not a collection
pub trait JournalFile: fmt::Debug + Send {
    /// Writes from `bufs` at the cursor and advances it (one `writev`); may
    /// write fewer bytes than offered.
    fn writev(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize>;
    /// Reads at `offset` without moving the cursor (`pread`).
    fn pread(&self, buf: &mut [u8], offset: u64) -> io::Result<usize>;
    /// The file's length in bytes.
    fn file_len(&self) -> io::Result<u64>;
    /// Cuts (or extends) the file to `len` bytes and moves the cursor there.
    fn truncate_to(&mut self, len: u64) -> io::Result<()>;
    /// Makes the file's data durable (`fdatasync`).
    fn fdatasync(&mut self) -> io::Result<()>;
    /// Starts writing the bytes `[offset, offset + len)` to the device
    /// without waiting for them, so the disk works while more is appended
    /// and the next [`fdatasync`](Self::fdatasync) has less left to write.
    /// A hint: it makes nothing durable, and an I/O error it meets is
    /// reported again by that `fdatasync`. By default it does nothing.
    fn start_writeback(&mut self, offset: u64, len: u64) -> io::Result<()> {
        let _ = (offset, len);
        Ok(())
    }
}

/// A file named like a segment that is not a regular file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("not a regular file but a {file_type}")]
pub(crate) struct NotRegular {
    /// What it is instead: `FIFO`, `directory`, ...
    pub(crate) file_type: &'static str,
}

/// Why [`open_regular`] failed.
#[derive(Debug)]
pub(crate) enum OpenError {
    /// `open` or `fstat` failed.
    Io(io::Error),
    /// The path names something other than a regular file.
    NotRegular(NotRegular),
}

impl From<OpenError> for io::Error {
    fn from(e: OpenError) -> Self {
        match e {
            OpenError::Io(e) => e,
            OpenError::NotRegular(n) => io::Error::new(io::ErrorKind::InvalidInput, n),
        }
    }
}

fn file_type_name(t: std::fs::FileType) -> &'static str {
    if t.is_dir() {
        "directory"
    } else if t.is_fifo() {
        "FIFO"
    } else if t.is_socket() {
        "socket"
    } else if t.is_char_device() {
        "character device"
    } else if t.is_block_device() {
        "block device"
    } else {
        "special file"
    }
}

/// Opens an existing file without blocking (`O_NONBLOCK`, so a FIFO named
/// like a segment does not wait for a writer) and checks with `fstat` that
/// it is a regular file before anything reads it, so nothing ever blocks
/// reading a FIFO or a device. `O_NONBLOCK` has no effect on regular files.
pub(crate) fn open_regular(path: &Path, write: bool) -> Result<File, OpenError> {
    let file = OpenOptions::new()
        .read(true)
        .write(write)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(path)
        .map_err(OpenError::Io)?;
    let file_type = file.metadata().map_err(OpenError::Io)?.file_type();
    if file_type.is_file() {
        Ok(file)
    } else {
        Err(OpenError::NotRegular(NotRegular {
            file_type: file_type_name(file_type),
        }))
    }
}

/// The real file system through `std::fs`. Existing files are opened
/// without blocking and only if they are regular files.
#[derive(Debug, Clone, Copy, Default)]
pub struct StdFs;

impl JournalFs for StdFs {
    type File = File;

    fn create_dir_all(&self, dir: &Path) -> io::Result<()> {
        std::fs::create_dir_all(dir)
    }

    fn list_dir(&self, dir: &Path) -> io::Result<Vec<OsString>> {
        std::fs::read_dir(dir)?
            .map(|e| e.map(|e| e.file_name()))
            .collect()
    }

    fn create_new(&self, path: &Path) -> io::Result<File> {
        OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(path)
    }

    fn open_rw(&self, path: &Path) -> io::Result<File> {
        Ok(open_regular(path, true)?)
    }

    fn open_read(&self, path: &Path) -> io::Result<File> {
        Ok(open_regular(path, false)?)
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        std::fs::rename(from, to)
    }

    fn remove_file(&self, path: &Path) -> io::Result<()> {
        std::fs::remove_file(path)
    }

    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        File::open(dir)?.sync_all()
    }
}

impl JournalFile for File {
    fn writev(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        Write::write_vectored(self, bufs)
    }

    fn pread(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        FileExt::read_at(self, buf, offset)
    }

    fn file_len(&self) -> io::Result<u64> {
        Ok(self.metadata()?.len())
    }

    fn truncate_to(&mut self, len: u64) -> io::Result<()> {
        self.set_len(len)?;
        self.seek(SeekFrom::Start(len)).map(drop)
    }

    fn fdatasync(&mut self) -> io::Result<()> {
        File::sync_data(self)
    }

    /// `sync_file_range(SYNC_FILE_RANGE_WRITE)`: queues the range for
    /// writeback and returns without waiting for it.
    fn start_writeback(&mut self, offset: u64, len: u64) -> io::Result<()> {
        use std::os::fd::AsRawFd;
        let (Ok(offset), Ok(len)) = (i64::try_from(offset), i64::try_from(len)) else {
            return Err(io::ErrorKind::InvalidInput.into());
        };
        // SAFETY: the descriptor is open for as long as `self` lives; the
        // call reads no memory of ours.
        let rc = unsafe {
            libc::sync_file_range(self.as_raw_fd(), offset, len, libc::SYNC_FILE_RANGE_WRITE)
        };
        if rc == 0 {
            Ok(())
        } else {
            Err(io::Error::last_os_error())
        }
    }
}

/// What [`FaultyFs`] is told to break.
#[derive(Debug, Default)]
struct Faults {
    /// Bytes that may still be written before `ENOSPC`; `None` = unlimited.
    space_left: Option<u64>,
    /// Number of upcoming `sync_data` calls that fail with `EIO`.
    failing_syncs: u32,
    /// Fail the operation with this 1-based index (counting every
    /// operation) with this errno.
    fail_op: Option<(u64, i32)>,
    /// Operations so far.
    ops: u64,
    /// Bytes written so far.
    written: u64,
}

/// A [`JournalFs`] over the real file system that fails on demand.
///
/// Clones share their fault settings, so a test keeps one clone to steer
/// the faults of the journal that owns the other.
///
/// # Examples
///
/// ```
/// use ringlog::journal::{FaultyFs, Journal, JournalOptions};
/// let dir = std::env::temp_dir().join(format!("ringlog-doc-faulty-{}", std::process::id()));
/// let fs = FaultyFs::new();
/// let mut journal = Journal::open_with(fs.clone(), &dir, JournalOptions::default()).unwrap();
/// fs.set_space_left(Some(0));
/// assert!(journal.append(1, 0, 0, b"no room").unwrap_err().is_no_space());
/// fs.set_space_left(None);
/// journal.append(1, 0, 0, b"room again").unwrap();
/// # drop(journal);
/// # std::fs::remove_dir_all(&dir).unwrap();
/// ```
#[derive(Debug, Clone, Default)]
pub struct FaultyFs {
    faults: Arc<Mutex<Faults>>,
}

impl FaultyFs {
    /// A file system with no faults armed.
    pub fn new() -> Self {
        Self::default()
    }

    fn faults(&self) -> MutexGuard<'_, Faults> {
        // A panic while holding this lock only happens in a failing test;
        // the settings are still meaningful afterwards.
        self.faults.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// After `bytes` more bytes, writes fail with `ENOSPC` (a write that
    /// straddles the limit is short). `None` removes the limit.
    pub fn set_space_left(&self, bytes: Option<u64>) {
        self.faults().space_left = bytes;
    }

    /// The next `count` `fdatasync` calls fail with `EIO`.
    pub fn fail_syncs(&self, count: u32) {
        self.faults().failing_syncs = count;
    }

    /// The `n`-th operation from now (1-based; writes, reads excluded,
    /// syncs, creations, renames, removals, truncations) fails with `errno`.
    pub fn fail_nth_op(&self, n: u64, errno: i32) {
        let mut f = self.faults();
        f.fail_op = Some((f.ops + n, errno));
    }

    /// Disarms every fault.
    pub fn clear(&self) {
        let mut f = self.faults();
        f.space_left = None;
        f.failing_syncs = 0;
        f.fail_op = None;
    }

    /// Total bytes written through this file system.
    pub fn bytes_written(&self) -> u64 {
        self.faults().written
    }

    /// Counts one operation; fails it if it is the armed one.
    fn op(&self) -> io::Result<()> {
        let mut f = self.faults();
        f.ops += 1;
        match f.fail_op {
            Some((n, errno)) if n == f.ops => {
                f.fail_op = None;
                Err(io::Error::from_raw_os_error(errno))
            }
            _ => Ok(()),
        }
    }
}

fn enospc() -> io::Error {
    io::Error::from_raw_os_error(rustix::io::Errno::NOSPC.raw_os_error())
}

fn eio() -> io::Error {
    io::Error::from_raw_os_error(rustix::io::Errno::IO.raw_os_error())
}

impl JournalFs for FaultyFs {
    type File = FaultyFile;

    fn create_dir_all(&self, dir: &Path) -> io::Result<()> {
        StdFs.create_dir_all(dir)
    }

    fn list_dir(&self, dir: &Path) -> io::Result<Vec<OsString>> {
        StdFs.list_dir(dir)
    }

    fn create_new(&self, path: &Path) -> io::Result<FaultyFile> {
        self.op()?;
        Ok(FaultyFile {
            file: StdFs.create_new(path)?,
            fs: self.clone(),
        })
    }

    fn open_rw(&self, path: &Path) -> io::Result<FaultyFile> {
        Ok(FaultyFile {
            file: StdFs.open_rw(path)?,
            fs: self.clone(),
        })
    }

    fn open_read(&self, path: &Path) -> io::Result<FaultyFile> {
        Ok(FaultyFile {
            file: StdFs.open_read(path)?,
            fs: self.clone(),
        })
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        self.op()?;
        StdFs.rename(from, to)
    }

    fn remove_file(&self, path: &Path) -> io::Result<()> {
        self.op()?;
        StdFs.remove_file(path)
    }

    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        self.op()?;
        StdFs.sync_dir(dir)
    }
}

/// A segment file of a [`FaultyFs`].
#[derive(Debug)]
pub struct FaultyFile {
    file: File,
    fs: FaultyFs,
}

impl JournalFile for FaultyFile {
    fn writev(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        self.fs.op()?;
        let offered: u64 = bufs.iter().map(|b| b.len() as u64).sum();
        let allowed = match self.fs.faults().space_left {
            Some(0) if offered > 0 => return Err(enospc()),
            Some(left) => left.min(offered),
            None => offered,
        };
        let n = if allowed == offered {
            JournalFile::writev(&mut self.file, bufs)?
        } else {
            // A short write: only the first `allowed` bytes land.
            let mut buf = Vec::with_capacity(allowed as usize);
            for b in bufs {
                let take = (allowed as usize - buf.len()).min(b.len());
                buf.extend_from_slice(&b[..take]);
            }
            self.file.write(&buf)?
        };
        let mut f = self.fs.faults();
        f.written += n as u64;
        if let Some(left) = f.space_left.as_mut() {
            *left -= n as u64;
        }
        Ok(n)
    }

    fn pread(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        JournalFile::pread(&self.file, buf, offset)
    }

    fn file_len(&self) -> io::Result<u64> {
        JournalFile::file_len(&self.file)
    }

    fn truncate_to(&mut self, len: u64) -> io::Result<()> {
        self.fs.op()?;
        JournalFile::truncate_to(&mut self.file, len)
    }

    fn fdatasync(&mut self) -> io::Result<()> {
        self.fs.op()?;
        {
            let mut f = self.fs.faults();
            if f.failing_syncs > 0 {
                f.failing_syncs -= 1;
                return Err(eio());
            }
        }
        JournalFile::fdatasync(&mut self.file)
    }

    /// Passed through without counting as an operation: a hint that
    /// changes no outcome, so the n-th-operation faults land where they
    /// did without it.
    fn start_writeback(&mut self, offset: u64, len: u64) -> io::Result<()> {
        JournalFile::start_writeback(&mut self.file, offset, len)
    }
}
