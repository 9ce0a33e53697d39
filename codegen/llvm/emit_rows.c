/* emit_rows.c — kernels with a reduction inside: sum / reduce_max / argmax
 * over axes, and the row ops softmax, log_softmax, layer_norm, group_norm
 * and cross_entropy. Each iteration of the parallel range is one output
 * element (reduce) or one row; the reduction runs as inner loops over the
 * reduced elements, evaluating the root's input elementally (the fused
 * prologue). Prologue members the group must keep are stored in the pass
 * that visits each input element once; the root and epilogue members are
 * stored at the output index. Float sums carry vectorize metadata (the
 * reassociation tolerance is documented in cg_llvm.h); maxima use integer
 * keys (em_max_key), which vectorise without fast-math flags. */
#include <math.h>

#include "codegen/llvm/emit.h"

#define B (E->b)

static LLVMValueRef add_f(Emit *E, LLVMValueRef a, LLVMValueRef b) { return LLVMBuildFAdd(B, a, b, ""); }
static LLVMValueRef sub_f(Emit *E, LLVMValueRef a, LLVMValueRef b) { return LLVMBuildFSub(B, a, b, ""); }
static LLVMValueRef mul_f(Emit *E, LLVMValueRef a, LLVMValueRef b) { return LLVMBuildFMul(B, a, b, ""); }
static LLVMValueRef div_f(Emit *E, LLVMValueRef a, LLVMValueRef b) { return LLVMBuildFDiv(B, a, b, ""); }

static LLVMValueRef smax(Emit *E, LLVMValueRef a, LLVMValueRef b) {
  return LLVMBuildSelect(B, LLVMBuildICmp(B, LLVMIntSGT, a, b, ""), a, b, "");
}

static void store_prologue(Emit *E, const Idx *I) {
  for (int i = 0; i < E->k->nprologue; i++) em_store_node(E, E->k->store[i].node, I);
}

/* The root's value at I is 'val': cache it, then store the root and the
 * epilogue members there. */
/* The root's value and the epilogue's at output index I: every value
 * first, then the stores (an epilogue may write a state tensor in place
 * that another of its values still reads, lower_state.c). */
static void store_outputs(Emit *E, const Idx *I, LLVMValueRef val) {
  em_cache_put(E, E->k->root, I, val);
  for (int i = E->k->nprologue; i < E->k->nstore; i++) em_eval(E, E->k->store[i].node, I);
  for (int i = E->k->nprologue; i < E->k->nstore; i++) em_store_node(E, E->k->store[i].node, I);
}

/* Splits a flat value v in [0, prod ext) into digits out[] over ext[0..n). */
static void digits_of(Emit *E, LLVMValueRef v, const int64_t *ext, int n, LLVMValueRef *out) {
  for (int j = n - 1; j >= 0; j--) {
    if (j == 0) {
      out[j] = v;
      break;
    }
    out[j] = LLVMBuildURem(B, v, em_i64(E, ext[j]), "");
    v = LLVMBuildUDiv(B, v, em_i64(E, ext[j]), "");
  }
}

/* ---- sum, reduce_max, argmax ---- */

typedef struct {
  IrOp op;
  bool f32;
} RedKind;

/* Every op but sum, reduce_max and argmax, for the accumulator switches
 * below: listed (not `default:`) so that a new op is a -Wswitch error here
 * until it is placed, once, in this list or given its own cases. */
#define CASES_NOT_A_ROW_REDUCTION                                                                              \
  case OP_INPUT: case OP_PARAM: case OP_STATE: case OP_CONST: case OP_IOTA: case OP_GUMBEL: case OP_NEG:       \
  case OP_ABS: case OP_EXP: case OP_LOG: case OP_SQRT: case OP_RSQRT: case OP_TANH: case OP_SIGMOID:          \
  case OP_RELU: case OP_GELU: case OP_SILU: case OP_CAST: case OP_STOP_GRADIENT: case OP_ADD: case OP_SUB:    \
  case OP_MUL: case OP_DIV: case OP_MAX: case OP_MIN: case OP_POW: case OP_LT: case OP_LE: case OP_GT:        \
  case OP_GE: case OP_EQ: case OP_NE: case OP_WHERE: case OP_STRAIGHT_THROUGH: case OP_SOFTMAX:               \
  case OP_LOG_SOFTMAX: case OP_RESHAPE: case OP_PERMUTE: case OP_BROADCAST: case OP_SLICE: case OP_CONCAT:    \
  case OP_GATHER: case OP_GATHER_BACKWARD: case OP_ONEHOT: case OP_MATMUL: case OP_CONV2D:                   \
  case OP_CONV_TRANSPOSE2D: case OP_CONV2D_BACKWARD_WEIGHT: case OP_GROUP_NORM: case OP_LAYER_NORM:          \
  case OP_CROSS_ENTROPY: case OP_ATTENTION: case OP_ATTENTION_BACKWARD: case OP_COUNT

static int red_init(Emit *E, RedKind r, LLVMValueRef *init) {
  switch (r.op) {
  case OP_SUM: init[0] = r.f32 ? em_f32(E, 0) : em_i32(E, 0); return 1;
  case OP_REDUCE_MAX: init[0] = r.f32 ? em_key_of_neg_inf(E) : em_i32(E, INT32_MIN); return 1;
  case OP_ARGMAX: /* best, at */
    init[0] = r.f32 ? em_f32(E, -INFINITY) : em_i32(E, INT32_MIN);
    init[1] = em_i64(E, 0);
    return 2;
  CASES_NOT_A_ROW_REDUCTION: break;
  }
  em_fail(E, "%s is not a sum, reduce_max or argmax", ir_op_name(r.op));
  return 1;
}

static void red_step(Emit *E, RedKind r, const LLVMValueRef *acc, LLVMValueRef v, LLVMValueRef j, LLVMValueRef *next) {
  switch (r.op) {
  case OP_SUM: next[0] = r.f32 ? add_f(E, acc[0], v) : LLVMBuildAdd(B, acc[0], v, ""); return;
  case OP_REDUCE_MAX: next[0] = smax(E, acc[0], r.f32 ? em_max_key(E, v) : v); return;
  case OP_ARGMAX: {
    /* the first maximum wins; the first NaN counts as the maximum */
    LLVMValueRef take;
    if (r.f32) {
      LLVMValueRef better = LLVMBuildOr(B, LLVMBuildFCmp(B, LLVMRealUNO, v, v, ""),
                                        LLVMBuildFCmp(B, LLVMRealOGT, v, acc[0], ""), "");
      take = LLVMBuildAnd(B, LLVMBuildFCmp(B, LLVMRealORD, acc[0], acc[0], ""), better, "");
    } else {
      take = LLVMBuildICmp(B, LLVMIntSGT, v, acc[0], "");
    }
    next[0] = LLVMBuildSelect(B, take, v, acc[0], "");
    next[1] = LLVMBuildSelect(B, take, j, acc[1], "");
    return;
  }
  CASES_NOT_A_ROW_REDUCTION: break;
  }
  em_fail(E, "%s is not a sum, reduce_max or argmax", ir_op_name(r.op));
}

static LLVMValueRef red_result(Emit *E, RedKind r, const LLVMValueRef *acc) {
  switch (r.op) {
  case OP_SUM: return acc[0];
  case OP_REDUCE_MAX: return r.f32 ? em_key_value(E, acc[0]) : acc[0];
  case OP_ARGMAX: return LLVMBuildTrunc(B, acc[1], E->i32, "");
  CASES_NOT_A_ROW_REDUCTION: break;
  }
  em_fail(E, "%s is not a sum, reduce_max or argmax", ir_op_name(r.op));
  return acc[0];
}

/* Column mode: iteration 'it' reduces outputs [j0, j1) of the innermost
 * kept run at once, one accumulator per output in a small stack array,
 * the reduced runs as loops around a loop over j that reads consecutive
 * inputs (so it vectorises without reassociating anything). */
static void reduce_columns(Emit *E, int x, RedKind rk, const int64_t *ext, const bool *red, int nb,
                           LLVMValueRef begin, LLVMValueRef end) {
  const CgKernel *k = E->k;
  int64_t CH = k->inner, Kl = ext[nb - 1], nch = (Kl + CH - 1) / CH, nout = ir_numel(&E->g->node[k->root].shape);
  LLVMValueRef init[2];
  red_init(E, rk, init);
  LLVMTypeRef aty = LLVMTypeOf(init[0]);
  LLVMValueRef acc = LLVMBuildArrayAlloca(B, aty, em_i64(E, CH), "acc");
  int64_t kext[IR_MAX_RANK] = {0};
  int nk = 0;
  for (int b = 0; b < nb - 1; b++)
    if (!red[b]) kext[nk++] = ext[b];
  Loop lo, lj, lr[IR_MAX_RANK];
  em_loop_open(E, &lo, begin, end, 0, NULL);
  LLVMValueRef ko = LLVMBuildUDiv(B, lo.iv, em_i64(E, nch), "");
  LLVMValueRef j0 = LLVMBuildNSWMul(B, LLVMBuildURem(B, lo.iv, em_i64(E, nch), ""), em_i64(E, CH), "");
  LLVMValueRef j1 = em_min_i64(E, LLVMBuildNSWAdd(B, j0, em_i64(E, CH), ""), em_i64(E, Kl));
  LLVMValueRef kv[IR_MAX_RANK], bv[IR_MAX_RANK];
  digits_of(E, ko, kext, nk, kv);
  em_loop_open(E, &lj, em_i64(E, 0), LLVMBuildNSWSub(B, j1, j0, ""), 0, NULL);
  LLVMBuildStore(B, init[0], LLVMBuildInBoundsGEP2(B, aty, acc, &lj.iv, 1, ""));
  em_loop_close(E, &lj, NULL, NULL, false);
  int nl = 0;
  for (int b = 0, ki = 0; b < nb - 1; b++) {
    if (!red[b]) {
      bv[b] = kv[ki++];
      continue;
    }
    em_loop_open(E, &lr[nl], em_i64(E, 0), em_i64(E, ext[b]), 0, NULL);
    bv[b] = lr[nl++].iv;
  }
  em_loop_open(E, &lj, j0, j1, 0, NULL);
  bv[nb - 1] = lj.iv;
  Idx I = {.n = 0};
  for (int b = 0; b < nb; b++) em_idx_push(&I, bv[b], ext[b]);
  LLVMValueRef v = em_eval(E, x, &I);
  store_prologue(E, &I);
  LLVMValueRef slot = LLVMBuildInBoundsGEP2(B, aty, acc, (LLVMValueRef[]){LLVMBuildNSWSub(B, lj.iv, j0, "")}, 1, "");
  LLVMValueRef a = LLVMBuildLoad2(B, aty, slot, ""), next[2];
  red_step(E, rk, &a, v, NULL, next);
  LLVMBuildStore(B, next[0], slot);
  em_loop_close(E, &lj, NULL, NULL, false);
  for (int l = nl - 1; l >= 0; l--) em_loop_close(E, &lr[l], NULL, NULL, false);
  em_loop_open(E, &lj, j0, j1, 0, NULL);
  slot = LLVMBuildInBoundsGEP2(B, aty, acc, (LLVMValueRef[]){LLVMBuildNSWSub(B, lj.iv, j0, "")}, 1, "");
  a = LLVMBuildLoad2(B, aty, slot, "");
  Idx O = em_idx1(LLVMBuildNSWAdd(B, LLVMBuildNSWMul(B, ko, em_i64(E, Kl), ""), lj.iv, ""), nout);
  store_outputs(E, &O, red_result(E, rk, &a));
  em_loop_close(E, &lj, NULL, NULL, false);
  em_loop_close(E, &lo, NULL, NULL, false);
}

void em_kernel_reduce(Emit *E, LLVMValueRef begin, LLVMValueRef end) {
  const IrNode *r = &E->g->node[E->k->root];
  int x = r->in[0];
  uint32_t axes = r->op == OP_ARGMAX ? 1u << r->attr.axis : r->attr.axes;
  RedKind rk = {r->op, E->g->node[x].dtype == IR_F32};
  int64_t ext[IR_MAX_RANK], kext[IR_MAX_RANK] = {0};
  bool red[IR_MAX_RANK];
  int nb = cg_reduce_blocks(&E->g->node[x].shape, axes, ext, red), nk = 0;
  if (E->k->inner > 0) {
    reduce_columns(E, x, rk, ext, red, nb, begin, end);
    return;
  }
  for (int b = 0; b < nb; b++)
    if (!red[b]) kext[nk++] = ext[b];
  int64_t nout = ir_numel(&r->shape);

  Loop lo;
  em_loop_open(E, &lo, begin, end, 0, NULL);
  LLVMValueRef kv[IR_MAX_RANK], bv[IR_MAX_RANK];
  digits_of(E, lo.iv, kext, nk, kv);
  LLVMValueRef acc[2], init[2];
  int nacc = red_init(E, rk, init);
  Loop lr[IR_MAX_RANK];
  int nl = 0;
  for (int b = 0, ki = 0; b < nb; b++) {
    if (!red[b]) {
      bv[b] = kv[ki++];
      continue;
    }
    em_loop_open(E, &lr[nl], em_i64(E, 0), em_i64(E, ext[b]), nacc, nl ? lr[nl - 1].acc : init);
    bv[b] = lr[nl].iv;
    nl++;
  }
  Idx I = {.n = 0};
  for (int b = 0; b < nb; b++) em_idx_push(&I, bv[b], ext[b]);
  LLVMValueRef v = em_eval(E, x, &I);
  store_prologue(E, &I);
  LLVMValueRef next[2];
  red_step(E, rk, nl ? lr[nl - 1].acc : init, v, nl ? lr[nl - 1].iv : em_i64(E, 0), next);
  /* a float sum vectorises only when its innermost loop reads consecutive
   * elements (the last run is reduced); strided ones stay scalar */
  bool vec = rk.op == OP_SUM && rk.f32 && nb > 0 && red[nb - 1];
  for (int l = nl - 1; l >= 0; l--) {
    em_loop_close(E, &lr[l], next, acc, l == nl - 1 && vec);
    next[0] = acc[0];
    next[1] = acc[1];
  }
  Idx O = em_idx1(lo.iv, nout);
  store_outputs(E, &O, red_result(E, rk, next));
  em_loop_close(E, &lo, NULL, NULL, false);
}

/* ---- rows along one axis ---- */

/* A row of x viewed as (outer, n, inner) around 'axis': the index of its
 * element j for row number 'row' = (o, i). */
typedef struct {
  int64_t outer, n, inner;
  LLVMValueRef o, i;
} Row;

static Row row_of(Emit *E, const IrShape *s, int axis, LLVMValueRef row) {
  Row R = {1, s->d[axis], 1, NULL, NULL};
  for (int d = 0; d < axis; d++) R.outer *= s->d[d];
  for (int d = axis + 1; d < s->rank; d++) R.inner *= s->d[d];
  if (R.inner == 1) R.o = row;
  else {
    R.o = LLVMBuildUDiv(B, row, em_i64(E, R.inner), "");
    R.i = LLVMBuildURem(B, row, em_i64(E, R.inner), "");
  }
  return R;
}

static Idx row_idx(const Row *R, LLVMValueRef j) {
  Idx I = em_idx1(R->o, R->outer);
  em_idx_push(&I, j, R->n);
  if (R->i) em_idx_push(&I, R->i, R->inner);
  return I;
}

/* max over the row of x (as a float; NaN if any element is NaN). */
static LLVMValueRef row_max(Emit *E, int x, const Row *R) {
  Loop l;
  LLVMValueRef init = em_key_of_neg_inf(E), out;
  em_loop_open(E, &l, em_i64(E, 0), em_i64(E, R->n), 1, &init);
  Idx I = row_idx(R, l.iv);
  LLVMValueRef next = smax(E, l.acc[0], em_max_key(E, em_eval(E, x, &I)));
  em_loop_close(E, &l, &next, &out, false);
  return em_key_value(E, out);
}

/* sum over the row of exp(x - m); with_prologue: also store the prologue;
 * keep_arg >= 0: also write each exp(x - m) there (at the row's index). */
static LLVMValueRef row_sumexp(Emit *E, int x, const Row *R, LLVMValueRef m, bool with_prologue, int keep_arg) {
  Loop l;
  LLVMValueRef init = em_f32(E, 0), out;
  em_loop_open(E, &l, em_i64(E, 0), em_i64(E, R->n), 1, &init);
  Idx I = row_idx(R, l.iv);
  LLVMValueRef ex = em_exp(E, sub_f(E, em_eval(E, x, &I), m));
  LLVMValueRef next = add_f(E, l.acc[0], ex);
  if (keep_arg >= 0) em_store(E, keep_arg, ex, em_idx_flat(E, &I));
  if (with_prologue) store_prologue(E, &I);
  em_loop_close(E, &l, &next, &out, R->i == NULL); /* vectorised when the row is contiguous */
  return out;
}

void em_kernel_softmax(Emit *E, LLVMValueRef begin, LLVMValueRef end) {
  const IrNode *r = &E->g->node[E->k->root];
  int x = r->in[0];
  Loop lr, l;
  em_loop_open(E, &lr, begin, end, 0, NULL);
  Row R = row_of(E, &r->shape, r->attr.axis, lr.iv);
  /* softmax: the sum pass leaves exp(x - m) in a buffer the last pass
   * writes at the same index anyway (the root's, else an epilogue value's),
   * so the last pass only divides: one exp per element instead of two */
  int keep = -1;
  for (int i = E->k->nprologue; i < E->k->nstore && r->op == OP_SOFTMAX; i++) {
    int v = E->k->store[i].node;
    if (v == E->k->root) keep = E->k->store[i].arg;
    else if (keep < 0 && E->g->node[v].dtype == IR_F32 && ir_numel(&E->g->node[v].shape) == ir_numel(&r->shape))
      keep = E->k->store[i].arg;
  }
  LLVMValueRef m = row_max(E, x, &R);
  LLVMValueRef s = row_sumexp(E, x, &R, m, false, keep);
  LLVMValueRef logs = r->op == OP_LOG_SOFTMAX ? em_log(E, s) : NULL;
  em_loop_open(E, &l, em_i64(E, 0), em_i64(E, R.n), 0, NULL);
  Idx I = row_idx(&R, l.iv);
  LLVMValueRef y;
  if (keep >= 0) {
    y = div_f(E, em_load(E, keep, E->f32, em_idx_flat(E, &I)), s);
  } else {
    LLVMValueRef d = sub_f(E, em_eval(E, x, &I), m);
    y = logs ? sub_f(E, d, logs) : div_f(E, em_exp(E, d), s);
  }
  store_prologue(E, &I);
  store_outputs(E, &I, y);
  em_loop_close(E, &l, NULL, NULL, false);
  em_loop_close(E, &lr, NULL, NULL, false);
}

/* ---- norms ---- */

/* sum over [0, n) of f(x at I(j)) where f is x (sq = false) or (x - mean)^2. */
static LLVMValueRef sum_pass(Emit *E, int x, const Idx *prefix, int64_t n, LLVMValueRef mean) {
  Loop l;
  LLVMValueRef init = em_f32(E, 0), out;
  em_loop_open(E, &l, em_i64(E, 0), em_i64(E, n), 1, &init);
  Idx I = *prefix;
  em_idx_push(&I, l.iv, n);
  LLVMValueRef v = em_eval(E, x, &I);
  if (mean) {
    LLVMValueRef d = sub_f(E, v, mean);
    v = mul_f(E, d, d);
  }
  LLVMValueRef next = add_f(E, l.acc[0], v);
  em_loop_close(E, &l, &next, &out, true);
  return out;
}

static LLVMValueRef rstd_of(Emit *E, LLVMValueRef sq, int64_t count, float eps) {
  LLVMValueRef var = div_f(E, sq, em_f32(E, (double)count));
  LLVMValueRef v = add_f(E, var, em_f32(E, eps));
  return div_f(E, em_f32(E, 1.0), em_intrinsic(E, "llvm.sqrt", E->f32, &v, 1));
}

/* (x - mean) * rstd * gamma + beta at I, stored with the prologue and epilogue. */
static void norm_out(Emit *E, int x, const Idx *I, LLVMValueRef mean, LLVMValueRef rstd, LLVMValueRef gam,
                     LLVMValueRef bet) {
  LLVMValueRef y = em_fma(E, mul_f(E, sub_f(E, em_eval(E, x, I), mean), rstd), gam, bet);
  store_prologue(E, I);
  store_outputs(E, I, y);
}

void em_kernel_layer_norm(Emit *E, LLVMValueRef begin, LLVMValueRef end) {
  const IrNode *r = &E->g->node[E->k->root];
  int x = r->in[0];
  int64_t C = r->shape.d[r->shape.rank - 1], R = ir_numel(&r->shape) / C;
  Loop lr, l;
  em_loop_open(E, &lr, begin, end, 0, NULL);
  Idx P = em_idx1(lr.iv, R);
  LLVMValueRef mean = div_f(E, sum_pass(E, x, &P, C, NULL), em_f32(E, (double)C));
  LLVMValueRef rstd = rstd_of(E, sum_pass(E, x, &P, C, mean), C, r->attr.eps);
  em_loop_open(E, &l, em_i64(E, 0), em_i64(E, C), 0, NULL);
  Idx I = P, Ic = em_idx1(l.iv, C);
  em_idx_push(&I, l.iv, C);
  norm_out(E, x, &I, mean, rstd, em_eval(E, r->in[1], &Ic), em_eval(E, r->in[2], &Ic));
  em_loop_close(E, &l, NULL, NULL, false);
  em_loop_close(E, &lr, NULL, NULL, false);
}

/* One (sample, group) per iteration: its channels [g cg, (g+1) cg) are a
 * loop around a loop over the S spatial positions. */
void em_kernel_group_norm(Emit *E, LLVMValueRef begin, LLVMValueRef end) {
  const IrNode *r = &E->g->node[E->k->root];
  int x = r->in[0], G = r->attr.groups;
  int64_t N = r->shape.d[0], C = r->shape.d[1], S = ir_numel(&r->shape) / (N * C), cg = C / G;
  Loop lr, lc, ls;
  em_loop_open(E, &lr, begin, end, 0, NULL);
  LLVMValueRef n = G == 1 ? lr.iv : LLVMBuildUDiv(B, lr.iv, em_i64(E, G), "");
  LLVMValueRef cbase = G == 1 ? em_i64(E, 0) : LLVMBuildNSWMul(B, LLVMBuildURem(B, lr.iv, em_i64(E, G), ""), em_i64(E, cg), "");
  LLVMValueRef stat[2] = {NULL, NULL};
  for (int pass = 0; pass < 2; pass++) { /* sum, then squared deviations */
    LLVMValueRef init = em_f32(E, 0), out;
    em_loop_open(E, &lc, em_i64(E, 0), em_i64(E, cg), 1, &init);
    Idx P = em_idx1(n, N);
    em_idx_push(&P, LLVMBuildNSWAdd(B, cbase, lc.iv, ""), C);
    em_loop_open(E, &ls, em_i64(E, 0), em_i64(E, S), 1, lc.acc);
    Idx I = P;
    em_idx_push(&I, ls.iv, S);
    LLVMValueRef v = em_eval(E, x, &I);
    if (pass == 1) {
      LLVMValueRef d = sub_f(E, v, stat[0]);
      v = mul_f(E, d, d);
    }
    LLVMValueRef next = add_f(E, ls.acc[0], v), inner;
    em_loop_close(E, &ls, &next, &inner, true);
    em_loop_close(E, &lc, &inner, &out, false);
    stat[pass] = pass == 0 ? div_f(E, out, em_f32(E, (double)(cg * S))) : rstd_of(E, out, cg * S, r->attr.eps);
  }
  if (E->k->gn_stats) { /* rule wino-prologue: the statistics alone, applied by a Winograd input kernel */
    LLVMValueRef at = LLVMBuildNSWMul(B, lr.iv, em_i64(E, 2), "");
    em_store(E, E->k->stats_arg, stat[0], at);
    em_store(E, E->k->stats_arg, stat[1], em_iaddc(E, at, 1));
    em_loop_close(E, &lr, NULL, NULL, false);
    return;
  }
  em_loop_open(E, &lc, em_i64(E, 0), em_i64(E, cg), 0, NULL);
  LLVMValueRef c = LLVMBuildNSWAdd(B, cbase, lc.iv, "");
  Idx Ic = em_idx1(c, C);
  LLVMValueRef gam = em_eval(E, r->in[1], &Ic), bet = em_eval(E, r->in[2], &Ic);
  em_loop_open(E, &ls, em_i64(E, 0), em_i64(E, S), 0, NULL);
  Idx I = em_idx1(n, N);
  em_idx_push(&I, c, C);
  em_idx_push(&I, ls.iv, S);
  norm_out(E, x, &I, stat[0], stat[1], gam, bet);
  em_loop_close(E, &ls, NULL, NULL, false);
  em_loop_close(E, &lc, NULL, NULL, false);
  em_loop_close(E, &lr, NULL, NULL, false);
}

/* ---- cross-entropy: logsumexp(row) - row[target]; a target outside
 * [0, V) gives NaN ---- */
void em_kernel_cross_entropy(Emit *E, LLVMValueRef begin, LLVMValueRef end) {
  const IrNode *r = &E->g->node[E->k->root];
  int x = r->in[0], t = r->in[1];
  const IrShape *xs = &E->g->node[x].shape;
  int64_t V = xs->d[xs->rank - 1], R = ir_numel(&r->shape);
  Loop lr;
  em_loop_open(E, &lr, begin, end, 0, NULL);
  IrShape rows = {.rank = 2, .d = {R, V}};
  Row row = row_of(E, &rows, 1, lr.iv);
  LLVMValueRef m = row_max(E, x, &row);
  LLVMValueRef s = row_sumexp(E, x, &row, m, true, -1);
  Idx O = em_idx1(lr.iv, R);
  LLVMValueRef tv = LLVMBuildSExt(B, em_eval(E, t, &O), E->i64, "");
  LLVMValueRef ok = LLVMBuildAnd(B, LLVMBuildICmp(B, LLVMIntSGE, tv, em_i64(E, 0), ""),
                                 LLVMBuildICmp(B, LLVMIntSLT, tv, em_i64(E, V), ""), "");
  Idx It = em_idx1(lr.iv, R);
  em_idx_push(&It, LLVMBuildSelect(B, ok, tv, em_i64(E, 0), ""), V);
  LLVMValueRef xt = em_eval(E, x, &It);
  LLVMValueRef y = sub_f(E, em_log(E, s), sub_f(E, xt, m));
  store_outputs(E, &O, LLVMBuildSelect(B, ok, y, em_f32(E, NAN), ""));
  em_loop_close(E, &lr, NULL, NULL, false);
}
