//! Hooks for pymem's own tests and fuzzer (`crates/pymem-fuzz`), from Rust
//! only: `#[doc(hidden)]`, not `extern "C"`, so not in `pymem.h` and not
//! part of the C ABI. Each one crosses the same boundary as an entry point
//! (NULL runtime, owner thread, `catch_unwind`), so calling one from the
//! wrong thread is refused like any other call. `fail_allocations_after`
//! exists only with the feature `testing` (the library built for C hosts
//! has no failure injection).

use crate::boundary::ffi_boundary;
use crate::cuda::CudaCache;
use crate::runtime::Runtime;
use crate::status::Status;

/// Asserts the allocator's invariants (`obmalloc::Allocator::check_invariants`,
/// and that no unmap hold outlived its call) and the collector's (`refcount_object::Heap::check_gc_invariants`). A
/// violation panics inside the boundary: the runtime is poisoned and the
/// call returns `PYMEM_ERR_PANIC` with the assertion in `pymem_last_error`.
///
/// # Safety
/// `rt` is NULL or a live runtime.
pub unsafe fn check_invariants(rt: *mut Runtime) -> Status {
    ffi_boundary!(status rt, "pymem::testing::check_invariants", |state| {
        state.heap.alloc.check_invariants();
        assert!(!state.heap.alloc.holds_unmaps(), "an unmap hold outlived the call that took it");
        state.heap.check_gc_invariants();
        Ok::<(), crate::boundary::Failure>(())
    })
}

/// Empties the heap's validation cache (the 64 objects it last validated),
/// so that the next calls on any object take the paths for an object it
/// does not know, as for one made long ago.
///
/// # Safety
/// `rt` is NULL or a live runtime.
pub unsafe fn forget_validation_cache(rt: *mut Runtime) -> Status {
    ffi_boundary!(status rt, "pymem::testing::forget_validation_cache", |state| {
        state.heap.forget_validation_cache();
        Ok::<(), crate::boundary::Failure>(())
    })
}

/// Failure injection (`obmalloc::Allocator::fail_allocations_after`; feature
/// `testing`): with
/// `Some(n)` the runtime's next `n` allocations succeed and every later one
/// fails with `PYMEM_ERR_NO_MEMORY`, until `None`. Every allocation the
/// runtime makes (objects, their arrays, host memory) counts.
///
/// # Safety
/// `rt` is NULL or a live runtime.
#[cfg(feature = "testing")]
pub unsafe fn fail_allocations_after(rt: *mut Runtime, n: Option<u64>) -> Status {
    ffi_boundary!(status rt, "pymem::testing::fail_allocations_after", |state| {
        state.heap.alloc.fail_allocations_after(n);
        Ok::<(), crate::boundary::Failure>(())
    })
}

/// Asserts the GPU cache's invariants on every device
/// (`cuda_cache::CachingAllocator::check_invariants`); a violation panics
/// (not caught: the caller is a test).
///
/// # Safety
/// `c` is a live cache.
pub unsafe fn cuda_check_invariants(c: *const CudaCache) {
    // SAFETY: contract.
    unsafe { &*c }.check_invariants();
}
