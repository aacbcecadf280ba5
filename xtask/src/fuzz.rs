//! `cargo xtask fuzz [--calls N] [--seed S] [--max-len L] [--replay FILE]`:
//! builds the fuzzer (crates/pymem-fuzz) in release mode and runs it. A
//! failing sequence is printed shrunk and saved under
//! crates/pymem-fuzz/regressions/, which `cargo test -p pymem-fuzz` replays.

use std::path::Path;

use crate::util::{cargo, run_checked};

const USAGE: &str = "usage: cargo xtask fuzz [--calls N (100000)] [--seed S (1)] [--max-len L (200)] [--replay FILE]";

pub fn cmd(root: &Path, args: &[String]) -> Result<(), String> {
    let mut i = 0;
    while i < args.len() {
        match args[i].as_str() {
            "--calls" | "--seed" | "--max-len" | "--replay" if i + 1 < args.len() => i += 2,
            "--no-save" => i += 1,
            other => return Err(format!("fuzz: unexpected argument {other:?}\n{USAGE}")),
        }
    }
    let mut run = cargo(root);
    run.args(["run", "--quiet", "--release", "-p", "pymem-fuzz", "--"]).args(args);
    run_checked(&mut run)
}
