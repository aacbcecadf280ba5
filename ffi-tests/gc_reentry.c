/*
 * gc_reentry.c: what host callbacks may call back into (issue 4, point 5;
 * API.md, "Re-entry from host callbacks"), and that a refused call is only
 * refused (PYMEM_ERR_BUSY), never corruption:
 *
 *   - traverse (during a collection and during pymem_gc_get_referrers):
 *     every call that changes something is refused: pymem_list_new,
 *     pymem_incref, pymem_decref, pymem_gc_collect, pymem_gc_freeze,
 *     pymem_gc_set_threshold, pymem_gc_get_objects, pymem_setattr,
 *     pymem_malloc, pymem_runtime_free...; calls that only read
 *     (pymem_instance_payload, pymem_refcount, pymem_gc_is_tracked) work;
 *   - clear and dealloc (in a collection and at a plain refcount death):
 *     only incref/decref (and reads); the rest is refused;
 *   - finalize, gc callbacks and the debug sink: anything but
 *     pymem_runtime_free (BUSY): new objects, get_objects, get_referrers
 *     (which runs traverse callbacks, nested), thresholds, freeze/unfreeze;
 *     a collection asked for there returns 0 at once and counts nothing;
 *   - a native function (pymem_call) may collect for real; an automatic
 *     collection never runs inside a callback, only once the outermost
 *     call returns;
 *   - after all that, collections still find exactly the garbage and the
 *     allocator is back to its baseline.
 */
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pymem.h"
#include "check.h"

static pymem_runtime *rt;

static void drop(pymem_object *o) { CHECK_OK(rt, pymem_decref(rt, o)); }

static intptr_t count(pymem_object *o) { return refcount_of(rt, o); }

static int64_t collect(int generation) { return collect_ok(rt, generation); }

static uint64_t collections(void) {
    pymem_gc_gen_stats s[3];
    CHECK_OK(rt, pymem_gc_get_stats(rt, s));
    return s[0].collections + s[1].collections + s[2].collections;
}

/* An object for the callbacks to poke at. */
static pymem_object *spare;

/* ------------------------------------------------------------------------ */
/* A Node type whose callbacks try everything. Payload: one child. */

typedef struct {
    pymem_object *child;
} node_payload;

static struct {
    int traverses_checked, clears_checked, deallocs_checked, finalizes_checked;
    int in_traverse; /* set while a traverse runs */
} seen;

/* Every call that changes something: BUSY inside traverse. */
static void traverse_refuses_everything(pymem_object *self) {
    pymem_object *o = NULL;
    CHECK_FAILS(rt, pymem_list_new(rt, &o), PYMEM_ERR_BUSY, "inside a traverse callback pymem may not be called");
    CHECK(o == NULL);
    CHECK_FAILS(rt, pymem_incref(rt, spare), PYMEM_ERR_BUSY, "traverse");
    CHECK_FAILS(rt, pymem_decref(rt, spare), PYMEM_ERR_BUSY, "traverse");
    int64_t found = -1;
    CHECK_FAILS(rt, pymem_gc_collect(rt, 2, &found), PYMEM_ERR_BUSY, "traverse");
    CHECK(found == -1);
    CHECK_FAILS(rt, pymem_gc_freeze(rt), PYMEM_ERR_BUSY, "traverse");
    CHECK_FAILS(rt, pymem_gc_set_threshold(rt, 1, 1, 1), PYMEM_ERR_BUSY, "traverse");
    CHECK_FAILS(rt, pymem_gc_set_debug(rt, 1), PYMEM_ERR_BUSY, "traverse");
    CHECK_FAILS(rt, pymem_gc_get_objects(rt, -1, &o), PYMEM_ERR_BUSY, "traverse");
    CHECK_FAILS(rt, pymem_gc_get_referrers(rt, self, &o), PYMEM_ERR_BUSY, "traverse");
    CHECK_FAILS(rt, pymem_gc_get_referents(rt, self, &o), PYMEM_ERR_BUSY, "traverse");
    CHECK_FAILS(rt, pymem_setattr(rt, self, "x", spare), PYMEM_ERR_BUSY, "traverse");
    CHECK_FAILS(rt, pymem_list_append(rt, spare, spare), PYMEM_ERR_BUSY, "traverse");
    CHECK_FAILS(rt, pymem_clear_free_lists(rt), PYMEM_ERR_BUSY, "traverse");
    CHECK_NULL_FAILS(rt, pymem_malloc(rt, 16), PYMEM_ERR_BUSY, "traverse");
    CHECK_FAILS(rt, pymem_runtime_free(rt), PYMEM_ERR_BUSY, "pymem_runtime_free");
    /* Reads work. */
    ptrdiff_t n = 0;
    CHECK_OK(rt, pymem_refcount(rt, spare, &n));
    int t = 0;
    CHECK_OK(rt, pymem_gc_is_tracked(rt, spare, &t));
    CHECK(t == 1);
    const char *name = NULL;
    CHECK_OK(rt, pymem_type_name(rt, self, &name));
    CHECK_STR_EQ(name, "Node");
}

static int node_traverse(pymem_object *self, pymem_visit_fn visit, void *arg, void *userdata) {
    (void)userdata;
    void *p = NULL;
    CHECK_OK(rt, pymem_instance_payload(rt, self, &p));
    if (seen.traverses_checked < 3) { /* the whole list a few times is enough */
        traverse_refuses_everything(self);
        seen.traverses_checked++;
    }
    node_payload *np = p;
    return np->child ? visit(np->child, arg) : 0;
}

/* Inside clear and dealloc: incref/decref (and reads) only. */
static void refcount_only(pymem_runtime *r, pymem_object *self) {
    pymem_object *o = NULL;
    CHECK_FAILS(r, pymem_list_new(r, &o), PYMEM_ERR_BUSY, "only pymem_incref and pymem_decref");
    int64_t found = -1;
    CHECK_FAILS(r, pymem_gc_collect(r, 0, &found), PYMEM_ERR_BUSY, "clear or dealloc");
    CHECK_FAILS(r, pymem_gc_get_objects(r, 0, &o), PYMEM_ERR_BUSY, "clear or dealloc");
    CHECK_FAILS(r, pymem_gc_disable(r), PYMEM_ERR_BUSY, "clear or dealloc");
    CHECK_FAILS(r, pymem_list_append(r, spare, spare), PYMEM_ERR_BUSY, "clear or dealloc");
    CHECK_FAILS(r, pymem_runtime_free(r), PYMEM_ERR_BUSY, "pymem_runtime_free");
    CHECK_OK(r, pymem_incref(r, spare));
    CHECK_OK(r, pymem_decref(r, spare));
    const char *name = NULL;
    CHECK_OK(r, pymem_type_name(r, self, &name));
    CHECK_STR_EQ(name, "Node");
}

static void node_clear(pymem_runtime *r, pymem_object *self, void *userdata) {
    (void)userdata;
    refcount_only(r, self);
    seen.clears_checked++;
    void *p = NULL;
    CHECK_OK(r, pymem_instance_payload(r, self, &p));
    node_payload *np = p;
    pymem_object *child = np->child;
    np->child = NULL;
    if (child != NULL) CHECK_OK(r, pymem_decref(r, child));
}

static void node_dealloc(pymem_object *self, void *payload, void *userdata) {
    (void)payload;
    (void)userdata;
    refcount_only(rt, self);
    seen.deallocs_checked++;
}

/* Inside finalize: anything but runtime_free. */
static void anything_but_free(pymem_runtime *r, pymem_object *self) {
    const uint64_t before = collections();
    int64_t found = -1;
    CHECK_OK(r, pymem_gc_collect(r, 2, &found));
    /* During a collection it returns 0 at once, uncounted; outside one (a
       finalizer run because its object died by reference count, PEP 442)
       it is a real collection. */
    CHECK((found == 0 && collections() == before) || collections() == before + 1);
    pymem_object *l = NULL, *d = NULL, *k = NULL, *objs = NULL, *refs = NULL;
    CHECK_OK(r, pymem_list_new(r, &l));
    CHECK_OK(r, pymem_dict_new(r, &d));
    CHECK_OK(r, pymem_str_new(r, "key", 3, &k));
    CHECK_FAILS(r, pymem_dict_set(r, d, l, l), PYMEM_ERR_TYPE, "unhashable type: 'list'"); /* errors work too */
    CHECK_OK(r, pymem_dict_set(r, d, k, l));
    CHECK_OK(r, pymem_decref(r, k));
    CHECK_OK(r, pymem_list_append(r, l, d));
    CHECK_OK(r, pymem_gc_get_objects(r, -1, &objs));
    CHECK_OK(r, pymem_gc_get_referrers(r, self, &refs)); /* traverse callbacks, nested */
    CHECK_OK(r, pymem_decref(r, refs));
    CHECK_OK(r, pymem_decref(r, objs));
    CHECK_OK(r, pymem_decref(r, l)); /* l and d: a cycle left for a later collection */
    CHECK_OK(r, pymem_decref(r, d));
    int64_t t[3];
    CHECK_OK(r, pymem_gc_get_threshold(r, t));
    CHECK_OK(r, pymem_gc_set_threshold(r, t[0], t[1], t[2]));
    CHECK_OK(r, pymem_gc_freeze(r));
    CHECK_OK(r, pymem_gc_unfreeze(r));
    uint32_t flags = 0;
    CHECK_OK(r, pymem_gc_get_debug(r, &flags));
    CHECK_OK(r, pymem_gc_set_debug(r, flags));
    void *p = pymem_malloc(r, 100);
    CHECK(p != NULL);
    CHECK_OK(r, pymem_free(r, p));
    CHECK_FAILS(r, pymem_runtime_free(r), PYMEM_ERR_BUSY, "inside a host callback");
}

static void node_finalize(pymem_runtime *r, pymem_object *self, void *userdata) {
    (void)userdata;
    anything_but_free(r, self);
    seen.finalizes_checked++;
}

static pymem_type *node_type;

static pymem_object *new_node(pymem_object *child) {
    pymem_object *n = NULL;
    CHECK_OK(rt, pymem_instance_new(rt, node_type, &n));
    void *p = NULL;
    CHECK_OK(rt, pymem_instance_payload(rt, n, &p));
    node_payload *np = p;
    if (child != NULL) CHECK_OK(rt, pymem_incref(rt, child));
    np->child = child;
    return n;
}

static void set_child(pymem_object *n, pymem_object *child) {
    void *p = NULL;
    CHECK_OK(rt, pymem_instance_payload(rt, n, &p));
    node_payload *np = p;
    CHECK_OK(rt, pymem_incref(rt, child));
    pymem_object *old = np->child;
    np->child = child;
    if (old) drop(old);
}

/* ------------------------------------------------------------------------ */

static void test_traverse_clear_dealloc_finalize(void) {
    memset(&seen, 0, sizeof seen);
    /* A cycle of three Nodes, released. */
    pymem_object *a = new_node(NULL), *b = new_node(a), *c = new_node(b);
    set_child(a, c);
    drop(a);
    drop(b);
    drop(c);
    /* get_referrers runs the traverse callbacks too, restricted. */
    pymem_object *refs = NULL;
    CHECK_OK(rt, pymem_gc_get_referrers(rt, a, &refs));
    CHECK(seen.traverses_checked >= 1);
    size_t n = 0;
    CHECK_OK(rt, pymem_list_len(rt, refs, &n));
    CHECK(n == 1); /* b, whose payload holds a */
    drop(refs);

    /* The collection: traverse (read-only), finalize (anything), clear and
       dealloc (refcounts only). The finalizers' own cycle (l <-> d) is
       made after the garbage was found: it waits for the next collection. */
    int64_t found = collect(2);
    CHECK_EQ_U64(found, 3);
    CHECK(seen.traverses_checked == 3);
    CHECK_EQ_U64(seen.finalizes_checked, 3);
    CHECK(seen.clears_checked >= 3);
    CHECK_EQ_U64(seen.deallocs_checked, 3);
    CHECK_EQ_U64(collect(2), 6); /* the three l <-> d cycles of the finalizers */

    /* A plain refcount death: the finalizer runs there too (PEP 442), with
       anything allowed, then clear and dealloc restricted the same way. */
    int clears = seen.clears_checked, deallocs = seen.deallocs_checked, finalizes = seen.finalizes_checked;
    pymem_object *lone = new_node(NULL);
    drop(lone);
    CHECK(seen.clears_checked == clears + 1 && seen.deallocs_checked == deallocs + 1);
    CHECK(seen.finalizes_checked == finalizes + 1);
    printf("  traverse: read-only; clear/dealloc: incref/decref only; finalize: anything but runtime_free\n");
}

/* ------------------------------------------------------------------------ */
/* gc callbacks and the debug sink: anything but runtime_free. */

static int callback_calls, sink_calls;

static void gc_callback(pymem_runtime *r, const char *phase, const pymem_gc_info *info, void *userdata) {
    (void)info;
    (void)userdata;
    (void)phase;
    callback_calls++;
    /* A node made and dropped here is freed at once (no cycle). */
    pymem_object *n = NULL;
    CHECK_OK(r, pymem_instance_new(r, node_type, &n));
    anything_but_free(r, n);
    CHECK_OK(r, pymem_decref(r, n));
    uint64_t id = 0;
    CHECK_OK(r, pymem_gc_add_callback(r, gc_callback, NULL, &id)); /* waits for the next phase */
    CHECK_OK(r, pymem_gc_remove_callback(r, id));
}

static void sink(const char *line, void *userdata) {
    (void)line;
    (void)userdata;
    sink_calls++;
    pymem_object *l = NULL;
    CHECK_OK(rt, pymem_list_new(rt, &l));
    anything_but_free(rt, l);
    CHECK_OK(rt, pymem_decref(rt, l));
}

static void test_gc_callbacks_and_sink(void) {
    collect(2);
    uint64_t id = 0;
    CHECK_OK(rt, pymem_gc_add_callback(rt, gc_callback, NULL, &id));
    CHECK_OK(rt, pymem_gc_set_debug_sink(rt, sink, NULL));
    CHECK_OK(rt, pymem_gc_set_debug(rt, PYMEM_GC_DEBUG_STATS));
    const uint64_t before = collections();
    pymem_object *a = NULL, *b = NULL;
    CHECK_OK(rt, pymem_list_new(rt, &a));
    CHECK_OK(rt, pymem_list_new(rt, &b));
    CHECK_OK(rt, pymem_list_append(rt, a, b));
    CHECK_OK(rt, pymem_list_append(rt, b, a));
    drop(a);
    drop(b);
    /* The callbacks and the sink each leave an l <-> d cycle: the "start"
       callback's is made before the garbage is looked for, and found; the
       others wait for the next collection. The node the "start" callback
       drops dies by its count, so its finalizer runs then (PEP 442) and
       leaves one more l <-> d cycle, found too: 2 + 2 + 2. */
    int64_t found = collect(2);
    CHECK_EQ_U64(found, 6);
    CHECK_EQ_U64(callback_calls, 2);
    CHECK_EQ_U64(sink_calls, 4);
    CHECK_EQ_U64(collections() - before, 1); /* the nested ones did not count */
    CHECK_OK(rt, pymem_gc_set_debug(rt, 0));
    CHECK_OK(rt, pymem_gc_remove_callback(rt, id));
    collect(2);
    CHECK_EQ_U64(collect(2), 0);
    printf("  gc callbacks and the debug sink: anything but runtime_free; nested collections return 0\n");
}

/* ------------------------------------------------------------------------ */
/* Native functions: a real collection; automatic ones wait for the
   outermost call. */

static int starts;
static void count_starts(pymem_runtime *r, const char *phase, const pymem_gc_info *info, void *userdata) {
    (void)r;
    (void)info;
    (void)userdata;
    if (strcmp(phase, "start") == 0) starts++;
}

static pymem_status native(pymem_runtime *r, pymem_object *const *args, size_t nargs, pymem_object **result,
                           void *userdata) {
    (void)args;
    (void)nargs;
    (void)userdata;
    /* A cycle, then a real collection from inside the call. */
    pymem_object *a = NULL, *b = NULL;
    CHECK_OK(r, pymem_list_new(r, &a));
    CHECK_OK(r, pymem_list_new(r, &b));
    CHECK_OK(r, pymem_list_append(r, a, b));
    CHECK_OK(r, pymem_list_append(r, b, a));
    CHECK_OK(r, pymem_decref(r, a));
    CHECK_OK(r, pymem_decref(r, b));
    int64_t found = -1;
    CHECK_OK(r, pymem_gc_collect(r, 0, &found));
    CHECK(found == 2);
    /* Past threshold0 inside the call: no automatic collection here. */
    const int before = starts;
    pymem_object *held = NULL;
    CHECK_OK(r, pymem_list_new(r, &held));
    for (int i = 0; i < 800; i++) {
        pymem_object *l = NULL;
        CHECK_OK(r, pymem_list_new(r, &l));
        CHECK_OK(r, pymem_list_append(r, held, l));
        CHECK_OK(r, pymem_decref(r, l));
    }
    CHECK(starts == before);
    int64_t c[3];
    CHECK_OK(r, pymem_gc_get_count(r, c));
    CHECK(c[0] > 700);
    *result = held;
    return PYMEM_OK;
}

static void test_native_and_automatic(void) {
    collect(2);
    uint64_t id = 0;
    CHECK_OK(rt, pymem_gc_add_callback(rt, count_starts, NULL, &id));
    pymem_object *f = NULL, *result = NULL;
    CHECK_OK(rt, pymem_function_new(rt, "native", native, NULL, &f));
    starts = 0;
    CHECK_OK(rt, pymem_call(rt, f, NULL, 0, &result));
    CHECK_EQ_U64(starts, 2); /* the one inside, and the automatic one once pymem_call returned */
    int64_t c[3];
    CHECK_OK(rt, pymem_gc_get_count(rt, c));
    CHECK(c[0] == 0);
    drop(result);
    drop(f);
    CHECK_OK(rt, pymem_gc_remove_callback(rt, id));
    printf("  native functions collect for real; automatic collections wait for the outermost call\n");
}

int main(void) {
    CHECK_OK(NULL, pymem_runtime_new(NULL, &rt));
    pymem_object *none = NULL;
    CHECK_OK(rt, pymem_none(rt, &none));
    pymem_type_spec spec;
    pymem_type_spec_init(&spec);
    spec.name = "Node";
    spec.payload_size = sizeof(node_payload);
    spec.traverse = node_traverse;
    spec.clear = node_clear;
    spec.finalize = node_finalize;
    spec.dealloc = node_dealloc;
    CHECK_OK(rt, pymem_type_new(rt, &spec, &node_type));
    CHECK_OK(rt, pymem_list_new(rt, &spare));
    collect(2);
    CHECK_OK(rt, pymem_clear_free_lists(rt));
    const pymem_alloc_stats base = stats_of(rt);

    printf("gc_reentry:\n");
    test_traverse_clear_dealloc_finalize();
    test_gc_callbacks_and_sink();
    test_native_and_automatic();

    CHECK(count(spare) == 1);
    CHECK_EQ_U64(collect(2), 0);
    CHECK_OK(rt, pymem_clear_free_lists(rt));
    const pymem_alloc_stats end = stats_of(rt);
    CHECK_EQ_U64(end.blocks_in_use, base.blocks_in_use);
    CHECK_EQ_U64(end.bytes_in_use, base.bytes_in_use);
    drop(spare);
    CHECK_OK(rt, pymem_runtime_free(rt));
    printf("gc_reentry: ok\n");
    return 0;
}
