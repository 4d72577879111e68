/*
 * tokenizer/unicode.c - Unicode classes and UTF-8 (tokenizer/unicode.h).
 */
#include "tokenizer/unicode.h"

#include <string.h>

int unicode_class(uint32_t cp) {
    int lo = 0, hi = unicode_n_ranges - 1;
    while (lo <= hi) { /* binary search over the sorted ranges */
        const int mid = (lo + hi) / 2;
        if (cp < unicode_ranges[mid].first) hi = mid - 1;
        else if (cp > unicode_ranges[mid].last) lo = mid + 1;
        else return unicode_ranges[mid].flags;
    }
    return 0;
}

int utf8_decode(const unsigned char *s, size_t n, uint32_t *cp) {
    const unsigned char b = s[0];
    int len;
    uint32_t c, min;
    if (b < 0x80) return *cp = b, 1;
    if (b >= 0xC2 && b <= 0xDF) len = 2, c = b & 0x1F, min = 0x80;
    else if (b >= 0xE0 && b <= 0xEF) len = 3, c = b & 0x0F, min = 0x800;
    else if (b >= 0xF0 && b <= 0xF4) len = 4, c = b & 0x07, min = 0x10000;
    else return 0; /* a continuation byte, an overlong lead (C0, C1) or F5..FF */
    if ((size_t)len > n) return 0;
    for (int i = 1; i < len; i++) {
        if ((s[i] & 0xC0) != 0x80) return 0;
        c = c << 6 | (s[i] & 0x3F);
    }
    if (c < min || c > 0x10FFFF || (c >= 0xD800 && c <= 0xDFFF)) return 0;
    *cp = c;
    return len;
}

/* How many bytes from s[0] (of n available) are a valid start of a UTF-8 character: its
 * whole length when complete, fewer when it breaks off or is cut short. *len gets the
 * length it needs (0: s[0] cannot start one). */
static size_t valid_prefix(const unsigned char *s, size_t n, size_t *len) {
    const unsigned char c = s[0];
    *len = c < 0x80 ? 1 : c >= 0xC2 && c <= 0xDF ? 2 : c >= 0xE0 && c <= 0xEF ? 3 : c >= 0xF0 && c <= 0xF4 ? 4 : 0;
    if (*len <= 1) return *len;
    const unsigned char lo = c == 0xE0 ? 0xA0 : c == 0xF0 ? 0x90 : 0x80, hi = c == 0xED ? 0x9F : c == 0xF4 ? 0x8F : 0xBF;
    size_t k = 1;
    while (k < *len && k < n && (k == 1 ? s[k] >= lo && s[k] <= hi : (s[k] & 0xC0) == 0x80)) k++;
    return k;
}

size_t utf8_stream_push(Utf8Stream *s, const char *bytes, size_t n, char *out) {
    size_t written = 0, i = 0;
    for (;;) {
        while (s->n < 4 && i < n) s->pending[s->n++] = (unsigned char)bytes[i++]; /* look 4 bytes ahead */
        if (s->n == 0) break;
        size_t len;
        const size_t ok = valid_prefix(s->pending, (size_t)s->n, &len);
        if (ok < len && ok == (size_t)s->n) break; /* the input ran out inside a character: wait */
        const int whole = len > 0 && ok == len;    /* else ok bytes (at least 1) that are no character */
        const size_t used = whole ? len : ok ? ok : 1;
        if (whole) memcpy(out + written, s->pending, len), written += len;
        else memcpy(out + written, "\xEF\xBF\xBD", 3), written += 3; /* U+FFFD for the invalid run */
        memmove(s->pending, s->pending + used, (size_t)s->n - used);
        s->n -= (int)used;
    }
    return written;
}

size_t utf8_stream_flush(Utf8Stream *s, char *out) {
    const int had = s->n;
    s->n = 0;
    if (had) memcpy(out, "\xEF\xBF\xBD", 3);
    return had ? 3 : 0;
}
