/*
 * weights/quant_config.h - the mode policy: what gets quantized, site by site, and how each
 * matmul operand is stored as a result. Parsed from -q, stored in .qrz headers, followed
 * by the engine.
 */
#ifndef WEIGHTS_QUANT_CONFIG_H
#define WEIGHTS_QUANT_CONFIG_H

#include <stddef.h>

#include "kernels/quant.h"

/* Where the integer pipeline applies, and how, site by site (docs/SPEC.md sections 4-5).
 * Either all four block sites are float32 (mode fp32) or none is. */
typedef struct {
    QuantKind weights; /* the 7 linears of every block */
    QuantKind acts;    /* activations entering a matmul: linear inputs and attention queries */
    QuantKind keys;    /* the key cache: SDR (type r4), SDR5 (r5) or INT (i8) in qrazor */
    QuantKind values;  /* the value cache, likewise (docs/SPEC.md section 6) */
    QuantKind probs;   /* attention probabilities (with the value scales folded in) */
    QuantKind cls;     /* the classifier (final logits matmul): its weights and its input */
    int group;         /* SDR group size G: 16, 32, 64 or 128 */
    int rounding;      /* SDR rounds (1, the default) or truncates (0) */
    QuantKind embedding; /* the token embedding: QUANT_F32, or QUANT_INT (INT8 rows with a
                            scale each, dequantized per lookup: a table lookup, not a matmul) */
    int rotate;        /* 1: docs/SPEC.md section 7's rotations (QuaRot-style), the knob `rot`:
                          the weights rotated when loaded or written, the query and key heads
                          and w2's input while running */
} QuantConfig;

/* Parses a mode (NULL: the default, qrazor): a base name, then options separated by '/':
 *   fp32 | w8a16 | qrazor | rtn4      the modes of docs/SPEC.md section 5
 *   quarot                            rtn4/rot: QuaRot-RTN, the baseline of the QRazor paper
 *   sdr-w | sdr-a | sdr-kv | sdr-p    w8a16 with one site razored: weights, activations,
 *                                     KV cache or attention probabilities (ablations)
 *   /rot                              any of them on a rotated model (docs/SPEC.md section 7)
 *   /gN  /trunc  /round  /cls=fp32|int8|qrazor|rtn4  /emb=fp32|int8 (the embedding)
 *   /k4 /k5 /k8  /v4 /v5 /v8          qrazor's KV-cache types (docs/SPEC.md section 6):
 *                                     keys / values razored to 4-bit (r4, the default)
 *                                     or 5-bit codes (r5), or INT8 not razored (i8)
 * e.g. "qrazor", "qrazor/g32/trunc", "qrazor/cls=fp32", "qrazor/k5". The classifier
 * follows the base (int8 for the ablations). Returns 0, or -1 with err set. */
int quant_config_parse(const char *spec, QuantConfig *q, char *err, size_t errlen);

/* Checks a configuration (valid group, float32 everywhere in the block or nowhere, cache
 * types only with qrazor). Returns 0, or -1 with err set. */
int quant_config_check(const QuantConfig *q, char *err, size_t errlen);

/* The canonical name of a configuration (the base plus its non-default options; rtn4 with
 * rotations is "quarot", any other base gets "/rot" after its name). */
void quant_config_name(const QuantConfig *q, char *buf, size_t len);

/* 1 if any site is razored (then the group size and rounding matter). */
int quant_config_razors(const QuantConfig *q);

/* The KV-cache type names of docs/SPEC.md section 6 and llama.cpp's --cache-type-k/-v:
 * "r4" (SDR), "r5" (SDR5), "i8" (INT); parse one (NULL: the default, r4; -1 if unknown).
 * Sets *kind. */
const char *quant_cache_type_name(QuantKind kind);
int quant_cache_type_parse(const char *name, QuantKind *kind);

/* Sets the key and value cache types of a qrazor configuration. Returns 0, or -1 with err
 * set when q is not qrazor (the types are qrazor's alone). */
int quant_config_set_cache_types(QuantConfig *q, QuantKind keys, QuantKind values, char *err, size_t errlen);

/* The embedding a model file gets when spec (a mode, or NULL) does not say (no /emb=):
 * INT8 rows when the classifier is quantized (a quarter of the bytes, at a cost measured
 * in docs/FORMAT.md), float32 when it is float32, which a tied model's classifier then
 * shares. Sets q->embedding from q->cls. */
void quant_config_default_embedding(QuantConfig *q, const char *spec);

/* "fp32", "int8", "qrazor", "rtn4": the --cls names of the kinds; parse one (-1 if unknown). */
const char *quant_kind_cls_name(QuantKind k);
int quant_kind_parse_cls(const char *name, QuantKind *k);

/* How a matmul operand of kind `mine` is stored when its partner has kind `other`: 4-bit
 * codes when both sides are 4-bit (SDR or RTN4); otherwise as integer values (a 4-bit
 * operand expanded to c << s, which fits the INT8 / INT16 kernel and gives exactly the
 * same product); float32 when float32. */
typedef enum { STORE_F32, STORE_INT, STORE_R4 } Storage;
Storage storage_for(QuantKind mine, QuantKind other);

#endif
