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

#include "weights/weights.h"

#define QRZ_MAGIC "QRAZOR\x1a\n" /* 8 bytes; \x1a\n catches text-mode mangling, as in PNG */
#define QRZ_VERSION 1

/* Checks that path can be written by qrz_write: it does not exist, or it is a regular file
 * (which will be replaced). A device, FIFO, directory or symbolic link is refused, so
 * that `quantize IN /dev/full` cannot replace a device node by a file. Returns 0, or -1
 * with err set. */
int qrz_check_destination(const char *path, char *err, size_t errlen);

/* Writes m to path, through a temporary file created beside it and renamed over it once
 * complete and flushed to disk. Returns 0, or -1 with err set (and no file left behind). */
int qrz_write(const ModelWeights *m, const char *path, char *err, size_t errlen);

/* Maps and validates a .qrz file into m: every offset and size is checked against the
 * file, then every stored value (docs/FORMAT.md), before use. Called by model_open().
 * Returns 0, or -1 with err set. */
int qrz_open(ModelWeights *m, const char *path, char *err, size_t errlen);

#endif
