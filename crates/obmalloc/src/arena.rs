//! Arenas: big aligned mappings cut into 64 pools, and the `usable_arenas`
//! list that decides which arena the next pool comes from.
//!
//! # Policy (CPython's, plus pool-granularity release)
//! - An arena is mapped from the OS aligned to its own size and cut into
//!   [`POOLS_PER_ARENA`] pools, carved lazily (lowest untouched first).
//! - `usable_arenas` holds exactly the arenas with at least one free pool
//!   (Empty, Released or Untouched), sorted by ascending `nfreepools`. New pools
//!   come from the head, the most used arena, so that nearly empty arenas can
//!   drain and be returned. Keeping the list sorted is O(1) per change thanks to
//!   `nfp2lasta[n]`, the last arena with `n` free pools (bpo-37029).
//! - An arena whose pools are all free is unmapped, except that one such
//!   arena is kept as a spare so that a loop allocating and freeing one block
//!   does not map and unmap an arena each time (bpo-37257). With a release
//!   delay (the default), unmapping waits until the arena has stayed free for
//!   the delay, so a burst that frees and refills two arenas keeps both.
//! - Beyond CPython: when an arena holds [`RELEASE_THRESHOLD`] resident empty
//!   pools, those that have stayed empty for `pool_release_delay` pool events
//!   give their pages back with `MADV_DONTNEED` in one batch, so a few
//!   long-lived blocks no longer pin a whole arena's memory. The delay keeps
//!   a loop that empties and refills the same pools from thrashing.
//!
//! # Bounded retention
//! The delay alone lets memory stay: it only acts on later pool events, and
//! a program that has stopped freeing makes none. So, whatever the delay,
//! the resident empty pools are bounded at all times:
//! - **the spare arena**: the last arena of `usable_arenas`, the one with
//!   the most free pools, keeps its resident empty pools — a wholly free
//!   arena when there is one, as CPython keeps one, else the arena nearest
//!   to becoming one: at most an arena's worth either way;
//! - **the cache**: every other resident empty pool, at most
//!   `max(in_use / 16, 256 KiB)` and never more than `retain_cache_max`
//!   (4 MiB by default), where `in_use` is the pools taken from their arenas
//!   (whole) plus the large blocks' bytes.
//!
//! When a pool returns to its arena (the arena may become wholly free with
//! it, or the spare) or a large block is freed or shrunk, and the cache is
//! then over its bound, `Allocator::trim_cache` brings it
//! down to half the bound at once: walking from the tail of `usable_arenas`
//! (the least used arenas, which new pools are taken from last), it unmaps
//! wholly free arenas but the spare and releases the resident empty pools of
//! the others. A plain free that empties no pool costs nothing more. A burst
//! that frees and refills a working set within spare + cache keeps all of it
//! resident; beyond that it faults pages in again, the price of never
//! holding more than the rule says once the frees stop. Besides the rule,
//! each size class keeps its last pool when it empties (`pool_became_empty`:
//! at most one per class and block kind, counted as in use). Stats report
//! each reason (`Stats::free_bytes_*`).
//!
//! # Invariants (asserted by `Allocator::check_invariants`)
//! 1. `nfreepools == |freepools| + |released| + (64 - nextpool)`.
//! 2. `resident_empty == |freepools|`; with a release delay of 0,
//!    `resident_empty < RELEASE_THRESHOLD` after every public call.
//! 3. Pools at index `>= nextpool` are Untouched; pools on `freepools` are
//!    Empty; on `released`, Released.
//! 4. An arena is on `usable_arenas` iff `nfreepools > 0`; the list is sorted
//!    by `nfreepools` and `nfp2lasta[n]` is its last arena with `n` free pools
//!    (null if none).
//! 5. With a release delay of 0, at most one arena has all its pools free;
//!    with a delay, wholly free arenas older than the delay are unmapped at
//!    the next sweep, all but one.
//! 6. After every public call, the cache (resident empty pools outside the
//!    spare arena) is within its bound (see "Bounded retention").

use std::ptr;

use crate::os;
use crate::pool::PoolMeta;

/// Pools per arena: 64 in every CPython geometry (16 KiB x 1 MiB, 4 KiB x 256 KiB).
pub(crate) const POOLS_PER_ARENA: usize = 64;

/// Resident empty pools an arena may hold before they are given back.
pub const RELEASE_THRESHOLD: u32 = 8;

pub(crate) struct ArenaMeta {
    /// First byte of the arena (aligned to the arena size).
    pub(crate) base: usize,
    /// Pools not in use: Empty + Released + Untouched.
    pub(crate) nfreepools: u32,
    /// Index of the first untouched pool.
    pub(crate) nextpool: u32,
    /// Length of `freepools`.
    pub(crate) resident_empty: u32,
    /// Empty pools whose pages are resident (singly linked through `next`).
    pub(crate) freepools: *mut PoolMeta,
    /// Pools given back to the OS (singly linked through `next`).
    pub(crate) released: *mut PoolMeta,
    /// Neighbours in `usable_arenas`.
    pub(crate) next_arena: *mut ArenaMeta,
    pub(crate) prev_arena: *mut ArenaMeta,
    /// Position in `Allocator::arenas`.
    pub(crate) index: usize,
    /// The allocator's pool clock when all its pools last became free.
    pub(crate) wholly_free_since: u64,
    /// Its chunk was marked `MADV_HUGEPAGE` (see `Config::huge_page_threshold`)
    /// and this arena has not yet marked it `MADV_NOHUGEPAGE`, which it does
    /// before its first pool release.
    pub(crate) huge_pages: bool,
    /// Its chunk was marked `MADV_HUGEPAGE` when mapped (never cleared):
    /// its never-touched pools may still be resident, as parts of a huge
    /// page that a neighbour touched (see `Allocator::unmap_arena`).
    pub(crate) in_huge_chunk: bool,
    pub(crate) pools: [PoolMeta; POOLS_PER_ARENA],
}

impl ArenaMeta {
    /// Metadata for a freshly mapped arena, in a page mapping of its own
    /// (`None` when the OS refuses one) so its address is stable (pools
    /// point back at it, the arena map points at it) and so that unmapping
    /// an arena gives its metadata (16 KiB) back to the OS as well: from the
    /// system heap, the metadata of hundreds of freed arenas stayed resident
    /// in glibc's free lists (5 MiB after the seed's list of 10^7 ints).
    pub(crate) fn new_mapped(base: usize, pool_size: usize, index: usize) -> Option<*mut ArenaMeta> {
        const { assert!(!std::mem::needs_drop::<ArenaMeta>()) };
        let raw = os::map(meta_mapping_len())? as *mut ArenaMeta;
        // SAFETY: a fresh, page-aligned (more than `ArenaMeta`'s 64) writable
        // mapping of at least `size_of::<ArenaMeta>()` bytes, ours alone.
        unsafe {
            raw.write(ArenaMeta {
                base,
                nfreepools: POOLS_PER_ARENA as u32,
                nextpool: 0,
                resident_empty: 0,
                freepools: ptr::null_mut(),
                released: ptr::null_mut(),
                next_arena: ptr::null_mut(),
                prev_arena: ptr::null_mut(),
                index,
                wholly_free_since: 0,
                huge_pages: false,
                in_huge_chunk: false,
                pools: std::array::from_fn(|i| PoolMeta::untouched(base + i * pool_size, raw)),
            });
        }
        Some(raw)
    }

    /// Gives the mapping of [`ArenaMeta::new_mapped`] back (the allocator's
    /// `unmap_arena` defers it instead, with the arena's pages).
    ///
    /// # Safety
    /// `meta` came from `new_mapped`, is unmapped once, and nothing refers
    /// to it afterwards.
    pub(crate) unsafe fn unmap(meta: *mut ArenaMeta) {
        // No field needs dropping (asserted in `new_mapped`).
        os::unmap(meta as usize, meta_mapping_len());
    }
}

/// Length of the page mapping holding one `ArenaMeta`.
pub(crate) fn meta_mapping_len() -> usize {
    std::mem::size_of::<ArenaMeta>().next_multiple_of(os::page_size())
}

/// The sorted list of arenas with free pools, and its finger vector.
pub(crate) struct UsableArenas {
    pub(crate) head: *mut ArenaMeta,
    /// The last arena (the one with the most free pools: the spare of
    /// "Bounded retention"), kept so that finding it is O(1).
    tail: *mut ArenaMeta,
    /// `nfp2lasta[n]`: the last arena in the list with `n` free pools.
    pub(crate) nfp2lasta: [*mut ArenaMeta; POOLS_PER_ARENA + 1],
}

impl UsableArenas {
    pub(crate) fn new() -> UsableArenas {
        UsableArenas { head: ptr::null_mut(), tail: ptr::null_mut(), nfp2lasta: [ptr::null_mut(); POOLS_PER_ARENA + 1] }
    }

    /// Puts a new arena (all pools free) on the list; only called when the
    /// list is empty, as in CPython, so the order holds trivially.
    ///
    /// # Safety
    /// `arena` is live, not on the list, and the list is empty.
    pub(crate) unsafe fn push_new(&mut self, arena: *mut ArenaMeta) {
        debug_assert!(self.head.is_null());
        // SAFETY: per the contract, `arena` is live and ours.
        let a = unsafe { &mut *arena };
        a.next_arena = ptr::null_mut();
        a.prev_arena = ptr::null_mut();
        self.head = arena;
        self.tail = arena;
        self.nfp2lasta[a.nfreepools as usize] = arena;
    }

    /// Accounts for one pool taken from the head arena: its count drops by
    /// one, which keeps it the smallest, and it leaves the list at zero.
    ///
    /// # Safety
    /// The list is non-empty and its arenas are live.
    pub(crate) unsafe fn head_took_pool(&mut self) {
        let arena = self.head;
        // SAFETY: the head is a live arena (contract).
        let a = unsafe { &mut *arena };
        let nf = a.nfreepools as usize;
        debug_assert!(nf > 0);
        if self.nfp2lasta[nf] == arena {
            self.nfp2lasta[nf] = ptr::null_mut();
        }
        if nf > 1 {
            debug_assert!(self.nfp2lasta[nf - 1].is_null());
            self.nfp2lasta[nf - 1] = arena;
        }
        a.nfreepools -= 1;
        if a.nfreepools == 0 {
            self.head = a.next_arena;
            if self.head.is_null() {
                // It was the only arena, hence also the tail.
                self.tail = ptr::null_mut();
            } else {
                // SAFETY: list members are live.
                unsafe { (*self.head).prev_arena = ptr::null_mut() };
            }
            a.next_arena = ptr::null_mut();
        }
    }

    /// Accounts for one pool returned to `arena` (its `nfreepools` has not yet
    /// been incremented): inserts it when it was full, or slides it right past
    /// the arenas that now have fewer free pools.
    ///
    /// # Safety
    /// `arena` and every arena on the list are live.
    pub(crate) unsafe fn pool_returned(&mut self, arena: *mut ArenaMeta) {
        // SAFETY: contract.
        let a = unsafe { &mut *arena };
        let nf = a.nfreepools as usize;
        let lastnf = self.nfp2lasta[nf];
        if nf > 0 && lastnf == arena {
            let prev = a.prev_arena;
            // SAFETY: list members are live.
            self.nfp2lasta[nf] =
                if !prev.is_null() && unsafe { (*prev).nfreepools } as usize == nf { prev } else { ptr::null_mut() };
        }
        a.nfreepools += 1;
        let nf = nf + 1;
        if nf == 1 {
            // It was full, hence off the list: it belongs at the head.
            a.prev_arena = ptr::null_mut();
            a.next_arena = self.head;
            if self.head.is_null() {
                self.tail = arena;
            } else {
                // SAFETY: list members are live.
                unsafe { (*self.head).prev_arena = arena };
            }
            self.head = arena;
            if self.nfp2lasta[1].is_null() {
                self.nfp2lasta[1] = arena;
            }
            return;
        }
        if self.nfp2lasta[nf].is_null() {
            self.nfp2lasta[nf] = arena;
        }
        if lastnf == arena {
            // It was the rightmost of its old group: still in order.
            return;
        }
        // Move it right after `lastnf`, the old last of its previous group.
        // SAFETY: `lastnf` is non-null (the group contained `arena`) and live.
        unsafe {
            self.unlink(arena);
            let a = &mut *arena;
            a.prev_arena = lastnf;
            a.next_arena = (*lastnf).next_arena;
            if a.next_arena.is_null() {
                // `lastnf` was the tail.
                self.tail = arena;
            } else {
                (*a.next_arena).prev_arena = arena;
            }
            (*lastnf).next_arena = arena;
        }
    }

    /// The last arena of the list (the one with the most free pools), or
    /// null when the list is empty.
    pub(crate) fn tail(&self) -> *mut ArenaMeta {
        self.tail
    }

    /// Removes `arena` from the list and from the finger vector.
    ///
    /// # Safety
    /// `arena` is on the list and every member is live.
    pub(crate) unsafe fn remove(&mut self, arena: *mut ArenaMeta) {
        // SAFETY: contract.
        let a = unsafe { &mut *arena };
        let nf = a.nfreepools as usize;
        if self.nfp2lasta[nf] == arena {
            let prev = a.prev_arena;
            // SAFETY: list members are live.
            self.nfp2lasta[nf] =
                if !prev.is_null() && unsafe { (*prev).nfreepools } as usize == nf { prev } else { ptr::null_mut() };
        }
        // SAFETY: contract.
        unsafe { self.unlink(arena) };
        a.next_arena = ptr::null_mut();
        a.prev_arena = ptr::null_mut();
    }

    /// Splices `arena` out of the links (finger vector untouched).
    unsafe fn unlink(&mut self, arena: *mut ArenaMeta) {
        // SAFETY: the caller guarantees `arena` and its neighbours are live.
        unsafe {
            let a = &mut *arena;
            if a.prev_arena.is_null() {
                debug_assert_eq!(self.head, arena);
                self.head = a.next_arena;
            } else {
                (*a.prev_arena).next_arena = a.next_arena;
            }
            if a.next_arena.is_null() {
                debug_assert_eq!(self.tail, arena);
                self.tail = a.prev_arena;
            } else {
                (*a.next_arena).prev_arena = a.prev_arena;
            }
        }
    }
}
