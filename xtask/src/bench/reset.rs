//! `bench reset`: `pymem_ns_reset` on the seed's namespace against CPython
//! doing the same delete + `gc.collect()` on the same data
//! (../shared/peers/reset_bench.py), in the same run.
//!
//! Each measurement is a fresh process, pymem's (xtask/c/bench_reset.c)
//! and CPython's (the peer's `--child N M`) interleaved, `runs` times per
//! scale: N = 10^6 and 10^7 ints and floats, M = N / 10 strs. Reported:
//! medians of the reset time and of the RSS given back to the OS, with
//! CPython / pymem ratios. The issue's target is a reset at least 2x faster
//! and at least as much memory returned; the table says whether it is met,
//! and nothing here fails on speed.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use super::{median, Options};
use crate::util::{build_release, c_program, gcc_program, have, link_pymem, mkdir, output_checked, target_dir};

/// (N ints and floats, M strs), the peer's two scales.
const SCALES: [(u64, u64); 2] = [(1_000_000, 100_000), (10_000_000, 1_000_000)];
/// The issue's target: CPython's reset time / pymem's.
const TARGET: f64 = 2.0;
const MIB: f64 = 1024.0 * 1024.0;

/// One measurement: seconds and RSS in bytes.
#[derive(Clone, Copy, Debug, Default)]
struct Sample {
    reset_s: f64,
    rss_start: f64,
    rss_built: f64,
    rss_after: f64,
    unreachable: f64,
    /// CPU seconds of the reset in user space and in the kernel (pymem's
    /// side only: the peer does not report them).
    user_s: Option<f64>,
    sys_s: Option<f64>,
}

impl Sample {
    fn grew(&self) -> f64 {
        self.rss_built - self.rss_start
    }
    fn returned(&self) -> f64 {
        self.rss_built - self.rss_after
    }
    fn returned_pct(&self) -> f64 {
        100.0 * self.returned() / self.grew()
    }
}

pub fn run(root: &Path, opts: &Options) -> Result<(), String> {
    if opts.n.is_some() {
        return Err("bench reset takes no --n: it runs the peer's two scales (10^6 and 10^7)".into());
    }
    let peer = crate::demo::reset_peer(root);
    if !have("python3") || !peer.exists() {
        return Err(format!("bench reset needs python3 and the CPython peer {}", peer.display()));
    }
    build_release(root, None)?;
    let exe = build(root)?;
    let mut pymem: BTreeMap<u64, Vec<Sample>> = BTreeMap::new();
    let mut cpython: BTreeMap<u64, Vec<Sample>> = BTreeMap::new();
    let version = output_checked(Command::new("python3").args(["-c", "import sys; print(sys.version.split()[0])"]))?;
    println!(
        "bench reset: the seed's namespace deleted + full collection, {} fresh processes per side and scale",
        opts.runs
    );
    for run in 0..opts.runs {
        for &(n, m) in &SCALES {
            // Both sides, in the order of this run (see `in_run_order`).
            for pymem_side in super::in_run_order(&[true, false], run + 1) {
                if *pymem_side {
                    pymem.entry(n).or_default().push(run_pymem(root, &exe, n, m)?);
                } else {
                    cpython.entry(n).or_default().push(run_cpython(&peer, n, m)?);
                }
            }
        }
        println!("  run {}/{} done", run + 1, opts.runs);
    }
    print_table(&pymem, &cpython, version.trim());
    Ok(())
}

fn build(root: &Path) -> Result<PathBuf, String> {
    let out = target_dir(root).join("bench");
    mkdir(&out)?;
    let exe = out.join("bench_reset");
    let mut cc = gcc_program(root, &root.join("xtask/c/bench_reset.c"), &exe);
    link_pymem(&mut cc, root);
    output_checked(&mut cc)?;
    Ok(exe)
}

/// `pymem N M reset_ns rss_start rss_built rss_after names unreachable ...`
fn run_pymem(root: &Path, exe: &Path, n: u64, m: u64) -> Result<Sample, String> {
    let out = output_checked(c_program(exe, root).arg(n.to_string()).arg(m.to_string()))?;
    let f: Vec<f64> = out.split_whitespace().skip(1).filter_map(|w| w.parse().ok()).collect();
    if f.len() < 12 {
        return Err(format!("bench_reset printed {out:?}"));
    }
    Ok(Sample {
        reset_s: f[2] / 1e9,
        rss_start: f[3],
        rss_built: f[4],
        rss_after: f[5],
        unreachable: f[7],
        user_s: Some(f[10] / 1e9),
        sys_s: Some(f[11] / 1e9),
    })
}

/// The peer's `--child N M`: one JSON line (RSS in MiB).
fn run_cpython(peer: &Path, n: u64, m: u64) -> Result<Sample, String> {
    let out = output_checked(Command::new("python3").arg(peer).args(["--child", &n.to_string(), &m.to_string()]))?;
    let num = |key: &str| json_number(&out, key).ok_or_else(|| format!("the peer printed no {key}: {out}"));
    Ok(Sample {
        reset_s: num("reset_s")?,
        rss_start: num("rss_start")? * MIB,
        rss_built: num("rss_built")? * MIB,
        rss_after: num("rss_after")? * MIB,
        unreachable: num("unreachable")?,
        user_s: None,
        sys_s: None,
    })
}

/// The number after `"key":` in a flat JSON object.
fn json_number(json: &str, key: &str) -> Option<f64> {
    let at = json.find(&format!("\"{key}\":"))? + key.len() + 3;
    let rest = json[at..].trim_start();
    let end = rest.find([',', '}']).unwrap_or(rest.len());
    rest[..end].trim().parse().ok()
}

fn print_table(pymem: &BTreeMap<u64, Vec<Sample>>, cpython: &BTreeMap<u64, Vec<Sample>>, version: &str) {
    let med = |v: &[Sample], f: fn(&Sample) -> f64| median(v.iter().map(f));
    println!("\nmedians; reset = pymem_ns_reset / CPython's del of each user name + gc.collect()");
    println!(
        "{:>12} {:<16} {:>9} {:>9} {:>10} {:>10} {:>10} {:>10} {:>10}",
        "ints/floats", "", "reset ms", "unreach.", "RSS grew", "returned", "kept", "returned%", "ms ratio"
    );
    for (&n, p) in pymem {
        let c = &cpython[&n];
        let ratio = med(c, |s| s.reset_s) / med(p, |s| s.reset_s);
        for (name, rows, shown_ratio) in
            [("pymem", p, format!("{ratio:.2}x")), (&*format!("CPython {version}"), c, String::new())]
        {
            println!(
                "{:>12} {:<16} {:>9.1} {:>9.0} {:>9.1}M {:>9.1}M {:>9.1}M {:>9.2}% {:>10}",
                crate::util::thousands(n),
                name,
                med(rows, |s| s.reset_s) * 1000.0,
                med(rows, |s| s.unreachable),
                med(rows, Sample::grew) / MIB,
                med(rows, Sample::returned) / MIB,
                (med(rows, Sample::grew) - med(rows, Sample::returned)) / MIB,
                med(rows, Sample::returned_pct),
                shown_ratio
            );
        }
        let (pp, cp) = (med(p, Sample::returned_pct), med(c, Sample::returned_pct));
        let cpu = |f: fn(&Sample) -> Option<f64>| median(p.iter().filter_map(f)) * 1000.0;
        println!(
            "{:>12} pymem's reset: {:.1} ms of CPU in user space, {:.1} ms in the kernel (munmap freeing pages)",
            "",
            cpu(|s| s.user_s),
            cpu(|s| s.sys_s)
        );
        println!(
            "{:>12} target: reset {TARGET}x faster: {}; memory returned at least CPython's: {}",
            "",
            if ratio >= TARGET { "met" } else { "NOT met" },
            if pp >= cp { "met" } else { "NOT met" }
        );
    }
    println!("(ms ratio = CPython's median reset time / pymem's; RSS from /proc/self/statm in each process)");
}

#[cfg(test)]
mod tests {
    use super::json_number;

    #[test]
    fn numbers_are_read_from_the_peers_json() {
        let line = r#"{"n": 1000, "reset_s": 0.0215, "removed": ["a", "b"], "rss_after": 18.25}"#;
        assert_eq!(json_number(line, "n"), Some(1000.0));
        assert_eq!(json_number(line, "reset_s"), Some(0.0215));
        assert_eq!(json_number(line, "rss_after"), Some(18.25));
        assert_eq!(json_number(line, "missing"), None);
    }
}
