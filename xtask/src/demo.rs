//! `cargo xtask demo [SECTION...] [--list]`: builds the release library and
//! xtask/c/demo.c (a C host that uses only include/pymem.h), and runs the
//! demo's sections in order; with no SECTION, all of them.
//!
//! A section is one entry of [`SECTIONS`] here and one of the `sections`
//! table in demo.c (same name). The C program prints the report; lines it
//! starts with `RESULT ` are numbers for this side, which may set them
//! against CPython (run as a `python3` subprocess) after the C part.
//! Later parts of pymem add their sections to both tables.
//!
//! Section `report` writes the HTML memory report of the seed's walk
//! (`pymem_report_html`) to target/demo/report.html, or to FILE with
//! `--html FILE`, and prints its path.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::util::{build_release, c_program, gcc_program, have, link_pymem, mkdir, output_checked, target_dir};

/// One demo section.
struct Section {
    /// The name given to demo.c and on the command line.
    name: &'static str,
    /// What runs after the C part, given its RESULT lines.
    after: fn(&Results) -> Result<(), String>,
}

const SECTIONS: &[Section] = &[
    Section { name: "pools", after: pools_vs_cpython },
    Section { name: "objects", after: objects_vs_cpython },
    Section { name: "gc", after: gc_vs_cpython },
    Section { name: "namespaces", after: namespaces_vs_cpython },
    Section { name: "cuda", after: nothing_to_compare },
    Section { name: "report", after: nothing_to_compare },
];

/// The marks demo.c's section `report` puts on the timeline, in order
/// (its `report_steps`): the browser check in test-all expects exactly
/// these labels on the page.
pub const REPORT_STEPS: &[&str] =
    &["start", "a, b, d, c built", "del a", "b.append(b); del b", "gc.collect()", "%reset"];

/// Sections whose C part is the whole story (no CPython run to set it against).
fn nothing_to_compare(_: &Results) -> Result<(), String> {
    Ok(())
}

/// RESULT lines: `RESULT <tag> key=value ...` → tag → key → value.
type Results = BTreeMap<String, BTreeMap<String, f64>>;

pub fn cmd(root: &Path, args: &[String]) -> Result<(), String> {
    if args.iter().any(|a| a == "--list") {
        for s in SECTIONS {
            println!("{}", s.name);
        }
        return Ok(());
    }
    // `--html FILE`: where section `report` writes the page.
    let mut html = None;
    let mut names = Vec::new();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        if a == "--html" {
            html = Some(PathBuf::from(it.next().ok_or("--html needs a FILE")?));
        } else if let Some(f) = a.strip_prefix("--html=") {
            html = Some(PathBuf::from(f));
        } else {
            names.push(a.as_str());
        }
    }
    let chosen: Vec<&Section> = if names.is_empty() {
        SECTIONS.iter().collect()
    } else {
        names
            .iter()
            .map(|a| {
                SECTIONS.iter().find(|s| s.name == *a).ok_or_else(|| {
                    let names: Vec<_> = SECTIONS.iter().map(|s| s.name).collect();
                    format!("unknown demo section {a:?} (sections: {})", names.join(", "))
                })
            })
            .collect::<Result<_, _>>()?
    };
    let html = absolute(html.unwrap_or_else(|| target_dir(root).join("demo/report.html")))?;
    build_release(root, None)?;
    let exe = build(root)?;
    let env = [("PYMEM_DEMO_REPORT", html.display().to_string())];
    for section in &chosen {
        println!("\n===== demo: {} {}", section.name, "=".repeat(60usize.saturating_sub(section.name.len())));
        let results = run_c(root, &exe, section.name, &env)?;
        (section.after)(&results)?;
    }
    if chosen.iter().any(|s| s.name == "report") {
        println!("\nthe memory report (open it in a browser): {}", html.display());
    }
    Ok(())
}

fn absolute(path: PathBuf) -> Result<PathBuf, String> {
    if path.is_absolute() {
        Ok(path)
    } else {
        Ok(std::env::current_dir().map_err(|e| e.to_string())?.join(path))
    }
}

/// Writes the report of the seed's walk to `path` (the release library
/// already built), with `n` ints and floats (the seed's 10**7 when `None`):
/// what test-all opens in Chromium.
pub fn write_report(root: &Path, path: &Path, n: Option<u64>) -> Result<String, String> {
    let exe = build(root)?;
    let mut cmd = c_program(&exe, root);
    cmd.arg("report").env("PYMEM_DEMO_REPORT", path);
    if let Some(n) = n {
        cmd.env("PYMEM_DEMO_REPORT_N", n.to_string());
    }
    output_checked(&mut cmd)
}

fn build(root: &Path) -> Result<PathBuf, String> {
    let out = target_dir(root).join("demo");
    mkdir(&out)?;
    let exe = out.join("demo");
    let header = root.join("include/pymem.h");
    let header = std::fs::read_to_string(&header).map_err(|e| format!("reading {}: {e}", header.display()))?;
    let mut cc = gcc_program(root, &root.join("xtask/c/demo.c"), &exe);
    // Section "objects" shows copy/deepcopy once the library declares them.
    if header.contains("pymem_copy(") && header.contains("pymem_deepcopy(") {
        cc.arg("-DDEMO_HAVE_COPY");
    }
    link_pymem(&mut cc, root);
    output_checked(&mut cc)?;
    Ok(exe)
}

/// Runs one section of demo.c, echoing its report as it comes and keeping
/// its RESULT lines.
fn run_c(root: &Path, exe: &Path, section: &str, env: &[(&str, String)]) -> Result<Results, String> {
    let mut child = c_program(exe, root)
        .arg(section)
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .stdout(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot start {}: {e}", exe.display()))?;
    let stdout = child.stdout.take().expect("piped stdout");
    let mut results = Results::new();
    for line in BufReader::new(stdout).lines() {
        let line = line.map_err(|e| e.to_string())?;
        match line.strip_prefix("RESULT ") {
            Some(rest) => parse_result(rest, &mut results),
            None => println!("{line}"),
        }
    }
    let status = child.wait().map_err(|e| e.to_string())?;
    if !status.success() {
        return Err(format!("demo section {section} failed ({status})"));
    }
    Ok(results)
}

/// Runs a CPython script with python3 and parses what it printed: its
/// `RESULT name key=value...` lines, and its `VERSION x.y.z` line ("?" when
/// absent).
fn run_cpython(script: &str) -> Result<(Results, String), String> {
    let out = output_checked(Command::new("python3").args(["-c", script]))?;
    let mut py = Results::new();
    let mut version = String::from("?");
    for line in out.lines() {
        if let Some(rest) = line.strip_prefix("RESULT ") {
            parse_result(rest, &mut py);
        } else if let Some(v) = line.strip_prefix("VERSION ") {
            version = v.to_string();
        }
    }
    Ok((py, version))
}

fn parse_result(rest: &str, results: &mut Results) {
    let mut words = rest.split_whitespace();
    let Some(tag) = words.next() else { return };
    let entry = results.entry(tag.to_string()).or_default();
    for word in words {
        if let Some((k, v)) = word.split_once('=') {
            if let Ok(v) = v.parse() {
                entry.insert(k.to_string(), v);
            }
        }
    }
}

/// The fragmented pattern of section "pools" in CPython itself: 10**7
/// distinct ints (32-byte pymalloc blocks) in a list made before the
/// baseline, as demo.c's pointer array is; then every int but each 1024th
/// dropped. pymalloc frees an arena only when none of its blocks lives.
const CPYTHON_FRAGMENTED: &str = r#"
import gc, os, sys
N = 10**7
PAGE = os.sysconf("SC_PAGE_SIZE")
def rss():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * PAGE
a = [None] * N
gc.collect()
start = rss()
for i in range(N):
    a[i] = i + 1000
built = rss()
for i in range(N):
    if i & 1023:
        a[i] = None
gc.collect()
freed = rss()
print("RESULT cpython start=%d built=%d freed=%d" % (start, built, freed))
print("VERSION " + sys.version.split()[0])
"#;

fn pools_vs_cpython(results: &Results) -> Result<(), String> {
    let pymem = results.get("pools_fragmented").ok_or("demo.c printed no RESULT pools_fragmented line")?;
    let mib = |v: f64| v / (1024.0 * 1024.0);
    let get = |m: &BTreeMap<String, f64>, k: &str| m.get(k).copied().unwrap_or(0.0);
    let (p_start, p_built, p_after) = (get(pymem, "start"), get(pymem, "built"), get(pymem, "released"));

    println!("\n--- CPython, the same fragmented pattern (python3 subprocess) ---------------");
    if !have("python3") {
        println!("python3 not found: the CPython comparison is skipped");
        return Ok(());
    }
    println!("a = [None] * 10**7; baseline; a[i] = i + 1000 for every i (distinct ints);");
    println!("then a[i] = None unless i % 1024 == 0; gc.collect()");
    let (py, version) = run_cpython(CPYTHON_FRAGMENTED)?;
    let cpy = py.get("cpython").ok_or("the CPython script printed no RESULT line")?;
    let (c_start, c_built, c_after) = (get(cpy, "start"), get(cpy, "built"), get(cpy, "freed"));

    let pct = |start: f64, built: f64, after: f64| {
        let grew = built - start;
        if grew > 0.0 {
            100.0 * (built - after) / grew
        } else {
            0.0
        }
    };
    let p_pct = pct(p_start, p_built, p_after);
    let c_pct = pct(c_start, c_built, c_after);
    println!(
        "\n{:<22} {:>10} {:>10} {:>13} {:>10} {:>10}",
        "10**7 x 32-byte blocks", "grew MiB", "kept MiB", "returned MiB", "returned %", "RSS MiB"
    );
    let row = |name: &str, start: f64, built: f64, after: f64, p: f64| {
        println!(
            "{:<22} {:>10.1} {:>10.1} {:>13.1} {:>9.1}% {:>10.1}",
            name,
            mib(built - start),
            mib(after - start),
            mib(built - after),
            p,
            mib(after)
        );
    };
    row("pymem (C API)", p_start, p_built, p_after, p_pct);
    row(&format!("CPython {version}"), c_start, c_built, c_after, c_pct);
    println!("\nreturned to the OS after freeing 1023 of 1024 blocks: pymem {p_pct:.1} % vs CPython {c_pct:.1} %");
    println!("(pymem gives each empty 16 KiB pool's pages back; CPython only unmaps a 1 MiB arena with no live block)");
    Ok(())
}

/// Section "objects" in CPython itself: the same Python lines as demo.c's
/// walk, each followed by `sys.getrefcount(x)` (or an `is` test), run in a
/// function so that only the names shown own the objects. Objects are built
/// at run time (`float('2.5')`, `int('257')`), as literals would add the
/// code object's constants as owners.
const CPYTHON_REFCOUNTS: &str = r#"
import copy, sys
def walk():
    r = {}
    g = sys.getrefcount
    x = []; r["fresh_list"] = g(x)
    f = float("3.14"); r["fresh_float"] = g(f)
    s = str(1234567); r["fresh_str"] = g(s)
    del x, f, s
    x = float("2.5"); r["owner_new"] = g(x)
    holder = [x]; r["owner_list"] = g(x)
    y = x; r["owner_y"] = g(x)
    del y; r["owner_del_y"] = g(x)
    popped = holder.pop(); r["owner_pop"] = g(x)
    del popped; r["owner_del_popped"] = g(x)
    d = {"key": x}; r["owner_dict"] = g(x)
    del d["key"]; r["owner_dict_del"] = g(x)
    holder.append(x); del holder; r["owner_del_holder"] = g(x)
    x = str(123456789); r["twice_new"] = g(x)
    l = [x, x]; r["twice_list"] = g(x)
    t = (x, x); r["twice_tuple"] = g(x)
    del l; r["twice_del_l"] = g(x)
    del t; r["twice_del_t"] = g(x)
    x = []; y = x; r["is_alias"] = x is y
    z = []; r["is_equal_list"] = x is z
    for v in (-5, 7, 256, -6, 257, 1000000):
        r["is_int_%d" % v] = int(str(v)) is int(str(v))
    inner = []; big = int("1000"); outer = [inner, big]; r["copy_before"] = g(inner)
    shallow = copy.copy(outer); r["copy_new"] = shallow is not outer; r["copy_shares"] = shallow[0] is inner
    r["copy_after"] = g(inner)
    deep = copy.deepcopy(outer); r["deepcopy_shares"] = deep[0] is inner; r["deepcopy_atom_shared"] = deep[1] is big
    r["deepcopy_after"] = g(inner)
    f = float("1.5"); a = id(f); del f; f2 = float("2.5"); r["float_reuse"] = id(f2) == a
    return r
print("RESULT cpython " + " ".join("%s=%d" % kv for kv in walk().items()))
print("VERSION " + sys.version.split()[0])
"#;

/// The rows of the comparison: RESULT key, the Python line, and whether the
/// value is a reference count (pymem's exact count; CPython shows it + 1) or
/// an `is` outcome.
const OBJECT_ROWS: &[(&str, &str, bool)] = &[
    ("fresh_list", "x = []", true),
    ("fresh_float", "f = float('3.14')", true),
    ("fresh_str", "s = str(1234567)", true),
    ("owner_new", "x = float('2.5')", true),
    ("owner_list", "holder = [x]", true),
    ("owner_y", "y = x", true),
    ("owner_del_y", "del y", true),
    ("owner_pop", "popped = holder.pop()", true),
    ("owner_del_popped", "del popped", true),
    ("owner_dict", "d = {'key': x}", true),
    ("owner_dict_del", "del d['key']", true),
    ("owner_del_holder", "holder.append(x); del holder", true),
    ("twice_new", "x = str(123456789)", true),
    ("twice_list", "l = [x, x]", true),
    ("twice_tuple", "t = (x, x)", true),
    ("twice_del_l", "del l", true),
    ("twice_del_t", "del t", true),
    ("is_alias", "y = x; x is y", false),
    ("is_equal_list", "z = []; x is z", false),
    ("is_int_-5", "int('-5') is int('-5')", false),
    ("is_int_7", "int('7') is int('7')", false),
    ("is_int_256", "int('256') is int('256')", false),
    ("is_int_-6", "int('-6') is int('-6')", false),
    ("is_int_257", "int('257') is int('257')", false),
    ("is_int_1000000", "int('1000000') is int('1000000')", false),
    ("copy_before", "outer = [inner, big]: inner", true),
    ("copy_new", "shallow is not outer", false),
    ("copy_shares", "shallow[0] is inner", false),
    ("copy_after", "after shallow = copy.copy(outer): inner", true),
    ("deepcopy_shares", "deep[0] is inner", false),
    ("deepcopy_atom_shared", "deep[1] is big", false),
    ("deepcopy_after", "after deep = copy.deepcopy(outer): inner", true),
    ("float_reuse", "del f; f2 = float(...): id(f2) == id(f)", false),
];

fn objects_vs_cpython(results: &Results) -> Result<(), String> {
    let pymem = results.get("pymem").ok_or("demo.c printed no RESULT pymem lines")?;
    println!("\n--- the same lines in CPython (python3 subprocess) -------------------------");
    if !have("python3") {
        println!("python3 not found: the CPython comparison is skipped");
        return Ok(());
    }
    let (py, version) = run_cpython(CPYTHON_REFCOUNTS)?;
    let cpy = py.get("cpython").ok_or("the CPython script printed no RESULT line")?;
    let cpython_col = format!("CPython {version}");
    println!("refcount rows: pymem_refcount + 1 against CPython's sys.getrefcount(x); `is` rows: True/False");
    println!("\n{:<42} {:>14} {:>16} {:>6}", "Python", "pymem", cpython_col, "");
    let (mut same, mut total) = (0, 0);
    for &(key, python, is_count) in OBJECT_ROWS {
        let Some(&p) = pymem.get(key) else { continue };
        let c = cpy.get(key).copied();
        let (shown, expected) = if is_count {
            (format!("{} + 1 = {}", p, p + 1.0), p + 1.0)
        } else {
            ((if p != 0.0 { "True" } else { "False" }).to_string(), p)
        };
        let cpython = match c {
            None => "n/a".to_string(),
            Some(c) if is_count => format!("{c}"),
            Some(c) => (if c != 0.0 { "True" } else { "False" }).to_string(),
        };
        let verdict = match c {
            None => "",
            Some(c) if c == expected => "same",
            Some(_) => "DIFFERS",
        };
        total += 1;
        same += usize::from(verdict == "same");
        println!("{python:<42} {shown:>14} {cpython:>16} {verdict:>6}");
    }
    println!("\n{same} of {total} rows the same as CPython {version}");
    Ok(())
}

/// Section "gc" in CPython itself: the same two-object cycle (instances of
/// a class), whose exact reference count after `del` is read through
/// ctypes (`ob_refcnt`, no temporary reference added), `gc.collect()`,
/// `gc.get_threshold()`, and the big cyclic structure deleted and collected
/// with the RSS at each step.
const CPYTHON_GC: &str = r#"
import ctypes, gc, os, sys, time
PAGE = os.sysconf("SC_PAGE_SIZE")
def rss():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * PAGE
class A:
    pass
r = {}
gc.collect()
a = A(); b = A(); a.other = b; b.other = a
r["refcount_before_del"] = sys.getrefcount(a) - 1
ida = id(a)
del a, b
r["refcount_after_del"] = ctypes.c_ssize_t.from_address(ida).value
r["tracked"] = 1
r["collect_pair"] = gc.collect()
r["threshold0"], r["threshold1"], r["threshold2"] = gc.get_threshold()
gc.collect()
start = rss()
root = []
for i in range(10**6):
    a = []; b = [a]; a.append(b); root.append(a)
del a, b
built = rss()
del root
deleted = rss()
t0 = time.perf_counter()
r["big_found"] = gc.collect()
ms = (time.perf_counter() - t0) * 1000
collected = rss()
print("RESULT cpython " + " ".join("%s=%d" % kv for kv in r.items()))
print("RESULT cpython_rss start=%d built=%d deleted=%d collected=%d ms=%.3f" % (start, built, deleted, collected, ms))
print("VERSION " + sys.version.split()[0])
"#;

/// The rows of the comparison: RESULT key and the Python line.
const GC_ROWS: &[(&str, &str)] = &[
    ("refcount_before_del", "a.other = b; b.other = a: refcount(a)"),
    ("refcount_after_del", "del a, b: refcount of the old a"),
    ("collect_pair", "gc.collect()"),
    ("threshold0", "gc.get_threshold()[0]"),
    ("threshold1", "gc.get_threshold()[1]"),
    ("threshold2", "gc.get_threshold()[2]"),
    ("big_found", "del root; gc.collect()"),
];

fn gc_vs_cpython(results: &Results) -> Result<(), String> {
    let pymem = results.get("pymem").ok_or("demo.c printed no RESULT pymem lines")?;
    let p_rss = results.get("gc_rss").ok_or("demo.c printed no RESULT gc_rss line")?;
    println!("\n--- the same lines in CPython (python3 subprocess) -------------------------");
    if !have("python3") {
        println!("python3 not found: the CPython comparison is skipped");
        return Ok(());
    }
    let (py, version) = run_cpython(CPYTHON_GC)?;
    let cpy = py.get("cpython").ok_or("the CPython script printed no RESULT cpython line")?;
    let c_rss = py.get("cpython_rss").ok_or("the CPython script printed no RESULT cpython_rss line")?;
    let cpython_col = format!("CPython {version}");
    println!("reference counts are exact on both sides (CPython's ob_refcnt read through ctypes)");
    println!("\n{:<44} {:>10} {:>16} {:>8}", "Python", "pymem", cpython_col, "");
    let (mut same, mut total) = (0, 0);
    for &(key, python) in GC_ROWS {
        let Some(&p) = pymem.get(key) else { continue };
        let c = cpy.get(key).copied();
        let verdict = match c {
            None => "",
            Some(c) if c == p => "same",
            Some(_) => "DIFFERS",
        };
        total += 1;
        same += usize::from(verdict == "same");
        let shown_c = c.map_or("n/a".to_string(), |c| format!("{c}"));
        println!("{python:<44} {p:>10} {shown_c:>16} {verdict:>8}");
    }
    println!("\n{same} of {total} rows the same as CPython {version}");

    let mib = |v: f64| v / (1024.0 * 1024.0);
    let get = |m: &BTreeMap<String, f64>, k: &str| m.get(k).copied().unwrap_or(0.0);
    println!("\n10**6 list pairs in cycles, deleted and collected (RSS, MiB):");
    println!(
        "{:<22} {:>9} {:>10} {:>12} {:>14} {:>14} {:>11}",
        "", "grew", "after del", "after collect", "after release", "returned", "collect ms"
    );
    let (ps, pb) = (get(p_rss, "start"), get(p_rss, "built"));
    let p_returned = pb - get(p_rss, "released");
    println!(
        "{:<22} {:>9.1} {:>10.1} {:>12.1} {:>14.1} {:>8.1} ({:>3.0}%) {:>11.1}",
        "pymem (C API)",
        mib(pb - ps),
        mib(get(p_rss, "deleted") - ps),
        mib(get(p_rss, "collected") - ps),
        mib(get(p_rss, "released") - ps),
        mib(p_returned),
        if pb > ps { 100.0 * p_returned / (pb - ps) } else { 0.0 },
        get(p_rss, "ms")
    );
    let (cs, cb) = (get(c_rss, "start"), get(c_rss, "built"));
    let c_returned = cb - get(c_rss, "collected");
    println!(
        "{:<22} {:>9.1} {:>10.1} {:>12.1} {:>14} {:>8.1} ({:>3.0}%) {:>11.1}",
        cpython_col,
        mib(cb - cs),
        mib(get(c_rss, "deleted") - cs),
        mib(get(c_rss, "collected") - cs),
        "-",
        mib(c_returned),
        if cb > cs { 100.0 * c_returned / (cb - cs) } else { 0.0 },
        get(c_rss, "ms")
    );
    println!("(RSS above each process's own start; CPython frees a 1 MiB arena once none of its blocks lives)");
    Ok(())
}

/// Where the CPython peer of the namespace reset lives: the shared folder
/// beside the repository (`../shared/peers/reset_bench.py`).
pub(crate) fn reset_peer(root: &Path) -> PathBuf {
    root.join("../shared/peers/reset_bench.py")
}

/// Runs one fresh CPython process of the peer (`reset_bench.py --child N
/// M`: build the seed's namespace, delete the user names, `gc.collect()`)
/// and returns its numbers and CPython's version.
pub(crate) fn cpython_reset(root: &Path, n: u64, m: u64) -> Result<(BTreeMap<String, f64>, String), String> {
    let peer = reset_peer(root);
    if !peer.exists() {
        return Err(format!("the CPython peer {} is missing", peer.display()));
    }
    // The peer prints one JSON line; turn its numbers into a RESULT line.
    let script = format!(
        r#"
import json, subprocess, sys
out = subprocess.run([sys.executable, {peer:?}, "--child", "{n}", "{m}"], check=True, capture_output=True, text=True).stdout
r = json.loads(out)
print("RESULT cpython_ns " + " ".join("%s=%r" % (k, v) for k, v in r.items() if isinstance(v, (int, float))))
print("VERSION " + sys.version.split()[0])
"#,
        peer = peer.display().to_string()
    );
    let (mut py, version) = run_cpython(&script)?;
    let numbers = py.remove("cpython_ns").ok_or("the CPython peer printed no numbers")?;
    Ok((numbers, version))
}

fn namespaces_vs_cpython(results: &Results) -> Result<(), String> {
    let p = results.get("ns").ok_or("demo.c printed no RESULT ns line")?;
    println!("\n--- the same walk in CPython (../shared/peers/reset_bench.py, one fresh process) -----");
    if !have("python3") {
        println!("python3 not found: the CPython comparison is skipped");
        return Ok(());
    }
    let (c, version) = match cpython_reset(&crate::util::root(), 10_000_000, 1_000_000) {
        Ok(r) => r,
        Err(e) => {
            println!("{e}: the CPython comparison is skipped");
            return Ok(());
        }
    };
    let get = |m: &BTreeMap<String, f64>, k: &str| m.get(k).copied().unwrap_or(0.0);
    let mib = 1024.0 * 1024.0;
    println!("reset = delete the user names (a, b, c, d) + a full collection; RSS from /proc/self/statm\n");
    println!(
        "{:<16} {:>10} {:>12} {:>10} {:>10} {:>10} {:>12} {:>10}",
        "", "reset ms", "unreachable", "RSS start", "built", "after", "returned", "returned %"
    );
    let row = |name: &str, ms: f64, unreachable: f64, start: f64, built: f64, after: f64| {
        println!(
            "{name:<16} {ms:>10.1} {unreachable:>12} {:>10.1} {:>10.1} {:>10.1} {:>12.1} {:>9.2}%",
            start / mib,
            built / mib,
            after / mib,
            (built - after) / mib,
            100.0 * (built - after) / (built - start)
        );
    };
    row("pymem", get(p, "reset_ms"), get(p, "unreachable"), get(p, "start"), get(p, "built"), get(p, "after"));
    row(
        &format!("CPython {version}"),
        get(&c, "reset_s") * 1000.0,
        get(&c, "unreachable"),
        get(&c, "rss_start") * mib,
        get(&c, "rss_built") * mib,
        get(&c, "rss_after") * mib,
    );
    println!("(one run each; `cargo xtask bench reset` takes medians of fresh processes at two scales)");
    Ok(())
}
