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

/* A max segment tree over runs of steps with range add: the bytes of the
 * unplaced items live in each run, and the earliest run where they are
 * largest, each in O(log runs). mx[i] is the max over node i's range, including
 * the additions pending at i (add[i]) but not those of its ancestors. */
typedef struct {
  int size; /* leaves: a power of two >= the runs */
  int64_t *mx, *add;
} LiveTree;

static void tree_init(LiveTree *t, const int64_t *live, int nrun) {
  t->size = 1;
  while (t->size < nrun) t->size *= 2;
  t->mx = malloc(2 * (size_t)t->size * sizeof *t->mx);
  t->add = calloc(2 * (size_t)t->size, sizeof *t->add);
  for (int s = 0; s < t->size; s++) t->mx[t->size + s] = s < nrun ? live[s] : INT64_MIN / 2; /* padding never wins */
  for (int i = t->size - 1; i >= 1; i--) t->mx[i] = t->mx[2 * i] > t->mx[2 * i + 1] ? t->mx[2 * i] : t->mx[2 * i + 1];
}

/* Adds d to runs [lo, hi] under node i, which covers [nlo, nhi]. */
static void tree_add(LiveTree *t, int i, int nlo, int nhi, int lo, int hi, int64_t d) {
  if (hi < nlo || nhi < lo) return;
  if (lo <= nlo && nhi <= hi) {
    t->mx[i] += d;
    t->add[i] += d;
    return;
  }
  int mid = nlo + (nhi - nlo) / 2;
  tree_add(t, 2 * i, nlo, mid, lo, hi, d);
  tree_add(t, 2 * i + 1, mid + 1, nhi, lo, hi, d);
  int64_t m = t->mx[2 * i] > t->mx[2 * i + 1] ? t->mx[2 * i] : t->mx[2 * i + 1];
  t->mx[i] = m + t->add[i];
}

/* The earliest run holding the maximum; *value gets the maximum. */
static int tree_argmax(const LiveTree *t, int64_t *value) {
  *value = t->mx[1];
  int i = 1;
  while (i < t->size) i = t->mx[2 * i] >= t->mx[2 * i + 1] ? 2 * i : 2 * i + 1;
  return i - t->size;
}

/* Glow's MaxLiveSizeMaxBuffSize: live[s] holds the bytes of the unplaced
 * items live at step s; take the step where that is largest (the earliest
 * such step) and from its items the largest (lowest index on ties). Items
 * of size 0 never raise a step's bytes; they come last, by index.
 * The steps' bytes sit in a LiveTree; the unplaced items in a list sorted
 * by size (then index), so the first one on the list live at the step is
 * the pick. Never slower than rescanning steps and items for every pick. */
static void order_by_live(const MemItem *item, int n, int nstep, int *order) {
  char *done = calloc((size_t)n + 1, 1);
  int k = 0;
  if (nstep > 0 && n > 0) {
    /* The bytes live at a step change only where an item starts or ends:
     * the tree holds one leaf per run of steps between such boundaries
     * (its first step stands for it; a run's earliest step is its first). */
    int *run = malloc((2 * (size_t)n + 1) * sizeof *run), nrun = 0;
    run[nrun++] = 0;
    for (int i = 0; i < n; i++) {
      run[nrun++] = item[i].first;
      if (item[i].last + 1 < nstep) run[nrun++] = item[i].last + 1;
    }
    qsort(run, (size_t)nrun, sizeof *run, int_cmp);
    int m = 0;
    for (int i = 0; i < nrun; i++)
      if (i == 0 || run[i] != run[m - 1]) run[m++] = run[i];
    nrun = m;
    int *rfirst = malloc((size_t)n * sizeof *rfirst), *rlast = malloc((size_t)n * sizeof *rlast);
    int64_t *live = calloc((size_t)nrun + 1, sizeof *live);
    for (int i = 0; i < n; i++) {
      /* the run starting at 'first', and the last run starting at or before 'last' */
      rfirst[i] = count_below(run, nrun, item[i].first);
      rlast[i] = count_below(run, nrun, item[i].last + 1) - 1;
      live[rfirst[i]] += item[i].size;
      live[rlast[i] + 1] -= item[i].size;
    }
    for (int r = 1; r < nrun; r++) live[r] += live[r - 1];
    LiveTree t;
    tree_init(&t, live, nrun);
    Key *key = malloc((size_t)n * sizeof *key);
    for (int i = 0; i < n; i++) key[i] = (Key){item[i].size, 0, i};
    qsort(key, (size_t)n, sizeof *key, key_cmp); /* largest first, then lower index */
    int *sorted = malloc((size_t)n * sizeof *sorted), *next = malloc((size_t)n * sizeof *next);
    for (int i = 0; i < n; i++) sorted[i] = key[i].idx;
    free(key);
    /* the unplaced items: a singly linked list over positions in sorted[], -1 ends it */
    for (int p = 0; p < n; p++) next[p] = p + 1 < n ? p + 1 : -1;
    int head = 0;
    while (k < n) {
      int64_t most;
      int best_s = run[tree_argmax(&t, &most)];
      if (most == 0) break;
      int prev = -1, p = head;
      while (item[sorted[p]].first > best_s || item[sorted[p]].last < best_s) prev = p, p = next[p];
      if (prev < 0) head = next[p];
      else next[prev] = next[p];
      int pick = sorted[p];
      done[pick] = 1;
      order[k++] = pick;
      tree_add(&t, 1, 0, t.size - 1, rfirst[pick], rlast[pick], -item[pick].size);
    }
    free(sorted);
    free(next);
    free(t.mx);
    free(t.add);
    free(live);
    free(run);
    free(rfirst);
    free(rlast);
  }
  for (int i = 0; i < n; i++)
    if (!done[i]) order[k++] = i;
  free(done);
}

void mem_order_items(const MemItem *item, int n, int nstep, MemOrder o, int *order) {
  if (o == MEM_ORDER_LIVE) order_by_live(item, n, nstep, order);
  else order_by_keys(item, n, o, order);
}
