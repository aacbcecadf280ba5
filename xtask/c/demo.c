/* demo.c -- `cargo xtask demo`: pymem as a C host sees it, through the C API
 * only (include/pymem.h, libpymem.so).
 *
 * Usage: demo SECTION...       (demo --list names them)
 * Each section prints a report for people; lines starting with "RESULT "
 * carry numbers for xtask, which compares them with CPython and hides them.
 *
 * Sections:
 *   pools   the seed's memory-pool experiment: 10^7 small blocks allocated
 *           and freed (what the allocator holds and what the OS sees at each
 *           step), then the fragmented case where 1 block in 1024 survives.
 *   objects the seed's reference counts (sections 2.1-2.4) walked through the
 *           object calls: each point printed with what CPython shows for the
 *           same Python line, and asserted (a failed one exits 1); then the
 *           float free list, a list nested 100,000 deep freed without
 *           recursion, and the allocator back where it started. With
 *           -DDEMO_HAVE_COPY (xtask sets it when include/pymem.h declares
 *           pymem_copy and pymem_deepcopy), shallow and deep copies too.
 *   gc      the seed's cycle collector: two objects referring to each other
 *           stay alive after `del` (count 1 each), pymem_gc_collect frees
 *           them and returns 2, the allocator is back to its baseline; the
 *           thresholds (700, 10, 10); 10**6 list pairs in cycles deleted,
 *           collected, and the RSS given back with pymem_release_free_arenas.
 *   namespaces the seed's practical goal: a notebook namespace gets 10**7
 *           ints, 10**7 floats, 10**6 strs, a cycle, a module and a function;
 *           %who lists the user variables, %whos their sizes, why_alive the
 *           chains keeping one alive; pymem_ns_reset deletes them, collects,
 *           and gives the memory back to the OS (RSS before and after).
 *   cuda    the seed's GPU story on a simulated 80 GiB device: a 1 GiB tensor
 *           and a small one, what memory_allocated, memory_reserved and
 *           nvidia-smi (mem_get_info) say after each step, `del` (the cache
 *           keeps the memory), empty_cache (gives back only segments no
 *           tensor uses), memory_summary, an OOM under a memory fraction
 *           with PyTorch's message, and what the seed could not do:
 *           release_all, every byte back without ending the process.
 *   report  the seed's story as one HTML page (pymem_report_html): a mark at
 *           each step (built, del a, del of a cycle, gc.collect(), %reset),
 *           %whos and why_alive on the way, a simulated GPU cache; the page
 *           goes to $PYMEM_DEMO_REPORT (xtask sets it) and its path is printed.
 * Later parts of pymem add their sections to the table at the end.
 */
#include <inttypes.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <pymem.h>

#include "seed_namespace.h"

/* ------------------------------------------------------------------ */
/* Helpers                                                             */
/* ------------------------------------------------------------------ */

#define MIB (1024.0 * 1024.0)
#define BAR_WIDTH 40

static void die(const char *what, pymem_runtime *rt) {
    fprintf(stderr, "demo: %s failed: %s\n", what, pymem_last_error(rt));
    exit(1);
}

static void check(pymem_status st, const char *what, pymem_runtime *rt) {
    if (st != PYMEM_OK) {
        fprintf(stderr, "demo: %s failed: %s: %s\n", what, pymem_status_name(st), pymem_last_error(rt));
        exit(1);
    }
}

/* Resident set size of this process: /proc/self/statm field 2 x page size. */
static uint64_t rss_bytes(void) {
    FILE *f = fopen("/proc/self/statm", "r");
    unsigned long long size = 0, resident = 0;
    if (f == NULL || fscanf(f, "%llu %llu", &size, &resident) != 2) {
        fprintf(stderr, "demo: cannot read /proc/self/statm\n");
        exit(1);
    }
    fclose(f);
    return resident * (uint64_t)sysconf(_SC_PAGESIZE);
}

/* 12345678 -> "12,345,678" (buf of at least 32 bytes). */
static const char *thousands(uint64_t v, char *buf) {
    char digits[32];
    int n = snprintf(digits, sizeof digits, "%llu", (unsigned long long)v);
    int j = 0;
    for (int i = 0; i < n; i++) {
        if (i > 0 && (n - i) % 3 == 0) buf[j++] = ',';
        buf[j++] = digits[i];
    }
    buf[j] = '\0';
    return buf;
}

static void bar(double value, double max) {
    int width = max > 0 ? (int)(value / max * BAR_WIDTH + 0.5) : 0;
    if (value > 0 && width == 0) width = 1;
    if (width > BAR_WIDTH) width = BAR_WIDTH;
    putchar(' ');
    for (int i = 0; i < width; i++) putchar('#');
    putchar('\n');
}

static void rule(const char *title) {
    printf("\n--- %s ", title);
    for (size_t i = strlen(title); i < 70; i++) putchar('-');
    putchar('\n');
}

/* One step of an experiment: the allocator's numbers and the RSS. */
struct step {
    const char *label;
    pymem_alloc_stats stats;
    uint64_t rss;
};

static struct step snapshot(pymem_runtime *rt, const char *label) {
    struct step s;
    s.label = label;
    check(pymem_alloc_get_stats(rt, &s.stats), "pymem_alloc_get_stats", rt);
    s.rss = rss_bytes();
    return s;
}

enum metric { BYTES_IN_USE, BYTES_RESERVED, RSS, BLOCKS_IN_USE, ARENAS_CURRENT, POOLS_RELEASED, N_METRICS };
static const char *const metric_names[N_METRICS] = {
    "bytes in use (live blocks)",       "bytes reserved (arenas + large blocks)",
    "RSS (resident, whole process)",    "blocks in use",
    "arenas current",                   "pools given back (MADV_DONTNEED)",
};

static double metric(const struct step *s, enum metric m) {
    switch (m) {
    case BYTES_IN_USE: return (double)s->stats.bytes_in_use;
    case BYTES_RESERVED: return (double)s->stats.bytes_reserved;
    case RSS: return (double)s->rss;
    case BLOCKS_IN_USE: return (double)s->stats.blocks_in_use;
    case ARENAS_CURRENT: return (double)s->stats.arenas_current;
    case POOLS_RELEASED: return (double)s->stats.pools_released;
    default: return 0;
    }
}

/* Prints each metric with one bar per step. Byte metrics share one scale
 * (the largest RSS), counts are scaled to their own maximum. */
static void print_steps(const struct step *steps, int n) {
    double max_rss = 0;
    for (int i = 0; i < n; i++)
        if ((double)steps[i].rss > max_rss) max_rss = (double)steps[i].rss;
    for (int m = 0; m < N_METRICS; m++) {
        int is_bytes = m == BYTES_IN_USE || m == BYTES_RESERVED || m == RSS;
        double max = 0;
        for (int i = 0; i < n; i++)
            if (metric(&steps[i], m) > max) max = metric(&steps[i], m);
        if (is_bytes) max = max_rss > max ? max_rss : max;
        printf("\n%s%s\n", metric_names[m], is_bytes ? "  (bars: share of the largest RSS)" : "");
        for (int i = 0; i < n; i++) {
            double v = metric(&steps[i], m);
            char buf[32];
            if (is_bytes)
                printf("  %-32s %9.1f MiB", steps[i].label, v / MIB);
            else
                printf("  %-32s %13s", steps[i].label, thousands((uint64_t)v, buf));
            bar(v, max);
        }
    }
}

/* Prints pymem_debug_malloc_stats: the whole report when short, else its
 * head and the byte-accounting lines. */
static void print_debug_malloc_stats(pymem_runtime *rt) {
    char *text = NULL;
    check(pymem_debug_malloc_stats(rt, &text), "pymem_debug_malloc_stats", rt);
    int lines = 0;
    for (const char *c = text; *c; c++) lines += *c == '\n';
    int line = 0;
    for (char *start = text, *end; *start; start = end + 1, line++) {
        end = strchr(start, '\n');
        if (end == NULL) end = start + strlen(start);
        int keep = lines <= 60 || line < 25 || strncmp(start, "# bytes", 7) == 0 || strncmp(start, "Total", 5) == 0;
        if (keep) printf("  | %.*s\n", (int)(end - start), start);
        if (*end == '\0') break;
    }
    pymem_string_free(text);
}

static pymem_runtime *new_runtime(void) {
    pymem_config cfg;
    pymem_config_init(&cfg);
    pymem_runtime *rt = NULL;
    pymem_status st = pymem_runtime_new(&cfg, &rt);
    if (st != PYMEM_OK) die("pymem_runtime_new", NULL);
    return rt;
}

/* ------------------------------------------------------------------ */
/* Section "pools": the seed's memory-pool experiment                  */
/* ------------------------------------------------------------------ */

#define POOLS_N 10000000L  /* like a list of 10**7 Python ints... */
#define POOLS_SIZE 32      /* ...each a 32-byte block, as an int of one digit is */
#define KEEP_EVERY 1024    /* the fragmented case keeps blocks i % 1024 == 0 */

/* Allocates POOLS_N blocks into ptrs, writing into each as an object's
 * initialisation would. */
static void allocate_all(pymem_runtime *rt, void **ptrs) {
    for (long i = 0; i < POOLS_N; i++) {
        int64_t *p = pymem_malloc(rt, POOLS_SIZE);
        if (p == NULL) die("pymem_malloc", rt);
        p[0] = 1;  /* a refcount */
        p[3] = i;  /* a value */
        ptrs[i] = p;
    }
}

static void free_blocks(pymem_runtime *rt, void **ptrs, long keep_every) {
    for (long i = 0; i < POOLS_N; i++) {
        if (keep_every > 0 && i % keep_every == 0) continue;
        check(pymem_free(rt, ptrs[i]), "pymem_free", rt);
        ptrs[i] = NULL;
    }
}

static int section_pools(void) {
    char buf[32], buf2[32];
    printf("pymem %s: the seed's memory-pool experiment through the C API\n", pymem_version());
    printf("%s blocks of %d bytes (a list of 10**7 Python ints), default geometry:\n",
           thousands(POOLS_N, buf), POOLS_SIZE);
    printf("16 KiB pools in 1 MiB arenas, as CPython 3.10+ on 64-bit.\n");
    printf("The pointer array (%.0f MiB, malloc) is allocated and touched before 'start',\n",
           POOLS_N * sizeof(void *) / MIB);
    printf("so RSS growth below is the blocks alone.\n");

    void **ptrs = malloc(POOLS_N * sizeof(void *));
    if (ptrs == NULL) {
        fprintf(stderr, "demo: cannot allocate the pointer array\n");
        return 1;
    }
    /* A non-zero fill really touches every page (malloc + memset 0 may
     * become calloc, which leaves a fresh mapping untouched). */
    memset(ptrs, 0xA5, POOLS_N * sizeof(void *));

    /* (a) allocate everything, free everything. */
    rule("(a) allocate 10**7 blocks, then free them all");
    pymem_runtime *rt = new_runtime();
    struct step a[4];
    a[0] = snapshot(rt, "start");
    allocate_all(rt, ptrs);
    a[1] = snapshot(rt, "after allocating");
    printf("\npymem_debug_malloc_stats() after allocating (CPython's sys._debugmallocstats layout):\n");
    print_debug_malloc_stats(rt);
    free_blocks(rt, ptrs, 0);
    a[2] = snapshot(rt, "after freeing all");
    size_t released = 0;
    check(pymem_release_free_arenas(rt, &released), "pymem_release_free_arenas", rt);
    a[3] = snapshot(rt, "after pymem_release_free_arenas");
    print_steps(a, 4);
    printf("\npymem_release_free_arenas gave back %.1f MiB more.\n", released / MIB);
    check(pymem_runtime_free(rt), "pymem_runtime_free", NULL);

    /* (b) the fragmented case: 1 block in 1024 survives. With 512 blocks per
     * 16 KiB pool, every other pool keeps one block and every 1 MiB arena
     * keeps 32 of its 64 pools alive: CPython frees only whole empty arenas,
     * so it returns nothing; pymem gives the empty pools' pages back. */
    rule("(b) fragmented: free 1023 of every 1024 blocks");
    rt = new_runtime();
    struct step b[4];
    b[0] = snapshot(rt, "start");
    allocate_all(rt, ptrs);
    b[1] = snapshot(rt, "after allocating");
    free_blocks(rt, ptrs, KEEP_EVERY);
    b[2] = snapshot(rt, "after freeing 1023 of 1024");
    check(pymem_release_free_arenas(rt, &released), "pymem_release_free_arenas", rt);
    b[3] = snapshot(rt, "after pymem_release_free_arenas");
    print_steps(b, 4);

    double grew = (double)b[1].rss - (double)b[0].rss;
    double at_free = (double)b[1].rss - (double)b[2].rss;
    double at_release = (double)b[1].rss - (double)b[3].rss;
    printf("\n%s blocks survive in %s pools; RSS grew %.1f MiB while allocating;\n",
           thousands(b[2].stats.blocks_in_use, buf), thousands(b[2].stats.pools_in_use, buf2), grew / MIB);
    printf("%.1f MiB (%.1f %%) came back by the frees alone, %.1f MiB (%.1f %%) after pymem_release_free_arenas.\n",
           at_free / MIB, grew > 0 ? 100 * at_free / grew : 0, at_release / MIB, grew > 0 ? 100 * at_release / grew : 0);
    printf("RESULT pools_fragmented start=%llu built=%llu freed=%llu released=%llu\n",
           (unsigned long long)b[0].rss, (unsigned long long)b[1].rss, (unsigned long long)b[2].rss,
           (unsigned long long)b[3].rss);

    free_blocks(rt, ptrs, 0); /* frees the survivors too (freed ones are NULL: pymem_free(NULL) is OK) */
    check(pymem_runtime_free(rt), "pymem_runtime_free", NULL);
    free(ptrs);
    return 0;
}

/* ------------------------------------------------------------------ */
/* Section "objects": the seed's reference counts, 2.1-2.4             */
/* ------------------------------------------------------------------ */

/* A failed point of the walk stops the demo with exit status 1. */
#define ASSERT(cond)                                                                    \
    do {                                                                                \
        if (!(cond)) {                                                                  \
            fprintf(stderr, "demo: %s:%d: assertion failed: %s\n", __FILE__, __LINE__, #cond); \
            exit(1);                                                                    \
        }                                                                               \
    } while (0)

#define NEST_DEPTH 100000

static pymem_runtime *obj_rt;

/* The status of a call that must succeed. */
#define OK(call) check((call), #call, obj_rt)

static intptr_t rc(pymem_object *o) {
    ptrdiff_t n = -1;
    OK(pymem_refcount(obj_rt, o, &n));
    return (intptr_t)n;
}

static pymem_alloc_stats obj_stats(void) {
    pymem_alloc_stats s;
    OK(pymem_alloc_get_stats(obj_rt, &s));
    return s;
}

/* One line of the walk: the Python statement, pymem's count of `x`, and
 * what CPython's sys.getrefcount(x) prints after the same statement (one
 * more: its argument is a temporary reference). The key goes to xtask,
 * which runs the same lines in CPython. */
static void count_line(const char *key, const char *python, pymem_object *x, intptr_t expected) {
    intptr_t n = rc(x);
    printf("  %-36s %14" PRIdPTR " %20" PRIdPTR "\n", python, n, n + 1);
    printf("RESULT pymem %s=%" PRIdPTR "\n", key, n);
    ASSERT(n == expected);
}

static void count_header(void) {
    printf("  %-36s %14s %20s\n", "Python", "pymem_refcount", "CPython getrefcount");
}

/* An `is` outcome, for xtask's comparison with CPython. */
static void is_result(const char *key, int is) { printf("RESULT pymem %s=%d\n", key, is ? 1 : 0); }

static const char *py_bool(int v) { return v ? "True" : "False"; }

static void objects_2_1(void) {
    rule("2.1 a fresh object has one owner");
    printf("pymem_refcount gives the exact count. CPython's sys.getrefcount(x) shows one\n");
    printf("more, because its argument is a temporary reference while it runs:\n\n");
    count_header();
    pymem_object *x = NULL, *f = NULL, *s = NULL;
    OK(pymem_list_new(obj_rt, &x));
    count_line("fresh_list", "x = []", x, 1);
    OK(pymem_float_new(obj_rt, 3.14, &f));
    count_line("fresh_float", "f = float('3.14')", f, 1);
    OK(pymem_str_new(obj_rt, "1234567", 7, &s));
    count_line("fresh_str", "s = str(1234567)", s, 1);
    printf("\n(in CPython a literal such as `f = 3.14` shows 3: the code object's constants\n");
    printf(" hold the number too; the lines above build their objects at run time)\n");
    OK(pymem_decref(obj_rt, x));
    OK(pymem_decref(obj_rt, f));
    OK(pymem_decref(obj_rt, s));
}

static void objects_2_2(void) {
    rule("2.2 every owner is one count; releasing gives it back");
    printf("A list holding x, a second name bound to x, a dict value: each is an owner.\n");
    printf("In C a second name is an explicit pymem_incref, and `del` a pymem_decref.\n\n");
    count_header();
    pymem_object *x = NULL, *holder = NULL;
    OK(pymem_float_new(obj_rt, 2.5, &x));
    count_line("owner_new", "x = float('2.5')", x, 1);
    OK(pymem_list_new(obj_rt, &holder));
    OK(pymem_list_append(obj_rt, holder, x));
    count_line("owner_list", "holder = [x]", x, 2);
    OK(pymem_incref(obj_rt, x));
    pymem_object *y = x;
    count_line("owner_y", "y = x", x, 3);
    OK(pymem_decref(obj_rt, y));
    y = NULL;
    count_line("owner_del_y", "del y", x, 2);
    pymem_object *popped = NULL;
    OK(pymem_list_pop(obj_rt, holder, 0, &popped)); /* the list's reference moves to us */
    ASSERT(pymem_is(popped, x));
    count_line("owner_pop", "popped = holder.pop()", x, 2);
    OK(pymem_decref(obj_rt, popped));
    count_line("owner_del_popped", "del popped", x, 1);

    pymem_object *d = NULL, *k = NULL;
    OK(pymem_dict_new(obj_rt, &d));
    OK(pymem_str_new(obj_rt, "key", 3, &k));
    OK(pymem_dict_set(obj_rt, d, k, x));
    count_line("owner_dict", "d = {'key': x}", x, 2);
    OK(pymem_dict_del(obj_rt, d, k));
    count_line("owner_dict_del", "del d['key']", x, 1);

    OK(pymem_list_append(obj_rt, holder, x));
    ASSERT(rc(x) == 2);
    OK(pymem_decref(obj_rt, holder));
    count_line("owner_del_holder", "holder.append(x); del holder", x, 1);
    printf("\n(the last line: destroying a container releases what it held)\n");
    OK(pymem_decref(obj_rt, d));
    OK(pymem_decref(obj_rt, k));
    OK(pymem_decref(obj_rt, x));
}

static void objects_2_3(void) {
    rule("2.3 referred to twice by one object: two more owners");
    printf("A container counts once per slot that holds x, not once per container:\n\n");
    count_header();
    pymem_object *x = NULL, *l = NULL, *t = NULL;
    OK(pymem_str_new(obj_rt, "123456789", 9, &x));
    count_line("twice_new", "x = str(123456789)", x, 1);
    OK(pymem_list_new(obj_rt, &l));
    OK(pymem_list_append(obj_rt, l, x));
    OK(pymem_list_append(obj_rt, l, x));
    count_line("twice_list", "l = [x, x]", x, 3);
    pymem_object *items[2] = {x, x};
    OK(pymem_tuple_new(obj_rt, 2, items, &t));
    count_line("twice_tuple", "t = (x, x)", x, 5);
    OK(pymem_decref(obj_rt, l));
    count_line("twice_del_l", "del l", x, 3);
    OK(pymem_decref(obj_rt, t));
    count_line("twice_del_t", "del t", x, 1);
    OK(pymem_decref(obj_rt, x));
}

static void objects_2_4(void) {
    rule("2.4 identity: `y = x` is the same object; small ints are shared");
    pymem_object *x = NULL, *z = NULL;
    OK(pymem_list_new(obj_rt, &x));
    OK(pymem_incref(obj_rt, x));
    pymem_object *y = x; /* y = x */
    printf("  x = []; y = x       id(x) = %#zx  id(y) = %#zx  x is y -> %s\n", pymem_id(x), pymem_id(y),
           py_bool(pymem_is(x, y)));
    ASSERT(pymem_id(x) != 0 && pymem_id(x) == pymem_id(y) && pymem_is(x, y));
    is_result("is_alias", pymem_is(x, y));
    OK(pymem_list_new(obj_rt, &z));
    int eq = -1;
    OK(pymem_equal(obj_rt, x, z, &eq));
    printf("  z = []              id(z) = %#zx  x == z -> %s, x is z -> %s\n", pymem_id(z), py_bool(eq),
           py_bool(pymem_is(x, z)));
    ASSERT(eq == 1 && !pymem_is(x, z));
    is_result("is_equal_list", pymem_is(x, z));
    OK(pymem_decref(obj_rt, x));
    OK(pymem_decref(obj_rt, y));
    OK(pymem_decref(obj_rt, z));

    printf("\nInts in -5..256 come from a cache of immortal objects (refcount %llu, as\n",
           (unsigned long long)PYMEM_IMMORTAL_REFCNT);
    printf("CPython 3.12+ shows for them): built twice, they are one object. Outside it, two:\n");
    static const int64_t values[] = {-5, 7, 256, -6, 257, 1000000};
    for (size_t i = 0; i < sizeof values / sizeof values[0]; i++) {
        int64_t v = values[i];
        int cached = v >= -5 && v <= 256;
        pymem_object *a = NULL, *b = NULL;
        OK(pymem_int_new(obj_rt, v, &a));
        OK(pymem_int_new(obj_rt, v, &b));
        int same = -1;
        OK(pymem_equal(obj_rt, a, b, &same));
        char stmt[64];
        snprintf(stmt, sizeof stmt, "a = int('%" PRId64 "'); b = int('%" PRId64 "')", v, v);
        printf("  %-38s a is b -> %-5s a == b -> %-5s id(a) = %#zx, id(b) = %#zx\n", stmt, py_bool(pymem_is(a, b)),
               py_bool(same), pymem_id(a), pymem_id(b));
        ASSERT(same == 1);
        if (cached) {
            ASSERT(pymem_is(a, b) && rc(a) == (intptr_t)PYMEM_IMMORTAL_REFCNT);
        } else {
            ASSERT(!pymem_is(a, b) && pymem_id(a) != pymem_id(b) && rc(a) == 1 && rc(b) == 1);
        }
        char key[32];
        snprintf(key, sizeof key, "is_int_%" PRId64, v);
        is_result(key, pymem_is(a, b));
        OK(pymem_decref(obj_rt, a));
        OK(pymem_decref(obj_rt, b));
    }
}

#ifdef DEMO_HAVE_COPY
static void objects_copy(void) {
    rule("2.4 (cont.) copy.copy shares the items, copy.deepcopy does not");
    pymem_object *inner = NULL, *big = NULL, *outer = NULL, *shallow = NULL, *deep = NULL;
    OK(pymem_list_new(obj_rt, &inner));
    OK(pymem_int_new(obj_rt, 1000, &big));
    OK(pymem_list_new(obj_rt, &outer));
    OK(pymem_list_append(obj_rt, outer, inner));
    OK(pymem_list_append(obj_rt, outer, big));
    printf("  inner = []; big = int('1000'); outer = [inner, big]\n\n");
    count_header();
    count_line("copy_before", "inner  (outer[0] and the name)", inner, 2);

    OK(pymem_copy(obj_rt, outer, &shallow));
    pymem_object *s0 = NULL, *d0 = NULL, *d1 = NULL;
    OK(pymem_list_get(obj_rt, shallow, 0, &s0));
    printf("\n  shallow = copy.copy(outer)    shallow is outer -> %s; shallow[0] is inner -> %s (both id %#zx)\n\n",
           py_bool(pymem_is(shallow, outer)), py_bool(pymem_is(s0, inner)), pymem_id(s0));
    ASSERT(!pymem_is(shallow, outer) && pymem_is(s0, inner));
    is_result("copy_new", !pymem_is(shallow, outer));
    is_result("copy_shares", pymem_is(s0, inner));
    OK(pymem_decref(obj_rt, s0));
    count_line("copy_after", "inner  (+ shallow[0])", inner, 3);

    OK(pymem_deepcopy(obj_rt, outer, &deep));
    OK(pymem_list_get(obj_rt, deep, 0, &d0));
    OK(pymem_list_get(obj_rt, deep, 1, &d1));
    int eq = -1;
    OK(pymem_equal(obj_rt, d0, inner, &eq));
    printf("\n  deep = copy.deepcopy(outer)   deep[0] is inner -> %s (id %#zx); deep[0] == inner -> %s\n",
           py_bool(pymem_is(d0, inner)), pymem_id(d0), py_bool(eq));
    printf("                                deep[1] is big -> %s (immutable atoms are not copied)\n\n",
           py_bool(pymem_is(d1, big)));
    ASSERT(!pymem_is(d0, inner) && eq == 1 && pymem_is(d1, big));
    is_result("deepcopy_shares", pymem_is(d0, inner));
    is_result("deepcopy_atom_shared", pymem_is(d1, big));
    count_line("deepcopy_after", "inner  (deep[0] is a new list)", inner, 3);
    OK(pymem_decref(obj_rt, d0));
    OK(pymem_decref(obj_rt, d1));
    OK(pymem_decref(obj_rt, deep));
    OK(pymem_decref(obj_rt, shallow));
    OK(pymem_decref(obj_rt, outer));
    OK(pymem_decref(obj_rt, big));
    OK(pymem_decref(obj_rt, inner));
}
#endif

static void objects_float_free_list(void) {
    rule("free lists: a float freed and made again reuses its block");
    printf("As CPython's float free list (100 entries), a freed float's block waits for\n");
    printf("the next float instead of going back to the allocator:\n\n");
    OK(pymem_clear_free_lists(obj_rt)); /* the floats of 2.1 and 2.2 wait there now */
    uint64_t before = obj_stats().blocks_in_use;
    pymem_object *f = NULL, *g = NULL;
    OK(pymem_float_new(obj_rt, 1.5, &f));
    size_t id_f = pymem_id(f);
    printf("  f = float('1.5')      id(f) = %#zx   blocks in use: +%llu\n", id_f,
           (unsigned long long)(obj_stats().blocks_in_use - before));
    OK(pymem_decref(obj_rt, f));
    uint64_t waiting = obj_stats().blocks_in_use - before;
    printf("  del f                 blocks in use: +%llu (the block waits on the free list)\n",
           (unsigned long long)waiting);
    ASSERT(waiting == 1);
    pymem_status st = pymem_decref(obj_rt, f);
    printf("  pymem_decref(f) again -> %s: \"%s\"\n", pymem_status_name(st), pymem_last_error(obj_rt));
    ASSERT(st == PYMEM_ERR_REFCOUNT_UNDERFLOW);
    OK(pymem_float_new(obj_rt, 2.5, &g));
    printf("  g = float('2.5')      id(g) = %#zx   same block as f -> %s\n", pymem_id(g),
           py_bool(pymem_id(g) == id_f));
    ASSERT(pymem_id(g) == id_f);
    is_result("float_reuse", pymem_id(g) == id_f);
    OK(pymem_decref(obj_rt, g));
    OK(pymem_clear_free_lists(obj_rt));
    uint64_t after = obj_stats().blocks_in_use - before;
    printf("  del g; pymem_clear_free_lists()   blocks in use: +%llu\n", (unsigned long long)after);
    ASSERT(after == 0);
}

static void objects_deep_nesting(void) {
    char buf[32], buf2[32];
    rule("deallocation never recurses: a list nested 100,000 deep");
    printf("  l = []\n  for _ in range(%d): l = [l]\n", NEST_DEPTH);
    pymem_alloc_stats start = obj_stats();
    pymem_object *l = NULL;
    OK(pymem_list_new(obj_rt, &l));
    for (int i = 0; i < NEST_DEPTH; i++) {
        pymem_object *outer = NULL;
        OK(pymem_list_new(obj_rt, &outer));
        OK(pymem_list_append(obj_rt, outer, l));
        OK(pymem_decref(obj_rt, l)); /* outer's reference is the only one now */
        l = outer;
    }
    pymem_alloc_stats built = obj_stats();
    printf("  %s lists: %s blocks, %.1f MiB in use (list objects and their item arrays)\n",
           thousands(NEST_DEPTH + 1, buf), thousands(built.blocks_in_use - start.blocks_in_use, buf2),
           (double)(built.bytes_in_use - start.bytes_in_use) / MIB);
    ASSERT(rc(l) == 1);
    OK(pymem_decref(obj_rt, l));
    OK(pymem_clear_free_lists(obj_rt));
    pymem_alloc_stats freed = obj_stats();
    printf("  del l                 blocks in use after pymem_clear_free_lists: +%llu\n",
           (unsigned long long)(freed.blocks_in_use - start.blocks_in_use));
    printf("                        (one decref freed every level, iteratively, as CPython's\n");
    printf("                        trashcan does: no recursion, no stack overflow)\n");
    ASSERT(freed.blocks_in_use == start.blocks_in_use && freed.bytes_in_use == start.bytes_in_use);
}

static int section_objects(void) {
    char buf[32], buf2[32];
    printf("pymem %s: the seed's reference counts (sections 2.1-2.4) through the C API\n", pymem_version());
    printf("Every point below is asserted: a wrong count stops the demo.\n");
    obj_rt = new_runtime();
    /* The first object call makes the immortal singletons (None, True, the
     * small ints...); the baseline is taken after it. */
    pymem_object *none = NULL;
    OK(pymem_none(obj_rt, &none));
    pymem_alloc_stats start = obj_stats();
    printf("allocator at the start: %s blocks, %s bytes in use (the immortal singletons)\n",
           thousands(start.blocks_in_use, buf), thousands(start.bytes_in_use, buf2));

    objects_2_1();
    objects_2_2();
    objects_2_3();
    objects_2_4();
#ifdef DEMO_HAVE_COPY
    objects_copy();
#else
    printf("\n(copy.copy / copy.deepcopy: pymem_copy and pymem_deepcopy are not in this\n");
    printf(" build's include/pymem.h yet; that part of 2.4 is skipped)\n");
#endif
    objects_float_free_list();
    objects_deep_nesting();

    rule("the allocator is back where it started");
    OK(pymem_clear_free_lists(obj_rt));
    pymem_alloc_stats end = obj_stats();
    char buf3[32], buf4[32];
    printf("  after pymem_clear_free_lists: %s blocks, %s bytes in use (start: %s blocks, %s bytes)\n",
           thousands(end.blocks_in_use, buf), thousands(end.bytes_in_use, buf2),
           thousands(start.blocks_in_use, buf3), thousands(start.bytes_in_use, buf4));
    ASSERT(end.blocks_in_use == start.blocks_in_use && end.bytes_in_use == start.bytes_in_use);
    OK(pymem_runtime_free(obj_rt));
    obj_rt = NULL;
    return 0;
}

/* ------------------------------------------------------------------ */
/* Section "gc": the seed's cycle collector                            */
/* ------------------------------------------------------------------ */

#define GC_PAIRS 1000000

static pymem_runtime *gc_rt;

#define GC_OK(call) check((call), #call, gc_rt)

static intptr_t gc_rc(pymem_object *o) {
    ptrdiff_t n = -1;
    GC_OK(pymem_refcount(gc_rt, o, &n));
    return (intptr_t)n;
}

static pymem_alloc_stats gc_stats(void) {
    pymem_alloc_stats s;
    GC_OK(pymem_alloc_get_stats(gc_rt, &s));
    return s;
}

static double now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static void gc_two_objects(const pymem_alloc_stats *base) {
    char buf[32];
    rule("two objects referring to each other");
    pymem_type_spec spec;
    pymem_type_spec_init(&spec);
    spec.name = "A";
    pymem_type *type_a = NULL;
    GC_OK(pymem_type_new(gc_rt, &spec, &type_a));
    printf("  class A: pass              (a host type: pymem_type_new)\n\n");

    pymem_object *a = NULL, *b = NULL;
    GC_OK(pymem_instance_new(gc_rt, type_a, &a));
    GC_OK(pymem_instance_new(gc_rt, type_a, &b));
    GC_OK(pymem_setattr(gc_rt, a, "other", b));
    GC_OK(pymem_setattr(gc_rt, b, "other", a));
    printf("  %-34s refcount(a) = %" PRIdPTR ", refcount(b) = %" PRIdPTR "\n",
           "a = A(); b = A()", gc_rc(a), gc_rc(b));
    printf("  %-34s (pymem_refcount is exact: sys.getrefcount shows one more)\n", "a.other = b; b.other = a");
    ASSERT(gc_rc(a) == 2 && gc_rc(b) == 2);
    printf("RESULT pymem refcount_before_del=%" PRIdPTR "\n", gc_rc(a));

    GC_OK(pymem_decref(gc_rt, a));
    GC_OK(pymem_decref(gc_rt, b));
    int tracked = 0;
    GC_OK(pymem_gc_is_tracked(gc_rt, a, &tracked));
    pymem_alloc_stats alive = gc_stats();
    printf("  %-34s refcount(a) = %" PRIdPTR ", refcount(b) = %" PRIdPTR
           ": alive, each held by the other\n",
           "del a, b", gc_rc(a), gc_rc(b));
    printf("  %-34s %s bytes still in use, tracked by the collector: %s\n", "",
           thousands(alive.bytes_in_use - base->bytes_in_use, buf), tracked ? "yes" : "no");
    ASSERT(gc_rc(a) == 1 && gc_rc(b) == 1 && tracked == 1);
    printf("RESULT pymem refcount_after_del=%" PRIdPTR " tracked=%d\n", gc_rc(a), tracked);

    int64_t found = -1;
    GC_OK(pymem_gc_collect(gc_rt, 2, &found));
    GC_OK(pymem_clear_free_lists(gc_rt));
    pymem_alloc_stats after = gc_stats();
    printf("  %-34s -> %" PRId64 "   (collected + uncollectable, as gc.collect() returns)\n", "gc.collect()", found);
    ptrdiff_t n = 0;
    pymem_status st = pymem_refcount(gc_rt, a, &n);
    printf("  %-34s -> %s: a is gone\n", "pymem_refcount(a)", pymem_status_name(st));
    printf("  %-34s bytes in use %s, the baseline %s: %s\n", "", thousands(after.bytes_in_use, buf),
           thousands(base->bytes_in_use, (char[32]){0}),
           after.bytes_in_use == base->bytes_in_use ? "back to the baseline" : "NOT back");
    ASSERT(found == 2 && st == PYMEM_ERR_INVALID_POINTER);
    ASSERT(after.bytes_in_use == base->bytes_in_use && after.blocks_in_use == base->blocks_in_use);
    printf("RESULT pymem collect_pair=%" PRId64 "\n", found);
}

static void gc_thresholds(void) {
    rule("thresholds and counts");
    int64_t t[3], c[3];
    GC_OK(pymem_gc_get_threshold(gc_rt, t));
    GC_OK(pymem_gc_get_count(gc_rt, c));
    printf("  gc.get_threshold() -> (%" PRId64 ", %" PRId64 ", %" PRId64 ")   CPython 3.11's (3.13: 2000, 10, 10:\n",
           t[0], t[1], t[2]);
    printf("                                    pymem_config.gc_profile = PYMEM_GC_PROFILE_CPYTHON_313)\n");
    printf("  gc.get_count()     -> (%" PRId64 ", %" PRId64 ", %" PRId64 ")\n", c[0], c[1], c[2]);
    ASSERT(t[0] == 700 && t[1] == 10 && t[2] == 10);
    printf("RESULT pymem threshold0=%" PRId64 " threshold1=%" PRId64 " threshold2=%" PRId64 "\n", t[0], t[1], t[2]);
}

static void gc_big_structure(const pymem_alloc_stats *base) {
    char buf[32];
    rule("del + gc.collect() of a big cyclic structure: the memory goes back");
    printf("  root = []\n  for i in range(10**6): a = []; b = [a]; a.append(b); root.append(a)\n\n");
    struct step s[5];
    s[0] = snapshot(gc_rt, "start");
    pymem_object *root = NULL;
    GC_OK(pymem_list_new(gc_rt, &root));
    for (long i = 0; i < GC_PAIRS; i++) {
        pymem_object *a = NULL, *b = NULL;
        GC_OK(pymem_list_new(gc_rt, &a));
        GC_OK(pymem_list_new(gc_rt, &b));
        GC_OK(pymem_list_append(gc_rt, b, a));
        GC_OK(pymem_list_append(gc_rt, a, b));
        GC_OK(pymem_list_append(gc_rt, root, a));
        GC_OK(pymem_decref(gc_rt, a));
        GC_OK(pymem_decref(gc_rt, b));
    }
    s[1] = snapshot(gc_rt, "built");
    GC_OK(pymem_decref(gc_rt, root));
    s[2] = snapshot(gc_rt, "del root");
    int64_t found = -1;
    double t0 = now_ms();
    GC_OK(pymem_gc_collect(gc_rt, 2, &found));
    double ms = now_ms() - t0;
    s[3] = snapshot(gc_rt, "gc.collect()");
    GC_OK(pymem_clear_free_lists(gc_rt));
    size_t released = 0;
    GC_OK(pymem_release_free_arenas(gc_rt, &released));
    s[4] = snapshot(gc_rt, "pymem_release_free_arenas");

    printf("  %-28s %12s %14s\n", "step", "RSS MiB", "in use MiB");
    for (int i = 0; i < 5; i++)
        printf("  %-28s %12.1f %14.1f\n", s[i].label, s[i].rss / MIB,
               ((double)s[i].stats.bytes_in_use - (double)base->bytes_in_use) / MIB);
    double grew = (double)s[1].rss - (double)s[0].rss;
    double back = (double)s[1].rss - (double)s[4].rss;
    printf("\n  del root alone frees nothing but root: the 10**6 pairs keep themselves alive.\n");
    printf("  gc.collect() -> %s in %.1f ms (%.0f ns per object); %.1f of the %.1f MiB the\n",
           thousands((uint64_t)found, buf), ms, ms * 1e6 / (double)found, back / MIB, grew / MIB);
    printf("  structure took came back to the OS (%.1f %%).\n", grew > 0 ? 100 * back / grew : 0);
    ASSERT(found == 2 * (int64_t)GC_PAIRS);
    ASSERT(s[4].stats.bytes_in_use == base->bytes_in_use);
    ASSERT(back >= 0.9 * grew);
    printf("RESULT pymem big_found=%" PRId64 "\n", found);
    printf("RESULT gc_rss start=%llu built=%llu deleted=%llu collected=%llu released=%llu ms=%.3f\n",
           (unsigned long long)s[0].rss, (unsigned long long)s[1].rss, (unsigned long long)s[2].rss,
           (unsigned long long)s[3].rss, (unsigned long long)s[4].rss, ms);
}

static int section_gc(void) {
    char buf[32];
    printf("pymem %s: the seed's cycle collector through the C API\n", pymem_version());
    printf("Every point below is asserted: a wrong number stops the demo.\n");
    gc_rt = new_runtime();
    pymem_object *none = NULL;
    GC_OK(pymem_none(gc_rt, &none));
    /* Host types keep the attribute names their instances use (CPython's
       shared keys): learn "other" before the baseline. */
    pymem_type_spec spec;
    pymem_type_spec_init(&spec);
    spec.name = "Warm";
    pymem_type *warm_type = NULL;
    pymem_object *warm = NULL;
    GC_OK(pymem_type_new(gc_rt, &spec, &warm_type));
    GC_OK(pymem_instance_new(gc_rt, warm_type, &warm));
    GC_OK(pymem_setattr(gc_rt, warm, "other", none));
    GC_OK(pymem_decref(gc_rt, warm));
    GC_OK(pymem_clear_free_lists(gc_rt));
    pymem_alloc_stats base = gc_stats();
    printf("allocator at the start: %s bytes in use\n", thousands(base.bytes_in_use, buf));

    gc_two_objects(&base);
    gc_thresholds();
    gc_big_structure(&base);
    GC_OK(pymem_runtime_free(gc_rt));
    gc_rt = NULL;
    return 0;
}

/* ------------------------------------------------------------------ */
/* Section "namespaces": the seed's practical goal                     */
/* ------------------------------------------------------------------ */

#define NS_N 10000000L /* ints and floats */
#define NS_M 1000000L  /* strs */

static pymem_runtime *ns_rt;

#define NS_OK(call) check((call), #call, ns_rt)

/* The seed's data comes from seed_namespace.h (shared with bench_reset.c),
   which reports failures through this. */
static void ns_check(pymem_status st, const char *what) { check(st, what, ns_rt); }

/* %who: the names, space separated. */
static void ns_print_who(pymem_object *ns, char *out, size_t cap) {
    pymem_object *list = NULL;
    size_t len = 0, used = 0;
    NS_OK(pymem_ns_who(ns_rt, ns, NULL, &list));
    NS_OK(pymem_list_len(ns_rt, list, &len));
    out[0] = '\0';
    for (size_t i = 0; i < len && used < cap; i++) {
        pymem_object *name = NULL;
        const char *text = NULL;
        size_t n = 0;
        NS_OK(pymem_list_get(ns_rt, list, i, &name));
        NS_OK(pymem_str_value(ns_rt, name, &text, &n));
        used += (size_t)snprintf(out + used, cap - used, "%s%s", i ? "\t" : "", text);
        NS_OK(pymem_decref(ns_rt, name));
    }
    NS_OK(pymem_decref(ns_rt, list));
}

static int section_namespaces(void) {
    char buf[32], names[128];
    printf("pymem %s: the seed's namespace walk (sections 3.2-3.5) through the C API\n", pymem_version());
    printf("Every point below is asserted: a wrong number stops the demo.\n");
    ns_rt = new_runtime();
    pymem_object *ns = NULL;
    NS_OK(pymem_ns_new(ns_rt, "__main__", PYMEM_NS_NOTEBOOK, &ns));
    seed_module_and_function(ns_rt, ns_check, ns);
    int64_t found = 0;
    NS_OK(pymem_gc_collect(ns_rt, 2, &found));
    NS_OK(pymem_clear_free_lists(ns_rt));
    struct step s[3];
    s[0] = snapshot(ns_rt, "start");

    rule("a notebook namespace with the seed's variables");
    printf("  (hidden: In, Out, get_ipython, exit, quit)   import math; def helper(x): return x\n");
    printf("  a = [i for i in range(1000, 1000 + 10**7)]\n  b = [i * 0.5 for i in range(10**7)]\n");
    printf("  d = {s: s for s in map(str, range(10**6))}\n");
    printf("  c = {'name': 'cycle'}; c['self'] = c; c['items'] = [c, [c]]\n");
    seed_variables(ns_rt, ns_check, ns, NS_N, NS_M);
    s[1] = snapshot(ns_rt, "built");

    rule("%who: the user variables only");
    ns_print_who(ns, names, sizeof names);
    printf("  %s\n", names);
    ASSERT(strcmp(names, "a\tb\tc\td") == 0);

    rule("%whos: with the bytes each variable keeps alive");
    char *table = NULL;
    NS_OK(pymem_ns_whos(ns_rt, ns, &table));
    for (char *line = strtok(table, "\n"); line != NULL; line = strtok(NULL, "\n")) printf("  %s\n", line);
    pymem_string_free(table);

    rule("why is it alive? (the chains of references, shortest first)");
    pymem_object *holder = NULL, *c = NULL;
    NS_OK(pymem_ns_get(ns_rt, ns, "c", &c));
    NS_OK(pymem_list_new(ns_rt, &holder));
    NS_OK(pymem_list_append(ns_rt, holder, c));
    NS_OK(pymem_ns_set(ns_rt, ns, "_keep", holder));
    NS_OK(pymem_decref(ns_rt, holder));
    printf("  _keep = [c]  (and the C host still holds its own reference to c)\n");
    char *why = NULL;
    NS_OK(pymem_ns_why_alive(ns_rt, ns, "c", &why));
    for (char *line = strtok(why, "\n"); line != NULL; line = strtok(NULL, "\n")) printf("  %s\n", line);
    pymem_string_free(why);
    NS_OK(pymem_ns_del(ns_rt, ns, "_keep"));
    NS_OK(pymem_decref(ns_rt, c));
    printf("  del _keep; the host drops c: only the namespace holds it now\n");

    rule("%reset: delete them, collect, give the memory back");
    pymem_reset_report r;
    double t0 = now_ms();
    NS_OK(pymem_ns_reset(ns_rt, ns, NULL, &r));
    double ms = now_ms() - t0;
    s[2] = snapshot(ns_rt, "after reset");
    printf("  pymem_ns_reset -> %" PRIu64 " names removed, %s objects freed, %.1f MiB freed,\n", r.names_removed,
           thousands(r.objects_freed, buf), (double)r.bytes_freed / MIB);
    printf("                    %.1f MiB returned to the OS, %" PRIu64 " unreachable (the cycle c), in %.1f ms\n",
           (double)r.bytes_returned_to_os / MIB, r.unreachable, ms);
    ns_print_who(ns, names, sizeof names);
    printf("  %%who -> %s\n", names[0] ? names : "(nothing: \"Interactive namespace is empty.\")");
    pymem_object *kept = NULL;
    NS_OK(pymem_ns_get(ns_rt, ns, "math", &kept));
    NS_OK(pymem_decref(ns_rt, kept));
    NS_OK(pymem_ns_get(ns_rt, ns, "helper", &kept));
    NS_OK(pymem_decref(ns_rt, kept));
    printf("  math and helper remain (a module and a function are not user variables)\n\n");
    printf("  %-14s %10s %14s\n", "step", "RSS MiB", "in use MiB");
    for (int i = 0; i < 3; i++)
        printf("  %-14s %10.1f %14.1f\n", s[i].label, s[i].rss / MIB, (double)s[i].stats.bytes_in_use / MIB);
    double grew = (double)s[1].rss - (double)s[0].rss;
    double back = (double)s[1].rss - (double)s[2].rss;
    printf("\n  bytes in use back to the start figure (%s bytes); %.1f of the %.1f MiB RSS growth\n",
           thousands(s[2].stats.bytes_in_use, buf), back / MIB, grew / MIB);
    printf("  returned to the OS: %.2f %%\n", 100.0 * back / grew);
    ASSERT(r.names_removed == 4 && r.unreachable == 3);
    ASSERT(s[2].stats.bytes_in_use == s[0].stats.bytes_in_use);
    ASSERT(back >= 0.99 * grew);
    printf("RESULT ns reset_ms=%.3f names_removed=%" PRIu64 " unreachable=%" PRIu64 " objects_freed=%" PRIu64
           " start=%llu built=%llu after=%llu\n",
           ms, r.names_removed, r.unreachable, r.objects_freed, (unsigned long long)s[0].rss,
           (unsigned long long)s[1].rss, (unsigned long long)s[2].rss);
    NS_OK(pymem_decref(ns_rt, ns));
    NS_OK(pymem_runtime_free(ns_rt));
    ns_rt = NULL;
    return 0;
}

/* ------------------------------------------------------------------ */
/* Section cuda: the GPU caching allocator                             */
/* ------------------------------------------------------------------ */

static pymem_cuda_cache *gpu;

static void cuda_check(pymem_status st, const char *what) {
    if (st != PYMEM_OK) {
        fprintf(stderr, "demo: %s failed: %s: %s\n", what, pymem_status_name(st), pymem_cuda_last_error(gpu));
        exit(1);
    }
}
#define CUDA_OK(call) cuda_check((call), #call)

static double gib_of(uint64_t bytes) { return (double)bytes / (1024.0 * MIB); }

/* One line of the walk: what torch.cuda says, and what nvidia-smi shows. */
static void cuda_line(const char *step) {
    uint64_t allocated = 0, reserved = 0, free_b = 0, total = 0;
    CUDA_OK(pymem_cuda_memory_allocated(gpu, 0, &allocated));
    CUDA_OK(pymem_cuda_memory_reserved(gpu, 0, &reserved));
    CUDA_OK(pymem_cuda_mem_get_info(gpu, 0, &free_b, &total));
    printf("%-44s %10.3f %10.3f %12.3f\n", step, gib_of(allocated), gib_of(reserved), gib_of(total - free_b));
}

static void cuda_expect(int ok, const char *what) {
    if (!ok) {
        fprintf(stderr, "demo: cuda: expected %s\n", what);
        exit(1);
    }
}

static uint64_t cuda_reserved(void) {
    uint64_t v = 0;
    CUDA_OK(pymem_cuda_memory_reserved(gpu, 0, &v));
    return v;
}

static int section_cuda(void) {
    pymem_cuda_config cfg;
    pymem_cuda_config_init(&cfg);
    cfg.backend = PYMEM_CUDA_BACKEND_SIMULATED; /* an H100's 80 GiB, on the host */
    CUDA_OK(pymem_cuda_cache_new(&cfg, &gpu));
    printf("pymem %s: the seed's GPU story on a simulated 80 GiB device (PyTorch's caching allocator)\n",
           pymem_version());
    printf("nvidia-smi = total - free from pymem_cuda_mem_get_info: what the driver has handed out\n\n");
    printf("%-44s %10s %10s %12s\n", "step", "allocated", "reserved", "nvidia-smi");
    printf("%-44s %10s %10s %12s\n", "", "GiB", "GiB", "GiB used");
    cuda_line("start");
    uint64_t x = 0, y = 0;
    CUDA_OK(pymem_cuda_malloc(gpu, 0, 1024ull * 1024 * 1024, 0, &x));
    cuda_line("x = torch.empty(2**28) (1 GiB of fp32)");
    CUDA_OK(pymem_cuda_malloc(gpu, 0, 4 * 1000, 0, &y));
    cuda_line("y = torch.empty(1000) (4000 bytes)");
    uint64_t x_seg = cuda_reserved();
    CUDA_OK(pymem_cuda_free(gpu, x));
    cuda_line("del x (the cache keeps its 1 GiB)");
    cuda_expect(cuda_reserved() == x_seg, "del x keeps the memory reserved");
    CUDA_OK(pymem_cuda_malloc(gpu, 0, 512ull * 1024 * 1024, 0, &x));
    cuda_line("x = torch.empty(2**27) (reuses the cache)");
    CUDA_OK(pymem_cuda_free(gpu, x));
    cuda_line("del x");
    CUDA_OK(pymem_cuda_empty_cache(gpu));
    cuda_line("torch.cuda.empty_cache()");
    cuda_expect(cuda_reserved() == 2ull * 1024 * 1024, "y's 2 MiB segment stays after empty_cache");
    printf("\nempty_cache gave back the free 1 GiB segment; y's 2 MiB segment stays: memory held by a tensor is\n"
           "not released, whatever empty_cache is called. The report (torch.cuda.memory_summary(abbreviated=True)):\n\n");
    char *text = NULL;
    CUDA_OK(pymem_cuda_memory_summary(gpu, 0, 1, &text));
    fputs(text, stdout);
    pymem_string_free(text);

    printf("\nset_per_process_memory_fraction(0.25), then a 30 GiB tensor:\n");
    CUDA_OK(pymem_cuda_set_per_process_memory_fraction(gpu, 0, 0.25));
    uint64_t big = 0;
    pymem_status st = pymem_cuda_malloc(gpu, 0, 30ull << 30, 0, &big);
    cuda_expect(st == PYMEM_ERR_OUT_OF_DEVICE_MEMORY, "an OOM");
    printf("  %s: %s\n", pymem_status_name(st), pymem_cuda_last_error(gpu));

    printf("\nThe seed ended with \"releasing all GPU memory without killing the process: no way yet\".\n\n");
    uint64_t weights[3];
    for (int i = 0; i < 3; i++) CUDA_OK(pymem_cuda_malloc(gpu, 0, 1024ull * 1024 * 1024, 0, &weights[i]));
    cuda_line("model = 3 live tensors of 1 GiB");
    CUDA_OK(pymem_cuda_empty_cache(gpu));
    cuda_line("torch.cuda.empty_cache() (all in use)");
    uint64_t released = 0;
    CUDA_OK(pymem_cuda_release_all(gpu, 0, &released));
    cuda_line("pymem_cuda_release_all(cache, 0, &released)");
    printf("\n%" PRIu64 " bytes given back, the live tensors included; the process goes on.\n", released);
    cuda_expect(released == 3ull * 1024 * 1024 * 1024 + 2ull * 1024 * 1024, "3 GiB + y's 2 MiB released");
    st = pymem_cuda_free(gpu, y);
    printf("del y afterwards: %s (%s)\n", pymem_status_name(st), pymem_cuda_last_error(gpu));
    cuda_expect(st == PYMEM_ERR_INVALID_POINTER, "y refused as unknown");
    CUDA_OK(pymem_cuda_cache_free(gpu));
    gpu = NULL;
    return 0;
}

/* ------------------------------------------------------------------ */
/* Section report: the seed's story as an HTML page                    */
/* ------------------------------------------------------------------ */

/* The steps marked on the report's timeline, in order. xtask's browser
 * check (test-all) expects exactly these labels: keep the two in step
 * (xtask/src/demo.rs, REPORT_STEPS). */
static const char *const report_steps[] = {
    "start", "a, b, d, c built", "del a", "b.append(b); del b", "gc.collect()", "%reset",
};

/* The seed's walk with a mark at each step, %whos and why_alive asked on
 * the way, a GPU story on a simulated device with its history recorded,
 * then pymem_report_html written to $PYMEM_DEMO_REPORT (default
 * pymem-report.html). $PYMEM_DEMO_REPORT_N scales the namespace down
 * (ints and floats; strs are a tenth), for quick checks. */
static int section_report(void) {
    const char *path = getenv("PYMEM_DEMO_REPORT");
    if (path == NULL || *path == '\0') path = "pymem-report.html";
    long n = NS_N, m = NS_M;
    const char *scale = getenv("PYMEM_DEMO_REPORT_N");
    if (scale != NULL && atol(scale) > 0) {
        n = atol(scale);
        m = n / 10;
    }
    char buf[32];
    printf("pymem %s: the seed's story as a report: memory climbing, staying up after del of a cycle,\n",
           pymem_version());
    printf("falling after gc.collect(), back to the OS after %%reset (%s ints and floats)\n", thousands((uint64_t)n, buf));
    ns_rt = new_runtime();
    pymem_object *ns = NULL, *b = NULL, *c = NULL, *keep = NULL;
    NS_OK(pymem_ns_new(ns_rt, "__main__", PYMEM_NS_NOTEBOOK, &ns));
    seed_module_and_function(ns_rt, ns_check, ns);
    int64_t found = 0;
    NS_OK(pymem_gc_collect(ns_rt, 2, &found));
    NS_OK(pymem_report_mark(ns_rt, report_steps[0]));

    seed_variables(ns_rt, ns_check, ns, n, m);
    NS_OK(pymem_report_mark(ns_rt, report_steps[1]));
    char *text = NULL;
    NS_OK(pymem_ns_whos(ns_rt, ns, &text));
    pymem_string_free(text);
    /* _keep = [c], and the host holds c too: two more chains for why_alive. */
    NS_OK(pymem_ns_get(ns_rt, ns, "c", &c));
    NS_OK(pymem_list_new(ns_rt, &keep));
    NS_OK(pymem_list_append(ns_rt, keep, c));
    NS_OK(pymem_ns_set(ns_rt, ns, "_keep", keep));
    NS_OK(pymem_decref(ns_rt, keep));
    NS_OK(pymem_ns_why_alive(ns_rt, ns, "c", &text));
    pymem_string_free(text);
    NS_OK(pymem_ns_del(ns_rt, ns, "_keep"));
    NS_OK(pymem_decref(ns_rt, c));

    NS_OK(pymem_ns_del(ns_rt, ns, "a")); /* freed at once: reference counting */
    NS_OK(pymem_report_mark(ns_rt, report_steps[2]));
    NS_OK(pymem_ns_get(ns_rt, ns, "b", &b));
    NS_OK(pymem_list_append(ns_rt, b, b)); /* b now holds itself: a cycle */
    NS_OK(pymem_decref(ns_rt, b));
    NS_OK(pymem_ns_del(ns_rt, ns, "b")); /* stays: only the collector can free a cycle */
    NS_OK(pymem_report_mark(ns_rt, report_steps[3]));
    NS_OK(pymem_gc_collect(ns_rt, 2, &found));
    NS_OK(pymem_release_free_arenas(ns_rt, NULL));
    NS_OK(pymem_report_mark(ns_rt, report_steps[4]));
    pymem_reset_report r;
    NS_OK(pymem_ns_reset(ns_rt, ns, NULL, &r));
    NS_OK(pymem_report_mark(ns_rt, report_steps[5]));

    /* The GPU part: a 1 GiB tensor and a small one, del, empty_cache. */
    pymem_cuda_config cfg;
    pymem_cuda_config_init(&cfg);
    cfg.backend = PYMEM_CUDA_BACKEND_SIMULATED;
    CUDA_OK(pymem_cuda_cache_new(&cfg, &gpu));
    CUDA_OK(pymem_cuda_record_history(gpu, 1, 10000));
    uint64_t x = 0, y = 0, z = 0;
    CUDA_OK(pymem_cuda_malloc(gpu, 0, 1024ull * 1024 * 1024, 0, &x));
    CUDA_OK(pymem_cuda_malloc(gpu, 0, 4 * 1000, 0, &y));
    CUDA_OK(pymem_cuda_malloc(gpu, 0, 300ull * 1024 * 1024, 0, &z));
    CUDA_OK(pymem_cuda_free(gpu, x));
    CUDA_OK(pymem_cuda_empty_cache(gpu));
    CUDA_OK(pymem_cuda_free(gpu, z));

    char *html = NULL;
    NS_OK(pymem_report_html(ns_rt, gpu, &html));
    FILE *f = fopen(path, "w");
    if (f == NULL || fputs(html, f) < 0 || fclose(f) != 0) {
        fprintf(stderr, "demo: cannot write %s\n", path);
        return 1;
    }
    printf("\n%zu bytes of HTML; %d marks: ", strlen(html), (int)(sizeof report_steps / sizeof report_steps[0]));
    for (size_t i = 0; i < sizeof report_steps / sizeof report_steps[0]; i++)
        printf("%s%s", i ? " | " : "", report_steps[i]);
    printf("\nreport written to %s\n", path);
    pymem_string_free(html);
    CUDA_OK(pymem_cuda_free(gpu, y));
    CUDA_OK(pymem_cuda_cache_free(gpu));
    gpu = NULL;
    NS_OK(pymem_decref(ns_rt, ns));
    NS_OK(pymem_runtime_free(ns_rt));
    ns_rt = NULL;
    return 0;
}

/* ------------------------------------------------------------------ */
/* Section table                                                       */
/* ------------------------------------------------------------------ */

struct section {
    const char *name;
    const char *title;
    int (*run)(void);
};

static const struct section sections[] = {
    {"pools", "allocator: 10**7 small blocks, and the fragmented case", section_pools},
    {"objects", "reference counts: the seed's sections 2.1-2.4, free lists, deep nesting", section_objects},
    {"gc", "cycle collector: two objects in a cycle, thresholds, a big cyclic structure freed", section_gc},
    {"namespaces", "namespaces: the seed's variables listed, sized, reset, the memory back to the OS",
     section_namespaces},
    {"cuda", "GPU caching allocator: allocated vs reserved vs nvidia-smi, empty_cache, summary, release_all",
     section_cuda},
    {"report", "the seed's story as an HTML page (pymem_report_html): timeline, arenas, gc, %whos, GPU",
     section_report},
};
#define N_SECTIONS (sizeof sections / sizeof sections[0])

int main(int argc, char **argv) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (argc < 2) {
        fprintf(stderr, "usage: %s SECTION... | --list\n", argv[0]);
        return 1;
    }
    if (strcmp(argv[1], "--list") == 0) {
        for (size_t i = 0; i < N_SECTIONS; i++) printf("%s\t%s\n", sections[i].name, sections[i].title);
        return 0;
    }
    for (int a = 1; a < argc; a++) {
        const struct section *s = NULL;
        for (size_t i = 0; i < N_SECTIONS; i++)
            if (strcmp(sections[i].name, argv[a]) == 0) s = &sections[i];
        if (s == NULL) {
            fprintf(stderr, "demo: unknown section %s (see --list)\n", argv[a]);
            return 1;
        }
        if (s->run() != 0) return 1;
    }
    return 0;
}
