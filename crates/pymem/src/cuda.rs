//! The GPU caching allocator's C entry points (`pymem_cuda_*`), over the
//! `cuda-cache` crate: PyTorch's CUDA caching allocator on a real GPU (the
//! CUDA driver, loaded at run time) or on simulated devices.
//!
//! Thread rule for this section: a `pymem_cuda_cache` is fully thread-safe;
//! any thread may call any function on it at any time (one lock per
//! device). `pymem_cuda_last_error(c)` is per thread: each thread reads its
//! own last failure on `c`.
//!
//! Every entry runs through [`cuda_boundary`]: NULL checks, the poisoned
//! check, `catch_unwind` (a panic poisons the cache: every later call
//! returns `PYMEM_ERR_PANIC`), and the message slots.

use std::collections::HashMap;
use std::ffi::{c_char, c_int, CStr};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::ThreadId;

// cuda_cache's Mutex: helgrind sees its order (test-all runs cuda_threads.c under it).
use cuda_cache::sync::Mutex;
use cuda_cache::{AllocatorConfig, Backend, BackendError, CacheError, CachingAllocator, Driver, Simulated};

use crate::boundary::{c_message, run_without_runtime, thread_error, thread_error_ptr, write_out, ErrorSlot, Failure};
use crate::status::Status;

/// `pymem_cuda_config.backend`: the driver when a GPU is there, else the
/// cache is not created (`PYMEM_ERR_NO_DEVICE`).
pub const PYMEM_CUDA_BACKEND_AUTO: i32 = 0;
/// `pymem_cuda_config.backend`: a real GPU through the CUDA driver
/// (libcuda, loaded at run time).
pub const PYMEM_CUDA_BACKEND_DRIVER: i32 = 1;
/// `pymem_cuda_config.backend`: host-side fake devices with a set capacity
/// and a fake address space (no host memory spent on device bytes), for
/// tests and demos. Events complete on `pymem_cuda_synchronize`.
pub const PYMEM_CUDA_BACKEND_SIMULATED: i32 = 2;
/// `pymem_cuda_config.max_split_size` when unlimited (PyTorch's default).
pub const PYMEM_CUDA_UNLIMITED_SPLIT: u64 = u64::MAX;
/// Default `pymem_cuda_config.simulated_capacity`: 80 GiB, an H100's.
pub const PYMEM_CUDA_DEFAULT_SIMULATED_CAPACITY: u64 = 80 << 30;

/// A stream handle: `CUstream` as an integer, 0 = the default stream.
/// The header spells it `uintptr_t` (cbindgen.toml renames it and leaves
/// its typedef to stdint.h).
pub type StreamHandle = usize;

/// Settings of a GPU cache. Fill it with `pymem_cuda_config_init` (PyTorch's
/// defaults), then change fields or apply a PYTORCH_CUDA_ALLOC_CONF string
/// with `pymem_cuda_config_parse`. The cache copies it.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct CudaConfig {
    /// `PYMEM_CUDA_BACKEND_AUTO` (default), `_DRIVER` or `_SIMULATED`.
    pub backend: i32,
    /// Simulated backend: number of devices (default 1).
    pub simulated_devices: i32,
    /// Simulated backend: bytes per device (default 80 GiB).
    pub simulated_capacity: u64,
    /// Blocks of this many bytes or more are never split and count as
    /// oversize (`max_split_size_mb` × 1 MiB); `PYMEM_CUDA_UNLIMITED_SPLIT`
    /// by default. Other values must be over 20 MiB.
    pub max_split_size: u64,
    /// Divisions per power-of-two size interval from 1 MiB (index
    /// log2(size) - 20, clamped to 0..15); 0 or 1 = plain 512-byte rounding
    /// (default); otherwise a power of two.
    pub roundup_power2_divisions: [u32; 16],
    /// In (0, 1): with a memory fraction set, old cached blocks are given
    /// back when reserved memory passes this share of the allowed memory.
    /// 0 = off (default).
    pub garbage_collection_threshold: f64,
    /// In [0, 1]: every device's reserved memory may not pass this share of
    /// its total (`set_per_process_memory_fraction`). Negative = no limit
    /// (default).
    pub memory_fraction: f64,
    /// Allocation history recorded from the start, in a ring of this many
    /// entries per device; 0 = off (default; see `pymem_cuda_record_history`).
    pub history_max_entries: usize,
    /// 1 = cache freed blocks (default); 0 = pass-through, every malloc and
    /// free goes to the device (PyTorch's PYTORCH_NO_CUDA_MEMORY_CACHING=1).
    pub caching: i32,
}

impl Default for CudaConfig {
    fn default() -> Self {
        let d = AllocatorConfig::default();
        CudaConfig {
            backend: PYMEM_CUDA_BACKEND_AUTO,
            simulated_devices: 1,
            simulated_capacity: PYMEM_CUDA_DEFAULT_SIMULATED_CAPACITY,
            max_split_size: d.max_split_size,
            roundup_power2_divisions: d.roundup_power2_divisions,
            garbage_collection_threshold: d.garbage_collection_threshold,
            memory_fraction: -1.0,
            history_max_entries: d.history_max_entries,
            caching: 1,
        }
    }
}

impl CudaConfig {
    /// The allocator's options, validated.
    fn allocator_config(&self) -> Result<AllocatorConfig, Failure> {
        let invalid = |m: String| Failure::new(Status::PYMEM_ERR_INVALID_ARGUMENT, m);
        if self.max_split_size != PYMEM_CUDA_UNLIMITED_SPLIT && self.max_split_size <= 20 << 20 {
            return Err(invalid(format!("max_split_size {} too small, must be > 20 MiB", self.max_split_size)));
        }
        for (i, &d) in self.roundup_power2_divisions.iter().enumerate() {
            if d != 0 && !d.is_power_of_two() {
                return Err(invalid(format!(
                    "roundup_power2_divisions[{i}] = {d}: the divisions have to be a power of 2 or 0"
                )));
            }
        }
        let gc = self.garbage_collection_threshold;
        if !(gc == 0.0 || (gc > 0.0 && gc < 1.0)) {
            return Err(invalid(format!("garbage_collection_threshold {gc}: set it 0.0~1.0 (0 = off)")));
        }
        let fraction = self.memory_fraction;
        if fraction.is_nan() || fraction > 1.0 {
            return Err(invalid(format!("memory_fraction {fraction}: set it within [0, 1] (negative = no limit)")));
        }
        Ok(AllocatorConfig {
            max_split_size: self.max_split_size,
            roundup_power2_divisions: self.roundup_power2_divisions,
            garbage_collection_threshold: gc,
            memory_fraction: (fraction >= 0.0).then_some(fraction),
            history_max_entries: self.history_max_entries,
            caching: self.caching != 0,
        })
    }

    fn set_allocator_config(&mut self, c: &AllocatorConfig) {
        self.max_split_size = c.max_split_size;
        self.roundup_power2_divisions = c.roundup_power2_divisions;
        self.garbage_collection_threshold = c.garbage_collection_threshold;
    }
}

/// A GPU caching allocator (opaque): one per process is the usual case (as
/// PyTorch has one), but caches are independent. Fully thread-safe: any
/// thread may call any `pymem_cuda_*` function on it, one lock per device.
pub struct CudaCache {
    inner: CachingAllocator,
    backend_kind: i32,
    /// Each thread's last failure on this cache (`pymem_cuda_last_error`).
    /// A thread's entry stays after it ends (one small string per thread
    /// that ever failed).
    errors: Mutex<HashMap<ThreadId, ErrorSlot>>,
    /// Set when a call panicked (a bug in pymem): every later call returns
    /// `PYMEM_ERR_PANIC`.
    poisoned: AtomicBool,
}

impl From<CacheError> for Failure {
    fn from(e: CacheError) -> Failure {
        let status = match &e {
            CacheError::InvalidDevice(_) => Status::PYMEM_ERR_INDEX,
            CacheError::InvalidPointer(_) => Status::PYMEM_ERR_INVALID_POINTER,
            CacheError::DoubleFree(_) => Status::PYMEM_ERR_DOUBLE_FREE,
            CacheError::InvalidArgument(_) => Status::PYMEM_ERR_INVALID_ARGUMENT,
            CacheError::OutOfMemory(_) => Status::PYMEM_ERR_OUT_OF_DEVICE_MEMORY,
            CacheError::NoDevice(_) => Status::PYMEM_ERR_NO_DEVICE,
            CacheError::Device(_) => Status::PYMEM_ERR_DEVICE,
            CacheError::Poisoned(_) => Status::PYMEM_ERR_PANIC,
        };
        Failure::new(status, e.message())
    }
}

impl CudaCache {
    #[cold]
    #[inline(never)]
    fn fail(&self, function: &str, failure: Failure) -> Status {
        let slot =
            ErrorSlot { status: failure.status, message: c_message(&format!("{function}: {}", failure.message)) };
        let mut errors = self.errors.lock().unwrap_or_else(|e| e.into_inner());
        errors.insert(std::thread::current().id(), slot);
        failure.status
    }

    #[cold]
    #[inline(never)]
    fn panicked(&self, function: &str) -> Status {
        self.poisoned.store(true, Ordering::Release);
        self.fail(function, Failure::new(Status::PYMEM_ERR_PANIC, "internal error (pymem bug), the cache is poisoned"))
    }
}

impl CudaCache {
    /// The caching allocator, for `pymem_report_html` (which runs on a
    /// runtime's boundary and reports into the runtime's slot); `None` once
    /// a panic poisoned the cache.
    pub(crate) fn allocator(&self) -> Option<&CachingAllocator> {
        if self.poisoned.load(Ordering::Acquire) {
            None
        } else {
            Some(&self.inner)
        }
    }

    /// "simulated" or "driver".
    pub(crate) fn backend_label(&self) -> &'static str {
        self.inner.backend_name()
    }
}

/// Runs an entry point's body on a cache: NULL → `PYMEM_ERR_NULL_ARGUMENT`
/// (thread's slot), poisoned → `PYMEM_ERR_PANIC`, a panic poisons, an error
/// goes to the cache's slot for the calling thread.
#[inline(always)]
fn cuda_boundary(
    c: *const CudaCache,
    function: &'static str,
    body: impl FnOnce(&CudaCache) -> Result<(), Failure>,
) -> Status {
    if c.is_null() {
        return null_cache(function);
    }
    // SAFETY: non-null, and a live cache per the contract (a cache used
    // after pymem_cuda_cache_free is undefined behaviour, as documented).
    let cache = unsafe { &*c };
    if cache.poisoned.load(Ordering::Acquire) {
        return cache
            .fail(function, Failure::new(Status::PYMEM_ERR_PANIC, "the cache is poisoned by an earlier panic"));
    }
    match catch_unwind(AssertUnwindSafe(|| body(cache))) {
        Ok(Ok(())) => Status::PYMEM_OK,
        Ok(Err(failure)) => cache.fail(function, failure),
        Err(_) => cache.panicked(function),
    }
}

impl CudaCache {
    /// Asserts every device's invariants (`crate::testing`).
    pub(crate) fn check_invariants(&self) {
        self.inner.check_invariants();
    }
}

#[cold]
#[inline(never)]
fn null_cache(function: &str) -> Status {
    thread_error(Status::PYMEM_ERR_NULL_ARGUMENT, &format!("{function}: the cache is NULL"))
}

/// A non-NULL out-pointer, or `PYMEM_ERR_NULL_ARGUMENT` naming it.
fn require<T>(p: *mut T, what: &str) -> Result<(), Failure> {
    if p.is_null() {
        return Err(Failure::new(Status::PYMEM_ERR_NULL_ARGUMENT, format!("{what} is NULL")));
    }
    Ok(())
}

/// Writes a value through an out-pointer checked by `require`.
fn put<T>(p: *mut T, value: T) {
    // SAFETY: checked non-null by the body; writable per the contract.
    unsafe { write_out(p, value) }
}

/// Hands a string out as `char *` (freed with `pymem_string_free`).
fn put_string(out: *mut *mut c_char, text: &str) {
    put(out, c_message(text).into_raw());
}

fn device_of(cache: &CudaCache, device: c_int) -> Result<usize, Failure> {
    Ok(cache.inner.check_device(i64::from(device))?)
}

/// Fills `*out` with the defaults: `PYMEM_CUDA_BACKEND_AUTO`, one simulated
/// device of 80 GiB, and PyTorch's allocator defaults (no max_split_size,
/// no power-of-two rounding, no garbage collection, no memory fraction, no
/// history, caching on); then applies the environment as PyTorch does at
/// start-up: `PYTORCH_CUDA_ALLOC_CONF` (the syntax of
/// `pymem_cuda_config_parse`) and `PYTORCH_NO_CUDA_MEMORY_CACHING=1`
/// (caching off; 0 leaves it on). A value it cannot accept is ignored, with a message in
/// `pymem_last_error(NULL)`. NULL is ignored. Callable from any thread.
///
/// # Safety
/// `out` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn pymem_cuda_config_init(out: *mut CudaConfig) {
    if out.is_null() {
        return;
    }
    let config = run_without_runtime("pymem_cuda_config_init", CudaConfig::default(), || {
        config_from_environment(|name| std::env::var(name).ok())
    });
    // SAFETY: non-null and writable per the contract.
    unsafe { out.write(config) };
}

/// The defaults with PyTorch's environment variables applied (see
/// `pymem_cuda_config_init`).
fn config_from_environment(lookup: impl Fn(&str) -> Option<String>) -> CudaConfig {
    let mut config = CudaConfig::default();
    if let Some(text) = lookup("PYTORCH_CUDA_ALLOC_CONF") {
        let parsed = config.allocator_config().map_err(|f| f.message).and_then(|mut options| {
            options.parse(&text).map_err(|e| e.0)?;
            Ok(options)
        });
        match parsed {
            Ok(options) => config.set_allocator_config(&options),
            Err(e) => {
                thread_error(
                    Status::PYMEM_ERR_INVALID_ARGUMENT,
                    &format!("pymem_cuda_config_init: ignored PYTORCH_CUDA_ALLOC_CONF={text:?}: {e}"),
                );
            }
        }
    }
    // PyTorch's documentation: "If set to 1, disables caching".
    match lookup("PYTORCH_NO_CUDA_MEMORY_CACHING").as_deref().map(str::trim) {
        None | Some("0") => {}
        Some("1") => config.caching = 0,
        Some(other) => {
            thread_error(
                Status::PYMEM_ERR_INVALID_ARGUMENT,
                &format!("pymem_cuda_config_init: ignored PYTORCH_NO_CUDA_MEMORY_CACHING={other:?} (accepts 1 or 0)"),
            );
        }
    }
    config
}

/// Applies a PYTORCH_CUDA_ALLOC_CONF string on top of `*inout`, e.g.
/// `"max_split_size_mb:128,roundup_power2_divisions:[256:1,512:2,>:8],garbage_collection_threshold:0.6"`.
/// Options: max_split_size_mb, roundup_power2_divisions (one value or a
/// list of `MiB:divisions` with `>` for the rest), garbage_collection_threshold,
/// expandable_segments (False only: True is refused, not implemented),
/// backend (native only). A bad option or value gives
/// `PYMEM_ERR_INVALID_ARGUMENT` with PyTorch's message (in
/// `pymem_last_error(NULL)`), and `*inout` is unchanged.
///
/// # Safety
/// `conf` is NULL or a NUL-terminated string; `inout` is NULL or a valid
/// config (from `pymem_cuda_config_init`).
#[no_mangle]
pub unsafe extern "C" fn pymem_cuda_config_parse(conf: *const c_char, inout: *mut CudaConfig) -> Status {
    run_without_runtime("pymem_cuda_config_parse", Status::PYMEM_ERR_PANIC, || {
        let fail = |status, m: &str| thread_error(status, &format!("pymem_cuda_config_parse: {m}"));
        if conf.is_null() {
            return fail(Status::PYMEM_ERR_NULL_ARGUMENT, "conf is NULL");
        }
        if inout.is_null() {
            return fail(Status::PYMEM_ERR_NULL_ARGUMENT, "inout is NULL");
        }
        // SAFETY: non-null NUL-terminated string per the contract.
        let Ok(text) = unsafe { CStr::from_ptr(conf) }.to_str() else {
            return fail(Status::PYMEM_ERR_INVALID_ARGUMENT, "conf is not UTF-8");
        };
        // SAFETY: non-null and a valid config per the contract.
        let mut config = unsafe { inout.read() };
        let mut options = match config.allocator_config() {
            Ok(o) => o,
            Err(f) => return fail(f.status, &f.message),
        };
        if let Err(e) = options.parse(text) {
            return fail(Status::PYMEM_ERR_INVALID_ARGUMENT, &e.0);
        }
        config.set_allocator_config(&options);
        // SAFETY: non-null and writable per the contract.
        unsafe { inout.write(config) };
        Status::PYMEM_OK
    })
}

fn open_backend(cfg: &CudaConfig) -> Result<(Arc<dyn Backend>, i32), Failure> {
    let no_device = |m: String| Failure::new(Status::PYMEM_ERR_NO_DEVICE, m);
    match cfg.backend {
        PYMEM_CUDA_BACKEND_SIMULATED => {
            if cfg.simulated_devices < 1 || cfg.simulated_capacity == 0 {
                return Err(Failure::new(
                    Status::PYMEM_ERR_INVALID_ARGUMENT,
                    format!(
                        "simulated backend: {} device(s) of {} bytes: need at least 1 device and some capacity",
                        cfg.simulated_devices, cfg.simulated_capacity
                    ),
                ));
            }
            let sim = Simulated::new(cfg.simulated_devices as usize, cfg.simulated_capacity);
            Ok((Arc::new(sim), PYMEM_CUDA_BACKEND_SIMULATED))
        }
        PYMEM_CUDA_BACKEND_DRIVER | PYMEM_CUDA_BACKEND_AUTO => match Driver::open() {
            Ok(driver) => Ok((Arc::new(driver), PYMEM_CUDA_BACKEND_DRIVER)),
            Err(BackendError::NoDevice(why)) if cfg.backend == PYMEM_CUDA_BACKEND_AUTO => {
                Err(no_device(format!("no CUDA device ({why}); PYMEM_CUDA_BACKEND_SIMULATED gives simulated devices")))
            }
            Err(BackendError::NoDevice(why)) => Err(no_device(why)),
            Err(e) => Err(Failure::new(Status::PYMEM_ERR_DEVICE, e.to_string())),
        },
        other => Err(Failure::new(
            Status::PYMEM_ERR_INVALID_ARGUMENT,
            format!("unknown backend {other} (PYMEM_CUDA_BACKEND_AUTO, _DRIVER or _SIMULATED)"),
        )),
    }
}

/// Creates a GPU cache with `*cfg` (NULL = defaults: the AUTO backend). The
/// driver backend needs libcuda and a GPU: without them the call fails with
/// `PYMEM_ERR_NO_DEVICE` and says why (never a crash). Messages of a failed
/// creation are in `pymem_last_error(NULL)`. Free the cache with
/// `pymem_cuda_cache_free`.
///
/// # Safety
/// `cfg` is NULL or a valid config; `out` is NULL (an error) or writable.
#[no_mangle]
pub unsafe extern "C" fn pymem_cuda_cache_new(cfg: *const CudaConfig, out: *mut *mut CudaCache) -> Status {
    run_without_runtime("pymem_cuda_cache_new", Status::PYMEM_ERR_PANIC, || {
        let fail = |f: Failure| thread_error(f.status, &format!("pymem_cuda_cache_new: {}", f.message));
        if out.is_null() {
            return fail(Failure::new(Status::PYMEM_ERR_NULL_ARGUMENT, "out is NULL"));
        }
        let cfg = if cfg.is_null() {
            CudaConfig::default()
        } else {
            // SAFETY: non-null and valid per the contract.
            unsafe { cfg.read() }
        };
        let created = cfg.allocator_config().and_then(|options| {
            let (backend, backend_kind) = open_backend(&cfg)?;
            let inner = CachingAllocator::new(backend, &options)?;
            Ok(CudaCache { inner, backend_kind, errors: Mutex::new(HashMap::new()), poisoned: AtomicBool::new(false) })
        });
        match created {
            Ok(cache) => {
                // SAFETY: checked non-null; writable per the contract.
                unsafe { write_out(out, Box::into_raw(Box::new(cache))) };
                Status::PYMEM_OK
            }
            Err(f) => fail(f),
        }
    })
}

/// Frees the cache: every segment goes back to the device (live blocks
/// too; with the driver, after synchronizing), then the handle. NULL is
/// fine. Must not be called twice, nor while another thread still uses the
/// cache.
///
/// # Safety
/// `c` is NULL or a live cache no other thread is using.
#[no_mangle]
pub unsafe extern "C" fn pymem_cuda_cache_free(c: *mut CudaCache) -> Status {
    if c.is_null() {
        return Status::PYMEM_OK;
    }
    run_without_runtime("pymem_cuda_cache_free", Status::PYMEM_ERR_PANIC, || {
        // SAFETY: from Box::into_raw in pymem_cuda_cache_new, not freed yet
        // (contract). Dropping the allocator gives every segment back.
        drop(unsafe { Box::from_raw(c) });
        Status::PYMEM_OK
    })
}

/// The message of the calling thread's last failed call on `c` ("" if
/// none), valid until that thread's next failure on `c`. With NULL: the
/// thread's last message for calls without a usable cache
/// (`pymem_last_error(NULL)`). Callable from any thread.
///
/// # Safety
/// `c` is NULL or a live cache.
#[no_mangle]
pub unsafe extern "C" fn pymem_cuda_last_error(c: *const CudaCache) -> *const c_char {
    if c.is_null() {
        return thread_error_ptr();
    }
    // SAFETY: live per the contract.
    let cache = unsafe { &*c };
    let errors = cache.errors.lock().unwrap_or_else(|e| e.into_inner());
    match errors.get(&std::thread::current().id()) {
        // The CString's buffer stays put while the map changes; it is
        // replaced only by this thread's next failure.
        Some(slot) => slot.message.as_ptr(),
        None => c"".as_ptr(),
    }
}

/// The status of the calling thread's last failed call on `c` (`PYMEM_OK`
/// if none); with NULL, `pymem_last_status(NULL)`.
///
/// # Safety
/// `c` is NULL or a live cache.
#[no_mangle]
pub unsafe extern "C" fn pymem_cuda_last_status(c: *const CudaCache) -> Status {
    if c.is_null() {
        return crate::boundary::thread_status();
    }
    // SAFETY: live per the contract.
    let cache = unsafe { &*c };
    let errors = cache.errors.lock().unwrap_or_else(|e| e.into_inner());
    errors.get(&std::thread::current().id()).map_or(Status::PYMEM_OK, |slot| slot.status)
}

/// `*out` = the backend the cache runs on: `PYMEM_CUDA_BACKEND_DRIVER` or
/// `PYMEM_CUDA_BACKEND_SIMULATED` (what AUTO chose).
///
/// # Safety
/// `c` is NULL or a live cache; `out` is NULL (an error) or writable.
#[no_mangle]
pub unsafe extern "C" fn pymem_cuda_backend(c: *const CudaCache, out: *mut i32) -> Status {
    cuda_boundary(c, "pymem_cuda_backend", |cache| {
        require(out, "out")?;
        put(out, cache.backend_kind);
        Ok(())
    })
}

/// `*out` = the number of devices.
///
/// # Safety
/// `c` is NULL or a live cache; `out` is NULL (an error) or writable.
#[no_mangle]
pub unsafe extern "C" fn pymem_cuda_device_count(c: *const CudaCache, out: *mut c_int) -> Status {
    cuda_boundary(c, "pymem_cuda_device_count", |cache| {
        require(out, "out")?;
        put(out, cache.inner.device_count() as c_int);
        Ok(())
    })
}

/// Allocates `size` bytes on `device` for use on `stream` (0 = the default
/// stream) and writes the device pointer to `*out_ptr`. Sizes are rounded as
/// PyTorch rounds them; a free cached block is reused when one fits (best
/// fit on the same stream), else a segment comes from the device, after
/// PyTorch's retries (garbage collection, oversize blocks, the whole
/// cache). `size == 0` gives the pointer 0. Out of memory:
/// `PYMEM_ERR_OUT_OF_DEVICE_MEMORY` with PyTorch's message ("CUDA out of
/// memory. Tried to allocate ..."); as in PyTorch the attempt has already
/// emptied the cache and counts in `num_ooms` and `num_alloc_retries`.
/// A bad device index: `PYMEM_ERR_INDEX`; `*out_ptr` is written only on
/// success.
///
/// # Safety
/// `c` is NULL or a live cache; `out_ptr` is NULL (an error) or writable.
#[no_mangle]
pub unsafe extern "C" fn pymem_cuda_malloc(
    c: *const CudaCache,
    device: c_int,
    size: usize,
    stream: StreamHandle,
    out_ptr: *mut u64,
) -> Status {
    cuda_boundary(c, "pymem_cuda_malloc", |cache| {
        require(out_ptr, "out_ptr")?;
        let device = device_of(cache, device)?;
        put(out_ptr, cache.inner.malloc(device, size as u64, stream as u64)?);
        Ok(())
    })
}

/// Frees a device pointer from `pymem_cuda_malloc`; 0 is fine. The block
/// goes back to the cache (not to the device), at once, or, if
/// `pymem_cuda_record_stream` named other streams, when their work
/// recorded so far is done. A pointer that is not a live block of this
/// cache is refused and nothing changes: `PYMEM_ERR_DOUBLE_FREE` for a
/// block already freed, `PYMEM_ERR_INVALID_POINTER` for anything else
/// (interior, foreign, or given back by `pymem_cuda_release_all`).
///
/// # Safety
/// `c` is NULL or a live cache. `ptr` may be any value.
#[no_mangle]
pub unsafe extern "C" fn pymem_cuda_free(c: *const CudaCache, ptr: u64) -> Status {
    cuda_boundary(c, "pymem_cuda_free", |cache| Ok(cache.inner.free(ptr)?))
}

/// Marks the block at `ptr` as used by `stream` too (PyTorch's
/// `Tensor.record_stream`): its free will wait for an event on that
/// stream. The allocation stream itself needs no record.
///
/// # Safety
/// `c` is NULL or a live cache. `ptr` may be any value.
#[no_mangle]
pub unsafe extern "C" fn pymem_cuda_record_stream(c: *const CudaCache, ptr: u64, stream: StreamHandle) -> Status {
    cuda_boundary(c, "pymem_cuda_record_stream", |cache| Ok(cache.inner.record_stream(ptr, stream as u64)?))
}

/// Waits until the device is idle (the simulated device completes every
/// outstanding event), then returns to their pools the blocks whose frees
/// were waiting for those events.
///
/// # Safety
/// `c` is NULL or a live cache.
#[no_mangle]
pub unsafe extern "C" fn pymem_cuda_synchronize(c: *const CudaCache, device: c_int) -> Status {
    cuda_boundary(c, "pymem_cuda_synchronize", |cache| Ok(cache.inner.synchronize(device_of(cache, device)?)?))
}

/// `torch.cuda.empty_cache()` on every device: waits for pending frees,
/// then gives back to the device every cached segment no block uses. A
/// segment holding a live block stays reserved (use
/// `pymem_cuda_release_all` to give back everything).
///
/// # Safety
/// `c` is NULL or a live cache.
#[no_mangle]
pub unsafe extern "C" fn pymem_cuda_empty_cache(c: *const CudaCache) -> Status {
    cuda_boundary(c, "pymem_cuda_empty_cache", |cache| Ok(cache.inner.empty_cache()?))
}

/// The body of the byte-count getters below.
fn stat_getter(
    c: *const CudaCache,
    function: &'static str,
    device: c_int,
    out: *mut u64,
    get: fn(&CachingAllocator, usize) -> Result<u64, CacheError>,
) -> Status {
    cuda_boundary(c, function, |cache| {
        require(out, "out")?;
        let device = device_of(cache, device)?;
        put(out, get(&cache.inner, device)?);
        Ok(())
    })
}

/// `*out` = bytes of the blocks handed out now
/// (`torch.cuda.memory_allocated`, `allocated_bytes.all.current`).
///
/// # Safety
/// `c` is NULL or a live cache; `out` is NULL (an error) or writable.
#[no_mangle]
pub unsafe extern "C" fn pymem_cuda_memory_allocated(c: *const CudaCache, device: c_int, out: *mut u64) -> Status {
    stat_getter(c, "pymem_cuda_memory_allocated", device, out, CachingAllocator::memory_allocated)
}

/// `*out` = the most bytes handed out at once since the start or the
/// last `pymem_cuda_reset_peak_memory_stats` (`allocated_bytes.all.peak`).
///
/// # Safety
/// `c` is NULL or a live cache; `out` is NULL (an error) or writable.
#[no_mangle]
pub unsafe extern "C" fn pymem_cuda_max_memory_allocated(c: *const CudaCache, device: c_int, out: *mut u64) -> Status {
    stat_getter(c, "pymem_cuda_max_memory_allocated", device, out, CachingAllocator::max_memory_allocated)
}

/// `*out` = bytes the cache holds from the device, in use or cached
/// (`torch.cuda.memory_reserved`, `reserved_bytes.all.current`): what
/// nvidia-smi shows for the process, less the CUDA context.
///
/// # Safety
/// `c` is NULL or a live cache; `out` is NULL (an error) or writable.
#[no_mangle]
pub unsafe extern "C" fn pymem_cuda_memory_reserved(c: *const CudaCache, device: c_int, out: *mut u64) -> Status {
    stat_getter(c, "pymem_cuda_memory_reserved", device, out, CachingAllocator::memory_reserved)
}

/// `*out` = the most bytes reserved at once (`reserved_bytes.all.peak`).
///
/// # Safety
/// `c` is NULL or a live cache; `out` is NULL (an error) or writable.
#[no_mangle]
pub unsafe extern "C" fn pymem_cuda_max_memory_reserved(c: *const CudaCache, device: c_int, out: *mut u64) -> Status {
    stat_getter(c, "pymem_cuda_max_memory_reserved", device, out, CachingAllocator::max_memory_reserved)
}

/// The seed's deprecated name of `pymem_cuda_memory_reserved`
/// (`torch.cuda.memory_cached`).
///
/// # Safety
/// `c` is NULL or a live cache; `out` is NULL (an error) or writable.
#[no_mangle]
pub unsafe extern "C" fn pymem_cuda_memory_cached(c: *const CudaCache, device: c_int, out: *mut u64) -> Status {
    stat_getter(c, "pymem_cuda_memory_cached", device, out, CachingAllocator::memory_reserved)
}

/// The seed's deprecated name of `pymem_cuda_max_memory_reserved`
/// (`torch.cuda.max_memory_cached`).
///
/// # Safety
/// `c` is NULL or a live cache; `out` is NULL (an error) or writable.
#[no_mangle]
pub unsafe extern "C" fn pymem_cuda_max_memory_cached(c: *const CudaCache, device: c_int, out: *mut u64) -> Status {
    stat_getter(c, "pymem_cuda_max_memory_cached", device, out, CachingAllocator::max_memory_reserved)
}

/// Every peak statistic becomes its current value
/// (`torch.cuda.reset_peak_memory_stats`).
///
/// # Safety
/// `c` is NULL or a live cache.
#[no_mangle]
pub unsafe extern "C" fn pymem_cuda_reset_peak_memory_stats(c: *const CudaCache, device: c_int) -> Status {
    cuda_boundary(c, "pymem_cuda_reset_peak_memory_stats", |cache| {
        Ok(cache.inner.reset_peak_stats(device_of(cache, device)?)?)
    })
}

/// The allocated/freed totals and the counters (retries, OOMs, syncs,
/// device allocs/frees) go back to 0
/// (`torch.cuda.reset_accumulated_memory_stats`).
///
/// # Safety
/// `c` is NULL or a live cache.
#[no_mangle]
pub unsafe extern "C" fn pymem_cuda_reset_accumulated_memory_stats(c: *const CudaCache, device: c_int) -> Status {
    cuda_boundary(c, "pymem_cuda_reset_accumulated_memory_stats", |cache| {
        Ok(cache.inner.reset_accumulated_stats(device_of(cache, device)?)?)
    })
}

/// `*out_json` = `torch.cuda.memory_stats(device)` as a JSON object: the
/// flat keys joined with '.' in sorted order (`"active.all.allocated"` ...
/// `"segment.small_pool.peak"`), integers, `max_split_size` -1 when
/// unlimited. Free it with `pymem_string_free`.
///
/// # Safety
/// `c` is NULL or a live cache; `out_json` is NULL (an error) or writable.
#[no_mangle]
pub unsafe extern "C" fn pymem_cuda_memory_stats(
    c: *const CudaCache,
    device: c_int,
    out_json: *mut *mut c_char,
) -> Status {
    cuda_boundary(c, "pymem_cuda_memory_stats", |cache| {
        require(out_json, "out_json")?;
        let json = cache.inner.memory_stats_json(device_of(cache, device)?)?;
        put_string(out_json, &json);
        Ok(())
    })
}

/// `*out` = `torch.cuda.memory_summary(device, abbreviated)`, character for
/// character (75-column table; `abbreviated` non-zero drops the per-pool
/// rows). Free it with `pymem_string_free`.
///
/// # Safety
/// `c` is NULL or a live cache; `out` is NULL (an error) or writable.
#[no_mangle]
pub unsafe extern "C" fn pymem_cuda_memory_summary(
    c: *const CudaCache,
    device: c_int,
    abbreviated: c_int,
    out: *mut *mut c_char,
) -> Status {
    cuda_boundary(c, "pymem_cuda_memory_summary", |cache| {
        require(out, "out")?;
        let text = cache.inner.memory_summary(device_of(cache, device)?, abbreviated != 0)?;
        put_string(out, &text);
        Ok(())
    })
}

/// `torch.cuda.memory._record_memory_history`: non-zero `enabled` records
/// every alloc, free_requested, free_completed, segment_alloc,
/// segment_free and oom in a ring of `max_entries` entries per device (at
/// least 1; the oldest go first); 0 stops and clears it. The entries show
/// in `pymem_cuda_memory_snapshot`'s `device_traces`.
///
/// # Safety
/// `c` is NULL or a live cache.
#[no_mangle]
pub unsafe extern "C" fn pymem_cuda_record_history(c: *const CudaCache, enabled: c_int, max_entries: usize) -> Status {
    cuda_boundary(c, "pymem_cuda_record_history", |cache| Ok(cache.inner.record_history(enabled != 0, max_entries)?))
}

/// `*out_json` = `torch.cuda.memory._snapshot()` as JSON: `segments` (each
/// with device, address, total_size, allocated_size, active_size,
/// requested_size, stream, segment_type, segment_pool_id, is_expandable,
/// frames and its `blocks`: address, size, requested_size, state
/// active_allocated | active_pending_free | inactive, frames),
/// `device_traces` (one list per device: action, addr or device_free, size,
/// stream, time_us, frames) and `allocator_settings`. Free it with
/// `pymem_string_free`.
///
/// # Safety
/// `c` is NULL or a live cache; `out_json` is NULL (an error) or writable.
#[no_mangle]
pub unsafe extern "C" fn pymem_cuda_memory_snapshot(c: *const CudaCache, out_json: *mut *mut c_char) -> Status {
    cuda_boundary(c, "pymem_cuda_memory_snapshot", |cache| {
        require(out_json, "out_json")?;
        put_string(out_json, &cache.inner.snapshot_json()?);
        Ok(())
    })
}

/// `torch.cuda.set_per_process_memory_fraction(fraction, device)`: the
/// device's reserved memory may not pass `fraction` × its total; a request
/// beyond fails with the OOM message (with "... allowed;") without asking
/// the device. `fraction` outside [0, 1]: `PYMEM_ERR_INVALID_ARGUMENT`.
///
/// # Safety
/// `c` is NULL or a live cache.
#[no_mangle]
pub unsafe extern "C" fn pymem_cuda_set_per_process_memory_fraction(
    c: *const CudaCache,
    device: c_int,
    fraction: f64,
) -> Status {
    cuda_boundary(c, "pymem_cuda_set_per_process_memory_fraction", |cache| {
        Ok(cache.inner.set_memory_fraction(device_of(cache, device)?, fraction)?)
    })
}

/// Gives every segment of `device` back to the device, live blocks
/// included, after synchronizing it; `*released` (may be NULL) = the bytes.
/// What the seed could not do: free all GPU memory without ending the
/// process. Every pointer handed out before is then refused as unknown
/// (`PYMEM_ERR_INVALID_POINTER`) until the device hands the same address
/// out again; nothing is ever freed twice. The statistics count the live
/// blocks as freed.
///
/// # Safety
/// `c` is NULL or a live cache; `released` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn pymem_cuda_release_all(c: *const CudaCache, device: c_int, released: *mut u64) -> Status {
    cuda_boundary(c, "pymem_cuda_release_all", |cache| {
        let bytes = cache.inner.release_all(device_of(cache, device)?)?;
        if !released.is_null() {
            put(released, bytes);
        }
        Ok(())
    })
}

/// `torch.cuda.mem_get_info(device)`: `*free` and `*total` bytes of the
/// device, as nvidia-smi sees them (total - free is what every process
/// holds, the cache's reserved memory included).
///
/// # Safety
/// `c` is NULL or a live cache; `free` and `total` are NULL (an error) or writable.
#[no_mangle]
pub unsafe extern "C" fn pymem_cuda_mem_get_info(
    c: *const CudaCache,
    device: c_int,
    free: *mut u64,
    total: *mut u64,
) -> Status {
    cuda_boundary(c, "pymem_cuda_mem_get_info", |cache| {
        require(free, "free")?;
        require(total, "total")?;
        let (f, t) = cache.inner.mem_get_info(device_of(cache, device)?)?;
        put(free, f);
        put(total, t);
        Ok(())
    })
}

/// Creates a stream on `device` (`cudaStreamCreate`; on the simulated
/// device a fresh handle) and writes it to `*out`. Blocks allocated on one
/// stream are reused only by requests on the same stream.
///
/// # Safety
/// `c` is NULL or a live cache; `out` is NULL (an error) or writable.
#[no_mangle]
pub unsafe extern "C" fn pymem_cuda_stream_create(
    c: *const CudaCache,
    device: c_int,
    out: *mut StreamHandle,
) -> Status {
    cuda_boundary(c, "pymem_cuda_stream_create", |cache| {
        require(out, "out")?;
        let stream = cache.inner.create_stream(device_of(cache, device)?)?;
        put(out, stream as usize);
        Ok(())
    })
}

/// Destroys a stream from `pymem_cuda_stream_create`. An unknown stream
/// is refused on the simulated device (`PYMEM_ERR_DEVICE`).
///
/// # Safety
/// `c` is NULL or a live cache.
#[no_mangle]
pub unsafe extern "C" fn pymem_cuda_stream_destroy(c: *const CudaCache, device: c_int, stream: StreamHandle) -> Status {
    cuda_boundary(c, "pymem_cuda_stream_destroy", |cache| {
        Ok(cache.inner.destroy_stream(device_of(cache, device)?, stream as u64)?)
    })
}

#[cfg(test)]
mod tests {
    use std::ffi::CStr;
    use std::ptr;

    use super::*;

    fn simulated() -> *mut CudaCache {
        let mut cfg = CudaConfig { backend: PYMEM_CUDA_BACKEND_SIMULATED, ..CudaConfig::default() };
        cfg.simulated_capacity = 1 << 30;
        let mut c = ptr::null_mut();
        // SAFETY: valid config and out-pointer.
        assert_eq!(unsafe { pymem_cuda_cache_new(&cfg, &mut c) }, Status::PYMEM_OK);
        c
    }

    fn message(c: *const CudaCache) -> String {
        // SAFETY: a live cache; the message is a valid C string.
        unsafe { CStr::from_ptr(pymem_cuda_last_error(c)) }.to_string_lossy().into_owned()
    }

    #[test]
    fn a_panic_poisons_the_cache_and_never_unwinds_into_c() {
        let c = simulated();
        let status = cuda_boundary(c, "pymem_cuda_test", |_| panic!("an internal invariant broke"));
        assert_eq!(status, Status::PYMEM_ERR_PANIC);
        assert!(message(c).contains("poisoned"), "{}", message(c));
        let mut p = 0u64;
        // SAFETY: a live cache and a valid out-pointer.
        assert_eq!(unsafe { pymem_cuda_malloc(c, 0, 16, 0, &mut p) }, Status::PYMEM_ERR_PANIC);
        // SAFETY: a live cache.
        assert_eq!(unsafe { pymem_cuda_last_status(c) }, Status::PYMEM_ERR_PANIC);
        // A poisoned cache can still be freed.
        // SAFETY: live, freed once.
        assert_eq!(unsafe { pymem_cuda_cache_free(c) }, Status::PYMEM_OK);
    }

    #[test]
    fn each_thread_reads_its_own_last_error() {
        let c = simulated();
        // SAFETY: a live cache.
        assert_eq!(unsafe { pymem_cuda_free(c, 0x1234) }, Status::PYMEM_ERR_INVALID_POINTER);
        let addr = c as usize;
        let other = std::thread::spawn(move || {
            let c = addr as *const CudaCache;
            let before = message(c);
            // SAFETY: the cache is live until the main thread frees it after the join.
            let status = unsafe { pymem_cuda_synchronize(c, 9) };
            (before, status, message(c))
        })
        .join()
        .unwrap();
        assert_eq!(other.0, "", "no failure on that thread yet");
        assert_eq!(other.1, Status::PYMEM_ERR_INDEX);
        assert!(other.2.contains("invalid device index 9"));
        assert!(message(c).starts_with("pymem_cuda_free: 0x1234 is not a pointer of this cache"), "{}", message(c));
        // SAFETY: live, freed once.
        assert_eq!(unsafe { pymem_cuda_cache_free(c) }, Status::PYMEM_OK);
    }
}
