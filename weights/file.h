/*
 * weights/file.h - what both model file formats (llama2.c checkpoints, .qrz files) share:
 * the model's shape and its validation, opening and mapping a file without trusting it,
 * and the checks on the float32 values a file stores.
 */
#ifndef WEIGHTS_FILE_H
#define WEIGHTS_FILE_H

#include <stddef.h>
#include <stdint.h>

/* The architecture of a LLaMA-style transformer, as a file's header gives it. */
typedef struct {
    int dim;        /* width of the residual stream */
    int hidden_dim; /* inner width of the SwiGLU feed-forward block */
    int n_layers;   /* transformer blocks */
    int n_heads;    /* query heads; head_size = dim / n_heads */
    int n_kv_heads; /* key/value heads; fewer than n_heads means grouped-query attention */
    int vocab_size; /* rows of the embedding and of the classifier */
    int seq_len;    /* longest context the model was trained for */
    float rope_theta; /* RoPE's base: pair i of a head turns by pos / theta^(2i / head_size) */
    float norm_eps;   /* RMSNorm's epsilon: x / sqrt(mean(x^2) + eps) */
    /* Llama 3.1/3.2's RoPE scaling (config.json's rope_scaling of rope_type "llama3"):
     * frequencies whose wavelength exceeds rope_original_ctx / rope_low_freq_factor are
     * divided by rope_factor, those below rope_original_ctx / rope_high_freq_factor kept,
     * those between interpolated. rope_factor 0: no scaling. */
    float rope_factor, rope_low_freq_factor, rope_high_freq_factor;
    int rope_original_ctx;
} ModelConfig;

/* What llama2.c checkpoints (and .qrz files of format 1) leave unsaid: Llama 2's values. */
#define LLAMA2_ROPE_THETA 10000.0f
#define LLAMA2_NORM_EPS 1e-5f
/* The ranges a file may give them: anything else is corrupt, not a model. The bounds are
 * float32 values, as the engine stores and computes both. */
#define MODEL_MIN_ROPE_THETA 1.0f /* exclusive */
#define MODEL_MAX_ROPE_THETA 1e12f
#define MODEL_MAX_NORM_EPS 0.1f   /* eps in (0, 0.1] */

/* The one rule for both, applied to the float32 value as stored: by the .qrz reader, and
 * by the importer to config.json's numbers once rounded to float32 (a 1e-50 that becomes 0,
 * a 1.00000001 that becomes 1), so that it never writes a file the reader refuses. */
static inline int rope_theta_valid(float theta) {
    return theta > MODEL_MIN_ROPE_THETA && theta <= MODEL_MAX_ROPE_THETA;
}
static inline int norm_eps_valid(float eps) { return eps > 0 && eps <= MODEL_MAX_NORM_EPS; }

static inline int config_head_size(const ModelConfig *c) { return c->dim / c->n_heads; }
static inline int config_kv_dim(const ModelConfig *c) { return config_head_size(c) * c->n_kv_heads; }

/* Weights of the 7 linears of every block (wq, wk, wv, wo, w1, w2, w3): the parameters
 * that W4 quantizes, and the unit of "bits per weight". */
static inline double config_linear_params(const ModelConfig *c) {
    const double kv = config_kv_dim(c);
    return (double)c->n_layers *
           (2.0 * c->dim * c->dim + 2.0 * kv * c->dim + 3.0 * (double)c->hidden_dim * c->dim);
}

/* Key and value entries of the cache at full context: the unit of "bits per KV entry". */
static inline double config_kv_entries(const ModelConfig *c) {
    return 2.0 * c->n_layers * c->seq_len * config_kv_dim(c);
}

/* Size limits that no LLaMA-family model on a CPU comes near; a header beyond them is
 * corrupt, not ambitious. */
enum { MODEL_MAX_DIM = 1 << 16, MODEL_MAX_LAYERS = 1024, MODEL_MAX_HEADS = 1024,
       MODEL_MAX_VOCAB = 1 << 21, MODEL_MAX_SEQ = 1 << 20 };

/* Checks that a header describes a model this engine can run (positive, within the limits
 * above, dim divisible by n_heads into an even head_size, n_heads divisible by
 * n_kv_heads). Returns 0, or -1 with the problem written to err. */
int config_validate(const ModelConfig *c, char *err, size_t errlen);

/* Checks the RoPE scaling fields: none (all 0), or factor >= 1, 0 < low < high and an
 * original context of at least 1. Returns 0, or -1 with the problem in err. */
int config_validate_rope_scaling(const ModelConfig *c, char *err, size_t errlen);

/* RoPE's angular frequency of each pair i of a head, in float64: 1 / theta^(2i / head_size),
 * then Llama 3's scaling if the config has one (as Hugging Face computes it). inv_freq
 * holds head_size / 2 values. */
void config_rope_frequencies(const ModelConfig *c, double *inv_freq);

/* ------------------------------------------------------------------ files */

/* Opens path for reading if it is a regular file. A FIFO, a device or a directory is
 * refused at once ("not a regular file"): the open does not block waiting for a writer.
 * Returns the descriptor (its size in *size, if not NULL), or -1 with err set. */
int open_regular_file(const char *path, size_t *size, char *err, size_t errlen);

/* Maps a whole regular file read-only. Returns 0, or -1 with err set. An empty file is
 * an error: there is nothing to load. */
int map_file(const char *path, void **map, size_t *size, char *err, size_t errlen);
void unmap_file(void *map, size_t size);

/* ------------------------------------------------------------------ stored floats */

/* The largest magnitude among n floats, as a float; or, when one of them is NaN or
 * infinite, a negative number, with the index of the first such in *bad. Signed zeros and
 * negative values count by magnitude. Reads the bits as integers, so it costs about as
 * much as reading the memory. */
float float_abs_max(const float *x, uint64_t n, uint64_t *bad);

/* For scales, which must be finite and not negative: the largest, or a negative number
 * with the index of the first NaN, infinite or negative one (its sign bit set) in *bad. */
float scale_max(const float *x, uint64_t n, uint64_t *bad);

/* The largest magnitude of each kind of value a model file holds; for a quantized matrix,
 * the largest value its codes can stand for (largest code times the largest row scale). */
typedef struct {
    double rms_att, rms_ffn, wq, wk, wv, wo, w1, w2, w3;
} LayerMagnitudes;

typedef struct {
    double embedding, rms_final, cls;
    LayerMagnitudes *layers; /* [n_layers] */
} WeightMagnitudes;

/* Checks that weights of these magnitudes cannot overflow float32 anywhere in the forward
 * pass of this config, in any mode, for any input (the bound of docs/FORMAT.md,
 * "Magnitudes"). Returns 0, or -1 with err saying which value is too large. */
int magnitudes_check(const ModelConfig *c, const WeightMagnitudes *w, char *err, size_t errlen);

#endif
