/* lower_state.c — what lowering works out about the graph as a whole:
 * consumers and liveness (which values a plan computes and which must be
 * in buffers), groups of cheap expansions recomputed by their consumers,
 * and persistent-state updates (in place when safe, else copies at the
 * end). */
#include <stdlib.h>

#include "codegen/lower_impl.h"

void cg_low_find_consumers(Lower *L) {
  const IrGraph *g = L->g;
  L->cons_first = cg_pool_alloc(L->pool, sizeof(int) * (size_t)(g->n + 2));
  for (int v = 0; v < g->n; v++)
    for (int j = 0; j < g->node[v].nin; j++) L->cons_first[g->node[v].in[j] + 1]++;
  for (int v = 0; v < g->n; v++) L->cons_first[v + 1] += L->cons_first[v];
  L->cons = cg_pool_alloc(L->pool, sizeof(int) * (size_t)(L->cons_first[g->n] + 1));
  int *fill = calloc((size_t)g->n + 1, sizeof(int));
  for (int v = 0; v < g->n; v++)
    for (int j = 0; j < g->node[v].nin; j++) {
      int u = g->node[v].in[j];
      L->cons[L->cons_first[u] + fill[u]++] = v;
    }
  free(fill);
}

/* Whether c reads u (straight_through never reads its soft input). */
static bool reads(const IrGraph *g, int c, int u) {
  const IrNode *nd = &g->node[c];
  int nin = nd->op == OP_STRAIGHT_THROUGH ? 1 : nd->nin;
  for (int j = 0; j < nin; j++)
    if (nd->in[j] == u) return true;
  return false;
}

void cg_low_find_live(Lower *L) {
  const IrGraph *g = L->g;
  for (int k = 0; k < g->noutput; k++) L->live[g->output[k]] = L->needed[g->output[k]] = true;
  for (int k = 0; k < g->nupdate; k++) L->live[g->update_value[k]] = L->needed[g->update_value[k]] = true;
  for (int v = g->n - 1; v >= 0; v--) {
    if (!L->live[v]) continue;
    const IrNode *nd = &g->node[v];
    int nin = nd->op == OP_STRAIGHT_THROUGH ? 1 : nd->nin;
    for (int j = 0; j < nin; j++) L->live[nd->in[j]] = true;
  }
  for (int v = 0; v < g->n; v++)
    for (int c = L->cons_first[v]; c < L->cons_first[v + 1] && L->live[v]; c++) {
      int w = L->cons[c];
      if (L->live[w] && reads(g, w, v) && L->fp->group_of[w] != L->fp->group_of[v]) L->needed[v] = true;
    }
}

/* Ops a rematerialised group may hold: expansions and cheap arithmetic. */
static bool cheap_op(IrOp op) {
  return op == OP_BROADCAST || op == OP_RESHAPE || op == OP_CONST || op == OP_IOTA || ir_op_pattern(op) == PAT_ELEMWISE;
}

/* Consumers that read their operands from buffers (GEMMs, convolutions,
 * scatter-add, attention) cannot recompute one. */
static bool reads_buffers(IrOp op) {
  return ir_op_is_gemm(op) || op == OP_GATHER_BACKWARD || op == OP_ATTENTION || op == OP_ATTENTION_BACKWARD;
}

/* Marks groups worth recomputing wherever they are read rather than
 * writing out: loop groups of cheap ops whose single needed value is at
 * least 4x larger than what they read (a causal mask broadcast to every
 * head, a scale broadcast to a tensor), not returned or kept, read only by
 * kernels that evaluate elementally. Their value then needs no buffer. */
void cg_low_find_remat(Lower *L) {
  const IrGraph *g = L->g;
  const FusePlan *fp = L->fp;
  L->remat = cg_pool_alloc(L->pool, (size_t)fp->ngroup + 1);
  for (int gi = 0; gi < fp->ngroup; gi++) {
    const FuseGroup *G = &fp->group[gi];
    if (G->kind != FUSE_LOOP) continue;
    int out = -1, nout = 0;
    bool ok = true;
    for (int i = 0; i < G->n && ok; i++) {
      int m = G->node[i];
      ok = cheap_op(g->node[m].op);
      if (L->live[m] && L->needed[m]) {
        out = m;
        nout++;
      }
    }
    if (!ok || nout != 1) continue;
    for (int k = 0; k < g->noutput; k++) ok &= g->output[k] != out;
    for (int k = 0; k < g->nupdate; k++) ok &= g->update_value[k] != out;
    int64_t read = 0;
    for (int i = 0; i < G->nin; i++)
      if (g->node[G->in[i]].op != OP_CONST) read += ir_numel(&g->node[G->in[i]].shape);
    ok &= ir_numel(&g->node[out].shape) >= 4 * read;
    for (int c = L->cons_first[out]; c < L->cons_first[out + 1] && ok; c++) {
      int w = L->cons[c];
      if (L->live[w] && fp->group_of[w] != gi && reads_buffers(g->node[w].op)) ok = false;
    }
    if (!ok) continue;
    L->remat[gi] = true;
    L->needed[out] = false;
  }
}

/* Does member m of group gi depend on node t (through members of gi)? */
static bool depends_in_group(Lower *L, int gi, int m, int t, signed char *memo) {
  if (m == t) return true;
  if (L->fp->group_of[m] != gi) return false;
  if (memo[m]) return memo[m] > 0;
  const IrNode *nd = &L->g->node[m];
  bool d = false;
  for (int j = 0; j < nd->nin && !d; j++) d = depends_in_group(L, gi, nd->in[j], t, memo);
  memo[m] = d ? 1 : -1;
  return d;
}

/* Marks in 'back' the members of gi reached from v through identity edges. */
static void back_set(Lower *L, int gi, int v, bool *back) {
  if (L->fp->group_of[v] != gi || back[v]) return;
  back[v] = true;
  const IrNode *nd = &L->g->node[v];
  if (!cg_low_identity_op(nd->op)) return;
  int nin = nd->op == OP_STRAIGHT_THROUGH ? 1 : nd->nin;
  for (int j = 0; j < nin; j++) back_set(L, gi, nd->in[j], back);
}

/* The epilogue case of cg_low_update_in_place: a matmul or a conv weight
 * gradient (the GEMM fills its own buffer, lower_gemm.c; its epilogue loop
 * runs over the GEMM's output), or a sum or max (the reduction kernel
 * evaluates its epilogue at each output, lower_group.c), whose epilogue
 * stores v. The root (and so whatever it reads) must not depend on t,
 * what reads t must be elementwise all the way to the stores (t read at
 * the index written), and every needed member that depends on t must be
 * in the epilogue (a later kernel of the group, for members the epilogue
 * cannot store, must not read t's old value). This is AdamW fused into
 * the kernel that computes a weight's or a bias's gradient. */
static bool update_in_epilogue(Lower *L, int gi, int t, int v, signed char *memo) {
  const IrGraph *g = L->g;
  const FuseGroup *G = &L->fp->group[gi];
  int root = G->root;
  IrOp op = g->node[root].op;
  if ((op != OP_MATMUL && op != OP_CONV2D_BACKWARD_WEIGHT && op != OP_SUM && op != OP_REDUCE_MAX) ||
      depends_in_group(L, gi, root, t, memo))
    return false;
  bool *fwd = calloc((size_t)g->n + 1, 1);
  cg_low_fwd_from(L, gi, root, fwd);
  bool ok = fwd[v];
  for (int k = 0; k < G->n && ok; k++) {
    int m = G->node[k];
    if (m == root || !L->live[m]) continue;
    if (ir_op_pattern(g->node[m].op) >= PAT_REDUCE) ok = false;
    else if (!depends_in_group(L, gi, m, t, memo)) continue;
    else if (!cg_low_identity_op(g->node[m].op) || (L->needed[m] && !fwd[m])) ok = false;
  }
  free(fwd);
  return ok;
}

/* Whether update value v may be computed straight into target t's buffer:
 * its group is one plain loop kernel that reads t only at the index it
 * writes (or a GEMM or a reduction whose elementwise epilogue does), and
 * nothing after it reads t's old value (see lower.h). */
bool cg_low_update_in_place(Lower *L, int t, int v) {
  const IrGraph *g = L->g;
  const FusePlan *fp = L->fp;
  int gi = fp->group_of[v];
  const FuseGroup *G = &fp->group[gi];
  if (G->kind == FUSE_LEAF) return false;
  if (!L->upd_kept) { /* marked once: a training step has thousands of updates */
    L->upd_kept = cg_pool_alloc(L->pool, (size_t)g->n + 1);
    for (int k = 0; k < g->noutput; k++) L->upd_kept[g->output[k]] = true;
    for (int k = 0; k < g->nupdate; k++) L->upd_kept[g->update_value[k]] = true;
  }
  if (L->upd_kept[t]) return false;
  for (int c = L->cons_first[t]; c < L->cons_first[t + 1]; c++) {
    int w = L->cons[c];
    if (!L->live[w]) continue;
    if (fp->group_of[w] > gi) return false;
  }
  IrOp rop = g->node[G->root].op;
  if (G->kind == FUSE_OPAQUE || rop == OP_SUM || rop == OP_REDUCE_MAX) {
    signed char *memo = calloc((size_t)g->n + 1, 1);
    bool ok = update_in_epilogue(L, gi, t, v, memo);
    free(memo);
    return ok;
  }
  /* what does not depend on t, once per group (a training step's update
   * group takes thousands of targets): no reduction, every needed member
   * reached from the root through identity edges */
  if (!L->upd_back) {
    L->upd_back = cg_pool_alloc(L->pool, (size_t)g->n + 1);
    L->upd_seen = cg_pool_alloc(L->pool, (size_t)g->n + 1);
    L->upd_list = cg_pool_alloc(L->pool, sizeof(int) * (size_t)(g->n + 1));
    L->upd_queue = cg_pool_alloc(L->pool, sizeof(int) * (size_t)(g->n + 1));
  }
  if (L->upd_gi != gi) {
    for (int i = 0; i < L->upd_n; i++) L->upd_back[L->upd_list[i]] = false;
    back_set(L, gi, G->root, L->upd_back);
    L->upd_n = 0;
    L->upd_ok = true;
    for (int k = 0; k < G->n; k++) {
      int m = G->node[k];
      if (L->upd_back[m]) L->upd_list[L->upd_n++] = m;
      if (ir_op_pattern(g->node[m].op) >= PAT_REDUCE || (L->live[m] && L->needed[m] && !L->upd_back[m]))
        L->upd_ok = false;
    }
    L->upd_gi = gi;
  }
  if (!L->upd_ok || !L->upd_back[v]) return false;
  /* then the members depending on t (through members): a walk forward from
   * t over its consumers in the group; none live may be other than an
   * identity op */
  bool ok = true;
  int nq = 0;
  if (fp->group_of[t] == gi) L->upd_seen[t] = true, L->upd_queue[nq++] = t;
  for (int c = L->cons_first[t]; c < L->cons_first[t + 1]; c++) {
    int w = L->cons[c];
    if (fp->group_of[w] == gi && !L->upd_seen[w]) L->upd_seen[w] = true, L->upd_queue[nq++] = w;
  }
  for (int q = 0; q < nq; q++) {
    int m = L->upd_queue[q];
    if (L->live[m] && !cg_low_identity_op(g->node[m].op)) ok = false;
    for (int c = L->cons_first[m]; c < L->cons_first[m + 1]; c++) {
      int w = L->cons[c];
      if (fp->group_of[w] == gi && !L->upd_seen[w]) L->upd_seen[w] = true, L->upd_queue[nq++] = w;
    }
  }
  for (int q = 0; q < nq; q++) L->upd_seen[L->upd_queue[q]] = false;
  return ok;
}

/* The steps for state updates after everything has run: each value copied
 * into its target, through a temporary when the value's buffer is itself
 * a target (so every copy reads a value from before the updates). */
void cg_low_update_copies(Lower *L) {
  const IrGraph *g = L->g;
  int *src = calloc((size_t)g->nupdate + 1, sizeof(int));
  for (int k = 0; k < g->nupdate; k++) src[k] = cg_low_home(L, g->update_value[k]);
  /* a value's buffer clashes if it is another update's target (a mark per
   * buffer: training updates thousands of parameters and their moments) */
  int nb = L->nbuf;
  bool *target = calloc((size_t)nb + 1, 1);
  for (int j = 0; j < g->nupdate; j++) {
    int h = L->home[g->update_target[j]];
    if (h >= 0 && h < nb) target[h] = true;
  }
  for (int k = 0; k < g->nupdate; k++) {
    bool clash = src[k] >= 0 && src[k] < nb && target[src[k]] && src[k] != L->home[g->update_target[k]];
    if (clash) {
      int tmp = cg_low_arena(L, g->update_value[k], 0, "update staging");
      cg_low_copy(L, src[k], tmp, "update staging");
      src[k] = tmp;
    }
  }
  for (int k = 0; k < g->nupdate; k++) {
    int dst = L->home[g->update_target[k]];
    if (src[k] != dst) cg_low_copy(L, src[k], dst, "update");
  }
  free(target);
  free(src);
}
