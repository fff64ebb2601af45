//! An application (or a dependency) using the `log` crate, writing through
//! ringlog with the same guarantees as tracing events.
//!
//! ```text
//! cargo run --release -p ringlog-tracing --example log_app -- /tmp/log-app
//! ringlog cat --format text /tmp/log-app
//! ```

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = std::env::args().nth(1).unwrap_or_else(|| "log-app".into());
    let (writer, guard) = ringlog_tracing::Builder::new(&dir)
        .max_segment_bytes(8 << 20)
        .max_total_bytes(256 << 20)
        .build()?;
    ringlog_tracing::RingLogger::new(writer, log::LevelFilter::Info).init()?;

    for order in 0..1000u32 {
        log::info!(target: "shop::orders", "order {order} accepted");
        if order % 100 == 99 {
            log::warn!(target: "shop::stock", "stock low after order {order}");
        }
        log::debug!("not written: below the level");
    }
    guard.sync()?;
    log::info!("synced");
    drop(guard); // drains, syncs, stops the reader thread
    Ok(())
}
