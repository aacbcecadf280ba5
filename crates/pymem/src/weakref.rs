//! Weak references: the C entry points over the heap's registry
//! (`refcount-object/src/weakref.rs`), and the two places their callbacks
//! run.
//!
//! Rules of this section (they hold for every function below):
//! - A `pymem_weakref` is a handle the host owns: made by
//!   `pymem_weakref_new`, freed by `pymem_weakref_free` (or with its
//!   runtime). It is not an object: it has no reference count, and each
//!   `pymem_weakref_new` makes a new handle (CPython may share one
//!   callback-less `weakref.ref` between callers; a handle cannot be shared).
//! - Handles are validated in O(1) against the runtime's set of live
//!   handles: NULL gives `PYMEM_ERR_NULL_ARGUMENT`; a freed handle (double
//!   free included), another runtime's, or any other pointer gives
//!   `PYMEM_ERR_INVALID_POINTER`, and is never read — until a later
//!   `pymem_weakref_new` hands out the same address, the limit of any
//!   address-based check. A handle used after its runtime was freed is
//!   undefined behaviour, as the runtime itself is.
//! - Weak references are allowed to instances of host types, modules and
//!   functions; int, float, str, tuple, list, dict (and None, bool) are
//!   refused with `PYMEM_ERR_TYPE` and CPython's message, "cannot create
//!   weak reference to 'int' object".
//! - Thread rule: the runtime's owner thread only (`PYMEM_ERR_BUSY`); not
//!   callable inside `traverse`, `clear` or `dealloc` callbacks (BUSY).
//!
//! Callbacks (`pymem_weakref_callback`) run once per weak reference, when its
//! referent dies, with the runtime usable (anything but `pymem_runtime_free`,
//! which answers BUSY), never with a borrow of the heap alive:
//! - Death by reference counting: the heap clears the referent's weak
//!   references at once (`pymem_weakref_get` gives None from then on) and
//!   queues the callbacks; they run when the outermost call returns
//!   (`after_object_call`, after the host's pending `clear`/`dealloc`
//!   callbacks), never inside `clear`/`dealloc`/`traverse` callbacks, in a
//!   loop that calls made from inside a callback feed but never nest (a
//!   chain of a million objects whose callbacks drop the next one needs no
//!   stack). CPython runs them inside the dying object's deallocation; here
//!   they run after the call that dropped the last reference, before it
//!   returns to the host.
//! - Death in a collection ([`handle_weakrefs`], a phase of
//!   `gc::run_collection` between finding the garbage and the finalizers,
//!   as CPython's `handle_weakrefs`): every weak reference to a garbage
//!   object is cleared before anything is finalized or freed, then the
//!   callbacks run. CPython calls a callback only when the weakref object
//!   itself is not part of the garbage (a weakref that dies with its
//!   referent must not run code that could see the garbage). A
//!   `pymem_weakref` is a host handle, not an object: no object references
//!   it, so it can never be garbage; it is alive exactly until the host
//!   frees it. So every handle not freed gets its callback, and a handle
//!   freed before the callback runs never gets it.
//! - `pymem_runtime_free`: callbacks do not run (queued ones are dropped),
//!   as at a process exit; the handles the host did not free are freed.

use std::ffi::c_void;
use std::panic::{catch_unwind, AssertUnwindSafe};

use gc_generations::Collection;

use crate::boundary::{ffi_boundary, require, write_out, Failure};
use crate::object::Object;
use crate::runtime::Runtime;
use crate::status::Status;

/// A weak reference (opaque), owned by the host: from `pymem_weakref_new`,
/// freed with `pymem_weakref_free` or with its runtime.
pub struct WeakRef {
    _private: [u8; 0],
}

/// Called once when the referent of `wr` dies (by reference counting or in
/// a collection), after `wr` was cleared: `pymem_weakref_get(rt, wr, ...)`
/// gives None inside it. It may call anything but `pymem_runtime_free`,
/// including `pymem_weakref_free(rt, wr)`. Not called when `wr` was freed
/// first, nor at `pymem_runtime_free`.
pub type WeakRefCallback = Option<unsafe extern "C" fn(rt: *mut Runtime, wr: *mut WeakRef, userdata: *mut c_void)>;

/// A validated weak reference handle: NULL is `PYMEM_ERR_NULL_ARGUMENT`,
/// anything not live here `PYMEM_ERR_INVALID_POINTER`.
fn handle_arg(heap: &refcount_object::Heap, wr: *mut WeakRef) -> Result<*const u8, Failure> {
    require(wr, "wr")?;
    heap.weakref_check(wr as *const u8)?;
    Ok(wr as *const u8)
}

/// Makes a weak reference to `o` and stores it in `*out` (owned by the
/// caller: free it with `pymem_weakref_free`; the runtime frees those left).
/// `o` is not counted: the weak reference does not keep it alive. `cb` (may
/// be NULL) is called once with `userdata` when `o` dies (see
/// `pymem_weakref_callback`). Only instances of host types, modules and
/// functions: others give `PYMEM_ERR_TYPE` ("cannot create weak reference
/// to 'int' object", CPython's message). Each call makes a new handle. The
/// handle is valid until it is freed or its runtime is (using it after
/// `pymem_runtime_free` is undefined behaviour). Owner thread only; not
/// inside `traverse`, `clear` or `dealloc` callbacks (`PYMEM_ERR_BUSY`).
///
/// # Safety
/// `rt` is NULL or a live runtime; `o` may be any value (validated); `out`
/// is NULL (an error) or writable.
#[no_mangle]
pub unsafe extern "C" fn pymem_weakref_new(
    rt: *mut Runtime,
    o: *mut Object,
    cb: WeakRefCallback,
    userdata: *mut c_void,
    out: *mut *mut WeakRef,
) -> Status {
    ffi_boundary!(object Full rt, "pymem_weakref_new", |state| {
        let o = crate::object::arg_obj(&state.heap, o)?;
        require(out, "out")?;
        let callback = cb.map_or(0, |f| f as usize);
        let wr = state.heap.weakref_new(o, callback, userdata as usize)?;
        // SAFETY: checked non-null.
        unsafe { write_out(out, wr.as_ptr() as *mut WeakRef) };
        Ok::<(), Failure>(())
    })
}

/// `wr()`: a NEW reference to the referent in `*out` while it lives, None
/// (immortal) once it died (it is None already inside the weak reference
/// callbacks, and from the start of a collection that finds the referent
/// to be garbage). NULL `wr` gives `PYMEM_ERR_NULL_ARGUMENT`; a freed or
/// foreign one `PYMEM_ERR_INVALID_POINTER`. Owner thread only; not inside
/// `traverse`, `clear` or `dealloc` callbacks (`PYMEM_ERR_BUSY`).
///
/// # Safety
/// `rt` is NULL or a live runtime; `wr` may be any value (validated); `out`
/// is NULL (an error) or writable.
#[no_mangle]
pub unsafe extern "C" fn pymem_weakref_get(rt: *mut Runtime, wr: *mut WeakRef, out: *mut *mut Object) -> Status {
    ffi_boundary!(object Full rt, "pymem_weakref_get", |state| {
        let wr = handle_arg(&state.heap, wr)?;
        require(out, "out")?;
        let o = state.heap.weakref_get(wr)?;
        // SAFETY: checked non-null.
        unsafe { write_out(out, o.as_ptr() as *mut Object) };
        Ok::<(), Failure>(())
    })
}

/// Frees a weak reference; its callback, if not run yet, never runs. NULL
/// is fine (`PYMEM_OK`). A freed (double free) or foreign `wr` gives
/// `PYMEM_ERR_INVALID_POINTER` and changes nothing. The referent is not
/// affected. May be called inside the handle's own callback. Handles not
/// freed are freed by `pymem_runtime_free`. Owner thread only; not inside
/// `traverse`, `clear` or `dealloc` callbacks (`PYMEM_ERR_BUSY`).
///
/// # Safety
/// `rt` is NULL or a live runtime; `wr` may be any value (validated).
#[no_mangle]
pub unsafe extern "C" fn pymem_weakref_free(rt: *mut Runtime, wr: *mut WeakRef) -> Status {
    ffi_boundary!(object Full rt, "pymem_weakref_free", |state| {
        if wr.is_null() {
            return Ok(());
        }
        state.heap.weakref_free(wr as *const u8)?;
        Ok::<(), Failure>(())
    })
}

/// Runs the queued weak reference callbacks, unless that cannot be done
/// here: inside a restricted callback (`clear`, `dealloc`, `traverse`),
/// while the host's `clear`/`dealloc` queue is being run, or while a loop
/// running weakref callbacks is already on the stack (it takes the new ones).
/// Called by `after_object_call`. A panic here poisons the runtime.
pub(crate) fn pump_callbacks(rt: &Runtime, function: &'static str) {
    // SAFETY: the owner thread, after the body: no borrow of the state lives.
    let heap = &unsafe { rt.state_mut() }.heap;
    if !heap.has_due_weakref_callbacks()
        || heap.weakref_callbacks_running()
        || rt.pumping().get()
        || !rt.owned_by_caller()
    {
        return;
    }
    if catch_unwind(AssertUnwindSafe(|| run_callbacks(rt))).is_err() {
        rt.poison(&format!("{function}: internal error (pymem bug) while running weak reference callbacks"));
    }
}

/// Runs queued callbacks until the queue is empty (callbacks that drop
/// other referents feed it). The "running" flag is restored afterwards, so
/// that a collection asked for inside a callback can run its own phase.
fn run_callbacks(rt: &Runtime) {
    let rt_ptr = rt as *const Runtime as *mut Runtime;
    // SAFETY: the owner thread; this borrow ends at once.
    let was_running = unsafe { rt.state_mut() }.heap.weakref_callbacks_running();
    // SAFETY: as above.
    unsafe { rt.state_mut() }.heap.set_weakref_callbacks_running(true);
    while let Some(due) = next_due(rt) {
        if due.callback == 0 {
            continue;
        }
        rt.in_callback(None, || {
            // SAFETY: stored from a non-NULL `pymem_weakref_callback`.
            let f: unsafe extern "C" fn(*mut Runtime, *mut WeakRef, *mut c_void) =
                unsafe { std::mem::transmute(due.callback) };
            // SAFETY: the host's function, called as its C type promises,
            // with its live handle and userdata.
            unsafe { f(rt_ptr, due.handle.as_ptr() as *mut WeakRef, due.userdata as *mut c_void) };
        });
    }
    // SAFETY: the owner thread; the callbacks have returned.
    unsafe { rt.state_mut() }.heap.set_weakref_callbacks_running(was_running);
}

/// The next queued callback; the borrow of the heap ends on return.
fn next_due(rt: &Runtime) -> Option<refcount_object::DueCallback> {
    // SAFETY: the owner thread; no other borrow of the state is alive.
    unsafe { rt.state_mut() }.heap.take_due_weakref_callback()
}

/// The collector's weak-reference phase (CPython's `handle_weakrefs`), run
/// by `gc::run_collection` after the garbage is found and before the
/// finalizers: every weak reference to a garbage object is cleared, then
/// the callbacks run (with no borrow of the heap alive; they may call
/// anything but `pymem_runtime_free`, and a collection they ask for returns
/// 0). Callbacks queued before the collection run here too. Returns whether
/// any ran (host code, which may have resurrected garbage).
pub(crate) fn handle_weakrefs(rt: &Runtime, c: &Collection) -> bool {
    {
        // SAFETY: the owner thread; this borrow ends before any host code.
        let st = unsafe { rt.state_mut() };
        // No weak references at all (the common case): no walk of the
        // garbage, no scratch list.
        if st.heap.has_weakly_referenced_objects() {
            for o in st.gc.collector.garbage_iter(c) {
                st.heap.clear_weakrefs(o);
            }
        }
        if !st.heap.has_due_weakref_callbacks() {
            return false;
        }
    }
    run_callbacks(rt);
    true
}
