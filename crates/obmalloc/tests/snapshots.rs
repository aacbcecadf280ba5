//! The text of `debug_malloc_stats()` (CPython's `sys._debugmallocstats()`
//! layout) after fixed sequences of calls. It holds no addresses, so it is
//! the same on every run.

use obmalloc::{Allocator, Config, Geometry};

/// 1000 blocks of 16..=512 bytes by a fixed formula, every third freed, and
/// one large block of 4096 bytes.
fn fixed_sequence(config: Config) -> String {
    let mut alloc = Allocator::new(config);
    let blocks: Vec<_> = (0..1000usize).map(|i| alloc.malloc(16 + (i * 37) % 497).unwrap()).collect();
    for p in blocks.iter().step_by(3) {
        alloc.free(p.as_ptr()).unwrap();
    }
    let large = alloc.malloc(4096).unwrap();
    alloc.check_invariants();
    let report = alloc.debug_malloc_stats();
    // The report is a pure function of the allocator's state.
    assert_eq!(report, alloc.debug_malloc_stats());
    alloc.free(large.as_ptr()).unwrap();
    report
}

#[test]
fn debug_malloc_stats_after_a_fixed_sequence() {
    insta::assert_snapshot!("debug_malloc_stats_fixed_sequence", fixed_sequence(Config::default()));
}

#[test]
fn debug_malloc_stats_after_a_fixed_sequence_cpython38() {
    insta::assert_snapshot!(
        "debug_malloc_stats_fixed_sequence_cpython38",
        fixed_sequence(Config { geometry: Geometry::Cpython38, ..Config::default() })
    );
}

#[test]
fn debug_malloc_stats_of_a_fresh_allocator() {
    let alloc = Allocator::new(Config::default());
    insta::assert_snapshot!("debug_malloc_stats_fresh", alloc.debug_malloc_stats());
}
