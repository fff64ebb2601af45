//! The correctness checks reject runs that lost, duplicated, reordered or
//! corrupted data, so no figure is printed for them.

use ringlog_bench::bench::{Bench, Case, Measured, Role, Settings, Unit};
use ringlog_bench::check::{item, CheckError, RecordCheck, SeqCheck};
use ringlog_bench::records::{stamp, Plan};

#[test]
fn exact_check_accepts_a_complete_run() {
    let mut c = SeqCheck::exact(2);
    for s in 0..10 {
        c.see(item(0, s));
        c.see(item(1, s));
    }
    assert_eq!(c.finish(&[10, 10], 0), Ok(20));
}

#[test]
fn exact_check_rejects_a_lost_record() {
    let mut c = SeqCheck::exact(2);
    for s in 0..10 {
        c.see(item(0, s));
    }
    for s in 0..9 {
        c.see(item(1, s));
    }
    let e = c.finish(&[10, 10], 0).unwrap_err();
    assert!(e.0.contains("producer 1"), "{e}");
}

#[test]
fn exact_check_rejects_a_gap_duplicate_or_reorder() {
    for seqs in [&[0u64, 2, 3][..], &[0, 1, 1, 2], &[1, 0, 2]] {
        let mut c = SeqCheck::exact(1);
        seqs.iter().for_each(|&s| c.see(item(0, s)));
        assert!(c.finish(&[3], 0).is_err(), "{seqs:?} accepted");
    }
}

#[test]
fn lossy_check_needs_drops_to_account_for_every_item() {
    let run = || {
        let mut c = SeqCheck::lossy(1);
        [0u64, 1, 5, 9].iter().for_each(|&s| c.see(item(0, s)));
        c
    };
    assert_eq!(run().finish(&[10], 6), Ok(4));
    // One item neither delivered nor counted as dropped.
    assert!(run().finish(&[10], 5).is_err());
    let mut c = SeqCheck::lossy(1);
    [0u64, 3, 2].iter().for_each(|&s| c.see(item(0, s)));
    assert!(c.finish(&[10], 7).is_err(), "reorder accepted");
}

#[test]
fn record_check_rejects_a_torn_record_and_a_short_total() {
    let plan = Plan::new(1, 50_000, 7);
    let records = plan.records();
    let mut buf = vec![0u8; 10_000];
    let mut feed = |c: &mut RecordCheck, skip_last: bool, tear: bool| {
        let n = plan.sizes[0].len();
        for (seq, &len) in plan.sizes[0].iter().enumerate() {
            if skip_last && seq == n - 1 {
                break;
            }
            let r = &mut buf[..len as usize];
            stamp(r, 0, seq as u64);
            let mut r = r.to_vec();
            if tear && seq == 1 {
                let last = r.len() - 1;
                r[last] ^= 0xFF;
            }
            c.see(&r);
        }
    };
    let mut ok = RecordCheck::exact(1);
    feed(&mut ok, false, false);
    assert_eq!(ok.finish(&records, plan.bytes()), Ok(plan.bytes()));
    let mut lost = RecordCheck::exact(1);
    feed(&mut lost, true, false);
    assert!(lost.finish(&records, plan.bytes()).is_err());
    let mut torn = RecordCheck::exact(1);
    feed(&mut torn, false, true);
    assert!(torn.finish(&records, plan.bytes()).is_err());
}

#[test]
fn a_failed_check_becomes_an_error_row_without_figures() {
    let settings = Settings {
        runs: 3,
        quick: true,
        scale: 1.0,
        work_dir: std::env::temp_dir(),
        cores: 2,
        only: None,
    };
    let mut b = Bench::new(settings, false);
    b.scenario("unit");
    let case = |name: &str, role| Case::new("g", name, role, Unit::ItemsPerSec, 2);
    b.case(case("peer", Role::Peer), || {
        Ok(Measured::rate(100, std::time::Duration::from_secs(1)))
    });
    let mut run = 0;
    b.case(case("short", Role::Ringlog), || {
        run += 1;
        let mut c = SeqCheck::exact(1);
        // The second run delivers one item fewer than it sent.
        let delivered = if run == 2 { 9 } else { 10 };
        (0..delivered).for_each(|s| c.see(item(0, s)));
        let n = c.finish(&[10], 0)?;
        Ok::<_, CheckError>(Measured::rate(n, std::time::Duration::from_secs(1)))
    });
    b.case(case("faster", Role::Ringlog), || {
        Ok(Measured::rate(200, std::time::Duration::from_secs(1)))
    });
    let rows = b.finish();
    assert!(rows[0].ok);
    let short = &rows[1];
    assert!(!short.ok);
    assert!(short.median.is_none() && short.vs_best_peer.is_none());
    assert!(short.error.as_deref().unwrap().contains("run 2"));
    assert_eq!(rows[2].vs_best_peer, Some(2.0));
}

fn settings(only: Option<&str>) -> Settings {
    Settings {
        runs: 3,
        quick: true,
        scale: 1.0,
        work_dir: std::env::temp_dir(),
        cores: 2,
        only: only.map(str::to_string),
    }
}

#[test]
fn rounds_interleave_the_cases_and_give_the_share_of_the_limit() {
    let mut b = Bench::new(settings(None), false);
    b.scenario("unit");
    let order = std::cell::RefCell::new(Vec::new());
    let case = |name: &str, role| Case::new("g", name, role, Unit::BytesPerSec, 1);
    let rate = |n| Measured::rate(n, std::time::Duration::from_secs(1));
    b.rounds(vec![
        (
            case("ours", Role::Ringlog),
            Box::new(|| {
                order.borrow_mut().push("ours");
                Ok(rate(90))
            }),
        ),
        (
            case("disk", Role::Limit),
            Box::new(|| {
                order.borrow_mut().push("disk");
                Ok(rate(100))
            }),
        ),
    ]);
    let rows = b.finish();
    assert_eq!(
        *order.borrow(),
        ["ours", "disk", "ours", "disk", "ours", "disk"]
    );
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0].runs, 3);
    assert_eq!(rows[0].vs_limit, Some(0.9));
}

#[test]
fn only_runs_the_cases_it_names() {
    let mut b = Bench::new(settings(Some("append")), false);
    b.scenario("unit");
    let mut ran = Vec::new();
    for name in ["append at 1 writer", "push"] {
        b.case(Case::new("g", name, Role::Ringlog, Unit::Nanos, 1), || {
            ran.push(name);
            Ok(Measured::nanos(1.0))
        });
    }
    let rows = b.finish();
    assert_eq!(ran, ["append at 1 writer"; 3]);
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].name, "append at 1 writer");
}
