/*
 * engine/eval.c - windowed perplexity and KL divergence against a float32 reference.
 */
#include "engine/eval.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "engine/clock.h"

int eval_plan(EvalPlan *plan, int n_tokens, int ctx, int score_all) {
    plan->ctx = ctx;
    plan->n_windows = n_tokens / ctx;
    if (plan->n_windows == 0) { /* a short text is one shorter window */
        plan->n_windows = 1;
        plan->ctx = n_tokens;
    }
    plan->score_from = score_all ? 0 : plan->ctx / 2;
    const long per_window = (long)plan->ctx - 1 - plan->score_from;
    plan->n_scored = per_window > 0 ? per_window * plan->n_windows : 0;
    return plan->n_scored > 0 ? 0 : -1;
}

/* log_softmax of n logits, in double. */
static void log_softmax(const float *logits, int n, double *out) {
    double max = logits[0], sum = 0.0;
    for (int i = 1; i < n; i++) max = logits[i] > max ? logits[i] : max;
    for (int i = 0; i < n; i++) sum += exp((double)logits[i] - max);
    const double log_z = max + log(sum);
    for (int i = 0; i < n; i++) out[i] = (double)logits[i] - log_z;
}

static int argmax(const double *x, int n) {
    int best = 0;
    for (int i = 1; i < n; i++)
        if (x[i] > x[best]) best = i;
    return best;
}

/* Runs one window through t (one batched pass); for each scored position calls
 * score(ctx, k, log-probabilities, target). logits holds [ctx - 1][vocab]. */
static void run_window(Transformer *t, const EvalPlan *plan, const int *window, float *logits,
                       double *lp, EvalStats *stats, void (*score)(void *, int, const double *, int),
                       void *ctx) {
    const int vocab = transformer_config(t)->vocab_size;
    const double start = now_seconds();
    transformer_run(t, window, plan->ctx - 1, 0, logits);
    stats->positions += plan->ctx - 1;
    stats->seconds += now_seconds() - start;
    for (int pos = plan->score_from; pos < plan->ctx - 1; pos++) {
        log_softmax(logits + (size_t)pos * vocab, vocab, lp);
        score(ctx, pos - plan->score_from, lp, window[pos + 1]);
    }
}

typedef struct {
    double *ref_lp; /* [scored per window][vocab]: the reference's log-probabilities */
    int vocab;
    EvalStats *stats;
} Scorer;

static void keep_reference(void *ctx, int k, const double *lp, int target) {
    Scorer *s = ctx;
    memcpy(s->ref_lp + (size_t)k * s->vocab, lp, (size_t)s->vocab * sizeof *lp);
    s->stats->nll_sum -= lp[target];
    s->stats->top1_agree++;
}

static void compare_to_reference(void *ctx, int k, const double *lp, int target) {
    Scorer *s = ctx;
    EvalStats *st = s->stats;
    st->nll_sum -= lp[target];
    if (!s->ref_lp) return;
    const double *ref = s->ref_lp + (size_t)k * s->vocab;
    double kl = 0.0;
    for (int i = 0; i < s->vocab; i++) kl += exp(ref[i]) * (ref[i] - lp[i]);
    st->kl_sum += kl;
    st->kl_max = kl > st->kl_max ? kl : st->kl_max;
    st->top1_agree += argmax(lp, s->vocab) == argmax(ref, s->vocab);
}

int eval_run(const EvalPlan *plan, const int *tokens, int bos, Transformer *reference,
             Transformer **modes, int n_modes, EvalStats *stats,
             void (*progress)(void *ctx, int windows_done, int windows), void *progress_ctx) {
    const int vocab = transformer_config(modes[0])->vocab_size;
    const int per_window = plan->ctx - 1 - plan->score_from;
    int *window = malloc((size_t)plan->ctx * sizeof *window);
    float *logits = malloc((size_t)plan->ctx * vocab * sizeof *logits);
    double *lp = malloc((size_t)vocab * sizeof *lp);
    double *ref_lp = reference ? malloc((size_t)per_window * vocab * sizeof *ref_lp) : NULL;
    if (!window || !logits || !lp || (reference && !ref_lp)) {
        free(window), free(logits), free(lp), free(ref_lp);
        return -1;
    }
    memset(stats, 0, (size_t)n_modes * sizeof *stats);
    EvalStats ref_stats = {0};
    for (int w = 0; w < plan->n_windows; w++) {
        memcpy(window, tokens + (size_t)w * plan->ctx, (size_t)plan->ctx * sizeof *window);
        window[0] = bos; /* every window is a fresh context */
        if (reference) {
            Scorer s = {ref_lp, vocab, &ref_stats};
            run_window(reference, plan, window, logits, lp, &ref_stats, keep_reference, &s);
        }
        for (int m = 0; m < n_modes; m++) {
            Scorer s = {ref_lp, vocab, &stats[m]};
            if (modes[m] == reference) { /* the reference itself: reuse its run */
                stats[m].nll_sum = ref_stats.nll_sum;
                stats[m].top1_agree = ref_stats.top1_agree;
                stats[m].positions = ref_stats.positions;
                stats[m].seconds = ref_stats.seconds;
                continue;
            }
            run_window(modes[m], plan, window, logits, lp, &stats[m], compare_to_reference, &s);
        }
        if (progress) progress(progress_ctx, w + 1, plan->n_windows);
    }
    free(window), free(logits), free(lp), free(ref_lp);
    return 0;
}
