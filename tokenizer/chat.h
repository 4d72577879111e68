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
 *   smollm2 (SmolLM2-Instruct): ChatML, with the system prompt "You are a helpful AI assistant
 *     named SmolLM, trained by Hugging Face" when none is given
 *   llama3  (Llama 3.1 and 3.2 Instruct):
 *     "<|start_header_id|>system<|end_header_id|>\n\nCutting Knowledge Date: December 2023\n
 *      Today Date: {26 Jul 2024}\n\n{system}<|eot_id|><|start_header_id|>user<|end_header_id|>\n\n
 *      {user}<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n"
 *     (today's date; the system turn is there even without a system prompt; both prompts
 *     trimmed of white space); a later turn starts with "<|eot_id|>" and has no system turn
 * (otherwise, without a system prompt, its part is left out). These are what the Jinja
 * templates of the models' tokenizer_config.json render, to the character: tests/test_chat.c
 * compares them with texts that Hugging Face's Jinja renderer made.
 *
 * Encoding: with a tokenizer.json, the special tokens the template writes (<|eot_id|>,
 * <|im_start|>) are their ids, but never in the user's or system prompt's text. With a
 * sentencepiece tokenizer, "</s>" in a rendered turn stands for the EOS token: chat_encode
 * puts the id there rather than encoding the five characters.
 */
#ifndef TOKENIZER_CHAT_H
#define TOKENIZER_CHAT_H

#include <stddef.h>

#include "tokenizer/tokenizer.h"

typedef enum { CHAT_LLAMA2, CHAT_ZEPHYR, CHAT_CHATML, CHAT_LLAMA3, CHAT_SMOLLM2, N_CHAT_TEMPLATES } ChatTemplate;

/* The template of a name ("llama2", "zephyr", "chatml", "llama3", "smollm2"); -1 if unknown. */
int chat_template_parse(const char *name, ChatTemplate *t);
const char *chat_template_name(ChatTemplate t);

/* A rendered turn: its text, and for each byte whether it is the user's or the system
 * prompt's (1) or the template's markup (0). */
typedef struct {
    char *text;
    unsigned char *plain;
    size_t len;
} ChatTurn;

/* One user turn (first_turn: the conversation's first, which carries the system prompt)
 * into *turn. Returns 0, or -1 when out of memory. */
int chat_render(ChatTemplate t, const char *system, const char *user, int first_turn, ChatTurn *turn);
void chat_turn_free(ChatTurn *turn);

/* The text of chat_render alone: a malloc'd string, or NULL when out of memory. */
char *chat_render_turn(ChatTemplate t, const char *system, const char *user, int first_turn);

/* Encodes a rendered turn: BOS first (if the tokenizer has one) in Llama-2's template and in
 * every template's first turn; then the text as said above. Returns the number of ids in the
 * malloc'd *ids, or -1 with err set. */
int chat_encode(ChatTemplate t, const Tokenizer *tok, const ChatTurn *turn, int first_turn, int eos, int **ids,
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
