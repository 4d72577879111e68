/*
 * engine/transformer.h - the LLaMA forward pass: tokens in (a prompt in one batched call,
 * or one generated token), next-token logits out, with every matmul in float32 or in one
 * of the integer pipelines of docs/SPEC.md section 5. This is the fast path
 * (engine/forward.c); engine/reference.h is the plain one it must equal.
 */
#ifndef ENGINE_TRANSFORMER_H
#define ENGINE_TRANSFORMER_H

#include <stddef.h>

#include "engine/kv_cache.h" /* kv_cache_bytes: the memory of a run's cache */
#include "kernels/threadpool.h"
#include "weights/model.h"

typedef struct Transformer Transformer;

/* Builds a transformer over loaded weights (which must outlive it) and allocates its
 * activations and a KV cache of n_ctx positions (1 .. the model's seq_len: the context a
 * run will use, not necessarily the longest the model knows), quantized as the weights'
 * QuantConfig says. pool may be NULL (one thread). NULL with err set on failure. */
Transformer *transformer_new(const ModelWeights *w, ThreadPool *pool, int n_ctx, char *err,
                             size_t errlen);
void transformer_free(Transformer *t);

const ModelConfig *transformer_config(const Transformer *t);

/* The positions its KV cache holds (n_ctx of transformer_new). */
int transformer_context(const Transformer *t);

/* Runs n tokens at positions pos .. pos + n - 1 (0-based; the KV cache must hold
 * positions 0 .. pos - 1 from earlier calls), in chunks that share each weight pass: the
 * batched prefill of a prompt. If all_logits is not NULL it receives the logits of every
 * token, [n][vocab_size]; otherwise only the last token's are computed. Returns the last
 * token's logits (in all_logits, or in a buffer owned by the transformer and overwritten
 * by the next call; callers may modify it). In the integer modes the result is
 * bit-identical to running the tokens one at a time, and to engine/reference.h.
 * Returns NULL when an activation overflowed float32 (weights too large to run):
 * transformer_error says where. */
float *transformer_run(Transformer *t, const int *tokens, int n, int pos, float *all_logits);

/* Why the last transformer_run returned NULL. */
const char *transformer_error(const Transformer *t);

/* One token at position pos: transformer_run with n = 1. */
float *transformer_forward(Transformer *t, int token, int pos);

/* 1 if no value of x[0..n) is NaN or infinite: what transformer_run checks of every
 * layer's output and of the logits. */
int all_finite(const float *x, size_t n);

#endif
