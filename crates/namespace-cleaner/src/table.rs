//! `%whos`: IPython's table of the user variables, with a Size column.
//!
//! IPython's layout (`IPython/core/magics/namespace.py`, `whos`): each
//! column is as wide as its longest entry or its label, plus 3; the header
//! row, then a dashed rule as long as the header; one row per variable in
//! sorted order; dict, list and tuple show `n=<len>`, other values their
//! `str()` with newlines escaped, cut to the first 25 + `<...>` + the last
//! 25 characters when 50 or longer. "Interactive namespace is empty." when
//! there is nothing to show.
//!
//! Ours adds **Size** between Type and Data/Info: the bytes reachable from
//! the variable, each object once, immortals excluded ([`crate::reach`]), in
//! human units; and a last line with the total over all the variables —
//! their union, so an object two variables share is counted once.

use std::fmt::Write;

use refcount_object::object::type_ids;
use refcount_object::{Heap, Obj, ObjResult};

use crate::namespace::Namespaces;
use crate::reach::{human_bytes, Reach};

const VAR_LABEL: &str = "Variable";
const TYPE_LABEL: &str = "Type";
const SIZE_LABEL: &str = "Size";
const DATA_LABEL: &str = "Data/Info";
/// Spaces after the widest entry of a column (IPython's `colsep`).
const COLSEP: usize = 3;
/// Values whose text is this long or longer are elided (IPython's rule).
const ELIDE_AT: usize = 50;
const KEEP_EACH_END: usize = 25;

/// One row of the table, as data.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WhosRow {
    pub name: String,
    pub type_name: String,
    /// Bytes reachable from the variable, each object once.
    pub bytes: u64,
    /// The Data/Info cell.
    pub data: String,
}

/// The `%whos` table as data: what [`Namespaces::whos`] prints, for reports
/// that draw it (the sizes as bars).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Whos {
    /// One row per user variable, in sorted order.
    pub rows: Vec<WhosRow>,
    /// Bytes and objects reachable from all of them (their union).
    pub total_bytes: u64,
    pub total_objects: u64,
}

impl Whos {
    /// The text of `%whos` (see the module docs).
    pub fn to_text(&self) -> String {
        if self.rows.is_empty() {
            return "Interactive namespace is empty.\n".into();
        }
        let mut out = render(&self.rows);
        let _ = writeln!(
            out,
            "Total: {} ({} bytes in {} objects) reachable from {} variable{}, each object counted once",
            human_bytes(self.total_bytes),
            thousands(self.total_bytes),
            thousands(self.total_objects),
            self.rows.len(),
            if self.rows.len() == 1 { "" } else { "s" }
        );
        out
    }
}

impl Namespaces {
    /// The `%whos` table of `ns` (see the module docs).
    pub fn whos(&self, heap: &mut Heap, ns: Obj) -> ObjResult<String> {
        Ok(self.whos_rows(heap, ns)?.to_text())
    }

    /// The `%whos` table of `ns` as data.
    pub fn whos_rows(&self, heap: &mut Heap, ns: Obj) -> ObjResult<Whos> {
        let bindings = self.user_bindings(heap, ns, None)?;
        let mut rows = Vec::with_capacity(bindings.len());
        let mut total = Reach::new();
        for b in &bindings {
            let bytes = Reach::new().add(heap, b.value)?;
            total.add(heap, b.value)?;
            rows.push(WhosRow {
                name: String::from_utf8_lossy(heap.str_bytes(b.key)?).into_owned(),
                type_name: heap.type_of(b.value).name().to_string(),
                bytes,
                data: data_info(heap, b.value)?,
            });
        }
        Ok(Whos { rows, total_bytes: total.bytes, total_objects: total.objects })
    }
}

/// The Data/Info cell: `n=<len>` for dict, list and tuple, else `str(v)`
/// with newlines escaped, elided when long.
fn data_info(heap: &Heap, v: Obj) -> ObjResult<String> {
    let text = match heap.type_id(v) {
        type_ids::DICT => return Ok(format!("n={}", heap.dict_len(v)?)),
        type_ids::LIST => return Ok(format!("n={}", heap.list_len(v)?)),
        type_ids::TUPLE => return Ok(format!("n={}", heap.tuple_len(v)?)),
        // str(s) is the text itself, not its repr.
        type_ids::STR => String::from_utf8_lossy(heap.str_bytes(v)?).into_owned(),
        _ => heap.repr(v).unwrap_or_else(|e| format!("<repr failed: {e}>")),
    };
    Ok(elide(&text.replace('\n', "\\n")))
}

/// IPython's cut: first 25 + `<...>` + last 25 characters when 50 or longer.
pub fn elide(text: &str) -> String {
    let n = text.chars().count();
    if n < ELIDE_AT {
        return text.to_string();
    }
    let head: String = text.chars().take(KEEP_EACH_END).collect();
    let tail: String = text.chars().skip(n - KEEP_EACH_END).collect();
    format!("{head}<...>{tail}")
}

fn render(rows: &[WhosRow]) -> String {
    let sizes: Vec<String> = rows.iter().map(|r| human_bytes(r.bytes)).collect();
    let width = |label: &str, cell: &dyn Fn(usize) -> usize| {
        (0..rows.len()).map(cell).max().unwrap_or(0).max(label.len()) + COLSEP
    };
    let var_w = width(VAR_LABEL, &|i| rows[i].name.chars().count());
    let type_w = width(TYPE_LABEL, &|i| rows[i].type_name.chars().count());
    let size_w = width(SIZE_LABEL, &|i| sizes[i].chars().count());
    let mut out = String::new();
    let _ = writeln!(out, "{VAR_LABEL:<var_w$}{TYPE_LABEL:<type_w$}{SIZE_LABEL:<size_w$} {DATA_LABEL}");
    let _ = writeln!(out, "{}", "-".repeat(var_w + type_w + size_w + DATA_LABEL.len() + 1));
    for (r, size) in rows.iter().zip(&sizes) {
        let _ = writeln!(out, "{:<var_w$}{:<type_w$}{:<size_w$} {}", r.name, r.type_name, size, r.data);
    }
    out
}

/// `1234567` → `1,234,567` (also the HTML report's).
pub fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::{elide, thousands};

    #[test]
    fn long_values_keep_25_characters_at_each_end() {
        assert_eq!(elide("short"), "short");
        let s49: String = "x".repeat(49);
        assert_eq!(elide(&s49), s49);
        let s: String = (0..60).map(|i| char::from(b'a' + (i % 26) as u8)).collect();
        let e = elide(&s);
        assert_eq!(e, format!("{}<...>{}", &s[..25], &s[35..]));
    }

    #[test]
    fn thousands_groups() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(1_234_567), "1,234,567");
    }
}
