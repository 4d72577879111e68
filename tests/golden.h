/*
 * tests/golden.h - the golden-data comparison of tests/test_forward.c, for other suites
 * that run a model against the oracle's logits and greedy continuations.
 */
#ifndef TESTS_GOLDEN_H
#define TESTS_GOLDEN_H

#include "kernels/threadpool.h"

typedef struct {
    const char *model;     /* checkpoint or .qrz path */
    const char *case_path; /* tests/data/golden/MODEL/CASE */
    const char *modes;     /* the golden files' modes it has beyond fp32, w8a16, qrazor-g16,
                              qrazor-g16-clsq and rtn4 */
} GoldenCase;

/* Runs golden case gc in `mode` (the golden file's name: fp32, w8a16, qrazor-gN,
 * qrazor-g16-clsq, rtn4, ...): the prompt as one batched pass, then the greedy
 * continuation one token at a time; logits within `tolerance` of the logit range at every
 * position, greedy ids equal. A .qrz model runs as its file says. */
void golden_check_case(const GoldenCase *gc, const char *mode, double tolerance, ThreadPool *pool);

/* The tolerance of a golden mode (tests/test_forward.c says why each). */
double golden_tolerance(const char *mode);

#endif
