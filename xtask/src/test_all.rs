//! `cargo xtask test-all`: every check CI runs, in order, as named steps.
//!
//! A failed step does not stop the ones after it (except where a later step
//! needs its product: no ffi-tests or dist check without a release build).
//! Each step prints its name, PASS/FAIL and duration; a failure also prints
//! the tail of the step's log (all logs are kept in target/xtask/logs). The
//! last line is always `N passed, N failed`, where N counts the steps plus
//! every ffi-test program's build, native run and valgrind run; the exit
//! status is non-zero when anything failed.
//!
//! ffi-tests conventions (for whoever writes them): every `ffi-tests/*.c` and
//! `ffi-tests/*.cpp` is one program, built against target/release/libpymem.so
//! into target/ffi-tests/<stem>, that must exit 0 when run natively and, unless
//! its stem starts with `native_`, under valgrind's memcheck with no errors and
//! no definite leaks. Under valgrind `PYMEM_FFI_UNDER_VALGRIND=1` is set, so a
//! program may shrink its sizes.
//!
//! Beside valgrind, the same programs (not `native_`) are built again with
//! gcc's AddressSanitizer and UndefinedBehaviorSanitizer into
//! target/ffi-tests-asan/ and run natively: any report (an invalid access,
//! undefined behaviour, a leak from LeakSanitizer) fails the run. They get
//! `PYMEM_FFI_UNDER_VALGRIND=1` too, which the programs read as "under a
//! checker": sizes shrink and RSS checks are skipped (ASan's quarantine
//! keeps freed memory resident on purpose). And every program that starts
//! threads (its source calls `pthread_create` or uses `std::thread`) also
//! runs under valgrind's helgrind, the data race detector, with no report
//! allowed. Rust's `std::sync::Mutex` is invisible to helgrind (atomics and
//! futex, no pthread mutex): the mutexes the threads share are
//! `cuda_cache::sync::Mutex`, which annotates its lock order for helgrind;
//! there is no suppression file. (ThreadSanitizer was not chosen: the Rust
//! library would need a nightly toolchain and an instrumented std to be
//! checked at all, and uninstrumented it would only see the C side.)

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use crate::util::{
    build_release, c_program, cargo, cpus, have, mkdir, output_checked, release_dir, run_logged, run_many, secs, show,
    tail, target_dir, workspace_version, write_file, Job, XTASK_CFLAGS,
};
use crate::{dist, header, packaging, report_check};

/// Time limits per program run; a hung test fails instead of hanging CI.
const NATIVE_TIMEOUT: Duration = Duration::from_secs(180);
const VALGRIND_TIMEOUT: Duration = Duration::from_secs(420);
/// Lines of a failed step's log shown on the terminal.
const TAIL_PROGRAM: usize = 40;
const TAIL_CARGO: usize = 60;

const C_FLAGS: &[&str] =
    &["-std=c11", "-O1", "-g", "-Wall", "-Wextra", "-Wpedantic", "-Werror", "-Iinclude", "-D_GNU_SOURCE"];
const CXX_FLAGS: &[&str] = &["-std=c++17", "-O1", "-g", "-Wall", "-Wextra", "-Wpedantic", "-Werror", "-Iinclude"];
const STRICT: &[&str] = &["-Wall", "-Wextra", "-Wpedantic", "-Werror"];
/// The sanitizer builds: the flags of the plain build but `-Werror` (gcc's
/// analysis under `-fsanitize` warns where the plain build proves there is
/// nothing to warn about, e.g. format-truncation in objects_host_types.c;
/// the plain build already enforces warnings), plus the sanitizers, with
/// every report fatal.
const SANITIZE: &[&str] = &["-fsanitize=address,undefined", "-fno-omit-frame-pointer", "-fno-sanitize-recover=all"];
const ASAN_OPTIONS: &str = "detect_leaks=1:halt_on_error=1:exitcode=86:detect_stack_use_after_return=1";
const UBSAN_OPTIONS: &str = "halt_on_error=1:print_stacktrace=1";
const HELGRIND: &[&str] = &["--tool=helgrind", "--quiet", "--error-exitcode=99"];
const VALGRIND: &[&str] = &[
    "--quiet",
    "--error-exitcode=99",
    "--leak-check=full",
    "--errors-for-leak-kinds=definite",
    "--show-leak-kinds=definite",
];

/// Counts and prints results.
struct Runner {
    root: PathBuf,
    logs: PathBuf,
    passed: usize,
    failed: usize,
    failures: Vec<String>,
    /// Whether a "name ..." prefix is waiting on the current line.
    open_line: bool,
}

impl Runner {
    /// target/xtask/logs/<the step name, made a file name>.log
    fn log_path(&self, name: &str) -> PathBuf {
        let mut slug = String::new();
        for c in name.chars() {
            if c.is_ascii_alphanumeric() || c == '.' {
                slug.push(c);
            } else if !slug.ends_with('_') {
                slug.push('_');
            }
        }
        let slug: String = slug.trim_matches('_').chars().take(80).collect();
        self.logs.join(format!("{slug}.log"))
    }

    /// Prints the step's name before it runs, so slow steps show progress.
    fn start(&mut self, name: &str) {
        print!("{:<72} ", format!("[{:>2}] {name}", self.passed + self.failed + 1));
        let _ = std::io::stdout().flush();
        self.open_line = true;
    }

    /// Records a result. `detail` is shown (indented) on failure.
    fn record(&mut self, name: &str, ok: bool, elapsed: Duration, detail: &str) {
        if !self.open_line {
            print!("{:<72} ", format!("[{:>2}] {name}", self.passed + self.failed + 1));
        }
        self.open_line = false;
        println!("{} {:>8}", if ok { "PASS" } else { "FAIL" }, secs(elapsed));
        if ok {
            self.passed += 1;
        } else {
            self.failed += 1;
            self.failures.push(name.to_string());
            if !detail.is_empty() {
                println!("{}", detail.trim_end());
            }
        }
    }

    /// Runs an in-process step.
    fn step(&mut self, name: &str, f: impl FnOnce() -> Result<(), String>) -> bool {
        self.start(name);
        let t = Instant::now();
        let result = f();
        let detail = match &result {
            Ok(()) => String::new(),
            Err(e) => indent(e),
        };
        self.record(name, result.is_ok(), t.elapsed(), &detail);
        result.is_ok()
    }

    /// Runs a command with its output in a log; passes when it exits 0.
    fn command(&mut self, name: &str, cmd: Command, tail_lines: usize) -> bool {
        self.start(name);
        let log = self.log_path(name);
        let t = Instant::now();
        match run_logged(cmd, &log, None) {
            Ok(outcome) if outcome.success() => {
                self.record(name, true, t.elapsed(), "");
                true
            }
            Ok(outcome) => {
                let detail = format!("    {}\n{}", outcome.describe(), tail(&log, tail_lines));
                self.record(name, false, t.elapsed(), &detail);
                false
            }
            Err(e) => {
                self.record(name, false, t.elapsed(), &indent(&e));
                false
            }
        }
    }

    /// Runs program jobs (`width` at a time), recording each.
    fn programs(&mut self, jobs: Vec<Job>, width: usize) {
        run_many(jobs, width, |job, outcome| {
            let detail = if outcome.success() {
                String::new()
            } else {
                format!("    {}\n{}", outcome.describe(), tail(&job.log, TAIL_PROGRAM))
            };
            self.record(&job.name, outcome.success(), outcome.elapsed, &detail);
        });
    }

    fn skip(&self, what: &str) {
        println!("     SKIP {what}");
    }
}

fn indent(text: &str) -> String {
    text.lines().map(|l| format!("    {l}\n")).collect()
}

pub fn cmd(root: &Path, args: &[String]) -> Result<(), String> {
    if let Some(arg) = args.first() {
        return Err(format!("test-all takes no arguments (got {arg:?})"));
    }
    let work = target_dir(root).join("xtask");
    let logs = work.join("logs");
    let _ = std::fs::remove_dir_all(&logs);
    mkdir(&logs)?;
    let mut r = Runner { root: root.to_path_buf(), logs, passed: 0, failed: 0, failures: Vec::new(), open_line: false };
    let started = Instant::now();
    println!("test-all: logs in {}", r.logs.display());

    // 1-3: the Rust side.
    let mut fmt = cargo(root);
    fmt.args(["fmt", "--all", "--check"]);
    r.command("cargo fmt --all --check", fmt, TAIL_CARGO);
    let mut clippy = cargo(root);
    clippy.args(["clippy", "--workspace", "--all-targets", "--", "-D", "warnings"]);
    r.command("cargo clippy --workspace --all-targets -- -D warnings", clippy, TAIL_CARGO);
    let mut test = cargo(root);
    test.args(["test", "--workspace"]).env("INSTA_UPDATE", "no").env("CI", "true");
    r.command("cargo test --workspace (INSTA_UPDATE=no CI=true)", test, TAIL_CARGO);

    // 4-7: the header.
    r.step("cargo xtask header --check", || header::check(root));
    r.step("pymem.h's PYMEM_VERSION_MAJOR/MINOR/PATCH == Cargo.toml's version", || {
        packaging::header_version(root).map(|_| ())
    });
    header_alone(&mut r, &work.join("header-check"));
    xtask_c_sources(&mut r);

    // 8: the release library, then what needs it.
    let built = r.step("cargo build --release -p pymem", || {
        build_release(root, Some(&work.join("logs/cargo-build-release.log")))
    });
    if built {
        ffi_tests(&mut r);
        let dir = work.join("readme-example");
        r.step("README.md's C example builds (-Werror) and prints what it says", || readme_example(root, &dir));
        r.step("libpymem.so exports only pymem_*, exactly pymem.h's functions (nm -D)", || {
            packaging::exports(root).map(|_| ())
        });
        r.step("README.md's build-tree lines (no soname link made for them) give programs that start", || {
            packaging::build_tree(root, &work.join("build-tree"))
        });
        // Fails, never skips, without Chromium: .ci/run installs it.
        r.step("the seed's HTML report in headless Chromium: sections, marks, no console error, screenshot", || {
            report_check::check(root, &work.join("report")).map(|_| ())
        });
        r.step("the browser check finds the faults of a broken copy of the page", || {
            report_check::check_catches_faults(&work.join("report"))
        });
        dist_check(&mut r, &work.join("dist-check"));
    } else {
        r.skip("ffi-tests and the dist check (no release build)");
    }

    println!("test-all took {}", secs(started.elapsed()));
    if !r.failures.is_empty() {
        println!("failed: {}", r.failures.join("; "));
    }
    println!("{} passed, {} failed", r.passed, r.failed);
    if r.failed > 0 {
        std::process::exit(1);
    }
    Ok(())
}

/// The C example of README.md, the first ```c block, compiles with the
/// strict flags against the release library, runs, and prints the double
/// free the README says it prints: documentation that cannot rot.
fn readme_example(root: &Path, dir: &Path) -> Result<(), String> {
    let readme = std::fs::read_to_string(root.join("README.md")).map_err(|e| format!("reading README.md: {e}"))?;
    let start = readme.find("```c\n").ok_or("README.md has no ```c block")? + "```c\n".len();
    let len = readme[start..].find("```").ok_or("README.md's ```c block is not closed")?;
    let source = dir.join("readme_example.c");
    write_file(&source, &readme[start..start + len])?;
    let exe = dir.join("readme_example");
    let lib_dir = release_dir(root);
    let mut cc = Command::new("gcc");
    cc.current_dir(root).args(C_FLAGS).arg(&source).arg("-o").arg(&exe);
    cc.arg(format!("-L{}", lib_dir.display())).arg("-lpymem").arg(format!("-Wl,-rpath,{}", lib_dir.display()));
    output_checked(&mut cc)?;
    let printed = output_checked(&mut c_program(&exe, root))?;
    if !printed.contains("PYMEM_ERR_DOUBLE_FREE: pymem_free: double free") {
        return Err(format!("unexpected output: {printed}"));
    }
    Ok(())
}

/// include/pymem.h (and pymem.hpp) compile on their own, as C11 and C++17.
fn header_alone(r: &mut Runner, dir: &Path) {
    let root = r.root.clone();
    let include = format!("-I{}", root.join("include").display());
    let tu = dir.join("only_pymem_h.c");
    let tu_hpp = dir.join("only_pymem_hpp.cpp");
    let written = mkdir(dir)
        .and_then(|()| write_file(&tu, "#include \"pymem.h\"\n"))
        .and_then(|()| write_file(&tu_hpp, "#include \"pymem.hpp\"\n"));
    if let Err(e) = written {
        r.step("write header test files", || Err(e));
        return;
    }
    let mut c = Command::new("gcc");
    c.current_dir(&root).arg("-std=c11").args(STRICT).arg(&include);
    c.arg("-c").arg(&tu).arg("-o").arg(dir.join("c.o"));
    r.command("pymem.h alone: gcc -std=c11 -Wall -Wextra -Wpedantic -Werror", c, TAIL_PROGRAM);
    let mut cxx = Command::new("g++");
    cxx.current_dir(&root).args(["-x", "c++", "-std=c++17"]).args(STRICT).arg(&include);
    cxx.arg("-c").arg(&tu).arg("-o").arg(dir.join("cxx.o"));
    r.command("pymem.h alone: g++ -x c++ -std=c++17 -Wall -Wextra -Wpedantic -Werror", cxx, TAIL_PROGRAM);
    if root.join("include/pymem.hpp").exists() {
        let mut hpp = Command::new("g++");
        hpp.current_dir(&root).arg("-std=c++17").args(STRICT).arg(&include);
        hpp.arg("-c").arg(&tu_hpp).arg("-o").arg(dir.join("hpp.o"));
        r.command("pymem.hpp alone: g++ -std=c++17 -Wall -Wextra -Wpedantic -Werror", hpp, TAIL_PROGRAM);
    }
}

/// The C programs of `cargo xtask demo` and `bench` (xtask/c/*.c) compile
/// with the flags xtask builds them with: a broken demo or bench source is
/// caught here, not when someone next runs it.
fn xtask_c_sources(r: &mut Runner) {
    let root = r.root.clone();
    let mut sources: Vec<PathBuf> = match std::fs::read_dir(root.join("xtask/c")) {
        Ok(dir) => {
            dir.filter_map(|e| e.ok().map(|e| e.path())).filter(|p| p.extension().is_some_and(|x| x == "c")).collect()
        }
        Err(e) => {
            r.step("read xtask/c", || Err(e.to_string()));
            return;
        }
    };
    sources.sort();
    for source in sources {
        let rel = source.strip_prefix(&root).unwrap_or(&source).display().to_string();
        let mut cc = Command::new("gcc");
        cc.current_dir(&root)
            .args(XTASK_CFLAGS)
            .arg("-fsyntax-only")
            .arg(format!("-I{}", root.join("include").display()))
            .arg(&source);
        // bench_objects.c is built once per side; pymem's side here (the
        // CPython side needs Python's headers).
        if source.ends_with("bench_objects.c") {
            cc.arg("-DWITH_PYMEM");
        }
        r.command(&format!("{rel} compiles (gcc -std=gnu11 -Wall -Wextra -Werror)"), cc, TAIL_PROGRAM);
    }
}

/// One ffi-test program.
struct Program {
    source: PathBuf,
    /// Name under target/ffi-tests/.
    stem: String,
    cxx: bool,
}

/// Finds ffi-tests/*.c and *.cpp, sorted; a .cpp whose stem a .c already
/// uses is built as `<stem>_cpp`.
fn find_programs(root: &Path) -> Vec<Program> {
    let Ok(entries) = std::fs::read_dir(root.join("ffi-tests")) else {
        return Vec::new();
    };
    let mut sources: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file() && matches!(p.extension().and_then(|e| e.to_str()), Some("c" | "cpp")))
        .collect();
    sources.sort();
    let mut programs: Vec<Program> = Vec::new();
    for source in sources {
        let cxx = source.extension().is_some_and(|e| e == "cpp");
        let mut stem = source.file_stem().unwrap_or_default().to_string_lossy().into_owned();
        if programs.iter().any(|p| p.stem == stem) {
            stem.push_str("_cpp");
        }
        programs.push(Program { source, stem, cxx });
    }
    programs
}

fn ffi_tests(r: &mut Runner) {
    let root = r.root.clone();
    let programs = find_programs(&root);
    if programs.is_empty() {
        println!("     (no ffi-tests/*.c or *.cpp programs found: nothing to build or run)");
        return;
    }
    let out_dir = target_dir(&root).join("ffi-tests");
    if let Err(e) = mkdir(&out_dir) {
        r.step("create target/ffi-tests", || Err(e));
        return;
    }
    let lib_dir = release_dir(&root);
    let mut built = Vec::new();
    for p in &programs {
        let (compiler, flags) = if p.cxx { ("g++", CXX_FLAGS) } else { ("gcc", C_FLAGS) };
        let exe = out_dir.join(&p.stem);
        let _ = std::fs::remove_file(&exe);
        let mut cmd = Command::new(compiler);
        cmd.current_dir(&root).args(flags).arg(&p.source).arg("-o").arg(&exe);
        cmd.arg(format!("-L{}", lib_dir.display())).arg("-lpymem");
        cmd.arg(format!("-Wl,-rpath,{}", lib_dir.display())).arg("-lpthread");
        let rel = p.source.strip_prefix(&root).unwrap_or(&p.source).display().to_string();
        if r.command(&format!("build {rel}"), cmd, TAIL_PROGRAM) {
            built.push((p, exe));
        }
    }

    // Native runs one at a time: some programs use threads and timing.
    let native: Vec<Job> = built
        .iter()
        .map(|(p, exe)| {
            let name = format!("run {} (native)", p.stem);
            Job { log: r.log_path(&name), name, cmd: c_program(exe, &root), timeout: Some(NATIVE_TIMEOUT) }
        })
        .collect();
    r.programs(native, 1);

    sanitized(r, &programs);

    let under_valgrind: Vec<_> = built.iter().filter(|(p, _)| !p.stem.starts_with("native_")).collect();
    if under_valgrind.is_empty() {
        return;
    }
    if !have("valgrind") {
        println!();
        println!("     !!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!");
        println!("     !!  valgrind is not installed: {} program(s) NOT checked for", under_valgrind.len());
        println!("     !!  memory errors and leaks. Install it (apt-get install valgrind).");
        println!("     !!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!");
        r.step("valgrind is installed", || Err("valgrind not found on PATH".into()));
        return;
    }
    // Valgrind serialises each program's threads onto one core, so running
    // them side by side uses the machine without changing their behaviour.
    let mut jobs = Vec::new();
    for (p, exe) in under_valgrind {
        let name = format!("run {} (valgrind)", p.stem);
        let mut cmd = c_program("valgrind", &root);
        cmd.args(VALGRIND).arg(exe).env("PYMEM_FFI_UNDER_VALGRIND", "1");
        jobs.push(Job { log: r.log_path(&name), name, cmd, timeout: Some(VALGRIND_TIMEOUT) });
        if starts_threads(&p.source) {
            let name = format!("run {} (helgrind: data races)", p.stem);
            let mut cmd = c_program("valgrind", &root);
            cmd.args(HELGRIND).arg(exe).env("PYMEM_FFI_UNDER_VALGRIND", "1");
            jobs.push(Job { log: r.log_path(&name), name, cmd, timeout: Some(VALGRIND_TIMEOUT) });
        }
    }
    r.programs(jobs, cpus());
}

/// Whether an ffi-test starts threads: then helgrind checks it for races.
fn starts_threads(source: &Path) -> bool {
    std::fs::read_to_string(source).is_ok_and(|text| text.contains("pthread_create") || text.contains("std::thread"))
}

/// Builds every ffi-test but the `native_` ones with AddressSanitizer and
/// UndefinedBehaviorSanitizer and runs each natively, one at a time (see the
/// module docs). A build failure or any report fails that program.
fn sanitized(r: &mut Runner, programs: &[Program]) {
    let root = r.root.clone();
    let out_dir = target_dir(&root).join("ffi-tests-asan");
    if let Err(e) = mkdir(&out_dir) {
        r.step("create target/ffi-tests-asan", || Err(e));
        return;
    }
    let lib_dir = release_dir(&root);
    let mut builds = Vec::new();
    let mut exes = Vec::new();
    for p in programs.iter().filter(|p| !p.stem.starts_with("native_")) {
        let (compiler, flags) = if p.cxx { ("g++", CXX_FLAGS) } else { ("gcc", C_FLAGS) };
        let exe = out_dir.join(&p.stem);
        let _ = std::fs::remove_file(&exe);
        let mut cmd = Command::new(compiler);
        cmd.current_dir(&root).args(flags.iter().filter(|f| **f != "-Werror")).args(SANITIZE);
        cmd.arg(&p.source).arg("-o").arg(&exe);
        cmd.arg(format!("-L{}", lib_dir.display())).arg("-lpymem");
        cmd.arg(format!("-Wl,-rpath,{}", lib_dir.display())).arg("-lpthread");
        let rel = p.source.strip_prefix(&root).unwrap_or(&p.source).display().to_string();
        let name = format!("build {rel} (-fsanitize=address,undefined)");
        builds.push(Job { log: r.log_path(&name), name, cmd, timeout: None });
        exes.push((p.stem.clone(), exe));
    }
    r.programs(builds, cpus());
    let runs: Vec<Job> = exes
        .into_iter()
        .filter(|(_, exe)| exe.exists())
        .map(|(stem, exe)| {
            let name = format!("run {stem} (ASan + UBSan)");
            let mut cmd = c_program(&exe, &root);
            cmd.env("ASAN_OPTIONS", ASAN_OPTIONS).env("UBSAN_OPTIONS", UBSAN_OPTIONS);
            cmd.env("PYMEM_FFI_UNDER_VALGRIND", "1");
            Job { log: r.log_path(&name), name, cmd, timeout: Some(NATIVE_TIMEOUT) }
        })
        .collect();
    r.programs(runs, 1);
}

/// `cargo xtask dist` into a scratch prefix, then a program built with
/// pkg-config against it (shared and static), the CMake package, and the
/// soname.
fn dist_check(r: &mut Runner, work: &Path) {
    let root = r.root.clone();
    let prefix = work.join("prefix");
    let installed = r.step("cargo xtask dist --prefix <target>/xtask/dist-check/prefix", || {
        let _ = std::fs::remove_dir_all(work);
        dist::install(&root, &prefix).map(|_| ())
    });
    if !installed {
        r.skip("the pkg-config programs and the soname check (dist failed)");
        return;
    }
    let version = workspace_version(&root).unwrap_or_default();
    let pkg_config_path = prefix.join("lib/pkgconfig");
    let pkg_config = |args: &[&str]| -> Result<Vec<String>, String> {
        let mut cmd = Command::new("pkg-config");
        cmd.args(args).arg("pymem").env("PKG_CONFIG_PATH", &pkg_config_path);
        Ok(output_checked(&mut cmd)?.split_whitespace().map(String::from).collect())
    };
    let source = root.join("xtask/c/dist_smoke.c");
    let lib = prefix.join("lib");

    let shared = work.join("smoke_shared");
    r.step("pkg-config --cflags --libs pymem: build and run a program", || {
        let flags = pkg_config(&["--cflags", "--libs"])?;
        let mut cc = Command::new("gcc");
        cc.arg("-std=c11").args(STRICT).arg(&source).arg("-o").arg(&shared).args(&flags);
        output_checked(&mut cc)?;
        let mut run = c_program(&shared, &root);
        run.arg(&version).env("LD_LIBRARY_PATH", &lib);
        output_checked(&mut run)?;
        let needed = output_checked(Command::new("readelf").arg("-d").arg(&shared))?;
        if !needed.contains("Shared library: [libpymem.so.0]") {
            return Err(format!("{} does not need libpymem.so.0:\n{needed}", shared.display()));
        }
        Ok(())
    });

    let fixed = work.join("smoke_static");
    r.step("pkg-config --static: link libpymem.a and run", || {
        let flags = pkg_config(&["--cflags", "--libs", "--static"])?;
        // `-l:libpymem.a` picks the archive although libpymem.so sits beside it.
        let flags: Vec<String> =
            flags.into_iter().map(|f| if f == "-lpymem" { "-l:libpymem.a".to_string() } else { f }).collect();
        let mut cc = Command::new("gcc");
        cc.arg("-std=c11").args(STRICT).arg(&source).arg("-o").arg(&fixed).args(&flags);
        output_checked(&mut cc).map_err(|e| format!("{}\n{e}", show(&cc)))?;
        let mut run = c_program(&fixed, &root);
        run.arg(&version);
        output_checked(&mut run)?;
        Ok(())
    });

    r.step("CMake: find_package(pymem) from a moved dist prefix; shared, static, C++ consumers run", || {
        packaging::cmake_consumer(&root, &prefix, &work.join("cmake")).map(|_| ())
    });

    let real = lib.join(format!("libpymem.so.{version}"));
    r.step(&format!("readelf -d lib/libpymem.so.{version}: SONAME libpymem.so.0"), || {
        let dynamic = output_checked(Command::new("readelf").arg("-d").arg(&real))?;
        let soname = dynamic.lines().find(|l| l.contains("(SONAME)"));
        match soname {
            Some(line) if line.contains("[libpymem.so.0]") => Ok(()),
            Some(line) => Err(format!("wrong soname: {}", line.trim())),
            None => Err(format!("{} has no SONAME", real.display())),
        }
    });
}

#[cfg(test)]
mod tests {
    use super::find_programs;

    fn scratch(name: &str) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("xtask-test-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn no_ffi_tests_folder_or_an_empty_one_means_no_programs() {
        let root = scratch("empty");
        assert!(find_programs(&root).is_empty());
        std::fs::create_dir(root.join("ffi-tests")).unwrap();
        std::fs::write(root.join("ffi-tests/check.h"), "").unwrap();
        assert!(find_programs(&root).is_empty());
        let _ = std::fs::remove_dir_all(&root);
    }

    #[test]
    fn a_folder_in_ffi_tests_is_not_a_program() {
        // ffi-tests/cmake-consumer/ holds a CMake project with main.c.
        let root = scratch("folder");
        std::fs::create_dir_all(root.join("ffi-tests/cmake-consumer")).unwrap();
        std::fs::write(root.join("ffi-tests/cmake-consumer/main.c"), "").unwrap();
        std::fs::write(root.join("ffi-tests/a.c"), "").unwrap();
        let names: Vec<String> = find_programs(&root).into_iter().map(|p| p.stem).collect();
        assert_eq!(names, ["a"]);
        let _ = std::fs::remove_dir_all(&root);
    }

    #[test]
    fn programs_are_sorted_and_a_cpp_twin_gets_its_own_name() {
        let root = scratch("twins");
        std::fs::create_dir(root.join("ffi-tests")).unwrap();
        for f in ["b.c", "a.cpp", "a.c", "native_x.c", "notes.txt"] {
            std::fs::write(root.join("ffi-tests").join(f), "").unwrap();
        }
        let names: Vec<(String, bool)> = find_programs(&root).into_iter().map(|p| (p.stem, p.cxx)).collect();
        let expected = [("a", false), ("a_cpp", true), ("b", false), ("native_x", false)];
        let expected: Vec<(String, bool)> = expected.iter().map(|(s, c)| (s.to_string(), *c)).collect();
        assert_eq!(names, expected);
        let _ = std::fs::remove_dir_all(&root);
    }
}
