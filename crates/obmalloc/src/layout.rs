//! The arena map as data: every arena, every pool's state and fill, for
//! reports that draw it (`pymem_report_html`). A read-only walk, O(arenas),
//! like the statistics in `stats.rs`.

use crate::allocator::Allocator;
use crate::pool::PoolState;
use crate::size_class::block_size;

/// What a pool is doing, as a report shows it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PoolFill {
    /// Never carved: its pages were never touched.
    Untouched,
    /// Holds live blocks and has room for more.
    Used,
    /// Every block is allocated.
    Full,
    /// No live block; its pages are still resident (kept for reuse).
    Empty,
    /// No live block, and its pages were given back (MADV_DONTNEED).
    Released,
}

/// One pool of an arena.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PoolView {
    pub fill: PoolFill,
    /// Size class and block size (meaningful for `Used` and `Full`).
    pub class: usize,
    pub block_size: usize,
    pub blocks_in_use: u32,
    /// Blocks of this class that fit in the pool.
    pub capacity: u32,
}

/// One arena: its address and its pools in address order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ArenaView {
    pub base: usize,
    pub pools: Vec<PoolView>,
}

impl Allocator {
    /// Every arena (in the allocator's arena order) with each of its pools.
    pub fn arena_views(&self) -> Vec<ArenaView> {
        let mut out = Vec::new();
        self.for_each_arena(|a| {
            let pools = a
                .pools
                .iter()
                .map(|p| {
                    let fill = match p.state {
                        PoolState::Untouched => PoolFill::Untouched,
                        // The only pool of its class stays on its ring when
                        // its last block is freed (`pool_became_empty`):
                        // shown as what it is, empty and resident.
                        PoolState::Used if p.count == 0 => PoolFill::Empty,
                        PoolState::Used => PoolFill::Used,
                        PoolState::Full => PoolFill::Full,
                        PoolState::Empty => PoolFill::Empty,
                        PoolState::Released => PoolFill::Released,
                    };
                    PoolView {
                        fill,
                        class: p.class as usize,
                        block_size: block_size(p.class as usize),
                        blocks_in_use: p.count,
                        capacity: p.capacity(self.pool_size) as u32,
                    }
                })
                .collect();
            out.push(ArenaView { base: a.base, pools });
        });
        out
    }

    /// Bytes per pool (16 KiB, or 4 KiB with CPython 3.8's geometry).
    pub fn pool_bytes(&self) -> usize {
        self.pool_size
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Config;

    #[test]
    fn a_fresh_block_shows_as_one_used_pool_of_its_class() {
        let mut a = Allocator::new(Config::default());
        assert!(a.arena_views().is_empty());
        let p = a.malloc(100).unwrap();
        let views = a.arena_views();
        assert_eq!(views.len(), 1);
        let used: Vec<&PoolView> = views[0].pools.iter().filter(|p| p.fill == PoolFill::Used).collect();
        assert_eq!(used.len(), 1);
        assert_eq!((used[0].block_size, used[0].blocks_in_use), (112, 1));
        assert_eq!(used[0].capacity as usize, a.pool_bytes() / 112);
        a.free(p.as_ptr()).unwrap();
        let views = a.arena_views();
        let used_after: Vec<_> = views.iter().flat_map(|v| &v.pools).filter(|p| p.fill == PoolFill::Used).collect();
        assert!(used_after.is_empty(), "{used_after:?}");
        a.release_free_arenas();
        assert!(a.arena_views().iter().flat_map(|v| &v.pools).all(|p| p.fill != PoolFill::Empty));
    }
}
