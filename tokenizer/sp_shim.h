/*
 * tokenizer/sp_shim.h - a small C API over libsentencepiece (whose API is C++).
 *
 * sp_shim.cpp is the only C++ in the project; nothing else includes a C++ header.
 * No function lets a C++ exception escape: failures come back as NULL / -1 with a message.
 */
#ifndef TOKENIZER_SP_SHIM_H
#define TOKENIZER_SP_SHIM_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct SpModel SpModel;

/* Parses a serialized sentencepiece model (the bytes of a .model file). */
SpModel *sp_model_parse(const void *bytes, size_t size, char *err, size_t errlen);
void sp_model_free(SpModel *m);

int sp_model_vocab_size(const SpModel *m);
int sp_model_bos_id(const SpModel *m); /* -1 when the model defines none */
int sp_model_eos_id(const SpModel *m);
const char *sp_model_piece(const SpModel *m, int id); /* "▁the", "<0x0A>", "<s>", ... */
int sp_model_is_control(const SpModel *m, int id);    /* <s>, </s>, ... */

/* Encodes UTF-8 text (no BOS) into a malloc'd array *ids (the caller frees it).
 * Returns the number of ids, or -1 with err set. */
int sp_model_encode(const SpModel *m, const char *text, int **ids, char *err, size_t errlen);

#ifdef __cplusplus
}
#endif

#endif
