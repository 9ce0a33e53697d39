/* lower_dedupe.c — kernels that would compile to the same function share
 * one. A kernel's code depends only on its structure (kind, geometry, the
 * ops and shapes it evaluates and which argument each value comes from or
 * goes to), never on which buffers the step passes, so the layers of a
 * model (the same block L times) need their kernels compiled once. The
 * structure is written out as a canonical string, nodes numbered in the
 * order the emitter reaches them; equal strings mean equal code. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codegen/lower_impl.h"

typedef struct {
  char *s;
  size_t n, cap;
} Str;

static void put(Str *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void put(Str *b, const char *fmt, ...) {
  va_list ap;
  for (;;) {
    va_start(ap, fmt);
    int k = vsnprintf(b->s + b->n, b->cap - b->n, fmt, ap);
    va_end(ap);
    if (k >= 0 && b->n + (size_t)k < b->cap) {
      b->n += (size_t)k;
      return;
    }
    b->cap = b->cap * 2 + (size_t)k + 64;
    b->s = realloc(b->s, b->cap);
  }
}

static void put_shape(Str *b, IrDType dt, const IrShape *s) {
  put(b, "%d[", (int)dt);
  for (int i = 0; i < s->rank; i++) put(b, "%lld,", (long long)s->d[i]);
  put(b, "]");
}

static void put_attr(Str *b, const IrAttr *a) {
  put_shape(b, a->dtype, &a->shape);
  put(b, "v%a x%d m%u k%d d%lld s%d p%d g%d e%a t%d%d z%u", a->value, a->axis, a->axes, a->keepdim, (long long)a->depth,
      a->stride, a->pad, a->groups, (double)a->eps, a->trans_a, a->trans_b, a->salt);
  for (int i = 0; i < IR_MAX_RANK; i++)
    put(b, ",%d:%lld:%lld", a->perm[i], (long long)a->start[i], (long long)a->stop[i]);
}

typedef struct {
  const Lower *L;
  const CgKernel *k;
  int provided;
  int *local;  /* node -> its number in this kernel, -1 */
  int next;
  int *load_arg;
  Str *out;
} Walk;

/* The node's number, describing it (and first its inputs) on first visit. */
static int visit(Walk *w, int v) {
  if (w->local[v] >= 0) return w->local[v];
  const IrNode *nd = &w->L->g->node[v];
  bool member = w->k->member[v];
  bool root = v == w->provided;
  int in[IR_MAX_IN], nin = 0;
  if (member || root) {
    nin = nd->op == OP_STRAIGHT_THROUGH ? 1 : nd->nin;
    for (int j = 0; j < nin; j++) in[j] = root && w->k->kind == CG_KERNEL_LOOP ? -1 : visit(w, nd->in[j]);
  }
  int id = w->local[v] = w->next++;
  Str *b = w->out;
  if (nd->op == OP_CONST && !root) {
    put(b, "|%d C", id);
  } else if (member || root) {
    put(b, "|%d %c%d ", id, root ? 'R' : 'M', (int)nd->op);
    put_attr(b, &nd->attr);
    for (int j = 0; j < nin; j++) put(b, " <%d", in[j]);
  } else {
    put(b, "|%d L%d", id, w->load_arg[v]);
  }
  put(b, " ");
  put_shape(b, nd->dtype, &nd->shape);
  if (nd->op == OP_CONST) put(b, " %a", nd->attr.value);
  return id;
}

static char *signature(const Lower *L, const CgKernel *k, int *local, int *load_arg) {
  Str b = {malloc(256), 0, 256};
  b.s[0] = 0;
  const CgConv *c = &k->conv;
  put(&b, "K%d r%lld n%lld t%lld f%d c%lld s%lld src%d ba%d sa%d np%d na%d tl%lld,%lld", (int)k->kind,
      (long long)k->range, (long long)k->inner, (long long)k->total, k->flat, (long long)k->nc, (long long)k->sample,
      (int)k->src, k->base_arg, k->src_arg, k->nprologue, k->narg, (long long)k->tile, (long long)k->plane);
  put(&b, " conv%lld,%lld,%lld,%lld,%lld,%lld,%lld,%lld,%lld,%d,%d col%lld,%lld x%d c%d", (long long)c->N,
      (long long)c->C, (long long)c->H, (long long)c->W, (long long)c->O, (long long)c->KH, (long long)c->KW,
      (long long)c->OH, (long long)c->OW, c->stride, c->pad, (long long)k->col_sq, (long long)k->col_sj, k->x_arg,
      k->col_arg);
  put(&b, " pk%lld,%lld,%d,%d sc%lld,%lld,%lld,%lld,%d,%d,%d o%d z%u", (long long)k->pack_a, (long long)k->pack_p,
      k->pack_t, k->dst_arg, (long long)k->sc_n, (long long)k->sc_v, (long long)k->sc_row, (long long)k->sc_cols,
      k->idx_arg, k->grad_arg, k->table_arg, k->out_arg, k->salt);
  put(&b, " wi%d,%lld", k->wino_flip, (long long)k->wino_t);
  for (int i = 0; i < k->nload; i++) load_arg[k->load[i].node] = k->load[i].arg;
  Walk w = {L, k, k->kind == CG_KERNEL_LOOP && k->src == CG_SRC_NONE ? -1 : k->root, local, 0, load_arg, &b};
  if (w.provided >= 0) put(&b, " root%d", visit(&w, k->root));
  for (int i = 0; i < k->nstore; i++) put(&b, " st%d>%d", visit(&w, k->store[i].node), k->store[i].arg);
  /* (row kernels and scatter-add read the root's inputs: visited with the root) */
  for (int i = 0; i < k->nload; i++) load_arg[k->load[i].node] = -1;
  for (int v = 0; v < L->g->n; v++) local[v] = -1;
  return b.s;
}

/* Kernels with equal signatures keep the first one's function; the steps of
 * the others call it. Kernel indices are compacted. */
void cg_low_dedupe(Lower *L) {
  int n = L->nkern;
  if (n < 2) return;
  int *local = malloc(sizeof(int) * (size_t)(L->g->n + 1)), *load_arg = malloc(sizeof(int) * (size_t)(L->g->n + 1));
  for (int v = 0; v < L->g->n; v++) local[v] = load_arg[v] = -1;
  char **sig = malloc(sizeof(char *) * (size_t)n);
  unsigned long *hash = malloc(sizeof(unsigned long) * (size_t)n);
  int *same = malloc(sizeof(int) * (size_t)n), *newid = malloc(sizeof(int) * (size_t)n);
  int kept = 0;
  for (int i = 0; i < n; i++) {
    sig[i] = signature(L, &L->kern[i], local, load_arg);
    unsigned long h = 5381;
    for (const char *c = sig[i]; *c; c++) h = h * 33 + (unsigned char)*c;
    hash[i] = h;
    same[i] = i;
    for (int j = 0; j < i && same[i] == i; j++)
      if (same[j] == j && hash[j] == h && strcmp(sig[j], sig[i]) == 0) same[i] = j;
    if (same[i] == i) {
      newid[i] = kept;
      L->kern[kept++] = L->kern[i];
    } else {
      newid[i] = newid[same[i]];
    }
  }
  for (int s = 0; s < L->nstep; s++)
    if (L->step[s].kind == RT_STEP_KERNEL) L->step[s].kernel = newid[L->step[s].kernel];
  L->nkern = kept;
  for (int i = 0; i < n; i++) free(sig[i]);
  free(sig);
  free(hash);
  free(same);
  free(newid);
  free(local);
  free(load_arg);
}
