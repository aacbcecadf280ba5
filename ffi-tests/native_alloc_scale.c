/*
 * native_alloc_scale.c: ten million small blocks (native only: the name
 * starts with native_, so the runner does not run it under valgrind).
 *
 * Allocates them (sizes 8..64 bytes), frees them all, and checks that the
 * statistics return to where they started and that the process's resident
 * memory drops back after pymem_release_free_arenas by at least 90 % of
 * what the blocks added. Then again with a few survivors spread over all
 * arenas (one block in 100,000): CPython would keep every such arena
 * resident; pymem gives the empty pools back, so RSS must still drop by
 * 90 %. Prints the figures and the time per operation.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "pymem.h"
#include "check.h"

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

int main(int argc, char **argv) {
    size_t count = 10 * 1000 * 1000;
    if (argc > 1)
        count = (size_t)strtoull(argv[1], NULL, 10);

    pymem_runtime *rt = NULL;
    CHECK_OK(NULL, pymem_runtime_new(NULL, &rt));
    const pymem_alloc_stats start = stats_of(rt);

    /* The pointer array is touched before the baseline, so that only the
     * blocks count in the growth. */
    void **blocks = (void **)malloc(count * sizeof *blocks);
    CHECK(blocks != NULL);
    memset(blocks, 0, count * sizeof *blocks);
    const uint64_t rss_start = rss_bytes();

    double t0 = now();
    uint64_t expected_bytes = 0;
    for (size_t i = 0; i < count; i++) {
        size_t n = 8 + (i % 8) * 8; /* 8..64 bytes: classes of 16..64 */
        unsigned char *p = (unsigned char *)pymem_malloc(rt, n);
        CHECKF(p != NULL, "block %zu: %s", i, pymem_last_error(rt));
        p[0] = (unsigned char)i; /* touch it */
        blocks[i] = p;
        expected_bytes += (n + 15) / 16 * 16;
    }
    double t1 = now();
    const pymem_alloc_stats full = stats_of(rt);
    const uint64_t rss_full = rss_bytes();
    CHECK_EQ_U64(full.blocks_in_use, start.blocks_in_use + count);
    CHECK_EQ_U64(full.bytes_in_use, start.bytes_in_use + expected_bytes);

    double t2 = now();
    for (size_t i = 0; i < count; i++) {
        CHECK(((unsigned char *)blocks[i])[0] == (unsigned char)i);
        CHECK_OK(rt, pymem_free(rt, blocks[i]));
    }
    double t3 = now();
    const pymem_alloc_stats freed = stats_of(rt);
    const uint64_t rss_freed = rss_bytes();
    CHECK_EQ_U64(freed.blocks_in_use, start.blocks_in_use);
    CHECK_EQ_U64(freed.bytes_in_use, start.bytes_in_use);

    size_t released = 0;
    CHECK_OK(rt, pymem_release_free_arenas(rt, &released));
    const pymem_alloc_stats after = stats_of(rt);
    const uint64_t rss_after = rss_bytes();

    const uint64_t growth = rss_full > rss_start ? rss_full - rss_start : 0;
    const uint64_t dropped = rss_full > rss_after ? rss_full - rss_after : 0;
    printf("native_alloc_scale: %zu blocks of 8..64 bytes\n", count);
    printf("  malloc  %.3f s (%.1f ns/op), free %.3f s (%.1f ns/op)\n", t1 - t0,
           (t1 - t0) * 1e9 / (double)count, t3 - t2, (t3 - t2) * 1e9 / (double)count);
    printf("  bytes_in_use: start %llu, full %llu (%.1f MiB), after free %llu\n",
           (unsigned long long)start.bytes_in_use, (unsigned long long)full.bytes_in_use,
           mib(full.bytes_in_use), (unsigned long long)freed.bytes_in_use);
    printf("  arenas: highwater %llu, after free %llu, after release %llu\n",
           (unsigned long long)full.arenas_highwater, (unsigned long long)freed.arenas_current,
           (unsigned long long)after.arenas_current);
    printf("  RSS: start %.1f MiB, full %.1f MiB (+%.1f), after free %.1f MiB, "
           "after release %.1f MiB (released %.1f MiB reported)\n",
           mib(rss_start), mib(rss_full), mib(growth), mib(rss_freed), mib(rss_after),
           mib(released));
    printf("  RSS dropped by %.1f %% of the growth\n",
           growth ? 100.0 * (double)dropped / (double)growth : 0.0);

    CHECK(growth >= full.bytes_in_use / 2); /* the blocks were really resident */
    CHECKF(dropped * 10 >= growth * 9, "RSS dropped by %llu of %llu bytes of growth (< 90 %%)",
           (unsigned long long)dropped, (unsigned long long)growth);
    CHECK(after.arenas_current <= 1);

    /* Phase 2: survivors pin arenas, not memory. */
    const size_t every = 100 * 1000;
    const uint64_t rss_start2 = rss_bytes();
    for (size_t i = 0; i < count; i++) {
        blocks[i] = pymem_malloc(rt, 8 + (i % 8) * 8);
        CHECK(blocks[i] != NULL);
        ((unsigned char *)blocks[i])[0] = 1;
    }
    const uint64_t rss_full2 = rss_bytes();
    size_t survivors = 0;
    for (size_t i = 0; i < count; i++) {
        if (i % every == every / 2) {
            blocks[survivors++] = blocks[i];
        } else {
            CHECK_OK(rt, pymem_free(rt, blocks[i]));
        }
    }
    CHECK_OK(rt, pymem_release_free_arenas(rt, &released));
    const pymem_alloc_stats pinned = stats_of(rt);
    const uint64_t rss_pinned = rss_bytes();
    CHECK_EQ_U64(pinned.blocks_in_use, start.blocks_in_use + survivors);
    const uint64_t growth2 = rss_full2 > rss_start2 ? rss_full2 - rss_start2 : 0;
    const uint64_t dropped2 = rss_full2 > rss_pinned ? rss_full2 - rss_pinned : 0;
    printf("  with %zu survivors: RSS full %.1f MiB (+%.1f), after free + release %.1f MiB, "
           "%llu arenas still mapped, %llu pools released; dropped by %.1f %% of the growth\n",
           survivors, mib(rss_full2), mib(growth2), mib(rss_pinned),
           (unsigned long long)pinned.arenas_current, (unsigned long long)pinned.pools_released,
           growth2 ? 100.0 * (double)dropped2 / (double)growth2 : 0.0);
    CHECK(pinned.arenas_current >= survivors / 2); /* the survivors do pin arenas */
    CHECKF(dropped2 * 10 >= growth2 * 9,
           "with survivors, RSS dropped by %llu of %llu bytes of growth (< 90 %%)",
           (unsigned long long)dropped2, (unsigned long long)growth2);
    for (size_t i = 0; i < survivors; i++)
        CHECK_OK(rt, pymem_free(rt, blocks[i]));

    free(blocks);
    CHECK_BLOCKS(rt, start.blocks_in_use);
    CHECK_OK(rt, pymem_runtime_free(rt));
    return 0;
}
