/*
 * tests/fuzz/fuzz_checkpoint.c - llama2.c checkpoints: open, quantize at load in a mode chosen
 * by the last byte, and run.
 */
#include <string.h>

#include "tests/fuzz/fuzz.h"
#include "weights/model.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static const char *const modes[] = {"fp32",  "w8a16", "qrazor", "rtn4",  "qrazor/g32/trunc",
                                        "sdr-w", "sdr-a", "sdr-kv", "sdr-p", "qrazor/cls=fp32"};
    char path[64], err[512];
    const int fd = fuzz_file(data, size, path, sizeof path);
    QuantConfig q;
    if (quant_config_parse(modes[size ? data[size - 1] % 10 : 0], &q, err, sizeof err) != 0) abort();
    ModelWeights w;
    if (model_open(&w, path, &q, NULL, err, sizeof err) == 0) {
        fuzz_forward(&w);
        model_close(&w);
    } else if (!strstr(err, path)) {
        abort(); /* every message names the file */
    }
    close(fd);
    return 0;
}
