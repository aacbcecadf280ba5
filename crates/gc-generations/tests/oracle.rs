//! Property test: random object graphs against an independent reachability
//! oracle. Exactly the cyclic garbage must be collected, and `collect(2)`
//! must return its count.
//!
//! The oracle: nodes unreachable from the references kept are garbage;
//! reference counting alone frees the garbage nodes that nothing else in the
//! garbage points to, repeatedly (Kahn's algorithm on the garbage
//! subgraph); what remains is the cyclic garbage only the collector frees.

use gc_generations::{Collector, Profile};
use obmalloc::{Allocator, Config};
use proptest::prelude::*;
use refcount_object::{Heap, HeapConfig, HostTypeSpec, Obj};

#[derive(Clone, Copy, Debug)]
enum Kind {
    List,
    Dict,
    Instance,
}

#[derive(Clone, Debug)]
struct Graph {
    kinds: Vec<Kind>,
    /// (from, to): `from` holds a reference to `to` (repeats allowed).
    edges: Vec<(usize, usize)>,
    /// Which nodes the test keeps a reference to.
    kept: Vec<bool>,
}

fn graph() -> impl Strategy<Value = Graph> {
    (1usize..60).prop_flat_map(|n| {
        (
            proptest::collection::vec(prop_oneof![Just(Kind::List), Just(Kind::Dict), Just(Kind::Instance)], n),
            proptest::collection::vec((0..n, 0..n), 0..(3 * n)),
            proptest::collection::vec(proptest::bool::weighted(0.2), n),
        )
            .prop_map(|(kinds, edges, kept)| Graph { kinds, edges, kept })
    })
}

/// The number of nodes only the cycle collector can free.
fn cyclic_garbage(g: &Graph) -> usize {
    let n = g.kinds.len();
    let mut reachable = vec![false; n];
    let mut work: Vec<usize> = (0..n).filter(|&i| g.kept[i]).collect();
    for &i in &work {
        reachable[i] = true;
    }
    while let Some(i) = work.pop() {
        for &(from, to) in &g.edges {
            if from == i && !reachable[to] {
                reachable[to] = true;
                work.push(to);
            }
        }
    }
    // Kahn on the garbage subgraph: what refcounting frees.
    let mut indegree = vec![0usize; n];
    for &(from, to) in &g.edges {
        if !reachable[from] {
            indegree[to] += 1;
        }
    }
    let mut freed = vec![false; n];
    let mut queue: Vec<usize> = (0..n).filter(|&i| !reachable[i] && indegree[i] == 0).collect();
    while let Some(i) = queue.pop() {
        freed[i] = true;
        for &(from, to) in &g.edges {
            if from == i {
                indegree[to] -= 1;
                if indegree[to] == 0 && !reachable[to] {
                    queue.push(to);
                }
            }
        }
    }
    (0..n).filter(|&i| !reachable[i] && !freed[i]).count()
}

fn check(g: &Graph) {
    let mut h = Heap::new(Allocator::new(Config::default()), HeapConfig::default()).unwrap();
    let t = h.type_new(&HostTypeSpec { name: "Node".into(), payload_size: 8, ..Default::default() }).unwrap();
    let node_type = h.check_type(t).unwrap();
    let mut gc = Collector::new(Profile::Cpython311);
    h.gc.enabled = false;
    let base = h.alloc.stats().blocks_in_use;
    let nodes: Vec<Obj> = g
        .kinds
        .iter()
        .map(|k| match k {
            Kind::List => h.list_new().unwrap(),
            Kind::Dict => h.dict_new().unwrap(),
            Kind::Instance => h.instance_new(node_type).unwrap(),
        })
        .collect();
    for (e, &(from, to)) in g.edges.iter().enumerate() {
        let (a, b) = (nodes[from], nodes[to]);
        match g.kinds[from] {
            Kind::List => h.list_append(a, b).unwrap(),
            Kind::Dict => {
                let k = h.int_new(1000 + e as i64).unwrap();
                h.dict_set(a, k, b).unwrap();
                h.decref(k);
            }
            Kind::Instance => h.setattr(a, format!("a{e}").as_bytes(), b).unwrap(),
        }
    }
    // Drop the references the test does not keep.
    for (i, &o) in nodes.iter().enumerate() {
        if !g.kept[i] {
            h.decref(o);
        }
    }
    let expected = cyclic_garbage(g);
    let found = gc.collect_without_host(&mut h, 2);
    assert_eq!(found as usize, expected, "collect(2) returns the cyclic garbage's size");
    h.alloc.check_invariants();
    // What is kept is alive and intact; a second collection finds nothing.
    for (i, &o) in nodes.iter().enumerate() {
        if g.kept[i] {
            assert!(h.check(o.as_ptr() as *const u8).is_ok(), "kept node {i} was freed");
        }
    }
    assert_eq!(gc.collect_without_host(&mut h, 2), 0);
    // Break every edge of the kept nodes, drop them: back to the baseline.
    for (i, &o) in nodes.iter().enumerate() {
        if g.kept[i] {
            h.clear_builtin(o);
        }
    }
    for (i, &o) in nodes.iter().enumerate() {
        if g.kept[i] {
            h.decref(o);
        }
    }
    gc.collect_without_host(&mut h, 2);
    h.clear_free_lists();
    // The type keeps its attribute names (interned strs) alive.
    let names = g.edges.iter().enumerate().filter(|&(_, &(from, _))| matches!(g.kinds[from], Kind::Instance)).count();
    assert!(h.alloc.stats().blocks_in_use <= base + names as u64, "everything freed");
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn exactly_the_cyclic_garbage_is_collected(g in graph()) {
        check(&g);
    }
}
