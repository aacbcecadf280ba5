//! Property tests: random sequences of malloc / calloc / realloc / free, and of
//! invalid frees, checked after every step against a model of the live blocks.
//!
//! The model knows, for each live block, the size the user asked for, the
//! byte it was filled with and whether it lives in a pool or is a large block;
//! from that it predicts `stats()` exactly, where each block must not overlap
//! another, which realloc keeps its pointer, and which error a bad pointer
//! earns. The same property runs with CPython 3.10's geometry, with 3.8's,
//! with the debug hooks on, and with bulk traffic that fills and drains
//! several arenas (pool release, arena unmapping, the spare arena).

use std::collections::HashSet;

use obmalloc::debug_hooks::CLEAN_BYTE;
use obmalloc::size_class::{block_size, class_of, SMALL_REQUEST_THRESHOLD};
use obmalloc::{AllocError, Allocator, Config, Geometry, InvalidReason, Stats, DEFAULT_POOL_RELEASE_DELAY};
use proptest::prelude::*;
use proptest::sample::Index;

/// Bytes the debug hooks add around each block: a 16-byte head, an 8-byte tail.
const DEBUG_HEAD: usize = 16;
const DEBUG_OVERHEAD: usize = 24;

#[derive(Clone, Debug)]
enum Op {
    Malloc(usize, u8),
    Calloc(usize, usize, u8),
    Realloc(Index, usize, u8),
    Free(Index),
    /// Free a block, then free it again.
    DoubleFree(Index),
    /// Free `p + 16` (when the block is big enough) or `p + 1`.
    Interior(Index, bool),
    /// Free a pointer into the stack, or into a `Box`.
    Foreign(bool),
    /// Free a block, then realloc it.
    ReallocFreed(Index, usize),
    CallocOverflow,
    ReleaseFreeArenas,
    /// Many mallocs of one size in a row, to fill pools and arenas.
    Burst(usize, usize, u8),
    /// Free `count` blocks, every `stride`-th in address order from `start`,
    /// to empty whole pools and arenas.
    FreeMany(Index, usize, usize),
}

/// Request sizes: mostly pool sizes, some large ones from the system
/// allocator, occasionally one big enough for its own mapping.
fn size() -> impl Strategy<Value = usize> {
    prop_oneof![
        60 => 0usize..=SMALL_REQUEST_THRESHOLD,
        30 => 0usize..=2000,
        2 => 128 * 1024usize..=300 * 1024,
    ]
}

/// The everyday mix: single calls, bad calls, now and then a burst.
fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        1 => (1usize..=200, 0usize..=SMALL_REQUEST_THRESHOLD, any::<u8>())
            .prop_map(|(c, n, b)| Op::Burst(c, n, b)),
        1 => (any::<Index>(), 1usize..=3, 1usize..=200).prop_map(|(i, s, c)| Op::FreeMany(i, s, c)),
        30 => (size(), any::<u8>()).prop_map(|(n, b)| Op::Malloc(n, b)),
        5 => (0usize..=40, 0usize..=100, any::<u8>()).prop_map(|(c, s, b)| Op::Calloc(c, s, b)),
        15 => (any::<Index>(), size(), any::<u8>()).prop_map(|(i, n, b)| Op::Realloc(i, n, b)),
        20 => any::<Index>().prop_map(Op::Free),
        3 => any::<Index>().prop_map(Op::DoubleFree),
        3 => (any::<Index>(), any::<bool>()).prop_map(|(i, b)| Op::Interior(i, b)),
        2 => any::<bool>().prop_map(Op::Foreign),
        2 => (any::<Index>(), size()).prop_map(|(i, n)| Op::ReallocFreed(i, n)),
        1 => Just(Op::CallocOverflow),
        1 => Just(Op::ReleaseFreeArenas),
    ]
}

/// Bulk traffic: enough blocks for several arenas, freed in address runs so
/// that pools are released, arenas unmapped and the spare kept.
fn bulk_op() -> impl Strategy<Value = Op> {
    prop_oneof![
        10 => (1usize..=2500, 0usize..=SMALL_REQUEST_THRESHOLD, any::<u8>())
            .prop_map(|(c, n, b)| Op::Burst(c, n, b)),
        10 => (any::<Index>(), 1usize..=3, 1usize..=4000).prop_map(|(i, s, c)| Op::FreeMany(i, s, c)),
        2 => (size(), any::<u8>()).prop_map(|(n, b)| Op::Malloc(n, b)),
        2 => (any::<Index>(), size(), any::<u8>()).prop_map(|(i, n, b)| Op::Realloc(i, n, b)),
        3 => any::<Index>().prop_map(Op::DoubleFree),
        1 => (any::<Index>(), any::<bool>()).prop_map(|(i, b)| Op::Interior(i, b)),
        1 => (any::<Index>(), size()).prop_map(|(i, n)| Op::ReallocFreed(i, n)),
        1 => Just(Op::ReleaseFreeArenas),
    ]
}

#[derive(Clone, Copy, Debug)]
struct Block {
    /// The pointer handed out.
    ptr: usize,
    /// Bytes requested.
    req: usize,
    /// Every requested byte holds this value.
    fill: u8,
    /// The raw block lives in a pool and has this class size; `None` for a
    /// large block.
    class_size: Option<usize>,
}

struct Model {
    alloc: Allocator,
    debug: bool,
    pool_size: usize,
    /// Without a release delay at most one wholly free arena is kept.
    release_delay: u64,
    live: Vec<Block>,
    /// Raw addresses of large blocks ever freed and not handed out again: a
    /// free there may be reported as a double free instead of "not ours".
    freed_large: HashSet<usize>,
}

impl Model {
    fn new(config: Config) -> Model {
        Model {
            alloc: Allocator::new(config),
            debug: config.debug_hooks,
            pool_size: config.geometry.pool_size(),
            release_delay: config.pool_release_delay,
            live: Vec::new(),
            freed_large: HashSet::new(),
        }
    }

    /// Bytes the allocator itself asks its pools or large path for, to serve `n`.
    fn raw_size(&self, n: usize) -> usize {
        if self.debug {
            n + DEBUG_OVERHEAD
        } else {
            n.max(1)
        }
    }

    /// The address the allocator validates for a user pointer.
    fn raw_addr(&self, user: usize) -> usize {
        if self.debug {
            user.wrapping_sub(DEBUG_HEAD)
        } else {
            user
        }
    }

    /// Where a fresh allocation of `n` bytes lives: its pool class size, or
    /// `None` for a large block.
    fn fresh_class(&self, n: usize) -> Option<usize> {
        let raw = self.raw_size(n);
        (raw <= SMALL_REQUEST_THRESHOLD).then(|| block_size(class_of(raw)))
    }

    /// `(start, len)` of the raw memory a block occupies.
    fn extent(&self, b: &Block) -> (usize, usize) {
        let raw_len = self.raw_size(b.req);
        (self.raw_addr(b.ptr), b.class_size.unwrap_or(raw_len))
    }

    /// What `stats().bytes_in_use` counts for a block: its class size, or the
    /// raw bytes of a large block.
    fn accounted(&self, b: &Block) -> u64 {
        b.class_size.unwrap_or(self.raw_size(b.req)) as u64
    }

    fn track(&mut self, b: Block) {
        if b.class_size.is_none() {
            self.freed_large.remove(&self.raw_addr(b.ptr));
        }
        self.live.push(b);
    }

    /// Frees a live block (removed from the model) and expects success.
    fn free_ok(&mut self, i: usize) -> Block {
        let b = self.live.swap_remove(i);
        check_contents(&b, b.req);
        self.alloc.free(b.ptr as *mut u8).expect("free of a live block");
        if b.class_size.is_none() {
            self.freed_large.insert(self.raw_addr(b.ptr));
        }
        b
    }

    /// Checks the error for a pointer whose validated address `raw` is in no
    /// arena and is no live large block.
    fn check_foreign(&self, user: usize, result: Result<(), AllocError>) {
        let raw = self.raw_addr(user);
        match result {
            Err(AllocError::InvalidPointer { addr, reason: InvalidReason::NotOurs }) => assert_eq!(addr, user),
            Err(AllocError::DoubleFree { addr }) if self.freed_large.contains(&raw) => {
                assert_eq!(addr, user)
            }
            other => panic!("pointer {user:#x} is not ours: got {other:?}"),
        }
    }

    fn apply(&mut self, op: &Op) {
        match *op {
            Op::Malloc(n, fill) => {
                let p = self.alloc.malloc(n).expect("malloc");
                let b = Block { ptr: p.as_ptr() as usize, req: n, fill: CLEAN_BYTE, class_size: self.fresh_class(n) };
                if self.debug {
                    check_contents(&b, n);
                }
                self.track(Block { fill, ..b });
                fill_block(p.as_ptr(), n, fill);
            }
            Op::Calloc(count, each, fill) => {
                let n = count * each;
                let p = self.alloc.calloc(count, each).expect("calloc");
                let b = Block { ptr: p.as_ptr() as usize, req: n, fill: 0, class_size: self.fresh_class(n) };
                check_contents(&b, n);
                self.track(Block { fill, ..b });
                fill_block(p.as_ptr(), n, fill);
            }
            Op::Realloc(i, n, fill) => {
                if self.live.is_empty() {
                    return;
                }
                let i = i.index(self.live.len());
                let old = self.live.swap_remove(i);
                check_contents(&old, old.req);
                let p = self.alloc.realloc(old.ptr as *mut u8, n).expect("realloc").as_ptr() as usize;
                let keep = old.req.min(n);
                let new = Block { ptr: p, req: n, ..old };
                check_contents(&new, keep);
                let class_size = if self.debug {
                    // Debug realloc always copies into a fresh block, whose new
                    // bytes carry the clean fill.
                    assert_ne!(p, old.ptr, "debug realloc must move");
                    check_range(p + keep, n - keep, CLEAN_BYTE);
                    self.fresh_class(n)
                } else {
                    match old.class_size {
                        Some(size) => {
                            let want = n.max(1);
                            if want <= size && 4 * want > 3 * size {
                                assert_eq!(p, old.ptr, "realloc {} -> {n} must stay in place", old.req);
                                Some(size)
                            } else {
                                assert_ne!(p, old.ptr, "realloc {} -> {n} must move", old.req);
                                self.fresh_class(n)
                            }
                        }
                        // A large block stays large, whatever its new size.
                        None => None,
                    }
                };
                if old.class_size.is_none() && self.debug {
                    self.freed_large.insert(self.raw_addr(old.ptr));
                }
                self.track(Block { ptr: p, req: n, fill, class_size });
                fill_block(p as *mut u8, n, fill);
            }
            Op::Burst(count, n, fill) => {
                for _ in 0..count {
                    self.apply(&Op::Malloc(n, fill));
                }
            }
            Op::FreeMany(start, stride, count) => {
                if self.live.is_empty() {
                    return;
                }
                let mut order: Vec<usize> = (0..self.live.len()).collect();
                order.sort_unstable_by_key(|&i| self.live[i].ptr);
                let mut doomed: Vec<usize> =
                    order.into_iter().skip(start.index(self.live.len())).step_by(stride).take(count).collect();
                // Highest index first, so that swap_remove moves no doomed block.
                doomed.sort_unstable_by(|a, b| b.cmp(a));
                for i in doomed {
                    self.free_ok(i);
                }
            }
            Op::Free(i) => {
                if !self.live.is_empty() {
                    self.free_ok(i.index(self.live.len()));
                }
            }
            Op::DoubleFree(i) => {
                if self.live.is_empty() {
                    return;
                }
                let freed_before = self.alloc.stats().arenas_freed_total;
                let b = self.free_ok(i.index(self.live.len()));
                let before = self.check();
                let result = self.alloc.free(b.ptr as *mut u8);
                if b.class_size.is_some() && before.arenas_freed_total != freed_before {
                    // The free emptied the block's arena, which was unmapped
                    // (a spare was already kept): the address is now foreign.
                    self.check_foreign(b.ptr, result);
                } else {
                    assert_eq!(result, Err(AllocError::DoubleFree { addr: b.ptr }), "{b:?}");
                }
                assert_eq!(self.check(), before, "a double free changed the allocator");
            }
            Op::ReallocFreed(i, n) => {
                if self.live.is_empty() {
                    return;
                }
                let b = self.free_ok(i.index(self.live.len()));
                let before = self.check();
                let result = self.alloc.realloc(b.ptr as *mut u8, n);
                assert!(
                    matches!(result, Err(AllocError::DoubleFree { .. } | AllocError::InvalidPointer { .. })),
                    "realloc of freed {b:?}: {result:?}"
                );
                assert_eq!(self.check(), before, "a realloc of a freed block changed the allocator");
            }
            Op::Interior(i, plus16) => {
                if self.live.is_empty() {
                    return;
                }
                let b = self.live[i.index(self.live.len())];
                let before = self.alloc.stats();
                let delta = match b.class_size {
                    Some(size) if plus16 && size >= 32 => 16,
                    _ => 1,
                };
                let q = b.ptr + delta;
                let result = self.alloc.free(q as *mut u8);
                match b.class_size {
                    Some(_) => {
                        let raw = self.raw_addr(b.ptr);
                        let expect = AllocError::InvalidPointer {
                            addr: q,
                            reason: InvalidReason::Interior { block: raw, offset: delta },
                        };
                        assert_eq!(result, Err(expect));
                    }
                    None => self.check_foreign(q, result),
                }
                assert_eq!(self.alloc.stats(), before);
                assert!(self.alloc.realloc(q as *mut u8, 8).is_err());
                assert_eq!(self.alloc.stats(), before);
            }
            Op::Foreign(on_stack) => {
                let before = self.alloc.stats();
                let local = [0u64; 8];
                let boxed = Box::new([0u64; 8]);
                let p = if on_stack {
                    local.as_ptr().wrapping_add(2) as usize
                } else {
                    boxed.as_ptr().wrapping_add(2) as usize
                };
                let result = self.alloc.free(p as *mut u8);
                self.check_foreign(p, result);
                assert!(self.alloc.realloc(p as *mut u8, 8).is_err());
                assert!(self.alloc.usable_size(p as *mut u8).is_err());
                assert_eq!(self.alloc.stats(), before);
                drop(boxed);
            }
            Op::CallocOverflow => {
                let before = self.alloc.stats();
                assert!(matches!(self.alloc.calloc(usize::MAX, 2), Err(AllocError::NoMemory { .. })));
                assert_eq!(self.alloc.stats(), before);
            }
            Op::ReleaseFreeArenas => {
                let before = self.alloc.stats();
                let released = self.alloc.release_free_arenas();
                let after = self.alloc.stats();
                assert_eq!(after.blocks_in_use, before.blocks_in_use);
                assert_eq!(after.pools_in_use, before.pools_in_use);
                assert!(after.arenas_current <= before.arenas_current);
                assert_eq!(released % self.pool_size, 0);
                assert_eq!(self.alloc.release_free_arenas(), 0, "a second release finds nothing");
            }
        }
    }

    /// Checks the allocator against the model; returns its stats.
    fn check(&self) -> Stats {
        // Alignment, and no two live blocks overlapping.
        let mut extents: Vec<(usize, usize)> = self.live.iter().map(|b| self.extent(b)).collect();
        extents.sort_unstable();
        for b in &self.live {
            assert_eq!(b.ptr % 16, 0, "{b:?} misaligned");
        }
        for w in extents.windows(2) {
            assert!(w[0].0 + w[0].1 <= w[1].0, "blocks overlap: {:x?} and {:x?}", w[0], w[1]);
        }
        // Stats, exactly.
        let s = self.alloc.stats();
        let large: Vec<&Block> = self.live.iter().filter(|b| b.class_size.is_none()).collect();
        assert_eq!(s.blocks_in_use, self.live.len() as u64, "blocks_in_use");
        assert_eq!(s.large_allocations, large.len() as u64, "large_allocations");
        let large_bytes: u64 = large.iter().map(|b| self.accounted(b)).sum();
        assert_eq!(s.large_bytes, large_bytes, "large_bytes");
        let bytes: u64 = self.live.iter().map(|b| self.accounted(b)).sum();
        assert_eq!(s.bytes_in_use, bytes, "bytes_in_use");
        assert!(s.bytes_reserved >= bytes);
        // What each block says of itself.
        for b in &self.live {
            let want = match (self.debug, b.class_size) {
                (false, Some(size)) => size,
                (false, None) => b.req.max(1),
                (true, _) => b.req,
            };
            assert_eq!(self.alloc.usable_size(b.ptr as *mut u8), Ok(want), "{b:?}");
        }
        self.alloc.check_invariants();
        s
    }

    /// Frees everything, gives all memory back and checks nothing is left.
    fn finish(mut self) {
        for b in &self.live {
            check_contents(b, b.req);
        }
        while !self.live.is_empty() {
            self.free_ok(self.live.len() - 1);
        }
        let s = self.check();
        assert_eq!((s.blocks_in_use, s.bytes_in_use, s.pools_in_use), (0, 0, 0));
        if self.release_delay == 0 {
            assert!(s.arenas_current <= 1, "at most one spare arena once all is free");
        }
        self.alloc.release_free_arenas();
        let s = self.alloc.stats();
        assert_eq!(s.arenas_current, 0);
        assert_eq!(s.bytes_reserved, 0);
        assert_eq!(s.arenas_freed_total, s.arenas_allocated_total);
        self.alloc.check_invariants();
    }
}

/// Writes `fill` over the `n` requested bytes of a fresh block.
fn fill_block(p: *mut u8, n: usize, fill: u8) {
    // SAFETY: `p` is a live block of at least `n` bytes just handed out.
    unsafe { std::ptr::write_bytes(p, fill, n) };
}

/// Asserts the first `n` bytes of block `b` hold its fill byte.
fn check_contents(b: &Block, n: usize) {
    check_range(b.ptr, n, b.fill);
}

fn check_range(start: usize, n: usize, fill: u8) {
    // SAFETY: callers pass a range inside a live block.
    let bytes = unsafe { std::slice::from_raw_parts(start as *const u8, n) };
    let pattern = [fill; 4096];
    for (k, chunk) in bytes.chunks(pattern.len()).enumerate() {
        if chunk != &pattern[..chunk.len()] {
            let at = chunk.iter().position(|&c| c != fill).unwrap() + k * pattern.len();
            panic!("byte {at} of the block at {start:#x} is {:#04x}, want {fill:#04x}", chunk[at % 4096]);
        }
    }
}

fn run(config: Config, ops: &[Op]) {
    let mut model = Model::new(config);
    for op in ops {
        model.apply(op);
        model.check();
    }
    model.finish();
}

/// How long empty pools stay resident: at once (CPython plus the release
/// threshold), a few pool events (the aging sweep runs often), or the default.
fn release_delay() -> impl Strategy<Value = u64> {
    prop_oneof![Just(0u64), 1u64..=16, Just(DEFAULT_POOL_RELEASE_DELAY)]
}

fn geometry(small: bool) -> Geometry {
    if small {
        Geometry::Cpython38
    } else {
        Geometry::Cpython310
    }
}

fn config() -> ProptestConfig {
    ProptestConfig { cases: 96, ..ProptestConfig::default() }
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn matches_model_cpython310(
        ops in prop::collection::vec(op(), 1..300),
        pool_release_delay in release_delay(),
    ) {
        run(Config { pool_release_delay, ..Config::default() }, &ops);
    }

    #[test]
    fn matches_model_cpython38(
        ops in prop::collection::vec(op(), 1..300),
        pool_release_delay in release_delay(),
    ) {
        let geometry = Geometry::Cpython38;
        run(Config { geometry, pool_release_delay, ..Config::default() }, &ops);
    }

    #[test]
    fn matches_model_in_bulk(
        ops in prop::collection::vec(bulk_op(), 1..40),
        small in any::<bool>(),
        pool_release_delay in release_delay(),
    ) {
        let geometry = geometry(small);
        run(Config { geometry, pool_release_delay, ..Config::default() }, &ops);
    }

    #[test]
    fn matches_model_with_debug_hooks(
        ops in prop::collection::vec(op(), 1..300),
        small in any::<bool>(),
        pool_release_delay in release_delay(),
    ) {
        let geometry = geometry(small);
        run(Config { geometry, debug_hooks: true, pool_release_delay, ..Config::default() }, &ops);
    }
}
