//! Size classes: CPython's table of 32 classes, 16 bytes apart, up to 512.
//!
//! A request of `n` bytes (1..=512) is served from class `(n - 1) >> 4`,
//! whose blocks are `(class + 1) * 16` bytes. Requests of 0 bytes are served
//! as 1 byte, so they get a unique (validated) pointer.
//!
//! The free path must turn "offset of a pointer inside its pool" into "block
//! index" for every free, so each class carries a reciprocal: for offsets below
//! 2^16 and sizes up to 512, `(off * ceil(2^32 / size)) >> 32 == off / size`
//! exactly (the error term `off * (magic * size - 2^32)` stays below 2^32),
//! which turns a 20-40 cycle division into one multiply.

/// Alignment of every small block (CPython's ALIGNMENT on 64-bit).
pub const ALIGNMENT: usize = 16;
/// Largest request served from pools; larger ones go to the system allocator.
pub const SMALL_REQUEST_THRESHOLD: usize = 512;
/// Number of size classes.
pub const NUM_CLASSES: usize = SMALL_REQUEST_THRESHOLD / ALIGNMENT;

/// The class serving a request of `n` bytes, `1 <= n <= 512`.
#[inline(always)]
pub const fn class_of(n: usize) -> usize {
    (n - 1) >> 4
}

/// Block size of class `class`.
#[inline(always)]
pub const fn block_size(class: usize) -> usize {
    (class + 1) << 4
}

/// `ceil(2^32 / block_size(class))` for every class.
pub(crate) const DIV_MAGIC: [u64; NUM_CLASSES] = {
    let mut table = [0u64; NUM_CLASSES];
    let mut class = 0;
    while class < NUM_CLASSES {
        let size = block_size(class) as u64;
        table[class] = (1u64 << 32).div_ceil(size);
        class += 1;
    }
    table
};

/// `offset / block_size(class)` for offsets below 2^16, by multiplication
/// (pools keep their class's magic in their header and do the same).
#[cfg(test)]
fn block_index(offset: usize, class: usize) -> usize {
    ((offset as u64 * DIV_MAGIC[class]) >> 32) as usize
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reciprocal_division_is_exact_for_every_pool_offset() {
        for class in 0..NUM_CLASSES {
            for offset in 0..(1usize << 16) {
                assert_eq!(block_index(offset, class), offset / block_size(class));
            }
        }
    }

    #[test]
    fn classes_match_cpython() {
        assert_eq!(class_of(1), 0);
        assert_eq!(class_of(16), 0);
        assert_eq!(class_of(17), 1);
        assert_eq!(class_of(512), 31);
        assert_eq!(block_size(31), 512);
        assert_eq!(NUM_CLASSES, 32);
    }
}
