/* print.c — ir_print: the text form of a graph that `dalc --emit=ir` shows.
 *
 *   entry loss (train): 3 inputs, 24 params, 1 output
 *     %1 = param "enc.conv_in.weight" init=uniform(-0.19, 0.19) : f32[16, 3, 3, 3]
 *     %12 = conv2d %3, %7  stride=2 pad=1  : f32[4, 32, 8, 8]   # models/dvae.dal:21:13
 *     return %40 ("loss")
 *
 * One line per node in id order; only the attributes an op reads. */
#include "ir/graph_internal.h"

#include <stdarg.h>
#include <string.h>

/* Appends printf-style text at *len, never past size. */
__attribute__((format(printf, 4, 5))) static void put(char *buf, size_t size, size_t *len, const char *fmt, ...) {
  if (*len >= size) return;
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(buf + *len, size - *len, fmt, ap);
  va_end(ap);
  if (n > 0) *len += (size_t)n;
}

static void put_sep(char *buf, size_t size, size_t *len) {
  if (*len) put(buf, size, len, " ");
}

char *ir_attr_str(const IrNode *n, char *buf, size_t size) {
  const IrAttr *a = &n->attr;
  size_t len = 0;
  if (!size) return buf;
  buf[0] = 0;
  switch (n->op) {
  case OP_PARAM:
    switch (a->init) {
    case IR_INIT_ZEROS: put(buf, size, &len, "init=zeros"); break;
    case IR_INIT_ONES: put(buf, size, &len, "init=ones"); break;
    case IR_INIT_NORMAL: put(buf, size, &len, "init=normal(%g, %g)", a->init_a, a->init_b); break;
    case IR_INIT_UNIFORM: put(buf, size, &len, "init=uniform(%g, %g)", a->init_a, a->init_b); break;
    default: put(buf, size, &len, "init=<%d>", (int)a->init); break;
    }
    if (a->frozen) put(buf, size, &len, " frozen");
    break;
  case OP_STATE:
    if (a->transient) put(buf, size, &len, "transient");
    break;
  case OP_CONST: put(buf, size, &len, "value=%.9g", a->value); break;
  case OP_IOTA:
  case OP_SOFTMAX:
  case OP_LOG_SOFTMAX:
  case OP_CONCAT: put(buf, size, &len, "axis=%d", a->axis); break;
  case OP_GUMBEL: put(buf, size, &len, "salt=%u", (unsigned)a->salt); break;
  case OP_CAST: put(buf, size, &len, "to=%s", ir_dtype_name(a->dtype)); break;
  case OP_SUM:
  case OP_REDUCE_MAX:
    put(buf, size, &len, "axes=[");
    for (int i = 0, k = 0; i < 32; i++)
      if (a->axes >> i & 1u) put(buf, size, &len, "%s%d", k++ ? ", " : "", i);
    put(buf, size, &len, "]");
    if (a->keepdim) put(buf, size, &len, " keepdim=1");
    break;
  case OP_ARGMAX:
    put(buf, size, &len, "axis=%d", a->axis);
    if (a->keepdim) put(buf, size, &len, " keepdim=1");
    break;
  case OP_PERMUTE:
    put(buf, size, &len, "perm=[");
    for (int i = 0; i < n->shape.rank && i < IR_MAX_RANK; i++) put(buf, size, &len, "%s%d", i ? ", " : "", a->perm[i]);
    put(buf, size, &len, "]");
    break;
  case OP_SLICE:
    put(buf, size, &len, "range=[");
    for (int i = 0; i < n->shape.rank && i < IR_MAX_RANK; i++)
      put(buf, size, &len, "%s%lld:%lld", i ? ", " : "", (long long)a->start[i], (long long)a->stop[i]);
    put(buf, size, &len, "]");
    break;
  case OP_ONEHOT: put(buf, size, &len, "depth=%lld axis=%d", (long long)a->depth, a->axis); break;
  case OP_MATMUL:
    if (a->trans_a) put(buf, size, &len, "trans_a=1");
    if (a->trans_b) {
      put_sep(buf, size, &len);
      put(buf, size, &len, "trans_b=1");
    }
    break;
  case OP_CONV2D:
  case OP_CONV_TRANSPOSE2D:
  case OP_CONV2D_BACKWARD_WEIGHT: put(buf, size, &len, "stride=%d pad=%d", a->stride, a->pad); break;
  case OP_GROUP_NORM: put(buf, size, &len, "groups=%d eps=%g", a->groups, (double)a->eps); break;
  case OP_LAYER_NORM: put(buf, size, &len, "eps=%g", (double)a->eps); break;
  case OP_ATTENTION: case OP_ATTENTION_BACKWARD: put(buf, size, &len, "scale=%g", a->value); break;
  case OP_INPUT: case OP_NEG: case OP_ABS: case OP_EXP: case OP_LOG: case OP_SQRT: case OP_RSQRT:
  case OP_TANH: case OP_SIGMOID: case OP_RELU: case OP_GELU: case OP_SILU: case OP_STOP_GRADIENT: case OP_ADD: case OP_SUB:
  case OP_MUL: case OP_DIV: case OP_MAX: case OP_MIN: case OP_POW: case OP_LT: case OP_LE: case OP_GT:
  case OP_GE: case OP_EQ: case OP_NE: case OP_WHERE: case OP_STRAIGHT_THROUGH: case OP_RESHAPE:
  case OP_BROADCAST: case OP_GATHER: case OP_GATHER_BACKWARD: case OP_CROSS_ENTROPY: case OP_COUNT: break;
  }
  return buf;
}

static void print_node(const IrGraph *g, int id, FILE *out) {
  const IrNode *n = &g->node[id];
  char attrs[512], shape[160];
  ir_attr_str(n, attrs, sizeof attrs);
  fprintf(out, "  %%%d = %s", id, ir_op_name(n->op));
  if (n->name) fprintf(out, " \"%s\"", n->name);
  for (int i = 0; i < n->nin && i < IR_MAX_IN; i++) fprintf(out, "%s%%%d", i ? ", " : " ", n->in[i]);
  /* Leaves read "param "w" init=zeros : f32[3]"; ops with operands set
   * their attributes apart: "conv2d %3, %7  stride=2 pad=1  : ...". */
  const char *gap = n->nin ? "  " : " ";
  if (attrs[0]) fprintf(out, "%s%s%s: ", gap, attrs, gap);
  else fprintf(out, " : ");
  fprintf(out, "%s%s", ir_dtype_name(n->dtype), ir_shape_str(&n->shape, shape, sizeof shape));
  if (n->loc.file) {
    fprintf(out, "   # %s", n->loc.file);
    if (n->loc.line) fprintf(out, ":%d", n->loc.line);
    if (n->loc.line && n->loc.col) fprintf(out, ":%d", n->loc.col);
  }
  fputc('\n', out);
}

void ir_print(const IrGraph *g, FILE *out) {
  if (!g || !out) return;
  fprintf(out, "entry %s%s: %d input%s, %d param%s, %d output%s\n", g->name ? g->name : "?",
          g->train ? " (train)" : "", g->ninput, g->ninput == 1 ? "" : "s", g->nparam, g->nparam == 1 ? "" : "s",
          g->noutput, g->noutput == 1 ? "" : "s");
  for (int id = 0; id < g->n; id++) print_node(g, id, out);
  fprintf(out, "  return");
  for (int i = 0; i < g->noutput; i++)
    fprintf(out, "%s%%%d (\"%s\")", i ? ", " : " ", g->output[i],
            g->output_name && g->output_name[i] ? g->output_name[i] : "?");
  fputc('\n', out);
  for (int i = 0; i < g->nupdate; i++)
    fprintf(out, "  update \"%s\" <- %%%d\n", g->node[g->update_target[i]].name, g->update_value[i]);
}
