/* seed_namespace.h -- the seed's namespace (its sections 3.2-3.5), built
 * through the C API as ../shared/peers/reset_bench.py builds it in CPython:
 *
 *   import math; def helper(x): return x
 *   a = [i for i in range(1000, 1000 + N)]        N ints
 *   b = [i * 0.5 for i in range(N)]               N floats
 *   d = {s: s for s in map(str, range(M))}        M strs, key and value one object
 *   c = {'name': 'cycle'}; c['self'] = c; c['items'] = [c, [c]]
 *
 * Shared by demo.c (section "namespaces") and bench_reset.c, so that the
 * demo and the bench build exactly the same thing. Header-only; `check` is
 * the including program's error handler (it reports a failed call and does
 * not return).
 */
#ifndef PYMEM_XTASK_SEED_NAMESPACE_H
#define PYMEM_XTASK_SEED_NAMESPACE_H

#include <stdio.h>
#include <string.h>

#include <pymem.h>

typedef void (*seed_check_fn)(pymem_status st, const char *what);

#define SEED_OK(call) check((call), #call)

/* helper(x): returns x. */
static pymem_status seed_identity(pymem_runtime *rt, pymem_object *const *args, size_t nargs, pymem_object **result,
                                  void *userdata) {
    (void)userdata;
    if (nargs != 1) return PYMEM_ERR_INVALID_ARGUMENT;
    *result = args[0];
    return pymem_incref(rt, args[0]);
}

/* ns[name] = o, dropping the caller's reference. */
static void seed_bind(pymem_runtime *rt, seed_check_fn check, pymem_object *ns, const char *name, pymem_object *o) {
    SEED_OK(pymem_ns_set(rt, ns, name, o));
    SEED_OK(pymem_decref(rt, o));
}

static pymem_object *seed_str(pymem_runtime *rt, seed_check_fn check, const char *text) {
    pymem_object *o = NULL;
    SEED_OK(pymem_str_new(rt, text, strlen(text), &o));
    return o;
}

/* d[key] = value (a new str key). */
static void seed_item(pymem_runtime *rt, seed_check_fn check, pymem_object *d, const char *key, pymem_object *value) {
    pymem_object *k = seed_str(rt, check, key);
    SEED_OK(pymem_dict_set(rt, d, k, value));
    SEED_OK(pymem_decref(rt, k));
}

/* `import math` and `def helper`: what stays after a reset. */
static void seed_module_and_function(pymem_runtime *rt, seed_check_fn check, pymem_object *ns) {
    pymem_object *o = NULL;
    SEED_OK(pymem_module_new(rt, "math", &o));
    seed_bind(rt, check, ns, "math", o);
    SEED_OK(pymem_function_new(rt, "helper", seed_identity, NULL, &o));
    seed_bind(rt, check, ns, "helper", o);
}

/* The user variables a, b, d (n ints, n floats, m strs) and the cycle c. */
static void seed_variables(pymem_runtime *rt, seed_check_fn check, pymem_object *ns, long n, long m) {
    pymem_object *o = NULL, *v = NULL;
    SEED_OK(pymem_list_new(rt, &o));
    for (long i = 0; i < n; i++) {
        SEED_OK(pymem_int_new(rt, 1000 + i, &v));
        SEED_OK(pymem_list_append(rt, o, v));
        SEED_OK(pymem_decref(rt, v));
    }
    seed_bind(rt, check, ns, "a", o);
    SEED_OK(pymem_list_new(rt, &o));
    for (long i = 0; i < n; i++) {
        SEED_OK(pymem_float_new(rt, (double)i * 0.5, &v));
        SEED_OK(pymem_list_append(rt, o, v));
        SEED_OK(pymem_decref(rt, v));
    }
    seed_bind(rt, check, ns, "b", o);
    SEED_OK(pymem_dict_new(rt, &o));
    for (long i = 0; i < m; i++) {
        char text[24];
        snprintf(text, sizeof text, "%ld", i);
        pymem_object *s = seed_str(rt, check, text);
        SEED_OK(pymem_dict_set(rt, o, s, s));
        SEED_OK(pymem_decref(rt, s));
    }
    seed_bind(rt, check, ns, "d", o);
    pymem_object *c = NULL, *items = NULL, *inner = NULL;
    SEED_OK(pymem_dict_new(rt, &c));
    pymem_object *name = seed_str(rt, check, "cycle");
    seed_item(rt, check, c, "name", name);
    SEED_OK(pymem_decref(rt, name));
    seed_item(rt, check, c, "self", c);
    SEED_OK(pymem_list_new(rt, &items));
    SEED_OK(pymem_list_new(rt, &inner));
    SEED_OK(pymem_list_append(rt, inner, c));
    SEED_OK(pymem_list_append(rt, items, c));
    SEED_OK(pymem_list_append(rt, items, inner));
    SEED_OK(pymem_decref(rt, inner));
    seed_item(rt, check, c, "items", items);
    SEED_OK(pymem_decref(rt, items));
    seed_bind(rt, check, ns, "c", c);
}

#undef SEED_OK

#endif
