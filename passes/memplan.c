/* memplan.c — the memory planner (see memplan.h): in-place merging, the
 * lower bound, best-fit placement for each ordering, and the statistics. */
#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "passes/memplan.h"
#include "passes/memplan_internal.h"

int mem_fail(char *err, size_t size, const char *fmt, ...) {
  if (err && size) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, size, fmt, ap);
    va_end(ap);
  }
  return -1;
}

static int64_t round_up(int64_t bytes) { return (bytes + MEM_ALIGN - 1) / MEM_ALIGN * MEM_ALIGN; }

const char *mem_order_name(MemOrder o) {
  static const char *const names[MEM_ORDER_COUNT] = {"size", "length", "conflicts", "live"};
  return o >= 0 && o < MEM_ORDER_COUNT ? names[o] : "?";
}

static int validate(const MemBuffer *buf, int nbuf, const MemInPlace *ip, int nip, char *err, size_t size) {
  if (nbuf < 0 || nip < 0) return mem_fail(err, size, "memory plan: negative buffer or candidate count");
  if (nip > 0 && !ip) return mem_fail(err, size, "memory plan: %d in-place candidates but no array", nip);
  for (int i = 0; i < nbuf; i++) {
    if (buf[i].bytes < 0)
      return mem_fail(err, size, "memory plan: buffer %d has a negative size (%" PRId64 " bytes)", i, buf[i].bytes);
    if (buf[i].first < 0 || buf[i].first > buf[i].last)
      return mem_fail(err, size, "memory plan: buffer %d has an empty or negative interval [%d, %d]", i, buf[i].first,
                      buf[i].last);
  }
  for (int k = 0; k < nip; k++)
    if (ip[k].out < 0 || ip[k].out >= nbuf || ip[k].in < 0 || ip[k].in >= nbuf || ip[k].out == ip[k].in)
      return mem_fail(err, size, "memory plan: in-place candidate %d (out %d, in %d) names no pair of buffers", k,
                      ip[k].out, ip[k].in);
  return 0;
}

static int find_root(int *parent, int i) {
  while (parent[i] != i) i = parent[i] = parent[parent[i]];
  return i;
}

/* Accepts the candidates that are safe by lifetime (see MemInPlace) and
 * sets share[i] to the first buffer of i's chain. Merging always hangs the
 * output's chain under the input's, so a chain's first buffer is its
 * earliest. Returns the number accepted. */
static int merge_in_place(const MemBuffer *buf, int nbuf, const MemInPlace *ip, int nip, int *share) {
  char *in_taken = calloc((size_t)nbuf + 1, 1), *out_merged = calloc((size_t)nbuf + 1, 1);
  for (int i = 0; i < nbuf; i++) share[i] = i;
  int n = 0;
  for (int k = 0; k < nip; k++) {
    const MemBuffer *o = &buf[ip[k].out], *x = &buf[ip[k].in];
    if (o->pinned || x->pinned || o->bytes != x->bytes || x->last != o->first || x->first >= o->first) continue;
    if (in_taken[ip[k].in] || out_merged[ip[k].out]) continue;
    int ro = find_root(share, ip[k].out), rx = find_root(share, ip[k].in);
    if (ro == rx) continue;
    share[ro] = rx;
    in_taken[ip[k].in] = out_merged[ip[k].out] = 1;
    n++;
  }
  for (int i = 0; i < nbuf; i++) share[i] = find_root(share, i);
  free(in_taken);
  free(out_merged);
  return n;
}

/* Max over steps of the bytes of the items live there (difference array). */
static int64_t lower_bound(const MemItem *item, int n, int nstep) {
  int64_t *delta = calloc((size_t)nstep + 1, sizeof *delta);
  for (int i = 0; i < n; i++) {
    delta[item[i].first] += item[i].size;
    delta[item[i].last + 1] -= item[i].size;
  }
  int64_t live = 0, max = 0;
  for (int s = 0; s < nstep; s++) {
    live += delta[s];
    if (live > max) max = live;
  }
  free(delta);
  return max;
}

/* A placed item as place() scans them: its offset and extent in space and
 * time side by side, so the scan reads one array front to back. */
typedef struct {
  int64_t lo, hi;  /* [lo, hi): its bytes in the arena */
  int first, last; /* its steps */
} Placed;

/* Places the items in 'order' one by one, each at the start of the
 * smallest gap that fits it among the already placed items that overlap it
 * in time, else after the highest of them (TFLite's best fit). Writes
 * off[item] and returns the arena size. 'placed' (scratch of n entries)
 * holds the placed items sorted by offset (ties: in the order placed), so
 * the overlapping ones come out in address order without sorting. */
static int64_t place(const MemItem *item, int n, const int *order, int64_t *off, Placed *placed) {
  int nplaced = 0;
  int64_t arena = 0;
  for (int k = 0; k < n; k++) {
    const MemItem *it = &item[order[k]];
    off[order[k]] = 0;
    if (it->size == 0) continue;
    int64_t cur = 0, best = -1, best_gap = INT64_MAX;
    for (int p = 0; p < nplaced; p++) {
      const Placed *q = &placed[p];
      if (q->last < it->first || it->last < q->first) continue;
      int64_t gap = q->lo - cur;
      if (gap >= it->size && gap < best_gap) {
        best = cur, best_gap = gap;
        if (gap == it->size) break; /* a perfect fit: nothing beats it */
      }
      if (q->hi > cur) cur = q->hi;
    }
    if (best < 0) best = cur;
    off[order[k]] = best;
    /* insert after the placed items at lower or equal offsets */
    int lo = 0, hi = nplaced;
    while (lo < hi) {
      int mid = lo + (hi - lo) / 2;
      if (placed[mid].lo <= best) lo = mid + 1;
      else hi = mid;
    }
    memmove(placed + lo + 1, placed + lo, (size_t)(nplaced - lo) * sizeof *placed);
    placed[lo] = (Placed){best, best + it->size, it->first, it->last};
    nplaced++;
    if (best + it->size > arena) arena = best + it->size;
  }
  return arena;
}

/* Tries the orderings in turn, keeping the smallest arena (the earlier
 * ordering on ties) and stopping at the lower bound. Writes the winning
 * offsets to best_off. */
static void search(const MemItem *item, int n, int nstep, MemPlan *plan, int64_t *best_off) {
  int *order = malloc((size_t)n * sizeof *order);
  Placed *placed = malloc((size_t)n * sizeof *placed);
  int64_t *off = malloc((size_t)n * sizeof *off);
  plan->arena_bytes = -1;
  for (int o = 0; o < MEM_ORDER_COUNT; o++) {
    mem_order_items(item, n, nstep, (MemOrder)o, order);
    int64_t arena = place(item, n, order, off, placed);
    plan->order_bytes[o] = arena;
    if (plan->arena_bytes < 0 || arena < plan->arena_bytes) {
      plan->arena_bytes = arena;
      plan->order = (MemOrder)o;
      memcpy(best_off, off, (size_t)n * sizeof *off);
    }
    if (arena == plan->lower_bound) break;
  }
  free(order);
  free(placed);
  free(off);
}

int mem_plan(const MemBuffer *buf, int nbuf, const MemInPlace *inplace, int ninplace, MemPlan *plan,
             char *err, size_t errsize) {
  memset(plan, 0, sizeof *plan);
  if (validate(buf, nbuf, inplace, ninplace, err, errsize)) return -1;
  plan->nbuf = nbuf;
  plan->offset = malloc(((size_t)nbuf + 1) * sizeof *plan->offset);
  plan->share = malloc(((size_t)nbuf + 1) * sizeof *plan->share);
  plan->nmerged = merge_in_place(buf, nbuf, inplace, ninplace, plan->share);

  /* One item per chain, in increasing id of its first buffer. */
  int *item_of = malloc(((size_t)nbuf + 1) * sizeof *item_of);
  MemItem *item = malloc(((size_t)nbuf + 1) * sizeof *item);
  int n = 0, nstep = 0;
  for (int i = 0; i < nbuf; i++) {
    item_of[i] = -1;
    if (buf[i].pinned) {
      plan->npinned++;
      continue;
    }
    plan->no_reuse_bytes += round_up(buf[i].bytes);
    if (plan->share[i] == i) {
      item_of[i] = n;
      item[n++] = (MemItem){i, round_up(buf[i].bytes), buf[i].first, buf[i].last};
    }
  }
  for (int i = 0; i < nbuf; i++) {
    if (buf[i].pinned || plan->share[i] == i) continue;
    MemItem *it = &item[item_of[plan->share[i]]];
    if (buf[i].first < it->first) it->first = buf[i].first;
    if (buf[i].last > it->last) it->last = buf[i].last;
  }
  for (int k = 0; k < n; k++)
    if (item[k].last + 1 > nstep) nstep = item[k].last + 1;
  plan->narena = n;
  plan->lower_bound = lower_bound(item, n, nstep);

  int64_t *off = malloc(((size_t)n + 1) * sizeof *off);
  if (n > 0) search(item, n, nstep, plan, off);
  for (int i = 0; i < nbuf; i++)
    plan->offset[i] = buf[i].pinned ? -1 : off[item_of[plan->share[i]]];
  free(off);
  free(item);
  free(item_of);
  return 0;
}

int mem_plan_share(const MemBuffer *buf, int nbuf, const MemInPlace *inplace, int ninplace, int *share, char *err,
                   size_t errsize) {
  if (validate(buf, nbuf, inplace, ninplace, err, errsize)) return -1;
  return merge_in_place(buf, nbuf, inplace, ninplace, share);
}

void mem_plan_free(MemPlan *plan) {
  free(plan->offset);
  free(plan->share);
  memset(plan, 0, sizeof *plan);
}

static double mib(int64_t bytes) { return (double)bytes / (1024.0 * 1024.0); }

void mem_print_stats(const MemPlan *p, FILE *out) {
  double eff = p->arena_bytes > 0 ? 100.0 * (double)p->lower_bound / (double)p->arena_bytes : 100.0;
  fprintf(out, "arena          %12" PRId64 " bytes  %9.2f MiB  (ordering: %s)\n", p->arena_bytes,
          mib(p->arena_bytes), mem_order_name(p->order));
  fprintf(out, "lower bound    %12" PRId64 " bytes  %9.2f MiB  (max live bytes over the steps)\n",
          p->lower_bound, mib(p->lower_bound));
  fprintf(out, "efficiency     %11.1f%%  (lower bound / arena)\n", eff);
  fprintf(out, "no-reuse sum   %12" PRId64 " bytes  %9.2f MiB", p->no_reuse_bytes, mib(p->no_reuse_bytes));
  if (p->arena_bytes > 0) fprintf(out, "  (%.2fx the arena)", (double)p->no_reuse_bytes / (double)p->arena_bytes);
  fputc('\n', out);
  fprintf(out, "buffers        %d in the arena (%d merged in place), %d pinned\n", p->nbuf - p->npinned,
          p->nmerged, p->npinned);
}
