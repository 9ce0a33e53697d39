/* fuse_basic.c — a fusion plan from an explicit grouping (tests and tools
 * that want particular kernels, independent of passes/fuse.c's rules). The
 * FusePlan fields (members, root, in, out, kind, topological order) are
 * derived as fuse.h defines them; 'level' is left NULL. Free the plan with
 * fuse_plan_free (passes/fuse.c owns FusePlan). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codegen/lower.h"

/* Fills one group's lists from its members (already in gr->node, sorted). */
static void fill_group(const IrGraph *g, FuseGroup *gr, int gid, const int *dense, const bool *escapes) {
  gr->kind = FUSE_LOOP;
  if (gr->n == 1 && ir_op_is_leaf(g->node[gr->node[0]].op)) gr->kind = FUSE_LEAF;
  int root = gr->node[gr->n - 1], heavy = -1;
  for (int k = 0; k < gr->n; k++) {
    IrPattern pat = ir_op_pattern(g->node[gr->node[k]].op);
    if (pat == PAT_OPAQUE && gr->kind != FUSE_LEAF) gr->kind = FUSE_OPAQUE;
    if (pat >= PAT_REDUCE) heavy = gr->node[k];
  }
  gr->root = heavy >= 0 && gr->kind != FUSE_LEAF ? heavy : root;
  gr->out = malloc(sizeof(int) * (size_t)gr->n);
  gr->in = malloc(sizeof(int) * (size_t)(gr->n * IR_MAX_IN + 1));
  gr->nout = gr->nin = 0;
  for (int k = 0; k < gr->n; k++) {
    int v = gr->node[k];
    if (escapes[v]) gr->out[gr->nout++] = v;
    for (int j = 0; j < g->node[v].nin; j++) {
      int u = g->node[v].in[j];
      if (dense[u] == gid) continue;
      bool seen = false;
      for (int t = 0; t < gr->nin; t++) seen |= gr->in[t] == u;
      if (!seen) gr->in[gr->nin++] = u;
    }
  }
  /* inputs in increasing id order, for determinism */
  for (int a = 1; a < gr->nin; a++)
    for (int b = a; b > 0 && gr->in[b - 1] > gr->in[b]; b--) {
      int t = gr->in[b];
      gr->in[b] = gr->in[b - 1];
      gr->in[b - 1] = t;
    }
}

/* qsort has no context argument; the labels being sorted by. */
static const int *sort_labels;

static int cmp_label(const void *a, const void *b) {
  int x = *(const int *)a, y = *(const int *)b;
  if (sort_labels[x] != sort_labels[y]) return sort_labels[x] < sort_labels[y] ? -1 : 1;
  return x < y ? -1 : x > y;
}

FusePlan *cg_fuse_from_groups(const IrGraph *g, const int *group_of, char *err, size_t errsize) {
  int n = g->n;
  /* dense group ids: leaves alone, the others by label */
  int *dense = malloc(sizeof(int) * (size_t)(n + 1));
  int *by_label = malloc(sizeof(int) * (size_t)(n + 1)), nl = 0, ngroup = 0;
  for (int v = 0; v < n; v++) {
    if (ir_op_is_leaf(g->node[v].op)) dense[v] = ngroup++;
    else by_label[nl++] = v;
  }
  sort_labels = group_of;
  qsort(by_label, (size_t)nl, sizeof(int), cmp_label);
  for (int k = 0; k < nl; k++) {
    if (k == 0 || group_of[by_label[k]] != group_of[by_label[k - 1]]) ngroup++;
    dense[by_label[k]] = ngroup - 1;
  }
  free(by_label);

  /* values that escape their group */
  bool *escapes = calloc((size_t)n + 1, 1);
  for (int v = 0; v < n; v++)
    for (int j = 0; j < g->node[v].nin; j++)
      if (dense[g->node[v].in[j]] != dense[v]) escapes[g->node[v].in[j]] = true;
  for (int k = 0; k < g->noutput; k++) escapes[g->output[k]] = true;
  for (int k = 0; k < g->nupdate; k++) escapes[g->update_value[k]] = true;

  /* members per dense group */
  FuseGroup *tmp = calloc((size_t)ngroup + 1, sizeof(FuseGroup));
  int *minid = malloc(sizeof(int) * (size_t)(ngroup + 1));
  for (int v = 0; v < n; v++) tmp[dense[v]].n++;
  for (int k = 0; k < ngroup; k++) {
    tmp[k].node = malloc(sizeof(int) * (size_t)tmp[k].n);
    tmp[k].n = 0;
  }
  for (int v = 0; v < n; v++) {
    FuseGroup *gr = &tmp[dense[v]];
    if (gr->n == 0) minid[dense[v]] = v;
    gr->node[gr->n++] = v;
  }
  for (int k = 0; k < ngroup; k++) fill_group(g, &tmp[k], k, dense, escapes);

  /* topological order over groups, ties by smallest member id: an edge
   * per (group, input node), from the input's group */
  int *indeg = calloc((size_t)ngroup + 1, sizeof(int));
  int *first = calloc((size_t)ngroup + 2, sizeof(int));
  for (int c = 0; c < ngroup; c++) {
    indeg[c] = tmp[c].nin;
    for (int t = 0; t < tmp[c].nin; t++) first[dense[tmp[c].in[t]] + 1]++;
  }
  for (int k = 0; k < ngroup; k++) first[k + 1] += first[k];
  int *succ = malloc(sizeof(int) * (size_t)(first[ngroup] + 1)), *fill = calloc((size_t)ngroup + 1, sizeof(int));
  for (int c = 0; c < ngroup; c++)
    for (int t = 0; t < tmp[c].nin; t++) {
      int k = dense[tmp[c].in[t]];
      succ[first[k] + fill[k]++] = c;
    }
  int *order = malloc(sizeof(int) * (size_t)(ngroup + 1));
  int norder = fuse_topo_order(ngroup, first, succ, indeg, minid, NULL, order);
  free(first);
  free(succ);
  free(fill);
  free(indeg);
  free(minid);
  free(escapes);
  if (norder < ngroup) {
    snprintf(err, errsize, "fusion groups form a cycle (%d of %d groups ordered)", norder, ngroup);
    for (int k = 0; k < ngroup; k++) {
      free(tmp[k].node);
      free(tmp[k].out);
      free(tmp[k].in);
    }
    free(tmp);
    free(order);
    free(dense);
    return NULL;
  }

  FusePlan *p = calloc(1, sizeof *p);
  p->ngroup = ngroup;
  p->group = malloc(sizeof(FuseGroup) * (size_t)(ngroup + 1));
  p->group_of = malloc(sizeof(int) * (size_t)(n + 1));
  int *pos = malloc(sizeof(int) * (size_t)(ngroup + 1));
  for (int k = 0; k < ngroup; k++) {
    p->group[k] = tmp[order[k]];
    pos[order[k]] = k;
  }
  for (int v = 0; v < n; v++) p->group_of[v] = pos[dense[v]];
  free(pos);
  free(tmp);
  free(order);
  free(dense);
  return p;
}
