//! What the cycle collector needs from the object layer: the references a
//! container holds (CPython's `tp_traverse`) and dropping them (`tp_clear`),
//! for the built-in parts of objects. A host type's payload references are
//! reported and dropped by the host's own `traverse`/`clear` callbacks,
//! which the facade calls; an instance's attribute values are built-in.

use crate::heap::{GcList, Heap};
use crate::object::{flags, gc_links, header, type_ids, GcLinks, Obj};

impl Heap {
    /// Calls `visit` with every reference the built-in part of `o` holds:
    /// tuple and list items, dict keys and values, an instance's attribute
    /// values, a module's or function's name and attribute dict. Atoms hold
    /// none.
    pub fn traverse_builtin(&self, o: Obj, visit: &mut dyn FnMut(Obj)) {
        match self.type_id(o) {
            type_ids::TUPLE => self.tuple_items(o).iter().for_each(|&c| visit(c)),
            type_ids::LIST => {
                if let Ok(items) = self.list_items(o) {
                    items.iter().for_each(|&c| visit(c));
                }
            }
            type_ids::DICT => {
                let mut pos = 0;
                while let Ok(Some((k, v))) = self.dict_next(o, &mut pos) {
                    visit(k);
                    visit(v);
                }
            }
            type_ids::MODULE | type_ids::FUNCTION => {
                if let Some(name) = self.object_name(o) {
                    visit(name);
                }
                if let Some(dict) = self.attr_dict(o) {
                    visit(dict);
                }
            }
            id if id >= type_ids::FIRST_HOST_TYPE => {
                self.instance_values(o).iter().flatten().for_each(|&c| visit(c));
            }
            _ => {}
        }
    }

    /// Drops the references the built-in part of `o` holds (CPython's
    /// `tp_clear`): a list and a dict are emptied, an instance's attributes
    /// removed, a module's or function's attribute dict emptied. Tuples keep
    /// their items (as in CPython, an immutable tuple is broken through the
    /// mutable containers of its cycle). What this frees is freed at once,
    /// iteratively.
    pub fn clear_builtin(&mut self, o: Obj) {
        // The references dropped are gathered first (nothing may be freed
        // while the container is being emptied); the buffer is reused.
        let mut dropped = std::mem::take(&mut self.clear_buffer);
        match self.type_id(o) {
            type_ids::LIST => {
                while let Ok(len) = self.list_len(o) {
                    if len == 0 {
                        break;
                    }
                    if let Ok(item) = self.list_pop(o, len - 1) {
                        dropped.push(item);
                    }
                }
            }
            type_ids::DICT => self.dict_clear(o, &mut dropped),
            type_ids::MODULE | type_ids::FUNCTION => {
                if let Some(dict) = self.attr_dict(o) {
                    self.dict_clear(dict, &mut dropped);
                }
            }
            id if id >= type_ids::FIRST_HOST_TYPE => self.instance_clear_values(o, &mut dropped),
            _ => {}
        }
        for c in dropped.drain(..) {
            self.decref(c);
        }
        self.clear_buffer = dropped;
    }

    /// Whether `o` is a container (it has collector links).
    pub fn is_gc(&self, o: Obj) -> bool {
        // SAFETY: live object.
        unsafe { header(o) }.flags & flags::GC != 0
    }

    /// The collector links of a tracked container.
    pub fn links(&self, o: Obj) -> *mut GcLinks {
        // SAFETY: callers pass containers.
        unsafe { gc_links(o) }
    }

    /// Moves a tracked container from whatever list holds it to the tail of
    /// `to`.
    ///
    /// # Safety
    /// `o` is tracked and `to` is a well-formed list that will not move while
    /// `o` is on it.
    pub unsafe fn move_to(&self, o: Obj, to: &mut GcList) {
        // SAFETY: contract.
        unsafe {
            let l = gc_links(o);
            crate::heap::gc_unlink(l);
            to.push_back(l);
        }
    }

    // ------------------------------------------------------------------
    // The collector's scratch in the header, as CPython keeps `gc_refs` in
    // its GC header during a collection: no table, no hashing. Between
    // `gc_begin` and `gc_end` an object's `refcnt` field holds its `gc_refs`;
    // nothing else may read or change counts meanwhile (the host cannot call
    // in during a collection's traverse phases).

    /// Marks `o` as examined and returns its reference count, to be restored
    /// by `gc_end`; its `gc_refs` starts equal to it.
    pub fn gc_begin(&self, o: Obj) -> usize {
        // SAFETY: `o` is a live container of this heap.
        let h = unsafe { header(o) };
        h.flags |= flags::COLLECTING;
        h.refcnt
    }

    /// A reference from inside the examined set: one less `gc_refs` for `o`,
    /// if it is in the set.
    pub fn gc_decrement(&self, o: Obj) {
        // SAFETY: `o` is a live object (built-in children, or host children
        // validated by the caller).
        let h = unsafe { header(o) };
        if h.flags & flags::COLLECTING != 0 {
            h.refcnt = h.refcnt.saturating_sub(1);
        }
    }

    /// `gc_refs` of an examined object: its references from outside the set.
    pub fn gc_refs(&self, o: Obj) -> usize {
        // SAFETY: live object.
        unsafe { header(o) }.refcnt
    }

    /// Marks an examined object reachable; true if it was not yet, false if
    /// it was (or is not in the set).
    pub fn gc_mark_reachable(&self, o: Obj) -> bool {
        // SAFETY: live object.
        let h = unsafe { header(o) };
        if h.flags & (flags::COLLECTING | flags::REACHABLE) == flags::COLLECTING {
            h.flags |= flags::REACHABLE;
            true
        } else {
            false
        }
    }

    /// Ends the examination of `o`: its count restored, its marks removed.
    /// Returns whether it was found reachable.
    pub fn gc_end(&self, o: Obj, refcnt: usize) -> bool {
        // SAFETY: live object.
        let h = unsafe { header(o) };
        let reachable = h.flags & flags::REACHABLE != 0;
        h.flags &= !(flags::COLLECTING | flags::REACHABLE);
        h.refcnt = refcnt;
        reachable
    }

    /// Untracks a tuple whose items are all untracked or atoms (CPython's
    /// `_PyTuple_MaybeUntrack`): it can never be part of a cycle.
    pub fn maybe_untrack_tuple(&mut self, o: Obj) {
        if self.type_id(o) != type_ids::TUPLE || !self.is_tracked(o) {
            return;
        }
        let all_untracked = self.tuple_items(o).iter().all(|&c| !self.is_gc(c) || !self.is_tracked(c));
        if all_untracked {
            self.untrack(o);
        }
    }
}
