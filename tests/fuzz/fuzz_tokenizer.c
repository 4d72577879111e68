/*
 * tests/fuzz/fuzz_tokenizer.c - tokenizer files of either format (llama2.c tokenizer.bin, and a
 * sentencepiece .model, parsed by libsentencepiece): load, encode a few texts, decode
 * every id after every kind of predecessor. Two targets run it, with different seeds.
 */
#include <string.h>

#include "tests/fuzz/fuzz.h"
#include "tokenizer/tokenizer.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static const char *const texts[] = {"", "Once upon a time", " a  b\n\nc\t", "\xe2\x96\x81\xc3\xa9\xf0\x9f\x98\x80",
                                        "\xff\xfe\x80 bytes", "<0x0A> <s> </s> <unk>"};
    char path[64], err[512];
    const int fd = fuzz_file(data, size, path, sizeof path);
    Tokenizer *t = tokenizer_open(path, err, sizeof err);
    if (!t) {
        if (!strstr(err, path)) abort();
        close(fd);
        return 0;
    }
    const int V = tokenizer_vocab_size(t);
    if (V <= 0 || (tokenizer_bos(t) < 0 && !tokenizer_parses_special(t)) || tokenizer_bos(t) >= V) abort();
    for (size_t k = 0; k < sizeof texts / sizeof texts[0]; k++) {
        int *ids;
        const int n = tokenizer_encode(t, texts[k], &ids, err, sizeof err);
        for (int i = 0; i < n; i++) {
            if (ids[i] < 0 || ids[i] >= V) abort();
            size_t len;
            tokenizer_decode(t, i ? ids[i - 1] : tokenizer_bos(t), ids[i], &len);
        }
        if (n >= 0) free(ids);
    }
    for (int id = 0; id < V && id < 4096; id++) {
        size_t len;
        const char *s = tokenizer_decode(t, tokenizer_bos(t), id, &len);
        if (len && !s) abort();
    }
    tokenizer_free(t);
    close(fd);
    return 0;
}
