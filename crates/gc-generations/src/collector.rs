//! The collector: CPython's generational cycle collection as a script of
//! named phases.
//!
//! ```text
//! begin:      merge younger generations → update_refs → subtract_refs
//!             → move_unreachable → untrack_tuples → move survivors older
//! (facade)    weak references to the garbage: cleared, callbacks of live ones
//! finalizers: objects with a host `finalize` not yet FINALIZED (PEP 442)
//! (facade)    runs them, with a reference held
//! check_resurrection: what a finalizer made reachable again survives
//! delete:     next_garbage → (facade) clear: built-in part + host `clear`
//!             → after_clear: still alive? it moves to the older generation
//! finish:     statistics; a full collection empties the free lists
//! ```
//! The facade drives the phases because some run host code, which must run
//! with no borrow of the heap alive (it may call back in). Each phase states
//! its postcondition. The scratch tables (`gc_refs`) live in a bump arena
//! reset after every collection.
//!
//! `gc_refs` (CPython keeps them in the GC header during a collection): for
//! each object of the generation being collected, its reference count minus
//! the references from other objects of that generation. An object with
//! `gc_refs > 0` is referenced from outside the generation: a root.

use std::time::{Duration, Instant};

use bumpalo::collections::Vec as BumpVec;
use bumpalo::Bump;
use refcount_object::{gc_unlink, GcList, Heap, HostHooks, Obj};

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
/// holds (its `traverse`), called by the collector for instances of host
/// types that have one, with the type's hooks.
pub type HostTraverse<'a> = &'a mut dyn FnMut(Obj, HostHooks, &mut dyn FnMut(Obj));

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
    scratch: Bump,
}

/// The most scratch memory kept between collections (1 MiB: enough for
/// the young generations of ordinary collections).
pub const SCRATCH_KEEP: usize = 1 << 20;

/// A collection in progress (between `begin` and `finish`).
pub struct Collection {
    pub generation: usize,
    /// The garbage found, an intrusive list (boxed: its sentinel must not
    /// move while objects point at it).
    unreachable: Box<GcList>,
    /// Objects found unreachable by `begin`; after `check_resurrection`,
    /// those still garbage (what `gc.collect()` counts).
    pub found: u64,
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
            scratch: Bump::new(),
        }
    }

    /// Puts the scratch arena back, reset. An arena that grew past
    /// [`SCRATCH_KEEP`] bytes (a collection of millions of objects) is
    /// dropped instead, so that its memory goes back to the OS: a reset arena
    /// keeps its largest chunk, which would pin tens of MiB for good.
    fn put_back_scratch(&mut self, mut scratch: Bump) {
        if scratch.allocated_bytes() > SCRATCH_KEEP {
            scratch = Bump::new();
        } else {
            scratch.reset();
        }
        self.scratch = scratch;
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
        let mut unreachable = Box::new(GcList::new());
        unreachable.init();
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
        merge_younger(heap, generation);

        // The scratch arena is taken out of `self` for the collection's
        // temporaries, reset and put back at the end.
        let scratch = std::mem::take(&mut self.scratch);
        let young = gen_objects(&scratch, heap, generation);
        let (garbage, _) = find_unreachable(&scratch, heap, &young, host_traverse);
        let mut found = 0;
        for &o in garbage.iter() {
            {
                let links = heap.links(o);
                // SAFETY: `o` is tracked (on a generation list); the boxed
                // list stays put while it holds objects.
                unsafe {
                    gc_unlink(links);
                    unreachable.push_back(links);
                }
                found += 1;
            }
        }
        untrack_tuples(heap, generation);
        self.move_survivors_older(heap, generation);
        if self.debug & debug::COLLECTABLE != 0 {
            for o in unreachable.objects() {
                debug_lines.push(format!("gc: collectable <{} {:#x}>", heap.type_of(o).name(), o.as_ptr() as usize));
            }
        }
        drop(garbage);
        drop(young);
        self.put_back_scratch(scratch);
        Collection { generation, unreachable, found, started, debug_lines }
    }

    /// Survivors of generation `g` join generation `g + 1` (generation 2's
    /// stay); bookkeeping for the full-collection rule.
    fn move_survivors_older(&mut self, heap: &mut Heap, generation: usize) {
        if generation < 2 {
            let moved = heap.gc.generations[generation].len() as i64;
            let (young, old) = heap.gc.generations.split_at_mut(generation + 1);
            old[0].append(&mut young[generation]);
            if generation == 1 {
                self.long_lived_pending += moved;
            }
        } else {
            self.long_lived_pending = 0;
            self.long_lived_total = heap.gc.generations[2].len() as i64;
        }
    }

    // ------------------------------------------------------------------
    // phase 2: finalizers (PEP 442)

    /// The garbage whose type has a `finalize` callback and that was not
    /// finalized yet: each is marked FINALIZED and handed out with a new
    /// reference (the facade calls `finalize`, then drops the reference).
    pub fn finalizers(&mut self, heap: &mut Heap, c: &Collection) -> Vec<Obj> {
        let mut out = Vec::new();
        for o in c.unreachable.objects() {
            if heap.type_of(o).hooks().finalize != 0 && !heap.is_finalized(o) {
                heap.set_finalized(o);
                heap.incref(o);
                out.push(o);
            }
        }
        out
    }

    /// The garbage (borrowed, for the facade's weak-reference phase).
    pub fn garbage_objects(&self, c: &Collection) -> Vec<Obj> {
        c.unreachable.objects()
    }

    // ------------------------------------------------------------------
    // phase 3: resurrection

    /// check_resurrection: after finalizers ran, whatever is referenced from
    /// outside the garbage again (and what that reaches) survives and moves
    /// to the next older generation; the rest stays garbage.
    pub fn check_resurrection(&mut self, heap: &mut Heap, c: &mut Collection, host_traverse: HostTraverse) {
        let scratch = std::mem::take(&mut self.scratch);
        let mut objs = BumpVec::new_in(&scratch);
        objs.extend(c.unreachable.objects());
        let (garbage, resurrected) = find_unreachable(&scratch, heap, &objs, host_traverse);
        let older = (c.generation + 1).min(2);
        for &o in resurrected.iter() {
            move_to_generation(heap, o, older);
        }
        // As CPython 3.11 (`m += gc_list_size(&final_unreachable)`): what a
        // finalizer resurrected, or freed by breaking its cycle, is not
        // counted as collected.
        c.found = c.unreachable.len() as u64;
        drop((garbage, resurrected));
        drop(objs);
        self.put_back_scratch(scratch);
    }

    // ------------------------------------------------------------------
    // phase 4: delete

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
    /// generation (it may die later). Then the caller drops its reference.
    pub fn after_clear(&mut self, heap: &mut Heap, c: &mut Collection, o: Obj) {
        if c.unreachable.first() == Some(o) {
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
        let mut no_host = |_: Obj, _: HostHooks, _: &mut dyn FnMut(Obj)| {};
        let mut c = self.begin(heap, generation, &mut no_host);
        for o in self.finalizers(heap, &c) {
            heap.decref(o);
        }
        self.check_resurrection(heap, &mut c, &mut no_host);
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
        for i in 0..3 {
            let (gens, perm) = (&mut heap.gc.generations, &mut heap.gc.permanent);
            perm.append(&mut gens[i]);
        }
        heap.gc.count0 = 0;
        self.counts = [0; 3];
    }

    /// `gc.unfreeze()`: the permanent generation goes back to the oldest.
    pub fn unfreeze(&mut self, heap: &mut Heap) {
        let (gens, perm) = (&mut heap.gc.generations, &mut heap.gc.permanent);
        gens[2].append(perm);
    }
}

/// Moves a tracked container from whatever list holds it to the tail of
/// generation `i`.
fn move_to_generation(heap: &mut Heap, o: Obj, i: usize) {
    let links = heap.links(o);
    // SAFETY: `o` is tracked, so its links are on a well-formed list; the
    // generation lists live in the boxed heap and never move.
    unsafe {
        gc_unlink(links);
        heap.gc.generations[i].push_back(links);
    }
}

/// Merges generations younger than `generation` into it.
fn merge_younger(heap: &mut Heap, generation: usize) {
    for i in 0..generation {
        let (young, old) = heap.gc.generations.split_at_mut(generation);
        old[0].append(&mut young[i]);
    }
}

/// Calls `visit` for every reference `o` holds: its built-in part, and its
/// payload through the host's `traverse` when its type has one.
pub fn traverse(heap: &Heap, o: Obj, host_traverse: HostTraverse, visit: &mut dyn FnMut(Obj)) {
    heap.traverse_builtin(o, visit);
    let t = heap.type_of(o);
    if t.is_host() && t.hooks().traverse != 0 {
        // A host may report anything: only live objects of this heap count.
        host_traverse(o, t.hooks(), &mut |child| {
            if heap.lookup(child.as_ptr() as *const u8).is_some() {
                visit(child);
            }
        });
    }
}

/// The objects of generation `i`, in the scratch arena.
fn gen_objects<'b>(bump: &'b Bump, heap: &Heap, i: usize) -> BumpVec<'b, Obj> {
    let mut v = BumpVec::new_in(bump);
    v.extend(heap.gc.generations[i].objects());
    v
}

/// Which objects of `objs` nothing outside `objs` reaches, by CPython's
/// three phases, with `gc_refs` kept in the objects' headers (no table):
/// - update_refs: `gc_refs = refcount` for every object of the set;
/// - subtract_refs: every reference from one object of the set to another
///   takes one off its target's `gc_refs`; afterwards `gc_refs` counts only
///   references from outside the set;
/// - move_unreachable: objects with `gc_refs > 0` are roots, and everything
///   they reach inside the set is reachable (a work-list walk, no
///   recursion); the rest is garbage.
///
/// The counts are restored before returning. Returns (garbage, reachable).
fn find_unreachable<'b>(
    bump: &'b Bump,
    heap: &Heap,
    objs: &[Obj],
    host_traverse: HostTraverse,
) -> (BumpVec<'b, Obj>, BumpVec<'b, Obj>) {
    // update_refs
    let mut saved = BumpVec::with_capacity_in(objs.len(), bump);
    for &o in objs {
        saved.push(heap.gc_begin(o));
    }
    // subtract_refs
    for &o in objs {
        traverse(heap, o, &mut *host_traverse, &mut |child| heap.gc_decrement(child));
    }
    // move_unreachable
    let mut work = BumpVec::new_in(bump);
    for &o in objs {
        if heap.gc_refs(o) > 0 && heap.gc_mark_reachable(o) {
            work.push(o);
        }
    }
    while let Some(o) = work.pop() {
        traverse(heap, o, &mut *host_traverse, &mut |child| {
            if heap.gc_mark_reachable(child) {
                work.push(child);
            }
        });
    }
    let mut garbage = BumpVec::new_in(bump);
    let mut reachable = BumpVec::new_in(bump);
    for (&o, &refcnt) in objs.iter().zip(saved.iter()) {
        if heap.gc_end(o, refcnt) {
            reachable.push(o);
        } else {
            garbage.push(o);
        }
    }
    (garbage, reachable)
}

/// untrack_tuples: a surviving tuple whose items are all untracked can never
/// be in a cycle: the collector stops watching it (CPython does the same).
fn untrack_tuples(heap: &mut Heap, generation: usize) {
    for o in heap.gc.generations[generation].objects() {
        heap.maybe_untrack_tuple(o);
    }
}
