/*
 * tests/arm/sp_shim_stub.c - tokenizer/sp_shim.h without libsentencepiece, for make
 * test-arm's static AArch64 test binaries (Debian ships no static arm64 sentencepiece):
 * every sentencepiece model is refused with one line that says why. The tests that
 * test-arm runs read no sentencepiece model; the tokenizer's are left to native runs.
 */
#include "tokenizer/sp_shim.h"

#include <stdio.h>

SpModel *sp_model_parse(const void *bytes, size_t size, char *err, size_t errlen) {
    (void)bytes, (void)size;
    snprintf(err, errlen, "sentencepiece is not available in this build (make test-arm's stub)");
    return NULL;
}

/* No model is ever made, so nothing below is reached; they exist for the linker. */
void sp_model_free(SpModel *m) { (void)m; }
int sp_model_vocab_size(const SpModel *m) { return (void)m, 0; }
int sp_model_bos_id(const SpModel *m) { return (void)m, -1; }
int sp_model_eos_id(const SpModel *m) { return (void)m, -1; }
const char *sp_model_piece(const SpModel *m, int id) { return (void)m, (void)id, ""; }
int sp_model_is_control(const SpModel *m, int id) { return (void)m, (void)id, 0; }

int sp_model_encode(const SpModel *m, const char *text, int **ids, char *err, size_t errlen) {
    (void)m, (void)text, (void)ids;
    snprintf(err, errlen, "sentencepiece is not available in this build (make test-arm's stub)");
    return -1;
}
