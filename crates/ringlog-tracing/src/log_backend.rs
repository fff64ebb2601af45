//! A `log::Log` backend over the same writer: crates that use `log` get the
//! same journal, ordering, blocking and durability as `tracing` events.

use crate::time::write_rfc3339_micros;
use crate::writer::RingWriter;
use std::cell::RefCell;
use std::fmt::Write as _;
use std::time::{SystemTime, UNIX_EPOCH};

thread_local! {
    /// The line being formatted, reused: no allocation per record once it
    /// has grown to the longest line.
    static LINE: RefCell<String> = const { RefCell::new(String::new()) };
}

/// A [`log::Log`] that writes each record as one journal line,
/// `2026-12-01T10:00:00.123456Z  INFO target: message`, the layout of
/// tracing-subscriber's default fmt layer (without ANSI colours).
///
/// ```
/// # let dir = tempfile::tempdir().unwrap();
/// let (writer, guard) = ringlog_tracing::Builder::new(dir.path()).build().unwrap();
/// let logger = ringlog_tracing::RingLogger::new(writer, log::LevelFilter::Info);
/// log::Log::log(&logger, &log::Record::builder().args(format_args!("hello")).build());
/// guard.sync().unwrap();
/// ```
#[derive(Debug)]
pub struct RingLogger {
    writer: RingWriter,
    level: log::LevelFilter,
}

impl RingLogger {
    /// Logs records at `level` and above to `writer`.
    pub fn new(writer: RingWriter, level: log::LevelFilter) -> Self {
        Self { writer, level }
    }

    /// Installs the logger as `log`'s global logger and sets the maximum
    /// level.
    ///
    /// # Errors
    ///
    /// A logger was already installed.
    pub fn init(self) -> Result<(), log::SetLoggerError> {
        let level = self.level;
        log::set_boxed_logger(Box::new(self))?;
        log::set_max_level(level);
        Ok(())
    }

    fn format_and_write(&self, line: &mut String, record: &log::Record<'_>) {
        line.clear();
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX));
        // Writing into a String cannot fail.
        let _ = write_rfc3339_micros(line, now);
        let _ = write!(
            line,
            " {:>5} {}: {}",
            record.level(),
            record.target(),
            record.args()
        );
        line.push('\n');
        // Errors are counted by the writer (see `Guard::io_errors`); `log`
        // has no way to return them.
        let _ = std::io::Write::write_all(&mut &self.writer, line.as_bytes());
    }
}

impl log::Log for RingLogger {
    fn enabled(&self, metadata: &log::Metadata<'_>) -> bool {
        metadata.level() <= self.level
    }

    fn log(&self, record: &log::Record<'_>) {
        if !self.enabled(record.metadata()) {
            return;
        }
        LINE.with(|cell| match cell.try_borrow_mut() {
            Ok(mut line) => self.format_and_write(&mut line, record),
            // Logging from inside a `Display` of this very record.
            Err(_) => self.format_and_write(&mut String::new(), record),
        });
    }

    /// Ends this thread's partial line; for durability use
    /// [`Guard::sync`](crate::Guard::sync).
    fn flush(&self) {
        let _ = self.writer.flush_thread();
    }
}
