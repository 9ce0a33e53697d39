/* lower_inplace.c — elementwise kernels write over an input that dies
 * there (the in-place reuse of notes/compiler-design.md B7).
 *
 * A LOOP kernel may store output o into the storage of a loaded buffer x
 * when
 *   - both are arena buffers of the same size, x is written by an earlier
 *     step and last read by this one, o is first written here;
 *   - every read of x in the kernel is at the iteration's own element: each
 *     member reading x is elementwise or a reshape and is itself evaluated
 *     only at the iteration index (nothing broadcasts, transposes or
 *     slices its way to x);
 *   - the kernel reads everything of an element before it writes anything
 *     of it (the emitter evaluates all stores, then stores: emit_kernel.c).
 * The kernel then takes one argument for both: o's stores go through x's
 * pointer at the same index, so the pair needs no alias analysis and keeps
 * its noalias promise to every other argument. o's buffer disappears (its
 * later readers read x's), and the memory planner sees one longer-lived
 * buffer. Sample windows (conv chunks) and GEMM-sourced roots are left
 * alone. The fusion plan's options may switch all of this off (rule
 * in-place, --fuse-rule=-in-place). */
#include <stdlib.h>
#include <string.h>

#include "codegen/lower_impl.h"

/* A max-heap of node ids. */
static void heap_push(int *h, int *n, int v) {
  int i = (*n)++;
  for (; i > 0 && h[(i - 1) / 2] < v; i = (i - 1) / 2) h[i] = h[(i - 1) / 2];
  h[i] = v;
}

static int heap_pop(int *h, int *n) {
  int top = h[0], v = h[--*n], i = 0;
  for (;;) {
    int c = 2 * i + 1;
    if (c >= *n) break;
    if (c + 1 < *n && h[c + 1] > h[c]) c++;
    if (h[c] <= v) break;
    h[i] = h[c];
    i = c;
  }
  if (*n > 0) h[i] = v;
  return top;
}

/* bad[v]: v may be evaluated at an index other than the iteration's (it
 * feeds, through members, something that is not elementwise or a reshape).
 * Only members that are not identity ops, or are themselves bad, mark
 * their inputs; node ids are topological, so taking those from the highest
 * id down (a heap, seeded from the kernel's member bitset) settles each
 * before it is used, at a cost proportional to what is marked rather than
 * to the graph or the kernel's members. The entries set are listed in
 * set[0..*nset) (for the next call to clear). 'heap' holds 2 * (nodes + 1). */
static void find_off_index(const Lower *L, const CgKernel *k, bool *bad, int *set, int *nset, int *heap) {
  const IrGraph *g = L->g;
  for (int i = 0; i < *nset; i++) bad[set[i]] = false;
  *nset = 0;
  int nh = 0;
  for (int w = 0; w < L->words; w++)
    for (uint64_t b = k->member[w] & L->nonident[w]; b; b &= b - 1) heap_push(heap, &nh, w * 64 + __builtin_ctzll(b));
  for (int last = -1; nh > 0;) {
    int c = heap_pop(heap, &nh);
    if (c == last) continue; /* pushed as a seed and again when marked bad */
    last = c;
    const IrNode *nd = &g->node[c];
    int nin = nd->op == OP_STRAIGHT_THROUGH ? 1 : nd->nin;
    for (int j = 0; j < nin; j++) {
      int u = nd->in[j];
      if (bad[u]) continue;
      bad[u] = true;
      set[(*nset)++] = u;
      if (cg_is_member(k, u)) heap_push(heap, &nh, u);
    }
  }
}

static bool eligible_kernel(const CgKernel *k) {
  return k->kind == CG_KERNEL_LOOP && k->src == CG_SRC_NONE && k->base_arg < 0 && k->tile == 0;
}

/* bad[] for one kernel, filled on first use: most steps never get as far
 * as asking (a sweep costs O(nodes)). */
typedef struct {
  bool *bad;         /* (nodes) all false until the first sweep */
  int *set, nset;    /* the entries of bad[] that are true */
  int *heap;         /* find_off_index's scratch */
  const CgKernel *k; /* the kernel bad[] holds, or NULL */
} OffIndex;

static OffIndex off_index_new(const Lower *L) {
  return (OffIndex){calloc((size_t)L->g->n + 1, 1), malloc(((size_t)L->g->n + 1) * sizeof(int)), 0,
                    malloc(2 * ((size_t)L->g->n + 1) * sizeof(int)), NULL};
}

static void off_index_free(OffIndex *o) {
  free(o->bad);
  free(o->set);
  free(o->heap);
}

static const bool *off_index(const Lower *L, OffIndex *o, const CgKernel *k) {
  if (o->k != k) {
    find_off_index(L, k, o->bad, o->set, &o->nset, o->heap);
    o->k = k;
  }
  return o->bad;
}

/* Step s's kernel if it may write an output over an input (an eligible
 * LOOP kernel owning its step's argument array); NULL otherwise. */
static CgKernel *eligible_step(const Lower *L, const RtStep *s) {
  if (s->kind != RT_STEP_KERNEL) return NULL;
  CgKernel *k = &L->kern[s->kernel];
  if (!eligible_kernel(k) || k->arg != s->arg) return NULL;
  return k;
}

/* Every load of argument a reads a node evaluated only at the iteration
 * index, with as many elements as the iteration space. */
static bool loads_at_index(const Lower *L, const CgKernel *k, OffIndex *o, int a) {
  int64_t n = ir_numel(&L->g->node[k->root].shape);
  const bool *bad = NULL;
  for (int i = 0; i < k->nload; i++) {
    if (k->load[i].arg != a) continue;
    int v = k->load[i].node;
    if (!bad) bad = off_index(L, o, k);
    if (bad[v] || ir_numel(&L->g->node[v].shape) != n) return false;
  }
  return true;
}

static bool is_store_arg(const CgKernel *k, int a) {
  for (int i = 0; i < k->nstore; i++)
    if (k->store[i].arg == a) return true;
  return false;
}

static bool is_load_arg(const CgKernel *k, int a) {
  for (int i = 0; i < k->nload; i++)
    if (k->load[i].arg == a) return true;
  return false;
}

/* Stores to kernel argument 'from' go to argument 'to' instead, and 'from'
 * is removed (the arguments after it move down by one). */
static void merge_args(CgKernel *k, RtStep *s, int from, int to) {
  for (int i = 0; i < k->nstore; i++)
    if (k->store[i].arg == from) k->store[i].arg = to;
  for (int i = 0; i < k->narg - 1; i++)
    if (i >= from) k->arg[i] = k->arg[i + 1];
  k->narg--;
  for (int i = 0; i < k->nload; i++)
    if (k->load[i].arg > from) k->load[i].arg--;
  for (int i = 0; i < k->nstore; i++)
    if (k->store[i].arg > from) k->store[i].arg--;
  s->narg = k->narg;
}

/* Drops the buffers marked in gone[] and renumbers every step's arguments
 * (into fresh arrays: chunked kernels share an argument array among steps). */
static void drop_buffers(Lower *L, const bool *gone) {
  int *map = malloc(sizeof(int) * (size_t)(L->nbuf + 1));
  int n = 0;
  for (int b = 0; b < L->nbuf; b++) {
    map[b] = gone[b] ? -1 : n;
    if (!gone[b]) L->buf[n++] = L->buf[b];
  }
  L->nbuf = n;
  size_t total = 0;
  for (int si = 0; si < L->nstep; si++) total += (size_t)L->step[si].narg;
  int *fresh = cg_pool_alloc(L->pool, sizeof(int) * (total + 1)); /* every step's new arguments, in turn */
  for (int si = 0; si < L->nstep; si++) {
    RtStep *s = &L->step[si];
    int *a = fresh;
    fresh += s->narg;
    for (int i = 0; i < s->narg; i++) a[i] = map[s->arg[i]];
    if (s->kind == RT_STEP_KERNEL && L->kern[s->kernel].arg == s->arg) L->kern[s->kernel].arg = a;
    s->arg = a;
  }
  for (int k = 0; k < L->g->noutput; k++) L->out_buf[k] = map[L->out_buf[k]];
  free(map);
}

/* Whether step s may write buffer b: a copy its destination, a GEMM its
 * C, a LOOP kernel its stores, any other kernel whatever it does not load
 * (conservatively) except its source x_arg (im2col's, pack's and the
 * Winograd transforms' input, only ever read). */
static bool step_writes(const Lower *L, const RtStep *s, int b) {
  if (s->kind == RT_STEP_COPY) return s->arg[1] == b;
  if (s->kind == RT_STEP_GEMM) return s->arg[2] == b;
  const CgKernel *k = &L->kern[s->kernel];
  for (int a = 0; a < s->narg; a++) {
    if (s->arg[a] != b) continue;
    if (k->kind == CG_KERNEL_LOOP ? is_store_arg(k, a) : !is_load_arg(k, a) && a != k->x_arg) return true;
  }
  return false;
}

/* The steps naming one buffer, ascending, without repeats. */
typedef struct {
  int *step;
  int n, cap;
  bool own; /* step was malloc'd (grown); else it is a slice of the shared block */
} Uses;

static void uses_add(Uses *u, int si) {
  int i = u->n;
  while (i > 0 && u->step[i - 1] > si) i--;
  if (i > 0 && u->step[i - 1] == si) return;
  if (u->n == u->cap) {
    u->cap = u->cap ? 2 * u->cap : 4;
    int *grown = malloc(sizeof(int) * (size_t)u->cap);
    if (u->n) memcpy(grown, u->step, sizeof(int) * (size_t)u->n);
    if (u->own) free(u->step);
    u->step = grown;
    u->own = true;
  }
  memmove(&u->step[i + 1], &u->step[i], sizeof(int) * (size_t)(u->n - i));
  u->step[i] = si;
  u->n++;
}

/* Every buffer's Uses over L's steps: slices of one block (*block, free
 * with uses_free), each as long as the buffer's mentions, so building them
 * allocates nothing per buffer. */
static Uses *uses_make(const Lower *L, int **block) {
  Uses *u = calloc((size_t)L->nbuf + 1, sizeof *u);
  size_t total = 0;
  for (int si = 0; si < L->nstep; si++) {
    total += (size_t)L->step[si].narg;
    for (int i = 0; i < L->step[si].narg; i++) u[L->step[si].arg[i]].cap++;
  }
  int *next = *block = malloc(sizeof(int) * (total + 1));
  for (int b = 0; b < L->nbuf; b++) {
    u[b].step = next;
    next += u[b].cap;
  }
  for (int si = 0; si < L->nstep; si++)
    for (int i = 0; i < L->step[si].narg; i++) uses_add(&u[L->step[si].arg[i]], si);
  return u;
}

static void uses_free(Uses *u, int n, int *block) {
  for (int b = 0; b < n; b++)
    if (u[b].own) free(u[b].step);
  free(u);
  free(block);
}

/* A state update left as a copy at the end (value v computed into an
 * arena buffer by LOOP kernel K, copied over state t afterwards) is
 * written by K straight into t when K reads t only at the index it writes,
 * nothing before K writes t and nothing after K but that copy names t.
 * (Lowering decides most updates in place before it makes kernels,
 * lower_state.c; this catches the rest, e.g. an update whose chain was put
 * in another value's group and got a loop of its own.) The copy goes, and
 * so does v's buffer. Returns the number of updates moved in place.
 *
 * Each buffer's list of the steps naming it keeps the checks linear in the
 * steps that touch it; copies taken out are only marked dead until the
 * end, so step numbers stay valid. */
static int state_updates_in_place(Lower *L, bool *gone, int64_t *merged_bytes) {
  int merged = 0, ns = L->nstep;
  int *block;
  Uses *uses = uses_make(L, &block);
  bool *dead = calloc((size_t)ns + 1, 1);
  OffIndex off = off_index_new(L);
  for (int si = 0; si < ns; si++) {
    RtStep *s = &L->step[si];
    CgKernel *k = eligible_step(L, s);
    if (!k) continue;
    for (int so = 0; so < k->narg; so++) {
      int bo = k->arg[so], ci = -1;
      if (!is_store_arg(k, so) || is_load_arg(k, so) || L->buf[bo].kind != RT_BUF_ARENA) continue;
      const Uses *uo = &uses[bo];
      for (int q = 0; q < uo->n && ci < 0; q++) {
        int j = uo->step[q];
        if (j > si && !dead[j] && L->step[j].kind == RT_STEP_COPY && L->step[j].arg[0] == bo &&
            L->buf[L->step[j].arg[1]].kind == RT_BUF_STATE)
          ci = j;
      }
      if (ci < 0) continue;
      int bt = L->step[ci].arg[1], sx = -1;
      const Uses *ut = &uses[bt];
      bool ok = L->buf[bt].bytes == L->buf[bo].bytes && L->buf[bt].dtype == L->buf[bo].dtype;
      for (int q = 0; q < uo->n && ok; q++) ok = uo->step[q] >= si || dead[uo->step[q]];
      for (int q = 0; q < ut->n && ok; q++) {
        int j = ut->step[q];
        if (!dead[j]) ok = j < si ? !step_writes(L, &L->step[j], bt) : j == si || j == ci;
      }
      for (int a = 0; a < k->narg && ok; a++)
        if (k->arg[a] == bt) {
          sx = a;
          ok = !is_store_arg(k, a) && loads_at_index(L, k, &off, a);
        }
      if (!ok) continue;
      for (int q = 0; q < uo->n; q++) {
        int j = uo->step[q];
        if (j <= si || dead[j]) continue;
        for (int i = 0; i < L->step[j].narg; i++)
          if (L->step[j].arg[i] == bo) ((int *)L->step[j].arg)[i] = bt;
        uses_add(&uses[bt], j);
      }
      dead[ci] = true;
      if (sx >= 0) {
        merge_args(k, s, so, sx);
        so--;
      } else {
        k->arg[so] = bt;
        uses_add(&uses[bt], si);
      }
      gone[bo] = true;
      *merged_bytes += L->buf[bo].bytes;
      merged++;
    }
  }
  int n = 0;
  for (int si = 0; si < ns; si++)
    if (!dead[si]) L->step[n++] = L->step[si];
  L->nstep = n;
  uses_free(uses, L->nbuf, block);
  free(dead);
  off_index_free(&off);
  return merged;
}

int cg_low_in_place(Lower *L, int64_t *merged_bytes) {
  int nb = L->nbuf, merged = 0;
  *merged_bytes = 0;
  /* rule in-place (passes/fuse.h), switched with --fuse-rule=-in-place */
  if (!fuse_rule_on(&L->fp->opt, FUSE_RULE_IN_PLACE)) return 0;
  int *first = malloc(sizeof(int) * (size_t)(nb + 1)), *last = malloc(sizeof(int) * (size_t)(nb + 1));
  bool *gone = calloc((size_t)nb + 1, 1);
  OffIndex off = off_index_new(L);
  merged += state_updates_in_place(L, gone, merged_bytes);
  int *block;
  Uses *uses = uses_make(L, &block); /* the steps naming each buffer */
  for (int b = 0; b < nb; b++) {
    first[b] = uses[b].n ? uses[b].step[0] : -1;
    last[b] = uses[b].n ? uses[b].step[uses[b].n - 1] : -1;
  }
  for (int si = 0; si < L->nstep; si++) {
    RtStep *s = &L->step[si];
    CgKernel *k = eligible_step(L, s);
    if (!k) continue;
    for (int so = 0; so < k->narg; so++) {
      int bo = k->arg[so];
      if (!is_store_arg(k, so) || is_load_arg(k, so) || L->buf[bo].kind != RT_BUF_ARENA || first[bo] != si) continue;
      for (int sx = 0; sx < k->narg; sx++) {
        int bx = k->arg[sx];
        if (sx == so || gone[bx] || is_store_arg(k, sx) || L->buf[bx].kind != RT_BUF_ARENA || last[bx] != si ||
            first[bx] >= si || L->buf[bx].bytes != L->buf[bo].bytes || L->buf[bx].dtype != L->buf[bo].dtype ||
            !loads_at_index(L, k, &off, sx))
          continue;
        /* o's later readers read x's buffer; x now lives as long as o did */
        for (int q = 0; q < uses[bo].n; q++) {
          int t = uses[bo].step[q];
          if (t <= si) continue;
          for (int i = 0; i < L->step[t].narg; i++)
            if (L->step[t].arg[i] == bo) ((int *)L->step[t].arg)[i] = bx;
          uses_add(&uses[bx], t);
        }
        last[bx] = last[bo];
        merge_args(k, s, so, sx);
        gone[bo] = true;
        *merged_bytes += L->buf[bo].bytes;
        merged++;
        so--; /* the arguments after so moved down by one */
        break;
      }
    }
  }
  if (merged) drop_buffers(L, gone);
  uses_free(uses, nb, block);
  free(first);
  free(last);
  free(gone);
  off_index_free(&off);
  return merged;
}
