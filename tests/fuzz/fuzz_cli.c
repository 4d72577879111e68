/*
 * tests/fuzz/fuzz_cli.c - the command line: the input, cut at NUL bytes, is argv[1..]
 * for run.c's parser (compiled here with RUN_NO_MAIN, so that parse_args returns its
 * errors instead of exiting). Any argv must give a run, the help, or an error that says
 * what is wrong; never a crash, a read past an argument, or a leak.
 */
#define RUN_NO_MAIN
#include "run.c"

#include <stdint.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    enum { MAX_ARGS = 64 };
    char *copy = malloc(size + 1), *argv[MAX_ARGS + 1] = {"run"};
    if (!copy) abort();
    memcpy(copy, data, size);
    copy[size] = '\0';
    int argc = 1;
    for (char *p = copy; argc < MAX_ARGS && p <= copy + size; p += strlen(p) + 1) argv[argc++] = p;
    argv[argc] = NULL;
    Options o;
    char err[ERRLEN] = "";
    const int rc = parse_args(argc, argv, &o, err, sizeof err);
    if (rc == PARSE_HELP) {
        FILE *null = fopen("/dev/null", "w");
        if (null) usage(null), fclose(null);
    } else if (rc == PARSE_ERROR ? !err[0] : rc != PARSE_RUN) {
        abort(); /* an error says what is wrong */
    }
    free(copy);
    return 0;
}
