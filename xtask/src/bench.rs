//! `cargo xtask bench [alloc|objects] [--runs N] [--n N] [--no-ir]`; with no
//! subcommand, both in turn.
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

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::util::{
    build_release, c_program, cpus, have, mkdir, output_checked, release_dir, run_many, target_dir, thousands, Job,
};

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
    "usage: cargo xtask bench [alloc|objects] [--runs N (5)] [--n N] [--no-ir]
  alloc    allocator throughput vs glibc, pymalloc, mimalloc (--n default 10,000,000)
  objects  object create/destroy vs CPython's C API           (--n default 1,000,000)
  (no subcommand: both, alloc first)"
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
        Some(other) if !other.starts_with("--") => Err(format!("unknown bench {other:?}\n{}", usage())),
        _ => {
            let opts = parse(args)?;
            alloc(root, &opts)?;
            println!();
            objects::run(root, &opts)
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

    use super::{collected, median, python, Options};
    use crate::util::{
        build_release, c_program, cpus, have, mkdir, output_checked, release_dir, run_many, target_dir, thousands, Job,
    };

    /// Default `--n`.
    const N: u64 = 1_000_000;
    /// N of the callgrind runs.
    const IR_N: u64 = 100_000;
    /// The target: CPython's time / pymem's time, on each case.
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
        let gcc = |exe: &Path| {
            let mut cmd = Command::new("gcc");
            cmd.current_dir(root)
                .args(["-std=gnu11", "-O2", "-Wall", "-Wextra", "-Werror"])
                .arg(root.join("xtask/c/bench_objects.c"))
                .arg("-o")
                .arg(exe);
            cmd
        };

        let lib = release_dir(root);
        let exe = out.join("bench_objects");
        let mut cmd = gcc(&exe);
        cmd.arg("-DWITH_PYMEM").arg(format!("-I{}", root.join("include").display()));
        cmd.arg(format!("-L{}", lib.display())).arg("-lpymem").arg(format!("-Wl,-rpath,{}", lib.display()));
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
                for side in sides {
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
    fn version() -> String {
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
        let mut keys = Vec::new();
        for side in sides {
            for row in &rows {
                for n in [IR_N, 0] {
                    let log = dir.join(format!("objects-{}-{}-{n}.log", side.name, row.metric));
                    keys.push((side.name, row.metric, n, log.clone()));
                    jobs.push(ir_job(root, side, row, n, log));
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
        for (side, metric, n, log) in keys {
            let count = collected(&log).ok_or_else(|| format!("no 'Collected :' line in {}", log.display()))?;
            ir.insert((side, metric, n), count);
        }
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
