/*
 * engine/probe.c - float references and error energies for the explain mode.
 */
#include "engine/probe.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static const char *const site_names[N_SITES] = {"wq", "wk", "wv", "wo", "w1", "w2", "w3", "qk", "pv"};

const char *site_name(Site s) { return site_names[s]; }

int site_parse(const char *name, Site *s) {
    for (int i = 0; i < N_SITES; i++) {
        if (!strcmp(name, site_names[i])) {
            *s = (Site)i;
            return 0;
        }
    }
    return -1;
}

int probe_init(Probe *p, const ModelConfig *c) {
    const size_t cache = (size_t)c->n_layers * c->seq_len * config_kv_dim(c);
    const int k = c->hidden_dim > c->seq_len ? c->hidden_dim : c->seq_len;
    p->n_layers = c->n_layers;
    p->seq_len = c->seq_len;
    p->kv_dim = config_kv_dim(c);
    p->head_size = config_head_size(c);
    p->captured = 0;
    p->signal = calloc((size_t)c->n_layers * N_SITES, sizeof *p->signal);
    p->noise = calloc((size_t)c->n_layers * N_SITES, sizeof *p->noise);
    p->x = calloc((size_t)(k > c->dim ? k : c->dim), sizeof *p->x);
    p->w = calloc((size_t)(k > c->dim ? k : c->dim), sizeof *p->w);
    p->v_rows = calloc((size_t)c->seq_len * p->head_size, sizeof *p->v_rows);
    p->keys = calloc(cache, sizeof *p->keys);
    p->values = calloc(cache, sizeof *p->values);
    if (!p->signal || !p->noise || !p->x || !p->w || !p->v_rows || !p->keys || !p->values) {
        probe_free(p);
        return -1;
    }
    return 0;
}

void probe_free(Probe *p) {
    free(p->signal), free(p->noise), free(p->x), free(p->w), free(p->v_rows);
    free(p->keys), free(p->values);
    p->signal = p->noise = NULL;
    p->keys = p->values = p->x = p->w = p->v_rows = NULL;
}

double probe_sqnr(const Probe *p, int layer, Site s) {
    const double sig = p->signal[layer * N_SITES + s], noise = p->noise[layer * N_SITES + s];
    return noise > 0 ? 10.0 * log10(sig / noise) : INFINITY;
}

static void accumulate(Probe *p, int layer, Site s, double ref, double got) {
    p->signal[layer * N_SITES + s] += ref * ref;
    p->noise[layer * N_SITES + s] += (got - ref) * (got - ref);
}

static int wanted(const Probe *p, int layer, Site s, int pos) {
    return layer == p->layer && s == p->site && pos == p->position;
}

/* The float32 weights of linear s of layer l in the float model. */
static const float *float_linear(const ModelWeights *floats, int l, Site s) {
    const LayerWeights *L = &floats->layers[l];
    const Linear *const linears[SITE_QK] = {&L->wq, &L->wk, &L->wv, &L->wo, &L->w1, &L->w2, &L->w3};
    return s < SITE_QK ? linears[s]->f32 : NULL;
}

/* Which of layer `layer`'s seven linears W is (N_SITES: none of them). */
static Site site_of(const ModelWeights *m, int layer, const Linear *W) {
    const LayerWeights *L = &m->layers[layer];
    const Linear *const linears[SITE_QK] = {&L->wq, &L->wk, &L->wv, &L->wo, &L->w1, &L->w2, &L->w3};
    for (int s = 0; s < SITE_QK; s++)
        if (linears[s] == W) return (Site)s;
    return N_SITES;
}

/* A linear of a block (not the classifier): its float32 reference from the same input. */
static void watch_linear(void *ctx, int layer, const Linear *W, const float *x, const float *y, int pos) {
    Probe *p = ctx;
    const Site s = layer < 0 ? N_SITES : site_of(p->weights, layer, W);
    if (s == N_SITES) return;
    const float *w = float_linear(p->floats, layer, s);
    const int rows = W->rows, cols = W->cols;
    int best = 0;
    double best_ref = 0;
    for (int r = 0; r < rows; r++) {
        double ref = 0;
        for (int i = 0; i < cols; i++) ref += (double)w[(size_t)r * cols + i] * x[i];
        accumulate(p, layer, s, ref, y[r]);
        if (fabs(ref) > fabs(best_ref)) best = r, best_ref = ref;
    }
    if (!wanted(p, layer, s, pos)) return;
    memcpy(p->x, x, (size_t)cols * sizeof *x);
    memcpy(p->w, w + (size_t)best * cols, (size_t)cols * sizeof *w);
    p->k = cols;
    p->row = best;
    p->y = y[best];
    p->y_ref = (float)best_ref;
    p->captured = 1;
}

/* Float copies of the keys and values, for the float32 references of attention. */
static void watch_kv(void *ctx, int layer, int kv_head, int pos, const float *k, const float *v) {
    Probe *p = ctx;
    const size_t off = ((size_t)layer * p->seq_len + pos) * p->kv_dim + (size_t)kv_head * p->head_size;
    memcpy(p->keys + off, k, (size_t)p->head_size * sizeof *k);
    memcpy(p->values + off, v, (size_t)p->head_size * sizeof *v);
}

static const float *cached(const Probe *p, const float *cache, int layer, int kv_head, int pos) {
    return cache + ((size_t)layer * p->seq_len + pos) * p->kv_dim + (size_t)kv_head * p->head_size;
}

static void probe_scores(Probe *p, int layer, int h, int kv_head, int pos, const float *q, const float *scores) {
    const int hs = p->head_size;
    int best = 0;
    double best_ref = -INFINITY;
    for (int t = 0; t <= pos; t++) {
        const float *k = cached(p, p->keys, layer, kv_head, t);
        double ref = 0;
        for (int d = 0; d < hs; d++) ref += (double)q[d] * k[d];
        ref /= sqrt((double)hs);
        accumulate(p, layer, SITE_QK, ref, scores[t]);
        if (ref > best_ref) best = t, best_ref = ref;
    }
    if (!wanted(p, layer, SITE_QK, pos) || h != p->head) return;
    memcpy(p->x, q, (size_t)hs * sizeof *q);
    memcpy(p->w, cached(p, p->keys, layer, kv_head, best), (size_t)hs * sizeof *q);
    p->k = hs;
    p->row = best;
    p->y = scores[best];
    p->y_ref = (float)best_ref;
    p->captured = 1;
}

static void probe_values(Probe *p, int layer, int h, int kv_head, int pos, const float *probs,
                         const float *p_scaled, const float *out) {
    const int hs = p->head_size;
    int best = 0;
    double best_ref = 0;
    for (int d = 0; d < hs; d++) {
        double ref = 0;
        for (int t = 0; t <= pos; t++) ref += (double)probs[t] * cached(p, p->values, layer, kv_head, t)[d];
        accumulate(p, layer, SITE_PV, ref, out[d]);
        if (fabs(ref) > fabs(best_ref)) best = d, best_ref = ref;
    }
    if (!wanted(p, layer, SITE_PV, pos) || h != p->head) return;
    for (int t = 0; t <= pos; t++) {
        const float *v = cached(p, p->values, layer, kv_head, t);
        p->x[t] = p_scaled ? p_scaled[t] : probs[t]; /* p', as the engine forms it */
        memcpy(p->v_rows + (size_t)t * hs, v, (size_t)hs * sizeof *v);
    }
    p->k = pos + 1;
    p->row = best;
    p->y = out[best];
    p->y_ref = (float)best_ref;
    p->captured = 1;
}

static void watch_head(void *ctx, int layer, int h, int kv_head, int pos, const float *query, const float *scores,
                       const float *probs, const float *p_scaled, const float *out) {
    Probe *p = ctx;
    if (p_scaled) probe_scores(p, layer, h, kv_head, pos, query, scores); /* the quantized scores */
    probe_values(p, layer, h, kv_head, pos, probs, p_scaled, out);
}

void probe_attach(Probe *p, Reference *r, const ModelWeights *m, const ModelWeights *floats) {
    p->weights = m;
    p->floats = floats;
    reference_watch(r, &(ReferenceWatch){p, watch_linear, watch_kv, watch_head});
}
