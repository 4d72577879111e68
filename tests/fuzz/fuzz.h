/*
 * tests/fuzz/fuzz.h - what the libFuzzer harnesses share (see tests/fuzz/README.md).
 *
 * The loaders take paths, so an input is handed over as a file: an anonymous memory file
 * (memfd), opened again through /proc/self/fd like any regular file.
 */
#ifndef TESTS_FUZZ_FUZZ_H
#define TESTS_FUZZ_FUZZ_H

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#include "engine/transformer.h"

/* The input as a file: writes its path (valid until fuzz_file_close) into path. */
static inline int fuzz_file(const uint8_t *data, size_t size, char *path, size_t len) {
    const int fd = memfd_create("fuzz-input", MFD_CLOEXEC);
    if (fd < 0) abort();
    for (size_t done = 0; done < size;) {
        const ssize_t n = write(fd, data + done, size - done);
        if (n <= 0) abort();
        done += (size_t)n;
    }
    snprintf(path, len, "/proc/self/fd/%d", fd);
    return fd;
}

/* A file that loads must also run: two forward steps (or one, for a context of one), and
 * every logit finite, since the loaders promise a forward pass that cannot overflow
 * (docs/FORMAT.md, Magnitudes). Anything else is a finding. */
static inline void fuzz_forward(const ModelWeights *w) {
    char err[512];
    const int n_ctx = w->cfg.seq_len < 2 ? w->cfg.seq_len : 2;
    Transformer *t = transformer_new(w, NULL, n_ctx, err, sizeof err);
    if (!t) return; /* out of memory for the cache: an error, not a crash */
    for (int pos = 0; pos < n_ctx; pos++) {
        const int token = pos == 0 ? 1 % w->cfg.vocab_size : w->cfg.vocab_size - 1;
        const float *logits = transformer_forward(t, token, pos);
        if (!logits) {
            fprintf(stderr, "%s: the magnitude check let it through\n", transformer_error(t));
            abort();
        }
        for (int i = 0; i < w->cfg.vocab_size; i++) {
            if (!isfinite(logits[i])) {
                fprintf(stderr, "logit %d at position %d is %g: the magnitude check let it through\n",
                        i, pos, logits[i]);
                abort();
            }
        }
    }
    transformer_free(t);
}

#endif
