//! [`import_stream`] against one real server: an import stopped half way
//! and resumed gives the journal that was forwarded, and a missing stream
//! or an existing journal is a typed error that touches nothing.

use crate::{client, common};

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use client::rt;
use common::write_journal;
use ringlog::journal::{verify, JournalOptions, Reader};
use ringlog_forward::{
    import_stream, Existing, ForwardError, ForwardOptions, Forwarder, ImportOptions, StreamSpec,
};

fn records(dir: &std::path::Path) -> Vec<(u32, u64, u64, Vec<u8>)> {
    Reader::open(dir)
        .unwrap()
        .map(|r| {
            let r = r.unwrap();
            (r.producer, r.seq, r.timestamp, r.payload)
        })
        .collect()
}

#[test]
fn a_stopped_import_resumes_to_the_forwarded_journal() {
    let Some(bin) = common::server_or_skip("a_stopped_import_resumes_to_the_forwarded_journal")
    else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let cluster = common::Cluster::start(&bin, &tmp.path().join("nats"), 1);
    let server = cluster.urls();
    let source = tmp.path().join("journal");
    write_journal(&source, JournalOptions::default(), 4, 1000, 0);
    let rt = rt();
    rt.block_on(
        Forwarder::new(ForwardOptions::new(
            &source,
            &server,
            StreamSpec::new("IMP"),
        ))
        .run(),
    )
    .unwrap();

    // Stopped once 1000 of the 4000 messages are read, with 64 KiB
    // batches so that some were written before.
    let out = tmp.path().join("imported");
    let stop = Arc::new(AtomicBool::new(false));
    let mut o = ImportOptions::new(&out, &server, StreamSpec::new("IMP"));
    o.batch_bytes = 64 << 10;
    o.stop = Some(Arc::clone(&stop));
    o.progress_interval = Duration::ZERO;
    let flag = Arc::clone(&stop);
    o.progress = Some(Box::new(move |r| {
        if r.messages >= 1000 {
            flag.store(true, Ordering::Relaxed);
        }
    }));
    let first = rt.block_on(import_stream(o)).unwrap();
    assert!(first.stopped && !first.is_clean(), "{first:?}");
    assert_eq!(first.stream_messages, 4000, "{first:?}");
    assert!(first.written >= 1000 && first.written < 4000, "{first:?}");
    assert!(verify(&out).unwrap().is_clean());

    // Without a flag the half-made journal is refused, untouched.
    let before = records(&out);
    let err = rt
        .block_on(import_stream(ImportOptions::new(
            &out,
            &server,
            StreamSpec::new("IMP"),
        )))
        .unwrap_err();
    assert!(
        matches!(err, ForwardError::JournalExists { files, .. } if files >= 1),
        "{err:?}"
    );
    assert_eq!(records(&out), before);

    let mut o = ImportOptions::new(&out, &server, StreamSpec::new("IMP"));
    o.existing = Existing::Resume;
    let second = rt.block_on(import_stream(o)).unwrap();
    assert!(second.is_clean(), "{second:?}");
    assert_eq!(second.journal_records_before, first.written, "{second:?}");
    assert_eq!(second.already_present, first.written, "{second:?}");
    assert_eq!(second.written, 4000 - first.written, "{second:?}");
    assert!(verify(&out).unwrap().is_clean());
    assert_eq!(records(&out), records(&source));

    // A stream that is not there: an error, and no directory made.
    let missing = tmp.path().join("never");
    let err = rt
        .block_on(import_stream(ImportOptions::new(
            &missing,
            &server,
            StreamSpec::new("NOPE"),
        )))
        .unwrap_err();
    assert!(
        matches!(err, ForwardError::Stream { op: "look up", .. }),
        "{err:?}"
    );
    assert!(std::error::Error::source(&err).is_some(), "{err:?}");
    assert!(!missing.exists());
}
