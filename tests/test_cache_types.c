/*
 * tests/test_cache_types.c - the KV-cache types (docs/SPEC.md section 6) and the reference
 * path through the real program: -ctk / -ctv and the /k5 /v5 /k8 /v8 knobs, where they
 * apply and where they are refused, and --reference giving the fast path's text; and the
 * memory a cache of each type reports against what it allocates.
 * (Their numbers are checked against the oracle in tests/test_forward.c and against the
 * reference path, bit for bit, in tests/test_reference.c.)
 */
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/kv_cache.h"
#include "tests/test.h"

static RunResult run(const char *const *argv) { return test_run_program(argv, "", NULL); }

/* Runs argv, expects `status` and `fragment` in stdout (status 0) or stderr. */
static void expect(const char *const *argv, int status, const char *fragment) {
    RunResult r = run(argv);
    const char *where = status == 0 ? r.out : r.err;
    CHECKF(r.status == status && where && strstr(where, fragment), "%s %s %s...: status %d (expected %d), "
           "output lacks '%s': %s", argv[1], argv[2], argv[3] ? argv[3] : "", r.status, status, fragment,
           r.err ? r.err : "");
    run_result_free(&r);
}

/* The greedy text of a run (NULL if it failed). */
static char *greedy_text(const char *const *argv) {
    RunResult r = run(argv);
    CHECKF(r.status == 0, "%s ...: status %d: %s", argv[1], r.status, r.err ? r.err : "");
    char *out = r.status == 0 ? r.out : NULL;
    if (!out) free(r.out);
    free(r.err);
    return out;
}

static void test_cache_type_flags(void) {
    const char *m = "models/stories260K.bin";
    /* -v names the mode the flags make, with its KV cache. */
    expect((const char *[]){"run", m, "-n", "4", "-i", "Once", "-ctk", "r5", "-ctv", "i8", NULL}, 0, "Once");
    RunResult r = run((const char *[]){"run", m, "-n", "4", "--cache-type-k", "r5", "-v", NULL});
    CHECKF(r.status == 0 && r.err && strstr(r.err, "mode:     qrazor/k5 "), "-v: %s", r.err ? r.err : "");
    CHECKF(r.err && strstr(r.err, "qrazor/k5/v5"), "-v lacks the memory of the cache types: %s", r.err ? r.err : "");
    run_result_free(&r);
    /* Refused: another mode, an unknown type, a mode list (which takes /k5 instead). */
    expect((const char *[]){"run", m, "-q", "fp32", "-ctk", "r5", "-n", "3", NULL}, 1, "go with qrazor, not fp32");
    expect((const char *[]){"run", m, "-q", "w8a16/k5", "-n", "3", NULL}, 1, "KV-cache types go with qrazor only");
    expect((const char *[]){"run", m, "-ctk", "r3", "-n", "3", NULL}, 1, "unknown cache type 'r3'");
    expect((const char *[]){"run", m, "--eval", "tests/data/tinystories-dev.txt", "--eval-modes", "qrazor", "-ctk",
                            "r5", NULL}, 1, "drop -ctk, -ctv");
    /* Mode lists name them as knobs. */
    expect((const char *[]){"run", m, "--bench", "--bench-modes", "qrazor/k5,qrazor/k8/v8", "--pp", "4", "--tg", "4",
                            "--reps", "1", NULL}, 0, "qrazor/k8/v8");
}

/* The cache types are chosen when a model runs: a .qrz file takes them, quantize refuses
 * to store them. */
static void test_cache_types_and_qrz(void) {
    const char *qrz = test_temp_file("", 0);
    if (!qrz) return;
    expect((const char *[]){"run", "quantize", "models/stories260K.bin", qrz, "-q", "qrazor/k5", NULL}, 1,
           "chosen when a model runs");
    RunResult q = run((const char *[]){"run", "quantize", "models/stories260K.bin", qrz, NULL});
    CHECKF(q.status == 0, "quantize: %s", q.err ? q.err : "");
    run_result_free(&q);
    char *from_qrz = greedy_text((const char *[]){"run", qrz, "-z", "models/tok512.model", "-t", "0", "-n", "40",
                                                  "-ctk", "r5", NULL});
    char *from_bin = greedy_text((const char *[]){"run", "models/stories260K.bin", "-t", "0", "-n", "40", "-q",
                                                  "qrazor/k5", NULL});
    CHECKF(from_qrz && from_bin && !strcmp(from_qrz, from_bin), "r5 keys: the .qrz and the checkpoint differ:\n%s\n%s",
           from_qrz ? from_qrz : "", from_bin ? from_bin : "");
    free(from_qrz), free(from_bin);
    remove(qrz);
}

/* --reference runs engine/reference.c: the same text as the fast path, in every kind of
 * mode; and --explain shows a key group razored to 5 bits with -ctk r5. */
static void test_reference_flag_and_explain(void) {
    const char *modes[] = {"qrazor", "fp32", "w8a16", "qrazor/k5/v5"};
    for (int k = 0; k < 4; k++) {
        const char *fast[] = {"run", "models/stories260K.bin", "-t", "0", "-n", "60", "-i", "Once upon a time", "-q",
                              modes[k], NULL};
        const char *ref[] = {"run", "models/stories260K.bin", "-t", "0", "-n", "60", "-i", "Once upon a time", "-q",
                             modes[k], "--reference", NULL};
        char *a = greedy_text(fast), *b = greedy_text(ref);
        CHECKF(a && b && !strcmp(a, b), "%s: --reference gives other text:\n%s\n%s", modes[k], a ? a : "", b ? b : "");
        free(a), free(b);
    }
    expect((const char *[]){"run", "models/stories260K.bin", "--bench", "--reference", NULL}, 1,
           "--reference does not apply to --bench");
    expect((const char *[]){"run", "models/stories260K.bin", "--explain", "--site", "qk", "-ctk", "r5", NULL}, 0,
           "razoring to 5-bit codes");
    RunResult r = run((const char *[]){"run", "models/stories260K.bin", "--explain", "--site", "qk", "-ctk", "r5", NULL});
    CHECKF(r.out && strstr(r.out, "5-bit") && strstr(r.out, "the same, to the bit"), "explain -ctk r5: %s",
           r.out ? r.out : "");
    run_result_free(&r);
    expect((const char *[]){"run", "models/stories260K.bin", "--explain", "-ctk", "i8", NULL}, 1, "not razored");
}

/* Bytes of an array the cache holds, `want` of them by its shape: 0 (and a failed check)
 * when the allocation is missing or smaller. */
static size_t array_bytes(const void *p, size_t want, const char *what) {
    const int ok = CHECKF(p && malloc_usable_size((void *)p) >= want, "%s: %zu bytes expected, %zu allocated",
                          what, want, p ? malloc_usable_size((void *)p) : 0);
    return ok ? want : 0;
}

/* A cache matrix's arrays, by the shape kv_cache_init gave it: INT8 codes and row scales,
 * or 4-bit codes, group shifts (when it has them) and scales (kernels/qformat.h). */
static size_t matrix_bytes(const Linear *m) {
    if (m->storage == STORE_INT)
        return array_bytes(m->i8.q, (size_t)m->rows * m->cols, "int8 codes") +
               array_bytes(m->i8.scales, (size_t)m->rows * sizeof(float), "int8 scales");
    if (!CHECKF(m->storage == STORE_R4, "a cache matrix stored as float32")) return 0;
    const R4Matrix *r = &m->r4;
    const size_t blocks = (size_t)r->n_blocks;
    return array_bytes(r->codes, blocks * r->cols_pad * 8, "4-bit codes") +
           (r->shifts ? array_bytes(r->shifts, blocks * r->n_groups * 8, "4-bit shifts") : 0) +
           array_bytes(r->scales, blocks * QR_BLOCK_ROWS * sizeof(float), "4-bit scales");
}

/* kv_cache_bytes, the memory -v and --bench report, equals the bytes of the arrays
 * kv_cache_init allocates, for every cache type and group, head sizes from 8 to 128
 * (multiples of 16 and not), grouped-query attention, and contexts of 1 to 33 positions. */
static void test_kv_cache_bytes(void) {
    static const char *const modes[] = {"fp32", "w8a16", "qrazor", "rtn4", "sdr-w", "sdr-a", "sdr-kv", "sdr-p",
                                        "qrazor/k5", "qrazor/k8", "qrazor/v5", "qrazor/v8", "qrazor/k5/v5",
                                        "qrazor/k8/v8", "qrazor/g32", "qrazor/g64/k5", "qrazor/g128/v5"};
    static const int head_sizes[] = {8, 12, 16, 24, 48, 64, 72, 128}, contexts[] = {1, 7, 9, 33};
    for (size_t m = 0; m < sizeof modes / sizeof modes[0]; m++) {
        QuantConfig q;
        char err[256];
        if (!CHECKF(quant_config_parse(modes[m], &q, err, sizeof err) == 0, "%s", err)) continue;
        for (size_t h = 0; h < sizeof head_sizes / sizeof head_sizes[0]; h++) {
            for (size_t t = 0; t < sizeof contexts / sizeof contexts[0]; t++) {
                const int kv_heads = 1 + (int)(h % 2); /* 4 query heads share 1 or 2 kv heads */
                const ModelConfig c = {.dim = 4 * head_sizes[h], .hidden_dim = 64, .n_layers = 2, .n_heads = 4,
                                       .n_kv_heads = kv_heads, .vocab_size = 32, .seq_len = contexts[t]};
                KVCache kv;
                if (!CHECKF(kv_cache_init(&kv, &c, &q, contexts[t]) == 0, "%s: out of memory", modes[m])) {
                    kv_cache_free(&kv);
                    continue;
                }
                const size_t heads = (size_t)kv.n_heads, seq = (size_t)contexts[t];
                size_t got = 0;
                if (q.keys == QUANT_F32) {
                    got = array_bytes(kv.k_f32, heads * seq * head_sizes[h] * sizeof(float), "float keys") +
                          array_bytes(kv.v_f32, heads * seq * head_sizes[h] * sizeof(float), "float values");
                } else {
                    for (size_t i = 0; i < heads; i++) got += matrix_bytes(&kv.keys[i]) + matrix_bytes(&kv.values_t[i]);
                    got += array_bytes(kv.v_scale, heads * seq * sizeof(float), "value scales");
                    if (kv.v_shift) got += array_bytes(kv.v_shift, heads * kv.v_groups * kv.values_t[0].r4.col_shift_stride,
                                                       "value shifts");
                }
                const size_t reported = kv_cache_bytes(&c, &q, contexts[t]);
                CHECKF(reported == got, "%s, head size %d, %d kv heads, %d positions: kv_cache_bytes says %zu, "
                       "the cache holds %zu", modes[m], head_sizes[h], kv_heads, contexts[t], reported, got);
                kv_cache_free(&kv);
            }
        }
    }
}

void suite_cache_types(void) {
    test_run("cache_types_kv_cache_bytes_match_allocation", test_kv_cache_bytes);
    test_run("cache_types_flags", test_cache_type_flags);
    test_run("cache_types_and_qrz", test_cache_types_and_qrz);
    test_run("cache_types_reference_flag_and_explain", test_reference_flag_and_explain);
}
