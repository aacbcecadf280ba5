//! Errors of the object layer. Each leaves the heap unchanged.

use std::fmt;

use obmalloc::AllocError;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ObjError {
    /// Not a live object of this heap (foreign, freed, raw memory, dead).
    InvalidPointer(String),
    /// Decref of an object whose count is already 0 (e.g. on a free list).
    RefcountUnderflow(String),
    /// An object of the wrong type, or an unhashable key.
    Type(String),
    Index(String),
    Key(String),
    InvalidArgument(String),
    /// repr/equal/deepcopy nested deeper than the limit.
    Recursion(String),
    /// A call that re-enters the heap where it is not allowed.
    Busy(String),
    NoMemory(AllocError),
}

impl From<AllocError> for ObjError {
    fn from(e: AllocError) -> ObjError {
        match e {
            AllocError::NoMemory { .. } => ObjError::NoMemory(e),
            other => ObjError::InvalidPointer(other.to_string()),
        }
    }
}

impl fmt::Display for ObjError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ObjError::InvalidPointer(m)
            | ObjError::RefcountUnderflow(m)
            | ObjError::Type(m)
            | ObjError::Index(m)
            | ObjError::Key(m)
            | ObjError::InvalidArgument(m)
            | ObjError::Recursion(m)
            | ObjError::Busy(m) => f.write_str(m),
            ObjError::NoMemory(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for ObjError {}

pub type ObjResult<T> = Result<T, ObjError>;
