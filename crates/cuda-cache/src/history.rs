//! The allocation history (`_record_memory_history`): a ring buffer of trace
//! entries per device, oldest dropped first when full.

use std::time::{SystemTime, UNIX_EPOCH};

use crate::backend::Stream;

/// A trace entry's action, with PyTorch's names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    Alloc,
    FreeRequested,
    FreeCompleted,
    SegmentAlloc,
    SegmentFree,
    Oom,
}

impl Action {
    pub fn name(self) -> &'static str {
        match self {
            Action::Alloc => "alloc",
            Action::FreeRequested => "free_requested",
            Action::FreeCompleted => "free_completed",
            Action::SegmentAlloc => "segment_alloc",
            Action::SegmentFree => "segment_free",
            Action::Oom => "oom",
        }
    }
}

/// One event of the history.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TraceEntry {
    pub action: Action,
    /// The block or segment address; for `Oom` the device's free bytes
    /// (PyTorch's `device_free` key).
    pub addr: u64,
    pub size: u64,
    pub stream: Stream,
    /// Microseconds since the Unix epoch.
    pub time_us: u64,
}

/// The ring buffer. Off (capacity 0) until enabled.
#[derive(Default)]
pub(crate) struct History {
    entries: Vec<TraceEntry>,
    /// Where the next entry goes once the buffer is full.
    next: usize,
    capacity: usize,
}

impl History {
    /// PyTorch's recordHistory: enabling keeps what is there and sets the
    /// size (at least 1); disabling clears the buffer.
    pub fn set(&mut self, enabled: bool, max_entries: usize) {
        if enabled {
            let capacity = max_entries.max(1);
            if capacity != self.capacity {
                let kept = self.entries_in_order();
                let skip = kept.len().saturating_sub(capacity);
                self.entries = kept.into_iter().skip(skip).collect();
                self.next = 0;
                self.capacity = capacity;
            }
        } else {
            *self = History::default();
        }
    }

    #[inline]
    pub fn record(&mut self, action: Action, addr: u64, size: u64, stream: Stream) {
        if self.capacity == 0 {
            return;
        }
        self.push(action, addr, size, stream);
    }

    #[cold]
    fn push(&mut self, action: Action, addr: u64, size: u64, stream: Stream) {
        let time_us = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_micros() as u64).unwrap_or(0);
        let entry = TraceEntry { action, addr, size, stream, time_us };
        if self.entries.len() < self.capacity {
            self.entries.push(entry);
        } else {
            self.entries[self.next] = entry;
            self.next = (self.next + 1) % self.capacity;
        }
    }

    /// Oldest first.
    pub fn entries_in_order(&self) -> Vec<TraceEntry> {
        let (newer, older) = self.entries.split_at(self.next.min(self.entries.len()));
        older.iter().chain(newer).cloned().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ring_keeps_the_newest_entries_in_order() {
        let mut h = History::default();
        h.record(Action::Alloc, 1, 1, 0);
        assert!(h.entries_in_order().is_empty(), "off by default");
        h.set(true, 3);
        for a in 1..=5 {
            h.record(Action::Alloc, a, 512, 0);
        }
        let addrs: Vec<u64> = h.entries_in_order().iter().map(|e| e.addr).collect();
        assert_eq!(addrs, [3, 4, 5]);
        h.set(true, 2);
        let addrs: Vec<u64> = h.entries_in_order().iter().map(|e| e.addr).collect();
        assert_eq!(addrs, [4, 5]);
        h.set(false, 0);
        assert!(h.entries_in_order().is_empty());
    }
}
