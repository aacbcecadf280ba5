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
//! for during a collection (from a finalizer, a gc callback or the debug
//! sink, "start" and "stop" included) returns 0 at once, as in CPython.
//!
//! Around the phases: the gc callbacks get "start" before and "stop" after
//! every collection; DEBUG_STATS / DEBUG_COLLECTABLE lines go to the debug
//! sink (stderr by default) as soon as the garbage is found and when the
//! collection ends. Both run as host callbacks (anything but
//! `pymem_runtime_free`). The introspection calls (`get_referrers`,
//! `get_referents`) run host `traverse` callbacks restricted exactly as a
//! collection does.
//!
//! Thread rule: the runtime's owner thread only (`PYMEM_ERR_BUSY`).

use std::ffi::{c_char, c_int, c_void, CStr};
use std::panic::{catch_unwind, AssertUnwindSafe};

use gc_generations::{Collector, Profile, Traverser};
use refcount_object::{Heap, HostHooks, Obj};

use crate::boundary::{c_message, enter_for, ffi_boundary, require, run, write_out, Access, Failure};
use crate::object::{Object, VisitFn};
use crate::runtime::{Restriction, Runtime, PYMEM_GC_PROFILE_CPYTHON_313};
use crate::status::Status;

/// The collector and what the C API adds to it (debug sink, callbacks).
pub(crate) struct GcState {
    pub(crate) collector: Collector,
    /// True from before the "start" callbacks to after the "stop" ones: a
    /// collection asked for meanwhile returns 0 at once.
    running: bool,
    /// Where DEBUG_STATS / DEBUG_COLLECTABLE lines go (`None`: stderr), and
    /// its userdata.
    sink: Option<(TextSinkFn, usize)>,
    /// `gc.callbacks`, in the order they were added.
    callbacks: Vec<CallbackEntry>,
    next_callback_id: u64,
}

/// A registered gc callback.
#[derive(Clone, Copy)]
struct CallbackEntry {
    id: u64,
    callback: GcCallbackFn,
    userdata: usize,
}

impl GcState {
    pub(crate) fn new(profile: i32) -> GcState {
        let profile = if profile == PYMEM_GC_PROFILE_CPYTHON_313 { Profile::Cpython313 } else { Profile::Cpython311 };
        GcState {
            collector: Collector::new(profile),
            running: false,
            sink: None,
            callbacks: Vec::new(),
            next_callback_id: 1,
        }
    }

    /// Whether a collection is running, its start/stop callbacks included.
    pub(crate) fn is_collecting(&self) -> bool {
        self.running || self.collector.is_collecting()
    }
}

/// The visit function pymem hands to a host `traverse`: appends the child
/// to the collector's list (`arg`). Nothing is dereferenced here: the
/// collector keeps only the children that are live objects of the runtime.
unsafe extern "C" fn push_child(child: *mut Object, arg: *mut c_void) -> c_int {
    if let (Some(child), false) = (Obj::new(child as *mut refcount_object::ObjHeader), arg.is_null()) {
        // SAFETY: `arg` is the `&mut Vec<Obj>` passed by `host_traverse`,
        // alive and not otherwise borrowed for the duration of the call.
        unsafe { &mut *(arg as *mut Vec<Obj>) }.push(child);
    }
    0
}

/// Calls the host `traverse` of `o`'s type, appending what it reports to
/// `children`.
pub(crate) fn host_traverse(o: Obj, hooks: HostHooks, children: &mut Vec<Obj>) {
    if hooks.traverse == 0 {
        return;
    }
    // SAFETY: `traverse` was stored from a non-NULL `pymem_traverse_fn`.
    let f: unsafe extern "C" fn(*mut Object, VisitFn, *mut c_void, *mut c_void) -> c_int =
        unsafe { std::mem::transmute(hooks.traverse) };
    // SAFETY: the host's function, called as its C type promises; `arg`
    // points at `children`, alive until it returns.
    unsafe {
        f(
            o.as_ptr() as *mut Object,
            Some(push_child),
            children as *mut Vec<Obj> as *mut c_void,
            hooks.userdata as *mut c_void,
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
    if state(rt).gc.is_collecting() {
        return 0;
    }
    state(rt).gc.running = true;
    let gen_i32 = generation as i32;
    notify_callbacks(rt, c"start", GcInfo { generation: gen_i32, collected: 0, uncollectable: 0, duration_ns: 0 });
    // Phase 1: find the garbage; host traverse callbacks may not call in.
    let mut c = rt.in_callback(Some(Restriction::ReadOnly), || {
        let st = state(rt);
        let heap = &mut *st.heap;
        st.gc.collector.begin(heap, generation, &mut host_traverse)
    });
    let lines = std::mem::take(&mut c.debug_lines);
    // Host code from here on (the debug sink, weak reference callbacks,
    // finalizers) may resurrect garbage: phase 3 looks for it then.
    let mut host_code_ran = !lines.is_empty();
    emit_debug_lines(rt, lines);
    // Weak references to the garbage: cleared, then their callbacks run.
    host_code_ran |= crate::weakref::handle_weakrefs(rt, &c);
    if host_code_ran {
        state(rt).gc.collector.note_host_code_ran(&mut c);
    }
    // Phase 2: finalizers (PEP 442), each with a reference held.
    let finalize = {
        let st = state(rt);
        st.gc.collector.finalizers(&mut st.heap, &mut c)
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
        st.gc.collector.check_resurrection(heap, &mut c, &mut host_traverse);
    });
    // Phase 4: the garbage in one sweep when no host code is involved, or
    // each object cleared (built-in part, then host clear).
    let swept = {
        let st = state(rt);
        st.gc.collector.delete_without_host(&mut st.heap, &mut c)
    };
    if !swept {
        clear_one_by_one(rt, &mut c);
    }
    let st = state(rt);
    let (found, elapsed, lines) = st.gc.collector.finish(&mut st.heap, c);
    emit_debug_lines(rt, lines);
    let duration_ns = u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX);
    crate::report::on_collection(state(rt), generation, found, duration_ns);
    notify_callbacks(rt, c"stop", GcInfo { generation: gen_i32, collected: found, uncollectable: 0, duration_ns });
    state(rt).gc.running = false;
    found
}

/// Phase 4 object by object: each garbage object gets its built-in part
/// cleared and the host `clear` (refcount calls only), with a reference
/// held; the cycles fall apart by reference counting.
fn clear_one_by_one(rt: &Runtime, c: &mut gc_generations::Collection) {
    let rt_ptr = rt as *const Runtime as *mut Runtime;
    loop {
        let next = {
            let st = state(rt);
            st.gc.collector.next_garbage(&mut st.heap, c)
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
        st.gc.collector.after_clear(&mut st.heap, c, o);
        st.heap.decref(o);
    }
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
    if !st.heap.gc.enabled || st.gc.is_collecting() {
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
/// uncollectable, as `gc.collect()` returns: the garbage left after the
/// finalizers ran (what a finalizer resurrected is not counted, as in
/// CPython 3.11). During a collection (from a finalizer, gc callback or the
/// debug sink) it returns at once with 0 found.
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

// ----------------------------------------------------------------------
// debug flags and output, statistics, callbacks

/// `pymem_gc_set_debug` flag (`gc.DEBUG_STATS`): each collection writes
/// CPython's statistics lines to the debug sink: `gc: collecting generation
/// N...`, `gc: objects in each generation: a b c`, `gc: objects in permanent
/// generation: p`, then `gc: done, X unreachable, Y uncollectable, 0.0001s
/// elapsed`.
pub const PYMEM_GC_DEBUG_STATS: u32 = 1;
/// `pymem_gc_set_debug` flag (`gc.DEBUG_COLLECTABLE`): one line per garbage
/// object found, `gc: collectable <list 0x...>` (its type name and address).
pub const PYMEM_GC_DEBUG_COLLECTABLE: u32 = 2;
/// `pymem_gc_set_debug` flag (`gc.DEBUG_UNCOLLECTABLE`): a line per
/// uncollectable object (there are none: no legacy finalizers).
pub const PYMEM_GC_DEBUG_UNCOLLECTABLE: u32 = 4;
/// `pymem_gc_set_debug` flag (`gc.DEBUG_SAVEALL`): garbage is not freed but
/// kept alive in the list `pymem_gc_garbage` hands out.
pub const PYMEM_GC_DEBUG_SAVEALL: u32 = 32;
/// `gc.DEBUG_LEAK`: COLLECTABLE | UNCOLLECTABLE | SAVEALL.
pub const PYMEM_GC_DEBUG_LEAK: u32 = 38;

/// One generation's statistics, as `gc.get_stats()` reports them.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct GcGenStats {
    /// Collections of this generation (manual and automatic).
    pub collections: u64,
    /// Objects those collections found unreachable (freed, or kept with
    /// `PYMEM_GC_DEBUG_SAVEALL`).
    pub collected: u64,
    /// Objects found uncollectable (0: there are no legacy finalizers).
    pub uncollectable: u64,
}

/// What a gc callback is told: CPython's `info` dict (generation, collected,
/// uncollectable) and the collection's duration (CPython 3.15's
/// `duration`). At "start" only `generation` is set (the rest is 0).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct GcInfo {
    /// The generation collected (0, 1 or 2).
    pub generation: i32,
    /// Objects found unreachable ("stop" only).
    pub collected: u64,
    /// Objects found uncollectable ("stop" only; always 0).
    pub uncollectable: u64,
    /// Nanoseconds the collection took ("stop" only).
    pub duration_ns: u64,
}

/// Receives one line of debug output (`line`: NUL-terminated, without a
/// trailing newline, BORROWED for the call). Called on the runtime's owner
/// thread during a collection, like a gc callback: it may call anything
/// but `pymem_runtime_free`.
pub type TextSink = Option<unsafe extern "C" fn(line: *const c_char, userdata: *mut c_void)>;
type TextSinkFn = unsafe extern "C" fn(*const c_char, *mut c_void);

/// A gc callback (`gc.callbacks`): called with `phase` "start" before every
/// collection (manual or automatic) and "stop" after it, with `info`
/// (BORROWED for the call). It may call anything but `pymem_runtime_free`
/// (`PYMEM_ERR_BUSY`); a `pymem_gc_collect` from inside returns at once
/// with 0 found, as CPython's does.
pub type GcCallback =
    Option<unsafe extern "C" fn(rt: *mut Runtime, phase: *const c_char, info: *const GcInfo, userdata: *mut c_void)>;
type GcCallbackFn = unsafe extern "C" fn(*mut Runtime, *const c_char, *const GcInfo, *mut c_void);

/// Delivers debug lines to the sink (called as a host callback, with no
/// borrow of the state alive) or, with no sink, to stderr.
fn emit_debug_lines(rt: &Runtime, lines: Vec<String>) {
    for line in lines {
        // Read each time: the sink may replace itself.
        match state(rt).gc.sink {
            None => {
                use std::io::Write;
                let _ = writeln!(std::io::stderr().lock(), "{line}");
            }
            Some((sink, userdata)) => {
                let text = c_message(&line);
                rt.in_callback(None, || {
                    // SAFETY: the host's function, stored from a non-NULL
                    // `pymem_text_sink`, called as its C type promises; the
                    // line lives until it returns.
                    unsafe { sink(text.as_ptr(), userdata as *mut c_void) }
                });
            }
        }
    }
}

/// Calls every gc callback with `phase` and `info`, in the order they were
/// added. A callback removed by an earlier one (in this phase) is skipped;
/// one added meanwhile waits for the next phase.
fn notify_callbacks(rt: &Runtime, phase: &CStr, info: GcInfo) {
    let rt_ptr = rt as *const Runtime as *mut Runtime;
    let registered: Vec<CallbackEntry> = state(rt).gc.callbacks.clone();
    for entry in registered {
        if !state(rt).gc.callbacks.iter().any(|e| e.id == entry.id) {
            continue;
        }
        rt.in_callback(None, || {
            // SAFETY: the host's function, stored from a non-NULL
            // `pymem_gc_callback`, called as its C type promises; `phase`
            // and `info` live until it returns.
            unsafe { (entry.callback)(rt_ptr, phase.as_ptr(), &info, entry.userdata as *mut c_void) }
        });
    }
}

/// `gc.set_debug(flags)`: `PYMEM_GC_DEBUG_STATS`, `_COLLECTABLE`,
/// `_UNCOLLECTABLE`, `_SAVEALL`, `_LEAK` or'ed together (0 turns debugging
/// off). Other bits are kept and ignored, as CPython keeps them. Lines go to
/// the sink of `pymem_gc_set_debug_sink` (stderr by default).
///
/// # Safety
/// `rt` is NULL or a live runtime.
#[no_mangle]
pub unsafe extern "C" fn pymem_gc_set_debug(rt: *mut Runtime, flags: u32) -> Status {
    ffi_boundary!(object Full rt, "pymem_gc_set_debug", |state| {
        state.gc.collector.debug = flags;
        Ok::<(), Failure>(())
    })
}

/// `gc.get_debug()`: the flags last set (0 by default).
///
/// # Safety
/// `rt` is NULL or a live runtime; `out` is NULL (an error) or writable.
#[no_mangle]
pub unsafe extern "C" fn pymem_gc_get_debug(rt: *mut Runtime, out: *mut u32) -> Status {
    ffi_boundary!(object Read rt, "pymem_gc_get_debug", |state| {
        require(out, "out")?;
        // SAFETY: checked non-null.
        unsafe { write_out(out, state.gc.collector.debug) };
        Ok::<(), Failure>(())
    })
}

/// Sends the collector's debug lines (see `PYMEM_GC_DEBUG_STATS`) to
/// `sink(line, userdata)` instead of stderr; NULL restores stderr (where
/// each line is written with a newline). The sink is called during
/// collections like a gc callback (it may call anything but
/// `pymem_runtime_free`); `userdata` is the host's and is never freed.
///
/// # Safety
/// `rt` is NULL or a live runtime; `sink` is NULL or a function of the
/// `pymem_text_sink` type that stays callable with `userdata` while set.
#[no_mangle]
pub unsafe extern "C" fn pymem_gc_set_debug_sink(rt: *mut Runtime, sink: TextSink, userdata: *mut c_void) -> Status {
    ffi_boundary!(object Full rt, "pymem_gc_set_debug_sink", |state| {
        state.gc.sink = sink.map(|f| (f, userdata as usize));
        Ok::<(), Failure>(())
    })
}

/// `gc.get_stats()`: for each generation (`out[0..3]`) its collections, and
/// the objects they found collectable and uncollectable.
///
/// # Safety
/// `rt` is NULL or a live runtime; `out` is NULL (an error) or writable for 3 values.
#[no_mangle]
pub unsafe extern "C" fn pymem_gc_get_stats(rt: *mut Runtime, out: *mut GcGenStats) -> Status {
    ffi_boundary!(object Read rt, "pymem_gc_get_stats", |state| {
        require(out, "out")?;
        for (i, s) in state.gc.collector.stats.iter().enumerate() {
            let stats = GcGenStats { collections: s.collections, collected: s.collected, uncollectable: s.uncollectable };
            // SAFETY: writable for 3 values per the contract.
            unsafe { write_out(out.add(i), stats) };
        }
        Ok::<(), Failure>(())
    })
}

/// Adds a gc callback (`gc.callbacks.append`): `cb(rt, "start", info,
/// userdata)` before every collection, manual or automatic, and `cb(rt,
/// "stop", info, userdata)` after it (see `pymem_gc_callback`). Callbacks
/// run in the order they were added; the same function may be added twice
/// (two ids). `*id` gets the id for `pymem_gc_remove_callback`.
///
/// # Safety
/// `rt` is NULL or a live runtime; `cb` is NULL (an error) or a function of
/// the `pymem_gc_callback` type that stays callable while added; `id` is
/// NULL (an error) or writable.
#[no_mangle]
pub unsafe extern "C" fn pymem_gc_add_callback(
    rt: *mut Runtime,
    cb: GcCallback,
    userdata: *mut c_void,
    id: *mut u64,
) -> Status {
    ffi_boundary!(object Full rt, "pymem_gc_add_callback", |state| {
        let callback = cb.ok_or_else(|| crate::boundary::null_argument("cb"))?;
        require(id, "id")?;
        let gc = &mut state.gc;
        let new_id = gc.next_callback_id;
        gc.next_callback_id += 1;
        gc.callbacks.push(CallbackEntry { id: new_id, callback, userdata: userdata as usize });
        // SAFETY: checked non-null.
        unsafe { write_out(id, new_id) };
        Ok::<(), Failure>(())
    })
}

/// Removes the gc callback added with id `id`; an unknown (or already
/// removed) id gives `PYMEM_ERR_KEY`. Removed from inside a callback, it is
/// not called again, not even later in the same phase.
///
/// # Safety
/// `rt` is NULL or a live runtime.
#[no_mangle]
pub unsafe extern "C" fn pymem_gc_remove_callback(rt: *mut Runtime, id: u64) -> Status {
    ffi_boundary!(object Full rt, "pymem_gc_remove_callback", |state| {
        let callbacks = &mut state.gc.callbacks;
        match callbacks.iter().position(|e| e.id == id) {
            Some(i) => {
                callbacks.remove(i);
                Ok(())
            }
            None => Err(Failure::new(Status::PYMEM_ERR_KEY, format!("no gc callback with id {id}"))),
        }
    })
}

// ----------------------------------------------------------------------
// freeze, introspection, saved garbage

/// `gc.freeze()`: every tracked object moves to the permanent generation,
/// which collections ignore (for copy-on-write friendly `fork`); the
/// counts restart at 0.
///
/// # Safety
/// `rt` is NULL or a live runtime.
#[no_mangle]
pub unsafe extern "C" fn pymem_gc_freeze(rt: *mut Runtime) -> Status {
    ffi_boundary!(object Full rt, "pymem_gc_freeze", |state| {
        state.gc.collector.freeze(&mut state.heap);
        Ok::<(), Failure>(())
    })
}

/// `gc.unfreeze()`: the permanent generation goes back into the oldest one.
///
/// # Safety
/// `rt` is NULL or a live runtime.
#[no_mangle]
pub unsafe extern "C" fn pymem_gc_unfreeze(rt: *mut Runtime) -> Status {
    ffi_boundary!(object Full rt, "pymem_gc_unfreeze", |state| {
        state.gc.collector.unfreeze(&mut state.heap);
        Ok::<(), Failure>(())
    })
}

/// `gc.get_freeze_count()`: the number of objects in the permanent generation.
///
/// # Safety
/// `rt` is NULL or a live runtime; `out` is NULL (an error) or writable.
#[no_mangle]
pub unsafe extern "C" fn pymem_gc_get_freeze_count(rt: *mut Runtime, out: *mut usize) -> Status {
    ffi_boundary!(object Read rt, "pymem_gc_get_freeze_count", |state| {
        require(out, "out")?;
        // SAFETY: checked non-null.
        unsafe { write_out(out, state.heap.gc.permanent.len()) };
        Ok::<(), Failure>(())
    })
}

/// A new list holding (new references to) `items`.
fn new_list(heap: &mut Heap, items: &[Obj]) -> Result<Obj, Failure> {
    let list = heap.list_new()?;
    for &o in items {
        if let Err(e) = heap.list_append(list, o) {
            heap.decref(list);
            return Err(e.into());
        }
    }
    Ok(list)
}

/// `gc.get_objects(generation)`: a new list of the objects the collector
/// tracks in `generation` (0, 1, 2), or in all three for -1 (the permanent
/// generation is not included, as in CPython), youngest first. Each item is
/// a reference the list holds; the list itself is not included. Another
/// generation: `PYMEM_ERR_INVALID_ARGUMENT` (CPython's ValueError).
///
/// # Safety
/// `rt` is NULL or a live runtime; `out_list` is NULL (an error) or writable.
#[no_mangle]
pub unsafe extern "C" fn pymem_gc_get_objects(
    rt: *mut Runtime,
    generation: c_int,
    out_list: *mut *mut Object,
) -> Status {
    ffi_boundary!(object Full rt, "pymem_gc_get_objects", |state| {
        require(out_list, "out_list")?;
        let generations = match generation {
            -1 => 0..3,
            0..=2 => generation as usize..generation as usize + 1,
            g if g < 0 => {
                return Err(Failure::new(
                    Status::PYMEM_ERR_INVALID_ARGUMENT,
                    "generation parameter cannot be negative (-1 means all generations)",
                ))
            }
            _ => {
                return Err(Failure::new(
                    Status::PYMEM_ERR_INVALID_ARGUMENT,
                    "generation parameter must be less than the number of available generations (3)",
                ))
            }
        };
        let heap = &mut state.heap;
        let objects: Vec<Obj> = generations.flat_map(|g| heap.gc.generations[g].objects()).collect();
        let list = new_list(heap, &objects)?;
        // SAFETY: checked non-null.
        unsafe { write_out(out_list, list.as_ptr() as *mut Object) };
        Ok(())
    })
}

/// The boundary of an entry point that runs host `traverse` callbacks:
/// the owner check, then `body` (which borrows the state only between host
/// calls); a failure's message is recorded, a panic poisons the runtime;
/// afterwards the host's pending callbacks and a due collection run, as
/// after every object call.
///
/// # Safety
/// `rt` is NULL or a live runtime.
unsafe fn traversing_entry(
    rt: *mut Runtime,
    function: &'static str,
    body: impl FnOnce(&Runtime) -> Result<(), Failure>,
) -> Status {
    // SAFETY: contract.
    let rt_ref = match unsafe { enter_for(rt, function, Access::Full) } {
        Ok(r) => r,
        Err(status) => return status,
    };
    let status = match catch_unwind(AssertUnwindSafe(|| body(rt_ref))) {
        Ok(Ok(())) => Status::PYMEM_OK,
        Ok(Err(failure)) => {
            rt_ref.set_error(failure.status, &format!("{function}: {}", failure.message));
            failure.status
        }
        Err(_) => {
            rt_ref.poison(&format!("{function}: internal error (pymem bug), runtime poisoned"));
            return Status::PYMEM_ERR_PANIC;
        }
    };
    crate::object::after_object_call(rt_ref, function);
    status
}

/// Calls `visit(parent, child)` for every reference each of `objs` holds:
/// its built-in part and, for host types, the host's `traverse`, which runs
/// with the runtime restricted as during a collection (it may call
/// nothing that changes anything). Host-reported children that are not
/// live objects of this runtime are skipped.
fn traverse_each(rt: &Runtime, objs: &[Obj], visit: &mut dyn FnMut(Obj, Obj)) {
    rt.in_callback(Some(Restriction::ReadOnly), || {
        let heap = &*state(rt).heap;
        let mut host = host_traverse;
        let mut traverser = Traverser::new(&mut host);
        for &parent in objs {
            traverser.traverse(heap, parent, &mut |child| visit(parent, child));
        }
    });
}

/// Validates the object argument and the out-pointer of the referrer calls.
fn object_and_out(rt: &Runtime, o: *mut Object, out_list: *mut *mut Object) -> Result<Obj, Failure> {
    let st = state(rt);
    st.heap.ensure_ready()?;
    let o = crate::object::arg_obj(&st.heap, o)?;
    require(out_list, "out_list")?;
    Ok(o)
}

/// `gc.get_referrers(o)`: a new list of the tracked objects (generations
/// 0-2; as in CPython, not the permanent generation) that refer to `o`,
/// each once: those whose traversal (built-in part, and a host type's
/// `traverse`) reports `o`. Host `traverse` callbacks run during the call,
/// restricted as in a collection. The list itself is not included.
///
/// # Safety
/// `rt` is NULL or a live runtime; `o` may be any value (validated);
/// `out_list` is NULL (an error) or writable.
#[no_mangle]
pub unsafe extern "C" fn pymem_gc_get_referrers(
    rt: *mut Runtime,
    o: *mut Object,
    out_list: *mut *mut Object,
) -> Status {
    // SAFETY: the C caller passes NULL or a live runtime (API contract).
    unsafe {
        traversing_entry(rt, "pymem_gc_get_referrers", |rt| {
            let target = object_and_out(rt, o, out_list)?;
            let candidates: Vec<Obj> = {
                let heap = &state(rt).heap;
                (0..3).flat_map(|g| heap.gc.generations[g].objects()).collect()
            };
            let mut referrers: Vec<Obj> = Vec::new();
            traverse_each(rt, &candidates, &mut |parent, child| {
                // A parent's children are visited together: one entry each.
                if child == target && referrers.last() != Some(&parent) {
                    referrers.push(parent);
                }
            });
            let list = new_list(&mut state(rt).heap, &referrers)?;
            // SAFETY: checked non-null.
            write_out(out_list, list.as_ptr() as *mut Object);
            Ok(())
        })
    }
}

/// `gc.get_referents(o)`: a new list of the objects `o` refers to, as its
/// traversal reports them (built-in part, then a host type's `traverse`),
/// in that order and with repeats, as CPython returns them: a list's items,
/// a dict's values — each followed by its key once a key that is not a str
/// went into the dict (CPython 3.11's `dict_traverse`: `{'a': x}` gives
/// `[x]`, `{1: x}` gives `[x, 1]`) —, an instance's attribute values and
/// payload children... Atoms (int, float, str) refer to nothing: an empty
/// list.
///
/// # Safety
/// `rt` is NULL or a live runtime; `o` may be any value (validated);
/// `out_list` is NULL (an error) or writable.
#[no_mangle]
pub unsafe extern "C" fn pymem_gc_get_referents(
    rt: *mut Runtime,
    o: *mut Object,
    out_list: *mut *mut Object,
) -> Status {
    // SAFETY: the C caller passes NULL or a live runtime (API contract).
    unsafe {
        traversing_entry(rt, "pymem_gc_get_referents", |rt| {
            let target = object_and_out(rt, o, out_list)?;
            let mut referents: Vec<Obj> = Vec::new();
            traverse_each(rt, &[target], &mut |_, child| referents.push(child));
            let list = new_list(&mut state(rt).heap, &referents)?;
            // SAFETY: checked non-null.
            write_out(out_list, list.as_ptr() as *mut Object);
            Ok(())
        })
    }
}

/// `gc.garbage`: a new list of the objects collections saved instead of
/// freeing them while `PYMEM_GC_DEBUG_SAVEALL` was set, oldest first. The
/// collector keeps its own references to them until
/// `pymem_gc_clear_garbage` (or `pymem_runtime_free`).
///
/// # Safety
/// `rt` is NULL or a live runtime; `out_list` is NULL (an error) or writable.
#[no_mangle]
pub unsafe extern "C" fn pymem_gc_garbage(rt: *mut Runtime, out_list: *mut *mut Object) -> Status {
    ffi_boundary!(object Full rt, "pymem_gc_garbage", |state| {
        require(out_list, "out_list")?;
        let saved = state.gc.collector.garbage.clone();
        let list = new_list(&mut state.heap, &saved)?;
        // SAFETY: checked non-null.
        unsafe { write_out(out_list, list.as_ptr() as *mut Object) };
        Ok::<(), Failure>(())
    })
}

/// `del gc.garbage[:]`: drops the collector's references to the saved
/// garbage; what nothing else keeps alive becomes garbage again (a cycle
/// waits for the next collection).
///
/// # Safety
/// `rt` is NULL or a live runtime.
#[no_mangle]
pub unsafe extern "C" fn pymem_gc_clear_garbage(rt: *mut Runtime) -> Status {
    ffi_boundary!(object Full rt, "pymem_gc_clear_garbage", |state| {
        for o in std::mem::take(&mut state.gc.collector.garbage) {
            state.heap.decref(o);
        }
        Ok::<(), Failure>(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_flags_are_cpythons_and_the_collectors() {
        use gc_generations::debug;
        assert_eq!(PYMEM_GC_DEBUG_STATS, debug::STATS);
        assert_eq!(PYMEM_GC_DEBUG_COLLECTABLE, debug::COLLECTABLE);
        assert_eq!(PYMEM_GC_DEBUG_UNCOLLECTABLE, debug::UNCOLLECTABLE);
        assert_eq!(PYMEM_GC_DEBUG_SAVEALL, debug::SAVEALL);
        assert_eq!(PYMEM_GC_DEBUG_LEAK, debug::LEAK);
    }
}
