//! Pinned and unpinned runs, and the CPU time a run used.
//!
//! A throughput case runs twice: unpinned (the scheduler places the
//! threads; on a loaded or small machine producer and consumer may share a
//! core, where no cache line moves and per-item costs hide) and pinned (the
//! consumer on the first core, producers on the others, so every hand-off
//! crosses cores). Scenarios spawn their producer threads with [`spawn`],
//! which pins the new thread when the run is pinned.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Mutex;
use std::thread;
use std::time::Duration;

/// Whether the run in progress is pinned.
static PINNED: AtomicBool = AtomicBool::new(false);
/// The next producer's index among the cores other than the consumer's.
static NEXT: AtomicUsize = AtomicUsize::new(0);
/// Pinned runs never overlap (the bench runs one case at a time; tests may
/// not): each holds this.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());
/// The cores of the pinned run in progress, taken before its consumer was
/// pinned (a pinned thread sees only its own core).
static RUN_CORES: Mutex<Vec<core_affinity::CoreId>> = Mutex::new(Vec::new());

/// The cores a pinned run uses: at least two, or none (no pinned run).
/// Asked from a pinned thread, the answer is its own core only: none.
pub fn cores() -> Vec<core_affinity::CoreId> {
    match core_affinity::get_core_ids() {
        Some(ids) if ids.len() >= 2 => ids,
        _ => Vec::new(),
    }
}

/// Runs `f` pinned (on a thread bound to the first core; producers it
/// spawns with [`spawn`] go to the other cores in turn) or, if `pinned` is
/// false, on the calling thread as it is. `None` if pinning is impossible
/// here (fewer than two cores, or the OS refused).
pub fn run<R: Send>(pinned: bool, f: impl FnOnce() -> R + Send) -> Option<R> {
    if !pinned {
        return Some(f());
    }
    let cores = cores();
    let first = *cores.first()?;
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let mut run_cores = RUN_CORES.lock().unwrap_or_else(|e| e.into_inner());
    *run_cores = cores;
    drop(run_cores);
    NEXT.store(0, Ordering::Relaxed);
    PINNED.store(true, Ordering::Relaxed);
    let r = thread::scope(|s| {
        s.spawn(|| core_affinity::set_for_current(first).then(f))
            .join()
    });
    PINNED.store(false, Ordering::Relaxed);
    match r {
        Ok(r) => r,
        Err(panic) => std::panic::resume_unwind(panic),
    }
}

/// `thread::spawn`, pinning the new thread to the next producer core when
/// the run in progress is pinned.
pub fn spawn<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> thread::JoinHandle<T> {
    let core = if PINNED.load(Ordering::Relaxed) {
        let cores = RUN_CORES.lock().unwrap_or_else(|e| e.into_inner()).clone();
        let i = NEXT.fetch_add(1, Ordering::Relaxed);
        // The consumer has the first core; producers share the rest.
        (cores.len() >= 2).then(|| cores[1 + i % (cores.len() - 1)])
    } else {
        None
    };
    thread::spawn(move || {
        if let Some(c) = core {
            // A refused pin leaves the thread where the OS put it; the
            // consumer's pin (checked in `run`) decides whether the run
            // counts as pinned.
            let _ = core_affinity::set_for_current(c);
        }
        f()
    })
}

/// CPU time (user + system) this process has used so far, all threads,
/// with that of the child processes it has waited for (the `ringlog`
/// processes a case runs).
pub fn cpu_time() -> Duration {
    usage(libc::RUSAGE_SELF) + usage(libc::RUSAGE_CHILDREN)
}

fn usage(who: libc::c_int) -> Duration {
    let mut u = std::mem::MaybeUninit::<libc::rusage>::zeroed();
    // SAFETY: `u` is a valid, writable rusage; getrusage fills it and only
    // fails for an invalid `who`, which RUSAGE_SELF and RUSAGE_CHILDREN
    // are not.
    let rc = unsafe { libc::getrusage(who, u.as_mut_ptr()) };
    if rc != 0 {
        return Duration::ZERO;
    }
    // SAFETY: zero-initialised and, on success, filled by getrusage.
    let u = unsafe { u.assume_init() };
    let tv = |t: libc::timeval| {
        Duration::from_secs(t.tv_sec.max(0) as u64) + Duration::from_micros(t.tv_usec.max(0) as u64)
    };
    tv(u.ru_utime) + tv(u.ru_stime)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The CPU the calling thread runs on now.
    fn cpu_now() -> i32 {
        // SAFETY: sched_getcpu takes no arguments and only reads state.
        unsafe { libc::sched_getcpu() }
    }

    #[test]
    fn pinned_run_puts_consumer_and_producers_on_different_cores() {
        let cores = cores();
        if cores.is_empty() {
            // One core: no pinned run exists, which `run` reports.
            assert!(run(true, || ()).is_none());
            return;
        }
        let (consumer, producers) = run(true, || {
            let consumer = cpu_now();
            let producers: Vec<i32> = (0..3)
                .map(|_| spawn(cpu_now))
                .collect::<Vec<_>>()
                .into_iter()
                .map(|h| h.join().unwrap())
                .collect();
            (consumer, producers)
        })
        .expect("two cores can be pinned");
        assert_eq!(consumer as usize, cores[0].id);
        for p in producers {
            assert_ne!(p, consumer, "a producer shares the consumer's core");
        }
        // Unpinned: threads are left alone (and not pinned afterwards).
        let free = run(false, || {
            spawn(|| core_affinity::get_core_ids().map(|c| c.len()))
        })
        .unwrap()
        .join()
        .unwrap();
        assert_eq!(free, Some(cores.len()));
    }

    #[test]
    fn cpu_time_counts_this_process_work() {
        let before = cpu_time();
        let mut x = 0u64;
        let start = std::time::Instant::now();
        while start.elapsed() < Duration::from_millis(30) {
            x = std::hint::black_box(x.wrapping_add(1));
        }
        assert!(cpu_time() > before, "30 ms of spinning used no CPU time");
    }
}
