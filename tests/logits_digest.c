/*
 * tests/logits_digest.c - one line per SIMD level, golden model and mode: a 64-bit hash of
 * the logits the fast path gives at every position of the model's golden prompt.
 *
 *   logits_digest        (from the repository root)
 *
 * `make test-compilers` builds this program with gcc and with clang and requires the two
 * outputs to be identical: float results must not depend on the compiler (no contraction
 * into FMAs, no reordering), in any mode, at any level. Every level this CPU can run is
 * chosen in turn (simd_use) before the model is loaded, so each kernel file compiled with
 * its own instruction-set flags is covered, not only the level the CPU picks.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/transformer.h"
#include "kernels/simd.h"
#include "weights/model.h"

static const char *const models[][2] = {
    {"models/stories260K.bin", "tests/data/golden/stories260K/lily.tokens"},
    {"tests/data/llama2xs.bin", "tests/data/golden/llama2xs/park.tokens"},
    {"tests/data/wide64.bin", "tests/data/golden/wide64/sara.tokens"},
};
static const char *const modes[] = {"fp32", "w8a16", "qrazor", "qrazor/g64/trunc", "qrazor/cls=fp32",
                                    "qrazor/cls=int8", "rtn4", "sdr-w", "sdr-a", "sdr-kv", "sdr-p",
                                    "fp32/rot", "quarot", "qrazor/rot"};

static uint64_t fnv1a(uint64_t h, const void *data, size_t n) {
    const unsigned char *p = data;
    for (size_t i = 0; i < n; i++) h = (h ^ p[i]) * 0x100000001b3ULL;
    return h;
}

/* The hash of the logits of `model` in `mode` at the current level. Returns 0, or -1 with
 * a message on stderr. */
static int digest(const char *model, const char *mode, const int *tokens, int n, uint64_t *hash) {
    char err[512];
    QuantConfig q;
    ModelWeights w;
    if (quant_config_parse(mode, &q, err, sizeof err) != 0 || model_open(&w, model, &q, NULL, err, sizeof err) != 0) {
        fprintf(stderr, "error: %s\n", err);
        return -1;
    }
    Transformer *t = transformer_new(&w, NULL, n, err, sizeof err);
    float *logits = malloc((size_t)n * w.cfg.vocab_size * sizeof *logits);
    const int ok = t && logits && transformer_run(t, tokens, n, 0, logits);
    if (ok) *hash = fnv1a(0xcbf29ce484222325ULL, logits, (size_t)n * w.cfg.vocab_size * sizeof *logits);
    else if (!t) fprintf(stderr, "error: %s\n", err);
    else fprintf(stderr, "error: %s %s: the forward pass failed\n", model, mode);
    free(logits);
    transformer_free(t);
    model_close(&w);
    return ok ? 0 : -1;
}

int main(void) {
    for (int level = SIMD_SCALAR; level <= (int)simd_detect(); level++) {
        if (!simd_kernels((SimdLevel)level)) continue; /* not in this build */
        simd_use(simd_level_name((SimdLevel)level));
        for (size_t m = 0; m < sizeof models / sizeof models[0]; m++) {
            int tokens[4096], n = 0;
            FILE *f = fopen(models[m][1], "r");
            while (f && n < 4096 && fscanf(f, "%d", &tokens[n]) == 1) n++;
            if (f) fclose(f);
            if (n == 0) {
                fprintf(stderr, "error: cannot read %s\n", models[m][1]);
                return 1;
            }
            for (size_t k = 0; k < sizeof modes / sizeof modes[0]; k++) {
                uint64_t h;
                if (digest(models[m][0], modes[k], tokens, n, &h) != 0) return 1;
                printf("%016llx  %-6s %s %s\n", (unsigned long long)h, simd_level_name((SimdLevel)level),
                       models[m][0], modes[k]);
            }
        }
    }
    return 0;
}
