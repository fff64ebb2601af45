//! `Event`: an event count on a futex word, for one kind of "something changed".
//!
//! The protocol is Dekker's, closed by two `SeqCst` fences:
//!
//! ```text
//! waiter                                   notifier
//! waiters += 1                             publish (e.g. head.store, Release)
//! fence(SeqCst)            <-- S -->       fence(SeqCst)
//! key = seq.load(Acquire)                  if waiters.load() != 0:
//! if cond() { waiters -= 1; done }             seq += 1 (Release)
//! futex_wait(seq, key)                         futex_wake(seq)
//! waiters -= 1
//! ```
//!
//! In the single total order of the two fences, either the notifier's fence
//! comes first, and then the waiter's `cond()` sees what was published, or the
//! waiter's comes first, and then the notifier sees `waiters != 0` and bumps
//! `seq`; the bump is either seen in `key` (and then, by Acquire/Release, the
//! publication too), or it makes `futex_wait` return at once, or it comes after
//! the waiter sleeps and the wake reaches it. No wake-up is lost, and the
//! notifier makes a syscall only when somebody announced it is sleeping.
//!
//! The struct is `repr(C)` with only atomics in it, so it can live in shared
//! memory and work across processes.

use super::{futex, Deadline, WaitStrategy};
use crate::sync::{fence, AtomicU32, Ordering};
use std::time::Instant;

/// A futex-backed event count: one side waits for a condition, the other side
/// calls [`Event::notify`] after every change that could make it true.
#[derive(Debug)]
#[repr(C)]
pub struct Event {
    /// Bumped by a notifier that saw a sleeper; the futex word.
    seq: AtomicU32,
    /// How many waiters announced they may sleep.
    waiters: AtomicU32,
}

impl Default for Event {
    fn default() -> Self {
        Self::new()
    }
}

impl Event {
    /// A new event with nobody waiting.
    pub fn new() -> Self {
        Self {
            seq: AtomicU32::new(0),
            waiters: AtomicU32::new(0),
        }
    }

    /// Wakes every waiter, if any announced it is sleeping.
    ///
    /// Call it after publishing the change the waiters wait for. The cost when
    /// nobody waits is one fence and one load; no syscall.
    #[inline]
    pub fn notify(&self) {
        // SeqCst fence: orders the caller's publication before the load of
        // `waiters`; pairs with the fence in `wait_until` (see module docs).
        fence(Ordering::SeqCst);
        if self.waiters.load(Ordering::Relaxed) != 0 {
            self.wake_slow();
        }
    }

    /// `notify` without its fence: exists only in loom builds, so a loom model
    /// can show that the fence is what prevents a lost wake-up.
    #[cfg(loom)]
    #[doc(hidden)]
    pub fn notify_unfenced_for_loom(&self) {
        if self.waiters.load(Ordering::Relaxed) != 0 {
            self.wake_slow();
        }
    }

    #[cold]
    fn wake_slow(&self) {
        // Release: a waiter that reads the new `seq` with Acquire also sees the
        // publication made before `notify`.
        self.seq.fetch_add(1, Ordering::Release);
        futex::wake_all(&self.seq);
    }

    /// Waits until `cond()` returns true or the deadline passes: spins, then
    /// yields, then sleeps on the futex, as `strategy` says.
    ///
    /// Returns the last value of `cond()`: `false` means the deadline passed.
    /// `cond` must be cheap and side-effect free; it is called many times.
    pub fn wait_until(
        &self,
        strategy: &WaitStrategy,
        deadline: Deadline,
        mut cond: impl FnMut() -> bool,
    ) -> bool {
        for _ in 0..strategy.spins {
            if cond() {
                return true;
            }
            crate::sync::spin_hint();
        }
        for _ in 0..strategy.yields {
            if cond() {
                return true;
            }
            crate::sync::yield_now();
        }
        loop {
            self.waiters.fetch_add(1, Ordering::Relaxed);
            // SeqCst fence: orders the `waiters` increment before the reads in
            // `cond`; pairs with the fence in `notify`.
            fence(Ordering::SeqCst);
            // Acquire: pairs with the Release bump in `wake_slow`.
            let key = self.seq.load(Ordering::Acquire);
            if cond() {
                self.waiters.fetch_sub(1, Ordering::Relaxed);
                return true;
            }
            let mut timeout = strategy.max_sleep;
            if let Some(deadline) = deadline {
                let now = Instant::now();
                if now >= deadline {
                    self.waiters.fetch_sub(1, Ordering::Relaxed);
                    return false;
                }
                let left = deadline - now;
                timeout = Some(timeout.map_or(left, |t| t.min(left)));
            }
            futex::wait(&self.seq, key, timeout);
            self.waiters.fetch_sub(1, Ordering::Relaxed);
        }
    }
}
