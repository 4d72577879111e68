/*
 * tests/test_cli.c - the ./run program end to end: usage, bad input, and generation.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tests/test.h"
#include "engine/commands/command.h"
#include "kernels/simd.h"
#include "tokenizer/tokenizer.h"

/* "ARG1 ARG2 ..." for messages (at most the first three arguments). */
static const char *describe(const char *const *argv) {
    static char buf[256];
    buf[0] = '\0';
    for (int i = 1; argv[i] && i <= 3; i++) {
        strncat(buf, argv[i], 60);
        strcat(buf, " ");
    }
    return buf;
}

/* Runs ./run with the arguments, expects `status` and `fragment` in stderr (or stdout for
 * status 0). */
static RunResult expect_run_env(const char *const *argv, const char *stdin_text, const char *env,
                                int status, const char *fragment) {
    /* Failing runs return through main like the others, having freed what they built:
     * LeakSanitizer (in make test-asan) watches every run. */
    RunResult r = test_run_program(argv, stdin_text, env);
    CHECKF(r.status == status, "%s...: exit status %d, expected %d; stderr: %s", describe(argv),
           r.status, status, r.err ? r.err : "");
    const char *where = status == 0 ? r.out : r.err;
    if (fragment)
        CHECKF(where && strstr(where, fragment), "%s...: output lacks '%s'; got: %s",
               describe(argv), fragment, where ? where : "");
    CHECKF(r.err && !strstr(r.err, "AddressSanitizer") && !strstr(r.err, "LeakSanitizer") &&
               !strstr(r.err, "runtime error"),
           "sanitizer report: %s", r.err);
    return r;
}

static RunResult expect_run(const char *const *argv, const char *stdin_text, int status,
                            const char *fragment) {
    return expect_run_env(argv, stdin_text, NULL, status, fragment);
}

static void expect_failure(const char *const *argv, const char *fragment) {
    RunResult r = expect_run(argv, NULL, 1, fragment);
    run_result_free(&r);
}

#define ARGS(...) ((const char *const[]){"run", __VA_ARGS__, NULL})
#define M260K "models/stories260K.bin"

/* Where each flag applies (and a value to give it), written here from the README's usage,
 * not taken from run.c's table; import is left out (tests/test_hf.c runs it). */
static const struct {
    const char *flag, *value, *applies;
} flags[] = {
    {"-z", "models/tok512.model", " generate chat eval explain "}, {"-i", "Once", " generate chat explain "},
    {"-n", "4", " generate chat "}, {"-t", "0", " generate chat "}, {"-p", "0.5", " generate chat "},
    {"-s", "7", " generate chat "}, {"-y", "Be brief.", " chat "}, {"-c", "64", " generate chat eval "},
    {"--ctx-size", "64", " generate chat eval "}, {"-q", "w8a16", " generate chat eval bench quantize "},
    {"-g", "32", " generate chat eval bench explain quantize "},
    {"--cls", "fp32", " generate chat eval bench quantize "},
    {"--sdr", "truncate", " generate chat eval bench explain quantize "}, {"--eval-modes", "fp32", " eval "},
    {"--score", "all", " eval "}, {"--json", NULL, " eval bench "}, {"--bench-modes", "fp32", " bench "},
    {"--pp", "4", " bench "}, {"--tg", "4", " bench "}, {"--reps", "1", " bench "},
    {"--layer", "1", " explain "}, {"--site", "wk", " explain "}, {"--head", "1", " explain "},
    {"--explain-svg", "never.svg", " explain "}, {"-j", "1", " generate chat eval bench quantize "},
    {"-v", NULL, " generate chat eval bench quantize "}, {"--info", NULL, " generate chat eval bench quantize "},
};

/* The commands -h lists under a flag's help, on a line of their own in brackets, as
 * " a b c " ("" when there is no such line before the next flag's). */
static void usage_commands(const char *usage, const char *flag, char *out, size_t len) {
    char key[48];
    const char *at = NULL;
    out[0] = '\0';
    for (const char *sep = " ,"; *sep && !at; sep++) { /* "  -z PATH", "  -c, --ctx-size N" */
        snprintf(key, sizeof key, "\n  %s%c", flag, *sep);
        at = strstr(usage, key);
    }
    const char *end = at ? strstr(at + 1, "\n  -") : NULL;
    const char *open = at ? strstr(at, "\n                     [") : NULL;
    const char *close = open ? strchr(open, ']') : NULL;
    if (!close || (end && open > end)) return;
    open += strlen("\n                     [");
    snprintf(out, len, " %.*s ", (int)(close - open), open);
    for (char *c = out; (c = strchr(c, ',')) != NULL;) memmove(c, c + 1, strlen(c)); /* "a, b" -> "a b" */
    if (!strcmp(out, " every command ")) snprintf(out, len, " generate chat eval bench explain quantize import ");
}

static void test_usage(void) {
    RunResult r = expect_run(ARGS("-h"), NULL, 0, "Usage:");
    CHECK(r.out && strstr(r.out, "-z PATH") && strstr(r.out, "-m MODE"));
    CHECK(r.out && strstr(r.out, "-c, --ctx-size N") && strstr(r.out, "QRAZOR_KV_LIMIT"));
    for (const char *line = r.out ? r.out : ""; *line;) { /* an 80-column terminal */
        const size_t len = strcspn(line, "\n");
        CHECKF(len <= 80, "a %zu-column line in -h: %.60s", len, line);
        line += len + (line[len] == '\n');
    }
    /* Under each flag, the commands that take it. */
    static const char *const commands[] = {"generate", "chat", "eval", "bench", "explain", "quantize"};
    for (size_t f = 0; r.out && f < sizeof flags / sizeof flags[0]; f++) {
        if (!strcmp(flags[f].flag, "--ctx-size") || !strcmp(flags[f].flag, "--info")) continue; /* aliases */
        char listed[128], name[32];
        usage_commands(r.out, flags[f].flag, listed, sizeof listed);
        for (size_t c = 0; c < sizeof commands / sizeof commands[0]; c++) {
            snprintf(name, sizeof name, " %s ", commands[c]);
            CHECKF(!strstr(listed, name) == !strstr(flags[f].applies, name), "-h: %s lists [%s]; %s takes it: %s",
                   flags[f].flag, listed, commands[c], strstr(flags[f].applies, name) ? "yes" : "no");
        }
    }
    run_result_free(&r);
    r = expect_run(ARGS("quantize", "--help"), NULL, 0, "run quantize IN.bin OUT.qrz");
    run_result_free(&r);
    r = expect_run((const char *const[]){"run", NULL}, NULL, 1, "Usage:");
    run_result_free(&r);
}

static void test_bad_flags(void) {
    expect_failure(ARGS(M260K, "-x", "1"), "unknown option '-x'");
    expect_failure(ARGS(M260K, "--frobnicate", "1"), "unknown option '--frobnicate'");
    expect_failure(ARGS(M260K, "frobnicate"), "unexpected argument 'frobnicate'");
    expect_failure(ARGS(M260K, "-m", "poetry"), "unknown mode 'poetry'");
    expect_failure(ARGS(M260K, "-t", "hot"), "-t expects a number");
    expect_failure(ARGS(M260K, "-t", "-1"), "-t expects a number");
    expect_failure(ARGS(M260K, "-p", "1.5"), "-p expects a number in [0, 1]");
    expect_failure(ARGS(M260K, "-n", "12abc"), "-n expects an integer");
    expect_failure(ARGS(M260K, "-n", "-5"), "-n expects an integer");
    expect_failure(ARGS(M260K, "-s", "seed"), "-s expects an integer");
    expect_failure(ARGS(M260K, "-n"), "-n needs a value");
    expect_failure(ARGS("-n", "5"), "the first argument must be the model");
    expect_failure(ARGS(M260K, "-q", "int3"), "-q: unknown mode 'int3'");
    expect_failure(ARGS(M260K, "-g", "24"), "-g takes 16, 32, 64 or 128");
    expect_failure(ARGS(M260K, "-g", "256"), "-g expects an integer in 16..128");
    expect_failure(ARGS(M260K, "--cls", "int4"), "unknown classifier setting 'int4'");
    expect_failure(ARGS(M260K, "--sdr", "floor"), "unknown razoring 'floor'");
    expect_failure(ARGS(M260K, "-j", "0"), "-j expects an integer in 1..256");
    RunResult r = expect_run_env(ARGS(M260K, "-n", "4"), NULL, "QRAZOR_SIMD=sse9", 1,
                                 "QRAZOR_SIMD=sse9: unknown level");
    run_result_free(&r);
    /* What an error quotes reaches the terminal escaped: no escape sequence, no second line;
     * UTF-8 text stays as it is. */
    r = expect_run(ARGS(M260K, "--\x1b[2J\x9b\xc2\x9b\rbad\nline\x7f", "1"), NULL, 1,
                   "unknown option '--\\x1b[2J\\x9b\\xc2\\x9b\\x0dbad\\x0aline\\x7f'");
    CHECKF(!strchr(r.err, '\x1b') && !strchr(r.err, '\r') && strchr(r.err, '\n') == r.err + strlen(r.err) - 1,
           "raw control bytes in: %s", r.err);
    run_result_free(&r);
    expect_failure(ARGS(M260K, "--caf\xc3\xa9"), "unknown option '--caf\xc3\xa9'");
}

static void test_bad_model_and_tokenizer(void) {
    expect_failure(ARGS("tests/data/nothing-here.bin"), "cannot open");
    expect_failure(ARGS(test_temp_file("", 0)), "empty");
    size_t size;
    char *model = test_read_file(M260K, &size);
    if (model) {
        expect_failure(ARGS(test_temp_file(model, size / 2)), "truncated");
        memset(model, 0xff, 28); /* header: all -1 */
        expect_failure(ARGS(test_temp_file(model, size)), "not a valid llama2.c checkpoint");
        free(model);
    }
    expect_failure(ARGS(M260K, "-z", "tests/data/nothing-here.model"), "cannot open tokenizer");
    expect_failure(ARGS(M260K, "-z", "tests/data/llama2xs.bin"), "not a tokenizer");
    /* The Llama-2 tokenizer has 32000 pieces; stories260K has a vocabulary of 512. */
    expect_failure(ARGS(M260K, "-z", "tests/data/tokenizer.model"), "has 32000 pieces");
}

static void test_context_limits(void) {
    expect_failure(ARGS(M260K, "-n", "513"), "exceeds the model's context (seq_len 512)");
    /* 600 words: well over 512 tokens. */
    char prompt[600 * 5 + 1] = "";
    for (int i = 0; i < 600; i++) strcat(prompt, "cat ");
    expect_failure(ARGS(M260K, "-i", prompt), "model's context (seq_len) is 512");
    expect_failure(ARGS(M260K, "-n", "3", "-i", "Once upon a time"), "-n allows only 3");
    expect_failure(ARGS(M260K, "-c", "513"), "-c 513 exceeds the model's context (seq_len 512)");
    expect_failure(ARGS(M260K, "-c", "64", "-n", "65"), "-n 65 exceeds the context, -c 64");
    expect_failure(ARGS(M260K, "-c", "0"), "-c expects an integer in 1..");
    expect_failure(ARGS(M260K, "--ctx-size", "8", "-i", "Once upon a time there was a little girl named Lily"),
                   "but the context (-c) holds only 8 positions");
}

/* The text the golden greedy ids of `file` decode to, after BOS, plus the final newline. */
static char *golden_story(const char *file, int *n_ids) {
    int *ids;
    const int n = test_read_ints(file, &ids);
    char err[256];
    Tokenizer *tok = tokenizer_open("models/tok512.model", err, sizeof err);
    if (!CHECKF(tok != NULL, "%s", err) || n <= 0) {
        tokenizer_free(tok);
        return NULL;
    }
    char *want = malloc(8192);
    size_t at = 0;
    int prev = tokenizer_bos(tok);
    for (int i = 0; i < n; i++) {
        size_t len;
        const char *piece = tokenizer_decode(tok, prev, ids[i], &len);
        memcpy(want + at, piece, len);
        at += len;
        prev = ids[i];
    }
    want[at++] = '\n';
    want[at] = '\0';
    tokenizer_free(tok);
    free(ids);
    *n_ids = n;
    return want;
}

/* Greedy generation through the whole program prints exactly the golden continuation:
 * the default mode (qrazor, classifier razored too) and fp32, through both tokenizer
 * formats. */
static void test_greedy_story_matches_golden(void) {
    int n;
    char *qrazor = golden_story("tests/data/golden/stories260K/bos.qrazor-g16-clsq.greedy", &n);
    char *fp32 = golden_story("tests/data/golden/stories260K/bos.fp32.greedy", &n);
    if (!qrazor || !fp32) {
        free(qrazor), free(fp32);
        return;
    }
    char steps[16];
    snprintf(steps, sizeof steps, "%d", n); /* positions 0..n-1 produce n new tokens */
    RunResult r = expect_run(ARGS(M260K, "-t", "0", "-n", steps), NULL, 0, NULL);
    CHECKF(r.out && !strcmp(r.out, qrazor), "stdout:\n%s\nexpected:\n%s", r.out, qrazor);
    CHECKF(r.err && strstr(r.err, "achieved tok/s:"), "no tok/s report: %s", r.err);
    CHECKF(r.err && strstr(r.err, "tokenizer: models/tok512.model"), "no tokenizer report: %s",
           r.err);
    run_result_free(&r);
    r = expect_run(ARGS(M260K, "-t", "0", "-n", steps, "-q", "fp32", "-z", "tests/data/tok512.bin"),
                   NULL, 0, NULL);
    CHECKF(r.out && !strcmp(r.out, fp32), "fp32 with tok512.bin, stdout:\n%s", r.out);
    run_result_free(&r);
    free(qrazor);
    free(fp32);
}

/* The same story through the program at every SIMD level (QRAZOR_SIMD), on 1 and 3 threads. */
static void test_story_matches_golden_every_level(void) {
    int n;
    char *qrazor = golden_story("tests/data/golden/stories260K/bos.qrazor-g16-clsq.greedy", &n);
    if (!qrazor) return;
    char steps[16];
    snprintf(steps, sizeof steps, "%d", n);
    for (int l = 0; l < SIMD_LEVELS; l++) {
        if (!test_level(l)) continue;
        char env[64];
        snprintf(env, sizeof env, "QRAZOR_SIMD=%s", simd_level_name((SimdLevel)l));
        RunResult r = expect_run_env(ARGS(M260K, "-t", "0", "-n", steps, "-j", l % 2 ? "1" : "3"), NULL, env, 0,
                                     NULL);
        CHECKF(r.out && !strcmp(r.out, qrazor), "%s: stdout:\n%s", env, r.out);
        run_result_free(&r);
    }
    free(qrazor);
}

static void test_info(void) {
    RunResult r = expect_run(ARGS(M260K, "-v", "-n", "2"), NULL, 0, NULL);
    const char *e = r.err ? r.err : "";
    CHECKF(strstr(e, "mode:     qrazor (G = 16, SDR rounding; classifier qrazor)"), "%s", e);
    CHECKF(strstr(e, "kernels:  ") && strstr(e, "thread"), "%s", e);
    CHECKF(strstr(e, "4-bit codes + a 4-bit shift per 16: 4.25 bits"), "%s", e);
    CHECKF(strstr(e, "KV cache at full context (512 positions"), "%s", e);
    run_result_free(&r);
    r = expect_run(ARGS(M260K, "--info", "-q", "qrazor", "-g", "32", "--sdr", "truncate",
                        "--cls", "fp32", "-n", "2"), NULL, 0, NULL);
    CHECKF(r.err && strstr(r.err, "mode:     qrazor/g32/trunc/cls=fp32 (G = 32, SDR truncating; classifier fp32)"),
           "%s", r.err);
    run_result_free(&r);
    r = expect_run(ARGS(M260K, "-v", "-q", "w8a16", "-n", "2"), NULL, 0, NULL);
    CHECKF(r.err && strstr(r.err, "mode:     w8a16 (classifier int8)"), "%s", r.err);
    run_result_free(&r);
}

static void test_sampling_is_seeded(void) {
    RunResult a = expect_run(ARGS(M260K, "-s", "42", "-n", "60", "-t", "0.9"), NULL, 0, NULL);
    RunResult b = expect_run(ARGS(M260K, "-s", "42", "-n", "60", "-t", "0.9"), NULL, 0, NULL);
    RunResult c = expect_run(ARGS(M260K, "-s", "43", "-n", "60", "-t", "0.9"), NULL, 0, NULL);
    CHECK(a.out && b.out && c.out && !strcmp(a.out, b.out));
    CHECK(a.out && c.out && strcmp(a.out, c.out) != 0);
    CHECK(a.out && strlen(a.out) > 20);
    run_result_free(&a), run_result_free(&b), run_result_free(&c);
}

static void test_tokenizer_discovery(void) {
    /* A model alone in a directory: no tokenizer beside it is an error that says so. */
    const char *dir = test_temp_path("lonely-model");
    if (!CHECK(mkdir(dir, 0700) == 0)) return;
    char model[512], tok[512];
    snprintf(model, sizeof model, "%s/model.bin", dir);
    snprintf(tok, sizeof tok, "%s/tokenizer.model", dir);
    size_t size;
    char *bytes = test_read_file(M260K, &size);
    FILE *f = fopen(model, "wb");
    if (bytes && f) fwrite(bytes, 1, size, f);
    if (f) fclose(f);
    free(bytes);
    expect_failure(ARGS(model), "no tokenizer with 512 pieces found beside");
    /* The wrong vocabulary beside it is named in the error. */
    bytes = test_read_file("tests/data/tokenizer.model", &size);
    f = fopen(tok, "wb");
    if (bytes && f) fwrite(bytes, 1, size, f);
    if (f) fclose(f);
    free(bytes);
    expect_failure(ARGS(model), "has 32000 pieces");
    unlink(tok);
    unlink(model);
    rmdir(dir);
}

static void test_chat_mode(void) {
    /* A TinyStories model is no chat model, but the loop must run and end cleanly at EOF. */
    RunResult r = expect_run(ARGS(M260K, "-m", "chat", "-t", "0", "-n", "200", "-y", "Be brief."),
                             "Tell me a story.\n", 0, "Assistant: ");
    CHECKF(r.out && strstr(r.out, "User: "), "stdout: %s", r.out);
    run_result_free(&r);
    /* No -y and no input at all: asked for a system prompt, then for the user, then done. */
    r = expect_run(ARGS(M260K, "-m", "chat"), "", 0, "User: ");
    CHECKF(r.out && !strstr(r.out, "Assistant: "), "stdout: %s", r.out);
    run_result_free(&r);
}

/* A flag that the chosen run would ignore is an error, so nobody believes it took effect;
 * a flag's value is never read as a flag. */
static void test_flags_belong_to_their_run(void) {
    expect_failure(ARGS(M260K, "-y", "Be brief."), "-y goes with -m chat");
    expect_failure(ARGS(M260K, "--eval", "tests/data/tinystories-dev.txt", "-t", "0"),
                   "-t does not apply to --eval");
    expect_failure(ARGS(M260K, "--bench", "-i", "Once"), "-i does not apply to --bench");
    expect_failure(ARGS(M260K, "--bench", "-m", "chat"), "--bench does not combine with -m");
    expect_failure(ARGS(M260K, "--explain", "-n", "9"), "-n does not apply to --explain");
    expect_failure(ARGS(M260K, "--explain", "-v"), "-v does not apply to --explain");
    expect_failure(ARGS("quantize", M260K, "out.qrz", "-m", "chat"), "-m does not apply to quantize");
    /* The three that issue 9 found ignored. */
    expect_failure(ARGS(M260K, "--bench", "--pp", "4", "--tg", "4", "--reps", "1", "-z", "/nonexistent"),
                   "-z does not apply to --bench");
    expect_failure(ARGS(M260K, "--explain", "-j", "7"), "-j does not apply to --explain");
    expect_failure(ARGS(M260K, "-q", "fp32", "-g", "64", "--sdr", "truncate", "-n", "3"),
                   "-g sets the razoring, but mode fp32 razors nothing");
    expect_failure(ARGS(M260K, "--sdr", "truncate", "-q", "w8a16"), "--sdr sets the razoring, but mode w8a16");
    /* A razored classifier is razoring: -g matters there. */
    RunResult ok = expect_run(ARGS(M260K, "-q", "fp32/cls=qrazor", "-g", "32", "-n", "3"), NULL, 0, NULL);
    run_result_free(&ok);
    /* "-h" as the prompt is a prompt, not a request for help. */
    RunResult r = expect_run(ARGS(M260K, "-i", "-h", "-n", "4", "-t", "0"), NULL, 0, "-h");
    CHECKF(r.out && !strstr(r.out, "Usage:"), "stdout: %s", r.out);
    run_result_free(&r);
}

/* Every flag given to a command that would ignore it is an error that names the flag. */
static void test_no_flag_is_ignored(void) {
    const char *never = test_temp_path("never.qrz");
    const struct {
        const char *name, *argv[5];
    } commands[] = {{"generate", {M260K}},
                    {"chat", {M260K, "-m", "chat"}},
                    {"eval", {M260K, "--eval", "tests/data/tinystories-dev.txt"}},
                    {"bench", {M260K, "--bench"}},
                    {"explain", {M260K, "--explain"}},
                    {"quantize", {"quantize", M260K, never}}};
    int refused = 0;
    for (size_t c = 0; c < sizeof commands / sizeof commands[0]; c++) {
        char name[32];
        snprintf(name, sizeof name, " %s ", commands[c].name);
        for (size_t f = 0; f < sizeof flags / sizeof flags[0]; f++) {
            if (strstr(flags[f].applies, name)) continue;
            const char *argv[10] = {"run"};
            int n = 1;
            for (int k = 0; commands[c].argv[k]; k++) argv[n++] = commands[c].argv[k];
            argv[n++] = flags[f].flag;
            if (flags[f].value) argv[n++] = flags[f].value;
            RunResult r = test_run_program(argv, "", NULL);
            CHECKF(r.status == 1 && r.err && strstr(r.err, flags[f].flag) &&
                       (strstr(r.err, "does not apply to") || strstr(r.err, "goes with")),
                   "%s with %s: exit %d, stderr: %s", commands[c].name, flags[f].flag, r.status, r.err);
            run_result_free(&r);
            refused++;
        }
    }
    CHECK(access(never, F_OK) != 0); /* quantize wrote nothing */
    CHECKF(refused > 80, "only %d combinations tried", refused);
}

/* stories260K with a header that asks for a context of 2^20 positions (a llama2.c file
 * holds RoPE tables of that length, unread: here a sparse tail). Returns its path. */
static const char *huge_context_model(void) {
    size_t size;
    char *model = test_read_file(M260K, &size);
    if (!model) return NULL;
    int32_t header[7];
    memcpy(header, model, sizeof header);
    const int32_t seq = 1 << 20, head_size = header[0] / header[3];
    /* A shared classifier (vocab > 0): the RoPE tables are the end of the file. */
    const int ok = CHECKF(header[5] > 0 && header[6] == 512, "unexpected header");
    header[6] = seq;
    memcpy(model, header, sizeof header);
    const char *path = test_temp_path("huge-context.bin");
    FILE *f = fopen(path, "wb");
    const int written = f && fwrite(model, 1, size, f) == size;
    if (f) fclose(f);
    free(model);
    const off_t extra = (off_t)(seq - 512) * head_size * 4;
    return CHECK(ok && written && truncate(path, (off_t)size + extra) == 0) ? path : NULL;
}

/* A run allocates the context it uses, not the header's; the KV cache has a limit. */
static void test_context_is_what_the_run_uses(void) {
    const char *model = huge_context_model();
    if (!model) return;
    RunResult r = expect_run(ARGS(model, "-z", "models/tok512.model", "-n", "8", "-t", "0", "-v"), NULL, 0, NULL);
    CHECKF(r.err && strstr(r.err, "context:  8 positions allocated (the model knows 1048576)"), "%s", r.err);
    CHECKF(r.out && strlen(r.out) > 5, "no story: %s", r.out);
    run_result_free(&r);
    r = expect_run(ARGS(model, "-z", "models/tok512.model", "-c", "100", "-n", "8", "-t", "0", "-v"), NULL, 0, NULL);
    CHECKF(r.err && strstr(r.err, "context:  100 positions allocated"), "%s", r.err);
    run_result_free(&r);
    /* fp32 keys and values: 2 x 5 layers x 4 kv heads x 8 positions x head size 8 x 4 bytes. */
    r = expect_run(ARGS(model, "--bench", "-q", "fp32", "--pp", "8", "--tg", "4", "--reps", "1", "--json"), NULL, 0,
                   "\"results\"");
    CHECKF(r.out && strstr(r.out, "\"kv_bytes\": 10240,") && strstr(r.out, "\"context\": 8,"), "%s", r.out);
    /* pp8's multiply-adds: 8 tokens x 226560 linear weights (stories260K's shape, the README's
     * memory table) + attention 5 layers x (1 + ... + 8) positions x 2 x dim 64 + the
     * classifier 512 x 64 once. */
    CHECKF(r.out && strstr(r.out, "\"macs\": 1868288,"), "%s", r.out);
    run_result_free(&r);
    /* --explain holds the prompt: the probe's float copies of keys and values too. */
    r = expect_run(ARGS(model, "--explain", "-z", "models/tok512.model", "--site", "pv"), NULL, 0, "the same, to the bit");
    CHECKF(r.out && strstr(r.out, "KV cache at full context (1048576 positions"), "%s", r.out);
    run_result_free(&r);
    /* The whole context of that header would take hundreds of MB: over a limit, refused. */
    r = expect_run_env(ARGS(model, "-z", "models/tok512.model", "-n", "0"), NULL, "QRAZOR_KV_LIMIT=64M", 1,
                       "a context of 1048576 positions needs");
    CHECKF(r.err && strstr(r.err, "more than the limit of 64.0 MiB"), "%s", r.err);
    run_result_free(&r);
    r = expect_run_env(ARGS(M260K, "-n", "256"), NULL, "QRAZOR_KV_LIMIT=4K", 1, "more than the limit of 4.0 KiB");
    run_result_free(&r);
    r = expect_run_env(ARGS(M260K, "-n", "4"), NULL, "QRAZOR_KV_LIMIT=lots", 1, "QRAZOR_KV_LIMIT=lots: expected");
    run_result_free(&r);
    size_t bytes = 0;
    CHECK(kv_limit_parse("512M", &bytes) == 0 && bytes == (size_t)512 << 20);
    CHECK(kv_limit_parse("8G", &bytes) == 0 && bytes == (size_t)8 << 30);
    CHECK(kv_limit_parse("4096", &bytes) == 0 && bytes == 4096);
    CHECK(kv_limit_parse("0", &bytes) != 0 && kv_limit_parse("-1K", &bytes) != 0 && kv_limit_parse("1X", &bytes) != 0);
    CHECK(kv_limit_parse("", &bytes) != 0 && kv_limit_parse("1KB", &bytes) != 0);
    CHECK(kv_limit_parse("99999999999999999999", &bytes) != 0 && kv_limit_parse("20000000000T", &bytes) != 0);
    CHECK(kv_limit_default() >= (size_t)64 << 20);
}

/* --bench runs and reports (its figures are measured, never checked: only the plumbing). */
static void test_bench_mode(void) {
    RunResult r = expect_run(ARGS(M260K, "--bench", "--bench-modes", "fp32,qrazor", "--pp", "8", "--tg",
                                  "8", "--reps", "2", "-j", "1", "--json"), NULL, 0, "\"results\"");
    int rows = 0;
    for (const char *p = r.out; p && (p = strstr(p, "\"tokens_per_s\": ")); p++) rows += atof(p + 16) > 0;
    CHECKF(rows == 4, "expected 4 results with tokens/s, got %d: %s", rows, r.out);
    CHECKF(r.out && strstr(r.out, "\"test\": \"pp8\"") && strstr(r.out, "\"test\": \"tg8\""), "%s", r.out);
    /* What fp32 decoding reads per token, from stories260K's header (dim 64, hidden 172, 5
     * layers, 8 heads, 4 KV heads, vocab 512): every weight as float32, its classifier being
     * the embedding, 131072 + 2816 norm + 5 x 45312 x 4 layer bytes; and the cache, 5 layers
     * x 4 heads x 8 x 2 floats = 1280 bytes a position, 4.5 positions on average over tg8. */
    const char *fp32_tg = r.out ? strstr(r.out, "\"mode\": \"fp32\", \"test\": \"tg8\"") : NULL;
    const char *read = fp32_tg ? strstr(fp32_tg, "\"bytes_read_per_token\": ") : NULL;
    CHECKF(read && atof(read + 24) == 131072 + 2816 + 5 * 45312 * 4 + 4.5 * 1280, "%s", read ? read : "no field");
    run_result_free(&r);
    /* A rotated mode's tg says what its online rotations take alone; the others have none. */
    r = expect_run(ARGS(M260K, "--bench", "--bench-modes", "rtn4,quarot", "--pp", "0", "--tg", "4", "--reps", "1",
                        "--json"), NULL, 0, "\"results\"");
    const char *quarot = r.out ? strstr(r.out, "\"mode\": \"quarot\"") : NULL;
    const char *us = quarot ? strstr(quarot, "\"rotation_us_per_token\": ") : NULL;
    CHECKF(us && atof(us + 25) > 0 && strstr(r.out, "\"rotation_us") == us, "%s", r.out);
    run_result_free(&r);
    r = expect_run(ARGS(M260K, "--bench", "--bench-modes", "quarot", "--pp", "0", "--tg", "4", "--reps", "1"), NULL, 0,
                   "the online rotations alone");
    run_result_free(&r);
    r = expect_run(ARGS(M260K, "--bench", "--pp", "0", "--tg", "4", "--reps", "1"), NULL, 0, "tg4");
    CHECKF(r.out && !strstr(r.out, "pp0"), "%s", r.out);
    run_result_free(&r);
    expect_failure(ARGS(M260K, "--bench", "--pp", "600"), "exceed the model's context");
    expect_failure(ARGS(M260K, "--bench", "--reps", "0"), "--reps expects an integer in 1..100");
    expect_failure(ARGS(M260K, "--bench", "--pp", "0", "--tg", "0"), "nothing to measure");
    expect_failure(ARGS(M260K, "--pp", "16"), "--pp goes with --bench");
    expect_failure(ARGS(M260K, "--bench", "--eval", "tests/data/tinystories-dev.txt"), "separate runs");
}

void suite_cli(void) {
    test_run("cli_bench_mode", test_bench_mode);
    test_run("cli_usage", test_usage);
    test_run("cli_bad_flags", test_bad_flags);
    test_run("cli_bad_model_and_tokenizer", test_bad_model_and_tokenizer);
    test_run("cli_context_limits", test_context_limits);
    test_run("cli_greedy_story_matches_golden", test_greedy_story_matches_golden);
    test_run("cli_story_matches_golden_every_level", test_story_matches_golden_every_level);
    test_run("cli_info", test_info);
    test_run("cli_sampling_is_seeded", test_sampling_is_seeded);
    test_run("cli_tokenizer_discovery", test_tokenizer_discovery);
    test_run("cli_chat_mode", test_chat_mode);
    test_run("cli_flags_belong_to_their_run", test_flags_belong_to_their_run);
    test_run("cli_no_flag_is_ignored", test_no_flag_is_ignored);
    test_run("cli_context_is_what_the_run_uses", test_context_is_what_the_run_uses);
}
