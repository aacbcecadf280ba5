//! The fuzzer in `cargo test` (and so in `cargo xtask test-all`): every
//! saved regression case replays without a failure, a short random run
//! finds none, and a broken library is caught (the fuzzer is not a test
//! that cannot fail).

use pymem_fuzz::op::{Kind, Op, Sequence};
use pymem_fuzz::world::World;
use pymem_fuzz::{fuzz, regressions_dir, run_sequence, FuzzConfig};

#[test]
fn regression_cases_pass() {
    let mut n = 0;
    for entry in std::fs::read_dir(regressions_dir()).expect("crates/pymem-fuzz/regressions") {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "txt") {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap();
        let seq = Sequence::parse(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        if let Err(e) = run_sequence(&seq) {
            panic!("{} fails again: {e}", path.display());
        }
        n += 1;
    }
    assert!(n > 0, "no regression cases found");
}

#[test]
fn a_short_random_run_finds_nothing() {
    let cfg = FuzzConfig { calls: 40_000, seed: 11, max_len: 120, save_to: None, marker: None };
    match fuzz(&cfg, |_| {}) {
        Ok(summary) => {
            assert!(summary.calls >= 40_000);
            // Every kind of outcome was seen: successes, refusals of bad
            // pointers, other threads, limits.
            for st in ["PYMEM_OK", "PYMEM_ERR_INVALID_POINTER", "PYMEM_ERR_BUSY", "PYMEM_ERR_TYPE", "PYMEM_ERR_KEY"] {
                assert!(summary.statuses.contains_key(st), "{st} never seen: {:?}", summary.statuses);
            }
        }
        Err(f) => panic!("sequence {}: {}\nshrunk:\n{}", f.sequence_index, f.message, f.shrunk.to_text()),
    }
}

/// The checks see what they must: an incref made behind the model's back
/// fails the sequence at the end with a count mismatch.
#[test]
fn a_wrong_count_is_caught() {
    let step = |kind, a, b, c, v| Op { kind, a, b, c, v };
    let seq = Sequence {
        max_bytes: 0,
        device_bytes: 64 << 20,
        ops: vec![
            step(Kind::NewList, 0, 0, 0, 0),
            step(Kind::NewInt, 0, 0, 0, 1 << 40),
            step(Kind::ListAppend, 0, 1, 0, 0),
            step(Kind::ListAppend, 0, 1, 0, 0),
        ],
    };
    assert!(run_sequence(&seq).is_ok());
    let mut w = World::new(&seq).unwrap();
    for op in &seq.ops {
        w.step(op).unwrap();
    }
    let int = w.handle_ptr(1);
    // SAFETY: the world's live runtime and one of its live objects.
    assert_eq!(unsafe { pymem::object::pymem_incref(w.runtime(), int) }, pymem::Status::PYMEM_OK);
    let e = w.finish().expect_err("a hidden incref went unnoticed");
    assert!(e.contains("the model says"), "{e}");
}

/// The shrinker keeps a failure while it removes what it does not need.
#[test]
fn the_shrinker_finds_the_step_that_fails() {
    let mut rng = pymem_fuzz::rng::Rng::new(5);
    let mut seq = Sequence::random(&mut rng, 60);
    seq.ops.push(Op { kind: Kind::NewDict, a: 7, b: 7, c: 7, v: 7 });
    seq.ops.extend((0..30).map(|_| Op::random(&mut rng)));
    let fails = |s: &Sequence| {
        s.ops.iter().any(|o| o.kind == Kind::NewDict && o.a == 7).then(|| "has the dict step".to_string())
    };
    let (shrunk, msg) = pymem_fuzz::shrink::shrink(seq, "start".into(), fails);
    assert_eq!(msg, "has the dict step");
    assert_eq!(shrunk.ops.len(), 1, "{}", shrunk.to_text());
    assert_eq!(shrunk.max_bytes, 0);
}

/// A crash (here an abort the test asks for, as a crash in pymem would
/// end the process) is caught by the supervising process, which shrinks
/// the sequence in processes of their own and saves it.
#[test]
fn a_crash_is_shrunk_and_saved() {
    let dir = std::env::temp_dir().join(format!("pymem-fuzz-crash-test-{}", std::process::id()));
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_pymem-fuzz"))
        .args(["--calls", "100000", "--seed", "3", "--max-len", "30", "--save-to"])
        .arg(&dir)
        .env("PYMEM_FUZZ_ABORT_ON", "NewDict")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains("CRASH"), "{stdout}");
    assert!(stdout.contains("shrunk to 1 steps"), "{stdout}");
    let saved: Vec<_> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().path()).collect();
    assert_eq!(saved.len(), 1);
    let seq = Sequence::parse(&std::fs::read_to_string(&saved[0]).unwrap()).unwrap();
    assert_eq!(seq.ops.len(), 1);
    assert_eq!(seq.ops[0].kind, Kind::NewDict);
    let _ = std::fs::remove_dir_all(&dir);
}
