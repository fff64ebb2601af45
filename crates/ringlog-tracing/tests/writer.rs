//! The writer end to end: order, loss accounting, rotation, retention,
//! sync, the `log` backend, shutdown.

mod common;

use common::{check_order, field, records, text};
use ringlog::journal::{segment_file_name, verify, RotateEvery};
use ringlog_tracing::{Builder, Design, RingLogger, SyncError};
use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

fn segment_files(dir: &std::path::Path) -> Vec<u64> {
    let mut n: Vec<u64> = std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| {
            let name = e.unwrap().file_name();
            ringlog::journal::parse_segment_file_name(name.to_str()?)
        })
        .collect();
    n.sort_unstable();
    n
}

#[test]
fn four_threads_of_250_000_fmt_events_read_back_in_order() {
    four_threads_read_back_in_order(Design::DoubleBuffer);
}

#[test]
fn four_threads_read_back_in_order_through_a_ring_each() {
    four_threads_read_back_in_order(Design::FanIn);
}

fn four_threads_read_back_in_order(design: Design) {
    let dir = tempfile::tempdir().unwrap();
    // A small queue, so that the writers block on it again and again.
    let (writer, guard) = Builder::new(dir.path())
        .queue_bytes(256 << 10)
        .design(design)
        .build()
        .unwrap();
    const THREADS: u64 = 4;
    const EVENTS: u64 = 250_000;
    std::thread::scope(|s| {
        for t in 0..THREADS {
            let writer = writer.clone();
            s.spawn(move || {
                let subscriber = tracing_subscriber::fmt()
                    .with_writer(writer)
                    .with_ansi(false)
                    .with_thread_ids(true)
                    .finish();
                let _default = tracing::subscriber::set_default(subscriber);
                for i in 0..EVENTS {
                    tracing::info!(t, i, "event");
                }
            });
        }
    });
    let report = guard.shutdown().unwrap();
    assert_eq!(report.reader.records, THREADS * EVENTS);
    assert_eq!(
        (report.dropped, report.rejected, report.io_errors),
        (0, 0, 0)
    );
    let (recs, err) = records(dir.path());
    assert_eq!(err, None);
    assert_eq!(recs.len() as u64, THREADS * EVENTS);
    check_order(&recs, THREADS, EVENTS, true);
    // One thread, one producer: each thread leased a writer of its own.
    let mut producers: Vec<(u64, u32)> = recs
        .iter()
        .map(|r| (field(text(r), "t").unwrap(), r.producer))
        .collect();
    producers.sort_unstable();
    producers.dedup();
    assert_eq!(producers.len() as u64, THREADS, "{producers:?}");
    assert!(text(&recs[0]).contains(" INFO "), "{}", text(&recs[0]));
    assert!(!text(&recs[0]).ends_with('\n'));
    assert!(verify(dir.path()).unwrap().is_clean());
}

#[test]
fn threads_beyond_max_threads_share_a_writer_and_stay_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let (writer, guard) = Builder::new(dir.path()).max_threads(1).build().unwrap();
    // Every thread holds its writer (leased or shared) before any goes on,
    // so that a loaded machine running them one after another cannot hand
    // the one leased writer from each to the next.
    let all_in = std::sync::Barrier::new(4);
    std::thread::scope(|s| {
        for t in 0..4u64 {
            let mut w = writer.clone();
            let all_in = &all_in;
            s.spawn(move || {
                writeln!(w, "line t={t} i=0").unwrap();
                all_in.wait();
                for i in 1..20_000u64 {
                    writeln!(w, "line t={t} i={i}").unwrap();
                }
            });
        }
    });
    guard.shutdown().unwrap();
    let (recs, err) = records(dir.path());
    assert_eq!(err, None);
    check_order(&recs, 4, 20_000, true);
    let producers: std::collections::BTreeSet<u32> = recs.iter().map(|r| r.producer).collect();
    assert_eq!(producers.len(), 2, "one leased writer and the shared one");
    assert!(verify(dir.path()).unwrap().is_clean());
}

#[test]
fn lossy_mode_counts_every_dropped_event() {
    let dir = tempfile::tempdir().unwrap();
    let (writer, guard) = Builder::new(dir.path())
        .queue_bytes(64 << 10)
        .lossy(true)
        .sync_interval(Duration::ZERO)
        .build()
        .unwrap();
    let line = format!("{}\n", "x".repeat(1000));
    let mut written = [0u64; 2];
    // 1 KiB lines into 32 KiB buffers, each batch synced: the writers
    // outrun the disk and the newest events are dropped.
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..2u64)
            .map(|t| {
                let mut w = writer.clone();
                let line = &line;
                let guard = &guard;
                s.spawn(move || {
                    let mut n = 0u64;
                    // Bounded: at most ~100 MB per thread if nothing drops.
                    while n < 20_000 || (guard.dropped() == 0 && n < 100_000) {
                        w.write_all(format!("t={t} i={n} {line}").as_bytes())
                            .unwrap();
                        n += 1;
                    }
                    n
                })
            })
            .collect();
        for (t, h) in handles.into_iter().enumerate() {
            written[t] = h.join().unwrap();
        }
    });
    let report = guard.shutdown().unwrap();
    assert!(report.dropped > 0, "no event was dropped");
    let (recs, err) = records(dir.path());
    assert_eq!(err, None);
    let total: u64 = written.iter().sum();
    assert_eq!(recs.len() as u64 + report.dropped, total);
    // What was kept is in order per thread (the `i` values have gaps).
    for t in 0..2u64 {
        let is: Vec<u64> = recs
            .iter()
            .map(text)
            .filter(|l| l.starts_with(&format!("t={t} ")))
            .map(|l| field(l, "i").unwrap())
            .collect();
        assert!(
            is.windows(2).all(|w| w[0] < w[1]),
            "thread {t} out of order"
        );
    }
    assert!(verify(dir.path()).unwrap().is_clean());
}

#[test]
fn partial_writes_become_one_record_per_line() {
    let dir = tempfile::tempdir().unwrap();
    let (mut writer, guard) = Builder::new(dir.path()).build().unwrap();
    write!(writer, "a {} b", 1).unwrap();
    writer.write_all(b" c\nnext").unwrap();
    writer.write_all(b" line\n").unwrap();
    writer.write_all(b"multi\nline event\n").unwrap();
    writer.write_all(b"no newline").unwrap();
    writer.flush().unwrap();
    guard.sync().unwrap();
    let (recs, _) = records(dir.path());
    let lines: Vec<&str> = recs.iter().map(text).collect();
    assert_eq!(
        lines,
        ["a 1 b c\nnext line", "multi\nline event", "no newline"]
    );
}

#[test]
fn sync_makes_everything_written_before_it_durable() {
    let dir = tempfile::tempdir().unwrap();
    let (writer, guard) = Builder::new(dir.path())
        .sync_interval(Duration::from_millis(20))
        .build()
        .unwrap();
    std::thread::scope(|s| {
        for t in 0..3u64 {
            let mut w = writer.clone();
            s.spawn(move || {
                for i in 0..1000u64 {
                    writeln!(w, "t={t} i={i}").unwrap();
                }
            });
        }
    });
    guard.sync().unwrap();
    // Read while the writer is still open: the synced events are there.
    let (recs, err) = records(dir.path());
    assert_eq!(err, None);
    check_order(&recs, 3, 1000, true);
    guard.sync_timeout(Duration::from_secs(10)).unwrap();
    guard.flush().unwrap();
}

#[test]
fn flush_hands_the_events_to_the_kernel_without_waiting_for_a_sync() {
    let dir = tempfile::tempdir().unwrap();
    // No periodic sync during the test: only the shutdown syncs.
    let (writer, guard) = Builder::new(dir.path())
        .sync_interval(Duration::from_secs(3600))
        .build()
        .unwrap();
    for round in 0..3u64 {
        std::thread::scope(|s| {
            for t in 0..2u64 {
                let mut w = writer.clone();
                s.spawn(move || {
                    for i in 0..500u64 {
                        writeln!(w, "t={t} i={}", round * 500 + i).unwrap();
                    }
                });
            }
        });
        guard.flush_timeout(Duration::from_secs(30)).unwrap();
        // In the files (read through the page cache) while nothing was
        // synced since the journal was opened.
        let (recs, err) = records(dir.path());
        assert_eq!(err, None);
        check_order(&recs, 2, (round + 1) * 500, true);
    }
    // A sync, by contrast, waits for the next interval.
    assert_eq!(
        guard.sync_timeout(Duration::from_millis(100)),
        Err(SyncError::Timeout)
    );
    let report = guard.shutdown().unwrap();
    assert_eq!(report.reader.durable_records(), 3000);
}

#[cfg(target_os = "linux")]
#[test]
fn the_reader_thread_takes_the_name_given() {
    let dir = tempfile::tempdir().unwrap();
    let (_writer, guard) = Builder::new(dir.path())
        .thread_name("app-log-writer")
        .build()
        .unwrap();
    let names = || -> Vec<String> {
        std::fs::read_dir("/proc/self/task")
            .unwrap()
            .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("comm")).ok())
            .map(|n| n.trim_end().to_owned())
            .collect()
    };
    // The new thread sets its own name once it runs: poll, within a bound.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while !names().iter().any(|n| n == "app-log-writer") {
        assert!(
            std::time::Instant::now() < deadline,
            "no thread named app-log-writer: {:?}",
            names()
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    drop(guard);
}

#[test]
fn writes_after_shutdown_fail_and_sync_says_stopped() {
    let dir = tempfile::tempdir().unwrap();
    let (mut writer, guard) = Builder::new(dir.path()).build().unwrap();
    writeln!(writer, "before").unwrap();
    let report = guard.shutdown().unwrap();
    assert_eq!(report.reader.records, 1);
    let e = writeln!(writer, "after").unwrap_err();
    assert_eq!(e.kind(), std::io::ErrorKind::BrokenPipe);
    let (recs, _) = records(dir.path());
    assert_eq!(recs.len(), 1);
    let _ = SyncError::Timeout; // the type is public
}

#[test]
fn an_event_larger_than_the_queue_is_refused_and_counted() {
    let dir = tempfile::tempdir().unwrap();
    let (mut writer, guard) = Builder::new(dir.path())
        .queue_bytes(64 << 10)
        .build()
        .unwrap();
    let big = format!("{}\n", "y".repeat(40 << 10));
    let e = writer.write_all(big.as_bytes()).unwrap_err();
    assert_eq!(e.kind(), std::io::ErrorKind::InvalidInput);
    writeln!(writer, "small").unwrap();
    assert_eq!(guard.rejected(), 1);
    let report = guard.shutdown().unwrap();
    assert_eq!((report.rejected, report.reader.records), (1, 1));
}

#[test]
fn invalid_options_touch_nothing_on_disk() {
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("never-created");
    for b in [
        Builder::new(&target).queue_bytes(10),
        Builder::new(&target).max_threads(0),
        Builder::new(&target).max_threads(64),
        Builder::new(&target).max_segment_bytes(100),
        Builder::new(&target).max_files(0),
        Builder::new(&target).thread_name("x".repeat(64)),
        Builder::new(&target).thread_name("a\0b"),
    ] {
        let e = b.build().unwrap_err();
        assert!(e.to_string().starts_with("invalid option"), "{e}");
        assert!(!target.exists());
    }
}

#[test]
fn size_rotation_cuts_segments_and_keeps_every_record() {
    let dir = tempfile::tempdir().unwrap();
    let (mut writer, guard) = Builder::new(dir.path())
        .max_segment_bytes(8 << 10)
        .build()
        .unwrap();
    for i in 0..2000u64 {
        writeln!(writer, "size rotation t=0 i={i} {}", "z".repeat(60)).unwrap();
    }
    guard.shutdown().unwrap();
    let segments = segment_files(dir.path());
    assert!(segments.len() > 10, "{segments:?}");
    for n in &segments {
        let len = std::fs::metadata(dir.path().join(segment_file_name(*n)))
            .unwrap()
            .len();
        assert!(len <= 8 << 10, "segment {n}: {len} bytes");
    }
    let (recs, err) = records(dir.path());
    assert_eq!(err, None);
    check_order(&recs, 1, 2000, true);
    assert!(verify(dir.path()).unwrap().is_clean());
}

static NOW: AtomicU64 = AtomicU64::new(0);

fn test_clock() -> u64 {
    NOW.load(Ordering::Relaxed)
}

#[test]
fn time_rotation_starts_a_segment_per_utc_minute() {
    const MIN: u64 = 60_000_000_000;
    let real_now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64;
    // Start within the minute the first segment is created in.
    NOW.store(real_now, Ordering::Relaxed);
    let dir = tempfile::tempdir().unwrap();
    let (mut writer, guard) = Builder::new(dir.path())
        .rotate(RotateEvery::Minutely)
        .clock(test_clock)
        .build()
        .unwrap();
    let first = *segment_files(dir.path()).last().unwrap();
    let mut i = 0u64;
    for minute in 0..4u64 {
        if minute > 0 {
            // The next whole minute: 10:00:xx -> 10:01:00.
            NOW.store((real_now / MIN + minute) * MIN, Ordering::Relaxed);
        }
        for _ in 0..50 {
            writeln!(writer, "minute={minute} t=0 i={i}").unwrap();
            i += 1;
        }
        guard.sync().unwrap();
    }
    guard.shutdown().unwrap();
    let (recs, err) = records(dir.path());
    assert_eq!(err, None);
    check_order(&recs, 1, 200, true);
    // Each minute's records are in one segment, and each minute has its own.
    for r in &recs {
        let minute = field(text(r), "minute").unwrap();
        assert_eq!(r.segment, first + minute, "{}", text(r));
    }
    assert_eq!(segment_files(dir.path()).len(), 4);
    assert!(verify(dir.path()).unwrap().is_clean());
}

#[test]
fn retention_by_count_keeps_the_newest_files() {
    let dir = tempfile::tempdir().unwrap();
    let (mut writer, guard) = Builder::new(dir.path())
        .max_segment_bytes(4096)
        .max_files(3)
        .build()
        .unwrap();
    for i in 0..3000u64 {
        writeln!(writer, "retention t=0 i={i} {}", "r".repeat(40)).unwrap();
    }
    guard.shutdown().unwrap();
    let segments = segment_files(dir.path());
    assert_eq!(segments.len(), 3, "{segments:?}");
    assert!(segments[0] > 3, "the oldest were deleted: {segments:?}");
    let (recs, err) = records(dir.path());
    assert_eq!(err, None);
    // The newest records are all there, consecutive up to the last one.
    let last = field(text(recs.last().unwrap()), "i").unwrap();
    assert_eq!(last, 2999);
    let first = field(text(&recs[0]), "i").unwrap();
    assert!(first > 0);
    assert_eq!(recs.len() as u64, last - first + 1);
}

#[test]
fn retention_by_bytes_caps_the_journal() {
    let dir = tempfile::tempdir().unwrap();
    const CAP: u64 = 20 << 10;
    let (mut writer, guard) = Builder::new(dir.path())
        .max_segment_bytes(4096)
        .max_total_bytes(CAP)
        .build()
        .unwrap();
    for i in 0..3000u64 {
        writeln!(writer, "bytes t=0 i={i} {}", "b".repeat(40)).unwrap();
    }
    guard.shutdown().unwrap();
    let total: u64 = segment_files(dir.path())
        .iter()
        .map(|n| {
            std::fs::metadata(dir.path().join(segment_file_name(*n)))
                .unwrap()
                .len()
        })
        .sum();
    assert!(total <= CAP, "{total} bytes kept, cap {CAP}");
    assert!(total > CAP - 2 * 4096, "only {total} bytes kept");
    let (recs, err) = records(dir.path());
    assert_eq!(err, None);
    let last = field(text(recs.last().unwrap()), "i").unwrap();
    assert_eq!(last, 2999);
}

#[test]
fn the_log_backend_writes_fmt_like_lines() {
    let dir = tempfile::tempdir().unwrap();
    let (writer, guard) = Builder::new(dir.path()).build().unwrap();
    let logger = RingLogger::new(writer, log::LevelFilter::Info);
    let log = |level, msg: std::fmt::Arguments<'_>| {
        log::Log::log(
            &logger,
            &log::Record::builder()
                .level(level)
                .target("my_app::db")
                .args(msg)
                .build(),
        )
    };
    log(log::Level::Info, format_args!("connected to {}", "db1"));
    log(log::Level::Debug, format_args!("filtered out"));
    log(log::Level::Warn, format_args!("slow query"));
    log::Log::flush(&logger);
    guard.sync().unwrap();
    let (recs, _) = records(dir.path());
    let lines: Vec<&str> = recs.iter().map(text).collect();
    assert_eq!(lines.len(), 2, "{lines:?}");
    // 2026-12-01T10:00:00.123456Z  INFO my_app::db: connected to db1
    assert_eq!(
        lines[0].len(),
        27 + " INFO my_app::db: connected to db1".len() + 1
    );
    assert!(
        lines[0].ends_with("Z  INFO my_app::db: connected to db1"),
        "{}",
        lines[0]
    );
    assert!(
        lines[1].ends_with("Z  WARN my_app::db: slow query"),
        "{}",
        lines[1]
    );
    assert_eq!(&lines[0][4..5], "-");
    assert_eq!(&lines[0][10..11], "T");
}
