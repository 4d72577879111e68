/*
 * engine/commands/eval.c - windowed perplexity and KL divergence against a float32 reference: the
 * text, the measurement, and the command that reports it.
 */
#include "engine/commands/eval.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "engine/commands/clock.h"
#include "engine/commands/command.h"
#include "weights/file.h"

/* ------------------------------------------------------------------ the text */

/* Checks what was read; frees it and sets err when it is no text to evaluate. */
static char *checked_text(char *buf, size_t n, const char *path, char *err, size_t errlen) {
    const size_t nul = strlen(buf);
    if (nul != n) {
        snprintf(err, errlen, "%s: contains a NUL byte at offset %zu: not a text file", path, nul);
        free(buf);
        return NULL;
    }
    for (size_t i = 0; i < n;) {
        const int len = utf8_char_length((const unsigned char *)buf + i, n - i);
        if (len == 0) {
            snprintf(err, errlen, "%s: not valid UTF-8 at byte %zu", path, i);
            free(buf);
            return NULL;
        }
        i += (size_t)len;
    }
    if (strspn(buf, " \n\t\r") == n) {
        snprintf(err, errlen, "%s: the file is empty%s", path, n ? " (only white space)" : "");
        free(buf);
        return NULL;
    }
    return buf;
}

char *eval_read_text(const char *path, char *err, size_t errlen) {
    const int fd = open_regular_file(path, NULL, err, errlen); /* a FIFO would wait for a writer */
    FILE *f = fd < 0 ? NULL : fdopen(fd, "rb");
    if (!f) {
        if (fd >= 0) snprintf(err, errlen, "%s: cannot open: %s", path, strerror(errno)), close(fd);
        return NULL;
    }
    char *buf = NULL;
    size_t n = 0, cap = 0;
    int complete = 0;
    for (;;) {
        if (n == cap) { /* grow up to one byte past the limit: enough to know */
            if (cap > EVAL_MAX_TEXT) {
                snprintf(err, errlen, "%s: larger than %d MiB: not a text to evaluate", path,
                         EVAL_MAX_TEXT >> 20);
                break;
            }
            const size_t grown = cap == 0 ? 1 << 16 : 2 * cap > EVAL_MAX_TEXT ? EVAL_MAX_TEXT + 1 : 2 * cap;
            char *nb = realloc(buf, grown + 1); /* + the terminating NUL */
            if (!nb) {
                snprintf(err, errlen, "%s: out of memory reading the text", path);
                break;
            }
            buf = nb;
            cap = grown;
        }
        const size_t got = fread(buf + n, 1, cap - n, f);
        n += got;
        if (got == 0) {
            complete = !ferror(f);
            if (!complete) snprintf(err, errlen, "%s: read error: %s", path, strerror(errno));
            break;
        }
    }
    fclose(f);
    if (!complete) {
        free(buf);
        return NULL;
    }
    buf[n] = '\0';
    return checked_text(buf, n, path, err, errlen);
}

int *eval_tokenize(const Tokenizer *tok, char *text, int *n_tokens, int *n_docs, char *err,
                   size_t errlen) {
    static const char sep[] = "<|endoftext|>";
    int *all = NULL, n = 0, docs = 0;
    for (char *doc = text; doc;) {
        char *next = strstr(doc, sep);
        if (next) {
            *next = '\0';
            next += sizeof sep - 1;
        }
        while (*doc == '\n' || *doc == '\r') doc++; /* the line breaks around separators */
        size_t len = strlen(doc);
        while (len > 0 && (doc[len - 1] == '\n' || doc[len - 1] == '\r')) doc[--len] = '\0';
        if (len > EVAL_MAX_DOCUMENT) {
            snprintf(err, errlen, "the text holds a document of %zu bytes; a document is encoded whole, and may be at "
                     "most %d MiB (separate documents with <|endoftext|> lines)", len, EVAL_MAX_DOCUMENT >> 20);
            free(all);
            return NULL;
        }
        if (len > 0) {
            int *ids;
            const int k = tokenizer_encode(tok, doc, &ids, err, errlen);
            int *grown = k < 0 ? NULL : realloc(all, ((size_t)n + (size_t)k) * sizeof *all);
            if (!grown) {
                if (k >= 0) {
                    snprintf(err, errlen, "out of memory for the text's tokens");
                    free(ids);
                }
                free(all);
                return NULL;
            }
            all = grown;
            memcpy(all + n, ids, (size_t)k * sizeof *ids);
            n += k;
            docs++;
            free(ids);
        }
        doc = next;
    }
    if (docs == 0) snprintf(err, errlen, "no text between the %s lines", sep);
    *n_tokens = n;
    *n_docs = docs;
    return all; /* NULL when there was no document */
}

/* ------------------------------------------------------------------ the measurement */

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

/* ------------------------------------------------------------------ the command */

static void progress_bar(void *ctx, int done, int total) {
    (void)ctx;
    const int width = 30, filled = width * done / total;
    fprintf(stderr, "\r[%.*s%*s] %d/%d windows", filled, "==============================", width - filled, "",
            done, total);
    if (done == total) fputc('\n', stderr);
}

/* Bits of KV cache per key or value element of a mode, at the model's full context (the
 * scales and shifts included). */
static double kv_bits(const ModelConfig *c, const QuantConfig *q) {
    return 8.0 * (double)kv_cache_bytes(c, q, c->seq_len) / config_kv_entries(c);
}

static void report(const EvalOptions *o, const ModelConfig *c, const EvalPlan *plan, int n_docs, int n_tokens,
                   const QuantConfig *configs, const EvalStats *stats, int n_modes, int have_reference) {
    if (o->json) {
        print_json_string(stdout, "{\"file\": ", o->text_path);
        print_json_string(stdout, ", \"model\": ", o->model_path);
        printf(", \"documents\": %d, \"tokens\": %d, \"window\": %d, \"windows\": %d, "
               "\"score_from\": %d, \"scored\": %ld, \"modes\": [",
               n_docs, n_tokens, plan->ctx, plan->n_windows, plan->score_from, plan->n_scored);
    } else {
        char shown[1024];
        printf("eval: %s, %d documents, %d tokens; %d windows of %d, scoring positions %d..%d "
               "of each: %ld tokens\n",
               printable(o->text_path, shown, sizeof shown), n_docs, n_tokens, plan->n_windows, plan->ctx, plan->score_from, plan->ctx - 2,
               plan->n_scored);
        printf("%-18s %8s %9s %10s %9s %7s %7s %9s\n", "mode", "NLL", "PPL", "mean KL", "max KL", "top-1", "KV bits",
               "tok/s");
    }
    for (int m = 0; m < n_modes; m++) {
        char name[64];
        quant_config_name(&configs[m], name, sizeof name);
        const EvalStats *st = &stats[m];
        const double nll = st->nll_sum / (double)plan->n_scored;
        const double kl = st->kl_sum / (double)plan->n_scored;
        const double top1 = 100.0 * (double)st->top1_agree / (double)plan->n_scored;
        const double tps = st->positions / st->seconds;
        if (o->json) {
            printf("%s\n  {\"mode\": \"%s\", \"nll\": %.6f, \"ppl\": %.6f", m ? "," : "", name, nll, exp(nll));
            if (have_reference)
                printf(", \"mean_kl\": %.8f, \"max_kl\": %.8f, \"top1\": %.4f", kl, st->kl_max, top1);
            printf(", \"kv_bits\": %.2f, \"tokens_per_s\": %.1f}", kv_bits(c, &configs[m]), tps);
        } else if (have_reference) {
            printf("%-18s %8.4f %9.4f %10.6f %9.5f %6.2f%% %7.2f %9.1f\n", name, nll, exp(nll), kl, st->kl_max, top1,
                   kv_bits(c, &configs[m]), tps);
        } else {
            printf("%-18s %8.4f %9.4f %10s %9s %7s %7.2f %9.1f\n", name, nll, exp(nll), "n/a", "n/a", "n/a",
                   kv_bits(c, &configs[m]), tps);
        }
    }
    if (o->json) printf("\n]}\n");
    if (!have_reference && !o->json)
        printf("(KL and top-1 need the float32 model: evaluate the .bin checkpoint for them)\n");
}

int eval_command(const EvalOptions *o, ThreadPool *pool, char *err, size_t errlen) {
    const int is_qrz = model_is_qrz(o->model_path);
    if (is_qrz && o->modes) {
        snprintf(err, errlen, "%s is already quantized; --eval-modes needs the float checkpoint", o->model_path);
        return -1;
    }
    QuantConfig configs[MAX_MODES + 1]; /* the modes, then a float32 reference if none is one */
    const int n_modes = mode_list_parse("--eval-modes", o->modes, &o->quant, configs, err, errlen);
    if (n_modes < 0) return -1;
    char *text = eval_read_text(o->text_path, err, errlen); /* before the models: a bad text fails fast */
    if (!text) return -1;
    ModelWeights weights[MAX_MODES + 1];
    Transformer *modes[MAX_MODES + 1] = {0};
    Tokenizer *tok = NULL;
    int *tokens = NULL, n_loaded = 0, rc = -1;
    EvalStats *stats = NULL;
    if (command_open_modes(weights, configs, n_modes, o->model_path, o->quant_given, &o->cache, pool, err, errlen) != 0) {
        free(text);
        return -1;
    }
    n_loaded = n_modes;
    /* KL needs float32 distributions: one of the modes (not rotated: fp32/rot is compared
     * with fp32 too), or a model of our own. */
    int reference = -1;
    for (int m = 0; m < n_modes && reference < 0; m++)
        if (configs[m].weights == QUANT_F32 && configs[m].cls == QUANT_F32 && !configs[m].rotate) reference = m;
    if (reference < 0 && !is_qrz) {
        quant_config_parse("fp32", &configs[n_modes], err, errlen);
        if (model_open(&weights[n_modes], o->model_path, &configs[n_modes], pool, err, errlen) != 0) goto done;
        reference = n_loaded++;
    }
    const ModelConfig *c = &weights[0].cfg;
    const int min_window = eval_min_window(o->score_all);
    if (o->window > c->seq_len) {
        snprintf(err, errlen, "-c %d exceeds the model's context (seq_len %d)", o->window, c->seq_len);
        goto done;
    }
    if (o->window && o->window < min_window) {
        snprintf(err, errlen, "-c %d: a window of %d token%s leaves nothing to score; the shortest is %d%s",
                 o->window, o->window, o->window == 1 ? "" : "s", min_window,
                 o->score_all ? "" : " (2 with --score all)");
        goto done;
    }
    if (!(tok = command_model_tokenizer(o->tokenizer_path, o->model_path, &weights[0], err, errlen))) goto done;
    int n_tokens = 0, n_docs = 0;
    if (!(tokens = eval_tokenize(tok, text, &n_tokens, &n_docs, err, errlen))) goto done;
    EvalPlan plan;
    if (eval_plan(&plan, n_tokens, o->window ? o->window : c->seq_len, o->score_all) != 0) {
        snprintf(err, errlen, "%s: only %d tokens: too short to score (--score all scores every next token)",
                 o->text_path, n_tokens);
        goto done;
    }
    if (kv_check(c, configs, n_loaded, plan.ctx, o->kv_limit, "use a shorter window with -c N", err, errlen) != 0)
        goto done;
    for (int m = 0; m < n_loaded; m++)
        if (!(modes[m] = transformer_new(&weights[m], pool, plan.ctx, err, errlen))) goto done;
    if (o->verbose)
        command_describe(stderr, o->model_path, weights, n_modes, transformer_context(modes[0]), o->kv_limit, pool);
    /* A window starts with BOS; a tokenizer that writes none (SmolLM2's) leaves the model's. */
    const int bos = tokenizer_bos(tok) >= 0 ? tokenizer_bos(tok) : weights[0].bos_id;
    if (!(stats = calloc((size_t)n_modes, sizeof *stats)) ||
        eval_run(&plan, tokens, bos, reference < 0 ? NULL : modes[reference], modes, n_modes, stats,
                 isatty(2) ? progress_bar : NULL, NULL) != 0) {
        snprintf(err, errlen, "out of memory during the evaluation");
        goto done;
    }
    report(o, c, &plan, n_docs, n_tokens, configs, stats, n_modes, reference >= 0);
    rc = 0;
done:
    free(text);
    free(stats);
    free(tokens);
    tokenizer_free(tok);
    for (int m = 0; m < n_loaded; m++) {
        transformer_free(modes[m]);
        model_close(&weights[m]);
    }
    return rc;
}
