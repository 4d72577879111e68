/*
 * tests/logits_digest.c - one line per golden model and mode: a 64-bit hash of the logits
 * the fast path gives at every position of the model's golden prompt.
 *
 *   logits_digest        (from the repository root)
 *
 * `make test-compilers` builds this program with gcc and with clang and requires the two
 * outputs to be identical: float results must not depend on the compiler (no contraction
 * into FMAs, no reordering), in any mode.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/transformer.h"
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

int main(void) {
    char err[512];
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
            QuantConfig q;
            ModelWeights w;
            Transformer *t = NULL;
            if (quant_config_parse(modes[k], &q, err, sizeof err) != 0 ||
                model_open(&w, models[m][0], &q, NULL, err, sizeof err) != 0 ||
                !(t = transformer_new(&w, NULL, n, err, sizeof err))) {
                fprintf(stderr, "error: %s\n", err);
                return 1;
            }
            float *logits = malloc((size_t)n * w.cfg.vocab_size * sizeof *logits);
            if (!logits || !transformer_run(t, tokens, n, 0, logits)) {
                fprintf(stderr, "error: %s %s: the forward pass failed\n", models[m][0], modes[k]);
                return 1;
            }
            const uint64_t h = fnv1a(0xcbf29ce484222325ULL, logits, (size_t)n * w.cfg.vocab_size * sizeof *logits);
            printf("%016llx  %s %s\n", (unsigned long long)h, models[m][0], modes[k]);
            free(logits);
            transformer_free(t);
            model_close(&w);
        }
    }
    return 0;
}
