/*
 * weights/qrz.h - .qrz files: a model already quantized, ready to memory-map.
 *
 * The layout is documented byte by byte in docs/FORMAT.md. In short: a 128-byte header
 * (magic, version, model config, quantization settings, file size), a table of tensors
 * (role, storage, shape, offset, size), then the tensors, each at a 64-byte-aligned
 * offset so that mapped pointers suit SIMD loads. Packed 4-bit matrices are stored
 * exactly in their in-memory format (kernels/qformat.h): loading is mapping.
 */
#ifndef WEIGHTS_QRZ_H
#define WEIGHTS_QRZ_H

#include <stddef.h>
#include <stdint.h>

#include "weights/weights.h"

#define QRZ_MAGIC "QRAZOR\x1a\n" /* 8 bytes; \x1a\n catches text-mode mangling, as in PNG */
#define QRZ_VERSION 3              /* what qrz_write writes; qrz_open reads 1 to 3 */

/* The tensors of a file, by role (docs/FORMAT.md, "Tensor table"). The norm tensors hold
 * one row per layer. */
enum {
    QRZ_ROLE_EMBEDDING = 0, QRZ_ROLE_RMS_ATT = 1, QRZ_ROLE_RMS_FFN = 2, QRZ_ROLE_RMS_FINAL = 3,
    QRZ_ROLE_CLASSIFIER = 4, QRZ_ROLE_TOKENIZER = 5, QRZ_ROLE_STOP_IDS = 6,
    QRZ_ROLE_LINEAR = 16, /* + 7 * layer + j, j = 0..6 for wq wk wv wo w1 w2 w3 */
};

/* Checks that path can be written by qrz_write: it does not exist, or it is a regular file
 * (which will be replaced). A device, FIFO, directory or symbolic link is refused, so
 * that `quantize IN /dev/full` cannot replace a device node by a file. Returns 0, or -1
 * with err set. */
int qrz_check_destination(const char *path, char *err, size_t errlen);

/* Writes m to path, through a temporary file created beside it (OUT.tmp-XXXXXX, the name
 * cut to fit NAME_MAX), flushed to disk, checked as qrz_open checks a file, and only then
 * renamed over path: a model the loader would refuse is never written. Returns 0, or -1
 * with err set (and no file left behind; a fatal signal other than SIGKILL removes the
 * temporary too). */
int qrz_write(const ModelWeights *m, const char *path, char *err, size_t errlen);

/* A model to write from float32 rows produced on demand, tensor by tensor, so that a
 * model larger than memory streams through one quantized matrix's worth of buffer. */
typedef struct {
    ModelConfig cfg;           /* rope_theta, norm_eps and RoPE scaling included */
    QuantConfig quant;         /* keys == values: cache types are chosen at run time; the
                                  embedding is stored as quant.embedding says */
    int tied;                  /* the classifier is the token embedding */
    int bos_id, eos_id;
    const int *stop_ids;       /* n_stop more ids that end a text (at most MODEL_MAX_STOP) */
    int n_stop;
    const char *chat_template; /* a name of at most 15 characters [a-z0-9-], or "" */
    const void *tokenizer;     /* sentencepiece model bytes to store, or NULL */
    size_t tokenizer_size;
    /* Rows [row0, row0 + n) of the tensor of this role (rows of a norm tensor are layers;
     * the classifier of a tied model is the embedding), as float32 into out. Returns 0, or
     * -1 with err set. */
    int (*read_rows)(void *ctx, int role, int row0, int n, float *out, char *err, size_t errlen);
    /* Called before tensor i of n is written, and once more with i == n at the end; bytes
     * is how much of file_bytes is written. May be NULL. */
    void (*progress)(void *ctx, int i, int n, uint64_t bytes, uint64_t file_bytes);
    void *ctx;
} QrzSource;

/* Writes the model that s describes to path, quantizing each matrix as it is read, with
 * the same file safety and the same check as qrz_write. Returns 0, or -1 with err set (and
 * no file left). */
int qrz_write_source(const QrzSource *s, const char *path, char *err, size_t errlen);

/* Maps and validates a .qrz file into m: every offset and size is checked against the
 * file, then every stored value (docs/FORMAT.md), before use. Called by model_open().
 * Returns 0, or -1 with err set. */
int qrz_open(ModelWeights *m, const char *path, char *err, size_t errlen);

#endif
