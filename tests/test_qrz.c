/*
 * tests/test_qrz.c - .qrz files: written, mapped back, and bit-identical to quantizing at
 * load; corrupt files rejected with a reason.
 */
#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "engine/transformer.h"
#include "tests/test.h"
#include "weights/qrz.h"

#define ARGS(...) ((const char *const[]){"run", __VA_ARGS__, NULL})

/* Logits of 30 positions of a fixed token sequence. */
static float *logits_of(const ModelWeights *w) {
    char err[256];
    Transformer *t = transformer_new(w, NULL, w->cfg.seq_len, err, sizeof err);
    if (!CHECKF(t != NULL, "%s", err)) return NULL;
    const int V = w->cfg.vocab_size, n = 30;
    float *all = malloc((size_t)n * V * sizeof *all);
    for (int pos = 0; pos < n; pos++)
        memcpy(all + (size_t)pos * V, transformer_forward(t, (pos * 29 + 1) % V, pos), (size_t)V * sizeof *all);
    transformer_free(t);
    return all;
}

/* Writes model (quantized as `mode`) to a temporary .qrz; returns its path. */
static const char *write_qrz(const char *model, const char *mode) {
    char err[256];
    QuantConfig q;
    if (!CHECKF(quant_config_parse(mode, &q, err, sizeof err) == 0, "%s", err)) return NULL;
    ModelWeights w;
    if (!CHECKF(model_open(&w, model, &q, NULL, err, sizeof err) == 0, "%s", err)) return NULL;
    const char *path = test_temp_file("", 0);
    if (path) CHECKF(qrz_write(&w, path, err, sizeof err) == 0, "%s", err);
    model_close(&w);
    return path;
}

static void test_qrz_same_logits_as_quantizing_at_load(void) {
    static const char *const modes[] = {"qrazor",     "qrazor/g64/trunc", "w8a16", "rtn4",
                                        "sdr-w",      "sdr-kv",           "fp32",  "qrazor/cls=fp32",
                                        "fp32/cls=qrazor", "qrazor/emb=int8", "fp32/emb=int8",
                                        /* rotated when written (docs/SPEC.md section 7): the file says so */
                                        "quarot", "qrazor/rot", "fp32/rot", "w8a16/rot/emb=int8"};
    for (size_t m = 0; m < sizeof modes / sizeof modes[0]; m++) {
        const char *path = write_qrz("tests/data/llama2xs.bin", modes[m]);
        if (!path) continue;
        char err[256];
        QuantConfig q;
        quant_config_parse(modes[m], &q, err, sizeof err);
        ModelWeights at_load, mapped;
        if (!CHECKF(model_open(&at_load, "tests/data/llama2xs.bin", &q, NULL, err, sizeof err) == 0, "%s", err))
            continue;
        CHECK(model_is_qrz(path));
        if (CHECKF(model_open(&mapped, path, NULL, NULL, err, sizeof err) == 0, "%s: %s", modes[m], err)) {
            char a[64], b[64];
            quant_config_name(&at_load.quant, a, sizeof a);
            quant_config_name(&mapped.quant, b, sizeof b);
            CHECKF(!strcmp(a, b), "%s: file says %s", a, b);
            CHECK(mapped.qrz_map != NULL && mapped.cfg.dim == 64 && mapped.cfg.seq_len == 256);
            float *x = logits_of(&at_load), *y = logits_of(&mapped);
            CHECKF(x && y && !memcmp(x, y, (size_t)30 * 512 * sizeof(float)),
                   "%s: logits from the .qrz file differ from quantize-at-load", modes[m]);
            free(x), free(y);
            model_close(&mapped);
        }
        model_close(&at_load);
        remove(path);
    }
}

/* A fresh copy of a valid file, to break. */
static char *qrz_bytes(size_t *size) {
    const char *path = write_qrz("tests/data/llama2xs.bin", "qrazor");
    char *bytes = path ? test_read_file(path, size) : NULL;
    if (path) remove(path);
    return bytes;
}

static void expect_reject(const void *bytes, size_t size, const char *fragment) {
    const char *path = test_temp_file(bytes, size);
    ModelWeights w;
    char err[512] = "";
    QuantConfig q;
    quant_config_parse("qrazor", &q, err, sizeof err);
    const int rc = model_open(&w, path, &q, NULL, err, sizeof err);
    CHECKF(rc != 0, "a broken file (%s) was accepted", fragment);
    CHECKF(strstr(err, fragment) != NULL, "error '%s' lacks '%s'", err, fragment);
    if (rc == 0) model_close(&w);
    remove(path);
}

static void test_qrz_rejects_corrupt_files(void) {
    size_t size;
    char *good = qrz_bytes(&size);
    if (!good) return;
    char *bad = malloc(size);
    expect_reject(good, 100, "truncated: 100 bytes"); /* shorter than the header */
    expect_reject(good, size - 64, "truncated or appended to");
    memcpy(bad, good, size);
    bad[8] = 4; /* version */
    expect_reject(bad, size, "format version 4");
    memcpy(bad, good, size);
    bad[16] = 65; /* dim 64 -> 65: the header no longer matches its table */
    expect_reject(bad, size, "not a valid .qrz file");
    memcpy(bad, good, size);
    bad[44] = 9; /* weights kind */
    expect_reject(bad, size, "unknown quantization kind 9");
    memcpy(bad, good, size);
    bad[52] = 24; /* group size */
    expect_reject(bad, size, "group size 24");
    memcpy(bad, good, size);
    bad[128 + 32 * 5 + 16] += 64; /* the first linear's offset: overlaps the next tensor */
    expect_reject(bad, size, "misaligned, overlaps or runs past the end");
    memcpy(bad, good, size);
    bad[128 + 32 * 5 + 24] += 1; /* its size */
    expect_reject(bad, size, "its shape needs");
    memcpy(bad, good, size);
    bad[128 + 32 * 5 + 4] = 0; /* its storage */
    expect_reject(bad, size, "expected role");
    /* Layer 0's wq (64 x 64, qrazor): 4 blocks x 64 columns x 8 bytes of codes, then the
     * shifts; a shift of 5 (high nibble) is more than an INT8 weight can razor. */
    memcpy(bad, good, size);
    uint64_t wq_offset;
    memcpy(&wq_offset, bad + 128 + 32 * 5 + 16, 8);
    bad[wq_offset + 4 * 64 * 8] = 0x53;
    expect_reject(bad, size, "has a shift of 5");
    free(bad);
    free(good);
}

/* ------------------------------------------------------------------ stored values */

/* The layout of a tensor table entry and of a packed 4-bit SDR matrix, from docs/FORMAT.md
 * (written out here rather than taken from weights/qrz.c, so the test checks the document). */
static uint64_t entry_u64(const char *file, int tensor, int field) {
    uint64_t v;
    memcpy(&v, file + 128 + 32 * tensor + field, 8);
    return v;
}

typedef struct {
    uint64_t codes, shifts, scales; /* offsets in the file */
} R4Layout;

static uint64_t up64(uint64_t x) { return (x + 63) / 64 * 64; }

static R4Layout sdr_layout(const char *file, int tensor, int group) {
    uint32_t rows, cols;
    memcpy(&rows, file + 128 + 32 * tensor + 8, 4);
    memcpy(&cols, file + 128 + 32 * tensor + 12, 4);
    const uint64_t blocks = (rows + 15) / 16, cols_pad = (cols + 7) / 8 * 8,
                   groups = (cols + group - 1) / group;
    R4Layout l;
    l.codes = entry_u64(file, tensor, 16);
    l.shifts = l.codes + up64(blocks * cols_pad * 8);
    l.scales = l.shifts + up64(blocks * groups * 8);
    return l;
}

/* Runs the program on a .qrz file and expects one error line holding `fragment`. */
static void expect_run_fails(const char *bytes, size_t size, const char *fragment) {
    const char *path = test_temp_file(bytes, size);
    if (!path) return;
    RunResult r = test_run_program(ARGS(path, "-n", "4", "-z", "models/tok512.model"), NULL, NULL);
    CHECKF(r.status == 1 && r.err && strstr(r.err, "error: ") && strstr(r.err, fragment) &&
               r.out && !r.out[0],
           "expected an error with '%s'; exit %d, stderr: %s", fragment, r.status, r.err);
    run_result_free(&r);
    remove(path);
}

static void put_float(char *at, float v) { memcpy(at, &v, 4); }

/* Values a loader must read before it runs them (issue: a 2 KB .qrz with a NaN scale reached
 * the quantizers within a second of fuzzing): every float finite, scales not negative,
 * magnitudes that cannot overflow the forward pass, 4-bit codes in -7..7, reserved bytes 0.
 * Each broken file differs from a good one in one value; each ran before the checks. */
static void test_qrz_rejects_bad_values(void) {
    const char *good_path = write_qrz("models/stories260K.bin", "qrazor");
    size_t size;
    char *good = good_path ? test_read_file(good_path, &size) : NULL;
    if (good_path) remove(good_path);
    if (!good) return;
    char *bad = malloc(size);
    /* Tensors 0-3: embedding, rms_att, rms_ffn, rms_final; 4: the classifier (512 x 64);
     * 5: layer 0's wq (64 x 64). */
    const uint64_t emb = entry_u64(good, 0, 16), final = entry_u64(good, 3, 16);
    const R4Layout cls = sdr_layout(good, 4, 16), wq = sdr_layout(good, 5, 16);

    memcpy(bad, good, size); /* the untouched file runs */
    const char *ok_path = test_temp_file(good, size);
    RunResult r = test_run_program(ARGS(ok_path, "-n", "4", "-z", "models/tok512.model"), NULL, NULL);
    CHECKF(r.status == 0, "the good file fails: %s", r.err);
    run_result_free(&r);
    remove(ok_path);

    put_float(bad + cls.scales + 4 * 7, NAN);
    expect_run_fails(bad, size, "classifier has a scale of nan at row 7");
    memcpy(bad, good, size);
    put_float(bad + wq.scales + 4 * 3, -0.5f);
    expect_run_fails(bad, size, "layer 0 wq has a scale of -0.5 at row 3");
    memcpy(bad, good, size);
    put_float(bad + wq.scales, INFINITY);
    expect_run_fails(bad, size, "layer 0 wq has a scale of inf at row 0");
    memcpy(bad, good, size);
    put_float(bad + emb + 4 * 100, NAN);
    expect_run_fails(bad, size, "token_embedding holds NaN at element 100");
    memcpy(bad, good, size);
    put_float(bad + emb + 4 * 100, 3e38f); /* finite, and far beyond any real weight */
    expect_run_fails(bad, size, "token_embedding holds magnitudes up to 3e+38");
    memcpy(bad, good, size);
    put_float(bad + final + 4 * 5, 3e38f);
    expect_run_fails(bad, size, "rms_final holds magnitudes up to 3e+38");
    memcpy(bad, good, size);
    put_float(bad + wq.scales + 4 * 3, 1e30f); /* a finite scale, huge weights */
    expect_run_fails(bad, size, "weights too large for float32: layer 0 wq");
    memcpy(bad, good, size);
    bad[wq.codes + 70] = (char)0x80; /* low nibble 0: the code -8 */
    expect_run_fails(bad, size, "code of -8 (a nibble 0 in code byte 70)");
    memcpy(bad, good, size);
    bad[wq.codes + 71] = 0x08; /* high nibble 0 */
    expect_run_fails(bad, size, "code of -8 (a nibble 0 in code byte 71)");
    memcpy(bad, good, size);
    bad[91] = 1;
    expect_run_fails(bad, size, "reserved header byte 91 is 1, not 0");
    memcpy(bad, good, size);
    bad[115] = 1; /* RoPE scaling's factor: no longer all zero, nor valid */
    expect_run_fails(bad, size, "RoPE scaling factor 2.35099e-38");
    memcpy(bad, good, size);
    bad[89] = 8; /* more end-of-text ids than the format holds */
    expect_run_fails(bad, size, "8 more end-of-text ids (at most 7)");
    memcpy(bad, good, size);
    bad[51] = 7; /* the rotation flag (docs/SPEC.md section 7) is 0 or 1 */
    expect_run_fails(bad, size, "corrupt flags (rounding 1, shared classifier 0, rotated 7)");
    free(bad);
    free(good);

    /* An fp32 file with a shared classifier has 39 tensors: its table ends 32 bytes before
     * the first tensor, and that padding must be 0 too. */
    const char *fp32_path = write_qrz("models/stories260K.bin", "fp32");
    char *fp32 = fp32_path ? test_read_file(fp32_path, &size) : NULL;
    if (fp32_path) remove(fp32_path);
    if (!fp32) return;
    fp32[128 + 32 * 39 + 5] = 1;
    expect_run_fails(fp32, size, "padding after the tensor table, is 1");
    free(fp32);
}

/* ------------------------------------------------------------------ format 2's fields */

/* A version-1 file: what a version-3 file of a checkpoint becomes when bytes 72-127, the
 * fields versions 2 and 3 added, are zeroed (docs/FORMAT.md). It loads with Llama 2's
 * values; as version 2 (bytes 89 and 112-127 zero) it loads too. */
static void test_qrz_version1_still_loads(void) {
    size_t size;
    char *file = qrz_bytes(&size);
    if (!file) return;
    CHECK(file[8] == 3);
    file[8] = 2;
    const char *v2 = test_temp_file(file, size);
    ModelWeights w2;
    char err2[512] = "";
    if (CHECKF(v2 && model_open(&w2, v2, NULL, NULL, err2, sizeof err2) == 0, "%s", err2)) {
        CHECK(w2.cfg.rope_factor == 0 && w2.n_stop == 0);
        model_close(&w2);
    }
    file[112] = 1; /* in version 2, bytes 112-127 are reserved */
    expect_reject(file, size, "reserved header byte 112 is 1, not 0");
    file[112] = 0;
    file[8] = 1;
    memset(file + 72, 0, 128 - 72);
    const char *path = test_temp_file(file, size);
    ModelWeights w;
    char err[512] = "";
    if (CHECKF(path && model_open(&w, path, NULL, NULL, err, sizeof err) == 0, "%s", err)) {
        CHECK(w.cfg.rope_theta == 10000.0f && w.cfg.norm_eps == 1e-5f);
        CHECK(w.bos_id == 1 && w.eos_id == 2 && w.chat_template[0] == '\0' && w.tokenizer == NULL);
        model_close(&w);
    }
    file[100] = 'x'; /* in version 1, the template's bytes are reserved */
    expect_reject(file, size, "reserved header byte 100 is 120, not 0");
    file[100] = 0;
    file[51] = 1; /* and so is the rotation flag */
    expect_reject(file, size, "reserved header byte 51 is 1, not 0");
    free(file);
}

/* RoPE base, epsilon, BOS, EOS, the chat template and a stored tokenizer are written and
 * read back as they were; the INT8 embedding too (values checked in tests/test_import.c). */
static void test_qrz_new_fields_round_trip(void) {
    char err[512] = "";
    QuantConfig q;
    quant_config_parse("qrazor", &q, err, sizeof err);
    ModelWeights w;
    if (!CHECKF(model_open(&w, "tests/data/llama2xs.bin", &q, NULL, err, sizeof err) == 0, "%s", err)) return;
    CHECK(w.bos_id == 1 && w.eos_id == 2);
    static const char tok[] = "not a real tokenizer, 41 bytes of it...";
    w.cfg.rope_theta = 500000.0f, w.cfg.norm_eps = 1e-6f, w.bos_id = 7, w.eos_id = 511;
    snprintf(w.chat_template, sizeof w.chat_template, "chatml");
    w.tokenizer = tok, w.tokenizer_size = sizeof tok;
    w.cfg.rope_factor = 32, w.cfg.rope_low_freq_factor = 1, w.cfg.rope_high_freq_factor = 4, w.cfg.rope_original_ctx = 8192;
    w.n_stop = 2, w.stop_ids[0] = 100, w.stop_ids[1] = 3;
    const char *path = test_temp_file("", 0);
    ModelWeights r;
    if (CHECKF(qrz_write(&w, path, err, sizeof err) == 0, "%s", err) &&
        CHECKF(model_open(&r, path, NULL, NULL, err, sizeof err) == 0, "%s", err)) {
        CHECK(r.cfg.rope_theta == 500000.0f && r.cfg.norm_eps == 1e-6f && r.bos_id == 7 && r.eos_id == 511);
        CHECK(!strcmp(r.chat_template, "chatml"));
        CHECK(r.cfg.rope_factor == 32 && r.cfg.rope_low_freq_factor == 1 && r.cfg.rope_high_freq_factor == 4 &&
              r.cfg.rope_original_ctx == 8192);
        CHECK(r.n_stop == 2 && r.stop_ids[0] == 100 && r.stop_ids[1] == 3);
        CHECK(r.tokenizer_size == sizeof tok && r.tokenizer && !memcmp(r.tokenizer, tok, sizeof tok));
        model_close(&r);
    }
    /* What the loader refuses is not written, and the good file stays: an end-of-text id
     * outside the vocabulary, a template name it does not know (the loader's side of both
     * is check_mapping, which qrz_write runs on what it wrote). */
    w.stop_ids[1] = 512;
    CHECKF(qrz_write(&w, path, err, sizeof err) != 0 && strstr(err, "not written: the model would not load") &&
               strstr(err, "end-of-text id 512 is not a token of the vocabulary"),
           "an end-of-text id outside the vocabulary was written: '%s'", err);
    w.n_stop = 0;
    snprintf(w.chat_template, sizeof w.chat_template, "Chat ML");
    CHECKF(qrz_write(&w, path, err, sizeof err) != 0 && strstr(err, "not written: the model would not load") &&
               strstr(err, "chat template name"),
           "a bad template name was written: '%s'", err);
    if (CHECKF(model_open(&r, path, NULL, NULL, err, sizeof err) == 0, "%s", err)) {
        CHECK(!strcmp(r.chat_template, "chatml"));
        model_close(&r);
    }
    model_close(&w);
    remove(path);
}

/* Each new field, given a value out of its range, is refused with one line naming it. */
static void test_qrz_rejects_bad_new_fields(void) {
    size_t size;
    char *good = qrz_bytes(&size);
    if (!good) return;
    char *bad = malloc(size);
    const struct {
        int at;
        float f;     /* a float field: its value; else NAN */
        int32_t i;   /* an integer field */
        const char *fragment;
    } cases[] = {{72, NAN, 0, "rope_theta is nan, outside (1, 1e+12]"},
                 {72, 0.5f, 0, "rope_theta is 0.5"},
                 {72, INFINITY, 0, "rope_theta is inf"},
                 {76, 0.0f, 0, "norm_eps is 0, outside (0, 0.1]"},
                 {76, -1e-5f, 0, "norm_eps is -9.99999975e-06"},
                 {76, 0.100000009f, 0, "norm_eps is 0.100000009, outside (0, 0.1]"}, /* the float after 0.1f */
                 {80, -2.0f, 512, "BOS id 512 is not a token of the vocabulary (0..511)"},
                 {84, -2.0f, -1, "EOS id -1 is not a token"},
                 {88, -2.0f, 2, "embedding storage 2"},
                 {96, -2.0f, 'A', "chat template name"}};
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        memcpy(bad, good, size);
        if (cases[k].f != -2.0f) memcpy(bad + cases[k].at, &cases[k].f, 4);
        else if (cases[k].at >= 88) bad[cases[k].at] = (char)cases[k].i;
        else memcpy(bad + cases[k].at, &cases[k].i, 4);
        expect_reject(bad, size, cases[k].fragment);
    }
    free(bad);
    free(good);
}

/* ------------------------------------------------------------------ the quantize command */

/* A fresh directory for files a test makes (and removes). */
static const char *temp_dir(char *buf, size_t len) {
    snprintf(buf, len, "%s/qrazor-test-XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    return CHECKF(mkdtemp(buf) != NULL, "mkdtemp: %s", strerror(errno)) ? buf : NULL;
}

/* Names in a directory that start with prefix. */
static int count_entries(const char *dir, const char *prefix) {
    DIR *d = opendir(dir);
    int n = 0;
    for (struct dirent *e; d && (e = readdir(d)) != NULL;) n += !strncmp(e->d_name, prefix, strlen(prefix));
    if (d) closedir(d);
    return n;
}

static RunResult quantize_to(const char *out) {
    return test_run_program(ARGS("quantize", "models/stories260K.bin", out), NULL, NULL);
}

/* quantize writes a new file or replaces a regular one, and nothing else: not a device or
 * a FIFO (run as root with OUT = /dev/full, it used to replace the device node by a file;
 * this test does not try /dev/null: a regression would destroy it when run as root), not
 * a directory, not through a symbolic link; a symlink planted where the temporary file
 * used to go (OUT.tmp) does not redirect the write; a failed write leaves no file. */
static void test_quantize_output_safety(void) {
    char dir[256], out[300], fifo[300], sub[300], link[300], victim[300], planted[300];
    if (!temp_dir(dir, sizeof dir)) return;
    snprintf(out, sizeof out, "%s/out.qrz", dir);
    snprintf(fifo, sizeof fifo, "%s/fifo.qrz", dir);
    snprintf(sub, sizeof sub, "%s/sub.qrz", dir);
    snprintf(link, sizeof link, "%s/link.qrz", dir);
    snprintf(victim, sizeof victim, "%s/victim", dir);
    snprintf(planted, sizeof planted, "%s/out.qrz.tmp", dir);
    const char secret[] = "not to be overwritten\n";
    FILE *f = fopen(victim, "w");
    if (!CHECK(f != NULL)) return;
    fputs(secret, f);
    fclose(f);
    struct stat st;

    CHECK(mkfifo(fifo, 0600) == 0);
    RunResult r = quantize_to(fifo);
    CHECKF(r.status == 1 && strstr(r.err, "is a FIFO, not a regular file"), "exit %d: %s", r.status, r.err);
    CHECK(lstat(fifo, &st) == 0 && S_ISFIFO(st.st_mode));
    run_result_free(&r);

    CHECK(mkdir(sub, 0700) == 0);
    r = quantize_to(sub);
    CHECKF(r.status == 1 && strstr(r.err, "is a directory, not a regular file"), "exit %d: %s", r.status, r.err);
    CHECK(lstat(sub, &st) == 0 && S_ISDIR(st.st_mode));
    run_result_free(&r);

    CHECK(symlink("victim", link) == 0);
    r = quantize_to(link);
    CHECKF(r.status == 1 && strstr(r.err, "is a symbolic link"), "exit %d: %s", r.status, r.err);
    run_result_free(&r);

    CHECK(symlink("victim", planted) == 0);
    r = quantize_to(out);
    CHECKF(r.status == 0 && strstr(r.err, "wrote") && !strstr(r.err, "replacing"), "exit %d: %s", r.status, r.err);
    run_result_free(&r);
    char *v = test_read_file(victim, NULL);
    CHECKF(v && !strcmp(v, secret), "the symlink's target was overwritten: %.40s", v ? v : "");
    free(v);
    CHECK(lstat(planted, &st) == 0 && S_ISLNK(st.st_mode));
    CHECK(model_is_qrz(out));

    r = quantize_to(out); /* replacing a regular file: said, and done */
    CHECKF(r.status == 0 && strstr(r.err, "replacing the file that was there"), "exit %d: %s", r.status, r.err);
    run_result_free(&r);
    CHECK(model_is_qrz(out) && count_entries(dir, "out.qrz") == 2); /* out.qrz, the planted link */

    /* A write that fails part way (the file size limit, inherited by the child) leaves no
     * file: neither OUT nor a temporary. */
    remove(out);
    struct rlimit old;
    getrlimit(RLIMIT_FSIZE, &old);
    struct rlimit small = {100000, old.rlim_max};
    void (*old_handler)(int) = signal(SIGXFSZ, SIG_IGN); /* write fails with EFBIG instead */
    setrlimit(RLIMIT_FSIZE, &small);
    r = quantize_to(out);
    setrlimit(RLIMIT_FSIZE, &old);
    signal(SIGXFSZ, old_handler);
    CHECKF(r.status == 1 && strstr(r.err, "cannot write: File too large"), "exit %d: %s", r.status, r.err);
    run_result_free(&r);
    CHECK(count_entries(dir, "out.qrz") == 1); /* only the planted link */

    remove(planted), remove(link), remove(victim), remove(fifo), rmdir(sub);
    CHECKF(rmdir(dir) == 0, "%s is not empty after the test", dir);
}

/* The command line: quantize, then run the file; the story is the one quantize-at-load
 * tells; quantization flags on a .qrz are refused. */
static void test_quantize_command(void) {
    const char *out = test_temp_file("", 0);
    RunResult r = test_run_program(ARGS("quantize", "models/stories260K.bin", out, "-q", "qrazor"), NULL, NULL);
    CHECKF(r.status == 0 && r.err && strstr(r.err, "wrote"), "exit %d: %s", r.status, r.err);
    run_result_free(&r);
    RunResult a = test_run_program(ARGS("models/stories260K.bin", "-t", "0", "-n", "60"), NULL, NULL);
    RunResult b = test_run_program(ARGS(out, "-t", "0", "-n", "60", "-z", "models/tok512.model"), NULL, NULL);
    CHECKF(a.status == 0 && b.status == 0 && a.out && b.out && !strcmp(a.out, b.out),
           "from .bin:\n%s\nfrom .qrz:\n%s%s", a.out, b.out, b.err);
    run_result_free(&a), run_result_free(&b);
    r = test_run_program(ARGS(out, "-q", "fp32", "-z", "models/tok512.model"), NULL, NULL);
    CHECKF(r.status == 1 && r.err && strstr(r.err, "already quantized"), "%s", r.err);
    run_result_free(&r);
    r = test_run_program(ARGS("quantize", out, "/tmp/never-written.qrz"), NULL, NULL);
    CHECKF(r.status == 1 && r.err && strstr(r.err, "already a .qrz file"), "%s", r.err);
    run_result_free(&r);
    r = test_run_program(ARGS("quantize", "models/stories260K.bin", "/no/such/dir/x.qrz"), NULL, NULL);
    CHECKF(r.status == 1 && r.err && strstr(r.err, "cannot write"), "%s", r.err);
    run_result_free(&r);
    r = test_run_program(ARGS("quantize", "models/stories260K.bin", out, "-n", "5"), NULL, NULL);
    CHECKF(r.status == 1 && r.err && strstr(r.err, "-n does not apply to quantize"), "%s", r.err);
    run_result_free(&r);
    remove(out);

    /* Quantizing a checkpoint onto itself is refused, and the checkpoint survives. */
    size_t size, after_size;
    char *model = test_read_file("models/stories260K.bin", &size);
    const char *copy = model ? test_temp_file(model, size) : NULL;
    if (CHECK(copy != NULL)) {
        r = test_run_program(ARGS("quantize", copy, copy), NULL, NULL);
        CHECKF(r.status == 1 && r.err && strstr(r.err, "is the input checkpoint"), "%s", r.err);
        run_result_free(&r);
        char *after = test_read_file(copy, &after_size);
        CHECK(after && after_size == size && memcmp(after, model, size) == 0);
        free(after);
        remove(copy);
    }
    free(model);
}

void suite_qrz(void) {
    test_run("qrz_version1_still_loads", test_qrz_version1_still_loads);
    test_run("qrz_new_fields_round_trip", test_qrz_new_fields_round_trip);
    test_run("qrz_rejects_bad_new_fields", test_qrz_rejects_bad_new_fields);
    test_run("qrz_same_logits_as_quantizing_at_load", test_qrz_same_logits_as_quantizing_at_load);
    test_run("qrz_rejects_corrupt_files", test_qrz_rejects_corrupt_files);
    test_run("qrz_quantize_command", test_quantize_command);
    test_run("qrz_rejects_bad_values", test_qrz_rejects_bad_values);
    test_run("qrz_quantize_output_safety", test_quantize_output_safety);
}
