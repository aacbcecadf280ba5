//! What the cache needs from a device, as one trait: device memory, memory
//! information, streams and events. Two implementations: [`crate::Simulated`]
//! (host-side fake devices, for tests, demos and benches) and
//! [`crate::Driver`] (a real GPU through the CUDA driver API, loaded at run
//! time).
//!
//! The cache calls a backend with the device's lock held, so calls for one
//! device never overlap; calls for different devices may.

/// A stream handle as C sees it (`CUstream` as an integer); 0 = the default
/// stream.
pub type Stream = u64;

/// An event recorded on a stream (a `CUevent` for the driver, a counter for
/// the simulated device).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct EventId(pub u64);

/// A backend's failure.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BackendError {
    /// No driver, no GPU, or no such device.
    NoDevice(String),
    /// The device has no room for the request (cudaErrorMemoryAllocation).
    OutOfMemory,
    /// Any other driver error.
    Device(String),
}

impl std::fmt::Display for BackendError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BackendError::NoDevice(m) | BackendError::Device(m) => f.write_str(m),
            BackendError::OutOfMemory => f.write_str("out of device memory"),
        }
    }
}

/// A device (or several) that the cache allocates from.
pub trait Backend: Send + Sync {
    /// "simulated" or "driver".
    fn name(&self) -> &'static str;
    /// Number of devices; indices run 0..count.
    fn device_count(&self) -> usize;
    /// cudaMalloc: `size` bytes of device memory (a whole segment).
    fn malloc(&self, device: usize, size: u64) -> Result<u64, BackendError>;
    /// cudaFree of an address `malloc` returned.
    fn free(&self, device: usize, ptr: u64) -> Result<(), BackendError>;
    /// cudaMemGetInfo: (free, total) bytes of the device, as nvidia-smi sees it.
    fn mem_info(&self, device: usize) -> Result<(u64, u64), BackendError>;
    /// cudaStreamCreate.
    fn create_stream(&self, device: usize) -> Result<Stream, BackendError>;
    /// cudaStreamDestroy.
    fn destroy_stream(&self, device: usize, stream: Stream) -> Result<(), BackendError>;
    /// cudaEventCreate + cudaEventRecord on `stream`.
    fn record_event(&self, device: usize, stream: Stream) -> Result<EventId, BackendError>;
    /// cudaEventQuery: has the stream passed the event?
    fn event_completed(&self, device: usize, event: EventId) -> Result<bool, BackendError>;
    /// cudaEventSynchronize: wait until it has.
    fn wait_event(&self, device: usize, event: EventId) -> Result<(), BackendError>;
    /// cudaEventDestroy (after the event completed).
    fn destroy_event(&self, device: usize, event: EventId);
    /// cudaDeviceSynchronize: every stream of the device done.
    fn synchronize(&self, device: usize) -> Result<(), BackendError>;
}
