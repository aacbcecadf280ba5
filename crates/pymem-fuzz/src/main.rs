//! `pymem-fuzz [--calls N] [--seed S] [--max-len L] [--replay FILE]`, run
//! by `cargo xtask fuzz`. Exit status 1 on a failure (printed shrunk and
//! saved under crates/pymem-fuzz/regressions/).

use std::time::Instant;

use pymem_fuzz::op::Sequence;
use pymem_fuzz::{fuzz, regressions_dir, run_sequence_traced, FuzzConfig};

fn main() {
    let mut cfg = FuzzConfig { calls: 100_000, seed: 1, max_len: 200, save_to: Some(regressions_dir()) };
    let mut replay = None;
    let mut trace = false;
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
            other => die(&format!(
                "unknown argument {other:?} (usage: pymem-fuzz [--calls N] [--seed S] [--max-len L] [--replay FILE [--trace]] [--no-save])"
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
