/*
 * alloc_retention.c: bounded retention through the C ABI (issue 11):
 * pymem_config.retain_cache_max and its PYMEM_RETAIN_CACHE_MAX override,
 * and the bytes held free by reason in pymem_alloc_stats (free_bytes_*)
 * and pymem_debug_malloc_stats. Counts, not RSS: the RSS itself is measured
 * by native_retention_*.c in processes of their own.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pymem.h"
#include "check.h"

enum { POOL = 16 * 1024, ARENA = 1024 * 1024, FLOOR = 256 * 1024 };

static pymem_runtime *runtime_with_cache(uint64_t retain_cache_max) {
    pymem_config cfg;
    pymem_config_init(&cfg);
    cfg.retain_cache_max = retain_cache_max;
    pymem_runtime *rt = NULL;
    CHECK_OK(NULL, pymem_runtime_new(&cfg, &rt));
    return rt;
}

static void **alloc_blocks(pymem_runtime *rt, size_t n, size_t size) {
    void **blocks = (void **)malloc(n * sizeof *blocks);
    CHECK(blocks != NULL);
    for (size_t i = 0; i < n; i++) {
        blocks[i] = pymem_malloc(rt, size);
        CHECKF(blocks[i] != NULL, "block %zu: %s", i, pymem_last_error(rt));
        memset(blocks[i], 1, size);
    }
    return blocks;
}

/* The rule holds in the statistics: the cache within its bound, the bound
 * within retain_cache_max, the spare within an arena. */
static void check_rule(const pymem_alloc_stats *s, uint64_t retain_cache_max) {
    CHECKF(s->free_bytes_cache <= s->free_bytes_cache_limit, "cache %llu over its bound %llu",
           (unsigned long long)s->free_bytes_cache, (unsigned long long)s->free_bytes_cache_limit);
    CHECK(s->free_bytes_cache_limit <= retain_cache_max);
    CHECK(s->free_bytes_spare_arena <= ARENA);
}

static void defaults_and_environment(void) {
    pymem_config cfg;
    pymem_config_init(&cfg);
    CHECK_EQ_U64(cfg.retain_cache_max, PYMEM_DEFAULT_RETAIN_CACHE_MAX);
    CHECK_EQ_U64(PYMEM_DEFAULT_RETAIN_CACHE_MAX, 4 * 1024 * 1024);

    CHECK(setenv("PYMEM_RETAIN_CACHE_MAX", "65536", 1) == 0);
    pymem_config_init(&cfg);
    CHECK_EQ_U64(cfg.retain_cache_max, 65536);
    /* A bad value is ignored whole, with a message in the thread's slot. */
    CHECK(setenv("PYMEM_RETAIN_CACHE_MAX", "4MiB", 1) == 0);
    pymem_config_init(&cfg);
    CHECK_EQ_U64(cfg.retain_cache_max, PYMEM_DEFAULT_RETAIN_CACHE_MAX);
    CHECK_CONTAINS(pymem_last_error(NULL), "PYMEM_RETAIN_CACHE_MAX");
    CHECK(unsetenv("PYMEM_RETAIN_CACHE_MAX") == 0);
}

/* Everything freed, nothing else called: one spare arena and the floor. */
static void frees_alone(void) {
    pymem_runtime *rt = runtime_with_cache(PYMEM_DEFAULT_RETAIN_CACHE_MAX);
    const size_t n = scaled(8 * ARENA / 32, 2 * ARENA / 32);
    void **blocks = alloc_blocks(rt, n, 32);
    const pymem_alloc_stats full = stats_of(rt);
    check_rule(&full, PYMEM_DEFAULT_RETAIN_CACHE_MAX);
    CHECK_EQ_U64(full.free_bytes_cache_limit, full.bytes_reserved / 16 > FLOOR ? full.bytes_reserved / 16 : FLOOR);
    for (size_t i = 0; i < n; i++)
        CHECK_OK(rt, pymem_free(rt, blocks[i]));
    const pymem_alloc_stats s = stats_of(rt);
    check_rule(&s, PYMEM_DEFAULT_RETAIN_CACHE_MAX);
    CHECK_EQ_U64(s.blocks_in_use, 0);
    CHECK_EQ_U64(s.free_bytes_cache_limit, FLOOR);
    CHECK_EQ_U64(s.free_bytes_in_used_pools, 0);
    CHECK(s.free_bytes_class_pools <= POOL); /* the 32-byte class keeps its last pool */

    char *report = NULL;
    CHECK_OK(rt, pymem_debug_malloc_stats(rt, &report));
    CHECK_CONTAINS(report, "pymem: bytes held free, by reason");
    CHECK_CONTAINS(report, "# empty pools of the spare arena");
    CHECK_CONTAINS(report, "# empty pools cached");
    pymem_string_free(report);
    free(blocks);
    CHECK_OK(rt, pymem_runtime_free(rt));
}

/* retain_cache_max = 0: no cache; emptied pools outside the spare go back
 * as they empty, though their arenas stay (one block per 4 pools). */
static void no_cache(void) {
    pymem_runtime *rt = runtime_with_cache(0);
    const size_t n = scaled(4 * ARENA / 32, 2 * ARENA / 32);
    const size_t per_pool = POOL / 32;
    void **blocks = alloc_blocks(rt, n, 32);
    for (size_t i = 0; i < n; i++)
        if (i % (4 * per_pool) != 0) CHECK_OK(rt, pymem_free(rt, blocks[i]));
    const pymem_alloc_stats s = stats_of(rt);
    check_rule(&s, 0);
    CHECK_EQ_U64(s.free_bytes_cache, 0);
    CHECK(s.pools_released > 0);
    CHECK(s.free_bytes_in_used_pools > 0); /* the pools of the survivors */
    for (size_t i = 0; i < n; i += 4 * per_pool)
        CHECK_OK(rt, pymem_free(rt, blocks[i]));
    const pymem_alloc_stats after = stats_of(rt);
    check_rule(&after, 0);
    CHECK_EQ_U64(after.blocks_in_use, 0);
    free(blocks);
    CHECK_OK(rt, pymem_runtime_free(rt));
}

int main(void) {
    defaults_and_environment();
    frees_alone();
    no_cache();
    printf("alloc_retention: ok\n");
    return 0;
}
