//! Random sequences of container operations against a model.
//!
//! The model knows what every live object holds and derives each one's
//! expected reference count: the handles the test owns plus the container
//! slots (tuple and list items, dict keys and values) that refer to it. An
//! object whose count drops to zero dies, and what only it kept alive dies
//! with it; cycles keep each other alive, as with real reference counts.
//! After every operation each live object's `refcount`, its contents, and
//! the death of every object the model says died are checked against the
//! heap. Dict keys follow Python's equality (`1 == 1.0 == True`, equal
//! strs, equal tuples, NaN only by identity), and `copy`/`deepcopy` results
//! are checked structurally (new containers, shared objects still shared,
//! cycles reproduced, atoms and tuples of atoms not copied). At the end the
//! cycles are broken, every handle dropped, and the allocator must be back
//! to its baseline with its invariants intact.

use std::collections::{HashMap, HashSet};

use obmalloc::{Allocator, Config};
use proptest::prelude::*;
use refcount_object::{Heap, HeapConfig, Obj, ObjError};

const INTS: [i64; 10] = [-6, -5, 0, 1, 7, 256, 257, 300, 1000, 1 << 40];
const FLOATS: [f64; 7] = [0.0, -0.0, 1.0, 2.5, 300.0, 1e16, f64::NAN];
const STRS: [&str; 7] = ["", "a", "b", "ab", "héllo", "it's", "1"];
/// deepcopy is skipped when it would make more containers than this.
const MAX_DEEPCOPY: usize = 200;
/// Operations that make objects are skipped past this many live objects.
const MAX_LIVE: usize = 1500;

#[derive(Clone, Debug)]
enum Op {
    Int(usize),
    Float(usize),
    Str(usize),
    Bool(bool),
    None,
    Tuple(Vec<usize>),
    List,
    Dict,
    Append(usize, usize),
    Insert(usize, usize, usize),
    Set(usize, usize, usize),
    Pop(usize, usize),
    DictSet(usize, usize, usize),
    DictDel(usize, usize),
    DictGet(usize, usize),
    Drop(usize),
    Copy(usize),
    DeepCopy(usize),
    Equal(usize, usize),
}

fn op() -> impl Strategy<Value = Op> {
    let ix = || 0usize..1000;
    prop_oneof![
        3 => (0..INTS.len()).prop_map(Op::Int),
        2 => (0..FLOATS.len()).prop_map(Op::Float),
        2 => (0..STRS.len()).prop_map(Op::Str),
        1 => any::<bool>().prop_map(Op::Bool),
        1 => Just(Op::None),
        3 => prop::collection::vec(ix(), 0..4).prop_map(Op::Tuple),
        3 => Just(Op::List),
        3 => Just(Op::Dict),
        6 => (ix(), ix()).prop_map(|(a, b)| Op::Append(a, b)),
        3 => (ix(), ix(), ix()).prop_map(|(a, b, c)| Op::Insert(a, b, c)),
        3 => (ix(), ix(), ix()).prop_map(|(a, b, c)| Op::Set(a, b, c)),
        3 => (ix(), ix()).prop_map(|(a, b)| Op::Pop(a, b)),
        6 => (ix(), ix(), ix()).prop_map(|(a, b, c)| Op::DictSet(a, b, c)),
        3 => (ix(), ix()).prop_map(|(a, b)| Op::DictDel(a, b)),
        2 => (ix(), ix()).prop_map(|(a, b)| Op::DictGet(a, b)),
        5 => ix().prop_map(Op::Drop),
        2 => ix().prop_map(Op::Copy),
        2 => ix().prop_map(Op::DeepCopy),
        2 => (ix(), ix()).prop_map(|(a, b)| Op::Equal(a, b)),
    ]
}

/// What the model knows of an object.
#[derive(Clone, Debug)]
enum Val {
    Int(i64),
    Float(f64),
    Str(String),
    Bool(bool),
    None,
    Tuple(Vec<Obj>),
    List(Vec<Obj>),
    Dict(Vec<(Obj, Obj)>),
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Num {
    Int(i64),
    Float(f64),
}

struct Model {
    objs: HashMap<Obj, Val>,
    immortal: HashSet<Obj>,
    /// One reference owned by the test per entry.
    handles: Vec<Obj>,
}

impl Model {
    fn val(&self, o: Obj) -> &Val {
        &self.objs[&o]
    }

    fn pick(&self, i: usize) -> Option<Obj> {
        (!self.handles.is_empty()).then(|| self.handles[i % self.handles.len()])
    }

    /// Records an object the heap just handed out: a singleton or an
    /// existing object seen again, or a new one.
    fn register(&mut self, h: &Heap, o: Obj, val: Val) {
        if h.is_immortal(o) {
            self.immortal.insert(o);
            self.objs.entry(o).or_insert(val);
        } else {
            assert!(!self.objs.contains_key(&o), "a new object at the address of a live one: {val:?}");
            self.objs.insert(o, val);
        }
    }

    fn is_list(&self, o: Obj) -> bool {
        matches!(self.val(o), Val::List(_))
    }

    fn is_dict(&self, o: Obj) -> bool {
        matches!(self.val(o), Val::Dict(_))
    }

    fn list(&mut self, o: Obj) -> &mut Vec<Obj> {
        match self.objs.get_mut(&o) {
            Some(Val::List(items)) => items,
            other => panic!("not a list: {other:?}"),
        }
    }

    fn dict(&mut self, o: Obj) -> &mut Vec<(Obj, Obj)> {
        match self.objs.get_mut(&o) {
            Some(Val::Dict(entries)) => entries,
            other => panic!("not a dict: {other:?}"),
        }
    }

    fn hashable(&self, o: Obj) -> bool {
        match self.val(o) {
            Val::List(_) | Val::Dict(_) => false,
            Val::Tuple(items) => items.iter().all(|&i| self.hashable(i)),
            _ => true,
        }
    }

    fn num(&self, o: Obj) -> Option<Num> {
        match *self.val(o) {
            Val::Int(v) => Some(Num::Int(v)),
            Val::Bool(b) => Some(Num::Int(b as i64)),
            Val::Float(f) => Some(Num::Float(f)),
            _ => None,
        }
    }

    /// `a == b` for hashable objects, as Python (and `Heap::equal`)
    /// answers it: numbers by value (NaN unequal even to itself), strs by
    /// content, tuples item by item with an identity shortcut per item.
    fn eq(&self, a: Obj, b: Obj) -> bool {
        if let (Some(x), Some(y)) = (self.num(a), self.num(b)) {
            return match (x, y) {
                (Num::Int(i), Num::Int(j)) => i == j,
                (Num::Float(f), Num::Float(g)) => f == g,
                (Num::Int(i), Num::Float(f)) | (Num::Float(f), Num::Int(i)) => f.fract() == 0.0 && f == i as f64,
            };
        }
        match (self.val(a), self.val(b)) {
            (Val::Str(x), Val::Str(y)) => x == y,
            (Val::None, Val::None) => true,
            (Val::Tuple(x), Val::Tuple(y)) => {
                x.len() == y.len() && x.iter().zip(y).all(|(&p, &q)| p == q || self.eq(p, q))
            }
            _ => false,
        }
    }

    /// Where a dict finds `key`: identity first, then equality.
    fn find(&self, d: Obj, key: Obj) -> Option<usize> {
        let Val::Dict(entries) = self.val(d) else { unreachable!() };
        entries.iter().position(|&(k, _)| k == key || self.eq(k, key))
    }

    fn contains_mutable(&self, o: Obj) -> bool {
        match self.val(o) {
            Val::List(_) | Val::Dict(_) => true,
            Val::Tuple(items) => items.iter().any(|&i| self.contains_mutable(i)),
            _ => false,
        }
    }

    /// Containers a deepcopy of `o` would make, counted up to `limit + 1`.
    fn copies_needed(&self, o: Obj, limit: usize) -> usize {
        let mut seen = HashSet::new();
        let mut todo = vec![o];
        while let Some(x) = todo.pop() {
            if !self.contains_mutable(x) || !seen.insert(x) {
                continue;
            }
            if seen.len() > limit {
                break;
            }
            todo.extend(self.children(x));
        }
        seen.len()
    }

    fn children(&self, o: Obj) -> Vec<Obj> {
        match self.val(o) {
            Val::Tuple(items) | Val::List(items) => items.clone(),
            Val::Dict(entries) => entries.iter().flat_map(|&(k, v)| [k, v]).collect(),
            _ => Vec::new(),
        }
    }

    /// Expected counts of mortal objects: handles + container slots.
    fn counts(&self) -> HashMap<Obj, usize> {
        let mut counts: HashMap<Obj, usize> = HashMap::new();
        for &o in &self.handles {
            *counts.entry(o).or_default() += 1;
        }
        for o in self.objs.keys() {
            for c in self.children(*o) {
                *counts.entry(c).or_default() += 1;
            }
        }
        counts
    }

    /// Removes the objects whose count is zero, and what dies with them.
    fn settle(&mut self) -> Vec<Obj> {
        let mut died = Vec::new();
        loop {
            let counts = self.counts();
            let dead: Vec<Obj> = self
                .objs
                .keys()
                .filter(|o| !self.immortal.contains(o) && counts.get(o).copied().unwrap_or(0) == 0)
                .copied()
                .collect();
            if dead.is_empty() {
                return died;
            }
            for o in dead {
                self.objs.remove(&o);
                died.push(o);
            }
        }
    }

    /// The heap agrees with the model: the dead are gone, every live object
    /// has its expected count and contents.
    fn check(&self, h: &Heap, died: &[Obj]) {
        for &o in died {
            assert!(h.check(o.as_ptr() as *const u8).is_err(), "an object the model says died is alive");
        }
        let counts = self.counts();
        for (&o, val) in &self.objs {
            if self.immortal.contains(&o) {
                continue;
            }
            assert_eq!(h.check(o.as_ptr() as *const u8), Ok(o), "a live object is refused: {val:?}");
            assert_eq!(h.refcount(o), counts[&o], "refcount of {}", h.repr(o).unwrap_or_default());
            match val {
                Val::Tuple(items) => {
                    let got: Vec<Obj> = (0..h.tuple_len(o).unwrap()).map(|i| h.tuple_item(o, i).unwrap()).collect();
                    assert_eq!(&got, items);
                }
                Val::List(items) => assert_eq!(h.list_items(o).unwrap(), &items[..]),
                Val::Dict(entries) => assert_eq!(&dict_entries(h, o), entries),
                _ => {}
            }
        }
    }
}

fn dict_entries(h: &Heap, d: Obj) -> Vec<(Obj, Obj)> {
    let mut out = Vec::new();
    let mut pos = 0;
    while let Some(kv) = h.dict_next(d, &mut pos).unwrap() {
        out.push(kv);
    }
    out
}

fn is_type_error<T: std::fmt::Debug>(r: Result<T, ObjError>) -> bool {
    matches!(r, Err(ObjError::Type(_)))
}

/// Applies one operation to the heap and the model.
fn apply(h: &mut Heap, m: &mut Model, op: &Op) {
    let creating = matches!(
        op,
        Op::Int(_) | Op::Float(_) | Op::Str(_) | Op::Tuple(_) | Op::List | Op::Dict | Op::Copy(_) | Op::DeepCopy(_)
    );
    if creating && m.objs.len() > MAX_LIVE {
        return;
    }
    match *op {
        Op::Int(i) => {
            let o = h.int_new(INTS[i]).unwrap();
            m.register(h, o, Val::Int(INTS[i]));
            m.handles.push(o);
        }
        Op::Float(i) => {
            let o = h.float_new(FLOATS[i]).unwrap();
            m.register(h, o, Val::Float(FLOATS[i]));
            m.handles.push(o);
        }
        Op::Str(i) => {
            let o = h.str_new(STRS[i].as_bytes()).unwrap();
            m.register(h, o, Val::Str(STRS[i].into()));
            m.handles.push(o);
        }
        Op::Bool(b) => {
            let o = h.bool_obj(b);
            m.register(h, o, Val::Bool(b));
            m.handles.push(o);
        }
        Op::None => {
            let o = h.none();
            m.register(h, o, Val::None);
            m.handles.push(o);
        }
        Op::Tuple(ref ixs) => {
            let items: Vec<Obj> = ixs.iter().filter_map(|&i| m.pick(i)).collect();
            let o = h.tuple_new(&items).unwrap();
            m.register(h, o, Val::Tuple(items));
            m.handles.push(o);
        }
        Op::List => {
            let o = h.list_new().unwrap();
            m.register(h, o, Val::List(Vec::new()));
            m.handles.push(o);
        }
        Op::Dict => {
            let o = h.dict_new().unwrap();
            m.register(h, o, Val::Dict(Vec::new()));
            m.handles.push(o);
        }
        Op::Append(l, x) => {
            let (Some(l), Some(x)) = (m.pick(l), m.pick(x)) else { return };
            let r = h.list_append(l, x);
            if m.is_list(l) {
                r.unwrap();
                m.list(l).push(x);
            } else {
                assert!(is_type_error(r));
            }
        }
        Op::Insert(l, i, x) => {
            let (Some(l), Some(x)) = (m.pick(l), m.pick(x)) else { return };
            if !m.is_list(l) {
                assert!(is_type_error(h.list_insert(l, i, x)));
                return;
            }
            let len = m.list(l).len();
            let i = i % (len + 3); // past the end appends, as Python
            h.list_insert(l, i, x).unwrap();
            m.list(l).insert(i.min(len), x);
        }
        Op::Set(l, i, x) => {
            let (Some(l), Some(x)) = (m.pick(l), m.pick(x)) else { return };
            if !m.is_list(l) {
                assert!(is_type_error(h.list_set(l, i, x)));
                return;
            }
            let len = m.list(l).len();
            let i = i % (len + 1);
            let r = h.list_set(l, i, x);
            if i < len {
                r.unwrap();
                m.list(l)[i] = x;
            } else {
                assert!(matches!(r, Err(ObjError::Index(_))));
            }
        }
        Op::Pop(l, i) => {
            let Some(l) = m.pick(l) else { return };
            if !m.is_list(l) {
                assert!(is_type_error(h.list_pop(l, i)));
                return;
            }
            let len = m.list(l).len();
            let i = i % (len + 1);
            let r = h.list_pop(l, i);
            if i < len {
                let item = r.unwrap();
                assert_eq!(item, m.list(l).remove(i));
                m.handles.push(item); // the list's reference is now ours
            } else {
                assert!(matches!(r, Err(ObjError::Index(_))));
            }
        }
        Op::DictSet(d, k, v) => {
            let (Some(d), Some(k), Some(v)) = (m.pick(d), m.pick(k), m.pick(v)) else { return };
            let r = h.dict_set(d, k, v);
            if !m.is_dict(d) || !m.hashable(k) {
                assert!(is_type_error(r));
                return;
            }
            r.unwrap();
            match m.find(d, k) {
                Some(i) => m.dict(d)[i].1 = v, // the first key object stays
                None => m.dict(d).push((k, v)),
            }
        }
        Op::DictDel(d, k) => {
            let (Some(d), Some(k)) = (m.pick(d), m.pick(k)) else { return };
            let r = h.dict_del(d, k);
            if !m.is_dict(d) || !m.hashable(k) {
                assert!(is_type_error(r));
                return;
            }
            match m.find(d, k) {
                Some(i) => {
                    r.unwrap();
                    m.dict(d).remove(i);
                }
                None => assert!(matches!(r, Err(ObjError::Key(_)))),
            }
        }
        Op::DictGet(d, k) => {
            let (Some(d), Some(k)) = (m.pick(d), m.pick(k)) else { return };
            let r = h.dict_get(d, k);
            if !m.is_dict(d) || !m.hashable(k) {
                assert!(is_type_error(r));
                return;
            }
            match m.find(d, k) {
                Some(i) => assert_eq!(r.unwrap(), m.dict(d)[i].1),
                None => assert!(matches!(r, Err(ObjError::Key(_)))),
            }
        }
        Op::Drop(i) => {
            if m.handles.is_empty() {
                return;
            }
            let o = m.handles.swap_remove(i % m.handles.len());
            h.decref(o);
        }
        Op::Copy(i) => {
            let Some(o) = m.pick(i) else { return };
            let c = h.copy(o).unwrap();
            match m.val(o).clone() {
                v @ (Val::List(_) | Val::Dict(_)) => m.register(h, c, v),
                _ => assert_eq!(c, o, "immutables and atoms copy to themselves"),
            }
            m.handles.push(c);
        }
        Op::DeepCopy(i) => {
            let Some(o) = m.pick(i) else { return };
            if m.copies_needed(o, MAX_DEEPCOPY) > MAX_DEEPCOPY {
                return;
            }
            let c = h.deepcopy(o).unwrap();
            check_deepcopy(h, m, o, c);
            m.handles.push(c);
        }
        Op::Equal(a, b) => {
            let (Some(a), Some(b)) = (m.pick(a), m.pick(b)) else { return };
            if !m.hashable(a) || !m.hashable(b) {
                return;
            }
            let eq = h.equal(a, b).unwrap();
            assert_eq!(eq, m.eq(a, b), "{} == {}", h.repr(a).unwrap(), h.repr(b).unwrap());
            if eq {
                assert_eq!(h.hash(a).unwrap(), h.hash(b).unwrap(), "equal objects hash alike");
            }
        }
    }
}

/// Checks that `c` is a deep copy of `o` (walking both in step, with a
/// memo that must be one-to-one), and records the containers it made.
fn check_deepcopy(h: &Heap, m: &mut Model, o: Obj, c: Obj) {
    let mut memo: HashMap<Obj, Obj> = HashMap::new();
    let mut images: HashSet<Obj> = HashSet::new();
    let mut made: Vec<(Obj, Val)> = Vec::new();
    let mut todo = vec![(o, c)];
    while let Some((s, c)) = todo.pop() {
        if !m.contains_mutable(s) {
            assert_eq!(c, s, "atoms and tuples of atoms are not copied");
            continue;
        }
        if let Some(&image) = memo.get(&s) {
            assert_eq!(c, image, "an object shared in the original is shared in the copy");
            continue;
        }
        assert!(!m.objs.contains_key(&c), "a container's deep copy is a new object");
        assert!(images.insert(c), "two originals copied to one object");
        memo.insert(s, c);
        let val = match m.val(s) {
            Val::Tuple(items) => {
                let got: Vec<Obj> = (0..h.tuple_len(c).unwrap()).map(|i| h.tuple_item(c, i).unwrap()).collect();
                assert_eq!(got.len(), items.len());
                todo.extend(items.iter().copied().zip(got.iter().copied()));
                Val::Tuple(got)
            }
            Val::List(items) => {
                let got = h.list_items(c).unwrap().to_vec();
                assert_eq!(got.len(), items.len());
                todo.extend(items.iter().copied().zip(got.iter().copied()));
                Val::List(got)
            }
            Val::Dict(entries) => {
                let got = dict_entries(h, c);
                assert_eq!(got.len(), entries.len());
                for (&(k, v), &(ck, cv)) in entries.iter().zip(&got) {
                    todo.push((k, ck));
                    todo.push((v, cv));
                }
                Val::Dict(got)
            }
            other => unreachable!("an atom holds no mutable object: {other:?}"),
        };
        made.push((c, val));
    }
    for (c, val) in made {
        m.register(h, c, val);
    }
}

/// Runs `ops`, checking after each; then tears everything down.
fn run(ops: &[Op]) {
    let mut h = Heap::new(Allocator::new(Config::default()), HeapConfig::default()).unwrap();
    h.clear_free_lists();
    let base = h.alloc.stats().blocks_in_use;
    let mut m = Model { objs: HashMap::new(), immortal: HashSet::new(), handles: Vec::new() };
    for op in ops {
        apply(&mut h, &mut m, op);
        let died = m.settle();
        m.check(&h, &died);
    }
    // Break every cycle (this crate has no collector): empty the lists
    // and dicts one item at a time, checking as we go.
    loop {
        let full_list = m.objs.iter().find(|(_, v)| matches!(v, Val::List(items) if !items.is_empty()));
        let full_dict = m.objs.iter().find(|(_, v)| matches!(v, Val::Dict(entries) if !entries.is_empty()));
        if let Some((&l, _)) = full_list {
            let i = m.list(l).len() - 1;
            let item = h.list_pop(l, i).unwrap();
            assert_eq!(item, m.list(l).pop().unwrap());
            h.decref(item);
        } else if let Some((&d, _)) = full_dict {
            let (k, _) = m.dict(d).pop().unwrap();
            h.dict_del(d, k).unwrap();
        } else {
            break;
        }
        let died = m.settle();
        m.check(&h, &died);
    }
    for o in std::mem::take(&mut m.handles) {
        h.decref(o);
    }
    let died = m.settle();
    m.check(&h, &died);
    assert!(m.objs.keys().all(|o| m.immortal.contains(o)), "only immortals are left in the model");
    h.clear_free_lists();
    assert_eq!(h.alloc.stats().blocks_in_use, base, "every object went back to the allocator");
    h.alloc.check_invariants();
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    #[test]
    fn container_operations_match_the_model(ops in prop::collection::vec(op(), 1..=250)) {
        run(&ops);
    }
}

/// A fixed sequence that builds shared objects, cycles through lists and
/// dicts, equal keys of different types, and copies of all of them.
#[test]
fn a_known_sequence_matches_the_model() {
    use Op::*;
    run(&[
        List,
        Dict,
        Int(8),
        Float(4),
        Int(7),
        Bool(true),
        Float(2),
        Append(0, 0),      // l.append(l)
        Append(0, 2),      // l.append(1000)
        DictSet(1, 3, 0),  // d[300.0] = l
        DictSet(1, 4, 1),  // d[300] = d: the key 300.0 stays
        DictSet(1, 5, 2),  // d[True] = 1000
        DictSet(1, 6, 2),  // d[1.0] = 1000: the same key as True
        Tuple(vec![2, 3]), // (1000, 300.0)
        DictSet(1, 7, 7),  // d[t] = t
        DictSet(1, 0, 2),  // d[l]: unhashable
        Copy(0),
        Copy(1),
        DeepCopy(0),
        DeepCopy(1),
        DeepCopy(7),
        Equal(3, 4),
        Equal(5, 6),
        Pop(0, 0),
        Drop(0),
        Drop(1),
        DictDel(1, 6),
        Drop(2),
    ]);
}
