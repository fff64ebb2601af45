//! Retention deletes a segment's sparse index with the segment, so a
//! journal under retention does not collect orphan index files.

use ringlog::journal::{
    index_file_name, rebuild_index, segment_file_name, Journal, JournalOptions, Retention,
};

#[test]
fn retention_removes_the_index_of_each_deleted_segment() {
    let dir = tempfile::tempdir().unwrap();
    let options = JournalOptions {
        segment_bytes: 4096,
        retention: Retention {
            max_segments: Some(3),
            max_bytes: None,
        },
        ..Default::default()
    };
    let mut j = Journal::open(dir.path(), options).unwrap();
    let payload = [7u8; 500];
    for seq in 0..40 {
        j.append(0, seq, seq, &payload).unwrap();
    }
    j.sync().unwrap();
    let ix = rebuild_index(dir.path()).unwrap();
    assert!(ix.written >= 2, "{ix:?}");
    let first_before = j.current_segment() - 2;
    for seq in 40..120 {
        j.append(0, seq, seq, &payload).unwrap();
    }
    j.sync().unwrap();
    let oldest_kept = j.current_segment() - 2;
    assert!(oldest_kept > first_before);
    for n in 1..oldest_kept {
        assert!(
            !dir.path().join(segment_file_name(n)).exists(),
            "segment {n}"
        );
        assert!(
            !dir.path().join(index_file_name(n)).exists(),
            "index of deleted segment {n} left behind"
        );
    }
}
