//! The operating system's page mapping calls, the only `unsafe` FFI of the
//! crate. Arenas are mapped aligned to their own size so that the arena of
//! any address is `addr & !(arena_size - 1)`.

use std::ptr;

/// Maps `size` bytes of zeroed, private, read-write memory aligned to `align`
/// (a power of two, a multiple of the page size). Returns `None` when the OS
/// refuses.
pub(crate) fn map_aligned(size: usize, align: usize) -> Option<usize> {
    debug_assert!(align.is_power_of_two() && size.is_multiple_of(page_size()));
    // The kernel's mappings are page aligned already: no slack to trim then
    // (trimming a page off each one left a hole between neighbours, so
    // that mappings made one after another, such as arena metadata, could
    // never be unmapped together).
    let span = if align <= page_size() { size } else { size.checked_add(align)? };
    // SAFETY: an anonymous private mapping at an address of the kernel's
    // choosing touches no existing memory.
    let raw = unsafe {
        libc::mmap(
            ptr::null_mut(),
            span,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
            -1,
            0,
        )
    };
    if raw == libc::MAP_FAILED {
        return None;
    }
    let start = raw as usize;
    let aligned = (start + align - 1) & !(align - 1);
    let head = aligned - start;
    let tail = span - head - size;
    if head > 0 {
        unmap(start, head);
    }
    if tail > 0 {
        unmap(aligned + size, tail);
    }
    Some(aligned)
}

/// The size of a transparent huge page on x86-64 and arm64 with 4 KiB pages:
/// arenas are mapped in chunks this large and aligned to it, so that the
/// kernel can back a chunk with huge pages (see `Config::huge_page_threshold`).
pub(crate) const HUGE_PAGE: usize = 2 << 20;

/// Asks the kernel to back `[addr, addr + size)` with transparent huge pages
/// (`on`) or never to (`!on`). Advice only: a kernel without THP, or one
/// configured to ignore it, leaves 4 KiB pages and nothing else changes.
pub(crate) fn advise_huge_pages(addr: usize, size: usize, on: bool) {
    #[cfg(target_os = "linux")]
    {
        let advice = if on { libc::MADV_HUGEPAGE } else { libc::MADV_NOHUGEPAGE };
        // SAFETY: the range is a mapping of ours; this advice changes how the
        // kernel backs it, never its contents. Its failure (EINVAL on a
        // kernel built without THP) is harmless, hence ignored.
        unsafe { libc::madvise(addr as *mut libc::c_void, size, advice) };
    }
    #[cfg(not(target_os = "linux"))]
    let _ = (addr, size, on);
}

/// Maps `size` bytes (rounded up to pages by the caller) for a large block.
pub(crate) fn map(size: usize) -> Option<usize> {
    map_aligned(size, page_size())
}

/// Returns a mapping made by [`map_aligned`] (or a part of one) to the OS.
pub(crate) fn unmap(addr: usize, size: usize) {
    // SAFETY: callers pass a range this crate mapped and no longer uses; the
    // kernel only checks the range, it never touches other memory.
    let rc = unsafe { libc::munmap(addr as *mut libc::c_void, size) };
    debug_assert_eq!(rc, 0, "munmap of our own range failed");
}

/// Gives the physical pages of `[addr, addr + size)` back to the OS while
/// keeping the address range mapped; the next touch reads zeros.
pub(crate) fn decommit(addr: usize, size: usize) {
    // SAFETY: the range is inside one of our arenas and holds no live block;
    // MADV_DONTNEED on private anonymous memory only drops its contents.
    let rc = unsafe { libc::madvise(addr as *mut libc::c_void, size, libc::MADV_DONTNEED) };
    debug_assert_eq!(rc, 0, "madvise of our own range failed");
}

/// Grows or shrinks a mapping made by [`map`], moving it if needed.
pub(crate) fn remap(addr: usize, old_size: usize, new_size: usize) -> Option<usize> {
    // SAFETY: `addr..addr+old_size` is a whole mapping of ours; MREMAP_MAYMOVE
    // keeps its contents and only changes where it lives.
    let raw = unsafe { libc::mremap(addr as *mut libc::c_void, old_size, new_size, libc::MREMAP_MAYMOVE) };
    if raw == libc::MAP_FAILED {
        None
    } else {
        Some(raw as usize)
    }
}

/// The OS page size (4 KiB on x86-64 Linux; 16 or 64 KiB on some arm64).
pub(crate) fn page_size() -> usize {
    // SAFETY: sysconf only reads a constant of the process.
    let size = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    if size > 0 {
        size as usize
    } else {
        4096
    }
}

/// Asks the C library to give the free pages of its own heap back to the
/// OS (glibc's `malloc_trim(0)`, which also releases free pages in the
/// middle of the heap, not only at its top). Blocks of 513 B .. 128 KiB come
/// from that heap, as does the scratch memory of the layers above, and
/// glibc keeps what they freed until asked. Returns whether anything was
/// released; elsewhere than glibc it does nothing.
pub fn trim_system_heap() -> bool {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        // SAFETY: malloc_trim takes no pointer and only walks glibc's own
        // bookkeeping, under its lock.
        unsafe { libc::malloc_trim(0) != 0 }
    }
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    {
        false
    }
}
