/* fuse_ln.c — rule ln-prologue: a layer_norm folded into the prologue of
 * the GEMM that consumes it (see fuse_ln_prologue in fuse.h for where and
 * why). The plan's groups are unchanged; p->ln_into marks the pairs, and
 * codegen (codegen/lower.c, lower_gemm.c) lowers the layer_norm's group to
 * nothing and the matmul to a GEMM step with RtGemm.ln set, reading the
 * layer_norm's x, gamma and beta. */
#include <stdio.h>
#include <stdlib.h>

#include "passes/fuse.h"

/* Is v in a buffer when the GEMM runs: a leaf, or an out of its group? */
static bool in_memory(const IrGraph *g, const FusePlan *p, int v) {
  if (ir_op_is_leaf(g->node[v].op)) return true;
  const FuseGroup *G = &p->group[p->group_of[v]];
  for (int i = 0; i < G->nout; i++)
    if (G->out[i] == v) return true;
  return false;
}

/* Readers of v besides mm's operand A (each use counted). */
static int other_reads(const IrGraph *g, int v, int mm) {
  int n = 0;
  for (int u = 0; u < g->n; u++)
    for (int j = 0; j < g->node[u].nin; j++)
      if (g->node[u].in[j] == v && !(u == mm && j == 0)) n++;
  for (int k = 0; k < g->noutput; k++) n += g->output[k] == v;
  for (int k = 0; k < g->nupdate; k++) n += g->update_value[k] == v;
  return n;
}

/* NULL if layer_norm ln may fold into matmul mm (which reads it as A),
 * else why not, in buf. */
static const char *why_not(const IrGraph *g, const FusePlan *p, int ln, int mm, char *buf, size_t size) {
  const IrNode *m = &g->node[mm], *l = &g->node[ln];
  const IrShape *ls = &l->shape, *bs = &g->node[m->in[1]].shape;
  int64_t C = ls->d[ls->rank - 1], rows = C ? ir_numel(ls) / C : 0;
  if (!p->opt.enabled || !fuse_rule_on(&p->opt, FUSE_RULE_LN_PROLOGUE))
    snprintf(buf, size, "rule ln-prologue is off");
  else if (m->attr.trans_a || bs->rank != 2 || l->dtype != IR_F32)
    snprintf(buf, size, "the GEMM reads it transposed or per batch item, not as one block of rows");
  else if (rows < 1 || rows > FUSE_LN_MAX_ROWS || rows * C > FUSE_LN_MAX_ELEMS)
    snprintf(buf, size, "%lld rows of %lld: more than %d rows or %d elements, a GEMM for OpenBLAS, which would "
             "read a normalised copy as large as the buffer saved", (long long)rows, (long long)C, FUSE_LN_MAX_ROWS,
             FUSE_LN_MAX_ELEMS);
  else if (other_reads(g, ln, mm) > 0)
    snprintf(buf, size, "its value is also read elsewhere (e.g. kept for a weight gradient), so it is stored anyway");
  else if (p->group[p->group_of[ln]].n != 1 || p->group[p->group_of[mm]].root != mm)
    snprintf(buf, size, "its kernel computes more than the layer_norm");
  else if (!in_memory(g, p, l->in[0]) || !in_memory(g, p, l->in[1]) || !in_memory(g, p, l->in[2]))
    snprintf(buf, size, "its x, gamma or beta is computed in another kernel's loop, not stored");
  else
    return NULL;
  return buf;
}

int fuse_ln_prologue(const IrGraph *g, FusePlan *p) {
  p->ln_into = malloc(((size_t)g->n + 1) * sizeof *p->ln_into);
  if (!p->ln_into) return -1;
  int n = 0;
  char why[160];
  for (int v = 0; v < g->n; v++) p->ln_into[v] = -1;
  for (int mm = 0; mm < g->n; mm++) {
    const IrNode *m = &g->node[mm];
    if (m->op != OP_MATMUL || g->node[m->in[0]].op != OP_LAYER_NORM) continue;
    int ln = m->in[0];
    if (why_not(g, p, ln, mm, why, sizeof why)) continue;
    p->ln_into[ln] = mm;
    n++;
  }
  return n;
}

const char *fuse_ln_refusal(const IrGraph *g, const FusePlan *p, int ln, int mm, char *buf, size_t size) {
  if (g->node[ln].op != OP_LAYER_NORM || g->node[mm].op != OP_MATMUL || g->node[mm].in[0] != ln) return NULL;
  if (p->ln_into && p->ln_into[ln] == mm) return NULL;
  return why_not(g, p, ln, mm, buf, size);
}
