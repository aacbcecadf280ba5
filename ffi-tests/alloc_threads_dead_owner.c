/*
 * alloc_threads_dead_owner.c: a runtime whose owner thread ended without
 * detaching must not pass to a thread that never attached: threads created
 * later get PYMEM_ERR_BUSY (pymem.h: "Calls from another thread return
 * PYMEM_ERR_BUSY"; API.md: the owner is "the thread that created it, or
 * that last called pymem_runtime_attach").
 *
 * Kept apart from alloc_threads.c because it failed when written (pymem
 * 0.1.0): the owner check compares the thread pointer (%fs:0, the address
 * of the thread's control block), and glibc reuses a finished thread's
 * stack and control block for the next pthread_create, so a new thread that
 * never attached is taken for the dead owner and may use the runtime.
 */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pymem.h"
#include "check.h"

static void *attach_and_exit(void *arg) {
    pymem_runtime *rt = (pymem_runtime *)arg;
    CHECK_OK(rt, pymem_runtime_attach(rt));
    void *p = pymem_malloc(rt, 16);
    CHECK(p != NULL);
    CHECK_OK(rt, pymem_free(rt, p));
    return NULL; /* ends without pymem_runtime_detach */
}

static void *never_attached(void *arg) {
    pymem_runtime *rt = (pymem_runtime *)arg;
    void *p = pymem_malloc(rt, 16);
    CHECKF(p == NULL, "a thread that never attached allocated %p from a runtime owned by a "
                      "finished thread", p);
    CHECK_MESSAGE(rt, "belongs to another thread");
    pymem_alloc_stats s;
    CHECK_STATUS(rt, pymem_alloc_get_stats(rt, &s), PYMEM_ERR_BUSY);
    CHECK_STATUS(rt, pymem_runtime_detach(rt), PYMEM_ERR_BUSY);
    return NULL;
}

static void on_thread(void *(*fn)(void *), void *arg) {
    pthread_t t;
    CHECK(pthread_create(&t, NULL, fn, arg) == 0);
    CHECK(pthread_join(t, NULL) == 0);
}

/* Static, so that an unfreeable runtime stays reachable (not a leak). */
static pymem_runtime *rt;

int main(void) {
    CHECK_OK(NULL, pymem_runtime_new(NULL, &rt));
    CHECK_OK(rt, pymem_runtime_detach(rt));
    on_thread(attach_and_exit, rt);
    /* Several new threads: each must be refused, none may slip in. */
    for (int i = 0; i < 4; i++)
        on_thread(never_attached, rt);
    /* Either the dead thread still owns it (BUSY, and the runtime can never
     * be freed), or a fix detaches at thread exit and main may take it. */
    int32_t st = pymem_runtime_attach(rt);
    CHECKF(st == PYMEM_ERR_BUSY || st == PYMEM_OK, "attach on main: %s", pymem_status_name(st));
    if (st == PYMEM_OK)
        CHECK_OK(rt, pymem_runtime_free(rt));
    printf("alloc_threads_dead_owner: OK\n");
    return 0;
}
