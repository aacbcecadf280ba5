//! Runs one sequence against the C ABI and keeps a model beside it.
//!
//! The model knows every object the sequence made or was handed and the
//! references between them that the C API creates (list and tuple items,
//! dict entries, attributes, namespace bindings and hidden entries, the
//! children a host `Node` keeps in its payload), plus the references the
//! fuzzer itself holds (its handles). From these it predicts:
//! - each step's status (a type error for a list call on a dict, an index
//!   error past the end, `PYMEM_ERR_INVALID_POINTER` for an interior, wild
//!   or foreign pointer, ...) — any status outside the predicted set fails;
//! - what getters hand out (`list_get` gives the item the model has there);
//! - after a full collection, which objects are alive (reference-counting
//!   deaths, then what is unreachable from the handles and from frozen
//!   survivors) and every live object's exact reference count.
//!
//! At the end of a sequence the heap's invariants are checked, every
//! handle is dropped and the bytes in use must be back to where they were
//! after the runtime was set up.

use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::ffi::{c_char, c_int, c_void, CStr, CString};
use std::ptr;

use pymem::alloc::*;
use pymem::cuda::*;
use pymem::gc::*;
use pymem::ns::*;
use pymem::object::*;
use pymem::runtime::*;
use pymem::status::pymem_status_name;
use pymem::testing::{check_invariants, cuda_check_invariants};
use pymem::weakref::*;
use pymem::{AllocStats, Config, Runtime, Status};

use crate::op::{Kind, Op, Sequence};

/// Payload child slots of a `Node`.
pub const K: usize = 3;

/// Str contents the sequences use (some of them also attribute and
/// binding names).
const STRS: &[&str] = &["", "a", "b", "ab", "ba", "x1", "_h", "long_name", "val", "left", "h\u{e9}llo"];
/// Attribute names.
const ATTRS: &[&str] = &["a", "b", "val", "_p", "left"];
/// Namespace names; the last two are invalid (empty, not UTF-8).
const NAMES: &[&[u8]] = &[b"a", b"b", b"ab", b"ba", b"x1", b"_h", b"long_name", b"f", b"", b"\xff"];
/// `%reset_selective` patterns: None, valid ones, invalid ones.
const REGEXES: &[Option<&str>] = &[
    None,
    Some("a"),
    Some("^a"),
    Some("b$"),
    Some("x\\d"),
    Some(".*"),
    Some("("),
    Some("[a-"),
    Some(""),
    Some("(?i)AB"),
    Some("\\"),
];

#[derive(Clone, Debug, PartialEq)]
enum Val {
    Int(i64),
    Float(f64),
    Str(Vec<u8>),
    Bool(bool),
    None,
    Tuple,
    List,
    Dict,
    Module,
    Function,
    Node,
    Plain,
    Ns,
}

struct MObj {
    ptr: usize,
    val: Val,
    /// Interned strs may have references the model does not see (names
    /// of attributes and bindings are interned): their count is not checked.
    interned: bool,
    items: Vec<usize>,
    entries: Vec<(usize, usize)>,
    /// Attributes, or a namespace's bindings.
    attrs: BTreeMap<Vec<u8>, usize>,
    /// A namespace's hidden names (each holds a reference to its value).
    hidden: BTreeMap<Vec<u8>, usize>,
    slots: [Option<usize>; K],
    dead: bool,
    frozen: bool,
}

impl MObj {
    fn new(ptr: usize, val: Val) -> MObj {
        MObj {
            ptr,
            val,
            interned: false,
            items: Vec::new(),
            entries: Vec::new(),
            attrs: BTreeMap::new(),
            hidden: BTreeMap::new(),
            slots: [None; K],
            dead: false,
            frozen: false,
        }
    }

    fn immortal(&self) -> bool {
        match &self.val {
            Val::Int(v) => (-5..=256).contains(v),
            Val::Bool(_) | Val::None => true,
            Val::Str(s) => s.is_empty() || (s.len() == 1 && s[0] < 128),
            Val::Tuple => self.items.is_empty(),
            _ => false,
        }
    }

    /// Every reference this object holds.
    fn refs(&self) -> impl Iterator<Item = usize> + '_ {
        self.items
            .iter()
            .copied()
            .chain(self.entries.iter().flat_map(|&(k, v)| [k, v]))
            .chain(self.attrs.values().copied())
            .chain(self.hidden.values().copied())
            .chain(self.slots.iter().flatten().copied())
    }
}

/// What the host callbacks share with the world (their userdata).
#[derive(Default)]
pub struct Shared {
    rt: Cell<usize>,
    pub finalized: Cell<u64>,
    pub deallocs: Cell<u64>,
    pub weak_callbacks: Cell<u64>,
    pub gc_callbacks: Cell<u64>,
    errors: RefCell<Vec<String>>,
}

impl Shared {
    fn expect(&self, what: &str, st: Status, allowed: &[Status]) {
        if !allowed.contains(&st) {
            self.errors.borrow_mut().push(format!("inside a callback: {what} gave {st:?}"));
        }
    }
}

/// One weak reference the sequence made.
struct Weak {
    ptr: *mut WeakRef,
    target: usize,
    state: Box<WeakState>,
}

struct WeakState {
    shared: *const Shared,
    free_in_callback: bool,
    freed: Cell<bool>,
}

/// What a sequence did, for the summary.
#[derive(Default, Clone, Debug)]
pub struct Counts {
    pub calls: u64,
    pub statuses: BTreeMap<&'static str, u64>,
    pub finalized: u64,
    pub deallocs: u64,
    pub weak_callbacks: u64,
    pub gc_callbacks: u64,
}

pub struct World {
    rt: *mut Runtime,
    foreign: *mut Runtime,
    foreign_obj: *mut Object,
    foreign_block: *mut c_void,
    wild: Box<[u64; 8]>,
    shared: Box<Shared>,
    node_type: *mut Type,
    plain_type: *mut Type,
    objs: Vec<MObj>,
    by_ptr: HashMap<usize, usize>,
    handles: Vec<usize>,
    freed_objs: Vec<usize>,
    raw: Vec<(usize, usize)>,
    freed_raw: Vec<usize>,
    weaks: Vec<Weak>,
    gc_callbacks: Vec<u64>,
    cuda: *mut CudaCache,
    cuda_live: Vec<(u64, u64)>,
    /// Live blocks used on another stream too (record_stream): freed, they
    /// stay counted until their events complete.
    cuda_recorded: HashSet<u64>,
    /// Bytes of blocks freed while events were pending.
    cuda_pending: u64,
    cuda_freed: Vec<u64>,
    streams: Vec<usize>,
    limited: bool,
    baseline: u64,
    pub counts: Counts,
}

/// A failed check.
pub type Fail = String;
type R<T = ()> = Result<T, Fail>;

use Status::*;

fn status_name(st: Status) -> &'static str {
    // SAFETY: pymem_status_name returns a static C string.
    unsafe { CStr::from_ptr(pymem_status_name(st as i32)) }.to_str().unwrap_or("?")
}

fn default_config() -> Config {
    let mut cfg = std::mem::MaybeUninit::<Config>::zeroed();
    // SAFETY: writable; pymem_config_init fills every field.
    unsafe {
        pymem_config_init(cfg.as_mut_ptr());
        cfg.assume_init()
    }
}

// ---------------------------------------------------------------------
// host callbacks (Rust `extern "C"` functions, as a C host writes them)

#[repr(C)]
struct Payload {
    slots: [*mut Object; K],
}

fn shared_of<'a>(ud: *mut c_void) -> &'a Shared {
    // SAFETY: the userdata of every callback below is the world's `Shared`,
    // boxed and alive until after the runtime is freed.
    unsafe { &*(ud as *const Shared) }
}

fn payload_of(rt: *mut Runtime, o: *mut Object) -> *mut Payload {
    let mut p = ptr::null_mut();
    // SAFETY: a live runtime and a Node it calls us about.
    let st = unsafe { pymem_instance_payload(rt, o, &mut p) };
    if st != PYMEM_OK {
        return ptr::null_mut();
    }
    p.cast()
}

unsafe extern "C" fn node_traverse(o: *mut Object, visit: VisitFn, arg: *mut c_void, ud: *mut c_void) -> c_int {
    let rt = shared_of(ud).rt.get() as *mut Runtime;
    let p = payload_of(rt, o);
    let Some(visit) = visit else { return 0 };
    if p.is_null() {
        shared_of(ud).errors.borrow_mut().push("traverse: no payload".into());
        return 0;
    }
    // SAFETY: a Node's payload is a `Payload`, alive while the object is.
    for &child in unsafe { &(*p).slots } {
        if !child.is_null() {
            // SAFETY: the collector's visit function with its `arg`.
            let r = unsafe { visit(child, arg) };
            if r != 0 {
                return r;
            }
        }
    }
    0
}

unsafe extern "C" fn node_clear(rt: *mut Runtime, o: *mut Object, ud: *mut c_void) {
    let p = payload_of(rt, o);
    if p.is_null() {
        return;
    }
    for i in 0..K {
        // SAFETY: a Node's payload, alive while the callback runs.
        let child = unsafe { std::mem::replace(&mut (*p).slots[i], ptr::null_mut()) };
        if !child.is_null() {
            // Re-entering: decref from inside clear is allowed.
            // SAFETY: live runtime; the child is a reference the payload held.
            let st = unsafe { pymem_decref(rt, child) };
            shared_of(ud).expect("decref in clear", st, &[PYMEM_OK]);
        }
    }
    // Anything else is refused here.
    let mut out = ptr::null_mut();
    // SAFETY: live runtime, writable out.
    let st = unsafe { pymem_list_new(rt, &mut out) };
    shared_of(ud).expect("list_new in clear", st, &[PYMEM_ERR_BUSY]);
}

unsafe extern "C" fn node_finalize(rt: *mut Runtime, _o: *mut Object, ud: *mut c_void) {
    let s = shared_of(ud);
    s.finalized.set(s.finalized.get() + 1);
    // A finalizer may call anything but runtime_free: make and drop objects.
    let mut l = ptr::null_mut();
    let mut i = ptr::null_mut();
    // SAFETY: live runtime, writable outs; the objects made are dropped.
    unsafe {
        let st = pymem_list_new(rt, &mut l);
        s.expect("list_new in finalize", st, &[PYMEM_OK, PYMEM_ERR_NO_MEMORY]);
        let st2 = pymem_int_new(rt, 1 << 40, &mut i);
        s.expect("int_new in finalize", st2, &[PYMEM_OK, PYMEM_ERR_NO_MEMORY]);
        if st == PYMEM_OK && st2 == PYMEM_OK {
            s.expect("list_append in finalize", pymem_list_append(rt, l, i), &[PYMEM_OK, PYMEM_ERR_NO_MEMORY]);
        }
        if st == PYMEM_OK {
            s.expect("decref in finalize", pymem_decref(rt, l), &[PYMEM_OK]);
        }
        if st2 == PYMEM_OK {
            s.expect("decref in finalize", pymem_decref(rt, i), &[PYMEM_OK]);
        }
        s.expect("runtime_free in finalize", pymem_runtime_free(rt), &[PYMEM_ERR_BUSY]);
    }
}

unsafe extern "C" fn node_dealloc(_o: *mut Object, _payload: *mut c_void, ud: *mut c_void) {
    let s = shared_of(ud);
    s.deallocs.set(s.deallocs.get() + 1);
}

unsafe extern "C" fn weak_callback(rt: *mut Runtime, wr: *mut WeakRef, ud: *mut c_void) {
    // SAFETY: the userdata is the weak reference's `WeakState`, alive until
    // the world is dropped (after the runtime).
    let w = unsafe { &*(ud as *const WeakState) };
    // SAFETY: its `Shared` outlives it.
    let s = unsafe { &*w.shared };
    s.weak_callbacks.set(s.weak_callbacks.get() + 1);
    let mut out = ptr::null_mut();
    // SAFETY: live runtime and weak reference, writable out.
    let st = unsafe { pymem_weakref_get(rt, wr, &mut out) };
    s.expect("weakref_get in its callback", st, &[PYMEM_OK]);
    if st == PYMEM_OK && !out.is_null() {
        // The referent is gone: get gives None (immortal; dropping it is fine).
        // SAFETY: live runtime, a new reference.
        unsafe { pymem_decref(rt, out) };
    }
    if w.free_in_callback && !w.freed.get() {
        // SAFETY: live runtime and weak reference, freed once (flag).
        let st = unsafe { pymem_weakref_free(rt, wr) };
        s.expect("weakref_free in its callback", st, &[PYMEM_OK]);
        w.freed.set(true);
    }
}

unsafe extern "C" fn gc_callback(rt: *mut Runtime, _phase: *const c_char, _info: *const GcInfo, ud: *mut c_void) {
    let s = shared_of(ud);
    s.gc_callbacks.set(s.gc_callbacks.get() + 1);
    let mut found = -1;
    // SAFETY: live runtime, writable outs.
    unsafe {
        let st = pymem_gc_collect(rt, 2, &mut found);
        s.expect("gc_collect in a gc callback", st, &[PYMEM_OK]);
        let mut l = ptr::null_mut();
        let st = pymem_list_new(rt, &mut l);
        s.expect("list_new in a gc callback", st, &[PYMEM_OK, PYMEM_ERR_NO_MEMORY]);
        if st == PYMEM_OK {
            s.expect("decref in a gc callback", pymem_decref(rt, l), &[PYMEM_OK]);
        }
    }
}

unsafe extern "C" fn native_identity(
    rt: *mut Runtime,
    args: *const *mut Object,
    nargs: usize,
    result: *mut *mut Object,
    _ud: *mut c_void,
) -> Status {
    if nargs == 0 {
        return PYMEM_OK;
    }
    // SAFETY: `nargs` borrowed arguments; `result` writable.
    unsafe {
        let a = *args;
        let st = pymem_incref(rt, a);
        if st == PYMEM_OK {
            *result = a;
        }
        st
    }
}

// ---------------------------------------------------------------------

/// `round_size` of PyTorch's caching allocator for the default config.
fn cuda_rounded(size: u64) -> u64 {
    if size < 512 {
        512
    } else {
        size.div_ceil(512) * 512
    }
}

impl World {
    /// A fresh runtime for `seq` (its `max_bytes`), a second one whose
    /// pointers serve as foreign, two host types, a GPU cache on a
    /// simulated device.
    pub fn new(seq: &Sequence) -> R<World> {
        let mut cfg = default_config();
        cfg.max_bytes = seq.max_bytes;
        let mut rt = ptr::null_mut();
        // SAFETY: valid config and out.
        let st = unsafe { pymem_runtime_new(&cfg, &mut rt) };
        if st != PYMEM_OK {
            return Err(format!("pymem_runtime_new: {st:?}"));
        }
        let mut foreign = ptr::null_mut();
        // SAFETY: valid config and out.
        unsafe { pymem_runtime_new(&default_config(), &mut foreign) };
        let mut foreign_obj = ptr::null_mut();
        // SAFETY: live runtime, writable out.
        unsafe { pymem_int_new(foreign, 1 << 40, &mut foreign_obj) };
        // SAFETY: live runtime.
        let foreign_block = unsafe { pymem_malloc(foreign, 64) };
        let shared = Box::<Shared>::default();
        shared.rt.set(rt as usize);
        let mut ccfg = std::mem::MaybeUninit::<CudaConfig>::zeroed();
        // SAFETY: writable; init fills every field.
        let mut ccfg = unsafe {
            pymem_cuda_config_init(ccfg.as_mut_ptr());
            ccfg.assume_init()
        };
        ccfg.backend = PYMEM_CUDA_BACKEND_SIMULATED;
        ccfg.simulated_devices = 1;
        ccfg.simulated_capacity = seq.device_bytes;
        ccfg.caching = 1;
        let mut cuda = ptr::null_mut();
        // SAFETY: valid config and out.
        let st = unsafe { pymem_cuda_cache_new(&ccfg, &mut cuda) };
        if st != PYMEM_OK {
            return Err(format!("pymem_cuda_cache_new: {st:?}"));
        }
        let mut w = World {
            rt,
            foreign,
            foreign_obj,
            foreign_block,
            wild: Box::new([0; 8]),
            shared,
            node_type: ptr::null_mut(),
            plain_type: ptr::null_mut(),
            objs: Vec::new(),
            by_ptr: HashMap::new(),
            handles: Vec::new(),
            freed_objs: Vec::new(),
            raw: Vec::new(),
            freed_raw: Vec::new(),
            weaks: Vec::new(),
            gc_callbacks: Vec::new(),
            cuda,
            cuda_live: Vec::new(),
            cuda_recorded: HashSet::new(),
            cuda_pending: 0,
            cuda_freed: Vec::new(),
            streams: Vec::new(),
            limited: seq.max_bytes != 0,
            baseline: 0,
            counts: Counts::default(),
        };
        w.setup()?;
        Ok(w)
    }

    fn setup(&mut self) -> R {
        let ud = &*self.shared as *const Shared as *mut c_void;
        for (name, node) in [(c"Node", true), (c"Plain", false)] {
            let mut spec = std::mem::MaybeUninit::<TypeSpec>::zeroed();
            // SAFETY: writable; init fills every field.
            let mut spec = unsafe {
                pymem_type_spec_init(spec.as_mut_ptr());
                spec.assume_init()
            };
            spec.name = name.as_ptr();
            spec.userdata = ud;
            if node {
                spec.payload_size = std::mem::size_of::<Payload>();
                spec.traverse = Some(node_traverse);
                spec.clear = Some(node_clear);
                spec.finalize = Some(node_finalize);
                spec.dealloc = Some(node_dealloc);
            }
            let mut t = ptr::null_mut();
            // SAFETY: live runtime, valid spec, writable out.
            self.ok("type_new", unsafe { pymem_type_new(self.rt, &spec, &mut t) })?;
            if node {
                self.node_type = t;
            } else {
                self.plain_type = t;
            }
            // The type keeps its instances' attribute names: register them
            // all now so that they are part of the baseline.
            let mut o = ptr::null_mut();
            // SAFETY: live runtime and type.
            self.ok("instance_new", unsafe { pymem_instance_new(self.rt, t, &mut o) })?;
            for a in ATTRS {
                let name = CString::new(*a).unwrap();
                // SAFETY: live objects, C string.
                self.ok("setattr", unsafe { pymem_setattr(self.rt, o, name.as_ptr(), o) })?;
                // SAFETY: as above.
                self.ok("delattr", unsafe { pymem_delattr(self.rt, o, name.as_ptr()) })?;
            }
            // SAFETY: our reference.
            self.ok("decref", unsafe { pymem_decref(self.rt, o) })?;
        }
        // The first namespace registers the namespace type (for good).
        let mut ns = ptr::null_mut();
        // SAFETY: live runtime, C string, writable out.
        self.ok("ns_new", unsafe { pymem_ns_new(self.rt, c"setup".as_ptr(), 0, &mut ns) })?;
        // SAFETY: our reference.
        self.ok("decref", unsafe { pymem_decref(self.rt, ns) })?;
        self.settle()?;
        self.baseline = self.stats()?.bytes_in_use;
        Ok(())
    }

    /// The handles, as the model sees them (for `--replay --trace`).
    pub fn describe_handles(&self) -> String {
        let mut s = String::new();
        for (i, &h) in self.handles.iter().enumerate() {
            let o = &self.objs[h];
            s.push_str(&format!("  h{i}=#{h} {:?} {:#x}{}\n", o.val, o.ptr, if o.frozen { " frozen" } else { "" }));
        }
        s
    }

    /// The runtime the sequence runs on (for tests of the fuzzer).
    pub fn runtime(&self) -> *mut Runtime {
        self.rt
    }

    /// The object of handle `i` (modulo the handles; tests of the fuzzer).
    pub fn handle_ptr(&self, i: u32) -> *mut Object {
        self.handle(i).map_or(ptr::null_mut(), |id| self.hptr(id))
    }

    fn ok(&self, what: &str, st: Status) -> R {
        if st == PYMEM_OK {
            Ok(())
        } else {
            Err(format!("{what}: {st:?} ({})", self.last_error()))
        }
    }

    fn last_error(&self) -> String {
        // SAFETY: live runtime; a C string.
        unsafe { CStr::from_ptr(pymem_last_error(self.rt)) }.to_string_lossy().into_owned()
    }

    fn stats(&self) -> R<AllocStats> {
        let mut s = AllocStats::default();
        // SAFETY: live runtime, writable out.
        self.ok("alloc_get_stats", unsafe { pymem_alloc_get_stats(self.rt, &mut s) })?;
        Ok(s)
    }

    /// A full collection and empty free lists.
    fn settle(&mut self) -> R {
        let mut found = 0;
        // SAFETY: live runtime, writable out.
        self.ok("gc_collect", unsafe { pymem_gc_collect(self.rt, 2, &mut found) })?;
        // SAFETY: live runtime.
        self.ok("clear_free_lists", unsafe { pymem_clear_free_lists(self.rt) })
    }

    /// Records a step's status and checks it is one of `allowed` (plus
    /// `PYMEM_ERR_NO_MEMORY` under a `max_bytes` limit), a known status,
    /// and what `pymem_last_status` says.
    fn st(&mut self, what: &str, st: Status, allowed: &[Status]) -> R<Status> {
        self.counts.calls += 1;
        let name = status_name(st);
        if name == "PYMEM_UNKNOWN_STATUS" {
            return Err(format!("{what}: unknown status {}", st as i32));
        }
        *self.counts.statuses.entry(name).or_default() += 1;
        let oom = st == PYMEM_ERR_NO_MEMORY && self.limited;
        if !allowed.contains(&st) && !oom {
            return Err(format!("{what}: {name} not in {allowed:?} ({})", self.last_error()));
        }
        if st != PYMEM_OK {
            // SAFETY: live runtime.
            let last = unsafe { pymem_last_status(self.rt) };
            if last != st {
                return Err(format!("{what}: returned {name} but pymem_last_status says {last:?}"));
            }
        }
        let errors = std::mem::take(&mut *self.shared.errors.borrow_mut());
        if !errors.is_empty() {
            return Err(format!("{what}: {}", errors.join("; ")));
        }
        Ok(st)
    }

    fn cuda_st(&mut self, what: &str, st: Status, allowed: &[Status]) -> R<Status> {
        self.counts.calls += 1;
        *self.counts.statuses.entry(status_name(st)).or_default() += 1;
        if !allowed.contains(&st) {
            // SAFETY: live cache; a C string.
            let msg = unsafe { CStr::from_ptr(pymem_cuda_last_error(self.cuda)) }.to_string_lossy().into_owned();
            return Err(format!("{what}: {st:?} not in {allowed:?} ({msg})"));
        }
        if st != PYMEM_OK {
            // SAFETY: live cache.
            let last = unsafe { pymem_cuda_last_status(self.cuda) };
            if last != st {
                return Err(format!("{what}: returned {st:?} but pymem_cuda_last_status says {last:?}"));
            }
        }
        Ok(st)
    }

    // -----------------------------------------------------------------
    // the model's objects and handles

    /// Takes a new reference handed out by the C API into the model as a
    /// handle. A fresh object (`fresh`: a constructor that never shares)
    /// at an address the model still knows means the old object died
    /// unseen — unless the model can prove it alive, which is a bug.
    fn adopt(&mut self, p: *mut Object, val: Option<Val>, fresh: bool) -> R<usize> {
        let addr = p as usize;
        if let Some(&id) = self.by_ptr.get(&addr) {
            let same = match &val {
                None => true,
                Some(v) => !fresh && self.objs[id].val == *v && !matches!(v, Val::Float(f) if f.is_nan()),
            };
            if same {
                self.handles.push(id);
                return Ok(id);
            }
            if self.provably_alive(id) {
                return Err(format!(
                    "a new object was made at {addr:#x}, the address of a live {:?}",
                    self.objs[id].val
                ));
            }
            self.mark_dead(id);
        }
        let Some(val) = val else {
            return Err(format!("the C API handed out {addr:#x}, an object the model does not know"));
        };
        let id = self.objs.len();
        self.objs.push(MObj::new(addr, val));
        self.by_ptr.insert(addr, id);
        self.handles.push(id);
        Ok(id)
    }

    fn mark_dead(&mut self, id: usize) {
        let o = &mut self.objs[id];
        o.dead = true;
        o.items.clear();
        o.entries.clear();
        o.attrs.clear();
        o.hidden.clear();
        o.slots = [None; K];
        if self.by_ptr.get(&o.ptr) == Some(&id) {
            self.by_ptr.remove(&o.ptr);
        }
        if !o.immortal() && self.freed_objs.len() < 64 {
            self.freed_objs.push(o.ptr);
        }
    }

    /// Reachable from the handles through the model's references.
    fn reachable(&self, roots: impl Iterator<Item = usize>) -> Vec<bool> {
        let mut seen = vec![false; self.objs.len()];
        let mut stack: Vec<usize> = roots.collect();
        while let Some(id) = stack.pop() {
            if seen[id] || self.objs[id].dead {
                continue;
            }
            seen[id] = true;
            stack.extend(self.objs[id].refs());
        }
        seen
    }

    fn provably_alive(&self, id: usize) -> bool {
        self.reachable(self.handles.iter().copied())[id]
    }

    fn handle(&self, i: u32) -> Option<usize> {
        if self.handles.is_empty() {
            None
        } else {
            Some(self.handles[i as usize % self.handles.len()])
        }
    }

    fn hptr(&self, id: usize) -> *mut Object {
        self.objs[id].ptr as *mut Object
    }

    fn val(&self, id: usize) -> &Val {
        &self.objs[id].val
    }

    fn hashable(&self, id: usize) -> bool {
        match self.val(id) {
            Val::List | Val::Dict => false,
            Val::Tuple => self.objs[id].items.clone().into_iter().all(|i| self.hashable(i)),
            _ => true,
        }
    }

    /// Python's `==` for dict keys, as far as the model needs it.
    fn key_eq(&self, a: usize, b: usize) -> bool {
        if a == b {
            return true;
        }
        let num = |v: &Val| match v {
            Val::Int(i) => Some(*i as f64),
            Val::Bool(x) => Some(*x as i64 as f64),
            Val::Float(f) => Some(*f),
            _ => None,
        };
        match (self.val(a), self.val(b)) {
            (Val::Int(x), Val::Int(y)) => x == y,
            (Val::Str(x), Val::Str(y)) => x == y,
            (Val::Tuple, Val::Tuple) => {
                let (x, y) = (&self.objs[a].items, &self.objs[b].items);
                x.len() == y.len() && x.iter().zip(y).all(|(&p, &q)| self.key_eq(p, q))
            }
            (x, y) => match (num(x), num(y)) {
                (Some(p), Some(q)) => p == q,
                _ => false,
            },
        }
    }

    /// What a full collection leaves alive: reference counting first (an
    /// object no one references dies, releasing its references), then
    /// what is reachable from the handles or from frozen survivors.
    fn collect_model(&mut self) {
        // The collector freeing garbage releases what it referenced: a
        // frozen object kept only by garbage then dies by reference
        // counting. Repeat until nothing more dies.
        while self.collect_pass() {}
    }

    /// One pass of [`World::collect_model`]; whether anything died.
    fn collect_pass(&mut self) -> bool {
        let n = self.objs.len();
        let mut count = vec![0usize; n];
        for &h in &self.handles {
            count[h] += 1;
        }
        for o in self.objs.iter().filter(|o| !o.dead) {
            for r in o.refs() {
                count[r] += 1;
            }
        }
        let mut dead = vec![false; n];
        let mut queue: Vec<usize> =
            (0..n).filter(|&i| !self.objs[i].dead && count[i] == 0 && self.can_die(i)).collect();
        while let Some(i) = queue.pop() {
            if dead[i] {
                continue;
            }
            dead[i] = true;
            for r in self.objs[i].refs().collect::<Vec<_>>() {
                count[r] -= 1;
                if count[r] == 0 && !self.objs[r].dead && self.can_die(r) {
                    queue.push(r);
                }
            }
        }
        let frozen_roots: Vec<usize> = (0..n).filter(|&i| !dead[i] && self.objs[i].frozen).collect();
        let live = self.reachable(self.handles.iter().copied().chain(frozen_roots));
        let mut died = false;
        for i in 0..n {
            if !self.objs[i].dead && (dead[i] || !live[i]) && self.can_die(i) {
                self.mark_dead(i);
                died = true;
            }
        }
        died
    }

    /// Immortal objects never die; interned strs may have references the
    /// model does not see, so it never declares them dead.
    fn can_die(&self, id: usize) -> bool {
        !self.objs[id].immortal() && !self.objs[id].interned
    }

    /// After a full collection: every live object's count is exactly the
    /// model's (handles + references from live objects).
    fn check_counts(&mut self) -> R {
        self.collect_model();
        let n = self.objs.len();
        let mut expected = vec![0isize; n];
        for &h in &self.handles {
            expected[h] += 1;
        }
        for o in self.objs.iter().filter(|o| !o.dead) {
            for r in o.refs() {
                expected[r] += 1;
            }
        }
        for (id, o) in self.objs.iter().enumerate() {
            if o.dead || o.immortal() || o.interned {
                continue;
            }
            let mut got = 0isize;
            // SAFETY: live runtime; the object is validated by the call.
            let st = unsafe { pymem_refcount(self.rt, o.ptr as *mut Object, &mut got) };
            if st != PYMEM_OK {
                let holders: Vec<String> = self
                    .objs
                    .iter()
                    .filter(|h| !h.dead && h.refs().any(|r| r == id))
                    .map(|h| format!("{:?} {:#x}", h.val, h.ptr))
                    .collect();
                return Err(format!(
                    "refcount of a live {:?} at {:#x}: {st:?} ({}); the model's holders: {holders:?}, handles: {}",
                    o.val,
                    o.ptr,
                    self.last_error(),
                    self.handles.iter().filter(|&&h| h == id).count()
                ));
            }
            if got != expected[id] {
                return Err(format!(
                    "the {:?} at {:#x} has count {got}, the model says {} ({} handles)",
                    o.val,
                    o.ptr,
                    expected[id],
                    self.handles.iter().filter(|&&h| h == id).count()
                ));
            }
        }
        Ok(())
    }

    // -----------------------------------------------------------------
    // the steps

    pub fn step(&mut self, op: &Op) -> R {
        let rt = self.rt;
        let mut out: *mut Object = ptr::null_mut();
        // The first handle: for two calls in three of a kind that wants one
        // type, a handle of that type (when there is one), so that most
        // calls get past the type check; otherwise any handle.
        let wanted: Option<fn(&Val) -> bool> = match op.kind {
            Kind::ListAppend | Kind::ListInsert | Kind::ListSet | Kind::ListPop | Kind::ListGet => {
                Some(|v| *v == Val::List)
            }
            Kind::TupleGet => Some(|v| *v == Val::Tuple),
            Kind::DictSet | Kind::DictDel | Kind::DictGet => Some(|v| *v == Val::Dict),
            Kind::SetAttr | Kind::DelAttr | Kind::GetAttr => {
                Some(|v| matches!(v, Val::Module | Val::Function | Val::Plain | Val::Node))
            }
            Kind::SetChild => Some(|v| *v == Val::Node),
            Kind::Call => Some(|v| *v == Val::Function),
            Kind::NsSet
            | Kind::NsGet
            | Kind::NsDel
            | Kind::NsXdel
            | Kind::NsHide
            | Kind::NsWhy
            | Kind::NsReset
            | Kind::NsWho
            | Kind::NsWhos => Some(|v| *v == Val::Ns),
            _ => None,
        };
        let a = match wanted {
            Some(pred) if !op.a.is_multiple_of(3) => {
                let of_type: Vec<usize> = self.handles.iter().copied().filter(|&h| pred(&self.objs[h].val)).collect();
                if of_type.is_empty() {
                    self.handle(op.a)
                } else {
                    Some(of_type[(op.a / 3) as usize % of_type.len()])
                }
            }
            _ => self.handle(op.a),
        };
        let b = self.handle(op.b);
        let c = self.handle(op.c);
        let v = op.v;
        let idx = |len: usize| (v.unsigned_abs() as usize) % (len + 2);
        macro_rules! call {
            ($what:expr, $e:expr, $allowed:expr) => {{
                // SAFETY: the runtime is live; every pointer argument is
                // validated by the C ABI (the fuzzer passes bad ones on
                // purpose); out-pointers are writable locals.
                let st = unsafe { $e };
                self.st($what, st, $allowed)?
            }};
        }
        match op.kind {
            Kind::NewInt => {
                call!("int_new", pymem_int_new(rt, v, &mut out), &[PYMEM_OK]);
                if !out.is_null() {
                    let small = (-5..=256).contains(&v);
                    self.adopt(out, Some(Val::Int(v)), !small)?;
                }
            }
            Kind::NewFloat => {
                let f = [0.0, 1.0, -2.5, 1e300, f64::NAN, v as f64][op.c as usize % 6];
                call!("float_new", pymem_float_new(rt, f, &mut out), &[PYMEM_OK]);
                if !out.is_null() {
                    self.adopt(out, Some(Val::Float(f)), true)?;
                }
            }
            Kind::NewStr | Kind::Intern => {
                let s = STRS[op.c as usize % STRS.len()];
                let intern = op.kind == Kind::Intern;
                let st = if intern {
                    call!("str_intern", pymem_str_intern(rt, s.as_ptr().cast(), s.len(), &mut out), &[PYMEM_OK])
                } else {
                    call!("str_new", pymem_str_new(rt, s.as_ptr().cast(), s.len(), &mut out), &[PYMEM_OK])
                };
                if st == PYMEM_OK {
                    let short = s.is_empty() || (s.len() == 1 && s.as_bytes()[0] < 128);
                    let id = self.adopt(out, Some(Val::Str(s.as_bytes().to_vec())), !short && !intern)?;
                    if intern {
                        self.objs[id].interned = true;
                    }
                }
            }
            Kind::NewBool => {
                call!("bool", pymem_bool(rt, (v & 1) as c_int, &mut out), &[PYMEM_OK]);
                self.adopt(out, Some(Val::Bool(v & 1 == 1)), false)?;
            }
            Kind::NewNone => {
                call!("none", pymem_none(rt, &mut out), &[PYMEM_OK]);
                self.adopt(out, Some(Val::None), false)?;
            }
            Kind::NewTuple => {
                let items: Vec<usize> = [a, b, c].into_iter().flatten().take(v.unsigned_abs() as usize % 4).collect();
                let ptrs: Vec<*mut Object> = items.iter().map(|&i| self.hptr(i)).collect();
                let st = call!("tuple_new", pymem_tuple_new(rt, ptrs.len(), ptrs.as_ptr(), &mut out), &[PYMEM_OK]);
                if st == PYMEM_OK {
                    let id = self.adopt(out, Some(Val::Tuple), !items.is_empty())?;
                    if !items.is_empty() {
                        self.objs[id].items = items;
                    }
                }
            }
            Kind::NewList | Kind::NewDict => {
                let list = op.kind == Kind::NewList;
                let st = if list {
                    call!("list_new", pymem_list_new(rt, &mut out), &[PYMEM_OK])
                } else {
                    call!("dict_new", pymem_dict_new(rt, &mut out), &[PYMEM_OK])
                };
                if st == PYMEM_OK {
                    self.adopt(out, Some(if list { Val::List } else { Val::Dict }), true)?;
                }
            }
            Kind::NewModule | Kind::NewFunction => {
                let name = CString::new(STRS[op.c as usize % STRS.len()]).unwrap();
                let module = op.kind == Kind::NewModule;
                let st = if module {
                    call!("module_new", pymem_module_new(rt, name.as_ptr(), &mut out), &[PYMEM_OK])
                } else {
                    call!(
                        "function_new",
                        pymem_function_new(rt, name.as_ptr(), Some(native_identity), ptr::null_mut(), &mut out),
                        &[PYMEM_OK]
                    )
                };
                if st == PYMEM_OK {
                    self.adopt(out, Some(if module { Val::Module } else { Val::Function }), true)?;
                }
            }
            Kind::NewNode | Kind::NewPlain => {
                let node = op.kind == Kind::NewNode;
                let t = if node { self.node_type } else { self.plain_type };
                let st = call!("instance_new", pymem_instance_new(rt, t, &mut out), &[PYMEM_OK]);
                if st == PYMEM_OK {
                    self.adopt(out, Some(if node { Val::Node } else { Val::Plain }), true)?;
                }
            }
            Kind::NewNs => {
                let name = CString::new(STRS[op.c as usize % STRS.len()]).unwrap();
                let bad_flags = v % 5 == 4;
                let flags = if bad_flags { 6 } else { 0 };
                let allowed: &[Status] = if bad_flags { &[PYMEM_ERR_INVALID_ARGUMENT] } else { &[PYMEM_OK] };
                let st = call!("ns_new", pymem_ns_new(rt, name.as_ptr(), flags, &mut out), allowed);
                if st == PYMEM_OK {
                    self.adopt(out, Some(Val::Ns), true)?;
                }
            }
            Kind::Incref => {
                if let Some(x) = a {
                    call!("incref", pymem_incref(rt, self.hptr(x)), &[PYMEM_OK]);
                    self.handles.push(x);
                }
            }
            Kind::Decref => {
                if !self.handles.is_empty() {
                    let i = op.a as usize % self.handles.len();
                    let x = self.handles.swap_remove(i);
                    call!("decref", pymem_decref(rt, self.hptr(x)), &[PYMEM_OK]);
                }
            }
            Kind::ListAppend | Kind::ListInsert => {
                let (Some(l), Some(x)) = (a, b) else { return Ok(()) };
                let is_list = *self.val(l) == Val::List;
                let allowed: &[Status] = if is_list { &[PYMEM_OK] } else { &[PYMEM_ERR_TYPE] };
                let at = v as usize;
                let st = if op.kind == Kind::ListAppend {
                    call!("list_append", pymem_list_append(rt, self.hptr(l), self.hptr(x)), allowed)
                } else {
                    call!("list_insert", pymem_list_insert(rt, self.hptr(l), at, self.hptr(x)), allowed)
                };
                if st == PYMEM_OK {
                    let items = &mut self.objs[l].items;
                    let at = if op.kind == Kind::ListAppend { items.len() } else { at.min(items.len()) };
                    items.insert(at, x);
                }
            }
            Kind::ListSet | Kind::ListPop | Kind::ListGet | Kind::TupleGet => {
                let Some(l) = a else { return Ok(()) };
                let want = if op.kind == Kind::TupleGet { Val::Tuple } else { Val::List };
                let len = self.objs[l].items.len();
                let i = idx(len);
                let allowed: &[Status] = if *self.val(l) != want {
                    &[PYMEM_ERR_TYPE]
                } else if i >= len {
                    &[PYMEM_ERR_INDEX]
                } else {
                    &[PYMEM_OK]
                };
                let lp = self.hptr(l);
                match op.kind {
                    Kind::ListSet => {
                        let Some(x) = b else { return Ok(()) };
                        if call!("list_set", pymem_list_set(rt, lp, i, self.hptr(x)), allowed) == PYMEM_OK {
                            self.objs[l].items[i] = x;
                        }
                    }
                    Kind::ListPop => {
                        if call!("list_pop", pymem_list_pop(rt, lp, i, &mut out), allowed) == PYMEM_OK {
                            let x = self.objs[l].items.remove(i);
                            self.expect_ptr("list_pop", out, x)?;
                            self.handles.push(x);
                        }
                    }
                    _ => {
                        let st = if op.kind == Kind::ListGet {
                            call!("list_get", pymem_list_get(rt, lp, i, &mut out), allowed)
                        } else {
                            call!("tuple_get", pymem_tuple_get(rt, lp, i, &mut out), allowed)
                        };
                        if st == PYMEM_OK {
                            let x = self.objs[l].items[i];
                            self.expect_ptr("list_get/tuple_get", out, x)?;
                            self.handles.push(x);
                        }
                    }
                }
            }
            Kind::DictSet | Kind::DictDel | Kind::DictGet => {
                let (Some(d), Some(k)) = (a, b) else { return Ok(()) };
                let found = self.objs[d].entries.iter().position(|&(key, _)| self.key_eq(key, k));
                let allowed: &[Status] = if *self.val(d) != Val::Dict || !self.hashable(k) {
                    &[PYMEM_ERR_TYPE]
                } else if found.is_none() && op.kind != Kind::DictSet {
                    &[PYMEM_ERR_KEY]
                } else {
                    &[PYMEM_OK]
                };
                let (dp, kp) = (self.hptr(d), self.hptr(k));
                match op.kind {
                    Kind::DictSet => {
                        let Some(x) = c else { return Ok(()) };
                        if call!("dict_set", pymem_dict_set(rt, dp, kp, self.hptr(x)), allowed) == PYMEM_OK {
                            match found {
                                Some(i) => self.objs[d].entries[i].1 = x,
                                None => self.objs[d].entries.push((k, x)),
                            }
                        }
                    }
                    Kind::DictDel => {
                        if call!("dict_del", pymem_dict_del(rt, dp, kp), allowed) == PYMEM_OK {
                            self.objs[d].entries.remove(found.unwrap());
                        }
                    }
                    _ => {
                        if call!("dict_get", pymem_dict_get(rt, dp, kp, &mut out), allowed) == PYMEM_OK {
                            let x = self.objs[d].entries[found.unwrap()].1;
                            self.expect_ptr("dict_get", out, x)?;
                            self.handles.push(x);
                        }
                    }
                }
            }
            Kind::SetAttr | Kind::DelAttr | Kind::GetAttr => {
                let Some(o) = a else { return Ok(()) };
                let name = ATTRS[op.c as usize % ATTRS.len()];
                let cname = CString::new(name).unwrap();
                let has_attrs = matches!(self.val(o), Val::Module | Val::Function | Val::Plain | Val::Node);
                let present = self.objs[o].attrs.contains_key(name.as_bytes());
                let allowed: &[Status] = match self.val(o) {
                    Val::Ns => &[PYMEM_ERR_KEY],
                    _ if !has_attrs => &[PYMEM_ERR_TYPE],
                    _ if op.kind != Kind::SetAttr && !present => &[PYMEM_ERR_KEY],
                    _ => &[PYMEM_OK],
                };
                let op_ = self.hptr(o);
                match op.kind {
                    Kind::SetAttr => {
                        let Some(x) = b else { return Ok(()) };
                        if call!("setattr", pymem_setattr(rt, op_, cname.as_ptr(), self.hptr(x)), allowed) == PYMEM_OK {
                            self.objs[o].attrs.insert(name.as_bytes().to_vec(), x);
                        }
                    }
                    Kind::DelAttr => {
                        if call!("delattr", pymem_delattr(rt, op_, cname.as_ptr()), allowed) == PYMEM_OK {
                            self.objs[o].attrs.remove(name.as_bytes());
                        }
                    }
                    _ => {
                        if call!("getattr", pymem_getattr(rt, op_, cname.as_ptr(), &mut out), allowed) == PYMEM_OK {
                            let x = self.objs[o].attrs[name.as_bytes()];
                            self.expect_ptr("getattr", out, x)?;
                            self.handles.push(x);
                        }
                    }
                }
            }
            Kind::SetChild => {
                let (Some(n), Some(x)) = (a, b) else { return Ok(()) };
                if *self.val(n) != Val::Node {
                    return Ok(());
                }
                let p = payload_of(rt, self.hptr(n));
                if p.is_null() {
                    return Err("instance_payload of a live Node failed".into());
                }
                let slot = v.unsigned_abs() as usize % K;
                call!("incref", pymem_incref(rt, self.hptr(x)), &[PYMEM_OK]);
                // SAFETY: a live Node's payload.
                let old = unsafe { std::mem::replace(&mut (*p).slots[slot], self.hptr(x)) };
                self.objs[n].slots[slot] = Some(x);
                if !old.is_null() {
                    // The model's old child is the one to drop (the
                    // payload's reference).
                    call!("decref", pymem_decref(rt, old), &[PYMEM_OK]);
                }
            }
            Kind::Repr => {
                let Some(x) = a else { return Ok(()) };
                let mut s: *mut c_char = ptr::null_mut();
                let st = call!("repr", pymem_repr(rt, self.hptr(x), &mut s), &[PYMEM_OK, PYMEM_ERR_RECURSION]);
                if st == PYMEM_OK {
                    // SAFETY: a string from pymem, freed once.
                    unsafe { pymem_string_free(s) };
                }
            }
            Kind::Hash => {
                let Some(x) = a else { return Ok(()) };
                let allowed: &[Status] = if self.hashable(x) { &[PYMEM_OK] } else { &[PYMEM_ERR_TYPE] };
                let mut h = 0i64;
                call!("hash", pymem_hash(rt, self.hptr(x), &mut h), allowed);
            }
            Kind::Equal => {
                let (Some(x), Some(y)) = (a, b) else { return Ok(()) };
                let mut r: c_int = -1;
                call!("equal", pymem_equal(rt, self.hptr(x), self.hptr(y), &mut r), &[PYMEM_OK, PYMEM_ERR_RECURSION]);
            }
            Kind::Sizeof | Kind::DeepSizeof => {
                let Some(x) = a else { return Ok(()) };
                let mut n = 0usize;
                if op.kind == Kind::Sizeof {
                    call!("sizeof", pymem_sizeof(rt, self.hptr(x), &mut n), &[PYMEM_OK]);
                } else {
                    call!("deep_sizeof", pymem_deep_sizeof(rt, self.hptr(x), &mut n), &[PYMEM_OK]);
                }
            }
            Kind::Copy | Kind::DeepCopy => {
                let Some(x) = a else { return Ok(()) };
                let deep = op.kind == Kind::DeepCopy;
                let st = if deep {
                    call!(
                        "deepcopy",
                        pymem_deepcopy(rt, self.hptr(x), &mut out),
                        &[PYMEM_OK, PYMEM_ERR_RECURSION, PYMEM_ERR_TYPE]
                    )
                } else {
                    call!("copy", pymem_copy(rt, self.hptr(x), &mut out), &[PYMEM_OK, PYMEM_ERR_TYPE])
                };
                if st != PYMEM_OK {
                    return Ok(());
                }
                let known = self.by_ptr.get(&(out as usize)).copied();
                let kind = self.val(x).clone();
                if !deep && known.is_none() && matches!(kind, Val::List | Val::Dict) {
                    // A shallow copy of a list or dict: same items.
                    let id = self.adopt(out, Some(kind), true)?;
                    self.objs[id].items = self.objs[x].items.clone();
                    self.objs[id].entries = self.objs[x].entries.clone();
                } else if let Some(id) = known.filter(|&id| self.provably_alive(id)) {
                    // An immutable object copies as itself.
                    self.handles.push(id);
                } else {
                    // Anything else is dropped at once (a deep copy's
                    // cycles wait for a collection, as garbage).
                    call!("decref", pymem_decref(rt, out), &[PYMEM_OK]);
                }
            }
            Kind::Call => {
                let (Some(f), Some(x)) = (a, b) else { return Ok(()) };
                let allowed: &[Status] = if *self.val(f) == Val::Function { &[PYMEM_OK] } else { &[PYMEM_ERR_TYPE] };
                let args = [self.hptr(x)];
                if call!("call", pymem_call(rt, self.hptr(f), args.as_ptr(), 1, &mut out), allowed) == PYMEM_OK {
                    self.expect_ptr("call", out, x)?;
                    self.handles.push(x);
                }
            }
            Kind::TypeName => {
                let Some(x) = a else { return Ok(()) };
                let mut name: *const c_char = ptr::null();
                call!("type_name", pymem_type_name(rt, self.hptr(x), &mut name), &[PYMEM_OK]);
            }
            Kind::Value => {
                let Some(x) = a else { return Ok(()) };
                let p = self.hptr(x);
                match self.val(x).clone() {
                    Val::Int(want) => {
                        let mut got = 0i64;
                        call!("int_value", pymem_int_value(rt, p, &mut got), &[PYMEM_OK]);
                        if got != want {
                            return Err(format!("int_value gave {got}, the int was made from {want}"));
                        }
                    }
                    Val::Str(want) => {
                        let mut s: *const c_char = ptr::null();
                        let mut len = 0usize;
                        call!("str_value", pymem_str_value(rt, p, &mut s, &mut len), &[PYMEM_OK]);
                        // SAFETY: the str's bytes, valid while it lives.
                        let got = unsafe { std::slice::from_raw_parts(s.cast::<u8>(), len) };
                        if got != want.as_slice() {
                            return Err(format!("str_value gave {got:?}, the str was made from {want:?}"));
                        }
                    }
                    Val::Float(_) | Val::Bool(_) => {
                        let mut f = 0.0;
                        call!("float_value", pymem_float_value(rt, p, &mut f), &[PYMEM_OK, PYMEM_ERR_TYPE]);
                    }
                    _ => {
                        let mut got = 0i64;
                        call!("int_value", pymem_int_value(rt, p, &mut got), &[PYMEM_ERR_TYPE]);
                    }
                }
            }
            Kind::Collect => {
                // -1 means 2; 3 is invalid.
                let generation = (v.rem_euclid(5) - 1) as c_int;
                let allowed: &[Status] =
                    if (-1..=2).contains(&generation) { &[PYMEM_OK] } else { &[PYMEM_ERR_INVALID_ARGUMENT] };
                let mut found = 0i64;
                let st = call!("gc_collect", pymem_gc_collect(rt, generation, &mut found), allowed);
                if st == PYMEM_OK && (generation == 2 || generation == -1) {
                    self.collect_model();
                }
            }
            Kind::Freeze => {
                // Collected first, so that what is frozen is exactly what
                // the model knows alive (garbage not yet collected would
                // otherwise be frozen or not depending on automatic
                // collections).
                let mut found = 0i64;
                call!("gc_collect", pymem_gc_collect(rt, 2, &mut found), &[PYMEM_OK]);
                self.collect_model();
                call!("gc_freeze", pymem_gc_freeze(rt), &[PYMEM_OK]);
                for o in self.objs.iter_mut().filter(|o| !o.dead) {
                    o.frozen = true;
                }
            }
            Kind::Unfreeze => {
                call!("gc_unfreeze", pymem_gc_unfreeze(rt), &[PYMEM_OK]);
                for o in &mut self.objs {
                    o.frozen = false;
                }
            }
            Kind::GcEnable => {
                call!("gc_enable", pymem_gc_enable(rt), &[PYMEM_OK]);
            }
            Kind::GcDisable => {
                call!("gc_disable", pymem_gc_disable(rt), &[PYMEM_OK]);
            }
            Kind::SetThreshold => {
                let t0 = v % 50;
                let allowed: &[Status] = if t0 < 0 { &[PYMEM_ERR_INVALID_ARGUMENT] } else { &[PYMEM_OK] };
                call!("gc_set_threshold", pymem_gc_set_threshold(rt, t0, 2, 2), allowed);
            }
            Kind::GetObjects | Kind::Referrers | Kind::Referents => {
                let st = match op.kind {
                    Kind::GetObjects => {
                        let generation = (v.rem_euclid(5) - 1) as c_int;
                        let allowed: &[Status] =
                            if (-1..=2).contains(&generation) { &[PYMEM_OK] } else { &[PYMEM_ERR_INVALID_ARGUMENT] };
                        call!("gc_get_objects", pymem_gc_get_objects(rt, generation, &mut out), allowed)
                    }
                    Kind::Referrers => {
                        let Some(x) = a else { return Ok(()) };
                        call!("gc_get_referrers", pymem_gc_get_referrers(rt, self.hptr(x), &mut out), &[PYMEM_OK])
                    }
                    _ => {
                        let Some(x) = a else { return Ok(()) };
                        call!("gc_get_referents", pymem_gc_get_referents(rt, self.hptr(x), &mut out), &[PYMEM_OK])
                    }
                };
                if st == PYMEM_OK {
                    call!("decref", pymem_decref(rt, out), &[PYMEM_OK]);
                }
            }
            Kind::AddGcCallback => {
                let mut id = 0u64;
                let ud = &*self.shared as *const Shared as *mut c_void;
                if call!("gc_add_callback", pymem_gc_add_callback(rt, Some(gc_callback), ud, &mut id), &[PYMEM_OK])
                    == PYMEM_OK
                {
                    self.gc_callbacks.push(id);
                }
            }
            Kind::RemoveGcCallback => {
                if self.gc_callbacks.is_empty() || v % 3 == 0 {
                    call!(
                        "gc_remove_callback",
                        pymem_gc_remove_callback(rt, 999_999 + op.a as u64),
                        &[PYMEM_ERR_KEY, PYMEM_ERR_INVALID_ARGUMENT]
                    );
                } else {
                    let id = self.gc_callbacks.swap_remove(op.a as usize % self.gc_callbacks.len());
                    call!("gc_remove_callback", pymem_gc_remove_callback(rt, id), &[PYMEM_OK]);
                }
            }
            Kind::WeakNew => {
                let Some(x) = a else { return Ok(()) };
                let state = Box::new(WeakState {
                    shared: &*self.shared,
                    free_in_callback: v % 4 == 3,
                    freed: Cell::new(false),
                });
                let cb: WeakRefCallback = if v % 2 == 1 { Some(weak_callback) } else { None };
                let ud = &*state as *const WeakState as *mut c_void;
                let mut wr: *mut WeakRef = ptr::null_mut();
                let weakrefable = !matches!(
                    self.val(x),
                    Val::List
                        | Val::Dict
                        | Val::Int(_)
                        | Val::Str(_)
                        | Val::Tuple
                        | Val::Float(_)
                        | Val::Bool(_)
                        | Val::None
                );
                let allowed: &[Status] = if weakrefable { &[PYMEM_OK] } else { &[PYMEM_ERR_TYPE] };
                if call!("weakref_new", pymem_weakref_new(rt, self.hptr(x), cb, ud, &mut wr), allowed) == PYMEM_OK {
                    self.weaks.push(Weak { ptr: wr, target: x, state });
                }
            }
            Kind::WeakGet | Kind::WeakFree => {
                if self.weaks.is_empty() {
                    return Ok(());
                }
                let i = op.a as usize % self.weaks.len();
                let (wr, target, freed) = {
                    let w = &self.weaks[i];
                    (w.ptr, w.target, w.state.freed.get())
                };
                if freed && self.weaks.iter().any(|w| w.ptr == wr && !w.state.freed.get()) {
                    // The handle's address was given to a newer weak reference.
                    return Ok(());
                }
                let allowed: &[Status] = if freed { &[PYMEM_ERR_INVALID_POINTER] } else { &[PYMEM_OK] };
                if op.kind == Kind::WeakFree {
                    if call!("weakref_free", pymem_weakref_free(rt, wr), allowed) == PYMEM_OK {
                        self.weaks[i].state.freed.set(true);
                    }
                } else if call!("weakref_get", pymem_weakref_get(rt, wr, &mut out), allowed) == PYMEM_OK {
                    let alive = self.provably_alive(target);
                    if out as usize == self.objs[target].ptr && !self.objs[target].dead {
                        self.handles.push(target);
                    } else if alive {
                        return Err(format!(
                            "weakref_get gave {out:p}, its referent {:#x} is alive",
                            self.objs[target].ptr
                        ));
                    } else {
                        // None (the referent died).
                        self.adopt(out, Some(Val::None), false)?;
                        if *self.val(*self.handles.last().unwrap()) != Val::None {
                            return Err("weakref_get of a dead referent did not give None".into());
                        }
                    }
                }
            }
            Kind::IsTracked => {
                let Some(x) = a else { return Ok(()) };
                let mut r: c_int = -1;
                call!("gc_is_tracked", pymem_gc_is_tracked(rt, self.hptr(x), &mut r), &[PYMEM_OK]);
            }
            Kind::NsSet | Kind::NsGet | Kind::NsDel | Kind::NsXdel | Kind::NsHide | Kind::NsWhy => {
                let Some(ns) = a else { return Ok(()) };
                let name = NAMES[op.c as usize % NAMES.len()];
                let cname = CString::new(name).unwrap();
                // Any UTF-8 name, even empty (Python allows globals()[""]).
                let valid_name = std::str::from_utf8(name).is_ok();
                let is_ns = *self.val(ns) == Val::Ns;
                let bound = self.objs[ns].attrs.get(name).copied();
                let nsp = self.hptr(ns);
                let bad: Option<&[Status]> = if !is_ns {
                    Some(&[PYMEM_ERR_TYPE, PYMEM_ERR_INVALID_ARGUMENT])
                } else if !valid_name {
                    Some(&[PYMEM_ERR_INVALID_ARGUMENT, PYMEM_ERR_KEY])
                } else {
                    None
                };
                let need_bound: &[Status] = bad.unwrap_or(if bound.is_some() { &[PYMEM_OK] } else { &[PYMEM_ERR_KEY] });
                match op.kind {
                    Kind::NsSet => {
                        let Some(x) = b else { return Ok(()) };
                        let allowed = bad.unwrap_or(&[PYMEM_OK]);
                        if call!("ns_set", pymem_ns_set(rt, nsp, cname.as_ptr(), self.hptr(x)), allowed) == PYMEM_OK {
                            let o = &mut self.objs[ns];
                            o.attrs.insert(name.to_vec(), x);
                            if o.hidden.get(name).is_some_and(|&h| h != x) {
                                o.hidden.remove(name);
                            }
                        }
                    }
                    Kind::NsGet => {
                        if call!("ns_get", pymem_ns_get(rt, nsp, cname.as_ptr(), &mut out), need_bound) == PYMEM_OK {
                            let x = bound.unwrap();
                            self.expect_ptr("ns_get", out, x)?;
                            self.handles.push(x);
                        }
                    }
                    Kind::NsDel => {
                        if call!("ns_del", pymem_ns_del(rt, nsp, cname.as_ptr()), need_bound) == PYMEM_OK {
                            let o = &mut self.objs[ns];
                            o.attrs.remove(name);
                            o.hidden.remove(name);
                        }
                    }
                    Kind::NsHide => {
                        if call!("ns_hide", pymem_ns_hide(rt, nsp, cname.as_ptr()), need_bound) == PYMEM_OK {
                            self.objs[ns].hidden.insert(name.to_vec(), bound.unwrap());
                        }
                    }
                    Kind::NsXdel => {
                        if call!("ns_xdel", pymem_ns_xdel(rt, nsp, cname.as_ptr()), need_bound) == PYMEM_OK {
                            // Every name bound to that object, in every namespace.
                            let x = bound.unwrap();
                            for o in self.objs.iter_mut().filter(|o| o.val == Val::Ns && !o.dead) {
                                let names: Vec<Vec<u8>> =
                                    o.attrs.iter().filter(|(_, &val)| val == x).map(|(k, _)| k.clone()).collect();
                                for n in names {
                                    o.attrs.remove(&n);
                                    o.hidden.remove(&n);
                                }
                            }
                        }
                    }
                    _ => {
                        let mut s: *mut c_char = ptr::null_mut();
                        if call!("ns_why_alive", pymem_ns_why_alive(rt, nsp, cname.as_ptr(), &mut s), need_bound)
                            == PYMEM_OK
                        {
                            // SAFETY: a string from pymem, freed once.
                            unsafe { pymem_string_free(s) };
                        }
                    }
                }
            }
            Kind::NsReset => {
                let Some(ns) = a else { return Ok(()) };
                let pattern = REGEXES[op.c as usize % REGEXES.len()];
                let compiled = pattern.map(regex::Regex::new);
                let valid = !matches!(compiled, Some(Err(_)));
                let is_ns = *self.val(ns) == Val::Ns;
                let allowed: &[Status] = if !is_ns {
                    &[PYMEM_ERR_TYPE, PYMEM_ERR_INVALID_ARGUMENT]
                } else if !valid {
                    &[PYMEM_ERR_INVALID_ARGUMENT]
                } else {
                    &[PYMEM_OK]
                };
                let cpat = pattern.map(|p| CString::new(p).unwrap());
                let mut report = ResetReport::default();
                let st = call!(
                    "ns_reset",
                    pymem_ns_reset(rt, self.hptr(ns), cpat.as_ref().map_or(ptr::null(), |p| p.as_ptr()), &mut report),
                    allowed
                );
                if st == PYMEM_OK {
                    let re = compiled.and_then(Result::ok);
                    let o = &self.objs[ns];
                    let doomed: Vec<Vec<u8>> = o
                        .attrs
                        .iter()
                        .filter(|(name, &val)| {
                            let s = std::str::from_utf8(name).unwrap_or("");
                            !s.starts_with('_')
                                && o.hidden.get(*name) != Some(&val)
                                && !matches!(self.objs[val].val, Val::Module | Val::Function)
                                && re.as_ref().is_none_or(|re| re.is_match(s))
                        })
                        .map(|(k, _)| k.clone())
                        .collect();
                    if report.names_removed != doomed.len() as u64 {
                        return Err(format!("ns_reset removed {} names, the model {doomed:?}", report.names_removed));
                    }
                    let o = &mut self.objs[ns];
                    for n in doomed {
                        o.attrs.remove(&n);
                        o.hidden.remove(&n);
                    }
                    self.collect_model();
                }
            }
            Kind::NsWho | Kind::NsWhos => {
                let Some(ns) = a else { return Ok(()) };
                let allowed: &[Status] =
                    if *self.val(ns) == Val::Ns { &[PYMEM_OK] } else { &[PYMEM_ERR_TYPE, PYMEM_ERR_INVALID_ARGUMENT] };
                if op.kind == Kind::NsWho {
                    let filter = [None, Some(c"int"), Some(c"list dict"), Some(c"nope,Node")][op.c as usize % 4];
                    let f = filter.map_or(ptr::null(), |f| f.as_ptr());
                    if call!("ns_who", pymem_ns_who(rt, self.hptr(ns), f, &mut out), allowed) == PYMEM_OK {
                        call!("decref", pymem_decref(rt, out), &[PYMEM_OK]);
                    }
                } else {
                    let mut s: *mut c_char = ptr::null_mut();
                    if call!("ns_whos", pymem_ns_whos(rt, self.hptr(ns), &mut s), allowed) == PYMEM_OK {
                        // SAFETY: a string from pymem, freed once.
                        unsafe { pymem_string_free(s) };
                    }
                }
            }
            Kind::Malloc | Kind::Calloc => {
                let size = [0, 1, 16, 100, 512, 513, 4000, 200_000, (v.unsigned_abs() as usize) % (1 << 20)]
                    [op.c as usize % 9];
                // SAFETY: live runtime.
                let p = unsafe {
                    if op.kind == Kind::Malloc {
                        pymem_malloc(rt, size)
                    } else {
                        pymem_calloc(rt, size.clamp(1, 64), size / 64 + 1)
                    }
                };
                let bytes = if op.kind == Kind::Malloc { size } else { size.clamp(1, 64) * (size / 64 + 1) };
                let st = if p.is_null() { self.last_status() } else { PYMEM_OK };
                self.st("malloc/calloc", st, &[PYMEM_OK])?;
                if !p.is_null() {
                    if op.kind == Kind::Calloc {
                        // SAFETY: `bytes` zeroed bytes at `p`.
                        let z = unsafe { std::slice::from_raw_parts(p.cast::<u8>(), bytes) };
                        if z.iter().any(|&b| b != 0) {
                            return Err("calloc memory is not zeroed".into());
                        }
                    }
                    // SAFETY: a fresh block of at least `bytes` bytes.
                    unsafe { ptr::write_bytes(p.cast::<u8>(), 0xAB, bytes) };
                    self.freed_raw.retain(|&f| f != p as usize);
                    self.raw.push((p as usize, bytes));
                }
            }
            Kind::Realloc => {
                if self.raw.is_empty() {
                    return Ok(());
                }
                let i = op.a as usize % self.raw.len();
                let (old, old_n) = self.raw[i];
                let n = [0, 8, 64, 300, 600, 5000, 150_000][op.c as usize % 7];
                // SAFETY: live runtime; `old` is our live block.
                let p = unsafe { pymem_realloc(rt, old as *mut c_void, n) };
                let st = if p.is_null() { self.last_status() } else { PYMEM_OK };
                self.st("realloc", st, &[PYMEM_OK])?;
                if !p.is_null() {
                    // SAFETY: the first min(old_n, n) bytes were kept.
                    let kept = unsafe { std::slice::from_raw_parts(p.cast::<u8>(), old_n.min(n)) };
                    if kept.iter().any(|&b| b != 0xAB) {
                        return Err("realloc lost the block's contents".into());
                    }
                    // SAFETY: `n` bytes at `p`.
                    unsafe { ptr::write_bytes(p.cast::<u8>(), 0xAB, n) };
                    if p as usize != old {
                        self.freed_raw.push(old);
                    }
                    self.freed_raw.retain(|&f| f != p as usize);
                    self.raw[i] = (p as usize, n);
                }
            }
            Kind::Free => {
                if self.raw.is_empty() {
                    return Ok(());
                }
                let (p, _) = self.raw.swap_remove(op.a as usize % self.raw.len());
                call!("free", pymem_free(rt, p as *mut c_void), &[PYMEM_OK]);
                self.freed_raw.push(p);
            }
            Kind::FreeBad | Kind::ReallocBad => {
                let live: HashSet<usize> = self.raw.iter().map(|r| r.0).collect();
                let (p, allowed): (usize, &[Status]) = match v.rem_euclid(6) {
                    0 => match self.raw.first() {
                        Some(&(p, _)) => (p + 8, &[PYMEM_ERR_INVALID_POINTER]),
                        None => return Ok(()),
                    },
                    1 => match self.freed_raw.iter().rev().find(|f| !live.contains(f)) {
                        Some(&p) => (p, &[PYMEM_ERR_DOUBLE_FREE, PYMEM_ERR_INVALID_POINTER]),
                        None => return Ok(()),
                    },
                    2 => (self.wild.as_ptr() as usize, &[PYMEM_ERR_INVALID_POINTER]),
                    3 => (self.foreign_block as usize, &[PYMEM_ERR_INVALID_POINTER]),
                    4 => match a {
                        // An object is not raw memory.
                        Some(x) => (self.objs[x].ptr, &[PYMEM_ERR_INVALID_POINTER]),
                        None => return Ok(()),
                    },
                    _ => (0xdead_0000_0000 + (op.b as usize & 0xfff0), &[PYMEM_ERR_INVALID_POINTER]),
                };
                if op.kind == Kind::FreeBad {
                    call!("free (bad pointer)", pymem_free(rt, p as *mut c_void), allowed);
                } else {
                    // SAFETY: live runtime; `p` is validated.
                    let q = unsafe { pymem_realloc(rt, p as *mut c_void, 100) };
                    if !q.is_null() {
                        return Err(format!("realloc of a bad pointer {p:#x} succeeded"));
                    }
                    let st = self.last_status();
                    self.st("realloc (bad pointer)", st, allowed)?;
                }
            }
            Kind::AllocStats => {
                self.counts.calls += 1;
                let s = self.stats()?;
                if s.bytes_in_use > s.bytes_reserved + s.large_bytes {
                    return Err(format!("bytes in use {} over reserved {}", s.bytes_in_use, s.bytes_reserved));
                }
            }
            Kind::DebugStats => {
                let mut s: *mut c_char = ptr::null_mut();
                if call!("debug_malloc_stats", pymem_debug_malloc_stats(rt, &mut s), &[PYMEM_OK]) == PYMEM_OK {
                    // SAFETY: a string from pymem, freed once.
                    unsafe { pymem_string_free(s) };
                }
            }
            Kind::ReleaseArenas => {
                let mut n = 0usize;
                call!("release_free_arenas", pymem_release_free_arenas(rt, &mut n), &[PYMEM_OK]);
            }
            Kind::ClearFreeLists => {
                call!("clear_free_lists", pymem_clear_free_lists(rt), &[PYMEM_OK]);
            }
            Kind::BadObj => self.bad_object(op, a, b)?,
            Kind::ThreadBusy => self.thread_busy(op, a)?,
            Kind::ThreadAttach => self.thread_attach(v)?,
            Kind::CudaMalloc
            | Kind::CudaFree
            | Kind::CudaFreeBad
            | Kind::CudaRecord
            | Kind::CudaSync
            | Kind::CudaEmpty
            | Kind::CudaStats
            | Kind::CudaStreamNew
            | Kind::CudaStreamDel => self.cuda_step(op)?,
        }
        Ok(())
    }

    fn last_status(&self) -> Status {
        // SAFETY: live runtime.
        unsafe { pymem_last_status(self.rt) }
    }

    fn expect_ptr(&self, what: &str, got: *mut Object, id: usize) -> R {
        if got as usize != self.objs[id].ptr {
            return Err(format!(
                "{what} gave {got:p}, the model says {:#x} ({:?})",
                self.objs[id].ptr, self.objs[id].val
            ));
        }
        Ok(())
    }

    /// A bad object pointer in a call that takes objects: interior, wild,
    /// foreign, NULL — refused and nothing changes — or freed (read-only
    /// calls only: the address may hold a new object by now).
    fn bad_object(&mut self, op: &Op, a: Option<usize>, b: Option<usize>) -> R {
        let rt = self.rt;
        let which = op.v.rem_euclid(5);
        let (bad, expected): (*mut Object, Status) = match which {
            0 => match a {
                Some(x) => ((self.objs[x].ptr + 8) as *mut Object, PYMEM_ERR_INVALID_POINTER),
                None => return Ok(()),
            },
            1 => (
                [self.wild.as_ptr() as usize, 0x1000, 0xdead_beef_0000][op.b as usize % 3] as *mut Object,
                PYMEM_ERR_INVALID_POINTER,
            ),
            2 => (self.foreign_obj, PYMEM_ERR_INVALID_POINTER),
            3 => (ptr::null_mut(), PYMEM_ERR_NULL_ARGUMENT),
            _ => {
                let Some(&p) = self.freed_objs.get(op.b as usize % self.freed_objs.len().max(1)) else { return Ok(()) };
                let mut n = 0isize;
                // SAFETY: live runtime; the pointer is validated.
                let st = unsafe { pymem_refcount(rt, p as *mut Object, &mut n) };
                // The address may hold a new object by now (OK).
                self.st("refcount (freed object)", st, &[PYMEM_OK, PYMEM_ERR_INVALID_POINTER])?;
                let mut name: *const c_char = ptr::null();
                // SAFETY: as above.
                let st = unsafe { pymem_type_name(rt, p as *mut Object, &mut name) };
                self.st("type_name (freed object)", st, &[PYMEM_OK, PYMEM_ERR_INVALID_POINTER])?;
                return Ok(());
            }
        };
        let allowed = [expected];
        let good = a.map(|x| self.hptr(x));
        let other = b.map(|x| self.hptr(x)).unwrap_or(ptr::null_mut());
        let mut out: *mut Object = ptr::null_mut();
        let mut s: *mut c_char = ptr::null_mut();
        let mut n = 0isize;
        let mut u = 0usize;
        let before = self.stats()?.bytes_in_use;
        macro_rules! call {
            ($what:expr, $e:expr) => {{
                // SAFETY: live runtime; the bad pointer is validated by the
                // C ABI (that is what is tested); outs are writable locals.
                let st = unsafe { $e };
                self.st($what, st, &allowed)?;
            }};
        }
        match op.c % 14 {
            0 => call!("incref (bad)", pymem_incref(rt, bad)),
            1 => call!("decref (bad)", pymem_decref(rt, bad)),
            2 => call!("refcount (bad)", pymem_refcount(rt, bad, &mut n)),
            3 => call!("list_append (bad list)", pymem_list_append(rt, bad, other)),
            4 => {
                // A bad item into a good list (or a bad target).
                let Some(l) = a.filter(|&x| *self.val(x) == Val::List) else { return Ok(()) };
                call!("list_append (bad item)", pymem_list_append(rt, self.hptr(l), bad));
            }
            5 => {
                let Some(d) = a.filter(|&x| *self.val(x) == Val::Dict) else { return Ok(()) };
                call!("dict_set (bad key)", pymem_dict_set(rt, self.hptr(d), bad, self.hptr(d)));
            }
            6 => call!("repr (bad)", pymem_repr(rt, bad, &mut s)),
            7 => call!("copy (bad)", pymem_deepcopy(rt, bad, &mut out)),
            8 => call!("sizeof (bad)", pymem_deep_sizeof(rt, bad, &mut u)),
            9 => call!("gc_get_referrers (bad)", pymem_gc_get_referrers(rt, bad, &mut out)),
            10 => {
                let mut wr: *mut WeakRef = ptr::null_mut();
                call!("weakref_new (bad)", pymem_weakref_new(rt, bad, None, ptr::null_mut(), &mut wr));
            }
            11 => {
                let Some(ns) = a.filter(|&x| *self.val(x) == Val::Ns) else { return Ok(()) };
                call!("ns_set (bad value)", pymem_ns_set(rt, self.hptr(ns), c"a".as_ptr(), bad));
            }
            12 => call!("setattr (bad)", pymem_setattr(rt, bad, c"a".as_ptr(), good.unwrap_or(other))),
            _ => {
                // weakref_free(NULL) does nothing, as free(NULL).
                if bad.is_null() {
                    return Ok(());
                }
                call!("weakref_free (bad)", pymem_weakref_free(rt, bad.cast::<WeakRef>()));
            }
        }
        // A refused call allocates nothing (it may free: an automatic
        // collection runs at the end of any object call once one is due).
        let after = self.stats()?.bytes_in_use;
        if after > before {
            return Err(format!("a refused call grew the bytes in use: {before} -> {after}"));
        }
        Ok(())
    }

    /// Calls from a second thread while this one owns the runtime: every
    /// one is refused with `PYMEM_ERR_BUSY` and changes nothing.
    fn thread_busy(&mut self, op: &Op, a: Option<usize>) -> R {
        let rt = self.rt as usize;
        let obj = a.map(|x| self.objs[x].ptr).unwrap_or(0);
        let which = op.c % 6;
        let count_before = if obj != 0 {
            let mut n = 0isize;
            // SAFETY: live runtime and object.
            unsafe { pymem_refcount(self.rt, obj as *mut Object, &mut n) };
            n
        } else {
            0
        };
        let cuda = self.cuda as usize;
        let (st, cuda_st) = std::thread::scope(|s| {
            s.spawn(move || {
                let rt = rt as *mut Runtime;
                let mut out = ptr::null_mut();
                // The GPU cache is shared by threads: from this one too, a
                // block allocated and freed (any status but OK is a failure).
                let c = cuda as *const CudaCache;
                let mut p = 0u64;
                // SAFETY: a live cache, callable from any thread.
                let cuda_st = unsafe {
                    match pymem_cuda_malloc(c, 0, 4096, 0, &mut p) {
                        PYMEM_OK => pymem_cuda_free(c, p),
                        PYMEM_ERR_OUT_OF_DEVICE_MEMORY => PYMEM_OK,
                        other => other,
                    }
                };
                // SAFETY: a live runtime owned by another thread: refused.
                let st = unsafe {
                    match which {
                        0 => pymem_int_new(rt, 1 << 40, &mut out),
                        1 => {
                            let p = pymem_malloc(rt, 32);
                            if p.is_null() {
                                pymem_last_status(ptr::null())
                            } else {
                                PYMEM_OK
                            }
                        }
                        2 if obj != 0 => pymem_decref(rt, obj as *mut Object),
                        3 if obj != 0 => pymem_incref(rt, obj as *mut Object),
                        4 => pymem_runtime_free(rt),
                        _ => {
                            let mut found = 0;
                            pymem_gc_collect(rt, 2, &mut found)
                        }
                    }
                };
                (st, cuda_st)
            })
            .join()
            .unwrap_or((PYMEM_ERR_PANIC, PYMEM_ERR_PANIC))
        });
        self.counts.calls += 2;
        *self.counts.statuses.entry(status_name(st)).or_default() += 1;
        *self.counts.statuses.entry(status_name(cuda_st)).or_default() += 1;
        if cuda_st != PYMEM_OK {
            return Err(format!("a GPU cache malloc/free from another thread gave {cuda_st:?}"));
        }
        if st != PYMEM_ERR_BUSY {
            return Err(format!("a call from another thread gave {st:?}, not PYMEM_ERR_BUSY"));
        }
        if obj != 0 {
            let mut n = 0isize;
            // SAFETY: live runtime and object.
            unsafe { pymem_refcount(self.rt, obj as *mut Object, &mut n) };
            if n != count_before {
                return Err("a refused call from another thread changed a count".into());
            }
        }
        Ok(())
    }

    /// Handing the runtime to another thread: detach here, attach there,
    /// make and drop objects there, detach, attach here again.
    fn thread_attach(&mut self, v: i64) -> R {
        let rt = self.rt as usize;
        // SAFETY: live runtime owned by this thread.
        let st = unsafe { pymem_runtime_detach(self.rt) };
        self.st("runtime_detach", st, &[PYMEM_OK])?;
        let result = std::thread::scope(|s| {
            s.spawn(move || -> Result<(), String> {
                let rt = rt as *mut Runtime;
                // SAFETY: a live, detached runtime: attach, use, detach.
                unsafe {
                    let st = pymem_runtime_attach(rt);
                    if st != PYMEM_OK {
                        return Err(format!("runtime_attach from another thread: {st:?}"));
                    }
                    let mut l = ptr::null_mut();
                    if pymem_list_new(rt, &mut l) == PYMEM_OK {
                        let mut i = ptr::null_mut();
                        if pymem_int_new(rt, v, &mut i) == PYMEM_OK {
                            pymem_list_append(rt, l, i);
                            pymem_decref(rt, i);
                        }
                        pymem_decref(rt, l);
                    }
                    let st = pymem_runtime_detach(rt);
                    if st != PYMEM_OK {
                        return Err(format!("runtime_detach from another thread: {st:?}"));
                    }
                }
                Ok(())
            })
            .join()
            .unwrap_or_else(|_| Err("the other thread panicked".into()))
        });
        // SAFETY: live, detached runtime.
        let st = unsafe { pymem_runtime_attach(self.rt) };
        self.st("runtime_attach", st, &[PYMEM_OK])?;
        result
    }

    fn cuda_step(&mut self, op: &Op) -> R {
        let c = self.cuda;
        let v = op.v;
        macro_rules! call {
            ($what:expr, $e:expr, $allowed:expr) => {{
                // SAFETY: a live cache; device pointers are validated by it;
                // outs are writable locals.
                let st = unsafe { $e };
                self.cuda_st($what, st, $allowed)?
            }};
        }
        let stream = |w: &World, i: u32| {
            if w.streams.is_empty() || i.is_multiple_of(2) {
                0
            } else {
                w.streams[i as usize % w.streams.len()]
            }
        };
        match op.kind {
            Kind::CudaMalloc => {
                let size = [0u64, 1, 512, 4000, 1 << 20, 3 << 20, 30 << 20, 1 << 40, v.unsigned_abs() % (8 << 20)]
                    [op.c as usize % 9];
                let mut p = 0u64;
                let st = call!(
                    "cuda_malloc",
                    pymem_cuda_malloc(c, 0, size as usize, stream(self, op.b), &mut p),
                    &[PYMEM_OK, PYMEM_ERR_OUT_OF_DEVICE_MEMORY]
                );
                if st == PYMEM_OK && size > 0 {
                    self.cuda_freed.retain(|&f| f != p);
                    self.cuda_live.push((p, size));
                }
            }
            Kind::CudaFree => {
                if self.cuda_live.is_empty() {
                    return Ok(());
                }
                let (p, n) = self.cuda_live.swap_remove(op.a as usize % self.cuda_live.len());
                call!("cuda_free", pymem_cuda_free(c, p), &[PYMEM_OK]);
                if self.cuda_recorded.remove(&p) {
                    self.cuda_pending += n;
                } else {
                    self.cuda_freed.push(p);
                }
            }
            Kind::CudaFreeBad => {
                let live: HashSet<u64> = self.cuda_live.iter().map(|l| l.0).collect();
                let p = match v.rem_euclid(3) {
                    0 => match self.cuda_live.first() {
                        // Blocks are multiples of 512 bytes: this is inside one.
                        Some(&(p, _)) => p + 256,
                        None => return Ok(()),
                    },
                    1 => match self.cuda_freed.iter().find(|f| !live.contains(f)) {
                        Some(&p) => p,
                        None => return Ok(()),
                    },
                    _ => 0xdead_0000,
                };
                call!("cuda_free (bad)", pymem_cuda_free(c, p), &[PYMEM_ERR_INVALID_POINTER, PYMEM_ERR_DOUBLE_FREE]);
            }
            Kind::CudaRecord => {
                let Some(&(p, _)) = self.cuda_live.get(op.a as usize % self.cuda_live.len().max(1)) else {
                    return Ok(());
                };
                let s = stream(self, op.b | 1);
                if call!("cuda_record_stream", pymem_cuda_record_stream(c, p, s), &[PYMEM_OK]) == PYMEM_OK {
                    self.cuda_recorded.insert(p);
                }
            }
            Kind::CudaSync => {
                let device = if v % 7 == 6 { 3 } else { 0 };
                let allowed: &[Status] = if device == 0 { &[PYMEM_OK] } else { &[PYMEM_ERR_INDEX] };
                if call!("cuda_synchronize", pymem_cuda_synchronize(c, device), allowed) == PYMEM_OK {
                    // Every event completed: the pending frees are done.
                    self.cuda_pending = 0;
                }
            }
            Kind::CudaEmpty => {
                call!("cuda_empty_cache", pymem_cuda_empty_cache(c), &[PYMEM_OK]);
                // It waits for the pending frees first.
                self.cuda_pending = 0;
            }
            Kind::CudaStats => {
                let mut s: *mut c_char = ptr::null_mut();
                let st = match op.c % 3 {
                    0 => call!("cuda_memory_stats", pymem_cuda_memory_stats(c, 0, &mut s), &[PYMEM_OK]),
                    1 => call!("cuda_memory_summary", pymem_cuda_memory_summary(c, 0, 1, &mut s), &[PYMEM_OK]),
                    _ => call!("cuda_memory_snapshot", pymem_cuda_memory_snapshot(c, &mut s), &[PYMEM_OK]),
                };
                if st == PYMEM_OK {
                    // SAFETY: a string from pymem, freed once.
                    unsafe { pymem_string_free(s) };
                }
            }
            Kind::CudaStreamNew => {
                let mut s = 0usize;
                if call!("cuda_stream_create", pymem_cuda_stream_create(c, 0, &mut s), &[PYMEM_OK]) == PYMEM_OK {
                    self.streams.push(s);
                }
            }
            _ => {
                if self.streams.is_empty() {
                    return Ok(());
                }
                let s = self.streams.swap_remove(op.a as usize % self.streams.len());
                // A stream still used by a live block's pending free may be
                // destroyed (PyTorch's rule): the blocks wait on events.
                call!("cuda_stream_destroy", pymem_cuda_stream_destroy(c, 0, s), &[PYMEM_OK]);
            }
        }
        // The bytes the live blocks asked for are exactly the model's; the
        // bytes allocated are at least their rounded sizes (a block keeps a
        // remainder too small to split, as PyTorch's should_split says).
        let requested = self.cuda_stat("requested_bytes.all.current")?;
        let want: u64 = self.cuda_live.iter().map(|&(_, n)| n).sum();
        if requested < want || requested > want + self.cuda_pending {
            return Err(format!(
                "cuda requested_bytes.all.current {requested}, the model's live blocks {want} (+ up to {} pending)",
                self.cuda_pending
            ));
        }
        let mut allocated = 0u64;
        // SAFETY: live cache, writable out.
        unsafe { pymem_cuda_memory_allocated(c, 0, &mut allocated) };
        let rounded: u64 = self.cuda_live.iter().map(|&(_, n)| cuda_rounded(n)).sum();
        if allocated < rounded {
            return Err(format!("cuda memory_allocated {allocated} < the live blocks' rounded sizes {rounded}"));
        }
        Ok(())
    }

    /// One statistic of `pymem_cuda_memory_stats` (device 0).
    fn cuda_stat(&self, key: &str) -> R<u64> {
        let mut s: *mut c_char = ptr::null_mut();
        // SAFETY: live cache, writable out.
        let st = unsafe { pymem_cuda_memory_stats(self.cuda, 0, &mut s) };
        if st != PYMEM_OK {
            return Err(format!("cuda_memory_stats: {st:?}"));
        }
        // SAFETY: a C string from pymem, freed once below.
        let json = unsafe { CStr::from_ptr(s) }.to_string_lossy().into_owned();
        // SAFETY: as above.
        unsafe { pymem_string_free(s) };
        let pat = format!("\"{key}\":");
        let at = json.find(&pat).ok_or_else(|| format!("no {key} in memory_stats"))? + pat.len();
        let digits: String = json[at..].trim_start().chars().take_while(char::is_ascii_digit).collect();
        digits.parse().map_err(|_| format!("{key} is not a number in memory_stats"))
    }

    /// The end of a sequence: invariants, exact counts, then everything
    /// dropped and the bytes in use back to the baseline.
    pub fn finish(mut self) -> R<Counts> {
        let rt = self.rt;
        // SAFETY: live runtime.
        self.ok("check_invariants", unsafe { check_invariants(rt) })?;
        let mut found = 0i64;
        // SAFETY: live runtime.
        self.ok("gc_collect", unsafe { pymem_gc_collect(rt, 2, &mut found) })?;
        self.check_counts()?;
        // Weak references to what the model knows alive still give it.
        for i in 0..self.weaks.len() {
            let (wr, target, freed) = (self.weaks[i].ptr, self.weaks[i].target, self.weaks[i].state.freed.get());
            if freed || self.objs[target].dead {
                continue;
            }
            let mut out = ptr::null_mut();
            // SAFETY: live runtime and weak reference.
            self.ok("weakref_get", unsafe { pymem_weakref_get(rt, wr, &mut out) })?;
            if out as usize != self.objs[target].ptr {
                return Err(format!("weakref_get gave {out:p}, its live referent is {:#x}", self.objs[target].ptr));
            }
            // SAFETY: a new reference.
            self.ok("decref", unsafe { pymem_decref(rt, out) })?;
        }
        // Drop everything.
        // SAFETY: live runtime; each handle, block, weak reference and
        // callback is ours and released once.
        unsafe {
            self.ok("gc_unfreeze", pymem_gc_unfreeze(rt))?;
            for id in std::mem::take(&mut self.handles) {
                self.ok("decref", pymem_decref(rt, self.objs[id].ptr as *mut Object))?;
            }
            for (p, _) in std::mem::take(&mut self.raw) {
                self.ok("free", pymem_free(rt, p as *mut c_void))?;
            }
            for w in &self.weaks {
                if !w.state.freed.get() {
                    self.ok("weakref_free", pymem_weakref_free(rt, w.ptr))?;
                    w.state.freed.set(true);
                }
            }
            for id in std::mem::take(&mut self.gc_callbacks) {
                self.ok("gc_remove_callback", pymem_gc_remove_callback(rt, id))?;
            }
        }
        self.settle()?;
        // SAFETY: live runtime.
        self.ok("check_invariants", unsafe { check_invariants(rt) })?;
        let end = self.stats()?.bytes_in_use;
        if end != self.baseline {
            return Err(format!(
                "everything dropped and collected: {end} bytes in use, {} at the start",
                self.baseline
            ));
        }
        // The GPU cache: every block back, nothing allocated (after the
        // pending frees completed).
        for (p, _) in std::mem::take(&mut self.cuda_live) {
            // SAFETY: live cache; our block.
            let st = unsafe { pymem_cuda_free(self.cuda, p) };
            if st != PYMEM_OK {
                return Err(format!("cuda_free of a live block: {st:?}"));
            }
        }
        // SAFETY: live cache.
        unsafe {
            pymem_cuda_synchronize(self.cuda, 0);
            cuda_check_invariants(self.cuda);
        }
        let mut allocated = 0;
        // SAFETY: live cache, writable out.
        unsafe { pymem_cuda_memory_allocated(self.cuda, 0, &mut allocated) };
        if allocated != 0 {
            return Err(format!("cuda: {allocated} bytes allocated after every block was freed"));
        }
        let s = &self.shared;
        self.counts.finalized = s.finalized.get();
        self.counts.deallocs = s.deallocs.get();
        self.counts.weak_callbacks = s.weak_callbacks.get();
        self.counts.gc_callbacks = s.gc_callbacks.get();
        Ok(std::mem::take(&mut self.counts))
    }
}

impl Drop for World {
    fn drop(&mut self) {
        // SAFETY: the runtimes and the cache are ours, freed once. A
        // runtime poisoned by a failed check is freed all the same.
        unsafe {
            pymem_cuda_cache_free(self.cuda);
            pymem_runtime_free(self.rt);
            pymem_runtime_free(self.foreign);
        }
    }
}
