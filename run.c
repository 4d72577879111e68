/*
 * run.c - the command line: one table of options, from which -h is printed (with the
 * commands each flag applies to) and every flag is checked against the command it is
 * given to (a flag a run would ignore is an error); then the command runs: generation,
 * chat, eval, bench, explain, quantize, import and tokenize are in engine/commands/.
 *
 * Generation flags follow llama2.c's run.c so its users feel at home. Bad input ends with
 * one line on stderr that says what was wrong, and exit status 1. parse_args returns its
 * errors instead of exiting, so a fuzz harness can drive it (build with -DRUN_NO_MAIN).
 */
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "engine/commands/bench.h"
#include "engine/commands/command.h"
#include "engine/commands/eval.h"
#include "engine/commands/explain.h"
#include "engine/commands/generate.h"
#include "engine/commands/import.h"
#include "engine/commands/quantize.h"
#include "engine/commands/tokenize.h"

#define ERRLEN 1024

/* ------------------------------------------------------------------ the options */

typedef enum { CMD_GENERATE, CMD_CHAT, CMD_EVAL, CMD_BENCH, CMD_EXPLAIN, CMD_QUANTIZE, CMD_IMPORT, N_COMMANDS } Command;
enum { GEN = 1 << CMD_GENERATE, CHAT = 1 << CMD_CHAT, EVAL = 1 << CMD_EVAL, BENCH = 1 << CMD_BENCH,
       EXPLAIN = 1 << CMD_EXPLAIN, QUANT = 1 << CMD_QUANTIZE, IMPORT = 1 << CMD_IMPORT, TEXT = GEN | CHAT,
       MODES = TEXT | EVAL | BENCH, WRITE = QUANT | IMPORT };
/* What chooses each command, as messages name it ("-y goes with -m chat"), and its name in -h. */
static const char *const command_flag[N_COMMANDS] = {"-m generate", "-m chat", "--eval FILE", "--bench", "--explain",
                                                     "quantize", "import"};
static const char *const command_name[N_COMMANDS] = {"generate", "chat", "eval", "bench", "explain", "quantize",
                                                     "import"};

typedef enum { ARG_NONE, ARG_INT, ARG_FLOAT, ARG_TEXT, ARG_WORD } ArgKind;

typedef struct {
    const char *flag, *alias;
    ArgKind kind;
    const char *arg;     /* the value's name in -h */
    double lo, hi;       /* ARG_INT, ARG_FLOAT: the range */
    const char *words;   /* ARG_WORD (and -g): the values allowed, "round|truncate" */
    const char *noun;    /* ARG_WORD: what the value is, for "unknown razoring 'floor'" */
    unsigned commands;   /* the commands it applies to */
    const char *section; /* a heading of -h that starts here */
    const char *help;    /* lines of -h, separated by '\n' */
} OptionSpec;

enum { O_TOKENIZER, O_PROMPT, O_STEPS, O_TEMPERATURE, O_TOP_P, O_SEED, O_MODE, O_SYSTEM, O_CHAT_TEMPLATE, O_CTX,
       O_REFERENCE, O_QUANT, O_EMBEDDING, O_GROUP, O_CLS, O_SDR, O_CACHE_K, O_CACHE_V, O_EVAL, O_EVAL_MODES, O_SCORE, O_JSON, O_BENCH, O_BENCH_MODES, O_PP, O_TG, O_REPS, O_EXPLAIN,
       O_LAYER, O_SITE, O_HEAD, O_SVG, O_THREADS, O_VERBOSE, O_HELP, N_OPTIONS };

static const OptionSpec options[N_OPTIONS] = {
    [O_TOKENIZER] = {"-z", 0, ARG_TEXT, "PATH", .commands = TEXT | EVAL | EXPLAIN,
                     .section = "Generation (llama2.c's flags)",
                     .help = "tokenizer: a sentencepiece .model or a llama2.c\n"
                             "tokenizer.bin (default: the first of tok<VOCAB>.model,\n"
                             "tok<VOCAB>.bin, tokenizer.model, tokenizer.bin beside\n"
                             "MODEL whose vocabulary matches)"},
    [O_PROMPT] = {"-i", 0, ARG_TEXT, "TEXT", .commands = TEXT | EXPLAIN,
                  .help = "prompt (default: none, the story starts from BOS; in\n"
                          "chat, the first message; --explain: \"Once upon a time\")"},
    [O_STEPS] = {"-n", 0, ARG_INT, "INT", 0, INT_MAX, .commands = TEXT,
                 .help = "positions to run, prompt included; 0 = the whole context\n"
                         "(default 256, at most the context)"},
    [O_TEMPERATURE] = {"-t", 0, ARG_FLOAT, "FLOAT", 0, 1e6, .commands = TEXT,
                       .help = "temperature, 0 = greedy (default 1.0)"},
    [O_TOP_P] = {"-p", 0, ARG_FLOAT, "FLOAT", 0, 1, .commands = TEXT,
                 .help = "top-p for nucleus sampling, in [0,1]; 0 or 1 = off\n(default 0.9)"},
    [O_SEED] = {"-s", 0, ARG_INT, "INT", 0, 1e18, .commands = TEXT,
                .help = "random seed (default: the time)"},
    [O_MODE] = {"-m", 0, ARG_WORD, "MODE", .words = "generate|chat", .noun = "mode", .commands = TEXT,
                .help = "generate | chat (in --chat-template's format; a message\nis one line of stdin, at most 64 KiB) (default generate)"},
    [O_SYSTEM] = {"-y", 0, ARG_TEXT, "TEXT", .commands = CHAT, .help = "system prompt in chat mode"},
    [O_CHAT_TEMPLATE] = {"--chat-template", 0, ARG_WORD, "NAME", .words = "llama2|zephyr|chatml|llama3|smollm2",
                         .noun = "chat template", .commands = CHAT | IMPORT,
                         .help = "llama2 | zephyr | chatml | llama3 | smollm2 (default:\n"
                                 "the one an imported model names, else llama2;\n"
                                 "import: guessed from tokenizer_config.json)"},
    [O_CTX] = {"-c", "--ctx-size", ARG_INT, "N", 1, INT_MAX, .commands = TEXT | EVAL,
               .help = "context: the positions the KV cache holds, at most the\n"
                       "model's; -n runs within it (default: -n's positions;\n"
                       "with --eval, the window, default the model's context)"},
    [O_REFERENCE] = {"--reference", 0, ARG_NONE, NULL, .commands = TEXT,
                     .help = "run the reference forward pass (engine/reference.c: one\n"
                             "token at a time, plain loops, one thread) to read along\n"
                             "in a debugger; the same logits as the fast path"},
    [O_QUANT] = {"-q", 0, ARG_TEXT, "MODE", .commands = MODES | WRITE,
                 .section = "Quantization (docs/SPEC.md), for .bin models, quantize and import",
                 .help = "fp32 | w8a16 | qrazor | rtn4 (default qrazor: 4-bit\n"
                         "weights, activations and KV cache, razored from\n"
                         "INT8/INT16/INT8); sdr-w | sdr-a | sdr-kv | sdr-p: w8a16\n"
                         "with one site razored; options may follow:\n"
                         "qrazor/g32/trunc/cls=fp32, qrazor's cache types\n"
                         "/k5 /k8 /v5 /v8 (as -ctk, -ctv), and /rot on any mode:\n"
                         "QuaRot-style rotations (docs/SPEC.md section 7);\n"
                         "quarot = rtn4/rot"},
    [O_GROUP] = {"-g", 0, ARG_INT, "G", 16, 128, .words = "16|32|64|128", .commands = MODES | WRITE | EXPLAIN,
                 .help = "razoring group size: 16, 32, 64 or 128 (default 16)"},
    [O_CLS] = {"--cls", 0, ARG_WORD, "KIND", .words = "fp32|int8|qrazor|rtn4", .noun = "classifier setting",
               .commands = MODES | WRITE, .help = "classifier: fp32 | int8 | qrazor | rtn4 (default: as\nthe mode)"},
    [O_EMBEDDING] = {"--embedding", 0, ARG_WORD, "KIND", .words = "fp32|int8", .noun = "embedding storage",
                     .commands = IMPORT,
                     .help = "import: the token embedding as fp32 or int8 rows with a\n"
                             "scale each (default: int8 when the classifier is\n"
                             "quantized, else fp32; docs/FORMAT.md); as -q's\n"
                             "/emb=int8, which --eval-modes compares"},
    [O_SDR] = {"--sdr", 0, ARG_WORD, "HOW", .words = "round|truncate", .noun = "razoring",
               .commands = MODES | WRITE | EXPLAIN, .help = "razoring: round | truncate (default round)"},
    [O_CACHE_K] = {"-ctk", "--cache-type-k", ARG_WORD, "TYPE", .words = "r4|r5|i8", .noun = "cache type",
                   .commands = MODES | EXPLAIN,
                   .help = "qrazor's key cache: r4 (4-bit razored codes, the\n"
                           "default), r5 (5-bit razored codes) or i8 (INT8, not\n"
                           "razored): docs/SPEC.md section 6; .qrz files too"},
    [O_CACHE_V] = {"-ctv", "--cache-type-v", ARG_WORD, "TYPE", .words = "r4|r5|i8", .noun = "cache type",
                   .commands = MODES, .help = "qrazor's value cache: r4 | r5 | i8 (default r4)"},
    [O_EVAL] = {"--eval", 0, ARG_TEXT, "FILE", .commands = EVAL, .section = "Evaluation",
                .help = "perplexity of a UTF-8 text file (documents separated by\n"
                        "<|endoftext|> lines are joined with BOS), and KL\n"
                        "divergence and top-1 agreement against fp32, in windows\n"
                        "of -c tokens"},
    [O_EVAL_MODES] = {"--eval-modes", 0, ARG_TEXT, "LIST", .commands = EVAL,
                      .help = "modes to compare in one run, e.g. fp32,qrazor,quarot;\n"
                              "'all' = every mode and knob (default: -q's mode)"},
    [O_SCORE] = {"--score", 0, ARG_WORD, "HOW", .words = "half|all", .noun = "scoring", .commands = EVAL,
                 .help = "half | all: score each window's second half (default),\nor every next token"},
    [O_JSON] = {"--json", 0, ARG_NONE, NULL, .commands = EVAL | BENCH,
                .help = "print the results as JSON (also with --bench)"},
    [O_BENCH] = {"--bench", 0, ARG_NONE, NULL, .commands = BENCH,
                 .section = "Benchmark (no text: the tokens are fixed pseudo-random ids)",
                 .help = "prompt processing (pp: one batched pass) and text\n"
                         "generation (tg: one token at a time) tokens/s, the\n"
                         "median of the repetitions after a warm-up, min and max"},
    [O_BENCH_MODES] = {"--bench-modes", 0, ARG_TEXT, "LIST", .commands = BENCH,
                       .help = "modes to measure, interleaved repetition by repetition\n(default: -q's mode)"},
    [O_PP] = {"--pp", 0, ARG_INT, "N", 0, INT_MAX, .commands = BENCH,
              .help = "tokens of the pp test (default 128; 0 skips it)"},
    [O_TG] = {"--tg", 0, ARG_INT, "N", 0, INT_MAX, .commands = BENCH,
              .help = "tokens of the tg test (default 128; 0 skips it)"},
    [O_REPS] = {"--reps", 0, ARG_INT, "N", 1, BENCH_MAX_REPS, .commands = BENCH, .help = "repetitions (default 5)"},
    [O_EXPLAIN] = {"--explain", 0, ARG_NONE, NULL, .commands = EXPLAIN,
                   .section = "Explain (W4A4 with the model's own numbers; a .bin model, one thread)",
                   .help = "retrace one product at the prompt's last token in\n"
                           "integers, then the SQNR per layer and site, and memory"},
    [O_LAYER] = {"--layer", 0, ARG_INT, "L", 0, INT_MAX, .commands = EXPLAIN, .help = "which layer (default 0)"},
    [O_SITE] = {"--site", 0, ARG_WORD, "SITE", .words = "wq|wk|wv|wo|w1|w2|w3|qk|pv", .noun = "site",
                .commands = EXPLAIN, .help = "wq | wk | wv | wo | w1 | w2 | w3 | qk | pv (default wq)"},
    [O_HEAD] = {"--head", 0, ARG_INT, "H", 0, INT_MAX, .commands = EXPLAIN,
                .help = "the query head for qk and pv (default 0)"},
    [O_SVG] = {"--explain-svg", 0, ARG_TEXT, "FILE", .commands = EXPLAIN,
               .help = "also draw the activations and the SQNR as an SVG"},
    [O_THREADS] = {"-j", 0, ARG_INT, "N", 1, 256, .commands = MODES | QUANT, .section = "Runtime",
                   .help = "threads (default: the CPUs this process may run on)"},
    [O_VERBOSE] = {"-v", "--info", ARG_NONE, NULL, .commands = MODES | QUANT,
                   .help = "print the configuration, kernels, context and memory,\nthen continue"},
    [O_HELP] = {"-h", "--help", ARG_NONE, NULL, .commands = ~0u, .help = "this text"},
};

/* items[0..n) as "a", "a or b", "a, b or c" (last: " or " or " and "). */
static const char *join(const char *const *items, int n, const char *last, char *buf, size_t len) {
    size_t at = 0;
    buf[0] = '\0';
    for (int k = 0; k < n && at < len; k++)
        at += (size_t)snprintf(buf + at, len - at, "%s%s", k == 0 ? "" : k == n - 1 ? last : ", ", items[k]);
    return buf;
}

static void usage(FILE *out) {
    fputs("Usage:   run MODEL [options]                   generate (or chat: -m chat)\n"
          "         run MODEL --eval TEXT_FILE [options]  perplexity and KL against fp32\n"
          "         run MODEL --bench [options]           tokens per second\n"
          "         run MODEL --explain [options]         the W4A4 arithmetic, step by step\n"
          "         run quantize IN.bin OUT.qrz [options] write a 4-bit model file\n"
          "         run import HF_DIR OUT.qrz [options]   the same from a Hugging Face dir\n"
          "         run tokenize MODEL FILE               FILE's token ids\n"
          "Example: run models/stories260K.bin -n 256 -i \"Once upon a time\"\n\n"
          "MODEL: a llama2.c checkpoint (.bin, quantized at load), a .qrz file (from\n"
          "`run quantize` or `run import`) or, for tokenize, a tokenizer file. A flag\n"
          "given to a command not in its [brackets] is an error.\n", out);
    for (const OptionSpec *s = options; s < options + N_OPTIONS; s++) {
        char left[40];
        snprintf(left, sizeof left, "%s%s%s%s%s", s->flag, s->alias ? ", " : "", s->alias ? s->alias : "",
                 s->arg ? " " : "", s->arg ? s->arg : "");
        if (s->section) fprintf(out, "\n%s:\n", s->section);
        if (strlen(left) > 18) { /* a long flag gets a line of its own */
            fprintf(out, "  %s\n", left);
            left[0] = '\0';
        }
        for (const char *h = s->help; *h; left[0] = '\0') { /* the help, line by line */
            const int len = (int)strcspn(h, "\n");
            fprintf(out, "  %-18s %.*s\n", left, len, h);
            h += len + (h[len] == '\n');
        }
        const char *names[N_COMMANDS];
        char list[128];
        int n = 0;
        for (int c = 0; c < N_COMMANDS; c++)
            if (s->commands >> c & 1) names[n++] = command_name[c];
        fprintf(out, "  %-18s [%s]\n", "", n == N_COMMANDS ? "every command" : join(names, n, ", ", list, sizeof list));
    }
    fputs("\nEnvironment:\n  QRAZOR_SIMD=LEVEL     force a kernel level: scalar, avx2, avx512, neon,\n"
          "                        dotprod, i8mm\n"
          "  QRAZOR_KV_LIMIT=SIZE  most KV cache a run may allocate, e.g. 512M\n"
          "                        (default: half of the physical memory)\n", out);
}

/* ------------------------------------------------------------------ parsing */

typedef struct {
    Command command;
    int threads;
    GenerateOptions generate;
    EvalOptions eval;
    BenchOptions bench;
    ExplainOptions explain;
    QuantizeOptions quantize;
    ImportOptions import;
} Options;

typedef struct {
    int at;           /* its place in argv; 0: not given */
    const char *flag; /* as typed: -v or --info */
    const char *text; /* the value */
    long i;           /* ARG_INT: the number; ARG_WORD: which word */
    double f;
} Value;

enum { PARSE_ERROR = -1, PARSE_RUN = 0, PARSE_HELP = 1 };

__attribute__((format(printf, 3, 4))) static int fail(char *err, size_t errlen, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    return PARSE_ERROR;
}

/* Which of words ("a|b|c") s is, or -1; list receives them as "a, b or c". */
static int word_index(const char *words, const char *s, char *list, size_t len) {
    char copy[128], *save = NULL;
    const char *items[16];
    int n = 0, found = -1;
    snprintf(copy, sizeof copy, "%s", words);
    for (char *w = strtok_r(copy, "|", &save); w && n < 16; w = strtok_r(NULL, "|", &save)) {
        if (!strcmp(w, s)) found = n;
        items[n++] = w;
    }
    join(items, n, " or ", list, len);
    return found;
}

static int parse_value(const OptionSpec *s, Value *v, char *err, size_t errlen) {
    char *end, list[128];
    errno = 0;
    if (s->kind == ARG_INT) {
        v->i = strtol(v->text, &end, 10);
        if (errno || end == v->text || *end || v->i < s->lo || v->i > s->hi)
            return fail(err, errlen, "%s expects an integer in %.0f..%.0f, got '%s'", v->flag, s->lo, s->hi, v->text);
        if (s->words && word_index(s->words, v->text, list, sizeof list) < 0)
            return fail(err, errlen, "%s takes %s, got %s", v->flag, list, v->text);
    } else if (s->kind == ARG_FLOAT) {
        v->f = strtod(v->text, &end);
        if (errno || end == v->text || *end || !(v->f >= s->lo && v->f <= s->hi))
            return fail(err, errlen, "%s expects a number in [%g, %g], got '%s'", v->flag, s->lo, s->hi, v->text);
    } else if (s->kind == ARG_WORD && (v->i = word_index(s->words, v->text, list, sizeof list)) < 0) {
        return fail(err, errlen, "unknown %s '%s': %s takes %s", s->noun, v->text, v->flag, list);
    }
    return PARSE_RUN;
}

/* The command the flags choose (-m, --eval, --bench, --explain; quantize by its place),
 * then the first flag, in argv order, that does not apply to it is an error. */
static int choose_command(const Value *v, Command *cmd, char *err, size_t errlen) {
    static const int selectors[] = {O_MODE, O_EVAL, O_BENCH, O_EXPLAIN};
    for (int k = 0, chosen = -1; k < 4 && *cmd != CMD_QUANTIZE && *cmd != CMD_IMPORT; k++) {
        const int id = selectors[k];
        if (!v[id].at) continue;
        if (chosen >= 0) {
            const int a = v[chosen].at < v[id].at ? chosen : id, b = a == id ? chosen : id;
            return fail(err, errlen, "%s does not combine with %s: they are separate runs", v[a].flag, v[b].flag);
        }
        chosen = id;
        *cmd = id == O_MODE ? (Command)v[id].i : id == O_EVAL ? CMD_EVAL : id == O_BENCH ? CMD_BENCH : CMD_EXPLAIN;
    }
    int bad = -1;
    for (int id = 0; id < N_OPTIONS; id++)
        if (v[id].at && !(options[id].commands >> *cmd & 1) && (bad < 0 || v[id].at < v[bad].at)) bad = id;
    if (bad < 0) return PARSE_RUN;
    const char *items[N_OPTIONS];
    char list[512];
    int n = 0;
    if (*cmd == CMD_GENERATE || *cmd == CMD_CHAT) { /* no run was chosen: say where the flag belongs */
        for (int c = 0; c < N_COMMANDS; c++)
            if (options[bad].commands >> c & 1) items[n++] = command_flag[c];
        return fail(err, errlen, "%s goes with %s", v[bad].flag, join(items, n, " or ", list, sizeof list));
    }
    for (int id = 0; id < O_HELP; id++) /* say what the chosen run takes, besides what chose it */
        if (options[id].commands >> *cmd & 1 && id != O_MODE && id != O_EVAL && id != O_BENCH && id != O_EXPLAIN)
            items[n++] = options[id].flag;
    return fail(err, errlen, "%s does not apply to %.*s, which takes %s", v[bad].flag,
                (int)strcspn(command_flag[*cmd], " "), command_flag[*cmd], join(items, n, " and ", list, sizeof list));
}

/* Each command's options, from the values given and the defaults. */
static int build_options(const Value *v, Options *o, char *err, size_t errlen) {
    GenerateOptions *g = &o->generate;
    QuantConfig *q = &g->quant;
    char why[ERRLEN];
    if (quant_config_parse(v[O_QUANT].text, q, why, sizeof why) != 0) /* NULL: the default mode */
        return fail(err, errlen, "-q: %s", why);
    q->group = v[O_GROUP].at ? (int)v[O_GROUP].i : q->group;
    q->rounding = v[O_SDR].at ? v[O_SDR].i == 0 : q->rounding;
    if (v[O_CLS].at) quant_kind_parse_cls(v[O_CLS].text, &q->cls);
    g->quant_given = v[O_QUANT].at || v[O_GROUP].at || v[O_SDR].at || v[O_CLS].at;
    const char *modes = v[O_EVAL_MODES].at ? v[O_EVAL_MODES].text : v[O_BENCH_MODES].text;
    const int knob = v[O_GROUP].at && (!v[O_SDR].at || v[O_GROUP].at < v[O_SDR].at) ? O_GROUP : O_SDR;
    if (modes && g->quant_given)
        return fail(err, errlen, "mode lists take whole modes (e.g. qrazor/g32/cls=fp32); drop -q, -g, --cls, --sdr");
    CacheTypes *cache = &g->cache;
    cache->given = v[O_CACHE_K].at || v[O_CACHE_V].at;
    quant_cache_type_parse(v[O_CACHE_K].text, &cache->keys); /* NULL: the default type */
    quant_cache_type_parse(v[O_CACHE_V].text, &cache->values);
    if (modes && cache->given)
        return fail(err, errlen, "mode lists take whole modes (e.g. qrazor/k5/v5); drop -ctk, -ctv");
    if (v[knob].at && o->command != CMD_EXPLAIN && !quant_config_razors(q))
        return fail(err, errlen, "%s sets the razoring, but mode %s razors nothing", v[knob].flag, v[O_QUANT].text);
    if (o->command == CMD_BENCH && v[O_PP].at && v[O_TG].at && !v[O_PP].i && !v[O_TG].i)
        return fail(err, errlen, "--pp 0 and --tg 0 leave nothing to measure");
    g->tokenizer_path = v[O_TOKENIZER].text;
    g->prompt = v[O_PROMPT].at ? v[O_PROMPT].text : o->command == CMD_EXPLAIN ? "Once upon a time" : "";
    g->system_prompt = v[O_SYSTEM].text;
    g->steps = v[O_STEPS].at ? v[O_STEPS].i : -1;
    g->ctx = (int)v[O_CTX].i;
    g->temperature = v[O_TEMPERATURE].at ? (float)v[O_TEMPERATURE].f : 1.0f;
    g->top_p = v[O_TOP_P].at ? (float)v[O_TOP_P].f : 0.9f;
    g->seed = v[O_SEED].i ? (unsigned long long)v[O_SEED].i : (unsigned long long)time(NULL);
    g->seed += g->seed == 0; /* xorshift must not start at 0 */
    g->verbose = v[O_VERBOSE].at != 0;
    g->chat = o->command == CMD_CHAT;
    g->reference = v[O_REFERENCE].at != 0;
    o->threads = v[O_THREADS].at ? (int)v[O_THREADS].i : threadpool_default_threads();
    o->eval = (EvalOptions){.model_path = g->model_path, .tokenizer_path = g->tokenizer_path,
                            .text_path = v[O_EVAL].text, .modes = modes, .quant = *q, .quant_given = g->quant_given,
                            .cache = *cache, .window = g->ctx, .score_all = v[O_SCORE].i == 1, .json = v[O_JSON].at != 0,
                            .verbose = g->verbose};
    o->bench = (BenchOptions){.model_path = g->model_path, .modes = modes, .quant = *q, .quant_given = g->quant_given,
                              .cache = *cache, .pp = v[O_PP].at ? (int)v[O_PP].i : 128, .tg = v[O_TG].at ? (int)v[O_TG].i : 128,
                              .reps = v[O_REPS].at ? (int)v[O_REPS].i : 5, .json = v[O_JSON].at != 0,
                              .verbose = g->verbose};
    o->explain = (ExplainOptions){.model_path = g->model_path, .tokenizer_path = g->tokenizer_path,
                                  .prompt = g->prompt, .layer = (int)v[O_LAYER].i, .head = (int)v[O_HEAD].i,
                                  .site = SITE_WQ, .group = q->group, .rounding = q->rounding, .keys = cache->keys,
                                  .svg_path = v[O_SVG].text};
    if (o->command == CMD_EXPLAIN && cache->keys == QUANT_INT)
        return fail(err, errlen, "-ctk i8 keys are not razored: --explain shows r4 or r5");
    if (v[O_SITE].at) site_parse(v[O_SITE].text, &o->explain.site);
    o->quantize = (QuantizeOptions){.in_path = g->model_path, .out_path = o->quantize.out_path, .quant = *q,
                                    .verbose = g->verbose};
    o->import = (ImportOptions){.in_dir = g->model_path, .out_path = o->quantize.out_path, .quant = *q,
                                .chat_template = v[O_CHAT_TEMPLATE].text};
    if (v[O_EMBEDDING].at) o->import.quant.embedding = v[O_EMBEDDING].i == 1 ? QUANT_INT : QUANT_F32;
    else quant_config_default_embedding(&o->import.quant, v[O_QUANT].text);
    g->chat_template = v[O_CHAT_TEMPLATE].text;
    return PARSE_RUN;
}

/* Parses argv into *o. Returns PARSE_RUN, PARSE_HELP (print usage, exit 0) or PARSE_ERROR
 * with the reason in err; it never exits and allocates nothing. */
static int parse_args(int argc, char **argv, Options *o, char *err, size_t errlen) {
    Value v[N_OPTIONS] = {{0}};
    memset(o, 0, sizeof *o);
    if (argc < 2) return fail(err, errlen, "no model given (see -h)");
    if (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help")) return PARSE_HELP;
    if (argv[1][0] == '-') return fail(err, errlen, "the first argument must be the model file, got '%s' (see -h)", argv[1]);
    int i = 1;
    if (!strcmp(argv[1], "quantize") || !strcmp(argv[1], "import")) { /* COMMAND IN OUT [options] */
        const int quantize = !strcmp(argv[1], "quantize");
        o->command = quantize ? CMD_QUANTIZE : CMD_IMPORT;
        if (argc >= 3 && (!strcmp(argv[2], "-h") || !strcmp(argv[2], "--help"))) return PARSE_HELP;
        if (argc < 4 || argv[2][0] == '-' || argv[3][0] == '-')
            return fail(err, errlen, "usage: run %s (see -h)",
                        quantize ? "quantize IN.bin OUT.qrz [options]" : "import HF_DIR OUT.qrz [options]");
        o->quantize.out_path = argv[3];
        i = 2;
    }
    o->generate.model_path = argv[i];
    for (i += 1 + (o->command == CMD_QUANTIZE || o->command == CMD_IMPORT); i < argc; i++) {
        int id = 0;
        while (id < N_OPTIONS && strcmp(argv[i], options[id].flag) &&
               !(options[id].alias && !strcmp(argv[i], options[id].alias)))
            id++;
        if (id == N_OPTIONS)
            return fail(err, errlen, "%s '%s' (see -h)", argv[i][0] == '-' ? "unknown option" : "unexpected argument",
                        argv[i]);
        if (id == O_HELP) return PARSE_HELP;
        v[id] = (Value){.at = i, .flag = argv[i]};
        if (options[id].kind == ARG_NONE) continue;
        if (i + 1 == argc) return fail(err, errlen, "%s needs a value (see -h)", argv[i]);
        v[id].text = argv[++i];
        if (parse_value(&options[id], &v[id], err, errlen) != PARSE_RUN) return PARSE_ERROR;
    }
    if (choose_command(v, &o->command, err, errlen) != PARSE_RUN) return PARSE_ERROR;
    return build_options(v, o, err, errlen);
}

/* ------------------------------------------------------------------ main */

#ifndef RUN_NO_MAIN
int main(int argc, char **argv) {
    char err[ERRLEN];
    Options o;
    if (argc >= 2 && !strcmp(argv[1], "tokenize")) /* no options: the ids alone, as llama-tokenize */
        return tokenize_command(argc - 2, argv + 2, err, sizeof err) == 0 ? EXIT_SUCCESS : (print_error(err), EXIT_FAILURE);
    const int parsed = argc < 2 ? PARSE_HELP : parse_args(argc, argv, &o, err, sizeof err);
    if (parsed == PARSE_HELP) usage(argc < 2 ? stderr : stdout); /* no arguments at all: usage, and fail */
    if (parsed == PARSE_ERROR) print_error(err);
    if (parsed != PARSE_RUN) return parsed == PARSE_HELP && argc >= 2 ? EXIT_SUCCESS : EXIT_FAILURE;

    size_t kv_limit = 0;
    ThreadPool *pool = NULL;
    int rc = -1;
    if (command_environment(&kv_limit, err, sizeof err) == 0 &&
        !(pool = threadpool_new(o.command == CMD_EXPLAIN ? 1 : o.threads))) /* explain: one thread */
        snprintf(err, sizeof err, "cannot start %d threads", o.threads);
    o.generate.kv_limit = o.eval.kv_limit = o.bench.kv_limit = o.explain.kv_limit = kv_limit;
    o.explain.color = isatty(1) && !getenv("NO_COLOR");
    switch (pool ? o.command : N_COMMANDS) {
    case CMD_GENERATE:
    case CMD_CHAT: rc = generate_command(&o.generate, pool, err, sizeof err); break;
    case CMD_EVAL: rc = eval_command(&o.eval, pool, err, sizeof err); break;
    case CMD_BENCH: rc = bench_command(&o.bench, pool, err, sizeof err); break;
    case CMD_EXPLAIN: rc = explain_command(&o.explain, stdout, err, sizeof err); break;
    case CMD_QUANTIZE: rc = quantize_command(&o.quantize, pool, err, sizeof err); break;
    case CMD_IMPORT: rc = import_command(&o.import, err, sizeof err); break;
    case N_COMMANDS: break; /* err says why there is no pool */
    }
    threadpool_free(pool);
    if (rc != 0) print_error(err);
    return rc == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
#endif
