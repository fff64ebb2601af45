//! Opening a segment that is not what it should be gives a typed error
//! naming what is wrong: bad magic, bad version, too small, wrong kind,
//! permission denied.
#![cfg(all(target_os = "linux", not(loom), not(miri)))]

use ringlog::shm::{mpsc, spsc, HeaderError, Segment, ShmError, MAGIC};
use std::io::{Seek, SeekFrom, Write};
use std::os::unix::fs::OpenOptionsExt;

fn unique(tag: &str) -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    format!(
        "/ringlog-mismatch-{tag}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// The segment's file under /dev/shm, opened for writing as a hostile
/// process would.
fn file(name: &str) -> std::fs::File {
    std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(format!("/dev/shm{name}"))
        .unwrap()
}

fn poke(name: &str, offset: u64, bytes: &[u8]) {
    let mut f = file(name);
    f.seek(SeekFrom::Start(offset)).unwrap();
    f.write_all(bytes).unwrap();
}

/// A closed segment: the consumer dropped, so only the header matters.
fn closed_segment(tag: &str) -> String {
    let name = unique(tag);
    drop(spsc::create(&name, 4096).unwrap());
    name
}

#[test]
fn bad_magic() {
    let name = closed_segment("magic");
    poke(&name, 0, &0xdead_beef_u64.to_ne_bytes());
    let e = spsc::connect(&name).unwrap_err();
    assert!(
        matches!(
            e,
            ShmError::Header {
                source: HeaderError::BadMagic {
                    found: 0xdead_beef,
                    expected: MAGIC
                },
                ..
            }
        ),
        "{e}"
    );
    assert!(e.to_string().contains(&name), "{e}");
    spsc::unlink(&name).unwrap();
}

#[test]
fn bad_version() {
    let name = closed_segment("version");
    poke(&name, 8, &77u32.to_ne_bytes());
    let e = spsc::connect(&name).unwrap_err();
    assert!(
        matches!(
            e,
            ShmError::Header {
                source: HeaderError::Version {
                    found: 77,
                    supported: ringlog::shm::VERSION
                },
                ..
            }
        ),
        "{e}"
    );
    spsc::unlink(&name).unwrap();
}

/// A segment made by a build of the previous layout (version 1: no
/// wake-up handshake in the rings' control blocks) is refused, never read
/// with this build's offsets.
#[test]
fn previous_layout_version_is_refused() {
    let name = closed_segment("version1");
    poke(&name, 8, &1u32.to_ne_bytes());
    let e = spsc::connect(&name).unwrap_err();
    assert!(
        matches!(
            e,
            ShmError::Header {
                source: HeaderError::Version {
                    found: 1,
                    supported: 2
                },
                ..
            }
        ),
        "{e}"
    );
    spsc::unlink(&name).unwrap();
}

#[test]
fn too_small_for_its_header() {
    let name = closed_segment("small");
    file(&name).set_len(1000).unwrap();
    let e = spsc::connect(&name).unwrap_err();
    assert!(
        matches!(
            e,
            ShmError::Header {
                source: HeaderError::TooSmall { actual: 1000, .. },
                ..
            }
        ),
        "{e}"
    );
    file(&name).set_len(10).unwrap();
    let e = spsc::open(&name, &Default::default()).unwrap_err();
    assert!(
        matches!(
            e,
            ShmError::Header {
                source: HeaderError::TooSmall { actual: 10, .. },
                ..
            }
        ),
        "{e}"
    );
    spsc::unlink(&name).unwrap();
}

#[test]
fn header_field_lies_about_geometry() {
    let name = closed_segment("geometry");
    // ring_capacity at offset 32: claim a ring 16 times larger.
    poke(&name, 32, &(4096u64 * 16).to_ne_bytes());
    let e = spsc::connect(&name).unwrap_err();
    assert!(
        matches!(
            e,
            ShmError::Header {
                source: HeaderError::Field { .. },
                ..
            }
        ),
        "{e}"
    );
    spsc::unlink(&name).unwrap();
}

#[test]
fn wrong_kind() {
    let name = closed_segment("kind");
    let e = mpsc::connect(&name).unwrap_err();
    assert!(matches!(e, ShmError::KindMismatch { .. }), "{e}");
    spsc::unlink(&name).unwrap();
}

#[test]
fn permission_denied_on_read_only_descriptor() {
    // Works as root too: a descriptor opened read-only cannot be mapped
    // for writing, whoever holds it.
    let name = closed_segment("readonly");
    let f = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(0)
        .open(format!("/dev/shm{name}"))
        .unwrap();
    let seg = Segment::from_fd(f.into(), &name).unwrap();
    let e = spsc::connect_segment(&seg, &Default::default()).unwrap_err();
    assert!(matches!(e, ShmError::PermissionDenied { .. }), "{e}");
    spsc::unlink(&name).unwrap();
}

#[test]
fn permission_denied_by_mode() {
    let name = closed_segment("mode");
    let seg = Segment::open(&name).unwrap();
    rustix::fs::fchmod(seg.fd(), rustix::fs::Mode::empty()).unwrap();
    if rustix::process::geteuid().is_root() {
        println!("skipped the mode check: running as root, which ignores permission bits");
        spsc::unlink(&name).unwrap();
        return;
    }
    let e = spsc::connect(&name).unwrap_err();
    assert!(matches!(e, ShmError::PermissionDenied { .. }), "{e}");
    spsc::unlink(&name).unwrap();
}

#[test]
fn created_with_mode_0600() {
    let name = closed_segment("perm");
    let meta = std::fs::metadata(format!("/dev/shm{name}")).unwrap();
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(meta.permissions().mode() & 0o777, 0o600);
    spsc::unlink(&name).unwrap();
}

#[test]
fn dead_consumer_makes_the_segment_stale_until_taken_over() {
    let name = unique("stale");
    drop(spsc::create(&name, 4096).unwrap());
    // Name a consumer that cannot exist (pid 2^22 - 1, tick 1).
    let dead: u64 = (1 << 22) | ((1 << 22) - 1);
    poke(&name, 88, &dead.to_ne_bytes());
    let e = spsc::connect(&name).unwrap_err();
    assert!(matches!(e, ShmError::Stale { .. }), "{e}");
    let e = spsc::open(&name, &Default::default()).unwrap_err();
    assert!(matches!(e, ShmError::Stale { .. }), "{e}");
    let _rx = spsc::take_over(&name, &Default::default()).unwrap();
    let _tx = spsc::connect(&name).unwrap();
    spsc::unlink(&name).unwrap();
}
