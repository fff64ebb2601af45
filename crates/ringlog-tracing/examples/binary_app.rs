//! Deferred formatting: events stored by `BinaryLayer` as a callsite id and
//! typed field values, formatted only when the journal is read.
//!
//! ```text
//! cargo run --release -p ringlog-tracing --example binary_app -- /tmp/binary-log
//! cargo run --release -- cat --format text /tmp/binary-log | head
//! ```

use std::time::Duration;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "binary-log".into());

    let (writer, guard) = ringlog_tracing::Builder::new(&dir)
        .rotate(ringlog_tracing::RotateEvery::Hourly)
        .max_files(24 * 7)
        .build()?;
    tracing_subscriber::registry()
        .with(ringlog_tracing::BinaryLayer::new(&writer))
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
                            cached = request % 3 == 0,
                            path = "/api/orders",
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

    // In the journal's files (not yet necessarily synced) when this returns.
    guard.flush_timeout(Duration::from_secs(10))?;
    let report = guard.shutdown()?;
    eprintln!(
        "{} records (events and their definitions) in {dir}, {} dropped, {} I/O errors",
        report.reader.records, report.dropped, report.io_errors
    );
    Ok(())
}
