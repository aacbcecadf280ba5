/*
 * native_gc_rss.c: the seed's last cycle-collector point (issue 4, point
 * 7): `del` of a big cyclic structure + a collection gives the memory back
 * to the OS. Native only (the runner skips native_* under valgrind, where
 * RSS means nothing).
 *
 *   root = []
 *   for i in range(10**6): a = []; b = [a]; a.append(b); root.append(a)
 *   del root          -> the pairs stay alive (each a cycle): RSS unchanged
 *   gc.collect()      -> 2 * 10**6, and the allocator's bytes in use are
 *                        back to the baseline
 *   pymem_release_free_arenas -> most of the RSS growth is gone (>= 90 %:
 *                        the collector must not keep its scratch memory
 *                        either; it used to pin ~65 MiB here)
 *
 * RSS is read from /proc/self/statm.
 */
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <unistd.h>

#include "pymem.h"
#include "check.h"

#ifndef PAIRS
#define PAIRS 1000000
#endif
#define MIB (1024.0 * 1024.0)

static pymem_runtime *rt;

int main(void) {
    CHECK_OK(NULL, pymem_runtime_new(NULL, &rt));
    pymem_object *none = NULL;
    CHECK_OK(rt, pymem_none(rt, &none));
    const pymem_alloc_stats base = stats_of(rt);
    const uint64_t rss_start = rss_bytes();

    pymem_object *root = NULL;
    CHECK_OK(rt, pymem_list_new(rt, &root));
    for (long i = 0; i < PAIRS; i++) {
        pymem_object *a = NULL, *b = NULL;
        CHECK_OK(rt, pymem_list_new(rt, &a));
        CHECK_OK(rt, pymem_list_new(rt, &b));
        CHECK_OK(rt, pymem_list_append(rt, b, a));
        CHECK_OK(rt, pymem_list_append(rt, a, b));
        CHECK_OK(rt, pymem_list_append(rt, root, a));
        CHECK_OK(rt, pymem_decref(rt, a));
        CHECK_OK(rt, pymem_decref(rt, b));
    }
    const uint64_t rss_built = rss_bytes();
    const pymem_alloc_stats built = stats_of(rt);

    CHECK_OK(rt, pymem_decref(rt, root)); /* del root */
    const uint64_t rss_deleted = rss_bytes();
    const pymem_alloc_stats deleted = stats_of(rt);
    /* Only root and its item array went: every pair keeps itself alive. */
    CHECK(deleted.bytes_in_use + 16 * 1024 * 1024 > built.bytes_in_use);
    CHECK(deleted.blocks_in_use >= built.blocks_in_use - 2);

    int64_t found = -1;
    CHECK_OK(rt, pymem_gc_collect(rt, 2, &found));
    CHECK_EQ_U64(found, 2 * (uint64_t)PAIRS);
    const uint64_t rss_collected = rss_bytes();
    CHECK_OK(rt, pymem_clear_free_lists(rt));
    const pymem_alloc_stats after = stats_of(rt);
    CHECK_EQ_U64(after.bytes_in_use, base.bytes_in_use);
    CHECK_EQ_U64(after.blocks_in_use, base.blocks_in_use);

    size_t released = 0;
    CHECK_OK(rt, pymem_release_free_arenas(rt, &released));
    const uint64_t rss_released = rss_bytes();

    const double grew = (double)rss_built - (double)rss_start;
    const double back = (double)rss_built - (double)rss_released;
    printf("%d list pairs (cycles) held by root\n", PAIRS);
    printf("  RSS at start            %8.1f MiB\n", rss_start / MIB);
    printf("  built                   %8.1f MiB (+%.1f MiB; %.1f MiB in use)\n", rss_built / MIB, grew / MIB,
           (double)(built.bytes_in_use - base.bytes_in_use) / MIB);
    printf("  del root                %8.1f MiB (the cycles keep themselves alive)\n", rss_deleted / MIB);
    printf("  gc.collect() -> %" PRId64 " %8.1f MiB\n", found, rss_collected / MIB);
    printf("  release_free_arenas     %8.1f MiB (%.1f MiB released by the call; %.1f %% of the growth back)\n",
           rss_released / MIB, released / MIB, grew > 0 ? 100.0 * back / grew : 0.0);
    CHECKF(grew > 32 * MIB, "the structure should take tens of MiB (grew %.1f MiB)", grew / MIB);
    CHECKF(back >= 0.90 * grew, "only %.1f of %.1f MiB came back", back / MIB, grew / MIB);

    CHECK_OK(rt, pymem_runtime_free(rt));
    printf("native_gc_rss: ok\n");
    return 0;
}
