/*
 * ns_seed.c: the seed's practical goal (issue 5, point 6; the seed's
 * sections 3.2-3.5), through the C ABI, printed and asserted:
 *
 *   a namespace (a notebook's: In, Out, get_ipython, exit, quit hidden)
 *   import math; def helper(x): ...        -> a module and a function
 *   a = [i for i in range(1000, 1000 + N)]  -> N new ints
 *   b = [i * 0.5 for i in range(N)]         -> N distinct floats
 *   d = {s: s for s in map(str, range(M))}  -> M strs (key and value the same)
 *   c = {'name': 'cycle'}; c['self'] = c; c['items'] = [c, [c]]
 *
 *   who      -> a b c d (only the user variables)
 *   whos     -> their sizes (a list's: its item array and its ints)
 *   reset    -> 4 names removed, the cycle found by the collection, bytes
 *               and blocks in use back to the start figures; math and
 *               helper remain
 *   RSS      -> at least 99 % of the growth given back to the OS
 *               (/proc/self/statm; CPython 3.11 gives back 99.6 % here,
 *               ../shared/peers/RESULTS.md section 6)
 *
 * Natively N = 10^7, M = 10^6, in this process of its own (the runner runs
 * native programs one at a time). Under valgrind (PYMEM_FFI_UNDER_VALGRIND)
 * the same walk at N = 10^5, M = 10^4, without the RSS check: RSS means
 * nothing there.
 */
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "pymem.h"
#include "check.h"

#define MIB (1024.0 * 1024.0)

static pymem_runtime *rt;
static pymem_object *ns;

static pymem_status identity(pymem_runtime *r, pymem_object *const *args, size_t nargs, pymem_object **result,
                             void *userdata) {
    (void)userdata;
    if (nargs != 1)
        return PYMEM_ERR_INVALID_ARGUMENT;
    *result = args[0];
    return pymem_incref(r, args[0]);
}

/* ns[name] = o, and the caller's reference dropped. */
static void bind(const char *name, pymem_object *o) {
    CHECK_OK(rt, pymem_ns_set(rt, ns, name, o));
    CHECK_OK(rt, pymem_decref(rt, o));
}

static pymem_object *str_of(const char *s) {
    pymem_object *o = NULL;
    CHECK_OK(rt, pymem_str_new(rt, s, strlen(s), &o));
    return o;
}

static void set_item(pymem_object *d, const char *key, pymem_object *value) {
    pymem_object *k = str_of(key);
    CHECK_OK(rt, pymem_dict_set(rt, d, k, value));
    CHECK_OK(rt, pymem_decref(rt, k));
}

static void build(size_t n, size_t m) {
    pymem_object *a = NULL, *b = NULL, *d = NULL, *c = NULL, *items = NULL, *inner = NULL;
    CHECK_OK(rt, pymem_list_new(rt, &a));
    for (size_t i = 0; i < n; i++) {
        pymem_object *v = NULL;
        CHECK_OK(rt, pymem_int_new(rt, 1000 + (int64_t)i, &v));
        CHECK_OK(rt, pymem_list_append(rt, a, v));
        CHECK_OK(rt, pymem_decref(rt, v));
    }
    bind("a", a);
    CHECK_OK(rt, pymem_list_new(rt, &b));
    for (size_t i = 0; i < n; i++) {
        pymem_object *v = NULL;
        CHECK_OK(rt, pymem_float_new(rt, (double)i * 0.5, &v));
        CHECK_OK(rt, pymem_list_append(rt, b, v));
        CHECK_OK(rt, pymem_decref(rt, v));
    }
    bind("b", b);
    CHECK_OK(rt, pymem_dict_new(rt, &d));
    for (size_t i = 0; i < m; i++) {
        char text[24];
        snprintf(text, sizeof text, "%zu", i);
        pymem_object *s = str_of(text);
        CHECK_OK(rt, pymem_dict_set(rt, d, s, s));
        CHECK_OK(rt, pymem_decref(rt, s));
    }
    bind("d", d);
    /* c = {'name': 'cycle'}; c['self'] = c; c['items'] = [c, [c]] */
    CHECK_OK(rt, pymem_dict_new(rt, &c));
    pymem_object *cycle = str_of("cycle");
    set_item(c, "name", cycle);
    CHECK_OK(rt, pymem_decref(rt, cycle));
    set_item(c, "self", c);
    CHECK_OK(rt, pymem_list_new(rt, &items));
    CHECK_OK(rt, pymem_list_new(rt, &inner));
    CHECK_OK(rt, pymem_list_append(rt, inner, c));
    CHECK_OK(rt, pymem_list_append(rt, items, c));
    CHECK_OK(rt, pymem_list_append(rt, items, inner));
    CHECK_OK(rt, pymem_decref(rt, inner));
    set_item(c, "items", items);
    CHECK_OK(rt, pymem_decref(rt, items));
    bind("c", c);
}

/* The names of a who list, space separated. */
static void who_text(pymem_object *list, char *out, size_t cap) {
    size_t len = 0, used = 0;
    out[0] = '\0';
    CHECK_OK(rt, pymem_list_len(rt, list, &len));
    for (size_t i = 0; i < len; i++) {
        pymem_object *name = NULL;
        const char *text = NULL;
        size_t n = 0;
        CHECK_OK(rt, pymem_list_get(rt, list, i, &name));
        CHECK_OK(rt, pymem_str_value(rt, name, &text, &n));
        used += (size_t)snprintf(out + used, cap - used, "%s%s", i ? " " : "", text);
        CHECK(used < cap);
        CHECK_OK(rt, pymem_decref(rt, name));
    }
}

int main(void) {
    const size_t n = scaled(10000000, 100000);
    const size_t m = n / 10;
    CHECK_OK(NULL, pymem_runtime_new(NULL, &rt));
    CHECK_OK(rt, pymem_ns_new(rt, "__main__", PYMEM_NS_NOTEBOOK, &ns));
    pymem_object *math = NULL, *helper = NULL;
    CHECK_OK(rt, pymem_module_new(rt, "math", &math));
    bind("math", math);
    CHECK_OK(rt, pymem_function_new(rt, "helper", identity, NULL, &helper));
    bind("helper", helper);
    collect_ok(rt, 2);
    CHECK_OK(rt, pymem_clear_free_lists(rt));
    const pymem_alloc_stats start = stats_of(rt);
    const uint64_t rss_start = rss_bytes();

    build(n, m);
    const uint64_t rss_built = rss_bytes();
    const pymem_alloc_stats built = stats_of(rt);
    printf("seed namespace: a = %zu ints, b = %zu floats, d = %zu strs, c = a 3-object cycle, math, helper\n", n, n,
           m);
    printf("  bytes in use: start %" PRIu64 ", built %" PRIu64 " (+%.1f MiB)\n", (uint64_t)start.bytes_in_use,
           (uint64_t)built.bytes_in_use, (double)(built.bytes_in_use - start.bytes_in_use) / MIB);

    /* who: only the user variables. */
    pymem_object *who = NULL;
    char names[256];
    CHECK_OK(rt, pymem_ns_who(rt, ns, NULL, &who));
    who_text(who, names, sizeof names);
    CHECK_OK(rt, pymem_decref(rt, who));
    printf("\n%%who\n%s\n", names);
    CHECK_STR_EQ(names, "a b c d");
    CHECK_OK(rt, pymem_ns_who(rt, ns, "list", &who));
    who_text(who, names, sizeof names);
    CHECK_OK(rt, pymem_decref(rt, who));
    CHECK_STR_EQ(names, "a b");

    /* whos: their sizes. */
    char *table = NULL;
    CHECK_OK(rt, pymem_ns_whos(rt, ns, &table));
    printf("\n%%whos\n%s", table);
    char expect[64];
    snprintf(expect, sizeof expect, "n=%zu", n);
    CHECK_CONTAINS(table, expect);
    CHECK_CONTAINS(table, "Variable   Type   Size");
    CHECK_CONTAINS(table, "Total: ");
    CHECK(strstr(table, "math") == NULL && strstr(table, "helper") == NULL && strstr(table, "In ") == NULL);
    pymem_string_free(table);

    /* Who keeps the cycle alive: its binding only (the rest is the cycle). */
    char *why = NULL;
    CHECK_OK(rt, pymem_ns_why_alive(rt, ns, "c", &why));
    printf("\nwhy_alive c\n%s", why);
    CHECK_CONTAINS(why, "is kept alive by 1 chain of references:\n  namespace '__main__': c\n");
    pymem_string_free(why);

    /* reset: delete them, collect, give the memory back. */
    pymem_reset_report report;
    memset(&report, 0xff, sizeof report);
    const pymem_alloc_stats before_reset = stats_of(rt);
    CHECK_OK(rt, pymem_ns_reset(rt, ns, NULL, &report));
    const uint64_t rss_after = rss_bytes();
    const pymem_alloc_stats after = stats_of(rt);
    printf("\n%%reset: %" PRIu64 " names removed, %" PRIu64 " objects freed, %" PRIu64 " bytes freed, %" PRIu64
           " bytes returned to the OS, %" PRIu64 " unreachable\n",
           report.names_removed, report.objects_freed, report.bytes_freed, report.bytes_returned_to_os,
           report.unreachable);
    CHECK_EQ_U64(report.names_removed, 4);
    CHECK_EQ_U64(report.unreachable, 3);
    /* N ints, N floats, M strs less the ten one-digit ones (immortal, as in
       CPython), and the containers and strs of c. */
    CHECK(report.objects_freed >= 2 * n + m);
    CHECK_EQ_U64(report.bytes_freed, before_reset.bytes_in_use - after.bytes_in_use);
    CHECK(report.bytes_returned_to_os > 0);
    printf("  bytes in use: %" PRIu64 " (start %" PRIu64 "), blocks %" PRIu64 " (start %" PRIu64 ")\n",
           (uint64_t)after.bytes_in_use, (uint64_t)start.bytes_in_use, (uint64_t)after.blocks_in_use,
           (uint64_t)start.blocks_in_use);
    CHECK_EQ_U64(after.bytes_in_use, start.bytes_in_use);
    CHECK_EQ_U64(after.blocks_in_use, start.blocks_in_use);
    CHECK_OK(rt, pymem_ns_who(rt, ns, NULL, &who));
    who_text(who, names, sizeof names);
    CHECK_OK(rt, pymem_decref(rt, who));
    CHECK_STR_EQ(names, "");
    /* The module and the function remain (and the notebook's names). */
    pymem_object *kept = NULL;
    CHECK_OK(rt, pymem_ns_get(rt, ns, "math", &kept));
    CHECK(kept == math);
    CHECK_OK(rt, pymem_decref(rt, kept));
    CHECK_OK(rt, pymem_ns_get(rt, ns, "helper", &kept));
    CHECK(kept == helper);
    CHECK_OK(rt, pymem_decref(rt, kept));
    CHECK_OK(rt, pymem_ns_get(rt, ns, "In", &kept));
    CHECK_OK(rt, pymem_decref(rt, kept));

    if (!under_valgrind()) {
        const double grew = (double)rss_built - (double)rss_start;
        const double back = (double)rss_built - (double)rss_after;
        printf("\nRSS (/proc/self/statm): start %.1f MiB, built %.1f MiB, after reset %.1f MiB\n", rss_start / MIB,
               rss_built / MIB, rss_after / MIB);
        printf("  grew %.1f MiB, returned %.1f MiB, kept %.1f MiB: %.2f %% of the growth back to the OS\n",
               grew / MIB, back / MIB, (grew - back) / MIB, 100.0 * back / grew);
        CHECKF(grew > 256 * MIB, "the seed's data should take hundreds of MiB (grew %.1f MiB)", grew / MIB);
        CHECKF(back >= 0.99 * grew, "only %.2f %% of the RSS growth came back", 100.0 * back / grew);
    }

    CHECK_OK(rt, pymem_decref(rt, ns));
    CHECK_OK(rt, pymem_runtime_free(rt));
    printf("ns_seed: ok\n");
    return 0;
}
