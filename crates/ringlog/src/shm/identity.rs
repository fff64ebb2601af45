//! Who owns a role in a segment: a process identity that pid reuse cannot
//! fool.
//!
//! A pid alone is not an identity: once a process dies its pid is handed to
//! the next process that asks. The kernel's start time of the process
//! (`/proc/<pid>/stat` field 22, in clock ticks since boot) tells the two
//! apart, so the identity is the pair. It is packed into one 64-bit word so
//! that a role (the consumer, a producer slot) can be claimed with one
//! compare-and-swap: pid in the low 22 bits (Linux pids stay below
//! `PID_MAX_LIMIT` = 2^22), start time in the 42 bits above (2^42 ticks at
//! 100 Hz is over 1,300 years of uptime). Zero means "nobody".

use std::fmt;

const PID_BITS: u32 = 22;
const PID_MASK: u64 = (1 << PID_BITS) - 1;
const START_MASK: u64 = (1 << (64 - PID_BITS)) - 1;

/// A process, named by its pid and its start time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ProcessIdentity {
    /// Process id.
    pub pid: u32,
    /// Start time in clock ticks since boot (`/proc/<pid>/stat` field 22),
    /// truncated to 42 bits.
    pub start_time: u64,
}

impl fmt::Display for ProcessIdentity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "pid {} (started at tick {})", self.pid, self.start_time)
    }
}

/// What `/proc` says about a process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Liveness {
    /// Running (or sleeping, stopped...): the same process still exists.
    Alive,
    /// Gone, a zombie, or the pid now belongs to another process.
    Dead,
}

impl ProcessIdentity {
    /// The calling process. Read afresh on every call, so a forked child
    /// gets its own identity.
    ///
    /// # Errors
    ///
    /// When `/proc/self/stat` cannot be read or parsed.
    pub fn current() -> std::io::Result<Self> {
        let pid = rustix::process::getpid().as_raw_nonzero().get() as u32;
        let stat = std::fs::read(format!("/proc/{pid}/stat"))?;
        let (_, start_time) = parse_stat(&stat).ok_or_else(|| {
            std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("unparsable /proc/{pid}/stat"),
            )
        })?;
        Ok(Self {
            pid,
            start_time: start_time & START_MASK,
        })
    }

    /// The identity packed into one non-zero word.
    pub fn pack(self) -> u64 {
        (self.start_time & START_MASK) << PID_BITS | (u64::from(self.pid) & PID_MASK)
    }

    /// Unpacks a word made by [`pack`](Self::pack); `None` for zero
    /// ("nobody"). Any other word unpacks to some identity, so a garbled word
    /// only names a process that most likely does not exist.
    pub fn unpack(word: u64) -> Option<Self> {
        (word != 0).then_some(Self {
            pid: (word & PID_MASK) as u32,
            start_time: word >> PID_BITS,
        })
    }

    /// Whether this exact process still runs. A process that cannot be
    /// inspected for another reason than its absence (e.g. `/proc` hidden)
    /// counts as alive: a live peer must never be declared dead.
    pub(crate) fn liveness(self) -> Liveness {
        if self.pid == 0 {
            return Liveness::Dead;
        }
        match std::fs::read(format!("/proc/{}/stat", self.pid)) {
            Ok(stat) => match parse_stat(&stat) {
                Some((state, start))
                    if state != b'Z' && state != b'X' && start & START_MASK == self.start_time =>
                {
                    Liveness::Alive
                }
                Some(_) => Liveness::Dead,
                None => Liveness::Alive,
            },
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Liveness::Dead,
            Err(e) if e.raw_os_error() == Some(libc::ESRCH) => Liveness::Dead,
            Err(_) => Liveness::Alive,
        }
    }

    /// Whether this exact process still runs (see the module docs).
    pub fn is_alive(self) -> bool {
        self.liveness() == Liveness::Alive
    }
}

/// Parses `/proc/<pid>/stat` into (state, start time). The command name
/// (field 2) is in parentheses and may contain spaces and parentheses, so
/// fields are counted from the last `)`.
pub(crate) fn parse_stat(stat: &[u8]) -> Option<(u8, u64)> {
    let close = stat.iter().rposition(|&b| b == b')')?;
    let rest = std::str::from_utf8(stat.get(close + 1..)?).ok()?;
    let mut fields = rest.split_ascii_whitespace();
    // Field 3 is the state; field 22 the start time: 19 fields later.
    let state = *fields.next()?.as_bytes().first()?;
    let start = fields.nth(18)?.parse().ok()?;
    Some((state, start))
}

#[cfg(all(test, not(miri)))]
mod tests {
    use super::*;

    #[test]
    fn parses_stat_with_odd_command_names() {
        let line = b"42 (a) b (c)) S 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 987654 19 20";
        assert_eq!(parse_stat(line), Some((b'S', 987654)));
        assert_eq!(parse_stat(b"garbage"), None);
        assert_eq!(parse_stat(b"1 (x) S 1 2"), None);
    }

    #[test]
    fn pack_round_trips_and_self_is_alive() {
        let me = ProcessIdentity::current().unwrap();
        assert_eq!(ProcessIdentity::unpack(me.pack()), Some(me));
        assert_ne!(me.pack(), 0);
        assert!(me.is_alive());
        assert_eq!(ProcessIdentity::unpack(0), None);
    }

    #[test]
    fn other_start_time_or_missing_pid_is_dead() {
        let me = ProcessIdentity::current().unwrap();
        let reused = ProcessIdentity {
            start_time: me.start_time + 1,
            ..me
        };
        assert!(!reused.is_alive());
        let gone = ProcessIdentity {
            pid: (1 << 22) - 1,
            start_time: 1,
        };
        assert!(!gone.is_alive());
    }
}
