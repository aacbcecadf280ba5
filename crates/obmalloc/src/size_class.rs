//! Size classes: CPython's table of 32 classes, 16 bytes apart, up to 512,
//! and one more, of 24-byte blocks, for object and internal blocks.
//!
//! A request of `n` bytes (1..=512) is served from class `(n - 1) >> 4`,
//! whose blocks are `(class + 1) * 16` bytes. Requests of 0 bytes are served
//! as 1 byte, so they get a unique (validated) pointer.
//!
//! Raw blocks (`pymem_malloc`) keep CPython's 16-byte alignment, which C's
//! `malloc` contract asks for. Object and internal blocks are the layers
//! above's own, which need 8: a request of 17 to 24 bytes of those kinds
//! is served from class [`CLASS_24`], of 24-byte blocks, instead of 32 —
//! an int and a float (24 bytes) take 25 % less memory, and a program's
//! commonest objects are those (a list of 10^7 ints: 240 MB, not 320).
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
/// Number of size classes: CPython's 32, then [`CLASS_24`].
pub const NUM_CLASSES: usize = SMALL_REQUEST_THRESHOLD / ALIGNMENT + 1;
/// The class of 24-byte blocks (8-byte aligned), for object and internal
/// blocks of 17 to 24 bytes.
pub const CLASS_24: usize = SMALL_REQUEST_THRESHOLD / ALIGNMENT;

/// The class serving a raw request of `n` bytes, `1 <= n <= 512`
/// (CPython's).
#[inline(always)]
pub const fn class_of(n: usize) -> usize {
    (n - 1) >> 4
}

/// The class serving a request of `n` bytes, `1 <= n <= 512`, of `kind`:
/// [`CLASS_24`] for 17 to 24 bytes of anything but raw memory, else
/// [`class_of`]. (Constant where the size and kind are: an int's or a
/// float's allocation chooses nothing at run time.)
#[inline(always)]
pub const fn class_of_kind(n: usize, kind: crate::BlockKind) -> usize {
    if n.wrapping_sub(17) < 8 && !matches!(kind, crate::BlockKind::Raw) {
        CLASS_24
    } else {
        class_of(n)
    }
}

/// Block size of class `class`.
#[inline(always)]
pub const fn block_size(class: usize) -> usize {
    if class == CLASS_24 {
        24
    } else {
        (class + 1) << 4
    }
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
        assert_eq!(NUM_CLASSES, 33);
    }

    #[test]
    fn objects_and_internal_blocks_of_17_to_24_bytes_take_24() {
        use crate::BlockKind::{Internal, Object, Raw};
        for n in 1..=512 {
            for kind in [Raw, Object, Internal] {
                let class = class_of_kind(n, kind);
                let size = block_size(class);
                assert!(size >= n, "{n} bytes of {kind:?} fit");
                let expect = if kind != Raw && (17..=24).contains(&n) { 24 } else { n.div_ceil(16) * 16 };
                assert_eq!(size, expect, "{n} bytes of {kind:?}");
            }
        }
        assert_eq!(class_of_kind(24, Raw), 1, "raw memory keeps 16-byte alignment");
    }
}
