/*
 * alloc_basic.c: every entry point of the allocator section of pymem.h used
 * as documented: version, status names, config defaults, runtimes of both
 * geometries, malloc/calloc/realloc of every size range, the statistics, the
 * debug report, releasing free arenas.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pymem.h"
#include "check.h"

#define KIB ((size_t)1024)
#define MIB (KIB * KIB)

/* Fills n bytes with a pattern that depends on the seed and the offset. */
static void fill(void *p, size_t n, unsigned seed) {
    unsigned char *b = (unsigned char *)p;
    for (size_t i = 0; i < n; i++)
        b[i] = (unsigned char)(seed + i * 7u);
}

/* Whether n bytes still hold fill()'s pattern. */
static int holds(const void *p, size_t n, unsigned seed) {
    const unsigned char *b = (const unsigned char *)p;
    for (size_t i = 0; i < n; i++)
        if (b[i] != (unsigned char)(seed + i * 7u))
            return 0;
    return 1;
}

static int all_bytes(const void *p, size_t n, unsigned char v) {
    const unsigned char *b = (const unsigned char *)p;
    for (size_t i = 0; i < n; i++)
        if (b[i] != v)
            return 0;
    return 1;
}

#define CHECK_ALIGNED(p) CHECKF(((uintptr_t)(p) % 16) == 0, "%p is not 16-aligned", (p))

static void test_version(void) {
    char expected[64];
    snprintf(expected, sizeof expected, "%d.%d.%d", PYMEM_VERSION_MAJOR, PYMEM_VERSION_MINOR,
             PYMEM_VERSION_PATCH);
    CHECK_STR_EQ(pymem_version(), expected);
    CHECK(pymem_version() == pymem_version()); /* static */
}

static void test_status_names(void) {
    static const char *const names[] = {
        "PYMEM_OK",
        "PYMEM_ERR_NULL_ARGUMENT",
        "PYMEM_ERR_INVALID_POINTER",
        "PYMEM_ERR_DOUBLE_FREE",
        "PYMEM_ERR_TYPE",
        "PYMEM_ERR_REFCOUNT_UNDERFLOW",
        "PYMEM_ERR_NO_MEMORY",
        "PYMEM_ERR_KEY",
        "PYMEM_ERR_INDEX",
        "PYMEM_ERR_INVALID_ARGUMENT",
        "PYMEM_ERR_RECURSION",
        "PYMEM_ERR_BUSY",
        "PYMEM_ERR_NO_DEVICE",
        "PYMEM_ERR_DEVICE",
        "PYMEM_ERR_OUT_OF_DEVICE_MEMORY",
        "PYMEM_ERR_PANIC",
        "PYMEM_ERR_HEAP_CORRUPTION",
    };
    /* The enum constants have the numbers the names say. */
    static const int32_t values[] = {
        PYMEM_OK, PYMEM_ERR_NULL_ARGUMENT, PYMEM_ERR_INVALID_POINTER, PYMEM_ERR_DOUBLE_FREE,
        PYMEM_ERR_TYPE, PYMEM_ERR_REFCOUNT_UNDERFLOW, PYMEM_ERR_NO_MEMORY, PYMEM_ERR_KEY,
        PYMEM_ERR_INDEX, PYMEM_ERR_INVALID_ARGUMENT, PYMEM_ERR_RECURSION, PYMEM_ERR_BUSY,
        PYMEM_ERR_NO_DEVICE, PYMEM_ERR_DEVICE, PYMEM_ERR_OUT_OF_DEVICE_MEMORY, PYMEM_ERR_PANIC,
        PYMEM_ERR_HEAP_CORRUPTION,
    };
    for (int32_t s = 0; s <= 16; s++) {
        CHECK_EQ_U64(values[s], s);
        CHECK_STR_EQ(pymem_status_name(s), names[s]);
    }
    const int32_t unknown[] = {17, 18, -1, 1000, INT32_MIN, INT32_MAX};
    for (size_t i = 0; i < sizeof unknown / sizeof unknown[0]; i++)
        CHECK_STR_EQ(pymem_status_name(unknown[i]), "PYMEM_UNKNOWN_STATUS");
}

static void test_config_init(void) {
    pymem_config cfg;
    memset(&cfg, 0xAB, sizeof cfg);
    pymem_config_init(&cfg);
    CHECK_EQ_U64(cfg.geometry, PYMEM_GEOMETRY_CPYTHON_310);
    CHECK_EQ_U64(cfg.debug_hooks, 0);
    CHECK_EQ_U64(cfg.max_bytes, 0);
    CHECK_EQ_U64(cfg.pool_release_delay, PYMEM_DEFAULT_POOL_RELEASE_DELAY);
    CHECK_EQ_U64(PYMEM_DEFAULT_POOL_RELEASE_DELAY, 256);
    pymem_config_init(NULL); /* ignored */

    /* The library writes exactly sizeof(pymem_config) bytes: a larger
     * write means this header is older than the library (ABI drift). */
    union {
        pymem_config cfg;
        unsigned char bytes[sizeof(pymem_config) + 64];
    } canary;
    memset(&canary, 0xAB, sizeof canary);
    pymem_config_init(&canary.cfg);
    for (size_t i = sizeof(pymem_config); i < sizeof canary.bytes; i++)
        CHECKF(canary.bytes[i] == 0xAB,
               "pymem_config_init wrote byte %zu of a %zu-byte pymem_config: "
               "pymem.h does not match the library",
               i, sizeof(pymem_config));
}

/* pymem_alloc_get_stats writes exactly sizeof(pymem_alloc_stats) bytes. */
static void test_stats_size(void) {
    pymem_runtime *rt = NULL;
    CHECK_OK(NULL, pymem_runtime_new(NULL, &rt));
    union {
        pymem_alloc_stats s;
        unsigned char bytes[sizeof(pymem_alloc_stats) + 64];
    } canary;
    memset(&canary, 0xAB, sizeof canary);
    CHECK_OK(rt, pymem_alloc_get_stats(rt, &canary.s));
    for (size_t i = sizeof(pymem_alloc_stats); i < sizeof canary.bytes; i++)
        CHECKF(canary.bytes[i] == 0xAB,
               "pymem_alloc_get_stats wrote byte %zu of a %zu-byte pymem_alloc_stats: "
               "pymem.h does not match the library",
               i, sizeof(pymem_alloc_stats));
    CHECK_EQ_U64(canary.s.blocks_in_use, 0);
    CHECK_OK(rt, pymem_runtime_free(rt));
}

/* A fresh runtime: no message, nothing allocated; one block maps one arena
 * of the geometry's size, which the report names. */
static void check_geometry(pymem_runtime *rt, size_t arena_size) {
    CHECK_STR_EQ(pymem_last_error(rt), "");
    pymem_alloc_stats s = stats_of(rt);
    CHECK_EQ_U64(s.blocks_in_use, 0);
    CHECK_EQ_U64(s.bytes_in_use, 0);
    CHECK_EQ_U64(s.arenas_current, 0);
    CHECK_EQ_U64(s.bytes_reserved, 0);

    void *p = pymem_malloc(rt, 8);
    CHECK(p != NULL);
    s = stats_of(rt);
    CHECK_EQ_U64(s.blocks_in_use, 1);
    CHECK_EQ_U64(s.bytes_in_use, 16);
    CHECK_EQ_U64(s.arenas_current, 1);
    CHECK_EQ_U64(s.arenas_allocated_total, 1);
    CHECK_EQ_U64(s.arenas_highwater, 1);
    CHECK_EQ_U64(s.pools_in_use, 1);
    CHECK_EQ_U64(s.bytes_reserved, arena_size);

    char *report = NULL;
    CHECK_OK(rt, pymem_debug_malloc_stats(rt, &report));
    CHECK(report != NULL);
    char line[64];
    snprintf(line, sizeof line, "1 arenas * %zu bytes/arena", arena_size);
    CHECK_CONTAINS(report, line);
    pymem_string_free(report);

    CHECK_OK(rt, pymem_free(rt, p));
    CHECK_BLOCKS(rt, 0);
}

static void test_runtimes(void) {
    pymem_runtime *rt = NULL;
    CHECK_OK(NULL, pymem_runtime_new(NULL, &rt));
    CHECK(rt != NULL);
    check_geometry(rt, MIB);
    CHECK_OK(rt, pymem_runtime_free(rt));

    pymem_config cfg;
    pymem_config_init(&cfg);
    cfg.geometry = PYMEM_GEOMETRY_CPYTHON_310;
    rt = NULL;
    CHECK_OK(NULL, pymem_runtime_new(&cfg, &rt));
    CHECK(rt != NULL);
    check_geometry(rt, MIB);
    CHECK_OK(rt, pymem_runtime_free(rt));

    cfg.geometry = PYMEM_GEOMETRY_CPYTHON_38;
    rt = NULL;
    CHECK_OK(NULL, pymem_runtime_new(&cfg, &rt));
    CHECK(rt != NULL);
    check_geometry(rt, 256 * KIB);
    CHECK_OK(rt, pymem_runtime_free(rt));

    /* The config is copied: changing it afterwards changes nothing. */
    pymem_config_init(&cfg);
    cfg.geometry = PYMEM_GEOMETRY_CPYTHON_38;
    rt = NULL;
    CHECK_OK(NULL, pymem_runtime_new(&cfg, &rt));
    cfg.geometry = PYMEM_GEOMETRY_CPYTHON_310;
    check_geometry(rt, 256 * KIB);
    CHECK_OK(rt, pymem_runtime_free(rt));

    CHECK_OK(NULL, pymem_runtime_free(NULL)); /* NULL is fine */

    /* Freeing a runtime frees what it still holds (valgrind sees no leak). */
    CHECK_OK(NULL, pymem_runtime_new(NULL, &rt));
    CHECK(pymem_malloc(rt, 100) != NULL);
    CHECK(pymem_malloc(rt, 5000) != NULL);
    CHECK(pymem_malloc(rt, 300 * KIB) != NULL);
    CHECK_OK(rt, pymem_runtime_free(rt));
}

static void test_malloc_sizes(pymem_runtime *rt) {
    const pymem_alloc_stats start = stats_of(rt);

    /* malloc(0): unique, valid, freeable pointers (served as 1 byte). */
    void *z1 = pymem_malloc(rt, 0);
    void *z2 = pymem_malloc(rt, 0);
    CHECK(z1 != NULL && z2 != NULL);
    CHECK(z1 != z2);
    CHECK_ALIGNED(z1);
    CHECK_ALIGNED(z2);

    static const size_t sizes[] = {1, 16, 512, 513, 4096, 1024 * 1024};
    enum { NSIZES = sizeof sizes / sizeof sizes[0] };
    void *blocks[NSIZES];
    uint64_t small_bytes = 2 * 16, large_bytes = 0, nlarge = 0;
    for (size_t i = 0; i < NSIZES; i++) {
        blocks[i] = pymem_malloc(rt, sizes[i]);
        CHECKF(blocks[i] != NULL, "malloc(%zu): %s", sizes[i], pymem_last_error(rt));
        CHECK_ALIGNED(blocks[i]);
        fill(blocks[i], sizes[i], (unsigned)i);
        if (sizes[i] <= 512) {
            small_bytes += (sizes[i] + 15) / 16 * 16;
        } else {
            large_bytes += sizes[i];
            nlarge++;
        }
    }
    for (size_t i = 0; i < NSIZES; i++) {
        CHECKF(holds(blocks[i], sizes[i], (unsigned)i), "block of %zu bytes changed", sizes[i]);
        for (size_t j = 0; j < i; j++)
            CHECK(blocks[i] != blocks[j]);
    }

    pymem_alloc_stats s = stats_of(rt);
    CHECK_EQ_U64(s.blocks_in_use, start.blocks_in_use + 2 + NSIZES);
    CHECK_EQ_U64(s.large_allocations, start.large_allocations + nlarge);
    CHECK_EQ_U64(s.large_bytes, start.large_bytes + large_bytes);
    CHECK_EQ_U64(s.bytes_in_use, start.bytes_in_use + small_bytes + large_bytes);
    CHECK(s.arenas_current >= 1);
    CHECK(s.bytes_reserved >= s.arenas_current * MIB + large_bytes);

    printf("  malloc: %llu blocks, %llu bytes in use, %llu large, %llu arena(s)\n",
           (unsigned long long)s.blocks_in_use, (unsigned long long)s.bytes_in_use,
           (unsigned long long)s.large_allocations, (unsigned long long)s.arenas_current);

    for (size_t i = 0; i < NSIZES; i++)
        CHECK_OK(rt, pymem_free(rt, blocks[i]));
    CHECK_OK(rt, pymem_free(rt, z1));
    CHECK_OK(rt, pymem_free(rt, z2));
    CHECK_OK(rt, pymem_free(rt, NULL)); /* NULL is fine */

    s = stats_of(rt);
    CHECK_EQ_U64(s.blocks_in_use, start.blocks_in_use);
    CHECK_EQ_U64(s.bytes_in_use, start.bytes_in_use);
    CHECK_EQ_U64(s.large_allocations, start.large_allocations);
    CHECK_EQ_U64(s.large_bytes, start.large_bytes);
}

/* Every small size class, and a spread of large sizes, round trip. */
static void test_every_class(pymem_runtime *rt) {
    const pymem_alloc_stats start = stats_of(rt);
    void *blocks[520];
    for (size_t n = 1; n <= 520; n++) {
        blocks[n - 1] = pymem_malloc(rt, n);
        CHECK(blocks[n - 1] != NULL);
        CHECK_ALIGNED(blocks[n - 1]);
        fill(blocks[n - 1], n, (unsigned)n);
    }
    pymem_alloc_stats s = stats_of(rt);
    CHECK_EQ_U64(s.blocks_in_use, start.blocks_in_use + 520);
    CHECK_EQ_U64(s.large_allocations, start.large_allocations + 8); /* 513..520 */
    for (size_t n = 1; n <= 520; n++) {
        CHECK(holds(blocks[n - 1], n, (unsigned)n));
        CHECK_OK(rt, pymem_free(rt, blocks[n - 1]));
    }
    CHECK_BLOCKS(rt, start.blocks_in_use);
}

static void test_calloc(pymem_runtime *rt) {
    const uint64_t start = stats_of(rt).blocks_in_use;

    /* Dirty a block, free it, and calloc the same class: the allocator
     * reuses the block (LIFO free list) and must zero it. */
    unsigned char *dirty = (unsigned char *)pymem_malloc(rt, 200);
    CHECK(dirty != NULL);
    memset(dirty, 0xFF, 200);
    CHECK_OK(rt, pymem_free(rt, dirty));
    unsigned char *z = (unsigned char *)pymem_calloc(rt, 10, 20);
    CHECK(z != NULL);
    CHECK(all_bytes(z, 200, 0));
    CHECK_OK(rt, pymem_free(rt, z));

    static const size_t counts[] = {1, 3, 64, 1000, 300000};
    for (size_t i = 0; i < sizeof counts / sizeof counts[0]; i++) {
        unsigned char *c = (unsigned char *)pymem_calloc(rt, counts[i], 3);
        CHECK(c != NULL);
        CHECK(all_bytes(c, counts[i] * 3, 0));
        CHECK_OK(rt, pymem_free(rt, c));
    }

    /* calloc with a zero count or size: a unique pointer, like malloc(0). */
    void *a = pymem_calloc(rt, 0, 8);
    void *b = pymem_calloc(rt, 8, 0);
    CHECK(a != NULL && b != NULL && a != b);
    CHECK_OK(rt, pymem_free(rt, a));
    CHECK_OK(rt, pymem_free(rt, b));

    /* count * size overflows: NULL, PYMEM_ERR_NO_MEMORY's message, nothing changed. */
    const pymem_alloc_stats before = stats_of(rt);
    CHECK_NULL_FAILS(rt, pymem_calloc(rt, SIZE_MAX, 2), PYMEM_ERR_NO_MEMORY, "out of memory");
    CHECK_MESSAGE(rt, "overflow");
    CHECK_NULL_FAILS(rt, pymem_calloc(rt, 2, SIZE_MAX / 2 + 1), PYMEM_ERR_NO_MEMORY, "out of memory");
    CHECK_STATS_EQ(stats_of(rt), before);

    CHECK_BLOCKS(rt, start);
}

static void test_realloc(pymem_runtime *rt) {
    const uint64_t start = stats_of(rt).blocks_in_use;

    /* realloc(NULL, n) allocates. */
    unsigned char *p = (unsigned char *)pymem_realloc(rt, NULL, 24);
    CHECK(p != NULL);
    CHECK_BLOCKS(rt, start + 1);
    fill(p, 24, 1);

    /* Grow through the classes and into large blocks: contents kept. */
    static const size_t grow[] = {40, 100, 512, 513, 2000, 200 * 1024, 2 * 1024 * 1024};
    size_t n = 24;
    for (size_t i = 0; i < sizeof grow / sizeof grow[0]; i++) {
        unsigned char *q = (unsigned char *)pymem_realloc(rt, p, grow[i]);
        CHECKF(q != NULL, "realloc to %zu: %s", grow[i], pymem_last_error(rt));
        CHECK_ALIGNED(q);
        CHECKF(holds(q, n, 1), "contents lost growing %zu -> %zu", n, grow[i]);
        fill(q, grow[i], 1);
        p = q;
        n = grow[i];
        CHECK_BLOCKS(rt, start + 1);
    }
    CHECK_EQ_U64(stats_of(rt).large_bytes, 2 * 1024 * 1024);

    /* Shrink back down: the prefix is kept. */
    static const size_t shrink[] = {300 * 1024, 1000, 600, 300, 17, 1};
    for (size_t i = 0; i < sizeof shrink / sizeof shrink[0]; i++) {
        unsigned char *q = (unsigned char *)pymem_realloc(rt, p, shrink[i]);
        CHECKF(q != NULL, "realloc to %zu: %s", shrink[i], pymem_last_error(rt));
        CHECKF(holds(q, shrink[i], 1), "contents lost shrinking %zu -> %zu", n, shrink[i]);
        p = q;
        n = shrink[i];
        CHECK_BLOCKS(rt, start + 1);
    }
    CHECK_OK(rt, pymem_free(rt, p));

    /* A small block shrunk by less than 25 % inside its class stays put
     * (CPython's pymalloc_realloc rule): 512 -> 400; by more, it moves. */
    p = (unsigned char *)pymem_malloc(rt, 512);
    CHECK(p != NULL);
    fill(p, 512, 9);
    unsigned char *q = (unsigned char *)pymem_realloc(rt, p, 400);
    CHECK(q == p);
    CHECK(holds(q, 400, 9));
    q = (unsigned char *)pymem_realloc(rt, q, 512); /* grows back within its class */
    CHECK(q == p);
    q = (unsigned char *)pymem_realloc(rt, q, 100); /* shrinks by > 25 %: moves */
    CHECK(q != NULL && q != p);
    CHECK(holds(q, 100, 9));
    CHECK_BLOCKS(rt, start + 1);

    /* realloc to 0 keeps a valid block. */
    q = (unsigned char *)pymem_realloc(rt, q, 0);
    CHECK(q != NULL);
    CHECK_BLOCKS(rt, start + 1);
    CHECK_OK(rt, pymem_free(rt, q));

    CHECK_BLOCKS(rt, start);
}

static void test_stats_and_report(pymem_runtime *rt) {
    const pymem_alloc_stats start = stats_of(rt);
    /* 70 pools' worth of 512-byte blocks: needs a second 1 MiB arena. */
    enum { PER_POOL = 16 * 1024 / 512, N = 70 * PER_POOL };
    static void *blocks[N];
    for (size_t i = 0; i < N; i++) {
        blocks[i] = pymem_malloc(rt, 512);
        CHECK(blocks[i] != NULL);
    }
    void *large = pymem_malloc(rt, 10000);
    CHECK(large != NULL);

    pymem_alloc_stats s = stats_of(rt);
    CHECK_EQ_U64(s.blocks_in_use, start.blocks_in_use + N + 1);
    CHECK_EQ_U64(s.bytes_in_use, start.bytes_in_use + (uint64_t)N * 512 + 10000);
    CHECK_EQ_U64(s.large_allocations, start.large_allocations + 1);
    CHECK_EQ_U64(s.large_bytes, start.large_bytes + 10000);
    CHECK(s.arenas_current >= 2);
    CHECK(s.arenas_highwater >= s.arenas_current);
    CHECK(s.arenas_allocated_total >= s.arenas_current);
    CHECK(s.pools_in_use >= 70);
    CHECK(s.bytes_reserved >= s.arenas_current * MIB + 10000);

    char *report = NULL;
    CHECK_OK(rt, pymem_debug_malloc_stats(rt, &report));
    CHECK(report != NULL);
    CHECK_CONTAINS(report, "Small block threshold = 512, in 33 size classes.");
    CHECK_CONTAINS(report, "class   size   num pools   blocks in use  avail blocks");
    CHECK_CONTAINS(report, "# arenas allocated total");
    CHECK_CONTAINS(report, "# arenas allocated current");
    CHECK_CONTAINS(report, "# bytes in allocated blocks");
    CHECK_CONTAINS(report, "# large blocks in use");
    /* The table row of class 31 (512 bytes) counts our blocks. */
    char row[64];
    snprintf(row, sizeof row, "   31    512 ");
    CHECK_CONTAINS(report, row);
    pymem_string_free(report);
    pymem_string_free(NULL); /* NULL is fine */

    for (size_t i = 0; i < N; i++)
        CHECK_OK(rt, pymem_free(rt, blocks[i]));
    CHECK_OK(rt, pymem_free(rt, large));
    s = stats_of(rt);
    CHECK_EQ_U64(s.blocks_in_use, start.blocks_in_use);
    CHECK_EQ_U64(s.bytes_in_use, start.bytes_in_use);
    CHECK_EQ_U64(s.large_allocations, start.large_allocations);
    CHECK_EQ_U64(s.pools_in_use, start.pools_in_use);
    /* With the default pool_release_delay, wholly free arenas wait until
       they have stayed free for the delay (or pymem_release_free_arenas);
       CPython's one-spare rule holds at once with a delay of 0
       (test_spare_rule). */
    CHECK(s.arenas_current <= start.arenas_current + 2);

    /* Releasing gives back the kept arena's resident pools. */
    size_t released = (size_t)-1;
    CHECK_OK(rt, pymem_release_free_arenas(rt, &released));
    CHECK(released != (size_t)-1);
    CHECK(released > 0);
    CHECK(released % (16 * 1024) == 0);
    pymem_alloc_stats after = stats_of(rt);
    CHECK(after.arenas_current <= start.arenas_current);
    CHECK(after.arenas_freed_total >= 1);
    CHECK(after.bytes_returned_to_os_total >= s.bytes_returned_to_os_total + released);
    printf("  release_free_arenas: %zu bytes released, %llu arena(s) left, %llu returned in total\n",
           released, (unsigned long long)after.arenas_current,
           (unsigned long long)after.bytes_returned_to_os_total);

    /* A second release finds nothing; NULL for the count is fine. */
    CHECK_OK(rt, pymem_release_free_arenas(rt, &released));
    CHECK_EQ_U64(released, 0);
    CHECK_OK(rt, pymem_release_free_arenas(rt, NULL));

    /* The allocator still works after giving memory back. */
    void *p = pymem_malloc(rt, 64);
    CHECK(p != NULL);
    CHECK_OK(rt, pymem_free(rt, p));
    CHECK_BLOCKS(rt, start.blocks_in_use);
}

/* CPython's arena rule, with no release delay: once every block is freed,
   one wholly free arena stays as a spare and the others are unmapped at
   once. */
static void test_spare_rule(void) {
    pymem_config cfg;
    pymem_config_init(&cfg);
    cfg.pool_release_delay = 0;
    pymem_runtime *rt = NULL;
    CHECK_OK(NULL, pymem_runtime_new(&cfg, &rt));
    enum { N = 3 * 2048 }; /* three 1 MiB arenas of 512-byte blocks */
    static void *blocks[N];
    for (size_t i = 0; i < N; i++) {
        blocks[i] = pymem_malloc(rt, 512);
        CHECK(blocks[i] != NULL);
    }
    CHECK_EQ_U64(stats_of(rt).arenas_current, 3);
    for (size_t i = 0; i < N; i++)
        CHECK_OK(rt, pymem_free(rt, blocks[i]));
    pymem_alloc_stats s = stats_of(rt);
    CHECK_EQ_U64(s.arenas_current, 1);
    CHECK_EQ_U64(s.arenas_freed_total, 2);
    CHECK_OK(rt, pymem_release_free_arenas(rt, NULL));
    CHECK_EQ_U64(stats_of(rt).arenas_current, 0);
    CHECK_OK(NULL, pymem_runtime_free(rt));
}

/* pymem_config_init reads the environment, as CPython reads PYTHONMALLOC;
   pymem_runtime_new(NULL, ...) uses the same defaults. */
static void test_environment(void) {
    CHECK(setenv("PYMEM_MALLOC", "debug", 1) == 0);
    CHECK(setenv("PYMEM_MAX_BYTES", "8388608", 1) == 0);
    pymem_config cfg;
    pymem_config_init(&cfg);
    CHECK_EQ_U64(cfg.debug_hooks, 1);
    CHECK_EQ_U64(cfg.max_bytes, 8 * MIB);
    pymem_runtime *rt = NULL;
    CHECK_OK(NULL, pymem_runtime_new(NULL, &rt));
    unsigned char *p = (unsigned char *)pymem_malloc(rt, 40);
    CHECK(p != NULL);
    for (size_t i = 0; i < 40; i++)
        CHECKF(p[i] == 0xCD, "byte %zu of a debug block is %#x, not 0xcd", i, p[i]);
    CHECK_OK(rt, pymem_free(rt, p));
    CHECK_NULL_FAILS(rt, pymem_malloc(rt, 16 * MIB), PYMEM_ERR_NO_MEMORY, "max_bytes");
    CHECK_OK(NULL, pymem_runtime_free(rt));

    /* A value it cannot take is ignored, and said so in the thread's slot. */
    CHECK(setenv("PYMEM_GEOMETRY", "2.7", 1) == 0);
    pymem_config_init(&cfg);
    CHECK_EQ_U64(cfg.geometry, PYMEM_GEOMETRY_CPYTHON_310);
    CHECK_EQ_U64(pymem_last_status(NULL), PYMEM_ERR_INVALID_ARGUMENT);
    CHECK_MESSAGE(NULL, "PYMEM_GEOMETRY");
    CHECK(unsetenv("PYMEM_GEOMETRY") == 0 && unsetenv("PYMEM_MALLOC") == 0 && unsetenv("PYMEM_MAX_BYTES") == 0);
    pymem_config_init(&cfg);
    CHECK_EQ_U64(cfg.debug_hooks, 0);
    CHECK_EQ_U64(cfg.max_bytes, 0);
}

int main(void) {
    test_environment();
    test_spare_rule();
    test_version();
    test_status_names();
    test_config_init();
    test_stats_size();
    test_runtimes();

    pymem_runtime *rt = NULL;
    CHECK_OK(NULL, pymem_runtime_new(NULL, &rt));
    const uint64_t start = stats_of(rt).blocks_in_use;
    test_malloc_sizes(rt);
    test_every_class(rt);
    test_calloc(rt);
    test_realloc(rt);
    test_stats_and_report(rt);
    CHECK_BLOCKS(rt, start);
    CHECK_OK(rt, pymem_runtime_free(rt));

    printf("alloc_basic: OK (pymem %s)\n", pymem_version());
    return 0;
}
