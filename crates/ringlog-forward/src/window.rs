//! The window of unacknowledged publishes and the cursor rule.
//!
//! Records enter in journal order and get consecutive ids. An
//! acknowledgement may arrive for any of them; the committed cursor moves
//! only over a prefix of acknowledged records: it is the cursor after the
//! last record whose acknowledgement, and every earlier one's, arrived. A
//! failed publish stays in the window (and stops the prefix) until a retry
//! is acknowledged.

use std::collections::VecDeque;

use ringlog::journal::Cursor;

/// Where a record of the window stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SlotState {
    /// Published, no answer yet.
    InFlight,
    /// Acknowledged by the server.
    Acked,
    /// The publish or its acknowledgement failed; to be published again.
    Failed,
}

#[derive(Debug)]
struct Slot<T> {
    cursor: Cursor,
    state: SlotState,
    item: T,
}

/// Records published and not yet all acknowledged, in journal order.
///
/// `front_id` is the id of `slots[0]`; ids are consecutive, so the slot of
/// id `i` is `slots[i - front_id]`.
#[derive(Debug)]
pub struct AckWindow<T> {
    front_id: u64,
    slots: VecDeque<Slot<T>>,
    committed: Option<Cursor>,
    /// Slots in [`SlotState::Failed`]: asked about before every publish,
    /// so counted rather than searched for.
    failed: usize,
}

impl<T> AckWindow<T> {
    /// An empty window whose committed cursor is `start` (`None`: nothing
    /// committed yet).
    pub fn new(start: Option<Cursor>) -> Self {
        Self {
            front_id: 0,
            slots: VecDeque::new(),
            committed: start,
            failed: 0,
        }
    }

    /// Adds the next record (`cursor` is the cursor after it) and returns
    /// its id.
    pub fn push(&mut self, cursor: Cursor, item: T) -> u64 {
        self.slots.push_back(Slot {
            cursor,
            state: SlotState::InFlight,
            item,
        });
        self.front_id + self.slots.len() as u64 - 1
    }

    fn slot_mut(&mut self, id: u64) -> Option<&mut Slot<T>> {
        let i = usize::try_from(id.checked_sub(self.front_id)?).ok()?;
        self.slots.get_mut(i)
    }

    /// Marks `id` acknowledged and moves the committed cursor over the
    /// acknowledged prefix. Returns how many records left the window. An
    /// id that is not in the window (already committed) changes nothing.
    pub fn ack(&mut self, id: u64) -> usize {
        if let Some(s) = self.slot_mut(id) {
            let was = std::mem::replace(&mut s.state, SlotState::Acked);
            if was == SlotState::Failed {
                self.failed -= 1;
            }
        }
        let mut popped = 0;
        while self
            .slots
            .front()
            .is_some_and(|s| s.state == SlotState::Acked)
        {
            let s = self.slots.pop_front().expect("front checked");
            self.committed = Some(s.cursor);
            self.front_id += 1;
            popped += 1;
        }
        popped
    }

    /// Marks `id` failed: it must be published again; the committed cursor
    /// stays before it until then.
    pub fn fail(&mut self, id: u64) {
        if let Some(s) = self.slot_mut(id) {
            if s.state == SlotState::InFlight {
                s.state = SlotState::Failed;
                self.failed += 1;
            }
        }
    }

    /// Whether any record waits for a retry.
    pub fn has_failed(&self) -> bool {
        self.failed > 0
    }

    /// The ids of the records waiting for a retry, oldest first.
    pub fn failed_ids(&self) -> Vec<u64> {
        (self.front_id..)
            .zip(&self.slots)
            .filter(|(_, s)| s.state == SlotState::Failed)
            .map(|(id, _)| id)
            .collect()
    }

    /// The record of `id`, if it is in the window.
    pub fn item(&self, id: u64) -> Option<&T> {
        let i = usize::try_from(id.checked_sub(self.front_id)?).ok()?;
        self.slots.get(i).map(|s| &s.item)
    }

    /// The record of `id`, mutable, if it is in the window.
    pub fn item_mut(&mut self, id: u64) -> Option<&mut T> {
        self.slot_mut(id).map(|s| &mut s.item)
    }

    /// Marks a failed `id` in flight again (published once more).
    pub fn resend(&mut self, id: u64) {
        if let Some(s) = self.slot_mut(id) {
            if s.state == SlotState::Failed {
                s.state = SlotState::InFlight;
                self.failed -= 1;
            }
        }
    }

    /// The state of `id`, if it is in the window.
    pub fn state(&self, id: u64) -> Option<SlotState> {
        let i = usize::try_from(id.checked_sub(self.front_id)?).ok()?;
        self.slots.get(i).map(|s| s.state)
    }

    /// The cursor after the last record whose acknowledgement and every
    /// earlier one's arrived (or the starting cursor).
    pub fn committed(&self) -> Option<&Cursor> {
        self.committed.as_ref()
    }

    /// Records in the window.
    pub fn len(&self) -> usize {
        self.slots.len()
    }

    /// Whether the window is empty.
    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ringlog::journal::{LastRecord, SegmentStamp};

    fn cursor(n: u64) -> Cursor {
        Cursor {
            segment: 0,
            offset: 64 + n * 32,
            stamp: SegmentStamp {
                created_unix_nanos: 1,
                base_position: 0,
                header_len: 64,
            },
            last: Some(LastRecord {
                offset: 64 + (n - 1) * 32,
                producer: 1,
                seq: n,
                crc: 0,
            }),
        }
    }

    #[test]
    fn no_advance_without_an_acknowledgement() {
        let mut w = AckWindow::new(None);
        let ids: Vec<u64> = (1..=4).map(|n| w.push(cursor(n), n)).collect();
        assert_eq!(w.committed(), None);
        // Later acknowledgements arriving first move nothing.
        assert_eq!(w.ack(ids[2]), 0);
        assert_eq!(w.ack(ids[1]), 0);
        assert_eq!(w.committed(), None);
        // The first one moves the cursor over the whole acknowledged prefix.
        assert_eq!(w.ack(ids[0]), 3);
        assert_eq!(w.committed(), Some(&cursor(3)));
        assert_eq!(w.len(), 1);
        // A failure holds the cursor until its retry is acknowledged.
        let id5 = w.push(cursor(5), 5);
        w.fail(ids[3]);
        assert_eq!(w.ack(id5), 0);
        assert!(w.has_failed());
        assert_eq!(w.failed_ids(), vec![ids[3]]);
        assert_eq!(w.committed(), Some(&cursor(3)));
        assert_eq!(w.item(ids[3]), Some(&4));
        w.resend(ids[3]);
        assert_eq!(w.state(ids[3]), Some(SlotState::InFlight));
        assert!(!w.has_failed());
        assert_eq!(w.committed(), Some(&cursor(3)));
        assert_eq!(w.ack(ids[3]), 2);
        assert_eq!(w.committed(), Some(&cursor(5)));
        assert!(w.is_empty());
        // An id already committed changes nothing.
        assert_eq!(w.ack(ids[0]), 0);
        assert_eq!(w.committed(), Some(&cursor(5)));
    }

    #[test]
    fn a_lost_publish_holds_the_cursor_behind_later_acknowledgements() {
        let mut w = AckWindow::new(None);
        let ids: Vec<u64> = (1..=5).map(|n| w.push(cursor(n), n)).collect();
        assert_eq!(w.ack(ids[0]), 1);
        // The second times out while the three after it are acknowledged.
        w.fail(ids[1]);
        for &id in &ids[2..] {
            assert_eq!(w.ack(id), 0);
        }
        assert_eq!(w.committed(), Some(&cursor(1)));
        assert!(w.has_failed());
        assert_eq!(w.failed_ids(), vec![ids[1]]);
        // A second failure report of the same record counts once.
        w.fail(ids[1]);
        w.resend(ids[1]);
        assert!(!w.has_failed());
        // Its retry failing again keeps it failed, then its acknowledgement
        // moves the cursor over it and the acknowledged records after it.
        w.fail(ids[1]);
        assert!(w.has_failed());
        w.resend(ids[1]);
        assert_eq!(w.committed(), Some(&cursor(1)));
        assert_eq!(w.ack(ids[1]), 4);
        assert_eq!(w.committed(), Some(&cursor(5)));
        assert!(!w.has_failed() && w.is_empty());
    }

    #[test]
    fn starts_from_the_given_cursor() {
        let mut w = AckWindow::new(Some(cursor(7)));
        let id = w.push(cursor(8), ());
        w.fail(id);
        assert_eq!(w.committed(), Some(&cursor(7)));
        assert_eq!(w.state(id), Some(SlotState::Failed));
    }
}
