/*
 * engine/attention.c - attention over the cache, in float32 or on razored operands.
 *
 * A chunk's rows: row r is token r / heads_per_kv, query head h * heads_per_kv +
 * r % heads_per_kv. Row r may see positions 0 .. pos + r / heads_per_kv (causal).
 */
#include "engine/attention.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/floatops.h"
#include "kernels/matmul.h"

int attn_scratch_init(AttnScratch *sc, const KVCache *kv, const QuantConfig *q, int max_rows) {
    memset(sc, 0, sizeof *sc);
    const int hs = kv->head_size, n_ctx = kv->n_ctx;
    int failed = r4_acts_alloc(&sc->kv, 1, hs, q->group) != 0;
    if (kv->key_kind != QUANT_F32) {
        failed |= qacts_init(&sc->q, q->acts, q->keys, max_rows, hs, q->group) != 0;
        failed |= qacts_init(&sc->p, q->probs, q->values, max_rows, n_ctx, q->group) != 0;
    }
    sc->att = malloc((size_t)max_rows * n_ctx * sizeof(float));
    sc->pf = malloc((size_t)max_rows * n_ctx * sizeof(float));
    sc->out = malloc((size_t)max_rows * hs * sizeof(float));
    return failed || !sc->att || !sc->pf || !sc->out ? -1 : 0;
}

void attn_scratch_free(AttnScratch *sc) {
    qacts_free(&sc->q), qacts_free(&sc->p);
    r4_acts_free(&sc->kv);
    free(sc->att), free(sc->pf), free(sc->out);
    memset(sc, 0, sizeof *sc);
}

/* Where row r's query is in ch->q (and its output goes in ch->out), and the last
 * position it sees. */
static size_t row_at(const AttnChunk *ch, int h, int r) {
    const int token = r / ch->heads_per_kv, head = h * ch->heads_per_kv + r % ch->heads_per_kv;
    return (size_t)token * ch->dim + (size_t)head * ch->head_size;
}

static int row_last(const AttnChunk *ch, int r) { return ch->pos + r / ch->heads_per_kv; }

/* float32, as llama2.c: a dot product per position, softmax, a weighted sum of values. */
static void attend_f32(const KVCache *kv, int i, int h, const AttnChunk *ch, AttnScratch *sc) {
    const int hs = ch->head_size, rows = ch->n * ch->heads_per_kv;
    const float *keys = kv->k_f32 + (size_t)i * kv->n_ctx * hs, *values = kv->v_f32 + (size_t)i * kv->n_ctx * hs;
    for (int r = 0; r < rows; r++) {
        const float *q = ch->q + row_at(ch, h, r);
        float *att = sc->att, *out = ch->out + row_at(ch, h, r);
        const int last = row_last(ch, r);
        for (int t = 0; t <= last; t++) {
            float score = 0.0f;
            for (int d = 0; d < hs; d++) score += q[d] * keys[(size_t)t * hs + d];
            att[t] = score;
        }
        softmax_scaled(att, last + 1, sqrtf((float)hs));
        memset(out, 0, (size_t)hs * sizeof *out);
        for (int t = 0; t <= last; t++)
            for (int d = 0; d < hs; d++) out[d] += att[t] * values[(size_t)t * hs + d];
    }
}

/* The integer pipeline (docs/SPEC.md section 4). */
static void attend_quantized(const KVCache *kv, int i, int h, const AttnChunk *ch, AttnScratch *sc,
                             const QuantConfig *q) {
    const int hs = ch->head_size, n_ctx = kv->n_ctx, rows = ch->n * ch->heads_per_kv;
    const int len = ch->pos + ch->n; /* positions 0 .. len - 1 exist */

    /* Scores: every row's query quantized as an activation, times the keys of positions
     * 0 .. len - 1 (rows of K): att[r][t] = ((float)acc * Sq[r]) * Sk[t]. */
    qacts_shape(&sc->q, rows, hs);
    for (int r = 0; r < rows; r++) qacts_quantize(&sc->q, r, ch->q + row_at(ch, h, r), q);
    linear_apply_rows(sc->att, (size_t)n_ctx, &kv->keys[i], len, NULL, rows, &sc->q, NULL);

    /* Probabilities, each value's scale folded in (zero past a row's last position, which
     * leaves its scale and shifts what they would be alone), quantized over positions. */
    const float *sv = kv->v_scale + (size_t)i * n_ctx;
    qacts_shape(&sc->p, rows, len);
    for (int r = 0; r < rows; r++) {
        float *att = sc->att + (size_t)r * n_ctx, *pf = sc->pf + (size_t)r * n_ctx;
        const int last = row_last(ch, r);
        softmax_scaled(att, last + 1, sqrtf((float)hs));
        for (int t = 0; t < len; t++) pf[t] = t <= last ? att[t] * sv[t] : 0.0f;
        qacts_quantize(&sc->p, r, pf, q);
    }

    /* Weighted values: V^T (rows = value dimensions) times p'; V^T's row scales are 1, and
     * a 4-bit value's shifts are V^T's column shifts: sum_t (p'_t * (v_t,d << sv[t, d/G]))
     * << sp[t/G], docs/SPEC.md section 4 summed group by group of positions. */
    linear_apply_rows(sc->out, (size_t)hs, &kv->values_t[i], hs, NULL, rows, &sc->p, NULL);
    for (int r = 0; r < rows; r++)
        memcpy(ch->out + row_at(ch, h, r), sc->out + (size_t)r * hs, (size_t)hs * sizeof(float));
}

void attention_kv_head(const KVCache *kv, int i, int h, const AttnChunk *ch, AttnScratch *sc,
                       const QuantConfig *q) {
    if (kv->key_kind == QUANT_F32)
        attend_f32(kv, i, h, ch, sc);
    else
        attend_quantized(kv, i, h, ch, sc, q);
}
