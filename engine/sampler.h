/*
 * engine/sampler.h - picks the next token from logits, with llama2.c's semantics:
 *
 *   temperature == 0      greedy: the highest logit (the first one on ties)
 *   otherwise             softmax(logits / temperature), then
 *     top_p in (0, 1)     nucleus: sample among the most likely tokens whose cumulative
 *                         probability first exceeds top_p
 *     top_p <= 0 or >= 1  sample from the whole distribution
 *
 * Randomness comes from a seeded xorshift64* generator, so a seed reproduces a run.
 */
#ifndef ENGINE_SAMPLER_H
#define ENGINE_SAMPLER_H

#include <stdint.h>

typedef struct {
    float prob;
    int index;
} ProbIndex;

typedef struct {
    int vocab_size;
    float temperature;
    float top_p;
    uint64_t rng_state;
    ProbIndex *candidates; /* [vocab_size] scratch for nucleus sampling */
} Sampler;

/* Returns 0, or -1 when out of memory. The seed must not be 0 (xorshift's fixed point). */
int sampler_init(Sampler *s, int vocab_size, float temperature, float top_p, uint64_t seed);
void sampler_free(Sampler *s);

/* Picks the next token. Modifies logits (they become probabilities unless greedy). */
int sampler_sample(Sampler *s, float *logits);

/* The building blocks, exposed for tests. coin is uniform in [0, 1). */
int sample_argmax(const float *x, int n);
int sample_from(const float *probs, int n, float coin);
int sample_top_p(const float *probs, int n, float top_p, ProbIndex *scratch, float coin);
float sampler_random_f32(uint64_t *state);

#endif
