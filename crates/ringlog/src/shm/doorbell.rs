//! The MPSC doorbell (seed 004): one [`Event`] all producers ring and the
//! consumer sleeps on.
//!
//! A segment's producers do not pay the event's fence on every commit: each
//! slot's header holds a handshake with its producer (`wait::handshake`,
//! [`SlotBells`]), so a commit costs one load of that line, and the fence
//! (and, for the first, a futex wake) only while the consumer is in a sleep
//! episode. The handshake's argument is the one of `wait/handshake.rs`; its
//! loom models are the fan-in queue's (the same code, several notifiers)
//! and the byte ring's. What follows is the fenced protocol underneath,
//! which [`Doorbell::ring`] still is, for closes and for callers of the
//! type on its own.
//!
//! Protocol, per the event's Dekker handshake (see `wait/event.rs`):
//!
//! ```text
//! producer i                          consumer
//! commit to ring i (head, Release)    announce sleeping, fence(SeqCst)
//! ring(): fence(SeqCst),              re-check every ring's head
//!   wake if a sleeper announced       sleep on the futex word
//! ```
//!
//! Either the consumer's re-check sees the commit, or the producer sees the
//! announced sleeper and wakes it: with any number of producers, no wake-up
//! is lost (`tests/loom_shm.rs` checks it with several producers). The
//! producer's cost when nobody sleeps is one fence and one load.
//!
//! It lives in the segment, so it is `repr(C)` of atomics only; a garbled
//! doorbell (hostile peer) causes spurious wakes or sleeps bounded by the
//! consumer's maximum sleep, never a hang.

use crate::region::Region;
use crate::ring::Consumer;
use crate::wait::{Deadline, Event, WaitStrategy};

/// Producers ring it after each commit; the consumer waits on it until any
/// ring holds data.
#[derive(Debug, Default)]
#[repr(C)]
pub struct Doorbell {
    event: Event,
}

impl Doorbell {
    /// A doorbell nobody waits on.
    pub fn new() -> Self {
        Self {
            event: Event::new(),
        }
    }

    /// Call after every commit (and after closing a ring): wakes the
    /// consumer if it announced it sleeps.
    #[inline]
    pub fn ring(&self) {
        self.event.notify();
    }

    /// Waits until `ready()` is true or the deadline passes; `ready` is
    /// re-checked after the consumer announced it sleeps. Returns its last
    /// value.
    pub fn wait_until(
        &self,
        strategy: &WaitStrategy,
        deadline: Deadline,
        ready: impl FnMut() -> bool,
    ) -> bool {
        self.event.wait_until(strategy, deadline, ready)
    }

    /// Waits until any of `rings` holds committed bytes or the deadline
    /// passes. (A closed ring does not count: an empty closed ring would
    /// turn the wait into a spin.)
    pub fn wait_any<'a, R: Region + 'a>(
        &self,
        strategy: &WaitStrategy,
        deadline: Deadline,
        rings: impl Iterator<Item = &'a Consumer<R>> + Clone,
    ) -> bool {
        self.wait_until(strategy, deadline, || {
            rings.clone().any(|c| c.available() > 0)
        })
    }
}

/// The doorbell of a segment, with its producers' handshakes.
#[cfg(not(loom))]
pub(crate) mod segment {
    use super::super::attached::Attached;
    use crate::region::Region;
    use crate::ring::Consumer;
    use crate::wait::handshake::{Handshake, Handshakes, Notifier, Waiter, WakeRef};
    use crate::wait::{Deadline, WaitStrategy};

    /// The handshakes of a segment's doorbell: slot `i`'s is in slot `i`'s
    /// header.
    #[derive(Debug, Clone, Copy)]
    pub(crate) struct SlotBells<'a>(pub(crate) &'a Attached);

    impl<'a> Handshakes<'a> for SlotBells<'a> {
        #[inline]
        fn count(&self) -> usize {
            self.0.geometry().slots
        }

        #[inline]
        fn at(&self, i: usize) -> &'a Handshake {
            &self.0.slot(i).bell
        }
    }

    /// A segment's doorbell with its producers' handshakes.
    pub(crate) fn bells(att: &Attached) -> WakeRef<'_, SlotBells<'_>> {
        WakeRef::new(&att.doorbell().event, SlotBells(att))
    }

    /// The producer of slot `slot`'s side of the doorbell's handshake.
    pub(crate) fn bell_notifier(slot: usize) -> Notifier {
        Notifier::new(slot)
    }

    /// A consumer's side, numbering its episodes on from the last one a
    /// consumer of the segment started.
    pub(crate) fn bell_waiter(att: &Attached) -> Waiter {
        Waiter::continuing(&att.slot(0).bell)
    }

    /// Waits, in one episode of the handshake, until any of `rings` holds
    /// committed bytes or the deadline passes (as [`Doorbell::wait_any`]).
    pub(crate) fn wait_any_bell<'a, R: Region + 'a>(
        att: &Attached,
        waiter: &mut Waiter,
        strategy: &WaitStrategy,
        deadline: Deadline,
        rings: impl Iterator<Item = &'a Consumer<R>> + Clone,
    ) -> bool {
        bells(att).wait_until(waiter, strategy, deadline, || {
            rings.clone().any(|c| c.available() > 0)
        })
    }
}
