/*
 * tests/test_fuzz_findings.c - every input a fuzz target (tests/fuzz/) found a bug with,
 * replayed through the same entry point, with what must happen instead. Most of these only
 * misbehaved under the sanitizers: `make test-asan` is where they would fail again.
 */
#include <stdlib.h>
#include <string.h>

#include "tests/test.h"
#include "tokenizer/tokenizer.h"
#include "weights/safetensors.h"

/* safetensors (clang UBSan): a header "{}" declares no tensor, and sorting the empty
 * table called qsort(NULL, 0, ...), undefined behaviour (qsort's pointer is declared
 * non-null). A file without tensors opens, and has none. */
static void test_safetensors_without_tensors(void) {
    static const unsigned char input[] = {0x08, 0, 0, 0, 0, 0, 0, 0, '{', '}', ' ', ' ', ' ', ' ', ' ', ' '};
    SafeTensors st;
    char err[512] = "";
    const int rc = safetensors_open_buffer(&st, "empty.safetensors", input, sizeof input, err, sizeof err);
    CHECKF(rc == 0 && st.n_tensors == 0, "rc %d, %d tensors: %s", rc, rc == 0 ? st.n_tensors : -1, err);
    if (rc == 0) {
        CHECK(safetensors_find(&st, "model.embed_tokens.weight") == NULL);
        safetensors_close(&st);
    }
}

/* tokenizer_json (clang UBSan): a tokenizer.json without byte fallback or <unk> drops a
 * character it has no piece for; a word of only such characters appended its 0 ids with
 * memcpy to a still-NULL array, undefined behaviour. Such a text encodes to nothing. */
static void test_tokenizer_json_unknown_word(void) {
    static const char json[] = "{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0}, \"merges\": []}}";
    char err[512] = "";
    Tokenizer *t = tokenizer_parse(json, strlen(json), "tok.json", err, sizeof err);
    int *ids = NULL;
    const int n = t ? tokenizer_encode(t, "bb", &ids, err, sizeof err) : -1;
    CHECKF(n == 0, "%d ids: %s", n, err);
    free(ids);
    tokenizer_free(t);
}

/* tokenizer_json: a Split pattern with a newline in it was quoted in the message, which
 * then took two lines. Quoted file text has its control characters replaced. */
static void test_tokenizer_json_message_one_line(void) {
    static const char json[] = "{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0}, \"merges\": []}, "
                               "\"pre_tokenizer\": {\"type\": \"Split\", \"pattern\": {\"Regex\": \"a\\nb\"}}}";
    char err[512] = "";
    Tokenizer *t = tokenizer_parse(json, strlen(json), "tok.json", err, sizeof err);
    CHECKF(!t && strstr(err, "pattern a?b is not implemented") && !strchr(err, '\n'), "'%s'", err);
    tokenizer_free(t);
}

void suite_fuzz_findings(void) {
    test_run("fuzz_findings_tokenizer_json_message_one_line", test_tokenizer_json_message_one_line);
    test_run("fuzz_findings_tokenizer_json_unknown_word", test_tokenizer_json_unknown_word);
    test_run("fuzz_findings_safetensors_without_tensors", test_safetensors_without_tensors);
}
