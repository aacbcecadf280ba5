//! Pools: one size class carved out of a fixed-size piece of an arena.
//!
//! Unlike CPython, a pool's header does not live inside the pool: it is a
//! [`PoolMeta`] in its arena's metadata, outside the memory handed to users.
//! A host that overruns the first block of a pool therefore cannot corrupt
//! the allocator's bookkeeping, every byte of a pool is usable (CPython loses
//! 48 bytes per pool to its header), and a pool of 16-byte blocks holds exactly
//! `pool_size / 16` of them, which bounds the allocation bitmap.
//!
//! # States (a written state machine, as in obmalloc.c)
//! ```text
//!            carve                 last block taken
//! Untouched ───────► Used ◄──────────────────────────► Full
//!                     │  ▲   a block freed into it
//!  last block freed   │  │ reused (same class: free list kept)
//!                     ▼  │
//!                    Empty ──── release (madvise) ────► Released
//!                                                          │
//!                     Used ◄─────── reused (re-init) ──────┘
//! ```
//! - `Untouched`: never carved; its pages were never touched.
//! - `Used`: in `usedpools[class]`; has at least one free block on its free
//!   list (`freeblock != null`) — the allocator's fast path relies on this.
//!   A Used pool may hold no block at all only at the head of its ring (kept
//!   for the next allocation of its class; see `pool_became_empty`).
//! - `Full`: every block allocated; in no list.
//! - `Empty`: no block allocated; pages resident; on its arena's `freepools`
//!   list; its free list is still valid for its old class.
//! - `Released`: no block allocated; pages given back to the OS with
//!   `MADV_DONTNEED`; on its arena's `released` list; reads as zeros.
//!
//! # Invariants (asserted by [`PoolMeta::check_invariants`])
//! 1. `count == popcount(bitmap)`: the bitmap has a bit set for exactly the
//!    allocated blocks.
//! 2. Every block on the free list lies in the pool, on a block boundary,
//!    below `nextoffset`, has its bit clear, and appears once.
//! 3. `count + free-list length + uncarved blocks == capacity`, where
//!    uncarved blocks are those at offsets `>= nextoffset`.
//! 4. `Used` ⇒ `freeblock != null`; `Full` ⇒ `freeblock == null`,
//!    `count == capacity`; `Empty`/`Released`/`Untouched` ⇒ `count == 0`.

use crate::arena::ArenaMeta;
use crate::size_class::{block_size, DIV_MAGIC};
use crate::BlockKind;

/// Bitmap words per pool: enough for 16 KiB / 16 B = 1024 blocks.
pub(crate) const BITMAP_WORDS: usize = 16;
/// The largest pool the bitmap can describe.
pub(crate) const MAX_POOL_SIZE: usize = BITMAP_WORDS * 64 * 16;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
#[repr(u8)]
pub(crate) enum PoolState {
    Untouched,
    Used,
    Full,
    Empty,
    Released,
}

/// The out-of-line header of one pool (256 bytes, cache-line aligned).
#[repr(C, align(64))]
pub(crate) struct PoolMeta {
    // First cache line: everything the malloc and free fast paths touch
    // for pools of up to 256 blocks (all classes of 64 bytes and more).
    /// Head of the free list threaded through the free blocks themselves.
    pub(crate) freeblock: *mut u8,
    /// Address of the pool's first byte.
    pub(crate) base: usize,
    /// Number of allocated blocks (at most 1024). A u32, not a u16: every
    /// free decrements it, and the compiler reads a u16 here with a 32-bit
    /// load, which cannot take its value from the previous free's 16-bit
    /// store still in flight (a store-forwarding stall on every free of a
    /// run of blocks in one pool: half the time of freeing a big list).
    pub(crate) count: u32,
    /// `ceil(2^32 / size)`, to divide by the block size (see `size_class`).
    pub(crate) magic: u32,
    /// What the pool's blocks hold: raw memory or objects. Kept in the first
    /// cache line because every free checks it.
    pub(crate) kind: BlockKind,
    /// Bit `i` is set while block `i` is allocated.
    pub(crate) bitmap: [u64; BITMAP_WORDS],
    // Then what the slow paths use.
    /// Block size of the class.
    pub(crate) size: u32,
    /// Size class; kept after the pool empties (to reuse its free list, and
    /// to tell a double free from a wild pointer).
    pub(crate) class: u32,
    /// Offset of the next never-carved block.
    pub(crate) nextoffset: u32,
    /// Largest offset at which a whole block still fits.
    pub(crate) maxnextoffset: u32,
    /// Ring links in `usedpools[class]` (Used), or `next` as the singly
    /// linked `freepools`/`released` list of the arena (Empty, Released).
    pub(crate) next: *mut PoolMeta,
    pub(crate) prev: *mut PoolMeta,
    pub(crate) arena: *mut ArenaMeta,
    /// The allocator's pool clock when the pool last became Empty (see
    /// `Allocator::pool_clock`): pools empty for long enough are released.
    pub(crate) emptied_at: u64,
    pub(crate) state: PoolState,
}

impl PoolMeta {
    pub(crate) fn untouched(base: usize, arena: *mut ArenaMeta) -> PoolMeta {
        PoolMeta {
            freeblock: std::ptr::null_mut(),
            count: 0,
            kind: BlockKind::Raw,
            size: block_size(0) as u32,
            magic: DIV_MAGIC[0] as u32,
            class: 0,
            nextoffset: 0,
            maxnextoffset: 0,
            next: std::ptr::null_mut(),
            prev: std::ptr::null_mut(),
            base,
            arena,
            emptied_at: 0,
            state: PoolState::Untouched,
            bitmap: [0; BITMAP_WORDS],
        }
    }

    /// Sets the class of a pool about to be (re)initialised.
    pub(crate) fn set_class(&mut self, class: usize) {
        self.class = class as u32;
        self.size = block_size(class) as u32;
        self.magic = DIV_MAGIC[class] as u32;
    }

    /// Whether block `index` is allocated. The `& (BITMAP_WORDS - 1)` never
    /// changes an index below the pool's capacity (at most 1024 blocks); it
    /// only spares the bounds check on the fast paths.
    #[inline(always)]
    pub(crate) fn is_allocated(&self, index: usize) -> bool {
        self.bitmap[(index >> 6) & (BITMAP_WORDS - 1)] & (1u64 << (index & 63)) != 0
    }

    /// Sets the bit of block `index`, which must be clear (xor is one
    /// instruction shorter than or/and-not).
    #[inline(always)]
    pub(crate) fn mark_allocated(&mut self, index: usize) {
        self.bitmap[(index >> 6) & (BITMAP_WORDS - 1)] ^= 1u64 << (index & 63);
    }

    /// Clears the bit of block `index`, which must be set.
    #[inline(always)]
    pub(crate) fn mark_free(&mut self, index: usize) {
        self.bitmap[(index >> 6) & (BITMAP_WORDS - 1)] ^= 1u64 << (index & 63);
    }

    /// `(addr - base) / size` by one multiply: exact for every address in
    /// the pool (offsets below 2^16, see `size_class`). For an address on a
    /// block boundary this is the block's index.
    #[inline(always)]
    pub(crate) fn index_of(&self, addr: usize) -> usize {
        ((addr.wrapping_sub(self.base) as u64 * self.magic as u64) >> 32) as usize
    }

    /// Where `addr` falls in this pool: `(block index, on a block start)`.
    ///
    /// One multiply gives both. With `magic = ceil(2^32 / size)`, the high
    /// half of `offset * magic` is `offset / size`, and the low half is below
    /// `magic` exactly when `size` divides `offset`: writing
    /// `offset = q * size + r` and `magic * size = 2^32 + e` (`0 <= e < size`),
    /// the low half is `q * e + r * magic`, where `q * e < 2^19 < magic` and,
    /// for `r >= 1`, `r * magic >= magic` with no wrap (`(size - 1) * magic +
    /// q * e < 2^32` for sizes up to 512 and offsets below 2^16).
    #[inline(always)]
    pub(crate) fn locate_block(&self, addr: usize) -> (usize, bool) {
        let product = addr.wrapping_sub(self.base) as u64 * self.magic as u64;
        ((product >> 32) as usize, (product as u32) < self.magic)
    }

    /// Blocks of this pool's class that fit in a pool of `pool_size` bytes.
    pub(crate) fn capacity(&self, pool_size: usize) -> usize {
        pool_size / block_size(self.class as usize)
    }

    /// Asserts the invariants listed in the module documentation.
    pub(crate) fn check_invariants(&self, pool_size: usize) {
        let popcount: u32 = self.bitmap.iter().map(|w| w.count_ones()).sum();
        assert_eq!(popcount, self.count, "pool {:#x}: count != bitmap", self.base);
        match self.state {
            PoolState::Untouched | PoolState::Empty | PoolState::Released => {
                assert_eq!(self.count, 0, "pool {:#x} in {:?} holds blocks", self.base, self.state);
                if self.state != PoolState::Empty {
                    return;
                }
            }
            PoolState::Used => assert!(!self.freeblock.is_null(), "used pool without a free block"),
            PoolState::Full => {
                assert!(self.freeblock.is_null(), "full pool with a free list");
                assert_eq!(self.count as usize, self.capacity(pool_size));
            }
        }
        // Walk the free list (Used, Full, Empty).
        let size = block_size(self.class as usize);
        let mut seen = [0u64; BITMAP_WORDS];
        let mut free = 0usize;
        let mut block = self.freeblock as usize;
        while block != 0 {
            assert!(block >= self.base && block < self.base + pool_size, "free block outside pool");
            let offset = block - self.base;
            assert_eq!(offset % size, 0, "free block off a boundary");
            assert!(offset < self.nextoffset as usize, "free block beyond carved area");
            let index = offset / size;
            assert!(!self.is_allocated(index), "free block marked allocated");
            assert_eq!(seen[index >> 6] & (1 << (index & 63)), 0, "free list cycle");
            seen[index >> 6] |= 1 << (index & 63);
            free += 1;
            // SAFETY: `block` was checked to be a carved block of this pool,
            // whose first word holds the next free-list link.
            block = unsafe { *(block as *const usize) };
        }
        let capacity = self.capacity(pool_size);
        let carved = (self.nextoffset as usize / size).min(capacity);
        assert_eq!(
            self.count as usize + free + (capacity - carved),
            capacity,
            "pool {:#x}: allocated + free + uncarved != capacity",
            self.base
        );
    }
}
