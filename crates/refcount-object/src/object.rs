//! The object header and the memory layout of every built-in type.
//!
//! Every object is one block of the runtime's allocator, of kind
//! `BlockKind::Object`, and an object pointer is always the block's first
//! byte: so "is this a live object of this runtime?" is the allocator's O(1)
//! block test plus one flag test ([`crate::Heap::check`]).
//!
//! ```text
//! atoms (int, float, bool, None, str):   [ refcnt | type_id flags ][ data ...
//! containers (tuple, list, dict, ...):   [ refcnt | type_id flags ][ gc next | gc prev ][ data ...
//! ```
//! CPython puts its 16-byte `PyGC_Head` *before* the object; we put the
//! links after the header, so that the object pointer is the block start
//! for every type. A container's element array (a list's items, a dict's
//! table, an instance's values) starts inside the object's block (two list
//! items, a dict table of two entries, an instance's attribute slots) and
//! moves to a separate block of kind `Internal` once it outgrows that room.
//!
//! Invariants (checked by `Heap::check_invariants`):
//! 1. A live object has `refcnt >= 1`, or is immortal (`IMMORTAL` flag,
//!    `refcnt == IMMORTAL_REFCNT`, never freed before the heap).
//! 2. `DEAD` objects (waiting on a free list, or in their host `dealloc`
//!    callback) have `refcnt == 0` and are refused by `Heap::check`.
//! 3. An object is in exactly one generation list iff it is `TRACKED`.

use std::ptr::NonNull;

/// An object pointer. Ownership (new or borrowed reference) is by
/// convention, stated by each function, as in CPython's C API.
pub type Obj = NonNull<ObjHeader>;

/// The reference count immortal objects report (CPython 3.12's value).
pub const IMMORTAL_REFCNT: usize = 0xFFFF_FFFF;

#[repr(C)]
pub struct ObjHeader {
    pub(crate) refcnt: usize,
    pub(crate) type_id: u32,
    pub(crate) flags: u32,
}

/// The cycle collector's links, right after the header of container types.
#[repr(C)]
#[derive(Debug)]
pub struct GcLinks {
    pub next: *mut GcLinks,
    pub prev: *mut GcLinks,
}

impl Default for GcLinks {
    fn default() -> GcLinks {
        GcLinks { next: std::ptr::null_mut(), prev: std::ptr::null_mut() }
    }
}

/// Header flags.
pub mod flags {
    /// Never freed before the heap; incref/decref do nothing (PEP 683).
    pub const IMMORTAL: u32 = 1 << 0;
    /// In a generation list of the collector.
    pub const TRACKED: u32 = 1 << 1;
    /// Its `finalize` callback ran (PEP 442: at most once).
    pub const FINALIZED: u32 = 1 << 2;
    /// Dead to the ABI: on a free list, or being deallocated.
    pub const DEAD: u32 = 1 << 3;
    /// An interned string (the intern table holds an uncounted reference).
    pub const INTERNED: u32 = 1 << 4;
    /// A container type: `GcLinks` follow the header.
    pub const GC: u32 = 1 << 5;
    /// In the set a collection is scanning; the `prev` field of its links
    /// holds the collector's `gc_refs` (unless `UNREACHABLE`).
    pub const COLLECTING: u32 = 1 << 6;
    /// On a collection's tentatively unreachable list.
    pub const UNREACHABLE: u32 = 1 << 7;
    /// Weak references to it exist (the heap's weakref registry has an
    /// entry for it): its death clears them and queues their callbacks.
    pub const HAS_WEAKREFS: u32 = 1 << 8;
    /// In the permanent generation (`gc.freeze()`): tracked, but outside
    /// every collection. A full collection tells the objects it scans by
    /// `TRACKED` without `FROZEN`.
    pub const FROZEN: u32 = 1 << 9;
    /// An instance whose type has a host `traverse` callback: copied from
    /// the type when the instance is made (hooks never change), so the
    /// collector needs no type lookup for the many instances without one.
    pub const HOST_TRAVERSE: u32 = 1 << 10;
    /// An instance whose type has any host callback (`traverse`, `clear`,
    /// `finalize`, `dealloc`): deleting it as garbage may run host code.
    pub const HOST_CALLBACKS: u32 = 1 << 11;
    /// A dict into which a key other than a str was inserted since it was
    /// made or last emptied (CPython's `DICT_KEYS_GENERAL`). Without it every
    /// key is a str — an atom, which no collection needs to see — so the
    /// collector's traversal visits only the values, as CPython's
    /// `dict_traverse` does (and `gc.get_referents` lists only them).
    pub const GENERAL_KEYS: u32 = 1 << 12;
}

/// Type ids of the built-in types; host types follow from `FIRST_HOST_TYPE`.
pub mod type_ids {
    pub const NONE: u32 = 0;
    pub const BOOL: u32 = 1;
    pub const INT: u32 = 2;
    pub const FLOAT: u32 = 3;
    pub const STR: u32 = 4;
    pub const TUPLE: u32 = 5;
    pub const LIST: u32 = 6;
    pub const DICT: u32 = 7;
    pub const MODULE: u32 = 8;
    pub const FUNCTION: u32 = 9;
    pub const FIRST_HOST_TYPE: u32 = 10;
}

#[repr(C)]
pub(crate) struct IntObj {
    pub(crate) h: ObjHeader,
    pub(crate) value: i64,
}

#[repr(C)]
pub(crate) struct FloatObj {
    pub(crate) h: ObjHeader,
    pub(crate) value: f64,
}

#[repr(C)]
pub(crate) struct BoolObj {
    pub(crate) h: ObjHeader,
    pub(crate) value: u64,
}

/// A str: UTF-8 bytes inline after the fixed part, NUL-terminated (so C can
/// read `pymem_str_value` directly).
#[repr(C)]
pub(crate) struct StrObj {
    pub(crate) h: ObjHeader,
    /// Cached hash; `HASH_NOT_COMPUTED` until first asked.
    pub(crate) hash: i64,
    pub(crate) len: usize,
    pub(crate) data: [u8; 0],
}

pub(crate) const HASH_NOT_COMPUTED: i64 = -1;

#[repr(C)]
pub(crate) struct TupleObj {
    pub(crate) h: ObjHeader,
    pub(crate) gc: GcLinks,
    pub(crate) len: usize,
    pub(crate) items: [Obj; 0],
}

/// A list: `len` references in `items`, which points at the slots inline
/// at the end of the list's own block (`cap == ListObj::INLINE`: a list of
/// up to two items is one 64-byte block, one cache line for the
/// collector, as an instance keeps its values inline) or, once the list
/// outgrew them, at an `Internal` block of `cap` pointers (the inline slots
/// then unused). Lengths are 32-bit: at most 2^32 - 1 items.
#[repr(C)]
pub(crate) struct ListObj {
    pub(crate) h: ObjHeader,
    pub(crate) gc: GcLinks,
    pub(crate) len: u32,
    pub(crate) cap: u32,
    pub(crate) items: *mut Obj,
    inline: [std::mem::MaybeUninit<Obj>; ListObj::INLINE],
}

impl ListObj {
    /// Item slots inside the list's own block.
    pub(crate) const INLINE: usize = 2;

    /// An empty list using its inline slots (a new or revived list).
    pub(crate) fn reset_to_inline(&mut self) {
        self.len = 0;
        self.cap = Self::INLINE as u32;
        self.items = self.inline.as_mut_ptr().cast();
    }

    /// Whether the items live in a block of their own (to free with the list).
    pub(crate) fn has_own_block(&self) -> bool {
        !std::ptr::eq(self.items as *const Obj, self.inline.as_ptr().cast())
    }

    pub(crate) fn len(&self) -> usize {
        self.len as usize
    }
}

/// A dict: its table's description, and room for a small table inside the
/// dict's own block (see `crate::dict`): a dict of up to two entries is one
/// block, as a short list and an instance are.
#[repr(C)]
pub(crate) struct DictObj {
    pub(crate) h: ObjHeader,
    pub(crate) gc: GcLinks,
    pub(crate) table: crate::dict::DictTable,
    pub(crate) inline: crate::dict::InlineTable,
}

// A list fits one 64-byte size class: the blocks of that class sit on
// cache-line boundaries (pools are 16 KiB aligned), so the collector reads
// a list's header, links and first items with one line. A dict with its
// inline table is 112 bytes: a one-entry dict reads two lines, where a dict
// with its table in a block of its own read two lines of two blocks.
const _: () = assert!(std::mem::size_of::<ListObj>() == 64 && std::mem::size_of::<DictObj>() == 112);

/// An instance of a host type: the host's payload bytes, then (when its
/// type already had attribute names) its attribute values inline, in a
/// values array indexed by the type's shared keys (CPython 3.11's split
/// table; inline as CPython 3.13 has them):
///
/// ```text
/// [ header | links | values nvalues inline_cap ][ payload ... ][ inline values ]
/// ```
/// `values` is null (`nvalues == 0`), or points at the inline array
/// (`nvalues == inline_cap > 0`), or at an `Internal` block of its own once
/// the instance needed more slots than were inline (`nvalues >
/// inline_cap`; the inline slots are then unused). So an instance and its
/// attributes are usually one block: one cache line fewer per traversal.
#[repr(C)]
pub(crate) struct InstanceObj {
    pub(crate) h: ObjHeader,
    pub(crate) gc: GcLinks,
    /// `nvalues` slots, null for deleted or unset attributes; slot `i`
    /// belongs to the type's key `i`.
    pub(crate) values: *mut Option<Obj>,
    pub(crate) nvalues: u32,
    /// Slots inline after the payload (fixed at creation).
    pub(crate) inline_cap: u32,
    /// Host bytes follow, 16-byte aligned.
    pub(crate) payload: [u128; 0],
}

impl InstanceObj {
    /// Whether the values live in a block of their own (to free with the
    /// instance, to realloc when growing).
    pub(crate) fn values_in_own_block(&self) -> bool {
        self.nvalues > self.inline_cap
    }
}

/// Where an instance's payload starts, from the object pointer: fixed for
/// every host type, so a host's `traverse` can reach its payload without a
/// call (the C header exports it as `PYMEM_INSTANCE_PAYLOAD_OFFSET`).
pub const INSTANCE_PAYLOAD_OFFSET: usize = std::mem::size_of::<InstanceObj>();

/// A module: its name and its attributes in a dict.
#[repr(C)]
pub(crate) struct ModuleObj {
    pub(crate) h: ObjHeader,
    pub(crate) gc: GcLinks,
    pub(crate) name: Obj,
    pub(crate) dict: Obj,
}

/// A function: a name, a native callback with its userdata, and attributes.
#[repr(C)]
pub(crate) struct FunctionObj {
    pub(crate) h: ObjHeader,
    pub(crate) gc: GcLinks,
    pub(crate) name: Obj,
    pub(crate) dict: Obj,
    /// The host's `pymem_native_fn` and userdata, opaque here: the facade
    /// calls them.
    pub(crate) native: usize,
    pub(crate) userdata: usize,
}

/// The header of an object.
///
/// # Safety
/// `o` is a live object (or one being deallocated).
#[inline(always)]
pub(crate) unsafe fn header<'a>(o: Obj) -> &'a mut ObjHeader {
    // SAFETY: contract.
    unsafe { &mut *o.as_ptr() }
}

/// The object's memory as a `T` of its type.
///
/// # Safety
/// `o` is a live object whose layout is `T`.
#[inline(always)]
pub(crate) unsafe fn body<'a, T>(o: Obj) -> &'a mut T {
    // SAFETY: contract.
    unsafe { &mut *(o.as_ptr() as *mut T) }
}

/// The collector links of a container.
///
/// # Safety
/// `o` is a live container (`GC` flag).
#[inline(always)]
pub(crate) unsafe fn gc_links(o: Obj) -> *mut GcLinks {
    // SAFETY: containers have their links right after the header.
    unsafe { (o.as_ptr() as *mut u8).add(std::mem::size_of::<ObjHeader>()) as *mut GcLinks }
}

/// The object whose links these are.
///
/// # Safety
/// `links` are the links of a container.
#[inline(always)]
pub unsafe fn from_gc_links(links: *mut GcLinks) -> Obj {
    // SAFETY: contract: the header precedes the links.
    unsafe { NonNull::new_unchecked((links as *mut u8).sub(std::mem::size_of::<ObjHeader>()) as *mut ObjHeader) }
}
