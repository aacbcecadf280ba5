//! The real GPU: the CUDA driver API through cudarc, loaded at run time.
//!
//! Nothing CUDA is needed to build. [`Driver::open`] first asks whether
//! libcuda can be loaded at all (`is_culib_present`: cudarc panics on a
//! call into a library it cannot load), then initializes the driver and
//! retains each device's primary context. A machine without a driver or a
//! GPU gets `BackendError::NoDevice` with a message, never a panic.
//!
//! Every call makes the device's primary context current on the calling
//! thread first (cheap, and any thread may call the cache).

use cudarc::driver::{result, sys, DriverError};

use crate::backend::{Backend, BackendError, EventId, Stream};

/// One GPU: its handle and retained primary context.
struct Gpu {
    device: sys::CUdevice,
    context: sys::CUcontext,
}

/// The CUDA driver backend.
pub struct Driver {
    gpus: Vec<Gpu>,
}

// SAFETY: a CUcontext is a handle the driver lets any thread make current
// (cuCtxSetCurrent), and every call here makes it current before use; the
// handles are never freed while the Driver lives (released in Drop).
unsafe impl Send for Driver {}
// SAFETY: as above; the driver API is thread-safe, and the cache serializes
// the calls for one device under that device's lock.
unsafe impl Sync for Driver {}

fn driver_error(what: &str, e: DriverError) -> BackendError {
    match e.0 {
        sys::CUresult::CUDA_ERROR_OUT_OF_MEMORY => BackendError::OutOfMemory,
        sys::CUresult::CUDA_ERROR_NO_DEVICE
        | sys::CUresult::CUDA_ERROR_INVALID_DEVICE
        | sys::CUresult::CUDA_ERROR_NOT_INITIALIZED
        | sys::CUresult::CUDA_ERROR_DEINITIALIZED => BackendError::NoDevice(format!("{what}: {e}")),
        _ => BackendError::Device(format!("{what}: {e}")),
    }
}

impl Driver {
    /// Loads the driver and opens every GPU. Without libcuda, without a
    /// GPU, or with a driver that fails to start: `NoDevice`.
    pub fn open() -> Result<Driver, BackendError> {
        // SAFETY: only tries to dlopen libcuda by its usual names; it calls
        // nothing in it.
        if !unsafe { sys::is_culib_present() } {
            return Err(BackendError::NoDevice(
                "no CUDA driver: libcuda.so could not be loaded (no NVIDIA driver installed on this machine)".into(),
            ));
        }
        result::init().map_err(|e| BackendError::NoDevice(format!("the CUDA driver did not start (cuInit): {e}")))?;
        let count = result::device::get_count().map_err(|e| driver_error("cuDeviceGetCount", e))?;
        if count <= 0 {
            return Err(BackendError::NoDevice("the CUDA driver reports no GPU on this machine".into()));
        }
        let mut gpus = Vec::with_capacity(count as usize);
        for ordinal in 0..count {
            let device = result::device::get(ordinal).map_err(|e| driver_error("cuDeviceGet", e))?;
            // SAFETY: `device` is a valid device handle from cuDeviceGet;
            // the retained context is released in Drop.
            let context = unsafe { result::primary_ctx::retain(device) }
                .map_err(|e| driver_error("cuDevicePrimaryCtxRetain", e))?;
            gpus.push(Gpu { device, context });
        }
        Ok(Driver { gpus })
    }

    /// Makes `device`'s primary context current on this thread.
    fn enter(&self, device: usize) -> Result<(), BackendError> {
        let gpu = self.gpus.get(device).ok_or_else(|| BackendError::NoDevice(format!("no CUDA device {device}")))?;
        // SAFETY: the context was retained in `open` and is released only in Drop.
        unsafe { result::ctx::set_current(gpu.context) }.map_err(|e| driver_error("cuCtxSetCurrent", e))
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        for gpu in &self.gpus {
            // SAFETY: retained once in `open`, released once here.
            let _ = unsafe { result::primary_ctx::release(gpu.device) };
        }
    }
}

fn stream_handle(stream: Stream) -> sys::CUstream {
    stream as usize as sys::CUstream
}

fn event_handle(event: EventId) -> sys::CUevent {
    event.0 as usize as sys::CUevent
}

impl Backend for Driver {
    fn name(&self) -> &'static str {
        "driver"
    }

    fn device_count(&self) -> usize {
        self.gpus.len()
    }

    fn malloc(&self, device: usize, size: u64) -> Result<u64, BackendError> {
        self.enter(device)?;
        let size = usize::try_from(size).map_err(|_| BackendError::OutOfMemory)?;
        // SAFETY: the device's context is current; the memory is freed with cuMemFree.
        unsafe { result::malloc_sync(size) }.map_err(|e| driver_error("cuMemAlloc", e))
    }

    fn free(&self, device: usize, ptr: u64) -> Result<(), BackendError> {
        self.enter(device)?;
        // SAFETY: `ptr` came from `malloc` on this device and is freed once
        // (the cache gives a segment back exactly once).
        unsafe { result::free_sync(ptr) }.map_err(|e| driver_error("cuMemFree", e))
    }

    fn mem_info(&self, device: usize) -> Result<(u64, u64), BackendError> {
        self.enter(device)?;
        let (free, total) = result::mem_get_info().map_err(|e| driver_error("cuMemGetInfo", e))?;
        Ok((free as u64, total as u64))
    }

    fn create_stream(&self, device: usize) -> Result<Stream, BackendError> {
        self.enter(device)?;
        let s = result::stream::create(result::stream::StreamKind::NonBlocking)
            .map_err(|e| driver_error("cuStreamCreate", e))?;
        Ok(s as usize as Stream)
    }

    fn destroy_stream(&self, device: usize, stream: Stream) -> Result<(), BackendError> {
        self.enter(device)?;
        // SAFETY: the caller passes a stream from `create_stream` (contract
        // of the cache's destroy_stream), destroyed once.
        unsafe { result::stream::destroy(stream_handle(stream)) }.map_err(|e| driver_error("cuStreamDestroy", e))
    }

    fn record_event(&self, device: usize, stream: Stream) -> Result<EventId, BackendError> {
        self.enter(device)?;
        let event = result::event::create(sys::CUevent_flags::CU_EVENT_DISABLE_TIMING)
            .map_err(|e| driver_error("cuEventCreate", e))?;
        // SAFETY: a fresh event, and a stream handle the host gave for this device.
        if let Err(e) = unsafe { result::event::record(event, stream_handle(stream)) } {
            // SAFETY: the event was created above and is not used again.
            let _ = unsafe { result::event::destroy(event) };
            return Err(driver_error("cuEventRecord", e));
        }
        Ok(EventId(event as usize as u64))
    }

    fn event_completed(&self, device: usize, event: EventId) -> Result<bool, BackendError> {
        self.enter(device)?;
        // SAFETY: a live event from `record_event`.
        match unsafe { result::event::query(event_handle(event)) } {
            Ok(()) => Ok(true),
            Err(DriverError(sys::CUresult::CUDA_ERROR_NOT_READY)) => Ok(false),
            Err(e) => Err(driver_error("cuEventQuery", e)),
        }
    }

    fn wait_event(&self, device: usize, event: EventId) -> Result<(), BackendError> {
        self.enter(device)?;
        // SAFETY: a live event from `record_event`.
        unsafe { result::event::synchronize(event_handle(event)) }.map_err(|e| driver_error("cuEventSynchronize", e))
    }

    fn destroy_event(&self, device: usize, event: EventId) {
        if self.enter(device).is_ok() {
            // SAFETY: a live event from `record_event`, destroyed once.
            let _ = unsafe { result::event::destroy(event_handle(event)) };
        }
    }

    fn synchronize(&self, device: usize) -> Result<(), BackendError> {
        self.enter(device)?;
        result::ctx::synchronize().map_err(|e| driver_error("cuCtxSynchronize", e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// On a machine without a driver (this project's CI) opening fails
    /// cleanly with NoDevice; on a GPU machine it opens and allocates.
    #[test]
    fn open_fails_cleanly_without_a_driver_or_works_on_a_gpu() {
        match Driver::open() {
            Err(BackendError::NoDevice(message)) => assert!(!message.is_empty()),
            Err(other) => panic!("expected NoDevice, got {other:?}"),
            Ok(driver) => {
                assert!(driver.device_count() > 0);
                let p = driver.malloc(0, 2 << 20).expect("2 MiB on a GPU");
                driver.free(0, p).unwrap();
                let (free, total) = driver.mem_info(0).unwrap();
                assert!(free <= total && total > 0);
            }
        }
    }
}
