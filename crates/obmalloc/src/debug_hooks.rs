//! Debug hooks in the manner of `PYTHONMALLOC=debug`.
//!
//! Each block gets a 16-byte head and an 8-byte tail (CPython's 24 bytes of
//! overhead):
//! ```text
//! [ requested size: u64 ][ api id 'o' ][ 7 x 0xFD ][ data: n bytes ][ 8 x 0xFD ]
//!   raw                                            ^ pointer handed out
//! ```
//! New data is filled with 0xCD ("clean"), freed data with 0xDD ("dead"), so
//! reads of uninitialised or freed memory show recognisable bytes. At free
//! and realloc the head and tail are checked; a damaged one is reported as
//! [`crate::AllocError::HeapCorruption`] naming the block and the first bad byte,
//! and the block stays allocated (never freed in a corrupt state).

/// Byte written before and after each block.
pub const FORBIDDEN_BYTE: u8 = 0xFD;
/// Byte that fills newly allocated memory.
pub const CLEAN_BYTE: u8 = 0xCD;
/// Byte that fills freed memory.
pub const DEAD_BYTE: u8 = 0xDD;
/// The API id of this allocator's blocks (CPython: 'o' for PyObject_Malloc).
pub const API_ID: u8 = b'o';

pub(crate) const HEAD: usize = 16;
pub(crate) const TAIL: usize = 8;
pub(crate) const OVERHEAD: usize = HEAD + TAIL;

/// Writes the head, clean fill and tail into a raw block of `n + OVERHEAD`
/// bytes and returns the pointer to hand out.
///
/// # Safety
/// `raw` is a live block of at least `n + OVERHEAD` writable bytes.
pub(crate) unsafe fn write_fresh(raw: *mut u8, n: usize) -> *mut u8 {
    // SAFETY: all writes are within the `n + OVERHEAD` bytes of the contract.
    unsafe {
        (raw as *mut u64).write_unaligned(n as u64);
        *raw.add(8) = API_ID;
        std::ptr::write_bytes(raw.add(9), FORBIDDEN_BYTE, HEAD - 9);
        std::ptr::write_bytes(raw.add(HEAD), CLEAN_BYTE, n);
        std::ptr::write_bytes(raw.add(HEAD + n), FORBIDDEN_BYTE, TAIL);
        raw.add(HEAD)
    }
}

/// Checks a block's head and tail. `capacity` is the raw block's usable size,
/// so a damaged size field can never make us read outside the block.
/// Returns the requested size, or a description of the first damage.
///
/// # Safety
/// `raw` is a live block of this allocator with `capacity` readable bytes.
pub(crate) unsafe fn check(raw: *const u8, capacity: usize) -> Result<usize, String> {
    let user = raw as usize + HEAD;
    if capacity < OVERHEAD {
        return Err(format!("block {user:#x} is too small to carry debug guards"));
    }
    // SAFETY: the head's 16 bytes are within the block (capacity >= 24).
    let (n, id, pad) = unsafe {
        let n = (raw as *const u64).read_unaligned();
        let id = *raw.add(8);
        let pad = std::slice::from_raw_parts(raw.add(9), HEAD - 9);
        (n, id, pad)
    };
    if let Some(i) = pad.iter().position(|&b| b != FORBIDDEN_BYTE) {
        return Err(format!(
            "bad leading pad byte at {user:#x}-{}: {:#04x} instead of 0xfd (an underrun, or a block not from the debug allocator)",
            HEAD - 9 - i,
            pad[i]
        ));
    }
    if id != API_ID {
        return Err(format!("bad API id at {user:#x}-8: {id:#04x} instead of 'o'"));
    }
    if n > (capacity - OVERHEAD) as u64 {
        return Err(format!(
            "size field of block {user:#x} says {n} bytes but the block holds {}: the head was overwritten",
            capacity - OVERHEAD
        ));
    }
    let n = n as usize;
    // SAFETY: `HEAD + n + TAIL <= capacity`, checked just above.
    let tail = unsafe { std::slice::from_raw_parts(raw.add(HEAD + n), TAIL) };
    if let Some(i) = tail.iter().position(|&b| b != FORBIDDEN_BYTE) {
        return Err(format!(
            "buffer overrun: block {user:#x} of {n} bytes has its trailing pad byte at offset +{} overwritten ({:#04x} instead of 0xfd)",
            n + i,
            tail[i]
        ));
    }
    Ok(n)
}

/// Fills a block's data with [`DEAD_BYTE`] before it is freed.
///
/// # Safety
/// `raw` is a live block whose head and tail passed [`check`] with size `n`.
pub(crate) unsafe fn mark_dead(raw: *mut u8, n: usize) {
    // SAFETY: within the block per the contract.
    unsafe { std::ptr::write_bytes(raw.add(HEAD), DEAD_BYTE, n) };
}
