//! End to end against a real three-node JetStream cluster: records forwarded
//! from a journal that a writer is still appending to, the stream leader
//! and the forwarder killed with SIGKILL mid-run and restarted, and then
//! every record in the stream exactly once, in order per producer, CRCs
//! matching the journal.

use crate::common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_nats::jetstream;
use ringlog::journal::{read_cursor_file, Journal, JournalOptions, SyncPolicy};
use ringlog_forward::{
    check_stream, connect, ensure_stream, import_stream, ForwardOptions, Forwarder, ImportOptions,
    Order, StreamSpec,
};

const PRODUCERS: u32 = 4;
const PER_PRODUCER: u64 = 50_000;
const N: u64 = PRODUCERS as u64 * PER_PRODUCER;
const CHILD_ENV: &str = "RINGLOG_FORWARD_TEST_CHILD";

fn spec() -> StreamSpec {
    let mut s = StreamSpec::new("CLUSTER");
    s.replicas = Some(3);
    s
}

fn options(dir: &Path, server: &str, cursor: &Path, follow: bool) -> ForwardOptions {
    let mut o = ForwardOptions::new(dir, server, spec());
    o.cursor_file = Some(cursor.to_owned());
    o.follow = follow;
    o.window = 2048;
    o.ack_timeout = Duration::from_secs(2);
    // The test makes the stream itself, so strict order is asked for: kills
    // of the leader and the forwarder must still leave it in journal order
    // with nothing stored twice.
    o.order = Order::Strict;
    o
}

/// Runs as the forwarder child process when the test re-executes itself.
#[test]
#[ignore = "the child process of forwarding_survives_kills, not a test on its own"]
fn forwarder_child() {
    let Ok(args) = std::env::var(CHILD_ENV) else {
        panic!("{CHILD_ENV} not set: run by forwarding_survives_kills only");
    };
    let parts: Vec<&str> = args.split('\n').collect();
    let (dir, server, cursor) = (parts[0], parts[1], parts[2]);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let mut o = options(Path::new(dir), server, Path::new(cursor), true);
    o.progress = Some(Box::new(|m| eprintln!("child: {m:?}")));
    rt.block_on(Forwarder::new(o).run()).unwrap();
}

fn spawn_forwarder(dir: &Path, server: &str, cursor: &Path, log: &Path) -> common::ChildGuard {
    let exe = std::env::current_exe().unwrap();
    let log = std::fs::File::create(log).unwrap();
    let child = Command::new(exe)
        .args([
            "--exact",
            "cluster::forwarder_child",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(
            CHILD_ENV,
            format!("{}\n{server}\n{}", dir.display(), cursor.display()),
        )
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap();
    common::ChildGuard(Some(child))
}

/// The committed position in the cursor file (0 before it exists).
fn committed(cursor: &Path) -> u64 {
    read_cursor_file(cursor)
        .ok()
        .flatten()
        .map_or(0, |c| c.position())
}

fn wait_for(what: &str, deadline: Instant, mut done: impl FnMut() -> bool) {
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Stops the writer thread on every path.
struct WriterGuard {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<u64>>,
}

impl WriterGuard {
    fn join(&mut self) -> u64 {
        self.thread.take().unwrap().join().unwrap()
    }
}

impl Drop for WriterGuard {
    fn drop(&mut self) {
        // Relaxed: the flag carries no data.
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn start_writer(dir: PathBuf) -> WriterGuard {
    let stop = Arc::new(AtomicBool::new(false));
    let theirs = Arc::clone(&stop);
    let thread = std::thread::spawn(move || {
        let options = JournalOptions {
            segment_bytes: 2 << 20,
            sync: SyncPolicy::Never,
            ..Default::default()
        };
        let mut j = Journal::open(&dir, options).unwrap();
        // About 40,000 records a second, in batches of 400.
        for seq in 0..PER_PRODUCER {
            for p in 1..=PRODUCERS {
                j.append(p, seq, seq, &common::payload(p, seq)).unwrap();
            }
            if seq % 100 == 99 {
                // Relaxed: see WriterGuard::drop.
                if theirs.load(Ordering::Relaxed) {
                    break;
                }
                std::thread::sleep(Duration::from_millis(10));
            }
        }
        j.position()
    });
    WriterGuard {
        stop,
        thread: Some(thread),
    }
}

/// On a failure, prints the end of the forwarder logs (before the
/// temporary directory goes).
struct DumpLogs(Vec<PathBuf>);

impl Drop for DumpLogs {
    fn drop(&mut self) {
        if std::thread::panicking() {
            for p in &self.0 {
                let text = std::fs::read_to_string(p).unwrap_or_default();
                let tail: Vec<&str> = text.lines().rev().take(15).collect();
                eprintln!("--- {}:", p.display());
                for l in tail.into_iter().rev() {
                    eprintln!("{l}");
                }
            }
        }
    }
}

#[test]
fn forwarding_survives_kills() {
    let Some(bin) = common::server_or_skip("forwarding_survives_kills") else {
        return;
    };
    let started = Instant::now();
    let deadline = started + Duration::from_secs(100);
    let tmp = tempfile::tempdir().unwrap();
    let mut cluster = common::Cluster::start(&bin, &tmp.path().join("nats"), 3);
    let server = cluster.urls();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    // The R3 stream, once the cluster has a meta leader, allowing
    // fast-ingest batches as the forwarder's own in strict order does: the
    // kills below hit batches in flight.
    let js = rt.block_on(async {
        let js = jetstream::new(connect(&server).await.unwrap());
        loop {
            let config = jetstream::stream::Config {
                name: "CLUSTER".to_owned(),
                subjects: vec![spec().filter()],
                num_replicas: 3,
                allow_batch_publish: true,
                ..Default::default()
            };
            let made = match js.create_stream(config).await {
                Ok(_) => ensure_stream(&js, &spec()).await.map_err(|e| e.to_string()),
                Err(e) => Err(e.to_string()),
            };
            match made {
                Ok(_) => break js,
                Err(e) => {
                    assert!(Instant::now() < deadline, "no stream: {e}");
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
            }
        }
    });
    let leader = || {
        rt.block_on(async {
            let mut s = js.get_stream("CLUSTER").await.ok()?;
            s.info().await.ok()?.cluster.as_ref()?.leader.clone()
        })
    };

    let dir = tmp.path().join("journal");
    std::fs::create_dir_all(&dir).unwrap();
    let cursor = tmp.path().join("cursor");
    let _logs = DumpLogs(vec![tmp.path().join("f1.log"), tmp.path().join("f2.log")]);
    let mut writer = start_writer(dir.clone());
    let mut child = spawn_forwarder(&dir, &server, &cursor, &tmp.path().join("f1.log"));

    // Kill -9 the stream leader mid-run, and restart it.
    wait_for("a first committed cursor", deadline, || {
        committed(&cursor) > 1 << 20
    });
    let name = leader().expect("a stream leader");
    let i = cluster.index_of(&name).unwrap();
    cluster.kill9(i);
    let at_kill = committed(&cursor);
    eprintln!(
        "killed leader {name} at position {at_kill} after {:?}",
        started.elapsed()
    );
    std::thread::sleep(Duration::from_secs(1));
    cluster.restart(i);

    // Kill -9 the forwarder mid-run once it made progress past the
    // leader's death, and restart it from its cursor.
    wait_for("progress after the leader died", deadline, || {
        committed(&cursor) > at_kill + (1 << 20)
    });
    child.kill9();
    let at_child_kill = committed(&cursor);
    eprintln!(
        "killed the forwarder at position {at_child_kill} after {:?}",
        started.elapsed()
    );
    let mut child = spawn_forwarder(&dir, &server, &cursor, &tmp.path().join("f2.log"));

    let end = writer.join();
    assert!(
        committed(&cursor) < end,
        "the writer finished before the forwarder caught up: nothing left to kill mid-run"
    );
    wait_for("progress after the restart", deadline, || {
        committed(&cursor) > at_child_kill
    });
    // Once more mid-run, then the rest in this process, until caught up.
    child.kill9();
    eprintln!(
        "killed the forwarder again at position {} of {end} after {:?}",
        committed(&cursor),
        started.elapsed()
    );
    let report = rt
        .block_on(Forwarder::new(options(&dir, &server, &cursor, false)).run())
        .unwrap();
    eprintln!("final run: {:?}", report.metrics);
    assert!(report.metrics.strict_order, "{:?}", report.metrics);
    assert!(report.metrics.batched, "{:?}", report.metrics);
    assert_eq!(committed(&cursor), end);

    let check = rt.block_on(check_stream(&dir, &server, &spec())).unwrap();
    eprintln!("stream check after {:?}: {check:?}", started.elapsed());
    assert_eq!(check.journal_records, N);
    assert_eq!(check.messages, N, "{check:?}");
    assert!(check.is_clean(), "{check:?}");
    // Strict order: the stream holds exactly the journal's order, across
    // producers too.
    let imported = tmp.path().join("imported");
    let io = ImportOptions::new(&imported, &server, spec());
    let report = rt.block_on(import_stream(io)).unwrap();
    assert!(report.is_clean(), "{report:?}");
    let order = |d: &Path| -> Vec<(u32, u64)> {
        ringlog::journal::Reader::open(d)
            .unwrap()
            .map(|r| r.map(|r| (r.producer, r.seq)).unwrap())
            .collect()
    };
    assert!(
        order(&imported) == order(&dir),
        "the stream is not in journal order"
    );
}
