// cpp_cuda: pymem.hpp's GPU layer: CudaConfig (parse throws with PyTorch's
// message), CudaCache (RAII, reports), DeviceBuffer (freed by its
// destructor, moves, release_all leaves it owning nothing).
#include <cstdio>
#include <string>
#include <utility>

#include "check.h"
#include "pymem.hpp"

int main() {
    constexpr uint64_t MiB = 1ull << 20;
    try {
        pymem::CudaConfig().parse("max_split_size_mb:10");
        CHECK(!"parse must throw");
    } catch (const pymem::Error &e) {
        CHECK(e.code() == PYMEM_ERR_INVALID_ARGUMENT);
        CHECK_CONTAINS(e.message(), "max_split_size_mb too small, must be > 20");
    }
    pymem::CudaCache cache(pymem::CudaConfig::simulated(1, 1ull << 30).parse("garbage_collection_threshold:0.5"));
    {
        pymem::DeviceBuffer a = cache.malloc(0, 5 * MiB);
        CHECK(a.get() != 0);
        CHECK_EQ_U64(cache.memory_reserved(), 20 * MiB);
        pymem::DeviceBuffer b = std::move(a);
        CHECK(a.get() == 0);
        CHECK_EQ_U64(cache.memory_allocated(), 5 * MiB);
        uintptr_t side = cache.stream_create();
        b.record_stream(side);
        b.reset();
        CHECK_EQ_U64(cache.memory_allocated(), 0);
        cache.synchronize();
        cache.stream_destroy(side);
    }
    CHECK_EQ_U64(cache.memory_reserved(), 20 * MiB);
    cache.empty_cache();
    CHECK_EQ_U64(cache.memory_reserved(), 0);
    cache.record_history(true, 8);
    pymem::DeviceBuffer kept = cache.malloc(0, 100 * MiB);
    const std::string summary = cache.memory_summary(0, true);
    const std::string stats = cache.memory_stats();
    const std::string snapshot = cache.memory_snapshot();
    CHECK_CONTAINS(summary.c_str(), "| Allocated memory      | 102400 KiB |");
    CHECK_CONTAINS(stats.c_str(), "\"allocated_bytes.all.current\": 104857600");
    CHECK_CONTAINS(snapshot.c_str(), "\"action\": \"alloc\"");
    CHECK_EQ_U64(cache.release_all(), 100 * MiB);
    auto info = cache.mem_get_info();
    CHECK_EQ_U64(info.first, info.second);
    kept.reset();  // refused quietly: release_all gave it back
    try {
        cache.set_per_process_memory_fraction(2.0);
        CHECK(!"must throw");
    } catch (const pymem::Error &e) {
        CHECK(e.code() == PYMEM_ERR_INVALID_ARGUMENT);
    }
    try {
        cache.malloc(3, 1);
        CHECK(!"must throw");
    } catch (const pymem::Error &e) {
        CHECK(e.code() == PYMEM_ERR_INDEX);
        CHECK_CONTAINS(e.message(), "invalid device index 3");
    }
    pymem::CudaCache moved = std::move(cache);
    CHECK(cache.get() == nullptr);
    CHECK_EQ_U64(moved.max_memory_reserved(), 100 * MiB);
    std::puts("cpp_cuda: ok");
    return 0;
}
