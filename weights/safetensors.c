/*
 * weights/safetensors.c - maps safetensors files and checks every header field before a
 * byte of tensor data is touched (format and checks: safetensors.h).
 */
#define _DEFAULT_SOURCE /* madvise(MADV_DONTNEED): posix_madvise's DONTNEED is a no-op on Linux */

#include "weights/safetensors.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "weights/file.h" /* map_file */
#include "weights/json.h"

#define INDEX_NAME "model.safetensors.index.json"
#define SINGLE_NAME "model.safetensors"

static const struct {
    const char *name;
    unsigned size;
} dtypes[ST_N_DTYPES] = {
    [ST_BOOL] = {"BOOL", 1}, [ST_U8] = {"U8", 1},     [ST_I8] = {"I8", 1},
    [ST_F8_E5M2] = {"F8_E5M2", 1}, [ST_F8_E4M3] = {"F8_E4M3", 1}, [ST_I16] = {"I16", 2},
    [ST_U16] = {"U16", 2},   [ST_F16] = {"F16", 2},   [ST_BF16] = {"BF16", 2},
    [ST_I32] = {"I32", 4},   [ST_U32] = {"U32", 4},   [ST_F32] = {"F32", 4},
    [ST_F64] = {"F64", 8},   [ST_I64] = {"I64", 8},   [ST_U64] = {"U64", 8},
};

const char *safetensors_dtype_name(SafeDtype d) { return dtypes[d].name; }

int safetensors_dtype_is_float(SafeDtype d) { return d == ST_F32 || d == ST_F16 || d == ST_BF16; }

__attribute__((format(printf, 3, 4))) static int fail(char *err, size_t errlen, const char *fmt,
                                                      ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    return -1;
}

/* ------------------------------------------------------------------ one file's header */

void safetensors_shape_text(const SafeTensor *t, char *buf, size_t len) {
    size_t n = (size_t)snprintf(buf, len, "[");
    for (int i = 0; i < t->ndim && n < len; i++)
        n += (size_t)snprintf(buf + n, len - n, "%s%llu", i ? ", " : "",
                              (unsigned long long)t->shape[i]);
    if (n < len) snprintf(buf + n, len - n, "]");
}

/* Reads one header entry {"dtype", "shape", "data_offsets"} into t, with its offsets in
 * *begin and *end (relative to the data). */
static int parse_entry(const JsonDoc *doc, const JsonValue *e, uint64_t data_size, SafeTensor *t,
                       uint64_t *begin, uint64_t *end, const char *path, char *err, size_t errlen) {
    const char *name = e->key;
    if (e->type != JSON_OBJECT)
        return fail(err, errlen, "%s: tensor %s: header entry is %s, not an object", path, name,
                    json_type_name(e->type));
    for (const JsonValue *m = json_first(doc, e); m; m = json_next(doc, m))
        if (strcmp(m->key, "dtype") && strcmp(m->key, "shape") && strcmp(m->key, "data_offsets"))
            return fail(err, errlen, "%s: tensor %s: unknown header field \"%.40s\"", path, name,
                        m->key);
    const JsonValue *dt = json_get(doc, e, "dtype"), *shape = json_get(doc, e, "shape"),
                    *off = json_get(doc, e, "data_offsets");
    if (!dt || !shape || !off)
        return fail(err, errlen, "%s: tensor %s: header entry has no \"%s\"", path, name,
                    !dt ? "dtype" : !shape ? "shape" : "data_offsets");
    if (dt->type != JSON_STRING)
        return fail(err, errlen, "%s: tensor %s: dtype is %s, not a string", path, name,
                    json_type_name(dt->type));
    int d = 0;
    while (d < ST_N_DTYPES && strcmp(dt->text, dtypes[d].name) != 0) d++;
    if (d == ST_N_DTYPES)
        return fail(err, errlen, "%s: tensor %s: unknown dtype \"%.20s\"", path, name, dt->text);
    t->dtype = (SafeDtype)d;

    if (shape->type != JSON_ARRAY || shape->n_children > ST_MAX_DIMS)
        return fail(err, errlen, "%s: tensor %s: shape must be an array of at most %d integers",
                    path, name, ST_MAX_DIMS);
    t->ndim = 0;
    t->n_elements = 1;
    for (const JsonValue *s = json_first(doc, shape); s; s = json_next(doc, s)) {
        uint64_t n;
        if (json_u64(s, &n) != 0)
            return fail(err, errlen, "%s: tensor %s: shape holds %s that is not a non-negative "
                        "integer", path, name, json_type_name(s->type));
        if (n != 0 && t->n_elements > UINT64_MAX / n)
            return fail(err, errlen, "%s: tensor %s: shape overflows 64 bits", path, name);
        t->shape[t->ndim++] = n;
        t->n_elements *= n;
    }

    const JsonValue *b = json_first(doc, off), *e2 = b ? json_next(doc, b) : NULL;
    if (off->type != JSON_ARRAY || off->n_children != 2 || json_u64(b, begin) != 0 ||
        json_u64(e2, end) != 0)
        return fail(err, errlen, "%s: tensor %s: data_offsets must be two non-negative integers",
                    path, name);
    if (*end < *begin)
        return fail(err, errlen, "%s: tensor %s: data_offsets [%llu, %llu] end before they begin",
                    path, name, (unsigned long long)*begin, (unsigned long long)*end);
    if (*end > data_size)
        return fail(err, errlen, "%s: tensor %s: data_offsets [%llu, %llu] run past the end of "
                    "the data (%llu bytes): is the file truncated?", path, name,
                    (unsigned long long)*begin, (unsigned long long)*end,
                    (unsigned long long)data_size);
    t->bytes = *end - *begin;
    const unsigned size = dtypes[t->dtype].size;
    if (t->n_elements > UINT64_MAX / size || t->n_elements * size != t->bytes) {
        char sh[128];
        safetensors_shape_text(t, sh, sizeof sh);
        return fail(err, errlen, "%s: tensor %s: shape %s of %s does not fit data_offsets "
                    "[%llu, %llu] (%llu bytes)", path, name, sh, dtypes[t->dtype].name,
                    (unsigned long long)*begin, (unsigned long long)*end,
                    (unsigned long long)t->bytes);
    }
    return 0;
}

typedef struct {
    uint64_t begin, end;
    const char *name;
} Extent;

static int extent_cmp(const void *a, const void *b) {
    const Extent *x = a, *y = b;
    if (x->begin != y->begin) return x->begin < y->begin ? -1 : 1;
    if (x->end != y->end) return x->end < y->end ? -1 : 1;
    return 0;
}

/* The tensors must tile the data: sorted by offset, each begins where the previous one
 * ended, from 0 to the end of the file. */
static int check_tiling(Extent *ex, int n, uint64_t data_size, const char *path, char *err,
                        size_t errlen) {
    qsort(ex, (size_t)n, sizeof *ex, extent_cmp);
    uint64_t at = 0;
    for (int i = 0; i < n; i++) {
        if (ex[i].begin < at)
            return fail(err, errlen, "%s: tensor %s: data_offsets [%llu, %llu] overlap tensor "
                        "%s, which ends at %llu", path, ex[i].name,
                        (unsigned long long)ex[i].begin, (unsigned long long)ex[i].end,
                        ex[i - 1].name, (unsigned long long)at);
        if (ex[i].begin > at)
            return fail(err, errlen, "%s: tensor %s: data_offsets [%llu, %llu] leave %llu unused "
                        "bytes before it", path, ex[i].name, (unsigned long long)ex[i].begin,
                        (unsigned long long)ex[i].end, (unsigned long long)(ex[i].begin - at));
        at = ex[i].end;
    }
    if (at != data_size)
        return fail(err, errlen, "%s: %llu bytes after the last tensor's data (the header "
                    "accounts for %llu of %llu)", path, (unsigned long long)(data_size - at),
                    (unsigned long long)at, (unsigned long long)data_size);
    return 0;
}

/* Appends a tensor slot to st; returns it or NULL. */
static SafeTensor *grow_tensors(SafeTensors *st, int *cap) {
    if (st->n_tensors == *cap) {
        const int c = *cap ? 2 * *cap : 64;
        SafeTensor *t = realloc(st->tensors, (size_t)c * sizeof *t);
        if (!t) return NULL;
        st->tensors = t;
        *cap = c;
    }
    return &st->tensors[st->n_tensors++];
}

/* Validates file number f of st (its bytes at st->files[f].map) and appends its tensors. */
static int parse_file(SafeTensors *st, int f, int *cap, char *err, size_t errlen) {
    SafeFile *file = &st->files[f];
    const char *path = file->path;
    const uint8_t *bytes = file->map;
    const size_t size = file->size;
    if (size < 8)
        return fail(err, errlen, "%s: truncated: %zu bytes, a safetensors file starts with an "
                    "8-byte header length", path, size);
    uint64_t hlen = 0;
    for (int i = 7; i >= 0; i--) hlen = hlen << 8 | bytes[i];
    if (hlen > size - 8)
        return fail(err, errlen, "%s: header length %llu runs past the end of the file (%zu "
                    "bytes): truncated, or not a safetensors file", path,
                    (unsigned long long)hlen, size);
    if (hlen > JSON_MODEL_FILE_LIMITS.max_bytes) /* the format allows 100 MB; no LLaMA needs 1 */
        return fail(err, errlen, "%s: header length %llu is more than the %zu bytes (%.0f MiB) this reader accepts",
                    path, (unsigned long long)hlen, JSON_MODEL_FILE_LIMITS.max_bytes,
                    JSON_MODEL_FILE_LIMITS.max_bytes / 1048576.0);
    JsonDoc *doc = calloc(1, sizeof *doc);
    if (!doc) return fail(err, errlen, "%s: out of memory", path);
    char why[256];
    if (json_parse(doc, (const char *)bytes + 8, (size_t)hlen, JSON_MODEL_FILE_LIMITS, why, sizeof why) != 0) {
        free(doc);
        return fail(err, errlen, "%s: header: %s", path, why);
    }
    file->header = doc;
    const JsonValue *root = &doc->values[0];
    if (root->type != JSON_OBJECT)
        return fail(err, errlen, "%s: header is %s, not an object", path,
                    json_type_name(root->type));

    const uint64_t data_size = size - 8 - hlen;
    const uint8_t *data = bytes + 8 + hlen;
    Extent *ex = malloc((size_t)(root->n_children ? root->n_children : 1) * sizeof *ex);
    if (!ex) return fail(err, errlen, "%s: out of memory", path);
    int n = 0;
    for (const JsonValue *e = json_first(doc, root); e; e = json_next(doc, e)) {
        if (strcmp(e->key, "__metadata__") == 0) { /* free-form strings: checked, not used */
            int ok = e->type == JSON_OBJECT;
            for (const JsonValue *m = json_first(doc, e); ok && m; m = json_next(doc, m))
                ok = m->type == JSON_STRING;
            if (!ok) {
                free(ex);
                return fail(err, errlen, "%s: __metadata__ must be an object of strings", path);
            }
            continue;
        }
        SafeTensor *t = grow_tensors(st, cap);
        if (!t) {
            free(ex);
            return fail(err, errlen, "%s: out of memory", path);
        }
        memset(t, 0, sizeof *t);
        t->name = e->key;
        t->file = f;
        if (parse_entry(doc, e, data_size, t, &ex[n].begin, &ex[n].end, path, err, errlen) != 0) {
            free(ex);
            return -1;
        }
        t->data = data + ex[n].begin;
        ex[n].name = t->name;
        n++;
    }
    const int rc = check_tiling(ex, n, data_size, path, err, errlen);
    free(ex);
    return rc;
}

/* ------------------------------------------------------------------ files and directories */

static int name_cmp(const void *a, const void *b) {
    return strcmp(((const SafeTensor *)a)->name, ((const SafeTensor *)b)->name);
}

/* Sorts the tensors by name and refuses a name held twice (in two shards). */
static int sort_and_check_names(SafeTensors *st, char *err, size_t errlen) {
    if (st->n_tensors > 1) /* a file may hold no tensor: then tensors is NULL */
        qsort(st->tensors, (size_t)st->n_tensors, sizeof *st->tensors, name_cmp);
    for (int i = 1; i < st->n_tensors; i++) {
        const SafeTensor *a = &st->tensors[i - 1], *b = &st->tensors[i];
        if (strcmp(a->name, b->name) == 0)
            return fail(err, errlen, "%s: tensor %s is also in %s", st->files[b->file].path,
                        b->name, st->files[a->file].path);
    }
    return 0;
}

/* Adds a file slot holding path (copied) and these bytes. */
static int add_file(SafeTensors *st, const char *path, void *map, size_t size, int owned,
                    char *err, size_t errlen) {
    SafeFile *f = realloc(st->files, (size_t)(st->n_files + 1) * sizeof *f);
    if (!f) return fail(err, errlen, "%s: out of memory", path);
    st->files = f;
    f = &st->files[st->n_files];
    memset(f, 0, sizeof *f);
    f->path = malloc(strlen(path) + 1);
    if (!f->path) {
        if (owned) unmap_file(map, size);
        return fail(err, errlen, "%s: out of memory", path);
    }
    strcpy(f->path, path);
    f->map = map;
    f->size = size;
    f->mapped = owned;
    st->n_files++;
    return 0;
}

/* Maps path and validates it as file number st->n_files. */
static int open_file(SafeTensors *st, const char *path, int *cap, char *err, size_t errlen) {
    void *map;
    size_t size;
    if (map_file(path, &map, &size, err, errlen) != 0) return -1;
    if (add_file(st, path, map, size, 1, err, errlen) != 0) return -1;
    return parse_file(st, st->n_files - 1, cap, err, errlen);
}

int safetensors_open_buffer(SafeTensors *st, const char *path, const void *buf, size_t size,
                            char *err, size_t errlen) {
    memset(st, 0, sizeof *st);
    int cap = 0;
    if (add_file(st, path, (void *)buf, size, 0, err, errlen) != 0) return -1;
    if (parse_file(st, 0, &cap, err, errlen) != 0 || sort_and_check_names(st, err, errlen) != 0) {
        safetensors_close(st);
        return -1;
    }
    return 0;
}

static int shard_name_cmp(const void *a, const void *b) {
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static const char *base_name(const char *path) {
    const char *s = strrchr(path, '/');
    return s ? s + 1 : path;
}

/* Opens the shards that dir/model.safetensors.index.json names, and checks that the index
 * and the shards agree tensor by tensor. */
static int open_sharded(SafeTensors *st, const char *dir, const char *index_path, char *err,
                        size_t errlen) {
    void *map;
    size_t size;
    if (map_file(index_path, &map, &size, err, errlen) != 0) return -1;
    JsonDoc doc;
    char why[256];
    if (json_parse(&doc, map, size, JSON_MODEL_FILE_LIMITS, why, sizeof why) != 0) {
        unmap_file(map, size);
        return fail(err, errlen, "%s: %s", index_path, why);
    }
    unmap_file(map, size);
    int rc = -1, cap = 0, n_shards = 0;
    const char **shards = NULL;
    const JsonValue *wm = json_get(&doc, &doc.values[0], "weight_map");
    if (!wm || wm->type != JSON_OBJECT || wm->n_children == 0) {
        fail(err, errlen, "%s: no \"weight_map\" object naming the tensors' shards", index_path);
        goto out;
    }
    shards = malloc((size_t)wm->n_children * sizeof *shards);
    if (!shards) {
        fail(err, errlen, "%s: out of memory", index_path);
        goto out;
    }
    for (const JsonValue *m = json_first(&doc, wm); m; m = json_next(&doc, m)) {
        if (m->type != JSON_STRING || m->len == 0 || m->len > 255 || strchr(m->text, '/') ||
            m->text[0] == '.') {
            fail(err, errlen, "%s: weight_map: tensor %s: the shard must be a file name in the "
                 "same directory", index_path, m->key);
            goto out;
        }
        shards[n_shards++] = m->text;
    }
    qsort(shards, (size_t)n_shards, sizeof *shards, shard_name_cmp);
    int unique = 0;
    for (int i = 0; i < n_shards; i++)
        if (i == 0 || strcmp(shards[i], shards[unique - 1]) != 0) shards[unique++] = shards[i];
    for (int i = 0; i < unique; i++) {
        char path[4096];
        if ((size_t)snprintf(path, sizeof path, "%s/%s", dir, shards[i]) >= sizeof path) {
            fail(err, errlen, "%s/%s: path too long", dir, shards[i]);
            goto out;
        }
        if (access(path, F_OK) != 0) {
            fail(err, errlen, "%s: names shard %s, but %s does not exist", index_path, shards[i],
                 path);
            goto out;
        }
        if (open_file(st, path, &cap, err, errlen) != 0) goto out;
    }
    if (sort_and_check_names(st, err, errlen) != 0) goto out;
    for (const JsonValue *m = json_first(&doc, wm); m; m = json_next(&doc, m)) {
        const SafeTensor *t = safetensors_find(st, m->key);
        if (!t || strcmp(base_name(st->files[t->file].path), m->text) != 0) {
            fail(err, errlen, "%s: tensor %s is listed in shard %s, which does not hold it",
                 index_path, m->key, m->text);
            goto out;
        }
    }
    for (int i = 0; i < st->n_tensors; i++) {
        if (!json_get(&doc, wm, st->tensors[i].name)) {
            fail(err, errlen, "%s: tensor %s is not in the index %s",
                 st->files[st->tensors[i].file].path, st->tensors[i].name, index_path);
            goto out;
        }
    }
    rc = 0;
out:
    free(shards);
    json_free(&doc);
    return rc;
}

int safetensors_open(SafeTensors *st, const char *path, char *err, size_t errlen) {
    memset(st, 0, sizeof *st);
    struct stat sb;
    if (stat(path, &sb) != 0)
        return fail(err, errlen, "%s: cannot open: %s", path, strerror(errno));
    int rc, cap = 0;
    if (!S_ISDIR(sb.st_mode)) {
        rc = open_file(st, path, &cap, err, errlen);
        if (rc == 0) rc = sort_and_check_names(st, err, errlen);
    } else {
        char index[4096], single[4096], pt[4096];
        snprintf(index, sizeof index, "%s/%s", path, INDEX_NAME);
        snprintf(single, sizeof single, "%s/%s", path, SINGLE_NAME);
        snprintf(pt, sizeof pt, "%s/%s", path, "pytorch_model.bin");
        if (access(index, F_OK) == 0) {
            rc = open_sharded(st, path, index, err, errlen);
        } else if (access(single, F_OK) == 0) {
            rc = open_file(st, single, &cap, err, errlen);
            if (rc == 0) rc = sort_and_check_names(st, err, errlen);
        } else {
            rc = fail(err, errlen, "%s: no %s or %s%s", path, SINGLE_NAME, INDEX_NAME,
                      access(pt, F_OK) == 0 ? " (only PyTorch's pytorch_model.bin, which this "
                      "engine does not read: save the model with safetensors)" : "");
        }
    }
    if (rc != 0) safetensors_close(st);
    return rc;
}

void safetensors_close(SafeTensors *st) {
    for (int i = 0; i < st->n_files; i++) {
        SafeFile *f = &st->files[i];
        if (f->mapped) unmap_file(f->map, f->size);
        if (f->header) {
            json_free(f->header);
            free(f->header);
        }
        free(f->path);
    }
    free(st->files);
    free(st->tensors);
    memset(st, 0, sizeof *st);
}

const SafeTensor *safetensors_find(const SafeTensors *st, const char *name) {
    if (st->n_tensors == 0) return NULL;
    const SafeTensor key = {.name = name};
    return bsearch(&key, st->tensors, (size_t)st->n_tensors, sizeof key, name_cmp);
}

/* ------------------------------------------------------------------ reading */

float safetensors_bf16_to_f32(uint16_t b) {
    const uint32_t bits = (uint32_t)b << 16; /* bfloat16 is the top half of a float32 */
    float x;
    memcpy(&x, &bits, sizeof x);
    return x;
}

float safetensors_f16_to_f32(uint16_t h) {
    const uint32_t sign = (uint32_t)(h >> 15) << 31, exp = h >> 10 & 0x1F, mant = h & 0x3FF;
    uint32_t bits;
    if (exp == 0x1F) {
        bits = sign | 0x7F800000u | mant << 13; /* infinity or NaN */
    } else if (exp != 0) {
        bits = sign | (exp + 127 - 15) << 23 | mant << 13; /* normal: rebias the exponent */
    } else {
        const float x = (float)mant * 0x1p-24f; /* zero or subnormal: exact in float32 */
        return sign ? -x : x;
    }
    float x;
    memcpy(&x, &bits, sizeof x);
    return x;
}

int safetensors_read(const SafeTensor *t, uint64_t first, uint64_t count, float *out) {
    if (!safetensors_dtype_is_float(t->dtype) || first > t->n_elements ||
        count > t->n_elements - first)
        return -1;
    /* The file is little-endian and its data may sit at any alignment: assemble each value
     * from bytes (compilers turn this into plain loads). */
    const uint8_t *p = t->data + first * dtypes[t->dtype].size;
    if (t->dtype == ST_F32) {
        for (uint64_t i = 0; i < count; i++, p += 4) {
            const uint32_t bits = (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
                                  (uint32_t)p[3] << 24;
            memcpy(&out[i], &bits, sizeof bits);
        }
    } else if (t->dtype == ST_BF16) {
        for (uint64_t i = 0; i < count; i++, p += 2)
            out[i] = safetensors_bf16_to_f32((uint16_t)(p[0] | p[1] << 8));
    } else {
        for (uint64_t i = 0; i < count; i++, p += 2)
            out[i] = safetensors_f16_to_f32((uint16_t)(p[0] | p[1] << 8));
    }
    return 0;
}

void safetensors_release(const SafeTensors *st, const SafeTensor *t) {
    const SafeFile *f = &st->files[t->file];
    if (!f->mapped || t->bytes == 0) return; /* not a mapping of ours */
    const uintptr_t page = (uintptr_t)sysconf(_SC_PAGESIZE);
    const uintptr_t lo = (uintptr_t)t->data / page * page,
                    hi = ((uintptr_t)t->data + t->bytes + page - 1) / page * page;
    /* Neighbouring tensors sharing an edge page lose nothing: a later read faults the
     * page back in from the page cache. The mapping is read-only and private, so dropping
     * pages never loses data. */
    madvise((void *)lo, hi - lo, MADV_DONTNEED);
}
