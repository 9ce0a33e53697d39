/* fuse_order.c — Kahn's topological sort with keyed tie-breaks, shared by
 * the fusion pass and by plans built from an explicit grouping. */
#include <stdlib.h>

#include "passes/fuse.h"

/* A binary min-heap of item ids keyed by key[item]. */
typedef struct {
  int *a, n;
  const int *key;
} Heap;

static void heap_push(Heap *h, int v) {
  int i = h->n++;
  h->a[i] = v;
  while (i > 0 && h->key[h->a[(i - 1) / 2]] > h->key[h->a[i]]) {
    int up = (i - 1) / 2, t = h->a[up];
    h->a[up] = h->a[i];
    h->a[i] = t;
    i = up;
  }
}

static int heap_pop(Heap *h) {
  int top = h->a[0];
  h->a[0] = h->a[--h->n];
  for (int i = 0;;) {
    int l = 2 * i + 1, r = l + 1, m = i;
    if (l < h->n && h->key[h->a[l]] < h->key[h->a[m]]) m = l;
    if (r < h->n && h->key[h->a[r]] < h->key[h->a[m]]) m = r;
    if (m == i) break;
    int t = h->a[m];
    h->a[m] = h->a[i];
    h->a[i] = t;
    i = m;
  }
  return top;
}

int fuse_topo_order(int n, const int *first, const int *succ, int *indeg, const int *key, const bool *skip,
                    int *order) {
  Heap h = {malloc(((size_t)n + 1) * sizeof *h.a), 0, key};
  if (!h.a) return -1;
  for (int i = 0; i < n; i++)
    if (!(skip && skip[i]) && indeg[i] == 0) heap_push(&h, i);
  int count = 0;
  while (h.n > 0) {
    int i = heap_pop(&h);
    order[count++] = i;
    for (int k = first[i]; k < first[i + 1]; k++)
      if (--indeg[succ[k]] == 0) heap_push(&h, succ[k]);
  }
  free(h.a);
  return count;
}
