//! Rule: one cache may be called from many threads at once. Eight threads
//! allocate, free and record streams on two devices; at the end every stat
//! balances exactly.

use std::sync::Arc;

use cuda_cache::{AllocatorConfig, CachingAllocator, Simulated, StatType};

#[test]
fn eight_threads_allocating_and_freeing_leave_balanced_stats() {
    let sim = Arc::new(Simulated::new(2, 4 << 30));
    let cache = Arc::new(CachingAllocator::new(sim.clone(), &AllocatorConfig::default()).unwrap());
    let threads: Vec<_> = (0..8u64)
        .map(|t| {
            let cache = cache.clone();
            std::thread::spawn(move || {
                let device = (t % 2) as usize;
                let stream = if t % 4 == 0 { 0 } else { cache.create_stream(device).unwrap() };
                let mut live = Vec::new();
                let mut x = 0x9e37_79b9_7f4a_7c15u64 ^ t;
                let mut total_requested = 0u64;
                for i in 0..3000 {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    let size = match x % 4 {
                        0 => 1 + x % 4096,
                        1 => 1 + x % (1 << 20),
                        2 => (1 << 20) + x % (12 << 20),
                        _ => 1 + x % (64 << 20),
                    };
                    live.push(cache.malloc(device, size, stream).unwrap());
                    total_requested += size;
                    if i % 7 == 0 {
                        cache.record_stream(*live.last().unwrap(), 0xabc).unwrap();
                    }
                    if live.len() > 16 || x.is_multiple_of(3) {
                        let p = live.swap_remove((x % live.len() as u64) as usize);
                        cache.free(p).unwrap();
                    }
                }
                for p in live {
                    cache.free(p).unwrap();
                }
                total_requested
            })
        })
        .collect();
    let requested: u64 = threads.into_iter().map(|t| t.join().unwrap()).sum();
    for device in 0..2 {
        cache.synchronize(device).unwrap();
        let s = cache.stats(device).unwrap();
        for (name, array) in s.named_arrays() {
            let all = array.get(StatType::All);
            if matches!(name, "segment" | "reserved_bytes" | "inactive_split" | "inactive_split_bytes") {
                continue;
            }
            assert_eq!(all.current, 0, "{name}.all.current on device {device}");
            assert_eq!(all.allocated, all.freed, "{name}: allocated == freed on device {device}");
        }
        assert_eq!(s.allocation.get(StatType::All).allocated, 4 * 3000, "device {device}: every malloc counted");
    }
    let requested_counted: i64 =
        (0..2).map(|d| cache.stats(d).unwrap().requested_bytes.get(StatType::All).allocated).sum();
    assert_eq!(requested_counted as u64, requested);
    cache.check_invariants();
    cache.empty_cache().unwrap();
    for device in 0..2 {
        let s = cache.stats(device).unwrap();
        assert_eq!(s.reserved_bytes.get(StatType::All).current, 0);
        assert_eq!(s.segment.get(StatType::All).allocated, s.segment.get(StatType::All).freed);
        assert_eq!(sim.used(device), 0);
        assert_eq!(sim.device_mallocs(device), sim.device_frees(device));
    }
    cache.check_invariants();
}
