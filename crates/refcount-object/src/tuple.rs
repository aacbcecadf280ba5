//! tuple: fixed length, items inline.

use crate::error::{ObjError, ObjResult};
use crate::heap::Heap;
use crate::object::{body, type_ids, Obj, TupleObj};

impl Heap {
    /// A tuple of `items` (each gets a new reference; the caller keeps its
    /// own). The empty tuple is an immortal singleton. New reference.
    pub fn tuple_new(&mut self, items: &[Obj]) -> ObjResult<Obj> {
        if items.is_empty() {
            return Ok(self.empty_tuple);
        }
        let o = self.new_tuple_obj(items.len())?;
        for (i, &item) in items.iter().enumerate() {
            self.incref(item);
            // SAFETY: a tuple block of `items.len()` items.
            unsafe { *body::<TupleObj>(o).items.as_mut_ptr().add(i) = item };
        }
        self.track(o);
        Ok(o)
    }

    pub fn tuple_len(&self, o: Obj) -> ObjResult<usize> {
        self.expect(o, type_ids::TUPLE)?;
        // SAFETY: checked to be a tuple.
        Ok(unsafe { body::<TupleObj>(o).len })
    }

    /// Item `i` (borrowed).
    pub fn tuple_item(&self, o: Obj, i: usize) -> ObjResult<Obj> {
        let len = self.tuple_len(o)?;
        if i >= len {
            return Err(ObjError::Index(format!("tuple index {i} out of range (len {len})")));
        }
        // SAFETY: a tuple with more than `i` items.
        Ok(unsafe { *body::<TupleObj>(o).items.as_ptr().add(i) })
    }

    /// The items of a tuple (borrowed).
    pub(crate) fn tuple_items(&self, o: Obj) -> &[Obj] {
        // SAFETY: callers checked `o` is a tuple.
        unsafe {
            let t = body::<TupleObj>(o);
            std::slice::from_raw_parts(t.items.as_ptr(), t.len)
        }
    }
}
