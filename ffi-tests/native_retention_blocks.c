/*
 * native_retention_blocks.c: bounded retention without any explicit call
 * (issue 11). Native only (the name starts with native_): it measures the
 * resident set size, in this process of its own.
 *
 * 2,000,000 blocks of 32 bytes are allocated with pymem_malloc, then all
 * freed with pymem_free, and nothing else is called on the runtime in
 * between (no pymem_release_free_arenas, no other allocation): the frees
 * alone must give back at least 95 % of the RSS the blocks added, since the
 * allocator may then keep only one spare arena plus a cache bounded by 1/16
 * of the bytes in use (nothing is in use any more) — see
 * pymem_config.retain_cache_max. Then the statistics must say the same:
 * the bytes held free by reason add up to no more than that rule.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pymem.h"
#include "check.h"

enum { COUNT = 2000000, SIZE = 32 };

int main(void) {
    pymem_runtime *rt = NULL;
    CHECK_OK(NULL, pymem_runtime_new(NULL, &rt));
    pymem_config cfg;
    pymem_config_init(&cfg);

    /* The pointer array is touched (non-zero, so no page stays a shared
     * zero page) before the baseline: only the blocks count in the growth. */
    void **blocks = (void **)malloc(COUNT * sizeof *blocks);
    CHECK(blocks != NULL);
    memset(blocks, 0xA5, COUNT * sizeof *blocks);
    const uint64_t rss_start = rss_bytes();

    for (size_t i = 0; i < COUNT; i++) {
        unsigned char *p = (unsigned char *)pymem_malloc(rt, SIZE);
        CHECKF(p != NULL, "block %zu: %s", i, pymem_last_error(rt));
        memset(p, (int)(i % 251) + 1, SIZE);
        blocks[i] = p;
    }
    const uint64_t rss_full = rss_bytes();
    for (size_t i = 0; i < COUNT; i++)
        CHECK_OK(rt, pymem_free(rt, blocks[i]));
    const uint64_t rss_freed = rss_bytes();

    /* Only now, after the measurement: the statistics (a call that reads). */
    const pymem_alloc_stats s = stats_of(rt);
    const uint64_t growth = rss_full > rss_start ? rss_full - rss_start : 0;
    const uint64_t dropped = rss_full > rss_freed ? rss_full - rss_freed : 0;
    printf("native_retention_blocks: %d x %d B allocated, then freed with pymem_free only\n", COUNT, SIZE);
    printf("  RSS: start %.1f MiB, full %.1f MiB (+%.1f), after the frees %.1f MiB\n", mib(rss_start),
           mib(rss_full), mib(growth), mib(rss_freed));
    printf("  given back: %.2f %% of the growth (at least 95 %% required)\n",
           growth ? 100.0 * (double)dropped / (double)growth : 0.0);
    print_held_free(&s);

    CHECK_EQ_U64(s.blocks_in_use, 0);
    CHECK(growth >= (uint64_t)COUNT * SIZE); /* the blocks were really resident */
    CHECKF(dropped * 100 >= growth * 95, "RSS dropped by %llu of %llu bytes of growth (< 95 %%)",
           (unsigned long long)dropped, (unsigned long long)growth);
    /* The rule itself: one spare arena (1 MiB in this geometry) plus a cache
     * within its bound, which with nothing in use is the 16-pool floor. */
    CHECK(s.free_bytes_spare_arena <= 1 << 20);
    CHECK(s.free_bytes_cache <= s.free_bytes_cache_limit);
    CHECK(s.free_bytes_cache_limit <= cfg.retain_cache_max);

    free(blocks);
    CHECK_OK(rt, pymem_runtime_free(rt));
    return 0;
}
