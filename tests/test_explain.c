/*
 * tests/test_explain.c - the explain mode: its sections, the arithmetic it prints checked
 * against the SDR rule recomputed here, and its SVG figure parsed and rendered.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tests/test.h"

#define ARGS(...) ((const char *const[]){"run", __VA_ARGS__, NULL})

/* docs/SPEC.md section 2, written again here (not the engine's code): the shift of a
 * group of stage-1 integers and the 4-bit code of one of them. */
static int spec_shift(const long *q, int n) {
    unsigned long m = 0;
    for (int i = 0; i < n; i++) m |= (unsigned long)labs(q[i]);
    int lead = -1;
    while (m >> (lead + 1)) lead++;
    return lead > 2 ? lead - 2 : 0;
}

static long spec_code(long q, int s) {
    long c = (labs(q) + (s > 0 ? 1L << (s - 1) : 0)) >> s;
    c = c > 7 ? 7 : c;
    return q < 0 ? -c : c;
}

/* Checks every group table in the output: the rows "i q binary [+1] code 4-bit c<<s error"
 * after a line "... shift s = max(0, P - 2) = S ...". Returns how many rows it checked. */
static int check_group_tables(const char *out) {
    int rows = 0;
    for (const char *at = strstr(out, "shift s = max"); at; at = strstr(at + 1, "shift s = max")) {
        const char *eq = strstr(at, ") = ");
        const int shift = eq ? atoi(eq + 4) : -1;
        const char *line = strstr(at, "|q| binary");
        line = line ? strchr(line, '\n') : NULL; /* the rows start after the column titles */
        long q[128], code[128], value[128], error[128];
        int n = 0;
        while (line && n < 128) {
            line++;
            int i;
            char bin[64], rest[128];
            if (sscanf(line, " %d %ld %63s %127[^\n]", &i, &q[n], bin, rest) != 4) break;
            /* The rest: optional "+1", code, sign bit, 3 magnitude bits, c<<s, error. */
            const char *r = rest;
            if (!strncmp(r, "+1", 2)) r += 2;
            int sign;
            char bits[8];
            if (sscanf(r, " %ld %d %3s %ld %ld", &code[n], &sign, bits, &value[n], &error[n]) != 5) break;
            const long magnitude = strtol(bits, NULL, 2); /* the three magnitude bits */
            CHECKF(sign == (code[n] < 0) && magnitude == labs(code[n]), "row %d: 4-bit field %d %s for code %ld",
                   i, sign, bits, code[n]);
            n++;
            line = strchr(line, '\n');
        }
        if (!CHECKF(n > 0, "a group table without rows")) continue;
        CHECKF(spec_shift(q, n) == shift, "printed shift %d, the rule gives %d", shift, spec_shift(q, n));
        for (int k = 0; k < n; k++) {
            CHECKF(code[k] == spec_code(q[k], shift), "q %ld: printed code %ld, the rule gives %ld", q[k],
                   code[k], spec_code(q[k], shift));
            CHECKF(value[k] == code[k] * (1L << shift) && error[k] == value[k] - q[k],
                   "q %ld: value %ld or error %ld inconsistent", q[k], value[k], error[k]);
            rows++;
        }
    }
    return rows;
}

static void test_explain_sections_and_arithmetic(void) {
    static const char *const sites[] = {"w1", "wo", "qk", "pv", "w2"};
    for (int s = 0; s < 5; s++) {
        RunResult r = test_run_program(ARGS("models/stories260K.bin", "--explain", "-i", "Once upon a time",
                                            "--layer", "2", "--site", sites[s]), NULL, "NO_COLOR=1");
        const char *out = r.out ? r.out : "";
        CHECKF(r.status == 0, "--site %s: exit %d: %s", sites[s], r.status, r.err);
        static const char *const sections[] = {"1. The activation", "2. Razoring", "3. ", "4. The integer product",
                                               "5. Signal-to-quantization-noise", "6. Memory", "7. Rotations",
                                               "\n  qrazor/rot\n", "\n  quarot\n", "\n  without rot ", "\n  with rot "};
        for (int k = 0; k < 11; k++) CHECKF(strstr(out, sections[k]), "--site %s: no section '%s'", sites[s], sections[k]);
        /* The float32 references of a rotated run multiply the rotated inputs by rotated
         * weights: with unrotated ones, every SQNR of wq would be about 0 dB. */
        const char *rot = strstr(out, "\n  qrazor/rot\n");
        const char *row = rot ? strstr(rot, "\n      0 ") : NULL;
        double sqnr_wq = row ? strtod(row + 9, NULL) : 0;
        CHECKF(sqnr_wq > 10, "--site %s: qrazor/rot's wq SQNR at layer 0 is %.1f dB", sites[s], sqnr_wq);
        CHECKF(strstr(out, "the same, to the bit"), "--site %s: the engine's output differs from the walk-through",
               sites[s]);
        CHECKF(!strstr(out, "\033["), "--site %s: colour escapes although NO_COLOR is set", sites[s]);
        const int rows = check_group_tables(out);
        CHECKF(rows >= 5, "--site %s: only %d table rows checked", sites[s], rows); /* 5 tokens for pv */
        /* Every line fits an 80-column terminal. */
        for (const char *line = out; *line;) {
            const size_t len = strcspn(line, "\n");
            CHECKF(len <= 80, "--site %s: a %zu-column line: %.60s", sites[s], len, line);
            line += len + (line[len] == '\n');
        }
        run_result_free(&r);
    }
}

static void test_explain_errors(void) {
    static const struct {
        const char *a, *b, *want;
    } cases[] = {
        {"--site", "w9", "unknown site 'w9'"},
        {"--layer", "9", "the model has 5 layers"},
        {"-q", "rtn4", "-q does not apply to --explain, which takes -z, -i, -g, --sdr"},
    };
    for (int i = 0; i < 3; i++) {
        RunResult r = test_run_program(ARGS("models/stories260K.bin", "--explain", cases[i].a, cases[i].b), NULL, NULL);
        CHECKF(r.status == 1 && r.err && strstr(r.err, cases[i].want), "%s %s: %s", cases[i].a, cases[i].b, r.err);
        run_result_free(&r);
    }
    RunResult r = test_run_program(ARGS("models/stories260K.bin", "--site", "wq"), NULL, NULL);
    CHECKF(r.status == 1 && r.err && strstr(r.err, "--site goes with --explain"), "%s", r.err);
    run_result_free(&r);
}

/* A small XML well-formedness check: tags nest and close, attributes are quoted, the
 * text has no bare '<' or '&'. Returns NULL when well formed, else what is wrong. */
static const char *xml_problem(const char *s) {
    static char why[128];
    char stack[64][32];
    int depth = 0, elements = 0;
    if (!strncmp(s, "<?xml", 5)) s = strstr(s, "?>") ? strstr(s, "?>") + 2 : s;
    while (*s) {
        if (*s == '&') {
            const size_t n = strspn(s + 1, "abcdefghijklmnopqrstuvwxyz#0123456789");
            if (s[1 + n] != ';') return "a bare '&'";
            s += n + 2;
        } else if (*s != '<') {
            s++;
        } else if (s[1] == '/') {
            char name[32];
            if (sscanf(s + 2, "%31[a-zA-Z0-9]", name) != 1 || depth == 0 || strcmp(name, stack[--depth]))
                return "a closing tag that does not match";
            s = strchr(s, '>');
            if (!s++) return "an unterminated closing tag";
        } else {
            char name[32];
            if (sscanf(s + 1, "%31[a-zA-Z0-9]", name) != 1) return "a bare '<'";
            const char *end = s + 1 + strlen(name);
            for (;;) { /* attributes: name="value" */
                end += strspn(end, " \n\t");
                if (*end == '>' || !strncmp(end, "/>", 2)) break;
                const size_t n = strspn(end, "abcdefghijklmnopqrstuvwxyz-:ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789");
                if (!n || end[n] != '=' || end[n + 1] != '"') {
                    snprintf(why, sizeof why, "a malformed attribute in <%s>", name);
                    return why;
                }
                end = strchr(end + n + 2, '"');
                if (!end++) return "an unterminated attribute value";
            }
            elements++;
            if (*end == '>') {
                if (depth == 64) return "nesting too deep";
                snprintf(stack[depth++], sizeof stack[0], "%s", name);
                s = end + 1;
            } else {
                s = end + 2;
            }
        }
    }
    if (depth != 0) return "unclosed elements";
    return elements ? NULL : "no elements";
}

/* rsvg-convert svg -> png; returns the PNG's size in bytes and its width and height from
 * the IHDR chunk, 0 (not run) where rsvg-convert is not installed, or -1 (and a failed
 * check) when it cannot render. */
static long render(const char *svg_text, int *width, int *height) {
    const char *svg = test_temp_file(svg_text, strlen(svg_text));
    if (!svg) return -1;
    char png[400];
    snprintf(png, sizeof png, "%s.png", svg);
    const pid_t pid = fork();
    if (pid == 0) {
        execlp("rsvg-convert", "rsvg-convert", svg, "-o", png, (char *)NULL);
        _exit(127);
    }
    int st = 0;
    waitpid(pid, &st, 0);
    if (WIFEXITED(st) && WEXITSTATUS(st) == 127) {
        test_not_run("rendering the SVG: rsvg-convert is not installed (Debian: librsvg2-bin)");
        return 0;
    }
    if (!CHECKF(WIFEXITED(st) && WEXITSTATUS(st) == 0, "rsvg-convert failed (exit %d)", WEXITSTATUS(st)))
        return -1;
    size_t size;
    unsigned char *bytes = (unsigned char *)test_read_file(png, &size);
    if (!bytes || !CHECKF(size > 24 && !memcmp(bytes, "\x89PNG\r\n\x1a\n", 8), "not a PNG")) {
        free(bytes);
        return -1;
    }
    *width = bytes[16] << 24 | bytes[17] << 16 | bytes[18] << 8 | bytes[19];
    *height = bytes[20] << 24 | bytes[21] << 16 | bytes[22] << 8 | bytes[23];
    free(bytes);
    return (long)size;
}

/* The figure is well-formed XML with the expected parts (checked here, always), and where
 * rsvg-convert is installed it renders to a 720x560 image that is not blank. */
static void test_explain_svg(void) {
    const char *svg = test_temp_path("explain.svg");
    RunResult r = test_run_program(ARGS("models/stories260K.bin", "--explain", "--site", "w2", "--explain-svg", svg),
                                   NULL, NULL);
    CHECKF(r.status == 0, "exit %d: %s", r.status, r.err);
    run_result_free(&r);
    char *text = test_read_file(svg, NULL);
    if (!text) return;
    const char *problem = xml_problem(text);
    CHECKF(!problem, "the SVG is not well-formed XML: %s", problem);
    CHECK(strstr(text, "<svg") && strstr(text, "<rect") && strstr(text, "SQNR"));
    CHECK(strstr(text, "width=\"720\" height=\"560\""));
    int w = 0, h = 0, bw, bh;
    const long size = render(text, &w, &h);
    if (size != 0) {
        /* Not blank: a blank canvas of the same size compresses to a fraction of a chart. */
        char blank[256];
        snprintf(blank, sizeof blank,
                 "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\"><rect width=\"%d\" "
                 "height=\"%d\" fill=\"white\"/></svg>", w, h, w, h);
        const long blank_size = size > 0 ? render(blank, &bw, &bh) : -1;
        CHECKF(size > 0 && w == 720 && h == 560, "PNG of %ldB is %dx%d", size, w, h);
        CHECKF(blank_size > 0 && size > 4 * blank_size, "PNG of %ld bytes, a blank one has %ld: blank?", size,
               blank_size);
    }
    free(text);
}

void suite_explain(void) {
    test_run("explain_sections_and_arithmetic", test_explain_sections_and_arithmetic);
    test_run("explain_errors", test_explain_errors);
    test_run("explain_svg_renders", test_explain_svg);
}
