//! The HTML memory report: `pymem_report_mark` and `pymem_report_html`.
//!
//! A runtime keeps, in [`ReportState`], what a report needs from the past:
//! a bounded timeline of samples (RSS, bytes in use, bytes reserved) taken
//! at every mark and — from the first mark on — at the end of every
//! collection, the last collections with their pauses, and the answers of
//! the last `pymem_ns_whos` and `pymem_ns_why_alive` calls. Sampling at
//! collections starts with the first mark so that a host that never asks
//! for a report pays nothing but a ring-buffer push per collection (a
//! sample reads /proc and walks the pools).
//!
//! `pymem_report_html` gathers the present (arena map, size classes,
//! collector, GPU cache) through the lower crates' safe APIs and hands
//! everything to [`html::render`], which knows nothing of runtimes.

pub mod html;

use std::collections::VecDeque;
use std::ffi::c_char;
use std::time::Instant;

use namespace_cleaner::{Whos, WhyAlive};
use refcount_object::Heap;

use crate::boundary::{c_message, ffi_boundary, require, write_out, Failure};
use crate::cuda::CudaCache;
use crate::object::name_arg;
use crate::runtime::{Runtime, RuntimeState};
use crate::status::Status;
use html::{CollectionRecord, GcData, GpuData, GpuDevice, Recorded, ReportData, Sample, SampleKind};

/// Samples kept at most; past it, every other collection sample is dropped
/// (marks are always kept).
const MAX_SAMPLES: usize = 4096;
/// Marks a runtime accepts (`pymem_report_mark` refuses more).
pub const PYMEM_REPORT_MAX_MARKS: usize = 1024;
/// Longest mark label, in bytes.
pub const PYMEM_REPORT_MAX_LABEL: usize = 200;
/// Collections kept for the pause chart (the last ones).
const MAX_COLLECTIONS: usize = 1024;

/// What a runtime remembers for its report. Owner thread only, like the
/// rest of [`RuntimeState`].
pub(crate) struct ReportState {
    start: Instant,
    /// Set by the first mark: collections add samples from then on.
    sampling: bool,
    samples: Vec<Sample>,
    marks: usize,
    samples_dropped: u64,
    collections: VecDeque<CollectionRecord>,
    collections_total: u64,
    whos: Option<Recorded<Whos>>,
    why: Option<Recorded<WhyAlive>>,
}

impl ReportState {
    pub(crate) fn new() -> ReportState {
        ReportState {
            start: Instant::now(),
            sampling: false,
            samples: Vec::new(),
            marks: 0,
            samples_dropped: 0,
            collections: VecDeque::new(),
            collections_total: 0,
            whos: None,
            why: None,
        }
    }

    fn last_mark(&self) -> Option<String> {
        self.samples.iter().rev().find_map(|s| match &s.kind {
            SampleKind::Mark(label) => Some(label.clone()),
            _ => None,
        })
    }

    /// Keeps the answer of a `pymem_ns_whos` call for the report.
    pub(crate) fn record_whos(&mut self, namespace: String, value: Whos) {
        self.whos = Some(Recorded { namespace, after_mark: self.last_mark(), value });
    }

    /// Keeps the answer of a `pymem_ns_why_alive` call for the report.
    pub(crate) fn record_why(&mut self, namespace: String, value: WhyAlive) {
        self.why = Some(Recorded { namespace, after_mark: self.last_mark(), value });
    }

    fn push_sample(&mut self, sample: Sample) {
        if self.samples.len() >= MAX_SAMPLES {
            // Thin the collection samples: every other one goes. Marks stay
            // (there are at most PYMEM_REPORT_MAX_MARKS < MAX_SAMPLES).
            let mut keep = false;
            let before = self.samples.len();
            self.samples.retain(|s| {
                if matches!(s.kind, SampleKind::Collection(_)) {
                    keep = !keep;
                    keep
                } else {
                    true
                }
            });
            self.samples_dropped += (before - self.samples.len()) as u64;
        }
        self.samples.push(sample);
    }
}

/// The resident set size of this process: /proc/self/statm's second field
/// times the page size (0 where there is no /proc).
fn rss_bytes() -> u64 {
    let Ok(statm) = std::fs::read_to_string("/proc/self/statm") else { return 0 };
    let pages: u64 = statm.split_whitespace().nth(1).and_then(|v| v.parse().ok()).unwrap_or(0);
    // SAFETY: sysconf reads a system constant; it has no preconditions.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    pages * u64::try_from(page).unwrap_or(4096)
}

fn sample(heap: &Heap, start: Instant, kind: SampleKind) -> Sample {
    let stats = heap.alloc.stats();
    Sample {
        t_us: u64::try_from(start.elapsed().as_micros()).unwrap_or(u64::MAX),
        kind,
        rss: rss_bytes(),
        bytes_in_use: stats.bytes_in_use,
        bytes_reserved: stats.bytes_reserved,
    }
}

/// Called by the collection driver at the end of every collection.
pub(crate) fn on_collection(st: &mut RuntimeState, generation: usize, found: u64, duration_ns: u64) {
    let r = &mut st.report;
    r.collections_total += 1;
    if r.collections.len() == MAX_COLLECTIONS {
        r.collections.pop_front();
    }
    let generation = generation.min(2) as u8;
    r.collections.push_back(CollectionRecord { number: r.collections_total, generation, found, duration_ns });
    if r.sampling {
        let s = sample(&st.heap, r.start, SampleKind::Collection(generation));
        r.push_sample(s);
    }
}

/// Adds a labelled point to the report's timeline: the process's RSS and
/// the allocator's bytes in use and reserved, now. From the first mark on,
/// every collection adds a point too (before it, collections only record
/// their pauses), so a host marks the steps of its story ("built", "after
/// del", "after gc.collect()") and the report draws them. `label` is
/// copied; it must be valid UTF-8 of 1 to `PYMEM_REPORT_MAX_LABEL` bytes
/// (else `PYMEM_ERR_INVALID_ARGUMENT`; NULL: `PYMEM_ERR_NULL_ARGUMENT`).
/// A runtime takes at most `PYMEM_REPORT_MAX_MARKS` marks
/// (`PYMEM_ERR_INVALID_ARGUMENT` after); a failed call adds none. Thread
/// rule: the runtime's owner thread only (`PYMEM_ERR_BUSY`); inside host
/// callbacks as their rule allows (finalizers and gc callbacks may mark;
/// traverse, clear and dealloc may not).
///
/// # Safety
/// `rt` is NULL or a live runtime; `label` is NULL or a C string.
#[no_mangle]
pub unsafe extern "C" fn pymem_report_mark(rt: *mut Runtime, label: *const c_char) -> Status {
    ffi_boundary!(status rt, "pymem_report_mark", |state| {
        let bytes = name_arg(label, "label")?;
        // `name_arg` checked the bytes are UTF-8.
        let label = String::from_utf8_lossy(bytes).into_owned();
        if label.is_empty() || label.len() > PYMEM_REPORT_MAX_LABEL {
            return Err(Failure::new(
                Status::PYMEM_ERR_INVALID_ARGUMENT,
                format!("label must be 1 to {PYMEM_REPORT_MAX_LABEL} bytes long (got {})", label.len()),
            ));
        }
        if state.report.marks >= PYMEM_REPORT_MAX_MARKS {
            return Err(Failure::new(
                Status::PYMEM_ERR_INVALID_ARGUMENT,
                format!("a runtime takes at most {PYMEM_REPORT_MAX_MARKS} marks"),
            ));
        }
        let s = sample(&state.heap, state.report.start, SampleKind::Mark(label));
        let r = &mut state.report;
        r.marks += 1;
        r.sampling = true;
        r.push_sample(s);
        Ok::<(), Failure>(())
    })
}

/// Writes the memory report of the runtime as one self-contained HTML page
/// (inline CSS and SVG, no script, nothing fetched: it opens from disk):
/// the timeline of RSS and bytes in use over the marks and collections
/// (`pymem_report_mark`), the arena map (each arena a row, each pool a cell
/// coloured by fill; empty, released and untouched pools distinct), the
/// size classes of `pymem_debug_malloc_stats` as bars, the collector's
/// generations and the pause of each of the last collections, the `%whos`
/// table of the last `pymem_ns_whos` call with sizes as bars, the chains
/// of the last `pymem_ns_why_alive` call drawn as a graph, and, when
/// `cuda` is not NULL, the GPU cache's segments and blocks and its
/// allocated/reserved timeline replayed from the allocation history
/// (`pymem_cuda_record_history`). `*out` receives the page (UTF-8,
/// NUL-terminated), freed with `pymem_string_free`; it is written only on
/// success. A poisoned `cuda` cache gives `PYMEM_ERR_PANIC`. Thread rule:
/// the runtime's owner thread only (`PYMEM_ERR_BUSY`); `cuda` may be used
/// by other threads meanwhile (it is thread-safe).
///
/// # Safety
/// `rt` is NULL or a live runtime; `cuda` is NULL or a live cache; `out` is
/// NULL (an error) or writable.
#[no_mangle]
pub unsafe extern "C" fn pymem_report_html(rt: *mut Runtime, cuda: *const CudaCache, out: *mut *mut c_char) -> Status {
    ffi_boundary!(status rt, "pymem_report_html", |state| {
        require(out, "out")?;
        // SAFETY: NULL or a live cache per the contract.
        let gpu = match unsafe { cuda.as_ref() } {
            None => None,
            Some(cache) => Some(gpu_data(cache)?),
        };
        let page = html::render(&report_data(state, gpu));
        // SAFETY: checked non-null; writable per the contract.
        unsafe { write_out(out, c_message(&page).into_raw()) };
        Ok::<(), Failure>(())
    })
}

/// Everything the page shows, read now.
fn report_data(state: &mut RuntimeState, gpu: Option<GpuData>) -> ReportData {
    let heap = &state.heap;
    let collector = &state.gc.collector;
    let r = &state.report;
    let mut samples = r.samples.clone();
    samples.push(sample(heap, r.start, SampleKind::Now));
    let s = collector.stats;
    ReportData {
        version: env!("CARGO_PKG_VERSION").to_string(),
        pool_bytes: heap.alloc.pool_bytes(),
        stats: heap.alloc.stats(),
        samples,
        samples_dropped: r.samples_dropped,
        arenas: heap.alloc.arena_views(),
        classes: heap.alloc.class_stats(),
        gc: GcData {
            enabled: heap.gc.enabled,
            counts: collector.counts(heap),
            thresholds: collector.thresholds,
            stats: [0, 1, 2].map(|i| (s[i].collections, s[i].collected, s[i].uncollectable)),
            permanent: heap.gc.permanent.len(),
            collections: r.collections.iter().copied().collect(),
            collections_total: r.collections_total,
        },
        whos: r.whos.clone(),
        why: r.why.clone(),
        gpu,
    }
}

/// The GPU cache's devices: figures, segments and history.
fn gpu_data(cache: &CudaCache) -> Result<GpuData, Failure> {
    let Some(a) = cache.allocator() else {
        return Err(Failure::new(Status::PYMEM_ERR_PANIC, "the GPU cache is poisoned by an earlier panic"));
    };
    let mut devices = Vec::new();
    for d in 0..a.device_count() {
        devices.push(GpuDevice {
            index: d,
            allocated: a.memory_allocated(d)?,
            reserved: a.memory_reserved(d)?,
            peak_allocated: a.max_memory_allocated(d)?,
            peak_reserved: a.max_memory_reserved(d)?,
            segments: a.segments(d)?,
            history: a.history(d)?,
        });
    }
    Ok(GpuData { backend: cache.backend_label().to_string(), devices })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mark(n: u64) -> Sample {
        Sample { t_us: n, kind: SampleKind::Mark(n.to_string()), rss: 0, bytes_in_use: 0, bytes_reserved: 0 }
    }

    fn collection(n: u64) -> Sample {
        Sample { t_us: n, kind: SampleKind::Collection(0), rss: 0, bytes_in_use: 0, bytes_reserved: 0 }
    }

    #[test]
    fn the_timeline_stays_bounded_and_keeps_every_mark() {
        let mut r = ReportState::new();
        for i in 0..(3 * MAX_SAMPLES as u64) {
            r.push_sample(if i % 100 == 0 { mark(i) } else { collection(i) });
            assert!(r.samples.len() <= MAX_SAMPLES);
        }
        let marks = r.samples.iter().filter(|s| matches!(s.kind, SampleKind::Mark(_))).count();
        assert_eq!(marks, (3 * MAX_SAMPLES).div_ceil(100));
        assert!(r.samples_dropped > 0);
        assert!(r.samples.windows(2).all(|w| w[0].t_us < w[1].t_us), "order kept");
    }

    #[test]
    fn rss_is_read() {
        assert!(rss_bytes() > 0);
    }
}
