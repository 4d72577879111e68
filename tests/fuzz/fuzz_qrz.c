/*
 * tests/fuzz/fuzz_qrz.c - .qrz files: map, validate, and run.
 */
#include <string.h>

#include "tests/fuzz/fuzz.h"
#include "weights/model.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char path[64], err[512];
    const int fd = fuzz_file(data, size, path, sizeof path);
    ModelWeights w;
    /* Through model_open, as the program does: a file that does not start like a .qrz is
     * read as a checkpoint (and rejected, nearly always). */
    QuantConfig q;
    quant_config_parse("qrazor", &q, err, sizeof err);
    if (model_open(&w, path, &q, NULL, err, sizeof err) == 0) {
        fuzz_forward(&w);
        model_close(&w);
    } else if (!strstr(err, path)) {
        abort();
    }
    close(fd);
    return 0;
}
