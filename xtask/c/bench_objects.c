/* bench_objects.c -- object create/destroy cost for `cargo xtask bench objects`.
 *
 * Usage: bench_objects SIDE CASE [N]        (N default 1,000,000; 0 is allowed)
 *   SIDE   pymem     built with -DWITH_PYMEM, linked to libpymem (its C ABI)
 *          cpython   built with -DWITH_PY, linked to libpython (its C API,
 *                    after Py_Initialize)
 *   CASE   int       N x { o = int(1000 + i); decref(o) }        (outside the small-int cache)
 *          float     N x { o = float(i * 0.5); decref(o) }       (the float free list is reused)
 *          list3     N x { l = []; 3 x append(int(1..3)), our int ref dropped; decref(l) }
 *          dict      keys "k0".."k<N-1>" made as str objects BEFORE timing (hash not yet
 *                    computed, as for a fresh str), value = the small int 1;
 *                    timed: N inserts into one dict that starts empty    -> dict_insert
 *                    then timed alone: decref of the dict (keys survive) -> dict_dealloc
 *          int_all   N ints kept in a pre-touched C array, then all decref'd in allocation
 *                    order -> int_all (total per int), int_all_alloc, int_all_free
 * Output: one line per metric,
 *   "<side> <metric> <N> <ns per op> <total ms> <minor faults in the timed region>".
 *
 * The cases are those of the peer baseline (shared/peers/objects_bench.c), so
 * the CPython numbers compare with its RESULTS.md section 5. This is our own
 * source, one file for both sides: the two builds run the same loops, with
 * the calls of their side.
 *
 * Every case checks its results, so that nothing can be skipped:
 *   - every pymem call's status is checked (CPython: every returned pointer);
 *   - values and sizes are read back through the API on every 64th op
 *     (pymem_int_value / PyLong_AsLong, pymem_float_value, pymem_list_len),
 *     plus CPython's free per-op macros (Py_SIZE, PyFloat_AS_DOUBLE,
 *     PyList_GET_SIZE), and summed against the expected totals;
 *   - dict sizes and key reference counts before and after the dealloc;
 *   - pymem: after the case (and pymem_clear_free_lists), the allocator's
 *     blocks_in_use and bytes_in_use are back to their baseline, taken after
 *     the runtime made its immortal singletons. int_all also checks that the
 *     N ints are N blocks in use while they live.
 * A failed check prints why and exits 3.
 *
 * Each timed region is a noinline function named timed_<metric> so that
 * `valgrind --tool=callgrind --collect-atstart=no --toggle-collect=timed_<metric>`
 * counts the instructions of that region alone (xtask: (Ir(N) - Ir(0)) / N).
 */
#ifdef WITH_PY
#define PY_SSIZE_T_CLEAN
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

#if defined(WITH_PY) == defined(WITH_PYMEM)
#error "build with exactly one of -DWITH_PYMEM and -DWITH_PY"
#endif

#define NOINLINE __attribute__((noipa)) /* no inlining, no clones: callgrind finds it by name */
#define SAMPLE 63 /* ops with (i & SAMPLE) == 0 read their result back */

/* ------------------------------------------------------------------ */
/* Timing and checks                                                   */
/* ------------------------------------------------------------------ */

typedef struct {
    double ns;
    long faults;
} stamp;

static stamp mark(void) {
    struct rusage ru;
    struct timespec ts;
    getrusage(RUSAGE_SELF, &ru);
    clock_gettime(CLOCK_MONOTONIC, &ts);
    stamp s = {(double)ts.tv_sec * 1e9 + (double)ts.tv_nsec, ru.ru_minflt};
    return s;
}

static const char *side_name;

static void report(const char *metric, long n, double ns, long faults) {
    printf("%s %s %ld %.3f %.3f %ld\n", side_name, metric, n, n > 0 ? ns / (double)n : 0.0, ns / 1e6, faults);
}

static void report_span(const char *metric, long n, stamp a, stamp b) {
    report(metric, n, b.ns - a.ns, b.faults - a.faults);
}

static void fail(const char *what);

static void expect(int ok, const char *what) {
    if (!ok) fail(what);
}

/* How many ops read their result back, and the expected sums of what they read. */
static int64_t sampled_count(long n) { return n > 0 ? (n + SAMPLE) / (SAMPLE + 1) : 0; }

static int64_t sampled_int_sum(long n, int64_t base) {
    int64_t sum = 0;
    for (long i = 0; i < n; i++)
        if ((i & SAMPLE) == 0) sum += base + i;
    return sum;
}

static double sampled_float_sum(long n) {
    double sum = 0;
    for (long i = 0; i < n; i++)
        if ((i & SAMPLE) == 0) sum += (double)i * 0.5;
    return sum;
}

/* Fresh C arrays are touched before timing, so that their page faults are
 * not counted as the objects'. */
static void *touched_array(long n, size_t elem) {
    size_t bytes = (size_t)(n > 0 ? n : 1) * elem;
    void *p = malloc(bytes);
    if (p == NULL) fail("malloc of the C array");
    memset(p, 0xA5, bytes);
    return p;
}

/* ------------------------------------------------------------------ */
/* pymem through its C ABI                                             */
/* ------------------------------------------------------------------ */
#ifdef WITH_PYMEM
typedef pymem_object obj;

static pymem_runtime *rt;
static pymem_alloc_stats baseline;

static void fail(const char *what) {
    fprintf(stderr, "bench_objects pymem: check failed: %s (last error: %s)\n", what, pymem_last_error(rt));
    exit(3);
}

static pymem_alloc_stats stats(void) {
    pymem_alloc_stats s;
    expect(pymem_alloc_get_stats(rt, &s) == PYMEM_OK, "pymem_alloc_get_stats");
    return s;
}

static ptrdiff_t refcount(obj *o) {
    ptrdiff_t n = -1;
    expect(pymem_refcount(rt, o, &n) == PYMEM_OK, "pymem_refcount");
    return n;
}

static void side_start(void) {
    side_name = "pymem";
    expect(pymem_runtime_new(NULL, &rt) == PYMEM_OK, "pymem_runtime_new");
    /* The first object call makes the immortal singletons; the baseline is
     * taken after it. */
    obj *none = NULL;
    expect(pymem_none(rt, &none) == PYMEM_OK, "pymem_none");
    expect(pymem_clear_free_lists(rt) == PYMEM_OK, "pymem_clear_free_lists");
    baseline = stats();
}

static void side_finish(void) {
    expect(pymem_clear_free_lists(rt) == PYMEM_OK, "pymem_clear_free_lists");
    pymem_alloc_stats end = stats();
    if (end.blocks_in_use != baseline.blocks_in_use || end.bytes_in_use != baseline.bytes_in_use) {
        fprintf(stderr, "bench_objects pymem: %llu blocks (%llu bytes) in use at the end, baseline %llu (%llu)\n",
                (unsigned long long)end.blocks_in_use, (unsigned long long)end.bytes_in_use,
                (unsigned long long)baseline.blocks_in_use, (unsigned long long)baseline.bytes_in_use);
        exit(3);
    }
    expect(pymem_runtime_free(rt) == PYMEM_OK, "pymem_runtime_free");
}

NOINLINE static void timed_int(long n) {
    pymem_status bad = PYMEM_OK;
    int64_t sum = 0;
    for (long i = 0; i < n; i++) {
        obj *o = NULL;
        bad |= pymem_int_new(rt, 1000 + i, &o);
        if ((i & SAMPLE) == 0) {
            int64_t v = 0;
            bad |= pymem_int_value(rt, o, &v);
            sum += v;
        }
        bad |= pymem_decref(rt, o);
    }
    expect(bad == PYMEM_OK, "a call failed in the int loop");
    expect(sum == sampled_int_sum(n, 1000), "int: sum of the sampled values");
}

NOINLINE static void timed_float(long n) {
    pymem_status bad = PYMEM_OK;
    double sum = 0;
    for (long i = 0; i < n; i++) {
        obj *o = NULL;
        bad |= pymem_float_new(rt, (double)i * 0.5, &o);
        if ((i & SAMPLE) == 0) {
            double v = 0;
            bad |= pymem_float_value(rt, o, &v);
            sum += v;
        }
        bad |= pymem_decref(rt, o);
    }
    expect(bad == PYMEM_OK, "a call failed in the float loop");
    expect(sum == sampled_float_sum(n), "float: sum of the sampled values");
}

NOINLINE static void timed_list3(long n) {
    pymem_status bad = PYMEM_OK;
    int64_t sizes = 0;
    for (long i = 0; i < n; i++) {
        obj *l = NULL;
        bad |= pymem_list_new(rt, &l);
        for (int64_t v = 1; v <= 3; v++) {
            obj *o = NULL;
            bad |= pymem_int_new(rt, v, &o); /* small-int cache: no allocation */
            bad |= pymem_list_append(rt, l, o);
            bad |= pymem_decref(rt, o);
        }
        if ((i & SAMPLE) == 0) {
            size_t len = 0;
            bad |= pymem_list_len(rt, l, &len);
            sizes += (int64_t)len;
        }
        bad |= pymem_decref(rt, l);
    }
    expect(bad == PYMEM_OK, "a call failed in the list3 loop");
    expect(sizes == 3 * sampled_count(n), "list3: sampled lengths");
}

NOINLINE static pymem_status timed_dict_insert(obj *d, obj **keys, obj *one, long n) {
    pymem_status bad = PYMEM_OK;
    for (long i = 0; i < n; i++) bad |= pymem_dict_set(rt, d, keys[i], one);
    return bad;
}

NOINLINE static pymem_status timed_dict_dealloc(obj *d) { return pymem_decref(rt, d); }

static void bench_dict(long n) {
    obj **keys = touched_array(n, sizeof *keys);
    char buf[32];
    for (long i = 0; i < n; i++) {
        int len = snprintf(buf, sizeof buf, "k%ld", i);
        expect(pymem_str_new(rt, buf, (size_t)len, &keys[i]) == PYMEM_OK, "pymem_str_new");
    }
    obj *one = NULL, *d = NULL;
    expect(pymem_int_new(rt, 1, &one) == PYMEM_OK, "pymem_int_new(1)");
    expect(pymem_dict_new(rt, &d) == PYMEM_OK, "pymem_dict_new");

    stamp t0 = mark();
    pymem_status st = timed_dict_insert(d, keys, one, n);
    stamp t1 = mark();
    expect(st == PYMEM_OK, "pymem_dict_set");
    size_t len = 0;
    expect(pymem_dict_len(rt, d, &len) == PYMEM_OK && len == (size_t)n, "dict size");
    if (n > 0) expect(refcount(keys[n - 1]) == 2 && refcount(keys[0]) == 2, "key refcount in the dict");
    expect(refcount(one) == (ptrdiff_t)PYMEM_IMMORTAL_REFCNT, "the small int 1 is immortal");
    expect(refcount(d) == 1, "dict refcount");

    stamp t2 = mark();
    st = timed_dict_dealloc(d);
    stamp t3 = mark();
    expect(st == PYMEM_OK, "pymem_decref(dict)");
    if (n > 0) expect(refcount(keys[n - 1]) == 1 && refcount(keys[0]) == 1, "key refcount after the dealloc");

    report_span("dict_insert", n, t0, t1);
    report_span("dict_dealloc", n, t2, t3);
    pymem_status bad = PYMEM_OK;
    for (long i = 0; i < n; i++) bad |= pymem_decref(rt, keys[i]);
    expect(bad == PYMEM_OK, "decref of the keys");
    free(keys);
}

NOINLINE static pymem_status timed_int_all(obj **arr, long n, stamp *marks) {
    pymem_status bad = PYMEM_OK;
    marks[0] = mark();
    for (long i = 0; i < n; i++) bad |= pymem_int_new(rt, 1000 + i, &arr[i]);
    marks[1] = mark();
    /* Untimed between marks[1] and marks[2]: the N ints are N blocks. */
    pymem_alloc_stats s;
    bad |= pymem_alloc_get_stats(rt, &s);
    if (s.blocks_in_use != baseline.blocks_in_use + (uint64_t)n) fail("int_all: N ints are not N live blocks");
    int64_t sum = 0;
    marks[2] = mark();
    for (long i = 0; i < n; i++) {
        if ((i & SAMPLE) == 0) {
            int64_t v = 0;
            bad |= pymem_int_value(rt, arr[i], &v);
            sum += v;
        }
        bad |= pymem_decref(rt, arr[i]);
    }
    marks[3] = mark();
    if (sum != sampled_int_sum(n, 1000)) fail("int_all: sum of the sampled values");
    return bad;
}

static void bench_int_all(long n) {
    obj **arr = touched_array(n, sizeof *arr);
    stamp m[4];
    expect(timed_int_all(arr, n, m) == PYMEM_OK, "a call failed in the int_all loops");
    free(arr);
    report("int_all", n, (m[1].ns - m[0].ns) + (m[3].ns - m[2].ns), (m[1].faults - m[0].faults) + (m[3].faults - m[2].faults));
    report_span("int_all_alloc", n, m[0], m[1]);
    report_span("int_all_free", n, m[2], m[3]);
}
#endif /* WITH_PYMEM */

/* ------------------------------------------------------------------ */
/* CPython through its C API                                           */
/* ------------------------------------------------------------------ */
#ifdef WITH_PY
static void fail(const char *what) {
    fprintf(stderr, "bench_objects cpython: check failed: %s\n", what);
    if (PyErr_Occurred()) PyErr_Print();
    exit(3);
}

static void side_start(void) {
    side_name = "cpython";
    Py_Initialize();
}

static void side_finish(void) {
    fflush(stdout);
    if (Py_FinalizeEx() < 0) exit(4);
}

NOINLINE static void timed_int(long n) {
    long digits = 0;
    int64_t sum = 0;
    for (long i = 0; i < n; i++) {
        PyObject *o = PyLong_FromLong(1000 + i);
        if (o == NULL) fail("PyLong_FromLong");
        digits += Py_SIZE(o); /* 1 digit for every value here */
        if ((i & SAMPLE) == 0) sum += PyLong_AsLong(o);
        Py_DECREF(o);
    }
    expect(digits == n, "int: digit count");
    expect(sum == sampled_int_sum(n, 1000), "int: sum of the sampled values");
}

NOINLINE static void timed_float(long n) {
    double all = 0, sum = 0;
    for (long i = 0; i < n; i++) {
        PyObject *o = PyFloat_FromDouble((double)i * 0.5);
        if (o == NULL) fail("PyFloat_FromDouble");
        all += PyFloat_AS_DOUBLE(o);
        if ((i & SAMPLE) == 0) sum += PyFloat_AsDouble(o);
        Py_DECREF(o);
    }
    expect(all == 0.25 * (double)n * (double)(n - 1), "float: sum");
    expect(sum == sampled_float_sum(n), "float: sum of the sampled values");
}

NOINLINE static void timed_list3(long n) {
    int64_t all = 0, sizes = 0;
    for (long i = 0; i < n; i++) {
        PyObject *l = PyList_New(0);
        if (l == NULL) fail("PyList_New");
        for (long v = 1; v <= 3; v++) {
            PyObject *o = PyLong_FromLong(v); /* small-int cache: no allocation */
            if (o == NULL || PyList_Append(l, o) < 0) fail("PyList_Append");
            Py_DECREF(o);
        }
        all += PyList_GET_SIZE(l);
        if ((i & SAMPLE) == 0) sizes += PyList_Size(l);
        Py_DECREF(l);
    }
    expect(all == 3 * (int64_t)n, "list3: sizes");
    expect(sizes == 3 * sampled_count(n), "list3: sampled lengths");
}

NOINLINE static int timed_dict_insert(PyObject *d, PyObject **keys, PyObject *one, long n) {
    int bad = 0;
    for (long i = 0; i < n; i++) bad |= PyDict_SetItem(d, keys[i], one);
    return bad;
}

NOINLINE static void timed_dict_dealloc(PyObject *d) { Py_DECREF(d); }

static void bench_dict(long n) {
    PyObject **keys = touched_array(n, sizeof *keys);
    char buf[32];
    for (long i = 0; i < n; i++) {
        snprintf(buf, sizeof buf, "k%ld", i);
        keys[i] = PyUnicode_FromString(buf);
        if (keys[i] == NULL) fail("PyUnicode_FromString");
    }
    PyObject *one = PyLong_FromLong(1);
    Py_ssize_t one_rc = Py_REFCNT(one);
    PyObject *d = PyDict_New();
    if (d == NULL) fail("PyDict_New");

    stamp t0 = mark();
    int bad = timed_dict_insert(d, keys, one, n);
    stamp t1 = mark();
    expect(bad == 0, "PyDict_SetItem");
    expect(PyDict_GET_SIZE(d) == n, "dict size");
    expect(Py_REFCNT(one) == one_rc + n, "value refcount");
    if (n > 0) expect(Py_REFCNT(keys[n - 1]) == 2 && Py_REFCNT(keys[0]) == 2, "key refcount in the dict");

    stamp t2 = mark();
    timed_dict_dealloc(d);
    stamp t3 = mark();
    expect(Py_REFCNT(one) == one_rc, "value refcount after the dealloc");
    if (n > 0) expect(Py_REFCNT(keys[n - 1]) == 1 && Py_REFCNT(keys[0]) == 1, "key refcount after the dealloc");

    report_span("dict_insert", n, t0, t1);
    report_span("dict_dealloc", n, t2, t3);
    for (long i = 0; i < n; i++) Py_DECREF(keys[i]);
    Py_DECREF(one);
    free(keys);
}

NOINLINE static void timed_int_all(PyObject **arr, long n, stamp *marks) {
    marks[0] = mark();
    for (long i = 0; i < n; i++) {
        arr[i] = PyLong_FromLong(1000 + i);
        if (arr[i] == NULL) fail("PyLong_FromLong");
    }
    marks[1] = mark();
    marks[2] = marks[1];
    long digits = 0;
    int64_t sum = 0;
    for (long i = 0; i < n; i++) {
        digits += Py_SIZE(arr[i]);
        if ((i & SAMPLE) == 0) sum += PyLong_AsLong(arr[i]);
        Py_DECREF(arr[i]);
    }
    marks[3] = mark();
    if (digits != n) fail("int_all: digit count");
    if (sum != sampled_int_sum(n, 1000)) fail("int_all: sum of the sampled values");
}

static void bench_int_all(long n) {
    PyObject **arr = touched_array(n, sizeof *arr);
    stamp m[4];
    timed_int_all(arr, n, m);
    free(arr);
    report("int_all", n, (m[1].ns - m[0].ns) + (m[3].ns - m[2].ns), (m[1].faults - m[0].faults) + (m[3].faults - m[2].faults));
    report_span("int_all_alloc", n, m[0], m[1]);
    report_span("int_all_free", n, m[2], m[3]);
}
#endif /* WITH_PY */

/* ------------------------------------------------------------------ */
/* The cases, shared by both sides                                     */
/* ------------------------------------------------------------------ */

static void bench_loop(const char *metric, void (*loop)(long), long n) {
    stamp t0 = mark();
    loop(n);
    stamp t1 = mark();
    report_span(metric, n, t0, t1);
}

int main(int argc, char **argv) {
    const char *side =
#ifdef WITH_PYMEM
        "pymem";
#else
        "cpython";
#endif
    if (argc < 3) {
        fprintf(stderr, "usage: %s %s int|float|list3|dict|int_all [N]\n", argv[0], side);
        return 1;
    }
    if (strcmp(argv[1], side) != 0) {
        fprintf(stderr, "bench_objects: this binary is the %s side, not %s\n", side, argv[1]);
        return 1;
    }
    long n = argc > 3 ? atol(argv[3]) : 1000000L;
    if (n < 0) {
        fprintf(stderr, "bench_objects: N must be >= 0\n");
        return 1;
    }
    const char *c = argv[2];
    if (strcmp(c, "int") && strcmp(c, "float") && strcmp(c, "list3") && strcmp(c, "dict") && strcmp(c, "int_all")) {
        fprintf(stderr, "bench_objects: unknown case %s\n", c);
        return 1;
    }
    side_start();
    if (!strcmp(c, "int")) bench_loop("int", timed_int, n);
    else if (!strcmp(c, "float")) bench_loop("float", timed_float, n);
    else if (!strcmp(c, "list3")) bench_loop("list3", timed_list3, n);
    else if (!strcmp(c, "dict")) bench_dict(n);
    else bench_int_all(n);
    side_finish();
    return 0;
}
