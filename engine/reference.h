/*
 * engine/reference.h - the forward pass as docs/SPEC.md defines it, one token at a time in
 * plain loops: no threads, no SIMD, no batching. It is the text to read to learn how
 * W4A4KV4 inference works, and the definition the fast path (engine/transformer.h) is
 * tested against: in every integer mode the two give the same logits, bit for bit.
 */
#ifndef ENGINE_REFERENCE_H
#define ENGINE_REFERENCE_H

#include <stddef.h>

#include "engine/probe.h"
#include "weights/model.h"

typedef struct Reference Reference;

/* A reference forward pass over loaded weights (which must outlive it), with a cache of
 * n_ctx positions (1 .. seq_len). NULL with err set when out of memory. */
Reference *reference_new(const ModelWeights *w, int n_ctx, char *err, size_t errlen);
void reference_free(Reference *r);

/* The logits [vocab_size] after token at position pos (positions 0 .. pos - 1 must have
 * been run before). The buffer is the reference's own, overwritten by the next call. */
float *reference_forward(Reference *r, int token, int pos);

/* Attaches the explain mode's probe (engine/probe.h), or detaches it with NULL. */
void reference_set_probe(Reference *r, Probe *p);

#endif
