/*
 * cuda_bad_input: NULL handles and out-pointers, unknown, interior and
 * freed pointers, bad device indices, bad values and config strings; each
 * gets its status and a message, and changes nothing. Backends: AUTO and
 * DRIVER without a GPU fail with PYMEM_ERR_NO_DEVICE (never a crash); on a
 * GPU machine they open.
 */
#include "check.h"

#define MIB (1024ull * 1024)

static char *stats_json(pymem_cuda_cache *c) {
    char *json = NULL;
    CHECK_CUDA_OK(c, pymem_cuda_memory_stats(c, 0, &json));
    return json;
}

/* The call fails as expected and the statistics are the same after it. */
#define CHECK_CUDA_FAILS_UNCHANGED(c, call, expected, needle)                  \
    do {                                                                       \
        char *before_ = stats_json(c);                                         \
        CHECK_CUDA_FAILS(c, call, expected, needle);                           \
        char *after_ = stats_json(c);                                          \
        CHECK_STR_EQ(before_, after_);                                         \
        pymem_string_free(before_);                                            \
        pymem_string_free(after_);                                             \
    } while (0)

static void backends(void) {
    pymem_cuda_config cfg;
    pymem_cuda_config_init(&cfg);
    pymem_cuda_cache *c = NULL;
    pymem_status st = pymem_cuda_cache_new(&cfg, &c); /* AUTO */
    if (st == PYMEM_OK) {
        int32_t backend = -1;
        CHECK_CUDA_OK(c, pymem_cuda_backend(c, &backend));
        CHECK_EQ_U64(backend, PYMEM_CUDA_BACKEND_DRIVER);
        CHECK_CUDA_OK(c, pymem_cuda_cache_free(c));
        puts("cuda_bad_input: a GPU is present; AUTO chose the driver");
    } else {
        CHECK_STATUS(NULL, st, PYMEM_ERR_NO_DEVICE);
        CHECK(c == NULL);
        CHECK_CONTAINS(pymem_cuda_last_error(NULL), "pymem_cuda_cache_new: no CUDA device");
        CHECK_CONTAINS(pymem_cuda_last_error(NULL), "PYMEM_CUDA_BACKEND_SIMULATED");
        cfg.backend = PYMEM_CUDA_BACKEND_DRIVER;
        CHECK_CUDA_FAILS(NULL, pymem_cuda_cache_new(&cfg, &c), PYMEM_ERR_NO_DEVICE, "pymem_cuda_cache_new: ");
        CHECK(c == NULL);
    }
    CHECK_CUDA_FAILS(NULL, pymem_cuda_cache_new(NULL, NULL), PYMEM_ERR_NULL_ARGUMENT, "out is NULL");
    cfg.backend = 42;
    CHECK_CUDA_FAILS(NULL, pymem_cuda_cache_new(&cfg, &c), PYMEM_ERR_INVALID_ARGUMENT, "unknown backend 42");
    cfg.backend = PYMEM_CUDA_BACKEND_SIMULATED;
    cfg.simulated_devices = 0;
    CHECK_CUDA_FAILS(NULL, pymem_cuda_cache_new(&cfg, &c), PYMEM_ERR_INVALID_ARGUMENT, "at least 1 device");
    cfg.simulated_devices = 1;
    cfg.memory_fraction = 1.5;
    CHECK_CUDA_FAILS(NULL, pymem_cuda_cache_new(&cfg, &c), PYMEM_ERR_INVALID_ARGUMENT, "memory_fraction 1.5");
    cfg.memory_fraction = -1;
    cfg.max_split_size = 20 * MIB;
    CHECK_CUDA_FAILS(NULL, pymem_cuda_cache_new(&cfg, &c), PYMEM_ERR_INVALID_ARGUMENT, "too small, must be > 20 MiB");
    cfg.max_split_size = PYMEM_CUDA_UNLIMITED_SPLIT;
    cfg.roundup_power2_divisions[3] = 3;
    CHECK_CUDA_FAILS(NULL, pymem_cuda_cache_new(&cfg, &c), PYMEM_ERR_INVALID_ARGUMENT, "roundup_power2_divisions[3] = 3");
    CHECK(c == NULL);
}

/* Field by field: the struct's padding bytes are not part of its value. */
static int same_config(const pymem_cuda_config *a, const pymem_cuda_config *b) {
    return a->backend == b->backend && a->simulated_devices == b->simulated_devices &&
           a->simulated_capacity == b->simulated_capacity && a->max_split_size == b->max_split_size &&
           memcmp(a->roundup_power2_divisions, b->roundup_power2_divisions, sizeof a->roundup_power2_divisions) == 0 &&
           a->garbage_collection_threshold == b->garbage_collection_threshold &&
           a->memory_fraction == b->memory_fraction && a->history_max_entries == b->history_max_entries &&
           a->caching == b->caching;
}

static void config_strings(void) {
    pymem_cuda_config cfg, before;
    pymem_cuda_config_init(&cfg);
    cfg.max_split_size = 64 * MIB;
    before = cfg;
    static const struct {
        const char *conf;
        const char *message;
    } bad[] = {
        {"max_split_size_mb:20", "CachingAllocator option max_split_size_mb too small, must be > 20"},
        {"max_split_size_mb:lots", "max_split_size_mb: invalid value 'lots'"},
        {"max_split_size_mb", "Error parsing CachingAllocator settings, expected :"},
        {"garbage_collection_threshold:1.2", "garbage_collect_threshold too big, set it 0.0~1.0"},
        {"garbage_collection_threshold:0", "garbage_collect_threshold too small, set it 0.0~1.0"},
        {"roundup_power2_divisions:[256:3]", "For roundups, the divisons has to be power of 2 or 0 to disable roundup"},
        {"roundup_power2_divisions:[300:2]", "For roundups, the intervals have to be power of 2"},
        {"expandable_segments:True", "expandable_segments:True is not supported"},
        {"backend:cudaMallocAsync", "backend:cudaMallocAsync is not supported"},
        {"max_split_size_mb:128,colour:blue", "Unrecognized CachingAllocator option: colour"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        CHECK_CUDA_FAILS(NULL, pymem_cuda_config_parse(bad[i].conf, &cfg), PYMEM_ERR_INVALID_ARGUMENT, bad[i].message);
        CHECKF(same_config(&cfg, &before), "config changed by \"%s\"", bad[i].conf);
    }
    CHECK_CUDA_FAILS(NULL, pymem_cuda_config_parse(NULL, &cfg), PYMEM_ERR_NULL_ARGUMENT, "conf is NULL");
    CHECK_CUDA_FAILS(NULL, pymem_cuda_config_parse("", NULL), PYMEM_ERR_NULL_ARGUMENT, "inout is NULL");
    CHECK_CUDA_OK(NULL, pymem_cuda_config_parse("expandable_segments:False,backend:native", &cfg));
    CHECK(same_config(&cfg, &before));
    pymem_cuda_config_init(NULL); /* ignored */
}

static void null_handles(void) {
    uint64_t v = 0;
    char *s = NULL;
    const char *needle = "the cache is NULL";
    CHECK_CUDA_FAILS(NULL, pymem_cuda_malloc(NULL, 0, 1, 0, &v), PYMEM_ERR_NULL_ARGUMENT, needle);
    CHECK_CUDA_FAILS(NULL, pymem_cuda_free(NULL, 1), PYMEM_ERR_NULL_ARGUMENT, needle);
    CHECK_CUDA_FAILS(NULL, pymem_cuda_record_stream(NULL, 1, 1), PYMEM_ERR_NULL_ARGUMENT, needle);
    CHECK_CUDA_FAILS(NULL, pymem_cuda_synchronize(NULL, 0), PYMEM_ERR_NULL_ARGUMENT, needle);
    CHECK_CUDA_FAILS(NULL, pymem_cuda_empty_cache(NULL), PYMEM_ERR_NULL_ARGUMENT, needle);
    CHECK_CUDA_FAILS(NULL, pymem_cuda_memory_allocated(NULL, 0, &v), PYMEM_ERR_NULL_ARGUMENT, needle);
    CHECK_CUDA_FAILS(NULL, pymem_cuda_max_memory_allocated(NULL, 0, &v), PYMEM_ERR_NULL_ARGUMENT, needle);
    CHECK_CUDA_FAILS(NULL, pymem_cuda_memory_reserved(NULL, 0, &v), PYMEM_ERR_NULL_ARGUMENT, needle);
    CHECK_CUDA_FAILS(NULL, pymem_cuda_max_memory_reserved(NULL, 0, &v), PYMEM_ERR_NULL_ARGUMENT, needle);
    CHECK_CUDA_FAILS(NULL, pymem_cuda_memory_cached(NULL, 0, &v), PYMEM_ERR_NULL_ARGUMENT, needle);
    CHECK_CUDA_FAILS(NULL, pymem_cuda_max_memory_cached(NULL, 0, &v), PYMEM_ERR_NULL_ARGUMENT, needle);
    CHECK_CUDA_FAILS(NULL, pymem_cuda_reset_peak_memory_stats(NULL, 0), PYMEM_ERR_NULL_ARGUMENT, needle);
    CHECK_CUDA_FAILS(NULL, pymem_cuda_reset_accumulated_memory_stats(NULL, 0), PYMEM_ERR_NULL_ARGUMENT, needle);
    CHECK_CUDA_FAILS(NULL, pymem_cuda_memory_stats(NULL, 0, &s), PYMEM_ERR_NULL_ARGUMENT, needle);
    CHECK_CUDA_FAILS(NULL, pymem_cuda_memory_summary(NULL, 0, 0, &s), PYMEM_ERR_NULL_ARGUMENT, needle);
    CHECK_CUDA_FAILS(NULL, pymem_cuda_record_history(NULL, 1, 10), PYMEM_ERR_NULL_ARGUMENT, needle);
    CHECK_CUDA_FAILS(NULL, pymem_cuda_memory_snapshot(NULL, &s), PYMEM_ERR_NULL_ARGUMENT, needle);
    CHECK_CUDA_FAILS(NULL, pymem_cuda_set_per_process_memory_fraction(NULL, 0, 0.5), PYMEM_ERR_NULL_ARGUMENT, needle);
    CHECK_CUDA_FAILS(NULL, pymem_cuda_release_all(NULL, 0, &v), PYMEM_ERR_NULL_ARGUMENT, needle);
    CHECK_CUDA_FAILS(NULL, pymem_cuda_mem_get_info(NULL, 0, &v, &v), PYMEM_ERR_NULL_ARGUMENT, needle);
    CHECK_CUDA_FAILS(NULL, pymem_cuda_stream_create(NULL, 0, NULL), PYMEM_ERR_NULL_ARGUMENT, needle);
    CHECK_CUDA_FAILS(NULL, pymem_cuda_stream_destroy(NULL, 0, 1), PYMEM_ERR_NULL_ARGUMENT, needle);
    CHECK_CUDA_FAILS(NULL, pymem_cuda_backend(NULL, NULL), PYMEM_ERR_NULL_ARGUMENT, needle);
    CHECK_CUDA_FAILS(NULL, pymem_cuda_device_count(NULL, NULL), PYMEM_ERR_NULL_ARGUMENT, needle);
    CHECK(s == NULL);
}

static void on_a_cache(void) {
    pymem_cuda_config cfg;
    pymem_cuda_config_init(&cfg);
    cfg.backend = PYMEM_CUDA_BACKEND_SIMULATED;
    cfg.simulated_capacity = 1ull << 30;
    pymem_cuda_cache *c = NULL;
    CHECK_CUDA_OK(NULL, pymem_cuda_cache_new(&cfg, &c));
    CHECK_STR_EQ(pymem_cuda_last_error(c), "");
    CHECK_STATUS(NULL, pymem_cuda_last_status(c), PYMEM_OK);
    uint64_t p, q, v = 99;
    char *s = NULL;
    CHECK_CUDA_OK(c, pymem_cuda_malloc(c, 0, 4 * MIB, 0, &p));
    CHECK_CUDA_OK(c, pymem_cuda_malloc(c, 0, 700, 0, &q));

    /* NULL out-pointers. */
    CHECK_CUDA_FAILS_UNCHANGED(c, pymem_cuda_malloc(c, 0, 1, 0, NULL), PYMEM_ERR_NULL_ARGUMENT, "pymem_cuda_malloc: out_ptr is NULL");
    CHECK_CUDA_FAILS(c, pymem_cuda_memory_allocated(c, 0, NULL), PYMEM_ERR_NULL_ARGUMENT, "out is NULL");
    CHECK_CUDA_FAILS(c, pymem_cuda_memory_stats(c, 0, NULL), PYMEM_ERR_NULL_ARGUMENT, "out_json is NULL");
    CHECK_CUDA_FAILS(c, pymem_cuda_memory_summary(c, 0, 1, NULL), PYMEM_ERR_NULL_ARGUMENT, "out is NULL");
    CHECK_CUDA_FAILS(c, pymem_cuda_memory_snapshot(c, NULL), PYMEM_ERR_NULL_ARGUMENT, "out_json is NULL");
    CHECK_CUDA_FAILS(c, pymem_cuda_mem_get_info(c, 0, &v, NULL), PYMEM_ERR_NULL_ARGUMENT, "total is NULL");
    CHECK_CUDA_FAILS(c, pymem_cuda_mem_get_info(c, 0, NULL, &v), PYMEM_ERR_NULL_ARGUMENT, "free is NULL");
    CHECK_CUDA_FAILS(c, pymem_cuda_stream_create(c, 0, NULL), PYMEM_ERR_NULL_ARGUMENT, "out is NULL");

    /* Unknown, interior and freed pointers. */
    CHECK_CUDA_FAILS_UNCHANGED(c, pymem_cuda_free(c, 0x1234), PYMEM_ERR_INVALID_POINTER, "0x1234 is not a pointer of this cache");
    CHECK_CUDA_FAILS_UNCHANGED(c, pymem_cuda_free(c, p + 512), PYMEM_ERR_INVALID_POINTER, "inside a block");
    CHECK_CUDA_FAILS_UNCHANGED(c, pymem_cuda_record_stream(c, 0x1234, 1), PYMEM_ERR_INVALID_POINTER, "pymem_cuda_record_stream: ");
    CHECK_CUDA_OK(c, pymem_cuda_free(c, q));
    CHECK_CUDA_FAILS_UNCHANGED(c, pymem_cuda_free(c, q), PYMEM_ERR_DOUBLE_FREE, "pymem_cuda_free: double free");
    CHECK_CUDA_FAILS_UNCHANGED(c, pymem_cuda_record_stream(c, q, 1), PYMEM_ERR_DOUBLE_FREE, "double free");

    /* Bad device indices. */
    CHECK_CUDA_FAILS_UNCHANGED(c, pymem_cuda_malloc(c, 1, 1, 0, &v), PYMEM_ERR_INDEX, "invalid device index 1: the simulated backend has 1 device(s)");
    CHECK_CUDA_FAILS_UNCHANGED(c, pymem_cuda_malloc(c, -1, 1, 0, &v), PYMEM_ERR_INDEX, "invalid device index -1");
    CHECK_EQ_U64(v, 99);
    CHECK_CUDA_FAILS(c, pymem_cuda_memory_reserved(c, 7, &v), PYMEM_ERR_INDEX, "invalid device index 7");
    CHECK_CUDA_FAILS(c, pymem_cuda_synchronize(c, 2), PYMEM_ERR_INDEX, "invalid device index 2");
    CHECK_CUDA_FAILS(c, pymem_cuda_memory_stats(c, -3, &s), PYMEM_ERR_INDEX, "invalid device index -3");
    CHECK_CUDA_FAILS(c, pymem_cuda_memory_summary(c, 1, 0, &s), PYMEM_ERR_INDEX, "invalid device index 1");
    CHECK_CUDA_FAILS(c, pymem_cuda_release_all(c, 1, &v), PYMEM_ERR_INDEX, "invalid device index 1");
    CHECK_CUDA_FAILS(c, pymem_cuda_mem_get_info(c, 1, &v, &v), PYMEM_ERR_INDEX, "invalid device index 1");
    CHECK_CUDA_FAILS(c, pymem_cuda_reset_peak_memory_stats(c, 1), PYMEM_ERR_INDEX, "invalid device index 1");
    CHECK_CUDA_FAILS(c, pymem_cuda_set_per_process_memory_fraction(c, 1, 0.5), PYMEM_ERR_INDEX, "invalid device index 1");
    CHECK_CUDA_FAILS(c, pymem_cuda_stream_create(c, 1, &v), PYMEM_ERR_INDEX, "invalid device index 1");
    CHECK(s == NULL);
    CHECK_EQ_U64(v, 99);

    /* Bad values. */
    CHECK_CUDA_FAILS_UNCHANGED(c, pymem_cuda_set_per_process_memory_fraction(c, 0, 1.5), PYMEM_ERR_INVALID_ARGUMENT, "invalid fraction:1.5. Please set within [0, 1].");
    CHECK_CUDA_FAILS(c, pymem_cuda_set_per_process_memory_fraction(c, 0, -0.5), PYMEM_ERR_INVALID_ARGUMENT, "invalid fraction");
    CHECK_CUDA_FAILS(c, pymem_cuda_stream_destroy(c, 0, 12345), PYMEM_ERR_DEVICE, "unknown stream");

    /* Huge requests fail with the OOM text, and the cache is still fine. */
    CHECK_CUDA_FAILS(c, pymem_cuda_malloc(c, 0, SIZE_MAX, 0, &v), PYMEM_ERR_OUT_OF_DEVICE_MEMORY, "CUDA out of memory. Tried to allocate ");
    CHECK_CUDA_FAILS(c, pymem_cuda_malloc(c, 0, (size_t)2 << 30, 0, &v), PYMEM_ERR_OUT_OF_DEVICE_MEMORY, "Tried to allocate 2.00 GiB. GPU 0 has a total capacity of 1024.00 MiB");
    CHECK_EQ_U64(v, 99);
    CHECK_CUDA_OK(c, pymem_cuda_free(c, p));
    CHECK_CUDA_OK(c, pymem_cuda_cache_free(c));
}

int main(void) {
    backends();
    config_strings();
    null_handles();
    on_a_cache();
    puts("cuda_bad_input: ok");
    return 0;
}
