/*
 * tokenizer/chat.c - the chat templates (tokenizer/chat.h).
 */
#include "tokenizer/chat.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char *const names[N_CHAT_TEMPLATES] = {"llama2", "zephyr", "chatml", "llama3", "smollm2"};

/* SmolLM2's system prompt when the conversation has none (its tokenizer_config.json). */
static const char SMOLLM2_SYSTEM[] = "You are a helpful AI assistant named SmolLM, trained by Hugging Face";

int chat_template_parse(const char *name, ChatTemplate *t) {
    for (int i = 0; i < N_CHAT_TEMPLATES; i++)
        if (!strcmp(name, names[i])) return *t = (ChatTemplate)i, 0;
    return -1;
}

const char *chat_template_name(ChatTemplate t) { return names[t]; }

/* Appends s (n bytes) to the turn; plain: it is the user's or system prompt's text. */
static int put(ChatTurn *turn, const char *s, size_t n, int plain) {
    char *text = realloc(turn->text, turn->len + n + 1);
    unsigned char *mask = text ? realloc(turn->plain, turn->len + n + 1) : NULL;
    if (text) turn->text = text;
    if (!mask) return -1;
    turn->plain = mask;
    memcpy(turn->text + turn->len, s, n);
    memset(turn->plain + turn->len, plain, n);
    turn->len += n;
    turn->text[turn->len] = '\0';
    return 0;
}

/* The markup of the template, then the prompts' text, in order: "%" in fmt takes the next
 * of the texts. */
static int put_all(ChatTurn *turn, const char *fmt, const char *const *texts) {
    int rc = 0;
    for (const char *p = fmt; *p && rc == 0;) {
        const size_t n = strcspn(p, "%");
        rc = put(turn, p, n, 0);
        p += n;
        if (*p == '%') rc |= put(turn, *texts, strlen(*texts), 1), texts++, p++;
    }
    return rc;
}

/* s without the white space at either end (Jinja's trim), as a malloc'd string. */
static char *trimmed(const char *s) {
    while (*s && strchr(" \t\n\r\v\f", *s)) s++;
    size_t n = strlen(s);
    while (n && strchr(" \t\n\r\v\f", s[n - 1])) n--;
    return strndup(s, n);
}

int chat_render(ChatTemplate t, const char *system, const char *user, int first_turn, ChatTurn *turn) {
    memset(turn, 0, sizeof *turn);
    const int with_system = first_turn && system[0];
    char *sys = trimmed(system), *usr = trimmed(user), date[32] = "";
    const time_t now = time(NULL);
    struct tm day;
    strftime(date, sizeof date, "%d %b %Y", localtime_r(&now, &day)); /* transformers' strftime_now */
    int rc = !sys || !usr || put(turn, "", 0, 0);
    if (rc) goto done;
    switch (t) {
    case CHAT_LLAMA2:
        rc = with_system ? put_all(turn, "[INST] <<SYS>>\n%\n<</SYS>>\n\n% [/INST]", (const char *[]){system, user})
                         : put_all(turn, "[INST] % [/INST]", (const char *[]){user});
        break;
    case CHAT_ZEPHYR:
        rc = put_all(turn, first_turn ? "" : "</s>\n", NULL);
        if (with_system) rc |= put_all(turn, "<|system|>\n%</s>\n", (const char *[]){system});
        rc |= put_all(turn, "<|user|>\n%</s>\n<|assistant|>\n", (const char *[]){user});
        break;
    case CHAT_LLAMA3: /* Llama 3.1/3.2: a system turn always, with the date; prompts trimmed */
        if (first_turn)
            rc = put_all(turn, "<|start_header_id|>system<|end_header_id|>\n\nCutting Knowledge Date: December 2023\n"
                               "Today Date: %\n\n%<|eot_id|>", (const char *[]){date, sys});
        else
            rc = put_all(turn, "<|eot_id|>", NULL);
        rc |= put_all(turn, "<|start_header_id|>user<|end_header_id|>\n\n%<|eot_id|>"
                            "<|start_header_id|>assistant<|end_header_id|>\n\n", (const char *[]){usr});
        break;
    default: /* ChatML, and SmolLM2's with its own system prompt when none is given */
        rc = put_all(turn, first_turn ? "" : "<|im_end|>\n", NULL);
        if (with_system || (first_turn && t == CHAT_SMOLLM2))
            rc |= put_all(turn, "<|im_start|>system\n%<|im_end|>\n", (const char *[]){with_system ? system : SMOLLM2_SYSTEM});
        rc |= put_all(turn, "<|im_start|>user\n%<|im_end|>\n<|im_start|>assistant\n", (const char *[]){user});
    }
done:
    free(sys), free(usr);
    if (rc) chat_turn_free(turn);
    return rc ? -1 : 0;
}

void chat_turn_free(ChatTurn *turn) {
    free(turn->text), free(turn->plain);
    memset(turn, 0, sizeof *turn);
}

char *chat_render_turn(ChatTemplate t, const char *system, const char *user, int first_turn) {
    ChatTurn turn;
    if (chat_render(t, system, user, first_turn, &turn) != 0) return NULL;
    free(turn.plain);
    return turn.text;
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

/* A sentencepiece or tokenizer.bin tokenizer has no special tokens in text: the turn is
 * encoded piece by piece between "</s>" markers, each marker the id eos. */
static int encode_between_eos(const Tokenizer *tok, const char *text, int eos, int **ids, int *len, char *err,
                              size_t errlen) {
    for (const char *at = text; *at;) {
        const char *mark = strstr(at, "</s>");
        const size_t n = mark ? (size_t)(mark - at) : strlen(at);
        if (n) {
            char *piece = strndup(at, n);
            int *piece_ids = NULL;
            const int k = piece ? tokenizer_encode_text(tok, piece, &piece_ids, err, errlen) : -1;
            free(piece);
            const int rc = k < 0 ? -1 : append(ids, len, piece_ids, k);
            free(piece_ids);
            if (rc != 0) return -1;
        }
        if (mark && append(ids, len, &eos, 1) != 0) return -1;
        at += n + (mark ? 4 : 0);
    }
    return 0;
}

int chat_encode(ChatTemplate t, const Tokenizer *tok, const ChatTurn *turn, int first_turn, int eos, int **ids,
                char *err, size_t errlen) {
    const int bos = tokenizer_bos(tok);
    int len = 0;
    *ids = NULL;
    err[0] = '\0';
    int rc = (t == CHAT_LLAMA2 || first_turn) && bos >= 0 ? append(ids, &len, &bos, 1) : 0;
    if (rc == 0 && tokenizer_parses_special(tok)) { /* the template's special tokens are in the text */
        int *body = NULL;
        const int n = tokenizer_encode_marked(tok, turn->text, turn->plain, &body, err, errlen);
        rc = n < 0 ? -1 : append(ids, &len, body, n);
        free(body);
    } else if (rc == 0) {
        rc = encode_between_eos(tok, turn->text, eos, ids, &len, err, errlen);
    }
    if (rc != 0) {
        if (!err[0]) snprintf(err, errlen, "out of memory");
        free(*ids);
        *ids = NULL;
        return -1;
    }
    return len;
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
