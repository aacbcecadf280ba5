//! `cargo xtask bench [alloc|objects|gc|cuda] [--runs N] [--n N] [--no-ir]`;
//! with no subcommand, all four in turn (`cuda` lives in bench_cuda.rs).
//!
//! `bench alloc`: pymem's allocator through its C ABI against glibc, CPython's
//! pymalloc and mimalloc, on the workload of the peer baseline
//! (shared/peers/alloc_bench.c; our own source is xtask/c/bench_alloc.c).
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
//!
//! `bench objects`: object create/destroy through pymem's C ABI against the
//! same operations through CPython's C API (see [`objects`]).
//!
//! `bench gc`: one full cycle collection through pymem's C ABI against
//! CPython's `gc.collect()` on the same object graphs (see [`gc`]).
//!
//! `bench reset`: `pymem_ns_reset` of the seed's namespace against CPython's
//! delete + `gc.collect()` on the same data (see [`reset`]).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::util::{
    build_release, c_program, cpus, gcc_program, have, link_pymem, mkdir, output_checked, run_many, target_dir,
    thousands, Job,
};

mod reset;

const WORKLOADS: [&str; 2] = ["window", "lifo"];
const IR_N: u64 = 1_000_000;
/// `bench alloc`'s default `--n`.
const ALLOC_N: u64 = 10_000_000;

struct Options {
    runs: usize,
    /// `--n`; each bench has its own default.
    n: Option<u64>,
    ir: bool,
}

fn usage() -> String {
    "usage: cargo xtask bench [alloc|objects|gc|cuda] [--runs N (5)] [--n N] [--no-ir]
  alloc    allocator throughput vs glibc, pymalloc, mimalloc (--n default 10,000,000)
  objects  object create/destroy vs CPython's C API           (--n default 1,000,000)
  gc       full cycle collection vs CPython's gc.collect()    (--n default: 100,000 and 1,000,000)
  reset    pymem_ns_reset of the seed's namespace vs CPython's del + gc.collect() (10^6 and 10^7)
  cuda     GPU cache: cache-hit alloc+free vs pass-through, reserved/allocated on a training trace
                                                              (--n default 1,000,000 pairs)
  (no subcommand: all five, in that order; --n applies to the first three)"
        .to_string()
}

/// The options after the subcommand.
fn parse(args: &[String]) -> Result<Options, String> {
    let mut it = args.iter();
    let mut opts = Options { runs: 5, n: None, ir: true };
    while let Some(arg) = it.next() {
        let mut number = |name: &str| -> Result<u64, String> {
            let value = it.next().ok_or_else(|| format!("{name} needs a value\n{}", usage()))?;
            value.replace('_', "").parse().map_err(|_| format!("{name}: not a number: {value}"))
        };
        match arg.as_str() {
            "--runs" => opts.runs = number("--runs")?.max(1) as usize,
            "--n" => opts.n = Some(number("--n")?),
            "--no-ir" => opts.ir = false,
            _ => return Err(format!("unknown argument {arg:?}\n{}", usage())),
        }
    }
    Ok(opts)
}

pub fn cmd(root: &Path, args: &[String]) -> Result<(), String> {
    match args.first().map(String::as_str) {
        Some("alloc") => alloc(root, &parse(&args[1..])?),
        Some("objects") => objects::run(root, &parse(&args[1..])?),
        Some("gc") => gc::run(root, &parse(&args[1..])?),
        Some("reset") => reset::run(root, &parse(&args[1..])?),
        Some("cuda") => {
            let opts = parse(&args[1..])?;
            crate::bench_cuda::run(root, opts.runs, opts.n)
        }
        Some(other) if !other.starts_with("--") => Err(format!("unknown bench {other:?}\n{}", usage())),
        _ => {
            let opts = parse(args)?;
            alloc(root, &opts)?;
            println!();
            objects::run(root, &opts)?;
            println!();
            gc::run(root, &opts)?;
            println!();
            reset::run(root, &Options { n: None, ..opts })?;
            println!();
            crate::bench_cuda::run(root, opts.runs, None)
        }
    }
}

/// One allocator and the binary that has it.
struct Allocator {
    name: &'static str,
    exe: PathBuf,
}

/// `bench alloc`.
fn alloc(root: &Path, opts: &Options) -> Result<(), String> {
    build_release(root, None)?;
    let allocators = build(root)?;

    let results = time_all(root, &allocators, opts)?;
    print_table(&allocators, &results, opts);
    print_targets(&results);

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
    let gcc = |exe: &Path| gcc_program(root, &source, exe);

    let main_exe = out.join("bench_alloc");
    let mut cmd = gcc(&main_exe);
    cmd.arg("-DWITH_PYMEM");
    link_pymem(&mut cmd, root);
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
            for a in in_run_order(allocators, run) {
                let s = run_once(root, a, workload, opts.n.unwrap_or(ALLOC_N))?;
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

/// The sides of a comparison in the order run `run` (from 1) times them:
/// as given on odd runs, reversed on even ones. A process started right
/// after another that used and freed a lot of memory runs measurably
/// slower on this machine (10-20 % in A/B runs of one binary), so a fixed
/// order would favour whichever side always goes first.
pub(crate) fn in_run_order<T>(sides: &[T], run: usize) -> Vec<&T> {
    let mut order: Vec<&T> = sides.iter().collect();
    if run.is_multiple_of(2) {
        order.reverse();
    }
    order
}

pub(crate) fn median(v: impl Iterator<Item = f64>) -> f64 {
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
        thousands(opts.n.unwrap_or(ALLOC_N)),
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

/// The allocator targets of the issues (2 and 10), each against the peer's
/// median in the same run: pymem's window at or below 0.5x glibc and 0.5x
/// pymalloc, its lifo at or below 0.35x glibc.
const ALLOC_TARGETS: [(&str, &str, f64); 3] =
    [("window", "glibc", 0.5), ("window", "pymalloc", 0.5), ("lifo", "glibc", 0.35)];

fn print_targets(results: &Results) {
    let med = |name: &str, workload: &str| {
        results.get(&(name.to_string(), workload.to_string())).map(|v| median(v.iter().map(|s| s.ns_per_op)))
    };
    println!();
    for (workload, peer, target) in ALLOC_TARGETS {
        match (med("pymem", workload), med(peer, workload)) {
            (Some(ours), Some(theirs)) => {
                let ratio = ours / theirs;
                let verdict = if ratio <= target { "met" } else { "NOT met" };
                println!("target: pymem {workload} <= {target}x {peer}: {ratio:.2}x, {verdict}");
            }
            _ => println!("target: pymem {workload} <= {target}x {peer}: n/a ({peer} not measured)"),
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

/// Runs callgrind jobs (`ir_job`s, their logs in `dir`) a few at a time and
/// returns each job's instruction count under its key.
fn run_callgrind<K: Ord>(dir: &Path, keyed_jobs: Vec<(K, Job)>) -> Result<BTreeMap<K, u64>, String> {
    let (keys, jobs): (Vec<K>, Vec<Job>) = keyed_jobs.into_iter().unzip();
    let logs: Vec<PathBuf> = jobs.iter().map(|job| job.log.clone()).collect();
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
    let mut ir = BTreeMap::new();
    for (key, log) in keys.into_iter().zip(logs) {
        let count = collected(&log).ok_or_else(|| format!("no 'Collected :' line in {}", log.display()))?;
        ir.insert(key, count);
    }
    Ok(ir)
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
    for a in allocators {
        for workload in WORKLOADS {
            for n in [IR_N, 0] {
                let log = dir.join(format!("{}-{workload}-{n}.log", a.name));
                jobs.push(((a.name, workload, n), ir_job(root, a, workload, n, log)));
            }
        }
    }
    let ir = run_callgrind(&dir, jobs)?;
    println!("\ncallgrind instructions per alloc+free pair: (Ir(N) - Ir(0)) / N, N = {}", thousands(IR_N));
    println!("{:<10} {:>10} {:>10}", "allocator", "window", "lifo");
    for a in allocators {
        let per_op = |w: &str| (ir[&(a.name, w, IR_N)] as f64 - ir[&(a.name, w, 0)] as f64) / IR_N as f64;
        println!("{:<10} {:>10.1} {:>10.1}", a.name, per_op("window"), per_op("lifo"));
    }
    Ok(())
}

/// `cargo xtask bench objects [--runs N] [--n N] [--no-ir]`: object create
/// and destroy through pymem's C ABI against the same operations through
/// CPython's C API from libpython (after `Py_Initialize`), in the same run.
///
/// The cases are those of the peer baseline (shared/peers/objects_bench.c,
/// RESULTS.md section 5): `int` (create + decref, outside the small-int
/// cache), `float` (create + decref; both sides reuse their float free list),
/// `list3` (new list, 3 appends of small ints, decref), `dict` (10^6 inserts
/// of fresh str keys into one dict, then its dealloc per entry) and `int_all`
/// (10^6 ints kept alive, then all freed; total per int). Our own source is
/// xtask/c/bench_objects.c, built twice into target/bench/:
/// - `bench_objects`     the pymem side (linked to target/release/libpymem.so)
/// - `bench_objects_py`  the CPython side (Python.h and libpython from
///   `python3`'s sysconfig; skipped with a note when absent)
///
/// Each (side, case) runs as a fresh process, `runs` times, interleaved;
/// the table shows medians and the speedup CPython / pymem against the
/// issue's target (at least 1.5x on each case). The C program checks every
/// result (statuses, sampled values, sizes, refcounts) and, on pymem's side,
/// that the allocator's blocks in use are back to the baseline; a failed
/// check fails the bench. No assertions on speed.
///
/// With valgrind and without `--no-ir`, callgrind counts the instructions of
/// each timed region alone (`--toggle-collect=timed_<metric>`), per op:
/// (Ir(N) - Ir(0)) / N with N = 100,000.
mod objects {
    use std::collections::BTreeMap;
    use std::path::{Path, PathBuf};
    use std::process::Command;

    use super::{median, python, run_callgrind, Options};
    use crate::util::{
        build_release, c_program, gcc_program, have, link_pymem, mkdir, output_checked, target_dir, thousands, Job,
    };

    /// Default `--n`.
    const N: u64 = 1_000_000;
    /// N of the callgrind runs.
    const IR_N: u64 = 100_000;
    /// The issue's target: CPython's time / pymem's time, on each case.
    const TARGET: f64 = 1.5;
    /// The cases bench_objects.c runs, in run order.
    const CASES: [&str; 5] = ["int", "float", "list3", "dict", "int_all"];

    /// One row of the table: a metric bench_objects.c prints, its label,
    /// and whether the target applies (the int_all loops are a breakdown).
    struct Row {
        metric: &'static str,
        case: &'static str,
        label: &'static str,
        target: bool,
    }

    const ROWS: [Row; 8] = [
        Row { metric: "int", case: "int", label: "int: create + decref", target: true },
        Row { metric: "float", case: "float", label: "float: create + decref", target: true },
        Row { metric: "list3", case: "list3", label: "list3: new, 3 appends, decref", target: true },
        Row { metric: "dict_insert", case: "dict", label: "dict insert (fresh str keys)", target: true },
        Row { metric: "dict_dealloc", case: "dict", label: "dict dealloc (per entry)", target: true },
        Row { metric: "int_all", case: "int_all", label: "int alloc-all, free-all", target: true },
        Row { metric: "int_all_alloc", case: "int_all", label: "  - alloc loop", target: false },
        Row { metric: "int_all_free", case: "int_all", label: "  - free loop", target: false },
    ];

    /// One side of the comparison and the binary that runs it.
    struct Side {
        name: &'static str,
        exe: PathBuf,
    }

    pub fn run(root: &Path, opts: &Options) -> Result<(), String> {
        let n = opts.n.unwrap_or(N);
        build_release(root, None)?;
        let sides = build(root)?;
        let results = time_all(root, &sides, n, opts.runs)?;
        print_table(&results, n, opts.runs, sides.len() > 1);
        if !opts.ir {
            println!("\n(callgrind instructions per op skipped: --no-ir)");
        } else if !have("valgrind") {
            println!("\nNOTE: valgrind is not installed: callgrind instructions per op skipped");
        } else {
            instructions(root, &sides)?;
        }
        Ok(())
    }

    /// Compiles both sides; the CPython one only when libpython is found.
    fn build(root: &Path) -> Result<Vec<Side>, String> {
        let out = target_dir(root).join("bench");
        mkdir(&out)?;
        let source = root.join("xtask/c/bench_objects.c");
        let gcc = |exe: &Path| gcc_program(root, &source, exe);

        let exe = out.join("bench_objects");
        let mut cmd = gcc(&exe);
        cmd.arg("-DWITH_PYMEM");
        link_pymem(&mut cmd, root);
        output_checked(&mut cmd)?;
        let mut sides = vec![Side { name: "pymem", exe }];

        match python() {
            Ok(py) => {
                let exe = out.join("bench_objects_py");
                let mut cmd = gcc(&exe);
                cmd.arg("-DWITH_PY").arg(format!("-I{}", py.include));
                cmd.arg(format!("-L{}", py.libdir)).arg(format!("-lpython{}", py.ldversion));
                cmd.arg(format!("-Wl,-rpath,{}", py.libdir));
                match output_checked(&mut cmd) {
                    Ok(_) => sides.push(Side { name: "cpython", exe }),
                    Err(e) => println!("NOTE: the CPython side is skipped: building against libpython failed:\n{e}"),
                }
            }
            Err(why) => println!("NOTE: the CPython side is skipped: {why}"),
        }
        Ok(sides)
    }

    /// One metric of one run.
    struct Sample {
        ns_per_op: f64,
        /// Minor page faults in the timed region.
        faults: f64,
    }

    /// (side, metric) → the samples of its runs.
    type Results = BTreeMap<(String, String), Vec<Sample>>;

    /// Runs one case on one side; its lines are
    /// `<side> <metric> <N> <ns per op> <total ms> <faults>`.
    fn run_once(root: &Path, side: &Side, case: &str, n: u64, results: &mut Results) -> Result<(), String> {
        let mut cmd = c_program(&side.exe, root);
        cmd.args([side.name, case, &n.to_string()]);
        let out = output_checked(&mut cmd)?;
        let bad = || format!("bad output from {} {case}: {out:?}", side.exe.display());
        let mut lines = 0;
        for line in out.lines() {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let [who, metric, _, ns, _, faults] = fields[..] else { return Err(bad()) };
            if who != side.name {
                return Err(bad());
            }
            let sample =
                Sample { ns_per_op: ns.parse().map_err(|_| bad())?, faults: faults.parse().map_err(|_| bad())? };
            results.entry((side.name.to_string(), metric.to_string())).or_default().push(sample);
            lines += 1;
        }
        if lines == 0 {
            return Err(bad());
        }
        Ok(())
    }

    fn time_all(root: &Path, sides: &[Side], n: u64, runs: usize) -> Result<Results, String> {
        let mut results = Results::new();
        for run in 1..=runs {
            eprint!("{}{run}/{runs}", if run == 1 { "timing runs: " } else { " " });
            for case in CASES {
                for side in super::in_run_order(sides, run) {
                    run_once(root, side, case, n, &mut results)?;
                }
            }
        }
        eprintln!();
        Ok(results)
    }

    fn print_table(results: &Results, n: u64, runs: usize, have_cpython: bool) {
        println!(
            "\nobjects: N = {} ops per case and run, median of {runs} fresh-process runs, ns per op",
            thousands(n)
        );
        println!("pymem through its C ABI (libpymem.so); CPython {} through its C API (libpython)", version());
        println!("speedup = CPython ns / pymem ns; target: pymem at least {TARGET}x faster than CPython on each case");
        println!("faults = minor page faults in the timed region (median per run)");
        println!(
            "{:<30} {:>10} {:>12} {:>8} {:>14} {:>12} {:>14}",
            "case", "pymem ns", "CPython ns", "speedup", "target >=1.5x", "pymem faults", "CPython faults"
        );
        let (mut met, mut total) = (0, 0);
        for row in &ROWS {
            let samples = |side: &str| results.get(&(side.to_string(), row.metric.to_string()));
            let med = |side: &str| samples(side).map(|v| median(v.iter().map(|s| s.ns_per_op)));
            let faults = |side: &str| {
                samples(side).map_or("n/a".to_string(), |v| thousands(median(v.iter().map(|s| s.faults)) as u64))
            };
            let (Some(p), c) = (med("pymem"), med("cpython")) else { continue };
            let speedup = c.filter(|_| p > 0.0).map(|c| c / p);
            let verdict = match (row.target, speedup) {
                (false, _) => String::new(),
                (true, None) => "n/a".to_string(),
                (true, Some(s)) => {
                    total += 1;
                    if s >= TARGET {
                        met += 1;
                        "met".to_string()
                    } else {
                        "not met".to_string()
                    }
                }
            };
            println!(
                "{:<30} {:>10.2} {:>12} {:>8} {:>14} {:>12} {:>14}",
                row.label,
                p,
                c.map_or("n/a".to_string(), |c| format!("{c:.2}")),
                speedup.map_or("n/a".to_string(), |s| format!("{s:.2}x")),
                verdict,
                faults("pymem"),
                faults("cpython")
            );
        }
        if have_cpython {
            println!("target met on {met} of {total} cases");
        }
    }

    /// `python3 --version`'s number, for the table's heading.
    pub(super) fn version() -> String {
        let out = Command::new("python3").arg("--version").output();
        match out {
            Ok(o) if o.status.success() => {
                let text = String::from_utf8_lossy(&o.stdout).into_owned() + &String::from_utf8_lossy(&o.stderr);
                text.split_whitespace().nth(1).unwrap_or("?").to_string()
            }
            _ => "?".to_string(),
        }
    }

    /// Callgrind's count of one timed region: collection only inside
    /// `timed_<metric>` (and a compiler clone of it, `timed_<metric>.*`).
    fn ir_job(root: &Path, side: &Side, row: &Row, n: u64, log: PathBuf) -> Job {
        let mut cmd = c_program("valgrind", root);
        cmd.args(["--tool=callgrind", "--callgrind-out-file=/dev/null", "--collect-atstart=no"]);
        cmd.arg(format!("--toggle-collect=timed_{}", row.metric));
        cmd.arg(format!("--toggle-collect=timed_{}.*", row.metric));
        cmd.arg(&side.exe).args([side.name, row.case, &n.to_string()]);
        Job { name: format!("{} {} {n}", side.name, row.metric), cmd, log, timeout: None }
    }

    fn instructions(root: &Path, sides: &[Side]) -> Result<(), String> {
        let dir = target_dir(root).join("bench/callgrind");
        mkdir(&dir)?;
        let rows: Vec<&Row> = ROWS.iter().filter(|r| r.target).collect();
        let mut jobs = Vec::new();
        for side in sides {
            for row in &rows {
                for n in [IR_N, 0] {
                    let log = dir.join(format!("objects-{}-{}-{n}.log", side.name, row.metric));
                    jobs.push(((side.name, row.metric, n), ir_job(root, side, row, n, log)));
                }
            }
        }
        let ir = run_callgrind(&dir, jobs)?;
        let per_op = |side: &str, metric: &str| {
            let at = |n| ir.get(&(side, metric, n)).map(|&c| c as f64);
            Some((at(IR_N)? - at(0)?) / IR_N as f64)
        };
        println!("\ncallgrind instructions per op of each timed region: (Ir(N) - Ir(0)) / N, N = {}", thousands(IR_N));
        println!("{:<30} {:>10} {:>12} {:>14}", "case", "pymem Ir", "CPython Ir", "CPython/pymem");
        for row in rows {
            let p = per_op("pymem", row.metric);
            let c = per_op("cpython", row.metric);
            let show = |v: Option<f64>| v.map_or("n/a".to_string(), |v| format!("{v:.1}"));
            let ratio = match (p, c) {
                (Some(p), Some(c)) if p > 0.0 => format!("{:.2}x", c / p),
                _ => "n/a".to_string(),
            };
            println!("{:<30} {:>10} {:>12} {:>14}", row.label, show(p), show(c), ratio);
        }
        Ok(())
    }
}

/// `cargo xtask bench gc [--runs N] [--n N]`: the cycle collector's cost
/// through pymem's C ABI against CPython's `gc.collect()` on the same
/// graphs, measured in the same run on the same machine.
///
/// The graphs are those of the peer baseline (shared/peers/gc_bench.py,
/// RESULTS.md section 2): N = 100,000 and 1,000,000 (`--n` picks one N);
/// `cycle2` (N/2 two-cycles a.ref = b, b.ref = a), `ring` (one doubly
/// linked ring, prev/next) and their `_slots` variants; modes `garbage`
/// (drop every outside reference, time one full collection that frees all
/// N) and `live` (the structure kept reachable, one warm-up collection, then
/// time a full collection that frees nothing). Automatic collection is
/// disabled while building, as the peer does. Three more shapes are the
/// containers programs are made of (issue 10), built the same way on both
/// sides: `list_cycle2` (`a = []; b = [a]; a.append(b)`), `list_ring`
/// (lists `[prev, next]`) and `dict_cycle2` (`a['x'] = b; b['x'] = a`).
/// - pymem: xtask/c/bench_gc.c, built into target/bench/bench_gc; instances
///   of host types with attributes (values inline), for `_slots` host types
///   declared with slots (CPython's __slots__: a fixed place per name). Two
///   more shapes, `_host`, keep the references in the payload (a `traverse`
///   callback reports them, `clear` drops them: a C extension type); they
///   have no pure-Python peer, are compared with CPython's __slots__ rows
///   and shown apart from the target count. It checks found == N / 0, and
///   that the allocator's blocks and bytes in use are back to the baseline
///   after each run.
/// - CPython: `python3` runs [`PY_DRIVER`] (written to
///   target/bench/gc_bench_cpython.py): the peer's classes, builders and
///   run_garbage/run_live, one measurement per process.
///
/// Every (N, mode, shape, side) is a fresh process, `runs` times,
/// interleaved across sides; the table shows medians, ns per object and the
/// speedup CPython / pymem against the issue's target (at least 4x). Then
/// pymem's memory per instance (`bench_gc mem`) and the collector's overhead
/// per tracked object against its target (at most 16 bytes). No assertions
/// on speed: only a failed check fails the bench.
mod gc {
    use std::collections::BTreeMap;
    use std::path::{Path, PathBuf};
    use std::process::Command;

    use super::{median, Options};
    use crate::util::{
        build_release, c_program, gcc_program, have, link_pymem, mkdir, output_checked, target_dir, thousands,
        write_file,
    };

    /// The N of the peer baseline.
    const NS: [u64; 2] = [100_000, 1_000_000];
    const MODES: [&str; 2] = ["garbage", "live"];
    const SHAPES: [&str; 9] = [
        "cycle2",
        "ring",
        "cycle2_slots",
        "ring_slots",
        "cycle2_host",
        "ring_host",
        "list_cycle2",
        "list_ring",
        "dict_cycle2",
    ];
    /// The peer's shapes (shared/peers/gc_bench.py), which the target is about.
    fn is_peer_shape(shape: &str) -> bool {
        !shape.ends_with("_host")
    }
    /// The issue's target: CPython's ns per object / pymem's, on every row.
    const TARGET: f64 = 4.0;
    /// The issue's target for the collector's bytes per tracked object.
    const OVERHEAD_TARGET: u64 = 16;
    /// Instances `bench_gc mem` measures per shape.
    const MEM_K: u64 = 10_000;

    /// pymem's object layout (crates/refcount-object/src/object.rs): the
    /// header (refcount; type id and flags) and an instance's own fields
    /// (values pointer, slot count). The collector's links are what remains
    /// of the object block of an instance without payload.
    const HEADER: u64 = 16;
    const INSTANCE_FIELDS: u64 = 16;

    /// CPython's side: the peer's classes, builders and run_garbage/run_live
    /// (shared/peers/gc_bench.py), one measurement per process.
    pub const PY_DRIVER: &str = r#"# Written by `cargo xtask bench gc`: CPython's side, one measurement per process.
# The classes, builders and steps are those of shared/peers/gc_bench.py.
# Usage: python3 gc_bench_cpython.py SHAPE MODE N  -> "cpython SHAPE MODE N <ns> <found>"
#        python3 gc_bench_cpython.py base          -> "base <ns> <tracked objects>"
import gc, sys, time


class Node:
    def __init__(self):
        self.ref = None


class DNode:
    def __init__(self):
        self.prev = None
        self.next = None


class NodeS:
    __slots__ = ("ref",)
    def __init__(self):
        self.ref = None


class DNodeS:
    __slots__ = ("prev", "next")
    def __init__(self):
        self.prev = None
        self.next = None


def build_cycle2(n, cls):
    out = []
    for _ in range(n // 2):
        a = cls(); b = cls()
        a.ref = b; b.ref = a
        out.append(a)
    return out            # holds one member of each pair


def build_ring(n, cls):
    head = cls(); head.prev = head.next = head
    tail = head
    for _ in range(n - 1):
        x = cls(); x.prev = tail; tail.next = x; tail = x
    tail.next = head; head.prev = tail
    return head


def build_list_cycle2(n):
    out = []
    for _ in range(n // 2):
        a = []; b = [a]; a.append(b)
        out.append(a)
    return out            # holds one member of each pair


def build_list_ring(n):
    head = [None, None]; head[0] = head[1] = head
    tail = head
    for _ in range(n - 1):
        x = [tail, None]; tail[1] = x; tail = x
    tail[1] = head; head[0] = tail
    return head


def build_dict_cycle2(n):
    out = []
    for _ in range(n // 2):
        a = {}; b = {}
        a['x'] = b; b['x'] = a
        out.append(a)
    return out            # holds one member of each pair


SHAPES = {
    "cycle2": lambda n: build_cycle2(n, Node),
    "ring": lambda n: build_ring(n, DNode),
    "cycle2_slots": lambda n: build_cycle2(n, NodeS),
    "ring_slots": lambda n: build_ring(n, DNodeS),
    # pymem's _host shapes (C callbacks) have no pure-Python peer: CPython's
    # __slots__ classes are their reference.
    "cycle2_host": lambda n: build_cycle2(n, NodeS),
    "ring_host": lambda n: build_ring(n, DNodeS),
    # The containers programs are made of (issue 10): lists and dicts.
    "list_cycle2": build_list_cycle2,
    "list_ring": build_list_ring,
    "dict_cycle2": build_dict_cycle2,
}


def time_collect():
    t0 = time.perf_counter_ns()
    found = gc.collect()
    return time.perf_counter_ns() - t0, found


def run_garbage(shape, n):
    gc.collect(); gc.disable()
    obj = SHAPES[shape](n)
    del obj                           # everything is now cyclic garbage
    dt, found = time_collect()
    gc.enable()
    return dt, found


def run_live(shape, n):
    gc.collect(); gc.disable()
    obj = SHAPES[shape](n)
    gc.collect()                      # warm-up: merge into oldest gen
    dt, found = time_collect()
    del obj
    gc.collect()
    gc.enable()
    return dt, found


def main():
    if sys.argv[1:] == ["base"]:
        gc.collect()
        dt, _ = time_collect()
        print(f"base {dt} {len(gc.get_objects())}")
        return
    shape, mode, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
    fn = {"garbage": run_garbage, "live": run_live}[mode]
    dt, found = fn(shape, n)
    print(f"cpython {shape} {mode} {n} {dt} {found}")


main()
"#;

    /// One measurement of one side.
    struct Sample {
        ns: f64,
        found: i64,
        /// pymem only: bytes and blocks in use per object before the freeing collect.
        bytes: f64,
        blocks: f64,
        /// pymem only: peak RSS growth in the process's first collection, bytes.
        rss_growth: f64,
    }

    /// (side, N, mode, shape) → the samples of its runs.
    type Results = BTreeMap<(&'static str, u64, &'static str, &'static str), Vec<Sample>>;

    /// How to run each side; the CPython one is absent without python3.
    struct Sides {
        pymem: PathBuf,
        python: Option<PathBuf>,
    }

    pub fn run(root: &Path, opts: &Options) -> Result<(), String> {
        let ns: Vec<u64> = match opts.n {
            Some(n) => vec![n.max(2) & !1],
            None => NS.to_vec(),
        };
        build_release(root, None)?;
        let sides = build(root)?;
        let mut base = Vec::new();
        let results = time_all(root, &sides, &ns, opts.runs, &mut base)?;
        print_table(&results, &ns, opts.runs, sides.python.is_some(), &base);
        memory(root, &sides, &results, &ns)
    }

    fn build(root: &Path) -> Result<Sides, String> {
        let out = target_dir(root).join("bench");
        mkdir(&out)?;
        let exe = out.join("bench_gc");
        let mut cmd = gcc_program(root, &root.join("xtask/c/bench_gc.c"), &exe);
        link_pymem(&mut cmd, root);
        output_checked(&mut cmd)?;

        let python = if have("python3") {
            let script = out.join("gc_bench_cpython.py");
            write_file(&script, PY_DRIVER)?;
            Some(script)
        } else {
            println!("NOTE: the CPython side is skipped: python3 not found");
            None
        };
        Ok(Sides { pymem: exe, python })
    }

    fn parse<T: std::str::FromStr>(field: &str, out: &str) -> Result<T, String> {
        field.parse().map_err(|_| format!("bad output: {out:?}"))
    }

    fn run_pymem(root: &Path, exe: &Path, n: u64, mode: &str, shape: &str) -> Result<Sample, String> {
        let out = output_checked(c_program(exe, root).args([shape, mode, &n.to_string()]))?;
        let f: Vec<&str> = out.split_whitespace().collect();
        match f[..] {
            ["pymem", s, m, nn, ns, found, bytes, blocks, _faults, rss] if s == shape && m == mode => {
                if parse::<u64>(nn, &out)? != n {
                    return Err(format!("bad output: {out:?}"));
                }
                Ok(Sample {
                    ns: parse(ns, &out)?,
                    found: parse(found, &out)?,
                    bytes: parse(bytes, &out)?,
                    blocks: parse(blocks, &out)?,
                    rss_growth: parse(rss, &out)?,
                })
            }
            _ => Err(format!("bad output from {}: {out:?}", exe.display())),
        }
    }

    fn python(root: &Path, script: &Path) -> Command {
        let mut cmd = Command::new("python3");
        // -I: isolated (no user site, no PYTHON* variables), -S: no site import.
        cmd.current_dir(root).args(["-I", "-S"]).arg(script);
        cmd
    }

    fn run_cpython(root: &Path, script: &Path, n: u64, mode: &str, shape: &str) -> Result<Sample, String> {
        let out = output_checked(python(root, script).args([shape, mode, &n.to_string()]))?;
        let f: Vec<&str> = out.split_whitespace().collect();
        match f[..] {
            ["cpython", s, m, _, ns, found] if s == shape && m == mode => Ok(Sample {
                ns: parse(ns, &out)?,
                found: parse(found, &out)?,
                bytes: 0.0,
                blocks: 0.0,
                rss_growth: 0.0,
            }),
            _ => Err(format!("bad output from {}: {out:?}", script.display())),
        }
    }

    /// CPython's `gc.collect()` with no extra objects: (ns, tracked objects).
    fn run_base(root: &Path, script: &Path) -> Result<(f64, u64), String> {
        let out = output_checked(python(root, script).arg("base"))?;
        let f: Vec<&str> = out.split_whitespace().collect();
        match f[..] {
            ["base", ns, objects] => Ok((parse(ns, &out)?, parse(objects, &out)?)),
            _ => Err(format!("bad output from {}: {out:?}", script.display())),
        }
    }

    fn time_all(
        root: &Path,
        sides: &Sides,
        ns: &[u64],
        runs: usize,
        base: &mut Vec<(f64, u64)>,
    ) -> Result<Results, String> {
        let mut results = Results::new();
        for run in 1..=runs {
            eprint!("{}{run}/{runs}", if run == 1 { "timing runs: " } else { " " });
            if let Some(script) = &sides.python {
                base.push(run_base(root, script)?);
            }
            for &n in ns {
                for mode in MODES {
                    for shape in SHAPES {
                        // Both sides, in the order of this run (see `in_run_order`).
                        for pymem_side in super::in_run_order(&[true, false], run) {
                            if *pymem_side {
                                let s = run_pymem(root, &sides.pymem, n, mode, shape)?;
                                results.entry(("pymem", n, mode, shape)).or_default().push(s);
                            } else if let Some(script) = &sides.python {
                                let s = run_cpython(root, script, n, mode, shape)?;
                                results.entry(("cpython", n, mode, shape)).or_default().push(s);
                            }
                        }
                    }
                }
            }
        }
        eprintln!();
        Ok(results)
    }

    fn print_table(results: &Results, ns: &[u64], runs: usize, have_cpython: bool, base: &[(f64, u64)]) {
        println!(
            "\ngc: one full collection (generation 2) per run, median of {runs} fresh-process runs; \
             ns/obj = median / N"
        );
        println!(
            "pymem: pymem_gc_collect(rt, 2) through its C ABI (libpymem.so); CPython {}: gc.collect() in python3",
            super::objects::version()
        );
        println!("garbage: every outside reference dropped, the collection frees all N; live: all N reachable,");
        println!("after one warm-up collection, the timed one frees nothing. Automatic collection off while building.");
        println!("speedup = CPython ns / pymem ns; target: pymem at least {TARGET}x faster per object on every row");
        if !base.is_empty() {
            let ms = median(base.iter().map(|b| b.0)) / 1e6;
            let objects = median(base.iter().map(|b| b.1 as f64));
            println!(
                "CPython's gc.collect() with no extra objects: {ms:.3} ms ({} tracked objects in the interpreter), \
                 included in its times, not subtracted (as the peer)",
                thousands(objects as u64)
            );
        }
        println!(
            "\n{:>9}  {:<7}  {:<12}  {:>8}  {:>10}  {:>10}  {:>12}  {:>7}  {:>11}",
            "N", "mode", "shape", "pymem ms", "pymem ns/o", "CPython ms", "CPython ns/o", "speedup", "target >=4x"
        );
        let (mut met, mut total) = (0, 0);
        let mut cpython_found = Vec::new();
        for &n in ns {
            for mode in MODES {
                for shape in SHAPES {
                    let med = |side| results.get(&(side, n, mode, shape)).map(|v| median(v.iter().map(|s| s.ns)));
                    let Some(p) = med("pymem") else { continue };
                    let c = med("cpython");
                    let speedup = c.filter(|_| p > 0.0).map(|c| c / p);
                    let verdict = match speedup {
                        None => "n/a",
                        Some(_) if !is_peer_shape(shape) => "(extra)",
                        Some(s) => {
                            total += 1;
                            if s >= TARGET {
                                met += 1;
                                "met"
                            } else {
                                "not met"
                            }
                        }
                    };
                    let expected = if mode == "garbage" { n as i64 } else { 0 };
                    if let Some(v) = results.get(&("cpython", n, mode, shape)) {
                        cpython_found.extend(
                            v.iter()
                                .filter(|s| s.found != expected)
                                .map(|s| format!("{} {mode} {shape}: {} (expected {expected})", thousands(n), s.found)),
                        );
                    }
                    let per = |ns: f64| ns / n as f64;
                    println!(
                        "{:>9}  {:<7}  {:<12}  {:>8.2}  {:>10.1}  {:>10}  {:>12}  {:>7}  {:>11}",
                        thousands(n),
                        mode,
                        shape,
                        p / 1e6,
                        per(p),
                        c.map_or("n/a".to_string(), |c| format!("{:.2}", c / 1e6)),
                        c.map_or("n/a".to_string(), |c| format!("{:.1}", per(c))),
                        speedup.map_or("n/a".to_string(), |s| format!("{s:.2}x")),
                        verdict
                    );
                }
            }
        }
        println!(
            "_host rows: references in the payload behind traverse/clear callbacks (a C extension type); no \
             pure-Python peer, so CPython's __slots__ classes stand in, and they are not counted for the target"
        );
        println!("pymem's collection found N on every garbage run and 0 on every live run (checked by bench_gc)");
        if have_cpython {
            if cpython_found.is_empty() {
                println!("CPython's gc.collect() returned N on every garbage run and 0 on every live run");
            } else {
                println!("CPython's gc.collect() returned other counts: {}", cpython_found.join("; "));
            }
            println!("speedup target (>= {TARGET}x) met on {met} of {total} rows");
        }
    }

    /// One line of `bench_gc mem`.
    struct Mem {
        shape: String,
        object: f64,
        values: f64,
        payload: u64,
        sizeof: u64,
        blocks: f64,
    }

    fn memory(root: &Path, sides: &Sides, results: &Results, ns: &[u64]) -> Result<(), String> {
        let out = output_checked(c_program(&sides.pymem, root).args(["mem", &MEM_K.to_string()]))?;
        let mut mems = Vec::new();
        for line in out.lines() {
            let f: Vec<&str> = line.split_whitespace().collect();
            let ["mem", shape, object, values, payload, sizeof, blocks] = f[..] else {
                return Err(format!("bad output from bench_gc mem: {out:?}"));
            };
            mems.push(Mem {
                shape: shape.to_string(),
                object: parse(object, &out)?,
                values: parse(values, &out)?,
                payload: parse(payload, &out)?,
                sizeof: parse(sizeof, &out)?,
                blocks: parse(blocks, &out)?,
            });
        }
        let n = *ns.iter().max().expect("one N");
        println!(
            "\npymem memory per instance: bytes_in_use over {} instances (bench_gc mem), and per object \
             of the N = {} garbage runs just before the collection",
            thousands(MEM_K),
            thousands(n)
        );
        println!(
            "{:<12}  {:>12}  {:>12}  {:>7}  {:>7}  {:>6}  {:>12}  {:>12}",
            "shape", "object block", "values array", "payload", "total", "blocks", "pymem_sizeof", "bytes/obj @N"
        );
        for m in &mems {
            let at_n = results
                .get(&("pymem", n, "garbage", shape_key(&m.shape)))
                .map_or("n/a".to_string(), |v| format!("{:.1}", median(v.iter().map(|s| s.bytes))));
            let blocks_at_n =
                results.get(&("pymem", n, "garbage", shape_key(&m.shape))).map(|v| median(v.iter().map(|s| s.blocks)));
            println!(
                "{:<12}  {:>12.1}  {:>12.1}  {:>7}  {:>7.1}  {:>6.2}  {:>12}  {:>12}{}",
                m.shape,
                m.object,
                m.values,
                m.payload,
                m.object + m.values,
                m.blocks,
                m.sizeof,
                at_n,
                blocks_at_n.map_or(String::new(), |b| format!(" ({b:.2} blocks)"))
            );
        }
        println!(
            "object block = header {HEADER} (refcount; type id and flags) + collector links (next, prev) + \
             instance fields {INSTANCE_FIELDS} (values pointer, slot counts) + payload + inline values, in its 16-byte \
             size class;"
        );
        println!(
            "attribute values are inline, after the payload (a slot per name the type knows); values array = a \
             block of its own, only for an instance that outgrows them (none here)"
        );
        // The links: the object block of an instance with nothing in it, less the header and instance fields.
        match mems.iter().find(|m| m.shape == "empty") {
            Some(m) => {
                let links = m.object as u64 - HEADER - INSTANCE_FIELDS;
                println!(
                    "GC overhead per tracked object: {links} bytes (the links inside each container: an empty \
                     instance's {} - {HEADER} - {INSTANCE_FIELDS}), target <= {OVERHEAD_TARGET} bytes: {}; no side \
                     table per object",
                    m.object as u64,
                    if links <= OVERHEAD_TARGET { "met" } else { "not met" }
                );
            }
            None => println!("GC overhead per tracked object: n/a (no empty instance measured)"),
        }
        let growth: Vec<f64> = SHAPES
            .iter()
            .filter_map(|&shape| results.get(&("pymem", n, "live", shape)))
            .map(|v| median(v.iter().map(|s| s.rss_growth)) / n as f64)
            .collect();
        if growth.iter().all(|&g| g == 0.0) {
            println!(
                "transient memory of a collection: none seen (peak RSS did not grow during the first full \
                 collection of any N = {} live run: the collector needs no scratch memory)",
                thousands(n)
            );
        } else {
            let lo = growth.iter().copied().fold(f64::INFINITY, f64::min);
            let hi = growth.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            println!(
                "transient, during a collection only: peak RSS growth of the first full collection of the N = {} \
                 live runs, {lo:.1}..{hi:.1} bytes/object (the collection's scratch, given back after it)",
                thousands(n)
            );
        }
        Ok(())
    }

    /// The `'static` name of a shape (the results are keyed by them).
    fn shape_key(shape: &str) -> &'static str {
        SHAPES.iter().copied().find(|&s| s == shape).unwrap_or("?")
    }
}
