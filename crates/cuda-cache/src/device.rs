//! One device's cache: PyTorch's DeviceCachingAllocator, as bookkeeping that
//! asks `policy` what to do.
//!
//! Read [`DeviceCache::malloc`] for the whole story: process finished
//! events, round, pick a pool, best fit (the fast path), else the retry
//! ladder of [`DeviceCache::malloc_slow`]; then split. [`DeviceCache::free`]
//! is the mirror: free now, or after the events of the streams that used
//! the block; a block freed for good merges with free neighbours.
//!
//! States of a block: *allocated* (in `live`) → *pending* (freed by the
//! caller, events outstanding: in no index but `pending`) → *free* (in its
//! pool). A free block that is a whole segment can go back to the device.
//!
//! Invariants ([`DeviceCache::check_invariants`] asserts them all):
//! - the blocks of every segment tile it, linked by prev/next, the first
//!   one being the segment's `head`;
//! - a block is in `live` iff allocated, in its pool iff not active
//!   (allocated, events pending or stream uses), in `pending` as many times
//!   as its `event_count`;
//! - two neighbours are never both free (they merge);
//! - `reserved == Σ segment sizes` (≤ `allowed` when a fraction is set, at
//!   the time each segment was made), and the stats agree with the blocks:
//!   reserved, allocated, active, requested bytes and the counts of
//!   allocations, segments and free pieces of split segments.

use std::collections::{BTreeMap, VecDeque};

use hashbrown::HashMap;

use crate::backend::{Backend, BackendError, EventId, Stream};
use crate::config::AllocatorConfig;
use crate::error::CacheError;
use crate::history::{Action, History};
use crate::oom::{self, OomFacts};
use crate::policy::{self, PoolKind, ROUNDUP_INTERVALS, UNLIMITED_SPLIT};
use crate::pool::{Block, BlockId, BlockPool, Blocks};
use crate::stats::{DeviceStats, SplitChange, StatType};

/// A segment: one device allocation.
pub(crate) struct Segment {
    pub size: u64,
    /// Its first block.
    pub head: BlockId,
    pub stream: Stream,
    pub pool: PoolKind,
}

/// What a snapshot shows of a block.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BlockView {
    pub size: u64,
    pub requested: u64,
    pub allocated: bool,
    pub active: bool,
}

/// What a snapshot shows of a segment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SegmentView {
    pub address: u64,
    pub total_size: u64,
    pub stream: Stream,
    pub pool: PoolKind,
    pub blocks: Vec<BlockView>,
}

/// One device's cache. All methods run under the device's lock.
pub(crate) struct DeviceCache {
    device: usize,
    max_split_size: u64,
    divisions: [u32; ROUNDUP_INTERVALS],
    gc_threshold: f64,
    caching: bool,
    blocks: Blocks,
    /// Free blocks, [small, large].
    pools: [BlockPool; 2],
    /// Allocated blocks by address.
    live: HashMap<u64, BlockId>,
    /// Segments by start address.
    segments: BTreeMap<u64, Segment>,
    /// Events of freed blocks still in use by other streams, FIFO per stream
    /// (PyTorch's cuda_events).
    pending: BTreeMap<Stream, VecDeque<(EventId, BlockId)>>,
    pub stats: DeviceStats,
    /// Bytes of all segments (PyTorch's total_allocated_memory).
    reserved: u64,
    /// The memory-fraction limit (allowed_memory_maximum), when set.
    allowed: Option<u64>,
    pub history: History,
}

fn pool_index(kind: PoolKind) -> usize {
    match kind {
        PoolKind::Small => 0,
        PoolKind::Large => 1,
    }
}

impl DeviceCache {
    pub fn new(device: usize, config: &AllocatorConfig) -> DeviceCache {
        let mut history = History::default();
        if config.history_max_entries > 0 {
            history.set(true, config.history_max_entries);
        }
        DeviceCache {
            device,
            max_split_size: config.max_split_size,
            divisions: config.roundup_power2_divisions,
            gc_threshold: config.garbage_collection_threshold,
            caching: config.caching,
            blocks: Blocks::default(),
            pools: [BlockPool::default(), BlockPool::default()],
            live: HashMap::new(),
            segments: BTreeMap::new(),
            pending: BTreeMap::new(),
            stats: DeviceStats::new(config.max_split_size),
            reserved: 0,
            allowed: None,
            history,
        }
    }

    /// Garbage collection runs only with a memory fraction and a threshold.
    fn gc_enabled(&self) -> bool {
        self.allowed.is_some() && self.gc_threshold > 0.0
    }

    // ----- malloc -------------------------------------------------------------------

    /// Hands out a block of at least `size` bytes for `stream` (0 bytes: the
    /// null pointer, as PyTorch).
    #[inline]
    pub fn malloc(&mut self, backend: &dyn Backend, size: u64, stream: Stream) -> Result<u64, CacheError> {
        if size == 0 {
            return Ok(0);
        }
        if !self.pending.is_empty() {
            self.process_events(backend)?;
        }
        let rounded = policy::round_size(size, &self.divisions);
        let pool = policy::pool_for(rounded);
        let id = match self.take_free_block(pool, stream, rounded) {
            Some(id) => id,
            None => self.malloc_slow(backend, rounded, pool, stream)?,
        };
        Ok(self.hand_out(id, rounded, size, pool))
    }

    /// get_free_block: best fit in the pool, within the oversize guards.
    #[inline]
    fn take_free_block(&mut self, pool: PoolKind, stream: Stream, rounded: u64) -> Option<BlockId> {
        let gc = self.gc_enabled();
        let p = &mut self.pools[pool_index(pool)];
        if gc {
            p.lookups += 1;
        }
        let id = p.best_fit(stream, rounded)?;
        let block = self.blocks.get(id);
        if !policy::may_take(rounded, block.size, self.max_split_size) {
            return None;
        }
        p.remove(block);
        Some(id)
    }

    /// No cached block fits: PyTorch's ladder, one rung at a time.
    #[cold]
    #[inline(never)]
    fn malloc_slow(
        &mut self,
        backend: &dyn Backend,
        rounded: u64,
        pool: PoolKind,
        stream: Stream,
    ) -> Result<BlockId, CacheError> {
        if !self.caching {
            // Pass-through: the device, exactly what was asked (rounded to
            // 512), every time.
            return match self.alloc_segment(backend, pool, stream, rounded, false)? {
                Some(id) => Ok(id),
                None => Err(self.out_of_memory(backend, rounded, stream)),
            };
        }
        let alloc_size = policy::segment_size(rounded);
        // 1. Free old cached blocks when reserved memory passed
        //    garbage_collection_threshold of the allowed fraction.
        if self.gc_enabled() {
            self.garbage_collect(backend)?;
        }
        // 2. A new segment from the device.
        if let Some(id) = self.alloc_segment(backend, pool, stream, alloc_size, false)? {
            return Ok(id);
        }
        // 3. Give back cached oversize blocks (only with max_split_size), try again.
        if self.release_available_cached_blocks(backend, pool, stream, rounded)? {
            if let Some(id) = self.alloc_segment(backend, pool, stream, alloc_size, false)? {
                return Ok(id);
            }
        }
        // 4. Wait for every pending event, give back every cached segment,
        //    try once more (a retry: num_alloc_retries).
        self.release_cached_blocks(backend)?;
        if let Some(id) = self.alloc_segment(backend, pool, stream, alloc_size, true)? {
            return Ok(id);
        }
        // 5. Out of memory.
        Err(self.out_of_memory(backend, alloc_size, stream))
    }

    /// The end of malloc: split off what is not needed, mark allocated, count.
    #[inline]
    fn hand_out(&mut self, id: BlockId, rounded: u64, requested: u64, pool: PoolKind) -> u64 {
        let block = self.blocks.get(id);
        let (block_size, already_split) = (block.size, block.is_split());
        let mut split = SplitChange::default();
        if policy::should_split(pool, block_size, rounded, self.max_split_size) {
            self.split(id, rounded);
            split = if already_split {
                // A free piece of a split segment shrinks by what is taken.
                SplitChange { blocks: 0, bytes: -(rounded as i64) }
            } else {
                // A whole segment becomes split: its remainder is a free piece.
                SplitChange { blocks: 1, bytes: (block_size - rounded) as i64 }
            };
        } else if already_split {
            // A free piece of a split segment is taken whole.
            split = SplitChange { blocks: -1, bytes: -(block_size as i64) };
        }
        let block = self.blocks.get_mut(id);
        block.allocated = true;
        block.requested = requested;
        let (addr, size, stream) = (block.addr, block.size, block.stream);
        self.live.insert(addr, id);
        self.stats.on_alloc(pool, size, requested, policy::is_oversize(size, self.max_split_size), split);
        self.history.record(Action::Alloc, addr, size, stream);
        addr
    }

    /// Cuts block `id` to `front` bytes; the rest becomes a free block after it.
    fn split(&mut self, id: BlockId, front: u64) {
        let block = self.blocks.get_mut(id);
        let rest = Block {
            addr: block.addr + front,
            size: block.size - front,
            requested: 0,
            stream: block.stream,
            pool: block.pool,
            allocated: false,
            prev: Some(id),
            next: block.next,
            event_count: 0,
            stream_uses: Vec::new(),
            gc_count_base: 0,
        };
        block.size = front;
        let (pool, old_next) = (rest.pool, rest.next);
        let rest_id = self.blocks.add(rest);
        self.blocks.get_mut(id).next = Some(rest_id);
        if let Some(n) = old_next {
            self.blocks.get_mut(n).prev = Some(rest_id);
        }
        self.pools[pool_index(pool)].insert(rest_id, self.blocks.get_mut(rest_id));
    }

    /// alloc_block: a new segment of `size` bytes from the device, or None
    /// when the fraction or the device has no room.
    fn alloc_segment(
        &mut self,
        backend: &dyn Backend,
        pool: PoolKind,
        stream: Stream,
        size: u64,
        is_retry: bool,
    ) -> Result<Option<BlockId>, CacheError> {
        if is_retry {
            self.stats.num_alloc_retries += 1;
        }
        if self.allowed.is_some_and(|allowed| self.reserved.saturating_add(size) > allowed) {
            return Ok(None);
        }
        let addr = match backend.malloc(self.device, size) {
            Ok(addr) => addr,
            Err(BackendError::OutOfMemory) => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        self.reserved += size;
        let id = self.blocks.add(Block {
            addr,
            size,
            requested: 0,
            stream,
            pool,
            allocated: false,
            prev: None,
            next: None,
            event_count: 0,
            stream_uses: Vec::new(),
            gc_count_base: 0,
        });
        self.segments.insert(addr, Segment { size, head: id, stream, pool });
        self.stats.on_segment_alloc(pool, size, policy::is_oversize(size, self.max_split_size));
        self.history.record(Action::SegmentAlloc, addr, size, stream);
        Ok(Some(id))
    }

    /// The OOM error: counted, traced, and PyTorch's message.
    #[cold]
    fn out_of_memory(&mut self, backend: &dyn Backend, alloc_size: u64, stream: Stream) -> CacheError {
        let (device_free, device_total) = backend.mem_info(self.device).unwrap_or((0, 0));
        self.stats.num_ooms += 1;
        self.history.record(Action::Oom, device_free, alloc_size, stream);
        CacheError::OutOfMemory(oom::message(&OomFacts {
            device: self.device,
            alloc_size,
            device_total,
            device_free,
            allowed: self.allowed,
            allocated: self.stats.allocated_bytes.get(StatType::All).current as u64,
            reserved: self.stats.reserved_bytes.get(StatType::All).current as u64,
        }))
    }

    // ----- free ---------------------------------------------------------------------

    /// The caller is done with the block at `ptr`. It goes back to its pool
    /// now, or, if other streams used it, once their events complete.
    #[inline]
    pub fn free(&mut self, backend: &dyn Backend, ptr: u64) -> Result<(), CacheError> {
        let Some(id) = self.live.remove(&ptr) else {
            return Err(self.bad_pointer(ptr));
        };
        let block = self.blocks.get_mut(id);
        block.allocated = false;
        let (pool, size, stream, used_elsewhere) =
            (block.pool, block.size, block.stream, !block.stream_uses.is_empty());
        self.stats.on_free_requested(pool, size, policy::is_oversize(size, self.max_split_size));
        self.history.record(Action::FreeRequested, ptr, size, stream);
        if used_elsewhere {
            self.insert_events(backend, id)
        } else {
            self.free_block(backend, id)
        }
    }

    /// Whether `ptr` belongs to this device (allocated, or inside a segment).
    pub fn owns(&self, ptr: u64) -> bool {
        self.live.contains_key(&ptr) || self.segment_containing(ptr).is_some()
    }

    pub fn is_live(&self, ptr: u64) -> bool {
        self.live.contains_key(&ptr)
    }

    fn segment_containing(&self, ptr: u64) -> Option<(&u64, &Segment)> {
        self.segments.range(..=ptr).next_back().filter(|(start, seg)| ptr - **start < seg.size)
    }

    /// Why `ptr` is not a live block: freed (a double free), inside a block,
    /// or unknown.
    #[cold]
    pub fn bad_pointer(&self, ptr: u64) -> CacheError {
        let Some((_, segment)) = self.segment_containing(ptr) else {
            return CacheError::InvalidPointer(format!(
                "{ptr:#x} is not a pointer of this cache (never handed out, or its segment was given back)"
            ));
        };
        let mut cursor = Some(segment.head);
        while let Some(id) = cursor {
            let b = self.blocks.get(id);
            if ptr >= b.addr && ptr < b.addr + b.size {
                if b.addr == ptr && !b.allocated {
                    return CacheError::DoubleFree(format!(
                        "double free: block {ptr:#x} of device {} is not allocated (already freed, or a free part of a cached segment)",
                        self.device
                    ));
                }
                return CacheError::InvalidPointer(format!(
                    "{ptr:#x} is inside a block of device {} ({:#x}, {} bytes), not the start of an allocated one",
                    self.device, b.addr, b.size
                ));
            }
            cursor = b.next;
        }
        CacheError::InvalidPointer(format!("{ptr:#x} is not a pointer of this cache"))
    }

    /// record_stream: the block is also used on `stream`; its free will wait
    /// for that stream. Uses on the allocation stream need nothing.
    pub fn record_stream(&mut self, ptr: u64, stream: Stream) -> Result<(), CacheError> {
        let Some(&id) = self.live.get(&ptr) else {
            return Err(self.bad_pointer(ptr));
        };
        let block = self.blocks.get_mut(id);
        if stream != block.stream && !block.stream_uses.contains(&stream) {
            block.stream_uses.push(stream);
        }
        Ok(())
    }

    /// insert_events: one event per stream that used the block; the block
    /// is freed when the last completes. If the driver cannot record an
    /// event, the device is synchronized instead and the block freed now.
    fn insert_events(&mut self, backend: &dyn Backend, id: BlockId) -> Result<(), CacheError> {
        let uses = std::mem::take(&mut self.blocks.get_mut(id).stream_uses);
        let mut failure = None;
        for stream in uses {
            match backend.record_event(self.device, stream) {
                Ok(event) => {
                    self.blocks.get_mut(id).event_count += 1;
                    self.pending.entry(stream).or_default().push_back((event, id));
                }
                Err(e) => failure = Some(e),
            }
        }
        if let Some(e) = failure {
            backend.synchronize(self.device).map_err(|_| CacheError::from(e))?;
        }
        if self.blocks.get(id).event_count == 0 {
            self.free_block(backend, id)?;
        }
        Ok(())
    }

    /// process_events: frees the blocks whose events completed, in FIFO
    /// order per stream (a stream's first unfinished event stops its queue).
    pub fn process_events(&mut self, backend: &dyn Backend) -> Result<(), CacheError> {
        let streams: Vec<Stream> = self.pending.keys().copied().collect();
        for stream in streams {
            while let Some(&(event, id)) = self.pending.get(&stream).and_then(|q| q.front()) {
                if !backend.event_completed(self.device, event)? {
                    break;
                }
                self.pending.get_mut(&stream).expect("queue").pop_front();
                self.event_done(backend, event, id)?;
            }
            if self.pending.get(&stream).is_some_and(|q| q.is_empty()) {
                self.pending.remove(&stream);
            }
        }
        Ok(())
    }

    fn event_done(&mut self, backend: &dyn Backend, event: EventId, id: BlockId) -> Result<(), CacheError> {
        backend.destroy_event(self.device, event);
        let block = self.blocks.get_mut(id);
        block.event_count -= 1;
        if block.event_count == 0 {
            self.free_block(backend, id)?;
        }
        Ok(())
    }

    /// synchronize_and_free_events: waits for every pending event and frees
    /// its block (num_sync_all_streams).
    fn synchronize_and_free_events(&mut self, backend: &dyn Backend) -> Result<(), CacheError> {
        self.stats.num_sync_all_streams += 1;
        while let Some(mut queue) = self.pending.first_entry() {
            let Some((event, id)) = queue.get_mut().pop_front() else {
                queue.remove();
                continue;
            };
            if let Err(e) = backend.wait_event(self.device, event) {
                queue.get_mut().push_front((event, id));
                return Err(e.into());
            }
            self.event_done(backend, event, id)?;
        }
        Ok(())
    }

    /// free_block: back to the pool, merged with free neighbours.
    fn free_block(&mut self, backend: &dyn Backend, id: BlockId) -> Result<(), CacheError> {
        let block = self.blocks.get(id);
        let (addr, size, requested, pool, stream) = (block.addr, block.size, block.requested, block.pool, block.stream);
        let (prev, next) = (block.prev, block.next);
        let mut split = SplitChange::default();
        for neighbour in [prev, next] {
            let subsumed = self.try_merge(id, neighbour);
            if subsumed > 0 {
                split.blocks -= 1;
                split.bytes -= subsumed as i64;
            }
        }
        let block = self.blocks.get_mut(id);
        if block.is_split() {
            split.blocks += 1;
            split.bytes += block.size as i64;
        }
        self.pools[pool_index(pool)].insert(id, block);
        self.stats.on_free_completed(pool, size, requested, split);
        self.history.record(Action::FreeCompleted, addr, size, stream);
        if !self.caching && !self.blocks.get(id).is_split() {
            self.release_segment(backend, id)?;
        }
        Ok(())
    }

    /// try_merge_blocks: absorbs `neighbour` into `id` if it is free;
    /// returns the bytes absorbed (0 if not merged).
    fn try_merge(&mut self, id: BlockId, neighbour: Option<BlockId>) -> u64 {
        let Some(src_id) = neighbour else { return 0 };
        let src = self.blocks.get(src_id);
        if src.is_active() {
            return 0;
        }
        self.pools[pool_index(src.pool)].remove(src);
        let src = self.blocks.remove(src_id);
        let dst = self.blocks.get_mut(id);
        if dst.prev == Some(src_id) {
            dst.addr = src.addr;
            dst.prev = src.prev;
            match src.prev {
                Some(p) => self.blocks.get_mut(p).next = Some(id),
                None => self.segments.get_mut(&src.addr).expect("a segment's head").head = id,
            }
        } else {
            dst.next = src.next;
            if let Some(n) = src.next {
                self.blocks.get_mut(n).prev = Some(id);
            }
        }
        self.blocks.get_mut(id).size += src.size;
        src.size
    }

    // ----- giving memory back -------------------------------------------------------

    /// release_block: a free whole segment goes back to the device.
    fn release_segment(&mut self, backend: &dyn Backend, id: BlockId) -> Result<(), CacheError> {
        let block = self.blocks.get(id);
        debug_assert!(!block.is_split() && !block.is_active());
        let (addr, size, pool, stream) = (block.addr, block.size, block.pool, block.stream);
        backend.free(self.device, addr)?;
        self.pools[pool_index(pool)].remove(self.blocks.get(id));
        self.blocks.remove(id);
        self.segments.remove(&addr);
        self.reserved -= size;
        self.stats.on_segment_free(pool, size, policy::is_oversize(size, self.max_split_size));
        self.history.record(Action::SegmentFree, addr, size, stream);
        Ok(())
    }

    /// release_available_cached_blocks (rung 3): with max_split_size set,
    /// give back one cached oversize block big enough for the request, or
    /// else several, largest first, until as many bytes are free.
    fn release_available_cached_blocks(
        &mut self,
        backend: &dyn Backend,
        pool: PoolKind,
        stream: Stream,
        rounded: u64,
    ) -> Result<bool, CacheError> {
        if self.max_split_size == UNLIMITED_SPLIT {
            return Ok(false);
        }
        let wanted = rounded.max(self.max_split_size);
        let p = &self.pools[pool_index(pool)];
        if let Some(id) = p.best_fit(stream, wanted) {
            // One block is big enough. (An oversize free block is always a
            // whole segment: oversize blocks are never split, and a split
            // segment's free pieces are below max_split_size.)
            if self.blocks.get(id).is_split() {
                return Ok(false);
            }
            self.release_segment(backend, id)?;
            return Ok(true);
        }
        let candidates: Vec<(u64, BlockId)> =
            p.below(stream, wanted).take_while(|&(size, _)| size >= self.max_split_size).collect();
        let mut released = 0;
        for (size, id) in candidates {
            if released >= wanted {
                break;
            }
            if !self.blocks.get(id).is_split() {
                self.release_segment(backend, id)?;
                released += size;
            }
        }
        Ok(released >= wanted)
    }

    /// release_cached_blocks (empty_cache): wait for pending events, then
    /// give back every free whole segment. A segment holding any live block
    /// stays.
    pub fn release_cached_blocks(&mut self, backend: &dyn Backend) -> Result<(), CacheError> {
        self.synchronize_and_free_events(backend)?;
        for kind in [PoolKind::Large, PoolKind::Small] {
            for id in self.pools[pool_index(kind)].ids() {
                if !self.blocks.get(id).is_split() {
                    self.release_segment(backend, id)?;
                }
            }
        }
        Ok(())
    }

    /// garbage_collect_cached_blocks (rung 1): when reserved memory is
    /// above threshold × allowed, give back whole free large segments not
    /// reused for at least the average age (in pool lookups), oldest first
    /// by rounds, until enough is back or nothing more can go.
    fn garbage_collect(&mut self, backend: &dyn Backend) -> Result<(), CacheError> {
        let Some(allowed) = self.allowed else { return Ok(()) };
        let threshold = (self.gc_threshold * allowed as f64) as u64;
        if self.reserved <= threshold {
            return Ok(());
        }
        let target = self.reserved - threshold;
        let large = pool_index(PoolKind::Large);
        let lookups = self.pools[large].lookups;
        let age = |b: &Block| lookups - b.gc_count_base;
        let (mut total_age, mut freeable) = (0u64, 0u64);
        for id in self.pools[large].ids() {
            let b = self.blocks.get(id);
            if !b.is_split() {
                total_age += age(b);
                freeable += 1;
            }
        }
        let mut reclaimed = 0;
        let mut freed_one = true;
        while reclaimed < target && freed_one && freeable > 0 {
            let age_threshold = total_age as f64 / freeable as f64;
            freed_one = false;
            for id in self.pools[large].ids() {
                let b = self.blocks.get(id);
                if !b.is_split() && age(b) as f64 >= age_threshold {
                    freed_one = true;
                    reclaimed += b.size;
                    total_age -= age(b);
                    freeable -= 1;
                    self.release_segment(backend, id)?;
                }
            }
        }
        Ok(())
    }

    /// Gives every segment back, live blocks included: the device is
    /// synchronized, every allocated block is freed as the caller would
    /// (stats and history say so), then every segment goes. Returns the
    /// bytes given back.
    pub fn release_all(&mut self, backend: &dyn Backend) -> Result<u64, CacheError> {
        backend.synchronize(self.device)?;
        let before = self.reserved;
        let mut live: Vec<u64> = self.live.keys().copied().collect();
        live.sort_unstable();
        for ptr in live {
            // The device is idle: uses on other streams are over.
            let id = self.live[&ptr];
            self.blocks.get_mut(id).stream_uses.clear();
            self.free(backend, ptr)?;
        }
        self.release_cached_blocks(backend)?;
        debug_assert!(self.segments.is_empty());
        Ok(before - self.reserved)
    }

    /// set_memory_fraction: reserved bytes may not pass fraction × total.
    pub fn set_memory_fraction(&mut self, backend: &dyn Backend, fraction: f64) -> Result<(), CacheError> {
        if !(0.0..=1.0).contains(&fraction) {
            return Err(CacheError::InvalidArgument(format!("invalid fraction:{fraction}. Please set within [0, 1].")));
        }
        let (_, total) = backend.mem_info(self.device)?;
        self.allowed = Some((fraction * total as f64) as u64);
        Ok(())
    }

    pub fn allowed(&self) -> Option<u64> {
        self.allowed
    }

    pub fn max_split_size(&self) -> u64 {
        self.max_split_size
    }

    pub fn garbage_collection_threshold(&self) -> f64 {
        self.gc_threshold
    }

    pub fn roundup_power2_divisions(&self) -> [u32; ROUNDUP_INTERVALS] {
        self.divisions
    }

    /// Segments in address order, each with its blocks (PyTorch's snapshot).
    pub fn segments(&self) -> Vec<SegmentView> {
        self.segments
            .iter()
            .map(|(&address, seg)| {
                let mut blocks = Vec::new();
                let mut cursor = Some(seg.head);
                while let Some(id) = cursor {
                    let b = self.blocks.get(id);
                    blocks.push(BlockView {
                        size: b.size,
                        requested: b.requested,
                        allocated: b.allocated,
                        active: b.is_active(),
                    });
                    cursor = b.next;
                }
                SegmentView { address, total_size: seg.size, stream: seg.stream, pool: seg.pool, blocks }
            })
            .collect()
    }

    /// Asserts every invariant of the module docs.
    pub fn check_invariants(&self) {
        let (mut allocated, mut active, mut requested, mut reserved) = (0i64, 0i64, 0i64, 0u64);
        let (mut free_split_pieces, mut free_split_bytes, mut blocks_seen) = (0i64, 0i64, 0usize);
        for (&start, seg) in &self.segments {
            reserved += seg.size;
            let mut cursor = Some(seg.head);
            let mut expected_addr = start;
            let mut prev: Option<BlockId> = None;
            let mut prev_free = false;
            while let Some(id) = cursor {
                let b = self.blocks.get(id);
                blocks_seen += 1;
                assert_eq!(b.addr, expected_addr, "blocks tile their segment");
                assert_eq!(b.prev, prev, "prev links");
                assert_eq!(b.stream, seg.stream);
                assert_eq!(b.pool, seg.pool);
                assert_eq!(self.live.get(&b.addr) == Some(&id), b.allocated, "live iff allocated");
                let in_pool = self.pools[pool_index(b.pool)].contains(b);
                assert_eq!(in_pool, !b.is_active(), "in its pool iff not active ({:#x})", b.addr);
                assert!(!(in_pool && prev_free), "free neighbours merge");
                let queued = self.pending.values().flatten().filter(|(_, q)| *q == id).count();
                assert_eq!(queued, b.event_count as usize, "pending events");
                if b.allocated {
                    allocated += b.size as i64;
                }
                if b.is_active() {
                    active += b.size as i64;
                    requested += b.requested as i64;
                }
                if in_pool && b.is_split() {
                    free_split_pieces += 1;
                    free_split_bytes += b.size as i64;
                }
                prev_free = in_pool;
                expected_addr += b.size;
                prev = Some(id);
                cursor = b.next;
            }
            assert_eq!(expected_addr, start + seg.size, "segment end");
        }
        assert_eq!(blocks_seen, self.blocks.len(), "every block is in a segment");
        assert_eq!(
            self.pools[0].len() + self.pools[1].len(),
            self.blocks.len() - self.live.len() - self.pending_blocks()
        );
        assert_eq!(reserved, self.reserved);
        let all = |a: &crate::stats::StatArray| a.get(StatType::All).current;
        let s = &self.stats;
        assert_eq!(all(&s.reserved_bytes), reserved as i64, "reserved_bytes");
        assert_eq!(all(&s.segment), self.segments.len() as i64, "segment");
        assert_eq!(all(&s.allocated_bytes), allocated, "allocated_bytes");
        assert_eq!(all(&s.allocation), self.live.len() as i64, "allocation");
        assert_eq!(all(&s.active_bytes), active, "active_bytes");
        assert_eq!(all(&s.requested_bytes), requested, "requested_bytes");
        assert_eq!(all(&s.inactive_split), free_split_pieces, "inactive_split");
        assert_eq!(all(&s.inactive_split_bytes), free_split_bytes, "inactive_split_bytes");
        s.check_invariants();
    }

    fn pending_blocks(&self) -> usize {
        let mut ids: Vec<BlockId> = self.pending.values().flatten().map(|(_, id)| *id).collect();
        ids.sort_unstable();
        ids.dedup();
        ids.len()
    }
}
