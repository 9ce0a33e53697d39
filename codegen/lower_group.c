/* lower_group.c — one fusion group to kernels and steps (see lower.h for
 * the scheme): the main kernel by the root's kind, then a loop kernel for
 * each needed member the main kernel could not store. */
#include <stdlib.h>
#include <string.h>

#include "codegen/lower_impl.h"

/* Elements per iteration of a flat loop kernel. */
#define FLAT_CHUNK 4096
/* A rows x inner loop merges trailing dims until a row has this many. */
#define MIN_INNER 32
/* Table columns per iteration of a scatter-add kernel. */
#define SCATTER_COLS 64
/* Elements per iteration of a Gumbel kernel. */
#define GUMBEL_CHUNK 4096
/* Outputs per iteration of a column-mode reduction. */
#define COLUMN_CHUNK 64

static bool is_heavy(IrOp op) { return ir_op_pattern(op) >= PAT_REDUCE; }

/* The row-kernel kind of a reduction or row op, or -1. */
static int row_kind(IrOp op) {
  switch (op) {
  case OP_SUM:
  case OP_REDUCE_MAX:
  case OP_ARGMAX: return CG_KERNEL_REDUCE;
  case OP_SOFTMAX:
  case OP_LOG_SOFTMAX: return CG_KERNEL_SOFTMAX;
  case OP_LAYER_NORM: return CG_KERNEL_LAYER_NORM;
  case OP_GROUP_NORM: return CG_KERNEL_GROUP_NORM;
  case OP_CROSS_ENTROPY: return CG_KERNEL_CROSS_ENTROPY;
  case OP_INPUT: case OP_PARAM: case OP_STATE: case OP_CONST: case OP_IOTA: case OP_GUMBEL: case OP_NEG:
  case OP_ABS: case OP_EXP: case OP_LOG: case OP_SQRT: case OP_RSQRT: case OP_TANH: case OP_SIGMOID:
  case OP_RELU: case OP_GELU: case OP_SILU: case OP_CAST: case OP_STOP_GRADIENT: case OP_ADD: case OP_SUB: case OP_MUL:
  case OP_DIV: case OP_MAX: case OP_MIN: case OP_POW: case OP_LT: case OP_LE: case OP_GT: case OP_GE:
  case OP_EQ: case OP_NE: case OP_WHERE: case OP_STRAIGHT_THROUGH: case OP_RESHAPE: case OP_PERMUTE:
  case OP_BROADCAST: case OP_SLICE: case OP_CONCAT: case OP_GATHER: case OP_GATHER_BACKWARD: case OP_ONEHOT:
  case OP_MATMUL: case OP_CONV2D: case OP_CONV_TRANSPOSE2D: case OP_CONV2D_BACKWARD_WEIGHT: case OP_ATTENTION: case OP_ATTENTION_BACKWARD: case OP_COUNT: break;
  }
  return -1;
}

/* Members of gi reached from v through identity edges (v included). */
static void back_from(Lower *L, int gi, int v, bool *back) {
  if (L->fp->group_of[v] != gi || back[v]) return;
  back[v] = true;
  const IrNode *nd = &L->g->node[v];
  if (!cg_low_identity_op(nd->op)) return;
  int nin = nd->op == OP_STRAIGHT_THROUGH ? 1 : nd->nin;
  for (int j = 0; j < nin; j++) back_from(L, gi, nd->in[j], back);
}

/* back_from, listing the nodes it marks in list[*n ...). */
static void back_list(Lower *L, int gi, int v, bool *back, int *list, int *n) {
  if (L->fp->group_of[v] != gi || back[v]) return;
  back[v] = true;
  list[(*n)++] = v;
  const IrNode *nd = &L->g->node[v];
  if (!cg_low_identity_op(nd->op)) return;
  int nin = nd->op == OP_STRAIGHT_THROUGH ? 1 : nd->nin;
  for (int j = 0; j < nin; j++) back_list(L, gi, nd->in[j], back, list, n);
}

static int int_cmp(const void *a, const void *b) { return (*(const int *)a > *(const int *)b) - (*(const int *)a < *(const int *)b); }

void cg_low_fwd_from(Lower *L, int gi, int root, bool *fwd) {
  const FuseGroup *G = &L->fp->group[gi];
  bool *dep = calloc((size_t)L->g->n + 1, 1);
  dep[root] = fwd[root] = true;
  for (int k = 0; k < G->n; k++) {
    int m = G->node[k];
    if (m <= root) continue;
    const IrNode *nd = &L->g->node[m];
    int nin = nd->op == OP_STRAIGHT_THROUGH ? 1 : nd->nin;
    bool d = false, ok = cg_low_identity_op(nd->op);
    for (int j = 0; j < nin; j++) {
      int u = nd->in[j];
      if (L->fp->group_of[u] != gi || !dep[u]) continue;
      d = true;
      if (!fwd[u]) ok = false;
    }
    dep[m] = d;
    fwd[m] = d && ok;
  }
  fwd[root] = false;
  free(dep);
}

/* Marks the kernel's members: the group's elemental members not stored
 * by an earlier kernel. The group's elemental members are kept as a bitset
 * (L->base_bits, made once per group), so a group lowered to thousands of
 * kernels (a training step's optimizer updates) costs words, not nodes,
 * per kernel. */
static void set_members(Lower *L, CgKernel *k, int gi) {
  const FuseGroup *G = &L->fp->group[gi];
  if (G->n == 0) return;
  if (L->base_gi != gi) {
    if (L->base_gi >= 0) {
      const FuseGroup *P = &L->fp->group[L->base_gi];
      for (int i = 0; i < P->n; i++) L->base_bits[P->node[i] >> 6] = 0;
    }
    L->base_lo = L->words;
    L->base_hi = -1;
    for (int i = 0; i < G->n; i++) {
      int m = G->node[i];
      IrOp op = L->g->node[m].op;
      if (is_heavy(op) || ir_op_is_leaf(op)) continue;
      L->base_bits[m >> 6] |= UINT64_C(1) << (m & 63);
      if (m >> 6 < L->base_lo) L->base_lo = m >> 6;
      if (m >> 6 > L->base_hi) L->base_hi = m >> 6;
    }
    L->base_gi = gi;
  }
  for (int w = L->base_lo; w <= L->base_hi; w++)
    k->member[w] |= L->base_bits[w] & ~L->stored_bits[w];
}

static void add_store(Lower *L, CgKernel *k, int node) {
  for (int i = 0; i < k->nstore; i++)
    if (k->store[i].node == node) return;
  cg_low_room(L, k, 0, 0, 1);
  k->store[k->nstore++].node = node;
}

void cg_low_loop_geometry(Lower *L, CgKernel *k) {
  const IrShape *s = &L->g->node[k->root].shape;
  int64_t n = ir_numel(s);
  bool flat = k->src == CG_SRC_NONE && k->base_arg < 0 && k->nc == 0;
  for (int w = 0; w < L->words && flat; w++)
    if (k->member[w] & L->nonident[w]) flat = false;
  if (flat) {
    k->flat = true;
    k->total = n;
    k->inner = n < FLAT_CHUNK ? (n > 0 ? n : 1) : FLAT_CHUNK;
    k->range = (n + k->inner - 1) / k->inner;
    return;
  }
  if (k->tile > 0) { /* a tiled window: the sample's rows, 'tile' positions each */
    k->inner = k->tile;
    k->total = n;
    k->range = k->sample / k->plane;
    return;
  }
  /* rows x inner; a window of samples keeps dim 0 out of the row */
  int64_t inner = s->rank ? s->d[s->rank - 1] : 1;
  int lowest = k->nc ? 1 : 0;
  for (int j = s->rank - 2; j >= lowest && inner < MIN_INNER; j--) inner *= s->d[j];
  k->inner = inner > 0 ? inner : 1;
  k->total = n;
  int64_t covered = k->nc ? k->nc * k->sample : n;
  k->range = inner > 0 ? covered / inner : 0;
}

CgKernel *cg_low_loop_kernel(Lower *L, int gi, int root, const int *stores, int n, int provided) {
  CgKernel *k = cg_low_kernel(L, CG_KERNEL_LOOP, gi, root);
  set_members(L, k, gi);
  if (provided >= 0) cg_set_member(k, provided, false);
  for (int i = 0; i < n; i++) add_store(L, k, stores[i]);
  return k;
}

/* Finishes a kernel unless its space is empty: then drops it, its stores
 * given homes so their readers still find them. */
static int finish_or_drop(Lower *L, CgKernel *k) {
  if (k->range <= 0) {
    for (int i = 0; i < k->nstore; i++) {
      cg_low_home(L, k->store[i].node);
      cg_low_mark_stored(L, k->store[i].node);
    }
    L->nkern--;
    return 0;
  }
  return cg_low_finish_kernel(L, k);
}

static int finish_loop(Lower *L, CgKernel *k) {
  cg_low_loop_geometry(L, k);
  return finish_or_drop(L, k);
}

int cg_reduce_blocks(const IrShape *x, uint32_t axes, int64_t *ext, bool *red) {
  int nb = 0;
  for (int d = 0; d < x->rank; d++) {
    if (x->d[d] == 1) continue;
    bool f = (axes >> d) & 1;
    if (nb > 0 && red[nb - 1] == f) ext[nb - 1] *= x->d[d];
    else {
      red[nb] = f;
      ext[nb++] = x->d[d];
    }
  }
  return nb;
}

/* A reduction whose innermost axis is kept reduces COLUMN_CHUNK outputs
 * per iteration in column mode (consecutive reads); 0 if not. */
static int64_t column_chunk(const IrGraph *g, const IrNode *r) {
  if (r->op == OP_ARGMAX) return 0;
  int64_t ext[IR_MAX_RANK];
  bool red[IR_MAX_RANK];
  int nb = cg_reduce_blocks(&g->node[r->in[0]].shape, r->attr.axes, ext, red);
  bool any = false;
  for (int b = 0; b < nb; b++) any |= red[b];
  if (nb == 0 || red[nb - 1] || !any) return 0;
  return ext[nb - 1] < COLUMN_CHUNK ? ext[nb - 1] : COLUMN_CHUNK;
}

/* Parallel range of a row kernel rooted at r. */
static int64_t row_range(const IrGraph *g, const IrNode *r) {
  const IrShape *x = &g->node[r->in[0]].shape;
  switch (r->op) {
  case OP_SOFTMAX:
  case OP_LOG_SOFTMAX: return x->d[r->attr.axis] ? ir_numel(x) / x->d[r->attr.axis] : 0;
  case OP_LAYER_NORM: return x->d[x->rank - 1] ? ir_numel(x) / x->d[x->rank - 1] : 0;
  case OP_GROUP_NORM: return x->d[0] * r->attr.groups;
  case OP_INPUT: case OP_PARAM: case OP_STATE: case OP_CONST: case OP_IOTA: case OP_GUMBEL: case OP_NEG:
  case OP_ABS: case OP_EXP: case OP_LOG: case OP_SQRT: case OP_RSQRT: case OP_TANH: case OP_SIGMOID:
  case OP_RELU: case OP_GELU: case OP_SILU: case OP_CAST: case OP_STOP_GRADIENT: case OP_ADD: case OP_SUB: case OP_MUL:
  case OP_DIV: case OP_MAX: case OP_MIN: case OP_POW: case OP_LT: case OP_LE: case OP_GT: case OP_GE:
  case OP_EQ: case OP_NE: case OP_WHERE: case OP_STRAIGHT_THROUGH: case OP_SUM: case OP_REDUCE_MAX:
  case OP_ARGMAX: case OP_RESHAPE: case OP_PERMUTE: case OP_BROADCAST: case OP_SLICE: case OP_CONCAT:
  case OP_GATHER: case OP_GATHER_BACKWARD: case OP_ONEHOT: case OP_MATMUL: case OP_CONV2D:
  case OP_CONV_TRANSPOSE2D: case OP_CONV2D_BACKWARD_WEIGHT: case OP_CROSS_ENTROPY: case OP_ATTENTION: case OP_ATTENTION_BACKWARD: case OP_COUNT: break;
  }
  return ir_numel(&r->shape);
}

/* A group rooted at a reduction or row op: one row kernel. */
static int row_group(Lower *L, int gi, int root, const bool *out, bool store_root) {
  const IrGraph *g = L->g;
  const FuseGroup *G = &L->fp->group[gi];
  bool *back = calloc((size_t)g->n + 1, 1), *fwd = calloc((size_t)g->n + 1, 1);
  back_from(L, gi, g->node[root].in[0], back);
  cg_low_fwd_from(L, gi, root, fwd);
  CgKernel *k = cg_low_kernel(L, (CgKernelKind)row_kind(g->node[root].op), gi, root);
  set_members(L, k, gi);
  for (int i = 0; i < G->n; i++)
    if (out[G->node[i]] && back[G->node[i]]) add_store(L, k, G->node[i]);
  k->nprologue = k->nstore;
  if (store_root) add_store(L, k, root);
  for (int i = 0; i < G->n; i++)
    if (out[G->node[i]] && fwd[G->node[i]]) add_store(L, k, G->node[i]);
  free(back);
  free(fwd);
  k->range = row_range(g, &g->node[root]);
  k->inner = column_chunk(g, &g->node[root]);
  if (k->inner > 0) { /* (outputs of the outer kept axes) x (chunks of the innermost one) */
    int64_t last = 1;
    const IrShape *xs = &g->node[g->node[root].in[0]].shape;
    for (int d = xs->rank - 1; d >= 0 && !((g->node[root].attr.axes >> d) & 1); d--) last *= xs->d[d];
    k->range = k->range / last * ((last + k->inner - 1) / k->inner);
  }
  return finish_or_drop(L, k);
}

/* Inputs of an opaque root that must be in buffers: members computed
 * elementally in the group are first stored by a loop kernel. */
static int materialize_inputs(Lower *L, int gi, int root) {
  const IrNode *r = &L->g->node[root];
  for (int j = 0; j < r->nin; j++) {
    int u = r->in[j];
    if (L->fp->group_of[u] != gi || L->stored[u] || L->g->node[u].op == OP_CONST) continue;
    CgKernel *k = cg_low_loop_kernel(L, gi, u, &u, 1, root);
    if (finish_loop(L, k) < 0) return -1;
  }
  return 0;
}

/* gather_backward (scatter-add), gumbel and attention: a dedicated kernel writing the
 * root into its buffer. */
static int special_root(Lower *L, int gi, int root) {
  const IrGraph *g = L->g;
  const IrNode *r = &g->node[root];
  if (materialize_inputs(L, gi, root) < 0) return -1;
  int64_t n = ir_numel(&r->shape);
  if (r->op == OP_ATTENTION || r->op == OP_ATTENTION_BACKWARD) {
    const IrShape *q = &g->node[r->in[0]].shape;
    CgKernel *k = cg_low_kernel(L, r->op == OP_ATTENTION ? CG_KERNEL_ATTENTION : CG_KERNEL_ATTENTION_BWD, gi, root);
    k->attn_n = q->d[q->rank - 2];
    k->attn_d = q->d[q->rank - 1];
    k->attn_m = g->node[r->in[1]].shape.d[q->rank - 2];
    k->attn_scale = r->attr.value;
    k->range = ir_numel(q) / (k->attn_n * k->attn_d);
    k->out_arg = cg_low_arg(L, k, cg_low_home(L, root));
    for (int j = 0; j < r->nin; j++) k->attn_arg[j] = cg_low_arg(L, k, cg_low_home(L, r->in[j]));
    add_store(L, k, root);
    return finish_or_drop(L, k);
  }
  if (r->op == OP_GATHER_BACKWARD) {
    CgKernel *k = cg_low_kernel(L, CG_KERNEL_SCATTER_ADD, gi, root);
    k->sc_v = r->shape.d[0];
    k->sc_row = k->sc_v ? n / k->sc_v : 0;
    k->sc_n = ir_numel(&g->node[r->in[0]].shape);
    k->sc_cols = SCATTER_COLS;
    k->range = (k->sc_row + SCATTER_COLS - 1) / SCATTER_COLS;
    k->table_arg = cg_low_arg(L, k, cg_low_home(L, root));
    k->idx_arg = cg_low_arg(L, k, cg_low_home(L, r->in[0]));
    k->grad_arg = cg_low_arg(L, k, cg_low_home(L, r->in[1]));
    add_store(L, k, root);
    return finish_or_drop(L, k);
  }
  CgKernel *k = cg_low_kernel(L, CG_KERNEL_GUMBEL, gi, root);
  k->total = n;
  k->inner = GUMBEL_CHUNK;
  k->range = (n + GUMBEL_CHUNK - 1) / GUMBEL_CHUNK;
  k->salt = r->attr.salt;
  k->out_arg = cg_low_arg(L, k, cg_low_home(L, root));
  add_store(L, k, root);
  return finish_or_drop(L, k);
}

/* A group that only reshapes a value already in a write-once buffer
 * (arena, input, constant) needs no kernel: its value is that buffer, seen
 * with another shape. (Persistent state is excluded: an in-place update
 * could change it while the reshape is still read.) */
static bool alias_reshape(Lower *L, int gi, const bool *out) {
  const IrGraph *g = L->g;
  const FuseGroup *G = &L->fp->group[gi];
  int u = -1;
  for (int i = 0; i < G->n; i++) {
    int m = G->node[i];
    if (!L->live[m]) continue;
    if (g->node[m].op != OP_RESHAPE) return false;
    if (out[m]) {
      if (u >= 0) return false;
      u = m;
    }
  }
  if (u < 0 || L->home[u] >= 0) return false;
  int src = u;
  while (L->fp->group_of[src] == gi) src = g->node[src].in[0];
  if (L->home[src] < 0 && g->node[src].op != OP_CONST) return false;
  int b = cg_low_home(L, src);
  RtBufKind kind = L->buf[b].kind;
  if (kind != RT_BUF_ARENA && kind != RT_BUF_INPUT && kind != RT_BUF_CONST) return false;
  L->home[u] = b;
  cg_low_mark_stored(L, u);
  return true;
}

int cg_low_group(Lower *L, int gi) {
  const IrGraph *g = L->g;
  const FuseGroup *G = &L->fp->group[gi];
  int heavy = -1;
  for (int i = 0; i < G->n; i++) {
    int m = G->node[i];
    if (!is_heavy(g->node[m].op)) continue;
    if (heavy >= 0)
      return cg_low_err(L, "fusion group %d holds two reductions or opaque ops (%%%d %s and %%%d %s)", gi, heavy,
                        ir_op_name(g->node[heavy].op), m, ir_op_name(g->node[m].op));
    heavy = m;
  }
  int root = heavy >= 0 ? heavy : G->root;
  if (root < 0 || root >= g->n || L->fp->group_of[root] != gi)
    return cg_low_err(L, "fusion group %d: root %%%d is not a member", gi, root);

  /* needed members: the values this group must leave in buffers */
  bool *out = calloc((size_t)g->n + 1, 1);
  int nout = 0;
  for (int i = 0; i < G->n; i++)
    if (L->live[G->node[i]] && L->needed[G->node[i]] && !ir_op_is_leaf(g->node[G->node[i]].op)) {
      out[G->node[i]] = true;
      nout++;
    }
  int rc = 0;
  if (nout == 0 || alias_reshape(L, gi, out)) goto done;
  if (heavy >= 0 && (rc = cg_low_wino_stats_group(L, gi)) != 0) { /* rule wino-prologue */
    rc = rc < 0 ? -1 : 0;
    goto done;
  }

  if (heavy < 0) {
    bool *back = calloc((size_t)g->n + 1, 1);
    back_from(L, gi, root, back);
    int *st = malloc(sizeof(int) * (size_t)G->n), n = 0;
    for (int i = 0; i < G->n; i++)
      if (out[G->node[i]] && back[G->node[i]]) st[n++] = G->node[i];
    if (n > 0) rc = finish_loop(L, cg_low_loop_kernel(L, gi, root, st, n, -1));
    free(st);
    free(back);
  } else {
    /* would any needed member be left for a kernel of its own? then the
     * root must be stored for it to read */
    bool *covered = calloc((size_t)g->n + 1, 1);
    IrOp op = g->node[heavy].op;
    bool rowop = row_kind(op) >= 0;
    if (rowop) back_from(L, gi, g->node[heavy].in[0], covered);
    cg_low_fwd_from(L, gi, heavy, covered);
    covered[heavy] = true;
    bool rest = false;
    for (int i = 0; i < G->n; i++) rest |= out[G->node[i]] && !covered[G->node[i]];
    bool store_root = out[heavy] || rest;
    if (rowop) {
      rc = row_group(L, gi, heavy, out, store_root);
    } else {
      bool *fwd = calloc((size_t)g->n + 1, 1);
      cg_low_fwd_from(L, gi, heavy, fwd);
      int *epi = malloc(sizeof(int) * (size_t)G->n), nepi = 0;
      for (int i = 0; i < G->n; i++)
        if (out[G->node[i]] && fwd[G->node[i]]) epi[nepi++] = G->node[i];
      if (ir_op_is_gemm(op)) {
        rc = materialize_inputs(L, gi, heavy);
        if (rc == 0) rc = cg_low_gemm_group(L, gi, epi, nepi, store_root);
      } else {
        rc = special_root(L, gi, heavy);
        if (rc == 0 && nepi > 0) rc = finish_loop(L, cg_low_loop_kernel(L, gi, heavy, epi, nepi, heavy));
      }
      free(epi);
      free(fwd);
    }
    free(covered);
  }
  /* Members the kernels above could not store (values of another shape, a
   * sibling's chain merged into the group): a loop over the last one left,
   * storing with it every member left that reaches it through identity
   * edges (they are at its index), until none is left. Each kernel costs
   * the members it reaches, not the group (a training step's update group
   * leaves a kernel per parameter): those are listed, taken in node order
   * (the group's members are sorted), and unmarked after. */
  bool *back = calloc((size_t)g->n + 1, 1);
  int *st = malloc(sizeof(int) * (size_t)(G->n + 1)), *reached = malloc(sizeof(int) * (size_t)(G->n + 1));
  for (int i = G->n - 1; i >= 0 && rc == 0; i--) {
    int m = G->node[i], n = 0;
    if (!out[m] || L->stored[m]) continue;
    if (heavy >= 0 && !L->stored[heavy]) {
      rc = cg_low_err(L, "internal: group %d needs %%%d but its root was not stored", gi, m);
      break;
    }
    int nr = 0;
    back_list(L, gi, m, back, reached, &nr);
    qsort(reached, (size_t)nr, sizeof *reached, int_cmp);
    for (int k = 0; k < nr; k++) {
      if (out[reached[k]] && !L->stored[reached[k]]) st[n++] = reached[k];
      back[reached[k]] = false;
    }
    rc = finish_loop(L, cg_low_loop_kernel(L, gi, m, st, n, heavy));
  }
  free(back);
  free(st);
  free(reached);
done:
  free(out);
  return rc;
}
