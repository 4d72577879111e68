/*
 * tests/test_cache_types.c - the KV-cache types (docs/SPEC.md section 6) and the reference
 * path through the real program: -ctk / -ctv and the /k5 /v5 /k8 /v8 knobs, where they
 * apply and where they are refused, and --reference giving the fast path's text.
 * (Their numbers are checked against the oracle in tests/test_forward.c and against the
 * reference path, bit for bit, in tests/test_reference.c.)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

void suite_cache_types(void) {
    test_run("cache_types_flags", test_cache_type_flags);
    test_run("cache_types_and_qrz", test_cache_types_and_qrz);
    test_run("cache_types_reference_flag_and_explain", test_reference_flag_and_explain);
}
