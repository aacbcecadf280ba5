//! The one boundary every C call crosses.
//!
//! Every `extern "C"` function of this crate runs its body through
//! [`ffi_boundary!`], which:
//! 1. turns a NULL runtime into `PYMEM_ERR_NULL_ARGUMENT` (message in the
//!    calling thread's slot);
//! 2. checks that the calling thread owns the runtime — one relaxed load and
//!    one compare against the thread pointer, no locked instruction — and
//!    refuses others with `PYMEM_ERR_BUSY`, a poisoned runtime with
//!    `PYMEM_ERR_PANIC` (both on a cold path);
//! 3. runs the body under `catch_unwind`: a panic (a bug in pymem) poisons the
//!    runtime and returns `PYMEM_ERR_PANIC` instead of unwinding into C;
//! 4. records the message of a failure in the runtime's slot.
//!
//! Outside the handles the library keeps only per-thread state: the message
//! slot below (API.md, Conventions) and, in `runtime.rs`, the list of
//! runtimes a thread owns, so that its exit can detach them. Both are touched
//! only on cold paths; nothing is shared between threads.

use std::cell::RefCell;
use std::ffi::{c_char, CString};
use std::panic::{catch_unwind, AssertUnwindSafe};

use crate::runtime::{Runtime, RuntimeState};
use crate::status::Status;

/// Why a call failed: a status and its message.
#[derive(Debug)]
pub(crate) struct Failure {
    pub(crate) status: Status,
    pub(crate) message: String,
}

impl Failure {
    pub(crate) fn new(status: Status, message: impl Into<String>) -> Failure {
        Failure { status, message: message.into() }
    }
}

impl From<refcount_object::ObjError> for Failure {
    fn from(e: refcount_object::ObjError) -> Failure {
        use refcount_object::ObjError as E;
        let status = match &e {
            E::InvalidPointer(_) => Status::PYMEM_ERR_INVALID_POINTER,
            E::RefcountUnderflow(_) => Status::PYMEM_ERR_REFCOUNT_UNDERFLOW,
            E::Type(_) => Status::PYMEM_ERR_TYPE,
            E::Index(_) => Status::PYMEM_ERR_INDEX,
            E::Key(_) => Status::PYMEM_ERR_KEY,
            E::InvalidArgument(_) => Status::PYMEM_ERR_INVALID_ARGUMENT,
            E::Recursion(_) => Status::PYMEM_ERR_RECURSION,
            E::Busy(_) => Status::PYMEM_ERR_BUSY,
            E::NoMemory(_) => Status::PYMEM_ERR_NO_MEMORY,
        };
        Failure::new(status, e.to_string())
    }
}

impl From<obmalloc::AllocError> for Failure {
    fn from(e: obmalloc::AllocError) -> Failure {
        use obmalloc::AllocError as E;
        let status = match &e {
            E::NoMemory { .. } => Status::PYMEM_ERR_NO_MEMORY,
            E::InvalidPointer { .. } => Status::PYMEM_ERR_INVALID_POINTER,
            E::DoubleFree { .. } => Status::PYMEM_ERR_DOUBLE_FREE,
            E::HeapCorruption { .. } => Status::PYMEM_ERR_HEAP_CORRUPTION,
        };
        Failure::new(status, e.to_string())
    }
}

/// An identity of the calling thread that costs one instruction: on x86-64
/// Linux the thread pointer, `%fs:0`, which the ELF TLS ABI defines to hold
/// the address of the thread's own control block (unique among live threads,
/// never 0). Elsewhere, the address of a thread-local byte.
#[inline(always)]
pub(crate) fn current_thread_id() -> usize {
    #[cfg(all(target_arch = "x86_64", target_os = "linux"))]
    {
        let id: usize;
        // SAFETY: reading %fs:0 is always valid in a Linux x86-64 process: the
        // kernel sets %fs to the thread's TCB, whose first word points to itself.
        unsafe {
            std::arch::asm!("mov {}, qword ptr fs:[0]", out(reg) id,
                options(nostack, readonly, preserves_flags, pure));
        }
        id
    }
    #[cfg(not(all(target_arch = "x86_64", target_os = "linux")))]
    {
        thread_local! { static MARKER: u8 = const { 0 }; }
        MARKER.with(|m| m as *const u8 as usize)
    }
}

/// A status and its message: the last failure seen by a runtime or a thread.
pub(crate) struct ErrorSlot {
    pub(crate) status: Status,
    pub(crate) message: CString,
}

impl ErrorSlot {
    pub(crate) fn empty() -> ErrorSlot {
        ErrorSlot { status: Status::PYMEM_OK, message: CString::default() }
    }
}

thread_local! {
    /// The calling thread's last failure for calls without a usable handle.
    static THREAD_ERROR: RefCell<ErrorSlot> = RefCell::new(ErrorSlot::empty());
}

/// Makes a C string of a message, replacing any NUL byte.
pub(crate) fn c_message(message: &str) -> CString {
    CString::new(message.replace('\0', "\\0")).expect("NULs were replaced")
}

/// Records `message` in the calling thread's slot and returns `status`.
#[cold]
pub(crate) fn thread_error(status: Status, message: &str) -> Status {
    let message = c_message(message);
    // `try_with`: during the thread's exit (a host calling pymem from its own
    // thread-local destructors) the slot may be gone; then nothing is kept.
    let _ = THREAD_ERROR.try_with(|slot| *slot.borrow_mut() = ErrorSlot { status, message });
    status
}

/// The calling thread's message, valid until the next failure on this thread.
pub(crate) fn thread_error_ptr() -> *const c_char {
    THREAD_ERROR.try_with(|slot| slot.borrow().message.as_ptr()).unwrap_or(c"".as_ptr())
}

/// The calling thread's last failure status.
pub(crate) fn thread_status() -> Status {
    THREAD_ERROR.try_with(|slot| slot.borrow().status).unwrap_or(Status::PYMEM_OK)
}

#[cold]
#[inline(never)]
fn null_runtime(function: &str) -> Status {
    thread_error(Status::PYMEM_ERR_NULL_ARGUMENT, &format!("{function}: the runtime is NULL"))
}

/// Which owner test an entry point uses (see `runtime::Restriction`).
#[derive(Clone, Copy)]
pub(crate) enum Access {
    /// Ordinary calls: refused inside `clear`, `dealloc` and `traverse`.
    Full,
    /// incref/decref: also allowed inside `clear` and `dealloc`.
    Refcount,
    /// Calls that change nothing: allowed inside every callback.
    Read,
}

/// `enter` with the owner test of `access`.
///
/// # Safety
/// As `enter`.
#[inline(always)]
pub(crate) unsafe fn enter_for<'a>(rt: *const Runtime, function: &str, access: Access) -> Result<&'a Runtime, Status> {
    if rt.is_null() {
        return Err(null_runtime(function));
    }
    // SAFETY: non-null, and live per the contract.
    let rt = unsafe { &*rt };
    let owned = match access {
        Access::Full => rt.owned_by_caller(),
        Access::Refcount => rt.owned_for_refcount(),
        Access::Read => rt.owned_for_reading(),
    };
    if !owned {
        return Err(rt.refuse(function));
    }
    Ok(rt)
}

/// Checks the handle and the owner. On success the caller may use the
/// runtime's state: the calling thread owns it.
///
/// # Safety
/// `rt` is NULL or a runtime from `pymem_runtime_new` not yet freed.
#[inline(always)]
pub(crate) unsafe fn enter<'a>(rt: *const Runtime, function: &str) -> Result<&'a Runtime, Status> {
    if rt.is_null() {
        return Err(null_runtime(function));
    }
    // SAFETY: non-null, and live per the contract.
    let rt = unsafe { &*rt };
    if !rt.owned_by_caller() {
        return Err(rt.refuse(function));
    }
    Ok(rt)
}

/// Runs `body` on the owner thread's state under `catch_unwind`, recording
/// a failure's message in the runtime. Everything but the success path lives
/// in cold functions, so an entry point's fast path stays a few instructions
/// around the allocator's.
#[inline(always)]
pub(crate) fn run<T, E: Into<Failure>>(
    rt: &Runtime,
    function: &'static str,
    on_error: T,
    body: impl FnOnce(&mut RuntimeState) -> Result<T, E>,
) -> (T, Status) {
    // SAFETY: `enter` established that the calling thread owns `rt`, so no
    // other thread touches its state, and no other `&mut` to it is live:
    // calls do not nest (re-entry from host callbacks is checked by the
    // layers that make callbacks).
    let state = unsafe { rt.state_mut() };
    match catch_unwind(AssertUnwindSafe(|| body(state))) {
        Ok(Ok(value)) => (value, Status::PYMEM_OK),
        Ok(Err(error)) => (on_error, failed(rt, function, error)),
        Err(payload) => (on_error, panicked(rt, function, payload)),
    }
}

/// Records a failure in the runtime's slot, the message prefixed with the
/// function's name.
#[cold]
#[inline(never)]
fn failed<E: Into<Failure>>(rt: &Runtime, function: &str, error: E) -> Status {
    let failure = error.into();
    rt.set_error(failure.status, &format!("{function}: {}", failure.message));
    failure.status
}

/// A panic escaped a body: poison the runtime.
#[cold]
#[inline(never)]
fn panicked(rt: &Runtime, function: &str, payload: Box<dyn std::any::Any + Send>) -> Status {
    let what = payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".to_string());
    rt.poison(&format!("{function}: internal error (pymem bug), runtime poisoned: {what}"));
    Status::PYMEM_ERR_PANIC
}

/// Runs a body that needs no runtime under `catch_unwind`; a panic becomes
/// `PYMEM_ERR_PANIC` with the message in the thread's slot.
pub(crate) fn run_without_runtime<T>(function: &str, on_panic: T, body: impl FnOnce() -> T) -> T {
    match catch_unwind(AssertUnwindSafe(body)) {
        Ok(value) => value,
        Err(_) => {
            thread_error(Status::PYMEM_ERR_PANIC, &format!("{function}: internal error (pymem bug)"));
            on_panic
        }
    }
}

/// The boundary of every exported function that takes a runtime.
///
/// - `ffi_boundary!(status rt, "name", |state| body)`: `body` returns
///   `Result<(), Failure>`; the function returns a `Status`.
/// - `ffi_boundary!(pointer rt, "name", |state| body)`: `body` returns
///   `Result<*mut T, Failure>`; the function returns the pointer, NULL on
///   any failure.
macro_rules! ffi_boundary {
    (status $rt:expr, $function:expr, |$state:ident| $body:expr) => {{
        // SAFETY: the C caller passes NULL or a live runtime (API contract).
        match unsafe { $crate::boundary::enter($rt, $function) } {
            Err(status) => status,
            Ok(rt) => $crate::boundary::run(rt, $function, (), |$state| $body).1,
        }
    }};
    // Object calls: after the body, the host's pending clear/dealloc
    // callbacks run (never inside a borrow of the heap).
    (object $access:ident $rt:expr, $function:expr, |$state:ident| $body:expr) => {{
        // SAFETY: the C caller passes NULL or a live runtime (API contract).
        match unsafe { $crate::boundary::enter_for($rt, $function, $crate::boundary::Access::$access) } {
            Err(status) => status,
            Ok(rt) => {
                let status = $crate::boundary::run(rt, $function, (), |$state| {
                    $state.heap.ensure_ready().map_err($crate::boundary::Failure::from)?;
                    $body
                })
                .1;
                $crate::object::after_object_call(rt, $function);
                status
            }
        }
    }};
    (pointer $rt:expr, $function:expr, |$state:ident| $body:expr) => {{
        // SAFETY: the C caller passes NULL or a live runtime (API contract).
        match unsafe { $crate::boundary::enter($rt, $function) } {
            Err(_) => ::std::ptr::null_mut(),
            Ok(rt) => $crate::boundary::run(rt, $function, ::std::ptr::null_mut(), |$state| $body).0,
        }
    }};
}
pub(crate) use ffi_boundary;

/// Writes `value` through an out-pointer that the body checked non-null.
///
/// # Safety
/// `out` is non-null and valid for a write of `T`.
#[inline(always)]
pub(crate) unsafe fn write_out<T>(out: *mut T, value: T) {
    // SAFETY: contract.
    unsafe { out.write(value) }
}

/// Fails with `PYMEM_ERR_NULL_ARGUMENT` when a pointer argument is NULL
/// (the boundary prefixes the function's name).
#[inline(always)]
pub(crate) fn require<T>(ptr: *const T, what: &'static str) -> Result<(), Failure> {
    if ptr.is_null() {
        return Err(null_argument(what));
    }
    Ok(())
}

#[cold]
#[inline(never)]
pub(crate) fn null_argument(what: &str) -> Failure {
    Failure::new(Status::PYMEM_ERR_NULL_ARGUMENT, format!("{what} is NULL"))
}

#[cfg(test)]
mod tests {
    use std::ffi::CStr;
    use std::ptr;

    use super::*;
    use crate::alloc::{pymem_free, pymem_malloc};
    use crate::runtime::{pymem_last_error, pymem_last_status, pymem_runtime_free, pymem_runtime_new};

    fn message(rt: *const Runtime) -> String {
        // SAFETY: `rt` is live or NULL; the message is a valid C string.
        unsafe { CStr::from_ptr(pymem_last_error(rt)) }.to_string_lossy().into_owned()
    }

    #[test]
    fn a_panic_poisons_the_runtime_and_never_unwinds_into_c() {
        let mut rt: *mut Runtime = ptr::null_mut();
        // SAFETY: valid out-pointer.
        assert_eq!(unsafe { pymem_runtime_new(ptr::null(), &mut rt) }, Status::PYMEM_OK);
        // SAFETY: `rt` is live and owned by this thread.
        let p = unsafe { pymem_malloc(rt, 32) };
        assert!(!p.is_null());

        // A body that panics, as a bug in pymem would.
        // SAFETY: `rt` is live and owned by this thread.
        let r = unsafe { enter(rt, "pymem_test") }.unwrap();
        let (_, status) =
            run(r, "pymem_test", (), |_state| -> Result<(), Failure> { panic!("an internal invariant broke") });
        assert_eq!(status, Status::PYMEM_ERR_PANIC);
        assert!(message(rt).contains("an internal invariant broke"), "{}", message(rt));
        assert!(message(rt).contains("poisoned"));
        // SAFETY: live runtime.
        assert_eq!(unsafe { pymem_last_status(rt) }, Status::PYMEM_ERR_PANIC);

        // Every later call is refused with PANIC, the state untouched.
        // SAFETY: live runtime.
        assert!(unsafe { pymem_malloc(rt, 32) }.is_null());
        // SAFETY: NULL is allowed.
        assert_eq!(unsafe { pymem_last_status(ptr::null()) }, Status::PYMEM_ERR_PANIC);
        // SAFETY: live runtime; `p` is a block of it.
        assert_eq!(unsafe { pymem_free(rt, p) }, Status::PYMEM_ERR_PANIC);

        // A poisoned runtime can still be freed, from any thread.
        let addr = rt as usize;
        let status = std::thread::spawn(move || {
            // SAFETY: the runtime is live; a poisoned one may be freed anywhere.
            unsafe { pymem_runtime_free(addr as *mut Runtime) }
        })
        .join()
        .unwrap();
        assert_eq!(status, Status::PYMEM_OK);
    }

    #[test]
    fn failures_carry_the_function_name_and_status() {
        let mut rt: *mut Runtime = ptr::null_mut();
        // SAFETY: valid out-pointer.
        assert_eq!(unsafe { pymem_runtime_new(ptr::null(), &mut rt) }, Status::PYMEM_OK);
        let mut local = 0u64;
        // SAFETY: live runtime; the pointer is foreign, which pymem validates.
        let status = unsafe { pymem_free(rt, (&mut local as *mut u64).cast()) };
        assert_eq!(status, Status::PYMEM_ERR_INVALID_POINTER);
        assert!(message(rt).starts_with("pymem_free: invalid pointer"), "{}", message(rt));
        // SAFETY: live runtime.
        assert_eq!(unsafe { pymem_last_status(rt) }, Status::PYMEM_ERR_INVALID_POINTER);
        // SAFETY: live runtime.
        assert!(unsafe { pymem_malloc(rt, usize::MAX) }.is_null());
        // SAFETY: live runtime.
        assert_eq!(unsafe { pymem_last_status(rt) }, Status::PYMEM_ERR_NO_MEMORY);
        assert!(message(rt).starts_with("pymem_malloc: out of memory"), "{}", message(rt));
        // SAFETY: live runtime owned by this thread.
        assert_eq!(unsafe { pymem_runtime_free(rt) }, Status::PYMEM_OK);
    }
}
