//! Status codes: stable numbers, one name each.

use std::ffi::c_char;

/// The result of every fallible call. `PYMEM_OK` is 0; every other value is an
/// error whose message `pymem_last_error` gives. Numbers never change meaning;
/// new codes are only ever added at the end.
#[allow(non_camel_case_types, clippy::upper_case_acronyms)]
#[repr(i32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    /// Success.
    PYMEM_OK = 0,
    /// A required pointer argument (handle or out-pointer) was NULL.
    PYMEM_ERR_NULL_ARGUMENT = 1,
    /// The pointer is not a live block or object of this runtime (foreign,
    /// interior, or never handed out).
    PYMEM_ERR_INVALID_POINTER = 2,
    /// The block was handed out by this runtime but is not allocated now.
    PYMEM_ERR_DOUBLE_FREE = 3,
    /// An object of the wrong type was passed.
    PYMEM_ERR_TYPE = 4,
    /// Decref of an object whose count is already 0.
    PYMEM_ERR_REFCOUNT_UNDERFLOW = 5,
    /// Out of memory, or the configured `max_bytes` would be exceeded.
    PYMEM_ERR_NO_MEMORY = 6,
    /// A key or name was not found.
    PYMEM_ERR_KEY = 7,
    /// An index was out of range.
    PYMEM_ERR_INDEX = 8,
    /// An argument had a value outside its domain.
    PYMEM_ERR_INVALID_ARGUMENT = 9,
    /// repr/equal/deepcopy nested deeper than the configured limit.
    PYMEM_ERR_RECURSION = 10,
    /// The runtime belongs to another thread (or a re-entrant call is not
    /// allowed here).
    PYMEM_ERR_BUSY = 11,
    /// No GPU device or driver.
    PYMEM_ERR_NO_DEVICE = 12,
    /// The GPU driver reported an error.
    PYMEM_ERR_DEVICE = 13,
    /// The GPU is out of memory.
    PYMEM_ERR_OUT_OF_DEVICE_MEMORY = 14,
    /// A bug in pymem: the runtime is poisoned and every later call on it
    /// returns PYMEM_ERR_PANIC (only `pymem_runtime_free` still works).
    PYMEM_ERR_PANIC = 15,
    /// Debug hooks found the guard bytes around a block overwritten (an
    /// overrun or underrun by the host); the block is left allocated.
    PYMEM_ERR_HEAP_CORRUPTION = 16,
}

impl Status {
    /// Every status, in numeric order.
    pub(crate) const ALL: [Status; 17] = [
        Status::PYMEM_OK,
        Status::PYMEM_ERR_NULL_ARGUMENT,
        Status::PYMEM_ERR_INVALID_POINTER,
        Status::PYMEM_ERR_DOUBLE_FREE,
        Status::PYMEM_ERR_TYPE,
        Status::PYMEM_ERR_REFCOUNT_UNDERFLOW,
        Status::PYMEM_ERR_NO_MEMORY,
        Status::PYMEM_ERR_KEY,
        Status::PYMEM_ERR_INDEX,
        Status::PYMEM_ERR_INVALID_ARGUMENT,
        Status::PYMEM_ERR_RECURSION,
        Status::PYMEM_ERR_BUSY,
        Status::PYMEM_ERR_NO_DEVICE,
        Status::PYMEM_ERR_DEVICE,
        Status::PYMEM_ERR_OUT_OF_DEVICE_MEMORY,
        Status::PYMEM_ERR_PANIC,
        Status::PYMEM_ERR_HEAP_CORRUPTION,
    ];

    /// The name, NUL-terminated for C.
    pub fn name_with_nul(self) -> &'static [u8] {
        match self {
            Status::PYMEM_OK => b"PYMEM_OK\0",
            Status::PYMEM_ERR_NULL_ARGUMENT => b"PYMEM_ERR_NULL_ARGUMENT\0",
            Status::PYMEM_ERR_INVALID_POINTER => b"PYMEM_ERR_INVALID_POINTER\0",
            Status::PYMEM_ERR_DOUBLE_FREE => b"PYMEM_ERR_DOUBLE_FREE\0",
            Status::PYMEM_ERR_TYPE => b"PYMEM_ERR_TYPE\0",
            Status::PYMEM_ERR_REFCOUNT_UNDERFLOW => b"PYMEM_ERR_REFCOUNT_UNDERFLOW\0",
            Status::PYMEM_ERR_NO_MEMORY => b"PYMEM_ERR_NO_MEMORY\0",
            Status::PYMEM_ERR_KEY => b"PYMEM_ERR_KEY\0",
            Status::PYMEM_ERR_INDEX => b"PYMEM_ERR_INDEX\0",
            Status::PYMEM_ERR_INVALID_ARGUMENT => b"PYMEM_ERR_INVALID_ARGUMENT\0",
            Status::PYMEM_ERR_RECURSION => b"PYMEM_ERR_RECURSION\0",
            Status::PYMEM_ERR_BUSY => b"PYMEM_ERR_BUSY\0",
            Status::PYMEM_ERR_NO_DEVICE => b"PYMEM_ERR_NO_DEVICE\0",
            Status::PYMEM_ERR_DEVICE => b"PYMEM_ERR_DEVICE\0",
            Status::PYMEM_ERR_OUT_OF_DEVICE_MEMORY => b"PYMEM_ERR_OUT_OF_DEVICE_MEMORY\0",
            Status::PYMEM_ERR_PANIC => b"PYMEM_ERR_PANIC\0",
            Status::PYMEM_ERR_HEAP_CORRUPTION => b"PYMEM_ERR_HEAP_CORRUPTION\0",
        }
    }

    /// The name without the NUL.
    pub fn name(self) -> &'static str {
        let bytes = self.name_with_nul();
        std::str::from_utf8(&bytes[..bytes.len() - 1]).expect("ASCII names")
    }
}

/// The name of a status, e.g. `"PYMEM_ERR_DOUBLE_FREE"`, or
/// `"PYMEM_UNKNOWN_STATUS"` for a number that is not a status. The string is
/// static: never free it. Callable from any thread.
#[no_mangle]
pub extern "C" fn pymem_status_name(status: i32) -> *const c_char {
    let name: &'static [u8] = match Status::ALL.iter().find(|s| **s as i32 == status) {
        Some(s) => s.name_with_nul(),
        None => b"PYMEM_UNKNOWN_STATUS\0",
    };
    name.as_ptr().cast()
}
