//! Property test of the cycle collector through the C ABI, against an
//! independent oracle: random graphs of lists, dicts and instances of host
//! types (Rust `extern "C"` callbacks), random outside references kept, then
//! `pymem_gc_collect(rt, 2, &found)` with automatic collection disabled.
//!
//! The host types:
//! - `Plain`: no callbacks; its references live in attributes.
//! - `Node`: `traverse`/`clear`/`dealloc`; up to [`K`] children in payload
//!   slots (taken with `pymem_incref`, reported by `traverse`, dropped and
//!   NULLed by `clear`), further ones in attributes; `dealloc` is counted.
//! - `FinNode`: a `Node` with a PEP 442 `finalize` that resurrects the
//!   object (`pymem_incref(self)`, recorded for the test to drop later)
//!   when the case says so.
//! - `FinPlain`: `finalize` only (no traverse/clear/dealloc), references in
//!   attributes.
//!
//! The oracle (CPython 3.11's semantics, which the library implements) is a
//! small simulation of the object graph, independent of the library:
//! - Dropping references (`Model::settle`): what reaches count 0 dies by
//!   reference counting (Kahn's algorithm); an object with a finalizer not
//!   yet run is finalized first (PEP 442 finalizers run on reference-count
//!   death too) and survives if the finalizer resurrected it, keeping its
//!   children alive; its weak references stay alive then (CPython clears
//!   them only after the finalizer, in `subtype_dealloc`).
//! - A collection (`Model::collect`): the garbage G is what is alive but
//!   unreachable from the references the test holds; every weak reference
//!   to G is cleared (callbacks for the handles not freed); every object of
//!   G with a finalizer not yet run is finalized; the resurrected ones and
//!   what they reach inside G survive; the rest is freed, and `found` is
//!   |G| - |survivors| (3.11 counts after the resurrection check).
//!
//! After each step the whole state is compared: exact reference counts and
//! intact edges of every live object, `pymem_gc_is_finalized`, dead objects
//! refused as invalid pointers, `dealloc`/`finalize` calls per object,
//! weak reference targets and callbacks, and at the end the allocator's
//! `blocks_in_use` back to its baseline.

use std::cell::{Cell, RefCell};
use std::ffi::{c_int, c_void, CStr, CString};
use std::mem::MaybeUninit;
use std::ptr;

use proptest::prelude::*;
use pymem::alloc::pymem_alloc_get_stats;
use pymem::gc::{pymem_gc_collect, pymem_gc_disable, pymem_gc_is_finalized};
use pymem::object::{
    pymem_clear_free_lists, pymem_decref, pymem_dict_get, pymem_dict_len, pymem_dict_new, pymem_dict_set,
    pymem_getattr, pymem_incref, pymem_instance_new, pymem_instance_payload, pymem_int_new, pymem_list_append,
    pymem_list_get, pymem_list_len, pymem_list_new, pymem_none, pymem_refcount, pymem_setattr, pymem_type_new,
    pymem_type_spec_init, Object, Type, TypeSpec, VisitFn,
};
use pymem::runtime::{pymem_config_init, pymem_last_error, pymem_runtime_free, pymem_runtime_new};
use pymem::weakref::{pymem_weakref_free, pymem_weakref_get, pymem_weakref_new, WeakRef};
use pymem::{AllocStats, Config, Runtime, Status};

/// Payload child slots of a `Node`.
const K: usize = 3;
/// The payload index of the throw-away instances made before the baseline.
const WARMUP: usize = usize::MAX;

/// The payload of `Node`, `FinNode` and `FinPlain` (the last uses `index` only).
#[repr(C)]
struct Payload {
    index: usize,
    slots: [*mut Object; K],
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    List,
    Dict,
    Plain,
    Node,
    FinNode,
    FinPlain,
}

impl Kind {
    fn has_finalizer(self) -> bool {
        matches!(self, Kind::FinNode | Kind::FinPlain)
    }
    fn has_payload(self) -> bool {
        matches!(self, Kind::Node | Kind::FinNode | Kind::FinPlain)
    }
    fn has_slots(self) -> bool {
        matches!(self, Kind::Node | Kind::FinNode)
    }
    fn has_dealloc(self) -> bool {
        self.has_slots()
    }
    fn weakrefable(self) -> bool {
        !matches!(self, Kind::List | Kind::Dict)
    }
}

#[derive(Clone, Debug)]
struct Weak {
    target: usize,
    /// Freed by the test right after all weak references were made, before
    /// anything dies: its callback must never run.
    free_early: bool,
    with_callback: bool,
}

#[derive(Clone, Debug)]
struct Graph {
    kinds: Vec<Kind>,
    /// (from, to): `from` holds a reference to `to` (repeats allowed).
    edges: Vec<(usize, usize)>,
    /// Which nodes the test keeps a reference to.
    kept: Vec<bool>,
    /// The order in which the test drops its references (a permutation).
    order: Vec<usize>,
    /// Whether the node's finalizer (if its type has one) resurrects it.
    resurrect: Vec<bool>,
    weak: Vec<Weak>,
}

#[derive(Clone, Copy)]
struct Features {
    finalizers: bool,
    weakrefs: bool,
}

fn graph(f: Features) -> impl Strategy<Value = Graph> {
    let mut kinds = vec![Kind::List, Kind::Dict, Kind::Plain, Kind::Node];
    if f.finalizers {
        kinds.extend([Kind::FinNode, Kind::FinPlain]);
    }
    let weak_refs = f.weakrefs;
    // Per case: the share of nodes kept (none to 40%) and the edge density
    // (sparse graphs: chains and small cycles; dense ones: big tangles).
    (1usize..50, proptest::sample::select(vec![0.0, 0.05, 0.15, 0.4]), 1usize..=4).prop_flat_map(
        move |(n, kept, density)| {
            (
                proptest::collection::vec(proptest::sample::select(kinds.clone()), n),
                proptest::collection::vec((0..n, 0..n), 0..=(density * n)),
                proptest::collection::vec(proptest::bool::weighted(kept), n),
                Just((0..n).collect::<Vec<usize>>()).prop_shuffle(),
                proptest::collection::vec(proptest::bool::weighted(0.5), n),
                proptest::collection::vec(
                    (0..n, proptest::bool::weighted(0.25), proptest::bool::weighted(0.8)),
                    0..=(if weak_refs { n } else { 0 }),
                ),
            )
                .prop_map(|(kinds, edges, kept, order, resurrect, weak)| Graph {
                    kinds,
                    edges,
                    kept,
                    order,
                    resurrect,
                    weak: weak
                        .into_iter()
                        .map(|(target, free_early, with_callback)| Weak { target, free_early, with_callback })
                        .collect(),
                })
        },
    )
}

// ----------------------------------------------------------------------
// the oracle

/// The graph as the oracle sees it: who is alive, who holds whom.
struct Model<'g> {
    g: &'g Graph,
    /// Children of each node, with repeats (each edge is one reference).
    out: Vec<Vec<usize>>,
    alive: Vec<bool>,
    /// References the test holds (kept, or taken by a resurrecting finalizer).
    ext: Vec<u32>,
    finalized: Vec<bool>,
    fin_calls: Vec<u32>,
    /// Nodes resurrected since the test last dropped those references.
    resurrected: Vec<usize>,
    /// Per weak reference: whether the weakref_new succeeded.
    weak_made: Vec<bool>,
    weak_cleared: Vec<bool>,
}

impl<'g> Model<'g> {
    fn new(g: &'g Graph) -> Self {
        let n = g.kinds.len();
        let mut out = vec![Vec::new(); n];
        for &(a, b) in &g.edges {
            out[a].push(b);
        }
        Model {
            g,
            out,
            alive: vec![true; n],
            ext: vec![1; n],
            finalized: vec![false; n],
            fin_calls: vec![0; n],
            resurrected: Vec::new(),
            weak_made: g.weak.iter().map(|w| g.kinds[w.target].weakrefable()).collect(),
            weak_cleared: vec![false; g.weak.len()],
        }
    }

    fn n(&self) -> usize {
        self.alive.len()
    }

    /// Runs `i`'s finalizer if it has one that has not run; true if it
    /// resurrected `i`.
    fn finalize(&mut self, i: usize) -> bool {
        if !self.g.kinds[i].has_finalizer() || self.finalized[i] {
            return false;
        }
        self.finalized[i] = true;
        self.fin_calls[i] += 1;
        if self.g.resurrect[i] {
            self.ext[i] += 1;
            self.resurrected.push(i);
            return true;
        }
        false
    }

    fn clear_weakrefs_to(&mut self, i: usize) {
        for (w, spec) in self.g.weak.iter().enumerate() {
            if spec.target == i && self.weak_made[w] && !spec.free_early {
                self.weak_cleared[w] = true;
            }
        }
    }

    /// The test drops one reference to each of `who`: reference counting
    /// frees what reaches zero (finalizers first, which may resurrect).
    fn drop_refs(&mut self, who: &[usize]) {
        for &i in who {
            assert!(self.ext[i] > 0);
            self.ext[i] -= 1;
        }
        let n = self.n();
        let mut count = vec![0u32; n];
        for x in (0..n).filter(|&x| self.alive[x]) {
            count[x] += self.ext[x];
            for &c in &self.out[x] {
                count[c] += 1;
            }
        }
        let mut queue: Vec<usize> = (0..n).filter(|&x| self.alive[x] && count[x] == 0).collect();
        while let Some(x) = queue.pop() {
            if self.finalize(x) {
                continue;
            }
            self.alive[x] = false;
            self.clear_weakrefs_to(x);
            for k in 0..self.out[x].len() {
                let c = self.out[x][k];
                count[c] -= 1;
                if count[c] == 0 {
                    queue.push(c);
                }
            }
        }
    }

    /// `gc.collect(2)`: returns what `found` must be.
    fn collect(&mut self) -> usize {
        let n = self.n();
        let mut reachable = vec![false; n];
        let mut work: Vec<usize> = (0..n).filter(|&x| self.alive[x] && self.ext[x] > 0).collect();
        for &x in &work {
            reachable[x] = true;
        }
        while let Some(x) = work.pop() {
            for &c in &self.out[x] {
                if !reachable[c] {
                    reachable[c] = true;
                    work.push(c);
                }
            }
        }
        let garbage: Vec<usize> = (0..n).filter(|&x| self.alive[x] && !reachable[x]).collect();
        for &x in &garbage {
            self.clear_weakrefs_to(x);
        }
        let mut survives = vec![false; n];
        let mut work = Vec::new();
        for &x in &garbage {
            if self.finalize(x) {
                survives[x] = true;
                work.push(x);
            }
        }
        while let Some(x) = work.pop() {
            for &c in &self.out[x] {
                if !survives[c] && !reachable[c] {
                    survives[c] = true;
                    work.push(c);
                }
            }
        }
        let mut found = 0;
        for &x in &garbage {
            if !survives[x] {
                self.alive[x] = false;
                found += 1;
            }
        }
        found
    }

    /// The exact reference count of a live node.
    fn refcount(&self, i: usize) -> isize {
        let held: usize =
            (0..self.n()).filter(|&x| self.alive[x]).map(|x| self.out[x].iter().filter(|&&c| c == i).count()).sum();
        (held + self.ext[i] as usize) as isize
    }
}

// ----------------------------------------------------------------------
// state shared with the callbacks (through the types' userdata)

/// Per-case state the callbacks write to. Callbacks cannot panic (they are
/// `extern "C"`): they record errors for the test to report.
struct Shared {
    rt: Cell<*mut Runtime>,
    none: Cell<*mut Object>,
    resurrect: Vec<bool>,
    fin_calls: Vec<Cell<u32>>,
    dealloc_calls: Vec<Cell<u32>>,
    resurrected: RefCell<Vec<(usize, *mut Object)>>,
    weak_calls: RefCell<Vec<*mut WeakRef>>,
    errors: RefCell<Vec<String>>,
}

impl Shared {
    fn new(g: &Graph) -> Self {
        let n = g.kinds.len();
        Shared {
            rt: Cell::new(ptr::null_mut()),
            none: Cell::new(ptr::null_mut()),
            resurrect: g.resurrect.clone(),
            fin_calls: (0..n).map(|_| Cell::new(0)).collect(),
            dealloc_calls: (0..n).map(|_| Cell::new(0)).collect(),
            resurrected: RefCell::new(Vec::new()),
            weak_calls: RefCell::new(Vec::new()),
            errors: RefCell::new(Vec::new()),
        }
    }

    fn error(&self, message: String) {
        self.errors.borrow_mut().push(message);
    }

    /// The payload index of a host instance (`None` for a warm-up object).
    fn index(&self, rt: *mut Runtime, o: *mut Object, what: &str) -> Option<(usize, *mut Payload)> {
        let mut p: *mut c_void = ptr::null_mut();
        // SAFETY: `rt` is the live runtime calling this callback; `p` is writable.
        let st = unsafe { pymem_instance_payload(rt, o, &mut p) };
        if st != Status::PYMEM_OK || p.is_null() {
            self.error(format!("{what}: pymem_instance_payload gave {st:?}"));
            return None;
        }
        let payload = p as *mut Payload;
        // SAFETY: every instance of these types has a `Payload` (payload_size).
        let index = unsafe { (*payload).index };
        if index == WARMUP {
            return None;
        }
        if index >= self.fin_calls.len() {
            self.error(format!("{what}: payload index {index} out of range"));
            return None;
        }
        Some((index, payload))
    }
}

/// # Safety
/// `ud` is the case's `Shared`, alive for the whole case.
unsafe fn shared<'a>(ud: *mut c_void) -> &'a Shared {
    // SAFETY: contract; only shared references to it ever exist.
    unsafe { &*(ud as *const Shared) }
}

unsafe extern "C" fn node_traverse(o: *mut Object, visit: VisitFn, arg: *mut c_void, ud: *mut c_void) -> c_int {
    // SAFETY: the userdata of our types is the case's `Shared`.
    let sh = unsafe { shared(ud) };
    let Some(visit) = visit else {
        sh.error("traverse: NULL visit".into());
        return 0;
    };
    let mut p: *mut c_void = ptr::null_mut();
    // SAFETY: the runtime is live; traverse may call pymem_instance_payload.
    let st = unsafe { pymem_instance_payload(sh.rt.get(), o, &mut p) };
    if st != Status::PYMEM_OK {
        sh.error(format!("traverse: pymem_instance_payload gave {st:?}"));
        return 0;
    }
    // SAFETY: a `Payload`, alive while the object is.
    let slots = unsafe { (*(p as *const Payload)).slots };
    for child in slots {
        if !child.is_null() {
            // SAFETY: the visit function the collector gave us, with its `arg`.
            let r = unsafe { visit(child, arg) };
            if r != 0 {
                return r;
            }
        }
    }
    0
}

unsafe extern "C" fn node_clear(rt: *mut Runtime, o: *mut Object, ud: *mut c_void) {
    // SAFETY: the userdata of our types is the case's `Shared`.
    let sh = unsafe { shared(ud) };
    let mut p: *mut c_void = ptr::null_mut();
    // SAFETY: `rt` is live; clear may call pymem_instance_payload.
    let st = unsafe { pymem_instance_payload(rt, o, &mut p) };
    if st != Status::PYMEM_OK {
        sh.error(format!("clear: pymem_instance_payload gave {st:?}"));
        return;
    }
    let payload = p as *mut Payload;
    for k in 0..K {
        // SAFETY: a `Payload`, alive while the callback runs.
        let child = unsafe { std::mem::replace(&mut (*payload).slots[k], ptr::null_mut()) };
        if !child.is_null() {
            // SAFETY: `rt` is live; clear may decref; the slot held a reference.
            let st = unsafe { pymem_decref(rt, child) };
            if st != Status::PYMEM_OK {
                sh.error(format!("clear: pymem_decref gave {st:?}"));
            }
        }
    }
}

unsafe extern "C" fn node_dealloc(_o: *mut Object, payload: *mut c_void, ud: *mut c_void) {
    // SAFETY: the userdata of our types is the case's `Shared`.
    let sh = unsafe { shared(ud) };
    // SAFETY: the payload of a `Node`/`FinNode`, a `Payload`.
    let payload = unsafe { &*(payload as *const Payload) };
    if payload.index == WARMUP {
        return;
    }
    match sh.dealloc_calls.get(payload.index) {
        Some(c) => c.set(c.get() + 1),
        None => sh.error(format!("dealloc: payload index {} out of range", payload.index)),
    }
    if payload.slots.iter().any(|s| !s.is_null()) {
        sh.error(format!("dealloc of node {}: clear did not run before it", payload.index));
    }
}

unsafe extern "C" fn finalize(rt: *mut Runtime, o: *mut Object, ud: *mut c_void) {
    // SAFETY: the userdata of our types is the case's `Shared`.
    let sh = unsafe { shared(ud) };
    let Some((i, _)) = sh.index(rt, o, "finalize") else { return };
    sh.fin_calls[i].set(sh.fin_calls[i].get() + 1);
    let mut flag: c_int = -1;
    // SAFETY: `rt` is live; finalize may call anything but runtime_free.
    let st = unsafe { pymem_gc_is_finalized(rt, o, &mut flag) };
    if st != Status::PYMEM_OK || flag != 1 {
        sh.error(format!("finalize of node {i}: is_finalized gave {st:?}, {flag}"));
    }
    if sh.resurrect[i] {
        // SAFETY: as above.
        let st = unsafe { pymem_incref(rt, o) };
        if st != Status::PYMEM_OK {
            sh.error(format!("finalize of node {i}: incref gave {st:?}"));
            return;
        }
        sh.resurrected.borrow_mut().push((i, o));
    }
}

unsafe extern "C" fn weak_callback(rt: *mut Runtime, wr: *mut WeakRef, ud: *mut c_void) {
    // SAFETY: the userdata of our weak references is the case's `Shared`.
    let sh = unsafe { shared(ud) };
    sh.weak_calls.borrow_mut().push(wr);
    let mut o: *mut Object = ptr::null_mut();
    // SAFETY: `rt` is live; weakref callbacks may call anything but runtime_free.
    let st = unsafe { pymem_weakref_get(rt, wr, &mut o) };
    if st != Status::PYMEM_OK || o != sh.none.get() {
        sh.error(format!("weakref callback: weakref_get gave {st:?}, not None"));
    }
    if !o.is_null() {
        // SAFETY: a new reference weakref_get gave us.
        unsafe { pymem_decref(rt, o) };
    }
}

// ----------------------------------------------------------------------
// the runtime, through the C ABI

/// A case's runtime and callback state: the runtime is freed first (its
/// teardown may still call `dealloc`), then the state, also when a check
/// fails and unwinds.
struct Case {
    rt: *mut Runtime,
    shared: *mut Shared,
}

impl Drop for Case {
    fn drop(&mut self) {
        if !self.rt.is_null() {
            // SAFETY: our live runtime, on its owner thread, freed once.
            unsafe { pymem_runtime_free(self.rt) };
        }
        // SAFETY: from `Box::into_raw` in `check`; no callback can run any more.
        drop(unsafe { Box::from_raw(self.shared) });
    }
}

impl Case {
    fn sh(&self) -> &Shared {
        // SAFETY: alive until `drop`; only shared references exist.
        unsafe { &*self.shared }
    }

    fn ok(&self, st: Status, what: &str) {
        if st != Status::PYMEM_OK {
            // SAFETY: our live runtime; the message is a C string or NULL.
            let msg = unsafe {
                let p = pymem_last_error(self.rt);
                if p.is_null() {
                    String::new()
                } else {
                    CStr::from_ptr(p).to_string_lossy().into_owned()
                }
            };
            panic!("{what}: {st:?}: {msg}");
        }
    }

    fn new_object(&self, f: unsafe extern "C" fn(*mut Runtime, *mut *mut Object) -> Status) -> *mut Object {
        let mut o = ptr::null_mut();
        // SAFETY: our live runtime; `o` is writable.
        self.ok(unsafe { f(self.rt, &mut o) }, "new object");
        o
    }

    /// An instance of `t`; `index` goes into its `Payload` (None: `Plain`).
    fn instance(&self, t: *mut Type, index: Option<usize>) -> *mut Object {
        let mut o = ptr::null_mut();
        // SAFETY: our live runtime and one of its types; `o` is writable.
        self.ok(unsafe { pymem_instance_new(self.rt, t, &mut o) }, "instance_new");
        if let Some(index) = index {
            let p = self.payload(o);
            // SAFETY: a fresh instance of a type whose payload is a `Payload`.
            unsafe { (*p).index = index };
        }
        o
    }

    fn payload(&self, o: *mut Object) -> *mut Payload {
        let mut p: *mut c_void = ptr::null_mut();
        // SAFETY: our live runtime; `p` is writable.
        self.ok(unsafe { pymem_instance_payload(self.rt, o, &mut p) }, "instance_payload");
        p as *mut Payload
    }

    fn incref(&self, o: *mut Object) {
        // SAFETY: our live runtime.
        self.ok(unsafe { pymem_incref(self.rt, o) }, "incref");
    }

    fn decref(&self, o: *mut Object) {
        // SAFETY: our live runtime.
        self.ok(unsafe { pymem_decref(self.rt, o) }, "decref");
    }

    fn refcount(&self, o: *mut Object) -> Result<isize, Status> {
        let mut n: isize = 0;
        // SAFETY: our live runtime; any `o` is validated; `n` is writable.
        match unsafe { pymem_refcount(self.rt, o, &mut n) } {
            Status::PYMEM_OK => Ok(n),
            st => Err(st),
        }
    }

    fn is_finalized(&self, o: *mut Object) -> bool {
        let mut flag: c_int = 0;
        // SAFETY: our live runtime; `flag` is writable.
        self.ok(unsafe { pymem_gc_is_finalized(self.rt, o, &mut flag) }, "gc_is_finalized");
        flag != 0
    }

    fn collect(&self) -> i64 {
        let mut found: i64 = -1;
        // SAFETY: our live runtime; `found` is writable.
        self.ok(unsafe { pymem_gc_collect(self.rt, 2, &mut found) }, "gc_collect");
        found
    }

    fn blocks_in_use(&self) -> u64 {
        let mut s = AllocStats::default();
        // SAFETY: our live runtime; `s` is writable.
        self.ok(unsafe { pymem_alloc_get_stats(self.rt, &mut s) }, "alloc_get_stats");
        s.blocks_in_use
    }

    fn setattr(&self, o: *mut Object, name: &CStr, value: *mut Object) {
        // SAFETY: our live runtime; `name` is a C string.
        self.ok(unsafe { pymem_setattr(self.rt, o, name.as_ptr(), value) }, "setattr");
    }

    /// A new reference's target, dropped at once (the holder keeps it alive).
    fn borrowed(&self, st: Status, o: *mut Object, what: &str) -> *mut Object {
        self.ok(st, what);
        self.decref(o);
        o
    }
}

/// How a node holds the `k`-th of its children.
#[derive(Clone, Copy, Debug)]
enum Via {
    Item(usize),
    Key,
    Attr(usize),
    Slot(usize),
}

fn attr_name(k: usize) -> CString {
    CString::new(format!("a{k}")).unwrap()
}

fn check(g: &Graph) {
    let n = g.kinds.len();
    let mut case = Case { rt: ptr::null_mut(), shared: Box::into_raw(Box::new(Shared::new(g))) };
    let mut cfg = MaybeUninit::<Config>::uninit();
    // SAFETY: `cfg` is writable; config_init fills every field.
    let cfg = unsafe {
        pymem_config_init(cfg.as_mut_ptr());
        cfg.assume_init()
    };
    let mut rt = ptr::null_mut();
    // SAFETY: an initialised config; `rt` is writable.
    let st = unsafe { pymem_runtime_new(&cfg, &mut rt) };
    assert_eq!(st, Status::PYMEM_OK);
    case.rt = rt;
    let c = &case;
    let sh = c.sh();
    sh.rt.set(rt);
    // SAFETY: our live runtime.
    c.ok(unsafe { pymem_gc_disable(rt) }, "gc_disable");
    sh.none.set(c.new_object(pymem_none));

    // The four host types.
    let ud = case.shared as *mut c_void;
    let make_type = |name: &CStr, payload: bool, slots: bool, fin: bool| -> *mut Type {
        let mut spec = MaybeUninit::<TypeSpec>::uninit();
        // SAFETY: `spec` is writable; spec_init fills every field.
        let mut spec = unsafe {
            pymem_type_spec_init(spec.as_mut_ptr());
            spec.assume_init()
        };
        spec.name = name.as_ptr();
        spec.payload_size = if payload { std::mem::size_of::<Payload>() } else { 0 };
        if slots {
            spec.traverse = Some(node_traverse);
            spec.clear = Some(node_clear);
            spec.dealloc = Some(node_dealloc);
        }
        if fin {
            spec.finalize = Some(finalize);
        }
        spec.userdata = ud;
        let mut t = ptr::null_mut();
        // SAFETY: our live runtime; an initialised spec; `t` is writable.
        c.ok(unsafe { pymem_type_new(rt, &spec, &mut t) }, "type_new");
        t
    };
    let t_plain = make_type(c"Plain", false, false, false);
    let t_node = make_type(c"Node", true, true, false);
    let t_fin_node = make_type(c"FinNode", true, true, true);
    let t_fin_plain = make_type(c"FinPlain", true, false, true);
    let type_of = |k: Kind| match k {
        Kind::Plain => t_plain,
        Kind::Node => t_node,
        Kind::FinNode => t_fin_node,
        Kind::FinPlain => t_fin_plain,
        Kind::List | Kind::Dict => unreachable!(),
    };

    // Where each edge goes, and how many attribute names each type needs.
    let mut via = Vec::with_capacity(g.edges.len());
    let mut counts = vec![0usize; n];
    let mut attrs = vec![0usize; n];
    for &(a, _) in &g.edges {
        let k = counts[a];
        counts[a] += 1;
        via.push(match g.kinds[a] {
            Kind::List => Via::Item(k),
            Kind::Dict => Via::Key,
            Kind::Node | Kind::FinNode if k < K => Via::Slot(k),
            _ => {
                attrs[a] += 1;
                Via::Attr(attrs[a] - 1)
            }
        });
    }
    let max_attrs = attrs.iter().copied().max().unwrap_or(0);
    let names: Vec<CString> = (0..max_attrs).map(attr_name).collect();

    // Warm-up: each type interns the attribute names it will use (the type
    // keeps them), so that the baseline already counts them.
    for t in [t_plain, t_node, t_fin_node, t_fin_plain] {
        let payload = t != t_plain;
        let o = c.instance(t, payload.then_some(WARMUP));
        for name in &names {
            c.setattr(o, name, sh.none.get());
        }
        c.decref(o);
    }
    c.collect();
    // SAFETY: our live runtime.
    c.ok(unsafe { pymem_clear_free_lists(rt) }, "clear_free_lists");
    let baseline = c.blocks_in_use();

    // Build the graph.
    let objs: Vec<*mut Object> = g
        .kinds
        .iter()
        .enumerate()
        .map(|(i, &k)| match k {
            Kind::List => c.new_object(pymem_list_new),
            Kind::Dict => c.new_object(pymem_dict_new),
            Kind::Plain => c.instance(t_plain, None),
            _ => c.instance(type_of(k), Some(i)),
        })
        .collect();
    // Dict keys: one int per edge, held by the test until the end (so that
    // no object is allocated after the graph is built, and a dead node's
    // address is never reused while the test checks it is dead).
    let mut keys: Vec<*mut Object> = vec![ptr::null_mut(); g.edges.len()];
    for (e, (&(a, b), &v)) in g.edges.iter().zip(&via).enumerate() {
        let (oa, ob) = (objs[a], objs[b]);
        match v {
            Via::Item(_) => {
                // SAFETY: our live runtime.
                c.ok(unsafe { pymem_list_append(rt, oa, ob) }, "list_append");
            }
            Via::Key => {
                let mut key = ptr::null_mut();
                // SAFETY: our live runtime; `key` is writable.
                c.ok(unsafe { pymem_int_new(rt, 1000 + e as i64, &mut key) }, "int_new");
                keys[e] = key;
                // SAFETY: our live runtime.
                c.ok(unsafe { pymem_dict_set(rt, oa, key, ob) }, "dict_set");
            }
            Via::Attr(k) => c.setattr(oa, &names[k], ob),
            Via::Slot(k) => {
                c.incref(ob);
                let p = c.payload(oa);
                // SAFETY: a `Payload` of a live node; the slot takes the reference.
                unsafe { (*p).slots[k] = ob };
            }
        }
    }
    let mut children: Vec<Vec<(Via, usize, usize)>> = vec![Vec::new(); n];
    for (e, (&(a, b), &v)) in g.edges.iter().zip(&via).enumerate() {
        children[a].push((v, b, e));
    }

    // Weak references: all made first, then the early ones freed (so no
    // handle address is reused).
    let mut model = Model::new(g);
    let mut weak: Vec<*mut WeakRef> = Vec::with_capacity(g.weak.len());
    for w in &g.weak {
        let mut wr = ptr::null_mut();
        let cb = if w.with_callback { Some(weak_callback as unsafe extern "C" fn(_, _, _)) } else { None };
        // SAFETY: our live runtime; `wr` is writable; the callback's userdata
        // is the case's `Shared`, alive as long as the runtime.
        let st = unsafe { pymem_weakref_new(rt, objs[w.target], cb, ud, &mut wr) };
        if g.kinds[w.target].weakrefable() {
            c.ok(st, "weakref_new");
        } else {
            assert_eq!(st, Status::PYMEM_ERR_TYPE, "weak reference to a {:?} must be refused", g.kinds[w.target]);
        }
        weak.push(wr);
    }
    for (w, spec) in g.weak.iter().enumerate() {
        if spec.free_early && model.weak_made[w] {
            // SAFETY: our live runtime and a live handle of it.
            c.ok(unsafe { pymem_weakref_free(rt, weak[w]) }, "weakref_free");
        }
    }

    let state = |model: &Model, step: &str| {
        check_state(c, model, g, &objs, &keys, &children, &names, &weak, step);
    };
    state(&model, "after building");

    // Drop the references the test does not keep (dying by refcount).
    let dropped: Vec<usize> = g.order.iter().copied().filter(|&i| !g.kept[i]).collect();
    for &i in &dropped {
        c.decref(objs[i]);
    }
    model.drop_refs(&dropped);
    state(&model, "after dropping the outside references");

    // Collect; then drop what finalizers resurrected and collect again, until
    // nothing is resurrected. Then the same with the kept references.
    for phase in ["kept", "final"] {
        if phase == "final" {
            let kept: Vec<usize> = g.order.iter().copied().filter(|&i| g.kept[i]).collect();
            for &i in &kept {
                c.decref(objs[i]);
            }
            model.drop_refs(&kept);
            state(&model, "after dropping the kept references");
        }
        for round in 0.. {
            assert!(round <= n + 1, "resurrections do not end");
            let expected = model.collect();
            let found = c.collect();
            assert_eq!(found, expected as i64, "{phase} phase, round {round}: collect(2) found");
            state(&model, &format!("{phase} phase, round {round}, after the collection"));
            // A second collection at once finds nothing new.
            let again = c.collect();
            assert_eq!(again, model.collect() as i64, "{phase} phase, round {round}: a second collection");
            if model.resurrected.is_empty() {
                break;
            }
            let res: Vec<usize> = std::mem::take(&mut model.resurrected);
            let taken: Vec<(usize, *mut Object)> = std::mem::take(&mut *sh.resurrected.borrow_mut());
            for &(_, o) in &taken {
                c.decref(o);
            }
            model.drop_refs(&res);
            state(&model, &format!("{phase} phase, round {round}, after dropping the resurrected"));
        }
    }
    assert!(model.alive.iter().all(|&a| !a), "everything is dead at the end");

    // Every finalizer ran exactly once, every node was deallocated once.
    for i in 0..n {
        let k = g.kinds[i];
        assert_eq!(sh.fin_calls[i].get(), k.has_finalizer() as u32, "finalize calls of node {i} ({k:?})");
        assert_eq!(sh.dealloc_calls[i].get(), k.has_dealloc() as u32, "dealloc calls of node {i} ({k:?})");
    }
    // Back to the baseline.
    for &key in keys.iter().filter(|k| !k.is_null()) {
        c.decref(key);
    }
    for (w, spec) in g.weak.iter().enumerate() {
        if !spec.free_early && model.weak_made[w] {
            // SAFETY: our live runtime and a live handle of it.
            c.ok(unsafe { pymem_weakref_free(rt, weak[w]) }, "weakref_free");
        }
    }
    assert_eq!(c.collect(), 0);
    // SAFETY: our live runtime.
    c.ok(unsafe { pymem_clear_free_lists(rt) }, "clear_free_lists");
    assert_eq!(c.blocks_in_use(), baseline, "blocks in use return to the baseline");
    assert!(sh.errors.borrow().is_empty(), "callback errors: {:?}", sh.errors.borrow());
}

/// Compares the runtime with the model.
#[allow(clippy::too_many_arguments)]
fn check_state(
    c: &Case,
    model: &Model,
    g: &Graph,
    objs: &[*mut Object],
    keys: &[*mut Object],
    children: &[Vec<(Via, usize, usize)>],
    names: &[CString],
    weak: &[*mut WeakRef],
    step: &str,
) {
    let sh = c.sh();
    let rt = c.rt;
    assert!(sh.errors.borrow().is_empty(), "{step}: callback errors: {:?}", sh.errors.borrow());
    // What the finalizers resurrected and the test has not dropped yet.
    let mut real: Vec<usize> = sh.resurrected.borrow().iter().map(|&(i, _)| i).collect();
    let mut want = model.resurrected.clone();
    real.sort_unstable();
    want.sort_unstable();
    assert_eq!(real, want, "{step}: resurrected nodes");
    for &(i, o) in sh.resurrected.borrow().iter() {
        assert_eq!(o, objs[i], "{step}: the resurrected object is node {i}");
    }
    for (i, &o) in objs.iter().enumerate() {
        let kind = g.kinds[i];
        assert_eq!(sh.fin_calls[i].get(), model.fin_calls[i], "{step}: finalize calls of node {i} ({kind:?})");
        if kind.has_dealloc() {
            let want = (!model.alive[i]) as u32;
            assert_eq!(sh.dealloc_calls[i].get(), want, "{step}: dealloc calls of node {i} ({kind:?})");
        }
        if !model.alive[i] {
            assert_eq!(
                c.refcount(o),
                Err(Status::PYMEM_ERR_INVALID_POINTER),
                "{step}: node {i} ({kind:?}) must have been freed"
            );
            continue;
        }
        assert_eq!(c.refcount(o), Ok(model.refcount(i)), "{step}: reference count of live node {i} ({kind:?})");
        assert_eq!(c.is_finalized(o), model.finalized[i], "{step}: is_finalized of node {i} ({kind:?})");
        // Intact: every edge still there.
        let mine = &children[i];
        match kind {
            Kind::List => {
                let mut len = 0usize;
                // SAFETY: our live runtime; `len` is writable.
                c.ok(unsafe { pymem_list_len(rt, o, &mut len) }, "list_len");
                assert_eq!(len, mine.len(), "{step}: length of list {i}");
            }
            Kind::Dict => {
                let mut len = 0usize;
                // SAFETY: our live runtime; `len` is writable.
                c.ok(unsafe { pymem_dict_len(rt, o, &mut len) }, "dict_len");
                assert_eq!(len, mine.len(), "{step}: length of dict {i}");
            }
            _ => {}
        }
        if kind.has_payload() {
            let p = c.payload(o);
            // SAFETY: a `Payload` of a live node.
            let payload = unsafe { &*p };
            assert_eq!(payload.index, i, "{step}: payload of node {i}");
            let used = mine.iter().filter(|(v, _, _)| matches!(v, Via::Slot(_))).count();
            for (k, slot) in payload.slots.iter().enumerate().skip(used) {
                assert!(slot.is_null(), "{step}: node {i} slot {k} must be empty");
            }
        }
        for &(v, b, e) in mine {
            let mut out = ptr::null_mut();
            let got = match v {
                // SAFETY: our live runtime; `out` is writable.
                Via::Item(k) => c.borrowed(unsafe { pymem_list_get(rt, o, k, &mut out) }, out, "list_get"),
                // SAFETY: as above; the key is alive (held by the test).
                Via::Key => c.borrowed(unsafe { pymem_dict_get(rt, o, keys[e], &mut out) }, out, "dict_get"),
                Via::Attr(k) => {
                    // SAFETY: as above; the name is a C string.
                    c.borrowed(unsafe { pymem_getattr(rt, o, names[k].as_ptr(), &mut out) }, out, "getattr")
                }
                // SAFETY: a `Payload` of a live node.
                Via::Slot(k) => unsafe { (*c.payload(o)).slots[k] },
            };
            assert_eq!(got, objs[b], "{step}: edge {e} of node {i} ({kind:?}, {v:?}) must still lead to node {b}");
        }
    }
    // Weak references.
    let calls = sh.weak_calls.borrow().clone();
    for (w, spec) in g.weak.iter().enumerate() {
        if !model.weak_made[w] {
            continue;
        }
        let wr = weak[w];
        let n_calls = calls.iter().filter(|&&x| x == wr).count();
        let want_calls = (model.weak_cleared[w] && spec.with_callback) as usize;
        assert_eq!(n_calls, want_calls, "{step}: callback calls of weakref {w} to node {} {spec:?}", spec.target);
        if spec.free_early {
            continue;
        }
        let mut out = ptr::null_mut();
        // SAFETY: our live runtime and a live handle of it; `out` is writable.
        let got = c.borrowed(unsafe { pymem_weakref_get(rt, wr, &mut out) }, out, "weakref_get");
        let want = if model.weak_cleared[w] { sh.none.get() } else { objs[spec.target] };
        assert_eq!(got, want, "{step}: weakref {w} to node {} {spec:?} (None: {:?})", spec.target, sh.none.get());
    }
    let known = calls.iter().all(|x| weak.contains(x));
    assert!(known, "{step}: a weakref callback got an unknown handle");
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 4000, ..ProptestConfig::default() })]

    /// Lists, dicts, plain instances and Nodes: exactly the cyclic garbage.
    #[test]
    fn exactly_the_cyclic_garbage_is_collected(g in graph(Features { finalizers: false, weakrefs: false })) {
        check(&g);
    }

    /// With resurrecting finalizers (on reference-count death and in
    /// collections), each run once.
    #[test]
    fn finalizers_run_once_and_resurrect(g in graph(Features { finalizers: true, weakrefs: false })) {
        check(&g);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 3000, ..ProptestConfig::default() })]

    /// With weak references (some freed early, some without callback).
    #[test]
    fn weakrefs_are_cleared_with_their_referents(g in graph(Features { finalizers: false, weakrefs: true })) {
        check(&g);
    }

    /// Everything at once: finalizers that resurrect, and weak references.
    #[test]
    fn finalizers_and_weakrefs_together(g in graph(Features { finalizers: true, weakrefs: true })) {
        check(&g);
    }
}
