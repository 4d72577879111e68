/*
 * engine/probe.h - a look inside the forward pass, for the explain mode.
 *
 * A probe attached to the reference forward pass (probe_attach: it watches the pass through
 * engine/reference.h's callbacks; the fast path computes the same numbers, bit for bit)
 * makes every quantized product
 * also compute its float32 reference from the same float input (the float weights, and
 * float copies of the keys and values), and records:
 *   - per layer and site, the energy of the reference outputs and of the error: their
 *     ratio is the signal-to-quantization-noise ratio of that site;
 *   - for one site of one layer at one position, the float input vector, the float weight
 *     row of one output (the one with the largest reference), and both outputs, so that
 *     the explain mode can retrace the integer arithmetic step by step.
 * The quantized path computes exactly what it computes without a probe. A probe needs the
 * float checkpoint (not a .qrz file), opened a second time in float32 for the references:
 * in fp32, or in fp32/rot when the pass rotates (docs/SPEC.md section 7), so that a
 * reference multiplies the same rotated input by the same rotated float weights.
 */
#ifndef ENGINE_PROBE_H
#define ENGINE_PROBE_H

#include "engine/reference.h"
#include "weights/model.h"

/* The products of a block: the seven linears, the attention scores (q . k) and the
 * weighted sum of values (p' . v). */
typedef enum { SITE_WQ, SITE_WK, SITE_WV, SITE_WO, SITE_W1, SITE_W2, SITE_W3, SITE_QK, SITE_PV, N_SITES } Site;

const char *site_name(Site s);
int site_parse(const char *name, Site *s); /* 0, or -1 for an unknown name */

typedef struct Probe {
    /* Set by the caller: what to capture in detail. */
    int layer, position, head; /* head: the query head for SITE_QK and SITE_PV */
    Site site;

    /* Filled in by the forward pass. */
    double *signal, *noise; /* [n_layers][N_SITES]: sums of y_ref^2 and of (y - y_ref)^2 */
    int captured;           /* 1 once the detail below is filled */
    float *x;               /* [k] the product's float input (for SITE_PV: p' over positions) */
    float *w;               /* [k] the float weights of `row` (SITE_QK: the key of position
                               `row`; SITE_PV: unused, the values are in v_rows) */
    int k, row;             /* reduction length, the output shown */
    float y, y_ref;         /* that output, quantized and float32 */
    float *v_rows;          /* SITE_PV: [k][head_size] the float value vectors, per position */
    int head_size;

    /* Float copies of the keys (after RoPE) and values: [n_layers][seq_len][kv_dim]. */
    float *keys, *values;
    int n_layers, seq_len, kv_dim;
    const ModelWeights *weights; /* the model the pass runs */
    const ModelWeights *floats;  /* the same model in float32 (rotated if it is): the references */
} Probe;

/* Allocates a probe's buffers for a model. Returns 0, or -1 when out of memory. */
int probe_init(Probe *p, const ModelConfig *c);
void probe_free(Probe *p);

/* SQNR of one layer's site in dB (+inf when there was no noise). */
double probe_sqnr(const Probe *p, int layer, Site s);

/* Makes the reference pass r (over the weights m, opened from a float checkpoint) fill
 * the probe as it runs; floats is the same checkpoint opened in float32, rotated when m is
 * (mode fp32, or fp32/rot). */
void probe_attach(Probe *p, Reference *r, const ModelWeights *m, const ModelWeights *floats);

#endif
