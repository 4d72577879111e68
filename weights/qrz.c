/*
 * weights/qrz.c - writes and maps .qrz files (layout: docs/FORMAT.md).
 */
#include "weights/qrz.h"

#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

enum {
    HEADER_BYTES = 128, /* fixed part */
    ENTRY_BYTES = 32,   /* one tensor table entry */
    ALIGN = 64,         /* every tensor and every array inside one starts on 64 bytes */
    ROLE_EMBEDDING = 0, ROLE_RMS_ATT = 1, ROLE_RMS_FFN = 2, ROLE_RMS_FINAL = 3,
    ROLE_CLASSIFIER = 4, ROLE_LINEAR = 16, /* + 7 * layer + (wq wk wv wo w1 w2 w3) */
};

static uint64_t align_up(uint64_t x) { return (x + ALIGN - 1) / ALIGN * ALIGN; }

static int little_endian_host(void) {
    const uint16_t one = 1;
    return *(const uint8_t *)&one == 1;
}

/* ------------------------------------------------------------------ the tensor list */

/* One tensor of the file: what it is, how it is stored, and (when writing) its data. */
typedef struct {
    uint32_t role;
    Storage storage;
    QuantKind kind;
    int rows, cols;
    uint64_t offset, bytes;
    const float *f32;  /* STORE_F32 */
    const Linear *lin; /* STORE_INT, STORE_R4 */
} Tensor;

/* Sizes of the arrays a stored matrix is made of, in file order; returns how many. */
static int tensor_parts(const Tensor *t, int group, uint64_t part[3]) {
    if (t->storage == STORE_F32) {
        part[0] = (uint64_t)t->rows * (uint64_t)t->cols * sizeof(float);
        return 1;
    }
    if (t->storage == STORE_INT) {
        part[0] = (uint64_t)t->rows * (uint64_t)t->cols; /* codes */
        part[1] = (uint64_t)t->rows * sizeof(float);    /* row scales */
        return 2;
    }
    R4Matrix shape;
    r4_matrix_shape(&shape, t->rows, t->cols, group);
    int n = 0;
    part[n++] = r4_code_bytes(&shape);
    if (t->kind == QUANT_SDR) part[n++] = r4_shift_bytes(&shape);
    part[n++] = r4_scale_bytes(&shape);
    return n;
}

static uint64_t tensor_bytes(const Tensor *t, int group) {
    uint64_t part[3], sum = 0;
    const int n = tensor_parts(t, group, part);
    for (int i = 0; i < n; i++) sum += align_up(part[i]);
    return sum;
}

/* A matrix tensor of this storage, kind and shape; lin holds its data (NULL: not known). */
static Tensor linear_tensor(uint32_t role, Storage st, QuantKind kind, int rows, int cols,
                            const Linear *lin) {
    Tensor t = {role, st, kind, rows, cols, 0, 0, lin ? lin->f32 : NULL, lin};
    return t;
}

static Tensor float_tensor(uint32_t role, int rows, int cols, const float *data) {
    Tensor t = {role, STORE_F32, QUANT_F32, rows, cols, 0, 0, data, NULL};
    return t;
}

/* The tensors a model with this config has, in file order, with their data when m holds
 * them. Returns how many (4 + 7 * n_layers, plus 1 unless the classifier is shared). */
static int model_tensors(const ModelConfig *c, const QuantConfig *q, int shared_cls,
                         const ModelWeights *m, Tensor *out) {
    int n = 0;
    const int dim = c->dim, kv = config_kv_dim(c), hid = c->hidden_dim;
    out[n++] = float_tensor(ROLE_EMBEDDING, c->vocab_size, dim, m ? m->token_embedding : NULL);
    out[n++] = float_tensor(ROLE_RMS_ATT, c->n_layers, dim, m ? m->layers[0].rms_att : NULL);
    out[n++] = float_tensor(ROLE_RMS_FFN, c->n_layers, dim, m ? m->layers[0].rms_ffn : NULL);
    out[n++] = float_tensor(ROLE_RMS_FINAL, 1, dim, m ? m->rms_final : NULL);
    if (!shared_cls)
        out[n++] = linear_tensor(ROLE_CLASSIFIER, storage_for(q->cls, q->cls), q->cls,
                                 c->vocab_size, dim, m ? &m->cls : NULL);
    const Storage st = storage_for(q->weights, q->acts);
    const int rows[7] = {dim, kv, kv, dim, hid, dim, hid}, cols[7] = {dim, dim, dim, dim, dim, hid, dim};
    for (int l = 0; l < c->n_layers; l++) {
        const Linear *lins[7] = {NULL};
        if (m) {
            const LayerWeights *L = &m->layers[l];
            const Linear *all[7] = {&L->wq, &L->wk, &L->wv, &L->wo, &L->w1, &L->w2, &L->w3};
            memcpy(lins, all, sizeof lins);
        }
        for (int j = 0; j < 7; j++)
            out[n++] = linear_tensor((uint32_t)(ROLE_LINEAR + 7 * l + j), st, q->weights, rows[j],
                                     cols[j], lins[j]);
    }
    return n;
}

/* ------------------------------------------------------------------ writing */

static void put_u32(uint8_t *p, uint32_t v) { memcpy(p, &v, 4); }
static void put_u64(uint8_t *p, uint64_t v) { memcpy(p, &v, 8); }
static uint32_t get_u32(const uint8_t *p) { uint32_t v; memcpy(&v, p, 4); return v; }
static uint64_t get_u64(const uint8_t *p) { uint64_t v; memcpy(&v, p, 8); return v; }

/* Writes n bytes and zero padding up to the next 64-byte boundary. */
static int write_padded(FILE *f, const void *data, uint64_t n) {
    static const uint8_t zeros[ALIGN];
    if (n && fwrite(data, 1, n, f) != n) return -1;
    const uint64_t pad = align_up(n) - n;
    return pad && fwrite(zeros, 1, pad, f) != pad ? -1 : 0;
}

static int write_tensor(FILE *f, const Tensor *t) {
    if (t->storage == STORE_F32) {
        const float *data = t->f32 ? t->f32 : t->lin->f32;
        return write_padded(f, data, (uint64_t)t->rows * t->cols * sizeof(float));
    }
    if (t->storage == STORE_INT) {
        const I8Matrix *m = &t->lin->i8;
        return write_padded(f, m->q, (uint64_t)m->rows * m->cols) ||
               write_padded(f, m->scales, (uint64_t)m->rows * sizeof(float));
    }
    const R4Matrix *m = &t->lin->r4;
    return write_padded(f, m->codes, r4_code_bytes(m)) ||
           (m->shifts && write_padded(f, m->shifts, r4_shift_bytes(m))) ||
           write_padded(f, m->scales, r4_scale_bytes(m));
}

int qrz_check_destination(const char *path, char *err, size_t errlen) {
    struct stat st;
    if (lstat(path, &st) != 0) {
        if (errno == ENOENT) return 0; /* a new file (its directory is checked by writing) */
        snprintf(err, errlen, "%s: cannot write: %s", path, strerror(errno));
        return -1;
    }
    if (S_ISLNK(st.st_mode)) {
        snprintf(err, errlen, "%s: is a symbolic link; give the path of the file itself", path);
        return -1;
    }
    if (!S_ISREG(st.st_mode)) {
        const char *what = S_ISDIR(st.st_mode)                           ? "a directory"
                           : S_ISFIFO(st.st_mode)                        ? "a FIFO"
                           : S_ISCHR(st.st_mode) || S_ISBLK(st.st_mode) ? "a device"
                                                                         : "something else";
        snprintf(err, errlen, "%s: is %s, not a regular file: the .qrz goes to a new file or "
                 "replaces a regular one", path, what);
        return -1;
    }
    return 0;
}

/* The permissions the output gets: those of the file it replaces, or what creating a new
 * file gives (0666 less the umask). mkstemp creates its file 0600. */
static mode_t output_mode(const char *path) {
    struct stat st;
    if (lstat(path, &st) == 0) return st.st_mode & 0777;
    const mode_t mask = umask(0);
    umask(mask);
    return 0666 & ~mask;
}

int qrz_write(const ModelWeights *m, const char *path, char *err, size_t errlen) {
    if (!little_endian_host()) {
        snprintf(err, errlen, "%s: .qrz files are little-endian; this host is not", path);
        return -1;
    }
    if (qrz_check_destination(path, err, errlen) != 0) return -1;
    const ModelConfig *c = &m->cfg;
    const QuantConfig *q = &m->quant;
    const int qrazor = q->weights == QUANT_SDR && q->acts == QUANT_SDR;
    if (q->keys != q->values || (qrazor && q->keys != QUANT_SDR)) {
        snprintf(err, errlen, "%s: KV-cache types are chosen when a model runs (-ctk, -ctv), not stored", path);
        return -1;
    }
    const int shared = q->cls == QUANT_F32 && m->cls.f32 == m->token_embedding;
    Tensor *tensors = malloc(((size_t)c->n_layers * 7 + 5) * sizeof *tensors);
    if (!tensors) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    const int n = model_tensors(c, q, shared, m, tensors);
    const uint64_t header_bytes = align_up(HEADER_BYTES + (uint64_t)ENTRY_BYTES * n);
    uint64_t at = header_bytes;
    for (int i = 0; i < n; i++) {
        tensors[i].offset = at;
        tensors[i].bytes = tensor_bytes(&tensors[i], q->group);
        at += tensors[i].bytes;
    }

    uint8_t *header = calloc(1, header_bytes); /* reserved bytes and padding stay 0 */
    if (!header) {
        free(tensors);
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    memcpy(header, QRZ_MAGIC, 8);
    put_u32(header + 8, QRZ_VERSION);
    put_u32(header + 12, (uint32_t)header_bytes);
    const int32_t cfg[7] = {c->dim, c->hidden_dim, c->n_layers, c->n_heads, c->n_kv_heads,
                            c->vocab_size, c->seq_len};
    memcpy(header + 16, cfg, sizeof cfg);
    header[44] = (uint8_t)q->weights;
    header[45] = (uint8_t)q->acts;
    header[46] = (uint8_t)q->keys; /* == values (checked above) */
    header[47] = (uint8_t)q->probs;
    header[48] = (uint8_t)q->cls;
    header[49] = (uint8_t)q->rounding;
    header[50] = (uint8_t)shared;
    put_u32(header + 52, (uint32_t)q->group);
    put_u32(header + 56, (uint32_t)n);
    put_u64(header + 64, at);
    for (int i = 0; i < n; i++) {
        uint8_t *e = header + HEADER_BYTES + (size_t)ENTRY_BYTES * i;
        put_u32(e, tensors[i].role);
        put_u32(e + 4, (uint32_t)tensors[i].storage);
        put_u32(e + 8, (uint32_t)tensors[i].rows);
        put_u32(e + 12, (uint32_t)tensors[i].cols);
        put_u64(e + 16, tensors[i].offset);
        put_u64(e + 24, tensors[i].bytes);
    }

    /* Write a new temporary file beside the destination, flush it to disk, then rename it
     * over the destination: a failed write leaves nothing behind, a file being replaced
     * (perhaps mapped by a running reader) is never truncated, and a crash leaves either
     * the old file or the whole new one. mkstemp creates the temporary with O_EXCL under
     * a random name, so nothing planted in the directory (a symlink "OUT.tmp" to a
     * victim, say) can redirect the write. */
    const size_t tmp_len = strlen(path) + sizeof ".tmp-XXXXXX";
    char *tmp = malloc(tmp_len);
    int error = 0; /* the errno of the first failure */
    FILE *f = NULL;
    if (!tmp) {
        error = ENOMEM;
    } else {
        snprintf(tmp, tmp_len, "%s.tmp-XXXXXX", path);
        const int fd = mkstemp(tmp);
        if (fd < 0) {
            error = errno;
            free(tmp);
            tmp = NULL; /* nothing was created */
        } else if (fchmod(fd, output_mode(path)) != 0 || !(f = fdopen(fd, "wb"))) {
            error = errno;
            close(fd);
        }
    }
    if (f) {
        errno = 0;
        int short_write = fwrite(header, 1, header_bytes, f) != header_bytes;
        for (int i = 0; i < n && !short_write; i++) short_write = write_tensor(f, &tensors[i]) != 0;
        if (short_write || fflush(f) != 0 || fsync(fileno(f)) != 0) error = errno ? errno : EIO;
        if (fclose(f) != 0 && !error) error = errno ? errno : EIO;
        if (!error && rename(tmp, path) != 0) error = errno;
    }
    if (error && tmp) unlink(tmp);
    if (error) snprintf(err, errlen, "%s: cannot write: %s", path, strerror(error));
    free(tmp);
    free(header);
    free(tensors);
    return error ? -1 : 0;
}

/* ------------------------------------------------------------------ reading */

/* Points a Linear at its arrays inside the mapping. The mapping is read-only: the engine
 * never writes weights, and a write would fault rather than corrupt the file. */
static void map_linear(Linear *l, const Tensor *t, const uint8_t *base, int group) {
    uint64_t part[3];
    tensor_parts(t, group, part);
    const uint8_t *p = base + t->offset;
    l->storage = t->storage;
    l->kind = t->kind;
    l->rows = t->rows;
    l->cols = t->cols;
    if (t->storage == STORE_F32) {
        l->f32 = (const float *)p;
    } else if (t->storage == STORE_INT) {
        l->i8 = (I8Matrix){t->rows, t->cols, (int8_t *)p, (float *)(p + align_up(part[0]))};
    } else {
        r4_matrix_shape(&l->r4, t->rows, t->cols, group);
        l->r4.codes = (uint8_t *)p;
        p += align_up(part[0]);
        if (t->kind == QUANT_SDR) {
            l->r4.shifts = (uint8_t *)p;
            p += align_up(part[1]);
        }
        l->r4.scales = (float *)p;
    }
}

static int fail(char *err, size_t errlen, const char *path, const char *what) {
    snprintf(err, errlen, "%s: %s", path, what);
    return -1;
}

/* 1 if a byte of p[0..n) holds a zero nibble, or (shifts) a nibble above 4. */
static int any_zero_nibble(const uint8_t *p, uint64_t n) {
    int found = 0;
    for (uint64_t i = 0; i < n; i++) found |= ((p[i] & 0x0f) == 0) | ((p[i] & 0xf0) == 0);
    return found;
}

static int any_nibble_above_4(const uint8_t *p, uint64_t n) {
    int found = 0;
    for (uint64_t i = 0; i < n; i++) found |= ((p[i] & 0x0f) > 4) | ((p[i] >> 4) > 4);
    return found;
}

/* Index of the first byte of p[0..n) for which test(byte) holds, or -1. Block by block,
 * whole blocks with a constant count (which lets compilers vectorize the scan at -O2). */
static int64_t first_byte(const uint8_t *p, uint64_t n, int (*test)(const uint8_t *, uint64_t)) {
    enum { BLOCK = 4096 };
    for (uint64_t start = 0; start < n; start += BLOCK) {
        const uint64_t len = n - start < BLOCK ? n - start : BLOCK;
        if (!(len == BLOCK ? test(p + start, BLOCK) : test(p + start, len))) continue;
        for (uint64_t i = start;; i++)
            if (test(p + i, 1)) return (int64_t)i;
    }
    return -1;
}

/* The largest magnitude among n stored floats (float32 tensors: any value but NaN and
 * infinity), or -1 with the reason in why. */
static int check_floats(const float *x, uint64_t n, double *max, char *why, size_t len) {
    uint64_t at = 0;
    const float m = float_abs_max(x, n, &at);
    if (m < 0) {
        snprintf(why, len, "holds %s at element %llu", isnan(x[at]) ? "NaN" : "infinity",
                 (unsigned long long)at);
        return -1;
    }
    *max = m;
    return 0;
}

/* Checks the values of a mapped matrix (docs/FORMAT.md, "Values") and gives the largest
 * magnitude its entries can stand for: float32 finite; row scales finite and not
 * negative; 4-bit codes in -7..7 and weight shifts at most 4, so that an entry is at most
 * 7 << 4 = 112 times its row scale (7 times for RTN4, 128 for any INT8 code). */
static int check_linear(const Linear *l, double *max, char *why, size_t len) {
    if (l->storage == STORE_F32)
        return check_floats(l->f32, (uint64_t)l->rows * (uint64_t)l->cols, max, why, len);
    const float *scales = l->storage == STORE_INT ? l->i8.scales : l->r4.scales;
    const uint64_t n_scales = l->storage == STORE_INT ? (uint64_t)l->rows : (uint64_t)l->r4.n_blocks * QR_BLOCK_ROWS;
    uint64_t at = 0;
    const float m = scale_max(scales, n_scales, &at);
    if (m < 0) {
        snprintf(why, len, "has a scale of %g at row %llu (scales are finite, not negative)",
                 scales[at], (unsigned long long)at);
        return -1;
    }
    if (l->storage == STORE_INT) {
        *max = 128.0 * m;
        return 0;
    }
    const R4Matrix *r = &l->r4;
    /* In excess-8 (kernels/qformat.h) the nibble 0 would be the code -8, which is not a
     * 4-bit sign-magnitude code and which no writer produces (padding is the code 0, the
     * nibble 8). */
    const int64_t zero = first_byte(r->codes, r4_code_bytes(r), any_zero_nibble);
    if (zero >= 0) {
        snprintf(why, len, "has a code of -8 (a nibble 0 in code byte %lld), outside -7..7",
                 (long long)zero);
        return -1;
    }
    const int64_t shift = r->shifts ? first_byte(r->shifts, r4_shift_bytes(r), any_nibble_above_4) : -1;
    if (shift >= 0) {
        const uint8_t s = r->shifts[shift];
        snprintf(why, len, "has a shift of %d, but INT8 weights razor at most 4 bits",
                 (s & 15) > 4 ? s & 15 : s >> 4);
        return -1;
    }
    *max = (r->shifts ? 7 << 4 : 7) * (double)m;
    return 0;
}

/* Checks every stored value of a mapped model, and that their magnitudes cannot overflow
 * the forward pass. Returns 0, or -1 with the reason in why. */
static int check_values(const ModelWeights *m, int shared, char *why, size_t len) {
    const ModelConfig *c = &m->cfg;
    WeightMagnitudes mag = {0};
    mag.layers = calloc((size_t)c->n_layers, sizeof *mag.layers);
    if (!mag.layers) {
        snprintf(why, len, "out of memory");
        return -1;
    }
    char reason[160];
    const char *what = NULL;
    int layer = -1;
    if (check_floats(m->token_embedding, (uint64_t)c->vocab_size * c->dim, &mag.embedding, reason, sizeof reason))
        what = "token_embedding";
    else if (check_floats(m->rms_final, (uint64_t)c->dim, &mag.rms_final, reason, sizeof reason))
        what = "rms_final";
    mag.cls = mag.embedding;
    if (!what && !shared && check_linear(&m->cls, &mag.cls, reason, sizeof reason)) what = "classifier";
    for (int l = 0; l < c->n_layers && !what; l++) {
        const LayerWeights *L = &m->layers[l];
        LayerMagnitudes *g = &mag.layers[l];
        const struct {
            const char *name;
            const Linear *lin;
            double *max;
        } lins[] = {{"wq", &L->wq, &g->wq}, {"wk", &L->wk, &g->wk}, {"wv", &L->wv, &g->wv},
                    {"wo", &L->wo, &g->wo}, {"w1", &L->w1, &g->w1}, {"w2", &L->w2, &g->w2},
                    {"w3", &L->w3, &g->w3}};
        layer = l;
        if (check_floats(L->rms_att, (uint64_t)c->dim, &g->rms_att, reason, sizeof reason))
            what = "rms_att";
        else if (check_floats(L->rms_ffn, (uint64_t)c->dim, &g->rms_ffn, reason, sizeof reason))
            what = "rms_ffn";
        for (size_t j = 0; j < sizeof lins / sizeof lins[0] && !what; j++)
            if (check_linear(lins[j].lin, lins[j].max, reason, sizeof reason)) what = lins[j].name;
    }
    int rc = 0;
    if (what) {
        if (layer >= 0)
            snprintf(why, len, "layer %d %s %s", layer, what, reason);
        else
            snprintf(why, len, "%s %s", what, reason);
        rc = -1;
    } else {
        rc = magnitudes_check(c, &mag, why, len);
    }
    free(mag.layers);
    return rc;
}

int qrz_open(ModelWeights *m, const char *path, char *err, size_t errlen) {
    memset(m, 0, sizeof *m);
    if (!little_endian_host()) return fail(err, errlen, path, ".qrz files are little-endian; this host is not");
    void *map;
    size_t size;
    if (map_file(path, &map, &size, err, errlen) != 0) return -1;
    const uint8_t *b = map;
    char why[400];
    Tensor *tensors = NULL;
#define REJECT(...)                                                  \
    do {                                                             \
        snprintf(why, sizeof why, __VA_ARGS__);                      \
        goto invalid;                                                \
    } while (0)

    if (size < HEADER_BYTES) REJECT("truncated: %zu bytes, the header alone is %d", size, HEADER_BYTES);
    if (memcmp(b, QRZ_MAGIC, 8) != 0) REJECT("not a .qrz file (bad magic)");
    const uint32_t version = get_u32(b + 8);
    if (version != QRZ_VERSION)
        REJECT("format version %u, but this build reads version %d only", version, QRZ_VERSION);
    /* Reserved bytes are 0, so that a later version can give them a meaning. */
    static const int reserved[][2] = {{51, 52}, {60, 64}, {72, HEADER_BYTES}};
    for (size_t r = 0; r < sizeof reserved / sizeof reserved[0]; r++)
        for (int i = reserved[r][0]; i < reserved[r][1]; i++)
            if (b[i] != 0) REJECT("reserved header byte %d is %u, not 0", i, b[i]);
    int32_t cfg[7];
    memcpy(cfg, b + 16, sizeof cfg);
    ModelConfig c = {cfg[0], cfg[1], cfg[2], cfg[3], cfg[4], cfg[5], cfg[6], LLAMA2_ROPE_THETA, LLAMA2_NORM_EPS};
    if (config_validate(&c, why, sizeof why) != 0) goto invalid;
    for (int i = 44; i <= 48; i++)
        if (b[i] > QUANT_RTN4) REJECT("unknown quantization kind %u at byte %d", b[i], i);
    /* Byte 46 is the KV cache's base kind; qrazor's cache types (r5, i8) are chosen at run
     * time, not stored. */
    QuantConfig q = {(QuantKind)b[44], (QuantKind)b[45], (QuantKind)b[46], (QuantKind)b[46], (QuantKind)b[47],
                     (QuantKind)b[48], (int)get_u32(b + 52), b[49]};
    const int shared = b[50];
    if (b[49] > 1 || shared > 1) REJECT("corrupt flags (rounding %u, shared classifier %u)", b[49], b[50]);
    if (quant_config_check(&q, why, sizeof why) != 0) goto invalid;
    if (shared && q.cls != QUANT_F32) REJECT("a shared classifier must be float32");
    if (get_u64(b + 64) != size)
        REJECT("file is %zu bytes but its header says %llu (truncated or appended to)", size,
               (unsigned long long)get_u64(b + 64));

    /* The tensor table must list exactly the tensors this config implies. */
    tensors = malloc(((size_t)c.n_layers * 7 + 5) * sizeof *tensors);
    if (!tensors) REJECT("out of memory");
    const int n = model_tensors(&c, &q, shared, NULL, tensors);
    const uint64_t header_bytes = align_up(HEADER_BYTES + (uint64_t)ENTRY_BYTES * n);
    if (get_u32(b + 56) != (uint32_t)n)
        REJECT("tensor table has %u entries, the model needs %d", get_u32(b + 56), n);
    if (get_u32(b + 12) != header_bytes || header_bytes > size)
        REJECT("header size %u is not the %llu its table needs", get_u32(b + 12),
               (unsigned long long)header_bytes);
    for (uint64_t i = HEADER_BYTES + (uint64_t)ENTRY_BYTES * n; i < header_bytes; i++)
        if (b[i] != 0) REJECT("byte %llu, padding after the tensor table, is %u, not 0",
                              (unsigned long long)i, b[i]);
    uint64_t end = header_bytes;
    for (int i = 0; i < n; i++) {
        const uint8_t *e = b + HEADER_BYTES + (size_t)ENTRY_BYTES * i;
        Tensor *t = &tensors[i];
        if (get_u32(e) != t->role || get_u32(e + 4) != (uint32_t)t->storage ||
            (int32_t)get_u32(e + 8) != t->rows || (int32_t)get_u32(e + 12) != t->cols)
            REJECT("tensor %d is role %u storage %u shape %dx%d, expected role %u storage %u "
                   "shape %dx%d", i, get_u32(e), get_u32(e + 4), (int32_t)get_u32(e + 8),
                   (int32_t)get_u32(e + 12), t->role, t->storage, t->rows, t->cols);
        t->offset = get_u64(e + 16);
        t->bytes = get_u64(e + 24);
        if (t->bytes != tensor_bytes(t, q.group))
            REJECT("tensor %d has %llu bytes, its shape needs %llu", i,
                   (unsigned long long)t->bytes, (unsigned long long)tensor_bytes(t, q.group));
        if (t->offset % ALIGN != 0 || t->offset < end || t->offset > size || t->bytes > size - t->offset)
            REJECT("tensor %d at offset %llu (+%llu) is misaligned, overlaps or runs past the end",
                   i, (unsigned long long)t->offset, (unsigned long long)t->bytes);
        end = t->offset + t->bytes;
    }
    if (end != size) REJECT("%llu bytes after the last tensor", (unsigned long long)(size - end));

    /* The layout is sound: point the model at the mapping, then check the values. */
    m->layers = calloc((size_t)c.n_layers, sizeof *m->layers);
    if (!m->layers) REJECT("out of memory");
    m->cfg = c;
    m->quant = q;
    const Tensor *t = tensors;
    m->token_embedding = (const float *)(b + t[0].offset);
    const float *rms_att = (const float *)(b + t[1].offset), *rms_ffn = (const float *)(b + t[2].offset);
    m->rms_final = (const float *)(b + t[3].offset);
    t += 4;
    if (shared) {
        m->cls = (Linear){STORE_F32, QUANT_F32, c.vocab_size, c.dim, m->token_embedding, {0}, {0}};
    } else {
        map_linear(&m->cls, t++, b, q.group);
    }
    for (int l = 0; l < c.n_layers; l++) {
        LayerWeights *L = &m->layers[l];
        L->rms_att = rms_att + (size_t)l * c.dim;
        L->rms_ffn = rms_ffn + (size_t)l * c.dim;
        Linear *lins[7] = {&L->wq, &L->wk, &L->wv, &L->wo, &L->w1, &L->w2, &L->w3};
        for (int j = 0; j < 7; j++) map_linear(lins[j], t++, b, q.group);
    }
    if (check_values(m, shared, why, sizeof why) != 0) goto invalid;
#undef REJECT
    free(tensors);
    m->qrz_map = map;
    m->qrz_size = size;
    return 0;

invalid:
    free(m->layers);
    memset(m, 0, sizeof *m);
    free(tensors);
    unmap_file(map, size);
    snprintf(err, errlen, "%s: not a valid .qrz file: %s", path, why);
    return -1;
}
