//! The cycle collector's C entry points, and the driver of a collection.
//!
//! A collection runs the phases of `gc_generations::Collector` and calls the
//! host's callbacks in between, each with the runtime restricted as API.md
//! says: `traverse` may call nothing (only calls that read), `clear` and
//! `dealloc` incref/decref only, `finalize` and gc callbacks anything but
//! `pymem_runtime_free`. No borrow of the heap is alive while host code runs
//! (except during `traverse`, when the host cannot call in).
//!
//! Automatic collections run when the outermost call returns
//! (`after_object_call`), never inside a host callback; a collection asked
//! for during a collection returns 0 at once, as in CPython.
//!
//! Thread rule: the runtime's owner thread only (`PYMEM_ERR_BUSY`).

use std::ffi::{c_int, c_void};
use std::panic::{catch_unwind, AssertUnwindSafe};

use gc_generations::{Collector, Profile};
use refcount_object::{HostHooks, Obj};

use crate::boundary::{enter_for, ffi_boundary, run, write_out, Access, Failure};
use crate::object::{Object, VisitFn};
use crate::runtime::{Restriction, Runtime, PYMEM_GC_PROFILE_CPYTHON_313};
use crate::status::Status;

/// The collector and what the C API adds to it (debug sink, callbacks).
pub(crate) struct GcState {
    pub(crate) collector: Collector,
}

impl GcState {
    pub(crate) fn new(profile: i32) -> GcState {
        let profile = if profile == PYMEM_GC_PROFILE_CPYTHON_313 { Profile::Cpython313 } else { Profile::Cpython311 };
        GcState { collector: Collector::new(profile) }
    }
}

/// The visit function pymem hands to a host `traverse`: records a child.
/// `arg` is the collector's visitor; the child is only ever used as a key,
/// never dereferenced, unless it is a known object.
unsafe extern "C" fn visit_trampoline(child: *mut Object, arg: *mut c_void) -> c_int {
    if child.is_null() || arg.is_null() {
        return 0;
    }
    // SAFETY: `arg` is the `&mut &mut dyn FnMut(Obj)` passed by `host_traverse`,
    // alive for the duration of the host's traverse call.
    let visit = unsafe { &mut *(arg as *mut &mut dyn FnMut(Obj)) };
    // SAFETY: non-null (checked).
    visit(unsafe { Obj::new_unchecked(child as *mut refcount_object::ObjHeader) });
    0
}

/// Calls the host `traverse` of `o`'s type (stored as an address).
fn host_traverse(traverse: usize, userdata: usize, o: Obj, visit: &mut dyn FnMut(Obj)) {
    if traverse == 0 {
        return;
    }
    let mut visit_ref: &mut dyn FnMut(Obj) = visit;
    // SAFETY: `traverse` was stored from a non-NULL `pymem_traverse_fn`.
    let f: unsafe extern "C" fn(*mut Object, VisitFn, *mut c_void, *mut c_void) -> c_int =
        unsafe { std::mem::transmute(traverse) };
    // SAFETY: the host's function, called as its C type promises; `arg`
    // points at `visit_ref`, alive until it returns.
    unsafe {
        f(
            o.as_ptr() as *mut Object,
            Some(visit_trampoline),
            &mut visit_ref as *mut &mut dyn FnMut(Obj) as *mut c_void,
            userdata as *mut c_void,
        )
    };
}

/// The runtime's state, for the collection driver.
#[allow(clippy::mut_from_ref)]
fn state(rt: &Runtime) -> &mut crate::runtime::RuntimeState {
    // SAFETY: only the owner thread runs a collection (every entry point
    // checked it), and each borrow made here ends before host code that may
    // call back in runs (during `traverse` the host cannot call in at all).
    unsafe { rt.state_mut() }
}

/// Runs one collection of `generation` with the host's callbacks, and
/// returns collected + uncollectable (0 at once during a collection).
pub(crate) fn run_collection(rt: &Runtime, generation: usize) -> u64 {
    let rt_ptr = rt as *const Runtime as *mut Runtime;
    if state(rt).gc.collector.is_collecting() {
        return 0;
    }
    // Phase 1: find the garbage; host traverse callbacks may not call in.
    let mut c = rt.in_callback(Some(Restriction::ReadOnly), || {
        let st = state(rt);
        let heap = &mut *st.heap;
        let mut trav = |o: Obj, hooks: HostHooks, v: &mut dyn FnMut(Obj)| {
            host_traverse(hooks.traverse, hooks.userdata, o, v);
        };
        st.gc.collector.begin(heap, generation, &mut trav)
    });
    // Phase 2: finalizers (PEP 442), each with a reference held.
    let finalize = {
        let st = state(rt);
        st.gc.collector.finalizers(&mut st.heap, &c)
    };
    for o in finalize {
        let hooks = state(rt).heap.type_of(o).hooks();
        rt.in_callback(None, || {
            // SAFETY: stored from a non-NULL `pymem_finalize_fn`.
            let f: unsafe extern "C" fn(*mut Runtime, *mut Object, *mut c_void) =
                unsafe { std::mem::transmute(hooks.finalize) };
            // SAFETY: the host's function, called as its C type promises.
            unsafe { f(rt_ptr, o.as_ptr() as *mut Object, hooks.userdata as *mut c_void) };
        });
        state(rt).heap.decref(o);
    }
    // Phase 3: what the finalizers made reachable again survives.
    rt.in_callback(Some(Restriction::ReadOnly), || {
        let st = state(rt);
        let heap = &mut *st.heap;
        let mut trav = |o: Obj, hooks: HostHooks, v: &mut dyn FnMut(Obj)| {
            host_traverse(hooks.traverse, hooks.userdata, o, v);
        };
        st.gc.collector.check_resurrection(heap, &mut c, &mut trav);
    });
    // Phase 4: clear each garbage object (built-in part, then host clear).
    loop {
        let next = {
            let st = state(rt);
            st.gc.collector.next_garbage(&mut st.heap, &mut c)
        };
        let Some(o) = next else { break };
        let hooks = {
            let heap = &mut state(rt).heap;
            heap.clear_builtin(o);
            heap.type_of(o).hooks()
        };
        if hooks.clear != 0 {
            rt.in_callback(Some(Restriction::RefcountOnly), || {
                // SAFETY: stored from a non-NULL `pymem_clear_fn`.
                let f: unsafe extern "C" fn(*mut Runtime, *mut Object, *mut c_void) =
                    unsafe { std::mem::transmute(hooks.clear) };
                // SAFETY: the host's function, called as its C type promises.
                unsafe { f(rt_ptr, o.as_ptr() as *mut Object, hooks.userdata as *mut c_void) };
            });
        }
        let st = state(rt);
        st.gc.collector.after_clear(&mut st.heap, &mut c, o);
        st.heap.decref(o);
    }
    let st = state(rt);
    let (found, _elapsed, _lines) = st.gc.collector.finish(&mut st.heap, c);
    found
}

/// Runs an automatic collection if one is due and allowed: called by
/// `after_object_call` at the outermost call, never inside a host callback.
#[cold]
#[inline(never)]
pub(crate) fn collect_if_due(rt: &Runtime) {
    if rt.in_any_callback() {
        return;
    }
    let st = state(rt);
    st.heap.gc.collection_due = false;
    if !st.heap.gc.enabled || st.gc.collector.is_collecting() {
        return;
    }
    if let Some(generation) = st.gc.collector.generation_due(&st.heap) {
        run_collection(rt, generation);
    }
}

fn generation_arg(generation: c_int) -> Result<usize, Failure> {
    match generation {
        -1 => Ok(2),
        0..=2 => Ok(generation as usize),
        _ => Err(Failure::new(Status::PYMEM_ERR_INVALID_ARGUMENT, "invalid generation (0, 1, 2, or -1 for 2)")),
    }
}

/// `gc.collect(generation)`: collects `generation` (0, 1 or 2; -1 means 2)
/// and the younger ones; `*found` (may be NULL) gets collected +
/// uncollectable, as `gc.collect()` returns. During a collection (from a
/// finalizer or gc callback) it returns at once with 0 found.
///
/// # Safety
/// `rt` is NULL or a live runtime; `found` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn pymem_gc_collect(rt: *mut Runtime, generation: c_int, found: *mut i64) -> Status {
    const FUNCTION: &str = "pymem_gc_collect";
    // SAFETY: the C caller passes NULL or a live runtime (API contract).
    let rt_ref = match unsafe { enter_for(rt, FUNCTION, Access::Full) } {
        Ok(r) => r,
        Err(status) => return status,
    };
    let (generation, status) = run(rt_ref, FUNCTION, None, |state| {
        state.heap.ensure_ready()?;
        Ok::<_, Failure>(Some(generation_arg(generation)?))
    });
    let Some(generation) = generation else {
        return status;
    };
    // The collection runs host code, so it runs outside the body's borrow.
    let n = match catch_unwind(AssertUnwindSafe(|| run_collection(rt_ref, generation))) {
        Ok(n) => n,
        Err(_) => {
            rt_ref.poison(&format!("{FUNCTION}: internal error (pymem bug) during a collection"));
            return Status::PYMEM_ERR_PANIC;
        }
    };
    crate::object::after_object_call(rt_ref, FUNCTION);
    if !found.is_null() {
        // SAFETY: non-null and writable per the contract.
        unsafe { write_out(found, n as i64) };
    }
    Status::PYMEM_OK
}

/// Turns automatic collection on (`gc.enable()`).
///
/// # Safety
/// `rt` is NULL or a live runtime.
#[no_mangle]
pub unsafe extern "C" fn pymem_gc_enable(rt: *mut Runtime) -> Status {
    ffi_boundary!(object Full rt, "pymem_gc_enable", |state| {
        state.heap.gc.enabled = true;
        Ok::<(), Failure>(())
    })
}

/// Turns automatic collection off (`gc.disable()`); `pymem_gc_collect` still works.
///
/// # Safety
/// `rt` is NULL or a live runtime.
#[no_mangle]
pub unsafe extern "C" fn pymem_gc_disable(rt: *mut Runtime) -> Status {
    ffi_boundary!(object Full rt, "pymem_gc_disable", |state| {
        state.heap.gc.enabled = false;
        state.heap.gc.collection_due = false;
        Ok::<(), Failure>(())
    })
}

/// `*out = 1` when automatic collection is on (`gc.isenabled()`).
///
/// # Safety
/// `rt` is NULL or a live runtime; `out` is NULL (an error) or writable.
#[no_mangle]
pub unsafe extern "C" fn pymem_gc_isenabled(rt: *mut Runtime, out: *mut c_int) -> Status {
    ffi_boundary!(object Read rt, "pymem_gc_isenabled", |state| {
        crate::boundary::require(out, "out")?;
        // SAFETY: checked non-null.
        unsafe { write_out(out, state.heap.gc.enabled as c_int) };
        Ok::<(), Failure>(())
    })
}

/// The three thresholds (`gc.get_threshold()`) into `out[0..3]`.
///
/// # Safety
/// `rt` is NULL or a live runtime; `out` is NULL (an error) or writable for 3 values.
#[no_mangle]
pub unsafe extern "C" fn pymem_gc_get_threshold(rt: *mut Runtime, out: *mut i64) -> Status {
    ffi_boundary!(object Read rt, "pymem_gc_get_threshold", |state| {
        crate::boundary::require(out, "out")?;
        for (i, t) in state.gc.collector.thresholds.iter().enumerate() {
            // SAFETY: writable for 3 values per the contract.
            unsafe { write_out(out.add(i), *t) };
        }
        Ok::<(), Failure>(())
    })
}

/// `gc.set_threshold(t0, t1, t2)`; `t0 == 0` disables automatic collection.
/// Negative values: `PYMEM_ERR_INVALID_ARGUMENT`.
///
/// # Safety
/// `rt` is NULL or a live runtime.
#[no_mangle]
pub unsafe extern "C" fn pymem_gc_set_threshold(rt: *mut Runtime, t0: i64, t1: i64, t2: i64) -> Status {
    ffi_boundary!(object Full rt, "pymem_gc_set_threshold", |state| {
        if t0 < 0 || t1 < 0 || t2 < 0 {
            return Err(Failure::new(Status::PYMEM_ERR_INVALID_ARGUMENT, "thresholds must not be negative"));
        }
        state.gc.collector.set_thresholds(&mut state.heap, [t0, t1, t2]);
        Ok(())
    })
}

/// The three counts (`gc.get_count()`) into `out[0..3]`: tracked allocations
/// minus deallocations since generation 0's last collection, then the
/// collections of the younger generation since each one's last collection.
///
/// # Safety
/// `rt` is NULL or a live runtime; `out` is NULL (an error) or writable for 3 values.
#[no_mangle]
pub unsafe extern "C" fn pymem_gc_get_count(rt: *mut Runtime, out: *mut i64) -> Status {
    ffi_boundary!(object Read rt, "pymem_gc_get_count", |state| {
        crate::boundary::require(out, "out")?;
        for (i, n) in state.gc.collector.counts(&state.heap).iter().enumerate() {
            // SAFETY: writable for 3 values per the contract.
            unsafe { write_out(out.add(i), *n) };
        }
        Ok::<(), Failure>(())
    })
}

/// `*out = 1` if the collector tracks `o` (`gc.is_tracked`): containers are
/// tracked from creation (dicts too, as CPython 3.14); ints, floats, strs
/// never; a tuple of atoms stops being tracked at its first collection.
///
/// # Safety
/// `rt` is NULL or a live runtime; `out` is NULL (an error) or writable.
#[no_mangle]
pub unsafe extern "C" fn pymem_gc_is_tracked(rt: *mut Runtime, o: *mut Object, out: *mut c_int) -> Status {
    ffi_boundary!(object Read rt, "pymem_gc_is_tracked", |state| {
        let o = crate::object::arg_obj(&state.heap, o)?;
        crate::boundary::require(out, "out")?;
        // SAFETY: checked non-null.
        unsafe { write_out(out, state.heap.is_tracked(o) as c_int) };
        Ok::<(), Failure>(())
    })
}

/// `*out = 1` if `o`'s finalizer has run (`gc.is_finalized`).
///
/// # Safety
/// `rt` is NULL or a live runtime; `out` is NULL (an error) or writable.
#[no_mangle]
pub unsafe extern "C" fn pymem_gc_is_finalized(rt: *mut Runtime, o: *mut Object, out: *mut c_int) -> Status {
    ffi_boundary!(object Read rt, "pymem_gc_is_finalized", |state| {
        let o = crate::object::arg_obj(&state.heap, o)?;
        crate::boundary::require(out, "out")?;
        // SAFETY: checked non-null.
        unsafe { write_out(out, state.heap.is_finalized(o) as c_int) };
        Ok::<(), Failure>(())
    })
}
