/* memplan_order.c — the orders in which the planner places its items (see
 * MemOrder in memplan.h). Each is a total order: ties fall to the lower
 * item index, so the result never depends on qsort's internals. */
#include <stdlib.h>

#include "passes/memplan_internal.h"

/* Sort key: 'a' descending, then 'b' descending, then 'idx' ascending. */
typedef struct {
  int64_t a, b;
  int idx;
} Key;

static int key_cmp(const void *pa, const void *pb) {
  const Key *x = pa, *y = pb;
  if (x->a != y->a) return x->a > y->a ? -1 : 1;
  if (x->b != y->b) return x->b > y->b ? -1 : 1;
  return (x->idx > y->idx) - (x->idx < y->idx);
}

static int int_cmp(const void *pa, const void *pb) {
  int x = *(const int *)pa, y = *(const int *)pb;
  return (x > y) - (x < y);
}

/* Number of entries of sorted v[0..n) that are < x. */
static int count_below(const int *v, int n, int x) {
  int lo = 0, hi = n;
  while (lo < hi) {
    int mid = lo + (hi - lo) / 2;
    if (v[mid] < x) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/* conflicts[i] = number of other items whose interval meets item i's:
 * all items minus those ending before it starts and those starting after
 * it ends (two sorted arrays and binary search, O(n log n)). */
static void count_conflicts(const MemItem *item, int n, int64_t *conflicts) {
  int *first = malloc((size_t)n * sizeof *first), *last = malloc((size_t)n * sizeof *last);
  for (int i = 0; i < n; i++) first[i] = item[i].first, last[i] = item[i].last;
  qsort(first, (size_t)n, sizeof *first, int_cmp);
  qsort(last, (size_t)n, sizeof *last, int_cmp);
  for (int i = 0; i < n; i++) {
    int ends_before = count_below(last, n, item[i].first);
    int starts_after = n - count_below(first, n, item[i].last + 1);
    conflicts[i] = n - 1 - ends_before - starts_after;
  }
  free(first);
  free(last);
}

static void order_by_keys(const MemItem *item, int n, MemOrder o, int *order) {
  Key *key = malloc((size_t)n * sizeof *key);
  int64_t *conflicts = NULL;
  if (o == MEM_ORDER_CONFLICTS) {
    conflicts = malloc((size_t)n * sizeof *conflicts);
    count_conflicts(item, n, conflicts);
  }
  for (int i = 0; i < n; i++) {
    const MemItem *it = &item[i];
    key[i].idx = i;
    switch (o) {
    case MEM_ORDER_SIZE: key[i].a = it->size, key[i].b = -(int64_t)it->first; break;
    case MEM_ORDER_LENGTH: key[i].a = it->last - it->first, key[i].b = it->size; break;
    default: key[i].a = conflicts[i], key[i].b = it->size; break;
    }
  }
  qsort(key, (size_t)n, sizeof *key, key_cmp);
  for (int i = 0; i < n; i++) order[i] = key[i].idx;
  free(key);
  free(conflicts);
}

/* Glow's MaxLiveSizeMaxBuffSize: live[s] holds the bytes of the unplaced
 * items live at step s; take the step where that is largest (the earliest
 * such step) and from its items the largest (lowest index on ties). Items
 * of size 0 never raise a step's bytes; they come last, by index. */
static void order_by_live(const MemItem *item, int n, int nstep, int *order) {
  int64_t *live = calloc((size_t)nstep + 1, sizeof *live);
  char *done = calloc((size_t)n + 1, 1);
  for (int i = 0; i < n; i++)
    for (int s = item[i].first; s <= item[i].last; s++) live[s] += item[i].size;
  int k = 0;
  while (k < n) {
    int best_s = 0;
    for (int s = 1; s < nstep; s++)
      if (live[s] > live[best_s]) best_s = s;
    if (nstep == 0 || live[best_s] == 0) break;
    int pick = -1;
    for (int i = 0; i < n; i++)
      if (!done[i] && item[i].first <= best_s && best_s <= item[i].last &&
          (pick < 0 || item[i].size > item[pick].size))
        pick = i;
    done[pick] = 1;
    order[k++] = pick;
    for (int s = item[pick].first; s <= item[pick].last; s++) live[s] -= item[pick].size;
  }
  for (int i = 0; i < n; i++)
    if (!done[i]) order[k++] = i;
  free(live);
  free(done);
}

void mem_order_items(const MemItem *item, int n, int nstep, MemOrder o, int *order) {
  if (o == MEM_ORDER_LIVE) order_by_live(item, n, nstep, order);
  else order_by_keys(item, n, o, order);
}
