/*
 * weights/hf_model.h - a Hugging Face LLaMA directory seen as the engine's tensors.
 *
 * A directory holds config.json, the weights (model.safetensors, or shards and
 * model.safetensors.index.json) and a tokenizer: a sentencepiece tokenizer.model, else a
 * Hugging Face tokenizer.json (tokenizer/bpe.h). Its tensors map to
 * the engine's (weights/checkpoint.h) like this, for every layer N:
 *
 *   model.embed_tokens.weight                      token_embedding [vocab_size][dim]
 *   model.layers.N.input_layernorm.weight          rms_att         [dim]
 *   model.layers.N.self_attn.q_proj.weight         wq              [dim][dim]        (*)
 *   model.layers.N.self_attn.k_proj.weight         wk              [kv_dim][dim]     (*)
 *   model.layers.N.self_attn.v_proj.weight         wv              [kv_dim][dim]
 *   model.layers.N.self_attn.o_proj.weight         wo              [dim][dim]
 *   model.layers.N.post_attention_layernorm.weight rms_ffn         [dim]
 *   model.layers.N.mlp.gate_proj.weight            w1              [hidden_dim][dim]
 *   model.layers.N.mlp.down_proj.weight            w2              [dim][hidden_dim]
 *   model.layers.N.mlp.up_proj.weight              w3              [hidden_dim][dim]
 *   model.norm.weight                              rms_final       [dim]
 *   lm_head.weight                                 wcls            [vocab_size][dim]
 *                                                  (absent, or ignored, when tied)
 *
 * (*) RoPE rotates pairs of a head's dimensions. Meta's LLaMA, llama2.c and this engine
 * pair dimensions (2i, 2i+1); transformers pairs (i, i + head_size/2) ("rotate_half"), so
 * its conversion script permuted the rows of wq and wk head by head. Reading undoes it:
 *
 *   engine row  h*hs + 2i + j   =   HF row  h*hs + j*hs/2 + i     (i < hs/2, j in {0, 1})
 *
 * i.e. w_meta = w_hf.reshape(heads, 2, hs/2, dim).transpose(0, 2, 1, 3).reshape(heads*hs, dim)
 * with heads = n_heads for wq and n_kv_heads for wk.
 *
 * Opening checks everything a conversion needs before any weight is read: the config,
 * the tokenizer, every safetensors header, that each expected tensor exists with a float
 * dtype and the shape the config implies, and that no tensor is left unexplained (a bias
 * the engine would drop, say). Reading then converts rows on demand, so a writer can
 * stream a model much larger than memory through one tensor's worth of buffer.
 */
#ifndef WEIGHTS_HF_MODEL_H
#define WEIGHTS_HF_MODEL_H

#include <stddef.h>

#include "weights/hf_config.h"
#include "weights/safetensors.h"

/* The engine's tensors, in llama2.c checkpoint order. */
typedef enum {
    HF_EMBEDDING, HF_RMS_ATT, HF_WQ, HF_WK, HF_WV, HF_WO, HF_RMS_FFN, HF_W1, HF_W2, HF_W3,
    HF_RMS_FINAL, HF_CLASSIFIER
} HfRole;

typedef struct {
    HfRole role;
    int layer;             /* 0..n_layers-1, or -1 for a tensor of the whole model */
    int rows, cols;        /* as the engine stores it (a norm is 1 x dim) */
    int permuted_heads;    /* wq, wk: the heads whose rows HF permuted; otherwise 0 */
    char name[64];         /* the HF tensor name */
    const SafeTensor *src; /* where it is */
} HfTensor;

typedef struct {
    HfConfig config;
    SafeTensors st;
    HfTensor *tensors; /* llama2.c checkpoint order: embedding, rms_att of every layer, wq of
                          every layer, ..., w3, rms_final, classifier (when not tied) */
    int n_tensors;
    char tokenizer_path[4096]; /* DIR/tokenizer.model, else DIR/tokenizer.json */
} HfModel;

/* Opens and checks a model directory. Returns 0, or -1 with one line in err naming the
 * file and the tensor or field. */
int hf_model_open(HfModel *m, const char *dir, char *err, size_t errlen);
void hf_model_close(HfModel *m);

/* Converts rows [row0, row0 + n_rows) of tensor i (engine row order: q/k permutation
 * undone) to float32 into out (n_rows * cols floats). A NaN or infinite weight is an
 * error naming the tensor. Returns 0, or -1 with err set. */
int hf_model_read_rows(const HfModel *m, int i, int row0, int n_rows, float *out, char *err,
                       size_t errlen);

/* The index of the tensor of this role and layer (-1 for a whole-model tensor), or -1 if
 * the model has none (the classifier of a tied model): for writers whose file order is
 * not llama2.c's. */
int hf_model_find(const HfModel *m, HfRole role, int layer);

/* Drops tensor i's pages from the resident set once it has been read (see
 * safetensors_release). */
void hf_model_release(const HfModel *m, int i);

/* The engine's name of a role: "token_embedding", "rms_att", "wq", ... */
const char *hf_role_name(HfRole r);

#endif
