/*
 * tokenizer/find.c - which tokenizer goes with a model (tokenizer_find in tokenizer.h).
 */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "tokenizer/tokenizer.h"

/* Opens path and checks its vocabulary; NULL with err set otherwise. */
static Tokenizer *open_matching(const char *path, const char *model_path, int vocab_size, char *err,
                                size_t errlen) {
    Tokenizer *t = tokenizer_open(path, err, errlen);
    if (t && tokenizer_vocab_size(t) != vocab_size) {
        snprintf(err, errlen, "%s: tokenizer has %d pieces but the model %s has a vocabulary of %d", path,
                 tokenizer_vocab_size(t), model_path, vocab_size);
        tokenizer_free(t);
        return NULL;
    }
    return t;
}

Tokenizer *tokenizer_find(const char *path, const char *model_path, int vocab_size, char *chosen,
                          size_t chosenlen, char *err, size_t errlen) {
    if (path) {
        snprintf(chosen, chosenlen, "%s", path);
        return open_matching(path, model_path, vocab_size, err, errlen);
    }
    const char *slash = strrchr(model_path, '/');
    const int dirlen = slash ? (int)(slash - model_path + 1) : 0;
    char names[5][64], tried[1024] = "", why[512];
    snprintf(names[0], sizeof names[0], "tok%d.model", vocab_size);
    snprintf(names[1], sizeof names[1], "tok%d.bin", vocab_size);
    snprintf(names[2], sizeof names[2], "tokenizer.model");
    snprintf(names[3], sizeof names[3], "tokenizer.bin");
    snprintf(names[4], sizeof names[4], "tokenizer.json");
    for (int i = 0; i < 5; i++) {
        snprintf(chosen, chosenlen, "%.*s%s", dirlen, model_path, names[i]);
        if (access(chosen, R_OK) != 0) continue;
        Tokenizer *t = open_matching(chosen, model_path, vocab_size, why, sizeof why);
        if (t) return t;
        const size_t used = strlen(tried);
        snprintf(tried + used, sizeof tried - used, "; %s", why);
    }
    snprintf(err, errlen, "no tokenizer with %d pieces found beside %s; pass one with -z%s", vocab_size,
             model_path, tried[0] ? tried : " (looked for tok<VOCAB>.model/.bin, tokenizer.model/.bin/.json)");
    return NULL;
}
