//! The MPSC doorbell (seed 004): one [`Event`] all producers ring and the
//! consumer sleeps on.
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
