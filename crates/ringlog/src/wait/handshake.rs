//! One direction of wake-ups: an [`Event`] plus a handshake that lets the
//! notifying side skip `Event::notify` (a `SeqCst` fence) except while the
//! waiting side is in a sleep episode.
//!
//! The fence of `Event::notify` cannot simply be dropped: without it the
//! notifier's load of "is anybody waiting" may be ordered before its
//! publication, and a waiter that checks in between sleeps through the
//! publication (a lost wake-up). The handshake makes the notifier pay it
//! only from the moment the waiter asks (it has spun and yielded and is about
//! to sleep) until the waiter says that sleep episode is over; at every
//! other time a publish costs the notifier one load of a line nobody writes.
//!
//! The waiter numbers its episodes `e = 1, 2, …`; three words carry them:
//!
//! ```text
//! waiter, episode e                         notifier, after every publish
//! (after its spins and yields)              if armed for e:
//! wanted = e                                    event.notify()
//! until acked == e is seen:                     if done == e (Acquire): disarm
//!     sleep at most `poll`, re-check cond   else if wanted != last acked:
//!     (never an unbounded sleep)                e = wanted; acked = e; armed for e
//! then: event.wait_until(cond), unbounded       event.notify()
//! done = e (Release), whatever ended it         (and disarm if done == e)
//! ```
//!
//! Why no wake-up is lost. The waiter sleeps without a bound only in
//! `Event::wait_until`, whose announcement is closed by a `SeqCst` fence
//! `Fw`, and only in an episode `e` after it has read `acked == e`; every
//! other sleep is bounded and followed by a re-check of the condition, so a
//! publication made without a notify is seen after at most one poll. Take a
//! publication `P` and an unbounded sleep of episode `e`:
//!
//! - `P` before the notifier armed for `e`: `P` is sequenced before the
//!   fence `Fa` of the notify that arming issues right after storing
//!   `acked = e`. If `Fa` precedes `Fw` in the single order of `SeqCst`
//!   fences, the waiter's condition sees `P`; if `Fw` precedes `Fa`, that
//!   notify sees the waiter's announcement and wakes it.
//! - `P` while armed for `e`: it is followed by a notify, and the `Event`
//!   protocol covers it.
//! - `P` after the notifier saw `done == e`: the waiter stores `done = e`
//!   (Release) only after the last wait of episode `e` returned, and the
//!   notifier loads it with Acquire, so the whole episode happens before
//!   `P`: no sleep of episode `e` is left to miss it. Later episodes need
//!   `acked` to reach their own number, which only a later arming stores.
//!
//! Several notifiers (the fan-in queue's writers, one ring each; the shared
//! ring's writers, one ring for all) get one handshake each,
//! `wanted_i`/`acked_i`/`done_i`, and share the `Event`. The
//! waiter's episode stores `wanted_i = e` for every `i`, and sleeps without
//! a bound only once *every* notifier has acked `e` (or retired: a notifier
//! that is gone stores `RETIRED` and then notifies with a fence, so its last
//! publications are covered by the `Event` protocol and it never publishes
//! again). The argument above then holds for each notifier on its own: for
//! notifier `i`, the unbounded sleep comes after the waiter read
//! `acked_i == e`. A notifier that stays idle never acks, so while one is
//! idle the waiter's sleeps stay bounded.
//!
//! A publication goes without a notify only if its notifier read `wanted`
//! before the waiter's store of it became visible, which can only happen
//! at the very start of an episode, and then the publication itself was
//! still in the notifier's store buffer when the waiter last checked. So
//! right after storing `wanted` the waiter fences (its own store is then
//! visible) and re-checks the condition for `SETTLE_SPINS` spin hints, a
//! few microseconds, longer than a store buffer takes to drain: the
//! publication is seen there, without a sleep. The bounded sleeps remain
//! as the argument's safety net for a store that stays invisible longer
//! than that, which no hardware we know of does.
//!
//! Their bounds start at `FIRST_POLL` (10 ms) and grow fourfold to
//! `LAST_POLL` (100 ms). Any publication after the start of the episode
//! arms and wakes the waiter at once, so the bounds cost no latency; they
//! set the cost of waiting on a silent notifier (about ten wake-ups a
//! second, measured by `ringlog-bench latency --only idle`). They are
//! long on purpose: a futex sleep whose timeout falls before the kernel's
//! next tick makes it reprogram the timer on every sleep, which in a VM
//! is an exit to the hypervisor. With a first bound of 50 µs, the cold
//! round trip of `ringlog-bench ipc` (every message a futex wake-up) went
//! from 12.1–13.7 µs to 15.5 µs; with bounds past the tick it is the
//! fenced `Event`'s again.
//!
//! So `wanted` and `acked` can be Relaxed (no ordering rides on them, only on
//! `Event`'s fences); `done` is the one flag whose ordering matters. Arming
//! thus lasts one sleep episode: a ring whose sides slept once at start-up
//! goes back to plain loads as soon as they are busy again. An episode costs
//! the waiter two stores and, until the notifier's next publish, bounded
//! sleeps (the notifier's arming notify wakes it at once).

use super::{Deadline, Event, WaitStrategy};
use crate::sync::{fence, AtomicU64, Ordering};
use crossbeam_utils::CachePadded;
use std::time::Duration;

/// First bound on a sleep before the notifier has armed: past the
/// kernel's tick (module docs).
const FIRST_POLL: Duration = Duration::from_millis(10);
/// Largest bound on a sleep before the notifier has armed (module docs:
/// it costs no latency, only idle wake-ups).
const LAST_POLL: Duration = Duration::from_millis(100);
/// Condition checks, a spin hint apart, right after an episode starts: they
/// catch a publication whose notifier read `wanted` before the waiter's
/// store of it was visible (module docs). One under loom, which explores
/// every order and has no store buffers to drain.
const SETTLE_SPINS: u32 = if cfg!(loom) { 1 } else { 16 };

/// A wake-up channel from one side (the notifier) to the other (the waiter).
#[derive(Debug)]
pub(crate) struct Wake {
    event: CachePadded<Event>,
    /// Notifier 0's handshake, inline so that a single notifier (the SPSC
    /// rings) reaches it without a pointer load. Read by its notifier after
    /// every publish while not armed; written twice per sleep episode by the
    /// waiter and once by the notifier, so the line stays shared and cheap
    /// to read.
    first: CachePadded<Handshake>,
    /// Notifiers 1 and up, likewise.
    rest: Box<[CachePadded<Handshake>]>,
}

/// The same channel borrowed from wherever its words live: a [`Wake`], the
/// control block of a ring, or the slots of a shared-memory segment (an
/// [`Event`] and [`Handshake`]s there, `repr(C)` atomics only).
#[derive(Debug, Clone, Copy)]
pub(crate) struct WakeRef<'a, H = Inline<'a>> {
    event: &'a Event,
    handshakes: H,
}

/// Where a channel's handshakes are: notifier `i`'s is `at(i)`, for every
/// `i < count()`.
pub(crate) trait Handshakes<'a>: Copy {
    /// How many notifiers there are (at least one).
    fn count(&self) -> usize;
    /// Notifier `i`'s handshake; `i < count()`.
    fn at(&self, i: usize) -> &'a Handshake;
}

/// The handshakes of a [`Wake`], or a single one.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Inline<'a> {
    first: &'a Handshake,
    rest: &'a [CachePadded<Handshake>],
}

impl<'a> Handshakes<'a> for Inline<'a> {
    #[inline]
    fn count(&self) -> usize {
        1 + self.rest.len()
    }

    #[inline]
    fn at(&self, i: usize) -> &'a Handshake {
        match i {
            0 => self.first,
            i => &self.rest[i - 1],
        }
    }
}

/// `acked` of a notifier that is gone: it counts as acked for every episode.
const RETIRED: u64 = u64::MAX;

/// One notifier's three words. `repr(C)` and only atomics, so that it can
/// live in shared memory, where a peer may write anything into it: any
/// value only makes a waiter sleep in bounded steps longer or shorter, and
/// waiters there bound every sleep anyway (`WaitStrategy::max_sleep`).
#[derive(Debug)]
#[repr(C)]
pub(crate) struct Handshake {
    /// The waiter's current (or last) sleep episode.
    wanted: AtomicU64,
    /// The episode the notifier armed for.
    acked: AtomicU64,
    /// The last episode the waiter finished.
    done: AtomicU64,
}

impl Handshake {
    /// A handshake no episode has used.
    pub(crate) fn new() -> Self {
        Self {
            wanted: AtomicU64::new(0),
            acked: AtomicU64::new(0),
            done: AtomicU64::new(0),
        }
    }

    /// Marks a handshake whose notifier does not exist yet (a free slot of
    /// a shared segment, at creation) as retired, so that it does not hold
    /// the waiter's sleeps to a bound. A notifier that arrives later starts
    /// with nothing acked, so its first publish in an episode arms and
    /// wakes the waiter.
    pub(crate) fn mark_retired(&self) {
        // Relaxed: published with the segment's header (Release).
        self.acked.store(RETIRED, Ordering::Relaxed);
    }
}

/// The notifier's private side of the handshake.
#[derive(Debug, Default)]
pub(crate) struct Notifier {
    /// Which handshake of the [`Wake`] is ours (0 for the only notifier).
    index: usize,
    /// Notifying after every publish, for episode `acked`.
    armed: bool,
    /// The last episode armed for (0: none yet).
    acked: u64,
    /// loom only: disarm right after arming, without waiting for the
    /// episode to end, so a model can show that waiting is needed.
    #[cfg(loom)]
    pub(crate) disarm_early: bool,
}

/// The waiter's private side of the handshake.
#[derive(Debug, Default)]
pub(crate) struct Waiter {
    /// The last episode started (0: none yet).
    episode: u64,
}

impl Waiter {
    /// A waiter that numbers its episodes on from the last one `h` saw: for
    /// a waiter that attaches to words an earlier one used (a ring in
    /// shared memory, reopened), so that no stale `acked` can equal a new
    /// episode's number.
    pub(crate) fn continuing(h: &Handshake) -> Self {
        Self {
            // Relaxed: only a starting number; see `Waiter`'s use of it.
            episode: h.wanted.load(Ordering::Relaxed),
        }
    }
}

impl Notifier {
    /// The private side of notifier `index` of a [`Wake::with_notifiers`].
    pub(crate) fn new(index: usize) -> Self {
        Self {
            index,
            ..Self::default()
        }
    }
}

impl Wake {
    /// A wake-up channel with one notifier.
    pub(crate) fn new() -> Self {
        Self::with_notifiers(1)
    }

    /// A wake-up channel with `n` notifiers (at least one), each with its
    /// own [`Notifier::new`] index.
    pub(crate) fn with_notifiers(n: usize) -> Self {
        let new = || CachePadded::new(Handshake::new());
        Self {
            event: CachePadded::new(Event::new()),
            first: new(),
            rest: (1..n).map(|_| new()).collect(),
        }
    }

    /// The channel's words, borrowed.
    #[inline]
    pub(crate) fn view(&self) -> WakeRef<'_> {
        WakeRef {
            event: &self.event,
            handshakes: Inline {
                first: &self.first,
                rest: &self.rest,
            },
        }
    }

    /// [`WakeRef::notify`], with its common case (not armed, nothing
    /// wanted) checked here: the view that the slow path builds would be
    /// spilled to the stack on every publish.
    #[inline]
    pub(crate) fn notify(&self, n: &mut Notifier) {
        let h = Inline {
            first: &self.first,
            rest: &self.rest,
        }
        .at(n.index);
        // Relaxed: as in `WakeRef::notify`.
        if n.armed || h.wanted.load(Ordering::Relaxed) != n.acked {
            self.notify_slow(n);
        }
    }

    #[cold]
    #[inline(never)]
    fn notify_slow(&self, n: &mut Notifier) {
        self.view().notify(n);
    }

    /// [`WakeRef::notify_always`].
    pub(crate) fn notify_always(&self) {
        self.view().notify_always();
    }

    /// [`WakeRef::retire`].
    pub(crate) fn retire(&self, n: &mut Notifier) {
        self.view().retire(n);
    }

    /// [`WakeRef::wait_until`].
    pub(crate) fn wait_until(
        &self,
        w: &mut Waiter,
        strategy: &WaitStrategy,
        deadline: Deadline,
        cond: impl FnMut() -> bool,
    ) -> bool {
        self.view().wait_until(w, strategy, deadline, cond)
    }
}

impl<'a> WakeRef<'a> {
    /// A channel with one notifier, over words that live elsewhere.
    pub(crate) fn single(event: &'a Event, handshake: &'a Handshake) -> Self {
        Self {
            event,
            handshakes: Inline {
                first: handshake,
                rest: &[],
            },
        }
    }
}

impl<'a, H: Handshakes<'a>> WakeRef<'a, H> {
    /// A channel over `event` and the handshakes `handshakes` names, which
    /// live elsewhere (the slots of a shared-memory segment).
    pub(crate) fn new(event: &'a Event, handshakes: H) -> Self {
        Self { event, handshakes }
    }

    #[inline]
    fn handshake(&self, n: &Notifier) -> &'a Handshake {
        self.handshakes.at(n.index)
    }

    /// Every notifier's handshake.
    fn handshakes(&self) -> impl Iterator<Item = &'a Handshake> {
        let h = self.handshakes;
        (0..h.count()).map(move |i| h.at(i))
    }

    /// Called by the notifier after each publish.
    #[inline]
    pub(crate) fn notify(&self, n: &mut Notifier) {
        if n.armed {
            self.notify_armed(n);
        } else if self.handshake(n).wanted.load(Ordering::Relaxed) != n.acked {
            // Relaxed: seeing the request late only makes the waiter poll a
            // little longer.
            self.arm(n);
        }
    }

    #[cold]
    #[inline(never)]
    fn notify_armed(&self, n: &mut Notifier) {
        self.event.notify();
        self.disarm_if_done(n);
    }

    #[cold]
    #[inline(never)]
    fn arm(&self, n: &mut Notifier) {
        let h = self.handshake(n);
        // Relaxed: see `notify`.
        let e = h.wanted.load(Ordering::Relaxed);
        n.acked = e;
        n.armed = true;
        // Relaxed: the notify below is what makes it enough: its fence
        // covers every publication made before we armed (module docs).
        h.acked.store(e, Ordering::Relaxed);
        self.event.notify();
        #[cfg(loom)]
        if n.disarm_early {
            n.armed = false;
            return;
        }
        self.disarm_if_done(n);
    }

    #[inline]
    fn disarm_if_done(&self, n: &mut Notifier) {
        // Acquire: pairs with the Release store of `done` at the end of the
        // waiter's episode, so the whole episode happens before our next
        // publications (module docs).
        if self.handshake(n).done.load(Ordering::Acquire) == n.acked {
            n.armed = false;
        }
    }

    /// Wakes the waiter whatever the handshake state (for rare events such
    /// as a handle being dropped).
    pub(crate) fn notify_always(&self) {
        self.event.notify();
    }

    /// The notifier `n` is gone and publishes nothing more: it no longer
    /// holds the waiter's sleeps to a bound. Wakes the waiter (with the
    /// fence that covers `n`'s last publications).
    pub(crate) fn retire(&self, n: &mut Notifier) {
        n.armed = false;
        // Relaxed: the notify's fence orders it, as for `arm`.
        self.handshake(n).acked.store(RETIRED, Ordering::Relaxed);
        self.event.notify();
    }

    /// Whether every notifier has acked episode `e` (or retired).
    fn all_acked(&self, e: u64) -> bool {
        // Relaxed: see the module docs; `arm` notifies after its store.
        self.handshakes().all(|h| {
            let a = h.acked.load(Ordering::Relaxed);
            a == e || a == RETIRED
        })
    }

    /// Called by the waiter: waits until `cond()` or the deadline, as
    /// [`Event::wait_until`]: spins and yields as `strategy` says, then
    /// sleeps in one episode of the handshake.
    pub(crate) fn wait_until(
        &self,
        w: &mut Waiter,
        strategy: &WaitStrategy,
        deadline: Deadline,
        mut cond: impl FnMut() -> bool,
    ) -> bool {
        if strategy.spin_then_yield(&mut cond) {
            return true;
        }
        let sleep = WaitStrategy {
            max_sleep: strategy.max_sleep,
            ..WaitStrategy::SLEEP
        };
        let e = w.episode.wrapping_add(1);
        w.episode = e;
        for h in self.handshakes() {
            // Relaxed: a request; correctness never depends on when it is
            // seen.
            h.wanted.store(e, Ordering::Relaxed);
        }
        // SeqCst: our `wanted` stores are visible before the checks below,
        // so only a publication already in flight when they became visible
        // can go without a notify, and the checks catch it (module docs).
        fence(Ordering::SeqCst);
        let mut woke = false;
        for _ in 0..SETTLE_SPINS {
            if cond() {
                woke = true;
                break;
            }
            crate::sync::spin_hint();
        }
        if !woke {
            woke = self.episode(e, &sleep, deadline, &mut cond);
        }
        for h in self.handshakes() {
            // Release: everything this episode did (its last condition
            // checks) happens before a notifier that sees it stops
            // notifying; pairs with the Acquire load in `disarm_if_done`.
            h.done.store(e, Ordering::Release);
        }
        woke
    }

    /// The sleeps of episode `e`: bounded until the notifier armed for it,
    /// then unbounded.
    fn episode(
        &self,
        e: u64,
        strategy: &WaitStrategy,
        deadline: Deadline,
        cond: &mut impl FnMut() -> bool,
    ) -> bool {
        let mut step = *strategy;
        let mut poll = FIRST_POLL;
        loop {
            if self.all_acked(e) {
                return self.event.wait_until(strategy, deadline, &mut *cond);
            }
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
            self.event
                .wait_until(&step, step_deadline, || cond() || self.all_acked(e));
            if cond() {
                return true;
            }
            if deadline.is_some_and(|d| std::time::Instant::now() >= d) {
                return false;
            }
            poll = (poll * 4).min(LAST_POLL);
        }
    }
}
