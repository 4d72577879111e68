/*
 * tests/synth_model.h - llama2.c checkpoints of a given shape with seeded random weights.
 *
 * For tests (a model large enough to split across threads) and for benchmarks (the shapes
 * of the TinyStories models, which cannot be downloaded everywhere): the speed of the
 * kernels does not depend on the weights' values. The text such a model writes is noise;
 * never use one to judge accuracy.
 */
#ifndef TESTS_SYNTH_MODEL_H
#define TESTS_SYNTH_MODEL_H

#include <stdint.h>
#include <stdio.h>

typedef struct {
    const char *name;
    int dim, hidden_dim, n_layers, n_heads, n_kv_heads, vocab_size, seq_len;
} SynthShape;

/* The shapes of llama2.c's stories15M, stories42M and stories110M; NULL if unknown. */
const SynthShape *synth_shape(const char *name);

/* Writes a checkpoint: weights uniform in [-0.05, 0.05] (about the spread of trained
 * ones), norm weights 1, a shared classifier. Returns 0, or -1 when writing fails. */
int synth_write(FILE *f, const SynthShape *s, uint64_t seed);

#endif
