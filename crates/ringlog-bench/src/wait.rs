//! Busy-wait helper for the peers that have no blocking call (rtrb,
//! `ArrayQueue`, the atomic ping-pong): spin briefly, then yield, so an
//! oversubscribed run degrades instead of burning the other thread's core.

/// Spin-then-yield backoff; reset it after progress.
#[derive(Debug, Default)]
pub struct Backoff {
    step: u32,
}

impl Backoff {
    /// A fresh backoff.
    pub fn new() -> Self {
        Self::default()
    }

    /// Waits a little longer than last time: spin hints first, then
    /// `yield_now`.
    #[inline]
    pub fn snooze(&mut self) {
        if self.step < 64 {
            std::hint::spin_loop();
            self.step += 1;
        } else {
            std::thread::yield_now();
        }
    }

    /// Progress was made: start spinning again.
    #[inline]
    pub fn reset(&mut self) {
        self.step = 0;
    }
}
