//! The 32-bit futex word: sleep while it holds an expected value, wake sleepers.
//!
//! The shared (not `FUTEX_PRIVATE_FLAG`) flavour is used, so a word inside a
//! `MAP_SHARED` mapping wakes sleepers in other processes too.
//!
//! Under `cfg(loom)` the kernel is modelled by one mutex and condition
//! variable: the value check and the sleep are atomic with respect to a wake,
//! as the kernel's hash-bucket lock makes them, so loom reports a lost wake-up
//! as a deadlock.

use crate::sync::AtomicU32;
use std::time::Duration;

/// Sleeps while `word` holds `expected`, for at most `timeout`.
///
/// Returns on a wake, on a value mismatch, on a signal, on the timeout or
/// spuriously: callers always re-check their condition.
#[cfg(not(any(loom, miri)))]
pub(crate) fn wait(word: &AtomicU32, expected: u32, timeout: Option<Duration>) {
    use rustix::thread::futex;
    let ts = timeout.map(|d| rustix::time::Timespec {
        tv_sec: d.as_secs().min(i64::MAX as u64) as i64,
        tv_nsec: i64::from(d.subsec_nanos()),
    });
    // Errors are EAGAIN (value changed), EINTR and ETIMEDOUT: each means
    // "re-check the condition", which every caller does.
    let _ = futex::wait(word, futex::Flags::empty(), expected, ts.as_ref());
}

/// Under Miri the syscall is made through `libc` with the word as the
/// `*mut u32` Miri's futex emulation checks for (rustix passes a pointer to
/// the atomic type, which Miri rejects as a variadic type mismatch).
#[cfg(all(miri, not(loom)))]
pub(crate) fn wait(word: &AtomicU32, expected: u32, timeout: Option<Duration>) {
    let ts = timeout.map(|d| libc::timespec {
        tv_sec: d.as_secs().min(i64::MAX as u64) as libc::time_t,
        tv_nsec: libc::c_long::from(d.subsec_nanos() as i32),
    });
    let ts_ptr = ts
        .as_ref()
        .map_or(std::ptr::null(), |t| t as *const libc::timespec);
    // SAFETY: `word` is a live, aligned u32 for the whole call; `ts_ptr` is
    // null or points to a timespec that outlives the call.
    let _ = unsafe {
        libc::syscall(
            libc::SYS_futex,
            word.as_ptr(),
            libc::FUTEX_WAIT,
            expected,
            ts_ptr,
        )
    };
}

/// Wakes every sleeper on `word`.
#[cfg(not(any(loom, miri)))]
pub(crate) fn wake_all(word: &AtomicU32) {
    use rustix::thread::futex;
    // A failed wake can only be EFAULT/EINVAL for a bad address, impossible
    // for a reference; nothing useful to do with it.
    let _ = futex::wake(word, futex::Flags::empty(), i32::MAX as u32);
}

/// Wakes every sleeper on `word` (Miri: through `libc`, as `wait`).
#[cfg(all(miri, not(loom)))]
pub(crate) fn wake_all(word: &AtomicU32) {
    // SAFETY: `word` is a live, aligned u32 for the whole call.
    let _ = unsafe { libc::syscall(libc::SYS_futex, word.as_ptr(), libc::FUTEX_WAKE, i32::MAX) };
}

#[cfg(loom)]
mod model {
    use loom::sync::{Condvar, Mutex};
    loom::lazy_static! {
        pub(super) static ref KERNEL: (Mutex<()>, Condvar) = (Mutex::new(()), Condvar::new());
    }
}

#[cfg(loom)]
pub(crate) fn wait(word: &AtomicU32, expected: u32, timeout: Option<Duration>) {
    use crate::sync::Ordering::SeqCst;
    if timeout.is_some() {
        // loom has no clock: a timed sleep is a spurious return, which every
        // caller tolerates.
        loom::thread::yield_now();
        return;
    }
    let (lock, cv) = &*model::KERNEL;
    let guard = lock.lock().unwrap();
    // SeqCst: the model stands for the kernel, which compares the word under
    // its own lock; the mutex already orders this against `wake_all`.
    if word.load(SeqCst) != expected {
        return;
    }
    drop(cv.wait(guard).unwrap());
}

#[cfg(loom)]
pub(crate) fn wake_all(_word: &AtomicU32) {
    let (lock, cv) = &*model::KERNEL;
    let _guard = lock.lock().unwrap();
    cv.notify_all();
}
