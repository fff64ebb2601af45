//! A segment mapped and validated: the geometry in private memory, typed
//! access to the header, the doorbell, the slots and their rings.

use super::doorbell::Doorbell;
use super::error::{SegmentKind, ShmError};
use super::header::{self, Geometry, SharedHeader, DOORBELL_OFFSET, HEADER_LEN, SLOT_HEADER_LEN};
use super::identity::{Liveness, ProcessIdentity};
use super::mapping::{Mapping, ShmRegion};
use super::segment::Segment;
use super::slot::SlotHeader;
use crate::ring::Ring;
use crate::sync::{Arc, Ordering};

/// A mapped segment whose header was validated once.
#[derive(Debug)]
pub(crate) struct Attached {
    map: Arc<Mapping>,
    geometry: Geometry,
    name: String,
}

impl Attached {
    /// Lays out a fresh segment: every ring's control block, then the
    /// header (magic last), naming `consumer` as the consumer. Returns the
    /// rings.
    pub(crate) fn create(
        segment: &Segment,
        mut geometry: Geometry,
        creator: ProcessIdentity,
    ) -> Result<(Self, Vec<Ring<ShmRegion>>), ShmError> {
        geometry.creator = creator.pack();
        let map = Arc::new(segment.map()?);
        let this = Self {
            map,
            geometry,
            name: segment.name().to_owned(),
        };
        let mut rings = Vec::with_capacity(geometry.slots);
        for i in 0..geometry.slots {
            // SAFETY: the segment is new (created exclusively or anonymous)
            // and nobody can use it before the magic is published below.
            rings.push(unsafe { Ring::init(this.ring_region(i), geometry.ring_capacity) });
        }
        // SAFETY: the doorbell's bytes lie inside the fresh, unshared mapping
        // and are aligned for a Doorbell (offset 256 of a page).
        unsafe {
            this.map
                .as_ptr()
                .add(DOORBELL_OFFSET)
                .cast::<Doorbell>()
                .write(Doorbell::new())
        };
        // No producer yet: free slots do not hold the consumer's sleeps
        // to a bound (the header's Release publish below orders this).
        for i in 0..geometry.slots {
            this.slot(i).bell.mark_retired();
        }
        this.header().publish(&geometry.raw(), creator.pack());
        Ok((this, rings))
    }

    /// Maps `segment`, snapshots and validates its header against the real
    /// size, and checks it holds rings of `kind`.
    pub(crate) fn open(segment: &Segment, kind: SegmentKind) -> Result<Self, ShmError> {
        let name = segment.name().to_owned();
        let header_error = |source| ShmError::Header {
            name: name.clone(),
            source,
        };
        if segment.len() < HEADER_LEN as u64 {
            return Err(header_error(super::HeaderError::TooSmall {
                actual: segment.len(),
                needed: HEADER_LEN as u64,
            }));
        }
        let map = Arc::new(segment.map()?);
        // SAFETY: the mapping holds at least HEADER_LEN bytes, page-aligned;
        // SharedHeader is atomics only, valid for every bit pattern.
        let shared = unsafe { &*map.as_ptr().cast::<SharedHeader>() };
        let geometry = header::validate(&shared.snapshot(), segment.len()).map_err(header_error)?;
        if geometry.kind != kind {
            return Err(ShmError::KindMismatch {
                name,
                expected: kind,
                found: geometry.kind,
            });
        }
        Ok(Self {
            map,
            geometry,
            name,
        })
    }

    pub(crate) fn name(&self) -> &str {
        &self.name
    }

    pub(crate) fn geometry(&self) -> &Geometry {
        &self.geometry
    }

    pub(crate) fn header(&self) -> &SharedHeader {
        // SAFETY: the mapping holds at least HEADER_LEN bytes (checked on
        // open, laid out on create); SharedHeader is atomics only.
        unsafe { &*self.map.as_ptr().cast::<SharedHeader>() }
    }

    pub(crate) fn doorbell(&self) -> &Doorbell {
        // SAFETY: DOORBELL_OFFSET + size_of::<Doorbell>() < SLOTS_OFFSET <=
        // total_len <= mapping length; aligned; Doorbell is atomics only.
        unsafe { &*self.map.as_ptr().add(DOORBELL_OFFSET).cast::<Doorbell>() }
    }

    /// Slot `i`'s header. `i < slots`.
    pub(crate) fn slot(&self, i: usize) -> &SlotHeader {
        assert!(i < self.geometry.slots);
        // SAFETY: slot i's offset + SLOT_HEADER_LEN <= total_len <= mapping
        // length (validated geometry); aligned to 128; atomics only.
        unsafe {
            &*self
                .map
                .as_ptr()
                .add(self.geometry.slot_offset(i))
                .cast::<SlotHeader>()
        }
    }

    /// The region of slot `i`'s ring. `i < slots`.
    pub(crate) fn ring_region(&self, i: usize) -> ShmRegion {
        assert!(i < self.geometry.slots);
        let offset = self.geometry.slot_offset(i) + SLOT_HEADER_LEN;
        let len = Ring::<ShmRegion>::region_len(self.geometry.ring_capacity);
        ShmRegion::new(self.map.clone(), offset, len)
    }

    /// Attaches to slot `i`'s ring, validating its control block.
    pub(crate) fn attach_ring(&self, i: usize) -> Result<Ring<ShmRegion>, ShmError> {
        // SAFETY: the region holds region_len(capacity) bytes of the
        // validated geometry, and a Control laid out by the creator (any bit
        // pattern is memory-safe; the indices are checked by `attach`).
        unsafe { Ring::attach(self.ring_region(i), self.geometry.ring_capacity) }.map_err(
            |source| ShmError::Corrupt {
                name: self.name.clone(),
                slot: i,
                source,
            },
        )
    }

    /// The consumer named in the header, if any.
    pub(crate) fn consumer(&self) -> Option<ProcessIdentity> {
        ProcessIdentity::unpack(self.header().consumer.load(Ordering::Relaxed))
    }

    /// Whether the consumer is gone: closed cleanly or dead.
    pub(crate) fn consumer_gone(&self) -> bool {
        self.consumer()
            .is_none_or(|c| c.liveness() == Liveness::Dead)
    }

    /// Makes `me` the consumer: when there is none, or, with `take_over`,
    /// when the one named is dead (the generation is bumped then).
    pub(crate) fn claim_consumer(
        &self,
        me: ProcessIdentity,
        take_over: bool,
    ) -> Result<(), ShmError> {
        let h = self.header();
        // Bounded: a peer rewriting the word cannot keep us here.
        for _ in 0..super::slot::CAS_ATTEMPTS {
            let cur = h.consumer.load(Ordering::Relaxed);
            if let Some(owner) = ProcessIdentity::unpack(cur) {
                if owner.liveness() == Liveness::Alive {
                    return Err(ShmError::Busy {
                        name: self.name.clone(),
                        role: "consumer".into(),
                        owner,
                    });
                }
                if !take_over {
                    return Err(ShmError::Stale {
                        name: self.name.clone(),
                        owner,
                    });
                }
            }
            // Acquire: pairs with the Release in `release_consumer`, so the
            // previous consumer's tail stores happen before our reads.
            if h.consumer
                .compare_exchange(cur, me.pack(), Ordering::Acquire, Ordering::Relaxed)
                .is_ok()
            {
                if cur != 0 {
                    h.generation.fetch_add(1, Ordering::Relaxed);
                }
                return Ok(());
            }
        }
        Err(ShmError::Busy {
            name: self.name.clone(),
            role: "consumer (its word keeps changing)".into(),
            owner: self.consumer().unwrap_or(me),
        })
    }

    /// Gives the consumer role back, if `me` still holds it.
    pub(crate) fn release_consumer(&self, me: u64) {
        // Release: pairs with the Acquire CAS in `claim_consumer`.
        let _ =
            self.header()
                .consumer
                .compare_exchange(me, 0, Ordering::Release, Ordering::Relaxed);
    }

    /// Check that a producer may join: a segment whose consumer died is
    /// stale (a closed one is fine: a later consumer reads what we write).
    pub(crate) fn check_not_stale(&self) -> Result<(), ShmError> {
        match self.consumer() {
            Some(owner) if owner.liveness() == Liveness::Dead => Err(ShmError::Stale {
                name: self.name.clone(),
                owner,
            }),
            _ => Ok(()),
        }
    }
}
