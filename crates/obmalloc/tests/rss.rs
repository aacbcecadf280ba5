//! Resident memory goes back to the OS: whole arenas once they are empty,
//! and single pools while their arena still holds blocks.
//!
//! This binary holds one test, so nothing else runs in the process while it
//! measures its resident set size (tests of one binary share the process and
//! run on parallel threads).

use obmalloc::{Allocator, Config, Geometry};

const BLOCKS: usize = 1_000_000;
const BLOCK_SIZE: usize = 32;

fn page_size() -> usize {
    // SAFETY: sysconf only reads a constant of the process.
    let size = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    usize::try_from(size).expect("page size")
}

/// Resident set size in bytes: field 2 of /proc/self/statm, in pages.
fn rss() -> usize {
    let statm = std::fs::read_to_string("/proc/self/statm").expect("read /proc/self/statm");
    let pages: usize = statm.split_whitespace().nth(1).and_then(|f| f.parse().ok()).expect("statm field 2");
    pages * page_size()
}

fn mib(bytes: usize) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

/// Allocates `ptrs.len()` blocks of 32 bytes into `ptrs`, touching each one.
fn allocate_all(alloc: &mut Allocator, ptrs: &mut [usize]) {
    for (i, slot) in ptrs.iter_mut().enumerate() {
        let p = alloc.malloc(BLOCK_SIZE).expect("malloc");
        // SAFETY: `p` is a fresh block of 32 bytes.
        unsafe { std::ptr::write_bytes(p.as_ptr(), (i % 251) as u8 + 1, BLOCK_SIZE) };
        *slot = p.as_ptr() as usize;
    }
}

#[test]
fn freed_memory_goes_back_to_the_os() {
    let pool_shift = Geometry::Cpython310.pool_size().trailing_zeros();
    let mut alloc = Allocator::new(Config::default());
    // Touch the pointer table before any baseline so it is not counted as growth.
    let mut ptrs = vec![usize::MAX; BLOCKS];

    // (a) Everything freed: whole arenas go back.
    let base = rss();
    allocate_all(&mut alloc, &mut ptrs);
    let peak = rss();
    let growth = peak.saturating_sub(base);
    let arenas = alloc.stats().arenas_current;
    for &p in &ptrs {
        alloc.free(p as *mut u8).expect("free");
    }
    let released = alloc.release_free_arenas();
    let after = rss();
    let dropped = peak.saturating_sub(after);
    eprintln!(
        "(a) {BLOCKS} x {BLOCK_SIZE} B in {arenas} arenas: RSS {:.1} -> {:.1} -> {:.1} MiB; \
         growth {:.1} MiB, dropped {:.1} MiB ({:.0}% of growth); release_free_arenas returned {} bytes",
        mib(base),
        mib(peak),
        mib(after),
        mib(growth),
        mib(dropped),
        100.0 * dropped as f64 / growth as f64,
        released
    );
    assert!(growth >= BLOCKS * BLOCK_SIZE, "allocating 32 MB grew RSS by only {growth} bytes");
    assert!(dropped * 10 >= growth * 9, "RSS fell by {dropped} bytes, less than 90% of the {growth} it grew");
    let s = alloc.stats();
    assert_eq!((s.arenas_current, s.bytes_reserved, s.blocks_in_use), (0, 0, 0));

    // (b) Every other pool emptied, one block kept in each of the others:
    // no arena is free, yet half of the pools' memory goes back.
    let base = rss();
    allocate_all(&mut alloc, &mut ptrs);
    let peak = rss();
    let growth = peak.saturating_sub(base);
    let pools_before = alloc.stats().pools_in_use;
    ptrs.sort_unstable();
    let mut pool = usize::MAX;
    let mut ordinal = 0usize;
    for slot in ptrs.iter_mut() {
        let first_in_pool = *slot >> pool_shift != pool;
        if first_in_pool {
            if pool != usize::MAX {
                ordinal += 1;
            }
            pool = *slot >> pool_shift;
        }
        if ordinal & 1 == 0 || !first_in_pool {
            alloc.free(*slot as *mut u8).expect("free");
            *slot = 0;
        }
    }
    let pools_seen = ordinal as u64 + 1;
    let released = alloc.release_free_arenas();
    let after = rss();
    let dropped = peak.saturating_sub(after);
    let s = alloc.stats();
    eprintln!(
        "(b) {pools_seen} pools, every other one emptied: RSS {:.1} -> {:.1} -> {:.1} MiB; \
         growth {:.1} MiB, dropped {:.1} MiB ({:.0}% of growth); pools released now {}, \
         release_free_arenas returned {} bytes; {} arenas, {} blocks still in use",
        mib(base),
        mib(peak),
        mib(after),
        mib(growth),
        mib(dropped),
        100.0 * dropped as f64 / growth as f64,
        s.pools_released,
        released,
        s.arenas_current,
        s.blocks_in_use
    );
    assert_eq!(pools_seen, pools_before);
    assert_eq!(s.blocks_in_use, pools_seen / 2);
    assert_eq!(s.pools_in_use, pools_seen / 2);
    assert!(s.pools_released > 0);
    assert_eq!(s.arenas_freed_total, s.arenas_allocated_total - s.arenas_current);
    assert!(dropped * 10 >= growth * 4, "RSS fell by {dropped} bytes, less than 40% of the {growth} it grew");
    alloc.check_invariants();

    // Free the survivors: everything goes back.
    for &p in ptrs.iter().filter(|&&p| p != 0) {
        alloc.free(p as *mut u8).expect("free");
    }
    alloc.release_free_arenas();
    let s = alloc.stats();
    assert_eq!((s.arenas_current, s.bytes_reserved, s.blocks_in_use), (0, 0, 0));
    eprintln!("    all freed: RSS {:.1} MiB", mib(rss()));
}
