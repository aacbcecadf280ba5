//! The allocator's failure injection (`Allocator::fail_allocations_after`,
//! feature `fail-injection`, which this crate turns on): every allocation
//! path counts, a failure changes nothing, `None` restores the fast paths.

use std::ptr::NonNull;

use obmalloc::{AllocError, Allocator, BlockKind, Config};

fn allocator() -> Allocator {
    Allocator::new(Config::default())
}

fn debug_allocator() -> Allocator {
    Allocator::new(Config { debug_hooks: true, ..Config::default() })
}

/// Frees every pointer, asserting success, then checks the invariants.
fn free_all(alloc: &mut Allocator, blocks: impl IntoIterator<Item = NonNull<u8>>) {
    for p in blocks {
        alloc.free(p.as_ptr()).unwrap();
    }
    alloc.check_invariants();
}

/// `fail_allocations_after(Some(n))`: n allocations of every kind and path
/// succeed (fast-path sizes included: the fast paths are off while armed),
/// the next fails with `NoMemory` and changes nothing; a failed realloc
/// keeps the old block; `None` restores the fast paths.
#[test]
fn injected_failures_count_every_allocation_and_change_nothing() {
    for debug in [false, true] {
        let mut a = if debug { debug_allocator() } else { allocator() };
        // Warm pools of each kind so the next allocations would be fast-path hits.
        let warm = [a.malloc(32).unwrap(), a.malloc_kind(32, BlockKind::Object).unwrap()];
        let large = a.malloc(4000).unwrap();
        let before = a.stats();
        a.fail_allocations_after(Some(3));
        let ok = [
            a.malloc(32).unwrap(),
            a.malloc_kind(48, BlockKind::Object).unwrap(),
            a.malloc_kind(48, BlockKind::Internal).unwrap(),
        ];
        let mid = a.stats();
        assert!(matches!(a.malloc(32), Err(AllocError::NoMemory { .. })));
        assert!(matches!(a.malloc_kind(16, BlockKind::Object), Err(AllocError::NoMemory { .. })));
        assert!(matches!(a.calloc(2, 8), Err(AllocError::NoMemory { .. })));
        assert!(matches!(a.realloc(large.as_ptr(), 9000), Err(AllocError::NoMemory { .. })));
        assert!(matches!(a.realloc(ok[0].as_ptr(), 400), Err(AllocError::NoMemory { .. })));
        assert!(matches!(a.malloc(1 << 20), Err(AllocError::NoMemory { .. })));
        assert_eq!(a.stats(), mid, "a failed allocation changed the allocator (debug hooks {debug})");
        a.check_invariants();
        // The failures are persistent until turned off.
        assert!(a.malloc(8).is_err());
        a.fail_allocations_after(None);
        let again = a.malloc(32).unwrap();
        a.free_kind(ok[1].as_ptr(), BlockKind::Object).unwrap();
        a.free_kind(ok[2].as_ptr(), BlockKind::Internal).unwrap();
        free_all(&mut a, [ok[0], again]);
        assert_eq!(a.stats().bytes_in_use, before.bytes_in_use);
        a.free_kind(warm[1].as_ptr(), BlockKind::Object).unwrap();
        free_all(&mut a, [warm[0], large]);
    }
}
