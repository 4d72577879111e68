/*
 * engine/bench.c - the pp / tg measurements of engine/bench.h.
 */
#include "engine/bench.h"

#include <stdlib.h>
#include <string.h>

#include "engine/clock.h"

static double time_pp(Transformer *t, const int *tokens, int pp) {
    const double start = now_seconds();
    transformer_run(t, tokens, pp, 0, NULL);
    return now_seconds() - start;
}

static double time_tg(Transformer *t, const int *tokens, int tg) {
    const double start = now_seconds();
    for (int i = 0; i < tg; i++) transformer_forward(t, tokens[i], i);
    return now_seconds() - start;
}

int bench_run(Transformer **modes, int n_modes, int pp, int tg, int reps, BenchTimes *times) {
    const int vocab = transformer_config(modes[0])->vocab_size, n = pp > tg ? pp : tg;
    int *tokens = malloc((size_t)(n ? n : 1) * sizeof *tokens);
    if (!tokens) return -1;
    uint64_t state = 0x9E3779B97F4A7C15ULL;
    for (int i = 0; i < n; i++) {
        state = state * 6364136223846793005ULL + 1442695040888963407ULL;
        tokens[i] = (int)((state >> 33) % (uint64_t)vocab);
    }
    for (int m = 0; m < n_modes; m++) { /* warm-up: page in the weights, wake the threads */
        if (pp) time_pp(modes[m], tokens, pp);
        if (tg) time_tg(modes[m], tokens, tg < 16 ? tg : 16);
        memset(&times[m], 0, sizeof times[m]);
        times[m].reps = reps;
    }
    for (int r = 0; r < reps; r++) {
        for (int m = 0; m < n_modes; m++) {
            if (pp) times[m].pp_seconds[r] = time_pp(modes[m], tokens, pp);
            if (tg) times[m].tg_seconds[r] = time_tg(modes[m], tokens, tg);
        }
    }
    free(tokens);
    return 0;
}

static int by_value(const void *a, const void *b) {
    const double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

void bench_stats(const double *v, int n, double *median, double *min, double *max) {
    double sorted[BENCH_MAX_REPS];
    memcpy(sorted, v, (size_t)n * sizeof *v);
    qsort(sorted, (size_t)n, sizeof *sorted, by_value);
    *min = sorted[0];
    *max = sorted[n - 1];
    *median = n % 2 ? sorted[n / 2] : 0.5 * (sorted[n / 2 - 1] + sorted[n / 2]);
}
