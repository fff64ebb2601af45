//! Layer 1: how a side waits for the other.
//!
//! - [`Event`] (`event.rs`): an event count on a 32-bit futex word; waiting
//!   spins, then yields, then sleeps; notifying costs a fence and a load, and
//!   a syscall only when a waiter announced it is sleeping.
//! - `handshake.rs`: an [`Event`] plus a per-sleep-episode handshake for
//!   notifiers that publish with plain stores (the SPSC rings, the fan-in
//!   queue's and the shared ring's writers): each pays the fence only while
//!   the waiter is in a sleep episode, and one load of a line nobody writes
//!   otherwise.
//! - `futex.rs`: the shared-flavour futex syscalls (and their loom model).
//!
//! The three ways a notifier can pair with a waiter, and which ring uses
//! which:
//!
//! | notifier publishes with | protocol | its per-item cost | used by |
//! |---|---|---|---|
//! | an Acquire RMW of a word the waiter can RMW (a reservation CAS, a claim, a commit count) | `Event::wait_until_closed` / `notify_reserved` | one load | MPSC `Block`/`DropNewest` data and room; double buffer commits |
//! | plain stores, one notifier or one per writer | `handshake::Wake` | one load (a fence only during a sleep episode) | typed SPSC, both directions; fan-in byte queue's doorbell; shared ring commits; byte ring commits (its handshake in the ring's control block, so also between processes); shm MPSC segment commits (a handshake per slot header) |
//! | plain stores, rare or many notifiers | `Event::wait_until` / `notify` | a fence and a load | drops and closes, `DropOldest` stalls, spill, room in the byte ring, the double buffer and the shared ring (one notify per released batch), the shm MPSC doorbell's closes |
//!
//! Everything here works on a word in any memory, heap or a shared mapping.

mod event;
mod futex;
pub(crate) mod handshake;

pub use event::Event;

use std::time::{Duration, Instant};

/// When a wait gives up: `None` waits for ever.
pub type Deadline = Option<Instant>;

/// Turns an optional timeout into a [`Deadline`]. Without a timeout it
/// reads no clock; inlined, that case is one branch.
#[inline]
pub fn deadline_after(timeout: Option<Duration>) -> Deadline {
    timeout.and_then(|t| Instant::now().checked_add(t))
}

/// How long a waiter spins and yields before it sleeps on the futex.
///
/// The defaults suit a machine where producers and consumer may share cores:
/// a short spin catches a hand-off that is already in flight, a few yields let
/// the other side run when cores are oversubscribed, then the waiter sleeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WaitStrategy {
    /// Condition checks with a spin-loop hint between them.
    pub spins: u32,
    /// The spin budget in time (seed 004's `spin_ns`): after `spins`, keep
    /// spinning until this much time has passed since the wait began, then
    /// yield and sleep. Zero (the default) reads no clock. A longer budget
    /// trades CPU for wake-up latency: a waiter that is still spinning when
    /// the other side publishes notices within nanoseconds and costs the
    /// notifier no syscall.
    pub spin_for: Duration,
    /// Condition checks with a `sched_yield` between them.
    pub yields: u32,
    /// Longest single futex sleep before the condition is checked again
    /// (`None`: sleep until woken). Cross-process waiters set it so that they
    /// notice a dead peer.
    pub max_sleep: Option<Duration>,
}

impl WaitStrategy {
    /// Spin, yield, then sleep with the default budgets.
    pub const DEFAULT: Self = Self {
        spins: 128,
        spin_for: Duration::ZERO,
        yields: 8,
        max_sleep: None,
    };

    /// Sleep at once: for waits expected to be long.
    ///
    /// A wait on a ring whose producer publishes with plain stores (the
    /// SPSC rings, the byte queues and rings, shared memory) still checks
    /// its condition 16 times, a spin hint apart, right after it has asked
    /// to be woken: that is part of the wake-up protocol (it catches a
    /// publication already in flight), not a spin budget.
    pub const SLEEP: Self = Self {
        spins: 0,
        spin_for: Duration::ZERO,
        yields: 0,
        max_sleep: None,
    };

    /// The default strategy with a spin budget of `d` before it yields and
    /// sleeps.
    ///
    /// ```
    /// use ringlog::wait::WaitStrategy;
    /// use std::time::Duration;
    ///
    /// let hot = WaitStrategy::spin_for(Duration::from_micros(50));
    /// assert_eq!(hot.spin_for, Duration::from_micros(50));
    /// assert_eq!(hot.yields, WaitStrategy::DEFAULT.yields);
    /// ```
    pub const fn spin_for(d: Duration) -> Self {
        Self {
            spin_for: d,
            ..Self::DEFAULT
        }
    }

    /// Spins until `cond()` or until the budget (`spins`, then `spin_for`
    /// from now) is spent; then yields `yields` times. True if `cond()` held.
    #[inline]
    pub(crate) fn spin_then_yield(&self, mut cond: impl FnMut() -> bool) -> bool {
        for _ in 0..self.spins {
            if cond() {
                return true;
            }
            crate::sync::spin_hint();
        }
        if !self.spin_for.is_zero() && !cfg!(loom) {
            let start = Instant::now();
            loop {
                for _ in 0..64 {
                    if cond() {
                        return true;
                    }
                    crate::sync::spin_hint();
                }
                if start.elapsed() >= self.spin_for {
                    break;
                }
            }
        }
        for _ in 0..self.yields {
            if cond() {
                return true;
            }
            crate::sync::yield_now();
        }
        false
    }
}

impl Default for WaitStrategy {
    fn default() -> Self {
        Self::DEFAULT
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use crate::sync::{Arc, AtomicBool, Ordering};

    #[test]
    fn wait_returns_at_once_when_condition_holds() {
        let ev = Event::new();
        assert!(ev.wait_until(&WaitStrategy::SLEEP, None, || true));
    }

    #[test]
    fn wait_times_out() {
        let ev = Event::new();
        let dl = deadline_after(Some(Duration::from_millis(20)));
        let start = Instant::now();
        assert!(!ev.wait_until(&WaitStrategy::SLEEP, dl, || false));
        assert!(start.elapsed() >= Duration::from_millis(20));
    }

    /// Within its spin budget a waiter sees a change that nobody notifies:
    /// it is still spinning, not asleep on the futex.
    #[test]
    #[cfg_attr(miri, ignore)]
    fn spin_budget_sees_an_unnotified_change() {
        let ev = Event::new();
        let flag = Arc::new(AtomicBool::new(false));
        let setter = {
            let flag = flag.clone();
            std::thread::spawn(move || {
                std::thread::sleep(Duration::from_millis(2));
                flag.store(true, Ordering::Release); // and no notify
            })
        };
        let strategy = WaitStrategy {
            spin_for: Duration::from_secs(5),
            ..WaitStrategy::SLEEP
        };
        let dl = deadline_after(Some(Duration::from_secs(20)));
        assert!(ev.wait_until(&strategy, dl, || flag.load(Ordering::Acquire)));
        setter.join().unwrap();
    }

    #[test]
    fn sleeper_is_woken() {
        let ev = Arc::new(Event::new());
        let flag = Arc::new(AtomicBool::new(false));
        let t = {
            let (ev, flag) = (ev.clone(), flag.clone());
            std::thread::spawn(move || {
                ev.wait_until(&WaitStrategy::SLEEP, None, || flag.load(Ordering::Acquire))
            })
        };
        std::thread::sleep(Duration::from_millis(20));
        flag.store(true, Ordering::Release);
        ev.notify();
        assert!(t.join().unwrap());
    }
}
