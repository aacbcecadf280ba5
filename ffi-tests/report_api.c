/* report_api.c -- pymem_report_mark and pymem_report_html through the C ABI:
 * a page with every section, one mark group per mark in order, a GPU cache
 * drawn when given; bad input (NULL runtime, NULL out, NULL, empty, too
 * long or non-UTF-8 labels, too many marks, another thread) refused with
 * a status and a message, the out-pointer untouched and no mark added. */
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "check.h"

static pymem_runtime *rt;

/* Occurrences of needle in text. */
static int count(const char *text, const char *needle) {
    int n = 0;
    for (const char *p = strstr(text, needle); p != NULL; p = strstr(p + 1, needle)) n++;
    return n;
}

static char *page(pymem_cuda_cache *gpu) {
    char *html = NULL;
    CHECK_OK(rt, pymem_report_html(rt, gpu, &html));
    CHECK(html != NULL);
    return html;
}

static int marks_in_page(void) {
    char *html = page(NULL);
    int n = count(html, "<g class=\"mark\"");
    pymem_string_free(html);
    return n;
}

static void a_page_with_marks_and_a_gpu(void) {
    pymem_object *ns = NULL, *list = NULL, *v = NULL;
    CHECK_OK(rt, pymem_report_mark(rt, "start"));
    CHECK_OK(rt, pymem_ns_new(rt, "main", 0, &ns));
    CHECK_OK(rt, pymem_list_new(rt, &list));
    for (int i = 0; i < 100; i++) {
        CHECK_OK(rt, pymem_int_new(rt, 1000 + i, &v));
        CHECK_OK(rt, pymem_list_append(rt, list, v));
        CHECK_OK(rt, pymem_decref(rt, v));
    }
    CHECK_OK(rt, pymem_ns_set(rt, ns, "a", list));
    CHECK_OK(rt, pymem_decref(rt, list));
    CHECK_OK(rt, pymem_report_mark(rt, "built \"a\" <100 ints>"));
    char *text = NULL;
    CHECK_OK(rt, pymem_ns_whos(rt, ns, &text));
    pymem_string_free(text);
    CHECK_OK(rt, pymem_ns_why_alive(rt, ns, "a", &text));
    pymem_string_free(text);
    CHECK_OK(rt, pymem_ns_del(rt, ns, "a"));
    CHECK_OK(rt, pymem_report_mark(rt, "del a"));

    pymem_cuda_config cfg;
    pymem_cuda_config_init(&cfg);
    cfg.backend = PYMEM_CUDA_BACKEND_SIMULATED;
    pymem_cuda_cache *gpu = NULL;
    CHECK_CUDA_OK(NULL, pymem_cuda_cache_new(&cfg, &gpu));
    CHECK_CUDA_OK(gpu, pymem_cuda_record_history(gpu, 1, 100));
    uint64_t x = 0;
    CHECK_CUDA_OK(gpu, pymem_cuda_malloc(gpu, 0, 1 << 20, 0, &x));

    char *html = page(gpu);
    CHECK(strncmp(html, "<!DOCTYPE html>", 15) == 0);
    const char *sections[] = {"timeline", "arenas", "size-classes", "gc", "whos", "why-alive", "gpu"};
    for (size_t i = 0; i < sizeof sections / sizeof sections[0]; i++) {
        char tag[64];
        snprintf(tag, sizeof tag, "<section id=\"%s\">", sections[i]);
        CHECKF(count(html, tag) == 1, "%s", tag);
    }
    CHECK_EQ_U64(count(html, "<g class=\"mark\""), 3);
    const char *first = strstr(html, "data-label=\"start\"");
    const char *second = strstr(html, "data-label=\"built &quot;a&quot; &lt;100 ints&gt;\"");
    const char *third = strstr(html, "data-label=\"del a\"");
    CHECK(first != NULL && second != NULL && third != NULL && first < second && second < third);
    CHECK_CONTAINS(html, "Backend: simulated");
    CHECK_CONTAINS(html, "class=\"blk allocated\"");
    CHECK(strstr(html, "<script") == NULL);
    pymem_string_free(html);

    CHECK_CUDA_OK(gpu, pymem_cuda_free(gpu, x));
    CHECK_CUDA_OK(gpu, pymem_cuda_cache_free(gpu));
    CHECK_OK(rt, pymem_decref(rt, ns));
}

static void bad_input(void) {
    char *out = NULL;
    CHECK_FAILS(NULL, pymem_report_mark(NULL, "x"), PYMEM_ERR_NULL_ARGUMENT, "NULL");
    CHECK_FAILS(NULL, pymem_report_html(NULL, NULL, &out), PYMEM_ERR_NULL_ARGUMENT, "NULL");
    CHECK(out == NULL);
    int before = marks_in_page();
    CHECK_FAILS(rt, pymem_report_html(rt, NULL, NULL), PYMEM_ERR_NULL_ARGUMENT, "out is NULL");
    CHECK_FAILS(rt, pymem_report_mark(rt, NULL), PYMEM_ERR_NULL_ARGUMENT, "label is NULL");
    CHECK_FAILS(rt, pymem_report_mark(rt, "\xff\xfe"), PYMEM_ERR_INVALID_ARGUMENT, "label is not valid UTF-8");
    CHECK_FAILS(rt, pymem_report_mark(rt, ""), PYMEM_ERR_INVALID_ARGUMENT, "label must be 1 to 200 bytes");
    char long_label[PYMEM_REPORT_MAX_LABEL + 2];
    memset(long_label, 'x', sizeof long_label - 1);
    long_label[sizeof long_label - 1] = '\0';
    CHECK_FAILS(rt, pymem_report_mark(rt, long_label), PYMEM_ERR_INVALID_ARGUMENT, "(got 201)");
    CHECK_EQ_U64(marks_in_page(), before);
}

static void too_many_marks(void) {
    pymem_runtime *other = NULL;
    CHECK_OK(NULL, pymem_runtime_new(NULL, &other));
    for (int i = 0; i < PYMEM_REPORT_MAX_MARKS; i++) CHECK_OK(other, pymem_report_mark(other, "m"));
    CHECK_FAILS(other, pymem_report_mark(other, "one more"), PYMEM_ERR_INVALID_ARGUMENT, "at most 1024 marks");
    CHECK_OK(other, pymem_runtime_free(other));
}

/* Another thread: both calls refused with BUSY, in that thread's slot. */
static void *other_thread(void *arg) {
    (void)arg;
    char *out = NULL;
    CHECK_FAILS(NULL, pymem_report_mark(rt, "from elsewhere"), PYMEM_ERR_BUSY, "belongs to another thread");
    CHECK_FAILS(NULL, pymem_report_html(rt, NULL, &out), PYMEM_ERR_BUSY, "pymem_report_html");
    CHECK(out == NULL);
    return NULL;
}

int main(void) {
    CHECK_OK(NULL, pymem_runtime_new(NULL, &rt));
    a_page_with_marks_and_a_gpu();
    bad_input();
    too_many_marks();
    int before = marks_in_page();
    pthread_t t;
    CHECK(pthread_create(&t, NULL, other_thread, NULL) == 0);
    CHECK(pthread_join(t, NULL) == 0);
    CHECK_EQ_U64(marks_in_page(), before);
    CHECK_OK(rt, pymem_runtime_free(rt));
    printf("report_api: ok\n");
    return 0;
}
