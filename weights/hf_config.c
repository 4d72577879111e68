/*
 * weights/hf_config.c - reads config.json into the engine's ModelConfig and the fields it
 * adds (what each field means, and what is refused: hf_config.h).
 */
#include "weights/hf_config.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "weights/json.h"

typedef struct {
    const JsonDoc *doc;
    const JsonValue *root;
    const char *path;
    char *err;
    size_t errlen;
} Reader;

__attribute__((format(printf, 2, 3))) static int fail(const Reader *r, const char *fmt, ...) {
    char msg[384];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    snprintf(r->err, r->errlen, "%s: %s", r->path, msg);
    return -1;
}

/* The field, or NULL when absent or null (both mean "not set" in transformers' configs). */
static const JsonValue *field(const Reader *r, const char *name) {
    const JsonValue *v = json_get(r->doc, r->root, name);
    return v && v->type != JSON_NULL ? v : NULL;
}

/* An integer in min..max; dflt < 0 means the field is required. */
static int get_int(const Reader *r, const char *name, int dflt, int min, int max, int *out) {
    const JsonValue *v = field(r, name);
    if (!v) {
        if (dflt < 0) return fail(r, "no \"%s\"", name);
        *out = dflt;
        return 0;
    }
    if (v->type != JSON_NUMBER)
        return fail(r, "%s must be an integer, not %s", name, json_type_name(v->type));
    uint64_t x;
    if (json_u64(v, &x) != 0)
        return fail(r, "%s = %.40s is not a non-negative integer", name, v->text);
    if (x < (uint64_t)min || x > (uint64_t)max)
        return fail(r, "%s = %.40s is outside %d..%d", name, v->text, min, max);
    *out = (int)x;
    return 0;
}

/* A number in (lo, hi] that the engine keeps as a float32: the rounded value must pass
 * `valid`, the rule the .qrz reader applies to what is stored (weights/file.h). */
static int get_float(const Reader *r, const char *name, float dflt, float lo, float hi, int (*valid)(float),
                     float *out) {
    const JsonValue *v = field(r, name);
    if (!v) {
        *out = dflt;
        return 0;
    }
    if (v->type != JSON_NUMBER)
        return fail(r, "%s must be a number, not %s", name, json_type_name(v->type));
    double x;
    if (json_double(v, &x) != 0) return fail(r, "%s = %.40s is not a finite number", name, v->text);
    if (!(x > lo && x <= hi))
        return fail(r, "%s = %.40s is outside (%g, %g]", name, v->text, lo, hi);
    *out = (float)x; /* in range, so finite */
    if (!valid(*out))
        return fail(r, "%s = %.40s is %.9g in float32, the engine's precision, which is outside (%g, %g]", name,
                    v->text, *out, lo, hi);
    return 0;
}

/* For get_float: a factor must stay above 0 once rounded (1e-50 is 0 in float32). */
static int positive(float x) { return x > 0; }

static int get_bool(const Reader *r, const char *name, int dflt, int *out) {
    const JsonValue *v = field(r, name);
    if (!v) {
        *out = dflt;
        return 0;
    }
    if (v->type != JSON_BOOL)
        return fail(r, "%s must be true or false, not %s", name, json_type_name(v->type));
    *out = v->boolean;
    return 0;
}

/* A token id: an integer, or a list of them (the first counts), below the vocabulary size. */
static int get_token(const Reader *r, const char *name, int dflt, int vocab, int *out) {
    const JsonValue *v = field(r, name);
    if (v && v->type == JSON_ARRAY && !(v = json_first(r->doc, v)))
        return fail(r, "%s is an empty list", name);
    uint64_t x = (uint64_t)dflt;
    if (v && (v->type != JSON_NUMBER || json_u64(v, &x) != 0))
        return fail(r, "%s must be a non-negative integer (or a list of them)", name);
    if (x >= (uint64_t)vocab)
        return fail(r, "%s = %llu is not below vocab_size %d", name, (unsigned long long)x, vocab);
    *out = (int)x;
    return 0;
}

/* The ids of an eos_token_id list after its first (get_token checked that one). */
static int read_stop_ids(const Reader *r, HfConfig *h) {
    const JsonValue *v = field(r, "eos_token_id");
    if (!v || v->type != JSON_ARRAY) return 0;
    if (v->n_children > 1 + MODEL_MAX_STOP)
        return fail(r, "eos_token_id lists %d ids (at most %d)", v->n_children, 1 + MODEL_MAX_STOP);
    for (const JsonValue *e = json_next(r->doc, json_first(r->doc, v)); e; e = json_next(r->doc, e)) {
        uint64_t x;
        if (e->type != JSON_NUMBER || json_u64(e, &x) != 0 || x >= (uint64_t)h->cfg.vocab_size)
            return fail(r, "eos_token_id: %.40s is not a token id below vocab_size %d", e->type == JSON_NUMBER ? e->text : "an entry",
                        h->cfg.vocab_size);
        h->stop_ids[h->n_stop++] = (int)x;
    }
    return 0;
}

static int accepted_architecture(const char *name) {
    return strcmp(name, "LlamaForCausalLM") == 0 || strcmp(name, "MistralForCausalLM") == 0;
}

static int read_architecture(const Reader *r, HfConfig *h) {
    const JsonValue *a = field(r, "architectures");
    if (!a) { /* old configs name the family only */
        const JsonValue *t = field(r, "model_type");
        if (t && t->type == JSON_STRING &&
            (!strcmp(t->text, "llama") || !strcmp(t->text, "mistral"))) {
            snprintf(h->architecture, sizeof h->architecture, "%s", t->text);
            return 0;
        }
        return fail(r, "no \"architectures\" (nor model_type \"llama\" or \"mistral\")");
    }
    if (a->type != JSON_ARRAY || a->n_children == 0)
        return fail(r, "architectures must be a non-empty list of names");
    for (const JsonValue *e = json_first(r->doc, a); e; e = json_next(r->doc, e)) {
        if (e->type != JSON_STRING) return fail(r, "architectures must be a list of names");
        if (!accepted_architecture(e->text))
            return fail(r, "architectures: %.60s is not supported (this engine runs "
                        "LlamaForCausalLM and MistralForCausalLM)", e->text);
    }
    snprintf(h->architecture, sizeof h->architecture, "%s", json_first(r->doc, a)->text);
    return 0;
}

/* rope_scaling: null, or Llama 3's {"rope_type": "llama3", factor, low_freq_factor,
 * high_freq_factor, original_max_position_embeddings}; any other type is refused by name. */
static int read_rope_scaling(const Reader *r, ModelConfig *c) {
    const JsonValue *rs = field(r, "rope_scaling");
    if (!rs) return 0;
    if (rs->type != JSON_OBJECT) return fail(r, "rope_scaling must be an object or null");
    const JsonValue *t = json_get(r->doc, rs, "rope_type");
    if (!t) t = json_get(r->doc, rs, "type"); /* the older name of the field */
    if (!t || t->type != JSON_STRING || strcmp(t->text, "llama3") != 0)
        return fail(r, "rope_scaling of type %.30s is not implemented (llama3 is)",
                    t && t->type == JSON_STRING ? t->text : "(none)");
    char where[4200]; /* messages say "config.json: rope_scaling: ..." */
    snprintf(where, sizeof where, "%s: rope_scaling", r->path);
    Reader sub = *r;
    sub.root = rs, sub.path = where;
    if (get_float(&sub, "factor", 0, 0, 1e6f, positive, &c->rope_factor) ||
        get_float(&sub, "low_freq_factor", 0, 0, 1e6f, positive, &c->rope_low_freq_factor) ||
        get_float(&sub, "high_freq_factor", 0, 0, 1e6f, positive, &c->rope_high_freq_factor) ||
        get_int(&sub, "original_max_position_embeddings", -1, 1, MODEL_MAX_SEQ, &c->rope_original_ctx))
        return -1;
    char why[256];
    if (config_validate_rope_scaling(c, why, sizeof why) != 0) return fail(r, "rope_scaling: %s", why);
    return 0;
}

/* Fields whose presence would change the computation in ways the engine does not follow. */
static int refuse_unsupported(const Reader *r, const ModelConfig *c) {
    const JsonValue *act = field(r, "hidden_act");
    if (act && (act->type != JSON_STRING || strcmp(act->text, "silu") != 0))
        return fail(r, "hidden_act must be \"silu\" (the SwiGLU feed-forward block)");
    const char *const biases[] = {"attention_bias", "mlp_bias"};
    for (int i = 0; i < 2; i++) {
        int on = 0;
        if (get_bool(r, biases[i], 0, &on) != 0) return -1;
        if (on)
            return fail(r, "%s is true: LLaMA's linears have no bias, nor does this engine",
                        biases[i]);
    }
    int head_dim;
    if (get_int(r, "head_dim", c->dim / c->n_heads, 1, MODEL_MAX_DIM, &head_dim) != 0)
        return -1;
    if (head_dim != c->dim / c->n_heads)
        return fail(r, "head_dim = %d is not hidden_size / num_attention_heads = %d", head_dim,
                    c->dim / c->n_heads);
    return 0;
}

int hf_config_parse(HfConfig *h, const char *path, const char *text, size_t len, char *err,
                    size_t errlen) {
    memset(h, 0, sizeof *h);
    JsonDoc doc;
    char why[256];
    if (json_parse(&doc, text, len, JSON_MODEL_FILE_LIMITS, why, sizeof why) != 0) {
        snprintf(err, errlen, "%s: %s", path, why);
        return -1;
    }
    Reader r = {&doc, &doc.values[0], path, err, errlen};
    int rc = -1;
    ModelConfig *c = &h->cfg;
    if (r.root->type != JSON_OBJECT) {
        fail(&r, "not a JSON object");
        goto out;
    }
    if (read_architecture(&r, h) != 0) goto out;
    if (get_int(&r, "hidden_size", -1, 1, MODEL_MAX_DIM, &c->dim) ||
        get_int(&r, "intermediate_size", -1, 1, 4 * MODEL_MAX_DIM, &c->hidden_dim) ||
        get_int(&r, "num_hidden_layers", -1, 1, MODEL_MAX_LAYERS, &c->n_layers) ||
        get_int(&r, "num_attention_heads", -1, 1, MODEL_MAX_HEADS, &c->n_heads) ||
        get_int(&r, "num_key_value_heads", c->n_heads, 1, MODEL_MAX_HEADS, &c->n_kv_heads) ||
        get_int(&r, "vocab_size", -1, 1, MODEL_MAX_VOCAB, &c->vocab_size) ||
        get_int(&r, "max_position_embeddings", -1, 1, MODEL_MAX_SEQ, &c->seq_len))
        goto out;
    /* The shape rules of config_validate(), said with the names of this file. */
    if (c->dim % c->n_heads != 0) {
        fail(&r, "hidden_size %d is not divisible by num_attention_heads %d", c->dim, c->n_heads);
        goto out;
    }
    if (c->dim / c->n_heads % 2 != 0) {
        fail(&r, "hidden_size / num_attention_heads = %d is odd (RoPE rotates pairs)",
             c->dim / c->n_heads);
        goto out;
    }
    if (c->n_heads % c->n_kv_heads != 0) {
        fail(&r, "num_attention_heads %d is not divisible by num_key_value_heads %d", c->n_heads,
             c->n_kv_heads);
        goto out;
    }
    if (config_validate(c, why, sizeof why) != 0) {
        fail(&r, "%s", why);
        goto out;
    }
    if (refuse_unsupported(&r, c) != 0 || read_rope_scaling(&r, c) != 0) goto out;
    int window;
    if (get_int(&r, "sliding_window", c->seq_len, 1, INT32_MAX, &window) != 0) goto out;
    if (window < c->seq_len) c->seq_len = window;
    if (get_float(&r, "rms_norm_eps", 1e-6f, 0.0f, MODEL_MAX_NORM_EPS, norm_eps_valid, &c->norm_eps) ||
        get_float(&r, "rope_theta", 10000.0f, MODEL_MIN_ROPE_THETA, MODEL_MAX_ROPE_THETA, rope_theta_valid,
                  &c->rope_theta) ||
        get_bool(&r, "tie_word_embeddings", 0, &h->tied) ||
        get_token(&r, "bos_token_id", 1, c->vocab_size, &h->bos_id) ||
        get_token(&r, "eos_token_id", 2, c->vocab_size, &h->eos_id) || read_stop_ids(&r, h))
        goto out;
    rc = 0;
out:
    json_free(&doc);
    return rc;
}

int hf_config_load(HfConfig *h, const char *path, char *err, size_t errlen) {
    void *map;
    size_t size;
    if (map_file(path, &map, &size, err, errlen) != 0) return -1;
    const int rc = hf_config_parse(h, path, map, size, err, errlen);
    unmap_file(map, size);
    return rc;
}
