//! The heap: every object of a runtime, their reference counts, the
//! immortal singletons, the free lists and the collector's lists.
//!
//! Reading order: [`Heap::check`] (how a pointer from C becomes an object),
//! [`Heap::incref`]/[`Heap::decref`], then [`Heap::dealloc`], which frees
//! iteratively (CPython's "trashcan"): children whose count drops to zero
//! are pushed on a work stack instead of being freed recursively, so a list
//! nested a million deep is freed in constant stack.
//!
//! This crate never calls host code. An instance of a host type with a
//! `clear` or `dealloc` callback is not freed when its count drops to zero:
//! it is marked `DEAD` and queued ([`Heap::take_pending_host_dealloc`]); the
//! facade calls the callbacks with no borrow of the heap alive, then
//! [`Heap::finish_host_dealloc`] frees it.

use std::cell::Cell;
use std::ptr::{self, NonNull};

use hashbrown::HashMap;
use obmalloc::{Allocator, BlockKind};

use crate::error::{ObjError, ObjResult};
use crate::object::{
    body, flags, from_gc_links, gc_links, header, type_ids, BoolObj, FloatObj, FunctionObj, GcLinks, InstanceObj,
    IntObj, ListObj, ModuleObj, Obj, ObjHeader, StrObj, TupleObj, IMMORTAL_REFCNT,
};
use crate::types::{builtins, HostHooks, HostTypeSpec, TypeInfo};

/// Settings of the object layer (CPython 3.11's values by default).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HeapConfig {
    /// Ints in `small_int_min..=small_int_max` are cached immortal objects
    /// (CPython: -5..=256; 3.15 caches up to 1024).
    pub small_int_min: i64,
    pub small_int_max: i64,
    /// Free list bounds: floats (CPython 3.11: 100), tuples per length
    /// (2000, lengths 1..=`tuple_free_list_max_len`, 20), lists (80), dicts
    /// (80), and ints outside the small-int cache (CPython 3.14: 100).
    pub float_free_list: usize,
    pub tuple_free_list: usize,
    pub tuple_free_list_max_len: usize,
    pub list_free_list: usize,
    pub dict_free_list: usize,
    pub int_free_list: usize,
    /// repr/equal/deepcopy deeper than this fail with `Recursion`.
    pub recursion_limit: usize,
    /// Tracked allocations minus deallocations beyond which a collection is
    /// due (the collector's threshold0; 0 = never due).
    pub gc_threshold0: i64,
}

impl Default for HeapConfig {
    fn default() -> HeapConfig {
        HeapConfig {
            small_int_min: -5,
            small_int_max: 256,
            float_free_list: 100,
            tuple_free_list: 2000,
            tuple_free_list_max_len: 20,
            list_free_list: 80,
            dict_free_list: 80,
            int_free_list: 100,
            recursion_limit: 10_000,
            gc_threshold0: 700,
        }
    }
}

/// A circular doubly linked list of tracked containers, with a sentinel.
///
/// The members' links point at the sentinel, and unlinking a member
/// (`gc_unlink`, through those pointers) writes to it: so the sentinel lives
/// in an `UnsafeCell` and every method takes `&self`, like a `Cell`. A
/// `&GcList` therefore promises nothing about the list staying the same
/// across a call that may unlink one of its members — which is exactly how
/// the collector uses it (an `&mut GcList` held across such a call would
/// let the compiler assume the sentinel unchanged).
#[derive(Default)]
pub struct GcList {
    head: std::cell::UnsafeCell<GcLinks>,
}

impl GcList {
    /// An empty list; call [`GcList::init`] once it is at its final address.
    pub fn new() -> GcList {
        GcList::default()
    }

    /// The sentinel's links (its address is the list's identity).
    #[inline(always)]
    pub fn sentinel(&self) -> *mut GcLinks {
        self.head.get()
    }

    /// Makes the list empty; the sentinel points at itself, so the list must
    /// not move afterwards (box it).
    pub fn init(&self) {
        let me = self.sentinel();
        // SAFETY: the sentinel is ours; no member links to it any more.
        unsafe {
            (*me).next = me;
            (*me).prev = me;
        }
    }

    /// The first member's links (the sentinel's when empty).
    #[inline(always)]
    fn first_links(&self) -> *mut GcLinks {
        // SAFETY: the sentinel is valid while the list lives.
        unsafe { (*self.sentinel()).next }
    }

    /// The number of objects on the list (O(n)).
    pub fn len(&self) -> usize {
        self.iter().count()
    }

    /// The first object, if any.
    #[inline(always)]
    pub fn first(&self) -> Option<Obj> {
        if self.is_empty() {
            None
        } else {
            // SAFETY: a member's links belong to a live container.
            Some(unsafe { from_gc_links(self.first_links()) })
        }
    }

    #[inline(always)]
    pub fn is_empty(&self) -> bool {
        ptr::eq(self.first_links(), self.sentinel())
    }

    /// The objects in the list, in order.
    pub fn objects(&self) -> Vec<Obj> {
        self.iter().collect()
    }

    /// The objects in the list, in order, without copying them. Walks the
    /// `next` links only, so a collection may use the `prev` fields of the
    /// members meanwhile; the list must not be relinked during the walk.
    pub fn iter(&self) -> GcListIter<'_> {
        GcListIter { head: self.sentinel(), at: self.first_links(), _list: std::marker::PhantomData }
    }

    /// Links `links` at the tail.
    ///
    /// # Safety
    /// `links` belong to a live container on no list.
    #[inline(always)]
    pub unsafe fn push_back(&self, links: *mut GcLinks) {
        let me = self.sentinel();
        // SAFETY: contract; the sentinel and its neighbours are live.
        unsafe {
            (*links).prev = (*me).prev;
            (*links).next = me;
            (*(*me).prev).next = links;
            (*me).prev = links;
        }
    }

    /// Moves every member of `other` to the tail of this list.
    pub fn append(&self, other: &GcList) {
        if other.is_empty() || ptr::eq(self, other) {
            return;
        }
        let (me, them) = (self.sentinel(), other.sentinel());
        // SAFETY: both lists are well formed; the splice keeps them so.
        unsafe {
            let first = (*them).next;
            let last = (*them).prev;
            (*first).prev = (*me).prev;
            (*(*me).prev).next = first;
            (*last).next = me;
            (*me).prev = last;
        }
        other.init();
    }
}

/// An iterator over a [`GcList`] (see [`GcList::iter`]).
pub struct GcListIter<'a> {
    head: *mut GcLinks,
    at: *mut GcLinks,
    _list: std::marker::PhantomData<&'a GcList>,
}

impl Iterator for GcListIter<'_> {
    type Item = Obj;

    #[inline(always)]
    fn next(&mut self) -> Option<Obj> {
        if ptr::eq(self.at, self.head) {
            return None;
        }
        // SAFETY: members of a well-formed list are live containers, and the
        // list is borrowed, so it is not relinked while we walk it.
        unsafe {
            let o = from_gc_links(self.at);
            prefetch_past(self.at);
            self.at = (*self.at).next;
            Some(o)
        }
    }
}

/// Asks the CPU to fetch the cache line of `addr` into its caches: a hint,
/// which reads nothing the program sees and never faults, whatever the
/// address (so no pointer needs to be valid here).
#[inline(always)]
pub(crate) fn prefetch(addr: *const i8) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: a prefetch is a hint: it reads nothing the program sees and
    // cannot fault.
    unsafe {
        std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(addr)
    };
    #[cfg(not(target_arch = "x86_64"))]
    let _ = addr;
}

/// Prefetches the header of object `o`.
#[inline(always)]
pub(crate) fn prefetch_object(o: Obj) {
    prefetch(o.as_ptr() as *const i8);
}

/// How far past an object a walk of a generation list prefetches, in bytes.
pub const WALK_PREFETCH_BYTES: usize = 4096;

/// Prefetches the memory `WALK_PREFETCH_BYTES` past `links`: a generation
/// list mostly follows allocation order, so its members sit one after
/// another in their pools, and a walk that follows the links one miss at a
/// time (the hardware prefetcher stops at each 4 KiB page) streams instead.
#[inline(always)]
pub fn prefetch_past(links: *const GcLinks) {
    prefetch((links as *const i8).wrapping_add(WALK_PREFETCH_BYTES));
}

/// Unlinks `links` from whatever list holds them.
///
/// # Safety
/// `links` are on a well-formed list.
pub unsafe fn gc_unlink(links: *mut GcLinks) {
    // SAFETY: contract.
    unsafe {
        (*(*links).prev).next = (*links).next;
        (*(*links).next).prev = (*links).prev;
        (*links).next = ptr::null_mut();
        (*links).prev = ptr::null_mut();
    }
}

/// What this crate keeps for the cycle collector: the generation lists as
/// plain data, the count, and the "collection due" flag. It never collects.
///
/// Each list is boxed: its sentinel is written through the links of its
/// members (an unlink), so it must not live inside the heap's own memory,
/// which `&mut Heap` methods hold exclusively while they unlink objects.
pub struct GcState {
    pub generations: [Box<GcList>; 3],
    pub permanent: Box<GcList>,
    /// Allocations minus deallocations of tracked objects since the last
    /// collection of generation 0 (never below 0).
    pub count0: i64,
    pub threshold0: i64,
    pub enabled: bool,
    /// Set when `count0` passes `threshold0` while enabled; the facade runs a
    /// collection when the outermost call returns.
    pub collection_due: bool,
}

/// A bounded list of dead objects kept for reuse, linked through the word
/// after their header.
#[derive(Clone, Copy)]
struct FreeList {
    head: *mut ObjHeader,
    len: usize,
}

impl FreeList {
    const EMPTY: FreeList = FreeList { head: ptr::null_mut(), len: 0 };

    fn link(o: *mut ObjHeader) -> *mut *mut ObjHeader {
        // SAFETY: every object has at least one word after its header.
        unsafe { (o as *mut u8).add(std::mem::size_of::<ObjHeader>()) as *mut *mut ObjHeader }
    }

    /// # Safety
    /// `o` is a dead object of the list's kind, on no list.
    unsafe fn push(&mut self, o: Obj) {
        // SAFETY: contract.
        unsafe { *Self::link(o.as_ptr()) = self.head };
        self.head = o.as_ptr();
        self.len += 1;
    }

    fn pop(&mut self) -> Option<Obj> {
        let o = NonNull::new(self.head)?;
        // SAFETY: members are dead objects linked through `link`.
        self.head = unsafe { *Self::link(o.as_ptr()) };
        self.len -= 1;
        Some(o)
    }
}

/// How many dead objects each free list holds ([`Heap::free_list_lengths`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FreeListLengths {
    pub floats: usize,
    pub ints: usize,
    /// All lengths together.
    pub tuples: usize,
    pub lists: usize,
    pub dicts: usize,
}

/// Item arrays of the first size a list grows to out of its inline slots
/// ([`SPARE_ARRAY_CAP`] items), kept from dying lists for the next list
/// that outgrows its inline slots — as CPython's free list keeps list
/// objects, this keeps the array a short list allocates and frees with
/// each life (a list built by a few appends, then dropped). Linked
/// through each array's first word. Bounded by `HeapConfig::list_free_list`;
/// emptied by `clear_free_lists`.
struct SpareArrays {
    head: *mut u8,
    len: usize,
}

/// The capacity of a list's first item array of its own (`grown_capacity`
/// of one item more than the inline slots hold): the arrays kept spare.
pub(crate) const SPARE_ARRAY_CAP: usize = crate::list::grown_capacity(ListObj::INLINE + 1);

impl SpareArrays {
    const EMPTY: SpareArrays = SpareArrays { head: ptr::null_mut(), len: 0 };

    /// # Safety
    /// `array` is an `Internal` block of `SPARE_ARRAY_CAP` items that no
    /// list uses.
    unsafe fn push(&mut self, array: *mut u8) {
        // SAFETY: contract: the block is ours and at least a word long.
        unsafe { *(array as *mut *mut u8) = self.head };
        self.head = array;
        self.len += 1;
    }

    fn pop(&mut self) -> Option<*mut u8> {
        let array = self.head;
        if array.is_null() {
            return None;
        }
        // SAFETY: members are spare arrays linked through their first word.
        self.head = unsafe { *(array as *const *mut u8) };
        self.len -= 1;
        Some(array)
    }
}

/// What [`Heap::decref_if_simple`] did.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum SimpleDecref {
    /// The reference was dropped.
    Done,
    /// Nothing: not a case it handles.
    NotDone,
    /// Nothing: the pointer is a known list and this is its last reference.
    LastReferenceToList,
    /// Nothing: the validation cache does not know the pointer (the caller
    /// tries [`Heap::decref_uncached_if_simple`], out of its hot path).
    NotCached,
}

/// All the objects of one runtime. Boxed (`Heap::new` returns a `Box`):
/// the generation lists' sentinels must not move.
pub struct Heap {
    pub alloc: Allocator,
    pub config: HeapConfig,
    /// Boxed: a host type's handle is its `TypeInfo`'s address, which must
    /// not move when the vector grows.
    #[allow(clippy::vec_box)]
    types: Vec<Box<TypeInfo>>,
    pub(crate) none: Obj,
    pub(crate) true_: Obj,
    pub(crate) false_: Obj,
    pub(crate) empty_tuple: Obj,
    pub(crate) empty_str: Obj,
    pub(crate) small_ints: Vec<Obj>,
    pub(crate) one_char_strs: Vec<Obj>,
    /// Interned strs by content; the table's references are not counted.
    pub(crate) interned: HashMap<Box<[u8]>, Obj>,
    pub gc: GcState,
    free_floats: FreeList,
    free_ints: FreeList,
    free_tuples: Vec<FreeList>,
    free_lists: FreeList,
    spare_arrays: SpareArrays,
    free_dicts: FreeList,
    /// Host instances waiting for their `clear`/`dealloc` callbacks.
    pending_host: Vec<Obj>,
    /// Host instances whose callbacks are running now.
    in_host_dealloc: Vec<Obj>,
    /// Work stack of the iterative deallocation.
    trash: Vec<Obj>,
    /// Reused by `clear_builtin` for the references it drops.
    pub(crate) clear_buffer: Vec<Obj>,
    /// Weak references to this heap's objects (`weakref.rs`).
    pub(crate) weakrefs: crate::weakref::WeakRegistry,
    /// Whether the singletons exist (see `Heap::new_lazy`).
    ready: bool,
    /// Addresses of objects validated recently and alive since: a
    /// direct-mapped cache (slot = address / 16 mod 64) in front of the
    /// allocator's test, so an object passed again and again (a list being
    /// filled, the small ints) is validated with one compare. Every object
    /// death clears its slot (`forget_valid`), so a hit is always a live
    /// object.
    valid_cache: [Cell<usize>; VALID_CACHE_SLOTS],
}

const VALID_CACHE_SLOTS: usize = 64;

/// How many items ahead a long list's deallocation prefetches the header
/// of the item it will release.
pub(crate) const PREFETCH_AHEAD: usize = 96;

#[inline(always)]
fn valid_slot(addr: usize) -> usize {
    (addr >> 4) & (VALID_CACHE_SLOTS - 1)
}

#[cold]
#[inline(never)]
fn alloc_failed(e: obmalloc::AllocError) -> ObjError {
    ObjError::from(e)
}

/// Size of the fixed part of an object of `T`.
pub(crate) const fn size_of<T>() -> usize {
    std::mem::size_of::<T>()
}

impl Heap {
    /// A heap over `alloc`, with the immortal singletons made.
    pub fn new(alloc: Allocator, config: HeapConfig) -> ObjResult<Box<Heap>> {
        let mut heap = Heap::new_lazy(alloc, config);
        heap.ensure_ready()?;
        Ok(heap)
    }

    /// A heap whose singletons are made on the first [`Heap::ensure_ready`],
    /// so that a host using only the raw allocator never pays for them (an
    /// arena of object pools, 395 blocks). No object may be made before.
    pub fn new_lazy(alloc: Allocator, config: HeapConfig) -> Box<Heap> {
        let dangling = NonNull::dangling();
        let mut heap = Box::new(Heap {
            alloc,
            config,
            types: builtins().into_iter().map(Box::new).collect(),
            none: dangling,
            true_: dangling,
            false_: dangling,
            empty_tuple: dangling,
            empty_str: dangling,
            small_ints: Vec::new(),
            one_char_strs: Vec::new(),
            interned: HashMap::new(),
            gc: GcState {
                generations: [Box::default(), Box::default(), Box::default()],
                permanent: Box::default(),
                count0: 0,
                threshold0: config.gc_threshold0,
                enabled: true,
                collection_due: false,
            },
            free_floats: FreeList::EMPTY,
            free_ints: FreeList::EMPTY,
            free_tuples: vec![FreeList::EMPTY; config.tuple_free_list_max_len + 1],
            free_lists: FreeList::EMPTY,
            spare_arrays: SpareArrays::EMPTY,
            free_dicts: FreeList::EMPTY,
            pending_host: Vec::new(),
            in_host_dealloc: Vec::new(),
            trash: Vec::new(),
            clear_buffer: Vec::new(),
            weakrefs: Default::default(),
            ready: false,
            valid_cache: std::array::from_fn(|_| Cell::new(0)),
        });
        for list in heap.gc.generations.iter_mut() {
            list.init();
        }
        heap.gc.permanent.init();
        heap
    }

    /// Makes the immortal singletons if they do not exist yet.
    #[inline(always)]
    pub fn ensure_ready(&mut self) -> ObjResult<()> {
        if self.ready {
            return Ok(());
        }
        self.make_singletons_slow()
    }

    #[cold]
    #[inline(never)]
    fn make_singletons_slow(&mut self) -> ObjResult<()> {
        self.make_singletons()?;
        self.ready = true;
        Ok(())
    }

    fn make_singletons(&mut self) -> ObjResult<()> {
        self.none = self.new_immortal(type_ids::NONE, size_of::<ObjHeader>() + 8)?;
        self.true_ = self.new_immortal(type_ids::BOOL, size_of::<BoolObj>())?;
        self.false_ = self.new_immortal(type_ids::BOOL, size_of::<BoolObj>())?;
        // SAFETY: just made with the layout of a bool.
        unsafe {
            body::<BoolObj>(self.true_).value = 1;
            body::<BoolObj>(self.false_).value = 0;
        }
        self.empty_tuple = self.new_immortal(type_ids::TUPLE, size_of::<TupleObj>())?;
        // SAFETY: just made with the layout of a tuple (the links stay
        // null: immortal singletons are never tracked).
        unsafe { body::<TupleObj>(self.empty_tuple).len = 0 };
        self.empty_str = self.new_immortal_str(b"")?;
        for c in 0u8..128 {
            let s = self.new_immortal_str(&[c])?;
            self.one_char_strs.push(s);
        }
        for v in self.config.small_int_min..=self.config.small_int_max {
            let o = self.new_immortal(type_ids::INT, size_of::<IntObj>())?;
            // SAFETY: just made with the layout of an int.
            unsafe { body::<IntObj>(o).value = v };
            self.small_ints.push(o);
        }
        Ok(())
    }

    fn new_immortal(&mut self, type_id: u32, size: usize) -> ObjResult<Obj> {
        let o = self.alloc.malloc_object(size)?.cast::<ObjHeader>();
        // SAFETY: a fresh block of `size >= 16` bytes.
        unsafe {
            ptr::write_bytes(o.as_ptr() as *mut u8, 0, size);
            o.as_ptr().write(ObjHeader { refcnt: IMMORTAL_REFCNT, type_id, flags: flags::IMMORTAL });
        }
        Ok(o)
    }

    fn new_immortal_str(&mut self, bytes: &[u8]) -> ObjResult<Obj> {
        let o = self.new_immortal(type_ids::STR, size_of::<StrObj>() + bytes.len() + 1)?;
        // SAFETY: the block holds the fixed part plus `len + 1` bytes.
        unsafe { crate::str::init_str(o, bytes) };
        Ok(o)
    }

    // ------------------------------------------------------------------
    // validation

    /// Turns a pointer from outside into an object of this heap: a live
    /// object block (the allocator's O(1) test: in one of our arenas, on a
    /// block boundary, allocated, of kind Object), not dead.
    #[inline(always)]
    pub fn check(&self, p: *const u8) -> ObjResult<Obj> {
        match self.lookup(p) {
            Some(o) => Ok(o),
            None => Err(self.invalid(p)),
        }
    }

    /// [`Heap::check`] without the error message: the fast path.
    #[inline(always)]
    pub fn lookup(&self, p: *const u8) -> Option<Obj> {
        let addr = p as usize;
        let slot = &self.valid_cache[valid_slot(addr)];
        if slot.get() == addr && addr != 0 {
            // SAFETY: the cache only holds live objects (see `valid_cache`).
            return Some(unsafe { NonNull::new_unchecked(p as *mut ObjHeader) });
        }
        if self.alloc.is_live_object(p) {
            // SAFETY: a live object block starts with an initialised header.
            let o = unsafe { NonNull::new_unchecked(p as *mut ObjHeader) };
            // SAFETY: as above.
            if unsafe { header(o) }.flags & flags::DEAD == 0 {
                slot.set(addr);
                return Some(o);
            }
        }
        None
    }

    /// decref of any pointer, validated: false (nothing done) when it is not
    /// a live object of this heap. One validation serves both the lookup
    /// and, for an int that dies (a list of ints dropped item by item from
    /// outside, none of them in the validation cache), the free.
    #[inline(always)]
    pub fn decref_validated(&mut self, p: *const u8) -> bool {
        if let Some(o) = self.cached(p) {
            self.decref(o);
            return true;
        }
        let Some(block) = self.alloc.find_live(p, BlockKind::Object) else { return false };
        // SAFETY: a live object block starts with an initialised header.
        let o = unsafe { NonNull::new_unchecked(p as *mut ObjHeader) };
        // SAFETY: as above.
        let h = unsafe { header(o) };
        if h.flags & flags::DEAD != 0 {
            return false;
        }
        if h.refcnt == 1 && h.type_id == type_ids::INT && h.flags & flags::IMMORTAL == 0 {
            // Not in the validation cache (just missed there): nothing to forget.
            h.refcnt = 0;
            if self.free_ints.len < self.config.int_free_list {
                h.flags |= flags::DEAD;
                // SAFETY: an int with count zero, never tracked, on no list.
                unsafe { self.free_ints.push(o) };
            } else {
                // SAFETY: `block` is where `find_live` found `p`, nothing since.
                unsafe { self.alloc.free_found(p as *mut u8, block) };
            }
            return true;
        }
        self.remember_valid(o);
        self.decref(o);
        true
    }

    /// incref of a pointer the validation cache knows: the whole call for
    /// the common case, with no error path. Returns false (nothing done)
    /// when `p` is not in the cache; the caller then tries
    /// [`Heap::incref_uncached_if_simple`] (out of its hot path).
    #[inline(always)]
    pub fn incref_if_cached(&mut self, p: *const u8) -> bool {
        let Some(o) = self.cached(p) else { return false };
        self.incref(o);
        true
    }

    /// [`Heap::incref_if_cached`] of a pointer the validation cache does not
    /// know, validated as in [`Heap::decref_uncached_if_simple`]; false when
    /// that cannot say (the caller then validates it fully).
    #[inline(always)]
    pub fn incref_uncached_if_simple(&mut self, p: *const u8) -> bool {
        if self.alloc.find_live_near(p, BlockKind::Object).is_none() {
            return false;
        }
        // SAFETY: a live object block starts with an initialised header.
        let o = unsafe { NonNull::new_unchecked(p as *mut ObjHeader) };
        // SAFETY: as above.
        if unsafe { header(o) }.flags & flags::DEAD != 0 {
            return false;
        }
        self.incref(o);
        true
    }

    /// decref of a live object (one the validation cache knows, or else
    /// validated by [`Heap::decref_uncached_if_simple`]), when it leaves the
    /// caller nothing to do after it: an immortal object, a count above 1,
    /// or the death of an int or a float (no references, no weak
    /// references, never tracked: nothing is queued) that goes to its free
    /// list or back to its pool without a pool state change. The
    /// common cases, with no error path and no allocator bookkeeping (so
    /// nothing that could panic outside the boundary's guard). Otherwise
    /// nothing is done, and the answer says whether `p` is a list whose last
    /// reference this is (for `decref_list_if_quiet`).
    #[inline(always)]
    pub fn decref_if_simple(&mut self, p: *const u8) -> SimpleDecref {
        let Some(o) = self.cached(p) else { return SimpleDecref::NotCached };
        // SAFETY: a live object.
        let h = unsafe { header(o) };
        if h.flags & flags::IMMORTAL != 0 {
            return SimpleDecref::Done;
        }
        if h.refcnt > 1 {
            h.refcnt -= 1;
            return SimpleDecref::Done;
        }
        match h.type_id {
            type_ids::INT if self.free_ints.len < self.config.int_free_list => {
                self.forget_valid(o);
                h.refcnt = 0;
                h.flags |= flags::DEAD;
                // SAFETY: an int with count zero, never tracked, on no list.
                unsafe { self.free_ints.push(o) };
                return SimpleDecref::Done;
            }
            type_ids::INT => {}
            type_ids::FLOAT if self.free_floats.len < self.config.float_free_list => {
                self.forget_valid(o);
                h.refcnt = 0;
                h.flags |= flags::DEAD;
                // SAFETY: a float with count zero, never tracked, on no list.
                unsafe { self.free_floats.push(o) };
                return SimpleDecref::Done;
            }
            type_ids::FLOAT => {}
            type_ids::LIST => return SimpleDecref::LastReferenceToList,
            _ => return SimpleDecref::NotDone,
        }
        // An int or a float its free list has no room for.
        if self.alloc.free_kind_fast(p as *mut u8, obmalloc::BlockKind::Object) {
            self.forget_valid(o);
            return SimpleDecref::Done;
        }
        SimpleDecref::NotDone
    }

    /// [`Heap::decref_if_simple`] of a pointer the validation cache does not
    /// know (`NotCached`: an object made a while ago; the cache has 64
    /// slots): validated on the spot by the allocator's fast lookup — the
    /// start of an allocated object block of a cached arena, near the pool
    /// of the last such lookup — and a header that is not `DEAD`; anything
    /// the lookup cannot say, and any death but an int's or a float's, is
    /// left to the full path (which validates again and says why a pointer
    /// is refused). A list at its last reference is remembered as valid for
    /// `decref_list_if_quiet`.
    #[inline(always)]
    pub fn decref_uncached_if_simple(&mut self, p: *const u8) -> SimpleDecref {
        let Some(block) = self.alloc.find_live_near(p, BlockKind::Object) else { return SimpleDecref::NotDone };
        // SAFETY: a live object block starts with an initialised header.
        let o = unsafe { NonNull::new_unchecked(p as *mut ObjHeader) };
        // SAFETY: as above.
        let h = unsafe { header(o) };
        if h.flags & flags::DEAD != 0 {
            return SimpleDecref::NotDone;
        }
        if h.flags & flags::IMMORTAL != 0 {
            return SimpleDecref::Done;
        }
        if h.refcnt > 1 {
            h.refcnt -= 1;
            return SimpleDecref::Done;
        }
        // Dying, and not in the validation cache: nothing to forget there.
        let free_list = match h.type_id {
            type_ids::INT if self.free_ints.len < self.config.int_free_list => &mut self.free_ints,
            type_ids::FLOAT if self.free_floats.len < self.config.float_free_list => &mut self.free_floats,
            type_ids::INT | type_ids::FLOAT => {
                // SAFETY: `block` is where the allocator found `p`, nothing since.
                let freed = unsafe { self.alloc.free_found_fast(p as *mut u8, &block) };
                return if freed { SimpleDecref::Done } else { SimpleDecref::NotDone };
            }
            type_ids::LIST => {
                self.remember_valid(o);
                return SimpleDecref::LastReferenceToList;
            }
            _ => return SimpleDecref::NotDone,
        };
        h.refcnt = 0;
        h.flags |= flags::DEAD;
        // SAFETY: an int or a float with count zero, never tracked, on no
        // list, pushed on its own type's list.
        unsafe { free_list.push(o) };
        SimpleDecref::Done
    }

    /// decref of a pointer the validation cache knows as a list holding its
    /// last reference, when its death is quiet — its memory stays
    /// (`list_memory_stays`) and none of its items dies with it
    /// (`drop_references_unless_one_dies`): the list is deallocated, true.
    /// Otherwise false, nothing changed. Like `decref_if_simple`, a
    /// case with no follow-up and no error path; a separate call, so that
    /// the commoner cases keep a small frame.
    #[inline(always)]
    pub fn decref_list_if_quiet(&mut self, p: *const u8) -> bool {
        let Some(o) = self.cached(p) else { return false };
        // SAFETY: a live object.
        let h = unsafe { header(o) };
        if h.type_id != type_ids::LIST || h.refcnt != 1 || !self.list_memory_stays(o) {
            return false;
        }
        // SAFETY: a list, per its type id.
        let l = unsafe { body::<ListObj>(o) };
        // SAFETY: `items` holds `len` references to live objects.
        let items = unsafe { std::slice::from_raw_parts(l.items, l.len()) };
        if !Self::drop_references_unless_one_dies(items) {
            return false;
        }
        self.forget_valid(o);
        l.len = 0;
        // SAFETY: a list whose count drops to zero and whose references are
        // dropped: the rest of what `dealloc_one` does for it (lists take
        // no weak references).
        unsafe {
            let h = header(o);
            h.refcnt = 0;
            if h.flags & flags::TRACKED != 0 {
                self.untrack(o);
                self.gc.count0 = (self.gc.count0 - 1).max(0);
            }
        }
        self.finish_emptied_container(o);
        true
    }

    /// Drops one reference to each of `items` (a dying container's), when
    /// none of them dies of it: true. If one would die, every count is as
    /// before and the answer is false. Counting as it goes, not testing
    /// `count > 1` first: an object the container holds twice dies of its
    /// two references, though its count is 2.
    #[inline(always)]
    fn drop_references_unless_one_dies(items: &[Obj]) -> bool {
        let mut one_dies = false;
        for &item in items {
            // SAFETY: a live object the container holds a reference to.
            let h = unsafe { header(item) };
            if h.flags & flags::IMMORTAL == 0 {
                h.refcnt -= 1;
                one_dies |= h.refcnt == 0;
            }
        }
        if one_dies {
            for &item in items {
                // SAFETY: as above; the count dropped just now comes back.
                let h = unsafe { header(item) };
                if h.flags & flags::IMMORTAL == 0 {
                    h.refcnt += 1;
                }
            }
        }
        !one_dies
    }

    /// Whether list `o`, dying, keeps its memory without the allocator: a
    /// short list, room on the list free list and, for an array of its own,
    /// room among the spare arrays. With items that all survive it, its
    /// deallocation then only drops counts, untracks it and keeps its memory
    /// — no follow-up (nothing queued for host callbacks, no pool state
    /// change), which `decref_list_if_quiet` may run without the boundary's
    /// guard.
    #[inline(always)]
    fn list_memory_stays(&self, o: Obj) -> bool {
        // SAFETY: a list, per the caller's type test.
        let l = unsafe { body::<ListObj>(o) };
        if l.len() > SPARE_ARRAY_CAP || self.free_lists.len >= self.config.list_free_list {
            return false;
        }
        !l.has_own_block() || (l.cap as usize == SPARE_ARRAY_CAP && self.spare_arrays.len < self.config.list_free_list)
    }

    /// The object at `p` if the validation cache knows it (a live object),
    /// without asking the allocator: the fast paths' lookup.
    #[inline(always)]
    fn cached(&self, p: *const u8) -> Option<Obj> {
        let addr = p as usize;
        if self.valid_cache[valid_slot(addr)].get() != addr || addr == 0 {
            return None;
        }
        // SAFETY: the cache only holds live objects (see `valid_cache`).
        Some(unsafe { NonNull::new_unchecked(p as *mut ObjHeader) })
    }

    /// `list_new` when it needs neither the allocator's slow path nor an
    /// error: from the list free list, or a block from a pool in use. The
    /// list is tracked, so the caller checks `gc.collection_due` after it.
    #[inline(always)]
    pub fn list_new_if_fast(&mut self) -> Option<Obj> {
        if !self.ready {
            return None;
        }
        let o = match self.free_lists.pop() {
            Some(o) => Self::revive(o, type_ids::LIST, true),
            None => {
                let block = self.alloc.malloc_kind_fast(size_of::<ListObj>(), obmalloc::BlockKind::Object)?;
                let o = block.cast::<ObjHeader>();
                // SAFETY: a fresh object block of a list's size.
                unsafe { o.as_ptr().write(ObjHeader { refcnt: 1, type_id: type_ids::LIST, flags: flags::GC }) };
                o
            }
        };
        self.remember_valid(o);
        // SAFETY: a list block.
        unsafe { body::<ListObj>(o).reset_to_inline() };
        self.track(o);
        Some(o)
    }

    /// `list_append` when both objects are in the validation cache, `list`
    /// is a list, and it has room (a new list has two inline slots) — or
    /// is leaving its inline slots and the allocator's fast path gives the
    /// array CPython's growth rule asks for. Returns false, with nothing
    /// changed, otherwise.
    #[inline(always)]
    pub fn list_append_if_fast(&mut self, list: *const u8, item: *const u8) -> bool {
        let (Some(list), Some(item)) = (self.cached(list), self.cached(item)) else { return false };
        if self.type_id(list) != type_ids::LIST {
            return false;
        }
        // SAFETY: a list, per its type id.
        let l = unsafe { body::<ListObj>(list) };
        if l.len == l.cap {
            if l.has_own_block() {
                return false;
            }
            // Leaving the inline slots (full: `len == INLINE`) for the
            // first array size: a spare one, or one from a pool in use.
            let array = match self.spare_arrays.pop() {
                Some(array) => array,
                None => match self.alloc.malloc_kind_fast(SPARE_ARRAY_CAP * size_of::<Obj>(), BlockKind::Internal) {
                    Some(block) => block.as_ptr(),
                    None => return false,
                },
            };
            // SAFETY: the `INLINE` items of the full inline slots, into an
            // array of `SPARE_ARRAY_CAP > INLINE` items.
            unsafe { ptr::copy_nonoverlapping(l.items, array as *mut Obj, ListObj::INLINE) };
            l.items = array as *mut Obj;
            l.cap = SPARE_ARRAY_CAP as u32;
        }
        self.incref(item);
        // SAFETY: `len < cap`: room for one more item.
        unsafe { *l.items.add(l.len()) = item };
        l.len += 1;
        true
    }

    /// `int_new` when it needs neither the allocator's slow path nor an
    /// error: a small int, one from the free list, or a block from a pool
    /// in use. `None` (nothing changed) sends the caller to `int_new`.
    #[inline(always)]
    pub fn int_new_if_fast(&mut self, v: i64) -> Option<Obj> {
        if !self.ready {
            return None;
        }
        if v >= self.config.small_int_min && v <= self.config.small_int_max {
            return self.small_ints.get((v - self.config.small_int_min) as usize).copied();
        }
        let o = match self.free_ints.pop() {
            Some(o) => Self::revive(o, type_ids::INT, false),
            None => {
                let block =
                    self.alloc.malloc_kind_fast(size_of::<crate::object::IntObj>(), obmalloc::BlockKind::Object)?;
                let o = block.cast::<ObjHeader>();
                // SAFETY: a fresh object block of an int's size.
                unsafe { o.as_ptr().write(ObjHeader { refcnt: 1, type_id: type_ids::INT, flags: 0 }) };
                o
            }
        };
        // SAFETY: an int's block.
        unsafe { body::<crate::object::IntObj>(o).value = v };
        self.remember_valid(o);
        Some(o)
    }

    /// `float_new` when it needs neither the allocator's slow path nor an
    /// error: from the free list, or a block from a pool in use.
    #[inline(always)]
    pub fn float_new_if_fast(&mut self, v: f64) -> Option<Obj> {
        if !self.ready {
            return None;
        }
        let o = match self.free_floats.pop() {
            Some(o) => Self::revive(o, type_ids::FLOAT, false),
            None => {
                let block =
                    self.alloc.malloc_kind_fast(size_of::<crate::object::FloatObj>(), obmalloc::BlockKind::Object)?;
                let o = block.cast::<ObjHeader>();
                // SAFETY: a fresh object block of a float's size.
                unsafe { o.as_ptr().write(ObjHeader { refcnt: 1, type_id: type_ids::FLOAT, flags: 0 }) };
                o
            }
        };
        // SAFETY: a float's block.
        unsafe { body::<crate::object::FloatObj>(o).value = v };
        self.remember_valid(o);
        Some(o)
    }

    /// A spare item array (see `SpareArrays`) for a list growing to `cap`
    /// items, if `cap` is their size and one is kept.
    pub(crate) fn take_spare_array(&mut self, cap: usize) -> Option<NonNull<u8>> {
        if cap != SPARE_ARRAY_CAP {
            return None;
        }
        self.spare_arrays.pop().and_then(NonNull::new)
    }

    /// Empties the validation cache, for tests of the paths that serve a
    /// pointer it does not know (`pymem::testing::forget_validation_cache`).
    #[doc(hidden)]
    pub fn forget_validation_cache(&self) {
        self.forget_all_valid();
    }

    /// Empties the validation cache (see `release_child_then`).
    #[cold]
    fn forget_all_valid(&self) {
        for slot in &self.valid_cache {
            slot.set(0);
        }
    }

    /// Clears `o` from the validation cache: it is dying.
    #[inline(always)]
    fn forget_valid(&self, o: Obj) {
        let addr = o.as_ptr() as usize;
        let slot = &self.valid_cache[valid_slot(addr)];
        if slot.get() == addr {
            slot.set(0);
        }
    }

    #[cold]
    #[inline(never)]
    fn invalid(&self, p: *const u8) -> ObjError {
        if p.is_null() {
            return ObjError::InvalidPointer("the object is NULL".into());
        }
        if self.alloc.is_live_object(p) {
            return ObjError::InvalidPointer(format!(
                "invalid object {p:p}: a dead object (on a free list, or being deallocated)"
            ));
        }
        ObjError::InvalidPointer(format!(
            "invalid object {p:p}: not a live object of this runtime (freed, foreign, or memory that is not an object)"
        ))
    }

    /// Whether `p` is an object on a free list or being deallocated (so that
    /// a decref of it is an underflow rather than a foreign pointer).
    pub fn is_dead_object(&self, p: *const u8) -> bool {
        // SAFETY: a live object block starts with an initialised header.
        self.alloc.is_live_object(p)
            && unsafe { header(NonNull::new_unchecked(p as *mut ObjHeader)) }.flags & flags::DEAD != 0
    }

    // ------------------------------------------------------------------
    // reference counts

    /// Takes a reference. Immortal objects ignore it.
    #[inline(always)]
    pub fn incref(&mut self, o: Obj) {
        // SAFETY: `o` is a live object (callers checked it or own it).
        let h = unsafe { header(o) };
        if h.flags & flags::IMMORTAL == 0 {
            h.refcnt += 1;
        }
    }

    /// Drops a reference; the last one frees the object (and, iteratively,
    /// whatever only it kept alive). Immortal objects ignore it.
    #[inline(always)]
    pub fn decref(&mut self, o: Obj) {
        // SAFETY: `o` is a live object holding the reference being dropped.
        let h = unsafe { header(o) };
        if h.flags & flags::IMMORTAL != 0 {
            return;
        }
        h.refcnt -= 1;
        if h.refcnt == 0 {
            self.dealloc(o);
        }
    }

    /// The exact count (`IMMORTAL_REFCNT` for immortal objects).
    pub fn refcount(&self, o: Obj) -> usize {
        // SAFETY: live object.
        unsafe { header(o) }.refcnt
    }

    pub fn is_immortal(&self, o: Obj) -> bool {
        // SAFETY: live object.
        unsafe { header(o) }.flags & flags::IMMORTAL != 0
    }

    /// Returns a new reference to `o`.
    #[inline(always)]
    pub fn new_ref(&mut self, o: Obj) -> Obj {
        self.incref(o);
        o
    }

    // ------------------------------------------------------------------
    // types

    #[inline(always)]
    pub fn type_id(&self, o: Obj) -> u32 {
        // SAFETY: live object.
        unsafe { header(o) }.type_id
    }

    pub fn type_info(&self, id: u32) -> &TypeInfo {
        &self.types[id as usize]
    }

    pub(crate) fn type_info_mut(&mut self, id: u32) -> &mut TypeInfo {
        &mut self.types[id as usize]
    }

    pub fn type_of(&self, o: Obj) -> &TypeInfo {
        self.type_info(self.type_id(o))
    }

    /// The host callbacks of `o`'s type (all 0 for built-in types).
    #[inline(always)]
    pub fn host_hooks(&self, o: Obj) -> HostHooks {
        self.types[self.type_id(o) as usize].hooks
    }

    /// Whether any type of this heap has a `finalize` callback (if none, a
    /// collection need not look for objects to finalize).
    pub fn has_finalizer_types(&self) -> bool {
        self.types.iter().any(|t| t.hooks.finalize != 0)
    }

    /// Registers a host type; its handle is its `TypeInfo`'s address, stable
    /// until the heap is dropped.
    pub fn type_new(&mut self, spec: &HostTypeSpec) -> ObjResult<*const TypeInfo> {
        if spec.name.is_empty() || spec.name.as_bytes().contains(&0) {
            return Err(ObjError::InvalidArgument("a type needs a non-empty name without NUL bytes".into()));
        }
        let id = u32::try_from(self.types.len()).map_err(|_| ObjError::InvalidArgument("too many types".into()))?;
        let mut seen = hashbrown::HashSet::new();
        for slot in &spec.slots {
            if slot.is_empty() || slot.as_bytes().contains(&0) {
                return Err(ObjError::InvalidArgument("a slot needs a non-empty name without NUL bytes".into()));
            }
            if !seen.insert(slot.as_str()) {
                return Err(ObjError::InvalidArgument(format!("slot name '{slot}' appears twice")));
            }
        }
        let mut t = TypeInfo::host(id, spec);
        // The slots are the type's first keys: every instance has them inline.
        for slot in &spec.slots {
            match self.str_intern(slot.as_bytes()) {
                Ok(key) => {
                    t.key_index.insert(slot.as_bytes().into(), t.keys.len());
                    t.keys.push(key);
                }
                Err(e) => {
                    for key in t.keys.drain(..) {
                        self.decref(key);
                    }
                    return Err(e);
                }
            }
        }
        self.types.push(Box::new(t));
        Ok(&*self.types[id as usize] as *const TypeInfo)
    }

    /// Takes back the type `id` just registered by [`Heap::type_new`], when
    /// what it was registered for failed (out of memory) before any of its
    /// instances survived, so that the failure leaves the heap as it was.
    /// Does nothing unless `id` is the newest type and a host type.
    ///
    /// The caller guarantees that no instance of it is alive.
    pub fn type_unregister_newest(&mut self, id: u32) {
        if id < type_ids::FIRST_HOST_TYPE || id as usize + 1 != self.types.len() {
            return;
        }
        if let Some(mut t) = self.types.pop() {
            for key in t.keys.drain(..) {
                self.decref(key);
            }
        }
    }

    /// Turns a type handle from outside into a host type id.
    pub fn check_type(&self, t: *const TypeInfo) -> ObjResult<u32> {
        self.types
            .iter()
            .position(|b| ptr::eq(&**b, t))
            .filter(|&i| i as u32 >= type_ids::FIRST_HOST_TYPE)
            .map(|i| i as u32)
            .ok_or_else(|| ObjError::InvalidPointer(format!("invalid type {t:p}: not a type of this runtime")))
    }

    /// Fails with a `Type` error naming the expected type unless `o` is one.
    #[inline(always)]
    pub(crate) fn expect(&self, o: Obj, type_id: u32) -> ObjResult<()> {
        if self.type_id(o) == type_id {
            Ok(())
        } else {
            Err(self.wrong_type(o, self.type_info(type_id).name()))
        }
    }

    #[cold]
    #[inline(never)]
    pub(crate) fn wrong_type(&self, o: Obj, expected: &str) -> ObjError {
        ObjError::Type(format!("expected {expected}, got {}", self.type_of(o).name()))
    }

    // ------------------------------------------------------------------
    // allocation of objects

    /// A fresh object of `type_id`, `size` bytes, count 1; containers are
    /// tracked by the collector.
    #[inline(always)]
    pub(crate) fn alloc_obj(&mut self, type_id: u32, size: usize, gc: bool) -> ObjResult<Obj> {
        let o = match self.alloc.malloc_object(size) {
            Ok(p) => p.cast::<ObjHeader>(),
            Err(e) => return Err(alloc_failed(e)),
        };
        // SAFETY: a fresh object block of `size >= 16` bytes.
        unsafe {
            o.as_ptr().write(ObjHeader { refcnt: 1, type_id, flags: if gc { flags::GC } else { 0 } });
        }
        self.remember_valid(o);
        Ok(o)
    }

    /// Puts a new object in the validation cache: it will likely come back
    /// (a decref, an append) before anything else lands in its slot.
    #[inline(always)]
    fn remember_valid(&self, o: Obj) {
        let addr = o.as_ptr() as usize;
        self.valid_cache[valid_slot(addr)].set(addr);
    }

    /// Links a container into generation 0 and counts it.
    #[inline(always)]
    pub fn track(&mut self, o: Obj) {
        // SAFETY: `o` is a live container.
        unsafe {
            let h = header(o);
            if h.flags & flags::TRACKED != 0 {
                return;
            }
            h.flags |= flags::TRACKED;
            self.gc.generations[0].push_back(gc_links(o));
        }
        self.gc.count0 += 1;
        if self.gc.enabled && self.gc.threshold0 > 0 && self.gc.count0 > self.gc.threshold0 {
            self.gc.collection_due = true;
        }
    }

    /// Unlinks a container from its generation list (the count is not
    /// changed: CPython counts deallocations, not untracking).
    pub fn untrack(&mut self, o: Obj) {
        // SAFETY: `o` is a live container.
        unsafe {
            let h = header(o);
            if h.flags & flags::TRACKED == 0 {
                return;
            }
            // The scan marks go too: the garbage of a collection keeps them
            // until it leaves the collection's list (see the collector).
            h.flags &= !(flags::TRACKED | flags::FROZEN | flags::COLLECTING | flags::UNREACHABLE);
            gc_unlink(gc_links(o));
        }
    }

    pub fn is_tracked(&self, o: Obj) -> bool {
        // SAFETY: live object.
        unsafe { header(o) }.flags & flags::TRACKED != 0
    }

    pub fn is_finalized(&self, o: Obj) -> bool {
        // SAFETY: live object.
        unsafe { header(o) }.flags & flags::FINALIZED != 0
    }

    pub fn set_finalized(&mut self, o: Obj) {
        // SAFETY: live object.
        unsafe { header(o) }.flags |= flags::FINALIZED;
    }

    // ------------------------------------------------------------------
    // deallocation

    /// Frees an object whose count reached zero, and iteratively what only it
    /// kept alive.
    #[inline(always)]
    pub(crate) fn dealloc(&mut self, o: Obj) {
        self.forget_valid(o);
        // The commonest deaths first, inline: an int or a float onto its
        // free list, or back to the allocator when the list is full.
        match self.type_id(o) {
            type_ids::INT => self.retire_int(o),
            type_ids::FLOAT => self.retire_float(o),
            _ => self.dealloc_slow(o),
        }
    }

    /// An int whose count reached zero, forgotten by the validation cache:
    /// onto the int free list while it has room, else its block back.
    #[inline(always)]
    fn retire_int(&mut self, o: Obj) {
        if self.free_ints.len < self.config.int_free_list {
            // SAFETY: an int with count zero holds nothing, is never tracked
            // or weakly referenced, and is on no list.
            unsafe {
                header(o).flags |= flags::DEAD;
                self.free_ints.push(o);
            }
        } else {
            self.free_block(o);
        }
    }

    /// [`Heap::retire_int`] for a float and the float free list.
    #[inline(always)]
    fn retire_float(&mut self, o: Obj) {
        if self.free_floats.len < self.config.float_free_list {
            // SAFETY: as `retire_int`'s.
            unsafe {
                header(o).flags |= flags::DEAD;
                self.free_floats.push(o);
            }
        } else {
            self.free_block(o);
        }
    }

    #[inline(never)]
    fn dealloc_slow(&mut self, o: Obj) {
        // The arenas a cascade empties are unmapped together at its end (a
        // long list's death empties hundreds: see `Allocator::hold_unmaps`).
        self.alloc.hold_unmaps();
        // Children reaching zero go on the work stack (never recursion).
        self.dealloc_one(o);
        while let Some(o) = self.trash.pop() {
            self.dealloc_one(o);
        }
        self.alloc.release_held_unmaps();
    }

    /// Drops a reference held by an object being freed: a child reaching zero
    /// is pushed on the work stack rather than freed recursively.
    #[inline(always)]
    fn release_child(&mut self, child: Obj) {
        self.release_child_then::<true>(child);
    }

    /// [`Heap::release_child`]; with `FORGET == false` a child freed here
    /// keeps its validation cache slot, for a caller that clears the whole
    /// cache once it has released all its children (`forget_all_valid`):
    /// a long list's items, whose slots would otherwise be checked one by
    /// one. Nothing validates a pointer in between.
    #[inline(always)]
    fn release_child_then<const FORGET: bool>(&mut self, child: Obj) {
        // SAFETY: the parent held a reference, so `child` is live.
        let h = unsafe { header(child) };
        if h.flags & flags::IMMORTAL != 0 {
            return;
        }
        h.refcnt -= 1;
        if h.refcnt == 0 {
            // An int or a float holds nothing and is never tracked or weakly
            // referenced: freed here, it never goes through the work stack
            // (a list of ten million of them would otherwise push ten
            // million entries, 80 MiB written, faulted in and read back).
            // So is a str, unless the intern table must forget it. (Not
            // through `dealloc`, whose slow path would drain the work stack
            // from inside the loop draining it.)
            match h.type_id {
                type_ids::INT => {
                    if FORGET {
                        self.forget_valid(child);
                        self.retire_int(child);
                    } else {
                        // A long list's items (a namespace's big list of
                        // ints) go straight back: the free list is full
                        // after the first hundred, and its test would cost
                        // every other item.
                        self.free_block(child);
                    }
                }
                type_ids::FLOAT => {
                    if FORGET {
                        self.forget_valid(child);
                    }
                    self.retire_float(child);
                }
                type_ids::STR if h.flags & flags::INTERNED == 0 => {
                    if FORGET {
                        self.forget_valid(child);
                    }
                    self.free_block(child);
                }
                _ => self.trash.push(child),
            }
        }
    }

    /// Frees one object whose count is zero (its children go through
    /// `release_child`).
    fn dealloc_one(&mut self, o: Obj) {
        self.forget_valid(o);
        let type_id = self.type_id(o);
        // SAFETY: for each arm, `o` has the layout of its type id.
        unsafe {
            if header(o).flags & flags::TRACKED != 0 {
                self.untrack(o);
                self.gc.count0 = (self.gc.count0 - 1).max(0);
            }
            // Weak references die with the object — unless a host finalizer
            // is still to run (PEP 442): it may resurrect the object, so
            // CPython clears them only after it (`end_finalize_on_death`).
            if header(o).flags & flags::HAS_WEAKREFS != 0 && !self.finalizer_due(o) {
                self.clear_weakrefs(o);
            }
            match type_id {
                type_ids::INT => self.retire_int(o),
                type_ids::FLOAT => self.retire_float(o),
                type_ids::STR => {
                    if header(o).flags & flags::INTERNED != 0 {
                        let s = body::<StrObj>(o);
                        let bytes = std::slice::from_raw_parts(s.data.as_ptr(), s.len);
                        self.interned.remove(bytes);
                    }
                    self.free_block(o);
                }
                type_ids::TUPLE => {
                    let t = body::<TupleObj>(o);
                    let len = t.len;
                    for i in 0..len {
                        let item = *t.items.as_ptr().add(i);
                        self.release_child(item);
                    }
                    if len <= self.config.tuple_free_list_max_len
                        && self.free_tuples[len].len < self.config.tuple_free_list
                    {
                        header(o).flags = flags::DEAD | flags::GC;
                        self.free_tuples[len].push(o);
                    } else {
                        self.free_block(o);
                    }
                }
                type_ids::LIST => {
                    let l = body::<ListObj>(o);
                    let len = std::mem::replace(&mut l.len, 0) as usize;
                    if len > VALID_CACHE_SLOTS {
                        // The header of the item `PREFETCH_AHEAD` on is
                        // fetched while this one is released; the last ones
                        // have nothing ahead (two loops: no test per item).
                        let ahead = len.saturating_sub(PREFETCH_AHEAD);
                        for i in 0..ahead {
                            prefetch_object(*l.items.add(i + PREFETCH_AHEAD));
                            self.release_child_then::<false>(*l.items.add(i));
                        }
                        for i in ahead..len {
                            self.release_child_then::<false>(*l.items.add(i));
                        }
                        self.forget_all_valid();
                    } else {
                        for i in 0..len {
                            self.release_child(*l.items.add(i));
                        }
                    }
                    self.finish_emptied_container(o);
                }
                type_ids::DICT => {
                    let (mem, entries) = crate::dict::dict_detach_table(o);
                    for (k, v) in entries {
                        self.release_child(k);
                        self.release_child(v);
                    }
                    if !mem.is_null() {
                        let _ = self.alloc.free_kind(mem, BlockKind::Internal);
                    }
                    self.finish_emptied_container(o);
                }
                type_ids::MODULE => {
                    let m = body::<ModuleObj>(o);
                    let (name, dict) = (m.name, m.dict);
                    self.release_child(name);
                    self.release_child(dict);
                    self.free_block(o);
                }
                type_ids::FUNCTION => {
                    let f = body::<FunctionObj>(o);
                    let (name, dict) = (f.name, f.dict);
                    self.release_child(name);
                    self.release_child(dict);
                    self.free_block(o);
                }
                _ => {
                    let hooks = self.type_info(type_id).hooks;
                    let finalize_due = hooks.finalize != 0 && header(o).flags & flags::FINALIZED == 0;
                    if hooks.clear != 0 || hooks.dealloc != 0 || finalize_due {
                        // The host's callbacks run first (from the facade).
                        header(o).flags |= flags::DEAD;
                        self.pending_host.push(o);
                    } else {
                        self.finish_instance(o);
                    }
                }
            }
        }
    }

    /// Frees an instance: its attribute values, then its block.
    ///
    /// # Safety
    /// `o` is an instance with count zero, untracked.
    unsafe fn finish_instance(&mut self, o: Obj) {
        // SAFETY: contract.
        unsafe {
            let inst = body::<InstanceObj>(o);
            let (values, n, own_block) = (inst.values, inst.nvalues as usize, inst.values_in_own_block());
            inst.values = ptr::null_mut();
            inst.nvalues = 0;
            for i in 0..n {
                if let Some(v) = *values.add(i) {
                    self.release_child(v);
                }
            }
            if own_block {
                let _ = self.alloc.free_kind(values as *mut u8, BlockKind::Internal);
            }
            self.free_block(o);
        }
    }

    /// Frees a list or a dict that the collector's sweep emptied
    /// (`Heap::free_garbage`: a list's length is 0 with its item array still
    /// there, a dict has no table) and that is on no list: the item array,
    /// then the object onto its free list or back to the allocator. Lists
    /// and dicts take no weak references, so there are none to clear.
    pub(crate) fn free_emptied_container(&mut self, o: Obj) {
        self.forget_valid(o);
        self.finish_emptied_container(o);
    }

    /// The end of a list's or a dict's deallocation, once it holds no
    /// references (a list of length 0, a dict without its table): a list's
    /// item array of its own is freed, then the object goes onto its free
    /// list, or back to the allocator when that is full.
    #[inline(always)]
    fn finish_emptied_container(&mut self, o: Obj) {
        let (free_list, room) = if self.type_id(o) == type_ids::LIST {
            // SAFETY: a list with count zero.
            let l = unsafe { body::<ListObj>(o) };
            debug_assert_eq!(l.len, 0, "an emptied list");
            if l.has_own_block() {
                if l.cap as usize == SPARE_ARRAY_CAP && self.spare_arrays.len < self.config.list_free_list {
                    // SAFETY: the list's own array of that capacity, which
                    // the list leaves just below.
                    unsafe { self.spare_arrays.push(l.items as *mut u8) };
                } else {
                    let _ = self.alloc.free_kind(l.items as *mut u8, BlockKind::Internal);
                }
            }
            l.reset_to_inline();
            (&mut self.free_lists, self.config.list_free_list)
        } else {
            (&mut self.free_dicts, self.config.dict_free_list)
        };
        if free_list.len < room {
            // SAFETY: a container with count zero, on no list.
            unsafe {
                header(o).flags = flags::DEAD | flags::GC;
                free_list.push(o);
            }
        } else {
            self.free_block(o);
        }
    }

    /// Frees an instance without host callbacks whose values were all
    /// dropped and that is on no list (the collector's sweep of its garbage,
    /// `Heap::free_garbage`): its own values block, if any, then its block.
    pub(crate) fn free_emptied_instance(&mut self, o: Obj) {
        self.forget_valid(o);
        // The collector's weak reference phase cleared them already; a
        // caller without one (`collect_without_host`) relies on this.
        // SAFETY: live object.
        if unsafe { header(o) }.flags & flags::HAS_WEAKREFS != 0 {
            self.clear_weakrefs(o);
        }
        // SAFETY: an instance (the caller checked its type), count zero.
        unsafe {
            let inst = body::<InstanceObj>(o);
            if inst.values_in_own_block() {
                let _ = self.alloc.free_kind(inst.values as *mut u8, BlockKind::Internal);
            }
        }
        self.free_block(o);
    }

    #[inline(always)]
    fn free_block(&mut self, o: Obj) {
        let r = self.alloc.free_kind_near(o.as_ptr() as *mut u8, BlockKind::Object);
        debug_assert!(r.is_ok(), "freeing an object block failed: {r:?}");
    }

    /// The next host instance whose `clear`/`dealloc` callbacks are due, if
    /// any. The caller runs them, then calls [`Heap::finish_host_dealloc`].
    pub fn take_pending_host_dealloc(&mut self) -> Option<Obj> {
        let o = self.pending_host.pop()?;
        self.in_host_dealloc.push(o);
        Some(o)
    }

    /// Before the host `finalize` of an instance whose count reached zero
    /// (PEP 442: finalizers run on reference-count death too): the object is
    /// live again for the callback, with one reference the caller holds, and
    /// marked FINALIZED so it is never finalized twice. Returns false when it
    /// needs no finalizer.
    pub fn begin_finalize_on_death(&mut self, o: Obj) -> bool {
        if !self.finalizer_due(o) {
            return false;
        }
        // SAFETY: `o` came from `take_pending_host_dealloc`: an allocated
        // instance block.
        let h = unsafe { header(o) };
        h.flags = (h.flags & !flags::DEAD) | flags::FINALIZED;
        h.refcnt = 1;
        true
    }

    /// Whether `o` is an instance of a host type with a `finalize` that has
    /// not run on it yet (PEP 442: at most once per object).
    fn finalizer_due(&self, o: Obj) -> bool {
        // SAFETY: callers pass an allocated object block (live or dying).
        let finalized = unsafe { header(o) }.flags & flags::FINALIZED != 0;
        !finalized && self.type_of(o).hooks().finalize != 0
    }

    /// After that `finalize`: drops the caller's reference. If the finalizer
    /// resurrected the object (took a reference), it lives on — tracked
    /// again, no longer being deallocated — and this returns true; otherwise
    /// it is dead again and its `clear`/`dealloc` are due.
    pub fn end_finalize_on_death(&mut self, o: Obj) -> bool {
        // SAFETY: as in `begin_finalize_on_death`.
        let h = unsafe { header(o) };
        h.refcnt -= 1;
        if h.refcnt > 0 {
            self.in_host_dealloc.retain(|&x| x != o);
            self.track(o);
            return true;
        }
        h.flags |= flags::DEAD;
        // The finalizer's calls may have put it back in the validation
        // cache: it is dying for good now.
        self.forget_valid(o);
        if h.flags & flags::HAS_WEAKREFS != 0 {
            self.clear_weakrefs(o);
        }
        false
    }

    /// Whether `p` is a host instance whose `clear`/`dealloc` callbacks are
    /// running (dead to every call but `pymem_instance_payload`).
    pub fn is_being_deallocated(&self, p: *const u8) -> bool {
        self.in_host_dealloc.iter().any(|o| o.as_ptr() as *const u8 == p)
    }

    #[inline(always)]
    pub fn has_pending_host_dealloc(&self) -> bool {
        !self.pending_host.is_empty()
    }

    /// Frees a host instance after its callbacks ran (continuing, iteratively,
    /// with what only it kept alive).
    pub fn finish_host_dealloc(&mut self, o: Obj) {
        self.in_host_dealloc.retain(|&x| x != o);
        // SAFETY: `o` came from `take_pending_host_dealloc`: an instance with
        // count zero, marked dead, untracked.
        unsafe { self.finish_instance(o) };
        while let Some(o) = self.trash.pop() {
            self.dealloc_one(o);
        }
    }

    /// The payload of an instance of a host type.
    pub fn payload_ptr(&self, o: Obj) -> *mut u8 {
        // SAFETY: instances have their payload after the fixed part.
        unsafe { body::<InstanceObj>(o).payload.as_mut_ptr() as *mut u8 }
    }

    /// Every live instance of a host type with a `dealloc` callback, for the
    /// runtime's teardown (callbacks pending included).
    pub fn host_instances_for_teardown(&self) -> Vec<Obj> {
        let mut out: Vec<Obj> = self.pending_host.clone();
        for list in self.gc.generations.iter().chain(std::iter::once(&self.gc.permanent)) {
            for o in list.objects() {
                if self.type_info(self.type_id(o)).hooks.dealloc != 0 {
                    out.push(o);
                }
            }
        }
        out
    }

    // ------------------------------------------------------------------
    // free lists

    /// Reuses a dead object of a free list: count 1, flags reset.
    #[inline(always)]
    fn revive(o: Obj, type_id: u32, gc: bool) -> Obj {
        // SAFETY: a dead object of the free list, whose block is allocated.
        unsafe { o.as_ptr().write(ObjHeader { refcnt: 1, type_id, flags: if gc { flags::GC } else { 0 } }) };
        o
    }

    #[inline(always)]
    pub(crate) fn new_int_obj(&mut self) -> ObjResult<Obj> {
        match self.free_ints.pop() {
            Some(o) => {
                let o = Self::revive(o, type_ids::INT, false);
                self.remember_valid(o);
                Ok(o)
            }
            None => self.alloc_obj(type_ids::INT, size_of::<IntObj>(), false),
        }
    }

    #[inline(always)]
    pub(crate) fn new_float_obj(&mut self) -> ObjResult<Obj> {
        match self.free_floats.pop() {
            Some(o) => {
                let o = Self::revive(o, type_ids::FLOAT, false);
                self.remember_valid(o);
                Ok(o)
            }
            None => self.alloc_obj(type_ids::FLOAT, size_of::<FloatObj>(), false),
        }
    }

    pub(crate) fn new_tuple_obj(&mut self, len: usize) -> ObjResult<Obj> {
        let reused = if len <= self.config.tuple_free_list_max_len { self.free_tuples[len].pop() } else { None };
        let o = match reused {
            Some(o) => {
                let o = Self::revive(o, type_ids::TUPLE, true);
                self.remember_valid(o);
                o
            }
            None => {
                let size = len.checked_mul(size_of::<Obj>()).and_then(|n| n.checked_add(size_of::<TupleObj>())).ok_or(
                    ObjError::NoMemory(obmalloc::AllocError::NoMemory {
                        requested: usize::MAX,
                        reason: "tuple too long",
                    }),
                )?;
                self.alloc_obj(type_ids::TUPLE, size, true)?
            }
        };
        // SAFETY: a tuple block of `len` items.
        unsafe { body::<TupleObj>(o).len = len };
        Ok(o)
    }

    #[inline(always)]
    pub(crate) fn new_list_obj(&mut self) -> ObjResult<Obj> {
        let o = match self.free_lists.pop() {
            Some(o) => {
                let o = Self::revive(o, type_ids::LIST, true);
                self.remember_valid(o);
                o
            }
            None => self.alloc_obj(type_ids::LIST, size_of::<ListObj>(), true)?,
        };
        // SAFETY: a list block.
        unsafe { body::<ListObj>(o).reset_to_inline() };
        Ok(o)
    }

    pub(crate) fn new_dict_obj(&mut self) -> ObjResult<Obj> {
        let o = match self.free_dicts.pop() {
            Some(o) => {
                let o = Self::revive(o, type_ids::DICT, true);
                self.remember_valid(o);
                o
            }
            None => self.alloc_obj(type_ids::DICT, size_of::<crate::object::DictObj>(), true)?,
        };
        // SAFETY: a dict block.
        unsafe { body::<crate::object::DictObj>(o).table = crate::dict::DictTable::EMPTY };
        Ok(o)
    }

    /// Empties every free list (CPython's `PyGC_Collect`-time clearing, and
    /// `pymem_clear_free_lists`). Returns how many objects were freed.
    pub fn clear_free_lists(&mut self) -> usize {
        let mut freed = 0;
        let mut lists: Vec<FreeList> = vec![self.free_floats, self.free_ints, self.free_lists, self.free_dicts];
        lists.extend(self.free_tuples.iter().copied());
        self.free_floats = FreeList::EMPTY;
        self.free_ints = FreeList::EMPTY;
        self.free_lists = FreeList::EMPTY;
        self.free_dicts = FreeList::EMPTY;
        for t in self.free_tuples.iter_mut() {
            *t = FreeList::EMPTY;
        }
        for mut list in lists {
            while let Some(o) = list.pop() {
                self.free_block(o);
                freed += 1;
            }
        }
        while let Some(array) = self.spare_arrays.pop() {
            let _ = self.alloc.free_kind(array, BlockKind::Internal);
        }
        freed
    }

    /// CPython's free-list lines of `sys._debugmallocstats()`, e.g.
    /// `100 free PyFloatObjects * 24 bytes each = 2,400`.
    pub fn free_list_stats(&self, out: &mut String) {
        out.push('\n');
        let mut line = |name: &str, n: usize, size: usize| {
            let label = format!("{:>48} ", format!("{n} {name}s * {size} bytes each"));
            obmalloc::write_stat_line(out, &label, (n * size) as u64);
        };
        line("free PyDictObject", self.free_dicts.len, size_of::<crate::object::DictObj>());
        line("free PyFloatObject", self.free_floats.len, size_of::<FloatObj>());
        line("free PyListObject", self.free_lists.len, size_of::<ListObj>());
        line("free PyLongObject", self.free_ints.len, size_of::<IntObj>());
        line("spare list item array", self.spare_arrays.len, SPARE_ARRAY_CAP * size_of::<Obj>());
        for (len, list) in self.free_tuples.iter().enumerate().skip(1) {
            line(&format!("free {len}-sized PyTupleObject"), list.len, size_of::<TupleObj>() + len * size_of::<Obj>());
        }
    }

    /// Objects on free lists, by kind.
    pub fn free_list_lengths(&self) -> FreeListLengths {
        FreeListLengths {
            floats: self.free_floats.len,
            ints: self.free_ints.len,
            tuples: self.free_tuples.iter().map(|l| l.len).sum(),
            lists: self.free_lists.len,
            dicts: self.free_dicts.len,
        }
    }
}

impl Heap {
    /// Gives back the memory of the heap's work stacks when a big
    /// deallocation grew them (freeing a list of ten million ints pushes ten
    /// million entries: 128 MiB of capacity that would otherwise stay
    /// resident). Called when a caller wants memory back
    /// (`pymem_ns_reset`), never on the deallocation path.
    pub fn release_scratch(&mut self) {
        const KEEP: usize = 4096;
        if self.trash.capacity() > KEEP {
            self.trash = Vec::new();
        }
        if self.clear_buffer.capacity() > KEEP {
            self.clear_buffer = Vec::new();
        }
    }
}
