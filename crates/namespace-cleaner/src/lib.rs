//! # namespace-cleaner — see which variables hold the memory, delete them, get it back
//!
//! The seed's practical goal: a program whose memory "rockets up" wants to
//! list its variables with their sizes, delete them, and see the memory go
//! back to the OS. This crate is IPython's namespace magics over pymem's
//! objects:
//!
//! | IPython | here | module |
//! |---|---|---|
//! | a module's globals / `user_ns` | a namespace object, [`Namespaces::create`] | [`namespace`] |
//! | `user_ns_hidden` | [`Namespaces::hide`] | [`namespace`] |
//! | `%who_ls` | [`Namespaces::who`] | [`namespace`] |
//! | `%whos` (+ a Size column, pympler's `asizeof`) | [`Namespaces::whos`] | [`table`], [`reach`] |
//! | `del x`, `%xdel x` | [`Namespaces::del`], [`Namespaces::xdel`] | [`namespace`] |
//! | `%reset -s`, `%reset_selective regex` | [`Namespaces::remove_user_names`] | [`namespace`] |
//! | objgraph's `find_backref_chain` | [`Namespaces::why_alive`] | [`why`] |
//!
//! The full `pymem_ns_reset` — delete, collect, give memory back, report —
//! is driven by the facade, which alone may run host callbacks (the
//! collection calls `traverse`, `finalize`, `clear`): this crate deletes the
//! names and says how many; the facade then runs a full collection and
//! `release_free_arenas`, and measures.
//!
//! ## What a namespace is
//! An instance of a host type named `namespace`, registered in the heap the
//! first time a runtime makes one (one [`Namespaces`] per runtime, kept in
//! the runtime's state: no global state). It has no host callbacks, so the
//! heap frees it by itself and the collector traverses it like any
//! instance; its three attributes are declared slots (CPython's
//! `__slots__`: inline in the object, and no other name can be set on it),
//! holding ordinary objects:
//! - `__name__`: its name (a str);
//! - `__names__`: a dict, interned name str → value (the variables);
//! - `__hidden__`: a dict, name → the object the name was bound to when it
//!   was hidden.
//!
//! Invariants (kept by every function here):
//! 1. A key of `__hidden__` is a key of `__names__`, bound to the same
//!    object: rebinding a hidden name to another object, or deleting it,
//!    removes it from `__hidden__` (so the hidden table never keeps an
//!    object alive that no variable holds).
//! 2. A user name ([`Namespaces::who`]) is a key of `__names__` that does
//!    not start with `_`, is not in `__hidden__`, and whose value is not a
//!    module or a function (the seed's `check_global_variable` rule).
//! 3. Every function either succeeds or leaves the namespaces unchanged.

#![deny(unsafe_op_in_unsafe_fn)]

pub mod namespace;
pub mod reach;
pub mod table;
pub mod why;

pub use namespace::{name_pattern, Binding, Namespaces, NOTEBOOK_FUNCTIONS};
pub use reach::Reach;
pub use regex::Regex;
pub use table::{Whos, WhosRow};
pub use why::{Chain, WhyAlive};
