//! A leased slot: one pipeline writer, used for every event of the one
//! thread that holds the slot's lease and, rarely, by `sync` and shutdown
//! from other threads.
//!
//! The owner's side is the hot path, so it takes no lock: it announces
//! itself in `busy` with a plain store, then checks `heavy`, the word the
//! other side locks. Dekker's protocol needs a full fence between each
//! side's store and its load; here the fences are asymmetric, as in the
//! Linux `membarrier(2)` documentation and folly's `asymmetricLightBarrier`:
//! the owner's is a compiler fence only, and the rare side makes every
//! running thread of the process execute a full barrier, with one
//! `MEMBARRIER_CMD_PRIVATE_EXPEDITED` system call. Either the owner's store
//! of `busy` is ordered before the other side's load of it (the other side
//! waits for the owner to finish), or the owner's load of `heavy` comes
//! after the other side's store (the owner steps back and waits). Where
//! `membarrier` is missing (other systems, Miri, a kernel or sandbox that
//! refuses it) both fences are `SeqCst` fences, which is Dekker's protocol
//! as usual.
//!
//! ```text
//! owner (every event)                  other (sync, shutdown)
//! busy = true                          CAS heavy false -> true (Acquire)
//! light fence (compiler only)          heavy fence (membarrier)
//! if heavy: busy = false, wait, retry  while busy: wait
//! ... use the writer ...               ... use the writer ...
//! busy = false (Release)               heavy = false (Release)
//! ```
//!
//! The owner is the only thread that sets `busy`: a leased slot is only
//! entered through its lease ([`with_lease`](crate::writer::with_lease)),
//! whose `RefCell` borrow also rules out entering it again from inside.

use crossbeam_utils::CachePadded;
use ringlog::pipeline::PipelineWriter;
use std::cell::UnsafeCell;
use std::ops::{Deref, DerefMut};
use std::sync::atomic::{compiler_fence, fence, AtomicBool, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// Whether this process uses the asymmetric fences: decided once, before
/// the first slot is made, since the owner's compiler-only fence is sound
/// only once the process is registered for expedited barriers.
fn asymmetric() -> bool {
    static ON: OnceLock<bool> = OnceLock::new();
    *ON.get_or_init(register)
}

#[cfg(all(target_os = "linux", not(miri)))]
fn register() -> bool {
    use rustix::thread::{membarrier, membarrier_query, MembarrierCommand};
    membarrier_query().contains_command(MembarrierCommand::PrivateExpedited)
        && membarrier(MembarrierCommand::RegisterPrivateExpedited).is_ok()
}

#[cfg(not(all(target_os = "linux", not(miri))))]
fn register() -> bool {
    false
}

/// The owner's fence, between its store of `busy` and its load of `heavy`.
#[inline]
fn light_fence(asymmetric: bool) {
    if asymmetric {
        // The other side's membarrier is the hardware fence; this one only
        // keeps the compiler from moving the load above the store.
        compiler_fence(Ordering::SeqCst);
    } else {
        // SeqCst: pairs with the fence in `heavy_fence` (Dekker).
        fence(Ordering::SeqCst);
    }
}

/// The other side's fence, between its lock of `heavy` and its load of
/// `busy`. `false` if the barrier could not be made (then the owner's
/// state cannot be trusted, and the caller gives up).
fn heavy_fence(asymmetric: bool) -> bool {
    if asymmetric {
        #[cfg(all(target_os = "linux", not(miri)))]
        {
            use rustix::thread::{membarrier, MembarrierCommand};
            return membarrier(MembarrierCommand::PrivateExpedited).is_ok();
        }
    }
    // SeqCst: pairs with the fence in `light_fence` (Dekker).
    fence(Ordering::SeqCst);
    true
}

/// One leased pipeline writer (module docs), on cache lines of its own so
/// that threads on neighbouring slots do not pull each other's words away.
#[derive(Debug)]
pub(crate) struct LeasedSlot(CachePadded<SlotWords>);

#[derive(Debug)]
pub(crate) struct SlotWords {
    /// Set by the owner while it uses the writer.
    busy: AtomicBool,
    /// Set (with a compare-exchange) by a thread other than the owner while
    /// it uses the writer, or waits to; such threads exclude each other
    /// with it.
    heavy: AtomicBool,
    /// The asymmetric fences are in use ([`asymmetric`], read once).
    asymmetric: bool,
    /// `None` once the guard has shut the pipeline down. Touched only
    /// through a [`SlotGuard`].
    writer: UnsafeCell<Option<PipelineWriter>>,
}

// SAFETY: `writer` is only reached through a `SlotGuard`, and the protocol
// of the module docs lets at most one exist at a time: the owner's only
// while `busy` is set and `heavy` was seen clear after it, another
// thread's only while it holds `heavy` and saw `busy` clear after it. Each
// hands the writer over with a Release store that the next holder's
// Acquire load reads, so the slot passes the writer between threads as a
// mutex does; `PipelineWriter` is `Send`.
unsafe impl Sync for SlotWords {}

impl LeasedSlot {
    pub(crate) fn new(w: PipelineWriter) -> Self {
        Self(CachePadded::new(SlotWords {
            busy: AtomicBool::new(false),
            heavy: AtomicBool::new(false),
            asymmetric: asymmetric(),
            writer: UnsafeCell::new(Some(w)),
        }))
    }

    /// The owner's way in, waiting while another thread holds the slot.
    ///
    /// Only the thread holding this slot's lease may call it, and not
    /// while it already holds a guard of it (module docs).
    #[inline]
    pub(crate) fn enter_owner(&self) -> SlotGuard<'_> {
        let s = &*self.0;
        loop {
            // Relaxed: ordered before the load of `heavy` by the fences.
            s.busy.store(true, Ordering::Relaxed);
            light_fence(s.asymmetric);
            // Acquire: pairs with the Release store that cleared `heavy`,
            // so the other thread's use of the writer happens before ours.
            if !s.heavy.load(Ordering::Acquire) {
                return SlotGuard {
                    slot: s,
                    owner: true,
                };
            }
            // Release: our earlier use of the writer happens before the
            // other thread's, which waits for this store.
            s.busy.store(false, Ordering::Release);
            let mut round = 0u32;
            // Relaxed: a hint; the next round re-checks after the fence.
            while s.heavy.load(Ordering::Relaxed) {
                backoff(&mut round);
            }
        }
    }

    /// Another thread's way in (`sync`, shutdown): `None` if `deadline`
    /// passes first, or the barrier fails.
    pub(crate) fn enter_other(&self, deadline: Option<Instant>) -> Option<SlotGuard<'_>> {
        let s = &*self.0;
        let passed = || deadline.is_some_and(|d| Instant::now() >= d);
        // Acquire: pairs with the Release store of the previous holder.
        while s
            .heavy
            .compare_exchange(false, true, Ordering::Acquire, Ordering::Relaxed)
            .is_err()
        {
            if passed() {
                return None;
            }
            std::thread::sleep(Duration::from_micros(200));
        }
        let guard = SlotGuard {
            slot: s,
            owner: false,
        };
        if !heavy_fence(s.asymmetric) {
            return None;
        }
        let mut round = 0u32;
        // Acquire: pairs with the owner's Release store of `busy`, so its
        // use of the writer happens before ours.
        while s.busy.load(Ordering::Acquire) {
            if passed() {
                // Dropping the guard clears `heavy`: the owner goes on.
                return None;
            }
            backoff(&mut round);
        }
        Some(guard)
    }
}

/// Spins briefly, then yields, then sleeps: the other side holds the slot
/// for a few loads (`sync`), or while a blocked append or shutdown ends.
fn backoff(round: &mut u32) {
    match *round {
        0..=63 => std::hint::spin_loop(),
        64..=127 => std::thread::yield_now(),
        _ => std::thread::sleep(Duration::from_micros(50)),
    }
    *round = round.saturating_add(1);
}

/// Exclusive use of a [`LeasedSlot`]'s writer until dropped.
pub(crate) struct SlotGuard<'a> {
    slot: &'a SlotWords,
    /// Entered by the owner (clears `busy` when dropped) or by another
    /// thread (clears `heavy`).
    owner: bool,
}

impl Deref for SlotGuard<'_> {
    type Target = Option<PipelineWriter>;

    fn deref(&self) -> &Self::Target {
        // SAFETY: this guard is the only one of the slot (module docs), so
        // no other reference to the writer exists while it lives.
        unsafe { &*self.slot.writer.get() }
    }
}

impl DerefMut for SlotGuard<'_> {
    fn deref_mut(&mut self) -> &mut Self::Target {
        // SAFETY: as in `deref`, and `&mut self` makes this the only borrow
        // through the guard.
        unsafe { &mut *self.slot.writer.get() }
    }
}

impl Drop for SlotGuard<'_> {
    #[inline]
    fn drop(&mut self) {
        // Release (both): publishes our use of the writer to the next
        // holder; pairs with the Acquire loads in `enter_owner` and
        // `enter_other`.
        if self.owner {
            self.slot.busy.store(false, Ordering::Release);
        } else {
            self.slot.heavy.store(false, Ordering::Release);
        }
    }
}
