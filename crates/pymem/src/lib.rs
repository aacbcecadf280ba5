//! # pymem — the C ABI of CPython's memory model, rebuilt in Rust
//!
//! This crate is the facade: every `extern "C"` function of `libpymem.so`
//! lives here (a cdylib does not export the `#[no_mangle]` functions of its
//! dependencies, rust-lang/rust#50007), one module per section of the C API,
//! each entry point a thin wrapper around the safe crates below it:
//!
//! | module      | C API section                | crate       |
//! |-------------|------------------------------|-------------|
//! | [`status`]  | status codes and names       | —           |
//! | [`runtime`] | runtime, threads, messages   | —           |
//! | [`alloc`]   | allocator                    | `obmalloc`  |
//! | [`object`]  | objects and reference counts | `refcount-object` |
//! | [`gc`], [`weakref`] | cycle collector, weak references | `gc-generations` |
//! | [`ns`]      | namespaces (%who, %whos, reset) | `namespace-cleaner` |
//! | [`cuda`]    | GPU caching allocator        | `cuda-cache`|
//! | [`report`]  | the HTML memory report       | all of them |
//!
//! Every entry crosses [`boundary`]: NULL checks, the owner-thread check,
//! `catch_unwind`, and the message slots. `include/pymem.h` is generated from
//! the `///` comments here by `cargo xtask header`.

#![deny(unsafe_op_in_unsafe_fn)]

pub mod alloc;
mod boundary;
pub mod cuda;
pub mod gc;
pub mod ns;
pub mod object;
pub mod report;
pub mod runtime;
pub mod status;
#[doc(hidden)]
pub mod testing;
pub mod weakref;

pub use alloc::AllocStats;
pub use runtime::{Config, Runtime};
pub use status::Status;
