/*
 * tests/test_layout.c - the source tree keeps the shape the README states:
 *
 *   run.c -> engine/commands/ -> engine/ -> weights/ -> kernels/,   engine/ -> tokenizer/
 *   -> weights/ (its JSON reader, for tokenizer.json)
 *
 * A directory may use its own files and those of every directory downstream of it, never
 * upstream: kernels/ knows nothing of models, files or flags; the transformer in engine/
 * knows nothing of the commands; run.c may call weights/ (the mode parser) and kernels/
 * (the thread pool) as well as engine/. Checked twice: in the #include lines of every
 * source file, and in the calls, from the symbols each object file of the program under
 * test uses and the object that defines them (nm). A directory this test does not list
 * (kernels/x86/, say) belongs to its parent. And no module (a .c file with its .h) reaches
 * itself again through includes: dependencies point one way.
 *
 * One file has a stricter rule: engine/reference.c, the definition the fast path is tested
 * against, uses nothing of the project but qr_dot (docs/SPEC.md section 3) and the types of
 * the weights, so that a fault in code the fast path runs cannot hide in the reference too.
 */
#include <dirent.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "tests/test.h"

enum { MAX_FILES = 256, MAX_INCLUDES = 32 };

typedef struct {
    char path[96];   /* e.g. engine/forward.c */
    char module[96]; /* the path without its extension: engine/forward */
    char includes[MAX_INCLUDES][96];
    int n_includes;
} Source;

static Source sources[MAX_FILES];
static int n_sources;

/* The directories a directory may use (its own first): itself and all downstream. */
enum { MAX_ALLOWED = 7 };
static const char *const allowed[][MAX_ALLOWED] = {
    {"kernels", NULL},
    {"tokenizer", "weights", NULL}, /* weights/json.h reads tokenizer.json */
    {"weights", "kernels", NULL},
    {"engine", "weights", "kernels", "tokenizer", NULL},
    {"engine/commands", "engine", "weights", "kernels", "tokenizer", NULL},
    {".", "engine/commands", "engine", "weights", "kernels", "tokenizer", NULL}, /* run.c */
};
enum { N_LAYERS = sizeof allowed / sizeof allowed[0] };

/* The row of `allowed` of a file's directory (e.g. "engine/commands" for
 * "engine/commands/bench.c", "." for "run.c"): that of its nearest listed ancestor; -1
 * when none is listed. */
static int layer_of(const char *path) {
    char dir[192];
    snprintf(dir, sizeof dir, "%s", path);
    for (char *slash = strrchr(dir, '/'); ; slash = strrchr(dir, '/')) {
        if (slash) *slash = '\0';
        for (int a = 0; a < N_LAYERS; a++)
            if (!strcmp(allowed[a][0], slash ? dir : ".")) return a;
        if (!slash) return -1;
    }
}

/* 1 if a file of layer `from` may use one of layer `to`. */
static int may_use(int from, int to) {
    for (int a = 0; a < MAX_ALLOWED && allowed[from][a]; a++)
        if (!strcmp(allowed[from][a], allowed[to][0])) return 1;
    return 0;
}

static void read_source(const char *path) {
    FILE *f = fopen(path, "r");
    if (!CHECKF(f != NULL, "cannot read %s", path) || !CHECK(n_sources < MAX_FILES)) {
        if (f) fclose(f);
        return;
    }
    Source *s = &sources[n_sources++];
    CHECKF(strlen(path) < sizeof s->path, "%s: path too long for this test", path);
    snprintf(s->path, sizeof s->path, "%.95s", path);
    snprintf(s->module, sizeof s->module, "%.*s", (int)(strrchr(path, '.') - path), path);
    char line[512];
    while (fgets(line, sizeof line, f)) {
        char inc[96];
        if (sscanf(line, " #include \"%95[^\"]\"", inc) == 1 && CHECK(s->n_includes < MAX_INCLUDES))
            memcpy(s->includes[s->n_includes++], inc, sizeof inc);
    }
    fclose(f);
}

static void read_dir(const char *dir) {
    DIR *d = opendir(dir);
    if (!CHECKF(d != NULL, "cannot list %s", dir)) return;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        char sub[192];
        struct stat st;
        snprintf(sub, sizeof sub, "%s/%.150s", dir, e->d_name);
        if (e->d_name[0] != '.' && stat(sub, &st) == 0 && S_ISDIR(st.st_mode)) { /* engine/commands, ... */
            read_dir(sub);
            continue;
        }
        const char *dot = strrchr(e->d_name, '.');
        if (!dot || (strcmp(dot, ".c") && strcmp(dot, ".h") && strcmp(dot, ".cpp"))) continue;
        char path[192];
        snprintf(path, sizeof path, "%s/%.150s", dir, e->d_name);
        read_source(path);
    }
    closedir(d);
}

static void load_tree(void) {
    n_sources = 0;
    read_dir("kernels"), read_dir("tokenizer"), read_dir("weights"), read_dir("engine");
    read_source("run.c");
}

static void test_includes_point_downstream(void) {
    load_tree();
    CHECKF(n_sources > 30, "only %d source files found: run the tests from the repository root", n_sources);
    for (int i = 0; i < n_sources; i++) {
        const int from = layer_of(sources[i].path);
        if (!CHECKF(from >= 0, "%s: a directory the layout does not know", sources[i].path)) continue;
        for (int k = 0; k < sources[i].n_includes; k++) {
            const int to = layer_of(sources[i].includes[k]);
            CHECKF(to >= 0 && may_use(from, to), "%s includes %s: %s/ must not depend on %s/", sources[i].path,
                   sources[i].includes[k], allowed[from][0], to >= 0 ? allowed[to][0] : "an unknown directory");
        }
    }
}

/* A global symbol of an object file: defined there, or used from elsewhere. */
typedef struct {
    char name[96], object[96];
    int defined;
} Symbol;

static int by_name(const void *a, const void *b) { return strcmp(((const Symbol *)a)->name, ((const Symbol *)b)->name); }

/* Whether an object (engine/forward.o) has its source in the tree (engine/forward.c or .cpp;
 * run.o is run.c). */
static int has_source(const char *object) {
    char path[128];
    struct stat st;
    const int stem = (int)strlen(object) - 2;
    snprintf(path, sizeof path, "%.*s.c", stem, object);
    if (stat(path, &st) == 0) return 1;
    snprintf(path, sizeof path, "%.*s.cpp", stem, object);
    return stat(path, &st) == 0;
}

/* The global symbols of the objects the program under test was built from: they lie
 * beside it (build/ for make test, build/asan/ for make test-asan). Returns how many
 * (malloc'd in *out), 0 when the objects are not there, -1 when nm cannot run. */
static int read_symbols(Symbol **out) {
    char binary[256], cmd[512], line[512];
    snprintf(binary, sizeof binary, "%s", test_run_binary());
    const char *dir = dirname(binary);
    snprintf(cmd, sizeof cmd, "%s/run.o", dir);
    struct stat st;
    if (stat(cmd, &st) != 0) return 0;
    snprintf(cmd, sizeof cmd,
             "cd '%s' && find kernels tokenizer weights engine -name '*.o' | sort | xargs nm -A -P -g run.o 2>&1", dir);
    FILE *p = popen(cmd, "r");
    if (!p) return -1;
    int n = 0, cap = 0, bad = 0;
    Symbol *syms = NULL;
    while (fgets(line, sizeof line, p)) {
        Symbol s = {0};
        char type[8];
        /* "engine/forward.o: all_finite T 1a0 5c", or "... U" for a symbol it uses */
        if (sscanf(line, "%95[^:]: %95s %7s", s.object, s.name, type) != 3) {
            bad++;
            continue;
        }
        if (!has_source(s.object)) continue; /* left over from a file since moved or removed */
        s.defined = strcmp(type, "U") != 0 && strcmp(type, "w") != 0 && strcmp(type, "v") != 0;
        if (n == cap && !(syms = realloc(syms, (size_t)(cap = cap ? 2 * cap : 1024) * sizeof *syms))) break;
        syms[n++] = s;
    }
    const int status = pclose(p);
    if (status != 0 || bad || !syms) {
        free(syms);
        return -1;
    }
    *out = syms;
    return n;
}

static void test_calls_point_downstream(void) {
    Symbol *syms = NULL;
    const int n = read_symbols(&syms);
    if (n <= 0) {
        test_not_run("calls between directories: %s", n == 0 ? "the program under test has no object files beside it"
                                                              : "nm (binutils) did not run");
        return;
    }
    Symbol *defs = malloc((size_t)n * sizeof *defs);
    if (!CHECK(defs != NULL)) {
        free(syms);
        return;
    }
    int n_defs = 0, n_objects = 0, n_calls = 0;
    for (int i = 0; i < n; i++) {
        if (syms[i].defined) defs[n_defs++] = syms[i];
        n_objects += i == 0 || strcmp(syms[i].object, syms[i - 1].object);
    }
    qsort(defs, (size_t)n_defs, sizeof *defs, by_name);
    CHECKF(n_objects > 30, "only %d object files", n_objects);
    for (int i = 0; i < n; i++) {
        const Symbol *def = syms[i].defined ? NULL : bsearch(&syms[i], defs, (size_t)n_defs, sizeof *defs, by_name);
        if (!def) continue; /* defined here, or by a library */
        const int from = layer_of(syms[i].object), to = layer_of(def->object);
        n_calls++;
        CHECKF(strcmp(syms[i].object, "engine/reference.o") || !strcmp(syms[i].name, "qr_dot"),
               "the reference forward pass uses %s of %s: it must compute everything but qr_dot itself",
               syms[i].name, def->object);
        CHECKF(from >= 0 && to >= 0 && may_use(from, to), "%s uses %s of %s: %s/ must not depend on %s/",
               syms[i].object, syms[i].name, def->object, from >= 0 ? allowed[from][0] : "?",
               to >= 0 ? allowed[to][0] : "?");
    }
    CHECKF(n_calls > 100, "only %d uses of the project's own symbols found", n_calls);
    free(defs);
    free(syms);
}

/* Depth-first search for modules reachable from themselves. state: 0 new, 1 on the path,
 * 2 done. Returns how many cycles it closed (printing each closing include). */
static int find_cycles(int m, int *state, char (*modules)[96], int n_modules) {
    int found = 0;
    state[m] = 1;
    for (int i = 0; i < n_sources; i++) {
        if (strcmp(sources[i].module, modules[m])) continue;
        for (int k = 0; k < sources[i].n_includes; k++) {
            char target[96];
            const char *inc = sources[i].includes[k];
            snprintf(target, sizeof target, "%.*s", (int)(strrchr(inc, '.') - inc), inc);
            for (int t = 0; t < n_modules; t++) {
                if (t == m || strcmp(modules[t], target)) continue;
                if (state[t] == 1) {
                    CHECKF(0, "include cycle: %s includes %s, whose module leads back here", sources[i].path, inc);
                    found++;
                } else if (state[t] == 0) {
                    found += find_cycles(t, state, modules, n_modules);
                }
            }
        }
    }
    state[m] = 2;
    return found;
}

static void test_no_include_cycles(void) {
    load_tree();
    static char modules[MAX_FILES][96];
    int n_modules = 0;
    for (int i = 0; i < n_sources; i++) {
        int seen = 0;
        for (int m = 0; m < n_modules; m++) seen |= !strcmp(modules[m], sources[i].module);
        if (!seen) snprintf(modules[n_modules++], sizeof modules[0], "%s", sources[i].module);
    }
    int state[MAX_FILES] = {0}, cycles = 0;
    for (int m = 0; m < n_modules; m++)
        if (state[m] == 0) cycles += find_cycles(m, state, modules, n_modules);
    CHECKF(cycles == 0, "%d include cycles among %d modules", cycles, n_modules);
}

void suite_layout(void) {
    test_run("layout_includes_point_downstream", test_includes_point_downstream);
    test_run("layout_calls_point_downstream", test_calls_point_downstream);
    test_run("layout_no_include_cycles", test_no_include_cycles);
}
