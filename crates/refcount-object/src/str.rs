//! str: UTF-8, inline bytes, cached hash, singletons and interning.

use std::ptr;

use crate::error::{ObjError, ObjResult};
use crate::heap::{size_of, Heap};
use crate::object::{body, flags, header, type_ids, Obj, StrObj, HASH_NOT_COMPUTED};

impl Heap {
    /// A str of UTF-8 `bytes` (checked). The empty string and one-character
    /// ASCII strings are immortal singletons, as in CPython. New reference.
    pub fn str_new(&mut self, bytes: &[u8]) -> ObjResult<Obj> {
        if let Err(e) = std::str::from_utf8(bytes) {
            return Err(ObjError::InvalidArgument(format!("invalid UTF-8 in str: {e}")));
        }
        match bytes {
            [] => return Ok(self.empty_str),
            [c] if *c < 128 => return Ok(self.one_char_strs[*c as usize]),
            _ => {}
        }
        let size = size_of::<StrObj>()
            .checked_add(bytes.len())
            .and_then(|n| n.checked_add(1))
            .ok_or_else(|| ObjError::InvalidArgument("str too long".into()))?;
        let o = self.alloc_obj(type_ids::STR, size, false)?;
        // SAFETY: the block holds the fixed part plus `len + 1` bytes.
        unsafe { init_str(o, bytes) };
        Ok(o)
    }

    /// The interned str equal to `bytes`: the same object every time while it
    /// lives. The intern table's reference is not counted (CPython's rule):
    /// the string dies with its last outside reference. New reference.
    pub fn str_intern(&mut self, bytes: &[u8]) -> ObjResult<Obj> {
        if let Some(&o) = self.interned.get(bytes) {
            self.incref(o);
            return Ok(o);
        }
        let o = self.str_new(bytes)?;
        if self.is_immortal(o) {
            return Ok(o);
        }
        // SAFETY: a live str.
        unsafe { header(o).flags |= flags::INTERNED };
        self.interned.insert(bytes.into(), o);
        Ok(o)
    }

    /// The bytes of a str (borrowed: valid while the object lives).
    pub fn str_bytes(&self, o: Obj) -> ObjResult<&[u8]> {
        self.expect(o, type_ids::STR)?;
        // SAFETY: checked to be a str.
        Ok(unsafe { str_bytes_unchecked(o) })
    }

    pub fn is_interned(&self, o: Obj) -> bool {
        // SAFETY: live object.
        unsafe { header(o) }.flags & flags::INTERNED != 0
    }
}

/// Fills a fresh str block: no hash yet, the bytes, a NUL after them.
///
/// # Safety
/// `o` is a str block of `size_of::<StrObj>() + bytes.len() + 1` bytes.
pub(crate) unsafe fn init_str(o: Obj, bytes: &[u8]) {
    // SAFETY: contract.
    unsafe {
        let s = body::<StrObj>(o);
        s.hash = HASH_NOT_COMPUTED;
        s.len = bytes.len();
        ptr::copy_nonoverlapping(bytes.as_ptr(), s.data.as_mut_ptr(), bytes.len());
        *s.data.as_mut_ptr().add(bytes.len()) = 0;
    }
}

/// The bytes of a str.
///
/// # Safety
/// `o` is a live str; the slice lives as long as it does.
pub(crate) unsafe fn str_bytes_unchecked<'a>(o: Obj) -> &'a [u8] {
    // SAFETY: contract.
    unsafe {
        let s = body::<StrObj>(o);
        std::slice::from_raw_parts(s.data.as_ptr(), s.len)
    }
}
