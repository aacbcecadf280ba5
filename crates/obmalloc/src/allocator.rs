//! The allocator: size classes → pools → arenas, and large blocks beside them.
//!
//! Read `malloc` and `free` first: each is a short inline fast path that
//! leaves on one branch for everything else. The fast paths rely on two
//! invariants kept by the slow paths:
//! - every pool in a `usedpools` ring (one per class and block kind) has a
//!   free block (`freeblock != null`);
//! - the arena map knows exactly our arenas, and each pool's bitmap knows
//!   exactly its allocated blocks, so a free is validated with one cache
//!   load, a multiply and a bit test before anything is written.

use std::ptr::{self, NonNull};

use hashbrown::HashMap;

use crate::arena::{ArenaMeta, UsableArenas, POOLS_PER_ARENA, RELEASE_THRESHOLD};
use crate::arena_map::ArenaMap;
use crate::debug_hooks;
use crate::os;
use crate::pool::{PoolMeta, PoolState, MAX_POOL_SIZE};
use crate::size_class::{block_size, class_of, class_of_kind, NUM_CLASSES, SMALL_REQUEST_THRESHOLD};
use crate::{AllocError, BlockKind, Config, InvalidReason, RETAIN_CACHE_DIVISOR, RETAIN_CACHE_FLOOR};

/// Large blocks at least this big get their own mapping (returned to the OS
/// on free, whatever glibc's dynamic threshold says); smaller ones come from
/// the system `malloc`.
pub const LARGE_MMAP_THRESHOLD: usize = 128 * 1024;

/// How many recently freed large addresses are remembered to report a second
/// free of one as a double free rather than as a foreign pointer.
const RECENT_LARGE_FREES: usize = 32;

#[derive(Clone, Copy, Debug)]
struct LargeBlock {
    kind: BlockKind,
    /// Bytes requested.
    size: usize,
    /// Length of its own mapping, or 0 when it came from `malloc`.
    mapped: usize,
}

impl LargeBlock {
    fn reserved(&self) -> usize {
        if self.mapped > 0 {
            self.mapped
        } else {
            self.size
        }
    }
}

/// Where a validated pointer lives.
enum Located {
    Small { pool: *mut PoolMeta, index: usize },
    Large(LargeBlock),
}

/// Where a live block is (see [`Allocator::find_live`]); used once.
pub struct LiveBlock(Located);

impl Located {
    fn kind(&self) -> BlockKind {
        match self {
            // SAFETY: a located pool is live.
            Located::Small { pool, .. } => unsafe { (**pool).kind },
            Located::Large(block) => block.kind,
        }
    }
}

/// The number of rings in `usedpools`: one per class and kind, rounded up
/// to a power of two, so a mask keeps a ring index in bounds.
const RINGS: usize = (NUM_CLASSES * 4).next_power_of_two();

/// The `usedpools` ring of a class and kind: raw rings first, then objects.
#[inline(always)]
const fn ring_of(kind: BlockKind, class: usize) -> usize {
    (kind as usize) * NUM_CLASSES + class
}

/// Running totals that cannot be recomputed by walking the arenas.
#[derive(Default, Clone, Copy)]
pub(crate) struct Counters {
    pub(crate) arenas_allocated_total: u64,
    pub(crate) arenas_freed_total: u64,
    pub(crate) arenas_highwater: u64,
    pub(crate) pools_released_total: u64,
    pub(crate) bytes_returned_total: u64,
    pub(crate) large_bytes: u64,
    /// Times the retention cache went over its bound and was trimmed.
    pub(crate) cache_trims_total: u64,
}

/// CPython's small-object allocator with validated frees. One per runtime;
/// not shared between threads (it is `Send`, not `Sync`).
pub struct Allocator {
    /// Per class and kind (`ring_of`), a ring of pools with free blocks
    /// (null when none).
    usedpools: [*mut PoolMeta; RINGS],
    map: ArenaMap,
    /// `malloc`'s fast path serves sizes `1..=fast_path_limit`: 512, or 0
    /// with debug hooks (every block then takes the slow path that adds
    /// guards) — one compare instead of a size check and a flag check.
    fast_path_limit: usize,
    /// `malloc_kind`'s fast path serves sizes `1..=kind_fast_path_limit`:
    /// 512, or 0 while failures are injected (see `fail_after`). Without
    /// the `fail-injection` feature the limit is the constant 512.
    #[cfg(feature = "fail-injection")]
    kind_fast_path_limit: usize,
    /// Failure injection for tests ([`Allocator::fail_allocations_after`]):
    /// how many more allocations succeed before every one fails; `None` =
    /// off. Checked only on the slow path: while it is set both fast-path
    /// limits are 0, so every allocation reaches the check.
    #[cfg(feature = "fail-injection")]
    fail_after: Option<u64>,
    debug: bool,
    pool_shift: u32,
    pub(crate) pool_size: usize,
    pub(crate) arena_size: usize,
    /// Every mapped arena; `ArenaMeta::index` is its position.
    pub(crate) arenas: Vec<*mut ArenaMeta>,
    usable: UsableArenas,
    /// Arenas with all pools free (one spare; more only while the release
    /// delay has not passed).
    wholly_free: u32,
    large: HashMap<usize, LargeBlock>,
    recent_large_frees: [usize; RECENT_LARGE_FREES],
    recent_next: usize,
    max_bytes: usize,
    /// Counts pool events (a pool taken from an arena, a pool emptied): the
    /// clock by which empty pools age. Deterministic, unlike a timer.
    pool_clock: u64,
    /// Pool events an empty pool must stay empty before its pages are given
    /// back (0: as soon as its arena holds `RELEASE_THRESHOLD` empty pools).
    release_delay: u64,
    /// Clock value at which the next sweep for aged empty pools runs.
    next_sweep: u64,
    /// Bytes of arenas + large blocks currently held.
    pub(crate) reserved: usize,
    /// Pools taken from their arenas and not yet returned (Used and Full,
    /// an empty pool kept at the head of its ring included): with the large
    /// bytes, the "bytes in use" the retention cache is measured against.
    /// Counted on pool events only, never on a block's malloc or free.
    pub(crate) pools_taken: usize,
    /// Sum of every arena's `resident_empty`: the empty pools whose pages
    /// are resident (the spare arena's, and the cache's).
    pub(crate) resident_empty_total: usize,
    /// `Config::retain_cache_max`.
    retain_cache_max: usize,
    /// Arenas are mapped in chunks of `os::HUGE_PAGE` (or one arena, if
    /// larger) aligned to the chunk, so a chunk can be one huge page; the
    /// chunk's arena slots not handed out yet are `chunk_next..chunk_end`
    /// (mapped, never touched: no memory), and `chunk_huge` says whether the
    /// chunk was marked for huge pages.
    chunk_next: usize,
    chunk_end: usize,
    chunk_huge: bool,
    /// `Config::huge_page_threshold`.
    huge_page_threshold: usize,
    /// The pool of the last `free_kind_near` and its number (`usize::MAX`:
    /// none); forgotten whenever an arena is unmapped.
    near_pool_number: usize,
    near_pool: *mut PoolMeta,
    /// Mappings of arenas retired by `unmap_arena` (the arena's pages and
    /// its metadata's), as (start, length), not yet unmapped (see
    /// `unmap_pending`); empty between public calls unless unmaps are held.
    pending_unmaps: Vec<(usize, usize)>,
    /// Depth of `hold_unmaps`: while above zero, `unmap_pending` keeps the
    /// retired mappings for `release_held_unmaps` to unmap together.
    unmaps_held: u32,
    pub(crate) counters: Counters,
}

// SAFETY: every raw pointer inside an `Allocator` points to memory it owns
// exclusively (arena mappings, boxed arena metadata, arena map leaves), never
// to thread-local or shared state, so moving the whole allocator to another
// thread is as safe as moving a `Vec`. It is not `Sync`: all methods that
// touch the pointers take `&mut self` or read through `&self` only.
unsafe impl Send for Allocator {}

impl Allocator {
    /// Creates an allocator; nothing is mapped until the first allocation.
    pub fn new(config: Config) -> Allocator {
        let pool_size = config.geometry.pool_size();
        let arena_size = config.geometry.arena_size();
        debug_assert!(pool_size <= MAX_POOL_SIZE && arena_size == pool_size * POOLS_PER_ARENA);
        Allocator {
            usedpools: [ptr::null_mut(); RINGS],
            map: ArenaMap::new(arena_size.trailing_zeros(), !config.debug_hooks),
            fast_path_limit: if config.debug_hooks { 0 } else { SMALL_REQUEST_THRESHOLD },
            #[cfg(feature = "fail-injection")]
            kind_fast_path_limit: SMALL_REQUEST_THRESHOLD,
            #[cfg(feature = "fail-injection")]
            fail_after: None,
            debug: config.debug_hooks,
            pool_shift: pool_size.trailing_zeros(),
            pool_size,
            arena_size,
            arenas: Vec::new(),
            usable: UsableArenas::new(),
            wholly_free: 0,
            large: HashMap::new(),
            recent_large_frees: [0; RECENT_LARGE_FREES],
            recent_next: 0,
            max_bytes: config.max_bytes,
            pool_clock: 0,
            release_delay: config.pool_release_delay,
            next_sweep: config.pool_release_delay,
            reserved: 0,
            pools_taken: 0,
            resident_empty_total: 0,
            retain_cache_max: config.retain_cache_max,
            chunk_next: 0,
            chunk_end: 0,
            chunk_huge: false,
            huge_page_threshold: config.huge_page_threshold,
            near_pool_number: usize::MAX,
            near_pool: ptr::null_mut(),
            pending_unmaps: Vec::new(),
            unmaps_held: 0,
            counters: Counters::default(),
        }
    }

    /// Whether the debug hooks (guard bytes, fills) are on.
    pub fn debug_hooks(&self) -> bool {
        self.debug
    }

    /// Failure injection, for out-of-memory tests (feature
    /// `fail-injection`, off by default: the library as built for C hosts
    /// has none of it): with `Some(n)` the next `n` allocations (malloc,
    /// calloc, realloc that moves or grows, of any kind) succeed and every
    /// one after them fails with [`AllocError::NoMemory`], until `None`
    /// turns it off. Frees and in-place reallocs are not allocations.
    ///
    /// While armed both fast-path limits are 0, so every allocation takes
    /// the slow path, where the countdown is checked (as the debug hooks do
    /// for `malloc`). With the feature, `malloc_kind`'s limit is a field
    /// instead of a constant; without it, the fast paths are unchanged.
    #[cfg(feature = "fail-injection")]
    pub fn fail_allocations_after(&mut self, n: Option<u64>) {
        self.fail_after = n;
        let armed = n.is_some();
        self.fast_path_limit = if self.debug || armed { 0 } else { SMALL_REQUEST_THRESHOLD };
        self.kind_fast_path_limit = if armed { 0 } else { SMALL_REQUEST_THRESHOLD };
    }

    /// The injected failure, if the countdown has run out; counts one
    /// allocation otherwise. Called at the start of every slow allocation.
    #[cfg(feature = "fail-injection")]
    #[inline(always)]
    fn injected_failure(&mut self, requested: usize) -> Result<(), AllocError> {
        match &mut self.fail_after {
            None => Ok(()),
            Some(0) => Err(AllocError::NoMemory { requested, reason: "an injected allocation failure (test)" }),
            Some(left) => {
                *left -= 1;
                Ok(())
            }
        }
    }

    #[cfg(not(feature = "fail-injection"))]
    #[inline(always)]
    fn injected_failure(&mut self, _requested: usize) -> Result<(), AllocError> {
        Ok(())
    }

    /// `malloc_kind`'s fast-path limit: a constant unless failures can be
    /// injected.
    #[inline(always)]
    fn kind_fast_path_limit(&self) -> usize {
        #[cfg(feature = "fail-injection")]
        return self.kind_fast_path_limit;
        #[cfg(not(feature = "fail-injection"))]
        SMALL_REQUEST_THRESHOLD
    }

    // ------------------------------------------------------------------
    // malloc

    /// Allocates `n` bytes aligned to 16. `n == 0` gives a unique pointer.
    #[inline(always)]
    pub fn malloc(&mut self, n: usize) -> Result<NonNull<u8>, AllocError> {
        if n.wrapping_sub(1) < self.fast_path_limit {
            if let Some(block) = self.alloc_from_used_pool(ring_of(BlockKind::Raw, class_of(n))) {
                return Ok(block);
            }
        }
        self.malloc_slow(n)
    }

    /// Allocates a block of `n` bytes of `kind` (Object or Internal) from the
    /// pools of that kind, never with debug hooks (pymem writes these blocks,
    /// not the host). Free it with [`Allocator::free_kind`].
    #[inline(always)]
    pub fn malloc_kind(&mut self, n: usize, kind: BlockKind) -> Result<NonNull<u8>, AllocError> {
        if n.wrapping_sub(1) < self.kind_fast_path_limit() {
            if let Some(block) = self.alloc_from_used_pool(ring_of(kind, class_of_kind(n, kind))) {
                return Ok(block);
            }
        }
        self.alloc_kind(n, kind)
    }

    /// [`Allocator::malloc_kind`]'s fast path alone: a block from the first
    /// pool in use of its size class, or `None`, with nothing changed, when
    /// the slow path is needed (no pool in use, a large size). For callers
    /// whose own fast path has no error handling; they retry with
    /// `malloc_kind` on `None`.
    ///
    /// A leaf: when the block taken is the pool's last free one it carves
    /// the next inline, and when the pool has none left to carve (it turns
    /// full, a state change) it answers `None` before taking anything, so
    /// it calls nothing and its callers keep a small frame.
    #[inline(always)]
    pub fn malloc_kind_fast(&mut self, n: usize, kind: BlockKind) -> Option<NonNull<u8>> {
        if n.wrapping_sub(1) >= self.kind_fast_path_limit() {
            return None;
        }
        let pool = self.usedpools[ring_of(kind, class_of_kind(n, kind)) & (RINGS - 1)];
        if pool.is_null() {
            return None;
        }
        // SAFETY: as `alloc_from_used_pool`: a Used pool's `freeblock` is a
        // free block whose first word is the next link; a carved block lies
        // inside the pool (nextoffset <= maxnextoffset).
        unsafe {
            let p = &mut *pool;
            let block = p.freeblock;
            let mut next = *(block as *const *mut u8);
            if next.is_null() {
                if p.nextoffset > p.maxnextoffset {
                    return None;
                }
                next = (p.base + p.nextoffset as usize) as *mut u8;
                *(next as *mut *mut u8) = ptr::null_mut();
                p.nextoffset += p.size;
            }
            p.freeblock = next;
            p.count += 1;
            let index = p.index_of(block as usize);
            p.mark_allocated(index);
            Some(NonNull::new_unchecked(block))
        }
    }

    /// Allocates an object block (see [`Allocator::malloc_kind`]).
    #[inline(always)]
    pub fn malloc_object(&mut self, n: usize) -> Result<NonNull<u8>, AllocError> {
        self.malloc_kind(n, BlockKind::Object)
    }

    /// Resizes a block of `kind` (not Raw: raw blocks use
    /// [`Allocator::realloc`]), keeping its contents up to the smaller size;
    /// CPython's rule: kept in place when it fits and shrinks by under 25 %.
    // Not `unsafe`: `p` is validated before anything is read through it.
    #[allow(clippy::not_unsafe_ptr_arg_deref)]
    pub fn realloc_kind(&mut self, p: *mut u8, n: usize, kind: BlockKind) -> Result<NonNull<u8>, AllocError> {
        if p.is_null() {
            return self.malloc_kind(n, kind);
        }
        let want = n.max(1);
        match self.locate_kind(p as usize, kind)? {
            Located::Small { pool, index } => {
                // SAFETY: `pool` is live (just located).
                let size = block_size(unsafe { (*pool).class } as usize);
                if want <= size && 4 * want > 3 * size {
                    // SAFETY: `p` is a live block.
                    return Ok(unsafe { NonNull::new_unchecked(p) });
                }
                let new = self.alloc_kind(want, kind)?;
                // SAFETY: both blocks are live and distinct; we copy what fits.
                unsafe {
                    ptr::copy_nonoverlapping(p, new.as_ptr(), want.min(size));
                    self.release_block(pool, index, p);
                }
                Ok(new)
            }
            Located::Large(block) => self.large_realloc(p as usize, block, want),
        }
    }

    /// Pops a block from the first pool of a `usedpools` ring, if there is one.
    #[inline(always)]
    fn alloc_from_used_pool(&mut self, ring: usize) -> Option<NonNull<u8>> {
        // `ring < RINGS` always (callers pass `ring_of(..)`); the mask only
        // spares a bounds check.
        let pool = self.usedpools[ring & (RINGS - 1)];
        if pool.is_null() {
            return None;
        }
        // SAFETY: pools on `usedpools` are live metadata of mapped arenas, in
        // state Used, so `freeblock` is a free block of the pool whose first
        // word is the next link (invariants of `pool.rs`).
        unsafe {
            let p = &mut *pool;
            let block = p.freeblock;
            let next = *(block as *const *mut u8);
            p.freeblock = next;
            p.count += 1;
            let index = p.index_of(block as usize);
            p.mark_allocated(index);
            if next.is_null() {
                self.pool_refill(pool);
            }
            Some(NonNull::new_unchecked(block))
        }
    }

    #[cold]
    #[inline(never)]
    fn malloc_slow(&mut self, n: usize) -> Result<NonNull<u8>, AllocError> {
        if self.debug {
            let total = n
                .checked_add(debug_hooks::OVERHEAD)
                .ok_or(AllocError::NoMemory { requested: n, reason: "size overflows" })?;
            let raw = self.alloc_kind(total, BlockKind::Raw)?;
            // SAFETY: `raw` is a fresh block of `total = n + OVERHEAD` bytes.
            let user = unsafe { debug_hooks::write_fresh(raw.as_ptr(), n) };
            // SAFETY: `user` is `raw + 16`, inside the block.
            return Ok(unsafe { NonNull::new_unchecked(user) });
        }
        self.alloc_kind(n, BlockKind::Raw)
    }

    /// Allocation without debug hooks.
    #[cold]
    #[inline(never)]
    fn alloc_kind(&mut self, n: usize, kind: BlockKind) -> Result<NonNull<u8>, AllocError> {
        self.injected_failure(n)?;
        let n = n.max(1);
        if n <= SMALL_REQUEST_THRESHOLD {
            let class = class_of_kind(n, kind);
            if let Some(block) = self.alloc_from_used_pool(ring_of(kind, class)) {
                return Ok(block);
            }
            return self.alloc_from_new_pool(class, kind);
        }
        self.large_alloc(n, kind)
    }

    /// The pool's free list just ran dry: carve the next block, or, when the
    /// pool is exhausted, take it off `usedpools` as Full.
    ///
    /// # Safety
    /// `pool` is a live pool on `usedpools` whose `freeblock` is null.
    #[inline(never)]
    unsafe fn pool_refill(&mut self, pool: *mut PoolMeta) {
        // SAFETY: contract.
        let p = unsafe { &mut *pool };
        if p.nextoffset <= p.maxnextoffset {
            let block = (p.base + p.nextoffset as usize) as *mut u8;
            // SAFETY: the block lies inside the pool (nextoffset <= maxnextoffset).
            unsafe { *(block as *mut *mut u8) = ptr::null_mut() };
            p.freeblock = block;
            p.nextoffset += p.size;
            return;
        }
        p.state = PoolState::Full;
        // SAFETY: the pool is on its class ring (contract).
        unsafe { self.unlink_used(pool) };
    }

    /// No used pool for `class`: take a pool from the most used arena with a
    /// free pool (mapping a new arena if none) and serve the first block.
    #[cold]
    #[inline(never)]
    fn alloc_from_new_pool(&mut self, class: usize, kind: BlockKind) -> Result<NonNull<u8>, AllocError> {
        let pool = self.take_pool()?;
        let size = block_size(class);
        // SAFETY: `take_pool` returns a live pool not on any list.
        unsafe {
            let p = &mut *pool;
            let block;
            if p.state == PoolState::Empty && p.class as usize == class && p.kind == kind {
                // Same class as before it emptied: its free list is intact
                // and holds at least two blocks (every class fits >= 8).
                block = p.freeblock;
                p.freeblock = *(block as *const *mut u8);
            } else {
                p.set_class(class);
                p.kind = kind;
                block = p.base as *mut u8;
                p.freeblock = block.add(size);
                *(p.freeblock as *mut *mut u8) = ptr::null_mut();
                p.nextoffset = (2 * size) as u32;
                p.maxnextoffset = (self.pool_size - size) as u32;
            }
            p.count = 1;
            let index = p.index_of(block as usize);
            p.mark_allocated(index);
            p.state = PoolState::Used;
            self.link_used_front(pool);
            if p.freeblock.is_null() {
                self.pool_refill(pool);
            }
            Ok(NonNull::new_unchecked(block))
        }
    }

    /// Takes one free pool from the head of `usable_arenas`: a resident empty
    /// pool first (no page faults), then an untouched one, then a released one.
    fn take_pool(&mut self) -> Result<*mut PoolMeta, AllocError> {
        if self.usable.head.is_null() {
            let arena = self.new_arena()?;
            // SAFETY: `arena` is live and the list is empty.
            unsafe { self.usable.push_new(arena) };
        }
        // SAFETY: the head is a live arena with nfreepools > 0 (invariant 4).
        let pool = unsafe {
            let a = &mut *self.usable.head;
            if a.nfreepools as usize == POOLS_PER_ARENA {
                self.wholly_free -= 1;
            }
            let pool: *mut PoolMeta;
            if !a.freepools.is_null() {
                pool = a.freepools;
                a.freepools = (*pool).next;
                a.resident_empty -= 1;
                self.resident_empty_total -= 1;
            } else if (a.nextpool as usize) < POOLS_PER_ARENA {
                pool = &mut a.pools[a.nextpool as usize];
                a.nextpool += 1;
            } else {
                pool = a.released;
                debug_assert!(!pool.is_null(), "arena on usable list without a free pool");
                a.released = (*pool).next;
            }
            (*pool).next = ptr::null_mut();
            self.usable.head_took_pool();
            self.pool_clock += 1;
            pool
        };
        // No trim here: taking a pool never grows the cache. The pool comes
        // from the head of `usable_arenas`, which stays its head; the spare
        // (the tail) changes only if it was the head, and then the pool was
        // the spare's, not the cache's.
        self.pools_taken += 1;
        Ok(pool)
    }

    fn new_arena(&mut self) -> Result<*mut ArenaMeta, AllocError> {
        self.check_limit(self.arena_size)?;
        let base = self.take_arena_slot()?;
        let Some(meta) = ArenaMeta::new_mapped(base, self.pool_size, self.arenas.len()) else {
            os::unmap(base, self.arena_size);
            return Err(AllocError::NoMemory { requested: self.arena_size, reason: "no memory for arena metadata" });
        };
        if !self.map.insert(base, meta) {
            os::unmap(base, self.arena_size);
            // SAFETY: `meta` came from `new_mapped` and is referenced nowhere.
            unsafe { ArenaMeta::unmap(meta) };
            return Err(AllocError::NoMemory { requested: self.arena_size, reason: "no memory for the arena map" });
        }
        // SAFETY: `meta` is live and ours alone.
        unsafe { ((*meta).huge_pages, (*meta).in_huge_chunk) = (self.chunk_huge, self.chunk_huge) };
        self.arenas.push(meta);
        self.reserved += self.arena_size;
        self.wholly_free += 1;
        let c = &mut self.counters;
        c.arenas_allocated_total += 1;
        c.arenas_highwater = c.arenas_highwater.max(self.arenas.len() as u64);
        Ok(meta)
    }

    /// The address of a new arena: the next slot of the current chunk, or
    /// the first of a new chunk (see `chunk_next`), marked for huge pages
    /// when the allocator already holds `huge_page_threshold` bytes.
    fn take_arena_slot(&mut self) -> Result<usize, AllocError> {
        if self.chunk_next == self.chunk_end {
            let chunk = self.arena_size.max(os::HUGE_PAGE);
            let base = os::map_aligned(chunk, chunk).ok_or(AllocError::NoMemory {
                requested: self.arena_size,
                reason: "the OS refused to map a new arena",
            })?;
            self.chunk_huge = self.wants_huge_pages();
            if self.chunk_huge {
                os::advise_huge_pages(base, chunk, true);
            }
            (self.chunk_next, self.chunk_end) = (base, base + chunk);
        }
        let base = self.chunk_next;
        self.chunk_next += self.arena_size;
        Ok(base)
    }

    /// Whether memory mapped now should get transparent huge pages.
    fn wants_huge_pages(&self) -> bool {
        self.huge_page_threshold != 0 && self.reserved >= self.huge_page_threshold
    }

    /// Fails when holding `more` bytes would pass `max_bytes` — after first
    /// unmapping the wholly free arenas kept as spares or waiting for the
    /// release delay, since memory cached for speed must never cause an
    /// out-of-memory error (PyTorch's allocator frees its cache the same way
    /// before it reports one).
    fn check_limit(&mut self, more: usize) -> Result<(), AllocError> {
        let over = |a: &Allocator| a.max_bytes != 0 && a.reserved.saturating_add(more) > a.max_bytes;
        if over(self) {
            self.unmap_free_arenas();
            if over(self) {
                return Err(AllocError::NoMemory {
                    requested: more,
                    reason: "the configured max_bytes limit would be exceeded",
                });
            }
        }
        Ok(())
    }

    // ------------------------------------------------------------------
    // free

    /// Frees a block. NULL is fine. Anything that is not a live block of this
    /// allocator (foreign, interior, already freed) is refused with an error
    /// and nothing changes.
    #[inline(always)]
    // Not `unsafe`: `p` is validated (arena map, pool, bitmap or the large
    // block table) before anything is read or written through it.
    #[allow(clippy::not_unsafe_ptr_arg_deref)]
    pub fn free(&mut self, p: *mut u8) -> Result<(), AllocError> {
        // The cache is never filled with debug hooks on, so debug frees
        // always reach `free_slow`, which checks the guards.
        if let Some((pool, index)) = self.cached_live_block(p as usize, BlockKind::Raw) {
            // SAFETY: block `index` of `pool` is allocated and starts at `p`.
            unsafe { self.release_block(pool, index, p) };
            return Ok(());
        }
        self.free_slow(p)
    }

    /// The fast validation every free and object check starts with: when the
    /// arena cache knows `addr`'s arena, the pool and block index of `addr`
    /// if it is the start of an allocated block of `kind`. `None` means "ask
    /// the slow path", not "invalid".
    #[inline(always)]
    fn cached_live_block(&self, addr: usize, kind: BlockKind) -> Option<(*mut PoolMeta, usize)> {
        // Arenas are aligned to their size and hold 64 pools, so the pool's
        // number in the address space gives both the arena's (its high bits)
        // and the pool's place in it (its low 6 bits).
        let pool_number = addr >> self.pool_shift;
        let arena = self.map.cached_arena_number(pool_number >> POOLS_PER_ARENA.trailing_zeros())?;
        // SAFETY: the map only holds live arenas.
        let pool: *mut PoolMeta = unsafe { &mut (*arena).pools[pool_number & (POOLS_PER_ARENA - 1)] };
        // SAFETY: live pool metadata.
        let m = unsafe { &*pool };
        let (index, on_block_start) = m.locate_block(addr);
        (on_block_start && m.is_allocated(index) && m.kind == kind).then_some((pool, index))
    }

    /// Frees an object block (see [`Allocator::free_kind`]).
    #[allow(clippy::not_unsafe_ptr_arg_deref)]
    #[inline(always)]
    pub fn free_object(&mut self, p: *mut u8) -> Result<(), AllocError> {
        self.free_kind(p, BlockKind::Object)
    }

    /// Frees a block of `kind` from [`Allocator::malloc_kind`], validated
    /// like [`Allocator::free`]; a block of another kind is refused
    /// (`WrongKind`).
    // Not `unsafe`: `p` is validated before anything is written through it.
    #[allow(clippy::not_unsafe_ptr_arg_deref)]
    #[inline(always)]
    pub fn free_kind(&mut self, p: *mut u8, kind: BlockKind) -> Result<(), AllocError> {
        if let Some((pool, index)) = self.cached_live_block(p as usize, kind) {
            // SAFETY: block `index` of `pool` is allocated and starts at `p`.
            unsafe { self.release_block(pool, index, p) };
            return Ok(());
        }
        self.free_kind_slow(p, kind)
    }

    /// [`Allocator::free_kind`]'s fast path alone: frees `p` when the arena
    /// cache knows it as a live block of `kind` and the free changes no
    /// pool's state (the pool neither was full nor becomes empty). Returns
    /// false, with nothing changed, otherwise; the caller then uses
    /// `free_kind`. For callers whose own fast path has no error handling
    /// and runs none of the pool and arena bookkeeping.
    #[allow(clippy::not_unsafe_ptr_arg_deref)]
    #[inline(always)]
    pub fn free_kind_fast(&mut self, p: *mut u8, kind: BlockKind) -> bool {
        let Some((pool, index)) = self.cached_live_block(p as usize, kind) else { return false };
        // SAFETY: block `index` of `pool` is allocated and starts at `p`
        // (just validated).
        unsafe { Self::release_block_if_pool_stays(pool, index, p) }
    }

    /// Puts a validated block back on its pool's free list when that
    /// changes no pool's state (the pool was not full and does not empty):
    /// false, nothing done, otherwise.
    ///
    /// # Safety
    /// `pool` is live and block `index` at `p` is allocated in it.
    #[inline(always)]
    unsafe fn release_block_if_pool_stays(pool: *mut PoolMeta, index: usize, p: *mut u8) -> bool {
        // SAFETY: contract: the block is ours to thread on the free list.
        unsafe {
            let m = &mut *pool;
            let head = m.freeblock;
            if head.is_null() || m.count == 1 {
                return false;
            }
            m.mark_free(index);
            *(p as *mut *mut u8) = head;
            m.freeblock = p;
            m.count -= 1;
        }
        true
    }

    /// [`Allocator::find_live`]'s fast half, for fast paths with no error
    /// path: the block when `p` starts an allocated block of `kind` in a pool
    /// of an arena the arena cache knows. `None` means "ask `find_live`",
    /// not "invalid". Pointers mostly come in allocation order (the objects
    /// of a C array freed one after another), so it remembers the pool of
    /// its last answer, as [`Allocator::free_kind_near`] does: a block of
    /// the same pool skips the arena lookup, and is validated against the
    /// pool's header all the same.
    #[inline(always)]
    pub fn find_live_near(&mut self, p: *const u8, kind: BlockKind) -> Option<LiveBlock> {
        let addr = p as usize;
        let pool_number = addr >> self.pool_shift;
        let pool = if pool_number == self.near_pool_number {
            self.near_pool
        } else {
            let arena = self.map.cached_arena_number(pool_number >> POOLS_PER_ARENA.trailing_zeros())?;
            // SAFETY: the map only holds live arenas.
            let pool: *mut PoolMeta = unsafe { &mut (*arena).pools[pool_number & (POOLS_PER_ARENA - 1)] };
            (self.near_pool_number, self.near_pool) = (pool_number, pool);
            pool
        };
        // SAFETY: `pool` is the live header of the pool holding `addr`: just
        // looked up, or remembered by a lookup for the same pool number with
        // no arena unmapped since (`unmap_arena` forgets it).
        let m = unsafe { &*pool };
        let (index, on_block_start) = m.locate_block(addr);
        (on_block_start && m.is_allocated(index) && m.kind == kind).then_some(LiveBlock(Located::Small { pool, index }))
    }

    /// Frees the block `find_live_near` found at `p` when that changes no
    /// pool's state, as [`Allocator::free_kind_fast`]; false, nothing done,
    /// otherwise (the block is still live and `block` still valid).
    ///
    /// # Safety
    /// As [`Allocator::free_found`]'s.
    #[inline(always)]
    pub unsafe fn free_found_fast(&mut self, p: *mut u8, block: &LiveBlock) -> bool {
        match block.0 {
            // SAFETY: contract: `find_live` found block `index` of `pool`
            // allocated at `p`, and nothing has freed it since.
            Located::Small { pool, index } => unsafe { Self::release_block_if_pool_stays(pool, index, p) },
            Located::Large(_) => false,
        }
    }

    /// [`Allocator::free_kind`] for runs of frees that mostly stay in one
    /// pool — a container's items, allocated one after another, freed in
    /// order: the allocator remembers the pool of the previous such free
    /// (`near_pool`), so a block of the same pool skips the arena lookup.
    /// Every free is validated as by `free_kind` (block start, allocated,
    /// kind) against the pool's current header.
    #[allow(clippy::not_unsafe_ptr_arg_deref)]
    #[inline(always)]
    pub fn free_kind_near(&mut self, p: *mut u8, kind: BlockKind) -> Result<(), AllocError> {
        let addr = p as usize;
        let pool_number = addr >> self.pool_shift;
        let pool = if pool_number == self.near_pool_number {
            self.near_pool
        } else {
            let Some(arena) = self.map.cached_arena_number(pool_number >> POOLS_PER_ARENA.trailing_zeros()) else {
                return self.free_kind_slow(p, kind);
            };
            // SAFETY: the map only holds live arenas.
            let pool: *mut PoolMeta = unsafe { &mut (*arena).pools[pool_number & (POOLS_PER_ARENA - 1)] };
            (self.near_pool_number, self.near_pool) = (pool_number, pool);
            pool
        };
        // SAFETY: `pool` is the live header of the pool holding `addr`: just
        // looked up, or remembered by a lookup for the same pool number with
        // no arena unmapped since (`unmap_arena` forgets it).
        let m = unsafe { &*pool };
        let (index, on_block_start) = m.locate_block(addr);
        if !(on_block_start && m.is_allocated(index) && m.kind == kind) {
            return self.free_kind_slow(p, kind);
        }
        // SAFETY: block `index` of `pool` is allocated and starts at `p`.
        unsafe { self.release_block(pool, index, p) };
        Ok(())
    }

    #[cold]
    #[inline(never)]
    fn free_kind_slow(&mut self, p: *mut u8, kind: BlockKind) -> Result<(), AllocError> {
        let located = self.locate_kind(p as usize, kind)?;
        if let Located::Small { pool, .. } = located {
            // As `free_slow`: the next frees in this arena (a container's
            // items die together) take the fast path.
            // SAFETY: `pool` is live (just located).
            self.map.remember(p as usize, unsafe { (*pool).arena });
        }
        self.release_located(located, p)
    }

    /// Whether `p` is the start of a live object block of this allocator:
    /// the O(1) test by which the layers above validate object pointers.
    #[inline(always)]
    pub fn is_live_object(&self, p: *const u8) -> bool {
        self.is_live(p, BlockKind::Object)
    }

    /// Whether `p` is the start of a live block of `kind`.
    #[inline(always)]
    pub fn is_live(&self, p: *const u8, kind: BlockKind) -> bool {
        self.cached_live_block(p as usize, kind).is_some() || self.is_live_slow(p as usize, kind)
    }

    /// [`Allocator::is_live`] that also says where the block is, for
    /// [`Allocator::free_found`]: a caller that validates a pointer and then
    /// frees it validates once.
    #[inline(always)]
    pub fn find_live(&self, p: *const u8, kind: BlockKind) -> Option<LiveBlock> {
        match self.cached_live_block(p as usize, kind) {
            Some((pool, index)) => Some(LiveBlock(Located::Small { pool, index })),
            None => self.find_live_slow(p as usize, kind),
        }
    }

    #[cold]
    #[inline(never)]
    fn find_live_slow(&self, addr: usize, kind: BlockKind) -> Option<LiveBlock> {
        self.locate_kind(addr, kind).ok().map(LiveBlock)
    }

    /// Frees the block `find_live` found at `p`.
    ///
    /// # Safety
    /// `block` came from `find_live(p, ..)` on this allocator, with no call
    /// to it in between that allocates or frees.
    #[inline(always)]
    pub unsafe fn free_found(&mut self, p: *mut u8, block: LiveBlock) {
        // `release_located` cannot fail: it frees what `locate` found, as
        // `find_live` did (the contract keeps it true).
        let _ = self.release_located(block.0, p);
    }

    #[cold]
    #[inline(never)]
    fn is_live_slow(&self, addr: usize, kind: BlockKind) -> bool {
        self.locate_kind(addr, kind).is_ok()
    }

    /// Puts a validated block back on its pool's free list.
    ///
    /// # Safety
    /// `pool` is live and block `index` at `p` is allocated in it.
    #[inline(always)]
    unsafe fn release_block(&mut self, pool: *mut PoolMeta, index: usize, p: *mut u8) {
        // SAFETY: contract; the block is ours and no longer the user's.
        unsafe {
            let m = &mut *pool;
            m.mark_free(index);
            let head = m.freeblock;
            *(p as *mut *mut u8) = head;
            m.freeblock = p;
            m.count -= 1;
            if head.is_null() || m.count == 0 {
                self.pool_state_changed(pool, head.is_null());
            }
        }
    }

    /// A free made a Full pool usable again, or emptied a pool.
    ///
    /// # Safety
    /// `pool` is live.
    #[inline(never)]
    unsafe fn pool_state_changed(&mut self, pool: *mut PoolMeta, was_full: bool) {
        // SAFETY: contract.
        unsafe {
            if was_full {
                // To the back of the ring, not the front as CPython does: the
                // pool at the head keeps serving until it is full, and this
                // one collects frees meanwhile. Under FIFO-like traffic
                // front-linking makes a pool flip Full -> Used -> Full on
                // every free/malloc pair; back-linking flips it once.
                (*pool).state = PoolState::Used;
                self.link_used_back(pool);
            }
            if (*pool).count == 0 {
                self.pool_became_empty(pool);
            }
        }
    }

    /// A pool's last block was freed. When it is the only pool of its ring
    /// (and there is a release delay) it stays there, empty, ready for the
    /// next allocation of its class: one block allocated and freed in a loop
    /// (a list's item array) would otherwise move a pool to its arena and
    /// back every time. The sweep retires it once it has stayed empty for the
    /// release delay. Otherwise the pool is retired at once.
    #[cold]
    unsafe fn pool_became_empty(&mut self, pool: *mut PoolMeta) {
        // SAFETY: `pool` is live, in state Used on its ring.
        unsafe {
            if self.release_delay != 0 && (*pool).next == pool {
                (*pool).emptied_at = self.pool_clock;
                return;
            }
            self.retire_empty_pool(pool);
        }
    }

    /// Retires the pools kept empty alone in their rings (see
    /// `pool_became_empty`) that became empty at or before `cutoff`.
    fn retire_kept_empty_pools(&mut self, cutoff: u64) {
        for ring in 0..RINGS {
            let pool = self.usedpools[ring];
            // SAFETY: ring members are live pools.
            if !pool.is_null() && unsafe { (*pool).count == 0 && (*pool).emptied_at <= cutoff } {
                // SAFETY: an empty Used pool on its ring.
                unsafe { self.retire_empty_pool(pool) };
            }
        }
    }

    /// Moves an emptied pool to its arena's free pools and does the arena
    /// bookkeeping: re-sort, unmap a second wholly free arena, and give
    /// resident empty pools back once there are `RELEASE_THRESHOLD` of them.
    ///
    /// # Safety
    /// `pool` is live, empty, in state Used on its ring.
    unsafe fn retire_empty_pool(&mut self, pool: *mut PoolMeta) {
        // SAFETY: contract.
        unsafe { self.return_pool_to_arena(pool) };
        self.trim_cache_if_over();
    }

    /// The bookkeeping of [`Allocator::retire_empty_pool`] before the cache
    /// is checked against its bound.
    ///
    /// # Safety
    /// As `retire_empty_pool`.
    unsafe fn return_pool_to_arena(&mut self, pool: *mut PoolMeta) {
        self.pools_taken -= 1;
        // SAFETY: `pool` is live, in state Used on its ring; its arena is live.
        unsafe {
            self.unlink_used(pool);
            let p = &mut *pool;
            p.state = PoolState::Empty;
            self.pool_clock += 1;
            p.emptied_at = self.pool_clock;
            let arena = p.arena;
            let a = &mut *arena;
            p.next = a.freepools;
            a.freepools = pool;
            a.resident_empty += 1;
            self.resident_empty_total += 1;
            self.usable.pool_returned(arena);
            if a.nfreepools as usize == POOLS_PER_ARENA {
                // Wholly free. Without a release delay, CPython's rule: keep
                // it as the one spare, unmap it if there is one already.
                // With a delay, keep it for now; the sweep unmaps wholly free
                // arenas that stay so for `release_delay` pool events,
                // always keeping one spare.
                if self.release_delay == 0 && self.wholly_free >= 1 {
                    self.usable.remove(arena);
                    self.unmap_arena(arena);
                    self.unmap_pending();
                    return;
                }
                self.wholly_free += 1;
                a.wholly_free_since = self.pool_clock;
            }
            if self.release_delay == 0 {
                if a.resident_empty >= RELEASE_THRESHOLD {
                    self.release_empty_pools(arena, u64::MAX);
                }
            } else if self.pool_clock >= self.next_sweep {
                self.sweep_aged_pools();
            }
        }
    }

    /// Gives back the empty pools that have stayed empty for `release_delay`
    /// pool events, in every arena holding `RELEASE_THRESHOLD` empty pools,
    /// and unmaps the wholly free arenas that stayed so as long, but one.
    /// Runs once every `release_delay` pool events, so it costs O(arenas)
    /// per that many pool events, never anything on a plain free. The delay
    /// is what keeps a loop that empties and refills the same pools or
    /// arenas (a LIFO burst) from giving memory back and faulting it in again.
    #[cold]
    #[inline(never)]
    fn sweep_aged_pools(&mut self) {
        self.next_sweep = self.pool_clock + self.release_delay;
        let Some(cutoff) = self.pool_clock.checked_sub(self.release_delay) else {
            return;
        };
        self.retire_kept_empty_pools(cutoff);
        let mut i = 0;
        while i < self.arenas.len() {
            let arena = self.arenas[i];
            // SAFETY: listed arenas are live.
            let a = unsafe { &*arena };
            if a.nfreepools as usize == POOLS_PER_ARENA && self.wholly_free > 1 && a.wholly_free_since <= cutoff {
                // SAFETY: a wholly free arena is on the usable list.
                unsafe { self.usable.remove(arena) };
                self.wholly_free -= 1;
                self.unmap_arena(arena);
                // `unmap_arena` moved the last arena into slot `i`.
                continue;
            }
            if a.resident_empty >= RELEASE_THRESHOLD {
                self.release_empty_pools(arena, cutoff);
            }
            i += 1;
        }
        self.unmap_pending();
    }

    #[cold]
    #[inline(never)]
    fn free_slow(&mut self, p: *mut u8) -> Result<(), AllocError> {
        if p.is_null() {
            return Ok(());
        }
        if self.debug {
            let raw = (p as usize).wrapping_sub(debug_hooks::HEAD) as *mut u8;
            let (located, _) = self.check_debug_block(p, raw)?;
            return self.release_located(located, raw);
        }
        let located = self.locate_kind(p as usize, BlockKind::Raw)?;
        if let Located::Small { pool, .. } = located {
            // A valid block the cache did not know: remember its arena.
            // SAFETY: `pool` is live (just located).
            self.map.remember(p as usize, unsafe { (*pool).arena });
        }
        self.release_located(located, p)
    }

    #[inline(always)]
    fn release_located(&mut self, located: Located, p: *mut u8) -> Result<(), AllocError> {
        match located {
            // SAFETY: `locate` validated block `index` of `pool` at `p`.
            Located::Small { pool, index } => unsafe { self.release_block(pool, index, p) },
            Located::Large(block) => self.large_free(p as usize, block),
        }
        Ok(())
    }

    /// Validates that `addr` is a live block of ours of `kind`.
    fn locate_kind(&self, addr: usize, kind: BlockKind) -> Result<Located, AllocError> {
        let located = self.locate(addr)?;
        let actual = located.kind();
        if actual != kind {
            return Err(AllocError::InvalidPointer { addr, reason: InvalidReason::WrongKind { actual } });
        }
        Ok(located)
    }

    /// Validates that `addr` is a live block of ours, without changing anything.
    fn locate(&self, addr: usize) -> Result<Located, AllocError> {
        let arena = self.map.lookup(addr);
        if !arena.is_null() {
            // SAFETY: the map only holds live arenas; `addr` is inside this one.
            let pool = unsafe { &mut (*arena).pools[(addr - (*arena).base) >> self.pool_shift] } as *mut PoolMeta;
            // SAFETY: live pool metadata.
            let m = unsafe { &*pool };
            if m.state == PoolState::Untouched {
                return Err(AllocError::InvalidPointer { addr, reason: InvalidReason::NeverAllocated });
            }
            let size = block_size(m.class as usize);
            let offset = addr - m.base;
            let index = offset / size;
            if index * size != offset {
                return Err(AllocError::InvalidPointer {
                    addr,
                    reason: InvalidReason::Interior { block: m.base + index * size, offset: offset - index * size },
                });
            }
            if offset >= m.nextoffset as usize || index >= m.capacity(self.pool_size) {
                // Never carved, or the pool's unusable tail.
                return Err(AllocError::InvalidPointer { addr, reason: InvalidReason::NeverAllocated });
            }
            if !m.is_allocated(index) {
                return Err(AllocError::DoubleFree { addr });
            }
            return Ok(Located::Small { pool, index });
        }
        if let Some(block) = self.large.get(&addr) {
            return Ok(Located::Large(*block));
        }
        if addr != 0 && self.recent_large_frees.contains(&addr) {
            return Err(AllocError::DoubleFree { addr });
        }
        Err(AllocError::InvalidPointer { addr, reason: InvalidReason::NotOurs })
    }

    /// Validates a debug-mode pointer and its guard bytes. Returns where the
    /// raw block lives and the size the user asked for.
    fn check_debug_block(&self, user: *mut u8, raw: *mut u8) -> Result<(Located, usize), AllocError> {
        let located = self.locate_kind(raw as usize, BlockKind::Raw).map_err(|e| e.with_addr(user as usize))?;
        let capacity = match &located {
            // SAFETY: `pool` is live (just located).
            Located::Small { pool, .. } => block_size(unsafe { (**pool).class } as usize),
            Located::Large(block) => block.size,
        };
        // SAFETY: `raw` is a live block of `capacity` bytes.
        match unsafe { debug_hooks::check(raw, capacity) } {
            Ok(n) => {
                // SAFETY: checked just above.
                unsafe { debug_hooks::mark_dead(raw, n) };
                Ok((located, n))
            }
            Err(detail) => Err(AllocError::HeapCorruption { addr: user as usize, detail }),
        }
    }

    // ------------------------------------------------------------------
    // calloc, realloc

    /// Allocates `count * size` zeroed bytes; an overflowing product is
    /// `NoMemory`.
    pub fn calloc(&mut self, count: usize, size: usize) -> Result<NonNull<u8>, AllocError> {
        let total = count
            .checked_mul(size)
            .ok_or(AllocError::NoMemory { requested: usize::MAX, reason: "count * size overflows" })?;
        let p = self.malloc(total)?;
        // SAFETY: `p` is a fresh block of at least `total` bytes.
        unsafe { ptr::write_bytes(p.as_ptr(), 0, total) };
        Ok(p)
    }

    /// Resizes a block, as CPython's `PyObject_Realloc`: NULL allocates; a
    /// small block is kept when the new size fits and shrinks it by less than
    /// 25 %; otherwise the contents move to a new block. On error the old
    /// block is untouched and still allocated.
    // Not `unsafe`: `p` is validated (arena map, pool, bitmap or the large
    // block table) before anything is read or written through it.
    #[allow(clippy::not_unsafe_ptr_arg_deref)]
    pub fn realloc(&mut self, p: *mut u8, n: usize) -> Result<NonNull<u8>, AllocError> {
        if p.is_null() {
            return self.malloc(n);
        }
        if self.debug {
            return self.debug_realloc(p, n);
        }
        match self.locate_kind(p as usize, BlockKind::Raw)? {
            Located::Small { pool, index } => {
                // SAFETY: `pool` is live (just located).
                let size = block_size(unsafe { (*pool).class } as usize);
                let want = n.max(1);
                if want <= size && 4 * want > 3 * size {
                    // SAFETY: `p` is a live block.
                    return Ok(unsafe { NonNull::new_unchecked(p) });
                }
                let new = self.alloc_kind(want, BlockKind::Raw)?;
                // SAFETY: both blocks are live and distinct; we copy what fits.
                unsafe {
                    ptr::copy_nonoverlapping(p, new.as_ptr(), want.min(size));
                    self.release_block(pool, index, p);
                }
                Ok(new)
            }
            Located::Large(block) => self.large_realloc(p as usize, block, n.max(1)),
        }
    }

    fn debug_realloc(&mut self, p: *mut u8, n: usize) -> Result<NonNull<u8>, AllocError> {
        let raw = (p as usize).wrapping_sub(debug_hooks::HEAD) as *mut u8;
        // Check the guards before anything moves, but do not mark it dead yet:
        // if the new allocation fails the old block must stay intact.
        let located = self.locate_kind(raw as usize, BlockKind::Raw).map_err(|e| e.with_addr(p as usize))?;
        let capacity = match &located {
            // SAFETY: live pool.
            Located::Small { pool, .. } => block_size(unsafe { (**pool).class } as usize),
            Located::Large(block) => block.size,
        };
        // SAFETY: `raw` is a live block of `capacity` bytes.
        let old_n = unsafe { debug_hooks::check(raw, capacity) }
            .map_err(|detail| AllocError::HeapCorruption { addr: p as usize, detail })?;
        let new = self.malloc(n)?;
        // SAFETY: both are live user regions of at least `min(n, old_n)` bytes.
        unsafe {
            ptr::copy_nonoverlapping(p, new.as_ptr(), n.min(old_n));
            debug_hooks::mark_dead(raw, old_n);
        }
        // `located` is still valid: the malloc above cannot free this block.
        self.release_located(located, raw)?;
        Ok(new)
    }

    // ------------------------------------------------------------------
    // large blocks

    fn large_alloc(&mut self, n: usize, kind: BlockKind) -> Result<NonNull<u8>, AllocError> {
        let mapped = mapping_len(n)?;
        let block = LargeBlock { kind, size: n, mapped };
        self.check_limit(block.reserved())?;
        let addr = if mapped > 0 {
            self.map_large(mapped)
        } else {
            // SAFETY: plain malloc of a non-zero size.
            unsafe { libc::malloc(n) as usize }
        };
        if addr == 0 {
            return Err(AllocError::NoMemory { requested: n, reason: "the system allocator refused" });
        }
        debug_assert_eq!(addr % 16, 0);
        self.track_large(addr, block);
        // SAFETY: non-zero.
        Ok(unsafe { NonNull::new_unchecked(addr as *mut u8) })
    }

    /// Maps `mapped` bytes for a large block (0 when the OS refuses); a
    /// block of a huge page or more in a big heap is aligned to huge pages
    /// and marked for them (see `Config::huge_page_threshold`).
    fn map_large(&self, mapped: usize) -> usize {
        if mapped >= os::HUGE_PAGE && self.wants_huge_pages() {
            let Some(addr) = os::map_aligned(mapped, os::HUGE_PAGE) else { return 0 };
            os::advise_huge_pages(addr, mapped, true);
            return addr;
        }
        os::map(mapped).unwrap_or(0)
    }

    fn track_large(&mut self, addr: usize, block: LargeBlock) {
        self.large.insert(addr, block);
        self.reserved += block.reserved();
        self.counters.large_bytes += block.size as u64;
        for slot in self.recent_large_frees.iter_mut() {
            if *slot == addr {
                *slot = 0;
            }
        }
    }

    fn untrack_large(&mut self, addr: usize, block: LargeBlock) {
        self.large.remove(&addr);
        self.reserved -= block.reserved();
        self.counters.large_bytes -= block.size as u64;
    }

    fn large_free(&mut self, addr: usize, block: LargeBlock) {
        self.untrack_large(addr, block);
        self.recent_large_frees[self.recent_next] = addr;
        self.recent_next = (self.recent_next + 1) % RECENT_LARGE_FREES;
        if block.mapped > 0 {
            os::unmap(addr, block.mapped);
            self.counters.bytes_returned_total += block.mapped as u64;
        } else {
            // SAFETY: `addr` came from libc::malloc and is freed once (we
            // just removed it from the table).
            unsafe { libc::free(addr as *mut libc::c_void) };
        }
        // Fewer bytes in use: a smaller bound for the cache.
        self.trim_cache_if_over();
    }

    fn large_realloc(&mut self, addr: usize, old: LargeBlock, n: usize) -> Result<NonNull<u8>, AllocError> {
        self.injected_failure(n)?;
        let mapped = mapping_len(n)?;
        let new = LargeBlock { kind: old.kind, size: n, mapped };
        let growth = new.reserved().saturating_sub(old.reserved());
        self.check_limit(growth)?;
        let new_addr = match (old.mapped > 0, mapped > 0) {
            (true, true) => {
                let moved = os::remap(addr, old.mapped, mapped).unwrap_or(0);
                if moved != 0 && mapped >= os::HUGE_PAGE && self.wants_huge_pages() {
                    os::advise_huge_pages(moved, mapped, true);
                }
                moved
            }
            // SAFETY: `addr` is a live malloc'd block; on failure it is untouched.
            (false, false) => unsafe { libc::realloc(addr as *mut libc::c_void, n) as usize },
            _ => {
                let fresh = if mapped > 0 {
                    self.map_large(mapped)
                } else {
                    // SAFETY: plain malloc.
                    unsafe { libc::malloc(n) as usize }
                };
                if fresh != 0 {
                    // SAFETY: both regions are live and distinct.
                    unsafe { ptr::copy_nonoverlapping(addr as *const u8, fresh as *mut u8, n.min(old.size)) };
                    if old.mapped > 0 {
                        os::unmap(addr, old.mapped);
                    } else {
                        // SAFETY: malloc'd block, freed once.
                        unsafe { libc::free(addr as *mut libc::c_void) };
                    }
                }
                fresh
            }
        };
        if new_addr == 0 {
            return Err(AllocError::NoMemory { requested: n, reason: "the system allocator refused" });
        }
        self.untrack_large(addr, old);
        self.track_large(new_addr, new);
        if n < old.size {
            self.trim_cache_if_over();
        }
        // SAFETY: non-zero.
        Ok(unsafe { NonNull::new_unchecked(new_addr as *mut u8) })
    }

    // ------------------------------------------------------------------
    // giving memory back

    /// Gives back to the OS every resident empty pool and every wholly free
    /// arena (the spare too). Returns the bytes of resident memory released.
    pub fn release_free_arenas(&mut self) -> usize {
        self.retire_kept_empty_pools(u64::MAX);
        let mut released = self.unmap_free_arenas();
        for i in 0..self.arenas.len() {
            let arena = self.arenas[i];
            // SAFETY: listed arenas are live.
            if unsafe { (*arena).resident_empty } > 0 {
                released += self.release_empty_pools(arena, u64::MAX);
            }
        }
        released
    }

    /// The bound of the retention cache: 1/16 of the bytes in use (pools
    /// taken from their arenas, whole, plus large blocks), at least
    /// `RETAIN_CACHE_FLOOR` bytes, at most `retain_cache_max`.
    pub(crate) fn cache_limit(&self) -> usize {
        let in_use = self.pools_taken * self.pool_size + self.counters.large_bytes as usize;
        (in_use / RETAIN_CACHE_DIVISOR).max(RETAIN_CACHE_FLOOR).min(self.retain_cache_max)
    }

    /// The spare arena: the last of `usable_arenas`, the arena with the
    /// most free pools (null when no arena has one). When arenas are wholly
    /// free it is one of them, CPython's spare; otherwise it is the arena
    /// nearest to becoming one, and its resident empty pools — at most an
    /// arena's worth, like a wholly free spare's — are the spare's part.
    pub(crate) fn spare_arena(&self) -> *mut ArenaMeta {
        self.usable.tail()
    }

    /// Resident bytes of the empty pools in the cache: every resident empty
    /// pool of an arena except the spare arena's.
    pub(crate) fn cached_bytes(&self) -> usize {
        let spare = self.spare_arena();
        // SAFETY: the spare, when there is one, is a live arena.
        let spare_pools = if spare.is_null() { 0 } else { unsafe { (*spare).resident_empty as usize } };
        (self.resident_empty_total - spare_pools) * self.pool_size
    }

    /// Runs the cache trim when the cache is over its bound. Called on the
    /// slow paths only: when a pool returns to its arena (the arena may
    /// become wholly free with it, or the spare), and when a large block is
    /// freed or shrunk (fewer bytes in use lower the bound).
    #[inline]
    fn trim_cache_if_over(&mut self) {
        let limit = self.cache_limit();
        // All resident empty pools, the spare's included, within the bound:
        // nothing to do, without a look at the spare.
        if self.resident_empty_total * self.pool_size > limit && self.cached_bytes() > limit {
            self.trim_cache();
        }
    }

    /// Brings the cache down to half its bound (so that the next trim is at
    /// least that many bytes of frees away), giving back the pools least
    /// likely to be reused first: it walks `usable_arenas` from its tail,
    /// where the arenas with the most free pools sort — new pools come from
    /// the head — skipping the tail itself (the spare), unmapping the other
    /// wholly free arenas and releasing the resident empty pools of the rest
    /// (`MADV_DONTNEED`, neighbours coalesced). O(arenas walked + pools
    /// released).
    #[cold]
    #[inline(never)]
    fn trim_cache(&mut self) {
        let target = self.cache_limit() / 2;
        let spare = self.spare_arena();
        // The walk never touches the spare, and removing arenas before the
        // tail leaves it the tail: its resident pools stay as they are.
        let (mut arena, spare_pools) = if spare.is_null() {
            (spare, 0)
        } else {
            // SAFETY: the spare is a live list member.
            unsafe { ((*spare).prev_arena, (*spare).resident_empty as usize) }
        };
        while !arena.is_null() && (self.resident_empty_total - spare_pools) * self.pool_size > target {
            // SAFETY: list members are live; `prev` is read before `arena`
            // may be unmapped.
            let (prev, wholly_free, resident) = unsafe {
                let a = &*arena;
                (a.prev_arena, a.nfreepools as usize == POOLS_PER_ARENA, a.resident_empty)
            };
            if wholly_free {
                // SAFETY: a wholly free arena is on the usable list.
                unsafe { self.usable.remove(arena) };
                self.wholly_free -= 1;
                self.unmap_arena(arena);
            } else if resident > 0 {
                self.release_empty_pools(arena, u64::MAX);
            }
            arena = prev;
        }
        self.unmap_pending();
        debug_assert_eq!(self.spare_arena(), spare);
        self.counters.cache_trims_total += 1;
    }

    /// Unmaps every wholly free arena. Returns the resident bytes given back.
    fn unmap_free_arenas(&mut self) -> usize {
        self.retire_kept_empty_pools(u64::MAX);
        let mut released = 0;
        let mut i = 0;
        while i < self.arenas.len() {
            let arena = self.arenas[i];
            // SAFETY: listed arenas are live.
            let a = unsafe { &*arena };
            if a.nfreepools as usize == POOLS_PER_ARENA {
                released += a.resident_empty as usize * self.pool_size;
                // SAFETY: a wholly free arena is on the usable list.
                unsafe { self.usable.remove(arena) };
                self.wholly_free -= 1;
                self.unmap_arena(arena);
                // `unmap_arena` moved the last arena into slot `i`.
                continue;
            }
            i += 1;
        }
        self.unmap_pending();
        released
    }

    /// Gives the pages of the resident empty pools of `arena` that became
    /// empty at or before clock value `cutoff` back to the OS, coalescing
    /// neighbours into one `madvise`. Returns the bytes released.
    fn release_empty_pools(&mut self, arena: *mut ArenaMeta, cutoff: u64) -> usize {
        // SAFETY: `arena` is live; its freepools list holds its Empty pools.
        let a = unsafe { &mut *arena };
        let mut mask = 0u64;
        let mut count = 0usize;
        // Walk the list through a link pointer, unlinking what we release.
        let mut link: *mut *mut PoolMeta = &mut a.freepools;
        // SAFETY: list members are live pools of this arena; `link` always
        // points at the `freepools` head or at a member's `next` field.
        unsafe {
            while !(*link).is_null() {
                let pool = *link;
                let p = &mut *pool;
                if p.emptied_at > cutoff {
                    link = &mut p.next;
                    continue;
                }
                *link = p.next;
                mask |= 1 << ((p.base - a.base) >> self.pool_shift);
                p.state = PoolState::Released;
                p.freeblock = ptr::null_mut();
                p.next = a.released;
                a.released = pool;
                count += 1;
            }
        }
        a.resident_empty -= count as u32;
        self.resident_empty_total -= count;
        if mask != 0 && a.huge_pages {
            // Before holes appear in it: the kernel's background collapsing
            // (khugepaged) would otherwise make the arena one huge page
            // again, filling the released pools with zeros. The advice
            // covers the arena's whole chunk, so that a chunk's pages share
            // one setting and the mapping is not cut into more areas than
            // chunks (the kernel allows 65,530 per process); the other arena
            // of the chunk repeats it, harmlessly, if it releases pools too.
            let chunk = self.arena_size.max(os::HUGE_PAGE);
            os::advise_huge_pages(a.base & !(chunk - 1), chunk, false);
            a.huge_pages = false;
            // The chunk's never-carved pools are resident too if a huge page
            // backed it: they go now, with the released ones.
            self.decommit_untouched_in_chunk(a.base);
        }
        // Coalesce runs of set bits.
        while mask != 0 {
            let start = mask.trailing_zeros() as usize;
            let run = (!(mask >> start)).trailing_zeros() as usize;
            os::decommit(a.base + start * self.pool_size, run * self.pool_size);
            let run_mask = if run == 64 { u64::MAX } else { (1u64 << run) - 1 };
            mask &= !(run_mask << start);
        }
        let bytes = count * self.pool_size;
        self.counters.pools_released_total += count as u64;
        self.counters.bytes_returned_total += bytes as u64;
        bytes
    }

    /// Unmaps an arena that is off the usable list and holds no block: its
    /// bookkeeping at once, its pages at the next `unmap_pending`, which
    /// every caller runs before it returns.
    fn unmap_arena(&mut self, arena: *mut ArenaMeta) {
        // SAFETY: `arena` is live (it came from `new_mapped` in `new_arena`).
        let (base, index, resident_empty, in_huge_chunk) =
            unsafe { ((*arena).base, (*arena).index, (*arena).resident_empty, (*arena).in_huge_chunk) };
        self.map.remove(base);
        if in_huge_chunk {
            self.decommit_untouched_in_chunk(base);
        }
        (self.near_pool_number, self.near_pool) = (usize::MAX, ptr::null_mut());
        // The pages and the metadata's mapping go at the caller's
        // `unmap_pending`, with the other arenas it unmaps: neighbours in one
        // call. After this nothing refers to `arena` (map entry removed above,
        // arenas slot below).
        self.pending_unmaps.push((base, self.arena_size));
        self.pending_unmaps.push((arena as usize, crate::arena::meta_mapping_len()));
        if in_huge_chunk && base + self.arena_size == self.chunk_next && self.chunk_next != self.chunk_end {
            // The rest of the current chunk was never handed out, but a huge
            // page backs the whole chunk once any of it is touched: it goes
            // with this arena (one munmap of the chunk, not a resident half
            // left behind), and the next arena takes a new chunk.
            self.pending_unmaps.push((self.chunk_next, self.chunk_end - self.chunk_next));
            self.chunk_next = self.chunk_end;
        }
        let last = self.arenas.pop().expect("arena list is not empty");
        if last != arena {
            self.arenas[index] = last;
            // SAFETY: `last` is a live arena.
            unsafe { (*last).index = index };
        }
        self.reserved -= self.arena_size;
        self.resident_empty_total -= resident_empty as usize;
        self.counters.arenas_freed_total += 1;
        self.counters.bytes_returned_total += resident_empty as u64 * self.pool_size as u64;
    }

    /// Gives back the pages of the never-carved pools (from `nextpool` on)
    /// of the live arenas (those in the arena map) in the chunk holding
    /// `addr`. Untouched as they are, they are resident all the
    /// same when a huge page backed the chunk (the kernel fills a whole
    /// 2 MiB page on the first touch), and once the chunk is split — a pool
    /// released, a neighbour unmapped — they stay as small pages nobody uses
    /// until those pools are carved (2,000,000 x 32 B freed: 1 MiB of them
    /// stayed resident beside the spare arena's counted 0.2 MiB).
    #[cold]
    fn decommit_untouched_in_chunk(&mut self, addr: usize) {
        let chunk = self.arena_size.max(os::HUGE_PAGE);
        let first = addr & !(chunk - 1);
        for base in (first..first + chunk).step_by(self.arena_size) {
            let arena = self.map.lookup(base);
            if arena.is_null() {
                continue;
            }
            // SAFETY: the map holds live arenas only.
            let nextpool = unsafe { (*arena).nextpool } as usize;
            if nextpool < POOLS_PER_ARENA {
                os::decommit(base + nextpool * self.pool_size, (POOLS_PER_ARENA - nextpool) * self.pool_size);
            }
        }
    }

    /// Gives the pages of the arenas `unmap_arena` retired back to the OS,
    /// with their metadata's, neighbours in one `munmap`: the two arenas of a
    /// huge-page chunk then go as one 2 MiB page, where unmapping them one at
    /// a time makes the kernel split it into 512 small pages first (the
    /// seed's reset at 10^7: huge-page splits fell from 0.5 % to 0.1 % of its
    /// samples), and the metadata mappings, which the kernel merged into one
    /// area as they were mapped side by side, go without splitting it
    /// piecemeal. Nothing happens while unmaps are held (`hold_unmaps`).
    fn unmap_pending(&mut self) {
        if self.pending_unmaps.is_empty() || self.unmaps_held > 0 {
            return;
        }
        let mut ranges = std::mem::take(&mut self.pending_unmaps);
        ranges.sort_unstable();
        let mut i = 0;
        while i < ranges.len() {
            let (start, mut end) = (ranges[i].0, ranges[i].0 + ranges[i].1);
            i += 1;
            while i < ranges.len() && ranges[i].0 == end {
                end += ranges[i].1;
                i += 1;
            }
            os::unmap(start, end - start);
        }
        ranges.clear();
        self.pending_unmaps = ranges;
    }

    /// Holds the unmapping of the arenas retired from now until the matching
    /// [`Allocator::release_held_unmaps`] (calls nest): a caller about to
    /// free a great many blocks (a long list's items, a collection's
    /// garbage, a namespace reset) lets the arenas it empties go in a few
    /// large `munmap`s at its end instead of one or two at a time, each of
    /// which may split a huge page the next one would have taken whole.
    /// The memory stays mapped (and counted nowhere: the arenas are already
    /// retired) only until then.
    #[inline]
    pub fn hold_unmaps(&mut self) {
        self.unmaps_held += 1;
    }

    /// Whether a [`Allocator::hold_unmaps`] is in force (never between the
    /// public calls of the layers above: each hold ends in the call that
    /// took it; their invariant checks assert so).
    pub fn holds_unmaps(&self) -> bool {
        self.unmaps_held > 0
    }

    /// Ends a [`Allocator::hold_unmaps`]; the outermost one unmaps what was
    /// retired meanwhile.
    #[inline]
    pub fn release_held_unmaps(&mut self) {
        debug_assert!(self.unmaps_held > 0, "release_held_unmaps without hold_unmaps");
        self.unmaps_held = self.unmaps_held.saturating_sub(1);
        if self.unmaps_held == 0 && !self.pending_unmaps.is_empty() {
            self.unmap_pending();
        }
    }

    // ------------------------------------------------------------------
    // usedpools rings

    /// # Safety
    /// `pool` is live and on no ring.
    unsafe fn link_used_front(&mut self, pool: *mut PoolMeta) {
        // SAFETY: contract; ring members are live.
        unsafe {
            let ring = ring_of((*pool).kind, (*pool).class as usize);
            let head = self.usedpools[ring];
            if head.is_null() {
                (*pool).next = pool;
                (*pool).prev = pool;
            } else {
                (*pool).next = head;
                (*pool).prev = (*head).prev;
                (*(*head).prev).next = pool;
                (*head).prev = pool;
            }
            self.usedpools[ring] = pool;
        }
    }

    /// # Safety
    /// `pool` is live and on no ring.
    unsafe fn link_used_back(&mut self, pool: *mut PoolMeta) {
        // SAFETY: contract; linking at the front and moving the head one
        // step on puts `pool` last in the ring.
        unsafe {
            let ring = ring_of((*pool).kind, (*pool).class as usize);
            let head = self.usedpools[ring];
            self.link_used_front(pool);
            if !head.is_null() {
                self.usedpools[ring] = head;
            }
        }
    }

    /// # Safety
    /// `pool` is live and on its class ring.
    unsafe fn unlink_used(&mut self, pool: *mut PoolMeta) {
        // SAFETY: contract; ring members are live.
        unsafe {
            let ring = ring_of((*pool).kind, (*pool).class as usize);
            let next = (*pool).next;
            if next == pool {
                self.usedpools[ring] = ptr::null_mut();
            } else {
                (*(*pool).prev).next = next;
                (*next).prev = (*pool).prev;
                if self.usedpools[ring] == pool {
                    self.usedpools[ring] = next;
                }
            }
            (*pool).next = ptr::null_mut();
            (*pool).prev = ptr::null_mut();
        }
    }

    // ------------------------------------------------------------------
    // inspection

    /// Size in bytes of the live block at `p` as the caller sees it (the
    /// requested size for large and debug blocks, the class size for small
    /// ones), or an error if `p` is not a live block.
    pub fn usable_size(&self, p: *mut u8) -> Result<usize, AllocError> {
        if self.debug {
            let raw = (p as usize).wrapping_sub(debug_hooks::HEAD);
            let located = self.locate_kind(raw, BlockKind::Raw).map_err(|e| e.with_addr(p as usize))?;
            let capacity = match &located {
                // SAFETY: live pool.
                Located::Small { pool, .. } => block_size(unsafe { (**pool).class } as usize),
                Located::Large(b) => b.size,
            };
            // SAFETY: `raw` is a live block of `capacity` bytes.
            return unsafe { debug_hooks::check(raw as *const u8, capacity) }
                .map_err(|detail| AllocError::HeapCorruption { addr: p as usize, detail });
        }
        match self.locate_kind(p as usize, BlockKind::Raw)? {
            // SAFETY: live pool.
            Located::Small { pool, .. } => Ok(block_size(unsafe { (*pool).class } as usize)),
            Located::Large(b) => Ok(b.size),
        }
    }

    /// Calls `f` with the metadata of every mapped arena.
    pub(crate) fn for_each_arena(&self, mut f: impl FnMut(&ArenaMeta)) {
        for &arena in &self.arenas {
            // SAFETY: listed arenas are live.
            f(unsafe { &*arena });
        }
    }

    pub(crate) fn large_blocks(&self) -> impl Iterator<Item = (usize, usize)> + '_ {
        self.large.iter().map(|(&a, b)| (a, b.size))
    }

    /// How many live large blocks hold `kind`.
    pub(crate) fn large_blocks_of(&self, kind: crate::BlockKind) -> usize {
        self.large.values().filter(|b| b.kind == kind).count()
    }

    pub(crate) fn arena_map(&self) -> &ArenaMap {
        &self.map
    }

    /// Asserts every invariant of pools, arenas, lists and the arena map
    /// (see the module docs of `pool` and `arena`). For tests.
    pub fn check_invariants(&self) {
        assert!(
            self.pending_unmaps.is_empty() || self.unmaps_held > 0,
            "retired arenas left mapped: {:?}",
            self.pending_unmaps
        );
        let mut wholly_free = 0;
        let mut resident_empty_total = 0;
        let mut pools_taken = 0;
        for (i, &arena) in self.arenas.iter().enumerate() {
            // SAFETY: listed arenas are live.
            let a = unsafe { &*arena };
            assert_eq!(a.index, i, "arena index");
            assert_eq!(self.map.lookup(a.base), arena, "arena map entry");
            assert_eq!(self.map.lookup(a.base + self.arena_size - 1), arena, "arena map entry (end)");
            let mut empty = 0;
            let mut released = 0;
            let mut untouched = 0;
            for (k, pool) in a.pools.iter().enumerate() {
                pool.check_invariants(self.pool_size);
                assert_eq!(pool.arena, arena);
                match pool.state {
                    PoolState::Untouched => {
                        assert!(k >= a.nextpool as usize, "untouched pool below nextpool");
                        untouched += 1;
                    }
                    PoolState::Empty => empty += 1,
                    PoolState::Released => released += 1,
                    PoolState::Used => {
                        // It must be on its class ring.
                        let head = self.usedpools[ring_of(pool.kind, pool.class as usize)];
                        assert!(!head.is_null());
                        let mut q = head;
                        let mut found = false;
                        loop {
                            if std::ptr::eq(q, pool) {
                                found = true;
                            }
                            // SAFETY: ring members are live.
                            q = unsafe { (*q).next };
                            if q == head {
                                break;
                            }
                        }
                        assert!(found, "used pool missing from its ring");
                    }
                    PoolState::Full => {}
                }
                if matches!(pool.state, PoolState::Used | PoolState::Full) {
                    pools_taken += 1;
                }
            }
            resident_empty_total += a.resident_empty as usize;
            assert_eq!(untouched, POOLS_PER_ARENA - a.nextpool as usize);
            assert_eq!(count_list(a.freepools, PoolState::Empty), empty);
            assert_eq!(count_list(a.released, PoolState::Released), released);
            assert_eq!(a.resident_empty as usize, empty);
            if self.release_delay == 0 {
                assert!(a.resident_empty < RELEASE_THRESHOLD, "resident empty pools over threshold");
            }
            assert_eq!(a.nfreepools as usize, empty + released + untouched);
            if a.nfreepools as usize == POOLS_PER_ARENA {
                wholly_free += 1;
            }
        }
        assert_eq!(wholly_free, self.wholly_free);
        assert_eq!(resident_empty_total, self.resident_empty_total, "resident empty pools");
        assert_eq!(pools_taken, self.pools_taken, "pools taken from their arenas");
        // The retention rule (arena.rs, "Bounded retention"), after every call.
        assert!(
            self.cached_bytes() <= self.cache_limit(),
            "retention cache holds {} bytes, over its bound of {}",
            self.cached_bytes(),
            self.cache_limit()
        );
        if self.release_delay == 0 {
            assert!(wholly_free <= 1, "more than one wholly free arena kept");
        }
        // usable_arenas: exactly the arenas with free pools, sorted, fingers right.
        let mut on_list = 0;
        let mut prev: *mut ArenaMeta = ptr::null_mut();
        let mut a = self.usable.head;
        while !a.is_null() {
            // SAFETY: list members are live.
            let m = unsafe { &*a };
            assert!(m.nfreepools > 0);
            assert_eq!(m.prev_arena, prev);
            if !prev.is_null() {
                // SAFETY: live.
                assert!(unsafe { (*prev).nfreepools } <= m.nfreepools, "usable_arenas not sorted");
            }
            let is_last_of_group =
                // SAFETY: live.
                m.next_arena.is_null() || unsafe { (*m.next_arena).nfreepools } != m.nfreepools;
            assert_eq!(self.usable.nfp2lasta[m.nfreepools as usize] == a, is_last_of_group, "nfp2lasta");
            on_list += 1;
            prev = a;
            a = m.next_arena;
        }
        let with_free = self
            .arenas
            .iter()
            // SAFETY: live.
            .filter(|&&a| unsafe { (*a).nfreepools } > 0)
            .count();
        assert_eq!(on_list, with_free, "usable_arenas membership");
        assert_eq!(self.usable.tail(), prev, "usable_arenas tail");
        for (n, &last) in self.usable.nfp2lasta.iter().enumerate() {
            if !last.is_null() {
                // SAFETY: fingers point at live list members.
                assert_eq!(unsafe { (*last).nfreepools } as usize, n);
            }
        }
        // usedpools rings: members are Used pools of that class.
        for (ring, &head) in self.usedpools.iter().enumerate() {
            if head.is_null() {
                continue;
            }
            let mut q = head;
            loop {
                // SAFETY: ring members are live.
                let m = unsafe { &*q };
                assert_eq!(m.state, PoolState::Used);
                assert_eq!(ring_of(m.kind, m.class as usize), ring);
                if m.count == 0 {
                    assert!(self.release_delay != 0 && q == head, "an empty Used pool must head its ring");
                }
                // SAFETY: live.
                assert_eq!(unsafe { (*m.next).prev }, q);
                q = m.next;
                if q == head {
                    break;
                }
            }
        }
        self.map.check_cache();
        let large_reserved: usize = self.large.values().map(|b| b.reserved()).sum();
        assert_eq!(self.reserved, self.arenas.len() * self.arena_size + large_reserved);
    }
}

fn count_list(mut pool: *mut PoolMeta, state: PoolState) -> usize {
    let mut n = 0;
    while !pool.is_null() {
        // SAFETY: arena lists hold live pools.
        let p = unsafe { &*pool };
        assert_eq!(p.state, state);
        n += 1;
        pool = p.next;
    }
    n
}

/// Length of the own mapping of a large block of `n` bytes, or 0 when it
/// comes from `malloc`. A size that cannot be rounded up to whole pages
/// (within a page of `usize::MAX`) is `NoMemory`, not an overflow.
fn mapping_len(n: usize) -> Result<usize, AllocError> {
    if n < LARGE_MMAP_THRESHOLD {
        return Ok(0);
    }
    n.checked_next_multiple_of(os::page_size()).ok_or(AllocError::NoMemory { requested: n, reason: "size overflows" })
}

impl Drop for Allocator {
    fn drop(&mut self) {
        self.unmaps_held = 0; // a hold cut short (a panic) still unmaps
        self.unmap_pending();
        if self.chunk_next != self.chunk_end {
            os::unmap(self.chunk_next, self.chunk_end - self.chunk_next);
        }
        for &arena in &self.arenas {
            // SAFETY: every listed arena and its metadata were mapped by us;
            // both are released exactly once here.
            unsafe {
                os::unmap((*arena).base, self.arena_size);
                ArenaMeta::unmap(arena);
            }
        }
        for (&addr, block) in &self.large {
            if block.mapped > 0 {
                os::unmap(addr, block.mapped);
            } else {
                // SAFETY: malloc'd by us, freed once.
                unsafe { libc::free(addr as *mut libc::c_void) };
            }
        }
    }
}
