/*
 * tests/test_main.c - the test runner: harness, helpers and the list of suites.
 *
 *   run_tests --run PATH_TO_RUN [--every-level] [FILTER...]     (from the repository root)
 *
 * Runs every test whose name contains one of the FILTERs (all by default) and ends with the
 * lines "kernel levels: ..." (which levels the tests checked, native or emulated) and
 * "N passed, M failed, K not run"; exit status 0 only when nothing failed. --every-level
 * also fails the run when a level that this build and CPU run was checked by no test (the
 * emulated pass, whose build holds every level, runs with it; so does make test-arm).
 */
#define _DEFAULT_SOURCE /* wait4: the memory a program took, from its resource usage */

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "tests/test.h"

void suite_checkpoint(void);
void suite_kernels(void);
void suite_gemm(void);
void suite_tokenizer(void);
void suite_bpe(void);
void suite_sampler(void);
void suite_forward(void);
void suite_reference(void);
void suite_layout(void);
void suite_cache_types(void);
void suite_eval(void);
void suite_qrz(void);
void suite_explain(void);
void suite_cli(void);
void suite_hf(void);
void suite_chat(void);
void suite_fuzz_findings(void);
void suite_rotation(void);

enum { MAX_FILTERS = 8 };
static const char *filters[MAX_FILTERS];
static int n_filters;
static int require_every_level;
static const char *run_binary = NULL;
static int checks_made, checks_failed;
static int tests_passed, tests_failed, parts_not_run;

/* The tests that checked each SIMD level (test_level), and whether the current one did. */
static int level_tests[SIMD_LEVELS];
static int level_checked[SIMD_LEVELS];

/* A level this build or CPU cannot run is not a part of the test left undone: it is the
 * emulated pass's to check, and the runner's last lines say which levels were checked
 * where (report_levels). */
const KernelTable *test_level(int l) {
    const KernelTable *k = simd_kernels((SimdLevel)l);
    if (k) level_checked[l] = 1;
    return k;
}

/* Prints which levels were checked, and how; returns how many levels no test checked. */
static int report_levels(void) {
    int any = 0, unchecked = 0;
    for (int l = 0; l < SIMD_LEVELS; l++) any |= level_tests[l] > 0;
    if (!any && !require_every_level) return 0;
    printf("kernel levels:");
    for (int l = 0; l < SIMD_LEVELS; l++) {
        const int runs = simd_kernels((SimdLevel)l) != NULL;
        const char *how = level_tests[l] ? (l == SIMD_SCALAR || !simd_emulated() ? "native" : "emulated by SIMDe")
                          : runs ? "CHECKED BY NO TEST"
                                 : "not run (not this CPU's: the emulated pass checks it)";
        printf("%s %s %s", l ? "," : "", simd_level_name((SimdLevel)l), how);
        if (level_tests[l]) printf(" (%d tests)", level_tests[l]);
        unchecked += runs && !level_tests[l];
    }
    printf("\n");
    return unchecked;
}

/* The current test's reasons for not running some checks (distinct ones only). */
enum { MAX_REASONS = 8 };
static char not_run[MAX_REASONS][160];
static int n_not_run;

int check_at(int ok, const char *file, int line, const char *fmt, ...) {
    checks_made++;
    if (ok) return 1;
    if (checks_failed++ < 20) { /* a broken loop should not flood the log */
        va_list ap;
        va_start(ap, fmt);
        fprintf(stdout, "    %s:%d: check failed: ", file, line);
        vfprintf(stdout, fmt, ap);
        fputc('\n', stdout);
        va_end(ap);
    }
    return 0;
}

void test_not_run(const char *fmt, ...) {
    char why[sizeof not_run[0]];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, sizeof why, fmt, ap);
    va_end(ap);
    for (int i = 0; i < n_not_run && i < MAX_REASONS; i++)
        if (!strcmp(not_run[i], why)) return;
    if (n_not_run < MAX_REASONS) snprintf(not_run[n_not_run], sizeof not_run[0], "%s", why);
    n_not_run++; /* reasons past the eighth are counted, not printed */
}

/* Whether the test of that name is one to run: all when no filter was given. */
static int selected(const char *name) {
    for (int i = 0; i < n_filters; i++)
        if (strstr(name, filters[i])) return 1;
    return n_filters == 0;
}

void test_run(const char *name, void (*fn)(void)) {
    if (!selected(name)) return;
    checks_made = checks_failed = n_not_run = 0;
    memset(level_checked, 0, sizeof level_checked);
    fn();
    for (int l = 0; l < SIMD_LEVELS; l++) level_tests[l] += level_checked[l];
    if (checks_made == 0 && n_not_run == 0) {
        printf("    test made no checks\n");
        checks_failed = 1;
    }
    for (int i = 0; i < n_not_run && i < MAX_REASONS; i++) printf("    not run: %s\n", not_run[i]);
    parts_not_run += n_not_run;
    if (checks_failed) {
        tests_failed++;
        printf("FAIL %s (%d of %d checks failed)\n", name, checks_failed, checks_made);
    } else if (checks_made == 0) {
        printf("--   %s (not run)\n", name);
    } else {
        tests_passed++;
        printf("ok   %s (%d checks%s)\n", name, checks_made, n_not_run ? "; some not run" : "");
    }
    fflush(stdout);
}

const char *test_run_binary(void) { return run_binary; }

/* Reads the rest of f into a NUL-terminated malloc'd buffer; closes f. */
static char *read_all(FILE *f, const char *path, size_t *size);

char *test_read_file(const char *path, size_t *size) {
    FILE *f = fopen(path, "rb");
    if (!CHECKF(f != NULL, "cannot open test data %s: %s", path, strerror(errno))) return NULL;
    return read_all(f, path, size);
}

char *test_read_gzip(const char *path, size_t *size) {
    FILE *probe = fopen(path, "rb");
    if (!CHECKF(probe != NULL, "cannot open test data %s: %s", path, strerror(errno))) return NULL;
    fclose(probe);
    char command[600];
    snprintf(command, sizeof command, "gzip -dc '%s'", path);
    FILE *f = popen(command, "r");
    if (!CHECKF(f != NULL, "cannot run gzip -dc %s", path)) return NULL;
    size_t n = 0;
    char *buf = read_all(f, path, &n);
    if (!buf) return NULL;
    if (size) *size = n;
    return buf;
}

static char *read_all(FILE *f, const char *path, size_t *size) {
    char *buf = NULL;
    size_t n = 0, cap = 0;
    for (;;) {
        if (n + 1 >= cap) {
            cap = cap ? 2 * cap : 4096;
            char *nb = realloc(buf, cap);
            if (!nb) {
                free(buf);
                fclose(f);
                CHECKF(0, "out of memory reading %s", path);
                return NULL;
            }
            buf = nb;
        }
        size_t got = fread(buf + n, 1, cap - n - 1, f);
        n += got;
        if (got == 0) break;
    }
    const int piped = fseek(f, 0, SEEK_CUR) != 0; /* a pipe from gzip: its exit status says if all came */
    const int status = piped ? pclose(f) : fclose(f);
    if (!CHECKF(status == 0, "reading %s failed (status %d)", path, status)) return free(buf), NULL;
    buf[n] = '\0';
    if (size) *size = n;
    return buf;
}

int test_read_ints(const char *path, int **out) {
    char *text = test_read_file(path, NULL);
    if (!text) return -1;
    int n = 0, cap = 64;
    int *v = malloc((size_t)cap * sizeof *v);
    char *p = text, *end;
    for (;;) {
        long x = strtol(p, &end, 10);
        if (end == p) break;
        if (n == cap) v = realloc(v, (size_t)(cap *= 2) * sizeof *v);
        v[n++] = (int)x;
        p = end;
    }
    free(text);
    *out = v;
    return n;
}

static char temp_dir[256];

const char *test_temp_dir(void) { return temp_dir; }

/* Makes the private temporary directory. Returns 0, or -1 when it cannot. */
static int make_temp_dir(void) {
    const char *base = getenv("TMPDIR") && *getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
    snprintf(temp_dir, sizeof temp_dir, "%s/qrazor-tests-XXXXXX", base);
    return mkdtemp(temp_dir) ? 0 : -1;
}

/* Removes path and, if it is a directory, everything below it. */
static void remove_tree(const char *path) {
    DIR *d = opendir(path);
    for (struct dirent *e; d && (e = readdir(d));) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        char sub[512];
        snprintf(sub, sizeof sub, "%s/%s", path, e->d_name);
        remove_tree(sub);
    }
    if (d) closedir(d);
    remove(path);
}

const char *test_temp_path(const char *name) {
    static char paths[8][320];
    static int next;
    char *path = paths[next++ % 8];
    snprintf(path, sizeof paths[0], "%s/%s", temp_dir, name);
    return path;
}

const char *test_temp_file(const void *data, size_t size) {
    char *path = (char *)test_temp_path("file-XXXXXX");
    int fd = mkstemp(path);
    if (!CHECKF(fd >= 0, "mkstemp: %s", strerror(errno))) return NULL;
    size_t done = 0;
    while (done < size) {
        ssize_t w = write(fd, (const char *)data + done, size - done);
        if (w <= 0) break;
        done += (size_t)w;
    }
    close(fd);
    return CHECKF(done == size, "short write to %s", path) ? path : NULL;
}

static char *slurp_fd(int fd) {
    lseek(fd, 0, SEEK_SET);
    size_t n = 0, cap = 4096;
    char *buf = malloc(cap);
    for (;;) {
        if (n + 1 >= cap) buf = realloc(buf, cap *= 2);
        ssize_t got = read(fd, buf + n, cap - n - 1);
        if (got <= 0) break;
        n += (size_t)got;
    }
    buf[n] = '\0';
    return buf;
}

RunningProgram test_start_program(const char *const *argv, const char *stdin_text, const char *env) {
    RunningProgram p = {-1, NULL, NULL};
    FILE *in = tmpfile(), *out = tmpfile(), *err = tmpfile();
    if (!CHECKF(in && out && err, "tmpfile failed")) return p;
    if (stdin_text) fputs(stdin_text, in);
    fflush(in);
    rewind(in);
    fflush(stdout);
    const pid_t pid = fork();
    if (pid == 0) {
        /* SIGINT and SIGQUIT as at a shell prompt, whatever the runner inherited (a
         * background job ignores both); what a test set itself (an ignored SIGXFSZ) stays. */
        sigset_t none;
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        signal(SIGINT, SIG_DFL);
        signal(SIGQUIT, SIG_DFL);
        dup2(fileno(in), 0);
        dup2(fileno(out), 1);
        dup2(fileno(err), 2);
        if (env) {
            char name[64];
            const size_t len = strcspn(env, "=");
            snprintf(name, sizeof name, "%.*s", (int)len, env);
            setenv(name, env[len] ? env + len + 1 : "", 1);
        }
        int n = 0;
        while (argv[n]) n++;
        char **args = calloc((size_t)n + 1, sizeof *args);
        args[0] = (char *)run_binary;
        for (int i = 1; i < n; i++) args[i] = (char *)argv[i];
        execv(run_binary, args);
        _exit(127);
    }
    fclose(in);
    p.pid = (int)pid;
    p.out = out;
    p.err = err;
    return p;
}

RunResult test_finish_program(RunningProgram *p) {
    RunResult r = {.status = -1};
    if (p->pid < 0) return r;
    int st = 0;
    struct rusage usage = {0};
    wait4((pid_t)p->pid, &st, 0, &usage);
    r.status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
    r.max_rss_mb = usage.ru_maxrss / 1024.0; /* Linux counts in KiB */
    r.out = slurp_fd(fileno(p->out));
    r.err = slurp_fd(fileno(p->err));
    fclose(p->out), fclose(p->err);
    p->pid = -1;
    return r;
}

int test_program_ends_within(const RunningProgram *p, double seconds) {
    const struct timespec pause = {0, 10000000};
    for (double waited = 0; waited < seconds; waited += 0.01) {
        siginfo_t info = {0};
        if (waitid(P_PID, (id_t)p->pid, &info, WEXITED | WNOHANG | WNOWAIT) == 0 && info.si_pid == p->pid) return 1;
        nanosleep(&pause, NULL);
    }
    return 0;
}

RunResult test_run_program(const char *const *argv, const char *stdin_text, const char *env) {
    RunningProgram p = test_start_program(argv, stdin_text, env);
    return test_finish_program(&p);
}

void run_result_free(RunResult *r) {
    free(r->out);
    free(r->err);
}

uint64_t test_rand(uint64_t *s) { /* splitmix64 */
    uint64_t z = (*s += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

int test_rand_range(uint64_t *s, int lo, int hi) {
    return lo + (int)(test_rand(s) % (uint64_t)(hi - lo + 1));
}

int main(int argc, char **argv) {
    int too_many = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--run") && i + 1 < argc)
            run_binary = argv[++i];
        else if (!strcmp(argv[i], "--every-level"))
            require_every_level = 1;
        else if (n_filters < MAX_FILTERS)
            filters[n_filters++] = argv[i];
        else
            too_many = 1;
    }
    if (!run_binary || too_many) {
        fprintf(stderr, "usage: run_tests --run PATH_TO_RUN [--every-level] [FILTER...]  (from the repo root, at most %d filters)\n",
                MAX_FILTERS);
        return 2;
    }
    if (make_temp_dir() != 0) {
        fprintf(stderr, "run_tests: cannot make a temporary directory: %s\n", strerror(errno));
        return 2;
    }
    suite_checkpoint();
    suite_kernels();
    suite_gemm();
    suite_tokenizer();
    suite_bpe();
    suite_sampler();
    suite_forward();
    suite_rotation();
    suite_reference();
    suite_layout();
    suite_cache_types();
    suite_eval();
    suite_qrz();
    suite_explain();
    suite_cli();
    suite_hf();
    suite_chat();
    suite_fuzz_findings();
    remove_tree(temp_dir);
    const int unchecked = report_levels();
    if (require_every_level && unchecked)
        printf("%d kernel level%s of this build checked by no test\n", unchecked, unchecked == 1 ? "" : "s");
    printf("%d passed, %d failed, %d not run\n", tests_passed, tests_failed, parts_not_run);
    return tests_failed || (require_every_level && unchecked) ? 1 : 0;
}
