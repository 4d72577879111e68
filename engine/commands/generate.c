/*
 * engine/commands/generate.c - generate and chat (engine/commands/generate.h), written as llama2.c's run.c
 * writes them.
 */
#include "engine/commands/generate.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/commands/clock.h"
#include "engine/commands/command.h"
#include "engine/reference.h"
#include "engine/sampler.h"
#include "tokenizer/chat.h"
#include "tokenizer/unicode.h"

/* The forward pass a run uses: the fast one (engine/forward.c), or with --reference the
 * reference path (engine/reference.c), token by token, to read along in a debugger. In
 * the integer modes both give the same logits, so the same text. */
typedef struct {
    Transformer *fast;
    Reference *reference;
    int eos_id;                     /* the model's end of text: generation stops there */
    int stop[MODEL_MAX_STOP + 1];   /* and at these: config.json's other EOS ids, the chat */
    int n_stop;                     /* template's end of turn (<|eot_id|>, <|im_end|>) */
} Forward;

static int ends_text(const Forward *f, int id) {
    for (int k = 0; k < f->n_stop; k++)
        if (id == f->stop[k]) return 1;
    return id == f->eos_id;
}

/* Adds id (if a token, and not there yet) to the ids that end a text. */
static void add_stop(Forward *f, int id) {
    if (id >= 0 && !ends_text(f, id) && f->n_stop < MODEL_MAX_STOP + 1) f->stop[f->n_stop++] = id;
}

/* The logits after tokens[0..n) at positions pos.., or NULL (with err set) when the
 * forward pass overflowed float32. */
static float *forward(Forward *f, const int *tokens, int n, int pos, char *err, size_t errlen) {
    float *logits = NULL;
    if (f->fast) {
        if (!(logits = transformer_run(f->fast, tokens, n, pos, NULL)))
            snprintf(err, errlen, "%s", transformer_error(f->fast));
        return logits;
    }
    for (int i = 0; i < n; i++) logits = reference_forward(f->reference, tokens[i], pos + i);
    return logits;
}

/* What has been printed may end inside a character: a byte-level token (Llama 3) can hold
 * part of one, and the next token the rest. */
static Utf8Stream printed;

/* Writes a decoded piece, dropping lone control bytes (a model can emit <0x07> or <0x1B>)
 * but keeping whitespace; characters are written whole, bytes that are no UTF-8 as U+FFFD. */
static void print_piece(const char *s, size_t n) {
    const unsigned char b = n ? (unsigned char)s[0] : 0;
    if (n == 1 && ((b < 0x20 && b != '\n' && b != '\t' && b != '\r') || b == 0x7F)) return;
    for (size_t k = 0; k < n; k += 64) {
        char out[3 * (64 + 4)];
        fwrite(out, 1, utf8_stream_push(&printed, s + k, n - k < 64 ? n - k : 64, out), stdout);
    }
    fflush(stdout);
}

/* The end of a text: an unfinished character is printed as U+FFFD, then a newline. */
static void end_text(void) {
    char out[4];
    fwrite(out, 1, utf8_stream_flush(&printed, out), stdout);
    printf("\n");
}

/* Where the time went: prompts (a batched pass each) and sampled tokens (a pass each),
 * reported on stderr at the end. "achieved tok/s" is llama2.c's figure: all positions
 * after the first, over the time since the first finished. */
typedef struct {
    double first_done; /* when the first pass ended */
    long prompt_tokens, generated;
    double prompt_seconds, generate_seconds;
} Timer;

static void timer_report(const Timer *tm) {
    fflush(stdout); /* the text first, then the figures */
    const long positions = tm->prompt_tokens + tm->generated;
    if (positions < 2) return;
    fprintf(stderr, "achieved tok/s: %.2f (prompt: %ld tokens at %.1f tok/s; generated: %ld tokens at %.1f tok/s)\n",
            (double)(positions - 1) / (now_seconds() - tm->first_done), tm->prompt_tokens,
            (double)tm->prompt_tokens / tm->prompt_seconds, tm->generated,
            tm->generated ? (double)tm->generated / tm->generate_seconds : 0.0);
}

/* Runs n prompt tokens from position pos in one batched pass; the last one's logits, or
 * NULL with err set. */
static float *timed_prompt(Forward *f, Timer *tm, const int *tokens, int n, int pos, char *err, size_t errlen) {
    const double start = now_seconds();
    float *logits = forward(f, tokens, n, pos, err, errlen);
    const double end = now_seconds();
    tm->prompt_seconds += end - start;
    tm->prompt_tokens += n;
    if (tm->first_done == 0) tm->first_done = end;
    return logits;
}

/* From the logits of `token` at position pos - 1: samples, prints and runs one token at a
 * time until the model ends (EOS; BOS too when end_at_bos; in chat, answer's stop text)
 * or the token for position `last` is printed. Returns the next position to fill, or -1
 * with err set. */
static int sample_text(Forward *f, Timer *tm, const Tokenizer *tok, Sampler *sampler, float *logits, int token,
                       int pos, int last, int end_at_bos, ChatStop *answer, char *err, size_t errlen) {
    for (; pos <= last; pos++) {
        const int next = sampler_sample(sampler, logits);
        if (ends_text(f, next) || (end_at_bos && next == tokenizer_bos(tok))) break;
        size_t n;
        const char *piece = tokenizer_decode(tok, token, next, &n);
        const int stopped_at = answer ? chat_stop_feed(answer, piece, n, pos, print_piece) : (print_piece(piece, n), -1);
        if (stopped_at >= 0) return stopped_at;
        if (pos == last) break;
        const double start = now_seconds();
        token = next;
        if (!(logits = forward(f, &token, 1, pos, err, errlen))) return -1;
        tm->generate_seconds += now_seconds() - start;
        tm->generated++;
    }
    if (answer) chat_stop_feed(answer, NULL, 0, pos, print_piece); /* what it held back */
    return pos;
}

/* The prompt as text, then the story, up to position `steps`. Returns 0, or -1 with err
 * set. */
static int generate(Forward *f, const Tokenizer *tok, Sampler *sampler, const int *prompt, int n_prompt, int steps,
                    char *err, size_t errlen) {
    for (int i = prompt[0] == tokenizer_bos(tok); i < n_prompt; i++) { /* BOS prints nothing */
        size_t n;
        const char *piece = tokenizer_decode(tok, i ? prompt[i - 1] : -1, prompt[i], &n);
        print_piece(piece, n);
    }
    Timer tm = {0};
    float *logits = timed_prompt(f, &tm, prompt, n_prompt, 0, err, errlen);
    const int rc = logits ? sample_text(f, &tm, tok, sampler, logits, prompt[n_prompt - 1], n_prompt, steps, 1, NULL,
                                        err, errlen) : -1;
    end_text();
    timer_report(&tm);
    return rc < 0 ? -1 : 0;
}

/* Reads one line of stdin, without its newline, into line (CHAT_MAX_MESSAGE + 1 bytes):
 * its length, -1 at the end of input, or -2 for a line longer than CHAT_MAX_MESSAGE, read
 * to its end and dropped (its bytes are counted as they arrive, never kept). */
static long read_message(const char *prompt_text, char *line) {
    fputs(prompt_text, stdout);
    fflush(stdout);
    size_t n = 0;
    int c;
    while ((c = getchar()) != EOF && c != '\n') {
        if (n < CHAT_MAX_MESSAGE) line[n] = (char)c;
        n++;
    }
    if (c == EOF && n == 0) return -1;
    if (n > CHAT_MAX_MESSAGE) return -2;
    line[n] = '\0'; /* a NUL byte inside ends the message */
    return (long)n;
}

static int too_long(const char *what, const char *text, char *err, size_t errlen) {
    if (strlen(text) <= CHAT_MAX_MESSAGE) return 0;
    snprintf(err, errlen, "%s is %zu bytes; a chat message is at most %d KiB", what, strlen(text),
             CHAT_MAX_MESSAGE >> 10);
    return -1;
}

/* Chat in a template (tokenizer/chat.h): each user turn in one batched pass, then the
 * assistant answers until EOS, while the conversation fits in `steps` positions. */
static int chat(Forward *f, const Tokenizer *tok, Sampler *sampler, const GenerateOptions *g, ChatTemplate tmpl,
                int steps, char *err, size_t errlen) {
    if (too_long("the system prompt (-y)", g->system_prompt ? g->system_prompt : "", err, errlen) ||
        too_long("the first message (-i)", g->prompt, err, errlen))
        return -1;
    char *line = malloc(CHAT_MAX_MESSAGE + 1), *system = NULL;
    long got = line && !g->system_prompt ? read_message("Enter system prompt (optional): ", line) : 0;
    if (got == -2) {
        snprintf(err, errlen, "the system prompt is longer than %d KiB, the most a chat message may be",
                 CHAT_MAX_MESSAGE >> 10);
        free(line);
        return -1;
    }
    if (!line || !(system = strdup(g->system_prompt ? g->system_prompt : got > 0 ? line : ""))) {
        snprintf(err, errlen, "out of memory");
        free(line);
        return -1;
    }
    /* The template's end of turn, as the model's tokenizer writes it. */
    add_stop(f, tokenizer_special(tok, tmpl == CHAT_LLAMA3 ? "<|eot_id|>" : "<|im_end|>"));
    Timer tm = {0};
    int pos = 0, rc = 0;
    while (pos < steps) {
        const int first = pos == 0; /* the first turn carries the system prompt */
        const char *user = g->prompt;
        if (!first || !g->prompt[0]) {
            if ((got = read_message("User: ", line)) == -1) break; /* end of input */
            if (got == -2) {
                fprintf(stderr, "(not sent: a message is at most %d KiB)\n", CHAT_MAX_MESSAGE >> 10);
                continue;
            }
            user = line;
        }
        ChatTurn turn;
        const int rendered = chat_render(tmpl, system, user, first, &turn) == 0;
        int *ids = NULL, n_ids = rendered ? chat_encode(tmpl, tok, &turn, first, f->eos_id, &ids, err, errlen) : -1;
        if (!rendered) snprintf(err, errlen, "out of memory");
        if (n_ids < 0) rc = -1;
        if (rendered) chat_turn_free(&turn);
        if (n_ids >= 0 && pos + n_ids >= steps)
            fprintf(stderr, "\nthe conversation has reached the context limit (%d positions)\n", steps);
        if (n_ids < 0 || pos + n_ids >= steps) {
            free(ids);
            break;
        }
        float *logits = timed_prompt(f, &tm, ids, n_ids, pos, err, errlen);
        printf("Assistant: ");
        ChatStop answer;
        chat_stop_start(&answer, tmpl);
        pos = logits ? sample_text(f, &tm, tok, sampler, logits, ids[n_ids - 1], pos + n_ids, steps - 1, 0, &answer,
                                   err, errlen) : -1;
        free(ids);
        end_text();
        if (pos < 0) {
            rc = -1;
            break;
        }
    }
    timer_report(&tm);
    free(line);
    free(system);
    return rc;
}

int generate_command(const GenerateOptions *g, ThreadPool *pool, char *err, size_t errlen) {
    ModelWeights w;
    if (command_open_model(&w, g->model_path, &g->quant, g->quant_given, &g->cache, pool, err, errlen) != 0) return -1;
    const ModelConfig *c = &w.cfg;
    Tokenizer *tok = NULL;
    Forward f = {NULL, NULL, w.eos_id, {0}, 0};
    for (int k = 0; k < w.n_stop; k++) add_stop(&f, w.stop_ids[k]);
    ChatTemplate tmpl = CHAT_LLAMA2;
    Sampler sampler = {0};
    int *prompt = NULL, n_prompt = 0, rc = -1;
    const int ctx = g->ctx ? g->ctx : c->seq_len; /* the positions -n may use */
    const int steps = g->steps < 0 ? (ctx < 256 ? ctx : 256) : g->steps == 0 ? ctx : (int)g->steps;
    if (g->ctx > c->seq_len) {
        snprintf(err, errlen, "-c %d exceeds the model's context (seq_len %d)", g->ctx, c->seq_len);
        goto done;
    }
    if (g->steps > ctx) {
        if (g->ctx)
            snprintf(err, errlen, "-n %ld exceeds the context, -c %d", g->steps, ctx);
        else
            snprintf(err, errlen, "-n %ld exceeds the model's context (seq_len %d); use -n 0 for all of it",
                     g->steps, ctx);
        goto done;
    }
    const char *tmpl_name = g->chat_template ? g->chat_template : w.chat_template;
    if (g->chat && tmpl_name[0] && chat_template_parse(tmpl_name, &tmpl) != 0) {
        snprintf(err, errlen, "%s names the chat template '%s', which this build does not know; choose one with "
                 "--chat-template", g->model_path, tmpl_name);
        goto done;
    }
    if (!(tok = command_model_tokenizer(g->tokenizer_path, g->model_path, &w, err, errlen))) goto done;
    if (!g->chat) { /* chat encodes each turn as it comes */
        if ((n_prompt = tokenizer_encode(tok, g->prompt, &prompt, err, errlen)) < 0) goto done;
        if (n_prompt == 0) { /* SmolLM2's tokenizer starts a text with no BOS */
            snprintf(err, errlen, "the prompt is empty and %s's tokenizer puts no BOS before a text: give a prompt "
                     "with -i", g->model_path);
            goto done;
        }
        if (n_prompt > c->seq_len) {
            snprintf(err, errlen, "the prompt is %d tokens but the model's context (seq_len) is %d", n_prompt,
                     c->seq_len);
            goto done;
        }
        if (n_prompt > steps) {
            snprintf(err, errlen, "the prompt is %d tokens but %s only %d positions", n_prompt,
                     g->steps < 0 && g->ctx ? "the context (-c) holds" : "-n allows", steps);
            goto done;
        }
    }
    const int n_ctx = g->ctx ? g->ctx : steps; /* the KV cache holds what the run uses */
    if (kv_check(c, &w.quant, 1, n_ctx, g->kv_limit, "ask for fewer positions with -n or -c", err, errlen) != 0)
        goto done;
    if (g->reference ? !(f.reference = reference_new(&w, n_ctx, err, errlen))
                     : !(f.fast = transformer_new(&w, pool, n_ctx, err, errlen)))
        goto done;
    if (sampler_init(&sampler, c->vocab_size, g->temperature, g->top_p, g->seed) != 0) {
        snprintf(err, errlen, "out of memory");
        goto done;
    }
    if (g->verbose) command_describe(stderr, g->model_path, &w, 1, n_ctx, g->kv_limit, pool);
    if (g->verbose && g->reference) fprintf(stderr, "forward:  the reference path (engine/reference.c), one thread\n");
    if (g->verbose && g->chat) fprintf(stderr, "chat template: %s\n", chat_template_name(tmpl));
    rc = g->chat ? chat(&f, tok, &sampler, g, tmpl, steps, err, errlen)
                 : generate(&f, tok, &sampler, prompt, n_prompt, steps, err, errlen);
done:
    sampler_free(&sampler);
    free(prompt);
    transformer_free(f.fast);
    reference_free(f.reference);
    tokenizer_free(tok);
    model_close(&w);
    return rc;
}
