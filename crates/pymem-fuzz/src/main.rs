//! `pymem-fuzz [--calls N] [--seed S] [--max-len L] [--replay FILE]`, run
//! by `cargo xtask fuzz`. Exit status 1 on a failure (printed shrunk and
//! saved under crates/pymem-fuzz/regressions/).
//!
//! The process supervises itself: the fuzzing runs in a child process
//! (`--child`). A failed check is shrunk in the child; a crash (a signal:
//! something no check could catch) ends the child, and the supervisor
//! reads which sequence was running from a marker file, then shrinks it
//! by replaying candidates each in a process of its own.

use std::path::PathBuf;
use std::process::Command;
use std::time::Instant;

use pymem_fuzz::op::Sequence;
use pymem_fuzz::{fuzz, regressions_dir, run_sequence_traced, save, sequence_of, shrink, FuzzConfig};

fn main() {
    let mut cfg = FuzzConfig { calls: 100_000, seed: 1, max_len: 200, save_to: Some(regressions_dir()), marker: None };
    let mut replay = None;
    let mut trace = false;
    let mut child = false;
    let all_args: Vec<String> = std::env::args().skip(1).collect();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = |name: &str| args.next().unwrap_or_else(|| die(&format!("{name} needs a value")));
        match arg.as_str() {
            "--calls" => cfg.calls = parse(&value("--calls")),
            "--seed" => cfg.seed = parse(&value("--seed")),
            "--max-len" => cfg.max_len = parse::<u64>(&value("--max-len")).max(1) as usize,
            "--replay" => replay = Some(value("--replay")),
            "--no-save" => cfg.save_to = None,
            "--trace" => trace = true,
            "--child" => child = true,
            "--save-to" => cfg.save_to = Some(PathBuf::from(value("--save-to"))),
            other => die(&format!(
                "unknown argument {other:?} (usage: pymem-fuzz [--calls N] [--seed S] [--max-len L] [--replay FILE [--trace]] [--no-save] [--save-to DIR])"
            )),
        }
    }
    if let Some(file) = replay {
        let text = std::fs::read_to_string(&file).unwrap_or_else(|e| die(&format!("{file}: {e}")));
        let seq = Sequence::parse(&text).unwrap_or_else(|e| die(&format!("{file}: {e}")));
        match run_sequence_traced(&seq, trace) {
            Ok(c) => println!("{file}: passes ({} calls)", c.calls),
            Err(e) => {
                println!("{file}: FAILS: {e}");
                std::process::exit(1);
            }
        }
        return;
    }
    if !child && replay.is_none() {
        supervise(&cfg, &all_args);
    }
    cfg.marker = Some(marker_path());
    let start = Instant::now();
    println!("pymem-fuzz: seed {}, {} calls, sequences of 1..={} steps", cfg.seed, cfg.calls, cfg.max_len);
    let result = fuzz(&cfg, |s| {
        if s.sequences % 20_000 == 0 {
            eprintln!("  ... {} calls, {} sequences, {:.0} s", s.calls, s.sequences, start.elapsed().as_secs_f64());
        }
    });
    match result {
        Ok(summary) => {
            print!("{}", summary.report());
            println!("no failure ({:.1} s)", start.elapsed().as_secs_f64());
        }
        Err(f) => {
            println!("FAILURE in sequence {} of seed {}: {}", f.sequence_index, cfg.seed, f.message);
            println!("shrunk to {} steps:\n{}", f.shrunk.ops.len(), f.shrunk.to_text());
            if let Some(p) = &f.saved {
                println!("saved as {} (tests/fuzz.rs replays it)", p.display());
            }
            std::process::exit(1);
        }
    }
}

fn parse<T: std::str::FromStr>(s: &str) -> T {
    s.replace('_', "").parse().unwrap_or_else(|_| die(&format!("not a number: {s:?}")))
}

fn die(msg: &str) -> ! {
    eprintln!("pymem-fuzz: {msg}");
    std::process::exit(2)
}

/// Where the child notes the sequence it is running.
fn marker_path() -> PathBuf {
    std::env::temp_dir().join(format!("pymem-fuzz-{}.running", std::process::id()))
}

/// Runs the fuzzing in a child process; if the child dies of a signal,
/// shrinks the sequence it was running in processes of their own, prints
/// and saves it. Exits with the child's status (1 after a crash).
fn supervise(cfg: &FuzzConfig, args: &[String]) -> ! {
    let exe = std::env::current_exe().unwrap_or_else(|e| die(&format!("current_exe: {e}")));
    let mut cmd = Command::new(&exe);
    cmd.args(args).arg("--child");
    let mut child = cmd.spawn().unwrap_or_else(|e| die(&format!("cannot start the fuzzing process: {e}")));
    let marker = std::env::temp_dir().join(format!("pymem-fuzz-{}.running", child.id()));
    let status = child.wait().unwrap_or_else(|e| die(&format!("wait: {e}")));
    let running = std::fs::read_to_string(&marker).ok();
    let _ = std::fs::remove_file(&marker);
    if status.code().is_some() {
        std::process::exit(status.code().unwrap_or(1));
    }
    let Some(running) = running else { die(&format!("the fuzzing process died ({status}) before its first sequence")) };
    let nums: Vec<u64> = running.split_whitespace().filter_map(|w| w.parse().ok()).collect();
    let [seed, index, max_len] = nums[..] else { die("unreadable marker") };
    println!("CRASH ({status}) in sequence {index} of seed {seed}: shrinking it, one process per try");
    let seq = sequence_of(seed, index, max_len as usize);
    let file = std::env::temp_dir().join(format!("pymem-fuzz-{}.candidate", std::process::id()));
    let crashes = |s: &Sequence| -> Option<String> {
        std::fs::write(&file, s.to_text()).ok()?;
        let out = Command::new(&exe).arg("--replay").arg(&file).arg("--child").output().ok()?;
        match out.status.code() {
            Some(0) => None,
            Some(_) => Some(String::from_utf8_lossy(&out.stdout).trim().to_string()),
            None => Some(format!("the process died: {}", out.status)),
        }
    };
    let first = crashes(&seq).unwrap_or_else(|| "the crash did not happen again alone".into());
    let (shrunk, message) = shrink::shrink(seq, first, crashes);
    let _ = std::fs::remove_file(&file);
    println!("FAILURE in sequence {index} of seed {seed}: {message}");
    println!("shrunk to {} steps:\n{}", shrunk.ops.len(), shrunk.to_text());
    if let Some(dir) = &cfg.save_to {
        if let Ok(p) = save(dir, seed, index, &shrunk, &format!("crash: {message}")) {
            println!("saved as {} (tests/fuzz.rs replays it)", p.display());
        }
    }
    std::process::exit(1)
}
