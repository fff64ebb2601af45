//! Wakers of pending futures, woken after the same publications that
//! notify the futex [`Event`](crate::wait::Event)s.
//!
//! The protocol is the `Event`'s: a future registers its waker and bumps
//! `waiting`, then a SeqCst fence, then (for the fence-free notifiers) the
//! closing RMW of `Event::wait_until_closed`, then re-checks its condition.
//! A notifier publishes, then either a SeqCst fence (the one at the start of
//! `Event::notify`) or nothing after an Acquire reservation RMW
//! (`Event::notify_reserved`), then loads `waiting`. Either the future sees
//! the publication (or an in-flight reservation, and polls again), or the
//! notifier sees the waker.

use super::Mutex;
use crate::sync::{fence, AtomicUsize, Ordering};
use std::task::Waker;

/// Registered wakers, keyed by a per-future id.
#[derive(Debug)]
pub(crate) struct WakerSet {
    /// How many wakers are registered; a notifier skips the lock at zero.
    waiting: AtomicUsize,
    list: Mutex<Vec<(u64, Waker)>>,
    next_id: AtomicUsize,
}

impl WakerSet {
    pub(crate) fn new() -> Self {
        Self {
            waiting: AtomicUsize::new(0),
            list: Mutex::new(Vec::new()),
            next_id: AtomicUsize::new(0),
        }
    }

    /// Registers (or refreshes) the waker of the future with id `*key`,
    /// assigning an id on first use. The caller must re-check its condition
    /// afterwards.
    pub(crate) fn register(&self, key: &mut Option<u64>, waker: &Waker) {
        let id = *key.get_or_insert_with(|| {
            // Relaxed: ids only need to be unique.
            self.next_id.fetch_add(1, Ordering::Relaxed) as u64
        });
        {
            let mut list = self.list.lock().unwrap_or_else(|e| e.into_inner());
            match list.iter_mut().find(|(k, _)| *k == id) {
                Some((_, w)) => w.clone_from(waker),
                None => list.push((id, waker.clone())),
            }
            // Relaxed: ordered before the caller's re-check by the fence below.
            self.waiting.store(list.len(), Ordering::Relaxed);
        }
        // SeqCst fence: orders the `waiting` store before the caller's
        // re-check; pairs with the fence in `Event::notify` (module docs).
        // Callers woken by fence-free notifiers close with an RMW next.
        fence(Ordering::SeqCst);
    }

    /// Removes the waker of a future that is done or dropped.
    pub(crate) fn unregister(&self, key: Option<u64>) {
        let Some(id) = key else { return };
        let mut list = self.list.lock().unwrap_or_else(|e| e.into_inner());
        list.retain(|(k, _)| *k != id);
        // Relaxed: a stale non-zero only costs a notifier a lock.
        self.waiting.store(list.len(), Ordering::Relaxed);
    }

    /// Wakes every registered future. Call right after `Event::notify` or
    /// `Event::notify_reserved`, whose ordering covers this load too.
    #[inline]
    pub(crate) fn wake_all(&self) {
        // Relaxed: ordered after the publication by the fence in
        // `Event::notify`, or after the registration by the closing RMW that
        // the caller's reservation read (module docs).
        if self.waiting.load(Ordering::Relaxed) != 0 {
            self.wake_slow();
        }
    }

    #[cold]
    fn wake_slow(&self) {
        let woken = {
            let mut list = self.list.lock().unwrap_or_else(|e| e.into_inner());
            // Relaxed: see `unregister`.
            self.waiting.store(0, Ordering::Relaxed);
            std::mem::take(&mut *list)
        };
        for (_, w) in woken {
            w.wake();
        }
    }
}
