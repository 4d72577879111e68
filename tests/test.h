/*
 * tests/test.h - a dependency-free test harness.
 *
 * A test is a void function that makes checks. It passes when every check held AND it made
 * at least one: a test that asserts nothing counts as failed. Missing test data is a
 * failure too, never a skip. What cannot run on this machine (an AVX-512 kernel on a CPU
 * without it, a renderer that is not installed) is said with test_not_run() and counted
 * apart, never as passed. The runner's last line is "N passed, M failed, K not run".
 */
#ifndef TESTS_TEST_H
#define TESTS_TEST_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "kernels/simd.h"

/* Records one check; on failure prints file:line and the printf-style message. */
int check_at(int ok, const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

#define CHECK(cond) check_at(!!(cond), __FILE__, __LINE__, "%s", #cond)
#define CHECKF(cond, ...) check_at(!!(cond), __FILE__, __LINE__, __VA_ARGS__)

/* Runs one test if it matches the runner's filter. */
void test_run(const char *name, void (*fn)(void));

/* Records that the current test could not run some of its checks here, and why (printf
 * style; say what was not run and what it needs, e.g. "avx512 kernels: this CPU lacks
 * AVX-512 VNNI"). Each distinct reason counts once in the final "K not run", whatever the
 * number of calls. A test that made no check but said why it could not is "not run", not
 * failed; one that made checks too passes or fails on them, and the reason is printed
 * beside it. */
void test_not_run(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* The kernels of SIMD level l for a test that checks every level: the table, counted in the
 * runner's summary as a test of that level (native or emulated, as the build is); or NULL
 * when this build or CPU cannot run it (the summary says so: the emulated pass of make
 * test, whose build holds every level, checks it). Tests that check every level have
 * "every_level" in their names: the emulated pass runs those. */
const KernelTable *test_level(int l);

/* ---------------------------------------------------------------- helpers for tests */

/* Path of the program under test (the runner's --run argument). */
const char *test_run_binary(void);

/* Reads a whole file into a NUL-terminated malloc'd buffer; records a failed check (and
 * returns NULL) when it cannot, so missing data fails the test. */
char *test_read_file(const char *path, size_t *size);

/* The same for a gzip-compressed file (decompressed by gzip -dc). */
char *test_read_gzip(const char *path, size_t *size);

/* Reads whitespace-separated integers from a text file; -1 (and a failed check) on error. */
int test_read_ints(const char *path, int **out);

/* The runner's private temporary directory (under $TMPDIR, else /tmp). The runner removes
 * it, with everything in it, when it ends: the suite leaves no file behind. */
const char *test_temp_dir(void);

/* The path of `name` in that directory (nothing is created; static storage per call slot:
 * up to 8 live paths). */
const char *test_temp_path(const char *name);

/* A fresh file in that directory holding `size` bytes; returns its path (static storage
 * per call slot: up to 8 live paths), NULL after a failed check. */
const char *test_temp_file(const void *data, size_t size);

/* Runs the program under test with argv (argv[0] is ignored and replaced), optional stdin
 * text and an optional extra environment variable ("NAME=value"); captures its exit
 * status, stdout and stderr (malloc'd, NUL-terminated). */
typedef struct {
    int status; /* exit status, or 128 + signal */
    char *out, *err;
    double max_rss_mb; /* the most memory it held at once (resident set, MiB); this counts
                          the runner's own pages that the fork copied, so compare it with
                          a small run's, not with a fixed figure */
} RunResult;
RunResult test_run_program(const char *const *argv, const char *stdin_text, const char *env);
void run_result_free(RunResult *r);

/* The same in two steps, for a test that acts while the program runs (signals it, changes
 * its input): start it, then wait for its end and capture what test_run_program would. */
typedef struct {
    int pid; /* -1: it could not start (a failed check was recorded) */
    FILE *out, *err; /* its stdout and stderr, read back at the end */
} RunningProgram;
RunningProgram test_start_program(const char *const *argv, const char *stdin_text, const char *env);
RunResult test_finish_program(RunningProgram *p);

/* Whether it ends within `seconds` (then test_finish_program returns at once). A test of
 * something that must not hang kills it (SIGKILL) when it does not, and fails. */
int test_program_ends_within(const RunningProgram *p, double seconds);

/* Deterministic pseudo-random numbers for randomized tests. */
uint64_t test_rand(uint64_t *state);
int test_rand_range(uint64_t *state, int lo, int hi); /* inclusive */

#endif
