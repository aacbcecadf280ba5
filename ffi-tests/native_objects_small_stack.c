/*
 * native_objects_small_stack.c: deallocation needs no stack in proportion
 * to the depth of what it frees (issue 3, point 5: CPython's trashcan).
 *
 * The runtime is handed to a thread whose stack is only 256 KiB (attach),
 * where a recursive free would overflow within a few thousand levels; there
 * it builds and drops, one at a time:
 *   - a chain of 1,000,000 host instances linked through their payloads,
 *     whose `clear` drops the next one (a decref inside the callback),
 *   - a list nested 1,000,000 deep,
 *   - a chain of 1,000,000 dicts / tuples / instances (attribute links).
 * Every object is freed (the allocator is back to its baseline) and the
 * program does not crash. Native only (the stack size is what is tested;
 * objects_host_types covers the same paths under valgrind at 10,000).
 */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "pymem.h"
#include "check.h"

#define DEPTH 1000000
#define STACK_SIZE (256 * 1024)

static pymem_runtime *rt;
static size_t clears, deallocs;

static void link_clear(pymem_runtime *r, pymem_object *self, void *userdata) {
    (void)userdata;
    clears++;
    void *p = NULL;
    CHECK_OK(r, pymem_instance_payload(r, self, &p));
    pymem_object *next = *(pymem_object **)p;
    *(pymem_object **)p = NULL;
    if (next != NULL)
        CHECK_OK(r, pymem_decref(r, next));
}

static void link_dealloc(pymem_object *self, void *payload, void *userdata) {
    (void)self;
    (void)userdata;
    CHECK(*(pymem_object **)payload == NULL); /* clear ran first */
    deallocs++;
}

static void *worker(void *arg) {
    (void)arg;
    CHECK_OK(rt, pymem_runtime_attach(rt));
    pymem_type_spec spec;
    pymem_type_spec_init(&spec);
    spec.name = "Link";
    spec.payload_size = sizeof(pymem_object *);
    spec.clear = link_clear;
    spec.dealloc = link_dealloc;
    pymem_type *link = NULL;
    CHECK_OK(rt, pymem_type_new(rt, &spec, &link));
    pymem_type_spec plain;
    pymem_type_spec_init(&plain);
    plain.name = "Plain";
    pymem_type *plain_type = NULL;
    CHECK_OK(rt, pymem_type_new(rt, &plain, &plain_type));
    /* The Plain type keeps its attribute name: make it before the baseline. */
    pymem_object *warm = NULL, *none = NULL;
    CHECK_OK(rt, pymem_none(rt, &none));
    CHECK_OK(rt, pymem_instance_new(rt, plain_type, &warm));
    CHECK_OK(rt, pymem_setattr(rt, warm, "inner", none));
    CHECK_OK(rt, pymem_decref(rt, warm));
    CHECK_OK(rt, pymem_clear_free_lists(rt));
    const uint64_t start = stats_of(rt).blocks_in_use;

    /* Host instances, linked through their payloads. */
    pymem_object *head = NULL;
    for (size_t i = 0; i < DEPTH; i++) {
        pymem_object *o = NULL;
        CHECK_OK(rt, pymem_instance_new(rt, link, &o));
        void *p = NULL;
        CHECK_OK(rt, pymem_instance_payload(rt, o, &p));
        *(pymem_object **)p = head; /* takes our reference */
        head = o;
    }
    CHECK_OK(rt, pymem_decref(rt, head));
    CHECK_EQ_U64(clears, DEPTH);
    CHECK_EQ_U64(deallocs, DEPTH);
    CHECK_BLOCKS(rt, start);

    /* A list nested DEPTH deep. */
    pymem_object *inner = NULL;
    CHECK_OK(rt, pymem_list_new(rt, &inner));
    for (size_t i = 1; i < DEPTH; i++) {
        pymem_object *l = NULL;
        CHECK_OK(rt, pymem_list_new(rt, &l));
        CHECK_OK(rt, pymem_list_append(rt, l, inner));
        CHECK_OK(rt, pymem_decref(rt, inner));
        inner = l;
    }
    CHECK_OK(rt, pymem_decref(rt, inner));
    CHECK_OK(rt, pymem_clear_free_lists(rt));
    CHECK_BLOCKS(rt, start);

    /* dict -> tuple -> instance (attribute) -> dict ... */
    pymem_object *key = NULL;
    CHECK_OK(rt, pymem_str_new(rt, "inner", 5, &key));
    CHECK_OK(rt, pymem_none(rt, &inner));
    for (size_t i = 0; i < DEPTH; i++) {
        pymem_object *o = NULL;
        switch (i % 3) {
        case 0:
            CHECK_OK(rt, pymem_dict_new(rt, &o));
            CHECK_OK(rt, pymem_dict_set(rt, o, key, inner));
            break;
        case 1:
            CHECK_OK(rt, pymem_tuple_new(rt, 1, &inner, &o));
            break;
        default:
            CHECK_OK(rt, pymem_instance_new(rt, plain_type, &o));
            CHECK_OK(rt, pymem_setattr(rt, o, "inner", inner));
            break;
        }
        CHECK_OK(rt, pymem_decref(rt, inner));
        inner = o;
    }
    CHECK_OK(rt, pymem_decref(rt, inner));
    CHECK_OK(rt, pymem_decref(rt, key));
    CHECK_OK(rt, pymem_clear_free_lists(rt));
    CHECK_BLOCKS(rt, start);

    CHECK_OK(rt, pymem_runtime_detach(rt));
    return NULL;
}

int main(void) {
    CHECK_OK(NULL, pymem_runtime_new(NULL, &rt));
    CHECK_OK(rt, pymem_runtime_detach(rt));
    pthread_attr_t attr;
    CHECK(pthread_attr_init(&attr) == 0);
    CHECK(pthread_attr_setstacksize(&attr, STACK_SIZE) == 0);
    pthread_t t;
    CHECK(pthread_create(&t, &attr, worker, NULL) == 0);
    CHECK(pthread_join(t, NULL) == 0);
    CHECK(pthread_attr_destroy(&attr) == 0);
    CHECK_OK(rt, pymem_runtime_attach(rt));
    CHECK_OK(rt, pymem_runtime_free(rt));
    printf("native_objects_small_stack: %d-deep chains freed on a %d KiB stack: OK\n", DEPTH,
           STACK_SIZE / 1024);
    return 0;
}
