/*
 * alloc_threads.c: the thread rule of pymem.h. A runtime belongs to one
 * thread at a time (its creator, or the last to attach); every call from
 * another thread gets PYMEM_ERR_BUSY and changes nothing; detach/attach hand
 * it over; different runtimes run on different threads at once; the
 * thread's message slot, pymem_last_error(NULL), is per thread.
 */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pymem.h"
#include "check.h"

#define BUSY_TEXT "belongs to another thread"

/* Runs fn(arg) on a new thread and waits for it. */
static void on_thread(void *(*fn)(void *), void *arg) {
    pthread_t t;
    CHECK(pthread_create(&t, NULL, fn, arg) == 0);
    CHECK(pthread_join(t, NULL) == 0);
}

/* ------------------------------------------------------------------ */
/* A thread that does not own the runtime is refused everything. */

struct foreign_args {
    pymem_runtime *rt;
    void *block; /* a live block of rt, allocated by the owner */
};

static void *foreign_thread(void *arg) {
    struct foreign_args *a = (struct foreign_args *)arg;
    pymem_runtime *rt = a->rt;

    CHECK(pymem_malloc(rt, 16) == NULL);
    /* Called on this thread, pymem_last_error(rt) gives this thread's
     * message (why it was refused), not the owner's. */
    CHECK_MESSAGE(rt, BUSY_TEXT);
    CHECK_MESSAGE(rt, "pymem_malloc");
    CHECK_MESSAGE(NULL, BUSY_TEXT);
    CHECK_NULL_FAILS(rt, pymem_calloc(rt, 2, 8), PYMEM_ERR_BUSY, "pymem_calloc");
    CHECK_NULL_FAILS(rt, pymem_realloc(rt, a->block, 100), PYMEM_ERR_BUSY, "pymem_realloc");

    CHECK_FAILS(rt, pymem_free(rt, a->block), PYMEM_ERR_BUSY, BUSY_TEXT);
    CHECK_MESSAGE(rt, "pymem_free");
    CHECK_FAILS(rt, pymem_free(rt, NULL), PYMEM_ERR_BUSY, BUSY_TEXT);
    pymem_alloc_stats s;
    memset(&s, 0x5A, sizeof s);
    CHECK_FAILS(rt, pymem_alloc_get_stats(rt, &s), PYMEM_ERR_BUSY, "pymem_alloc_get_stats");
    CHECK_EQ_U64(s.blocks_in_use, 0x5A5A5A5A5A5A5A5AULL);
    char *text = NULL;
    CHECK_FAILS(rt, pymem_debug_malloc_stats(rt, &text), PYMEM_ERR_BUSY, BUSY_TEXT);
    CHECK(text == NULL);
    size_t released = 7;
    CHECK_FAILS(rt, pymem_release_free_arenas(rt, &released), PYMEM_ERR_BUSY, BUSY_TEXT);
    CHECK_EQ_U64(released, 7);
    CHECK_FAILS(rt, pymem_runtime_attach(rt), PYMEM_ERR_BUSY, "pymem_runtime_attach");
    CHECK_FAILS(rt, pymem_runtime_detach(rt), PYMEM_ERR_BUSY, "pymem_runtime_detach");
    CHECK_FAILS(rt, pymem_runtime_free(rt), PYMEM_ERR_BUSY, "pymem_runtime_free");

    /* What needs no runtime works on any thread. */
    CHECK_STR_EQ(pymem_status_name(PYMEM_ERR_BUSY), "PYMEM_ERR_BUSY");
    CHECK(pymem_version() != NULL);
    pymem_config cfg;
    pymem_config_init(&cfg);
    CHECK_EQ_U64(cfg.geometry, PYMEM_GEOMETRY_CPYTHON_310);
    return NULL;
}

static void test_foreign_thread(void) {
    pymem_runtime *rt = NULL;
    CHECK_OK(NULL, pymem_runtime_new(NULL, &rt));
    void *block = pymem_malloc(rt, 32);
    CHECK(block != NULL);
    memset(block, 0x33, 32);
    /* Leave a message of the owner's in rt's slot. */
    long on_stack = 0;
    CHECK_FAILS(rt, pymem_free(rt, &on_stack), PYMEM_ERR_INVALID_POINTER, "invalid pointer");
    const pymem_alloc_stats before = stats_of(rt);

    struct foreign_args args = {rt, block};
    on_thread(foreign_thread, &args);

    /* Nothing changed, and the owner's message is still its own. */
    CHECK_STATS_EQ(stats_of(rt), before);
    CHECK(((unsigned char *)block)[31] == 0x33);
    CHECK_MESSAGE(rt, "invalid pointer");
    CHECK(strstr(pymem_last_error(rt), BUSY_TEXT) == NULL);
    /* The owner keeps full use. */
    CHECK_OK(rt, pymem_runtime_attach(rt)); /* already the owner: OK */
    CHECK_OK(rt, pymem_free(rt, block));
    CHECK_BLOCKS(rt, 0);
    CHECK_OK(rt, pymem_runtime_free(rt));
}

/* ------------------------------------------------------------------ */
/* detach / attach hand a runtime from thread to thread. */

struct handover_args {
    pymem_runtime *rt;
    void *from_main;  /* allocated by main before the handover; freed here */
    void *for_main;   /* allocated here; main frees it after taking it back */
    pthread_barrier_t *barrier;
};

static void *handover_thread(void *arg) {
    struct handover_args *a = (struct handover_args *)arg;
    pymem_runtime *rt = a->rt;
    CHECK_OK(rt, pymem_runtime_attach(rt));
    CHECK_OK(rt, pymem_runtime_attach(rt)); /* twice is fine */

    /* Full use on this thread, including blocks main allocated. */
    CHECK(((unsigned char *)a->from_main)[99] == 0x44);
    CHECK_OK(rt, pymem_free(rt, a->from_main));
    void *blocks[200];
    for (size_t i = 0; i < 200; i++) {
        blocks[i] = pymem_malloc(rt, 1 + i * 5);
        CHECK(blocks[i] != NULL);
        memset(blocks[i], (int)i, 1 + i * 5);
    }
    CHECK_BLOCKS(rt, 200);
    for (size_t i = 0; i < 200; i++)
        CHECK_OK(rt, pymem_free(rt, blocks[i]));
    CHECK_BLOCKS(rt, 0);
    char *report = NULL;
    CHECK_OK(rt, pymem_debug_malloc_stats(rt, &report));
    CHECK_CONTAINS(report, "# arenas allocated total");
    pymem_string_free(report);
    a->for_main = pymem_malloc(rt, 700);
    CHECK(a->for_main != NULL);
    memset(a->for_main, 0x55, 700);

    /* While this thread holds it, main's attach is refused. */
    pthread_barrier_wait(a->barrier); /* 1: attached */
    pthread_barrier_wait(a->barrier); /* 2: main tried */

    CHECK_OK(rt, pymem_runtime_detach(rt));
    /* Detached: this thread is refused too now. */
    CHECK(pymem_malloc(rt, 8) == NULL);
    CHECK_MESSAGE(rt, "pymem_runtime_attach first");
    CHECK_STATUS(rt, pymem_runtime_detach(rt), PYMEM_ERR_BUSY);
    return NULL;
}

static void test_handover(void) {
    pymem_runtime *rt = NULL;
    CHECK_OK(NULL, pymem_runtime_new(NULL, &rt));
    struct handover_args args;
    memset(&args, 0, sizeof args);
    pthread_barrier_t barrier;
    CHECK(pthread_barrier_init(&barrier, NULL, 2) == 0);
    args.rt = rt;
    args.barrier = &barrier;
    args.from_main = pymem_malloc(rt, 100);
    CHECK(args.from_main != NULL);
    memset(args.from_main, 0x44, 100);

    CHECK_OK(rt, pymem_runtime_detach(rt));
    /* Detached: the creator is refused like anyone else. */
    CHECK(pymem_malloc(rt, 8) == NULL);
    CHECK_MESSAGE(rt, BUSY_TEXT);
    CHECK_FAILS(rt, pymem_runtime_detach(rt), PYMEM_ERR_BUSY, "pymem_runtime_detach");
    CHECK_FAILS(rt, pymem_runtime_free(rt), PYMEM_ERR_BUSY, "pymem_runtime_free");

    pthread_t t;
    CHECK(pthread_create(&t, NULL, handover_thread, &args) == 0);
    pthread_barrier_wait(&barrier); /* 1: the thread holds it */
    CHECK_FAILS(rt, pymem_runtime_attach(rt), PYMEM_ERR_BUSY, BUSY_TEXT);
    CHECK(pymem_malloc(rt, 8) == NULL);
    pthread_barrier_wait(&barrier); /* 2 */
    CHECK(pthread_join(t, NULL) == 0);
    pthread_barrier_destroy(&barrier);

    /* Back on main. */
    CHECK_OK(rt, pymem_runtime_attach(rt));
    pymem_alloc_stats s = stats_of(rt);
    CHECK_EQ_U64(s.blocks_in_use, 1);
    CHECK_EQ_U64(s.large_allocations, 1);
    CHECK_EQ_U64(s.large_bytes, 700);
    CHECK(((unsigned char *)args.for_main)[699] == 0x55);
    CHECK_OK(rt, pymem_free(rt, args.for_main));
    CHECK_BLOCKS(rt, 0);
    CHECK_OK(rt, pymem_runtime_free(rt));
}

/* A runtime created on one thread may be freed on another that attached. */
static void *attach_and_free_thread(void *arg) {
    pymem_runtime *rt = (pymem_runtime *)arg;
    CHECK_OK(rt, pymem_runtime_attach(rt));
    CHECK_BLOCKS(rt, 3);
    CHECK_OK(rt, pymem_runtime_free(rt)); /* frees the 3 blocks too */
    return NULL;
}

static void test_free_on_other_thread(void) {
    pymem_runtime *rt = NULL;
    CHECK_OK(NULL, pymem_runtime_new(NULL, &rt));
    CHECK(pymem_malloc(rt, 10) != NULL);
    CHECK(pymem_malloc(rt, 1000) != NULL);
    CHECK(pymem_malloc(rt, 200 * 1024) != NULL);
    char *report = NULL;
    CHECK_OK(rt, pymem_debug_malloc_stats(rt, &report));
    CHECK_OK(rt, pymem_runtime_detach(rt));
    on_thread(attach_and_free_thread, rt);
    pymem_string_free(report); /* any thread, after the runtime is gone */
}

/* ------------------------------------------------------------------ */
/* Two runtimes, two threads, at the same time. */

struct worker_args {
    pymem_runtime *rt; /* NULL: the worker creates its own */
    pthread_barrier_t *barrier;
    unsigned seed;
    size_t rounds, blocks;
    uint64_t peak_blocks;
};

static size_t next_size(unsigned *state) {
    *state = *state * 1103515245u + 12345u;
    unsigned r = (*state >> 16) & 0x7FFF;
    /* Mostly small, some large (513..4096). */
    return (r % 16 == 0) ? 513 + r % 3584 : 1 + r % 512;
}

static void *worker_thread(void *arg) {
    struct worker_args *a = (struct worker_args *)arg;
    pymem_runtime *rt = a->rt;
    if (rt == NULL) {
        CHECK_OK(NULL, pymem_runtime_new(NULL, &rt));
    } else {
        CHECK_OK(rt, pymem_runtime_attach(rt));
    }
    unsigned char **p = (unsigned char **)malloc(a->blocks * sizeof *p);
    size_t *n = (size_t *)malloc(a->blocks * sizeof *n);
    CHECK(p && n);
    unsigned state = a->seed;
    pthread_barrier_wait(a->barrier); /* start together */

    for (size_t round = 0; round < a->rounds; round++) {
        for (size_t i = 0; i < a->blocks; i++) {
            n[i] = next_size(&state);
            p[i] = (unsigned char *)pymem_malloc(rt, n[i]);
            CHECKF(p[i] != NULL, "%s", pymem_last_error(rt));
            p[i][0] = (unsigned char)(a->seed + i);
            p[i][n[i] - 1] = (unsigned char)(a->seed + i);
        }
        pymem_alloc_stats s = stats_of(rt);
        CHECK_EQ_U64(s.blocks_in_use, a->blocks);
        if (s.blocks_in_use > a->peak_blocks)
            a->peak_blocks = s.blocks_in_use;
        /* Free every other block, grow the rest. */
        for (size_t i = 0; i < a->blocks; i += 2) {
            CHECK(p[i][0] == (unsigned char)(a->seed + i));
            CHECK(p[i][n[i] - 1] == (unsigned char)(a->seed + i));
            CHECK_OK(rt, pymem_free(rt, p[i]));
        }
        CHECK_BLOCKS(rt, a->blocks / 2);
        for (size_t i = 1; i < a->blocks; i += 2) {
            unsigned char *q = (unsigned char *)pymem_realloc(rt, p[i], n[i] * 2);
            CHECK(q != NULL);
            CHECK(q[0] == (unsigned char)(a->seed + i));
            CHECK(q[n[i] - 1] == (unsigned char)(a->seed + i));
            CHECK_OK(rt, pymem_free(rt, q));
        }
        CHECK_BLOCKS(rt, 0);
    }
    free(p);
    free(n);
    CHECK_EQ_U64(stats_of(rt).bytes_in_use, 0);
    CHECK_OK(rt, pymem_runtime_free(rt));
    return NULL;
}

static void test_two_runtimes_at_once(void) {
    pthread_barrier_t barrier;
    CHECK(pthread_barrier_init(&barrier, NULL, 2) == 0);
    const size_t rounds = scaled(30, 4), blocks = scaled(30000, 4000);

    /* One runtime is created by its worker; the other on main, handed over. */
    pymem_runtime *handed = NULL;
    CHECK_OK(NULL, pymem_runtime_new(NULL, &handed));
    CHECK_OK(handed, pymem_runtime_detach(handed));

    struct worker_args a = {NULL, &barrier, 1, rounds, blocks, 0};
    struct worker_args b = {handed, &barrier, 2, rounds, blocks, 0};
    pthread_t ta, tb;
    CHECK(pthread_create(&ta, NULL, worker_thread, &a) == 0);
    CHECK(pthread_create(&tb, NULL, worker_thread, &b) == 0);
    CHECK(pthread_join(ta, NULL) == 0);
    CHECK(pthread_join(tb, NULL) == 0);
    pthread_barrier_destroy(&barrier);
    CHECK_EQ_U64(a.peak_blocks, blocks);
    CHECK_EQ_U64(b.peak_blocks, blocks);
    printf("  two runtimes at once: 2 x %zu rounds of %zu blocks\n", rounds, blocks);
}

/* ------------------------------------------------------------------ */
/* pymem_last_error(NULL) is per thread. */

static void *slot_thread(void *arg) {
    (void)arg;
    /* A new thread's slot is empty: main's failure is not visible here. */
    CHECK_STR_EQ(pymem_last_error(NULL), "");
    CHECK_FAILS(NULL, pymem_free(NULL, NULL), PYMEM_ERR_NULL_ARGUMENT, "pymem_free");
    CHECK(strstr(pymem_last_error(NULL), "pymem_malloc") == NULL);
    pymem_runtime *rt = NULL;
    pymem_config cfg;
    pymem_config_init(&cfg);
    cfg.geometry = 42;
    CHECK_FAILS(NULL, pymem_runtime_new(&cfg, &rt), PYMEM_ERR_INVALID_ARGUMENT, "geometry 42");
    return NULL;
}

static void test_thread_slots(void) {
    CHECK_NULL_FAILS(NULL, pymem_malloc(NULL, 1), PYMEM_ERR_NULL_ARGUMENT, "pymem_malloc");
    const char *mine = pymem_last_error(NULL);
    on_thread(slot_thread, NULL);
    /* The other thread's failures did not touch this thread's slot. */
    CHECK(pymem_last_error(NULL) == mine);
    CHECK_MESSAGE(NULL, "pymem_malloc");
    CHECK(strstr(pymem_last_error(NULL), "pymem_free") == NULL);
    CHECK(strstr(pymem_last_error(NULL), "geometry") == NULL);
}

int main(void) {
    test_foreign_thread();
    test_handover();
    test_free_on_other_thread();
    test_two_runtimes_at_once();
    test_thread_slots();
    printf("alloc_threads: OK\n");
    return 0;
}
