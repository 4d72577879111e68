/*
 * weights/safetensors.h - Hugging Face safetensors files, memory-mapped and validated.
 *
 * A .safetensors file (all little-endian):
 *
 *   uint64  header_len                 N
 *   char    header[N]                  JSON: {"NAME": {"dtype": "BF16", "shape": [rows, cols],
 *                                              "data_offsets": [begin, end]}, ...,
 *                                       "__metadata__": {"key": "value", ...}}  (optional)
 *   bytes   data                       every tensor, row-major, at [begin, end) of data
 *
 * A large model is split into shards, model-00001-of-00003.safetensors and so on, and
 * model.safetensors.index.json maps every tensor name to its shard:
 *   {"metadata": {...}, "weight_map": {"NAME": "model-00001-of-00003.safetensors", ...}}
 *
 * Before any tensor is read, every header is checked as the format's reference
 * implementation checks it: the header lies inside the file and is JSON of the shape
 * above; every dtype is known; shape x dtype size == end - begin (without overflow);
 * sorted by offset, the tensors tile the data exactly (the first begins at 0, each begins
 * where the one before ended, the last ends at the end of the file: nothing overlaps, no
 * gap, nothing past the end); names are unique across all shards; the index and the
 * shards agree. Any problem is one message naming the file and the tensor or field.
 *
 * Tensors are read as float32 (from F32, F16 or BF16) a range of elements at a time into
 * the caller's buffer, so that a model larger than memory streams through.
 */
#ifndef WEIGHTS_SAFETENSORS_H
#define WEIGHTS_SAFETENSORS_H

#include <stddef.h>
#include <stdint.h>

/* The dtypes of the format; the importer converts the three float ones. */
typedef enum {
    ST_BOOL, ST_U8, ST_I8, ST_F8_E5M2, ST_F8_E4M3, ST_I16, ST_U16, ST_F16, ST_BF16,
    ST_I32, ST_U32, ST_F32, ST_F64, ST_I64, ST_U64, ST_N_DTYPES
} SafeDtype;

enum { ST_MAX_DIMS = 8 };

typedef struct {
    const char *name;
    SafeDtype dtype;
    int ndim;
    uint64_t shape[ST_MAX_DIMS];
    uint64_t n_elements;  /* product of the shape (1 for a scalar) */
    const uint8_t *data;  /* into the file's mapping */
    uint64_t bytes;       /* end - begin */
    int file;             /* index into SafeTensors.files */
} SafeTensor;

typedef struct {
    char *path;
    void *map;
    size_t size;
    int mapped;   /* 1: map is our mapping of the file; 0: the caller's buffer */
    void *header; /* the parsed JSON header, which owns the tensor names (a JsonDoc) */
} SafeFile;

typedef struct {
    SafeFile *files;
    int n_files;
    SafeTensor *tensors; /* sorted by name */
    int n_tensors;
} SafeTensors;

/* Opens a .safetensors file, or a directory holding model.safetensors.index.json and its
 * shards, or a single model.safetensors. Returns 0, or -1 with err set ("FILE: problem"). */
int safetensors_open(SafeTensors *st, const char *path, char *err, size_t errlen);

/* Validates one file already in memory (used by safetensors_open, and by the fuzzer);
 * `path` names it in messages. The buffer must outlive st. Returns 0, or -1 with err set. */
int safetensors_open_buffer(SafeTensors *st, const char *path, const void *buf, size_t size,
                            char *err, size_t errlen);

void safetensors_close(SafeTensors *st);

/* The tensor called name, or NULL. */
const SafeTensor *safetensors_find(const SafeTensors *st, const char *name);

/* The name of a dtype as the format spells it ("BF16"). */
const char *safetensors_dtype_name(SafeDtype d);

/* "[a, b, c]": a tensor's shape, for messages. */
void safetensors_shape_text(const SafeTensor *t, char *buf, size_t len);

/* 1 if the dtype is one safetensors_read() converts (F32, F16, BF16). */
int safetensors_dtype_is_float(SafeDtype d);

/* Converts elements [first, first + count) of t to float32 into out. The caller checks
 * the dtype and range (safetensors_dtype_is_float, n_elements); returns -1 otherwise. */
int safetensors_read(const SafeTensor *t, uint64_t first, uint64_t count, float *out);

/* Tells the kernel the pages of t will not be read again, so that they leave this
 * process's resident set (they stay in the page cache): streaming through a model then
 * costs the memory of one tensor, not of the file. */
void safetensors_release(const SafeTensors *st, const SafeTensor *t);

/* The float32 value of an IEEE half and of a bfloat16, exactly. */
float safetensors_f16_to_f32(uint16_t h);
float safetensors_bf16_to_f32(uint16_t b);

#endif
