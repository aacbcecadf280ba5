//! The namespace operations on a heap of their own (no C, no host code):
//! bindings, hidden names, user names, `%whos` (snapshots), `%xdel`,
//! reset by pattern, and who keeps an object alive.

use gc_generations::{Collector, Profile};
use namespace_cleaner::{name_pattern, Namespaces, Reach};
use obmalloc::{Allocator, Config};
use refcount_object::{Heap, HeapConfig, Obj, ObjError};

fn heap() -> Box<Heap> {
    Heap::new(Allocator::new(Config::default()), HeapConfig::default()).unwrap()
}

/// A callback for functions: never called here.
const NATIVE: usize = 1;

fn names(heap: &mut Heap, ns: &Namespaces, o: Obj, filter: Option<&str>) -> Vec<String> {
    ns.who(heap, o, filter)
        .unwrap()
        .into_iter()
        .map(|s| String::from_utf8(heap.str_bytes(s).unwrap().to_vec()).unwrap())
        .collect()
}

/// Binds a new object made by `make` and drops the caller's reference.
fn bind(heap: &mut Heap, ns: &Namespaces, o: Obj, name: &str, make: impl FnOnce(&mut Heap) -> Obj) -> Obj {
    let v = make(heap);
    ns.set(heap, o, name.as_bytes(), v).unwrap();
    heap.decref(v);
    v
}

fn list_of_ints(heap: &mut Heap, n: i64) -> Obj {
    let l = heap.list_new().unwrap();
    for i in 0..n {
        let v = heap.int_new(1000 + i).unwrap();
        heap.list_append(l, v).unwrap();
        heap.decref(v);
    }
    l
}

/// Addresses vary from run to run.
fn mask_addresses(text: &str) -> String {
    regex::Regex::new("0x[0-9a-f]+").unwrap().replace_all(text, "0x…").into_owned()
}

#[test]
fn set_get_del_and_unknown_names() {
    let mut heap = heap();
    let mut nss = Namespaces::new();
    let ns = nss.create(&mut heap, b"main").unwrap();
    let v = bind(&mut heap, &nss, ns, "x", |h| h.int_new(12345).unwrap());
    assert_eq!(nss.get(&mut heap, ns, b"x").unwrap(), v);
    assert_eq!(heap.refcount(v), 1, "the namespace holds the only reference");
    nss.del(&mut heap, ns, b"x").unwrap();
    match nss.get(&mut heap, ns, b"x") {
        Err(ObjError::Key(m)) => assert_eq!(m, "name 'x' is not defined in namespace 'main'"),
        other => panic!("{other:?}"),
    }
    assert!(matches!(nss.del(&mut heap, ns, b"x"), Err(ObjError::Key(_))));
    assert!(matches!(nss.hide(&mut heap, ns, b"x"), Err(ObjError::Key(_))));
    // Not a namespace: a Type error.
    let l = heap.list_new().unwrap();
    match nss.get(&mut heap, l, b"x") {
        Err(ObjError::Type(m)) => assert_eq!(m, "expected a namespace, got list"),
        other => panic!("{other:?}"),
    }
    heap.decref(l);
    assert_eq!(heap.type_of(ns).name(), "namespace");
    heap.decref(ns);
}

#[test]
fn user_names_follow_the_seed_rule_and_hidden_names_come_back_when_rebound() {
    let mut heap = heap();
    let mut nss = Namespaces::new();
    let ns = nss.create(&mut heap, b"nb").unwrap();
    nss.add_notebook_names(&mut heap, ns, NATIVE).unwrap();
    for hidden in ["In", "Out", "get_ipython", "exit", "quit"] {
        nss.get(&mut heap, ns, hidden.as_bytes()).unwrap();
    }
    assert_eq!(names(&mut heap, &nss, ns, None), Vec::<String>::new());
    bind(&mut heap, &nss, ns, "b", |h| h.float_new(0.5).unwrap());
    bind(&mut heap, &nss, ns, "a", |h| h.list_new().unwrap());
    bind(&mut heap, &nss, ns, "_private", |h| h.list_new().unwrap());
    bind(&mut heap, &nss, ns, "math", |h| h.module_new(b"math").unwrap());
    bind(&mut heap, &nss, ns, "helper", |h| h.function_new(b"helper", NATIVE, 0).unwrap());
    assert_eq!(names(&mut heap, &nss, ns, None), ["a", "b"]);
    assert_eq!(names(&mut heap, &nss, ns, Some("float")), ["b"]);
    assert_eq!(names(&mut heap, &nss, ns, Some("list, float")), ["a", "b"]);
    assert_eq!(names(&mut heap, &nss, ns, Some("dict")), Vec::<String>::new());

    // Hidden while bound to the same object (setting it again changes nothing).
    nss.hide(&mut heap, ns, b"a").unwrap();
    assert_eq!(names(&mut heap, &nss, ns, None), ["b"]);
    let a = nss.get(&mut heap, ns, b"a").unwrap();
    nss.set(&mut heap, ns, b"a", a).unwrap();
    assert_eq!(names(&mut heap, &nss, ns, None), ["b"]);
    // Rebound to another object: a user name again, and the hidden table
    // no longer holds the old object.
    let old_in = nss.get(&mut heap, ns, b"In").unwrap();
    heap.incref(old_in);
    assert_eq!(heap.refcount(old_in), 3, "binding + hidden table + ours");
    bind(&mut heap, &nss, ns, "In", |h| h.int_new(7777).unwrap());
    assert_eq!(names(&mut heap, &nss, ns, None), ["In", "b"]);
    assert_eq!(heap.refcount(old_in), 1, "only ours is left");
    heap.decref(old_in);
    heap.decref(ns);
}

#[test]
fn whos_table_has_ipythons_layout_and_a_size_column() {
    let mut heap = heap();
    let mut nss = Namespaces::new();
    let ns = nss.create(&mut heap, b"main").unwrap();
    nss.add_notebook_names(&mut heap, ns, NATIVE).unwrap();
    let shared = bind(&mut heap, &nss, ns, "numbers", |h| list_of_ints(h, 100));
    bind(&mut heap, &nss, ns, "also_numbers", |h| {
        let l = h.list_new().unwrap();
        h.list_append(l, shared).unwrap();
        l
    });
    bind(&mut heap, &nss, ns, "config", |h| {
        let d = h.dict_new().unwrap();
        for (k, v) in [("alpha", 1.5), ("beta", 2.5)] {
            let k = h.str_new(k.as_bytes()).unwrap();
            let v = h.float_new(v).unwrap();
            h.dict_set(d, k, v).unwrap();
            h.decref(k);
            h.decref(v);
        }
        d
    });
    bind(&mut heap, &nss, ns, "text", |h| {
        h.str_new("line one\nline two, which is long enough to be cut in the middle".as_bytes()).unwrap()
    });
    bind(&mut heap, &nss, ns, "ratio", |h| h.float_new(0.1).unwrap());
    bind(&mut heap, &nss, ns, "small", |h| h.int_new(7).unwrap());
    bind(&mut heap, &nss, ns, "pair", |h| {
        let a = h.int_new(1).unwrap();
        let t = h.tuple_new(&[a, a]).unwrap();
        h.decref(a);
        t
    });
    bind(&mut heap, &nss, ns, "math", |h| h.module_new(b"math").unwrap());
    let table = nss.whos(&mut heap, ns).unwrap();
    insta::assert_snapshot!("whos", table);

    // Sizes: each variable's is pymem_deep_sizeof's; the total is the union.
    let numbers_size = heap.deep_sizeof(shared).unwrap() as u64;
    assert_eq!(Reach::new().add(&heap, shared).unwrap(), numbers_size);
    let also = nss.get(&mut heap, ns, b"also_numbers").unwrap();
    assert_eq!(Reach::new().add(&heap, also).unwrap(), heap.deep_sizeof(also).unwrap() as u64);
    let mut union = Reach::new();
    union.add(&heap, shared).unwrap();
    let extra = union.add(&heap, also).unwrap();
    assert_eq!(extra, heap.sizeof(also).unwrap() as u64, "the shared list is counted once");
    heap.decref(ns);
}

#[test]
fn an_empty_namespace_says_so() {
    let mut heap = heap();
    let mut nss = Namespaces::new();
    let ns = nss.create(&mut heap, b"main").unwrap();
    nss.add_notebook_names(&mut heap, ns, NATIVE).unwrap();
    assert_eq!(nss.whos(&mut heap, ns).unwrap(), "Interactive namespace is empty.\n");
    heap.decref(ns);
}

#[test]
fn xdel_unbinds_the_object_everywhere_and_from_the_output_history() {
    let mut heap = heap();
    let mut nss = Namespaces::new();
    let one = nss.create(&mut heap, b"one").unwrap();
    let two = nss.create(&mut heap, b"two").unwrap();
    nss.add_notebook_names(&mut heap, two, NATIVE).unwrap();
    let big = bind(&mut heap, &nss, one, "big", |h| list_of_ints(h, 10));
    nss.set(&mut heap, one, b"alias", big).unwrap();
    nss.set(&mut heap, two, b"copy_of_big", big).unwrap();
    let out = nss.get(&mut heap, two, b"Out").unwrap();
    let key = heap.int_new(3).unwrap();
    heap.dict_set(out, key, big).unwrap();
    bind(&mut heap, &nss, one, "other", |h| h.list_new().unwrap());
    assert_eq!(heap.refcount(big), 4);

    let base = heap.alloc.stats().bytes_in_use;
    let removed = nss.xdel(&mut heap, one, b"big").unwrap();
    assert_eq!(removed, 3);
    assert!(heap.alloc.stats().bytes_in_use < base, "the list and its ints are freed");
    assert_eq!(names(&mut heap, &nss, one, None), ["other"]);
    assert_eq!(names(&mut heap, &nss, two, None), Vec::<String>::new());
    assert_eq!(heap.dict_len(out).unwrap(), 0);
    assert!(matches!(nss.xdel(&mut heap, one, b"big"), Err(ObjError::Key(_))));
    heap.decref(key);
    heap.decref(one);
    heap.decref(two);
}

#[test]
fn reset_by_pattern_searches_names_and_a_bad_pattern_changes_nothing() {
    let mut heap = heap();
    let mut nss = Namespaces::new();
    let ns = nss.create(&mut heap, b"main").unwrap();
    nss.add_notebook_names(&mut heap, ns, NATIVE).unwrap();
    for name in ["train_x", "train_y", "test_x", "model", "_cache"] {
        bind(&mut heap, &nss, ns, name, |h| list_of_ints(h, 3));
    }
    bind(&mut heap, &nss, ns, "np", |h| h.module_new(b"numpy").unwrap());
    match name_pattern("train(") {
        Err(ObjError::InvalidArgument(m)) => {
            assert!(m.starts_with("invalid regex \"train(\": "), "{m}");
            assert!(m.contains("unclosed group"), "{m}");
        }
        other => panic!("{other:?}"),
    }
    // re.search: anywhere in the name, not anchored.
    let pattern = name_pattern("_x$").unwrap();
    assert_eq!(nss.remove_user_names(&mut heap, ns, Some(&pattern)).unwrap(), 2);
    assert_eq!(names(&mut heap, &nss, ns, None), ["model", "train_y"]);
    let pattern = name_pattern("rain").unwrap();
    assert_eq!(nss.remove_user_names(&mut heap, ns, Some(&pattern)).unwrap(), 1);
    assert_eq!(nss.remove_user_names(&mut heap, ns, None).unwrap(), 1);
    assert_eq!(names(&mut heap, &nss, ns, None), Vec::<String>::new());
    // What is not a user name stays.
    for kept in ["_cache", "np", "In", "Out", "get_ipython", "exit", "quit"] {
        nss.get(&mut heap, ns, kept.as_bytes()).unwrap();
    }
    heap.decref(ns);
}

#[test]
fn reset_and_a_full_collection_bring_bytes_in_use_back_to_the_start() {
    let mut heap = heap();
    let mut nss = Namespaces::new();
    let mut collector = Collector::new(Profile::Cpython311);
    let ns = nss.create(&mut heap, b"main").unwrap();
    nss.add_notebook_names(&mut heap, ns, NATIVE).unwrap();
    bind(&mut heap, &nss, ns, "math", |h| h.module_new(b"math").unwrap());
    collector.collect_without_host(&mut heap, 2);
    let start = heap.alloc.stats();
    bind(&mut heap, &nss, ns, "a", |h| list_of_ints(h, 10_000));
    bind(&mut heap, &nss, ns, "c", |h| {
        let d = h.dict_new().unwrap();
        let k = h.str_new(b"self").unwrap();
        h.dict_set(d, k, d).unwrap();
        h.decref(k);
        d
    });
    assert_eq!(nss.remove_user_names(&mut heap, ns, None).unwrap(), 2);
    assert_eq!(collector.collect_without_host(&mut heap, 2), 1, "the cycle");
    heap.alloc.release_free_arenas();
    assert_eq!(heap.alloc.stats().bytes_in_use, start.bytes_in_use);
    nss.get(&mut heap, ns, b"math").unwrap();
    heap.decref(ns);
}

#[test]
fn why_alive_shows_every_shortest_chain() {
    let mut heap = heap();
    let mut nss = Namespaces::new();
    let main = nss.create(&mut heap, b"main").unwrap();
    let other = nss.create(&mut heap, b"other").unwrap();
    let data = bind(&mut heap, &nss, main, "data", |h| list_of_ints(h, 3));
    // keep = {'x': [data]} in the other namespace
    bind(&mut heap, &nss, other, "keep", |h| {
        let inner = h.list_new().unwrap();
        h.list_append(inner, data).unwrap();
        let d = h.dict_new().unwrap();
        let k = h.str_new(b"x").unwrap();
        h.dict_set(d, k, inner).unwrap();
        h.decref(k);
        h.decref(inner);
        d
    });
    // ... and the host holds one reference of its own.
    heap.incref(data);
    let mut no_host = |_: Obj, _: refcount_object::HostHooks, _: &mut Vec<Obj>| {};
    let text = nss.why_alive(&mut heap, main, b"data", &mut no_host).unwrap();
    insta::assert_snapshot!("why_alive", mask_addresses(&text));
    heap.decref(data);
    let text = nss.why_alive(&mut heap, main, b"data", &mut no_host).unwrap();
    assert!(!text.contains("outside"), "{text}");
    let small = bind(&mut heap, &nss, main, "small", |h| h.int_new(5).unwrap());
    assert!(heap.is_immortal(small));
    let text = nss.why_alive(&mut heap, main, b"small", &mut no_host).unwrap();
    assert!(text.contains("is immortal"), "{text}");
    heap.decref(main);
    heap.decref(other);
}

/// A str held as a dict key: the collector's traversal skips the keys of a
/// str-keyed dict (as CPython's `dict_traverse`), but `why_alive` must still
/// find the dict among its referrers.
#[test]
fn why_alive_finds_a_dict_holding_a_str_as_its_key() {
    let mut heap = heap();
    let mut nss = Namespaces::new();
    let main = nss.create(&mut heap, b"main").unwrap();
    let key = bind(&mut heap, &nss, main, "key", |h| h.str_new(b"a long enough key").unwrap());
    bind(&mut heap, &nss, main, "table", |h| {
        let d = h.dict_new().unwrap();
        let one = h.int_new(1).unwrap();
        h.dict_set(d, key, one).unwrap();
        d
    });
    let mut no_host = |_: Obj, _: refcount_object::HostHooks, _: &mut Vec<Obj>| {};
    let text = nss.why_alive(&mut heap, main, b"key", &mut no_host).unwrap();
    assert!(text.contains("table.<key>"), "{text}");
    heap.decref(main);
}

#[test]
fn frozen_namespaces_are_found_by_xdel() {
    let mut heap = heap();
    let mut nss = Namespaces::new();
    let mut collector = Collector::new(Profile::Cpython311);
    let old = nss.create(&mut heap, b"old").unwrap();
    let shared = bind(&mut heap, &nss, old, "shared", |h| list_of_ints(h, 2));
    collector.freeze(&mut heap); // `old` moves to the permanent generation
    let new = nss.create(&mut heap, b"new").unwrap();
    nss.set(&mut heap, new, b"alias", shared).unwrap();
    assert_eq!(nss.all(&heap).len(), 2);
    assert_eq!(nss.xdel(&mut heap, new, b"alias").unwrap(), 2);
    assert!(matches!(nss.get(&mut heap, old, b"shared"), Err(ObjError::Key(_))));
    collector.unfreeze(&mut heap);
    heap.decref(old);
    heap.decref(new);
}

#[test]
fn a_dead_namespace_is_no_longer_one_of_the_runtime() {
    let mut heap = heap();
    let mut nss = Namespaces::new();
    let a = nss.create(&mut heap, b"a").unwrap();
    let b = nss.create(&mut heap, b"b").unwrap();
    assert_eq!(nss.all(&heap).len(), 2);
    heap.decref(a);
    assert_eq!(nss.all(&heap), vec![b]);
    heap.decref(b);
    assert!(nss.all(&heap).is_empty());
}
