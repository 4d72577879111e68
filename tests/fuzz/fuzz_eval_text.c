/*
 * tests/fuzz/fuzz_eval_text.c - the text --eval reads: any bytes as a file must give a
 * NUL-terminated UTF-8 text or one error naming the file; a text it accepts is cut into
 * documents and encoded (with the tok512 tokenizer.bin) into ids in range.
 */
#include <string.h>

#include "engine/commands/eval.h"
#include "tests/fuzz/fuzz.h"
#include "tokenizer/tokenizer.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static Tokenizer *tok;
    char path[64], err[1024];
    if (!tok && !(tok = tokenizer_open("tests/data/tok512.bin", err, sizeof err))) {
        fprintf(stderr, "run from the repository root: %s\n", err);
        abort();
    }
    const int fd = fuzz_file(data, size, path, sizeof path);
    char *text = eval_read_text(path, err, sizeof err);
    if (!text) {
        if (!strstr(err, path)) abort(); /* the message names the file */
        close(fd);
        return 0;
    }
    if (strlen(text) != size) abort(); /* no NUL inside, nothing dropped */
    int n_tokens = 0, n_docs = 0;
    int *ids = eval_tokenize(tok, text, &n_tokens, &n_docs, err, sizeof err);
    for (int i = 0; ids && i < n_tokens; i++)
        if (ids[i] < 0 || ids[i] >= tokenizer_vocab_size(tok)) abort();
    if (ids && (n_docs < 1 || n_tokens < n_docs)) abort(); /* each document starts with BOS */
    free(ids);
    free(text);
    close(fd);
    return 0;
}
