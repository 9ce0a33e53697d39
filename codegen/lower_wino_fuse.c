/* lower_wino_fuse.c — rule wino-prologue: a Winograd convolution whose
 * input x is relu(group_norm(h)) (any elementwise chain on a group_norm,
 * the fusion group of that group_norm) computes x inside its input
 * transform, from h and the norm's statistics, instead of reading x from
 * memory:
 *
 *   stats [N, G, 2]   mean, rstd of each (sample, group)   GROUP_NORM kernel (gn_stats)
 *   V     [a*a, C, T] B^T x B, x = relu((h - mean) rstd gamma + beta) evaluated
 *                     per element of the tile's block     WINO_INPUT (wino_pro)
 *
 * so the group_norm's apply pass and x's buffer disappear (x is written
 * once and read ~(a/m)^2 = 4 times by the overlapping blocks otherwise;
 * now h is read 4 times and the few flops are recomputed). Only where x
 * has no other reader: in inference, and in a training step whose remat
 * pass gave the backward (weight gradient, relu's backward) a recomputed
 * copy of x; where the backward reads x itself it stays stored and the
 * rule does not apply (the stored x is then as cheap to read as h). The
 * norm is applied as the group_norm kernel applies it, so x is the same
 * floats either way. */
#include <stdlib.h>
#include <string.h>

#include "codegen/lower_impl.h"

/* Whether some live node other than 'conv' reads x, or x is returned or
 * updated. */
static bool read_elsewhere(Lower *L, int x, int conv) {
  const IrGraph *g = L->g;
  for (int c = L->cons_first[x]; c < L->cons_first[x + 1]; c++) {
    int u = L->cons[c];
    if (u != conv && L->live[u]) return true;
  }
  for (int k = 0; k < g->noutput; k++)
    if (g->output[k] == x) return true;
  for (int k = 0; k < g->nupdate; k++)
    if (g->update_value[k] == x) return true;
  return false;
}

/* The group_norm of x's group if that group is a group_norm followed by
 * elementwise work at its index that ends in x, x its only stored value;
 * else -1. */
static int norm_of(Lower *L, int x) {
  const IrGraph *g = L->g;
  int gi = L->fp->group_of[x];
  const FuseGroup *G = &L->fp->group[gi];
  int gn = -1;
  for (int i = 0; i < G->n; i++)
    if (g->node[G->node[i]].op == OP_GROUP_NORM) gn = G->node[i];
  if (gn < 0 || gn == x || !ir_shape_eq(&g->node[gn].shape, &g->node[x].shape) || g->node[x].dtype != IR_F32 ||
      g->node[gn].shape.rank != 4)
    return -1;
  bool *fwd = calloc((size_t)g->n + 1, 1);
  cg_low_fwd_from(L, gi, gn, fwd);
  bool ok = fwd[x];
  for (int i = 0; i < G->n && ok; i++) {
    int m = G->node[i];
    if (m != gn && !fwd[m]) ok = false;                          /* a prologue: h is not in memory */
    if (m != x && L->live[m] && L->needed[m]) ok = false;        /* another value to store */
  }
  free(fwd);
  return ok ? gn : -1;
}

int cg_low_wino_prologue(Lower *L, int x) {
  const IrGraph *g = L->g;
  if (!L->fp->opt.enabled || !fuse_rule_on(&L->fp->opt, FUSE_RULE_WINO_PROLOGUE)) return -1;
  if (ir_op_is_leaf(g->node[x].op) || !L->live[x]) return -1;
  int conv = -1;
  for (int c = L->cons_first[x]; c < L->cons_first[x + 1]; c++) {
    int u = L->cons[c];
    if (L->live[u] && (g->node[u].op == OP_CONV2D || g->node[u].op == OP_CONV_TRANSPOSE2D)) conv = u;
  }
  if (conv < 0 || g->node[conv].in[0] != x || g->node[conv].in[1] == x || read_elsewhere(L, x, conv)) return -1;
  if (L->fp->group_of[conv] == L->fp->group_of[x]) return -1;
  if (!cg_conv_is_winograd(cg_conv_pick(g, conv, L->conv_algo, NULL))) return -1;
  return norm_of(L, x);
}

/* The statistics buffer of group_norm gn ([N, G, 2] floats), made on
 * first use. */
static int stats_buffer(Lower *L, int gn) {
  if (!L->wino_stats) {
    L->wino_stats = cg_pool_alloc(L->pool, sizeof(int) * ((size_t)L->g->n + 1));
    for (int v = 0; v < L->g->n; v++) L->wino_stats[v] = -1;
  }
  const IrNode *r = &L->g->node[gn];
  if (L->wino_stats[gn] < 0) L->wino_stats[gn] = cg_low_arena(L, -1, 2 * r->shape.d[0] * r->attr.groups, "group_norm stats");
  return L->wino_stats[gn];
}

int cg_low_wino_stats_group(Lower *L, int gi) {
  const FuseGroup *G = &L->fp->group[gi];
  int x = -1;
  for (int i = 0; i < G->n; i++) {
    int m = G->node[i];
    if (!L->live[m] || !L->needed[m] || ir_op_is_leaf(L->g->node[m].op)) continue;
    if (x >= 0) return 0;
    x = m;
  }
  int gn = x >= 0 ? cg_low_wino_prologue(L, x) : -1;
  if (gn < 0) return 0;
  const IrNode *r = &L->g->node[gn];
  CgKernel *k = cg_low_kernel(L, CG_KERNEL_GROUP_NORM, gi, gn);
  cg_low_name_kernel(L, k, "group_norm_stats");
  k->gn_stats = true;
  k->stats_arg = cg_low_arg(L, k, stats_buffer(L, gn));
  k->range = r->shape.d[0] * r->attr.groups;
  if (k->range <= 0) {
    L->nkern--;
    return 1;
  }
  return cg_low_finish_kernel(L, k) < 0 ? -1 : 1;
}

/* Adds to k a load of every non-member, non-constant node that evaluating
 * v reads (v's value at the same index, through k's members), stopping at
 * 'stop' (whose value the kernel computes itself). */
static void add_loads(Lower *L, CgKernel *k, int v, int stop, bool *seen) {
  if (seen[v] || v == stop) return;
  seen[v] = true;
  const IrNode *nd = &L->g->node[v];
  if (nd->op == OP_CONST) return;
  if (cg_is_member(k, v)) {
    int nin = nd->op == OP_STRAIGHT_THROUGH ? 1 : nd->nin;
    for (int j = 0; j < nin; j++) add_loads(L, k, nd->in[j], stop, seen);
    return;
  }
  int arg = cg_low_arg(L, k, cg_low_home(L, v));
  cg_low_room(L, k, 0, 1, 0);
  k->load[k->nload].node = v;
  k->load[k->nload].arg = arg;
  k->nload++;
}

void cg_low_wino_prologue_kernel(Lower *L, CgKernel *k, int x, int gn) {
  const IrNode *r = &L->g->node[gn];
  const FuseGroup *G = &L->fp->group[L->fp->group_of[x]];
  k->wino_pro = true;
  k->wino_gn = gn;
  k->wino_x = x;
  k->x_arg = cg_low_arg(L, k, cg_low_home(L, r->in[0]));
  k->stats_arg = cg_low_arg(L, k, stats_buffer(L, gn));
  for (int i = 0; i < G->n; i++)
    if (G->node[i] != gn) cg_set_member(k, G->node[i], true);
  bool *seen = calloc((size_t)L->g->n + 1, 1);
  add_loads(L, k, r->in[1], -1, seen); /* gamma, beta */
  add_loads(L, k, r->in[2], -1, seen);
  add_loads(L, k, x, gn, seen);
  free(seen);
  cg_low_wino_fused(L, k->root, CG_WINO_FUSED_PROLOGUE);
}

void cg_low_wino_fused(Lower *L, int v, int what) {
  if (!L->wino_fused) {
    L->wino_fused = cg_pool_alloc(L->pool, (size_t)L->g->n + 1);
    memset(L->wino_fused, 0, (size_t)L->g->n + 1);
  }
  L->wino_fused[v] |= (signed char)what;
  if (what == CG_WINO_FUSED_EPILOGUE) L->wino_epilogue++;
  else L->wino_prologue++;
}

void cg_wino_fuse_explain(const IrGraph *g, const FusePlan *p, FILE *out) {
  RtErr e;
  CgLowered *l = cg_lower(g, p, NULL, &e);
  if (!l) {
    fprintf(out, "; winograd fusion: not lowered: %s\n", e.msg);
    return;
  }
  CgConvAlgo algo = cg_conv_algo_of(&p->opt);
  for (int v = 0; v < g->n; v++) {
    const IrNode *r = &g->node[v];
    if ((r->op != OP_CONV2D && r->op != OP_CONV_TRANSPOSE2D) || !cg_conv_is_winograd(cg_conv_pick(g, v, algo, NULL)))
      continue;
    int f = l->wino_fused ? l->wino_fused[v] : 0, x = r->in[0];
    fprintf(out, "; conv %%%d winograd: epilogue %s [wino-epilogue]; input %%%d (%s) ", v,
            f & CG_WINO_FUSED_EPILOGUE ? "applied by the output transform" : "not fused (none, or the rule is off)",
            x, ir_op_name(g->node[x].op));
    if (f & CG_WINO_FUSED_PROLOGUE) fprintf(out, "computed by the input transform from its group_norm [wino-prologue]\n");
    else fprintf(out, "read from memory [wino-prologue: not a group_norm's elementwise epilogue read by this conv "
                      "alone, or the rule is off]\n");
  }
  cg_lowered_free(l);
}
