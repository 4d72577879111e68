/*
 * tokenizer/chat.c - the Llama-2 chat template (tokenizer/chat.h).
 */
#include "tokenizer/chat.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

char *chat_render_turn(const char *system, const char *user, int first_turn) {
    const size_t need = strlen(user) + strlen(system) + 64;
    char *text = malloc(need);
    if (!text) return NULL;
    if (first_turn && system[0])
        snprintf(text, need, "[INST] <<SYS>>\n%s\n<</SYS>>\n\n%s [/INST]", system, user);
    else
        snprintf(text, need, "[INST] %s [/INST]", user);
    return text;
}
