//! list: a growable array of references, in two slots inline in the list's
//! own block while it fits there, then in an `Internal` block grown as
//! CPython grows it (see `ListObj`).

use obmalloc::BlockKind;

use crate::error::{ObjError, ObjResult};
use crate::heap::Heap;
use crate::object::{body, type_ids, ListObj, Obj};

impl Heap {
    /// An empty list (from the free list when it has one). New reference.
    pub fn list_new(&mut self) -> ObjResult<Obj> {
        let o = self.new_list_obj()?;
        self.track(o);
        Ok(o)
    }

    // Object memory is not part of the heap's borrow (objects are shared
    // through raw pointers, as in C); callers never hold two of these.
    #[allow(clippy::mut_from_ref)]
    #[inline(always)]
    fn list(&self, o: Obj) -> ObjResult<&mut ListObj> {
        self.expect(o, type_ids::LIST)?;
        // SAFETY: checked to be a list.
        Ok(unsafe { body::<ListObj>(o) })
    }

    pub fn list_len(&self, o: Obj) -> ObjResult<usize> {
        Ok(self.list(o)?.len())
    }

    /// The items (borrowed).
    pub fn list_items(&self, o: Obj) -> ObjResult<&[Obj]> {
        let l = self.list(o)?;
        if l.len == 0 {
            return Ok(&[]);
        }
        // SAFETY: `items` holds `len` initialised references.
        Ok(unsafe { std::slice::from_raw_parts(l.items, l.len()) })
    }

    /// Makes room for `needed` items, over-allocating as CPython's
    /// `list_resize` does (`n + n/8 + 6`, rounded down to a multiple of 4).
    #[inline(always)]
    fn list_reserve(&mut self, o: Obj, needed: usize) -> ObjResult<()> {
        if needed <= self.list(o)?.cap as usize {
            return Ok(());
        }
        self.list_grow(o, needed)
    }

    #[inline(never)]
    fn list_grow(&mut self, o: Obj, needed: usize) -> ObjResult<()> {
        let l = self.list(o)?;
        let cap = grown_capacity(needed);
        if cap > u32::MAX as usize {
            return Err(ObjError::NoMemory(obmalloc::AllocError::NoMemory {
                requested: usize::MAX,
                reason: "list too long",
            }));
        }
        let bytes = cap * std::mem::size_of::<Obj>();
        let (own, items, len) = (l.has_own_block(), l.items, l.len());
        let new = if own {
            self.alloc.realloc_kind(items as *mut u8, bytes, BlockKind::Internal)?
        } else {
            // Out of the inline slots: the items move to a block of their
            // own — a spare one when it is the first size (`SpareArrays`).
            let new = match self.take_spare_array(cap) {
                Some(array) => array,
                None => self.alloc.malloc_kind(bytes, BlockKind::Internal)?,
            };
            // SAFETY: `len` items in the inline slots, room for `cap > len`.
            unsafe { std::ptr::copy_nonoverlapping(items, new.as_ptr() as *mut Obj, len) };
            new
        };
        let l = self.list(o)?;
        l.items = new.as_ptr() as *mut Obj;
        l.cap = cap as u32;
        Ok(())
    }

    /// Appends `item` (the list takes its own reference).
    #[inline(always)]
    pub fn list_append(&mut self, o: Obj, item: Obj) -> ObjResult<()> {
        let l = self.list(o)?;
        let len = l.len();
        if len == l.cap as usize {
            self.list_grow(o, len + 1)?;
        }
        self.incref(item);
        // SAFETY: checked to be a list above; capacity for `len + 1` items
        // (at most u32::MAX: `list_grow` refuses more).
        unsafe {
            let l = body::<ListObj>(o);
            *l.items.add(len) = item;
            l.len += 1;
        }
        Ok(())
    }

    /// Inserts before index `i`; an index past the end appends (Python's
    /// `list.insert`).
    pub fn list_insert(&mut self, o: Obj, i: usize, item: Obj) -> ObjResult<()> {
        let len = self.list(o)?.len();
        let i = i.min(len);
        self.list_reserve(o, len + 1)?;
        self.incref(item);
        let l = self.list(o)?;
        // SAFETY: capacity for `len + 1` items; the move stays inside it.
        unsafe {
            std::ptr::copy(l.items.add(i), l.items.add(i + 1), len - i);
            *l.items.add(i) = item;
        }
        l.len += 1;
        Ok(())
    }

    /// Item `i` (borrowed).
    pub fn list_get(&self, o: Obj, i: usize) -> ObjResult<Obj> {
        let l = self.list(o)?;
        if i >= l.len() {
            return Err(ObjError::Index(format!("list index {i} out of range (len {})", l.len)));
        }
        // SAFETY: `i < len`.
        Ok(unsafe { *l.items.add(i) })
    }

    /// Replaces item `i` (the list takes a reference to the new item and
    /// drops its reference to the old one).
    pub fn list_set(&mut self, o: Obj, i: usize, item: Obj) -> ObjResult<()> {
        let old = self.list_get(o, i)?;
        self.incref(item);
        let l = self.list(o)?;
        // SAFETY: `i < len` (checked by `list_get`).
        unsafe { *l.items.add(i) = item };
        self.decref(old);
        Ok(())
    }

    /// Removes item `i` and returns it (the caller gets the list's reference).
    pub fn list_pop(&mut self, o: Obj, i: usize) -> ObjResult<Obj> {
        let item = self.list_get(o, i)?;
        let l = self.list(o)?;
        // SAFETY: `i < len`; the move stays inside the array.
        unsafe { std::ptr::copy(l.items.add(i + 1), l.items.add(i), l.len() - i - 1) };
        l.len -= 1;
        Ok(item)
    }
}

/// The capacity a list grows to for `needed` items: CPython's
/// `list_resize` over-allocation, `n + n/8 + 6` rounded down to a multiple
/// of 4.
#[inline(always)]
pub(crate) const fn grown_capacity(needed: usize) -> usize {
    (needed + (needed >> 3) + 6) & !3
}
