/*
 * engine/commands/explain.c - the explain mode: one product of the forward pass retraced in
 * integers, per-layer SQNR of every site, memory, and an SVG figure.
 *
 * Everything is recomputed here with the scalar definitions of kernels/quant.h from the
 * float inputs the probe captured, and checked against what the engine computed.
 */
#include "engine/commands/explain.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "engine/commands/command.h"
#include "engine/reference.h"
#include "engine/transformer.h"
#include "kernels/hadamard.h"

/* One vector through both stages: stage-1 integers q, 4-bit codes, one shift per group. */
typedef struct {
    int n, group, qmax, mbits; /* mbits: magnitude bits kept, 3 (4-bit codes) or 4 */
    float scale;
    int32_t *q;
    int8_t *codes;
    int *shifts;
} Razored;

/* Razors x into r (allocated here; free with razored_free even on failure). Returns 0, or
 * -1 when out of memory. */
static int razor(Razored *r, const float *x, int n, int qmax, int group, int mbits, int rounding) {
    r->n = n;
    r->group = group;
    r->qmax = qmax;
    r->mbits = mbits;
    r->q = malloc((size_t)n * sizeof *r->q);
    r->codes = malloc((size_t)n);
    r->shifts = malloc((size_t)(n / group + 1) * sizeof *r->shifts);
    if (!r->q || !r->codes || !r->shifts) return -1;
    r->scale = absmax_scale(x, n, qmax);
    for (int i = 0; i < n; i++) r->q[i] = quantize_value(x[i], r->scale, qmax);
    for (int g = 0, start = 0; start < n; g++, start += group)
        r->shifts[g] = sdr_group(r->q + start, qr_group_len(n, group, g), mbits, rounding, r->codes + start);
    return 0;
}

static void razored_free(Razored *r) {
    free(r->q), free(r->codes), free(r->shifts);
}

/* ------------------------------------------------------------------ text */

typedef struct {
    FILE *out;
    int color;
} Text;

static void heading(const Text *t, const char *s) {
    fprintf(t->out, t->color ? "\n\033[1m%s\033[0m\n" : "\n%s\n", s);
}

/* |v| in `bits` binary digits, with the kept bits (shift + mbits - 1 .. shift) in brackets. */
static void binary_window(char *buf, uint32_t v, int bits, int shift, int mbits) {
    int at = 0;
    for (int b = bits - 1; b >= 0; b--) {
        if (b == shift + mbits - 1) buf[at++] = '[';
        buf[at++] = (char)('0' + ((v >> b) & 1));
        if (b == shift) buf[at++] = ']';
    }
    buf[at] = '\0';
}

static void binary(char *buf, uint32_t v, int bits) {
    for (int b = bits - 1; b >= 0; b--) *buf++ = (char)('0' + ((v >> b) & 1));
    *buf = '\0';
}

/* One razoring group, element by element. */
static void group_table(const Text *t, const Razored *r, int g, int bits, int rounding) {
    const int start = g * r->group, len = qr_group_len(r->n, r->group, g), s = r->shifts[g];
    const int m = r->mbits, cmax = (1 << m) - 1;
    uint32_t or_all = 0;
    for (int i = start; i < start + len; i++) or_all |= (uint32_t)abs(r->q[i]);
    char bin[40];
    binary(bin, or_all, bits);
    const int lead = or_all ? 31 - __builtin_clz(or_all) : -1;
    fprintf(t->out, "  group %d (elements %d..%d); OR of the |q| = %s\n", g, start, start + len - 1, bin);
    if (lead < 0)
        fprintf(t->out, "  all zero: shift s = max(0, 0 - %d) = 0, every code 0\n", m - 1);
    else
        fprintf(t->out, "  leading one at bit %d: shift s = max(0, %d - %d) = %d\n  keep bits %d..%d%s\n", lead, lead,
                m - 1, s, s + m - 1, s, rounding && s > 0 ? " and round on the next one (+rnd)" : "");
    char code_head[16];
    snprintf(code_head, sizeof code_head, "%d-bit", m + 1);
    fprintf(t->out, "  %4s %7s %-*s %4s %4s %6s %7s %6s\n", "i", "q", bits + 2, "|q| binary [kept]", "+rnd",
            "code", code_head, "c<<s", "error");
    for (int i = start; i < start + len; i++) {
        const uint32_t mag = (uint32_t)abs(r->q[i]);
        const int c = r->codes[i], round = rounding && s > 0 ? (int)((mag >> (s - 1)) & 1) : 0;
        char win[40], code_bits[8];
        binary_window(win, mag, bits, s, m);
        code_bits[0] = (char)('0' + (c < 0)), code_bits[1] = ' '; /* sign, then the magnitude */
        binary(code_bits + 2, (uint32_t)abs(c), m);
        const int64_t value = qr_shl(c, s);
        fprintf(t->out, "  %4d %7d %-*s %4s %4d %6s %7lld %6lld%s\n", i, r->q[i], bits + 2, win,
                round ? "+1" : "", c, code_bits, (long long)value, (long long)(value - r->q[i]),
                abs(c) == cmax && (int64_t)((mag >> s) + (uint32_t)round) > cmax ? " sat" : "");
    }
}

static void first_values(const Text *t, const char *what, const float *x, int n) {
    fprintf(t->out, "  %s (%d values):", what, n);
    for (int i = 0; i < n && i < 6; i++) fprintf(t->out, " %.5g", x[i]);
    fprintf(t->out, "%s\n", n > 6 ? " ..." : "");
}

static int argmax_abs(const float *x, int n) {
    int best = 0;
    for (int i = 1; i < n; i++)
        if (fabsf(x[i]) > fabsf(x[best])) best = i;
    return best;
}

/* ------------------------------------------------------------------ runs */

/* The prompt, BOS first. */
typedef struct {
    const int *ids;
    int n;
} Prompt;

/* Runs the prompt in mode q through the reference forward pass with a probe attached;
 * fills probe (allocated here). The float32 references come from the checkpoint opened
 * again in fp32, rotated as q is. */
static int probe_run(const ExplainOptions *o, const Prompt *prompt, const QuantConfig *q, Probe *probe,
                     ModelConfig *cfg, char *err, size_t errlen) {
    ModelWeights w, floats;
    QuantConfig fq;
    quant_config_parse("fp32", &fq, err, errlen);
    fq.rotate = q->rotate;
    if (model_open(&w, o->model_path, q, NULL, err, errlen) != 0) return -1;
    if (model_open(&floats, o->model_path, &fq, NULL, err, errlen) != 0) {
        model_close(&w);
        return -1;
    }
    *cfg = w.cfg;
    int rc = -1;
    Reference *r = NULL;
    ModelConfig run = w.cfg; /* the probe keeps float keys and values of the prompt only */
    run.seq_len = prompt->n;
    if (o->layer >= w.cfg.n_layers || o->head >= w.cfg.n_heads)
        snprintf(err, errlen, "--layer %d / --head %d: the model has %d layers and %d heads", o->layer, o->head,
                 w.cfg.n_layers, w.cfg.n_heads);
    else if (prompt->n > w.cfg.seq_len)
        snprintf(err, errlen, "the prompt is %d tokens but the model's context is %d", prompt->n, w.cfg.seq_len);
    else if (kv_check(&w.cfg, q, 1, prompt->n, o->kv_limit, "use a shorter prompt", err, errlen) != 0)
        ; /* err says why */
    else if (!(r = reference_new(&w, prompt->n, err, errlen)))
        ; /* out of memory, said in err */
    else if (probe_init(probe, &run) != 0)
        snprintf(err, errlen, "out of memory");
    else
        rc = 0;
    if (rc == 0) {
        probe->layer = o->layer;
        probe->site = o->site;
        probe->head = o->head;
        probe->position = prompt->n - 1;
        probe_attach(probe, r, &w, &floats);
        for (int pos = 0; pos < prompt->n; pos++) reference_forward(r, prompt->ids[pos], pos);
    }
    reference_free(r);
    model_close(&floats);
    model_close(&w);
    return rc;
}

/* ------------------------------------------------------------------ the detail */

/* Sections 1-4 for a linear or the scores (an activation vector and a weight row).
 * Returns 0, or -1 when out of memory. */
static int explain_product(const Text *t, const ExplainOptions *o, const Probe *p, const ModelConfig *c) {
    const int is_qk = o->site == SITE_QK, k = p->k;
    Razored a = {0}, w = {0};
    const int key_bits = is_qk ? sdr_magnitude_bits(o->keys) : 3; /* 4 for -ctk r5 */
    if (razor(&a, p->x, k, QMAX_INT16, o->group, 3, o->rounding) != 0 ||
        razor(&w, p->w, k, QMAX_INT8, o->group, key_bits, o->rounding) != 0) {
        razored_free(&a);
        razored_free(&w);
        return -1;
    }
    const int g = argmax_abs(p->x, k) / o->group; /* the group of the largest input */
    char line[160];

    snprintf(line, sizeof line, "1. The activation: %s, stage 1 to INT16 (SPEC section 1)",
             is_qk ? "this head's query" : "the product's float input");
    heading(t, line);
    first_values(t, "x", p->x, k);
    const int big = argmax_abs(p->x, k);
    fprintf(t->out, "  absmax = |x[%d]| = %.6g; scale Sa = absmax / 32767 = %.6g\n", big, fabsf(p->x[big]), a.scale);
    fprintf(t->out, "  q = round(x / Sa), half away from zero:");
    for (int i = 0; i < k && i < 5; i++) fprintf(t->out, " %d", a.q[i]);
    fprintf(t->out, " ...\n");

    snprintf(line, sizeof line, "2. Razoring one activation group of G = %d (section 2): 4-bit codes", o->group);
    heading(t, line);
    group_table(t, &a, g, 16, o->rounding);

    snprintf(line, sizeof line, "3. The matching %s group: INT8 stage 1, then razoring%s",
             is_qk ? "key" : "weight", key_bits == 4 ? " to 5-bit codes (r5, section 6)" : "");
    heading(t, line);
    if (is_qk)
        fprintf(t->out, "  the key of position %d (this head's highest score)\n  scale Sk = max|k| / 127 = %.6g\n",
                p->row, w.scale);
    else
        fprintf(t->out, "  weight row %d (the output with the largest float32 value)\n"
                        "  scale Sw = max|W[%d]| / 127 = %.6g\n", p->row, p->row, w.scale);
    group_table(t, &w, g, 8, o->rounding);

    heading(t, "4. The integer product (section 3): multiply codes, shift once per group");
    int64_t acc = 0, dot_g = 0;
    for (int gg = 0, start = 0; start < k; gg++, start += o->group) {
        int64_t dot = 0;
        for (int i = start; i < k && i < start + o->group; i++) dot += a.codes[i] * w.codes[i];
        acc += qr_shl(dot, a.shifts[gg] + w.shifts[gg]);
        if (gg == g) dot_g = dot;
    }
    fprintf(t->out, "  group %d: sum of a_i * w_i = %lld, shifted by sa + sw = %d + %d: %lld\n", g,
            (long long)dot_g, a.shifts[g], w.shifts[g], (long long)qr_shl(dot_g, a.shifts[g] + w.shifts[g]));
    const int groups = (k + o->group - 1) / o->group;
    fprintf(t->out, "  all %d group%s: acc = %lld (int64, exact)\n", groups, groups == 1 ? "" : "s", (long long)acc);
    float y = ((float)acc * a.scale) * w.scale;
    if (is_qk) {
        y /= sqrtf((float)config_head_size(c));
        fprintf(t->out, "  score = ((float)acc * Sq) * Sk / sqrt(%d) = %.6g\n", config_head_size(c), y);
    } else {
        fprintf(t->out, "  y = ((float)acc * Sa) * Sw = %.6g\n", y);
    }
    fprintf(t->out, "  the engine's kernels computed %.6g: %s\n", p->y, y == p->y ? "the same, to the bit" : "DIFFERENT");
    fprintf(t->out, "  float32 (same input, float %s): %.6g, relative error %.2f%%\n", is_qk ? "key" : "weights", p->y_ref,
            100.0 * fabs((double)y - p->y_ref) / fabs((double)p->y_ref));
    razored_free(&a);
    razored_free(&w);
    return 0;
}

/* Sections 1-4 for the weighted sum of values: p' over positions, and one value dimension
 * whose codes and shifts belong to each position. */
static int explain_values(const Text *t, const ExplainOptions *o, const Probe *p, const ModelConfig *c) {
    const int k = p->k, hs = config_head_size(c), d = p->row, dg = d / o->group;
    Razored a = {0};
    if (razor(&a, p->x, k, QMAX_INT16, o->group, 3, o->rounding) != 0) {
        razored_free(&a);
        return -1;
    }
    const int g = argmax_abs(p->x, k) / o->group;
    char line[160];

    heading(t, "1. The activation: p'[t] = softmax[t] * Sv[t], stage 1 to INT16");
    fprintf(t->out, "  (each position's value scale Sv goes into its probability: SPEC section 4)\n");
    first_values(t, "p'", p->x, k);
    fprintf(t->out, "  scale Sp' = max p' / 32767 = %.6g\n", a.scale);
    snprintf(line, sizeof line, "2. Razoring one group of G = %d positions", o->group);
    heading(t, line);
    group_table(t, &a, g, 16, o->rounding);

    snprintf(line, sizeof line, "3. Value dimension %d at those positions: INT8, razored along the head", d);
    heading(t, line);
    fprintf(t->out, "  %5s %9s %10s %5s %6s %5s %8s\n", "t", "v[t][d]", "Sv[t]", "q", "shift", "code", "c<<s");
    int64_t dot_g = 0, acc = 0;
    for (int gg = 0, start = 0; start < k; gg++, start += o->group) {
        for (int tt = start; tt < k && tt < start + o->group; tt++) {
            Razored v = {0};
            if (razor(&v, p->v_rows + (size_t)tt * hs, hs, QMAX_INT8, o->group, 3, o->rounding) != 0) {
                razored_free(&v);
                razored_free(&a);
                return -1;
            }
            const int64_t term = qr_shl((int64_t)a.codes[tt] * v.codes[d], a.shifts[gg] + v.shifts[dg]);
            acc += term;
            if (gg == g) {
                dot_g += term;
                fprintf(t->out, "  %5d %9.5f %10.6g %5d %6d %5d %8lld\n", tt, p->v_rows[(size_t)tt * hs + d],
                        v.scale, v.q[d], v.shifts[dg], v.codes[d], (long long)qr_shl(v.codes[d], v.shifts[dg]));
            }
            razored_free(&v);
        }
    }
    heading(t, "4. The integer product: every term (p' code * v code) << (sp + sv[t])");
    fprintf(t->out, "  (a value's shift belongs to its position: it joins the probability's)\n");
    fprintf(t->out, "  group %d of positions: sum of terms = %lld\n", g, (long long)dot_g);
    fprintf(t->out, "  all positions: acc = %lld (int64, exact)\n", (long long)acc);
    const float y = (float)acc * a.scale;
    fprintf(t->out, "  out[%d] = (float)acc * Sp' = %.6g\n", d, y);
    fprintf(t->out, "  the engine's kernels computed %.6g: %s\n", p->y, y == p->y ? "the same, to the bit" : "DIFFERENT");
    fprintf(t->out, "  float32 (float probabilities and values): %.6g, relative error %.2f%%\n",
            p->y_ref, 100.0 * fabs((double)y - p->y_ref) / fabs((double)p->y_ref));
    razored_free(&a);
    return 0;
}

/* ------------------------------------------------------------------ rotations */

/* What a quantizer sees of one vector: its absmax, RMS, the largest value's share of its
 * energy (sum x^2), and the SQNR of the vector alone under 4-bit absmax rounding (rtn4)
 * and under stage 1 + the razor (qrazor's activations). */
typedef struct {
    double absmax, rms, top_share, sqnr_rtn4, sqnr_razor;
} VectorView;

static double sqnr_db(double signal, double noise) { return noise > 0 ? 10.0 * log10(signal / noise) : INFINITY; }

static int vector_view(const float *x, int n, int group, int rounding, VectorView *v) {
    Razored a = {0};
    if (razor(&a, x, n, QMAX_INT16, group, 3, rounding) != 0) {
        razored_free(&a);
        return -1;
    }
    const float s4 = absmax_scale(x, n, QMAX_RTN4);
    double energy = 0, top = 0, noise_rtn4 = 0, noise_razor = 0;
    for (int i = 0; i < n; i++) {
        const double xi = x[i], rtn4 = (double)quantize_value(x[i], s4, QMAX_RTN4) * s4;
        const double razored = (double)qr_shl(a.codes[i], a.shifts[i / group]) * a.scale;
        energy += xi * xi;
        top = fmax(top, xi * xi);
        noise_rtn4 += (xi - rtn4) * (xi - rtn4);
        noise_razor += (xi - razored) * (xi - razored);
    }
    *v = (VectorView){sqrt(top), sqrt(energy / n), energy > 0 ? top / energy : 0, sqnr_db(energy, noise_rtn4),
                      sqnr_db(energy, noise_razor)};
    razored_free(&a);
    return 0;
}

/* Section 7: the explained product's input in the qrazor run and in the qrazor/rot run. */
static int explain_rotation(const Text *t, const ExplainOptions *o, const Probe *plain, const Probe *rotated,
                            const ModelConfig *c) {
    const int hs = config_head_size(c);
    const int B = o->site == SITE_WO || o->site == SITE_QK ? hadamard_block(hs)
                  : o->site == SITE_W2                    ? hadamard_block(c->hidden_dim)
                                                          : hadamard_block(c->dim);
    const char *const basis = o->site == SITE_WO ? "each head's values rotated by Q_hs (wv's output side)"
                              : o->site == SITE_QK ? "each query head rotated by Q_hs after RoPE"
                              : o->site == SITE_W2 ? "SwiGLU's output rotated by Q_hidden"
                                                   : "the residual stream rotated by Q_dim (the gains are in the weights)";
    heading(t, "7. Rotations (SPEC section 7): this input without and with rot");
    fprintf(t->out, "  -q qrazor/rot, and quarot = rtn4/rot, write the model in another basis (a\n"
                    "  Walsh-Hadamard transform with fixed signs): the same function, but every\n"
                    "  quantizer sees other numbers.\n");
    if (o->site == SITE_PV)
        fprintf(t->out, "  The probabilities p' are not rotated (the values are, per head): rot\n"
                        "  changes them only through the value scales Sv[t].\n");
    else
        fprintf(t->out, "  Here: %s,\n  in blocks of B = %d.\n", basis, B);
    for (int r = 0; r < 2; r++) {
        const Probe *p = r ? rotated : plain;
        fprintf(t->out, "  %-11s (%d):", r ? "with rot" : "without rot", p->k);
        for (int i = 0; i < p->k && i < 5; i++) fprintf(t->out, " %.5g", p->x[i]);
        fprintf(t->out, "%s\n", p->k > 5 ? " ..." : "");
    }
    VectorView v[2];
    if (vector_view(plain->x, plain->k, o->group, o->rounding, &v[0]) != 0 ||
        vector_view(rotated->x, rotated->k, o->group, o->rounding, &v[1]) != 0)
        return -1;
    fprintf(t->out, "  %-11s %9s %9s %10s %9s %9s %12s\n", "", "absmax", "RMS", "absmax/RMS", "top share",
            "SQNR rtn4", "SQNR razored");
    for (int r = 0; r < 2; r++)
        fprintf(t->out, "  %-11s %9.4g %9.4g %10.2f %8.1f%% %6.1f dB %9.1f dB\n", r ? "with rot" : "without rot",
                v[r].absmax, v[r].rms, v[r].absmax / v[r].rms, 100.0 * v[r].top_share, v[r].sqnr_rtn4, v[r].sqnr_razor);
    fprintf(t->out, "  (top share: the largest value's part of sum x^2. SQNR of this vector alone,\n"
                    "  as 4-bit absmax codes, or as INT16 then razored in groups of %d)\n", o->group);
    fprintf(t->out, "  With rot the largest value is %.2f times the RMS instead of %.2f: rtn4's\n"
                    "  one scale per vector %s %.1f dB; the razor, which chooses a shift per\n"
                    "  group of %d, %s %.1f dB.\n",
            v[1].absmax / v[1].rms, v[0].absmax / v[0].rms, v[1].sqnr_rtn4 >= v[0].sqnr_rtn4 ? "gains" : "loses",
            fabs(v[1].sqnr_rtn4 - v[0].sqnr_rtn4), o->group, v[1].sqnr_razor >= v[0].sqnr_razor ? "gains" : "loses",
            fabs(v[1].sqnr_razor - v[0].sqnr_razor));
    return 0;
}

/* ------------------------------------------------------------------ SVG */

/* A histogram of the activation before and after razoring (in units of INT16 codes), and
 * the per-layer SQNR of the site in each mode, as bars. */
static int write_svg(const char *path, const ExplainOptions *o, const Probe *p, const double *sqnr,
                     const char *const *mode_names, int n_modes, int n_layers) {
    FILE *f = fopen(path, "w");
    if (!f) return -1;
    enum { W = 720, H = 560, BINS = 40 };
    Razored a = {0};
    if (razor(&a, p->x, p->k, QMAX_INT16, o->group, 3, o->rounding) != 0) {
        razored_free(&a);
        fclose(f);
        return -1;
    }
    int before[BINS] = {0}, after[BINS] = {0}, top = 1;
    for (int i = 0; i < p->k; i++) {
        const double v = a.q[i], r = (double)qr_shl(a.codes[i], a.shifts[i / o->group]);
        const int b0 = (int)((v + 32768.0) * BINS / 65536.0), b1 = (int)((r + 32768.0) * BINS / 65536.0);
        before[b0 < 0 ? 0 : b0 >= BINS ? BINS - 1 : b0]++;
        after[b1 < 0 ? 0 : b1 >= BINS ? BINS - 1 : b1]++;
    }
    for (int b = 0; b < BINS; b++) top = before[b] > top ? before[b] : after[b] > top ? after[b] : top;
    fprintf(f, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
               "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" viewBox=\"0 0 %d %d\" "
               "font-family=\"sans-serif\" font-size=\"12\">\n"
               "<rect width=\"%d\" height=\"%d\" fill=\"white\"/>\n",
            W, H, W, H, W, H);
    /* Panel 1: histogram, x from -32768 to 32767, y counts. */
    const int x0 = 60, y0 = 48, pw = 620, ph = 190;
    fprintf(f, "<text x=\"%d\" y=\"18\" font-size=\"14\">Layer %d, site %s: the %d activations as INT16 codes</text>\n"
               "<text x=\"%d\" y=\"34\">before (grey) and after razoring in groups of %d (blue)</text>\n",
            x0, o->layer, site_name(o->site), p->k, x0, o->group);
    fprintf(f, "<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" stroke=\"black\"/>\n", x0, y0 + ph, x0 + pw, y0 + ph);
    for (int b = 0; b < BINS; b++) {
        const double bw = (double)pw / BINS, x = x0 + b * bw;
        const double hb = (double)ph * before[b] / top, ha = (double)ph * after[b] / top;
        fprintf(f, "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"#bbbbbb\"/>\n", x, y0 + ph - hb, bw * 0.45, hb);
        fprintf(f, "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"#3366cc\"/>\n", x + bw * 0.45, y0 + ph - ha, bw * 0.45, ha);
    }
    fprintf(f, "<text x=\"%d\" y=\"%d\">-32767</text><text x=\"%d\" y=\"%d\" text-anchor=\"middle\">0</text>"
               "<text x=\"%d\" y=\"%d\" text-anchor=\"end\">32767</text>\n",
            x0, y0 + ph + 16, x0 + pw / 2, y0 + ph + 16, x0 + pw, y0 + ph + 16);
    fprintf(f, "<text x=\"%d\" y=\"%d\" text-anchor=\"end\">%d</text>\n", x0 - 6, y0 + 10, top);
    /* Panel 2: SQNR bars, one group of bars per layer. */
    const int y1 = 320, ph2 = 180;
    double best = 1;
    for (int i = 0; i < n_modes * n_layers; i++) best = isfinite(sqnr[i]) && sqnr[i] > best ? sqnr[i] : best;
    static const char *const colors[] = {"#999999", "#3366cc", "#dc3912", "#109618", "#ff9900"};
    fprintf(f, "<text x=\"%d\" y=\"%d\" font-size=\"14\">SQNR of site %s per layer (dB; higher is better)</text>\n",
            x0, y1 - 16, site_name(o->site));
    fprintf(f, "<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" stroke=\"black\"/>\n", x0, y1 + ph2, x0 + pw, y1 + ph2);
    const double gw = (double)pw / n_layers;
    for (int l = 0; l < n_layers; l++) {
        for (int m = 0; m < n_modes; m++) {
            const double v = sqnr[m * n_layers + l], h = isfinite(v) && v > 0 ? ph2 * v / best : 0;
            const double bw = gw * 0.8 / n_modes, x = x0 + l * gw + gw * 0.1 + m * bw;
            fprintf(f, "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"%s\"/>\n", x, y1 + ph2 - h,
                    bw, h, colors[m % 5]);
        }
        fprintf(f, "<text x=\"%.1f\" y=\"%d\" text-anchor=\"middle\">layer %d</text>\n", x0 + l * gw + gw / 2, y1 + ph2 + 16, l);
    }
    fprintf(f, "<text x=\"%d\" y=\"%d\" text-anchor=\"end\">%.0f dB</text>\n", x0 - 6, y1 + 10, best);
    for (int m = 0; m < n_modes; m++) {
        fprintf(f, "<rect x=\"%d\" y=\"%d\" width=\"12\" height=\"12\" fill=\"%s\"/><text x=\"%d\" y=\"%d\">%s</text>\n",
                x0 + m * 120, H - 30, colors[m % 5], x0 + m * 120 + 16, H - 20, mode_names[m]);
    }
    fprintf(f, "</svg>\n");
    razored_free(&a);
    return fclose(f) == 0 ? 0 : -1;
}

/* ------------------------------------------------------------------ the whole report */

static int explain_prompt(const ExplainOptions *o, const Prompt *prompt, FILE *out, char *err, size_t errlen) {
    const Text t = {out, o->color};
    char name[64];
    QuantConfig q;
    quant_config_parse("qrazor", &q, err, errlen);
    q.group = o->group;
    q.rounding = o->rounding;
    q.keys = o->keys;
    Probe detail;
    ModelConfig c;
    if (probe_run(o, prompt, &q, &detail, &c, err, errlen) != 0) return -1;
    if (!detail.captured) {
        snprintf(err, errlen, "nothing captured at layer %d, site %s", o->layer, site_name(o->site));
        probe_free(&detail);
        return -1;
    }
    quant_config_name(&q, name, sizeof name);
    fprintf(out, "QRazor step by step: layer %d, site %s, the last of %d tokens, mode %s\n", o->layer,
            site_name(o->site), prompt->n, name);
    if (o->site >= SITE_QK) fprintf(out, "query head %d\n", o->head);
    static const char *const modes[] = {"w8a16", "qrazor", "rtn4", "qrazor/rot", "quarot"};
    enum { N_MODES = 5 };
    double *site_sqnr = malloc((size_t)N_MODES * c.n_layers * sizeof *site_sqnr);
    if (!site_sqnr || (o->site == SITE_PV ? explain_values(&t, o, &detail, &c)
                                          : explain_product(&t, o, &detail, &c)) != 0) {
        snprintf(err, errlen, "out of memory");
        free(site_sqnr);
        probe_free(&detail);
        return -1;
    }

    /* 5. SQNR of every site, every layer, in each integer mode. */
    char mode_names[N_MODES][64];
    const char *names[N_MODES];
    heading(&t, "5. Signal-to-quantization-noise ratio of each product, dB (higher: better)");
    fprintf(out, "  10 log10(sum y_fp32^2 / sum (y - y_fp32)^2) over all outputs and positions;\n"
                 "  the float32 reference of each product gets the same float input\n");
    for (int m = 0; m < N_MODES; m++) {
        QuantConfig qm;
        quant_config_parse(modes[m], &qm, err, errlen);
        qm.group = o->group;
        qm.rounding = o->rounding;
        quant_config_name(&qm, mode_names[m], sizeof mode_names[m]);
        names[m] = mode_names[m];
        Probe p;
        if (probe_run(o, prompt, &qm, &p, &c, err, errlen) != 0) {
            free(site_sqnr);
            probe_free(&detail);
            return -1;
        }
        fprintf(out, "\n  %s\n  %5s", mode_names[m], "layer");
        for (int s = 0; s < N_SITES; s++) fprintf(out, " %6s", site_name((Site)s));
        fputc('\n', out);
        for (int l = 0; l < c.n_layers; l++) {
            fprintf(out, "  %5d", l);
            for (int s = 0; s < N_SITES; s++) fprintf(out, " %6.1f", probe_sqnr(&p, l, (Site)s));
            fputc('\n', out);
            site_sqnr[m * c.n_layers + l] = probe_sqnr(&p, l, o->site);
        }
        probe_free(&p);
    }

    /* 6. Memory. */
    heading(&t, "6. Memory: bytes and bits of each representation");
    memory_report(out, &c, o->group);
    fprintf(out, "  (small models pay more for the float32 scales and for padding)\n");

    /* 7. The same input with rotations. */
    QuantConfig qr = q;
    qr.rotate = 1;
    Probe rotated;
    if (probe_run(o, prompt, &qr, &rotated, &c, err, errlen) != 0) {
        free(site_sqnr);
        probe_free(&detail);
        return -1;
    }
    int rc = 0;
    if (explain_rotation(&t, o, &detail, &rotated, &c) != 0) {
        snprintf(err, errlen, "out of memory");
        rc = -1;
    }
    probe_free(&rotated);
    if (rc == 0 && o->svg_path && write_svg(o->svg_path, o, &detail, site_sqnr, names, N_MODES, c.n_layers) != 0) {
        snprintf(err, errlen, "%s: cannot write the figure", o->svg_path);
        rc = -1;
    }
    free(site_sqnr);
    probe_free(&detail);
    return rc;
}

int explain_command(const ExplainOptions *o, FILE *out, char *err, size_t errlen) {
    Checkpoint ck; /* the header, for the vocabulary */
    if (model_is_qrz(o->model_path)) {
        snprintf(err, errlen, "%s: --explain needs the float checkpoint (it is the reference)", o->model_path);
        return -1;
    }
    if (checkpoint_open(&ck, o->model_path, err, errlen) != 0) return -1;
    Tokenizer *tok = command_tokenizer(o->tokenizer_path, o->model_path, ck.cfg.vocab_size, err, errlen);
    checkpoint_close(&ck);
    if (!tok) return -1;
    int *ids;
    const int n = tokenizer_encode(tok, o->prompt, &ids, err, errlen);
    tokenizer_free(tok);
    if (n == 0) { /* a tokenizer.json that puts no BOS before a text, and no prompt */
        snprintf(err, errlen, "the prompt is empty and the tokenizer puts no BOS before a text: give one with -i");
        free(ids);
    }
    if (n <= 0) return -1;
    fprintf(out, "prompt: \"%s\" (%d tokens)\n", o->prompt, n);
    const Prompt prompt = {ids, n};
    const int rc = explain_prompt(o, &prompt, out, err, errlen);
    char shown[1024];
    if (rc == 0 && o->svg_path) fprintf(stderr, "wrote %s\n", printable(o->svg_path, shown, sizeof shown));
    free(ids);
    return rc;
}
