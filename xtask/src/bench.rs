//! `cargo xtask bench alloc [--runs N] [--n N] [--no-ir]`: pymem's allocator
//! through its C ABI against glibc, CPython's pymalloc and mimalloc, on the
//! workload of the peer baseline (shared/peers/alloc_bench.c; our own source
//! is xtask/c/bench_alloc.c).
//!
//! Three binaries go to target/bench/, because Debian's libmimalloc replaces
//! malloc process-wide and libpython is optional:
//! - `bench_alloc`     null, glibc, pymem, pymem_38 (linked to target/release/libpymem.so)
//! - `bench_alloc_py`  pymalloc (PyObject_Malloc/Free from libpython, no Py_Initialize)
//! - `bench_alloc_mi`  mimalloc (mi_malloc/mi_free)
//!
//! Every (allocator, workload) pair runs as a fresh process, `runs` times,
//! interleaved across allocators so that drift of this shared VM spreads over
//! all of them. Then, with valgrind present and without `--no-ir`, callgrind
//! counts instructions per op: (Ir(N) - Ir(0)) / N with N = 1,000,000, which
//! cancels start-up and is deterministic. No assertions on speed: the only
//! failures are a crash, blocks left in use, or checksums that differ.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::util::{
    build_release, c_program, cpus, have, mkdir, output_checked, release_dir, run_many, target_dir, thousands, Job,
};

const WORKLOADS: [&str; 2] = ["window", "lifo"];
const IR_N: u64 = 1_000_000;

struct Options {
    runs: usize,
    n: u64,
    ir: bool,
}

fn usage() -> String {
    "usage: cargo xtask bench alloc [--runs N (5)] [--n N (10000000)] [--no-ir]".to_string()
}

fn parse(args: &[String]) -> Result<Options, String> {
    let mut it = args.iter();
    if it.next().map(String::as_str) != Some("alloc") {
        return Err(usage());
    }
    let mut opts = Options { runs: 5, n: 10_000_000, ir: true };
    while let Some(arg) = it.next() {
        let mut number = |name: &str| -> Result<u64, String> {
            let value = it.next().ok_or_else(|| format!("{name} needs a value\n{}", usage()))?;
            value.replace('_', "").parse().map_err(|_| format!("{name}: not a number: {value}"))
        };
        match arg.as_str() {
            "--runs" => opts.runs = number("--runs")?.max(1) as usize,
            "--n" => opts.n = number("--n")?,
            "--no-ir" => opts.ir = false,
            _ => return Err(format!("unknown argument {arg:?}\n{}", usage())),
        }
    }
    Ok(opts)
}

/// One allocator and the binary that has it.
struct Allocator {
    name: &'static str,
    exe: PathBuf,
}

pub fn cmd(root: &Path, args: &[String]) -> Result<(), String> {
    let opts = parse(args)?;
    build_release(root, None)?;
    let allocators = build(root)?;

    let results = time_all(root, &allocators, &opts)?;
    print_table(&allocators, &results, &opts);

    if !opts.ir {
        println!("\n(callgrind instructions per op skipped: --no-ir)");
    } else if !have("valgrind") {
        println!("\nNOTE: valgrind is not installed: callgrind instructions per op skipped");
    } else {
        instructions(root, &allocators)?;
    }
    Ok(())
}

/// Compiles the bench binaries; returns the allocators in table order.
fn build(root: &Path) -> Result<Vec<Allocator>, String> {
    let out = target_dir(root).join("bench");
    mkdir(&out)?;
    let source = root.join("xtask/c/bench_alloc.c");
    let lib = release_dir(root);
    let gcc = |exe: &Path| {
        let mut cmd = Command::new("gcc");
        cmd.current_dir(root)
            .args(["-std=gnu11", "-O2", "-Wall", "-Wextra", "-Werror"])
            .arg(&source)
            .arg("-o")
            .arg(exe);
        cmd
    };

    let main_exe = out.join("bench_alloc");
    let mut cmd = gcc(&main_exe);
    cmd.arg("-DWITH_PYMEM").arg(format!("-I{}", root.join("include").display()));
    cmd.arg(format!("-L{}", lib.display())).arg("-lpymem").arg(format!("-Wl,-rpath,{}", lib.display()));
    output_checked(&mut cmd)?;
    let mut allocators = vec![
        Allocator { name: "null", exe: main_exe.clone() },
        Allocator { name: "glibc", exe: main_exe.clone() },
        Allocator { name: "pymem", exe: main_exe.clone() },
        Allocator { name: "pymem_38", exe: main_exe },
    ];

    match python() {
        Ok(py) => {
            let exe = out.join("bench_alloc_py");
            let mut cmd = gcc(&exe);
            cmd.arg("-DWITH_PY").arg(format!("-I{}", py.include));
            cmd.arg(format!("-L{}", py.libdir)).arg(format!("-lpython{}", py.ldversion));
            cmd.arg(format!("-Wl,-rpath,{}", py.libdir));
            match output_checked(&mut cmd) {
                Ok(_) => allocators.push(Allocator { name: "pymalloc", exe }),
                Err(e) => {
                    println!("NOTE: pymalloc skipped: building against libpython failed:\n{e}")
                }
            }
        }
        Err(why) => println!("NOTE: pymalloc skipped: {why}"),
    }

    let exe = out.join("bench_alloc_mi");
    let mut cmd = gcc(&exe);
    cmd.arg("-DWITH_MI").arg("-lmimalloc");
    match cmd.output() {
        Ok(o) if o.status.success() => allocators.push(Allocator { name: "mimalloc", exe }),
        _ => println!("NOTE: mimalloc skipped: not installed (apt-get install libmimalloc-dev)"),
    }
    Ok(allocators)
}

/// Where libpython and Python.h are, from `python3`'s sysconfig.
struct Python {
    libdir: String,
    include: String,
    ldversion: String,
}

fn python() -> Result<Python, String> {
    if !have("python3") {
        return Err("python3 not found".into());
    }
    let script = "import sysconfig as s\n\
                  for k in ('LIBDIR', 'INCLUDEPY', 'LDVERSION'): print(s.get_config_var(k) or '')";
    let out = output_checked(Command::new("python3").args(["-c", script]))?;
    let v: Vec<&str> = out.lines().map(str::trim).collect();
    let [libdir, include, ldversion] = v[..] else {
        return Err(format!("unexpected sysconfig output: {out:?}"));
    };
    let so = Path::new(libdir).join(format!("libpython{ldversion}.so"));
    if !so.exists() {
        return Err(format!("{} not found (python3 built without --enable-shared?)", so.display()));
    }
    if !Path::new(include).join("Python.h").exists() {
        return Err(format!("{include}/Python.h not found (install the python3 dev headers)"));
    }
    Ok(Python { libdir: libdir.into(), include: include.into(), ldversion: ldversion.into() })
}

/// One line of bench_alloc's output.
struct Sample {
    ns_per_op: f64,
    checksum: String,
    /// Minor page faults in the timed loop.
    faults: f64,
}

fn run_once(root: &Path, a: &Allocator, workload: &str, n: u64) -> Result<Sample, String> {
    let mut cmd = c_program(&a.exe, root);
    cmd.args([a.name, workload, &n.to_string()]);
    let out = output_checked(&mut cmd)?;
    let fields: Vec<&str> = out.split_whitespace().collect();
    match fields[..] {
        [_, _, _, ns, sum, faults] => Ok(Sample {
            ns_per_op: ns.parse().map_err(|_| format!("bad output: {out}"))?,
            checksum: sum.to_string(),
            faults: faults.parse().map_err(|_| format!("bad output: {out}"))?,
        }),
        _ => Err(format!("bad output from {}: {out:?}", a.exe.display())),
    }
}

/// (allocator, workload) → the samples of its runs.
type Results = BTreeMap<(String, String), Vec<Sample>>;

fn time_all(root: &Path, allocators: &[Allocator], opts: &Options) -> Result<Results, String> {
    let mut results = Results::new();
    let mut checksums: BTreeMap<&str, BTreeMap<String, Vec<&str>>> = BTreeMap::new();
    for run in 1..=opts.runs {
        eprint!("{}{run}/{}", if run == 1 { "timing runs: " } else { " " }, opts.runs);
        for workload in WORKLOADS {
            for a in allocators {
                let s = run_once(root, a, workload, opts.n)?;
                if a.name != "null" {
                    let by_sum = checksums.entry(workload).or_default();
                    let names = by_sum.entry(s.checksum.clone()).or_default();
                    if !names.contains(&a.name) {
                        names.push(a.name);
                    }
                }
                results.entry((a.name.into(), workload.into())).or_default().push(s);
            }
        }
    }
    eprintln!();
    for (workload, by_sum) in &checksums {
        if by_sum.len() != 1 {
            return Err(format!("checksums differ across allocators for {workload}: {by_sum:?}"));
        }
        let (sum, names) = by_sum.iter().next().expect("one checksum");
        println!("checksum {workload}: {sum} (identical for {})", names.join(", "));
    }
    Ok(results)
}

fn median(v: impl Iterator<Item = f64>) -> f64 {
    let mut s: Vec<f64> = v.collect();
    s.sort_by(f64::total_cmp);
    let m = s.len() / 2;
    if s.len() % 2 == 1 {
        s[m]
    } else {
        (s[m - 1] + s[m]) / 2.0
    }
}

fn print_table(allocators: &[Allocator], results: &Results, opts: &Options) {
    println!(
        "\nN = {} allocations (sizes 8..512) per run, median of {} fresh-process runs, ns per alloc+free pair",
        thousands(opts.n),
        opts.runs
    );
    println!("net = median minus the null harness's median; faults = minor page faults per run (median)");
    println!(
        "{:<10} {:<8} {:>8} {:>8} {:>8} {:>8} {:>9} {:>12} {:>10}",
        "allocator", "workload", "median", "min", "max", "net", "vs glibc", "vs pymalloc", "faults"
    );
    for workload in WORKLOADS {
        let samples = |name: &str| results.get(&(name.to_string(), workload.to_string()));
        let med = |name: &str| samples(name).map(|v| median(v.iter().map(|s| s.ns_per_op)));
        let glibc = med("glibc");
        let pymalloc = med("pymalloc");
        let null = med("null");
        for a in allocators {
            let Some(v) = samples(a.name) else { continue };
            let ns = || v.iter().map(|s| s.ns_per_op);
            let m = median(ns());
            let min = ns().fold(f64::INFINITY, f64::min);
            let max = ns().fold(f64::NEG_INFINITY, f64::max);
            let faults = median(v.iter().map(|s| s.faults));
            let ratio = |base: Option<f64>| base.map_or("n/a".to_string(), |b| format!("{:.2}", m / b));
            let net = null.map_or("n/a".to_string(), |z| format!("{:.2}", m - z));
            println!(
                "{:<10} {:<8} {:>8.2} {:>8.2} {:>8.2} {:>8} {:>9} {:>12} {:>10}",
                a.name,
                workload,
                m,
                min,
                max,
                net,
                ratio(glibc),
                ratio(pymalloc),
                thousands(faults as u64)
            );
        }
    }
}

/// Callgrind's instruction count of one run ("Collected : N" on stderr).
fn ir_job(root: &Path, a: &Allocator, workload: &str, n: u64, log: PathBuf) -> Job {
    let mut cmd = c_program("valgrind", root);
    cmd.args(["--tool=callgrind", "--callgrind-out-file=/dev/null"]);
    cmd.arg(&a.exe).args([a.name, workload, &n.to_string()]);
    Job { name: format!("{} {workload} {n}", a.name), cmd, log, timeout: None }
}

fn collected(log: &Path) -> Option<u64> {
    let text = std::fs::read_to_string(log).ok()?;
    let line = text.lines().find(|l| l.contains("Collected :"))?;
    line.rsplit(':').next()?.trim().parse().ok()
}

fn instructions(root: &Path, allocators: &[Allocator]) -> Result<(), String> {
    let dir = target_dir(root).join("bench/callgrind");
    mkdir(&dir)?;
    let mut jobs = Vec::new();
    let mut keys = Vec::new();
    for a in allocators {
        for workload in WORKLOADS {
            for n in [IR_N, 0] {
                let log = dir.join(format!("{}-{workload}-{n}.log", a.name));
                keys.push((a.name, workload, n, log.clone()));
                jobs.push(ir_job(root, a, workload, n, log));
            }
        }
    }
    eprintln!("callgrind: {} runs, {} at a time ...", jobs.len(), cpus());
    let mut failed = Vec::new();
    run_many(jobs, cpus(), |job, outcome| {
        if !outcome.success() {
            failed.push(format!("{} {}", job.name, outcome.describe()));
        }
    });
    if !failed.is_empty() {
        return Err(format!("callgrind runs failed (logs in {}): {}", dir.display(), failed.join("; ")));
    }
    let mut ir: BTreeMap<(&str, &str, u64), u64> = BTreeMap::new();
    for (name, workload, n, log) in keys {
        let count = collected(&log).ok_or_else(|| format!("no 'Collected :' line in {}", log.display()))?;
        ir.insert((name, workload, n), count);
    }
    println!("\ncallgrind instructions per alloc+free pair: (Ir(N) - Ir(0)) / N, N = {}", thousands(IR_N));
    println!("{:<10} {:>10} {:>10}", "allocator", "window", "lifo");
    for a in allocators {
        let per_op = |w: &str| (ir[&(a.name, w, IR_N)] as f64 - ir[&(a.name, w, 0)] as f64) / IR_N as f64;
        println!("{:<10} {:>10.1} {:>10.1}", a.name, per_op("window"), per_op("lifo"));
    }
    Ok(())
}
