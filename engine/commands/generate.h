/*
 * engine/commands/generate.h - text generation and chat, as llama2.c's run.c does them: the prompt
 * in one batched pass, then one sampled token at a time, streamed to stdout.
 */
#ifndef ENGINE_GENERATE_H
#define ENGINE_GENERATE_H

#include <stddef.h>

#include "engine/commands/command.h"
#include "kernels/threadpool.h"
#include "weights/model.h"

typedef struct {
    const char *model_path;
    const char *tokenizer_path; /* NULL: found beside the model */
    const char *prompt;         /* generate: the text to continue; chat: the first message ("": ask) */
    const char *system_prompt;  /* chat: NULL = ask on stdin */
    int chat;                   /* 0: generate, 1: chat (tokenizer/chat.h) */
    const char *chat_template;  /* --chat-template: a name of tokenizer/chat.h; NULL: the model's */
    long steps;                 /* -n: positions to run, prompt included; -1 = 256 (at most the
                                   context), 0 = the whole context */
    int ctx;                    /* -c: positions of KV cache, at least steps; 0 = steps */
    float temperature, top_p;
    unsigned long long seed;    /* not 0 */
    QuantConfig quant;
    int quant_given;            /* -q, -g, --cls or --sdr given: a .qrz file refuses them */
    CacheTypes cache;           /* -ctk, -ctv */
    int reference;              /* --reference: run engine/reference.c, one token at a time */
    int verbose;
    size_t kv_limit;            /* bytes the KV cache may take (engine/commands/command.h) */
} GenerateOptions;

/* The longest chat message (a line of stdin, -i or -y) in bytes: a longer line is refused
 * as it is read, never held or tokenized whole. 64 KiB is some 16,000 tokens of English,
 * more than the context of the models this engine runs. */
enum { CHAT_MAX_MESSAGE = 64 << 10 };

/* Generates (or chats) until the model ends the text, the input ends, or the positions
 * run out; the achieved tokens per second go to stderr. Returns 0, or -1 with err set. */
int generate_command(const GenerateOptions *o, ThreadPool *pool, char *err, size_t errlen);

#endif
