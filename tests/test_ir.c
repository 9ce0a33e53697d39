/* test_ir.c — the graph builder, verifier, text printer and Graphviz dump.
 *
 * Graphs are built through the public builders, checked node by node, then
 * corrupted by hand to make sure ir_verify notices. Everything here must be
 * ASan-clean (make SAN=1 build-san/tests/test_ir). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ir/ir.h"
#include "tests/util.h"

#define SH(...) ir_shape_make((int)(sizeof((int64_t[]){__VA_ARGS__}) / sizeof(int64_t)), (int64_t[]){__VA_ARGS__})
#define SCALAR ir_shape_make(0, NULL)

static const SrcLoc here = {"t.dal", 3, 7};

/* ---- helpers ---- */

/* Asserts node 'id' of g is 'op' with dtype t and shape s. */
static void expect_node(const IrGraph *g, int id, IrOp op, IrDType t, IrShape s) {
  ck_assert_msg(id >= 0 && id < g->n, "node %d does not exist (n=%d, error: %s)", id, g->n, g->error);
  const IrNode *n = &g->node[id];
  char a[64], b[64];
  ck_assert_msg(n->op == op, "%%%d is %s, expected %s", id, ir_op_name(n->op), ir_op_name(op));
  ck_assert_msg(n->dtype == t && ir_shape_eq(&n->shape, &s), "%%%d (%s) is %s%s, expected %s%s", id, ir_op_name(op),
                ir_dtype_name(n->dtype), ir_shape_str(&n->shape, a, sizeof a), ir_dtype_name(t),
                ir_shape_str(&s, b, sizeof b));
}

static void expect_valid(const IrGraph *g) {
  char err[512];
  ck_assert_msg(ir_verify(g, err, sizeof err), "ir_verify refused a built graph: %s", err);
}

/* The text ir_print gives for g (malloc'd). */
static char *print_text(const IrGraph *g) {
  char *buf = NULL;
  size_t len = 0;
  FILE *f = open_memstream(&buf, &len);
  ck_assert_ptr_nonnull(f);
  ir_print(g, f);
  fclose(f);
  return buf;
}

/* A bytewise snapshot of everything a failed builder call must not change. */
typedef struct {
  int n, ninput, nparam, noutput;
  IrNode *node;
  int *output;
} Snapshot;

static Snapshot snap(const IrGraph *g) {
  Snapshot s = {g->n, g->ninput, g->nparam, g->noutput, NULL, NULL};
  s.node = malloc((size_t)(g->n ? g->n : 1) * sizeof *s.node);
  memcpy(s.node, g->node, (size_t)g->n * sizeof *s.node);
  s.output = malloc((size_t)(g->noutput ? g->noutput : 1) * sizeof *s.output);
  if (g->noutput) memcpy(s.output, g->output, (size_t)g->noutput * sizeof *s.output);
  return s;
}

static void expect_unchanged(const IrGraph *g, Snapshot *s, const char *what) {
  ck_assert_msg(g->n == s->n && g->ninput == s->ninput && g->nparam == s->nparam && g->noutput == s->noutput,
                "%s changed the graph's counts", what);
  ck_assert_msg(memcmp(g->node, s->node, (size_t)g->n * sizeof *s->node) == 0, "%s changed a node", what);
  ck_assert_msg(g->noutput == 0 || memcmp(g->output, s->output, (size_t)g->noutput * sizeof *s->output) == 0,
                "%s changed the outputs", what);
  free(s->node);
  free(s->output);
}

/* A small training graph in the style of the dVAE's first layers:
 *   h = relu(group_norm(conv2d(x, w) + b));  y = conv2d(h, w2)
 *   loss = sum((y - x)^2) * scale
 * Sets *conv to the first conv node's id if conv is not NULL. */
static IrGraph *small_model(int *conv) {
  IrGraph *g = ir_graph_new("loss");
  g->train = true;
  SrcLoc l1 = {"models/dvae.dal", 21, 13}, l2 = {"models/dvae.dal", 22, 9};
  int x = ir_input(g, "x", IR_F32, SH(4, 3, 16, 16), l1);
  int scale = ir_input(g, "scale", IR_F32, SCALAR, l1);
  int w = ir_param(g, "enc.conv_in.weight", SH(16, 3, 3, 3), IR_INIT_UNIFORM, -0.19, 0.19, l1);
  int b = ir_param(g, "enc.conv_in.bias", SH(16), IR_INIT_ZEROS, 0, 0, l1);
  int gamma = ir_param(g, "enc.norm.weight", SH(16), IR_INIT_ONES, 0, 0, l2);
  int beta = ir_param(g, "enc.norm.bias", SH(16), IR_INIT_ZEROS, 0, 0, l2);
  int w2 = ir_param(g, "enc.out.weight", SH(3, 16, 1, 1), IR_INIT_NORMAL, 0, 0.02, l2);
  IrAttr ca = {.stride = 2, .pad = 1};
  int c = ir_build(g, OP_CONV2D, (int[]){x, w}, 2, &ca, l1);
  int cb = ir_binary(g, OP_ADD, c, ir_reshape(g, b, SH(16, 1, 1), l1), l1);
  IrAttr na = {.groups = 4, .eps = 1e-5f};
  int gn = ir_build(g, OP_GROUP_NORM, (int[]){cb, gamma, beta}, 3, &na, l2);
  int h = ir_unary(g, OP_RELU, gn, l2);
  IrAttr ta = {.stride = 2, .pad = 1};
  int wt = ir_param(g, "dec.up.weight", SH(16, 16, 4, 4), IR_INIT_UNIFORM, -0.1, 0.1, l2);
  int up = ir_build(g, OP_CONV_TRANSPOSE2D, (int[]){h, wt}, 2, &ta, l2);
  IrAttr oa = {.stride = 1};
  int y = ir_build(g, OP_CONV2D, (int[]){up, w2}, 2, &oa, l2);
  int d = ir_binary(g, OP_SUB, y, x, l2);
  int sq = ir_binary(g, OP_MUL, d, d, l2);
  int s = ir_reduce(g, OP_SUM, sq, 0xf, false, l2);
  int loss = ir_binary(g, OP_MUL, s, scale, l2);
  ck_assert_msg(loss >= 0, "small_model: %s", g->error);
  ir_set_outputs(g, &loss, (const char *const[]){"loss"}, 1);
  if (conv) *conv = c;
  return g;
}

/* ---- builder ---- */

START_TEST(graph_new_and_free) {
  IrGraph *g = ir_graph_new(NULL);
  ck_assert_ptr_nonnull(g);
  ck_assert_str_eq(g->name, "main");
  ck_assert_int_eq(g->n, 0);
  ck_assert(!g->train);
  expect_valid(g);
  ir_graph_free(g);
  ir_graph_free(NULL);
  /* The name is copied. */
  char name[] = "sample";
  g = ir_graph_new(name);
  name[0] = 'X';
  ck_assert_str_eq(g->name, "sample");
  ir_graph_free(g);
}
END_TEST

START_TEST(leaves) {
  IrGraph *g = ir_graph_new("f");
  int x = ir_input(g, "x", IR_I32, SH(2, 5), here);
  int p = ir_param(g, "w", SH(5, 4), IR_INIT_NORMAL, 0, 0.02, here);
  int c = ir_const(g, IR_F32, SH(3), 0.5, here);
  int s = ir_scalar(g, IR_I32, 7, here);
  expect_node(g, x, OP_INPUT, IR_I32, SH(2, 5));
  expect_node(g, p, OP_PARAM, IR_F32, SH(5, 4));
  expect_node(g, c, OP_CONST, IR_F32, SH(3));
  expect_node(g, s, OP_CONST, IR_I32, SCALAR);
  ck_assert_str_eq(g->node[x].name, "x");
  ck_assert_str_eq(g->node[p].name, "w");
  ck_assert_ptr_null(g->node[c].name);
  ck_assert(g->node[p].attr.init == IR_INIT_NORMAL && g->node[p].attr.init_b == 0.02);
  ck_assert(g->node[c].attr.value == 0.5 && g->node[s].attr.value == 7);
  ck_assert_int_eq(g->ninput, 1);
  ck_assert_int_eq(g->input[0], x);
  ck_assert_int_eq(g->nparam, 1);
  ck_assert_int_eq(g->param[0], p);
  ck_assert(g->node[x].loc.line == 3 && g->node[x].loc.col == 7 && strcmp(g->node[x].loc.file, "t.dal") == 0);
  ck_assert_int_eq(ir_param_count(g), 20);
  expect_valid(g);
  ir_graph_free(g);
}
END_TEST

START_TEST(binary_broadcasting) {
  IrGraph *g = ir_graph_new("f");
  int x = ir_input(g, "x", IR_F32, SH(4, 3), here);
  int b = ir_input(g, "b", IR_F32, SH(3), here);
  int col = ir_input(g, "col", IR_F32, SH(4, 1), here);
  /* Same shapes: just the op. */
  int n0 = g->n;
  int same = ir_binary(g, OP_SUB, x, x, here);
  ck_assert_int_eq(same, n0);
  expect_node(g, same, OP_SUB, IR_F32, SH(4, 3));
  ck_assert(g->node[same].in[0] == x && g->node[same].in[1] == x);
  /* [4, 3] + [3]: b gets a RESHAPE to [1, 3] then a BROADCAST to [4, 3]. */
  n0 = g->n;
  int add = ir_binary(g, OP_ADD, x, b, here);
  ck_assert_int_eq(g->n, n0 + 3);
  expect_node(g, n0, OP_RESHAPE, IR_F32, SH(1, 3));
  expect_node(g, n0 + 1, OP_BROADCAST, IR_F32, SH(4, 3));
  expect_node(g, add, OP_ADD, IR_F32, SH(4, 3));
  ck_assert_int_eq(g->node[n0].in[0], b);
  ck_assert_int_eq(g->node[n0 + 1].in[0], n0);
  ck_assert(g->node[add].in[0] == x && g->node[add].in[1] == n0 + 1);
  /* [4, 1] * [3]: both sides stretch. */
  n0 = g->n;
  int outer = ir_binary(g, OP_MUL, col, b, here);
  ck_assert_int_eq(g->n, n0 + 4);
  expect_node(g, n0, OP_BROADCAST, IR_F32, SH(4, 3));
  expect_node(g, n0 + 1, OP_RESHAPE, IR_F32, SH(1, 3));
  expect_node(g, n0 + 2, OP_BROADCAST, IR_F32, SH(4, 3));
  expect_node(g, outer, OP_MUL, IR_F32, SH(4, 3));
  ck_assert(g->node[outer].in[0] == n0 && g->node[outer].in[1] == n0 + 2);
  /* A scalar constant broadcasts too; comparisons give i32. */
  int two = ir_scalar(g, IR_F32, 2, here);
  n0 = g->n;
  int gt = ir_binary(g, OP_GT, two, x, here);
  expect_node(g, n0, OP_RESHAPE, IR_F32, SH(1, 1));
  expect_node(g, n0 + 1, OP_BROADCAST, IR_F32, SH(4, 3));
  expect_node(g, gt, OP_GT, IR_I32, SH(4, 3));
  ck_assert_int_eq(g->node[gt].in[0], n0 + 1);
  /* Broadcasting to a higher rank with no stretching is a RESHAPE alone. */
  n0 = g->n;
  int r = ir_broadcast_to(g, b, SH(1, 1, 3), here);
  ck_assert_int_eq(g->n, n0 + 1);
  expect_node(g, r, OP_RESHAPE, IR_F32, SH(1, 1, 3));
  ck_assert_int_eq(ir_broadcast_to(g, x, SH(4, 3), here), x);
  expect_valid(g);
  ir_graph_free(g);
}
END_TEST

START_TEST(where_broadcasting) {
  IrGraph *g = ir_graph_new("f");
  int cond = ir_input(g, "c", IR_I32, SH(4, 1), here);
  int a = ir_scalar(g, IR_F32, -1e9, here);
  int b = ir_input(g, "b", IR_F32, SH(4, 3), here);
  int n0 = g->n;
  int w = ir_where(g, cond, a, b, here);
  ck_assert_int_eq(g->n, n0 + 4);
  expect_node(g, n0, OP_BROADCAST, IR_I32, SH(4, 3));
  expect_node(g, n0 + 1, OP_RESHAPE, IR_F32, SH(1, 1));
  expect_node(g, n0 + 2, OP_BROADCAST, IR_F32, SH(4, 3));
  expect_node(g, w, OP_WHERE, IR_F32, SH(4, 3));
  ck_assert(g->node[w].in[0] == n0 && g->node[w].in[1] == n0 + 2 && g->node[w].in[2] == b);
  int bad = ir_input(g, "bad", IR_F32, SH(2, 3), here);
  Snapshot s = snap(g);
  ck_assert_int_eq(ir_where(g, cond, a, bad, here), -1);
  ck_assert_str_eq(g->error, "where: cannot broadcast condition [4, 1], a [] and b [2, 3] together");
  expect_unchanged(g, &s, "ir_where");
  ck_assert_int_eq(ir_where(g, b, a, b, here), -1);
  ck_assert_str_eq(g->error, "where: the condition must be i32, got f32");
  expect_valid(g);
  ir_graph_free(g);
}
END_TEST

START_TEST(param_dedupe) {
  IrGraph *g = ir_graph_new("f");
  int w = ir_param(g, "blk.w", SH(8, 4), IR_INIT_UNIFORM, -1, 1, here);
  int v = ir_param(g, "blk.v", SH(4), IR_INIT_ZEROS, 0, 0, here);
  ck_assert_int_eq(ir_param(g, "blk.w", SH(8, 4), IR_INIT_ZEROS, 0, 0, here), w);
  ck_assert_int_eq(g->nparam, 2);
  ck_assert_int_eq(g->n, 2);
  ck_assert_int_eq(ir_param_count(g), 36);
  Snapshot s = snap(g);
  SrcLoc there = {"u.dal", 9, 2};
  ck_assert_int_eq(ir_param(g, "blk.w", SH(4, 8), IR_INIT_ZEROS, 0, 0, there), -1);
  ck_assert_str_eq(g->error, "param \"blk.w\": shape [4, 8] differs from its earlier use as [8, 4]");
  ck_assert(g->error_loc.line == 9 && g->error_loc.col == 2 && strcmp(g->error_loc.file, "u.dal") == 0);
  expect_unchanged(g, &s, "ir_param with another shape");
  /* Order of first use is kept. */
  ck_assert(g->param[0] == w && g->param[1] == v);
  ir_graph_free(g);
}
END_TEST

/* Each misuse returns -1, explains itself and leaves the graph as it was. */
START_TEST(errors_leave_graph_unchanged) {
  IrGraph *g = ir_graph_new("f");
  int x = ir_input(g, "x", IR_F32, SH(2, 3), here);
  int k = ir_input(g, "k", IR_I32, SH(3), here);
  int p = ir_param(g, "p", SH(3), IR_INIT_ZEROS, 0, 0, here);
  int y = ir_binary(g, OP_ADD, x, p, here);
  int two = ir_input(g, "two", IR_F32, SH(2), here);
  ir_set_outputs(g, &y, NULL, 1);
  ck_assert_int_eq(g->n, 7);
  struct {
    const char *what, *msg;
  } expect[] = {
      {"dtype mismatch after broadcasting", "add: dtypes differ: f32 and i32"},
      {"incompatible broadcast", "add: cannot broadcast [2, 3] with [2]"},
      {"bad input id", "neg: input 0 is %99, which is not a node of this graph (it has 7)"},
      {"wrong arity", "matmul: expects 2 inputs, got 1"},
      {"bad attribute", "reshape: cannot reshape [2, 3] (6 elements) to [4, 2] (8 elements)"},
      {"duplicate input name", "input \"x\": duplicate argument name"},
      {"unnamed input via ir_build", "input: needs a name (build it with ir_input or ir_build_named)"},
      {"name on a non-leaf", "neg: only input and param nodes have names (got \"n\")"},
      {"param defined twice via ir_build_named", "param \"p\": already in the graph"},
      {"ir_unary of a reduction", "sum: not an elementwise unary op without attributes (ir_unary)"},
      {"ir_binary of matmul", "matmul: not an elementwise binary op (ir_binary)"},
      {"ir_reduce of argmax", "argmax: ir_reduce builds sum and reduce_max only"},
      {"unknown op", "unknown op 999"},
      {"axis out of range", "softmax: axis -3 is out of range for rank 2"},
      {"bad output id", "outputs: output 0 is %42, which is not a node of this graph (it has 7)"},
      {"repeated output name", "outputs: name \"a\" is used twice"},
      {"broadcast_to a smaller rank", "broadcast: cannot broadcast [2, 3] to [3]"},
      {"bad init", "param: uniform init needs finite bounds with low <= high, got uniform(2, 1)"},
  };
  int n = (int)(sizeof expect / sizeof expect[0]);
  for (int i = 0; i < n; i++) {
    Snapshot s = snap(g);
    SrcLoc loc = {"e.dal", 100 + i, 1};
    int r = -1;
    IrAttr ra = {.shape = SH(4, 2)}, sa = {.axis = -3}, ia = {.shape = SH(2)};
    switch (i) {
    case 0: r = ir_binary(g, OP_ADD, x, k, loc); break;
    case 1: r = ir_binary(g, OP_ADD, x, two, loc); break;
    case 2: r = ir_unary(g, OP_NEG, 99, loc); break;
    case 3: r = ir_build(g, OP_MATMUL, &x, 1, NULL, loc); break;
    case 4: r = ir_reshape(g, x, ra.shape, loc); break;
    case 5: r = ir_input(g, "x", IR_F32, SH(1), loc); break;
    case 6: r = ir_build(g, OP_INPUT, NULL, 0, &ia, loc); break;
    case 7: r = ir_build_named(g, OP_NEG, &x, 1, NULL, loc, "n"); break;
    case 8: r = ir_build_named(g, OP_PARAM, NULL, 0, &(IrAttr){.shape = SH(3)}, loc, "p"); break;
    case 9: r = ir_unary(g, OP_SUM, x, loc); break;
    case 10: r = ir_binary(g, OP_MATMUL, x, x, loc); break;
    case 11: r = ir_reduce(g, OP_ARGMAX, x, 1, false, loc); break;
    case 12: r = ir_build(g, (IrOp)999, NULL, 0, NULL, loc); break;
    case 13: r = ir_build(g, OP_SOFTMAX, &x, 1, &sa, loc); break;
    case 14: ir_set_outputs(g, (int[]){42}, NULL, 1); loc = (SrcLoc){0}; break;
    case 15: ir_set_outputs(g, (int[]){x, y}, (const char *const[]){"a", "a"}, 2); loc = (SrcLoc){0}; break;
    case 16: r = ir_broadcast_to(g, x, SH(3), loc); break;
    case 17: r = ir_param(g, "q", SH(2), IR_INIT_UNIFORM, 2, 1, loc); break;
    }
    ck_assert_msg(r == -1, "%s: returned %d", expect[i].what, r);
    ck_assert_msg(strstr(g->error, expect[i].msg) == g->error, "%s: message \"%s\", expected \"%s\"", expect[i].what,
                  g->error, expect[i].msg);
    ck_assert_msg(g->error_loc.line == loc.line, "%s: error line %d, expected %d", expect[i].what, g->error_loc.line,
                  loc.line);
    expect_unchanged(g, &s, expect[i].what);
  }
  ck_assert_int_eq(ir_build(NULL, OP_NEG, &x, 1, NULL, here), -1);
  expect_valid(g);
  ir_graph_free(g);
}
END_TEST

/* Negative axes count from the end; ir_build stores them normalised. */
START_TEST(negative_axes) {
  IrGraph *g = ir_graph_new("f");
  int x = ir_input(g, "x", IR_F32, SH(2, 3, 4), here);
  int ids = ir_input(g, "ids", IR_I32, SH(2, 3), here);
  int sm = ir_build(g, OP_LOG_SOFTMAX, &x, 1, &(IrAttr){.axis = -1}, here);
  ck_assert_int_eq(g->node[sm].attr.axis, 2);
  int am = ir_build(g, OP_ARGMAX, &x, 1, &(IrAttr){.axis = -2, .keepdim = 1}, here);
  ck_assert_int_eq(g->node[am].attr.axis, 1);
  expect_node(g, am, OP_ARGMAX, IR_I32, SH(2, 1, 4));
  int oh = ir_build(g, OP_ONEHOT, &ids, 1, &(IrAttr){.axis = -1, .depth = 5}, here);
  ck_assert_int_eq(g->node[oh].attr.axis, 2);
  expect_node(g, oh, OP_ONEHOT, IR_F32, SH(2, 3, 5));
  int cc = ir_build(g, OP_CONCAT, (int[]){x, x}, 2, &(IrAttr){.axis = -3}, here);
  expect_node(g, cc, OP_CONCAT, IR_F32, SH(4, 3, 4));
  int io = ir_build(g, OP_IOTA, NULL, 0, &(IrAttr){.shape = SH(5, 6), .axis = -1}, here);
  ck_assert_int_eq(g->node[io].attr.axis, 1);
  int pm = ir_permute(g, x, (int[]){-1, 0, 1}, here);
  expect_node(g, pm, OP_PERMUTE, IR_F32, SH(4, 2, 3));
  ck_assert(g->node[pm].attr.perm[0] == 2 && g->node[pm].attr.perm[1] == 0 && g->node[pm].attr.perm[2] == 1);
  /* Out of range even from the end: reported as written. */
  ck_assert_int_eq(ir_build(g, OP_SOFTMAX, &x, 1, &(IrAttr){.axis = -4}, here), -1);
  ck_assert_str_eq(g->error, "softmax: axis -4 is out of range for rank 3 (expected 0..2)");
  expect_valid(g);
  ir_graph_free(g);
}
END_TEST

/* Attributes are copied; unchanged reshapes/permutes/broadcasts add no node. */
START_TEST(attrs_copied_and_identities) {
  IrGraph *g = ir_graph_new("f");
  int x = ir_input(g, "x", IR_F32, SH(2, 3), here);
  IrAttr a = {.axes = 0x2, .keepdim = 1};
  int s = ir_build(g, OP_SUM, &x, 1, &a, here);
  a.axes = 0x1;
  a.keepdim = 0;
  ck_assert(g->node[s].attr.axes == 0x2 && g->node[s].attr.keepdim == 1);
  expect_node(g, s, OP_SUM, IR_F32, SH(2, 1));
  int n0 = g->n;
  ck_assert_int_eq(ir_reshape(g, x, SH(2, 3), here), x);
  ck_assert_int_eq(ir_permute(g, x, (int[]){0, 1}, here), x);
  ck_assert_int_eq(ir_broadcast_to(g, x, SH(2, 3), here), x);
  ck_assert_int_eq(g->n, n0);
  int r = ir_reshape(g, x, SH(6), here);
  expect_node(g, r, OP_RESHAPE, IR_F32, SH(6));
  int m = ir_reduce(g, OP_REDUCE_MAX, x, 0x3, false, here);
  expect_node(g, m, OP_REDUCE_MAX, IR_F32, SCALAR);
  int e = ir_unary(g, OP_EXP, x, here);
  expect_node(g, e, OP_EXP, IR_F32, SH(2, 3));
  int c = ir_build(g, OP_CAST, &x, 1, &(IrAttr){.dtype = IR_I32}, here);
  expect_node(g, c, OP_CAST, IR_I32, SH(2, 3));
  expect_valid(g);
  ir_graph_free(g);
}
END_TEST

/* ir_build_named copies a graph node by node: same text, still valid. */
START_TEST(copy_with_build_named) {
  IrGraph *g = small_model(NULL);
  IrGraph *h = ir_graph_new(g->name);
  h->train = g->train;
  for (int i = 0; i < g->n; i++) {
    const IrNode *n = &g->node[i];
    int id = ir_build_named(h, n->op, n->in, n->nin, &n->attr, n->loc, n->name);
    ck_assert_msg(id == i, "copying %%%d: %s", i, h->error);
  }
  ir_set_outputs(h, g->output, (const char *const *)g->output_name, g->noutput);
  expect_valid(h);
  char *a = print_text(g), *b = print_text(h);
  ck_assert_str_eq(a, b);
  free(a);
  free(b);
  ir_graph_free(g);
  ir_graph_free(h);
}
END_TEST

START_TEST(outputs) {
  IrGraph *g = ir_graph_new("f");
  int x = ir_input(g, "x", IR_F32, SH(2), here);
  int y = ir_unary(g, OP_TANH, x, here);
  ir_set_outputs(g, &y, NULL, 1);
  ck_assert_int_eq(g->noutput, 1);
  ck_assert_str_eq(g->output_name[0], "out");
  /* Replacing outputs frees the old list; default names number them. */
  ir_set_outputs(g, (int[]){x, y}, NULL, 2);
  ck_assert(g->noutput == 2 && g->output[0] == x && g->output[1] == y);
  ck_assert_str_eq(g->output_name[0], "out0");
  ck_assert_str_eq(g->output_name[1], "out1");
  char name[] = "probs";
  const char *names[] = {name, NULL};
  ir_set_outputs(g, (int[]){y, x}, names, 2);
  name[0] = 'X';
  ck_assert_str_eq(g->output_name[0], "probs");
  ck_assert_str_eq(g->output_name[1], "out1");
  expect_valid(g);
  ir_set_outputs(g, NULL, NULL, 0);
  ck_assert_int_eq(g->noutput, 0);
  ir_graph_free(g);
}
END_TEST

START_TEST(many_nodes) {
  IrGraph *g = ir_graph_new("chain");
  int v = ir_input(g, "x", IR_F32, SH(8), here);
  for (int i = 0; i < 2000; i++) v = ir_unary(g, i % 2 ? OP_TANH : OP_NEG, v, here);
  ck_assert_int_eq(v, 2000);
  ck_assert_int_ge(g->cap, g->n);
  ir_set_outputs(g, &v, NULL, 1);
  expect_valid(g);
  ir_graph_free(g);
}
END_TEST

/* ---- verifier ---- */

START_TEST(verify_accepts_model) {
  IrGraph *g = small_model(NULL);
  expect_valid(g);
  ck_assert_int_eq(g->ninput, 2);
  ck_assert_int_eq(g->nparam, 6);
  ck_assert_int_eq(ir_param_count(g), 16 * 27 + 16 + 16 + 16 + 3 * 16 + 16 * 16 * 16);
  int loss = g->output[0];
  expect_node(g, loss, OP_MUL, IR_F32, SCALAR);
  ir_graph_free(g);
}
END_TEST

/* Corruption number _i of a freshly built model, and the message fragment
 * ir_verify must give for it. */
static const char *corrupt(IrGraph *g, int which, int conv) {
  int add = -1;
  for (int i = 0; i < g->n; i++)
    if (g->node[i].op == OP_ADD) add = i;
  int last = g->n - 1;
  switch (which) {
  case 0: g->node[conv].in[0] = conv + 1; return "(conv2d): input 0 is %8, which is not an earlier node";
  case 1:
    g->node[conv].shape.d[1] = 15;
    return "(conv2d): recorded as f32[4, 15, 8, 8] but its shape rule gives f32[4, 16, 8, 8]";
  case 2: g->node[conv].dtype = IR_I32; return "recorded as i32[4, 16, 8, 8]";
  case 3: g->node[conv].nin = 1; return "(conv2d): has 1 inputs, the op takes 2";
  case 4: g->node[conv].op = (IrOp)77; return ": unknown op 77";
  case 5: g->node[conv].attr.stride = 0; return ": conv2d: stride must be >= 1, got 0";
  case 6: g->node[add].in[1] = g->input[0]; return ": add: shapes differ: [4, 16, 8, 8] and [4, 3, 16, 16]";
  case 7:
    free(g->node[g->param[0]].name);
    g->node[g->param[0]].name = NULL;
    return "(param): has no name";
  case 8: g->node[conv].name = strdup("c"); return "(conv2d): has a name (\"c\")";
  case 9: g->ninput--; return "(input) is missing from the input list";
  case 10: g->param[1] = conv; return "param list: entry 1 is %7, a conv2d node";
  case 11: g->param[1] = g->param[0]; return "param list: %2 appears twice";
  case 12: g->input[0] = 99; return "input list: entry 0 is %99, not a node";
  case 13: g->output[0] = g->n; return "output 0 is %";
  case 14: g->output[0] = conv; return "training entry must return a scalar f32 loss first, got f32[4, 16, 8, 8]";
  case 15:
    free(g->node[g->input[1]].name);
    g->node[g->input[1]].name = strdup("x");
    return "input list: name \"x\" is used by %0 and %1";
  case 16: free(g->output_name[0]); g->output_name[0] = NULL; return "output 0 has no name";
  case 17:
    g->node[last].shape = ir_shape_make(1, (int64_t[]){1});
    return "recorded as f32[1] but its shape rule gives f32[]";
  case 18: g->n = g->cap + 1; return "node array is inconsistent";
  case 19: g->node[g->param[0]].attr.init = (IrInitKind)5; return "param: unknown init kind 5";
  case 20: /* the same target updated twice (ir_add_update refuses that; a pass could still do it) */
    ck_assert_int_eq(ir_add_update(g, g->param[0], g->param[0], (SrcLoc){0}), 0);
    ck_assert_int_eq(ir_add_update(g, g->param[1], g->param[1], (SrcLoc){0}), 1);
    g->update_target[1] = g->update_value[1] = g->param[0];
    return "updates 0 and 1 both write";
  }
  return NULL;
}
#define NCORRUPT 21

START_TEST(verify_rejects_corrupted) {
  int conv;
  IrGraph *g = small_model(&conv);
  ck_assert_int_eq(conv, 7);
  int n = g->n;
  const char *want = corrupt(g, _i, conv);
  ck_assert_ptr_nonnull(want);
  char err[512] = "";
  ck_assert_msg(!ir_verify(g, err, sizeof err), "corruption %d was accepted (expected \"%s\")", _i, want);
  ck_assert_msg(strstr(err, want) != NULL, "corruption %d: \"%s\" lacks \"%s\"", _i, err, want);
  g->n = n;
  if (_i == 9) g->ninput++;
  ir_graph_free(g);
}
END_TEST

/* ---- printer and Graphviz ---- */

START_TEST(print_text_form) {
  int conv;
  IrGraph *g = small_model(&conv);
  char *t = print_text(g);
  const char *lines[] = {
      "entry loss (train): 2 inputs, 6 params, 1 output\n",
      "  %0 = input \"x\" : f32[4, 3, 16, 16]   # models/dvae.dal:21:13\n",
      "  %1 = input \"scale\" : f32[]   # models/dvae.dal:21:13\n",
      "  %2 = param \"enc.conv_in.weight\" init=uniform(-0.19, 0.19) : f32[16, 3, 3, 3]   # models/dvae.dal:21:13\n",
      "  %3 = param \"enc.conv_in.bias\" init=zeros : f32[16]   # models/dvae.dal:21:13\n",
      "  %4 = param \"enc.norm.weight\" init=ones : f32[16]   # models/dvae.dal:22:9\n",
      "  %6 = param \"enc.out.weight\" init=normal(0, 0.02) : f32[3, 16, 1, 1]   # models/dvae.dal:22:9\n",
      "  %7 = conv2d %0, %2  stride=2 pad=1  : f32[4, 16, 8, 8]   # models/dvae.dal:21:13\n",
      "  %8 = reshape %3 : f32[16, 1, 1]   # models/dvae.dal:21:13\n",
      "  %9 = reshape %8 : f32[1, 16, 1, 1]   # models/dvae.dal:21:13\n",
      "  %10 = broadcast %9 : f32[4, 16, 8, 8]   # models/dvae.dal:21:13\n",
      "  %11 = add %7, %10 : f32[4, 16, 8, 8]   # models/dvae.dal:21:13\n",
      "  %12 = group_norm %11, %4, %5  groups=4 eps=1e-05  : f32[4, 16, 8, 8]   # models/dvae.dal:22:9\n",
      "  %13 = relu %12 : f32[4, 16, 8, 8]   # models/dvae.dal:22:9\n",
      "  %15 = conv_transpose2d %13, %14  stride=2 pad=1  : f32[4, 16, 16, 16]   # models/dvae.dal:22:9\n",
      "  %16 = conv2d %15, %6  stride=1 pad=0  : f32[4, 3, 16, 16]   # models/dvae.dal:22:9\n",
      "  %19 = sum %18  axes=[0, 1, 2, 3]  : f32[]   # models/dvae.dal:22:9\n",
      "  return %20 (\"loss\")\n",
  };
  for (size_t i = 0; i < sizeof lines / sizeof lines[0]; i++)
    ck_assert_msg(strstr(t, lines[i]) != NULL, "ir_print output lacks line:\n%swhole output:\n%s", lines[i], t);
  ck_assert_msg(strncmp(t, lines[0], strlen(lines[0])) == 0, "header is not the first line:\n%s", t);
  /* One line per node plus header and return. */
  int nl = 0;
  for (const char *p = t; *p; p++) nl += *p == '\n';
  ck_assert_int_eq(nl, g->n + 2);
  free(t);
  ir_graph_free(g);
}
END_TEST

START_TEST(print_attrs) {
  IrGraph *g = ir_graph_new("sample");
  SrcLoc nowhere = {0};
  int x = ir_input(g, "x", IR_F32, SH(2, 3, 4), nowhere);
  int ids = ir_input(g, "ids", IR_I32, SH(2, 3), nowhere);
  ir_build(g, OP_SLICE, &x, 1, &(IrAttr){.start = {0, 1, 2}, .stop = {2, 3, 4}}, nowhere);
  ir_permute(g, x, (int[]){2, 0, 1}, nowhere);
  ir_build(g, OP_ONEHOT, &ids, 1, &(IrAttr){.axis = 2, .depth = 7}, nowhere);
  ir_build(g, OP_MATMUL, (int[]){x, x}, 2, &(IrAttr){.trans_b = 1}, nowhere);
  ir_build(g, OP_CAST, &x, 1, &(IrAttr){.dtype = IR_I32}, nowhere);
  ir_build(g, OP_GUMBEL, NULL, 0, &(IrAttr){.shape = SH(2), .salt = 3}, nowhere);
  ir_const(g, IR_F32, SH(2), 0.25, nowhere);
  ir_build(g, OP_ARGMAX, &x, 1, &(IrAttr){.axis = 1, .keepdim = 1}, nowhere);
  int ce = ir_build(g, OP_CROSS_ENTROPY, (int[]){x, ids}, 2, NULL, nowhere);
  ck_assert_msg(ce >= 0, "%s", g->error);
  ir_set_outputs(g, (int[]){ce, x}, (const char *const[]){"nll", "x"}, 2);
  char *t = print_text(g);
  const char *lines[] = {
      "entry sample: 2 inputs, 0 params, 2 outputs\n",
      "  %2 = slice %0  range=[0:2, 1:3, 2:4]  : f32[2, 2, 2]\n",
      "  %3 = permute %0  perm=[2, 0, 1]  : f32[4, 2, 3]\n",
      "  %4 = onehot %1  depth=7 axis=2  : f32[2, 3, 7]\n",
      "  %5 = matmul %0, %0  trans_b=1  : f32[2, 3, 3]\n",
      "  %6 = cast %0  to=i32  : i32[2, 3, 4]\n",
      "  %7 = gumbel salt=3 : f32[2]\n",
      "  %8 = const value=0.25 : f32[2]\n",
      "  %9 = argmax %0  axis=1 keepdim=1  : i32[2, 1, 4]\n",
      "  %10 = cross_entropy %0, %1 : f32[2, 3]\n",
      "  return %10 (\"nll\"), %0 (\"x\")\n",
  };
  for (size_t i = 0; i < sizeof lines / sizeof lines[0]; i++)
    ck_assert_msg(strstr(t, lines[i]) != NULL, "ir_print output lacks line:\n%swhole output:\n%s", lines[i], t);
  ck_assert_ptr_null(strstr(t, "#")); /* no location, no comment */
  free(t);
  ir_graph_free(g);
}
END_TEST

START_TEST(dot_renders) {
  IrGraph *g = small_model(NULL);
  free(g->node[g->param[0]].name);
  g->node[g->param[0]].name = strdup("odd \"name\" \\ here"); /* must be escaped */
  char *dot = tu_path("g.dot"), *png = tu_path("g.png");
  FILE *f = fopen(dot, "w");
  ck_assert_ptr_nonnull(f);
  ir_print_dot(g, f);
  fclose(f);
  char *text = tu_read_file(dot, NULL);
  ck_assert_ptr_nonnull(text);
  ck_assert(strncmp(text, "digraph \"loss\" {\n", 17) == 0);
  ck_assert_ptr_nonnull(strstr(text, "n0 [label=\"%0 input \\\"x\\\"\\nf32[4, 3, 16, 16]\", shape=ellipse"));
  ck_assert_ptr_nonnull(
      strstr(text, "n2 [label=\"%2 param \\\"odd \\\"name\\\" \\\\ here\\\"\\ninit=uniform(-0.19, 0.19)"));
  ck_assert_ptr_nonnull(strstr(text, "n7 [label=\"%7 conv2d\\nstride=2 pad=1\\nf32[4, 16, 8, 8]\"]"));
  ck_assert_ptr_nonnull(strstr(text, "  n0 -> n7 [label=\"0\"];\n  n2 -> n7 [label=\"1\"];\n"));
  ck_assert_ptr_nonnull(strstr(text, "n13 -> n15 [label=\"0\"]"));
  ck_assert_ptr_nonnull(strstr(text, "n20 -> out0 [style=dashed]"));
  /* One edge per operand plus one per output. */
  int edges = 0, operands = 0;
  for (const char *p = text; (p = strstr(p, " -> ")); p++) edges++;
  for (int i = 0; i < g->n; i++) operands += g->node[i].nin;
  ck_assert_int_eq(edges, operands + g->noutput);
  int status;
  char *out = tu_sh_output(&status, "dot -Tpng '%s' -o '%s'", dot, png);
  ck_assert_msg(status == 0, "dot failed (%d): %s", status, out);
  size_t size = 0;
  char *img = tu_read_file(png, &size);
  ck_assert_ptr_nonnull(img);
  ck_assert_uint_gt(size, 1000);
  ck_assert(memcmp(img, "\x89PNG", 4) == 0);
  free(img);
  free(out);
  free(text);
  free(dot);
  free(png);
  ir_graph_free(g);
}
END_TEST

static Suite *ir_suite(void) {
  Suite *s = suite_create("ir");
  TCase *tc = tcase_create("builder");
  tcase_add_test(tc, graph_new_and_free);
  tcase_add_test(tc, leaves);
  tcase_add_test(tc, binary_broadcasting);
  tcase_add_test(tc, where_broadcasting);
  tcase_add_test(tc, param_dedupe);
  tcase_add_test(tc, errors_leave_graph_unchanged);
  tcase_add_test(tc, negative_axes);
  tcase_add_test(tc, attrs_copied_and_identities);
  tcase_add_test(tc, copy_with_build_named);
  tcase_add_test(tc, outputs);
  tcase_add_test(tc, many_nodes);
  suite_add_tcase(s, tc);
  tc = tcase_create("verify");
  tcase_add_test(tc, verify_accepts_model);
  tcase_add_loop_test(tc, verify_rejects_corrupted, 0, NCORRUPT);
  suite_add_tcase(s, tc);
  tc = tcase_create("print");
  tcase_add_test(tc, print_text_form);
  tcase_add_test(tc, print_attrs);
  tcase_add_test(tc, dot_renders);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) { return tu_run_suite(ir_suite()); }
