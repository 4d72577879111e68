/*
 * weights/checkpoint.h - llama2.c "legacy" checkpoints, memory-mapped and validated.
 *
 * File layout (all little-endian):
 *
 *   int32 header[7]  dim, hidden_dim, n_layers, n_heads, n_kv_heads, vocab_size, seq_len
 *                    (vocab_size < 0 means a separate classifier matrix follows)
 *   float32 tensors, in this order:
 *     token_embedding [vocab_size][dim]
 *     rms_att         [n_layers][dim]
 *     wq              [n_layers][dim][dim]            rows = outputs, cols = inputs
 *     wk              [n_layers][kv_dim][dim]         kv_dim = n_kv_heads * head_size
 *     wv              [n_layers][kv_dim][dim]
 *     wo              [n_layers][dim][dim]
 *     rms_ffn         [n_layers][dim]
 *     w1              [n_layers][hidden_dim][dim]     gate projection
 *     w2              [n_layers][dim][hidden_dim]     down projection
 *     w3              [n_layers][hidden_dim][dim]     up projection
 *     rms_final       [dim]
 *     freq_cis        [seq_len][head_size]            unused (RoPE is recomputed)
 *     wcls            [vocab_size][dim]               only when vocab_size < 0
 *
 * Every size is checked against the file before a single weight is read.
 */
#ifndef WEIGHTS_CHECKPOINT_H
#define WEIGHTS_CHECKPOINT_H

#include <stddef.h>

/* The architecture of a LLaMA-style transformer, as the checkpoint header gives it. */
typedef struct {
    int dim;        /* width of the residual stream */
    int hidden_dim; /* inner width of the SwiGLU feed-forward block */
    int n_layers;   /* transformer blocks */
    int n_heads;    /* query heads; head_size = dim / n_heads */
    int n_kv_heads; /* key/value heads; fewer than n_heads means grouped-query attention */
    int vocab_size; /* rows of the embedding and of the classifier */
    int seq_len;    /* longest context the model was trained for */
} ModelConfig;

static inline int config_head_size(const ModelConfig *c) { return c->dim / c->n_heads; }
static inline int config_kv_dim(const ModelConfig *c) { return config_head_size(c) * c->n_kv_heads; }

/* Weights of the 7 linears of every block (wq, wk, wv, wo, w1, w2, w3): the parameters
 * that W4 quantizes, and the unit of "bits per weight". */
static inline double config_linear_params(const ModelConfig *c) {
    const double kv = config_kv_dim(c);
    return (double)c->n_layers *
           (2.0 * c->dim * c->dim + 2.0 * kv * c->dim + 3.0 * (double)c->hidden_dim * c->dim);
}

/* Key and value entries of the cache at full context: the unit of "bits per KV entry". */
static inline double config_kv_entries(const ModelConfig *c) {
    return 2.0 * c->n_layers * c->seq_len * config_kv_dim(c);
}

/* Float32 weights of one checkpoint; every pointer points into the read-only mapping. */
typedef struct {
    ModelConfig cfg;
    int shared_classifier; /* 1: the classifier is the token embedding */
    const float *token_embedding, *rms_att, *wq, *wk, *wv, *wo, *rms_ffn, *w1, *w2, *w3,
        *rms_final, *wcls;
    void *map;       /* the whole file */
    size_t map_size; /* its size in bytes */
} Checkpoint;

/* Size limits that no LLaMA-family model on a CPU comes near; a header beyond them is
 * corrupt, not ambitious. */
enum { CHECKPOINT_MAX_DIM = 1 << 16, CHECKPOINT_MAX_LAYERS = 1024, CHECKPOINT_MAX_HEADS = 1024,
       CHECKPOINT_MAX_VOCAB = 1 << 21, CHECKPOINT_MAX_SEQ = 1 << 20 };

/* Checks that a header describes a model this engine can run (positive, within the limits
 * above, dim divisible by n_heads into an even head_size, n_heads divisible by
 * n_kv_heads). Returns 0, or -1 with the problem written to err. Shared by every file format. */
int config_validate(const ModelConfig *c, char *err, size_t errlen);

/* Maps and validates a llama2.c checkpoint. Returns 0, or -1 with a one-line message
 * naming the file and the problem in err. */
int checkpoint_open(Checkpoint *ck, const char *path, char *err, size_t errlen);
void checkpoint_close(Checkpoint *ck);

/* Maps a whole file read-only (used by every loader). Returns 0, or -1 with err set. An
 * empty file is an error: there is nothing to load. */
int map_file(const char *path, void **map, size_t *size, char *err, size_t errlen);
void unmap_file(void *map, size_t size);

#endif
