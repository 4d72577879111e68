/*
 * tests/test_bpe.c - tokenizer.json (tokenizer/bpe.h) against Hugging Face's own tokenizers:
 * SmolLM2's, Llama 3's and Mistral's tokenizer.json on WikiText-2, TinyStories and a file of
 * hard cases, token for token with the ids that the npm packages `tokenizers` (Rust) and
 * `@huggingface/tokenizers` (JavaScript) wrote (tests/data/tokenizers/oracle.cjs; provenance
 * in tests/data/README.md). Then decoding, streaming UTF-8, special tokens, and refusals.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests/test.h"
#include "tokenizer/tokenizer.h"
#include "tokenizer/unicode.h"

#define DATA "tests/data/tokenizers/"
#define CASE_SEPARATOR "\n---8<---\n"

static const char *const tokenizers[] = {"smollm2", "llama3", "mistral"};

static Tokenizer *load(const char *name) {
    char path[256], err[512] = "";
    snprintf(path, sizeof path, DATA "%s.tokenizer.json.gz", name);
    size_t size;
    char *json = test_read_gzip(path, &size);
    Tokenizer *t = json ? tokenizer_parse(json, size, path, err, sizeof err) : NULL;
    CHECKF(!json || t, "%s", err);
    free(json);
    return t;
}

/* The ids of text without BOS, as `run tokenize` prints them; -1 on error (a failed check). */
static int encode(const Tokenizer *t, const char *text, int **ids) {
    char err[512] = "";
    const int n = tokenizer_encode(t, text, ids, err, sizeof err);
    if (!CHECKF(n >= 0, "%s", err)) return -1;
    const int skip = n > 0 && tokenizer_bos(t) >= 0 && (*ids)[0] == tokenizer_bos(t);
    memmove(*ids, *ids + skip, (size_t)(n - skip) * sizeof **ids);
    return n - skip;
}

/* Compares the ids of text with a line of expected ids; says where they first differ. */
static void expect_ids(const Tokenizer *t, const char *text, const char *line, const char *what) {
    int *got = NULL;
    const int n = encode(t, text, &got);
    int at = 0, want_n = 0;
    for (const char *p = line; *p && *p != '\n';) {
        char *end;
        const long want = strtol(p, &end, 10);
        if (end == p) break;
        if (at == want_n && at < n && got[at] == want) at++;
        want_n++;
        p = end;
    }
    CHECKF(n == want_n && at == n, "%s: %d ids, Hugging Face's %d; first difference at id %d (ours %d)", what, n,
           want_n, at, at < n ? got[at] : -1);
    free(got);
}

/* Every tokenizer on every text: the oracle's ids, token for token. */
static void test_matches_hugging_face(void) {
    static const struct {
        const char *name, *path; /* path: a text (.gz: compressed) */
        int cases;               /* the file is cases split by CASE_SEPARATOR, one line of ids each */
    } texts[] = {{"hard-cases", DATA "hard-cases.txt", 1},
                 {"unicode-digits", DATA "unicode-digits.txt", 0},
                 {"tinystories-dev", "tests/data/tinystories-dev.txt", 0},
                 {"wikitext2-test", DATA "wikitext2-test.raw.gz", 0}};
    for (size_t k = 0; k < sizeof tokenizers / sizeof tokenizers[0]; k++) {
        Tokenizer *t = load(tokenizers[k]);
        if (!t) continue;
        for (size_t x = 0; x < sizeof texts / sizeof texts[0]; x++) {
            char path[256], what[128];
            const size_t len = strlen(texts[x].path);
            char *text = len > 3 && !strcmp(texts[x].path + len - 3, ".gz") ? test_read_gzip(texts[x].path, NULL)
                                                                              : test_read_file(texts[x].path, NULL);
            snprintf(path, sizeof path, DATA "%s.%s.ids.gz", tokenizers[k], texts[x].name);
            char *ids = test_read_gzip(path, NULL);
            char *line = ids;
            int c = 0;
            for (char *at = text; text && ids && at; c++) {
                char *next = texts[x].cases ? strstr(at, CASE_SEPARATOR) : NULL;
                if (next) *next = '\0';
                snprintf(what, sizeof what, "%s on %s%s%d", tokenizers[k], texts[x].name, texts[x].cases ? " case " : "",
                         texts[x].cases ? c : 0);
                if (!CHECKF(*line || !*at, "%s: no expected ids", what)) break;
                expect_ids(t, at, line, what);
                line += strcspn(line, "\n") + (line[strcspn(line, "\n")] == '\n');
                at = next ? next + strlen(CASE_SEPARATOR) : NULL;
            }
            free(text), free(ids);
        }
        tokenizer_free(t);
    }
}

/* What ids print, concatenated (the first after BOS as the program prints it). */
static char *decode_all(const Tokenizer *t, const int *ids, int n, int prev) {
    size_t cap = 16, len = 0;
    char *out = malloc(cap);
    for (int i = 0; out && i < n; prev = ids[i++]) {
        size_t k;
        const char *piece = tokenizer_decode(t, prev, ids[i], &k);
        if (len + k + 1 > cap) {
            char *grown = realloc(out, cap = 2 * (len + k + 1));
            if (!grown) return free(out), NULL;
            out = grown;
        }
        memcpy(out + len, piece, k);
        len += k;
    }
    if (out) out[len] = '\0';
    return out;
}

/* Decoding gives the text back: byte-level pieces are bytes; sentencepiece style writes
 * "▁" as a space and drops the one it prepended, after BOS. */
static void test_decode_round_trip(void) {
    char *cases = test_read_file(DATA "hard-cases.txt", NULL);
    for (size_t k = 0; cases && k < sizeof tokenizers / sizeof tokenizers[0]; k++) {
        Tokenizer *t = load(tokenizers[k]);
        if (!t) continue;
        char *copy = strdup(cases);
        for (char *at = copy; at;) {
            char *next = strstr(at, CASE_SEPARATOR);
            if (next) *next = '\0';
            int *ids = NULL;
            char err[256];
            const int n = tokenizer_encode_text(t, at, &ids, err, sizeof err); /* specials' text as text */
            char *back = n >= 0 ? decode_all(t, ids, n, tokenizer_bos(t)) : NULL;
            CHECKF(back && !strcmp(back, at), "%s: '%s' decodes to '%s'", tokenizers[k], at, back ? back : err);
            free(back), free(ids);
            at = next ? next + strlen(CASE_SEPARATOR) : NULL;
        }
        free(copy);
        tokenizer_free(t);
    }
    free(cases);
}

/* Streaming output: Llama 3 splits CJK characters and emoji across tokens; printed through a
 * Utf8Stream, every character still comes out whole, and bytes that are no UTF-8 become
 * U+FFFD as Hugging Face's decode writes them. */
static void test_streaming_utf8(void) {
    Tokenizer *t = load("llama3");
    if (!t) return;
    const char *text = "CJK: 你好，世界！ 日本語 😀 👍🏽 🇫🇷 é";
    int *ids = NULL;
    const int n = encode(t, text, &ids);
    Utf8Stream s = {{0}, 0};
    char out[1024], *o = out;
    int split = 0;
    for (int i = 0; i < n; i++) {
        size_t k;
        const char *piece = tokenizer_decode(t, i ? ids[i - 1] : -1, ids[i], &k);
        uint32_t cp;
        for (size_t at = 0; at < k;) { /* does this piece end or start inside a character? */
            const int l = utf8_decode((const unsigned char *)piece + at, k - at, &cp);
            split += l == 0;
            at += l ? (size_t)l : k;
        }
        char chunk[3 * (64 + 4)];
        const size_t w = utf8_stream_push(&s, piece, k, chunk);
        for (size_t j = 0; j < w; j++) { /* what comes out is whole characters only */
            const int l = utf8_decode((const unsigned char *)chunk + j, w - j, &cp);
            CHECKF(l > 0, "piece %d: the stream wrote part of a character", i);
            j += l ? (size_t)l - 1 : w;
        }
        memcpy(o, chunk, w), o += w;
    }
    o += utf8_stream_flush(&s, o);
    *o = '\0';
    CHECKF(split > 0, "no token of this text splits a character: the test tests nothing");
    CHECKF(!strcmp(out, text), "streamed '%s'", out);
    free(ids);
    tokenizer_free(t);

    static const struct {
        const char *in, *out; /* in: pieces split by '|' */
    } cases[] = {{"\xE4|\xBD|\xA0", "\xE4\xBD\xA0"},                  /* 你, a byte at a time */
                 {"a\xFF" "b", "a\xEF\xBF\xBD" "b"},                   /* a byte UTF-8 never has */
                 {"\xE4\xBD" "A", "\xEF\xBF\xBD" "A"},                /* a character broken off */
                 {"\xED\xA0\x80", "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD"}, /* a surrogate: 3 invalid bytes */
                 {"\xF0\x9F|\x98", "\xEF\xBF\xBD"}};                 /* cut short at the end */
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        Utf8Stream u = {{0}, 0};
        char got[64], *g = got;
        for (const char *p = cases[c].in; *p;) {
            const size_t k = strcspn(p, "|");
            g += utf8_stream_push(&u, p, k, g);
            p += k + (p[k] == '|');
        }
        g += utf8_stream_flush(&u, g);
        *g = '\0';
        CHECKF(!strcmp(got, cases[c].out), "case %zu: wrong output", c);
    }
}

/* Special tokens: their text is their id in tokenize and in a template's markup, never in
 * what a user typed; text that is not UTF-8 is refused. */
static void test_special_tokens(void) {
    Tokenizer *t = load("llama3");
    if (!t) return;
    char err[256] = "";
    int *ids = NULL;
    CHECK(tokenizer_bos(t) == 128000 && tokenizer_special(t, "<|eot_id|>") == 128009 &&
          tokenizer_special(t, "<|im_end|>") == -1 && tokenizer_parses_special(t));
    int n = tokenizer_encode(t, "Hi<|eot_id|>", &ids, err, sizeof err);
    CHECKF(n == 3 && ids[0] == 128000 && ids[2] == 128009, "%d ids", n);
    free(ids);
    n = tokenizer_encode_text(t, "Hi<|eot_id|>", &ids, err, sizeof err);
    int found = 0;
    for (int i = 0; i < n; i++) found |= ids[i] >= 128000;
    CHECKF(n > 3 && !found, "a user's text made a special token (%d ids)", n);
    free(ids);
    const char text[] = "<|eot_id|><|eot_id|>";
    const unsigned char plain[sizeof text] = {[10] = 1, 1, 1, 1, 1, 1, 1, 1, 1, 1}; /* the second one is typed */
    n = tokenizer_encode_marked(t, text, plain, &ids, err, sizeof err);
    CHECKF(n > 2 && ids[0] == 128009 && ids[1] != 128009, "%d ids", n);
    free(ids);
    n = tokenizer_encode(t, "ok \xC3\x28 no", &ids, err, sizeof err);
    CHECKF(n == -1 && strstr(err, "not valid UTF-8 (byte 3)"), "invalid UTF-8: %d ids, '%s'", n, err);
    tokenizer_free(t);
    /* SmolLM2's tokenizer puts no BOS before a text. */
    if ((t = load("smollm2"))) {
        CHECK(tokenizer_bos(t) == -1 && tokenizer_special(t, "<|im_end|>") == 2);
        n = tokenizer_encode(t, "<|im_start|>user", &ids, err, sizeof err);
        CHECKF(n == 2 && ids[0] == 1, "%d ids", n);
        free(ids);
        tokenizer_free(t);
    }
}

/* A small tokenizer.json with one part replaced: FIELD "VALUE" in base, or extra members. */
static const char *small_json(const char *model, const char *extra) {
    static char json[2048];
    snprintf(json, sizeof json,
             "{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0, \"b\": 1, \"ab\": 2, \"c\": 3}, "
             "\"merges\": [\"a b\"]%s}, \"pre_tokenizer\": {\"type\": \"ByteLevel\", \"use_regex\": true}%s}",
             model, extra);
    return json;
}

/* What is not implemented is refused with one line naming it; a small file works. */
static void test_refuses_what_it_does_not_implement(void) {
    char err[512] = "";
    const char *ok = small_json("", "");
    Tokenizer *t = tokenizer_parse(ok, strlen(ok), "tok.json", err, sizeof err);
    int *ids = NULL;
    if (CHECKF(t != NULL, "%s", err)) {
        const int n = tokenizer_encode(t, "abcab", &ids, err, sizeof err);
        CHECKF(n == 3 && ids[0] == 2 && ids[1] == 3 && ids[2] == 2, "%d ids", n);
        CHECK(tokenizer_bos(t) == -1 && tokenizer_vocab_size(t) == 4);
        free(ids);
        tokenizer_free(t);
    }
    static const struct {
        const char *model, *extra, *fragment;
    } bad[] = {
        {"", ", \"normalizer\": {\"type\": \"NFKC\"}", "normalizer NFKC is not implemented"},
        {"", ", \"normalizer\": {\"type\": \"Replace\", \"pattern\": {\"Regex\": \" +\"}, \"content\": \" \"}",
         "normalizer Replace other than of a string"},
        {"", ", \"added_tokens\": [{\"id\": 4, \"content\": \"<x>\", \"lstrip\": true}]", "<x> has lstrip set"},
        {"", ", \"added_tokens\": [{\"id\": 5, \"content\": \"<x>\"}]", "id 4 is neither in model.vocab nor in added_tokens"},
        {"", ", \"post_processor\": {\"type\": \"BertProcessing\"}", "post_processor BertProcessing is not implemented"},
        {"", ", \"decoder\": {\"type\": \"WordPiece\"}", "decoder WordPiece is not implemented for a byte-level tokenizer"},
        {"", ", \"decoder\": {\"type\": \"Sequence\", \"decoders\": [{\"type\": \"ByteFallback\"}]}",
         "decoder ByteFallback is not implemented for a byte-level tokenizer"},
        {", \"dropout\": 0.1", "", "model.dropout is set"},
        {", \"merges\": [\"a c d\"]", "", "duplicate key"},
        {", \"continuing_subword_prefix\": \"##\"", "", "model.continuing_subword_prefix is set"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        const char *json = small_json(bad[i].model, bad[i].extra);
        t = tokenizer_parse(json, strlen(json), "tok.json", err, sizeof err);
        CHECKF(!t && strstr(err, "tok.json: tokenizer.json: ") == err && strstr(err, bad[i].fragment) && !strchr(err, '\n'),
               "case %zu: '%s' lacks '%s'", i, err, bad[i].fragment);
        tokenizer_free(t);
    }
    static const struct {
        const char *json, *fragment;
    } whole[] = {
        {"{\"model\": {\"type\": \"WordPiece\"}}", "model type WordPiece is not implemented (BPE is)"},
        {"{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0}, \"merges\": []}, \"pre_tokenizer\": {\"type\": "
         "\"Whitespace\"}}", "pre-tokenizer Whitespace is not implemented"},
        {"{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0}, \"merges\": []}, \"pre_tokenizer\": {\"type\": "
         "\"Split\", \"pattern\": {\"Regex\": \"\\\\s+\"}, \"behavior\": \"Isolated\"}}",
         "pre-tokenizer Split with pattern \\s+ is not implemented (only Llama 3's is)"},
        {"{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0, \"b\": 1}, \"merges\": [\"a b\"]}}",
         "model.merges[0]: \"a\" + \"b\" is not a merge of two pieces into a piece"},
        {"{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0, \"c\": 2}, \"merges\": []}}",
         "id 1 is neither in model.vocab nor in added_tokens"},
        {"{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0, \"b\": 0}, \"merges\": []}}", "id 0 is given to both"},
        {"{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0}, \"merges\": []}, \"pre_tokenizer\": {\"type\": "
         "\"ByteLevel\"}, \"model\": 1}", "duplicate key \"model\""},
        {"{\"model\": {\"type\": \"BPE\", \"vocab\": {\"\\u00ff\\u0200\": 0}, \"merges\": []}, \"pre_tokenizer\": "
         "{\"type\": \"ByteLevel\"}}", "is not written in the byte-level alphabet"},
        {"{\"model\": ", "not valid JSON"},
    };
    for (size_t i = 0; i < sizeof whole / sizeof whole[0]; i++) {
        t = tokenizer_parse(whole[i].json, strlen(whole[i].json), "tok.json", err, sizeof err);
        CHECKF(!t && strstr(err, whole[i].fragment) && !strchr(err, '\n'), "whole %zu: '%s' lacks '%s'", i, err,
               whole[i].fragment);
        tokenizer_free(t);
    }
}

/* run tokenize: a tokenizer file, a .bin model (the tokenizer beside it), the ids of
 * tokenizer_encode without BOS; bad arguments fail with one line. */
static void test_tokenize_command(void) {
    size_t size;
    char *json = test_read_gzip(DATA "smollm2.tokenizer.json.gz", &size);
    const char *tok = json ? test_temp_file(json, size) : NULL;
    free(json);
    const char *text = test_temp_file("Hello world", 11); /* the first hard case */
    char *expected = test_read_gzip(DATA "smollm2.hard-cases.ids.gz", NULL);
    if (!tok || !text || !expected) return free(expected);
    expected[strcspn(expected, "\n") + 1] = '\0';
    RunResult r = test_run_program((const char *[]){"run", "tokenize", tok, text, NULL}, NULL, NULL);
    CHECKF(r.status == 0 && r.out && !strcmp(r.out, expected), "exit %d, out '%s', want '%s', err %s", r.status, r.out,
           expected, r.err);
    free(expected);
    run_result_free(&r);
    r = test_run_program((const char *[]){"run", "tokenize", "models/stories260K.bin", text, NULL}, NULL, NULL);
    char err[256] = "";
    Tokenizer *t = tokenizer_open("models/tok512.model", err, sizeof err);
    int *ids = NULL;
    const int n = t ? encode(t, "Hello world", &ids) : -1;
    char want[512] = "";
    for (int i = 0; i < n; i++) snprintf(want + strlen(want), sizeof want - strlen(want), i ? " %d" : "%d", ids[i]);
    strcat(want, "\n");
    CHECKF(r.status == 0 && r.out && n > 0 && !strcmp(r.out, want), "stories260K: '%s', want '%s'", r.out, want);
    run_result_free(&r), free(ids), tokenizer_free(t);
    static const char *const bad[][5] = {{"run", "tokenize", "models/stories260K.bin", NULL},
                                         {"run", "tokenize", DATA "hard-cases.txt", DATA "hard-cases.txt"},
                                         {"run", "tokenize", "models/tok512.model", "no/such/file"}};
    static const char *const fragment[] = {"usage: run tokenize MODEL FILE", "as a tokenizer:", "no/such/file: cannot read"};
    for (int i = 0; i < 3; i++) {
        r = test_run_program(bad[i], NULL, NULL);
        CHECKF(r.status == 1 && r.err && strstr(r.err, "error: ") == r.err && strstr(r.err, fragment[i]) &&
                   !strchr(r.err, '\n')[1],
               "case %d: exit %d, '%s'", i, r.status, r.err);
        run_result_free(&r);
    }
}

void suite_bpe(void) {
    test_run("bpe_matches_hugging_face", test_matches_hugging_face);
    test_run("bpe_decode_round_trip", test_decode_round_trip);
    test_run("bpe_streaming_utf8", test_streaming_utf8);
    test_run("bpe_special_tokens", test_special_tokens);
    test_run("bpe_refuses_what_it_does_not_implement", test_refuses_what_it_does_not_implement);
    test_run("bpe_tokenize_command", test_tokenize_command);
}
