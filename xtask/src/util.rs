//! Helpers shared by the subcommands: paths, the release build, running
//! commands with logs and time limits, and number formatting.
//!
//! Every external tool is run through `std::process::Command`; nothing here
//! goes through a shell.

use std::ffi::OsStr;
use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// The workspace root (the folder above xtask/).
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives one level below the workspace root")
        .to_path_buf()
}

/// A `cargo` command: the cargo that runs us (`$CARGO`), as cargo-xtask advises.
pub fn cargo(root: &Path) -> Command {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(root);
    cmd
}

/// A command that runs a C program we built. `cargo run` puts
/// target/debug/deps and the toolchain's lib folders on LD_LIBRARY_PATH;
/// our programs must find libpymem only through their rpath (or an explicit
/// LD_LIBRARY_PATH), so that variable is dropped.
pub fn c_program(path: impl AsRef<OsStr>, root: &Path) -> Command {
    let mut cmd = Command::new(path);
    cmd.current_dir(root).env_remove("LD_LIBRARY_PATH");
    cmd
}

/// Whether `program` is on PATH (like `command -v`).
pub fn have(program: &str) -> bool {
    let Some(path) = std::env::var_os("PATH") else {
        return false;
    };
    std::env::split_paths(&path).any(|dir| {
        let candidate = dir.join(program);
        fs::metadata(&candidate)
            .map(|m| m.is_file() && std::os::unix::fs::PermissionsExt::mode(&m.permissions()) & 0o111 != 0)
            .unwrap_or(false)
    })
}

/// The `[workspace.package] version` of the root Cargo.toml.
pub fn workspace_version(root: &Path) -> Result<String, String> {
    let text = fs::read_to_string(root.join("Cargo.toml")).map_err(|e| format!("reading Cargo.toml: {e}"))?;
    let mut in_section = false;
    for line in text.lines() {
        let line = line.trim();
        if line.starts_with('[') {
            in_section = line == "[workspace.package]";
            continue;
        }
        if !in_section {
            continue;
        }
        if let Some((key, value)) = line.split_once('=') {
            if key.trim() == "version" {
                return Ok(value.trim().trim_matches('"').to_string());
            }
        }
    }
    Err("Cargo.toml has no [workspace.package] version".into())
}

/// Cargo's target folder: `$CARGO_TARGET_DIR` (relative to the root) or
/// `<root>/target`. Everything xtask builds goes below it.
pub fn target_dir(root: &Path) -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) if !dir.is_empty() => root.join(dir),
        _ => root.join("target"),
    }
}

/// The release profile's output folder, absolute.
pub fn release_dir(root: &Path) -> PathBuf {
    target_dir(root).join("release")
}

/// The flags xtask's own C programs (xtask/c/*.c) are built with.
pub const XTASK_CFLAGS: &[&str] = &["-std=gnu11", "-O2", "-Wall", "-Wextra", "-Werror"];

/// `gcc` with [`XTASK_CFLAGS`] compiling `source` into `exe`; the caller
/// adds what the program links against (see [`link_pymem`]) and runs it.
pub fn gcc_program(root: &Path, source: &Path, exe: &Path) -> Command {
    let mut cmd = Command::new("gcc");
    cmd.current_dir(root).args(XTASK_CFLAGS).arg(source).arg("-o").arg(exe);
    cmd
}

/// Points a C build at include/pymem.h and the release libpymem.so (found
/// at run time through an rpath).
pub fn link_pymem(cmd: &mut Command, root: &Path) {
    let lib = release_dir(root);
    cmd.arg(format!("-I{}", root.join("include").display()))
        .arg(format!("-L{}", lib.display()))
        .arg("-lpymem")
        .arg(format!("-Wl,-rpath,{}", lib.display()));
}

/// `cargo build --release -p pymem`, then the `libpymem.so.0` link beside
/// `libpymem.so`: the library's soname is `libpymem.so.0`, so programs linked
/// against target/release look for that name at run time. Cargo's output goes
/// to `log` when given, else to the terminal.
pub fn build_release(root: &Path, log: Option<&Path>) -> Result<(), String> {
    let mut cmd = cargo(root);
    cmd.args(["build", "--release", "-p", "pymem"]);
    match log {
        Some(log) => {
            let outcome = run_logged(cmd, log, None)?;
            if !outcome.success() {
                return Err(format!("cargo build --release -p pymem {}", outcome.describe()));
            }
        }
        None => run_checked(&mut cmd)?,
    }
    let dir = release_dir(root);
    if !dir.join("libpymem.so").exists() {
        return Err(format!("{} was not produced", dir.join("libpymem.so").display()));
    }
    symlink_force("libpymem.so", &dir.join("libpymem.so.0"))
}

/// Creates (or replaces) the symbolic link `link` → `target`.
pub fn symlink_force(target: &str, link: &Path) -> Result<(), String> {
    if fs::symlink_metadata(link).is_ok() {
        fs::remove_file(link).map_err(|e| format!("removing {}: {e}", link.display()))?;
    }
    std::os::unix::fs::symlink(target, link).map_err(|e| format!("linking {} -> {target}: {e}", link.display()))
}

/// Creates a folder and its parents.
pub fn mkdir(dir: &Path) -> Result<(), String> {
    fs::create_dir_all(dir).map_err(|e| format!("creating {}: {e}", dir.display()))
}

/// Writes a file, creating its folder.
pub fn write_file(path: &Path, text: &str) -> Result<(), String> {
    if let Some(dir) = path.parent() {
        mkdir(dir)?;
    }
    fs::write(path, text).map_err(|e| format!("writing {}: {e}", path.display()))
}

/// Runs `cmd` with the terminal as its output; fails on a non-zero exit.
pub fn run_checked(cmd: &mut Command) -> Result<(), String> {
    let status = cmd.status().map_err(|e| format!("cannot start {}: {e}", show(cmd)))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("{} failed ({status})", show(cmd)))
    }
}

/// Runs `cmd` and returns its stdout; fails (with its stderr) on a non-zero exit.
pub fn output_checked(cmd: &mut Command) -> Result<String, String> {
    let out = cmd.output().map_err(|e| format!("cannot start {}: {e}", show(cmd)))?;
    if !out.status.success() {
        return Err(format!(
            "{} failed ({}):\n{}{}",
            show(cmd),
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// A command line as text, for messages.
pub fn show(cmd: &Command) -> String {
    let mut s = cmd.get_program().to_string_lossy().into_owned();
    for arg in cmd.get_args() {
        s.push(' ');
        s.push_str(&arg.to_string_lossy());
    }
    s
}

/// How a logged command ended.
pub struct Outcome {
    /// `None` when it ran past its time limit and was killed.
    pub status: Option<ExitStatus>,
    pub elapsed: Duration,
}

impl Outcome {
    pub fn success(&self) -> bool {
        self.status.is_some_and(|s| s.success())
    }

    /// "exited with 3", "was killed by signal 11", "timed out after 120 s".
    pub fn describe(&self) -> String {
        use std::os::unix::process::ExitStatusExt;
        match self.status {
            None => format!("timed out after {:.0} s", self.elapsed.as_secs_f64()),
            Some(s) => match (s.code(), s.signal()) {
                (Some(code), _) => format!("exited with {code}"),
                (None, Some(sig)) => format!("was killed by signal {sig}"),
                _ => format!("ended with {s}"),
            },
        }
    }
}

/// One command to run with its output in a log file.
pub struct Job {
    pub name: String,
    pub cmd: Command,
    pub log: PathBuf,
    pub timeout: Option<Duration>,
}

/// Starts `cmd` with stdout and stderr both appended to a fresh `log`.
fn spawn_logged(cmd: &mut Command, log: &Path) -> Result<Child, String> {
    if let Some(dir) = log.parent() {
        mkdir(dir)?;
    }
    let mut file = File::create(log).map_err(|e| format!("creating {}: {e}", log.display()))?;
    let _ = writeln!(file, "$ {}", show(cmd));
    let err = file.try_clone().map_err(|e| e.to_string())?;
    cmd.stdin(Stdio::null())
        .stdout(Stdio::from(file))
        .stderr(Stdio::from(err))
        .spawn()
        .map_err(|e| format!("cannot start {}: {e}", show(cmd)))
}

/// Runs one command to completion (or its time limit), output in `log`.
pub fn run_logged(cmd: Command, log: &Path, timeout: Option<Duration>) -> Result<Outcome, String> {
    let mut outcome = None;
    let job = Job { name: String::new(), cmd, log: log.to_path_buf(), timeout };
    run_many(vec![job], 1, |_, o| outcome = Some(o));
    outcome.ok_or_else(|| "internal error: no outcome".to_string())
}

/// Runs `jobs`, at most `width` at a time, calling `done` (in completion
/// order) with each job and how it ended. A job that cannot be started is
/// reported as exiting with status 127 and its reason in its log.
pub fn run_many(jobs: Vec<Job>, width: usize, mut done: impl FnMut(&Job, Outcome)) {
    let mut waiting = jobs.into_iter();
    let mut running: Vec<(Job, Child, Instant)> = Vec::new();
    loop {
        while running.len() < width.max(1) {
            let Some(mut job) = waiting.next() else { break };
            match spawn_logged(&mut job.cmd, &job.log) {
                Ok(child) => running.push((job, child, Instant::now())),
                Err(e) => {
                    let _ = fs::write(&job.log, format!("{e}\n"));
                    use std::os::unix::process::ExitStatusExt;
                    let status = Some(ExitStatus::from_raw(127 << 8));
                    done(&job, Outcome { status, elapsed: Duration::ZERO });
                }
            }
        }
        if running.is_empty() {
            return;
        }
        let mut i = 0;
        let mut progressed = false;
        while i < running.len() {
            let (job, child, start) = &mut running[i];
            let elapsed = start.elapsed();
            let status = match child.try_wait() {
                Ok(Some(status)) => Some(Some(status)),
                Ok(None) if job.timeout.is_some_and(|t| elapsed > t) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    Some(None)
                }
                Ok(None) => None,
                Err(_) => Some(child.wait().ok()),
            };
            match status {
                Some(status) => {
                    let (job, _, _) = running.swap_remove(i);
                    done(&job, Outcome { status, elapsed });
                    progressed = true;
                }
                None => i += 1,
            }
        }
        if !progressed {
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

/// The last `n` lines of a file, each indented, for failure reports.
pub fn tail(path: &Path, n: usize) -> String {
    let bytes = fs::read(path).unwrap_or_default();
    let text = String::from_utf8_lossy(&bytes);
    let lines: Vec<&str> = text.lines().collect();
    let skip = lines.len().saturating_sub(n);
    let mut out = String::new();
    if skip > 0 {
        out.push_str(&format!("    ... ({skip} earlier lines in {})\n", path.display()));
    }
    for line in &lines[skip..] {
        out.push_str("    | ");
        out.push_str(line);
        out.push('\n');
    }
    out
}

/// 12345678 → "12,345,678".
pub fn thousands(v: u64) -> String {
    let digits = v.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// Seconds with one decimal, for step durations.
pub fn secs(d: Duration) -> String {
    format!("{:.1} s", d.as_secs_f64())
}

/// Number of CPUs to use for parallel jobs.
pub fn cpus() -> usize {
    std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1)
}
