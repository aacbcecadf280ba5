//! Deterministic checks of the allocator's documented behaviour: zero-byte
//! and calloc requests, CPython's realloc rules, the `max_bytes` limit, the
//! debug hooks, the spare-arena rule and pool-granularity release.

use std::collections::BTreeMap;
use std::ptr::NonNull;

use obmalloc::debug_hooks::{CLEAN_BYTE, FORBIDDEN_BYTE};
use obmalloc::size_class::{block_size, class_of};
use obmalloc::{AllocError, Allocator, BlockKind, Config, Geometry, InvalidReason, Stats, RELEASE_THRESHOLD};

const POOL: usize = Geometry::Cpython310.pool_size();
const ARENA: usize = Geometry::Cpython310.arena_size();

fn allocator() -> Allocator {
    Allocator::new(Config::default())
}

fn debug_allocator() -> Allocator {
    Allocator::new(Config { debug_hooks: true, ..Config::default() })
}

fn addr(p: NonNull<u8>) -> usize {
    p.as_ptr() as usize
}

/// Fills `n` bytes at `p` with `byte`.
fn fill(p: NonNull<u8>, n: usize, byte: u8) {
    // SAFETY: every caller passes a live block of at least `n` bytes.
    unsafe { std::ptr::write_bytes(p.as_ptr(), byte, n) };
}

/// The `n` bytes at `p`.
fn bytes(p: NonNull<u8>, n: usize) -> Vec<u8> {
    // SAFETY: every caller passes a live block of at least `n` bytes.
    unsafe { std::slice::from_raw_parts(p.as_ptr(), n) }.to_vec()
}

/// Frees every pointer, asserting success, then checks the invariants.
fn free_all(alloc: &mut Allocator, blocks: impl IntoIterator<Item = NonNull<u8>>) {
    for p in blocks {
        alloc.free(p.as_ptr()).expect("free of a live block");
    }
    alloc.check_invariants();
}

#[test]
fn zero_byte_mallocs_get_distinct_aligned_pointers() {
    let mut alloc = allocator();
    let blocks: Vec<_> = (0..1000).map(|_| alloc.malloc(0).unwrap()).collect();
    let mut addrs: Vec<usize> = blocks.iter().map(|&p| addr(p)).collect();
    addrs.sort_unstable();
    addrs.dedup();
    assert_eq!(addrs.len(), blocks.len(), "malloc(0) returned the same pointer twice");
    for &p in &blocks {
        assert_eq!(addr(p) % 16, 0);
        assert_eq!(alloc.usable_size(p.as_ptr()), Ok(16));
    }
    let s = alloc.stats();
    assert_eq!(s.blocks_in_use, 1000);
    assert_eq!(s.bytes_in_use, 16_000);
    free_all(&mut alloc, blocks);
    assert_eq!(alloc.stats().blocks_in_use, 0);
}

#[test]
fn calloc_zeroes_recycled_and_large_blocks() {
    let mut alloc = allocator();
    for &n in &[1usize, 24, 100, 512, 513, 4000, 200_000] {
        // Dirty a block of this size, free it, and calloc the same size: the
        // small ones get the very same block back from the free list.
        let dirty = alloc.malloc(n).unwrap();
        fill(dirty, n, 0xAB);
        alloc.free(dirty.as_ptr()).unwrap();
        let p = alloc.calloc(n, 1).unwrap();
        if n <= 512 {
            assert_eq!(p, dirty, "calloc({n}) should reuse the freed block");
        }
        assert!(bytes(p, n).iter().all(|&b| b == 0), "calloc({n}) not zeroed");
        alloc.free(p.as_ptr()).unwrap();
    }
    let p = alloc.calloc(10, 40).unwrap();
    assert_eq!(alloc.usable_size(p.as_ptr()), Ok(400));
    assert!(bytes(p, 400).iter().all(|&b| b == 0));
    alloc.free(p.as_ptr()).unwrap();
    alloc.check_invariants();
}

#[test]
fn calloc_overflow_is_no_memory_and_changes_nothing() {
    let mut alloc = allocator();
    let keep = alloc.malloc(64).unwrap();
    let before = alloc.stats();
    for (count, size) in [(usize::MAX, 2), (2, usize::MAX), (1 << 33, 1 << 33)] {
        match alloc.calloc(count, size) {
            Err(AllocError::NoMemory { .. }) => {}
            other => panic!("calloc({count}, {size}) = {other:?}, want NoMemory"),
        }
    }
    assert_eq!(alloc.stats(), before);
    alloc.check_invariants();
    free_all(&mut alloc, [keep]);
}

#[test]
fn realloc_keeps_a_block_shrunk_by_less_than_a_quarter() {
    let mut alloc = allocator();
    let p = alloc.malloc(512).unwrap();
    // SAFETY: `p` is a live block of 512 bytes.
    unsafe { (0..512).for_each(|i| *p.as_ptr().add(i) = i as u8) };

    // 400 * 4 > 512 * 3: stays in place, and still counts as a 512-byte block.
    let q = alloc.realloc(p.as_ptr(), 400).unwrap();
    assert_eq!(q, p);
    assert_eq!(alloc.usable_size(q.as_ptr()), Ok(512));
    assert_eq!(alloc.stats().bytes_in_use, 512);

    // Exactly 25 % smaller (384) moves: CPython keeps it only for < 25 %.
    let r = alloc.realloc(q.as_ptr(), 384).unwrap();
    assert_ne!(r, q);
    assert_eq!(alloc.usable_size(r.as_ptr()), Ok(384));
    let expect: Vec<u8> = (0..384).map(|i| i as u8).collect();
    assert_eq!(bytes(r, 384), expect);

    // 384 -> 100 moves to the 112-byte class, keeping the first 100 bytes.
    let s = alloc.realloc(r.as_ptr(), 100).unwrap();
    assert_ne!(s, r);
    assert_eq!(alloc.usable_size(s.as_ptr()), Ok(112));
    assert_eq!(bytes(s, 100), expect[..100]);
    // The old block is gone: freeing it again is a double free.
    assert_eq!(alloc.free(r.as_ptr()), Err(AllocError::DoubleFree { addr: addr(r) }));
    assert_eq!(alloc.stats().blocks_in_use, 1);
    assert_eq!(alloc.stats().bytes_in_use, 112);
    free_all(&mut alloc, [s]);
}

#[test]
fn realloc_grows_in_place_within_the_class_and_moves_beyond_it() {
    let mut alloc = allocator();
    let p = alloc.malloc(100).unwrap();
    fill(p, 100, 0x5A);
    let q = alloc.realloc(p.as_ptr(), 112).unwrap();
    assert_eq!(q, p, "100 -> 112 fits the 112-byte class");
    let r = alloc.realloc(q.as_ptr(), 113).unwrap();
    assert_ne!(r, q, "113 needs the 128-byte class");
    assert_eq!(bytes(r, 100), vec![0x5A; 100]);
    // Small -> large -> mapped -> large -> small, contents kept throughout.
    let mut cur = r;
    let mut len = 100;
    for &n in &[2000usize, 300_000, 600_000, 150_000, 5000, 40] {
        fill(cur, len, (n % 251) as u8);
        let keep = len.min(n);
        let next = alloc.realloc(cur.as_ptr(), n).unwrap();
        assert_eq!(next.as_ptr() as usize % 16, 0);
        assert_eq!(bytes(next, keep), vec![(n % 251) as u8; keep], "realloc to {n}");
        cur = next;
        len = n;
        alloc.check_invariants();
    }
    // A large block shrunk to 40 bytes stays a large block of 40 bytes.
    assert_eq!(alloc.usable_size(cur.as_ptr()), Ok(40));
    assert_eq!(alloc.stats().large_allocations, 1);
    free_all(&mut alloc, [cur]);
    assert_eq!(alloc.stats().bytes_reserved, ARENA as u64, "only the spare arena is left");
}

#[test]
fn realloc_and_free_of_null() {
    let mut alloc = allocator();
    assert_eq!(alloc.free(std::ptr::null_mut()), Ok(()));
    let p = alloc.realloc(std::ptr::null_mut(), 30).unwrap();
    assert_eq!(alloc.usable_size(p.as_ptr()), Ok(32));
    free_all(&mut alloc, [p]);
}

#[test]
fn max_bytes_fails_cleanly_and_recovers() {
    let limit = 3 * 1024 * 1024;
    // No release delay: CPython's spare-arena rule applies at once.
    let mut alloc = Allocator::new(Config { max_bytes: limit, pool_release_delay: 0, ..Config::default() });
    let mut blocks = Vec::new();
    let err = loop {
        match alloc.malloc(512) {
            Ok(p) => blocks.push(p),
            Err(e) => break e,
        }
        assert!(blocks.len() <= limit / 512, "the limit was not enforced");
    };
    assert!(matches!(err, AllocError::NoMemory { .. }), "{err:?}");
    assert!(err.to_string().starts_with("out of memory"), "{err}");
    let s = alloc.stats();
    assert_eq!(s.arenas_current, 3);
    assert_eq!(s.bytes_reserved, limit as u64);
    assert_eq!(blocks.len(), 3 * ARENA / 512, "every block of the three arenas was handed out");
    alloc.check_invariants();

    // Large blocks are held to the limit too, and a failed realloc keeps the block.
    assert!(matches!(alloc.malloc(1000), Err(AllocError::NoMemory { .. })));
    assert!(matches!(alloc.malloc(1 << 20), Err(AllocError::NoMemory { .. })));
    fill(blocks[0], 512, 0x11);
    assert!(matches!(alloc.realloc(blocks[0].as_ptr(), 4096), Err(AllocError::NoMemory { .. })));
    assert_eq!(bytes(blocks[0], 512), vec![0x11; 512]);
    assert_eq!(alloc.stats(), s, "failed calls change nothing");

    // Freeing one block makes room for exactly one more.
    let last = blocks.pop().unwrap();
    alloc.free(last.as_ptr()).unwrap();
    blocks.push(alloc.malloc(500).unwrap());
    assert!(alloc.malloc(512).is_err());
    alloc.check_invariants();

    free_all(&mut alloc, blocks);
    assert_eq!(alloc.stats().arenas_current, 1, "one spare arena kept");
    let big = alloc.malloc(2 * 1024 * 1024).expect("2 MiB fits beside the spare arena");
    // Memory cached for speed never causes an out-of-memory error: the spare
    // arena is unmapped to make room.
    let more = alloc.malloc(1024 * 1024).expect("the spare arena is given back to make room");
    assert_eq!(alloc.stats().arenas_current, 0);
    assert!(alloc.malloc(4096).is_err(), "nothing is left to give back");
    assert!(alloc.malloc(16).is_err(), "no room for a new arena either");
    free_all(&mut alloc, [big, more]);
    assert_eq!(alloc.stats().bytes_reserved, 0);
    let all = alloc.malloc(limit).expect("the whole limit once nothing else is held");
    free_all(&mut alloc, [all]);
    assert_eq!(alloc.stats().bytes_reserved, 0);
}

#[test]
fn debug_hooks_fill_new_blocks_and_report_requested_size() {
    let mut alloc = debug_allocator();
    assert!(alloc.debug_hooks());
    for &n in &[0usize, 1, 24, 488, 489, 3000, 200_000] {
        let p = alloc.malloc(n).unwrap();
        assert_eq!(addr(p) % 16, 0);
        assert!(bytes(p, n).iter().all(|&b| b == CLEAN_BYTE), "malloc({n}) not filled");
        assert_eq!(alloc.usable_size(p.as_ptr()), Ok(n));
        // SAFETY: the 8 tail guard bytes follow the `n` data bytes of the block.
        let tail = unsafe { std::slice::from_raw_parts(p.as_ptr().add(n), 8) };
        assert_eq!(tail, [FORBIDDEN_BYTE; 8]);
        let s = alloc.stats();
        assert_eq!(s.blocks_in_use, 1);
        assert_eq!(s.large_allocations, u64::from(n + 24 > 512));
        alloc.free(p.as_ptr()).unwrap();
    }
    alloc.check_invariants();
}

#[test]
fn debug_hooks_report_an_overrun_and_keep_the_block() {
    let mut alloc = debug_allocator();
    let p = alloc.malloc(24).unwrap();
    let other = alloc.malloc(24).unwrap();
    let before = alloc.stats();
    // SAFETY: byte 24 is the first tail guard byte, inside the raw block.
    unsafe { *p.as_ptr().add(24) = 0 };
    let err = alloc.free(p.as_ptr()).unwrap_err();
    match &err {
        AllocError::HeapCorruption { addr: a, detail } => {
            assert_eq!(*a, addr(p));
            assert!(detail.contains("overrun"), "{detail}");
        }
        other => panic!("want HeapCorruption, got {other:?}"),
    }
    let text = err.to_string();
    assert!(text.contains(&format!("{:#x}", addr(p))), "message must name the block: {text}");
    assert!(text.contains("heap corruption"), "{text}");
    assert_eq!(alloc.stats(), before, "the damaged block stays allocated");
    assert!(matches!(alloc.usable_size(p.as_ptr()), Err(AllocError::HeapCorruption { .. })));
    assert!(matches!(alloc.realloc(p.as_ptr(), 10), Err(AllocError::HeapCorruption { .. })));
    assert_eq!(alloc.stats(), before);
    alloc.check_invariants();

    // Repairing the guard byte makes the block freeable again.
    // SAFETY: as above.
    unsafe { *p.as_ptr().add(24) = FORBIDDEN_BYTE };
    free_all(&mut alloc, [p, other]);
}

#[test]
fn debug_hooks_report_an_underrun() {
    let mut alloc = debug_allocator();
    for &n in &[24usize, 1000] {
        let p = alloc.malloc(n).unwrap();
        let before = alloc.stats();
        // SAFETY: the byte before the data is the last head guard byte.
        unsafe { *p.as_ptr().sub(1) = b'x' };
        match alloc.free(p.as_ptr()) {
            Err(AllocError::HeapCorruption { addr: a, detail }) => {
                assert_eq!(a, addr(p));
                assert!(detail.contains("leading pad"), "{detail}");
            }
            other => panic!("want HeapCorruption, got {other:?}"),
        }
        assert_eq!(alloc.stats(), before);
        // SAFETY: as above.
        unsafe { *p.as_ptr().sub(1) = FORBIDDEN_BYTE };
        free_all(&mut alloc, [p]);
    }
}

#[test]
fn debug_hooks_keep_invalid_pointer_errors() {
    let mut alloc = debug_allocator();
    let p = alloc.malloc(100).unwrap();
    alloc.free(p.as_ptr()).unwrap();
    assert_eq!(alloc.free(p.as_ptr()), Err(AllocError::DoubleFree { addr: addr(p) }));
    let q = alloc.malloc(100).unwrap();
    // SAFETY: pointer arithmetic only; the result is never dereferenced by us.
    let inner = unsafe { q.as_ptr().add(16) };
    match alloc.free(inner) {
        Err(AllocError::InvalidPointer { addr: a, reason: InvalidReason::Interior { offset, .. } }) => {
            assert_eq!(a, inner as usize);
            assert_eq!(offset, 16);
        }
        other => panic!("want an interior pointer error, got {other:?}"),
    }
    let local = [0u8; 64];
    assert!(matches!(
        alloc.free(local.as_ptr().wrapping_add(16).cast_mut()),
        Err(AllocError::InvalidPointer { reason: InvalidReason::NotOurs, .. })
    ));
    free_all(&mut alloc, [q]);
}

#[test]
fn invalid_pointers_are_classified() {
    let mut alloc = allocator();
    let p = alloc.malloc(48).unwrap();
    let base = addr(p);
    assert_eq!(base % POOL, 0, "the first block of a fresh arena is its first pool's start");
    let before = alloc.stats();

    let cases: [(usize, InvalidReason); 4] = [
        (base + 1, InvalidReason::Interior { block: base, offset: 1 }),
        (base + 50, InvalidReason::Interior { block: base + 48, offset: 2 }),
        // The 16 bytes after the last whole 48-byte block of the pool.
        ((base + (POOL / 48) * 48), InvalidReason::NeverAllocated),
        // A pool of the arena that was never carved.
        (base + 10 * POOL, InvalidReason::NeverAllocated),
    ];
    for (a, reason) in cases {
        assert_eq!(alloc.free(a as *mut u8), Err(AllocError::InvalidPointer { addr: a, reason }), "free({a:#x})");
        assert!(alloc.realloc(a as *mut u8, 10).is_err());
        assert!(alloc.usable_size(a as *mut u8).is_err());
    }
    // Carved but never handed out: a free block of a used pool is "already free".
    assert_eq!(alloc.free((base + 48) as *mut u8), Err(AllocError::DoubleFree { addr: base + 48 }));
    let boxed = Box::new([7u64; 4]);
    let boxed_addr = &*boxed as *const [u64; 4] as usize;
    let err = alloc.free(boxed_addr as *mut u8).unwrap_err();
    assert_eq!(err, AllocError::InvalidPointer { addr: boxed_addr, reason: InvalidReason::NotOurs });
    assert!(err.to_string().contains("not a block of this allocator"));
    assert_eq!(alloc.stats(), before);
    alloc.check_invariants();

    // A freed large block is remembered and reported as a double free.
    let big = alloc.malloc(10_000).unwrap();
    alloc.free(big.as_ptr()).unwrap();
    assert_eq!(alloc.free(big.as_ptr()), Err(AllocError::DoubleFree { addr: addr(big) }));
    let mapped = alloc.malloc(1 << 20).unwrap();
    alloc.free(mapped.as_ptr()).unwrap();
    assert_eq!(alloc.free(mapped.as_ptr()), Err(AllocError::DoubleFree { addr: addr(mapped) }));
    assert!(alloc.realloc(mapped.as_ptr(), 5).is_err());
    free_all(&mut alloc, [p]);
}

#[test]
fn usable_size_reports_class_or_requested_size() {
    let mut alloc = allocator();
    let sizes = [0usize, 1, 16, 17, 255, 500, 512, 513, 1000, 131_072, 200_001];
    let blocks: Vec<_> = sizes.iter().map(|&n| alloc.malloc(n).unwrap()).collect();
    for (&n, &p) in sizes.iter().zip(&blocks) {
        let want = if n <= 512 { block_size(class_of(n.max(1))) } else { n };
        assert_eq!(alloc.usable_size(p.as_ptr()), Ok(want), "usable_size of malloc({n})");
        // The whole usable size may be written.
        fill(p, want, 0xEE);
    }
    let s = alloc.stats();
    assert_eq!(s.large_allocations, 4);
    assert_eq!(s.large_bytes, 513 + 1000 + 131_072 + 200_001);
    free_all(&mut alloc, blocks.iter().copied());
    for &p in &blocks {
        assert!(alloc.usable_size(p.as_ptr()).is_err());
    }
}

/// Pointers of `blocks` grouped by pool, in address order.
fn by_pool(blocks: &[NonNull<u8>], pool_size: usize) -> BTreeMap<usize, Vec<NonNull<u8>>> {
    let mut pools: BTreeMap<usize, Vec<NonNull<u8>>> = BTreeMap::new();
    for &p in blocks {
        pools.entry(addr(p) / pool_size).or_default().push(p);
    }
    pools
}

#[test]
fn one_spare_arena_is_kept_and_release_returns_it() {
    for geometry in [Geometry::Cpython310, Geometry::Cpython38] {
        // No release delay: CPython's rule, a second wholly free arena is
        // unmapped at once.
        let mut alloc = Allocator::new(Config { geometry, pool_release_delay: 0, ..Config::default() });
        // 2.5 arenas of 512-byte blocks.
        let n = 5 * geometry.arena_size() / 512 / 2;
        let blocks: Vec<_> = (0..n).map(|_| alloc.malloc(512).unwrap()).collect();
        let s = alloc.stats();
        assert_eq!(s.arenas_current, 3);
        assert_eq!(s.bytes_reserved, 3 * geometry.arena_size() as u64);
        assert_eq!(s.pools_in_use, (n * 512 / geometry.pool_size()) as u64);
        alloc.check_invariants();
        free_all(&mut alloc, blocks);
        let s = alloc.stats();
        assert_eq!(s.arenas_current, 1, "{geometry:?}: exactly one wholly free arena is kept");
        assert_eq!(s.arenas_freed_total, 2);
        assert_eq!(s.arenas_highwater, 3);
        assert_eq!(s.blocks_in_use, 0);
        alloc.release_free_arenas();
        let s = alloc.stats();
        assert_eq!(s.arenas_current, 0);
        assert_eq!(s.bytes_reserved, 0);
        assert_eq!(s.arenas_freed_total, 3);
        alloc.check_invariants();
        // And the allocator maps a fresh arena on demand.
        let p = alloc.malloc(8).unwrap();
        assert_eq!(alloc.stats().arenas_allocated_total, 4);
        free_all(&mut alloc, [p]);
    }
}

/// Fills one arena with 32-byte blocks (64 pools of 512), then frees every
/// block of its first `emptied` pools and all but one block of the next
/// `thinned` pools. Returns the blocks still allocated.
fn fill_arena_then_empty_pools(alloc: &mut Allocator, emptied: usize, thinned: usize) -> Vec<NonNull<u8>> {
    let per_pool = POOL / 32;
    let blocks: Vec<_> = (0..64 * per_pool).map(|_| alloc.malloc(32).unwrap()).collect();
    let s = alloc.stats();
    assert_eq!(s.arenas_current, 1);
    assert_eq!(s.pools_in_use, 64);
    let pools = by_pool(&blocks, POOL);
    assert_eq!(pools.len(), 64);
    assert!(pools.values().all(|b| b.len() == per_pool));

    let mut kept = Vec::new();
    for (i, blocks) in pools.values().enumerate() {
        let survivors = if i < emptied {
            0
        } else if i < emptied + thinned {
            1
        } else {
            per_pool
        };
        kept.extend_from_slice(&blocks[..survivors]);
        for p in &blocks[survivors..] {
            alloc.free(p.as_ptr()).unwrap();
        }
        if i % 4 == 0 {
            alloc.check_invariants();
        }
    }
    let s = alloc.stats();
    assert_eq!(s.pools_in_use, (64 - emptied) as u64);
    assert_eq!(s.blocks_in_use, kept.len() as u64);
    alloc.check_invariants();
    kept
}

#[test]
fn empty_pools_are_released_at_the_threshold_without_delay() {
    let mut alloc = Allocator::new(Config { pool_release_delay: 0, ..Config::default() });
    // Empty 10 pools entirely; leave one block in each of 20 others.
    let kept = fill_arena_then_empty_pools(&mut alloc, 10, 20);
    let s = alloc.stats();
    assert_eq!(s.pools_released, u64::from(RELEASE_THRESHOLD), "a batch of 8 was given back");
    assert_eq!(s.pools_released_total, 8);
    assert_eq!(s.bytes_returned_to_os_total, 8 * POOL as u64);

    // Two empty pools are still resident: release_free_arenas gives them back.
    assert_eq!(alloc.release_free_arenas(), 2 * POOL);
    assert_eq!(alloc.stats().pools_released, 10);
    assert_eq!(alloc.release_free_arenas(), 0, "nothing left to release");
    assert_eq!(alloc.stats().arenas_current, 1, "the arena still holds blocks");
    alloc.check_invariants();

    // Released pools are reused (they read as zeros, then are carved again).
    let per_pool = POOL / 32;
    let again: Vec<_> = (0..4 * per_pool).map(|_| alloc.malloc(64).unwrap()).collect();
    for &p in &again {
        fill(p, 64, 0x42);
    }
    assert_eq!(alloc.stats().arenas_current, 1);
    alloc.check_invariants();
    free_all(&mut alloc, again);
    free_all(&mut alloc, kept);
    assert_eq!(alloc.stats().blocks_in_use, 0);
    alloc.release_free_arenas();
    let s: Stats = alloc.stats();
    assert_eq!((s.arenas_current, s.bytes_reserved), (0, 0));
}

#[test]
fn empty_pools_stay_resident_for_the_default_delay() {
    let mut alloc = allocator();
    let kept = fill_arena_then_empty_pools(&mut alloc, 10, 20);
    assert_eq!(alloc.stats().pools_released, 0, "just-emptied pools are kept for reuse");
    // New pools come from the resident empty ones (no page faults); 32-byte
    // requests would go to the thinned pools, so ask for 64 bytes.
    let again: Vec<_> = (0..2 * (POOL / 64)).map(|_| alloc.malloc(64).unwrap()).collect();
    assert_eq!(alloc.stats().pools_in_use, 56);
    free_all(&mut alloc, again);
    // release_free_arenas does not wait.
    assert_eq!(alloc.release_free_arenas(), 10 * POOL);
    let s = alloc.stats();
    assert_eq!((s.pools_released, s.pools_released_total), (10, 10));
    alloc.check_invariants();
    free_all(&mut alloc, kept);
}

#[test]
fn empty_pools_are_released_once_aged() {
    let mut alloc = Allocator::new(Config { pool_release_delay: 4, ..Config::default() });
    let kept = fill_arena_then_empty_pools(&mut alloc, 10, 20);
    let s = alloc.stats();
    // The pools emptied first have aged past the delay and went back; the
    // last ones emptied are still resident.
    assert!(s.pools_released > 0, "{s:?}");
    assert!(s.pools_released < 10, "{s:?}");
    let resident = 10 - s.pools_released as usize;
    assert_eq!(alloc.release_free_arenas(), resident * POOL);
    free_all(&mut alloc, kept);
}

#[test]
fn release_free_arenas_reports_resident_empty_pools() {
    let mut alloc = allocator();
    let per_pool = POOL / 32;
    let blocks: Vec<_> = (0..4 * per_pool).map(|_| alloc.malloc(32).unwrap()).collect();
    let keep = alloc.malloc(512).unwrap();
    for p in &blocks[..3 * per_pool] {
        alloc.free(p.as_ptr()).unwrap();
    }
    assert_eq!(alloc.stats().pools_released, 0, "below the threshold nothing is released");
    assert_eq!(alloc.release_free_arenas(), 3 * POOL);
    let s = alloc.stats();
    assert_eq!(s.pools_released, 3);
    assert_eq!(s.pools_released_total, 3);
    alloc.check_invariants();
    free_all(&mut alloc, blocks[3 * per_pool..].iter().copied().chain([keep]));
    // The last arena is now wholly free: releasing it counts its resident pools.
    assert_eq!(alloc.release_free_arenas(), 2 * POOL);
    assert_eq!(alloc.stats().arenas_current, 0);
}

#[test]
fn cpython38_geometry_uses_small_pools_and_arenas() {
    let mut alloc = Allocator::new(Config { geometry: Geometry::Cpython38, ..Config::default() });
    let blocks: Vec<_> = (0..256).map(|_| alloc.malloc(16).unwrap()).collect();
    let s = alloc.stats();
    assert_eq!(s.bytes_reserved, 256 * 1024);
    assert_eq!(s.pools_in_use, 1, "a 4 KiB pool holds 256 blocks of 16 bytes");
    let pools = by_pool(&blocks, 4096);
    assert_eq!(pools.len(), 1);
    free_all(&mut alloc, blocks);
}

#[test]
fn a_block_of_an_unmapped_arena_is_no_longer_ours() {
    let mut alloc = Allocator::new(Config { pool_release_delay: 0, ..Config::default() });
    let per_arena = ARENA / 512;
    let first: Vec<_> = (0..per_arena).map(|_| alloc.malloc(512).unwrap()).collect();
    let second: Vec<_> = (0..per_arena).map(|_| alloc.malloc(512).unwrap()).collect();
    assert_eq!(alloc.stats().arenas_current, 2);
    assert_eq!(by_pool(&first, ARENA).len(), 1, "the first arena is filled first");
    // The first arena empties and stays as the spare.
    free_all(&mut alloc, first);
    assert_eq!(alloc.stats().arenas_current, 2);
    // Emptying the second one unmaps it: its blocks are now foreign addresses.
    let (&last, rest) = second.split_last().unwrap();
    free_all(&mut alloc, rest.iter().copied());
    free_all(&mut alloc, [last]);
    let s = alloc.stats();
    assert_eq!((s.arenas_current, s.arenas_freed_total), (1, 1));
    assert_eq!(
        alloc.free(last.as_ptr()),
        Err(AllocError::InvalidPointer { addr: addr(last), reason: InvalidReason::NotOurs })
    );
    assert_eq!(alloc.stats(), s);
    alloc.check_invariants();
}

#[test]
fn huge_requests_fail_with_no_memory() {
    for debug_hooks in [false, true] {
        let mut alloc = Allocator::new(Config { debug_hooks, ..Config::default() });
        let p = alloc.malloc(1000).unwrap();
        fill(p, 1000, 0x77);
        let small = alloc.malloc(100).unwrap();
        let before = alloc.stats();
        for n in [usize::MAX, usize::MAX - 24, usize::MAX - 4096, isize::MAX as usize + 1, 1 << 62] {
            assert!(
                matches!(alloc.malloc(n), Err(AllocError::NoMemory { .. })),
                "malloc({n:#x}), debug hooks {debug_hooks}"
            );
            assert!(
                matches!(alloc.calloc(1, n), Err(AllocError::NoMemory { .. })),
                "calloc(1, {n:#x}), debug hooks {debug_hooks}"
            );
            for q in [p, small] {
                assert!(
                    matches!(alloc.realloc(q.as_ptr(), n), Err(AllocError::NoMemory { .. })),
                    "realloc(_, {n:#x}), debug hooks {debug_hooks}"
                );
            }
            assert_eq!(alloc.stats(), before);
        }
        assert_eq!(bytes(p, 1000), vec![0x77; 1000], "a failed realloc keeps the block");
        alloc.check_invariants();
        free_all(&mut alloc, [p, small]);
    }
}

#[test]
fn addresses_far_from_any_block_are_not_ours() {
    for debug_hooks in [false, true] {
        let mut alloc = Allocator::new(Config { debug_hooks, ..Config::default() });
        let keep = alloc.malloc(8).unwrap();
        for a in [1usize, 8, 16, 4096, 1 << 47, 1 << 48, usize::MAX & !15, usize::MAX] {
            assert_eq!(
                alloc.free(a as *mut u8),
                Err(AllocError::InvalidPointer { addr: a, reason: InvalidReason::NotOurs }),
                "free({a:#x}), debug hooks {debug_hooks}"
            );
            assert!(alloc.realloc(a as *mut u8, 8).is_err());
            assert!(alloc.usable_size(a as *mut u8).is_err());
        }
        free_all(&mut alloc, [keep]);
    }
}

#[test]
fn debug_realloc_that_fails_keeps_the_old_block() {
    let mut alloc = Allocator::new(Config { debug_hooks: true, max_bytes: 2 * ARENA, ..Config::default() });
    let p = alloc.malloc(300).unwrap();
    fill(p, 300, 0x3C);
    let before = alloc.stats();
    assert!(matches!(alloc.realloc(p.as_ptr(), 2 * ARENA), Err(AllocError::NoMemory { .. })));
    assert_eq!(alloc.stats(), before);
    assert_eq!(bytes(p, 300), vec![0x3C; 300]);
    assert_eq!(alloc.usable_size(p.as_ptr()), Ok(300), "guards intact");
    let q = alloc.realloc(p.as_ptr(), ARENA / 2).unwrap();
    assert_eq!(bytes(q, 300), vec![0x3C; 300]);
    assert!(bytes_after(q, 300, ARENA / 2 - 300).iter().all(|&b| b == CLEAN_BYTE));
    free_all(&mut alloc, [q]);
}

/// The `n` bytes at `p + offset`.
fn bytes_after(p: NonNull<u8>, offset: usize, n: usize) -> Vec<u8> {
    // SAFETY: every caller passes a range inside a live block.
    unsafe { std::slice::from_raw_parts(p.as_ptr().add(offset), n) }.to_vec()
}

#[test]
fn with_a_release_delay_free_arenas_wait_then_all_but_one_are_unmapped() {
    // Longer than the 3 x 64 pool events of filling or emptying the arenas.
    let delay = 1024;
    let mut alloc = Allocator::new(Config { pool_release_delay: delay, ..Config::default() });
    let per_arena = ARENA / 512;
    // Three arenas of 512-byte blocks, all freed: with a delay, none is
    // unmapped at once (a burst that refills them would fault them back in).
    let blocks: Vec<_> = (0..3 * per_arena).map(|_| alloc.malloc(512).unwrap()).collect();
    free_all(&mut alloc, blocks);
    let s = alloc.stats();
    assert_eq!(s.arenas_current, 3, "wholly free arenas wait for the delay");
    alloc.check_invariants();
    // Refilling reuses them: no new arena is mapped.
    let blocks: Vec<_> = (0..3 * per_arena).map(|_| alloc.malloc(512).unwrap()).collect();
    assert_eq!(alloc.stats().arenas_allocated_total, 3);
    free_all(&mut alloc, blocks);
    // Pool traffic elsewhere ages them: a small working set of two pools that
    // keeps emptying and refilling drives the pool clock and the sweeps (one
    // pool alone would just be kept, empty, for its next allocation).
    for _ in 0..(4 * delay) {
        let p: Vec<_> = (0..64).map(|_| alloc.malloc(512).unwrap()).collect();
        free_all(&mut alloc, p);
    }
    // The working set's arena (holding the pool kept empty for the next
    // allocation) and one wholly free spare remain; the third was unmapped.
    let s = alloc.stats();
    assert_eq!(s.arenas_current, 2, "aged wholly free arenas are unmapped, one spare kept");
    assert_eq!(s.arenas_freed_total, 1);
    alloc.check_invariants();
    alloc.release_free_arenas();
    assert_eq!(alloc.stats().arenas_current, 0);
}

#[test]
fn object_blocks_are_their_own_kind() {
    use obmalloc::BlockKind;
    let mut alloc = allocator();
    let raw = alloc.malloc(32).unwrap();
    let obj = alloc.malloc_object(32).unwrap();
    let big_obj = alloc.malloc_object(4096).unwrap();
    assert!(alloc.is_live_object(obj.as_ptr()));
    assert!(alloc.is_live_object(big_obj.as_ptr()));
    assert!(!alloc.is_live_object(raw.as_ptr()), "raw memory is not an object");
    // SAFETY: one byte past the start is inside the block.
    assert!(!alloc.is_live_object(unsafe { obj.as_ptr().add(16) }), "an interior pointer is not an object");
    let local = 0u64;
    assert!(!alloc.is_live_object(&local as *const u64 as *const u8));
    assert!(addr(raw) / POOL != addr(obj) / POOL, "objects and raw blocks never share a pool");

    let s = alloc.stats();
    assert_eq!(
        alloc.free(obj.as_ptr()),
        Err(AllocError::InvalidPointer {
            addr: addr(obj),
            reason: InvalidReason::WrongKind { actual: BlockKind::Object }
        })
    );
    assert_eq!(
        alloc.free(big_obj.as_ptr()),
        Err(AllocError::InvalidPointer {
            addr: addr(big_obj),
            reason: InvalidReason::WrongKind { actual: BlockKind::Object }
        })
    );
    assert_eq!(
        alloc.free_object(raw.as_ptr()),
        Err(AllocError::InvalidPointer {
            addr: addr(raw),
            reason: InvalidReason::WrongKind { actual: BlockKind::Raw }
        })
    );
    assert!(alloc.realloc(obj.as_ptr(), 64).is_err(), "objects are not realloc'd as raw memory");
    assert_eq!(alloc.stats(), s, "refused calls change nothing");
    alloc.check_invariants();

    alloc.free_object(obj.as_ptr()).unwrap();
    assert!(!alloc.is_live_object(obj.as_ptr()), "a freed object is no longer live");
    assert_eq!(alloc.free_object(obj.as_ptr()), Err(AllocError::DoubleFree { addr: addr(obj) }));
    alloc.free_object(big_obj.as_ptr()).unwrap();
    alloc.free(raw.as_ptr()).unwrap();
    assert_eq!(alloc.stats().blocks_in_use, 0);
    alloc.check_invariants();
}

/// The fast paths alone (`malloc_kind_fast`, `free_kind_fast`) serve what a
/// pool in use can serve without a state change, and otherwise answer
/// `None`/false with nothing changed: no pool in use yet, a pool that would
/// turn full, a pool that would empty, a block of another kind, a pointer
/// that is not a live block.
#[test]
fn the_kind_fast_paths_serve_only_what_changes_no_pool_state() {
    use obmalloc::BlockKind;
    let mut a = allocator();
    assert!(a.malloc_kind_fast(48, BlockKind::Object).is_none(), "no pool in use for the class yet");
    assert!(a.malloc_kind_fast(0, BlockKind::Object).is_none(), "0 bytes: the slow path's unique pointer");
    assert!(a.malloc_kind_fast(4000, BlockKind::Object).is_none(), "a large size");
    assert_eq!(a.stats().blocks_in_use, 0);

    // The first block through the full path puts a pool in use; the fast
    // path then takes (and carves) every other block of the pool but the
    // last, which would make the pool full.
    let first = a.malloc_kind(48, BlockKind::Object).unwrap();
    let capacity = POOL / 48;
    let mut blocks = vec![first];
    while let Some(p) = a.malloc_kind_fast(48, BlockKind::Object) {
        blocks.push(p);
        a.check_invariants();
    }
    assert_eq!(blocks.len(), capacity - 1, "all but the pool's last block");
    let before = a.stats();
    assert!(a.malloc_kind_fast(48, BlockKind::Object).is_none());
    assert_eq!(a.stats(), before, "a refused fast allocation changes nothing");
    blocks.push(a.malloc_kind(48, BlockKind::Object).unwrap());

    // Freeing: the first free from a full pool is a state change (full ->
    // used): refused. Then frees go through, down to the last block, whose
    // free would empty the pool: refused.
    let before = a.stats();
    assert!(!a.free_kind_fast(blocks[0].as_ptr(), BlockKind::Object), "the pool is full");
    assert!(!a.free_kind_fast(blocks[1].as_ptr(), BlockKind::Internal), "another kind");
    assert!(!a.free_kind_fast(blocks[1].as_ptr().wrapping_add(8), BlockKind::Object), "an interior pointer");
    assert_eq!(a.stats(), before, "refused fast frees change nothing");
    a.free_kind(blocks[0].as_ptr(), BlockKind::Object).unwrap();
    for p in &blocks[1..blocks.len() - 1] {
        assert!(a.free_kind_fast(p.as_ptr(), BlockKind::Object));
    }
    a.check_invariants();
    assert!(!a.free_kind_fast(blocks[1].as_ptr(), BlockKind::Object), "already freed");
    let last = blocks[blocks.len() - 1];
    assert!(!a.free_kind_fast(last.as_ptr(), BlockKind::Object), "the pool would empty");
    a.free_kind(last.as_ptr(), BlockKind::Object).unwrap();
    assert_eq!(a.stats().blocks_in_use, 0);
    a.check_invariants();
}

/// `free_kind_near` frees as `free_kind` does — every free validated, the
/// same errors — through runs of frees across pools and arenas, and across
/// rounds in which every arena is unmapped and new ones are mapped (often
/// at the same addresses): the pool it remembers from the last round is
/// gone, and must never be used.
#[test]
fn frees_near_a_hint_are_validated_and_survive_arenas_coming_and_going() {
    use obmalloc::{AllocError, BlockKind};
    let mut a = Allocator::new(Config { pool_release_delay: 0, ..Config::default() });
    for round in 0..3 {
        // Three arenas of 32-byte objects, freed in allocation order: runs
        // of one pool, then the next; pools empty, arenas are unmapped.
        let blocks: Vec<_> = (0..3 * ARENA / 32).map(|_| a.malloc_kind(32, BlockKind::Object).unwrap()).collect();
        let raw = a.malloc(32).unwrap();
        assert!(matches!(a.free_kind_near(raw.as_ptr(), BlockKind::Object), Err(AllocError::InvalidPointer { .. })));
        assert!(matches!(
            a.free_kind_near(blocks[1].as_ptr().wrapping_add(8), BlockKind::Object),
            Err(AllocError::InvalidPointer { .. })
        ));
        for (i, p) in blocks.iter().enumerate() {
            a.free_kind_near(p.as_ptr(), BlockKind::Object).unwrap();
            if i % 4099 == 0 {
                a.check_invariants();
                assert_eq!(
                    a.free_kind_near(p.as_ptr(), BlockKind::Object),
                    Err(AllocError::DoubleFree { addr: p.as_ptr() as usize }),
                    "round {round}, block {i}"
                );
            }
        }
        a.free(raw.as_ptr()).unwrap();
        a.check_invariants();
        assert_eq!(a.stats().blocks_in_use, 0, "round {round}");
        assert!(a.stats().arenas_freed_total > 0, "round {round}: arenas were unmapped");
        // Every arena goes, the remembered pool's too.
        a.release_free_arenas();
        assert_eq!(a.stats().arenas_current, 0, "round {round}");
    }
}

#[test]
fn object_and_internal_blocks_of_17_to_24_bytes_are_24_bytes_and_validated() {
    let mut alloc = allocator();
    for kind in [BlockKind::Object, BlockKind::Internal] {
        let blocks: Vec<NonNull<u8>> = (0..100).map(|_| alloc.malloc_kind(24, kind).unwrap()).collect();
        for pair in blocks.windows(2) {
            assert_eq!(addr(pair[1]) - addr(pair[0]), 24, "{kind:?}: one 24-byte block after another");
        }
        assert!(blocks.iter().all(|&p| addr(p).is_multiple_of(8)), "8-byte aligned");
        let before = alloc.stats().bytes_in_use;
        let one = alloc.malloc_kind(17, kind).unwrap();
        assert_eq!(alloc.stats().bytes_in_use - before, 24, "17 bytes take a 24-byte block");
        // Every free is validated on 24-byte boundaries: an interior pointer
        // (8 and 16 bytes in, where 16-byte classes have block starts), a
        // double free, a free of the wrong kind.
        for offset in [8, 16] {
            let inner = blocks[1].as_ptr().wrapping_add(offset);
            assert!(
                matches!(alloc.free_kind(inner, kind), Err(AllocError::InvalidPointer { .. })),
                "{kind:?} + {offset}"
            );
        }
        let other = if kind == BlockKind::Object { BlockKind::Internal } else { BlockKind::Object };
        assert!(alloc.free_kind(blocks[2].as_ptr(), other).is_err(), "wrong kind refused");
        alloc.free_kind(one.as_ptr(), kind).unwrap();
        assert_eq!(alloc.free_kind(one.as_ptr(), kind), Err(AllocError::DoubleFree { addr: addr(one) }));
        for p in blocks {
            alloc.free_kind(p.as_ptr(), kind).unwrap();
        }
        alloc.check_invariants();
    }
    // Raw memory keeps C's 16-byte alignment: 24 bytes take a 32-byte block.
    let a = alloc.malloc(24).unwrap();
    let b = alloc.malloc(24).unwrap();
    assert_eq!(addr(b) - addr(a), 32);
    assert_eq!(alloc.usable_size(a.as_ptr()), Ok(32));
    free_all(&mut alloc, [a, b]);
    alloc.check_invariants();
}
