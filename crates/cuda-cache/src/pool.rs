//! Blocks and the pools of free blocks.
//!
//! A block is a piece of a segment: `[addr, addr + size)`. The blocks of a
//! segment form a doubly linked list by address (`prev`/`next` ids); a
//! segment is "split" when it has more than one block. Blocks live in a
//! [`Blocks`] slab keyed by [`BlockId`].
//!
//! A [`BlockPool`] is PyTorch's `BlockPool::blocks`: the free blocks of one
//! pool kind ordered by (stream, size, address), so that best fit is one
//! lower-bound lookup. Its index is private: a block enters with
//! [`BlockPool::insert`] and leaves with [`BlockPool::remove`], both given
//! the block itself, so the key always matches the block's fields (the
//! rule PyTorch keeps only in a comment).
//!
//! Invariants (asserted by the device's `check_invariants`):
//! - a block is in its pool iff it is not allocated and has no pending
//!   event and no stream uses;
//! - the blocks of a segment tile it: `b.addr + b.size == next.addr`;
//! - no two neighbours in a segment are both in the pool (they merge).

use std::collections::BTreeMap;

use crate::backend::Stream;
use crate::policy::PoolKind;

/// Index of a block in [`Blocks`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct BlockId(u32);

/// A piece of a segment.
#[derive(Clone, Debug)]
pub(crate) struct Block {
    pub addr: u64,
    pub size: u64,
    /// What the caller asked for when it was last allocated (0 for a fresh
    /// remainder).
    pub requested: u64,
    /// The stream it was allocated on (a segment's blocks share it).
    pub stream: Stream,
    pub pool: PoolKind,
    pub allocated: bool,
    pub prev: Option<BlockId>,
    pub next: Option<BlockId>,
    /// Events recorded at free() not yet completed.
    pub event_count: u32,
    /// Streams other than `stream` that used it (record_stream).
    pub stream_uses: Vec<Stream>,
    /// The pool's get-free-block count when it entered the pool (its age is
    /// measured in lookups since then, for garbage collection).
    pub gc_count_base: u64,
}

impl Block {
    /// Part of a segment with other blocks.
    pub fn is_split(&self) -> bool {
        self.prev.is_some() || self.next.is_some()
    }

    /// Not reusable yet: allocated, or freed with events pending.
    pub fn is_active(&self) -> bool {
        self.allocated || self.event_count > 0 || !self.stream_uses.is_empty()
    }
}

/// The slab of blocks.
#[derive(Default)]
pub(crate) struct Blocks {
    slots: Vec<Option<Block>>,
    vacant: Vec<u32>,
}

impl Blocks {
    pub fn add(&mut self, block: Block) -> BlockId {
        match self.vacant.pop() {
            Some(i) => {
                self.slots[i as usize] = Some(block);
                BlockId(i)
            }
            None => {
                self.slots.push(Some(block));
                BlockId((self.slots.len() - 1) as u32)
            }
        }
    }

    pub fn remove(&mut self, id: BlockId) -> Block {
        let block = self.slots[id.0 as usize].take().expect("removing a vacant block id");
        self.vacant.push(id.0);
        block
    }

    #[inline]
    pub fn get(&self, id: BlockId) -> &Block {
        self.slots[id.0 as usize].as_ref().expect("a vacant block id")
    }

    #[inline]
    pub fn get_mut(&mut self, id: BlockId) -> &mut Block {
        self.slots[id.0 as usize].as_mut().expect("a vacant block id")
    }

    pub fn len(&self) -> usize {
        self.slots.len() - self.vacant.len()
    }
}

/// (stream, size, address): PyTorch's BlockComparatorSize.
type Key = (Stream, u64, u64);

fn key(b: &Block) -> Key {
    (b.stream, b.size, b.addr)
}

/// The free blocks of one pool kind.
#[derive(Default)]
pub(crate) struct BlockPool {
    by_size: BTreeMap<Key, BlockId>,
    /// get_free_blocks_call_count: lookups so far (ages for GC).
    pub lookups: u64,
}

impl BlockPool {
    pub fn insert(&mut self, id: BlockId, block: &mut Block) {
        block.gc_count_base = self.lookups;
        let old = self.by_size.insert(key(block), id);
        debug_assert!(old.is_none(), "block {:#x} inserted twice", block.addr);
    }

    pub fn remove(&mut self, block: &Block) {
        let removed = self.by_size.remove(&key(block));
        debug_assert!(removed.is_some(), "block {:#x} not in its pool", block.addr);
    }

    pub fn contains(&self, block: &Block) -> bool {
        self.by_size.contains_key(&key(block))
    }

    /// Best fit: the smallest free block of `stream` of at least `size`
    /// bytes, lowest address on ties.
    #[inline]
    pub fn best_fit(&self, stream: Stream, size: u64) -> Option<BlockId> {
        let (&(s, _, _), &id) = self.by_size.range((stream, size, 0)..).next()?;
        (s == stream).then_some(id)
    }

    /// Free blocks of `stream` below `(stream, size)`, largest first.
    pub fn below(&self, stream: Stream, size: u64) -> impl Iterator<Item = (u64, BlockId)> + '_ {
        self.by_size.range((stream, 0, 0)..(stream, size, 0)).rev().map(|(&(_, size, _), &id)| (size, id))
    }

    /// Every free block, in (stream, size, address) order.
    pub fn ids(&self) -> Vec<BlockId> {
        self.by_size.values().copied().collect()
    }

    pub fn len(&self) -> usize {
        self.by_size.len()
    }
}
