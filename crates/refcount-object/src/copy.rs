//! `copy.copy` and `copy.deepcopy`, as Python's `copy` module does them.
//!
//! | object | [`Heap::copy`] (shallow) | [`Heap::deepcopy`] |
//! |---|---|---|
//! | None, bool, int, float, str, module, function | the same object | the same object |
//! | tuple | the same object | a new tuple if some item's copy differs, else the same object |
//! | list | a new list sharing the items (capacity = length, as `list.copy()`) | a new list of the items' deep copies |
//! | dict | a new dict with the same keys and values, in insertion order | keys and values deep-copied, order kept |
//! | instance of a host type | a new instance: the same attribute values, the payload bytes copied | attribute values deep-copied, the payload bytes copied |
//!
//! **Host payloads.** This crate cannot call host code, so a copied
//! instance gets a byte-for-byte copy of the original's payload. That is
//! right for plain data, and wrong for a payload holding references or host
//! resources (they would be duplicated without being counted, then released
//! twice). So instances of a host type with a `traverse`, `clear` or
//! `dealloc` callback are refused with a `Type` error ("cannot copy 'Node'
//! object"), as Python refuses to copy objects it cannot reduce. (Python's
//! default copy of an instance copies its `__dict__`, which is what the
//! attribute values get here.)
//!
//! ## deepcopy: a memo and an explicit work stack
//! As Python's `copy.deepcopy`, a memo maps each original container to its
//! copy, so objects shared in the original are shared in the copy and
//! cycles are reproduced (a list containing itself copies to a new list
//! containing itself). A list, dict or instance enters the memo when its
//! (still empty) copy is made, before its items are copied; a tuple only
//! once its items are copied, and only if the copy is a new tuple (Python's
//! `_deepcopy_tuple`, including its second memo look-up for tuples reached
//! again through their own items).
//!
//! The traversal never recurses on object depth: each container being
//! copied is a [`Frame`] on a stack, whose length is the depth of the next
//! object to copy. An object deeper than `config.recursion_limit` (the root
//! is at depth 0) fails with `Recursion`, the same depth rule as repr and
//! ==; a structure a million deep copies in constant machine stack when the
//! limit allows it.
//!
//! Ownership during a deepcopy: `created` holds one reference to every
//! container made; frames borrow them; a copy handed to its parent is a new
//! reference the parent takes over. On success `created`'s references are
//! dropped (everything made is reachable from the result). On error, every
//! container made is emptied first (which frees nothing: `created` keeps
//! them alive and the originals keep their items alive), then the frames'
//! own references and `created`'s are dropped, so everything made is freed
//! even when it was made into a cycle: the heap is left as it was.

use std::ptr;

use hashbrown::HashMap;
use obmalloc::BlockKind;

use crate::error::{ObjError, ObjResult};
use crate::heap::Heap;
use crate::object::{body, type_ids, InstanceObj, ListObj, Obj, TupleObj};

/// A container whose copy is being filled in, in [`Heap::deepcopy`].
enum Frame {
    /// `dst` holds the copies of `src`'s first `dst.len` items.
    List { src: Obj, dst: Obj },
    /// `dst` holds the copies of `src`'s entries before `pos`. `pending` is
    /// the entry being copied: its original key and, once made, the copy of
    /// its value (a reference this frame owns). Python copies the value
    /// first (`y[deepcopy(key)] = deepcopy(value)` evaluates the right side
    /// first), and so do we.
    Dict { src: Obj, dst: Obj, pos: usize, pending: Option<(Obj, Option<Obj>)> },
    /// The copies of `src`'s first `copies.len()` items (references this
    /// frame owns); the tuple is made, or not, when all are there.
    Tuple { src: Obj, copies: Vec<Obj> },
    /// `dst`'s slots before `slot` are filled; `slot` is the one being copied.
    Instance { src: Obj, dst: Obj, slot: usize },
}

/// The state of one deepcopy.
#[derive(Default)]
struct DeepCopy {
    /// Original container -> its copy (borrowed: `created` owns it).
    memo: HashMap<Obj, Obj>,
    /// One reference to every container made.
    created: Vec<Obj>,
    frames: Vec<Frame>,
}

impl Heap {
    /// `copy.copy(o)`: a new list or dict with the same items, a new
    /// instance with the same attribute values and a copy of the payload
    /// bytes (see the module docs), or `o` itself for immutable objects and
    /// atoms (tuple, str, int, float, bool, None, module, function).
    /// New reference.
    pub fn copy(&mut self, o: Obj) -> ObjResult<Obj> {
        match self.type_id(o) {
            type_ids::LIST => {
                let len = self.list_len(o)?;
                let dst = self.list_with_capacity(len)?;
                // SAFETY: both are lists; `dst` has room for `len` items and
                // `o` holds `len` (nothing runs in between to change it).
                unsafe {
                    let (from, to) = (body::<ListObj>(o).items, body::<ListObj>(dst).items);
                    if len > 0 {
                        ptr::copy_nonoverlapping(from, to, len);
                    }
                    for i in 0..len {
                        self.incref(*to.add(i));
                    }
                    body::<ListObj>(dst).len = len as u32; // `len` came from a list
                }
                Ok(dst)
            }
            type_ids::DICT => {
                let dst = self.dict_new()?;
                let mut pos = 0;
                while let Some((k, v)) = self.dict_next(o, &mut pos)? {
                    if let Err(e) = self.dict_set(dst, k, v) {
                        self.decref(dst);
                        return Err(e);
                    }
                }
                Ok(dst)
            }
            t if t >= type_ids::FIRST_HOST_TYPE => {
                let dst = self.instance_shell(o)?;
                // SAFETY: `dst` has as many value slots as `o` (all None).
                unsafe {
                    let src = body::<InstanceObj>(o);
                    let to = body::<InstanceObj>(dst).values;
                    for i in 0..src.nvalues as usize {
                        if let Some(v) = *src.values.add(i) {
                            self.incref(v);
                            *to.add(i) = Some(v);
                        }
                    }
                }
                Ok(dst)
            }
            _ => Ok(self.new_ref(o)),
        }
    }

    /// `copy.deepcopy(o)` with a memo (see the module docs): shared objects
    /// stay shared, cycles are reproduced, atoms are not copied, a tuple is
    /// copied only if some item's copy differs. Nested deeper than
    /// `config.recursion_limit`: `Recursion` error. On any error nothing made
    /// survives. New reference.
    pub fn deepcopy(&mut self, o: Obj) -> ObjResult<Obj> {
        let mut cx = DeepCopy::default();
        let result = self.deepcopy_run(&mut cx, o);
        if result.is_err() {
            self.deepcopy_unwind(&mut cx);
        }
        for c in cx.created.drain(..) {
            self.decref(c);
        }
        result
    }

    /// The traversal: start with `root`, then repeatedly give the last
    /// finished copy to the innermost frame and ask it for its next item,
    /// until the outermost frame is finished.
    fn deepcopy_run(&mut self, cx: &mut DeepCopy, root: Obj) -> ObjResult<Obj> {
        let mut done = self.deepcopy_start(cx, root)?;
        loop {
            if let Some(copy) = done.take() {
                match cx.frames.last_mut() {
                    Some(frame) => self.deepcopy_deliver(frame, copy)?,
                    None => return Ok(copy),
                }
            }
            let frame = cx.frames.last_mut().expect("a frame is open while no result is pending");
            match self.deepcopy_next_item(frame)? {
                Some(item) => done = self.deepcopy_start(cx, item)?,
                None => {
                    let frame = cx.frames.pop().expect("the frame just asked");
                    done = Some(self.deepcopy_finish(cx, frame)?);
                }
            }
        }
    }

    /// Begins the copy of `x` at depth `cx.frames.len()`: the finished copy
    /// (a new reference), or `None` when a frame was opened for it.
    fn deepcopy_start(&mut self, cx: &mut DeepCopy, x: Obj) -> ObjResult<Option<Obj>> {
        if cx.frames.len() > self.config.recursion_limit {
            return Err(ObjError::Recursion("maximum recursion depth exceeded in deepcopy".into()));
        }
        let type_id = self.type_id(x);
        let container = matches!(type_id, type_ids::TUPLE | type_ids::LIST | type_ids::DICT)
            || type_id >= type_ids::FIRST_HOST_TYPE;
        if !container {
            // Atoms: never in the memo, never copied.
            return Ok(Some(self.new_ref(x)));
        }
        if let Some(&copy) = cx.memo.get(&x) {
            return Ok(Some(self.new_ref(copy)));
        }
        let (dst, frame) = match type_id {
            type_ids::TUPLE => {
                let len = self.tuple_len(x)?;
                if len == 0 {
                    return Ok(Some(x)); // the immortal empty tuple
                }
                cx.frames.push(Frame::Tuple { src: x, copies: Vec::with_capacity(len) });
                return Ok(None);
            }
            type_ids::LIST => {
                let dst = self.list_with_capacity(self.list_len(x)?)?;
                (dst, Frame::List { src: x, dst })
            }
            type_ids::DICT => {
                let dst = self.dict_new()?;
                (dst, Frame::Dict { src: x, dst, pos: 0, pending: None })
            }
            _ => {
                let dst = self.instance_shell(x)?;
                (dst, Frame::Instance { src: x, dst, slot: 0 })
            }
        };
        cx.created.push(dst);
        cx.memo.insert(x, dst);
        cx.frames.push(frame);
        Ok(None)
    }

    /// The next original item `frame` needs copied, or `None` when its copy
    /// is complete.
    fn deepcopy_next_item(&mut self, frame: &mut Frame) -> ObjResult<Option<Obj>> {
        match frame {
            Frame::List { src, dst } => {
                let n = self.list_len(*dst)?;
                Ok(self.list_items(*src)?.get(n).copied())
            }
            Frame::Dict { src, pos, pending, .. } => match *pending {
                None => match self.dict_next(*src, pos)? {
                    Some((key, value)) => {
                        *pending = Some((key, None));
                        Ok(Some(value))
                    }
                    None => Ok(None),
                },
                Some((key, Some(_))) => Ok(Some(key)),
                Some((_, None)) => unreachable!("a dict frame asked again before its value was copied"),
            },
            Frame::Tuple { src, copies } => Ok(self.tuple_items(*src).get(copies.len()).copied()),
            Frame::Instance { src, slot, .. } => {
                let values = self.instance_values(*src);
                while *slot < values.len() {
                    if let Some(v) = values[*slot] {
                        return Ok(Some(v));
                    }
                    *slot += 1;
                }
                Ok(None)
            }
        }
    }

    /// Hands `copy` (a new reference) to the frame that asked for it. On
    /// error the reference is dropped.
    fn deepcopy_deliver(&mut self, frame: &mut Frame, copy: Obj) -> ObjResult<()> {
        match frame {
            Frame::List { dst, .. } => {
                // SAFETY: `dst` is a list made with the original's length as
                // its capacity; the original's length cannot change during
                // the copy, so there is room (checked anyway).
                unsafe {
                    let l = body::<ListObj>(*dst);
                    if l.len < l.cap {
                        *l.items.add(l.len()) = copy;
                        l.len += 1;
                        return Ok(());
                    }
                }
                let r = self.list_append(*dst, copy);
                self.decref(copy);
                r
            }
            Frame::Dict { dst, pending, .. } => match pending {
                Some((_, value @ None)) => {
                    *value = Some(copy);
                    Ok(())
                }
                Some((_, Some(value))) => {
                    let value = *value;
                    *pending = None;
                    let r = self.dict_set(*dst, copy, value);
                    self.decref(copy);
                    self.decref(value);
                    r
                }
                None => unreachable!("a dict frame got a copy it did not ask for"),
            },
            Frame::Tuple { copies, .. } => {
                copies.push(copy);
                Ok(())
            }
            Frame::Instance { dst, slot, .. } => {
                // SAFETY: `dst` has as many slots as the original, and `slot`
                // is one of the original's.
                unsafe { *body::<InstanceObj>(*dst).values.add(*slot) = Some(copy) };
                *slot += 1;
                Ok(())
            }
        }
    }

    /// The copy a complete frame stands for (a new reference).
    fn deepcopy_finish(&mut self, cx: &mut DeepCopy, frame: Frame) -> ObjResult<Obj> {
        let (src, copies) = match frame {
            Frame::List { dst, .. } | Frame::Dict { dst, .. } | Frame::Instance { dst, .. } => {
                return Ok(self.new_ref(dst))
            }
            Frame::Tuple { src, copies } => (src, copies),
        };
        // A tuple reached again through its own items was copied there.
        let result = if let Some(&copy) = cx.memo.get(&src) {
            Ok(self.new_ref(copy))
        } else if copies.iter().zip(self.tuple_items(src)).all(|(c, o)| c == o) {
            Ok(self.new_ref(src))
        } else {
            self.tuple_new(&copies).map(|t| {
                cx.created.push(t);
                cx.memo.insert(src, t);
                self.new_ref(t)
            })
        };
        for c in copies {
            self.decref(c);
        }
        result
    }

    /// After an error: frees everything made so far, cycles included (see
    /// the module docs). `cx.created` is left for the caller to drop.
    fn deepcopy_unwind(&mut self, cx: &mut DeepCopy) {
        // 1. Empty every container made. Frees nothing: `created` holds a
        //    reference to each one made, and the originals to theirs.
        for &c in &cx.created {
            self.clear_copy(c);
        }
        // 2. The frames' own references.
        for frame in cx.frames.drain(..) {
            match frame {
                Frame::Tuple { copies, .. } => {
                    for c in copies {
                        self.decref(c);
                    }
                }
                Frame::Dict { pending: Some((_, Some(value))), .. } => self.decref(value),
                _ => {}
            }
        }
        // 3. The caller drops `created`'s references: each count reaches 0.
    }

    /// Drops every reference a container made by deepcopy holds, leaving it
    /// a valid, empty object of its type.
    fn clear_copy(&mut self, c: Obj) {
        let mut children = Vec::new();
        // SAFETY: for each arm, `c` is a live object of that type.
        unsafe {
            match self.type_id(c) {
                type_ids::LIST => {
                    let l = body::<ListObj>(c);
                    for i in 0..l.len() {
                        children.push(*l.items.add(i));
                    }
                    l.len = 0;
                }
                type_ids::DICT => crate::dict::dict_take_all(self, c, &mut children),
                type_ids::TUPLE => {
                    let t = body::<TupleObj>(c);
                    for i in 0..t.len {
                        let slot = t.items.as_mut_ptr().add(i);
                        children.push(std::mem::replace(&mut *slot, self.none));
                    }
                }
                _ => {
                    let inst = body::<InstanceObj>(c);
                    for i in 0..inst.nvalues as usize {
                        children.extend((*inst.values.add(i)).take());
                    }
                }
            }
        }
        for child in children {
            self.decref(child);
        }
    }

    /// An empty list with room for `cap` items. New reference.
    fn list_with_capacity(&mut self, cap: usize) -> ObjResult<Obj> {
        let dst = self.list_new()?;
        if cap <= ListObj::INLINE {
            return Ok(dst); // the inline slots hold them
        }
        let items = cap
            .checked_mul(std::mem::size_of::<Obj>())
            .ok_or_else(|| ObjError::InvalidArgument("list too long".into()))
            .and_then(|bytes| Ok(self.alloc.malloc_kind(bytes, BlockKind::Internal)?));
        match items {
            Ok(items) => {
                // SAFETY: a fresh, empty list; it takes the block over.
                unsafe {
                    let l = body::<ListObj>(dst);
                    l.items = items.as_ptr() as *mut Obj;
                    l.cap = cap as u32; // the length of an existing list
                }
                Ok(dst)
            }
            Err(e) => {
                self.decref(dst);
                Err(e)
            }
        }
    }

    /// A new instance of `src`'s type with a copy of its payload bytes and
    /// as many value slots as it has, all unset. New reference.
    fn instance_shell(&mut self, src: Obj) -> ObjResult<Obj> {
        let type_id = self.type_id(src);
        let hooks = self.type_info(type_id).hooks();
        if hooks.traverse != 0 || hooks.clear != 0 || hooks.dealloc != 0 {
            return Err(crate::ObjError::Type(format!(
                "cannot copy '{}' object: its payload holds references or resources (the type has traverse, clear or dealloc callbacks)",
                self.type_info(type_id).name()
            )));
        }
        let dst = self.instance_new(type_id)?;
        let payload = self.type_info(type_id).payload_size();
        // SAFETY: two instances of one type, each with `payload` bytes.
        unsafe { ptr::copy_nonoverlapping(self.payload_ptr(src), self.payload_ptr(dst), payload) };
        // SAFETY: `src` is an instance.
        let n = unsafe { body::<InstanceObj>(src).nvalues } as usize;
        if let Err(e) = self.instance_reserve(dst, n) {
            self.decref(dst);
            return Err(e);
        }
        Ok(dst)
    }
}
