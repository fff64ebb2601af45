//! One direction of wake-ups: an [`Event`] plus a handshake that lets the
//! notifying side skip `Event::notify` (a `SeqCst` fence) until the waiting
//! side first asks to sleep.
//!
//! `Event::notify` costs a full fence on every publish, which halves the
//! single-value throughput of a ring whose consumer never sleeps. The fence
//! cannot simply be dropped: without it the notifier's load of "is anybody
//! waiting" may be ordered before its publication, and a waiter that checks
//! in between sleeps through the publication (a lost wake-up). The handshake
//! instead makes the waiter pay, once per ring:
//!
//! ```text
//! waiter (first time it would sleep)        notifier (after every publish)
//! wanted = true                             if armed: event.notify()
//! until acked is seen:                      else if wanted:
//!     sleep at most `poll`, re-check cond       acked = true
//!     (never an unbounded sleep)                armed = true   (sticky)
//! then: event.wait_until(cond), unbounded       event.notify()
//! ```
//!
//! Why no wake-up is lost: before the waiter has seen `acked`, each of its
//! sleeps is bounded and it re-checks its condition after each, so a
//! publication made without a notify is seen after at most one poll. Once it
//! has seen `acked`, it only sleeps through `Event::wait_until`, whose
//! announcement is closed by a `SeqCst` fence `Fw`. Every later publication
//! is followed by a notify, so the `Event` protocol covers it. Every earlier
//! one (made before the notifier armed) is sequenced before the fence `Fa`
//! of the notify that `arm` issues right after storing `acked`: if `Fa`
//! precedes `Fw` in the single order of `SeqCst` fences, the waiter's
//! condition sees the publication; if `Fw` precedes `Fa`, that notify sees
//! the waiter's announcement and wakes it. So all four flag accesses can be
//! Relaxed: no ordering rides on the flags, only on `Event`'s fences. The
//! polling lasts from the waiter's first request until the notifier's next
//! publish; after that the notifier pays the fence on every publish, as
//! `Event` requires.

use crate::sync::{AtomicBool, Ordering};
use crate::wait::{Deadline, Event, WaitStrategy};
use crossbeam_utils::CachePadded;
use std::time::Duration;

/// First bound on a sleep before the handshake completes.
const FIRST_POLL: Duration = Duration::from_micros(50);
/// Largest bound on a sleep before the handshake completes.
const LAST_POLL: Duration = Duration::from_millis(10);

/// A wake-up channel from one side (the notifier) to the other (the waiter).
#[derive(Debug)]
pub(crate) struct Wake {
    event: CachePadded<Event>,
    /// Read by the notifier after every publish until it is armed; written
    /// once by each side, so the line stays shared and cheap to read.
    handshake: CachePadded<Handshake>,
}

#[derive(Debug)]
struct Handshake {
    /// Set by the waiter before it first sleeps.
    wanted: AtomicBool,
    /// Set by the notifier once it saw `wanted`; from then on it notifies
    /// after every publish.
    acked: AtomicBool,
}

impl Wake {
    pub(crate) fn new() -> Self {
        Self {
            event: CachePadded::new(Event::new()),
            handshake: CachePadded::new(Handshake {
                wanted: AtomicBool::new(false),
                acked: AtomicBool::new(false),
            }),
        }
    }

    /// Called by the notifier after each publish. `armed` is the notifier's
    /// private copy of "the waiter asked and I acknowledged".
    #[inline]
    pub(crate) fn notify(&self, armed: &mut bool) {
        if *armed {
            self.event.notify();
        } else if self.handshake.wanted.load(Ordering::Relaxed) {
            // Relaxed: seeing the request late only makes the waiter poll a
            // little longer.
            self.arm(armed);
        }
    }

    #[cold]
    #[inline(never)]
    fn arm(&self, armed: &mut bool) {
        *armed = true;
        self.handshake.acked.store(true, Ordering::Relaxed);
        // This notify is what makes a Relaxed `acked` enough: its fence
        // covers every publication made before we armed (module docs).
        self.event.notify();
    }

    /// Wakes the waiter whatever the handshake state (for rare events such
    /// as a handle being dropped).
    pub(crate) fn notify_always(&self) {
        self.event.notify();
    }

    /// Called by the waiter: waits until `cond()` or the deadline, as
    /// [`Event::wait_until`]. `acked` is the waiter's private copy of "the
    /// notifier acknowledged".
    pub(crate) fn wait_until(
        &self,
        acked: &mut bool,
        strategy: &WaitStrategy,
        deadline: Deadline,
        mut cond: impl FnMut() -> bool,
    ) -> bool {
        // Relaxed: see the module docs; `arm` notifies after its store.
        if !*acked && self.handshake.acked.load(Ordering::Relaxed) {
            *acked = true;
        }
        if *acked {
            return self.event.wait_until(strategy, deadline, cond);
        }
        // Relaxed: a request; correctness never depends on when it is seen.
        self.handshake.wanted.store(true, Ordering::Relaxed);
        let mut step = *strategy;
        let mut poll = FIRST_POLL;
        loop {
            step.max_sleep = Some(strategy.max_sleep.map_or(poll, |m| m.min(poll)));
            // Under loom a timed sleep returns at once; let the condition
            // end the loop there rather than the wall clock.
            let step_deadline = if cfg!(loom) {
                deadline
            } else {
                let step_end = crate::wait::deadline_after(Some(poll * 8));
                match (deadline, step_end) {
                    (Some(d), Some(s)) => Some(d.min(s)),
                    (d, s) => d.or(s),
                }
            };
            let acked_flag = &self.handshake.acked;
            let woke = self.event.wait_until(&step, step_deadline, || {
                cond() || acked_flag.load(Ordering::Relaxed)
            });
            if cond() {
                return true;
            }
            if woke && self.handshake.acked.load(Ordering::Relaxed) {
                // The notifier has armed: from now on sleep without a bound.
                *acked = true;
                return self.event.wait_until(strategy, deadline, cond);
            }
            if deadline.is_some_and(|d| std::time::Instant::now() >= d) {
                return false;
            }
            step.spins = 0;
            step.yields = 0;
            poll = (poll * 4).min(LAST_POLL);
        }
    }
}
