//! `cargo xtask bench cuda [--runs N] [--n N]`: the GPU caching allocator
//! on the simulated device, through the C ABI (xtask/c/bench_cuda.c).
//!
//! 1. Cache-hit latency: malloc+free pairs of one size on a warm cache,
//!    against the pass-through policy (caching = 0, PyTorch's
//!    PYTORCH_NO_CUDA_MEMORY_CACHING=1) that calls the backend for every
//!    malloc and free. Medians of `runs` interleaved samples. The issue's
//!    target: <= 100 ns per cached pair. On the simulated device the
//!    backend is a host-side address map, so pass-through is cheap here;
//!    on a GPU each cudaMalloc/cudaFree costs microseconds and cudaFree
//!    synchronizes the device.
//! 2. A synthetic training loop (deterministic, one run each): peak
//!    allocated vs peak reserved under PyTorch's policy with a few
//!    PYTORCH_CUDA_ALLOC_CONF settings, and the device calls each needs.
//!
//! No assertion on speed: a failure is a crash or an error from the cache.

use crate::util::{build_release, c_program, gcc_program, link_pymem, mkdir, output_checked, target_dir, thousands};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Default `--n`: pairs per cached sample (pass-through runs a tenth).
const N: u64 = 1_000_000;
/// Training steps of the trace.
const STEPS: u32 = 50;
/// The target for a cached alloc+free pair on the simulated device.
const TARGET_NS: f64 = 100.0;
/// The trace's settings: PYTORCH_CUDA_ALLOC_CONF ("-" = defaults) and a label.
const CONFS: [(&str, &str); 4] = [
    ("-", "PyTorch defaults"),
    ("roundup_power2_divisions:4", "roundup_power2_divisions:4"),
    ("max_split_size_mb:128", "max_split_size_mb:128"),
    ("passthrough", "pass-through (no caching)"),
];

fn build(root: &Path) -> Result<PathBuf, String> {
    let out = target_dir(root).join("bench");
    mkdir(&out)?;
    let exe = out.join("bench_cuda");
    let mut cc = gcc_program(root, &root.join("xtask/c/bench_cuda.c"), &exe);
    link_pymem(&mut cc, root);
    output_checked(&mut cc)?;
    Ok(exe)
}

/// `RESULT <tag> k=v ...` lines: (tag, key → value text).
fn results(text: &str) -> Vec<(String, BTreeMap<String, String>)> {
    text.lines()
        .filter_map(|l| l.strip_prefix("RESULT "))
        .map(|rest| {
            let mut words = rest.split_whitespace();
            let tag = words.next().unwrap_or_default().to_string();
            let fields = words.filter_map(|w| w.split_once('=')).map(|(k, v)| (k.to_string(), v.to_string())).collect();
            (tag, fields)
        })
        .collect()
}

fn size_label(bytes: u64) -> String {
    match bytes {
        b if b >= 1 << 20 => format!("{} MiB", b >> 20),
        b if b >= 1 << 10 => format!("{} KiB", b >> 10),
        b => format!("{b} B"),
    }
}

pub fn run(root: &Path, runs: usize, n: Option<u64>) -> Result<(), String> {
    build_release(root, None)?;
    let exe = build(root)?;
    let n = n.unwrap_or(N);

    let text = output_checked(c_program(&exe, root).args(["hit", &runs.to_string(), &n.to_string()]))?;
    // (size, policy) → samples.
    let mut samples: BTreeMap<(u64, String), Vec<f64>> = BTreeMap::new();
    for (tag, f) in results(&text) {
        if tag != "hit" {
            continue;
        }
        let size: u64 = f.get("size").and_then(|v| v.parse().ok()).ok_or("bench_cuda: a hit line without size")?;
        let ns: f64 = f.get("ns").and_then(|v| v.parse().ok()).ok_or("bench_cuda: a hit line without ns")?;
        samples.entry((size, f.get("policy").cloned().unwrap_or_default())).or_default().push(ns);
    }
    println!("cuda: alloc+free pairs of one size on a warm cache, simulated device, through the C ABI");
    println!(
        "median of {runs} runs ({} pairs cached, {} pass-through per run), ns per pair",
        thousands(n),
        thousands(n / 10)
    );
    println!(
        "\n{:<10} {:>12} {:>14} {:>22} {:>18}",
        "size", "cached", "pass-through", "pass-through / cached", "target <= 100 ns"
    );
    let sizes: Vec<u64> =
        samples.keys().map(|(s, _)| *s).collect::<std::collections::BTreeSet<_>>().into_iter().collect();
    for size in sizes {
        let med =
            |policy: &str| samples.get(&(size, policy.to_string())).map(|v| crate::bench::median(v.iter().copied()));
        let (Some(cached), Some(pass)) = (med("cached"), med("passthrough")) else {
            return Err(format!("bench_cuda: missing samples for {size} bytes"));
        };
        println!(
            "{:<10} {:>12.1} {:>14.1} {:>21.2}x {:>18}",
            size_label(size),
            cached,
            pass,
            pass / cached,
            if cached <= TARGET_NS { "met" } else { "MISSED" }
        );
    }
    println!("(the simulated backend is a host-side address map: on a GPU, pass-through pays cudaMalloc/cudaFree,");
    println!(" microseconds each, and cudaFree synchronizes the device)");

    println!(
        "\ntraining-step trace: 24 layers, hidden 1024, sequence 128, batch 8..64 drawn per step, {STEPS} steps, fp32;"
    );
    println!("weights, gradients and two Adam states persist; activations live until their backward step");
    println!(
        "\n{:<28} {:>15} {:>15} {:>20} {:>15} {:>13}",
        "policy", "peak allocated", "peak reserved", "reserved/allocated", "device mallocs", "device frees"
    );
    let gib = |v: f64| v / (1u64 << 30) as f64;
    for (conf, label) in CONFS {
        let text = output_checked(c_program(&exe, root).args(["trace", &STEPS.to_string(), conf]))?;
        let (_, f) = results(&text).into_iter().find(|(t, _)| t == "trace").ok_or("bench_cuda: no trace line")?;
        let get = |k: &str| f.get(k).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
        let (allocated, reserved) = (get("peak_allocated"), get("peak_reserved"));
        println!(
            "{:<28} {:>11.2} GiB {:>11.2} GiB {:>20.2} {:>15} {:>13}",
            label,
            gib(allocated),
            gib(reserved),
            if allocated > 0.0 { reserved / allocated } else { 0.0 },
            thousands(get("device_allocs") as u64),
            thousands(get("device_frees") as u64)
        );
    }
    Ok(())
}
