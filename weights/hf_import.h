/*
 * weights/hf_import.h - a Hugging Face LLaMA directory (weights/hf_model.h) written as a
 * .qrz file (docs/FORMAT.md) in one streaming pass.
 *
 * Tensor by tensor, 16 rows at a time, the weights are read from the mapped safetensors,
 * converted to float32 (the q/k permutation undone), quantized and written; each
 * tensor's input pages are dropped once it is done. So the resident memory stays at about
 * one quantized matrix (the embedding or classifier, the largest), far below the model's
 * size. The output goes through qrz_write_source: a temporary file beside it, flushed,
 * renamed; a failure leaves no file.
 *
 * What the file gets besides weights: config.json's rope_theta, rms_norm_eps, BOS and EOS
 * ids; the bytes of tokenizer.model (one file is the whole model); and a chat template
 * name, given or guessed from tokenizer_config.json's chat_template (hf_chat_template_hint).
 */
#ifndef WEIGHTS_HF_IMPORT_H
#define WEIGHTS_HF_IMPORT_H

#include <stddef.h>
#include <stdint.h>

#include "weights/hf_model.h"
#include "weights/quant_config.h"

typedef struct {
    QuantConfig quant;         /* quant.embedding: float32 or INT8 rows (docs/FORMAT.md) */
    const char *chat_template; /* a template name to store; NULL: guessed from the directory */
    /* Called before tensor i of n is written, and with i == n at the end (may be NULL). */
    void (*progress)(void *ctx, int i, int n, uint64_t bytes, uint64_t file_bytes);
    void *progress_ctx;
} HfImportOptions;

/* Writes the model of the opened directory m (at dir) to out_path. The chosen template
 * name goes to template_used (at least 16 bytes). Returns 0, or -1 with one line in err
 * naming the file and the tensor or field. */
int hf_import(const HfModel *m, const char *dir, const char *out_path, const HfImportOptions *o,
              char *template_used, char *err, size_t errlen);

/* The chat template a Jinja chat_template string is written for: "llama3"
 * (<|start_header_id|>), "smollm2" (<|im_start|> and SmolLM's default system prompt), "chatml"
 * (<|im_start|>), "zephyr" (<|user|>, as TinyLlama-chat), "llama2" ([INST]), or "" when none
 * is recognised. */
const char *hf_chat_template_hint(const char *jinja);

/* The hint of dir/tokenizer_config.json's chat_template: "" when the file or the field is
 * absent or unrecognised. Returns 0, or -1 with err set when the file is not valid JSON. */
int hf_chat_template_of_dir(const char *dir, const char **name, char *err, size_t errlen);

#endif
