/*
 * tokenizer/tokenizer.c - loads either tokenizer format and encodes / decodes with it.
 */
#include "tokenizer/tokenizer.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tokenizer/bpe.h"
#include "tokenizer/merge.h"
#include "tokenizer/sp_shim.h"

/* A tokenizer file larger than this is certainly something else (a checkpoint, say). */
#define TOKENIZER_MAX_FILE (64u << 20)

struct Tokenizer {
    const char *format;
    int vocab_size, bos, eos;
    /* What each id prints: decoded[offset[id] .. offset[id + 1]). */
    char *decoded;
    size_t *offset;

    SpModel *sp;       /* sentencepiece models: everything else is unused */
    BpeTokenizer *bpe; /* tokenizer.json: likewise */
    int strip_first_space; /* tokenizer.json in sentencepiece style: as sp, the first space is not printed */

    /* tokenizer.bin: the pieces, their merge scores and a hash index over them. */
    char *pieces;         /* piece id starts at pieces + piece_off[id], NUL-terminated */
    size_t *piece_off;
    float *score;
    int *index;           /* open addressing: ids, -1 = empty; index_mask + 1 slots */
    size_t index_mask;
    int byte_id[256];     /* the <0xXX> piece of each byte, or the unknown id 0 */
    int max_piece_len;
};

/* ------------------------------------------------------------------ file reading */

/* Opens a tokenizer file for reading if it is a regular file. O_NONBLOCK: a FIFO would
 * otherwise block the open until a writer came, before fstat could refuse it. */
static FILE *open_regular(const char *path, char *err, size_t errlen) {
    const int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    struct stat st;
    FILE *f = NULL;
    if (fd < 0 || fstat(fd, &st) != 0)
        snprintf(err, errlen, "%s: cannot open tokenizer: %s", path, strerror(errno));
    else if (!S_ISREG(st.st_mode))
        snprintf(err, errlen, "%s: not a regular file", path);
    else if (!(f = fdopen(fd, "rb")))
        snprintf(err, errlen, "%s: cannot open tokenizer: %s", path, strerror(errno));
    if (!f && fd >= 0) close(fd);
    return f;
}

static unsigned char *read_whole_file(const char *path, size_t *size, char *err, size_t errlen) {
    FILE *f = open_regular(path, err, errlen);
    if (!f) return NULL;
    unsigned char *buf = NULL;
    size_t n = 0, cap = 0;
    for (;;) {
        if (n == cap) {
            if (cap >= TOKENIZER_MAX_FILE) {
                snprintf(err, errlen, "%s: larger than %u MiB: not a tokenizer", path,
                         TOKENIZER_MAX_FILE >> 20);
                goto fail;
            }
            cap = cap ? 2 * cap : 1 << 16;
            unsigned char *nb = realloc(buf, cap);
            if (!nb) {
                snprintf(err, errlen, "%s: out of memory reading the tokenizer", path);
                goto fail;
            }
            buf = nb;
        }
        size_t got = fread(buf + n, 1, cap - n, f);
        n += got;
        if (got == 0) break;
    }
    if (ferror(f)) {
        snprintf(err, errlen, "%s: read error: %s", path, strerror(errno));
        goto fail;
    }
    fclose(f);
    if (n == 0) {
        snprintf(err, errlen, "%s: tokenizer file is empty", path);
        free(buf);
        return NULL;
    }
    *size = n;
    return buf;
fail:
    free(buf);
    fclose(f);
    return NULL;
}

/* ------------------------------------------------------------------ decoded text table */

/* "<0x0A>" -> 0x0A. Returns -1 unless s is exactly a byte piece. */
static int byte_piece_value(const char *s) {
    static const char hex[] = "0123456789ABCDEF";
    if (strlen(s) != 6 || memcmp(s, "<0x", 3) != 0 || s[5] != '>') return -1;
    const char *hi = strchr(hex, s[3]), *lo = strchr(hex, s[4]);
    if (!hi || !lo || !s[3] || !s[4]) return -1;
    return (int)((hi - hex) * 16 + (lo - hex));
}

/* Appends what piece `s` prints: a byte piece becomes its byte, "▁" (U+2581, the
 * sentencepiece space) becomes ' ', anything else is copied. */
static size_t append_decoded(char *dst, const char *s) {
    int b = byte_piece_value(s);
    if (b >= 0) {
        dst[0] = (char)b;
        return 1;
    }
    size_t n = 0;
    while (*s) {
        if ((unsigned char)s[0] == 0xE2 && (unsigned char)s[1] == 0x96 &&
            (unsigned char)s[2] == 0x81) {
            dst[n++] = ' ';
            s += 3;
        } else {
            dst[n++] = *s++;
        }
    }
    return n;
}

/* Builds the decoded table. piece(id) gives the raw piece; control ids print nothing. */
static int build_decoded(Tokenizer *t, const char *(*piece)(const Tokenizer *, int),
                         int (*is_control)(const Tokenizer *, int)) {
    size_t total = 0;
    for (int id = 0; id < t->vocab_size; id++) total += strlen(piece(t, id));
    t->decoded = malloc(total + 1);
    t->offset = malloc(((size_t)t->vocab_size + 1) * sizeof *t->offset);
    if (!t->decoded || !t->offset) return -1;
    size_t at = 0;
    for (int id = 0; id < t->vocab_size; id++) {
        t->offset[id] = at;
        if (!is_control(t, id)) at += append_decoded(t->decoded + at, piece(t, id));
    }
    t->offset[t->vocab_size] = at;
    return 0;
}

static const char *sp_piece(const Tokenizer *t, int id) { return sp_model_piece(t->sp, id); }
static int sp_control(const Tokenizer *t, int id) { return sp_model_is_control(t->sp, id); }
static const char *bin_piece(const Tokenizer *t, int id) { return t->pieces + t->piece_off[id]; }
static int bin_control(const Tokenizer *t, int id) { return id == t->bos || id == t->eos; }

/* ------------------------------------------------------------------ tokenizer.bin */

static uint32_t hash_bytes(const char *s, size_t n) {
    uint32_t h = 2166136261u; /* FNV-1a */
    for (size_t i = 0; i < n; i++) h = (h ^ (unsigned char)s[i]) * 16777619u;
    return h;
}

/* The id of the piece equal to s[0..n), or -1. */
static int piece_lookup(const Tokenizer *t, const char *s, size_t n) {
    for (size_t i = hash_bytes(s, n) & t->index_mask;; i = (i + 1) & t->index_mask) {
        int id = t->index[i];
        if (id < 0) return -1;
        const char *p = bin_piece(t, id);
        if (strlen(p) == n && memcmp(p, s, n) == 0) return id;
    }
}

static int build_index(Tokenizer *t) {
    size_t slots = 1;
    while (slots < 2 * (size_t)t->vocab_size) slots <<= 1;
    t->index = malloc(slots * sizeof *t->index);
    if (!t->index) return -1;
    memset(t->index, 0xff, slots * sizeof *t->index);
    t->index_mask = slots - 1;
    for (int id = 0; id < t->vocab_size; id++) {
        const char *p = bin_piece(t, id);
        if (piece_lookup(t, p, strlen(p)) >= 0) continue; /* a duplicate: the first id wins */
        size_t i = hash_bytes(p, strlen(p)) & t->index_mask;
        while (t->index[i] >= 0) i = (i + 1) & t->index_mask;
        t->index[i] = id;
    }
    for (int b = 0; b < 256; b++) {
        char name[8];
        snprintf(name, sizeof name, "<0x%02X>", b);
        int id = piece_lookup(t, name, strlen(name));
        t->byte_id[b] = id >= 0 ? id : 0;
    }
    return 0;
}

/* Parses the tokenizer.bin layout strictly: every length in range, nothing left over. */
static int parse_bin(Tokenizer *t, const unsigned char *buf, size_t size, char *why,
                     size_t whylen) {
    int32_t max_len;
    if (size < 4) {
        snprintf(why, whylen, "shorter than its 4-byte header");
        return -1;
    }
    memcpy(&max_len, buf, 4);
    if (max_len <= 0 || max_len > 4096) {
        snprintf(why, whylen, "max piece length %d is not in 1..4096", (int)max_len);
        return -1;
    }
    /* First pass: validate and count. */
    size_t at = 4, count = 0, text = 0;
    while (at < size) {
        int32_t len;
        if (size - at < 8) {
            snprintf(why, whylen, "truncated in the entry of piece %zu", count);
            return -1;
        }
        memcpy(&len, buf + at + 4, 4);
        if (len < 0 || len > max_len) {
            snprintf(why, whylen, "piece %zu has length %d, outside 0..%d", count, (int)len,
                     (int)max_len);
            return -1;
        }
        if ((size_t)len > size - at - 8) {
            snprintf(why, whylen, "truncated in piece %zu (%d bytes, %zu left)", count, (int)len,
                     size - at - 8);
            return -1;
        }
        if (memchr(buf + at + 8, 0, (size_t)len)) {
            snprintf(why, whylen, "piece %zu contains a NUL byte", count);
            return -1;
        }
        at += 8 + (size_t)len;
        text += (size_t)len + 1;
        count++;
    }
    if (count < 3) {
        snprintf(why, whylen, "only %zu pieces (need <unk>, <s>, </s> at least)", count);
        return -1;
    }
    if (count > (1u << 21)) {
        snprintf(why, whylen, "%zu pieces is not a plausible vocabulary", count);
        return -1;
    }
    /* Second pass: copy. */
    t->vocab_size = (int)count;
    t->max_piece_len = max_len;
    t->pieces = malloc(text);
    t->piece_off = malloc(count * sizeof *t->piece_off);
    t->score = malloc(count * sizeof *t->score);
    if (!t->pieces || !t->piece_off || !t->score) {
        snprintf(why, whylen, "out of memory");
        return -1;
    }
    at = 4;
    size_t p = 0;
    for (size_t id = 0; id < count; id++) {
        int32_t len;
        memcpy(&t->score[id], buf + at, 4);
        memcpy(&len, buf + at + 4, 4);
        t->piece_off[id] = p;
        memcpy(t->pieces + p, buf + at + 8, (size_t)len);
        t->pieces[p + (size_t)len] = '\0';
        p += (size_t)len + 1;
        at += 8 + (size_t)len;
    }
    t->bos = 1;
    t->eos = 2;
    t->format = "llama2.c tokenizer.bin";
    if (build_index(t) != 0) {
        snprintf(why, whylen, "out of memory");
        return -1;
    }
    return 0;
}

/* The merge of two pieces for merge_symbols: the piece equal to their concatenation, scored
 * by its score in the file. */
static int bin_pair(const void *ctx, int left, int right, float *score) {
    const Tokenizer *t = ctx;
    const char *a = bin_piece(t, left), *b = bin_piece(t, right);
    const size_t la = strlen(a), lb = strlen(b);
    if (la + lb > (size_t)t->max_piece_len) return -1; /* no piece is that long */
    char buf[2 * 4096 + 1];                             /* max_piece_len <= 4096 (parse_bin) */
    memcpy(buf, a, la);
    memcpy(buf + la, b, lb);
    const int merged = piece_lookup(t, buf, la + lb);
    if (merged >= 0) *score = t->score[merged];
    return merged;
}

static int encode_bin(const Tokenizer *t, const char *text, int **ids_out, char *err,
                      size_t errlen) {
    size_t len = strlen(text);
    if (len > (size_t)(INT32_MAX / 4)) {
        snprintf(err, errlen, "text of %zu bytes is too long to encode", len);
        return -1;
    }
    /* Upper bound: BOS + dummy prefix + one token per byte. */
    int *ids = malloc((len + 2) * sizeof *ids);
    if (!ids) {
        snprintf(err, errlen, "out of memory encoding %zu bytes", len);
        return -1;
    }
    int n = 0;
    ids[n++] = t->bos;
    if (len > 0) {
        int space = piece_lookup(t, " ", 1);
        ids[n++] = space >= 0 ? space : t->byte_id[' '];
    }
    /* One symbol per UTF-8 character that is a piece, else one per byte. */
    for (size_t i = 0; i < len;) {
        size_t cl = 1;
        while (cl < 4 && i + cl < len && ((unsigned char)text[i + cl] & 0xC0) == 0x80) cl++;
        int id = piece_lookup(t, text + i, cl);
        if (id >= 0) {
            ids[n++] = id;
        } else {
            for (size_t k = 0; k < cl; k++) ids[n++] = t->byte_id[(unsigned char)text[i + k]];
        }
        i += cl;
    }
    const int merged = merge_symbols(ids + 1, n - 1, bin_pair, t);
    if (merged < 0) {
        snprintf(err, errlen, "out of memory encoding %zu bytes", len);
        free(ids);
        return -1;
    }
    *ids_out = ids;
    return 1 + merged;
}

/* ------------------------------------------------------------------ public API */

/* A tokenizer.json (tokenizer/bpe.h); consumes t. */
static Tokenizer *parse_json(Tokenizer *t, const char *text, size_t size, const char *name, char *err, size_t errlen) {
    char why[300];
    if (!(t->bpe = bpe_parse(text, size, why, sizeof why))) {
        snprintf(err, errlen, "%s: tokenizer.json: %s", name, why);
        tokenizer_free(t);
        return NULL;
    }
    t->vocab_size = bpe_vocab_size(t->bpe);
    t->bos = bpe_bos(t->bpe);
    t->eos = -1; /* the model's config says which tokens end a text */
    t->strip_first_space = !bpe_is_byte_level(t->bpe);
    t->format = bpe_is_byte_level(t->bpe) ? "tokenizer.json (byte-level BPE)" : "tokenizer.json (BPE)";
    return t;
}

Tokenizer *tokenizer_parse(const void *bytes, size_t size, const char *name, char *err, size_t errlen) {
    Tokenizer *t = calloc(1, sizeof *t);
    if (!t) {
        snprintf(err, errlen, "%s: out of memory", name);
        return NULL;
    }
    const char *text = bytes;
    size_t lead = 0;
    while (lead < size && (text[lead] == ' ' || text[lead] == '\n' || text[lead] == '\r' || text[lead] == '\t')) lead++;
    if (lead < size && text[lead] == '{') /* JSON: a Hugging Face tokenizer.json */
        return parse_json(t, text, size, name, err, errlen);
    char why_bin[200], why_sp[300];
    int ok = parse_bin(t, bytes, size, why_bin, sizeof why_bin) == 0;
    if (!ok) {
        /* Not a tokenizer.bin: release what the attempt allocated, try sentencepiece. */
        free(t->pieces), free(t->piece_off), free(t->score), free(t->index);
        memset(t, 0, sizeof *t);
        t->sp = sp_model_parse(bytes, size, why_sp, sizeof why_sp);
        if (t->sp) {
            t->vocab_size = sp_model_vocab_size(t->sp);
            t->bos = sp_model_bos_id(t->sp);
            t->eos = sp_model_eos_id(t->sp);
            t->format = "sentencepiece";
            ok = t->vocab_size > 0 && t->bos >= 0;
            if (!ok) snprintf(why_sp, sizeof why_sp, "the model defines no BOS piece");
        }
    }
    if (!ok) {
        snprintf(err, errlen,
                 "%s: not a tokenizer: as a sentencepiece model: %s; as a llama2.c "
                 "tokenizer.bin: %s",
                 name, why_sp, why_bin);
        tokenizer_free(t);
        return NULL;
    }
    int built = t->sp ? build_decoded(t, sp_piece, sp_control)
                      : build_decoded(t, bin_piece, bin_control);
    if (built != 0) {
        snprintf(err, errlen, "%s: out of memory", name);
        tokenizer_free(t);
        return NULL;
    }
    return t;
}

Tokenizer *tokenizer_open(const char *path, char *err, size_t errlen) {
    size_t size;
    unsigned char *buf = read_whole_file(path, &size, err, errlen);
    if (!buf) return NULL;
    Tokenizer *t = tokenizer_parse(buf, size, path, err, errlen);
    free(buf);
    return t;
}

void tokenizer_free(Tokenizer *t) {
    if (!t) return;
    sp_model_free(t->sp);
    bpe_free(t->bpe);
    free(t->decoded), free(t->offset);
    free(t->pieces), free(t->piece_off), free(t->score), free(t->index);
    free(t);
}

int tokenizer_vocab_size(const Tokenizer *t) { return t->vocab_size; }
int tokenizer_bos(const Tokenizer *t) { return t->bos; }
int tokenizer_eos(const Tokenizer *t) { return t->eos; }
const char *tokenizer_format(const Tokenizer *t) { return t->format; }

int tokenizer_encode(const Tokenizer *t, const char *text, int **ids, char *err, size_t errlen) {
    if (t->bpe) {
        int *body;
        const int n = bpe_encode(t->bpe, text, strlen(text), 1, NULL, &body, err, errlen);
        if (n < 0 || t->bos < 0) return *ids = n < 0 ? NULL : body, n;
        *ids = realloc(body, ((size_t)n + 1) * sizeof **ids);
        if (!*ids) {
            snprintf(err, errlen, "out of memory for %d token ids", n + 1);
            free(body);
            return -1;
        }
        memmove(*ids + 1, *ids, (size_t)n * sizeof **ids);
        (*ids)[0] = t->bos;
        return n + 1;
    }
    if (!t->sp) return encode_bin(t, text, ids, err, errlen);
    int *body;
    int n = sp_model_encode(t->sp, text, &body, err, errlen);
    if (n < 0) return -1;
    *ids = malloc(((size_t)n + 1) * sizeof **ids);
    if (!*ids) {
        snprintf(err, errlen, "out of memory for %d token ids", n + 1);
        free(body);
        return -1;
    }
    (*ids)[0] = t->bos;
    memcpy(*ids + 1, body, (size_t)n * sizeof *body);
    free(body);
    return n + 1;
}

int tokenizer_encode_text(const Tokenizer *t, const char *text, int **ids, char *err, size_t errlen) {
    if (t->bpe) return bpe_encode(t->bpe, text, strlen(text), 0, NULL, ids, err, errlen);
    const int n = tokenizer_encode(t, text, ids, err, errlen);
    if (n > 0) memmove(*ids, *ids + 1, (size_t)(n - 1) * sizeof **ids);
    return n < 0 ? n : n - 1;
}

int tokenizer_encode_marked(const Tokenizer *t, const char *text, const unsigned char *plain, int **ids, char *err,
                            size_t errlen) {
    if (t->bpe) return bpe_encode(t->bpe, text, strlen(text), 1, plain, ids, err, errlen);
    return tokenizer_encode_text(t, text, ids, err, errlen);
}

int tokenizer_parses_special(const Tokenizer *t) { return t->bpe != NULL; }

int tokenizer_special(const Tokenizer *t, const char *text) { return t->bpe ? bpe_added_token(t->bpe, text) : -1; }

const char *tokenizer_decode(const Tokenizer *t, int prev, int id, size_t *len) {
    if (t->bpe) {
        const char *s = bpe_decode(t->bpe, id, len);
        if (t->strip_first_space && prev == t->bos && *len > 0 && s[0] == ' ') s++, --*len;
        return s;
    }
    const char *s = t->decoded + t->offset[id];
    size_t n = t->offset[id + 1] - t->offset[id];
    if (prev == t->bos && n > 0 && s[0] == ' ') s++, n--;
    *len = n;
    return s;
}
