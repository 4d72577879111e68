/*
 * tests/synth_main.c - the synth_model command: a random checkpoint of a named shape.
 *
 *   synth_model SHAPE OUT.bin [SEED]     SHAPE: stories15M, stories42M, stories110M
 */
#include <stdio.h>
#include <stdlib.h>

#include "tests/synth_model.h"

int main(int argc, char **argv) {
    const SynthShape *s = argc >= 3 ? synth_shape(argv[1]) : NULL;
    if (!s) {
        fprintf(stderr, "usage: synth_model stories15M|stories42M|stories110M OUT.bin [SEED]\n");
        return 1;
    }
    FILE *f = fopen(argv[2], "wb");
    const int failed = !f || synth_write(f, s, argc > 3 ? strtoull(argv[3], NULL, 10) : 1) != 0;
    if (f && fclose(f) != 0) {
        perror(argv[2]);
        return 1;
    }
    if (failed) {
        fprintf(stderr, "error: cannot write %s\n", argv[2]);
        return 1;
    }
    return 0;
}
