/*
 * engine/sampler.c - greedy, temperature and nucleus (top-p) sampling.
 */
#include "engine/sampler.h"

#include <stdlib.h>

#include "kernels/floatops.h"

int sampler_init(Sampler *s, int vocab_size, float temperature, float top_p, uint64_t seed) {
    s->vocab_size = vocab_size;
    s->temperature = temperature;
    s->top_p = top_p;
    s->rng_state = seed;
    s->candidates = malloc((size_t)vocab_size * sizeof *s->candidates);
    return s->candidates ? 0 : -1;
}

void sampler_free(Sampler *s) {
    free(s->candidates);
    s->candidates = NULL;
}

/* xorshift64*: 32 good bits per step. */
static uint32_t random_u32(uint64_t *state) {
    *state ^= *state >> 12;
    *state ^= *state << 25;
    *state ^= *state >> 27;
    return (uint32_t)((*state * 0x2545F4914F6CDD1DULL) >> 32);
}

float sampler_random_f32(uint64_t *state) {
    return (float)(random_u32(state) >> 8) / 16777216.0f; /* 24 bits: exact in a float */
}

int sample_argmax(const float *x, int n) {
    int best = 0;
    for (int i = 1; i < n; i++)
        if (x[i] > x[best]) best = i;
    return best;
}

/* Inverse-CDF sampling; the last index absorbs rounding when the sum falls short of 1. */
int sample_from(const float *probs, int n, float coin) {
    float cdf = 0.0f;
    for (int i = 0; i < n; i++) {
        cdf += probs[i];
        if (coin < cdf) return i;
    }
    return n - 1;
}

static int by_prob_desc(const void *a, const void *b) {
    const float pa = ((const ProbIndex *)a)->prob, pb = ((const ProbIndex *)b)->prob;
    return (pa < pb) - (pa > pb);
}

int sample_top_p(const float *probs, int n, float top_p, ProbIndex *scratch, float coin) {
    /* A token with probability below (1 - top_p) / (n - 1) can never be inside the nucleus
     * (the others would already sum past top_p), so drop those before sorting. */
    const float cutoff = n > 1 ? (1.0f - top_p) / (float)(n - 1) : 0.0f;
    int m = 0;
    for (int i = 0; i < n; i++) {
        if (probs[i] >= cutoff) {
            scratch[m].index = i;
            scratch[m].prob = probs[i];
            m++;
        }
    }
    if (m == 0) return sample_argmax(probs, n); /* only if probs do not sum to 1 */
    qsort(scratch, (size_t)m, sizeof *scratch, by_prob_desc);

    /* The nucleus: the shortest prefix whose cumulative probability exceeds top_p. */
    float cumulative = 0.0f;
    int last = m - 1;
    for (int i = 0; i < m; i++) {
        cumulative += scratch[i].prob;
        if (cumulative > top_p) {
            last = i;
            break;
        }
    }
    /* Sample within it, renormalized by scaling the coin instead of the probabilities. */
    const float r = coin * cumulative;
    float cdf = 0.0f;
    for (int i = 0; i <= last; i++) {
        cdf += scratch[i].prob;
        if (r < cdf) return scratch[i].index;
    }
    return scratch[last].index;
}

int sampler_sample(Sampler *s, float *logits) {
    if (s->temperature == 0.0f) return sample_argmax(logits, s->vocab_size);
    /* Subtract the largest logit before dividing: with a tiny temperature the quotients
     * would overflow to inf, and inf - inf in the softmax is NaN. */
    const float max = logits[sample_argmax(logits, s->vocab_size)];
    for (int i = 0; i < s->vocab_size; i++) logits[i] = (logits[i] - max) / s->temperature;
    softmax(logits, s->vocab_size);
    const float coin = sampler_random_f32(&s->rng_state);
    if (s->top_p <= 0.0f || s->top_p >= 1.0f) return sample_from(logits, s->vocab_size, coin);
    return sample_top_p(logits, s->vocab_size, s->top_p, s->candidates, coin);
}
