/*
 * tests/test_checkpoint.c - the llama2.c checkpoint loader, on real and on broken files.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "tests/test.h"
#include "weights/checkpoint.h"

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

void suite_checkpoint(void) {
    test_run("checkpoint_loads_stories260k", test_loads_stories260k);
    test_run("checkpoint_accepts_consistent_fake", test_accepts_consistent_fake);
    test_run("checkpoint_rejects_missing_empty_short", test_rejects_missing_empty_and_short);
    test_run("checkpoint_rejects_wrong_size", test_rejects_wrong_size);
    test_run("checkpoint_rejects_bad_headers", test_rejects_bad_headers);
    test_run("checkpoint_rejects_non_finite_weights", test_rejects_non_finite_weights);
}
