//! Simulated devices: a set capacity and a fake address space, with no host
//! memory spent on device bytes. Device mallocs and frees are counted;
//! events complete when the device is synchronized or when a test says so,
//! so deferred frees, OOM and fragmentation reproduce exactly as on a GPU.
//!
//! Invariants (per device): `used == Σ live sizes <= capacity`; the live
//! ranges and the free ranges of the address space tile
//! `[base, base + ADDRESS_SPAN)` without overlap; addresses are handed out
//! lowest-first, so a freed range is the next one given out, as a driver
//! often does.

use std::collections::BTreeMap;

use hashbrown::HashMap;

use crate::backend::{Backend, BackendError, EventId, Stream};
use crate::sync::{Mutex, MutexGuard};

/// Address space per device: 1 TiB, far above any capacity, so that only
/// the capacity limits allocations (a GPU maps physical pages into a large
/// virtual space; its free memory is what counts, not contiguity).
const ADDRESS_SPAN: u64 = 1 << 40;
/// Device 0's first address; device d starts d spans later.
const BASE: u64 = 0x7f00_0000_0000;
/// Device allocations are aligned like cudaMalloc's (and rounded to it).
const ALIGN: u64 = 512;

struct SimDevice {
    capacity: u64,
    used: u64,
    /// start -> length of each free range of the address space.
    free_ranges: BTreeMap<u64, u64>,
    /// start -> length of each live allocation.
    live: HashMap<u64, u64>,
    mallocs: u64,
    frees: u64,
    /// event id -> (the stream it was recorded on, completed).
    events: HashMap<u64, (Stream, bool)>,
    next_event: u64,
    /// Streams created and not destroyed.
    streams: Vec<Stream>,
    next_stream: Stream,
}

/// Host-side fake devices.
pub struct Simulated {
    devices: Vec<Mutex<SimDevice>>,
}

impl Simulated {
    /// `count` devices of `capacity` bytes each.
    pub fn new(count: usize, capacity: u64) -> Simulated {
        let devices = (0..count)
            .map(|d| {
                let base = BASE + d as u64 * ADDRESS_SPAN;
                Mutex::new(SimDevice {
                    capacity: capacity.min(ADDRESS_SPAN),
                    used: 0,
                    free_ranges: BTreeMap::from([(base, ADDRESS_SPAN)]),
                    live: HashMap::new(),
                    mallocs: 0,
                    frees: 0,
                    events: HashMap::new(),
                    next_event: 1,
                    streams: Vec::new(),
                    // Stream handles look like pointers on a GPU; small
                    // distinct numbers per device are enough here.
                    next_stream: (d as u64 + 1) << 32 | 1,
                })
            })
            .collect();
        Simulated { devices }
    }

    fn dev(&self, device: usize) -> Result<MutexGuard<'_, SimDevice>, BackendError> {
        let d =
            self.devices.get(device).ok_or_else(|| BackendError::NoDevice(format!("no simulated device {device}")))?;
        // A panic while holding this lock left consistent state (every
        // update below is a single step); take it back.
        Ok(d.lock().unwrap_or_else(|e| e.into_inner()))
    }

    /// Device mallocs so far.
    pub fn device_mallocs(&self, device: usize) -> u64 {
        self.dev(device).map(|d| d.mallocs).unwrap_or(0)
    }

    /// Device frees so far.
    pub fn device_frees(&self, device: usize) -> u64 {
        self.dev(device).map(|d| d.frees).unwrap_or(0)
    }

    /// Bytes allocated on the device now.
    pub fn used(&self, device: usize) -> u64 {
        self.dev(device).map(|d| d.used).unwrap_or(0)
    }

    /// Completes every outstanding event of the device, as if its streams
    /// ran to their end (what a test calls to end a kernel).
    pub fn complete_events(&self, device: usize) {
        if let Ok(mut d) = self.dev(device) {
            d.events.values_mut().for_each(|(_, done)| *done = true);
        }
    }

    /// Completes the events recorded on one stream, as if that stream alone
    /// ran to its end.
    pub fn complete_stream(&self, device: usize, stream: Stream) {
        if let Ok(mut d) = self.dev(device) {
            d.events.values_mut().filter(|(s, _)| *s == stream).for_each(|(_, done)| *done = true);
        }
    }

    /// Events recorded and not yet destroyed.
    pub fn outstanding_events(&self, device: usize) -> usize {
        self.dev(device).map(|d| d.events.len()).unwrap_or(0)
    }
}

impl Backend for Simulated {
    fn name(&self) -> &'static str {
        "simulated"
    }

    fn device_count(&self) -> usize {
        self.devices.len()
    }

    fn malloc(&self, device: usize, size: u64) -> Result<u64, BackendError> {
        let mut d = self.dev(device)?;
        let size = size.max(1).checked_next_multiple_of(ALIGN).ok_or(BackendError::OutOfMemory)?;
        if size > d.capacity - d.used {
            return Err(BackendError::OutOfMemory);
        }
        let (start, len) = d
            .free_ranges
            .iter()
            .find(|(_, len)| **len >= size)
            .map(|(s, l)| (*s, *l))
            .ok_or(BackendError::OutOfMemory)?;
        d.free_ranges.remove(&start);
        if len > size {
            d.free_ranges.insert(start + size, len - size);
        }
        d.live.insert(start, size);
        d.used += size;
        d.mallocs += 1;
        Ok(start)
    }

    fn free(&self, device: usize, ptr: u64) -> Result<(), BackendError> {
        let mut d = self.dev(device)?;
        let size = d.live.remove(&ptr).ok_or_else(|| {
            BackendError::Device(format!("simulated device {device}: free of unknown address {ptr:#x}"))
        })?;
        d.used -= size;
        d.frees += 1;
        // Give the range back, merged with free neighbours.
        let mut start = ptr;
        let mut len = size;
        if let Some((&prev, &prev_len)) = d.free_ranges.range(..ptr).next_back() {
            if prev + prev_len == ptr {
                d.free_ranges.remove(&prev);
                start = prev;
                len += prev_len;
            }
        }
        if let Some(next_len) = d.free_ranges.remove(&(ptr + size)) {
            len += next_len;
        }
        d.free_ranges.insert(start, len);
        Ok(())
    }

    fn mem_info(&self, device: usize) -> Result<(u64, u64), BackendError> {
        let d = self.dev(device)?;
        Ok((d.capacity - d.used, d.capacity))
    }

    fn create_stream(&self, device: usize) -> Result<Stream, BackendError> {
        let mut d = self.dev(device)?;
        let s = d.next_stream;
        d.next_stream += 1;
        d.streams.push(s);
        Ok(s)
    }

    fn destroy_stream(&self, device: usize, stream: Stream) -> Result<(), BackendError> {
        let mut d = self.dev(device)?;
        let i =
            d.streams.iter().position(|s| *s == stream).ok_or_else(|| {
                BackendError::Device(format!("simulated device {device}: unknown stream {stream:#x}"))
            })?;
        d.streams.swap_remove(i);
        Ok(())
    }

    fn record_event(&self, device: usize, stream: Stream) -> Result<EventId, BackendError> {
        let mut d = self.dev(device)?;
        let id = d.next_event;
        d.next_event += 1;
        d.events.insert(id, (stream, false));
        Ok(EventId(id))
    }

    fn event_completed(&self, device: usize, event: EventId) -> Result<bool, BackendError> {
        let d = self.dev(device)?;
        d.events
            .get(&event.0)
            .map(|(_, done)| *done)
            .ok_or_else(|| BackendError::Device(format!("unknown event {}", event.0)))
    }

    fn wait_event(&self, device: usize, event: EventId) -> Result<(), BackendError> {
        // Waiting on the host means the stream got there.
        let mut d = self.dev(device)?;
        match d.events.get_mut(&event.0) {
            Some((_, done)) => {
                *done = true;
                Ok(())
            }
            None => Err(BackendError::Device(format!("unknown event {}", event.0))),
        }
    }

    fn destroy_event(&self, device: usize, event: EventId) {
        if let Ok(mut d) = self.dev(device) {
            d.events.remove(&event.0);
        }
    }

    fn synchronize(&self, device: usize) -> Result<(), BackendError> {
        self.dev(device)?.events.values_mut().for_each(|(_, done)| *done = true);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capacity_limits_and_freed_addresses_come_back_first() {
        let sim = Simulated::new(2, 10 << 20);
        let a = sim.malloc(0, 4 << 20).unwrap();
        let b = sim.malloc(0, 4 << 20).unwrap();
        assert_eq!(b, a + (4 << 20));
        assert_eq!(sim.malloc(0, 4 << 20), Err(BackendError::OutOfMemory));
        assert_eq!(sim.mem_info(0).unwrap(), (2 << 20, 10 << 20));
        sim.free(0, a).unwrap();
        assert_eq!(sim.malloc(0, 2 << 20).unwrap(), a);
        assert!(sim.free(0, a + 512).is_err());
        assert_eq!((sim.device_mallocs(0), sim.device_frees(0)), (3, 1));
        // Device 1 has its own space.
        assert_ne!(sim.malloc(1, 512).unwrap() >> 40, a >> 40);
        assert!(matches!(sim.malloc(2, 512), Err(BackendError::NoDevice(_))));
    }

    #[test]
    fn events_complete_on_synchronize() {
        let sim = Simulated::new(1, 1 << 30);
        let s = sim.create_stream(0).unwrap();
        let e = sim.record_event(0, s).unwrap();
        assert!(!sim.event_completed(0, e).unwrap());
        sim.synchronize(0).unwrap();
        assert!(sim.event_completed(0, e).unwrap());
        sim.destroy_event(0, e);
        assert_eq!(sim.outstanding_events(0), 0);
        sim.destroy_stream(0, s).unwrap();
        assert!(sim.destroy_stream(0, s).is_err());
    }
}
