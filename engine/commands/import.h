/*
 * engine/commands/import.h - run import HF_DIR OUT.qrz: a Hugging Face LLaMA directory (config.json,
 * safetensors, tokenizer.model) converted in one streaming pass into a .qrz file that holds
 * the whole model: quantized weights, its RoPE base, epsilon, BOS/EOS, chat template and
 * tokenizer (weights/hf_import.h, docs/FORMAT.md).
 */
#ifndef ENGINE_IMPORT_H
#define ENGINE_IMPORT_H

#include <stddef.h>

#include "weights/quant_config.h"

typedef struct {
    const char *in_dir;        /* the Hugging Face directory */
    const char *out_path;      /* the .qrz file to write */
    QuantConfig quant;         /* -q, -g, --cls, --sdr; --embedding sets quant.embedding */
    const char *chat_template; /* --chat-template NAME; NULL: from tokenizer_config.json */
} ImportOptions;

/* Checks the directory, then writes the file, with a progress bar when stderr is a
 * terminal; says on stderr what it wrote. Returns 0, or -1 with err set and no file left. */
int import_command(const ImportOptions *o, char *err, size_t errlen);

#endif
