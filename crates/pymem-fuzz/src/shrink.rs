//! Shrinking a failing sequence (delta debugging): drop chunks of steps,
//! halving the chunk size, while the sequence still fails; then simplify
//! each remaining step's numbers. Any failure counts (the message printed
//! is the shrunk sequence's own).

use crate::op::Sequence;

/// At most this many re-runs: a long sequence shrinks in seconds.
const BUDGET: usize = 4000;

pub fn shrink(
    mut seq: Sequence,
    mut message: String,
    fails: impl Fn(&Sequence) -> Option<String>,
) -> (Sequence, String) {
    let mut runs = 0;
    let try_it = |cand: &Sequence, message: &mut String, runs: &mut usize| -> bool {
        if *runs >= BUDGET {
            return false;
        }
        *runs += 1;
        match fails(cand) {
            Some(m) => {
                *message = m;
                true
            }
            None => false,
        }
    };
    // The runtime's limit off, if the failure does not need it.
    for field in 0..2 {
        let mut cand = seq.clone();
        if field == 0 {
            cand.max_bytes = 0;
        } else {
            cand.device_bytes = 64 << 20;
        }
        if cand != seq && try_it(&cand, &mut message, &mut runs) {
            seq = cand;
        }
    }
    let mut chunk = seq.ops.len().div_ceil(2).max(1);
    loop {
        let mut i = 0;
        while i < seq.ops.len() {
            let mut cand = seq.clone();
            cand.ops.drain(i..(i + chunk).min(seq.ops.len()));
            if try_it(&cand, &mut message, &mut runs) {
                seq = cand;
            } else {
                i += chunk;
            }
        }
        if chunk == 1 {
            break;
        }
        chunk = chunk.div_ceil(2);
    }
    // Smaller numbers: handles 0 (the oldest), values 0.
    for i in 0..seq.ops.len() {
        for field in 0..4 {
            let mut cand = seq.clone();
            let op = &mut cand.ops[i];
            match field {
                0 => op.a = 0,
                1 => op.b = 0,
                2 => op.c = 0,
                _ => op.v = 0,
            }
            if cand != seq && try_it(&cand, &mut message, &mut runs) {
                seq = cand;
            }
        }
    }
    (seq, message)
}
