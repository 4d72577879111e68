/*
 * weights/quant_config.c - the modes: parsing, naming and checking them, and the storage
 * each matmul operand gets in a mode.
 */
#include "weights/quant_config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    const char *name;
    QuantKind weights, acts, kv, probs, cls;
} BaseMode;

static const BaseMode base_modes[] = {
    {"fp32", QUANT_F32, QUANT_F32, QUANT_F32, QUANT_F32, QUANT_F32},
    {"w8a16", QUANT_INT, QUANT_INT, QUANT_INT, QUANT_INT, QUANT_INT},
    {"qrazor", QUANT_SDR, QUANT_SDR, QUANT_SDR, QUANT_SDR, QUANT_SDR},
    {"rtn4", QUANT_RTN4, QUANT_RTN4, QUANT_RTN4, QUANT_RTN4, QUANT_RTN4},
    /* Ablations: stage 1 everywhere (w8a16), razoring at one site only. */
    {"sdr-w", QUANT_SDR, QUANT_INT, QUANT_INT, QUANT_INT, QUANT_INT},
    {"sdr-a", QUANT_INT, QUANT_SDR, QUANT_INT, QUANT_INT, QUANT_INT},
    {"sdr-kv", QUANT_INT, QUANT_INT, QUANT_SDR, QUANT_INT, QUANT_INT},
    {"sdr-p", QUANT_INT, QUANT_INT, QUANT_INT, QUANT_SDR, QUANT_INT},
};
enum { N_BASE_MODES = sizeof base_modes / sizeof base_modes[0] };

static const char *const cls_names[] = {"fp32", "int8", "qrazor", "rtn4"};

const char *quant_kind_cls_name(QuantKind k) { return cls_names[k]; }

int quant_kind_parse_cls(const char *name, QuantKind *k) {
    for (int i = 0; i < 4; i++) {
        if (strcmp(name, cls_names[i]) == 0) {
            *k = (QuantKind)i;
            return 0;
        }
    }
    return -1;
}

static const BaseMode *const qrazor_mode = &base_modes[2], *const rtn4_mode = &base_modes[3];

static int is_cache_type(QuantKind k) { return k == QUANT_SDR || k == QUANT_SDR5 || k == QUANT_INT; }

/* The base mode a configuration is (qrazor with any cache types), or NULL. */
static const BaseMode *base_of(const QuantConfig *q) {
    for (int i = 0; i < N_BASE_MODES; i++) {
        const BaseMode *b = &base_modes[i];
        const int cache = b == qrazor_mode ? is_cache_type(q->keys) && is_cache_type(q->values)
                                           : q->keys == b->kv && q->values == b->kv;
        if (b->weights == q->weights && b->acts == q->acts && b->probs == q->probs && cache) return b;
    }
    return NULL;
}

static const struct {
    const char *name; /* as -ctk / -ctv take it */
    QuantKind kind;
} cache_types[] = {{"r4", QUANT_SDR}, {"r5", QUANT_SDR5}, {"i8", QUANT_INT}};

const char *quant_cache_type_name(QuantKind kind) {
    for (int i = 0; i < 3; i++)
        if (cache_types[i].kind == kind) return cache_types[i].name;
    return "?";
}

int quant_cache_type_parse(const char *name, QuantKind *kind) {
    if (!name) name = "r4"; /* the default: the paper's KV4 */
    for (int i = 0; i < 3; i++) {
        if (!strcmp(name, cache_types[i].name)) {
            *kind = cache_types[i].kind;
            return 0;
        }
    }
    return -1;
}

int quant_config_set_cache_types(QuantConfig *q, QuantKind keys, QuantKind values, char *err, size_t errlen) {
    if (base_of(q) != qrazor_mode) {
        char name[64];
        quant_config_name(q, name, sizeof name);
        snprintf(err, errlen, "KV-cache types (r4, r5, i8) go with qrazor, not %s", name);
        return -1;
    }
    q->keys = keys;
    q->values = values;
    return 0;
}

int quant_config_parse(const char *spec, QuantConfig *q, char *err, size_t errlen) {
    char buf[128];
    if (!spec) spec = "qrazor"; /* the default: W4A4KV4 */
    if (strlen(spec) >= sizeof buf) {
        snprintf(err, errlen, "mode '%.40s...' is too long", spec);
        return -1;
    }
    strcpy(buf, spec);
    char *save = NULL, *tok = strtok_r(buf, "/", &save);
    const int quarot = tok && !strcmp(tok, "quarot"); /* rtn4/rot by its name */
    const BaseMode *b = quarot ? rtn4_mode : NULL;
    for (int i = 0; tok && i < N_BASE_MODES; i++)
        if (strcmp(tok, base_modes[i].name) == 0) b = &base_modes[i];
    if (!b) {
        snprintf(err, errlen,
                 "unknown mode '%s': fp32, w8a16, qrazor, rtn4, quarot, or an ablation sdr-w, sdr-a, "
                 "sdr-kv, sdr-p",
                 tok ? tok : spec);
        return -1;
    }
    *q = (QuantConfig){b->weights, b->acts, b->kv, b->kv, b->probs, b->cls, 16, 1, QUANT_F32, quarot};
    while ((tok = strtok_r(NULL, "/", &save)) != NULL) {
        if ((tok[0] == 'k' || tok[0] == 'v') && strlen(tok) == 2 && strchr("458", tok[1])) {
            if (b != qrazor_mode) {
                snprintf(err, errlen, "'%s' in mode '%s': KV-cache types go with qrazor only", tok, spec);
                return -1;
            }
            const QuantKind kind = tok[1] == '4' ? QUANT_SDR : tok[1] == '5' ? QUANT_SDR5 : QUANT_INT;
            *(tok[0] == 'k' ? &q->keys : &q->values) = kind;
        } else if (!strcmp(tok, "rot")) {
            q->rotate = 1;
        } else if (!strcmp(tok, "trunc")) {
            q->rounding = 0;
        } else if (!strcmp(tok, "round")) {
            q->rounding = 1;
        } else if (!strncmp(tok, "cls=", 4)) {
            if (quant_kind_parse_cls(tok + 4, &q->cls) != 0) {
                snprintf(err, errlen, "'%s' in mode '%s': the classifier is fp32, int8, qrazor or rtn4",
                         tok, spec);
                return -1;
            }
        } else if (!strcmp(tok, "emb=fp32") || !strcmp(tok, "emb=int8")) {
            q->embedding = tok[4] == 'i' ? QUANT_INT : QUANT_F32;
        } else if (tok[0] == 'g' && (!strcmp(tok + 1, "16") || !strcmp(tok + 1, "32") ||
                                     !strcmp(tok + 1, "64") || !strcmp(tok + 1, "128"))) {
            q->group = atoi(tok + 1);
        } else {
            snprintf(err, errlen,
                     "unknown option '%s' in mode '%s' (rot, g16|g32|g64|g128, trunc, cls=..., emb=int8, k5|k8|v5|v8)",
                     tok, spec);
            return -1;
        }
    }
    return 0;
}

int quant_config_check(const QuantConfig *q, char *err, size_t errlen) {
    const int floats = (q->weights == QUANT_F32) + (q->acts == QUANT_F32) + (q->keys == QUANT_F32) +
                       (q->values == QUANT_F32) + (q->probs == QUANT_F32);
    if (floats != 0 && floats != 5) {
        snprintf(err, errlen, "either every block site is float32 or none is");
        return -1;
    }
    if (q->weights > QUANT_SDR5 || q->acts > QUANT_SDR5 || q->keys > QUANT_SDR5 || q->values > QUANT_SDR5 ||
        q->probs > QUANT_SDR5 || q->cls > QUANT_RTN4 || (q->embedding != QUANT_F32 && q->embedding != QUANT_INT) ||
        (q->rotate != 0 && q->rotate != 1) || !base_of(q)) {
        snprintf(err, errlen, "not a mode of this engine (KV-cache types go with qrazor only)");
        return -1;
    }
    if (q->group < 16 || q->group > QR_MAX_GROUP || (q->group & (q->group - 1)) != 0) {
        snprintf(err, errlen, "group size %d is not one of 16, 32, 64, 128", q->group);
        return -1;
    }
    return 0;
}

int quant_config_razors(const QuantConfig *q) {
    return q->weights == QUANT_SDR || q->acts == QUANT_SDR || q->keys == QUANT_SDR || q->keys == QUANT_SDR5 ||
           q->values == QUANT_SDR || q->values == QUANT_SDR5 || q->probs == QUANT_SDR || q->cls == QUANT_SDR;
}

void quant_config_name(const QuantConfig *q, char *buf, size_t len) {
    const BaseMode *b = base_of(q);
    const int quarot = b == rtn4_mode && q->rotate;
    size_t at = (size_t)snprintf(buf, len, "%s%s", quarot ? "quarot" : b ? b->name : "custom",
                                 q->rotate && !quarot ? "/rot" : "");
    const int razors = quant_config_razors(q);
    if (razors && q->group != 16 && at < len) at += (size_t)snprintf(buf + at, len - at, "/g%d", q->group);
    if (razors && !q->rounding && at < len) at += (size_t)snprintf(buf + at, len - at, "/trunc");
    if (b == qrazor_mode && q->keys != QUANT_SDR && at < len)
        at += (size_t)snprintf(buf + at, len - at, "/k%c", q->keys == QUANT_SDR5 ? '5' : '8');
    if (b == qrazor_mode && q->values != QUANT_SDR && at < len)
        at += (size_t)snprintf(buf + at, len - at, "/v%c", q->values == QUANT_SDR5 ? '5' : '8');
    if ((!b || q->cls != b->cls) && at < len)
        at += (size_t)snprintf(buf + at, len - at, "/cls=%s", quant_kind_cls_name(q->cls));
    if (q->embedding == QUANT_INT && at < len) snprintf(buf + at, len - at, "/emb=int8");
}

Storage storage_for(QuantKind mine, QuantKind other) {
    if (mine == QUANT_F32) return STORE_F32;
    /* 5-bit codes (c << s <= 15 << 3 = 120 from an INT8 base) are kept as the integers they
     * stand for, like INT8 codes. */
    const int four_bit = mine == QUANT_SDR || mine == QUANT_RTN4, partner_four_bit = other == QUANT_SDR || other == QUANT_RTN4;
    return four_bit && partner_four_bit ? STORE_R4 : STORE_INT;
}

void quant_config_default_embedding(QuantConfig *q, const char *spec) {
    if (!spec || !strstr(spec, "emb=")) q->embedding = q->cls == QUANT_F32 ? QUANT_F32 : QUANT_INT;
}
