/* dist_smoke.c -- the program `cargo xtask test-all` builds against an
 * installed prefix (`cargo xtask dist`) with `pkg-config --cflags --libs pymem`
 * and runs: the header, the library and its version agree, and a runtime
 * can be made, used and freed.
 *
 * Usage: dist_smoke EXPECTED_VERSION      exit 0 on success
 */
#include <stdio.h>
#include <string.h>

#include <pymem.h>

#define STR2(x) #x
#define STR(x) STR2(x)
#define HEADER_VERSION STR(PYMEM_VERSION_MAJOR) "." STR(PYMEM_VERSION_MINOR) "." STR(PYMEM_VERSION_PATCH)

static int fail(const char *what, pymem_status st) {
    fprintf(stderr, "dist_smoke: %s failed: %s (%s)\n", what, pymem_status_name(st), pymem_last_error(NULL));
    return 1;
}

int main(int argc, char **argv) {
    const char *version = pymem_version();
    printf("pymem_version() = %s, header = %s\n", version, HEADER_VERSION);
    if (strcmp(version, HEADER_VERSION) != 0) {
        fprintf(stderr, "dist_smoke: library and header versions differ\n");
        return 1;
    }
    if (argc > 1 && strcmp(version, argv[1]) != 0) {
        fprintf(stderr, "dist_smoke: expected version %s\n", argv[1]);
        return 1;
    }

    pymem_runtime *rt = NULL;
    pymem_status st = pymem_runtime_new(NULL, &rt);
    if (st != PYMEM_OK) return fail("pymem_runtime_new", st);

    char *p = pymem_malloc(rt, 32);
    if (p == NULL) return fail("pymem_malloc", PYMEM_ERR_NO_MEMORY);
    memcpy(p, "hello from an installed pymem", 30);
    st = pymem_free(rt, p);
    if (st != PYMEM_OK) return fail("pymem_free", st);
    st = pymem_free(rt, p);
    if (st != PYMEM_ERR_DOUBLE_FREE) {
        fprintf(stderr, "dist_smoke: second free gave %s, expected PYMEM_ERR_DOUBLE_FREE\n", pymem_status_name(st));
        return 1;
    }

    pymem_alloc_stats stats;
    st = pymem_alloc_get_stats(rt, &stats);
    if (st != PYMEM_OK) return fail("pymem_alloc_get_stats", st);
    if (stats.blocks_in_use != 0) {
        fprintf(stderr, "dist_smoke: %llu blocks still in use\n", (unsigned long long)stats.blocks_in_use);
        return 1;
    }
    st = pymem_runtime_free(rt);
    if (st != PYMEM_OK) return fail("pymem_runtime_free", st);
    puts("dist_smoke: ok");
    return 0;
}
