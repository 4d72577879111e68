/*
 * engine/commands/command.c - the steps the commands share (engine/commands/command.h).
 */
#include "engine/commands/command.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "kernels/simd.h"

int command_open_model(ModelWeights *m, const char *path, const QuantConfig *q, int quant_given,
                       const CacheTypes *cache, ThreadPool *pool, char *err, size_t errlen) {
    if (quant_given && model_is_qrz(path)) {
        snprintf(err, errlen, "%s is already quantized; -q, -g, --cls and --sdr apply to float checkpoints",
                 path);
        return -1;
    }
    if (model_open(m, path, q, pool, err, errlen) != 0) return -1;
    char why[160];
    if (cache && cache->given && quant_config_set_cache_types(&m->quant, cache->keys, cache->values, why, sizeof why)) {
        snprintf(err, errlen, "-ctk / -ctv: %s", why);
        model_close(m);
        return -1;
    }
    return 0;
}

int command_open_modes(ModelWeights *weights, QuantConfig *configs, int n, const char *path,
                       int quant_given, const CacheTypes *cache, ThreadPool *pool, char *err, size_t errlen) {
    for (int m = 0; m < n; m++) {
        if (command_open_model(&weights[m], path, &configs[m], quant_given, cache, pool, err, errlen) != 0) {
            while (m-- > 0) model_close(&weights[m]);
            return -1;
        }
        configs[m] = weights[m].quant;
    }
    return 0;
}

Tokenizer *command_tokenizer(const char *path, const char *model_path, int vocab_size, char *err,
                             size_t errlen) {
    char chosen[4096];
    Tokenizer *t = tokenizer_find(path, model_path, vocab_size, chosen, sizeof chosen, err, errlen);
    char shown[1024];
    if (t && !path)
        fprintf(stderr, "tokenizer: %s (%s, %d pieces)\n", printable(chosen, shown, sizeof shown), tokenizer_format(t),
                vocab_size);
    return t;
}

Tokenizer *command_model_tokenizer(const char *path, const char *model_path, const ModelWeights *w, char *err,
                                   size_t errlen) {
    if (path || !w->tokenizer) return command_tokenizer(path, model_path, w->cfg.vocab_size, err, errlen);
    char name[4200];
    snprintf(name, sizeof name, "%s (its stored tokenizer)", model_path);
    Tokenizer *t = tokenizer_parse(w->tokenizer, w->tokenizer_size, name, err, errlen);
    if (t && tokenizer_vocab_size(t) != w->cfg.vocab_size) {
        snprintf(err, errlen, "%s has %d pieces but the model a vocabulary of %d", name, tokenizer_vocab_size(t),
                 w->cfg.vocab_size);
        tokenizer_free(t);
        return NULL;
    }
    char shown[1024];
    if (t) fprintf(stderr, "tokenizer: stored in %s (%s, %d pieces)\n", printable(model_path, shown, sizeof shown), tokenizer_format(t),
                   w->cfg.vocab_size);
    return t;
}

int command_environment(size_t *kv_limit, char *err, size_t errlen) {
    const char *simd = getenv("QRAZOR_SIMD"), *limit = getenv("QRAZOR_KV_LIMIT");
    *kv_limit = kv_limit_default();
    if (simd && *simd && simd_use(simd) != 0) {
        snprintf(err, errlen, "QRAZOR_SIMD=%s: unknown level or not supported by this CPU (it supports up to %s)",
                 simd, simd_level_name(simd_detect()));
        return -1;
    }
    if (limit && *limit && kv_limit_parse(limit, kv_limit) != 0) {
        snprintf(err, errlen, "QRAZOR_KV_LIMIT=%s: expected a size in bytes such as 512M or 8G", limit);
        return -1;
    }
    return 0;
}

/* ------------------------------------------------------------------ the context and its memory */

size_t kv_limit_default(void) {
    const long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGESIZE);
    if (pages <= 0 || page <= 0) return (size_t)4 << 30;
    return (size_t)pages / 2 * (size_t)page;
}

int kv_limit_parse(const char *text, size_t *bytes) {
    char *end;
    errno = 0;
    const unsigned long long v = strtoull(text, &end, 10);
    if (errno || end == text || text[0] == '-' || v == 0) return -1;
    static const char suffixes[] = "KMGT";
    const char *s = *end ? strchr(suffixes, *end) : NULL;
    if (*end && (!s || end[1] != '\0')) return -1;
    const int shift = s ? 10 * (int)(s - suffixes + 1) : 0;
    if (v > (unsigned long long)SIZE_MAX >> shift) return -1;
    *bytes = (size_t)v << shift;
    return 0;
}

/* "11.7 GiB", "640.0 KiB", "96 bytes". */
static const char *human_bytes(double b, char *buf, size_t len) {
    static const char *const units[] = {"KiB", "MiB", "GiB", "TiB", "PiB"};
    if (b < 1024) {
        snprintf(buf, len, "%.0f bytes", b);
        return buf;
    }
    int u = 0;
    for (b /= 1024; b >= 1024 && u < 4; b /= 1024) u++;
    snprintf(buf, len, "%.1f %s", b, units[u]);
    return buf;
}

int kv_check(const ModelConfig *c, const QuantConfig *q, int n, int n_ctx, size_t limit,
             const char *hint, char *err, size_t errlen) {
    double total = 0; /* in double: a hostile header must not wrap the sum */
    for (int m = 0; m < n; m++) total += (double)kv_cache_bytes(c, &q[m], n_ctx);
    if (total <= (double)limit) return 0;
    char need[32], have[32];
    snprintf(err, errlen,
             "a context of %d positions needs %s of KV cache%s, more than the limit of %s "
             "(QRAZOR_KV_LIMIT; by default half of the physical memory): %s",
             n_ctx, human_bytes(total, need, sizeof need), n > 1 ? " for all the modes" : "",
             human_bytes((double)limit, have, sizeof have), hint);
    return -1;
}

void memory_report(FILE *out, const ModelConfig *c, int group) {
    const double params = config_linear_params(c), entries = config_kv_entries(c);
    const int hs = config_head_size(c), kv_group = group < hs ? group : hs;
    fprintf(out, "  7 block linears: %.0f weights (the embedding and norms stay float32)\n", params);
    fprintf(out, "  KV cache at full context (%d positions, %.0f key and value entries)\n", c->seq_len,
            entries);
    fprintf(out, "  %-12s %10s %12s %14s %11s\n", "mode", "weights", "bits/weight", "KV cache", "bits/entry");
    /* The base modes, and qrazor with the other KV-cache types of docs/SPEC.md section 6
     * (5-bit codes are kept in a byte each: c << s <= 120). */
    static const char *const rows[] = {"fp32", "w8a16", "qrazor", "qrazor/k5", "qrazor/k5/v5", "qrazor/k8/v8", "rtn4"};
    for (size_t k = 0; k < sizeof rows / sizeof rows[0]; k++) {
        QuantConfig q;
        char err[64];
        quant_config_parse(rows[k], &q, err, sizeof err);
        q.group = group;
        const size_t w = linear_weights_bytes(c, &q), kv = kv_cache_bytes(c, &q, c->seq_len);
        fprintf(out, "  %-12s %10zu %12.2f %14zu %11.2f\n", rows[k], w, 8.0 * (double)w / params, kv,
                8.0 * (double)kv / entries);
    }
    fprintf(out, "  qrazor: 4-bit codes + a 4-bit shift per %d: %.2f bits, + a float32 scale\n", group,
            4.0 + 4.0 / group);
    if (kv_group == group)
        fprintf(out, "  per weight row, and per token and head in the KV cache\n");
    else
        fprintf(out, "  per weight row, and per token and head in the KV cache (a shift per %d)\n", kv_group);
}

void command_describe(FILE *out, const char *path, const ModelWeights *w, int n, int n_ctx,
                      size_t kv_limit, const ThreadPool *pool) {
    const ModelConfig *c = &w[0].cfg;
    char shown[1024];
    fprintf(out, "model:    %s (%s)\n", printable(path, shown, sizeof shown),
            w[0].qrz_map ? ".qrz, quantized" : "llama2.c checkpoint");
    fprintf(out, "          dim %d, hidden %d, %d layers, %d query / %d key-value heads "
                 "(head size %d), vocab %d, context %d%s\n",
            c->dim, c->hidden_dim, c->n_layers, c->n_heads, c->n_kv_heads, config_head_size(c),
            c->vocab_size, c->seq_len,
            w[0].cls.f32 == w[0].token_embedding ? ", classifier shared with the embedding" : "");
    for (int m = 0; m < n; m++) {
        const QuantConfig *q = &w[m].quant;
        char name[64], razor[64] = "", kv[64] = "";
        quant_config_name(q, name, sizeof name);
        if (quant_config_razors(q))
            snprintf(razor, sizeof razor, "G = %d, SDR %s; ", q->group, q->rounding ? "rounding" : "truncating");
        if (n_ctx > 0) snprintf(kv, sizeof kv, ", %zu of KV cache", kv_cache_bytes(c, q, n_ctx));
        fprintf(out, "mode:     %s (%sclassifier %s): %zu bytes of weights%s\n", name, razor,
                quant_kind_cls_name(q->cls), model_weights_bytes(&w[m]), kv);
    }
    char limit[32];
    if (n_ctx > 0)
        fprintf(out, "context:  %d positions allocated (the model knows %d); KV cache limit %s\n", n_ctx,
                c->seq_len, human_bytes((double)kv_limit, limit, sizeof limit));
    char kernels[256];
    simd_describe(simd_current(), kernels, sizeof kernels);
    fprintf(out, "kernels:  %s; the default here is %s; %d thread%s\n", kernels, simd_level_name(simd_detect()),
            threadpool_size(pool), threadpool_size(pool) == 1 ? "" : "s");
    fprintf(out, "memory of each representation, at G = %d:\n", w[0].quant.group);
    memory_report(out, c, w[0].quant.group);
}

/* ------------------------------------------------------------------ modes and output */

/* Every mode and knob of the accuracy study (docs/ACCURACY.md). */
static const char *const all_modes =
    "fp32,w8a16,qrazor,qrazor/k5,qrazor/k5/v5,qrazor/k8,qrazor/k8/v8,qrazor/g32,qrazor/g64,qrazor/g128,qrazor/trunc,qrazor/cls=fp32,"
    "qrazor/cls=int8,rtn4,sdr-w,sdr-a,sdr-kv,sdr-p,fp32/rot,quarot,qrazor/rot";

int mode_list_parse(const char *flag, const char *list, const QuantConfig *single,
                    QuantConfig *configs, char *err, size_t errlen) {
    if (!list) {
        configs[0] = *single;
        return 1;
    }
    char buf[1024], why[256];
    if (strlen(list) >= sizeof buf) {
        snprintf(err, errlen, "%s: the list is too long", flag);
        return -1;
    }
    snprintf(buf, sizeof buf, "%s", strcmp(list, "all") ? list : all_modes);
    int n = 0;
    char *save = NULL;
    for (char *mode = strtok_r(buf, ",", &save); mode; mode = strtok_r(NULL, ",", &save)) {
        if (n == MAX_MODES) {
            snprintf(err, errlen, "%s: more than %d modes", flag, MAX_MODES);
            return -1;
        }
        if (quant_config_parse(mode, &configs[n++], why, sizeof why) != 0) {
            snprintf(err, errlen, "%s: %s", flag, why);
            return -1;
        }
    }
    if (n == 0) snprintf(err, errlen, "%s: no modes given", flag);
    return n ? n : -1;
}

void print_json_string(FILE *out, const char *prefix, const char *s) {
    fputs(prefix, out);
    fputc('"', out);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '"' || *p == '\\')
            fprintf(out, "\\%c", *p);
        else if (*p < 0x20)
            fprintf(out, "\\u%04x", *p);
        else
            fputc(*p, out);
    }
    fputc('"', out);
}

/* Lead byte ranges and the narrower second-byte ranges after E0, ED, F0 and F4, which
 * exclude overlong forms, UTF-16 surrogates and code points above U+10FFFF. */
int utf8_char_length(const unsigned char *s, size_t n) {
    const unsigned char c = s[0];
    const int len = c < 0x80 ? 1 : c >= 0xC2 && c < 0xE0 ? 2 : c >= 0xE0 && c < 0xF0 ? 3
                                                      : c >= 0xF0 && c < 0xF5 ? 4 : 0;
    const unsigned char lo = c == 0xE0 ? 0xA0 : c == 0xF0 ? 0x90 : 0x80;
    const unsigned char hi = c == 0xED ? 0x9F : c == 0xF4 ? 0x8F : 0xBF;
    if (len == 0 || (size_t)len > n) return 0;
    for (int k = 1; k < len; k++)
        if (k == 1 ? s[k] < lo || s[k] > hi : s[k] < 0x80 || s[k] > 0xBF) return 0;
    return len;
}

const char *printable(const char *s, char *buf, size_t len) {
    const unsigned char *p = (const unsigned char *)s;
    const size_t n = strlen(s);
    size_t out = 0, i = 0;
    while (i < n) {
        const int k = utf8_char_length(p + i, n - i);
        /* C0 controls and DEL; U+0080..U+009F (C2 80..C2 9F), C1 controls */
        const int shown = k > 1 ? !(p[i] == 0xC2 && p[i + 1] < 0xA0) : k == 1 && p[i] >= 0x20 && p[i] != 0x7F;
        const size_t need = shown ? (size_t)k : 4;
        if (out + need + 4 > len) { /* room for "..." and the NUL */
            snprintf(buf + out, len - out, "...");
            return buf;
        }
        if (shown) memcpy(buf + out, p + i, (size_t)k);
        else snprintf(buf + out, 5, "\\x%02x", p[i]);
        out += need;
        i += shown ? (size_t)k : 1;
    }
    buf[out] = '\0';
    return buf;
}

void print_error(const char *message) {
    char shown[4096];
    fprintf(stderr, "error: %s\n", printable(message, shown, sizeof shown));
}
