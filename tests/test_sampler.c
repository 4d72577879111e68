/*
 * tests/test_sampler.c - greedy, multinomial and nucleus sampling, and the seeded RNG.
 * Expected values are worked out by hand (in the comments) or by an independent
 * computation (the RNG values: Python big integers running llama2.c's xorshift64*).
 */
#include <math.h>
#include <stdlib.h>

#include "engine/sampler.h"
#include "tests/test.h"

static void test_argmax(void) {
    const float x[] = {0.1f, 3.0f, -2.0f, 3.0f, 2.9f};
    CHECK(sample_argmax(x, 5) == 1); /* the first of two equal maxima */
    const float neg[] = {-5.0f, -1.0f, -3.0f};
    CHECK(sample_argmax(neg, 3) == 1);
}

static void test_multinomial(void) {
    const float p[] = {0.2f, 0.3f, 0.5f}; /* CDF 0.2, 0.5, 1.0 */
    CHECK(sample_from(p, 3, 0.0f) == 0);
    CHECK(sample_from(p, 3, 0.19f) == 0);
    CHECK(sample_from(p, 3, 0.21f) == 1);
    CHECK(sample_from(p, 3, 0.49f) == 1);
    CHECK(sample_from(p, 3, 0.51f) == 2);
    const float short_sum[] = {0.25f, 0.25f}; /* sums to 0.5: the last index absorbs */
    CHECK(sample_from(short_sum, 2, 0.9f) == 1);
}

static void test_top_p(void) {
    /* Sorted: 0.5 (idx 3), 0.3 (idx 0), 0.15 (idx 2), 0.05 (idx 1).
     * top_p 0.7: cumulative 0.5, 0.8 > 0.7, so the nucleus is {3, 0} with mass 0.8;
     * the coin is scaled by 0.8: coin 0.6 -> r 0.48 < 0.5 -> idx 3; coin 0.7 -> r 0.56 -> idx 0. */
    const float p[] = {0.3f, 0.05f, 0.15f, 0.5f};
    ProbIndex scratch[4];
    CHECK(sample_top_p(p, 4, 0.7f, scratch, 0.6f) == 3);
    CHECK(sample_top_p(p, 4, 0.7f, scratch, 0.7f) == 0);
    CHECK(sample_top_p(p, 4, 0.7f, scratch, 0.999f) == 0); /* never 2 or 1 */
    /* top_p 0.9: nucleus {3, 0, 2} (0.95 > 0.9); coin 0.99 -> r 0.9405 -> idx 2. */
    CHECK(sample_top_p(p, 4, 0.9f, scratch, 0.99f) == 2);
    /* top_p 0.4: the first token alone exceeds it. */
    CHECK(sample_top_p(p, 4, 0.4f, scratch, 0.99f) == 3);
    /* Probabilities that sum short of 1 can all fall below the pre-sort cutoff
     * (1 - 0.01) / 3 = 0.33: no candidate is left, and the most likely token is the answer
     * (before the fix this read scratch[-1]). */
    const float low[] = {0.1f, 0.3f, 0.2f, 0.1f};
    CHECK(sample_top_p(low, 4, 0.01f, scratch, 0.5f) == 1);
}

static void test_tiny_temperature(void) {
    /* logits / 1e-38 overflow float32 to inf; the sampler must still give a distribution
     * with all the mass on the largest logit, so every draw is its index. */
    enum { N = 4 };
    Sampler s;
    CHECK(sampler_init(&s, N, 1e-38f, 1.0f, 99) == 0);
    for (int k = 0; k < 100; k++) {
        float l[N] = {1.0f, 7.5f, -3.0f, 7.0f};
        CHECK(sampler_sample(&s, l) == 1);
    }
    sampler_free(&s);
    CHECK(sampler_init(&s, N, 1e-38f, 0.9f, 99) == 0); /* and with top-p */
    float l[N] = {1.0f, 7.5f, -3.0f, 7.0f};
    CHECK(sampler_sample(&s, l) == 1);
    sampler_free(&s);
}

static void test_rng_is_llama2c_xorshift(void) {
    /* Seed 42, three draws: u32 = 1456360119, 3359763283, 3393612768 (independent
     * computation), so f32 = u32 >> 8 / 2^24. */
    uint64_t s = 42;
    CHECK(sampler_random_f32(&s) == (float)(1456360119u >> 8) / 16777216.0f);
    CHECK(sampler_random_f32(&s) == (float)(3359763283u >> 8) / 16777216.0f);
    CHECK(sampler_random_f32(&s) == (float)(3393612768u >> 8) / 16777216.0f);
}

static void test_temperature_and_seed(void) {
    enum { N = 6 };
    const float logits[N] = {1.0f, 2.0f, 0.5f, -1.0f, 3.0f, 0.0f};
    Sampler greedy;
    CHECK(sampler_init(&greedy, N, 0.0f, 0.9f, 7) == 0);
    float l[N];
    for (int i = 0; i < N; i++) l[i] = logits[i];
    CHECK(sampler_sample(&greedy, l) == 4);
    sampler_free(&greedy);

    /* Same seed, same draws; and at temperature 1 with top-p off, the empirical
     * frequencies approach softmax(logits) (10000 draws: within 0.02). */
    Sampler a, b;
    CHECK(sampler_init(&a, N, 1.0f, 1.0f, 1234) == 0 && sampler_init(&b, N, 1.0f, 1.0f, 1234) == 0);
    int counts[N] = {0}, same = 1;
    for (int k = 0; k < 10000; k++) {
        float la[N], lb[N];
        for (int i = 0; i < N; i++) la[i] = lb[i] = logits[i];
        int x = sampler_sample(&a, la), y = sampler_sample(&b, lb);
        same &= x == y;
        counts[x]++;
    }
    CHECK(same);
    double z = 0;
    for (int i = 0; i < N; i++) z += exp(logits[i]);
    for (int i = 0; i < N; i++)
        CHECKF(fabs(counts[i] / 10000.0 - exp(logits[i]) / z) < 0.02, "token %d: %d draws", i,
               counts[i]);
    sampler_free(&a);
    sampler_free(&b);
}

void suite_sampler(void) {
    test_run("sampler_argmax", test_argmax);
    test_run("sampler_multinomial", test_multinomial);
    test_run("sampler_top_p", test_top_p);
    test_run("sampler_tiny_temperature", test_tiny_temperature);
    test_run("sampler_rng_is_llama2c_xorshift", test_rng_is_llama2c_xorshift);
    test_run("sampler_temperature_and_seed", test_temperature_and_seed);
}
