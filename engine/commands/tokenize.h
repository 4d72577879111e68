/*
 * engine/commands/tokenize.h - run tokenize MODEL FILE: the token ids of FILE's text, on one
 * line, space-separated, without BOS (what llama.cpp's llama-tokenize prints), so anyone can
 * check a tokenizer against another implementation. MODEL is a tokenizer file of a format
 * tokenizer/tokenizer.h reads, or a model: a .qrz file (its stored tokenizer, else the one
 * beside it) or a llama2.c checkpoint (the tokenizer beside it).
 */
#ifndef ENGINE_TOKENIZE_H
#define ENGINE_TOKENIZE_H

#include <stddef.h>

/* argv: MODEL FILE. Returns 0, or -1 with err set (a usage line when argc is not 2). */
int tokenize_command(int argc, char **argv, char *err, size_t errlen);

#endif
