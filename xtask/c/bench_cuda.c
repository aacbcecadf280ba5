/* bench_cuda.c -- `cargo xtask bench cuda`, through the C API only.
 *
 *   bench_cuda hit RUNS N      alloc+free pairs of one size on a warm cache
 *                              (every pair a cache hit) against the
 *                              pass-through policy (caching = 0: the device
 *                              is called for every malloc and free), on the
 *                              simulated device. Prints one line per sample:
 *                              RESULT hit policy=<cached|passthrough> size=<bytes> run=<i> ns=<ns per pair>
 *   bench_cuda trace STEPS CONF
 *                              a synthetic training loop (varying batch
 *                              sizes) under PyTorch's policy with the
 *                              PYTORCH_CUDA_ALLOC_CONF string CONF ("-" =
 *                              defaults, "passthrough" = no caching); prints
 *                              RESULT trace conf=<CONF> peak_allocated=... peak_reserved=...
 *                              device_allocs=... device_frees=... retries=... ooms=...
 *
 * The trace is deterministic (a fixed xorshift seed), so one run is its
 * answer; the hit timings are repeated and xtask takes medians.
 */
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <pymem.h>

static pymem_cuda_cache *cache;

static void ok(pymem_status st, const char *what) {
    if (st != PYMEM_OK) {
        fprintf(stderr, "bench_cuda: %s: %s: %s\n", what, pymem_status_name(st), pymem_cuda_last_error(cache));
        exit(1);
    }
}

static pymem_cuda_cache *new_cache(int caching, const char *conf) {
    pymem_cuda_config cfg;
    pymem_cuda_config_init(&cfg);
    cfg.backend = PYMEM_CUDA_BACKEND_SIMULATED;
    cfg.caching = caching;
    if (conf != NULL) ok(pymem_cuda_config_parse(conf, &cfg), conf);
    pymem_cuda_cache *c = NULL;
    ok(pymem_cuda_cache_new(&cfg, &c), "pymem_cuda_cache_new");
    return c;
}

static double now_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec * 1e9 + (double)t.tv_nsec;
}

/* ns per malloc+free pair of `size` bytes. */
static double time_pairs(int caching, size_t size, uint64_t n) {
    cache = new_cache(caching, NULL);
    uint64_t p = 0;
    ok(pymem_cuda_malloc(cache, 0, size, 0, &p), "warm-up malloc"); /* the segment exists from here on */
    ok(pymem_cuda_free(cache, p), "warm-up free");
    double t0 = now_ns();
    for (uint64_t i = 0; i < n; i++) {
        if (pymem_cuda_malloc(cache, 0, size, 0, &p) != PYMEM_OK || pymem_cuda_free(cache, p) != PYMEM_OK) {
            ok(pymem_cuda_last_status(cache), "pair");
        }
    }
    double ns = (now_ns() - t0) / (double)n;
    ok(pymem_cuda_cache_free(cache), "free");
    cache = NULL;
    return ns;
}

static int hit(int runs, uint64_t n) {
    static const size_t sizes[] = {4096, 1u << 20, 64u << 20};
    for (int r = 0; r < runs; r++) {
        for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
            /* Interleaved, so drift of a shared machine spreads over both. */
            printf("RESULT hit policy=cached size=%zu run=%d ns=%.2f\n", sizes[s], r, time_pairs(1, sizes[s], n));
            printf("RESULT hit policy=passthrough size=%zu run=%d ns=%.2f\n", sizes[s], r,
                   time_pairs(0, sizes[s], n / 10));
        }
    }
    return 0;
}

static uint64_t rng = 0x2545f4914f6cdd1dull;
static uint64_t next_random(void) {
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

static uint64_t alloc(size_t bytes) {
    uint64_t p = 0;
    ok(pymem_cuda_malloc(cache, 0, bytes, 0, &p), "trace malloc");
    return p;
}

static void release(uint64_t p) { ok(pymem_cuda_free(cache, p), "trace free"); }

static long long stat(const char *key) {
    char *json = NULL;
    ok(pymem_cuda_memory_stats(cache, 0, &json), "memory_stats");
    char pattern[96];
    snprintf(pattern, sizeof pattern, "\"%s\": ", key);
    const char *at = strstr(json, pattern);
    long long v = at ? strtoll(at + strlen(pattern), NULL, 10) : -1;
    pymem_string_free(json);
    return v;
}

#define LAYERS 24
#define HIDDEN 1024
#define SEQ 128
#define VOCAB 32000

/* A transformer-like training loop in fp32: weights, gradients and two
 * Adam states persist; each step draws a batch size in 8..64, keeps every
 * layer's activations for the backward pass (plus small per-token
 * statistics), frees them layer by layer in the backward pass while
 * gradients of activations come and go, and runs the optimizer with a
 * temporary per layer. */
static int trace(int steps, const char *conf) {
    int passthrough = strcmp(conf, "passthrough") == 0;
    cache = new_cache(!passthrough, (passthrough || strcmp(conf, "-") == 0) ? NULL : conf);
    const size_t weight = (size_t)HIDDEN * HIDDEN * 4 * 4; /* four HxH matrices per layer */
    uint64_t weights[LAYERS], grads[LAYERS], adam_m[LAYERS], adam_v[LAYERS];
    for (int l = 0; l < LAYERS; l++) weights[l] = alloc(weight);
    uint64_t embedding = alloc((size_t)VOCAB * HIDDEN * 4);
    int have_state = 0;
    for (int step = 0; step < steps; step++) {
        size_t batch = 8 + next_random() % 57;
        size_t tokens = batch * SEQ;
        uint64_t acts[LAYERS], stats[LAYERS], mlp[LAYERS];
        uint64_t input = alloc(tokens * HIDDEN * 4);
        for (int l = 0; l < LAYERS; l++) {
            acts[l] = alloc(tokens * HIDDEN * 4);
            mlp[l] = alloc(tokens * HIDDEN * 4 * 4); /* the 4x wider MLP activation */
            stats[l] = alloc(tokens * 4 * 2);         /* layer-norm mean and rstd */
        }
        uint64_t logits = alloc(tokens * (VOCAB / 8) * 4); /* a sampled softmax */
        uint64_t loss = alloc(4);
        release(logits);
        uint64_t grad_out = alloc(tokens * HIDDEN * 4);
        for (int l = LAYERS - 1; l >= 0; l--) {
            uint64_t grad_mlp = alloc(tokens * HIDDEN * 4 * 4);
            if (!have_state) grads[l] = alloc(weight);
            release(grad_mlp);
            release(mlp[l]);
            release(stats[l]);
            uint64_t grad_in = alloc(tokens * HIDDEN * 4);
            release(grad_out);
            release(acts[l]);
            grad_out = grad_in;
        }
        release(grad_out);
        release(input);
        release(loss);
        for (int l = 0; l < LAYERS; l++) {
            if (!have_state) {
                adam_m[l] = alloc(weight);
                adam_v[l] = alloc(weight);
            }
            uint64_t tmp = alloc(weight);
            release(tmp);
        }
        have_state = 1;
    }
    printf("RESULT trace conf=%s peak_allocated=%lld peak_reserved=%lld device_allocs=%lld device_frees=%lld "
           "retries=%lld ooms=%lld\n",
           conf, stat("allocated_bytes.all.peak"), stat("reserved_bytes.all.peak"), stat("num_device_alloc"),
           stat("num_device_free"), stat("num_alloc_retries"), stat("num_ooms"));
    for (int l = 0; l < LAYERS; l++) {
        release(weights[l]);
        if (have_state) {
            release(grads[l]);
            release(adam_m[l]);
            release(adam_v[l]);
        }
    }
    release(embedding);
    ok(pymem_cuda_cache_free(cache), "free");
    cache = NULL;
    return 0;
}

int main(int argc, char **argv) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (argc == 4 && strcmp(argv[1], "hit") == 0) return hit(atoi(argv[2]), strtoull(argv[3], NULL, 10));
    if (argc == 4 && strcmp(argv[1], "trace") == 0) return trace(atoi(argv[2]), argv[3]);
    fprintf(stderr, "usage: %s hit RUNS N | trace STEPS CONF\n", argv[0]);
    return 1;
}
