//! Statistics: the numbers of `pymem_alloc_get_stats` and the text of
//! `sys._debugmallocstats()`.
//!
//! Small-block figures are computed by walking the pools (O(arenas)) rather
//! than counted on every malloc and free, so the fast paths carry no
//! bookkeeping; the running totals that cannot be recomputed live in
//! `allocator::Counters`.

use std::fmt::Write;

use crate::allocator::Allocator;
use crate::pool::PoolState;
use crate::size_class::{block_size, NUM_CLASSES, SMALL_REQUEST_THRESHOLD};

/// A snapshot of the allocator's state.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Size-class bytes of live small blocks + requested bytes of live large blocks.
    pub bytes_in_use: u64,
    /// Bytes held from the OS: arenas (whole) + large blocks.
    pub bytes_reserved: u64,
    pub arenas_allocated_total: u64,
    pub arenas_freed_total: u64,
    pub arenas_current: u64,
    pub arenas_highwater: u64,
    /// Pools holding at least one block.
    pub pools_in_use: u64,
    /// Live blocks, small and large.
    pub blocks_in_use: u64,
    /// Live large blocks.
    pub large_allocations: u64,
    /// Requested bytes of live large blocks.
    pub large_bytes: u64,
    /// Pools whose pages are given back to the OS right now.
    pub pools_released: u64,
    /// Pools given back to the OS since the start.
    pub pools_released_total: u64,
    /// Resident bytes given back to the OS since the start (released pools,
    /// unmapped arenas' resident pools, unmapped large blocks).
    pub bytes_returned_to_os_total: u64,
    /// Bytes held free, by reason (the retention rule of the `arena`
    /// module's "Bounded retention"): the resident empty pools of the spare
    /// arena (the one with the most free pools),
    pub free_bytes_spare_arena: u64,
    /// the resident empty pools of the cache (bounded by `free_bytes_cache_limit`),
    pub free_bytes_cache: u64,
    /// the empty pools kept at the head of their size class's ring (at most
    /// one per class and block kind, ready for the class's next block),
    pub free_bytes_class_pools: u64,
    /// and what pools holding live blocks do not use (free blocks, the
    /// uncarved tail, the remainder a class leaves).
    pub free_bytes_in_used_pools: u64,
    /// The cache's bound now: 1/16 of the bytes in use, at least 256 KiB,
    /// at most `Config::retain_cache_max`.
    pub free_bytes_cache_limit: u64,
    /// Times the cache went over its bound and was trimmed.
    pub cache_trims_total: u64,
}

/// One row of the size-class table.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ClassStats {
    pub class: usize,
    pub size: usize,
    pub pools: u64,
    pub blocks_in_use: u64,
    pub available_blocks: u64,
}

/// Writes one `label = value` line as CPython's `printone` does: the label
/// padded to 35 columns, `=`, the value right-aligned in 21 columns with
/// thousands separators. Higher layers append their own lines with it.
pub fn write_stat_line(out: &mut String, label: &str, value: u64) {
    let digits = value.to_string();
    let mut grouped = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            grouped.push(',');
        }
        grouped.push(c);
    }
    let _ = writeln!(out, "{label:<35}={grouped:>21}");
}

impl Allocator {
    /// Per-class table: only classes with pools in use.
    pub fn class_stats(&self) -> Vec<ClassStats> {
        let mut rows: Vec<ClassStats> = (0..NUM_CLASSES)
            .map(|class| ClassStats { class, size: block_size(class), ..ClassStats::default() })
            .collect();
        self.for_each_arena(|a| {
            for pool in &a.pools {
                if matches!(pool.state, PoolState::Used | PoolState::Full) {
                    let row = &mut rows[pool.class as usize];
                    row.pools += 1;
                    row.blocks_in_use += pool.count as u64;
                    row.available_blocks += (pool.capacity(self.pool_size) - pool.count as usize) as u64;
                }
            }
        });
        rows.retain(|r| r.pools > 0);
        rows.sort_by_key(|r| r.size); // the 24-byte class between 16 and 32
        rows
    }

    /// Live blocks of one kind, small and large: with `BlockKind::Object`,
    /// the number of objects (free-list members included), which a
    /// namespace reset reports as the objects it freed.
    pub fn blocks_in_use_of(&self, kind: crate::BlockKind) -> u64 {
        let mut n = 0u64;
        self.for_each_arena(|a| {
            for pool in &a.pools {
                if pool.kind == kind && matches!(pool.state, PoolState::Used | PoolState::Full) {
                    n += pool.count as u64;
                }
            }
        });
        n + self.large_blocks_of(kind) as u64
    }

    /// The numbers of `pymem_alloc_get_stats`.
    pub fn stats(&self) -> Stats {
        let mut s = Stats::default();
        for row in self.class_stats() {
            s.blocks_in_use += row.blocks_in_use;
            s.bytes_in_use += row.blocks_in_use * row.size as u64;
        }
        let pool_size = self.pool_size as u64;
        self.for_each_arena(|a| {
            s.pools_in_use += a.pools.iter().filter(|p| p.count > 0).count() as u64;
            s.pools_released += a.pools.iter().filter(|p| p.state == PoolState::Released).count() as u64;
            for p in a.pools.iter().filter(|p| matches!(p.state, PoolState::Used | PoolState::Full)) {
                if p.count == 0 {
                    s.free_bytes_class_pools += pool_size;
                } else {
                    s.free_bytes_in_used_pools += pool_size - p.count as u64 * p.size as u64;
                }
            }
        });
        let spare = self.spare_arena();
        if !spare.is_null() {
            // SAFETY: the spare is a live arena.
            s.free_bytes_spare_arena = unsafe { (*spare).resident_empty } as u64 * pool_size;
        }
        s.free_bytes_cache = self.cached_bytes() as u64;
        s.free_bytes_cache_limit = self.cache_limit() as u64;
        s.cache_trims_total = self.counters.cache_trims_total;
        let large = self.large_blocks().count() as u64;
        let c = &self.counters;
        s.large_allocations = large;
        s.large_bytes = c.large_bytes;
        s.blocks_in_use += large;
        s.bytes_in_use += c.large_bytes;
        s.bytes_reserved = self.reserved as u64;
        s.arenas_allocated_total = c.arenas_allocated_total;
        s.arenas_freed_total = c.arenas_freed_total;
        s.arenas_current = self.arenas.len() as u64;
        s.arenas_highwater = c.arenas_highwater;
        s.pools_released_total = c.pools_released_total;
        s.bytes_returned_to_os_total = c.bytes_returned_total;
        s
    }

    /// The report of CPython's `sys._debugmallocstats()` for this allocator:
    /// the class table, the arena lines and the byte accounting with CPython's
    /// labels (their total equals arenas x arena size), then the arena map and
    /// what pymem adds (pool-granularity release, large blocks).
    pub fn debug_malloc_stats(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "Small block threshold = {SMALL_REQUEST_THRESHOLD}, in {NUM_CLASSES} size classes.\n");
        out.push_str("class   size   num pools   blocks in use  avail blocks\n");
        out.push_str("-----   ----   ---------   -------------  ------------\n");
        let mut allocated = 0u64;
        let mut available = 0u64;
        let mut quantization = 0u64;
        for row in self.class_stats() {
            let _ = writeln!(
                out,
                "{:5} {:6} {:11} {:15} {:13}",
                row.class, row.size, row.pools, row.blocks_in_use, row.available_blocks
            );
            allocated += row.blocks_in_use * row.size as u64;
            available += row.available_blocks * row.size as u64;
            quantization += row.pools * (self.pool_size % row.size) as u64;
        }
        out.push('\n');
        let stats = self.stats();
        let c = &self.counters;
        let narenas = self.arenas.len() as u64;
        write_stat_line(&mut out, "# arenas allocated total", c.arenas_allocated_total);
        write_stat_line(&mut out, "# arenas reclaimed", c.arenas_freed_total);
        write_stat_line(&mut out, "# arenas highwater mark", c.arenas_highwater);
        write_stat_line(&mut out, "# arenas allocated current", narenas);
        write_stat_line(
            &mut out,
            &format!("{narenas} arenas * {} bytes/arena", self.arena_size),
            narenas * self.arena_size as u64,
        );
        out.push('\n');
        let mut unused_pools = 0u64;
        self.for_each_arena(|a| unused_pools += a.nfreepools as u64);
        let unused_bytes = unused_pools * self.pool_size as u64;
        let total = allocated + available + unused_bytes + quantization;
        write_stat_line(&mut out, "# bytes in allocated blocks", allocated);
        write_stat_line(&mut out, "# bytes in available blocks", available);
        write_stat_line(&mut out, &format!("{unused_pools} unused pools * {} bytes", self.pool_size), unused_bytes);
        // Pool headers live outside the arenas and arenas are mapped aligned,
        // so these two CPython lines are zero by construction.
        write_stat_line(&mut out, "# bytes lost to pool headers", 0);
        write_stat_line(&mut out, "# bytes lost to quantization", quantization);
        write_stat_line(&mut out, "# bytes lost to arena alignment", 0);
        write_stat_line(&mut out, "Total", total);
        debug_assert_eq!(total, narenas * self.arena_size as u64);

        out.push_str("\narena map counts\n");
        let map = self.arena_map();
        let leaves = map.leaf_count() as u64;
        write_stat_line(&mut out, "# arena map leaf nodes", leaves);
        out.push('\n');
        let root = map.root_bytes() as u64;
        let leaf_bytes = leaves * crate::arena_map::ArenaMap::leaf_bytes() as u64;
        let meta = narenas * crate::arena::meta_mapping_len() as u64;
        write_stat_line(&mut out, "# bytes lost to arena map root", root);
        write_stat_line(&mut out, "# bytes lost to arena map leaves", leaf_bytes);
        write_stat_line(&mut out, "# bytes in off-arena pool headers", meta);
        write_stat_line(&mut out, "Total", root + leaf_bytes + meta);

        out.push_str("\npymem: memory given back to the OS\n");
        write_stat_line(&mut out, "# pools released now (madvise)", stats.pools_released);
        write_stat_line(&mut out, "# pools released total", stats.pools_released_total);
        write_stat_line(&mut out, "# bytes returned to the OS total", stats.bytes_returned_to_os_total);
        out.push_str("\npymem: bytes held free, by reason\n");
        write_stat_line(&mut out, "# empty pools of the spare arena", stats.free_bytes_spare_arena);
        write_stat_line(&mut out, "# empty pools cached", stats.free_bytes_cache);
        write_stat_line(&mut out, "# cache bound (1/16 of use, capped)", stats.free_bytes_cache_limit);
        write_stat_line(&mut out, "# empty pools kept by their class", stats.free_bytes_class_pools);
        write_stat_line(&mut out, "# unused in pools with blocks", stats.free_bytes_in_used_pools);
        write_stat_line(&mut out, "# cache trims total", stats.cache_trims_total);
        out.push_str("\npymem: large blocks (> 512 bytes)\n");
        write_stat_line(&mut out, "# large blocks in use", stats.large_allocations);
        write_stat_line(&mut out, "# bytes in large blocks", stats.large_bytes);
        out
    }
}
