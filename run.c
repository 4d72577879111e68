/*
 * run.c - the command line: generate text or chat, evaluate modes on a text file, or
 * convert a checkpoint to a quantized .qrz file.
 *
 *   ./run MODEL [options]                     generate (or chat, -m chat)
 *   ./run MODEL --eval TEXT [options]          perplexity and KL against fp32
 *   ./run MODEL --bench [options]              tokens per second, llama-bench style
 *   ./run MODEL --explain [options]            W4A4 arithmetic, step by step
 *   ./run quantize IN.bin OUT.qrz [options]    write a 4-bit model file
 *
 * Generation flags follow llama2.c's run.c so its users feel at home. Every bad input ends
 * with one line on stderr that says what was wrong, and exit status 1.
 */
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "engine/bench.h"
#include "engine/clock.h"
#include "engine/eval.h"
#include "engine/explain.h"
#include "engine/sampler.h"
#include "engine/transformer.h"
#include "kernels/simd.h"
#include "kernels/threadpool.h"
#include "tokenizer/tokenizer.h"
#include "weights/model.h"
#include "weights/qrz.h"

#define ERRLEN 512

static void usage(FILE *out) {
    fprintf(out,
            "Usage:   run MODEL [options]\n"
            "         run MODEL --eval TEXT_FILE [options]\n"
            "         run MODEL --bench [options]\n"
            "         run MODEL --explain [-i PROMPT] [--layer L] [--site SITE] [-g G]\n"
            "         run quantize IN.bin OUT.qrz [-q MODE] [-g G] [--cls KIND] [--sdr HOW]\n"
            "Example: run models/stories260K.bin -n 256 -i \"Once upon a time\"\n"
            "\n"
            "MODEL is a llama2.c checkpoint (.bin, quantized at load) or a .qrz file\n"
            "(already quantized by `run quantize`).\n"
            "\n"
            "Generation (llama2.c's flags):\n"
            "  -z PATH     tokenizer: a sentencepiece .model or a llama2.c tokenizer.bin\n"
            "              (default: the first of tok<VOCAB>.model, tok<VOCAB>.bin,\n"
            "              tokenizer.model, tokenizer.bin beside MODEL whose vocabulary\n"
            "              matches the model)\n"
            "  -i TEXT     prompt (default: empty, the story starts from BOS)\n"
            "  -n INT      positions to run, prompt included; 0 = the model's context\n"
            "              (default 256, capped at the context)\n"
            "  -t FLOAT    temperature, 0 = greedy (default 1.0)\n"
            "  -p FLOAT    top-p for nucleus sampling, in [0,1]; 0 or 1 = off (default 0.9)\n"
            "  -s INT      random seed (default: the time)\n"
            "  -m MODE     generate | chat (default generate)\n"
            "  -y TEXT     system prompt in chat mode\n"
            "\n"
            "Quantization (docs/SPEC.md), for .bin models:\n"
            "  -q MODE     fp32 | w8a16 | qrazor | rtn4 (default qrazor: 4-bit weights,\n"
            "              activations and KV cache, razored from INT8/INT16/INT8);\n"
            "              sdr-w | sdr-a | sdr-kv | sdr-p: w8a16 with one site razored;\n"
            "              options may follow: qrazor/g32/trunc/cls=fp32\n"
            "  -g G        razoring group size: 16, 32, 64 or 128 (default 16)\n"
            "  --cls KIND  classifier: fp32 | int8 | qrazor | rtn4 (default: as the mode)\n"
            "  --sdr HOW   razoring: round | truncate (default round)\n"
            "\n"
            "Evaluation:\n"
            "  --eval FILE         perplexity of a UTF-8 text file (documents separated\n"
            "                      by <|endoftext|> lines are joined with BOS), and KL\n"
            "                      divergence and top-1 agreement against fp32\n"
            "  --eval-modes LIST   modes to compare in one run, e.g. fp32,qrazor,rtn4;\n"
            "                      'all' = every mode and knob (default: -q's mode)\n"
            "  --ctx N             window length (default: the model's context)\n"
            "  --score half|all    score each window's second half (default), or every\n"
            "                      next token\n"
            "  --json              print the results as JSON (also with --bench)\n"
            "\n"
            "Benchmark (no text is generated; tokens are fixed pseudo-random ids):\n"
            "  --bench             prompt processing (pp: one batched pass) and text\n"
            "                      generation (tg: one token at a time) tokens/s, the median\n"
            "                      of the repetitions after a warm-up, with min and max\n"
            "  --bench-modes LIST  modes to measure, interleaved repetition by repetition\n"
            "                      (default: -q's mode)\n"
            "  --pp N, --tg N      test sizes (default 128 each; 0 skips a test)\n"
            "  --reps N            repetitions (default 5)\n"
            "\n"
            "Explain (W4A4 inference with the model's own numbers; needs a .bin model):\n"
            "  --explain           retrace one product at the prompt's last token in\n"
            "                      integers, then SQNR per layer and site, and memory\n"
            "  --layer L           which layer (default 0)\n"
            "  --site SITE         wq | wk | wv | wo | w1 | w2 | w3 | qk | pv (default wq)\n"
            "  --head H            the query head for qk and pv (default 0)\n"
            "  --explain-svg FILE  also draw the activations and the SQNR as an SVG\n"
            "  (the prompt defaults to \"Once upon a time\"; -g and --sdr apply)\n"
            "\n"
            "Runtime:\n"
            "  -j N        threads (default: the number of online CPUs)\n"
            "  -v, --info  print the configuration, kernels and memory, then continue\n"
            "  -h, --help  this text\n"
            "\n"
            "Environment: QRAZOR_SIMD=scalar|avx2|avx512 forces a kernel level.\n");
}

/* Prints "error: ..." and exits 1: the one way this program fails. */
static void die(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fputs("error: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    exit(EXIT_FAILURE);
}

static long parse_int(const char *flag, const char *s, long lo, long hi) {
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end != '\0' || v < lo || v > hi)
        die("%s expects an integer in %ld..%ld, got '%s'", flag, lo, hi, s);
    return v;
}

static float parse_float(const char *flag, const char *s, float lo, float hi) {
    char *end;
    errno = 0;
    float v = strtof(s, &end);
    if (errno || end == s || *end != '\0' || !(v >= lo && v <= hi))
        die("%s expects a number in [%g, %g], got '%s'", flag, lo, hi, s);
    return v;
}

/* ------------------------------------------------------------------ options */

typedef struct {
    const char *command;      /* "generate", "chat", "eval" or "quantize" */
    const char *model_path;
    const char *output_path;  /* quantize: the .qrz to write */
    const char *tokenizer_path; /* NULL: look beside the model */
    const char *prompt;
    const char *system_prompt;
    long steps; /* -1: not given (256, capped at the context) */
    float temperature, top_p;
    uint64_t seed;
    QuantConfig quant;
    int quant_given; /* -q, -g, --cls or --sdr was used */
    int threads;
    int verbose;
    /* evaluation */
    const char *eval_path, *eval_modes;
    int ctx;         /* 0: the model's context */
    int score_all, json;
    /* benchmark */
    int bench;
    const char *bench_modes;
    int pp, tg, reps;
    /* explain */
    int explain, layer, head;
    const char *site, *svg_path;
} Options;

/* The value of the option at argv[*i], advancing *i past it. */
static const char *option_value(int argc, char **argv, int *i) {
    if (*i + 1 >= argc) die("%s needs a value (see -h)", argv[*i]);
    return argv[++*i];
}

static int is_help(const char *arg) {
    return !strcmp(arg, "-h") || !strcmp(arg, "--help");
}

static Options parse_options(int argc, char **argv) {
    Options o = {.command = "generate", .prompt = "", .steps = -1, .temperature = 1.0f,
                 .top_p = 0.9f, .threads = threadpool_default_threads(), .pp = 128, .tg = 128,
                 .reps = 5};
    int bench_sizes_given = 0, mode_given = 0;
    const char *mode = "qrazor", *cls = NULL, *sdr = NULL;
    const char *sampling_flag = NULL; /* the first of -n -t -p -s, for the checks below */
    const char *prompt_flag = NULL;   /* -i */
    int group = 0;
    char err[ERRLEN];
    if (argc < 2) {
        usage(stderr);
        exit(EXIT_FAILURE);
    }
    if (is_help(argv[1])) {
        usage(stdout);
        exit(EXIT_SUCCESS);
    }
    int i = 1;
    if (!strcmp(argv[1], "quantize")) {
        if (argc >= 3 && is_help(argv[2])) {
            usage(stdout);
            exit(EXIT_SUCCESS);
        }
        if (argc < 4 || argv[2][0] == '-' || argv[3][0] == '-')
            die("usage: run quantize IN.bin OUT.qrz [-q MODE] [-g G] [--cls KIND] [--sdr HOW]");
        o.command = "quantize";
        o.model_path = argv[2];
        o.output_path = argv[3];
        i = 3;
    } else {
        if (argv[1][0] == '-')
            die("the first argument must be the model file, got '%s' (see -h)", argv[1]);
        o.model_path = argv[1];
    }
    for (i++; i < argc; i++) {
        const char *flag = argv[i];
        if (!strcmp(o.command, "quantize") && strcmp(flag, "-q") && strcmp(flag, "-g") &&
            strcmp(flag, "--cls") && strcmp(flag, "--sdr") && strcmp(flag, "-j") &&
            strcmp(flag, "-v") && strcmp(flag, "--info") && !is_help(flag))
            die("%s does not apply to quantize, which takes -q, -g, --cls, --sdr, -j and -v", flag);
        if (is_help(flag)) {
            usage(stdout);
            exit(EXIT_SUCCESS);
        } else if (!strcmp(flag, "-v") || !strcmp(flag, "--info")) {
            o.verbose = 1;
        } else if (!strcmp(flag, "--json")) {
            o.json = 1;
        } else if (!strcmp(flag, "--bench")) {
            o.bench = 1;
        } else if (!strcmp(flag, "--explain")) {
            o.explain = 1;
        } else if (!strcmp(flag, "--layer")) {
            o.layer = (int)parse_int("--layer", option_value(argc, argv, &i), 0, INT_MAX);
        } else if (!strcmp(flag, "--head")) {
            o.head = (int)parse_int("--head", option_value(argc, argv, &i), 0, INT_MAX);
        } else if (!strcmp(flag, "--site")) {
            o.site = option_value(argc, argv, &i);
        } else if (!strcmp(flag, "--explain-svg")) {
            o.svg_path = option_value(argc, argv, &i);
        } else if (!strcmp(flag, "--bench-modes")) {
            o.bench_modes = option_value(argc, argv, &i);
        } else if (!strcmp(flag, "--pp") || !strcmp(flag, "--tg") || !strcmp(flag, "--reps")) {
            const long v = parse_int(flag, option_value(argc, argv, &i), !strcmp(flag, "--reps"),
                                     !strcmp(flag, "--reps") ? BENCH_MAX_REPS : INT_MAX);
            *(flag[2] == 'p' ? &o.pp : flag[2] == 't' ? &o.tg : &o.reps) = (int)v;
            bench_sizes_given = 1;
        } else if (!strcmp(flag, "--cls")) {
            cls = option_value(argc, argv, &i);
        } else if (!strcmp(flag, "--sdr")) {
            sdr = option_value(argc, argv, &i);
            if (strcmp(sdr, "round") != 0 && strcmp(sdr, "truncate") != 0)
                die("unknown razoring '%s': --sdr takes round or truncate", sdr);
        } else if (!strcmp(flag, "--eval")) {
            o.eval_path = option_value(argc, argv, &i);
        } else if (!strcmp(flag, "--eval-modes")) {
            o.eval_modes = option_value(argc, argv, &i);
        } else if (!strcmp(flag, "--ctx")) {
            o.ctx = (int)parse_int("--ctx", option_value(argc, argv, &i), 2, INT_MAX);
        } else if (!strcmp(flag, "--score")) {
            const char *how = option_value(argc, argv, &i);
            if (strcmp(how, "half") != 0 && strcmp(how, "all") != 0)
                die("unknown scoring '%s': --score takes half or all", how);
            o.score_all = !strcmp(how, "all");
        } else if (flag[0] == '-' && strlen(flag) == 2) {
            const char *val = option_value(argc, argv, &i);
            if (strchr("ntps", flag[1]) && !sampling_flag) sampling_flag = flag;
            switch (flag[1]) {
            case 'z': o.tokenizer_path = val; break;
            case 'i': o.prompt = val; prompt_flag = flag; break;
            case 'y': o.system_prompt = val; break;
            case 'm':
                if (strcmp(val, "generate") != 0 && strcmp(val, "chat") != 0)
                    die("unknown mode '%s': -m takes generate or chat", val);
                o.command = val;
                mode_given = 1;
                break;
            case 'q': mode = val; o.quant_given = 1; break;
            case 'g': {
                const long g = parse_int("-g", val, 16, 128);
                if (g != 16 && g != 32 && g != 64 && g != 128)
                    die("-g takes 16, 32, 64 or 128, got %ld", g);
                group = (int)g;
                break;
            }
            case 'j': o.threads = (int)parse_int("-j", val, 1, 256); break;
            case 'n': o.steps = parse_int("-n", val, 0, INT_MAX); break;
            case 't': o.temperature = parse_float("-t", val, 0.0f, 1e6f); break;
            case 'p': o.top_p = parse_float("-p", val, 0.0f, 1.0f); break;
            case 's': o.seed = (uint64_t)parse_int("-s", val, 0, LONG_MAX); break;
            default: die("unknown option '%s' (see -h)", flag);
            }
        } else {
            die("unexpected argument '%s' (see -h)", flag);
        }
    }
    if (quant_config_parse(mode, &o.quant, err, sizeof err) != 0) die("-q: %s", err);
    if (group) o.quant.group = group;
    if (sdr) o.quant.rounding = !strcmp(sdr, "round");
    if (cls && quant_kind_parse_cls(cls, &o.quant.cls) != 0)
        die("unknown classifier setting '%s': --cls takes fp32, int8, qrazor or rtn4", cls);
    o.quant_given |= group || sdr || cls;

    /* Each run takes its own flags; a flag that would be ignored is an error instead. */
    if ((o.eval_path != NULL) + o.bench + o.explain > 1) die("--eval, --bench and --explain are separate runs");
    const char *run = o.eval_path ? "--eval" : o.bench ? "--bench" : o.explain ? "--explain" : NULL;
    if (run) {
        if (mode_given) die("%s does not combine with -m", run);
        if (sampling_flag) die("%s does not apply to %s (it samples no text)", sampling_flag, run);
        if (o.system_prompt) die("-y does not apply to %s", run);
        if (prompt_flag && !o.explain) die("-i does not apply to %s", run);
        if (o.verbose && o.explain) die("-v does not apply to --explain, which prints it all");
    }
    if (o.system_prompt && strcmp(o.command, "chat") != 0) die("-y (system prompt) goes with -m chat");
    if (o.explain) {
        o.command = "explain";
        if (!o.site) o.site = "wq";
        if (!o.prompt[0]) o.prompt = "Once upon a time";
        if (strcmp(mode, "qrazor") != 0 || cls)
            die("--explain shows the qrazor arithmetic; it takes -g and --sdr, not -q or --cls");
    } else if (o.site || o.svg_path || o.layer || o.head) {
        die("--layer, --site, --head and --explain-svg go with --explain");
    }
    if (o.eval_path) {
        o.command = "eval";
    } else if (o.eval_modes || o.ctx || o.score_all) {
        die("--eval-modes, --ctx and --score go with --eval FILE");
    }
    if (o.bench) {
        o.command = "bench";
        if (o.pp == 0 && o.tg == 0) die("--pp 0 and --tg 0 leave nothing to measure");
    } else if (o.bench_modes || bench_sizes_given) {
        die("--bench-modes, --pp, --tg and --reps go with --bench");
    }
    if (o.json && !o.eval_path && !o.bench) die("--json goes with --eval FILE or --bench");
    if ((o.eval_modes || o.bench_modes) && o.quant_given)
        die("mode lists take whole modes (e.g. qrazor/g32/cls=fp32); drop -q, -g, --cls, --sdr");
    if (o.seed == 0) o.seed = (uint64_t)time(NULL); /* xorshift must not start at 0 */
    if (o.seed == 0) o.seed = 1;
    return o;
}

/* Opens the model: a .qrz file as it is (refusing quantization flags it cannot honour),
 * a checkpoint quantized as q says. */
static void open_model(ModelWeights *m, const Options *o, const QuantConfig *q, ThreadPool *pool) {
    char err[ERRLEN];
    if (o->quant_given && model_is_qrz(o->model_path))
        die("%s is already quantized; -q, -g, --cls and --sdr apply to float checkpoints",
            o->model_path);
    if (model_open(m, o->model_path, q, pool, err, sizeof err) != 0) die("%s", err);
}

/* ------------------------------------------------------------------ -v */

static void print_bytes_row(const char *name, size_t bytes, double per, const char *unit,
                            const char *note) {
    fprintf(stderr, "  %-7s %12zu bytes  %6.2f %s%s\n", name, bytes, per, unit, note);
}

/* What -v prints: the model, each of the n modes it was loaded in, the kernels, and the
 * memory of weights and KV cache in every base mode (at the first model's group size). */
static void print_info(const Options *o, const ModelWeights *w, int n, const ThreadPool *pool) {
    const ModelConfig *c = &w[0].cfg;
    fprintf(stderr, "model:    %s (%s)\n", o->model_path,
            w[0].qrz_map ? ".qrz, quantized" : "llama2.c checkpoint");
    fprintf(stderr, "          dim %d, hidden %d, %d layers, %d query / %d key-value heads "
                    "(head size %d), vocab %d, context %d%s\n",
            c->dim, c->hidden_dim, c->n_layers, c->n_heads, c->n_kv_heads, config_head_size(c),
            c->vocab_size, c->seq_len,
            w[0].cls.f32 == w[0].token_embedding ? ", classifier shared with the embedding" : "");
    for (int m = 0; m < n; m++) {
        const QuantConfig *q = &w[m].quant;
        char name[64], razor[64] = "";
        quant_config_name(q, name, sizeof name);
        if (quant_config_razors(q))
            snprintf(razor, sizeof razor, "G = %d, SDR %s; ", q->group,
                     q->rounding ? "rounding" : "truncating");
        fprintf(stderr, "mode:     %s (%sclassifier %s): %zu bytes of weights in all\n", name,
                razor, quant_kind_cls_name(q->cls), model_weights_bytes(&w[m]));
    }
    fprintf(stderr, "kernels:  %s (this CPU supports %s), %d thread%s\n",
            simd_level_name(simd_current()), simd_level_name(simd_detect()), threadpool_size(pool),
            threadpool_size(pool) == 1 ? "" : "s");

    static const char *const bases[] = {"fp32", "w8a16", "qrazor", "rtn4"};
    const int group = w[0].quant.group;
    const double params = config_linear_params(c), entries = config_kv_entries(c);
    fprintf(stderr, "weights of the 7 block linears (%.0f parameters; embedding and norms stay "
                    "fp32):\n", params);
    char note[96], err[64];
    for (int k = 0; k < 4; k++) {
        QuantConfig each;
        quant_config_parse(bases[k], &each, err, sizeof err);
        each.group = group;
        const size_t b = linear_weights_bytes(c, &each);
        note[0] = '\0';
        if (k == 2)
            snprintf(note, sizeof note, "  (4-bit codes + a 4-bit shift per %d: %.2f bits, + row scales)",
                     group, 4.0 + 4.0 / group);
        print_bytes_row(bases[k], b, 8.0 * (double)b / params, "bits/weight", note);
    }
    fprintf(stderr, "KV cache at full context (%d positions, %.0f key and value entries):\n",
            c->seq_len, entries);
    for (int k = 0; k < 4; k++) {
        QuantConfig each;
        quant_config_parse(bases[k], &each, err, sizeof err);
        each.group = group;
        const size_t b = kv_cache_bytes(c, &each, c->seq_len);
        note[0] = '\0';
        if (k == 2)
            snprintf(note, sizeof note, "  (4-bit codes + a 4-bit shift per %d, + a scale per token and head)",
                     group < config_head_size(c) ? group : config_head_size(c));
        print_bytes_row(bases[k], b, 8.0 * (double)b / entries, "bits/entry", note);
    }
}

/* ------------------------------------------------------------------ tokenizer discovery */

/* The tokenizer to use: -z if given, else the first candidate beside the model whose
 * vocabulary matches. Says on stderr which file it chose. */
static Tokenizer *open_tokenizer(const Options *o, int vocab_size) {
    char err[ERRLEN];
    if (o->tokenizer_path) {
        Tokenizer *t = tokenizer_open(o->tokenizer_path, err, sizeof err);
        if (!t) die("%s", err);
        if (tokenizer_vocab_size(t) != vocab_size)
            die("%s: tokenizer has %d pieces but the model %s has a vocabulary of %d",
                o->tokenizer_path, tokenizer_vocab_size(t), o->model_path, vocab_size);
        return t;
    }
    const char *slash = strrchr(o->model_path, '/');
    const int dirlen = slash ? (int)(slash - o->model_path + 1) : 0;
    char names[4][64], tried[4 * (PATH_MAX + 40)] = "";
    snprintf(names[0], sizeof names[0], "tok%d.model", vocab_size);
    snprintf(names[1], sizeof names[1], "tok%d.bin", vocab_size);
    snprintf(names[2], sizeof names[2], "tokenizer.model");
    snprintf(names[3], sizeof names[3], "tokenizer.bin");
    for (int i = 0; i < 4; i++) {
        char path[PATH_MAX + 64];
        snprintf(path, sizeof path, "%.*s%s", dirlen, o->model_path, names[i]);
        if (access(path, R_OK) != 0) continue;
        Tokenizer *t = tokenizer_open(path, err, sizeof err);
        if (t && tokenizer_vocab_size(t) == vocab_size) {
            fprintf(stderr, "tokenizer: %s (%s, %d pieces)\n", path, tokenizer_format(t),
                    vocab_size);
            return t;
        }
        size_t used = strlen(tried);
        if (t)
            snprintf(tried + used, sizeof tried - used, "; %s has %d pieces", path,
                     tokenizer_vocab_size(t));
        else
            snprintf(tried + used, sizeof tried - used, "; %s", err);
        tokenizer_free(t);
    }
    die("no tokenizer with %d pieces found beside %s; pass one with -z%s", vocab_size,
        o->model_path, tried[0] ? tried : " (looked for tok<VOCAB>.model/.bin, tokenizer.model/.bin)");
    return NULL;
}

/* ------------------------------------------------------------------ output */

/* Writes a decoded piece, dropping lone control bytes (a model can emit <0x07> or <0x1B>)
 * but keeping whitespace and the bytes of UTF-8 characters. */
static void print_piece(const char *s, size_t n) {
    if (n == 1) {
        unsigned char b = (unsigned char)s[0];
        if (b < 0x20 && b != '\n' && b != '\t' && b != '\r') return;
        if (b == 0x7F) return;
    }
    fwrite(s, 1, n, stdout);
    fflush(stdout);
}

/* Where the time went: the prompt (one batched pass) and the generated tokens (one pass
 * each), reported on stderr at the end. "achieved tok/s" is llama2.c's figure: all
 * positions after the first, over the time since the first finished. */
typedef struct {
    double first_done; /* when the first pass ended */
    long prompt_tokens, generated;
    double prompt_seconds, generate_seconds;
} Timer;

static void timer_report(const Timer *tm) {
    fflush(stdout); /* the text first, then the figures */
    const long positions = tm->prompt_tokens + tm->generated;
    if (positions < 2) return;
    const double since_first = now_seconds() - tm->first_done;
    fprintf(stderr, "achieved tok/s: %.2f (prompt: %ld tokens at %.1f tok/s; generated: %ld "
                    "tokens at %.1f tok/s)\n",
            (double)(positions - 1) / since_first, tm->prompt_tokens,
            (double)tm->prompt_tokens / tm->prompt_seconds, tm->generated,
            tm->generated ? (double)tm->generated / tm->generate_seconds : 0.0);
}

/* Runs n prompt tokens in one batched pass and returns the last token's logits. */
static float *timed_prompt(Transformer *tf, Timer *tm, const int *tokens, int n, int pos) {
    const double start = now_seconds();
    float *logits = transformer_run(tf, tokens, n, pos, NULL);
    const double end = now_seconds();
    tm->prompt_seconds += end - start;
    tm->prompt_tokens += n;
    if (tm->first_done == 0) tm->first_done = end;
    return logits;
}

static float *timed_token(Transformer *tf, Timer *tm, int token, int pos) {
    const double start = now_seconds();
    float *logits = transformer_forward(tf, token, pos);
    tm->generate_seconds += now_seconds() - start;
    tm->generated++;
    return logits;
}

/* ------------------------------------------------------------------ generate */

static void generate(Transformer *tf, const Tokenizer *tok, Sampler *sampler, const Options *o,
                     int steps) {
    char err[ERRLEN];
    int *prompt;
    const int n_prompt = tokenizer_encode(tok, o->prompt, &prompt, err, sizeof err);
    if (n_prompt < 0) die("cannot encode the prompt: %s", err);
    const int seq_len = transformer_context(tf);
    if (n_prompt > seq_len)
        die("the prompt is %d tokens but the model's context (seq_len) is %d", n_prompt, seq_len);
    if (n_prompt > steps)
        die("the prompt is %d tokens but -n allows only %d positions", n_prompt, steps);

    /* The prompt as text, then the story, streamed token by token. */
    for (int i = 1; i < n_prompt; i++) {
        size_t n;
        const char *piece = tokenizer_decode(tok, prompt[i - 1], prompt[i], &n);
        print_piece(piece, n);
    }
    Timer tm = {0};
    float *logits = timed_prompt(tf, &tm, prompt, n_prompt, 0);
    int token = prompt[n_prompt - 1];
    for (int pos = n_prompt; pos <= steps; pos++) {
        const int next = sampler_sample(sampler, logits);
        if (next == tokenizer_bos(tok) || next == tokenizer_eos(tok)) break; /* story ends */
        size_t n;
        const char *piece = tokenizer_decode(tok, token, next, &n);
        print_piece(piece, n);
        token = next;
        if (pos == steps) break;
        logits = timed_token(tf, &tm, token, pos);
    }
    printf("\n");
    timer_report(&tm);
    free(prompt);
}

/* ------------------------------------------------------------------ chat */

/* Reads one line from stdin without its newline; NULL at end of input. */
static char *read_line(const char *prompt_text, char **buf, size_t *cap) {
    fputs(prompt_text, stdout);
    fflush(stdout);
    ssize_t n = getline(buf, cap, stdin);
    if (n < 0) return NULL;
    if (n > 0 && (*buf)[n - 1] == '\n') (*buf)[n - 1] = '\0';
    return *buf;
}

/* Llama-2 chat: each user turn is rendered as "[INST] ... [/INST]" (the first one with the
 * system prompt in <<SYS>> tags), the assistant answers until EOS. */
static void chat(Transformer *tf, const Tokenizer *tok, Sampler *sampler, const Options *o,
                 int steps) {
    char err[ERRLEN], *line = NULL, *system = NULL;
    size_t cap = 0;
    if (o->system_prompt) {
        system = strdup(o->system_prompt);
    } else { /* at end of input: no system prompt, and the loop below ends the chat */
        const char *typed = read_line("Enter system prompt (optional): ", &line, &cap);
        system = strdup(typed ? typed : "");
    }
    if (!system) die("out of memory");

    Timer tm = {0};
    int pos = 0, first_turn = 1;
    while (pos < steps) {
        const char *user = first_turn && o->prompt[0] ? o->prompt : read_line("User: ", &line, &cap);
        if (!user) break; /* end of input */
        size_t need = strlen(user) + strlen(system) + 64;
        char *rendered = malloc(need);
        if (!rendered) die("out of memory");
        if (first_turn && system[0])
            snprintf(rendered, need, "[INST] <<SYS>>\n%s\n<</SYS>>\n\n%s [/INST]", system, user);
        else
            snprintf(rendered, need, "[INST] %s [/INST]", user);
        first_turn = 0;
        int *ids;
        const int n_ids = tokenizer_encode(tok, rendered, &ids, err, sizeof err);
        free(rendered);
        if (n_ids < 0) die("cannot encode the message: %s", err);
        if (pos + n_ids >= steps) {
            fprintf(stderr, "\nthe conversation has reached the context limit (%d positions)\n",
                    steps);
            free(ids);
            break;
        }
        /* The user's tokens in one pass, then the assistant speaks until EOS or the limit. */
        float *logits = timed_prompt(tf, &tm, ids, n_ids, pos);
        pos += n_ids;
        int token = ids[n_ids - 1];
        free(ids);
        printf("Assistant: ");
        while (pos < steps) {
            const int next = sampler_sample(sampler, logits);
            if (next == tokenizer_eos(tok)) break;
            size_t n;
            const char *piece = tokenizer_decode(tok, token, next, &n);
            print_piece(piece, n);
            token = next;
            logits = timed_token(tf, &tm, token, pos++);
        }
        printf("\n");
    }
    timer_report(&tm);
    free(line);
    free(system);
}

/* ------------------------------------------------------------------ evaluation */

/* Prints prefix, then s as a JSON string: quoted, with quotes, backslashes and control
 * characters escaped (a path may hold any of them). */
static void print_json_string(const char *prefix, const char *s) {
    fputs(prefix, stdout);
    putchar('"');
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '"' || *p == '\\')
            printf("\\%c", *p);
        else if (*p < 0x20)
            printf("\\u%04x", *p);
        else
            putchar(*p);
    }
    putchar('"');
}

/* Reads a text file for evaluation: it must exist, be non-empty, and be valid UTF-8. */
static char *read_text(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) die("%s: cannot open: %s", path, strerror(errno));
    size_t n = 0, cap = 1 << 16;
    char *buf = malloc(cap);
    for (;;) {
        if (!buf) die("%s: out of memory", path);
        if (n + 1 >= cap) buf = realloc(buf, cap *= 2);
        if (!buf) die("%s: out of memory", path);
        const size_t got = fread(buf + n, 1, cap - n - 1, f);
        n += got;
        if (got == 0) break;
    }
    const int failed = ferror(f);
    fclose(f);
    if (failed) die("%s: read error", path);
    buf[n] = '\0';
    if (strlen(buf) != n) die("%s: contains a NUL byte at offset %zu: not a text file", path, strlen(buf));
    /* UTF-8 (RFC 3629): a lead byte and the right number of continuation bytes 80..BF;
     * the second byte's narrower ranges after E0, ED, F0 and F4 exclude overlong forms,
     * UTF-16 surrogates and code points above U+10FFFF. */
    for (size_t i = 0; i < n;) {
        const unsigned char c = (unsigned char)buf[i];
        const int len = c < 0x80 ? 1 : c >= 0xC2 && c < 0xE0 ? 2 : c >= 0xE0 && c < 0xF0 ? 3
                                                          : c >= 0xF0 && c < 0xF5 ? 4 : 0;
        const unsigned char lo = c == 0xE0 ? 0xA0 : c == 0xF0 ? 0x90 : 0x80;
        const unsigned char hi = c == 0xED ? 0x9F : c == 0xF4 ? 0x8F : 0xBF;
        int ok = len > 0 && i + (size_t)len <= n;
        for (int k = 1; ok && k < len; k++) {
            const unsigned char b = (unsigned char)buf[i + k];
            ok = k == 1 ? b >= lo && b <= hi : b >= 0x80 && b <= 0xBF;
        }
        if (!ok) die("%s: not valid UTF-8 at byte %zu", path, i);
        i += (size_t)len;
    }
    size_t blank = 0;
    while (blank < n && (buf[blank] == ' ' || buf[blank] == '\n' || buf[blank] == '\t' || buf[blank] == '\r'))
        blank++;
    if (blank == n) die("%s: the file is empty%s", path, n ? " (only white space)" : "");
    return buf;
}

/* Tokenizes a text for evaluation: documents separated by lines "<|endoftext|>" (as in
 * TinyStories) are each encoded with a leading BOS, as the models saw them in training. */
static int *tokenize_documents(const Tokenizer *tok, char *text, int *n_tokens, int *n_docs) {
    static const char sep[] = "<|endoftext|>";
    int *all = NULL, n = 0, docs = 0;
    char err[ERRLEN];
    for (char *doc = text; doc;) {
        char *next = strstr(doc, sep);
        if (next) {
            *next = '\0';
            next += sizeof sep - 1;
        }
        while (*doc == '\n' || *doc == '\r') doc++; /* the line breaks around separators */
        size_t len = strlen(doc);
        while (len > 0 && (doc[len - 1] == '\n' || doc[len - 1] == '\r')) doc[--len] = '\0';
        if (len > 0) {
            int *ids;
            const int k = tokenizer_encode(tok, doc, &ids, err, sizeof err);
            if (k < 0) die("cannot encode the text: %s", err);
            int *grown = realloc(all, ((size_t)n + (size_t)k) * sizeof *all);
            if (!grown) die("out of memory");
            all = grown;
            memcpy(all + n, ids, (size_t)k * sizeof *ids);
            n += k;
            docs++;
            free(ids);
        }
        doc = next;
    }
    *n_tokens = n;
    *n_docs = docs;
    return all;
}

static void eval_progress(void *ctx, int done, int total) {
    (void)ctx;
    const int width = 30, filled = width * done / total;
    fprintf(stderr, "\r[%.*s%*s] %d/%d windows", filled, "==============================",
            width - filled, "", done, total);
    if (done == total) fputc('\n', stderr);
}

/* Every mode and knob of the accuracy study (docs/ACCURACY.md). */
static const char *const all_modes =
    "fp32,w8a16,qrazor,qrazor/g32,qrazor/g64,qrazor/g128,qrazor/trunc,qrazor/cls=fp32,"
    "qrazor/cls=int8,rtn4,sdr-w,sdr-a,sdr-kv,sdr-p";

enum { MAX_MODES = 32 };

/* The modes of a --eval-modes / --bench-modes list ("all" for every one), or -q's mode
 * when there is no list. Returns how many. */
static int parse_mode_list(const char *flag, const char *list, const QuantConfig *single,
                           QuantConfig *configs) {
    if (!list) {
        configs[0] = *single;
        return 1;
    }
    char buf[1024], err[ERRLEN];
    snprintf(buf, sizeof buf, "%s", strcmp(list, "all") ? list : all_modes);
    int n = 0;
    char *save = NULL;
    for (char *tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        if (n == MAX_MODES) die("%s: more than %d modes", flag, MAX_MODES);
        if (quant_config_parse(tok, &configs[n++], err, sizeof err) != 0) die("%s: %s", flag, err);
    }
    if (n == 0) die("%s: no modes given", flag);
    return n;
}

/* Loads the model once per mode and makes a transformer for each (a .qrz file says what
 * it holds, so configs[] is updated from the loaded weights); -v describes them. */
static void open_modes(const Options *o, QuantConfig *configs, int n, ModelWeights *weights,
                       Transformer **modes, ThreadPool *pool) {
    char err[ERRLEN];
    for (int m = 0; m < n; m++) {
        open_model(&weights[m], o, &configs[m], pool);
        configs[m] = weights[m].quant;
        if (!(modes[m] = transformer_new(&weights[m], pool, weights[m].cfg.seq_len, err, sizeof err))) die("%s", err);
    }
    if (o->verbose) print_info(o, weights, n, pool);
}

static void run_eval(const Options *o, ThreadPool *pool) {
    char err[ERRLEN];
    const int is_qrz = model_is_qrz(o->model_path);
    if (is_qrz && o->eval_modes)
        die("%s is already quantized; --eval-modes needs the float checkpoint", o->model_path);

    QuantConfig configs[MAX_MODES];
    const int n_modes = parse_mode_list("--eval-modes", o->eval_modes, &o->quant, configs);

    ModelWeights *weights = calloc((size_t)n_modes + 1, sizeof *weights);
    Transformer **modes = calloc((size_t)n_modes, sizeof *modes);
    if (!weights || !modes) die("out of memory");
    open_modes(o, configs, n_modes, weights, modes, pool);
    Transformer *reference = NULL; /* one of the modes, or a float32 model of our own */
    int own_reference = 0;
    for (int m = 0; m < n_modes && !reference; m++)
        if (configs[m].weights == QUANT_F32 && configs[m].cls == QUANT_F32) reference = modes[m];
    if (!reference && !is_qrz) { /* KL needs the float32 distributions */
        QuantConfig fp32;
        quant_config_parse("fp32", &fp32, err, sizeof err);
        open_model(&weights[n_modes], o, &fp32, pool);
        if (!(reference = transformer_new(&weights[n_modes], pool, weights[n_modes].cfg.seq_len, err, sizeof err))) die("%s", err);
        own_reference = 1;
    }
    const ModelConfig *c = &weights[0].cfg;

    Tokenizer *tok = open_tokenizer(o, c->vocab_size);
    char *text = read_text(o->eval_path);
    int n_tokens, n_docs;
    int *tokens = tokenize_documents(tok, text, &n_tokens, &n_docs);
    free(text);
    if (o->ctx > c->seq_len) die("--ctx %d exceeds the model's context (seq_len %d)", o->ctx, c->seq_len);
    const int ctx = o->ctx ? o->ctx : c->seq_len;
    EvalPlan plan;
    if (eval_plan(&plan, n_tokens, ctx, o->score_all) != 0)
        die("%s: only %d tokens: too short to score (--score all scores every next token)",
            o->eval_path, n_tokens);
    EvalStats *stats = calloc((size_t)n_modes, sizeof *stats);
    if (!stats) die("out of memory");
    if (eval_run(&plan, tokens, tokenizer_bos(tok), reference, modes, n_modes, stats,
                 isatty(2) ? eval_progress : NULL, NULL) != 0)
        die("out of memory during evaluation");

    /* Report. */
    if (o->json) {
        print_json_string("{\"file\": ", o->eval_path);
        print_json_string(", \"model\": ", o->model_path);
        printf(", \"documents\": %d, \"tokens\": %d, \"window\": %d, \"windows\": %d, "
               "\"score_from\": %d, \"scored\": %ld, \"modes\": [",
               n_docs, n_tokens, plan.ctx, plan.n_windows, plan.score_from, plan.n_scored);
    } else {
        printf("eval: %s, %d documents, %d tokens; %d windows of %d, scoring positions %d..%d "
               "of each: %ld tokens\n",
               o->eval_path, n_docs, n_tokens, plan.n_windows, plan.ctx, plan.score_from,
               plan.ctx - 2, plan.n_scored);
        printf("%-18s %8s %9s %10s %9s %7s %9s\n", "mode", "NLL", "PPL", "mean KL", "max KL",
               "top-1", "tok/s");
    }
    for (int m = 0; m < n_modes; m++) {
        char name[64];
        quant_config_name(&configs[m], name, sizeof name);
        const EvalStats *st = &stats[m];
        const double nll = st->nll_sum / (double)plan.n_scored;
        const double kl = st->kl_sum / (double)plan.n_scored;
        const double top1 = 100.0 * (double)st->top1_agree / (double)plan.n_scored;
        const double tps = st->positions / st->seconds;
        if (o->json) {
            printf("%s\n  {\"mode\": \"%s\", \"nll\": %.6f, \"ppl\": %.6f", m ? "," : "", name, nll, exp(nll));
            if (reference)
                printf(", \"mean_kl\": %.8f, \"max_kl\": %.8f, \"top1\": %.4f", kl, st->kl_max, top1);
            printf(", \"tokens_per_s\": %.1f}", tps);
        } else if (reference) {
            printf("%-18s %8.4f %9.4f %10.6f %9.5f %6.2f%% %9.1f\n", name, nll, exp(nll), kl,
                   st->kl_max, top1, tps);
        } else {
            printf("%-18s %8.4f %9.4f %10s %9s %7s %9.1f\n", name, nll, exp(nll), "n/a", "n/a",
                   "n/a", tps);
        }
    }
    if (o->json) printf("\n]}\n");
    if (!reference && !o->json)
        printf("(KL and top-1 need the float32 model: evaluate the .bin checkpoint for them)\n");

    free(stats);
    free(tokens);
    tokenizer_free(tok);
    for (int m = 0; m < n_modes; m++) transformer_free(modes[m]);
    if (own_reference) transformer_free(reference);
    for (int m = 0; m <= n_modes; m++) model_close(&weights[m]);
    free(modes);
    free(weights);
}

/* ------------------------------------------------------------------ benchmark */

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

static void run_bench(const Options *o, ThreadPool *pool) {
    char cpu[256];
    if (model_is_qrz(o->model_path) && o->bench_modes)
        die("%s is already quantized; --bench-modes needs the float checkpoint", o->model_path);
    QuantConfig configs[MAX_MODES];
    const int n_modes = parse_mode_list("--bench-modes", o->bench_modes, &o->quant, configs);
    ModelWeights *weights = calloc((size_t)n_modes, sizeof *weights);
    Transformer **modes = calloc((size_t)n_modes, sizeof *modes);
    if (!weights || !modes) die("out of memory");
    open_modes(o, configs, n_modes, weights, modes, pool);
    const ModelConfig *c = &weights[0].cfg;
    if (o->pp > c->seq_len || o->tg > c->seq_len)
        die("--pp %d / --tg %d exceed the model's context (seq_len %d)", o->pp, o->tg, c->seq_len);
    BenchTimes *times = calloc((size_t)n_modes, sizeof *times);
    if (!times) die("out of memory");
    if (bench_run(modes, n_modes, o->pp, o->tg, o->reps, times) != 0) die("out of memory");

    cpu_name(cpu, sizeof cpu);
    const int threads = threadpool_size(pool);
    if (o->json) {
        print_json_string("{\"model\": ", o->model_path);
        printf(", \"dim\": %d, \"n_layers\": %d, \"vocab_size\": %d", c->dim, c->n_layers,
               c->vocab_size);
        print_json_string(", \"cpu\": ", cpu);
        printf(", \"simd\": \"%s\", \"threads\": %d, \"reps\": %d, \"results\": [",
               simd_level_name(simd_current()), threads, o->reps);
    } else {
        printf("bench: %s (dim %d, %d layers, vocab %d); %s, %s kernels, %d thread%s, %d reps\n"
               "%-18s %10s %10s %7s %10s %21s %8s\n",
               o->model_path, c->dim, c->n_layers, c->vocab_size, cpu, simd_level_name(simd_current()),
               threads, threads == 1 ? "" : "s", o->reps, "mode", "weights", "KV cache", "test",
               "tok/s", "(min - max)", "ms/tok");
    }
    int first = 1;
    for (int m = 0; m < n_modes; m++) {
        char name[64];
        quant_config_name(&configs[m], name, sizeof name);
        const size_t wbytes = model_weights_bytes(&weights[m]), kvbytes = kv_cache_bytes(c, &configs[m], c->seq_len);
        for (int test = 0; test < 2; test++) {
            const int tokens = test ? o->tg : o->pp;
            if (!tokens) continue;
            double med, lo, hi; /* of seconds: the fastest repetition is the smallest */
            bench_stats(test ? times[m].tg_seconds : times[m].pp_seconds, o->reps, &med, &lo, &hi);
            char label[32];
            snprintf(label, sizeof label, "%s%d", test ? "tg" : "pp", tokens);
            if (o->json) {
                printf("%s\n  {\"mode\": \"%s\", \"test\": \"%s\", \"tokens_per_s\": %.2f, "
                       "\"min\": %.2f, \"max\": %.2f, \"ms_per_token\": %.4f, \"weight_bytes\": %zu, "
                       "\"kv_bytes\": %zu}",
                       first ? "" : ",", name, label, tokens / med, tokens / hi, tokens / lo,
                       1e3 * med / tokens, wbytes, kvbytes);
            } else {
                printf("%-18s %7.1f MB %7.1f MB %7s %10.2f   (%7.2f - %7.2f) %8.3f\n", name, wbytes / 1e6, kvbytes / 1e6,
                       label, tokens / med, tokens / hi, tokens / lo, 1e3 * med / tokens);
            }
            first = 0;
        }
    }
    if (o->json) printf("\n]}\n");
    for (int m = 0; m < n_modes; m++) {
        transformer_free(modes[m]);
        model_close(&weights[m]);
    }
    free(times);
    free(modes);
    free(weights);
}

/* ------------------------------------------------------------------ explain */

static void run_explain(const Options *o) {
    char err[ERRLEN];
    ExplainOptions e = {o->model_path, NULL, 0, o->layer, o->head, SITE_WQ, o->quant.group,
                        o->quant.rounding, isatty(1) && !getenv("NO_COLOR"), o->svg_path};
    if (site_parse(o->site, &e.site) != 0)
        die("unknown site '%s': --site takes wq, wk, wv, wo, w1, w2, w3, qk or pv", o->site);
    Checkpoint ck;
    if (model_is_qrz(o->model_path))
        die("%s: --explain needs the float checkpoint (it is the reference)", o->model_path);
    if (checkpoint_open(&ck, o->model_path, err, sizeof err) != 0) die("%s", err);
    Tokenizer *tok = open_tokenizer(o, ck.cfg.vocab_size);
    checkpoint_close(&ck);
    int *ids;
    const int n = tokenizer_encode(tok, o->prompt, &ids, err, sizeof err);
    if (n < 0) die("cannot encode the prompt: %s", err);
    e.tokens = ids;
    e.n_tokens = n;
    printf("prompt: \"%s\" (%d tokens)\n", o->prompt, n);
    if (explain_run(&e, stdout, err, sizeof err) != 0) die("%s", err);
    if (o->svg_path) fprintf(stderr, "wrote %s\n", o->svg_path);
    free(ids);
    tokenizer_free(tok);
}

/* ------------------------------------------------------------------ quantize */

static void run_quantize(const Options *o, ThreadPool *pool) {
    char err[ERRLEN];
    if (model_is_qrz(o->model_path)) die("%s is already a .qrz file", o->model_path);
    if (qrz_check_destination(o->output_path, err, sizeof err) != 0) die("%s", err);
    struct stat in, out;
    const int replacing = stat(o->output_path, &out) == 0;
    if (replacing && stat(o->model_path, &in) == 0 && in.st_dev == out.st_dev && in.st_ino == out.st_ino)
        die("%s is the input checkpoint; write the .qrz to another file", o->output_path);
    const double start = now_seconds();
    ModelWeights m;
    open_model(&m, o, &o->quant, pool);
    if (o->verbose) print_info(o, &m, 1, pool);
    if (qrz_write(&m, o->output_path, err, sizeof err) != 0) die("%s", err);
    char name[64];
    quant_config_name(&m.quant, name, sizeof name);
    FILE *f = fopen(o->output_path, "rb");
    long out_bytes = -1;
    if (f && fseek(f, 0, SEEK_END) == 0) out_bytes = ftell(f);
    if (f) fclose(f);
    fprintf(stderr, "wrote %s%s: %s, %ld bytes (from %zu) in %.2f s\n", o->output_path,
            replacing ? " (replacing the file that was there)" : "", name, out_bytes,
            m.ck.map_size, now_seconds() - start);
    model_close(&m);
}

/* ------------------------------------------------------------------ main */

int main(int argc, char **argv) {
    Options o = parse_options(argc, argv);
    char err[ERRLEN];

    const char *simd = getenv("QRAZOR_SIMD");
    if (simd && *simd && simd_use(simd) != 0)
        die("QRAZOR_SIMD=%s: unknown level or not supported by this CPU (it supports up to %s)",
            simd, simd_level_name(simd_detect()));
    ThreadPool *pool = threadpool_new(o.threads);
    if (!pool) die("cannot start %d threads", o.threads);

    if (!strcmp(o.command, "quantize")) {
        run_quantize(&o, pool);
    } else if (!strcmp(o.command, "eval")) {
        run_eval(&o, pool);
    } else if (!strcmp(o.command, "bench")) {
        run_bench(&o, pool);
    } else if (!strcmp(o.command, "explain")) {
        run_explain(&o);
    } else {
        ModelWeights w;
        open_model(&w, &o, &o.quant, pool);
        const ModelConfig *c = &w.cfg;
        if (o.steps > c->seq_len)
            die("-n %ld exceeds the model's context (seq_len %d); use -n 0 for the whole context",
                o.steps, c->seq_len);
        const int steps = o.steps < 0    ? (c->seq_len < 256 ? c->seq_len : 256)
                          : o.steps == 0 ? c->seq_len
                                         : (int)o.steps;
        Tokenizer *tok = open_tokenizer(&o, c->vocab_size);
        if (o.verbose) print_info(&o, &w, 1, pool);
        Transformer *tf = transformer_new(&w, pool, w.cfg.seq_len, err, sizeof err);
        if (!tf) die("%s: %s", o.model_path, err);
        Sampler sampler;
        if (sampler_init(&sampler, c->vocab_size, o.temperature, o.top_p, o.seed) != 0)
            die("out of memory");
        if (!strcmp(o.command, "chat"))
            chat(tf, tok, &sampler, &o, steps);
        else
            generate(tf, tok, &sampler, &o, steps);
        sampler_free(&sampler);
        transformer_free(tf);
        tokenizer_free(tok);
        model_close(&w);
    }
    threadpool_free(pool);
    return 0;
}
