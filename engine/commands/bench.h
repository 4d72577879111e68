/*
 * engine/commands/bench.h - tokens per second, measured the way llama.cpp's llama-bench does:
 *   pp N  prompt processing: N tokens in one batched pass from an empty context;
 *   tg N  text generation: N tokens one at a time from an empty context;
 * each repeated, after a warm-up, with several modes interleaved repetition by
 * repetition so that a noisy machine slows them all alike. Tokens are fixed pseudo-random
 * ids and nothing is sampled: only the model is timed.
 */
#ifndef ENGINE_BENCH_H
#define ENGINE_BENCH_H

#include "engine/commands/command.h"
#include "engine/transformer.h"
#include "kernels/threadpool.h"

enum { BENCH_MAX_REPS = 100 };

/* ------------------------------------------------------------------ the command */

typedef struct {
    const char *model_path;
    const char *modes;   /* a mode list (engine/commands/command.h), or NULL for `quant` alone */
    QuantConfig quant;
    int quant_given;     /* -q, -g, --cls or --sdr given: a .qrz file refuses them */
    CacheTypes cache;    /* -ctk, -ctv */
    int pp, tg, reps;    /* test sizes (0 skips one) and repetitions */
    int json, verbose;
    size_t kv_limit;     /* bytes all the KV caches may take (engine/commands/command.h) */
} BenchOptions;

/* Runs the tests and prints the table (or JSON) on stdout. Each transformer holds
 * max(pp, tg) positions. Returns 0, or -1 with err set. */
int bench_command(const BenchOptions *o, ThreadPool *pool, char *err, size_t errlen);

/* ------------------------------------------------------------------ its parts */

typedef struct {
    int reps;
    double pp_seconds[BENCH_MAX_REPS]; /* time of each repetition of the pp test */
    double tg_seconds[BENCH_MAX_REPS];
} BenchTimes;

/* Runs the tests on every mode (pp or tg may be 0 to skip one; each starts from an empty
 * context, so each must fit the context alone). times[m] receives mode m's. Returns 0, or
 * -1 when out of memory. */
int bench_run(Transformer **modes, int n_modes, int pp, int tg, int reps, BenchTimes *times);

/* The median, minimum and maximum of n values. */
void bench_stats(const double *v, int n, double *median, double *min, double *max);

#endif
