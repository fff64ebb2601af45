//! Record timestamps and checksums, split between the two sides of the
//! pipeline so that a writer pays only for what must happen at the event.
//!
//! A writer of a small record (payload up to [`SEAL_IN_READER_MAX`] bytes)
//! reads a tick counter ([`Ticks::now`]) and frames the record in queue
//! memory *unsealed*: the timestamp field holds the raw ticks, the CRC field
//! is zero and the flags field carries [`UNSEALED`] ([`write_unsealed`]).
//! The reader, which walks every record of a batch anyway on its way to the
//! kernel, turns the ticks into wall-clock nanoseconds, clears the flag and
//! computes the CRC-32C ([`TickClock::seal`]) before the batch is appended.
//! A larger record is sealed by its writer as before (wall clock, CRC), and
//! the reader leaves it alone. The journal only ever holds sealed frames.
//!
//! Why the split, measured on a 2-core x86-64 VM: for a 64-byte record,
//! `SystemTime::now` (about 30 ns) and the CRC of its frame (about 16 ns)
//! were most of `PipelineWriter::append`, against about 10 ns for `rdtsc`.
//! For records of kilobytes the CRC is the larger cost, and done by the
//! reader it lengthens the one serial path of the pipeline: in interleaved
//! runs of `ringlog-bench persist --only "same rounds"` (10 to 10,000-byte
//! records), `ringlog run`'s pipeline reached 0.36 and 0.46 of one thread's
//! `write` + `fdatasync` with every record sealed by the reader, against
//! 0.68 and 0.85 with this split.
//!
//! # Ticks
//!
//! On x86-64 Linux the ticks are the time-stamp counter, used only when the
//! CPU reports an invariant TSC and the kernel itself keeps time with it
//! (its clocksource is `tsc`: the kernel checked that the counters of all
//! CPUs agree). Anywhere else they are nanoseconds since the Unix epoch and
//! the conversion is the identity.
//!
//! # Conversion
//!
//! The reader keeps two anchors, pairs of (ticks, wall-clock ns) read
//! together: `base`, from when the pipeline started (or the last clock
//! step), and `now`, taken once per batch after the batch was read, so every
//! record in it was stamped before `now`. A record's time is
//! `now.ns - (now.ticks - ticks) × rate`, with the rate measured between the
//! two anchors. The error is the rate's error times the record's age, and a
//! record is younger than `base` (writers start after the clock), so it
//! stays within the anchors' own jitter (tens of nanoseconds) however young
//! the window is. Wall-clock steps show up at once (each batch re-anchors on
//! the wall clock); a rate that jumps by more than 1 % is taken as a step and
//! starts a new window, and the window is renewed every minute so NTP slewing
//! is followed.

use crate::journal::FRAME_HEADER_LEN;
use std::time::{SystemTime, UNIX_EPOCH};

/// Largest payload a writer leaves for the reader to seal; larger records
/// are sealed by their writer (module docs).
pub(crate) const SEAL_IN_READER_MAX: usize = 256;

/// Bit of a frame's flags field that marks it unsealed, in queue memory
/// only: the reader clears it before the frame reaches the journal, whose
/// format has no flags.
pub(crate) const UNSEALED: u32 = 1 << 31;

/// Wall-clock nanoseconds since the Unix epoch (0 before it).
pub(crate) fn wall_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

/// What a writer's ticks count.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Ticks {
    /// The x86-64 time-stamp counter.
    Tsc,
    /// Nanoseconds since the Unix epoch.
    Wall,
}

impl Ticks {
    /// The fastest trustworthy counter of this machine (module docs).
    pub(crate) fn detect() -> Self {
        if tsc_is_trusted() {
            Ticks::Tsc
        } else {
            Ticks::Wall
        }
    }

    /// The current tick count.
    #[inline]
    pub(crate) fn now(self) -> u64 {
        match self {
            Ticks::Tsc => read_tsc(),
            Ticks::Wall => wall_ns(),
        }
    }
}

#[cfg(all(target_arch = "x86_64", target_os = "linux", not(miri)))]
fn tsc_is_trusted() -> bool {
    use std::arch::x86_64::__cpuid;
    // `__cpuid` is safe on current compilers and unsafe on older ones.
    #[allow(unused_unsafe)]
    // SAFETY: CPUID exists on every x86-64 CPU and has no side effects.
    let max_ext = unsafe { __cpuid(0x8000_0000) }.eax;
    if max_ext < 0x8000_0007 {
        return false;
    }
    #[allow(unused_unsafe)]
    // SAFETY: as above; the leaf is within the maximum just read.
    let invariant = unsafe { __cpuid(0x8000_0007) }.edx & (1 << 8) != 0;
    invariant && kernel_clocksource_is_tsc()
}

#[cfg(not(all(target_arch = "x86_64", target_os = "linux", not(miri))))]
fn tsc_is_trusted() -> bool {
    false
}

/// Whether the kernel keeps time with the TSC (a small sysfs file; any
/// failure to read it means no).
#[cfg(all(target_arch = "x86_64", target_os = "linux", not(miri)))]
fn kernel_clocksource_is_tsc() -> bool {
    std::fs::read_to_string("/sys/devices/system/clocksource/clocksource0/current_clocksource")
        .is_ok_and(|s| s.trim() == "tsc")
}

#[cfg(all(target_arch = "x86_64", not(miri)))]
#[inline]
fn read_tsc() -> u64 {
    // SAFETY: RDTSC is available on every x86-64 CPU and only reads the
    // counter; `detect` picks `Tsc` only where it is invariant.
    unsafe { std::arch::x86_64::_rdtsc() }
}

#[cfg(not(all(target_arch = "x86_64", not(miri))))]
#[inline]
fn read_tsc() -> u64 {
    wall_ns()
}

/// Frames `payload` unsealed into `frame` (exactly `framed_len(payload.len())`
/// bytes): header fields with `ticks` in the timestamp field, [`UNSEALED`]
/// in the flags and a zero CRC, the payload, zero padding.
/// [`TickClock::seal`] completes it.
#[inline]
pub(crate) fn write_unsealed(
    frame: &mut [u8],
    producer: u32,
    seq: u64,
    ticks: u64,
    payload: &[u8],
) {
    let mut head = [0u8; FRAME_HEADER_LEN];
    head[4..8].copy_from_slice(&(payload.len() as u32).to_le_bytes());
    head[8..12].copy_from_slice(&producer.to_le_bytes());
    head[12..16].copy_from_slice(&UNSEALED.to_le_bytes());
    head[16..24].copy_from_slice(&seq.to_le_bytes());
    head[24..32].copy_from_slice(&ticks.to_le_bytes());
    let (h, rest) = frame.split_at_mut(FRAME_HEADER_LEN);
    h.copy_from_slice(&head);
    // The padding (at most 7 bytes, inside the last 8) must be zero: clear
    // the last word, then the payload overwrites its part of it.
    let n = rest.len();
    if n >= 8 {
        rest[n - 8..].fill(0);
    } else {
        rest.fill(0);
    }
    rest[..payload.len()].copy_from_slice(payload);
}

/// A pair of readings of the tick counter and the wall clock.
#[derive(Debug, Clone, Copy)]
struct Anchor {
    ticks: u64,
    ns: u64,
}

/// Readings an anchor is chosen from ([`Anchor::read`]).
const ANCHOR_TRIES: usize = 3;

impl Anchor {
    fn read(ticks: Ticks) -> Self {
        Self::read_with(|| ticks.now(), wall_ns)
    }

    /// The wall clock is read between two tick readings and paired with
    /// their midpoint. A thread preempted between the readings pairs them
    /// wrongly by up to half the preemption: on a loaded 2-core machine,
    /// hundreds of microseconds, which showed as records stamped before
    /// their append. Of a few readings the narrowest bracket wins: all of
    /// them preempted would take preemptions back to back.
    fn read_with(mut tick: impl FnMut() -> u64, mut wall: impl FnMut() -> u64) -> Self {
        let mut best: Option<(u64, Anchor)> = None;
        for _ in 0..ANCHOR_TRIES {
            let t0 = tick();
            let ns = wall();
            let width = tick().wrapping_sub(t0);
            if best.is_none_or(|(w, _)| width < w) {
                let a = Anchor {
                    ticks: t0.wrapping_add(width / 2),
                    ns,
                };
                best = Some((width, a));
            }
        }
        best.map_or(Anchor { ticks: 0, ns: 0 }, |(_, a)| a)
    }
}

/// How long a rate window may grow before it is renewed.
const WINDOW_NS: u64 = 60_000_000_000;
/// The first window: the clock measures a rate for this long when created.
const FIRST_WINDOW_NS: u64 = 200_000;

/// The reader's side: turns ticks into wall-clock nanoseconds and seals
/// frames (module docs).
#[derive(Debug)]
pub(crate) struct TickClock {
    ticks: Ticks,
    base: Anchor,
    now: Anchor,
    /// Nanoseconds per tick.
    rate: f64,
}

impl TickClock {
    /// A clock for `ticks`. For the TSC it measures a first rate over
    /// about 200 µs (before any writer exists, so every record's ticks come
    /// after `base`).
    pub(crate) fn new(ticks: Ticks) -> Self {
        let base = Anchor::read(ticks);
        let mut now = base;
        if ticks == Ticks::Tsc {
            while now.ns.saturating_sub(base.ns) < FIRST_WINDOW_NS {
                std::hint::spin_loop();
                now = Anchor::read(ticks);
            }
        }
        let rate = match ticks {
            Ticks::Wall => 1.0,
            Ticks::Tsc => rate_between(base, now).unwrap_or(1.0),
        };
        TickClock {
            ticks,
            base,
            now,
            rate,
        }
    }

    /// What the writers' ticks count.
    pub(crate) fn ticks(&self) -> Ticks {
        self.ticks
    }

    /// Takes a fresh anchor: call after reading a batch and before sealing
    /// its frames.
    pub(crate) fn refresh(&mut self) {
        if self.ticks == Ticks::Wall {
            return;
        }
        self.refresh_with(Anchor::read(self.ticks));
    }

    fn refresh_with(&mut self, a: Anchor) {
        match rate_between(self.base, a) {
            Some(r) if (r / self.rate - 1.0).abs() <= 0.01 => self.rate = r,
            // The wall clock stepped (or the window is too short to say):
            // keep the rate, measure afresh from here.
            Some(_) => self.base = a,
            None if a.ns < self.base.ns => self.base = a,
            None => {}
        }
        if a.ns.saturating_sub(self.base.ns) > WINDOW_NS {
            self.base = self.now;
        }
        self.now = a;
    }

    /// Wall-clock nanoseconds of a tick reading.
    #[inline]
    pub(crate) fn to_ns(&self, ticks: u64) -> u64 {
        if self.ticks == Ticks::Wall {
            return ticks;
        }
        // Signed: a record stamped a little after the anchor (counters of
        // two CPUs a few ticks apart) lands a little after it.
        let age = self.now.ticks.wrapping_sub(ticks) as i64 as f64 * self.rate;
        (self.now.ns as f64 - age).max(0.0) as u64
    }

    /// Completes a frame [`write_unsealed`] made: the timestamp becomes
    /// wall-clock nanoseconds, the flag is cleared and the CRC-32C is
    /// computed. A frame its writer sealed, and a slice shorter than a frame
    /// header (the queue hands out whole frames, so never one), are left
    /// alone.
    #[inline]
    pub(crate) fn seal(&self, frame: &mut [u8]) {
        let Some(head) = frame.get(12..32) else {
            return;
        };
        let flags = u32::from_le_bytes(head[0..4].try_into().expect("4 bytes"));
        if flags & UNSEALED == 0 {
            return;
        }
        let ticks = u64::from_le_bytes(head[12..20].try_into().expect("8 bytes"));
        frame[12..16].copy_from_slice(&(flags & !UNSEALED).to_le_bytes());
        frame[24..32].copy_from_slice(&self.to_ns(ticks).to_le_bytes());
        let crc = crc32c::crc32c(&frame[4..]);
        frame[0..4].copy_from_slice(&crc.to_le_bytes());
    }
}

/// Nanoseconds per tick between two anchors, when they are far enough
/// apart (1 ms, or the first window) to say.
fn rate_between(a: Anchor, b: Anchor) -> Option<f64> {
    let dn = b.ns.checked_sub(a.ns)?;
    let dt = b.ticks.checked_sub(a.ticks)?;
    (dn >= FIRST_WINDOW_NS && dt > 0).then(|| dn as f64 / dt as f64)
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use crate::journal::{frame_into, framed_len};

    #[test]
    fn sealing_an_unsealed_frame_gives_the_frame_frame_into_writes() {
        // Built by hand: Miri's isolation has no wall clock.
        let a = Anchor { ticks: 0, ns: 0 };
        let clock = TickClock {
            ticks: Ticks::Wall,
            base: a,
            now: a,
            rate: 1.0,
        };
        for len in [0usize, 1, 7, 8, 9, 63, 64, 65, 200] {
            let payload: Vec<u8> = (0..len).map(|i| (i * 7 + 3) as u8).collect();
            let n = framed_len(len);
            let mut want = vec![0u8; n];
            frame_into(&mut want, 9, 12_345, 1_700_000_000_123, &payload).unwrap();
            // Queue memory holds whatever an older record left there.
            let mut got = vec![0xA5u8; n];
            write_unsealed(&mut got, 9, 12_345, 1_700_000_000_123, &payload);
            assert_ne!(got, want, "unsealed has no CRC (len {len})");
            clock.seal(&mut got);
            assert_eq!(got, want, "len {len}");
            // A frame its writer sealed is left alone.
            let mut sealed = want.clone();
            clock.seal(&mut sealed);
            assert_eq!(sealed, want, "len {len}");
        }
    }

    #[test]
    #[cfg_attr(miri, ignore = "reads the wall clock")]
    fn tsc_ticks_convert_to_the_wall_clock_they_were_read_at() {
        let ticks = Ticks::detect();
        let mut clock = TickClock::new(ticks);
        let mut pairs = Vec::new();
        for _ in 0..50 {
            let before = wall_ns();
            let t = ticks.now();
            let after = wall_ns();
            pairs.push((before, t, after));
            std::thread::sleep(std::time::Duration::from_micros(200));
        }
        clock.refresh();
        for (before, t, after) in pairs {
            let ns = clock.to_ns(t);
            // Within the readings around it, plus 20 µs for the rate's error
            // over the ~10 ms this took and the anchors' jitter.
            assert!(
                ns + 20_000 >= before && ns <= after + 20_000,
                "{ticks:?}: {ns} not in [{before}, {after}]"
            );
        }
    }

    #[test]
    fn an_anchor_is_the_reading_with_the_narrowest_bracket() {
        // Ticks: a reading preempted for 600 ticks between the wall clock
        // and the second tick, then a clean one, then a wider one.
        let ticks = [1_000u64, 1_620, 2_000, 2_020, 3_000, 3_100];
        let walls = [50_000u64, 51_000, 52_000];
        let (mut t, mut w) = (ticks.iter().copied(), walls.iter().copied());
        let a = Anchor::read_with(|| t.next().unwrap(), || w.next().unwrap());
        assert_eq!((a.ticks, a.ns), (2_010, 51_000));
        assert!(
            t.next().is_none() && w.next().is_none(),
            "every try is taken"
        );
    }

    #[test]
    fn a_wall_clock_step_starts_a_new_window_and_keeps_the_rate() {
        let a = |ticks, ns| Anchor { ticks, ns };
        // 1 tick = 1 ns, a window of 1 s.
        let mut clock = TickClock {
            ticks: Ticks::Tsc,
            base: a(0, 5_000_000_000),
            now: a(1_000_000_000, 6_000_000_000),
            rate: 1.0,
        };
        // Steady: the rate is re-measured, records convert on it.
        clock.refresh_with(a(2_000_000_000, 7_000_000_000));
        assert_eq!(clock.to_ns(1_999_000_000), 6_999_000_000);
        // The wall clock steps back 3 s: new window, same rate, and records
        // read just before the new anchor land just before the new time.
        clock.refresh_with(a(3_000_000_000, 4_000_000_000));
        assert_eq!(clock.base.ns, 4_000_000_000);
        assert_eq!(clock.rate, 1.0);
        assert_eq!(clock.to_ns(2_999_999_000), 3_999_999_000);
        // A rate 2 % off is a step too: the rate is kept.
        clock.refresh_with(a(4_000_000_000, 5_020_000_000));
        assert_eq!(clock.rate, 1.0);
        assert_eq!(clock.base.ticks, 4_000_000_000);
        // A slightly faster clock (0.1 %) is followed.
        clock.refresh_with(a(5_000_000_000, 6_021_000_000));
        assert!((clock.rate - 1.001).abs() < 1e-9, "{}", clock.rate);
        // A record stamped a few ticks after the anchor lands after it.
        assert!(clock.to_ns(5_000_000_100) > 6_021_000_000);
    }
}
