//! A tight loop of `info!` through `BinaryLayer`, to profile what the layer
//! itself costs per event (with `perf record`), and the same loop with no
//! layer at all, to subtract what `tracing`'s dispatch costs.
//!
//! ```text
//! cargo build --release -p ringlog-tracing --example binary_loop
//! perf record -g target/release/examples/binary_loop /tmp/binary-loop 2000000
//! perf report --no-children
//! ```
//!
//! Arguments: the journal directory, the number of events (default
//! 2,000,000), and `span` to log inside a span. It prints, for each loop,
//! the median and the fastest of the mean times per event of batches of
//! 1,000 events: on a machine busy with other work the median of short
//! batches says more than the mean of the whole run.

use std::time::Instant;
use tracing_subscriber::layer::SubscriberExt;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let dir = args.next().unwrap_or_else(|| "binary-loop".into());
    let events: u64 = args.next().map_or(Ok(2_000_000), |n| n.parse())?;
    let in_span = args.next().as_deref() == Some("span");
    let _ = std::fs::remove_dir_all(&dir);
    let (writer, guard) = ringlog_tracing::Builder::new(&dir)
        .queue_bytes(64 << 20)
        .build()?;
    let run = |what: &str, dispatch: tracing::Dispatch| {
        tracing::dispatcher::with_default(&dispatch, || {
            let span = tracing::info_span!("conn", peer = "10.0.0.1", port = 443u64);
            let _entered = in_span.then(|| span.enter());
            tracing::info!(i = 0u64, "warm up");
            const BATCH: u64 = 1000;
            let mut batches = Vec::with_capacity((events / BATCH) as usize);
            for b in 0..events / BATCH {
                let start = Instant::now();
                for i in b * BATCH..(b + 1) * BATCH {
                    tracing::info!(i, ok = true, "request served");
                }
                batches.push(start.elapsed().as_nanos() as f64 / BATCH as f64);
                if b % 100 == 0 {
                    // Keep the queue from filling: the reader drains it.
                    let _ = guard.flush();
                }
            }
            batches.sort_by(f64::total_cmp);
            println!(
                "{what}: median {:.1} ns/event, fastest {:.1} (batches of {BATCH})",
                batches[batches.len() / 2],
                batches[0]
            );
        });
    };
    run(
        "registry, no layer",
        tracing::Dispatch::new(tracing_subscriber::registry()),
    );
    run(
        "registry + BinaryLayer",
        tracing::Dispatch::new(
            tracing_subscriber::registry().with(ringlog_tracing::BinaryLayer::new(&writer)),
        ),
    );
    guard.shutdown()?;
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}
