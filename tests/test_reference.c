/*
 * tests/test_reference.c - the fast forward path equals the reference one.
 *
 * engine/reference.c is docs/SPEC.md in plain loops, one token at a time; engine/forward.c
 * batches, threads and vectorizes. For every golden model and every mode, the fast path's
 * logits must be bit-identical (memcmp) to the reference's at every position: one token
 * at a time on one thread, and as a batched prefill on 2 and 3 threads (cut at a position
 * that is not a chunk multiple), at every SIMD level this CPU has. The reference itself is
 * checked against the oracle's golden logits in tests/test_forward.c.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/reference.h"
#include "engine/transformer.h"
#include "kernels/simd.h"
#include "tests/test.h"
#include "weights/model.h"

typedef struct {
    const char *model, *tokens; /* a checkpoint, and a golden prompt's ids */
} RefCase;

static const RefCase ref_cases[] = {
    {"models/stories260K.bin", "tests/data/golden/stories260K/lily.tokens"},
    {"tests/data/llama2xs.bin", "tests/data/golden/llama2xs/park.tokens"},
    {"tests/data/wide64.bin", "tests/data/golden/wide64/sara.tokens"},
    {"tests/data/wide48.bin", "tests/data/golden/wide48/sara.tokens"},
};

/* Every mode and knob (the integer modes must match bit for bit; fp32 does too, since
 * both paths add floats in the same orders). */
static const char *const ref_modes[] = {
    "fp32",       "w8a16",         "qrazor",         "qrazor/g32",  "qrazor/g64",  "qrazor/g128",
    "qrazor/trunc", "qrazor/cls=fp32", "qrazor/cls=int8", "rtn4",   "sdr-w",       "sdr-a",
    "sdr-kv",     "sdr-p",         "qrazor/k5",      "qrazor/k5/v5", "qrazor/k8",  "qrazor/k8/v8",
    "qrazor/g32/v5",
    /* with the rotations of docs/SPEC.md section 7 */
    "fp32/rot",   "w8a16/rot",     "qrazor/rot",     "quarot",      "qrazor/rot/g32/k5/v8",
};

enum { EXTRA = 16 }; /* positions run after the prompt, feeding a fixed token sequence */

/* The case's token sequence: the prompt, then EXTRA more ids. */
static int *case_tokens(const RefCase *rc, int vocab, int *n) {
    int *prompt;
    const int np = test_read_ints(rc->tokens, &prompt);
    if (np <= 0) return NULL;
    int *all = malloc((size_t)(np + EXTRA) * sizeof *all);
    memcpy(all, prompt, (size_t)np * sizeof *all);
    for (int i = 0; i < EXTRA; i++) all[np + i] = (i * 97 + 13) % vocab;
    free(prompt);
    *n = np + EXTRA;
    return all;
}

/* Logits at every position through the fast path: one token at a time (split = 0), or
 * in two batched calls cut at `split`. */
static float *fast_logits(const ModelWeights *w, const int *tokens, int n, int split, ThreadPool *pool) {
    char err[256];
    const int V = w->cfg.vocab_size;
    Transformer *t = transformer_new(w, pool, n, err, sizeof err);
    float *all = malloc((size_t)n * V * sizeof *all);
    if (!CHECKF(t && all, "%s", err)) {
        transformer_free(t), free(all);
        return NULL;
    }
    int ok = 1;
    if (split == 0) {
        for (int pos = 0; ok && pos < n; pos++) {
            const float *l = transformer_forward(t, tokens[pos], pos);
            ok = l != NULL;
            if (ok) memcpy(all + (size_t)pos * V, l, (size_t)V * sizeof *all);
        }
    } else {
        ok = transformer_run(t, tokens, split, 0, all) != NULL;
        if (ok && split < n) ok = transformer_run(t, tokens + split, n - split, split, all + (size_t)split * V) != NULL;
    }
    CHECKF(ok, "forward pass failed: %s", transformer_error(t));
    transformer_free(t);
    return all;
}

static void check_case_mode(const RefCase *rc, const char *mode, ThreadPool *const *pools) {
    char err[256] = "";
    QuantConfig q;
    ModelWeights w;
    if (!CHECKF(quant_config_parse(mode, &q, err, sizeof err) == 0, "%s", err)) return;
    if (!CHECKF(model_open(&w, rc->model, &q, NULL, err, sizeof err) == 0, "%s", err)) return;
    const int V = w.cfg.vocab_size;
    int n = 0;
    int *tokens = case_tokens(rc, V, &n);
    Reference *r = tokens ? reference_new(&w, n, err, sizeof err) : NULL;
    float *want = malloc((size_t)n * V * sizeof *want);
    if (CHECKF(r && want, "%s", err)) {
        for (int pos = 0; pos < n; pos++)
            memcpy(want + (size_t)pos * V, reference_forward(r, tokens[pos], pos), (size_t)V * sizeof *want);
        const SimdLevel start = simd_current();
        for (int l = 0; l < SIMD_LEVELS; l++) {
            if (!test_level(l)) continue;
            simd_use(simd_level_name((SimdLevel)l));
            const struct {
                int split;
                ThreadPool *pool;
            } runs[] = {{0, NULL}, {n, pools[0]}, {n / 3 + 1, pools[1]}};
            for (int k = 0; k < 3; k++) {
                float *got = fast_logits(&w, tokens, n, runs[k].split, runs[k].pool);
                int first = -1;
                for (int pos = 0; got && first < 0 && pos < n; pos++)
                    if (memcmp(got + (size_t)pos * V, want + (size_t)pos * V, (size_t)V * sizeof *got)) first = pos;
                CHECKF(got && first < 0, "%s %s, %s, %d threads, %s: logits differ from the reference from position %d",
                       rc->model, mode, simd_level_name((SimdLevel)l), threadpool_size(runs[k].pool),
                       runs[k].split ? "batched" : "one by one", first);
                free(got);
            }
        }
        simd_use(simd_level_name(start));
    }
    free(want);
    free(tokens);
    reference_free(r);
    model_close(&w);
}

static void test_fast_path_equals_reference(void) {
    ThreadPool *pools[2] = {threadpool_new(2), threadpool_new(3)};
    if (!CHECK(pools[0] && pools[1])) return;
    for (size_t c = 0; c < sizeof ref_cases / sizeof ref_cases[0]; c++)
        for (size_t m = 0; m < sizeof ref_modes / sizeof ref_modes[0]; m++) check_case_mode(&ref_cases[c], ref_modes[m], pools);
    threadpool_free(pools[0]);
    threadpool_free(pools[1]);
}

void suite_reference(void) {
    test_run("reference_equals_fast_path_every_level", test_fast_path_equals_reference);
}
