/*
 * tests/test_eval.c - perplexity and KL evaluation (engine/commands/eval.c and run --eval).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <signal.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "engine/commands/clock.h"
#include "engine/commands/eval.h"
#include "tests/test.h"

#define ARGS(...) ((const char *const[]){"run", __VA_ARGS__, NULL})

/* The value of "key": in the first JSON object after `after` in s (a tiny reader for our
 * own flat output). */
static double json_number(const char *s, const char *after, const char *key) {
    const char *at = s ? strstr(s, after) : NULL;
    if (!at) return NAN;
    char pattern[64];
    snprintf(pattern, sizeof pattern, "\"%s\": ", key);
    at = strstr(at, pattern);
    return at ? strtod(at + strlen(pattern), NULL) : NAN;
}

/* The golden nll.txt value for CASE MODE. */
static double golden_nll(const char *dir, const char *case_mode) {
    char path[256];
    snprintf(path, sizeof path, "tests/data/golden/%s/nll.txt", dir);
    char *text = test_read_file(path, NULL);
    if (!text) return NAN;
    const char *at = strstr(text, case_mode);
    const double v = at ? strtod(at + strlen(case_mode), NULL) : NAN;
    free(text);
    return v;
}

/* --eval over a file holding just the golden prompt, scoring every next token, gives the
 * mean NLL the oracle gave for the same tokens. */
static void test_eval_nll_matches_golden(void) {
    static const struct {
        const char *model, *dir, *name;
    } cases[] = {{"models/stories260K.bin", "stories260K", "lily"},
                 {"tests/data/llama2xs.bin", "llama2xs", "park"}};
    for (int c = 0; c < 2; c++) {
        char path[256];
        snprintf(path, sizeof path, "tests/data/golden/%s/%s.prompt.txt", cases[c].dir, cases[c].name);
        char *prompt = test_read_file(path, NULL);
        if (!prompt) continue;
        prompt[strcspn(prompt, "\n")] = '\0';
        const char *file = test_temp_file(prompt, strlen(prompt));
        RunResult r = test_run_program(ARGS(cases[c].model, "--eval", file, "--eval-modes",
                                            "fp32,qrazor/cls=fp32", "--score", "all", "--json"),
                                       NULL, NULL);
        CHECKF(r.status == 0, "%s: exit %d: %s", cases[c].name, r.status, r.err);
        const struct {
            const char *ours, *golden;
        } modes[] = {{"\"fp32\"", " fp32 "}, {"\"qrazor/cls=fp32\"", " qrazor-g16 "}};
        for (int m = 0; m < 2; m++) {
            char key[64];
            snprintf(key, sizeof key, "%s%s", cases[c].name, modes[m].golden);
            const double want = golden_nll(cases[c].dir, key);
            const double got = json_number(r.out, modes[m].ours, "nll");
            /* Logits agree to ~2e-7 of their range; golden NLLs are printed to 1e-6. */
            CHECKF(fabs(got - want) < 2e-5, "%s %s: NLL %.6f, golden %.6f", cases[c].name,
                   modes[m].ours, got, want);
        }
        /* The prompt's tokens all scored: n - 1 of them. */
        CHECKF(json_number(r.out, "{", "score_from") == 0, "%s", r.out);
        run_result_free(&r);
        free(prompt);
    }
}

/* The same with rotations (docs/SPEC.md section 7), on the oracle's -rot prompt: fp32/rot
 * and quarot give the oracle's NLL, and fp32/rot's KL from fp32 (a model of its own: no
 * plain fp32 is among the modes) is float rounding, 0 to the printed digits. */
static void test_eval_rotated_nll_matches_golden(void) {
    char *prompt = test_read_file("tests/data/golden/stories260K-rot/lily.prompt.txt", NULL);
    if (!prompt) return;
    prompt[strcspn(prompt, "\n")] = '\0';
    const char *file = test_temp_file(prompt, strlen(prompt));
    RunResult r = test_run_program(ARGS("models/stories260K.bin", "--eval", file, "--eval-modes",
                                        "fp32/rot,quarot/cls=fp32", "--score", "all", "--json"),
                                   NULL, NULL);
    CHECKF(r.status == 0, "exit %d: %s", r.status, r.err);
    const struct {
        const char *ours, *golden;
    } modes[] = {{"\"fp32/rot\"", "lily fp32-rot "}, {"\"quarot/cls=fp32\"", "lily rtn4-rot "}};
    for (int m = 0; m < 2; m++) {
        const double want = golden_nll("stories260K-rot", modes[m].golden);
        const double got = json_number(r.out, modes[m].ours, "nll");
        CHECKF(fabs(got - want) < 2e-5, "%s: NLL %.6f, golden %.6f", modes[m].ours, got, want);
    }
    const double kl = json_number(r.out, "\"fp32/rot\"", "mean_kl");
    CHECKF(kl >= 0 && kl < 1e-8, "fp32/rot: KL %g from fp32", kl);
    run_result_free(&r);
    free(prompt);
}

/* KL(fp32 || fp32) is 0 and top-1 agreement 100%, with the comparison really computed
 * (two separate float32 models, not one reused). */
static void test_kl_of_fp32_with_itself_is_zero(void) {
    char err[256];
    QuantConfig q;
    quant_config_parse("fp32", &q, err, sizeof err);
    ModelWeights a, b;
    if (!CHECKF(model_open(&a, "models/stories260K.bin", &q, NULL, err, sizeof err) == 0, "%s", err)) return;
    if (!CHECKF(model_open(&b, "models/stories260K.bin", &q, NULL, err, sizeof err) == 0, "%s", err)) {
        model_close(&a);
        return;
    }
    Transformer *ref = transformer_new(&a, NULL, a.cfg.seq_len, err, sizeof err);
    Transformer *mode = transformer_new(&b, NULL, b.cfg.seq_len, err, sizeof err);
    int tokens[100];
    for (int i = 0; i < 100; i++) tokens[i] = 1 + (i * 53) % 511;
    EvalPlan plan;
    CHECK(eval_plan(&plan, 100, 40, 0) == 0 && plan.n_windows == 2 && plan.n_scored == 2 * 19);
    EvalStats st;
    Transformer *modes[1] = {mode};
    CHECK(ref && mode && eval_run(&plan, tokens, 1, ref, modes, 1, &st, NULL, NULL) == 0);
    CHECKF(st.kl_sum == 0.0 && st.kl_max == 0.0, "KL %g, max %g", st.kl_sum, st.kl_max);
    CHECK(st.top1_agree == plan.n_scored);
    CHECK(st.positions == 2 * 39 && st.nll_sum > 0);
    transformer_free(ref);
    transformer_free(mode);
    model_close(&a);
    model_close(&b);
}

static void test_eval_windows(void) {
    EvalPlan p;
    /* 1000 tokens in windows of 256: 3 full windows, the rest dropped (as llama.cpp);
     * positions 128..254 of each are scored. */
    CHECK(eval_plan(&p, 1000, 256, 0) == 0 && p.n_windows == 3 && p.ctx == 256 &&
          p.score_from == 128 && p.n_scored == 3 * 127);
    /* A text shorter than one window is one shorter window, scored in full... */
    CHECK(eval_plan(&p, 15, 512, 1) == 0 && p.n_windows == 1 && p.ctx == 15 && p.n_scored == 14);
    /* ...or in its own second half: 129 tokens, positions 64..127. */
    CHECK(eval_plan(&p, 129, 512, 0) == 0 && p.ctx == 129 && p.score_from == 64 && p.n_scored == 64);
    /* Nothing left to score is an error. */
    CHECK(eval_plan(&p, 2, 512, 0) != 0);
    CHECK(eval_plan(&p, 1, 512, 1) != 0);
}

static void expect_eval_error(const char *file, const char *fragment) {
    RunResult r = test_run_program(ARGS("models/stories260K.bin", "--eval", file), NULL, NULL);
    CHECKF(r.status == 1, "%s: exit %d", file, r.status);
    CHECKF(r.err && strstr(r.err, fragment), "%s: stderr lacks '%s': %s", file, fragment, r.err);
    run_result_free(&r);
}

static void test_eval_rejects_bad_text(void) {
    expect_eval_error("tests/data/no-such-text.txt", "cannot open");
    expect_eval_error(test_temp_file("", 0), "the file is empty");
    expect_eval_error(test_temp_file("\n \n\t", 4), "only white space");
    expect_eval_error(test_temp_file("Once upon \xff\xfe a time", 19), "not valid UTF-8 at byte 10");
    expect_eval_error(test_temp_file("half a character \xe2\x82", 19), "not valid UTF-8 at byte 17");
    /* Well-formed in shape but not UTF-8 (RFC 3629): overlong "/" (E0 80 AF), the
     * surrogate U+D800 (ED A0 80), U+110000 (F4 90 80 80). */
    expect_eval_error(test_temp_file("ab\xe0\x80\xaf", 5), "not valid UTF-8 at byte 2");
    expect_eval_error(test_temp_file("ab\xed\xa0\x80", 5), "not valid UTF-8 at byte 2");
    expect_eval_error(test_temp_file("ab\xf4\x90\x80\x80", 6), "not valid UTF-8 at byte 2");
    expect_eval_error(test_temp_file("nul\0byte", 8), "contains a NUL byte at offset 3");
    expect_eval_error(test_temp_file("a", 1), "too short to score");
    RunResult r = test_run_program(ARGS("models/stories260K.bin", "--eval", "tests/data/tinystories-dev.txt",
                                        "--eval-modes", "qrazor,int3"), NULL, NULL);
    CHECKF(r.status == 1 && r.err && strstr(r.err, "unknown mode 'int3'"), "%s", r.err);
    run_result_free(&r);
    r = test_run_program(ARGS("models/stories260K.bin", "--json"), NULL, NULL);
    CHECKF(r.status == 1 && r.err && strstr(r.err, "--json goes with --eval FILE or --bench"), "%s", r.err);
    run_result_free(&r);
}

/* The reader: regular files only (a FIFO without a writer, a device: refused at once), a
 * cap on what it reads, every rejected text freed (LeakSanitizer watches the runner in
 * make test-asan), documents split at their separators and each of bounded size. */
static void test_eval_text_reader(void) {
    RunResult r = test_run_program(ARGS("models/stories260K.bin", "--eval", "/dev/zero"), NULL, NULL);
    CHECKF(r.status == 1 && r.err && strstr(r.err, "error: /dev/zero: not a regular file"), "%s", r.err);
    run_result_free(&r);
    const char *fifo = test_temp_path("no-writer.fifo");
    if (CHECK(mkfifo(fifo, 0600) == 0)) {
        RunningProgram p = test_start_program(ARGS("models/stories260K.bin", "--eval", fifo), NULL, NULL);
        const int ended = p.pid > 0 && test_program_ends_within(&p, 20);
        if (CHECKF(ended, "--eval on a FIFO without a writer still waits after 20 s") == 0 && p.pid > 0)
            kill(p.pid, SIGKILL);
        r = test_finish_program(&p);
        CHECKF(!ended || (r.status == 1 && strstr(r.err, "no-writer.fifo: not a regular file")), "%s", r.err);
        run_result_free(&r);
        unlink(fifo);
    }
    /* One line of 10 MB: refused before it is encoded, at the cost of reading it. */
    const size_t big = 10u << 20;
    char *line = malloc(big + 1);
    if (CHECK(line != NULL)) {
        for (size_t i = 0; i < big; i++) line[i] = i % 5 == 4 ? ' ' : "abcd"[i % 5];
        line[big] = '\n';
        const char *path = test_temp_file(line, big + 1), *one = test_temp_file("Once upon a time.", 17);
        RunResult small = test_run_program(ARGS("models/stories260K.bin", "--eval", one), NULL, NULL);
        r = test_run_program(ARGS("models/stories260K.bin", "--eval", path), NULL, NULL);
        CHECKF(r.status == 1 && strstr(r.err, "a document of 10485760 bytes") && strstr(r.err, "at most 4 MiB") &&
                   r.max_rss_mb < small.max_rss_mb + 64,
               "exit %d, %.0f MiB (%.0f for a line of 17 bytes): %s", r.status, r.max_rss_mb, small.max_rss_mb, r.err);
        run_result_free(&r);
        run_result_free(&small);
        if (path) remove(path);
        free(line);
    }
    char err[256];
    static const struct {
        const char *text;
        size_t len;
        const char *why;
    } bad[] = {{" \n\t\r\n", 5, "only white space"}, {"", 0, "the file is empty"},
               {"ok\xc3", 3, "not valid UTF-8 at byte 2"}, {"a\0b", 3, "NUL byte at offset 1"}};
    for (int k = 0; k < 4; k++) {
        const char *path = test_temp_file(bad[k].text, bad[k].len);
        char *text = path ? eval_read_text(path, err, sizeof err) : NULL;
        CHECKF(!text && strstr(err, bad[k].why), "%s: %s", bad[k].why, err);
        free(text);
    }
    CHECKF(!eval_read_text("tests/data/no-such-text.txt", err, sizeof err) && strstr(err, "cannot open"), "%s", err);
    /* Exactly the limit is a text; a byte more is not (a sparse file of spaces and one word). */
    const char *path = test_temp_path("limit.txt");
    FILE *f = fopen(path, "wb");
    if (CHECK(f != NULL)) {
        fputs("Once", f);
        fclose(f);
    }
    CHECK(truncate(path, EVAL_MAX_TEXT) == 0);
    char *text = eval_read_text(path, err, sizeof err); /* holds NUL bytes: rejected, but read whole */
    CHECKF(!text && strstr(err, "NUL byte at offset 4"), "%s", err);
    free(text);
    CHECK(truncate(path, EVAL_MAX_TEXT + 1) == 0);
    text = eval_read_text(path, err, sizeof err);
    CHECKF(!text && strstr(err, "larger than 64 MiB"), "%s", err);
    free(text);
    remove(path);
    /* Separators only: no document. */
    RunResult s = test_run_program(ARGS("models/stories260K.bin", "--eval",
                                        test_temp_file("<|endoftext|>\n<|endoftext|>\n", 28)), NULL, NULL);
    CHECKF(s.status == 1 && s.err && strstr(s.err, "no text between the <|endoftext|> lines"), "%s", s.err);
    run_result_free(&s);
}

/* -c is the window: too short to score is said of the window, not of the text; the
 * KV cache holds the window, not the model's context. */
static void test_eval_window(void) {
    RunResult r = test_run_program(ARGS("models/stories260K.bin", "--eval", "tests/data/tinystories-dev.txt", "-c", "2"),
                                   NULL, NULL);
    CHECKF(r.status == 1 && r.err && strstr(r.err, "-c 2: a window of 2 tokens leaves nothing to score") &&
               !strstr(r.err, "tokens: too short"), "%s", r.err);
    run_result_free(&r);
    r = test_run_program(ARGS("models/stories260K.bin", "--eval", "tests/data/tinystories-dev.txt", "-c", "600"), NULL,
                         NULL);
    CHECKF(r.status == 1 && r.err && strstr(r.err, "-c 600 exceeds the model's context (seq_len 512)"), "%s", r.err);
    run_result_free(&r);
    const char *text = "Once upon a time, there was a little girl named Lily. She liked to play outside.";
    const char *file = test_temp_file(text, strlen(text));
    r = test_run_program(ARGS("models/stories260K.bin", "--eval", file, "-c", "2", "--score", "all", "--json"), NULL,
                         NULL);
    CHECKF(r.status == 0 && json_number(r.out, "{", "window") == 2, "exit %d: %s%s", r.status, r.out, r.err);
    run_result_free(&r);
    r = test_run_program(ARGS("models/stories260K.bin", "--eval", file, "-c", "8", "-v"), NULL, NULL);
    CHECKF(r.status == 0 && r.err && strstr(r.err, "context:  8 positions allocated (the model knows 512)"), "%s", r.err);
    run_result_free(&r);
    /* The whole text is one window, shorter than the model's context: that is what is held. */
    r = test_run_program(ARGS("models/stories260K.bin", "--eval", file, "-v", "--json"), NULL, NULL);
    char want[96];
    snprintf(want, sizeof want, "context:  %.0f positions allocated", json_number(r.out, "{", "tokens"));
    CHECKF(r.status == 0 && json_number(r.out, "{", "tokens") < 40 && r.err && strstr(r.err, want), "%s: %s", want,
           r.err);
    run_result_free(&r);
}

/* A real evaluation on the first stories of the dev set: the table has every mode, and
 * the numbers are ordered as quantization predicts: w8a16 close to fp32, qrazor between
 * w8a16 and rtn4. */
static void test_eval_on_real_text(void) {
    size_t size;
    char *text = test_read_file("tests/data/tinystories-dev.txt", &size);
    if (!text) return;
    /* Cut after the 6th story. */
    char *end = text;
    for (int i = 0; i < 6 && end; i++) end = strstr(end + 1, "<|endoftext|>");
    if (end) *end = '\0';
    const char *file = test_temp_file(text, strlen(text));
    free(text);
    RunResult r = test_run_program(ARGS("models/stories260K.bin", "--eval", file, "--eval-modes",
                                        "fp32,w8a16,qrazor,rtn4", "-c", "128", "--json"),
                                   NULL, NULL);
    CHECKF(r.status == 0, "exit %d: %s", r.status, r.err);
    const double fp32 = json_number(r.out, "\"fp32\"", "nll"), w8 = json_number(r.out, "\"w8a16\"", "nll");
    const double qr = json_number(r.out, "\"qrazor\"", "nll"), rtn = json_number(r.out, "\"rtn4\"", "nll");
    CHECKF(fp32 > 0.5 && fp32 < 3, "fp32 NLL %g", fp32);
    CHECKF(fabs(w8 - fp32) < 0.05, "w8a16 %g vs fp32 %g", w8, fp32);
    CHECKF(qr > w8 && qr < rtn, "qrazor %g not between w8a16 %g and rtn4 %g", qr, w8, rtn);
    CHECKF(json_number(r.out, "\"w8a16\"", "top1") > 90, "%s", r.out);
    CHECKF(json_number(r.out, "\"fp32\"", "mean_kl") == 0, "%s", r.out);
    CHECKF(json_number(r.out, "{", "windows") >= 2, "%s", r.out);
    run_result_free(&r);
}

void suite_eval(void) {
    test_run("eval_windows", test_eval_windows);
    test_run("eval_nll_matches_golden", test_eval_nll_matches_golden);
    test_run("eval_rotated_nll_matches_golden", test_eval_rotated_nll_matches_golden);
    test_run("eval_kl_of_fp32_with_itself_is_zero", test_kl_of_fp32_with_itself_is_zero);
    test_run("eval_rejects_bad_text", test_eval_rejects_bad_text);
    test_run("eval_on_real_text", test_eval_on_real_text);
    test_run("eval_text_reader", test_eval_text_reader);
    test_run("eval_window", test_eval_window);
}
