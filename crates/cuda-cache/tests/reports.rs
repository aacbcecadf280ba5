//! The reports in PyTorch's formats, release_all, bad pointers, the
//! pass-through policy and history.

use std::sync::Arc;

use cuda_cache::{Action, AllocatorConfig, CacheError, CachingAllocator, Simulated, StatType};
use serde_json::Value;

const KIB: u64 = 1 << 10;
const MIB: u64 = 1 << 20;
const GIB: u64 = 1 << 30;

fn cache_with(capacity: u64, config: AllocatorConfig) -> (CachingAllocator, Arc<Simulated>) {
    let sim = Arc::new(Simulated::new(1, capacity));
    let cache = CachingAllocator::new(sim.clone(), &config).unwrap();
    (cache, sim)
}

/// The reference's example (3 GiB in the large pool) plus small blocks, a
/// freed piece of a split segment and an OOM, so every row has numbers.
fn busy_cache() -> CachingAllocator {
    let (c, _) = cache_with(4 * GIB, AllocatorConfig::default());
    let big = c.malloc(0, 3 * GIB, 0).unwrap();
    let mids: Vec<u64> = (0..3).map(|_| c.malloc(0, 6 * MIB, 0).unwrap()).collect();
    let smalls: Vec<u64> = (0..5).map(|i| c.malloc(0, 1000 + i * 700, 0).unwrap()).collect();
    c.free(mids[1]).unwrap();
    c.free(smalls[2]).unwrap();
    assert!(matches!(c.malloc(0, 2 * GIB, 0), Err(CacheError::OutOfMemory(_))));
    let _ = big;
    c.check_invariants();
    c
}

#[test]
fn memory_summary_is_torchs_layout_full() {
    let c = busy_cache();
    let text = c.memory_summary(0, false).unwrap();
    assert!(text.lines().all(|l| l.chars().count() == 77), "75 characters between the borders");
    insta::assert_snapshot!("memory_summary_full", text);
}

#[test]
fn memory_summary_is_torchs_layout_abbreviated() {
    let c = busy_cache();
    let text = c.memory_summary(0, true).unwrap();
    assert!(!text.contains("from large pool"));
    insta::assert_snapshot!("memory_summary_abbreviated", text);
}

#[test]
fn memory_summary_of_a_fresh_device() {
    let (c, _) = cache_with(GIB, AllocatorConfig::default());
    insta::assert_snapshot!("memory_summary_empty", c.memory_summary(0, false).unwrap());
}

#[test]
fn memory_stats_json_is_flat_sorted_and_matches_the_accessors() {
    let c = busy_cache();
    let json: Value = serde_json::from_str(&c.memory_stats_json(0).unwrap()).unwrap();
    let map = json.as_object().unwrap();
    assert_eq!(map.len(), 122);
    let keys: Vec<&String> = map.keys().collect();
    let flat = c.memory_stats(0).unwrap();
    assert!(flat.windows(2).all(|w| w[0].0 < w[1].0), "sorted");
    assert_eq!(keys.len(), flat.len());
    assert_eq!(map["allocated_bytes.all.current"].as_u64().unwrap(), c.memory_allocated(0).unwrap());
    assert_eq!(map["allocated_bytes.all.peak"].as_u64().unwrap(), c.max_memory_allocated(0).unwrap());
    assert_eq!(map["reserved_bytes.all.current"].as_u64().unwrap(), c.memory_reserved(0).unwrap());
    assert_eq!(map["reserved_bytes.all.peak"].as_u64().unwrap(), c.max_memory_reserved(0).unwrap());
    assert_eq!(map["num_ooms"], 1);
    assert_eq!(map["max_split_size"], -1);
    assert_eq!(map["num_device_alloc"], 3);
}

#[test]
fn reset_peak_memory_stats_sets_peaks_to_current() {
    let (c, _) = cache_with(GIB, AllocatorConfig::default());
    let p = c.malloc(0, 100 * MIB, 0).unwrap();
    c.free(p).unwrap();
    assert_eq!(c.max_memory_allocated(0).unwrap(), 100 * MIB);
    c.reset_peak_stats(0).unwrap();
    assert_eq!(c.max_memory_allocated(0).unwrap(), 0);
    assert_eq!(c.max_memory_reserved(0).unwrap(), 100 * MIB, "still reserved (cached)");
    c.reset_accumulated_stats(0).unwrap();
    let s = c.stats(0).unwrap();
    assert_eq!((s.allocated_bytes.get(StatType::All).allocated, s.num_device_alloc), (0, 0));
}

#[test]
fn memory_snapshot_has_pytorchs_keys_and_block_states() {
    let (c, sim) = cache_with(GIB, AllocatorConfig::default());
    c.record_history(true, 100).unwrap();
    let side = c.create_stream(0).unwrap();
    let a = c.malloc(0, 3 * MIB, 0).unwrap();
    let b = c.malloc(0, 2 * MIB, 0).unwrap();
    let s = c.malloc(0, 700, 0).unwrap();
    c.record_stream(b, side).unwrap();
    c.free(b).unwrap(); // pending
    c.free(s).unwrap();
    let snap: Value = serde_json::from_str(&c.snapshot_json().unwrap()).unwrap();
    let segments = snap["segments"].as_array().unwrap();
    assert_eq!(segments.len(), 2);
    let large = segments.iter().find(|s| s["segment_type"] == "large").unwrap();
    for key in [
        "device",
        "address",
        "total_size",
        "allocated_size",
        "active_size",
        "requested_size",
        "stream",
        "segment_type",
        "segment_pool_id",
        "is_expandable",
        "frames",
        "blocks",
    ] {
        assert!(large.get(key).is_some(), "segment key {key}");
    }
    assert_eq!(large["address"].as_u64().unwrap(), a);
    assert_eq!(large["total_size"].as_u64().unwrap(), 20 * MIB);
    assert_eq!(large["allocated_size"].as_u64().unwrap(), 3 * MIB);
    assert_eq!(large["active_size"].as_u64().unwrap(), 5 * MIB);
    let states: Vec<&str> = large["blocks"].as_array().unwrap().iter().map(|b| b["state"].as_str().unwrap()).collect();
    assert_eq!(states, ["active_allocated", "active_pending_free", "inactive"]);
    let small = segments.iter().find(|s| s["segment_type"] == "small").unwrap();
    assert_eq!(small["blocks"].as_array().unwrap().len(), 1, "the freed small block merged back");
    let trace = snap["device_traces"][0].as_array().unwrap();
    let actions: Vec<&str> = trace.iter().map(|e| e["action"].as_str().unwrap()).collect();
    assert_eq!(
        actions,
        [
            "segment_alloc",
            "alloc",
            "alloc",
            "segment_alloc",
            "alloc",
            "free_requested",
            "free_requested",
            "free_completed"
        ]
    );
    assert!(trace.iter().all(|e| e.get("addr").is_some() && e.get("time_us").is_some() && e.get("stream").is_some()));
    assert_eq!(snap["allocator_settings"]["max_split_size"], -1);
    sim.complete_events(0);
    c.synchronize(0).unwrap();
    let last = c.history(0).unwrap().pop().unwrap();
    assert_eq!((last.action, last.addr), (Action::FreeCompleted, b));
}

#[test]
fn history_records_oom_with_the_free_bytes_and_disabling_clears_it() {
    let (c, _) = cache_with(100 * MIB, AllocatorConfig::default());
    c.record_history(true, 3).unwrap();
    assert!(c.malloc(0, 200 * MIB, 0).is_err());
    let h = c.history(0).unwrap();
    assert_eq!(h.last().unwrap().action, Action::Oom);
    assert_eq!(h.last().unwrap().addr, 100 * MIB, "device_free");
    let snap: Value = serde_json::from_str(&c.snapshot_json().unwrap()).unwrap();
    assert_eq!(snap["device_traces"][0][0]["device_free"], 100 * MIB);
    for _ in 0..5 {
        let p = c.malloc(0, KIB, 0).unwrap();
        c.free(p).unwrap();
    }
    assert_eq!(c.history(0).unwrap().len(), 3, "a ring of 3");
    c.record_history(false, 0).unwrap();
    assert!(c.history(0).unwrap().is_empty());
}

#[test]
fn release_all_gives_back_live_blocks_and_forgets_their_pointers() {
    // The seed's last line: "releasing all GPU memory without killing the
    // process: no way yet".
    let (c, sim) = cache_with(GIB, AllocatorConfig::default());
    let side = c.create_stream(0).unwrap();
    let live = c.malloc(0, 100 * MIB, 0).unwrap();
    let small = c.malloc(0, 4 * KIB, 0).unwrap();
    let cached = c.malloc(0, 50 * MIB, 0).unwrap();
    let pending = c.malloc(0, 8 * MIB, 0).unwrap();
    c.record_stream(pending, side).unwrap();
    c.free(cached).unwrap();
    c.free(pending).unwrap();
    let reserved = c.memory_reserved(0).unwrap();
    assert_eq!(reserved, 100 * MIB + 2 * MIB + 50 * MIB + 20 * MIB);
    let released = c.release_all(0).unwrap();
    assert_eq!(released, reserved);
    assert_eq!((c.memory_reserved(0).unwrap(), c.memory_allocated(0).unwrap()), (0, 0));
    assert_eq!(sim.used(0), 0);
    assert_eq!(sim.device_frees(0), sim.device_mallocs(0));
    assert_eq!(c.mem_get_info(0).unwrap(), (GIB, GIB));
    // Old pointers are unknown, never double-freed.
    for p in [live, small, cached, pending] {
        assert!(matches!(c.free(p), Err(CacheError::InvalidPointer(_))), "{p:#x}");
    }
    assert!(matches!(c.record_stream(live, side), Err(CacheError::InvalidPointer(_))));
    c.check_invariants();
    let s = c.stats(0).unwrap();
    assert_eq!(s.active.get(StatType::All).current, 0);
    assert_eq!(s.requested_bytes.get(StatType::All).current, 0);
    // The device hands the address out again: then it is a pointer again.
    let again = c.malloc(0, 100 * MIB, 0).unwrap();
    assert_eq!(again, live);
    c.free(again).unwrap();
    c.check_invariants();
}

#[test]
fn bad_pointers_are_refused_and_change_nothing() {
    let (c, sim) = cache_with(GIB, AllocatorConfig::default());
    let p = c.malloc(0, 4 * MIB, 0).unwrap();
    let before = c.stats(0).unwrap();
    assert!(matches!(c.free(p + 512), Err(CacheError::InvalidPointer(m)) if m.contains("inside a block")));
    assert!(matches!(c.free(12345), Err(CacheError::InvalidPointer(m)) if m.contains("not a pointer of this cache")));
    assert!(matches!(c.free(p + 4 * MIB), Err(CacheError::DoubleFree(_))), "the start of the free remainder");
    assert_eq!(c.stats(0).unwrap(), before);
    c.free(p).unwrap();
    assert!(matches!(c.free(p), Err(CacheError::DoubleFree(m)) if m.contains("double free")));
    assert!(c.free(0).is_ok(), "freeing the null pointer is fine");
    assert_eq!(c.malloc(0, 0, 0).unwrap(), 0, "0 bytes: the null pointer");
    assert!(matches!(c.malloc(1, 1, 0), Err(CacheError::InvalidDevice(_))));
    assert!(matches!(c.check_device(-1), Err(CacheError::InvalidDevice(_))));
    assert_eq!(sim.device_mallocs(0), 1);
    c.check_invariants();
}

#[test]
fn pass_through_calls_the_device_for_every_malloc_and_free() {
    let config = AllocatorConfig { caching: false, ..AllocatorConfig::default() };
    let (c, sim) = cache_with(GIB, config);
    for _ in 0..10 {
        let p = c.malloc(0, 3000, 0).unwrap();
        assert_eq!(c.memory_reserved(0).unwrap(), 3072);
        c.free(p).unwrap();
    }
    assert_eq!((sim.device_mallocs(0), sim.device_frees(0)), (10, 10));
    assert_eq!(c.memory_reserved(0).unwrap(), 0);
    c.check_invariants();
}

#[test]
fn empty_cache_waits_for_pending_frees() {
    let (c, sim) = cache_with(GIB, AllocatorConfig::default());
    let side = c.create_stream(0).unwrap();
    let p = c.malloc(0, 30 * MIB, 0).unwrap();
    c.record_stream(p, side).unwrap();
    c.free(p).unwrap();
    c.empty_cache().unwrap();
    assert_eq!(c.memory_reserved(0).unwrap(), 0, "synchronized, then released");
    assert_eq!(sim.outstanding_events(0), 0);
    c.destroy_stream(0, side).unwrap();
    c.check_invariants();
}
