/*
 * engine/commands/bench.c - the pp / tg measurements of engine/commands/bench.h, and the command that
 * reports them.
 */
#include "engine/commands/bench.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/commands/clock.h"
#include "engine/commands/command.h"
#include "kernels/hadamard.h"
#include "kernels/simd.h"

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

/* ------------------------------------------------------------------ the command */

/* The multiply-adds of a pp test of n tokens from position 0: every token through the 7
 * linears of every layer, attention over the positions up to its own (scores and weighted
 * values: 2 (p + 1) dim per layer at position p; the kernels also multiply the later
 * positions of their chunk, which the mask then drops: not counted), and the classifier
 * for the last token. In the integer modes these are integer multiply-adds (the classifier
 * too, unless it is float32). */
static double pp_macs(const ModelConfig *c, int n) {
    return n * config_linear_params(c) + (double)c->n_layers * n * (n + 1.0) * c->dim + (double)c->vocab_size * c->dim;
}

/* What the online rotations of docs/SPEC.md section 7 (a rotated mode's only extra work)
 * take alone for one token at the model's shape, in seconds: every layer's query and key
 * heads by Q_hs and w2's input by Q_hidden, at the current SIMD level on one thread (as
 * the forward pass does them: spread over the threads, but each a small part of its step).
 * The best of a few timings of 20 tokens: tg's difference between two modes is noise of
 * a busy machine at this size. 0 when out of memory. */
static double rotation_seconds(const ModelConfig *c) {
    const int hs = config_head_size(c);
    float *q = calloc((size_t)c->dim, sizeof *q), *k = calloc((size_t)config_kv_dim(c), sizeof *k);
    float *h = calloc((size_t)c->hidden_dim, sizeof *h);
    double best = 0;
    for (int trial = 0; q && k && h && trial < 5; trial++) {
        const double start = now_seconds();
        for (int token = 0; token < 20; token++)
            for (int l = 0; l < c->n_layers; l++) {
                hadamard(q, c->n_heads, hs);
                hadamard(k, c->n_kv_heads, hs);
                hadamard(h, 1, c->hidden_dim);
            }
        const double t = (now_seconds() - start) / 20;
        best = trial == 0 || t < best ? t : best;
    }
    free(q), free(k), free(h);
    return best;
}

/* The CPU's name, from /proc/cpuinfo where there is one. */
static void cpu_name(char *buf, size_t len) {
    snprintf(buf, len, "unknown CPU");
    FILE *f = fopen("/proc/cpuinfo", "r");
    char line[512];
    while (f && fgets(line, sizeof line, f)) {
        if (strncmp(line, "model name", 10) != 0) continue;
        const char *v = strchr(line, ':');
        if (v) snprintf(buf, len, "%.*s", (int)strcspn(v + 2, "\n"), v + 2);
        break;
    }
    if (f) fclose(f);
}

static void report(const BenchOptions *o, const ModelWeights *weights, const QuantConfig *configs,
                   Transformer *const *modes, int n_modes, const BenchTimes *times, int threads) {
    const ModelConfig *c = &weights[0].cfg;
    const int n_ctx = transformer_context(modes[0]); /* the positions each KV cache holds */
    char cpu[256];
    cpu_name(cpu, sizeof cpu);
    if (o->json) {
        print_json_string(stdout, "{\"model\": ", o->model_path);
        printf(", \"dim\": %d, \"n_layers\": %d, \"vocab_size\": %d", c->dim, c->n_layers, c->vocab_size);
        print_json_string(stdout, ", \"cpu\": ", cpu);
        printf(", \"simd\": \"%s\", \"kernels\": {", simd_level_name(simd_current()));
        for (int e = 0; e < SIMD_ENTRIES; e++)
            printf("%s\"%s\": \"%s\"", e ? ", " : "", simd_entry_names[e],
                   simd_level_name(simd_entry_level(simd_current(), e)));
        printf("}, \"emulated\": %s, \"threads\": %d, \"reps\": %d, \"context\": %d, \"results\": [",
               simd_emulated() ? "true" : "false", threads, o->reps, n_ctx);
    } else {
        char shown[1024];
        printf("bench: %s (dim %d, %d layers, vocab %d); %s, %s kernels, %d thread%s, %d reps\n"
               "%-18s %10s %10s %7s %10s %21s %8s\n",
               printable(o->model_path, shown, sizeof shown), c->dim, c->n_layers, c->vocab_size, cpu, simd_level_name(simd_current()), threads,
               threads == 1 ? "" : "s", o->reps, "mode", "weights", "KV cache", "test", "tok/s", "(min - max)",
               "ms/tok");
    }
    int first = 1, rotated = 0;
    for (int m = 0; m < n_modes; m++) rotated |= configs[m].rotate;
    const double rotation = rotated && o->tg ? rotation_seconds(c) : 0;
    for (int m = 0; m < n_modes; m++) {
        char name[64];
        quant_config_name(&configs[m], name, sizeof name);
        const size_t wbytes = model_weights_bytes(&weights[m]), kvbytes = kv_cache_bytes(c, &configs[m], n_ctx);
        /* What a generated token reads: the weights, and the cache up to its position; the
         * test starts from an empty cache, so on average (tg + 1) / 2 positions of it. */
        const double read_per_token = (double)model_bytes_per_token(&weights[m]) +
                                      (double)kvbytes / n_ctx * (o->tg + 1) / 2;
        for (int test = 0; test < 2; test++) {
            const int tokens = test ? o->tg : o->pp;
            if (!tokens) continue;
            double med, lo, hi; /* of seconds: the fastest repetition is the smallest */
            bench_stats(test ? times[m].tg_seconds : times[m].pp_seconds, o->reps, &med, &lo, &hi);
            char label[32];
            snprintf(label, sizeof label, "%s%d", test ? "tg" : "pp", tokens);
            if (o->json) {
                printf("%s\n  {\"mode\": \"%s\", \"test\": \"%s\", \"tokens_per_s\": %.2f, \"min\": %.2f, "
                       "\"max\": %.2f, \"ms_per_token\": %.4f, \"weight_bytes\": %zu, \"kv_bytes\": %zu",
                       first ? "" : ",", name, label, tokens / med, tokens / hi, tokens / lo, 1e3 * med / tokens,
                       wbytes, kvbytes);
                if (test)
                    printf(", \"bytes_read_per_token\": %.0f, \"read_gb_per_s\": %.3f", read_per_token,
                           read_per_token * tokens / med / 1e9);
                if (test && configs[m].rotate)
                    printf(", \"rotation_us_per_token\": %.2f", 1e6 * rotation);
                else
                    printf(", \"macs\": %.0f, \"gmacs_per_s\": %.2f", pp_macs(c, tokens), pp_macs(c, tokens) / med / 1e9);
                printf("}");
            } else {
                printf("%-18s %7.1f MB %7.1f MB %7s %10.2f   (%7.2f - %7.2f) %8.3f", name, wbytes / 1e6,
                       kvbytes / 1e6, label, tokens / med, tokens / hi, tokens / lo, 1e3 * med / tokens);
                if (test) printf("   reads %.1f MB/tok: %.2f GB/s", read_per_token / 1e6, read_per_token * tokens / med / 1e9);
                else printf("   %.2f G multiply-adds/s", pp_macs(c, tokens) / med / 1e9);
                printf("\n");
                if (test && configs[m].rotate)
                    printf("%-18s the online rotations alone (docs/SPEC.md section 7): %.1f us per token, %.2f%% of "
                           "its tg\n", "", 1e6 * rotation, 100.0 * rotation * tokens / med);
            }
            first = 0;
        }
    }
    if (o->json) printf("\n]}\n");
}

int bench_command(const BenchOptions *o, ThreadPool *pool, char *err, size_t errlen) {
    if (model_is_qrz(o->model_path) && o->modes) {
        snprintf(err, errlen, "%s is already quantized; --bench-modes needs the float checkpoint", o->model_path);
        return -1;
    }
    QuantConfig configs[MAX_MODES];
    const int n_modes = mode_list_parse("--bench-modes", o->modes, &o->quant, configs, err, errlen);
    if (n_modes < 0) return -1;
    ModelWeights weights[MAX_MODES];
    Transformer *modes[MAX_MODES] = {0};
    BenchTimes *times = NULL;
    int rc = -1;
    if (command_open_modes(weights, configs, n_modes, o->model_path, o->quant_given, &o->cache, pool, err, errlen) != 0)
        return -1;
    const ModelConfig *c = &weights[0].cfg;
    const int n_ctx = o->pp > o->tg ? o->pp : o->tg;
    if (n_ctx > c->seq_len) {
        snprintf(err, errlen, "--pp %d / --tg %d exceed the model's context (seq_len %d)", o->pp, o->tg,
                 c->seq_len);
        goto done;
    }
    if (kv_check(c, configs, n_modes, n_ctx, o->kv_limit, "use smaller --pp and --tg", err, errlen) != 0)
        goto done;
    for (int m = 0; m < n_modes; m++)
        if (!(modes[m] = transformer_new(&weights[m], pool, n_ctx, err, errlen))) goto done;
    if (o->verbose)
        command_describe(stderr, o->model_path, weights, n_modes, transformer_context(modes[0]), o->kv_limit, pool);
    if (!(times = calloc((size_t)n_modes, sizeof *times)) ||
        bench_run(modes, n_modes, o->pp, o->tg, o->reps, times) != 0) {
        snprintf(err, errlen, "out of memory");
        goto done;
    }
    report(o, weights, configs, modes, n_modes, times, threadpool_size(pool));
    rc = 0;
done:
    free(times);
    for (int m = 0; m < n_modes; m++) {
        transformer_free(modes[m]);
        model_close(&weights[m]);
    }
    return rc;
}
