/*
 * tokenizer/merge.c - the merge loop (tokenizer/merge.h): a linked list of symbols and a
 * heap of candidate merges, so a word of n symbols takes O(n log n), not O(n^2).
 */
#include "tokenizer/merge.h"

#include <stdlib.h>

/* One symbol of the list being merged. */
typedef struct {
    int id, prev, next; /* prev/next: neighbours in the list, -1 at the ends */
} Node;

/* A candidate merge of node `left` with its right neighbour into `merged`. */
typedef struct {
    float score;
    int left, left_id, right_id, merged;
} Candidate;

/* Heap order: higher score first; on equal scores the leftmost pair (smaller node index;
 * nodes never move, so index order is text order). */
static int cand_before(const Candidate *a, const Candidate *b) {
    return a->score > b->score || (a->score == b->score && a->left < b->left);
}

static void heap_push(Candidate *h, int *n, Candidate c) {
    int i = (*n)++;
    while (i > 0 && cand_before(&c, &h[(i - 1) / 2])) {
        h[i] = h[(i - 1) / 2];
        i = (i - 1) / 2;
    }
    h[i] = c;
}

static Candidate heap_pop(Candidate *h, int *n) {
    Candidate top = h[0], last = h[--*n];
    int i = 0;
    for (;;) {
        int c = 2 * i + 1;
        if (c >= *n) break;
        if (c + 1 < *n && cand_before(&h[c + 1], &h[c])) c++;
        if (!cand_before(&h[c], &last)) break;
        h[i] = h[c];
        i = c;
    }
    if (*n > 0) h[i] = last;
    return top;
}

/* Pushes the merge of node i with its right neighbour, if they merge. */
static void push_pair(const Node *nodes, int i, MergePair pair, const void *ctx, Candidate *heap, int *n_heap) {
    if (i < 0 || nodes[i].next < 0) return;
    const int left = nodes[i].id, right = nodes[nodes[i].next].id;
    float score;
    const int merged = pair(ctx, left, right, &score);
    if (merged >= 0) heap_push(heap, n_heap, (Candidate){score, i, left, right, merged});
}

int merge_symbols(int *ids, int n, MergePair pair, const void *ctx) {
    if (n < 2) return n;
    Node *nodes = malloc((size_t)n * sizeof *nodes);
    Candidate *heap = malloc((size_t)3 * (size_t)n * sizeof *heap); /* n - 1, then 2 per merge */
    if (!nodes || !heap) {
        free(nodes), free(heap);
        return -1;
    }
    for (int i = 0; i < n; i++) nodes[i] = (Node){ids[i], i - 1, i + 1 < n ? i + 1 : -1};
    int n_heap = 0;
    for (int i = 0; i + 1 < n; i++) push_pair(nodes, i, pair, ctx, heap, &n_heap);
    while (n_heap > 0) {
        const Candidate c = heap_pop(heap, &n_heap);
        const int r = nodes[c.left].next;
        /* Stale: one side was merged away or changed since this candidate was pushed. */
        if (nodes[c.left].id != c.left_id || r < 0 || nodes[r].id != c.right_id) continue;
        nodes[c.left].id = c.merged;
        nodes[c.left].next = nodes[r].next;
        if (nodes[r].next >= 0) nodes[nodes[r].next].prev = c.left;
        nodes[r].id = -1; /* removed */
        push_pair(nodes, nodes[c.left].prev, pair, ctx, heap, &n_heap);
        push_pair(nodes, c.left, pair, ctx, heap, &n_heap);
    }
    int count = 0;
    for (int i = 0; i >= 0; i = nodes[i].next) ids[count++] = nodes[i].id;
    free(nodes), free(heap);
    return count;
}
