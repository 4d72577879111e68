/*
 * tokenizer/bpe.c - tokenizer.json BPE tokenizers (what is read and how: tokenizer/bpe.h).
 */
#include "tokenizer/bpe.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tokenizer/merge.h"
#include "tokenizer/unicode.h"
#include "weights/json.h"

/* The one Split pattern implemented (Llama 3's), as tokenizer.json writes it; GPT-2's is
 * ByteLevel's own, which its "use_regex" turns on. */
static const char LLAMA3_PATTERN[] = "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?"
                                     "[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

typedef enum { PRE_LLAMA3, PRE_GPT2, PRE_DIGITS, PRE_DIGITS_EACH } PreKind;
typedef enum { NORM_PREPEND, NORM_REPLACE } NormKind;

enum { MAX_STEPS = 8 };

typedef struct {
    NormKind kind;
    char *text, *with; /* Prepend text; Replace text by with */
} NormStep;

typedef struct {
    int id, special;
    size_t len;
    char *content;
} AddedToken;

struct BpeTokenizer {
    int vocab_size, bos, byte_level, ignore_merges, byte_fallback, unk, fuse_unk, prefix_space;
    NormStep norm[MAX_STEPS];
    int n_norm;
    PreKind pre[MAX_STEPS];
    int n_pre;
    /* The pieces of the model's vocabulary as the model sees them (raw bytes for
     * byte-level files), piece id = piece[off[id] .. off[id + 1]); index: a hash table of
     * ids by piece (-1 = empty). */
    char *piece;
    size_t *off;
    int *index;
    size_t index_mask;
    /* Merges: (left << 32 | right) + 1 -> rank and result; 0 = empty slot. */
    uint64_t *merge_key;
    int *merge_rank, *merge_to;
    size_t merge_mask;
    int byte_id[256]; /* byte-level: the piece of each byte; otherwise <0xXX>, or -1 */
    AddedToken *added;
    int n_added;
    int *added_of; /* for each id, its index in added, or -1 */
    uint8_t added_first[256]; /* 1 where some added token starts with that byte */
    /* What each id prints: printed[printed_off[id] .. printed_off[id + 1]). */
    char *printed;
    size_t *printed_off;
};

/* ------------------------------------------------------------------ GPT-2's byte map */

/* Bytes that GPT-2 writes as themselves: the printable ones of Latin-1. The other 68 are
 * written as U+0100 + their order among them. */
static int byte_is_printable(int b) { return (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || b >= 174; }

/* The byte that code point cp stands for in the byte-level alphabet, or -1. */
static int byte_of_char(uint32_t cp) {
    if (cp < 256) return byte_is_printable((int)cp) ? (int)cp : -1;
    if (cp >= 256 + 68) return -1;
    int k = (int)cp - 256;
    for (int b = 0; b < 256; b++)
        if (!byte_is_printable(b) && k-- == 0) return b;
    return -1;
}

/* Turns a byte-level piece ("Ġthe") into the bytes it stands for (" the") in out (at most
 * len bytes: each character is one byte). Returns the length, or -1 when a character is
 * outside the alphabet. */
static long piece_to_bytes(const char *s, size_t len, char *out) {
    long n = 0;
    for (size_t i = 0; i < len;) {
        uint32_t cp;
        const int l = utf8_decode((const unsigned char *)s + i, len - i, &cp);
        const int b = l ? byte_of_char(cp) : -1;
        if (b < 0) return -1;
        out[n++] = (char)b;
        i += (size_t)l;
    }
    return n;
}

/* ------------------------------------------------------------------ hash tables */

static uint64_t hash_bytes(const char *s, size_t n) {
    uint64_t h = 14695981039346656037u; /* FNV-1a */
    for (size_t i = 0; i < n; i++) h = (h ^ (unsigned char)s[i]) * 1099511628211u;
    return h;
}

static size_t table_slots(size_t n) {
    size_t slots = 1;
    while (slots < 2 * n) slots <<= 1;
    return slots;
}

static int piece_id(const BpeTokenizer *b, const char *s, size_t n) {
    for (size_t i = hash_bytes(s, n) & b->index_mask;; i = (i + 1) & b->index_mask) {
        const int id = b->index[i];
        if (id < 0) return -1;
        if (b->off[id + 1] - b->off[id] == n && memcmp(b->piece + b->off[id], s, n) == 0) return id;
    }
}

static size_t merge_slot(const BpeTokenizer *b, uint64_t key) {
    size_t i = (size_t)((key * 0x9E3779B97F4A7C15u) >> 20) & b->merge_mask;
    while (b->merge_key[i] && b->merge_key[i] != key) i = (i + 1) & b->merge_mask;
    return i;
}

static uint64_t merge_key(int left, int right) { return ((uint64_t)(uint32_t)left << 32 | (uint32_t)right) + 1; }

/* merge_symbols' pair function: lower ranks merge first, so the score is -rank. */
static int merge_pair(const void *ctx, int left, int right, float *score) {
    const BpeTokenizer *b = ctx;
    const size_t i = merge_slot(b, merge_key(left, right));
    if (!b->merge_key[i]) return -1;
    *score = -(float)b->merge_rank[i];
    return b->merge_to[i];
}

/* ------------------------------------------------------------------ reading the file */

typedef struct {
    const JsonDoc *doc;
    char *why;
    size_t whylen;
} Reader;

/* The reason, on one line: text quoted from the file may hold control characters. */
__attribute__((format(printf, 2, 3))) static int refuse(const Reader *r, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->why, r->whylen, fmt, ap);
    va_end(ap);
    for (char *c = r->why; *c; c++)
        if ((unsigned char)*c < 0x20) *c = '?';
    return -1;
}

static const JsonValue *member(const Reader *r, const JsonValue *obj, const char *key) {
    const JsonValue *v = obj && obj->type == JSON_OBJECT ? json_get(r->doc, obj, key) : NULL;
    return v && v->type != JSON_NULL ? v : NULL;
}

static const char *type_of(const Reader *r, const JsonValue *obj) {
    const JsonValue *t = member(r, obj, "type");
    return t && t->type == JSON_STRING ? t->text : "";
}

static int is_true(const Reader *r, const JsonValue *obj, const char *key) {
    const JsonValue *v = member(r, obj, key);
    return v && v->type == JSON_BOOL && v->boolean;
}

static int get_id(const JsonValue *v, int *id) {
    uint64_t x;
    if (!v || v->type != JSON_NUMBER || json_u64(v, &x) != 0 || x >= (1u << 21)) return -1;
    *id = (int)x;
    return 0;
}

/* One normalizer (or a Sequence of them). */
static int read_normalizer(const Reader *r, BpeTokenizer *b, const JsonValue *n) {
    const char *type = type_of(r, n);
    if (!strcmp(type, "Sequence")) {
        const JsonValue *list = member(r, n, "normalizers");
        for (const JsonValue *e = list ? json_first(r->doc, list) : NULL; e; e = json_next(r->doc, e))
            if (read_normalizer(r, b, e) != 0) return -1;
        return 0;
    }
    if (b->n_norm == MAX_STEPS) return refuse(r, "more than %d normalizers", MAX_STEPS);
    NormStep *s = &b->norm[b->n_norm];
    if (!strcmp(type, "Prepend")) {
        const JsonValue *p = member(r, n, "prepend");
        if (!p || p->type != JSON_STRING) return refuse(r, "normalizer Prepend without a \"prepend\" string");
        s->kind = NORM_PREPEND;
        s->text = strdup(p->text);
    } else if (!strcmp(type, "Replace")) {
        const JsonValue *pat = member(r, member(r, n, "pattern"), "String"), *with = member(r, n, "content");
        if (!pat || pat->type != JSON_STRING || !pat->len || !with || with->type != JSON_STRING)
            return refuse(r, "normalizer Replace other than of a string (a Regex pattern is not implemented)");
        s->kind = NORM_REPLACE;
        s->text = strdup(pat->text);
        s->with = strdup(with->text);
    } else {
        return refuse(r, "normalizer %.40s is not implemented (Prepend and Replace are)", type[0] ? type : "without a type");
    }
    b->n_norm++;
    return s->text && (s->kind != NORM_REPLACE || s->with) ? 0 : refuse(r, "out of memory");
}

static int read_pre_tokenizer(const Reader *r, BpeTokenizer *b, const JsonValue *p) {
    const char *type = type_of(r, p);
    if (!strcmp(type, "Sequence")) {
        const JsonValue *list = member(r, p, "pretokenizers");
        for (const JsonValue *e = list ? json_first(r->doc, list) : NULL; e; e = json_next(r->doc, e))
            if (read_pre_tokenizer(r, b, e) != 0) return -1;
        return 0;
    }
    if (b->n_pre == MAX_STEPS) return refuse(r, "more than %d pre-tokenizers", MAX_STEPS);
    if (!strcmp(type, "ByteLevel")) {
        b->byte_level = 1;
        b->prefix_space = is_true(r, p, "add_prefix_space");
        if (is_true(r, p, "use_regex")) b->pre[b->n_pre++] = PRE_GPT2;
        return 0;
    }
    if (!strcmp(type, "Digits")) {
        b->pre[b->n_pre++] = is_true(r, p, "individual_digits") ? PRE_DIGITS_EACH : PRE_DIGITS;
        return 0;
    }
    if (!strcmp(type, "Split")) {
        const JsonValue *re = member(r, member(r, p, "pattern"), "Regex"), *how = member(r, p, "behavior");
        if (!re || re->type != JSON_STRING || strcmp(re->text, LLAMA3_PATTERN) != 0)
            return refuse(r, "pre-tokenizer Split with pattern %.60s is not implemented (only Llama 3's is)",
                          re && re->type == JSON_STRING ? re->text : "(not a Regex)");
        if (!how || how->type != JSON_STRING || strcmp(how->text, "Isolated") != 0 || is_true(r, p, "invert"))
            return refuse(r, "pre-tokenizer Split other than behavior Isolated, not inverted, is not implemented");
        b->pre[b->n_pre++] = PRE_LLAMA3;
        return 0;
    }
    return refuse(r, "pre-tokenizer %.40s is not implemented (Split, ByteLevel and Digits are)",
                  type[0] ? type : "without a type");
}

/* The decoder must be the one the model's form implies, which is how ids print here:
 * ByteLevel for byte-level BPE; for sentencepiece style, the steps that write "▁" as a
 * space, bytes <0xXX> as bytes, and drop the first space (or Metaspace, which does all). */
static int read_decoder(const Reader *r, const BpeTokenizer *b, const JsonValue *d) {
    const char *type = type_of(r, d);
    if (!strcmp(type, "Sequence")) {
        const JsonValue *list = member(r, d, "decoders");
        for (const JsonValue *e = list ? json_first(r->doc, list) : NULL; e; e = json_next(r->doc, e))
            if (read_decoder(r, b, e) != 0) return -1;
        return 0;
    }
    static const char *const sentencepiece_steps[] = {"Replace", "ByteFallback", "Fuse", "Strip", "Metaspace"};
    int known = b->byte_level && !strcmp(type, "ByteLevel");
    for (int k = 0; k < 5 && !b->byte_level; k++) known |= !strcmp(type, sentencepiece_steps[k]);
    return known ? 0 : refuse(r, "decoder %.40s is not implemented for a %s tokenizer", type[0] ? type : "without a type",
                              b->byte_level ? "byte-level" : "sentencepiece-style");
}

/* A BOS that the post-processor puts before every text, if any. */
static int read_post_processor(const Reader *r, BpeTokenizer *b, const JsonValue *p) {
    const char *type = type_of(r, p);
    if (!strcmp(type, "Sequence")) {
        const JsonValue *list = member(r, p, "processors");
        for (const JsonValue *e = list ? json_first(r->doc, list) : NULL; e; e = json_next(r->doc, e))
            if (read_post_processor(r, b, e) != 0) return -1;
        return 0;
    }
    if (!strcmp(type, "ByteLevel")) return 0; /* offsets only */
    if (strcmp(type, "TemplateProcessing") != 0)
        return refuse(r, "post_processor %.40s is not implemented (TemplateProcessing and ByteLevel are)", type);
    const JsonValue *single = member(r, p, "single");
    const JsonValue *first = single && single->type == JSON_ARRAY ? json_first(r->doc, single) : NULL;
    const JsonValue *special = member(r, first, "SpecialToken");
    const JsonValue *second = special ? json_next(r->doc, first) : first;
    if (!second || !member(r, second, "Sequence") || json_next(r->doc, second))
        return refuse(r, "post_processor TemplateProcessing other than [special token] $A is not implemented");
    if (!special) return 0;
    const JsonValue *name = member(r, special, "id");
    const JsonValue *entry = name && name->type == JSON_STRING
                                 ? member(r, member(r, p, "special_tokens"), name->text) : NULL;
    const JsonValue *ids = member(r, entry, "ids");
    if (!ids || ids->type != JSON_ARRAY || ids->n_children != 1 || get_id(json_first(r->doc, ids), &b->bos) != 0)
        return refuse(r, "post_processor TemplateProcessing: the special token before the text has no single id");
    return 0;
}

/* Stores the pieces of model.vocab (converted to bytes for a byte-level model) and
 * indexes them. The vocabulary size is one past the largest id of vocab and added tokens. */
static int read_vocab(const Reader *r, BpeTokenizer *b, const JsonValue *vocab, const JsonValue *added) {
    int max_id = -1, id;
    size_t text = 0;
    for (const JsonValue *e = json_first(r->doc, vocab); e; e = json_next(r->doc, e)) {
        if (get_id(e, &id) != 0) return refuse(r, "model.vocab: \"%.40s\" has no valid id", e->key);
        if (id > max_id) max_id = id;
        text += strlen(e->key);
    }
    for (const JsonValue *e = added ? json_first(r->doc, added) : NULL; e; e = json_next(r->doc, e)) {
        if (get_id(member(r, e, "id"), &id) != 0) return refuse(r, "added_tokens: an entry has no valid id");
        if (id > max_id) max_id = id;
    }
    if (max_id < 0) return refuse(r, "model.vocab is empty");
    b->vocab_size = max_id + 1;
    b->piece = malloc(text + 1);
    b->off = calloc((size_t)b->vocab_size + 1, sizeof *b->off);
    char **key = calloc((size_t)b->vocab_size, sizeof *key); /* each id's key, to lay out in id order */
    const size_t slots = table_slots((size_t)b->vocab_size);
    b->index = malloc(slots * sizeof *b->index);
    if (!b->piece || !b->off || !key || !b->index) return free(key), refuse(r, "out of memory");
    memset(b->index, 0xff, slots * sizeof *b->index);
    b->index_mask = slots - 1;
    for (const JsonValue *e = json_first(r->doc, vocab); e; e = json_next(r->doc, e)) {
        get_id(e, &id);
        if (key[id]) {
            const int rc = refuse(r, "model.vocab: id %d is given to both \"%.40s\" and \"%.40s\"", id, key[id], e->key);
            return free(key), rc;
        }
        key[id] = (char *)e->key;
    }
    size_t at = 0;
    for (id = 0; id < b->vocab_size; id++) {
        b->off[id] = at;
        if (!key[id]) continue; /* an added token's id: no piece of the model */
        const size_t n = strlen(key[id]);
        const long len = b->byte_level ? piece_to_bytes(key[id], n, b->piece + at) : (long)n;
        if (len < 0) {
            const int rc = refuse(r, "model.vocab: \"%.40s\" is not written in the byte-level alphabet", key[id]);
            return free(key), rc;
        }
        if (!b->byte_level) memcpy(b->piece + at, key[id], n);
        if (piece_id(b, b->piece + at, (size_t)len) >= 0) {
            const int rc = refuse(r, "model.vocab: \"%.40s\" stands for the same text as another piece", key[id]);
            return free(key), rc;
        }
        size_t slot = hash_bytes(b->piece + at, (size_t)len) & b->index_mask;
        while (b->index[slot] >= 0) slot = (slot + 1) & b->index_mask;
        b->index[slot] = id;
        b->off[id + 1] = at += (size_t)len; /* set before the next lookup reads it */
    }
    b->off[b->vocab_size] = at;
    free(key);
    return 0;
}

/* The model's piece for a piece as the file writes it (byte-level: converted), or -1. */
static int file_piece_id(const BpeTokenizer *b, const char *s, size_t n, char *buf) {
    if (!b->byte_level) return piece_id(b, s, n);
    if (n > 2 * b->off[b->vocab_size] + 2) return -1; /* longer than buf: no piece is written so long */
    const long len = piece_to_bytes(s, n, buf);
    return len < 0 ? -1 : piece_id(b, buf, (size_t)len);
}

static int read_merges(const Reader *r, BpeTokenizer *b, const JsonValue *merges) {
    const size_t slots = table_slots((size_t)merges->n_children + 1);
    b->merge_key = calloc(slots, sizeof *b->merge_key);
    b->merge_rank = malloc(slots * sizeof *b->merge_rank);
    b->merge_to = malloc(slots * sizeof *b->merge_to);
    char *buf = malloc(2 * (b->off[b->vocab_size] + 1) + 8);
    if (!b->merge_key || !b->merge_rank || !b->merge_to || !buf) return free(buf), refuse(r, "out of memory");
    b->merge_mask = slots - 1;
    int rank = 0, rc = 0;
    for (const JsonValue *e = json_first(r->doc, merges); e && rc == 0; e = json_next(r->doc, e), rank++) {
        const char *left, *right;
        size_t left_len, right_len;
        if (e->type == JSON_STRING) { /* "a b" */
            const char *space = strchr(e->text, ' ');
            if (!space || strchr(space + 1, ' ')) {
                rc = refuse(r, "model.merges[%d] = \"%.40s\" is not two pieces separated by a space", rank, e->text);
                break;
            }
            left = e->text, left_len = (size_t)(space - e->text), right = space + 1, right_len = strlen(right);
        } else { /* ["a", "b"] */
            const JsonValue *a = e->type == JSON_ARRAY && e->n_children == 2 ? json_first(r->doc, e) : NULL;
            const JsonValue *c = a ? json_next(r->doc, a) : NULL;
            if (!a || a->type != JSON_STRING || c->type != JSON_STRING) {
                rc = refuse(r, "model.merges[%d] is neither \"a b\" nor [\"a\", \"b\"]", rank);
                break;
            }
            left = a->text, left_len = a->len, right = c->text, right_len = c->len;
        }
        const int l = file_piece_id(b, left, left_len, buf), rt = file_piece_id(b, right, right_len, buf);
        int to = -1;
        if (l >= 0 && rt >= 0) {
            const size_t la = b->off[l + 1] - b->off[l], lb = b->off[rt + 1] - b->off[rt];
            memcpy(buf, b->piece + b->off[l], la);
            memcpy(buf + la, b->piece + b->off[rt], lb);
            to = piece_id(b, buf, la + lb);
        }
        if (to < 0) {
            rc = refuse(r, "model.merges[%d]: \"%.*s\" + \"%.*s\" is not a merge of two pieces into a piece", rank,
                        (int)(left_len < 30 ? left_len : 30), left, (int)(right_len < 30 ? right_len : 30), right);
            break;
        }
        const size_t slot = merge_slot(b, merge_key(l, rt));
        b->merge_key[slot] = merge_key(l, rt); /* a repeated pair: the later rank counts, as in tokenizers */
        b->merge_rank[slot] = rank;
        b->merge_to[slot] = to;
    }
    free(buf);
    return rc;
}

static int read_added_tokens(const Reader *r, BpeTokenizer *b, const JsonValue *added) {
    if (!added) return 0;
    if (added->type != JSON_ARRAY) return refuse(r, "added_tokens is not a list");
    b->added = calloc((size_t)added->n_children + 1, sizeof *b->added);
    if (!b->added) return refuse(r, "out of memory");
    for (const JsonValue *e = json_first(r->doc, added); e; e = json_next(r->doc, e)) {
        const JsonValue *content = member(r, e, "content");
        AddedToken *a = &b->added[b->n_added];
        get_id(member(r, e, "id"), &a->id);
        if (!content || content->type != JSON_STRING || !content->len)
            return refuse(r, "added_tokens: id %d has no content", a->id);
        static const char *const unsupported[] = {"lstrip", "rstrip", "single_word"};
        for (int k = 0; k < 3; k++)
            if (is_true(r, e, unsupported[k]))
                return refuse(r, "added_tokens: %.40s has %s set, which is not implemented", content->text,
                              unsupported[k]);
        if (is_true(r, e, "normalized") && b->n_norm)
            return refuse(r, "added_tokens: %.40s is matched after normalization, which is not implemented",
                          content->text);
        a->special = is_true(r, e, "special");
        a->len = content->len;
        if (!(a->content = strdup(content->text))) return refuse(r, "out of memory");
        b->added_first[(unsigned char)a->content[0]] = 1;
        b->n_added++;
    }
    return 0;
}

/* Every id must be a piece or an added token. (A byte-level vocabulary may lack bytes:
 * SmolLM2's has no piece for 0x04, among others, which encoding then drops as tokenizers
 * does.) */
static int check_complete(const Reader *r, BpeTokenizer *b) {
    if (!(b->added_of = malloc((size_t)b->vocab_size * sizeof *b->added_of))) return refuse(r, "out of memory");
    memset(b->added_of, 0xff, (size_t)b->vocab_size * sizeof *b->added_of);
    for (int k = 0; k < b->n_added; k++) b->added_of[b->added[k].id] = k;
    for (int id = 0; id < b->vocab_size; id++)
        if (b->off[id + 1] == b->off[id] && b->added_of[id] < 0)
            return refuse(r, "id %d is neither in model.vocab nor in added_tokens", id);
    for (int byte = 0; byte < 256; byte++) {
        char name[8] = {(char)byte};
        if (!b->byte_level) snprintf(name, sizeof name, "<0x%02X>", byte);
        b->byte_id[byte] = piece_id(b, name, b->byte_level ? 1 : strlen(name));
    }
    return 0;
}

/* What each id prints. */
static int build_printed(BpeTokenizer *b) {
    size_t total = 0;
    for (int k = 0; k < b->n_added; k++) total += b->added[k].len;
    b->printed = malloc(b->off[b->vocab_size] + total + 1);
    b->printed_off = malloc(((size_t)b->vocab_size + 1) * sizeof *b->printed_off);
    if (!b->printed || !b->printed_off) return -1;
    size_t at = 0;
    for (int id = 0; id < b->vocab_size; id++) {
        b->printed_off[id] = at;
        const AddedToken *a = b->added_of[id] >= 0 ? &b->added[b->added_of[id]] : NULL;
        if (a) { /* an added token prints its text, or nothing if it is a control token */
            if (!a->special) memcpy(b->printed + at, a->content, a->len), at += a->len;
            continue;
        }
        const char *p = b->piece + b->off[id];
        const size_t n = b->off[id + 1] - b->off[id];
        unsigned hex;
        if (!b->byte_level && n == 6 && sscanf(p, "<0x%2X>", &hex) == 1 && p[5] == '>') {
            b->printed[at++] = (char)hex; /* a byte-fallback piece */
            continue;
        }
        for (size_t i = 0; i < n; i++) { /* "▁" (E2 96 81) is a space in sentencepiece style */
            if (!b->byte_level && i + 2 < n && !memcmp(p + i, "\xE2\x96\x81", 3)) b->printed[at++] = ' ', i += 2;
            else b->printed[at++] = p[i];
        }
    }
    b->printed_off[b->vocab_size] = at;
    return 0;
}

static int read_tokenizer(const Reader *r, BpeTokenizer *b, const JsonValue *root) {
    if (root->type != JSON_OBJECT) return refuse(r, "not a JSON object");
    const JsonValue *model = member(r, root, "model");
    if (!model) return refuse(r, "no \"model\"");
    const char *type = type_of(r, model);
    if (strcmp(type, "BPE") != 0)
        return refuse(r, "model type %.40s is not implemented (BPE is)", type[0] ? type : "(none)");
    const char *const unset[] = {"dropout", "continuing_subword_prefix", "end_of_word_suffix"};
    for (int k = 0; k < 3; k++) {
        const JsonValue *v = member(r, model, unset[k]);
        if (v && !(v->type == JSON_STRING && !v->len))
            return refuse(r, "model.%s is set, which is not implemented", unset[k]);
    }
    b->ignore_merges = is_true(r, model, "ignore_merges");
    b->byte_fallback = is_true(r, model, "byte_fallback");
    b->fuse_unk = is_true(r, model, "fuse_unk");
    b->bos = b->unk = -1;
    const JsonValue *norm = member(r, root, "normalizer"), *pre = member(r, root, "pre_tokenizer");
    const JsonValue *post = member(r, root, "post_processor"), *added = member(r, root, "added_tokens");
    const JsonValue *decoder = member(r, root, "decoder");
    if ((norm && read_normalizer(r, b, norm) != 0) || (pre && read_pre_tokenizer(r, b, pre) != 0) ||
        (post && read_post_processor(r, b, post) != 0) || (decoder && read_decoder(r, b, decoder) != 0))
        return -1;
    const JsonValue *vocab = member(r, model, "vocab"), *merges = member(r, model, "merges");
    if (!vocab || vocab->type != JSON_OBJECT) return refuse(r, "model.vocab is not an object");
    if (!merges || merges->type != JSON_ARRAY) return refuse(r, "model.merges is not a list");
    if (read_vocab(r, b, vocab, added) != 0 || read_merges(r, b, merges) != 0 || read_added_tokens(r, b, added) != 0 ||
        check_complete(r, b) != 0)
        return -1;
    const JsonValue *unk = member(r, model, "unk_token");
    if (unk && (unk->type != JSON_STRING || (b->unk = piece_id(b, unk->text, unk->len)) < 0))
        return refuse(r, "model.unk_token is not a piece of the vocabulary");
    if (b->bos >= b->vocab_size) return refuse(r, "the post-processor's BOS id %d is not in the vocabulary", b->bos);
    return build_printed(b) == 0 ? 0 : refuse(r, "out of memory");
}

/* What a tokenizer.json may be: 64 MiB (what the tokenizer reader accepts of any file) and
 * 4M values, at most 200 MB of parser memory. Llama 3's, among the largest, is 9 MB of
 * 128256 pieces and 280147 merges: about 410k values. */
#define JSON_TOKENIZER_LIMITS ((JsonLimits){(size_t)64 << 20, 1 << 22})

BpeTokenizer *bpe_parse(const char *json, size_t len, char *why, size_t whylen) {
    JsonDoc doc;
    char what[256];
    if (json_parse(&doc, json, len, JSON_TOKENIZER_LIMITS, what, sizeof what) != 0) {
        snprintf(why, whylen, "not valid JSON: %s", what);
        return NULL;
    }
    BpeTokenizer *b = calloc(1, sizeof *b);
    const Reader r = {&doc, why, whylen};
    const int rc = b ? read_tokenizer(&r, b, &doc.values[0]) : refuse(&r, "out of memory");
    json_free(&doc);
    if (rc != 0) {
        bpe_free(b);
        return NULL;
    }
    return b;
}

void bpe_free(BpeTokenizer *b) {
    if (!b) return;
    for (int k = 0; k < b->n_norm; k++) free(b->norm[k].text), free(b->norm[k].with);
    for (int k = 0; k < b->n_added; k++) free(b->added[k].content);
    free(b->added), free(b->added_of);
    free(b->piece), free(b->off), free(b->index);
    free(b->merge_key), free(b->merge_rank), free(b->merge_to);
    free(b->printed), free(b->printed_off);
    free(b);
}

int bpe_vocab_size(const BpeTokenizer *b) { return b->vocab_size; }
int bpe_bos(const BpeTokenizer *b) { return b->bos; }
int bpe_is_byte_level(const BpeTokenizer *b) { return b->byte_level; }

int bpe_added_token(const BpeTokenizer *b, const char *content) {
    for (int k = 0; k < b->n_added; k++)
        if (!strcmp(b->added[k].content, content)) return b->added[k].id;
    return -1;
}

const char *bpe_decode(const BpeTokenizer *b, int id, size_t *len) {
    *len = b->printed_off[id + 1] - b->printed_off[id];
    return b->printed + b->printed_off[id];
}

/* ------------------------------------------------------------------ pre-tokenizers */

/* The code point at s[i] and its length in *len. The text was checked to be UTF-8 (and
 * normalizers replace UTF-8 by UTF-8); a byte that is not would count as one U+FFFD. */
static uint32_t char_at(const char *s, size_t i, size_t end, int *len) {
    uint32_t cp = 0xFFFD;
    *len = utf8_decode((const unsigned char *)s + i, end - i, &cp);
    if (!*len) *len = 1;
    return cp;
}

static int class_at(const char *s, size_t i, size_t end) {
    int len;
    return i < end ? unicode_class(char_at(s, i, end, &len)) : -1;
}

/* "Other": neither space, letter nor number ([^\s\p{L}\p{N}]). */
static int is_other(int cls) { return cls == 0; }

/* The end of the run of characters from i whose class has `want` (or, with want 0, is other). */
static size_t run_end(const char *s, size_t i, size_t end, int want) {
    while (i < end) {
        int len;
        const int cls = unicode_class(char_at(s, i, end, &len));
        if (want ? !(cls & want) : !is_other(cls)) break;
        i += (size_t)len;
    }
    return i;
}

/* 's 't 're 've 'm 'll 'd after the apostrophe at i (either case when fold): the end, or 0. */
static size_t contraction(const char *s, size_t i, size_t end, int fold) {
    char c[2] = {0, 0};
    for (int k = 0; k < 2 && i + 1 + (size_t)k < end; k++) {
        const char x = s[i + 1 + k];
        c[k] = fold && x >= 'A' && x <= 'Z' ? (char)(x - 'A' + 'a') : x;
    }
    if (c[0] == 's' || c[0] == 't' || c[0] == 'm' || c[0] == 'd') return i + 2;
    if ((c[0] == 'r' && c[1] == 'e') || (c[0] == 'v' && c[1] == 'e') || (c[0] == 'l' && c[1] == 'l')) return i + 3;
    return 0;
}

/* Whitespace from i (a space character): \s*[\r\n]+ when fold_newlines (Llama 3), then
 * \s+(?!\S), then \s+. The end of the match. */
static size_t match_space(const char *s, size_t i, size_t end, int newlines) {
    const size_t run = run_end(s, i, end, UC_SPACE);
    if (newlines) { /* greedy \s* gives back up to the last line break of the run */
        for (size_t k = run; k > i; k--)
            if (s[k - 1] == '\r' || s[k - 1] == '\n') return k;
    }
    if (run == end) return run; /* \s+(?!\S) takes it all at the end of the text */
    size_t last = run - 1;      /* else it leaves the last space character to the word after */
    while (((unsigned char)s[last] & 0xC0) == 0x80) last--;
    return last > i ? last : run; /* one space character alone: \s+ */
}

/* Llama 3's pattern at i: the end of the match. */
static size_t match_llama3(const char *s, size_t i, size_t end) {
    int len;
    const uint32_t c = char_at(s, i, end, &len);
    const int cls = unicode_class(c);
    size_t k;
    if (c == '\'' && (k = contraction(s, i, end, 1))) return k;                 /* (?i:'s|'t|...) */
    if (cls & UC_LETTER) return run_end(s, i, end, UC_LETTER);                  /* \p{L}+ */
    if (!(cls & (UC_LETTER | UC_NUMBER)) && c != '\r' && c != '\n' && class_at(s, i + (size_t)len, end) > 0 &&
        (class_at(s, i + (size_t)len, end) & UC_LETTER))
        return run_end(s, i + (size_t)len, end, UC_LETTER);                     /* [^\r\n\p{L}\p{N}]\p{L}+ */
    if (cls & UC_NUMBER) {                                                      /* \p{N}{1,3} */
        k = i;
        for (int n = 0; n < 3 && k < end && (class_at(s, k, end) & UC_NUMBER); n++) char_at(s, k, end, &len), k += (size_t)len;
        return k;
    }
    k = c == ' ' ? i + 1 : i;                                                   /* ' ?[^\s\p{L}\p{N}]+[\r\n]*' */
    if (k < end && is_other(class_at(s, k, end))) {
        k = run_end(s, k, end, 0);
        while (k < end && (s[k] == '\r' || s[k] == '\n')) k++;
        return k;
    }
    if (cls & UC_SPACE) return match_space(s, i, end, 1);
    return i + (size_t)len;
}

/* GPT-2's pattern at i: 's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+ */
static size_t match_gpt2(const char *s, size_t i, size_t end) {
    int len;
    const uint32_t c = char_at(s, i, end, &len);
    size_t k;
    if (c == '\'' && (k = contraction(s, i, end, 0))) return k;
    const size_t from = c == ' ' && i + 1 < end ? i + 1 : i; /* the optional space */
    const int cls = class_at(s, from, end);
    if (cls & UC_LETTER) return run_end(s, from, end, UC_LETTER);
    if (cls & UC_NUMBER) return run_end(s, from, end, UC_NUMBER);
    if (is_other(cls)) return run_end(s, from, end, 0);
    if (unicode_class(c) & UC_SPACE) return match_space(s, i, end, 0);
    return i + (size_t)len;
}

/* A list of byte ranges [start, end) of the normalized text: the words. */
typedef struct {
    size_t *at; /* at[2k], at[2k + 1]: word k */
    size_t n, cap;
} Words;

static int push_word(Words *w, size_t start, size_t end) {
    if (start == end) return 0;
    if (w->n == w->cap) {
        const size_t cap = w->cap ? 2 * w->cap : 64;
        size_t *grown = realloc(w->at, 2 * cap * sizeof *grown);
        if (!grown) return -1;
        w->at = grown, w->cap = cap;
    }
    w->at[2 * w->n] = start, w->at[2 * w->n + 1] = end;
    w->n++;
    return 0;
}

/* Splits every word of *w by one pre-tokenizer. */
static int pre_tokenize(PreKind kind, const char *s, Words *w) {
    Words out = {0};
    for (size_t k = 0; k < w->n; k++) {
        const size_t end = w->at[2 * k + 1];
        size_t i = w->at[2 * k];
        while (i < end) {
            size_t j;
            if (kind == PRE_LLAMA3) j = match_llama3(s, i, end);
            else if (kind == PRE_GPT2) j = match_gpt2(s, i, end);
            else { /* Digits: runs of numbers (or each alone) apart from the rest */
                int len;
                const int number = unicode_class(char_at(s, i, end, &len)) & UC_NUMBER;
                if (number && kind == PRE_DIGITS_EACH) j = i + (size_t)len;
                else
                    for (j = i; j < end && !(class_at(s, j, end) & UC_NUMBER) == !number; j += (size_t)len)
                        char_at(s, j, end, &len);
            }
            if (push_word(&out, i, j) != 0) return free(out.at), -1;
            i = j;
        }
    }
    free(w->at);
    *w = out;
    return 0;
}

/* ------------------------------------------------------------------ encoding */

typedef struct {
    int *ids;
    size_t n, cap;
} Ids;

static int push_ids(Ids *v, const int *ids, size_t n) {
    if (n == 0) return 0; /* a word of unknown characters only: nothing (and memcpy of NULL is UB) */
    if (v->n + n > v->cap) {
        size_t cap = v->cap ? v->cap : 256;
        while (cap < v->n + n) cap *= 2;
        int *grown = realloc(v->ids, cap * sizeof *grown);
        if (!grown) return -1;
        v->ids = grown, v->cap = cap;
    }
    memcpy(v->ids + v->n, ids, n * sizeof *ids);
    v->n += n;
    return 0;
}

/* One word: its symbols (bytes, or characters with byte fallback), then the merges. */
static int encode_word(const BpeTokenizer *b, const char *s, size_t n, Ids *out) {
    int whole;
    if (b->ignore_merges && (whole = piece_id(b, s, n)) >= 0) return push_ids(out, &whole, 1);
    int *sym = malloc(n * sizeof *sym);
    if (!sym) return -1;
    int k = 0, unk_before = 0;
    for (size_t i = 0; i < n;) {
        if (b->byte_level) { /* a byte without a piece is unknown: <unk> if there is one, else dropped */
            const int id = b->byte_id[(unsigned char)s[i++]];
            if (id >= 0 || b->unk >= 0) sym[k++] = id >= 0 ? id : b->unk;
            continue;
        }
        int len;
        char_at(s, i, n, &len);
        const int id = piece_id(b, s + i, (size_t)len);
        int bytes_known = b->byte_fallback;
        for (int j = 0; j < len && bytes_known; j++) bytes_known = b->byte_id[(unsigned char)s[i + (size_t)j]] >= 0;
        if (id >= 0) sym[k++] = id;
        else if (bytes_known)
            for (int j = 0; j < len; j++) sym[k++] = b->byte_id[(unsigned char)s[i + (size_t)j]];
        else if (b->unk >= 0 && !(b->fuse_unk && unk_before)) sym[k++] = b->unk; /* else dropped, as tokenizers does */
        unk_before = id < 0 && !bytes_known;
        i += (size_t)len;
    }
    const int merged = merge_symbols(sym, k, merge_pair, b);
    const int rc = merged < 0 ? -1 : push_ids(out, sym, (size_t)merged);
    free(sym);
    return rc;
}

/* Applies the normalizers to text[0..len): a malloc'd string of *out_len bytes. */
static char *normalize(const BpeTokenizer *b, const char *text, size_t len, size_t *out_len) {
    char *s = malloc(len + 1);
    if (!s) return NULL;
    memcpy(s, text, len);
    s[len] = '\0';
    for (int k = 0; k < b->n_norm && s; k++) {
        const NormStep *step = &b->norm[k];
        const size_t n = strlen(s), tl = strlen(step->text);
        if (step->kind == NORM_PREPEND) { /* only a text that is not empty */
            char *t = n ? malloc(tl + n + 1) : NULL;
            if (t) memcpy(t, step->text, tl), memcpy(t + tl, s, n + 1);
            if (n) free(s), s = t;
            continue;
        }
        size_t count = 0;
        for (const char *p = s; (p = strstr(p, step->text)); p += tl) count++;
        const size_t wl = strlen(step->with);
        char *t = malloc(n + count * (wl > tl ? wl - tl : 0) + 1), *o = t;
        for (const char *p = s, *q; t && p; p = q ? q + tl : NULL) {
            q = strstr(p, step->text);
            const size_t keep = q ? (size_t)(q - p) : strlen(p);
            memcpy(o, p, keep), o += keep;
            if (q) memcpy(o, step->with, wl), o += wl;
        }
        if (t) *o = '\0';
        free(s);
        s = t;
    }
    if (s) *out_len = strlen(s);
    return s;
}

/* A stretch of text between added tokens: normalized, split into words, each word BPE'd. */
static int encode_text(const BpeTokenizer *b, const char *text, size_t len, Ids *out) {
    size_t n;
    char *s = b->prefix_space && len && text[0] != ' ' ? malloc(len + 2) : NULL;
    if (s) { /* ByteLevel's add_prefix_space */
        s[0] = ' ', memcpy(s + 1, text, len), s[len + 1] = '\0';
        char *t = normalize(b, s, len + 1, &n);
        free(s);
        s = t;
    } else {
        s = normalize(b, text, len, &n);
    }
    Words w = {0};
    int rc = s ? push_word(&w, 0, n) : -1;
    for (int k = 0; k < b->n_pre && rc == 0; k++) rc = pre_tokenize(b->pre[k], s, &w);
    for (size_t k = 0; k < w.n && rc == 0; k++) rc = encode_word(b, s + w.at[2 * k], w.at[2 * k + 1] - w.at[2 * k], out);
    free(w.at);
    free(s);
    return rc;
}

/* The added token that starts at text[i], the longest if several do (-1 if none); a
 * special one only when parse_special and no byte of it is plain. */
static int added_at(const BpeTokenizer *b, const char *text, size_t i, size_t len, int parse_special,
                    const unsigned char *plain) {
    int best = -1;
    if (!b->added_first[(unsigned char)text[i]]) return -1;
    for (int k = 0; k < b->n_added; k++) {
        const AddedToken *a = &b->added[k];
        if (a->len > len - i || memcmp(text + i, a->content, a->len) != 0 || (best >= 0 && a->len <= b->added[best].len))
            continue;
        int allowed = !a->special || parse_special;
        for (size_t j = 0; allowed && plain && j < a->len; j++) allowed = !plain[i + j];
        if (allowed) best = k;
    }
    return best;
}

int bpe_encode(const BpeTokenizer *b, const char *text, size_t len, int parse_special, const unsigned char *plain,
               int **ids, char *err, size_t errlen) {
    for (size_t i = 0; i < len;) {
        uint32_t cp;
        const int l = utf8_decode((const unsigned char *)text + i, len - i, &cp);
        if (!l) {
            snprintf(err, errlen, "the text is not valid UTF-8 (byte %zu)", i);
            return -1;
        }
        i += (size_t)l;
    }
    Ids out = {0};
    size_t start = 0;
    int rc = 0;
    for (size_t i = 0; i <= len && rc == 0;) {
        const int k = i < len ? added_at(b, text, i, len, parse_special, plain) : -1;
        if (k < 0 && i < len) {
            i++;
            continue;
        }
        rc = encode_text(b, text + start, i - start, &out);
        if (k < 0) break; /* the end of the text */
        if (rc == 0) rc = push_ids(&out, &b->added[k].id, 1);
        i += b->added[k].len;
        start = i;
    }
    if (rc != 0) {
        free(out.ids);
        snprintf(err, errlen, "out of memory encoding %zu bytes", len);
        return -1;
    }
    *ids = out.ids ? out.ids : malloc(sizeof **ids);
    return (int)out.n;
}
