//! Out of memory at every allocation site (issue 11, point 3; in this crate
//! because it turns on the allocator's failure injection): for every C
//! entry point that allocates, the call is made with the runtime's n-th
//! allocation failing (`pymem::testing::fail_allocations_after`), for
//! n = 0, 1, 2, ... until it succeeds. Each failed attempt must return
//! `PYMEM_ERR_NO_MEMORY` and change nothing a host can see: reference
//! counts and contents of every object the test holds, the gc counts, the
//! allocator's bytes and blocks in use (so nothing leaked), and the heap's
//! invariants must hold. Each test asserts that its call failed at least
//! once, so a call that stopped allocating (or a broken injection) fails
//! the test instead of passing it vacuously. At the end every object is
//! dropped and the bytes in use are back to where the runtime started.

use std::ffi::{c_char, c_void, CStr};
use std::ptr;

use pymem::alloc::{
    pymem_alloc_get_stats, pymem_calloc, pymem_debug_malloc_stats, pymem_free, pymem_malloc, pymem_realloc,
    pymem_string_free,
};
use pymem::gc::{
    pymem_gc_collect, pymem_gc_disable, pymem_gc_get_count, pymem_gc_get_objects, pymem_gc_get_referents,
    pymem_gc_get_referrers,
};
use pymem::ns::{
    pymem_ns_del, pymem_ns_get, pymem_ns_hide, pymem_ns_new, pymem_ns_reset, pymem_ns_set, pymem_ns_who, pymem_ns_whos,
    pymem_ns_why_alive, pymem_ns_xdel, ResetReport,
};
use pymem::object::{
    pymem_call, pymem_clear_free_lists, pymem_copy, pymem_decref, pymem_deepcopy, pymem_delattr, pymem_dict_len,
    pymem_dict_new, pymem_dict_next, pymem_dict_set, pymem_float_new, pymem_function_new, pymem_getattr,
    pymem_instance_new, pymem_int_new, pymem_list_append, pymem_list_get, pymem_list_insert, pymem_list_len,
    pymem_list_new, pymem_list_set, pymem_module_new, pymem_refcount, pymem_repr, pymem_setattr, pymem_str_intern,
    pymem_str_new, pymem_tuple_get, pymem_tuple_len, pymem_tuple_new, pymem_type_name, pymem_type_new,
    pymem_type_spec_init, Object, Type, TypeSpec,
};
use pymem::runtime::{pymem_config_init, pymem_last_error, pymem_last_status, pymem_runtime_free, pymem_runtime_new};
use pymem::testing::{check_invariants, fail_allocations_after};
use pymem::weakref::{pymem_weakref_free, pymem_weakref_new, WeakRef};
use pymem::{AllocStats, Config, Runtime, Status};

/// More attempts than any call needs: a call still failing after this many
/// allocations is a bug (it keeps allocating after a failure).
const MAX_ATTEMPTS: u64 = 5_000;

struct Rt {
    rt: *mut Runtime,
    /// Objects whose count and contents every attempt compares.
    watched: Vec<*mut Object>,
    /// (object, attribute) pairs compared too.
    attrs: Vec<(*mut Object, &'static CStr)>,
    start_bytes: u64,
    /// Bytes that stay in use until the runtime is freed by design: the
    /// interned `__slots__` names of the host types made (types live as
    /// long as their runtime).
    permanent: u64,
}

fn ok(st: Status, rt: *mut Runtime) {
    if st != Status::PYMEM_OK {
        // SAFETY: a live runtime; the message is a C string.
        let msg = unsafe { CStr::from_ptr(pymem_last_error(rt)) };
        panic!("{st:?}: {msg:?}");
    }
}

impl Rt {
    fn new() -> Rt {
        let cfg = default_config();
        let mut rt = ptr::null_mut();
        // SAFETY: valid config and out-pointer.
        assert_eq!(unsafe { pymem_runtime_new(&cfg, &mut rt) }, Status::PYMEM_OK);
        // Automatic collections would free things between snapshots.
        // SAFETY: live runtime.
        ok(unsafe { pymem_gc_disable(rt) }, rt);
        let mut r = Rt { rt, watched: Vec::new(), attrs: Vec::new(), start_bytes: 0, permanent: 0 };
        // Make the runtime ready (singletons, caches) before the baseline.
        let x = r.int(1 << 40);
        r.drop_ref(x);
        // The int waits on its free list: the baseline is without it.
        // SAFETY: live runtime.
        ok(unsafe { pymem_clear_free_lists(rt) }, rt);
        r.start_bytes = r.stats().bytes_in_use;
        r
    }

    fn stats(&self) -> AllocStats {
        let mut s = AllocStats::default();
        // SAFETY: live runtime, writable out.
        ok(unsafe { pymem_alloc_get_stats(self.rt, &mut s) }, self.rt);
        s
    }

    fn obj(&self, f: impl FnOnce(*mut *mut Object) -> Status) -> *mut Object {
        let mut o = ptr::null_mut();
        ok(f(&mut o), self.rt);
        assert!(!o.is_null());
        o
    }

    fn int(&self, v: i64) -> *mut Object {
        // SAFETY: live runtime, writable out.
        self.obj(|o| unsafe { pymem_int_new(self.rt, v, o) })
    }

    fn str(&self, s: &str) -> *mut Object {
        // SAFETY: live runtime, `s` is valid for its length.
        self.obj(|o| unsafe { pymem_str_new(self.rt, s.as_ptr().cast(), s.len(), o) })
    }

    fn list(&self, items: &[*mut Object]) -> *mut Object {
        // SAFETY: live runtime, writable out.
        let l = self.obj(|o| unsafe { pymem_list_new(self.rt, o) });
        for &i in items {
            // SAFETY: live objects.
            ok(unsafe { pymem_list_append(self.rt, l, i) }, self.rt);
        }
        l
    }

    fn dict(&self, items: &[(*mut Object, *mut Object)]) -> *mut Object {
        // SAFETY: live runtime, writable out.
        let d = self.obj(|o| unsafe { pymem_dict_new(self.rt, o) });
        for &(k, v) in items {
            // SAFETY: live objects.
            ok(unsafe { pymem_dict_set(self.rt, d, k, v) }, self.rt);
        }
        d
    }

    /// The bytes a str object of `text` takes.
    fn str_bytes(&self, text: &str) -> u64 {
        let before = self.stats().bytes_in_use;
        let s = self.str(text);
        let size = self.stats().bytes_in_use - before;
        self.drop_ref(s);
        size
    }

    fn drop_ref(&self, o: *mut Object) {
        // SAFETY: a reference the test owns.
        ok(unsafe { pymem_decref(self.rt, o) }, self.rt);
    }

    fn watch(&mut self, o: *mut Object) -> *mut Object {
        self.watched.push(o);
        o
    }

    /// What a host can see of the watched objects and the runtime. The
    /// free lists are emptied first: a failure path that drops a fresh
    /// object onto its type's free list (CPython's `PyModule_New` does the
    /// same with its dict) leaves a cache entry, not a leak, whereas a block
    /// taken and lost still shows in the bytes in use.
    fn snapshot(&self) -> Vec<String> {
        let rt = self.rt;
        // SAFETY: live runtime.
        ok(unsafe { pymem_clear_free_lists(rt) }, rt);
        let s = self.stats();
        let mut counts = [0i64; 3];
        // SAFETY: live runtime, 3 writable values.
        ok(unsafe { pymem_gc_get_count(rt, counts.as_mut_ptr()) }, rt);
        let mut out = vec![
            format!("bytes_in_use {} blocks_in_use {} large {}", s.bytes_in_use, s.blocks_in_use, s.large_allocations),
            format!("gc counts {counts:?}"),
        ];
        for &o in &self.watched {
            out.push(describe(rt, o));
        }
        for &(o, name) in &self.attrs {
            let mut v = ptr::null_mut();
            // SAFETY: live object, C string name, writable out.
            let st = unsafe { pymem_getattr(rt, o, name.as_ptr(), &mut v) };
            if st == Status::PYMEM_OK {
                out.push(format!("{name:?} = {v:p}"));
                self.drop_ref(v);
            } else {
                out.push(format!("{name:?} {st:?}"));
            }
        }
        out
    }

    /// Makes `call` with the n-th allocation failing for n = 0, 1, ... until
    /// it returns OK; returns how many attempts failed (asserted >= 1).
    fn every_failure(&self, what: &str, mut call: impl FnMut() -> Status) -> u64 {
        let before = self.snapshot();
        for n in 0..MAX_ATTEMPTS {
            // SAFETY: live runtime.
            ok(unsafe { fail_allocations_after(self.rt, Some(n)) }, self.rt);
            let st = call();
            // SAFETY: live runtime.
            ok(unsafe { fail_allocations_after(self.rt, None) }, self.rt);
            // SAFETY: live runtime.
            ok(unsafe { check_invariants(self.rt) }, self.rt);
            if st == Status::PYMEM_OK {
                assert!(n > 0, "{what}: succeeded with every allocation failing: it does not allocate");
                eprintln!("{what}: failed cleanly at each of its first {n} allocations");
                return n;
            }
            if st != Status::PYMEM_ERR_NO_MEMORY {
                // SAFETY: live runtime.
                let msg = unsafe { CStr::from_ptr(pymem_last_error(self.rt)) };
                panic!("{what}: allocation {n} failing gave {st:?} ({msg:?}), not PYMEM_ERR_NO_MEMORY");
            }
            let after = self.snapshot();
            assert_eq!(after, before, "{what}: the call changed state when allocation {n} failed");
        }
        panic!("{what}: still failing after {MAX_ATTEMPTS} allocations");
    }

    /// Drops the watched objects and checks nothing is left.
    fn finish(mut self) {
        for o in std::mem::take(&mut self.watched) {
            self.drop_ref(o);
        }
        self.attrs.clear();
        let mut found = 0;
        // SAFETY: live runtime.
        ok(unsafe { pymem_gc_collect(self.rt, 2, &mut found) }, self.rt);
        // SAFETY: live runtime.
        ok(unsafe { pymem_clear_free_lists(self.rt) }, self.rt);
        // SAFETY: live runtime.
        ok(unsafe { check_invariants(self.rt) }, self.rt);
        assert_eq!(
            self.stats().bytes_in_use,
            self.start_bytes + self.permanent,
            "bytes in use not back to the start (plus the types' names): a leak"
        );
    }
}

impl Drop for Rt {
    fn drop(&mut self) {
        // SAFETY: the runtime is live and freed once.
        unsafe { pymem_runtime_free(self.rt) };
    }
}

/// The default configuration, as `pymem_config_init` fills it.
fn default_config() -> Config {
    let mut cfg = std::mem::MaybeUninit::<Config>::zeroed();
    // SAFETY: writable; `pymem_config_init` fills every field.
    unsafe {
        pymem_config_init(cfg.as_mut_ptr());
        cfg.assume_init()
    }
}

type LenFn = unsafe extern "C" fn(*mut Runtime, *mut Object, *mut usize) -> Status;
type GetFn = unsafe extern "C" fn(*mut Runtime, *mut Object, usize, *mut *mut Object) -> Status;

/// The identities of a list's or a tuple's items, read with its `len` and
/// `get` (each `get` hands a new reference, dropped at once).
fn sequence_items(rt: *mut Runtime, o: *mut Object, len: LenFn, get: GetFn, items: &mut Vec<usize>) {
    let mut n = 0usize;
    // SAFETY: the runtime, object and out-pointers of this test are live and valid.
    unsafe {
        ok(len(rt, o, &mut n), rt);
        for i in 0..n {
            let mut it = ptr::null_mut();
            ok(get(rt, o, i, &mut it), rt);
            items.push(it as usize);
            ok(pymem_decref(rt, it), rt);
        }
    }
}

/// Count, type and contents (identities of the items) of an object.
fn describe(rt: *mut Runtime, o: *mut Object) -> String {
    let mut count = 0isize;
    let mut name: *const c_char = ptr::null();
    // SAFETY: live runtime and object, writable outs.
    unsafe {
        ok(pymem_refcount(rt, o, &mut count), rt);
        ok(pymem_type_name(rt, o, &mut name), rt);
    }
    // SAFETY: a static C string.
    let name = unsafe { CStr::from_ptr(name) }.to_str().unwrap().to_string();
    let mut items = Vec::new();
    let mut n = 0usize;
    // (every block below): live runtime and object, writable outs;
    // items are borrowed references, only their addresses are kept.
    match name.as_str() {
        "list" => sequence_items(rt, o, pymem_list_len, pymem_list_get, &mut items),
        "tuple" => sequence_items(rt, o, pymem_tuple_len, pymem_tuple_get, &mut items),
        // SAFETY: the runtime, objects and out-pointers of this test are live and valid.
        "dict" => unsafe {
            ok(pymem_dict_len(rt, o, &mut n), rt);
            let mut pos = 0usize;
            let (mut k, mut v) = (ptr::null_mut(), ptr::null_mut());
            while pymem_dict_next(rt, o, &mut pos, &mut k, &mut v) == Status::PYMEM_OK && !k.is_null() {
                items.push(k as usize);
                items.push(v as usize);
                // dict_next hands out new references.
                ok(pymem_decref(rt, k), rt);
                ok(pymem_decref(rt, v), rt);
                k = ptr::null_mut();
            }
        },
        _ => {}
    }
    format!("{o:p} {name} refcount {count} items {items:x?}")
}

#[test]
fn object_constructors() {
    let mut r = Rt::new();
    let rt = r.rt;
    // SAFETY: the runtime, objects and out-pointers of this test are live and valid.
    unsafe { ok(pymem_clear_free_lists(rt), rt) };
    let a = r.watch(r.int(1 << 40));
    let b = r.watch(r.str("b"));
    let mut made = Vec::new();
    let mut out = ptr::null_mut();
    let mut keep = |out: &mut *mut Object| made.push(std::mem::replace(out, ptr::null_mut()));
    // SAFETY: the runtime, objects and out-pointers of this test are live and valid.
    r.every_failure("int_new", || unsafe { pymem_int_new(rt, 1 << 41, &mut out) });
    keep(&mut out);
    // SAFETY: the runtime, objects and out-pointers of this test are live and valid.
    r.every_failure("float_new", || unsafe { pymem_float_new(rt, 2.5, &mut out) });
    keep(&mut out);
    // SAFETY: the runtime, objects and out-pointers of this test are live and valid.
    r.every_failure("str_new", || unsafe { pymem_str_new(rt, c"hello world".as_ptr(), 11, &mut out) });
    keep(&mut out);
    // SAFETY: the runtime, objects and out-pointers of this test are live and valid.
    r.every_failure("str_intern", || unsafe { pymem_str_intern(rt, c"interned".as_ptr(), 8, &mut out) });
    keep(&mut out);
    let items = [a, b, a];
    // SAFETY: the runtime, objects and out-pointers of this test are live and valid.
    r.every_failure("tuple_new", || unsafe { pymem_tuple_new(rt, 3, items.as_ptr(), &mut out) });
    keep(&mut out);
    // SAFETY: the runtime, objects and out-pointers of this test are live and valid.
    r.every_failure("list_new", || unsafe { pymem_list_new(rt, &mut out) });
    keep(&mut out);
    // SAFETY: the runtime, objects and out-pointers of this test are live and valid.
    r.every_failure("dict_new", || unsafe { pymem_dict_new(rt, &mut out) });
    keep(&mut out);
    // SAFETY: the runtime, objects and out-pointers of this test are live and valid.
    r.every_failure("module_new", || unsafe { pymem_module_new(rt, c"m".as_ptr(), &mut out) });
    keep(&mut out);
    // SAFETY: the runtime, objects and out-pointers of this test are live and valid.
    r.every_failure("function_new", || unsafe {
        pymem_function_new(rt, c"f".as_ptr(), Some(native), ptr::null_mut(), &mut out)
    });
    keep(&mut out);
    for o in made {
        r.drop_ref(o);
    }
    r.finish();
}

/// A native function: returns its first argument (a new reference).
unsafe extern "C" fn native(
    rt: *mut Runtime,
    args: *const *mut Object,
    nargs: usize,
    result: *mut *mut Object,
    _userdata: *mut c_void,
) -> Status {
    if nargs > 0 {
        // SAFETY: `nargs` borrowed arguments; `result` writable.
        unsafe {
            let a = *args;
            let st = pymem::object::pymem_incref(rt, a);
            *result = a;
            return st;
        }
    }
    Status::PYMEM_OK
}

#[test]
fn containers_grow() {
    let mut r = Rt::new();
    let rt = r.rt;
    let x = r.watch(r.int(1 << 40));
    let y = r.watch(r.str("y"));
    // A list at its capacity's edge: appends and inserts must grow it.
    let l = r.watch(r.list(&[]));
    for round in 0..40 {
        // SAFETY: live objects.
        if round % 2 == 0 {
            // SAFETY: the runtime, objects and out-pointers of this test are live and valid.
            r.every_failure_or_not("list_append", || unsafe { pymem_list_append(rt, l, x) });
        } else {
            // SAFETY: the runtime, objects and out-pointers of this test are live and valid.
            r.every_failure_or_not("list_insert", || unsafe { pymem_list_insert(rt, l, 0, y) });
        }
    }
    // list_set does not allocate: it succeeds at once, changing nothing else.
    // SAFETY: live objects, index in range.
    unsafe { ok(pymem_list_set(rt, l, 3, y), rt) };
    // A dict that must resize, with new str keys (allocated by the test).
    let d = r.watch(r.dict(&[]));
    let mut grew = 0;
    for i in 0..40 {
        let k = r.str(&format!("key{i}"));
        // SAFETY: live objects.
        grew += r.every_failure_or_not("dict_set", || unsafe { pymem_dict_set(rt, d, k, x) });
        r.drop_ref(k);
    }
    assert!(grew > 0, "dict_set never allocated in 40 new keys");
    r.finish();
}

impl Rt {
    /// Like `every_failure`, for calls that allocate only sometimes (a
    /// container growing past its capacity, text built outside the
    /// allocator): returns 0 when the call succeeds with every allocation
    /// failing.
    fn every_failure_or_not(&self, what: &str, mut call: impl FnMut() -> Status) -> u64 {
        let before = self.snapshot();
        // SAFETY: live runtime.
        ok(unsafe { fail_allocations_after(self.rt, Some(0)) }, self.rt);
        let st = call();
        // SAFETY: live runtime.
        ok(unsafe { fail_allocations_after(self.rt, None) }, self.rt);
        // SAFETY: live runtime.
        ok(unsafe { check_invariants(self.rt) }, self.rt);
        if st == Status::PYMEM_OK {
            return 0;
        }
        assert_eq!(st, Status::PYMEM_ERR_NO_MEMORY, "{what}");
        assert_eq!(self.snapshot(), before, "{what}: changed state when allocation 0 failed");
        self.every_failure(what, call)
    }
}

#[test]
fn attributes_copies_and_calls() {
    let mut r = Rt::new();
    let rt = r.rt;
    let x = r.watch(r.int(1 << 40));
    let s = r.watch(r.str("s"));
    let inner = r.watch(r.list(&[x, s]));
    let d = r.watch(r.dict(&[(s, inner)]));
    let outer = r.watch(r.list(&[inner, d, x]));
    let mut m = ptr::null_mut();
    // SAFETY: live runtime.
    unsafe { ok(pymem_module_new(rt, c"mod".as_ptr(), &mut m), rt) };
    r.watch(m);
    r.attrs.push((m, c"first"));
    r.attrs.push((m, c"second"));
    // SAFETY: the runtime, objects and out-pointers of this test are live and valid.
    r.every_failure("setattr (module, new name)", || unsafe { pymem_setattr(rt, m, c"first".as_ptr(), outer) });
    for i in 0..12 {
        let name = std::ffi::CString::new(format!("a{i}")).unwrap();
        // SAFETY: the runtime, objects and out-pointers of this test are live and valid.
        r.every_failure_or_not("setattr (module, more names)", || unsafe { pymem_setattr(rt, m, name.as_ptr(), x) });
    }
    // Reading and deleting a module attribute make a str of the name.
    let mut got = ptr::null_mut();
    // SAFETY: the runtime, objects and out-pointers of this test are live and valid.
    r.every_failure("getattr (module)", || unsafe { pymem_getattr(rt, m, c"first".as_ptr(), &mut got) });
    r.drop_ref(got);
    // SAFETY: the runtime, objects and out-pointers of this test are live and valid.
    r.every_failure("delattr (module)", || unsafe { pymem_delattr(rt, m, c"a11".as_ptr()) });
    // An instance of a host type with attributes (no slots).
    let ty = r.host_type(c"Plain", &[]);
    let mut inst = ptr::null_mut();
    // SAFETY: the runtime, objects and out-pointers of this test are live and valid.
    r.every_failure("instance_new", || unsafe { pymem_instance_new(rt, ty, &mut inst) });
    r.watch(inst);
    r.attrs.push((inst, c"value"));
    r.attrs.push((inst, c"weight"));
    // SAFETY: the runtime, objects and out-pointers of this test are live and valid.
    r.every_failure("setattr (instance, new name)", || unsafe { pymem_setattr(rt, inst, c"value".as_ptr(), d) });
    // SAFETY: the runtime, objects and out-pointers of this test are live and valid.
    r.every_failure_or_not("setattr (instance, second name)", || unsafe {
        pymem_setattr(rt, inst, c"weight".as_ptr(), x)
    });
    // The type keeps its instances' attribute names (CPython's split keys).
    r.permanent += r.str_bytes("value") + r.str_bytes("weight");
    let slotted = r.host_type(c"Slotted", &[c"left", c"right"]);
    let mut pair = ptr::null_mut();
    // SAFETY: the runtime, objects and out-pointers of this test are live and valid.
    r.every_failure("instance_new (slots)", || unsafe { pymem_instance_new(rt, slotted, &mut pair) });
    r.watch(pair);
    r.attrs.push((pair, c"left"));
    // SAFETY: the runtime, objects and out-pointers of this test are live and valid.
    r.every_failure_or_not("setattr (slot)", || unsafe { pymem_setattr(rt, pair, c"left".as_ptr(), outer) });
    let mut out = ptr::null_mut();
    // SAFETY: the runtime, objects and out-pointers of this test are live and valid.
    r.every_failure("copy (list)", || unsafe { pymem_copy(rt, outer, &mut out) });
    r.drop_ref(out);
    // SAFETY: the runtime, objects and out-pointers of this test are live and valid.
    r.every_failure("copy (dict)", || unsafe { pymem_copy(rt, d, &mut out) });
    r.drop_ref(out);
    // SAFETY: the runtime, objects and out-pointers of this test are live and valid.
    r.every_failure("deepcopy (nested)", || unsafe { pymem_deepcopy(rt, outer, &mut out) });
    r.drop_ref(out);
    // SAFETY: the runtime, objects and out-pointers of this test are live and valid.
    r.every_failure("deepcopy (module holding them)", || unsafe { pymem_deepcopy(rt, inst, &mut out) });
    r.drop_ref(out);
    let mut text: *mut c_char = ptr::null_mut();
    // repr builds its text outside the allocator: it may succeed at once;
    // then there is nothing to inject, but it must still change nothing.
    // SAFETY: the runtime, objects and out-pointers of this test are live and valid.
    let n = r.every_failure_or_not("repr", || unsafe { pymem_repr(rt, outer, &mut text) });
    let _ = n;
    // SAFETY: a string from pymem_repr.
    unsafe { pymem_string_free(text) };
    let mut f = ptr::null_mut();
    // SAFETY: live runtime.
    unsafe { ok(pymem_function_new(rt, c"id".as_ptr(), Some(native), ptr::null_mut(), &mut f), rt) };
    r.watch(f);
    let args = [x];
    // SAFETY: the runtime, objects and out-pointers of this test are live and valid.
    r.every_failure_or_not("call", || unsafe { pymem_call(rt, f, args.as_ptr(), 1, &mut out) });
    r.drop_ref(out);
    r.finish();
}

impl Rt {
    /// A host type with these `__slots__` (none: any attribute names).
    fn host_type(&mut self, name: &CStr, slot_names: &[&CStr]) -> *mut Type {
        self.snapshot(); // empties the free lists, as every attempt does
        let before = self.stats().bytes_in_use;
        let mut spec = std::mem::MaybeUninit::<TypeSpec>::zeroed();
        // SAFETY: writable; init fills every field.
        let mut spec = unsafe {
            pymem_type_spec_init(spec.as_mut_ptr());
            spec.assume_init()
        };
        spec.name = name.as_ptr();
        spec.payload_size = 16;
        let slots: Vec<*const c_char> = slot_names.iter().map(|s| s.as_ptr()).collect();
        spec.slots = if slots.is_empty() { ptr::null() } else { slots.as_ptr() };
        spec.nslots = slots.len();
        let mut t = ptr::null_mut();
        let rt = self.rt;
        if slots.is_empty() {
            // Nothing to allocate from the runtime's allocator (the type's
            // record is pymem's own): it must succeed at once.
            // SAFETY: the runtime, objects and out-pointers of this test are live and valid.
            self.every_failure_or_not("type_new", || unsafe { pymem_type_new(rt, &spec, &mut t) });
        } else {
            // `__slots__` names are interned strs: allocations that can fail.
            // SAFETY: the runtime, objects and out-pointers of this test are live and valid.
            self.every_failure("type_new (with slots)", || unsafe { pymem_type_new(rt, &spec, &mut t) });
        }
        self.permanent += self.stats().bytes_in_use - before;
        t
    }
}

#[test]
fn gc_queries_and_weakrefs() {
    let mut r = Rt::new();
    let rt = r.rt;
    let x = r.watch(r.int(1 << 40));
    let a = r.watch(r.list(&[x]));
    let b = r.watch(r.list(&[a, a]));
    let d = r.watch(r.dict(&[(x, b)]));
    // A collection needs no memory: with every allocation failing, a
    // garbage cycle is still found and freed.
    let cycle = r.list(&[]);
    // SAFETY: the runtime, objects and out-pointers of this test are live and valid.
    unsafe { ok(pymem_list_append(rt, cycle, cycle), rt) };
    r.drop_ref(cycle);
    let mut found = 0;
    // SAFETY: the runtime, objects and out-pointers of this test are live and valid.
    unsafe {
        ok(fail_allocations_after(rt, Some(0)), rt);
        let st = pymem_gc_collect(rt, 2, &mut found);
        ok(fail_allocations_after(rt, None), rt);
        ok(st, rt);
    }
    assert_eq!(found, 1, "the cycle was not collected with allocations failing");
    let mut out = ptr::null_mut();
    // SAFETY: the runtime, objects and out-pointers of this test are live and valid.
    r.every_failure("gc_get_objects", || unsafe { pymem_gc_get_objects(rt, -1, &mut out) });
    r.drop_ref(out);
    // SAFETY: the runtime, objects and out-pointers of this test are live and valid.
    r.every_failure("gc_get_referrers", || unsafe { pymem_gc_get_referrers(rt, a, &mut out) });
    r.drop_ref(out);
    // SAFETY: the runtime, objects and out-pointers of this test are live and valid.
    r.every_failure("gc_get_referents", || unsafe { pymem_gc_get_referents(rt, d, &mut out) });
    r.drop_ref(out);
    let ty = r.host_type(c"Weakly", &[]);
    let mut inst = ptr::null_mut();
    // SAFETY: live runtime and type.
    unsafe { ok(pymem_instance_new(rt, ty, &mut inst), rt) };
    r.watch(inst);
    let mut wr: *mut WeakRef = ptr::null_mut();
    let mut wrs = Vec::new();
    for _ in 0..3 {
        // The weak reference registry is pymem's own memory: nothing to
        // inject there, but the call must still change nothing else.
        // SAFETY: the runtime, objects and out-pointers of this test are live and valid.
        r.every_failure_or_not("weakref_new", || unsafe {
            pymem_weakref_new(rt, inst, None, ptr::null_mut(), &mut wr)
        });
        wrs.push(wr);
    }
    for w in wrs {
        // SAFETY: live weak reference.
        unsafe { ok(pymem_weakref_free(rt, w), rt) };
    }
    let mut text: *mut c_char = ptr::null_mut();
    // SAFETY: the runtime, objects and out-pointers of this test are live and valid.
    r.every_failure_or_not("debug_malloc_stats", || unsafe { pymem_debug_malloc_stats(rt, &mut text) });
    // SAFETY: a string from pymem.
    unsafe { pymem_string_free(text) };
    r.finish();
}

/// The bytes the namespace type keeps once registered (its interned slot
/// names), measured on a runtime of its own.
fn namespace_type_bytes() -> u64 {
    let r = Rt::new();
    let mut ns = ptr::null_mut();
    // SAFETY: live runtime, C string, writable out.
    unsafe { ok(pymem_ns_new(r.rt, c"main".as_ptr(), 0, &mut ns), r.rt) };
    r.drop_ref(ns);
    let mut found = 0;
    // SAFETY: live runtime.
    unsafe {
        ok(pymem_gc_collect(r.rt, 2, &mut found), r.rt);
        ok(pymem_clear_free_lists(r.rt), r.rt);
    }
    r.stats().bytes_in_use - r.start_bytes
}

#[test]
fn namespaces() {
    let mut r = Rt::new();
    r.permanent = namespace_type_bytes();
    let rt = r.rt;
    let mut ns = ptr::null_mut();
    // SAFETY: the runtime, objects and out-pointers of this test are live and valid.
    r.every_failure("ns_new (first: registers the type)", || unsafe { pymem_ns_new(rt, c"main".as_ptr(), 0, &mut ns) });
    r.watch(ns);
    let mut ns2 = ptr::null_mut();
    // SAFETY: the runtime, objects and out-pointers of this test are live and valid.
    r.every_failure("ns_new (notebook)", || unsafe { pymem_ns_new(rt, c"nb".as_ptr(), 1, &mut ns2) });
    r.watch(ns2);
    let x = r.watch(r.int(1 << 40));
    let l = r.watch(r.list(&[x]));
    for i in 0..12 {
        let name = std::ffi::CString::new(format!("v{i}")).unwrap();
        let v = if i % 2 == 0 { x } else { l };
        // SAFETY: the runtime, objects and out-pointers of this test are live and valid.
        r.every_failure_or_not("ns_set", || unsafe { pymem_ns_set(rt, ns, name.as_ptr(), v) });
    }
    let mut out = ptr::null_mut();
    // SAFETY: the runtime, objects and out-pointers of this test are live and valid.
    r.every_failure("ns_who", || unsafe { pymem_ns_who(rt, ns, ptr::null(), &mut out) });
    r.drop_ref(out);
    let mut text: *mut c_char = ptr::null_mut();
    // SAFETY: the runtime, objects and out-pointers of this test are live and valid.
    r.every_failure_or_not("ns_whos", || unsafe { pymem_ns_whos(rt, ns, &mut text) });
    // SAFETY: a string from pymem.
    unsafe { pymem_string_free(text) };
    // SAFETY: the runtime, objects and out-pointers of this test are live and valid.
    r.every_failure_or_not("ns_why_alive", || unsafe { pymem_ns_why_alive(rt, ns, c"v1".as_ptr(), &mut text) });
    // SAFETY: a string from pymem.
    unsafe { pymem_string_free(text) };
    // SAFETY: the runtime, objects and out-pointers of this test are live and valid.
    r.every_failure_or_not("ns_hide", || unsafe { pymem_ns_hide(rt, ns, c"v2".as_ptr()) });
    // SAFETY: the runtime, objects and out-pointers of this test are live and valid.
    r.every_failure_or_not("ns_del", || unsafe { pymem_ns_del(rt, ns, c"v3".as_ptr()) });
    // SAFETY: the runtime, objects and out-pointers of this test are live and valid.
    r.every_failure_or_not("ns_xdel", || unsafe { pymem_ns_xdel(rt, ns, c"v5".as_ptr()) });
    let mut got = ptr::null_mut();
    // SAFETY: the runtime, objects and out-pointers of this test are live and valid.
    r.every_failure_or_not("ns_get", || unsafe { pymem_ns_get(rt, ns, c"v4".as_ptr(), &mut got) });
    r.drop_ref(got);
    // reset: the names bound to fresh objects only the namespace holds.
    for i in 0..6 {
        let name = std::ffi::CString::new(format!("tmp{i}")).unwrap();
        let v = r.list(&[x]);
        // SAFETY: live objects.
        unsafe { ok(pymem_ns_set(rt, ns, name.as_ptr(), v), rt) };
        r.drop_ref(v);
    }
    let mut report = ResetReport::default();
    // SAFETY: the runtime, objects and out-pointers of this test are live and valid.
    r.every_failure_or_not("ns_reset", || unsafe { pymem_ns_reset(rt, ns, c"^tmp".as_ptr(), &mut report) });
    let mut got = ptr::null_mut();
    // SAFETY: live namespace.
    assert_eq!(unsafe { pymem_ns_get(rt, ns, c"tmp0".as_ptr(), &mut got) }, Status::PYMEM_ERR_KEY);
    r.finish();
}

#[test]
fn raw_memory() {
    let r = Rt::new();
    let rt = r.rt;
    // SAFETY: the runtime, objects and out-pointers of this test are live and valid.
    let st = |p: *mut c_void| if p.is_null() { unsafe { pymem_last_status(rt) } } else { Status::PYMEM_OK };
    let mut p = ptr::null_mut();
    r.every_failure("malloc (small)", || {
        // SAFETY: the runtime, objects and out-pointers of this test are live and valid.
        p = unsafe { pymem_malloc(rt, 40) };
        st(p)
    });
    r.every_failure("realloc (moves)", || {
        // SAFETY: the runtime, objects and out-pointers of this test are live and valid.
        let q = unsafe { pymem_realloc(rt, p, 400) };
        if !q.is_null() {
            p = q;
        }
        st(q)
    });
    r.every_failure("realloc (large)", || {
        // SAFETY: the runtime, objects and out-pointers of this test are live and valid.
        let q = unsafe { pymem_realloc(rt, p, 100_000) };
        if !q.is_null() {
            p = q;
        }
        st(q)
    });
    // SAFETY: live block.
    unsafe { ok(pymem_free(rt, p), rt) };
    r.every_failure("calloc (large)", || {
        // SAFETY: the runtime, objects and out-pointers of this test are live and valid.
        p = unsafe { pymem_calloc(rt, 1000, 300) };
        st(p)
    });
    // SAFETY: live block.
    unsafe { ok(pymem_free(rt, p), rt) };
    r.finish();
}

/// The GPU cache on a simulated device too small: for every number of live
/// blocks n (so that the n-th device malloc is the one that cannot be
/// served), the malloc that does not fit returns
/// `PYMEM_ERR_OUT_OF_DEVICE_MEMORY` and leaves the live blocks and the
/// allocated bytes (current and peak) as they were; as in PyTorch the
/// attempt gives the cached blocks back first, so reserved memory may
/// shrink, never grow. Everything freed, nothing is left on the device.
#[test]
fn gpu_cache_on_a_device_too_small() {
    use pymem::cuda::{
        pymem_cuda_cache_free, pymem_cuda_cache_new, pymem_cuda_config_init, pymem_cuda_free, pymem_cuda_malloc,
        pymem_cuda_max_memory_allocated, pymem_cuda_memory_allocated, pymem_cuda_memory_reserved, CudaCache,
        CudaConfig, PYMEM_CUDA_BACKEND_SIMULATED,
    };
    use pymem::testing::cuda_check_invariants;
    const MIB: usize = 1 << 20;
    const CAPACITY: u64 = 64 << 20;
    let mut cfg = std::mem::MaybeUninit::<CudaConfig>::zeroed();
    // SAFETY: writable; init fills every field.
    let mut cfg = unsafe {
        pymem_cuda_config_init(cfg.as_mut_ptr());
        cfg.assume_init()
    };
    cfg.backend = PYMEM_CUDA_BACKEND_SIMULATED;
    cfg.simulated_devices = 1;
    cfg.simulated_capacity = CAPACITY;
    // Sizes of the blocks kept live, cycling: small-pool, large and odd sizes.
    let sizes = [5 * MIB, MIB / 2, 3 * MIB + 4096, 9 * MIB, 1000];
    let mut total_ooms = 0;
    for n in 0.. {
        // A fresh cache for each n: only these n blocks on the device.
        let mut c: *mut CudaCache = ptr::null_mut();
        // SAFETY: valid config and out.
        assert_eq!(unsafe { pymem_cuda_cache_new(&cfg, &mut c) }, Status::PYMEM_OK);
        let stat = |f: unsafe extern "C" fn(*const CudaCache, i32, *mut u64) -> Status| {
            let mut v = 0;
            // SAFETY: live cache, device 0, writable out.
            assert_eq!(unsafe { f(c, 0, &mut v) }, Status::PYMEM_OK);
            v
        };
        let mut live = Vec::new();
        let mut fitted = true;
        for i in 0..n {
            let mut p = 0u64;
            // SAFETY: live cache, writable out.
            let st = unsafe { pymem_cuda_malloc(c, 0, sizes[i % sizes.len()], 0, &mut p) };
            if st != Status::PYMEM_OK {
                assert_eq!(st, Status::PYMEM_ERR_OUT_OF_DEVICE_MEMORY);
                fitted = false;
                break;
            }
            live.push(p);
        }
        if !fitted {
            // n blocks no longer fit on the device: every smaller n was tried.
            // SAFETY: live blocks of this cache.
            live.iter().for_each(|&p| assert_eq!(unsafe { pymem_cuda_free(c, p) }, Status::PYMEM_OK));
            // SAFETY: live cache, freed once.
            assert_eq!(unsafe { pymem_cuda_cache_free(c) }, Status::PYMEM_OK);
            break;
        }
        // Then requests that cannot fit next to them.
        for want in [CAPACITY as usize, 40 * MIB, 20 * MIB] {
            let (allocated, peak, reserved) = (
                stat(pymem_cuda_memory_allocated),
                stat(pymem_cuda_max_memory_allocated),
                stat(pymem_cuda_memory_reserved),
            );
            let mut p = 0xdead_u64;
            // SAFETY: live cache, writable out.
            let st = unsafe { pymem_cuda_malloc(c, 0, want, 0, &mut p) };
            // SAFETY: live cache.
            unsafe { cuda_check_invariants(c) };
            if st == Status::PYMEM_OK {
                live.push(p);
                continue;
            }
            total_ooms += 1;
            assert_eq!(st, Status::PYMEM_ERR_OUT_OF_DEVICE_MEMORY, "{n} live blocks, {want} bytes");
            assert_eq!(p, 0xdead, "the out-pointer was written on failure");
            assert_eq!(stat(pymem_cuda_memory_allocated), allocated, "allocated bytes changed by a failed malloc");
            assert_eq!(stat(pymem_cuda_max_memory_allocated), peak, "the peak changed by a failed malloc");
            assert!(stat(pymem_cuda_memory_reserved) <= reserved, "a failed malloc reserved more");
        }
        // Every live block is still ours: each frees exactly once.
        for p in live {
            // SAFETY: live cache.
            assert_eq!(unsafe { pymem_cuda_free(c, p) }, Status::PYMEM_OK);
        }
        assert_eq!(stat(pymem_cuda_memory_allocated), 0);
        // SAFETY: live cache, freed once.
        unsafe {
            cuda_check_invariants(c);
            assert_eq!(pymem_cuda_cache_free(c), Status::PYMEM_OK);
        }
    }
    eprintln!("{total_ooms} failed mallocs checked");
    assert!(total_ooms > 10, "the device never ran out: the test did not test anything");
}

/// The limit itself (`pymem_config.max_bytes`), not injected failures: a
/// runtime allowed two arenas fills them with a growing list of ints; the
/// append that would need a third arena fails with `PYMEM_ERR_NO_MEMORY`
/// and leaves the list, the counts and the bytes in use as they were; once
/// the list is dropped everything is back to the start.
#[test]
fn max_bytes_limit() {
    let mut cfg = default_config();
    cfg.max_bytes = 2 << 20;
    let mut rt = ptr::null_mut();
    // SAFETY: valid config and out-pointer.
    assert_eq!(unsafe { pymem_runtime_new(&cfg, &mut rt) }, Status::PYMEM_OK);
    // SAFETY: live runtime.
    ok(unsafe { pymem_gc_disable(rt) }, rt);
    let mut r = Rt { rt, watched: Vec::new(), attrs: Vec::new(), start_bytes: 0, permanent: 0 };
    let x = r.int(1 << 40);
    r.drop_ref(x);
    // SAFETY: live runtime.
    ok(unsafe { pymem_clear_free_lists(rt) }, rt);
    r.start_bytes = r.stats().bytes_in_use;
    let l = r.watch(r.list(&[]));
    let mut failures = 0;
    for i in 0..1_000_000 {
        // What a failure could change, in O(1) (a full snapshot lists
        // every item): bytes and blocks in use, the list's length, count
        // and last item.
        let state = |r: &Rt| {
            let s = r.stats();
            let (mut len, mut count, mut last) = (0usize, 0isize, ptr::null_mut());
            // SAFETY: the runtime, objects and out-pointers of this test are live and valid.
            unsafe {
                ok(pymem_list_len(rt, l, &mut len), rt);
                ok(pymem_refcount(rt, l, &mut count), rt);
                if len > 0 {
                    ok(pymem_list_get(rt, l, len - 1, &mut last), rt);
                    r.drop_ref(last);
                }
            }
            (s.bytes_in_use, s.blocks_in_use, len, count, last as usize)
        };
        let before = state(&r);
        let mut item = ptr::null_mut();
        // SAFETY: the runtime, objects and out-pointers of this test are live and valid.
        let st = unsafe { pymem_int_new(rt, (1 << 40) + i, &mut item) };
        let st = if st == Status::PYMEM_OK {
            // SAFETY: the runtime, objects and out-pointers of this test are live and valid.
            let st = unsafe { pymem_list_append(rt, l, item) };
            r.drop_ref(item);
            st
        } else {
            st
        };
        if st == Status::PYMEM_OK {
            continue;
        }
        assert_eq!(st, Status::PYMEM_ERR_NO_MEMORY);
        failures += 1;
        // A failed int_new changes nothing; a failed append leaves the
        // list as it was (the new int, dropped, is gone again).
        assert_eq!(state(&r), before, "the failure at item {i} changed state");
        assert!(r.stats().bytes_reserved <= 2 << 20);
        if failures == 3 {
            break;
        }
    }
    assert_eq!(failures, 3, "the limit was never reached");
    r.finish();
}
