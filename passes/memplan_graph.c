/* memplan_graph.c — the planner's buffers for a graph under a fusion plan
 * (mem_graph_buffers in memplan.h): lifetimes in kernel steps, pinning and
 * in-place candidates. */
#include <stdlib.h>
#include <string.h>

#include "passes/memplan.h"
#include "passes/memplan_internal.h"

static int64_t node_bytes(const IrNode *x) {
  return ir_numel(&x->shape) * 4; /* f32 and i32 alike */
}

/* Without fusion every node is its own group: leaves are FUSE_LEAF, opaque
 * ops FUSE_OPAQUE, everything else a one-node FUSE_LOOP. Only the fields
 * mem_graph_buffers reads are filled; 'in' lists each input once. */
static FusePlan *one_node_groups(const IrGraph *g) {
  FusePlan *p = calloc(1, sizeof *p);
  p->ngroup = g->n;
  p->group = calloc((size_t)g->n + 1, sizeof *p->group);
  p->group_of = malloc(((size_t)g->n + 1) * sizeof *p->group_of);
  for (int id = 0; id < g->n; id++) {
    const IrNode *x = &g->node[id];
    FuseGroup *gr = &p->group[id];
    gr->kind = ir_op_is_leaf(x->op) ? FUSE_LEAF : ir_op_pattern(x->op) == PAT_OPAQUE ? FUSE_OPAQUE : FUSE_LOOP;
    gr->root = id;
    gr->n = gr->nout = 1;
    gr->node = malloc(sizeof *gr->node);
    gr->out = malloc(sizeof *gr->out);
    gr->node[0] = gr->out[0] = id;
    gr->in = malloc((size_t)IR_MAX_IN * sizeof *gr->in);
    for (int k = 0; k < x->nin; k++) {
      bool seen = false;
      for (int j = 0; j < gr->nin; j++) seen |= gr->in[j] == x->in[k];
      if (!seen) gr->in[gr->nin++] = x->in[k];
    }
    p->group_of[id] = id;
  }
  return p;
}

static void free_one_node_groups(FusePlan *p) {
  for (int i = 0; i < p->ngroup; i++) {
    free(p->group[i].node);
    free(p->group[i].out);
    free(p->group[i].in);
  }
  free(p->group);
  free(p->group_of);
  free(p);
}

static int add_buffer(MemGraphBuffers *b, int node, int64_t bytes, int step, bool pinned) {
  b->buf[b->nbuf] = (MemBuffer){bytes, step, step, pinned};
  b->node[b->nbuf] = node;
  b->buf_of_node[node] = b->nbuf;
  return b->nbuf++;
}

/* Appends the pair (output buffer, input buffer) to b->inplace (*cap). */
static void add_pair(MemGraphBuffers *b, int *cap, int o, int x) {
  if (b->ninplace == *cap) {
    *cap = *cap ? 2 * *cap : 64;
    b->inplace = realloc(b->inplace, (size_t)*cap * sizeof *b->inplace);
  }
  b->inplace[b->ninplace++] = (MemInPlace){o, x};
}

typedef struct {
  int in, out; /* indices into gr->in, gr->out */
} Pair;

static int pair_cmp(const void *a, const void *b) {
  const Pair *p = a, *q = b;
  return p->in != q->in ? (p->in > q->in) - (p->in < q->in) : (p->out > q->out) - (p->out < q->out);
}

/* In-place candidates of loop group gr: (o, x) for each output o and input
 * x where every member depending on x (through members) is elementwise, o
 * is one of them, and o and x have the same shape and byte size; in the
 * order input by input, then output by output. The inputs some
 * non-elementwise member depends on are found by one walk back from those
 * members (each member visited once); each output's inputs by a walk back
 * from it. So a group costs its members plus what its outputs depend on,
 * not members x inputs (a training step's optimizer update is one group
 * with an output and several inputs per parameter). 'pos' is scratch over
 * g's nodes, all -1 on entry and on return. */
static void add_candidates(const IrGraph *g, const FuseGroup *gr, MemGraphBuffers *b, int *cap, int *pos) {
  if (gr->nin == 0) return;
  /* pos: an input's index, or -(2 + m) for member m */
  for (int i = 0; i < gr->nin; i++) pos[gr->in[i]] = i;
  for (int m = 0; m < gr->n; m++) pos[gr->node[m]] = -2 - m;
  bool *bad = calloc((size_t)gr->nin + 1, 1); /* inputs a non-elementwise member depends on */
  int *mark = calloc((size_t)gr->n + 1, sizeof *mark), *imark = calloc((size_t)gr->nin + 1, sizeof *imark);
  int *stack = malloc(((size_t)gr->n + 1) * sizeof *stack), *cone = malloc(((size_t)gr->nin + 1) * sizeof *cone);
  int np = 0, cappair = 0;
  Pair *pair = NULL;
  /* walk 0 (stamp 1): back from every non-elementwise member */
  int sp = 0;
  for (int m = 0; m < gr->n; m++)
    if (ir_op_pattern(g->node[gr->node[m]].op) != PAT_ELEMWISE && !mark[m]) mark[m] = 1, stack[sp++] = m;
  while (sp > 0) {
    const IrNode *y = &g->node[gr->node[stack[--sp]]];
    for (int k = 0; k < y->nin; k++) {
      int q = pos[y->in[k]];
      if (q >= 0) bad[q] = true;
      else if (q <= -2 && !mark[-2 - q]) mark[-2 - q] = 1, stack[sp++] = -2 - q;
    }
  }
  /* then back from each output that is a member (stamp j + 2) */
  for (int j = 0; j < gr->nout; j++) {
    int m = pos[gr->out[j]] <= -2 ? -2 - pos[gr->out[j]] : -1;
    if (m < 0) continue;
    int stamp = j + 2, nc = 0;
    const IrNode *o = &g->node[gr->out[j]];
    mark[m] = stamp;
    stack[sp++] = m;
    while (sp > 0) {
      const IrNode *y = &g->node[gr->node[stack[--sp]]];
      for (int k = 0; k < y->nin; k++) {
        int q = pos[y->in[k]];
        if (q >= 0 && imark[q] != stamp) imark[q] = stamp, cone[nc++] = q;
        else if (q <= -2 && mark[-2 - q] != stamp) mark[-2 - q] = stamp, stack[sp++] = -2 - q;
      }
    }
    for (int c = 0; c < nc; c++) {
      const IrNode *xn = &g->node[gr->in[cone[c]]];
      if (bad[cone[c]] || !ir_shape_eq(&o->shape, &xn->shape) || node_bytes(o) != node_bytes(xn)) continue;
      if (np == cappair) {
        cappair = cappair ? 2 * cappair : 64;
        pair = realloc(pair, (size_t)cappair * sizeof *pair);
      }
      pair[np++] = (Pair){cone[c], j};
    }
  }
  if (np > 1) qsort(pair, (size_t)np, sizeof *pair, pair_cmp);
  for (int p = 0; p < np; p++)
    add_pair(b, cap, b->buf_of_node[gr->out[pair[p].out]], b->buf_of_node[gr->in[pair[p].in]]);
  for (int i = 0; i < gr->nin; i++) pos[gr->in[i]] = -1;
  for (int m = 0; m < gr->n; m++) pos[gr->node[m]] = -1;
  free(pair);
  free(bad);
  free(mark);
  free(imark);
  free(stack);
  free(cone);
}

/* order must list every group once. */
static int check_order(const int *order, int n, char *err, size_t size) {
  char *seen = calloc((size_t)n + 1, 1);
  int bad = -1;
  for (int i = 0; i < n && bad < 0; i++) {
    if (order[i] < 0 || order[i] >= n || seen[order[i]]) bad = i;
    else seen[order[i]] = 1;
  }
  free(seen);
  if (bad >= 0)
    return mem_fail(err, size, "memory plan: order[%d] = %d: not a permutation of the %d groups", bad, order[bad], n);
  return 0;
}

static int derive(const IrGraph *g, const FusePlan *fp, const int *order, MemGraphBuffers *b, char *err,
                  size_t size) {
  if (order && check_order(order, fp->ngroup, err, size)) return -1;
  int nout = 0;
  for (int i = 0; i < fp->ngroup; i++) {
    const FuseGroup *gr = &fp->group[i];
    nout += gr->kind == FUSE_LEAF ? gr->n : gr->nout;
    if (gr->kind != FUSE_LEAF) b->nstep++;
  }
  b->buf = malloc(((size_t)nout + 1) * sizeof *b->buf);
  b->node = malloc(((size_t)nout + 1) * sizeof *b->node);
  b->step_group = malloc(((size_t)b->nstep + 1) * sizeof *b->step_group);

  int step = 0;
  for (int oi = 0; oi < fp->ngroup; oi++) {
    int i = order ? order[oi] : oi;
    const FuseGroup *gr = &fp->group[i];
    if (gr->kind == FUSE_LEAF) {
      for (int m = 0; m < gr->n; m++)
        if (b->buf_of_node[gr->node[m]] < 0) add_buffer(b, gr->node[m], node_bytes(&g->node[gr->node[m]]), 0, true);
      continue;
    }
    for (int k = 0; k < gr->nin; k++) {
      int x = gr->in[k];
      if (x < 0 || x >= g->n || b->buf_of_node[x] < 0)
        return mem_fail(err, size, "memory plan: group %d reads %%%d, which no earlier group outputs", i, x);
      b->buf[b->buf_of_node[x]].last = step;
    }
    for (int k = 0; k < gr->nout; k++) {
      int o = gr->out[k];
      if (o < 0 || o >= g->n || b->buf_of_node[o] >= 0)
        return mem_fail(err, size, "memory plan: group %d outputs %%%d, which has a buffer already", i, o);
      add_buffer(b, o, node_bytes(&g->node[o]), step, false);
    }
    b->step_group[step++] = i;
  }
  for (int i = 0; i < g->noutput + g->nupdate; i++) {
    int x = i < g->noutput ? g->output[i] : g->update_value[i - g->noutput];
    if (b->buf_of_node[x] < 0)
      return mem_fail(err, size, "memory plan: %s %%%d has no buffer (no group outputs it)",
                      i < g->noutput ? "graph output" : "update value", x);
    MemBuffer *mb = &b->buf[b->buf_of_node[x]];
    mb->last = b->nstep;
    if (i < g->noutput) mb->pinned = true;
  }

  int *pos = malloc(((size_t)g->n + 1) * sizeof *pos);
  for (int v = 0; v < g->n; v++) pos[v] = -1;
  int cap = 0;
  for (int s = 0; s < b->nstep; s++)
    if (fp->group[b->step_group[s]].kind == FUSE_LOOP) add_candidates(g, &fp->group[b->step_group[s]], b, &cap, pos);
  free(pos);
  return 0;
}

int mem_graph_buffers(const IrGraph *g, const FusePlan *fp, const int *order, MemGraphBuffers *out, char *err,
                      size_t errsize) {
  memset(out, 0, sizeof *out);
  out->buf_of_node = malloc(((size_t)g->n + 1) * sizeof *out->buf_of_node);
  for (int i = 0; i < g->n; i++) out->buf_of_node[i] = -1;
  FusePlan *own = fp ? NULL : one_node_groups(g);
  int rc = derive(g, fp ? fp : own, order, out, err, errsize);
  if (own) free_one_node_groups(own);
  if (rc) mem_graph_buffers_free(out);
  return rc;
}

void mem_graph_buffers_free(MemGraphBuffers *b) {
  free(b->buf);
  free(b->node);
  free(b->buf_of_node);
  free(b->step_group);
  free(b->inplace);
  memset(b, 0, sizeof *b);
}
