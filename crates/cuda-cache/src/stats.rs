//! DeviceStats with PyTorch's names and update rules
//! (c10/core/CachingDeviceAllocator.h).
//!
//! A [`Stat`] is {current, peak, allocated, freed}: `increase(n)` adds to
//! current and allocated and lifts peak; `decrease(n)` takes from current
//! and adds to freed. A [`StatArray`] holds one per [`StatType`]: all,
//! small_pool, large_pool. Every change goes through the `on_*` methods
//! below, one per event of a block's life, so the accounting rules are
//! written once.
//!
//! Invariants (checked by the allocator's `check_invariants`): for each
//! array, `all == small_pool + large_pool` in every field; every current is
//! >= 0; `allocated - freed == current`.

use crate::policy::PoolKind;

/// One counter: PyTorch's `Stat`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stat {
    pub current: i64,
    pub peak: i64,
    pub allocated: i64,
    pub freed: i64,
}

impl Stat {
    fn increase(&mut self, n: i64) {
        self.current += n;
        self.peak = self.peak.max(self.current);
        self.allocated += n;
    }

    fn decrease(&mut self, n: i64) {
        self.current -= n;
        self.freed += n;
    }

    /// A signed change: an increase or a decrease, as PyTorch applies net changes.
    fn change(&mut self, delta: i64) {
        if delta > 0 {
            self.increase(delta);
        } else if delta < 0 {
            self.decrease(-delta);
        }
    }

    fn reset_peak(&mut self) {
        self.peak = self.current;
    }

    fn reset_accumulated(&mut self) {
        self.allocated = 0;
        self.freed = 0;
    }
}

/// Index into a [`StatArray`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StatType {
    All = 0,
    SmallPool = 1,
    LargePool = 2,
}

impl StatType {
    /// In PyTorch's order, with its names.
    pub const ALL: [(StatType, &'static str); 3] =
        [(StatType::All, "all"), (StatType::SmallPool, "small_pool"), (StatType::LargePool, "large_pool")];
}

/// PyTorch's `StatArray`: [all, small_pool, large_pool].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StatArray(pub [Stat; 3]);

impl StatArray {
    /// The stat of one type.
    pub fn get(&self, t: StatType) -> &Stat {
        &self.0[t as usize]
    }

    /// `for_each_selected_stat_type`: the change goes to "all" and to the pool's.
    fn change(&mut self, pool: PoolKind, delta: i64) {
        let pool_index = match pool {
            PoolKind::Small => StatType::SmallPool,
            PoolKind::Large => StatType::LargePool,
        } as usize;
        self.0[StatType::All as usize].change(delta);
        self.0[pool_index].change(delta);
    }

    fn for_each(&mut self, f: impl Fn(&mut Stat)) {
        self.0.iter_mut().for_each(f);
    }
}

/// PyTorch's `DeviceStats`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DeviceStats {
    /// Blocks handed out and not yet freed by the caller.
    pub allocation: StatArray,
    /// Segments obtained from the device.
    pub segment: StatArray,
    /// Blocks allocated or waiting for their events (not yet reusable).
    pub active: StatArray,
    /// Free blocks inside split segments (memory empty_cache cannot return).
    pub inactive_split: StatArray,
    pub allocated_bytes: StatArray,
    pub reserved_bytes: StatArray,
    pub active_bytes: StatArray,
    pub inactive_split_bytes: StatArray,
    /// The sizes callers asked for (before rounding), of active blocks.
    pub requested_bytes: StatArray,
    /// Times malloc emptied the cache and tried the device again.
    pub num_alloc_retries: i64,
    /// Allocations that failed with out-of-memory.
    pub num_ooms: i64,
    /// Times every outstanding event was waited for (empty_cache, retries).
    pub num_sync_all_streams: i64,
    pub num_device_alloc: i64,
    pub num_device_free: i64,
    /// Allocations of max_split_size or more.
    pub oversize_allocations: Stat,
    /// Segments of max_split_size or more.
    pub oversize_segments: Stat,
    /// max_split_size in bytes; -1 when unlimited (SIZE_MAX as int64).
    pub max_split_size: i64,
}

/// A change to the free pieces of split segments, as malloc and free
/// compute it (blocks, bytes); applied as PyTorch's net increase or decrease.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct SplitChange {
    pub blocks: i64,
    pub bytes: i64,
}

impl DeviceStats {
    pub(crate) fn new(max_split_size: u64) -> DeviceStats {
        DeviceStats { max_split_size: max_split_size as i64, ..DeviceStats::default() }
    }

    /// A segment came from the device (alloc_block).
    pub(crate) fn on_segment_alloc(&mut self, pool: PoolKind, size: u64, oversize: bool) {
        self.num_device_alloc += 1;
        self.segment.change(pool, 1);
        self.reserved_bytes.change(pool, size as i64);
        if oversize {
            self.oversize_segments.increase(1);
        }
    }

    /// A segment went back to the device (release_block).
    pub(crate) fn on_segment_free(&mut self, pool: PoolKind, size: u64, oversize: bool) {
        self.num_device_free += 1;
        self.segment.change(pool, -1);
        self.reserved_bytes.change(pool, -(size as i64));
        if oversize {
            self.oversize_segments.decrease(1);
        }
    }

    /// A block was handed out (end of malloc).
    pub(crate) fn on_alloc(&mut self, pool: PoolKind, size: u64, requested: u64, oversize: bool, split: SplitChange) {
        self.inactive_split.change(pool, split.blocks);
        self.inactive_split_bytes.change(pool, split.bytes);
        self.allocation.change(pool, 1);
        self.allocated_bytes.change(pool, size as i64);
        self.active.change(pool, 1);
        self.active_bytes.change(pool, size as i64);
        self.requested_bytes.change(pool, requested as i64);
        if oversize {
            self.oversize_allocations.increase(1);
        }
    }

    /// The caller freed a block (free): no longer allocated, maybe still
    /// active until its events complete.
    pub(crate) fn on_free_requested(&mut self, pool: PoolKind, size: u64, oversize: bool) {
        self.allocation.change(pool, -1);
        self.allocated_bytes.change(pool, -(size as i64));
        if oversize {
            self.oversize_allocations.decrease(1);
        }
    }

    /// The block went back to its pool (free_block): no longer active.
    pub(crate) fn on_free_completed(&mut self, pool: PoolKind, size: u64, requested: u64, split: SplitChange) {
        self.inactive_split.change(pool, split.blocks);
        self.inactive_split_bytes.change(pool, split.bytes);
        self.active.change(pool, -1);
        self.active_bytes.change(pool, -(size as i64));
        self.requested_bytes.change(pool, -(requested as i64));
    }

    fn arrays(&mut self) -> [&mut StatArray; 9] {
        [
            &mut self.allocation,
            &mut self.segment,
            &mut self.active,
            &mut self.inactive_split,
            &mut self.allocated_bytes,
            &mut self.reserved_bytes,
            &mut self.active_bytes,
            &mut self.inactive_split_bytes,
            &mut self.requested_bytes,
        ]
    }

    /// `resetPeakStats`: every peak becomes the current value.
    pub(crate) fn reset_peak(&mut self) {
        for a in self.arrays() {
            a.for_each(Stat::reset_peak);
        }
        self.oversize_allocations.reset_peak();
        self.oversize_segments.reset_peak();
    }

    /// `resetAccumulatedStats`: allocated/freed totals and the counters to 0.
    pub(crate) fn reset_accumulated(&mut self) {
        for a in self.arrays() {
            a.for_each(Stat::reset_accumulated);
        }
        self.oversize_allocations.reset_accumulated();
        self.oversize_segments.reset_accumulated();
        self.num_alloc_retries = 0;
        self.num_ooms = 0;
        self.num_sync_all_streams = 0;
        self.num_device_alloc = 0;
        self.num_device_free = 0;
    }

    /// The arrays with PyTorch's key names, in its order.
    pub fn named_arrays(&self) -> [(&'static str, &StatArray); 9] {
        [
            ("allocation", &self.allocation),
            ("segment", &self.segment),
            ("active", &self.active),
            ("inactive_split", &self.inactive_split),
            ("allocated_bytes", &self.allocated_bytes),
            ("reserved_bytes", &self.reserved_bytes),
            ("active_bytes", &self.active_bytes),
            ("inactive_split_bytes", &self.inactive_split_bytes),
            ("requested_bytes", &self.requested_bytes),
        ]
    }

    /// Asserts the invariants of the module docs.
    pub fn check_invariants(&self) {
        let check = |name: &str, s: &Stat| {
            assert!(s.current >= 0, "{name}: current {} < 0", s.current);
            assert!(s.peak >= s.current, "{name}: peak below current");
        };
        for (name, a) in self.named_arrays() {
            let [all, small, large] = &a.0;
            assert_eq!(all.current, small.current + large.current, "{name}.current");
            assert_eq!(all.allocated, small.allocated + large.allocated, "{name}.allocated");
            assert_eq!(all.freed, small.freed + large.freed, "{name}.freed");
            for s in &a.0 {
                check(name, s);
            }
        }
        check("oversize_allocations", &self.oversize_allocations);
        check("oversize_segments", &self.oversize_segments);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_rules_are_pytorchs() {
        let mut s = Stat::default();
        s.increase(10);
        s.decrease(4);
        s.increase(1);
        assert_eq!(s, Stat { current: 7, peak: 10, allocated: 11, freed: 4 });
        s.reset_peak();
        assert_eq!(s.peak, 7);
        s.reset_accumulated();
        assert_eq!((s.allocated, s.freed, s.current), (0, 0, 7));
    }

    #[test]
    fn a_change_counts_in_all_and_in_its_pool() {
        let mut stats = DeviceStats::new(u64::MAX);
        assert_eq!(stats.max_split_size, -1);
        stats.on_segment_alloc(PoolKind::Small, 2 << 20, false);
        stats.on_alloc(PoolKind::Small, 512, 100, false, SplitChange { blocks: 1, bytes: (2 << 20) - 512 });
        assert_eq!(stats.reserved_bytes.get(StatType::All).current, 2 << 20);
        assert_eq!(stats.reserved_bytes.get(StatType::SmallPool).current, 2 << 20);
        assert_eq!(stats.reserved_bytes.get(StatType::LargePool).current, 0);
        assert_eq!(stats.requested_bytes.get(StatType::All).current, 100);
        stats.check_invariants();
    }
}
