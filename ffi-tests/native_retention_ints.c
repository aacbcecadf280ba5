/*
 * native_retention_ints.c: the seed's list of 10^7 ints, decref'd, gives
 * its memory back (issue 11). Native only (the name starts with native_):
 * it measures the resident set size, in this process of its own.
 *
 * As `a = [i for i in range(1000, 1000 + 10**7)]; del a` in CPython, which
 * returns 99.7 % of what the list added: the list is built through the C
 * API (ints of 1000 and up, so none is a cached small int), then its one
 * reference is dropped with pymem_decref and nothing else is called. At
 * least 99 % of the RSS growth must come back: the ints' arenas go (one
 * spare kept, plus a cache bounded by 1/16 of the bytes still in use), and
 * the list's item array, a large block with its own mapping, is unmapped.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "pymem.h"
#include "check.h"

int main(void) {
    const size_t n = 10 * 1000 * 1000;
    pymem_runtime *rt = NULL;
    CHECK_OK(NULL, pymem_runtime_new(NULL, &rt));
    /* A small list first, built and dropped: what the runtime creates once,
     * on first use (the small ints, the collector's lists), is then there
     * in the baseline. */
    pymem_object *warm = NULL;
    CHECK_OK(rt, pymem_list_new(rt, &warm));
    for (int i = 0; i < 1000; i++) {
        pymem_object *o = NULL;
        CHECK_OK(rt, pymem_int_new(rt, 1000 + i, &o));
        CHECK_OK(rt, pymem_list_append(rt, warm, o));
        CHECK_OK(rt, pymem_decref(rt, o));
    }
    CHECK_OK(rt, pymem_decref(rt, warm));
    const pymem_alloc_stats start = stats_of(rt);
    const uint64_t rss_start = rss_bytes();

    pymem_object *list = NULL;
    CHECK_OK(rt, pymem_list_new(rt, &list));
    for (size_t i = 0; i < n; i++) {
        pymem_object *o = NULL;
        CHECK_OK(rt, pymem_int_new(rt, (int64_t)(1000 + i), &o));
        CHECK_OK(rt, pymem_list_append(rt, list, o));
        CHECK_OK(rt, pymem_decref(rt, o));
    }
    const uint64_t rss_full = rss_bytes();
    CHECK_OK(rt, pymem_decref(rt, list)); /* del a */
    const uint64_t rss_freed = rss_bytes();

    const pymem_alloc_stats s = stats_of(rt);
    const uint64_t growth = rss_full > rss_start ? rss_full - rss_start : 0;
    const uint64_t dropped = rss_full > rss_freed ? rss_full - rss_freed : 0;
    printf("native_retention_ints: a list of %zu ints, then one pymem_decref\n", n);
    printf("  RSS: start %.1f MiB, full %.1f MiB (+%.1f), after the decref %.1f MiB (%.1f MiB stays)\n",
           mib(rss_start), mib(rss_full), mib(growth), mib(rss_freed),
           mib(rss_freed > rss_start ? rss_freed - rss_start : 0));
    printf("  given back: %.2f %% of the growth (at least 99 %% required)\n",
           growth ? 100.0 * (double)dropped / (double)growth : 0.0);
    print_held_free(&s);

    CHECK_EQ_U64(s.blocks_in_use, start.blocks_in_use);
    CHECK(growth >= (uint64_t)n * 16); /* the ints were really resident */
    CHECKF(dropped * 100 >= growth * 99, "RSS dropped by %llu of %llu bytes of growth (< 99 %%)",
           (unsigned long long)dropped, (unsigned long long)growth);
    CHECK(s.free_bytes_cache <= s.free_bytes_cache_limit);

    CHECK_OK(rt, pymem_runtime_free(rt));
    return 0;
}
