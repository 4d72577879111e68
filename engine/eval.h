/*
 * engine/eval.h - what the bits cost: perplexity of each mode on a token sequence, and
 * how far its next-token distributions are from float32's.
 *
 * The tokens are cut into consecutive windows of `ctx` tokens (the last, shorter window
 * is dropped unless it is the only one); each window starts a fresh context, with BOS
 * as its first token, as llama.cpp's perplexity tool does. Within a window the positions
 * from `score_from` on are scored: the logits at position i predict token i + 1. The
 * default, score_from = ctx / 2, gives every scored token at least half a window of
 * context; score_from = 0 scores every next token.
 */
#ifndef ENGINE_EVAL_H
#define ENGINE_EVAL_H

#include "engine/transformer.h"

typedef struct {
    double nll_sum;    /* sum of -log p(next token) */
    double kl_sum;     /* sum over positions of KL(reference || this mode), in nats */
    double kl_max;     /* the largest per-position KL */
    long top1_agree;   /* positions where this mode's argmax equals the reference's */
    long positions;    /* forward passes run */
    double seconds;    /* time spent in them */
} EvalStats;

typedef struct {
    int ctx;           /* window length */
    int score_from;    /* first scored position of each window */
    int n_windows;
    long n_scored;     /* scored tokens, over all windows */
} EvalPlan;

/* Plans the windows of ctx tokens for n_tokens tokens, scoring each window's second half
 * (score_all = 0) or every next token (1); the halves are of the window actually used, so
 * a text shorter than ctx is still scored. Returns 0, or -1 when there is nothing to score. */
int eval_plan(EvalPlan *plan, int n_tokens, int ctx, int score_all);

/* Runs every mode over the plan's windows. reference (may be NULL) is the float32 model
 * the KL and top-1 figures compare against; it runs once per window, before the modes.
 * stats[m] receives mode m's figures. progress (may be NULL) is called after each window.
 * Returns 0, or -1 when out of memory. */
int eval_run(const EvalPlan *plan, const int *tokens, int bos, Transformer *reference,
             Transformer **modes, int n_modes, EvalStats *stats,
             void (*progress)(void *ctx, int windows_done, int windows), void *progress_ctx);

#endif
