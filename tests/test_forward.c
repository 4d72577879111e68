/*
 * tests/test_forward.c - the forward pass against the oracle's golden logits and greedy
 * continuations (tests/data/golden, made by an independent NumPy implementation).
 *
 * Tolerance (golden/README.md): the oracle accumulates fp32 matmuls in float64; a float32
 * engine lands within about 1e-4 of the logit range. We require max |ours - golden| <=
 * 1e-4 * (max - min of the golden logits at that position) at every position, and greedy
 * ids equal to the golden ones, all 64 of them.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/sampler.h"
#include "engine/transformer.h"
#include "tests/test.h"
#include "weights/checkpoint.h"

typedef struct {
    const char *model;     /* checkpoint path */
    const char *case_path; /* tests/data/golden/MODEL/CASE */
} GoldenCase;

static const GoldenCase golden_cases[] = {
    {"models/stories260K.bin", "tests/data/golden/stories260K/bos"},
    {"models/stories260K.bin", "tests/data/golden/stories260K/lily"},
    {"tests/data/llama2xs.bin", "tests/data/golden/llama2xs/park"},
};

/* Largest |a - b| over n values, relative to the range of b. */
static double rel_max_diff(const float *a, const float *b, int n) {
    float lo = b[0], hi = b[0];
    double worst = 0;
    for (int i = 0; i < n; i++) {
        lo = b[i] < lo ? b[i] : lo;
        hi = b[i] > hi ? b[i] : hi;
        double d = fabs((double)a[i] - (double)b[i]);
        worst = d > worst ? d : worst;
    }
    return worst / (double)(hi - lo);
}

static void check_case(const GoldenCase *gc, const char *mode, double tolerance) {
    char path[256], err[512] = "";
    Checkpoint ck;
    if (!CHECKF(checkpoint_open(&ck, gc->model, err, sizeof err) == 0, "%s", err)) return;
    Transformer *t = transformer_new(&ck, err, sizeof err);
    if (!CHECKF(t != NULL, "%s", err)) {
        checkpoint_close(&ck);
        return;
    }
    const int vocab = ck.cfg.vocab_size;
    int *tokens, *greedy;
    snprintf(path, sizeof path, "%s.tokens", gc->case_path);
    int n_tokens = test_read_ints(path, &tokens);
    snprintf(path, sizeof path, "%s.%s.greedy", gc->case_path, mode);
    int n_greedy = test_read_ints(path, &greedy);
    snprintf(path, sizeof path, "%s.%s.logits.f32", gc->case_path, mode);
    size_t size;
    float *golden = (float *)test_read_file(path, &size);
    if (n_tokens > 0 && n_greedy > 0 && golden &&
        CHECKF(size == (size_t)n_tokens * vocab * sizeof(float), "%s: %zu bytes", path, size)) {
        double worst = 0;
        float *logits = NULL;
        for (int pos = 0; pos < n_tokens; pos++) {
            logits = transformer_forward(t, tokens[pos], pos);
            double d = rel_max_diff(logits, golden + (size_t)pos * vocab, vocab);
            worst = d > worst ? d : worst;
            CHECKF(d <= tolerance, "%s %s pos %d: logits differ by %.3g of the range (max %.1g)",
                   gc->case_path, mode, pos, d, tolerance);
        }
        printf("    %s %s: max logit difference %.2e of the range\n", gc->case_path, mode, worst);
        int mismatches = 0;
        for (int i = 0; i < n_greedy; i++) {
            int next = sample_argmax(logits, vocab);
            if (next != greedy[i] && mismatches++ == 0)
                CHECKF(0, "%s %s: greedy id %d is %d, golden %d", gc->case_path, mode, i, next,
                       greedy[i]);
            logits = transformer_forward(t, greedy[i], n_tokens + i); /* follow the golden path */
        }
        CHECKF(mismatches == 0, "%s %s: %d of %d greedy ids differ", gc->case_path, mode,
               mismatches, n_greedy);
    }
    free(golden);
    if (n_tokens > 0) free(tokens);
    if (n_greedy > 0) free(greedy);
    transformer_free(t);
    checkpoint_close(&ck);
}

static void test_fp32_matches_golden(void) {
    for (size_t i = 0; i < sizeof golden_cases / sizeof golden_cases[0]; i++)
        check_case(&golden_cases[i], "fp32", 1e-4);
}

void suite_forward(void) { test_run("forward_fp32_matches_golden", test_fp32_matches_golden); }
