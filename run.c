/*
 * run.c - the command line: load a model and a tokenizer, then generate text or chat.
 *
 *   ./run MODEL [options]          see usage() below, or ./run -h
 *
 * Flags follow llama2.c's run.c so its users feel at home. Every bad input ends with one
 * line on stderr that says what was wrong, and exit status 1.
 */
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "engine/sampler.h"
#include "engine/transformer.h"
#include "kernels/simd.h"
#include "kernels/threadpool.h"
#include "tokenizer/tokenizer.h"
#include "weights/checkpoint.h"

#define ERRLEN 512

static void usage(FILE *out) {
    fprintf(out,
            "Usage:   run MODEL [options]\n"
            "Example: run models/stories260K.bin -n 256 -i \"Once upon a time\"\n"
            "\n"
            "MODEL is a llama2.c checkpoint (.bin).\n"
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
            "Quantization (docs/SPEC.md):\n"
            "  -q MODE     fp32 | w8a16 | qrazor | rtn4 (default qrazor: 4-bit weights,\n"
            "              activations and KV cache, razored from INT8/INT16/INT8)\n"
            "  -g G        razoring group size: 16, 32, 64 or 128 (default 16)\n"
            "  --cls KIND  classifier: fp32 | int8 | qrazor | rtn4 (default: as the mode)\n"
            "  --sdr HOW   razoring: round | truncate (default round)\n"
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

static double now_seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* ------------------------------------------------------------------ options */

typedef struct {
    const char *model_path;
    const char *tokenizer_path; /* NULL: look beside the model */
    const char *prompt;
    const char *system_prompt;
    const char *mode; /* generate | chat */
    long steps;       /* -1: not given (256, capped at the context) */
    float temperature, top_p;
    uint64_t seed;
    QuantConfig quant;
    int threads;
    int verbose;
} Options;

/* The value of the option at argv[*i], advancing *i past it. */
static const char *option_value(int argc, char **argv, int *i) {
    if (*i + 1 >= argc) die("%s needs a value (see -h)", argv[*i]);
    return argv[++*i];
}

static Options parse_options(int argc, char **argv) {
    Options o = {.prompt = "", .mode = "generate", .steps = -1, .temperature = 1.0f,
                 .top_p = 0.9f, .threads = threadpool_default_threads()};
    quant_config_for_mode("qrazor", &o.quant);
    o.quant.rounding = 1;
    const char *cls = NULL;
    for (int i = 1; i < argc; i++)
        if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
            usage(stdout);
            exit(EXIT_SUCCESS);
        }
    if (argc < 2) {
        usage(stderr);
        exit(EXIT_FAILURE);
    }
    if (argv[1][0] == '-') die("the first argument must be the model file, got '%s' (see -h)", argv[1]);
    o.model_path = argv[1];
    for (int i = 2; i < argc; i++) {
        const char *flag = argv[i];
        if (!strcmp(flag, "-v") || !strcmp(flag, "--info")) {
            o.verbose = 1;
        } else if (!strcmp(flag, "--cls")) {
            cls = option_value(argc, argv, &i);
        } else if (!strcmp(flag, "--sdr")) {
            const char *how = option_value(argc, argv, &i);
            if (strcmp(how, "round") != 0 && strcmp(how, "truncate") != 0)
                die("unknown razoring '%s': --sdr takes round or truncate", how);
            o.quant.rounding = !strcmp(how, "round");
        } else if (flag[0] == '-' && strlen(flag) == 2) {
            const char *val = option_value(argc, argv, &i);
            switch (flag[1]) {
            case 'z': o.tokenizer_path = val; break;
            case 'i': o.prompt = val; break;
            case 'y': o.system_prompt = val; break;
            case 'm':
                if (strcmp(val, "generate") != 0 && strcmp(val, "chat") != 0)
                    die("unknown mode '%s': -m takes generate or chat", val);
                o.mode = val;
                break;
            case 'q':
                if (quant_config_for_mode(val, &o.quant) != 0)
                    die("unknown quantization mode '%s': -q takes fp32, w8a16, qrazor or rtn4", val);
                break;
            case 'g': {
                long g = parse_int("-g", val, 16, 128);
                if (g != 16 && g != 32 && g != 64 && g != 128)
                    die("-g takes 16, 32, 64 or 128, got %ld", g);
                o.quant.group = (int)g;
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
    if (cls && quant_kind_parse_cls(cls, &o.quant.cls) != 0)
        die("unknown classifier setting '%s': --cls takes fp32, int8, qrazor or rtn4", cls);
    if (o.seed == 0) o.seed = (uint64_t)time(NULL); /* xorshift must not start at 0 */
    if (o.seed == 0) o.seed = 1;
    return o;
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
            snprintf(tried + used, sizeof tried - used, "\n  %s has %d pieces", path,
                     tokenizer_vocab_size(t));
        else
            snprintf(tried + used, sizeof tried - used, "\n  %s", err);
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

/* Throughput over the positions after the first one (the first pays for page faults). */
typedef struct {
    double start;
    long positions;
} Timer;

static void timer_tick(Timer *tm) {
    if (tm->positions++ == 0) tm->start = now_seconds();
}

static void timer_report(const Timer *tm) {
    fflush(stdout); /* the text first, then the figures */
    if (tm->positions < 2) return;
    double secs = now_seconds() - tm->start;
    fprintf(stderr, "achieved tok/s: %.2f (%ld positions in %.3f s)\n",
            (double)(tm->positions - 1) / secs, tm->positions - 1, secs);
}

/* ------------------------------------------------------------------ generate */

static void generate(Transformer *tf, const Tokenizer *tok, Sampler *sampler, const Options *o,
                     int steps) {
    char err[ERRLEN];
    int *prompt;
    int n_prompt = tokenizer_encode(tok, o->prompt, &prompt, err, sizeof err);
    if (n_prompt < 0) die("cannot encode the prompt: %s", err);
    const int seq_len = transformer_config(tf)->seq_len;
    if (n_prompt > seq_len)
        die("the prompt is %d tokens but the model's context (seq_len) is %d", n_prompt, seq_len);
    if (n_prompt > steps)
        die("the prompt is %d tokens but -n allows only %d positions", n_prompt, steps);

    Timer tm = {0};
    int token = prompt[0];
    for (int pos = 0; pos < steps; pos++) {
        float *logits = transformer_forward(tf, token, pos);
        int next = pos + 1 < n_prompt ? prompt[pos + 1] : sampler_sample(sampler, logits);
        timer_tick(&tm);
        if (next == tokenizer_bos(tok) || next == tokenizer_eos(tok)) break; /* story ends */
        size_t n;
        const char *piece = tokenizer_decode(tok, token, next, &n);
        print_piece(piece, n);
        token = next;
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
    } else if (read_line("Enter system prompt (optional): ", &line, &cap)) {
        system = strdup(line);
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
        int n_ids = tokenizer_encode(tok, rendered, &ids, err, sizeof err);
        free(rendered);
        if (n_ids < 0) die("cannot encode the message: %s", err);
        if (pos + n_ids >= steps) {
            fprintf(stderr, "\nthe conversation has reached the context limit (%d positions)\n",
                    steps);
            free(ids);
            break;
        }
        /* Feed the user's tokens, then let the assistant speak until EOS or the limit. */
        float *logits = NULL;
        for (int i = 0; i < n_ids; i++, pos++) {
            logits = transformer_forward(tf, ids[i], pos);
            timer_tick(&tm);
        }
        int token = ids[n_ids - 1];
        free(ids);
        printf("Assistant: ");
        while (pos < steps) {
            int next = sampler_sample(sampler, logits);
            if (next == tokenizer_eos(tok)) break;
            size_t n;
            const char *piece = tokenizer_decode(tok, token, next, &n);
            print_piece(piece, n);
            token = next;
            logits = transformer_forward(tf, token, pos++);
            timer_tick(&tm);
        }
        printf("\n");
    }
    timer_report(&tm);
    free(line);
    free(system);
}

/* ------------------------------------------------------------------ -v */

static void print_bytes_row(const char *name, size_t bytes, double per, const char *unit,
                            const char *note) {
    fprintf(stderr, "  %-7s %12zu bytes  %6.2f %s%s\n", name, bytes, per, unit, note);
}

static void print_info(const Options *o, const Checkpoint *ck, const ThreadPool *pool) {
    const ModelConfig *c = &ck->cfg;
    const QuantConfig *q = &o->quant;
    const SimdLevel detected = simd_detect();
    fprintf(stderr, "model:    %s\n", o->model_path);
    fprintf(stderr, "          dim %d, hidden %d, %d layers, %d query / %d key-value heads "
                    "(head size %d), vocab %d, context %d, %s classifier\n",
            c->dim, c->hidden_dim, c->n_layers, c->n_heads, c->n_kv_heads, config_head_size(c),
            c->vocab_size, c->seq_len, ck->shared_classifier ? "shared" : "separate");
    fprintf(stderr, "mode:     %s, G = %d, SDR %s, classifier %s\n",
            quant_kind_mode_name(q->linear), q->group, q->rounding ? "rounding" : "truncating",
            quant_kind_cls_name(q->cls));
    fprintf(stderr, "kernels:  %s (this CPU supports %s), %d thread%s\n",
            simd_level_name(simd_current()), simd_level_name(detected), threadpool_size(pool),
            threadpool_size(pool) == 1 ? "" : "s");

    const int hs = config_head_size(c), kv = config_kv_dim(c);
    const double params = (double)c->n_layers *
                          (2.0 * c->dim * c->dim + 2.0 * kv * c->dim + 3.0 * c->hidden_dim * c->dim);
    fprintf(stderr, "weights of the 7 block linears (%.0f parameters; embedding and norms stay "
                    "fp32, %zu bytes in all for the %s mode):\n",
            params, weights_bytes(c, q->linear, q->cls, q->group), quant_kind_mode_name(q->linear));
    char note[96];
    for (int k = QUANT_F32; k <= QUANT_RTN4; k++) {
        const size_t b = linear_weights_bytes(c, (QuantKind)k, q->group);
        note[0] = '\0';
        if (k == QUANT_SDR)
            snprintf(note, sizeof note, "  (4-bit codes + a 4-bit shift per %d: %.2f bits, + row scales)",
                     q->group, 4.0 + 4.0 / q->group);
        print_bytes_row(quant_kind_mode_name((QuantKind)k), b, 8.0 * (double)b / params,
                        "bits/weight", note);
    }
    const double entries = 2.0 * c->n_layers * c->seq_len * kv;
    fprintf(stderr, "KV cache at full context (%d positions, %.0f key and value entries):\n",
            c->seq_len, entries);
    for (int k = QUANT_F32; k <= QUANT_RTN4; k++) {
        const size_t b = kv_cache_bytes(c, (QuantKind)k, q->group, c->seq_len);
        note[0] = '\0';
        if (k == QUANT_SDR)
            snprintf(note, sizeof note, "  (4-bit codes + a 4-bit shift per %d, + a scale per token and head)",
                     q->group < hs ? q->group : hs);
        print_bytes_row(quant_kind_mode_name((QuantKind)k), b, 8.0 * (double)b / entries,
                        "bits/entry", note);
    }
}

/* ------------------------------------------------------------------ main */

int main(int argc, char **argv) {
    Options o = parse_options(argc, argv);
    char err[ERRLEN];

    const char *simd = getenv("QRAZOR_SIMD");
    if (simd && *simd && simd_use(simd) != 0)
        die("QRAZOR_SIMD=%s: unknown level or not supported by this CPU (it supports up to %s)",
            simd, simd_level_name(simd_detect()));

    Checkpoint ck;
    if (checkpoint_open(&ck, o.model_path, err, sizeof err) != 0) die("%s", err);
    const ModelConfig *c = &ck.cfg;
    if (o.steps > c->seq_len)
        die("-n %ld exceeds the model's context (seq_len %d); use -n 0 for the whole context",
            o.steps, c->seq_len);
    const int steps = o.steps < 0    ? (c->seq_len < 256 ? c->seq_len : 256)
                      : o.steps == 0 ? c->seq_len
                                     : (int)o.steps;

    Tokenizer *tok = open_tokenizer(&o, c->vocab_size);
    ThreadPool *pool = threadpool_new(o.threads);
    if (!pool) die("cannot start %d threads", o.threads);
    if (o.verbose) print_info(&o, &ck, pool);
    Transformer *tf = transformer_new(&ck, &o.quant, pool, err, sizeof err);
    if (!tf) die("%s: %s", o.model_path, err);
    Sampler sampler;
    if (sampler_init(&sampler, c->vocab_size, o.temperature, o.top_p, o.seed) != 0)
        die("out of memory");

    if (!strcmp(o.mode, "chat"))
        chat(tf, tok, &sampler, &o, steps);
    else
        generate(tf, tok, &sampler, &o, steps);

    sampler_free(&sampler);
    transformer_free(tf);
    threadpool_free(pool);
    tokenizer_free(tok);
    checkpoint_close(&ck);
    return 0;
}
