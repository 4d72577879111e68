/*
 * tests/test_tokenizer.c - both tokenizer formats against the golden token ids, against
 * each other, and on broken files.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests/test.h"
#include "tokenizer/tokenizer.h"

static Tokenizer *open_or_fail(const char *path) {
    char err[512] = "";
    Tokenizer *t = tokenizer_open(path, err, sizeof err);
    CHECKF(t != NULL, "%s", err);
    return t;
}

/* The golden cases: prompt text and the ids llama2.c's encoder gave for it. */
static const char *const golden_cases[] = {"stories260K/bos", "stories260K/lily", "llama2xs/park"};

static void check_golden_ids(const char *tokenizer_path) {
    Tokenizer *t = open_or_fail(tokenizer_path);
    if (!t) return;
    CHECK(tokenizer_vocab_size(t) == 512 && tokenizer_bos(t) == 1 && tokenizer_eos(t) == 2);
    for (size_t c = 0; c < sizeof golden_cases / sizeof golden_cases[0]; c++) {
        char path[256];
        snprintf(path, sizeof path, "tests/data/golden/%s.prompt.txt", golden_cases[c]);
        char *text = test_read_file(path, NULL);
        snprintf(path, sizeof path, "tests/data/golden/%s.tokens", golden_cases[c]);
        int *want, n_want = test_read_ints(path, &want);
        if (!text || n_want < 0) {
            free(text);
            continue;
        }
        text[strcspn(text, "\n")] = '\0'; /* the file ends with a newline; the prompt does not */
        int *got;
        char err[256];
        int n_got = tokenizer_encode(t, text, &got, err, sizeof err);
        CHECKF(n_got == n_want, "%s via %s: %d ids, golden has %d", golden_cases[c],
               tokenizer_path, n_got, n_want);
        for (int i = 0; i < n_got && i < n_want; i++)
            CHECKF(got[i] == want[i], "%s via %s: id %d is %d, golden %d", golden_cases[c],
                   tokenizer_path, i, got[i], want[i]);
        /* Decoding the golden ids gives the prompt text back. */
        char decoded[1024] = "";
        size_t at = 0;
        for (int i = 1; i < n_want; i++) {
            size_t len;
            const char *piece = tokenizer_decode(t, want[i - 1], want[i], &len);
            if (at + len < sizeof decoded) memcpy(decoded + at, piece, len), at += len;
        }
        decoded[at] = '\0';
        CHECKF(!strcmp(decoded, text), "decode gives '%s', prompt is '%s'", decoded, text);
        free(got);
        free(want);
        free(text);
    }
    tokenizer_free(t);
}

static void test_sentencepiece_matches_golden(void) { check_golden_ids("models/tok512.model"); }
static void test_bin_matches_golden(void) { check_golden_ids("tests/data/tok512.bin"); }

/* Our tokenizer.bin encoder (llama2.c's rule) must agree with libsentencepiece on the same
 * vocabulary, including byte fallback, newlines and multi-byte UTF-8. Not compared: runs
 * of spaces, which tok512.model's normalizer collapses (remove_extra_whitespaces) and
 * llama2.c's encoder keeps. */
static void test_formats_agree(void) {
    static const char *const texts[] = {
        "",
        "Once upon a time, there was a little girl named Lily.",
        "The quick brown fox jumps over the lazy dog!",
        "line one\nline two\n\ttabbed",
        "naïve café, Zürich – 東京 😀 ∑",
        "1234567890 + 3.14159 = ?",
        "<s> not a control token </s>",
    };
    static const char *const pairs[][2] = {
        {"models/tok512.model", "tests/data/tok512.bin"},
        {"tests/data/tokenizer.model", "tests/data/tokenizer.bin"},
    };
    for (size_t p = 0; p < 2; p++) {
        Tokenizer *a = open_or_fail(pairs[p][0]), *b = open_or_fail(pairs[p][1]);
        if (!a || !b) {
            tokenizer_free(a), tokenizer_free(b);
            continue;
        }
        CHECK(tokenizer_vocab_size(a) == tokenizer_vocab_size(b));
        CHECK(!strcmp(tokenizer_format(a), "sentencepiece"));
        CHECK(!strcmp(tokenizer_format(b), "llama2.c tokenizer.bin"));
        for (size_t i = 0; i < sizeof texts / sizeof texts[0]; i++) {
            int *ia, *ib;
            char err[256];
            int na = tokenizer_encode(a, texts[i], &ia, err, sizeof err);
            int nb = tokenizer_encode(b, texts[i], &ib, err, sizeof err);
            int same = na == nb && na > 0 && !memcmp(ia, ib, (size_t)na * sizeof *ia);
            CHECKF(same, "'%s': %s gives %d ids, %s gives %d (or they differ)", texts[i],
                   pairs[p][0], na, pairs[p][1], nb);
            /* Every piece decodes to the same bytes in both formats. */
            for (int k = 1; same && k < na; k++) {
                size_t la, lb;
                const char *sa = tokenizer_decode(a, ia[k - 1], ia[k], &la);
                const char *sb = tokenizer_decode(b, ib[k - 1], ib[k], &lb);
                CHECKF(la == lb && !memcmp(sa, sb, la), "'%s': piece %d decodes differently",
                       texts[i], k);
            }
            if (na > 0) free(ia);
            if (nb > 0) free(ib);
        }
        tokenizer_free(a);
        tokenizer_free(b);
    }
}

static void test_decode_rules(void) {
    Tokenizer *t = open_or_fail("models/tok512.model");
    if (!t) return;
    size_t n;
    /* <0x0A> (id 13 in tok512) is a newline byte. */
    const char *s = tokenizer_decode(t, 400, 13, &n);
    CHECK(n == 1 && s[0] == '\n');
    /* "▁Once" (id 403): a leading space, dropped right after BOS. */
    s = tokenizer_decode(t, 400, 403, &n);
    CHECK(n == 5 && !memcmp(s, " Once", 5));
    s = tokenizer_decode(t, 1, 403, &n);
    CHECK(n == 4 && !memcmp(s, "Once", 4));
    /* Control pieces print nothing. */
    tokenizer_decode(t, 400, 1, &n);
    CHECK(n == 0);
    tokenizer_decode(t, 400, 2, &n);
    CHECK(n == 0);
    tokenizer_free(t);
}

static void expect_open_error(const char *path, const char *fragment) {
    char err[1024] = "";
    Tokenizer *t = tokenizer_open(path, err, sizeof err);
    CHECKF(t == NULL, "%s: opened but should have failed", path);
    CHECKF(strstr(err, fragment) != NULL, "error '%s' does not mention '%s'", err, fragment);
    tokenizer_free(t);
}

static void test_rejects_bad_files(void) {
    expect_open_error("tests/data/no-such-tokenizer.model", "cannot open");
    expect_open_error(test_temp_file("", 0), "empty");
    expect_open_error(test_temp_file("this is not a tokenizer at all\n", 31), "not a tokenizer");
    /* A tokenizer.bin cut in the middle of a piece, and one with an impossible length. */
    size_t size;
    char *bin = test_read_file("tests/data/tok512.bin", &size);
    if (bin) {
        expect_open_error(test_temp_file(bin, size - 3), "truncated");
        memcpy(bin + 8, "\xff\xff\xff\x7f", 4); /* length of piece 0 */
        expect_open_error(test_temp_file(bin, size), "length");
        free(bin);
    }
    /* A sentencepiece model cut in half. */
    char *model = test_read_file("models/tok512.model", &size);
    if (model) {
        expect_open_error(test_temp_file(model, size / 2), "not a tokenizer");
        free(model);
    }
    /* A checkpoint is not a tokenizer. */
    expect_open_error("tests/data/llama2xs.bin", "not a tokenizer");
}

void suite_tokenizer(void) {
    test_run("tokenizer_sentencepiece_matches_golden", test_sentencepiece_matches_golden);
    test_run("tokenizer_bin_matches_golden", test_bin_matches_golden);
    test_run("tokenizer_formats_agree", test_formats_agree);
    test_run("tokenizer_decode_rules", test_decode_rules);
    test_run("tokenizer_rejects_bad_files", test_rejects_bad_files);
}
