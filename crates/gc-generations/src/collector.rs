//! The collector: CPython's generational cycle collection as a script of
//! named phases.
//!
//! ```text
//! begin:      merge younger generations → update_refs → subtract_refs
//!             → move_unreachable (untracking tuples of atoms on the way)
//!             → move survivors older
//! (facade)    weak references to the garbage: cleared, callbacks of live ones
//! finalizers: objects with a host `finalize` not yet FINALIZED (PEP 442)
//! (facade)    runs them, with a reference held
//! check_resurrection: what host code (a finalizer, a weakref callback, the
//!             debug sink) made reachable again survives; skipped if none ran
//! delete:     delete_without_host: no host callbacks involved? one sweep;
//!             else next_garbage → (facade) clear: built-in part + host
//!             `clear` → after_clear: still alive? it moves to the older
//!             generation
//! finish:     statistics; a full collection empties the free lists
//! ```
//! The facade drives the phases because some run host code, which must run
//! with no borrow of the heap alive (it may call back in). Each phase states
//! its postcondition.
//!
//! `gc_refs`: for each object of the generation being collected, its
//! reference count minus the references from other objects of that
//! generation. An object with `gc_refs > 0` is referenced from outside the
//! generation: a root. As in CPython, they live in the objects' own collector
//! links during the scan (the `prev` field), and the generation lists
//! themselves are the work lists: a collection needs no scratch memory that
//! grows with its size (only a buffer for one host object's children), and
//! no recursion.

use std::time::{Duration, Instant};

use refcount_object::{from_gc_links, gc_unlink, prefetch_past, GcLinks, GcList, Heap, HostHooks, Obj, ScanState};

/// CPython's `DEBUG_*` flags.
pub mod debug {
    pub const STATS: u32 = 1;
    pub const COLLECTABLE: u32 = 2;
    pub const UNCOLLECTABLE: u32 = 4;
    pub const SAVEALL: u32 = 32;
    pub const LEAK: u32 = COLLECTABLE | UNCOLLECTABLE | SAVEALL;
}

/// Per generation: what `gc.get_stats()` reports.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct GenStats {
    pub collections: u64,
    pub collected: u64,
    pub uncollectable: u64,
}

/// The thresholds of a CPython version.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Profile {
    /// (700, 10, 10), CPython up to 3.12.
    Cpython311,
    /// (2000, 10, 10), CPython 3.13.
    Cpython313,
}

impl Profile {
    pub fn thresholds(self) -> [i64; 3] {
        match self {
            Profile::Cpython311 => [700, 10, 10],
            Profile::Cpython313 => [2000, 10, 10],
        }
    }
}

/// A host callback that reports the references a host object's payload
/// holds (its `traverse`) by appending them to the vector, called by the
/// collector for instances of host types that have one, with the type's
/// hooks. What it reports is not trusted: see [`Traverser`].
pub type HostTraverse<'a> = &'a mut dyn FnMut(Obj, HostHooks, &mut Vec<Obj>);

/// The collector's state (one per runtime). Generation 0's count lives in
/// the heap (`heap.gc.count0`), which counts allocations as they happen.
pub struct Collector {
    pub thresholds: [i64; 3],
    /// Collections of the younger generation since this one's last
    /// collection (index 0 unused: see `heap.gc.count0`).
    counts: [i64; 3],
    /// Objects moved into generation 2 since the last full collection, and
    /// the size of generation 2 after it (CPython's rule against quadratic
    /// full collections).
    long_lived_pending: i64,
    long_lived_total: i64,
    pub stats: [GenStats; 3],
    pub debug: u32,
    collecting: bool,
    /// DEBUG_SAVEALL: what would have been freed (strong references).
    pub garbage: Vec<Obj>,
}

/// A collection in progress (between `begin` and `finish`).
pub struct Collection {
    pub generation: usize,
    /// The garbage found, an intrusive list (boxed: its sentinel must not
    /// move while objects point at it).
    unreachable: Box<GcList>,
    /// Objects found unreachable by `begin`; after `check_resurrection`,
    /// those still garbage (what `gc.collect()` counts).
    pub found: u64,
    /// Whether host code ran since the garbage was found (a finalizer, a
    /// weak reference callback, the debug sink): only then can something
    /// have been resurrected, and `check_resurrection` has work to do.
    host_code_ran: bool,
    /// Whether deleting the garbage may run host code (some object's type
    /// has host callbacks): then it is cleared object by object.
    host_garbage: bool,
    started: Instant,
    /// Lines for DEBUG_STATS / DEBUG_COLLECTABLE.
    pub debug_lines: Vec<String>,
}

impl Collector {
    pub fn new(profile: Profile) -> Collector {
        Collector {
            thresholds: profile.thresholds(),
            counts: [0; 3],
            long_lived_pending: 0,
            long_lived_total: 0,
            stats: [GenStats::default(); 3],
            debug: 0,
            collecting: false,
            garbage: Vec::new(),
        }
    }

    /// Whether a collection is running (one asked for meanwhile returns 0).
    pub fn is_collecting(&self) -> bool {
        self.collecting
    }

    /// `gc.get_count()`.
    pub fn counts(&self, heap: &Heap) -> [i64; 3] {
        [heap.gc.count0, self.counts[1], self.counts[2]]
    }

    /// `gc.set_threshold`; threshold0 is mirrored into the heap, which sets
    /// the "collection due" flag.
    pub fn set_thresholds(&mut self, heap: &mut Heap, t: [i64; 3]) {
        self.thresholds = t;
        heap.gc.threshold0 = t[0];
    }

    /// The generation an automatic collection should collect, if any: the
    /// oldest whose count exceeds its threshold, generation 2 only when
    /// `long_lived_pending > long_lived_total / 4` (CPython's
    /// `collect_generations`).
    pub fn generation_due(&self, heap: &Heap) -> Option<usize> {
        let counts = self.counts(heap);
        for i in (0..3).rev() {
            if counts[i] > self.thresholds[i] {
                if i == 2 && self.long_lived_pending < self.long_lived_total / 4 {
                    continue;
                }
                return Some(i);
            }
        }
        None
    }

    // ------------------------------------------------------------------
    // phase 1: find the garbage

    /// Starts a collection of `generation` (younger ones are merged in):
    /// afterwards the collection's unreachable list holds exactly the objects
    /// of those generations that no object outside them reaches, and the
    /// survivors have moved to the next older generation.
    pub fn begin(&mut self, heap: &mut Heap, generation: usize, host_traverse: HostTraverse) -> Collection {
        debug_assert!(!self.collecting && generation < 3);
        self.collecting = true;
        let started = Instant::now();
        let unreachable = new_list();
        let mut debug_lines = Vec::new();
        if self.debug & debug::STATS != 0 {
            debug_lines.push(format!("gc: collecting generation {generation}..."));
            let sizes: Vec<String> = heap.gc.generations.iter().map(|g| g.len().to_string()).collect();
            debug_lines.push(format!("gc: objects in each generation: {}", sizes.join(" ")));
            debug_lines.push(format!("gc: objects in permanent generation: {}", heap.gc.permanent.len()));
        }
        // Counts: this generation's restarts; the next older one counts us.
        if generation + 1 < 3 {
            self.counts[generation + 1] += 1;
        }
        heap.gc.count0 = 0;
        for c in self.counts.iter_mut().take(generation + 1).skip(1) {
            *c = 0;
        }
        // The generations collected are spliced onto one list, scanned in
        // place: survivors stay on it, the garbage moves to `unreachable`.
        let young = new_list();
        for g in 0..=generation {
            young.append(&heap.gc.generations[g]);
        }
        let scope = if generation == 2 { Scope::AllUnfrozen } else { Scope::List };
        let f = find_unreachable(heap, scope, &young, &unreachable, host_traverse);
        let (found, host_garbage) = (f.garbage, f.host_garbage);
        self.move_survivors_older(heap, generation, &young, f.survivors);
        if self.debug & debug::COLLECTABLE != 0 {
            for o in unreachable.iter() {
                debug_lines.push(format!("gc: collectable <{} {:#x}>", heap.type_of(o).name(), o.as_ptr() as usize));
            }
        }
        Collection { generation, unreachable, found, host_code_ran: false, host_garbage, started, debug_lines }
    }

    /// The survivors of a collection of `generation` (the `survivors`
    /// objects left on `young`) join generation `generation + 1`
    /// (generation 2's stay); bookkeeping for the full-collection rule.
    fn move_survivors_older(&mut self, heap: &mut Heap, generation: usize, young: &GcList, survivors: usize) {
        let older = (generation + 1).min(2);
        heap.gc.generations[older].append(young);
        if generation == 1 {
            self.long_lived_pending += survivors as i64;
        } else if generation == 2 {
            self.long_lived_pending = 0;
            self.long_lived_total = survivors as i64;
        }
    }

    // ------------------------------------------------------------------
    // phase 2: finalizers (PEP 442)

    /// The garbage whose type has a `finalize` callback and that was not
    /// finalized yet: each is marked FINALIZED and handed out with a new
    /// reference (the facade calls `finalize`, then drops the reference).
    pub fn finalizers(&mut self, heap: &mut Heap, c: &mut Collection) -> Vec<Obj> {
        let mut out = Vec::new();
        if !heap.has_finalizer_types() {
            return out; // no walk of the garbage in the common case
        }
        for o in c.unreachable.objects() {
            if heap.type_of(o).hooks().finalize != 0 && !heap.is_finalized(o) {
                heap.set_finalized(o);
                heap.incref(o);
                out.push(o);
            }
        }
        c.host_code_ran |= !out.is_empty();
        out
    }

    /// Tells the collection that host code ran (weak reference callbacks,
    /// the debug sink): `check_resurrection` must then look for objects it
    /// made reachable again.
    pub fn note_host_code_ran(&mut self, c: &mut Collection) {
        c.host_code_ran = true;
    }

    /// The garbage found (borrowed, for the facade's weak-reference phase).
    pub fn garbage_iter<'c>(&self, c: &'c Collection) -> impl Iterator<Item = Obj> + 'c {
        c.unreachable.iter()
    }

    // ------------------------------------------------------------------
    // phase 3: resurrection

    /// check_resurrection: after finalizers ran, whatever is referenced from
    /// outside the garbage again (and what that reaches) survives and moves
    /// to the next older generation; the rest stays garbage.
    pub fn check_resurrection(&mut self, heap: &mut Heap, c: &mut Collection, host_traverse: HostTraverse) {
        if !c.host_code_ran {
            return; // no host code ran: nothing can have been resurrected
        }
        // The garbage is scanned as a generation of its own: what is
        // referenced from outside it now survives; the rest is garbage still.
        for o in c.unreachable.iter() {
            heap.scan_end(o);
        }
        let still_garbage = new_list();
        let f = find_unreachable(heap, Scope::List, &c.unreachable, &still_garbage, host_traverse);
        let older = (c.generation + 1).min(2);
        heap.gc.generations[older].append(&c.unreachable);
        c.unreachable.append(&still_garbage);
        // As CPython 3.11 (`m += gc_list_size(&final_unreachable)`): what a
        // finalizer resurrected, or freed by breaking its cycle, is not
        // counted as collected.
        c.found = f.garbage;
        c.host_garbage = f.host_garbage;
    }

    // ------------------------------------------------------------------
    // phase 4: delete

    /// delete, in one sweep when it can: with DEBUG_SAVEALL off and no
    /// garbage object whose type has host callbacks, the garbage is freed by
    /// `Heap::free_garbage` (the outcome of clearing each object, without
    /// the per-object round trips). Returns false when the caller must
    /// clear object by object instead (`next_garbage`).
    pub fn delete_without_host(&mut self, heap: &mut Heap, c: &mut Collection) -> bool {
        if self.debug & debug::SAVEALL != 0 || c.host_garbage {
            return false;
        }
        heap.free_garbage(&c.unreachable);
        true
    }

    /// The next garbage object to clear, with a new reference the caller
    /// drops after `after_clear`; `None` when the garbage is gone. With
    /// DEBUG_SAVEALL the garbage goes to `garbage` instead, never cleared.
    pub fn next_garbage(&mut self, heap: &mut Heap, c: &mut Collection) -> Option<Obj> {
        // A loop, not recursion: a million objects saved with DEBUG_SAVEALL
        // must not need a million stack frames.
        loop {
            let o = c.unreachable.first()?;
            heap.incref(o);
            if self.debug & debug::SAVEALL == 0 {
                return Some(o);
            }
            self.garbage.push(o);
            move_to_generation(heap, o, (c.generation + 1).min(2));
        }
    }

    /// After the caller cleared `o` (built-in part and host `clear`): if it is
    /// still on the garbage list it is alive, and moves to the older
    /// generation (it may die later) — unless the caller's reference is the
    /// last one: the caller's decref is about to free it (and take it off
    /// the list), so moving it first would be wasted work. Then the caller
    /// drops its reference.
    pub fn after_clear(&mut self, heap: &mut Heap, c: &mut Collection, o: Obj) {
        if c.unreachable.first() == Some(o) && heap.refcount(o) > 1 {
            move_to_generation(heap, o, (c.generation + 1).min(2));
        }
    }

    /// Ends the collection: statistics (`collected` = what was found
    /// unreachable, `uncollectable` = 0: there are no legacy finalizers), the
    /// DEBUG_STATS line, and a full collection empties the free lists.
    /// Returns collected + uncollectable, as `gc.collect()` does.
    pub fn finish(&mut self, heap: &mut Heap, mut c: Collection) -> (u64, Duration, Vec<String>) {
        // Anything left (only possible if a clear did not free it) survives.
        let older = (c.generation + 1).min(2);
        while let Some(o) = c.unreachable.first() {
            move_to_generation(heap, o, older);
        }
        let elapsed = c.started.elapsed();
        let s = &mut self.stats[c.generation];
        s.collections += 1;
        s.collected += c.found;
        if c.generation == 2 {
            heap.clear_free_lists();
        }
        if self.debug & debug::STATS != 0 {
            c.debug_lines.push(format!(
                "gc: done, {} unreachable, 0 uncollectable, {:.4}s elapsed",
                c.found,
                elapsed.as_secs_f64()
            ));
        }
        self.collecting = false;
        (c.found, elapsed, std::mem::take(&mut c.debug_lines))
    }

    /// A whole collection of `generation` for a heap whose objects need no
    /// host callback (no host `traverse`, `finalize` or `clear`): the phases
    /// in order, as the facade runs them with the host's callbacks in
    /// between. Returns collected + uncollectable.
    pub fn collect_without_host(&mut self, heap: &mut Heap, generation: usize) -> u64 {
        if self.collecting {
            return 0;
        }
        let mut no_host = |_: Obj, _: HostHooks, _: &mut Vec<Obj>| {};
        let mut c = self.begin(heap, generation, &mut no_host);
        for o in self.finalizers(heap, &mut c) {
            heap.decref(o);
        }
        self.check_resurrection(heap, &mut c, &mut no_host);
        if self.delete_without_host(heap, &mut c) {
            return self.finish(heap, c).0;
        }
        while let Some(o) = self.next_garbage(heap, &mut c) {
            heap.clear_builtin(o);
            self.after_clear(heap, &mut c, o);
            heap.decref(o);
        }
        self.finish(heap, c).0
    }

    // ------------------------------------------------------------------
    // freeze

    /// `gc.freeze()`: every tracked object moves to the permanent generation,
    /// which collections ignore.
    pub fn freeze(&mut self, heap: &mut Heap) {
        heap.freeze_generations();
        heap.gc.count0 = 0;
        self.counts = [0; 3];
    }

    /// `gc.unfreeze()`: the permanent generation goes back to the oldest.
    pub fn unfreeze(&mut self, heap: &mut Heap) {
        heap.unfreeze_generations();
    }
}

/// Moves a tracked container from whatever list holds it to the tail of
/// generation `i`.
fn move_to_generation(heap: &mut Heap, o: Obj, i: usize) {
    heap.scan_end(o); // the garbage's scan marks (see `find_unreachable`)
                      // SAFETY: `o` is tracked, so its links are on a well-formed list; the
                      // generation lists are boxed and never move.
    unsafe { heap.move_to(o, &heap.gc.generations[i]) };
}

/// An empty list at a fixed address (its sentinel points at itself).
fn new_list() -> Box<GcList> {
    let list = Box::new(GcList::new());
    list.init();
    list
}

/// Walks the references objects hold: the built-in part of each, and the
/// payload of a host instance through the host's `traverse`. A host may
/// report anything, so its children are validated (only live objects of
/// this heap are visited); they arrive in a buffer reused from object to
/// object, so each one costs the host one plain call.
pub struct Traverser<'a> {
    host: HostTraverse<'a>,
    children: Vec<Obj>,
}

impl<'a> Traverser<'a> {
    pub fn new(host: HostTraverse<'a>) -> Traverser<'a> {
        Traverser { host, children: Vec::new() }
    }

    /// Calls `visit` for every reference a collection sees `o` hold (the
    /// built-in part by `Heap::traverse_for_gc`: a dict whose keys are all
    /// strs reports only its values, as in CPython), then its host
    /// `traverse`'s children.
    #[inline(always)]
    pub fn traverse<F: FnMut(Obj) + ?Sized>(&mut self, heap: &Heap, o: Obj, visit: &mut F) {
        heap.traverse_for_gc(o, visit);
        self.traverse_host(heap, o, visit);
    }

    /// [`Traverser::traverse`] with every reference of the built-in part,
    /// str keys included (`Heap::traverse_builtin`): for tools that must
    /// find every referrer (`why_alive`).
    #[inline(always)]
    pub fn traverse_all<F: FnMut(Obj) + ?Sized>(&mut self, heap: &Heap, o: Obj, visit: &mut F) {
        heap.traverse_builtin(o, visit);
        self.traverse_host(heap, o, visit);
    }

    /// The children a host `traverse` callback reports for `o`, if its type
    /// has one; each validated before `visit` sees it.
    #[inline(always)]
    fn traverse_host<F: FnMut(Obj) + ?Sized>(&mut self, heap: &Heap, o: Obj, visit: &mut F) {
        if heap.has_host_traverse(o) {
            let hooks = heap.host_hooks(o);
            self.children.clear();
            (self.host)(o, hooks, &mut self.children);
            for &child in &self.children {
                if heap.lookup(child.as_ptr() as *const u8).is_some() {
                    visit(child);
                }
            }
        }
    }
}

/// Moves the objects of `young` that nothing outside `young` reaches to
/// `unreachable`, by CPython's three phases; returns how many stay on
/// `young` (the reachable ones; tuples of untracked items are untracked on
/// the way, as CPython's `untrack_tuples` does), how many moved, and
/// whether deleting them may run host code.
///
/// The objects moved keep their scan marks (`COLLECTING`, `UNREACHABLE`)
/// while they stay on `unreachable` — a walk over the garbage saved: every
/// way off that list takes them off (`move_to_generation`, `untrack` when
/// an object dies, `check_resurrection` before it scans the garbage again).
fn find_unreachable(
    heap: &Heap,
    scope: Scope,
    young: &GcList,
    unreachable: &GcList,
    host_traverse: HostTraverse,
) -> Found {
    let mut tr = Traverser::new(host_traverse);
    match scope {
        Scope::List => {
            update_refs(heap, young);
            subtract_refs(heap, young, &mut tr);
        }
        Scope::AllUnfrozen => update_and_subtract_refs(heap, young, &mut tr),
    }
    move_unreachable(heap, young, unreachable, &mut tr)
}

/// What a scan found.
struct Found {
    /// Objects left on the scanned list (reachable).
    survivors: usize,
    /// Objects moved to the unreachable list.
    garbage: u64,
    /// Whether some object moved there has a type with host callbacks
    /// (conservative: one moved back later still counts).
    host_garbage: bool,
}

/// What a scan covers, which decides how its members are told apart.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Scope {
    /// The objects of the list given, marked by update_refs before anything
    /// is subtracted (young generations; the garbage, when looking for
    /// resurrected objects).
    List,
    /// Every tracked object outside the permanent generation, all on the
    /// list given (a full collection): membership shows in each object's
    /// flags, so update_refs is folded into subtract_refs.
    AllUnfrozen,
}

/// update_refs and subtract_refs in one walk, for a full collection: each
/// object joins the scan when first seen, as the cursor or as a child (see
/// `Heap::scan_decrement_full`) — one pass over the objects fewer.
fn update_and_subtract_refs(heap: &Heap, young: &GcList, tr: &mut Traverser) {
    for o in young.iter() {
        heap.scan_join(o);
        tr.traverse(heap, o, &mut |child| heap.scan_decrement_full(child));
    }
}

/// update_refs: `gc_refs = refcount` for every object of `young`.
fn update_refs(heap: &Heap, young: &GcList) {
    for o in young.iter() {
        heap.scan_begin(o);
    }
}

/// subtract_refs: every reference from one object of `young` to another
/// takes one off its target's `gc_refs`; afterwards `gc_refs` counts only
/// the references from outside `young`.
fn subtract_refs(heap: &Heap, young: &GcList, tr: &mut Traverser) {
    for o in young.iter() {
        tr.traverse(heap, o, &mut |child| heap.scan_decrement(child));
    }
}

/// move_unreachable (CPython's, walking `young` once): an object with
/// `gc_refs > 0` is reachable, and so is everything it references: those
/// still ahead get `gc_refs = 1`, those already moved to `unreachable` come
/// back to the tail of `young` (so the walk reaches them). An object with
/// `gc_refs == 0` when the walk reaches it moves to `unreachable`,
/// tentatively. When the walk ends, `unreachable` holds exactly the garbage.
///
/// The walk follows `next` links only: the `prev` field of an object still
/// ahead holds its `gc_refs`, and is rebuilt as the walk passes. Objects
/// on `unreachable` have real links (their `gc_refs` is 0 by definition).
fn move_unreachable(heap: &Heap, young: &GcList, unreachable: &GcList, tr: &mut Traverser) -> Found {
    let head: *mut GcLinks = young.sentinel();
    let (mut survivors, mut garbage, mut host_garbage) = (0, 0, false);
    // SAFETY: every link followed belongs to a live container on `young` or
    // `unreachable` (both well formed apart from the `prev` fields of the
    // objects ahead of the walk, which are only read as `gc_refs`); the
    // sentinel `head` outlives the walk. `young`'s last member is never moved
    // while an append can still happen: moving the tail ends the walk.
    unsafe {
        let mut prev = head;
        let mut at = (*prev).next;
        while at != head {
            let o = from_gc_links(at);
            prefetch_past(at);
            let reachable = matches!(heap.scan_state(o), ScanState::Pending(refs) if refs > 0);
            if reachable {
                tr.traverse(heap, o, &mut |child| match heap.scan_state(child) {
                    ScanState::Pending(0) => heap.scan_set_refs(child, 1),
                    ScanState::Unreachable => {
                        let l = heap.links(child);
                        gc_unlink(l);
                        heap.scan_unmark_unreachable(child);
                        garbage -= 1;
                        let last = (*head).prev;
                        (*last).next = l;
                        (*l).next = head;
                        (*head).prev = l;
                        heap.scan_set_refs(child, 1);
                    }
                    ScanState::Pending(_) | ScanState::Outside => {}
                });
                if heap.is_untrackable_tuple(o) {
                    (*prev).next = (*at).next;
                    heap.scan_untrack(o);
                } else {
                    (*at).prev = prev;
                    heap.scan_end(o);
                    survivors += 1;
                    prev = at;
                }
            } else {
                (*prev).next = (*at).next;
                heap.scan_mark_unreachable(o);
                unreachable.push_back(at);
                garbage += 1;
                host_garbage |= heap.has_host_callbacks(o);
            }
            at = (*prev).next;
        }
        (*head).prev = prev;
    }
    Found { survivors, garbage, host_garbage }
}
