/* bench_gc.c -- the cycle collector's cost for `cargo xtask bench gc` (pymem side).
 *
 * Usage: bench_gc SHAPE MODE N        one measurement, one line of output
 *        bench_gc mem [K]             the memory of one instance of each shape's type
 *
 *   SHAPE  cycle2        N instances paired into N/2 two-cycles (a.ref = b; b.ref = a);
 *                        host type "Node", no payload, one attribute (inline values)
 *          ring          N instances in one doubly linked ring (x.prev, x.next);
 *                        host type "DNode", no payload, two attributes
 *          cycle2_slots  as cycle2, type "NodeS" declared with slots {"ref"}: CPython's
 *                        __slots__ (a fixed place per name, no other names), set
 *                        with pymem_setattr and traversed by pymem itself
 *          ring_slots    as ring, "DNodeS" with slots {"prev", "next"}
 *          cycle2_host   as cycle2, the reference held in the payload ("NodeH"):
 *                        reported by a traverse callback, dropped by clear -- a C
 *                        extension type's tp_traverse/tp_clear (not a peer shape:
 *                        xtask compares it with CPython's __slots__ classes)
 *          ring_host     as ring, prev/next held in the payload ("DNodeH")
 *          list_cycle2   N lists in N/2 two-cycles: a = []; b = [a]; a.append(b)
 *          list_ring     N lists [prev, next] in one doubly linked ring
 *          dict_cycle2   N dicts in N/2 two-cycles: a['x'] = b; b['x'] = a
 *                        (the containers programs are made of; the key is the
 *                        interned str 'x', made before the baseline)
 *   MODE   garbage       build (automatic collection disabled), drop every outside
 *                        reference, time ONE pymem_gc_collect(rt, 2) that finds and
 *                        frees all N; checks found == N
 *          live          build, keep it reachable (cycle2: a list holding one member
 *                        of each pair; ring: the head), one warm-up full collect,
 *                        then time a full collect that frees nothing; checks found == 0
 *
 * These are the graphs and steps of the peer baseline shared/peers/gc_bench.py
 * (its run_garbage/run_live, built the same way: the cycle2 pairs are appended
 * to a list in both modes, and `del obj` drops it in garbage mode); this is
 * our own source. xtask runs CPython's side with python3 in the same run.
 *
 * Output (MODE runs), one line:
 *   "pymem <shape> <mode> <N> <collect ns> <found> <bytes/obj> <blocks/obj>
 *    <collect minor faults> <peak RSS growth in the first collect, bytes>"
 * bytes/obj and blocks/obj: the allocator's bytes_in_use / blocks_in_use above
 * the baseline per object, just before the collection that frees them (garbage:
 * the timed one; live: after the outside references are dropped) -- the
 * instances alone, the list and the outside references gone.
 * The peak RSS growth (ru_maxrss) of the process's first collection is the
 * collector's transient scratch memory when it exceeds what was freed before.
 *
 * `mem` prints, per shape, "mem <shape> <instance block bytes> <values bytes>
 * <payload bytes> <pymem_sizeof> <blocks>" measured over K instances (default
 * 10,000): bytes_in_use after K pymem_instance_new, then after their
 * attributes are set (a values array of its own, if any); then the same for
 * "empty", an instance of a type with nothing in it.
 *
 * Checks (a failure prints why and exits 3): every call's status; that the
 * instances are tracked; found == N (garbage) and 0 (live, both collects);
 * that the host clear ran for every object of a garbage _host run (at least
 * N times: the collector's clear, then the one before each dealloc); and that,
 * after the run and pymem_clear_free_lists, the allocator's blocks_in_use and
 * bytes_in_use are back to the baseline taken before the build (after the
 * types and their attribute names exist).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <pymem.h>

typedef pymem_object obj;

static pymem_runtime *rt;
static pymem_alloc_stats baseline;
static uint64_t clears; /* host clear callbacks run */

static void fail(const char *what) {
    fprintf(stderr, "bench_gc: check failed: %s (last error: %s)\n", what, pymem_last_error(rt));
    exit(3);
}

static void expect(int ok, const char *what) {
    if (!ok) fail(what);
}

#define OK(call) expect((call) == PYMEM_OK, #call)

static double now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static struct rusage usage(void) {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru;
}

static pymem_alloc_stats stats(void) {
    pymem_alloc_stats s;
    OK(pymem_alloc_get_stats(rt, &s));
    return s;
}

/* ------------------------------------------------------------------ */
/* The types                                                           */
/* ------------------------------------------------------------------ */

/* The payload of the slots types: up to two references (NodeS uses [0]). */
typedef struct {
    obj *ref[2];
} slots;

static slots *payload(obj *o) {
    void *p = NULL;
    OK(pymem_instance_payload(rt, o, &p));
    return p;
}

/* userdata: the number of references in the payload (1 or 2). The
   payload is at its fixed offset (PYMEM_INSTANCE_PAYLOAD_OFFSET), as a
   host's hot traverse and clear reach it without a call (as CPython's
   slot members sit at fixed offsets). */
static int slots_traverse(obj *self, pymem_visit_fn visit, void *arg, void *userdata) {
    size_t n = (size_t)(uintptr_t)userdata;
    slots *s = (slots *)(void *)((char *)self + PYMEM_INSTANCE_PAYLOAD_OFFSET);
    for (size_t i = 0; i < n; i++) {
        if (s->ref[i] != NULL) {
            int r = visit(s->ref[i], arg);
            if (r != 0) return r;
        }
    }
    return 0;
}

static void slots_clear(pymem_runtime *r, obj *self, void *userdata) {
    size_t n = (size_t)(uintptr_t)userdata;
    clears++;
    slots *s = (slots *)(void *)((char *)self + PYMEM_INSTANCE_PAYLOAD_OFFSET);
    for (size_t i = 0; i < n; i++) {
        obj *child = s->ref[i];
        s->ref[i] = NULL;
        if (child != NULL && pymem_decref(r, child) != PYMEM_OK) fail("pymem_decref in clear");
    }
}

/* How a shape's type keeps its references. */
enum kind {
    ATTRS, /* attributes set by name (values inline, names learnt as set) */
    SLOTS, /* attributes declared up front: CPython's __slots__ */
    HOST,  /* the payload, with traverse/clear callbacks */
    LIST,  /* the nodes are lists: field i is item i */
    DICT   /* the nodes are dicts: field i is the value of key FIELDS[ring][i] */
};

typedef struct {
    const char *name;  /* the shape */
    int ring;          /* ring (prev/next) or cycle2 (ref) */
    enum kind kind;
    pymem_type *type;
} shape;

static shape shapes[] = {
    {"cycle2", 0, ATTRS, NULL}, {"ring", 1, ATTRS, NULL},      {"cycle2_slots", 0, SLOTS, NULL},
    {"ring_slots", 1, SLOTS, NULL}, {"cycle2_host", 0, HOST, NULL}, {"ring_host", 1, HOST, NULL},
    {"list_cycle2", 0, LIST, NULL}, {"list_ring", 1, LIST, NULL},  {"dict_cycle2", 0, DICT, NULL},
};
#define NSHAPES (sizeof shapes / sizeof shapes[0])

static const char *const FIELDS[2][2] = {{"ref", NULL}, {"prev", "next"}};
/* The dict shapes' keys, interned strs made before the baseline (as the
   literal 'x' of a Python program is interned at compile time). */
static obj *dict_keys[2][2];

static int is_container(const shape *s) { return s->kind == LIST || s->kind == DICT; }

static size_t nfields(const shape *s) { return s->ring ? 2 : 1; }

static pymem_type *make_type(const shape *s) {
    if (is_container(s)) return NULL;
    static const char *const names[3][2] = {{"Node", "DNode"}, {"NodeS", "DNodeS"}, {"NodeH", "DNodeH"}};
    pymem_type_spec spec;
    pymem_type_spec_init(&spec);
    spec.name = names[s->kind][s->ring];
    if (s->kind == SLOTS) {
        spec.slots = (const char *const *)FIELDS[s->ring];
        spec.nslots = nfields(s);
    }
    if (s->kind == HOST) {
        spec.payload_size = nfields(s) * sizeof(obj *);
        spec.traverse = slots_traverse;
        spec.clear = slots_clear;
        spec.userdata = (void *)(uintptr_t)nfields(s);
    }
    pymem_type *t = NULL;
    OK(pymem_type_new(rt, &spec, &t));
    return t;
}

/* o.<field i> = v (v NULL: None for an attribute, nothing for the payload). */
static void set_field(const shape *s, obj *o, size_t i, obj *v) {
    if (is_container(s)) {
        obj *value = v;
        if (value == NULL) OK(pymem_none(rt, &value));
        if (s->kind == DICT) {
            OK(pymem_dict_set(rt, o, dict_keys[s->ring][i], value));
        } else {
            size_t len = 0;
            OK(pymem_list_len(rt, o, &len));
            if (i < len) OK(pymem_list_set(rt, o, i, value));
            else OK(pymem_list_append(rt, o, value));
        }
        return;
    }
    if (s->kind != HOST) {
        obj *value = v;
        if (value == NULL) OK(pymem_none(rt, &value));
        OK(pymem_setattr(rt, o, FIELDS[s->ring][i], value));
        return;
    }
    slots *p = payload(o);
    if (v != NULL) OK(pymem_incref(rt, v));
    obj *old = p->ref[i];
    p->ref[i] = v;
    if (old != NULL) OK(pymem_decref(rt, old));
}

/* A new instance, its fields None (as __init__ does): a new reference. */
static obj *new_node(const shape *s) {
    obj *o = NULL;
    if (s->kind == LIST) {
        /* cycle2: [] (the item is appended); ring: [None, None] */
        OK(pymem_list_new(rt, &o));
        if (s->ring)
            for (size_t i = 0; i < nfields(s); i++) set_field(s, o, i, NULL);
        return o;
    }
    if (s->kind == DICT) {
        OK(pymem_dict_new(rt, &o));
        return o;
    }
    OK(pymem_instance_new(rt, s->type, &o));
    if (s->kind != HOST)
        for (size_t i = 0; i < nfields(s); i++) set_field(s, o, i, NULL);
    return o;
}

/* gc_bench.py's build_cycle2: a list holding one member of each pair. */
static obj *build_cycle2(const shape *s, long n) {
    obj *out = NULL;
    OK(pymem_list_new(rt, &out));
    for (long i = 0; i < n / 2; i++) {
        obj *a = new_node(s), *b = new_node(s);
        set_field(s, a, 0, b);
        set_field(s, b, 0, a);
        OK(pymem_list_append(rt, out, a));
        OK(pymem_decref(rt, a));
        OK(pymem_decref(rt, b));
    }
    return out;
}

/* gc_bench.py's build_ring: the head (field 0 = prev, 1 = next). */
static obj *build_ring(const shape *s, long n) {
    obj *head = new_node(s);
    set_field(s, head, 0, head);
    set_field(s, head, 1, head);
    obj *tail = head; /* owned when it is not the head */
    for (long i = 0; i < n - 1; i++) {
        obj *x = new_node(s);
        set_field(s, x, 0, tail);
        set_field(s, tail, 1, x);
        if (tail != head) OK(pymem_decref(rt, tail));
        tail = x;
    }
    set_field(s, tail, 1, head);
    set_field(s, head, 0, tail);
    if (tail != head) OK(pymem_decref(rt, tail));
    return head;
}

static void check_tracked(obj *o, const char *what) {
    int tracked = 0;
    OK(pymem_gc_is_tracked(rt, o, &tracked));
    expect(tracked == 1, what);
}

/* ------------------------------------------------------------------ */
/* One measurement                                                     */
/* ------------------------------------------------------------------ */

static void setup_types(void) {
    /* The first object call makes the immortal singletons; each type gets
       its attribute names (kept by the type for good) from one instance,
       so that the baseline already holds them. */
    for (size_t r = 0; r < 2; r++)
        for (size_t f = 0; f < 2; f++)
            if (FIELDS[r][f] != NULL) OK(pymem_str_intern(rt, FIELDS[r][f], strlen(FIELDS[r][f]), &dict_keys[r][f]));
    for (size_t i = 0; i < NSHAPES; i++) {
        shapes[i].type = make_type(&shapes[i]);
        obj *o = new_node(&shapes[i]);
        OK(pymem_decref(rt, o));
    }
    OK(pymem_clear_free_lists(rt));
}

static void check_baseline(const char *when) {
    OK(pymem_clear_free_lists(rt));
    pymem_alloc_stats end = stats();
    if (end.blocks_in_use != baseline.blocks_in_use || end.bytes_in_use != baseline.bytes_in_use) {
        fprintf(stderr, "bench_gc: %s: %llu blocks (%llu bytes) in use, baseline %llu (%llu)\n", when,
                (unsigned long long)end.blocks_in_use, (unsigned long long)end.bytes_in_use,
                (unsigned long long)baseline.blocks_in_use, (unsigned long long)baseline.bytes_in_use);
        exit(3);
    }
}

/* Bytes and blocks in use above the baseline, per object. */
static void per_object(long n, double *bytes, double *blocks) {
    pymem_alloc_stats s = stats();
    *bytes = (double)(s.bytes_in_use - baseline.bytes_in_use) / (double)n;
    *blocks = (double)(s.blocks_in_use - baseline.blocks_in_use) / (double)n;
}

static void run(const shape *s, int live, long n) {
    OK(pymem_gc_collect(rt, 2, NULL)); /* gc.collect(); gc.disable() */
    OK(pymem_gc_disable(rt));
    baseline = stats();
    clears = 0;

    obj *root = s->ring ? build_ring(s, n) : build_cycle2(s, n);
    check_tracked(root, "the outside reference is tracked");
    if (!s->ring) {
        obj *first = NULL;
        OK(pymem_list_get(rt, root, 0, &first));
        check_tracked(first, "an instance is tracked");
        OK(pymem_decref(rt, first));
    }

    int64_t found = -1;
    double bytes = 0, blocks = 0;
    long maxrss0 = usage().ru_maxrss;
    if (!live) {
        OK(pymem_decref(rt, root)); /* del obj: everything is cyclic garbage */
        per_object(n, &bytes, &blocks);
    } else {
        OK(pymem_gc_collect(rt, 2, &found)); /* warm-up: merge into the oldest generation */
        expect(found == 0, "live: the warm-up collect found nothing");
    }
    long maxrss1 = usage().ru_maxrss;

    struct rusage r0 = usage();
    double t0 = now_ns();
    pymem_status st = pymem_gc_collect(rt, 2, &found);
    double t1 = now_ns();
    struct rusage r1 = usage();
    OK(st);

    if (!live) {
        expect(found == n, "garbage: the collect found every object");
        if (s->kind == HOST) expect(clears >= (uint64_t)n, "garbage: clear ran for every object");
        maxrss1 = r1.ru_maxrss; /* the timed collect is the first */
    } else {
        expect(found == 0, "live: the timed collect found nothing");
        OK(pymem_decref(rt, root));
        per_object(n, &bytes, &blocks);
        int64_t freed = -1;
        OK(pymem_gc_collect(rt, 2, &freed));
        expect(freed == n, "live: after del, the collect found every object");
    }
    check_baseline("after the run");
    OK(pymem_gc_enable(rt));

    long rss_growth = maxrss1 > maxrss0 ? (maxrss1 - maxrss0) * 1024 : 0;
    printf("pymem %s %s %ld %.0f %lld %.2f %.3f %ld %ld\n", s->name, live ? "live" : "garbage", n, t1 - t0,
           (long long)found, bytes, blocks, r1.ru_minflt - r0.ru_minflt, rss_growth);
}

/* ------------------------------------------------------------------ */
/* The memory of one instance                                          */
/* ------------------------------------------------------------------ */

static void mem_line(const char *name, pymem_type *type, const shape *s, long k, obj **objs) {
    baseline = stats();
    for (long j = 0; j < k; j++) OK(pymem_instance_new(rt, type, &objs[j]));
    pymem_alloc_stats a = stats();
    for (long j = 0; j < k; j++)
        if (s != NULL && s->kind != HOST)
            for (size_t f = 0; f < nfields(s); f++) set_field(s, objs[j], f, NULL);
    pymem_alloc_stats b = stats();
    size_t size = 0;
    OK(pymem_sizeof(rt, objs[0], &size));
    for (long j = 0; j < k; j++) OK(pymem_decref(rt, objs[j]));
    check_baseline("after mem");
    printf("mem %s %.2f %.2f %zu %zu %.3f\n", name, (double)(a.bytes_in_use - baseline.bytes_in_use) / (double)k,
           (double)(b.bytes_in_use - a.bytes_in_use) / (double)k,
           s != NULL && s->kind == HOST ? nfields(s) * sizeof(obj *) : 0, size,
           (double)(b.blocks_in_use - baseline.blocks_in_use) / (double)k);
}

static void mem(long k) {
    obj **objs = calloc((size_t)k, sizeof *objs);
    if (objs == NULL) fail("calloc");
    for (size_t i = 0; i < NSHAPES; i++)
        if (!is_container(&shapes[i])) mem_line(shapes[i].name, shapes[i].type, &shapes[i], k, objs);
    /* An instance with nothing in it: its block is the header, the
       collector's links and the instance fields (the overhead measure). */
    pymem_type_spec spec;
    pymem_type_spec_init(&spec);
    spec.name = "Empty";
    pymem_type *empty = NULL;
    OK(pymem_type_new(rt, &spec, &empty));
    mem_line("empty", empty, NULL, k, objs);
    free(objs);
}

int main(int argc, char **argv) {
    const char *usage_text = "usage: bench_gc cycle2|ring|cycle2_slots|ring_slots|cycle2_host|ring_host|list_cycle2|list_ring|dict_cycle2\n"
                             "                garbage|live N\n"
                             "       bench_gc mem [K]\n";
    if (argc < 2) {
        fputs(usage_text, stderr);
        return 1;
    }
    int is_mem = strcmp(argv[1], "mem") == 0;
    const shape *s = NULL;
    int live = 0;
    long n = 0;
    if (is_mem) {
        n = argc > 2 ? atol(argv[2]) : 10000L;
    } else {
        for (size_t i = 0; i < NSHAPES; i++)
            if (strcmp(argv[1], shapes[i].name) == 0) s = &shapes[i];
        if (s == NULL || argc != 4 || (strcmp(argv[2], "garbage") && strcmp(argv[2], "live"))) {
            fputs(usage_text, stderr);
            return 1;
        }
        live = strcmp(argv[2], "live") == 0;
        n = atol(argv[3]);
    }
    if (n < 2 || (!is_mem && s->ring == 0 && n % 2 != 0)) {
        fprintf(stderr, "bench_gc: N must be >= 2 (and even for cycle2)\n");
        return 1;
    }

    OK(pymem_runtime_new(NULL, &rt));
    setup_types();
    if (is_mem) mem(n);
    else run(s, live, n);
    OK(pymem_runtime_free(rt));
    return 0;
}
