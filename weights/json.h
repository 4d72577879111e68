/*
 * weights/json.h - a small, strict JSON reader (RFC 8259) for the files of a Hugging Face
 * model directory: config.json, model.safetensors.index.json, and the header of every
 * .safetensors file.
 *
 * Why our own and not a vendored library: these files come from the internet and the
 * safetensors header is attacker-shaped input that sits in front of a memory map, so the
 * reader must be strict (reject what RFC 8259 rejects, plus duplicate keys, which would
 * make "which value wins" a guess), bounded (size and depth limits, no recursion), and
 * small enough to read in one sitting. It needs no allocation per value beyond two
 * arrays, and its whole interface is the six functions below.
 *
 * The document is parsed at once into a flat array of values; objects and arrays link
 * their children. Strings are decoded (escapes resolved, UTF-8 checked) into one buffer
 * and NUL-terminated; numbers keep their literal text and are converted on request, so
 * that a 64-bit byte offset is read exactly, never through a double.
 *
 * Deliberate limits: the size and the number of values the caller accepts (JsonLimits),
 * nesting up to JSON_MAX_DEPTH, and no "\u0000" in strings (names and keys here are C
 * strings; a NUL inside one would make two different keys look equal).
 */
#ifndef WEIGHTS_JSON_H
#define WEIGHTS_JSON_H

#include <stddef.h>
#include <stdint.h>

enum { JSON_MAX_DEPTH = 64 };

/* What a caller accepts of one document: its size, and how many values it may hold. They
 * bound what any input can cost: the parser's memory is the decoded strings (at most the
 * text's size) and sizeof(JsonValue) = 48 bytes per value. */
typedef struct {
    size_t max_bytes;
    int max_values;
} JsonLimits;

/* A model directory's JSON (config.json, model.safetensors.index.json,
 * tokenizer_config.json) and every safetensors header: 4 MiB and 262144 values, about
 * 16 MB of parser memory at most. The largest of these files in real models is tens of
 * KB (Llama 3's tokenizer_config.json: 51 KB; a safetensors header: about 100 bytes per
 * tensor), so the limit is far from anything real, and a 90 MB file costs nothing. */
#define JSON_MODEL_FILE_LIMITS ((JsonLimits){(size_t)4 << 20, 1 << 18})

typedef enum { JSON_NULL, JSON_BOOL, JSON_NUMBER, JSON_STRING, JSON_ARRAY, JSON_OBJECT } JsonType;

typedef struct {
    JsonType type;
    int boolean;         /* JSON_BOOL: 0 or 1 */
    const char *text;    /* JSON_STRING: decoded, NUL-terminated; JSON_NUMBER: the literal */
    size_t len;          /* its length in bytes */
    const char *key;     /* a member of an object: its decoded key; otherwise NULL */
    int n_children;      /* JSON_ARRAY, JSON_OBJECT: elements or members */
    int first_child;     /* index of the first, or -1 */
    int next;            /* index of the next sibling, or -1 */
} JsonValue;

typedef struct {
    JsonValue *values; /* values[0] is the root */
    int n_values;
    char *strings; /* the decoded strings */
} JsonDoc;

/* Parses len bytes of text (no NUL needed) within the limits. Returns 0, or -1 with "line
 * L, column C: what was wrong" (or what limit the text passes) in err and nothing to free. */
int json_parse(JsonDoc *doc, const char *text, size_t len, JsonLimits limits, char *err, size_t errlen);
void json_free(JsonDoc *doc);

/* The member `key` of an object (NULL if absent or if obj is not an object). */
const JsonValue *json_get(const JsonDoc *doc, const JsonValue *obj, const char *key);

/* Children of an array or object in document order: the first (NULL if none), then each
 * next one (NULL after the last). */
const JsonValue *json_first(const JsonDoc *doc, const JsonValue *v);
const JsonValue *json_next(const JsonDoc *doc, const JsonValue *v);

/* A number written as a non-negative integer (digits only: no sign, fraction or
 * exponent) that fits in 64 bits. Returns 0, or -1 if v is anything else. */
int json_u64(const JsonValue *v, uint64_t *out);

/* Any number, as the nearest double (finite). Returns 0, or -1 if v is not a number. */
int json_double(const JsonValue *v, double *out);

/* "null", "a boolean", "a number", "a string", "an array", "an object": for messages. */
const char *json_type_name(JsonType t);

#endif
