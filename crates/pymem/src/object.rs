//! Objects and reference counts: the C entry points over `refcount-object`.
//!
//! Rules of this section (they hold for every function below):
//! - Every object handed out through `pymem_object **out` is a NEW reference
//!   the caller owns and must `pymem_decref`. Calls that store an object
//!   (list append/set/insert, dict set, setattr, tuple_new) take their own
//!   reference and never steal the caller's.
//! - Every object argument is validated in O(1): NULL gives
//!   `PYMEM_ERR_NULL_ARGUMENT`; anything that is not a live object of this
//!   runtime (freed, on a free list, another runtime's, raw memory, a
//!   pointer into an object) gives `PYMEM_ERR_INVALID_POINTER`.
//! - Host callbacks run with the runtime restricted: `traverse` may call
//!   nothing; `clear` and `dealloc` may call `pymem_incref`/`pymem_decref`
//!   (and `pymem_instance_payload`, `pymem_type_name`, which change
//!   nothing); `finalize` and native functions anything but
//!   `pymem_runtime_free`. Other calls get `PYMEM_ERR_BUSY`.
//! - Thread rule: the runtime's owner thread only (`PYMEM_ERR_BUSY`).
//!
//! The host's `clear`/`dealloc` callbacks are never called while the heap
//! is borrowed: an instance whose count drops to zero is queued by the heap,
//! and `after_object_call` runs the queue when the outermost call returns
//! (a loop, so a chain of a million host objects needs no stack).

use std::ffi::{c_char, c_int, c_void, CStr};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::ptr;

use refcount_object::{Heap, HostHooks, HostTypeSpec, Obj, SimpleDecref, TypeInfo, IMMORTAL_REFCNT};

use crate::boundary::{c_message, enter_for, ffi_boundary, require, run, write_out, Access, Failure};
use crate::runtime::{Restriction, Runtime};
use crate::status::Status;

/// An object (opaque). Its address is its identity (`pymem_id`).
pub struct Object {
    _private: [u8; 0],
}

/// A host-defined type (opaque), from `pymem_type_new`; lives as long as
/// its runtime.
pub struct Type {
    _private: [u8; 0],
}

/// The reference count immortal objects report (CPython 3.12's value):
/// None, True, False, the small ints, the empty tuple and string, and
/// one-character ASCII strings. incref/decref do nothing on them.
pub const PYMEM_IMMORTAL_REFCNT: u64 = 4294967295;

/// The payload of an instance of a host type starts this many bytes after
/// the object pointer: `(char *)o + PYMEM_INSTANCE_PAYLOAD_OFFSET` is what
/// `pymem_instance_payload` returns, without its validation — for hot host
/// callbacks (a `traverse` visits every object of a collection). Fixed until
/// the ABI changes (0.x minor versions).
pub const PYMEM_INSTANCE_PAYLOAD_OFFSET: usize = 48;

/// Called by `traverse` for each child; a non-zero return stops the
/// traversal (and `traverse` should return it). `child` is borrowed.
pub type VisitFn = Option<unsafe extern "C" fn(child: *mut Object, arg: *mut c_void) -> c_int>;

/// A host type's callbacks; see `pymem_type_spec`.
pub type TraverseFn =
    Option<unsafe extern "C" fn(object: *mut Object, visit: VisitFn, arg: *mut c_void, userdata: *mut c_void) -> c_int>;
pub type ClearFn = Option<unsafe extern "C" fn(rt: *mut Runtime, object: *mut Object, userdata: *mut c_void)>;
pub type FinalizeFn = Option<unsafe extern "C" fn(rt: *mut Runtime, object: *mut Object, userdata: *mut c_void)>;
pub type DeallocFn = Option<unsafe extern "C" fn(object: *mut Object, payload: *mut c_void, userdata: *mut c_void)>;

/// A native function (`pymem_function_new`, called by `pymem_call`): reads
/// `nargs` borrowed `args`, stores a NEW reference in `*result` (or leaves
/// it NULL for None) and returns `PYMEM_OK`, or returns an error status,
/// which `pymem_call` passes on.
pub type NativeFn = Option<
    unsafe extern "C" fn(
        rt: *mut Runtime,
        args: *const *mut Object,
        nargs: usize,
        result: *mut *mut Object,
        userdata: *mut c_void,
    ) -> Status,
>;

/// What a host type is made of. Fill it with `pymem_type_spec_init`.
#[repr(C)]
pub struct TypeSpec {
    /// The type's name, NUL-terminated UTF-8 (copied).
    pub name: *const c_char,
    /// Host bytes per instance (`pymem_instance_payload`), zeroed at creation.
    pub payload_size: usize,
    /// Reports each child reference held in the payload (NULL: none).
    pub traverse: TraverseFn,
    /// Drops the payload's child references (decref). Runs before `dealloc`
    /// when an instance dies, and when the collector breaks a cycle.
    pub clear: ClearFn,
    /// PEP 442 finalizer, at most once per object (the collector's, issue 4).
    pub finalize: FinalizeFn,
    /// Releases host resources of the payload; runs when an instance is
    /// freed, and for every live instance at `pymem_runtime_free`.
    pub dealloc: DeallocFn,
    /// Passed to every callback.
    pub userdata: *mut c_void,
    /// CPython's `__slots__`: `nslots` attribute names (NUL-terminated
    /// UTF-8, copied) that every instance has at a fixed place, and the
    /// only names `pymem_setattr` accepts on it (`PYMEM_ERR_KEY` otherwise).
    /// The collector traverses them itself: no callback is needed for
    /// references kept there. NULL and 0: any names.
    pub slots: *const *const c_char,
    pub nslots: usize,
}

/// Sets every field of `*spec` to its default (NULL, 0). NULL is ignored.
///
/// # Safety
/// `spec` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn pymem_type_spec_init(spec: *mut TypeSpec) {
    if !spec.is_null() {
        // SAFETY: non-null and writable per the contract.
        unsafe {
            spec.write(TypeSpec {
                name: ptr::null(),
                payload_size: 0,
                traverse: None,
                clear: None,
                finalize: None,
                dealloc: None,
                userdata: ptr::null_mut(),
                slots: ptr::null(),
                nslots: 0,
            })
        };
    }
}

// ----------------------------------------------------------------------
// helpers

/// A validated object argument.
#[inline(always)]
pub(crate) fn arg(heap: &Heap, p: *mut Object, what: &str) -> Result<Obj, Failure> {
    match heap.lookup(p as *const u8) {
        Some(o) => Ok(o),
        None => Err(bad_arg(heap, p, what)),
    }
}

#[cold]
#[inline(never)]
fn bad_arg(heap: &Heap, p: *mut Object, what: &str) -> Failure {
    if p.is_null() {
        return null(what);
    }
    match heap.check(p as *const u8) {
        Err(e) => Failure::from(e),
        Ok(_) => Failure::new(Status::PYMEM_ERR_INVALID_POINTER, format!("{what} is not a live object")),
    }
}

/// A validated object argument named "o" (for the other sections).
pub(crate) fn arg_obj(heap: &Heap, p: *mut Object) -> Result<Obj, Failure> {
    arg(heap, p, "o")
}

/// An object argument that may also be the instance whose `clear` or
/// `dealloc` callback is running: dead to every other call, its payload and
/// type are still there until the callback returns.
fn arg_or_dying(heap: &Heap, o: *mut Object) -> Result<Obj, Failure> {
    if !o.is_null() && heap.is_being_deallocated(o as *const u8) {
        // SAFETY: an instance being deallocated is still an allocated block.
        return Ok(unsafe { Obj::new_unchecked(o as *mut refcount_object::ObjHeader) });
    }
    arg(heap, o, "o")
}

#[cold]
fn null(what: &str) -> Failure {
    Failure::new(Status::PYMEM_ERR_NULL_ARGUMENT, format!("{what} is NULL"))
}

/// Writes a new reference through a checked out-pointer.
#[inline(always)]
pub(crate) fn give(out: *mut *mut Object, o: Obj) {
    // SAFETY: callers checked `out` non-null; writable per the contract.
    unsafe { write_out(out, o.as_ptr() as *mut Object) };
}

/// A NUL-terminated name argument as bytes (UTF-8 checked).
pub(crate) fn name_arg<'a>(name: *const c_char, what: &str) -> Result<&'a [u8], Failure> {
    if name.is_null() {
        return Err(null(what));
    }
    // SAFETY: a NUL-terminated string per the contract.
    let bytes = unsafe { CStr::from_ptr(name) }.to_bytes();
    std::str::from_utf8(bytes)
        .map_err(|e| Failure::new(Status::PYMEM_ERR_INVALID_ARGUMENT, format!("{what} is not valid UTF-8: {e}")))?;
    Ok(bytes)
}

/// Runs after every object call: the host's pending `clear`/`dealloc`
/// callbacks, unless a loop running them is already on the stack (then it
/// takes the new ones). A panic here poisons the runtime.
#[inline(always)]
pub(crate) fn after_object_call(rt: &Runtime, function: &'static str) {
    // SAFETY: the owner thread, after the body: no borrow of the state lives.
    let heap = &unsafe { rt.state_mut() }.heap;
    if heap.has_pending_host_dealloc() || heap.gc.collection_due || heap.has_due_weakref_callbacks() {
        after_object_call_slow(rt, function);
    }
}

/// The host's pending `clear`/`dealloc` callbacks and weak reference
/// callbacks, then an automatic collection if one is due (and its own
/// pending callbacks).
#[cold]
#[inline(never)]
fn after_object_call_slow(rt: &Runtime, function: &'static str) {
    pump_host_deallocs(rt, function);
    crate::weakref::pump_callbacks(rt, function);
    // SAFETY: the owner thread; no borrow lives.
    if unsafe { rt.state_mut() }.heap.gc.collection_due && !rt.pumping().get() {
        if catch_unwind(AssertUnwindSafe(|| crate::gc::collect_if_due(rt))).is_err() {
            rt.poison(&format!("{function}: internal error (pymem bug) during an automatic collection"));
            return;
        }
        pump_host_deallocs(rt, function);
        crate::weakref::pump_callbacks(rt, function);
    }
}

fn pump_host_deallocs(rt: &Runtime, function: &'static str) {
    // SAFETY: the owner thread; no borrow lives.
    if rt.pumping().get() || !unsafe { rt.state_mut() }.heap.has_pending_host_dealloc() {
        return;
    }
    rt.pumping().set(true);
    let outcome = catch_unwind(AssertUnwindSafe(|| run_host_deallocs(rt)));
    rt.pumping().set(false);
    if outcome.is_err() {
        rt.poison(&format!("{function}: internal error (pymem bug) while freeing host objects"));
    }
}

fn run_host_deallocs(rt: &Runtime) {
    let rt_ptr = rt as *const Runtime as *mut Runtime;
    loop {
        let (o, hooks, payload, finalize) = {
            // SAFETY: the owner thread; this borrow ends before the callbacks.
            let heap = &mut unsafe { rt.state_mut() }.heap;
            let Some(o) = heap.take_pending_host_dealloc() else { break };
            let finalize = heap.begin_finalize_on_death(o);
            (o, heap.type_of(o).hooks(), heap.payload_ptr(o), finalize)
        };
        if finalize {
            // PEP 442: the finalizer runs on reference-count death too, once,
            // with the object alive; it may call anything but runtime_free.
            rt.in_callback(None, || {
                // SAFETY: stored from a non-NULL `pymem_finalize_fn`.
                let f: unsafe extern "C" fn(*mut Runtime, *mut Object, *mut c_void) =
                    unsafe { std::mem::transmute(hooks.finalize) };
                // SAFETY: the host's function, called as its C type promises.
                unsafe { f(rt_ptr, o.as_ptr() as *mut Object, hooks.userdata as *mut c_void) };
            });
            // SAFETY: the owner thread; the finalizer has returned.
            if unsafe { rt.state_mut() }.heap.end_finalize_on_death(o) {
                continue; // resurrected
            }
        }
        rt.in_callback(Some(Restriction::RefcountOnly), || {
            // SAFETY: the hooks are the host's own function pointers, stored
            // from `pymem_type_spec` (or 0); called with the arguments their
            // C signatures promise.
            unsafe { call_clear_and_dealloc(rt_ptr, o, hooks, payload) };
        });
        // SAFETY: the owner thread; the callbacks have returned.
        unsafe { rt.state_mut() }.heap.finish_host_dealloc(o);
    }
}

/// # Safety
/// `hooks` hold host function pointers of the C types of `pymem_type_spec`.
unsafe fn call_clear_and_dealloc(rt: *mut Runtime, o: Obj, hooks: HostHooks, payload: *mut u8) {
    let this = o.as_ptr() as *mut Object;
    let userdata = hooks.userdata as *mut c_void;
    // SAFETY: contract; a stored 0 means "none" and is skipped.
    unsafe {
        if hooks.clear != 0 {
            let clear: unsafe extern "C" fn(*mut Runtime, *mut Object, *mut c_void) = std::mem::transmute(hooks.clear);
            clear(rt, this, userdata);
        }
        if hooks.dealloc != 0 {
            let dealloc: unsafe extern "C" fn(*mut Object, *mut c_void, *mut c_void) =
                std::mem::transmute(hooks.dealloc);
            dealloc(this, payload as *mut c_void, userdata);
        }
    }
}

/// At `pymem_runtime_free`: every live host instance with a `dealloc`
/// callback gets it (host resources are released); `finalize` and `clear`
/// do not run, as at process exit.
pub(crate) fn teardown_host_objects(rt: &Runtime) {
    // Decrefs made by the `dealloc` callbacks only queue what they free:
    // every instance on the list below gets its `dealloc` exactly once, here,
    // and no `clear` runs (the heap is dropped right after).
    rt.pumping().set(true);
    let rt_ptr = rt as *const Runtime as *mut Runtime;
    let jobs: Vec<(Obj, HostHooks, *mut u8)> = {
        // SAFETY: the owner thread; no borrow lives.
        let heap = &unsafe { rt.state_mut() }.heap;
        heap.host_instances_for_teardown()
            .into_iter()
            .map(|o| (o, heap.type_of(o).hooks(), heap.payload_ptr(o)))
            .collect()
    };
    for (o, hooks, payload) in jobs {
        let only_dealloc = HostHooks { clear: 0, ..hooks };
        rt.in_callback(Some(Restriction::RefcountOnly), || {
            // SAFETY: as in `run_host_deallocs`.
            unsafe { call_clear_and_dealloc(rt_ptr, o, only_dealloc, payload) };
        });
    }
}

// ----------------------------------------------------------------------
// reference counts and identity

/// Takes a reference to `o`. Immortal objects ignore it. Allowed inside
/// `clear` and `dealloc` callbacks.
///
/// # Safety
/// `rt` is NULL or a live runtime; `o` may be any value (validated).
#[no_mangle]
pub unsafe extern "C" fn pymem_incref(rt: *mut Runtime, o: *mut Object) -> Status {
    // The fast path: the owner's call on an object the validation cache
    // knows. It cannot fail or panic and frees nothing, so it needs neither
    // the boundary's unwinding guard nor the after-call work; everything
    // else takes the full boundary.
    // SAFETY: the C caller passes NULL or a live runtime (API contract).
    if let Some(r) = unsafe { rt.as_ref() } {
        // SAFETY: the caller owns the runtime: no other borrow of its state.
        if r.owned_for_refcount() {
            // SAFETY: the caller owns the runtime: no other borrow of its state.
            if unsafe { r.state_mut() }.heap.incref_if_cached(o as *const u8) {
                return Status::PYMEM_OK;
            }
            // SAFETY: as this function's; the caller owns the runtime.
            return unsafe { incref_uncached(rt, o) };
        }
    }
    // SAFETY: as this function's.
    unsafe { incref_checked(rt, o) }
}

/// `pymem_incref` of an object the validation cache does not know, by its
/// owner: validated by the allocator's fast lookup when it can, without the
/// boundary; else through it.
///
/// # Safety
/// As `pymem_incref`; `rt` is a live runtime the caller owns.
#[inline(never)]
unsafe fn incref_uncached(rt: *mut Runtime, o: *mut Object) -> Status {
    // SAFETY: contract: a live runtime the caller owns.
    if unsafe { (*rt).state_mut() }.heap.incref_uncached_if_simple(o as *const u8) {
        return Status::PYMEM_OK;
    }
    // SAFETY: as this function's.
    unsafe { incref_checked(rt, o) }
}

/// `pymem_incref` through the boundary, with full validation.
///
/// # Safety
/// As `pymem_incref`.
#[inline(never)]
unsafe fn incref_checked(rt: *mut Runtime, o: *mut Object) -> Status {
    ffi_boundary!(object Refcount rt, "pymem_incref", |state| {
        let o = arg(&state.heap, o, "o")?;
        state.heap.incref(o);
        Ok::<(), Failure>(())
    })
}

/// Drops a reference to `o`; the last one frees it (host `clear`/`dealloc`
/// callbacks run, then what only it kept alive is freed, iteratively).
/// Immortal objects ignore it. An object whose count is already 0 (one
/// waiting on a free list) gives `PYMEM_ERR_REFCOUNT_UNDERFLOW`. Allowed
/// inside `clear` and `dealloc` callbacks.
///
/// # Safety
/// `rt` is NULL or a live runtime; `o` may be any value (validated).
#[no_mangle]
pub unsafe extern "C" fn pymem_decref(rt: *mut Runtime, o: *mut Object) -> Status {
    // The fast path, as pymem_incref's: a known object that survives the
    // decref (or is immortal), or an int or a float that dies (nothing to
    // follow up). Any other freeing goes through the full boundary, whose
    // after-call work runs what the freeing queued.
    // SAFETY: the C caller passes NULL or a live runtime (API contract).
    if let Some(r) = unsafe { rt.as_ref() } {
        // SAFETY: the caller owns the runtime: no other borrow of its state.
        if r.owned_for_refcount() {
            // SAFETY: the caller owns the runtime: no other borrow of its state.
            match unsafe { r.state_mut() }.heap.decref_if_simple(o as *const u8) {
                SimpleDecref::Done => return Status::PYMEM_OK,
                // SAFETY: as this function's.
                SimpleDecref::LastReferenceToList => return unsafe { decref_list(rt, o) },
                // SAFETY: as this function's; the caller owns the runtime.
                SimpleDecref::NotCached => return unsafe { decref_uncached(rt, o) },
                SimpleDecref::NotDone => {}
            }
        }
    }
    // SAFETY: as this function's.
    unsafe { decref_checked(rt, o) }
}

/// `pymem_decref` of an object the validation cache does not know, by its
/// owner: the same simple cases, validated by the allocator's fast lookup
/// (`Heap::decref_uncached_if_simple`); anything else through the boundary.
///
/// # Safety
/// As `pymem_decref`; `rt` is a live runtime the caller owns.
#[inline(never)]
unsafe fn decref_uncached(rt: *mut Runtime, o: *mut Object) -> Status {
    // SAFETY: contract: a live runtime the caller owns.
    match unsafe { (*rt).state_mut() }.heap.decref_uncached_if_simple(o as *const u8) {
        SimpleDecref::Done => Status::PYMEM_OK,
        // SAFETY: as this function's.
        SimpleDecref::LastReferenceToList => unsafe { decref_list(rt, o) },
        // SAFETY: as this function's.
        SimpleDecref::NotDone | SimpleDecref::NotCached => unsafe { decref_checked(rt, o) },
    }
}

/// `pymem_decref` of the last reference to a list: one more case without
/// the boundary, the death of a short list whose items all survive it (a
/// list built, used and dropped), which keeps its memory for the next one
/// (free list, spare item array); any other through the boundary.
///
/// # Safety
/// As `pymem_decref`; the caller owns the runtime.
#[inline(never)]
unsafe fn decref_list(rt: *mut Runtime, o: *mut Object) -> Status {
    // SAFETY: contract: a live runtime the caller owns.
    if unsafe { (*rt).state_mut() }.heap.decref_list_if_quiet(o as *const u8) {
        return Status::PYMEM_OK;
    }
    // SAFETY: as this function's.
    unsafe { decref_checked(rt, o) }
}

/// `pymem_decref` through the boundary, with full validation.
///
/// # Safety
/// As `pymem_decref`.
#[inline(never)]
unsafe fn decref_checked(rt: *mut Runtime, o: *mut Object) -> Status {
    ffi_boundary!(object Refcount rt, "pymem_decref", |state| {
        if state.heap.decref_validated(o as *const u8) {
            Ok(())
        } else {
            Err(decref_refused(&state.heap, o))
        }
    })
}

#[cold]
#[inline(never)]
fn decref_refused(heap: &Heap, o: *mut Object) -> Failure {
    if !o.is_null() && heap.is_dead_object(o as *const u8) {
        return Failure::new(
            Status::PYMEM_ERR_REFCOUNT_UNDERFLOW,
            format!("decref of {o:p}, whose reference count is already 0 (a freed object waiting on a free list)"),
        );
    }
    match arg(heap, o, "o") {
        Err(f) => f,
        Ok(_) => Failure::new(Status::PYMEM_ERR_INVALID_POINTER, "not a live object"),
    }
}

/// The exact reference count of `o` (`PYMEM_IMMORTAL_REFCNT` for immortal
/// objects). CPython's `sys.getrefcount(x)` shows this + 1 (its argument).
///
/// # Safety
/// `rt` is NULL or a live runtime; `out` is NULL (an error) or writable.
#[no_mangle]
pub unsafe extern "C" fn pymem_refcount(rt: *mut Runtime, o: *mut Object, out: *mut isize) -> Status {
    ffi_boundary!(object Read rt, "pymem_refcount", |state| {
        let o = arg(&state.heap, o, "o")?;
        require(out, "out")?;
        let n = state.heap.refcount(o);
        let n = if n == IMMORTAL_REFCNT { PYMEM_IMMORTAL_REFCNT as isize } else { n as isize };
        // SAFETY: checked non-null.
        unsafe { write_out(out, n) };
        Ok::<(), Failure>(())
    })
}

/// The identity of an object: its address, as CPython's `id()`. NULL gives 0.
/// Needs no runtime; callable from any thread.
#[no_mangle]
pub extern "C" fn pymem_id(o: *const Object) -> usize {
    o as usize
}

/// 1 if `a` and `b` are the same object (Python's `is`), else 0.
#[no_mangle]
pub extern "C" fn pymem_is(a: *const Object, b: *const Object) -> c_int {
    (a == b) as c_int
}

// ----------------------------------------------------------------------
// None, bool, int, float, str

/// None (immortal).
///
/// # Safety
/// `rt` is NULL or a live runtime; `out` is NULL (an error) or writable.
#[no_mangle]
pub unsafe extern "C" fn pymem_none(rt: *mut Runtime, out: *mut *mut Object) -> Status {
    ffi_boundary!(object Full rt, "pymem_none", |state| {
        require(out, "out")?;
        give(out, state.heap.none());
        Ok::<(), Failure>(())
    })
}

/// True when `v` is non-zero, else False (both immortal).
///
/// # Safety
/// `rt` is NULL or a live runtime; `out` is NULL (an error) or writable.
#[no_mangle]
pub unsafe extern "C" fn pymem_bool(rt: *mut Runtime, v: c_int, out: *mut *mut Object) -> Status {
    ffi_boundary!(object Full rt, "pymem_bool", |state| {
        require(out, "out")?;
        give(out, state.heap.bool_obj(v != 0));
        Ok::<(), Failure>(())
    })
}

/// An int. Values in the small-int range (-5..=256 by default) are cached
/// immortal objects: two calls give the same `pymem_id`.
///
/// # Safety
/// `rt` is NULL or a live runtime; `out` is NULL (an error) or writable.
#[no_mangle]
pub unsafe extern "C" fn pymem_int_new(rt: *mut Runtime, v: i64, out: *mut *mut Object) -> Status {
    // The fast path: a small int or a block from a pool in use; ints are
    // never tracked, so nothing follows the call.
    // SAFETY: as this function's.
    if unsafe { construct_fast(rt, out, |heap| heap.int_new_if_fast(v)) }.is_some() {
        return Status::PYMEM_OK;
    }
    // SAFETY: as this function's.
    unsafe { int_new_checked(rt, v, out) }
}

/// The fast path of a constructor (see `pymem_incref`'s): the owner's call
/// with an out-pointer, and `make` builds the object with no error path
/// (`Heap::*_if_fast`). Writes `*out` and returns the runtime when it did;
/// `None`, with nothing changed, sends the caller to its full path.
///
/// # Safety
/// `rt` is NULL or a live runtime; `out` is NULL or writable.
#[inline(always)]
unsafe fn construct_fast<'a>(
    rt: *mut Runtime,
    out: *mut *mut Object,
    make: impl FnOnce(&mut Heap) -> Option<Obj>,
) -> Option<&'a Runtime> {
    // SAFETY: contract.
    let r = unsafe { rt.as_ref() }?;
    if !r.owned_by_caller() || out.is_null() {
        return None;
    }
    // SAFETY: the caller owns the runtime: no other borrow of its state.
    let o = make(&mut unsafe { r.state_mut() }.heap)?;
    // SAFETY: `out` is non-null and writable (contract).
    unsafe { *out = o.as_ptr().cast() };
    Some(r)
}

/// `pymem_int_new` through the boundary.
///
/// # Safety
/// As `pymem_int_new`.
#[inline(never)]
unsafe fn int_new_checked(rt: *mut Runtime, v: i64, out: *mut *mut Object) -> Status {
    ffi_boundary!(object Full rt, "pymem_int_new", |state| {
        require(out, "out")?;
        give(out, state.heap.int_new(v)?);
        Ok::<(), Failure>(())
    })
}

/// The value of an int (or bool). Another type: `PYMEM_ERR_TYPE`.
///
/// # Safety
/// `rt` is NULL or a live runtime; `out` is NULL (an error) or writable.
#[no_mangle]
pub unsafe extern "C" fn pymem_int_value(rt: *mut Runtime, o: *mut Object, out: *mut i64) -> Status {
    ffi_boundary!(object Read rt, "pymem_int_value", |state| {
        let o = arg(&state.heap, o, "o")?;
        require(out, "out")?;
        let v = state.heap.int_value(o)?;
        // SAFETY: checked non-null.
        unsafe { write_out(out, v) };
        Ok::<(), Failure>(())
    })
}

/// A float (reused from the float free list when it has one).
///
/// # Safety
/// `rt` is NULL or a live runtime; `out` is NULL (an error) or writable.
#[no_mangle]
pub unsafe extern "C" fn pymem_float_new(rt: *mut Runtime, v: f64, out: *mut *mut Object) -> Status {
    // The fast path (see pymem_int_new): the free list or a pool in use.
    // SAFETY: as this function's.
    if unsafe { construct_fast(rt, out, |heap| heap.float_new_if_fast(v)) }.is_some() {
        return Status::PYMEM_OK;
    }
    // SAFETY: as this function's.
    unsafe { float_new_checked(rt, v, out) }
}

/// `pymem_float_new` through the boundary.
///
/// # Safety
/// As `pymem_float_new`.
#[inline(never)]
unsafe fn float_new_checked(rt: *mut Runtime, v: f64, out: *mut *mut Object) -> Status {
    ffi_boundary!(object Full rt, "pymem_float_new", |state| {
        require(out, "out")?;
        give(out, state.heap.float_new(v)?);
        Ok::<(), Failure>(())
    })
}

/// The value of a float. Another type: `PYMEM_ERR_TYPE`.
///
/// # Safety
/// `rt` is NULL or a live runtime; `out` is NULL (an error) or writable.
#[no_mangle]
pub unsafe extern "C" fn pymem_float_value(rt: *mut Runtime, o: *mut Object, out: *mut f64) -> Status {
    ffi_boundary!(object Read rt, "pymem_float_value", |state| {
        let o = arg(&state.heap, o, "o")?;
        require(out, "out")?;
        let v = state.heap.float_value(o)?;
        // SAFETY: checked non-null.
        unsafe { write_out(out, v) };
        Ok::<(), Failure>(())
    })
}

/// The bytes `utf8[0..len]` as a str (not NUL-terminated; may hold NUL).
/// Invalid UTF-8: `PYMEM_ERR_INVALID_ARGUMENT`. `utf8` may be NULL when `len`
/// is 0. The empty string and one-character ASCII strings are immortal
/// singletons.
///
/// # Safety
/// `rt` is NULL or a live runtime; `utf8` is readable for `len` bytes;
/// `out` is NULL (an error) or writable.
#[no_mangle]
pub unsafe extern "C" fn pymem_str_new(
    rt: *mut Runtime,
    utf8: *const c_char,
    len: usize,
    out: *mut *mut Object,
) -> Status {
    ffi_boundary!(object Full rt, "pymem_str_new", |state| {
        require(out, "out")?;
        let bytes = bytes_arg(utf8, len)?;
        give(out, state.heap.str_new(bytes)?);
        Ok::<(), Failure>(())
    })
}

fn bytes_arg<'a>(utf8: *const c_char, len: usize) -> Result<&'a [u8], Failure> {
    if len == 0 {
        return Ok(&[]);
    }
    if utf8.is_null() {
        return Err(null("utf8"));
    }
    // SAFETY: readable for `len` bytes per the contract.
    Ok(unsafe { std::slice::from_raw_parts(utf8 as *const u8, len) })
}

/// The interned str equal to `utf8[0..len]`: the same object every time while
/// it lives. The intern table's own reference is not counted (CPython's
/// rule): the string is freed with its last outside reference.
///
/// # Safety
/// As `pymem_str_new`.
#[no_mangle]
pub unsafe extern "C" fn pymem_str_intern(
    rt: *mut Runtime,
    utf8: *const c_char,
    len: usize,
    out: *mut *mut Object,
) -> Status {
    ffi_boundary!(object Full rt, "pymem_str_intern", |state| {
        require(out, "out")?;
        let bytes = bytes_arg(utf8, len)?;
        give(out, state.heap.str_intern(bytes)?);
        Ok::<(), Failure>(())
    })
}

/// The UTF-8 bytes of a str and their length. `*utf8` is BORROWED: valid
/// while the object lives, NUL-terminated after `len` bytes. `len` may be
/// NULL.
///
/// # Safety
/// `rt` is NULL or a live runtime; `utf8` is NULL (an error) or writable;
/// `len` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn pymem_str_value(
    rt: *mut Runtime,
    o: *mut Object,
    utf8: *mut *const c_char,
    len: *mut usize,
) -> Status {
    ffi_boundary!(object Read rt, "pymem_str_value", |state| {
        let o = arg(&state.heap, o, "o")?;
        require(utf8, "utf8")?;
        let bytes = state.heap.str_bytes(o)?;
        // SAFETY: checked non-null / NULL allowed for `len`.
        unsafe {
            write_out(utf8, bytes.as_ptr() as *const c_char);
            if !len.is_null() {
                write_out(len, bytes.len());
            }
        }
        Ok::<(), Failure>(())
    })
}

// ----------------------------------------------------------------------
// tuple, list, dict

/// A tuple of the `n` objects of `items` (the tuple takes its own
/// references). `n == 0` gives the immortal empty tuple.
///
/// # Safety
/// `rt` is NULL or a live runtime; `items` is readable for `n` pointers
/// (NULL allowed when `n == 0`); `out` is NULL (an error) or writable.
#[no_mangle]
pub unsafe extern "C" fn pymem_tuple_new(
    rt: *mut Runtime,
    n: usize,
    items: *const *mut Object,
    out: *mut *mut Object,
) -> Status {
    ffi_boundary!(object Full rt, "pymem_tuple_new", |state| {
        require(out, "out")?;
        let objs = objects_arg(&state.heap, items, n, "items")?;
        give(out, state.heap.tuple_new(&objs)?);
        Ok::<(), Failure>(())
    })
}

fn objects_arg(heap: &Heap, items: *const *mut Object, n: usize, what: &str) -> Result<Vec<Obj>, Failure> {
    if n == 0 {
        return Ok(Vec::new());
    }
    if items.is_null() {
        return Err(null(what));
    }
    // SAFETY: readable for `n` pointers per the contract.
    let raw = unsafe { std::slice::from_raw_parts(items, n) };
    raw.iter().enumerate().map(|(i, &p)| arg(heap, p, &format!("{what}[{i}]"))).collect()
}

/// Item `i` of a tuple (new reference); `PYMEM_ERR_INDEX` past the end.
///
/// # Safety
/// `rt` is NULL or a live runtime; `out` is NULL (an error) or writable.
#[no_mangle]
pub unsafe extern "C" fn pymem_tuple_get(rt: *mut Runtime, t: *mut Object, i: usize, out: *mut *mut Object) -> Status {
    ffi_boundary!(object Full rt, "pymem_tuple_get", |state| {
        let t = arg(&state.heap, t, "t")?;
        require(out, "out")?;
        let item = state.heap.tuple_item(t, i)?;
        give(out, state.heap.new_ref(item));
        Ok::<(), Failure>(())
    })
}

/// The length of a tuple.
///
/// # Safety
/// `rt` is NULL or a live runtime; `out` is NULL (an error) or writable.
#[no_mangle]
pub unsafe extern "C" fn pymem_tuple_len(rt: *mut Runtime, t: *mut Object, out: *mut usize) -> Status {
    ffi_boundary!(object Read rt, "pymem_tuple_len", |state| {
        let t = arg(&state.heap, t, "t")?;
        require(out, "out")?;
        let n = state.heap.tuple_len(t)?;
        // SAFETY: checked non-null.
        unsafe { write_out(out, n) };
        Ok::<(), Failure>(())
    })
}

/// An empty list.
///
/// # Safety
/// `rt` is NULL or a live runtime; `out` is NULL (an error) or writable.
#[no_mangle]
pub unsafe extern "C" fn pymem_list_new(rt: *mut Runtime, out: *mut *mut Object) -> Status {
    // The fast path (see pymem_int_new); the new list is tracked, so the
    // after-call work (a collection that became due) follows it.
    // SAFETY: as this function's.
    if let Some(r) = unsafe { construct_fast(rt, out, Heap::list_new_if_fast) } {
        after_object_call(r, "pymem_list_new");
        return Status::PYMEM_OK;
    }
    // SAFETY: as this function's.
    unsafe { list_new_checked(rt, out) }
}

/// `pymem_list_new` through the boundary.
///
/// # Safety
/// As `pymem_list_new`.
#[inline(never)]
unsafe fn list_new_checked(rt: *mut Runtime, out: *mut *mut Object) -> Status {
    ffi_boundary!(object Full rt, "pymem_list_new", |state| {
        require(out, "out")?;
        give(out, state.heap.list_new()?);
        Ok::<(), Failure>(())
    })
}

/// Appends `item` (the list takes its own reference).
///
/// # Safety
/// `rt` is NULL or a live runtime.
#[no_mangle]
pub unsafe extern "C" fn pymem_list_append(rt: *mut Runtime, list: *mut Object, item: *mut Object) -> Status {
    // The fast path (see pymem_incref): both objects known, room in the
    // list (or a first item array from a pool in use); it frees nothing and
    // tracks nothing, so nothing follows it.
    // SAFETY: the C caller passes NULL or a live runtime (API contract).
    if let Some(r) = unsafe { rt.as_ref() } {
        if r.owned_by_caller() {
            // SAFETY: the caller owns the runtime: no other borrow of its state.
            let heap = &mut unsafe { r.state_mut() }.heap;
            if heap.list_append_if_fast(list as *const u8, item as *const u8) {
                return Status::PYMEM_OK;
            }
        }
    }
    // SAFETY: as this function's.
    unsafe { list_append_checked(rt, list, item) }
}

/// `pymem_list_append` through the boundary, with full validation.
///
/// # Safety
/// As `pymem_list_append`.
#[inline(never)]
unsafe fn list_append_checked(rt: *mut Runtime, list: *mut Object, item: *mut Object) -> Status {
    ffi_boundary!(object Full rt, "pymem_list_append", |state| {
        let list = arg(&state.heap, list, "list")?;
        let item = arg(&state.heap, item, "item")?;
        state.heap.list_append(list, item)?;
        Ok::<(), Failure>(())
    })
}

/// Inserts `item` before index `i`; past the end appends (Python's insert).
///
/// # Safety
/// `rt` is NULL or a live runtime.
#[no_mangle]
pub unsafe extern "C" fn pymem_list_insert(rt: *mut Runtime, list: *mut Object, i: usize, item: *mut Object) -> Status {
    ffi_boundary!(object Full rt, "pymem_list_insert", |state| {
        let list = arg(&state.heap, list, "list")?;
        let item = arg(&state.heap, item, "item")?;
        state.heap.list_insert(list, i, item)?;
        Ok::<(), Failure>(())
    })
}

/// Item `i` (new reference); `PYMEM_ERR_INDEX` past the end.
///
/// # Safety
/// `rt` is NULL or a live runtime; `out` is NULL (an error) or writable.
#[no_mangle]
pub unsafe extern "C" fn pymem_list_get(
    rt: *mut Runtime,
    list: *mut Object,
    i: usize,
    out: *mut *mut Object,
) -> Status {
    ffi_boundary!(object Full rt, "pymem_list_get", |state| {
        let list = arg(&state.heap, list, "list")?;
        require(out, "out")?;
        let item = state.heap.list_get(list, i)?;
        give(out, state.heap.new_ref(item));
        Ok::<(), Failure>(())
    })
}

/// Replaces item `i` (the list takes a reference to `item` and drops its
/// reference to the old one); `PYMEM_ERR_INDEX` past the end.
///
/// # Safety
/// `rt` is NULL or a live runtime.
#[no_mangle]
pub unsafe extern "C" fn pymem_list_set(rt: *mut Runtime, list: *mut Object, i: usize, item: *mut Object) -> Status {
    ffi_boundary!(object Full rt, "pymem_list_set", |state| {
        let list = arg(&state.heap, list, "list")?;
        let item = arg(&state.heap, item, "item")?;
        state.heap.list_set(list, i, item)?;
        Ok::<(), Failure>(())
    })
}

/// Removes item `i` and hands it out (the caller gets the list's reference);
/// `PYMEM_ERR_INDEX` past the end.
///
/// # Safety
/// `rt` is NULL or a live runtime; `out` is NULL (an error) or writable.
#[no_mangle]
pub unsafe extern "C" fn pymem_list_pop(
    rt: *mut Runtime,
    list: *mut Object,
    i: usize,
    out: *mut *mut Object,
) -> Status {
    ffi_boundary!(object Full rt, "pymem_list_pop", |state| {
        let list = arg(&state.heap, list, "list")?;
        require(out, "out")?;
        give(out, state.heap.list_pop(list, i)?);
        Ok::<(), Failure>(())
    })
}

/// The length of a list.
///
/// # Safety
/// `rt` is NULL or a live runtime; `out` is NULL (an error) or writable.
#[no_mangle]
pub unsafe extern "C" fn pymem_list_len(rt: *mut Runtime, list: *mut Object, out: *mut usize) -> Status {
    ffi_boundary!(object Read rt, "pymem_list_len", |state| {
        let list = arg(&state.heap, list, "list")?;
        require(out, "out")?;
        let n = state.heap.list_len(list)?;
        // SAFETY: checked non-null.
        unsafe { write_out(out, n) };
        Ok::<(), Failure>(())
    })
}

/// An empty dict (insertion-ordered, CPython's compact layout).
///
/// # Safety
/// `rt` is NULL or a live runtime; `out` is NULL (an error) or writable.
#[no_mangle]
pub unsafe extern "C" fn pymem_dict_new(rt: *mut Runtime, out: *mut *mut Object) -> Status {
    ffi_boundary!(object Full rt, "pymem_dict_new", |state| {
        require(out, "out")?;
        give(out, state.heap.dict_new()?);
        Ok::<(), Failure>(())
    })
}

/// `d[key] = value` (the dict takes references to both). An unhashable key
/// (list, dict) gives `PYMEM_ERR_TYPE` "unhashable type: 'list'".
///
/// # Safety
/// `rt` is NULL or a live runtime.
#[no_mangle]
pub unsafe extern "C" fn pymem_dict_set(
    rt: *mut Runtime,
    d: *mut Object,
    key: *mut Object,
    value: *mut Object,
) -> Status {
    ffi_boundary!(object Full rt, "pymem_dict_set", |state| {
        let d = arg(&state.heap, d, "d")?;
        let key = arg(&state.heap, key, "key")?;
        let value = arg(&state.heap, value, "value")?;
        state.heap.dict_set(d, key, value)?;
        Ok::<(), Failure>(())
    })
}

/// `d[key]` (new reference); `PYMEM_ERR_KEY` when missing.
///
/// # Safety
/// `rt` is NULL or a live runtime; `out` is NULL (an error) or writable.
#[no_mangle]
pub unsafe extern "C" fn pymem_dict_get(
    rt: *mut Runtime,
    d: *mut Object,
    key: *mut Object,
    out: *mut *mut Object,
) -> Status {
    ffi_boundary!(object Full rt, "pymem_dict_get", |state| {
        let d = arg(&state.heap, d, "d")?;
        let key = arg(&state.heap, key, "key")?;
        require(out, "out")?;
        let v = state.heap.dict_get(d, key)?;
        give(out, state.heap.new_ref(v));
        Ok::<(), Failure>(())
    })
}

/// `del d[key]`; `PYMEM_ERR_KEY` when missing.
///
/// # Safety
/// `rt` is NULL or a live runtime.
#[no_mangle]
pub unsafe extern "C" fn pymem_dict_del(rt: *mut Runtime, d: *mut Object, key: *mut Object) -> Status {
    ffi_boundary!(object Full rt, "pymem_dict_del", |state| {
        let d = arg(&state.heap, d, "d")?;
        let key = arg(&state.heap, key, "key")?;
        state.heap.dict_del(d, key)?;
        Ok::<(), Failure>(())
    })
}

/// The number of items of a dict.
///
/// # Safety
/// `rt` is NULL or a live runtime; `out` is NULL (an error) or writable.
#[no_mangle]
pub unsafe extern "C" fn pymem_dict_len(rt: *mut Runtime, d: *mut Object, out: *mut usize) -> Status {
    ffi_boundary!(object Read rt, "pymem_dict_len", |state| {
        let d = arg(&state.heap, d, "d")?;
        require(out, "out")?;
        let n = state.heap.dict_len(d)?;
        // SAFETY: checked non-null.
        unsafe { write_out(out, n) };
        Ok::<(), Failure>(())
    })
}

/// Iterates a dict in insertion order: start with `*pos = 0`; each call
/// hands out the next key and value (new references; either out-pointer may
/// be NULL to skip it) and advances `*pos`; after the last item it returns
/// `PYMEM_ERR_INDEX`.
///
/// # Safety
/// `rt` is NULL or a live runtime; `pos` is NULL (an error) or read-write;
/// `key`, `value` are NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn pymem_dict_next(
    rt: *mut Runtime,
    d: *mut Object,
    pos: *mut usize,
    key: *mut *mut Object,
    value: *mut *mut Object,
) -> Status {
    ffi_boundary!(object Full rt, "pymem_dict_next", |state| {
        let d = arg(&state.heap, d, "d")?;
        require(pos, "pos")?;
        // SAFETY: checked non-null; read-write per the contract.
        let mut p = unsafe { *pos };
        match state.heap.dict_next(d, &mut p)? {
            Some((k, v)) => {
                if !key.is_null() {
                    give(key, state.heap.new_ref(k));
                }
                if !value.is_null() {
                    give(value, state.heap.new_ref(v));
                }
                // SAFETY: as above.
                unsafe { write_out(pos, p) };
                Ok(())
            }
            None => Err(Failure::new(Status::PYMEM_ERR_INDEX, "no more items")),
        }
    })
}

// ----------------------------------------------------------------------
// hash, equality, repr

/// `hash(o)` as Python computes it (`hash(1) == hash(1.0)`, `hash(-1) ==
/// -2`; str hashes are a fixed FNV-1a, not CPython's randomised SipHash).
/// Lists and dicts: `PYMEM_ERR_TYPE` "unhashable type: 'list'".
///
/// # Safety
/// `rt` is NULL or a live runtime; `out` is NULL (an error) or writable.
#[no_mangle]
pub unsafe extern "C" fn pymem_hash(rt: *mut Runtime, o: *mut Object, out: *mut i64) -> Status {
    ffi_boundary!(object Full rt, "pymem_hash", |state| {
        let o = arg(&state.heap, o, "o")?;
        require(out, "out")?;
        let h = state.heap.hash(o)?;
        // SAFETY: checked non-null.
        unsafe { write_out(out, h) };
        Ok::<(), Failure>(())
    })
}

/// `*out = (a == b)` as Python: `1 == 1.0 == True`, containers item by
/// item, NaN unequal to itself. Deeper than the recursion limit:
/// `PYMEM_ERR_RECURSION`.
///
/// # Safety
/// `rt` is NULL or a live runtime; `out` is NULL (an error) or writable.
#[no_mangle]
pub unsafe extern "C" fn pymem_equal(rt: *mut Runtime, a: *mut Object, b: *mut Object, out: *mut c_int) -> Status {
    ffi_boundary!(object Full rt, "pymem_equal", |state| {
        let a = arg(&state.heap, a, "a")?;
        let b = arg(&state.heap, b, "b")?;
        require(out, "out")?;
        let eq = state.heap.equal(a, b)?;
        // SAFETY: checked non-null.
        unsafe { write_out(out, eq as c_int) };
        Ok::<(), Failure>(())
    })
}

/// `repr(o)` as Python writes it; recursive containers show as `[...]`.
/// `*out` is freed with `pymem_string_free`. Deeper than the recursion
/// limit: `PYMEM_ERR_RECURSION`.
///
/// # Safety
/// `rt` is NULL or a live runtime; `out` is NULL (an error) or writable.
#[no_mangle]
pub unsafe extern "C" fn pymem_repr(rt: *mut Runtime, o: *mut Object, out: *mut *mut c_char) -> Status {
    ffi_boundary!(object Full rt, "pymem_repr", |state| {
        let o = arg(&state.heap, o, "o")?;
        require(out, "out")?;
        let text = state.heap.repr(o)?;
        // SAFETY: checked non-null.
        unsafe { write_out(out, c_message(&text).into_raw()) };
        Ok::<(), Failure>(())
    })
}

// ----------------------------------------------------------------------
// attributes, types, instances, modules, functions

/// `o.name = value` on an instance, module or function (`name`:
/// NUL-terminated UTF-8). Other types: `PYMEM_ERR_TYPE`.
///
/// # Safety
/// `rt` is NULL or a live runtime; `name` is NULL (an error) or a C string.
#[no_mangle]
pub unsafe extern "C" fn pymem_setattr(
    rt: *mut Runtime,
    o: *mut Object,
    name: *const c_char,
    value: *mut Object,
) -> Status {
    ffi_boundary!(object Full rt, "pymem_setattr", |state| {
        let o = arg(&state.heap, o, "o")?;
        let name = name_arg(name, "name")?;
        let value = arg(&state.heap, value, "value")?;
        state.heap.setattr(o, name, value)?;
        Ok::<(), Failure>(())
    })
}

/// `o.name` (new reference); `PYMEM_ERR_KEY` when unset.
///
/// # Safety
/// `rt` is NULL or a live runtime; `name` is NULL (an error) or a C string;
/// `out` is NULL (an error) or writable.
#[no_mangle]
pub unsafe extern "C" fn pymem_getattr(
    rt: *mut Runtime,
    o: *mut Object,
    name: *const c_char,
    out: *mut *mut Object,
) -> Status {
    ffi_boundary!(object Full rt, "pymem_getattr", |state| {
        let o = arg(&state.heap, o, "o")?;
        let name = name_arg(name, "name")?;
        require(out, "out")?;
        let v = state.heap.getattr(o, name)?;
        give(out, state.heap.new_ref(v));
        Ok::<(), Failure>(())
    })
}

/// `del o.name`; `PYMEM_ERR_KEY` when unset.
///
/// # Safety
/// `rt` is NULL or a live runtime; `name` is NULL (an error) or a C string.
#[no_mangle]
pub unsafe extern "C" fn pymem_delattr(rt: *mut Runtime, o: *mut Object, name: *const c_char) -> Status {
    ffi_boundary!(object Full rt, "pymem_delattr", |state| {
        let o = arg(&state.heap, o, "o")?;
        let name = name_arg(name, "name")?;
        state.heap.delattr(o, name)?;
        Ok::<(), Failure>(())
    })
}

/// Defines a host type from `*spec` (copied; the name is copied too). The
/// handle lives as long as the runtime; it is not freed by the host.
///
/// # Safety
/// `rt` is NULL or a live runtime; `spec` is NULL (an error) or an
/// initialised `pymem_type_spec`; `out` is NULL (an error) or writable.
#[no_mangle]
pub unsafe extern "C" fn pymem_type_new(rt: *mut Runtime, spec: *const TypeSpec, out: *mut *mut Type) -> Status {
    ffi_boundary!(object Full rt, "pymem_type_new", |state| {
        require(spec, "spec")?;
        require(out, "out")?;
        // SAFETY: checked non-null; initialised per the contract.
        let spec = unsafe { &*spec };
        let name = name_arg(spec.name, "spec->name")?;
        if spec.nslots > 0 {
            require(spec.slots, "spec->slots")?;
        }
        let slots = (0..spec.nslots)
            .map(|i| {
                // SAFETY: `slots` holds `nslots` pointers (the contract).
                let slot = unsafe { *spec.slots.add(i) };
                name_arg(slot, "a name in spec->slots").map(|b| String::from_utf8_lossy(b).into_owned())
            })
            .collect::<Result<Vec<String>, Failure>>()?;
        let host = HostTypeSpec {
            name: String::from_utf8_lossy(name).into_owned(),
            payload_size: spec.payload_size,
            hooks: HostHooks {
                traverse: spec.traverse.map_or(0, |f| f as usize),
                clear: spec.clear.map_or(0, |f| f as usize),
                finalize: spec.finalize.map_or(0, |f| f as usize),
                dealloc: spec.dealloc.map_or(0, |f| f as usize),
                userdata: spec.userdata as usize,
            },
            slots,
        };
        let t = state.heap.type_new(&host)?;
        // SAFETY: checked non-null.
        unsafe { write_out(out, t as *mut Type) };
        Ok::<(), Failure>(())
    })
}

fn type_arg(heap: &Heap, t: *mut Type) -> Result<u32, Failure> {
    if t.is_null() {
        return Err(null("t"));
    }
    heap.check_type(t as *const TypeInfo).map_err(Failure::from)
}

/// A new instance of host type `t`: payload zeroed, no attributes.
///
/// # Safety
/// `rt` is NULL or a live runtime; `out` is NULL (an error) or writable.
#[no_mangle]
pub unsafe extern "C" fn pymem_instance_new(rt: *mut Runtime, t: *mut Type, out: *mut *mut Object) -> Status {
    ffi_boundary!(object Full rt, "pymem_instance_new", |state| {
        let t = type_arg(&state.heap, t)?;
        require(out, "out")?;
        give(out, state.heap.instance_new(t)?);
        Ok::<(), Failure>(())
    })
}

/// `*out = 1` if `o` is an instance of host type `t`, else 0.
///
/// # Safety
/// `rt` is NULL or a live runtime; `out` is NULL (an error) or writable.
#[no_mangle]
pub unsafe extern "C" fn pymem_is_instance(rt: *mut Runtime, o: *mut Object, t: *mut Type, out: *mut c_int) -> Status {
    ffi_boundary!(object Read rt, "pymem_is_instance", |state| {
        let o = arg(&state.heap, o, "o")?;
        let t = type_arg(&state.heap, t)?;
        require(out, "out")?;
        let yes = state.heap.is_instance(o, t);
        // SAFETY: checked non-null.
        unsafe { write_out(out, yes as c_int) };
        Ok::<(), Failure>(())
    })
}

/// The host bytes of an instance of a host type (BORROWED: valid while the
/// object lives; 16-byte aligned). Other types: `PYMEM_ERR_TYPE`. Callable
/// inside every host callback, for the object being cleared or deallocated
/// too.
///
/// # Safety
/// `rt` is NULL or a live runtime; `out` is NULL (an error) or writable.
#[no_mangle]
pub unsafe extern "C" fn pymem_instance_payload(rt: *mut Runtime, o: *mut Object, out: *mut *mut c_void) -> Status {
    ffi_boundary!(object Read rt, "pymem_instance_payload", |state| {
        require(out, "out")?;
        let o = arg_or_dying(&state.heap, o)?;
        let p = state.heap.instance_payload(o)?;
        // SAFETY: checked non-null.
        unsafe { write_out(out, p as *mut c_void) };
        Ok::<(), Failure>(())
    })
}

/// A module named `name` (NUL-terminated UTF-8), with no attributes.
///
/// # Safety
/// `rt` is NULL or a live runtime; `name` is NULL (an error) or a C string;
/// `out` is NULL (an error) or writable.
#[no_mangle]
pub unsafe extern "C" fn pymem_module_new(rt: *mut Runtime, name: *const c_char, out: *mut *mut Object) -> Status {
    ffi_boundary!(object Full rt, "pymem_module_new", |state| {
        let name = name_arg(name, "name")?;
        require(out, "out")?;
        give(out, state.heap.module_new(name)?);
        Ok::<(), Failure>(())
    })
}

/// A function named `name` that `pymem_call` runs as `native(rt, args,
/// nargs, &result, userdata)`.
///
/// # Safety
/// `rt` is NULL or a live runtime; `name` is NULL (an error) or a C string;
/// `out` is NULL (an error) or writable; `native` is NULL (an error) or a
/// function of the `pymem_native_fn` type.
#[no_mangle]
pub unsafe extern "C" fn pymem_function_new(
    rt: *mut Runtime,
    name: *const c_char,
    native: NativeFn,
    userdata: *mut c_void,
    out: *mut *mut Object,
) -> Status {
    ffi_boundary!(object Full rt, "pymem_function_new", |state| {
        let name = name_arg(name, "name")?;
        require(out, "out")?;
        let native = native.ok_or_else(|| null("fn"))?;
        give(out, state.heap.function_new(name, native as usize, userdata as usize)?);
        Ok::<(), Failure>(())
    })
}

/// Calls a function with `nargs` borrowed `args`; `*result` gets its result
/// (a new reference; None when the native function left it NULL). The
/// native function may call anything but `pymem_runtime_free`; an error
/// status it returns is passed on.
///
/// # Safety
/// `rt` is NULL or a live runtime; `args` is readable for `nargs` pointers
/// (NULL when `nargs == 0`); `result` is NULL (an error) or writable.
#[no_mangle]
pub unsafe extern "C" fn pymem_call(
    rt: *mut Runtime,
    f: *mut Object,
    args: *const *mut Object,
    nargs: usize,
    result: *mut *mut Object,
) -> Status {
    const FUNCTION: &str = "pymem_call";
    // Validate under the boundary, call the host outside any borrow.
    // SAFETY: the C caller passes NULL or a live runtime (API contract).
    let rt_ref = match unsafe { enter_for(rt, FUNCTION, Access::Full) } {
        Ok(r) => r,
        Err(status) => return status,
    };
    let (prepared, status) = run(rt_ref, FUNCTION, None, |state| {
        state.heap.ensure_ready()?;
        let f = arg(&state.heap, f, "f")?;
        require(result, "result")?;
        let _ = objects_arg(&state.heap, args, nargs, "args")?;
        let (native, userdata) = state.heap.function_native(f)?;
        let name = state.heap.object_name(f).and_then(|n| state.heap.str_bytes(n).ok()).unwrap_or(b"?").to_vec();
        Ok::<_, Failure>(Some((native, userdata, name)))
    });
    let Some((native, userdata, name)) = prepared else {
        return status;
    };
    let mut out: *mut Object = ptr::null_mut();
    let status = rt_ref.in_callback(None, || {
        // SAFETY: `native` was stored from a non-NULL `pymem_native_fn`.
        let native: unsafe extern "C" fn(
            *mut Runtime,
            *const *mut Object,
            usize,
            *mut *mut Object,
            *mut c_void,
        ) -> Status = unsafe { std::mem::transmute(native) };
        // SAFETY: the host's function, called as its C type promises.
        unsafe { native(rt, args, nargs, &mut out, userdata as *mut c_void) }
    });
    let (_, status) = run(rt_ref, FUNCTION, (), |state| {
        if status != Status::PYMEM_OK {
            return Err(Failure::new(
                status,
                format!("native function '{}' returned {}", String::from_utf8_lossy(&name), status.name()),
            ));
        }
        let o = if out.is_null() {
            state.heap.none()
        } else {
            arg(&state.heap, out, "the native function's result").map_err(|e| {
                Failure::new(e.status, format!("native function '{}': {}", String::from_utf8_lossy(&name), e.message))
            })?
        };
        give(result, o);
        Ok(())
    });
    after_object_call(rt_ref, FUNCTION);
    status
}

/// The name of `o`'s type: "int", "list", a host type's name... BORROWED:
/// valid while the runtime lives. Callable inside every host callback.
///
/// # Safety
/// `rt` is NULL or a live runtime; `out` is NULL (an error) or writable.
#[no_mangle]
pub unsafe extern "C" fn pymem_type_name(rt: *mut Runtime, o: *mut Object, out: *mut *const c_char) -> Status {
    ffi_boundary!(object Read rt, "pymem_type_name", |state| {
        let o = arg_or_dying(&state.heap, o)?;
        require(out, "out")?;
        let name = state.heap.type_of(o).name_ptr();
        // SAFETY: checked non-null.
        unsafe { write_out(out, name as *const c_char) };
        Ok::<(), Failure>(())
    })
}

/// Empties the per-type free lists (floats, tuples by length, lists,
/// dicts), giving their blocks back to the allocator.
///
/// # Safety
/// `rt` is NULL or a live runtime.
#[no_mangle]
pub unsafe extern "C" fn pymem_clear_free_lists(rt: *mut Runtime) -> Status {
    ffi_boundary!(object Full rt, "pymem_clear_free_lists", |state| {
        state.heap.clear_free_lists();
        Ok::<(), Failure>(())
    })
}

// ----------------------------------------------------------------------
// copies and sizes

/// `copy.copy(o)`: a new list or dict sharing the items of `o`, a new
/// instance sharing its attribute values (payload bytes copied); immutable
/// objects (int, float, str, tuple, None, bool) and modules and functions
/// are returned themselves (a new reference), as Python does.
///
/// # Safety
/// `rt` is NULL or a live runtime; `out` is NULL (an error) or writable.
#[no_mangle]
pub unsafe extern "C" fn pymem_copy(rt: *mut Runtime, o: *mut Object, out: *mut *mut Object) -> Status {
    ffi_boundary!(object Full rt, "pymem_copy", |state| {
        let o = arg(&state.heap, o, "o")?;
        require(out, "out")?;
        give(out, state.heap.copy(o)?);
        Ok::<(), Failure>(())
    })
}

/// `copy.deepcopy(o)` with a memo: shared sub-objects stay shared in the
/// copy, cycles are reproduced, immutable atoms are not copied (a tuple
/// only when one of its items had to be). Deeper than the recursion limit:
/// `PYMEM_ERR_RECURSION` (and nothing is left allocated).
///
/// # Safety
/// `rt` is NULL or a live runtime; `out` is NULL (an error) or writable.
#[no_mangle]
pub unsafe extern "C" fn pymem_deepcopy(rt: *mut Runtime, o: *mut Object, out: *mut *mut Object) -> Status {
    ffi_boundary!(object Full rt, "pymem_deepcopy", |state| {
        let o = arg(&state.heap, o, "o")?;
        require(out, "out")?;
        give(out, state.heap.deepcopy(o)?);
        Ok::<(), Failure>(())
    })
}

/// This object's own bytes, like `sys.getsizeof`: its block with the header
/// (and the collector's links for containers) plus the private arrays it
/// owns (a list's item array, a dict's table, an instance's values).
///
/// # Safety
/// `rt` is NULL or a live runtime; `out` is NULL (an error) or writable.
#[no_mangle]
pub unsafe extern "C" fn pymem_sizeof(rt: *mut Runtime, o: *mut Object, out: *mut usize) -> Status {
    ffi_boundary!(object Read rt, "pymem_sizeof", |state| {
        let o = arg(&state.heap, o, "o")?;
        require(out, "out")?;
        let n = state.heap.sizeof(o)?;
        // SAFETY: checked non-null.
        unsafe { write_out(out, n) };
        Ok::<(), Failure>(())
    })
}

/// The bytes reachable from `o`, each object counted once and immortal
/// objects excluded, like pympler's `asizeof`.
///
/// # Safety
/// `rt` is NULL or a live runtime; `out` is NULL (an error) or writable.
#[no_mangle]
pub unsafe extern "C" fn pymem_deep_sizeof(rt: *mut Runtime, o: *mut Object, out: *mut usize) -> Status {
    ffi_boundary!(object Read rt, "pymem_deep_sizeof", |state| {
        let o = arg(&state.heap, o, "o")?;
        require(out, "out")?;
        let n = state.heap.deep_sizeof(o)?;
        // SAFETY: checked non-null.
        unsafe { write_out(out, n) };
        Ok::<(), Failure>(())
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_payload_offset_is_the_instance_layouts() {
        assert_eq!(super::PYMEM_INSTANCE_PAYLOAD_OFFSET, refcount_object::object::INSTANCE_PAYLOAD_OFFSET);
    }
}
