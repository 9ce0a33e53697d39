/* test_memplan.c — the memory planner: hand-made cases with known optimal
 * packings, random training-like traces against the lower bound, in-place
 * merging, determinism, errors, the buffers of a graph under a fusion plan,
 * and the real models (GPT and dVAE bench, forward, with gradients and with
 * the AdamW step). Every plan is checked pair by pair: no two buffers live at
 * a common step overlap unless they were merged in place. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "frontend/frontend.h"
#include "passes/fuse.h"
#include "passes/memplan.h"
#include "passes/memplan_internal.h" /* mem_order_items, against the reference orderings below */
#include "passes/optimizer.h"
#include "passes/passes.h"
#include "tests/util.h"

#define U 64 /* one alignment unit */
#define LOC ((SrcLoc){"test", 1, 1})

static int64_t rounded(int64_t b) { return (b + U - 1) / U * U; }

static int max_step(const MemBuffer *b, int n) {
  int m = 0;
  for (int i = 0; i < n; i++)
    if (b[i].last > m) m = b[i].last;
  return m;
}

/* Checks a plan from first principles: alignment, bounds, the pairwise
 * no-overlap rule (buffers that share storage meet at exactly one step, the
 * one where the input dies and the output is written), and the lower bound
 * recomputed over storages. The loops test with plain ifs: Check records
 * every passing ck_assert, which would dominate millions of pair checks. */
static void assert_valid(const MemBuffer *b, int n, const MemPlan *p) {
  ck_assert_int_eq(p->nbuf, n);
  ck_assert_int_eq(p->arena_bytes % U, 0);
  for (int i = 0; i < n; i++) {
    if (b[i].pinned) {
      if (p->offset[i] != -1) ck_abort_msg("pinned buffer %d at %lld", i, (long long)p->offset[i]);
      continue;
    }
    if (p->offset[i] < 0 || p->offset[i] % U != 0) ck_abort_msg("buffer %d at %lld", i, (long long)p->offset[i]);
    if (p->offset[i] + rounded(b[i].bytes) > p->arena_bytes) ck_abort_msg("buffer %d past the arena", i);
  }
  for (int i = 0; i < n; i++)
    for (int j = i + 1; j < n; j++) {
      if (b[i].pinned || b[j].pinned || b[i].last < b[j].first || b[j].last < b[i].first) continue;
      if (p->share[i] == p->share[j]) {
        if (p->offset[i] != p->offset[j]) ck_abort_msg("shared %d and %d at different offsets", i, j);
        if (b[i].last != b[j].first && b[j].last != b[i].first)
          ck_abort_msg("shared %d and %d overlap in time", i, j);
        continue;
      }
      int64_t lo_i = p->offset[i], hi_i = lo_i + b[i].bytes, lo_j = p->offset[j], hi_j = lo_j + b[j].bytes;
      if (!(hi_i <= lo_j || hi_j <= lo_i || b[i].bytes == 0 || b[j].bytes == 0))
        ck_abort_msg("live buffers %d [%lld, %lld) and %d [%lld, %lld) overlap", i, (long long)lo_i,
                     (long long)hi_i, j, (long long)lo_j, (long long)hi_j);
    }
  /* Lower bound: per step, the distinct storages live there. */
  int nstep = max_step(b, n) + 1;
  int64_t lb = 0;
  char *seen = calloc((size_t)n + 1, 1);
  for (int s = 0; s < nstep; s++) {
    int64_t live = 0;
    memset(seen, 0, (size_t)n);
    for (int i = 0; i < n; i++)
      if (!b[i].pinned && b[i].first <= s && s <= b[i].last && !seen[p->share[i]]) {
        seen[p->share[i]] = 1;
        live += rounded(b[i].bytes);
      }
    if (live > lb) lb = live;
  }
  free(seen);
  ck_assert_int_eq(p->lower_bound, lb);
  ck_assert_int_ge(p->arena_bytes, p->lower_bound);
}

static MemPlan plan_ok(const MemBuffer *b, int n, const MemInPlace *ip, int nip) {
  MemPlan p;
  char err[256] = "";
  ck_assert_msg(mem_plan(b, n, ip, nip, &p, err, sizeof err) == 0, "%s", err);
  assert_valid(b, n, &p);
  return p;
}

/* ---- hand-made cases ---- */

/* A chain of neighbours: the bound (5 units at steps 1 and 2) is reachable
 * and the first ordering finds it. */
START_TEST(chain_reaches_the_bound) {
  MemBuffer b[] = {{3 * U, 0, 1, false}, {2 * U, 1, 2, false}, {3 * U, 2, 3, false}, {1 * U, 3, 4, false}};
  MemPlan p = plan_ok(b, 4, NULL, 0);
  ck_assert_int_eq(p.lower_bound, 5 * U);
  ck_assert_int_eq(p.arena_bytes, 5 * U);
  ck_assert_int_eq(p.order, MEM_ORDER_SIZE);
  ck_assert_int_eq(p.order_bytes[MEM_ORDER_LENGTH], 0); /* stopped at the bound */
  ck_assert_int_eq(p.no_reuse_bytes, 9 * U);
  mem_plan_free(&p);
}
END_TEST

/* Everything live at once: nothing can share, the arena is the sum. */
START_TEST(all_live_at_once_is_the_sum) {
  MemBuffer b[] = {{U, 0, 3, false}, {2 * U, 1, 2, false}, {4 * U, 2, 2, false}};
  MemPlan p = plan_ok(b, 3, NULL, 0);
  ck_assert_int_eq(p.arena_bytes, 7 * U);
  ck_assert_int_eq(p.lower_bound, 7 * U);
  mem_plan_free(&p);
}
END_TEST

/* Largest-first places the 3-unit buffer at 0 and then wastes a unit; the
 * bound (6 units at steps 1 and 2) needs it above the 2-unit buffer [1, 3],
 * which longest-interval-first does. */
START_TEST(a_second_ordering_beats_largest_first) {
  MemBuffer b[] = {{3 * U, 3, 4, false}, {2 * U, 1, 3, false}, {2 * U, 0, 1, false},
                   {2 * U, 1, 2, false}, {2 * U, 2, 2, false}};
  MemPlan p = plan_ok(b, 5, NULL, 0);
  ck_assert_int_eq(p.lower_bound, 6 * U);
  ck_assert_int_eq(p.order_bytes[MEM_ORDER_SIZE], 7 * U);
  ck_assert_int_eq(p.arena_bytes, 6 * U);
  ck_assert_int_eq(p.order, MEM_ORDER_LENGTH);
  mem_plan_free(&p);
}
END_TEST

/* Best fit: largest first puts A (2 units) at 0, then B, C, D at 2, 3, 4
 * (all live at step 0: the bound, 5 units). E arrives when A and C are
 * dead: the holes are 2 units at 0 and 1 unit at 3, and E takes the
 * smaller one (first fit would take 0). */
START_TEST(best_fit_takes_the_smallest_gap) {
  MemBuffer b[] = {{2 * U, 0, 0, false}, {U, 0, 2, false}, {U, 0, 0, false}, {U, 0, 2, false}, {U, 1, 2, false}};
  MemPlan p = plan_ok(b, 5, NULL, 0);
  ck_assert_int_eq(p.lower_bound, 5 * U);
  ck_assert_int_eq(p.arena_bytes, 5 * U);
  ck_assert_int_eq(p.order, MEM_ORDER_SIZE);
  int64_t want[] = {0, 2 * U, 3 * U, 4 * U, 3 * U};
  for (int i = 0; i < 5; i++) ck_assert_int_eq(p.offset[i], want[i]);
  mem_plan_free(&p);
}
END_TEST

/* Pinned buffers are outside the arena; sizes round up to 64 bytes. */
START_TEST(pinned_and_alignment) {
  MemBuffer b[] = {{1 << 20, 0, 5, true}, {1, 0, 1, false}, {65, 0, 1, false}, {3, 1, 2, false}, {0, 0, 2, false}};
  MemPlan p = plan_ok(b, 5, NULL, 0);
  ck_assert_int_eq(p.npinned, 1);
  ck_assert_int_eq(p.offset[0], -1);
  ck_assert_int_eq(p.lower_bound, 4 * U);  /* step 1: 64 + 128 + 64 */
  ck_assert_int_eq(p.arena_bytes, 4 * U);
  ck_assert_int_eq(p.no_reuse_bytes, 4 * U);
  mem_plan_free(&p);
}
END_TEST

START_TEST(empty_input) {
  MemPlan p = plan_ok(NULL, 0, NULL, 0);
  ck_assert_int_eq(p.arena_bytes, 0);
  ck_assert_int_eq(p.lower_bound, 0);
  mem_plan_free(&p);
  MemBuffer b[] = {{100, 0, 1, true}};
  p = plan_ok(b, 1, NULL, 0);
  ck_assert_int_eq(p.arena_bytes, 0);
  mem_plan_free(&p);
}
END_TEST

START_TEST(bad_input_is_an_error) {
  MemPlan p;
  char err[256];
  MemBuffer neg[] = {{-4, 0, 1, false}};
  ck_assert_int_eq(mem_plan(neg, 1, NULL, 0, &p, err, sizeof err), -1);
  ck_assert_ptr_nonnull(strstr(err, "buffer 0 has a negative size"));
  ck_assert_ptr_null(p.offset);
  MemBuffer backwards[] = {{4, 0, 1, false}, {4, 3, 2, false}};
  ck_assert_int_eq(mem_plan(backwards, 2, NULL, 0, &p, err, sizeof err), -1);
  ck_assert_ptr_nonnull(strstr(err, "buffer 1 has an empty or negative interval [3, 2]"));
  MemInPlace bad[] = {{0, 7}};
  ck_assert_int_eq(mem_plan(neg + 0, 0, bad, 1, &p, err, sizeof err), -1);
  ck_assert_ptr_nonnull(strstr(err, "in-place candidate 0 (out 0, in 7)"));
  ck_assert_int_eq(mem_plan(backwards, 1, bad, 1, &p, NULL, 0), -1); /* err may be NULL */
}
END_TEST

/* ---- in place ---- */

/* a -> b -> c, each elementwise on the last use of the one before: one
 * storage for all three, whatever order the candidates come in. */
START_TEST(in_place_chain_is_one_storage) {
  MemBuffer b[] = {{1000, 0, 1, false}, {1000, 1, 2, false}, {1000, 2, 3, false}};
  MemInPlace fwd[] = {{1, 0}, {2, 1}}, rev[] = {{2, 1}, {1, 0}};
  for (int k = 0; k < 2; k++) {
    MemPlan p = plan_ok(b, 3, k ? rev : fwd, 2);
    ck_assert_int_eq(p.nmerged, 2);
    ck_assert_int_eq(p.narena, 1);
    for (int i = 0; i < 3; i++) ck_assert_int_eq(p.share[i], 0);
    ck_assert_int_eq(p.arena_bytes, 1024);
    ck_assert_int_eq(p.lower_bound, 1024);
    ck_assert_int_eq(p.no_reuse_bytes, 3 * 1024);
    mem_plan_free(&p);
  }
  MemPlan p = plan_ok(b, 3, NULL, 0);
  ck_assert_int_eq(p.arena_bytes, 2048); /* without: two live at each step */
  mem_plan_free(&p);
}
END_TEST

/* Candidates that are unsafe by lifetime are refused. */
START_TEST(in_place_refusals) {
  MemBuffer b[] = {
      {256, 0, 2, false}, /* 0: read again at step 2 after 1 is written at 1 */
      {256, 1, 3, false}, /* 1 */
      {128, 0, 3, false}, /* 2: other size */
      {256, 3, 4, false}, /* 3 */
      {256, 0, 3, true},  /* 4: pinned */
      {256, 3, 4, false}, /* 5: second output wanting 1 */
      {256, 3, 3, false}, /* 6: written at 3 like 7 */
      {256, 3, 4, false}, /* 7 */
  };
  MemInPlace ip[] = {
      {1, 0}, /* 0 still read at 2 > 1: refused */
      {3, 2}, /* size differs: refused */
      {3, 4}, /* pinned input: refused */
      {3, 1}, /* accepted */
      {5, 1}, /* 1 already taken: refused */
      {3, 6}, /* 3 already took an input: refused */
      {7, 6}, /* 6 written at the same step as 7: refused */
  };
  MemPlan p = plan_ok(b, 8, ip, 7);
  ck_assert_int_eq(p.nmerged, 1);
  ck_assert_int_eq(p.share[3], 1);
  for (int i = 0; i < 8; i++)
    if (i != 3) ck_assert_int_eq(p.share[i], i);
  mem_plan_free(&p);
}
END_TEST

/* ---- random training-like traces ---- */

static uint64_t rng_next(uint64_t *s) {
  *s ^= *s << 13, *s ^= *s >> 7, *s ^= *s << 17;
  return *s;
}

/* Forward layers save activations until their backward step (freed in
 * reverse order), make short-lived temporaries and an elementwise result
 * that may reuse a temporary in place; backward steps make gradients read
 * by the next backward step. Parameters are pinned. */
static int make_trace(uint64_t seed, int layers, MemBuffer *b, MemInPlace *ip, int *nip) {
  uint64_t s = seed * 0x9E3779B97F4A7C15ull + 1;
  int n = 0, step = 0, nsteps = 2 * layers + 1;
  *nip = 0;
  int64_t unit = U * (int64_t)(16 + rng_next(&s) % 240);
  static const int mult[] = {1, 1, 2, 3, 4, 8};
  for (int l = 0; l < layers; l++, step++) {
    int bwd = nsteps - 1 - l;
    b[n++] = (MemBuffer){(int64_t)(1 + rng_next(&s) % 8) * unit * 4, 0, nsteps, true}; /* weight */
    int nsave = 1 + (int)(rng_next(&s) % 3);
    for (int k = 0; k < nsave; k++)
      b[n++] = (MemBuffer){mult[rng_next(&s) % 6] * unit + (int64_t)(rng_next(&s) % 97), step, bwd, false};
    int64_t t = mult[rng_next(&s) % 6] * unit;
    int tmp = n;
    b[n++] = (MemBuffer){t, step, step + 1, false};
    if (rng_next(&s) % 2) { /* an elementwise op at step+1 on the temporary's last use */
      ip[(*nip)++] = (MemInPlace){n, tmp};
      b[n++] = (MemBuffer){t, step + 1, step + 1 + (int)(rng_next(&s) % 3), false};
    }
  }
  b[n++] = (MemBuffer){U, step, step + 1, false}; /* the loss */
  step++;
  for (int l = layers - 1; l >= 0; l--, step++) {
    b[n++] = (MemBuffer){mult[rng_next(&s) % 6] * unit, step, step + 1 < nsteps ? step + 1 : step, false};
    b[n++] = (MemBuffer){mult[rng_next(&s) % 6] * unit, step, step, false}; /* scratch */
  }
  return n;
}

START_TEST(random_traces_within_5_percent) {
  enum { LAYERS = 24, CAP = LAYERS * 10 };
  MemBuffer b[CAP];
  MemInPlace ip[CAP];
  double worst = 0, sum = 0;
  for (int t = 0; t < 20; t++) {
    int nip, n = make_trace((uint64_t)t + 1, LAYERS, b, ip, &nip);
    ck_assert_int_le(n, CAP);
    MemPlan p = plan_ok(b, n, ip, nip);
    double r = (double)p.arena_bytes / (double)p.lower_bound;
    ck_assert_msg(r <= 1.05, "trace %d: arena %lld is %.3fx the bound %lld", t, (long long)p.arena_bytes, r,
                  (long long)p.lower_bound);
    ck_assert_int_lt(p.arena_bytes, p.no_reuse_bytes);
    if (r > worst) worst = r;
    sum += r;
    mem_plan_free(&p);
  }
  printf("random traces: arena / lower bound mean %.4f, max %.4f\n", sum / 20, worst);
}
END_TEST

START_TEST(plans_are_deterministic) {
  MemBuffer b[300];
  MemInPlace ip[300];
  int nip, n = make_trace(7, 24, b, ip, &nip);
  MemPlan p = plan_ok(b, n, ip, nip), q = plan_ok(b, n, ip, nip);
  ck_assert_int_eq(p.arena_bytes, q.arena_bytes);
  ck_assert_int_eq(p.order, q.order);
  ck_assert(memcmp(p.offset, q.offset, (size_t)n * sizeof *p.offset) == 0);
  ck_assert(memcmp(p.share, q.share, (size_t)n * sizeof *p.share) == 0);
  mem_plan_free(&p);
  mem_plan_free(&q);
}
END_TEST

START_TEST(stats_text) {
  MemBuffer b[] = {{3 * U, 0, 1, false}, {2 * U, 1, 2, false}, {3 * U, 2, 3, false}, {U, 0, 3, true}};
  MemPlan p = plan_ok(b, 4, NULL, 0);
  char *text = NULL;
  size_t len = 0;
  FILE *f = open_memstream(&text, &len);
  mem_print_stats(&p, f);
  fclose(f);
  ck_assert_msg(strstr(text, "arena                   320 bytes") != NULL, "%s", text);
  ck_assert_msg(strstr(text, "lower bound             320 bytes") != NULL, "%s", text);
  ck_assert_msg(strstr(text, "efficiency           100.0%") != NULL, "%s", text);
  ck_assert_msg(strstr(text, "no-reuse sum            512 bytes") != NULL, "%s", text);
  ck_assert_msg(strstr(text, "3 in the arena (0 merged in place), 1 pinned") != NULL, "%s", text);
  free(text);
  mem_plan_free(&p);
}
END_TEST

/* ---- the fast paths against plain reference versions ---- */

/* The 'live' ordering as first written: rescan every step and every item
 * for each pick (O(n * (steps + n))). */
static void ref_order_live(const MemItem *item, int n, int nstep, int *order) {
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

/* Best fit as first written (placed items by index, offsets looked up). */
static int64_t ref_place(const MemItem *item, int n, const int *order) {
  int64_t *off = calloc((size_t)n + 1, sizeof *off), arena = 0;
  int *placed = malloc(((size_t)n + 1) * sizeof *placed), nplaced = 0;
  for (int k = 0; k < n; k++) {
    const MemItem *it = &item[order[k]];
    if (it->size == 0) continue;
    int64_t cur = 0, best = -1, best_gap = INT64_MAX;
    for (int p = 0; p < nplaced; p++) {
      const MemItem *q = &item[placed[p]];
      if (q->last < it->first || it->last < q->first) continue;
      int64_t lo = off[placed[p]], gap = lo - cur;
      if (gap >= it->size && gap < best_gap) {
        best = cur, best_gap = gap;
        if (gap == it->size) break;
      }
      if (lo + q->size > cur) cur = lo + q->size;
    }
    if (best < 0) best = cur;
    off[order[k]] = best;
    int at = 0;
    while (at < nplaced && off[placed[at]] <= best) at++;
    memmove(placed + at + 1, placed + at, (size_t)(nplaced - at) * sizeof *placed);
    placed[at] = order[k];
    nplaced++;
    if (best + it->size > arena) arena = best + it->size;
  }
  free(off);
  free(placed);
  return arena;
}

/* Random items: sizes from a few values (ties), zero sizes, single steps,
 * long and short intervals. */
static int random_items(uint64_t *s, MemItem *item, int n, int nstep) {
  static const int64_t sizes[] = {0, U, U, 2 * U, 3 * U, 8 * U, 64 * U};
  for (int i = 0; i < n; i++) {
    int a = (int)(rng_next(s) % (uint64_t)nstep);
    int len = (int)(rng_next(s) % 4 == 0 ? rng_next(s) % (uint64_t)nstep : rng_next(s) % 4);
    int b = a + len < nstep ? a + len : nstep - 1;
    item[i] = (MemItem){i, sizes[rng_next(s) % 7] + (int64_t)(rng_next(s) % 3) * U, a, b};
  }
  return n;
}

/* The segment-tree 'live' ordering picks exactly what rescanning picks. */
START_TEST(live_order_matches_the_rescan) {
  enum { N = 300 };
  MemItem item[N];
  int got[N], want[N];
  uint64_t s = 12345;
  for (int t = 0; t < 200; t++) {
    int n = 1 + (int)(rng_next(&s) % N), nstep = 1 + (int)(rng_next(&s) % 120);
    random_items(&s, item, n, nstep);
    mem_order_items(item, n, nstep, MEM_ORDER_LIVE, got);
    ref_order_live(item, n, nstep, want);
    for (int i = 0; i < n; i++)
      if (got[i] != want[i]) ck_abort_msg("case %d (%d items, %d steps): pick %d is %d, want %d", t, n, nstep, i,
                                          got[i], want[i]);
  }
  mem_order_items(item, 0, 0, MEM_ORDER_LIVE, got); /* nothing to order */
}
END_TEST

/* Every ordering's arena as the reference best fit gives it, and the
 * in-place merges alone (mem_plan_share) as mem_plan makes them. */
static void check_against_reference(const MemBuffer *b, int n, const MemInPlace *ip, int nip, const MemPlan *p) {
  int *share = malloc(((size_t)n + 1) * sizeof *share);
  char err[256];
  ck_assert_int_eq(mem_plan_share(b, n, ip, nip, share, err, sizeof err), p->nmerged);
  for (int i = 0; i < n; i++) ck_assert_int_eq(share[i], p->share[i]);
  /* the items as mem_plan builds them: one per chain, by its first buffer */
  MemItem *item = malloc(((size_t)n + 1) * sizeof *item);
  int *item_of = malloc(((size_t)n + 1) * sizeof *item_of), *order = malloc(((size_t)n + 1) * sizeof *order);
  int m = 0, nstep = 0;
  for (int i = 0; i < n; i++) {
    item_of[i] = -1;
    if (b[i].pinned || share[i] != i) continue;
    item_of[i] = m;
    item[m++] = (MemItem){i, rounded(b[i].bytes), b[i].first, b[i].last};
  }
  for (int i = 0; i < n; i++)
    if (!b[i].pinned && share[i] != i) {
      MemItem *it = &item[item_of[share[i]]];
      if (b[i].first < it->first) it->first = b[i].first;
      if (b[i].last > it->last) it->last = b[i].last;
    }
  for (int k = 0; k < m; k++)
    if (item[k].last + 1 > nstep) nstep = item[k].last + 1;
  for (int o = 0; o < MEM_ORDER_COUNT; o++) {
    if (p->order_bytes[o] == 0) continue; /* not tried */
    if (o == MEM_ORDER_LIVE) ref_order_live(item, m, nstep, order);
    else mem_order_items(item, m, nstep, (MemOrder)o, order);
    ck_assert_int_eq(ref_place(item, m, order), p->order_bytes[o]);
  }
  free(share);
  free(item);
  free(item_of);
  free(order);
}

START_TEST(placement_matches_the_reference) {
  enum { LAYERS = 24, CAP = LAYERS * 10 };
  MemBuffer b[CAP];
  MemInPlace ip[CAP];
  for (int t = 0; t < 20; t++) {
    int nip, n = make_trace((uint64_t)t + 100, LAYERS, b, ip, &nip);
    MemPlan p = plan_ok(b, n, ip, nip);
    check_against_reference(b, n, ip, nip, &p);
    mem_plan_free(&p);
  }
  char err[256];
  int share[2];
  MemBuffer bad[] = {{U, 2, 1, false}, {U, 0, 0, false}};
  ck_assert_int_eq(mem_plan_share(bad, 2, NULL, 0, share, err, sizeof err), -1);
  ck_assert_msg(strstr(err, "empty or negative interval") != NULL, "%s", err);
}
END_TEST

/* ---- buffers of a graph ---- */

static IrShape shape2(int64_t a, int64_t b) { return ir_shape_make(2, (int64_t[]){a, b}); }

/* x -> a = exp(x) -> b = neg(a) -> c = tanh(b) -> s = sum(c) (the output),
 * plus a state t updated to t + s. */
static IrGraph *chain_graph(void) {
  IrGraph *g = ir_graph_new("chain");
  int x = ir_input(g, "x", IR_F32, shape2(4, 8), LOC);
  int a = ir_unary(g, OP_EXP, x, LOC);
  int b = ir_unary(g, OP_NEG, a, LOC);
  int c = ir_unary(g, OP_TANH, b, LOC);
  int s = ir_reduce(g, OP_SUM, c, 3, false, LOC);
  int t = ir_state(g, "t", ir_shape_make(0, NULL), LOC);
  int u = ir_binary(g, OP_ADD, t, s, LOC);
  ck_assert_msg(u >= 0 && ir_add_update(g, t, u, LOC) == 0, "%s", g->error);
  ir_set_outputs(g, &s, NULL, 1);
  ck_assert_int_eq(g->n, 7);
  return g;
}

START_TEST(graph_buffers_without_fusion) {
  IrGraph *g = chain_graph();
  MemGraphBuffers gb;
  char err[256];
  ck_assert_msg(mem_graph_buffers(g, NULL, NULL, &gb, err, sizeof err) == 0, "%s", err);
  ck_assert_int_eq(gb.nstep, 5); /* exp neg tanh sum add */
  ck_assert_int_eq(gb.nbuf, 7);
  const MemBuffer *x = &gb.buf[gb.buf_of_node[0]], *a = &gb.buf[gb.buf_of_node[1]], *b = &gb.buf[gb.buf_of_node[2]],
                  *s = &gb.buf[gb.buf_of_node[4]], *u = &gb.buf[gb.buf_of_node[6]];
  ck_assert(x->pinned && s->pinned && !a->pinned && !u->pinned);
  ck_assert_int_eq(a->first, 0);
  ck_assert_int_eq(a->last, 1);
  ck_assert_int_eq(b->first, 1);
  ck_assert_int_eq(b->last, 2);
  ck_assert_int_eq(s->last, 5); /* graph output: read after the last step */
  ck_assert_int_eq(u->first, 4);
  ck_assert_int_eq(u->last, 5); /* update value: copied after the last step */
  ck_assert_int_eq(a->bytes, 4 * 8 * 4);
  /* exp(x), neg(a), tanh(b) are candidates; add(t, s) reads scalars of its
   * own shape too (t pinned, s pinned: the planner refuses those). */
  MemPlan p = plan_ok(gb.buf, gb.nbuf, gb.inplace, gb.ninplace);
  ck_assert_int_eq(p.nmerged, 2); /* b into a, c into b; x is pinned */
  ck_assert_int_eq(p.share[gb.buf_of_node[3]], gb.buf_of_node[1]);
  ck_assert_int_eq(p.arena_bytes, 128); /* a's chain [0, 3], then u [4, 5] in the same place */
  ck_assert_int_eq(p.lower_bound, 128);
  mem_plan_free(&p);
  mem_graph_buffers_free(&gb);
  ir_graph_free(g);
}
END_TEST

/* Two independent branches a = exp(x), b = neg(y) joined by c = a + b: the
 * order decides which one lives longer. */
START_TEST(graph_buffers_follow_the_given_order) {
  IrGraph *g = ir_graph_new("branches");
  int x = ir_input(g, "x", IR_F32, shape2(2, 8), LOC), y = ir_input(g, "y", IR_F32, shape2(2, 8), LOC);
  int a = ir_unary(g, OP_EXP, x, LOC), b = ir_unary(g, OP_NEG, y, LOC);
  int c = ir_binary(g, OP_ADD, a, b, LOC);
  ir_set_outputs(g, &c, NULL, 1);
  int orders[2][5] = {{x, y, a, b, c}, {y, x, b, a, c}};
  for (int k = 0; k < 2; k++) {
    MemGraphBuffers gb;
    char err[256];
    ck_assert_msg(mem_graph_buffers(g, NULL, k ? orders[k] : NULL, &gb, err, sizeof err) == 0, "%s", err);
    const MemBuffer *ba = &gb.buf[gb.buf_of_node[a]], *bb = &gb.buf[gb.buf_of_node[b]];
    ck_assert_int_eq(ba->first, k ? 1 : 0);
    ck_assert_int_eq(bb->first, k ? 0 : 1);
    ck_assert_int_eq(ba->last, 2);
    ck_assert_int_eq(bb->last, 2);
    ck_assert_int_eq(gb.step_group[0], k ? b : a);
    mem_graph_buffers_free(&gb);
  }
  ir_graph_free(g);
}
END_TEST

/* A hand-made fusion plan over a graph with a square permute: groups
 * {a = exp(x)}, {b = permute(a), c = neg(b)}, {d = neg(c), e = tanh(d)},
 * {s = sum(e)}. The permute group must not reuse a in place (element i of c
 * reads another element of a); the elementwise group may reuse c. */
typedef struct {
  FusePlan plan;
  FuseGroup group[6];
  int group_of[8];
  int mem[8][3], out[8][2], in[8][2];
} HandPlan;

static void hand_group(HandPlan *h, int i, FuseKind k, const int *mem, int n, int out, int in) {
  FuseGroup *gr = &h->group[i];
  gr->kind = k;
  gr->n = n;
  gr->node = h->mem[i];
  for (int j = 0; j < n; j++) h->mem[i][j] = mem[j], h->group_of[mem[j]] = i;
  gr->root = mem[n - 1];
  gr->nout = 1;
  gr->out = h->out[i];
  gr->out[0] = out;
  gr->nin = in >= 0;
  gr->in = h->in[i];
  gr->in[0] = in;
}

START_TEST(graph_buffers_with_a_fusion_plan) {
  IrGraph *g = ir_graph_new("perm");
  int x = ir_input(g, "x", IR_F32, shape2(8, 8), LOC);
  int a = ir_unary(g, OP_EXP, x, LOC);
  int b = ir_permute(g, a, (int[]){1, 0}, LOC);
  int c = ir_unary(g, OP_NEG, b, LOC);
  int d = ir_unary(g, OP_NEG, c, LOC);
  int e = ir_unary(g, OP_TANH, d, LOC);
  int s = ir_reduce(g, OP_SUM, e, 3, false, LOC);
  ir_set_outputs(g, &s, NULL, 1);
  ck_assert_int_eq(s, 6);
  HandPlan h = {0};
  hand_group(&h, 0, FUSE_LEAF, (int[]){x}, 1, x, -1);
  hand_group(&h, 1, FUSE_LOOP, (int[]){a}, 1, a, x);
  hand_group(&h, 2, FUSE_LOOP, (int[]){b, c}, 2, c, a);
  hand_group(&h, 3, FUSE_LOOP, (int[]){d, e}, 2, e, c);
  hand_group(&h, 4, FUSE_LOOP, (int[]){s}, 1, s, e);
  h.plan = (FusePlan){.ngroup = 5, .group = h.group, .group_of = h.group_of};

  MemGraphBuffers gb;
  char err[256];
  ck_assert_msg(mem_graph_buffers(g, &h.plan, NULL, &gb, err, sizeof err) == 0, "%s", err);
  ck_assert_int_eq(gb.nstep, 4);
  ck_assert_int_eq(gb.nbuf, 5); /* x a c e s: b and d are fused away */
  ck_assert_int_eq(gb.buf_of_node[b], -1);
  ck_assert_int_eq(gb.step_group[1], 2);
  ck_assert_int_eq(gb.ninplace, 2); /* (a, x) and (e, c); not (c, a) */
  ck_assert_int_eq(gb.inplace[1].out, gb.buf_of_node[e]);
  ck_assert_int_eq(gb.inplace[1].in, gb.buf_of_node[c]);
  MemPlan p = plan_ok(gb.buf, gb.nbuf, gb.inplace, gb.ninplace);
  ck_assert_int_eq(p.nmerged, 1);
  ck_assert_int_eq(p.share[gb.buf_of_node[e]], gb.buf_of_node[c]);
  ck_assert_int_ne(p.offset[gb.buf_of_node[a]], p.offset[gb.buf_of_node[c]]);
  mem_plan_free(&p);
  mem_graph_buffers_free(&gb);

  /* An order that runs a group before its producer, or that is not a
   * permutation, is an error, not a crash. */
  ck_assert_int_eq(mem_graph_buffers(g, &h.plan, (int[]){0, 2, 1, 3, 4}, &gb, err, sizeof err), -1);
  ck_assert_msg(strstr(err, "group 2 reads %1, which no earlier group outputs") != NULL, "%s", err);
  ck_assert_ptr_null(gb.buf);
  ck_assert_int_eq(mem_graph_buffers(g, &h.plan, (int[]){0, 1, 2, 2, 4}, &gb, err, sizeof err), -1);
  ck_assert_str_eq(err, "memory plan: order[3] = 2: not a permutation of the 5 groups");
  ir_graph_free(g);
}
END_TEST

/* ---- buffers of a runtime plan ---- */

START_TEST(runtime_plan_offsets_from_step_uses) {
  RtBuffer buf[7] = {
      {.kind = RT_BUF_INPUT, .dtype = RT_F32, .rank = 1, .dim = {256}, .bytes = 1024, .offset = 12345},
      {.kind = RT_BUF_ARENA, .dtype = RT_F32, .rank = 1, .dim = {256}, .bytes = 1024},  /* t1 */
      {.kind = RT_BUF_ARENA, .dtype = RT_F32, .rank = 1, .dim = {256}, .bytes = 1024},  /* t2 */
      {.kind = RT_BUF_ARENA, .dtype = RT_F32, .rank = 1, .dim = {1024}, .bytes = 4096}, /* scratch */
      {.kind = RT_BUF_ARENA, .dtype = RT_F32, .rank = 1, .dim = {256}, .bytes = 1024},  /* t3 */
      {.kind = RT_BUF_OUTPUT, .dtype = RT_F32, .rank = 1, .dim = {256}, .bytes = 1024, .offset = 12345},
      {.kind = RT_BUF_ARENA, .dtype = RT_F32, .rank = 1, .dim = {16}, .bytes = 64},     /* named by no step */
  };
  static const int a0[] = {0, 1}, a1[] = {1, 3}, a2[] = {3, 0, 2}, a3[] = {2, 4}, a4[] = {4, 5};
  RtStep st[] = {{.kind = RT_STEP_KERNEL, .narg = 2, .arg = a0, .range = 1},
                 {.kind = RT_STEP_KERNEL, .narg = 2, .arg = a1, .range = 1},
                 {.kind = RT_STEP_GEMM, .narg = 3, .arg = a2},
                 {.kind = RT_STEP_KERNEL, .narg = 2, .arg = a3, .range = 1},
                 {.kind = RT_STEP_COPY, .narg = 2, .arg = a4}};
  MemInPlace ip[] = {{4, 2}};
  int64_t arena = -1;
  MemPlan p;
  char err[256];
  ck_assert_msg(mem_plan_rt(buf, 7, st, 5, ip, 1, &arena, &p, err, sizeof err) == 0, "%s", err);
  /* the same lifetimes by hand: t1 [0, 1], t2 [2, 3], scratch [1, 2], t3 [3, 4], unused [0, 0] */
  MemBuffer want[] = {{1024, 0, 2, true}, {1024, 0, 1, false}, {1024, 2, 3, false}, {4096, 1, 2, false},
                      {1024, 3, 4, false}, {1024, 4, 4, true}, {64, 0, 0, false}};
  assert_valid(want, 7, &p);
  ck_assert_int_eq(p.nmerged, 1);
  ck_assert_int_eq(p.lower_bound, 5120);
  ck_assert_int_eq(arena, 5120);
  ck_assert_int_eq(buf[0].offset, 12345);
  ck_assert_int_eq(buf[5].offset, 12345);
  ck_assert_int_eq(buf[4].offset, buf[2].offset);
  for (int i = 1; i < 5; i++) ck_assert_int_eq(buf[i].offset, p.offset[i]);
  mem_plan_free(&p);

  static const int bad[] = {1, 9};
  st[1].arg = bad;
  ck_assert_int_eq(mem_plan_rt(buf, 7, st, 5, NULL, 0, &arena, NULL, err, sizeof err), -1);
  ck_assert_str_eq(err, "memory plan: step 1 names buffer 9 of 7");
}
END_TEST

/* ---- the real models ---- */

/* Lowers an entry of a bench config and runs passes (NULL: none). With
 * 'step', a training entry becomes the whole training step as dalc builds
 * it: gradients and AdamW with the model's settings (opt_train_step), then
 * dalc's default pipeline. */
static IrGraph *lower(const char *file, const char *entry, const char *passes, bool step) {
  FeOptions o = {.config = "bench"};
  char *err = NULL;
  FeProgram *prog = fe_load_file(file, &o, &err);
  ck_assert_msg(prog != NULL, "%s", err);
  int i = fe_entry_find(prog, entry);
  ck_assert_int_ge(i, 0);
  IrGraph *g = fe_lower_entry(prog, i, &err);
  ck_assert_msg(g != NULL, "%s", err);
  if (step) {
    AdamWOptions ao = {.beta1 = 0.9, .beta2 = 0.999, .eps = 1e-8};
    fe_global_number(prog, "adam_beta1", &ao.beta1);
    fe_global_number(prog, "adam_beta2", &ao.beta2);
    fe_global_number(prog, "adam_eps", &ao.eps);
    fe_global_number(prog, "weight_decay", &ao.weight_decay);
    fe_global_number(prog, "clip_norm", &ao.clip_norm);
    ck_assert_msg(opt_train_step(g, &ao) == 0, "%s", g->error);
  }
  ck_assert_msg(pass_run_pipeline(g, passes) == 0, "%s: %s", passes, g->error);
  fe_free(prog); /* nothing below reads node locations */
  return g;
}

/* The in-place candidates of a fused graph as first written: for each
 * loop group, step by step, each input's dependents found by a sweep of
 * the group's members. */
static int ref_candidates(const IrGraph *g, const FusePlan *fp, const MemGraphBuffers *gb, MemInPlace *out) {
  char *dep = calloc((size_t)g->n + 1, 1);
  int n = 0;
  for (int s = 0; s < gb->nstep; s++) {
    const FuseGroup *gr = &fp->group[gb->step_group[s]];
    if (gr->kind != FUSE_LOOP) continue;
    for (int i = 0; i < gr->nin; i++) {
      int x = gr->in[i];
      bool elementwise = true;
      for (int m = 0; m < gr->n; m++) {
        const IrNode *y = &g->node[gr->node[m]];
        for (int k = 0; k < y->nin; k++)
          if (y->in[k] == x || dep[y->in[k]]) dep[gr->node[m]] = 1;
        if (dep[gr->node[m]] && ir_op_pattern(y->op) != PAT_ELEMWISE) elementwise = false;
      }
      for (int j = 0; elementwise && j < gr->nout; j++) {
        const IrNode *o = &g->node[gr->out[j]], *xn = &g->node[x];
        if (dep[gr->out[j]] && ir_shape_eq(&o->shape, &xn->shape) && ir_numel(&o->shape) == ir_numel(&xn->shape))
          out[n++] = (MemInPlace){gb->buf_of_node[gr->out[j]], gb->buf_of_node[x]};
      }
      for (int m = 0; m < gr->n; m++) dep[gr->node[m]] = 0;
    }
  }
  free(dep);
  return n;
}

static void plan_graph(const IrGraph *g, const FusePlan *fp, const char *what) {
  MemGraphBuffers gb;
  char err[256];
  ck_assert_msg(mem_graph_buffers(g, fp, NULL, &gb, err, sizeof err) == 0, "%s: %s", what, err);
  if (fp) { /* the bit-row candidates are the sweep's, in the same order */
    int cap = 0;
    for (int s = 0; s < gb.nstep; s++) {
      const FuseGroup *gr = &fp->group[gb.step_group[s]];
      if (gr->kind == FUSE_LOOP) cap += gr->nout * gr->nin;
    }
    MemInPlace *want = malloc(((size_t)cap + 1) * sizeof *want);
    int nwant = ref_candidates(g, fp, &gb, want);
    ck_assert_int_eq(gb.ninplace, nwant);
    for (int i = 0; i < nwant; i++) {
      ck_assert_int_eq(gb.inplace[i].out, want[i].out);
      ck_assert_int_eq(gb.inplace[i].in, want[i].in);
    }
    free(want);
  }
  MemPlan p = plan_ok(gb.buf, gb.nbuf, gb.inplace, gb.ninplace);
  check_against_reference(gb.buf, gb.nbuf, gb.inplace, gb.ninplace, &p);
  double r = (double)p.arena_bytes / (double)p.lower_bound;
  printf("%s: %d steps, %d buffers, %d merged in place; arena %.2f MiB, lower bound %.2f MiB (%.4fx, ordering "
         "%s), no-reuse sum %.2f MiB\n",
         what, gb.nstep, gb.nbuf, p.nmerged, p.arena_bytes / 1048576.0, p.lower_bound / 1048576.0, r,
         mem_order_name(p.order), p.no_reuse_bytes / 1048576.0);
  ck_assert_msg(r <= 1.05, "%s: arena %lld is %.3fx the lower bound %lld", what, (long long)p.arena_bytes, r,
                (long long)p.lower_bound);
  ck_assert_int_lt(p.arena_bytes, p.no_reuse_bytes);
  mem_plan_free(&p);
  mem_graph_buffers_free(&gb);
}

/* Plans g one node per step and under the fusion pass's plan. */
static void plan_model(const IrGraph *g, const char *what) {
  char label[256];
  snprintf(label, sizeof label, "%s (one node per step)", what);
  plan_graph(g, NULL, label);
  FusePlan *fp = fuse_plan(g, &(FuseOptions){.enabled = true});
  ck_assert_ptr_nonnull(fp);
  snprintf(label, sizeof label, "%s (fused)", what);
  plan_graph(g, fp, label);
  fuse_plan_free(fp);
}

static void model_case(const char *file, const char *entry, const char *name) {
  char what[160];
  IrGraph *g = lower(file, entry, "dce", false);
  snprintf(what, sizeof what, "%s forward", name);
  plan_model(g, what);
  ir_graph_free(g);

  g = lower(file, entry, "dce,grad", false);
  snprintf(what, sizeof what, "%s forward+backward", name);
  plan_model(g, what);
  ir_graph_free(g);

  g = lower(file, entry, "cse,fold,algebra,dce", true);
  snprintf(what, sizeof what, "%s training step (AdamW)", name);
  plan_model(g, what);
  ir_graph_free(g);
}

START_TEST(gpt_bench_within_5_percent) { model_case("models/gpt.dal", "loss", "gpt bench loss"); }
END_TEST

START_TEST(dvae_bench_within_5_percent) {
  model_case("models/dvae.dal", "loss_given_noise", "dvae bench loss_given_noise");
}
END_TEST

int main(void) {
  Suite *s = suite_create("memplan");
  TCase *tc = tcase_create("planner");
  tcase_add_test(tc, chain_reaches_the_bound);
  tcase_add_test(tc, all_live_at_once_is_the_sum);
  tcase_add_test(tc, a_second_ordering_beats_largest_first);
  tcase_add_test(tc, best_fit_takes_the_smallest_gap);
  tcase_add_test(tc, pinned_and_alignment);
  tcase_add_test(tc, empty_input);
  tcase_add_test(tc, bad_input_is_an_error);
  tcase_add_test(tc, in_place_chain_is_one_storage);
  tcase_add_test(tc, in_place_refusals);
  tcase_add_test(tc, random_traces_within_5_percent);
  tcase_add_test(tc, plans_are_deterministic);
  tcase_add_test(tc, stats_text);
  tcase_add_test(tc, live_order_matches_the_rescan);
  tcase_add_test(tc, placement_matches_the_reference);
  suite_add_tcase(s, tc);
  TCase *tg = tcase_create("graphs");
  tcase_add_test(tg, graph_buffers_without_fusion);
  tcase_add_test(tg, graph_buffers_follow_the_given_order);
  tcase_add_test(tg, graph_buffers_with_a_fusion_plan);
  tcase_add_test(tg, runtime_plan_offsets_from_step_uses);
  tcase_add_test(tg, gpt_bench_within_5_percent);
  tcase_add_test(tg, dvae_bench_within_5_percent);
  suite_add_tcase(s, tg);
  return tu_run_suite(s);
}
