//! Property test: random object graphs against an independent reachability
//! oracle. Exactly the cyclic garbage must be collected, and `collect(2)`
//! must return its count.
//!
//! The oracle: nodes unreachable from the references kept are garbage;
//! reference counting alone frees the garbage nodes that nothing else in the
//! garbage points to, repeatedly (Kahn's algorithm on the garbage
//! subgraph); what remains is the cyclic garbage only the collector frees.
//!
//! A second property checks young collections: nodes made before a
//! generation-0 collection are promoted, and the next `collect(0)` must
//! treat them as roots — it frees exactly the cyclic garbage among the young
//! nodes; a `collect(2)` afterwards frees exactly the rest.

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
    /// Which nodes are made (and promoted) before the others, for the
    /// young-collection property.
    old: Vec<bool>,
}

fn graph() -> impl Strategy<Value = Graph> {
    (1usize..60).prop_flat_map(|n| {
        (
            proptest::collection::vec(prop_oneof![Just(Kind::List), Just(Kind::Dict), Just(Kind::Instance)], n),
            proptest::collection::vec((0..n, 0..n), 0..(3 * n)),
            proptest::collection::vec(proptest::bool::weighted(0.2), n),
            proptest::collection::vec(proptest::bool::weighted(0.4), n),
        )
            .prop_map(|(kinds, edges, kept, old)| Graph { kinds, edges, kept, old })
    })
}

/// The nodes only the cycle collector can free: those not reachable from
/// `roots` (nodes gone already are ignored, with their edges) that
/// reference counting alone cannot free.
fn cyclic_garbage(g: &Graph, roots: &[bool], gone: &[bool]) -> Vec<bool> {
    let n = g.kinds.len();
    let edges: Vec<(usize, usize)> = g.edges.iter().copied().filter(|&(f, t)| !gone[f] && !gone[t]).collect();
    let mut reachable = vec![false; n];
    let mut work: Vec<usize> = (0..n).filter(|&i| roots[i] && !gone[i]).collect();
    for &i in &work {
        reachable[i] = true;
    }
    while let Some(i) = work.pop() {
        for &(from, to) in &edges {
            if from == i && !reachable[to] {
                reachable[to] = true;
                work.push(to);
            }
        }
    }
    // Kahn on the garbage subgraph: what refcounting frees.
    let mut indegree = vec![0usize; n];
    for &(from, to) in &edges {
        if !reachable[from] {
            indegree[to] += 1;
        }
    }
    let mut freed = vec![false; n];
    let mut queue: Vec<usize> = (0..n).filter(|&i| !gone[i] && !reachable[i] && indegree[i] == 0).collect();
    while let Some(i) = queue.pop() {
        freed[i] = true;
        for &(from, to) in &edges {
            if from == i {
                indegree[to] -= 1;
                if indegree[to] == 0 && !reachable[to] {
                    queue.push(to);
                }
            }
        }
    }
    (0..n).map(|i| !gone[i] && !reachable[i] && !freed[i]).collect()
}

fn count(v: &[bool]) -> usize {
    v.iter().filter(|&&b| b).count()
}

/// Makes the node of kind `k`.
fn make(h: &mut Heap, node_type: u32, k: Kind) -> Obj {
    match k {
        Kind::List => h.list_new().unwrap(),
        Kind::Dict => h.dict_new().unwrap(),
        Kind::Instance => h.instance_new(node_type).unwrap(),
    }
}

/// Adds every edge of `g` between `nodes`.
fn link(h: &mut Heap, g: &Graph, nodes: &[Obj]) {
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
}

fn check(g: &Graph) {
    let mut h = Heap::new(Allocator::new(Config::default()), HeapConfig::default()).unwrap();
    let t = h.type_new(&HostTypeSpec { name: "Node".into(), payload_size: 8, ..Default::default() }).unwrap();
    let node_type = h.check_type(t).unwrap();
    let mut gc = Collector::new(Profile::Cpython311);
    h.gc.enabled = false;
    let base = h.alloc.stats().blocks_in_use;
    let nodes: Vec<Obj> = g.kinds.iter().map(|&k| make(&mut h, node_type, k)).collect();
    link(&mut h, g, &nodes);
    // Drop the references the test does not keep.
    for (i, &o) in nodes.iter().enumerate() {
        if !g.kept[i] {
            h.decref(o);
        }
    }
    let expected = count(&cyclic_garbage(g, &g.kept, &vec![false; g.kinds.len()]));
    let found = gc.collect_without_host(&mut h, 2);
    assert_eq!(found as usize, expected, "collect(2) returns the cyclic garbage's size");
    h.alloc.check_invariants();
    h.check_gc_invariants();
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

/// The young-collection property: the `old` nodes are made first and
/// promoted (two young collections while all of them are referenced), then
/// the young ones; every edge is added, the references not kept dropped.
/// `collect(0)` must free exactly the cyclic garbage of the young nodes with
/// every old node a root; `collect(2)` then exactly what is left.
fn check_young(g: &Graph) {
    let n = g.kinds.len();
    let mut h = Heap::new(Allocator::new(Config::default()), HeapConfig::default()).unwrap();
    let t = h.type_new(&HostTypeSpec { name: "Node".into(), payload_size: 8, ..Default::default() }).unwrap();
    let node_type = h.check_type(t).unwrap();
    let mut gc = Collector::new(Profile::Cpython311);
    h.gc.enabled = false;
    let mut nodes: Vec<Option<Obj>> = vec![None; n];
    for i in (0..n).filter(|&i| g.old[i]) {
        nodes[i] = Some(make(&mut h, node_type, g.kinds[i]));
    }
    assert_eq!(gc.collect_without_host(&mut h, 0), 0);
    assert_eq!(gc.collect_without_host(&mut h, 1), 0);
    let old_count = count(&g.old);
    assert_eq!(h.gc.generations[2].len(), old_count, "the old nodes are in generation 2");
    for i in (0..n).filter(|&i| !g.old[i]) {
        nodes[i] = Some(make(&mut h, node_type, g.kinds[i]));
    }
    let nodes: Vec<Obj> = nodes.into_iter().map(Option::unwrap).collect();
    link(&mut h, g, &nodes);
    for (i, &o) in nodes.iter().enumerate() {
        if !g.kept[i] {
            h.decref(o);
        }
    }
    // Alive at collect(0): reachable from what is kept, or cyclic garbage
    // (the rest was freed by reference counting as the references went).
    let nobody_gone = vec![false; n];
    let reach = reachable_from(g, &g.kept);
    let cyclic = cyclic_garbage(g, &g.kept, &nobody_gone);
    let gone: Vec<bool> = (0..n).map(|i| !reach[i] && !cyclic[i]).collect();
    // A young collection: every live old node is a root.
    let roots: Vec<bool> = (0..n).map(|i| g.kept[i] || (g.old[i] && !gone[i])).collect();
    let young_garbage = cyclic_garbage(g, &roots, &gone);
    assert_eq!(gc.collect_without_host(&mut h, 0) as usize, count(&young_garbage), "collect(0): the young garbage");
    h.check_gc_invariants();
    h.alloc.check_invariants();
    assert!(h.gc.generations[0].is_empty(), "generation 0 is empty after its collection");
    // Then a full collection frees exactly the cyclic garbage left.
    let gone: Vec<bool> = (0..n).map(|i| gone[i] || young_garbage[i]).collect();
    let rest = cyclic_garbage(g, &g.kept, &gone);
    assert_eq!(gc.collect_without_host(&mut h, 2) as usize, count(&rest), "collect(2): what is left");
    h.check_gc_invariants();
    for (i, &o) in nodes.iter().enumerate() {
        if g.kept[i] {
            assert!(h.check(o.as_ptr() as *const u8).is_ok(), "kept node {i} was freed");
        }
    }
}

/// The nodes reachable from `roots`.
fn reachable_from(g: &Graph, roots: &[bool]) -> Vec<bool> {
    let mut reachable = roots.to_vec();
    let mut work: Vec<usize> = (0..roots.len()).filter(|&i| roots[i]).collect();
    while let Some(i) = work.pop() {
        for &(from, to) in &g.edges {
            if from == i && !reachable[to] {
                reachable[to] = true;
                work.push(to);
            }
        }
    }
    reachable
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn exactly_the_cyclic_garbage_is_collected(g in graph()) {
        check(&g);
    }

    #[test]
    fn a_young_collection_treats_older_generations_as_roots(g in graph()) {
        check_young(&g);
    }
}
