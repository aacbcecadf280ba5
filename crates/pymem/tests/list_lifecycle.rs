//! A list's life through the C ABI, on the paths that skip the boundary:
//! the quiet death of a short list whose items all survive it (decref of
//! its last reference), the spare item arrays dying lists leave for the next
//! list that outgrows its inline slots, and every case the quiet path must
//! leave to the full one (an item that dies, a long list, a list that is
//! not the last reference, full free lists). Each is checked against what
//! the full deallocation does: item counts, the collector's count, bytes and
//! blocks in use, and the list being gone.

mod common;

use common::Rt;
use pymem::gc::pymem_gc_get_count;
use pymem::object::{pymem_incref, pymem_list_len};
use pymem::Status;

impl Rt {
    fn gc_count0(&self) -> i64 {
        let mut counts = [0i64; 3];
        // SAFETY: live runtime, three writable counts.
        self.ok(unsafe { pymem_gc_get_count(self.0, counts.as_mut_ptr()) });
        counts[0]
    }
}

/// The lists of the test, each a fresh `list(items)` made and dropped the
/// same way on both runtimes: one where the quiet path may run, one where it
/// never does (free lists of length 0 send every list death through the
/// full deallocation). Both must end in the same counts.
#[test]
fn a_quiet_list_death_drops_what_a_full_one_drops() {
    let quiet = Rt::new(|_| {});
    let full = Rt::new(|c| {
        c.list_free_list = 0;
    });
    for rt in [&quiet, &full] {
        let (a, b) = (rt.int(10_000), rt.float(0.5));
        let small = rt.int(3); // immortal
        let count0 = rt.gc_count0();
        for items in [vec![], vec![a], vec![a, b, small], vec![a; 8], vec![b; 3]] {
            let before = (rt.refcount(a), rt.refcount(b));
            let l = rt.list(&items);
            assert_eq!(rt.gc_count0(), count0 + 1);
            assert_eq!(rt.decref(l), Status::PYMEM_OK);
            assert_eq!((rt.refcount(a), rt.refcount(b)), before, "{} items", items.len());
            assert_eq!(rt.gc_count0(), count0, "untracked");
            // Gone: on a free list (count 0) or freed.
            let again = rt.decref(l);
            assert!(
                matches!(again, Status::PYMEM_ERR_REFCOUNT_UNDERFLOW | Status::PYMEM_ERR_INVALID_POINTER),
                "{again:?}"
            );
        }
        assert_eq!(rt.decref(a), Status::PYMEM_OK);
        assert_eq!(rt.decref(b), Status::PYMEM_OK);
    }
}

/// What the quiet path must not take: a list that is not at its last
/// reference, an item that dies with the list, a list longer than the spare
/// array size. The full path frees the dying items.
#[test]
fn list_deaths_that_free_items_or_are_not_last_take_the_full_path() {
    // No int free list: an item that dies gives its block back.
    let rt = Rt::new(|c| c.int_free_list = 0);
    rt.int(0); // the runtime makes its immortal singletons on first use
    let base = rt.stats();
    // A shared list: the decref only drops a count.
    let a = rt.int(70_000);
    let l = rt.list(&[a]);
    // SAFETY: live runtime and list.
    rt.ok(unsafe { pymem_incref(rt.0, l) });
    assert_eq!(rt.decref(l), Status::PYMEM_OK);
    let mut len = 0;
    // SAFETY: live runtime and list, writable out.
    rt.ok(unsafe { pymem_list_len(rt.0, l, &mut len) });
    assert_eq!(len, 1, "still alive");
    assert_eq!(rt.refcount(a), 2);
    // Its last reference, with an item only it holds: the item dies too.
    assert_eq!(rt.decref(a), Status::PYMEM_OK);
    assert_eq!(rt.refcount(a), 1);
    let in_use = rt.stats().blocks_in_use;
    assert_eq!(rt.decref(l), Status::PYMEM_OK);
    assert_eq!(rt.decref(a), Status::PYMEM_ERR_INVALID_POINTER, "the item died with the list");
    assert!(rt.stats().blocks_in_use < in_use);
    // An item held twice by the list and by nothing else: its count is 2,
    // and it dies with the list all the same (found by gc_oracle).
    let twice = rt.int(80_000);
    let l2 = rt.list(&[twice, twice]);
    assert_eq!(rt.decref(twice), Status::PYMEM_OK);
    assert_eq!(rt.refcount(twice), 2);
    assert_eq!(rt.decref(l2), Status::PYMEM_OK);
    assert_eq!(rt.decref(twice), Status::PYMEM_ERR_INVALID_POINTER, "held twice, dies once");
    let shared = rt.int(90_000);
    let l3 = rt.list(&[shared, shared]);
    assert_eq!(rt.refcount(shared), 3);
    assert_eq!(rt.decref(l3), Status::PYMEM_OK);
    assert_eq!(rt.refcount(shared), 1, "both references dropped, one kept");
    assert_eq!(rt.decref(shared), Status::PYMEM_OK);
    // A long list of surviving items: correct counts either way.
    let x = rt.int(123_456);
    let long = rt.list(&[x; 20]);
    assert_eq!(rt.refcount(x), 21);
    assert_eq!(rt.decref(long), Status::PYMEM_OK);
    assert_eq!(rt.refcount(x), 1);
    assert_eq!(rt.decref(x), Status::PYMEM_OK);
    rt.clear_free_lists();
    let end = rt.stats();
    assert_eq!((end.blocks_in_use, end.bytes_in_use), (base.blocks_in_use, base.bytes_in_use));
}

/// A list that outgrows its two inline slots gets an 8-item array; when it
/// dies the array is kept for the next such list, which then allocates
/// nothing: the same blocks stay in use, no more. `pymem_clear_free_lists`
/// gives them back, to the baseline.
#[test]
fn dying_lists_leave_spare_item_arrays_for_the_next_ones() {
    let rt = Rt::new(|_| {});
    let small = rt.int(1);
    let base = rt.stats();
    let first = rt.list(&[small; 3]);
    let with_one = rt.stats();
    assert_eq!(rt.decref(first), Status::PYMEM_OK);
    assert_eq!(rt.stats().blocks_in_use, with_one.blocks_in_use, "list and array kept (free list, spare array)");
    for round in 0..1000 {
        let l = rt.list(&[small; 5]);
        assert_eq!(rt.stats().blocks_in_use, with_one.blocks_in_use, "round {round}: nothing new allocated");
        assert_eq!(rt.decref(l), Status::PYMEM_OK);
    }
    // Many at once: more arrays than one, each kept when its list dies (up
    // to the list free list's bound, 80).
    let many: Vec<_> = (0..50).map(|_| rt.list(&[small; 3])).collect();
    for &l in &many {
        assert_eq!(rt.decref(l), Status::PYMEM_OK);
    }
    rt.clear_free_lists();
    let end = rt.stats();
    assert_eq!((end.blocks_in_use, end.bytes_in_use), (base.blocks_in_use, base.bytes_in_use), "all given back");
}
