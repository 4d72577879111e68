/*
 * weights/model.h - opening a model file: a llama2.c checkpoint (quantized at load, here)
 * or a .qrz file (already quantized, memory-mapped by weights/qrz.c), into the weights of
 * weights/weights.h.
 */
#ifndef WEIGHTS_MODEL_H
#define WEIGHTS_MODEL_H

#include <stddef.h>

#include "kernels/threadpool.h"
#include "weights/weights.h"

/* Opens a model file of either format, told apart by content:
 *   - a .qrz file: its quantization is fixed; *q (if not NULL) receives it;
 *   - a llama2.c checkpoint: quantized at load as *q says (with the pool's threads).
 * Returns 0, or -1 with a message naming the file in err. */
int model_open(ModelWeights *m, const char *path, const QuantConfig *q, ThreadPool *pool,
               char *err, size_t errlen);
void model_close(ModelWeights *m);

/* 1 if the file at path starts like a .qrz file. */
int model_is_qrz(const char *path);

#endif
