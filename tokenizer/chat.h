/*
 * tokenizer/chat.h - the Llama-2 chat template: a conversation turned into the text the
 * tokenizer encodes, as Meta's reference code and llama2.c render it.
 */
#ifndef TOKENIZER_CHAT_H
#define TOKENIZER_CHAT_H

/* One user turn:
 *   "[INST] <<SYS>>\n{system}\n<</SYS>>\n\n{user} [/INST]"   the first turn, with a system prompt
 *   "[INST] {user} [/INST]"                                  every other turn
 * (the tokenizer adds BOS in front, and the model's answer ends with EOS). Returns a
 * malloc'd string, or NULL when out of memory. */
char *chat_render_turn(const char *system, const char *user, int first_turn);

#endif
