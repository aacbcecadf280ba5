//! One step of a sequence: an operation kind and its arguments, plain
//! numbers the executor interprets (a handle index taken modulo the
//! handles there are, a size, a selector), so that any sequence — a random
//! one, a shrunk one, one read back from a regression file — runs, and
//! removing a step never makes the rest invalid.
//!
//! Text form, one step a line: `Kind a b c v` (a regression file).

use crate::rng::Rng;

macro_rules! kinds {
    ($($name:ident $weight:literal),* $(,)?) => {
        /// What a step does (see `World::step` for each one's meaning).
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub enum Kind { $($name),* }

        impl Kind {
            pub const ALL: &'static [Kind] = &[$(Kind::$name),*];
            /// Relative frequency in random sequences.
            const WEIGHTS: &'static [u32] = &[$($weight),*];

            pub fn name(self) -> &'static str {
                match self { $(Kind::$name => stringify!($name)),* }
            }

            pub fn parse(s: &str) -> Option<Kind> {
                Kind::ALL.iter().copied().find(|k| k.name() == s)
            }
        }
    };
}

kinds! {
    // objects
    NewInt 8, NewFloat 4, NewStr 6, Intern 2, NewBool 1, NewNone 1, NewTuple 4, NewList 6, NewDict 5,
    NewModule 2, NewFunction 2, NewNode 5, NewPlain 3, NewNs 2,
    Incref 4, Decref 10,
    ListAppend 8, ListInsert 3, ListSet 3, ListPop 3, ListGet 2, TupleGet 1,
    DictSet 8, DictDel 3, DictGet 2, SetAttr 5, DelAttr 2, GetAttr 2, SetChild 6,
    Repr 2, Hash 1, Equal 1, Sizeof 1, DeepSizeof 1, Copy 2, DeepCopy 2, Call 1, TypeName 1, Value 1,
    // gc
    Collect 3, Freeze 1, Unfreeze 1, GcEnable 1, GcDisable 1, SetThreshold 1, GetObjects 1, Referrers 1,
    Referents 1, AddGcCallback 1, RemoveGcCallback 1, WeakNew 3, WeakGet 2, WeakFree 2, IsTracked 1,
    // namespaces
    NsSet 6, NsGet 1, NsDel 2, NsXdel 1, NsHide 2, NsReset 2, NsWho 1, NsWhos 1, NsWhy 1,
    // raw memory
    Malloc 4, Calloc 1, Realloc 3, Free 4, FreeBad 2, ReallocBad 1,
    AllocStats 1, DebugStats 1, ReleaseArenas 1, ClearFreeLists 1,
    // bad object pointers, other threads
    BadObj 6, ThreadBusy 1, ThreadAttach 1,
    // the GPU cache (simulated device)
    CudaMalloc 4, CudaFree 3, CudaFreeBad 1, CudaRecord 1, CudaSync 1, CudaEmpty 1, CudaStats 1,
    CudaStreamNew 1, CudaStreamDel 1,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Op {
    pub kind: Kind,
    pub a: u32,
    pub b: u32,
    pub c: u32,
    pub v: i64,
}

impl Op {
    pub fn random(rng: &mut Rng) -> Op {
        let total: u32 = Kind::WEIGHTS.iter().sum();
        let mut pick = rng.below(total as u64) as u32;
        let mut kind = Kind::ALL[0];
        for (k, w) in Kind::ALL.iter().zip(Kind::WEIGHTS) {
            if pick < *w {
                kind = *k;
                break;
            }
            pick -= w;
        }
        // Handle indices are taken modulo the live handles; newer handles
        // are likelier (what a program just made is what it uses).
        let idx =
            |rng: &mut Rng| if rng.below(2) == 0 { u32::MAX - rng.below(4) as u32 } else { rng.next_u64() as u32 };
        let v = match rng.below(8) {
            0 => rng.next_u64() as i64,
            1 => -(rng.below(1000) as i64),
            2..=4 => rng.below(8) as i64,
            _ => rng.below(1 << 20) as i64,
        };
        Op { kind, a: idx(rng), b: idx(rng), c: idx(rng), v }
    }

    pub fn to_line(&self) -> String {
        format!("{} {} {} {} {}", self.kind.name(), self.a, self.b, self.c, self.v)
    }

    pub fn parse_line(line: &str) -> Result<Op, String> {
        let mut w = line.split_whitespace();
        let kind = w.next().ok_or("empty line")?;
        let kind = Kind::parse(kind).ok_or_else(|| format!("unknown step {kind:?}"))?;
        let mut num = || w.next().ok_or("missing argument").map(str::to_string);
        let bad = |e: std::num::ParseIntError| e.to_string();
        let a = num()?.parse().map_err(bad)?;
        let b = num()?.parse().map_err(bad)?;
        let c = num()?.parse().map_err(bad)?;
        let v = num()?.parse().map_err(bad)?;
        Ok(Op { kind, a, b, c, v })
    }
}

/// A sequence: its runtime's settings and its steps.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sequence {
    /// `pymem_config.max_bytes` (0 = no limit).
    pub max_bytes: u64,
    /// The simulated device's capacity.
    pub device_bytes: u64,
    pub ops: Vec<Op>,
}

impl Sequence {
    pub fn random(rng: &mut Rng, max_len: usize) -> Sequence {
        let max_bytes = match rng.below(10) {
            0 => (1 + rng.below(3)) << 20,
            1 => (3 + rng.below(8)) << 20,
            _ => 0,
        };
        let device_bytes = (8 + rng.below(120)) << 20;
        // One sequence in twenty is ten times longer: bigger heaps, more
        // arenas, deeper structures.
        let max_len = if rng.below(20) == 0 { max_len * 10 } else { max_len };
        let len = 1 + rng.below(max_len as u64) as usize;
        Sequence { max_bytes, device_bytes, ops: (0..len).map(|_| Op::random(rng)).collect() }
    }

    pub fn to_text(&self) -> String {
        let mut s = format!("max_bytes {}\ndevice_bytes {}\n", self.max_bytes, self.device_bytes);
        for op in &self.ops {
            s.push_str(&op.to_line());
            s.push('\n');
        }
        s
    }

    pub fn parse(text: &str) -> Result<Sequence, String> {
        let mut seq = Sequence { max_bytes: 0, device_bytes: 64 << 20, ops: Vec::new() };
        for (n, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let err = |e: String| format!("line {}: {e}", n + 1);
            if let Some(v) = line.strip_prefix("max_bytes ") {
                seq.max_bytes = v.trim().parse().map_err(|e: std::num::ParseIntError| err(e.to_string()))?;
            } else if let Some(v) = line.strip_prefix("device_bytes ") {
                seq.device_bytes = v.trim().parse().map_err(|e: std::num::ParseIntError| err(e.to_string()))?;
            } else {
                seq.ops.push(Op::parse_line(line).map_err(err)?);
            }
        }
        Ok(seq)
    }
}
