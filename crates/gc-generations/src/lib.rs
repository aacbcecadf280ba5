//! # gc-generations — CPython's generational cycle collector
//!
//! Reference counting frees everything but cycles; this crate finds the
//! cycles no one else references and breaks them, as CPython's `gc` module
//! does: three generations (thresholds 700/10/10, or 3.13's 2000/10/10),
//! the oldest generation past its threshold collected when the count of
//! tracked allocations passes threshold0, full collections only when a
//! quarter of generation 2 is new, freeze into a permanent generation.
//!
//! Tracking: every container (tuple, list, dict, instance, module, function)
//! is tracked at creation — dicts too, as CPython 3.14 does (3.11 tracked a
//! dict only once it held a container); ints, floats and strs never. A
//! surviving tuple whose items are all untracked is untracked during a
//! collection, as in CPython.
//!
//! The object layer keeps the generation lists and the count; this crate
//! decides when and how to collect. It never calls host code: the facade
//! drives the phases of [`collector`] and calls the host's `traverse`,
//! `finalize` and `clear` callbacks in between. Start with
//! [`Collector::begin`].

#![deny(unsafe_op_in_unsafe_fn)]

pub mod collector;

pub use collector::{debug, Collection, Collector, GenStats, HostTraverse, Profile, Traverser};
