/* emit_elem.c — the elemental evaluator: the value of a node at an index,
 * emitted from its inputs' values at mapped indices (elementwise: the same
 * index; reshape: the same flat index; broadcast: stretched dims at 0;
 * permute, slice, concat: moved dims; gather, onehot, iota: computed).
 * Members of the kernel are computed, other nodes are loaded, constants
 * are inlined. Values are cached per index while their loop body is open,
 * so a value used twice at the same place is computed once. */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include "codegen/llvm/emit.h"

#define B (E->b)

void em_fail(Emit *E, const char *fmt, ...) {
  if (E->err[0]) return;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(E->err, sizeof E->err, fmt, ap);
  va_end(ap);
}

LLVMTypeRef em_type_of(Emit *E, int v) { return E->g->node[v].dtype == IR_I32 ? E->i32 : E->f32; }

void em_cache_put(Emit *E, int v, const Idx *I, LLVMValueRef val) {
  if (E->ncache == E->capcache) {
    E->capcache = E->capcache ? 2 * E->capcache : 64;
    E->cache = realloc(E->cache, sizeof(CacheEntry) * (size_t)E->capcache);
  }
  E->cache[E->ncache++] = (CacheEntry){v, *I, val};
}

static LLVMValueRef cache_get(Emit *E, int v, const Idx *I) {
  for (int i = E->ncache - 1; i >= 0; i--)
    if (E->cache[i].node == v && em_idx_eq(&E->cache[i].idx, I)) return E->cache[i].val;
  return NULL;
}

/* If v is a constant (possibly reshaped or broadcast), its value. */
static bool const_value(const IrGraph *g, int v, double *out) {
  while (g->node[v].op == OP_BROADCAST || g->node[v].op == OP_RESHAPE) v = g->node[v].in[0];
  if (g->node[v].op != OP_CONST) return false;
  *out = g->node[v].attr.value;
  return true;
}

/* ---- elementwise ---- */

static LLVMValueRef unary_f32(Emit *E, IrOp op, LLVMValueRef x) {
  switch (op) {
  case OP_NEG: return LLVMBuildFNeg(B, x, "");
  case OP_ABS: return em_intrinsic(E, "llvm.fabs", E->f32, &x, 1);
  case OP_EXP: return em_exp(E, x);
  case OP_LOG: return em_log(E, x);
  case OP_SQRT: return em_intrinsic(E, "llvm.sqrt", E->f32, &x, 1);
  case OP_RSQRT: { /* in double, rounded once: the reference's result exactly */
    LLVMValueRef d = LLVMBuildFPExt(B, x, E->f64, "");
    d = LLVMBuildFDiv(B, LLVMConstReal(E->f64, 1.0), em_intrinsic(E, "llvm.sqrt", E->f64, &d, 1), "");
    return LLVMBuildFPTrunc(B, d, E->f32, "");
  }
  case OP_TANH: return em_tanh(E, x);
  case OP_SIGMOID: return em_sigmoid(E, x);
  case OP_RELU: /* NaN passes through (unordered-or-greater) */
    return LLVMBuildSelect(B, LLVMBuildFCmp(B, LLVMRealUGT, x, em_f32(E, 0), ""), x, em_f32(E, 0), "");
  case OP_GELU: return em_gelu(E, x);
  case OP_SILU: return LLVMBuildFMul(B, x, em_sigmoid(E, x), "");
  case OP_INPUT: case OP_PARAM: case OP_STATE: case OP_CONST: case OP_IOTA: case OP_GUMBEL: case OP_CAST:
  case OP_STOP_GRADIENT: case OP_ADD: case OP_SUB: case OP_MUL: case OP_DIV: case OP_MAX: case OP_MIN:
  case OP_POW: case OP_LT: case OP_LE: case OP_GT: case OP_GE: case OP_EQ: case OP_NE: case OP_WHERE:
  case OP_STRAIGHT_THROUGH: case OP_SUM: case OP_REDUCE_MAX: case OP_ARGMAX: case OP_SOFTMAX:
  case OP_LOG_SOFTMAX: case OP_RESHAPE: case OP_PERMUTE: case OP_BROADCAST: case OP_SLICE: case OP_CONCAT:
  case OP_GATHER: case OP_GATHER_BACKWARD: case OP_ONEHOT: case OP_MATMUL: case OP_CONV2D:
  case OP_CONV_TRANSPOSE2D: case OP_CONV2D_BACKWARD_WEIGHT: case OP_GROUP_NORM: case OP_LAYER_NORM:
  case OP_CROSS_ENTROPY: case OP_ATTENTION: case OP_ATTENTION_BACKWARD: case OP_COUNT: break;
  }
  em_fail(E, "no f32 code for %s", ir_op_name(op));
  return x;
}

/* Python's a // b, wrapping like the reference: b == -1 negates (INT32_MIN
 * stays), b == 0 gives 0. The division itself never sees 0 or -1, which
 * would trap. */
static LLVMValueRef floor_div_i32(Emit *E, LLVMValueRef a, LLVMValueRef b) {
  LLVMValueRef zero = LLVMBuildICmp(B, LLVMIntEQ, b, em_i32(E, 0), "");
  LLVMValueRef mone = LLVMBuildICmp(B, LLVMIntEQ, b, em_i32(E, -1), "");
  LLVMValueRef bs = LLVMBuildSelect(B, LLVMBuildOr(B, zero, mone, ""), em_i32(E, 1), b, "");
  LLVMValueRef q = LLVMBuildSDiv(B, a, bs, ""), r = LLVMBuildSRem(B, a, bs, "");
  LLVMValueRef signs = LLVMBuildXor(B, LLVMBuildICmp(B, LLVMIntSLT, r, em_i32(E, 0), ""),
                                    LLVMBuildICmp(B, LLVMIntSLT, bs, em_i32(E, 0), ""), "");
  LLVMValueRef adj = LLVMBuildAnd(B, LLVMBuildICmp(B, LLVMIntNE, r, em_i32(E, 0), ""), signs, "");
  q = LLVMBuildSub(B, q, LLVMBuildZExt(B, adj, E->i32, ""), "");
  q = LLVMBuildSelect(B, mone, LLVMBuildSub(B, em_i32(E, 0), a, ""), q, "");
  return LLVMBuildSelect(B, zero, em_i32(E, 0), q, "");
}

static LLVMValueRef call_pow(Emit *E, LLVMValueRef a, LLVMValueRef b) {
  LLVMTypeRef params[2] = {E->f64, E->f64};
  LLVMTypeRef fty = LLVMFunctionType(E->f64, params, 2, 0);
  LLVMValueRef fn = LLVMGetNamedFunction(E->mod, "pow");
  if (!fn) fn = LLVMAddFunction(E->mod, "pow", fty);
  LLVMValueRef args[2] = {LLVMBuildFPExt(B, a, E->f64, ""), LLVMBuildFPExt(B, b, E->f64, "")};
  return LLVMBuildFPTrunc(B, LLVMBuildCall2(B, fty, fn, args, 2, ""), E->f32, "");
}

static LLVMValueRef binary(Emit *E, int v, LLVMValueRef a, LLVMValueRef b) {
  const IrNode *nd = &E->g->node[v];
  bool f = E->g->node[nd->in[0]].dtype == IR_F32;
  switch (nd->op) {
  case OP_ADD: return f ? LLVMBuildFAdd(B, a, b, "") : LLVMBuildAdd(B, a, b, "");
  case OP_SUB: return f ? LLVMBuildFSub(B, a, b, "") : LLVMBuildSub(B, a, b, "");
  case OP_MUL: return f ? LLVMBuildFMul(B, a, b, "") : LLVMBuildMul(B, a, b, "");
  case OP_DIV: return f ? LLVMBuildFDiv(B, a, b, "") : floor_div_i32(E, a, b);
  case OP_MAX:
  case OP_MIN: {
    bool mx = nd->op == OP_MAX;
    if (!f) return LLVMBuildSelect(B, LLVMBuildICmp(B, mx ? LLVMIntSGT : LLVMIntSLT, a, b, ""), a, b, "");
    LLVMValueRef pick = LLVMBuildSelect(B, LLVMBuildFCmp(B, mx ? LLVMRealOGT : LLVMRealOLT, a, b, ""), a, b, "");
    return LLVMBuildSelect(B, LLVMBuildFCmp(B, LLVMRealUNO, a, b, ""), em_f32(E, NAN), pick, "");
  }
  case OP_POW: {
    double c;
    if (const_value(E->g, nd->in[1], &c) && c == 2.0) return LLVMBuildFMul(B, a, a, ""); /* exact in double too */
    if (const_value(E->g, nd->in[1], &c) && c == 1.0) return a;
    return call_pow(E, a, b);
  }
  case OP_LT:
  case OP_LE:
  case OP_GT:
  case OP_GE:
  case OP_EQ:
  case OP_NE: {
    static const LLVMRealPredicate fp[] = {LLVMRealOLT, LLVMRealOLE, LLVMRealOGT, LLVMRealOGE, LLVMRealOEQ, LLVMRealUNE};
    static const LLVMIntPredicate ip[] = {LLVMIntSLT, LLVMIntSLE, LLVMIntSGT, LLVMIntSGE, LLVMIntEQ, LLVMIntNE};
    int k = nd->op - OP_LT;
    LLVMValueRef c = f ? LLVMBuildFCmp(B, fp[k], a, b, "") : LLVMBuildICmp(B, ip[k], a, b, "");
    return LLVMBuildZExt(B, c, E->i32, "");
  }
  case OP_INPUT: case OP_PARAM: case OP_STATE: case OP_CONST: case OP_IOTA: case OP_GUMBEL: case OP_NEG:
  case OP_ABS: case OP_EXP: case OP_LOG: case OP_SQRT: case OP_RSQRT: case OP_TANH: case OP_SIGMOID:
  case OP_RELU: case OP_GELU: case OP_SILU: case OP_CAST: case OP_STOP_GRADIENT: case OP_WHERE: case OP_STRAIGHT_THROUGH:
  case OP_SUM: case OP_REDUCE_MAX: case OP_ARGMAX: case OP_SOFTMAX: case OP_LOG_SOFTMAX: case OP_RESHAPE:
  case OP_PERMUTE: case OP_BROADCAST: case OP_SLICE: case OP_CONCAT: case OP_GATHER: case OP_GATHER_BACKWARD:
  case OP_ONEHOT: case OP_MATMUL: case OP_CONV2D: case OP_CONV_TRANSPOSE2D: case OP_CONV2D_BACKWARD_WEIGHT:
  case OP_GROUP_NORM: case OP_LAYER_NORM: case OP_CROSS_ENTROPY: case OP_ATTENTION: case OP_ATTENTION_BACKWARD: case OP_COUNT: break;
  }
  em_fail(E, "no binary code for %s", ir_op_name(nd->op));
  return a;
}

/* ---- movement ---- */

void em_range_put(Emit *E, LLVMValueRef v, int64_t lo, int64_t hi) {
  if (E->nrange == (int)(sizeof E->range / sizeof E->range[0])) return;
  E->range[E->nrange].v = v;
  E->range[E->nrange].lo = lo;
  E->range[E->nrange].hi = hi;
  E->nrange++;
}

static bool range_get(const Emit *E, LLVMValueRef v, int64_t *lo, int64_t *hi) {
  for (int i = E->nrange - 1; i >= 0; i--)
    if (E->range[i].v == v) {
      *lo = E->range[i].lo;
      *hi = E->range[i].hi;
      return true;
    }
  return false;
}

static LLVMValueRef eval_concat(Emit *E, int v, LLVMValueRef *o) {
  const IrNode *nd = &E->g->node[v];
  int ax = nd->attr.axis;
  const IrShape *as = &E->g->node[nd->in[0]].shape, *bs = &E->g->node[nd->in[1]].shape;
  int64_t na = as->d[ax], nb = bs->d[ax], lo, hi;
  LLVMValueRef k = o[ax];
  if (range_get(E, k, &lo, &hi) && (hi <= na || lo >= na)) { /* inside a split loop: one side only */
    if (lo >= na) {
      o[ax] = LLVMBuildNSWSub(B, k, em_i64(E, na), "");
      em_range_put(E, o[ax], lo - na, hi - na);
    }
    Idx J = em_idx_dims(o, lo >= na ? bs : as);
    LLVMValueRef val = em_eval(E, nd->in[lo >= na ? 1 : 0], &J);
    o[ax] = k;
    return val;
  }
  if (nb == 0 || na == 0) { /* one side is empty: the other, at the same index */
    Idx J = em_idx_dims(o, nb == 0 ? as : bs);
    return em_eval(E, nd->in[nb == 0 ? 0 : 1], &J);
  }
  /* both sides are read at clamped, in-range positions; the select picks one */
  LLVMValueRef in_a = LLVMBuildICmp(B, LLVMIntSLT, k, em_i64(E, na), "");
  o[ax] = em_min_i64(E, k, em_i64(E, na - 1));
  Idx ia = em_idx_dims(o, as);
  LLVMValueRef va = em_eval(E, nd->in[0], &ia);
  o[ax] = em_max_i64(E, LLVMBuildNSWSub(B, k, em_i64(E, na), ""), em_i64(E, 0));
  Idx ib = em_idx_dims(o, bs);
  LLVMValueRef vb = em_eval(E, nd->in[1], &ib);
  o[ax] = k;
  return LLVMBuildSelect(B, in_a, va, vb, "");
}

/* table [V, D...], idx [...] -> [..., D...]; an index outside [0, V) reads 0. */
static LLVMValueRef eval_gather(Emit *E, int v, LLVMValueRef *o) {
  const IrNode *nd = &E->g->node[v];
  const IrShape *ts = &E->g->node[nd->in[0]].shape, *xs = &E->g->node[nd->in[1]].shape;
  Idx ii = {.n = 0};
  for (int k = 0; k < xs->rank; k++) em_idx_push(&ii, o[k], xs->d[k]);
  LLVMValueRef kk = LLVMBuildSExt(B, em_eval(E, nd->in[1], &ii), E->i64, "");
  LLVMValueRef ok = LLVMBuildAnd(B, LLVMBuildICmp(B, LLVMIntSGE, kk, em_i64(E, 0), ""),
                                 LLVMBuildICmp(B, LLVMIntSLT, kk, em_i64(E, ts->d[0]), ""), "");
  Idx ti = {.n = 0};
  em_idx_push(&ti, LLVMBuildSelect(B, ok, kk, em_i64(E, 0), ""), ts->d[0]);
  for (int k = 1; k < ts->rank; k++) em_idx_push(&ti, o[xs->rank + k - 1], ts->d[k]);
  LLVMValueRef tv = em_eval(E, nd->in[0], &ti);
  return LLVMBuildSelect(B, ok, tv, LLVMConstNull(em_type_of(E, v)), "");
}

static LLVMValueRef eval_op(Emit *E, int v, const Idx *I) {
  const IrNode *nd = &E->g->node[v];
  const IrShape *s = &nd->shape;
  LLVMValueRef o[IR_MAX_RANK], d[IR_MAX_RANK];
  switch (ir_op_pattern(nd->op)) {
  case PAT_ELEMWISE: {
    if (ir_op_is_identity(nd->op)) return em_eval(E, nd->in[0], I);
    LLVMValueRef x = em_eval(E, nd->in[0], I);
    if (nd->op == OP_CAST) {
      bool from_f = E->g->node[nd->in[0]].dtype == IR_F32, to_f = nd->dtype == IR_F32;
      if (from_f == to_f) return x;
      if (to_f) return LLVMBuildSIToFP(B, x, E->f32, "");
      /* saturating, NaN -> 0: the reference's rule */
      LLVMTypeRef tys[2] = {E->i32, E->f32};
      unsigned id = LLVMLookupIntrinsicID("llvm.fptosi.sat", 15);
      LLVMValueRef decl = LLVMGetIntrinsicDeclaration(E->mod, id, tys, 2);
      return LLVMBuildCall2(B, LLVMIntrinsicGetType(E->ctx, id, tys, 2), decl, &x, 1, "");
    }
    if (nd->op == OP_WHERE) {
      LLVMValueRef a = em_eval(E, nd->in[1], I), b = em_eval(E, nd->in[2], I);
      return LLVMBuildSelect(B, LLVMBuildICmp(B, LLVMIntNE, x, em_i32(E, 0), ""), a, b, "");
    }
    if (nd->nin == 2) return binary(E, v, x, em_eval(E, nd->in[1], I));
    if (nd->dtype == IR_F32) return unary_f32(E, nd->op, x);
    LLVMValueRef neg = LLVMBuildSub(B, em_i32(E, 0), x, ""); /* wraps: -INT32_MIN stays */
    if (nd->op == OP_NEG) return neg;
    return LLVMBuildSelect(B, LLVMBuildICmp(B, LLVMIntSGE, x, em_i32(E, 0), ""), x, neg, "");
  }
  default: break;
  }
  switch (nd->op) {
  case OP_RESHAPE: return em_eval(E, nd->in[0], I);
  case OP_BROADCAST: {
    const IrShape *xs = &E->g->node[nd->in[0]].shape;
    em_idx_unravel(E, I, s, o);
    for (int k = 0; k < s->rank; k++) d[k] = xs->d[k] == 1 ? em_i64(E, 0) : o[k];
    Idx J = em_idx_dims(d, xs);
    return em_eval(E, nd->in[0], &J);
  }
  case OP_PERMUTE: {
    const IrShape *xs = &E->g->node[nd->in[0]].shape;
    em_idx_unravel(E, I, s, o);
    for (int k = 0; k < s->rank; k++) d[nd->attr.perm[k]] = o[k];
    Idx J = em_idx_dims(d, xs);
    return em_eval(E, nd->in[0], &J);
  }
  case OP_SLICE: {
    const IrShape *xs = &E->g->node[nd->in[0]].shape;
    em_idx_unravel(E, I, s, o);
    for (int k = 0; k < s->rank; k++) d[k] = LLVMBuildNSWAdd(B, o[k], em_i64(E, nd->attr.start[k]), "");
    Idx J = em_idx_dims(d, xs);
    return em_eval(E, nd->in[0], &J);
  }
  case OP_CONCAT: em_idx_unravel(E, I, s, o); return eval_concat(E, v, o);
  case OP_GATHER: em_idx_unravel(E, I, s, o); return eval_gather(E, v, o);
  case OP_ONEHOT: {
    const IrShape *xs = &E->g->node[nd->in[0]].shape;
    int ax = nd->attr.axis;
    em_idx_unravel(E, I, s, o);
    for (int k = 0, j = 0; k < s->rank; k++)
      if (k != ax) d[j++] = o[k];
    Idx J = em_idx_dims(d, xs);
    LLVMValueRef kk = LLVMBuildSExt(B, em_eval(E, nd->in[0], &J), E->i64, "");
    return LLVMBuildSelect(B, LLVMBuildICmp(B, LLVMIntEQ, kk, o[ax], ""), em_f32(E, 1.0), em_f32(E, 0.0), "");
  }
  case OP_IOTA:
    em_idx_unravel(E, I, s, o);
    return LLVMBuildTrunc(B, o[nd->attr.axis], E->i32, "");
  case OP_INPUT: case OP_PARAM: case OP_STATE: case OP_CONST: case OP_GUMBEL: case OP_NEG: case OP_ABS:
  case OP_EXP: case OP_LOG: case OP_SQRT: case OP_RSQRT: case OP_TANH: case OP_SIGMOID: case OP_RELU:
  case OP_GELU: case OP_SILU: case OP_CAST: case OP_STOP_GRADIENT: case OP_ADD: case OP_SUB: case OP_MUL: case OP_DIV:
  case OP_MAX: case OP_MIN: case OP_POW: case OP_LT: case OP_LE: case OP_GT: case OP_GE: case OP_EQ:
  case OP_NE: case OP_WHERE: case OP_STRAIGHT_THROUGH: case OP_SUM: case OP_REDUCE_MAX: case OP_ARGMAX:
  case OP_SOFTMAX: case OP_LOG_SOFTMAX: case OP_GATHER_BACKWARD: case OP_MATMUL: case OP_CONV2D:
  case OP_CONV_TRANSPOSE2D: case OP_CONV2D_BACKWARD_WEIGHT: case OP_GROUP_NORM: case OP_LAYER_NORM:
  case OP_CROSS_ENTROPY: case OP_ATTENTION: case OP_ATTENTION_BACKWARD: case OP_COUNT: break;
  }
  em_fail(E, "kernel %s: %%%d (%s) cannot be computed elementally", E->k->name, v, ir_op_name(nd->op));
  return LLVMConstNull(em_type_of(E, v));
}

/* Where a windowed loop kernel's root is in its chunk's scratch output:
 * the global flat index minus the chunk start, or in a tiled window
 * (row - n0 * rows per sample) * tile + position - p0. */
static LLVMValueRef src_offset(Emit *E, const Idx *I) {
  const CgKernel *k = E->k;
  if (k->tile == 0)
    return LLVMBuildNSWSub(B, em_idx_flat(E, I), LLVMBuildNSWMul(B, E->n0, em_i64(E, k->sample), ""), "");
  LLVMValueRef row, pos;
  if (I->n == 2 && I->ext[1] == k->plane) {
    row = I->v[0];
    pos = I->v[1];
  } else {
    LLVMValueRef flat = em_idx_flat(E, I), plane = em_i64(E, k->plane);
    row = LLVMBuildUDiv(B, flat, plane, "");
    pos = LLVMBuildURem(B, flat, plane, "");
  }
  row = LLVMBuildNSWSub(B, row, LLVMBuildNSWMul(B, E->n0, em_i64(E, k->sample / k->plane), ""), "");
  return LLVMBuildNSWAdd(B, LLVMBuildNSWMul(B, row, em_i64(E, k->tile), ""), LLVMBuildNSWSub(B, pos, E->p0, ""), "");
}

LLVMValueRef em_eval(Emit *E, int v, const Idx *I) {
  LLVMValueRef val = cache_get(E, v, I);
  if (val) return val;
  const IrNode *nd = &E->g->node[v];
  const CgKernel *k = E->k;
  if (v == k->root && k->kind == CG_KERNEL_LOOP && k->src == CG_SRC_OFFSET) {
    val = em_load(E, k->src_arg, E->f32, src_offset(E, I));
  } else if (nd->op == OP_CONST) {
    val = nd->dtype == IR_I32 ? em_i32(E, (int32_t)nd->attr.value) : em_f32(E, (float)nd->attr.value);
  } else if (E->load_arg[v] >= 0) {
    val = em_load(E, E->load_arg[v], em_type_of(E, v), em_idx_flat(E, I));
  } else if (cg_is_member(k, v)) {
    val = eval_op(E, v, I);
  } else {
    em_fail(E, "kernel %s: %%%d (%s) is neither computed nor loaded", k->name, v, ir_op_name(nd->op));
    val = LLVMConstNull(em_type_of(E, v));
  }
  em_cache_put(E, v, I, val);
  return val;
}

void em_store_node(Emit *E, int v, const Idx *I) {
  for (int i = 0; i < E->k->nstore; i++)
    if (E->k->store[i].node == v) {
      em_store(E, E->k->store[i].arg, em_eval(E, v, I), em_idx_flat(E, I));
      return;
    }
  em_fail(E, "kernel %s: %%%d is not stored", E->k->name, v);
}
