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
 * Later parts of pymem add their sections to the table at the end.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <pymem.h>

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
/* Section table                                                       */
/* ------------------------------------------------------------------ */

struct section {
    const char *name;
    const char *title;
    int (*run)(void);
};

static const struct section sections[] = {
    {"pools", "allocator: 10**7 small blocks, and the fragmented case", section_pools},
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
