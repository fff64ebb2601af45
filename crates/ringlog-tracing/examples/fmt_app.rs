//! A tracing-subscriber fmt application writing through ringlog instead of
//! `tracing_appender::non_blocking`.
//!
//! ```text
//! cargo run --release -p ringlog-tracing --example fmt_app -- /tmp/app-log
//! ringlog cat --format text /tmp/app-log
//! ```

use std::time::Duration;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = std::env::args().nth(1).unwrap_or_else(|| "app-log".into());

    // The three lines that replace `tracing_appender::non_blocking`:
    let (writer, guard) = ringlog_tracing::Builder::new(&dir)
        .rotate(ringlog_tracing::RotateEvery::Hourly)
        .max_files(24 * 7)
        .panic_hook(true)
        .build()?;
    tracing_subscriber::fmt()
        .with_writer(writer)
        .with_ansi(false)
        .with_thread_names(true)
        .init();

    let workers: Vec<_> = (0..4)
        .map(|w| {
            std::thread::Builder::new()
                .name(format!("worker-{w}"))
                .spawn(move || {
                    for request in 0..10_000u64 {
                        tracing::info!(
                            worker = w,
                            request,
                            latency_us = request % 977,
                            "request served"
                        );
                    }
                    tracing::warn!(worker = w, "worker done");
                })
        })
        .collect::<Result<_, _>>()?;
    for w in workers {
        w.join().map_err(|_| "a worker panicked")?;
    }

    // Everything logged so far is on disk when this returns.
    guard.sync_timeout(Duration::from_secs(10))?;
    tracing::info!("all workers done; the journal is synced");
    let report = guard.shutdown()?;
    eprintln!(
        "{} records in {dir}, {} dropped, {} I/O errors",
        report.reader.records, report.dropped, report.io_errors
    );
    Ok(())
}
