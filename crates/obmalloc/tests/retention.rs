//! Bounded retention (the `arena` module's "Bounded retention"): after
//! frees alone — no `release_free_arenas`, no later allocation — the
//! resident empty pools are at most one spare arena plus a cache of
//! `max(in_use / 16, 256 KiB)`, capped by `retain_cache_max`; a burst whose
//! working set fits keeps its pools. Counted through `Stats`, so these run
//! beside other tests; the RSS itself is measured by
//! ffi-tests/native_retention_*.c, in processes of their own.

use std::ptr::NonNull;

use obmalloc::{Allocator, Config, Geometry, Stats, RETAIN_CACHE_FLOOR};

const POOL: usize = Geometry::Cpython310.pool_size();
const ARENA: usize = Geometry::Cpython310.arena_size();
const FLOOR: u64 = RETAIN_CACHE_FLOOR as u64;

fn malloc_n(alloc: &mut Allocator, n: usize, size: usize) -> Vec<NonNull<u8>> {
    (0..n)
        .map(|i| {
            let p = alloc.malloc(size).expect("malloc");
            // SAFETY: a fresh block of `size` bytes: touch it as a user would.
            unsafe { std::ptr::write_bytes(p.as_ptr(), i as u8, size) };
            p
        })
        .collect()
}

fn free_each(alloc: &mut Allocator, blocks: &[NonNull<u8>]) {
    for p in blocks {
        alloc.free(p.as_ptr()).expect("free");
    }
}

/// Resident bytes of empty pools outside their class: what the rule bounds.
fn held(s: &Stats) -> u64 {
    s.free_bytes_spare_arena + s.free_bytes_cache
}

#[test]
fn frees_alone_leave_one_spare_arena_and_a_small_cache() {
    for delay in [0, 4, obmalloc::DEFAULT_POOL_RELEASE_DELAY] {
        let mut alloc = Allocator::new(Config { pool_release_delay: delay, ..Config::default() });
        // 20 MiB of 32-byte blocks: 20 arenas.
        let blocks = malloc_n(&mut alloc, 20 * ARENA / 32, 32);
        free_each(&mut alloc, &blocks);
        let s = alloc.stats();
        alloc.check_invariants();
        assert_eq!(s.bytes_in_use, 0);
        // Nothing is in use (the class's last pool aside): the bound is the floor.
        assert_eq!(s.free_bytes_cache_limit, FLOOR, "delay {delay}: {s:?}");
        assert!(s.free_bytes_cache <= FLOOR, "delay {delay}: {s:?}");
        assert!(s.free_bytes_spare_arena <= ARENA as u64, "delay {delay}: {s:?}");
        assert!(s.free_bytes_class_pools <= POOL as u64, "delay {delay}: {s:?}");
        assert!(held(&s) <= ARENA as u64 + FLOOR, "delay {delay}: {s:?}");
        // Most of the 20 MiB went back: arenas unmapped or their pools released.
        let resident_arenas = s.arenas_current * ARENA as u64 - s.pools_released * POOL as u64;
        assert!(resident_arenas <= 2 * ARENA as u64 + FLOOR, "delay {delay}: {s:?}");
    }
}

#[test]
fn the_cache_bound_is_a_sixteenth_of_the_bytes_in_use_up_to_the_cap() {
    let mut alloc = Allocator::new(Config::default());
    // 32 MiB kept live: 1/16 is 2 MiB, under the 4 MiB cap.
    let live = malloc_n(&mut alloc, 32 * ARENA / 64, 64);
    let s = alloc.stats();
    assert_eq!(s.free_bytes_cache_limit, s.bytes_reserved / 16, "{s:?}");
    // Then 16 MiB more, in arenas of their own, freed: their pools can only
    // be cached, released, or unmapped with their arena.
    let burst = malloc_n(&mut alloc, 16 * ARENA / 48, 48);
    free_each(&mut alloc, &burst);
    let s = alloc.stats();
    alloc.check_invariants();
    assert!(s.free_bytes_cache <= s.free_bytes_cache_limit, "{s:?}");
    assert!(s.cache_trims_total > 0, "16 MiB of empty pools must go over a 2 MiB bound: {s:?}");
    // A larger heap: the cap (4 MiB) holds, not 1/16.
    let more = malloc_n(&mut alloc, 96 * ARENA / 64, 64);
    let s = alloc.stats();
    assert_eq!(s.free_bytes_cache_limit, obmalloc::DEFAULT_RETAIN_CACHE_MAX as u64, "{s:?}");
    free_each(&mut alloc, &more);
    free_each(&mut alloc, &live);
    let s = alloc.stats();
    alloc.check_invariants();
    assert_eq!(s.free_bytes_cache_limit, FLOOR);
    assert!(held(&s) <= ARENA as u64 + FLOOR, "{s:?}");
}

#[test]
fn retain_cache_max_zero_keeps_only_the_spare_arena() {
    let mut alloc = Allocator::new(Config { retain_cache_max: 0, ..Config::default() });
    let per_pool = POOL / 32;
    let blocks = malloc_n(&mut alloc, 8 * ARENA / 32, 32);
    // Free all but one block per 4 pools: arenas stay, 3 of 4 pools empty.
    let (keep, free): (Vec<_>, Vec<_>) = blocks.iter().enumerate().partition(|(i, _)| i.is_multiple_of(4 * per_pool));
    let free: Vec<_> = free.into_iter().map(|(_, p)| *p).collect();
    free_each(&mut alloc, &free);
    let s = alloc.stats();
    alloc.check_invariants();
    assert_eq!((s.free_bytes_cache_limit, s.free_bytes_cache), (0, 0), "{s:?}");
    // Every emptied pool went back but the spare arena's (the last of the
    // usable list): 3 of 4 pools of the 7 other arenas.
    assert!(s.pools_released >= 7 * 64 * 3 / 4, "{s:?}");
    assert!(s.free_bytes_spare_arena <= ARENA as u64, "{s:?}");
    let keep: Vec<_> = keep.into_iter().map(|(_, p)| *p).collect();
    free_each(&mut alloc, &keep);
    let s = alloc.stats();
    alloc.check_invariants();
    assert_eq!(s.free_bytes_cache, 0, "{s:?}");
}

#[test]
fn freeing_a_large_block_lowers_the_bound_and_trims_the_cache() {
    let mut alloc = Allocator::new(Config::default());
    let large = alloc.malloc(64 << 20).unwrap();
    // 64 MiB in use: the bound is the 4 MiB cap. Build a cache of about
    // 3 MiB: blocks over 4 arenas, then every pool but the first of each
    // arena emptied (the first keeps its arena from becoming free).
    let per_pool = POOL / 256;
    let blocks = malloc_n(&mut alloc, 4 * ARENA / 256, 256);
    let empty: Vec<_> =
        blocks.iter().enumerate().filter(|(i, _)| !(i / per_pool).is_multiple_of(64)).map(|(_, p)| *p).collect();
    free_each(&mut alloc, &empty);
    let s = alloc.stats();
    alloc.check_invariants();
    assert!(s.free_bytes_cache > FLOOR, "the cache holds the emptied pools: {s:?}");
    alloc.free(large.as_ptr()).unwrap();
    let s = alloc.stats();
    alloc.check_invariants();
    assert!(s.free_bytes_cache <= s.free_bytes_cache_limit, "{s:?}");
    assert!(s.free_bytes_cache_limit < FLOOR * 2, "{s:?}");
    let kept: Vec<_> =
        blocks.iter().enumerate().filter(|(i, _)| (i / per_pool).is_multiple_of(64)).map(|(_, p)| *p).collect();
    free_each(&mut alloc, &kept);
    alloc.check_invariants();
}

/// The bench's lifo workload, scaled down: 1,000 blocks of 8..512 bytes
/// allocated, then freed newest first, again and again.
fn lifo_rounds(alloc: &mut Allocator, rounds: usize) {
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    for _ in 0..rounds {
        let mut batch = Vec::with_capacity(1000);
        for _ in 0..1000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            batch.push(alloc.malloc(8 + (x % 505) as usize).unwrap());
        }
        for p in batch.iter().rev() {
            alloc.free(p.as_ptr()).unwrap();
        }
    }
}

#[test]
fn a_lifo_burst_within_spare_and_cache_gives_nothing_back() {
    for geometry in [Geometry::Cpython310, Geometry::Cpython38] {
        let mut alloc = Allocator::new(Config { geometry, ..Config::default() });
        lifo_rounds(&mut alloc, 3);
        let warm = alloc.stats();
        lifo_rounds(&mut alloc, 50);
        let s = alloc.stats();
        alloc.check_invariants();
        // The working set stays within spare + cache from burst to burst:
        // no trim, no arena unmapped or mapped again.
        assert_eq!(s.cache_trims_total, warm.cache_trims_total, "{geometry:?}: {s:?}");
        assert_eq!(s.arenas_allocated_total, warm.arenas_allocated_total, "{geometry:?}: {s:?}");
        if geometry == Geometry::Cpython310 {
            // Every class fits one 16 KiB pool, kept by its class when it
            // empties: no pool goes back at all. (With 4 KiB pools, the
            // release delay's sweep gives back pools that a few bursts in a
            // row did not reuse, as it did before the bound.)
            assert_eq!(s.pools_released_total, warm.pools_released_total, "{s:?}");
        }
    }
}
