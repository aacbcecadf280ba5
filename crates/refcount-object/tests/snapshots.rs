//! Snapshots of the text the object layer produces: the repr of a nested
//! structure, and the free-list lines of `pymem_debug_malloc_stats`.
//! Regenerate with `INSTA_UPDATE=always cargo test -p refcount-object --test
//! snapshots`, and review the diff.

use obmalloc::{Allocator, Config};
use refcount_object::{Heap, HeapConfig, Obj};

fn heap() -> Box<Heap> {
    Heap::new(Allocator::new(Config::default()), HeapConfig::default()).unwrap()
}

/// CPython 3.11.7 prints exactly this for the same structure, built as
/// `build_nested` builds it:
const CPYTHON_REPR: &str = concat!(
    r#"{'floats': [1e+16, 0.1, -0.0, 1.5e-07, inf, nan, 3.0, 123456789012345.6, 1e-05, 0.0001], "#,
    r#"'strings': ("it's", 'say "hi"', 'both \' and "', 'tab\tnewline\n', 'back\\slash', '\x00\x7f\xa0', 'héllo wörld €'), "#,
    r#"'ints': (-5, 0, 256, 257, -9223372036854775808, (1,), ()), "#,
    r#"'nested': [[1, [2, [3, []]]], {}, {1: False}], "#,
    r#"'recursive': [1, [...], {'self': [...]}], "#,
    r#"(1, 'tuple key'): None, 2.5: 'float key'}"#,
);

/// Every object made, to drop at the end.
struct Builder<'h> {
    h: &'h mut Heap,
    made: Vec<Obj>,
}

impl Builder<'_> {
    fn keep(&mut self, o: Obj) -> Obj {
        self.made.push(o);
        o
    }
    fn int(&mut self, v: i64) -> Obj {
        let o = self.h.int_new(v).unwrap();
        self.keep(o)
    }
    fn float(&mut self, v: f64) -> Obj {
        let o = self.h.float_new(v).unwrap();
        self.keep(o)
    }
    fn str(&mut self, v: &str) -> Obj {
        let o = self.h.str_new(v.as_bytes()).unwrap();
        self.keep(o)
    }
    fn tuple(&mut self, items: &[Obj]) -> Obj {
        let o = self.h.tuple_new(items).unwrap();
        self.keep(o)
    }
    fn list(&mut self, items: &[Obj]) -> Obj {
        let o = self.h.list_new().unwrap();
        for &i in items {
            self.h.list_append(o, i).unwrap();
        }
        self.keep(o)
    }
    fn dict(&mut self, entries: &[(Obj, Obj)]) -> Obj {
        let o = self.h.dict_new().unwrap();
        for &(k, v) in entries {
            self.h.dict_set(o, k, v).unwrap();
        }
        self.keep(o)
    }
}

/// The structure of `CPYTHON_REPR`; returns it and the recursive list.
fn build_nested(b: &mut Builder) -> (Obj, Obj) {
    let floats: Vec<Obj> = [1e16, 0.1, -0.0, 1.5e-07, f64::INFINITY, f64::NAN, 3.0, 123456789012345.6, 1e-05, 0.0001]
        .iter()
        .map(|&f| b.float(f))
        .collect();
    let floats = b.list(&floats);
    let strings: Vec<Obj> = [
        "it's",
        r#"say "hi""#,
        r#"both ' and ""#,
        "tab\tnewline\n",
        "back\\slash",
        "\u{0}\u{7f}\u{a0}",
        "héllo wörld €",
    ]
    .iter()
    .map(|s| b.str(s))
    .collect();
    let strings = b.tuple(&strings);
    let one = b.int(1);
    let t1 = b.tuple(&[one]);
    let empty = b.tuple(&[]);
    let ints: Vec<Obj> = [-5, 0, 256, 257, i64::MIN].iter().map(|&v| b.int(v)).collect();
    let ints = b.tuple(&[&ints[..], &[t1, empty]].concat());
    let (two, three) = (b.int(2), b.int(3));
    let innermost = b.list(&[]);
    let l3 = b.list(&[three, innermost]);
    let l2 = b.list(&[two, l3]);
    let l1 = b.list(&[one, l2]);
    let empty_dict = b.dict(&[]);
    let (none, t, f) = (b.h.none(), b.h.bool_obj(true), b.h.bool_obj(false));
    let one_or_true = b.dict(&[(one, none), (t, f)]); // True == 1: one key
    let nested = b.list(&[l1, empty_dict, one_or_true]);
    // rec = [1]; rec.append(rec); rec.append({'self': rec})
    let rec = b.list(&[one]);
    b.h.list_append(rec, rec).unwrap();
    let self_key = b.str("self");
    let rec_dict = b.dict(&[(self_key, rec)]);
    b.h.list_append(rec, rec_dict).unwrap();
    let tuple_key_text = b.str("tuple key");
    let tuple_key = b.tuple(&[one, tuple_key_text]);
    let float_key = b.float(2.5);
    let float_value = b.str("float key");
    let keys: Vec<Obj> = ["floats", "strings", "ints", "nested", "recursive"].iter().map(|k| b.str(k)).collect();
    let d = b.dict(&[
        (keys[0], floats),
        (keys[1], strings),
        (keys[2], ints),
        (keys[3], nested),
        (keys[4], rec),
        (tuple_key, none),
        (float_key, float_value),
    ]);
    (d, rec)
}

#[test]
fn repr_of_a_nested_structure() {
    let mut h = heap();
    h.clear_free_lists();
    let base = h.alloc.stats().blocks_in_use;
    let mut b = Builder { h: &mut h, made: Vec::new() };
    let (d, rec) = build_nested(&mut b);
    let made = std::mem::take(&mut b.made);
    let text = h.repr(d).unwrap();
    assert_eq!(text, CPYTHON_REPR, "as CPython writes it");
    insta::assert_snapshot!("nested_repr", text);
    // Break the cycles (rec -> rec, rec -> {'self': rec}), then every object goes.
    for _ in 0..2 {
        let item = h.list_pop(rec, 1).unwrap();
        h.decref(item);
    }
    for o in made {
        h.decref(o);
    }
    h.clear_free_lists();
    assert_eq!(h.alloc.stats().blocks_in_use, base);
}

#[test]
fn free_list_stats_after_a_fixed_sequence() {
    let mut h = heap();
    let one = h.int_new(1).unwrap();
    // 150 floats die: the free list keeps 100 (CPython 3.11's bound).
    let floats: Vec<Obj> = (0..150).map(|i| h.float_new(i as f64 + 0.5).unwrap()).collect();
    // 40 ints outside the small-int cache die: all kept (CPython 3.14's
    // bound is 100); small ints are immortal and never freed.
    let ints: Vec<Obj> = (0..40).map(|i| h.int_new(1000 + i).unwrap()).chain([one]).collect();
    // Tuples of lengths 1..=3 and 25 (too long for a free list).
    let mut tuples = Vec::new();
    for (len, count) in [(1, 7), (2, 3), (3, 12), (25, 4)] {
        for _ in 0..count {
            tuples.push(h.tuple_new(&vec![one; len]).unwrap());
        }
    }
    // 90 lists die (80 kept; the 30 that outgrew their inline slots leave
    // 30 spare item arrays), 5 dicts with tables (all kept, tables freed).
    let lists: Vec<Obj> = (0..90)
        .map(|i| {
            let l = h.list_new().unwrap();
            if i < 30 {
                for _ in 0..3 {
                    h.list_append(l, one).unwrap();
                }
            }
            l
        })
        .collect();
    let dicts: Vec<Obj> = (0..5)
        .map(|_| {
            let d = h.dict_new().unwrap();
            h.dict_set(d, one, one).unwrap();
            d
        })
        .collect();
    for o in floats.into_iter().chain(ints).chain(tuples).chain(lists).chain(dicts) {
        h.decref(o);
    }
    let mut text = String::new();
    h.free_list_stats(&mut text);
    let freed = h.clear_free_lists();
    text.push_str(&format!("\nclear_free_lists() freed {freed}\n"));
    h.free_list_stats(&mut text);
    insta::assert_snapshot!("free_list_stats", text);
}
