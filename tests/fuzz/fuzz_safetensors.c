/*
 * tests/fuzz/fuzz_safetensors.c - libFuzzer harness for the safetensors reader: any bytes
 * as a .safetensors file must give a validated tensor table or one error, never a read
 * outside the buffer. Every tensor the reader accepts is then read, first and last
 * elements, so that a wrong offset shows as an AddressSanitizer report.
 *
 *   make fuzz-build && tests/fuzz/run.sh 60 safetensors
 *
 * (from the repository root; the corpus holds small valid files to mutate).
 */
#include <stddef.h>
#include <stdint.h>

#include "weights/safetensors.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    SafeTensors st;
    char err[512];
    if (safetensors_open_buffer(&st, "fuzz.safetensors", data, size, err, sizeof err) != 0)
        return 0;
    for (int i = 0; i < st.n_tensors; i++) {
        const SafeTensor *t = &st.tensors[i];
        if (safetensors_find(&st, t->name) != t) __builtin_trap(); /* names sorted, unique */
        if (!safetensors_dtype_is_float(t->dtype) || t->n_elements == 0) continue;
        float x[64];
        const uint64_t n = t->n_elements < 64 ? t->n_elements : 64;
        if (safetensors_read(t, 0, n, x) != 0 || safetensors_read(t, t->n_elements - 1, 1, x) != 0)
            __builtin_trap(); /* a validated range must read */
    }
    safetensors_close(&st);
    return 0;
}
