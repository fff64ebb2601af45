//! `Event`: an event count on a futex word, for one kind of "something changed".
//!
//! The protocol is Dekker's, closed by two `SeqCst` fences, with a "sleeper
//! announced" bit (bit 0) in the futex word so that only the first notifier
//! after a waiter went to sleep pays for the syscall:
//!
//! ```text
//! waiter                                   notifier
//! waiters += 1                             publish (e.g. head.store, Release)
//! key = seq.fetch_or(1) | 1                fence(SeqCst)
//! fence(SeqCst)            <-- S -->       if waiters.load() != 0:
//! if cond() { waiters -= 1; done }             s = seq.load()
//! futex_wait(seq, key)                         if s & 1 and CAS(seq, s, (s & !1) + 2):
//! waiters -= 1                                     futex_wake(seq)
//! ```
//!
//! In the single total order of the two fences, either the notifier's fence
//! comes first, and then the waiter's `cond()` sees what was published, or the
//! waiter's comes first, and then the notifier sees `waiters != 0` and a `seq`
//! no older than the waiter's `fetch_or`. If that `seq` still has the bit, the
//! notifier's CAS changes the word and wakes: the waiter's `futex_wait` then
//! returns at once or is woken. If the bit is already clear, another notifier
//! cleared it after the waiter set it, so that notifier changed the word and
//! woke everyone. No wake-up is lost.
//!
//! While a waiter sleeps, only one notifier makes the syscall: the others find
//! the bit clear. A notifier makes no syscall at all unless somebody announced
//! it may sleep.
//!
//! The struct is `repr(C)` with only atomics in it, so it can live in shared
//! memory and work across processes.

use super::{futex, Deadline, WaitStrategy};
use crate::sync::{fence, AtomicU32, Ordering};
use std::time::Instant;

/// Bit 0 of `Event::seq`: a waiter announced it may sleep on the word.
const SLEEPER: u32 = 1;

/// A futex-backed event count: one side waits for a condition, the other side
/// calls [`Event::notify`] after every change that could make it true.
#[derive(Debug)]
#[repr(C)]
pub struct Event {
    /// The futex word: bit 0 (`SLEEPER`) is set by a waiter about to
    /// sleep; a notifier that finds it set clears it and adds 2, then wakes.
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
    /// nobody waits is one fence and one load; no syscall. While waiters
    /// sleep, only the first notifier makes the syscall.
    #[inline]
    pub fn notify(&self) {
        // SeqCst fence: orders the caller's publication before the loads of
        // `waiters` and `seq`; pairs with the fence in `wait_until`.
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
        // Relaxed: the fence in `notify` orders this load after the waiter's
        // `fetch_or` (module docs); the CAS below re-checks the value.
        let mut s = self.seq.load(Ordering::Relaxed);
        while s & SLEEPER != 0 {
            // Release: a waiter whose `fetch_or` (Acquire) reads the new value
            // also sees the publication made before `notify`.
            match self.seq.compare_exchange_weak(
                s,
                (s & !SLEEPER).wrapping_add(2),
                Ordering::Release,
                Ordering::Relaxed,
            ) {
                Ok(_) => {
                    futex::wake_all(&self.seq);
                    return;
                }
                Err(now) => s = now,
            }
        }
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
            // Acquire: pairs with the Release CAS in `wake_slow`, so after a
            // wake-up `cond` sees what the notifier published.
            let key = self.seq.fetch_or(SLEEPER, Ordering::Acquire) | SLEEPER;
            // SeqCst fence: orders the `waiters` increment and the bit before
            // the reads in `cond`; pairs with the fence in `notify`.
            fence(Ordering::SeqCst);
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
