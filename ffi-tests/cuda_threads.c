/*
 * cuda_threads: one cache, eight threads allocating, recording streams and
 * freeing at once on two simulated devices; each thread's errors are its
 * own (pymem_cuda_last_error is per thread); at the end every statistic
 * balances exactly and empty_cache gives everything back.
 */
#include <pthread.h>

#include "check.h"

#define THREADS 8

static pymem_cuda_cache *cache;
static size_t rounds;

static long long stats_value(int device, const char *key) {
    char *json = NULL;
    CHECK_CUDA_OK(cache, pymem_cuda_memory_stats(cache, device, &json));
    char pattern[128];
    snprintf(pattern, sizeof pattern, "\"%s\": ", key);
    const char *at = strstr(json, pattern);
    CHECKF(at != NULL, "key %s", key);
    long long v = strtoll(at + strlen(pattern), NULL, 10);
    pymem_string_free(json);
    return v;
}

static void *worker(void *arg) {
    uintptr_t t = (uintptr_t)arg;
    int device = (int)(t % 2);
    uintptr_t stream = 0;
    if (t % 4 != 0) {
        CHECK_CUDA_OK(cache, pymem_cuda_stream_create(cache, device, &stream));
    }
    uint64_t live[32];
    size_t n = 0;
    uint64_t x = 0x9e3779b97f4a7c15ull ^ t;
    for (size_t i = 0; i < rounds; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        size_t size = (x % 4 == 0) ? 1 + x % 4096 : (x % 4 == 1) ? 1 + x % (1 << 20) : 1 + x % (24u << 20);
        CHECK_CUDA_OK(cache, pymem_cuda_malloc(cache, device, size, stream, &live[n]));
        if (i % 5 == 0) {
            CHECK_CUDA_OK(cache, pymem_cuda_record_stream(cache, live[n], 0xabc));
        }
        n++;
        if (n == 32 || x % 3 == 0) {
            size_t k = (size_t)(x % n);
            CHECK_CUDA_OK(cache, pymem_cuda_free(cache, live[k]));
            live[k] = live[--n];
        }
        if (i % 97 == 0) {
            /* A failure of this thread: its own message, not another's. */
            char needle[64];
            snprintf(needle, sizeof needle, "invalid device index %d", 100 + (int)t);
            CHECK_CUDA_FAILS(cache, pymem_cuda_synchronize(cache, 100 + (int)t), PYMEM_ERR_INDEX, needle);
        }
    }
    while (n > 0) {
        CHECK_CUDA_OK(cache, pymem_cuda_free(cache, live[--n]));
    }
    return NULL;
}

int main(void) {
    rounds = scaled(4000, 400);
    pymem_cuda_config cfg;
    pymem_cuda_config_init(&cfg);
    cfg.backend = PYMEM_CUDA_BACKEND_SIMULATED;
    cfg.simulated_devices = 2;
    cfg.simulated_capacity = 8ull << 30;
    CHECK_CUDA_OK(NULL, pymem_cuda_cache_new(&cfg, &cache));
    pthread_t threads[THREADS];
    for (uintptr_t t = 0; t < THREADS; t++) {
        CHECK(pthread_create(&threads[t], NULL, worker, (void *)t) == 0);
    }
    for (int t = 0; t < THREADS; t++) {
        CHECK(pthread_join(threads[t], NULL) == 0);
    }
    for (int d = 0; d < 2; d++) {
        CHECK_CUDA_OK(cache, pymem_cuda_synchronize(cache, d));
        CHECK_EQ_U64(stats_value(d, "allocation.all.current"), 0);
        CHECK_EQ_U64(stats_value(d, "allocation.all.allocated"), rounds * THREADS / 2);
        CHECK_EQ_U64(stats_value(d, "allocation.all.freed"), rounds * THREADS / 2);
        CHECK_EQ_U64(stats_value(d, "allocated_bytes.all.current"), 0);
        CHECK_EQ_U64(stats_value(d, "allocated_bytes.all.allocated"), stats_value(d, "allocated_bytes.all.freed"));
        CHECK_EQ_U64(stats_value(d, "active_bytes.all.current"), 0);
        CHECK_EQ_U64(stats_value(d, "requested_bytes.all.current"), 0);
        CHECK_EQ_U64(stats_value(d, "active.all.allocated"), stats_value(d, "active.all.freed"));
    }
    CHECK_CUDA_OK(cache, pymem_cuda_empty_cache(cache));
    for (int d = 0; d < 2; d++) {
        uint64_t reserved = 1, free_b = 0, total = 0;
        CHECK_CUDA_OK(cache, pymem_cuda_memory_reserved(cache, d, &reserved));
        CHECK_EQ_U64(reserved, 0);
        CHECK_EQ_U64(stats_value(d, "num_device_alloc"), stats_value(d, "num_device_free"));
        CHECK_EQ_U64(stats_value(d, "segment.all.current"), 0);
        CHECK_EQ_U64(stats_value(d, "inactive_split.all.current"), 0);
        CHECK_CUDA_OK(cache, pymem_cuda_mem_get_info(cache, d, &free_b, &total));
        CHECK_EQ_U64(free_b, total);
    }
    CHECK_CUDA_OK(NULL, pymem_cuda_cache_free(cache));
    puts("cuda_threads: ok");
    return 0;
}
