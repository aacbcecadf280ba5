//! The allocator's C entry points (`pymem_malloc` ... `pymem_string_free`).
//!
//! Thread rule for this section: every call takes a runtime and must come
//! from its owner thread (`PYMEM_ERR_BUSY` otherwise), except
//! `pymem_string_free`, which any thread may call.

use std::ffi::{c_char, c_void, CString};

use crate::boundary::{ffi_boundary, require, run_without_runtime, write_out, Failure};
use crate::runtime::Runtime;
use crate::status::Status;

/// Allocator statistics (`pymem_alloc_get_stats`). Small-block figures count
/// whole size-class blocks; large blocks (over 512 bytes) count the bytes
/// requested.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct AllocStats {
    /// Size-class bytes of live small blocks + requested bytes of live large blocks.
    pub bytes_in_use: u64,
    /// Bytes held from the OS: whole arenas + large blocks.
    pub bytes_reserved: u64,
    /// Arenas mapped since the runtime was created.
    pub arenas_allocated_total: u64,
    /// Arenas unmapped (given back to the OS) since the runtime was created.
    pub arenas_freed_total: u64,
    /// Arenas mapped now.
    pub arenas_current: u64,
    /// Most arenas mapped at once.
    pub arenas_highwater: u64,
    /// Pools holding at least one live block.
    pub pools_in_use: u64,
    /// Live blocks, small and large.
    pub blocks_in_use: u64,
    /// Live large blocks (over 512 bytes, served by the system allocator or mmap).
    pub large_allocations: u64,
    /// Requested bytes of the live large blocks.
    pub large_bytes: u64,
    /// Empty pools whose pages are given back to the OS right now (MADV_DONTNEED).
    pub pools_released: u64,
    /// Resident bytes given back to the OS since the runtime was created
    /// (released pools, unmapped arenas, unmapped large blocks).
    pub bytes_returned_to_os_total: u64,
    /// Bytes held free, by reason (the bounded retention rule of
    /// `pymem_config.retain_cache_max`). Resident empty pools of the spare
    /// arena: the arena with the most free pools (a wholly free one when
    /// there is one, as CPython keeps one spare), at most an arena's worth.
    pub free_bytes_spare_arena: u64,
    /// Resident empty pools of the cache, at most `free_bytes_cache_limit`.
    pub free_bytes_cache: u64,
    /// The cache's bound now: 1/16 of the bytes in use, at least 256 KiB,
    /// at most `pymem_config.retain_cache_max`.
    pub free_bytes_cache_limit: u64,
    /// Empty pools kept by their size class (at most one per class and block
    /// kind, ready for the class's next block).
    pub free_bytes_class_pools: u64,
    /// What pools holding live blocks do not use: free blocks, the not yet
    /// carved tail, the remainder of the class size (fragmentation; goes
    /// back only as blocks are freed).
    pub free_bytes_in_used_pools: u64,
}

impl From<obmalloc::Stats> for AllocStats {
    fn from(s: obmalloc::Stats) -> AllocStats {
        AllocStats {
            bytes_in_use: s.bytes_in_use,
            bytes_reserved: s.bytes_reserved,
            arenas_allocated_total: s.arenas_allocated_total,
            arenas_freed_total: s.arenas_freed_total,
            arenas_current: s.arenas_current,
            arenas_highwater: s.arenas_highwater,
            pools_in_use: s.pools_in_use,
            blocks_in_use: s.blocks_in_use,
            large_allocations: s.large_allocations,
            large_bytes: s.large_bytes,
            pools_released: s.pools_released,
            bytes_returned_to_os_total: s.bytes_returned_to_os_total,
            free_bytes_spare_arena: s.free_bytes_spare_arena,
            free_bytes_cache: s.free_bytes_cache,
            free_bytes_cache_limit: s.free_bytes_cache_limit,
            free_bytes_class_pools: s.free_bytes_class_pools,
            free_bytes_in_used_pools: s.free_bytes_in_used_pools,
        }
    }
}

/// Allocates `n` bytes aligned to 16 from the runtime's allocator (size
/// classes up to 512 bytes, the system allocator above). `n == 0` gives a
/// unique pointer. The memory is uninitialised (0xCD-filled with debug
/// hooks). Returns NULL on failure (`PYMEM_ERR_NO_MEMORY`, `PYMEM_ERR_BUSY`,
/// ...; see `pymem_last_error`). Free it with `pymem_free` on the same runtime.
///
/// # Safety
/// `rt` is NULL or a live runtime.
#[no_mangle]
pub unsafe extern "C" fn pymem_malloc(rt: *mut Runtime, n: usize) -> *mut c_void {
    ffi_boundary!(pointer rt, "pymem_malloc", |state| {
        state.heap.alloc.malloc(n).map(|p| p.as_ptr().cast())
    })
}

/// Allocates `count * size` zeroed bytes. An overflowing product fails with
/// `PYMEM_ERR_NO_MEMORY`. Returns NULL on failure.
///
/// # Safety
/// `rt` is NULL or a live runtime.
#[no_mangle]
pub unsafe extern "C" fn pymem_calloc(rt: *mut Runtime, count: usize, size: usize) -> *mut c_void {
    ffi_boundary!(pointer rt, "pymem_calloc", |state| {
        state.heap.alloc.calloc(count, size).map(|p| p.as_ptr().cast())
    })
}

/// Resizes the block at `p` to `n` bytes, as CPython's `PyObject_Realloc`:
/// `p == NULL` allocates; a small block stays in place when `n` fits its class
/// and shrinks it by less than 25 %; otherwise the contents move. Returns the
/// block's new address, or NULL on failure — then `p` is untouched and still
/// allocated (`PYMEM_ERR_INVALID_POINTER`/`PYMEM_ERR_DOUBLE_FREE` for a `p`
/// that is not a live block of this runtime).
///
/// # Safety
/// `rt` is NULL or a live runtime. `p` may be any value: it is validated
/// before anything is read or written.
#[no_mangle]
pub unsafe extern "C" fn pymem_realloc(rt: *mut Runtime, p: *mut c_void, n: usize) -> *mut c_void {
    ffi_boundary!(pointer rt, "pymem_realloc", |state| {
        state.heap.alloc.realloc(p.cast(), n).map(|p| p.as_ptr().cast())
    })
}

/// Frees a block of this runtime. NULL is fine. Every free is validated in
/// O(1): a pointer that is not a live block of this runtime — foreign,
/// interior, or already freed — gets `PYMEM_ERR_INVALID_POINTER` or
/// `PYMEM_ERR_DOUBLE_FREE` and changes nothing. With debug hooks, damaged
/// guard bytes give `PYMEM_ERR_HEAP_CORRUPTION` (the block stays allocated).
///
/// # Safety
/// `rt` is NULL or a live runtime. `p` may be any value.
#[no_mangle]
pub unsafe extern "C" fn pymem_free(rt: *mut Runtime, p: *mut c_void) -> Status {
    ffi_boundary!(status rt, "pymem_free", |state| state.heap.alloc.free(p.cast()))
}

/// Fills `*out` with the allocator's statistics.
///
/// # Safety
/// `rt` is NULL or a live runtime; `out` is NULL (an error) or writable.
#[no_mangle]
pub unsafe extern "C" fn pymem_alloc_get_stats(rt: *mut Runtime, out: *mut AllocStats) -> Status {
    ffi_boundary!(status rt, "pymem_alloc_get_stats", |state| {
        require(out, "out")?;
        // SAFETY: checked non-null; writable per the contract.
        unsafe { write_out(out, state.heap.alloc.stats().into()) };
        Ok::<(), Failure>(())
    })
}

/// Writes a report in the layout of CPython's `sys._debugmallocstats()` —
/// the size-class table, then `label = value` lines with CPython's labels —
/// followed by pymem's own lines. `*out` receives a NUL-terminated string
/// the caller frees with `pymem_string_free`.
///
/// # Safety
/// `rt` is NULL or a live runtime; `out` is NULL (an error) or writable.
#[no_mangle]
pub unsafe extern "C" fn pymem_debug_malloc_stats(rt: *mut Runtime, out: *mut *mut c_char) -> Status {
    ffi_boundary!(status rt, "pymem_debug_malloc_stats", |state| {
        require(out, "out")?;
        let mut text = state.heap.alloc.debug_malloc_stats();
        state.heap.free_list_stats(&mut text);
        // SAFETY: checked non-null; writable per the contract.
        unsafe { write_out(out, crate::boundary::c_message(&text).into_raw()) };
        Ok::<(), Failure>(())
    })
}

/// Gives back to the OS every empty pool's pages (MADV_DONTNEED) and every
/// wholly free arena, the spare one included. `*released_bytes` (may be NULL)
/// receives the resident bytes given back.
///
/// # Safety
/// `rt` is NULL or a live runtime; `released_bytes` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn pymem_release_free_arenas(rt: *mut Runtime, released_bytes: *mut usize) -> Status {
    ffi_boundary!(status rt, "pymem_release_free_arenas", |state| {
        let released = state.heap.alloc.release_free_arenas();
        if !released_bytes.is_null() {
            // SAFETY: non-null and writable per the contract.
            unsafe { write_out(released_bytes, released) };
        }
        Ok::<(), Failure>(())
    })
}

/// Frees a string that pymem handed out through a `char **out` parameter.
/// NULL is fine. Callable from any thread. Must not be called twice, nor with
/// a pointer pymem did not hand out (like `free`).
///
/// # Safety
/// `s` is NULL or a string from a pymem call, not yet freed.
#[no_mangle]
pub unsafe extern "C" fn pymem_string_free(s: *mut c_char) {
    if s.is_null() {
        return;
    }
    run_without_runtime("pymem_string_free", (), || {
        // SAFETY: `s` came from `CString::into_raw` (contract).
        drop(unsafe { CString::from_raw(s) });
    });
}
