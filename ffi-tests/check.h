/*
 * check.h: the check macros shared by the C and C++ programs of ffi-tests/.
 *
 * A header, not a program: the runner compiles only the .c and .cpp files.
 * Every check stops the program at the first failure with exit status 1,
 * printing file:line, what was expected, and, for status checks, the status
 * names (pymem_status_name) and both message slots: pymem_last_error(rt) and
 * pymem_last_error(NULL) (the calling thread's slot).
 *
 *   CHECK(cond)                      any condition
 *   CHECKF(cond, fmt, ...)           with a printf-style explanation
 *   CHECK_EQ_U64(a, b)               two integers, both printed on failure
 *   CHECK_STR_EQ(a, b)               two C strings
 *   CHECK_CONTAINS(text, needle)     strstr, both printed on failure
 *   CHECK_STATUS(rt, call, expected) the status of call; rt may be NULL
 *   CHECK_OK(rt, call)               CHECK_STATUS(rt, call, PYMEM_OK)
 *   CHECK_FAILS(rt, call, expected, needle)
 *                                    the status, and the message of rt's
 *                                    slot (or the thread's slot when rt is
 *                                    NULL) is non-empty and contains needle;
 *                                    pymem_last_status(rt) agrees
 *   CHECK_NULL_FAILS(rt, call, expected, needle)
 *                                    a malloc/calloc/realloc returned NULL,
 *                                    pymem_last_status(rt) is expected and
 *                                    the message contains needle
 *   CHECK_MESSAGE(rt, needle)        the last message contains needle
 *   CHECK_BLOCKS(rt, expected)       stats().blocks_in_use == expected
 *   CHECK_STATS_EQ(a, b)             two pymem_alloc_stats equal field by field
 *   CHECK_REFCOUNT(rt, o, expected)  pymem_refcount(rt, o) == expected
 *   CHECK_FAILS_UNCHANGED(stats_rt, rt, call, expected, needle)
 *                                    CHECK_FAILS(rt, ...), and the allocator
 *                                    statistics of stats_rt (a live runtime;
 *                                    rt itself may be NULL) are the same
 *                                    after the call as before it
 *   CHECK_CUDA_OK(c, call)           a pymem_cuda_* call on cache c (may be
 *                                    NULL) succeeded; on failure prints
 *                                    pymem_cuda_last_error(c)
 *   CHECK_CUDA_FAILS(c, call, expected, needle)
 *                                    the status, pymem_cuda_last_status(c)
 *                                    agrees, and pymem_cuda_last_error(c)
 *                                    (the thread's slot when c is NULL)
 *                                    contains needle
 *
 * The helpers below (stats_of, refcount_of, collect_ok, under_valgrind,
 * scaled, rss_bytes) are static inline so that a program which does not use one gets
 * no warning.
 */
#ifndef PYMEM_FFI_CHECK_H
#define PYMEM_FFI_CHECK_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "pymem.h"

#define CHECK_FAIL_EXIT_(...)                                                  \
    do {                                                                       \
        fprintf(stderr, __VA_ARGS__);                                          \
        fputc('\n', stderr);                                                   \
        fflush(stderr);                                                        \
        exit(1);                                                               \
    } while (0)

#define CHECK(cond)                                                            \
    do {                                                                       \
        if (!(cond))                                                           \
            CHECK_FAIL_EXIT_("%s:%d: check failed: %s", __FILE__, __LINE__,    \
                             #cond);                                           \
    } while (0)

/* CHECKF(cond, fmt, args...): the format and its arguments explain a failure. */
#define CHECKF(cond, ...)                                                      \
    do {                                                                       \
        if (!(cond)) {                                                         \
            fprintf(stderr, "%s:%d: check failed: %s: ", __FILE__, __LINE__,   \
                    #cond);                                                    \
            CHECK_FAIL_EXIT_(__VA_ARGS__);                                     \
        }                                                                      \
    } while (0)

#define CHECK_EQ_U64(a, b)                                                     \
    do {                                                                       \
        unsigned long long check_a_ = (unsigned long long)(a);                 \
        unsigned long long check_b_ = (unsigned long long)(b);                 \
        if (check_a_ != check_b_)                                              \
            CHECK_FAIL_EXIT_("%s:%d: check failed: %s == %s (%llu != %llu)",   \
                             __FILE__, __LINE__, #a, #b, check_a_, check_b_);  \
    } while (0)

#define CHECK_STR_EQ(a, b)                                                     \
    do {                                                                       \
        const char *check_a_ = (a);                                            \
        const char *check_b_ = (b);                                            \
        if (check_a_ == NULL || check_b_ == NULL || strcmp(check_a_, check_b_)) \
            CHECK_FAIL_EXIT_("%s:%d: check failed: %s == %s (\"%s\" != \"%s\")", \
                             __FILE__, __LINE__, #a, #b,                       \
                             check_a_ ? check_a_ : "(null)",                   \
                             check_b_ ? check_b_ : "(null)");                  \
    } while (0)

#define CHECK_CONTAINS(text, needle)                                           \
    do {                                                                       \
        const char *check_t_ = (text);                                         \
        const char *check_n_ = (needle);                                       \
        if (check_t_ == NULL || strstr(check_t_, check_n_) == NULL)            \
            CHECK_FAIL_EXIT_("%s:%d: check failed: %s contains \"%s\"\n"       \
                             "  text: \"%s\"",                                 \
                             __FILE__, __LINE__, #text, check_n_,              \
                             check_t_ ? check_t_ : "(null)");                  \
    } while (0)

/* The message a failed call on rt left: rt's slot, or the thread's for NULL. */
static inline const char *check_message_(const pymem_runtime *rt) {
    const char *m = pymem_last_error(rt);
    return m ? m : "(NULL message pointer!)";
}

#define CHECK_STATUS(rt, call, expected)                                       \
    do {                                                                       \
        int32_t check_got_ = (int32_t)(call);                                  \
        int32_t check_want_ = (int32_t)(expected);                             \
        if (check_got_ != check_want_)                                         \
            CHECK_FAIL_EXIT_("%s:%d: %s\n  returned %s (%d), expected %s (%d)\n" \
                             "  pymem_last_error(rt):   \"%s\"\n"              \
                             "  pymem_last_error(NULL): \"%s\"",               \
                             __FILE__, __LINE__, #call,                        \
                             pymem_status_name(check_got_), (int)check_got_,   \
                             pymem_status_name(check_want_), (int)check_want_, \
                             check_message_(rt), check_message_(NULL));        \
    } while (0)

#define CHECK_OK(rt, call) CHECK_STATUS(rt, call, PYMEM_OK)

#define CHECK_MESSAGE(rt, needle)                                              \
    do {                                                                       \
        const char *check_m_ = check_message_(rt);                             \
        CHECKF(check_m_[0] != '\0', "the message of %s is empty", #rt);        \
        CHECK_CONTAINS(check_m_, needle);                                      \
    } while (0)

#define CHECK_FAILS(rt, call, expected, needle)                                \
    do {                                                                       \
        CHECK_STATUS(rt, call, expected);                                      \
        CHECK_STATUS(rt, pymem_last_status(rt), expected);                     \
        CHECK_MESSAGE(rt, needle);                                             \
    } while (0)

/* A pointer-returning call (malloc/calloc/realloc) failed: NULL, and
   pymem_last_status(rt) and the message tell why. */
#define CHECK_NULL_FAILS(rt, call, expected, needle)                           \
    do {                                                                       \
        CHECKF((call) == NULL, "%s did not fail", #call);                      \
        CHECK_STATUS(rt, pymem_last_status(rt), expected);                     \
        CHECK_MESSAGE(rt, needle);                                             \
    } while (0)

/* The allocator's statistics; a failure to read them stops the program. */
static inline pymem_alloc_stats stats_of(pymem_runtime *rt) {
    pymem_alloc_stats s;
    memset(&s, 0, sizeof s);
    CHECK_OK(rt, pymem_alloc_get_stats(rt, &s));
    return s;
}

/* An object's reference count; a failure to read it stops the program. */
static inline intptr_t refcount_of(pymem_runtime *rt, pymem_object *o) {
    ptrdiff_t n = -1;
    CHECK_OK(rt, pymem_refcount(rt, o, &n));
    return (intptr_t)n;
}

/* A full or partial collection that must succeed; returns what it found. */
static inline int64_t collect_ok(pymem_runtime *rt, int generation) {
    int64_t found = -1;
    CHECK_OK(rt, pymem_gc_collect(rt, generation, &found));
    return found;
}

#define CHECK_BLOCKS(rt, expected)                                             \
    CHECK_EQ_U64(stats_of(rt).blocks_in_use, (expected))

/* Statistics equal field by field (a bad call must change nothing). */
#define CHECK_STATS_EQ(a, b)                                                   \
    do {                                                                       \
        pymem_alloc_stats check_sa_ = (a);                                     \
        pymem_alloc_stats check_sb_ = (b);                                     \
        CHECK_EQ_U64(check_sa_.bytes_in_use, check_sb_.bytes_in_use);          \
        CHECK_EQ_U64(check_sa_.bytes_reserved, check_sb_.bytes_reserved);      \
        CHECK_EQ_U64(check_sa_.arenas_current, check_sb_.arenas_current);      \
        CHECK_EQ_U64(check_sa_.pools_in_use, check_sb_.pools_in_use);          \
        CHECK_EQ_U64(check_sa_.blocks_in_use, check_sb_.blocks_in_use);        \
        CHECK_EQ_U64(check_sa_.large_allocations, check_sb_.large_allocations); \
        CHECK_EQ_U64(check_sa_.large_bytes, check_sb_.large_bytes);            \
    } while (0)

/* The exact reference count of an object (PYMEM_IMMORTAL_REFCNT for
   immortal ones). */
#define CHECK_REFCOUNT(rt, o, expected)                                        \
    do {                                                                       \
        ptrdiff_t check_rc_ = -1;                                              \
        CHECK_OK(rt, pymem_refcount(rt, o, &check_rc_));                       \
        CHECK_EQ_U64(check_rc_, (expected));                                   \
    } while (0)

/* A failing call that must change nothing: status, message, and the
   statistics of `stats_rt` before and after. */
#define CHECK_FAILS_UNCHANGED(stats_rt, rt, call, expected, needle)            \
    do {                                                                       \
        const pymem_alloc_stats check_before_ = stats_of(stats_rt);            \
        CHECK_FAILS(rt, call, expected, needle);                               \
        CHECK_STATS_EQ(stats_of(stats_rt), check_before_);                     \
    } while (0)

/* GPU cache calls: the message is the calling thread's on the cache. */
static inline const char *check_cuda_message_(const pymem_cuda_cache *c) {
    const char *m = pymem_cuda_last_error(c);
    return m ? m : "(NULL message pointer!)";
}

#define CHECK_CUDA_STATUS(c, call, expected)                                   \
    do {                                                                       \
        int32_t check_got_ = (int32_t)(call);                                  \
        int32_t check_want_ = (int32_t)(expected);                             \
        if (check_got_ != check_want_)                                         \
            CHECK_FAIL_EXIT_("%s:%d: %s\n  returned %s (%d), expected %s (%d)\n" \
                             "  pymem_cuda_last_error(c): \"%s\"",            \
                             __FILE__, __LINE__, #call,                        \
                             pymem_status_name(check_got_), (int)check_got_,   \
                             pymem_status_name(check_want_), (int)check_want_, \
                             check_cuda_message_(c));                          \
    } while (0)

#define CHECK_CUDA_OK(c, call) CHECK_CUDA_STATUS(c, call, PYMEM_OK)

#define CHECK_CUDA_FAILS(c, call, expected, needle)                            \
    do {                                                                       \
        CHECK_CUDA_STATUS(c, call, expected);                                  \
        CHECK_CUDA_STATUS(c, pymem_cuda_last_status(c), expected);             \
        CHECK_CONTAINS(check_cuda_message_(c), needle);                        \
    } while (0)

/* Non-zero when the runner runs this program under valgrind: shrink sizes. */
static inline int under_valgrind(void) {
    const char *v = getenv("PYMEM_FFI_UNDER_VALGRIND");
    return v != NULL && v[0] != '\0' && strcmp(v, "0") != 0;
}

/* `native` natively, `valgrind` under valgrind. */
static inline size_t scaled(size_t native, size_t valgrind) {
    return under_valgrind() ? valgrind : native;
}

/* Resident bytes of this process: /proc/self/statm field 2 x page size
   (measure RSS only in a program of its own, never beside other tests). */
static inline uint64_t rss_bytes(void) {
    FILE *f = fopen("/proc/self/statm", "r");
    CHECK(f != NULL);
    unsigned long long size = 0, resident = 0;
    CHECK(fscanf(f, "%llu %llu", &size, &resident) == 2);
    fclose(f);
    return (uint64_t)resident * (uint64_t)sysconf(_SC_PAGESIZE);
}

/* Bytes as MiB, for the RSS programs' reports. */
static inline double mib(uint64_t bytes) { return (double)bytes / (1024.0 * 1024.0); }

/* The allocator's "bytes held free, by reason" line of the retention programs. */
static inline void print_held_free(const pymem_alloc_stats *s) {
    printf("  held free: spare arena %.2f MiB, cache %.2f MiB (bound %.2f MiB), class pools %.2f MiB; "
           "%llu arenas mapped\n",
           mib(s->free_bytes_spare_arena), mib(s->free_bytes_cache), mib(s->free_bytes_cache_limit),
           mib(s->free_bytes_class_pools), (unsigned long long)s->arenas_current);
}

#endif /* PYMEM_FFI_CHECK_H */
