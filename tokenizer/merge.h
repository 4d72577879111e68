/*
 * tokenizer/merge.h - the merge loop that both BPE tokenizers share: llama2.c's
 * tokenizer.bin (merge the pair whose concatenation scores highest) and tokenizer.json
 * (merge the pair of lowest rank, given as score -rank).
 */
#ifndef TOKENIZER_MERGE_H
#define TOKENIZER_MERGE_H

/* The id that symbols left and right merge into, with its score in *score; -1 when they
 * do not merge. */
typedef int (*MergePair)(const void *ctx, int left, int right, float *score);

/* Merges ids[0..n) in place: repeatedly the adjacent pair of highest score, the leftmost
 * on equal scores (llama2.c's and Hugging Face's rule), until no pair merges. Returns the
 * new count, or -1 when out of memory. */
int merge_symbols(int *ids, int n, MergePair pair, const void *ctx);

#endif
