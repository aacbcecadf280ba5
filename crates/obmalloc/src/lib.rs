//! # obmalloc — CPython's small-object allocator, with every free validated
//!
//! ```text
//!     Object-specific allocators (free lists: refcount-object)      layer 3
//!     ───────────────────────────────────────────────────────────
//!     Allocator::malloc/free: size classes → pools → arenas         layer 2
//!     ───────────────────────────────────────────────────────────
//!     mmap/munmap/madvise (arenas, big blocks), libc malloc         layer 1
//! ```
//! Requests of 1..=512 bytes are served from 32 size classes 16 bytes apart,
//! plus one of 24-byte blocks for object and internal blocks of 17 to 24
//! bytes ([`size_class`]); each class carves blocks out of pools (16 KiB) that are
//! carved out of arenas (1 MiB, 64 pools) mapped from the OS — the geometry
//! of CPython 3.10+ on 64-bit, or CPython 3.8's 4 KiB / 256 KiB
//! ([`Geometry`]). Larger requests go to the system allocator (or their own
//! mapping) and are tracked in a table so they can be validated and counted.
//!
//! What is not CPython:
//! - **Every free and realloc is validated in O(1)** ([`Allocator::free`]):
//!   an arena map (radix tree) says whether the address is in one of our
//!   arenas, the out-of-line pool header says whether it is on a block
//!   boundary, and a per-pool bitmap says whether the block is allocated. A
//!   foreign, interior or already freed pointer is an error and changes
//!   nothing; CPython corrupts its heap there.
//! - **Memory goes back to the OS at pool granularity** as well as per arena:
//!   an arena holding [`RELEASE_THRESHOLD`] empty pools gives their pages back
//!   (`MADV_DONTNEED`), so a few survivors no longer pin whole arenas.
//! - **Bounded retention**: what stays resident after frees is one spare
//!   arena plus a cache of at most 1/16 of the bytes in use (4 MiB at most),
//!   enforced when a free empties a pool, not only on later pool events
//!   (the `arena` module's "Bounded retention").
//! - Pool headers live outside the pools, so user data cannot overwrite them.
//! - A `max_bytes` limit and `PYTHONMALLOC=debug`-style hooks
//!   ([`debug_hooks`]) that report an overrun as an error, not a crash.
//!
//! Start reading at [`Allocator::malloc`] and [`Allocator::free`].

#![deny(unsafe_op_in_unsafe_fn)]

mod allocator;
mod arena;
mod arena_map;
pub mod debug_hooks;
mod layout;
mod os;
mod pool;
pub mod size_class;
mod stats;

use std::fmt;

pub use allocator::{Allocator, LiveBlock, LARGE_MMAP_THRESHOLD};
pub use arena::RELEASE_THRESHOLD;
pub use layout::{ArenaView, PoolFill, PoolView};
pub use os::trim_system_heap;
pub use stats::{write_stat_line, ClassStats, Stats};

/// What a block holds. Raw blocks are the host's memory (`pymem_malloc`);
/// object blocks hold objects of the layers above, internal blocks their
/// private arrays (a list's items, a dict's table). They come from separate
/// pools, so that every block says in O(1) what it is: an object pointer can
/// be validated exactly, and a block of one kind given where another is
/// expected (`free` of an object, an item array passed as an object) is
/// refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
#[repr(u8)]
pub enum BlockKind {
    #[default]
    Raw = 0,
    Object = 1,
    Internal = 2,
}

/// Pool and arena sizes, as a CPython version has them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Geometry {
    /// CPython 3.10+ on 64-bit: 16 KiB pools, 1 MiB arenas.
    #[default]
    Cpython310,
    /// CPython 3.8-3.9: 4 KiB pools, 256 KiB arenas.
    Cpython38,
}

impl Geometry {
    pub const fn pool_size(self) -> usize {
        match self {
            Geometry::Cpython310 => 16 * 1024,
            Geometry::Cpython38 => 4 * 1024,
        }
    }

    pub const fn arena_size(self) -> usize {
        self.pool_size() * 64
    }
}

/// Allocator settings.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Config {
    pub geometry: Geometry,
    /// Most bytes the allocator may hold from the OS (arenas + large blocks);
    /// an allocation that would pass it fails with [`AllocError::NoMemory`].
    /// 0 means no limit.
    pub max_bytes: usize,
    /// Guard bytes and fills, like `PYTHONMALLOC=debug` (24 bytes per block).
    pub debug_hooks: bool,
    /// How long, in pool events (a pool taken or emptied), an empty pool
    /// stays resident before its pages are given back, once its arena holds
    /// [`RELEASE_THRESHOLD`] empty pools. 0 releases them at once.
    pub pool_release_delay: u64,
    /// Most bytes of resident empty pools kept as a cache beyond the one
    /// spare arena (see "Bounded retention" in the `arena` module): the
    /// cache is bounded by 1/16 of the bytes in use, at least
    /// [`RETAIN_CACHE_FLOOR`] bytes, and never more than this. 0 keeps
    /// no cache: every empty pool outside the spare arena goes back at once.
    pub retain_cache_max: usize,
    /// Transparent huge pages (Linux): once the allocator holds this many
    /// bytes, the arenas and large blocks it maps next are marked
    /// `MADV_HUGEPAGE`, so the kernel backs them with 2 MiB pages — a big
    /// heap then walks with far fewer TLB misses and goes back to the OS in
    /// a fraction of the kernel time (a 2 MiB page is freed as one, not as
    /// 512). Below it, pages stay 4 KiB, so a small heap never holds a
    /// 2 MiB page for a few blocks. An arena whose empty pools are released
    /// is marked `MADV_NOHUGEPAGE` first, so the kernel's background
    /// collapsing never fills the released pages in again. 0: never.
    pub huge_page_threshold: usize,
}

/// Default of [`Config::huge_page_threshold`]: 2 MiB (a heap past its
/// first chunk of two arenas).
pub const DEFAULT_HUGE_PAGE_THRESHOLD: usize = 2 << 20;

/// Default of [`Config::retain_cache_max`]: 4 MiB.
pub const DEFAULT_RETAIN_CACHE_MAX: usize = 4 << 20;

/// The cache of resident empty pools may hold 1/this of the bytes in use.
pub const RETAIN_CACHE_DIVISOR: usize = 16;

/// The cache may always hold this many bytes (16 pools of 16 KiB, 64 of
/// 4 KiB), even when 1/16 of the bytes in use is less: below it a loop that
/// empties and refills a few hundred KiB of pools of a small heap (the lifo
/// bench: 1,000 blocks of 8..512 bytes) would give their pages back and
/// fault them in again on every turn. Bytes, not pools, so that the small
/// pools of the CPython 3.8 geometry get the same room. Capped by
/// [`Config::retain_cache_max`].
pub const RETAIN_CACHE_FLOOR: usize = 256 << 10;

/// Default of [`Config::pool_release_delay`]: long enough that a burst
/// emptying and refilling a few hundred pools never gives pages back only
/// to fault them in again, short enough that memory freed for good goes
/// back while the program runs on.
pub const DEFAULT_POOL_RELEASE_DELAY: u64 = 256;

impl Default for Config {
    fn default() -> Config {
        Config {
            geometry: Geometry::default(),
            max_bytes: 0,
            debug_hooks: false,
            pool_release_delay: DEFAULT_POOL_RELEASE_DELAY,
            retain_cache_max: DEFAULT_RETAIN_CACHE_MAX,
            huge_page_threshold: DEFAULT_HUGE_PAGE_THRESHOLD,
        }
    }
}

/// Why a pointer is not a live block of this allocator.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InvalidReason {
    /// Not inside any arena or large block of this allocator.
    NotOurs,
    /// Inside a block, `offset` bytes after its start `block`.
    Interior { block: usize, offset: usize },
    /// Inside an arena, but where no block was ever handed out.
    NeverAllocated,
    /// A live block, but of the other kind (an object given to `free`, or
    /// raw memory given where an object is expected).
    WrongKind { actual: BlockKind },
}

/// Errors of the allocator. Each leaves the allocator unchanged.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AllocError {
    /// The OS, the system allocator or `max_bytes` refused.
    NoMemory { requested: usize, reason: &'static str },
    /// The pointer is not a live block of this allocator.
    InvalidPointer { addr: usize, reason: InvalidReason },
    /// The pointer is a block of this allocator that is not allocated now.
    DoubleFree { addr: usize },
    /// Debug hooks found damaged guard bytes around the block.
    HeapCorruption { addr: usize, detail: String },
}

impl AllocError {
    /// The same error, reported for the address the user holds (debug mode
    /// validates the raw block 16 bytes before it).
    pub(crate) fn with_addr(self, user: usize) -> AllocError {
        match self {
            AllocError::InvalidPointer { reason, .. } => AllocError::InvalidPointer { addr: user, reason },
            AllocError::DoubleFree { .. } => AllocError::DoubleFree { addr: user },
            AllocError::HeapCorruption { detail, .. } => AllocError::HeapCorruption { addr: user, detail },
            other => other,
        }
    }
}

impl fmt::Display for AllocError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AllocError::NoMemory { requested, reason } => {
                write!(f, "out of memory: cannot allocate {requested} bytes ({reason})")
            }
            AllocError::InvalidPointer { addr, reason } => match reason {
                InvalidReason::NotOurs => {
                    write!(f, "invalid pointer {addr:#x}: not a block of this allocator")
                }
                InvalidReason::Interior { block, offset } => write!(
                    f,
                    "invalid pointer {addr:#x}: interior pointer, {offset} bytes into the block at {block:#x}"
                ),
                InvalidReason::NeverAllocated => {
                    write!(f, "invalid pointer {addr:#x}: inside an arena where no block was handed out")
                }
                InvalidReason::WrongKind { actual: BlockKind::Object } => {
                    write!(f, "invalid pointer {addr:#x}: an object, not a block from pymem_malloc")
                }
                InvalidReason::WrongKind { actual: BlockKind::Raw } => {
                    write!(f, "invalid pointer {addr:#x}: a block from pymem_malloc, not an object")
                }
                InvalidReason::WrongKind { actual: BlockKind::Internal } => {
                    write!(f, "invalid pointer {addr:#x}: memory private to pymem, not a block of yours")
                }
            },
            AllocError::DoubleFree { addr } => {
                write!(f, "double free: block {addr:#x} is not allocated (already freed)")
            }
            AllocError::HeapCorruption { addr, detail } => {
                write!(f, "heap corruption detected at block {addr:#x}: {detail}")
            }
        }
    }
}

impl std::error::Error for AllocError {}
