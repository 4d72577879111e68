/*
 * tokenizer/chat.c - the chat templates (tokenizer/chat.h).
 */
#include "tokenizer/chat.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const names[N_CHAT_TEMPLATES] = {"llama2", "zephyr", "chatml"};

int chat_template_parse(const char *name, ChatTemplate *t) {
    for (int i = 0; i < N_CHAT_TEMPLATES; i++)
        if (!strcmp(name, names[i])) return *t = (ChatTemplate)i, 0;
    return -1;
}

const char *chat_template_name(ChatTemplate t) { return names[t]; }

char *chat_render_turn(ChatTemplate t, const char *system, const char *user, int first_turn) {
    const size_t need = strlen(user) + strlen(system) + 128;
    char *text = malloc(need);
    if (!text) return NULL;
    const int with_system = first_turn && system[0];
    switch (t) {
    case CHAT_LLAMA2:
        if (with_system) snprintf(text, need, "[INST] <<SYS>>\n%s\n<</SYS>>\n\n%s [/INST]", system, user);
        else snprintf(text, need, "[INST] %s [/INST]", user);
        break;
    case CHAT_ZEPHYR:
        snprintf(text, need, "%s%s%s%s<|user|>\n%s</s>\n<|assistant|>\n", first_turn ? "" : "</s>\n",
                 with_system ? "<|system|>\n" : "", with_system ? system : "", with_system ? "</s>\n" : "", user);
        break;
    default:
        snprintf(text, need, "%s%s%s%s<|im_start|>user\n%s<|im_end|>\n<|im_start|>assistant\n",
                 first_turn ? "" : "<|im_end|>\n", with_system ? "<|im_start|>system\n" : "",
                 with_system ? system : "", with_system ? "<|im_end|>\n" : "", user);
    }
    return text;
}

/* Appends n ids to *ids (of *len, growing). Returns 0, or -1 when out of memory. */
static int append(int **ids, int *len, const int *more, int n) {
    int *grown = realloc(*ids, ((size_t)*len + (size_t)n + 1) * sizeof **ids);
    if (!grown) return -1;
    memcpy(grown + *len, more, (size_t)n * sizeof *more);
    *ids = grown;
    *len += n;
    return 0;
}

int chat_encode(ChatTemplate t, const Tokenizer *tok, const char *text, int first_turn, int eos, int **ids,
                char *err, size_t errlen) {
    const int bos = tokenizer_bos(tok);
    int len = 0;
    *ids = NULL;
    if ((t == CHAT_LLAMA2 || first_turn) && append(ids, &len, &bos, 1) != 0) goto oom;
    for (const char *at = text; *at;) { /* each piece of text between "</s>" markers */
        const char *mark = strstr(at, "</s>");
        const size_t n = mark ? (size_t)(mark - at) : strlen(at);
        if (n) {
            char *piece = strndup(at, n);
            int *piece_ids = NULL;
            const int k = piece ? tokenizer_encode(tok, piece, &piece_ids, err, errlen) : -1;
            free(piece);
            if (k < 0 || append(ids, &len, piece_ids + 1, k - 1) != 0) { /* without its BOS */
                free(piece_ids);
                if (k < 0 && piece) return free(*ids), *ids = NULL, -1;
                goto oom;
            }
            free(piece_ids);
        }
        if (mark && append(ids, &len, &eos, 1) != 0) goto oom;
        at += n + (mark ? 4 : 0);
    }
    return len;
oom:
    free(*ids);
    *ids = NULL;
    snprintf(err, errlen, "out of memory");
    return -1;
}

void chat_stop_start(ChatStop *s, ChatTemplate t) {
    s->stop = t == CHAT_CHATML ? "<|im_end|>" : NULL;
    s->n_held = 0;
}

/* Byte j of the held bytes followed by the piece, and whether the stop text's first `len`
 * bytes stand there. */
static char joined(const ChatStop *s, const char *piece, size_t j) {
    return j < (size_t)s->n_held ? s->held[j] : piece[j - (size_t)s->n_held];
}

static int stop_at(const ChatStop *s, const char *piece, size_t j, size_t len) {
    for (size_t i = 0; i < len; i++)
        if (joined(s, piece, j + i) != s->stop[i]) return 0;
    return 1;
}

int chat_stop_feed(ChatStop *s, const char *piece, size_t n, int pos, void (*show)(const char *, size_t)) {
    if (!s->stop || !piece) { /* nothing to watch for, or the answer is over: show it all */
        if (s->n_held) show(s->held, (size_t)s->n_held);
        if (piece && n) show(piece, n);
        s->n_held = 0;
        return -1;
    }
    const size_t held = (size_t)s->n_held, total = held + n, len = strlen(s->stop);
    size_t j = 0; /* where the stop text, or a tail that may begin it, starts (total: neither) */
    while (j < total && !stop_at(s, piece, j, total - j < len ? total - j : len)) j++;
    if (j && held) show(s->held, j < held ? j : held);
    if (j > held) show(piece, j - held);
    if (total - j >= len) { /* the whole stop text */
        const int began = j < held ? s->held_pos[j] : pos;
        s->n_held = 0;
        return began;
    }
    int kept = 0; /* the tail, shorter than the stop text, is held back */
    for (size_t i = j; i < total; i++, kept++) {
        s->held[kept] = joined(s, piece, i);
        s->held_pos[kept] = i < held ? s->held_pos[i] : pos;
    }
    s->n_held = kept;
    return -1;
}
