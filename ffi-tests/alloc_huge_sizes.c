/*
 * alloc_huge_sizes.c: requests so large that no allocator can serve them
 * (within a page of SIZE_MAX, and other sizes past the address space) fail
 * cleanly: NULL with an "out of memory" message, the runtime not poisoned,
 * nothing changed, and nothing handed to the system allocator that it would
 * have to reject (valgrind flags malloc/realloc sizes that look negative).
 *
 * A regression test: obmalloc once rounded large sizes up to whole pages
 * with an unchecked multiply, which overflowed within a page of SIZE_MAX:
 * builds with overflow checks panicked (NULL with PYMEM_ERR_PANIC, runtime
 * poisoned), release builds wrapped the mapping size to 0 and passed the
 * size to libc malloc, which valgrind reports as a "fishy (possibly
 * negative)" argument. Both show up here (the first natively against a
 * dev build of the library, the second under valgrind).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pymem.h"
#include "check.h"

static void check_refused(pymem_runtime *rt, void *p, const char *what) {
    CHECKF(p == NULL, "%s succeeded", what);
    const char *m = pymem_last_error(rt);
    CHECKF(strstr(m, "out of memory") != NULL, "%s: message \"%s\"", what, m);
    CHECKF(strstr(m, "poisoned") == NULL, "%s poisoned the runtime: \"%s\"", what, m);
}

static void run(const pymem_config *cfg, const char *label) {
    pymem_runtime *rt = NULL;
    CHECK_OK(NULL, pymem_runtime_new(cfg, &rt));
    void *small = pymem_malloc(rt, 100);
    void *large = pymem_malloc(rt, 5000);
    void *mapped = pymem_malloc(rt, 300 * 1024);
    CHECK(small && large && mapped);
    memset(small, 0x61, 100);
    memset(large, 0x62, 5000);
    memset(mapped, 0x63, 300 * 1024);
    const pymem_alloc_stats before = stats_of(rt);

    static const size_t huge[] = {
        SIZE_MAX, SIZE_MAX - 1, SIZE_MAX - 15, SIZE_MAX - 100, SIZE_MAX - 4094,
        SIZE_MAX / 2 + 1, (size_t)1 << 62, (size_t)1 << 48,
    };
    for (size_t i = 0; i < sizeof huge / sizeof huge[0]; i++) {
        char what[96];
        snprintf(what, sizeof what, "%s: malloc(%zu)", label, huge[i]);
        check_refused(rt, pymem_malloc(rt, huge[i]), what);
        snprintf(what, sizeof what, "%s: calloc(1, %zu)", label, huge[i]);
        check_refused(rt, pymem_calloc(rt, 1, huge[i]), what);
        snprintf(what, sizeof what, "%s: realloc(small, %zu)", label, huge[i]);
        check_refused(rt, pymem_realloc(rt, small, huge[i]), what);
        snprintf(what, sizeof what, "%s: realloc(large, %zu)", label, huge[i]);
        check_refused(rt, pymem_realloc(rt, large, huge[i]), what);
        snprintf(what, sizeof what, "%s: realloc(mapped, %zu)", label, huge[i]);
        check_refused(rt, pymem_realloc(rt, mapped, huge[i]), what);
        CHECK_STATS_EQ(stats_of(rt), before);
    }

    /* Still usable, and the old blocks are intact. */
    void *p = pymem_malloc(rt, 16);
    CHECKF(p != NULL, "%s: %s", label, pymem_last_error(rt));
    CHECK(((unsigned char *)small)[99] == 0x61);
    CHECK(((unsigned char *)large)[4999] == 0x62);
    CHECK(((unsigned char *)mapped)[300 * 1024 - 1] == 0x63);
    CHECK_OK(rt, pymem_free(rt, p));
    CHECK_OK(rt, pymem_free(rt, small));
    CHECK_OK(rt, pymem_free(rt, large));
    CHECK_OK(rt, pymem_free(rt, mapped));
    CHECK_BLOCKS(rt, 0);
    CHECK_OK(rt, pymem_runtime_free(rt));
}

int main(void) {
    pymem_config cfg;
    pymem_config_init(&cfg);
    run(&cfg, "defaults");
    cfg.debug_hooks = 1;
    run(&cfg, "debug hooks");
    pymem_config_init(&cfg);
    cfg.max_bytes = 64 * 1024 * 1024;
    run(&cfg, "max_bytes");
    printf("alloc_huge_sizes: OK\n");
    return 0;
}
