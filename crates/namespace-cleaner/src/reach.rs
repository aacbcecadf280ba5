//! The bytes reachable from variables, each object once (pympler's
//! `asizeof`), for the Size column of `%whos` and its total line.
//!
//! The references followed and the size of each object are the heap's:
//! [`Heap::traverse_builtin`] (items, keys and values, attribute values, a
//! module's or function's name and dict) and [`Heap::sizeof`], so a single
//! variable's figure equals `pymem_deep_sizeof`. Immortal objects are left
//! out (they belong to every runtime and are never freed).
//!
//! One [`Reach`] keeps the objects already counted, so adding several roots
//! to it counts their union (the total line), not the sum.
//!
//! A walk over ten million objects must not hash ten million addresses: an
//! object whose reference count is 1 can be reached through one reference
//! only, and the walk follows each reference at most once (each container
//! is expanded once), so it is counted without entering the seen-set. Only
//! shared objects (count > 1) are remembered.

use hashbrown::HashSet;
use refcount_object::{Heap, Obj, ObjResult};

/// Objects counted so far, and their bytes.
#[derive(Default)]
pub struct Reach {
    seen: HashSet<Obj>,
    stack: Vec<Obj>,
    /// Bytes of every object counted so far.
    pub bytes: u64,
    /// Objects counted so far.
    pub objects: u64,
}

impl Reach {
    pub fn new() -> Reach {
        Reach::default()
    }

    /// Counts what `root` reaches that was not counted yet; returns those
    /// bytes. `root` is a value held by a reference the caller knows of (a
    /// binding): its count includes that reference.
    pub fn add(&mut self, heap: &Heap, root: Obj) -> ObjResult<u64> {
        let before = self.bytes;
        if self.count(heap, root)? {
            self.stack.push(root);
        }
        // Containers wait on the stack; atoms (ints, floats, strs: no
        // references) are counted as they are met, so a list of ten million
        // ints needs no ten-million-entry stack.
        while let Some(o) = self.stack.pop() {
            let mut failed = None;
            heap.traverse_builtin(o, &mut |child| match self.count(heap, child) {
                Ok(true) if heap.is_gc(child) => self.stack.push(child),
                Ok(_) => {}
                Err(e) => failed = Some(e),
            });
            if let Some(e) = failed {
                self.stack.clear();
                return Err(e);
            }
        }
        Ok(self.bytes - before)
    }

    /// Counts `o` unless it is immortal or already counted; returns whether
    /// it was counted now.
    #[inline]
    fn count(&mut self, heap: &Heap, o: Obj) -> ObjResult<bool> {
        if heap.is_immortal(o) || (heap.refcount(o) > 1 && !self.seen.insert(o)) {
            return Ok(false);
        }
        self.bytes += heap.sizeof(o)? as u64;
        self.objects += 1;
        Ok(true)
    }
}

/// Bytes in human units, as `ls -h` and `du -h` write them: `512 B`,
/// `1.5 KiB`, `76.3 MiB`, `1.2 GiB`.
pub fn human_bytes(bytes: u64) -> String {
    const UNITS: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    let mut value = bytes as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

#[cfg(test)]
mod tests {
    use super::human_bytes;

    #[test]
    fn human_units() {
        assert_eq!(human_bytes(0), "0 B");
        assert_eq!(human_bytes(1023), "1023 B");
        assert_eq!(human_bytes(1024), "1.0 KiB");
        assert_eq!(human_bytes(1536), "1.5 KiB");
        assert_eq!(human_bytes(80 * 1024 * 1024), "80.0 MiB");
        assert_eq!(human_bytes(3 << 30), "3.0 GiB");
    }
}
