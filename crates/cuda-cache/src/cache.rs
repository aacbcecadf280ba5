//! The public cache: one [`DeviceCache`] per device, each behind its own
//! lock, over one backend. Calls for different devices run in parallel;
//! calls for one device take turns. A pointer's device is found by asking
//! each device in turn (devices are few; with one device this is a single
//! lookup).

use std::sync::Arc;

use crate::backend::{Backend, Stream};
use crate::config::AllocatorConfig;
use crate::device::{DeviceCache, SegmentView};
use crate::error::CacheError;
use crate::history::TraceEntry;
use crate::report;
use crate::stats::{DeviceStats, StatType};
use crate::sync::{Mutex, MutexGuard};

/// PyTorch's CUDA caching allocator over a [`Backend`].
pub struct CachingAllocator {
    backend: Arc<dyn Backend>,
    devices: Box<[Mutex<DeviceCache>]>,
}

impl CachingAllocator {
    /// A cache over every device of `backend`. With `config.memory_fraction`
    /// set, each device gets that fraction (an invalid one is refused).
    pub fn new(backend: Arc<dyn Backend>, config: &AllocatorConfig) -> Result<CachingAllocator, CacheError> {
        let count = backend.device_count();
        let mut devices = Vec::with_capacity(count);
        for d in 0..count {
            let mut dev = DeviceCache::new(d, config);
            if let Some(fraction) = config.memory_fraction {
                dev.set_memory_fraction(backend.as_ref(), fraction)?;
            }
            devices.push(Mutex::new(dev));
        }
        Ok(CachingAllocator { backend, devices: devices.into_boxed_slice() })
    }

    /// The backend's name: "simulated" or "driver".
    pub fn backend_name(&self) -> &'static str {
        self.backend.name()
    }

    pub fn device_count(&self) -> usize {
        self.devices.len()
    }

    #[inline]
    fn device(&self, device: usize) -> Result<MutexGuard<'_, DeviceCache>, CacheError> {
        match self.devices.get(device) {
            Some(d) => d.lock().map_err(|_| poisoned(device)),
            None => Err(self.no_such_device(device)),
        }
    }

    #[cold]
    fn no_such_device(&self, device: usize) -> CacheError {
        CacheError::InvalidDevice(format!(
            "invalid device index {device}: the {} backend has {} device(s)",
            self.backend.name(),
            self.devices.len()
        ))
    }

    /// Checks a device index from C (negative included).
    pub fn check_device(&self, device: i64) -> Result<usize, CacheError> {
        match usize::try_from(device) {
            Ok(d) if d < self.devices.len() => Ok(d),
            _ => Err(CacheError::InvalidDevice(format!(
                "invalid device index {device}: the {} backend has {} device(s)",
                self.backend.name(),
                self.devices.len()
            ))),
        }
    }

    /// `size` bytes on `device` for use on `stream`; 0 bytes gives 0.
    #[inline]
    pub fn malloc(&self, device: usize, size: u64, stream: Stream) -> Result<u64, CacheError> {
        self.device(device)?.malloc(self.backend.as_ref(), size, stream)
    }

    /// Frees a pointer `malloc` gave; 0 is fine. Unknown and interior
    /// pointers are `InvalidPointer`, freed ones `DoubleFree`; nothing
    /// changes then.
    #[inline]
    pub fn free(&self, ptr: u64) -> Result<(), CacheError> {
        if ptr == 0 {
            return Ok(());
        }
        for d in 0..self.devices.len() {
            let mut dev = self.device(d)?;
            if dev.is_live(ptr) {
                return dev.free(self.backend.as_ref(), ptr);
            }
        }
        Err(self.bad_pointer(ptr))
    }

    #[cold]
    fn bad_pointer(&self, ptr: u64) -> CacheError {
        for d in 0..self.devices.len() {
            if let Ok(dev) = self.device(d) {
                if dev.owns(ptr) {
                    return dev.bad_pointer(ptr);
                }
            }
        }
        CacheError::InvalidPointer(format!(
            "{ptr:#x} is not a pointer of this cache (never handed out, or its segment was given back)"
        ))
    }

    /// The block at `ptr` is also used on `stream`: its free waits for it.
    pub fn record_stream(&self, ptr: u64, stream: Stream) -> Result<(), CacheError> {
        for d in 0..self.devices.len() {
            let mut dev = self.device(d)?;
            if dev.is_live(ptr) {
                return dev.record_stream(ptr, stream);
            }
        }
        Err(self.bad_pointer(ptr))
    }

    /// Waits for the device (the simulated one completes every event), then
    /// frees the blocks whose events completed — which PyTorch does at the
    /// next malloc; the figures after that malloc are the same.
    pub fn synchronize(&self, device: usize) -> Result<(), CacheError> {
        let mut dev = self.device(device)?;
        self.backend.synchronize(device)?;
        dev.process_events(self.backend.as_ref())
    }

    /// empty_cache on every device: gives back each cached segment that no
    /// block uses.
    pub fn empty_cache(&self) -> Result<(), CacheError> {
        for d in 0..self.devices.len() {
            self.device(d)?.release_cached_blocks(self.backend.as_ref())?;
        }
        Ok(())
    }

    /// The device's statistics.
    pub fn stats(&self, device: usize) -> Result<DeviceStats, CacheError> {
        Ok(self.device(device)?.stats.clone())
    }

    /// allocated_bytes.all.current (torch.cuda.memory_allocated).
    pub fn memory_allocated(&self, device: usize) -> Result<u64, CacheError> {
        Ok(self.device(device)?.stats.allocated_bytes.get(StatType::All).current as u64)
    }

    /// allocated_bytes.all.peak.
    pub fn max_memory_allocated(&self, device: usize) -> Result<u64, CacheError> {
        Ok(self.device(device)?.stats.allocated_bytes.get(StatType::All).peak as u64)
    }

    /// reserved_bytes.all.current (torch.cuda.memory_reserved; the old
    /// memory_cached).
    pub fn memory_reserved(&self, device: usize) -> Result<u64, CacheError> {
        Ok(self.device(device)?.stats.reserved_bytes.get(StatType::All).current as u64)
    }

    /// reserved_bytes.all.peak.
    pub fn max_memory_reserved(&self, device: usize) -> Result<u64, CacheError> {
        Ok(self.device(device)?.stats.reserved_bytes.get(StatType::All).peak as u64)
    }

    /// reset_peak_memory_stats.
    pub fn reset_peak_stats(&self, device: usize) -> Result<(), CacheError> {
        self.device(device)?.stats.reset_peak();
        Ok(())
    }

    /// reset_accumulated_memory_stats.
    pub fn reset_accumulated_stats(&self, device: usize) -> Result<(), CacheError> {
        self.device(device)?.stats.reset_accumulated();
        Ok(())
    }

    /// torch.cuda.memory_stats(): flat keys joined with '.', sorted.
    pub fn memory_stats(&self, device: usize) -> Result<Vec<(String, i64)>, CacheError> {
        Ok(report::flat_stats(&self.device(device)?.stats))
    }

    /// memory_stats as a JSON object.
    pub fn memory_stats_json(&self, device: usize) -> Result<String, CacheError> {
        Ok(report::stats_json(&self.memory_stats(device)?))
    }

    /// torch.cuda.memory_summary(device, abbreviated).
    pub fn memory_summary(&self, device: usize, abbreviated: bool) -> Result<String, CacheError> {
        let stats = self.memory_stats(device)?;
        Ok(report::summary(device, &stats, abbreviated))
    }

    /// _record_memory_history(enabled, max_entries) on every device;
    /// disabling clears the history.
    pub fn record_history(&self, enabled: bool, max_entries: usize) -> Result<(), CacheError> {
        for d in 0..self.devices.len() {
            self.device(d)?.history.set(enabled, max_entries);
        }
        Ok(())
    }

    /// The history of one device, oldest first.
    pub fn history(&self, device: usize) -> Result<Vec<TraceEntry>, CacheError> {
        Ok(self.device(device)?.history.entries_in_order())
    }

    /// One device's segments in address order, each with its blocks (what
    /// the snapshot's `segments` list holds, as data: for reports that draw
    /// them).
    pub fn segments(&self, device: usize) -> Result<Vec<SegmentView>, CacheError> {
        Ok(self.device(device)?.segments())
    }

    /// torch.cuda.memory_snapshot() as JSON: segments, device_traces,
    /// allocator_settings.
    pub fn snapshot_json(&self) -> Result<String, CacheError> {
        let mut per_device: Vec<(Vec<SegmentView>, Vec<TraceEntry>)> = Vec::new();
        let mut settings = None;
        for d in 0..self.devices.len() {
            let dev = self.device(d)?;
            if settings.is_none() {
                settings = Some(report::Settings {
                    max_split_size: dev.max_split_size(),
                    garbage_collection_threshold: dev.garbage_collection_threshold(),
                    roundup_power2_divisions: dev.roundup_power2_divisions(),
                });
            }
            per_device.push((dev.segments(), dev.history.entries_in_order()));
        }
        Ok(report::snapshot_json(&per_device, settings.as_ref()))
    }

    /// set_per_process_memory_fraction: reserved bytes may not pass
    /// fraction × total; a fraction outside [0, 1] is refused.
    pub fn set_memory_fraction(&self, device: usize, fraction: f64) -> Result<(), CacheError> {
        self.device(device)?.set_memory_fraction(self.backend.as_ref(), fraction)
    }

    /// The limit of the memory fraction, when set.
    pub fn allowed_memory(&self, device: usize) -> Result<Option<u64>, CacheError> {
        Ok(self.device(device)?.allowed())
    }

    /// Gives every segment of the device back, live blocks included, and
    /// returns the bytes. Pointers handed out before are unknown after.
    pub fn release_all(&self, device: usize) -> Result<u64, CacheError> {
        self.device(device)?.release_all(self.backend.as_ref())
    }

    /// (free, total) bytes of the device: what nvidia-smi shows.
    pub fn mem_get_info(&self, device: usize) -> Result<(u64, u64), CacheError> {
        let _dev = self.device(device)?;
        Ok(self.backend.mem_info(device)?)
    }

    /// A new stream on the device.
    pub fn create_stream(&self, device: usize) -> Result<Stream, CacheError> {
        let _dev = self.device(device)?;
        Ok(self.backend.create_stream(device)?)
    }

    /// Destroys a stream made by `create_stream`.
    pub fn destroy_stream(&self, device: usize, stream: Stream) -> Result<(), CacheError> {
        let _dev = self.device(device)?;
        Ok(self.backend.destroy_stream(device, stream)?)
    }

    /// Asserts every device's invariants (tests).
    pub fn check_invariants(&self) {
        for d in 0..self.devices.len() {
            self.device(d).expect("a healthy device").check_invariants();
        }
    }
}

impl Drop for CachingAllocator {
    /// Every segment goes back to the device (live blocks too), so that a
    /// dropped cache leaves nothing behind on a real GPU.
    fn drop(&mut self) {
        for d in 0..self.devices.len() {
            if let Ok(mut dev) = self.devices[d].lock() {
                let _ = dev.release_all(self.backend.as_ref());
            }
        }
    }
}

#[cold]
fn poisoned(device: usize) -> CacheError {
    CacheError::Poisoned(format!(
        "device {device}: an earlier call panicked inside the cache (a bug in pymem); the device refuses every call"
    ))
}
