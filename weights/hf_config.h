/*
 * weights/hf_config.h - the config.json of a Hugging Face LLaMA-family model.
 *
 * Read (transformers' name -> ours):
 *   hidden_size -> dim                  intermediate_size -> hidden_dim
 *   num_hidden_layers -> n_layers       num_attention_heads -> n_heads
 *   num_key_value_heads -> n_kv_heads   (absent: = num_attention_heads, no GQA)
 *   vocab_size                          max_position_embeddings -> seq_len
 *   rms_norm_eps -> norm_eps            (absent: 1e-6, transformers' LlamaConfig default)
 *   rope_theta                          (absent: 10000)
 *   tie_word_embeddings -> tied         (absent: false, transformers' default)
 *   bos_token_id, eos_token_id          (absent: 1 and 2; eos_token_id may be a list, as
 *                                       Llama 3's [128001, 128008, 128009]: generation
 *                                       stops at any, the first is the EOS)
 *   rope_scaling                        null, or of rope_type "llama3" (factor,
 *                                       low/high_freq_factor, original_max_position_embeddings)
 *   architectures                       LlamaForCausalLM or MistralForCausalLM
 *
 * Refused, naming the field, because the engine would silently compute something else:
 * another architecture, rope_scaling of another type, hidden_act other than silu,
 * attention_bias or mlp_bias true, a head_dim other than hidden_size / heads. Mistral's
 * sliding_window caps seq_len: within that many positions, sliding-window attention and
 * full attention are the same computation.
 */
#ifndef WEIGHTS_HF_CONFIG_H
#define WEIGHTS_HF_CONFIG_H

#include <stddef.h>

#include "weights/file.h"
#include "weights/weights.h"

typedef struct {
    ModelConfig cfg;   /* rope_theta and norm_eps included */
    int tied;          /* the classifier is the token embedding (no lm_head tensor) */
    int bos_id, eos_id;
    int stop_ids[MODEL_MAX_STOP]; /* eos_token_id as a list: the ids after its first */
    int n_stop;
    char architecture[32];
} HfConfig;

/* Parses the text of a config.json; path names it in messages. Returns 0, or -1 with
 * "PATH: field: problem" in err. */
int hf_config_parse(HfConfig *h, const char *path, const char *text, size_t len, char *err,
                    size_t errlen);

/* Reads and parses the file at path. */
int hf_config_load(HfConfig *h, const char *path, char *err, size_t errlen);

#endif
