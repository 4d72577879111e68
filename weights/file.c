/*
 * weights/file.c - the model shape, file access and stored-value checks that both file
 * formats share (weights/checkpoint.c, weights/qrz.c).
 */
#include "weights/file.h"

#include <errno.h>
#include <fcntl.h>
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

/* ------------------------------------------------------------------ the shape */

static int check_range(const char *name, int v, int max, char *err, size_t errlen) {
    if (v <= 0 || v > max) {
        snprintf(err, errlen, "%s = %d is outside 1..%d", name, v, max);
        return -1;
    }
    return 0;
}

int config_validate(const ModelConfig *c, char *err, size_t errlen) {
    if (check_range("dim", c->dim, MODEL_MAX_DIM, err, errlen) ||
        check_range("hidden_dim", c->hidden_dim, 4 * MODEL_MAX_DIM, err, errlen) ||
        check_range("n_layers", c->n_layers, MODEL_MAX_LAYERS, err, errlen) ||
        check_range("n_heads", c->n_heads, MODEL_MAX_HEADS, err, errlen) ||
        check_range("n_kv_heads", c->n_kv_heads, MODEL_MAX_HEADS, err, errlen) ||
        check_range("vocab_size", c->vocab_size, MODEL_MAX_VOCAB, err, errlen) ||
        check_range("seq_len", c->seq_len, MODEL_MAX_SEQ, err, errlen))
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

int config_validate_rope_scaling(const ModelConfig *c, char *err, size_t errlen) {
    const float f = c->rope_factor, lo = c->rope_low_freq_factor, hi = c->rope_high_freq_factor;
    if (f == 0 && lo == 0 && hi == 0 && c->rope_original_ctx == 0) return 0;
    if (!(f >= 1 && f <= 1e6f && lo > 0 && hi > lo && hi <= 1e6f && c->rope_original_ctx >= 1 &&
          c->rope_original_ctx <= MODEL_MAX_SEQ)) {
        snprintf(err, errlen, "RoPE scaling factor %g, low_freq_factor %g, high_freq_factor %g, original context %d: "
                 "needs factor >= 1, 0 < low < high and a context of 1..%d", f, lo, hi, c->rope_original_ctx,
                 MODEL_MAX_SEQ);
        return -1;
    }
    return 0;
}

void config_rope_frequencies(const ModelConfig *c, double *inv_freq) {
    const int hs = config_head_size(c);
    const double factor = c->rope_factor, lo = c->rope_low_freq_factor, hi = c->rope_high_freq_factor,
                 ctx = c->rope_original_ctx;
    for (int i = 0; i < hs / 2; i++) {
        double f = 1.0 / pow(c->rope_theta, (double)(2 * i) / (double)hs);
        if (factor != 0) { /* transformers' _compute_llama3_parameters, term by term */
            const double wavelen = 2 * 3.14159265358979323846 / f; /* math.pi (M_PI is not C11) */
            if (wavelen > ctx / lo) f /= factor; /* long wavelengths: divided */
            else if (!(wavelen < ctx / hi)) {    /* between: interpolated */
                const double smooth = (ctx / wavelen - lo) / (hi - lo);
                f = (1 - smooth) * f / factor + smooth * f;
            }
        }
        inv_freq[i] = f;
    }
}

/* ------------------------------------------------------------------ files */

int open_regular_file(const char *path, size_t *size, char *err, size_t errlen) {
    /* O_NONBLOCK: opening a FIFO for reading would otherwise wait for a writer, before
     * fstat could say what it is. It changes nothing for a regular file. */
    const int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
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
    if (size) *size = (size_t)st.st_size;
    return fd;
}

int map_file(const char *path, void **map, size_t *size, char *err, size_t errlen) {
    size_t n;
    const int fd = open_regular_file(path, &n, err, errlen);
    if (fd < 0) return -1;
    if (n == 0) {
        snprintf(err, errlen, "%s: file is empty", path);
        close(fd);
        return -1;
    }
    void *p = mmap(NULL, n, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd); /* the mapping keeps the file alive */
    if (p == MAP_FAILED) {
        snprintf(err, errlen, "%s: cannot mmap: %s", path, strerror(errno));
        return -1;
    }
    *map = p;
    *size = n;
    return 0;
}

void unmap_file(void *map, size_t size) {
    if (map) munmap(map, size);
}

/* ------------------------------------------------------------------ stored floats */

/* The largest of the values (bits of x[i] & mask), compared as integers: for
 * non-negative floats, integer order is value order, and NaN and infinity are the
 * patterns from 0x7f800000 up, as is every float with its sign bit set when the mask
 * keeps that bit. */
static uint32_t max_masked(const float *x, uint64_t n, uint32_t mask) {
    uint32_t m = 0;
    for (uint64_t i = 0; i < n; i++) {
        uint32_t bits;
        memcpy(&bits, &x[i], sizeof bits);
        bits &= mask;
        m = bits > m ? bits : m;
    }
    return m;
}

/* The scan goes block by block, whole blocks with a constant count (which lets compilers
 * vectorize it at -O2), and searches a block that holds a bad value again for the first. */
static float max_bits(const float *x, uint64_t n, uint32_t mask, uint64_t *bad) {
    enum { BLOCK = 4096 };
    const uint32_t special = 0x7f800000u;
    uint32_t max = 0;
    for (uint64_t start = 0; start < n; start += BLOCK) {
        const uint64_t len = n - start < BLOCK ? n - start : BLOCK;
        const uint32_t m = len == BLOCK ? max_masked(x + start, BLOCK, mask) : max_masked(x + start, len, mask);
        if (m >= special) {
            uint64_t i = start;
            while (max_masked(x + i, 1, mask) < special) i++;
            *bad = i;
            return -1.0f;
        }
        max = m > max ? m : max;
    }
    float f;
    memcpy(&f, &max, sizeof f);
    return f;
}

float float_abs_max(const float *x, uint64_t n, uint64_t *bad) {
    return max_bits(x, n, 0x7fffffffu, bad);
}

float scale_max(const float *x, uint64_t n, uint64_t *bad) {
    return max_bits(x, n, 0xffffffffu, bad);
}

/*
 * The forward pass's worst case, layer by layer, from the largest magnitude of each kind of
 * weight (docs/FORMAT.md, "Magnitudes", derives each line). Every bound holds for any
 * token sequence, in any mode:
 *   - RMSNorm leaves a vector of L2 norm at most sqrt(n) * (largest gain), whatever its
 *     input, as long as the input's sum of squares is finite;
 *   - a matmul output, and every partial sum of it, is at most the L2 norm of a weight row,
 *     sqrt(cols) * (largest weight), times the L2 norm of its input (Cauchy-Schwarz);
 *   - quantizing: a weight quantized at load stands for at most QW = 1.25 times the
 *     row's largest (razoring rounds the group's largest up by at most 1/8); an activation
 *     vector, at most QA = 4 times its L2 norm (stage 1 and razoring may each double an
 *     element: x = s/2 rounds to s, then to 2s); the integer matmuls first scale their exact
 *     sum by the activation scale, at most 128 * sqrt(cols) times the quantized input's
 *     L2 norm;
 *   - softmax probabilities sum to 1, so attention outputs are at most the largest value.
 * The residual stream grows by at most (attention + feed-forward) per layer. Its sum of
 * squares (RMSNorm's first step) may overflow without harm to finiteness: RMSNorm then
 * outputs zeros. No real model comes near that (docs/FORMAT.md says how far).
 */
int magnitudes_check(const ModelConfig *c, const WeightMagnitudes *w, char *err, size_t errlen) {
    const double QW = 1.25, QA = 4.0, n = c->dim, H = c->hidden_dim, hs = config_head_size(c);
    const double limit = FLT_MAX / 4; /* room for softmax's x - max and for rounding */
    const char *what = NULL;
    double bound = 0, x = w->embedding; /* x: the residual stream */
    for (int l = 0; l < c->n_layers && !what; l++) {
        const LayerMagnitudes *m = &w->layers[l];
        const double qkv = QA * QW * n * fmax(m->wq, fmax(m->wk, m->wv)) * m->rms_att;
        const double scores = QA * QA * sqrt(hs) * qkv * qkv; /* q.k / sqrt(hs) */
        const double attn = QA * QW * qkv;                    /* softmax-weighted values */
        const double h = QA * QW * n * fmax(m->w1, m->w3) * m->rms_ffn; /* w1 xb, w3 xb */
        const double acc = 128 * QA * fmax(n * fmax(m->rms_att, m->rms_ffn), fmax(n * attn, H * h * h));
        x += QA * QW * n * m->wo * attn + QA * QW * H * m->w2 * h * h;
        const struct {
            const char *what;
            double bound;
        } checks[] = {{"a query, key or value", qkv}, {"an attention score", scores},
                      {"a feed-forward activation", h * h}, {"an integer matmul's scaled sum", acc},
                      {"the residual stream", x}};
        for (size_t i = 0; i < sizeof checks / sizeof checks[0] && !what; i++)
            if (!(checks[i].bound <= limit)) what = checks[i].what, bound = checks[i].bound;
    }
    const double logits = QA * QW * n * w->cls * w->rms_final, acc = 128 * QA * n * w->rms_final;
    if (!what && !(fmax(logits, acc) <= limit)) what = "a logit", bound = fmax(logits, acc);
    if (!what) return 0;

    /* Too large: blame the largest value (the one a corrupt file holds). */
    const char *name = w->embedding >= w->cls ? "token_embedding" : "classifier";
    double largest = fmax(w->embedding, w->cls);
    int layer = -1;
    if (w->rms_final > largest) name = "rms_final", largest = w->rms_final;
    for (int l = 0; l < c->n_layers; l++) {
        const LayerMagnitudes *m = &w->layers[l];
        const struct {
            const char *name;
            double v;
        } kinds[] = {{"rms_att", m->rms_att}, {"rms_ffn", m->rms_ffn}, {"wq", m->wq},
                     {"wk", m->wk},           {"wv", m->wv},           {"wo", m->wo},
                     {"w1", m->w1},           {"w2", m->w2},           {"w3", m->w3}};
        for (size_t k = 0; k < sizeof kinds / sizeof kinds[0]; k++)
            if (kinds[k].v > largest) name = kinds[k].name, largest = kinds[k].v, layer = l;
    }
    char where[32] = "";
    if (layer >= 0) snprintf(where, sizeof where, "layer %d ", layer);
    snprintf(err, errlen,
             "weights too large for float32: %s%s holds magnitudes up to %.3g, so %s could reach "
             "%.3g (docs/FORMAT.md, Magnitudes)",
             where, name, largest, what, bound);
    return -1;
}
