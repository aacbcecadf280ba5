//! PyTorch's allocation policy as pure functions: no state, no locks, no
//! device. Every number here is PyTorch's (c10/cuda/CUDACachingAllocator.cpp)
//! and each function is unit-tested against the values PyTorch gives.
//!
//! The bookkeeping in `device.rs` asks these functions what to do; it never
//! decides a size, a pool or a split itself.

/// Smallest block: every size is rounded up to a multiple of it (kMinBlockSize).
pub const MIN_BLOCK_SIZE: u64 = 512;
/// Largest rounded request served by the small pool (kSmallSize).
pub const SMALL_SIZE: u64 = 1 << 20;
/// Segment size for small requests (kSmallBuffer).
pub const SMALL_BUFFER: u64 = 2 << 20;
/// Requests below this get a 20 MiB segment (kMinLargeAlloc).
pub const MIN_LARGE_ALLOC: u64 = 10 << 20;
/// Segment size for mid-sized requests; also the oversize slack (kLargeBuffer).
pub const LARGE_BUFFER: u64 = 20 << 20;
/// Larger segments are rounded up to a multiple of this (kRoundLarge).
pub const ROUND_LARGE: u64 = 2 << 20;
/// The power-of-two intervals of roundup_power2_divisions: 1 MiB .. 64 GiB
/// (kRoundUpPowerOfTwoIntervals).
pub const ROUNDUP_INTERVALS: usize = 16;
/// max_split_size when none is configured: no limit (SIZE_MAX in PyTorch).
pub const UNLIMITED_SPLIT: u64 = u64::MAX;

/// Which of the two pools a block belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum PoolKind {
    /// Rounded sizes up to 1 MiB, carved from 2 MiB segments.
    Small,
    /// Everything larger.
    Large,
}

impl PoolKind {
    /// The name PyTorch's stats and snapshots use.
    pub fn name(self) -> &'static str {
        match self {
            PoolKind::Small => "small",
            PoolKind::Large => "large",
        }
    }
}

/// `roundup_power2_divisions(size)`: the divisions configured for the
/// power-of-two interval that holds `size` (index log2(size) - 20, clamped
/// to 0..15).
pub fn divisions_for(size: u64, divisions: &[u32; ROUNDUP_INTERVALS]) -> u32 {
    let log_size = 63 - size.max(1).leading_zeros() as i64;
    let index = (log_size - 20).clamp(0, ROUNDUP_INTERVALS as i64 - 1);
    divisions[index as usize]
}

/// `roundup_power2_next_division`: `size` rounded up to the next of
/// `divisions` equal steps between the powers of two around it; a power of
/// two stays as it is.
pub fn roundup_power2_next_division(size: u64, divisions: u32) -> u64 {
    if size.is_power_of_two() {
        return size;
    }
    let floor = 1u64 << (63 - size.leading_zeros());
    let step = floor >> (31 - divisions.max(1).leading_zeros());
    if step == 0 {
        return floor.saturating_mul(2);
    }
    let rounded_down = size & !(step - 1);
    if rounded_down == size {
        size
    } else {
        rounded_down.saturating_add(step)
    }
}

/// `round_size`: the size a request is served with. Below 512 bytes: 512.
/// With d > 1 divisions for its interval and a size above 512·d: the next
/// division. Otherwise the next multiple of 512.
pub fn round_size(size: u64, divisions: &[u32; ROUNDUP_INTERVALS]) -> u64 {
    if size < MIN_BLOCK_SIZE {
        return MIN_BLOCK_SIZE;
    }
    let d = divisions_for(size, divisions);
    if d > 1 && size > MIN_BLOCK_SIZE * u64::from(d) {
        roundup_power2_next_division(size, d)
    } else {
        size.div_ceil(MIN_BLOCK_SIZE).saturating_mul(MIN_BLOCK_SIZE)
    }
}

/// The pool of a rounded size: up to 1 MiB small, else large.
pub fn pool_for(rounded: u64) -> PoolKind {
    if rounded <= SMALL_SIZE {
        PoolKind::Small
    } else {
        PoolKind::Large
    }
}

/// `get_allocation_size`: the size of a new segment for a rounded request:
/// 2 MiB up to 1 MiB, 20 MiB below 10 MiB, else a multiple of 2 MiB.
pub fn segment_size(rounded: u64) -> u64 {
    if rounded <= SMALL_SIZE {
        SMALL_BUFFER
    } else if rounded < MIN_LARGE_ALLOC {
        LARGE_BUFFER
    } else {
        rounded.div_ceil(ROUND_LARGE).saturating_mul(ROUND_LARGE)
    }
}

/// The oversize guards of `get_free_block`: may a free block of
/// `block_size` serve a request of `rounded` bytes? A request below
/// max_split_size never takes an oversize block; an oversize request takes a
/// block only if it wastes less than 20 MiB.
pub fn may_take(rounded: u64, block_size: u64, max_split_size: u64) -> bool {
    if rounded < max_split_size && block_size >= max_split_size {
        return false;
    }
    if rounded >= max_split_size && block_size >= rounded.saturating_add(LARGE_BUFFER) {
        return false;
    }
    true
}

/// `should_split`: is the rest of a block after serving `rounded` bytes
/// worth keeping as a free block? Small pool: 512 bytes or more left. Large
/// pool: the request is below max_split_size and more than 1 MiB is left.
pub fn should_split(pool: PoolKind, block_size: u64, rounded: u64, max_split_size: u64) -> bool {
    let remaining = block_size - rounded;
    match pool {
        PoolKind::Small => remaining >= MIN_BLOCK_SIZE,
        PoolKind::Large => rounded < max_split_size && remaining > SMALL_SIZE,
    }
}

/// Blocks and segments of at least max_split_size count as oversize.
pub fn is_oversize(size: u64, max_split_size: u64) -> bool {
    size >= max_split_size
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: u64 = 1 << 20;
    const OFF: [u32; ROUNDUP_INTERVALS] = [0; ROUNDUP_INTERVALS];

    #[test]
    fn round_size_rounds_to_512_and_never_below_it() {
        assert_eq!(round_size(1, &OFF), 512);
        assert_eq!(round_size(511, &OFF), 512);
        assert_eq!(round_size(512, &OFF), 512);
        assert_eq!(round_size(513, &OFF), 1024);
        assert_eq!(round_size(1024, &OFF), 1024);
        assert_eq!(round_size(1200, &OFF), 1536);
        assert_eq!(round_size(5 * MIB + 1, &OFF), 5 * MIB + 512);
    }

    #[test]
    fn roundup_power2_divisions_1200_with_4_divisions_is_1280() {
        // PyTorch's own example: 1200 between 1024 and 2048, steps of 256.
        assert_eq!(roundup_power2_next_division(1200, 4), 1280);
        assert_eq!(roundup_power2_next_division(1024, 4), 1024);
        assert_eq!(roundup_power2_next_division(1280, 4), 1280);
        // round_size uses the divisions only above 512 x d bytes (PyTorch's
        // code, stricter than its docs' example): 1200 with d = 4 is below
        // 2048, so it is a plain multiple of 512; 4500 is above and goes to
        // the next quarter between 4096 and 8192.
        let mut four = OFF;
        four[0] = 4;
        assert_eq!(round_size(1200, &four), 1536);
        assert_eq!(round_size(4500, &four), 5120);
        assert_eq!(round_size(4500, &OFF), 4608);
        // A 1.1 GiB request in 8 divisions: steps of 128 MiB above 1 GiB.
        let mut eight = OFF;
        eight[10] = 8;
        assert_eq!(round_size(1100 * MIB, &eight), 1152 * MIB);
    }

    #[test]
    fn divisions_are_chosen_per_power_of_two_interval_from_1_mib() {
        let mut d = OFF;
        for (i, v) in d.iter_mut().enumerate() {
            *v = i as u32;
        }
        assert_eq!(divisions_for(1000, &d), 0);
        assert_eq!(divisions_for(MIB, &d), 0);
        assert_eq!(divisions_for(2 * MIB, &d), 1);
        assert_eq!(divisions_for(256 * MIB, &d), 8);
        assert_eq!(divisions_for(1 << 40, &d), 15);
    }

    #[test]
    fn one_mib_and_below_is_the_small_pool() {
        assert_eq!(pool_for(512), PoolKind::Small);
        assert_eq!(pool_for(MIB), PoolKind::Small);
        assert_eq!(pool_for(MIB + 512), PoolKind::Large);
    }

    #[test]
    fn segment_sizes_are_2_mib_20_mib_or_rounded_to_2_mib() {
        assert_eq!(segment_size(round_size(1024, &OFF)), 2 * MIB); // 1 KiB -> 2 MiB
        assert_eq!(segment_size(MIB), 2 * MIB);
        assert_eq!(segment_size(MIB + 512), 20 * MIB);
        assert_eq!(segment_size(5 * MIB), 20 * MIB); // 5 MiB -> 20 MiB
        assert_eq!(segment_size(10 * MIB - 512), 20 * MIB);
        assert_eq!(segment_size(10 * MIB), 10 * MIB);
        assert_eq!(segment_size(15 * MIB), 16 * MIB); // 15 MiB -> 16 MiB
        assert_eq!(segment_size(21 * MIB + 1), 22 * MIB);
    }

    #[test]
    fn oversize_guards_keep_small_requests_off_big_blocks() {
        let max_split = 64 * MIB;
        assert!(may_take(30 * MIB, 40 * MIB, max_split));
        assert!(!may_take(30 * MIB, 64 * MIB, max_split));
        assert!(may_take(100 * MIB, 119 * MIB, max_split));
        assert!(!may_take(100 * MIB, 120 * MIB, max_split));
        // Unlimited: anything fits.
        assert!(may_take(512, 1 << 40, UNLIMITED_SPLIT));
    }

    #[test]
    fn split_rules_small_512_left_large_more_than_1_mib_below_max_split() {
        assert!(should_split(PoolKind::Small, 2 * MIB, 2 * MIB - 512, UNLIMITED_SPLIT));
        assert!(!should_split(PoolKind::Small, 2 * MIB, 2 * MIB, UNLIMITED_SPLIT));
        assert!(should_split(PoolKind::Large, 20 * MIB, 5 * MIB, UNLIMITED_SPLIT));
        assert!(!should_split(PoolKind::Large, 20 * MIB, 19 * MIB, UNLIMITED_SPLIT)); // exactly 1 MiB left
        assert!(should_split(PoolKind::Large, 20 * MIB, 19 * MIB - 512, UNLIMITED_SPLIT));
        assert!(!should_split(PoolKind::Large, 200 * MIB, 100 * MIB, 64 * MIB));
        // oversize never splits
    }
}
