//! Arenas are handed out two to a 2 MiB chunk. When the arena at the front
//! of the current chunk, marked for huge pages, is unmapped while the rest
//! of the chunk was never handed out, that rest goes with it: left mapped, it would keep the
//! chunk's huge page (which backs the whole chunk once any byte of it is
//! touched) resident as 1 MiB of zeroed small pages nobody uses.
//! Checked through the kernel's own view (`mincore` fails with ENOMEM on an
//! unmapped range).
//!
//! One test in its own binary: no other thread maps or unmaps meanwhile, so
//! an address found unmapped cannot have been taken by someone else.

use std::collections::BTreeSet;

use obmalloc::{Allocator, Config, Geometry};

const ARENA: usize = Geometry::Cpython310.arena_size();
const CHUNK: usize = 2 << 20;

/// Whether `[addr, addr + ARENA)` is mapped in this process.
fn mapped(addr: usize) -> bool {
    let mut residency = vec![0u8; ARENA / 4096];
    // SAFETY: `residency` has one byte per page of the range; mincore only
    // writes there, and only reports on the range, whatever it holds.
    let rc = unsafe { libc::mincore(addr as *mut libc::c_void, ARENA, residency.as_mut_ptr()) };
    rc == 0
}

/// Allocates `n` 64-byte blocks; returns them grouped by arena, in the
/// order the arenas were taken (a new arena is taken only when the others
/// are full).
fn blocks_by_arena(a: &mut Allocator, n: usize) -> Vec<(usize, Vec<*mut u8>)> {
    let mut out: Vec<(usize, Vec<*mut u8>)> = Vec::new();
    for _ in 0..n {
        let p = a.malloc(64).expect("malloc").as_ptr();
        let base = p as usize & !(ARENA - 1);
        match out.iter().position(|(b, _)| *b == base) {
            Some(i) => out[i].1.push(p),
            None => out.push((base, vec![p])),
        }
    }
    out
}

#[test]
fn the_unused_rest_of_the_current_chunk_goes_with_the_arena_before_it() {
    // Wholly free arenas go at once (no release delay) but one spare; the
    // first chunk is below the huge-page threshold, the second past it (a
    // chunk not marked for huge pages keeps its rest: no page of it is
    // resident, and the next arena takes it).
    let config = Config { pool_release_delay: 0, huge_page_threshold: 1, ..Config::default() };
    let mut a = Allocator::new(config);
    // Three arenas: a whole chunk, and the front of a second one.
    let per_arena = ARENA / 64;
    let arenas = blocks_by_arena(&mut a, 2 * per_arena + 1);
    let bases: BTreeSet<usize> = arenas.iter().map(|(b, _)| *b).collect();
    assert_eq!(bases.len(), 3);
    let (front, _) = &arenas[2];
    assert_eq!(front % CHUNK, 0, "the third arena starts a chunk");
    let rest = front + ARENA;
    assert!(!bases.contains(&rest) && mapped(rest), "the rest of its chunk is mapped, not handed out");

    // The first arena emptied stays as the spare; the third, emptied next,
    // is unmapped, and the rest of its chunk with it.
    for (_, blocks) in [&arenas[0], &arenas[2]] {
        for &p in blocks {
            a.free(p).expect("free");
        }
    }
    a.check_invariants();
    assert!(mapped(arenas[0].0), "the spare stays");
    assert!(!mapped(*front), "the emptied arena is unmapped");
    assert!(!mapped(rest), "and the unused rest of its chunk with it");

    // The next arenas come from a new chunk.
    let more = blocks_by_arena(&mut a, per_arena + 1);
    assert!(more.iter().all(|(b, _)| *b != rest), "the abandoned rest is never handed out");
    for (_, blocks) in more.iter().chain([&arenas[1]]) {
        for &p in blocks {
            a.free(p).expect("free");
        }
    }
    a.check_invariants();
}
