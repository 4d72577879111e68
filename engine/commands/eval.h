/*
 * engine/commands/eval.h - what the bits cost: perplexity of each mode on a text, and how far its
 * next-token distributions are from float32's (run MODEL --eval FILE).
 *
 * The text is UTF-8; documents separated by lines "<|endoftext|>" (as in TinyStories)
 * are each encoded with a leading BOS, as the models saw them in training.
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

#include "engine/commands/command.h"
#include "engine/transformer.h"
#include "kernels/threadpool.h"
#include "tokenizer/tokenizer.h"

/* ------------------------------------------------------------------ the command */

typedef struct {
    const char *model_path;
    const char *tokenizer_path; /* NULL: found beside the model */
    const char *text_path;
    const char *modes;          /* a mode list (engine/commands/command.h), or NULL for `quant` alone */
    QuantConfig quant;
    int quant_given;            /* -q, -g, --cls or --sdr given: a .qrz file refuses them */
    CacheTypes cache;           /* -ctk, -ctv */
    int window;                 /* tokens per window (-c); 0 = the model's context */
    int score_all;              /* score every next token, not each window's second half */
    int json, verbose;
    size_t kv_limit;            /* bytes all the KV caches may take (engine/commands/command.h) */
} EvalOptions;

/* Evaluates every mode on the text and prints the table (or JSON) on stdout; a progress
 * bar on stderr when it is a terminal. Returns 0, or -1 with err set. */
int eval_command(const EvalOptions *o, ThreadPool *pool, char *err, size_t errlen);

/* ------------------------------------------------------------------ its parts */

/* Bytes: more is not a text to evaluate. A document, encoded whole, costs the tokenizer
 * memory in proportion (libsentencepiece: about 85 bytes per byte of text), hence its own
 * limit: a 4 MiB document takes some 350 MB to encode, a 10 MB one would take 850 MB. */
enum { EVAL_MAX_TEXT = 64 << 20, EVAL_MAX_DOCUMENT = 4 << 20 };

/* Reads a text to evaluate from a regular file (a FIFO or a device is refused at once):
 * at most EVAL_MAX_TEXT bytes of UTF-8 (RFC 3629), no NUL byte, not only white space.
 * Returns it NUL-terminated (malloc'd), or NULL with err set. */
char *eval_read_text(const char *path, char *err, size_t errlen);

/* Encodes each document of text (modified: cut at the separators) with a leading BOS and
 * concatenates them. Returns the ids (malloc'd) with their number and the documents';
 * NULL with err set on failure, when there is no document, or when one is longer than
 * EVAL_MAX_DOCUMENT. */
int *eval_tokenize(const Tokenizer *tok, char *text, int *n_tokens, int *n_docs, char *err,
                   size_t errlen);

/* The shortest window that leaves a token to score: 3 for each window's second half
 * (positions ctx/2 .. ctx-2 predict the next one), 2 with score_all. */
static inline int eval_min_window(int score_all) { return score_all ? 2 : 3; }

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
