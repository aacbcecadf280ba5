//! PyTorch's rules, one test each, on the simulated device. Every test
//! names the rule it checks; every test ends with the cache's invariants.

use std::sync::Arc;

use cuda_cache::{AllocatorConfig, CacheError, CachingAllocator, DeviceStats, Simulated, StatType};

const KIB: u64 = 1 << 10;
const MIB: u64 = 1 << 20;
const GIB: u64 = 1 << 30;

fn cache_with(capacity: u64, config: AllocatorConfig) -> (CachingAllocator, Arc<Simulated>) {
    let sim = Arc::new(Simulated::new(1, capacity));
    let cache = CachingAllocator::new(sim.clone(), &config).unwrap();
    (cache, sim)
}

fn cache() -> (CachingAllocator, Arc<Simulated>) {
    cache_with(8 * GIB, AllocatorConfig::default())
}

fn stats(c: &CachingAllocator) -> DeviceStats {
    c.stats(0).unwrap()
}

fn reserved(c: &CachingAllocator) -> u64 {
    c.memory_reserved(0).unwrap()
}

fn allocated(c: &CachingAllocator) -> u64 {
    c.memory_allocated(0).unwrap()
}

#[test]
fn rule_small_request_reserves_a_2_mib_segment() {
    let (c, sim) = cache();
    let p = c.malloc(0, KIB, 0).unwrap();
    assert_eq!(reserved(&c), 2 * MIB);
    assert_eq!(allocated(&c), KIB); // 1024 is a multiple of 512
    assert_eq!(stats(&c).segment.get(StatType::SmallPool).current, 1);
    assert_eq!(sim.device_mallocs(0), 1);
    // A second small request is carved from the same segment.
    let q = c.malloc(0, 100, 0).unwrap();
    assert_eq!(q, p + KIB);
    assert_eq!((reserved(&c), allocated(&c)), (2 * MIB, KIB + 512));
    assert_eq!(stats(&c).requested_bytes.get(StatType::All).current, (KIB + 100) as i64);
    assert_eq!(sim.device_mallocs(0), 1);
    c.check_invariants();
}

#[test]
fn rule_request_below_10_mib_reserves_a_20_mib_segment() {
    let (c, _) = cache();
    c.malloc(0, 5 * MIB, 0).unwrap();
    assert_eq!(reserved(&c), 20 * MIB);
    assert_eq!(stats(&c).segment.get(StatType::LargePool).current, 1);
    // The rest (15 MiB) is a free piece of a split segment: not releasable.
    assert_eq!(stats(&c).inactive_split_bytes.get(StatType::All).current, (15 * MIB) as i64);
    assert_eq!(stats(&c).inactive_split.get(StatType::All).current, 1);
    c.check_invariants();
}

#[test]
fn rule_large_request_reserves_its_size_rounded_to_2_mib() {
    let (c, _) = cache();
    c.malloc(0, 15 * MIB, 0).unwrap();
    assert_eq!(reserved(&c), 16 * MIB);
    // 1 MiB left is not more than kSmallSize: no split.
    assert_eq!(stats(&c).inactive_split.get(StatType::All).current, 0);
    assert_eq!(allocated(&c), 16 * MIB);
    c.check_invariants();
}

#[test]
fn rule_a_freed_block_is_reused_for_a_smaller_request_and_split() {
    let (c, sim) = cache();
    let big = c.malloc(0, 12 * MIB, 0).unwrap(); // 12 MiB segment, whole
    c.free(big).unwrap();
    assert_eq!((reserved(&c), allocated(&c)), (12 * MIB, 0));
    let small = c.malloc(0, 4 * MIB, 0).unwrap();
    assert_eq!(small, big, "best fit: the cached block, its front");
    assert_eq!(sim.device_mallocs(0), 1, "no new device malloc");
    assert_eq!(reserved(&c), 12 * MIB);
    assert_eq!(allocated(&c), 4 * MIB);
    // The remainder is the next request's.
    let rest = c.malloc(0, 8 * MIB, 0).unwrap();
    assert_eq!(rest, big + 4 * MIB);
    assert_eq!(sim.device_mallocs(0), 1);
    c.check_invariants();
}

#[test]
fn rule_best_fit_is_the_smallest_block_then_the_lowest_address() {
    let (c, _) = cache();
    let a = c.malloc(0, 30 * MIB, 0).unwrap();
    let b = c.malloc(0, 14 * MIB, 0).unwrap();
    let d = c.malloc(0, 14 * MIB, 0).unwrap();
    c.free(a).unwrap();
    c.free(d).unwrap();
    c.free(b).unwrap();
    // 14 MiB blocks at b and d: the lower address wins over the 30 MiB one.
    let e = c.malloc(0, 13 * MIB, 0).unwrap();
    assert_eq!(e, b.min(d));
    c.check_invariants();
}

#[test]
fn rule_free_neighbours_merge() {
    let (c, _) = cache();
    let a = c.malloc(0, 2 * MIB, 0).unwrap();
    let b = c.malloc(0, 2 * MIB, 0).unwrap();
    let d = c.malloc(0, 2 * MIB, 0).unwrap();
    assert_eq!((b, d), (a + 2 * MIB, a + 4 * MIB), "three blocks of one 20 MiB segment");
    assert_eq!(stats(&c).inactive_split.get(StatType::All).current, 1);
    c.free(a).unwrap();
    c.free(d).unwrap(); // merges with the 14 MiB tail
    assert_eq!(stats(&c).inactive_split.get(StatType::All).current, 2);
    c.free(b).unwrap(); // merges with both: the segment is whole again
    let s = stats(&c);
    assert_eq!(s.inactive_split.get(StatType::All).current, 0);
    assert_eq!(s.inactive_split_bytes.get(StatType::All).current, 0);
    // Whole, it can be given back.
    c.empty_cache().unwrap();
    assert_eq!(reserved(&c), 0);
    c.check_invariants();
}

#[test]
fn rule_empty_cache_releases_only_wholly_free_segments() {
    // The seed's "memory held by tensors is not released".
    let (c, sim) = cache();
    let kept = c.malloc(0, MIB, 0).unwrap(); // 1 MiB is still small: a 2 MiB segment
    let kept_large = c.malloc(0, 4 * MIB, 0).unwrap(); // a 20 MiB segment
    let gone = c.malloc(0, 40 * MIB, 0).unwrap();
    let gone_small = c.malloc(0, 3 * KIB, 0).unwrap(); // same 2 MiB segment as `kept`
    c.free(gone).unwrap();
    c.free(gone_small).unwrap();
    assert_eq!(reserved(&c), 2 * MIB + 20 * MIB + 40 * MIB);
    c.empty_cache().unwrap();
    assert_eq!(reserved(&c), 22 * MIB, "only the 40 MiB segment was free");
    assert_eq!(sim.device_frees(0), 1);
    assert_eq!(stats(&c).num_sync_all_streams, 1);
    c.free(kept).unwrap();
    c.free(kept_large).unwrap();
    c.empty_cache().unwrap();
    assert_eq!(reserved(&c), 0);
    assert_eq!(sim.used(0), 0);
    c.check_invariants();
}

#[test]
fn rule_record_stream_defers_the_free_until_the_event_completes() {
    let (c, sim) = cache();
    let side = c.create_stream(0).unwrap();
    let p = c.malloc(0, 4 * MIB, 0).unwrap();
    c.record_stream(p, side).unwrap();
    c.record_stream(p, 0).unwrap(); // the allocation stream: ignored
    c.free(p).unwrap();
    let s = stats(&c);
    assert_eq!(s.allocated_bytes.get(StatType::All).current, 0, "allocated drops at free()");
    assert_eq!(s.active_bytes.get(StatType::All).current, (4 * MIB) as i64, "active until the event completes");
    assert_eq!(sim.outstanding_events(0), 1);
    // Not reusable while pending: a new request gets other memory.
    let q = c.malloc(0, 4 * MIB, 0).unwrap();
    assert_ne!(q, p);
    c.check_invariants();
    // The side stream finishes; the next malloc retires the block.
    sim.complete_events(0);
    let r = c.malloc(0, 4 * MIB, 0).unwrap();
    assert_eq!(r, p, "reused once its event completed");
    assert_eq!(sim.outstanding_events(0), 0);
    assert_eq!(stats(&c).active_bytes.get(StatType::All).current, (8 * MIB) as i64);
    // A double free of a pending block is refused.
    c.record_stream(r, side).unwrap();
    c.free(r).unwrap();
    assert!(matches!(c.free(r), Err(CacheError::DoubleFree(_))));
    // synchronize completes events and retires the block.
    c.synchronize(0).unwrap();
    assert_eq!(stats(&c).active_bytes.get(StatType::All).current, (4 * MIB) as i64);
    c.check_invariants();
}

#[test]
fn rule_blocks_of_another_stream_are_never_reused() {
    let (c, sim) = cache();
    let s1 = c.create_stream(0).unwrap();
    let p = c.malloc(0, 4 * MIB, 0).unwrap();
    c.free(p).unwrap();
    let q = c.malloc(0, 4 * MIB, s1).unwrap();
    assert_ne!(q, p);
    assert_eq!(sim.device_mallocs(0), 2);
    let r = c.malloc(0, 4 * MIB, 0).unwrap();
    assert_eq!(r, p, "same stream: reused");
    c.check_invariants();
}

#[test]
fn rule_a_request_that_does_not_fit_empties_the_cache_retries_then_ooms() {
    let (c, sim) = cache_with(100 * MIB, AllocatorConfig::default());
    let a = c.malloc(0, 40 * MIB, 0).unwrap();
    let b = c.malloc(0, 40 * MIB, 0).unwrap();
    c.free(a).unwrap();
    // 60 MiB does not fit next to 80 MiB reserved; the cached 40 MiB goes
    // back to the device and the retry succeeds.
    let d = c.malloc(0, 60 * MIB, 0).unwrap();
    let s = stats(&c);
    assert_eq!(s.num_alloc_retries, 1);
    assert_eq!(s.num_ooms, 0);
    assert_eq!(reserved(&c), 100 * MIB);
    assert_eq!(sim.device_frees(0), 1);
    // Nothing cached is left to give back: out of memory.
    let err = c.malloc(0, 10 * MIB, 0).unwrap_err();
    let CacheError::OutOfMemory(message) = err else { panic!("{err:?}") };
    assert_eq!(
        message,
        "CUDA out of memory. Tried to allocate 10.00 MiB. GPU 0 has a total capacity of 100.00 MiB of which 0 bytes \
         is free. Of the allocated memory 100.00 MiB is allocated by PyTorch, and 0 bytes is reserved by PyTorch but \
         unallocated. If reserved but unallocated memory is large try setting \
         PYTORCH_CUDA_ALLOC_CONF=expandable_segments:True to avoid fragmentation."
    );
    let s = stats(&c);
    assert_eq!((s.num_ooms, s.num_alloc_retries), (1, 2));
    c.free(b).unwrap();
    c.free(d).unwrap();
    c.check_invariants();
}

#[test]
fn rule_memory_fraction_limits_reserved_bytes() {
    let (c, sim) = cache_with(1000 * MIB, AllocatorConfig::default());
    c.set_memory_fraction(0, 0.5).unwrap();
    assert_eq!(c.allowed_memory(0).unwrap(), Some(500 * MIB));
    let a = c.malloc(0, 400 * MIB, 0).unwrap();
    let err = c.malloc(0, 200 * MIB, 0).unwrap_err();
    let CacheError::OutOfMemory(message) = err else { panic!("{err:?}") };
    assert!(message.contains("500.00 MiB allowed; Of the allocated memory 400.00 MiB"), "{message}");
    assert_eq!(sim.device_mallocs(0), 1, "refused without calling the device");
    assert!(reserved(&c) <= 500 * MIB);
    assert!(matches!(c.set_memory_fraction(0, 1.5), Err(CacheError::InvalidArgument(_))));
    assert!(matches!(c.set_memory_fraction(0, -0.1), Err(CacheError::InvalidArgument(_))));
    c.free(a).unwrap();
    c.check_invariants();
}

#[test]
fn rule_oversize_blocks_are_not_split_nor_given_to_small_requests_and_go_back_first() {
    let mut config = AllocatorConfig::default();
    config.parse("max_split_size_mb:64").unwrap();
    let (c, sim) = cache_with(200 * MIB, config);
    let big = c.malloc(0, 100 * MIB, 0).unwrap();
    assert_eq!(stats(&c).oversize_allocations.current, 1);
    assert_eq!(stats(&c).oversize_segments.current, 1);
    c.free(big).unwrap();
    assert_eq!(stats(&c).oversize_allocations.current, 0);
    // A small request does not take the cached 100 MiB block: a new segment.
    let small = c.malloc(0, 30 * MIB, 0).unwrap();
    assert_ne!(small, big);
    assert_eq!(reserved(&c), 130 * MIB);
    // An oversize request within 20 MiB of it takes it, whole.
    let again = c.malloc(0, 90 * MIB, 0).unwrap();
    assert_eq!(again, big);
    assert_eq!(allocated(&c), 130 * MIB, "not split: the whole 100 MiB is allocated");
    c.free(again).unwrap();
    // 80 MiB may not take the cached 100 MiB block (it would waste 20 MiB)
    // and does not fit beside it in 200 MiB: the cached oversize block goes
    // back first, without a full flush (no retry counted).
    let huge = c.malloc(0, 80 * MIB, 0).unwrap();
    assert_eq!(stats(&c).num_alloc_retries, 0);
    assert_eq!(stats(&c).num_sync_all_streams, 0);
    assert_eq!(sim.device_frees(0), 1);
    assert_eq!(reserved(&c), 110 * MIB);
    c.free(huge).unwrap();
    c.free(small).unwrap();
    c.check_invariants();
}

#[test]
fn rule_garbage_collection_frees_old_cached_blocks_above_the_threshold() {
    let mut config = AllocatorConfig::default();
    config.parse("garbage_collection_threshold:0.5").unwrap();
    config.memory_fraction = Some(1.0);
    let (c, sim) = cache_with(100 * MIB, config);
    let old = c.malloc(0, 40 * MIB, 0).unwrap();
    c.free(old).unwrap();
    // Reserved 40 MiB <= 50 MiB threshold: no GC, a new segment.
    let x = c.malloc(0, 41 * MIB, 0).unwrap();
    assert_eq!(reserved(&c), 40 * MIB + 42 * MIB);
    // Reserved 82 MiB > 50 MiB: the next miss (45 MiB: the cached 40 MiB
    // block is too small) collects the old free segment before asking the
    // device, without a full flush.
    let y = c.malloc(0, 45 * MIB, 0).unwrap();
    assert_eq!(sim.device_frees(0), 1, "the 40 MiB block went back");
    assert_eq!(stats(&c).num_sync_all_streams, 0);
    assert_eq!(reserved(&c), 42 * MIB + 46 * MIB);
    c.free(x).unwrap();
    c.free(y).unwrap();
    c.check_invariants();
}

#[test]
fn rule_pending_frees_are_queued_per_stream_so_one_slow_stream_blocks_no_other() {
    let (c, sim) = cache();
    let (s1, s2) = (c.create_stream(0).unwrap(), c.create_stream(0).unwrap());
    let a = c.malloc(0, 30 * MIB, 0).unwrap();
    let b = c.malloc(0, 30 * MIB, 0).unwrap();
    c.record_stream(a, s1).unwrap();
    c.record_stream(b, s2).unwrap();
    c.free(a).unwrap();
    c.free(b).unwrap();
    // Stream 2 finishes, stream 1 does not: b is retired at the next malloc, a waits.
    sim.complete_stream(0, s2);
    let d = c.malloc(0, 30 * MIB, 0).unwrap();
    assert_eq!(d, b, "b was freed and reused");
    assert_eq!(sim.outstanding_events(0), 1, "a's event still pending");
    assert_eq!(c.stats(0).unwrap().active_bytes.get(StatType::All).current, (60 * MIB) as i64);
    sim.complete_stream(0, s1);
    let e = c.malloc(0, 30 * MIB, 0).unwrap();
    assert_eq!(e, a);
    c.check_invariants();
}

#[test]
fn rule_garbage_collection_frees_the_blocks_of_at_least_average_age_first() {
    let mut config = AllocatorConfig::default();
    config.parse("garbage_collection_threshold:0.5").unwrap();
    config.memory_fraction = Some(1.0);
    let (c, sim) = cache_with(100 * MIB, config);
    let old = c.malloc(0, 30 * MIB, 0).unwrap();
    let young = c.malloc(0, 24 * MIB, 0).unwrap();
    c.free(old).unwrap();
    c.free(young).unwrap();
    // Reuse the 24 MiB block a few times: its age (lookups since it was
    // cached) restarts each time, the 30 MiB block's keeps growing.
    for _ in 0..3 {
        let p = c.malloc(0, 24 * MIB, 0).unwrap();
        assert_eq!(p, young);
        c.free(p).unwrap();
    }
    // 54 MiB reserved > 50 MiB: a miss collects the old block only.
    let big = c.malloc(0, 45 * MIB, 0).unwrap();
    assert_eq!(sim.device_frees(0), 1);
    assert_eq!(stats(&c).num_sync_all_streams, 0, "garbage collection, not a flush of the cache");
    assert_eq!(reserved(&c), 24 * MIB + 46 * MIB, "the young block stays cached");
    let again = c.malloc(0, 24 * MIB, 0).unwrap();
    assert_eq!(again, young);
    c.free(again).unwrap();
    c.free(big).unwrap();
    c.check_invariants();
}
