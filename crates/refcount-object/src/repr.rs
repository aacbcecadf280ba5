//! repr() as Python writes it, iteratively (an explicit work stack), with
//! recursive containers shown as `[...]`, `{...}`, `(...)`.

use std::collections::HashSet;
use std::fmt::Write;

use crate::error::{ObjError, ObjResult};
use crate::heap::Heap;
use crate::object::{type_ids, Obj};
use crate::str::str_bytes_unchecked;

enum Task {
    Visit(Obj, usize),
    Text(&'static str),
    /// The container's repr is complete: it may appear again.
    Leave(Obj),
}

impl Heap {
    /// repr(o). Deeper than the recursion limit: `Recursion` error.
    pub fn repr(&self, o: Obj) -> ObjResult<String> {
        let mut out = String::new();
        let mut active: HashSet<Obj> = HashSet::new();
        let mut tasks = vec![Task::Visit(o, 0)];
        while let Some(task) = tasks.pop() {
            match task {
                Task::Text(s) => out.push_str(s),
                Task::Leave(o) => {
                    active.remove(&o);
                }
                Task::Visit(o, depth) => {
                    if depth > self.config.recursion_limit {
                        return Err(ObjError::Recursion(
                            "maximum recursion depth exceeded while getting the repr of an object".into(),
                        ));
                    }
                    let (open, close, ellipsis) = match self.type_id(o) {
                        type_ids::TUPLE => ("(", ")", "(...)"),
                        type_ids::LIST => ("[", "]", "[...]"),
                        type_ids::DICT => ("{", "}", "{...}"),
                        _ => {
                            self.atom_repr(o, &mut out);
                            continue;
                        }
                    };
                    if active.contains(&o) {
                        out.push_str(ellipsis);
                        continue;
                    }
                    out.push_str(open);
                    active.insert(o);
                    tasks.push(Task::Leave(o));
                    tasks.push(Task::Text(close));
                    match self.type_id(o) {
                        type_ids::DICT => {
                            let mut pairs = Vec::new();
                            let mut pos = 0;
                            while let Some(kv) = self.dict_next(o, &mut pos)? {
                                pairs.push(kv);
                            }
                            for (i, &(k, v)) in pairs.iter().enumerate().rev() {
                                tasks.push(Task::Visit(v, depth + 1));
                                tasks.push(Task::Text(": "));
                                tasks.push(Task::Visit(k, depth + 1));
                                if i > 0 {
                                    tasks.push(Task::Text(", "));
                                }
                            }
                        }
                        t => {
                            let items: Vec<Obj> = if t == type_ids::TUPLE {
                                self.tuple_items(o).to_vec()
                            } else {
                                self.list_items(o)?.to_vec()
                            };
                            if t == type_ids::TUPLE && items.len() == 1 {
                                tasks.push(Task::Text(","));
                            }
                            for (i, &item) in items.iter().enumerate().rev() {
                                tasks.push(Task::Visit(item, depth + 1));
                                if i > 0 {
                                    tasks.push(Task::Text(", "));
                                }
                            }
                        }
                    }
                }
            }
        }
        Ok(out)
    }

    /// A short repr for error messages (never fails, cut at 60 characters).
    pub(crate) fn short_repr(&self, o: Obj) -> String {
        let mut s = match self.type_id(o) {
            type_ids::TUPLE | type_ids::LIST | type_ids::DICT => format!("<{} object>", self.type_of(o).name()),
            _ => {
                let mut s = String::new();
                self.atom_repr(o, &mut s);
                s
            }
        };
        if s.chars().count() > 60 {
            s = s.chars().take(57).collect::<String>() + "...";
        }
        s
    }

    fn atom_repr(&self, o: Obj, out: &mut String) {
        match self.type_id(o) {
            type_ids::NONE => out.push_str("None"),
            type_ids::BOOL => out.push_str(if self.int_value(o).unwrap_or(0) != 0 { "True" } else { "False" }),
            type_ids::INT => {
                let _ = write!(out, "{}", self.int_value(o).unwrap_or(0));
            }
            type_ids::FLOAT => out.push_str(&float_repr(self.float_value(o).unwrap_or(0.0))),
            // SAFETY: a str.
            type_ids::STR => str_repr(unsafe { str_bytes_unchecked(o) }, out),
            type_ids::MODULE => {
                let name = self.object_name(o).map(|n| self.str_bytes(n).unwrap_or(b"?").to_vec()).unwrap_or_default();
                let _ = write!(out, "<module '{}'>", String::from_utf8_lossy(&name));
            }
            type_ids::FUNCTION => {
                let name = self.object_name(o).map(|n| self.str_bytes(n).unwrap_or(b"?").to_vec()).unwrap_or_default();
                let _ = write!(out, "<function {} at {:#x}>", String::from_utf8_lossy(&name), o.as_ptr() as usize);
            }
            _ => {
                let _ = write!(out, "<{} object at {:#x}>", self.type_of(o).name(), o.as_ptr() as usize);
            }
        }
    }
}

/// Python's repr of a float: the shortest digits that round-trip, in fixed
/// notation when the exponent is in -4..16, else `d.ddde+XX`.
pub fn float_repr(x: f64) -> String {
    if x.is_nan() {
        return "nan".into();
    }
    if x.is_infinite() {
        return if x > 0.0 { "inf".into() } else { "-inf".into() };
    }
    // Rust's `{:e}` gives the shortest round-trip digits, e.g. "1.5e-7".
    let sci = format!("{x:e}");
    let (mantissa, exp) = sci.split_once('e').expect("{:e} always has an exponent");
    let exp: i32 = exp.parse().expect("a decimal exponent");
    let negative = mantissa.starts_with('-');
    let digits: String = mantissa.chars().filter(|c| c.is_ascii_digit()).collect();
    let sign = if negative { "-" } else { "" };
    if (-4..16).contains(&exp) {
        let point = exp + 1; // digits before the decimal point
        let s = if point <= 0 {
            format!("0.{}{}", "0".repeat((-point) as usize), digits)
        } else if point as usize >= digits.len() {
            format!("{}{}.0", digits, "0".repeat(point as usize - digits.len()))
        } else {
            format!("{}.{}", &digits[..point as usize], &digits[point as usize..])
        };
        format!("{sign}{s}")
    } else {
        let m = if digits.len() > 1 { format!("{}.{}", &digits[..1], &digits[1..]) } else { digits };
        format!("{sign}{m}e{}{:02}", if exp < 0 { "-" } else { "+" }, exp.abs())
    }
}

/// Python's repr of a str: single quotes unless the text has a single quote
/// and no double quote; backslash escapes for quotes, `\\`, `\n`, `\r`,
/// `\t` and other non-printable characters.
pub fn str_repr(bytes: &[u8], out: &mut String) {
    let text = String::from_utf8_lossy(bytes);
    let quote = if text.contains('\'') && !text.contains('"') { '"' } else { '\'' };
    out.push(quote);
    for c in text.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c == quote => {
                out.push('\\');
                out.push(c);
            }
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            // U+0080..U+00A0 and the soft hyphen U+00AD are not printable
            // (str.isprintable), so Python escapes them too.
            c if (0x80..=0xa0).contains(&(c as u32)) || c == '\u{ad}' => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push(quote);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floats_repr_as_python() {
        for (x, want) in [
            (1.0, "1.0"),
            (0.1, "0.1"),
            (-2.5, "-2.5"),
            (1e16, "1e+16"),
            (1.5e-7, "1.5e-07"),
            (123456789012345.6, "123456789012345.6"),
            (0.0001, "0.0001"),
            (0.00001, "1e-05"),
            (1e300, "1e+300"),
            (-0.0, "-0.0"),
            (f64::INFINITY, "inf"),
            (f64::NAN, "nan"),
            (3.0e15, "3000000000000000.0"),
        ] {
            assert_eq!(float_repr(x), want, "{x}");
        }
    }

    #[test]
    fn strs_repr_as_python() {
        let r = |s: &str| {
            let mut out = String::new();
            str_repr(s.as_bytes(), &mut out);
            out
        };
        assert_eq!(r("abc"), "'abc'");
        assert_eq!(r("it's"), r#""it's""#);
        assert_eq!(r(r#"a'b"c"#), r#"'a\'b"c'"#);
        assert_eq!(r("tab\tnl\n\\"), r"'tab\tnl\n\\'");
        assert_eq!(r("\u{7}é"), r"'\x07é'");
        assert_eq!(r("\u{9f}\u{a0}\u{a1}\u{ad}"), r"'\x9f\xa0¡\xad'");
    }
}
