/*
 * weakref.c: weak references from C (pymem_weakref_new/get/free and
 * pymem_weakref_callback), natively and under valgrind.
 *
 *   - weak references to an instance, a module and a function; refused
 *     for int, float, str, tuple, list, dict (and None, bool) with
 *     PYMEM_ERR_TYPE and CPython's message
 *   - get while the referent lives gives a NEW reference; after its death,
 *     None
 *   - the callback runs once when the referent dies by decref, before that
 *     decref returns, with the weak reference already cleared and the
 *     runtime usable inside (it makes a list and drops it); runtime_free
 *     inside it is BUSY
 *   - the callback runs when the referent dies in a cycle collected by
 *     pymem_gc_collect, already cleared, and before the finalizers (as
 *     CPython's handle_weakrefs); a collection asked for inside it returns 0
 *   - freed / double-freed / foreign / other runtime's handles and NULLs:
 *     INVALID_POINTER or NULL_ARGUMENT, nothing changed
 *   - a weak reference freed before its referent dies (or while its
 *     callback waits) never gets its callback; a callback may free its own
 *     handle
 *   - a chain of N objects whose callbacks drop the next one: every
 *     callback runs, in constant stack
 *   - pymem_runtime_free with live weak references and referents: no
 *     callback runs, nothing leaks (valgrind)
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pymem.h"
#include "check.h"

static pymem_runtime *rt;

static void drop(pymem_object *o) { CHECK_OK(rt, pymem_decref(rt, o)); }

static intptr_t count(pymem_object *o) { return refcount_of(rt, o); }

static pymem_object *none_obj(void) {
    pymem_object *n = NULL;
    CHECK_OK(rt, pymem_none(rt, &n));
    return n;
}

static pymem_status native_noop(pymem_runtime *r, pymem_object *const *args, size_t nargs,
                                pymem_object **result, void *userdata) {
    (void)r;
    (void)args;
    (void)nargs;
    (void)result;
    (void)userdata;
    return PYMEM_OK;
}

/* A plain host type (no callbacks). */
static pymem_type *define_plain(pymem_runtime *r, const char *name) {
    pymem_type_spec spec;
    pymem_type_spec_init(&spec);
    spec.name = name;
    spec.payload_size = 16;
    pymem_type *t = NULL;
    CHECK_OK(r, pymem_type_new(r, &spec, &t));
    return t;
}

/* ------------------------------------------------------------------------ */
/* What a callback saw. */

typedef struct {
    int calls;
    pymem_weakref *wr_seen;
    int get_status;       /* pymem_weakref_get inside the callback */
    int got_none;         /* ... and it gave None */
    int list_status;      /* the runtime is usable: a list made and dropped */
    int free_rt_status;   /* pymem_runtime_free inside: BUSY */
    int collect_status;   /* pymem_gc_collect inside */
    int64_t collect_found;
    int order;            /* the global event counter when it ran */
    int free_self;        /* free its own handle inside */
    pymem_weakref *free_other; /* free this handle inside */
    int probe;            /* do the checks above */
} cb_record;

static int events; /* a global clock for ordering callbacks and finalizers */

static void record_cb(pymem_runtime *r, pymem_weakref *wr, void *userdata) {
    cb_record *rec = userdata;
    rec->calls++;
    rec->wr_seen = wr;
    rec->order = ++events;
    if (rec->probe) {
        pymem_object *got = NULL;
        rec->get_status = pymem_weakref_get(r, wr, &got);
        pymem_object *none = NULL;
        CHECK_OK(r, pymem_none(r, &none));
        rec->got_none = got != NULL && pymem_is(got, none);
        if (got != NULL)
            CHECK_OK(r, pymem_decref(r, got));
        pymem_object *list = NULL;
        rec->list_status = pymem_list_new(r, &list);
        if (rec->list_status == PYMEM_OK) {
            pymem_object *i = NULL;
            CHECK_OK(r, pymem_int_new(r, 123456, &i));
            CHECK_OK(r, pymem_list_append(r, list, i));
            CHECK_OK(r, pymem_decref(r, i));
            CHECK_OK(r, pymem_decref(r, list));
        }
        rec->free_rt_status = pymem_runtime_free(r);
        rec->collect_status = pymem_gc_collect(r, 2, &rec->collect_found);
    }
    if (rec->free_other != NULL)
        CHECK_OK(r, pymem_weakref_free(r, rec->free_other));
    if (rec->free_self)
        CHECK_OK(r, pymem_weakref_free(r, wr));
}

/* ------------------------------------------------------------------------ */

static void test_allowed_kinds(void) {
    pymem_type *plain = define_plain(rt, "Plain");
    pymem_object *objs[3] = {NULL, NULL, NULL};
    CHECK_OK(rt, pymem_instance_new(rt, plain, &objs[0]));
    CHECK_OK(rt, pymem_module_new(rt, "mod", &objs[1]));
    CHECK_OK(rt, pymem_function_new(rt, "fn", native_noop, NULL, &objs[2]));
    for (int i = 0; i < 3; i++) {
        pymem_object *o = objs[i];
        pymem_weakref *wr = NULL;
        CHECK_OK(rt, pymem_weakref_new(rt, o, NULL, NULL, &wr));
        CHECK(wr != NULL);
        CHECK_REFCOUNT(rt, o, 1); /* not counted */
        pymem_object *got = NULL;
        CHECK_OK(rt, pymem_weakref_get(rt, wr, &got));
        CHECK(pymem_is(got, o));
        CHECK_REFCOUNT(rt, o, 2); /* a new reference */
        drop(got);
        /* Two handles to one object are distinct. */
        pymem_weakref *wr2 = NULL;
        CHECK_OK(rt, pymem_weakref_new(rt, o, NULL, NULL, &wr2));
        CHECK(wr2 != wr);
        drop(o);
        pymem_object *none = none_obj();
        CHECK_OK(rt, pymem_weakref_get(rt, wr, &got));
        CHECK(pymem_is(got, none));
        CHECK_OK(rt, pymem_weakref_get(rt, wr2, &got));
        CHECK(pymem_is(got, none));
        CHECK_OK(rt, pymem_weakref_free(rt, wr));
        CHECK_OK(rt, pymem_weakref_free(rt, wr2));
    }
    printf("  instance, module, function: weak references work\n");
}

static void test_refused_kinds(void) {
    struct {
        pymem_object *o;
        const char *message;
    } cases[10];
    size_t n = 0;
    CHECK_OK(rt, pymem_int_new(rt, 1000000, &cases[n].o));
    cases[n++].message = "cannot create weak reference to 'int' object";
    CHECK_OK(rt, pymem_int_new(rt, 7, &cases[n].o)); /* small, immortal */
    cases[n++].message = "cannot create weak reference to 'int' object";
    CHECK_OK(rt, pymem_float_new(rt, 2.5, &cases[n].o));
    cases[n++].message = "cannot create weak reference to 'float' object";
    CHECK_OK(rt, pymem_str_new(rt, "hello", 5, &cases[n].o));
    cases[n++].message = "cannot create weak reference to 'str' object";
    pymem_object *items[1] = {cases[0].o};
    CHECK_OK(rt, pymem_tuple_new(rt, 1, items, &cases[n].o));
    cases[n++].message = "cannot create weak reference to 'tuple' object";
    CHECK_OK(rt, pymem_list_new(rt, &cases[n].o));
    cases[n++].message = "cannot create weak reference to 'list' object";
    CHECK_OK(rt, pymem_dict_new(rt, &cases[n].o));
    cases[n++].message = "cannot create weak reference to 'dict' object";
    CHECK_OK(rt, pymem_none(rt, &cases[n].o));
    cases[n++].message = "cannot create weak reference to 'NoneType' object";
    CHECK_OK(rt, pymem_bool(rt, 1, &cases[n].o));
    cases[n++].message = "cannot create weak reference to 'bool' object";
    for (size_t i = 0; i < n; i++) {
        pymem_weakref *wr = (pymem_weakref *)(uintptr_t)0x1234;
        intptr_t before = count(cases[i].o);
        CHECK_FAILS_UNCHANGED(rt, rt, pymem_weakref_new(rt, cases[i].o, record_cb, NULL, &wr), PYMEM_ERR_TYPE,
                              cases[i].message);
        CHECK(wr == (pymem_weakref *)(uintptr_t)0x1234); /* out untouched on failure */
        CHECK_EQ_U64(count(cases[i].o), before);
    }
    for (size_t i = 0; i < n; i++)
        drop(cases[i].o);
    printf("  int, float, str, tuple, list, dict, None, bool: PYMEM_ERR_TYPE\n");
}

static void test_callback_on_decref(void) {
    pymem_type *plain = define_plain(rt, "Target");
    pymem_object *o = NULL;
    CHECK_OK(rt, pymem_instance_new(rt, plain, &o));
    cb_record rec;
    memset(&rec, 0, sizeof rec);
    rec.probe = 1;
    pymem_weakref *wr = NULL;
    CHECK_OK(rt, pymem_weakref_new(rt, o, record_cb, &rec, &wr));
    /* References taken and dropped: no callback. */
    pymem_object *got = NULL;
    CHECK_OK(rt, pymem_weakref_get(rt, wr, &got));
    drop(got);
    CHECK(rec.calls == 0);
    drop(o); /* the last reference: the callback runs before this returns */
    CHECK_EQ_U64(rec.calls, 1);
    CHECK(rec.wr_seen == wr);
    CHECK_STATUS(rt, rec.get_status, PYMEM_OK);
    CHECK(rec.got_none);
    CHECK_STATUS(rt, rec.list_status, PYMEM_OK);
    CHECK_STATUS(rt, rec.free_rt_status, PYMEM_ERR_BUSY);
    CHECK_STATUS(rt, rec.collect_status, PYMEM_OK); /* an ordinary collection: not inside one */
    CHECK_OK(rt, pymem_weakref_get(rt, wr, &got));
    CHECK(pymem_is(got, none_obj()));
    /* Never twice. */
    CHECK_OK(rt, pymem_gc_collect(rt, 2, NULL));
    CHECK_EQ_U64(rec.calls, 1);
    CHECK_OK(rt, pymem_weakref_free(rt, wr));

    /* A function held only by a list: the callback runs when the list's
       death frees it (iteratively, as a child). */
    pymem_object *list = NULL;
    CHECK_OK(rt, pymem_list_new(rt, &list));
    pymem_object *fn = NULL;
    CHECK_OK(rt, pymem_function_new(rt, "held", native_noop, NULL, &fn));
    CHECK_OK(rt, pymem_list_append(rt, list, fn));
    drop(fn);
    memset(&rec, 0, sizeof rec);
    rec.free_self = 1; /* the callback frees its own handle */
    CHECK_OK(rt, pymem_weakref_new(rt, fn, record_cb, &rec, &wr));
    drop(list);
    CHECK_EQ_U64(rec.calls, 1);
    CHECK_FAILS(rt, pymem_weakref_free(rt, wr), PYMEM_ERR_INVALID_POINTER, "not a live weak reference");
    printf("  decref: callback once, already cleared, runtime usable inside\n");
}

/* A type with a finalizer that records when it ran, and an attribute
   cycle. */
static int finalized_at;

static void fin_finalize(pymem_runtime *r, pymem_object *self, void *userdata) {
    (void)r;
    (void)self;
    (void)userdata;
    finalized_at = ++events;
}

static void test_callback_in_collection(void) {
    pymem_type_spec spec;
    pymem_type_spec_init(&spec);
    spec.name = "Fin";
    spec.finalize = fin_finalize;
    pymem_type *fin = NULL;
    CHECK_OK(rt, pymem_type_new(rt, &spec, &fin));

    CHECK_OK(rt, pymem_gc_collect(rt, 2, NULL));
    pymem_object *a = NULL, *b = NULL;
    CHECK_OK(rt, pymem_instance_new(rt, fin, &a));
    CHECK_OK(rt, pymem_instance_new(rt, fin, &b));
    CHECK_OK(rt, pymem_setattr(rt, a, "other", b));
    CHECK_OK(rt, pymem_setattr(rt, b, "other", a));
    cb_record rec_a, rec_b, rec_kept;
    memset(&rec_a, 0, sizeof rec_a);
    memset(&rec_b, 0, sizeof rec_b);
    memset(&rec_kept, 0, sizeof rec_kept);
    rec_a.probe = 1;
    pymem_weakref *wa = NULL, *wb = NULL, *wb_no_cb = NULL, *wfreed = NULL;
    CHECK_OK(rt, pymem_weakref_new(rt, a, record_cb, &rec_a, &wa));
    CHECK_OK(rt, pymem_weakref_new(rt, b, record_cb, &rec_b, &wb));
    CHECK_OK(rt, pymem_weakref_new(rt, b, NULL, NULL, &wb_no_cb));
    CHECK_OK(rt, pymem_weakref_new(rt, b, record_cb, &rec_kept, &wfreed));
    CHECK_OK(rt, pymem_weakref_free(rt, wfreed)); /* freed first: never called */
    drop(a);
    drop(b);
    CHECK(rec_a.calls == 0 && rec_b.calls == 0); /* the cycle keeps them alive */
    pymem_object *got = NULL;
    CHECK_OK(rt, pymem_weakref_get(rt, wa, &got));
    CHECK(pymem_is(got, a));
    drop(got);

    finalized_at = 0;
    events = 0;
    int64_t found = -1;
    CHECK_OK(rt, pymem_gc_collect(rt, 2, &found));
    CHECK_EQ_U64(found, 2);
    CHECK_EQ_U64(rec_a.calls, 1);
    CHECK_EQ_U64(rec_b.calls, 1);
    CHECK_EQ_U64(rec_kept.calls, 0);
    CHECK(rec_a.wr_seen == wa && rec_b.wr_seen == wb);
    CHECK_STATUS(rt, rec_a.get_status, PYMEM_OK);
    CHECK(rec_a.got_none); /* cleared before the callback ran */
    CHECK_STATUS(rt, rec_a.list_status, PYMEM_OK);
    CHECK_STATUS(rt, rec_a.free_rt_status, PYMEM_ERR_BUSY);
    CHECK_STATUS(rt, rec_a.collect_status, PYMEM_OK);
    CHECK_EQ_U64(rec_a.collect_found, 0); /* a collection inside one returns 0 */
    CHECKF(finalized_at > rec_a.order && finalized_at > rec_b.order,
           "callbacks (%d, %d) run before the finalizers (%d)", rec_a.order, rec_b.order, finalized_at);
    pymem_object *none = none_obj();
    CHECK_OK(rt, pymem_weakref_get(rt, wb_no_cb, &got));
    CHECK(pymem_is(got, none));
    CHECK_OK(rt, pymem_weakref_free(rt, wa));
    CHECK_OK(rt, pymem_weakref_free(rt, wb));
    CHECK_OK(rt, pymem_weakref_free(rt, wb_no_cb));

    /* A module in a self-cycle (its attribute dict holds it). */
    pymem_object *m = NULL;
    CHECK_OK(rt, pymem_module_new(rt, "cyclic", &m));
    CHECK_OK(rt, pymem_setattr(rt, m, "self", m));
    cb_record rec_m;
    memset(&rec_m, 0, sizeof rec_m);
    rec_m.probe = 1;
    pymem_weakref *wm = NULL;
    CHECK_OK(rt, pymem_weakref_new(rt, m, record_cb, &rec_m, &wm));
    drop(m);
    CHECK_OK(rt, pymem_gc_collect(rt, 2, &found));
    CHECK(found >= 1);
    CHECK_EQ_U64(rec_m.calls, 1);
    CHECK(rec_m.got_none);
    CHECK_OK(rt, pymem_weakref_free(rt, wm));
    printf("  collection: cleared first, callbacks before finalizers, once\n");
}

static void test_bad_handles(void) {
    pymem_object *m = NULL;
    CHECK_OK(rt, pymem_module_new(rt, "m", &m));
    pymem_weakref *wr = NULL;
    pymem_object *got = NULL;

    CHECK_FAILS(rt, pymem_weakref_new(rt, NULL, NULL, NULL, &wr), PYMEM_ERR_NULL_ARGUMENT, "NULL");
    CHECK_FAILS(rt, pymem_weakref_new(rt, m, NULL, NULL, NULL), PYMEM_ERR_NULL_ARGUMENT, "out is NULL");
    CHECK_FAILS(NULL, pymem_weakref_new(NULL, m, NULL, NULL, &wr), PYMEM_ERR_NULL_ARGUMENT, "runtime is NULL");
    CHECK_FAILS(rt, pymem_weakref_get(rt, NULL, &got), PYMEM_ERR_NULL_ARGUMENT, "wr is NULL");
    CHECK_OK(rt, pymem_weakref_free(rt, NULL));

    CHECK_OK(rt, pymem_weakref_new(rt, m, NULL, NULL, &wr));
    CHECK_FAILS(rt, pymem_weakref_get(rt, wr, NULL), PYMEM_ERR_NULL_ARGUMENT, "out is NULL");
    CHECK_OK(rt, pymem_weakref_free(rt, wr));
    /* Freed: use and double free are refused. */
    got = NULL;
    CHECK_FAILS(rt, pymem_weakref_get(rt, wr, &got), PYMEM_ERR_INVALID_POINTER, "not a live weak reference");
    CHECK(got == NULL);
    CHECK_FAILS(rt, pymem_weakref_free(rt, wr), PYMEM_ERR_INVALID_POINTER, "not a live weak reference");
    /* Foreign pointers: the stack, malloc'd memory, an object, a block of
       the runtime's allocator. */
    uint64_t local[4] = {0, 0, 0, 0};
    void *heap_mem = malloc(64);
    CHECK(heap_mem != NULL);
    memset(heap_mem, 0xAB, 64);
    void *block = pymem_malloc(rt, 32);
    CHECK(block != NULL);
    void *foreign[4] = {local, heap_mem, m, block};
    for (int i = 0; i < 4; i++) {
        CHECK_FAILS_UNCHANGED(rt, rt, pymem_weakref_get(rt, (pymem_weakref *)foreign[i], &got),
                              PYMEM_ERR_INVALID_POINTER, "not a live weak reference");
        CHECK_FAILS_UNCHANGED(rt, rt, pymem_weakref_free(rt, (pymem_weakref *)foreign[i]),
                              PYMEM_ERR_INVALID_POINTER, "not a live weak reference");
    }
    free(heap_mem);
    CHECK_OK(rt, pymem_free(rt, block));
    /* A dead object (a big int, freed) is refused as a referent. */
    pymem_object *i = NULL;
    CHECK_OK(rt, pymem_int_new(rt, 99999, &i));
    drop(i);
    CHECK_FAILS(rt, pymem_weakref_new(rt, i, NULL, NULL, &wr), PYMEM_ERR_INVALID_POINTER, "invalid object");

    /* Another runtime's handle, and its objects. */
    pymem_runtime *other = NULL;
    CHECK_OK(NULL, pymem_runtime_new(NULL, &other));
    pymem_object *om = NULL;
    CHECK_OK(other, pymem_module_new(other, "om", &om));
    pymem_weakref *owr = NULL;
    CHECK_OK(other, pymem_weakref_new(other, om, NULL, NULL, &owr));
    CHECK_FAILS(rt, pymem_weakref_get(rt, owr, &got), PYMEM_ERR_INVALID_POINTER, "not a live weak reference");
    CHECK_FAILS(rt, pymem_weakref_free(rt, owr), PYMEM_ERR_INVALID_POINTER, "not a live weak reference");
    CHECK_FAILS(rt, pymem_weakref_new(rt, om, NULL, NULL, &wr), PYMEM_ERR_INVALID_POINTER, "invalid object");
    CHECK_OK(other, pymem_weakref_get(other, owr, &got));
    CHECK(pymem_is(got, om));
    CHECK_OK(other, pymem_decref(other, got));
    CHECK_OK(other, pymem_runtime_free(other)); /* its handle goes with it */
    drop(m);
    printf("  NULL, freed, double-freed, foreign and other runtime's handles refused\n");
}

/* Callbacks may not be made inside clear/dealloc: pymem_weakref_new there is
   BUSY. */
static pymem_status new_in_clear_status;
static pymem_object *clear_target;

static void busy_clear(pymem_runtime *r, pymem_object *self, void *userdata) {
    (void)self;
    (void)userdata;
    pymem_weakref *wr = NULL;
    new_in_clear_status = pymem_weakref_new(r, clear_target, NULL, NULL, &wr);
}

static void test_freed_first_and_busy(void) {
    /* Freed before the referent dies: never called. */
    pymem_object *f = NULL;
    CHECK_OK(rt, pymem_function_new(rt, "f", native_noop, NULL, &f));
    cb_record rec;
    memset(&rec, 0, sizeof rec);
    pymem_weakref *wr = NULL;
    CHECK_OK(rt, pymem_weakref_new(rt, f, record_cb, &rec, &wr));
    CHECK_OK(rt, pymem_weakref_free(rt, wr));
    drop(f);
    CHECK_EQ_U64(rec.calls, 0);

    /* Two weak references to one object: the first callback to run (the
       newest weak reference's, as CPython) frees the other, whose callback
       then never runs. */
    CHECK_OK(rt, pymem_function_new(rt, "g", native_noop, NULL, &f));
    cb_record older, newer;
    memset(&older, 0, sizeof older);
    memset(&newer, 0, sizeof newer);
    pymem_weakref *w_old = NULL, *w_new = NULL;
    CHECK_OK(rt, pymem_weakref_new(rt, f, record_cb, &older, &w_old));
    CHECK_OK(rt, pymem_weakref_new(rt, f, record_cb, &newer, &w_new));
    newer.free_other = w_old;
    drop(f);
    CHECK_EQ_U64(newer.calls, 1);
    CHECK_EQ_U64(older.calls, 0);
    CHECK_FAILS(rt, pymem_weakref_free(rt, w_old), PYMEM_ERR_INVALID_POINTER, "not a live weak reference");
    CHECK_OK(rt, pymem_weakref_free(rt, w_new));

    /* Inside a clear callback, pymem_weakref_new is BUSY. */
    pymem_type_spec spec;
    pymem_type_spec_init(&spec);
    spec.name = "BusyClear";
    spec.clear = busy_clear;
    pymem_type *t = NULL;
    CHECK_OK(rt, pymem_type_new(rt, &spec, &t));
    CHECK_OK(rt, pymem_module_new(rt, "target", &clear_target));
    pymem_object *o = NULL;
    CHECK_OK(rt, pymem_instance_new(rt, t, &o));
    new_in_clear_status = PYMEM_OK;
    drop(o);
    CHECK_STATUS(rt, new_in_clear_status, PYMEM_ERR_BUSY);
    drop(clear_target);
    printf("  freed first: no callback; weakref_new inside clear: BUSY\n");
}

/* A chain: object i's weak reference callback drops object i+1. */
typedef struct {
    pymem_object **objs;
    size_t n;
    size_t calls;
} chain_state;

typedef struct {
    chain_state *chain;
    size_t index;
} chain_link;

static void chain_cb(pymem_runtime *r, pymem_weakref *wr, void *userdata) {
    chain_link *link = userdata;
    chain_state *c = link->chain;
    c->calls++;
    CHECK_OK(r, pymem_weakref_free(r, wr));
    size_t next = link->index + 1;
    if (next < c->n) {
        pymem_object *o = c->objs[next];
        c->objs[next] = NULL;
        CHECK_OK(r, pymem_decref(r, o)); /* queues the next callback */
    }
}

static void test_chain(void) {
    size_t n = scaled(200000, 2000);
    pymem_type *plain = define_plain(rt, "Link");
    chain_state c = {calloc(n, sizeof(pymem_object *)), n, 0};
    chain_link *links = calloc(n, sizeof(chain_link));
    CHECK(c.objs != NULL && links != NULL);
    CHECK_OK(rt, pymem_clear_free_lists(rt));
    const uint64_t start = stats_of(rt).blocks_in_use;
    for (size_t i = 0; i < n; i++) {
        CHECK_OK(rt, pymem_instance_new(rt, plain, &c.objs[i]));
        links[i].chain = &c;
        links[i].index = i;
        pymem_weakref *wr = NULL;
        CHECK_OK(rt, pymem_weakref_new(rt, c.objs[i], chain_cb, &links[i], &wr));
    }
    pymem_object *first = c.objs[0];
    c.objs[0] = NULL;
    drop(first);
    CHECK_EQ_U64(c.calls, n);
    CHECK_OK(rt, pymem_clear_free_lists(rt));
    CHECK_BLOCKS(rt, start);
    free(c.objs);
    free(links);
    printf("  a chain of %zu callbacks, each dropping the next: constant stack\n", n);
}

/* pymem_runtime_free with live weak references: no callback runs, and the
   handles are freed (valgrind reports a leak otherwise). */
static void test_runtime_free(void) {
    pymem_runtime *r = NULL;
    CHECK_OK(NULL, pymem_runtime_new(NULL, &r));
    pymem_type *plain = define_plain(r, "Kept");
    cb_record rec;
    memset(&rec, 0, sizeof rec);
    for (int i = 0; i < 50; i++) {
        pymem_object *o = NULL;
        CHECK_OK(r, pymem_instance_new(r, plain, &o));
        pymem_weakref *wr = NULL;
        CHECK_OK(r, pymem_weakref_new(r, o, record_cb, &rec, &wr));
        CHECK_OK(r, pymem_weakref_new(r, o, NULL, NULL, &wr));
        if (i % 2 == 0) {
            /* a cycle, left for the runtime's teardown */
            CHECK_OK(r, pymem_setattr(r, o, "self", o));
            CHECK_OK(r, pymem_decref(r, o));
        } /* else: a live referent the host never drops */
    }
    pymem_object *m = NULL;
    CHECK_OK(r, pymem_module_new(r, "dead", &m));
    pymem_weakref *dead_wr = NULL;
    CHECK_OK(r, pymem_weakref_new(r, m, NULL, NULL, &dead_wr));
    CHECK_OK(r, pymem_decref(r, m)); /* a handle whose referent died, not freed */
    CHECK_OK(NULL, pymem_runtime_free(r));
    CHECK_EQ_U64(rec.calls, 0);
    printf("  runtime_free with live weak references: no callbacks, nothing leaks\n");
}

int main(void) {
    CHECK_OK(NULL, pymem_runtime_new(NULL, &rt));
    test_allowed_kinds();
    test_refused_kinds();
    test_callback_on_decref();
    test_callback_in_collection();
    test_bad_handles();
    test_freed_first_and_busy();
    test_chain();
    test_runtime_free();
    CHECK_OK(NULL, pymem_runtime_free(rt));
    printf("weakref: ok\n");
    return 0;
}
