/*
 * tokenizer/unicode.h - the Unicode classes the pre-tokenizers' patterns test (\p{L}, \p{N}
 * and \s of the regular expressions in tokenizer.json files), and UTF-8 decoding.
 *
 * The classes come from tables generated from the Unicode Character Database
 * (tokenizer/unicode_tables.py writes tokenizer/unicode_tables.c): a letter is a code point
 * of general category L*, a number one of N* (what Rust's char::is_numeric and the
 * regex class \p{N} mean), a space one with the White_Space property (\s).
 */
#ifndef TOKENIZER_UNICODE_H
#define TOKENIZER_UNICODE_H

#include <stddef.h>
#include <stdint.h>

enum { UC_LETTER = 1, UC_NUMBER = 2, UC_SPACE = 4 };

typedef struct {
    uint32_t first, last; /* a run of code points */
    uint8_t flags;        /* UC_* */
} UnicodeRange;

extern const UnicodeRange unicode_ranges[]; /* sorted, disjoint */
extern const int unicode_n_ranges;

/* The UC_* flags of code point cp (0 for everything else). */
int unicode_class(uint32_t cp);

/* Decodes the UTF-8 character at s[0..n) (n >= 1). Returns its length (1 to 4) and stores
 * the code point, or returns 0 when the bytes there are not well-formed UTF-8 (overlong,
 * surrogate, beyond U+10FFFF, truncated). */
int utf8_decode(const unsigned char *s, size_t n, uint32_t *cp);

/* UTF-8 that arrives in pieces, as a model's tokens print it: a byte-level token may hold
 * part of a character (Llama 3 writes most CJK characters and emoji in two or three tokens).
 * Whole characters pass through; the start of a character waits for the rest; bytes that
 * cannot be UTF-8 become U+FFFD, one for each maximal invalid run, as Hugging Face's decode
 * (Rust's from_utf8_lossy) writes them. */
typedef struct {
    unsigned char pending[4];
    int n;
} Utf8Stream;

/* Appends to out (room for 3 * (n + 4) bytes) what pending + bytes[0..n) completes; keeps
 * an unfinished character. Returns the bytes written. */
size_t utf8_stream_push(Utf8Stream *s, const char *bytes, size_t n, char *out);

/* The end of the text: an unfinished character becomes U+FFFD (3 bytes in out). Returns
 * the bytes written. */
size_t utf8_stream_flush(Utf8Stream *s, char *out);

#endif
