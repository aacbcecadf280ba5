//! The collector on built-in objects: cycles found and freed, survivors
//! kept, generations, tuples untracked, freeze, and no recursion limits.

use gc_generations::{Collector, Profile};
use obmalloc::{Allocator, Config};
use refcount_object::{Heap, HeapConfig, Obj};

fn heap() -> Box<Heap> {
    Heap::new(Allocator::new(Config::default()), HeapConfig::default()).unwrap()
}

fn blocks(h: &Heap) -> u64 {
    h.alloc.stats().blocks_in_use
}

/// A ring of `n` lists, each holding the next, with no outside reference:
/// cyclic garbage of `n` objects.
fn make_list_ring(h: &mut Heap, n: usize) {
    let first = h.list_new().unwrap();
    let mut prev = first;
    for _ in 1..n {
        let l = h.list_new().unwrap();
        h.list_append(prev, l).unwrap();
        if prev != first {
            h.decref(prev);
        }
        prev = l;
    }
    h.list_append(prev, first).unwrap();
    h.decref(prev);
    h.decref(first);
}

#[test]
fn the_seed_two_objects_referring_to_each_other() {
    let mut h = heap();
    let mut gc = Collector::new(Profile::Cpython311);
    let base = blocks(&h);
    let a = h.list_new().unwrap();
    let b = h.list_new().unwrap();
    h.list_append(a, b).unwrap();
    h.list_append(b, a).unwrap();
    h.decref(a);
    h.decref(b);
    // Reference counting alone cannot free them: each still has count 1.
    assert_eq!(h.refcount(a), 1);
    assert!(blocks(&h) > base);
    assert_eq!(gc.collect_without_host(&mut h, 2), 2, "gc.collect() finds the two");
    h.clear_free_lists();
    assert_eq!(blocks(&h), base, "allocator bytes back to the baseline");
    assert_eq!(gc.stats[2].collections, 1);
    assert_eq!(gc.stats[2].collected, 2);
}

#[test]
fn reachable_objects_survive_and_age() {
    let mut h = heap();
    let mut gc = Collector::new(Profile::Cpython311);
    let keep = h.list_new().unwrap();
    let inner = h.dict_new().unwrap();
    h.list_append(keep, inner).unwrap();
    h.list_append(keep, keep).unwrap(); // a cycle, but referenced from outside
    h.decref(inner);
    assert_eq!(gc.collect_without_host(&mut h, 0), 0);
    assert!(h.gc.generations[0].is_empty(), "survivors leave generation 0");
    assert_eq!(h.gc.generations[1].len(), 2);
    assert_eq!(gc.collect_without_host(&mut h, 1), 0);
    assert_eq!(h.gc.generations[2].len(), 2);
    let len = h.list_len(keep).unwrap();
    let me = h.list_pop(keep, len - 1).unwrap();
    h.decref(me);
    h.decref(keep);
    assert_eq!(gc.collect_without_host(&mut h, 2), 0, "no cycle left: refcounting freed it");
}

#[test]
fn tuples_of_atoms_are_untracked_during_a_collection() {
    let mut h = heap();
    let mut gc = Collector::new(Profile::Cpython311);
    let one = h.int_new(1).unwrap();
    let s = h.str_new(b"x").unwrap();
    let t = h.tuple_new(&[one, s]).unwrap();
    let l = h.list_new().unwrap();
    let t2 = h.tuple_new(&[l]).unwrap();
    assert!(h.is_tracked(t) && h.is_tracked(t2));
    gc.collect_without_host(&mut h, 0);
    assert!(!h.is_tracked(t), "a tuple of atoms can never be in a cycle");
    assert!(h.is_tracked(t2), "a tuple holding a list stays tracked");
    for o in [t, t2, l, s] {
        h.decref(o);
    }
}

#[test]
fn counts_thresholds_and_the_due_flag() {
    let mut h = heap();
    let mut gc = Collector::new(Profile::Cpython311);
    assert_eq!(gc.thresholds, [700, 10, 10]);
    assert_eq!(Profile::Cpython313.thresholds(), [2000, 10, 10]);
    let mut lists: Vec<Obj> = (0..700).map(|_| h.list_new().unwrap()).collect();
    assert_eq!(gc.counts(&h), [700, 0, 0]);
    assert!(!h.gc.collection_due);
    lists.push(h.list_new().unwrap());
    assert!(h.gc.collection_due, "count0 passed threshold0");
    assert_eq!(gc.generation_due(&h), Some(0));
    gc.collect_without_host(&mut h, 0);
    assert_eq!(gc.counts(&h), [0, 1, 0]);
    for l in lists.drain(..) {
        h.decref(l);
    }
    assert_eq!(gc.counts(&h)[0], 0, "deallocations never take count0 below 0");
    gc.set_thresholds(&mut h, [0, 10, 10]);
    let _x = h.list_new().unwrap();
    assert_eq!(gc.generation_due(&h), Some(0));
}

#[test]
fn freeze_moves_everything_out_of_reach() {
    let mut h = heap();
    let mut gc = Collector::new(Profile::Cpython311);
    let a = h.list_new().unwrap();
    h.list_append(a, a).unwrap();
    h.decref(a);
    gc.freeze(&mut h);
    assert_eq!(h.gc.permanent.len(), 1);
    assert_eq!(gc.collect_without_host(&mut h, 2), 0, "frozen garbage is not collected");
    // A new cycle that references the frozen list: the full collection
    // frees the cycle and leaves the frozen list (its count, its links)
    // alone.
    let (b, c) = (h.list_new().unwrap(), h.list_new().unwrap());
    for (from, to) in [(b, c), (c, b), (b, a)] {
        h.list_append(from, to).unwrap();
    }
    h.decref(b);
    h.decref(c);
    assert_eq!(h.refcount(a), 2);
    assert_eq!(gc.collect_without_host(&mut h, 2), 2, "the new cycle, not the frozen list");
    assert_eq!(h.refcount(a), 1);
    assert_eq!(h.gc.permanent.len(), 1);
    gc.unfreeze(&mut h);
    assert_eq!(h.gc.permanent.len(), 0);
    assert_eq!(gc.collect_without_host(&mut h, 2), 1);
}

#[test]
fn a_million_long_cycle_and_a_million_deep_list_need_no_recursion() {
    // On a 2 MiB thread stack: nothing recursive may depend on the size.
    std::thread::Builder::new()
        .stack_size(2 << 20)
        .spawn(|| {
            let mut h = heap();
            let mut gc = Collector::new(Profile::Cpython311);
            let base = blocks(&h);
            make_list_ring(&mut h, 1_000_000);
            assert_eq!(gc.collect_without_host(&mut h, 2), 1_000_000);
            // A list nested 1,000,000 deep whose innermost list holds the outermost.
            let outer = h.list_new().unwrap();
            let mut cur = outer;
            for _ in 1..1_000_000 {
                let l = h.list_new().unwrap();
                h.list_append(cur, l).unwrap();
                h.decref(l);
                cur = l;
            }
            h.list_append(cur, outer).unwrap();
            h.decref(outer);
            assert_eq!(gc.collect_without_host(&mut h, 2), 1_000_000);
            h.clear_free_lists();
            assert_eq!(blocks(&h), base);
        })
        .unwrap()
        .join()
        .unwrap();
}

#[test]
fn saveall_keeps_a_big_cycle_without_recursion_and_counts_it() {
    // DEBUG_SAVEALL moves each garbage object to `garbage`: a loop, so a
    // 200,000-long ring needs no stack (it used to recurse once per object).
    std::thread::Builder::new()
        .stack_size(256 << 10)
        .spawn(|| {
            let mut h = heap();
            let mut gc = Collector::new(Profile::Cpython311);
            gc.debug = gc_generations::debug::SAVEALL;
            let base = blocks(&h);
            make_list_ring(&mut h, 200_000);
            assert_eq!(gc.collect_without_host(&mut h, 2), 200_000);
            assert_eq!(gc.garbage.len(), 200_000);
            assert!(gc.garbage.iter().all(|&o| h.is_tracked(o) && h.refcount(o) == 2));
            // Saved garbage is alive: a second collection finds nothing.
            assert_eq!(gc.collect_without_host(&mut h, 2), 0);
            // Dropping the saved references makes it garbage again.
            gc.debug = 0;
            for o in std::mem::take(&mut gc.garbage) {
                h.decref(o);
            }
            assert_eq!(gc.collect_without_host(&mut h, 2), 200_000);
            h.clear_free_lists();
            assert_eq!(blocks(&h), base);
        })
        .unwrap()
        .join()
        .unwrap();
}
