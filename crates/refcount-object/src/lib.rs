//! # refcount-object — Python's object model on obmalloc
//!
//! Objects with exact reference counts, the immortal singletons of PEP 683
//! (None, True, False, small ints, the empty tuple and string, one-character
//! ASCII strings), the built-in types (int, float, str, tuple, list, dict,
//! module, function), host-defined types with their payload and attributes,
//! CPython's per-type free lists (layer 3 of its memory pyramid), and the
//! Python semantics hosts rely on: hash, ==, repr.
//!
//! Every object lives in the runtime's allocator ([`obmalloc`]), element
//! arrays included, so allocator statistics account for all object memory.
//! The collector's generation lists, its count and its "collection due" flag
//! are plain data here ([`GcState`]); this crate never collects and never
//! calls host code (the facade does both).
//!
//! Start reading at [`object`] (layouts and invariants), then [`Heap`].

#![deny(unsafe_op_in_unsafe_fn)]

mod attrs;
mod copy;
mod dict;
pub mod error;
mod gcsupport;
pub mod hash;
mod heap;
mod list;
mod num;
pub mod object;
mod repr;
mod size;
mod str;
mod tuple;
pub mod types;
mod weakref;

pub use error::{ObjError, ObjResult};
pub use gcsupport::ScanState;
pub use heap::{
    gc_unlink, prefetch_past, FreeListLengths, GcList, GcListIter, GcState, Heap, HeapConfig, SimpleDecref,
};
pub use object::{from_gc_links, GcLinks, Obj, ObjHeader, IMMORTAL_REFCNT};
pub use repr::{float_repr, str_repr};
pub use types::{HostHooks, HostTypeSpec, TypeInfo};
pub use weakref::{DueCallback, WeakRef};
