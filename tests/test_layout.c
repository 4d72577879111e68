/*
 * tests/test_layout.c - the source tree keeps the shape the README states:
 *
 *   run.c -> engine/ -> weights/ -> kernels/,   engine/ -> kernels/, tokenizer/ (-> weights/json.h)
 *
 * Read from the #include lines of every source file (subdirectories such as engine/commands/
 * belong to their top directory): a file may include its own directory
 * and the directories downstream of it, nothing upstream (kernels/ knows nothing of
 * models, files or flags), and no module (a .c file with its .h) reaches itself again
 * through includes: dependencies point one way.
 */
#include <dirent.h>
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

/* The directories a directory may include from (its own first). */
static const char *const allowed[][5] = {
    {"kernels", NULL},
    {"tokenizer", "weights", NULL}, /* weights/json.h reads tokenizer.json */
    {"weights", "kernels", NULL},
    {"engine", "weights", "kernels", "tokenizer", NULL},
    {".", "engine", NULL}, /* run.c */
};

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

/* The directory of a path ("." for a top-level file). */
static void dir_of(const char *path, char *out, size_t len) {
    const char *slash = strchr(path, '/');
    snprintf(out, len, "%.*s", slash ? (int)(slash - path) : 1, slash ? path : ".");
}

static void test_includes_point_downstream(void) {
    load_tree();
    CHECKF(n_sources > 30, "only %d source files found: run the tests from the repository root", n_sources);
    for (int i = 0; i < n_sources; i++) {
        char from[32];
        dir_of(sources[i].path, from, sizeof from);
        const char *const *ok = NULL;
        for (size_t a = 0; a < sizeof allowed / sizeof allowed[0]; a++)
            if (!strcmp(allowed[a][0], from)) ok = allowed[a];
        if (!CHECKF(ok != NULL, "%s: a directory the layout does not know", sources[i].path)) continue;
        for (int k = 0; k < sources[i].n_includes; k++) {
            char to[32];
            dir_of(sources[i].includes[k], to, sizeof to);
            int fine = 0;
            for (int a = 0; a < 5 && ok[a]; a++) fine |= !strcmp(ok[a], to);
            CHECKF(fine, "%s includes %s: %s/ must not depend on %s/", sources[i].path, sources[i].includes[k],
                   from, to);
        }
    }
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
    test_run("layout_no_include_cycles", test_no_include_cycles);
}
