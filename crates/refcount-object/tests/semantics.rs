//! Python semantics of the object layer, one area per module: copy and
//! deepcopy, sizeof and deep_sizeof, hash and ==, repr, dict order, list
//! edge cases, interning, the small-int cache, free lists, and that every
//! object goes back to the allocator when its last reference goes.
//!
//! Facts marked "CPython" were checked with CPython 3.11.7 on this machine.

use obmalloc::{Allocator, Config};
use refcount_object::{FreeListLengths, Heap, HeapConfig, HostTypeSpec, Obj, ObjError, IMMORTAL_REFCNT};

fn heap() -> Box<Heap> {
    heap_with(HeapConfig::default())
}

fn heap_with(config: HeapConfig) -> Box<Heap> {
    Heap::new(Allocator::new(Config::default()), config).unwrap()
}

/// Live allocator blocks once the free lists are emptied.
fn blocks(h: &mut Heap) -> u64 {
    h.clear_free_lists();
    h.alloc.stats().blocks_in_use
}

/// Every object made since `base` was taken is gone, and the allocator is sound.
fn assert_baseline(h: &mut Heap, base: u64) {
    assert_eq!(blocks(h), base, "every object and element array went back to the allocator");
    h.alloc.check_invariants();
}

/// Runs `f` on a thread with a 2 MiB stack (Rust's default for spawned
/// threads, stated explicitly): deep structures must not need more.
fn on_small_stack(f: impl FnOnce() + Send + 'static) {
    std::thread::Builder::new().stack_size(2 << 20).spawn(f).unwrap().join().unwrap();
}

fn s(h: &mut Heap, text: &str) -> Obj {
    h.str_new(text.as_bytes()).unwrap()
}

/// The entries of dict `d`, in order (borrowed key and value).
fn dict_items(h: &Heap, d: Obj) -> Vec<(Obj, Obj)> {
    let mut out = Vec::new();
    let mut pos = 0;
    while let Some(kv) = h.dict_next(d, &mut pos).unwrap() {
        out.push(kv);
    }
    out
}

fn list_of(h: &mut Heap, items: &[Obj]) -> Obj {
    let l = h.list_new().unwrap();
    for &i in items {
        h.list_append(l, i).unwrap();
    }
    l
}

/// A host type "Point" with a 16-byte payload; its attribute names `x`,
/// `y`, `next` are registered (the type keeps them for its life).
fn point_type(h: &mut Heap) -> u32 {
    let t = h.type_new(&HostTypeSpec { name: "Point".into(), payload_size: 16, ..Default::default() }).unwrap();
    let id = h.check_type(t).unwrap();
    let p = h.instance_new(id).unwrap();
    let none = h.none();
    for name in [&b"x"[..], b"y", b"next"] {
        h.setattr(p, name, none).unwrap();
    }
    h.decref(p);
    id
}

fn set_payload(h: &Heap, o: Obj, bytes: [u8; 16]) {
    let p = h.instance_payload(o).unwrap();
    // SAFETY: instances of `point_type` have 16 payload bytes.
    unsafe { std::ptr::copy_nonoverlapping(bytes.as_ptr(), p, 16) };
}

fn payload(h: &Heap, o: Obj) -> [u8; 16] {
    let p = h.instance_payload(o).unwrap();
    let mut out = [0; 16];
    // SAFETY: instances of `point_type` have 16 payload bytes.
    unsafe { std::ptr::copy_nonoverlapping(p, out.as_mut_ptr(), 16) };
    out
}

/// Nests `inner` in `levels` one-item lists; returns the outermost (the
/// caller's reference to `inner` is handed over).
fn nest_lists(h: &mut Heap, mut inner: Obj, levels: usize) -> Obj {
    for _ in 0..levels {
        let outer = h.list_new().unwrap();
        h.list_append(outer, inner).unwrap();
        h.decref(inner);
        inner = outer;
    }
    inner
}

mod copy {
    use super::*;

    #[test]
    fn shallow_copy_of_a_list_shares_its_items() {
        let mut h = heap();
        let base = blocks(&mut h);
        let inner = h.list_new().unwrap();
        let big = h.int_new(1000).unwrap();
        let l = list_of(&mut h, &[inner, big, inner]);
        let c = h.copy(l).unwrap();
        assert_ne!(c, l, "a new list");
        assert_eq!(h.list_items(c).unwrap(), h.list_items(l).unwrap(), "sharing the same items");
        assert_eq!(h.refcount(inner), 5, "1 handle + 2 slots in each list");
        assert_eq!(h.refcount(big), 3);
        // list.copy() allocates exactly the length (CPython: 56 + 8 * 3 = 80;
        // ours: the 64-byte list block, its two inline slots unused, and an
        // item array of 3).
        assert_eq!(h.sizeof(c).unwrap(), 64 + 8 * 3);
        let extra = h.int_new(5).unwrap();
        h.list_append(c, extra).unwrap();
        assert_eq!(h.list_len(l).unwrap(), 3, "the copy is a different list");
        let empty = h.list_new().unwrap();
        let ce = h.copy(empty).unwrap();
        assert_ne!(ce, empty);
        assert_eq!(h.list_len(ce).unwrap(), 0);
        for o in [inner, big, l, c, empty, ce] {
            h.decref(o);
        }
        assert_baseline(&mut h, base);
    }

    #[test]
    fn shallow_copy_of_a_dict_keeps_order_and_shares_keys_and_values() {
        let mut h = heap();
        let base = blocks(&mut h);
        let d = h.dict_new().unwrap();
        let mut keys = Vec::new();
        for i in 0..20 {
            let k = s(&mut h, &format!("key{i}"));
            let v = h.list_new().unwrap();
            h.dict_set(d, k, v).unwrap();
            h.decref(v);
            keys.push(k);
        }
        for k in keys.iter().step_by(3) {
            h.dict_del(d, *k).unwrap();
        }
        let c = h.copy(d).unwrap();
        assert_ne!(c, d);
        let (a, b) = (dict_items(&h, d), dict_items(&h, c));
        assert_eq!(a, b, "same key and value objects, in insertion order");
        assert_eq!(a.len(), 13);
        assert_eq!(h.refcount(a[0].1), 2, "each value is held by both dicts");
        for k in keys {
            h.decref(k);
        }
        h.decref(d);
        h.decref(c);
        assert_baseline(&mut h, base);
    }

    #[test]
    fn immutables_and_atoms_copy_to_themselves() {
        let mut h = heap();
        let base = blocks(&mut h);
        let list = h.list_new().unwrap();
        let objs = [
            h.int_new(1000).unwrap(),
            h.float_new(2.5).unwrap(),
            s(&mut h, "text"),
            h.tuple_new(&[list]).unwrap(),
            h.module_new(b"m").unwrap(),
            h.function_new(b"f", 0, 0).unwrap(),
        ];
        for &o in &objs {
            for deep in [false, true] {
                if deep && h.type_of(o).name() == "tuple" {
                    continue; // holds a list: deepcopy makes a new one
                }
                let before = h.refcount(o);
                let c = if deep { h.deepcopy(o) } else { h.copy(o) }.unwrap();
                assert_eq!(c, o, "{} (deep: {deep})", h.type_of(o).name());
                assert_eq!(h.refcount(o), before + 1, "a new reference");
                h.decref(c);
            }
        }
        for o in [h.none(), h.bool_obj(true), h.int_new(7).unwrap(), s(&mut h, ""), h.tuple_new(&[]).unwrap()] {
            assert_eq!(h.copy(o).unwrap(), o);
            assert_eq!(h.deepcopy(o).unwrap(), o);
        }
        for o in objs {
            h.decref(o);
        }
        h.decref(list);
        assert_baseline(&mut h, base);
    }

    #[test]
    fn copy_of_an_instance_shares_attributes_and_copies_the_payload() {
        let mut h = heap();
        let point = point_type(&mut h);
        let base = blocks(&mut h);
        let p = h.instance_new(point).unwrap();
        set_payload(&h, p, *b"0123456789abcdef");
        let x = h.list_new().unwrap();
        h.setattr(p, b"x", x).unwrap();
        for deep in [false, true] {
            let c = if deep { h.deepcopy(p) } else { h.copy(p) }.unwrap();
            assert_ne!(c, p);
            assert!(h.is_instance(c, point));
            assert_eq!(payload(&h, c), *b"0123456789abcdef", "payload bytes copied");
            let cx = h.getattr(c, b"x").unwrap();
            assert_eq!(cx == x, !deep, "shallow: the same attribute value; deep: a copy");
            assert!(h.getattr(c, b"y").is_err(), "unset attributes stay unset");
            assert_eq!(h.sizeof(c).unwrap(), h.sizeof(p).unwrap());
            h.decref(c);
        }
        assert_eq!(h.refcount(x), 2);
        h.decref(x);
        h.decref(p);
        assert_baseline(&mut h, base);
    }

    #[test]
    fn deepcopy_keeps_shared_objects_shared() {
        let mut h = heap();
        let base = blocks(&mut h);
        let big = h.int_new(1000).unwrap();
        let x = list_of(&mut h, &[big]);
        let l = list_of(&mut h, &[x, x]);
        let d = h.deepcopy(l).unwrap();
        let (d0, d1) = (h.list_get(d, 0).unwrap(), h.list_get(d, 1).unwrap());
        assert_eq!(d0, d1, "shared in the original, shared in the copy");
        assert_ne!(d0, x, "but a new list");
        assert_eq!(h.list_get(d0, 0).unwrap(), big, "ints are not copied");
        assert_eq!(h.refcount(d0), 2);
        assert_eq!(h.refcount(big), 3);
        assert!(h.equal(l, d).unwrap());
        // CPython: x = ([],); l = [x, x]; c = deepcopy(l); c[0] is c[1] and c[0] is not x.
        let t = h.tuple_new(&[x]).unwrap();
        let lt = list_of(&mut h, &[t, t]);
        let dt = h.deepcopy(lt).unwrap();
        let (t0, t1) = (h.list_get(dt, 0).unwrap(), h.list_get(dt, 1).unwrap());
        assert_eq!(t0, t1, "a copied tuple is shared too");
        assert_ne!(t0, t);
        for o in [big, x, l, d, t, lt, dt] {
            h.decref(o);
        }
        assert_baseline(&mut h, base);
    }

    #[test]
    fn deepcopy_reproduces_cycles() {
        let mut h = heap();
        let point = point_type(&mut h);
        let base = blocks(&mut h);
        // a = []; a.append(a)
        let a = h.list_new().unwrap();
        h.list_append(a, a).unwrap();
        let ca = h.deepcopy(a).unwrap();
        assert_ne!(ca, a);
        assert_eq!(h.list_get(ca, 0).unwrap(), ca, "the copy contains itself");
        assert_eq!(h.repr(ca).unwrap(), "[[...]]");
        // d = {}; d['self'] = d
        let d = h.dict_new().unwrap();
        let key = s(&mut h, "self");
        h.dict_set(d, key, d).unwrap();
        let cd = h.deepcopy(d).unwrap();
        assert_eq!(h.dict_get(cd, key).unwrap(), cd);
        assert_eq!(h.repr(cd).unwrap(), "{'self': {...}}");
        // p.next = p
        let p = h.instance_new(point).unwrap();
        h.setattr(p, b"next", p).unwrap();
        let cp = h.deepcopy(p).unwrap();
        assert_eq!(h.getattr(cp, b"next").unwrap(), cp);
        // CPython: t = ([],); t[0].append(t); d = deepcopy(t):
        // d is not t, d[0] is not t[0], d[0][0] is d.
        let inner = h.list_new().unwrap();
        let t = h.tuple_new(&[inner]).unwrap();
        h.list_append(inner, t).unwrap();
        let ct = h.deepcopy(t).unwrap();
        assert_ne!(ct, t);
        let ci = h.tuple_item(ct, 0).unwrap();
        assert_ne!(ci, inner);
        assert_eq!(h.list_get(ci, 0).unwrap(), ct);
        assert_eq!(h.repr(ct).unwrap(), "([(...)],)");
        // Break the cycles (this crate has no collector), then drop.
        for l in [a, ca, inner, ci] {
            let item = h.list_pop(l, 0).unwrap();
            h.decref(item);
        }
        h.dict_del(d, key).unwrap();
        h.dict_del(cd, key).unwrap();
        h.delattr(p, b"next").unwrap();
        h.delattr(cp, b"next").unwrap();
        for o in [a, ca, d, cd, key, p, cp, inner, t, ct] {
            h.decref(o);
        }
        assert_baseline(&mut h, base);
    }

    #[test]
    fn a_tuple_is_deep_copied_only_if_some_item_copy_differs() {
        let mut h = heap();
        let base = blocks(&mut h);
        // CPython: a = ((1, 'a'), 2.5); deepcopy(a) is a.
        let one = h.int_new(1).unwrap();
        let sa = s(&mut h, "a");
        let f = h.float_new(2.5).unwrap();
        let inner = h.tuple_new(&[one, sa]).unwrap();
        let atoms = h.tuple_new(&[inner, f]).unwrap();
        let c = h.deepcopy(atoms).unwrap();
        assert_eq!(c, atoms);
        h.decref(c);
        h.decref(atoms);
        // A list two tuples down: both tuples are new, the atoms are shared.
        let l = h.list_new().unwrap();
        let t1 = h.tuple_new(&[f, l]).unwrap();
        let t2 = h.tuple_new(&[inner, t1]).unwrap();
        let c2 = h.deepcopy(t2).unwrap();
        assert_ne!(c2, t2);
        assert_eq!(h.tuple_item(c2, 0).unwrap(), inner, "the all-atom tuple is the same object");
        let c1 = h.tuple_item(c2, 1).unwrap();
        assert_ne!(c1, t1);
        assert_eq!(h.tuple_item(c1, 0).unwrap(), f);
        assert_ne!(h.tuple_item(c1, 1).unwrap(), l);
        assert!(h.equal(c2, t2).unwrap());
        // Tuple keys made of atoms stay the same key objects in a copied dict.
        let d = h.dict_new().unwrap();
        h.dict_set(d, inner, l).unwrap();
        let cd = h.deepcopy(d).unwrap();
        let mut pos = 0;
        let (k, v) = h.dict_next(cd, &mut pos).unwrap().unwrap();
        assert_eq!(k, inner);
        assert_ne!(v, l);
        for o in [one, sa, f, inner, l, t1, t2, c2, d, cd] {
            h.decref(o);
        }
        assert_baseline(&mut h, base);
    }

    #[test]
    fn deepcopy_of_a_dict_keeps_insertion_order() {
        let mut h = heap();
        let base = blocks(&mut h);
        let d = h.dict_new().unwrap();
        let mut order = Vec::new();
        for i in (0..50).rev() {
            let k = h.int_new(i * 1000).unwrap();
            let v = list_of(&mut h, &[k]);
            h.dict_set(d, k, v).unwrap();
            order.push(i * 1000);
            h.decref(k);
            h.decref(v);
        }
        let c = h.deepcopy(d).unwrap();
        let mut pos = 0;
        let mut got = Vec::new();
        while let Some((k, v)) = h.dict_next(c, &mut pos).unwrap() {
            got.push(h.int_value(k).unwrap());
            assert_eq!(h.list_get(v, 0).unwrap(), k, "the int in the list is the same object as the key");
        }
        assert_eq!(got, order);
        assert!(h.equal(c, d).unwrap());
        h.decref(d);
        h.decref(c);
        assert_baseline(&mut h, base);
    }

    #[test]
    fn deepcopy_fails_beyond_the_recursion_limit_and_leaks_nothing() {
        let mut h = heap_with(HeapConfig { recursion_limit: 100, ..HeapConfig::default() });
        let point = point_type(&mut h);
        let base = blocks(&mut h);
        // The innermost list is at depth `levels`: allowed up to the limit,
        // exactly where repr stops too.
        for (levels, ok) in [(100, true), (101, false)] {
            let empty = h.list_new().unwrap();
            let l = nest_lists(&mut h, empty, levels);
            let r = h.deepcopy(l);
            assert_eq!(r.is_ok(), ok, "{levels} levels");
            assert_eq!(h.repr(l).is_ok(), ok);
            if let Ok(c) = r {
                assert!(h.equal(c, l).unwrap());
                h.decref(c);
            } else {
                assert!(matches!(r, Err(ObjError::Recursion(_))));
            }
            h.decref(l);
        }
        assert_baseline(&mut h, base);

        // Everything made before the error goes, cycles and all: a list
        // containing itself, a shared tuple, a dict, an instance in a
        // cycle, then a branch too deep.
        let cyc = h.list_new().unwrap();
        h.list_append(cyc, cyc).unwrap();
        let x = h.list_new().unwrap();
        let t = h.tuple_new(&[x]).unwrap();
        let d = h.dict_new().unwrap();
        let k = s(&mut h, "key");
        h.dict_set(d, k, t).unwrap();
        h.dict_set(d, t, cyc).unwrap_err(); // a tuple holding a list is unhashable
        let p = h.instance_new(point).unwrap();
        h.setattr(p, b"next", p).unwrap();
        h.setattr(p, b"x", t).unwrap();
        let empty = h.list_new().unwrap();
        let deep = nest_lists(&mut h, empty, 150);
        let root = list_of(&mut h, &[cyc, t, t, d, p, deep]);
        let counts: Vec<usize> = [cyc, x, t, d, k, p, deep].iter().map(|&o| h.refcount(o)).collect();
        let before = blocks(&mut h);
        assert!(matches!(h.deepcopy(root), Err(ObjError::Recursion(_))));
        assert_eq!(blocks(&mut h), before, "nothing made survives the error");
        let after: Vec<usize> = [cyc, x, t, d, k, p, deep].iter().map(|&o| h.refcount(o)).collect();
        assert_eq!(after, counts, "the originals' counts are unchanged");
        h.list_pop(cyc, 0).map(|o| h.decref(o)).unwrap();
        h.delattr(p, b"next").unwrap();
        for o in [cyc, x, t, d, k, p, deep, root] {
            h.decref(o);
        }
        assert_baseline(&mut h, base);
    }

    #[test]
    fn deepcopy_out_of_memory_midway_leaks_nothing() {
        // Originals of ~2.5 MB: 20,000 lists, each containing a shared int
        // twice and itself (three items: an item array of their own); the
        // allocator may hold little more than they needed, so the copy
        // fails part-way through, having made cycles already.
        let build = |h: &mut Heap| {
            let big = h.int_new(1 << 40).unwrap();
            let outer = h.list_new().unwrap();
            for _ in 0..20_000 {
                let inner = list_of(h, &[big, big]);
                h.list_append(inner, inner).unwrap();
                h.list_append(outer, inner).unwrap();
                h.decref(inner);
            }
            h.decref(big);
            outer
        };
        let teardown = |h: &mut Heap, outer: Obj| {
            for &inner in h.list_items(outer).unwrap().to_vec().iter() {
                h.list_pop(inner, 2).map(|o| h.decref(o)).unwrap();
            }
            h.decref(outer);
        };
        let mut probe = heap();
        let outer = build(&mut probe);
        // Room for the copy's outer item array (160,000 bytes, a large
        // block) and one more 1 MiB arena: the 20,000 inner copies need
        // about 1.6 MB of pools, so the copy fails about half-way.
        let limit = probe.alloc.stats().bytes_reserved as usize + 200_000 + (1 << 20);
        teardown(&mut probe, outer);

        let config = Config { max_bytes: limit, ..Config::default() };
        let mut h = Heap::new(Allocator::new(config), HeapConfig::default()).unwrap();
        let base = blocks(&mut h);
        let outer = build(&mut h);
        let before = blocks(&mut h);
        let r = h.deepcopy(outer);
        assert!(matches!(r, Err(ObjError::NoMemory(_))), "{r:?}");
        assert_eq!(blocks(&mut h), before, "every copy made before the failure is freed");
        h.alloc.check_invariants();
        // The heap still works.
        let small = h.list_new().unwrap();
        let c = h.deepcopy(small).unwrap();
        h.decref(c);
        h.decref(small);
        teardown(&mut h, outer);
        assert_baseline(&mut h, base);
    }

    const N: usize = 1_000_000;

    /// Runs `f` on a 2 MiB stack with a heap whose recursion limit allows
    /// structures `N` deep; everything must be freed by the end.
    fn deep_test(f: impl FnOnce(&mut Heap, u32) + Send + 'static) {
        on_small_stack(move || {
            let mut h = heap_with(HeapConfig { recursion_limit: 2_000_000, ..HeapConfig::default() });
            let point = point_type(&mut h);
            let base = blocks(&mut h);
            f(&mut h, point);
            assert_baseline(&mut h, base);
        });
    }

    #[test]
    fn a_million_deep_list_copies_and_frees_on_a_small_stack() {
        deep_test(|h, _| {
            // [[[...[]...]]]
            let empty = h.list_new().unwrap();
            let l = nest_lists(h, empty, N);
            let c = h.deepcopy(l).unwrap();
            let (mut a, mut b, mut depth) = (l, c, 0);
            while h.list_len(a).unwrap() == 1 {
                assert_ne!(a, b);
                assert_eq!(h.list_len(b).unwrap(), 1);
                (a, b, depth) = (h.list_get(a, 0).unwrap(), h.list_get(b, 0).unwrap(), depth + 1);
            }
            assert_eq!(depth, N);
            assert!(h.equal(l, c).unwrap(), "== is iterative too");
            // Lists of one item keep it inline: one 64-byte block each.
            assert_eq!(h.deep_sizeof(l).unwrap(), N * 64 + 64);
            assert_eq!(h.deep_sizeof(c).unwrap(), N * 64 + 64);
            let sc = h.copy(l).unwrap();
            h.decref(sc);
            h.decref(c);
            h.decref(l);
        });
    }

    #[test]
    fn a_million_deep_tuple_copies_and_frees_on_a_small_stack() {
        deep_test(|h, _| {
            // ((((...([],)...),),),): a list at the bottom, so every tuple is copied.
            let bottom = h.list_new().unwrap();
            let mut t = h.tuple_new(&[bottom]).unwrap();
            h.decref(bottom);
            for _ in 1..N {
                let outer = h.tuple_new(&[t]).unwrap();
                h.decref(t);
                t = outer;
            }
            assert!(matches!(h.hash(t), Err(ObjError::Type(_))), "the iterative hash reaches the list");
            let ct = h.deepcopy(t).unwrap();
            assert_ne!(ct, t);
            assert!(h.equal(t, ct).unwrap());
            assert_eq!(h.deep_sizeof(ct).unwrap(), h.deep_sizeof(t).unwrap());
            h.decref(ct);
            h.decref(t);
        });
    }

    #[test]
    fn a_million_deep_dict_copies_and_frees_on_a_small_stack() {
        deep_test(|h, _| {
            // {'k': {'k': ... {}}}
            let key = s(h, "k");
            let mut d = h.dict_new().unwrap();
            for _ in 0..N {
                let outer = h.dict_new().unwrap();
                h.dict_set(outer, key, d).unwrap();
                h.decref(d);
                d = outer;
            }
            let cd = h.deepcopy(d).unwrap();
            assert!(h.equal(d, cd).unwrap());
            h.decref(cd);
            h.decref(d);
            h.decref(key);
        });
    }

    #[test]
    fn a_million_long_instance_chain_copies_and_frees_on_a_small_stack() {
        deep_test(|h, point| {
            // p.next.next.next...
            let mut p = h.instance_new(point).unwrap();
            for _ in 0..N {
                let outer = h.instance_new(point).unwrap();
                h.setattr(outer, b"next", p).unwrap();
                h.decref(p);
                p = outer;
            }
            let cp = h.deepcopy(p).unwrap();
            assert_eq!(h.deep_sizeof(cp).unwrap(), h.deep_sizeof(p).unwrap());
            h.decref(cp);
            h.decref(p);
        });
    }
}

mod size {
    use super::*;

    /// What the allocator books for a request (its `bytes_in_use`): a small
    /// block's size class (16 bytes apart, and 24 bytes for object and
    /// internal blocks of 17 to 24 bytes), a large block's request.
    fn booked(request: usize) -> u64 {
        if (17..=24).contains(&request) {
            24
        } else if request <= 512 {
            request.div_ceil(16) as u64 * 16
        } else {
            request as u64
        }
    }

    /// Makes an object with `make`, and checks its `sizeof` is the sum of
    /// `requests` (its blocks) and that the allocator booked exactly those.
    fn check(h: &mut Heap, what: &str, requests: &[usize], make: impl FnOnce(&mut Heap) -> Obj) {
        h.clear_free_lists();
        let before = h.alloc.stats().bytes_in_use;
        let o = make(h);
        let booked_now = h.alloc.stats().bytes_in_use - before;
        assert_eq!(h.sizeof(o).unwrap(), requests.iter().sum::<usize>(), "sizeof {what}");
        assert_eq!(booked_now, requests.iter().map(|&r| booked(r)).sum::<u64>(), "allocator bytes for {what}");
        h.decref(o);
    }

    /// The entries of dict `d`, in order, and each found by `dict_get`.
    fn dict_entries_checked(h: &mut Heap, d: Obj) -> Vec<(Obj, Obj)> {
        let out = dict_items(h, d);
        for &(k, v) in &out {
            assert_eq!(h.dict_get(d, k).unwrap(), v, "every entry found by lookup");
        }
        out
    }

    #[test]
    fn a_small_dict_keeps_its_table_inline_and_moves_it_in_and_out() {
        let mut h = heap();
        let base = blocks(&mut h);
        let d = h.dict_new().unwrap();
        let k: Vec<Obj> = (0..12).map(|i| s(&mut h, &format!("key{i}"))).collect();
        // Two entries in, both deleted, two others in: the third insertion
        // finds no room and compacts the inline table in place.
        h.dict_set(d, k[0], k[0]).unwrap();
        h.dict_set(d, k[1], k[1]).unwrap();
        h.dict_del(d, k[0]).unwrap();
        h.dict_del(d, k[1]).unwrap();
        h.dict_set(d, k[2], k[3]).unwrap();
        h.dict_set(d, k[4], k[5]).unwrap();
        assert_eq!(h.sizeof(d).unwrap(), 112, "still inline");
        assert_eq!(dict_entries_checked(&mut h, d), vec![(k[2], k[3]), (k[4], k[5])]);
        assert!(h.dict_get(d, k[0]).is_err() && h.dict_get(d, k[1]).is_err());
        // A third entry: a table of its own (8 slots, 5 entries), order kept.
        h.dict_set(d, k[6], k[7]).unwrap();
        assert_eq!(h.sizeof(d).unwrap(), 112 + 8 + 5 * 24);
        assert_eq!(dict_entries_checked(&mut h, d), vec![(k[2], k[3]), (k[4], k[5]), (k[6], k[7])]);
        // Filled up, then all but one deleted: the next insertion needs 3
        // slots, and the table comes back inline (its block freed).
        h.dict_set(d, k[8], k[8]).unwrap();
        h.dict_set(d, k[9], k[9]).unwrap();
        for key in [k[2], k[4], k[6], k[8]] {
            h.dict_del(d, key).unwrap();
        }
        h.dict_set(d, k[10], k[11]).unwrap();
        assert_eq!(h.sizeof(d).unwrap(), 112, "back inline");
        assert_eq!(dict_entries_checked(&mut h, d), vec![(k[9], k[9]), (k[10], k[11])]);
        // The dict holds k[9] twice (key and value), k[10] and k[11] once.
        let held: Vec<usize> = k.iter().map(|&key| h.refcount(key) - 1).collect();
        assert_eq!(held, [0, 0, 0, 0, 0, 0, 0, 0, 0, 2, 1, 1]);
        h.decref(d);
        for key in k {
            assert_eq!(h.refcount(key), 1, "the dict's references dropped");
            h.decref(key);
        }
        assert_baseline(&mut h, base);
    }

    #[test]
    fn sizeof_each_type_is_what_it_allocates() {
        let mut h = heap();
        let point = point_type(&mut h);
        // CPython 3.11: int 28 (ours: an i64, 24), float 24, str 'abc' 52 (ours 36).
        check(&mut h, "int", &[24], |h| h.int_new(1000).unwrap());
        check(&mut h, "float", &[24], |h| h.float_new(0.5).unwrap());
        check(&mut h, "str", &[32 + 3 + 1], |h| s(h, "abc"));
        check(&mut h, "str héllo", &[32 + 6 + 1], |h| s(h, "héllo"));
        // CPython: (1,) 48, (1, 2, 3) 64: the same as ours.
        check(&mut h, "1-tuple", &[48], |h| {
            let one = h.int_new(1).unwrap();
            h.tuple_new(&[one]).unwrap()
        });
        check(&mut h, "3-tuple", &[64], |h| {
            let one = h.int_new(1).unwrap();
            h.tuple_new(&[one, one, one]).unwrap()
        });
        // CPython: [] 56; [1] 88 (capacity 4). Ours: 64, two items inline
        // in that block; a third moves them to an array of their own.
        check(&mut h, "empty list", &[64], |h| h.list_new().unwrap());
        check(&mut h, "list of 1", &[64], |h| {
            let one = h.int_new(1).unwrap();
            list_of(h, &[one])
        });
        check(&mut h, "list of 2", &[64], |h| {
            let one = h.int_new(1).unwrap();
            list_of(h, &[one, one])
        });
        check(&mut h, "list of 3", &[64, 8 * 8], |h| {
            let one = h.int_new(1).unwrap();
            list_of(h, &[one, one, one])
        });
        // 100 appends: capacity grows 2 (inline), 8, 16, 24, 32, 40, 52, 64,
        // 76, 92, 108.
        check(&mut h, "list of 100", &[64, 108 * 8], |h| {
            let one = h.int_new(1).unwrap();
            list_of(h, &[one; 100])
        });
        // CPython: {} 64, {'a': 1} 184. Ours: 112, with room for a table of
        // 4 index slots (1 byte each, padded to 8) and 2 entries (24 bytes
        // each) inside the dict's block; the third entry moves the table to
        // a block of its own of 8 index slots (1 byte each, as CPython's for
        // tables up to 128 slots) and 5 entries.
        check(&mut h, "empty dict", &[112], |h| h.dict_new().unwrap());
        check(&mut h, "dict of 1", &[112], |h| {
            let d = h.dict_new().unwrap();
            let (k, v) = (s(h, "a"), h.int_new(1).unwrap());
            h.dict_set(d, k, v).unwrap();
            d
        });
        check(&mut h, "dict of 2", &[112], |h| {
            let d = h.dict_new().unwrap();
            for i in 0..2 {
                let k = h.int_new(i).unwrap();
                h.dict_set(d, k, k).unwrap();
            }
            d
        });
        check(&mut h, "dict of 3", &[112, 8 + 5 * 24], |h| {
            let d = h.dict_new().unwrap();
            for i in 0..3 {
                let k = h.int_new(i).unwrap();
                h.dict_set(d, k, k).unwrap();
            }
            d
        });
        // The 6th insertion finds no room: the table is rebuilt with at least
        // 5 * 3 slots, 16 slots and 10 entries (CPython's GROWTH_RATE).
        check(&mut h, "dict of 6", &[112, 16 + 10 * 24], |h| {
            let d = h.dict_new().unwrap();
            for i in 0..6 {
                let k = h.int_new(i).unwrap();
                h.dict_set(d, k, k).unwrap();
            }
            d
        });
        // CPython: a plain instance 56 (its __dict__ apart). Ours: 48 +
        // the payload + one inline value slot per attribute name the type
        // knows (Point: x, y, next), in one block.
        check(&mut h, "instance", &[48 + 16 + 3 * 8], |h| h.instance_new(point).unwrap());
        check(&mut h, "instance with an attribute", &[48 + 16 + 3 * 8], |h| {
            let p = h.instance_new(point).unwrap();
            let v = h.int_new(3).unwrap();
            h.setattr(p, b"x", v).unwrap();
            p
        });
        // A fourth name: the values move to a block of their own (6 slots:
        // twice the 3 inline), the inline slots stay in the instance's block.
        check(&mut h, "instance with a new attribute name", &[48 + 16 + 3 * 8, 6 * 8], |h| {
            let p = h.instance_new(point).unwrap();
            let v = h.int_new(3).unwrap();
            h.setattr(p, b"x", v).unwrap();
            h.setattr(p, b"w", v).unwrap();
            assert_eq!(h.getattr(p, b"x").unwrap(), v, "the inline values moved with the growth");
            p
        });
        // A type with no attribute names yet has no inline slots: its first
        // instance gets a values block of 4 when an attribute is set.
        let fresh = {
            let t = h.type_new(&HostTypeSpec { name: "Fresh".into(), payload_size: 8, ..Default::default() }).unwrap();
            h.check_type(t).unwrap()
        };
        check(&mut h, "first instance of a type", &[48 + 8, 4 * 8], |h| {
            let p = h.instance_new(fresh).unwrap();
            let v = h.int_new(3).unwrap();
            h.setattr(p, b"x", v).unwrap();
            p
        });
        // CPython: a module 72, a function 152; ours leave out their name and
        // attribute dict, which are objects of their own.
        let m = h.module_new(b"mod").unwrap();
        assert_eq!(h.sizeof(m).unwrap(), 48);
        let f = h.function_new(b"fn", 0, 0).unwrap();
        assert_eq!(h.sizeof(f).unwrap(), 64);
        // Immortals have a size too (CPython: None 16, True 28, () 40, '' 49).
        assert_eq!(h.sizeof(h.none()).unwrap(), 24);
        assert_eq!(h.sizeof(h.bool_obj(true)).unwrap(), 24);
        let empty_tuple = h.tuple_new(&[]).unwrap();
        assert_eq!(h.sizeof(empty_tuple).unwrap(), 40);
        let empty_str = s(&mut h, "");
        assert_eq!(h.sizeof(empty_str).unwrap(), 33);
        h.decref(m);
        h.decref(f);
    }

    #[test]
    fn deep_sizeof_counts_each_reachable_object_once_and_no_immortal() {
        let mut h = heap();
        let point = point_type(&mut h);
        let x = h.list_new().unwrap();
        let hello = s(&mut h, "hello");
        let l = list_of(&mut h, &[x, x, hello]);
        let expect = h.sizeof(l).unwrap() + h.sizeof(x).unwrap() + h.sizeof(hello).unwrap();
        assert_eq!(h.deep_sizeof(l).unwrap(), expect, "x counted once");

        let immortals = [h.int_new(1).unwrap(), h.none(), s(&mut h, "a"), h.tuple_new(&[]).unwrap(), h.bool_obj(false)];
        let li = list_of(&mut h, &immortals);
        assert_eq!(h.deep_sizeof(li).unwrap(), h.sizeof(li).unwrap(), "immortals are left out");
        assert_eq!(h.deep_sizeof(h.none()).unwrap(), 0);

        h.list_append(l, l).unwrap();
        assert_eq!(h.deep_sizeof(l).unwrap(), h.sizeof(l).unwrap() + h.sizeof(x).unwrap() + h.sizeof(hello).unwrap());

        let d = h.dict_new().unwrap();
        let big = h.int_new(5000).unwrap();
        let t = h.tuple_new(&[big, hello]).unwrap();
        h.dict_set(d, t, x).unwrap();
        let expect = [d, t, big, hello, x].iter().map(|&o| h.sizeof(o).unwrap()).sum::<usize>();
        assert_eq!(h.deep_sizeof(d).unwrap(), expect, "keys, their items and values");

        let p = h.instance_new(point).unwrap();
        h.setattr(p, b"x", d).unwrap();
        h.setattr(p, b"y", big).unwrap();
        let expect = h.sizeof(p).unwrap() + h.deep_sizeof(d).unwrap();
        assert_eq!(h.deep_sizeof(p).unwrap(), expect, "attribute values, not the type's attribute names");

        let m = h.module_new(b"mymodule").unwrap();
        h.setattr(m, b"data", d).unwrap();
        // The module, its name, its attribute dict with one entry, the key
        // "data" (its table inline), then d's world.
        let expect = 48 + (32 + 8 + 1) + 112 + (32 + 4 + 1) + h.deep_sizeof(d).unwrap();
        assert_eq!(h.deep_sizeof(m).unwrap(), expect);

        h.list_pop(l, 3).map(|o| h.decref(o)).unwrap();
        for o in [x, hello, l, li, d, big, t, p, m] {
            h.decref(o);
        }
    }
}

mod hash_and_equality {
    use super::*;

    #[test]
    fn numbers_compare_and_hash_across_types() {
        let mut h = heap();
        let one = h.int_new(1).unwrap();
        let onef = h.float_new(1.0).unwrap();
        let t = h.bool_obj(true);
        for (a, b) in [(one, onef), (onef, t), (one, t)] {
            assert!(h.equal(a, b).unwrap(), "1 == 1.0 == True");
            assert_eq!(h.hash(a).unwrap(), h.hash(b).unwrap());
        }
        assert_eq!(h.hash(one).unwrap(), 1);
        let minus_one = h.int_new(-1).unwrap();
        assert_eq!(h.hash(minus_one).unwrap(), -2, "hash(-1) == -2");
        let minus_two = h.int_new(-2).unwrap();
        assert!(!h.equal(minus_one, minus_two).unwrap(), "equal hashes, different values");
        let big = h.int_new(1 << 53).unwrap();
        let bigf = h.float_new((1u64 << 53) as f64).unwrap();
        let bigger = h.int_new((1 << 53) + 1).unwrap();
        assert!(h.equal(big, bigf).unwrap());
        assert!(!h.equal(bigger, bigf).unwrap(), "exact comparison, not through f64");
        let zero = h.int_new(0).unwrap();
        let negzero = h.float_new(-0.0).unwrap();
        assert!(h.equal(zero, negzero).unwrap());
        assert_eq!(h.hash(negzero).unwrap(), 0);
        let d = h.dict_new().unwrap();
        h.dict_set(d, one, one).unwrap();
        h.dict_set(d, t, zero).unwrap();
        assert_eq!(h.dict_len(d).unwrap(), 1, "True is the key 1");
        let mut pos = 0;
        assert_eq!(h.dict_next(d, &mut pos).unwrap(), Some((one, zero)), "the first key object stays");
        for o in [onef, big, bigf, bigger, negzero, d] {
            h.decref(o);
        }
    }

    #[test]
    fn tuple_hashes_equal_cpythons() {
        let mut h = heap();
        let one = h.int_new(1).unwrap();
        let two = h.int_new(2).unwrap();
        let (three, four) = (h.int_new(3).unwrap(), h.int_new(4).unwrap());
        let empty = h.tuple_new(&[]).unwrap();
        let t1 = h.tuple_new(&[one]).unwrap();
        let t12 = h.tuple_new(&[one, two]).unwrap();
        let t34 = h.tuple_new(&[three, four]).unwrap();
        let nested = h.tuple_new(&[one, two, t34]).unwrap();
        assert_eq!(h.hash(t12).unwrap(), -3550055125485641917);
        assert_eq!(h.hash(empty).unwrap(), 5740354900026072187);
        assert_eq!(h.hash(t1).unwrap(), -6644214454873602895);
        assert_eq!(h.hash(nested).unwrap(), 3794340727080330424);
        let onef = h.float_new(1.0).unwrap();
        let t1f = h.tuple_new(&[onef]).unwrap();
        assert_eq!(h.hash(t1f).unwrap(), h.hash(t1).unwrap(), "(1.0,) == (1,)");
        assert!(h.equal(t1f, t1).unwrap());
        for o in [t1, t12, t34, nested, onef, t1f] {
            h.decref(o);
        }
    }

    #[test]
    fn nan_is_unequal_to_itself_but_containers_compare_by_identity_first() {
        let mut h = heap();
        let nan = h.float_new(f64::NAN).unwrap();
        let nan2 = h.float_new(f64::NAN).unwrap();
        assert!(!h.equal(nan, nan).unwrap(), "x = nan; x == x is False");
        let a = list_of(&mut h, &[nan]);
        let b = list_of(&mut h, &[nan]);
        let c = list_of(&mut h, &[nan2]);
        assert!(h.equal(a, b).unwrap(), "[x] == [x]: the same object is equal");
        assert!(!h.equal(a, c).unwrap(), "[nan] != [another nan]");
        // A NaN key is found by identity only.
        let d = h.dict_new().unwrap();
        h.dict_set(d, nan, a).unwrap();
        h.dict_set(d, nan2, b).unwrap();
        assert_eq!(h.dict_len(d).unwrap(), 2);
        assert_eq!(h.dict_get(d, nan).unwrap(), a);
        for o in [nan, nan2, a, b, c, d] {
            h.decref(o);
        }
    }

    #[test]
    fn containers_compare_by_value_and_lists_and_dicts_are_unhashable() {
        let mut h = heap();
        let (x, y) = (s(&mut h, "x"), h.int_new(1000).unwrap());
        let d1 = h.dict_new().unwrap();
        let d2 = h.dict_new().unwrap();
        h.dict_set(d1, x, y).unwrap();
        h.dict_set(d1, y, x).unwrap();
        h.dict_set(d2, y, x).unwrap();
        h.dict_set(d2, x, y).unwrap();
        assert!(h.equal(d1, d2).unwrap(), "dict equality ignores order");
        let x2 = s(&mut h, "x");
        assert!(h.equal(x, x2).unwrap());
        assert_eq!(h.dict_get(d1, x2).unwrap(), y, "an equal str finds the key");
        let l = list_of(&mut h, &[x]);
        let t = h.tuple_new(&[l]).unwrap();
        for (o, name) in [(l, "list"), (d1, "dict"), (t, "list")] {
            assert_eq!(h.hash(o), Err(ObjError::Type(format!("unhashable type: '{name}'"))));
            assert!(matches!(h.dict_set(d2, o, x), Err(ObjError::Type(_))));
        }
        let lt = h.tuple_new(&[x]).unwrap();
        assert!(!h.equal(l, lt).unwrap(), "[x] != (x,)");
        for o in [x, y, d1, d2, x2, l, t, lt] {
            h.decref(o);
        }
    }

    #[test]
    fn deep_tuples_hash_without_recursion() {
        on_small_stack(|| {
            let mut h = heap();
            let mut t = h.int_new(1000).unwrap();
            for _ in 0..20_000 {
                let o = h.tuple_new(&[t]).unwrap();
                h.decref(t);
                t = o;
            }
            assert!(matches!(h.hash(t), Err(ObjError::Recursion(_))), "deeper than the limit of 10,000");
            let d = h.dict_new().unwrap();
            assert!(matches!(h.dict_set(d, t, t), Err(ObjError::Recursion(_))));
            h.decref(d);
            h.decref(t);
        });
    }
}

mod repr {
    use super::*;

    #[test]
    fn every_type_reprs_as_python() {
        let mut h = heap();
        let point = point_type(&mut h);
        let cases: Vec<(Obj, &str)> = vec![
            (h.none(), "None"),
            (h.bool_obj(true), "True"),
            (h.bool_obj(false), "False"),
            (h.int_new(-1234567890123).unwrap(), "-1234567890123"),
            (h.float_new(1e16).unwrap(), "1e+16"),
            (h.float_new(0.1).unwrap(), "0.1"),
            (h.float_new(1.5).unwrap(), "1.5"),
            (h.float_new(-1e-7).unwrap(), "-1e-07"),
            (h.float_new(f64::INFINITY).unwrap(), "inf"),
            (h.float_new(f64::NAN).unwrap(), "nan"),
            (h.float_new(-0.0).unwrap(), "-0.0"),
            (s(&mut h, "plain"), "'plain'"),
            (s(&mut h, "it's"), r#""it's""#),
            (s(&mut h, r#"it's "x""#), r#"'it\'s "x"'"#),
            (s(&mut h, "a\\b\t\n\r\u{1}\u{7f}"), r"'a\\b\t\n\r\x01\x7f'"),
            (s(&mut h, "\u{a0}é€"), r"'\xa0é€'"),
            (h.tuple_new(&[]).unwrap(), "()"),
            (h.list_new().unwrap(), "[]"),
            (h.dict_new().unwrap(), "{}"),
        ];
        for &(o, want) in &cases {
            assert_eq!(h.repr(o).unwrap(), want);
        }
        let one = h.int_new(1).unwrap();
        let t1 = h.tuple_new(&[one]).unwrap();
        assert_eq!(h.repr(t1).unwrap(), "(1,)");
        let inner = list_of(&mut h, &[one, t1]);
        let d = h.dict_new().unwrap();
        let k = s(&mut h, "k\n");
        h.dict_set(d, k, inner).unwrap();
        h.dict_set(d, t1, h.none()).unwrap();
        assert_eq!(h.repr(d).unwrap(), r"{'k\n': [1, (1,)], (1,): None}");
        // a = []; a.append(a) -> [[...]]; b = []; b.append([b]) -> [[[...]]]
        let a = h.list_new().unwrap();
        h.list_append(a, a).unwrap();
        assert_eq!(h.repr(a).unwrap(), "[[...]]");
        let b = h.list_new().unwrap();
        let bb = list_of(&mut h, &[b]);
        h.list_append(b, bb).unwrap();
        assert_eq!(h.repr(b).unwrap(), "[[[...]]]");
        // d['self'] = d -> {..., 'self': {...}}
        let me = s(&mut h, "self");
        h.dict_set(d, me, d).unwrap();
        assert_eq!(h.repr(d).unwrap(), r"{'k\n': [1, (1,)], (1,): None, 'self': {...}}");
        // The same list twice (not recursive) is written out twice.
        let twice = list_of(&mut h, &[inner, inner]);
        assert_eq!(h.repr(twice).unwrap(), "[[1, (1,)], [1, (1,)]]");
        let m = h.module_new(b"os").unwrap();
        assert_eq!(h.repr(m).unwrap(), "<module 'os'>");
        let f = h.function_new(b"callback", 0, 0).unwrap();
        assert_eq!(h.repr(f).unwrap(), format!("<function callback at {:#x}>", f.as_ptr() as usize));
        let p = h.instance_new(point).unwrap();
        assert_eq!(h.repr(p).unwrap(), format!("<Point object at {:#x}>", p.as_ptr() as usize));
        // Break the cycles, then drop.
        h.list_pop(a, 0).map(|o| h.decref(o)).unwrap();
        h.list_pop(bb, 0).map(|o| h.decref(o)).unwrap();
        h.dict_del(d, me).unwrap();
        for (o, _) in cases {
            h.decref(o);
        }
        for o in [t1, inner, d, k, a, b, bb, me, twice, m, f, p] {
            h.decref(o);
        }
    }
}

mod dict_order {
    use super::*;

    fn keys(h: &Heap, d: Obj) -> Vec<i64> {
        dict_items(h, d).into_iter().map(|(k, _)| h.int_value(k).unwrap()).collect()
    }

    #[test]
    fn insertion_order_survives_deletes_reinserts_and_resizes() {
        let mut h = heap();
        let base = blocks(&mut h);
        let d = h.dict_new().unwrap();
        let mut model: Vec<i64> = Vec::new();
        let set = |h: &mut Heap, model: &mut Vec<i64>, k: i64| {
            let key = h.int_new(k).unwrap();
            let value = h.int_new(-k).unwrap();
            h.dict_set(d, key, value).unwrap();
            h.decref(key);
            h.decref(value);
            if !model.contains(&k) {
                model.push(k);
            }
        };
        for k in 0..1000 {
            set(&mut h, &mut model, k * 7919 % 1000 + 300);
        }
        assert_eq!(keys(&h, d), model);
        // Delete every third key, replace a few values, reinsert some deleted.
        for k in model.clone().iter().step_by(3) {
            let key = h.int_new(*k).unwrap();
            h.dict_del(d, key).unwrap();
            assert!(matches!(h.dict_del(d, key), Err(ObjError::Key(_))));
            h.decref(key);
        }
        model = model.into_iter().enumerate().filter(|(i, _)| i % 3 != 0).map(|(_, k)| k).collect();
        for k in [301, 302, 5000, 303] {
            set(&mut h, &mut model, k);
        }
        assert_eq!(keys(&h, d), model);
        // Enough churn to force resizes that compact the holes.
        for round in 0..5 {
            for k in model.clone().iter().take(100) {
                let key = h.int_new(*k).unwrap();
                h.dict_del(d, key).unwrap();
                h.decref(key);
            }
            model.drain(..100);
            for k in 0..100 {
                set(&mut h, &mut model, 10_000 * (round + 1) + k);
            }
            assert_eq!(keys(&h, d), model);
        }
        assert_eq!(h.dict_len(d).unwrap(), model.len());
        for &k in &model {
            let key = h.int_new(k).unwrap();
            let v = h.dict_get(d, key).unwrap();
            assert_eq!(h.int_value(v).unwrap(), -k, "every key still found");
            h.decref(key);
        }
        let missing = h.int_new(301_000).unwrap();
        assert!(matches!(h.dict_get(d, missing), Err(ObjError::Key(_))));
        h.decref(missing);
        h.decref(d);
        assert_baseline(&mut h, base);
    }

    /// Index slots are 1, 2 or 4 bytes by table size (128 and 2^15 slots
    /// are the limits): every key stays found across both widenings, and
    /// entry numbers past each narrow width's range are stored whole.
    #[test]
    fn every_index_width_finds_every_key() {
        let mut h = heap();
        let base = blocks(&mut h);
        let d = h.dict_new().unwrap();
        let n = 30_000i64; // the last table: 65,536 slots, 4-byte indices
        for k in 0..n {
            let key = h.int_new(k * 31).unwrap();
            h.dict_set(d, key, key).unwrap();
            h.decref(key);
            // Just past each limit of the narrower widths, all keys so far.
            if k == 86 || k == 21_846 {
                for j in 0..=k {
                    let key = h.int_new(j * 31).unwrap();
                    let v = h.dict_get(d, key).unwrap();
                    assert_eq!(h.int_value(v).unwrap(), j * 31, "key {j} of {k}");
                    h.decref(key);
                }
            }
        }
        assert_eq!(keys(&h, d), (0..n).map(|k| k * 31).collect::<Vec<_>>());
        for k in (0..n).step_by(2) {
            let key = h.int_new(k * 31).unwrap();
            h.dict_del(d, key).unwrap();
            h.decref(key);
        }
        for k in 0..n {
            let key = h.int_new(k * 31).unwrap();
            assert_eq!(h.dict_get(d, key).is_ok(), k % 2 == 1, "key {k} after the deletes");
            h.decref(key);
        }
        h.decref(d);
        assert_baseline(&mut h, base);
    }

    #[test]
    fn string_keys_replace_in_place() {
        let mut h = heap();
        let d = h.dict_new().unwrap();
        let (a, b, a2) = (s(&mut h, "alpha"), s(&mut h, "beta"), s(&mut h, "alpha"));
        let (one, two, three) = (h.int_new(1).unwrap(), h.int_new(2).unwrap(), h.int_new(3).unwrap());
        h.dict_set(d, a, one).unwrap();
        h.dict_set(d, b, two).unwrap();
        h.dict_set(d, a2, three).unwrap();
        assert_eq!(h.repr(d).unwrap(), "{'alpha': 3, 'beta': 2}");
        assert_eq!(h.refcount(a), 2, "the first key object is kept");
        assert_eq!(h.refcount(a2), 1);
        for o in [d, a, b, a2] {
            h.decref(o);
        }
    }
}

mod lists {
    use super::*;

    fn values(h: &Heap, l: Obj) -> Vec<i64> {
        h.list_items(l).unwrap().iter().map(|&o| h.int_value(o).unwrap()).collect()
    }

    #[test]
    fn insert_and_pop_at_the_edges() {
        let mut h = heap();
        let base = blocks(&mut h);
        let l = h.list_new().unwrap();
        let ints: Vec<Obj> = (0..6).map(|i| h.int_new(1000 + i).unwrap()).collect();
        assert!(matches!(h.list_pop(l, 0), Err(ObjError::Index(_))), "pop from an empty list");
        h.list_insert(l, 0, ints[0]).unwrap(); // into an empty list
        h.list_insert(l, 0, ints[1]).unwrap(); // at the front
        h.list_insert(l, 2, ints[2]).unwrap(); // at len: appends
        h.list_insert(l, 99, ints[3]).unwrap(); // past the end: appends, as Python
        h.list_insert(l, 1, ints[4]).unwrap(); // in the middle
        assert_eq!(values(&h, l), [1001, 1004, 1000, 1002, 1003]);
        assert!(matches!(h.list_get(l, 5), Err(ObjError::Index(_))));
        assert!(matches!(h.list_set(l, 5, ints[5]), Err(ObjError::Index(_))));
        assert_eq!(h.refcount(ints[5]), 1, "a failed set takes no reference");
        h.list_set(l, 4, ints[5]).unwrap();
        assert_eq!(h.refcount(ints[3]), 1, "the replaced item's reference is dropped");
        let last = h.list_pop(l, 4).unwrap();
        assert_eq!(last, ints[5]);
        assert_eq!(h.refcount(last), 2, "pop hands the list's reference to the caller");
        h.decref(last);
        let first = h.list_pop(l, 0).unwrap();
        assert_eq!(first, ints[1]);
        h.decref(first);
        let mid = h.list_pop(l, 1).unwrap();
        assert_eq!(mid, ints[0]);
        h.decref(mid);
        assert_eq!(values(&h, l), [1004, 1002]);
        assert!(matches!(h.list_pop(l, 2), Err(ObjError::Index(_))));
        let one = h.int_new(1).unwrap();
        assert!(matches!(h.list_append(one, one), Err(ObjError::Type(_))), "append to an int");
        for o in ints {
            h.decref(o);
        }
        h.decref(l);
        assert_baseline(&mut h, base);
    }
}

mod strings {
    use super::*;

    #[test]
    fn interned_strings_are_shared_and_their_table_reference_is_not_counted() {
        let mut h = heap();
        let base = blocks(&mut h);
        let a = h.str_intern(b"interned text").unwrap();
        let b = h.str_intern(b"interned text").unwrap();
        assert_eq!(a, b, "the same object");
        assert!(h.is_interned(a));
        assert_eq!(h.refcount(a), 2, "exactly the callers' references");
        let plain = s(&mut h, "interned text");
        assert_ne!(plain, a, "str_new does not intern");
        assert!(!h.is_interned(plain));
        assert!(h.equal(plain, a).unwrap());
        h.decref(plain);
        h.decref(a);
        h.decref(b);
        assert_eq!(blocks(&mut h), base, "the interned string died with its last reference");
        let again = h.str_intern(b"interned text").unwrap();
        assert_eq!(h.refcount(again), 1, "interned anew");
        h.decref(again);
        assert_eq!(blocks(&mut h), base);
        let c = h.str_intern(b"c").unwrap();
        assert!(h.is_immortal(c), "one-character ASCII strings are immortal singletons");
        assert_eq!(c, s(&mut h, "c"));
        assert!(matches!(h.str_new(b"\xff"), Err(ObjError::InvalidArgument(_))), "invalid UTF-8");
        assert_baseline(&mut h, base);
    }

    #[test]
    fn small_ints_are_cached_in_the_configured_range() {
        let mut h = heap();
        for v in [-5, 0, 7, 256] {
            let a = h.int_new(v).unwrap();
            assert_eq!(a, h.int_new(v).unwrap(), "{v} is cached");
            assert_eq!(h.refcount(a), IMMORTAL_REFCNT);
            h.incref(a);
            h.decref(a);
            h.decref(a);
            assert_eq!(h.refcount(a), IMMORTAL_REFCNT, "incref/decref do nothing");
        }
        for v in [-6, 257] {
            let (a, b) = (h.int_new(v).unwrap(), h.int_new(v).unwrap());
            assert_ne!(a, b, "{v} is not cached");
            assert_eq!(h.refcount(a), 1);
            h.decref(a);
            h.decref(b);
        }
        // CPython 3.15 caches up to 1024.
        let mut h = heap_with(HeapConfig { small_int_max: 1024, ..HeapConfig::default() });
        let a = h.int_new(1000).unwrap();
        assert_eq!(a, h.int_new(1000).unwrap());
        assert!(h.is_immortal(a));
    }
}

mod free_lists {
    use super::*;

    #[test]
    fn dead_objects_are_refused_reused_and_cleared() {
        let mut h = heap_with(HeapConfig { float_free_list: 3, int_free_list: 4, ..HeapConfig::default() });
        let base = blocks(&mut h);
        let one = h.int_new(1).unwrap();
        let objs = [
            h.float_new(1.5).unwrap(),
            h.list_new().unwrap(),
            h.dict_new().unwrap(),
            h.tuple_new(&[one, one]).unwrap(),
            h.int_new(1000).unwrap(),
        ];
        let addrs: Vec<*const u8> = objs.iter().map(|o| o.as_ptr() as *const u8).collect();
        for o in objs {
            h.decref(o);
        }
        for &p in &addrs {
            assert!(matches!(h.check(p), Err(ObjError::InvalidPointer(_))), "a dead object is refused");
            assert!(h.is_dead_object(p));
        }
        let each_one = FreeListLengths { floats: 1, ints: 1, tuples: 1, lists: 1, dicts: 1 };
        assert_eq!(h.free_list_lengths(), each_one);
        let again = [
            h.float_new(2.5).unwrap(),
            h.list_new().unwrap(),
            h.dict_new().unwrap(),
            h.tuple_new(&[one, one]).unwrap(),
            h.int_new(-2000).unwrap(),
        ];
        for (o, &p) in again.iter().zip(&addrs) {
            assert_eq!(o.as_ptr() as *const u8, p, "reused from its free list");
            assert_eq!(h.check(p).unwrap(), *o);
            assert_eq!(h.refcount(*o), 1);
        }
        assert_eq!(h.float_value(again[0]).unwrap(), 2.5);
        assert_eq!(h.list_len(again[1]).unwrap(), 0);
        assert_eq!(h.dict_len(again[2]).unwrap(), 0);
        assert_eq!(h.int_value(again[4]).unwrap(), -2000);
        for o in again {
            h.decref(o);
        }
        // The float free list keeps at most 3.
        let floats: Vec<Obj> = (0..10).map(|i| h.float_new(i as f64).unwrap()).collect();
        for f in floats {
            h.decref(f);
        }
        // The int free list at most 4, whichever way an int dies: its last
        // reference dropped, or freed with the list holding it.
        let ints: Vec<Obj> = (0..6).map(|i| h.int_new(5000 + i).unwrap()).collect();
        let list = h.list_new().unwrap();
        for &i in &ints {
            h.list_append(list, i).unwrap();
        }
        assert_eq!(h.free_list_lengths().ints, 0, "the first new int took the dead one");
        for &i in &ints {
            h.decref(i);
        }
        assert_eq!(h.free_list_lengths().ints, 0, "alive in the list");
        h.decref(list);
        assert_eq!(h.free_list_lengths(), FreeListLengths { floats: 3, ints: 4, ..each_one });
        assert_eq!(h.clear_free_lists(), 10);
        assert_eq!(h.free_list_lengths(), FreeListLengths::default());
        assert_eq!(h.clear_free_lists(), 0);
        assert_baseline(&mut h, base);
    }
}

mod lifetime {
    use super::*;

    #[test]
    fn every_object_is_freed_when_its_last_reference_goes() {
        let mut h = heap();
        let point = point_type(&mut h);
        let base = blocks(&mut h);
        let d = h.dict_new().unwrap();
        for i in 0..300 {
            let k = s(&mut h, &format!("name{i}"));
            let f = h.float_new(i as f64 / 3.0).unwrap();
            let big = h.int_new(i * 1_000_000).unwrap();
            let t = h.tuple_new(&[k, f, big]).unwrap();
            let l = list_of(&mut h, &[t, t, f]);
            let p = h.instance_new(point).unwrap();
            h.setattr(p, b"x", l).unwrap();
            let m = h.module_new(b"m").unwrap();
            h.setattr(m, b"p", p).unwrap();
            let v = list_of(&mut h, &[m, p, l]);
            h.dict_set(d, k, v).unwrap();
            for o in [k, f, big, t, l, p, m, v] {
                h.decref(o);
            }
        }
        let c = h.deepcopy(d).unwrap();
        assert_eq!(h.dict_len(c).unwrap(), 300);
        let c2 = h.copy(c).unwrap();
        h.decref(c);
        h.decref(c2);
        assert!(h.alloc.stats().blocks_in_use > base + 2000);
        h.decref(d);
        assert_baseline(&mut h, base);
    }
}

/// A payload that may hold references or resources (the type has callbacks)
/// is never duplicated bitwise: copying such an instance is refused.
#[test]
fn instances_of_types_with_callbacks_are_not_copied() {
    use refcount_object::HostHooks;
    let mut h = heap();
    let spec = HostTypeSpec {
        name: "Node".into(),
        payload_size: 8,
        hooks: HostHooks { clear: 1, ..Default::default() },
        ..Default::default()
    };
    let t = h.type_new(&spec).unwrap();
    let id = h.check_type(t).unwrap();
    let node = h.instance_new(id).unwrap();
    let list = h.list_new().unwrap();
    h.list_append(list, node).unwrap();
    for result in [h.copy(node), h.deepcopy(node), h.deepcopy(list)] {
        match result {
            Err(ObjError::Type(m)) => assert!(m.starts_with("cannot copy 'Node' object"), "{m}"),
            other => panic!("expected a Type error, got {other:?}"),
        }
    }
    // The shallow copy of the list only shares the node: allowed.
    let shallow = h.copy(list).unwrap();
    h.decref(shallow);
    h.decref(list);
    assert_eq!(h.refcount(node), 1);
}
