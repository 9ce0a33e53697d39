/* dot.c — ir_print_dot: the graph in Graphviz form (`dalc --emit=dot`).
 *
 * One box per node labelled "%id op attrs / dtype[shape]"; inputs are
 * blue ellipses, parameters yellow rounded boxes, constants grey; an edge
 * runs from each input of a node to it (labelled with the operand index
 * when the op takes several), and a dashed edge from each returned node to
 * a plain-text output label. Render with `dot -Tpng`. */
#include "ir/graph_internal.h"

/* Writes s as the inside of a Graphviz double-quoted string. */
static void put_escaped(const char *s, FILE *out) {
  for (; *s; s++) {
    if (*s == '"' || *s == '\\') fputc('\\', out);
    if (*s == '\n') fputs("\\n", out);
    else fputc(*s, out);
  }
}

static void dot_node(const IrGraph *g, int id, FILE *out) {
  const IrNode *n = &g->node[id];
  char attrs[512], shape[160];
  ir_attr_str(n, attrs, sizeof attrs);
  fprintf(out, "  n%d [label=\"%%%d %s", id, id, ir_op_name(n->op));
  if (n->name) {
    fputs(" \\\"", out);
    put_escaped(n->name, out);
    fputs("\\\"", out);
  }
  if (attrs[0]) {
    fputs("\\n", out);
    put_escaped(attrs, out);
  }
  fprintf(out, "\\n%s%s\"", ir_dtype_name(n->dtype), ir_shape_str(&n->shape, shape, sizeof shape));
  switch (n->op) {
  case OP_INPUT: fputs(", shape=ellipse, style=filled, fillcolor=\"#cfe2ff\"", out); break;
  case OP_PARAM: fputs(", style=\"filled,rounded\", fillcolor=\"#fff3cd\"", out); break;
  case OP_STATE: fputs(", style=\"filled,rounded\", fillcolor=\"#e2e3e5\"", out); break;
  case OP_CONST:
  case OP_IOTA: fputs(", style=filled, fillcolor=\"#eeeeee\"", out); break;
  case OP_GUMBEL: case OP_NEG: case OP_ABS: case OP_EXP: case OP_LOG: case OP_SQRT: case OP_RSQRT:
  case OP_TANH: case OP_SIGMOID: case OP_RELU: case OP_GELU: case OP_SILU: case OP_CAST: case OP_STOP_GRADIENT:
  case OP_ADD: case OP_SUB: case OP_MUL: case OP_DIV: case OP_MAX: case OP_MIN: case OP_POW: case OP_LT:
  case OP_LE: case OP_GT: case OP_GE: case OP_EQ: case OP_NE: case OP_WHERE: case OP_STRAIGHT_THROUGH:
  case OP_SUM: case OP_REDUCE_MAX: case OP_ARGMAX: case OP_SOFTMAX: case OP_LOG_SOFTMAX: case OP_RESHAPE:
  case OP_PERMUTE: case OP_BROADCAST: case OP_SLICE: case OP_CONCAT: case OP_GATHER: case OP_GATHER_BACKWARD:
  case OP_ONEHOT: case OP_MATMUL: case OP_CONV2D: case OP_CONV_TRANSPOSE2D: case OP_CONV2D_BACKWARD_WEIGHT:
  case OP_GROUP_NORM: case OP_LAYER_NORM: case OP_CROSS_ENTROPY: case OP_ATTENTION: case OP_ATTENTION_BACKWARD: case OP_COUNT: break;
  }
  fputs("];\n", out);
  for (int i = 0; i < n->nin && i < IR_MAX_IN; i++) {
    fprintf(out, "  n%d -> n%d", n->in[i], id);
    if (n->nin > 1) fprintf(out, " [label=\"%d\"]", i);
    fputs(";\n", out);
  }
}

void ir_print_dot(const IrGraph *g, FILE *out) {
  if (!g || !out) return;
  fputs("digraph \"", out);
  put_escaped(g->name ? g->name : "graph", out);
  fputs("\" {\n  rankdir=TB;\n  node [shape=box, fontname=\"Helvetica\", fontsize=10];\n"
        "  edge [fontname=\"Helvetica\", fontsize=8];\n",
        out);
  for (int id = 0; id < g->n; id++) dot_node(g, id, out);
  for (int i = 0; i < g->noutput; i++) {
    fprintf(out, "  out%d [shape=plaintext, label=\"return ", i);
    put_escaped(g->output_name && g->output_name[i] ? g->output_name[i] : "?", out);
    fprintf(out, "\"];\n  n%d -> out%d [style=dashed];\n", g->output[i], i);
  }
  fputs("}\n", out);
}
