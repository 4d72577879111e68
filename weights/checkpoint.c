/*
 * weights/checkpoint.c - maps a llama2.c checkpoint and validates it before use.
 *
 * The order of checks matters: the header is checked alone first (so that the size
 * arithmetic below can never overflow), then the file size must equal exactly what the
 * header implies. Only then are tensor pointers formed.
 */
#include "weights/checkpoint.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

int map_file(const char *path, void **map, size_t *size, char *err, size_t errlen) {
    int fd = open(path, O_RDONLY);
    if (fd < 0) {
        snprintf(err, errlen, "%s: cannot open: %s", path, strerror(errno));
        return -1;
    }
    struct stat st;
    if (fstat(fd, &st) != 0) {
        snprintf(err, errlen, "%s: cannot stat: %s", path, strerror(errno));
        close(fd);
        return -1;
    }
    if (!S_ISREG(st.st_mode)) {
        snprintf(err, errlen, "%s: not a regular file", path);
        close(fd);
        return -1;
    }
    if (st.st_size == 0) {
        snprintf(err, errlen, "%s: file is empty", path);
        close(fd);
        return -1;
    }
    void *p = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd); /* the mapping keeps the file alive */
    if (p == MAP_FAILED) {
        snprintf(err, errlen, "%s: cannot mmap: %s", path, strerror(errno));
        return -1;
    }
    *map = p;
    *size = (size_t)st.st_size;
    return 0;
}

void unmap_file(void *map, size_t size) {
    if (map) munmap(map, size);
}

static int check_range(const char *name, int v, int max, char *err, size_t errlen) {
    if (v <= 0 || v > max) {
        snprintf(err, errlen, "%s = %d is outside 1..%d", name, v, max);
        return -1;
    }
    return 0;
}

int config_validate(const ModelConfig *c, char *err, size_t errlen) {
    if (check_range("dim", c->dim, CHECKPOINT_MAX_DIM, err, errlen) ||
        check_range("hidden_dim", c->hidden_dim, 4 * CHECKPOINT_MAX_DIM, err, errlen) ||
        check_range("n_layers", c->n_layers, CHECKPOINT_MAX_LAYERS, err, errlen) ||
        check_range("n_heads", c->n_heads, CHECKPOINT_MAX_HEADS, err, errlen) ||
        check_range("n_kv_heads", c->n_kv_heads, CHECKPOINT_MAX_HEADS, err, errlen) ||
        check_range("vocab_size", c->vocab_size, CHECKPOINT_MAX_VOCAB, err, errlen) ||
        check_range("seq_len", c->seq_len, CHECKPOINT_MAX_SEQ, err, errlen))
        return -1;
    if (c->dim % c->n_heads != 0) {
        snprintf(err, errlen, "dim %d is not divisible by n_heads %d", c->dim, c->n_heads);
        return -1;
    }
    if (config_head_size(c) % 2 != 0) {
        snprintf(err, errlen, "head size %d is odd (RoPE rotates pairs)", config_head_size(c));
        return -1;
    }
    if (c->n_heads % c->n_kv_heads != 0) {
        snprintf(err, errlen, "n_heads %d is not divisible by n_kv_heads %d", c->n_heads,
                 c->n_kv_heads);
        return -1;
    }
    return 0;
}

/* Number of floats in each tensor of the file, in file order, computed with overflow
 * checks: three factors of up to 2^21 could exceed 64 bits in principle. */
typedef struct {
    uint64_t emb, rms_att, wq, wk, wv, wo, rms_ffn, w1, w2, w3, rms_final, freq, wcls;
} TensorSizes;

static int mul_u64(uint64_t a, uint64_t b, uint64_t *out) {
    if (a != 0 && b > UINT64_MAX / a) return -1;
    *out = a * b;
    return 0;
}

static int mul3(uint64_t a, uint64_t b, uint64_t c, uint64_t *out) {
    uint64_t ab;
    return mul_u64(a, b, &ab) || mul_u64(ab, c, out);
}

static int tensor_sizes(const ModelConfig *c, int shared, TensorSizes *t, uint64_t *total) {
    const uint64_t L = (uint64_t)c->n_layers, dim = (uint64_t)c->dim,
                   hid = (uint64_t)c->hidden_dim, kv = (uint64_t)config_kv_dim(c),
                   voc = (uint64_t)c->vocab_size, hs = (uint64_t)config_head_size(c);
    if (mul_u64(voc, dim, &t->emb) || mul_u64(L, dim, &t->rms_att) || mul3(L, dim, dim, &t->wq) ||
        mul3(L, kv, dim, &t->wk) || mul3(L, kv, dim, &t->wv) || mul3(L, dim, dim, &t->wo) ||
        mul_u64(L, dim, &t->rms_ffn) || mul3(L, hid, dim, &t->w1) || mul3(L, dim, hid, &t->w2) ||
        mul3(L, hid, dim, &t->w3) || mul_u64((uint64_t)c->seq_len, hs, &t->freq))
        return -1;
    t->rms_final = dim;
    t->wcls = shared ? 0 : t->emb;
    const uint64_t parts[] = {t->emb, t->rms_att, t->wq,  t->wk,        t->wv,   t->wo,  t->rms_ffn,
                              t->w1,  t->w2,      t->w3,  t->rms_final, t->freq, t->wcls};
    uint64_t sum = 0;
    for (size_t i = 0; i < sizeof parts / sizeof parts[0]; i++) {
        if (parts[i] > UINT64_MAX - sum) return -1;
        sum += parts[i];
    }
    *total = sum;
    return 0;
}

/* Index of the first NaN or infinity among n floats, or -1. It tests the exponent bits
 * as integers, block by block, so that the clean case (every real file) vectorizes and
 * costs a fraction of reading the file. */
static int64_t first_non_finite(const float *x, uint64_t n) {
    enum { BLOCK = 4096 };
    for (uint64_t start = 0; start < n; start += BLOCK) {
        const uint64_t end = n - start < BLOCK ? n : start + BLOCK;
        uint32_t special = 0;
        for (uint64_t i = start; i < end; i++) {
            uint32_t bits;
            memcpy(&bits, &x[i], sizeof bits);
            special |= (bits & 0x7f800000u) == 0x7f800000u;
        }
        if (!special) continue;
        for (uint64_t i = start; i < end; i++)
            if (!isfinite(x[i])) return (int64_t)i;
    }
    return -1;
}

/* A NaN or infinite weight is corruption: quantizers would derive a NaN scale from it and
 * the float path would print noise, so it is an error at open, naming the tensor. */
static int check_finite(const float *p, const TensorSizes *t, const char *path, char *err,
                        size_t errlen) {
    const struct {
        const char *name;
        uint64_t n;
    } tensors[] = {{"token_embedding", t->emb}, {"rms_att", t->rms_att}, {"wq", t->wq},
                   {"wk", t->wk},           {"wv", t->wv},           {"wo", t->wo},
                   {"rms_ffn", t->rms_ffn}, {"w1", t->w1},           {"w2", t->w2},
                   {"w3", t->w3},           {"rms_final", t->rms_final},
                   {NULL, t->freq}, /* legacy RoPE tables: never read */
                   {"wcls", t->wcls}};
    for (size_t k = 0; k < sizeof tensors / sizeof tensors[0]; k++) {
        const int64_t at = tensors[k].name ? first_non_finite(p, tensors[k].n) : -1;
        if (at >= 0) {
            snprintf(err, errlen, "%s: corrupt: tensor %s holds %s at element %lld", path,
                     tensors[k].name, isnan(p[at]) ? "NaN" : "infinity", (long long)at);
            return -1;
        }
        p += tensors[k].n;
    }
    return 0;
}

int checkpoint_open(Checkpoint *ck, const char *path, char *err, size_t errlen) {
    memset(ck, 0, sizeof *ck);
    void *map;
    size_t size;
    if (map_file(path, &map, &size, err, errlen) != 0) return -1;

    int32_t header[7];
    if (size < sizeof header) {
        snprintf(err, errlen, "%s: truncated: %zu bytes, a llama2.c checkpoint header is 28", path,
                 size);
        unmap_file(map, size);
        return -1;
    }
    memcpy(header, map, sizeof header);
    ModelConfig c = {header[0], header[1], header[2], header[3], header[4], header[5], header[6]};
    int shared = c.vocab_size > 0;
    if (c.vocab_size < 0 && c.vocab_size != INT32_MIN) c.vocab_size = -c.vocab_size;

    char why[256];
    if (config_validate(&c, why, sizeof why) != 0) {
        snprintf(err, errlen, "%s: not a valid llama2.c checkpoint: %s", path, why);
        unmap_file(map, size);
        return -1;
    }
    TensorSizes t;
    uint64_t floats;
    if (tensor_sizes(&c, shared, &t, &floats) != 0 || floats > (UINT64_MAX - sizeof header) / 4) {
        snprintf(err, errlen, "%s: header sizes overflow 64-bit arithmetic", path);
        unmap_file(map, size);
        return -1;
    }
    const uint64_t expect = sizeof header + 4 * floats;
    if ((uint64_t)size != expect) {
        snprintf(err, errlen,
                 "%s: file is %zu bytes but its header (dim %d, hidden %d, layers %d, heads "
                 "%d/%d, vocab %d, seq %d%s) implies %llu: %s",
                 path, size, c.dim, c.hidden_dim, c.n_layers, c.n_heads, c.n_kv_heads,
                 c.vocab_size, c.seq_len, shared ? "" : ", own classifier",
                 (unsigned long long)expect,
                 (uint64_t)size < expect ? "truncated" : "trailing bytes (wrong format?)");
        unmap_file(map, size);
        return -1;
    }

    const float *p = (const float *)((const char *)map + sizeof header);
    if (check_finite(p, &t, path, err, errlen) != 0) {
        unmap_file(map, size);
        return -1;
    }
    ck->cfg = c;
    ck->shared_classifier = shared;
    ck->token_embedding = p, p += t.emb;
    ck->rms_att = p, p += t.rms_att;
    ck->wq = p, p += t.wq;
    ck->wk = p, p += t.wk;
    ck->wv = p, p += t.wv;
    ck->wo = p, p += t.wo;
    ck->rms_ffn = p, p += t.rms_ffn;
    ck->w1 = p, p += t.w1;
    ck->w2 = p, p += t.w2;
    ck->w3 = p, p += t.w3;
    ck->rms_final = p, p += t.rms_final;
    p += t.freq; /* legacy RoPE tables: recomputed by the engine */
    ck->wcls = shared ? ck->token_embedding : p;
    ck->map = map;
    ck->map_size = size;
    return 0;
}

void checkpoint_close(Checkpoint *ck) {
    unmap_file(ck->map, ck->map_size);
    memset(ck, 0, sizeof *ck);
}
