//! Random operation sequences against the cache's invariants: after every
//! malloc, free, record_stream, event completion, synchronize, empty_cache
//! and release_all the blocks tile their segments, the pools hold exactly
//! the free blocks, and every statistic agrees with the blocks. Live blocks
//! never overlap. Several configurations, small devices (so OOM, the
//! retries, oversize release and garbage collection all run).

use std::sync::Arc;

use cuda_cache::{AllocatorConfig, CacheError, CachingAllocator, Simulated};

const MIB: u64 = 1 << 20;

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

fn run(conf: &str, fraction: Option<f64>, seed: u64) {
    let mut config = AllocatorConfig::default();
    config.parse(conf).unwrap();
    config.memory_fraction = fraction;
    config.history_max_entries = 64;
    let sim = Arc::new(Simulated::new(1, 512 * MIB));
    let cache = CachingAllocator::new(sim.clone(), &config).unwrap();
    let streams = [0, cache.create_stream(0).unwrap(), cache.create_stream(0).unwrap()];
    let mut rng = Rng(seed);
    // (address, requested size)
    let mut live: Vec<(u64, u64)> = Vec::new();
    for _ in 0..3000 {
        let r = rng.next();
        match r % 100 {
            0..=49 => {
                let size = match rng.next() % 5 {
                    0 => rng.next() % 2048,
                    1 => rng.next() % (2 * MIB),
                    2 => rng.next() % (16 * MIB),
                    3 => rng.next() % (64 * MIB),
                    _ => rng.next() % (200 * MIB),
                };
                let stream = streams[(rng.next() % 3) as usize];
                match cache.malloc(0, size, stream) {
                    Ok(0) => assert_eq!(size, 0),
                    Ok(p) => {
                        for &(q, qs) in &live {
                            assert!(p + size <= q || q + qs <= p, "live blocks overlap: {p:#x}+{size} and {q:#x}+{qs}");
                        }
                        live.push((p, size));
                    }
                    Err(CacheError::OutOfMemory(m)) => assert!(m.starts_with("CUDA out of memory. Tried to allocate ")),
                    Err(e) => panic!("{e:?}"),
                }
            }
            50..=84 if !live.is_empty() => {
                let (p, _) = live.swap_remove((rng.next() % live.len() as u64) as usize);
                cache.free(p).unwrap();
                assert!(matches!(cache.free(p), Err(CacheError::DoubleFree(_) | CacheError::InvalidPointer(_))));
            }
            85..=89 if !live.is_empty() => {
                let (p, _) = live[(rng.next() % live.len() as u64) as usize];
                cache.record_stream(p, streams[(rng.next() % 3) as usize]).unwrap();
            }
            90..=93 => sim.complete_events(0),
            94..=95 => cache.synchronize(0).unwrap(),
            96..=97 => cache.empty_cache().unwrap(),
            98 => {
                cache.release_all(0).unwrap();
                live.clear();
                assert_eq!(sim.used(0), 0);
            }
            _ => cache.reset_peak_stats(0).unwrap(),
        }
        cache.check_invariants();
        let reserved = cache.memory_reserved(0).unwrap();
        assert_eq!(sim.used(0), reserved, "the device holds exactly the reserved bytes");
        if let Some(allowed) = cache.allowed_memory(0).unwrap() {
            assert!(reserved <= allowed, "reserved {reserved} over the fraction's {allowed}");
        }
    }
    for (p, _) in live {
        cache.free(p).unwrap();
    }
    cache.synchronize(0).unwrap();
    cache.empty_cache().unwrap();
    cache.check_invariants();
    assert_eq!(cache.memory_reserved(0).unwrap(), 0);
    assert_eq!(sim.device_mallocs(0), sim.device_frees(0));
}

#[test]
fn invariants_hold_under_pytorchs_defaults() {
    for seed in 1..=4 {
        run("", None, seed);
    }
}

#[test]
fn invariants_hold_with_max_split_size_and_roundup_divisions() {
    for seed in 5..=8 {
        run("max_split_size_mb:48,roundup_power2_divisions:[1:4,64:2,>:8]", None, seed);
    }
}

#[test]
fn invariants_hold_with_a_memory_fraction_and_garbage_collection() {
    for seed in 9..=12 {
        run("garbage_collection_threshold:0.5", Some(0.6), seed);
        run("max_split_size_mb:32", Some(0.8), seed);
    }
}
