/*
 * engine/commands/command.h - what the commands (generate and chat in run.c, eval, bench, explain,
 * quantize) share: opening the model in a mode, finding its tokenizer, giving a run the
 * context it needs within a memory limit, lists of modes, and describing the run and its
 * memory (-v and --explain print the same table).
 */
#ifndef ENGINE_COMMAND_H
#define ENGINE_COMMAND_H

#include <stdio.h>

#include "engine/transformer.h"
#include "tokenizer/tokenizer.h"

/* The KV-cache types given with -ctk / -ctv (docs/SPEC.md section 6): qrazor's keys and
 * values as r4, r5 or i8. They are chosen when a model runs, so they apply to a .qrz file
 * as well as to a checkpoint. */
typedef struct {
    int given;              /* -ctk or -ctv was used */
    QuantKind keys, values; /* QUANT_SDR (r4), QUANT_SDR5 (r5) or QUANT_INT (i8) */
} CacheTypes;

/* Opens the model at path: a .qrz file as it is, a checkpoint quantized as q says; then
 * sets the cache types when given (an error unless the mode is qrazor). quant_given: the
 * user chose the mode (-q, -g, --cls, --sdr), which a .qrz file cannot honour, so that is
 * an error rather than a flag silently ignored. Returns 0, or -1 with err set. */
int command_open_model(ModelWeights *m, const char *path, const QuantConfig *q, int quant_given,
                       const CacheTypes *cache, ThreadPool *pool, char *err, size_t errlen);

/* The model opened once per mode of configs[0..n) (each updated to what was loaded: a .qrz
 * file says what it holds). On failure nothing stays open. Returns 0, or -1 with err set. */
int command_open_modes(ModelWeights *weights, QuantConfig *configs, int n, const char *path,
                       int quant_given, const CacheTypes *cache, ThreadPool *pool, char *err, size_t errlen);

/* The tokenizer for a model of vocab_size pieces: `path` if not NULL, else the one found
 * beside the model (tokenizer_find), named on stderr. NULL with err set on failure. */
Tokenizer *command_tokenizer(const char *path, const char *model_path, int vocab_size, char *err,
                             size_t errlen);

/* The same for an opened model: without `path`, a tokenizer stored in its .qrz file comes
 * first (docs/FORMAT.md, role 5), then one found beside it. */
Tokenizer *command_model_tokenizer(const char *path, const char *model_path, const ModelWeights *w, char *err,
                                   size_t errlen);

/* Applies the environment: QRAZOR_SIMD=scalar|avx2|avx512|neon|dotprod|i8mm forces a kernel
 * level, and QRAZOR_KV_LIMIT=SIZE (see kv_limit_parse) sets *kv_limit, else
 * kv_limit_default().
 * Returns 0, or -1 with err set. */
int command_environment(size_t *kv_limit, char *err, size_t errlen);

/* ------------------------------------------------------------------ the context and its memory */

/* The bytes of KV cache a run may allocate unless QRAZOR_KV_LIMIT says otherwise: half of
 * the physical memory (4 GiB where that is unknown). A model header may ask for a context
 * of a million positions; a run allocates the positions it needs, and never more than
 * this without being told. */
size_t kv_limit_default(void);

/* Parses a byte count with an optional suffix K, M, G or T (powers of 1024), e.g. "512M".
 * Returns 0, or -1 if it is not one. */
int kv_limit_parse(const char *text, size_t *bytes);

/* Checks that n KV caches of n_ctx positions, one per configuration q[0..n), fit in limit
 * bytes together. hint (e.g. "use -c N") says how to ask for less. Returns 0, or -1 with
 * err set. */
int kv_check(const ModelConfig *c, const QuantConfig *q, int n, int n_ctx, size_t limit,
             const char *hint, char *err, size_t errlen);

/* The memory of every base mode (fp32, w8a16, qrazor, rtn4) at group size `group`: the 7
 * block linears and the KV cache at the model's full context, in bytes and in bits per
 * weight / per entry. Lines fit 80 columns. */
void memory_report(FILE *out, const ModelConfig *c, int group);

/* What -v prints: the model, each of the n modes it was loaded in with its bytes of weights
 * and of KV cache at n_ctx positions (0: nothing runs, as in quantize), the context and its
 * limit, the kernels and threads, then memory_report. */
void command_describe(FILE *out, const char *path, const ModelWeights *w, int n, int n_ctx,
                      size_t kv_limit, const ThreadPool *pool);

/* ------------------------------------------------------------------ modes and output */

enum { MAX_MODES = 32 };

/* The configurations of a mode list ("fp32,qrazor/g32", or "all": every mode and knob of
 * docs/ACCURACY.md), or *single alone when list is NULL; `flag` names the list in errors.
 * Returns how many (1..MAX_MODES), or -1 with err set. */
int mode_list_parse(const char *flag, const char *list, const QuantConfig *single,
                    QuantConfig *configs, char *err, size_t errlen);

/* Prints prefix, then s as a JSON string: quoted, with quotes, backslashes and control
 * characters escaped (a path may hold any of them). */
void print_json_string(FILE *out, const char *prefix, const char *s);

/* The length of the UTF-8 character at s[0..n), or 0 if it is not one (RFC 3629). */
int utf8_char_length(const unsigned char *s, size_t n);

/* s made safe for a terminal, into buf (truncated with "..." if it does not fit): every
 * byte that is not printable text, a control character (ESC, CR, a newline that would
 * split a one-line message, C1 controls) or a byte outside a valid UTF-8 character,
 * becomes \xNN. Messages quote paths and names taken from files (a shard named by JSON, a
 * tensor named by a header) and pass them through this before they reach stderr. */
const char *printable(const char *s, char *buf, size_t len);

/* "error: MESSAGE" and a newline on stderr, the message printable(). */
void print_error(const char *message);

#endif
