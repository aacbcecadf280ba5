//! Namespaces: the C entry points over `namespace-cleaner` (IPython's
//! `%who`, `%whos`, `%reset`, `%reset_selective`, `%xdel`, and who keeps an
//! object alive).
//!
//! Rules of this section (they hold for every function below):
//! - A namespace is an object (`pymem_type_name` says "namespace"): the
//!   caller owns the reference `pymem_ns_new` hands out and decrefs it like
//!   any other; the collector tracks it. Passing another object where a
//!   namespace is expected gives `PYMEM_ERR_TYPE`.
//! - Names are NUL-terminated UTF-8 (`PYMEM_ERR_INVALID_ARGUMENT`
//!   otherwise); an unbound name gives `PYMEM_ERR_KEY`.
//! - User names, the ones listed and reset, follow the seed: not starting
//!   with `_`, not hidden, not bound to a module or a function.
//! - Every failure leaves every namespace as it was.
//! - Thread rule: the runtime's owner thread only (`PYMEM_ERR_BUSY`).
//!
//! `pymem_ns_reset` is the one that runs host code: the deletions may free
//! host objects (their `clear`/`dealloc`), and the full collection after
//! them calls `traverse`, `finalize`, `clear` and the gc callbacks, each
//! outside any borrow of the heap, as `pymem_gc_collect` does.

use std::ffi::{c_char, c_void};
use std::panic::{catch_unwind, AssertUnwindSafe};

use obmalloc::BlockKind;
use refcount_object::Obj;

use crate::boundary::{c_message, enter_for, ffi_boundary, require, run, write_out, Access, Failure};
use crate::object::{after_object_call, arg, give, name_arg, Object};
use crate::runtime::{Restriction, Runtime, RuntimeState};
use crate::status::Status;

/// `pymem_ns_new` flag: the namespace starts with what a notebook has, all
/// hidden: `In` (a list), `Out` (a dict), and the functions `get_ipython`,
/// `exit` and `quit` (which return None).
pub const PYMEM_NS_NOTEBOOK: u32 = 1;

/// What `pymem_ns_reset` did.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ResetReport {
    /// Names deleted from the namespace.
    pub names_removed: u64,
    /// Objects freed: the runtime's live objects before minus after
    /// (whatever the deletions and the collection freed, free lists
    /// emptied).
    pub objects_freed: u64,
    /// The allocator's bytes in use before minus after.
    pub bytes_freed: u64,
    /// Resident memory given back to the OS during the call: empty pools,
    /// free arenas, large blocks with their own mapping.
    pub bytes_returned_to_os: u64,
    /// What the full collection found unreachable (collected +
    /// uncollectable, as `gc.collect()` returns).
    pub unreachable: u64,
}

/// A validated namespace argument.
fn ns_arg(state: &RuntimeState, ns: *mut Object) -> Result<Obj, Failure> {
    let o = arg(&state.heap, ns, "ns")?;
    state.ns.check(&state.heap, o)?;
    Ok(o)
}

/// An optional NUL-terminated UTF-8 argument (NULL = none).
fn optional_text<'a>(text: *const c_char, what: &str) -> Result<Option<&'a str>, Failure> {
    if text.is_null() {
        return Ok(None);
    }
    let bytes = name_arg(text, what)?;
    // `name_arg` checked the bytes are UTF-8.
    Ok(Some(std::str::from_utf8(bytes).unwrap_or_default()))
}

/// `get_ipython`, `exit` and `quit` of a notebook namespace: they return
/// None (what they would do in a notebook is the host's business).
unsafe extern "C" fn notebook_function(
    _rt: *mut Runtime,
    _args: *const *mut Object,
    _nargs: usize,
    _result: *mut *mut Object,
    _userdata: *mut c_void,
) -> Status {
    Status::PYMEM_OK
}

/// A new namespace named `name` (NUL-terminated UTF-8), empty, or with a
/// notebook's hidden names when `flags` has `PYMEM_NS_NOTEBOOK`; `*out` is a
/// NEW reference. Other flag bits: `PYMEM_ERR_INVALID_ARGUMENT`.
///
/// # Safety
/// `rt` is NULL or a live runtime; `name` is NULL (an error) or a C string;
/// `out` is NULL (an error) or writable.
#[no_mangle]
pub unsafe extern "C" fn pymem_ns_new(
    rt: *mut Runtime,
    name: *const c_char,
    flags: u32,
    out: *mut *mut Object,
) -> Status {
    ffi_boundary!(object Full rt, "pymem_ns_new", |state| {
        let name = name_arg(name, "name")?;
        require(out, "out")?;
        if flags & !PYMEM_NS_NOTEBOOK != 0 {
            return Err(Failure::new(
                Status::PYMEM_ERR_INVALID_ARGUMENT,
                format!("unknown flags {flags:#x} (only PYMEM_NS_NOTEBOOK is defined)"),
            ));
        }
        let ns = state.ns.create(&mut state.heap, name)?;
        if flags & PYMEM_NS_NOTEBOOK != 0 {
            let native = notebook_function as *const () as usize;
            if let Err(e) = state.ns.add_notebook_names(&mut state.heap, ns, native) {
                state.heap.decref(ns);
                return Err(e.into());
            }
        }
        give(out, ns);
        Ok::<(), Failure>(())
    })
}

/// `name = value` in `ns`: the namespace takes its own reference (the
/// caller keeps its). Rebinding a hidden name to another object makes it a
/// user name again.
///
/// # Safety
/// `rt` is NULL or a live runtime; `name` is NULL (an error) or a C string.
#[no_mangle]
pub unsafe extern "C" fn pymem_ns_set(
    rt: *mut Runtime,
    ns: *mut Object,
    name: *const c_char,
    value: *mut Object,
) -> Status {
    ffi_boundary!(object Full rt, "pymem_ns_set", |state| {
        let ns = ns_arg(state, ns)?;
        let name = name_arg(name, "name")?;
        let value = arg(&state.heap, value, "value")?;
        state.ns.set(&mut state.heap, ns, name, value)?;
        Ok::<(), Failure>(())
    })
}

/// The object `name` is bound to in `ns` (a NEW reference);
/// `PYMEM_ERR_KEY` when unbound.
///
/// # Safety
/// `rt` is NULL or a live runtime; `name` is NULL (an error) or a C string;
/// `out` is NULL (an error) or writable.
#[no_mangle]
pub unsafe extern "C" fn pymem_ns_get(
    rt: *mut Runtime,
    ns: *mut Object,
    name: *const c_char,
    out: *mut *mut Object,
) -> Status {
    ffi_boundary!(object Full rt, "pymem_ns_get", |state| {
        let ns = ns_arg(state, ns)?;
        let name = name_arg(name, "name")?;
        require(out, "out")?;
        let v = state.ns.get(&mut state.heap, ns, name)?;
        give(out, state.heap.new_ref(v));
        Ok::<(), Failure>(())
    })
}

/// `del name` in `ns` (a hidden name too); `PYMEM_ERR_KEY` when unbound.
/// What only the binding kept alive is freed at once; cycles wait for a
/// collection.
///
/// # Safety
/// `rt` is NULL or a live runtime; `name` is NULL (an error) or a C string.
#[no_mangle]
pub unsafe extern "C" fn pymem_ns_del(rt: *mut Runtime, ns: *mut Object, name: *const c_char) -> Status {
    ffi_boundary!(object Full rt, "pymem_ns_del", |state| {
        let ns = ns_arg(state, ns)?;
        let name = name_arg(name, "name")?;
        state.ns.del(&mut state.heap, ns, name)?;
        Ok::<(), Failure>(())
    })
}

/// IPython's `%xdel name`: deletes every name, in every namespace of the
/// runtime, bound to the object `name` is bound to in `ns`, and removes
/// that object from the `Out` history of notebook namespaces.
/// `PYMEM_ERR_KEY` when `name` is unbound.
///
/// # Safety
/// `rt` is NULL or a live runtime; `name` is NULL (an error) or a C string.
#[no_mangle]
pub unsafe extern "C" fn pymem_ns_xdel(rt: *mut Runtime, ns: *mut Object, name: *const c_char) -> Status {
    ffi_boundary!(object Full rt, "pymem_ns_xdel", |state| {
        let ns = ns_arg(state, ns)?;
        let name = name_arg(name, "name")?;
        state.ns.xdel(&mut state.heap, ns, name)?;
        Ok::<(), Failure>(())
    })
}

/// Marks `name` as a system name: never listed (`who`, `whos`) or reset
/// while it stays bound to the object it is bound to now; rebound to
/// another object it is a user name again (IPython's `user_ns_hidden`).
/// `PYMEM_ERR_KEY` when unbound.
///
/// # Safety
/// `rt` is NULL or a live runtime; `name` is NULL (an error) or a C string.
#[no_mangle]
pub unsafe extern "C" fn pymem_ns_hide(rt: *mut Runtime, ns: *mut Object, name: *const c_char) -> Status {
    ffi_boundary!(object Full rt, "pymem_ns_hide", |state| {
        let ns = ns_arg(state, ns)?;
        let name = name_arg(name, "name")?;
        state.ns.hide(&mut state.heap, ns, name)?;
        Ok::<(), Failure>(())
    })
}

/// `%who_ls`: a NEW list of the user names of `ns` (str), sorted. With a
/// `type_filter` (NULL = all), only names whose value's type name is one
/// of its words, separated by spaces or commas (`"int list"`).
///
/// # Safety
/// `rt` is NULL or a live runtime; `type_filter` is NULL or a C string;
/// `out_list` is NULL (an error) or writable.
#[no_mangle]
pub unsafe extern "C" fn pymem_ns_who(
    rt: *mut Runtime,
    ns: *mut Object,
    type_filter: *const c_char,
    out_list: *mut *mut Object,
) -> Status {
    ffi_boundary!(object Full rt, "pymem_ns_who", |state| {
        let ns = ns_arg(state, ns)?;
        let filter = optional_text(type_filter, "type_filter")?;
        require(out_list, "out_list")?;
        let names = state.ns.who(&mut state.heap, ns, filter)?;
        let list = state.heap.list_new()?;
        for name in names {
            if let Err(e) = state.heap.list_append(list, name) {
                state.heap.decref(list);
                return Err(e.into());
            }
        }
        give(out_list, list);
        Ok::<(), Failure>(())
    })
}

/// `%whos`: the user variables of `ns` as a table (Variable, Type, Size,
/// Data/Info; IPython's layout), Size being the bytes reachable from the
/// variable (each object once, immortal objects excluded), then a total
/// line: the bytes reachable from all of them, shared objects counted once.
/// `*out_table` is freed with `pymem_string_free`. The runtime keeps the
/// last answer for `pymem_report_html`, which draws it.
///
/// # Safety
/// `rt` is NULL or a live runtime; `out_table` is NULL (an error) or writable.
#[no_mangle]
pub unsafe extern "C" fn pymem_ns_whos(rt: *mut Runtime, ns: *mut Object, out_table: *mut *mut c_char) -> Status {
    ffi_boundary!(object Full rt, "pymem_ns_whos", |state| {
        let ns = ns_arg(state, ns)?;
        require(out_table, "out_table")?;
        let table = state.ns.whos_rows(&mut state.heap, ns)?;
        let text = table.to_text();
        let ns_name = state.ns.name(&mut state.heap, ns);
        state.report.record_whos(ns_name, table);
        // SAFETY: checked non-null.
        unsafe { write_out(out_table, c_message(&text).into_raw()) };
        Ok::<(), Failure>(())
    })
}

/// What `pymem_ns_reset` measures before it deletes anything.
struct Before {
    stats: obmalloc::Stats,
    objects: u64,
    names_removed: u64,
}

/// `%reset -s` (`regex` NULL) or `%reset_selective regex`: deletes the user
/// names of `ns` — those whose name the regex matches anywhere (Python's
/// `re.search`) — then runs a full collection, empties the free lists, and
/// gives every empty pool, free arena and freed large block back to the OS,
/// and the C library's free heap pages too (`malloc_trim`, where blocks of
/// 513 B..128 KiB and pymem's scratch memory live). `*out` reports what
/// happened. An invalid regex gives `PYMEM_ERR_INVALID_ARGUMENT` with the
/// regex error in the message, and deletes nothing. Host callbacks run
/// during the call (the collection's, and `clear`/`dealloc` of freed host
/// objects).
///
/// # Safety
/// `rt` is NULL or a live runtime; `regex` is NULL or a C string; `out` is
/// NULL (an error) or writable.
#[no_mangle]
pub unsafe extern "C" fn pymem_ns_reset(
    rt: *mut Runtime,
    ns: *mut Object,
    regex: *const c_char,
    out: *mut ResetReport,
) -> Status {
    const FUNCTION: &str = "pymem_ns_reset";
    // SAFETY: the C caller passes NULL or a live runtime (API contract).
    let rt_ref = match unsafe { enter_for(rt, FUNCTION, Access::Full) } {
        Ok(r) => r,
        Err(status) => return status,
    };
    // 1. Validate everything, measure, delete the names.
    let (before, status) = run(rt_ref, FUNCTION, None, |state| {
        state.heap.ensure_ready()?;
        let ns = ns_arg(state, ns)?;
        require(out, "out")?;
        let pattern = optional_text(regex, "regex")?.map(namespace_cleaner::name_pattern).transpose()?;
        let stats = state.heap.alloc.stats();
        let objects = state.heap.alloc.blocks_in_use_of(BlockKind::Object);
        let removed = state.ns.remove_user_names(&mut state.heap, ns, pattern.as_ref())?;
        Ok::<_, Failure>(Some(Before { stats, objects, names_removed: removed as u64 }))
    });
    let Some(before) = before else {
        return status;
    };
    // 2. The host's callbacks for what the deletions freed, then a full
    //    collection for the cycles (it runs host code: outside any borrow).
    after_object_call(rt_ref, FUNCTION);
    let unreachable = match catch_unwind(AssertUnwindSafe(|| crate::gc::run_collection(rt_ref, 2))) {
        Ok(n) => n,
        Err(_) => {
            rt_ref.poison(&format!("{FUNCTION}: internal error (pymem bug) during a collection"));
            return Status::PYMEM_ERR_PANIC;
        }
    };
    after_object_call(rt_ref, FUNCTION);
    // 3. Give the memory back and report.
    run(rt_ref, FUNCTION, (), |state| {
        state.heap.clear_free_lists();
        state.heap.release_scratch();
        state.heap.alloc.release_free_arenas();
        obmalloc::trim_system_heap();
        let after = state.heap.alloc.stats();
        let objects = state.heap.alloc.blocks_in_use_of(BlockKind::Object);
        let report = ResetReport {
            names_removed: before.names_removed,
            objects_freed: before.objects.saturating_sub(objects),
            bytes_freed: before.stats.bytes_in_use.saturating_sub(after.bytes_in_use),
            bytes_returned_to_os: after
                .bytes_returned_to_os_total
                .saturating_sub(before.stats.bytes_returned_to_os_total),
            unreachable,
        };
        // SAFETY: checked non-null in step 1; writable per the contract.
        unsafe { write_out(out, report) };
        Ok::<(), Failure>(())
    })
    .1
}

/// Who keeps `name`'s object alive: every shortest chain of references
/// from a root to it, as text — a binding in a namespace
/// (`namespace 'main': keep[0]['x']`) or references from outside any
/// object (the host's own, like a `pymem_object *` not yet decref'd), as
/// objgraph's `find_backref_chain` finds them. For when a delete did not
/// bring the memory back. Host `traverse` callbacks run during the call,
/// restricted as in a collection. `*out` is freed with `pymem_string_free`.
/// The runtime keeps the last answer for `pymem_report_html`, which draws
/// the chains as a graph.
///
/// # Safety
/// `rt` is NULL or a live runtime; `name` is NULL (an error) or a C string;
/// `out` is NULL (an error) or writable.
#[no_mangle]
pub unsafe extern "C" fn pymem_ns_why_alive(
    rt: *mut Runtime,
    ns: *mut Object,
    name: *const c_char,
    out: *mut *mut c_char,
) -> Status {
    const FUNCTION: &str = "pymem_ns_why_alive";
    // SAFETY: the C caller passes NULL or a live runtime (API contract).
    let rt_ref = match unsafe { enter_for(rt, FUNCTION, Access::Full) } {
        Ok(r) => r,
        Err(status) => return status,
    };
    let (_, status) = run(rt_ref, FUNCTION, (), |state| {
        state.heap.ensure_ready()?;
        let ns = ns_arg(state, ns)?;
        let name = name_arg(name, "name")?;
        require(out, "out")?;
        // Host `traverse` callbacks run inside: they may call nothing.
        let answer = rt_ref.in_callback(Some(Restriction::ReadOnly), || {
            let mut host = crate::gc::host_traverse;
            state.ns.why_alive_chains(&mut state.heap, ns, name, &mut host)
        })?;
        let text = answer.to_text();
        let ns_name = state.ns.name(&mut state.heap, ns);
        state.report.record_why(ns_name, answer);
        // SAFETY: checked non-null.
        unsafe { write_out(out, c_message(&text).into_raw()) };
        Ok::<(), Failure>(())
    });
    after_object_call(rt_ref, FUNCTION);
    status
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_notebook_function_returns_none() {
        let mut result: *mut Object = std::ptr::null_mut();
        // SAFETY: the function reads nothing and leaves `result` NULL.
        let status =
            unsafe { notebook_function(std::ptr::null_mut(), std::ptr::null(), 0, &mut result, std::ptr::null_mut()) };
        assert_eq!(status, Status::PYMEM_OK);
        assert!(result.is_null());
    }
}
