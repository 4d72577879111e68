/*
 * tests/fuzz/fuzz_tokenizer_json.c - Hugging Face tokenizer.json files (tokenizer/bpe.c):
 * parse, then encode texts with and without special tokens and with a user's text marked,
 * and decode every id through the streaming UTF-8 writer. Every id must be in the
 * vocabulary and whatever is written whole characters.
 */
#include <string.h>

#include "tests/fuzz/fuzz.h"
#include "tokenizer/tokenizer.h"
#include "tokenizer/unicode.h"

static void check_ids(const Tokenizer *t, const int *ids, int n) {
    const int V = tokenizer_vocab_size(t);
    Utf8Stream s = {{0}, 0};
    for (int i = 0; i < n; i++) {
        if (ids[i] < 0 || ids[i] >= V) abort();
        size_t len;
        const char *piece = tokenizer_decode(t, i ? ids[i - 1] : tokenizer_bos(t), ids[i], &len);
        char out[3 * (64 + 4)];
        for (size_t k = 0; k < len; k += 64) {
            const size_t w = utf8_stream_push(&s, piece + k, len - k < 64 ? len - k : 64, out);
            for (size_t j = 0; j < w;) {
                uint32_t cp;
                const int l = utf8_decode((const unsigned char *)out + j, w - j, &cp);
                if (!l) abort(); /* the stream wrote part of a character */
                j += (size_t)l;
            }
        }
    }
    char end[4];
    utf8_stream_flush(&s, end);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static const char *const texts[] = {"", "Once upon a time, 12345 people's", " a  b\n\nc\t\r\n  ",
                                        "\xe2\x96\x81\xc3\xa9\xf0\x9f\x98\x80\xe4\xbd\xa0\xe5\xa5\xbd",
                                        "<|begin_of_text|><|eot_id|><|im_start|>user<s></s><unk>", "\xff\xfe bytes"};
    char err[512];
    Tokenizer *t = tokenizer_parse(data, size, "fuzz.json", err, sizeof err);
    if (!t) {
        if (strncmp(err, "fuzz.json: ", 11) != 0 || strchr(err, '\n')) abort();
        return 0;
    }
    const int V = tokenizer_vocab_size(t);
    if (V <= 0 || tokenizer_bos(t) >= V) abort();
    for (size_t k = 0; k < sizeof texts / sizeof texts[0]; k++) {
        int *ids;
        const unsigned char plain[64] = {[20] = 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1};
        int n = tokenizer_encode(t, texts[k], &ids, err, sizeof err);
        if (n >= 0) check_ids(t, ids, n), free(ids);
        n = tokenizer_encode_text(t, texts[k], &ids, err, sizeof err);
        if (n >= 0) check_ids(t, ids, n), free(ids);
        n = tokenizer_encode_marked(t, texts[k], plain, &ids, err, sizeof err);
        if (n >= 0) check_ids(t, ids, n), free(ids);
    }
    for (int id = 0; id < V && id < 4096; id++) check_ids(t, &id, 1);
    tokenizer_free(t);
    return 0;
}
