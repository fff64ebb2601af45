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
//! # Closing the announcement with an RMW instead of the notifier's fence
//!
//! When every publication a waiter waits for is preceded, on the notifier's
//! side, by an Acquire read-modify-write of one word `W` (an MPSC producer's
//! reservation CAS on `tail`), the notifier can skip its fence
//! ([`Event::notify_reserved`], a plain load) if the waiter also closes its
//! announcement with a Release RMW of `W` ([`Event::wait_until_closed`]):
//!
//! ```text
//! waiter                                   notifier
//! waiters += 1; key = seq.fetch_or(1)      r = W.rmw (Acquire)   (reserve)
//! fence(SeqCst)                            publish (Release)
//! w = W.rmw(0) (Release)    <-- mo(W) -->  if waiters.load() != 0: wake
//! if cond() or w shows a reservation
//!     not yet seen by cond: do not sleep
//! futex_wait(seq, key)
//! ```
//!
//! Both RMWs are in `W`'s single modification order. If the waiter's comes
//! first, the notifier's Acquire RMW reads it (or a later RMW of its release
//! sequence), so the announcement happens before the notifier's load of
//! `waiters`, which therefore sees it and wakes. If the notifier's comes
//! first, the waiter's RMW reads the reservation: the waiter knows a
//! publication is in flight and does not sleep on the futex, but yields and
//! looks again. No wake-up is lost, and the notifier's hot path has no fence:
//! on x86 its reservation is a locked instruction anyway, which is what it
//! needed to reserve. The waiter's `SeqCst` fence stays, so notifiers of rare
//! events that publish with plain stores (a handle dropped) keep using the
//! fenced [`Event::notify`] on the same event.
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

    /// Wakes every waiter, if any announced it is sleeping, without a fence.
    ///
    /// Correct only for a publication preceded by an Acquire (or stronger)
    /// read-modify-write of the word the waiters close their announcement
    /// with in [`wait_until_closed`](Self::wait_until_closed) (module docs).
    /// The cost when nobody waits is one load.
    #[inline]
    pub fn notify_reserved(&self) {
        // Relaxed: the caller's Acquire RMW of the closing word reads the
        // waiter's Release RMW (or a later one), so the announcement happens
        // before this load (module docs).
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
    /// Notifiers call [`notify`](Self::notify).
    pub fn wait_until(
        &self,
        strategy: &WaitStrategy,
        deadline: Deadline,
        cond: impl FnMut() -> bool,
    ) -> bool {
        self.wait(strategy, deadline, cond, || false)
    }

    /// [`wait_until`](Self::wait_until) for an event whose hot notifiers call
    /// the fence-free [`notify_reserved`](Self::notify_reserved).
    ///
    /// After announcing itself and before each sleep, the waiter calls
    /// `close`, which must make a Release read-modify-write of the word those
    /// notifiers reserve with (Acquire) before they publish, and return true
    /// if that RMW saw a reservation whose publication `cond` may not show
    /// yet. Then the waiter does not sleep: it yields and looks again (module
    /// docs). Fenced [`notify`](Self::notify) calls keep working too.
    pub fn wait_until_closed(
        &self,
        strategy: &WaitStrategy,
        deadline: Deadline,
        cond: impl FnMut() -> bool,
        close: impl FnMut() -> bool,
    ) -> bool {
        self.wait(strategy, deadline, cond, close)
    }

    fn wait(
        &self,
        strategy: &WaitStrategy,
        deadline: Deadline,
        mut cond: impl FnMut() -> bool,
        mut close: impl FnMut() -> bool,
    ) -> bool {
        if strategy.spin_then_yield(&mut cond) {
            return true;
        }
        loop {
            self.waiters.fetch_add(1, Ordering::Relaxed);
            // Acquire: pairs with the Release CAS in `wake_slow`, so after a
            // wake-up `cond` sees what the notifier published.
            let key = self.seq.fetch_or(SLEEPER, Ordering::Acquire) | SLEEPER;
            // SeqCst fence: orders the `waiters` increment and the bit before
            // the reads in `cond`; pairs with the fence in `notify`. The
            // Release RMW in `close` orders them before the Acquire RMW of a
            // notifier that calls `notify_reserved` (module docs).
            fence(Ordering::SeqCst);
            let in_flight = close();
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
            if in_flight {
                // A publication is on its way and its notifier may have
                // missed us: let it run instead of sleeping.
                self.waiters.fetch_sub(1, Ordering::Relaxed);
                crate::sync::yield_now();
                continue;
            }
            futex::wait(&self.seq, key, timeout);
            self.waiters.fetch_sub(1, Ordering::Relaxed);
        }
    }
}
