//! dict: CPython's compact, insertion-ordered dict.
//!
//! One `Internal` block holds a sparse index table (`size` slots of 1, 2 or
//! 4 bytes, as few as can number the entries, as CPython's `DK_IXSIZE`:
//! `EMPTY`, `DUMMY` for a deleted slot, or an entry number) followed by a
//! dense entries array (`usable = size * 2/3` entries of hash, key, value) in
//! insertion order. Lookup probes the index table with CPython's perturbed
//! open addressing; iteration walks the entries. Deleting leaves a hole in
//! the entries (key null) until the next resize compacts them. The table
//! lives in the runtime's allocator, so allocator statistics account for it
//! (hashbrown would use the global allocator; this is also CPython's layout).
//!
//! A small dict keeps its table inside its own object block (`InlineTable`:
//! 4 index slots and 2 entries, as a short list keeps two items inline):
//! most dicts hold a few entries, and one block instead of two is less
//! memory (112 bytes instead of 56 + 128), one allocation fewer and, for the
//! cycle collector, one pointer fewer to chase per dict. The table moves to
//! a block of its own (8 slots or more, CPython's sizes) when a third entry
//! arrives, and comes back inline when a resize finds two slots or fewer
//! needed and the inline room free (or the old table in it: then it is
//! copied out first).
//!
//! Invariants: `used` = live entries; `nentries` = entries written since the
//! last resize (live + holes); `usable` = entries that may still be appended;
//! every live entry is reachable from exactly one index slot; a table of
//! `INLINE_SLOTS` slots is the inline one and a table of its own has at least
//! `MIN_SIZE` slots (so the size alone says which it is).

use std::ptr;

use obmalloc::BlockKind;

use crate::error::{ObjError, ObjResult};
use crate::heap::Heap;
use crate::object::{body, flags, header, type_ids, DictObj, Obj, ObjHeader};

const EMPTY: i32 = -1;
const DUMMY: i32 = -2;
/// The smallest table of a block of its own (CPython's `PyDict_MINSIZE`).
const MIN_SIZE: usize = 8;
/// Index slots of the table inside a dict's block (2 entries).
const INLINE_SLOTS: usize = 4;
const PERTURB_SHIFT: u32 = 5;

#[repr(C)]
#[derive(Clone, Copy)]
struct Entry {
    hash: i64,
    /// Null for a deleted entry.
    key: *mut ObjHeader,
    value: *mut ObjHeader,
}

/// The table of a dict (inside the dict object): where its index slots and
/// entries are (`mem`: the dict's `InlineTable` or a block of its own) and
/// its counters, 32-bit (a table is at most 2^31 slots).
#[repr(C)]
pub(crate) struct DictTable {
    mem: *mut u8,
    /// Index slots (a power of two), 0 before the first insertion.
    size: u32,
    used: u32,
    nentries: u32,
    usable: u32,
}

/// The width in bytes of one index slot of a table of `size` slots: the
/// smallest signed integer that holds every entry number and the two marks
/// (1 byte up to 128 slots, whose 85 entries number below 127).
#[inline(always)]
const fn index_width(size: usize) -> usize {
    if size <= 128 {
        1
    } else if size <= 1 << 15 {
        2
    } else {
        4
    }
}

/// The bytes of the index slots of a table of `size` slots, which the
/// entries follow: at least 8, so that the entries are 8-byte aligned (the
/// inline table's 4 one-byte slots are padded).
#[inline(always)]
const fn index_bytes(size: usize) -> usize {
    let bytes = size * index_width(size);
    if bytes < 8 {
        8
    } else {
        bytes
    }
}

/// The room for a small table inside a dict object: `INLINE_SLOTS` index
/// slots and their 2 entries.
#[repr(C, align(8))]
pub(crate) struct InlineTable([std::mem::MaybeUninit<u8>; DictTable::bytes_for(INLINE_SLOTS)]);

/// The inline table's memory of dict `d`.
///
/// # Safety
/// `d` is a dict (live, or being revived or deallocated).
#[inline(always)]
unsafe fn inline_table_of(d: Obj) -> *mut u8 {
    // SAFETY: contract; only the address is taken.
    unsafe { ptr::addr_of_mut!(body::<DictObj>(d).inline).cast() }
}

/// The largest table: its entry numbers fit an i32, its counters a u32.
const MAX_SIZE: usize = 1 << 31;

/// The integer type of a table's index slots. The loops that read slots
/// (probing, reinserting) are instantiated once per width, so the width
/// is chosen once per call, not once per slot.
trait IndexSlot {
    /// # Safety
    /// `mem` is a table of this width with more than `slot` slots.
    unsafe fn read(mem: *const u8, slot: usize) -> i32;
    /// # Safety
    /// As `read`; `ix` fits this width (see `index_width`).
    unsafe fn write(mem: *mut u8, slot: usize, ix: i32);
}

macro_rules! index_slot {
    ($t:ty) => {
        impl IndexSlot for $t {
            #[inline(always)]
            unsafe fn read(mem: *const u8, slot: usize) -> i32 {
                // SAFETY: contract.
                unsafe { *(mem as *const $t).add(slot) as i32 }
            }
            #[inline(always)]
            unsafe fn write(mem: *mut u8, slot: usize, ix: i32) {
                // SAFETY: contract; the narrowing keeps `ix` (it fits).
                unsafe { *(mem as *mut $t).add(slot) = ix as $t }
            }
        }
    };
}
index_slot!(i8);
index_slot!(i16);
index_slot!(i32);

impl DictTable {
    pub(crate) const EMPTY: DictTable = DictTable { size: 0, used: 0, nentries: 0, usable: 0, mem: ptr::null_mut() };

    fn entries(&self) -> *mut Entry {
        // SAFETY: the entries follow the index slots in the table's memory,
        // 8-byte aligned (see `index_bytes`).
        unsafe { self.mem.add(index_bytes(self.size as usize)) as *mut Entry }
    }

    /// Whether this is the table inside the dict's own block.
    #[inline(always)]
    fn is_inline(&self) -> bool {
        self.size as usize == INLINE_SLOTS
    }

    /// The block of its own this table lives in, if any (null for none or
    /// the inline table): what freeing the dict or a resize must free.
    #[inline(always)]
    fn own_block(&self) -> *mut u8 {
        if self.is_inline() {
            ptr::null_mut()
        } else {
            self.mem
        }
    }

    // Object memory is not part of any Rust borrow (objects are shared
    // through raw pointers, as in C); callers never hold two of these.
    #[allow(clippy::mut_from_ref)]
    fn entry(&self, i: usize) -> &mut Entry {
        // SAFETY: callers pass `i < nentries <= usable capacity`.
        unsafe { &mut *self.entries().add(i) }
    }

    /// Writes an entry number (< 2^31, narrowed to the table's width, which
    /// holds it: see `index_width`) or a mark.
    #[inline(always)]
    fn set_index(&self, slot: usize, ix: i32) {
        // SAFETY: callers pass `slot < size`; the slots have the width of
        // the table's size.
        unsafe {
            match index_width(self.size as usize) {
                1 => i8::write(self.mem, slot, ix),
                2 => i16::write(self.mem, slot, ix),
                _ => i32::write(self.mem, slot, ix),
            }
        }
    }

    /// Bytes of the memory of a table of `size` slots.
    const fn bytes_for(size: usize) -> usize {
        index_bytes(size) + Self::capacity(size) * std::mem::size_of::<Entry>()
    }

    /// Entry capacity of a table of `size` slots.
    const fn capacity(size: usize) -> usize {
        size * 2 / 3
    }

    /// Bytes of the table's block of its own as `dict_resize` requests it (0
    /// before the first insertion and for the inline table, which is part of
    /// the dict object), for `Heap::sizeof`.
    pub(crate) fn block_bytes(&self) -> usize {
        if self.own_block().is_null() {
            return 0;
        }
        Self::bytes_for(self.size as usize)
    }
}

/// What a probe found: the entry, or the slot where the key would go.
enum Probe {
    Found { slot: usize, entry: usize },
    Missing { slot: usize },
}

impl Heap {
    /// An empty dict (from the free list when it has one). New reference.
    pub fn dict_new(&mut self) -> ObjResult<Obj> {
        let o = self.new_dict_obj()?;
        self.track(o);
        Ok(o)
    }

    // See `DictTable::entry`: object memory is outside the heap's borrow.
    #[allow(clippy::mut_from_ref)]
    #[inline(always)]
    fn table(&self, d: Obj) -> ObjResult<&mut DictTable> {
        self.expect(d, type_ids::DICT)?;
        // SAFETY: checked to be a dict.
        Ok(unsafe { &mut body::<DictObj>(d).table })
    }

    pub fn dict_len(&self, d: Obj) -> ObjResult<usize> {
        Ok(self.table(d)?.used as usize)
    }

    /// Probes for `key` (with its `hash`).
    fn probe(&self, t: &DictTable, key: Obj, hash: i64) -> ObjResult<Probe> {
        match index_width(t.size as usize) {
            1 => self.probe_slots::<i8>(t, key, hash),
            2 => self.probe_slots::<i16>(t, key, hash),
            _ => self.probe_slots::<i32>(t, key, hash),
        }
    }

    #[inline(always)]
    fn probe_slots<I: IndexSlot>(&self, t: &DictTable, key: Obj, hash: i64) -> ObjResult<Probe> {
        let mask = t.size as usize - 1;
        let mut perturb = hash as u64;
        let mut slot = hash as u64 as usize & mask;
        let mut first_free: Option<usize> = None;
        loop {
            // SAFETY: `slot <= mask < size`, and `I` is the table's width.
            let ix = unsafe { I::read(t.mem, slot) };
            if ix == EMPTY {
                return Ok(Probe::Missing { slot: first_free.unwrap_or(slot) });
            }
            if ix == DUMMY {
                first_free.get_or_insert(slot);
            } else {
                let e = *t.entry(ix as usize);
                // SAFETY: a live entry's key is a live object.
                let k = unsafe { Obj::new_unchecked(e.key) };
                if k == key || (e.hash == hash && self.equal(k, key)?) {
                    return Ok(Probe::Found { slot, entry: ix as usize });
                }
            }
            perturb >>= PERTURB_SHIFT;
            slot = (slot.wrapping_mul(5).wrapping_add(perturb as usize).wrapping_add(1)) & mask;
        }
    }

    /// The value for `key` (borrowed), or a `Key` error.
    pub fn dict_get(&mut self, d: Obj, key: Obj) -> ObjResult<Obj> {
        let hash = self.hash(key)?;
        let t = self.table(d)?;
        if t.size == 0 {
            return Err(self.missing_key(key));
        }
        match self.probe(t, key, hash)? {
            // SAFETY: a live entry's value is a live object.
            Probe::Found { entry, .. } => Ok(unsafe { Obj::new_unchecked(t.entry(entry).value) }),
            Probe::Missing { .. } => Err(self.missing_key(key)),
        }
    }

    #[cold]
    fn missing_key(&self, key: Obj) -> ObjError {
        ObjError::Key(format!("key not found: {}", self.short_repr(key)))
    }

    /// Sets `d[key] = value` (the dict takes references to both; a replaced
    /// value's reference is dropped). Unhashable keys are a `Type` error.
    pub fn dict_set(&mut self, d: Obj, key: Obj, value: Obj) -> ObjResult<()> {
        let hash = self.hash(key)?;
        let needs_room = {
            let t = self.table(d)?;
            t.size == 0 || t.usable == 0
        };
        if needs_room {
            // CPython's GROWTH_RATE: a table of at least `used * 3` slots.
            let used = self.table(d)?.used as usize;
            self.dict_resize(d, used * 3)?;
        }
        let t = self.table(d)?;
        match self.probe(t, key, hash)? {
            Probe::Found { entry, .. } => {
                let e = t.entry(entry);
                let old = e.value;
                e.value = value.as_ptr();
                self.incref(value);
                // SAFETY: the replaced value was a live object the dict held.
                self.decref(unsafe { Obj::new_unchecked(old) });
            }
            Probe::Missing { slot } => {
                let n = t.nentries as usize;
                *t.entry(n) = Entry { hash, key: key.as_ptr(), value: value.as_ptr() };
                t.set_index(slot, n as i32);
                t.nentries += 1;
                t.used += 1;
                t.usable -= 1;
                self.incref(key);
                self.incref(value);
                if self.type_id(key) != type_ids::STR {
                    // SAFETY: `d` is a live dict (checked by `table`).
                    unsafe { header(d) }.flags |= flags::GENERAL_KEYS;
                }
            }
        }
        Ok(())
    }

    /// Deletes `key` (`Key` error when absent).
    pub fn dict_del(&mut self, d: Obj, key: Obj) -> ObjResult<()> {
        let hash = self.hash(key)?;
        let t = self.table(d)?;
        if t.size == 0 {
            return Err(self.missing_key(key));
        }
        match self.probe(t, key, hash)? {
            Probe::Found { slot, entry } => {
                t.set_index(slot, DUMMY);
                let e = t.entry(entry);
                let (k, v) = (e.key, e.value);
                e.key = ptr::null_mut();
                e.value = ptr::null_mut();
                t.used -= 1;
                // SAFETY: both were live objects the dict held.
                unsafe {
                    self.decref(Obj::new_unchecked(k));
                    self.decref(Obj::new_unchecked(v));
                }
                Ok(())
            }
            Probe::Missing { .. } => Err(self.missing_key(key)),
        }
    }

    /// The entry at or after `*pos` in insertion order, as borrowed
    /// `(key, value)`, and `*pos` moved past it; `None` at the end.
    pub fn dict_next(&self, d: Obj, pos: &mut usize) -> ObjResult<Option<(Obj, Obj)>> {
        let t = self.table(d)?;
        while *pos < t.nentries as usize {
            let e = *t.entry(*pos);
            *pos += 1;
            if !e.key.is_null() {
                // SAFETY: a live entry holds live objects.
                return Ok(Some(unsafe { (Obj::new_unchecked(e.key), Obj::new_unchecked(e.value)) }));
            }
        }
        Ok(None)
    }

    /// Rebuilds the table with at least `min_slots` index slots, compacting
    /// holes: the inline table when `min_slots` fits it, else a block of
    /// its own of a power of two slots, 8 or more.
    fn dict_resize(&mut self, d: Obj, min_slots: usize) -> ObjResult<()> {
        let old = self.table(d)?;
        // The inline table's old contents, when the new table takes its place.
        let mut copy_out = InlineTable([std::mem::MaybeUninit::uninit(); DictTable::bytes_for(INLINE_SLOTS)]);
        let (size, mem) = if min_slots <= INLINE_SLOTS {
            // SAFETY: `d` is a dict (checked by `table`).
            let inline = unsafe { inline_table_of(d) };
            if old.is_inline() {
                // SAFETY: both are the inline table's bytes; `old` reads the
                // copy from here on (its entries sit at the same offsets).
                unsafe { ptr::copy_nonoverlapping(inline, copy_out.0.as_mut_ptr().cast(), copy_out.0.len()) };
                old.mem = copy_out.0.as_mut_ptr().cast();
            }
            (INLINE_SLOTS, inline)
        } else {
            let mut size = MIN_SIZE;
            while size < min_slots {
                size *= 2;
                if size > MAX_SIZE {
                    return Err(ObjError::NoMemory(obmalloc::AllocError::NoMemory {
                        requested: usize::MAX,
                        reason: "dict too large",
                    }));
                }
            }
            (size, self.alloc.malloc_kind(DictTable::bytes_for(size), BlockKind::Internal)?.as_ptr())
        };
        let usable = DictTable::capacity(size);
        // SAFETY: `mem` holds the index slots of a table of `size`; all start
        // EMPTY (0xFF bytes are -1 at every width).
        unsafe { ptr::write_bytes(mem, 0xFF, index_bytes(size)) };
        // The casts hold: size <= MAX_SIZE = 2^31.
        let mut new = DictTable { size: size as u32, used: 0, nentries: 0, usable: usable as u32, mem };
        let old = std::mem::replace(self.table(d)?, DictTable::EMPTY);
        match index_width(size) {
            1 => reinsert::<i8>(&old, &mut new),
            2 => reinsert::<i16>(&old, &mut new),
            _ => reinsert::<i32>(&old, &mut new),
        }
        let old_block = old.own_block();
        if !old_block.is_null() {
            let _ = self.alloc.free_kind(old_block, BlockKind::Internal);
        }
        *self.table(d)? = new;
        Ok(())
    }
}

/// Moves the live entries of `old` into the empty table `new` (of width
/// `I`), compacting holes: by hash alone, as keys are distinct, each goes
/// to the first EMPTY slot of its probe sequence.
fn reinsert<I: IndexSlot>(old: &DictTable, new: &mut DictTable) {
    let mask = new.size as usize - 1;
    for i in 0..old.nentries as usize {
        let e = *old.entry(i);
        if e.key.is_null() {
            continue;
        }
        let mut perturb = e.hash as u64;
        let mut slot = e.hash as u64 as usize & mask;
        // SAFETY: `slot <= mask < size`, and `I` is the new table's width.
        while unsafe { I::read(new.mem, slot) } != EMPTY {
            perturb >>= PERTURB_SHIFT;
            slot = (slot.wrapping_mul(5).wrapping_add(perturb as usize).wrapping_add(1)) & mask;
        }
        let n = new.nentries as usize;
        *new.entry(n) = e;
        // SAFETY: as above; `n` < usable < 2^31 fits the width.
        unsafe { I::write(new.mem, slot, n as i32) };
        new.nentries += 1;
        new.used += 1;
        new.usable -= 1;
    }
}

/// How many entries ahead `dict_detach_table`'s iterator prefetches the
/// key and value headers.
const DETACH_PREFETCH_AHEAD: usize = 32;

/// Takes the table out of a dict being freed or cleared: its block of its
/// own (for the caller to free after; null for none or the inline table)
/// and an iterator over its live entries' key and value (the references the
/// caller drops). Allocates nothing. The dict is empty afterwards; the
/// entries stay readable until the caller frees the block or the dict
/// takes a table again.
pub(crate) fn dict_detach_table(d: Obj) -> (*mut u8, impl Iterator<Item = (Obj, Obj)>) {
    // SAFETY: `d` is a dict being deallocated or cleared.
    let t = std::mem::replace(unsafe { &mut body::<DictObj>(d).table }, DictTable::EMPTY);
    // Empty, it has str keys only again (CPython's `dict.clear()` gives a
    // dict the empty str-keys table).
    // SAFETY: as above.
    unsafe { header(d) }.flags &= !flags::GENERAL_KEYS;
    let mem = t.own_block();
    let entries = t.entries();
    let n = t.nentries as usize;
    let live = (0..n).filter_map(move |i| {
        // The caller drops each reference, reading the object's header: a
        // big dict's keys and values are spread over the heap, so their
        // headers are fetched ahead, as a long list's items are.
        if i + DETACH_PREFETCH_AHEAD < n {
            // SAFETY: in bounds, as below.
            let ahead = unsafe { *entries.add(i + DETACH_PREFETCH_AHEAD) };
            crate::heap::prefetch(ahead.key as *const i8);
            crate::heap::prefetch(ahead.value as *const i8);
        }
        // SAFETY: `i < nentries`; the block stays allocated until the caller
        // frees it after the iteration.
        let e = unsafe { *entries.add(i) };
        // SAFETY: live entries hold live objects.
        (!e.key.is_null()).then(|| unsafe { (Obj::new_unchecked(e.key), Obj::new_unchecked(e.value)) })
    });
    (mem, live)
}

/// Calls `visit(key, value)` for each live entry of a dict whose type is
/// already known (the traversals: no type check, no `Result`).
///
/// # Safety
/// `d` is a live dict, and `visit` does not change it.
#[inline(always)]
pub(crate) unsafe fn dict_for_each_entry(d: Obj, mut visit: impl FnMut(Obj, Obj)) {
    // SAFETY: contract: `d` has a dict's layout.
    let t = unsafe { &body::<DictObj>(d).table };
    let entries = t.entries();
    for i in 0..t.nentries as usize {
        // SAFETY: `i < nentries`.
        let e = unsafe { *entries.add(i) };
        if !e.key.is_null() {
            // SAFETY: live entries hold live objects.
            unsafe { visit(Obj::new_unchecked(e.key), Obj::new_unchecked(e.value)) };
        }
    }
}

/// Empties a dict being freed: its references go to `out` (the caller drops
/// them), its table back to the allocator.
pub(crate) fn dict_take_all(heap: &mut Heap, d: Obj, out: &mut Vec<Obj>) {
    let (mem, entries) = dict_detach_table(d);
    for (k, v) in entries {
        out.push(k);
        out.push(v);
    }
    if !mem.is_null() {
        let _ = heap.alloc.free_kind(mem, BlockKind::Internal);
    }
}

/// The value for `key` in dict `b`, probing with the hash that dict `a`
/// stored for `key` in its entry `entry` (equal keys hash alike, and a key
/// already in a dict needs no hashing again).
pub(crate) fn lookup_with_entry_hash(heap: &Heap, a: Obj, entry: usize, b: Obj, key: Obj) -> ObjResult<Option<Obj>> {
    // SAFETY: `a` is a dict whose entry `entry` is live.
    let hash = unsafe { body::<DictObj>(a).table.entry(entry).hash };
    let t = heap.table(b)?;
    if t.size == 0 {
        return Ok(None);
    }
    match heap.probe(t, key, hash)? {
        // SAFETY: a live entry's value is live.
        Probe::Found { entry, .. } => Ok(Some(unsafe { Obj::new_unchecked(t.entry(entry).value) })),
        Probe::Missing { .. } => Ok(None),
    }
}

impl Heap {
    /// Empties a dict; the references it held go to `dropped` (the caller
    /// drops them once nothing borrows the dict).
    pub(crate) fn dict_clear(&mut self, d: Obj, dropped: &mut Vec<Obj>) {
        if self.type_id(d) != type_ids::DICT {
            return;
        }
        let (mem, entries) = dict_detach_table(d);
        for (k, v) in entries {
            dropped.push(k);
            dropped.push(v);
        }
        if !mem.is_null() {
            let _ = self.alloc.free_kind(mem, BlockKind::Internal);
        }
    }
}
