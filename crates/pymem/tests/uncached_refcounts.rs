//! `pymem_incref` / `pymem_decref` of objects the heap's validation cache
//! does not know (made long ago: the cache holds the last 64 validated).
//! Those calls skip the boundary when the allocator's fast lookup validates
//! the pointer (`Heap::decref_uncached_if_simple`): these tests empty the
//! cache before each call (`pymem::testing::forget_validation_cache`) and
//! check that every case ends as the full path would — counts, deaths onto
//! free lists or back to the allocator, a pool that changes state, a list at
//! its last reference — and that every bad pointer is still refused with
//! the state unchanged.

mod common;

use std::ptr;

use common::Rt;
use pymem::alloc::{pymem_free, pymem_malloc};
use pymem::object::{
    pymem_clear_free_lists, pymem_decref, pymem_incref, pymem_list_len, pymem_none, pymem_str_new, Object,
};
use pymem::testing::{check_invariants, forget_validation_cache};
use pymem::Status;

/// The calls of these tests: each incref and decref with the validation
/// cache emptied first.
impl Rt {
    fn str(&self, s: &str) -> *mut Object {
        // SAFETY: live runtime, valid bytes, writable out.
        self.obj(|o| unsafe { pymem_str_new(self.0, s.as_ptr().cast(), s.len(), o) })
    }

    fn forget(&self) {
        // SAFETY: live runtime.
        self.ok(unsafe { forget_validation_cache(self.0) });
    }

    fn incref_uncached(&self, o: *mut Object) -> Status {
        self.forget();
        // SAFETY: live runtime; `o` is validated.
        unsafe { pymem_incref(self.0, o) }
    }

    fn decref_uncached(&self, o: *mut Object) -> Status {
        self.forget();
        // SAFETY: live runtime; `o` is validated.
        unsafe { pymem_decref(self.0, o) }
    }

    /// What a refused call must leave unchanged.
    fn in_use(&self) -> (u64, u64) {
        let s = self.stats();
        (s.blocks_in_use, s.bytes_in_use)
    }

    fn check(&self) {
        // SAFETY: live runtime.
        self.ok(unsafe { check_invariants(self.0) });
    }
}

#[test]
fn counts_of_uncached_objects_go_up_and_down_exactly() {
    let rt = Rt::new(|_| {});
    let objs = [rt.int(100_000), rt.float(0.25), rt.str("not cached"), rt.list(&[])];
    for o in objs {
        assert_eq!(rt.incref_uncached(o), Status::PYMEM_OK);
        assert_eq!(rt.incref_uncached(o), Status::PYMEM_OK);
        assert_eq!(rt.refcount(o), 3);
        assert_eq!(rt.decref_uncached(o), Status::PYMEM_OK);
        assert_eq!(rt.refcount(o), 2);
        assert_eq!(rt.decref_uncached(o), Status::PYMEM_OK);
        assert_eq!(rt.refcount(o), 1);
    }
    // Immortal objects: nothing changes.
    // SAFETY: live runtime, writable out.
    let none = rt.obj(|o| unsafe { pymem_none(rt.0, o) });
    let small = rt.int(7);
    for o in [none, small] {
        let before = rt.refcount(o);
        assert_eq!(rt.incref_uncached(o), Status::PYMEM_OK);
        assert_eq!(rt.decref_uncached(o), Status::PYMEM_OK);
        assert_eq!(rt.decref_uncached(o), Status::PYMEM_OK);
        assert_eq!(rt.refcount(o), before);
    }
    for o in objs {
        assert_eq!(rt.decref_uncached(o), Status::PYMEM_OK);
    }
    rt.check();
}

#[test]
fn an_uncached_int_or_float_dies_onto_its_free_list_or_back_to_its_pool() {
    for free_lists in [true, false] {
        let rt = Rt::new(|c| {
            if !free_lists {
                c.int_free_list = 0;
                c.float_free_list = 0;
            }
        });
        rt.int(0); // the runtime's singletons, before the baseline
        let base = rt.stats().blocks_in_use;
        for is_int in [true, false] {
            let o = if is_int { rt.int(-123_456) } else { rt.float(1.5) };
            assert_eq!(rt.stats().blocks_in_use, base + 1);
            assert_eq!(rt.decref_uncached(o), Status::PYMEM_OK);
            // On a free list the block stays and the object is dead (an
            // underflow); freed, the pointer is no longer an object.
            let (blocks, again) = if free_lists {
                (base + 1, Status::PYMEM_ERR_REFCOUNT_UNDERFLOW)
            } else {
                (base, Status::PYMEM_ERR_INVALID_POINTER)
            };
            assert_eq!(rt.stats().blocks_in_use, blocks);
            let unchanged = rt.in_use();
            assert_eq!(rt.decref_uncached(o), again);
            assert_eq!(rt.incref_uncached(o), Status::PYMEM_ERR_INVALID_POINTER);
            assert_eq!(rt.in_use(), unchanged);
            // SAFETY: live runtime.
            rt.ok(unsafe { pymem_clear_free_lists(rt.0) });
            assert_eq!(rt.stats().blocks_in_use, base);
        }
        rt.check();
    }
}

/// Ints filling whole pools, freed in order with the cache emptied before
/// each decref: the first free of a full pool and the last of each pool
/// change the pool's state (the full path's work); the others do not.
#[test]
fn uncached_ints_freed_across_full_and_emptying_pools() {
    let rt = Rt::new(|c| c.int_free_list = 0);
    rt.int(0);
    let base = rt.stats();
    let ints: Vec<*mut Object> = (0..2_000).map(|i| rt.int(1_000 + i)).collect();
    assert_eq!(rt.stats().blocks_in_use, base.blocks_in_use + 2_000);
    for (k, &o) in ints.iter().enumerate() {
        assert_eq!(rt.decref_uncached(o), Status::PYMEM_OK);
        assert_eq!(rt.stats().blocks_in_use, base.blocks_in_use + 1_999 - k as u64);
    }
    rt.check();
    assert_eq!(rt.stats().bytes_in_use, base.bytes_in_use);
}

#[test]
fn an_uncached_list_at_its_last_reference_frees_what_only_it_held() {
    let rt = Rt::new(|_| {});
    let kept = rt.int(50_000);
    let l = rt.list(&[kept, kept]);
    assert_eq!(rt.refcount(kept), 3);
    assert_eq!(rt.decref_uncached(l), Status::PYMEM_OK);
    assert_eq!(rt.refcount(kept), 1, "the list's two references dropped");
    assert_eq!(rt.decref_uncached(l), Status::PYMEM_ERR_REFCOUNT_UNDERFLOW, "the list is dead, on its free list");
    // A list whose item dies with it: the full path frees the item too.
    let dies = rt.str("only in the list");
    let l = rt.list(&[dies]);
    assert_eq!(rt.decref_uncached(dies), Status::PYMEM_OK);
    let mut len = 0;
    // SAFETY: live runtime and list, writable out.
    rt.ok(unsafe { pymem_list_len(rt.0, l, &mut len) });
    assert_eq!(len, 1);
    assert_eq!(rt.decref_uncached(l), Status::PYMEM_OK);
    assert_eq!(rt.decref_uncached(dies), Status::PYMEM_ERR_INVALID_POINTER, "the str died with the list");
    assert_eq!(rt.decref_uncached(kept), Status::PYMEM_OK);
    rt.check();
}

#[test]
fn bad_pointers_are_refused_with_nothing_changed() {
    let rt = Rt::new(|_| {});
    let o = rt.int(77_777);
    let gone = rt.str("freed");
    assert_eq!(rt.decref_uncached(gone), Status::PYMEM_OK);
    // SAFETY: live runtime.
    let raw = unsafe { pymem_malloc(rt.0, 24) };
    assert!(!raw.is_null());
    let on_stack = [0u64; 4];
    let bad: [*mut Object; 5] = [
        // SAFETY: inside the int's block (never dereferenced by the test).
        unsafe { o.cast::<u8>().add(8) }.cast(),
        gone,
        raw.cast(),
        on_stack.as_ptr() as *mut Object,
        usize::MAX as *mut Object,
    ];
    let before = rt.in_use();
    for p in bad {
        assert_eq!(rt.incref_uncached(p), Status::PYMEM_ERR_INVALID_POINTER, "{p:p}");
        assert_eq!(rt.decref_uncached(p), Status::PYMEM_ERR_INVALID_POINTER, "{p:p}");
    }
    assert_eq!(rt.incref_uncached(ptr::null_mut()), Status::PYMEM_ERR_NULL_ARGUMENT);
    assert_eq!(rt.decref_uncached(ptr::null_mut()), Status::PYMEM_ERR_NULL_ARGUMENT);
    assert_eq!(rt.in_use(), before);
    assert_eq!(rt.refcount(o), 1);
    // SAFETY: live runtime, a block of its own.
    unsafe { pymem_free(rt.0, raw) };
    assert_eq!(rt.decref_uncached(o), Status::PYMEM_OK);
    rt.check();
}
