/*
 * engine/commands/explain.h - W4A4 inference, shown with the model's own numbers.
 *
 * Runs a prompt and, for one site of one layer at the last token, retraces the integer
 * arithmetic of docs/SPEC.md step by step: the float input, its INT16 codes, one group
 * razored bit by bit, the matching weight group, their integer dot product and shift,
 * the accumulator and the float output beside the float32 result. Then a table of the
 * signal-to-quantization-noise ratio of every site of every layer in each mode, and the
 * memory of each representation. Optionally an SVG figure of the same.
 */
#ifndef ENGINE_EXPLAIN_H
#define ENGINE_EXPLAIN_H

#include <stdio.h>

#include "engine/probe.h"

typedef struct {
    const char *model_path;     /* a llama2.c checkpoint: the float weights are the reference */
    const char *tokenizer_path; /* NULL: found beside the model */
    const char *prompt;         /* its last token is the one retraced */
    int layer, head;            /* head: which query head for the qk and pv sites */
    Site site;
    int group, rounding;        /* the razoring explained (G, rounding or truncation) */
    QuantKind keys;             /* the key cache: QUANT_SDR (4-bit codes) or QUANT_SDR5
                                   (5-bit codes, -ctk r5: docs/SPEC.md section 6) */
    int color;                  /* ANSI emphasis in the text */
    const char *svg_path;       /* NULL, or where to write the figure */
    size_t kv_limit;            /* bytes the KV cache may take (engine/commands/command.h) */
} ExplainOptions;

/* Runs the prompt (one thread: the probe looks inside every step) with a KV cache of its
 * length, and writes the explanation to out. Returns 0, or -1 with err set. */
int explain_command(const ExplainOptions *o, FILE *out, char *err, size_t errlen);

#endif
