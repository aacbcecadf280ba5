//! Instances of host types, modules and functions, and their attributes.
//!
//! An instance keeps its attribute values inline in a values array whose
//! slot `i` belongs to its type's key `i` (CPython 3.11's split keys: the
//! names are stored once per type, not once per instance). Modules and
//! functions keep their attributes in a dict they own.

use std::ptr;

use obmalloc::BlockKind;

use crate::error::{ObjError, ObjResult};
use crate::heap::{size_of, Heap};
use crate::object::{body, flags, header, type_ids, FunctionObj, InstanceObj, ModuleObj, Obj};

/// The most attribute slots an instance gets inline (more go to a block of
/// their own).
pub const MAX_INLINE_VALUES: usize = 16;

/// Where the inline values start in an instance whose type has `payload`
/// payload bytes (8-byte aligned after the payload).
pub(crate) fn inline_values_offset(payload: usize) -> usize {
    size_of::<InstanceObj>() + payload.next_multiple_of(8)
}

/// The size of an instance's block: fixed part, payload, inline values.
pub(crate) fn instance_block_size(payload: usize, inline_cap: usize) -> Option<usize> {
    let fixed = size_of::<InstanceObj>().checked_add(payload)?;
    if inline_cap == 0 {
        return Some(fixed);
    }
    fixed.checked_next_multiple_of(8)?.checked_add(inline_cap * std::mem::size_of::<Option<Obj>>())
}

impl Heap {
    /// A new instance of host type `type_id`, its payload zeroed, tracked by
    /// the collector. New reference. Its values are inline, one slot per
    /// attribute name its type knows so far (up to [`MAX_INLINE_VALUES`]):
    /// the names instances of a type get are usually the same.
    pub fn instance_new(&mut self, type_id: u32) -> ObjResult<Obj> {
        let t = self.type_info(type_id);
        let (payload, inline_cap) = (t.payload_size, t.keys.len().min(MAX_INLINE_VALUES));
        let h = t.hooks;
        let mut host_flags = 0;
        if h.traverse != 0 {
            host_flags |= flags::HOST_TRAVERSE;
        }
        if h.traverse | h.clear | h.finalize | h.dealloc != 0 {
            host_flags |= flags::HOST_CALLBACKS;
        }
        let size = instance_block_size(payload, inline_cap)
            .ok_or_else(|| ObjError::InvalidArgument("payload too large".into()))?;
        let o = self.alloc_obj(type_id, size, true)?;
        // SAFETY: the fresh object.
        unsafe { header(o) }.flags |= host_flags;
        // SAFETY: a fresh instance block of `size` bytes: the fixed part,
        // `payload` bytes, then `inline_cap` slots at `inline_values_offset`.
        unsafe {
            let inst = body::<InstanceObj>(o);
            ptr::write_bytes(inst.payload.as_mut_ptr() as *mut u8, 0, payload);
            inst.values = ptr::null_mut();
            if inline_cap > 0 {
                let values = (o.as_ptr() as *mut u8).add(inline_values_offset(payload)) as *mut Option<Obj>;
                for i in 0..inline_cap {
                    values.add(i).write(None);
                }
                inst.values = values;
            }
            inst.nvalues = inline_cap as u32;
            inst.inline_cap = inline_cap as u32;
        }
        self.track(o);
        Ok(o)
    }

    /// Gives instance `o` at least `want` value slots (new ones `None`):
    /// its own values block grows; inline values move to a block of their
    /// own.
    pub(crate) fn instance_reserve(&mut self, o: Obj, want: usize) -> ObjResult<()> {
        // SAFETY: callers pass instances of host types.
        let (values, n, own_block) = unsafe {
            let inst = body::<InstanceObj>(o);
            (inst.values, inst.nvalues as usize, inst.values_in_own_block())
        };
        if want <= n {
            return Ok(());
        }
        let want = want.max(n * 2).max(4);
        let nvalues = u32::try_from(want).map_err(|_| ObjError::InvalidArgument("too many attributes".into()))?;
        let bytes = want * std::mem::size_of::<Option<Obj>>();
        let new = if own_block {
            self.alloc.realloc_kind(values as *mut u8, bytes, BlockKind::Internal)?
        } else {
            self.alloc.malloc_kind(bytes, BlockKind::Internal)?
        };
        let new = new.as_ptr() as *mut Option<Obj>;
        // SAFETY: the new block holds `want` slots; a realloc kept the first
        // `n`, inline ones are moved here (and left `None` behind).
        unsafe {
            if !own_block {
                for i in 0..n {
                    new.add(i).write((*values.add(i)).take());
                }
            }
            for i in n..want {
                new.add(i).write(None);
            }
            let inst = body::<InstanceObj>(o);
            inst.values = new;
            inst.nvalues = nvalues;
        }
        Ok(())
    }

    /// Whether `o` is an instance of host type `type_id`.
    pub fn is_instance(&self, o: Obj, type_id: u32) -> bool {
        self.type_id(o) == type_id
    }

    /// The payload of an instance of a host type (`Type` error otherwise).
    pub fn instance_payload(&self, o: Obj) -> ObjResult<*mut u8> {
        if !self.type_of(o).is_host() {
            return Err(self.wrong_type(o, "an instance of a host type"));
        }
        Ok(self.payload_ptr(o))
    }

    /// A module named `name`. New reference.
    pub fn module_new(&mut self, name: &[u8]) -> ObjResult<Obj> {
        let (o, name, dict) = self.named_with_dict(type_ids::MODULE, size_of::<ModuleObj>(), name)?;
        // SAFETY: a fresh module block; it takes over both references.
        unsafe {
            let m = body::<ModuleObj>(o);
            m.name = name;
            m.dict = dict;
        }
        self.track(o);
        Ok(o)
    }

    /// A function named `name` calling the host's `native` with `userdata`
    /// (both opaque here). New reference.
    pub fn function_new(&mut self, name: &[u8], native: usize, userdata: usize) -> ObjResult<Obj> {
        let (o, name, dict) = self.named_with_dict(type_ids::FUNCTION, size_of::<FunctionObj>(), name)?;
        // SAFETY: a fresh function block; it takes over both references.
        unsafe {
            let f = body::<FunctionObj>(o);
            f.name = name;
            f.dict = dict;
            f.native = native;
            f.userdata = userdata;
        }
        self.track(o);
        Ok(o)
    }

    /// The three allocations of a module or function: its block (count 1,
    /// not yet tracked), its name and its attribute dict. On failure nothing
    /// is left allocated.
    fn named_with_dict(&mut self, type_id: u32, size: usize, name: &[u8]) -> ObjResult<(Obj, Obj, Obj)> {
        let name = self.str_new(name)?;
        let dict = match self.dict_new() {
            Ok(d) => d,
            Err(e) => {
                self.decref(name);
                return Err(e);
            }
        };
        match self.alloc_obj(type_id, size, true) {
            Ok(o) => Ok((o, name, dict)),
            Err(e) => {
                self.decref(name);
                self.decref(dict);
                Err(e)
            }
        }
    }

    /// The native callback and userdata of a function.
    pub fn function_native(&self, o: Obj) -> ObjResult<(usize, usize)> {
        self.expect(o, type_ids::FUNCTION)?;
        // SAFETY: checked to be a function.
        let f = unsafe { body::<FunctionObj>(o) };
        Ok((f.native, f.userdata))
    }

    /// The name of a module or function (borrowed str).
    pub fn object_name(&self, o: Obj) -> Option<Obj> {
        match self.type_id(o) {
            // SAFETY: layouts match the type ids.
            type_ids::MODULE => Some(unsafe { body::<ModuleObj>(o).name }),
            // SAFETY: as above.
            type_ids::FUNCTION => Some(unsafe { body::<FunctionObj>(o).name }),
            _ => None,
        }
    }

    /// The attribute dict of a module or function (borrowed).
    pub(crate) fn attr_dict(&self, o: Obj) -> Option<Obj> {
        match self.type_id(o) {
            // SAFETY: layouts match the type ids.
            type_ids::MODULE => Some(unsafe { body::<ModuleObj>(o).dict }),
            // SAFETY: as above.
            type_ids::FUNCTION => Some(unsafe { body::<FunctionObj>(o).dict }),
            _ => None,
        }
    }

    /// The values of an instance (borrowed; `None` slots are unset).
    pub(crate) fn instance_values(&self, o: Obj) -> &[Option<Obj>] {
        // SAFETY: callers checked `o` is an instance of a host type.
        unsafe {
            let inst = body::<InstanceObj>(o);
            if inst.values.is_null() {
                return &[];
            }
            std::slice::from_raw_parts(inst.values, inst.nvalues as usize)
        }
    }

    fn attr_target(&self, o: Obj) -> ObjResult<()> {
        if self.type_of(o).is_host() || self.attr_dict(o).is_some() {
            return Ok(());
        }
        Err(ObjError::Type(format!("'{}' object has no attributes to set", self.type_of(o).name())))
    }

    /// `o.name = value` on an instance, module or function.
    pub fn setattr(&mut self, o: Obj, name: &[u8], value: Obj) -> ObjResult<()> {
        self.attr_target(o)?;
        if let Some(dict) = self.attr_dict(o) {
            let key = self.str_intern(name)?;
            let r = self.dict_set(dict, key, value);
            self.decref(key);
            return r;
        }
        let type_id = self.type_id(o);
        let slot = match self.type_info(type_id).key_index.get(name) {
            Some(&slot) => slot,
            None if self.type_info(type_id).fixed_slots => return Err(self.no_attribute(o, name)),
            None => {
                // A new shared key: room in this instance first, so that an
                // out-of-memory error leaves the type's keys as they were.
                let key = self.str_intern(name)?;
                let slot = self.type_info(type_id).keys.len();
                if let Err(e) = self.instance_reserve(o, slot + 1) {
                    self.decref(key);
                    return Err(e);
                }
                let t = self.type_info_mut(type_id);
                t.keys.push(key);
                t.key_index.insert(name.into(), slot);
                slot
            }
        };
        self.instance_reserve(o, slot + 1)?;
        self.incref(value);
        // SAFETY: `slot < nvalues`.
        let old = unsafe { (*body::<InstanceObj>(o).values.add(slot)).replace(value) };
        if let Some(old) = old {
            self.decref(old);
        }
        Ok(())
    }

    /// `o.name` (borrowed), or a `Key` error naming the attribute.
    pub fn getattr(&mut self, o: Obj, name: &[u8]) -> ObjResult<Obj> {
        self.attr_target(o)?;
        if let Some(dict) = self.attr_dict(o) {
            let key = self.str_new(name)?;
            let r = self.dict_get(dict, key);
            self.decref(key);
            return r.map_err(|_| self.no_attribute(o, name));
        }
        let slot = self.type_of(o).key_index.get(name).copied();
        match slot.and_then(|s| self.instance_values(o).get(s).copied().flatten()) {
            Some(v) => Ok(v),
            None => Err(self.no_attribute(o, name)),
        }
    }

    /// `del o.name`.
    pub fn delattr(&mut self, o: Obj, name: &[u8]) -> ObjResult<()> {
        self.attr_target(o)?;
        if let Some(dict) = self.attr_dict(o) {
            let key = self.str_new(name)?;
            let r = self.dict_del(dict, key);
            self.decref(key);
            return r.map_err(|_| self.no_attribute(o, name));
        }
        let slot = self.type_of(o).key_index.get(name).copied();
        let Some(slot) = slot.filter(|&s| s < self.instance_values(o).len()) else {
            return Err(self.no_attribute(o, name));
        };
        // SAFETY: `slot < nvalues`.
        let old = unsafe { (*body::<InstanceObj>(o).values.add(slot)).take() };
        match old {
            Some(v) => {
                self.decref(v);
                Ok(())
            }
            None => Err(self.no_attribute(o, name)),
        }
    }

    #[cold]
    fn no_attribute(&self, o: Obj, name: &[u8]) -> ObjError {
        ObjError::Key(format!(
            "'{}' object has no attribute '{}'",
            self.type_of(o).name(),
            String::from_utf8_lossy(name)
        ))
    }
}

impl Heap {
    /// Removes every attribute of an instance, dropping each reference as
    /// its slot is emptied. What a drop frees cannot reach back into this
    /// instance: deallocation runs no host code (host callbacks are queued),
    /// and the caller's reference keeps the instance itself alive. So no
    /// buffer is needed, unlike a list or a dict, whose storage can move.
    pub(crate) fn instance_clear_values(&mut self, o: Obj) {
        let mut i = 0;
        loop {
            // SAFETY: callers pass live instances of host types; the values
            // array is read again after every drop.
            let v = unsafe {
                let inst = body::<InstanceObj>(o);
                if i >= inst.nvalues as usize {
                    break;
                }
                (*inst.values.add(i)).take()
            };
            if let Some(v) = v {
                self.decref(v);
            }
            i += 1;
        }
    }
}
