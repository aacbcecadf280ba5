//! The cache's errors. Each maps to one status of the C ABI.

use crate::backend::BackendError;

/// Why a cache call failed; the message says it for a person.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CacheError {
    /// No device of that index.
    InvalidDevice(String),
    /// The pointer is not the start of a live block of this cache.
    InvalidPointer(String),
    /// The pointer is a block of this cache that is already free.
    DoubleFree(String),
    /// A value outside its domain (a memory fraction, a config option).
    InvalidArgument(String),
    /// PyTorch's OOM message.
    OutOfMemory(String),
    /// No driver, no GPU.
    NoDevice(String),
    /// The driver failed.
    Device(String),
    /// An earlier call panicked while holding this device's lock (a bug in
    /// the cache): the device refuses every call.
    Poisoned(String),
}

impl CacheError {
    pub fn message(&self) -> &str {
        match self {
            CacheError::InvalidDevice(m)
            | CacheError::InvalidPointer(m)
            | CacheError::DoubleFree(m)
            | CacheError::InvalidArgument(m)
            | CacheError::OutOfMemory(m)
            | CacheError::NoDevice(m)
            | CacheError::Device(m)
            | CacheError::Poisoned(m) => m,
        }
    }
}

impl std::fmt::Display for CacheError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.message())
    }
}

impl std::error::Error for CacheError {}

impl From<BackendError> for CacheError {
    fn from(e: BackendError) -> CacheError {
        match e {
            BackendError::NoDevice(m) => CacheError::NoDevice(m),
            BackendError::OutOfMemory => CacheError::OutOfMemory("CUDA out of memory".into()),
            BackendError::Device(m) => CacheError::Device(m),
        }
    }
}
