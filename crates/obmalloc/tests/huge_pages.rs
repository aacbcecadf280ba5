//! Transparent huge pages (`Config::huge_page_threshold`): arenas and large
//! blocks mapped once the allocator holds the threshold are marked
//! `MADV_HUGEPAGE`, those mapped before are not, a threshold of 0 marks
//! nothing, and an arena is marked `MADV_NOHUGEPAGE` before its empty pools
//! are given back. Checked through the kernel's own view of the mappings:
//! the `hg` / `nh` flags of `/proc/self/smaps`. Skipped (with a message)
//! where the kernel has no transparent huge pages, as the advice is then
//! refused and nothing changes.

use std::ptr::NonNull;

use obmalloc::{Allocator, Config, Geometry, PoolFill};

const ARENA: usize = Geometry::Cpython310.arena_size();
const POOL: usize = Geometry::Cpython310.pool_size();

/// The VmFlags of the mapping holding `addr`, from /proc/self/smaps.
fn vm_flags(addr: usize) -> Vec<String> {
    let smaps = std::fs::read_to_string("/proc/self/smaps").expect("read /proc/self/smaps");
    let mut inside = false;
    for line in smaps.lines() {
        let first = line.split_whitespace().next().unwrap_or("");
        if let Some((start, end)) = first.split_once('-') {
            if let (Ok(start), Ok(end)) = (usize::from_str_radix(start, 16), usize::from_str_radix(end, 16)) {
                inside = (start..end).contains(&addr);
                continue;
            }
        }
        if inside {
            if let Some(flags) = line.strip_prefix("VmFlags:") {
                return flags.split_whitespace().map(str::to_string).collect();
            }
        }
    }
    panic!("no mapping holds {addr:#x}");
}

fn has_flag(addr: usize, flag: &str) -> bool {
    vm_flags(addr).iter().any(|f| f == flag)
}

fn kernel_has_thp() -> bool {
    let present = std::path::Path::new("/sys/kernel/mm/transparent_hugepage/enabled").exists();
    if !present {
        eprintln!("skipped: this kernel has no transparent huge pages");
    }
    present
}

fn malloc_n(alloc: &mut Allocator, n: usize, size: usize) -> Vec<NonNull<u8>> {
    (0..n).map(|_| alloc.malloc(size).expect("malloc")).collect()
}

fn arena_bases(alloc: &Allocator) -> Vec<usize> {
    let mut bases: Vec<usize> = alloc.arena_views().iter().map(|a| a.base).collect();
    bases.sort_unstable();
    bases
}

#[test]
fn arenas_past_the_threshold_get_huge_pages_and_those_before_do_not() {
    if !kernel_has_thp() {
        return;
    }
    let mut alloc = Allocator::new(Config { huge_page_threshold: 4 * ARENA, ..Config::default() });
    // 12 arenas of 32-byte blocks, mapped in address order of their chunks.
    let blocks = malloc_n(&mut alloc, 12 * ARENA / 32, 32);
    let views = alloc.arena_views();
    assert_eq!(views.len(), 12);
    // `arena_views` lists arenas in mapping order: the first 4 MiB were
    // mapped below the threshold, the chunks from the third on above it.
    let marked: Vec<bool> = views.iter().map(|a| has_flag(a.base, "hg")).collect();
    assert_eq!(&marked[..4], &[false; 4], "{marked:?}");
    assert!(marked[4..].iter().all(|&m| m), "{marked:?}");
    for p in &blocks {
        alloc.free(p.as_ptr()).unwrap();
    }
    alloc.check_invariants();
}

#[test]
fn a_threshold_of_zero_never_asks_for_huge_pages() {
    if !kernel_has_thp() {
        return;
    }
    let mut alloc = Allocator::new(Config { huge_page_threshold: 0, ..Config::default() });
    let blocks = malloc_n(&mut alloc, 12 * ARENA / 32, 32);
    let big = alloc.malloc(16 << 20).expect("a large block");
    for base in arena_bases(&alloc) {
        assert!(!has_flag(base, "hg"), "arena {base:#x}: {:?}", vm_flags(base));
    }
    assert!(!has_flag(big.as_ptr() as usize, "hg"));
    alloc.free(big.as_ptr()).unwrap();
    for p in &blocks {
        alloc.free(p.as_ptr()).unwrap();
    }
}

#[test]
fn a_large_block_in_a_big_heap_is_aligned_to_and_marked_for_huge_pages() {
    if !kernel_has_thp() {
        return;
    }
    let mut alloc = Allocator::new(Config { huge_page_threshold: 1, ..Config::default() });
    let small = alloc.malloc(64).unwrap(); // holds an arena: past the threshold
    let big = alloc.malloc(8 << 20).expect("a large block");
    let addr = big.as_ptr() as usize;
    assert_eq!(addr % (2 << 20), 0, "{addr:#x}");
    assert!(has_flag(addr, "hg"), "{:?}", vm_flags(addr));
    // Grown in place or moved by mremap: still marked.
    let grown = alloc.realloc(big.as_ptr(), 32 << 20).unwrap();
    assert!(has_flag(grown.as_ptr() as usize, "hg"));
    alloc.free(grown.as_ptr()).unwrap();
    alloc.free(small.as_ptr()).unwrap();
}

#[test]
fn an_arena_is_unmarked_before_its_empty_pools_are_given_back() {
    if !kernel_has_thp() {
        return;
    }
    let mut alloc = Allocator::new(Config { huge_page_threshold: 1, pool_release_delay: 0, ..Config::default() });
    let blocks = malloc_n(&mut alloc, 6 * ARENA / 32, 32);
    let bases = arena_bases(&alloc);
    let marked_before: Vec<usize> = bases.iter().copied().filter(|&b| has_flag(b, "hg")).collect();
    assert!(!marked_before.is_empty(), "some arenas are past the threshold");
    // Free everything but the first block of each arena: every arena stays
    // mapped, and its other pools empty and are given back.
    let keep: Vec<usize> = bases.clone();
    for p in &blocks {
        if !keep.contains(&(p.as_ptr() as usize)) {
            alloc.free(p.as_ptr()).unwrap();
        }
    }
    alloc.release_free_arenas();
    alloc.check_invariants();
    let views = alloc.arena_views();
    for base in marked_before {
        let view = views.iter().find(|a| a.base == base).expect("the arena keeps a block, so stays mapped");
        assert!(view.pools.iter().any(|p| p.fill == PoolFill::Released), "pools of {base:#x} released");
        assert!(has_flag(base, "nh"), "arena {base:#x}: {:?}", vm_flags(base));
        assert!(!has_flag(base, "hg"), "arena {base:#x}: {:?}", vm_flags(base));
    }
    for base in keep {
        alloc.free(base as *mut u8).unwrap();
    }
}

/// How many of the pages of `[addr, addr + len)` are resident.
fn resident_pages(addr: usize, len: usize) -> usize {
    let mut residency = vec![0u8; len / 4096];
    // SAFETY: `residency` has one byte per page of the range; mincore only
    // writes there.
    let rc = unsafe { libc::mincore(addr as *mut libc::c_void, len, residency.as_mut_ptr()) };
    assert_eq!(rc, 0, "the range is mapped");
    residency.iter().filter(|&&r| r & 1 != 0).count()
}

#[test]
fn the_untouched_pools_of_a_huge_page_chunk_go_back_with_its_first_released_pool() {
    if !kernel_has_thp() {
        return;
    }
    let mut alloc = Allocator::new(Config { huge_page_threshold: 1, pool_release_delay: 0, ..Config::default() });
    // The first chunk is below the threshold; the second is marked for huge
    // pages. Fill the first chunk's two arenas, then 8 pools of the third.
    let per_pool = POOL / 32;
    let mut blocks = malloc_n(&mut alloc, 2 * ARENA / 32 + 8 * per_pool, 32);
    let third = blocks.last().map(|p| p.as_ptr() as usize & !(ARENA - 1)).unwrap();
    assert!(has_flag(third, "hg"), "{:?}", vm_flags(third));
    let untouched = (third + 8 * POOL, ARENA - 8 * POOL);
    if resident_pages(untouched.0, untouched.1) == 0 {
        eprintln!("skipped: the kernel gave this chunk small pages (no huge page free now)");
        for p in &blocks {
            alloc.free(p.as_ptr()).unwrap();
        }
        return;
    }
    // Empty the third arena's first pool but keep a block in the others;
    // the empty pool is given back, and with it the untouched rest.
    let in_third: Vec<NonNull<u8>> =
        blocks.iter().copied().filter(|p| p.as_ptr() as usize & !(ARENA - 1) == third).collect();
    for p in &in_third[..per_pool] {
        alloc.free(p.as_ptr()).unwrap();
    }
    alloc.release_free_arenas();
    alloc.check_invariants();
    assert!(has_flag(third, "nh"), "{:?}", vm_flags(third));
    assert_eq!(resident_pages(untouched.0, untouched.1), 0, "the untouched pools are not resident");
    blocks.retain(|p| !in_third[..per_pool].contains(p));
    for p in &blocks {
        alloc.free(p.as_ptr()).unwrap();
    }
    alloc.check_invariants();
}
