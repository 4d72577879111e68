/*
 * weights/json.c - the strict JSON reader of json.h.
 *
 * One pass, no recursion: containers being filled sit on an explicit stack of at most
 * JSON_MAX_DEPTH entries. Every value takes at least one byte of input, so the value
 * array never outgrows len + 1 entries, and decoded strings never outgrow the input (an
 * escape is never shorter than what it decodes to; a string's two quotes pay for its NUL,
 * the byte after a number for the number's), so the string buffer is allocated once, at
 * the input's size plus a margin for the look-ahead of parse_string.
 */
#include "weights/json.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    const unsigned char *s;
    size_t len, pos;
    JsonDoc *doc;
    int cap;         /* allocated entries of doc->values */
    int max_values;  /* the caller's limit */
    size_t str_used; /* bytes of doc->strings in use */
    size_t str_cap;  /* its size */
    char *err;
    size_t errlen;
} Parser;

/* Writes "line L, column C: message" for the current position; returns -1. */
__attribute__((format(printf, 2, 3))) static int fail(Parser *p, const char *fmt, ...) {
    size_t line = 1, col = 1;
    for (size_t i = 0; i < p->pos && i < p->len; i++) {
        if (p->s[i] == '\n') line++, col = 1;
        else col++;
    }
    char msg[200];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    snprintf(p->err, p->errlen, "line %zu, column %zu: %s", line, col, msg);
    return -1;
}

static void skip_space(Parser *p) {
    while (p->pos < p->len) {
        const unsigned char c = p->s[p->pos];
        if (c != ' ' && c != '\t' && c != '\n' && c != '\r') break;
        p->pos++;
    }
}

/* A new value of this type; returns its index, or -1. */
static int new_value(Parser *p, JsonType type) {
    JsonDoc *d = p->doc;
    if (d->n_values == p->max_values) return fail(p, "more than %d values, the limit for this file", p->max_values);
    if (d->n_values == p->cap) {
        const int cap = p->cap == 0 ? 64 : p->cap > p->max_values / 2 ? p->max_values : 2 * p->cap;
        JsonValue *v = realloc(d->values, (size_t)cap * sizeof *v);
        if (!v) return fail(p, "out of memory");
        d->values = v;
        p->cap = cap;
    }
    JsonValue *v = &d->values[d->n_values];
    memset(v, 0, sizeof *v);
    v->type = type;
    v->first_child = v->next = -1;
    return d->n_values++;
}

/* Room for n more bytes of decoded text (guaranteed by the sizing argument above; checked
 * all the same). */
static char *string_room(Parser *p, size_t n) {
    if (n > p->str_cap - p->str_used) return NULL;
    return p->doc->strings + p->str_used;
}

static int hex4(const unsigned char *s, unsigned *out) {
    unsigned v = 0;
    for (int i = 0; i < 4; i++) {
        const unsigned char c = s[i];
        v <<= 4;
        if (c >= '0' && c <= '9') v |= c - '0';
        else if (c >= 'a' && c <= 'f') v |= c - 'a' + 10;
        else if (c >= 'A' && c <= 'F') v |= c - 'A' + 10;
        else return -1;
    }
    *out = v;
    return 0;
}

static size_t put_utf8(char *o, unsigned cp) {
    if (cp < 0x80) {
        o[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        o[0] = (char)(0xC0 | cp >> 6);
        o[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        o[0] = (char)(0xE0 | cp >> 12);
        o[1] = (char)(0x80 | (cp >> 6 & 0x3F));
        o[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    o[0] = (char)(0xF0 | cp >> 18);
    o[1] = (char)(0x80 | (cp >> 12 & 0x3F));
    o[2] = (char)(0x80 | (cp >> 6 & 0x3F));
    o[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

/* Length of the well-formed UTF-8 sequence at s (at most n bytes available), or 0: no
 * overlong forms, no surrogates, nothing above U+10FFFF (RFC 3629). */
static size_t utf8_length(const unsigned char *s, size_t n) {
    const unsigned char c = s[0];
    size_t len;
    unsigned cp, min;
    if (c >= 0xC2 && c <= 0xDF) len = 2, cp = c & 0x1F, min = 0x80;
    else if (c >= 0xE0 && c <= 0xEF) len = 3, cp = c & 0x0F, min = 0x800;
    else if (c >= 0xF0 && c <= 0xF4) len = 4, cp = c & 0x07, min = 0x10000;
    else return 0;
    if (len > n) return 0;
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xC0) != 0x80) return 0;
        cp = cp << 6 | (s[i] & 0x3F);
    }
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return 0;
    return len;
}

/* Parses the string at p->pos (its opening quote) into the string buffer. */
static int parse_string(Parser *p, const char **out, size_t *out_len) {
    char *o = string_room(p, 0), *const start = o;
    p->pos++; /* the quote */
    for (;;) {
        if (p->pos >= p->len) return fail(p, "unterminated string");
        const unsigned char c = p->s[p->pos];
        if (c == '"') {
            p->pos++;
            break;
        }
        if (c < 0x20) return fail(p, "control character 0x%02x in a string (must be escaped)", c);
        if (!string_room(p, (size_t)(o - start) + 5)) return fail(p, "string buffer overflow");
        if (c < 0x80 && c != '\\') {
            *o++ = (char)c;
            p->pos++;
            continue;
        }
        if (c >= 0x80) {
            const size_t n = utf8_length(p->s + p->pos, p->len - p->pos);
            if (!n) return fail(p, "invalid UTF-8 in a string");
            memcpy(o, p->s + p->pos, n);
            o += n;
            p->pos += n;
            continue;
        }
        /* an escape */
        if (p->pos + 1 >= p->len) return fail(p, "unterminated string");
        const unsigned char e = p->s[p->pos + 1];
        const char *simple = strchr("\"\\/bfnrt", e);
        if (e && simple) {
            static const char decoded[] = "\"\\/\b\f\n\r\t";
            *o++ = decoded[simple - "\"\\/bfnrt"];
            p->pos += 2;
            continue;
        }
        if (e != 'u') return fail(p, "invalid escape '\\%c'", e >= 0x20 && e < 0x7F ? e : '?');
        unsigned cp, low;
        if (p->pos + 6 > p->len || hex4(p->s + p->pos + 2, &cp) != 0)
            return fail(p, "\\u must be followed by 4 hex digits");
        if (cp == 0) return fail(p, "\\u0000 in a string is not accepted here");
        if (cp >= 0xDC00 && cp <= 0xDFFF) return fail(p, "unpaired low surrogate \\u%04x", cp);
        if (cp >= 0xD800 && cp <= 0xDBFF) {
            if (p->pos + 12 > p->len || p->s[p->pos + 6] != '\\' || p->s[p->pos + 7] != 'u' ||
                hex4(p->s + p->pos + 8, &low) != 0 || low < 0xDC00 || low > 0xDFFF)
                return fail(p, "high surrogate \\u%04x not followed by a low one", cp);
            cp = 0x10000 + ((cp - 0xD800) << 10) + (low - 0xDC00);
            p->pos += 6;
        }
        o += put_utf8(o, cp);
        p->pos += 6;
    }
    *o++ = '\0';
    *out = start;
    *out_len = (size_t)(o - start) - 1;
    p->str_used += (size_t)(o - start);
    return 0;
}

/* Parses the number at p->pos (RFC 8259 grammar) and keeps its literal. */
static int parse_number(Parser *p, JsonValue *v) {
    const size_t start = p->pos;
    const unsigned char *s = p->s;
    size_t i = p->pos;
#define DIGIT(k) ((k) < p->len && s[k] >= '0' && s[k] <= '9')
    if (i < p->len && s[i] == '-') i++;
    if (!DIGIT(i)) return fail(p, "invalid number");
    if (s[i] == '0') {
        i++;
        if (DIGIT(i)) return fail(p, "leading zero in a number");
    } else {
        while (DIGIT(i)) i++;
    }
    if (i < p->len && s[i] == '.') {
        if (!DIGIT(i + 1)) return fail(p, "digit expected after '.'");
        for (i++; DIGIT(i); i++) {}
    }
    if (i < p->len && (s[i] == 'e' || s[i] == 'E')) {
        i++;
        if (i < p->len && (s[i] == '+' || s[i] == '-')) i++;
        if (!DIGIT(i)) return fail(p, "digit expected in an exponent");
        while (DIGIT(i)) i++;
    }
#undef DIGIT
    const size_t n = i - start;
    char *o = string_room(p, n + 1);
    if (!o) return fail(p, "string buffer overflow");
    memcpy(o, s + start, n);
    o[n] = '\0';
    v->text = o;
    v->len = n;
    p->str_used += n + 1;
    p->pos = i;
    return 0;
}

static int key_cmp(const void *a, const void *b) {
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Duplicate keys make "which value counts" depend on the reader: refuse them. */
static int check_unique_keys(Parser *p, const JsonValue *obj) {
    if (obj->n_children < 2) return 0;
    const char **keys = malloc((size_t)obj->n_children * sizeof *keys);
    if (!keys) return fail(p, "out of memory");
    int n = 0;
    for (int c = obj->first_child; c >= 0; c = p->doc->values[c].next)
        keys[n++] = p->doc->values[c].key;
    qsort(keys, (size_t)n, sizeof *keys, key_cmp);
    for (int i = 1; i < n; i++) {
        if (strcmp(keys[i - 1], keys[i]) == 0) {
            const int rc = fail(p, "duplicate key \"%.60s\" in an object", keys[i]);
            free(keys);
            return rc;
        }
    }
    free(keys);
    return 0;
}

/* Parses a scalar value into v (p->pos at its first byte). */
static int parse_scalar(Parser *p, int v) {
    const unsigned char c = p->s[p->pos];
    static const struct {
        const char *word;
        JsonType type;
        int boolean;
    } words[] = {{"true", JSON_BOOL, 1}, {"false", JSON_BOOL, 0}, {"null", JSON_NULL, 0}};
    for (size_t w = 0; w < sizeof words / sizeof words[0]; w++) {
        const size_t n = strlen(words[w].word);
        if (c == (unsigned char)words[w].word[0]) {
            if (p->len - p->pos < n || memcmp(p->s + p->pos, words[w].word, n) != 0)
                return fail(p, "invalid literal (expected %s)", words[w].word);
            p->doc->values[v].type = words[w].type;
            p->doc->values[v].boolean = words[w].boolean;
            p->pos += n;
            return 0;
        }
    }
    if (c == '"') {
        p->doc->values[v].type = JSON_STRING;
        return parse_string(p, &p->doc->values[v].text, &p->doc->values[v].len);
    }
    if (c == '-' || (c >= '0' && c <= '9')) {
        p->doc->values[v].type = JSON_NUMBER;
        return parse_number(p, &p->doc->values[v]);
    }
    return fail(p, "unexpected character '%c' where a value should start",
                c >= 0x20 && c < 0x7F ? c : '?');
}

/* Parses `"key" :` of an object member into *key. */
static int parse_key(Parser *p, const char **key) {
    skip_space(p);
    if (p->pos >= p->len || p->s[p->pos] != '"') return fail(p, "expected a string key");
    size_t len;
    if (parse_string(p, key, &len) != 0) return -1;
    skip_space(p);
    if (p->pos >= p->len || p->s[p->pos] != ':') return fail(p, "expected ':' after a key");
    p->pos++;
    return 0;
}

static int parse_document(Parser *p) {
    struct {
        int container, last;
    } stack[JSON_MAX_DEPTH];
    int depth = 0;
    const char *key = NULL; /* the key of the member about to be parsed */
    for (;;) {
        /* A value: scalar, or the start of a container. */
        skip_space(p);
        if (p->pos >= p->len) return fail(p, "unexpected end of input (a value was expected)");
        const int v = new_value(p, JSON_NULL);
        if (v < 0) return -1;
        JsonValue *values = p->doc->values;
        values[v].key = key;
        key = NULL;
        if (depth > 0) {
            const int parent = stack[depth - 1].container, last = stack[depth - 1].last;
            if (last < 0) values[parent].first_child = v;
            else values[last].next = v;
            values[parent].n_children++;
            stack[depth - 1].last = v;
        }
        const unsigned char c = p->s[p->pos];
        if (c == '{' || c == '[') {
            if (depth == JSON_MAX_DEPTH) return fail(p, "nested deeper than %d", JSON_MAX_DEPTH);
            values[v].type = c == '{' ? JSON_OBJECT : JSON_ARRAY;
            stack[depth].container = v;
            stack[depth].last = -1;
            depth++;
            p->pos++;
            skip_space(p);
            const unsigned char close = c == '{' ? '}' : ']';
            if (p->pos < p->len && p->s[p->pos] == close) {
                p->pos++;
                depth--;
            } else {
                if (c == '{' && parse_key(p, &key) != 0) return -1;
                continue;
            }
        } else if (parse_scalar(p, v) != 0) {
            return -1;
        }
        /* After a value: a comma, or the end of one or more containers. */
        for (;;) {
            skip_space(p);
            if (depth == 0) {
                if (p->pos != p->len) return fail(p, "unexpected text after the document");
                return 0;
            }
            const JsonValue *top = &p->doc->values[stack[depth - 1].container];
            const unsigned char close = top->type == JSON_OBJECT ? '}' : ']';
            if (p->pos >= p->len) return fail(p, "unexpected end of input (missing '%c')", close);
            const unsigned char d = p->s[p->pos];
            if (d == ',') {
                p->pos++;
                if (top->type == JSON_OBJECT && parse_key(p, &key) != 0) return -1;
                break;
            }
            if (d != close) return fail(p, "expected ',' or '%c'", close);
            p->pos++;
            if (top->type == JSON_OBJECT && check_unique_keys(p, top) != 0) return -1;
            depth--;
        }
    }
}

int json_parse(JsonDoc *doc, const char *text, size_t len, JsonLimits limits, char *err, size_t errlen) {
    memset(doc, 0, sizeof *doc);
    if (len > limits.max_bytes) {
        snprintf(err, errlen, "%zu bytes of JSON, more than the %zu (%.0f MiB) accepted for this file", len,
                 limits.max_bytes, limits.max_bytes / 1048576.0);
        return -1;
    }
    Parser p = {(const unsigned char *)text, len, 0, doc, 0, limits.max_values, 0, len + 16, err, errlen};
    doc->strings = malloc(p.str_cap);
    if (!doc->strings) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    if (parse_document(&p) != 0) {
        json_free(doc);
        return -1;
    }
    return 0;
}

void json_free(JsonDoc *doc) {
    free(doc->values);
    free(doc->strings);
    memset(doc, 0, sizeof *doc);
}

const JsonValue *json_first(const JsonDoc *doc, const JsonValue *v) {
    return v && v->first_child >= 0 ? &doc->values[v->first_child] : NULL;
}

const JsonValue *json_next(const JsonDoc *doc, const JsonValue *v) {
    return v->next >= 0 ? &doc->values[v->next] : NULL;
}

const JsonValue *json_get(const JsonDoc *doc, const JsonValue *obj, const char *key) {
    if (!obj || obj->type != JSON_OBJECT) return NULL;
    for (const JsonValue *m = json_first(doc, obj); m; m = json_next(doc, m))
        if (strcmp(m->key, key) == 0) return m;
    return NULL;
}

int json_u64(const JsonValue *v, uint64_t *out) {
    if (v->type != JSON_NUMBER) return -1;
    uint64_t x = 0;
    for (size_t i = 0; i < v->len; i++) {
        const char c = v->text[i];
        if (c < '0' || c > '9') return -1; /* a sign, fraction or exponent */
        const uint64_t d = (uint64_t)(c - '0');
        if (x > (UINT64_MAX - d) / 10) return -1;
        x = x * 10 + d;
    }
    *out = x;
    return 0;
}

int json_double(const JsonValue *v, double *out) {
    if (v->type != JSON_NUMBER) return -1;
    /* The literal is already known to follow JSON's grammar, which strtod reads exactly
     * in the C locale (this program never changes it); a locale with another decimal
     * point would stop early, which the end check turns into an error, not a wrong value. */
    char *end;
    const double x = strtod(v->text, &end);
    if (end != v->text + v->len || !isfinite(x)) return -1;
    *out = x;
    return 0;
}

const char *json_type_name(JsonType t) {
    static const char *const names[] = {"null", "a boolean", "a number", "a string", "an array",
                                        "an object"};
    return names[t];
}
