/*
 * tests/test_checkpoint.c - the llama2.c checkpoint loader, on real and on broken files.
 */
#include <fcntl.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "engine/transformer.h"
#include "tests/test.h"
#include "weights/model.h"

static void test_loads_stories260k(void) {
    Checkpoint ck;
    char err[512] = "";
    if (!CHECKF(checkpoint_open(&ck, "models/stories260K.bin", err, sizeof err) == 0, "%s", err))
        return;
    /* The header values of the published model (llama2.c's stories260K). */
    const ModelConfig *c = &ck.cfg;
    CHECK(c->dim == 64 && c->hidden_dim == 172 && c->n_layers == 5);
    CHECK(c->n_heads == 8 && c->n_kv_heads == 4); /* grouped-query attention */
    CHECK(c->vocab_size == 512 && c->seq_len == 512);
    CHECK(ck.shared_classifier && ck.wcls == ck.token_embedding);
    /* rms_final is followed by the legacy RoPE tables, seq_len * head_size floats, then EOF. */
    const float *end = (const float *)((const char *)ck.map + ck.map_size);
    CHECK(ck.rms_final + c->dim + (size_t)c->seq_len * 8 == end);
    checkpoint_close(&ck);
}

/* Writes a checkpoint with the given header and `floats` float32 zeros after it. */
static const char *fake_checkpoint(const int header[7], size_t floats, size_t extra_bytes) {
    size_t size = 28 + 4 * floats + extra_bytes;
    char *buf = calloc(1, size);
    memcpy(buf, header, 28);
    const char *path = test_temp_file(buf, size);
    free(buf);
    return path;
}

/* Floats implied by a header with a shared classifier (the formula of the format). */
static size_t implied_floats(const int h[7]) {
    size_t dim = (size_t)h[0], hid = (size_t)h[1], L = (size_t)h[2], hs = dim / (size_t)h[3],
           kv = hs * (size_t)h[4], voc = (size_t)(h[5] < 0 ? -h[5] : h[5]), seq = (size_t)h[6];
    size_t n = voc * dim + 2 * L * dim + 2 * L * dim * dim + 2 * L * kv * dim + 3 * L * hid * dim +
               dim + seq * hs;
    return h[5] < 0 ? n + voc * dim : n;
}

static void expect_error(const char *path, const char *fragment) {
    Checkpoint ck;
    char err[512] = "";
    int rc = checkpoint_open(&ck, path, err, sizeof err);
    CHECKF(rc != 0, "%s: loaded but should have failed", path);
    CHECKF(strstr(err, fragment) != NULL, "error '%s' does not mention '%s'", err, fragment);
    CHECKF(path == NULL || strstr(err, path) != NULL, "error '%s' does not name the file", err);
    if (rc == 0) checkpoint_close(&ck);
}

static const int good[7] = {16, 32, 2, 4, 2, 32, 8};

static void test_accepts_consistent_fake(void) {
    Checkpoint ck;
    char err[512] = "";
    const char *p = fake_checkpoint(good, implied_floats(good), 0);
    CHECKF(checkpoint_open(&ck, p, err, sizeof err) == 0, "%s", err);
    CHECK(ck.cfg.n_kv_heads == 2 && ck.shared_classifier);
    checkpoint_close(&ck);
    int own[7];
    memcpy(own, good, sizeof own);
    own[5] = -32; /* a separate classifier follows */
    p = fake_checkpoint(own, implied_floats(own), 0);
    CHECKF(checkpoint_open(&ck, p, err, sizeof err) == 0, "%s", err);
    CHECK(!ck.shared_classifier && ck.cfg.vocab_size == 32 && ck.wcls != ck.token_embedding);
    checkpoint_close(&ck);
}

static void test_rejects_missing_empty_and_short(void) {
    expect_error("tests/data/no-such-model.bin", "cannot open");
    expect_error(test_temp_file("", 0), "empty");
    expect_error(test_temp_file("\x10\0\0\0\x20\0\0\0", 8), "truncated");
    expect_error("tests/data", "not a regular file");
}

static void test_rejects_wrong_size(void) {
    expect_error(fake_checkpoint(good, implied_floats(good) - 1, 0), "truncated");
    expect_error(fake_checkpoint(good, implied_floats(good), 4), "trailing bytes");
    /* A tokenizer file is not a model: its first ints make an absurd header. */
    expect_error("tests/data/tok512.bin", "not a valid llama2.c checkpoint");
    /* A checkpoint whose header says "own classifier" but has none is short by vocab*dim. */
    int own[7];
    memcpy(own, good, sizeof own);
    own[5] = -32;
    expect_error(fake_checkpoint(own, implied_floats(good), 0), "truncated");
}

static void test_rejects_bad_headers(void) {
    static const struct {
        int h[7];
        const char *why;
    } cases[] = {
        {{0, 32, 2, 4, 2, 32, 8}, "dim = 0"},
        {{16, -32, 2, 4, 2, 32, 8}, "hidden_dim = -32"},
        {{16, 32, 0, 4, 2, 32, 8}, "n_layers = 0"},
        {{16, 32, 2, 0, 2, 32, 8}, "n_heads = 0"},
        {{16, 32, 2, 4, -1, 32, 8}, "n_kv_heads = -1"},
        {{16, 32, 2, 4, 2, 0, 8}, "vocab_size = 0"},
        {{16, 32, 2, 4, 2, 32, 0}, "seq_len = 0"},
        {{1000000000, 32, 2, 4, 2, 32, 8}, "dim = 1000000000"},
        {{16, 32, 2, 4, 2, 32, 2000000000}, "seq_len = 2000000000"},
        {{16, 32, 2, 3, 3, 32, 8}, "not divisible by n_heads"},
        {{16, 32, 2, 4, 3, 32, 8}, "not divisible by n_kv_heads"},
        {{12, 32, 2, 4, 2, 32, 8}, "odd"},
        {{16, 32, 2, 4, 2, -2147483647 - 1, 8}, "vocab_size"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        expect_error(fake_checkpoint(cases[i].h, 64, 0), cases[i].why);
    /* Every dimension at its limit: sizes reach ~2^60 bytes, must not overflow or crash. */
    const int huge[7] = {1 << 16, 1 << 18, 1024, 1024, 1024, 1 << 21, 1 << 20};
    expect_error(fake_checkpoint(huge, 64, 0), "truncated");
}

/* A NaN or infinity in a weight is corruption, named by tensor; one in the legacy RoPE
 * tables, which nothing reads, is not. Offsets are in floats after the header, from the
 * layout of the format: embedding 32x16, rms_att 2x16, then wq 2x16x16. */
static void test_rejects_non_finite_weights(void) {
    const size_t n = implied_floats(good);
    float *w = calloc(n, sizeof *w);
    char *buf = malloc(28 + 4 * n);
    if (!CHECK(w && buf)) goto done;
    const size_t wq = 32 * 16 + 2 * 16, rope = n - 8 * 4;
    const struct {
        size_t at;
        float value;
        const char *why;
    } cases[] = {{wq + 300, NAN, "tensor wq holds NaN at element 300"},
                 {5, -INFINITY, "tensor token_embedding holds infinity at element 5"},
                 {rope - 1, INFINITY, "tensor rms_final holds infinity at element 15"}};
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        memset(w, 0, n * sizeof *w);
        w[cases[k].at] = cases[k].value;
        memcpy(buf, good, 28);
        memcpy(buf + 28, w, 4 * n);
        expect_error(test_temp_file(buf, 28 + 4 * n), cases[k].why);
    }
    memset(w, 0, n * sizeof *w);
    w[rope] = NAN;
    memcpy(buf + 28, w, 4 * n);
    Checkpoint ck;
    char err[512] = "";
    CHECKF(checkpoint_open(&ck, test_temp_file(buf, 28 + 4 * n), err, sizeof err) == 0, "%s", err);
    if (!err[0]) checkpoint_close(&ck);
done:
    free(w);
    free(buf);
}

#define ARGS(...) ((const char *const[]){"run", __VA_ARGS__, NULL})

/* A finite weight so large that the forward pass overflows float32 (a final RMSNorm gain
 * of 3e38 made every logit infinite, and the quantizers cast NaN to an integer) is refused
 * at open, through the real program, naming the tensor. */
static void test_rejects_huge_weights(void) {
    size_t size;
    char *model = test_read_file("models/stories260K.bin", &size);
    if (!model) return;
    /* stories260K: dim 64, hidden 172, 5 layers, kv_dim 32, vocab 512 (shared). Offsets
     * in floats after the 28-byte header, in the order of the format. */
    const size_t dim = 64, hid = 172, L = 5, kv = 32, voc = 512;
    const size_t rms_att = voc * dim, wq = rms_att + L * dim, w2 = wq + 2 * L * dim * dim +
                           2 * L * kv * dim + L * dim + L * hid * dim,
                 rms_final = w2 + 2 * L * hid * dim;
    const struct {
        size_t at;
        float value;
        const char *why;
    } cases[] = {{rms_final, 3e38f, "rms_final holds magnitudes up to 3e+38, so a logit could reach"},
                 {rms_final + 63, -1e36f, "rms_final holds magnitudes up to 1e+36"},
                 {rms_att + 64 * 2 + 1, 1e20f, "layer 2 rms_att holds magnitudes up to 1e+20"},
                 {w2 + hid * dim * 4 + 9, 1e32f, "layer 4 w2 holds magnitudes up to 1e+32"},
                 {wq + 3, 1e30f, "layer 0 wq holds magnitudes up to 1e+30"},
                 {10, 1e38f, "token_embedding holds magnitudes up to 1e+38"}};
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        char *bad = malloc(size);
        memcpy(bad, model, size);
        memcpy(bad + 28 + 4 * cases[k].at, &cases[k].value, 4);
        const char *path = test_temp_file(bad, size);
        free(bad);
        if (!path) continue;
        RunResult r = test_run_program(ARGS(path, "-n", "4", "-z", "models/tok512.model"), NULL, NULL);
        CHECKF(r.status == 1 && strstr(r.err, "error: ") && strstr(r.err, "corrupt: weights too large") &&
                   strstr(r.err, cases[k].why) && !r.out[0],
               "case %zu: exit %d, stderr: %s", k, r.status, r.err);
        run_result_free(&r);
        remove(path);
    }
    free(model);
}

/* Writes a checkpoint whose every weight is `w`, every norm gain `g`, every embedding
 * value `e`: all signs aligned, so that every product of the forward pass is as large as
 * its magnitudes allow. */
static const char *aligned_checkpoint(const int h[7], float w, float g, float e) {
    const size_t dim = (size_t)h[0], hid = (size_t)h[1], L = (size_t)h[2],
                 kv = dim / (size_t)h[3] * (size_t)h[4], voc = (size_t)h[5];
    const size_t n = implied_floats(h);
    float *x = malloc(n * sizeof *x);
    size_t at = 0;
    const struct {
        size_t n;
        float v;
    } parts[] = {{voc * dim, e}, {L * dim, g}, {2 * L * dim * dim + 2 * L * kv * dim, w}, {L * dim, g},
                 {3 * L * hid * dim, w}, {dim, g}, {(size_t)h[6] * (dim / (size_t)h[3]), 0}};
    for (size_t p = 0; p < sizeof parts / sizeof parts[0]; p++)
        for (size_t i = 0; i < parts[p].n; i++) x[at++] = parts[p].v;
    char *buf = malloc(28 + n * sizeof *x);
    memcpy(buf, h, 28);
    memcpy(buf + 28, x, n * sizeof *x);
    const char *path = at == n ? test_temp_file(buf, 28 + n * sizeof *x) : NULL;
    CHECK(at == n);
    free(x);
    free(buf);
    return path;
}

/* The magnitude bound is sound: the largest weights it accepts, aligned so that nothing
 * cancels, still give finite logits in every mode; a little more is refused. */
static void test_accepted_magnitudes_run_finite(void) {
    const int h[7] = {64, 128, 3, 4, 2, 32, 8};
    /* The largest scale k accepted for weights k, gains k, embedding k (bisection on the
     * exponent: acceptance is monotone in k). */
    double lo = 1, hi = 1e38;
    while (hi / lo > 1.01) {
        const double k = sqrt(lo * hi);
        const char *path = aligned_checkpoint(h, (float)k, (float)k, (float)k);
        Checkpoint ck;
        char err[512];
        const int ok = path && checkpoint_open(&ck, path, err, sizeof err) == 0;
        if (ok) checkpoint_close(&ck);
        if (path) remove(path);
        if (ok) lo = k;
        else hi = k;
    }
    CHECKF(lo > 10 && lo < 1e10, "accepted up to %g", lo);
    static const char *const modes[] = {"fp32", "w8a16", "qrazor", "rtn4", "qrazor/g64/trunc", "sdr-w", "sdr-p"};
    const char *path = aligned_checkpoint(h, (float)lo, (float)lo, (float)lo);
    for (size_t m = 0; path && m < sizeof modes / sizeof modes[0]; m++) {
        char err[512];
        QuantConfig q;
        ModelWeights w;
        quant_config_parse(modes[m], &q, err, sizeof err);
        if (!CHECKF(model_open(&w, path, &q, NULL, err, sizeof err) == 0, "%s", err)) continue;
        Transformer *t = transformer_new(&w, NULL, 8, err, sizeof err);
        int finite = t != NULL;
        for (int pos = 0; finite && pos < 8; pos++) {
            const float *logits = transformer_forward(t, (pos * 7 + 3) % 32, pos);
            for (int i = 0; logits && i < 32; i++) finite &= isfinite(logits[i]) != 0;
            finite &= logits != NULL; /* NULL: the engine saw a non-finite activation */
        }
        CHECKF(finite, "%s: weights of %g (accepted) gave a non-finite value: %s", modes[m], lo,
               t ? transformer_error(t) : err);
        transformer_free(t);
        model_close(&w);
    }
    if (path) remove(path);
    const char *over = aligned_checkpoint(h, (float)hi, (float)hi, (float)hi);
    expect_error(over, "weights too large for float32");
    if (over) remove(over);
}

/* A FIFO given as the model or the tokenizer is refused at once ("not a regular file"),
 * not after blocking in open() until a writer comes. A watchdog opens the FIFO for writing
 * from 10 s on, so that a loader that blocks is released and fails the test on time. */
static void test_fifo_refused_at_once(void) {
    char dir[256], fifo[300];
    snprintf(dir, sizeof dir, "%s/qrazor-test-XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    if (!CHECK(mkdtemp(dir) != NULL)) return;
    snprintf(fifo, sizeof fifo, "%s/fifo", dir);
    if (!CHECK(mkfifo(fifo, 0600) == 0)) return;
    fflush(stdout);
    const pid_t watchdog = fork();
    if (watchdog == 0) {
        sleep(10);
        for (;;) {
            const int fd = open(fifo, O_WRONLY | O_NONBLOCK);
            if (fd >= 0) close(fd);
            nanosleep(&(struct timespec){0, 10000000}, NULL);
        }
    }
    const char *const *runs[] = {ARGS(fifo, "-n", "2"), ARGS("models/stories260K.bin", "-z", fifo, "-n", "2"),
                                 ARGS("quantize", fifo, "never.qrz"), ARGS(fifo, "--explain")};
    for (size_t k = 0; k < sizeof runs / sizeof runs[0]; k++) {
        struct timespec t0, t1;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        RunResult r = test_run_program(runs[k], NULL, NULL);
        clock_gettime(CLOCK_MONOTONIC, &t1);
        const double seconds = (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec);
        CHECKF(r.status == 1 && strstr(r.err, "not a regular file") && seconds < 5,
               "run %zu: exit %d after %.1f s: %s", k, r.status, seconds, r.err);
        run_result_free(&r);
    }
    kill(watchdog, SIGKILL);
    waitpid(watchdog, NULL, 0);
    remove(fifo);
    rmdir(dir);
}

void suite_checkpoint(void) {
    test_run("checkpoint_loads_stories260k", test_loads_stories260k);
    test_run("checkpoint_accepts_consistent_fake", test_accepts_consistent_fake);
    test_run("checkpoint_rejects_missing_empty_short", test_rejects_missing_empty_and_short);
    test_run("checkpoint_rejects_wrong_size", test_rejects_wrong_size);
    test_run("checkpoint_rejects_bad_headers", test_rejects_bad_headers);
    test_run("checkpoint_rejects_non_finite_weights", test_rejects_non_finite_weights);
    test_run("checkpoint_rejects_huge_weights", test_rejects_huge_weights);
    test_run("checkpoint_accepted_magnitudes_run_finite", test_accepted_magnitudes_run_finite);
    test_run("checkpoint_fifo_refused_at_once", test_fifo_refused_at_once);
}
