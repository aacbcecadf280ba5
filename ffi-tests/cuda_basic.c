/*
 * cuda_basic: every pymem_cuda_* entry point on the simulated device, with
 * PyTorch's numbers: segment sizes, reuse and split, merge, empty_cache
 * keeping segments with live blocks, record_stream, the retry before an
 * OOM and its message, the memory fraction, the reports, release_all.
 */
#include "check.h"

#define KIB (1024ull)
#define MIB (1024ull * 1024)
#define GIB (1024ull * MIB)

static uint64_t stat_of(pymem_cuda_cache *c, pymem_status (*fn)(const pymem_cuda_cache *, int, uint64_t *)) {
    uint64_t v = 0;
    CHECK_CUDA_OK(c, fn(c, 0, &v));
    return v;
}

static uint64_t reserved(pymem_cuda_cache *c) { return stat_of(c, pymem_cuda_memory_reserved); }
static uint64_t allocated(pymem_cuda_cache *c) { return stat_of(c, pymem_cuda_memory_allocated); }

/* The value of one key of the memory_stats JSON ("key": value). */
static long long stats_value(pymem_cuda_cache *c, const char *key) {
    char *json = NULL;
    CHECK_CUDA_OK(c, pymem_cuda_memory_stats(c, 0, &json));
    char pattern[128];
    snprintf(pattern, sizeof pattern, "\"%s\": ", key);
    const char *at = strstr(json, pattern);
    CHECKF(at != NULL, "key %s not in the stats", key);
    long long v = strtoll(at + strlen(pattern), NULL, 10);
    pymem_string_free(json);
    return v;
}

static pymem_cuda_cache *simulated(uint64_t capacity) {
    pymem_cuda_config cfg;
    pymem_cuda_config_init(&cfg);
    CHECK(cfg.backend == PYMEM_CUDA_BACKEND_AUTO);
    CHECK(cfg.max_split_size == PYMEM_CUDA_UNLIMITED_SPLIT);
    cfg.backend = PYMEM_CUDA_BACKEND_SIMULATED;
    cfg.simulated_capacity = capacity;
    pymem_cuda_cache *c = NULL;
    CHECK_CUDA_OK(NULL, pymem_cuda_cache_new(&cfg, &c));
    CHECK(c != NULL);
    return c;
}

static void segment_sizes(void) {
    pymem_cuda_cache *c = simulated(8 * GIB);
    int32_t backend = -1;
    int count = 0;
    CHECK_CUDA_OK(c, pymem_cuda_backend(c, &backend));
    CHECK_EQ_U64(backend, PYMEM_CUDA_BACKEND_SIMULATED);
    CHECK_CUDA_OK(c, pymem_cuda_device_count(c, &count));
    CHECK_EQ_U64(count, 1);
    uint64_t a, b, d;
    CHECK_CUDA_OK(c, pymem_cuda_malloc(c, 0, KIB, 0, &a));
    CHECK_EQ_U64(reserved(c), 2 * MIB); /* 1 KiB: a 2 MiB segment */
    CHECK_CUDA_OK(c, pymem_cuda_malloc(c, 0, 15 * MIB, 0, &d));
    CHECK_EQ_U64(reserved(c), 2 * MIB + 16 * MIB); /* 15 MiB: 16 MiB */
    CHECK_CUDA_OK(c, pymem_cuda_malloc(c, 0, 5 * MIB, 0, &b));
    CHECK_EQ_U64(reserved(c), 2 * MIB + 16 * MIB + 20 * MIB); /* 5 MiB: a 20 MiB segment */
    CHECK_EQ_U64(allocated(c), KIB + 5 * MIB + 16 * MIB);
    CHECK_EQ_U64(stats_value(c, "num_device_alloc"), 3);
    CHECK_CUDA_OK(c, pymem_cuda_free(c, a));
    CHECK_CUDA_OK(c, pymem_cuda_free(c, b));
    CHECK_CUDA_OK(c, pymem_cuda_free(c, d));
    CHECK_EQ_U64(allocated(c), 0);
    CHECK_EQ_U64(reserved(c), 38 * MIB); /* cached, not given back */
    CHECK_CUDA_OK(c, pymem_cuda_cache_free(c));
}

static void reuse_split_merge_and_empty_cache(void) {
    pymem_cuda_cache *c = simulated(8 * GIB);
    uint64_t big, small, rest, tensor;
    CHECK_CUDA_OK(c, pymem_cuda_malloc(c, 0, 12 * MIB, 0, &big));
    CHECK_CUDA_OK(c, pymem_cuda_free(c, big));
    CHECK_CUDA_OK(c, pymem_cuda_malloc(c, 0, 4 * MIB, 0, &small));
    CHECK_EQ_U64(small, big); /* the cached block, split */
    CHECK_EQ_U64(stats_value(c, "inactive_split.all.current"), 1);
    CHECK_CUDA_OK(c, pymem_cuda_malloc(c, 0, 8 * MIB, 0, &rest));
    CHECK_EQ_U64(rest, big + 4 * MIB);
    CHECK_EQ_U64(stats_value(c, "num_device_alloc"), 1);
    CHECK_CUDA_OK(c, pymem_cuda_free(c, small));
    CHECK_CUDA_OK(c, pymem_cuda_free(c, rest)); /* merges with the free front */
    CHECK_EQ_U64(stats_value(c, "inactive_split.all.current"), 0);
    /* One live block keeps its segment: empty_cache gives back the rest. */
    CHECK_CUDA_OK(c, pymem_cuda_malloc(c, 0, 100 * MIB, 0, &tensor));
    CHECK_EQ_U64(reserved(c), 112 * MIB);
    CHECK_CUDA_OK(c, pymem_cuda_empty_cache(c));
    CHECK_EQ_U64(reserved(c), 100 * MIB);
    uint64_t cached = 0, max_cached = 0;
    CHECK_CUDA_OK(c, pymem_cuda_memory_cached(c, 0, &cached));
    CHECK_CUDA_OK(c, pymem_cuda_max_memory_cached(c, 0, &max_cached));
    CHECK_EQ_U64(cached, 100 * MIB);
    CHECK_EQ_U64(max_cached, stat_of(c, pymem_cuda_max_memory_reserved));
    CHECK_EQ_U64(max_cached, 112 * MIB);
    CHECK_EQ_U64(stat_of(c, pymem_cuda_max_memory_allocated), 100 * MIB);
    CHECK_CUDA_OK(c, pymem_cuda_free(c, tensor));
    CHECK_CUDA_OK(c, pymem_cuda_reset_peak_memory_stats(c, 0));
    CHECK_EQ_U64(stat_of(c, pymem_cuda_max_memory_allocated), 0);
    CHECK_EQ_U64(stat_of(c, pymem_cuda_max_memory_reserved), 100 * MIB);
    CHECK_CUDA_OK(c, pymem_cuda_reset_accumulated_memory_stats(c, 0));
    CHECK_EQ_U64(stats_value(c, "num_device_alloc"), 0);
    CHECK_CUDA_OK(c, pymem_cuda_cache_free(c));
}

static void record_stream_defers_the_free(void) {
    pymem_cuda_cache *c = simulated(8 * GIB);
    uintptr_t side = 0;
    CHECK_CUDA_OK(c, pymem_cuda_stream_create(c, 0, &side));
    CHECK(side != 0);
    uint64_t p, q;
    CHECK_CUDA_OK(c, pymem_cuda_malloc(c, 0, 4 * MIB, 0, &p));
    CHECK_CUDA_OK(c, pymem_cuda_record_stream(c, p, side));
    CHECK_CUDA_OK(c, pymem_cuda_free(c, p));
    CHECK_EQ_U64(allocated(c), 0);
    CHECK_EQ_U64(stats_value(c, "active_bytes.all.current"), 4 * MIB);
    CHECK_CUDA_OK(c, pymem_cuda_malloc(c, 0, 4 * MIB, 0, &q));
    CHECK(q != p); /* still in use by the side stream */
    CHECK_CUDA_OK(c, pymem_cuda_free(c, q));
    CHECK_CUDA_OK(c, pymem_cuda_synchronize(c, 0));
    CHECK_EQ_U64(stats_value(c, "active_bytes.all.current"), 0);
    CHECK_CUDA_OK(c, pymem_cuda_malloc(c, 0, 4 * MIB, 0, &q));
    CHECK_EQ_U64(q, p);
    /* A block of another stream is not reused. */
    uint64_t other;
    CHECK_CUDA_OK(c, pymem_cuda_free(c, q));
    CHECK_CUDA_OK(c, pymem_cuda_malloc(c, 0, 4 * MIB, side, &other));
    CHECK(other != p);
    CHECK_CUDA_OK(c, pymem_cuda_free(c, other));
    CHECK_CUDA_OK(c, pymem_cuda_stream_destroy(c, 0, side));
    CHECK_CUDA_OK(c, pymem_cuda_cache_free(c));
}

static void retry_then_oom(void) {
    pymem_cuda_cache *c = simulated(100 * MIB);
    uint64_t a, b, d, e = 7;
    CHECK_CUDA_OK(c, pymem_cuda_malloc(c, 0, 40 * MIB, 0, &a));
    CHECK_CUDA_OK(c, pymem_cuda_malloc(c, 0, 40 * MIB, 0, &b));
    CHECK_CUDA_OK(c, pymem_cuda_free(c, a));
    CHECK_CUDA_OK(c, pymem_cuda_malloc(c, 0, 60 * MIB, 0, &d)); /* frees the cache, retries */
    CHECK_EQ_U64(stats_value(c, "num_alloc_retries"), 1);
    CHECK_CUDA_FAILS(c, pymem_cuda_malloc(c, 0, 10 * MIB, 0, &e), PYMEM_ERR_OUT_OF_DEVICE_MEMORY,
                     "pymem_cuda_malloc: CUDA out of memory. Tried to allocate 10.00 MiB. GPU 0 has a total "
                     "capacity of 100.00 MiB of which 0 bytes is free. Of the allocated memory 100.00 MiB is "
                     "allocated by PyTorch, and 0 bytes is reserved by PyTorch but unallocated.");
    CHECK_EQ_U64(e, 7); /* out-pointer untouched on failure */
    CHECK_EQ_U64(stats_value(c, "num_ooms"), 1);
    uint64_t free_b = 1, total = 0;
    CHECK_CUDA_OK(c, pymem_cuda_mem_get_info(c, 0, &free_b, &total));
    CHECK_EQ_U64(free_b, 0);
    CHECK_EQ_U64(total, 100 * MIB);
    CHECK_CUDA_OK(c, pymem_cuda_free(c, b));
    CHECK_CUDA_OK(c, pymem_cuda_free(c, d));
    CHECK_CUDA_OK(c, pymem_cuda_cache_free(c));
}

static void memory_fraction_and_config(void) {
    pymem_cuda_config cfg;
    pymem_cuda_config_init(&cfg);
    cfg.backend = PYMEM_CUDA_BACKEND_SIMULATED;
    cfg.simulated_capacity = 1000 * MIB;
    CHECK_CUDA_OK(NULL, pymem_cuda_config_parse(
        "max_split_size_mb:128,roundup_power2_divisions:[256:1,512:2,>:8],garbage_collection_threshold:0.6", &cfg));
    CHECK_EQ_U64(cfg.max_split_size, 128 * MIB);
    CHECK_EQ_U64(cfg.roundup_power2_divisions[8], 1);
    CHECK_EQ_U64(cfg.roundup_power2_divisions[9], 8);
    CHECK(cfg.garbage_collection_threshold == 0.6);
    pymem_cuda_cache *c = NULL;
    CHECK_CUDA_OK(NULL, pymem_cuda_cache_new(&cfg, &c));
    CHECK_EQ_U64(stats_value(c, "max_split_size"), 128 * MIB);
    CHECK_CUDA_OK(c, pymem_cuda_set_per_process_memory_fraction(c, 0, 0.5));
    uint64_t a, e = 0;
    CHECK_CUDA_OK(c, pymem_cuda_malloc(c, 0, 400 * MIB, 0, &a));
    CHECK_CUDA_FAILS(c, pymem_cuda_malloc(c, 0, 200 * MIB, 0, &e), PYMEM_ERR_OUT_OF_DEVICE_MEMORY,
                     "500.00 MiB allowed; Of the allocated memory 400.00 MiB is allocated by PyTorch");
    CHECK(reserved(c) <= 500 * MIB);
    CHECK_EQ_U64(stats_value(c, "oversize_allocations.current"), 1);
    CHECK_CUDA_OK(c, pymem_cuda_free(c, a));
    CHECK_CUDA_OK(c, pymem_cuda_cache_free(c));
}

static void reports(void) {
    pymem_cuda_cache *c = simulated(4 * GIB);
    CHECK_CUDA_OK(c, pymem_cuda_record_history(c, 1, 1000));
    uint64_t big, s;
    CHECK_CUDA_OK(c, pymem_cuda_malloc(c, 0, 3 * GIB, 0, &big));
    CHECK_CUDA_OK(c, pymem_cuda_malloc(c, 0, 700, 0, &s));
    CHECK_CUDA_OK(c, pymem_cuda_free(c, s));
    char *text = NULL;
    CHECK_CUDA_OK(c, pymem_cuda_memory_summary(c, 0, 0, &text));
    CHECK_CONTAINS(text, "|                  PyTorch CUDA memory summary, device ID 0                 |\n");
    CHECK_CONTAINS(text, "| Allocated memory      |   3072 MiB |   3072 MiB |   3072 MiB |   1024 B   |\n");
    CHECK_CONTAINS(text, "|       from large pool |   3072 MiB |   3072 MiB |   3072 MiB |      0 B   |\n");
    CHECK_CONTAINS(text, "| GPU reserved segments |       2    |       2    |       2    |       0    |\n");
    pymem_string_free(text);
    CHECK_CUDA_OK(c, pymem_cuda_memory_summary(c, 0, 1, &text));
    CHECK(strstr(text, "from large pool") == NULL);
    CHECK_CONTAINS(text, "| Oversize GPU segments |       0    |       0    |       0    |       0    |\n");
    pymem_string_free(text);
    CHECK_CUDA_OK(c, pymem_cuda_memory_stats(c, 0, &text));
    CHECK(text[0] == '{');
    CHECK_CONTAINS(text, "\"active.all.allocated\": 2");
    CHECK_CONTAINS(text, "\"max_split_size\": -1");
    CHECK(strstr(text, "\"active.all.allocated\"") < strstr(text, "\"segment.small_pool.peak\""));
    pymem_string_free(text);
    CHECK_CUDA_OK(c, pymem_cuda_memory_snapshot(c, &text));
    CHECK_CONTAINS(text, "\"segments\": [");
    CHECK_CONTAINS(text, "\"segment_type\": \"large\"");
    CHECK_CONTAINS(text, "\"state\": \"active_allocated\"");
    CHECK_CONTAINS(text, "\"state\": \"inactive\"");
    CHECK_CONTAINS(text, "\"device_traces\": [");
    CHECK_CONTAINS(text, "\"action\": \"segment_alloc\"");
    CHECK_CONTAINS(text, "\"action\": \"free_completed\"");
    CHECK_CONTAINS(text, "\"allocator_settings\": {");
    pymem_string_free(text);
    CHECK_CUDA_OK(c, pymem_cuda_record_history(c, 0, 0));
    CHECK_CUDA_OK(c, pymem_cuda_memory_snapshot(c, &text));
    CHECK(strstr(text, "\"action\"") == NULL);
    pymem_string_free(text);
    CHECK_CUDA_OK(c, pymem_cuda_free(c, big));
    CHECK_CUDA_OK(c, pymem_cuda_cache_free(c));
}

static void release_all(void) {
    pymem_cuda_cache *c = simulated(GIB);
    uint64_t live, small, cached, released = 0;
    CHECK_CUDA_OK(c, pymem_cuda_malloc(c, 0, 100 * MIB, 0, &live));
    CHECK_CUDA_OK(c, pymem_cuda_malloc(c, 0, 4 * KIB, 0, &small));
    CHECK_CUDA_OK(c, pymem_cuda_malloc(c, 0, 50 * MIB, 0, &cached));
    CHECK_CUDA_OK(c, pymem_cuda_free(c, cached));
    CHECK_CUDA_OK(c, pymem_cuda_empty_cache(c));
    CHECK_EQ_U64(reserved(c), 102 * MIB); /* live blocks keep their segments */
    CHECK_CUDA_OK(c, pymem_cuda_release_all(c, 0, &released));
    CHECK_EQ_U64(released, 102 * MIB);
    CHECK_EQ_U64(reserved(c), 0);
    CHECK_EQ_U64(allocated(c), 0);
    uint64_t free_b = 0, total = 0;
    CHECK_CUDA_OK(c, pymem_cuda_mem_get_info(c, 0, &free_b, &total));
    CHECK_EQ_U64(free_b, total); /* nvidia-smi would show nothing used */
    CHECK_CUDA_FAILS(c, pymem_cuda_free(c, live), PYMEM_ERR_INVALID_POINTER, "not a pointer of this cache");
    CHECK_CUDA_FAILS(c, pymem_cuda_free(c, small), PYMEM_ERR_INVALID_POINTER, "not a pointer of this cache");
    CHECK_CUDA_OK(c, pymem_cuda_release_all(c, 0, NULL)); /* nothing left: fine */
    uint64_t again;
    CHECK_CUDA_OK(c, pymem_cuda_malloc(c, 0, 100 * MIB, 0, &again));
    CHECK_EQ_U64(again, live); /* handed out again: a pointer again */
    CHECK_CUDA_OK(c, pymem_cuda_free(c, again));
    CHECK_CUDA_OK(c, pymem_cuda_cache_free(c));
}

static void pass_through(void) {
    pymem_cuda_config cfg;
    pymem_cuda_config_init(&cfg);
    cfg.backend = PYMEM_CUDA_BACKEND_SIMULATED;
    cfg.caching = 0;
    pymem_cuda_cache *c = NULL;
    CHECK_CUDA_OK(NULL, pymem_cuda_cache_new(&cfg, &c));
    for (int i = 0; i < 5; i++) {
        uint64_t p;
        CHECK_CUDA_OK(c, pymem_cuda_malloc(c, 0, 3000, 0, &p));
        CHECK_CUDA_OK(c, pymem_cuda_free(c, p));
    }
    CHECK_EQ_U64(stats_value(c, "num_device_alloc"), 5);
    CHECK_EQ_U64(stats_value(c, "num_device_free"), 5);
    CHECK_EQ_U64(reserved(c), 0);
    CHECK_CUDA_OK(c, pymem_cuda_cache_free(c));
}

static void two_devices_and_zero_bytes(void) {
    pymem_cuda_config cfg;
    pymem_cuda_config_init(&cfg);
    cfg.backend = PYMEM_CUDA_BACKEND_SIMULATED;
    cfg.simulated_devices = 2;
    cfg.simulated_capacity = GIB;
    cfg.history_max_entries = 16;
    pymem_cuda_cache *c = NULL;
    CHECK_CUDA_OK(NULL, pymem_cuda_cache_new(&cfg, &c));
    uint64_t p0, p1, zero = 5;
    CHECK_CUDA_OK(c, pymem_cuda_malloc(c, 0, MIB, 0, &p0));
    CHECK_CUDA_OK(c, pymem_cuda_malloc(c, 1, MIB, 0, &p1));
    CHECK(p0 != p1);
    uint64_t r1 = 0;
    CHECK_CUDA_OK(c, pymem_cuda_memory_reserved(c, 1, &r1));
    CHECK_EQ_U64(r1, 2 * MIB);
    CHECK_CUDA_OK(c, pymem_cuda_free(c, p1)); /* found on its device */
    CHECK_CUDA_OK(c, pymem_cuda_malloc(c, 0, 0, 0, &zero));
    CHECK_EQ_U64(zero, 0);
    CHECK_CUDA_OK(c, pymem_cuda_free(c, 0));
    char *snap = NULL;
    CHECK_CUDA_OK(c, pymem_cuda_memory_snapshot(c, &snap));
    CHECK_CONTAINS(snap, "\"device\": 1");
    pymem_string_free(snap);
    /* The cache is freed with a live block: its segment goes back too. */
    CHECK_CUDA_OK(c, pymem_cuda_cache_free(c));
    CHECK_CUDA_OK(NULL, pymem_cuda_cache_free(NULL));
}

/* pymem_cuda_config_init reads PyTorch's environment variables, as PyTorch
   does at start-up; a value it cannot take is ignored and said so. */
static void environment(void) {
    CHECK(setenv("PYTORCH_CUDA_ALLOC_CONF", "max_split_size_mb:128,garbage_collection_threshold:0.6", 1) == 0);
    CHECK(setenv("PYTORCH_NO_CUDA_MEMORY_CACHING", "1", 1) == 0);
    pymem_cuda_config cfg;
    pymem_cuda_config_init(&cfg);
    CHECK(cfg.max_split_size == 128ull << 20);
    CHECK(cfg.garbage_collection_threshold == 0.6);
    CHECK(cfg.caching == 0);

    CHECK(setenv("PYTORCH_CUDA_ALLOC_CONF", "max_split_size_mb:128,no_such_option:1", 1) == 0);
    CHECK(setenv("PYTORCH_NO_CUDA_MEMORY_CACHING", "0", 1) == 0);
    pymem_cuda_config_init(&cfg);
    pymem_cuda_config defaults;
    CHECK(unsetenv("PYTORCH_CUDA_ALLOC_CONF") == 0 && unsetenv("PYTORCH_NO_CUDA_MEMORY_CACHING") == 0);
    pymem_cuda_config_init(&defaults);
    /* The bad string is ignored whole: not even its good option applies. */
    CHECK(cfg.max_split_size == defaults.max_split_size);
    CHECK(cfg.garbage_collection_threshold == defaults.garbage_collection_threshold);
    CHECK(memcmp(cfg.roundup_power2_divisions, defaults.roundup_power2_divisions, sizeof cfg.roundup_power2_divisions) == 0);
    CHECK(cfg.caching == 1);
    CHECK(defaults.caching == 1);

    CHECK(setenv("PYTORCH_CUDA_ALLOC_CONF", "max_split_size_mb:128,no_such_option:1", 1) == 0);
    pymem_cuda_config_init(&cfg);
    CHECK(pymem_last_status(NULL) == PYMEM_ERR_INVALID_ARGUMENT);
    CHECK(strstr(pymem_last_error(NULL), "PYTORCH_CUDA_ALLOC_CONF") != NULL);
    CHECK(unsetenv("PYTORCH_CUDA_ALLOC_CONF") == 0);
    CHECK(setenv("PYTORCH_NO_CUDA_MEMORY_CACHING", "yes", 1) == 0);
    pymem_cuda_config_init(&cfg);
    CHECK(cfg.caching == 1);
    CHECK(strstr(pymem_last_error(NULL), "PYTORCH_NO_CUDA_MEMORY_CACHING") != NULL);
    CHECK(unsetenv("PYTORCH_NO_CUDA_MEMORY_CACHING") == 0);
}

int main(void) {
    environment();
    segment_sizes();
    reuse_split_merge_and_empty_cache();
    record_stream_defers_the_free();
    retry_then_oom();
    memory_fraction_and_config();
    reports();
    release_all();
    pass_through();
    two_devices_and_zero_bytes();
    puts("cuda_basic: ok");
    return 0;
}
