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
 * Every size is checked against the file before a single weight is read; then every
 * weight, for NaN, infinity and magnitudes that could overflow the forward pass.
 */
#ifndef WEIGHTS_CHECKPOINT_H
#define WEIGHTS_CHECKPOINT_H

#include <stddef.h>

#include "weights/file.h"

/* Float32 weights of one checkpoint; every pointer points into the read-only mapping. */
typedef struct {
    ModelConfig cfg;
    int shared_classifier; /* 1: the classifier is the token embedding */
    const float *token_embedding, *rms_att, *wq, *wk, *wv, *wo, *rms_ffn, *w1, *w2, *w3,
        *rms_final, *wcls;
    void *map;       /* the whole file */
    size_t map_size; /* its size in bytes */
} Checkpoint;

/* Maps and validates a llama2.c checkpoint. Returns 0, or -1 with a one-line message
 * naming the file and the problem in err. */
int checkpoint_open(Checkpoint *ck, const char *path, char *err, size_t errlen);
void checkpoint_close(Checkpoint *ck);

#endif
