/*
 * tests/test_fuzz_findings.c - every input a fuzz target (tests/fuzz/) found a bug with,
 * replayed through the same entry point, with what must happen instead. Most of these only
 * misbehaved under the sanitizers: `make test-asan` is where they would fail again.
 */
#include <stdlib.h>
#include <string.h>

#include "tests/test.h"
#include "weights/safetensors.h"

/* safetensors (clang UBSan): a header "{}" declares no tensor, and sorting the empty
 * table called qsort(NULL, 0, ...), undefined behaviour (qsort's pointer is declared
 * non-null). A file without tensors opens, and has none. */
static void test_safetensors_without_tensors(void) {
    static const unsigned char input[] = {0x08, 0, 0, 0, 0, 0, 0, 0, '{', '}', ' ', ' ', ' ', ' ', ' ', ' '};
    SafeTensors st;
    char err[512] = "";
    const int rc = safetensors_open_buffer(&st, "empty.safetensors", input, sizeof input, err, sizeof err);
    CHECKF(rc == 0 && st.n_tensors == 0, "rc %d, %d tensors: %s", rc, rc == 0 ? st.n_tensors : -1, err);
    if (rc == 0) {
        CHECK(safetensors_find(&st, "model.embed_tokens.weight") == NULL);
        safetensors_close(&st);
    }
}

void suite_fuzz_findings(void) {
    test_run("fuzz_findings_safetensors_without_tensors", test_safetensors_without_tensors);
}
