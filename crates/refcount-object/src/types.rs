//! Types: the built-in ones and those a host defines.
//!
//! A host type (`pymem_type_new`) carries a name, the size of the payload of
//! its instances, the host's callbacks (opaque here: this crate never calls
//! host code; the facade does, with no borrow of the heap alive) and the
//! shared attribute keys of its instances (CPython 3.11's split keys).

use hashbrown::HashMap;

use crate::object::{type_ids, Obj};

/// The host's callbacks and their userdata, as C function pointers stored
/// as addresses (0 = none). The facade gives them their C types back.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct HostHooks {
    pub traverse: usize,
    pub clear: usize,
    pub finalize: usize,
    pub dealloc: usize,
    pub userdata: usize,
}

/// What a host type is made of.
#[derive(Clone, Debug, Default)]
pub struct HostTypeSpec {
    pub name: String,
    pub payload_size: usize,
    pub hooks: HostHooks,
    /// CPython's `__slots__`: the attribute names every instance has at a
    /// fixed place (inline), and the only ones it may have. Empty: any
    /// names, each given a slot as it is first set.
    pub slots: Vec<String>,
}

pub struct TypeInfo {
    pub(crate) id: u32,
    /// NUL-terminated, so that C can read `pymem_type_name` directly.
    pub(crate) name: Box<[u8]>,
    pub(crate) payload_size: usize,
    pub(crate) hooks: HostHooks,
    /// Instances' attribute names, in the order of their values arrays
    /// (strong references to interned strs), and their positions.
    pub(crate) keys: Vec<Obj>,
    pub(crate) key_index: HashMap<Box<[u8]>, usize>,
    /// Declared with `slots`: no attribute names beyond `keys`.
    pub(crate) fixed_slots: bool,
}

impl TypeInfo {
    pub(crate) fn builtin(id: u32, name: &str) -> TypeInfo {
        TypeInfo {
            id,
            name: nul_terminated(name),
            payload_size: 0,
            hooks: HostHooks::default(),
            keys: Vec::new(),
            key_index: HashMap::new(),
            fixed_slots: false,
        }
    }

    pub(crate) fn host(id: u32, spec: &HostTypeSpec) -> TypeInfo {
        TypeInfo {
            id,
            name: nul_terminated(&spec.name),
            payload_size: spec.payload_size,
            hooks: spec.hooks,
            keys: Vec::new(),
            key_index: HashMap::new(),
            fixed_slots: !spec.slots.is_empty(),
        }
    }

    /// The type's name (without the NUL).
    pub fn name(&self) -> &str {
        std::str::from_utf8(&self.name[..self.name.len() - 1]).unwrap_or("?")
    }

    /// The name as a NUL-terminated C string, valid while the heap lives.
    pub fn name_ptr(&self) -> *const u8 {
        self.name.as_ptr()
    }

    pub fn id(&self) -> u32 {
        self.id
    }

    pub fn hooks(&self) -> HostHooks {
        self.hooks
    }

    pub fn payload_size(&self) -> usize {
        self.payload_size
    }

    pub fn is_host(&self) -> bool {
        self.id >= type_ids::FIRST_HOST_TYPE
    }
}

fn nul_terminated(name: &str) -> Box<[u8]> {
    let mut bytes: Vec<u8> = name.bytes().filter(|&b| b != 0).collect();
    bytes.push(0);
    bytes.into_boxed_slice()
}

/// The built-in types, in `type_ids` order.
pub(crate) fn builtins() -> Vec<TypeInfo> {
    vec![
        TypeInfo::builtin(type_ids::NONE, "NoneType"),
        TypeInfo::builtin(type_ids::BOOL, "bool"),
        TypeInfo::builtin(type_ids::INT, "int"),
        TypeInfo::builtin(type_ids::FLOAT, "float"),
        TypeInfo::builtin(type_ids::STR, "str"),
        TypeInfo::builtin(type_ids::TUPLE, "tuple"),
        TypeInfo::builtin(type_ids::LIST, "list"),
        TypeInfo::builtin(type_ids::DICT, "dict"),
        TypeInfo::builtin(type_ids::MODULE, "module"),
        TypeInfo::builtin(type_ids::FUNCTION, "function"),
    ]
}
