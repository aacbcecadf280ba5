//! pymem's own fuzzer (issue 11): random call sequences over the whole C
//! ABI, checked against a model after every step and at the end of every
//! sequence (see [`world`]). `cargo xtask fuzz [--calls N] [--seed S]`
//! runs it; a failing sequence is shrunk, printed and saved under
//! `crates/pymem-fuzz/regressions/`, which `tests/fuzz.rs` replays.
//!
//! The crate calls the C ABI as a C host does, with invalid pointers mixed
//! among valid ones on purpose: the safety of every such call rests on the
//! ABI's own validation, which is what is being tested.

pub mod op;
pub mod rng;
pub mod shrink;
pub mod world;

use std::collections::BTreeMap;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};

use op::Sequence;
use rng::Rng;
use world::World;

/// Runs one sequence: `Ok` with what it did, or the first failed check
/// (a panic inside counts as one).
pub fn run_sequence(seq: &Sequence) -> Result<world::Counts, String> {
    run_sequence_traced(seq, false)
}

/// [`run_sequence`], printing each step and the handles after it.
pub fn run_sequence_traced(seq: &Sequence, trace: bool) -> Result<world::Counts, String> {
    let result = catch_unwind(AssertUnwindSafe(|| {
        let mut w = World::new(seq)?;
        for (i, op) in seq.ops.iter().enumerate() {
            if trace {
                println!("{i}: {}", op.to_line());
            }
            abort_hook(op);
            let r = w.step(op);
            if trace {
                print!("{}", w.describe_handles());
            }
            r.map_err(|e| format!("step {i} ({}): {e}", op.to_line()))?;
        }
        w.finish().map_err(|e| format!("at the end: {e}"))
    }));
    match result {
        Ok(r) => r,
        Err(payload) => {
            let what = payload
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "a panic".into());
            Err(format!("panic: {what}"))
        }
    }
}

/// Settings of a run.
#[derive(Clone, Debug)]
pub struct FuzzConfig {
    /// Stop after at least this many calls.
    pub calls: u64,
    pub seed: u64,
    /// Steps per sequence: 1..=max_len.
    pub max_len: usize,
    /// Where a failing sequence is saved (None: not saved).
    pub save_to: Option<PathBuf>,
    /// A file that gets the sequence about to run (`seed index max_len`)
    /// before each one, so that a supervisor can tell which sequence
    /// crashed the process (a crash cannot be caught in-process).
    pub marker: Option<PathBuf>,
}

/// What a run did.
#[derive(Default, Debug, Clone)]
pub struct Summary {
    pub calls: u64,
    pub sequences: u64,
    pub statuses: BTreeMap<&'static str, u64>,
    pub finalized: u64,
    pub deallocs: u64,
    pub weak_callbacks: u64,
    pub gc_callbacks: u64,
}

impl Summary {
    fn add(&mut self, c: &world::Counts) {
        self.calls += c.calls;
        self.sequences += 1;
        for (k, v) in &c.statuses {
            *self.statuses.entry(k).or_default() += v;
        }
        self.finalized += c.finalized;
        self.deallocs += c.deallocs;
        self.weak_callbacks += c.weak_callbacks;
        self.gc_callbacks += c.gc_callbacks;
    }

    pub fn report(&self) -> String {
        let mut s = format!("{} calls in {} sequences\nstatuses:\n", self.calls, self.sequences);
        for (k, v) in &self.statuses {
            s.push_str(&format!("  {k:<34} {v}\n"));
        }
        s.push_str(&format!(
            "host callbacks: {} finalizers, {} deallocs, {} weakref callbacks, {} gc callbacks\n",
            self.finalized, self.deallocs, self.weak_callbacks, self.gc_callbacks
        ));
        s
    }
}

/// A failure: the shrunk sequence, its message, where it was saved.
#[derive(Debug)]
pub struct Failure {
    pub sequence_index: u64,
    pub message: String,
    pub shrunk: Sequence,
    pub saved: Option<PathBuf>,
}

/// The sequence number `i` of a run with `seed`: reproducible alone.
pub fn sequence_of(seed: u64, i: u64, max_len: usize) -> Sequence {
    let mut rng = Rng::new(seed ^ i.wrapping_mul(0xA076_1D64_78BD_642F));
    Sequence::random(&mut rng, max_len)
}

/// Runs sequences until `cfg.calls` calls were made; the first failure is
/// shrunk and saved.
pub fn fuzz(cfg: &FuzzConfig, mut progress: impl FnMut(&Summary)) -> Result<Summary, Box<Failure>> {
    let mut summary = Summary::default();
    let mut i = 0;
    while summary.calls < cfg.calls {
        let seq = sequence_of(cfg.seed, i, cfg.max_len);
        if let Some(m) = &cfg.marker {
            let _ = std::fs::write(m, format!("{} {i} {}\n", cfg.seed, cfg.max_len));
        }
        match run_sequence(&seq) {
            Ok(c) => summary.add(&c),
            Err(first) => {
                let (shrunk, message) = shrink::shrink(seq, first, |s| run_sequence(s).err());
                let saved = cfg.save_to.as_deref().and_then(|dir| save(dir, cfg.seed, i, &shrunk, &message).ok());
                return Err(Box::new(Failure { sequence_index: i, message, shrunk, saved }));
            }
        }
        i += 1;
        if i % 1000 == 0 {
            progress(&summary);
        }
    }
    Ok(summary)
}

/// Test hook for the crash path: with `PYMEM_FUZZ_ABORT_ON=<step kind>` in
/// the environment, a step of that kind aborts the process (as a crash in
/// pymem would), so that a test can check that the supervisor shrinks and
/// saves crashing sequences.
pub fn abort_hook(op: &op::Op) {
    if let Some(kind) = std::env::var_os("PYMEM_FUZZ_ABORT_ON") {
        if kind.to_str() == Some(op.kind.name()) {
            std::process::abort();
        }
    }
}

/// Saves a failing sequence as a regression case (`seed-S-seq-I.txt`).
pub fn save(dir: &Path, seed: u64, i: u64, seq: &Sequence, message: &str) -> std::io::Result<PathBuf> {
    std::fs::create_dir_all(dir)?;
    let path = dir.join(format!("seed-{seed}-seq-{i}.txt"));
    let mut text = String::new();
    for line in message.lines() {
        text.push_str(&format!("# {line}\n"));
    }
    text.push_str(&seq.to_text());
    std::fs::write(&path, text)?;
    Ok(path)
}

/// The regression cases kept in the repository.
pub fn regressions_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("regressions")
}
