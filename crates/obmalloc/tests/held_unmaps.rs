//! `Allocator::hold_unmaps`: arenas retired while unmaps are held stay
//! mapped until the outermost `release_held_unmaps`, which unmaps them all
//! (the spare arena apart). Checked through the kernel's own view: `mincore`
//! succeeds on a mapped range and fails with ENOMEM on an unmapped one.
//!
//! One test in its own binary: no other thread maps or unmaps meanwhile, so
//! an address found unmapped cannot have been taken by someone else.

use std::collections::BTreeSet;

use obmalloc::{Allocator, Config, Geometry};

const ARENA: usize = Geometry::Cpython310.arena_size();

/// Whether `[addr, addr + ARENA)` is mapped in this process.
fn mapped(addr: usize) -> bool {
    let mut residency = vec![0u8; ARENA / 4096];
    // SAFETY: `residency` has one byte per page of the range; mincore only
    // writes there, and only reports on the range, whatever it holds.
    let rc = unsafe { libc::mincore(addr as *mut libc::c_void, ARENA, residency.as_mut_ptr()) };
    rc == 0
}

#[test]
fn arenas_retired_while_unmaps_are_held_go_at_the_outermost_release() {
    // Wholly free arenas go at once (no release delay), huge pages off (the
    // test is about the unmapping, not the pages).
    let config = Config { pool_release_delay: 0, huge_page_threshold: 0, ..Config::default() };
    let mut a = Allocator::new(config);
    let blocks: Vec<*mut u8> = (0..6 * ARENA / 64).map(|_| a.malloc(64).expect("malloc").as_ptr()).collect();
    let arenas: BTreeSet<usize> = blocks.iter().map(|&p| p as usize & !(ARENA - 1)).collect();
    assert!(arenas.len() >= 6, "the blocks fill several arenas: {}", arenas.len());
    assert!(arenas.iter().all(|&base| mapped(base)));

    a.hold_unmaps();
    a.hold_unmaps();
    for &p in &blocks {
        a.free(p).expect("free");
    }
    a.check_invariants();
    assert_eq!(a.stats().arenas_current, 1, "all but the spare retired");
    assert!(arenas.iter().all(|&base| mapped(base)), "retired arenas stay mapped while unmaps are held");

    a.release_held_unmaps();
    assert!(arenas.iter().all(|&base| mapped(base)), "an inner release unmaps nothing");

    assert!(a.holds_unmaps());
    a.release_held_unmaps();
    assert!(!a.holds_unmaps());
    a.check_invariants();
    let still: Vec<usize> = arenas.iter().copied().filter(|&base| mapped(base)).collect();
    assert_eq!(still.len(), 1, "the outermost release unmaps every retired arena, the spare stays: {still:x?}");

    // Without a hold, a retired arena goes at once.
    let more: Vec<*mut u8> = (0..3 * ARENA / 64).map(|_| a.malloc(64).expect("malloc").as_ptr()).collect();
    let more_arenas: BTreeSet<usize> = more.iter().map(|&p| p as usize & !(ARENA - 1)).collect();
    for &p in &more {
        a.free(p).expect("free");
    }
    assert_eq!(more_arenas.iter().filter(|&&base| mapped(base)).count(), 1, "only the spare stays");
    a.check_invariants();
}
