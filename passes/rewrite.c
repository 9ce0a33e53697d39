/* rewrite.c — the rewrite-then-rebuild driver (see rewrite.h). */
#include "passes/rewrite.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A leaf's name is unique in src, and finish() checks that leaves were
 * copied one to one, so the builder need not search dst for it. */
int pass_rw_copy(PassRewrite *rw, const IrNode *n) {
  return ir_build_copied(rw->dst, n->op, n->in, n->nin, &n->attr, n->loc, n->name);
}

bool pass_rw_splat(const PassRewrite *rw, int id, double *value) {
  const IrNode *n = pass_rw_node(rw, id);
  while (n->op == OP_RESHAPE || n->op == OP_BROADCAST) n = pass_rw_node(rw, n->in[0]);
  if (n->op != OP_CONST) return false;
  *value = n->dtype == IR_F32 ? (double)(float)n->attr.value : n->attr.value;
  return true;
}

/* Copies 'why' (dst's builder message) into g with the pass name in front. */
static int fail(IrGraph *g, const char *pass, const IrGraph *dst, SrcLoc loc) {
  snprintf(g->error, sizeof g->error, "%s: %.440s", pass, dst->error);
  g->error_loc = loc;
  return -1;
}

/* Maps the outputs, updates and leaf lists of src into rw->dst. */
static int finish(PassRewrite *rw, const char *pass, IrGraph *g) {
  const IrGraph *src = rw->src;
  IrGraph *dst = rw->dst;
  SrcLoc none = {0};
  if (dst->ninput != src->ninput || dst->nparam != src->nparam) {
    snprintf(dst->error, sizeof dst->error, "leaves were not copied one to one (%d/%d inputs, %d/%d params)",
             dst->ninput, src->ninput, dst->nparam, src->nparam);
    return fail(g, pass, dst, none);
  }
  for (int i = 0; i < src->ninput; i++) dst->input[i] = rw->map[src->input[i]];
  for (int i = 0; i < src->nparam; i++) dst->param[i] = rw->map[src->param[i]];
  if (src->noutput > 0) {
    int *out = malloc((size_t)src->noutput * sizeof *out);
    if (!out) {
      snprintf(dst->error, sizeof dst->error, "out of memory");
      return fail(g, pass, dst, none);
    }
    for (int i = 0; i < src->noutput; i++) out[i] = rw->map[src->output[i]];
    dst->error[0] = 0;
    ir_set_outputs(dst, out, (const char *const *)src->output_name, src->noutput);
    free(out);
    if (dst->error[0]) return fail(g, pass, dst, none);
  }
  for (int i = 0; i < src->nupdate; i++) {
    int t = src->update_target[i];
    if (ir_add_update(dst, rw->map[t], rw->map[src->update_value[i]], src->node[t].loc) < 0)
      return fail(g, pass, dst, dst->error_loc);
  }
  return 0;
}

IrGraph *pass_rewritten(IrGraph *g, const char *pass, PassRewriteFn fn, void *ctx) {
  PassRewrite rw = {.src = g, .dst = ir_graph_new(g->name)};
  rw.map = malloc(((size_t)g->n + 1) * sizeof *rw.map);
  if (!rw.dst || !rw.map || !ir_graph_reserve(rw.dst, g->n + 16)) {
    ir_graph_free(rw.dst);
    free(rw.map);
    snprintf(g->error, sizeof g->error, "%s: out of memory", pass);
    return NULL;
  }
  rw.dst->train = g->train;
  int rc = 0;
  for (int id = 0; id < g->n && rc == 0; id++) {
    IrNode n = g->node[id];
    for (int k = 0; k < n.nin; k++) n.in[k] = rw.map[n.in[k]];
    rw.dst->calls = n.calls; /* what replaces n comes from where n did */
    int to = fn(&rw, &n, ctx);
    if (to < 0) rc = fail(g, pass, rw.dst, rw.dst->error_loc);
    else rw.map[id] = to;
  }
  rw.dst->calls = NULL;
  if (rc == 0) rc = finish(&rw, pass, g);
  free(rw.map);
  if (rc) {
    ir_graph_free(rw.dst);
    return NULL;
  }
  return rw.dst;
}

int pass_rewrite(IrGraph *g, const char *pass, PassRewriteFn fn, void *ctx) {
  IrGraph *dst = pass_rewritten(g, pass, fn, ctx);
  if (!dst) return -1;
  /* Swap the new graph's contents into g and free the old ones. */
  IrGraph old = *g;
  *g = *dst;
  *dst = old;
  ir_graph_free(dst);
  return 0;
}
