//! # cuda-cache — PyTorch's CUDA caching allocator, rebuilt
//!
//! A GPU allocator that keeps freed device memory for reuse, with the
//! policy, statistics and reports of PyTorch's
//! `c10/cuda/CUDACachingAllocator.cpp`, over a real GPU ([`Driver`], the
//! CUDA driver loaded at run time) or simulated devices ([`Simulated`]).
//! The point users meet first: what `nvidia-smi` shows is what the cache
//! *reserves*, not what tensors use; `empty_cache` gives back cached memory
//! no block uses, and nothing else; [`CachingAllocator::release_all`] gives
//! back everything.
//!
//! ```text
//! cache.rs    CachingAllocator: one lock per device, pointer → device
//!   device.rs   DeviceCache: malloc (fast path + retry ladder), free, events,
//!               empty_cache, garbage collection, release_all — bookkeeping
//!     policy.rs   pure rules: round_size, pools, segment sizes, split, oversize
//!     pool.rs     blocks (slab, prev/next ids) and BlockPool (private index)
//!     stats.rs    DeviceStats, one update method per event
//!     oom.rs      the OOM message and format_size
//!     history.rs  the trace ring buffer
//!   report.rs   memory_stats / memory_summary / memory_snapshot formats
//! backend.rs  the Backend trait — simulated.rs, driver.rs
//! config.rs   options and the PYTORCH_CUDA_ALLOC_CONF parser
//! ```
//!
//! Standalone: it depends on no other crate of the workspace. Thread-safe:
//! every method takes `&self`.
//!
//! ```
//! use std::sync::Arc;
//! use cuda_cache::{AllocatorConfig, CachingAllocator, Simulated};
//!
//! let device = Arc::new(Simulated::new(1, 16 << 30));
//! let mut config = AllocatorConfig::default();
//! config.parse("max_split_size_mb:128").unwrap(); // PYTORCH_CUDA_ALLOC_CONF syntax
//! let cache = CachingAllocator::new(device.clone(), &config).unwrap();
//! let x = cache.malloc(0, 1024, 0).unwrap(); // 1 KiB reserves a 2 MiB segment
//! assert_eq!(cache.memory_reserved(0).unwrap(), 2 << 20);
//! cache.free(x).unwrap(); // cached: still reserved
//! cache.empty_cache().unwrap(); // given back
//! assert_eq!((cache.memory_reserved(0).unwrap(), device.device_frees(0)), (0, 1));
//! ```

mod backend;
mod cache;
mod config;
mod device;
mod driver;
mod error;
mod history;
mod oom;
pub mod policy;
mod pool;
mod report;
mod simulated;
mod stats;
pub mod sync;

pub use backend::{Backend, BackendError, EventId, Stream};
pub use cache::CachingAllocator;
pub use config::{AllocatorConfig, ConfigError};
pub use device::{BlockView, SegmentView};
pub use driver::Driver;
pub use error::CacheError;
pub use history::{Action, TraceEntry};
pub use oom::format_size;
pub use simulated::Simulated;
pub use stats::{DeviceStats, Stat, StatArray, StatType};
