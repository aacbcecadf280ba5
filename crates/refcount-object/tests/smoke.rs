//! The object layer end to end: counts, singletons, containers, free lists,
//! deallocation back to the allocator's baseline.

use obmalloc::{Allocator, Config};
use refcount_object::{Heap, HeapConfig, ObjError, IMMORTAL_REFCNT};

fn heap() -> Box<Heap> {
    Heap::new(Allocator::new(Config::default()), HeapConfig::default()).unwrap()
}

#[test]
fn counts_singletons_and_containers() {
    let mut h = heap();
    let base = h.alloc.stats().blocks_in_use;
    let seven = h.int_new(7).unwrap();
    assert_eq!(h.int_new(7).unwrap(), seven, "small ints are cached");
    assert_eq!(h.refcount(seven), IMMORTAL_REFCNT);
    let big = h.int_new(257).unwrap();
    let big2 = h.int_new(257).unwrap();
    assert_ne!(big, big2, "257 is not cached");
    assert_eq!(h.refcount(big), 1);
    let list = h.list_new().unwrap();
    h.list_append(list, big).unwrap();
    h.list_append(list, big).unwrap();
    assert_eq!(h.refcount(big), 3, "a list holding it twice adds two references");
    let s = h.str_new("héllo".as_bytes()).unwrap();
    let d = h.dict_new().unwrap();
    h.dict_set(d, s, list).unwrap();
    assert_eq!(h.refcount(list), 2);
    let one = h.int_new(1).unwrap();
    let onef = h.float_new(1.0).unwrap();
    assert!(h.equal(one, onef).unwrap(), "1 == 1.0");
    assert_eq!(h.hash(one).unwrap(), h.hash(onef).unwrap());
    h.dict_set(d, one, one).unwrap();
    assert_eq!(h.dict_get(d, onef).unwrap(), one, "1.0 finds the key 1");
    assert!(matches!(h.dict_set(d, list, one), Err(ObjError::Type(m)) if m == "unhashable type: 'list'"));
    let t = h.tuple_new(&[s, one, onef]).unwrap();
    assert_eq!(h.repr(t).unwrap(), "('héllo', 1, 1.0)");
    h.list_append(list, list).unwrap();
    assert_eq!(h.repr(list).unwrap(), "[257, 257, [...]]");
    assert_eq!(h.repr(d).unwrap(), "{'héllo': [257, 257, [...]], 1: 1}");
    // Break the self-reference, then drop everything.
    let popped = h.list_pop(list, 2).unwrap();
    h.decref(popped);
    for o in [big, big2, list, s, d, onef, t] {
        h.decref(o);
    }
    h.clear_free_lists();
    assert_eq!(h.alloc.stats().blocks_in_use, base, "every object and array freed");
    h.alloc.check_invariants();
}

#[test]
fn free_lists_reuse_and_dead_objects_are_refused() {
    let mut h = heap();
    let f = h.float_new(2.5).unwrap();
    let addr = f.as_ptr() as *const u8;
    h.decref(f);
    assert!(h.check(addr).is_err(), "an object on a free list is dead to the ABI");
    assert!(h.is_dead_object(addr));
    let g = h.float_new(3.5).unwrap();
    assert_eq!(g.as_ptr() as *const u8, addr, "the free list hands the float out again");
    assert_eq!(h.check(addr).unwrap(), g);
    h.decref(g);
    assert_eq!(h.free_list_lengths().floats, 1);
    assert_eq!(h.clear_free_lists(), 1);
    let mut text = String::new();
    h.free_list_stats(&mut text);
    assert!(text.contains("0 free PyFloatObjects * 24 bytes each"), "{text}");
}

#[test]
fn deep_nesting_is_freed_without_recursion() {
    let mut h = heap();
    let base = h.alloc.stats().blocks_in_use;
    let mut inner = h.list_new().unwrap();
    for _ in 0..1_000_000 {
        let outer = h.list_new().unwrap();
        h.list_append(outer, inner).unwrap();
        h.decref(inner);
        inner = outer;
    }
    assert!(matches!(h.repr(inner), Err(ObjError::Recursion(_))));
    h.decref(inner);
    h.clear_free_lists();
    assert_eq!(h.alloc.stats().blocks_in_use, base);
}
