/*
 * finalize_on_death.c: PEP 442 finalizers run when an object dies by its
 * reference count too, not only in a collection: once, with the object
 * alive (it may even resurrect itself), before clear and dealloc.
 */
#include <stdint.h>
#include <stdio.h>

#include "pymem.h"
#include "check.h"

struct counts {
    int finalize, clear, dealloc;
    pymem_object *resurrected; /* a finalizer's new reference, or NULL */
    int resurrect_next;        /* 1: the next finalize resurrects */
};

static void on_finalize(pymem_runtime *rt, pymem_object *self, void *ud) {
    struct counts *c = (struct counts *)ud;
    c->finalize++;
    /* The object is alive here: any call works (but runtime_free). */
    intptr_t rc = 0;
    CHECK_OK(rt, pymem_refcount(rt, self, &rc));
    CHECK(rc == 1);
    pymem_object *tmp = NULL;
    CHECK_OK(rt, pymem_list_new(rt, &tmp));
    CHECK_OK(rt, pymem_decref(rt, tmp));
    if (c->resurrect_next) {
        c->resurrect_next = 0;
        CHECK_OK(rt, pymem_incref(rt, self));
        c->resurrected = self;
    }
}
static void on_clear(pymem_runtime *rt, pymem_object *self, void *ud) {
    (void)rt, (void)self;
    ((struct counts *)ud)->clear++;
}
static void on_dealloc(pymem_object *self, void *payload, void *ud) {
    (void)self, (void)payload;
    ((struct counts *)ud)->dealloc++;
}

int main(void) {
    pymem_runtime *rt = NULL;
    CHECK_OK(NULL, pymem_runtime_new(NULL, &rt));
    struct counts c = {0, 0, 0, NULL, 0};
    pymem_type_spec spec;
    pymem_type_spec_init(&spec);
    spec.name = "Finalized";
    spec.finalize = on_finalize;
    spec.clear = on_clear;
    spec.dealloc = on_dealloc;
    spec.userdata = &c;
    pymem_type *t = NULL;
    CHECK_OK(rt, pymem_type_new(rt, &spec, &t));

    /* Plain death: finalize, then clear and dealloc, each once. */
    pymem_object *o = NULL;
    CHECK_OK(rt, pymem_instance_new(rt, t, &o));
    /* The payload sits at a fixed offset (for hot callbacks like traverse). */
    void *payload = NULL;
    CHECK_OK(rt, pymem_instance_payload(rt, o, &payload));
    CHECK((char *)payload == (char *)o + PYMEM_INSTANCE_PAYLOAD_OFFSET);
    CHECK_OK(rt, pymem_decref(rt, o));
    CHECK(c.finalize == 1 && c.clear == 1 && c.dealloc == 1);

    /* A finalizer that resurrects: the object lives on, finalized. */
    CHECK_OK(rt, pymem_instance_new(rt, t, &o));
    c.resurrect_next = 1;
    CHECK_OK(rt, pymem_decref(rt, o));
    CHECK(c.finalize == 2 && c.clear == 1 && c.dealloc == 1);
    CHECK(c.resurrected == o);
    int flag = 0;
    CHECK_OK(rt, pymem_gc_is_finalized(rt, o, &flag));
    CHECK(flag == 1);
    CHECK_OK(rt, pymem_gc_is_tracked(rt, o, &flag));
    CHECK(flag == 1);
    /* Its second death: no second finalize (PEP 442), clear and dealloc. */
    CHECK_OK(rt, pymem_decref(rt, o));
    CHECK(c.finalize == 2 && c.clear == 2 && c.dealloc == 2);

    CHECK_OK(NULL, pymem_runtime_free(rt));
    printf("finalize_on_death: OK\n");
    return 0;
}
