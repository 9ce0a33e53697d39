/* fuse_print.c — the fusion plan as text (--explain-fusion) and as
 * Graphviz (--emit=dot with clusters). */
#include <stdlib.h>

#include "passes/fuse_internal.h"

/* One line per refused edge, naming the rule that refused it; then how
 * many nodes each switch let join a kernel (what --fuse-rule=-NAME would
 * undo). */
void fuse_explain(const IrGraph *g, const FusePlan *p, FILE *out) {
  if (!g || !p || !out) return;
  for (int i = 0; i < p->nrefused; i++) {
    int a = p->refused[i].producer, b = p->refused[i].consumer, r = p->refused[i].rule;
    const char *rule = r >= 0 && r < FUSE_RULE_COUNT ? fuse_rule_info[r].name : "?";
    fprintf(out, "%%%d -> %%%d (%s) [%s]: %s\n", a, b, ir_op_name(g->node[a].op), rule, p->refused[i].why);
  }
  int folded = 0;
  char why[160];
  for (int v = 0; v < g->n; v++) {
    const IrNode *m = &g->node[v];
    if (m->op != OP_MATMUL || g->node[m->in[0]].op != OP_LAYER_NORM) continue;
    int ln = m->in[0];
    const char *no = fuse_ln_refusal(g, p, ln, v, why, sizeof why);
    if (no) fprintf(out, "%%%d -> %%%d (layer_norm) [ln-prologue]: not folded: %s\n", ln, v, no);
    else fprintf(out, "%%%d -> %%%d (layer_norm) [ln-prologue]: folded into the GEMM step's prologue\n", ln, v);
    folded += !no;
  }
  if (!p->joined_by) return;
  int count[FUSE_RULE_NSWITCH] = {0};
  for (int v = 0; v < g->n; v++)
    if (p->joined_by[v] >= 0 && p->joined_by[v] < FUSE_RULE_NSWITCH) count[p->joined_by[v]]++;
  fputs("joined by rule:", out);
  for (int r = 0; r < FUSE_RULE_NSWITCH; r++)
    if (r != FUSE_RULE_IN_PLACE && r != FUSE_RULE_REMAT && r != FUSE_RULE_WINO_SHARE_U &&
        r != FUSE_RULE_WINO_EPILOGUE && r != FUSE_RULE_WINO_PROLOGUE) /* (codegen rules: counted elsewhere) */
      fprintf(out, " %s %d%s", fuse_rule_info[r].name, r == FUSE_RULE_LN_PROLOGUE ? folded : count[r],
              fuse_rule_on(&p->opt, (FuseRule)r) ? "" : " (off)");
  fputc('\n', out);
}

/* Writes s as the inside of a Graphviz double-quoted string. */
static void put_escaped(const char *s, FILE *out) {
  for (; *s; s++) {
    if (*s == '"' || *s == '\\') fputc('\\', out);
    if (*s == '\n') fputs("\\n", out);
    else fputc(*s, out);
  }
}

/* The refusal of edge a -> b, if any (p->refused is sorted by producer, then consumer). */
static const char *refusal_of(const FusePlan *p, int a, int b) {
  int lo = 0, hi = p->nrefused - 1;
  while (lo <= hi) {
    int mid = (lo + hi) / 2, x = p->refused[mid].producer, y = p->refused[mid].consumer;
    if (x == a && y == b) return p->refused[mid].why;
    if (x < a || (x == a && y < b)) lo = mid + 1;
    else hi = mid - 1;
  }
  return NULL;
}

static bool is_out(const FuseGroup *gr, int v) {
  for (int i = 0; i < gr->nout; i++)
    if (gr->out[i] == v) return true;
  return false;
}

/* One node: "%id op "name"" / dtype[shape], a level tag off ELEM; the
 * root drawn thick, outs with a double border. */
static void dot_node(const IrGraph *g, const FusePlan *p, int v, const char *indent, FILE *out) {
  const IrNode *x = &g->node[v];
  const FuseGroup *gr = &p->group[p->group_of[v]];
  char shape[160];
  fprintf(out, "%sn%d [label=\"%%%d %s", indent, v, v, ir_op_name(x->op));
  if (x->name) {
    fputs(" \\\"", out);
    put_escaped(x->name, out);
    fputs("\\\"", out);
  }
  fprintf(out, "\\n%s%s", ir_dtype_name(x->dtype), ir_shape_str(&x->shape, shape, sizeof shape));
  if (p->level && p->level[v] == FUSE_AT_ROW) fputs(" (per row)", out);
  if (p->level && p->level[v] == FUSE_AT_ANY) fputs(" (invariant)", out);
  fputc('"', out);
  if (gr->kind == FUSE_LEAF) fputs(", style=\"filled,rounded\", fillcolor=\"#eeeeee\"", out);
  else {
    fputs(", style=filled, fillcolor=white", out);
    if (gr->root == v) fputs(", penwidth=2", out);
  }
  if (is_out(gr, v) && gr->kind != FUSE_LEAF) fputs(", peripheries=2", out);
  fputs("];\n", out);
}

void fuse_print_dot(const IrGraph *g, const FusePlan *p, FILE *out) {
  if (!g || !p || !out) return;
  static const char *kind[] = {"leaf", "loop", "opaque"};
  fputs("digraph \"", out);
  put_escaped(g->name ? g->name : "graph", out);
  fputs("\" {\n  rankdir=TB;\n  node [shape=box, fontname=\"Helvetica\", fontsize=10];\n"
        "  edge [fontname=\"Helvetica\", fontsize=8];\n",
        out);
  int kernel = 0;
  for (int k = 0; k < p->ngroup; k++) {
    const FuseGroup *gr = &p->group[k];
    if (gr->kind == FUSE_LEAF) {
      for (int i = 0; i < gr->n; i++) dot_node(g, p, gr->node[i], "  ", out);
      continue;
    }
    fprintf(out, "  subgraph cluster_%d {\n    label=\"kernel %d: %s, root %%%d (%s)\";\n", k, kernel++, kind[gr->kind],
            gr->root, ir_op_name(g->node[gr->root].op));
    fprintf(out, "    style=\"rounded,filled\"; fillcolor=\"%s\"; color=\"#6c8ebf\";\n",
            gr->kind == FUSE_OPAQUE ? "#fff2cc" : "#dae8fc");
    for (int i = 0; i < gr->n; i++) dot_node(g, p, gr->node[i], "    ", out);
    fputs("  }\n", out);
  }
  /* Edges: refused ones red and dashed, with the reason as tooltip. */
  for (int v = 0; v < g->n; v++) {
    const IrNode *x = &g->node[v];
    for (int k = 0; k < x->nin; k++) {
      int u = x->in[k];
      const char *why = refusal_of(p, u, v);
      fprintf(out, "  n%d -> n%d", u, v);
      if (why || x->nin > 1) {
        fputs(" [", out);
        if (x->nin > 1) fprintf(out, "label=\"%d\"%s", k, why ? ", " : "");
        if (why) {
          fputs("color=red, style=dashed, tooltip=\"not fused: ", out);
          put_escaped(why, out);
          fputc('"', out);
        }
        fputc(']', out);
      }
      fputs(";\n", out);
    }
  }
  for (int i = 0; i < g->noutput; i++) {
    fprintf(out, "  out%d [shape=plaintext, label=\"return ", i);
    put_escaped(g->output_name && g->output_name[i] ? g->output_name[i] : "?", out);
    fprintf(out, "\"];\n  n%d -> out%d [style=dashed];\n", g->output[i], i);
  }
  fputs("}\n", out);
}
