/*
 * weights/checkpoint.c - maps a llama2.c checkpoint and validates it before use.
 *
 * The order of checks matters: the header is checked alone first (so that the size
 * arithmetic below can never overflow), then the file size must equal exactly what the
 * header implies. Then every weight is read once, for values that cannot be run. Only then
 * are tensor pointers formed.
 */
#include "weights/checkpoint.h"

#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Number of floats in each tensor of the file, in file order, computed with overflow
 * checks: three factors of up to 2^21 could exceed 64 bits in principle. */
typedef struct {
    uint64_t emb, rms_att, wq, wk, wv, wo, rms_ffn, w1, w2, w3, rms_final, freq, wcls;
} TensorSizes;

static int mul_u64(uint64_t a, uint64_t b, uint64_t *out) {
    if (a != 0 && b > UINT64_MAX / a) return -1;
    *out = a * b;
    return 0;
}

static int mul3(uint64_t a, uint64_t b, uint64_t c, uint64_t *out) {
    uint64_t ab;
    return mul_u64(a, b, &ab) || mul_u64(ab, c, out);
}

static int tensor_sizes(const ModelConfig *c, int shared, TensorSizes *t, uint64_t *total) {
    const uint64_t L = (uint64_t)c->n_layers, dim = (uint64_t)c->dim,
                   hid = (uint64_t)c->hidden_dim, kv = (uint64_t)config_kv_dim(c),
                   voc = (uint64_t)c->vocab_size, hs = (uint64_t)config_head_size(c);
    if (mul_u64(voc, dim, &t->emb) || mul_u64(L, dim, &t->rms_att) || mul3(L, dim, dim, &t->wq) ||
        mul3(L, kv, dim, &t->wk) || mul3(L, kv, dim, &t->wv) || mul3(L, dim, dim, &t->wo) ||
        mul_u64(L, dim, &t->rms_ffn) || mul3(L, hid, dim, &t->w1) || mul3(L, dim, hid, &t->w2) ||
        mul3(L, hid, dim, &t->w3) || mul_u64((uint64_t)c->seq_len, hs, &t->freq))
        return -1;
    t->rms_final = dim;
    t->wcls = shared ? 0 : t->emb;
    const uint64_t parts[] = {t->emb, t->rms_att, t->wq,  t->wk,        t->wv,   t->wo,  t->rms_ffn,
                              t->w1,  t->w2,      t->w3,  t->rms_final, t->freq, t->wcls};
    uint64_t sum = 0;
    for (size_t i = 0; i < sizeof parts / sizeof parts[0]; i++) {
        if (parts[i] > UINT64_MAX - sum) return -1;
        sum += parts[i];
    }
    *total = sum;
    return 0;
}

/* A NaN or infinite weight is corruption: quantizers would derive a NaN scale from it and
 * the float path would print noise. So is a finite weight large enough to overflow the
 * forward pass (3e38 as a norm gain, say). Both are errors at open, naming the tensor. The
 * scan that finds them reads every weight once, as integers: it costs a fraction of
 * reading the file from disk. */
static int check_values(const float *p, const TensorSizes *t, const ModelConfig *c, int shared,
                        const char *path, char *err, size_t errlen) {
    WeightMagnitudes mag = {0};
    mag.layers = calloc((size_t)c->n_layers, sizeof *mag.layers);
    if (!mag.layers) {
        snprintf(err, errlen, "%s: out of memory", path);
        return -1;
    }
    enum { WHOLE = -1 }; /* a tensor with one maximum, not one per layer */
    const struct {
        const char *name; /* NULL: not read */
        uint64_t n;
        double *whole;
        ptrdiff_t per_layer; /* offset of the field in LayerMagnitudes */
    } tensors[] = {{"token_embedding", t->emb, &mag.embedding, WHOLE},
                   {"rms_att", t->rms_att, NULL, offsetof(LayerMagnitudes, rms_att)},
                   {"wq", t->wq, NULL, offsetof(LayerMagnitudes, wq)},
                   {"wk", t->wk, NULL, offsetof(LayerMagnitudes, wk)},
                   {"wv", t->wv, NULL, offsetof(LayerMagnitudes, wv)},
                   {"wo", t->wo, NULL, offsetof(LayerMagnitudes, wo)},
                   {"rms_ffn", t->rms_ffn, NULL, offsetof(LayerMagnitudes, rms_ffn)},
                   {"w1", t->w1, NULL, offsetof(LayerMagnitudes, w1)},
                   {"w2", t->w2, NULL, offsetof(LayerMagnitudes, w2)},
                   {"w3", t->w3, NULL, offsetof(LayerMagnitudes, w3)},
                   {"rms_final", t->rms_final, &mag.rms_final, WHOLE},
                   {NULL, t->freq, NULL, WHOLE}, /* legacy RoPE tables: never read */
                   {"wcls", t->wcls, &mag.cls, WHOLE}};
    int bad = 0;
    for (size_t k = 0; k < sizeof tensors / sizeof tensors[0] && !bad; k++) {
        const int parts = tensors[k].whole ? 1 : c->n_layers;
        const uint64_t each = tensors[k].n / (uint64_t)parts;
        for (int l = 0; tensors[k].name && l < parts && !bad; l++) {
            uint64_t at = 0;
            const float *x = p + (uint64_t)l * each;
            const float max = float_abs_max(x, each, &at);
            if (max < 0) {
                snprintf(err, errlen, "%s: corrupt: tensor %s holds %s at element %llu", path,
                         tensors[k].name, isnan(x[at]) ? "NaN" : "infinity",
                         (unsigned long long)((uint64_t)l * each + at));
                bad = 1;
            } else if (tensors[k].whole) {
                *tensors[k].whole = max;
            } else {
                *(double *)((char *)&mag.layers[l] + tensors[k].per_layer) = max;
            }
        }
        p += tensors[k].n;
    }
    if (shared) mag.cls = mag.embedding;
    char why[300];
    if (!bad && magnitudes_check(c, &mag, why, sizeof why) != 0) {
        snprintf(err, errlen, "%s: corrupt: %s", path, why);
        bad = 1;
    }
    free(mag.layers);
    return bad ? -1 : 0;
}

int checkpoint_open(Checkpoint *ck, const char *path, char *err, size_t errlen) {
    memset(ck, 0, sizeof *ck);
    void *map;
    size_t size;
    if (map_file(path, &map, &size, err, errlen) != 0) return -1;

    int32_t header[7];
    if (size < sizeof header) {
        snprintf(err, errlen, "%s: truncated: %zu bytes, a llama2.c checkpoint header is 28", path,
                 size);
        unmap_file(map, size);
        return -1;
    }
    memcpy(header, map, sizeof header);
    ModelConfig c = {header[0], header[1],        header[2],        header[3],      header[4],
                     header[5], header[6], LLAMA2_ROPE_THETA, LLAMA2_NORM_EPS, 0, 0, 0, 0};
    int shared = c.vocab_size > 0;
    if (c.vocab_size < 0 && c.vocab_size != INT32_MIN) c.vocab_size = -c.vocab_size;

    char why[256];
    if (config_validate(&c, why, sizeof why) != 0) {
        snprintf(err, errlen, "%s: not a valid llama2.c checkpoint: %s", path, why);
        unmap_file(map, size);
        return -1;
    }
    TensorSizes t;
    uint64_t floats;
    if (tensor_sizes(&c, shared, &t, &floats) != 0 || floats > (UINT64_MAX - sizeof header) / 4) {
        snprintf(err, errlen, "%s: header sizes overflow 64-bit arithmetic", path);
        unmap_file(map, size);
        return -1;
    }
    const uint64_t expect = sizeof header + 4 * floats;
    if ((uint64_t)size != expect) {
        snprintf(err, errlen,
                 "%s: file is %zu bytes but its header (dim %d, hidden %d, layers %d, heads "
                 "%d/%d, vocab %d, seq %d%s) implies %llu: %s",
                 path, size, c.dim, c.hidden_dim, c.n_layers, c.n_heads, c.n_kv_heads,
                 c.vocab_size, c.seq_len, shared ? "" : ", own classifier",
                 (unsigned long long)expect,
                 (uint64_t)size < expect ? "truncated" : "trailing bytes (wrong format?)");
        unmap_file(map, size);
        return -1;
    }

    const float *p = (const float *)((const char *)map + sizeof header);
    if (check_values(p, &t, &c, shared, path, err, errlen) != 0) {
        unmap_file(map, size);
        return -1;
    }
    ck->cfg = c;
    ck->shared_classifier = shared;
    ck->token_embedding = p, p += t.emb;
    ck->rms_att = p, p += t.rms_att;
    ck->wq = p, p += t.wq;
    ck->wk = p, p += t.wk;
    ck->wv = p, p += t.wv;
    ck->wo = p, p += t.wo;
    ck->rms_ffn = p, p += t.rms_ffn;
    ck->w1 = p, p += t.w1;
    ck->w2 = p, p += t.w2;
    ck->w3 = p, p += t.w3;
    ck->rms_final = p, p += t.rms_final;
    p += t.freq; /* legacy RoPE tables: recomputed by the engine */
    ck->wcls = shared ? ck->token_embedding : p;
    ck->map = map;
    ck->map_size = size;
    return 0;
}

void checkpoint_close(Checkpoint *ck) {
    unmap_file(ck->map, ck->map_size);
    memset(ck, 0, sizeof *ck);
}
