/*
 * objects_bad_input.c: every kind of bad input to the object section gets
 * its status and a message saying what was wrong, and changes nothing (the
 * allocator's statistics and the reference counts of the objects involved
 * are compared before and after). Issue 3, point 6:
 *
 *   - a NULL runtime, NULL object arguments, NULL out-pointers
 *   - pointers that are not live objects of this runtime: a freed object, a
 *     float waiting on the free list, the stack, libc's heap, a raw block of
 *     pymem_malloc, a pointer into an object, an object (and a singleton) of
 *     another runtime, a type handle that is not a type of this runtime
 *   - the wrong type, an index out of range, a missing key or attribute, an
 *     unhashable key
 *   - decref of an object whose count is already 0 (REFCOUNT_UNDERFLOW)
 *   - invalid UTF-8 in strings, attribute names, module/function/type names
 *   - a native function's error status passes through pymem_call; a native
 *     function's invalid result is refused
 *   - host callbacks calling back in beyond API.md's rules: inside `clear`
 *     and `dealloc` only incref/decref (and the read-only
 *     pymem_instance_payload, pymem_type_name, pymem_refcount) work, anything
 *     else is PYMEM_ERR_BUSY, pymem_runtime_free included (also during
 *     pymem_runtime_free's own teardown); inside a native function
 *     everything but pymem_runtime_free works
 *   - a call from a thread that does not own the runtime (BUSY)
 *
 * Nothing here may make valgrind report an error: the library validates a
 * pointer against its own tables before reading anything through it.
 */
#include <inttypes.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pymem.h"
#include "check.h"

static pymem_runtime *rt;

static void drop(pymem_object *o) { CHECK_OK(rt, pymem_decref(rt, o)); }

static intptr_t count(pymem_object *o) { return refcount_of(rt, o); }

/* A pointer `off` bytes from p, computed as an integer. */
static pymem_object *offset_obj(const void *p, intptr_t off) {
    return (pymem_object *)((uintptr_t)p + (uintptr_t)off);
}

/* The message names address p (Rust's {:p} and glibc's %p agree). */
static void check_message_names(const pymem_runtime *r, const void *p) {
    char addr[32];
    snprintf(addr, sizeof addr, "%p", p);
    CHECK_MESSAGE(r, addr);
}

/* ------------------------------------------------------------------------ */
/* Objects every test can use: created once, counts checked at the end. */

static pymem_object *g_int, *g_str, *g_list, *g_dict, *g_tuple, *g_inst, *g_func, *g_mod, *g_none;
static pymem_type *g_type;

static pymem_status native_identity(pymem_runtime *r, pymem_object *const *args, size_t nargs,
                                    pymem_object **result, void *userdata) {
    (void)userdata;
    if (nargs == 0)
        return PYMEM_OK;
    CHECK_OK(r, pymem_incref(r, args[0]));
    *result = args[0];
    return PYMEM_OK;
}

static void make_good_objects(void) {
    CHECK_OK(rt, pymem_none(rt, &g_none));
    CHECK_OK(rt, pymem_int_new(rt, 123456, &g_int));
    CHECK_OK(rt, pymem_str_new(rt, "a key", 5, &g_str));
    CHECK_OK(rt, pymem_list_new(rt, &g_list));
    CHECK_OK(rt, pymem_list_append(rt, g_list, g_int));
    CHECK_OK(rt, pymem_dict_new(rt, &g_dict));
    CHECK_OK(rt, pymem_dict_set(rt, g_dict, g_str, g_int));
    pymem_object *items[2] = {g_int, g_str};
    CHECK_OK(rt, pymem_tuple_new(rt, 2, items, &g_tuple));
    pymem_type_spec spec;
    pymem_type_spec_init(&spec);
    spec.name = "Thing";
    spec.payload_size = 32;
    CHECK_OK(rt, pymem_type_new(rt, &spec, &g_type));
    CHECK_OK(rt, pymem_instance_new(rt, g_type, &g_inst));
    CHECK_OK(rt, pymem_setattr(rt, g_inst, "attr", g_int));
    CHECK_OK(rt, pymem_function_new(rt, "identity", native_identity, NULL, &g_func));
    CHECK_OK(rt, pymem_module_new(rt, "mod", &g_mod));
}

/* The counts of the good objects: no failed call may change them. */
static void check_good_counts(void) {
    CHECK(count(g_int) == 5); /* ours, list, dict value, tuple, attribute */
    CHECK(count(g_str) == 3); /* ours, dict key, tuple */
    CHECK(count(g_list) == 1 && count(g_dict) == 1 && count(g_tuple) == 1);
    CHECK(count(g_inst) == 1 && count(g_func) == 1 && count(g_mod) == 1);
    size_t n = 0;
    CHECK_OK(rt, pymem_list_len(rt, g_list, &n));
    CHECK(n == 1);
    CHECK_OK(rt, pymem_dict_len(rt, g_dict, &n));
    CHECK(n == 1);
}

static void free_good_objects(void) {
    pymem_object *all[] = {g_int, g_str, g_list, g_dict, g_tuple, g_inst, g_func, g_mod};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        drop(all[i]);
}

/* ------------------------------------------------------------------------ */
/* NULL runtime: every object call; the thread's slot names the call. */

static void test_null_runtime(void) {
    const pymem_alloc_stats before = stats_of(rt);
    pymem_object *o = NULL;
    ptrdiff_t n = 0;
    int64_t i = 0;
    double d = 0;
    size_t len = 0, pos = 0;
    const char *s = NULL;
    char *text = NULL;
    int flag = 0;
    void *payload = NULL;
    pymem_type *t = NULL;
    pymem_type_spec spec;
    pymem_type_spec_init(&spec);
    spec.name = "T";
#define NULL_RT(call, name)                                                    \
    do {                                                                       \
        CHECK_FAILS(NULL, call, PYMEM_ERR_NULL_ARGUMENT, name);                \
        CHECK_MESSAGE(NULL, "the runtime is NULL");                            \
    } while (0)
    NULL_RT(pymem_incref(NULL, g_int), "pymem_incref");
    NULL_RT(pymem_decref(NULL, g_int), "pymem_decref");
    NULL_RT(pymem_refcount(NULL, g_int, &n), "pymem_refcount");
    NULL_RT(pymem_none(NULL, &o), "pymem_none");
    NULL_RT(pymem_bool(NULL, 1, &o), "pymem_bool");
    NULL_RT(pymem_int_new(NULL, 1000, &o), "pymem_int_new");
    NULL_RT(pymem_int_value(NULL, g_int, &i), "pymem_int_value");
    NULL_RT(pymem_float_new(NULL, 1.5, &o), "pymem_float_new");
    NULL_RT(pymem_float_value(NULL, g_int, &d), "pymem_float_value");
    NULL_RT(pymem_str_new(NULL, "abc", 3, &o), "pymem_str_new");
    NULL_RT(pymem_str_intern(NULL, "abc", 3, &o), "pymem_str_intern");
    NULL_RT(pymem_str_value(NULL, g_str, &s, &len), "pymem_str_value");
    NULL_RT(pymem_tuple_new(NULL, 1, &g_int, &o), "pymem_tuple_new");
    NULL_RT(pymem_tuple_get(NULL, g_tuple, 0, &o), "pymem_tuple_get");
    NULL_RT(pymem_tuple_len(NULL, g_tuple, &len), "pymem_tuple_len");
    NULL_RT(pymem_list_new(NULL, &o), "pymem_list_new");
    NULL_RT(pymem_list_append(NULL, g_list, g_int), "pymem_list_append");
    NULL_RT(pymem_list_insert(NULL, g_list, 0, g_int), "pymem_list_insert");
    NULL_RT(pymem_list_get(NULL, g_list, 0, &o), "pymem_list_get");
    NULL_RT(pymem_list_set(NULL, g_list, 0, g_int), "pymem_list_set");
    NULL_RT(pymem_list_pop(NULL, g_list, 0, &o), "pymem_list_pop");
    NULL_RT(pymem_list_len(NULL, g_list, &len), "pymem_list_len");
    NULL_RT(pymem_dict_new(NULL, &o), "pymem_dict_new");
    NULL_RT(pymem_dict_set(NULL, g_dict, g_str, g_int), "pymem_dict_set");
    NULL_RT(pymem_dict_get(NULL, g_dict, g_str, &o), "pymem_dict_get");
    NULL_RT(pymem_dict_del(NULL, g_dict, g_str), "pymem_dict_del");
    NULL_RT(pymem_dict_len(NULL, g_dict, &len), "pymem_dict_len");
    NULL_RT(pymem_dict_next(NULL, g_dict, &pos, &o, &o), "pymem_dict_next");
    NULL_RT(pymem_hash(NULL, g_int, &i), "pymem_hash");
    NULL_RT(pymem_equal(NULL, g_int, g_int, &flag), "pymem_equal");
    NULL_RT(pymem_repr(NULL, g_int, &text), "pymem_repr");
    NULL_RT(pymem_setattr(NULL, g_inst, "a", g_int), "pymem_setattr");
    NULL_RT(pymem_getattr(NULL, g_inst, "attr", &o), "pymem_getattr");
    NULL_RT(pymem_delattr(NULL, g_inst, "attr"), "pymem_delattr");
    NULL_RT(pymem_type_new(NULL, &spec, &t), "pymem_type_new");
    NULL_RT(pymem_instance_new(NULL, g_type, &o), "pymem_instance_new");
    NULL_RT(pymem_is_instance(NULL, g_inst, g_type, &flag), "pymem_is_instance");
    NULL_RT(pymem_instance_payload(NULL, g_inst, &payload), "pymem_instance_payload");
    NULL_RT(pymem_module_new(NULL, "m", &o), "pymem_module_new");
    NULL_RT(pymem_function_new(NULL, "f", native_identity, NULL, &o), "pymem_function_new");
    NULL_RT(pymem_call(NULL, g_func, NULL, 0, &o), "pymem_call");
    NULL_RT(pymem_type_name(NULL, g_int, &s), "pymem_type_name");
    NULL_RT(pymem_clear_free_lists(NULL), "pymem_clear_free_lists");
#undef NULL_RT
    /* Nothing was written through the out-pointers. */
    CHECK(o == NULL && n == 0 && i == 0 && d == 0 && len == 0 && pos == 0 && s == NULL &&
          text == NULL && flag == 0 && payload == NULL && t == NULL);
    /* Calls that need no runtime. */
    CHECK(pymem_id(NULL) == 0);
    CHECK(pymem_is(NULL, NULL) == 1 && pymem_is(g_int, NULL) == 0);
    pymem_type_spec_init(NULL);
    CHECK_STATS_EQ(stats_of(rt), before);
    check_good_counts();
}

/* ------------------------------------------------------------------------ */
/* NULL object arguments and NULL out-pointers. */

static void test_null_arguments(void) {
    pymem_object *o = NULL;
    size_t pos = 0;
    int flag = 0;
#define NULL_ARG(call, needle) CHECK_FAILS_UNCHANGED(rt, rt, call, PYMEM_ERR_NULL_ARGUMENT, needle)
    /* objects */
    NULL_ARG(pymem_incref(rt, NULL), "pymem_incref: o is NULL");
    NULL_ARG(pymem_decref(rt, NULL), "pymem_decref: o is NULL");
    NULL_ARG(pymem_refcount(rt, NULL, &(ptrdiff_t){0}), "o is NULL");
    NULL_ARG(pymem_int_value(rt, NULL, &(int64_t){0}), "o is NULL");
    NULL_ARG(pymem_float_value(rt, NULL, &(double){0}), "o is NULL");
    NULL_ARG(pymem_str_value(rt, NULL, &(const char *){NULL}, NULL), "o is NULL");
    NULL_ARG(pymem_tuple_get(rt, NULL, 0, &o), "t is NULL");
    NULL_ARG(pymem_tuple_len(rt, NULL, &pos), "t is NULL");
    NULL_ARG(pymem_list_append(rt, NULL, g_int), "list is NULL");
    NULL_ARG(pymem_list_append(rt, g_list, NULL), "item is NULL");
    NULL_ARG(pymem_list_insert(rt, g_list, 0, NULL), "item is NULL");
    NULL_ARG(pymem_list_insert(rt, NULL, 0, g_int), "list is NULL");
    NULL_ARG(pymem_list_get(rt, NULL, 0, &o), "list is NULL");
    NULL_ARG(pymem_list_set(rt, g_list, 0, NULL), "item is NULL");
    NULL_ARG(pymem_list_pop(rt, NULL, 0, &o), "list is NULL");
    NULL_ARG(pymem_list_len(rt, NULL, &pos), "list is NULL");
    NULL_ARG(pymem_dict_set(rt, NULL, g_str, g_int), "d is NULL");
    NULL_ARG(pymem_dict_set(rt, g_dict, NULL, g_int), "key is NULL");
    NULL_ARG(pymem_dict_set(rt, g_dict, g_str, NULL), "value is NULL");
    NULL_ARG(pymem_dict_get(rt, g_dict, NULL, &o), "key is NULL");
    NULL_ARG(pymem_dict_del(rt, g_dict, NULL), "key is NULL");
    NULL_ARG(pymem_dict_len(rt, NULL, &pos), "d is NULL");
    NULL_ARG(pymem_dict_next(rt, NULL, &pos, &o, &o), "d is NULL");
    NULL_ARG(pymem_hash(rt, NULL, &(int64_t){0}), "o is NULL");
    NULL_ARG(pymem_equal(rt, NULL, g_int, &flag), "a is NULL");
    NULL_ARG(pymem_equal(rt, g_int, NULL, &flag), "b is NULL");
    NULL_ARG(pymem_repr(rt, NULL, &(char *){NULL}), "o is NULL");
    NULL_ARG(pymem_setattr(rt, NULL, "a", g_int), "o is NULL");
    NULL_ARG(pymem_setattr(rt, g_inst, "a", NULL), "value is NULL");
    NULL_ARG(pymem_setattr(rt, g_inst, NULL, g_int), "name is NULL");
    NULL_ARG(pymem_getattr(rt, g_inst, NULL, &o), "name is NULL");
    NULL_ARG(pymem_delattr(rt, g_inst, NULL), "name is NULL");
    NULL_ARG(pymem_getattr(rt, NULL, "attr", &o), "o is NULL");
    NULL_ARG(pymem_instance_new(rt, NULL, &o), "t is NULL");
    NULL_ARG(pymem_is_instance(rt, g_inst, NULL, &flag), "t is NULL");
    NULL_ARG(pymem_is_instance(rt, NULL, g_type, &flag), "o is NULL");
    NULL_ARG(pymem_instance_payload(rt, NULL, &(void *){NULL}), "o is NULL");
    NULL_ARG(pymem_module_new(rt, NULL, &o), "name is NULL");
    NULL_ARG(pymem_function_new(rt, NULL, native_identity, NULL, &o), "name is NULL");
    NULL_ARG(pymem_function_new(rt, "f", NULL, NULL, &o), "fn is NULL");
    NULL_ARG(pymem_call(rt, NULL, NULL, 0, &o), "f is NULL");
    NULL_ARG(pymem_call(rt, g_func, NULL, 2, &o), "args is NULL");
    pymem_object *with_null[2] = {g_int, NULL};
    NULL_ARG(pymem_call(rt, g_func, with_null, 2, &o), "args[1] is NULL");
    NULL_ARG(pymem_tuple_new(rt, 2, NULL, &o), "items is NULL");
    NULL_ARG(pymem_tuple_new(rt, 2, with_null, &o), "items[1] is NULL");
    NULL_ARG(pymem_str_new(rt, NULL, 3, &o), "utf8 is NULL");
    NULL_ARG(pymem_str_intern(rt, NULL, 3, &o), "utf8 is NULL");
    NULL_ARG(pymem_type_name(rt, NULL, &(const char *){NULL}), "o is NULL");
    NULL_ARG(pymem_type_new(rt, NULL, &(pymem_type *){NULL}), "spec is NULL");
    pymem_type_spec spec;
    pymem_type_spec_init(&spec); /* name NULL */
    NULL_ARG(pymem_type_new(rt, &spec, &(pymem_type *){NULL}), "spec->name is NULL");
    CHECK(o == NULL);

    /* out-pointers */
    NULL_ARG(pymem_refcount(rt, g_int, NULL), "out is NULL");
    NULL_ARG(pymem_none(rt, NULL), "out is NULL");
    NULL_ARG(pymem_bool(rt, 0, NULL), "out is NULL");
    NULL_ARG(pymem_int_new(rt, 5000, NULL), "out is NULL");
    NULL_ARG(pymem_int_value(rt, g_int, NULL), "out is NULL");
    NULL_ARG(pymem_float_new(rt, 0.5, NULL), "out is NULL");
    NULL_ARG(pymem_float_value(rt, g_int, NULL), "out is NULL");
    NULL_ARG(pymem_str_new(rt, "abc", 3, NULL), "out is NULL");
    NULL_ARG(pymem_str_intern(rt, "abc", 3, NULL), "out is NULL");
    NULL_ARG(pymem_str_value(rt, g_str, NULL, &pos), "utf8 is NULL");
    NULL_ARG(pymem_tuple_new(rt, 1, &g_int, NULL), "out is NULL");
    NULL_ARG(pymem_tuple_get(rt, g_tuple, 0, NULL), "out is NULL");
    NULL_ARG(pymem_tuple_len(rt, g_tuple, NULL), "out is NULL");
    NULL_ARG(pymem_list_new(rt, NULL), "out is NULL");
    NULL_ARG(pymem_list_get(rt, g_list, 0, NULL), "out is NULL");
    NULL_ARG(pymem_list_pop(rt, g_list, 0, NULL), "out is NULL");
    NULL_ARG(pymem_list_len(rt, g_list, NULL), "out is NULL");
    NULL_ARG(pymem_dict_new(rt, NULL), "out is NULL");
    NULL_ARG(pymem_dict_get(rt, g_dict, g_str, NULL), "out is NULL");
    NULL_ARG(pymem_dict_len(rt, g_dict, NULL), "out is NULL");
    NULL_ARG(pymem_dict_next(rt, g_dict, NULL, &o, &o), "pos is NULL");
    NULL_ARG(pymem_hash(rt, g_int, NULL), "out is NULL");
    NULL_ARG(pymem_equal(rt, g_int, g_int, NULL), "out is NULL");
    NULL_ARG(pymem_repr(rt, g_int, NULL), "out is NULL");
    NULL_ARG(pymem_getattr(rt, g_inst, "attr", NULL), "out is NULL");
    pymem_type_spec_init(&spec);
    spec.name = "T";
    NULL_ARG(pymem_type_new(rt, &spec, NULL), "out is NULL");
    NULL_ARG(pymem_instance_new(rt, g_type, NULL), "out is NULL");
    NULL_ARG(pymem_is_instance(rt, g_inst, g_type, NULL), "out is NULL");
    NULL_ARG(pymem_instance_payload(rt, g_inst, NULL), "out is NULL");
    NULL_ARG(pymem_module_new(rt, "m", NULL), "out is NULL");
    NULL_ARG(pymem_function_new(rt, "f", native_identity, NULL, NULL), "out is NULL");
    NULL_ARG(pymem_call(rt, g_func, NULL, 0, NULL), "result is NULL");
    NULL_ARG(pymem_type_name(rt, g_int, NULL), "out is NULL");
#undef NULL_ARG
    CHECK(o == NULL && pos == 0 && flag == 0);
    check_good_counts();
}

/* ------------------------------------------------------------------------ */
/* Pointers that are not live objects of this runtime, in every object
 * position of every call. */

typedef pymem_status (*bad_call)(pymem_object *bad);

static pymem_object *out_sink;

static pymem_status c_incref(pymem_object *b) { return pymem_incref(rt, b); }
static pymem_status c_decref(pymem_object *b) { return pymem_decref(rt, b); }
static pymem_status c_refcount(pymem_object *b) { return pymem_refcount(rt, b, &(ptrdiff_t){0}); }
static pymem_status c_int_value(pymem_object *b) { return pymem_int_value(rt, b, &(int64_t){0}); }
static pymem_status c_float_value(pymem_object *b) { return pymem_float_value(rt, b, &(double){0}); }
static pymem_status c_str_value(pymem_object *b) {
    return pymem_str_value(rt, b, &(const char *){NULL}, NULL);
}
static pymem_status c_tuple_new(pymem_object *b) {
    pymem_object *items[2] = {g_int, b};
    return pymem_tuple_new(rt, 2, items, &out_sink);
}
static pymem_status c_tuple_get(pymem_object *b) { return pymem_tuple_get(rt, b, 0, &out_sink); }
static pymem_status c_tuple_len(pymem_object *b) { return pymem_tuple_len(rt, b, &(size_t){0}); }
static pymem_status c_list_append_to(pymem_object *b) { return pymem_list_append(rt, b, g_int); }
static pymem_status c_list_append_item(pymem_object *b) { return pymem_list_append(rt, g_list, b); }
static pymem_status c_list_insert_item(pymem_object *b) { return pymem_list_insert(rt, g_list, 0, b); }
static pymem_status c_list_insert_to(pymem_object *b) { return pymem_list_insert(rt, b, 0, g_int); }
static pymem_status c_list_get(pymem_object *b) { return pymem_list_get(rt, b, 0, &out_sink); }
static pymem_status c_list_set_item(pymem_object *b) { return pymem_list_set(rt, g_list, 0, b); }
static pymem_status c_list_set_to(pymem_object *b) { return pymem_list_set(rt, b, 0, g_int); }
static pymem_status c_list_pop(pymem_object *b) { return pymem_list_pop(rt, b, 0, &out_sink); }
static pymem_status c_list_len(pymem_object *b) { return pymem_list_len(rt, b, &(size_t){0}); }
static pymem_status c_dict_set_d(pymem_object *b) { return pymem_dict_set(rt, b, g_str, g_int); }
static pymem_status c_dict_set_key(pymem_object *b) { return pymem_dict_set(rt, g_dict, b, g_int); }
static pymem_status c_dict_set_value(pymem_object *b) { return pymem_dict_set(rt, g_dict, g_str, b); }
static pymem_status c_dict_get_d(pymem_object *b) { return pymem_dict_get(rt, b, g_str, &out_sink); }
static pymem_status c_dict_get_key(pymem_object *b) { return pymem_dict_get(rt, g_dict, b, &out_sink); }
static pymem_status c_dict_del_key(pymem_object *b) { return pymem_dict_del(rt, g_dict, b); }
static pymem_status c_dict_del_d(pymem_object *b) { return pymem_dict_del(rt, b, g_str); }
static pymem_status c_dict_len(pymem_object *b) { return pymem_dict_len(rt, b, &(size_t){0}); }
static pymem_status c_dict_next(pymem_object *b) {
    return pymem_dict_next(rt, b, &(size_t){0}, &out_sink, &out_sink);
}
static pymem_status c_hash(pymem_object *b) { return pymem_hash(rt, b, &(int64_t){0}); }
static pymem_status c_equal_a(pymem_object *b) { return pymem_equal(rt, b, g_int, &(int){0}); }
static pymem_status c_equal_b(pymem_object *b) { return pymem_equal(rt, g_int, b, &(int){0}); }
static pymem_status c_repr(pymem_object *b) {
    char *text = NULL;
    pymem_status st = pymem_repr(rt, b, &text);
    pymem_string_free(text);
    return st;
}
static pymem_status c_setattr_o(pymem_object *b) { return pymem_setattr(rt, b, "attr", g_int); }
static pymem_status c_setattr_value(pymem_object *b) { return pymem_setattr(rt, g_inst, "attr", b); }
static pymem_status c_getattr(pymem_object *b) { return pymem_getattr(rt, b, "attr", &out_sink); }
static pymem_status c_delattr(pymem_object *b) { return pymem_delattr(rt, b, "attr"); }
static pymem_status c_is_instance(pymem_object *b) {
    return pymem_is_instance(rt, b, g_type, &(int){0});
}
static pymem_status c_instance_payload(pymem_object *b) {
    return pymem_instance_payload(rt, b, &(void *){NULL});
}
static pymem_status c_call_f(pymem_object *b) { return pymem_call(rt, b, NULL, 0, &out_sink); }
static pymem_status c_call_arg(pymem_object *b) {
    pymem_object *args[2] = {g_int, b};
    return pymem_call(rt, g_func, args, 2, &out_sink);
}
static pymem_status c_type_name(pymem_object *b) {
    return pymem_type_name(rt, b, &(const char *){NULL});
}

static const struct {
    const char *name;
    bad_call call;
} object_positions[] = {
    {"incref", c_incref},
    {"decref", c_decref},
    {"refcount", c_refcount},
    {"int_value", c_int_value},
    {"float_value", c_float_value},
    {"str_value", c_str_value},
    {"tuple_new item", c_tuple_new},
    {"tuple_get", c_tuple_get},
    {"tuple_len", c_tuple_len},
    {"list_append list", c_list_append_to},
    {"list_append item", c_list_append_item},
    {"list_insert item", c_list_insert_item},
    {"list_insert list", c_list_insert_to},
    {"list_get", c_list_get},
    {"list_set item", c_list_set_item},
    {"list_set list", c_list_set_to},
    {"list_pop", c_list_pop},
    {"list_len", c_list_len},
    {"dict_set d", c_dict_set_d},
    {"dict_set key", c_dict_set_key},
    {"dict_set value", c_dict_set_value},
    {"dict_get d", c_dict_get_d},
    {"dict_get key", c_dict_get_key},
    {"dict_del key", c_dict_del_key},
    {"dict_del d", c_dict_del_d},
    {"dict_len", c_dict_len},
    {"dict_next", c_dict_next},
    {"hash", c_hash},
    {"equal a", c_equal_a},
    {"equal b", c_equal_b},
    {"repr", c_repr},
    {"setattr o", c_setattr_o},
    {"setattr value", c_setattr_value},
    {"getattr", c_getattr},
    {"delattr", c_delattr},
    {"is_instance", c_is_instance},
    {"instance_payload", c_instance_payload},
    {"call f", c_call_f},
    {"call arg", c_call_arg},
    {"type_name", c_type_name},
};

/* Every call refuses `bad` with INVALID_POINTER (decref: `decref_status`),
   naming it, and changes nothing. */
static void check_refused_everywhere(const char *what, pymem_object *bad, pymem_status decref_status) {
    const pymem_alloc_stats before = stats_of(rt);
    for (size_t i = 0; i < sizeof object_positions / sizeof object_positions[0]; i++) {
        const pymem_status want =
            object_positions[i].call == c_decref ? decref_status : PYMEM_ERR_INVALID_POINTER;
        out_sink = NULL;
        const pymem_status got = object_positions[i].call(bad);
        CHECKF(got == want, "%s passed to %s: %s, expected %s (\"%s\")", what,
               object_positions[i].name, pymem_status_name(got), pymem_status_name(want),
               pymem_last_error(rt));
        CHECK_STATUS(rt, pymem_last_status(rt), want);
        check_message_names(rt, bad);
        CHECK(out_sink == NULL);
    }
    CHECK_STATS_EQ(stats_of(rt), before);
    check_good_counts();
}

static int native_calls;

static pymem_status native_count(pymem_runtime *r, pymem_object *const *args, size_t nargs,
                                 pymem_object **result, void *userdata) {
    (void)r;
    (void)args;
    (void)nargs;
    (void)result;
    (void)userdata;
    native_calls++;
    return PYMEM_OK;
}

static void test_invalid_pointers(void) {
    /* A freed object: its block went back to the allocator (str has no
       free list). Nothing is allocated below until the checks are done, so
       the address is not handed out again. */
    pymem_object *freed = NULL;
    CHECK_OK(rt, pymem_str_new(rt, "soon gone", 9, &freed));
    drop(freed);
    check_refused_everywhere("a freed str", freed, PYMEM_ERR_INVALID_POINTER);
    CHECK_MESSAGE(rt, "not a live object of this runtime");

    /* A float waiting on the free list: dead to the ABI; its decref is an
       underflow (its count is already 0). */
    pymem_object *f = NULL;
    CHECK_OK(rt, pymem_float_new(rt, 0.25, &f));
    drop(f);
    check_refused_everywhere("a float on the free list", f, PYMEM_ERR_REFCOUNT_UNDERFLOW);
    CHECK_FAILS_UNCHANGED(rt, rt, pymem_decref(rt, f), PYMEM_ERR_REFCOUNT_UNDERFLOW,
                          "reference count is already 0");
    CHECK_FAILS_UNCHANGED(rt, rt, pymem_incref(rt, f), PYMEM_ERR_INVALID_POINTER,
                          "a dead object (on a free list");
    /* The same holds for a freed int, list and dict (their free lists). */
    pymem_object *i = NULL, *l = NULL, *d = NULL;
    CHECK_OK(rt, pymem_int_new(rt, 123456, &i));
    CHECK_OK(rt, pymem_list_new(rt, &l));
    CHECK_OK(rt, pymem_dict_new(rt, &d));
    drop(i);
    drop(l);
    drop(d);
    check_refused_everywhere("an int on the free list", i, PYMEM_ERR_REFCOUNT_UNDERFLOW);
    check_refused_everywhere("a list on the free list", l, PYMEM_ERR_REFCOUNT_UNDERFLOW);
    check_refused_everywhere("a dict on the free list", d, PYMEM_ERR_REFCOUNT_UNDERFLOW);
    CHECK_OK(rt, pymem_clear_free_lists(rt));
    /* Once the free list is emptied, the float's block is free: a plain
       invalid pointer (no longer an underflow). */
    CHECK_FAILS_UNCHANGED(rt, rt, pymem_decref(rt, f), PYMEM_ERR_INVALID_POINTER,
                          "not a live object");

    /* The stack and libc's heap. */
    uint64_t on_stack[8] = {1, 2, 3, 4, 5, 6, 7, 8};
    check_refused_everywhere("a stack address", (pymem_object *)on_stack, PYMEM_ERR_INVALID_POINTER);
    void *heap = calloc(1, 64);
    CHECK(heap != NULL);
    check_refused_everywhere("a malloc'd block", heap, PYMEM_ERR_INVALID_POINTER);
    free(heap);
    CHECK(on_stack[0] == 1 && on_stack[7] == 8);

    /* Raw memory of this runtime's own allocator: a block, not an object. */
    void *raw = pymem_malloc(rt, 48);
    CHECK(raw != NULL);
    memset(raw, 0, 48);
    check_refused_everywhere("a pymem_malloc block", raw, PYMEM_ERR_INVALID_POINTER);
    void *raw_large = pymem_malloc(rt, 4096);
    CHECK(raw_large != NULL);
    check_refused_everywhere("a large pymem_malloc block", raw_large, PYMEM_ERR_INVALID_POINTER);
    CHECK_OK(rt, pymem_free(rt, raw));
    CHECK_OK(rt, pymem_free(rt, raw_large));
    /* ... and the other way round: an object is not a raw block. */
    CHECK_FAILS_UNCHANGED(rt, rt, pymem_free(rt, g_list), PYMEM_ERR_INVALID_POINTER, "");

    /* Pointers into a live object. */
    check_refused_everywhere("a pointer into a list", offset_obj(g_list, 16), PYMEM_ERR_INVALID_POINTER);
    check_refused_everywhere("a pointer into a str", offset_obj(g_str, 1), PYMEM_ERR_INVALID_POINTER);
    check_refused_everywhere("a pointer into an instance", offset_obj(g_inst, 8),
                             PYMEM_ERR_INVALID_POINTER);

    /* Objects of another runtime, a singleton included. */
    pymem_runtime *other = NULL;
    CHECK_OK(NULL, pymem_runtime_new(NULL, &other));
    pymem_object *foreign = NULL, *foreign_none = NULL, *foreign_int = NULL;
    CHECK_OK(other, pymem_list_new(other, &foreign));
    CHECK_OK(other, pymem_none(other, &foreign_none));
    CHECK_OK(other, pymem_int_new(other, 7, &foreign_int));
    check_refused_everywhere("another runtime's list", foreign, PYMEM_ERR_INVALID_POINTER);
    check_refused_everywhere("another runtime's None", foreign_none, PYMEM_ERR_INVALID_POINTER);
    check_refused_everywhere("another runtime's small int", foreign_int, PYMEM_ERR_INVALID_POINTER);
    /* ... and ours in theirs. */
    CHECK_FAILS(other, pymem_list_append(other, foreign, g_int), PYMEM_ERR_INVALID_POINTER,
                "not a live object of this runtime");
    size_t n = 9;
    CHECK_OK(other, pymem_list_len(other, foreign, &n));
    CHECK(n == 0);
    /* Type handles: another runtime's, a stack address, NULL. */
    pymem_type_spec spec;
    pymem_type_spec_init(&spec);
    spec.name = "Foreign";
    pymem_type *foreign_type = NULL;
    CHECK_OK(other, pymem_type_new(other, &spec, &foreign_type));
    pymem_object *o = NULL;
    int flag = 7;
    CHECK_FAILS_UNCHANGED(rt, rt, pymem_instance_new(rt, foreign_type, &o), PYMEM_ERR_INVALID_POINTER,
                          "not a type of this runtime");
    CHECK_FAILS_UNCHANGED(rt, rt, pymem_is_instance(rt, g_inst, foreign_type, &flag),
                          PYMEM_ERR_INVALID_POINTER, "not a type of this runtime");
    CHECK_FAILS_UNCHANGED(rt, rt, pymem_instance_new(rt, (pymem_type *)on_stack, &o),
                          PYMEM_ERR_INVALID_POINTER, "invalid type");
    CHECK(o == NULL && flag == 7);
    CHECK_OK(other, pymem_decref(other, foreign));
    CHECK_OK(other, pymem_runtime_free(other));

    /* A native function is never called with a bad argument. */
    pymem_object *counter = NULL;
    CHECK_OK(rt, pymem_function_new(rt, "counter", native_count, NULL, &counter));
    pymem_object *args[1] = {(pymem_object *)on_stack};
    CHECK_FAILS(rt, pymem_call(rt, counter, args, 1, &o), PYMEM_ERR_INVALID_POINTER, "invalid object");
    CHECK(native_calls == 0 && o == NULL);
    drop(counter);
    check_good_counts();
}

/* ------------------------------------------------------------------------ */
/* Wrong types, indexes, keys, unhashable keys. */

static void test_wrong_values(void) {
    pymem_object *o = NULL, *flt = NULL;
    int64_t i = 0;
    double d = 0;
    const char *s = NULL;
    size_t n = 0;
    CHECK_OK(rt, pymem_float_new(rt, 1.5, &flt));
#define BAD(call, status, needle) CHECK_FAILS_UNCHANGED(rt, rt, call, status, needle)
    /* Wrong types. */
    BAD(pymem_int_value(rt, g_str, &i), PYMEM_ERR_TYPE, "expected int, got str");
    BAD(pymem_int_value(rt, flt, &i), PYMEM_ERR_TYPE, "expected int, got float");
    BAD(pymem_int_value(rt, g_none, &i), PYMEM_ERR_TYPE, "got NoneType");
    BAD(pymem_float_value(rt, g_str, &d), PYMEM_ERR_TYPE, "got str");
    BAD(pymem_str_value(rt, g_int, &s, &n), PYMEM_ERR_TYPE, "got int");
    BAD(pymem_instance_payload(rt, g_list, &(void *){NULL}), PYMEM_ERR_TYPE, "got list");
    BAD(pymem_instance_payload(rt, g_mod, &(void *){NULL}), PYMEM_ERR_TYPE, "got module");
    BAD(pymem_list_append(rt, g_dict, g_int), PYMEM_ERR_TYPE, "expected list, got dict");
    BAD(pymem_list_insert(rt, g_tuple, 0, g_int), PYMEM_ERR_TYPE, "got tuple");
    BAD(pymem_list_get(rt, g_dict, 0, &o), PYMEM_ERR_TYPE, "got dict");
    BAD(pymem_list_set(rt, g_dict, 0, g_int), PYMEM_ERR_TYPE, "got dict");
    BAD(pymem_list_pop(rt, g_dict, 0, &o), PYMEM_ERR_TYPE, "got dict");
    BAD(pymem_list_len(rt, g_dict, &n), PYMEM_ERR_TYPE, "got dict");
    BAD(pymem_tuple_get(rt, g_list, 0, &o), PYMEM_ERR_TYPE, "got list");
    BAD(pymem_tuple_len(rt, g_list, &n), PYMEM_ERR_TYPE, "got list");
    BAD(pymem_dict_set(rt, g_list, g_str, g_int), PYMEM_ERR_TYPE, "got list");
    BAD(pymem_dict_get(rt, g_list, g_str, &o), PYMEM_ERR_TYPE, "got list");
    BAD(pymem_dict_del(rt, g_list, g_str), PYMEM_ERR_TYPE, "got list");
    BAD(pymem_dict_len(rt, g_tuple, &n), PYMEM_ERR_TYPE, "got tuple");
    BAD(pymem_dict_next(rt, g_list, &n, &o, &o), PYMEM_ERR_TYPE, "got list");
    BAD(pymem_getattr(rt, g_int, "attr", &o), PYMEM_ERR_TYPE, "'int' object has no attributes");
    BAD(pymem_setattr(rt, g_int, "attr", g_int), PYMEM_ERR_TYPE, "'int'");
    BAD(pymem_delattr(rt, g_str, "attr"), PYMEM_ERR_TYPE, "'str'");
    BAD(pymem_setattr(rt, g_dict, "attr", g_int), PYMEM_ERR_TYPE, "'dict'");
    BAD(pymem_call(rt, g_mod, NULL, 0, &o), PYMEM_ERR_TYPE, "expected function, got module");
    BAD(pymem_call(rt, g_inst, NULL, 0, &o), PYMEM_ERR_TYPE, "got Thing");
    CHECK(o == NULL && i == 0 && d == 0 && s == NULL && n == 0);

    /* Index out of range. */
    BAD(pymem_list_get(rt, g_list, 1, &o), PYMEM_ERR_INDEX, "list index 1 out of range (len 1)");
    BAD(pymem_list_get(rt, g_list, SIZE_MAX, &o), PYMEM_ERR_INDEX, "out of range");
    BAD(pymem_list_set(rt, g_list, 1, g_str), PYMEM_ERR_INDEX, "out of range");
    BAD(pymem_list_pop(rt, g_list, 1, &o), PYMEM_ERR_INDEX, "out of range");
    BAD(pymem_tuple_get(rt, g_tuple, 2, &o), PYMEM_ERR_INDEX, "tuple index 2 out of range (len 2)");
    size_t pos = 1; /* past the only item */
    BAD(pymem_dict_next(rt, g_dict, &pos, &o, &o), PYMEM_ERR_INDEX, "no more items");
    CHECK(pos == 1);
    pos = SIZE_MAX;
    BAD(pymem_dict_next(rt, g_dict, &pos, &o, &o), PYMEM_ERR_INDEX, "");
    CHECK(pos == SIZE_MAX && o == NULL);

    /* Missing keys and attributes. */
    pymem_object *missing = NULL;
    CHECK_OK(rt, pymem_str_new(rt, "no such key", 11, &missing));
    BAD(pymem_dict_get(rt, g_dict, missing, &o), PYMEM_ERR_KEY, "'no such key'");
    BAD(pymem_dict_del(rt, g_dict, missing), PYMEM_ERR_KEY, "'no such key'");
    BAD(pymem_dict_get(rt, g_dict, g_int, &o), PYMEM_ERR_KEY, "123456");
    BAD(pymem_getattr(rt, g_inst, "nope", &o), PYMEM_ERR_KEY, "'Thing' object has no attribute 'nope'");
    BAD(pymem_delattr(rt, g_inst, "nope"), PYMEM_ERR_KEY, "'nope'");
    BAD(pymem_getattr(rt, g_mod, "nope", &o), PYMEM_ERR_KEY, "'nope'");
    BAD(pymem_delattr(rt, g_func, "nope"), PYMEM_ERR_KEY, "'nope'");
    drop(missing);

    /* Unhashable keys (the message names the offending type, as Python). */
    BAD(pymem_dict_set(rt, g_dict, g_list, g_int), PYMEM_ERR_TYPE, "unhashable type: 'list'");
    BAD(pymem_dict_set(rt, g_dict, g_dict, g_int), PYMEM_ERR_TYPE, "unhashable type: 'dict'");
    BAD(pymem_dict_get(rt, g_dict, g_list, &o), PYMEM_ERR_TYPE, "unhashable type: 'list'");
    BAD(pymem_dict_del(rt, g_dict, g_dict), PYMEM_ERR_TYPE, "unhashable type: 'dict'");
    BAD(pymem_hash(rt, g_list, &i), PYMEM_ERR_TYPE, "unhashable type: 'list'");
    pymem_object *items[2] = {g_int, g_list}, *t = NULL;
    CHECK_OK(rt, pymem_tuple_new(rt, 2, items, &t));
    BAD(pymem_dict_set(rt, g_dict, t, g_int), PYMEM_ERR_TYPE, "unhashable type: 'list'");
    BAD(pymem_hash(rt, t, &i), PYMEM_ERR_TYPE, "unhashable type: 'list'");
    drop(t);
    CHECK(o == NULL && i == 0);

    /* Invalid UTF-8: strings, attribute names, module, function and type
       names. */
    static const char *const bad_utf8[] = {
        "\xff",             /* never valid */
        "ab\xc0\x80",       /* overlong NUL */
        "\xed\xa0\x80",     /* a surrogate */
        "\xe2\x82",         /* truncated */
        "\xf4\x90\x80\x80", /* past U+10FFFF */
        "ok\x80",           /* a lone continuation byte */
    };
    for (size_t k = 0; k < sizeof bad_utf8 / sizeof bad_utf8[0]; k++) {
        const char *b = bad_utf8[k];
        BAD(pymem_str_new(rt, b, strlen(b), &o), PYMEM_ERR_INVALID_ARGUMENT, "invalid UTF-8");
        BAD(pymem_str_intern(rt, b, strlen(b), &o), PYMEM_ERR_INVALID_ARGUMENT, "invalid UTF-8");
        BAD(pymem_setattr(rt, g_inst, b, g_int), PYMEM_ERR_INVALID_ARGUMENT, "name is not valid UTF-8");
        BAD(pymem_setattr(rt, g_mod, b, g_int), PYMEM_ERR_INVALID_ARGUMENT, "not valid UTF-8");
        BAD(pymem_getattr(rt, g_inst, b, &o), PYMEM_ERR_INVALID_ARGUMENT, "not valid UTF-8");
        BAD(pymem_delattr(rt, g_func, b), PYMEM_ERR_INVALID_ARGUMENT, "not valid UTF-8");
        BAD(pymem_module_new(rt, b, &o), PYMEM_ERR_INVALID_ARGUMENT, "not valid UTF-8");
        BAD(pymem_function_new(rt, b, native_identity, NULL, &o), PYMEM_ERR_INVALID_ARGUMENT,
            "not valid UTF-8");
        pymem_type_spec spec;
        pymem_type_spec_init(&spec);
        spec.name = b;
        pymem_type *tt = NULL;
        BAD(pymem_type_new(rt, &spec, &tt), PYMEM_ERR_INVALID_ARGUMENT, "spec->name is not valid UTF-8");
        CHECK(tt == NULL);
    }
    /* A str with a NUL inside is fine, a name cannot hold one: it ends at
       the NUL. An empty type name is refused. */
    pymem_type_spec spec;
    pymem_type_spec_init(&spec);
    spec.name = "";
    pymem_type *tt = NULL;
    BAD(pymem_type_new(rt, &spec, &tt), PYMEM_ERR_INVALID_ARGUMENT, "non-empty name");
    CHECK(o == NULL && tt == NULL);
#undef BAD
    drop(flt);
    check_good_counts();
}

/* ------------------------------------------------------------------------ */
/* Native functions: errors pass through pymem_call; a bad result is
 * refused; everything but pymem_runtime_free may be called inside. */

static pymem_status native_fail(pymem_runtime *r, pymem_object *const *args, size_t nargs,
                                pymem_object **result, void *userdata) {
    (void)r;
    (void)args;
    (void)nargs;
    (void)result;
    return (pymem_status)(intptr_t)userdata;
}

static pymem_status native_bad_result(pymem_runtime *r, pymem_object *const *args, size_t nargs,
                                      pymem_object **result, void *userdata) {
    (void)r;
    (void)args;
    (void)nargs;
    *result = (pymem_object *)userdata; /* not an object */
    return PYMEM_OK;
}

static pymem_status native_inner_status;
static pymem_status native_free_status, native_free_last_status, native_free_thread_status;
static char native_free_message[256], native_free_thread_message[256];

/* Calls back in: objects, nested calls, and pymem_runtime_free (refused). */
static pymem_status native_busy(pymem_runtime *r, pymem_object *const *args, size_t nargs,
                                pymem_object **result, void *userdata) {
    (void)userdata;
    native_free_status = pymem_runtime_free(r);
    native_free_last_status = pymem_last_status(r);
    snprintf(native_free_message, sizeof native_free_message, "%s", pymem_last_error(r));
    native_free_thread_status = pymem_last_status(NULL);
    snprintf(native_free_thread_message, sizeof native_free_thread_message, "%s",
             pymem_last_error(NULL));
    pymem_object *l = NULL;
    pymem_status st = pymem_list_new(r, &l);
    if (st != PYMEM_OK)
        return st;
    for (size_t i = 0; i < nargs; i++) {
        if ((st = pymem_list_append(r, l, args[i])) != PYMEM_OK)
            return st;
    }
    pymem_object *inner = NULL;
    native_inner_status = pymem_call(r, g_func, args, nargs, &inner); /* a nested call */
    if (native_inner_status == PYMEM_OK) {
        CHECK_OK(r, pymem_list_append(r, l, inner));
        CHECK_OK(r, pymem_decref(r, inner));
    }
    pymem_object *f = NULL;
    CHECK_OK(r, pymem_float_new(r, 0.5, &f));
    CHECK_OK(r, pymem_list_append(r, l, f));
    CHECK_OK(r, pymem_decref(r, f));
    *result = l;
    return PYMEM_OK;
}

static void test_native_functions(void) {
    pymem_object *f = NULL, *o = NULL;
    static const pymem_status statuses[] = {PYMEM_ERR_INDEX, PYMEM_ERR_KEY, PYMEM_ERR_TYPE,
                                            PYMEM_ERR_NO_MEMORY, PYMEM_ERR_INVALID_ARGUMENT};
    for (size_t i = 0; i < sizeof statuses / sizeof statuses[0]; i++) {
        CHECK_OK(rt, pymem_function_new(rt, "fail", native_fail, (void *)(intptr_t)statuses[i], &f));
        char needle[96];
        snprintf(needle, sizeof needle, "native function 'fail' returned %s",
                 pymem_status_name(statuses[i]));
        CHECK_FAILS_UNCHANGED(rt, rt, pymem_call(rt, f, &g_int, 1, &o), statuses[i], needle);
        CHECK(o == NULL);
        drop(f);
    }
    /* A result that is not an object. */
    uint64_t on_stack[4] = {0};
    CHECK_OK(rt, pymem_function_new(rt, "liar", native_bad_result, on_stack, &f));
    CHECK_FAILS_UNCHANGED(rt, rt, pymem_call(rt, f, NULL, 0, &o), PYMEM_ERR_INVALID_POINTER,
                          "native function 'liar'");
    CHECK(o == NULL);
    drop(f);

    /* Inside a native function: everything works, pymem_runtime_free is
       BUSY, and the runtime is fine afterwards. */
    CHECK_OK(rt, pymem_clear_free_lists(rt));
    const uint64_t start = stats_of(rt).blocks_in_use;
    CHECK_OK(rt, pymem_function_new(rt, "busy", native_busy, NULL, &f));
    pymem_object *args[2] = {g_int, g_str};
    CHECK_OK(rt, pymem_call(rt, f, args, 2, &o));
    CHECK_STATUS(rt, native_free_status, PYMEM_ERR_BUSY);
    /* The message is recorded (in the thread's slot at least; whether
       pymem_last_error(rt) shows it is checked at the very end, see
       check_last_error_inside_native_function). */
    CHECK_STATUS(rt, native_free_thread_status, PYMEM_ERR_BUSY);
    CHECK_CONTAINS(native_free_thread_message,
                   "pymem_runtime_free: may not be called from inside a host callback");
    CHECK_STATUS(rt, native_inner_status, PYMEM_OK);
    char *text = NULL;
    CHECK_OK(rt, pymem_repr(rt, o, &text));
    CHECK_STR_EQ(text, "[123456, 'a key', 123456, 0.5]");
    pymem_string_free(text);
    drop(o);
    drop(f);
    CHECK_OK(rt, pymem_clear_free_lists(rt));
    CHECK_BLOCKS(rt, start);
    check_good_counts();
}

/* ------------------------------------------------------------------------ */
/* clear and dealloc: only incref/decref (and read-only calls) come back in. */

typedef struct {
    pymem_object *child; /* a reference taken with incref */
} holder_payload;

typedef struct {
    int clears, deallocs;
    /* inside clear */
    pymem_status c_list_new, c_int_new, c_runtime_free, c_repr, c_setattr, c_incref, c_decref,
        c_payload, c_type_name, c_refcount, c_decref_self, c_incref_self, c_instance_new;
    char c_message[256];
    char c_free_message[256];
    void *c_payload_ptr;
    /* inside dealloc */
    pymem_status d_list_new, d_int_new, d_runtime_free, d_incref, d_decref, d_payload,
        d_clear_free_lists, d_call;
    char d_message[256];
    void *d_payload_arg, *d_payload_ptr;
} reentry_log;

static reentry_log log_;
static pymem_object *bystander; /* a live object the callbacks touch */

static void holder_clear(pymem_runtime *r, pymem_object *self, void *userdata) {
    CHECK(userdata == &log_ && r == rt);
    log_.clears++;
    pymem_object *o = NULL;
    log_.c_list_new = pymem_list_new(r, &o);
    snprintf(log_.c_message, sizeof log_.c_message, "%s", pymem_last_error(r));
    CHECK(o == NULL);
    log_.c_int_new = pymem_int_new(r, 99999, &o);
    char *text = NULL;
    log_.c_repr = pymem_repr(r, bystander, &text);
    CHECK(text == NULL);
    log_.c_setattr = pymem_setattr(r, bystander, "x", bystander);
    log_.c_instance_new = pymem_instance_new(r, g_type, &o);
    log_.c_runtime_free = pymem_runtime_free(r);
    snprintf(log_.c_free_message, sizeof log_.c_free_message, "%s", pymem_last_error(r));
    CHECK(o == NULL);
    /* Allowed: incref/decref of others, and calls that change nothing. */
    log_.c_incref = pymem_incref(r, bystander);
    log_.c_decref = pymem_decref(r, bystander);
    const char *name = NULL;
    log_.c_type_name = pymem_type_name(r, bystander, &name);
    if (log_.c_type_name == PYMEM_OK)
        CHECK_STR_EQ(name, "list");
    ptrdiff_t n = 0;
    log_.c_refcount = pymem_refcount(r, bystander, &n);
    /* The object being cleared is dead: its count is 0. */
    log_.c_decref_self = pymem_decref(r, self);
    log_.c_incref_self = pymem_incref(r, self);
    /* Its payload is still readable: drop the child. */
    void *payload = NULL;
    log_.c_payload = pymem_instance_payload(r, self, &payload);
    log_.c_payload_ptr = payload;
    if (payload != NULL) {
        holder_payload *hp = payload;
        if (hp->child != NULL) {
            CHECK_OK(r, pymem_decref(r, hp->child));
            hp->child = NULL;
        }
    }
}

static void holder_dealloc(pymem_object *self, void *payload, void *userdata) {
    CHECK(userdata == &log_);
    log_.deallocs++;
    log_.d_payload_arg = payload;
    pymem_object *o = NULL;
    log_.d_list_new = pymem_list_new(rt, &o);
    snprintf(log_.d_message, sizeof log_.d_message, "%s", pymem_last_error(rt));
    log_.d_int_new = pymem_int_new(rt, 99999, &o);
    log_.d_clear_free_lists = pymem_clear_free_lists(rt);
    log_.d_call = pymem_call(rt, g_func, NULL, 0, &o);
    log_.d_runtime_free = pymem_runtime_free(rt);
    CHECK(o == NULL);
    log_.d_incref = pymem_incref(rt, bystander);
    log_.d_decref = pymem_decref(rt, bystander);
    void *p = NULL;
    log_.d_payload = pymem_instance_payload(rt, self, &p);
    log_.d_payload_ptr = p;
    /* (clear already dropped the child; a host without clear would drop it
       here.) */
    holder_payload *hp = payload;
    if (hp->child != NULL) {
        CHECK_OK(rt, pymem_decref(rt, hp->child));
        hp->child = NULL;
    }
}

static pymem_type *define_holder(void) {
    pymem_type_spec spec;
    pymem_type_spec_init(&spec);
    spec.name = "Holder";
    spec.payload_size = sizeof(holder_payload);
    spec.clear = holder_clear;
    spec.dealloc = holder_dealloc;
    spec.userdata = &log_;
    pymem_type *t = NULL;
    CHECK_OK(rt, pymem_type_new(rt, &spec, &t));
    return t;
}

static void test_callback_reentry(void) {
    pymem_type *holder = define_holder();
    CHECK_OK(rt, pymem_list_new(rt, &bystander));
    CHECK_OK(rt, pymem_clear_free_lists(rt));
    const uint64_t start = stats_of(rt).blocks_in_use;

    pymem_object *h = NULL, *child = NULL;
    CHECK_OK(rt, pymem_instance_new(rt, holder, &h));
    CHECK_OK(rt, pymem_str_new(rt, "the child", 9, &child));
    void *payload = NULL;
    CHECK_OK(rt, pymem_instance_payload(rt, h, &payload));
    ((holder_payload *)payload)->child = child;
    CHECK_OK(rt, pymem_incref(rt, child)); /* the payload's reference */
    CHECK_OK(rt, pymem_incref(rt, child)); /* ours, to watch it */
    CHECK(count(child) == 3);
    drop(child); /* back to ours + the payload's */
    memset(&log_, 0, sizeof log_);

    drop(h); /* clear, then dealloc */
    CHECK(log_.clears == 1 && log_.deallocs == 1);
    /* Refused inside clear, with a message that says why. */
    CHECK_STATUS(rt, log_.c_list_new, PYMEM_ERR_BUSY);
    CHECK_CONTAINS(log_.c_message, "pymem_list_new: inside a clear or dealloc callback only "
                                   "pymem_incref and pymem_decref may be called");
    CHECK_STATUS(rt, log_.c_int_new, PYMEM_ERR_BUSY);
    CHECK_STATUS(rt, log_.c_repr, PYMEM_ERR_BUSY);
    CHECK_STATUS(rt, log_.c_setattr, PYMEM_ERR_BUSY);
    CHECK_STATUS(rt, log_.c_instance_new, PYMEM_ERR_BUSY);
    CHECK_STATUS(rt, log_.c_runtime_free, PYMEM_ERR_BUSY);
    CHECK_CONTAINS(log_.c_free_message, "pymem_runtime_free");
    /* Allowed inside clear. */
    CHECK_STATUS(rt, log_.c_incref, PYMEM_OK);
    CHECK_STATUS(rt, log_.c_decref, PYMEM_OK);
    CHECK_STATUS(rt, log_.c_type_name, PYMEM_OK);
    CHECK_STATUS(rt, log_.c_refcount, PYMEM_OK);
    CHECK_STATUS(rt, log_.c_payload, PYMEM_OK);
    CHECK(log_.c_payload_ptr == payload);
    /* The object being freed: its count is 0, it cannot be revived. */
    CHECK_STATUS(rt, log_.c_decref_self, PYMEM_ERR_REFCOUNT_UNDERFLOW);
    CHECK_STATUS(rt, log_.c_incref_self, PYMEM_ERR_INVALID_POINTER);
    /* Refused inside dealloc. */
    CHECK_STATUS(rt, log_.d_list_new, PYMEM_ERR_BUSY);
    CHECK_CONTAINS(log_.d_message, "inside a clear or dealloc callback");
    CHECK_STATUS(rt, log_.d_int_new, PYMEM_ERR_BUSY);
    CHECK_STATUS(rt, log_.d_clear_free_lists, PYMEM_ERR_BUSY);
    CHECK_STATUS(rt, log_.d_call, PYMEM_ERR_BUSY);
    CHECK_STATUS(rt, log_.d_runtime_free, PYMEM_ERR_BUSY);
    /* Allowed inside dealloc. */
    CHECK_STATUS(rt, log_.d_incref, PYMEM_OK);
    CHECK_STATUS(rt, log_.d_decref, PYMEM_OK);
    CHECK_STATUS(rt, log_.d_payload, PYMEM_OK);
    CHECK(log_.d_payload_ptr == payload && log_.d_payload_arg == payload);

    /* clear dropped the child's reference; the runtime works again. */
    CHECK(count(child) == 1);
    CHECK(count(bystander) == 1);
    drop(child);
    pymem_object *o = NULL;
    CHECK_OK(rt, pymem_list_new(rt, &o));
    drop(o);
    CHECK_OK(rt, pymem_clear_free_lists(rt));
    CHECK_BLOCKS(rt, start);
    drop(bystander);
    check_good_counts();
}

/* pymem_runtime_free runs dealloc (not clear) for each live host object;
 * those callbacks are restricted too: pymem_runtime_free inside them is
 * BUSY, not a second free. */
static pymem_runtime *teardown_rt;
static int teardown_deallocs, teardown_clears;
static pymem_status teardown_free_status, teardown_list_status, teardown_decref_status;

static void teardown_clear(pymem_runtime *r, pymem_object *self, void *userdata) {
    (void)r;
    (void)self;
    (void)userdata;
    teardown_clears++;
}

static void teardown_dealloc(pymem_object *self, void *payload, void *userdata) {
    (void)self;
    (void)userdata;
    teardown_deallocs++;
    pymem_object *o = NULL;
    teardown_free_status = pymem_runtime_free(teardown_rt);
    teardown_list_status = pymem_list_new(teardown_rt, &o);
    /* Dropping the child here is allowed (decref). */
    pymem_object *child = *(pymem_object **)payload;
    if (child != NULL)
        teardown_decref_status = pymem_decref(teardown_rt, child);
}

static void test_teardown_reentry(void) {
    CHECK_OK(NULL, pymem_runtime_new(NULL, &teardown_rt));
    pymem_type_spec spec;
    pymem_type_spec_init(&spec);
    spec.name = "Resource";
    spec.payload_size = sizeof(pymem_object *);
    spec.clear = teardown_clear;
    spec.dealloc = teardown_dealloc;
    pymem_type *t = NULL;
    CHECK_OK(teardown_rt, pymem_type_new(teardown_rt, &spec, &t));
    pymem_object *inst = NULL, *child = NULL;
    CHECK_OK(teardown_rt, pymem_instance_new(teardown_rt, t, &inst));
    CHECK_OK(teardown_rt, pymem_float_new(teardown_rt, 4.5, &child));
    void *payload = NULL;
    CHECK_OK(teardown_rt, pymem_instance_payload(teardown_rt, inst, &payload));
    *(pymem_object **)payload = child; /* takes our reference */
    /* inst is left alive: pymem_runtime_free deals with it. */
    teardown_free_status = teardown_list_status = teardown_decref_status = (pymem_status)-1;
    CHECK_OK(NULL, pymem_runtime_free(teardown_rt));
    CHECK(teardown_deallocs == 1 && teardown_clears == 0);
    CHECK_STATUS(NULL, teardown_free_status, PYMEM_ERR_BUSY);
    CHECK_STATUS(NULL, teardown_list_status, PYMEM_ERR_BUSY);
    CHECK_STATUS(NULL, teardown_decref_status, PYMEM_OK);
}

/* ------------------------------------------------------------------------ */
/* Another thread: every object call is BUSY. */

static void *other_thread(void *arg) {
    (void)arg;
    pymem_object *o = NULL;
    CHECK_STATUS(NULL, pymem_int_new(rt, 100000, &o), PYMEM_ERR_BUSY);
    CHECK_MESSAGE(rt, "belongs to another thread"); /* this thread's slot */
    CHECK_STATUS(NULL, pymem_incref(rt, g_int), PYMEM_ERR_BUSY);
    CHECK_STATUS(NULL, pymem_decref(rt, g_int), PYMEM_ERR_BUSY);
    CHECK_STATUS(NULL, pymem_refcount(rt, g_int, &(ptrdiff_t){0}), PYMEM_ERR_BUSY);
    CHECK_STATUS(NULL, pymem_list_append(rt, g_list, g_int), PYMEM_ERR_BUSY);
    CHECK_STATUS(NULL, pymem_instance_payload(rt, g_inst, &(void *){NULL}), PYMEM_ERR_BUSY);
    CHECK_STATUS(NULL, pymem_type_name(rt, g_int, &(const char *){NULL}), PYMEM_ERR_BUSY);
    CHECK_STATUS(NULL, pymem_call(rt, g_func, NULL, 0, &o), PYMEM_ERR_BUSY);
    CHECK_STATUS(NULL, pymem_clear_free_lists(rt), PYMEM_ERR_BUSY);
    CHECK(o == NULL);
    return NULL;
}

static void test_other_thread(void) {
    const pymem_alloc_stats before = stats_of(rt);
    pthread_t t;
    CHECK(pthread_create(&t, NULL, other_thread, NULL) == 0);
    CHECK(pthread_join(t, NULL) == 0);
    CHECK_STATS_EQ(stats_of(rt), before);
    check_good_counts();
}

/* API.md: "pymem_last_error(rt) is the message of the last failed call on
 * that runtime". Inside a native function the calling thread owns the
 * runtime, so pymem_last_status(rt)/pymem_last_error(rt) read the runtime's
 * slot: a refused pymem_runtime_free(rt) there must show in it. Checked
 * last so that a failure here does not hide the checks above. */
static void check_last_error_inside_native_function(void) {
    CHECKF(native_free_last_status == PYMEM_ERR_BUSY &&
               strstr(native_free_message, "may not be called from inside a host callback") != NULL,
           "inside a native function, pymem_runtime_free(rt) returned %s, but then "
           "pymem_last_status(rt) was %s and pymem_last_error(rt) \"%s\" (a stale failure; "
           "the refusal went to the thread's slot only: %s \"%s\")",
           pymem_status_name(native_free_status), pymem_status_name(native_free_last_status),
           native_free_message, pymem_status_name(native_free_thread_status),
           native_free_thread_message);
}

int main(void) {
    CHECK_OK(NULL, pymem_runtime_new(NULL, &rt));
    pymem_object *none = NULL;
    CHECK_OK(rt, pymem_none(rt, &none));
    make_good_objects();
    CHECK_OK(rt, pymem_clear_free_lists(rt));
    const uint64_t baseline = stats_of(rt).blocks_in_use;

    test_null_runtime();
    test_null_arguments();
    test_invalid_pointers();
    test_wrong_values();
    test_native_functions();
    test_callback_reentry();
    test_teardown_reentry();
    test_other_thread();

    CHECK_OK(rt, pymem_clear_free_lists(rt));
    CHECK_BLOCKS(rt, baseline);
    free_good_objects();
    CHECK_OK(rt, pymem_runtime_free(rt));
    check_last_error_inside_native_function();
    printf("objects_bad_input: OK\n");
    return 0;
}
