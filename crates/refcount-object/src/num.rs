//! None, bool, int (i64, small ints cached) and float.

use crate::error::ObjResult;
use crate::heap::Heap;
use crate::object::{body, type_ids, FloatObj, IntObj, Obj};

impl Heap {
    /// None (immortal; a new reference in name only).
    pub fn none(&self) -> Obj {
        self.none
    }

    pub fn bool_obj(&self, v: bool) -> Obj {
        if v {
            self.true_
        } else {
            self.false_
        }
    }

    /// An int: the cached immortal object for small values (so two calls give
    /// the same id), a new object otherwise (from the free list when it has
    /// one). New reference.
    #[inline(always)]
    pub fn int_new(&mut self, v: i64) -> ObjResult<Obj> {
        if v >= self.config.small_int_min && v <= self.config.small_int_max {
            return Ok(self.small_ints[(v - self.config.small_int_min) as usize]);
        }
        let o = self.new_int_obj()?;
        // SAFETY: a fresh int block.
        unsafe { body::<IntObj>(o).value = v };
        Ok(o)
    }

    /// The value of an int or a bool (Python's bool is an int).
    pub fn int_value(&self, o: Obj) -> ObjResult<i64> {
        match self.type_id(o) {
            // SAFETY: layouts match the type ids.
            type_ids::INT => Ok(unsafe { body::<IntObj>(o).value }),
            // SAFETY: as above.
            type_ids::BOOL => Ok(unsafe { body::<crate::object::BoolObj>(o).value } as i64),
            _ => Err(self.wrong_type(o, "int")),
        }
    }

    /// A float, from the free list when it has one. New reference.
    #[inline(always)]
    pub fn float_new(&mut self, v: f64) -> ObjResult<Obj> {
        let o = self.new_float_obj()?;
        // SAFETY: a float block.
        unsafe { body::<FloatObj>(o).value = v };
        Ok(o)
    }

    pub fn float_value(&self, o: Obj) -> ObjResult<f64> {
        self.expect(o, type_ids::FLOAT)?;
        // SAFETY: checked to be a float.
        Ok(unsafe { body::<FloatObj>(o).value })
    }

    /// The numeric value of an int, bool or float, if `o` is one.
    pub(crate) fn number(&self, o: Obj) -> Option<Number> {
        match self.type_id(o) {
            // SAFETY: layouts match the type ids.
            type_ids::INT => Some(Number::Int(unsafe { body::<IntObj>(o).value })),
            // SAFETY: as above.
            type_ids::BOOL => Some(Number::Int(unsafe { body::<crate::object::BoolObj>(o).value } as i64)),
            // SAFETY: as above.
            type_ids::FLOAT => Some(Number::Float(unsafe { body::<FloatObj>(o).value })),
            _ => None,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum Number {
    Int(i64),
    Float(f64),
}
