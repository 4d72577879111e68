/*
 * tests/test_hf.c - the Hugging Face readers: JSON, safetensors, config.json, and the
 * mapping of a model directory onto the engine's tensors.
 *
 * The strong check: the two HF directories in tests/data/hf were written from llama2.c
 * checkpoints by an independent exporter (transformers' conventions, q/k rows permuted),
 * so every tensor read back must equal the checkpoint's, bit for bit. Broken inputs are
 * made by patching copies in temporary directories.
 *
 * Then `run import`: both directories, imported through the program, match the oracle's
 * golden logits and greedy ids (tests/data/golden/{llama2xs-bf16,wide64-theta}); bad
 * input and bad destinations leave no file behind.
 */
#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tests/golden.h"
#include "tests/test.h"
#include "weights/checkpoint.h"
#include "weights/hf_config.h"
#include "weights/hf_import.h"
#include "weights/hf_model.h"
#include "weights/json.h"
#include "weights/model.h"
#include "weights/safetensors.h"

#define XS_DIR "tests/data/hf/llama2xs-bf16"
#define WIDE_DIR "tests/data/hf/wide64-theta"

/* ------------------------------------------------------------------ JSON */

static void test_json_values(void) {
    const char *text = " {\"a\": [1, -2.5e3, true, false, null], \"s\": \"x\\u00e9\\ud83d\\ude00"
                       "\\n\\\"\\/\", \"o\": {}, \"e\": [], \"big\": 18446744073709551615}\r\n";
    JsonDoc doc;
    char err[256] = "";
    if (!CHECKF(json_parse(&doc, text, strlen(text), err, sizeof err) == 0, "%s", err)) return;
    const JsonValue *root = &doc.values[0], *a = json_get(&doc, root, "a");
    CHECK(root->type == JSON_OBJECT && root->n_children == 5);
    CHECK(a && a->type == JSON_ARRAY && a->n_children == 5);
    const JsonValue *e = json_first(&doc, a);
    uint64_t u = 0;
    double d = 0;
    CHECK(e && json_u64(e, &u) == 0 && u == 1);
    e = json_next(&doc, e);
    CHECK(e && json_u64(e, &u) != 0 && json_double(e, &d) == 0 && d == -2500.0);
    e = json_next(&doc, e);
    CHECK(e && e->type == JSON_BOOL && e->boolean == 1);
    e = json_next(&doc, e);
    CHECK(e && e->type == JSON_BOOL && e->boolean == 0);
    e = json_next(&doc, e);
    CHECK(e && e->type == JSON_NULL && json_next(&doc, e) == NULL);
    const JsonValue *s = json_get(&doc, root, "s");
    /* é is C3 A9; U+1F600 (a surrogate pair) is F0 9F 98 80 */
    CHECK(s && s->type == JSON_STRING && s->len == 10 &&
          memcmp(s->text, "x\xc3\xa9\xf0\x9f\x98\x80\n\"/", 10) == 0);
    CHECK(json_get(&doc, root, "o")->n_children == 0 && json_get(&doc, root, "e")->n_children == 0);
    CHECK(json_u64(json_get(&doc, root, "big"), &u) == 0 && u == UINT64_MAX);
    CHECK(json_get(&doc, root, "missing") == NULL && json_get(&doc, a, "a") == NULL);
    json_free(&doc);
}

static void test_json_rejects(void) {
    static const struct {
        const char *text, *fragment;
    } bad[] = {
        {"", "end of input"},
        {"{", "expected a string key"},
        {"[1,]", "where a value should start"},
        {"{\"a\":1,}", "expected a string key"},
        {"{\"a\" 1}", "expected ':'"},
        {"[1 2]", "expected ','"},
        {"{\"a\":1]", "expected ','"},
        {"01", "leading zero"},
        {"1.", "after '.'"},
        {"1e", "exponent"},
        {"-", "invalid number"},
        {"+1", "where a value should start"},
        {"NaN", "where a value should start"},
        {"tru", "expected true"},
        {"nul", "expected null"},
        {"\"abc", "unterminated"},
        {"\"a\tb\"", "control character"},
        {"\"\\x\"", "invalid escape"},
        {"\"\\u12\"", "4 hex digits"},
        {"\"\\u0000\"", "\\u0000"},
        {"\"\\udc00\"", "unpaired low surrogate"},
        {"\"\\ud800x\"", "not followed by a low one"},
        {"\"\xc0\x80\"", "UTF-8"},         /* overlong NUL */
        {"\"\xed\xa0\x80\"", "UTF-8"},     /* a surrogate encoded in UTF-8 */
        {"\"\xf4\x90\x80\x80\"", "UTF-8"}, /* above U+10FFFF */
        {"\"\xe2\x82\"", "UTF-8"},         /* cut short */
        {"{\"k\":1,\"k\":2}", "duplicate key \"k\""},
        {"1 2", "after the document"},
        {"{} x", "after the document"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        JsonDoc doc;
        char err[256] = "";
        const int rc = json_parse(&doc, bad[i].text, strlen(bad[i].text), err, sizeof err);
        CHECKF(rc != 0, "'%s' parsed", bad[i].text);
        CHECKF(strstr(err, bad[i].fragment) && strstr(err, "line 1, column"),
               "'%s': error '%s' lacks '%s'", bad[i].text, err, bad[i].fragment);
        if (rc == 0) json_free(&doc);
    }
    /* The position counts lines. */
    JsonDoc doc;
    char err[256] = "";
    CHECK(json_parse(&doc, "{\n\n  x", 6, err, sizeof err) != 0 && strstr(err, "line 3, column 3"));
}

static void test_json_limits(void) {
    char deep[2 * JSON_MAX_DEPTH + 4];
    JsonDoc doc;
    char err[256] = "";
    for (int depth = JSON_MAX_DEPTH; depth <= JSON_MAX_DEPTH + 1; depth++) {
        memset(deep, '[', (size_t)depth);
        memset(deep + depth, ']', (size_t)depth);
        const int rc = json_parse(&doc, deep, 2 * (size_t)depth, err, sizeof err);
        if (depth == JSON_MAX_DEPTH) {
            CHECKF(rc == 0, "depth %d: %s", depth, err);
            if (rc == 0) json_free(&doc);
        } else {
            CHECKF(rc != 0 && strstr(err, "nested deeper"), "depth %d: '%s'", depth, err);
        }
    }
    CHECK(json_parse(&doc, "[", JSON_MAX_BYTES + 1, err, sizeof err) != 0 &&
          strstr(err, "exceeds the limit"));
    /* Numbers: exact 64-bit integers or nothing; doubles finite. */
    static const struct {
        const char *text;
        int is_u64;
    } nums[] = {{"18446744073709551616", 0}, {"-1", 0}, {"1e3", 0}, {"1.0", 0}, {"0", 1}};
    for (size_t i = 0; i < sizeof nums / sizeof nums[0]; i++) {
        uint64_t u;
        CHECK(json_parse(&doc, nums[i].text, strlen(nums[i].text), err, sizeof err) == 0);
        CHECKF((json_u64(&doc.values[0], &u) == 0) == nums[i].is_u64, "%s", nums[i].text);
        json_free(&doc);
    }
    double d;
    CHECK(json_parse(&doc, "1e999", 5, err, sizeof err) == 0 &&
          json_double(&doc.values[0], &d) != 0);
    json_free(&doc);
    CHECK(json_parse(&doc, "1e-05", 5, err, sizeof err) == 0 &&
          json_double(&doc.values[0], &d) == 0 && d == 1e-5);
    json_free(&doc);
}

/* ------------------------------------------------------------------ conversions */

static void test_half_and_bfloat16(void) {
    /* IEEE half: 1, -2, the largest finite, the smallest subnormal and normal, 1/3. */
    CHECK(safetensors_f16_to_f32(0x3C00) == 1.0f);
    CHECK(safetensors_f16_to_f32(0xC000) == -2.0f);
    CHECK(safetensors_f16_to_f32(0x7BFF) == 65504.0f);
    CHECK(safetensors_f16_to_f32(0x0001) == 0x1p-24f);
    CHECK(safetensors_f16_to_f32(0x83FF) == -0x3FFp-24f);
    CHECK(safetensors_f16_to_f32(0x0400) == 0x1p-14f);
    CHECK(safetensors_f16_to_f32(0x3555) == 0x1.554p-2f);
    CHECK(isinf(safetensors_f16_to_f32(0xFC00)) && safetensors_f16_to_f32(0xFC00) < 0);
    CHECK(isnan(safetensors_f16_to_f32(0x7E00)));
    const float neg_zero = safetensors_f16_to_f32(0x8000);
    CHECK(neg_zero == 0.0f && signbit(neg_zero));
    /* bfloat16: the top half of a float32. */
    CHECK(safetensors_bf16_to_f32(0x3F80) == 1.0f);
    CHECK(safetensors_bf16_to_f32(0xC0A0) == -5.0f);
    CHECK(safetensors_bf16_to_f32(0x3EAB) == 0x1.56p-2f);
    CHECK(isinf(safetensors_bf16_to_f32(0x7F80)));
}

/* ------------------------------------------------------------------ small safetensors */

/* Writes a safetensors file: the header text (padded to 8 bytes) and `data_len` data
 * bytes (from data, or zeros). */
static const char *write_safetensors(const char *header, const void *data, size_t data_len) {
    const size_t h = strlen(header), hp = (h + 7) / 8 * 8, size = 8 + hp + data_len;
    unsigned char *buf = calloc(1, size);
    for (int i = 0; i < 8; i++) buf[i] = (unsigned char)((uint64_t)hp >> (8 * i));
    memcpy(buf + 8, header, h);
    memset(buf + 8 + h, ' ', hp - h);
    if (data) memcpy(buf + 8 + hp, data, data_len);
    const char *path = test_temp_file(buf, size);
    free(buf);
    return path;
}

static void test_safetensors_reads_each_dtype(void) {
    /* f32 [2] = {1.5, -3}; f16 [2, 2] = {1, -2, 65504, 2^-24}; bf16 [] = 1.0; i8 [3]; z [0]. */
    const unsigned char data[] = {0x00, 0x00, 0xC0, 0x3F, 0x00, 0x00, 0x40, 0xC0, /* f32 */
                                  0x00, 0x3C, 0x00, 0xC0, 0xFF, 0x7B, 0x01, 0x00, /* f16 */
                                  0x80, 0x3F,                                     /* bf16 */
                                  1,    2,    3};                                 /* i8 */
    const char *header =
        "{\"__metadata__\":{\"format\":\"pt\"},"
        "\"f16\":{\"dtype\":\"F16\",\"shape\":[2,2],\"data_offsets\":[8,16]},"
        "\"f32\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
        "\"z\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[21,21]},"
        "\"i8\":{\"dtype\":\"I8\",\"shape\":[3],\"data_offsets\":[18,21]},"
        "\"bf16\":{\"dtype\":\"BF16\",\"shape\":[],\"data_offsets\":[16,18]}}";
    const char *path = write_safetensors(header, data, sizeof data);
    SafeTensors st;
    char err[512] = "";
    if (!path) return;
    const int rc = safetensors_open(&st, path, err, sizeof err);
    unlink(path); /* the mapping keeps the data */
    if (!CHECKF(rc == 0, "%s", err)) return;
    CHECK(st.n_tensors == 5 && st.n_files == 1);
    const SafeTensor *f32 = safetensors_find(&st, "f32"), *f16 = safetensors_find(&st, "f16"),
                     *bf16 = safetensors_find(&st, "bf16"), *i8 = safetensors_find(&st, "i8"),
                     *z = safetensors_find(&st, "z");
    float out[4] = {0};
    CHECK(f32 && safetensors_read(f32, 0, 2, out) == 0 && out[0] == 1.5f && out[1] == -3.0f);
    CHECK(f16 && f16->ndim == 2 && f16->shape[0] == 2 && f16->n_elements == 4);
    CHECK(f16 && safetensors_read(f16, 1, 3, out) == 0 && out[0] == -2.0f && out[1] == 65504.0f &&
          out[2] == 0x1p-24f);
    CHECK(bf16 && bf16->ndim == 0 && bf16->n_elements == 1 &&
          safetensors_read(bf16, 0, 1, out) == 0 && out[0] == 1.0f);
    CHECK(i8 && i8->dtype == ST_I8 && safetensors_read(i8, 0, 3, out) != 0); /* not converted */
    CHECK(f32 && safetensors_read(f32, 1, 2, out) != 0);                    /* past the end */
    CHECK(z && z->n_elements == 0 && safetensors_find(&st, "__metadata__") == NULL);
    CHECK(safetensors_find(&st, "f1") == NULL);
    safetensors_close(&st);
}

static void expect_st_error(const char *header, size_t data_len, const char *fragment,
                            const char *tensor) {
    const char *path = write_safetensors(header, NULL, data_len);
    SafeTensors st;
    char err[512] = "";
    if (!path) return;
    const int rc = safetensors_open(&st, path, err, sizeof err);
    unlink(path);
    CHECKF(rc != 0, "%s: opened", header);
    CHECKF(strstr(err, fragment) != NULL, "error '%s' lacks '%s'", err, fragment);
    CHECKF(strstr(err, path) == err, "error '%s' does not start with the file", err);
    CHECKF(!tensor || strstr(err, tensor), "error '%s' does not name tensor %s", err, tensor);
    CHECKF(!strchr(err, '\n'), "error '%s' is not one line", err);
    if (rc == 0) safetensors_close(&st);
}

#define T(name, dtype, shape, b, e) \
    "\"" name "\":{\"dtype\":\"" dtype "\",\"shape\":" shape ",\"data_offsets\":[" #b "," #e "]}"

static void test_safetensors_rejects(void) {
    expect_st_error("{" T("a", "F32", "[2]", 0, 8) "," T("b", "F32", "[2]", 4, 12) "}", 12,
                    "overlap tensor a", "tensor b");
    expect_st_error("{" T("a", "F32", "[2]", 8, 0) "}", 8, "end before they begin", "tensor a");
    expect_st_error("{" T("a", "F32", "[1]", 0, 4) "," T("b", "F32", "[1]", 8, 12) "}", 12,
                    "4 unused bytes", "tensor b");
    expect_st_error("{" T("a", "F32", "[1]", 4, 8) "}", 8, "unused bytes", "tensor a");
    expect_st_error("{" T("a", "F32", "[1]", 0, 4) "}", 8, "4 bytes after the last", NULL);
    expect_st_error("{" T("a", "F32", "[4]", 0, 16) "}", 8, "run past the end", "tensor a");
    expect_st_error("{" T("a", "F32", "[3]", 0, 8) "}", 8, "does not fit", "tensor a");
    expect_st_error("{" T("a", "F32", "[2,-1]", 0, 8) "}", 8, "non-negative", "tensor a");
    expect_st_error("{" T("a", "F32", "[4294967296,4294967296,16]", 0, 8) "}", 8, "overflows",
                    "tensor a");
    expect_st_error("{" T("a", "F32", "[1,1,1,1,1,1,1,1,1]", 0, 4) "}", 4, "at most 8", "tensor a");
    expect_st_error("{" T("a", "F7", "[2]", 0, 8) "}", 8, "unknown dtype \"F7\"", "tensor a");
    expect_st_error("{\"a\":{\"dtype\":\"F32\",\"shape\":[1]}}", 0, "no \"data_offsets\"",
                    "tensor a");
    expect_st_error("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4],\"x\":1}}", 4,
                    "unknown header field \"x\"", "tensor a");
    expect_st_error("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0]}}", 4,
                    "two non-negative integers", "tensor a");
    expect_st_error("{\"a\":[]}", 0, "not an object", "tensor a");
    expect_st_error("{\"__metadata__\":{\"n\":1}}", 0, "__metadata__", NULL);
    expect_st_error("{" T("a", "F32", "[1]", 0, 4) "," T("a", "F32", "[1]", 4, 8) "}", 8,
                    "duplicate key \"a\"", NULL);
    expect_st_error("[1]", 0, "not an object", NULL);
    expect_st_error("{\"a\":", 0, "header: line 1", NULL);
    /* Length fields: a short file, and a header length past the end. */
    SafeTensors st;
    char err[512] = "";
    const char *path = test_temp_file("\x10\0\0", 3);
    CHECK(path && safetensors_open(&st, path, err, sizeof err) != 0 && strstr(err, "truncated") &&
          strstr(err, path));
    if (path) unlink(path);
    path = test_temp_file("\xff\xff\xff\xff\xff\xff\xff\x7f{}", 10);
    CHECK(path && safetensors_open(&st, path, err, sizeof err) != 0 &&
          strstr(err, "header length 9223372036854775807 runs past the end") && strstr(err, path));
    if (path) unlink(path);
    CHECK(safetensors_open(&st, "tests/data/no-such.safetensors", err, sizeof err) != 0 &&
          strstr(err, "cannot open"));
    CHECK(safetensors_open(&st, "tests/data/golden", err, sizeof err) != 0 &&
          strstr(err, "no model.safetensors or model.safetensors.index.json"));
}

/* ------------------------------------------------------------------ config.json */

/* The llama2xs config, as text with one field replaced by `patch` ("" removes nothing). */
static const char *base_config =
    "{\"architectures\": [\"LlamaForCausalLM\"], \"model_type\": \"llama\", \"hidden_act\": "
    "\"silu\", \"hidden_size\": 64, \"intermediate_size\": 192, \"num_hidden_layers\": 5, "
    "\"num_attention_heads\": 8, \"num_key_value_heads\": 4, \"vocab_size\": 512, "
    "\"max_position_embeddings\": 256, \"rms_norm_eps\": 1e-05, \"rope_theta\": 10000.0, "
    "\"tie_word_embeddings\": true, \"bos_token_id\": 1, \"eos_token_id\": 2 %s}";

static int parse_config(const char *extra, HfConfig *h, char *err, size_t errlen) {
    char text[2048];
    snprintf(text, sizeof text, base_config, extra);
    return hf_config_parse(h, "dir/config.json", text, strlen(text), err, errlen);
}

/* Replaces the first `"field": value` of the base config with `"field": repl` (NULL:
 * drops the field) and parses it. */
static int parse_config_with(const char *field, const char *repl, HfConfig *h, char *err,
                             size_t errlen) {
    char text[2048], key[64];
    snprintf(text, sizeof text, base_config, "");
    snprintf(key, sizeof key, "\"%s\": ", field);
    char *at = strstr(text, key);
    if (!CHECKF(at != NULL, "no field %s", field)) return -1;
    char *end = at + strlen(key);
    int depth = 0; /* the value ends at the next ',' or '}' outside brackets */
    while (*end && !(depth == 0 && (*end == ',' || *end == '}'))) {
        depth += *end == '[' ? 1 : *end == ']' ? -1 : 0;
        end++;
    }
    char out[2048];
    if (repl)
        snprintf(out, sizeof out, "%.*s%s%s", (int)(at - text), text, key, repl), strcat(out, end);
    else snprintf(out, sizeof out, "%.*s%s", (int)(at - text), text, *end == ',' ? end + 1 : end);
    return hf_config_parse(h, "dir/config.json", out, strlen(out), err, errlen);
}

static void test_config_reads_fields(void) {
    HfConfig h;
    char err[512] = "";
    if (!CHECKF(parse_config("", &h, err, sizeof err) == 0, "%s", err)) return;
    const ModelConfig *c = &h.cfg;
    CHECK(c->dim == 64 && c->hidden_dim == 192 && c->n_layers == 5 && c->n_heads == 8 &&
          c->n_kv_heads == 4 && c->vocab_size == 512 && c->seq_len == 256);
    CHECK(h.tied && h.cfg.norm_eps == 1e-5f && h.cfg.rope_theta == 10000.0f && h.bos_id == 1 &&
          h.eos_id == 2);
    CHECK(strcmp(h.architecture, "LlamaForCausalLM") == 0);
    /* Defaults of absent fields. */
    CHECK(parse_config_with("num_key_value_heads", NULL, &h, err, sizeof err) == 0 &&
          h.cfg.n_kv_heads == 8);
    CHECK(parse_config_with("rope_theta", NULL, &h, err, sizeof err) == 0 &&
          h.cfg.rope_theta == 10000.0f);
    CHECK(parse_config_with("rms_norm_eps", NULL, &h, err, sizeof err) == 0 && h.cfg.norm_eps == 1e-6f);
    CHECK(parse_config_with("tie_word_embeddings", NULL, &h, err, sizeof err) == 0 && !h.tied);
    CHECK(parse_config_with("architectures", NULL, &h, err, sizeof err) == 0 &&
          strcmp(h.architecture, "llama") == 0);
    /* Accepted variants. */
    CHECK(parse_config_with("architectures", "[\"MistralForCausalLM\"]", &h, err, sizeof err) == 0);
    CHECK(parse_config_with("eos_token_id", "[2, 32000]", &h, err, sizeof err) == 0 &&
          h.eos_id == 2);
    CHECK(parse_config_with("rope_theta", "500000", &h, err, sizeof err) == 0 &&
          h.cfg.rope_theta == 500000.0f);
    CHECK(parse_config(", \"rope_scaling\": null, \"attention_bias\": false, \"head_dim\": 8", &h,
                       err, sizeof err) == 0);
    CHECK(parse_config(", \"sliding_window\": 128", &h, err, sizeof err) == 0 &&
          h.cfg.seq_len == 128);
    CHECK(parse_config(", \"sliding_window\": null", &h, err, sizeof err) == 0 &&
          h.cfg.seq_len == 256);
}

static void test_config_rejects(void) {
    static const struct {
        const char *field, *value, *fragment;
    } bad[] = {
        {"hidden_size", "\"64\"", "hidden_size must be an integer, not a string"},
        {"hidden_size", "64.5", "hidden_size = 64.5 is not a non-negative integer"},
        {"hidden_size", "-64", "hidden_size = -64 is not"},
        {"hidden_size", "0", "hidden_size = 0 is outside"},
        {"hidden_size", "1e2", "hidden_size = 1e2 is not"},
        {"hidden_size", NULL, "no \"hidden_size\""},
        {"num_hidden_layers", "100000", "num_hidden_layers = 100000 is outside 1..1024"},
        {"num_attention_heads", "7", "hidden_size 64 is not divisible by num_attention_heads 7"},
        {"num_attention_heads", "64", "is odd"},
        {"num_key_value_heads", "3", "not divisible by num_key_value_heads 3"},
        {"vocab_size", "true", "vocab_size must be an integer, not a boolean"},
        {"vocab_size", "99999999999999999999999", "is not a non-negative integer"},
        {"max_position_embeddings", "[256]", "must be an integer, not an array"},
        {"rms_norm_eps", "-1e-5", "rms_norm_eps = -1e-5 is outside"},
        {"rms_norm_eps", "\"1e-5\"", "rms_norm_eps must be a number"},
        {"rms_norm_eps", "1e999", "is not a finite number"},
        {"rope_theta", "0", "rope_theta = 0 is outside"},
        {"rope_theta", "1e300", "is outside"},
        {"tie_word_embeddings", "1", "tie_word_embeddings must be true or false"},
        {"bos_token_id", "512", "bos_token_id = 512 is not below vocab_size 512"},
        {"eos_token_id", "\"</s>\"", "eos_token_id must be a non-negative integer"},
        {"eos_token_id", "[]", "eos_token_id is an empty list"},
        {"eos_token_id", "[-1]", "eos_token_id must be a non-negative integer"},
        {"architectures", "[\"GPT2LMHeadModel\"]",
         "architectures: GPT2LMHeadModel is not supported"},
        {"architectures", "[\"LlamaForCausalLM\", \"Qwen2ForCausalLM\"]",
         "Qwen2ForCausalLM is not"},
        {"architectures", "[]", "non-empty list"},
        {"architectures", "\"LlamaForCausalLM\"", "non-empty list"},
        {"hidden_act", "\"gelu\"", "hidden_act must be \"silu\""},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        HfConfig h;
        char err[512] = "";
        const int rc = parse_config_with(bad[i].field, bad[i].value, &h, err, sizeof err);
        CHECKF(rc != 0 && strstr(err, bad[i].fragment) && strstr(err, "dir/config.json: ") == err,
               "%s = %s: rc %d, error '%s' lacks '%s'", bad[i].field,
               bad[i].value ? bad[i].value : "(absent)", rc, err, bad[i].fragment);
    }
    static const struct {
        const char *extra, *fragment;
    } extra[] = {
        {", \"rope_scaling\": {\"type\": \"linear\", \"factor\": 2.0}",
         "rope_scaling (linear) is set"},
        {", \"rope_scaling\": {\"rope_type\": \"llama3\"}", "rope_scaling (llama3) is set"},
        {", \"rope_scaling\": 2", "rope_scaling is set"},
        {", \"attention_bias\": true", "attention_bias is true"},
        {", \"mlp_bias\": \"no\"", "mlp_bias must be true or false"},
        {", \"head_dim\": 16", "head_dim = 16 is not hidden_size / num_attention_heads = 8"},
        {", \"sliding_window\": 0", "sliding_window = 0 is outside"},
        {", \"hidden_size\": 32", "duplicate key \"hidden_size\""},
    };
    for (size_t i = 0; i < sizeof extra / sizeof extra[0]; i++) {
        HfConfig h;
        char err[512] = "";
        const int rc = parse_config(extra[i].extra, &h, err, sizeof err);
        CHECKF(rc != 0 && strstr(err, extra[i].fragment) && strstr(err, "dir/config.json: ") == err,
               "%s: rc %d, error '%s' lacks '%s'", extra[i].extra, rc, err, extra[i].fragment);
    }
    HfConfig h;
    char err[512] = "";
    CHECK(hf_config_parse(&h, "c.json", "[]", 2, err, sizeof err) != 0 &&
          strstr(err, "not a JSON object"));
    CHECK(hf_config_parse(&h, "c.json", "{", 1, err, sizeof err) != 0 &&
          strstr(err, "c.json: line 1"));
}

/* ------------------------------------------------------------------ whole directories */

static float bf16_round(float x) { /* round to nearest even, as torch and the exporter do */
    uint32_t u;
    memcpy(&u, &x, 4);
    u = (u + 0x7FFF + ((u >> 16) & 1)) & 0xFFFF0000u;
    memcpy(&x, &u, 4);
    return x;
}

/* The checkpoint's copy of engine tensor t. */
static const float *checkpoint_tensor(const Checkpoint *ck, const HfTensor *t) {
    const size_t l = t->layer < 0 ? 0 : (size_t)t->layer, size = (size_t)t->rows * t->cols;
    const float *base[] = {[HF_EMBEDDING] = ck->token_embedding, [HF_RMS_ATT] = ck->rms_att,
                           [HF_WQ] = ck->wq, [HF_WK] = ck->wk, [HF_WV] = ck->wv, [HF_WO] = ck->wo,
                           [HF_RMS_FFN] = ck->rms_ffn, [HF_W1] = ck->w1, [HF_W2] = ck->w2,
                           [HF_W3] = ck->w3, [HF_RMS_FINAL] = ck->rms_final,
                           [HF_CLASSIFIER] = ck->wcls};
    return base[t->role] + l * size;
}

/* Every tensor read from the HF directory equals the checkpoint's, bit for bit (after
 * rounding the checkpoint through BF16 when the directory is BF16); and they come in
 * llama2.c's order. */
static void compare_with_checkpoint(const char *dir, const char *bin, int bf16) {
    HfModel m;
    Checkpoint ck;
    char err[512] = "";
    if (!CHECKF(hf_model_open(&m, dir, err, sizeof err) == 0, "%s", err)) return;
    if (!CHECKF(checkpoint_open(&ck, bin, err, sizeof err) == 0, "%s", err)) {
        hf_model_close(&m);
        return;
    }
    ModelConfig shape = m.config.cfg; /* the checkpoint's shape; RoPE base and eps are the config's */
    shape.rope_theta = ck.cfg.rope_theta, shape.norm_eps = ck.cfg.norm_eps;
    CHECK(memcmp(&shape, &ck.cfg, sizeof ck.cfg) == 0);
    CHECK(m.config.tied == ck.shared_classifier);
    const int L = ck.cfg.n_layers;
    CHECK(m.n_tensors == 2 + 9 * L + !ck.shared_classifier);
    size_t mismatches = 0, compared = 0;
    for (int i = 0; i < m.n_tensors; i++) {
        const HfTensor *t = &m.tensors[i];
        /* llama2.c order: embedding, then each per-layer role over all layers, then the rest */
        const HfRole role = i == 0 ? HF_EMBEDDING : i <= 9 * L ? (HfRole)(1 + (i - 1) / L)
                          : i == 9 * L + 1 ? HF_RMS_FINAL : HF_CLASSIFIER;
        const int layer = i == 0 || i > 9 * L ? -1 : (i - 1) % L;
        CHECKF(t->role == role && t->layer == layer, "tensor %d is %s/%d, expected %s/%d", i,
               hf_role_name(t->role), t->layer, hf_role_name(role), layer);
        CHECK(hf_model_find(&m, role, layer) == i);
        const size_t n = (size_t)t->rows * t->cols;
        float *got = malloc(n * sizeof *got);
        if (!CHECKF(hf_model_read_rows(&m, i, 0, t->rows, got, err, sizeof err) == 0, "%s", err)) {
            free(got);
            break;
        }
        const float *want = checkpoint_tensor(&ck, t);
        for (size_t k = 0; k < n; k++) {
            const float w = bf16 ? bf16_round(want[k]) : want[k];
            mismatches += memcmp(&got[k], &w, sizeof w) != 0;
        }
        compared += n;
        /* Reading a tensor in two pieces gives the same rows. */
        if (t->rows > 1) {
            const int half = t->rows / 2;
            float *part = malloc((size_t)(t->rows - half) * t->cols * sizeof *part);
            CHECK(hf_model_read_rows(&m, i, half, t->rows - half, part, err, sizeof err) == 0 &&
                  memcmp(part, got + (size_t)half * t->cols,
                         (size_t)(t->rows - half) * t->cols * sizeof *part) == 0);
            free(part);
        }
        hf_model_release(&m, i);
        free(got);
    }
    CHECKF(mismatches == 0, "%s: %zu of %zu weights differ from %s", dir, mismatches, compared,
           bin);
    CHECK(hf_model_find(&m, HF_WQ, L) == -1);
    CHECK((hf_model_find(&m, HF_CLASSIFIER, -1) == -1) == ck.shared_classifier);
    /* The q/k permutation matters: HF's raw rows of wq differ from the engine's. */
    const HfTensor *wq = &m.tensors[1 + L];
    float *raw = malloc((size_t)wq->rows * wq->cols * sizeof *raw);
    CHECK(wq->role == HF_WQ && wq->permuted_heads == ck.cfg.n_heads &&
          safetensors_read(wq->src, 0, (uint64_t)wq->rows * wq->cols, raw) == 0);
    CHECK(raw[wq->cols] != checkpoint_tensor(&ck, wq)[wq->cols]); /* row 1 = HF row hs/2 */
    CHECK(hf_model_read_rows(&m, 0, 1, ck.cfg.vocab_size, raw, err, sizeof err) != 0 &&
          strstr(err, "outside"));
    free(raw);
    checkpoint_close(&ck);
    hf_model_close(&m);
}

static void test_llama2xs_bf16_equals_checkpoint(void) {
    compare_with_checkpoint(XS_DIR, "tests/data/llama2xs.bin", 1);
    HfModel m;
    char err[512] = "";
    if (!CHECKF(hf_model_open(&m, XS_DIR, err, sizeof err) == 0, "%s", err)) return;
    CHECK(m.st.n_files == 1 && m.tensors[0].src->dtype == ST_BF16);
    CHECK(m.config.cfg.rope_theta == 10000.0f && m.config.cfg.norm_eps == 1e-5f && m.config.tied);
    CHECK(m.config.bos_id == 1 && m.config.eos_id == 2);
    CHECK(strcmp(m.tokenizer_path, XS_DIR "/tokenizer.model") == 0);
    hf_model_close(&m);
}

static void test_wide64_theta_equals_checkpoint(void) {
    compare_with_checkpoint(WIDE_DIR, "tests/data/wide64.bin", 0);
    HfModel m;
    char err[512] = "";
    if (!CHECKF(hf_model_open(&m, WIDE_DIR, err, sizeof err) == 0, "%s", err)) return;
    CHECK(m.st.n_files == 3 && m.tensors[0].src->dtype == ST_F32);
    CHECK(m.config.cfg.rope_theta == 500000.0f && m.config.cfg.norm_eps == 1e-6f && !m.config.tied);
    CHECK(m.tensors[m.n_tensors - 1].role == HF_CLASSIFIER);
    hf_model_close(&m);
}

/* ------------------------------------------------------------------ broken directories */

/* A temporary copy of a test directory (its path, static storage). */
static const char *copy_dir(const char *src) {
    static char dir[256];
    snprintf(dir, sizeof dir, "%s/qrazor-hf-XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    if (!CHECKF(mkdtemp(dir) != NULL, "mkdtemp failed")) return NULL;
    DIR *d = opendir(src);
    if (!CHECKF(d != NULL, "cannot open %s", src)) return NULL;
    for (struct dirent *e; (e = readdir(d));) {
        if (e->d_name[0] == '.') continue;
        char from[512], to[512];
        snprintf(from, sizeof from, "%s/%s", src, e->d_name);
        snprintf(to, sizeof to, "%s/%s", dir, e->d_name);
        size_t size;
        char *data = test_read_file(from, &size);
        FILE *f = data ? fopen(to, "wb") : NULL;
        CHECKF(f && fwrite(data, 1, size, f) == size, "cannot copy %s", from);
        if (f) fclose(f);
        free(data);
    }
    closedir(d);
    return dir;
}

static void remove_dir(const char *dir) {
    DIR *d = opendir(dir);
    if (!d) return;
    for (struct dirent *e; (e = readdir(d));) {
        if (e->d_name[0] == '.') continue;
        char path[512];
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        unlink(path);
    }
    closedir(d);
    CHECKF(rmdir(dir) == 0, "cannot remove %s", dir);
}

static int write_whole(const char *path, const void *data, size_t size) {
    FILE *f = fopen(path, "wb");
    const int ok = f && fwrite(data, 1, size, f) == size;
    if (f) fclose(f);
    return CHECKF(ok, "cannot write %s", path);
}

/* Replaces the first `from` by `to` in dir/name. For a .safetensors file the replacement
 * happens in the JSON header, whose length field is rewritten to match. */
static void patch(const char *dir, const char *name, const char *from, const char *to) {
    char path[512];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    size_t size;
    char *data = test_read_file(path, &size);
    if (!data) return;
    const int st = strstr(name, ".safetensors") && !strstr(name, ".json");
    uint64_t hlen = size;
    size_t start = 0;
    if (st) {
        hlen = 0;
        for (int i = 7; i >= 0; i--) hlen = hlen << 8 | (unsigned char)data[i];
        start = 8;
    }
    char *text = data + start;
    const char saved = text[hlen];
    text[hlen] = '\0'; /* search the header only */
    char *at = strstr(text, from);
    text[hlen] = saved;
    if (!CHECKF(at != NULL, "'%s' not in %s", from, path)) {
        free(data);
        return;
    }
    const size_t head = (size_t)(at - data), nfrom = strlen(from), nto = strlen(to);
    const size_t out_size = size - nfrom + nto;
    char *out = malloc(out_size);
    memcpy(out, data, head);
    memcpy(out + head, to, nto);
    memcpy(out + head + nto, at + nfrom, size - head - nfrom);
    if (st) {
        const uint64_t nh = hlen - nfrom + nto;
        for (int i = 0; i < 8; i++) out[i] = (char)(nh >> (8 * i));
    }
    write_whole(path, out, out_size);
    free(out);
    free(data);
}

/* Opening dir fails with one line that holds each fragment (up to 3). */
static void expect_model_error(const char *dir, const char *f1, const char *f2, const char *f3) {
    HfModel m;
    char err[1024] = "";
    const int rc = hf_model_open(&m, dir, err, sizeof err);
    CHECKF(rc != 0, "%s: opened", dir);
    const char *frags[] = {f1, f2, f3};
    for (int i = 0; i < 3; i++)
        CHECKF(!frags[i] || strstr(err, frags[i]), "error '%s' lacks '%s'", err, frags[i]);
    CHECKF(!strchr(err, '\n') && strstr(err, dir) == err, "error '%s': not one line naming %s",
           err, dir);
    if (rc == 0) hf_model_close(&m);
}

#define NORM_ENTRY "\"model.norm.weight\":{\"dtype\":\"BF16\",\"shape\":[64],\"data_offsets\":["

static void test_rejects_broken_safetensors_in_dir(void) {
    const char *d;
    char path[512];
    if ((d = copy_dir(XS_DIR))) { /* truncated: the last tensor runs past the end */
        snprintf(path, sizeof path, "%s/model.safetensors", d);
        CHECK(truncate(path, 563352 - 2) == 0);
        expect_model_error(d, "model.safetensors: tensor model.norm.weight", "run past the end",
                           "truncated?");
        remove_dir(d);
    }
    if ((d = copy_dir(XS_DIR))) { /* a header length past the file */
        snprintf(path, sizeof path, "%s/model.safetensors", d);
        size_t size;
        char *data = test_read_file(path, &size);
        if (data) {
            data[5] = 1;
            write_whole(path, data, size);
        }
        free(data);
        expect_model_error(d, "model.safetensors: header length", "runs past the end", NULL);
        remove_dir(d);
    }
    if ((d = copy_dir(XS_DIR))) { /* offsets overlapping the tensor before */
        patch(d, "model.safetensors", NORM_ENTRY "558336,558464]", NORM_ENTRY "558334,558462]");
        expect_model_error(d, "model.safetensors: tensor model.norm.weight", "overlap", NULL);
        remove_dir(d);
    }
    if ((d = copy_dir(XS_DIR))) { /* offsets the wrong way round */
        patch(d, "model.safetensors", NORM_ENTRY "558336,558464]", NORM_ENTRY "558464,558336]");
        expect_model_error(d, "tensor model.norm.weight", "end before they begin", NULL);
        remove_dir(d);
    }
    if ((d = copy_dir(XS_DIR))) { /* a dtype the importer does not convert */
        patch(d, "model.safetensors", "\"model.norm.weight\":{\"dtype\":\"BF16\",\"shape\":[64]",
              "\"model.norm.weight\":{\"dtype\":\"I8\",\"shape\":[128]");
        expect_model_error(d, "model.safetensors: tensor model.norm.weight has dtype I8",
                           "reads F32, F16 and BF16", NULL);
        remove_dir(d);
    }
    if ((d = copy_dir(XS_DIR))) { /* a missing tensor */
        patch(d, "model.safetensors", "\"model.norm.weight\"", "\"model.norm.weighs\"");
        expect_model_error(d, "model.safetensors: no tensor model.norm.weight", NULL, NULL);
        remove_dir(d);
    }
    if ((d = copy_dir(XS_DIR))) { /* a NaN weight: found when read, naming the tensor */
        snprintf(path, sizeof path, "%s/model.safetensors", d);
        size_t size;
        char *data = test_read_file(path, &size);
        if (data) {
            const uint64_t hlen = (unsigned char)data[0] | (uint64_t)(unsigned char)data[1] << 8;
            data[8 + hlen + 2 * 64 + 1] = 0x7F; /* embedding row 1, column 0: 0x7FC0 */
            data[8 + hlen + 2 * 64] = (char)0xC0;
            write_whole(path, data, size);
        }
        free(data);
        HfModel m;
        char err[512] = "";
        float row[64];
        if (CHECKF(hf_model_open(&m, d, err, sizeof err) == 0, "%s", err)) {
            CHECK(hf_model_read_rows(&m, 0, 0, 1, row, err, sizeof err) == 0);
            CHECK(hf_model_read_rows(&m, 0, 1, 1, row, err, sizeof err) != 0 &&
                  strstr(err, "tensor model.embed_tokens.weight holds NaN at row 1, column 0"));
            hf_model_close(&m);
        }
        remove_dir(d);
    }
}

static void test_rejects_shape_and_shard_problems(void) {
    const char *d;
    char path[512];
    if ((d = copy_dir(WIDE_DIR))) { /* a tensor of the wrong shape */
        patch(d, "model-00001-of-00003.safetensors",
              "\"model.layers.0.self_attn.k_proj.weight\":{\"dtype\":\"F32\",\"shape\":[64,128]",
              "\"model.layers.0.self_attn.k_proj.weight\":{\"dtype\":\"F32\",\"shape\":[128,64]");
        expect_model_error(d, "model-00001-of-00003.safetensors: tensor "
                           "model.layers.0.self_attn.k_proj.weight has shape [128, 64]",
                           "num_key_value_heads 1", "implies [64, 128]");
        remove_dir(d);
    }
    if ((d = copy_dir(WIDE_DIR))) { /* a shard named in the index but absent */
        snprintf(path, sizeof path, "%s/model-00002-of-00003.safetensors", d);
        CHECK(unlink(path) == 0);
        expect_model_error(d, "model.safetensors.index.json: names shard "
                           "model-00002-of-00003.safetensors, but", "does not exist", NULL);
        remove_dir(d);
    }
    if ((d = copy_dir(WIDE_DIR))) { /* the index and the shards disagree */
        patch(d, "model.safetensors.index.json",
              "\"model.norm.weight\": \"model-00003-of-00003.safetensors\"",
              "\"model.norm.weight\": \"model-00001-of-00003.safetensors\"");
        expect_model_error(d, "index.json: tensor model.norm.weight is listed in shard "
                           "model-00001-of-00003.safetensors, which does not hold it", NULL, NULL);
        remove_dir(d);
    }
    if ((d = copy_dir(WIDE_DIR))) { /* a shard outside the directory */
        patch(d, "model.safetensors.index.json", "\"model-00003-of-00003.safetensors\"",
              "\"../model-00003-of-00003.safetensors\"");
        expect_model_error(d, "index.json: weight_map: tensor", "a file name in the same directory",
                           NULL);
        remove_dir(d);
    }
    if ((d = copy_dir(WIDE_DIR))) { /* the config contradicts the tensors */
        patch(d, "config.json", "\"num_key_value_heads\": 1", "\"num_key_value_heads\": 2");
        expect_model_error(d, "tensor model.layers.0.self_attn.k_proj.weight has shape [64, 128]",
                           "implies [128, 128]", NULL);
        remove_dir(d);
    }
    if ((d = copy_dir(WIDE_DIR))) {
        patch(d, "config.json", "\"vocab_size\": 512", "\"vocab_size\": 500");
        expect_model_error(d, "tensor model.embed_tokens.weight has shape [512, 128]",
                           "vocab_size 500", "implies [500, 128]");
        remove_dir(d);
    }
    if ((d = copy_dir(XS_DIR))) {
        patch(d, "config.json", "\"num_hidden_layers\": 5", "\"num_hidden_layers\": 4");
        expect_model_error(d, "tensor model.layers.4.", "num_hidden_layers 4", NULL);
        remove_dir(d);
    }
    if ((d = copy_dir(XS_DIR))) {
        patch(d, "config.json", "\"tie_word_embeddings\": true", "\"tie_word_embeddings\": false");
        expect_model_error(d, "no tensor lm_head.weight", "tie_word_embeddings is false", NULL);
        remove_dir(d);
    }
}

static void test_rejects_config_and_tokenizer_problems(void) {
    const char *d;
    char path[512];
    static const struct {
        const char *from, *to, *fragment;
    } edits[] = {
        {"\"hidden_size\": 64", "\"hidden_size\": \"64\"", "hidden_size must be an integer"},
        {"\"rms_norm_eps\": 1e-05", "\"rms_norm_eps\": 5", "rms_norm_eps = 5 is outside"},
        {"\"num_hidden_layers\": 5", "\"num_hidden_layers\": 5000", "num_hidden_layers = 5000"},
        {"\"LlamaForCausalLM\"", "\"GemmaForCausalLM\"", "GemmaForCausalLM is not supported"},
        {"\"rope_theta\": 10000.0",
         "\"rope_theta\": 10000.0, \"rope_scaling\": {\"type\": \"dynamic\"}",
         "rope_scaling (dynamic) is set"},
        {"\"hidden_size\": 64", "\"hidden_size\": 64,", "config.json: line"},
    };
    for (size_t i = 0; i < sizeof edits / sizeof edits[0]; i++) {
        if (!(d = copy_dir(XS_DIR))) continue;
        patch(d, "config.json", edits[i].from, edits[i].to);
        expect_model_error(d, "/config.json: ", edits[i].fragment, NULL);
        remove_dir(d);
    }
    if ((d = copy_dir(XS_DIR))) { /* Llama 3 style: tokenizer.json only */
        snprintf(path, sizeof path, "%s/tokenizer.model", d);
        CHECK(unlink(path) == 0);
        snprintf(path, sizeof path, "%s/tokenizer.json", d);
        write_whole(path, "{}", 2);
        expect_model_error(d, "has tokenizer.json but no tokenizer.model", "sentencepiece", NULL);
        snprintf(path, sizeof path, "%s/tokenizer.json", d);
        unlink(path);
        expect_model_error(d, "no tokenizer.model", NULL, NULL);
        remove_dir(d);
    }
    if ((d = copy_dir(XS_DIR))) { /* PyTorch weights only */
        snprintf(path, sizeof path, "%s/model.safetensors", d);
        CHECK(unlink(path) == 0);
        snprintf(path, sizeof path, "%s/pytorch_model.bin", d);
        write_whole(path, "x", 1);
        expect_model_error(d, "no model.safetensors", "pytorch_model.bin", NULL);
        snprintf(path, sizeof path, "%s/config.json", d);
        CHECK(unlink(path) == 0);
        expect_model_error(d, "no config.json", NULL, NULL);
        remove_dir(d);
    }
    expect_model_error("tests/data/llama2xs.bin", "not a directory", NULL, NULL);
}

/* ------------------------------------------------------------------ run import */

#define ARGS(...) ((const char *const[]){"run", __VA_ARGS__, NULL})

/* Runs the program; expects exit status `status` and, when given, fragment in stderr. */
static void expect_program(const char *const *argv, int status, const char *fragment) {
    RunResult r = test_run_program(argv, NULL, NULL);
    CHECKF(r.status == status && r.err && (!fragment || strstr(r.err, fragment)) &&
               (status == 0 || (strstr(r.err, "error: ") == r.err && !strchr(r.err, '\n')[1])),
           "run %s %s %s: exit %d (expected %d), stderr '%s' (expected '%s')", argv[1], argv[2], argv[3], r.status,
           status, r.err ? r.err : "", fragment ? fragment : "");
    run_result_free(&r);
}

/* Imports dir through the program as `mode`, then runs the golden case in golden_mode. */
static void check_import_golden(const char *dir, const char *case_path, const char *mode, const char *golden_mode) {
    const char *out = test_temp_path("imported.qrz");
    expect_program(ARGS("import", dir, out, "-q", mode, "--embedding", "fp32"), 0, "wrote ");
    const GoldenCase gc = {out, case_path, ""};
    golden_check_case(&gc, golden_mode, strncmp(golden_mode, "fp32", 4) ? golden_tolerance(golden_mode) : 1e-4, NULL);
    remove(out);
}

/* The oracle read the same directories (golden/README.md), so an imported model must give
 * its logits: fp32 within 1e-4 of the range, the integer modes as tests/test_forward.c
 * bounds them, greedy ids equal. wide64-theta checks rope_theta 500000, eps 1e-6, GQA and
 * an untied classifier made it into the file and the engine. */
static void test_import_matches_golden(void) {
    static const struct {
        const char *dir, *case_path;
    } cases[] = {{XS_DIR, "tests/data/golden/llama2xs-bf16/park"}, {WIDE_DIR, "tests/data/golden/wide64-theta/sara"}};
    static const char *const modes[][2] = {{"fp32", "fp32"}, {"qrazor/cls=fp32", "qrazor-g16"},
                                           {"qrazor", "qrazor-g16-clsq"}};
    for (int c = 0; c < 2; c++)
        for (int m = 0; m < 3; m++) check_import_golden(cases[c].dir, cases[c].case_path, modes[m][0], modes[m][1]);
    /* Rotated as they stream in (docs/SPEC.md section 7): the oracle's --rot on the same
     * weights. llama2xs-bf16 is tied, so its classifier becomes a tensor of its own. */
    check_import_golden(XS_DIR, "tests/data/golden/llama2xs-bf16-rot/park", "fp32/rot", "fp32-rot");
    check_import_golden(XS_DIR, "tests/data/golden/llama2xs-bf16-rot/park", "qrazor/rot", "qrazor-g16-rot-clsq");
    check_import_golden(WIDE_DIR, "tests/data/golden/wide64-theta-rot/sara", "fp32/rot", "fp32-rot");
    check_import_golden(WIDE_DIR, "tests/data/golden/wide64-theta-rot/sara", "quarot/cls=fp32", "rtn4-rot");
    check_import_golden(WIDE_DIR, "tests/data/golden/wide64-theta-rot/sara", "qrazor/rot", "qrazor-g16-rot-clsq");
}

/* What the file holds besides weights: config.json's values, the tokenizer's bytes, a
 * chat template guessed from tokenizer_config.json (or given); and the file runs alone. */
static void test_import_stores_model_facts(void) {
    const char *d = copy_dir(WIDE_DIR);
    if (!d) return;
    char path[512], out[512], err[512] = "";
    snprintf(path, sizeof path, "%s/tokenizer_config.json", d);
    static const char config[] = "{\"chat_template\": \"{% for message in messages %}{% if message['role'] == "
                                 "'user' %}{{ '<|user|>\\n' + message['content'] + eos_token }}{% endif %}{% endfor %}\"}";
    write_whole(path, config, strlen(config));
    snprintf(out, sizeof out, "%s/model.qrz", test_temp_dir());
    expect_program(ARGS("import", d, out), 0, "chat template zephyr");
    ModelWeights w;
    size_t tok_size;
    snprintf(path, sizeof path, "%s/tokenizer.model", d);
    char *tok = test_read_file(path, &tok_size);
    if (CHECKF(model_open(&w, out, NULL, NULL, err, sizeof err) == 0, "%s", err)) {
        CHECK(w.cfg.rope_theta == 500000.0f && w.cfg.norm_eps == 1e-6f && w.bos_id == 1 && w.eos_id == 2);
        CHECK(!strcmp(w.chat_template, "zephyr"));
        CHECK(tok && w.tokenizer_size == tok_size && !memcmp(w.tokenizer, tok, tok_size));
        model_close(&w);
    }
    free(tok);
    remove_dir(d); /* nothing beside the file now: the tokenizer must come from it */
    RunResult r = test_run_program(ARGS(out, "-n", "12", "-t", "0", "-i", "Sara"), NULL, NULL);
    CHECKF(r.status == 0 && r.err && strstr(r.err, "tokenizer: stored in") && r.out && strstr(r.out, "Sara"),
           "exit %d: %s", r.status, r.err);
    run_result_free(&r);
    expect_program(ARGS("import", WIDE_DIR, out, "--chat-template", "chatml"), 0, "chat template chatml");
    if (CHECKF(model_open(&w, out, NULL, NULL, err, sizeof err) == 0, "%s", err)) {
        CHECK(!strcmp(w.chat_template, "chatml"));
        model_close(&w);
    }
    expect_program(ARGS("import", XS_DIR, out), 0, "chat template unknown");
    remove(out);
    CHECK(!strcmp(hf_chat_template_hint("{{ '<|im_start|>' + message['role'] }}"), "chatml"));
    CHECK(!strcmp(hf_chat_template_hint("{{ bos_token + '[INST] ' + content }}"), "llama2"));
    CHECK(!strcmp(hf_chat_template_hint("{{ content }}"), ""));
}

/* The INT8 embedding: each row's codes times its scale are the float row to within half a
 * step (stage-1 rounding), and the file is smaller by 3 bytes per weight less a scale per row. */
static void test_import_int8_embedding(void) {
    const char *fp = test_temp_path("fp32-emb.qrz"), *i8 = test_temp_path("int8-emb.qrz");
    /* The default follows the classifier: int8 with a quantized one, fp32 with fp32. */
    expect_program(ARGS("import", WIDE_DIR, i8), 0, ": qrazor/emb=int8, chat");
    expect_program(ARGS("import", WIDE_DIR, i8, "-q", "qrazor/emb=fp32"), 0, ": qrazor, chat");
    expect_program(ARGS("import", WIDE_DIR, i8, "--cls", "fp32"), 0, ": qrazor/cls=fp32, chat");
    expect_program(ARGS("import", WIDE_DIR, fp, "-q", "fp32"), 0, ": fp32, chat");
    expect_program(ARGS("import", WIDE_DIR, i8, "-q", "fp32", "--embedding", "int8"), 0, ": fp32/emb=int8, chat");
    ModelWeights w;
    HfModel m;
    char err[512] = "";
    struct stat a, b;
    if (CHECK(stat(fp, &a) == 0 && stat(i8, &b) == 0))
        CHECKF(a.st_size - b.st_size == 512 * 128 * 3 - 512 * 4, "fp32 %lld bytes, int8 %lld",
               (long long)a.st_size, (long long)b.st_size);
    if (CHECKF(model_open(&w, i8, NULL, NULL, err, sizeof err) == 0, "%s", err) &&
        CHECKF(hf_model_open(&m, WIDE_DIR, err, sizeof err) == 0, "%s", err)) {
        float want[128], got[128];
        int bad = 0;
        CHECK(w.token_embedding == NULL && w.embedding_i8.q != NULL && w.cls.storage == STORE_F32);
        for (int t = 0; t < 512; t++) {
            CHECK(hf_model_read_rows(&m, 0, t, 1, want, err, sizeof err) == 0);
            model_embed(&w, t, got);
            for (int k = 0; k < 128; k++) bad += !(fabsf(got[k] - want[k]) <= 0.5001f * w.embedding_i8.scales[t]);
        }
        CHECKF(bad == 0, "%d embedding values off by more than half a step", bad);
        hf_model_close(&m);
    }
    if (w.layers) model_close(&w);
    RunResult r = test_run_program(ARGS(i8, "-n", "12", "-t", "0"), NULL, NULL);
    CHECKF(r.status == 0, "the int8-embedding file does not run: %s", r.err);
    run_result_free(&r);
    remove(fp), remove(i8);
}

/* Entries of a directory (. and .. aside). */
static int count_files(const char *dir) {
    DIR *d = opendir(dir);
    int n = 0;
    for (struct dirent *e; d && (e = readdir(d));) n += e->d_name[0] != '.';
    if (d) closedir(d);
    return n;
}

/* Bad input and bad destinations: one line naming the file and the problem, exit 1, and
 * no file left behind (neither OUT nor a temporary beside it). */
static void test_import_refuses_and_leaves_nothing(void) {
    char outdir[512], out[600], path[600];
    snprintf(outdir, sizeof outdir, "%s/out-XXXXXX", test_temp_dir());
    if (!CHECK(mkdtemp(outdir) != NULL)) return;
    snprintf(out, sizeof out, "%s/model.qrz", outdir);
    const char *d;
    if ((d = copy_dir(XS_DIR))) { /* a missing tensor */
        patch(d, "model.safetensors", "\"model.norm.weight\"", "\"model.nrom.weight\"");
        expect_program(ARGS("import", d, out), 1, "model.safetensors: no tensor model.norm.weight");
        remove_dir(d);
    }
    if ((d = copy_dir(WIDE_DIR))) { /* a tensor of the wrong shape */
        patch(d, "model-00001-of-00003.safetensors",
              "\"model.layers.0.self_attn.k_proj.weight\":{\"dtype\":\"F32\",\"shape\":[64,128]",
              "\"model.layers.0.self_attn.k_proj.weight\":{\"dtype\":\"F32\",\"shape\":[128,64]");
        expect_program(ARGS("import", d, out), 1, "tensor model.layers.0.self_attn.k_proj.weight has shape [128, 64]");
        remove_dir(d);
    }
    if ((d = copy_dir(WIDE_DIR))) { /* a shard absent */
        snprintf(path, sizeof path, "%s/model-00002-of-00003.safetensors", d);
        unlink(path);
        expect_program(ARGS("import", d, out), 1, "names shard model-00002-of-00003.safetensors");
        remove_dir(d);
    }
    if ((d = copy_dir(XS_DIR))) { /* an architecture this engine does not run */
        patch(d, "config.json", "\"LlamaForCausalLM\"", "\"Qwen2ForCausalLM\"");
        expect_program(ARGS("import", d, out), 1, "architectures: Qwen2ForCausalLM is not supported");
        remove_dir(d);
    }
    if ((d = copy_dir(XS_DIR))) { /* Llama 3 style: tokenizer.json only */
        snprintf(path, sizeof path, "%s/tokenizer.model", d);
        unlink(path);
        snprintf(path, sizeof path, "%s/tokenizer.json", d);
        write_whole(path, "{}", 2);
        expect_program(ARGS("import", d, out), 1, "has tokenizer.json but no tokenizer.model");
        remove_dir(d);
    }
    if ((d = copy_dir(XS_DIR))) { /* a NaN weight: found mid-write, the temporary goes */
        snprintf(path, sizeof path, "%s/model.safetensors", d);
        size_t size;
        char *bytes = test_read_file(path, &size);
        if (bytes) {
            memset(bytes + size - 2, 0xff, 2); /* the last BF16 value: a NaN */
            write_whole(path, bytes, size);
        }
        free(bytes);
        expect_program(ARGS("import", d, out), 1, "holds NaN");
        remove_dir(d);
    }
    CHECKF(count_files(outdir) == 0, "%d files left in the output directory", count_files(outdir));
    /* Destinations: a directory, an existing file that is not a .qrz (kept as it was). */
    expect_program(ARGS("import", XS_DIR, outdir), 1, "is a directory, not a regular file");
    snprintf(path, sizeof path, "%s/config.json", outdir);
    write_whole(path, "{}", 2);
    expect_program(ARGS("import", XS_DIR, path), 1, "exists and is not a .qrz file");
    size_t size;
    char *kept = test_read_file(path, &size);
    CHECK(kept && size == 2 && !memcmp(kept, "{}", 2));
    free(kept);
    unlink(path);
    expect_program(ARGS("import", XS_DIR), 1, "usage: run import HF_DIR OUT.qrz");
    expect_program(ARGS("import", XS_DIR, out, "-j", "2"), 1, "-j does not apply to import");
    expect_program(ARGS("import", XS_DIR, out, "--embedding", "int4"), 1, "unknown embedding storage 'int4'");
    CHECK(rmdir(outdir) == 0);
}

void suite_hf(void) {
    test_run("json_values", test_json_values);
    test_run("json_rejects", test_json_rejects);
    test_run("json_limits", test_json_limits);
    test_run("half_and_bfloat16", test_half_and_bfloat16);
    test_run("safetensors_reads_each_dtype", test_safetensors_reads_each_dtype);
    test_run("safetensors_rejects", test_safetensors_rejects);
    test_run("hf_config_reads_fields", test_config_reads_fields);
    test_run("hf_config_rejects", test_config_rejects);
    test_run("hf_llama2xs_bf16_equals_checkpoint", test_llama2xs_bf16_equals_checkpoint);
    test_run("hf_wide64_theta_equals_checkpoint", test_wide64_theta_equals_checkpoint);
    test_run("hf_rejects_broken_safetensors", test_rejects_broken_safetensors_in_dir);
    test_run("hf_rejects_shape_and_shard_problems", test_rejects_shape_and_shard_problems);
    test_run("hf_rejects_config_and_tokenizer", test_rejects_config_and_tokenizer_problems);
    test_run("import_matches_golden", test_import_matches_golden);
    test_run("import_stores_model_facts", test_import_stores_model_facts);
    test_run("import_int8_embedding", test_import_int8_embedding);
    test_run("import_refuses_and_leaves_nothing", test_import_refuses_and_leaves_nothing);
}
