/*
 * engine/commands/tokenize.c - the tokenize command (engine/commands/tokenize.h).
 */
#include "engine/commands/tokenize.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/commands/command.h"
#include "tokenizer/tokenizer.h"
#include "weights/checkpoint.h"
#include "weights/model.h"
#include "weights/qrz.h"

/* The tokenizer MODEL names: the file itself when it is one, else the model's. */
static Tokenizer *open_tokenizer(const char *path, char *err, size_t errlen) {
    if (model_is_qrz(path)) { /* mapped, not read: a .qrz file may be gigabytes */
        ModelWeights w;
        if (qrz_open(&w, path, err, errlen) != 0) return NULL;
        Tokenizer *t = command_model_tokenizer(NULL, path, &w, err, errlen);
        model_close(&w);
        return t;
    }
    char why[1024];
    Tokenizer *t = tokenizer_open(path, why, sizeof why);
    if (t) return t;
    Checkpoint ck;
    if (checkpoint_open(&ck, path, err, errlen) != 0) { /* neither: say both */
        const size_t used = strlen(err);
        snprintf(err + used, errlen - used, "; as a tokenizer: %s", why);
        return NULL;
    }
    t = command_tokenizer(NULL, path, ck.cfg.vocab_size, err, errlen);
    checkpoint_close(&ck);
    return t;
}

/* The whole file as a string (empty, or only spaces, is a text too). NULL with err set. */
static char *read_text(const char *path, char *err, size_t errlen) {
    FILE *f = fopen(path, "rb");
    char *text = NULL;
    size_t n = 0, cap = 0, got = 1;
    while (f && got > 0) {
        if (n + 1 >= cap) {
            char *grown = cap < ((size_t)1 << 30) ? realloc(text, cap = cap ? 2 * cap : 1 << 16) : NULL;
            if (!grown) {
                snprintf(err, errlen, "%s: %s", path, cap ? "larger than 1 GiB" : "out of memory");
                break;
            }
            text = grown;
        }
        n += got = fread(text + n, 1, cap - n - 1, f);
    }
    const int ok = f && got == 0 && !ferror(f);
    if (!f || (got == 0 && ferror(f))) snprintf(err, errlen, "%s: cannot read: %s", path, strerror(errno));
    if (f) fclose(f);
    if (ok && memchr(text, 0, n)) snprintf(err, errlen, "%s: holds a NUL byte at offset %zu: not a text", path,
                                           (size_t)((char *)memchr(text, 0, n) - text));
    if (!ok || memchr(text, 0, n)) return free(text), NULL;
    text[n] = '\0';
    return text;
}

int tokenize_command(int argc, char **argv, char *err, size_t errlen) {
    if (argc != 2) {
        snprintf(err, errlen, "usage: run tokenize MODEL FILE (see -h)");
        return -1;
    }
    const char *model_path = argv[0], *text_path = argv[1];
    char *text = read_text(text_path, err, errlen);
    if (!text) return -1;
    Tokenizer *t = open_tokenizer(model_path, err, errlen);
    int *ids = NULL;
    const int n = t ? tokenizer_encode(t, text, &ids, err, errlen) : -1;
    if (n >= 0) {
        const int skip = n > 0 && tokenizer_bos(t) >= 0 && ids[0] == tokenizer_bos(t);
        for (int i = skip; i < n; i++) printf(i > skip ? " %d" : "%d", ids[i]);
        printf("\n");
    }
    free(ids);
    free(text);
    tokenizer_free(t);
    return n < 0 ? -1 : 0;
}
