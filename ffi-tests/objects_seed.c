/*
 * objects_seed.c: the seed's sections 2.1-2.4 ("reference counts"),
 * reproduced through the C ABI. Each point is printed, with what CPython
 * prints for the same Python line, and asserted.
 *
 *   2.1  a fresh object has count 1 (sys.getrefcount shows 2: its argument
 *        is a temporary reference)
 *   2.2  a second owner (a list holding it, another name bound to it) raises
 *        the count; releasing lowers it
 *   2.3  an object referring to another twice raises that one's count by 2
 *   2.4  `y = x` is the same id; small ints share an id, 257 built twice
 *        does not
 *
 * (The seed's copy/deepcopy points wait for pymem_copy/pymem_deepcopy.)
 * At the end every block the walk allocated is freed again: the
 * allocator's blocks_in_use is back to its baseline before the runtime is.
 */
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>

#include "pymem.h"
#include "check.h"

static pymem_runtime *rt;

static intptr_t count(pymem_object *o) { return refcount_of(rt, o); }

/* Prints `python` (a Python line), what pymem shows, and CPython's value. */
static void show(const char *python, intptr_t pymem_count) {
    printf("  %-44s pymem_refcount = %" PRIdPTR "   sys.getrefcount = %" PRIdPTR "\n", python,
           pymem_count, pymem_count + 1);
}

static void section_2_1_fresh_object(void) {
    printf("2.1 a fresh object has one owner\n");
    pymem_object *x = NULL;
    CHECK_OK(rt, pymem_list_new(rt, &x));
    show("x = []", count(x));
    CHECK(count(x) == 1);
    printf("      (CPython's sys.getrefcount(x) prints 2: its argument is a temporary reference)\n");

    pymem_object *f = NULL;
    CHECK_OK(rt, pymem_float_new(rt, 3.14, &f));
    show("f = 3.14", count(f));
    CHECK(count(f) == 1);

    pymem_object *s = NULL;
    CHECK_OK(rt, pymem_str_new(rt, "hello, world", 12, &s));
    show("s = 'hello, world'", count(s));
    CHECK(count(s) == 1);

    CHECK_OK(rt, pymem_decref(rt, x));
    CHECK_OK(rt, pymem_decref(rt, f));
    CHECK_OK(rt, pymem_decref(rt, s));
}

static void section_2_2_more_owners(void) {
    printf("2.2 every owner is one count; releasing gives it back\n");
    pymem_object *x = NULL, *holder = NULL;
    CHECK_OK(rt, pymem_float_new(rt, 2.5, &x));
    show("x = 2.5", count(x));
    CHECK(count(x) == 1);

    CHECK_OK(rt, pymem_list_new(rt, &holder));
    CHECK_OK(rt, pymem_list_append(rt, holder, x));
    show("holder = [x]", count(x));
    CHECK(count(x) == 2);

    /* y = x: a second name is a second owner. */
    CHECK_OK(rt, pymem_incref(rt, x));
    pymem_object *y = x;
    show("y = x", count(x));
    CHECK(count(x) == 3);

    CHECK_OK(rt, pymem_decref(rt, y));
    y = NULL;
    show("del y", count(x));
    CHECK(count(x) == 2);

    pymem_object *popped = NULL;
    CHECK_OK(rt, pymem_list_pop(rt, holder, 0, &popped)); /* the list's reference moves to us */
    CHECK(pymem_is(popped, x));
    show("popped = holder.pop()", count(x));
    CHECK(count(x) == 2); /* x and popped are the two owners */
    CHECK_OK(rt, pymem_decref(rt, popped));
    show("del popped", count(x));
    CHECK(count(x) == 1);

    /* Destroying the container releases what it held. */
    CHECK_OK(rt, pymem_list_append(rt, holder, x));
    CHECK(count(x) == 2);
    CHECK_OK(rt, pymem_decref(rt, holder));
    show("holder.append(x); del holder", count(x));
    CHECK(count(x) == 1);

    /* A dict holds its key and its value. */
    pymem_object *d = NULL, *k = NULL;
    CHECK_OK(rt, pymem_dict_new(rt, &d));
    CHECK_OK(rt, pymem_str_new(rt, "key", 3, &k));
    CHECK_OK(rt, pymem_dict_set(rt, d, k, x));
    show("d = {'key': x}", count(x));
    CHECK(count(x) == 2 && count(k) == 2);
    CHECK_OK(rt, pymem_dict_del(rt, d, k));
    show("del d['key']", count(x));
    CHECK(count(x) == 1 && count(k) == 1);
    CHECK_OK(rt, pymem_decref(rt, d));
    CHECK_OK(rt, pymem_decref(rt, k));
    CHECK_OK(rt, pymem_decref(rt, x));
}

static void section_2_3_referred_twice(void) {
    printf("2.3 an object referred to twice by another has two more owners\n");
    pymem_object *x = NULL, *l = NULL, *t = NULL;
    CHECK_OK(rt, pymem_str_new(rt, "shared", 6, &x));
    const intptr_t before = count(x);
    show("x = 'shared'", before);
    CHECK(before == 1);

    CHECK_OK(rt, pymem_list_new(rt, &l));
    CHECK_OK(rt, pymem_list_append(rt, l, x));
    CHECK_OK(rt, pymem_list_append(rt, l, x));
    show("l = [x, x]", count(x));
    CHECK(count(x) == before + 2);

    pymem_object *items[2] = {x, x};
    CHECK_OK(rt, pymem_tuple_new(rt, 2, items, &t));
    show("t = (x, x)", count(x));
    CHECK(count(x) == before + 4);

    CHECK_OK(rt, pymem_decref(rt, l));
    show("del l", count(x));
    CHECK(count(x) == before + 2);
    CHECK_OK(rt, pymem_decref(rt, t));
    show("del t", count(x));
    CHECK(count(x) == before);
    CHECK_OK(rt, pymem_decref(rt, x));
}

static void section_2_4_identity(void) {
    printf("2.4 identity: `is` compares ids\n");
    pymem_object *x = NULL;
    CHECK_OK(rt, pymem_list_new(rt, &x));
    CHECK_OK(rt, pymem_incref(rt, x));
    pymem_object *y = x; /* y = x */
    printf("  y = x:             id(x) = %#zx, id(y) = %#zx, x is y -> %s\n", (size_t)pymem_id(x),
           (size_t)pymem_id(y), pymem_is(x, y) ? "True" : "False");
    CHECK(pymem_id(x) == pymem_id(y) && pymem_is(x, y));
    CHECK(pymem_id(x) != 0);

    /* An equal but distinct object is not the same id. */
    pymem_object *z = NULL;
    CHECK_OK(rt, pymem_list_new(rt, &z));
    int eq = -1;
    CHECK_OK(rt, pymem_equal(rt, x, z, &eq));
    printf("  z = []:            x == z -> %s, x is z -> %s\n", eq ? "True" : "False",
           pymem_is(x, z) ? "True" : "False");
    CHECK(eq == 1 && !pymem_is(x, z) && pymem_id(x) != pymem_id(z));
    CHECK_OK(rt, pymem_decref(rt, x));
    CHECK_OK(rt, pymem_decref(rt, y));
    CHECK_OK(rt, pymem_decref(rt, z));

    /* Small ints come from a cache: the same object each time, immortal. */
    static const int64_t cached[] = {-5, 0, 7, 256};
    for (size_t i = 0; i < sizeof cached / sizeof cached[0]; i++) {
        pymem_object *a = NULL, *b = NULL;
        CHECK_OK(rt, pymem_int_new(rt, cached[i], &a));
        CHECK_OK(rt, pymem_int_new(rt, cached[i], &b));
        printf("  a = %7" PRId64 "; b = %7" PRId64 ":  a is b -> %s (refcount %" PRIdPTR
               ", immortal)\n",
               cached[i], cached[i], pymem_is(a, b) ? "True" : "False", count(a));
        CHECK(pymem_is(a, b) && pymem_id(a) == pymem_id(b));
        CHECK(count(a) == (intptr_t)PYMEM_IMMORTAL_REFCNT);
        CHECK_OK(rt, pymem_decref(rt, a));
        CHECK_OK(rt, pymem_decref(rt, b));
    }
    /* Outside the cache: two objects. */
    static const int64_t uncached[] = {-6, 257, 1000000};
    for (size_t i = 0; i < sizeof uncached / sizeof uncached[0]; i++) {
        pymem_object *a = NULL, *b = NULL;
        CHECK_OK(rt, pymem_int_new(rt, uncached[i], &a));
        CHECK_OK(rt, pymem_int_new(rt, uncached[i], &b));
        int same_value = -1;
        CHECK_OK(rt, pymem_equal(rt, a, b, &same_value));
        printf("  a = %7" PRId64 "; b = %7" PRId64 ":  a is b -> %s, a == b -> %s (refcount %" PRIdPTR
               " each)\n",
               uncached[i], uncached[i], pymem_is(a, b) ? "True" : "False",
               same_value ? "True" : "False", count(a));
        CHECK(!pymem_is(a, b) && pymem_id(a) != pymem_id(b));
        CHECK(same_value == 1);
        CHECK(count(a) == 1 && count(b) == 1);
        CHECK_OK(rt, pymem_decref(rt, a));
        CHECK_OK(rt, pymem_decref(rt, b));
    }
}

int main(void) {
    CHECK_OK(NULL, pymem_runtime_new(NULL, &rt));
    /* The first object call makes the immortal singletons: the baseline
       is taken after it. */
    pymem_object *none = NULL;
    CHECK_OK(rt, pymem_none(rt, &none));
    const uint64_t baseline = stats_of(rt).blocks_in_use;
    printf("the seed, sections 2.1-2.4, through the C ABI (baseline: %llu blocks)\n",
           (unsigned long long)baseline);

    section_2_1_fresh_object();
    section_2_2_more_owners();
    section_2_3_referred_twice();
    section_2_4_identity();

    /* Freed floats and lists wait on their free lists (CPython's layer 3);
       emptying them gives every block back. */
    CHECK_OK(rt, pymem_clear_free_lists(rt));
    printf("back to baseline: %llu blocks in use\n", (unsigned long long)stats_of(rt).blocks_in_use);
    CHECK_BLOCKS(rt, baseline);
    CHECK_OK(rt, pymem_runtime_free(rt));
    printf("objects_seed: OK\n");
    return 0;
}
