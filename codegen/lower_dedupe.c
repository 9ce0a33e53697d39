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

/* 'tag' and the decimal digits of v: the signature's hot path, without
 * printf (a kernel's signature has hundreds of fields). */
static void put_int(Str *b, char tag, long long v) {
  if (b->cap - b->n < 32) {
    b->cap = b->cap * 2 + 64;
    b->s = realloc(b->s, b->cap);
  }
  char digits[24];
  int n = 0;
  unsigned long long u = v < 0 ? 0ull - (unsigned long long)v : (unsigned long long)v;
  do digits[n++] = (char)('0' + u % 10);
  while ((u /= 10) != 0);
  char *out = b->s + b->n; /* a local cursor: stores through b->s could alias b->n */
  *out++ = tag;
  if (v < 0) *out++ = '-';
  while (n > 0) *out++ = digits[--n];
  *out = 0;
  b->n = (size_t)(out - b->s);
}

/* The literal 'tag' and the decimal digits of v: byte for byte what
 * printf's "<tag>%lld" writes, for the signature's header fields. */
static void put_num(Str *b, const char *tag, long long v) {
  size_t n = strlen(tag);
  if (b->cap - b->n < n + 32) {
    b->cap = b->cap * 2 + n + 64;
    b->s = realloc(b->s, b->cap);
  }
  memcpy(b->s + b->n, tag, n - 1);
  b->n += n - 1;
  put_int(b, tag[n - 1], v);
}

/* A double by its bits (exact, like %a). */
static void put_real(Str *b, char tag, double v) {
  long long bits;
  memcpy(&bits, &v, sizeof bits);
  put_int(b, tag, bits);
}

static void put_shape(Str *b, IrDType dt, const IrShape *s) {
  put_int(b, 'T', (int)dt);
  for (int i = 0; i < s->rank; i++) put_int(b, i ? ',' : '[', (long long)s->d[i]);
  put_int(b, ']', s->rank);
}

static void put_attr(Str *b, const IrAttr *a) {
  put_shape(b, a->dtype, &a->shape);
  put_real(b, 'v', a->value);
  put_int(b, 'x', a->axis);
  put_int(b, 'm', a->axes);
  put_int(b, 'k', a->keepdim);
  put_int(b, 'd', (long long)a->depth);
  put_int(b, 's', a->stride);
  put_int(b, 'p', a->pad);
  put_int(b, 'g', a->groups);
  put_real(b, 'e', (double)a->eps);
  put_int(b, 't', a->trans_a);
  put_int(b, 'u', a->trans_b);
  put_int(b, 'z', a->salt);
  for (int i = 0; i < IR_MAX_RANK; i++) {
    put_int(b, ',', a->perm[i]);
    put_int(b, ':', (long long)a->start[i]);
    put_int(b, ':', (long long)a->stop[i]);
  }
}

typedef struct {
  const Lower *L;
  const CgKernel *k;
  int provided;
  int *local;  /* node -> its number in this kernel, -1 */
  int *visited; /* its number -> the node (to reset local[] after) */
  int next;
  int *load_arg;
  Str *out;
} Walk;

/* The node's number, describing it (and first its inputs) on first visit. */
static int visit(Walk *w, int v) {
  if (w->local[v] >= 0) return w->local[v];
  const IrNode *nd = &w->L->g->node[v];
  bool member = cg_is_member(w->k, v);
  bool root = v == w->provided;
  int in[IR_MAX_IN], nin = 0;
  if (member || root) {
    nin = nd->op == OP_STRAIGHT_THROUGH ? 1 : nd->nin;
    for (int j = 0; j < nin; j++) in[j] = root && w->k->kind == CG_KERNEL_LOOP ? -1 : visit(w, nd->in[j]);
  }
  int id = w->local[v] = w->next++;
  w->visited[id] = v;
  Str *b = w->out;
  put_int(b, '|', id);
  if (nd->op == OP_CONST && !root) {
    put_int(b, 'C', 0);
  } else if (member || root) {
    put_int(b, root ? 'R' : 'M', (int)nd->op);
    put_attr(b, &nd->attr);
    for (int j = 0; j < nin; j++) put_int(b, '<', in[j]);
  } else {
    put_int(b, 'L', w->load_arg[v]);
  }
  put_shape(b, nd->dtype, &nd->shape);
  if (nd->op == OP_CONST) put_real(b, 'c', nd->attr.value);
  return id;
}

static char *signature(const Lower *L, const CgKernel *k, int *local, int *visited, int *load_arg) {
  Str b = {malloc(256), 0, 256};
  b.s[0] = 0;
  const CgConv *c = &k->conv;
  /* the header: kind, geometry and the argument roles, field by field */
  const struct {
    const char *tag;
    long long v;
  } head[] = {
      {"K", (int)k->kind}, {" r", k->range}, {" n", k->inner}, {" t", k->total}, {" f", k->flat}, {" c", k->nc},
      {" s", k->sample}, {" src", (int)k->src}, {" ba", k->base_arg}, {" sa", k->src_arg}, {" np", k->nprologue},
      {" na", k->narg}, {" tl", k->tile}, {",", k->plane},
      {" conv", c->N}, {",", c->C}, {",", c->H}, {",", c->W}, {",", c->O}, {",", c->KH}, {",", c->KW},
      {",", c->OH}, {",", c->OW}, {",", c->stride}, {",", c->pad}, {" col", k->col_sq}, {",", k->col_sj},
      {" x", k->x_arg}, {" c", k->col_arg},
      {" pk", k->pack_a}, {",", k->pack_p}, {",", k->pack_t}, {",", k->dst_arg},
      {" sc", k->sc_n}, {",", k->sc_v}, {",", k->sc_row}, {",", k->sc_cols}, {",", k->idx_arg}, {",", k->grad_arg},
      {",", k->table_arg}, {" o", k->out_arg}, {" z", k->salt},
      {" wi", k->wino_flip}, {",", k->wino_t}, {",", k->wino_m},
      {" at", k->attn_n}, {",", k->attn_m}, {",", k->attn_d}};
  for (size_t i = 0; i < sizeof head / sizeof *head; i++) put_num(&b, head[i].tag, head[i].v);
  put(&b, ",%a", k->attn_scale);
  for (int i = 0; i < 6; i++) put_num(&b, ",", k->attn_arg[i]);
  const long long ph[] = {k->ph_r, k->ph_w, k->ph_slack, k->ph_n, k->ph_step, k->ph_off, k->ph_tr, k->ph_inv};
  for (size_t i = 0; i < sizeof ph / sizeof *ph; i++) put_num(&b, i ? "," : " ph", ph[i]);
  for (int i = 0; i < k->nload; i++) load_arg[k->load[i].node] = k->load[i].arg;
  Walk w = {L, k, k->kind == CG_KERNEL_LOOP && k->src == CG_SRC_NONE ? -1 : k->root, local, visited, 0, load_arg, &b};
  if (w.provided >= 0) put(&b, " root%d", visit(&w, k->root));
  if (k->wino_pro || k->gn_stats) { /* rule wino-prologue (lower_wino_fuse.c) */
    const IrAttr *ga = &L->g->node[k->wino_pro ? k->wino_gn : k->root].attr;
    put(&b, " gn%d,%d,%d,%a", k->gn_stats, k->stats_arg, ga->groups, (double)ga->eps);
    if (k->wino_pro) {
      const IrNode *gn = &L->g->node[k->wino_gn];
      put(&b, " wx%d,%d,%d", visit(&w, k->wino_x), visit(&w, gn->in[1]), visit(&w, gn->in[2]));
    }
  }
  for (int i = 0; i < k->nstore; i++) put(&b, " st%d>%d", visit(&w, k->store[i].node), k->store[i].arg);
  /* (row kernels and scatter-add read the root's inputs: visited with the root) */
  for (int i = 0; i < k->nload; i++) load_arg[k->load[i].node] = -1;
  for (int i = 0; i < w.next; i++) local[visited[i]] = -1;
  return b.s;
}

/* Kernels with equal signatures keep the first one's function; the steps of
 * the others call it. Kernel indices are compacted. Each kept kernel keeps
 * its signature (the JIT shares code across graphs by it). */
void cg_low_dedupe(Lower *L) {
  int n = L->nkern;
  int *local = malloc(sizeof(int) * (size_t)(L->g->n + 1)), *load_arg = malloc(sizeof(int) * (size_t)(L->g->n + 1));
  int *visited = malloc(sizeof(int) * (size_t)(L->g->n + 1));
  for (int v = 0; v < L->g->n; v++) local[v] = load_arg[v] = -1;
  char **sig = malloc(sizeof(char *) * (size_t)n);
  unsigned long *hash = malloc(sizeof(unsigned long) * (size_t)n);
  int *same = malloc(sizeof(int) * (size_t)n), *newid = malloc(sizeof(int) * (size_t)n);
  int kept = 0;
  for (int i = 0; i < n; i++) {
    sig[i] = signature(L, &L->kern[i], local, visited, load_arg);
    unsigned long h = 5381;
    for (const char *c = sig[i]; *c; c++) h = h * 33 + (unsigned char)*c;
    hash[i] = h;
    same[i] = i;
    for (int j = 0; j < i && same[i] == i; j++)
      if (same[j] == j && hash[j] == h && strcmp(sig[j], sig[i]) == 0) same[i] = j;
    if (same[i] == i) {
      newid[i] = kept;
      L->kern[i].signature = cg_pool_strdup(L->pool, sig[i]);
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
  free(visited);
  free(load_arg);
}
