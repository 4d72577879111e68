/*
 * tests/fuzz/fuzz_hf_config.c - libFuzzer harness for the JSON reader and config.json:
 * any bytes must parse to a document whose every value can be walked and converted, or
 * give one error; as a config.json, they must give a configuration the engine accepts
 * (config_validate) or one error.
 *
 *   make fuzz-build && tests/fuzz/run.sh 60 hf_config
 *
 * (from the repository root; the corpus holds real configs and a few variants).
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "weights/hf_config.h"
#include "weights/json.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    JsonDoc doc;
    char err[512];
    if (json_parse(&doc, (const char *)data, size, JSON_MODEL_FILE_LIMITS, err, sizeof err) == 0) {
        for (int i = 0; i < doc.n_values; i++) {
            const JsonValue *v = &doc.values[i];
            uint64_t u;
            double d;
            json_u64(v, &u);
            json_double(v, &d);
            if ((v->type == JSON_STRING || v->type == JSON_NUMBER) && strlen(v->text) != v->len)
                __builtin_trap(); /* decoded strings hold no NUL */
            int n = 0;
            for (const JsonValue *c = json_first(&doc, v); c; c = json_next(&doc, c)) {
                if (v->type == JSON_OBJECT && json_get(&doc, v, c->key) != c) __builtin_trap();
                n++;
            }
            if (n != v->n_children) __builtin_trap();
        }
        json_free(&doc);
    }
    /* A small limit on values: refused past it, never more. */
    if (json_parse(&doc, (const char *)data, size, (JsonLimits){size, 8}, err, sizeof err) == 0) {
        if (doc.n_values > 8) __builtin_trap();
        json_free(&doc);
    }
    HfConfig h;
    char why[256];
    if (hf_config_parse(&h, "config.json", (const char *)data, size, err, sizeof err) == 0 &&
        config_validate(&h.cfg, why, sizeof why) != 0)
        __builtin_trap(); /* an accepted config is one the engine runs */
    return 0;
}
