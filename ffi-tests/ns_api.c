/*
 * ns_api.c: every pymem_ns_* entry point of API.md's "Namespaces" section,
 * what it promises and how it refuses bad input (issue 5, points 1-5, 7):
 *
 *   - pymem_ns_new (plain and PYMEM_NS_NOTEBOOK), set/get/del, hide (hidden
 *     while bound to the same object, a user name again once rebound), who
 *     (sorted, the seed's rule, a type filter), whos (IPython's layout with a
 *     Size column and a total over the union), xdel (every name in every
 *     namespace bound to the object, and a notebook's Out history), reset
 *     (all user names, or by regex with re.search semantics; the report),
 *     why_alive (the chains from namespaces and from the host's own
 *     references, through a host object's payload too);
 *   - a namespace is an object: its type name, its reference count, tracked
 *     by the collector (a namespace that binds itself is a cycle the
 *     collector frees), reset frees host objects (their dealloc runs);
 *   - a call from a thread that does not own the runtime (BUSY); a
 *     namespace still alive at pymem_runtime_free is freed with it;
 *   - bad input: a NULL runtime, NULL namespace/name/value/out, a freed
 *     pointer, an object that is not a namespace (PYMEM_ERR_TYPE), an
 *     unbound name (PYMEM_ERR_KEY), names and filters that are not UTF-8,
 *     unknown flags, an invalid regex (PYMEM_ERR_INVALID_ARGUMENT with the
 *     regex error in the message); each leaves the namespace unchanged.
 */
#include <inttypes.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "pymem.h"
#include "check.h"

static pymem_runtime *rt;

static void drop(pymem_object *o) { CHECK_OK(rt, pymem_decref(rt, o)); }

static pymem_object *int_of(int64_t v) {
    pymem_object *o = NULL;
    CHECK_OK(rt, pymem_int_new(rt, v, &o));
    return o;
}

static pymem_object *new_list(void) {
    pymem_object *o = NULL;
    CHECK_OK(rt, pymem_list_new(rt, &o));
    return o;
}

static pymem_object *new_ns(const char *name, uint32_t flags) {
    pymem_object *o = NULL;
    CHECK_OK(rt, pymem_ns_new(rt, name, flags, &o));
    return o;
}

/* ns[name] = o, dropping the caller's reference. */
static void bind(pymem_object *ns, const char *name, pymem_object *o) {
    CHECK_OK(rt, pymem_ns_set(rt, ns, name, o));
    drop(o);
}

/* The names pymem_ns_who gives, space separated, in `out`. */
static const char *who(pymem_object *ns, const char *filter) {
    static char out[512];
    pymem_object *list = NULL;
    size_t len = 0, used = 0;
    CHECK_OK(rt, pymem_ns_who(rt, ns, filter, &list));
    CHECK_OK(rt, pymem_list_len(rt, list, &len));
    out[0] = '\0';
    for (size_t i = 0; i < len; i++) {
        pymem_object *name = NULL;
        const char *text = NULL;
        size_t n = 0;
        CHECK_OK(rt, pymem_list_get(rt, list, i, &name));
        CHECK_OK(rt, pymem_str_value(rt, name, &text, &n));
        used += (size_t)snprintf(out + used, sizeof out - used, "%s%s", i ? " " : "", text);
        CHECK(used < sizeof out);
        drop(name);
    }
    drop(list);
    return out;
}

static int bound(pymem_object *ns, const char *name) {
    pymem_object *o = NULL;
    pymem_status st = pymem_ns_get(rt, ns, name, &o);
    if (st == PYMEM_OK) {
        drop(o);
        return 1;
    }
    CHECK_EQ_U64(st, PYMEM_ERR_KEY);
    return 0;
}

/* ------------------------------------------------------------------------ */

static void basics(void) {
    pymem_object *ns = new_ns("main", 0);
    const char *type = NULL;
    CHECK_OK(rt, pymem_type_name(rt, ns, &type));
    CHECK_STR_EQ(type, "namespace");
    CHECK_REFCOUNT(rt, ns, 1);
    int tracked = 0;
    CHECK_OK(rt, pymem_gc_is_tracked(rt, ns, &tracked));
    CHECK(tracked);
    CHECK_STR_EQ(who(ns, NULL), "");

    pymem_object *v = int_of(123456);
    CHECK_OK(rt, pymem_ns_set(rt, ns, "x", v));
    CHECK_REFCOUNT(rt, v, 2); /* ours and the namespace's */
    pymem_object *got = NULL;
    CHECK_OK(rt, pymem_ns_get(rt, ns, "x", &got));
    CHECK(got == v);
    CHECK_REFCOUNT(rt, v, 3); /* a new reference */
    drop(got);
    CHECK_OK(rt, pymem_ns_del(rt, ns, "x"));
    CHECK_REFCOUNT(rt, v, 1);
    CHECK_FAILS(rt, pymem_ns_get(rt, ns, "x", &got), PYMEM_ERR_KEY, "name 'x' is not defined in namespace 'main'");
    CHECK_FAILS(rt, pymem_ns_del(rt, ns, "x"), PYMEM_ERR_KEY, "pymem_ns_del: name 'x' is not defined");
    drop(v);

    /* Names of every kind of user value; modules, functions, _names are not listed. */
    bind(ns, "zeta", new_list());
    bind(ns, "alpha", int_of(1000));
    pymem_object *f = NULL;
    CHECK_OK(rt, pymem_float_new(rt, 2.5, &f));
    bind(ns, "ratio", f);
    bind(ns, "_private", new_list());
    pymem_object *m = NULL;
    CHECK_OK(rt, pymem_module_new(rt, "math", &m));
    bind(ns, "math", m);
    CHECK_STR_EQ(who(ns, NULL), "alpha ratio zeta");
    CHECK_STR_EQ(who(ns, "int"), "alpha");
    CHECK_STR_EQ(who(ns, "list float"), "ratio zeta");
    CHECK_STR_EQ(who(ns, "module"), "");
    CHECK(bound(ns, "math") && bound(ns, "_private"));

    /* A namespace that binds itself is a cycle: the collector frees it. */
    CHECK_OK(rt, pymem_ns_set(rt, ns, "me", ns));
    CHECK_REFCOUNT(rt, ns, 2);
    const pymem_alloc_stats before = stats_of(rt);
    (void)before;
    drop(ns);
    CHECK(collect_ok(rt, 2) >= 3); /* the namespace and its two dicts at least */
}

static void notebook_and_hidden_names(void) {
    pymem_object *ns = new_ns("nb", PYMEM_NS_NOTEBOOK);
    const char *system[] = {"In", "Out", "get_ipython", "exit", "quit"};
    for (size_t i = 0; i < 5; i++)
        CHECK(bound(ns, system[i]));
    CHECK_STR_EQ(who(ns, NULL), "");
    char *table = NULL;
    CHECK_OK(rt, pymem_ns_whos(rt, ns, &table));
    CHECK_STR_EQ(table, "Interactive namespace is empty.\n");
    pymem_string_free(table);
    /* In and Out are a list and a dict; the functions return None. */
    pymem_object *in = NULL, *out = NULL, *exit_fn = NULL, *result = NULL, *none = NULL;
    const char *type = NULL;
    CHECK_OK(rt, pymem_ns_get(rt, ns, "In", &in));
    CHECK_OK(rt, pymem_type_name(rt, in, &type));
    CHECK_STR_EQ(type, "list");
    CHECK_OK(rt, pymem_ns_get(rt, ns, "Out", &out));
    CHECK_OK(rt, pymem_type_name(rt, out, &type));
    CHECK_STR_EQ(type, "dict");
    CHECK_OK(rt, pymem_ns_get(rt, ns, "exit", &exit_fn));
    CHECK_OK(rt, pymem_call(rt, exit_fn, NULL, 0, &result));
    CHECK_OK(rt, pymem_none(rt, &none));
    CHECK(result == none);
    drop(result);
    drop(none);
    drop(exit_fn);
    drop(out);

    /* Hidden while bound to the same object... */
    bind(ns, "model", new_list());
    CHECK_STR_EQ(who(ns, NULL), "model");
    CHECK_OK(rt, pymem_ns_hide(rt, ns, "model"));
    CHECK_STR_EQ(who(ns, NULL), "");
    pymem_object *model = NULL;
    CHECK_OK(rt, pymem_ns_get(rt, ns, "model", &model));
    CHECK_OK(rt, pymem_ns_set(rt, ns, "model", model)); /* same object: still hidden */
    CHECK_STR_EQ(who(ns, NULL), "");
    /* ...never reset... */
    pymem_reset_report report;
    CHECK_OK(rt, pymem_ns_reset(rt, ns, NULL, &report));
    CHECK_EQ_U64(report.names_removed, 0);
    CHECK(bound(ns, "model"));
    /* ...and a user name again once rebound; the old object is let go. */
    CHECK_REFCOUNT(rt, in, 3); /* ours, the binding, the hidden table */
    bind(ns, "In", int_of(4242));
    CHECK_REFCOUNT(rt, in, 1);
    CHECK_STR_EQ(who(ns, NULL), "In");
    drop(in);
    drop(model);
    CHECK_FAILS(rt, pymem_ns_hide(rt, ns, "nothing"), PYMEM_ERR_KEY, "name 'nothing' is not defined");
    drop(ns);
}

static void whos_table(void) {
    pymem_object *ns = new_ns("main", 0);
    pymem_object *shared = new_list();
    for (int i = 0; i < 100; i++) {
        pymem_object *v = int_of(1000 + i);
        CHECK_OK(rt, pymem_list_append(rt, shared, v));
        drop(v);
    }
    pymem_object *holder = new_list();
    CHECK_OK(rt, pymem_list_append(rt, holder, shared));
    bind(ns, "numbers", shared);
    bind(ns, "holder", holder);
    const char *long_text = "0123456789abcdefghijklmnopqrstuvwxyz0123456789abcdefghij";
    pymem_object *s = NULL;
    CHECK_OK(rt, pymem_str_new(rt, long_text, strlen(long_text), &s));
    bind(ns, "text", s);
    char *table = NULL;
    CHECK_OK(rt, pymem_ns_whos(rt, ns, &table));
    printf("%s", table);
    CHECK_CONTAINS(table, "Variable   Type   Size       Data/Info\n"
                          "--------------------------------------\n");
    CHECK_CONTAINS(table, "holder     list   3.3 KiB    n=1\n");
    CHECK_CONTAINS(table, "numbers    list   3.2 KiB    n=100\n");
    CHECK_CONTAINS(table, "text       str    89 B       0123456789abcdefghijklmno<...>vwxyz0123456789abcdefghij\n");
    /* The total is the union: the shared list once. */
    size_t deep = 0, own = 0;
    CHECK_OK(rt, pymem_deep_sizeof(rt, shared, &deep));
    CHECK_OK(rt, pymem_sizeof(rt, holder, &own));
    char total[128];
    const size_t sum = deep + own + 89; /* a few thousand: one separator */
    CHECK(sum >= 1000 && sum < 1000000);
    snprintf(total, sizeof total, "(%zu,%03zu bytes in 103 objects) reachable from 3 variables", sum / 1000, sum % 1000);
    CHECK_CONTAINS(table, total);
    pymem_string_free(table);
    drop(ns);
}

static void xdel_everywhere(void) {
    pymem_object *one = new_ns("one", 0);
    pymem_object *two = new_ns("two", PYMEM_NS_NOTEBOOK);
    pymem_object *big = new_list();
    CHECK_OK(rt, pymem_ns_set(rt, one, "big", big));
    CHECK_OK(rt, pymem_ns_set(rt, one, "alias", big));
    CHECK_OK(rt, pymem_ns_set(rt, two, "same", big));
    pymem_object *out = NULL, *key = int_of(7);
    CHECK_OK(rt, pymem_ns_get(rt, two, "Out", &out));
    CHECK_OK(rt, pymem_dict_set(rt, out, key, big)); /* Out[7] = big */
    bind(one, "other", new_list());
    CHECK_REFCOUNT(rt, big, 5);
    CHECK_OK(rt, pymem_ns_xdel(rt, one, "big"));
    CHECK_REFCOUNT(rt, big, 1);
    CHECK_STR_EQ(who(one, NULL), "other");
    CHECK_STR_EQ(who(two, NULL), "");
    size_t n = 9;
    CHECK_OK(rt, pymem_dict_len(rt, out, &n));
    CHECK_EQ_U64(n, 0);
    CHECK_FAILS(rt, pymem_ns_xdel(rt, one, "big"), PYMEM_ERR_KEY, "pymem_ns_xdel: name 'big' is not defined");
    drop(key);
    drop(out);
    drop(big);
    drop(one);
    drop(two);
}

/* A host type whose payload holds one object: reset frees it, why_alive
   follows it. */
typedef struct {
    pymem_object *held;
} box_payload;
static int box_deallocs;

static int box_traverse(pymem_object *self, pymem_visit_fn visit, void *arg, void *userdata) {
    (void)userdata;
    box_payload *p = (box_payload *)((char *)self + PYMEM_INSTANCE_PAYLOAD_OFFSET);
    return p->held ? visit(p->held, arg) : 0;
}

static void box_clear(pymem_runtime *r, pymem_object *self, void *userdata) {
    (void)userdata;
    box_payload *p = (box_payload *)((char *)self + PYMEM_INSTANCE_PAYLOAD_OFFSET);
    if (p->held) {
        pymem_object *held = p->held;
        p->held = NULL;
        CHECK_OK(r, pymem_decref(r, held));
    }
}

static void box_dealloc(pymem_object *self, void *payload, void *userdata) {
    (void)self;
    (void)payload;
    (void)userdata;
    box_deallocs++;
}

static void reset_and_why_alive(void) {
    pymem_type_spec spec;
    pymem_type_spec_init(&spec);
    spec.name = "Box";
    spec.payload_size = sizeof(box_payload);
    spec.traverse = box_traverse;
    spec.clear = box_clear;
    spec.dealloc = box_dealloc;
    pymem_type *box_type = NULL;
    CHECK_OK(rt, pymem_type_new(rt, &spec, &box_type));

    pymem_object *ns = new_ns("main", PYMEM_NS_NOTEBOOK);
    pymem_object *data = new_list();
    for (int i = 0; i < 1000; i++) {
        pymem_object *v = int_of(5000 + i);
        CHECK_OK(rt, pymem_list_append(rt, data, v));
        drop(v);
    }
    CHECK_OK(rt, pymem_ns_set(rt, ns, "data", data));
    pymem_object *box = NULL;
    void *payload = NULL;
    CHECK_OK(rt, pymem_instance_new(rt, box_type, &box));
    CHECK_OK(rt, pymem_instance_payload(rt, box, &payload));
    CHECK_OK(rt, pymem_incref(rt, data));
    ((box_payload *)payload)->held = data;
    bind(ns, "box", box);
    bind(ns, "train_x", new_list());
    bind(ns, "train_y", new_list());
    bind(ns, "test_x", new_list());

    /* Who keeps data alive: its binding, the box's payload, and us. */
    char *why = NULL;
    CHECK_OK(rt, pymem_ns_why_alive(rt, ns, "data", &why));
    printf("%s", why);
    CHECK_CONTAINS(why, "'data' in namespace 'main' (list at ");
    CHECK_CONTAINS(why, "reference count 3)\nis kept alive by 3 chains of references:\n");
    CHECK_CONTAINS(why, "  1 reference from outside any object (the host's, or an untracked holder's)\n");
    CHECK_CONTAINS(why, "  namespace 'main': data\n");
    CHECK_CONTAINS(why, "  namespace 'main': box.<payload>\n");
    pymem_string_free(why);
    drop(data); /* now only the namespace and the box hold it */

    /* reset_selective: re.search semantics, only user names. */
    pymem_reset_report r;
    memset(&r, 0xff, sizeof r);
    CHECK_OK(rt, pymem_ns_reset(rt, ns, "_x$", &r));
    CHECK_EQ_U64(r.names_removed, 2);
    CHECK_EQ_U64(r.unreachable, 0);
    CHECK_STR_EQ(who(ns, NULL), "box data train_y");
    CHECK_OK(rt, pymem_ns_reset(rt, ns, "rain", &r));
    CHECK_EQ_U64(r.names_removed, 1);
    CHECK_STR_EQ(who(ns, NULL), "box data");

    /* reset: the box and the list go (the host's dealloc runs). */
    const pymem_alloc_stats before = stats_of(rt);
    CHECK_OK(rt, pymem_ns_reset(rt, ns, NULL, &r));
    const pymem_alloc_stats after = stats_of(rt);
    CHECK_EQ_U64(r.names_removed, 2);
    CHECK_EQ_U64(box_deallocs, 1);
    CHECK(r.objects_freed >= 1002); /* the box, the list, its 1000 ints */
    CHECK_EQ_U64(r.bytes_freed, before.bytes_in_use - after.bytes_in_use);
    CHECK(r.bytes_freed >= 1000 * 24);
    CHECK_STR_EQ(who(ns, NULL), "");
    CHECK(bound(ns, "In") && bound(ns, "get_ipython"));

    /* A cycle: reset counts what the collection found. */
    pymem_object *cyc = new_list();
    CHECK_OK(rt, pymem_list_append(rt, cyc, cyc));
    bind(ns, "cyc", cyc);
    CHECK_OK(rt, pymem_ns_reset(rt, ns, NULL, &r));
    CHECK_EQ_U64(r.names_removed, 1);
    CHECK_EQ_U64(r.unreachable, 1);
    drop(ns);
}

static void bad_input(void) {
    pymem_object *ns = new_ns("main", 0);
    bind(ns, "keep", int_of(99999));
    pymem_object *not_ns = new_list();
    pymem_object *o = NULL, *value = int_of(77777);
    char *text = NULL;
    pymem_reset_report report;
    const char bad_utf8[] = {'x', (char)0xff, 0};

    /* NULL runtime */
    CHECK_FAILS(NULL, pymem_ns_new(NULL, "x", 0, &o), PYMEM_ERR_NULL_ARGUMENT, "the runtime is NULL");
    CHECK_FAILS(NULL, pymem_ns_set(NULL, ns, "x", value), PYMEM_ERR_NULL_ARGUMENT, "pymem_ns_set");
    CHECK_FAILS(NULL, pymem_ns_get(NULL, ns, "x", &o), PYMEM_ERR_NULL_ARGUMENT, "pymem_ns_get");
    CHECK_FAILS(NULL, pymem_ns_del(NULL, ns, "x"), PYMEM_ERR_NULL_ARGUMENT, "pymem_ns_del");
    CHECK_FAILS(NULL, pymem_ns_xdel(NULL, ns, "x"), PYMEM_ERR_NULL_ARGUMENT, "pymem_ns_xdel");
    CHECK_FAILS(NULL, pymem_ns_hide(NULL, ns, "x"), PYMEM_ERR_NULL_ARGUMENT, "pymem_ns_hide");
    CHECK_FAILS(NULL, pymem_ns_who(NULL, ns, NULL, &o), PYMEM_ERR_NULL_ARGUMENT, "pymem_ns_who");
    CHECK_FAILS(NULL, pymem_ns_whos(NULL, ns, &text), PYMEM_ERR_NULL_ARGUMENT, "pymem_ns_whos");
    CHECK_FAILS(NULL, pymem_ns_reset(NULL, ns, NULL, &report), PYMEM_ERR_NULL_ARGUMENT, "pymem_ns_reset");
    CHECK_FAILS(NULL, pymem_ns_why_alive(NULL, ns, "keep", &text), PYMEM_ERR_NULL_ARGUMENT, "pymem_ns_why_alive");

    /* NULL arguments and out-pointers */
    CHECK_FAILS_UNCHANGED(rt, rt, pymem_ns_new(rt, NULL, 0, &o), PYMEM_ERR_NULL_ARGUMENT, "name is NULL");
    CHECK_FAILS_UNCHANGED(rt, rt, pymem_ns_new(rt, "x", 0, NULL), PYMEM_ERR_NULL_ARGUMENT, "out is NULL");
    CHECK_FAILS_UNCHANGED(rt, rt, pymem_ns_set(rt, NULL, "x", value), PYMEM_ERR_NULL_ARGUMENT, "ns is NULL");
    CHECK_FAILS_UNCHANGED(rt, rt, pymem_ns_set(rt, ns, NULL, value), PYMEM_ERR_NULL_ARGUMENT, "name is NULL");
    CHECK_FAILS_UNCHANGED(rt, rt, pymem_ns_set(rt, ns, "x", NULL), PYMEM_ERR_NULL_ARGUMENT, "value is NULL");
    CHECK_FAILS_UNCHANGED(rt, rt, pymem_ns_get(rt, ns, "keep", NULL), PYMEM_ERR_NULL_ARGUMENT, "out is NULL");
    CHECK_FAILS_UNCHANGED(rt, rt, pymem_ns_who(rt, ns, NULL, NULL), PYMEM_ERR_NULL_ARGUMENT, "out_list is NULL");
    CHECK_FAILS_UNCHANGED(rt, rt, pymem_ns_whos(rt, ns, NULL), PYMEM_ERR_NULL_ARGUMENT, "out_table is NULL");
    CHECK_FAILS_UNCHANGED(rt, rt, pymem_ns_reset(rt, ns, NULL, NULL), PYMEM_ERR_NULL_ARGUMENT, "out is NULL");
    CHECK_FAILS_UNCHANGED(rt, rt, pymem_ns_why_alive(rt, ns, "keep", NULL), PYMEM_ERR_NULL_ARGUMENT, "out is NULL");
    CHECK_FAILS_UNCHANGED(rt, rt, pymem_ns_del(rt, ns, NULL), PYMEM_ERR_NULL_ARGUMENT, "name is NULL");
    CHECK_FAILS_UNCHANGED(rt, rt, pymem_ns_xdel(rt, ns, NULL), PYMEM_ERR_NULL_ARGUMENT, "name is NULL");
    CHECK_FAILS_UNCHANGED(rt, rt, pymem_ns_hide(rt, ns, NULL), PYMEM_ERR_NULL_ARGUMENT, "name is NULL");

    /* Not a namespace: PYMEM_ERR_TYPE. */
    CHECK_FAILS_UNCHANGED(rt, rt, pymem_ns_set(rt, not_ns, "x", value), PYMEM_ERR_TYPE, "expected a namespace, got list");
    CHECK_FAILS_UNCHANGED(rt, rt, pymem_ns_get(rt, not_ns, "x", &o), PYMEM_ERR_TYPE, "expected a namespace");
    CHECK_FAILS_UNCHANGED(rt, rt, pymem_ns_del(rt, value, "x"), PYMEM_ERR_TYPE, "expected a namespace, got int");
    CHECK_FAILS_UNCHANGED(rt, rt, pymem_ns_xdel(rt, not_ns, "x"), PYMEM_ERR_TYPE, "expected a namespace");
    CHECK_FAILS_UNCHANGED(rt, rt, pymem_ns_hide(rt, not_ns, "x"), PYMEM_ERR_TYPE, "expected a namespace");
    CHECK_FAILS_UNCHANGED(rt, rt, pymem_ns_who(rt, not_ns, NULL, &o), PYMEM_ERR_TYPE, "expected a namespace");
    CHECK_FAILS_UNCHANGED(rt, rt, pymem_ns_whos(rt, not_ns, &text), PYMEM_ERR_TYPE, "expected a namespace");
    CHECK_FAILS_UNCHANGED(rt, rt, pymem_ns_reset(rt, not_ns, NULL, &report), PYMEM_ERR_TYPE, "expected a namespace");
    CHECK_FAILS_UNCHANGED(rt, rt, pymem_ns_why_alive(rt, not_ns, "x", &text), PYMEM_ERR_TYPE, "expected a namespace");

    /* A freed object and a pointer that is no object at all. */
    pymem_object *gone = new_ns("gone", 0);
    drop(gone);
    CHECK_FAILS_UNCHANGED(rt, rt, pymem_ns_set(rt, gone, "x", value), PYMEM_ERR_INVALID_POINTER, "invalid object");
    int local = 0;
    CHECK_FAILS_UNCHANGED(rt, rt, pymem_ns_get(rt, (pymem_object *)&local, "x", &o), PYMEM_ERR_INVALID_POINTER,
                          "not a live object of this runtime");
    CHECK_FAILS_UNCHANGED(rt, rt, pymem_ns_set(rt, ns, "x", (pymem_object *)&local), PYMEM_ERR_INVALID_POINTER,
                          "invalid object");

    /* Unbound names: PYMEM_ERR_KEY. */
    CHECK_FAILS_UNCHANGED(rt, rt, pymem_ns_get(rt, ns, "missing", &o), PYMEM_ERR_KEY,
                          "pymem_ns_get: name 'missing' is not defined in namespace 'main'");
    CHECK_FAILS_UNCHANGED(rt, rt, pymem_ns_why_alive(rt, ns, "missing", &text), PYMEM_ERR_KEY, "'missing'");

    /* Names that are not UTF-8, an unknown flag. */
    CHECK_FAILS_UNCHANGED(rt, rt, pymem_ns_new(rt, bad_utf8, 0, &o), PYMEM_ERR_INVALID_ARGUMENT, "not valid UTF-8");
    CHECK_FAILS_UNCHANGED(rt, rt, pymem_ns_set(rt, ns, bad_utf8, value), PYMEM_ERR_INVALID_ARGUMENT,
                          "name is not valid UTF-8");
    CHECK_FAILS_UNCHANGED(rt, rt, pymem_ns_get(rt, ns, bad_utf8, &o), PYMEM_ERR_INVALID_ARGUMENT, "UTF-8");
    CHECK_FAILS_UNCHANGED(rt, rt, pymem_ns_del(rt, ns, bad_utf8), PYMEM_ERR_INVALID_ARGUMENT, "UTF-8");
    CHECK_FAILS_UNCHANGED(rt, rt, pymem_ns_who(rt, ns, bad_utf8, &o), PYMEM_ERR_INVALID_ARGUMENT,
                          "type_filter is not valid UTF-8");
    CHECK_FAILS_UNCHANGED(rt, rt, pymem_ns_reset(rt, ns, bad_utf8, &report), PYMEM_ERR_INVALID_ARGUMENT,
                          "regex is not valid UTF-8");
    CHECK_FAILS_UNCHANGED(rt, rt, pymem_ns_new(rt, "x", 2, &o), PYMEM_ERR_INVALID_ARGUMENT, "unknown flags 0x2");

    /* A namespace's attributes are declared slots: no other can be set. */
    CHECK_FAILS_UNCHANGED(rt, rt, pymem_setattr(rt, ns, "other", value), PYMEM_ERR_KEY,
                          "'namespace' object has no attribute 'other'");

    /* An invalid regex: the regex crate's explanation, nothing deleted. */
    CHECK_FAILS_UNCHANGED(rt, rt, pymem_ns_reset(rt, ns, "keep(", &report), PYMEM_ERR_INVALID_ARGUMENT,
                          "pymem_ns_reset: invalid regex \"keep(\": regex parse error");
    CHECK_MESSAGE(rt, "unclosed group");
    CHECK_STR_EQ(who(ns, NULL), "keep");

    drop(value);
    drop(not_ns);
    drop(ns);
}

/* Another thread: every namespace call is refused with BUSY. */
static pymem_object *g_ns;
static void *other_thread(void *arg) {
    (void)arg;
    pymem_object *o = NULL;
    char *text = NULL;
    pymem_reset_report report;
    CHECK_FAILS(NULL, pymem_ns_new(rt, "x", 0, &o), PYMEM_ERR_BUSY, "belongs to another thread");
    CHECK_FAILS(NULL, pymem_ns_get(rt, g_ns, "keep", &o), PYMEM_ERR_BUSY, "pymem_ns_get");
    CHECK_FAILS(NULL, pymem_ns_whos(rt, g_ns, &text), PYMEM_ERR_BUSY, "pymem_ns_whos");
    CHECK_FAILS(NULL, pymem_ns_reset(rt, g_ns, NULL, &report), PYMEM_ERR_BUSY, "pymem_ns_reset");
    CHECK_FAILS(NULL, pymem_ns_why_alive(rt, g_ns, "keep", &text), PYMEM_ERR_BUSY, "pymem_ns_why_alive");
    return NULL;
}

static void other_threads_and_teardown(void) {
    g_ns = new_ns("threads", 0);
    bind(g_ns, "keep", new_list());
    pthread_t t;
    CHECK(pthread_create(&t, NULL, other_thread, NULL) == 0);
    CHECK(pthread_join(t, NULL) == 0);
    CHECK(bound(g_ns, "keep"));
    /* Left alive on purpose: pymem_runtime_free frees namespaces too. */
}

int main(void) {
    CHECK_OK(NULL, pymem_runtime_new(NULL, &rt));
    pymem_object *none = NULL;
    CHECK_OK(rt, pymem_none(rt, &none));
    collect_ok(rt, 2);
    CHECK_OK(rt, pymem_clear_free_lists(rt));
    basics();
    notebook_and_hidden_names();
    whos_table();
    xdel_everywhere();
    reset_and_why_alive();
    bad_input();
    collect_ok(rt, 2);
    other_threads_and_teardown();
    CHECK_OK(rt, pymem_runtime_free(rt));
    printf("ns_api: ok\n");
    return 0;
}
