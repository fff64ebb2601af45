//! A one-node server killed (`kill -9`) and restarted while the forwarder
//! publishes in a fast-ingest batch. The restarted server knows nothing of
//! the batch: the publishes that reach it after the restart are refused
//! as of an unknown batch, or their acknowledgements never come. Either
//! way the forwarder gives the batch up, settles from the stream's last
//! message what the server had stored, and publishes the rest in a new
//! batch: every record once, in journal order.

use crate::{client, common};

use std::time::{Duration, Instant};

use async_nats::jetstream;
use client::rt;
use common::write_journal;
use ringlog::journal::{read_cursor_file, JournalOptions, Reader};
use ringlog_forward::{check_stream, connect, ForwardOptions, Forwarder, Order, StreamSpec};

const PRODUCERS: u32 = 4;
const PER: u64 = 5_000;
const N: u64 = PRODUCERS as u64 * PER;

/// Messages in `stream`, `None` while it cannot be read.
async fn stored(js: &jetstream::Context, stream: &str) -> Option<u64> {
    let mut s = js.get_stream(stream).await.ok()?;
    Some(s.info().await.ok()?.state.messages)
}

#[test]
fn a_server_restarted_mid_batch_leaves_every_record_once_in_order() {
    let Some(bin) =
        common::server_or_skip("a_server_restarted_mid_batch_leaves_every_record_once_in_order")
    else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let mut cluster = common::Cluster::start(&bin, &tmp.path().join("nats"), 1);
    let server = cluster.urls();
    let dir = tmp.path().join("journal");
    write_journal(&dir, JournalOptions::default(), PRODUCERS, PER, 0);
    let last = Reader::open(&dir)
        .unwrap()
        .map(Result::unwrap)
        .last()
        .unwrap();
    let cursor = tmp.path().join("cursor");

    let mut o = ForwardOptions::new(&dir, &server, StreamSpec::new("RESTART"));
    o.order = Order::Strict;
    o.cursor_file = Some(cursor.clone());
    o.ack_timeout = Duration::from_secs(1);
    // Bounded: a forwarder that cannot recover fails the test instead of
    // retrying for ever.
    o.retry_for = Some(Duration::from_secs(60));
    let forwarder = std::thread::spawn(move || rt().block_on(Forwarder::new(o).run()));

    // Kill the server once a tenth of the records is stored.
    let rt = rt();
    let js = rt.block_on(async { jetstream::new(connect(&server).await.unwrap()) });
    let deadline = Instant::now() + Duration::from_secs(60);
    let at_kill = loop {
        let n = rt.block_on(stored(&js, "RESTART")).unwrap_or(0);
        if n >= N / 10 {
            break n;
        }
        assert!(Instant::now() < deadline, "only {n} stored");
        std::thread::sleep(Duration::from_millis(5));
    };
    cluster.kill9(0);
    std::thread::sleep(Duration::from_millis(500));
    cluster.restart(0);

    let report = forwarder.join().unwrap().unwrap();
    let m = &report.metrics;
    eprintln!("killed with {at_kill} stored; {m:?}");
    assert!(m.strict_order && m.batched, "{m:?}");
    assert!(m.batches >= 2, "{m:?}");
    assert_eq!(
        (m.forwarded, m.duplicates, m.out_of_order),
        (N, 0, 0),
        "{m:?}"
    );
    assert_eq!(m.acknowledged + m.already_in_stream, N, "{m:?}");
    assert_eq!(read_cursor_file(&cursor).unwrap(), Some(last.cursor()));

    let check = rt
        .block_on(check_stream(&dir, &server, &StreamSpec::new("RESTART")))
        .unwrap();
    assert_eq!(check.messages, N, "{check:?}");
    assert!(check.is_clean(), "{check:?}");
}
