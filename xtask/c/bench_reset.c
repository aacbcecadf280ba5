/* bench_reset.c -- `cargo xtask bench reset`: one measurement of
 * pymem_ns_reset on the seed's namespace, in a fresh process.
 *
 * Usage: bench_reset N M
 * Builds, in a namespace with a module and a function, what
 * ../shared/peers/reset_bench.py builds in CPython:
 *   a = N ints (1000 ..), b = N distinct floats, d = M strs (key and value
 *   the same object), c = a small cycle (1 dict, 2 lists);
 * then times one pymem_ns_reset(rt, ns, NULL, &report) (delete the user
 * names, full collection, memory back to the OS) and prints one line:
 *   pymem N M reset_ns rss_start rss_built rss_after names_removed
 *         unreachable objects_freed bytes_returned_to_os user_ns sys_ns
 * (user_ns and sys_ns: the CPU time of the reset in user space and in the
 * kernel, getrusage; the kernel's part is mostly munmap freeing pages).
 * RSS is /proc/self/statm field 2 x the page size: start just before the
 * build, built just before the reset, after just after it.
 */
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include <pymem.h>

#include "seed_namespace.h"

static pymem_runtime *rt;

static void ok(pymem_status st, const char *what) {
    if (st != PYMEM_OK) {
        fprintf(stderr, "bench_reset: %s: %s: %s\n", what, pymem_status_name(st), pymem_last_error(rt));
        exit(1);
    }
}
#define OK(call) ok((call), #call)

static uint64_t rss(void) {
    FILE *f = fopen("/proc/self/statm", "r");
    unsigned long long size = 0, resident = 0;
    if (f == NULL || fscanf(f, "%llu %llu", &size, &resident) != 2) {
        fprintf(stderr, "bench_reset: cannot read /proc/self/statm\n");
        exit(1);
    }
    fclose(f);
    return (uint64_t)resident * (uint64_t)sysconf(_SC_PAGESIZE);
}

static uint64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* User and system CPU time of this process, in nanoseconds. */
static void cpu_ns(uint64_t *user, uint64_t *sys) {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    *user = (uint64_t)ru.ru_utime.tv_sec * 1000000000u + (uint64_t)ru.ru_utime.tv_usec * 1000u;
    *sys = (uint64_t)ru.ru_stime.tv_sec * 1000000000u + (uint64_t)ru.ru_stime.tv_usec * 1000u;
}

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: %s N M\n", argv[0]);
        return 2;
    }
    const long n = atol(argv[1]), m = atol(argv[2]);
    OK(pymem_runtime_new(NULL, &rt));
    pymem_object *ns = NULL;
    OK(pymem_ns_new(rt, "__seed__", 0, &ns));
    seed_module_and_function(rt, ok, ns);
    OK(pymem_gc_collect(rt, 2, NULL));
    const uint64_t rss_start = rss();
    seed_variables(rt, ok, ns, n, m);
    const uint64_t rss_built = rss();

    pymem_reset_report r;
    uint64_t user0, sys0, user1, sys1;
    cpu_ns(&user0, &sys0);
    const uint64_t t0 = now_ns();
    OK(pymem_ns_reset(rt, ns, NULL, &r));
    const uint64_t dt = now_ns() - t0;
    cpu_ns(&user1, &sys1);
    const uint64_t rss_after = rss();
    printf("pymem %ld %ld %" PRIu64 " %" PRIu64 " %" PRIu64 " %" PRIu64 " %" PRIu64 " %" PRIu64 " %" PRIu64 " %" PRIu64
           " %" PRIu64 " %" PRIu64 "\n",
           n, m, dt, rss_start, rss_built, rss_after, r.names_removed, r.unreachable, r.objects_freed,
           r.bytes_returned_to_os, user1 - user0, sys1 - sys0);
    if (r.names_removed != 4) {
        fprintf(stderr, "bench_reset: %" PRIu64 " names removed, not 4\n", r.names_removed);
        return 1;
    }
    OK(pymem_decref(rt, ns));
    OK(pymem_runtime_free(rt));
    return 0;
}
