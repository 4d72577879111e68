/*
 * tokenizer/bpe.h - Hugging Face tokenizer.json files of model type BPE, read and run in C.
 *
 * Two families of such files are in use, and both are read:
 *   - byte-level BPE (GPT-2's scheme; Llama 3, SmolLM2): every byte of the text is a symbol
 *     of its own, written in the file as one of 256 printable characters (GPT-2's
 *     byte-to-unicode map: "Ġ" is the space byte); the text is first split by a
 *     pre-tokenizer pattern into words, and merges never cross a word;
 *   - sentencepiece-converted BPE (TinyLlama's and Mistral's tokenizer.json): the normalizer
 *     writes spaces as "▁" and prepends one, symbols are UTF-8 characters, and a character
 *     that is no piece becomes its bytes <0xXX> ("byte_fallback").
 *
 * Encoding a text, as the Hugging Face tokenizers library does:
 *   1. added_tokens (special tokens such as <|eot_id|>, <|im_start|>) are found first, the
 *      leftmost-longest match at each place, and become their ids; special ones only when
 *      the caller asks (a user's message must never produce a control token), other added
 *      tokens always;
 *   2. each stretch of text between them is normalized (Prepend, Replace: sentencepiece
 *      style) and split into words by the pre-tokenizers: Split with Llama 3's pattern,
 *      ByteLevel with GPT-2's pattern, Digits (SmolLM2 puts every digit apart), hand-written
 *      matchers over the Unicode classes of tokenizer/unicode.h rather than a regex engine;
 *   3. each word starts as its symbols, and the adjacent pair with the lowest merge rank is
 *      merged until none is left (the leftmost on equal ranks); with "ignore_merges", a
 *      word that is itself in the vocabulary is taken whole.
 * Anything else a file may say (another model type, normalizer, pre-tokenizer or decoder,
 * another Split pattern, added tokens that strip spaces) is refused with one line naming it:
 * never a silent wrong tokenization. The text must be valid UTF-8.
 *
 * BOS is the special token that the post_processor (TemplateProcessing) puts before a text,
 * or none (SmolLM2 adds nothing).
 */
#ifndef TOKENIZER_BPE_H
#define TOKENIZER_BPE_H

#include <stddef.h>

typedef struct BpeTokenizer BpeTokenizer;

/* Parses the text of a tokenizer.json. NULL with the reason in why (without a file name). */
BpeTokenizer *bpe_parse(const char *json, size_t len, char *why, size_t whylen);
void bpe_free(BpeTokenizer *b);

int bpe_vocab_size(const BpeTokenizer *b);
int bpe_bos(const BpeTokenizer *b);           /* -1 when the post-processor adds none */
int bpe_is_byte_level(const BpeTokenizer *b); /* 0: sentencepiece-converted */

/* The id of an added token by its text ("<|eot_id|>"), or -1. */
int bpe_added_token(const BpeTokenizer *b, const char *content);

/* What id prints, as bytes (not NUL-terminated): the bytes it stands for, "▁" written as a
 * space, nothing for a special added token. */
const char *bpe_decode(const BpeTokenizer *b, int id, size_t *len);

/* Encodes text[0..len) without BOS into *ids (malloc'd; the caller frees it), matching
 * special added tokens only when parse_special, and then not where plain (if not NULL) is 1
 * for a byte of the match: there the text is a user's. Returns the number of ids, or -1
 * with err set (text that is not UTF-8, out of memory). */
int bpe_encode(const BpeTokenizer *b, const char *text, size_t len, int parse_special, const unsigned char *plain,
               int **ids, char *err, size_t errlen);

#endif
