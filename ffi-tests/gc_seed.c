/*
 * gc_seed.c: the seed's cycle-collector point (issue 4, point 7), through
 * the C ABI, printed and asserted:
 *
 *   - two objects referring to each other (two lists; then two instances
 *     of a host type, `a.other = b; b.other = a`, as the seed's Python has
 *     it): releasing the outside references leaves them alive, each with
 *     count 1 (the other's reference), still tracked;
 *   - pymem_gc_collect(2) frees them and returns 2, as gc.collect() does;
 *     the pointers are refused afterwards, and the allocator's bytes and
 *     blocks in use are back to the baseline (after emptying the free
 *     lists, where CPython's dead lists would wait too);
 *   - the thresholds read (700, 10, 10), CPython 3.11's;
 *   - a collection with nothing to collect returns 0.
 *
 * The RSS part of the seed (a big cyclic structure deleted and collected)
 * is native_gc_rss.c: RSS means nothing under valgrind.
 */
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>

#include "pymem.h"
#include "check.h"

static pymem_runtime *rt;
static pymem_object *none;

static intptr_t count(pymem_object *o) { return refcount_of(rt, o); }

static int tracked(pymem_object *o) {
    int t = -1;
    CHECK_OK(rt, pymem_gc_is_tracked(rt, o, &t));
    return t;
}

static int64_t collect(void) {
    int64_t found = -1;
    CHECK_OK(rt, pymem_gc_collect(rt, 2, &found));
    return found;
}

/* The allocator's numbers with the free lists emptied. */
static pymem_alloc_stats settled(void) {
    CHECK_OK(rt, pymem_clear_free_lists(rt));
    return stats_of(rt);
}

static void check_back_to(const pymem_alloc_stats *base, const char *what) {
    pymem_alloc_stats now = settled();
    printf("  %-44s bytes in use %" PRIu64 " (baseline %" PRIu64 "), blocks %" PRIu64 " (baseline %" PRIu64 ")\n",
           what, (uint64_t)now.bytes_in_use, (uint64_t)base->bytes_in_use, (uint64_t)now.blocks_in_use,
           (uint64_t)base->blocks_in_use);
    CHECK_EQ_U64(now.bytes_in_use, base->bytes_in_use);
    CHECK_EQ_U64(now.blocks_in_use, base->blocks_in_use);
}

static void two_lists(void) {
    printf("two lists referring to each other\n");
    const pymem_alloc_stats base = settled();
    pymem_object *a = NULL, *b = NULL;
    CHECK_OK(rt, pymem_list_new(rt, &a));
    CHECK_OK(rt, pymem_list_new(rt, &b));
    CHECK_OK(rt, pymem_list_append(rt, a, b)); /* a = []; b = [a]; a.append(b) */
    CHECK_OK(rt, pymem_list_append(rt, b, a));
    printf("  a = []; b = [a]; a.append(b)                 refcount(a) = %" PRIdPTR ", refcount(b) = %" PRIdPTR "\n",
           count(a), count(b));
    CHECK(count(a) == 2 && count(b) == 2);

    CHECK_OK(rt, pymem_decref(rt, a)); /* del a, b */
    CHECK_OK(rt, pymem_decref(rt, b));
    printf("  del a, b                                      refcount(a) = %" PRIdPTR ", refcount(b) = %" PRIdPTR
           " (alive: the cycle)\n",
           count(a), count(b));
    CHECK(count(a) == 1 && count(b) == 1);
    CHECK(tracked(a) == 1 && tracked(b) == 1);
    CHECK(stats_of(rt).bytes_in_use > base.bytes_in_use);

    int64_t found = collect();
    printf("  gc.collect()                                  -> %" PRId64 "\n", found);
    CHECK_EQ_U64(found, 2);
    /* Both are gone: their addresses are refused now. */
    ptrdiff_t n = 0;
    CHECK_STATUS(rt, pymem_refcount(rt, a, &n), PYMEM_ERR_INVALID_POINTER);
    CHECK_STATUS(rt, pymem_refcount(rt, b, &n), PYMEM_ERR_INVALID_POINTER);
    check_back_to(&base, "after the collection:");
    CHECK_EQ_U64(collect(), 0);
}

static void two_instances(void) {
    printf("two instances referring to each other (a.other = b; b.other = a)\n");
    pymem_type_spec spec;
    pymem_type_spec_init(&spec);
    spec.name = "A";
    pymem_type *type_a = NULL;
    CHECK_OK(rt, pymem_type_new(rt, &spec, &type_a));

    /* The type keeps the attribute names its instances use (CPython's
       shared keys): learn "other" before the baseline. */
    pymem_object *warm = NULL;
    CHECK_OK(rt, pymem_instance_new(rt, type_a, &warm));
    CHECK_OK(rt, pymem_setattr(rt, warm, "other", none));
    CHECK_OK(rt, pymem_decref(rt, warm));

    const pymem_alloc_stats base = settled();
    pymem_object *a = NULL, *b = NULL;
    CHECK_OK(rt, pymem_instance_new(rt, type_a, &a));
    CHECK_OK(rt, pymem_instance_new(rt, type_a, &b));
    CHECK_OK(rt, pymem_setattr(rt, a, "other", b));
    CHECK_OK(rt, pymem_setattr(rt, b, "other", a));
    CHECK(count(a) == 2 && count(b) == 2);
    CHECK_OK(rt, pymem_decref(rt, a));
    CHECK_OK(rt, pymem_decref(rt, b));
    printf("  del a, b                                      refcount(a) = %" PRIdPTR ", refcount(b) = %" PRIdPTR "\n",
           count(a), count(b));
    CHECK(count(a) == 1 && count(b) == 1);
    int64_t found = collect();
    printf("  gc.collect()                                  -> %" PRId64 "\n", found);
    CHECK_EQ_U64(found, 2);
    check_back_to(&base, "after the collection:");
}

int main(void) {
    CHECK_OK(NULL, pymem_runtime_new(NULL, &rt));
    CHECK_OK(rt, pymem_none(rt, &none)); /* makes the singletons before any baseline */

    int64_t t[3] = {0, 0, 0};
    CHECK_OK(rt, pymem_gc_get_threshold(rt, t));
    printf("gc.get_threshold() -> (%" PRId64 ", %" PRId64 ", %" PRId64 ")\n", t[0], t[1], t[2]);
    CHECK(t[0] == 700 && t[1] == 10 && t[2] == 10);
    CHECK_EQ_U64(collect(), 0); /* nothing to collect yet */

    two_lists();
    two_instances();

    CHECK_OK(rt, pymem_runtime_free(rt));
    printf("gc_seed: ok\n");
    return 0;
}
