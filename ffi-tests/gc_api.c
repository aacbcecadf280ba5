/*
 * gc_api.c: every entry point of the cycle collector's C API (issue 4,
 * point 4), and what the collector does for C hosts:
 *
 *   - bad input for each call: NULL runtime and out-pointers, invalid
 *     generations (CPython's ValueError: PYMEM_ERR_INVALID_ARGUMENT),
 *     negative thresholds, unknown callback ids (PYMEM_ERR_KEY), objects
 *     that are not live objects of the runtime, a bad gc_profile;
 *   - collect per generation and the counts it leaves; freeze, unfreeze,
 *     get_freeze_count (frozen garbage is not collected);
 *   - get_objects per generation (the result list not in itself),
 *     get_referrers and get_referents on built-in and host types (a Node
 *     whose traverse reports the child in its payload);
 *   - get_stats after collections; set_debug/get_debug and the debug sink:
 *     DEBUG_STATS lines in CPython 3.11's exact wording, DEBUG_COLLECTABLE
 *     lines with the objects' addresses, stderr when no sink is set;
 *     DEBUG_SAVEALL keeps garbage alive in pymem_gc_garbage (some of it
 *     left to pymem_runtime_free: valgrind checks nothing leaks);
 *   - callbacks "start"/"stop" with their info, added and removed by id,
 *     for manual and automatic collections;
 *   - automatic collection once more than threshold0 (700) tracked
 *     containers were allocated, at the end of that call (count0 resets);
 *     threshold0 = 0 and pymem_gc_disable turn it off; the CPython 3.13
 *     profile's (2000, 10, 10);
 *   - host types in cycles (Node: traverse reports the payload child, clear
 *     drops it) collected with clear and dealloc called; a type without
 *     traverse hides its cycle, as in CPython;
 *   - PEP 442: a finalizer that resurrects its object (pymem_incref and a
 *     saved pointer): the object survives, is finalized, its finalizer never
 *     runs again, and it is collected once released;
 *   - a 1,000,000-long ring of lists and of Nodes, and a list nested
 *     1,000,000 deep in a cycle (10,000 under valgrind), collected on a
 *     256 KiB thread stack: no recursion (issue 4, point 6).
 */
#include <inttypes.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "pymem.h"
#include "check.h"

static pymem_runtime *rt;
static pymem_object *none_obj;

static void drop(pymem_object *o) { CHECK_OK(rt, pymem_decref(rt, o)); }

static intptr_t count(pymem_object *o) { return refcount_of(rt, o); }

static int64_t collect(int generation) { return collect_ok(rt, generation); }

static void get_count(int64_t out[3]) { CHECK_OK(rt, pymem_gc_get_count(rt, out)); }

static pymem_object *new_list(void) {
    pymem_object *l = NULL;
    CHECK_OK(rt, pymem_list_new(rt, &l));
    return l;
}

static size_t list_len(pymem_object *l) {
    size_t n = 0;
    CHECK_OK(rt, pymem_list_len(rt, l, &n));
    return n;
}

/* How many items of `list` are `o`. */
static size_t occurrences(pymem_object *list, pymem_object *o) {
    size_t n = list_len(list), hits = 0;
    for (size_t i = 0; i < n; i++) {
        pymem_object *item = NULL;
        CHECK_OK(rt, pymem_list_get(rt, list, i, &item));
        hits += pymem_is(item, o);
        drop(item);
    }
    return hits;
}

/* The objects of get_objects(generation) include `o` (and never the list). */
static int in_generation(int generation, pymem_object *o) {
    pymem_object *objs = NULL;
    CHECK_OK(rt, pymem_gc_get_objects(rt, generation, &objs));
    CHECK(occurrences(objs, objs) == 0);
    int in = occurrences(objs, o) > 0;
    drop(objs);
    return in;
}

/* Two lists referring to each other, with no outside reference left. */
static void make_list_cycle(pymem_object **a_out, pymem_object **b_out) {
    pymem_object *a = new_list(), *b = new_list();
    CHECK_OK(rt, pymem_list_append(rt, a, b));
    CHECK_OK(rt, pymem_list_append(rt, b, a));
    drop(a);
    drop(b);
    if (a_out) *a_out = a;
    if (b_out) *b_out = b;
}

/* ------------------------------------------------------------------------ */
/* Node: a host type holding one child reference in its payload, reported
   by traverse, dropped by clear. Dealloc frees a malloc'd host buffer
   (valgrind reports a leak if a dealloc is skipped). */

typedef struct {
    pymem_object *child;
    char *buffer;
    int64_t id;
    int clears;
} node_payload;

static struct {
    size_t traverses, clears, deallocs, finalizes;
} node_stats;

/* userdata: the runtime the type belongs to. */
static int node_traverse(pymem_object *self, pymem_visit_fn visit, void *arg, void *userdata) {
    node_stats.traverses++;
    /* pymem_instance_payload may be called in traverse: it changes nothing. */
    void *p = NULL;
    if (pymem_instance_payload((pymem_runtime *)userdata, self, &p) != PYMEM_OK) return 0;
    node_payload *np = p;
    if (np->child != NULL) {
        int r = visit(np->child, arg);
        if (r != 0) return r;
    }
    return 0;
}

static void node_clear(pymem_runtime *r, pymem_object *self, void *userdata) {
    (void)userdata;
    node_stats.clears++;
    void *p = NULL;
    CHECK_OK(r, pymem_instance_payload(r, self, &p));
    node_payload *np = p;
    np->clears++;
    pymem_object *child = np->child;
    np->child = NULL;
    if (child != NULL) CHECK_OK(r, pymem_decref(r, child));
}

static void node_dealloc(pymem_object *self, void *payload, void *userdata) {
    (void)self;
    (void)userdata;
    node_stats.deallocs++;
    node_payload *np = payload;
    free(np->buffer);
    np->buffer = NULL;
}

static pymem_type *define_node(pymem_runtime *r, const char *name, int with_traverse) {
    pymem_type_spec spec;
    pymem_type_spec_init(&spec);
    spec.name = name;
    spec.payload_size = sizeof(node_payload);
    spec.traverse = with_traverse ? node_traverse : NULL;
    spec.clear = node_clear;
    spec.dealloc = node_dealloc;
    spec.userdata = r;
    pymem_type *t = NULL;
    CHECK_OK(r, pymem_type_new(r, &spec, &t));
    return t;
}

static node_payload *payload_of(pymem_runtime *r, pymem_object *n) {
    void *p = NULL;
    CHECK_OK(r, pymem_instance_payload(r, n, &p));
    return p;
}

/* A new Node holding a new reference to `child` (NULL allowed); with a
   malloc'd buffer for dealloc to free when `with_buffer`. */
static pymem_object *new_node(pymem_runtime *r, pymem_type *t, pymem_object *child, int64_t id, int with_buffer) {
    pymem_object *n = NULL;
    CHECK_OK(r, pymem_instance_new(r, t, &n));
    node_payload *np = payload_of(r, n);
    if (child != NULL) CHECK_OK(r, pymem_incref(r, child));
    np->child = child;
    np->id = id;
    if (with_buffer) {
        np->buffer = malloc(16);
        CHECK(np->buffer != NULL);
    }
    return n;
}

/* Sets a Node's child (taking a new reference; the old one is dropped). */
static void node_set_child(pymem_runtime *r, pymem_object *n, pymem_object *child) {
    node_payload *np = payload_of(r, n);
    CHECK_OK(r, pymem_incref(r, child));
    pymem_object *old = np->child;
    np->child = child;
    if (old != NULL) CHECK_OK(r, pymem_decref(r, old));
}

static pymem_type *node_type;

/* ------------------------------------------------------------------------ */

static void test_bad_input(void) {
    int64_t v3[3];
    int64_t found = 0;
    size_t n = 0;
    uint32_t flags = 0;
    uint64_t id = 0;
    int yes = 0;
    pymem_gc_gen_stats st[3];
    pymem_object *out = NULL;
    pymem_object *l = new_list();

    /* NULL runtime: the thread's slot says why. */
    CHECK_FAILS(NULL, pymem_gc_collect(NULL, 2, &found), PYMEM_ERR_NULL_ARGUMENT, "runtime is NULL");
    CHECK_FAILS(NULL, pymem_gc_freeze(NULL), PYMEM_ERR_NULL_ARGUMENT, "pymem_gc_freeze");
    CHECK_FAILS(NULL, pymem_gc_unfreeze(NULL), PYMEM_ERR_NULL_ARGUMENT, "pymem_gc_unfreeze");
    CHECK_FAILS(NULL, pymem_gc_get_freeze_count(NULL, &n), PYMEM_ERR_NULL_ARGUMENT, "runtime is NULL");
    CHECK_FAILS(NULL, pymem_gc_get_objects(NULL, -1, &out), PYMEM_ERR_NULL_ARGUMENT, "runtime is NULL");
    CHECK_FAILS(NULL, pymem_gc_get_referrers(NULL, l, &out), PYMEM_ERR_NULL_ARGUMENT, "runtime is NULL");
    CHECK_FAILS(NULL, pymem_gc_get_referents(NULL, l, &out), PYMEM_ERR_NULL_ARGUMENT, "runtime is NULL");
    CHECK_FAILS(NULL, pymem_gc_get_stats(NULL, st), PYMEM_ERR_NULL_ARGUMENT, "runtime is NULL");
    CHECK_FAILS(NULL, pymem_gc_set_debug(NULL, 1), PYMEM_ERR_NULL_ARGUMENT, "runtime is NULL");
    CHECK_FAILS(NULL, pymem_gc_get_debug(NULL, &flags), PYMEM_ERR_NULL_ARGUMENT, "runtime is NULL");
    CHECK_FAILS(NULL, pymem_gc_set_debug_sink(NULL, NULL, NULL), PYMEM_ERR_NULL_ARGUMENT, "runtime is NULL");
    CHECK_FAILS(NULL, pymem_gc_garbage(NULL, &out), PYMEM_ERR_NULL_ARGUMENT, "runtime is NULL");
    CHECK_FAILS(NULL, pymem_gc_clear_garbage(NULL), PYMEM_ERR_NULL_ARGUMENT, "runtime is NULL");
    CHECK_FAILS(NULL, pymem_gc_add_callback(NULL, NULL, NULL, &id), PYMEM_ERR_NULL_ARGUMENT, "runtime is NULL");
    CHECK_FAILS(NULL, pymem_gc_remove_callback(NULL, 1), PYMEM_ERR_NULL_ARGUMENT, "runtime is NULL");
    CHECK_FAILS(NULL, pymem_gc_get_threshold(NULL, v3), PYMEM_ERR_NULL_ARGUMENT, "runtime is NULL");
    CHECK_FAILS(NULL, pymem_gc_is_tracked(NULL, l, &yes), PYMEM_ERR_NULL_ARGUMENT, "runtime is NULL");

    /* NULL out-pointers. */
    CHECK_FAILS_UNCHANGED(rt, rt, pymem_gc_get_freeze_count(rt, NULL), PYMEM_ERR_NULL_ARGUMENT, "out is NULL");
    CHECK_FAILS_UNCHANGED(rt, rt, pymem_gc_get_objects(rt, 0, NULL), PYMEM_ERR_NULL_ARGUMENT, "out_list is NULL");
    CHECK_FAILS_UNCHANGED(rt, rt, pymem_gc_get_referrers(rt, l, NULL), PYMEM_ERR_NULL_ARGUMENT,
                          "out_list is NULL");
    CHECK_FAILS_UNCHANGED(rt, rt, pymem_gc_get_referents(rt, l, NULL), PYMEM_ERR_NULL_ARGUMENT,
                          "out_list is NULL");
    CHECK_FAILS_UNCHANGED(rt, rt, pymem_gc_get_stats(rt, NULL), PYMEM_ERR_NULL_ARGUMENT, "out is NULL");
    CHECK_FAILS_UNCHANGED(rt, rt, pymem_gc_get_debug(rt, NULL), PYMEM_ERR_NULL_ARGUMENT, "out is NULL");
    CHECK_FAILS_UNCHANGED(rt, rt, pymem_gc_garbage(rt, NULL), PYMEM_ERR_NULL_ARGUMENT, "out_list is NULL");
    CHECK_FAILS_UNCHANGED(rt, rt, pymem_gc_add_callback(rt, NULL, NULL, &id), PYMEM_ERR_NULL_ARGUMENT,
                          "cb is NULL");
    CHECK_FAILS(rt, pymem_gc_get_count(rt, NULL), PYMEM_ERR_NULL_ARGUMENT, "out is NULL");
    CHECK_FAILS(rt, pymem_gc_get_threshold(rt, NULL), PYMEM_ERR_NULL_ARGUMENT, "out is NULL");
    CHECK_FAILS(rt, pymem_gc_isenabled(rt, NULL), PYMEM_ERR_NULL_ARGUMENT, "out is NULL");
    CHECK_OK(rt, pymem_gc_collect(rt, 0, NULL)); /* found may be NULL */

    /* Invalid generations: CPython's ValueError. */
    CHECK_FAILS_UNCHANGED(rt, rt, pymem_gc_collect(rt, 3, &found), PYMEM_ERR_INVALID_ARGUMENT,
                          "invalid generation");
    CHECK_FAILS_UNCHANGED(rt, rt, pymem_gc_collect(rt, -2, &found), PYMEM_ERR_INVALID_ARGUMENT,
                          "invalid generation");
    CHECK_FAILS_UNCHANGED(rt, rt, pymem_gc_get_objects(rt, 3, &out), PYMEM_ERR_INVALID_ARGUMENT,
                          "must be less than the number of available generations (3)");
    CHECK_FAILS_UNCHANGED(rt, rt, pymem_gc_get_objects(rt, -2, &out), PYMEM_ERR_INVALID_ARGUMENT,
                          "cannot be negative");
    CHECK(out == NULL); /* untouched on failure */
    CHECK_FAILS(rt, pymem_gc_set_threshold(rt, -1, 10, 10), PYMEM_ERR_INVALID_ARGUMENT, "negative");
    CHECK_OK(rt, pymem_gc_get_threshold(rt, v3));
    CHECK(v3[0] == 700 && v3[1] == 10 && v3[2] == 10);

    /* Unknown callback ids. */
    CHECK_FAILS(rt, pymem_gc_remove_callback(rt, 0), PYMEM_ERR_KEY, "no gc callback with id 0");
    CHECK_FAILS(rt, pymem_gc_remove_callback(rt, 123456789), PYMEM_ERR_KEY, "123456789");

    /* Objects that are not live objects of this runtime. */
    int64_t on_stack[8] = {0};
    pymem_object *fake = (pymem_object *)(void *)on_stack;
    void *raw = pymem_malloc(rt, 64);
    CHECK(raw != NULL);
    pymem_object *dead = new_list();
    drop(dead); /* on the list free list now */
    pymem_object *bad[] = {fake, (pymem_object *)raw, dead};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        CHECK_FAILS_UNCHANGED(rt, rt, pymem_gc_get_referrers(rt, bad[i], &out), PYMEM_ERR_INVALID_POINTER,
                              "invalid object");
        CHECK_FAILS_UNCHANGED(rt, rt, pymem_gc_get_referents(rt, bad[i], &out), PYMEM_ERR_INVALID_POINTER,
                              "invalid object");
        CHECK_FAILS(rt, pymem_gc_is_tracked(rt, bad[i], &yes), PYMEM_ERR_INVALID_POINTER, "invalid object");
        CHECK_FAILS(rt, pymem_gc_is_finalized(rt, bad[i], &yes), PYMEM_ERR_INVALID_POINTER, "invalid object");
    }
    CHECK_FAILS(rt, pymem_gc_get_referrers(rt, NULL, &out), PYMEM_ERR_NULL_ARGUMENT, "o is NULL");
    CHECK_FAILS(rt, pymem_gc_get_referents(rt, NULL, &out), PYMEM_ERR_NULL_ARGUMENT, "o is NULL");
    CHECK_OK(rt, pymem_free(rt, raw));
    drop(l);

    /* A bad gc profile. */
    pymem_config cfg;
    pymem_config_init(&cfg);
    cfg.gc_profile = 7;
    pymem_runtime *other = NULL;
    CHECK_FAILS(NULL, pymem_runtime_new(&cfg, &other), PYMEM_ERR_INVALID_ARGUMENT, "gc_profile");
    CHECK(other == NULL);
    printf("  bad input: refused, nothing changed\n");
}

static void test_collect_and_counts(void) {
    int64_t c[3];
    collect(2);
    get_count(c);
    CHECK(c[0] == 0 && c[1] == 0 && c[2] == 0);
    pymem_object *keep = new_list();
    get_count(c);
    CHECK(c[0] == 1);
    CHECK_EQ_U64(collect(0), 0); /* gc.collect(0): (1, 0, 0) -> (0, 1, 0), as CPython */
    get_count(c);
    CHECK(c[0] == 0 && c[1] == 1 && c[2] == 0);
    CHECK(in_generation(1, keep) && !in_generation(0, keep));
    CHECK_EQ_U64(collect(1), 0);
    get_count(c);
    CHECK(c[0] == 0 && c[1] == 0 && c[2] == 1);
    CHECK(in_generation(2, keep));
    CHECK_EQ_U64(collect(-1), 0); /* -1 means 2 */
    get_count(c);
    CHECK(c[0] == 0 && c[1] == 0 && c[2] == 0);

    /* A deallocation of a tracked object takes one off count0. */
    pymem_object *one = new_list();
    for (int i = 0; i < 100; i++) drop(new_list());
    get_count(c);
    CHECK(c[0] == 1);
    drop(one);
    get_count(c);
    CHECK(c[0] == 0);

    /* Garbage of a younger generation is found by collecting an older one. */
    make_list_cycle(NULL, NULL);
    CHECK_EQ_U64(collect(1), 2);
    make_list_cycle(NULL, NULL);
    CHECK_EQ_U64(collect(0), 2);
    /* ...but garbage that reached an older generation waits for it. */
    pymem_object *a = new_list(), *b = new_list();
    CHECK_OK(rt, pymem_list_append(rt, a, b));
    CHECK_OK(rt, pymem_list_append(rt, b, a));
    drop(b);
    CHECK_EQ_U64(collect(0), 0); /* alive: both move to generation 1 */
    CHECK(in_generation(1, a) && in_generation(1, b));
    drop(a);
    CHECK_EQ_U64(collect(0), 0);
    CHECK_EQ_U64(collect(1), 2);
    drop(keep);
    printf("  collect per generation and the counts: as CPython\n");
}

static void test_freeze(void) {
    collect(2);
    size_t frozen = 99;
    CHECK_OK(rt, pymem_gc_get_freeze_count(rt, &frozen));
    CHECK_EQ_U64(frozen, 0);
    pymem_object *keep = new_list();
    pymem_object *a = NULL;
    make_list_cycle(&a, NULL);
    CHECK_OK(rt, pymem_gc_freeze(rt));
    CHECK_OK(rt, pymem_gc_get_freeze_count(rt, &frozen));
    CHECK(frozen >= 3); /* keep and the cycle, and whatever else was tracked */
    int64_t c[3];
    get_count(c);
    CHECK(c[0] == 0);
    CHECK(!in_generation(-1, keep) && !in_generation(-1, a));
    CHECK_EQ_U64(collect(2), 0); /* frozen garbage is not collected */
    CHECK(count(a) == 1);
    /* get_referrers looks at generations 0-2, as CPython: not the frozen. */
    pymem_object *refs = NULL;
    CHECK_OK(rt, pymem_gc_get_referrers(rt, a, &refs));
    CHECK(list_len(refs) == 0);
    drop(refs);

    CHECK_OK(rt, pymem_gc_unfreeze(rt));
    CHECK_OK(rt, pymem_gc_get_freeze_count(rt, &frozen));
    CHECK_EQ_U64(frozen, 0);
    CHECK(in_generation(2, keep) && in_generation(2, a)); /* back into the oldest */
    CHECK_EQ_U64(collect(2), 2);
    drop(keep);
    printf("  freeze / unfreeze / get_freeze_count\n");
}

static void test_get_objects(void) {
    collect(2);
    pymem_object *l = new_list(), *d = NULL, *i = NULL;
    CHECK_OK(rt, pymem_dict_new(rt, &d));
    CHECK_OK(rt, pymem_int_new(rt, 123456, &i));
    CHECK(in_generation(0, l) && in_generation(0, d) && in_generation(-1, l));
    CHECK(!in_generation(1, l) && !in_generation(2, l));
    CHECK(!in_generation(-1, i)); /* ints are never tracked */

    pymem_object *objs = NULL;
    CHECK_OK(rt, pymem_gc_get_objects(rt, 0, &objs));
    CHECK_EQ_U64(list_len(objs), 2); /* exactly l and d (and not the result) */
    CHECK(count(l) == 2);           /* the result holds a reference */
    drop(objs);
    CHECK(count(l) == 1);
    /* Youngest first with -1. */
    collect(0);
    pymem_object *young = new_list();
    CHECK_OK(rt, pymem_gc_get_objects(rt, -1, &objs));
    pymem_object *first = NULL;
    CHECK_OK(rt, pymem_list_get(rt, objs, 0, &first));
    CHECK(pymem_is(first, young));
    drop(first);
    drop(objs);
    drop(young);
    drop(l);
    drop(d);
    drop(i);
    printf("  get_objects per generation\n");
}

static void test_referrers_and_referents(void) {
    pymem_object *x = NULL, *k = NULL, *l = new_list(), *d = NULL, *t = NULL, *i = NULL;
    CHECK_OK(rt, pymem_str_new(rt, "the referent", 12, &x));
    CHECK_OK(rt, pymem_str_new(rt, "key", 3, &k));
    CHECK_OK(rt, pymem_list_append(rt, l, x));
    CHECK_OK(rt, pymem_list_append(rt, l, x));
    CHECK_OK(rt, pymem_dict_new(rt, &d));
    CHECK_OK(rt, pymem_dict_set(rt, d, k, x));
    pymem_object *items[2] = {x, l};
    CHECK_OK(rt, pymem_tuple_new(rt, 2, items, &t));
    pymem_object *n = new_node(rt, node_type, x, 1, 1);
    pymem_object *n2 = new_node(rt, node_type, NULL, 2, 0);
    CHECK_OK(rt, pymem_setattr(rt, n2, "attr", x));
    node_set_child(rt, n2, l);
    pymem_object *m = NULL;
    CHECK_OK(rt, pymem_module_new(rt, "mod", &m));
    CHECK_OK(rt, pymem_setattr(rt, m, "x", x));
    CHECK_OK(rt, pymem_int_new(rt, 777777, &i));

    /* get_referrers(x): each referrer once (l holds x twice), host Nodes
       found through their traverse, the result list not in itself. */
    size_t traverses = node_stats.traverses;
    pymem_object *refs = NULL;
    CHECK_OK(rt, pymem_gc_get_referrers(rt, x, &refs));
    CHECK(node_stats.traverses > traverses); /* the host traverse ran */
    CHECK(occurrences(refs, l) == 1 && occurrences(refs, d) == 1 && occurrences(refs, t) == 1);
    CHECK(occurrences(refs, n) == 1 && occurrences(refs, n2) == 1 && occurrences(refs, refs) == 0);
    /* The module holds x in its attribute dict: the dict refers to it. */
    CHECK_EQ_U64(list_len(refs), 6);
    drop(refs);
    CHECK_OK(rt, pymem_gc_get_referrers(rt, l, &refs)); /* the tuple and n2's payload */
    CHECK(list_len(refs) == 2 && occurrences(refs, t) == 1 && occurrences(refs, n2) == 1);
    drop(refs);
    CHECK_OK(rt, pymem_gc_get_referrers(rt, i, &refs)); /* nothing refers to it */
    CHECK(list_len(refs) == 0);
    drop(refs);

    /* get_referents: what each refers to, repeats included, in order. */
    pymem_object *r = NULL;
    CHECK_OK(rt, pymem_gc_get_referents(rt, l, &r));
    CHECK(list_len(r) == 2 && occurrences(r, x) == 2);
    drop(r);
    /* A dict whose keys are all strs reports only its values, as CPython
       3.11's dict_traverse does (gc.get_referents({'key': x}) == [x]). */
    CHECK_OK(rt, pymem_gc_get_referents(rt, d, &r));
    CHECK(list_len(r) == 1 && occurrences(r, x) == 1);
    drop(r);
    /* Once a key that is not a str went in, keys are reported too, each
       value before its key ({k: x, 424242: l} -> [x, k, l, 424242]), and
       still after that key is deleted (CPython's DICT_KEYS_GENERAL). */
    pymem_object *g = NULL, *ik = NULL;
    CHECK_OK(rt, pymem_dict_new(rt, &g));
    CHECK_OK(rt, pymem_int_new(rt, 424242, &ik));
    CHECK_OK(rt, pymem_dict_set(rt, g, k, x));
    CHECK_OK(rt, pymem_dict_set(rt, g, ik, l));
    CHECK_OK(rt, pymem_gc_get_referents(rt, g, &r));
    CHECK_EQ_U64(list_len(r), 4);
    pymem_object *expected[] = {x, k, l, ik};
    for (size_t j = 0; j < 4; j++) {
        pymem_object *got = NULL;
        CHECK_OK(rt, pymem_list_get(rt, r, j, &got));
        CHECK(pymem_is(got, expected[j]));
        drop(got);
    }
    drop(r);
    CHECK_OK(rt, pymem_dict_del(rt, g, ik));
    CHECK_OK(rt, pymem_gc_get_referents(rt, g, &r));
    CHECK(list_len(r) == 2 && occurrences(r, x) == 1 && occurrences(r, k) == 1);
    drop(r);
    drop(g);
    drop(ik);
    CHECK_OK(rt, pymem_gc_get_referents(rt, t, &r));
    CHECK(list_len(r) == 2 && occurrences(r, x) == 1 && occurrences(r, l) == 1);
    drop(r);
    CHECK_OK(rt, pymem_gc_get_referents(rt, n, &r)); /* the payload child, through traverse */
    CHECK(list_len(r) == 1 && occurrences(r, x) == 1);
    drop(r);
    CHECK_OK(rt, pymem_gc_get_referents(rt, n2, &r)); /* attribute values, then the payload */
    CHECK(list_len(r) == 2 && occurrences(r, x) == 1 && occurrences(r, l) == 1);
    pymem_object *second = NULL;
    CHECK_OK(rt, pymem_list_get(rt, r, 1, &second));
    CHECK(pymem_is(second, l));
    drop(second);
    drop(r);
    CHECK_OK(rt, pymem_gc_get_referents(rt, i, &r)); /* an atom refers to nothing */
    CHECK(list_len(r) == 0);
    drop(r);
    CHECK_OK(rt, pymem_gc_get_referents(rt, x, &r));
    CHECK(list_len(r) == 0);
    drop(r);

    CHECK(count(x) == 8); /* the lists handed out are gone: l x2, d, t, n, n2, m's dict, own */
    drop(t);
    drop(n);
    drop(n2);
    drop(m);
    drop(l);
    drop(d);
    CHECK(count(x) == 1);
    drop(x);
    drop(k);
    drop(i);
    printf("  get_referrers / get_referents on built-in and host types\n");
}

/* ------------------------------------------------------------------------ */
/* The debug sink. */

#define MAX_LINES 64
static struct {
    char lines[MAX_LINES][160];
    int n;
    int extra_calls_ok; /* the sink called pymem and it worked */
} sink;

static void capture(const char *line, void *userdata) {
    CHECK(userdata == &sink);
    if (sink.n < MAX_LINES) {
        snprintf(sink.lines[sink.n], sizeof sink.lines[0], "%s", line);
        sink.n++;
    }
    /* A sink runs like a gc callback: it may read and change things, but
       not free the runtime, and a collection from it finds nothing. */
    int64_t c[3];
    int64_t found = -1;
    if (pymem_gc_get_count(rt, c) == PYMEM_OK && pymem_gc_collect(rt, 0, &found) == PYMEM_OK && found == 0 &&
        pymem_runtime_free(rt) == PYMEM_ERR_BUSY)
        sink.extra_calls_ok++;
}

static void check_done_line(const char *line, int64_t unreachable) {
    /* gc: done, 2 unreachable, 0 uncollectable, 0.0001s elapsed */
    long long u = -1, un = -1;
    char secs[32] = "";
    CHECKF(sscanf(line, "gc: done, %lld unreachable, %lld uncollectable, %31s", &u, &un, secs) == 3, "%s", line);
    CHECK(u == unreachable && un == 0);
    /* %.4f seconds, then "s elapsed" */
    const char *dot = strchr(secs, '.');
    CHECKF(dot != NULL && strlen(dot) == 6 && dot[5] == 's', "%s", line);
    CHECK_CONTAINS(line, "s elapsed");
    CHECK(strcmp(line + strlen(line) - 9, "s elapsed") == 0);
}

static void test_debug_output(void) {
    uint32_t flags = 99;
    CHECK_OK(rt, pymem_gc_get_debug(rt, &flags));
    CHECK(flags == 0);
    collect(2);
    pymem_object *keep = new_list();
    collect(0); /* keep in generation 1 */
    CHECK_OK(rt, pymem_gc_set_debug_sink(rt, capture, &sink));
    CHECK_OK(rt, pymem_gc_set_debug(rt, PYMEM_GC_DEBUG_STATS));
    CHECK_OK(rt, pymem_gc_get_debug(rt, &flags));
    CHECK(flags == PYMEM_GC_DEBUG_STATS);

    /* gen0: the cycle; gen1: keep; gen2: what the earlier collections left. */
    pymem_object *objs = NULL;
    CHECK_OK(rt, pymem_gc_get_objects(rt, 2, &objs));
    size_t gen2 = list_len(objs);
    drop(objs);
    memset(&sink, 0, sizeof sink);
    make_list_cycle(NULL, NULL);
    CHECK_EQ_U64(collect(2), 2);
    CHECK_EQ_U64(sink.n, 4);
    char expected[160];
    CHECK_STR_EQ(sink.lines[0], "gc: collecting generation 2...");
    snprintf(expected, sizeof expected, "gc: objects in each generation: 2 1 %zu", gen2);
    CHECK_STR_EQ(sink.lines[1], expected);
    CHECK_STR_EQ(sink.lines[2], "gc: objects in permanent generation: 0");
    check_done_line(sink.lines[3], 2);
    CHECK_EQ_U64(sink.extra_calls_ok, 4);
    printf("  DEBUG_STATS, as CPython 3.11 prints it:\n");
    for (int j = 0; j < sink.n; j++) printf("    | %s\n", sink.lines[j]);

    /* DEBUG_COLLECTABLE: the garbage, by type name and address. */
    CHECK_OK(rt, pymem_gc_set_debug(rt, PYMEM_GC_DEBUG_COLLECTABLE));
    memset(&sink, 0, sizeof sink);
    pymem_object *a = NULL, *b = NULL;
    make_list_cycle(&a, &b);
    pymem_object *n = new_node(rt, node_type, NULL, 3, 0);
    node_set_child(rt, n, n); /* a Node referring to itself */
    drop(n);
    char la[160], lb[160], ln[160];
    snprintf(la, sizeof la, "gc: collectable <list %#zx>", (size_t)pymem_id(a));
    snprintf(lb, sizeof lb, "gc: collectable <list %#zx>", (size_t)pymem_id(b));
    snprintf(ln, sizeof ln, "gc: collectable <Node %#zx>", (size_t)pymem_id(n));
    CHECK_EQ_U64(collect(0), 3);
    CHECK_EQ_U64(sink.n, 3);
    int seen_a = 0, seen_b = 0, seen_n = 0;
    for (int j = 0; j < sink.n; j++) {
        seen_a += strcmp(sink.lines[j], la) == 0;
        seen_b += strcmp(sink.lines[j], lb) == 0;
        seen_n += strcmp(sink.lines[j], ln) == 0;
    }
    CHECKF(seen_a == 1 && seen_b == 1 && seen_n == 1, "%s | %s | %s", sink.lines[0], sink.lines[1], sink.lines[2]);
    printf("  DEBUG_COLLECTABLE:\n");
    for (int j = 0; j < sink.n; j++) printf("    | %s\n", sink.lines[j]);

    /* Automatic collections print too. */
    CHECK_OK(rt, pymem_gc_set_debug(rt, PYMEM_GC_DEBUG_STATS));
    memset(&sink, 0, sizeof sink);
    pymem_object *held[701];
    for (int j = 0; j < 701; j++) held[j] = new_list();
    CHECK(sink.n == 4);
    CHECK_STR_EQ(sink.lines[0], "gc: collecting generation 0...");
    check_done_line(sink.lines[3], 0);
    for (int j = 0; j < 701; j++) drop(held[j]);

    /* No flags: no lines. */
    CHECK_OK(rt, pymem_gc_set_debug(rt, 0));
    memset(&sink, 0, sizeof sink);
    make_list_cycle(NULL, NULL);
    CHECK_EQ_U64(collect(2), 2);
    CHECK(sink.n == 0);

    /* No sink: stderr. */
    CHECK_OK(rt, pymem_gc_set_debug_sink(rt, NULL, NULL));
    CHECK_OK(rt, pymem_gc_set_debug(rt, PYMEM_GC_DEBUG_STATS | PYMEM_GC_DEBUG_COLLECTABLE));
    FILE *tmp = tmpfile();
    CHECK(tmp != NULL);
    fflush(stderr);
    int saved_stderr = dup(2);
    CHECK(saved_stderr >= 0 && dup2(fileno(tmp), 2) == 2);
    make_list_cycle(NULL, NULL);
    int64_t found = collect(2);
    fflush(stderr);
    CHECK(dup2(saved_stderr, 2) == 2);
    close(saved_stderr);
    CHECK_EQ_U64(found, 2);
    char text[2048];
    rewind(tmp);
    size_t got = fread(text, 1, sizeof text - 1, tmp);
    text[got] = '\0';
    fclose(tmp);
    CHECK(strncmp(text, "gc: collecting generation 2...\ngc: objects in each generation: ", 63) == 0);
    CHECK_CONTAINS(text, "\ngc: objects in permanent generation: 0\ngc: collectable <list 0x");
    CHECK_CONTAINS(text, " unreachable, 0 uncollectable, ");
    CHECK(got > 0 && text[got - 1] == '\n');
    CHECK_OK(rt, pymem_gc_set_debug(rt, 0));
    drop(keep);
    printf("  no sink: the same lines on stderr\n");
}

static void test_saveall(void) {
    collect(2);
    CHECK_OK(rt, pymem_gc_set_debug(rt, PYMEM_GC_DEBUG_SAVEALL));
    pymem_object *a = NULL, *b = NULL;
    make_list_cycle(&a, &b);
    CHECK_EQ_U64(collect(2), 2); /* counted as collected, kept alive */
    CHECK(count(a) == 2 && count(b) == 2);
    pymem_object *garbage = NULL;
    CHECK_OK(rt, pymem_gc_garbage(rt, &garbage));
    CHECK(list_len(garbage) == 2 && occurrences(garbage, a) == 1 && occurrences(garbage, b) == 1);
    drop(garbage);
    CHECK_OK(rt, pymem_gc_set_debug(rt, 0));
    CHECK_EQ_U64(collect(2), 0); /* the saved references keep them */
    CHECK_OK(rt, pymem_gc_clear_garbage(rt));
    CHECK_OK(rt, pymem_gc_garbage(rt, &garbage));
    CHECK(list_len(garbage) == 0);
    drop(garbage);
    CHECK_EQ_U64(collect(2), 2); /* garbage again, now freed */

    /* DEBUG_LEAK = COLLECTABLE | UNCOLLECTABLE | SAVEALL. Host objects kept
       until pymem_runtime_free: their dealloc runs then (valgrind sees the
       buffers freed). */
    CHECK(PYMEM_GC_DEBUG_LEAK == (PYMEM_GC_DEBUG_COLLECTABLE | PYMEM_GC_DEBUG_UNCOLLECTABLE | PYMEM_GC_DEBUG_SAVEALL));
    CHECK_OK(rt, pymem_gc_set_debug_sink(rt, capture, &sink));
    CHECK_OK(rt, pymem_gc_set_debug(rt, PYMEM_GC_DEBUG_LEAK));
    memset(&sink, 0, sizeof sink);
    pymem_object *n1 = new_node(rt, node_type, NULL, 10, 1);
    pymem_object *n2 = new_node(rt, node_type, n1, 11, 1);
    node_set_child(rt, n1, n2);
    drop(n1);
    drop(n2);
    size_t deallocs = node_stats.deallocs;
    CHECK_EQ_U64(collect(2), 2);
    CHECK(sink.n == 2); /* two "collectable" lines */
    CHECK(node_stats.deallocs == deallocs && count(n1) == 2);
    CHECK_OK(rt, pymem_gc_garbage(rt, &garbage));
    CHECK(list_len(garbage) == 2);
    drop(garbage);
    CHECK_OK(rt, pymem_gc_set_debug(rt, 0));
    CHECK_OK(rt, pymem_gc_set_debug_sink(rt, NULL, NULL));
    printf("  DEBUG_SAVEALL: garbage kept in pymem_gc_garbage (two Nodes left to pymem_runtime_free)\n");
}

/* ------------------------------------------------------------------------ */
/* Callbacks. */

typedef struct {
    char phases[32][8];
    pymem_gc_info infos[32];
    int who[32];
    int n;
} callback_log;

static callback_log cb_log;
static uint64_t remove_me_id;

static void record(pymem_runtime *r, const char *phase, const pymem_gc_info *info, void *userdata) {
    CHECK(r == rt);
    int who = (int)(intptr_t)userdata;
    if (cb_log.n < 32) {
        snprintf(cb_log.phases[cb_log.n], sizeof cb_log.phases[0], "%s", phase);
        cb_log.infos[cb_log.n] = *info;
        cb_log.who[cb_log.n] = who;
        cb_log.n++;
    }
    /* Inside: anything but runtime_free; a collection finds nothing. */
    int64_t found = -1;
    CHECK_OK(r, pymem_gc_collect(r, 2, &found));
    CHECK(found == 0);
    pymem_object *l = NULL;
    CHECK_OK(r, pymem_list_new(r, &l));
    CHECK_OK(r, pymem_decref(r, l));
    CHECK_FAILS(r, pymem_runtime_free(r), PYMEM_ERR_BUSY, "callback");
    if (who == 3) CHECK_OK(r, pymem_gc_remove_callback(r, remove_me_id)); /* removes itself */
}

static void test_callbacks(void) {
    collect(2);
    uint64_t id1 = 0, id2 = 0;
    CHECK_OK(rt, pymem_gc_add_callback(rt, record, (void *)1, &id1));
    CHECK_OK(rt, pymem_gc_add_callback(rt, record, (void *)2, &id2));
    CHECK(id1 != id2);
    memset(&cb_log, 0, sizeof cb_log);
    make_list_cycle(NULL, NULL);
    CHECK_EQ_U64(collect(1), 2);
    CHECK_EQ_U64(cb_log.n, 4);
    const char *want[4] = {"start", "start", "stop", "stop"};
    const int whos[4] = {1, 2, 1, 2};
    for (int j = 0; j < 4; j++) {
        CHECK_STR_EQ(cb_log.phases[j], want[j]);
        CHECK(cb_log.who[j] == whos[j]);
        CHECK(cb_log.infos[j].generation == 1 && cb_log.infos[j].uncollectable == 0);
    }
    CHECK(cb_log.infos[0].collected == 0 && cb_log.infos[0].duration_ns == 0);
    CHECK(cb_log.infos[2].collected == 2 && cb_log.infos[3].collected == 2);
    CHECK(cb_log.infos[2].duration_ns > 0 && cb_log.infos[2].duration_ns == cb_log.infos[3].duration_ns);

    /* Removed by id; unknown and twice-removed ids are refused. */
    CHECK_OK(rt, pymem_gc_remove_callback(rt, id1));
    CHECK_FAILS(rt, pymem_gc_remove_callback(rt, id1), PYMEM_ERR_KEY, "no gc callback");
    memset(&cb_log, 0, sizeof cb_log);
    CHECK_EQ_U64(collect(0), 0);
    CHECK(cb_log.n == 2 && cb_log.who[0] == 2 && cb_log.who[1] == 2);
    CHECK(cb_log.infos[0].generation == 0);

    /* A callback that removes itself at "start" misses "stop". */
    CHECK_OK(rt, pymem_gc_add_callback(rt, record, (void *)3, &remove_me_id));
    memset(&cb_log, 0, sizeof cb_log);
    collect(2);
    CHECK_EQ_U64(cb_log.n, 3);
    CHECK(cb_log.who[0] == 2 && cb_log.who[1] == 3 && cb_log.who[2] == 2);
    CHECK_FAILS(rt, pymem_gc_remove_callback(rt, remove_me_id), PYMEM_ERR_KEY, "no gc callback");

    /* Automatic collections call them too (generation 0). */
    memset(&cb_log, 0, sizeof cb_log);
    pymem_object *held[701];
    for (int j = 0; j < 700; j++) held[j] = new_list();
    CHECK(cb_log.n == 0);
    held[700] = new_list();
    CHECK_EQ_U64(cb_log.n, 2);
    CHECK_STR_EQ(cb_log.phases[0], "start");
    CHECK(cb_log.infos[0].generation == 0 && cb_log.infos[1].generation == 0);
    for (int j = 0; j < 701; j++) drop(held[j]);
    CHECK_OK(rt, pymem_gc_remove_callback(rt, id2));
    printf("  callbacks: start/stop with info, by id, manual and automatic\n");
}

/* ------------------------------------------------------------------------ */
/* Automatic collection. */

static int auto_collections;
static void count_collections(pymem_runtime *r, const char *phase, const pymem_gc_info *info, void *userdata) {
    (void)r;
    (void)info;
    (void)userdata;
    if (strcmp(phase, "start") == 0) auto_collections++;
}

static void test_automatic(void) {
    uint64_t id = 0;
    CHECK_OK(rt, pymem_gc_add_callback(rt, count_collections, NULL, &id));
    collect(2);
    auto_collections = 0;
    int64_t c[3];
    enum { N = 2100 };
    static pymem_object *held[N];

    /* By default: once count0 passes 700, at the end of that call. */
    for (int j = 0; j < 700; j++) held[j] = new_list();
    get_count(c);
    CHECK(c[0] == 700 && auto_collections == 0);
    held[700] = new_list();
    CHECK(auto_collections == 1);
    get_count(c);
    CHECK(c[0] == 0 && c[1] == 1); /* count0 reset; generation 1 counts it */
    CHECK(in_generation(1, held[0]) && in_generation(1, held[700]));
    for (int j = 0; j <= 700; j++) drop(held[j]);

    /* Garbage cycles of host objects go without any pymem_gc_collect. */
    collect(2);
    auto_collections = 0;
    size_t deallocs = node_stats.deallocs;
    for (int j = 0; j < 1000; j++) {
        pymem_object *a = new_node(rt, node_type, NULL, j, 0);
        pymem_object *b = new_node(rt, node_type, a, j, 0);
        node_set_child(rt, a, b);
        drop(a);
        drop(b);
    }
    CHECK(auto_collections >= 2);
    CHECK(node_stats.deallocs - deallocs >= 1000); /* two collections' worth, about */
    collect(2);
    CHECK_EQ_U64(node_stats.deallocs - deallocs, 2000);

    /* threshold0 = 0: never automatic. */
    CHECK_OK(rt, pymem_gc_set_threshold(rt, 0, 10, 10));
    collect(2);
    auto_collections = 0;
    for (int j = 0; j < N; j++) held[j] = new_list();
    get_count(c);
    CHECK(auto_collections == 0 && c[0] == N);
    for (int j = 0; j < N; j++) drop(held[j]);
    CHECK_OK(rt, pymem_gc_set_threshold(rt, 700, 10, 10));

    /* disable / enable. */
    CHECK_OK(rt, pymem_gc_disable(rt));
    int on = 1;
    CHECK_OK(rt, pymem_gc_isenabled(rt, &on));
    CHECK(on == 0);
    collect(2);
    CHECK(auto_collections == 1); /* a manual collection still runs */
    for (int j = 0; j < N; j++) held[j] = new_list();
    CHECK(auto_collections == 1);
    CHECK_OK(rt, pymem_gc_enable(rt));
    CHECK_OK(rt, pymem_gc_isenabled(rt, &on));
    CHECK(on == 1);
    pymem_object *one_more = new_list(); /* count0 is past 700: due now */
    CHECK(auto_collections == 2);
    drop(one_more);
    for (int j = 0; j < N; j++) drop(held[j]);
    CHECK_OK(rt, pymem_gc_remove_callback(rt, id));
    printf("  automatic collection past threshold0; threshold0 = 0 and disable turn it off\n");
}

static void test_profile_313(void) {
    pymem_config cfg;
    pymem_config_init(&cfg);
    cfg.gc_profile = PYMEM_GC_PROFILE_CPYTHON_313;
    pymem_runtime *r = NULL;
    CHECK_OK(NULL, pymem_runtime_new(&cfg, &r));
    int64_t t[3];
    CHECK_OK(r, pymem_gc_get_threshold(r, t));
    CHECK(t[0] == 2000 && t[1] == 10 && t[2] == 10);
    uint64_t id = 0;
    CHECK_OK(r, pymem_gc_add_callback(r, count_collections, NULL, &id));
    auto_collections = 0;
    static pymem_object *held[2001];
    for (int j = 0; j < 2000; j++) CHECK_OK(r, pymem_list_new(r, &held[j]));
    CHECK(auto_collections == 0);
    CHECK_OK(r, pymem_list_new(r, &held[2000]));
    CHECK(auto_collections == 1);
    for (int j = 0; j < 2001; j++) CHECK_OK(r, pymem_decref(r, held[j]));
    CHECK_OK(r, pymem_runtime_free(r));
    printf("  the CPython 3.13 profile: (2000, 10, 10)\n");
}

/* ------------------------------------------------------------------------ */

static void test_stats(void) {
    pymem_gc_gen_stats before[3], after[3];
    CHECK_OK(rt, pymem_gc_get_stats(rt, before));
    collect(0);
    make_list_cycle(NULL, NULL);
    make_list_cycle(NULL, NULL);
    collect(1);
    make_list_cycle(NULL, NULL);
    collect(2);
    CHECK_OK(rt, pymem_gc_get_stats(rt, after));
    CHECK_EQ_U64(after[0].collections - before[0].collections, 1);
    CHECK_EQ_U64(after[1].collections - before[1].collections, 1);
    CHECK_EQ_U64(after[2].collections - before[2].collections, 1);
    CHECK_EQ_U64(after[0].collected - before[0].collected, 0);
    CHECK_EQ_U64(after[1].collected - before[1].collected, 4);
    CHECK_EQ_U64(after[2].collected - before[2].collected, 2);
    for (int g = 0; g < 3; g++) CHECK(after[g].uncollectable == 0);
    printf("  get_stats: collections %" PRIu64 "/%" PRIu64 "/%" PRIu64 ", collected %" PRIu64 "/%" PRIu64
           "/%" PRIu64 "\n",
           after[0].collections, after[1].collections, after[2].collections, after[0].collected,
           after[1].collected, after[2].collected);
}

static void test_host_cycles(void) {
    collect(2);
    memset(&node_stats, 0, sizeof node_stats);
    pymem_object *a = new_node(rt, node_type, NULL, 1, 1);
    pymem_object *b = new_node(rt, node_type, a, 2, 1);
    node_set_child(rt, a, b);
    int t = 0;
    CHECK_OK(rt, pymem_gc_is_tracked(rt, a, &t));
    CHECK(t == 1);
    drop(a);
    drop(b);
    CHECK(count(a) == 1 && count(b) == 1);
    CHECK(node_stats.clears == 0 && node_stats.deallocs == 0);
    CHECK_EQ_U64(collect(2), 2);
    CHECK(node_stats.clears >= 2);
    CHECK_EQ_U64(node_stats.deallocs, 2);

    /* A host type without traverse: its payload references are invisible,
       so its cycle is never found (as a CPython type without
       tp_traverse); pymem_runtime_free deallocs it. */
    static pymem_type *blind = NULL;
    if (blind == NULL) blind = define_node(rt, "BlindNode", 0);
    pymem_object *c = new_node(rt, blind, NULL, 3, 1);
    node_set_child(rt, c, c);
    drop(c);
    CHECK_EQ_U64(collect(2), 0);
    CHECK(count(c) == 1);
    printf("  host Nodes in a cycle: collected, clear and dealloc called\n");
}

/* ------------------------------------------------------------------------ */
/* PEP 442: a finalizer that resurrects. */

static pymem_object *saved[4];
static int n_saved;
static int finalize_calls;
static int resurrect;

static void phoenix_finalize(pymem_runtime *r, pymem_object *self, void *userdata) {
    (void)userdata;
    finalize_calls++;
    int fin = 0;
    CHECK_OK(r, pymem_gc_is_finalized(r, self, &fin));
    CHECK(fin == 1); /* marked before the call */
    if (resurrect) {
        CHECK_OK(r, pymem_incref(r, self)); /* saved.append(self) */
        saved[n_saved++] = self;
    }
    /* A finalizer may call anything but runtime_free. */
    pymem_object *l = NULL;
    CHECK_OK(r, pymem_list_new(r, &l));
    CHECK_OK(r, pymem_decref(r, l));
    int64_t found = -1;
    CHECK_OK(r, pymem_gc_collect(r, 2, &found));
    CHECK(found == 0);
    CHECK_FAILS(r, pymem_runtime_free(r), PYMEM_ERR_BUSY, "callback");
}

static void test_resurrection(void) {
    pymem_type_spec spec;
    pymem_type_spec_init(&spec);
    spec.name = "Phoenix";
    spec.payload_size = sizeof(node_payload);
    spec.traverse = node_traverse;
    spec.clear = node_clear;
    spec.finalize = phoenix_finalize;
    spec.dealloc = node_dealloc;
    spec.userdata = rt;
    pymem_type *phoenix = NULL;
    CHECK_OK(rt, pymem_type_new(rt, &spec, &phoenix));
    collect(2);
    memset(&node_stats, 0, sizeof node_stats);

    /* p.me = p; del p: the finalizer saves it. */
    resurrect = 1;
    pymem_object *p = new_node(rt, phoenix, NULL, 1, 1);
    node_set_child(rt, p, p);
    drop(p);
    int fin = -1;
    CHECK_OK(rt, pymem_gc_is_finalized(rt, p, &fin));
    CHECK(fin == 0);
    /* CPython 3.11 counts what is still garbage after the finalizers:
       gc.collect() returns 0 here. */
    CHECK_EQ_U64(collect(2), 0);
    CHECK(finalize_calls == 1 && n_saved == 1 && pymem_is(saved[0], p));
    CHECK(count(p) == 2 && node_stats.deallocs == 0 && node_stats.clears == 0);
    CHECK_OK(rt, pymem_gc_is_finalized(rt, p, &fin));
    CHECK(fin == 1);
    CHECK(in_generation(2, p)); /* survivors move on */
    CHECK_EQ_U64(collect(2), 0); /* reachable from `saved` */
    /* Released again: collected, and the finalizer does not run twice. */
    drop(saved[--n_saved]);
    CHECK_EQ_U64(collect(2), 1);
    CHECK(finalize_calls == 1 && node_stats.deallocs == 1);

    /* Two in a cycle, one resurrects itself: both survive (the other is
       reachable from it), both were finalized, once. */
    finalize_calls = 0;
    resurrect = 0;
    pymem_object *x = new_node(rt, phoenix, NULL, 2, 0);
    pymem_object *y = new_node(rt, phoenix, x, 3, 1);
    node_set_child(rt, x, y);
    drop(x);
    drop(y);
    resurrect = 1; /* whichever is finalized first saves itself... */
    CHECK_EQ_U64(collect(2), 0);
    CHECK(finalize_calls == 2 && n_saved == 2); /* ...and so does the second */
    for (int j = 0; j < 2; j++) {
        CHECK_OK(rt, pymem_gc_is_finalized(rt, saved[j], &fin));
        CHECK(fin == 1);
    }
    resurrect = 0;
    drop(saved[--n_saved]);
    drop(saved[--n_saved]);
    CHECK_EQ_U64(collect(2), 2);
    CHECK(finalize_calls == 2 && node_stats.deallocs == 3);

    /* A finalizer that does not resurrect: collected at once. */
    pymem_object *z = new_node(rt, phoenix, NULL, 4, 0);
    node_set_child(rt, z, z);
    drop(z);
    CHECK_EQ_U64(collect(2), 1);
    CHECK(finalize_calls == 3 && node_stats.deallocs == 4);
    printf("  PEP 442: a resurrected object survives, finalized once\n");
}

/* ------------------------------------------------------------------------ */
/* No recursion: a million-long cycle on a small stack. */

#define SMALL_STACK (256 * 1024)

/* A ring of n lists, each holding the next, with no outside reference:
   cyclic garbage of n objects in r. */
static void make_list_ring(pymem_runtime *r, size_t n) {
    pymem_object *first = NULL, *prev = NULL;
    CHECK_OK(r, pymem_list_new(r, &first));
    prev = first;
    for (size_t i = 1; i < n; i++) {
        pymem_object *l = NULL;
        CHECK_OK(r, pymem_list_new(r, &l));
        CHECK_OK(r, pymem_list_append(r, prev, l));
        if (prev != first) CHECK_OK(r, pymem_decref(r, prev));
        prev = l;
    }
    CHECK_OK(r, pymem_list_append(r, prev, first));
    if (prev != first) CHECK_OK(r, pymem_decref(r, prev));
    CHECK_OK(r, pymem_decref(r, first));
}

static void *million(void *arg) {
    size_t n = *(size_t *)arg;
    pymem_runtime *r = NULL;
    CHECK_OK(NULL, pymem_runtime_new(NULL, &r));
    pymem_type *node = define_node(r, "Node", 1);
    int64_t found = -1;
    CHECK_OK(r, pymem_gc_disable(r)); /* only the collections below */

    make_list_ring(r, n);
    CHECK_OK(r, pymem_gc_collect(r, 2, &found));
    CHECK_EQ_U64(found, n);

    /* A ring of n Nodes (payload references, host traverse and clear). */
    size_t deallocs = node_stats.deallocs;
    pymem_object *head = new_node(r, node, NULL, 0, 0);
    pymem_object *cur = head;
    for (size_t i = 1; i < n; i++) {
        pymem_object *next = new_node(r, node, NULL, (int64_t)i, i % 1000 == 0);
        node_set_child(r, cur, next);
        if (cur != head) CHECK_OK(r, pymem_decref(r, cur));
        cur = next;
    }
    node_set_child(r, cur, head);
    if (cur != head) CHECK_OK(r, pymem_decref(r, cur));
    CHECK_OK(r, pymem_decref(r, head));
    CHECK_OK(r, pymem_gc_collect(r, 2, &found));
    CHECK_EQ_U64(found, n);
    CHECK_EQ_U64(node_stats.deallocs - deallocs, n);

    /* A list nested n deep whose innermost list holds the outermost. */
    pymem_object *outer = NULL;
    CHECK_OK(r, pymem_list_new(r, &outer));
    cur = outer;
    for (size_t i = 1; i < n; i++) {
        pymem_object *l = NULL;
        CHECK_OK(r, pymem_list_new(r, &l));
        CHECK_OK(r, pymem_list_append(r, cur, l));
        CHECK_OK(r, pymem_decref(r, l));
        cur = l;
    }
    CHECK_OK(r, pymem_list_append(r, cur, outer));
    CHECK_OK(r, pymem_decref(r, outer));
    CHECK_OK(r, pymem_gc_collect(r, 2, &found));
    CHECK_EQ_U64(found, n);

    /* The same ring of lists, kept with DEBUG_SAVEALL, then freed. */
    CHECK_OK(r, pymem_gc_set_debug(r, PYMEM_GC_DEBUG_SAVEALL));
    make_list_ring(r, n);
    CHECK_OK(r, pymem_gc_collect(r, 2, &found));
    CHECK_EQ_U64(found, n);
    CHECK_OK(r, pymem_gc_set_debug(r, 0));
    CHECK_OK(r, pymem_gc_clear_garbage(r));
    CHECK_OK(r, pymem_gc_collect(r, 2, &found));
    CHECK_EQ_U64(found, n);
    CHECK_OK(r, pymem_runtime_free(r));
    return NULL;
}

static void test_million(void) {
    size_t n = scaled(1000000, 10000);
    pthread_attr_t attr;
    CHECK(pthread_attr_init(&attr) == 0);
    CHECK(pthread_attr_setstacksize(&attr, SMALL_STACK) == 0);
    pthread_t t;
    CHECK(pthread_create(&t, &attr, million, &n) == 0);
    CHECK(pthread_join(t, NULL) == 0);
    CHECK(pthread_attr_destroy(&attr) == 0);
    printf("  a %zu-long ring of lists, of Nodes, a list nested %zu deep in a cycle, SAVEALL: collected on a "
           "%d KiB stack\n",
           n, n, SMALL_STACK / 1024);
}

int main(void) {
    CHECK_OK(NULL, pymem_runtime_new(NULL, &rt));
    CHECK_OK(rt, pymem_none(rt, &none_obj));
    node_type = define_node(rt, "Node", 1);
    printf("gc_api:\n");
    test_bad_input();
    test_collect_and_counts();
    test_freeze();
    test_get_objects();
    test_referrers_and_referents();
    test_stats();
    test_debug_output();
    test_saveall();
    test_callbacks();
    test_automatic();
    test_profile_313();
    test_host_cycles();
    test_resurrection();
    test_million();
    size_t deallocs = node_stats.deallocs;
    CHECK_OK(rt, pymem_runtime_free(rt));
    CHECK(node_stats.deallocs == deallocs + 3); /* the BlindNode, the two Nodes SAVEALL kept */
    printf("gc_api: ok\n");
    return 0;
}
