/*
 * alloc_bad_input.c: every kind of bad input to the allocator section gets
 * its status and a message that says what was wrong, and changes nothing
 * (the statistics are compared before and after).
 *
 * The library never reads memory it was not given, so none of this may make
 * valgrind report an error: double frees and foreign pointers are validated
 * against the allocator's own tables, not by reading the block.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pymem.h"
#include "check.h"

#define KIB ((size_t)1024)
#define MIB (KIB * KIB)

/* A pointer `off` bytes from p, computed as an integer so that no C
 * pointer arithmetic leaves its object. */
static void *offset_ptr(const void *p, intptr_t off) {
    return (void *)((uintptr_t)p + (uintptr_t)off);
}

static pymem_runtime *new_runtime(const pymem_config *cfg) {
    pymem_runtime *rt = NULL;
    CHECK_OK(NULL, pymem_runtime_new(cfg, &rt));
    CHECK(rt != NULL);
    return rt;
}

/* The message is about address p: it contains p in %#lx form. */
static void check_message_names(const pymem_runtime *rt, const void *p) {
    char addr[32];
    snprintf(addr, sizeof addr, "%#lx", (unsigned long)(uintptr_t)p);
    CHECK_MESSAGE(rt, addr);
}

/* A NULL runtime: pointer calls return NULL, status calls
 * PYMEM_ERR_NULL_ARGUMENT, and the thread's slot says which call. */
static void test_null_runtime(void) {
    char probe = 0;
    CHECK_NULL_FAILS(NULL, pymem_malloc(NULL, 16), PYMEM_ERR_NULL_ARGUMENT, "pymem_malloc");
    CHECK_MESSAGE(NULL, "NULL");
    CHECK_NULL_FAILS(NULL, pymem_calloc(NULL, 4, 4), PYMEM_ERR_NULL_ARGUMENT, "pymem_calloc");
    CHECK_NULL_FAILS(NULL, pymem_realloc(NULL, NULL, 16), PYMEM_ERR_NULL_ARGUMENT, "pymem_realloc");
    CHECK(pymem_realloc(NULL, &probe, 16) == NULL);
    CHECK_EQ_U64(probe, 0);
    CHECK_MESSAGE(NULL, "pymem_realloc");

    CHECK_FAILS(NULL, pymem_free(NULL, NULL), PYMEM_ERR_NULL_ARGUMENT, "pymem_free");
    CHECK_FAILS(NULL, pymem_free(NULL, &probe), PYMEM_ERR_NULL_ARGUMENT, "runtime is NULL");

    pymem_alloc_stats s;
    memset(&s, 0x5A, sizeof s);
    CHECK_FAILS(NULL, pymem_alloc_get_stats(NULL, &s), PYMEM_ERR_NULL_ARGUMENT,
                "pymem_alloc_get_stats");
    CHECK_EQ_U64(s.blocks_in_use, 0x5A5A5A5A5A5A5A5AULL); /* out untouched on failure */

    char *text = (char *)&probe;
    CHECK_FAILS(NULL, pymem_debug_malloc_stats(NULL, &text), PYMEM_ERR_NULL_ARGUMENT,
                "pymem_debug_malloc_stats");
    CHECK(text == &probe);

    size_t released = 12345;
    CHECK_FAILS(NULL, pymem_release_free_arenas(NULL, &released), PYMEM_ERR_NULL_ARGUMENT,
                "pymem_release_free_arenas");
    CHECK_EQ_U64(released, 12345);
    CHECK_FAILS(NULL, pymem_release_free_arenas(NULL, NULL), PYMEM_ERR_NULL_ARGUMENT,
                "pymem_release_free_arenas");

    CHECK_FAILS(NULL, pymem_runtime_attach(NULL), PYMEM_ERR_NULL_ARGUMENT, "pymem_runtime_attach");
    CHECK_FAILS(NULL, pymem_runtime_detach(NULL), PYMEM_ERR_NULL_ARGUMENT, "pymem_runtime_detach");

    /* These accept NULL by contract. */
    CHECK_OK(NULL, pymem_runtime_free(NULL));
    pymem_string_free(NULL);
    pymem_config_init(NULL);
    CHECK(pymem_last_error(NULL) != NULL);
}

static void test_null_out_pointers(void) {
    CHECK_FAILS(NULL, pymem_runtime_new(NULL, NULL), PYMEM_ERR_NULL_ARGUMENT, "out");
    pymem_config cfg;
    pymem_config_init(&cfg);
    CHECK_FAILS(NULL, pymem_runtime_new(&cfg, NULL), PYMEM_ERR_NULL_ARGUMENT, "pymem_runtime_new");

    pymem_runtime *rt = new_runtime(NULL);
    void *keep = pymem_malloc(rt, 40);
    CHECK(keep != NULL);
    const pymem_alloc_stats before = stats_of(rt);
    CHECK_FAILS(rt, pymem_alloc_get_stats(rt, NULL), PYMEM_ERR_NULL_ARGUMENT, "out is NULL");
    CHECK_MESSAGE(rt, "pymem_alloc_get_stats");
    CHECK_FAILS(rt, pymem_debug_malloc_stats(rt, NULL), PYMEM_ERR_NULL_ARGUMENT, "out is NULL");
    CHECK_MESSAGE(rt, "pymem_debug_malloc_stats");
    CHECK_OK(rt, pymem_release_free_arenas(rt, NULL)); /* optional by contract */
    CHECK_STATS_EQ(stats_of(rt), before);
    CHECK_OK(rt, pymem_free(rt, keep));
    CHECK_BLOCKS(rt, 0);
    CHECK_OK(rt, pymem_runtime_free(rt));
}

static void test_invalid_config(void) {
    static const int32_t bad[] = {99, -1, 2, INT32_MAX};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        pymem_config cfg;
        pymem_config_init(&cfg);
        cfg.geometry = bad[i];
        pymem_runtime *rt = (pymem_runtime *)&cfg; /* a sentinel: must stay as it is */
        CHECK_FAILS(NULL, pymem_runtime_new(&cfg, &rt), PYMEM_ERR_INVALID_ARGUMENT, "geometry");
        char number[16];
        snprintf(number, sizeof number, "%d", (int)bad[i]);
        CHECK_MESSAGE(NULL, number);
        CHECK(rt == (pymem_runtime *)&cfg);
    }
}

/* Pointers that are not blocks of this runtime. */
static void test_foreign_pointers(void) {
    pymem_runtime *rt = new_runtime(NULL);
    pymem_runtime *other = new_runtime(NULL);
    void *mine = pymem_malloc(rt, 64); /* an arena exists, so lookups are not trivial */
    CHECK(mine != NULL);
    const pymem_alloc_stats before = stats_of(rt);

    long on_stack = 42;
    CHECK_FAILS(rt, pymem_free(rt, &on_stack), PYMEM_ERR_INVALID_POINTER, "invalid pointer");
    CHECK_MESSAGE(rt, "not a block");
    check_message_names(rt, &on_stack);
    CHECK_NULL_FAILS(rt, pymem_realloc(rt, &on_stack, 128), PYMEM_ERR_INVALID_POINTER, "invalid pointer");
    CHECK_EQ_U64(on_stack, 42);

    void *sys_small = malloc(64);
    void *sys_large = malloc(MIB);
    CHECK(sys_small && sys_large);
    CHECK_FAILS(rt, pymem_free(rt, sys_small), PYMEM_ERR_INVALID_POINTER, "invalid pointer");
    check_message_names(rt, sys_small);
    CHECK_FAILS(rt, pymem_free(rt, sys_large), PYMEM_ERR_INVALID_POINTER, "invalid pointer");
    CHECK_NULL_FAILS(rt, pymem_realloc(rt, sys_small, 10), PYMEM_ERR_INVALID_POINTER, "invalid pointer");
    free(sys_small); /* still ours to free: pymem did not touch it */
    free(sys_large);

    /* Odd addresses: NULL + 1, the top of the address space, unaligned. */
    static const uintptr_t odd[] = {1, 16, 4096, UINTPTR_MAX, UINTPTR_MAX - 15, (uintptr_t)1 << 47,
                                    (uintptr_t)1 << 60};
    for (size_t i = 0; i < sizeof odd / sizeof odd[0]; i++) {
        CHECK_FAILS(rt, pymem_free(rt, (void *)odd[i]), PYMEM_ERR_INVALID_POINTER, "invalid pointer");
        CHECK(pymem_realloc(rt, (void *)odd[i], 8) == NULL);
    }

    /* Blocks of another runtime, small and large, both ways. */
    void *theirs_small = pymem_malloc(other, 64);
    void *theirs_large = pymem_malloc(other, 4000);
    void *theirs_huge = pymem_malloc(other, 300 * KIB);
    CHECK(theirs_small && theirs_large && theirs_huge);
    memset(theirs_small, 0x11, 64);
    const pymem_alloc_stats other_before = stats_of(other);
    CHECK_FAILS(rt, pymem_free(rt, theirs_small), PYMEM_ERR_INVALID_POINTER, "invalid pointer");
    check_message_names(rt, theirs_small);
    CHECK_FAILS(rt, pymem_free(rt, theirs_large), PYMEM_ERR_INVALID_POINTER, "invalid pointer");
    CHECK_FAILS(rt, pymem_free(rt, theirs_huge), PYMEM_ERR_INVALID_POINTER, "invalid pointer");
    CHECK_NULL_FAILS(rt, pymem_realloc(rt, theirs_small, 32), PYMEM_ERR_INVALID_POINTER, "invalid pointer");
    CHECK_FAILS(other, pymem_free(other, mine), PYMEM_ERR_INVALID_POINTER, "invalid pointer");
    CHECK_STATS_EQ(stats_of(other), other_before);
    CHECK(((unsigned char *)theirs_small)[63] == 0x11);
    CHECK_OK(other, pymem_free(other, theirs_small));
    CHECK_OK(other, pymem_free(other, theirs_large));
    CHECK_OK(other, pymem_free(other, theirs_huge));
    CHECK_BLOCKS(other, 0);
    CHECK_OK(other, pymem_runtime_free(other));

    CHECK_STATS_EQ(stats_of(rt), before);
    CHECK_OK(rt, pymem_free(rt, mine));
    CHECK_BLOCKS(rt, 0);
    CHECK_OK(rt, pymem_runtime_free(rt));
}

static void test_interior_pointers(void) {
    pymem_runtime *rt = new_runtime(NULL);
    unsigned char *p = (unsigned char *)pymem_malloc(rt, 64);
    unsigned char *big = (unsigned char *)pymem_malloc(rt, 1000);
    unsigned char *huge = (unsigned char *)pymem_malloc(rt, 200 * KIB);
    CHECK(p && big && huge);
    const pymem_alloc_stats before = stats_of(rt);

    CHECK_FAILS(rt, pymem_free(rt, p + 16), PYMEM_ERR_INVALID_POINTER, "interior");
    CHECK_MESSAGE(rt, "16 bytes into the block");
    check_message_names(rt, p); /* names the block it points into */
    CHECK_FAILS(rt, pymem_free(rt, p + 1), PYMEM_ERR_INVALID_POINTER, "interior");
    CHECK_FAILS(rt, pymem_free(rt, p + 63), PYMEM_ERR_INVALID_POINTER, "interior");
    CHECK_NULL_FAILS(rt, pymem_realloc(rt, p + 8, 100), PYMEM_ERR_INVALID_POINTER, "interior");
    CHECK_FAILS(rt, pymem_free(rt, big + 16), PYMEM_ERR_INVALID_POINTER, "invalid pointer");
    CHECK_FAILS(rt, pymem_free(rt, huge + 4096), PYMEM_ERR_INVALID_POINTER, "invalid pointer");
    CHECK_NULL_FAILS(rt, pymem_realloc(rt, big + 1, 2000), PYMEM_ERR_INVALID_POINTER, "invalid pointer");
    CHECK_STATS_EQ(stats_of(rt), before);

    CHECK_OK(rt, pymem_free(rt, p));
    CHECK_OK(rt, pymem_free(rt, big));
    CHECK_OK(rt, pymem_free(rt, huge));
    CHECK_BLOCKS(rt, 0);
    CHECK_OK(rt, pymem_runtime_free(rt));
}

static void test_double_free(const pymem_config *cfg) {
    pymem_runtime *rt = new_runtime(cfg);
    void *keep = pymem_malloc(rt, 32); /* keeps the pool alive */
    static const size_t sizes[] = {1, 32, 512, 513, 5000, 256 * KIB};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        void *p = pymem_malloc(rt, sizes[i]);
        CHECK(p != NULL);
        CHECK_OK(rt, pymem_free(rt, p));
        const pymem_alloc_stats before = stats_of(rt);
        CHECK_FAILS(rt, pymem_free(rt, p), PYMEM_ERR_DOUBLE_FREE, "double free");
        check_message_names(rt, p);
        CHECK_STATS_EQ(stats_of(rt), before);

        /* realloc of the freed block: NULL with DOUBLE_FREE's (or
         * INVALID_POINTER's) message, nothing allocated. */
        CHECK(pymem_realloc(rt, p, sizes[i] + 1) == NULL);
        const char *m = pymem_last_error(rt);
        CHECKF(strstr(m, "double free") || strstr(m, "invalid pointer"), "message: \"%s\"", m);
        CHECK_STATS_EQ(stats_of(rt), before);
    }
    CHECK_OK(rt, pymem_free(rt, keep));
    CHECK_BLOCKS(rt, 0);
    CHECK_OK(rt, pymem_runtime_free(rt));
}

/* A pointer on a block boundary inside a pool, where no block was ever
 * handed out. pymem.h: INVALID_POINTER is "not a live block ... (foreign,
 * interior, or never handed out)", DOUBLE_FREE "handed out by this runtime
 * but is not allocated now". pymem 0.1.0 answers DOUBLE_FREE ("already
 * freed") for a never-carved block of a pool in use, so both are accepted
 * here; what matters is that it is refused and nothing changes. */
static void test_never_handed_out(void) {
    pymem_runtime *rt = new_runtime(NULL);
    void *first = pymem_malloc(rt, 16); /* the first block of a fresh pool */
    CHECK(first != NULL);
    const pymem_alloc_stats before = stats_of(rt);
    void *beyond = offset_ptr(first, 16 * 100); /* same pool, never carved */
    int32_t st = pymem_free(rt, beyond);
    CHECKF(st == PYMEM_ERR_INVALID_POINTER || st == PYMEM_ERR_DOUBLE_FREE, "got %s",
           pymem_status_name(st));
    CHECK_MESSAGE(rt, "0x");
    CHECK_STATS_EQ(stats_of(rt), before);
    /* A pointer into the arena far from any pool ever used. */
    void *far = offset_ptr(first, 512 * KIB);
    CHECK_FAILS(rt, pymem_free(rt, far), PYMEM_ERR_INVALID_POINTER, "invalid pointer");
    CHECK_STATS_EQ(stats_of(rt), before);
    CHECK_OK(rt, pymem_free(rt, first));
    CHECK_BLOCKS(rt, 0);
    CHECK_OK(rt, pymem_runtime_free(rt));
}

/* cfg.max_bytes: the limit holds, failures change nothing, freeing makes
 * room again. */
static void test_limit(void) {
    pymem_config cfg;
    pymem_config_init(&cfg);
    cfg.max_bytes = 4 * MIB;
    pymem_runtime *rt = new_runtime(&cfg);

    /* One big request over the limit, on an empty runtime. */
    CHECK_NULL_FAILS(rt, pymem_malloc(rt, 64 * MIB), PYMEM_ERR_NO_MEMORY, "out of memory");
    CHECK_MESSAGE(rt, "max_bytes");
    CHECK_NULL_FAILS(rt, pymem_calloc(rt, 64, MIB), PYMEM_ERR_NO_MEMORY, "max_bytes");
    pymem_alloc_stats s = stats_of(rt);
    CHECK_EQ_U64(s.blocks_in_use, 0);
    CHECK_EQ_U64(s.bytes_reserved, 0);

    /* Fill with 256-byte blocks until the allocator refuses. */
    size_t cap = 4 * MIB / 256 + 16, n = 0;
    void **blocks = (void **)malloc(cap * sizeof *blocks);
    CHECK(blocks != NULL);
    for (;;) {
        CHECKF(n < cap, "the limit of 4 MiB was not enforced after %zu blocks", n);
        void *p = pymem_malloc(rt, 256);
        if (p == NULL)
            break;
        blocks[n++] = p;
    }
    CHECK_MESSAGE(rt, "out of memory");
    CHECK_MESSAGE(rt, "max_bytes");
    s = stats_of(rt);
    printf("  limit 4 MiB: %zu blocks of 256 bytes, %llu bytes reserved, %llu arenas\n", n,
           (unsigned long long)s.bytes_reserved, (unsigned long long)s.arenas_current);
    CHECK(s.bytes_reserved <= 4 * MIB);
    CHECK_EQ_U64(s.blocks_in_use, n);
    CHECK(n >= 3 * MIB / 256); /* the limit is not hit far too early */

    /* Full: large blocks and growth are refused too, and change nothing. */
    const pymem_alloc_stats full = stats_of(rt);
    CHECK_NULL_FAILS(rt, pymem_malloc(rt, 1000), PYMEM_ERR_NO_MEMORY, "max_bytes");
    CHECK(pymem_calloc(rt, 1, 256) == NULL);
    memset(blocks[0], 0x77, 256);
    CHECK_NULL_FAILS(rt, pymem_realloc(rt, blocks[0], 100 * KIB), PYMEM_ERR_NO_MEMORY, "out of memory"); /* old block kept */
    CHECK(((unsigned char *)blocks[0])[255] == 0x77);
    CHECK_STATS_EQ(stats_of(rt), full);

    /* Free one: exactly that room comes back. */
    CHECK_OK(rt, pymem_free(rt, blocks[--n]));
    void *again = pymem_malloc(rt, 256);
    CHECK(again != NULL);
    blocks[n++] = again;

    /* Free everything: allocation works again, large ones too. */
    while (n > 0)
        CHECK_OK(rt, pymem_free(rt, blocks[--n]));
    free(blocks);
    CHECK_BLOCKS(rt, 0);
    void *big = pymem_malloc(rt, 2 * MIB);
    CHECKF(big != NULL, "%s", pymem_last_error(rt));
    void *small = pymem_malloc(rt, 100);
    CHECK(small != NULL);
    CHECK_OK(rt, pymem_free(rt, big));
    CHECK_OK(rt, pymem_free(rt, small));
    CHECK_BLOCKS(rt, 0);
    CHECK_OK(rt, pymem_runtime_free(rt));
}

/* Debug hooks: 0xCD fill, guard bytes checked at free and realloc. */
static void test_debug_hooks(void) {
    pymem_config cfg;
    pymem_config_init(&cfg);
    cfg.debug_hooks = 1;
    pymem_runtime *rt = new_runtime(&cfg);

    static const size_t sizes[] = {24, 1, 100, 1000, 200 * KIB};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        const size_t n = sizes[i];
        unsigned char *p = (unsigned char *)pymem_malloc(rt, n);
        CHECK(p != NULL);
        CHECKF((uintptr_t)p % 16 == 0, "%p", (void *)p);
        for (size_t k = 0; k < n; k++)
            CHECKF(p[k] == 0xCD, "byte %zu of a new %zu-byte block is %#x", k, n, p[k]);
        memset(p, 0x42, n);
        const pymem_alloc_stats before = stats_of(rt);

        /* Overrun: one byte past the end. */
        p[n] = 0x00;
        CHECK_FAILS(rt, pymem_free(rt, p), PYMEM_ERR_HEAP_CORRUPTION, "overrun");
        check_message_names(rt, p);
        CHECK_STATS_EQ(stats_of(rt), before); /* still allocated */
        CHECK_NULL_FAILS(rt, pymem_realloc(rt, p, n * 2), PYMEM_ERR_HEAP_CORRUPTION, "overrun");
        CHECK_STATS_EQ(stats_of(rt), before);
        p[n] = 0xFD; /* repair */

        /* Underrun: the byte before the block. */
        p[-1] = 0x00;
        CHECK_FAILS(rt, pymem_free(rt, p), PYMEM_ERR_HEAP_CORRUPTION, "underrun");
        check_message_names(rt, p);
        CHECK_STATS_EQ(stats_of(rt), before);
        p[-1] = 0xFD;

        /* Repaired: realloc keeps the contents, free succeeds. */
        unsigned char *q = (unsigned char *)pymem_realloc(rt, p, n + 8);
        CHECKF(q != NULL, "%s", pymem_last_error(rt));
        for (size_t k = 0; k < n; k++)
            CHECK(q[k] == 0x42);
        for (size_t k = n; k < n + 8; k++)
            CHECK(q[k] == 0xCD);
        CHECK_OK(rt, pymem_free(rt, q));
        CHECK_FAILS(rt, pymem_free(rt, q), PYMEM_ERR_DOUBLE_FREE, "double free");
    }

    /* calloc still zeroes; foreign and interior pointers are refused. */
    unsigned char *z = (unsigned char *)pymem_calloc(rt, 8, 8);
    CHECK(z != NULL);
    for (size_t k = 0; k < 64; k++)
        CHECK(z[k] == 0);
    long on_stack = 0;
    CHECK_FAILS(rt, pymem_free(rt, &on_stack), PYMEM_ERR_INVALID_POINTER, "invalid pointer");
    CHECK_FAILS(rt, pymem_free(rt, z + 16), PYMEM_ERR_INVALID_POINTER, "invalid pointer");
    CHECK_FAILS(rt, pymem_free(rt, (void *)(uintptr_t)8), PYMEM_ERR_INVALID_POINTER,
                "invalid pointer");
    CHECK_OK(rt, pymem_free(rt, z));

    CHECK_BLOCKS(rt, 0);
    CHECK_OK(rt, pymem_runtime_free(rt));
}

int main(void) {
    test_null_runtime();
    test_null_out_pointers();
    test_invalid_config();
    test_foreign_pointers();
    test_interior_pointers();
    test_double_free(NULL);
    pymem_config debug;
    pymem_config_init(&debug);
    debug.debug_hooks = 1;
    test_double_free(&debug);
    test_never_handed_out();
    test_limit();
    test_debug_hooks();
    printf("alloc_bad_input: OK\n");
    return 0;
}
