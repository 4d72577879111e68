/*
 * engine/commands/quantize.h - run quantize IN.bin OUT.qrz: a checkpoint quantized once and written
 * as a .qrz file (docs/FORMAT.md) that later runs map as it is.
 */
#ifndef ENGINE_QUANTIZE_H
#define ENGINE_QUANTIZE_H

#include <stddef.h>

#include "kernels/threadpool.h"
#include "weights/model.h"

typedef struct {
    const char *in_path;  /* a llama2.c checkpoint */
    const char *out_path; /* the .qrz file to write */
    QuantConfig quant;
    int verbose;
} QuantizeOptions;

/* Quantizes (with the pool's threads) and writes the file; says on stderr what it wrote.
 * Returns 0, or -1 with err set. */
int quantize_command(const QuantizeOptions *o, ThreadPool *pool, char *err, size_t errlen);

#endif
