/* test_ref.c — the reference executor against independently computed values.
 *
 * tests/fixtures/ref_ops.py (numpy, and PyTorch for convolutions, norms,
 * gelu, silu, log_softmax and cross_entropy) writes each case's inputs and
 * expected output as .npy into the test's tmp dir; the case table below
 * builds the same op with the IR builder, runs ref_run and compares: f32 to
 * 1e-5 relative (max-abs difference over max-abs of the expected), i32
 * exactly. Other tests cover a multi-op graph with parameters, broadcasting
 * through the builders, binding and data errors, i32 corner cases, Gumbel
 * noise, output ownership, and that every op of ops.def has a kernel and a
 * test. */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ir/ref/ref.h"
#include "ir/ir.h"
#include "runtime/io/npy.h"
#include "runtime/core/rng.h"
#include "tests/util.h"

#define LOC ((SrcLoc){"test_ref.c", __LINE__, 1})
/* An IrShape literal: SH(rank, dims...). */
#define SH(r, ...) {.rank = (r), .d = {__VA_ARGS__}}
/* All-zero attributes (a designated initializer keeps -Wextra quiet). */
#define NO_ATTR {.axis = 0}

/* One op on fixture inputs NAME.in0.npy ... with expected NAME.out.npy. */
typedef struct {
  const char *name;
  IrOp op;
  int nin;
  IrAttr attr;
} OpCase;

static const OpCase cases[] = {
    /* leaves */
    {"const_f32", OP_CONST, 0, {.shape = SH(2, 2, 3), .dtype = IR_F32, .value = 1.5}},
    {"const_i32", OP_CONST, 0, {.shape = SH(1, 4), .dtype = IR_I32, .value = -7}},
    {"const_scalar", OP_CONST, 0, {.shape = {.rank = 0}, .dtype = IR_F32, .value = 0.25}},
    {"iota_ax1", OP_IOTA, 0, {.shape = SH(3, 2, 3, 4), .axis = 1}},
    {"iota_ax0", OP_IOTA, 0, {.shape = SH(1, 5), .axis = 0}},
    /* unary */
    {"neg_f32", OP_NEG, 1, NO_ATTR},
    {"abs_f32", OP_ABS, 1, NO_ATTR},
    {"exp", OP_EXP, 1, NO_ATTR},
    {"log", OP_LOG, 1, NO_ATTR},
    {"sqrt", OP_SQRT, 1, NO_ATTR},
    {"rsqrt", OP_RSQRT, 1, NO_ATTR},
    {"tanh", OP_TANH, 1, NO_ATTR},
    {"sigmoid", OP_SIGMOID, 1, NO_ATTR},
    {"relu", OP_RELU, 1, NO_ATTR},
    {"gelu", OP_GELU, 1, NO_ATTR},
    {"silu", OP_SILU, 1, NO_ATTR},
    {"neg_i32", OP_NEG, 1, NO_ATTR},
    {"abs_i32", OP_ABS, 1, NO_ATTR},
    {"cast_f32_i32", OP_CAST, 1, {.dtype = IR_I32}},
    {"cast_i32_f32", OP_CAST, 1, {.dtype = IR_F32}},
    {"cast_same", OP_CAST, 1, {.dtype = IR_F32}},
    {"stop_gradient", OP_STOP_GRADIENT, 1, NO_ATTR},
    {"straight_through", OP_STRAIGHT_THROUGH, 2, NO_ATTR},
    /* binary */
    {"add_f32", OP_ADD, 2, NO_ATTR},
    {"sub_f32", OP_SUB, 2, NO_ATTR},
    {"mul_f32", OP_MUL, 2, NO_ATTR},
    {"div_f32", OP_DIV, 2, NO_ATTR},
    {"max_f32", OP_MAX, 2, NO_ATTR},
    {"min_f32", OP_MIN, 2, NO_ATTR},
    {"pow", OP_POW, 2, NO_ATTR},
    {"add_i32", OP_ADD, 2, NO_ATTR},
    {"sub_i32", OP_SUB, 2, NO_ATTR},
    {"mul_i32", OP_MUL, 2, NO_ATTR},
    {"div_i32", OP_DIV, 2, NO_ATTR},
    {"max_i32", OP_MAX, 2, NO_ATTR},
    {"min_i32", OP_MIN, 2, NO_ATTR},
    {"lt_f32", OP_LT, 2, NO_ATTR},
    {"le_f32", OP_LE, 2, NO_ATTR},
    {"gt_f32", OP_GT, 2, NO_ATTR},
    {"ge_f32", OP_GE, 2, NO_ATTR},
    {"eq_f32", OP_EQ, 2, NO_ATTR},
    {"ne_f32", OP_NE, 2, NO_ATTR},
    {"lt_i32", OP_LT, 2, NO_ATTR},
    {"le_i32", OP_LE, 2, NO_ATTR},
    {"gt_i32", OP_GT, 2, NO_ATTR},
    {"ge_i32", OP_GE, 2, NO_ATTR},
    {"eq_i32", OP_EQ, 2, NO_ATTR},
    {"ne_i32", OP_NE, 2, NO_ATTR},
    {"where_f32", OP_WHERE, 3, NO_ATTR},
    {"where_i32", OP_WHERE, 3, NO_ATTR},
    /* reductions */
    {"sum_ax1", OP_SUM, 1, {.axes = 0x2}},
    {"sum_ax02_keep", OP_SUM, 1, {.axes = 0x5, .keepdim = 1}},
    {"sum_all", OP_SUM, 1, {.axes = 0x7}},
    {"sum_i32", OP_SUM, 1, {.axes = 0x1}},
    {"rmax_ax1", OP_REDUCE_MAX, 1, {.axes = 0x2}},
    {"rmax_ax02_keep", OP_REDUCE_MAX, 1, {.axes = 0x5, .keepdim = 1}},
    {"rmax_i32", OP_REDUCE_MAX, 1, {.axes = 0x2}},
    {"argmax_ax1", OP_ARGMAX, 1, {.axis = 1}},
    {"argmax_ax2_keep", OP_ARGMAX, 1, {.axis = 2, .keepdim = 1}},
    {"argmax_i32", OP_ARGMAX, 1, {.axis = 0}},
    {"softmax_ax1", OP_SOFTMAX, 1, {.axis = 1}},
    {"softmax_last", OP_SOFTMAX, 1, {.axis = 1}},
    {"log_softmax_ax1", OP_LOG_SOFTMAX, 1, {.axis = 1}},
    {"log_softmax_last", OP_LOG_SOFTMAX, 1, {.axis = 1}},
    /* data movement */
    {"reshape", OP_RESHAPE, 1, {.shape = SH(2, 4, 6)}},
    {"reshape_i32", OP_RESHAPE, 1, {.shape = SH(2, 6, 5)}},
    {"permute_201", OP_PERMUTE, 1, {.perm = {2, 0, 1}}},
    {"permute_i32", OP_PERMUTE, 1, {.perm = {3, 1, 0, 2}}},
    {"broadcast", OP_BROADCAST, 1, {.shape = SH(3, 3, 5, 4)}},
    {"broadcast_i32", OP_BROADCAST, 1, {.shape = SH(2, 3, 4)}},
    {"slice", OP_SLICE, 1, {.start = {1, 0, 2}, .stop = {3, 5, 5}}},
    {"concat_ax1", OP_CONCAT, 2, {.axis = 1}},
    {"concat_ax0_i32", OP_CONCAT, 2, {.axis = 0}},
    {"concat_last", OP_CONCAT, 2, {.axis = 1}},
    {"gather", OP_GATHER, 2, NO_ATTR},
    {"gather_1d", OP_GATHER, 2, NO_ATTR},
    {"gather_backward", OP_GATHER_BACKWARD, 2, {.shape = SH(3, 6, 2, 3)}},
    {"gather_backward_1d", OP_GATHER_BACKWARD, 2, {.shape = SH(1, 5)}},
    {"onehot_ax1", OP_ONEHOT, 1, {.axis = 1, .depth = 5}},
    {"onehot_last", OP_ONEHOT, 1, {.axis = 2, .depth = 5}},
    {"onehot_ax0", OP_ONEHOT, 1, {.axis = 0, .depth = 5}},
    /* matmul */
    /* fused attention (tests/fixtures/ref_ops.py: PyTorch in float64) */
    {"attention", OP_ATTENTION, 4, {.value = 0.35}},
    {"attention_backward", OP_ATTENTION_BACKWARD, 6, {.value = 0.35}},
    {"attention_random", OP_ATTENTION, 4, {.value = 0.5}},
    {"attention_random_backward", OP_ATTENTION_BACKWARD, 6, {.value = 0.5}},
    {"matmul", OP_MATMUL, 2, NO_ATTR},
    {"matmul_ta", OP_MATMUL, 2, {.trans_a = 1}},
    {"matmul_tb", OP_MATMUL, 2, {.trans_b = 1}},
    {"matmul_tab", OP_MATMUL, 2, {.trans_a = 1, .trans_b = 1}},
    {"matmul_shared", OP_MATMUL, 2, NO_ATTR},
    {"matmul_shared_tb", OP_MATMUL, 2, {.trans_b = 1}},
    {"matmul_2d", OP_MATMUL, 2, NO_ATTR},
    /* convolutions (k4 s2 p1 is the dVAE's down- and upsampling) */
    {"conv2d_k3s1p1", OP_CONV2D, 2, {.stride = 1, .pad = 1}},
    {"conv2d_k4s2p1", OP_CONV2D, 2, {.stride = 2, .pad = 1}},
    {"conv2d_k1", OP_CONV2D, 2, {.stride = 1, .pad = 0}},
    {"conv2d_k3s2p0", OP_CONV2D, 2, {.stride = 2, .pad = 0}},
    {"conv2d_k3s3p2", OP_CONV2D, 2, {.stride = 3, .pad = 2}},
    {"convt_k4s2p1", OP_CONV_TRANSPOSE2D, 2, {.stride = 2, .pad = 1}},
    {"convt_k3s1p1", OP_CONV_TRANSPOSE2D, 2, {.stride = 1, .pad = 1}},
    {"convt_k3s2p0", OP_CONV_TRANSPOSE2D, 2, {.stride = 2, .pad = 0}},
    {"convt_k2s2p0", OP_CONV_TRANSPOSE2D, 2, {.stride = 2, .pad = 0}},
    {"convt_k5s3p2", OP_CONV_TRANSPOSE2D, 2, {.stride = 3, .pad = 2}},
    {"conv2d_bw_k3s1p1", OP_CONV2D_BACKWARD_WEIGHT, 2, {.shape = SH(4, 4, 3, 3, 3), .stride = 1, .pad = 1}},
    {"conv2d_bw_k4s2p1", OP_CONV2D_BACKWARD_WEIGHT, 2, {.shape = SH(4, 5, 3, 4, 4), .stride = 2, .pad = 1}},
    {"conv2d_bw_k3s2p0", OP_CONV2D_BACKWARD_WEIGHT, 2, {.shape = SH(4, 3, 2, 3, 3), .stride = 2, .pad = 0}},
    {"conv2d_bw_k1", OP_CONV2D_BACKWARD_WEIGHT, 2, {.shape = SH(4, 2, 4, 1, 1), .stride = 1, .pad = 0}},
    /* norms and loss */
    {"group_norm", OP_GROUP_NORM, 3, {.groups = 3, .eps = 1e-5f}},
    {"group_norm_rank3", OP_GROUP_NORM, 3, {.groups = 2, .eps = 1e-3f}},
    {"group_norm_g1", OP_GROUP_NORM, 3, {.groups = 1, .eps = 1e-5f}},
    {"layer_norm", OP_LAYER_NORM, 3, {.eps = 1e-5f}},
    {"layer_norm_2d", OP_LAYER_NORM, 3, {.eps = 1e-6f}},
    {"cross_entropy", OP_CROSS_ENTROPY, 2, NO_ATTR},
    {"cross_entropy_1d", OP_CROSS_ENTROPY, 2, NO_ATTR},
};
#define NCASES ((int)(sizeof cases / sizeof cases[0]))

/* ---- helpers ---- */

/* Runs the fixture script once, before the tests fork. */
static void make_fixtures(void) {
  int status;
  char *log = tu_sh_output(&status, "/usr/bin/python3 tests/fixtures/ref_ops.py '%s'", tu_tmpdir());
  if (status != 0) {
    fprintf(stderr, "tests/fixtures/ref_ops.py failed (status %d):\n%s\n", status, log);
    free(log);
    exit(1);
  }
  free(log);
}

/* Loads "<tmpdir>/<name>.<part>.npy". */
static RtTensor *load(const char *name, const char *part) {
  char file[160];
  snprintf(file, sizeof file, "%s.%s.npy", name, part);
  char *path = tu_path(file);
  RtTensor *t = NULL;
  RtErr e;
  int rc = rt_npy_read(path, &t, &e);
  free(path);
  ck_assert_msg(rc == 0, "%s", e.msg);
  return t;
}

static RtTensor *tensor(RtDType dt, int rank, const int64_t *dim, const void *data) {
  RtErr e;
  RtTensor *t = rt_tensor_new(dt, rank, dim, &e);
  ck_assert_msg(t != NULL, "%s", e.msg);
  if (data) memcpy(t->data, data, rt_tensor_bytes(t));
  return t;
}

static IrShape shape_of(const RtTensor *t) { return ir_shape_make(t->rank, t->dim); }

/* got must have want's dtype and shape, and match it: i32 exactly, f32 to
 * 1e-5 relative. */
static void expect_match(const char *what, const RtTensor *got, const RtTensor *want) {
  char gs[160], ws[160];
  rt_shape_str(got->rank, got->dim, gs, sizeof gs);
  rt_shape_str(want->rank, want->dim, ws, sizeof ws);
  IrShape a = shape_of(got), b = shape_of(want);
  ck_assert_msg(got->dtype == want->dtype && ir_shape_eq(&a, &b), "%s: got %s%s, expected %s%s", what,
                rt_dtype_name(got->dtype), gs, rt_dtype_name(want->dtype), ws);
  int64_t n = rt_tensor_numel(want);
  if (want->dtype == RT_I32) {
    for (int64_t i = 0; i < n; i++)
      ck_assert_msg(rt_i32(got)[i] == rt_i32(want)[i], "%s: element %lld is %d, expected %d", what, (long long)i,
                    rt_i32(got)[i], rt_i32(want)[i]);
  } else {
    double err = tu_rel_err(rt_f32(got), rt_f32(want), n);
    ck_assert_msg(err <= 1e-5, "%s: relative error %.3g > 1e-5", what, err);
  }
}

static void free_all(RtTensor **t, int n) {
  for (int i = 0; i < n; i++) rt_tensor_free(t[i]);
}

/* Runs g (no params) on inputs; asserts success; returns the outputs in out. */
static void run_ok(const IrGraph *g, RtTensor *const *in, RtTensor *const *params, RtTensor **out,
                   const RefOptions *opt) {
  RtErr e = {{0}};
  int rc = ref_run(g, in, params, out, opt, &e);
  ck_assert_msg(rc == 0, "ref_run(%s): %s", g->name, e.msg);
}

/* Runs g expecting failure; returns the message (static buffer). Asserts
 * every output slot is NULL afterwards. */
static const char *run_fail(const IrGraph *g, RtTensor *const *in, RtTensor *const *params) {
  static RtErr e;
  RtTensor *out[4] = {(RtTensor *)&e, (RtTensor *)&e, (RtTensor *)&e, (RtTensor *)&e};
  e.msg[0] = 0;
  int rc = ref_run(g, in, params, out, NULL, &e);
  ck_assert_msg(rc == -1, "ref_run(%s) succeeded, expected an error", g->name);
  for (int i = 0; i < g->noutput; i++) ck_assert_msg(out[i] == NULL, "output %d not NULL after an error", i);
  ck_assert_msg(e.msg[0] != 0, "no error message");
  return e.msg;
}

static void expect_has(const char *msg, const char *part) {
  ck_assert_msg(strstr(msg, part) != NULL, "message \"%s\" does not contain \"%s\"", msg, part);
}

/* ---- every op against numpy / PyTorch ---- */

START_TEST(test_op_case) {
  const OpCase *c = &cases[_i];
  IrGraph *g = ir_graph_new(c->name);
  RtTensor *in[IR_MAX_IN] = {0};
  int ids[IR_MAX_IN];
  for (int i = 0; i < c->nin; i++) {
    char part[16], name[16];
    snprintf(part, sizeof part, "in%d", i);
    snprintf(name, sizeof name, "x%d", i);
    in[i] = load(c->name, part);
    ids[i] = ir_input(g, name, (IrDType)in[i]->dtype, shape_of(in[i]), LOC);
    ck_assert_msg(ids[i] >= 0, "%s: %s", c->name, g->error);
  }
  int id = ir_build(g, c->op, ids, c->nin, &c->attr, LOC);
  ck_assert_msg(id >= 0, "%s: %s", c->name, g->error);
  ir_set_outputs(g, &id, NULL, 1);
  RtTensor *out[1];
  run_ok(g, in, NULL, out, NULL);
  RtTensor *want = load(c->name, "out");
  expect_match(c->name, out[0], want);
  rt_tensor_free(want);
  rt_tensor_free(out[0]);
  free_all(in, c->nin);
  ir_graph_free(g);
}
END_TEST

/* Every op has a kernel, and a test: a case above or a dedicated test. */
START_TEST(test_all_ops_covered) {
  bool tested[OP_COUNT] = {false};
  for (int i = 0; i < NCASES; i++) tested[cases[i].op] = true;
  tested[OP_INPUT] = true;  /* every case; test_binding_errors */
  tested[OP_PARAM] = true;  /* test_chain, test_binding_errors */
  tested[OP_GUMBEL] = true; /* test_gumbel */
  tested[OP_STATE] = true;  /* test_updates */
  for (int op = 0; op < OP_COUNT; op++) {
    ck_assert_msg(ref_has_kernel((IrOp)op), "no reference kernel for %s", ir_op_name((IrOp)op));
    ck_assert_msg(tested[op], "no test for %s", ir_op_name((IrOp)op));
  }
  ck_assert(!ref_has_kernel(OP_COUNT));
}
END_TEST

/* ---- persistent-state updates ---- */

/* One step of "count += 1; w -= 0.5 * w": updates are written into the
 * bound tensors after the run, and the outputs see the old values. */
START_TEST(test_updates) {
  IrGraph *g = ir_graph_new("step");
  int w = ir_param(g, "w", ir_shape_make(1, (int64_t[]){3}), IR_INIT_ZEROS, 0, 0, LOC);
  int count = ir_state(g, "count", ir_shape_make(0, NULL), LOC);
  ck_assert_int_eq(ir_state(g, "count", ir_shape_make(0, NULL), LOC), count);
  int half = ir_binary(g, OP_MUL, w, ir_scalar(g, IR_F32, 0.5, LOC), LOC);
  int new_w = ir_binary(g, OP_SUB, w, half, LOC);
  int new_count = ir_binary(g, OP_ADD, count, ir_scalar(g, IR_F32, 1, LOC), LOC);
  ck_assert_int_ge(ir_add_update(g, w, new_w, LOC), 0);
  ck_assert_int_ge(ir_add_update(g, count, new_count, LOC), 0);
  ck_assert_int_eq(ir_add_update(g, count, new_count, LOC), -1); /* twice */
  ck_assert_ptr_nonnull(strstr(g->error, "updated twice"));
  ck_assert_int_eq(ir_add_update(g, half, new_w, LOC), -1); /* not persistent */
  ck_assert_int_eq(ir_add_update(g, count, new_w, LOC), -1); /* shape */
  ir_set_outputs(g, &w, NULL, 1);
  RtTensor *wt = tensor(RT_F32, 1, (int64_t[]){3}, (float[]){2, 4, -8});
  RtTensor *ct = tensor(RT_F32, 0, NULL, (float[]){0});
  RtTensor *params[2] = {wt, ct};
  for (int step = 1; step <= 3; step++) {
    RtTensor *out[1];
    float before = rt_f32(wt)[0];
    run_ok(g, NULL, params, out, NULL);
    ck_assert(rt_f32(out[0])[0] == before); /* outputs are computed before the updates */
    rt_tensor_free(out[0]);
    ck_assert(rt_f32(ct)[0] == (float)step);
  }
  ck_assert(rt_f32(wt)[0] == 0.25f && rt_f32(wt)[1] == 0.5f && rt_f32(wt)[2] == -1.0f);
  free_all(params, 2);
  ir_graph_free(g);
}
END_TEST

/* Updates read the values from before any update: a swap a <- b, b <- a. */
START_TEST(test_updates_swap) {
  IrGraph *g = ir_graph_new("swap");
  IrShape s2 = ir_shape_make(1, (int64_t[]){2});
  int a = ir_state(g, "a", s2, LOC), b = ir_state(g, "b", s2, LOC);
  ck_assert_int_ge(ir_add_update(g, a, b, LOC), 0);
  ck_assert_int_ge(ir_add_update(g, b, a, LOC), 0);
  int sum = ir_binary(g, OP_ADD, a, b, LOC);
  ir_set_outputs(g, &sum, NULL, 1);
  RtTensor *at = tensor(RT_F32, 1, (int64_t[]){2}, (float[]){1, 2});
  RtTensor *bt = tensor(RT_F32, 1, (int64_t[]){2}, (float[]){10, 20});
  RtTensor *params[2] = {at, bt}, *out[1];
  run_ok(g, NULL, params, out, NULL);
  ck_assert(rt_f32(out[0])[0] == 11 && rt_f32(out[0])[1] == 22);
  ck_assert(rt_f32(at)[0] == 10 && rt_f32(at)[1] == 20);
  ck_assert(rt_f32(bt)[0] == 1 && rt_f32(bt)[1] == 2);
  rt_tensor_free(out[0]);
  free_all(params, 2);
  ir_graph_free(g);
}
END_TEST

/* ---- graphs of several ops ---- */

/* probs, logits = softmax(layer_norm(x) @ W + b), layer_norm(x) @ W + b,
 * with gamma, beta, W, b as parameters; checked against PyTorch. */
START_TEST(test_chain) {
  IrGraph *g = ir_graph_new("chain");
  RtTensor *x = load("chain", "in0");
  RtTensor *p[4] = {load("chain", "p0"), load("chain", "p1"), load("chain", "p2"), load("chain", "p3")};
  static const char *pname[4] = {"ln.gamma", "ln.beta", "fc.weight", "fc.bias"};
  int xi = ir_input(g, "x", IR_F32, shape_of(x), LOC);
  int pi[4];
  for (int i = 0; i < 4; i++) pi[i] = ir_param(g, pname[i], shape_of(p[i]), IR_INIT_ZEROS, 0, 0, LOC);
  int ln = ir_build(g, OP_LAYER_NORM, (int[]){xi, pi[0], pi[1]}, 3, &(IrAttr){.eps = 1e-5f}, LOC);
  int mm = ir_build(g, OP_MATMUL, (int[]){ln, pi[2]}, 2, NULL, LOC);
  int z = ir_binary(g, OP_ADD, mm, pi[3], LOC); /* [4, 6] + [6]: broadcast by the builder */
  int sm = ir_build(g, OP_SOFTMAX, &z, 1, &(IrAttr){.axis = 1}, LOC);
  ck_assert_msg(sm >= 0, "%s", g->error);
  ir_set_outputs(g, (int[]){sm, z}, (const char *[]){"probs", "logits"}, 2);
  RtTensor *out[2];
  run_ok(g, &x, p, out, NULL);
  RtTensor *w0 = load("chain", "out0"), *w1 = load("chain", "out1");
  expect_match("chain probs", out[0], w0);
  expect_match("chain logits", out[1], w1);
  /* The same graph again gives bit-identical results (nothing is cached or reused). */
  RtTensor *again[2];
  run_ok(g, &x, p, again, NULL);
  ck_assert(memcmp(again[0]->data, out[0]->data, rt_tensor_bytes(out[0])) == 0);
  free_all(again, 2);
  free_all(out, 2);
  rt_tensor_free(w0);
  rt_tensor_free(w1);
  free_all(p, 4);
  rt_tensor_free(x);
  ir_graph_free(g);
}
END_TEST

/* numpy broadcasting inserted by ir_binary and ir_where, and scalars. */
START_TEST(test_broadcasting) {
  /* [3, 1, 4] + [5, 1] -> [3, 5, 4] */
  IrGraph *g = ir_graph_new("bcast_add");
  RtTensor *in[2] = {load("bcast_add", "in0"), load("bcast_add", "in1")};
  int a = ir_input(g, "a", IR_F32, shape_of(in[0]), LOC), b = ir_input(g, "b", IR_F32, shape_of(in[1]), LOC);
  int s = ir_binary(g, OP_ADD, a, b, LOC);
  ck_assert_msg(s >= 0, "%s", g->error);
  ir_set_outputs(g, &s, NULL, 1);
  RtTensor *out[1], *want = load("bcast_add", "out");
  run_ok(g, in, NULL, out, NULL);
  expect_match("bcast_add", out[0], want);
  rt_tensor_free(out[0]);
  rt_tensor_free(want);
  free_all(in, 2);
  ir_graph_free(g);

  /* where(cond [3, 1], a [1, 4], -1.5) -> [3, 4] */
  g = ir_graph_new("bcast_where");
  in[0] = load("bcast_where", "in0");
  in[1] = load("bcast_where", "in1");
  int c = ir_input(g, "cond", IR_I32, shape_of(in[0]), LOC);
  a = ir_input(g, "a", IR_F32, shape_of(in[1]), LOC);
  int k = ir_scalar(g, IR_F32, -1.5, LOC);
  int w = ir_where(g, c, a, k, LOC);
  ck_assert_msg(w >= 0, "%s", g->error);
  ir_set_outputs(g, &w, NULL, 1);
  want = load("bcast_where", "out");
  run_ok(g, in, NULL, out, NULL);
  expect_match("bcast_where", out[0], want);
  rt_tensor_free(out[0]);
  rt_tensor_free(want);
  free_all(in, 2);
  ir_graph_free(g);

  /* i32 [2, 3] // -4 (floor division by a broadcast scalar) */
  g = ir_graph_new("bcast_div_scalar_i32");
  in[0] = load("bcast_div_scalar_i32", "in0");
  a = ir_input(g, "a", IR_I32, shape_of(in[0]), LOC);
  int d = ir_binary(g, OP_DIV, a, ir_scalar(g, IR_I32, -4, LOC), LOC);
  ck_assert_msg(d >= 0, "%s", g->error);
  ir_set_outputs(g, &d, NULL, 1);
  want = load("bcast_div_scalar_i32", "out");
  run_ok(g, in, NULL, out, NULL);
  expect_match("bcast_div_scalar_i32", out[0], want);
  rt_tensor_free(out[0]);
  rt_tensor_free(want);
  rt_tensor_free(in[0]);
  ir_graph_free(g);
}
END_TEST

/* ---- errors ---- */

/* y = x @ w with x an f32[2, 3] input and w an f32[3, 4] parameter. */
static IrGraph *matmul_graph(void) {
  IrGraph *g = ir_graph_new("mm");
  int x = ir_input(g, "x", IR_F32, (IrShape)SH(2, 2, 3), LOC);
  int w = ir_param(g, "w", (IrShape)SH(2, 3, 4), IR_INIT_ZEROS, 0, 0, LOC);
  int y = ir_build(g, OP_MATMUL, (int[]){x, w}, 2, NULL, LOC);
  ck_assert_msg(y >= 0, "%s", g->error);
  ir_set_outputs(g, &y, NULL, 1);
  return g;
}

START_TEST(test_binding_errors) {
  IrGraph *g = matmul_graph();
  RtTensor *x = tensor(RT_F32, 2, (int64_t[]){2, 3}, NULL);
  RtTensor *w = tensor(RT_F32, 2, (int64_t[]){3, 4}, NULL);
  RtTensor *x_bad = tensor(RT_F32, 2, (int64_t[]){2, 4}, NULL);
  RtTensor *x_i32 = tensor(RT_I32, 2, (int64_t[]){2, 3}, NULL);
  RtTensor *w_bad = tensor(RT_F32, 1, (int64_t[]){12}, NULL);

  const char *m = run_fail(g, &x_bad, &w);
  expect_has(m, "input 'x'");
  expect_has(m, "f32[2, 3]");
  expect_has(m, "f32[2, 4]");
  m = run_fail(g, &x_i32, &w);
  expect_has(m, "input 'x'");
  expect_has(m, "i32[2, 3]");
  m = run_fail(g, &x, &w_bad);
  expect_has(m, "parameter 'w'");
  expect_has(m, "f32[3, 4]");
  expect_has(m, "f32[12]");
  RtTensor *none = NULL;
  m = run_fail(g, &none, &w);
  expect_has(m, "'x'");
  m = run_fail(g, NULL, &w);
  expect_has(m, "'x'");
  m = run_fail(g, &x, NULL);
  expect_has(m, "'w'");

  /* And the right tensors work: x = 1, w = 2 gives 6 everywhere. */
  for (int i = 0; i < 6; i++) rt_f32(x)[i] = 1;
  for (int i = 0; i < 12; i++) rt_f32(w)[i] = 2;
  RtTensor *out[1];
  run_ok(g, &x, &w, out, NULL);
  for (int i = 0; i < 8; i++) ck_assert_float_eq(rt_f32(out[0])[i], 6.0f);
  rt_tensor_free(out[0]);

  /* A graph that fails ir_verify is refused, not run. */
  g->node[g->output[0]].shape.d[1] = 5;
  m = run_fail(g, &x, &w);
  expect_has(m, "invalid");
  g->node[g->output[0]].shape.d[1] = 4;

  rt_tensor_free(x);
  rt_tensor_free(w);
  rt_tensor_free(x_bad);
  rt_tensor_free(x_i32);
  rt_tensor_free(w_bad);
  ir_graph_free(g);
}
END_TEST

/* A graph whose one op reads inputs a (i32 or f32) and idx (i32); the op is
 * built at line 'line' of this file so messages can be checked for it. */
static IrGraph *two_input_graph(IrOp op, IrDType ta, IrShape sa, IrShape sb, const IrAttr *attr, int *line) {
  IrGraph *g = ir_graph_new(ir_op_name(op));
  int a = ir_input(g, "a", ta, sa, LOC);
  int b = ir_input(g, "b", IR_I32, sb, LOC);
  *line = __LINE__ + 1;
  int y = ir_build(g, op, (int[]){a, b}, 2, attr, LOC);
  ck_assert_msg(y >= 0, "%s", g->error);
  ir_set_outputs(g, &y, NULL, 1);
  return g;
}

static void expect_loc(const char *msg, int line) {
  char where[64];
  snprintf(where, sizeof where, "test_ref.c:%d:1: error:", line);
  expect_has(msg, where);
}

START_TEST(test_runtime_errors) {
  int line;
  /* integer division by zero */
  IrGraph *g = two_input_graph(OP_DIV, IR_I32, (IrShape)SH(1, 3), (IrShape)SH(1, 3), NULL, &line);
  RtTensor *in[2] = {tensor(RT_I32, 1, (int64_t[]){3}, (int32_t[]){6, 5, 4}),
                     tensor(RT_I32, 1, (int64_t[]){3}, (int32_t[]){2, 0, 1})};
  const char *m = run_fail(g, in, NULL);
  expect_loc(m, line);
  expect_has(m, "div");
  expect_has(m, "division by zero");
  expect_has(m, "element 1");
  free_all(in, 2);
  ir_graph_free(g);

  /* gather: index past the table, and negative */
  g = two_input_graph(OP_GATHER, IR_F32, (IrShape)SH(2, 4, 2), (IrShape)SH(1, 3), NULL, &line);
  in[0] = tensor(RT_F32, 2, (int64_t[]){4, 2}, NULL);
  in[1] = tensor(RT_I32, 1, (int64_t[]){3}, (int32_t[]){0, 3, 4});
  m = run_fail(g, in, NULL);
  expect_loc(m, line);
  expect_has(m, "gather");
  expect_has(m, "index 4 at position 2");
  rt_i32(in[1])[2] = -1;
  m = run_fail(g, in, NULL);
  expect_has(m, "index -1 at position 2");
  free_all(in, 2);
  ir_graph_free(g);

  /* gather_backward: index past the table */
  g = ir_graph_new("gather_backward");
  int gi = ir_input(g, "idx", IR_I32, (IrShape)SH(1, 3), LOC);
  int gg = ir_input(g, "grad", IR_F32, (IrShape)SH(2, 3, 2), LOC);
  line = __LINE__ + 1;
  int gb = ir_build(g, OP_GATHER_BACKWARD, (int[]){gi, gg}, 2, &(IrAttr){.shape = SH(2, 4, 2)}, LOC);
  ck_assert_msg(gb >= 0, "%s", g->error);
  ir_set_outputs(g, &gb, NULL, 1);
  in[0] = tensor(RT_I32, 1, (int64_t[]){3}, (int32_t[]){3, 0, 4});
  in[1] = tensor(RT_F32, 2, (int64_t[]){3, 2}, NULL);
  m = run_fail(g, in, NULL);
  expect_loc(m, line);
  expect_has(m, "gather_backward");
  expect_has(m, "index 4 at position 2");
  free_all(in, 2);
  ir_graph_free(g);

  /* cross_entropy: target out of range */
  g = two_input_graph(OP_CROSS_ENTROPY, IR_F32, (IrShape)SH(2, 2, 3), (IrShape)SH(1, 2), NULL, &line);
  in[0] = tensor(RT_F32, 2, (int64_t[]){2, 3}, NULL);
  in[1] = tensor(RT_I32, 1, (int64_t[]){2}, (int32_t[]){2, 3});
  m = run_fail(g, in, NULL);
  expect_loc(m, line);
  expect_has(m, "cross_entropy");
  expect_has(m, "target 3 at position 1");
  free_all(in, 2);
  ir_graph_free(g);

  /* onehot: index beyond depth */
  g = ir_graph_new("onehot");
  int x = ir_input(g, "idx", IR_I32, (IrShape)SH(1, 4), LOC);
  line = __LINE__ + 1;
  int y = ir_build(g, OP_ONEHOT, &x, 1, &(IrAttr){.axis = 1, .depth = 3}, LOC);
  ir_set_outputs(g, &y, NULL, 1);
  in[0] = tensor(RT_I32, 1, (int64_t[]){4}, (int32_t[]){0, 2, 1, 7});
  m = run_fail(g, in, NULL);
  expect_loc(m, line);
  expect_has(m, "onehot");
  expect_has(m, "index 7 at position 3");
  rt_tensor_free(in[0]);
  ir_graph_free(g);
}
END_TEST

/* ---- i32 corner cases (beyond what numpy agrees on) ---- */

/* Runs unary/binary op graph 'op' on i32 or f32 vectors and returns the output. */
static RtTensor *run_vec(IrOp op, const IrAttr *attr, RtTensor *a, RtTensor *b) {
  IrGraph *g = ir_graph_new("vec");
  int ia = ir_input(g, "a", (IrDType)a->dtype, shape_of(a), LOC);
  int ids[2] = {ia, b ? ir_input(g, "b", (IrDType)b->dtype, shape_of(b), LOC) : -1};
  int y = ir_build(g, op, ids, b ? 2 : 1, attr, LOC);
  ck_assert_msg(y >= 0, "%s", g->error);
  ir_set_outputs(g, &y, NULL, 1);
  RtTensor *in[2] = {a, b}, *out[1];
  run_ok(g, in, NULL, out, NULL);
  ir_graph_free(g);
  return out[0];
}

START_TEST(test_i32_paths) {
  /* Floor division in every sign combination, and INT32_MIN // -1 wrapping. */
  int32_t na[] = {7, -7, 7, -7, 0, 6, -6, INT32_MIN, INT32_MIN, INT32_MAX};
  int32_t nb[] = {2, 2, -2, -2, -3, 3, 3, -1, 1, -1};
  int32_t want[] = {3, -4, -4, 3, 0, 2, -2, INT32_MIN, INT32_MIN, -INT32_MAX};
  RtTensor *a = tensor(RT_I32, 1, (int64_t[]){10}, na), *b = tensor(RT_I32, 1, (int64_t[]){10}, nb);
  RtTensor *q = run_vec(OP_DIV, NULL, a, b);
  for (int i = 0; i < 10; i++)
    ck_assert_msg(rt_i32(q)[i] == want[i], "%d // %d = %d, expected %d", na[i], nb[i], rt_i32(q)[i], want[i]);
  rt_tensor_free(q);
  rt_tensor_free(a);
  rt_tensor_free(b);

  /* f32 -> i32 truncates toward zero; NaN and out-of-range values saturate, not UB. */
  float fx[] = {-2.9f, 2.9f, NAN, 3e9f, -3e9f, INFINITY, -0.99f, 2147483520.0f};
  int32_t fw[] = {-2, 2, 0, INT32_MAX, INT32_MIN, INT32_MAX, 0, 2147483520};
  RtTensor *f = tensor(RT_F32, 1, (int64_t[]){8}, fx);
  RtTensor *c = run_vec(OP_CAST, &(IrAttr){.dtype = IR_I32}, f, NULL);
  for (int i = 0; i < 8; i++)
    ck_assert_msg(rt_i32(c)[i] == fw[i], "cast(%g) = %d, expected %d", fx[i], rt_i32(c)[i], fw[i]);
  rt_tensor_free(c);
  rt_tensor_free(f);

  /* Comparisons with NaN: false, except ne. */
  RtTensor *p = tensor(RT_F32, 1, (int64_t[]){2}, (float[]){NAN, 1});
  RtTensor *r = tensor(RT_F32, 1, (int64_t[]){2}, (float[]){1, NAN});
  static const IrOp cmp[] = {OP_LT, OP_LE, OP_GT, OP_GE, OP_EQ, OP_NE};
  for (int k = 0; k < 6; k++) {
    RtTensor *o = run_vec(cmp[k], NULL, p, r);
    int expect = cmp[k] == OP_NE;
    ck_assert_msg(rt_i32(o)[0] == expect && rt_i32(o)[1] == expect, "%s with NaN", ir_op_name(cmp[k]));
    rt_tensor_free(o);
  }
  rt_tensor_free(p);
  rt_tensor_free(r);
}
END_TEST

/* ---- Gumbel noise ---- */

/* A graph returning GUMBEL nodes of shape [n] with the given salts. */
static IrGraph *gumbel_graph(int64_t n, const uint32_t *salts, int count) {
  IrGraph *g = ir_graph_new("noise");
  int ids[4];
  for (int i = 0; i < count; i++) {
    ids[i] = ir_build(g, OP_GUMBEL, NULL, 0, &(IrAttr){.shape = SH(1, n), .salt = salts[i]}, LOC);
    ck_assert_msg(ids[i] >= 0, "%s", g->error);
  }
  ir_set_outputs(g, ids, NULL, count);
  return g;
}

static bool same(const RtTensor *a, const RtTensor *b) {
  return memcmp(a->data, b->data, rt_tensor_bytes(a)) == 0;
}

START_TEST(test_gumbel) {
  enum { N = 20000 };
  IrGraph *g = gumbel_graph(N, (uint32_t[]){7, 8}, 2);
  RtTensor *r1[2], *r2[2], *rseed[2], *rstep[2];
  run_ok(g, NULL, NULL, r1, &(RefOptions){.seed = 42, .step = 3});
  run_ok(g, NULL, NULL, r2, &(RefOptions){.seed = 42, .step = 3});
  run_ok(g, NULL, NULL, rseed, &(RefOptions){.seed = 43, .step = 3});
  run_ok(g, NULL, NULL, rstep, &(RefOptions){.seed = 42, .step = 4});
  ck_assert_msg(same(r1[0], r2[0]) && same(r1[1], r2[1]), "same seed and step must give the same noise");
  ck_assert_msg(!same(r1[0], rseed[0]), "noise must depend on the seed");
  ck_assert_msg(!same(r1[0], rstep[0]), "noise must depend on the step");
  ck_assert_msg(!same(r1[0], r1[1]), "noise must depend on the salt");

  /* It is exactly the runtime's stream for (seed, salt, step). */
  float *direct = malloc(N * sizeof *direct);
  rt_gumbel_fill(direct, N, 42, 8, 3);
  ck_assert(memcmp(direct, r1[1]->data, N * sizeof *direct) == 0);
  free(direct);

  /* Gumbel(0, 1): mean is the Euler-Mascheroni constant, variance pi^2/6. */
  double mean = 0, var = 0;
  for (int i = 0; i < N; i++) mean += rt_f32(r1[0])[i];
  mean /= N;
  for (int i = 0; i < N; i++) var += (rt_f32(r1[0])[i] - mean) * (rt_f32(r1[0])[i] - mean);
  var /= N;
  ck_assert_msg(fabs(mean - 0.5772157) < 0.05, "mean %g", mean);
  ck_assert_msg(fabs(var - M_PI * M_PI / 6) < 0.1, "variance %g", var);

  /* No options: seed 0, step 0. */
  RtTensor *r0[2];
  run_ok(g, NULL, NULL, r0, NULL);
  float *zero = malloc(N * sizeof *zero);
  rt_gumbel_fill(zero, N, 0, 7, 0);
  ck_assert(memcmp(zero, r0[0]->data, N * sizeof *zero) == 0);
  free(zero);

  free_all(r0, 2);
  free_all(r1, 2);
  free_all(r2, 2);
  free_all(rseed, 2);
  free_all(rstep, 2);
  ir_graph_free(g);
}
END_TEST

/* ---- outputs and liveness ---- */

START_TEST(test_outputs) {
  /* Outputs: the input itself, a parameter, one node twice; plus a dead
   * node (an i32 division by zero nobody reads), which must not run. */
  IrGraph *g = ir_graph_new("outs");
  int x = ir_input(g, "x", IR_I32, (IrShape)SH(1, 3), LOC);
  int w = ir_param(g, "w", (IrShape)SH(1, 2), IR_INIT_ZEROS, 0, 0, LOC);
  int zero = ir_const(g, IR_I32, (IrShape)SH(1, 3), 0, LOC);
  ck_assert(ir_binary(g, OP_DIV, x, zero, LOC) >= 0); /* dead */
  int y = ir_binary(g, OP_MUL, x, x, LOC);
  ir_set_outputs(g, (int[]){x, y, w, y}, NULL, 4);
  RtTensor *xin = tensor(RT_I32, 1, (int64_t[]){3}, (int32_t[]){1, -2, 3});
  RtTensor *win = tensor(RT_F32, 1, (int64_t[]){2}, (float[]){0.5f, -1});
  RtTensor *out[4];
  run_ok(g, &xin, &win, out, NULL);
  ck_assert(out[0] != xin && out[2] != win && out[1] != out[3]);
  ck_assert(same(out[0], xin) && same(out[2], win) && same(out[1], out[3]));
  ck_assert_int_eq(rt_i32(out[1])[1], 4);
  ck_assert_int_eq(rt_i32(out[3])[2], 9);
  free_all(out, 4);
  /* The caller's tensors are untouched and still theirs to free. */
  ck_assert_int_eq(rt_i32(xin)[1], -2);
  rt_tensor_free(xin);
  rt_tensor_free(win);
  ir_graph_free(g);
}
END_TEST

/* Intermediates are freed after their last consumer: a chain of 8 ops on
 * 1 KiB tensors never holds more than two of them; dead nodes do not run. */
START_TEST(test_liveness) {
  IrGraph *g = ir_graph_new("chain8");
  int x = ir_input(g, "x", IR_F32, (IrShape)SH(1, 256), LOC);
  ck_assert(ir_unary(g, OP_LOG, x, LOC) >= 0); /* dead: log of negative values would be NaN, unseen */
  int y = x;
  for (int i = 0; i < 8; i++) y = ir_unary(g, i % 2 ? OP_NEG : OP_TANH, y, LOC);
  ck_assert_msg(y >= 0, "%s", g->error);
  ir_set_outputs(g, &y, NULL, 1);
  RtTensor *xin = tensor(RT_F32, 1, (int64_t[]){256}, NULL);
  for (int i = 0; i < 256; i++) rt_f32(xin)[i] = (float)(i - 128) / 64.0f;
  RtTensor *out[1];
  RefStats st = {0, 0};
  RtErr e;
  ck_assert_msg(ref_run_stats(g, &xin, NULL, out, NULL, &st, &e) == 0, "%s", e.msg);
  ck_assert_int_eq(st.nodes_run, 9); /* the input and the 8 ops, not the dead log */
  ck_assert_int_eq(st.peak_bytes, 2 * 1024);
  /* tanh is odd and neg flips the sign 4 times: y = tanh^4(x), same sign as x. */
  ck_assert(rt_f32(out[0])[0] < 0 && rt_f32(out[0])[255] > 0);
  rt_tensor_free(out[0]);
  rt_tensor_free(xin);
  ir_graph_free(g);
}
END_TEST

static void setup_fixtures(void) { make_fixtures(); }

static Suite *ref_suite(void) {
  Suite *s = suite_create("ref");
  TCase *ops = tcase_create("ops");
  tcase_add_unchecked_fixture(ops, setup_fixtures, NULL);
  tcase_add_loop_test(ops, test_op_case, 0, NCASES);
  tcase_add_test(ops, test_chain);
  tcase_add_test(ops, test_broadcasting);
  suite_add_tcase(s, ops);
  TCase *other = tcase_create("other");
  tcase_add_test(other, test_all_ops_covered);
  tcase_add_test(other, test_updates);
  tcase_add_test(other, test_updates_swap);
  tcase_add_test(other, test_binding_errors);
  tcase_add_test(other, test_runtime_errors);
  tcase_add_test(other, test_i32_paths);
  tcase_add_test(other, test_gumbel);
  tcase_add_test(other, test_outputs);
  tcase_add_test(other, test_liveness);
  suite_add_tcase(s, other);
  return s;
}

int main(void) { return tu_run_suite(ref_suite()); }
