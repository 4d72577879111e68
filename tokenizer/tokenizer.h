/*
 * tokenizer/tokenizer.h - text to token ids and back.
 *
 * Three file formats, told apart by their content (not their name):
 *   - a sentencepiece model (.model, a protobuf): encoded by libsentencepiece itself;
 *   - a Hugging Face tokenizer.json of model type BPE (Llama 3, SmolLM2, TinyLlama,
 *     Mistral): read and encoded by tokenizer/bpe.c. Its BOS is the token its
 *     post-processor puts first, or none (then encodings do not start with BOS);
 *   - llama2.c's tokenizer.bin: int32 max_piece_len, then for each id in order
 *     { float32 score; int32 len; char piece[len]; } up to the end of the file.
 *     Encoded with llama2.c's rule: BOS, a dummy-prefix space, one piece per UTF-8
 *     character (bytes <0xXX> when the character is not a piece), then repeatedly merge
 *     the adjacent pair whose concatenation is the highest-scoring piece (leftmost on ties).
 *     BOS is id 1 and EOS id 2, as in llama2.c.
 *
 * Decoding is piece by piece, for streaming: each id maps to the bytes it stands for
 * ("▁" becomes a space, <0x0A> becomes a newline byte, control pieces become nothing), and
 * the leading space of the first piece after BOS is dropped, as sentencepiece does.
 */
#ifndef TOKENIZER_TOKENIZER_H
#define TOKENIZER_TOKENIZER_H

#include <stddef.h>

typedef struct Tokenizer Tokenizer;

/* Loads a tokenizer file of either format. NULL with a message naming the file on error. */
Tokenizer *tokenizer_open(const char *path, char *err, size_t errlen);
void tokenizer_free(Tokenizer *t);

/* The same from the bytes of a tokenizer file (a .qrz file may hold them); name says where
 * they come from in messages. */
Tokenizer *tokenizer_parse(const void *bytes, size_t size, const char *name, char *err, size_t errlen);

int tokenizer_vocab_size(const Tokenizer *t);
int tokenizer_bos(const Tokenizer *t); /* -1 when texts start without one (a tokenizer.json may say so) */
int tokenizer_eos(const Tokenizer *t); /* -1 for tokenizer.json: the model's config.json says */
const char *tokenizer_format(const Tokenizer *t); /* "sentencepiece", "llama2.c tokenizer.bin", "tokenizer.json ..." */

/* The tokenizer of a model with vocab_size pieces (tokenizer/find.c): the file at `path`
 * if not NULL, else the first of tok<VOCAB>.model, tok<VOCAB>.bin, tokenizer.model,
 * tokenizer.bin and tokenizer.json in model_path's directory whose vocabulary matches, as llama2.c's
 * tok512.bin sits beside stories260K.bin. The path used goes to chosen. NULL with err set
 * when the vocabulary does not match or nothing beside the model fits (err says what was
 * tried). */
Tokenizer *tokenizer_find(const char *path, const char *model_path, int vocab_size, char *chosen,
                          size_t chosenlen, char *err, size_t errlen);

/* Encodes UTF-8 text into a malloc'd array *ids that starts with BOS, if the tokenizer has
 * one (the caller frees it). Special tokens written in the text (<|eot_id|>) are their ids,
 * as Hugging Face's encode and llama.cpp's llama-tokenize make them. Returns the number of
 * ids, or -1 with err set. */
int tokenizer_encode(const Tokenizer *t, const char *text, int **ids, char *err, size_t errlen);

/* The same without BOS, and with special tokens' text encoded as plain text: for what a
 * user types, which must never produce a control token. */
int tokenizer_encode_text(const Tokenizer *t, const char *text, int **ids, char *err, size_t errlen);

/* For a chat template's rendered text: without BOS, special tokens matched only outside the
 * bytes marked plain (plain[i] = 1: the user's text). Other formats encode it as
 * tokenizer_encode_text does. */
int tokenizer_encode_marked(const Tokenizer *t, const char *text, const unsigned char *plain, int **ids, char *err,
                            size_t errlen);

/* 1 when special tokens written in a text are their ids (tokenizer.json); 0 for the other
 * formats, which have none in text. */
int tokenizer_parses_special(const Tokenizer *t);

/* The id of a tokenizer.json added token ("<|im_end|>"), or -1 (always for the other formats). */
int tokenizer_special(const Tokenizer *t, const char *text);

/* The bytes token `id` adds to the text when it follows token `prev` (not NUL-terminated:
 * a byte piece may be a NUL byte). id must be in 0..vocab_size-1. */
const char *tokenizer_decode(const Tokenizer *t, int prev, int id, size_t *len);

#endif
