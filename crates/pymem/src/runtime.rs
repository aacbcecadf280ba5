//! Runtimes: creation, ownership by one thread at a time, messages, version.

use std::cell::{Cell, RefCell, UnsafeCell};
use std::ffi::c_char;
use std::sync::atomic::{AtomicUsize, Ordering};

use obmalloc::{Allocator, Geometry};
use refcount_object::{Heap, HeapConfig};

use crate::boundary::{
    c_message, current_thread_id, enter, run_without_runtime, thread_error, thread_error_ptr, thread_status, write_out,
    ErrorSlot,
};
use crate::status::Status;

/// `pymem_config.geometry`: CPython 3.10+ on 64-bit, 16 KiB pools in 1 MiB arenas (default).
pub const PYMEM_GEOMETRY_CPYTHON_310: i32 = 0;
/// `pymem_config.geometry`: CPython 3.8-3.9, 4 KiB pools in 256 KiB arenas.
pub const PYMEM_GEOMETRY_CPYTHON_38: i32 = 1;

/// `pymem_config.gc_profile`: thresholds (700, 10, 10), CPython up to 3.12 (default).
pub const PYMEM_GC_PROFILE_CPYTHON_311: i32 = 0;
/// `pymem_config.gc_profile`: thresholds (2000, 10, 10), CPython 3.13.
pub const PYMEM_GC_PROFILE_CPYTHON_313: i32 = 1;

/// Default of `pymem_config.pool_release_delay`, in pool events.
pub const PYMEM_DEFAULT_POOL_RELEASE_DELAY: u64 = 256;

/// Default of `pymem_config.retain_cache_max`: 4 MiB.
pub const PYMEM_DEFAULT_RETAIN_CACHE_MAX: u64 = 4 << 20;

/// Default of `pymem_config.huge_page_threshold`: 2 MiB.
pub const PYMEM_DEFAULT_HUGE_PAGE_THRESHOLD: u64 = 2 << 20;

/// Major version of the library this header belongs to.
pub const PYMEM_VERSION_MAJOR: u32 = 0;
/// Minor version (until 1.0 the ABI may change between minor versions).
pub const PYMEM_VERSION_MINOR: u32 = 1;
/// Patch version.
pub const PYMEM_VERSION_PATCH: u32 = 0;

/// Settings of a runtime. Fill it with `pymem_config_init`, then change the
/// fields you need; the runtime copies it, so it may live on the stack.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct Config {
    /// Pool and arena sizes: `PYMEM_GEOMETRY_CPYTHON_310` (default) or
    /// `PYMEM_GEOMETRY_CPYTHON_38`.
    pub geometry: i32,
    /// Non-zero turns on the debug hooks of `PYTHONMALLOC=debug`: 24 guard
    /// bytes per block, new memory filled with 0xCD, freed with 0xDD, guards
    /// checked at free and realloc (`PYMEM_ERR_HEAP_CORRUPTION`).
    pub debug_hooks: i32,
    /// Most bytes the allocator may hold from the OS (arenas + large blocks);
    /// allocations beyond it fail with `PYMEM_ERR_NO_MEMORY`. 0 = no limit.
    pub max_bytes: u64,
    /// Once an arena holds 8 empty pools, how many pool events (a pool
    /// taken or emptied) a pool must stay empty before its pages are given
    /// back to the OS. Default 256; 0 gives them back at once (may thrash
    /// when a loop empties and refills the same pools). Whatever the delay,
    /// what stays resident is bounded by `retain_cache_max`'s rule.
    pub pool_release_delay: u64,
    /// Ints in `small_int_min..=small_int_max` are cached immortal objects
    /// (default -5..=256, as CPython; 3.15 caches up to 1024).
    pub small_int_min: i64,
    pub small_int_max: i64,
    /// repr/equal/deepcopy nested deeper than this fail with
    /// `PYMEM_ERR_RECURSION` (default 10,000).
    pub recursion_limit: u64,
    /// Bounds of the free lists of CPython's layer 3: floats (100), tuples
    /// per length up to 20 (2000 each), lists (80), dicts (80). 0 disables one.
    pub float_free_list: u64,
    pub tuple_free_list: u64,
    pub list_free_list: u64,
    pub dict_free_list: u64,
    /// The collector's thresholds: `PYMEM_GC_PROFILE_CPYTHON_311` (700, 10,
    /// 10; default) or `PYMEM_GC_PROFILE_CPYTHON_313` (2000, 10, 10).
    pub gc_profile: i32,
    /// Bounded retention: after frees, the allocator keeps resident at most
    /// one spare arena's worth of empty pools (those of the arena with the
    /// most free pools: a wholly free one, as CPython, when there is one)
    /// plus a cache of empty pools of at most 1/16 of the bytes in use
    /// (pools holding blocks, whole, plus large blocks), at least 256 KiB,
    /// and never more than this many bytes (default 4 MiB; 0 = no cache).
    /// A free that empties a pool (or frees a large block) and leaves the
    /// cache over that bound gives the excess back to the OS at once (down
    /// to half the bound, least used arenas first), so memory does not stay
    /// once the program stops freeing; a plain free costs nothing more.
    /// Besides these, each size class keeps its last pool when it empties
    /// (ready for the class's next block). `pymem_alloc_get_stats` reports
    /// the bytes held free by each reason (`free_bytes_*`).
    pub retain_cache_max: u64,
    /// Transparent huge pages (Linux): once the allocator holds this many
    /// bytes (default 2 MiB; 0 = never), the arenas and large blocks it maps
    /// next are marked `MADV_HUGEPAGE`, so the kernel may back them with
    /// 2 MiB pages: a big heap is walked with far fewer TLB misses and given
    /// back to the OS in a fraction of the kernel time. A small heap keeps
    /// 4 KiB pages. An arena is marked `MADV_NOHUGEPAGE` before its empty
    /// pools are given back, so the kernel never fills them in again.
    pub huge_page_threshold: u64,
    /// The free list of ints outside the small-int cache (default 100, as
    /// CPython 3.14's; 0 disables it): an int that dies waits there for the
    /// next one, which then costs no allocation. Emptied with the other
    /// free lists (`pymem_clear_free_lists`, a full collection).
    pub int_free_list: u64,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            geometry: PYMEM_GEOMETRY_CPYTHON_310,
            debug_hooks: 0,
            max_bytes: 0,
            pool_release_delay: PYMEM_DEFAULT_POOL_RELEASE_DELAY,
            small_int_min: -5,
            small_int_max: 256,
            recursion_limit: 10_000,
            float_free_list: 100,
            tuple_free_list: 2000,
            list_free_list: 80,
            dict_free_list: 80,
            gc_profile: PYMEM_GC_PROFILE_CPYTHON_311,
            retain_cache_max: PYMEM_DEFAULT_RETAIN_CACHE_MAX,
            huge_page_threshold: PYMEM_DEFAULT_HUGE_PAGE_THRESHOLD,
            int_free_list: 100,
        }
    }
}

/// One environment override: the variable, what it accepts, and how it
/// changes the configuration (`false`: the value is not accepted).
struct EnvOverride {
    name: &'static str,
    accepts: &'static str,
    apply: fn(&mut Config, &str) -> bool,
}

/// The environment overrides `pymem_config_init` applies, in one table (as
/// mimalloc reads `MIMALLOC_<option>`): the knobs a CPython user turns with
/// `PYTHONMALLOC=debug`, without recompiling the host.
const ENV_OVERRIDES: &[EnvOverride] = &[
    EnvOverride {
        name: "PYMEM_MALLOC",
        accepts: "debug | pymalloc",
        apply: |c, v| match v {
            "debug" | "pymalloc_debug" => {
                c.debug_hooks = 1;
                true
            }
            "pymalloc" | "default" => {
                c.debug_hooks = 0;
                true
            }
            _ => false,
        },
    },
    EnvOverride {
        name: "PYMEM_GEOMETRY",
        accepts: "3.10 | 3.8",
        apply: |c, v| match v {
            "3.10" | "cpython310" => {
                c.geometry = PYMEM_GEOMETRY_CPYTHON_310;
                true
            }
            "3.8" | "cpython38" => {
                c.geometry = PYMEM_GEOMETRY_CPYTHON_38;
                true
            }
            _ => false,
        },
    },
    EnvOverride {
        name: "PYMEM_MAX_BYTES",
        accepts: "a byte count (0 = no limit)",
        apply: |c, v| v.parse().map(|n| c.max_bytes = n).is_ok(),
    },
    EnvOverride {
        name: "PYMEM_POOL_RELEASE_DELAY",
        accepts: "a count of pool events (0 = at once)",
        apply: |c, v| v.parse().map(|n| c.pool_release_delay = n).is_ok(),
    },
    EnvOverride {
        name: "PYMEM_RETAIN_CACHE_MAX",
        accepts: "a byte count (0 = no cache of empty pools)",
        apply: |c, v| v.parse().map(|n| c.retain_cache_max = n).is_ok(),
    },
    EnvOverride {
        name: "PYMEM_HUGE_PAGE_THRESHOLD",
        accepts: "a byte count (0 = never use huge pages)",
        apply: |c, v| v.parse().map(|n| c.huge_page_threshold = n).is_ok(),
    },
];

impl Config {
    /// The defaults with the environment overrides applied. A value that is
    /// not accepted is ignored and said so in the calling thread's message
    /// slot (`pymem_last_error(NULL)`).
    fn from_environment(lookup: impl Fn(&str) -> Option<String>) -> Config {
        let mut cfg = Config::default();
        for o in ENV_OVERRIDES {
            if let Some(value) = lookup(o.name) {
                if !(o.apply)(&mut cfg, value.trim()) {
                    thread_error(
                        Status::PYMEM_ERR_INVALID_ARGUMENT,
                        &format!("pymem_config_init: ignored {}={value:?} (accepts {})", o.name, o.accepts),
                    );
                }
            }
        }
        cfg
    }

    fn to_allocator_config(self) -> Result<obmalloc::Config, String> {
        let geometry = match self.geometry {
            PYMEM_GEOMETRY_CPYTHON_310 => Geometry::Cpython310,
            PYMEM_GEOMETRY_CPYTHON_38 => Geometry::Cpython38,
            other => {
                return Err(format!(
                    "pymem_runtime_new: unknown geometry {other} (use PYMEM_GEOMETRY_CPYTHON_310 or PYMEM_GEOMETRY_CPYTHON_38)"
                ))
            }
        };
        let max_bytes = usize::try_from(self.max_bytes)
            .map_err(|_| format!("pymem_runtime_new: max_bytes {} is too large", self.max_bytes))?;
        // A bound past the address space is no bound: saturate.
        let retain_cache_max = usize::try_from(self.retain_cache_max).unwrap_or(usize::MAX);
        let huge_page_threshold = usize::try_from(self.huge_page_threshold).unwrap_or(usize::MAX);
        Ok(obmalloc::Config {
            geometry,
            max_bytes,
            debug_hooks: self.debug_hooks != 0,
            pool_release_delay: self.pool_release_delay,
            retain_cache_max,
            huge_page_threshold,
        })
    }
}

impl Config {
    /// The object layer's part of the configuration.
    fn to_heap_config(self) -> Result<HeapConfig, String> {
        if self.small_int_min > self.small_int_max || self.small_int_max - self.small_int_min > 1 << 20 {
            return Err(format!(
                "pymem_runtime_new: small ints {}..={} is not a range of at most 2^20 values",
                self.small_int_min, self.small_int_max
            ));
        }
        let size =
            |v: u64, what: &str| usize::try_from(v).map_err(|_| format!("pymem_runtime_new: {what} {v} is too large"));
        let defaults = HeapConfig::default();
        let gc_threshold0 = match self.gc_profile {
            PYMEM_GC_PROFILE_CPYTHON_311 => 700,
            PYMEM_GC_PROFILE_CPYTHON_313 => 2000,
            other => return Err(format!("pymem_runtime_new: unknown gc_profile {other}")),
        };
        Ok(HeapConfig {
            small_int_min: self.small_int_min,
            small_int_max: self.small_int_max,
            recursion_limit: size(self.recursion_limit, "recursion_limit")?,
            float_free_list: size(self.float_free_list, "float_free_list")?,
            tuple_free_list: size(self.tuple_free_list, "tuple_free_list")?,
            list_free_list: size(self.list_free_list, "list_free_list")?,
            dict_free_list: size(self.dict_free_list, "dict_free_list")?,
            int_free_list: size(self.int_free_list, "int_free_list")?,
            gc_threshold0,
            ..defaults
        })
    }
}

/// What a runtime owns. Only the owner thread touches it.
pub(crate) struct RuntimeState {
    /// The objects, and under them the allocator (`heap.alloc`).
    pub(crate) heap: Box<Heap>,
    /// The cycle collector and what the C API adds to it.
    pub(crate) gc: crate::gc::GcState,
    /// The namespaces' type (registered with the first namespace).
    pub(crate) ns: namespace_cleaner::Namespaces,
    /// What the HTML report remembers of the run (timeline, pauses, the
    /// last %whos and why_alive answers).
    pub(crate) report: crate::report::ReportState,
}

/// No thread owns the runtime (after `pymem_runtime_detach`).
const DETACHED: usize = 0;
/// A panic poisoned the runtime. Never a thread id (thread pointers are aligned).
const POISONED: usize = usize::MAX;

/// What a host callback may call back into, encoded in the low bits of the
/// owner word while the callback runs (thread pointers are 16-aligned), so
/// that every ordinary entry point refuses it with the same single compare
/// that checks the owner.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
#[repr(usize)]
pub(crate) enum Restriction {
    /// Inside `clear` and `dealloc`: only incref/decref (and
    /// `pymem_instance_payload`, which changes nothing).
    RefcountOnly = 1,
    /// Inside `traverse`: nothing that changes anything (only calls that
    /// read, like `pymem_instance_payload`).
    ReadOnly = 2,
}

const RESTRICTION_BITS: usize = 3;

/// A runtime: an allocator (and, as later parts land, objects, a collector,
/// namespaces) that belongs to one thread at a time.
pub struct Runtime {
    /// The owner's thread id, `DETACHED` or `POISONED`. Read by any thread
    /// (relaxed); written by the owner (detach, poison) or by `attach`'s CAS.
    owner: AtomicUsize,
    /// Status and message of the last failed call; owner thread only.
    last_error: UnsafeCell<ErrorSlot>,
    /// Host callbacks running now (`pymem_runtime_free` is refused inside
    /// any of them). Owner thread only.
    callbacks: Cell<u32>,
    /// Whether a loop is running the host's `clear`/`dealloc` callbacks:
    /// calls made from inside them leave new work to that loop, so a chain of
    /// a million host objects is freed in constant stack. Owner thread only.
    pumping: Cell<bool>,
    state: UnsafeCell<RuntimeState>,
}

// SAFETY: a runtime is handed between threads by design (attach/detach). Its
// interior is only touched by the owning thread, which `owner` (an atomic)
// decides; other threads read nothing but `owner`. `attach` takes ownership
// with an acquire CAS that pairs with `detach`'s release store, so the new
// owner sees every write of the old one.
unsafe impl Sync for Runtime {}
// SAFETY: see above; the allocator inside is `Send`.
unsafe impl Send for Runtime {}

impl Runtime {
    #[inline(always)]
    pub(crate) fn owned_by_caller(&self) -> bool {
        self.owner.load(Ordering::Relaxed) == current_thread_id()
    }

    /// Like `owned_by_caller`, but also inside `clear`/`dealloc` callbacks:
    /// the test of incref and decref.
    #[inline(always)]
    pub(crate) fn owned_for_refcount(&self) -> bool {
        let owner = self.owner.load(Ordering::Relaxed);
        owner & !(Restriction::RefcountOnly as usize) == current_thread_id()
    }

    /// Like `owned_by_caller`, also inside any callback: for calls that
    /// change nothing (`pymem_instance_payload`, `pymem_type_name`...).
    #[inline(always)]
    pub(crate) fn owned_for_reading(&self) -> bool {
        let owner = self.owner.load(Ordering::Relaxed);
        owner != POISONED && owner & !RESTRICTION_BITS == current_thread_id()
    }

    /// Runs a host callback that may call back in only as `restriction`
    /// allows (`None`: anything but `pymem_runtime_free`).
    pub(crate) fn in_callback<T>(&self, restriction: Option<Restriction>, f: impl FnOnce() -> T) -> T {
        let me = current_thread_id();
        let previous = self.owner.load(Ordering::Relaxed);
        if let Some(r) = restriction {
            self.owner.store(me | r as usize, Ordering::Relaxed);
        }
        // The host's calls inside the callback fail and report to it; the
        // call that ran the callback keeps its own status and message (as
        // CPython saves the current exception around finalizers and gc
        // callbacks). Without this, a `pymem_list_insert` refused with
        // PYMEM_ERR_TYPE whose automatic collection ran a finalizer that
        // got PYMEM_ERR_BUSY left pymem_last_status saying BUSY.
        // SAFETY: the owner thread; no reference into the slot is held
        // across the callback (readers copy the pointer only).
        let saved = unsafe { std::mem::replace(&mut *self.last_error.get(), ErrorSlot::empty()) };
        self.callbacks.set(self.callbacks.get() + 1);
        let result = f();
        self.callbacks.set(self.callbacks.get() - 1);
        // A panic in pymem during the callback poisons the runtime with its
        // message: keep that one.
        if self.owner.load(Ordering::Relaxed) != POISONED {
            // SAFETY: as above.
            unsafe { *self.last_error.get() = saved };
        }
        // A panic in pymem during the callback poisons the runtime; keep that.
        if restriction.is_some() && self.owner.load(Ordering::Relaxed) != POISONED {
            self.owner.store(previous, Ordering::Relaxed);
        }
        result
    }

    /// Whether a host callback is running (an automatic collection waits).
    pub(crate) fn in_any_callback(&self) -> bool {
        self.callbacks.get() > 0
    }

    pub(crate) fn pumping(&self) -> &Cell<bool> {
        &self.pumping
    }

    /// The refusal for a caller that does not own the runtime.
    #[cold]
    #[inline(never)]
    pub(crate) fn refuse(&self, function: &str) -> Status {
        let owner = self.owner.load(Ordering::Relaxed);
        if owner != POISONED && owner & !RESTRICTION_BITS == current_thread_id() {
            let why = if owner & RESTRICTION_BITS == Restriction::RefcountOnly as usize {
                "inside a clear or dealloc callback only pymem_incref and pymem_decref may be called"
            } else {
                "inside a traverse callback pymem may not be called"
            };
            return thread_error(Status::PYMEM_ERR_BUSY, &format!("{function}: {why}"));
        }
        if owner == POISONED {
            return thread_error(
                Status::PYMEM_ERR_PANIC,
                &format!("{function}: the runtime is poisoned by an earlier internal error"),
            );
        }
        thread_error(
            Status::PYMEM_ERR_BUSY,
            &format!(
                "{function}: the runtime belongs to another thread (or is detached); call pymem_runtime_attach first"
            ),
        )
    }

    /// # Safety
    /// The caller owns the runtime and holds no other reference to its state.
    #[allow(clippy::mut_from_ref)]
    pub(crate) unsafe fn state_mut(&self) -> &mut RuntimeState {
        // SAFETY: contract.
        unsafe { &mut *self.state.get() }
    }

    /// Records a failure. Owner thread only.
    #[cold]
    pub(crate) fn set_error(&self, status: Status, message: &str) {
        // SAFETY: called by the owner (after `enter`); the previous message's
        // pointer is invalidated, as documented ("valid until the next call").
        unsafe { *self.last_error.get() = ErrorSlot { status, message: c_message(message) } };
    }

    /// Marks the runtime unusable after a panic. Called on the owner thread.
    #[cold]
    pub(crate) fn poison(&self, message: &str) {
        self.set_error(Status::PYMEM_ERR_PANIC, message);
        forget_owned(self);
        self.owner.store(POISONED, Ordering::Release);
    }

    /// The slot to report from: the runtime's own for its owner (or once it is
    /// poisoned, when nobody writes it any more), else the calling thread's.
    fn reads_own_slot(&self) -> bool {
        let owner = self.owner.load(Ordering::Acquire);
        owner == current_thread_id() || owner == POISONED
    }
}

/// The runtimes the calling thread owns. When a thread ends, its runtimes are
/// detached, so that a thread created later — which may be handed the same
/// thread pointer, since glibc reuses a finished thread's control block —
/// is not mistaken for their owner; any thread may then attach them. This
/// list, like the message slot, is per thread and touched only on the cold
/// paths (new, attach, detach, free, poison).
struct OwnedRuntimes(RefCell<Vec<*const Runtime>>);

impl Drop for OwnedRuntimes {
    fn drop(&mut self) {
        let me = current_thread_id();
        for &rt in self.0.borrow().iter() {
            // SAFETY: a runtime is on this list only while this thread owns
            // it, and an owned runtime can only be freed by its owner, which
            // takes it off the list first; so `rt` is live.
            let rt = unsafe { &*rt };
            let _ = rt.owner.compare_exchange(me, DETACHED, Ordering::Release, Ordering::Relaxed);
        }
    }
}

thread_local! {
    static OWNED: OwnedRuntimes = const { OwnedRuntimes(RefCell::new(Vec::new())) };
}

fn remember_owned(rt: &Runtime) {
    let _ = OWNED.try_with(|owned| owned.0.borrow_mut().push(rt as *const Runtime));
}

fn forget_owned(rt: &Runtime) {
    let _ = OWNED.try_with(|owned| owned.0.borrow_mut().retain(|&r| !std::ptr::eq(r, rt)));
}

/// Fills `*cfg` with the defaults: CPython 3.10+ geometry, no debug hooks, no
/// memory limit, a pool release delay of 256 pool events, a retention cache
/// of at most 4 MiB; then applies the environment, as CPython reads
/// `PYTHONMALLOC`: `PYMEM_MALLOC=debug|pymalloc` (debug hooks),
/// `PYMEM_GEOMETRY=3.10|3.8`, `PYMEM_MAX_BYTES=<bytes>`,
/// `PYMEM_POOL_RELEASE_DELAY=<events>`, `PYMEM_RETAIN_CACHE_MAX=<bytes>`. A value
/// it cannot accept is ignored, with a message in `pymem_last_error(NULL)`.
/// NULL is ignored. Callable from any thread.
///
/// # Safety
/// `cfg` is NULL or points to writable memory for a `pymem_config`.
#[no_mangle]
pub unsafe extern "C" fn pymem_config_init(cfg: *mut Config) {
    if cfg.is_null() {
        return;
    }
    let defaults = run_without_runtime("pymem_config_init", Config::default(), || {
        Config::from_environment(|name| std::env::var(name).ok())
    });
    // SAFETY: non-null and writable per the contract.
    unsafe { cfg.write(defaults) };
}

/// Creates a runtime owned by the calling thread and stores it in `*out`.
/// `cfg` may be NULL for the defaults (those of `pymem_config_init`,
/// environment included); it is copied, not kept. On failure
/// `*out` is untouched and `pymem_last_error(NULL)` says why.
/// Free it with `pymem_runtime_free`.
///
/// # Safety
/// `cfg` is NULL or points to an initialised `pymem_config`; `out` is NULL
/// (an error) or writable.
#[no_mangle]
pub unsafe extern "C" fn pymem_runtime_new(cfg: *const Config, out: *mut *mut Runtime) -> Status {
    run_without_runtime("pymem_runtime_new", Status::PYMEM_ERR_PANIC, || {
        if out.is_null() {
            return thread_error(Status::PYMEM_ERR_NULL_ARGUMENT, "pymem_runtime_new: out is NULL");
        }
        let cfg = if cfg.is_null() {
            Config::from_environment(|name| std::env::var(name).ok())
        } else {
            // SAFETY: non-null and initialised per the contract.
            unsafe { *cfg }
        };
        let alloc_cfg = match cfg.to_allocator_config() {
            Ok(c) => c,
            Err(message) => return thread_error(Status::PYMEM_ERR_INVALID_ARGUMENT, &message),
        };
        let heap_cfg = match cfg.to_heap_config() {
            Ok(c) => c,
            Err(message) => return thread_error(Status::PYMEM_ERR_INVALID_ARGUMENT, &message),
        };
        // Singletons are made by the first object call (a raw-allocator
        // host never pays for them).
        let heap = Heap::new_lazy(Allocator::new(alloc_cfg), heap_cfg);
        let rt = Box::new(Runtime {
            owner: AtomicUsize::new(current_thread_id()),
            last_error: UnsafeCell::new(ErrorSlot::empty()),
            callbacks: Cell::new(0),
            pumping: Cell::new(false),
            state: UnsafeCell::new(RuntimeState {
                heap,
                gc: crate::gc::GcState::new(cfg.gc_profile),
                ns: namespace_cleaner::Namespaces::new(),
                report: crate::report::ReportState::new(),
            }),
        });
        remember_owned(&rt);
        // SAFETY: `out` is non-null and writable per the contract.
        unsafe { write_out(out, Box::into_raw(rt)) };
        Status::PYMEM_OK
    })
}

/// Frees a runtime and everything it owns: every block still allocated, its
/// arenas, and (as later parts land) its objects — host `dealloc` callbacks
/// run, `finalize` and weakref callbacks do not, as at process exit.
/// NULL is fine (`PYMEM_OK`). Only the owner may free it (`PYMEM_ERR_BUSY`
/// otherwise); a poisoned runtime may be freed by any thread. Must not be
/// called twice.
///
/// # Safety
/// `rt` is NULL or a live runtime; after this call it is dangling.
#[no_mangle]
pub unsafe extern "C" fn pymem_runtime_free(rt: *mut Runtime) -> Status {
    if rt.is_null() {
        return Status::PYMEM_OK;
    }
    // SAFETY: live per the contract.
    let owner = unsafe { (*rt).owner.load(Ordering::Acquire) };
    if owner != POISONED && owner != current_thread_id() {
        // SAFETY: live per the contract.
        return unsafe { (*rt).refuse("pymem_runtime_free") };
    }
    // SAFETY: live per the contract; the owner (or anyone, once poisoned)
    // reads its own counter.
    if owner != POISONED && unsafe { (*rt).callbacks.get() } > 0 {
        const WHY: &str = "pymem_runtime_free: may not be called from inside a host callback";
        // SAFETY: live; the caller is the owner (checked above).
        unsafe { (*rt).set_error(Status::PYMEM_ERR_BUSY, WHY) };
        return thread_error(Status::PYMEM_ERR_BUSY, WHY);
    }
    run_without_runtime("pymem_runtime_free", Status::PYMEM_ERR_PANIC, || {
        // SAFETY: live per the contract.
        let r = unsafe { &*rt };
        if owner != POISONED {
            // Host resources first: every live host instance's `dealloc`.
            crate::object::teardown_host_objects(r);
        }
        forget_owned(r);
        // SAFETY: the caller owns it (or it is poisoned) and gives it up; it
        // came from Box::into_raw in pymem_runtime_new.
        drop(unsafe { Box::from_raw(rt) });
        Status::PYMEM_OK
    })
}

/// Makes the calling thread the owner of a detached runtime. `PYMEM_OK` if
/// it already owns it; `PYMEM_ERR_BUSY` while another thread holds it.
///
/// # Safety
/// `rt` is NULL or a live runtime.
#[no_mangle]
pub unsafe extern "C" fn pymem_runtime_attach(rt: *mut Runtime) -> Status {
    if rt.is_null() {
        return thread_error(Status::PYMEM_ERR_NULL_ARGUMENT, "pymem_runtime_attach: the runtime is NULL");
    }
    // SAFETY: live per the contract; only the atomic is touched.
    let rt = unsafe { &*rt };
    run_without_runtime("pymem_runtime_attach", Status::PYMEM_ERR_PANIC, || {
        let me = current_thread_id();
        match rt.owner.compare_exchange(DETACHED, me, Ordering::Acquire, Ordering::Relaxed) {
            Ok(_) => {
                remember_owned(rt);
                Status::PYMEM_OK
            }
            Err(current) if current == me => Status::PYMEM_OK,
            Err(_) => rt.refuse("pymem_runtime_attach"),
        }
    })
}

/// Gives up the calling thread's ownership, so that another thread may
/// `pymem_runtime_attach`. Only the owner may detach (`PYMEM_ERR_BUSY`).
///
/// # Safety
/// `rt` is NULL or a live runtime.
#[no_mangle]
pub unsafe extern "C" fn pymem_runtime_detach(rt: *mut Runtime) -> Status {
    // SAFETY: the C caller passes NULL or a live runtime (API contract).
    match unsafe { enter(rt, "pymem_runtime_detach") } {
        Err(status) => status,
        Ok(rt) => run_without_runtime("pymem_runtime_detach", Status::PYMEM_ERR_PANIC, || {
            forget_owned(rt);
            rt.owner.store(DETACHED, Ordering::Release);
            Status::PYMEM_OK
        }),
    }
}

/// The message of the last failed call on `rt` ("" if none), valid until the
/// next call on it. Calls a host callback makes (a finalizer, a gc or weak
/// reference callback, a native function) report inside the callback and
/// are forgotten when it returns: the call that ran it keeps its own. `pymem_last_error(NULL)` gives the calling thread's last
/// message for calls that had no usable handle (NULL runtime, failed
/// `pymem_runtime_new`, ...). Called from a thread that does not own `rt`, it
/// gives that thread's own last message (e.g. why it got `PYMEM_ERR_BUSY`).
/// Never NULL; never free it.
///
/// # Safety
/// `rt` is NULL or a live runtime.
#[no_mangle]
pub unsafe extern "C" fn pymem_last_error(rt: *const Runtime) -> *const c_char {
    if rt.is_null() {
        return thread_error_ptr();
    }
    // SAFETY: live per the contract.
    let r = unsafe { &*rt };
    if r.reads_own_slot() {
        // SAFETY: the owner is the caller, or nobody writes any more (poisoned).
        unsafe { (*r.last_error.get()).message.as_ptr() }
    } else {
        thread_error_ptr()
    }
}

/// The status of the last failed call on `rt` (`PYMEM_OK` if none), with
/// the same rules as `pymem_last_error`: `pymem_last_status(NULL)`, or a call
/// from a thread that does not own `rt`, gives the calling thread's last
/// status. Useful after `pymem_malloc`/`pymem_calloc`/`pymem_realloc`
/// return NULL, to tell `PYMEM_ERR_NO_MEMORY` from `PYMEM_ERR_BUSY` or
/// `PYMEM_ERR_INVALID_POINTER`.
///
/// # Safety
/// `rt` is NULL or a live runtime.
#[no_mangle]
pub unsafe extern "C" fn pymem_last_status(rt: *const Runtime) -> Status {
    if rt.is_null() {
        return thread_status();
    }
    // SAFETY: live per the contract.
    let r = unsafe { &*rt };
    if r.reads_own_slot() {
        // SAFETY: as in `pymem_last_error`.
        unsafe { (*r.last_error.get()).status }
    } else {
        thread_status()
    }
}

/// The library's version, e.g. `"0.1.0"` (the header's `PYMEM_VERSION_*`
/// macros give the version it was compiled against). Static; never free it.
#[no_mangle]
pub extern "C" fn pymem_version() -> *const c_char {
    concat!(env!("CARGO_PKG_VERSION"), "\0").as_ptr().cast()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn environment_overrides_apply_and_bad_values_are_reported() {
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |name: &str| pairs.iter().find(|(n, _)| *n == name).map(|(_, v)| v.to_string())
        };
        let cfg = Config::from_environment(env(&[
            ("PYMEM_MALLOC", "debug"),
            ("PYMEM_GEOMETRY", "3.8"),
            ("PYMEM_MAX_BYTES", "1048576"),
            ("PYMEM_POOL_RELEASE_DELAY", " 0 "),
            ("PYMEM_RETAIN_CACHE_MAX", "65536"),
            ("PYMEM_HUGE_PAGE_THRESHOLD", "0"),
        ]));
        assert_eq!(cfg.retain_cache_max, 65536);
        assert_eq!(cfg.huge_page_threshold, 0);
        assert_eq!(cfg.debug_hooks, 1);
        assert_eq!(cfg.geometry, PYMEM_GEOMETRY_CPYTHON_38);
        assert_eq!(cfg.max_bytes, 1 << 20);
        assert_eq!(cfg.pool_release_delay, 0);

        let cfg = Config::from_environment(env(&[("PYMEM_GEOMETRY", "3.9"), ("PYMEM_MAX_BYTES", "lots")]));
        assert_eq!(cfg.geometry, PYMEM_GEOMETRY_CPYTHON_310, "a bad value leaves the default");
        assert_eq!(cfg.max_bytes, 0);
        assert_eq!(thread_status(), Status::PYMEM_ERR_INVALID_ARGUMENT);
        // SAFETY: NULL is allowed; the message is a valid C string.
        let message = unsafe { std::ffi::CStr::from_ptr(pymem_last_error(std::ptr::null())) };
        assert!(message.to_string_lossy().contains("PYMEM_MAX_BYTES=\"lots\""), "{message:?}");

        let cfg = Config::from_environment(env(&[]));
        assert_eq!((cfg.debug_hooks, cfg.max_bytes), (0, 0));
    }

    #[test]
    fn default_release_delay_is_the_allocators() {
        assert_eq!(PYMEM_DEFAULT_POOL_RELEASE_DELAY, obmalloc::DEFAULT_POOL_RELEASE_DELAY);
        assert_eq!(PYMEM_DEFAULT_RETAIN_CACHE_MAX, obmalloc::DEFAULT_RETAIN_CACHE_MAX as u64);
    }

    #[test]
    fn version_macros_match_the_crate() {
        let v = format!("{PYMEM_VERSION_MAJOR}.{PYMEM_VERSION_MINOR}.{PYMEM_VERSION_PATCH}");
        assert_eq!(v, env!("CARGO_PKG_VERSION"));
    }

    #[test]
    fn null_out_pointer_is_refused() {
        // SAFETY: NULL arguments are part of the contract.
        let status = unsafe { pymem_runtime_new(std::ptr::null(), std::ptr::null_mut()) };
        assert_eq!(status, Status::PYMEM_ERR_NULL_ARGUMENT);
    }
}
