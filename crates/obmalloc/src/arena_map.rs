//! The arena map: a two-level radix tree from an address to the metadata of
//! the arena that contains it, or to nothing.
//!
//! This is what makes every free validatable in O(1) (CPython 3.10's
//! `address_in_range` is a three-level tree for the same job). Arenas are
//! aligned to their size, so an address's arena number is `addr >> arena_shift`;
//! the top bits of that number pick a leaf, the low `LEAF_BITS` an entry.
//! Leaves are allocated zeroed on first use and kept until the allocator is
//! dropped (a leaf covers 16 GiB of address space with 1 MiB arenas).
//!
//! Invariant: `lookup(a)` is non-null if and only if `a` lies inside a mapped
//! arena of this allocator, and then it is that arena's metadata. Every
//! valid cache slot agrees with the tree.

use std::alloc::{alloc_zeroed, dealloc, Layout};
use std::ptr;

use crate::arena::ArenaMeta;

/// User-space addresses fit in 48 bits on x86-64 and arm64 Linux.
const ADDRESS_BITS: u32 = 48;
const LEAF_BITS: u32 = 14;
const LEAF_LEN: usize = 1 << LEAF_BITS;

type Leaf = [*mut ArenaMeta; LEAF_LEN];

/// Slots of the direct-mapped cache in front of the tree.
const CACHE_SLOTS: usize = 1024;

/// One cache slot: an arena number and its metadata.
#[derive(Clone, Copy)]
struct CacheSlot {
    key: usize,
    meta: *mut ArenaMeta,
}

/// A key no address produces (addresses have at most 48 bits).
const NO_KEY: usize = usize::MAX;

pub(crate) struct ArenaMap {
    /// A direct-mapped cache (slot = arena number mod 1024) in front of the
    /// tree, read by the allocator's fast paths: one load instead of the
    /// tree's three dependent ones. Arenas are mapped at neighbouring
    /// addresses, so up to 1024 of them (1 GiB) rarely collide; a miss falls
    /// back to the tree on the slow path, which refills the slot. The tree
    /// stays the authority. Disabled (never filled) with debug hooks, so that
    /// every free takes the slow path that checks guard bytes.
    cache: [CacheSlot; CACHE_SLOTS],
    use_cache: bool,
    arena_shift: u32,
    root: Box<[*mut Leaf]>,
    leaves: usize,
}

impl ArenaMap {
    pub(crate) fn new(arena_shift: u32, use_cache: bool) -> ArenaMap {
        let root_len = 1usize << (ADDRESS_BITS - arena_shift - LEAF_BITS);
        ArenaMap {
            cache: [CacheSlot { key: NO_KEY, meta: ptr::null_mut() }; CACHE_SLOTS],
            use_cache,
            arena_shift,
            root: vec![ptr::null_mut(); root_len].into_boxed_slice(),
            leaves: 0,
        }
    }

    /// The arena numbered `key` (`addr >> arena_shift`) if the cache knows
    /// it, else `None` — which does not mean the address is foreign: ask
    /// [`ArenaMap::lookup`]. A slot holding a real key always holds non-null
    /// metadata.
    #[inline(always)]
    pub(crate) fn cached_arena_number(&self, key: usize) -> Option<*mut ArenaMeta> {
        let slot = &self.cache[key & (CACHE_SLOTS - 1)];
        (slot.key == key).then_some(slot.meta)
    }

    /// Puts a tree hit in the cache so the next lookup is fast.
    pub(crate) fn remember(&mut self, addr: usize, meta: *mut ArenaMeta) {
        if self.use_cache && !meta.is_null() {
            let key = addr >> self.arena_shift;
            self.cache[key & (CACHE_SLOTS - 1)] = CacheSlot { key, meta };
        }
    }

    /// The arena containing `addr`, or null when it is not in any arena of ours.
    pub(crate) fn lookup(&self, addr: usize) -> *mut ArenaMeta {
        let key = addr >> self.arena_shift;
        match self.root.get(key >> LEAF_BITS) {
            Some(&leaf) if !leaf.is_null() => {
                // SAFETY: non-null root entries point to live leaves we allocated
                // in `insert`, freed only in `drop`.
                unsafe { (*leaf)[key & (LEAF_LEN - 1)] }
            }
            _ => ptr::null_mut(),
        }
    }

    /// Records that the arena starting at `base` is `meta`. Returns false when
    /// a leaf could not be allocated (out of memory).
    pub(crate) fn insert(&mut self, base: usize, meta: *mut ArenaMeta) -> bool {
        let key = base >> self.arena_shift;
        let Some(slot) = self.root.get_mut(key >> LEAF_BITS) else {
            return false;
        };
        if slot.is_null() {
            // SAFETY: Leaf has a non-zero size; all-zero bits are null pointers.
            let leaf = unsafe { alloc_zeroed(Layout::new::<Leaf>()) } as *mut Leaf;
            if leaf.is_null() {
                return false;
            }
            *slot = leaf;
            self.leaves += 1;
        }
        // SAFETY: `*slot` is a live leaf (allocated above or earlier).
        unsafe { (**slot)[key & (LEAF_LEN - 1)] = meta };
        self.remember(base, meta);
        true
    }

    pub(crate) fn remove(&mut self, base: usize) {
        let key = base >> self.arena_shift;
        let cached = &mut self.cache[key & (CACHE_SLOTS - 1)];
        if cached.key == key {
            *cached = CacheSlot { key: NO_KEY, meta: ptr::null_mut() };
        }
        if let Some(&leaf) = self.root.get(key >> LEAF_BITS) {
            if !leaf.is_null() {
                // SAFETY: live leaf, see `lookup`.
                unsafe { (*leaf)[key & (LEAF_LEN - 1)] = ptr::null_mut() };
            }
        }
    }

    /// Asserts that every filled cache slot agrees with the tree.
    pub(crate) fn check_cache(&self) {
        for slot in self.cache.iter().filter(|s| s.key != NO_KEY) {
            assert!(!slot.meta.is_null(), "a cache slot with a key but no arena");
            assert_eq!(self.lookup(slot.key << self.arena_shift), slot.meta, "cache slot disagrees with the tree");
        }
    }

    /// Number of leaves allocated (CPython prints its node counts the same way).
    pub(crate) fn leaf_count(&self) -> usize {
        self.leaves
    }

    pub(crate) fn root_bytes(&self) -> usize {
        self.root.len() * std::mem::size_of::<*mut Leaf>()
    }

    pub(crate) fn leaf_bytes() -> usize {
        std::mem::size_of::<Leaf>()
    }
}

impl Drop for ArenaMap {
    fn drop(&mut self) {
        for &leaf in self.root.iter() {
            if !leaf.is_null() {
                // SAFETY: allocated in `insert` with this layout, freed once here.
                unsafe { dealloc(leaf as *mut u8, Layout::new::<Leaf>()) };
            }
        }
    }
}
