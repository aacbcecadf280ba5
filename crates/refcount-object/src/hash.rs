//! Hashing and equality as Python defines them.
//!
//! Numbers hash by value modulo the Mersenne prime 2^61 - 1, so `1`, `1.0`
//! and `True` hash alike and compare equal (CPython's `_Py_HashDouble` and
//! `long_hash`); tuples hash with CPython's xxHash-based combiner; lists and
//! dicts are unhashable. One difference, deliberate: a str's hash is a fixed
//! 64-bit FNV-1a, not CPython's per-process randomised SipHash, so hashes
//! are reproducible (dict iteration order never depends on them anyway).

use crate::error::{ObjError, ObjResult};
use crate::heap::Heap;
use crate::num::Number;
use crate::object::{body, type_ids, Obj, StrObj, HASH_NOT_COMPUTED};
use crate::str::str_bytes_unchecked;

/// The Mersenne prime modulus of numeric hashes (`_PyHASH_MODULUS`).
const MODULUS: u64 = (1 << 61) - 1;
const HASH_BITS: u32 = 61;
const HASH_INF: i64 = 314_159;
/// hash(None) from CPython 3.12 on (a constant, not the address).
const HASH_NONE: i64 = 0xFCA8_6420;

/// hash() of an int.
pub fn hash_int(v: i64) -> i64 {
    let m = (v.unsigned_abs() % MODULUS) as i64;
    let h = if v < 0 { -m } else { m };
    if h == -1 {
        -2
    } else {
        h
    }
}

/// hash() of a float (`_Py_HashDouble`): equal to the int's hash for
/// integral values.
pub fn hash_float(x: f64) -> i64 {
    if x.is_infinite() {
        return if x > 0.0 { HASH_INF } else { -HASH_INF };
    }
    if x.is_nan() {
        return 0;
    }
    let (mut m, mut e) = frexp(x);
    let mut sign = 1i64;
    if m < 0.0 {
        sign = -1;
        m = -m;
    }
    let mut h: u64 = 0;
    while m != 0.0 {
        h = ((h << 28) & MODULUS) | (h >> (HASH_BITS - 28));
        m *= 268_435_456.0; // 2**28
        e -= 28;
        let y = m as u64;
        m -= y as f64;
        h += y;
        if h >= MODULUS {
            h -= MODULUS;
        }
    }
    let e = if e >= 0 { e % HASH_BITS as i32 } else { HASH_BITS as i32 - 1 - ((-1 - e) % HASH_BITS as i32) };
    let e = e as u32;
    h = ((h << e) & MODULUS) | (h >> (HASH_BITS - e));
    let h = h as i64 * sign;
    if h == -1 {
        -2
    } else {
        h
    }
}

/// `frexp`: `x = m * 2^e` with `0.5 <= |m| < 1` (0 gives (0, 0)).
fn frexp(x: f64) -> (f64, i32) {
    if x == 0.0 || !x.is_finite() {
        return (x, 0);
    }
    let bits = x.to_bits();
    let exp = ((bits >> 52) & 0x7ff) as i32;
    if exp == 0 {
        // Subnormal: scale up first.
        let (m, e) = frexp(x * f64::from_bits(0x4350_0000_0000_0000)); // 2^54
        return (m, e - 54);
    }
    let m = f64::from_bits((bits & !(0x7ff << 52)) | (1022 << 52));
    (m, exp - 1022)
}

/// A 64-bit FNV-1a of the bytes, never -1.
pub fn hash_bytes(bytes: &[u8]) -> i64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        h ^= b as u64;
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    let h = h as i64;
    if h == -1 {
        -2
    } else {
        h
    }
}

/// `_Py_HashPointer`: the address rotated right by 4.
pub fn hash_pointer(p: usize) -> i64 {
    let h = p.rotate_right(4) as i64;
    if h == -1 {
        -2
    } else {
        h
    }
}

impl Heap {
    /// hash(o) as Python computes it; lists and dicts (and tuples holding
    /// them) are unhashable (`Type` error "unhashable type: 'list'").
    #[inline(always)]
    pub fn hash(&mut self, o: Obj) -> ObjResult<i64> {
        // Anything but a tuple (a dict's str key, an int) straight away;
        // tuples need the frames of `tuple_hash`.
        if self.type_id(o) == type_ids::TUPLE {
            self.tuple_hash(o)
        } else {
            self.atom_hash(o)
        }
    }

    /// hash() of a tuple, iteratively over nested tuples.
    #[inline(never)]
    fn tuple_hash(&mut self, o: Obj) -> ObjResult<i64> {
        const P1: u64 = 11_400_714_785_074_694_791;
        const P2: u64 = 14_029_467_366_897_019_727;
        const P5: u64 = 2_870_177_450_012_600_261;
        // Iterative (never recurse on object depth): one frame per tuple
        // being hashed, (tuple, items folded so far, accumulator). An
        // object's depth is the number of enclosing tuples.
        let mut frames: Vec<(Obj, usize, u64)> = Vec::new();
        let mut next = o;
        loop {
            if frames.len() > self.config.recursion_limit {
                return Err(ObjError::Recursion("maximum recursion depth exceeded while hashing".into()));
            }
            let mut lane = if self.type_id(next) == type_ids::TUPLE {
                frames.push((next, 0, P5));
                None
            } else {
                Some(self.atom_hash(next)?)
            };
            // Fold the finished hash into its tuple, finishing tuples whose
            // items are all hashed, until one has an item left to hash.
            loop {
                let Some(frame) = frames.last_mut() else {
                    return Ok(lane.expect("a finished hash when no tuple is open"));
                };
                if let Some(h) = lane.take() {
                    let acc = frame.2.wrapping_add((h as u64).wrapping_mul(P2));
                    frame.2 = acc.rotate_left(31).wrapping_mul(P1);
                    frame.1 += 1;
                }
                let items = self.tuple_items(frame.0);
                if frame.1 < items.len() {
                    next = items[frame.1];
                    break;
                }
                let acc = frame.2.wrapping_add(items.len() as u64 ^ (P5 ^ 3_527_539));
                frames.pop();
                lane = Some(if acc == u64::MAX { 1_546_275_796 } else { acc as i64 });
            }
        }
    }

    /// hash() of anything but a tuple.
    #[inline(always)]
    fn atom_hash(&mut self, o: Obj) -> ObjResult<i64> {
        match self.type_id(o) {
            type_ids::NONE => Ok(HASH_NONE),
            type_ids::INT | type_ids::BOOL => Ok(hash_int(self.int_value(o)?)),
            type_ids::FLOAT => Ok(hash_float(self.float_value(o)?)),
            type_ids::STR => {
                // SAFETY: a str.
                let s = unsafe { body::<StrObj>(o) };
                if s.hash == HASH_NOT_COMPUTED {
                    // SAFETY: a str.
                    s.hash = hash_bytes(unsafe { str_bytes_unchecked(o) });
                }
                Ok(s.hash)
            }
            type_ids::LIST | type_ids::DICT => {
                Err(ObjError::Type(format!("unhashable type: '{}'", self.type_of(o).name())))
            }
            _ => Ok(hash_pointer(o.as_ptr() as usize)),
        }
    }

    /// `a == b` as Python answers it: numbers by value across int, bool and
    /// float (NaN is unequal to itself), strs by content, tuples and lists
    /// item by item (an item identical to its counterpart is equal, as in
    /// CPython's container comparison), dicts as mappings, everything else by
    /// identity. Nested deeper than the recursion limit: `Recursion` error.
    /// Iterative (an explicit work stack), so deep nesting never overflows
    /// the machine stack.
    pub fn equal(&self, a: Obj, b: Obj) -> ObjResult<bool> {
        let mut work = vec![(a, b, 0usize)];
        while let Some((a, b, depth)) = work.pop() {
            if depth > self.config.recursion_limit {
                return Err(ObjError::Recursion("maximum recursion depth exceeded in comparison".into()));
            }
            if let (Some(x), Some(y)) = (self.number(a), self.number(b)) {
                if !numbers_equal(x, y) {
                    return Ok(false);
                }
                continue;
            }
            let (ta, tb) = (self.type_id(a), self.type_id(b));
            if ta != tb {
                return Ok(false);
            }
            match ta {
                type_ids::STR => {
                    // SAFETY: both are strs.
                    if a != b && unsafe { str_bytes_unchecked(a) != str_bytes_unchecked(b) } {
                        return Ok(false);
                    }
                }
                type_ids::TUPLE | type_ids::LIST => {
                    let (xs, ys) = if ta == type_ids::TUPLE {
                        (self.tuple_items(a), self.tuple_items(b))
                    } else {
                        (self.list_items(a)?, self.list_items(b)?)
                    };
                    if xs.len() != ys.len() {
                        return Ok(false);
                    }
                    for (&x, &y) in xs.iter().zip(ys.iter()).rev() {
                        if x != y {
                            work.push((x, y, depth + 1));
                        }
                    }
                }
                type_ids::DICT => {
                    if self.dict_len(a)? != self.dict_len(b)? {
                        return Ok(false);
                    }
                    let mut pos = 0;
                    while let Some((k, v)) = self.dict_next(a, &mut pos)? {
                        match crate::dict::lookup_with_entry_hash(self, a, pos - 1, b, k)? {
                            Some(w) => {
                                if v != w {
                                    work.push((v, w, depth + 1));
                                }
                            }
                            None => return Ok(false),
                        }
                    }
                }
                _ => {
                    if a != b {
                        return Ok(false);
                    }
                }
            }
        }
        Ok(true)
    }
}

/// Exact comparison of two Python numbers.
fn numbers_equal(x: Number, y: Number) -> bool {
    match (x, y) {
        (Number::Int(a), Number::Int(b)) => a == b,
        (Number::Float(a), Number::Float(b)) => a == b,
        (Number::Int(i), Number::Float(f)) | (Number::Float(f), Number::Int(i)) => {
            // Exact: a float equals an int only if it is integral and in range.
            f.is_finite() && f.fract() == 0.0 && f >= -(2f64.powi(63)) && f < 2f64.powi(63) && f as i64 == i
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numeric_hashes_match_cpython() {
        // Values from CPython 3.11: hash(x) for each.
        assert_eq!(hash_int(1), 1);
        assert_eq!(hash_int(-1), -2);
        assert_eq!(hash_int(-2), -2);
        assert_eq!(hash_int((1 << 61) - 1), 0);
        assert_eq!(hash_int(1 << 61), 1);
        assert_eq!(hash_int(i64::MIN), -4);
        assert_eq!(hash_float(1.0), 1);
        assert_eq!(hash_float(1.5), 1_152_921_504_606_846_977);
        assert_eq!(hash_float(-1.5), -1_152_921_504_606_846_977);
        assert_eq!(hash_float(0.1), 230_584_300_921_369_408);
        assert_eq!(hash_float(1e300), hash_float(1e300));
        assert_eq!(hash_float(f64::INFINITY), 314_159);
        assert_eq!(hash_float(2f64.powi(61)), hash_int(1 << 61));
        assert_eq!(hash_float(-1.0), -2);
    }
}
