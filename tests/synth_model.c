/*
 * tests/synth_model.c - writes random llama2.c checkpoints (see synth_model.h).
 */
#include "tests/synth_model.h"

#include <stdlib.h>
#include <string.h>

static const SynthShape shapes[] = {
    {"stories15M", 288, 768, 6, 6, 6, 32000, 256},
    {"stories42M", 512, 1376, 8, 8, 8, 32000, 1024},
    {"stories110M", 768, 2048, 12, 12, 12, 32000, 1024},
};

const SynthShape *synth_shape(const char *name) {
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++)
        if (!strcmp(name, shapes[i].name)) return &shapes[i];
    return NULL;
}

/* Writes n floats: uniform in [-0.05, 0.05] from a splitmix64 stream, or all `fill`. */
static int write_floats(FILE *f, size_t n, uint64_t *rng, int random, float fill) {
    float buf[4096];
    while (n > 0) {
        const size_t k = n < 4096 ? n : 4096;
        for (size_t i = 0; i < k; i++) {
            if (!random) {
                buf[i] = fill;
                continue;
            }
            uint64_t z = (*rng += 0x9E3779B97F4A7C15ULL);
            z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
            z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
            z ^= z >> 31;
            buf[i] = (float)((double)(z >> 11) / 9007199254740992.0 - 0.5) * 0.1f;
        }
        if (fwrite(buf, sizeof(float), k, f) != k) return -1;
        n -= k;
    }
    return 0;
}

int synth_write(FILE *f, const SynthShape *s, uint64_t seed) {
    const int32_t header[7] = {s->dim, s->hidden_dim, s->n_layers, s->n_heads, s->n_kv_heads,
                               s->vocab_size, s->seq_len};
    const size_t dim = (size_t)s->dim, hid = (size_t)s->hidden_dim, L = (size_t)s->n_layers,
                 hs = dim / (size_t)s->n_heads, kv = hs * (size_t)s->n_kv_heads;
    uint64_t rng = seed;
    /* In file order: embedding, rms_att, wq wk wv wo, rms_ffn, w1 w2 w3, rms_final, RoPE. */
    const struct {
        size_t n;
        int random;
        float fill;
    } parts[] = {
        {(size_t)s->vocab_size * dim, 1, 0}, {L * dim, 0, 1}, {L * dim * dim, 1, 0},
        {L * kv * dim, 1, 0}, {L * kv * dim, 1, 0}, {L * dim * dim, 1, 0}, {L * dim, 0, 1},
        {L * hid * dim, 1, 0}, {L * dim * hid, 1, 0}, {L * hid * dim, 1, 0}, {dim, 0, 1},
        {(size_t)s->seq_len * hs, 0, 0},
    };
    if (fwrite(header, sizeof header, 1, f) != 1) return -1;
    for (size_t i = 0; i < sizeof parts / sizeof parts[0]; i++)
        if (write_floats(f, parts[i].n, &rng, parts[i].random, parts[i].fill) != 0) return -1;
    return 0;
}
