/*
 * tokenizer/chat.h - chat templates: a conversation turned into the text the tokenizer
 * encodes, as each model family was trained to read it. A template is chosen with
 * --chat-template NAME (llama.cpp's flag), else the name an imported .qrz file stores
 * (guessed at import from tokenizer_config.json), else llama2.
 *
 *   llama2  (Llama-2-chat, Meta's reference code and llama2.c):
 *     "[INST] <<SYS>>\n{system}\n<</SYS>>\n\n{user} [/INST]"  the first turn, with a system prompt
 *     "[INST] {user} [/INST]"                                 every other turn (after BOS again)
 *   zephyr  (Zephyr, TinyLlama-1.1B-Chat):
 *     "<|system|>\n{system}</s>\n<|user|>\n{user}</s>\n<|assistant|>\n"
 *     a later turn starts with "</s>\n", closing the answer the model ended with EOS
 *   chatml  (ChatML):
 *     "<|im_start|>system\n{system}<|im_end|>\n<|im_start|>user\n{user}<|im_end|>\n<|im_start|>assistant\n"
 *     a later turn starts with "<|im_end|>\n"
 * (without a system prompt, its part is left out). "</s>" in a rendered turn stands for the
 * EOS token: chat_encode puts the id there rather than encoding the five characters.
 */
#ifndef TOKENIZER_CHAT_H
#define TOKENIZER_CHAT_H

#include <stddef.h>

#include "tokenizer/tokenizer.h"

typedef enum { CHAT_LLAMA2, CHAT_ZEPHYR, CHAT_CHATML, N_CHAT_TEMPLATES } ChatTemplate;

/* The template of a name ("llama2", "zephyr", "chatml"); -1 if unknown. */
int chat_template_parse(const char *name, ChatTemplate *t);
const char *chat_template_name(ChatTemplate t);

/* One user turn (first_turn: the conversation's first, which carries the system prompt).
 * Returns a malloc'd string, or NULL when out of memory. */
char *chat_render_turn(ChatTemplate t, const char *system, const char *user, int first_turn);

/* Encodes a rendered turn: BOS first in Llama-2's template and in every template's first
 * turn, "</s>" as the id eos. Returns the number of ids in the malloc'd *ids, or -1 with
 * err set. */
int chat_encode(ChatTemplate t, const Tokenizer *tok, const char *text, int first_turn, int eos, int **ids,
                char *err, size_t errlen);

/* The end of an answer that the tokenizer may spell as text: ChatML's "<|im_end|>", which a
 * sentencepiece vocabulary without it as a token writes in pieces ("<", "|", "im", ...).
 * A ChatStop watches the pieces of one answer: it shows what may be shown and holds back a
 * tail that may begin the stop text, each byte with the position of its token, until the
 * next piece tells. */
enum { CHAT_STOP_HELD = 16 };
typedef struct {
    const char *stop; /* NULL: the template's answers end with EOS alone */
    char held[CHAT_STOP_HELD];
    int held_pos[CHAT_STOP_HELD], n_held;
} ChatStop;

/* Starts watching a new answer in template t. */
void chat_stop_start(ChatStop *s, ChatTemplate t);

/* The piece of the token at position pos, n bytes: passes what may be shown to show().
 * Returns -1 while the answer goes on; when the stop text is complete, the position of the
 * token it began in (it is not shown; the next turn starts with it again, so the
 * conversation goes on from there). piece NULL: the answer ended otherwise (EOS, the
 * context), and what was held back is shown. */
int chat_stop_feed(ChatStop *s, const char *piece, size_t n, int pos, void (*show)(const char *, size_t));

#endif
