//! What the cycle collector needs from the object layer: the references a
//! container holds (CPython's `tp_traverse`) and dropping them (`tp_clear`),
//! for the built-in parts of objects. A host type's payload references are
//! reported and dropped by the host's own `traverse`/`clear` callbacks,
//! which the facade calls; an instance's attribute values are built-in.

use crate::heap::{GcList, Heap, PREFETCH_AHEAD};
use crate::object::{
    body, flags, gc_links, header, type_ids, FunctionObj, GcLinks, InstanceObj, ListObj, ModuleObj, Obj, TupleObj,
};

/// Where an object stands in a collection's scan.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ScanState {
    /// Not in the scanned set (or its scan is over).
    Outside,
    /// In the set, on the list being scanned, with this `gc_refs`.
    Pending(usize),
    /// In the set, on the tentatively unreachable list.
    Unreachable,
}

impl Heap {
    /// Calls `visit` with every reference the built-in part of `o` holds:
    /// tuple and list items, dict keys and values, an instance's attribute
    /// values, a module's or function's name and attribute dict. Atoms hold
    /// none.
    /// What a binding reaches (`%whos` sizes, `why_alive`) goes by these.
    #[inline(always)]
    pub fn traverse_builtin<F: FnMut(Obj) + ?Sized>(&self, o: Obj, visit: &mut F) {
        self.traverse_refs::<false, F>(o, visit);
    }

    /// The collector's traversal (CPython's `tp_traverse`), which
    /// `gc.get_referents` and `gc.get_referrers` report: as
    /// [`Heap::traverse_builtin`], except that a dict reports each value
    /// before its key, and only its values while its keys are all strs
    /// (no `GENERAL_KEYS` flag), as CPython's `dict_traverse` does: a str
    /// holds no reference, so a collection never needs to see one.
    #[inline(always)]
    pub fn traverse_for_gc<F: FnMut(Obj) + ?Sized>(&self, o: Obj, visit: &mut F) {
        self.traverse_refs::<true, F>(o, visit);
    }

    #[inline(always)]
    fn traverse_refs<const GC: bool, F: FnMut(Obj) + ?Sized>(&self, o: Obj, visit: &mut F) {
        // Plain tests, the containers graphs are made of first: a `match`
        // here compiles to a jump table, eight instructions per object on
        // the collector's hottest path (twice per object in a collection),
        // where a list or an instance costs two or three this way.
        let type_id = self.type_id(o);
        if type_id == type_ids::LIST {
            // SAFETY: a list, per its type id.
            unsafe { visit_list_items(o, visit) };
        } else if type_id == type_ids::DICT {
            // SAFETY: a live object.
            let str_keys_only = GC && unsafe { header(o) }.flags & flags::GENERAL_KEYS == 0;
            let entry = |k, v| {
                if GC {
                    visit(v);
                    if !str_keys_only {
                        visit(k);
                    }
                } else {
                    visit(k);
                    visit(v);
                }
            };
            // SAFETY: `o` is a dict, per its type id; as for lists, the
            // visits never change its table.
            unsafe { crate::dict::dict_for_each_entry(o, entry) };
        } else if type_id >= type_ids::FIRST_HOST_TYPE {
            self.instance_values(o).iter().flatten().for_each(|&c| visit(c));
        } else if type_id == type_ids::TUPLE {
            self.tuple_items(o).iter().for_each(|&c| visit(c));
        } else if type_id == type_ids::MODULE || type_id == type_ids::FUNCTION {
            if let Some(name) = self.object_name(o) {
                visit(name);
            }
            if let Some(dict) = self.attr_dict(o) {
                visit(dict);
            }
        }
    }

    /// Drops the references the built-in part of `o` holds (CPython's
    /// `tp_clear`): a list and a dict are emptied, an instance's attributes
    /// removed, a module's or function's attribute dict emptied. Tuples keep
    /// their items (as in CPython, an immutable tuple is broken through the
    /// mutable containers of its cycle). What this frees is freed at once,
    /// iteratively.
    pub fn clear_builtin(&mut self, o: Obj) {
        if self.type_id(o) >= type_ids::FIRST_HOST_TYPE {
            self.instance_clear_values(o);
            return;
        }
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
            _ => {}
        }
        for c in dropped.drain(..) {
            self.decref(c);
        }
        self.clear_buffer = dropped;
    }

    /// Whether deleting `o` could run host code: its type has a host
    /// callback (`traverse`, `clear`, `finalize` or `dealloc`).
    #[inline(always)]
    pub fn has_host_callbacks(&self, o: Obj) -> bool {
        // SAFETY: a live object.
        unsafe { header(o) }.flags & flags::HOST_CALLBACKS != 0
    }

    /// Whether `o`'s type has a host `traverse` callback.
    #[inline(always)]
    pub fn has_host_traverse(&self, o: Obj) -> bool {
        // SAFETY: a live object.
        unsafe { header(o) }.flags & flags::HOST_TRAVERSE != 0
    }

    /// Frees a collection's garbage in one sweep, when no host code can be
    /// involved: the caller checked that no object on `garbage` has a type
    /// with host callbacks, and that its weak references are cleared. The
    /// outcome is that of CPython's `delete_garbage` (each object cleared,
    /// the cycles falling apart by reference counting), with less work per
    /// object:
    /// 1. every object drops its references: one to another garbage object
    ///    only lowers that object's count (the garbage is referenced by
    ///    nothing else, so every count reaches zero by the end); one to a
    ///    live object is released as usual — what that frees cannot reach
    ///    the garbage, since a live object referencing it would have made it
    ///    reachable;
    /// 2. every object, now empty and at count zero, is deallocated (which
    ///    unlinks it from `garbage`).
    ///
    /// The garbage is told by its scan mark (`UNREACHABLE`), which the
    /// collector leaves on it until it leaves the list.
    pub fn free_garbage(&mut self, garbage: &GcList) {
        // The arenas the garbage empties go together at the end.
        self.alloc.hold_unmaps();
        let mut dropped = std::mem::take(&mut self.clear_buffer);
        for o in garbage.iter() {
            let type_id = self.type_id(o);
            if type_id >= type_ids::FIRST_HOST_TYPE {
                // The commonest cases, without the buffer: an instance's
                // values cannot move while its references are dropped.
                // SAFETY: an instance of a host type, garbage.
                let inst = unsafe { body::<InstanceObj>(o) };
                for i in 0..inst.nvalues as usize {
                    // SAFETY: `i < nvalues`.
                    if let Some(child) = unsafe { (*inst.values.add(i)).take() } {
                        self.drop_garbage_reference(child);
                    }
                }
                continue;
            }
            if type_id == type_ids::LIST {
                // The list is emptied first (its length 0, its item array
                // kept for the deallocation to free): what the dropped
                // references free is never garbage, so it cannot look at it.
                // SAFETY: a list, garbage.
                let (items, len) = unsafe {
                    let l = body::<ListObj>(o);
                    (l.items, std::mem::replace(&mut l.len, 0) as usize)
                };
                for i in 0..len {
                    // SAFETY: `i < len`: the array held `len` references.
                    self.drop_garbage_reference(unsafe { *items.add(i) });
                }
                continue;
            }
            if type_id == type_ids::DICT {
                // The table leaves the dict first (it is empty from here
                // on), its references are dropped, then its block of its
                // own, if it has one, is freed.
                let (mem, entries) = crate::dict::dict_detach_table(o);
                for (k, v) in entries {
                    self.drop_garbage_reference(k);
                    self.drop_garbage_reference(v);
                }
                if !mem.is_null() {
                    let _ = self.alloc.free_kind(mem, obmalloc::BlockKind::Internal);
                }
                continue;
            }
            self.empty_garbage_object(o, &mut dropped);
            for child in dropped.drain(..) {
                self.drop_garbage_reference(child);
            }
        }
        self.clear_buffer = dropped;
        // Step 2 walks the list as it frees (each object's `next` read first)
        // and empties it at the end: no object is unlinked one by one.
        let head = garbage.sentinel();
        let mut freed = 0;
        // SAFETY: the members of `garbage` are live containers until freed
        // here, each once; the list is reset before anyone looks at it again.
        unsafe {
            let mut at = (*head).next;
            while at != head {
                let o = crate::object::from_gc_links(at);
                crate::heap::prefetch_past(at);
                at = (*at).next;
                let h = header(o);
                debug_assert_eq!(h.refcnt, 0, "garbage referenced from outside the garbage");
                h.refcnt = 0;
                // No longer on any list: dealloc does not unlink it.
                h.flags &= !(flags::TRACKED | flags::COLLECTING | flags::UNREACHABLE);
                freed += 1;
                let type_id = self.type_id(o);
                if type_id >= type_ids::FIRST_HOST_TYPE {
                    self.free_emptied_instance(o);
                } else if type_id == type_ids::LIST || type_id == type_ids::DICT {
                    self.free_emptied_container(o);
                } else {
                    self.dealloc(o);
                }
            }
        }
        garbage.init();
        self.gc.count0 = (self.gc.count0 - freed).max(0);
        self.alloc.release_held_unmaps();
    }

    /// Drops a reference a garbage object held (see `free_garbage`).
    #[inline(always)]
    fn drop_garbage_reference(&mut self, child: Obj) {
        // SAFETY: `child` was referenced, so it is live.
        let h = unsafe { header(child) };
        if h.flags & flags::UNREACHABLE != 0 {
            h.refcnt -= 1; // garbage itself: freed in step 2
        } else {
            self.decref(child);
        }
    }

    /// Takes every reference out of garbage object `o` (into `dropped`),
    /// leaving it empty for its deallocation: a tuple's items become None
    /// (immortal), a module's or function's attribute dict too; its name (a
    /// str, never garbage) stays for the deallocation to release.
    fn empty_garbage_object(&mut self, o: Obj, dropped: &mut Vec<Obj>) {
        let none = self.none;
        // SAFETY: for each arm, `o` has the layout of its type id; it is
        // garbage, so nothing else looks at it meanwhile.
        unsafe {
            match self.type_id(o) {
                type_ids::TUPLE => {
                    let t = body::<TupleObj>(o);
                    for i in 0..t.len {
                        dropped.push(std::mem::replace(&mut *t.items.as_mut_ptr().add(i), none));
                    }
                }
                type_ids::LIST => {
                    let l = body::<ListObj>(o);
                    for i in 0..l.len() {
                        dropped.push(*l.items.add(i));
                    }
                    l.len = 0;
                }
                type_ids::DICT => self.dict_clear(o, dropped),
                type_ids::MODULE => dropped.push(std::mem::replace(&mut body::<ModuleObj>(o).dict, none)),
                type_ids::FUNCTION => dropped.push(std::mem::replace(&mut body::<FunctionObj>(o).dict, none)),
                _ => {} // instances: `free_garbage` empties them itself
            }
        }
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
    pub unsafe fn move_to(&self, o: Obj, to: &GcList) {
        // SAFETY: contract.
        unsafe {
            let l = gc_links(o);
            crate::heap::gc_unlink(l);
            to.push_back(l);
        }
    }

    // ------------------------------------------------------------------
    // The collector's marks, kept in the objects themselves as CPython keeps
    // them in its GC header: no table, no hashing, no scratch memory.
    //
    // While a collection scans a set of objects, each member has the
    // `COLLECTING` flag and its `gc_refs` in the `prev` field of its links
    // (CPython's `_gc_prev` does the same): the list being scanned is walked
    // through `next` only, and each `prev` is rebuilt as the scan passes.
    // An object moved to the tentatively unreachable list also has the
    // `UNREACHABLE` flag: there its `gc_refs` is 0 by definition and its
    // `prev` is a real link again. Reference counts are never touched, so a
    // host reading one during `traverse` sees the true value.

    /// update_refs for one object: it joins the scanned set and its
    /// `gc_refs` starts at its reference count.
    #[inline(always)]
    pub fn scan_begin(&self, o: Obj) {
        // SAFETY: `o` is a live tracked container (on the list being scanned).
        unsafe {
            let h = header(o);
            h.flags |= flags::COLLECTING;
            (*gc_links(o)).prev = h.refcnt as *mut GcLinks;
        }
    }

    /// update_refs on first sight, for a full collection (see
    /// [`Heap::scan_decrement_full`]): `o` joins the scan unless it already
    /// did.
    #[inline(always)]
    pub fn scan_join(&self, o: Obj) {
        // SAFETY: `o` is a live tracked container (on the list being scanned).
        if unsafe { header(o) }.flags & flags::COLLECTING == 0 {
            self.scan_begin(o);
        }
    }

    /// subtract_refs for one reference to `o`, in a full collection, where
    /// the scanned set is every tracked object outside the permanent
    /// generation (all generations are on the list being scanned): a member
    /// not seen yet joins the scan first (its `gc_refs` = its count). So a
    /// full collection needs no update_refs walk of its own.
    #[inline(always)]
    pub fn scan_decrement_full(&self, o: Obj) {
        // SAFETY: `o` is a live object (built-in children, or host children
        // validated by the caller); a tracked, unfrozen one is on the list
        // being scanned, so its `prev` field may hold `gc_refs`.
        unsafe {
            let h = header(o);
            let f = h.flags;
            if f & (flags::TRACKED | flags::FROZEN) != flags::TRACKED {
                return;
            }
            let l = gc_links(o);
            let refs = if f & flags::COLLECTING == 0 {
                h.flags = f | flags::COLLECTING;
                h.refcnt
            } else {
                (*l).prev as usize
            };
            (*l).prev = refs.saturating_sub(1) as *mut GcLinks;
        }
    }

    /// Asserts the collector's invariants between collections (tests call
    /// it after each one): every member of a generation list is a tracked
    /// container with well-formed links and no scan mark left; `FROZEN`
    /// exactly on the permanent generation's members.
    pub fn check_gc_invariants(&self) {
        let lists = self.gc.generations.iter().map(|g| (g, false)).chain([(&self.gc.permanent, true)]);
        for (list, frozen) in lists {
            let mut l: *const GcLinks = list.sentinel();
            loop {
                // SAFETY: a well-formed list's links belong to its sentinel or
                // to live containers (what this function checks).
                let next = unsafe { (*l).next };
                assert!(!next.is_null(), "a generation list is broken");
                // SAFETY: as above.
                assert!(std::ptr::eq(unsafe { (*next).prev }, l), "a prev link is wrong");
                if std::ptr::eq(next, list.sentinel()) {
                    break;
                }
                // SAFETY: `next` is a member's links.
                let o = unsafe { crate::object::from_gc_links(next) };
                // SAFETY: members are live containers.
                let f = unsafe { header(o) }.flags;
                assert_eq!(f & (flags::GC | flags::TRACKED), flags::GC | flags::TRACKED, "a member is not tracked");
                assert_eq!(f & (flags::COLLECTING | flags::UNREACHABLE), 0, "a scan mark was left");
                assert_eq!(f & flags::FROZEN != 0, frozen, "FROZEN disagrees with the permanent generation");
                l = next;
            }
        }
    }

    /// `gc.freeze()`: every tracked object moves to the permanent generation.
    pub fn freeze_generations(&mut self) {
        for g in 0..3 {
            for o in self.gc.generations[g].iter() {
                // SAFETY: members of a generation list are live containers.
                unsafe { header(o) }.flags |= flags::FROZEN;
            }
            let (gens, perm) = (&mut self.gc.generations, &mut self.gc.permanent);
            perm.append(&gens[g]);
        }
    }

    /// `gc.unfreeze()`: the permanent generation goes back to the oldest.
    pub fn unfreeze_generations(&mut self) {
        for o in self.gc.permanent.iter() {
            // SAFETY: members of the permanent list are live containers.
            unsafe { header(o) }.flags &= !flags::FROZEN;
        }
        let (gens, perm) = (&mut self.gc.generations, &mut self.gc.permanent);
        gens[2].append(perm);
    }

    /// Where `o` stands in the scan (any live object may be asked).
    #[inline(always)]
    pub fn scan_state(&self, o: Obj) -> ScanState {
        // SAFETY: `o` is a live object; only containers carry the flags, and
        // only scanned ones have `gc_refs` in their links.
        unsafe {
            let f = header(o).flags;
            if f & flags::COLLECTING == 0 {
                ScanState::Outside
            } else if f & flags::UNREACHABLE != 0 {
                ScanState::Unreachable
            } else {
                ScanState::Pending((*gc_links(o)).prev as usize)
            }
        }
    }

    /// subtract_refs for one reference to `o`: a reference from inside the
    /// scanned set takes one off its `gc_refs`. Objects outside the set are
    /// left alone. (Saturating: a host `traverse` that reports a reference
    /// it does not hold must not make a count wrap.)
    #[inline(always)]
    pub fn scan_decrement(&self, o: Obj) {
        // SAFETY: `o` is a live object (built-in children, or host children
        // validated by the caller); scanned ones hold `gc_refs` in `prev`.
        unsafe {
            if header(o).flags & flags::COLLECTING != 0 {
                let l = gc_links(o);
                (*l).prev = ((*l).prev as usize).saturating_sub(1) as *mut GcLinks;
            }
        }
    }

    /// Sets the `gc_refs` of a scanned, pending object (1 = "reached from a
    /// root": move_unreachable will keep it).
    ///
    /// # Safety
    /// `o` is scanned and not on the unreachable list (`Pending`), and its
    /// `prev` field may be overwritten (the scan rebuilds it).
    #[inline(always)]
    pub unsafe fn scan_set_refs(&self, o: Obj, refs: usize) {
        // SAFETY: contract.
        unsafe { (*gc_links(o)).prev = refs as *mut GcLinks };
    }

    /// Marks a scanned object as moved to the tentatively unreachable list.
    #[inline(always)]
    pub fn scan_mark_unreachable(&self, o: Obj) {
        // SAFETY: live object.
        unsafe { header(o) }.flags |= flags::UNREACHABLE;
    }

    /// An object of the unreachable list turned out reachable: back to
    /// `Pending` (the caller relinks it and sets its `gc_refs`).
    #[inline(always)]
    pub fn scan_unmark_unreachable(&self, o: Obj) {
        // SAFETY: live object.
        unsafe { header(o) }.flags &= !flags::UNREACHABLE;
    }

    /// Ends the scan of `o`: its marks removed (its `prev` must be a real
    /// link again, which the caller sees to).
    #[inline(always)]
    pub fn scan_end(&self, o: Obj) {
        // SAFETY: live object.
        unsafe { header(o) }.flags &= !(flags::COLLECTING | flags::UNREACHABLE);
    }

    /// Whether `o` is a tuple whose items are all untracked or atoms (it can
    /// never be part of a cycle; CPython's `_PyTuple_MaybeUntrack` test).
    #[inline(always)]
    pub fn is_untrackable_tuple(&self, o: Obj) -> bool {
        self.type_id(o) == type_ids::TUPLE && self.tuple_items(o).iter().all(|&c| !self.is_tracked(c))
    }

    /// Forgets a tuple the scan found untrackable: it is no longer tracked.
    /// The caller has already taken it out of the list being scanned.
    ///
    /// # Safety
    /// `o` is a scanned tuple that no list links to any more.
    #[inline(always)]
    pub unsafe fn scan_untrack(&self, o: Obj) {
        // SAFETY: contract.
        unsafe {
            header(o).flags &= !(flags::COLLECTING | flags::UNREACHABLE | flags::TRACKED);
            *gc_links(o) = GcLinks::default();
        }
    }
}

/// Calls `visit` with each item of list `o`, in order.
///
/// # Safety
/// `o` is a live list; the visits never change it (the collector's touch
/// the children's marks and links, never the items).
#[inline(always)]
unsafe fn visit_list_items<F: FnMut(Obj) + ?Sized>(o: Obj, visit: &mut F) {
    // SAFETY: contract: `items` holds `len` references (never null: inline
    // slots or a block).
    unsafe {
        let l = body::<ListObj>(o);
        let (items, len) = (l.items, l.len());
        if len <= PREFETCH_AHEAD {
            for i in 0..len {
                visit(*items.add(i));
            }
        } else {
            // A long list's items are visited in order and lie where they
            // were allocated, not in order: the header of the item
            // `PREFETCH_AHEAD` on is fetched while this one is visited (as a
            // long list's deallocation does).
            for i in 0..len - PREFETCH_AHEAD {
                crate::heap::prefetch_object(*items.add(i + PREFETCH_AHEAD));
                visit(*items.add(i));
            }
            for i in len - PREFETCH_AHEAD..len {
                visit(*items.add(i));
            }
        }
    }
}
