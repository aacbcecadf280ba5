//! `sys.getsizeof` and pympler's `asizeof`: the bytes of one object, and of
//! everything reachable from it.
//!
//! [`Heap::sizeof`] is the object's own memory: its object block, header
//! included (and, for containers, the collector's 16-byte links, which are
//! inside our block where CPython puts its `PyGC_Head` before the object
//! and counts it too), plus the element array a container owns (a list's
//! items, a dict's table, an instance's values). Sizes are the **byte
//! counts requested from the allocator**, exactly as the code allocates
//! them, not rounded up to the allocator's size classes: the allocator's
//! `bytes_in_use` grows by each request rounded up to its block (a multiple
//! of 16 up to 512 bytes, and 24 for requests of 17 to 24 bytes: an int, a
//! float) or by the request itself (larger blocks). Like CPython's, the figure excludes the objects it
//! refers to: a list's items are counted by their own `sizeof`.
//!
//! | type | bytes | CPython 3.11 (64-bit), for the record |
//! |---|---|---|
//! | None, bool | 24 (header 16 + value 8) | None 16, bool 28 |
//! | int | 24 (an i64) | 28 up to 2^30, 32 up to 2^60, ... (30-bit digits) |
//! | float | 24 | 24 |
//! | str | 32 + len + 1 (cached hash, length, UTF-8 bytes, NUL) | ASCII: 49 + len; more for other text |
//! | tuple | 40 + 8 n | 40 + 8 n |
//! | list | 56 + 8 × capacity of its item array | 56 + 8 × allocated |
//! | dict | 112 (header, links, the table's description, an inline table of 4 index slots and 2 entries) + from the third entry a table block of its own: 1-byte index slots (2 or 4 bytes past 128 / 2^15 slots), at least 8, + 24 × (2/3 × slots) entries | 64 empty, `{'a': 1}` 184 |
//! | instance of a host type | 48 + payload size + 8 × value slots | a plain class instance: 56 (its `__dict__` apart) |
//! | module | 48 (its name and attribute dict are objects of their own) | 72 |
//! | function | 64 (name and attribute dict apart) | 152 |
//!
//! A list made by growth has CPython's over-allocated capacity
//! (`n + n/8 + 6` rounded down to a multiple of 4); a list made by
//! `copy`/`deepcopy` has capacity = length, as `list.copy()` in CPython.
//! Immortal objects have a size too (`sizeof(None)` is 24), but
//! [`Heap::deep_sizeof`] leaves them out, as they belong to every runtime
//! and are never freed.
//!
//! [`Heap::deep_sizeof`] walks the references this crate knows: tuple and
//! list items, dict keys and values, instance attribute values, a module's
//! or function's name and attribute dict. Each object is counted once
//! (shared objects and cycles included). References a host keeps in an
//! instance's payload are not followed (only the host's `traverse` knows
//! them), and the attribute names of a host type's instances belong to the
//! type, not to any instance, so they are not counted.

use hashbrown::HashSet;

use crate::error::ObjResult;
use crate::heap::{size_of, Heap};
use crate::object::{
    body, type_ids, BoolObj, DictObj, FloatObj, FunctionObj, InstanceObj, IntObj, ListObj, ModuleObj, Obj, ObjHeader,
    StrObj, TupleObj,
};

impl Heap {
    /// `sys.getsizeof(o)`: the bytes of this object's block, header included,
    /// plus the element array it owns, as requested from the allocator (see
    /// the table in this module's docs).
    pub fn sizeof(&self, o: Obj) -> ObjResult<usize> {
        // SAFETY: for each arm, `o` is a live object of that type.
        let bytes = unsafe {
            match self.type_id(o) {
                // `Heap::make_singletons` gives None a word after the header.
                type_ids::NONE => size_of::<ObjHeader>() + 8,
                type_ids::BOOL => size_of::<BoolObj>(),
                type_ids::INT => size_of::<IntObj>(),
                type_ids::FLOAT => size_of::<FloatObj>(),
                type_ids::STR => size_of::<StrObj>() + body::<StrObj>(o).len + 1,
                type_ids::TUPLE => size_of::<TupleObj>() + body::<TupleObj>(o).len * size_of::<Obj>(),
                type_ids::LIST => {
                    let l = body::<ListObj>(o);
                    size_of::<ListObj>() + if l.has_own_block() { l.cap as usize * size_of::<Obj>() } else { 0 }
                }
                type_ids::DICT => size_of::<DictObj>() + body::<DictObj>(o).table.block_bytes(),
                type_ids::MODULE => size_of::<ModuleObj>(),
                type_ids::FUNCTION => size_of::<FunctionObj>(),
                _ => {
                    let inst = body::<InstanceObj>(o);
                    let payload = self.type_of(o).payload_size();
                    let block = crate::attrs::instance_block_size(payload, inst.inline_cap as usize).unwrap_or(0);
                    let own_values =
                        if inst.values_in_own_block() { inst.nvalues as usize * size_of::<Option<Obj>>() } else { 0 };
                    block + own_values
                }
            }
        };
        Ok(bytes)
    }

    /// pympler's `asizeof(o)`: the sum of [`Heap::sizeof`] over every object
    /// reachable from `o` (see this module's docs for which references are
    /// followed), each counted once, immortal objects excluded. Iterative.
    pub fn deep_sizeof(&self, o: Obj) -> ObjResult<usize> {
        let mut seen: HashSet<Obj> = HashSet::new();
        let mut todo = vec![o];
        let mut total = 0;
        while let Some(x) = todo.pop() {
            if self.is_immortal(x) || !seen.insert(x) {
                continue;
            }
            total += self.sizeof(x)?;
            match self.type_id(x) {
                type_ids::TUPLE => todo.extend_from_slice(self.tuple_items(x)),
                type_ids::LIST => todo.extend_from_slice(self.list_items(x)?),
                type_ids::DICT => {
                    let mut pos = 0;
                    while let Some((k, v)) = self.dict_next(x, &mut pos)? {
                        todo.push(k);
                        todo.push(v);
                    }
                }
                type_ids::MODULE | type_ids::FUNCTION => {
                    todo.extend(self.object_name(x));
                    todo.extend(self.attr_dict(x));
                }
                t if t >= type_ids::FIRST_HOST_TYPE => todo.extend(self.instance_values(x).iter().flatten()),
                _ => {}
            }
        }
        Ok(total)
    }
}
