/*
 * objects_basic.c: every object entry point of pymem.h, used as a C host
 * uses it, with Python's answers as the expected values.
 *
 *   singletons   None/True/False immortal: PYMEM_IMMORTAL_REFCNT, incref and
 *                decref change nothing
 *   int          the small-int cache (-5..256 by default, a config value),
 *                its edges, the int64 range
 *   float        values (signed zero, inf, NaN), the float free list: a
 *                freed float is the next one handed out (same id)
 *   str          UTF-8, embedded NUL, the immortal empty and 1-char strings,
 *                str_value's borrowed NUL-terminated bytes, interning (same
 *                object; freed with its last outside reference)
 *   tuple        new/get/len, the immortal empty tuple, INDEX past the end
 *   list         append, insert (front, middle, past the end), get, set,
 *                pop, len; INDEX errors
 *   dict         set/get/del/len/next in insertion order across deletes and
 *                re-inserts; KEY errors; 1, 1.0 and True are one key;
 *                unhashable keys are PYMEM_ERR_TYPE
 *   hash, equal, repr   Python's values (from CPython 3.11)
 *   attributes   setattr/getattr/delattr on instances, modules, functions
 *   host types   type_new, instance_new, is_instance, instance_payload
 *                (16-byte aligned, zeroed), type_name
 *   functions    function_new + pymem_call: arguments, result, an error
 *                status passed on, a NULL result is None
 *   free lists   pymem_clear_free_lists and the free-list lines of
 *                pymem_debug_malloc_stats
 * Every section ends with the allocator's blocks_in_use back where it
 * started (after pymem_clear_free_lists where objects went to free lists).
 */
#include <inttypes.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pymem.h"
#include "check.h"

static pymem_runtime *rt;

/* ------------------------------------------------------------------------ */
/* helpers */

static intptr_t count(pymem_object *o) { return refcount_of(rt, o); }

static pymem_object *new_int(int64_t v) {
    pymem_object *o = NULL;
    CHECK_OK(rt, pymem_int_new(rt, v, &o));
    return o;
}

static pymem_object *new_float(double v) {
    pymem_object *o = NULL;
    CHECK_OK(rt, pymem_float_new(rt, v, &o));
    return o;
}

static pymem_object *new_str(const char *s) {
    pymem_object *o = NULL;
    CHECK_OK(rt, pymem_str_new(rt, s, strlen(s), &o));
    return o;
}

static pymem_object *new_list(void) {
    pymem_object *o = NULL;
    CHECK_OK(rt, pymem_list_new(rt, &o));
    return o;
}

static pymem_object *new_dict(void) {
    pymem_object *o = NULL;
    CHECK_OK(rt, pymem_dict_new(rt, &o));
    return o;
}

static pymem_object *new_tuple2(pymem_object *a, pymem_object *b) {
    pymem_object *items[2] = {a, b};
    pymem_object *o = NULL;
    CHECK_OK(rt, pymem_tuple_new(rt, 2, items, &o));
    return o;
}

static void drop(pymem_object *o) { CHECK_OK(rt, pymem_decref(rt, o)); }

/* (a, b), dropping the caller's references to a and b. */
static pymem_object *new_tuple2_steal(pymem_object *a, pymem_object *b) {
    pymem_object *t = new_tuple2(a, b);
    drop(a);
    drop(b);
    return t;
}

/* Appends `item` to `list` and drops the caller's reference. */
static void append_steal(pymem_object *list, pymem_object *item) {
    CHECK_OK(rt, pymem_list_append(rt, list, item));
    drop(item);
}

/* d[key] = value, dropping the caller's references to both. */
static void dict_set_steal(pymem_object *d, pymem_object *key, pymem_object *value) {
    CHECK_OK(rt, pymem_dict_set(rt, d, key, value));
    drop(key);
    drop(value);
}

#define CHECK_REPR(o, expected)                                                \
    do {                                                                       \
        char *check_r_ = NULL;                                                 \
        CHECK_OK(rt, pymem_repr(rt, (o), &check_r_));                          \
        CHECK_STR_EQ(check_r_, (expected));                                    \
        pymem_string_free(check_r_);                                           \
    } while (0)

#define CHECK_TYPE_NAME(o, expected)                                           \
    do {                                                                       \
        const char *check_tn_ = NULL;                                          \
        CHECK_OK(rt, pymem_type_name(rt, (o), &check_tn_));                    \
        CHECK_STR_EQ(check_tn_, (expected));                                   \
    } while (0)

static int64_t hash_of(pymem_object *o) {
    int64_t h = 0;
    CHECK_OK(rt, pymem_hash(rt, o, &h));
    return h;
}

static int equal(pymem_object *a, pymem_object *b) {
    int eq = -1;
    CHECK_OK(rt, pymem_equal(rt, a, b, &eq));
    CHECK(eq == 0 || eq == 1);
    return eq;
}

static uint64_t blocks(void) { return stats_of(rt).blocks_in_use; }

/* ------------------------------------------------------------------------ */
/* host types used below */

typedef struct {
    int64_t x, y;
    double weight;
} point_payload;

static int point_deallocs;

static void point_dealloc(pymem_object *self, void *payload, void *userdata) {
    (void)self;
    (void)payload;
    CHECK(userdata == &point_deallocs);
    point_deallocs++;
}

static pymem_type *point_type, *other_type;

static void define_types(void) {
    pymem_type_spec spec;
    pymem_type_spec_init(&spec);
    CHECK(spec.name == NULL && spec.payload_size == 0 && spec.traverse == NULL &&
          spec.clear == NULL && spec.finalize == NULL && spec.dealloc == NULL &&
          spec.userdata == NULL);
    spec.name = "Point";
    spec.payload_size = sizeof(point_payload);
    spec.dealloc = point_dealloc;
    spec.userdata = &point_deallocs;
    CHECK_OK(rt, pymem_type_new(rt, &spec, &point_type));
    CHECK(point_type != NULL);

    pymem_type_spec other;
    pymem_type_spec_init(&other);
    char name[16];
    strcpy(name, "Other");
    other.name = name; /* copied: changing our buffer later changes nothing */
    CHECK_OK(rt, pymem_type_new(rt, &other, &other_type));
    strcpy(name, "Changed");
    CHECK(other_type != point_type);
}

/* A host type keeps the names of its instances' attributes (interned str)
 * for as long as the runtime lives, as CPython's split keys do. Setting
 * every name used below once, before the baseline, makes the later counts
 * exact. */
static const char *const point_attr_names[] = {"label", "color", "size", "owner", "x", "y"};

static void warm_up_attribute_names(void) {
    pymem_object *p = NULL, *o = NULL, *v = new_int(1);
    CHECK_OK(rt, pymem_instance_new(rt, point_type, &p));
    CHECK_OK(rt, pymem_instance_new(rt, other_type, &o));
    char name[16];
    for (size_t i = 0; i < sizeof point_attr_names / sizeof point_attr_names[0]; i++)
        CHECK_OK(rt, pymem_setattr(rt, p, point_attr_names[i], v));
    for (int i = 0; i < 40; i++) {
        snprintf(name, sizeof name, "attr%d", i);
        CHECK_OK(rt, pymem_setattr(rt, o, name, v));
    }
    drop(p);
    drop(o);
    drop(v);
    point_deallocs = 0;
}

/* ------------------------------------------------------------------------ */

static void test_singletons(void) {
    const uint64_t start = blocks();
    pymem_object *none = NULL, *none2 = NULL, *t = NULL, *t2 = NULL, *f = NULL;
    CHECK_OK(rt, pymem_none(rt, &none));
    CHECK_OK(rt, pymem_none(rt, &none2));
    CHECK_OK(rt, pymem_bool(rt, 1, &t));
    CHECK_OK(rt, pymem_bool(rt, 42, &t2)); /* any non-zero is True */
    CHECK_OK(rt, pymem_bool(rt, 0, &f));
    CHECK(pymem_is(none, none2) && pymem_is(t, t2) && !pymem_is(t, f) && !pymem_is(t, none));
    pymem_object *all[] = {none, t, f};
    for (size_t i = 0; i < 3; i++) {
        CHECK_EQ_U64(count(all[i]), PYMEM_IMMORTAL_REFCNT);
        for (int k = 0; k < 5; k++)
            CHECK_OK(rt, pymem_incref(rt, all[i]));
        CHECK_EQ_U64(count(all[i]), PYMEM_IMMORTAL_REFCNT);
        for (int k = 0; k < 100; k++) /* far more decrefs than increfs */
            CHECK_OK(rt, pymem_decref(rt, all[i]));
        CHECK_EQ_U64(count(all[i]), PYMEM_IMMORTAL_REFCNT);
    }
    CHECK_TYPE_NAME(none, "NoneType");
    CHECK_TYPE_NAME(t, "bool");
    CHECK_REPR(none, "None");
    CHECK_REPR(t, "True");
    CHECK_REPR(f, "False");
    int64_t v = -1;
    CHECK_OK(rt, pymem_int_value(rt, t, &v)); /* bool is an int */
    CHECK(v == 1);
    CHECK_OK(rt, pymem_int_value(rt, f, &v));
    CHECK(v == 0);
    CHECK(hash_of(t) == 1 && hash_of(f) == 0);
    CHECK_BLOCKS(rt, start); /* singletons allocate nothing */
}

static pymem_object *new_int_from(int k) { return new_int(1000 + k); }
static pymem_object *new_float_from(int k) { return new_float(k + 0.5); }

/* 150 objects made by `make` die: 100 stay on their free list (still
 * blocks, and the stats line says so), the others go back; clearing the
 * free lists gives those back too. */
static void check_free_list_bound(pymem_object *(*make)(int), const char *stats_line) {
    const uint64_t start = blocks();
    pymem_object *many[150];
    for (int k = 0; k < 150; k++)
        many[k] = make(k);
    CHECK_EQ_U64(blocks(), start + 150);
    for (int k = 0; k < 150; k++)
        drop(many[k]);
    CHECK_EQ_U64(blocks(), start + 100);
    char *report = NULL;
    CHECK_OK(rt, pymem_debug_malloc_stats(rt, &report));
    CHECK_CONTAINS(report, stats_line);
    pymem_string_free(report);
    CHECK_OK(rt, pymem_clear_free_lists(rt));
    CHECK_BLOCKS(rt, start);
}

static void test_ints(void) {
    const uint64_t start = blocks();
    /* The cache: -5..256, the same immortal object every time. */
    static const int64_t cached[] = {-5, -1, 0, 1, 7, 100, 255, 256};
    for (size_t i = 0; i < sizeof cached / sizeof cached[0]; i++) {
        pymem_object *a = new_int(cached[i]), *b = new_int(cached[i]);
        CHECK(pymem_is(a, b) && pymem_id(a) == pymem_id(b));
        CHECK_EQ_U64(count(a), PYMEM_IMMORTAL_REFCNT);
        int64_t v = 0;
        CHECK_OK(rt, pymem_int_value(rt, a, &v));
        CHECK(v == cached[i]);
        drop(a);
        drop(b);
    }
    CHECK_BLOCKS(rt, start);
    /* Just outside: fresh objects, count 1 each. */
    static const int64_t fresh[] = {-6, 257, 1000, -1000000, INT64_MAX, INT64_MIN, INT64_MIN + 1};
    for (size_t i = 0; i < sizeof fresh / sizeof fresh[0]; i++) {
        pymem_object *a = new_int(fresh[i]), *b = new_int(fresh[i]);
        CHECK(!pymem_is(a, b));
        CHECK(count(a) == 1 && count(b) == 1);
        CHECK_EQ_U64(blocks(), start + 2);
        int64_t v = 0;
        CHECK_OK(rt, pymem_int_value(rt, a, &v));
        CHECK(v == fresh[i]);
        CHECK(equal(a, b));
        CHECK(hash_of(a) == hash_of(b));
        CHECK_OK(rt, pymem_incref(rt, a));
        CHECK(count(a) == 2);
        drop(a);
        drop(a);
        drop(b);
        /* Dead, on the int free list (CPython 3.14's): still blocks, taken
         * again by the next two ints. */
        CHECK_EQ_U64(blocks(), start + 2);
    }
    pymem_object *i = new_int(-123456789);
    CHECK_TYPE_NAME(i, "int");
    CHECK_REPR(i, "-123456789");
    const size_t id = pymem_id(i);
    drop(i);
    i = new_int(INT64_MIN);
    CHECK_EQ_U64(pymem_id(i), id); /* the same memory, reused */
    CHECK_REPR(i, "-9223372036854775808");
    drop(i);
    CHECK_OK(rt, pymem_clear_free_lists(rt));
    CHECK_BLOCKS(rt, start);

    /* Bounded: at most int_free_list (100) wait; the rest are freed. */
    check_free_list_bound(new_int_from, "100 free PyLongObjects * 24 bytes each =");

    /* The range is a config value (CPython 3.15 caches up to 1024). */
    pymem_config cfg;
    pymem_config_init(&cfg);
    CHECK(cfg.small_int_min == -5 && cfg.small_int_max == 256);
    cfg.small_int_max = 1024;
    pymem_runtime *big = NULL;
    CHECK_OK(NULL, pymem_runtime_new(&cfg, &big));
    pymem_object *a = NULL, *b = NULL;
    CHECK_OK(big, pymem_int_new(big, 1000, &a));
    CHECK_OK(big, pymem_int_new(big, 1000, &b));
    CHECK(pymem_is(a, b));
    CHECK_OK(big, pymem_decref(big, a));
    CHECK_OK(big, pymem_decref(big, b));
    CHECK_OK(big, pymem_int_new(big, 1025, &a));
    CHECK_OK(big, pymem_int_new(big, 1025, &b));
    CHECK(!pymem_is(a, b));
    CHECK_OK(big, pymem_decref(big, a));
    CHECK_OK(big, pymem_decref(big, b));
    CHECK_OK(big, pymem_runtime_free(big));
}

static void test_floats(void) {
    CHECK_OK(rt, pymem_clear_free_lists(rt));
    const uint64_t start = blocks();
    static const double values[] = {0.0, 1.5, -2.25, 1e308, 5e-324, 3.141592653589793};
    for (size_t i = 0; i < sizeof values / sizeof values[0]; i++) {
        pymem_object *f = new_float(values[i]);
        double v = 0;
        CHECK_OK(rt, pymem_float_value(rt, f, &v));
        CHECK(v == values[i]);
        CHECK(count(f) == 1);
        drop(f);
    }
    pymem_object *nz = new_float(-0.0);
    double v = 0;
    CHECK_OK(rt, pymem_float_value(rt, nz, &v));
    CHECK(v == 0.0 && signbit(v));
    CHECK_REPR(nz, "-0.0");
    drop(nz);
    pymem_object *inf = new_float(INFINITY), *nan = new_float(NAN);
    CHECK_OK(rt, pymem_float_value(rt, inf, &v));
    CHECK(isinf(v) && v > 0);
    CHECK_OK(rt, pymem_float_value(rt, nan, &v));
    CHECK(isnan(v));
    CHECK_REPR(inf, "inf");
    CHECK_REPR(nan, "nan");
    CHECK_TYPE_NAME(inf, "float");
    drop(inf);
    drop(nan);

    /* The free list: a freed float keeps its block and is the next one
       handed out (CPython's layer 3). */
    CHECK_OK(rt, pymem_clear_free_lists(rt));
    CHECK_BLOCKS(rt, start);
    pymem_object *f = new_float(1.25);
    const size_t id = pymem_id(f);
    CHECK_EQ_U64(blocks(), start + 1);
    drop(f);
    CHECK_EQ_U64(blocks(), start + 1); /* on the free list, still a block */
    pymem_object *g = new_float(9.75);
    CHECK_EQ_U64(pymem_id(g), id); /* the same memory, reused */
    CHECK_OK(rt, pymem_float_value(rt, g, &v));
    CHECK(v == 9.75);
    CHECK(count(g) == 1);
    drop(g);
    CHECK_OK(rt, pymem_clear_free_lists(rt));
    CHECK_BLOCKS(rt, start);

    /* Bounded: at most float_free_list (100) wait; the rest are freed. */
    check_free_list_bound(new_float_from, "100 free PyFloatObjects * 24 bytes each =");
}

static void test_strings(void) {
    const uint64_t start = blocks();
    /* UTF-8 in, the same bytes out. */
    const char *text = "h\xc3\xa9llo \xe2\x82\xac \xf0\x9f\x90\x8d"; /* "héllo € 🐍" */
    pymem_object *s = new_str(text);
    const char *bytes = NULL;
    size_t len = 0;
    CHECK_OK(rt, pymem_str_value(rt, s, &bytes, &len));
    CHECK_EQ_U64(len, strlen(text));
    CHECK(memcmp(bytes, text, len) == 0 && bytes[len] == '\0');
    CHECK_OK(rt, pymem_str_value(rt, s, &bytes, NULL)); /* len may be NULL */
    CHECK_STR_EQ(bytes, text);
    CHECK_TYPE_NAME(s, "str");
    CHECK(count(s) == 1);
    CHECK_EQ_U64(blocks(), start + 1);
    drop(s);
    CHECK_BLOCKS(rt, start); /* str has no free list */

    /* Embedded NUL: the length says where the string ends. */
    pymem_object *nul = NULL;
    CHECK_OK(rt, pymem_str_new(rt, "a\0b\0", 4, &nul));
    CHECK_OK(rt, pymem_str_value(rt, nul, &bytes, &len));
    CHECK_EQ_U64(len, 4);
    CHECK(memcmp(bytes, "a\0b\0", 5) == 0); /* and a terminator after it */
    CHECK_REPR(nul, "'a\\x00b\\x00'");
    pymem_object *ab = new_str("ab");
    CHECK(!equal(nul, ab));
    drop(ab);
    drop(nul);

    /* The empty string and one-character ASCII strings are immortal
       singletons. */
    pymem_object *e1 = NULL, *e2 = NULL, *e3 = NULL;
    CHECK_OK(rt, pymem_str_new(rt, NULL, 0, &e1));
    CHECK_OK(rt, pymem_str_new(rt, "ignored", 0, &e2));
    CHECK_OK(rt, pymem_str_intern(rt, "", 0, &e3));
    CHECK(pymem_is(e1, e2) && pymem_is(e1, e3));
    CHECK_EQ_U64(count(e1), PYMEM_IMMORTAL_REFCNT);
    CHECK_OK(rt, pymem_str_value(rt, e1, &bytes, &len));
    CHECK(len == 0 && bytes != NULL && bytes[0] == '\0');
    CHECK_REPR(e1, "''");
    drop(e1);
    drop(e2);
    drop(e3);
    pymem_object *a1 = new_str("a"), *a2 = new_str("a"), *b1 = new_str("b");
    CHECK(pymem_is(a1, a2) && !pymem_is(a1, b1));
    CHECK_EQ_U64(count(a1), PYMEM_IMMORTAL_REFCNT);
    CHECK_OK(rt, pymem_str_value(rt, a1, &bytes, &len));
    CHECK(len == 1 && bytes[0] == 'a' && bytes[1] == '\0');
    drop(a1);
    drop(a2);
    drop(b1);
    CHECK_BLOCKS(rt, start);

    /* Two longer equal strings are two objects, equal with equal hashes. */
    pymem_object *x = new_str("spam and eggs"), *y = new_str("spam and eggs");
    CHECK(!pymem_is(x, y) && equal(x, y) && hash_of(x) == hash_of(y));
    CHECK(hash_of(x) == hash_of(x)); /* cached, stable */

    /* Interning: the same object while it lives; not x or y. */
    pymem_object *i1 = NULL, *i2 = NULL;
    CHECK_OK(rt, pymem_str_intern(rt, "spam and eggs", 13, &i1));
    CHECK_OK(rt, pymem_str_intern(rt, "spam and eggs", 13, &i2));
    CHECK(pymem_is(i1, i2) && !pymem_is(i1, x) && !pymem_is(i1, y));
    CHECK(equal(i1, x) && hash_of(i1) == hash_of(x));
    CHECK(count(i1) == 2); /* our two references; the table's is not counted */
    CHECK_EQ_U64(blocks(), start + 3);
    drop(x);
    drop(y);
    drop(i2);
    CHECK(count(i1) == 1);
    CHECK_EQ_U64(blocks(), start + 1);
    drop(i1); /* the last outside reference: the interned string is freed */
    CHECK_BLOCKS(rt, start);
    /* ... and interning again makes a new one, count 1. */
    CHECK_OK(rt, pymem_str_intern(rt, "spam and eggs", 13, &i1));
    CHECK(count(i1) == 1);
    CHECK_EQ_U64(blocks(), start + 1);
    drop(i1);
    CHECK_BLOCKS(rt, start);
}

static void test_tuples(void) {
    CHECK_OK(rt, pymem_clear_free_lists(rt));
    const uint64_t start = blocks();
    pymem_object *e1 = NULL, *e2 = NULL;
    CHECK_OK(rt, pymem_tuple_new(rt, 0, NULL, &e1));
    CHECK_OK(rt, pymem_tuple_new(rt, 0, NULL, &e2));
    CHECK(pymem_is(e1, e2));
    CHECK_EQ_U64(count(e1), PYMEM_IMMORTAL_REFCNT);
    size_t n = 99;
    CHECK_OK(rt, pymem_tuple_len(rt, e1, &n));
    CHECK(n == 0);
    CHECK_REPR(e1, "()");
    CHECK_TYPE_NAME(e1, "tuple");
    pymem_object *item = NULL;
    CHECK_FAILS(rt, pymem_tuple_get(rt, e1, 0, &item), PYMEM_ERR_INDEX, "out of range");
    CHECK(item == NULL);
    drop(e1);
    drop(e2);
    CHECK_BLOCKS(rt, start);

    pymem_object *a = new_str("first"), *b = new_float(2.0), *c = new_int(3);
    pymem_object *items[3] = {a, b, c};
    pymem_object *t = NULL;
    CHECK_OK(rt, pymem_tuple_new(rt, 3, items, &t));
    CHECK(count(t) == 1 && count(a) == 2 && count(b) == 2);
    CHECK_OK(rt, pymem_tuple_len(rt, t, &n));
    CHECK(n == 3);
    for (size_t i = 0; i < 3; i++) {
        CHECK_OK(rt, pymem_tuple_get(rt, t, i, &item));
        CHECK(pymem_is(item, items[i]));
        drop(item);
    }
    CHECK_OK(rt, pymem_tuple_get(rt, t, 0, &item)); /* a new reference */
    CHECK(count(a) == 3);
    drop(item);
    CHECK_FAILS(rt, pymem_tuple_get(rt, t, 3, &item), PYMEM_ERR_INDEX, "tuple index 3 out of range");
    CHECK_FAILS(rt, pymem_tuple_get(rt, t, SIZE_MAX, &item), PYMEM_ERR_INDEX, "out of range");
    CHECK_REPR(t, "('first', 2.0, 3)");
    drop(a);
    drop(b);
    drop(c);
    CHECK(count(a) == 1);
    drop(t); /* frees a and b with it (c is a small int) */

    pymem_object *one = NULL, *seven = new_int(7);
    CHECK_OK(rt, pymem_tuple_new(rt, 1, &seven, &one));
    CHECK_REPR(one, "(7,)");
    /* A freed tuple waits on the free list of its length. */
    const size_t id = pymem_id(one);
    drop(one);
    CHECK_OK(rt, pymem_tuple_new(rt, 1, &seven, &one));
    CHECK_EQ_U64(pymem_id(one), id);
    drop(one);
    CHECK_OK(rt, pymem_clear_free_lists(rt));
    CHECK_BLOCKS(rt, start);
}

static void test_lists(void) {
    CHECK_OK(rt, pymem_clear_free_lists(rt));
    const uint64_t start = blocks();
    pymem_object *l = new_list();
    size_t n = 99;
    CHECK_OK(rt, pymem_list_len(rt, l, &n));
    CHECK(n == 0);
    CHECK_REPR(l, "[]");
    CHECK_TYPE_NAME(l, "list");
    pymem_object *item = NULL;
    CHECK_FAILS(rt, pymem_list_get(rt, l, 0, &item), PYMEM_ERR_INDEX, "list index 0 out of range");
    CHECK_FAILS(rt, pymem_list_pop(rt, l, 0, &item), PYMEM_ERR_INDEX, "out of range");
    CHECK_FAILS(rt, pymem_list_set(rt, l, 0, l), PYMEM_ERR_INDEX, "out of range");
    CHECK(item == NULL);

    pymem_object *s = new_str("item");
    CHECK_OK(rt, pymem_list_append(rt, l, s)); /* ['item'] */
    CHECK(count(s) == 2);
    append_steal(l, new_int(1));           /* ['item', 1] */
    CHECK_OK(rt, pymem_list_insert(rt, l, 0, s)); /* ['item', 'item', 1] */
    CHECK(count(s) == 3);
    pymem_object *mid = new_int(1000);
    CHECK_OK(rt, pymem_list_insert(rt, l, 1, mid)); /* ['item', 1000, 'item', 1] */
    drop(mid);
    pymem_object *end = new_int(-7);
    CHECK_OK(rt, pymem_list_insert(rt, l, 4, end));        /* at len: appends */
    CHECK_OK(rt, pymem_list_insert(rt, l, 1000, end));     /* past the end: appends */
    CHECK_OK(rt, pymem_list_insert(rt, l, SIZE_MAX, end)); /* far past: appends */
    drop(end);
    CHECK_REPR(l, "['item', 1000, 'item', 1, -7, -7, -7]");
    CHECK_OK(rt, pymem_list_len(rt, l, &n));
    CHECK(n == 7);

    CHECK_OK(rt, pymem_list_get(rt, l, 1, &item));
    int64_t v = 0;
    CHECK_OK(rt, pymem_int_value(rt, item, &v));
    CHECK(v == 1000 && count(item) == 2); /* the list's and ours */
    drop(item);
    CHECK_FAILS(rt, pymem_list_get(rt, l, 7, &item), PYMEM_ERR_INDEX, "list index 7 out of range");

    /* set: takes the new item, drops the old one. */
    pymem_object *f = new_float(0.5);
    CHECK_OK(rt, pymem_list_set(rt, l, 0, f));
    CHECK(count(f) == 2 && count(s) == 2);
    CHECK_OK(rt, pymem_list_set(rt, l, 0, f)); /* the same item again */
    CHECK(count(f) == 2);
    CHECK_FAILS(rt, pymem_list_set(rt, l, 7, f), PYMEM_ERR_INDEX, "out of range");
    CHECK(count(f) == 2); /* a failed set takes nothing */
    CHECK_REPR(l, "[0.5, 1000, 'item', 1, -7, -7, -7]");

    /* pop: front, middle, last; the caller gets the list's reference. */
    CHECK_OK(rt, pymem_list_pop(rt, l, 0, &item));
    CHECK(pymem_is(item, f) && count(f) == 2);
    drop(item);
    CHECK_OK(rt, pymem_list_pop(rt, l, 1, &item));
    CHECK(pymem_is(item, s) && count(s) == 2);
    drop(item);
    CHECK_OK(rt, pymem_list_len(rt, l, &n));
    CHECK_OK(rt, pymem_list_pop(rt, l, n - 1, &item));
    drop(item);
    CHECK_FAILS(rt, pymem_list_pop(rt, l, 4, &item), PYMEM_ERR_INDEX, "out of range");
    CHECK_REPR(l, "[1000, 1, -7, -7]");
    CHECK_OK(rt, pymem_list_len(rt, l, &n));
    CHECK(n == 4);
    CHECK(count(s) == 1); /* ours alone again */
    drop(f);
    drop(s);

    /* Growth: many appends, then read back. */
    for (int64_t i = 0; i < 1000; i++)
        append_steal(l, new_int(i * 1000));
    CHECK_OK(rt, pymem_list_len(rt, l, &n));
    CHECK(n == 1004);
    CHECK_OK(rt, pymem_list_get(rt, l, 1003, &item));
    CHECK_OK(rt, pymem_int_value(rt, item, &v));
    CHECK(v == 999000);
    drop(item);
    drop(l);
    CHECK_OK(rt, pymem_clear_free_lists(rt));
    CHECK_BLOCKS(rt, start);
}

/* The keys of d, in iteration order, as the repr of a list. */
static void check_dict_order(pymem_object *d, const char *expected_keys) {
    pymem_object *keys = new_list();
    size_t pos = 0, n = 0, len = 0;
    pymem_object *k = NULL, *v = NULL;
    while (pymem_dict_next(rt, d, &pos, &k, &v) == PYMEM_OK) {
        CHECK(k != NULL && v != NULL);
        append_steal(keys, k);
        drop(v);
        n++;
    }
    CHECK_STATUS(rt, pymem_last_status(rt), PYMEM_ERR_INDEX);
    CHECK_OK(rt, pymem_dict_len(rt, d, &len));
    CHECK_EQ_U64(n, len);
    CHECK_REPR(keys, expected_keys);
    drop(keys);
}

static void test_dicts(void) {
    CHECK_OK(rt, pymem_clear_free_lists(rt));
    const uint64_t start = blocks();
    pymem_object *d = new_dict();
    size_t n = 99;
    CHECK_OK(rt, pymem_dict_len(rt, d, &n));
    CHECK(n == 0);
    CHECK_REPR(d, "{}");
    CHECK_TYPE_NAME(d, "dict");
    size_t pos = 0;
    pymem_object *k = NULL, *v = NULL;
    CHECK_FAILS(rt, pymem_dict_next(rt, d, &pos, &k, &v), PYMEM_ERR_INDEX, "no more items");
    CHECK(pos == 0 && k == NULL && v == NULL);

    const char *names[] = {"alpha", "beta", "gamma", "delta"};
    for (int i = 0; i < 4; i++)
        dict_set_steal(d, new_str(names[i]), new_int(i));
    check_dict_order(d, "['alpha', 'beta', 'gamma', 'delta']");
    CHECK_REPR(d, "{'alpha': 0, 'beta': 1, 'gamma': 2, 'delta': 3}");

    /* get: a new reference; KEY when missing. */
    pymem_object *key = new_str("gamma");
    CHECK_OK(rt, pymem_dict_get(rt, d, key, &v));
    int64_t iv = -1;
    CHECK_OK(rt, pymem_int_value(rt, v, &iv));
    CHECK(iv == 2);
    drop(v);
    drop(key);
    key = new_str("missing");
    v = NULL;
    CHECK_FAILS(rt, pymem_dict_get(rt, d, key, &v), PYMEM_ERR_KEY, "'missing'");
    CHECK(v == NULL);
    CHECK_FAILS(rt, pymem_dict_del(rt, d, key), PYMEM_ERR_KEY, "key not found");
    drop(key);

    /* del, then re-insert: the re-inserted key goes last; updating a
       present key keeps its place. */
    key = new_str("beta");
    CHECK_OK(rt, pymem_dict_del(rt, d, key));
    CHECK_FAILS(rt, pymem_dict_del(rt, d, key), PYMEM_ERR_KEY, "beta");
    check_dict_order(d, "['alpha', 'gamma', 'delta']");
    dict_set_steal(d, key, new_int(10));
    dict_set_steal(d, new_str("alpha"), new_int(20));
    check_dict_order(d, "['alpha', 'gamma', 'delta', 'beta']");
    CHECK_REPR(d, "{'alpha': 20, 'gamma': 2, 'delta': 3, 'beta': 10}");

    /* dict_next with NULL out-pointers skips that half. */
    pos = 0;
    CHECK_OK(rt, pymem_dict_next(rt, d, &pos, NULL, &v));
    CHECK_OK(rt, pymem_int_value(rt, v, &iv));
    CHECK(iv == 20);
    drop(v);
    CHECK_OK(rt, pymem_dict_next(rt, d, &pos, &k, NULL));
    CHECK_REPR(k, "'gamma'");
    drop(k);
    CHECK_OK(rt, pymem_dict_next(rt, d, &pos, NULL, NULL));
    drop(d);

    /* 1, 1.0 and True are one key (equal, with equal hashes); the first
       key stays, the value is the last one set. */
    d = new_dict();
    pymem_object *one = new_int(1), *onef = new_float(1.0), *tru = NULL;
    CHECK_OK(rt, pymem_bool(rt, 1, &tru));
    dict_set_steal(d, new_int(1), new_str("int"));
    dict_set_steal(d, new_float(1.0), new_str("float"));
    CHECK_OK(rt, pymem_dict_len(rt, d, &n));
    CHECK(n == 1);
    CHECK_OK(rt, pymem_dict_get(rt, d, tru, &v));
    CHECK_REPR(v, "'float'");
    drop(v);
    CHECK_REPR(d, "{1: 'float'}");
    CHECK_OK(rt, pymem_dict_set(rt, d, tru, tru));
    CHECK_REPR(d, "{1: True}");
    CHECK_OK(rt, pymem_dict_del(rt, d, onef));
    CHECK_OK(rt, pymem_dict_len(rt, d, &n));
    CHECK(n == 0);
    CHECK_FAILS(rt, pymem_dict_get(rt, d, one, &v), PYMEM_ERR_KEY, "1");
    drop(onef);

    /* Unhashable keys: TYPE with Python's message; nothing stored. */
    pymem_object *l = new_list(), *dd = new_dict(), *val = new_str("value");
    CHECK_FAILS(rt, pymem_dict_set(rt, d, l, val), PYMEM_ERR_TYPE, "unhashable type: 'list'");
    CHECK_FAILS(rt, pymem_dict_set(rt, d, dd, val), PYMEM_ERR_TYPE, "unhashable type: 'dict'");
    CHECK_FAILS(rt, pymem_dict_get(rt, d, l, &v), PYMEM_ERR_TYPE, "unhashable type: 'list'");
    CHECK_FAILS(rt, pymem_dict_del(rt, d, l), PYMEM_ERR_TYPE, "unhashable type: 'list'");
    pymem_object *tl = new_tuple2(val, l); /* a tuple holding a list */
    CHECK_FAILS(rt, pymem_dict_set(rt, d, tl, val), PYMEM_ERR_TYPE, "unhashable type: 'list'");
    CHECK(count(val) == 2 && count(l) == 2); /* val: ours and the tuple's */
    CHECK_OK(rt, pymem_dict_len(rt, d, &n));
    CHECK(n == 0);
    /* Lists and dicts are fine as values. */
    pymem_object *t = new_tuple2(one, val);
    CHECK_OK(rt, pymem_dict_set(rt, d, t, l));
    CHECK_OK(rt, pymem_dict_set(rt, d, val, dd));
    CHECK_REPR(d, "{(1, 'value'): [], 'value': {}}");
    drop(t);
    drop(one);
    drop(tl);
    drop(l);
    drop(dd);
    drop(val);
    drop(d);

    /* Growth with churn: 2000 inserts, every third deleted, order kept. */
    d = new_dict();
    for (int64_t i = 0; i < 2000; i++)
        dict_set_steal(d, new_int(i * 7919), new_int(i));
    for (int64_t i = 0; i < 2000; i += 3) {
        pymem_object *key2 = new_int(i * 7919);
        CHECK_OK(rt, pymem_dict_del(rt, d, key2));
        drop(key2);
    }
    CHECK_OK(rt, pymem_dict_len(rt, d, &n));
    CHECK_EQ_U64(n, 2000 - 667);
    pos = 0;
    int64_t expect = 1;
    while (pymem_dict_next(rt, d, &pos, &k, &v) == PYMEM_OK) {
        CHECK_OK(rt, pymem_int_value(rt, v, &iv));
        CHECK(iv == expect);
        CHECK_OK(rt, pymem_int_value(rt, k, &iv));
        CHECK(iv == expect * 7919);
        drop(k);
        drop(v);
        expect += (expect % 3 == 1) ? 1 : 2; /* 1, 2, 4, 5, 7, 8, ... */
    }
    CHECK_EQ_U64(expect, 2000);
    drop(d);
    drop(tru);
    CHECK_OK(rt, pymem_clear_free_lists(rt));
    CHECK_BLOCKS(rt, start);
}

static void test_hash(void) {
    const uint64_t start = blocks();
    struct {
        pymem_object *o;
        int64_t expected; /* CPython 3.11's hash() */
    } cases[] = {
        {new_int(-1), -2},
        {new_int(-2), -2},
        {new_int(1), 1},
        {new_int(0), 0},
        {new_int(((int64_t)1 << 61) - 1), 0}, /* the modulus */
        {new_int(-((int64_t)1 << 61)), -2},
        {new_float(1.0), 1},
        {new_float(-1.0), -2},
        {new_float(0.5), 1152921504606846976LL},
        {new_float(1.5), 1152921504606846977LL},
        {new_float(INFINITY), 314159},
        {new_float(1e100), 1822893315824342674LL},
        {new_tuple2_steal(new_int(1), new_int(2)), -3550055125485641917LL},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int64_t h = hash_of(cases[i].o);
        CHECKF(h == cases[i].expected, "case %zu: hash %" PRId64 ", Python says %" PRId64, i, h,
               cases[i].expected);
        drop(cases[i].o);
    }
    pymem_object *empty = NULL, *one = new_int(1), *single = NULL;
    CHECK_OK(rt, pymem_tuple_new(rt, 0, NULL, &empty));
    CHECK(hash_of(empty) == 5740354900026072187LL);
    CHECK_OK(rt, pymem_tuple_new(rt, 1, &one, &single));
    CHECK(hash_of(single) == -6644214454873602895LL);
    pymem_object *inner = new_tuple2_steal(new_int(2), new_int(3));
    pymem_object *nested = new_tuple2(one, inner);
    CHECK(hash_of(nested) == 7267574591690527098LL); /* hash((1, (2, 3))) */
    drop(inner);
    drop(nested);
    drop(single);
    /* hash(1) == hash(1.0) == hash(True) */
    pymem_object *onef = new_float(1.0), *tru = NULL;
    CHECK_OK(rt, pymem_bool(rt, 1, &tru));
    CHECK(hash_of(one) == hash_of(onef) && hash_of(one) == hash_of(tru));
    drop(onef);
    /* Unhashable. */
    pymem_object *l = new_list(), *d = new_dict();
    int64_t h = 12345;
    CHECK_FAILS(rt, pymem_hash(rt, l, &h), PYMEM_ERR_TYPE, "unhashable type: 'list'");
    CHECK_FAILS(rt, pymem_hash(rt, d, &h), PYMEM_ERR_TYPE, "unhashable type: 'dict'");
    pymem_object *tl = new_tuple2(one, l);
    CHECK_FAILS(rt, pymem_hash(rt, tl, &h), PYMEM_ERR_TYPE, "unhashable type: 'list'");
    CHECK(h == 12345);
    drop(tl);
    drop(l);
    drop(d);
    CHECK_OK(rt, pymem_clear_free_lists(rt));
    CHECK_BLOCKS(rt, start);
}

static void test_equal(void) {
    const uint64_t start = blocks();
    pymem_object *one = new_int(1), *onef = new_float(1.0), *tru = NULL, *two = new_int(2);
    CHECK_OK(rt, pymem_bool(rt, 1, &tru));
    CHECK(equal(one, onef) && equal(onef, tru) && equal(one, tru));
    CHECK(!equal(one, two));
    pymem_object *s1 = new_str("1");
    CHECK(!equal(one, s1)); /* no conversions */
    drop(s1);

    pymem_object *l1 = new_list(), *l2 = new_list();
    CHECK_OK(rt, pymem_list_append(rt, l1, one));
    CHECK_OK(rt, pymem_list_append(rt, l1, two));
    append_steal(l2, new_int(1));
    append_steal(l2, new_float(2.0));
    CHECK(equal(l1, l2)); /* [1, 2] == [1, 2.0] */
    append_steal(l2, new_int(3));
    CHECK(!equal(l1, l2)); /* different lengths */

    pymem_object *t1 = NULL;
    CHECK_OK(rt, pymem_tuple_new(rt, 1, &one, &t1));
    pymem_object *lone = new_list();
    CHECK_OK(rt, pymem_list_append(rt, lone, one));
    CHECK(!equal(t1, lone)); /* (1,) != [1] */
    pymem_object *t2 = NULL;
    CHECK_OK(rt, pymem_tuple_new(rt, 1, &tru, &t2));
    CHECK(equal(t1, t2)); /* (1,) == (True,) */

    /* NaN is unequal to itself ... */
    pymem_object *nan = new_float(NAN), *nan2 = new_float(NAN);
    CHECK(!equal(nan, nan));
    CHECK(!equal(nan, nan2));
    /* ... but containers compare items by identity first, as CPython
       does: [x] == [x] for the same NaN object, not for another. */
    pymem_object *ln1 = new_list(), *ln2 = new_list(), *ln3 = new_list();
    CHECK_OK(rt, pymem_list_append(rt, ln1, nan));
    CHECK_OK(rt, pymem_list_append(rt, ln2, nan));
    CHECK_OK(rt, pymem_list_append(rt, ln3, nan2));
    CHECK(equal(ln1, ln2));
    CHECK(!equal(ln1, ln3));

    /* Dicts: equal items, any order; values compared. */
    pymem_object *d1 = new_dict(), *d2 = new_dict();
    dict_set_steal(d1, new_str("a"), new_int(1));
    dict_set_steal(d1, new_str("bb"), new_float(2.0));
    dict_set_steal(d2, new_str("bb"), new_int(2));
    dict_set_steal(d2, new_str("a"), new_float(1.0));
    CHECK(equal(d1, d2));
    dict_set_steal(d2, new_str("a"), new_int(5));
    CHECK(!equal(d1, d2));

    /* Nested. */
    pymem_object *n1 = new_list(), *n2 = new_list();
    append_steal(n1, new_tuple2(one, l1));
    append_steal(n2, new_tuple2(tru, l1));
    CHECK(equal(n1, n2));

    pymem_object *all[] = {one, onef, two, l1, l2, t1, lone, t2, nan, nan2, ln1, ln2, ln3, d1, d2, n1, n2};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) {
        CHECK(equal(all[i], all[i]) == (all[i] != nan && all[i] != nan2));
        drop(all[i]);
    }
    CHECK_OK(rt, pymem_clear_free_lists(rt));
    CHECK_BLOCKS(rt, start);
}

static void test_repr(void) {
    const uint64_t start = blocks();
    /* Floats: repr's shortest round-trip form, as Python prints it. */
    struct {
        double v;
        const char *text;
    } floats[] = {
        {1e16, "1e+16"},
        {1e15, "1000000000000000.0"},
        {1e-5, "1e-05"},
        {0.0001, "0.0001"},
        {0.1 + 0.2, "0.30000000000000004"},
        {2.5, "2.5"},
        {1.0, "1.0"},
        {-3.0, "-3.0"},
        {123456789012345678.0, "1.2345678901234568e+17"},
        {1.5e300, "1.5e+300"},
        {-INFINITY, "-inf"},
    };
    for (size_t i = 0; i < sizeof floats / sizeof floats[0]; i++) {
        pymem_object *f = new_float(floats[i].v);
        CHECK_REPR(f, floats[i].text);
        drop(f);
    }
    /* Strings: Python's choice of quotes and escapes. */
    struct {
        const char *s;
        const char *text;
    } strs[] = {
        {"it's", "\"it's\""},
        {"say \"hi\"", "'say \"hi\"'"},
        {"both ' and \"", "'both \\' and \"'"},
        {"a\nb\tc\\", "'a\\nb\\tc\\\\'"},
        {"\x7f\x01", "'\\x7f\\x01'"},
        {"\r", "'\\r'"},
        {"\xc3\xa9\xe2\x82\xac", "'\xc3\xa9\xe2\x82\xac'"}, /* 'é€': printable, kept */
    };
    for (size_t i = 0; i < sizeof strs / sizeof strs[0]; i++) {
        pymem_object *s = new_str(strs[i].s);
        CHECK_REPR(s, strs[i].text);
        drop(s);
    }

    /* A nested structure. */
    pymem_object *none = NULL, *tru = NULL, *fal = NULL;
    CHECK_OK(rt, pymem_none(rt, &none));
    CHECK_OK(rt, pymem_bool(rt, 1, &tru));
    CHECK_OK(rt, pymem_bool(rt, 0, &fal));
    pymem_object *top = new_list();
    append_steal(top, new_int(1));
    append_steal(top, new_float(2.5));
    append_steal(top, new_str("a"));
    append_steal(top, new_tuple2(none, tru));
    pymem_object *inner = new_list();
    CHECK_OK(rt, pymem_list_append(rt, inner, fal));
    pymem_object *d = new_dict();
    dict_set_steal(d, new_str("k"), inner);
    dict_set_steal(d, new_int(-3), new_tuple2_steal(new_str("x"), new_float(1e16)));
    append_steal(top, d);
    CHECK_REPR(top, "[1, 2.5, 'a', (None, True), {'k': [False], -3: ('x', 1e+16)}]");

    /* Recursive containers. */
    pymem_object *self = new_list();
    CHECK_OK(rt, pymem_list_append(rt, self, self));
    CHECK_REPR(self, "[[...]]");
    CHECK_OK(rt, pymem_list_append(rt, self, top));
    pymem_object *rd = new_dict();
    pymem_object *key = new_str("self");
    CHECK_OK(rt, pymem_dict_set(rt, rd, key, rd));
    CHECK_REPR(rd, "{'self': {...}}");
    pymem_object *outer = new_list(), *holder = new_dict();
    CHECK_OK(rt, pymem_dict_set(rt, holder, key, outer));
    CHECK_OK(rt, pymem_list_append(rt, outer, holder));
    CHECK_REPR(outer, "[{'self': [...]}]");
    /* Break the cycles by hand (no collector in this part). */
    pymem_object *popped = NULL;
    CHECK_OK(rt, pymem_list_pop(rt, self, 0, &popped));
    drop(popped);
    CHECK_OK(rt, pymem_dict_del(rt, rd, key));
    CHECK_OK(rt, pymem_list_pop(rt, outer, 0, &popped));
    drop(popped);
    drop(key);
    drop(self);
    drop(rd);
    drop(outer);
    drop(holder);
    drop(top);

    /* Modules, functions and instances as Python shows them. */
    pymem_object *m = NULL, *p = NULL;
    CHECK_OK(rt, pymem_module_new(rt, "mymod", &m));
    CHECK_REPR(m, "<module 'mymod'>");
    CHECK_OK(rt, pymem_instance_new(rt, point_type, &p));
    char *r = NULL;
    CHECK_OK(rt, pymem_repr(rt, p, &r));
    CHECK_CONTAINS(r, "<Point object at 0x");
    pymem_string_free(r);
    drop(m);
    drop(p);
    CHECK(point_deallocs == 1);
    point_deallocs = 0;
    CHECK_OK(rt, pymem_clear_free_lists(rt));
    CHECK_BLOCKS(rt, start);
}

/* setattr/getattr/delattr on any object that has attributes. */
static void exercise_attributes(pymem_object *o, const char *type_name) {
    pymem_object *v1 = new_str("value one"), *v2 = new_float(2.0), *got = NULL;
    CHECK_OK(rt, pymem_setattr(rt, o, "label", v1));
    CHECK(count(v1) == 2);
    CHECK_OK(rt, pymem_getattr(rt, o, "label", &got));
    CHECK(pymem_is(got, v1) && count(v1) == 3);
    drop(got);
    /* Replacing drops the old value. */
    CHECK_OK(rt, pymem_setattr(rt, o, "label", v2));
    CHECK(count(v1) == 1 && count(v2) == 2);
    CHECK_OK(rt, pymem_setattr(rt, o, "color", v1));
    CHECK_OK(rt, pymem_getattr(rt, o, "color", &got));
    CHECK(pymem_is(got, v1));
    drop(got);
    /* Missing names: KEY, with Python's message. */
    char message[96];
    snprintf(message, sizeof message, "'%s' object has no attribute 'size'", type_name);
    got = NULL;
    CHECK_FAILS(rt, pymem_getattr(rt, o, "size", &got), PYMEM_ERR_KEY, message);
    CHECK(got == NULL);
    CHECK_FAILS(rt, pymem_delattr(rt, o, "size"), PYMEM_ERR_KEY, message);
    /* delattr drops the reference; twice is KEY. */
    CHECK_OK(rt, pymem_delattr(rt, o, "label"));
    CHECK(count(v2) == 1);
    CHECK_FAILS(rt, pymem_delattr(rt, o, "label"), PYMEM_ERR_KEY, "has no attribute 'label'");
    CHECK_FAILS(rt, pymem_getattr(rt, o, "label", &got), PYMEM_ERR_KEY, "'label'");
    /* Set again after delete. */
    CHECK_OK(rt, pymem_setattr(rt, o, "label", v2));
    CHECK_OK(rt, pymem_getattr(rt, o, "label", &got));
    CHECK(pymem_is(got, v2));
    drop(got);
    CHECK_OK(rt, pymem_delattr(rt, o, "label"));
    CHECK_OK(rt, pymem_delattr(rt, o, "color"));
    CHECK(count(v1) == 1 && count(v2) == 1);
    /* The object holds its last value until it dies. */
    CHECK_OK(rt, pymem_setattr(rt, o, "owner", v1));
    CHECK(count(v1) == 2);
    drop(v1);
    drop(v2);
}

static void test_attributes(void) {
    CHECK_OK(rt, pymem_clear_free_lists(rt));
    const uint64_t start = blocks();
    pymem_object *p = NULL, *m = NULL;
    CHECK_OK(rt, pymem_instance_new(rt, point_type, &p));
    exercise_attributes(p, "Point");
    CHECK_OK(rt, pymem_module_new(rt, "config", &m));
    exercise_attributes(m, "module");
    drop(m);
    drop(p);
    CHECK(point_deallocs == 1);
    point_deallocs = 0;
    CHECK_OK(rt, pymem_clear_free_lists(rt));
    CHECK_BLOCKS(rt, start);

    /* An instance's attribute refers to the instance: a cycle broken by
       hand. */
    CHECK_OK(rt, pymem_instance_new(rt, point_type, &p));
    CHECK_OK(rt, pymem_setattr(rt, p, "owner", p));
    CHECK(count(p) == 2);
    CHECK_OK(rt, pymem_delattr(rt, p, "owner"));
    CHECK(count(p) == 1);
    drop(p);
    CHECK(point_deallocs == 1);
    point_deallocs = 0;

    /* Types without attributes. */
    pymem_object *i = new_int(1000), *v = new_int(1), *got = NULL;
    CHECK_FAILS(rt, pymem_setattr(rt, i, "x", v), PYMEM_ERR_TYPE, "'int' object has no attributes");
    CHECK_FAILS(rt, pymem_getattr(rt, i, "x", &got), PYMEM_ERR_TYPE, "'int'");
    CHECK_FAILS(rt, pymem_delattr(rt, i, "x"), PYMEM_ERR_TYPE, "'int'");
    pymem_object *l = new_list();
    CHECK_FAILS(rt, pymem_setattr(rt, l, "x", v), PYMEM_ERR_TYPE, "'list'");
    drop(l);
    drop(i);
    CHECK_OK(rt, pymem_clear_free_lists(rt));
    CHECK_BLOCKS(rt, start);
}

static void test_host_types(void) {
    const uint64_t start = blocks();
    pymem_object *p = NULL, *q = NULL;
    CHECK_OK(rt, pymem_instance_new(rt, point_type, &p));
    CHECK_OK(rt, pymem_instance_new(rt, point_type, &q));
    CHECK(!pymem_is(p, q));
    CHECK(count(p) == 1);
    CHECK_TYPE_NAME(p, "Point");

    int yes = -1;
    CHECK_OK(rt, pymem_is_instance(rt, p, point_type, &yes));
    CHECK(yes == 1);
    CHECK_OK(rt, pymem_is_instance(rt, p, other_type, &yes));
    CHECK(yes == 0);
    pymem_object *l = new_list();
    CHECK_OK(rt, pymem_is_instance(rt, l, point_type, &yes));
    CHECK(yes == 0);

    /* The payload: 16-byte aligned, zeroed, ours to write, kept. */
    void *raw = NULL, *raw_q = NULL;
    CHECK_OK(rt, pymem_instance_payload(rt, p, &raw));
    CHECK_OK(rt, pymem_instance_payload(rt, q, &raw_q));
    CHECK(raw != NULL && raw != raw_q);
    CHECK_EQ_U64((uintptr_t)raw % 16, 0);
    CHECK_EQ_U64((uintptr_t)raw_q % 16, 0);
    static const unsigned char zero[sizeof(point_payload)];
    CHECK(memcmp(raw, zero, sizeof zero) == 0);
    point_payload *pp = raw;
    pp->x = 3;
    pp->y = -4;
    pp->weight = 0.25;
    memset(raw_q, 0xAB, sizeof(point_payload));
    void *again = NULL;
    CHECK_OK(rt, pymem_instance_payload(rt, p, &again));
    CHECK(again == raw && pp->x == 3 && pp->y == -4 && pp->weight == 0.25);
    void *none_payload = NULL;
    CHECK_FAILS(rt, pymem_instance_payload(rt, l, &none_payload), PYMEM_ERR_TYPE, "list");
    CHECK(none_payload == NULL);
    drop(l);

    /* A type with no payload and no callbacks; its name was copied. */
    pymem_object *o = NULL;
    CHECK_OK(rt, pymem_instance_new(rt, other_type, &o));
    CHECK_TYPE_NAME(o, "Other");
    CHECK_OK(rt, pymem_instance_payload(rt, o, &raw));
    CHECK_EQ_U64((uintptr_t)raw % 16, 0);
    drop(o);

    /* Payloads of every size stay aligned and zeroed. */
    for (size_t size = 1; size <= 600; size += 37) {
        pymem_type_spec spec;
        pymem_type_spec_init(&spec);
        spec.name = "Sized";
        spec.payload_size = size;
        pymem_type *t = NULL;
        CHECK_OK(rt, pymem_type_new(rt, &spec, &t));
        pymem_object *s1 = NULL, *s2 = NULL;
        CHECK_OK(rt, pymem_instance_new(rt, t, &s1));
        CHECK_OK(rt, pymem_instance_payload(rt, s1, &raw));
        memset(raw, 0xEE, size);
        drop(s1);
        CHECK_OK(rt, pymem_instance_new(rt, t, &s2)); /* may reuse s1's block */
        CHECK_OK(rt, pymem_instance_payload(rt, s2, &raw));
        CHECK_EQ_U64((uintptr_t)raw % 16, 0);
        for (size_t k = 0; k < size; k++)
            CHECK(((unsigned char *)raw)[k] == 0);
        drop(s2);
    }

    CHECK(point_deallocs == 0);
    drop(p);
    CHECK(point_deallocs == 1);
    drop(q);
    CHECK(point_deallocs == 2);
    point_deallocs = 0;
    CHECK_OK(rt, pymem_clear_free_lists(rt));
    CHECK_BLOCKS(rt, start);
}

/* A native function: sums its int arguments; userdata counts the calls. */
static pymem_status native_sum(pymem_runtime *r, pymem_object *const *args, size_t nargs,
                               pymem_object **result, void *userdata) {
    CHECK(r == rt);
    (*(int *)userdata)++;
    int64_t sum = 0;
    for (size_t i = 0; i < nargs; i++) {
        int64_t v = 0;
        pymem_status st = pymem_int_value(r, args[i], &v);
        if (st != PYMEM_OK)
            return st; /* a wrong argument: its TYPE status passes through */
        sum += v;
    }
    return pymem_int_new(r, sum, result);
}

/* Returns NULL in *result: the caller gets None. */
static pymem_status native_nothing(pymem_runtime *r, pymem_object *const *args, size_t nargs,
                                   pymem_object **result, void *userdata) {
    (void)r;
    (void)args;
    (void)userdata;
    CHECK(*result == NULL); /* pymem starts it at NULL */
    CHECK(nargs == 0);
    return PYMEM_OK;
}

/* Builds a list of its arguments (the list takes its own references). */
static pymem_status native_pack(pymem_runtime *r, pymem_object *const *args, size_t nargs,
                                pymem_object **result, void *userdata) {
    (void)userdata;
    pymem_object *l = NULL;
    pymem_status st = pymem_list_new(r, &l);
    if (st != PYMEM_OK)
        return st;
    for (size_t i = 0; i < nargs; i++)
        CHECK_OK(r, pymem_list_append(r, l, args[i]));
    *result = l;
    return PYMEM_OK;
}

static void test_functions(void) {
    CHECK_OK(rt, pymem_clear_free_lists(rt));
    const uint64_t start = blocks();
    int calls = 0;
    pymem_object *sum = NULL, *nothing = NULL, *pack = NULL;
    CHECK_OK(rt, pymem_function_new(rt, "sum", native_sum, &calls, &sum));
    CHECK_OK(rt, pymem_function_new(rt, "nothing", native_nothing, NULL, &nothing));
    CHECK_OK(rt, pymem_function_new(rt, "pack", native_pack, NULL, &pack));
    CHECK_TYPE_NAME(sum, "function");
    char *r = NULL;
    CHECK_OK(rt, pymem_repr(rt, sum, &r));
    CHECK_CONTAINS(r, "<function sum at 0x");
    pymem_string_free(r);

    pymem_object *args[3] = {new_int(1000), new_int(2000), new_int(-30)};
    pymem_object *result = NULL;
    CHECK_OK(rt, pymem_call(rt, sum, args, 3, &result));
    int64_t v = 0;
    CHECK_OK(rt, pymem_int_value(rt, result, &v));
    CHECK(v == 2970 && calls == 1);
    CHECK(count(result) == 1); /* a new reference, ours */
    drop(result);
    CHECK_OK(rt, pymem_call(rt, sum, NULL, 0, &result)); /* no arguments */
    CHECK_OK(rt, pymem_int_value(rt, result, &v));
    CHECK(v == 0 && calls == 2);
    drop(result);

    /* The native function's error status passes through pymem_call. */
    pymem_object *bad[2] = {args[0], new_str("not an int")};
    result = NULL;
    CHECK_FAILS(rt, pymem_call(rt, sum, bad, 2, &result), PYMEM_ERR_TYPE, "native function 'sum'");
    CHECK(result == NULL && calls == 3);
    drop(bad[1]);

    /* NULL result is None. */
    CHECK_OK(rt, pymem_call(rt, nothing, NULL, 0, &result));
    pymem_object *none = NULL;
    CHECK_OK(rt, pymem_none(rt, &none));
    CHECK(pymem_is(result, none));
    drop(result);

    /* Arguments are borrowed: the function takes what it keeps. */
    CHECK_OK(rt, pymem_call(rt, pack, args, 3, &result));
    CHECK_REPR(result, "[1000, 2000, -30]");
    CHECK(count(args[0]) == 2);
    drop(result);
    CHECK(count(args[0]) == 1);
    for (int i = 0; i < 3; i++)
        drop(args[i]);

    /* Functions have attributes too. */
    exercise_attributes(sum, "function");
    /* Calling a non-function. */
    pymem_object *l = new_list();
    CHECK_FAILS(rt, pymem_call(rt, l, NULL, 0, &result), PYMEM_ERR_TYPE, "expected function, got list");
    drop(l);
    drop(sum);
    drop(nothing);
    drop(pack);
    CHECK_OK(rt, pymem_clear_free_lists(rt));
    CHECK_BLOCKS(rt, start);
}

static void test_free_lists(void) {
    CHECK_OK(rt, pymem_clear_free_lists(rt));
    const uint64_t start = blocks();
    pymem_object *objs[6];
    objs[0] = new_float(1.5);
    objs[1] = new_float(2.5);
    objs[2] = new_list();
    objs[3] = new_dict();
    objs[4] = new_dict();
    objs[5] = new_tuple2_steal(new_int(1), new_int(2));
    append_steal(objs[2], new_int(5000)); /* the list's items array too */
    for (int i = 0; i < 6; i++)
        drop(objs[i]);
    CHECK(blocks() > start); /* the free lists hold them */

    char *report = NULL;
    CHECK_OK(rt, pymem_debug_malloc_stats(rt, &report));
    CHECK_CONTAINS(report, "Small block threshold = 512, in 33 size classes.");
    /* CPython's free-list lines, at the end of the report. */
    CHECK_CONTAINS(report, "2 free PyDictObjects * ");
    CHECK_CONTAINS(report, "2 free PyFloatObjects * 24 bytes each =                   48");
    CHECK_CONTAINS(report, "1 free PyListObjects * ");
    CHECK_CONTAINS(report, "1 free 2-sized PyTupleObjects * ");
    CHECK_CONTAINS(report, "0 free 20-sized PyTupleObjects * ");
    const char *floats = strstr(report, "free PyFloatObjects");
    CHECK(floats != NULL && strstr(report, "# arenas allocated total") < floats);
    pymem_string_free(report);

    CHECK_OK(rt, pymem_clear_free_lists(rt));
    CHECK_BLOCKS(rt, start);
    CHECK_OK(rt, pymem_debug_malloc_stats(rt, &report));
    CHECK_CONTAINS(report, "0 free PyFloatObjects * 24 bytes each =                    0");
    CHECK_CONTAINS(report, "0 free PyDictObjects * ");
    pymem_string_free(report);
    CHECK_OK(rt, pymem_clear_free_lists(rt)); /* empty: fine */
}

int main(void) {
    CHECK_OK(NULL, pymem_runtime_new(NULL, &rt));
    const uint64_t raw_start = blocks();
    pymem_object *none = NULL;
    CHECK_OK(rt, pymem_none(rt, &none)); /* the first object call makes the singletons */
    printf("singletons: %llu blocks\n", (unsigned long long)(blocks() - raw_start));
    define_types();
    warm_up_attribute_names();
    CHECK_OK(rt, pymem_clear_free_lists(rt));
    const uint64_t baseline = blocks();

    test_singletons();
    test_ints();
    test_floats();
    test_strings();
    test_tuples();
    test_lists();
    test_dicts();
    test_hash();
    test_equal();
    test_repr();
    test_attributes();
    test_host_types();
    test_functions();
    test_free_lists();

    CHECK_OK(rt, pymem_clear_free_lists(rt));
    CHECK_BLOCKS(rt, baseline);
    CHECK(point_deallocs == 0);
    CHECK_OK(rt, pymem_runtime_free(rt));
    printf("objects_basic: OK\n");
    return 0;
}
