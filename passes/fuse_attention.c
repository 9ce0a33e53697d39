/* fuse_attention.c — the attention rewrite (see attention.h). */
#include "passes/attention.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "passes/passes.h"
#include "passes/rewrite.h"

typedef struct {
  bool hit;      /* the node is the final matmul of a match */
  int q, k, v;   /* src ids */
  int mask;      /* the mask before its broadcast: [1.., a, b], a in {1, n}, b in {1, m} */
  double scale;
} Match;

typedef struct {
  Match *match;  /* (src->n) */
  int next;      /* the src id the rewrite callback is at */
} Ctx;

/* The value of a constant seen through reshapes and broadcasts. */
static bool splat(const IrGraph *g, int id, double *v) {
  const IrNode *n = &g->node[id];
  while (n->op == OP_RESHAPE || n->op == OP_BROADCAST) n = &g->node[n->in[0]];
  if (n->op != OP_CONST || n->dtype != IR_F32) return false;
  *v = (double)(float)n->attr.value;
  return true;
}

/* Uses of every node: inputs of other nodes, outputs, update values. */
static int *use_counts(const IrGraph *g) {
  int *u = calloc((size_t)g->n + 1, sizeof *u);
  if (!u) return NULL;
  for (int i = 0; i < g->n; i++)
    for (int j = 0; j < g->node[i].nin; j++) u[g->node[i].in[j]]++;
  for (int i = 0; i < g->noutput; i++) u[g->output[i]]++;
  for (int i = 0; i < g->nupdate; i++) u[g->update_value[i]]++;
  return u;
}

/* The mask of where node w, [..., n, m], as a source shared by every batch
 * item: its broadcast's input if that has 1 in every batch dim, or w's
 * condition itself when the batch dims are all 1. */
static int mask_source(const IrGraph *g, int cond, int64_t n, int64_t m) {
  const IrNode *c = &g->node[cond];
  if (c->dtype != IR_I32) return -1;
  int r = c->shape.rank;
  if (c->shape.d[r - 2] != n || c->shape.d[r - 1] != m) return -1;
  int src = c->op == OP_BROADCAST ? c->in[0] : cond;
  const IrShape *s = &g->node[src].shape;
  if (s->rank != r) return -1;
  for (int i = 0; i < r - 2; i++)
    if (s->d[i] != 1) return -1;
  return src;
}

/* Whether y (a matmul) ends the pattern; fills *mt. */
static bool match_at(const IrGraph *g, const int *uses, int y, Match *mt) {
  const IrNode *Y = &g->node[y];
  if (Y->op != OP_MATMUL || Y->attr.trans_a || Y->attr.trans_b) return false;
  int p = Y->in[0], v = Y->in[1];
  const IrNode *P = &g->node[p];
  int r = P->shape.rank;
  if (P->op != OP_SOFTMAX || P->attr.axis != r - 1 || uses[p] != 1 || r < 3) return false;
  int w = P->in[0];
  const IrNode *W = &g->node[w];
  double ninf;
  if (W->op != OP_WHERE || uses[w] != 1 || !splat(g, W->in[2], &ninf) || ninf != -INFINITY) return false;
  int x = W->in[1];
  double scale = 1;
  const IrNode *X = &g->node[x];
  if (X->op == OP_MUL && uses[x] == 1) {
    int s0 = X->in[0], s1 = X->in[1];
    if (splat(g, s1, &scale)) x = s0;
    else if (splat(g, s0, &scale)) x = s1;
    else return false;
    if (!isfinite(scale)) return false;
  }
  const IrNode *S = &g->node[x];
  if (S->op != OP_MATMUL || S->attr.trans_a || !S->attr.trans_b || uses[x] != 1) return false;
  int q = S->in[0], k = S->in[1];
  const IrShape *qs = &g->node[q].shape, *ks = &g->node[k].shape, *vs = &g->node[v].shape;
  if (qs->rank != r || ks->rank != r || vs->rank != r || !ir_shape_eq(ks, vs)) return false;
  int64_t n = qs->d[r - 2], m = ks->d[r - 2];
  int mask = mask_source(g, W->in[0], n, m);
  if (mask < 0) return false;
  *mt = (Match){true, q, k, v, mask, scale};
  return true;
}

static int emit(PassRewrite *rw, const IrNode *y, const Match *mt) {
  IrGraph *d = rw->dst;
  const IrShape *qs = &rw->src->node[mt->q].shape, *ks = &rw->src->node[mt->k].shape;
  int r = qs->rank;
  int64_t n = qs->d[r - 2], m = ks->d[r - 2], dh = qs->d[r - 1];
  int mask = rw->map[mt->mask];
  const IrShape *ms = &rw->src->node[mt->mask].shape;
  IrShape two = ir_shape_make(2, (int64_t[]){ms->d[r - 2], ms->d[r - 1]}), nm = ir_shape_make(2, (int64_t[]){n, m});
  mask = ir_reshape(d, mask, two, y->loc);
  if (mask >= 0 && !ir_shape_eq(&two, &nm)) mask = ir_broadcast_to(d, mask, nm, y->loc);
  if (mask < 0) return -1;
  IrAttr a = {.value = mt->scale};
  int att = ir_build(d, OP_ATTENTION, (int[]){rw->map[mt->q], rw->map[mt->k], rw->map[mt->v], mask}, 4, &a, y->loc);
  if (att < 0) return -1;
  IrAttr sl = {0};
  for (int i = 0; i < r; i++) sl.stop[i] = y->shape.d[i];
  sl.stop[r - 1] = dh;
  return ir_build(d, OP_SLICE, &att, 1, &sl, y->loc);
}

static int rewrite(PassRewrite *rw, const IrNode *n, void *ctx) {
  Ctx *c = ctx;
  int id = c->next++;
  if (c->match[id].hit) return emit(rw, n, &c->match[id]);
  return pass_rw_copy(rw, n);
}

int pass_attention_fuse(IrGraph *g, int *fused, FILE *explain) {
  if (fused) *fused = 0;
  int *uses = use_counts(g);
  Match *match = calloc((size_t)g->n + 1, sizeof *match);
  if (!uses || !match) {
    free(uses);
    free(match);
    snprintf(g->error, sizeof g->error, "attention: out of memory");
    return -1;
  }
  int count = 0;
  for (int i = 0; i < g->n; i++)
    if (match_at(g, uses, i, &match[i])) {
      count++;
      if (explain) {
        const IrNode *q = &g->node[match[i].q], *k = &g->node[match[i].k];
        char qs[96], ks[96];
        fprintf(explain, "attention: %s:%d:%d: %%%d = matmul(softmax(masked scores)) fused: q %s, k/v %s, scale %g\n",
                g->node[i].loc.file ? g->node[i].loc.file : "?", g->node[i].loc.line, g->node[i].loc.col, i,
                ir_shape_str(&q->shape, qs, sizeof qs), ir_shape_str(&k->shape, ks, sizeof ks), match[i].scale);
      }
    }
  int rc = 0;
  if (count > 0) {
    Ctx c = {match, 0};
    rc = pass_rewrite(g, "attention", rewrite, &c);
    if (rc == 0) rc = pass_dce(g);
  }
  free(uses);
  free(match);
  if (rc == 0 && fused) *fused = count;
  return rc;
}

int pass_attention(IrGraph *g) { return pass_attention_fuse(g, NULL, NULL); }
