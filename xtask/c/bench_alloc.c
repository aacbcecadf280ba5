/* bench_alloc.c -- small-block allocator throughput for `cargo xtask bench alloc`.
 *
 * Usage: bench_alloc ALLOCATOR WORKLOAD [N]
 *   ALLOCATOR  null | glibc                  (every build)
 *              pymem | pymem_38              (built with -DWITH_PYMEM, linked to libpymem)
 *              pymalloc                      (built with -DWITH_PY, linked to libpython)
 *              mimalloc                      (built with -DWITH_MI, linked to libmimalloc)
 *   WORKLOAD   window | lifo
 *   N          allocations (default 10,000,000)
 * Prints one line: "<allocator> <workload> <N> <ns per op> <checksum> <faults>",
 * faults = minor page faults during the timed loop (getrusage).
 *
 * The workload is the one of the peer baseline (shared/peers/alloc_bench.c),
 * so the numbers and checksums compare with it:
 * - sizes 8..512 from xorshift64 (shifts 13, 7, 17) seeded with
 *   0x9E3779B97F4A7C15;
 * - window: a ring of 10,000 live blocks; allocation i first frees the block
 *   in slot i % 10,000 (FIFO replacement), then refills the slot; at the end
 *   the ring is drained;
 * - lifo: allocate 1,000 blocks, free them newest first, again and again;
 * - every block gets its first and last byte written when allocated and read
 *   back into a checksum before it is freed, so nothing can be optimised
 *   away and all allocators must print the same checksum (except `null`,
 *   whose blocks overlap).
 * One op = one allocation + its free; the time covers the whole loop.
 *
 * pymem is called through its C ABI exactly as a C host would: one runtime,
 * created before timing and kept in a static, and always_inline wrappers that
 * pass it. pymem_free's status is ignored in the timed loop; after it, the
 * allocator must report 0 blocks in use (exit 3 otherwise).
 *
 * Debian's libmimalloc.so replaces malloc/free process-wide, so the mimalloc
 * variant must be a binary of its own.
 */
#ifdef WITH_PY
#include <Python.h> /* first, as Python.h requires */
#endif
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#ifdef WITH_PYMEM
#include <pymem.h>
#endif
#ifdef WITH_MI
#include <mimalloc.h>
#endif

enum { RING = 10000, BATCH = 1000 };
#define SEED UINT64_C(0x9E3779B97F4A7C15)

static uint64_t rng_state;

/* The next block size, 8..512 bytes. */
static inline uint32_t next_size(void) {
    uint64_t x = rng_state;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    rng_state = x;
    return 8u + (uint32_t)(x % 505u);
}

static double now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static long minor_faults(void) {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_minflt;
}

static void out_of_memory(void) {
    fprintf(stderr, "bench_alloc: allocation failed\n");
    exit(2);
}

/* Live blocks and their sizes (ring slots, or one lifo batch). */
static unsigned char *live[RING];
static uint32_t live_size[RING];

typedef void *(*alloc_fn)(size_t);
typedef void (*free_fn)(void *);

/* The workloads take the allocator as constant function pointers and are
 * always inlined into one function per allocator, so each call below becomes
 * a direct call (or the allocator's inline wrapper). */
static inline __attribute__((always_inline)) uint64_t window(long n, alloc_fn alloc, free_fn release) {
    uint64_t sum = 0;
    memset(live, 0, sizeof live);
    for (long i = 0; i < n; i++) {
        long k = i % RING;
        unsigned char *old = live[k];
        if (old != NULL) {
            sum += old[0] + old[live_size[k] - 1];
            release(old);
        }
        uint32_t size = next_size();
        unsigned char *p = alloc(size);
        if (p == NULL) out_of_memory();
        p[0] = (unsigned char)i;
        p[size - 1] = (unsigned char)(i >> 8);
        live[k] = p;
        live_size[k] = size;
    }
    for (long k = 0; k < RING; k++) {
        if (live[k] != NULL) {
            sum += live[k][0];
            release(live[k]);
            live[k] = NULL;
        }
    }
    return sum;
}

static inline __attribute__((always_inline)) uint64_t lifo(long n, alloc_fn alloc, free_fn release) {
    uint64_t sum = 0;
    for (long done = 0; done < n; done += BATCH) {
        for (int k = 0; k < BATCH; k++) {
            uint32_t size = next_size();
            unsigned char *p = alloc(size);
            if (p == NULL) out_of_memory();
            p[0] = (unsigned char)k;
            p[size - 1] = (unsigned char)(done >> 10);
            live[k] = p;
            live_size[k] = size;
        }
        for (int k = BATCH - 1; k >= 0; k--) {
            sum += live[k][0] + live[k][live_size[k] - 1];
            release(live[k]);
        }
    }
    return sum;
}

#define WORKLOADS(tag, alloc, release)                                        \
    static uint64_t window_##tag(long n) { return window(n, alloc, release); } \
    static uint64_t lifo_##tag(long n) { return lifo(n, alloc, release); }

/* ---- null: the harness alone (bump into 32 KiB that stays in cache) ---- */
static unsigned char null_blocks[64][512];
static unsigned null_next;
__attribute__((noinline)) static void *null_alloc(size_t n) {
    (void)n;
    return null_blocks[null_next++ % 64];
}
__attribute__((noinline)) static void null_free(void *p) { __asm__ volatile("" : : "r"(p) : "memory"); }
WORKLOADS(null, null_alloc, null_free)

/* ---- glibc ---- */
WORKLOADS(glibc, malloc, free)

/* ---- pymem through the C ABI ---- */
#ifdef WITH_PYMEM
static pymem_runtime *bench_rt;
static inline __attribute__((always_inline)) void *pm_alloc(size_t n) { return pymem_malloc(bench_rt, n); }
static inline __attribute__((always_inline)) void pm_free(void *p) { (void)pymem_free(bench_rt, p); }
WORKLOADS(pymem, pm_alloc, pm_free)

static int pymem_start(int32_t geometry) {
    pymem_config cfg;
    pymem_config_init(&cfg);
    cfg.geometry = geometry;
    pymem_status st = pymem_runtime_new(&cfg, &bench_rt);
    if (st != PYMEM_OK) {
        fprintf(stderr, "pymem_runtime_new: %s: %s\n", pymem_status_name(st), pymem_last_error(NULL));
        return 1;
    }
    return 0;
}
static int setup_pymem(void) { return pymem_start(PYMEM_GEOMETRY_CPYTHON_310); }
static int setup_pymem_38(void) { return pymem_start(PYMEM_GEOMETRY_CPYTHON_38); }

/* After timing: every block came back, then the runtime goes. */
static int finish_pymem(void) {
    pymem_alloc_stats stats;
    pymem_status st = pymem_alloc_get_stats(bench_rt, &stats);
    if (st != PYMEM_OK) {
        fprintf(stderr, "pymem_alloc_get_stats: %s\n", pymem_status_name(st));
        return 1;
    }
    if (stats.blocks_in_use != 0) {
        fprintf(stderr, "pymem: %llu blocks still in use after the run\n", (unsigned long long)stats.blocks_in_use);
        return 1;
    }
    return pymem_runtime_free(bench_rt) == PYMEM_OK ? 0 : 1;
}
#endif

/* ---- CPython's pymalloc, without Py_Initialize (its state is static) ---- */
#ifdef WITH_PY
WORKLOADS(pymalloc, PyObject_Malloc, PyObject_Free)
#endif

/* ---- mimalloc ---- */
#ifdef WITH_MI
WORKLOADS(mimalloc, mi_malloc, mi_free)
#endif

struct allocator {
    const char *name;
    uint64_t (*window)(long);
    uint64_t (*lifo)(long);
    int (*setup)(void);  /* before timing, may be NULL; non-zero = failed */
    int (*finish)(void); /* after timing, may be NULL; non-zero = failed */
};

static const struct allocator allocators[] = {
    {"null", window_null, lifo_null, NULL, NULL},
    {"glibc", window_glibc, lifo_glibc, NULL, NULL},
#ifdef WITH_PYMEM
    {"pymem", window_pymem, lifo_pymem, setup_pymem, finish_pymem},
    {"pymem_38", window_pymem, lifo_pymem, setup_pymem_38, finish_pymem},
#endif
#ifdef WITH_PY
    {"pymalloc", window_pymalloc, lifo_pymalloc, NULL, NULL},
#endif
#ifdef WITH_MI
    {"mimalloc", window_mimalloc, lifo_mimalloc, NULL, NULL},
#endif
};

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: %s ALLOCATOR window|lifo [N]\n", argv[0]);
        return 1;
    }
    const struct allocator *a = NULL;
    for (size_t i = 0; i < sizeof allocators / sizeof allocators[0]; i++)
        if (strcmp(allocators[i].name, argv[1]) == 0) a = &allocators[i];
    if (a == NULL) {
        fprintf(stderr, "bench_alloc: allocator %s is not built into this binary\n", argv[1]);
        return 1;
    }
    uint64_t (*run)(long);
    if (strcmp(argv[2], "window") == 0) {
        run = a->window;
    } else if (strcmp(argv[2], "lifo") == 0) {
        run = a->lifo;
    } else {
        fprintf(stderr, "bench_alloc: unknown workload %s\n", argv[2]);
        return 1;
    }
    long n = argc > 3 ? atol(argv[3]) : 10000000L;
    if (a->setup != NULL && a->setup() != 0) return 1;

    rng_state = SEED;
    long faults0 = minor_faults();
    double t0 = now_ns();
    uint64_t sum = run(n);
    double t1 = now_ns();
    long faults = minor_faults() - faults0;

    if (a->finish != NULL && a->finish() != 0) return 3;
    printf("%s %s %ld %.3f %llu %ld\n", a->name, argv[2], n, n > 0 ? (t1 - t0) / (double)n : 0.0,
           (unsigned long long)sum, faults);
    return 0;
}
