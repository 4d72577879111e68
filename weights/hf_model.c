/*
 * weights/hf_model.c - maps a Hugging Face LLaMA directory onto the engine's tensors
 * (the mapping and the q/k permutation: hf_model.h).
 */
#include "weights/hf_model.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const struct {
    const char *engine, *hf; /* hf: printf format, %d = layer */
} roles[] = {
    [HF_EMBEDDING] = {"token_embedding", "model.embed_tokens.weight"},
    [HF_RMS_ATT] = {"rms_att", "model.layers.%d.input_layernorm.weight"},
    [HF_WQ] = {"wq", "model.layers.%d.self_attn.q_proj.weight"},
    [HF_WK] = {"wk", "model.layers.%d.self_attn.k_proj.weight"},
    [HF_WV] = {"wv", "model.layers.%d.self_attn.v_proj.weight"},
    [HF_WO] = {"wo", "model.layers.%d.self_attn.o_proj.weight"},
    [HF_RMS_FFN] = {"rms_ffn", "model.layers.%d.post_attention_layernorm.weight"},
    [HF_W1] = {"w1", "model.layers.%d.mlp.gate_proj.weight"},
    [HF_W2] = {"w2", "model.layers.%d.mlp.down_proj.weight"},
    [HF_W3] = {"w3", "model.layers.%d.mlp.up_proj.weight"},
    [HF_RMS_FINAL] = {"rms_final", "model.norm.weight"},
    [HF_CLASSIFIER] = {"wcls", "lm_head.weight"},
};

const char *hf_role_name(HfRole r) { return roles[r].engine; }

static int is_norm(HfRole r) { return r == HF_RMS_ATT || r == HF_RMS_FFN || r == HF_RMS_FINAL; }

/* The tensor of this role and layer, with its engine shape (HF stores a norm as [dim]). */
static HfTensor make_tensor(const ModelConfig *c, HfRole role, int layer) {
    HfTensor t = {.role = role, .layer = layer};
    const int dim = c->dim, kv = config_kv_dim(c), hid = c->hidden_dim;
    const int rows[] = {[HF_EMBEDDING] = c->vocab_size, [HF_RMS_ATT] = 1, [HF_WQ] = dim,
                        [HF_WK] = kv, [HF_WV] = kv, [HF_WO] = dim, [HF_RMS_FFN] = 1,
                        [HF_W1] = hid, [HF_W2] = dim, [HF_W3] = hid, [HF_RMS_FINAL] = 1,
                        [HF_CLASSIFIER] = c->vocab_size};
    t.rows = rows[role];
    t.cols = role == HF_W2 ? hid : dim;
    t.permuted_heads = role == HF_WQ ? c->n_heads : role == HF_WK ? c->n_kv_heads : 0;
    snprintf(t.name, sizeof t.name, roles[role].hf, layer);
    return t;
}

/* Where a missing tensor should have been: the index of a sharded model, else its file. */
static const char *weights_path(const HfModel *m, const char *dir, char *buf, size_t len) {
    if (m->st.n_files == 1) return m->st.files[0].path;
    snprintf(buf, len, "%s/model.safetensors.index.json", dir);
    return buf;
}

/* Finds t's source and checks its dtype and shape against the config. */
static int bind_tensor(HfModel *m, HfTensor *t, const char *dir, char *err, size_t errlen) {
    const ModelConfig *c = &m->config.cfg;
    char where[4200];
    t->src = safetensors_find(&m->st, t->name);
    if (!t->src) {
        snprintf(err, errlen, "%s: no tensor %s%s", weights_path(m, dir, where, sizeof where),
                 t->name, t->role == HF_CLASSIFIER ? " (and config.json's tie_word_embeddings is "
                 "false)" : "");
        return -1;
    }
    const char *file = m->st.files[t->src->file].path;
    if (!safetensors_dtype_is_float(t->src->dtype)) {
        snprintf(err, errlen, "%s: tensor %s has dtype %s; the importer reads F32, F16 and BF16",
                 file, t->name, safetensors_dtype_name(t->src->dtype));
        return -1;
    }
    const SafeTensor *s = t->src;
    const int ok = is_norm(t->role) ? s->ndim == 1 && s->shape[0] == (uint64_t)t->cols
                                    : s->ndim == 2 && s->shape[0] == (uint64_t)t->rows &&
                                          s->shape[1] == (uint64_t)t->cols;
    if (!ok) {
        char have[160], want[64];
        safetensors_shape_text(s, have, sizeof have);
        if (is_norm(t->role)) snprintf(want, sizeof want, "[%d]", t->cols);
        else snprintf(want, sizeof want, "[%d, %d]", t->rows, t->cols);
        snprintf(err, errlen, "%s: tensor %s has shape %s, but config.json (hidden_size %d, "
                 "intermediate_size %d, num_attention_heads %d, num_key_value_heads %d, "
                 "vocab_size %d) implies %s", file, t->name, have, c->dim, c->hidden_dim,
                 c->n_heads, c->n_kv_heads, c->vocab_size, want);
        return -1;
    }
    return 0;
}

/* Tensors of the files that the mapping does not use: RoPE tables some old checkpoints
 * carry (recomputed by the engine) and a tied model's copy of the embedding. */
static int ignorable(const HfModel *m, const char *name) {
    const char *suffix = ".rotary_emb.inv_freq";
    const size_t n = strlen(name), k = strlen(suffix);
    if (n > k && strcmp(name + n - k, suffix) == 0) return 1;
    return m->config.tied && strcmp(name, roles[HF_CLASSIFIER].hf) == 0;
}

/* The directory's tokenizer: tokenizer.model (sentencepiece), else tokenizer.json (Hugging
 * Face's format: Llama 3, SmolLM2). Whether the engine reads it is checked by the importer. */
static int check_tokenizer(HfModel *m, const char *dir, char *err, size_t errlen) {
    snprintf(m->tokenizer_path, sizeof m->tokenizer_path, "%s/tokenizer.model", dir);
    if (access(m->tokenizer_path, F_OK) == 0) return 0;
    snprintf(m->tokenizer_path, sizeof m->tokenizer_path, "%s/tokenizer.json", dir);
    if (access(m->tokenizer_path, F_OK) == 0) return 0;
    snprintf(err, errlen, "%s: no tokenizer.model nor tokenizer.json (the model's tokenizer)", dir);
    return -1;
}

static int open_checked(HfModel *m, const char *dir, char *err, size_t errlen) {
    struct stat sb;
    char path[4200];
    if (strlen(dir) > 4000) {
        snprintf(err, errlen, "%.80s...: path too long", dir);
        return -1;
    }
    if (stat(dir, &sb) != 0 || !S_ISDIR(sb.st_mode)) {
        snprintf(err, errlen, "%s: not a directory (a Hugging Face model is a directory with "
                 "config.json, safetensors and tokenizer.model or tokenizer.json)", dir);
        return -1;
    }
    snprintf(path, sizeof path, "%s/config.json", dir);
    if (access(path, F_OK) != 0) {
        snprintf(err, errlen, "%s: no config.json", dir);
        return -1;
    }
    if (check_tokenizer(m, dir, err, errlen) != 0 ||
        hf_config_load(&m->config, path, err, errlen) != 0 ||
        safetensors_open(&m->st, dir, err, errlen) != 0)
        return -1;

    const ModelConfig *c = &m->config.cfg;
    const int L = c->n_layers;
    m->tensors = calloc((size_t)(9 * L + 3), sizeof *m->tensors);
    if (!m->tensors) {
        snprintf(err, errlen, "%s: out of memory", dir);
        return -1;
    }
    int n = 0;
    m->tensors[n++] = make_tensor(c, HF_EMBEDDING, -1);
    for (HfRole r = HF_RMS_ATT; r <= HF_W3; r++)
        for (int l = 0; l < L; l++) m->tensors[n++] = make_tensor(c, r, l);
    m->tensors[n++] = make_tensor(c, HF_RMS_FINAL, -1);
    if (!m->config.tied) m->tensors[n++] = make_tensor(c, HF_CLASSIFIER, -1);
    m->n_tensors = n;
    for (int i = 0; i < n; i++)
        if (bind_tensor(m, &m->tensors[i], dir, err, errlen) != 0) return -1;

    /* Every tensor of the files must be one of those (or ignorable): anything else, a bias
     * or a layer past num_hidden_layers, would be silently dropped. */
    char *used = calloc((size_t)m->st.n_tensors + 1, 1);
    if (!used) {
        snprintf(err, errlen, "%s: out of memory", dir);
        return -1;
    }
    for (int i = 0; i < n; i++) used[m->tensors[i].src - m->st.tensors] = 1;
    for (int i = 0; i < m->st.n_tensors; i++) {
        const SafeTensor *s = &m->st.tensors[i];
        if (!used[i] && !ignorable(m, s->name)) {
            snprintf(err, errlen, "%s: tensor %s is not part of a LLaMA model with config.json's "
                     "num_hidden_layers %d (a bias, or another architecture?)",
                     m->st.files[s->file].path, s->name, L);
            free(used);
            return -1;
        }
    }
    free(used);
    return 0;
}

int hf_model_open(HfModel *m, const char *dir, char *err, size_t errlen) {
    memset(m, 0, sizeof *m);
    if (open_checked(m, dir, err, errlen) != 0) {
        hf_model_close(m);
        return -1;
    }
    return 0;
}

void hf_model_close(HfModel *m) {
    safetensors_close(&m->st);
    free(m->tensors);
    memset(m, 0, sizeof *m);
}

/* The HF row that holds engine row r of a tensor whose rows HF permuted head by head. */
static int hf_row(int r, int rows, int heads) {
    const int hs = rows / heads, h = r / hs, i = r % hs / 2, j = r % 2;
    return h * hs + j * (hs / 2) + i;
}

int hf_model_read_rows(const HfModel *m, int i, int row0, int n_rows, float *out, char *err,
                       size_t errlen) {
    if (i < 0 || i >= m->n_tensors) {
        snprintf(err, errlen, "tensor %d of %d does not exist", i, m->n_tensors);
        return -1;
    }
    const HfTensor *t = &m->tensors[i];
    const char *file = m->st.files[t->src->file].path;
    if (row0 < 0 || n_rows < 0 || row0 > t->rows || n_rows > t->rows - row0) {
        snprintf(err, errlen, "%s: tensor %s: rows %d..%d are outside 0..%d", file, t->name,
                 row0, row0 + n_rows, t->rows);
        return -1;
    }
    const size_t cols = (size_t)t->cols;
    for (int r = row0; r < row0 + n_rows; r++) {
        const int src = t->permuted_heads ? hf_row(r, t->rows, t->permuted_heads) : r;
        float *row = out + (size_t)(r - row0) * cols;
        if (safetensors_read(t->src, (uint64_t)src * cols, cols, row) != 0) {
            snprintf(err, errlen, "%s: tensor %s: cannot read row %d", file, t->name, src);
            return -1;
        }
        for (size_t k = 0; k < cols; k++) {
            if (!isfinite(row[k])) { /* quantizers would make a NaN scale of it */
                snprintf(err, errlen, "%s: corrupt: tensor %s holds %s at row %d, column %zu",
                         file, t->name, isnan(row[k]) ? "NaN" : "infinity", src, k);
                return -1;
            }
        }
    }
    return 0;
}

int hf_model_find(const HfModel *m, HfRole role, int layer) {
    for (int i = 0; i < m->n_tensors; i++)
        if (m->tensors[i].role == role && m->tensors[i].layer == layer) return i;
    return -1;
}

void hf_model_release(const HfModel *m, int i) {
    if (i >= 0 && i < m->n_tensors) safetensors_release(&m->st, m->tensors[i].src);
}
