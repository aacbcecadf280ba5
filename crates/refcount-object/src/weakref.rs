//! Weak references: the heap's registry of them.
//!
//! A weak reference refers to an object without counting. Here it is a
//! handle the host owns (`pymem_weakref`): a boxed [`WeakRef`] holding the
//! referent (`None` once it died), the host's callback and its userdata
//! (stored as addresses: this crate never calls host code). Only instances
//! of host types, modules and functions can be weakly referenced; int,
//! float, str, tuple, list and dict are refused with CPython's message
//! ("cannot create weak reference to 'int' object"), and so are the other
//! built-ins (None, bool), which are immortal and never die anyway.
//!
//! The registry belongs to one heap (no global state):
//! - `by_object`: referent → its weak references, oldest first. An object
//!   with an entry carries the `HAS_WEAKREFS` flag, so a death costs one
//!   flag test when there are none.
//! - `live`: the addresses of the handles not yet freed. A handle coming
//!   from C is looked up here before it is dereferenced (O(1)), so a freed,
//!   foreign or garbage pointer is refused, never followed. As for every
//!   address-based check, a freed handle is refused until the same address
//!   is handed out again by a later `weakref_new`.
//! - `due`: handles whose referent died and whose callback has not run yet,
//!   in the order the deaths happened (for one object, newest weak reference
//!   first, as CPython's `PyObject_ClearWeakRefs` walks its list).
//!
//! When an object with weak references dies — its last reference dropped
//! ([`Heap::dealloc`]'s paths call [`Heap::clear_weakrefs`]), or the
//! collector found it to be garbage (the facade calls
//! [`Heap::clear_weakrefs`] for each garbage object before the finalizers,
//! as CPython's `handle_weakrefs`) — every weak reference to it is cleared
//! (`referent = None`) and those with a callback are queued. The facade takes
//! them with [`Heap::take_due_weakref_callback`] and calls them with no
//! borrow of the heap alive. A handle freed while its callback is queued
//! leaves the queue: its callback never runs.
//!
//! Invariants (checked by [`Heap::check_weakref_invariants`]):
//! 1. `o` has an entry in `by_object` iff it has `HAS_WEAKREFS`; the entry is
//!    non-empty and lists live handles whose referent is `Some(o)`.
//! 2. Every live handle whose referent is `Some(o)` is in `o`'s entry, once.
//! 3. A handle is in `due` (once) iff its `queued` flag is set; a queued
//!    handle's referent is `None` and its callback is not 0.

use std::collections::VecDeque;
use std::ptr::NonNull;

use hashbrown::{HashMap, HashSet};

use crate::error::{ObjError, ObjResult};
use crate::heap::Heap;
use crate::object::{flags, header, type_ids, Obj};

/// One weak reference; the host holds its address as a `pymem_weakref *`.
#[derive(Debug)]
pub struct WeakRef {
    /// The object, while it lives; `None` once it died (cleared).
    referent: Option<Obj>,
    /// The host's `pymem_weakref_callback` (0 = none) and its userdata,
    /// opaque here. The callback is taken (set to 0) when it is handed out,
    /// so it runs at most once.
    callback: usize,
    userdata: usize,
    /// Its callback is waiting in the registry's `due` queue.
    queued: bool,
}

/// A weak reference callback to run: the facade calls
/// `callback(rt, handle, userdata)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DueCallback {
    /// The handle (still live: the host may free it inside the callback).
    pub handle: NonNull<WeakRef>,
    pub callback: usize,
    pub userdata: usize,
}

/// The weak references of one heap (see the module documentation).
#[derive(Default)]
pub(crate) struct WeakRegistry {
    by_object: HashMap<Obj, Vec<NonNull<WeakRef>>>,
    live: HashSet<usize>,
    due: VecDeque<NonNull<WeakRef>>,
    /// Whether a loop running the callbacks is on the facade's stack (calls
    /// made from inside a callback leave new ones to that loop). Plain data
    /// for the facade; this crate never reads it.
    running: bool,
}

impl Drop for WeakRegistry {
    /// The handles the host did not free go with the heap (their callbacks
    /// never run, as at a process exit).
    fn drop(&mut self) {
        for addr in self.live.drain() {
            // SAFETY: `live` holds exactly the handles made by `Box::into_raw`
            // in `weakref_new` and not yet freed; each is freed once, here.
            drop(unsafe { Box::from_raw(addr as *mut WeakRef) });
        }
    }
}

impl Heap {
    /// Whether objects of `o`'s type can be weakly referenced: instances of
    /// host types, modules and functions (CPython refuses int, float, str,
    /// tuple, list, dict, None and bool).
    pub fn weakref_allowed(&self, o: Obj) -> bool {
        let id = self.type_id(o);
        (id >= type_ids::FIRST_HOST_TYPE || id == type_ids::MODULE || id == type_ids::FUNCTION) && !self.is_immortal(o)
    }

    /// A new weak reference to `o` (a live object of this heap), with the
    /// host's `callback` (0 = none) and `userdata`, both opaque here. The
    /// handle is owned by the caller until [`Heap::weakref_free`] (or the
    /// heap's drop). A `Type` error for objects that cannot be weakly
    /// referenced, with CPython's message.
    pub fn weakref_new(&mut self, o: Obj, callback: usize, userdata: usize) -> ObjResult<NonNull<WeakRef>> {
        if !self.weakref_allowed(o) {
            return Err(ObjError::Type(format!("cannot create weak reference to '{}' object", self.type_of(o).name())));
        }
        let handle =
            NonNull::from(Box::leak(Box::new(WeakRef { referent: Some(o), callback, userdata, queued: false })));
        self.weakrefs.live.insert(handle.as_ptr() as usize);
        self.weakrefs.by_object.entry(o).or_default().push(handle);
        // SAFETY: `o` is a live object.
        unsafe { header(o) }.flags |= flags::HAS_WEAKREFS;
        Ok(handle)
    }

    /// Turns a handle from outside into a weak reference of this heap, in
    /// O(1), without reading `p` unless it is one.
    pub fn weakref_check(&self, p: *const u8) -> ObjResult<NonNull<WeakRef>> {
        if !p.is_null() && self.weakrefs.live.contains(&(p as usize)) {
            // SAFETY: non-null (checked).
            return Ok(unsafe { NonNull::new_unchecked(p as *mut WeakRef) });
        }
        Err(ObjError::InvalidPointer(if p.is_null() {
            "the weak reference is NULL".into()
        } else {
            format!("invalid weak reference {p:p}: not a live weak reference of this runtime (freed, foreign, or never one)")
        }))
    }

    /// The referent of a weak reference (borrowed), `None` once it died.
    pub fn weakref_referent(&self, p: *const u8) -> ObjResult<Option<Obj>> {
        let wr = self.weakref_check(p)?;
        // SAFETY: a live handle of this registry.
        Ok(unsafe { wr.as_ref() }.referent)
    }

    /// `wr()`: a NEW reference to the referent while it lives, else to None.
    pub fn weakref_get(&mut self, p: *const u8) -> ObjResult<Obj> {
        match self.weakref_referent(p)? {
            Some(o) => Ok(self.new_ref(o)),
            None => Ok(self.none()),
        }
    }

    /// Frees a weak reference. Its callback, queued or not, never runs.
    pub fn weakref_free(&mut self, p: *const u8) -> ObjResult<()> {
        let wr = self.weakref_check(p)?;
        self.weakrefs.live.remove(&(p as usize));
        // SAFETY: a live handle, now unregistered: ours to free.
        let wr = unsafe { Box::from_raw(wr.as_ptr()) };
        if wr.queued {
            self.weakrefs.due.retain(|h| !std::ptr::eq(h.as_ptr() as *const u8, p));
        }
        if let Some(o) = wr.referent {
            let list = self.weakrefs.by_object.get_mut(&o).expect("a referent has an entry (invariant 2)");
            list.retain(|h| !std::ptr::eq(h.as_ptr() as *const u8, p));
            if list.is_empty() {
                self.weakrefs.by_object.remove(&o);
                // SAFETY: the referent of a live handle is a live object.
                unsafe { header(o) }.flags &= !flags::HAS_WEAKREFS;
            }
        }
        Ok(())
    }

    /// The number of weak references to `o` (`weakref.getweakrefcount`).
    pub fn weakref_count(&self, o: Obj) -> usize {
        self.weakrefs.by_object.get(&o).map_or(0, Vec::len)
    }

    /// Clears every weak reference to `o` (they answer None from now on)
    /// and queues the callbacks of those that have one. Called when `o`
    /// dies, and by the collector's weak-reference phase for each garbage
    /// object (before its finalizer: a finalizer that resurrects `o` does not
    /// bring them back, as in CPython). Nothing to do without `HAS_WEAKREFS`.
    pub fn clear_weakrefs(&mut self, o: Obj) {
        // SAFETY: `o` is a live object or one being deallocated.
        let h = unsafe { header(o) };
        if h.flags & flags::HAS_WEAKREFS == 0 {
            return;
        }
        h.flags &= !flags::HAS_WEAKREFS;
        let Some(list) = self.weakrefs.by_object.remove(&o) else { return };
        for &handle in list.iter().rev() {
            // SAFETY: the entry lists live handles (invariant 1), which the
            // registry owns; no other reference to them is alive.
            let wr = unsafe { &mut *handle.as_ptr() };
            wr.referent = None;
            if wr.callback != 0 {
                wr.queued = true;
                self.weakrefs.due.push_back(handle);
            }
        }
    }

    /// Whether weak reference callbacks are waiting to run.
    #[inline(always)]
    pub fn has_due_weakref_callbacks(&self) -> bool {
        !self.weakrefs.due.is_empty()
    }

    /// The next weak reference callback to run (taken: it runs once). The
    /// caller calls it with no borrow of the heap alive.
    pub fn take_due_weakref_callback(&mut self) -> Option<DueCallback> {
        let handle = self.weakrefs.due.pop_front()?;
        // SAFETY: queued handles are live (freeing one removes it from the
        // queue) and owned by the registry.
        let wr = unsafe { &mut *handle.as_ptr() };
        wr.queued = false;
        let callback = std::mem::take(&mut wr.callback);
        Some(DueCallback { handle, callback, userdata: wr.userdata })
    }

    /// Whether a loop running weak reference callbacks is on the facade's
    /// stack (the facade's flag, kept here with the queue it guards).
    pub fn weakref_callbacks_running(&self) -> bool {
        self.weakrefs.running
    }

    pub fn set_weakref_callbacks_running(&mut self, running: bool) {
        self.weakrefs.running = running;
    }

    /// Whether any live object has weak references (the collector's phase
    /// skips its walk of the garbage when none has).
    #[inline(always)]
    pub fn has_weakly_referenced_objects(&self) -> bool {
        !self.weakrefs.by_object.is_empty()
    }

    /// The number of weak reference handles not yet freed.
    pub fn weakref_handles(&self) -> usize {
        self.weakrefs.live.len()
    }

    /// Asserts the registry's invariants (see the module documentation).
    pub fn check_weakref_invariants(&self) {
        let reg = &self.weakrefs;
        let mut referenced = 0;
        for (&o, list) in &reg.by_object {
            // SAFETY: entries belong to live objects (invariant 1).
            assert!(unsafe { header(o) }.flags & flags::HAS_WEAKREFS != 0, "entry without the flag");
            assert!(!list.is_empty(), "empty entry");
            for h in list {
                assert!(reg.live.contains(&(h.as_ptr() as usize)), "entry lists a freed handle");
                // SAFETY: live handle.
                assert_eq!(unsafe { h.as_ref() }.referent, Some(o), "entry lists a handle of another referent");
            }
            referenced += list.len();
        }
        let mut queued = 0;
        let mut with_referent = 0;
        for &addr in &reg.live {
            // SAFETY: live handles.
            let wr = unsafe { &*(addr as *const WeakRef) };
            if let Some(o) = wr.referent {
                with_referent += 1;
                let n = reg.by_object.get(&o).map_or(0, |l| l.iter().filter(|h| h.as_ptr() as usize == addr).count());
                assert_eq!(n, 1, "a handle with a referent is in its entry once");
            }
            let in_due = reg.due.iter().filter(|h| h.as_ptr() as usize == addr).count();
            assert_eq!(in_due, wr.queued as usize, "queued flag and queue disagree");
            if wr.queued {
                queued += 1;
                assert!(wr.referent.is_none() && wr.callback != 0, "a queued handle is cleared and has a callback");
            }
        }
        assert_eq!(referenced, with_referent);
        assert_eq!(queued, reg.due.len(), "the queue holds only live handles");
    }
}

#[cfg(test)]
mod tests {
    use obmalloc::{Allocator, Config};

    use super::*;
    use crate::types::{HostHooks, HostTypeSpec};
    use crate::HeapConfig;

    fn heap() -> Box<Heap> {
        Heap::new(Allocator::new(Config::default()), HeapConfig::default()).unwrap()
    }

    fn host_type(h: &mut Heap, hooks: HostHooks) -> u32 {
        let t =
            h.type_new(&HostTypeSpec { name: "Node".into(), payload_size: 8, hooks, ..Default::default() }).unwrap();
        h.check_type(t).unwrap()
    }

    fn addr(wr: NonNull<WeakRef>) -> *const u8 {
        wr.as_ptr() as *const u8
    }

    #[test]
    fn only_instances_modules_and_functions() {
        let mut h = heap();
        let t = host_type(&mut h, HostHooks::default());
        let refused = [
            (h.int_new(1000).unwrap(), "int"),
            (h.int_new(1).unwrap(), "int"),
            (h.float_new(1.5).unwrap(), "float"),
            (h.str_new(b"abc").unwrap(), "str"),
            (h.tuple_new(&[]).unwrap(), "tuple"),
            (h.list_new().unwrap(), "list"),
            (h.dict_new().unwrap(), "dict"),
            (h.none(), "NoneType"),
            (h.bool_obj(true), "bool"),
        ];
        for (o, name) in refused {
            let e = h.weakref_new(o, 0, 0).unwrap_err();
            assert_eq!(e, ObjError::Type(format!("cannot create weak reference to '{name}' object")));
            assert_eq!(h.weakref_count(o), 0);
            h.decref(o);
        }
        let inst = h.instance_new(t).unwrap();
        let module = h.module_new(b"m").unwrap();
        let func = h.function_new(b"f", 0, 0).unwrap();
        for o in [inst, module, func] {
            let wr = h.weakref_new(o, 0, 0).unwrap();
            assert_eq!(h.weakref_count(o), 1);
            assert_eq!(h.weakref_get(addr(wr)).unwrap(), o);
            assert_eq!(h.refcount(o), 2, "get gives a new reference");
            h.decref(o);
            h.check_weakref_invariants();
            h.decref(o);
            assert_eq!(h.weakref_referent(addr(wr)).unwrap(), None, "cleared at death");
            assert_eq!(h.weakref_get(addr(wr)).unwrap(), h.none());
            h.weakref_free(addr(wr)).unwrap();
        }
        assert_eq!(h.weakref_handles(), 0);
        h.check_weakref_invariants();
    }

    #[test]
    fn death_clears_and_queues_callbacks_newest_first() {
        let mut h = heap();
        let t = host_type(&mut h, HostHooks::default());
        let o = h.instance_new(t).unwrap();
        let a = h.weakref_new(o, 0x1000, 1).unwrap();
        let b = h.weakref_new(o, 0, 2).unwrap();
        let c = h.weakref_new(o, 0x3000, 3).unwrap();
        assert_eq!(h.weakref_count(o), 3);
        assert!(!h.has_due_weakref_callbacks());
        h.check_weakref_invariants();
        h.decref(o);
        h.check_weakref_invariants();
        for wr in [a, b, c] {
            assert_eq!(h.weakref_referent(addr(wr)).unwrap(), None);
        }
        assert_eq!(h.take_due_weakref_callback(), Some(DueCallback { handle: c, callback: 0x3000, userdata: 3 }));
        h.check_weakref_invariants();
        assert_eq!(h.take_due_weakref_callback(), Some(DueCallback { handle: a, callback: 0x1000, userdata: 1 }));
        assert_eq!(h.take_due_weakref_callback(), None, "no callback: nothing queued");
        h.check_weakref_invariants();
        for wr in [a, b, c] {
            h.weakref_free(addr(wr)).unwrap();
        }
        h.check_weakref_invariants();
    }

    #[test]
    fn freed_foreign_and_double_freed_handles_are_refused() {
        let mut h = heap();
        let m = h.module_new(b"m").unwrap();
        let wr = h.weakref_new(m, 0, 0).unwrap();
        h.weakref_free(addr(wr)).unwrap();
        assert!(!h.weak_flag(m), "the last handle freed clears the flag");
        assert!(matches!(h.weakref_free(addr(wr)), Err(ObjError::InvalidPointer(_))), "double free");
        assert!(matches!(h.weakref_get(addr(wr)), Err(ObjError::InvalidPointer(_))), "use after free");
        let local = 0u64;
        assert!(matches!(h.weakref_get(&local as *const u64 as *const u8), Err(ObjError::InvalidPointer(_))));
        assert!(matches!(h.weakref_free(std::ptr::null()), Err(ObjError::InvalidPointer(m)) if m.contains("NULL")));
        // An object pointer is not a weak reference.
        assert!(matches!(h.weakref_get(m.as_ptr() as *const u8), Err(ObjError::InvalidPointer(_))));
        // Another heap's handle.
        let mut other = heap();
        let m2 = other.module_new(b"m2").unwrap();
        let wr2 = other.weakref_new(m2, 0, 0).unwrap();
        assert!(matches!(h.weakref_free(addr(wr2)), Err(ObjError::InvalidPointer(_))));
        assert_eq!(other.weakref_get(addr(wr2)).unwrap(), m2);
        other.decref(m2);
        other.decref(m2);
        h.decref(m);
        h.check_weakref_invariants();
        other.check_weakref_invariants();
        // `other` is dropped with its handle live: freed with the heap.
    }

    #[test]
    fn a_handle_freed_while_queued_never_runs() {
        let mut h = heap();
        let f = h.function_new(b"f", 0, 0).unwrap();
        let a = h.weakref_new(f, 0x10, 0).unwrap();
        let b = h.weakref_new(f, 0x20, 0).unwrap();
        h.decref(f);
        h.weakref_free(addr(b)).unwrap();
        h.check_weakref_invariants();
        assert_eq!(h.take_due_weakref_callback().map(|d| d.handle), Some(a));
        assert_eq!(h.take_due_weakref_callback(), None);
        h.weakref_free(addr(a)).unwrap();
        // Freed before the referent died: no callback at all.
        let f = h.function_new(b"g", 0, 0).unwrap();
        let c = h.weakref_new(f, 0x30, 0).unwrap();
        h.weakref_free(addr(c)).unwrap();
        h.decref(f);
        assert!(!h.has_due_weakref_callbacks());
        h.check_weakref_invariants();
    }

    #[test]
    fn weakrefs_die_with_objects_freed_through_containers() {
        // A referent freed iteratively (a child of a dying list) is cleared
        // too, and an address reused by a new object starts with no entry.
        let mut h = heap();
        let t = host_type(&mut h, HostHooks::default());
        let list = h.list_new().unwrap();
        let mut handles = Vec::new();
        for _ in 0..100 {
            let o = h.instance_new(t).unwrap();
            handles.push(h.weakref_new(o, 0x40, 0).unwrap());
            h.list_append(list, o).unwrap();
            h.decref(o);
        }
        h.check_weakref_invariants();
        h.decref(list);
        h.check_weakref_invariants();
        let mut due = 0;
        while h.take_due_weakref_callback().is_some() {
            due += 1;
        }
        assert_eq!(due, 100);
        let o = h.instance_new(t).unwrap();
        assert_eq!(h.weakref_count(o), 0);
        assert!(!h.weak_flag(o));
        for wr in handles {
            assert_eq!(h.weakref_get(addr(wr)).unwrap(), h.none());
            h.weakref_free(addr(wr)).unwrap();
        }
        h.decref(o);
        h.check_weakref_invariants();
    }

    #[test]
    fn clear_weakrefs_keeps_the_object_alive() {
        // The collector's phase: cleared while the object still lives; a new
        // weak reference made afterwards works again.
        let mut h = heap();
        let m = h.module_new(b"m").unwrap();
        let a = h.weakref_new(m, 0x50, 7).unwrap();
        h.clear_weakrefs(m);
        assert!(!h.weak_flag(m));
        assert_eq!(h.weakref_get(addr(a)).unwrap(), h.none());
        assert_eq!(h.take_due_weakref_callback().map(|d| (d.callback, d.userdata)), Some((0x50, 7)));
        let b = h.weakref_new(m, 0, 0).unwrap();
        assert_eq!(h.weakref_get(addr(b)).unwrap(), m);
        h.decref(m);
        h.check_weakref_invariants();
        h.decref(m);
        assert_eq!(h.weakref_get(addr(b)).unwrap(), h.none());
        h.check_weakref_invariants();
    }

    /// Random operations against a model: every weak reference answers its
    /// referent until that dies or is cleared, then None; each callback is
    /// handed out exactly once, only for handles not freed first; the
    /// invariants hold after every step.
    #[test]
    fn random_operations_match_a_model() {
        struct M {
            handle: NonNull<WeakRef>,
            object: usize,
            callback: bool,
            freed: bool,
            cleared: bool,
            fired: usize,
        }
        let mut h = heap();
        let t = host_type(&mut h, HostHooks::default());
        let mut seed = 0x9E37_79B9_7F4A_7C15u64;
        let mut next = move |n: usize| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            (seed % n as u64) as usize
        };
        let mut objects: Vec<Option<Obj>> = Vec::new();
        let mut model: Vec<M> = Vec::new();
        for step in 0..20_000 {
            match next(8) {
                0 | 1 => {
                    let o = match next(3) {
                        0 => h.instance_new(t).unwrap(),
                        1 => h.module_new(b"m").unwrap(),
                        _ => h.function_new(b"f", 0, 0).unwrap(),
                    };
                    objects.push(Some(o));
                }
                2 | 3 => {
                    let alive: Vec<usize> = (0..objects.len()).filter(|&i| objects[i].is_some()).collect();
                    if let Some(&i) = alive.get(next(alive.len().max(1))) {
                        let callback = next(2) == 0;
                        let id = model.len();
                        let handle =
                            h.weakref_new(objects[i].unwrap(), if callback { 0x100 + id } else { 0 }, id).unwrap();
                        model.push(M { handle, object: i, callback, freed: false, cleared: false, fired: 0 });
                    }
                }
                4 => {
                    let live: Vec<usize> = (0..model.len()).filter(|&k| !model[k].freed).collect();
                    if let Some(&k) = live.get(next(live.len().max(1))) {
                        h.weakref_free(addr(model[k].handle)).unwrap();
                        model[k].freed = true;
                    }
                }
                5 | 6 => {
                    // A death (decref) or the collector's clearing.
                    let alive: Vec<usize> = (0..objects.len()).filter(|&i| objects[i].is_some()).collect();
                    if let Some(&i) = alive.get(next(alive.len().max(1))) {
                        let o = objects[i].unwrap();
                        if next(2) == 0 {
                            h.decref(o);
                            objects[i] = None;
                        } else {
                            h.clear_weakrefs(o);
                        }
                        for m in model.iter_mut().filter(|m| m.object == i) {
                            m.cleared = true;
                        }
                    }
                }
                _ => {
                    if let Some(due) = h.take_due_weakref_callback() {
                        let k = due.userdata;
                        let m = &mut model[k];
                        assert_eq!(due.handle, m.handle);
                        assert_eq!(due.callback, 0x100 + k);
                        assert!(m.callback && m.cleared && !m.freed, "step {step}: an unexpected callback");
                        m.fired += 1;
                    }
                }
            }
            if step % 64 == 0 {
                h.check_weakref_invariants();
            }
            if let Some(k) = (!model.is_empty()).then(|| next(model.len())) {
                let m = &model[k];
                if !m.freed {
                    let expected = if m.cleared { None } else { objects[m.object] };
                    assert_eq!(h.weakref_referent(addr(m.handle)).unwrap(), expected, "step {step}");
                } else {
                    assert!(
                        h.weakref_check(addr(m.handle)).is_err()
                            || model.iter().any(|o| !o.freed && o.handle == m.handle)
                    );
                }
            }
        }
        while let Some(due) = h.take_due_weakref_callback() {
            model[due.userdata].fired += 1;
        }
        h.check_weakref_invariants();
        for (k, m) in model.iter().enumerate() {
            if m.freed {
                assert!(m.fired <= 1, "handle {k} fired {} times", m.fired);
            } else {
                assert_eq!(m.fired, (m.callback && m.cleared) as usize, "handle {k}");
            }
        }
        assert_eq!(h.weakref_handles(), model.iter().filter(|m| !m.freed).count());
        for o in objects.into_iter().flatten() {
            h.decref(o);
        }
        h.check_weakref_invariants();
    }

    impl Heap {
        fn weak_flag(&self, o: Obj) -> bool {
            // SAFETY: live object.
            unsafe { header(o) }.flags & flags::HAS_WEAKREFS != 0
        }
    }
}
