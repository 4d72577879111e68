/*
 * engine/reference.h - the forward pass as docs/SPEC.md defines it, one token at a time in
 * plain loops: no threads, no SIMD, no batching. It is the text to read to learn how
 * W4A4KV4 inference works, and the definition the fast path (engine/transformer.h) is
 * tested against: in every mode the two give the same logits, bit for bit.
 */
#ifndef ENGINE_REFERENCE_H
#define ENGINE_REFERENCE_H

#include <stddef.h>

#include "weights/model.h"

typedef struct Reference Reference;

/* A reference forward pass over loaded weights (which must outlive it), with a cache of
 * n_ctx positions (1 .. seq_len). NULL with err set when out of memory. */
Reference *reference_new(const ModelWeights *w, int n_ctx, char *err, size_t errlen);
void reference_free(Reference *r);

/* The logits [vocab_size] after token at position pos (positions 0 .. pos - 1 must have
 * been run before). The buffer is the reference's own, overwritten by the next call. */
float *reference_forward(Reference *r, int token, int pos);

/* What an observer of the pass is shown (the explain mode's probe, engine/probe.h), each
 * after the step it names; any callback may be NULL. The pass computes the same with or
 * without one. Layers count from 0; the classifier's is -1. */
typedef struct {
    void *ctx;
    /* A product y = W x at position pos: its float input [W->cols] and output [W->rows]. */
    void (*linear)(void *ctx, int layer, const Linear *W, const float *x, const float *y, int pos);
    /* Kv head h's key (after RoPE) and value at pos, as floats, before they are cached. */
    void (*kv)(void *ctx, int layer, int h, int pos, const float *key, const float *value);
    /* Query head h (reading kv head kvh) at pos: its float query [head_size], its scores over
     * positions 0 .. pos (divided by sqrt(head_size)), their softmax, p' = the probabilities
     * times the value scales (NULL for float32 values) and its output [head_size]. */
    void (*head)(void *ctx, int layer, int h, int kvh, int pos, const float *query, const float *scores,
                 const float *probs, const float *p_scaled, const float *out);
} ReferenceWatch;

/* Attaches an observer (copied), or detaches it with NULL. */
void reference_watch(Reference *r, const ReferenceWatch *watch);

#endif
