/* emit_kernel.c — one kernel as LLVM functions: a body taking each buffer
 * as a noalias pointer (so the vectoriser needs no runtime alias checks),
 * and the RtKernelFn entry that loads the pointers from args[] and calls
 * the body, which O3 inlines. Also the LOOP kernel and the dispatch on the
 * other kinds. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codegen/llvm/emit.h"

#define B (E->b)

/* Kernels with more buffers than this get no noalias arguments (em_kernel). */
#define CG_NOALIAS_MAX_ARGS 64

static void fn_attr(Emit *E, LLVMValueRef fn, const char *k, const char *v) {
  LLVMAddAttributeAtIndex(fn, LLVMAttributeFunctionIndex,
                          LLVMCreateStringAttribute(E->ctx, k, (unsigned)strlen(k), v, (unsigned)strlen(v)));
}

static void enum_attr(Emit *E, LLVMValueRef fn, unsigned idx, const char *name) {
  unsigned kind = LLVMGetEnumAttributeKindForName(name, strlen(name));
  LLVMAddAttributeAtIndex(fn, idx, LLVMCreateEnumAttribute(E->ctx, kind, 0));
}

/* Host CPU name and features on every function, so IR, JIT and object
 * emission agree (the CPU name alone could enable AVX-512 that the host
 * lacks), and the vector width the loop vectoriser prefers. */
static void target_attrs(Emit *E, LLVMValueRef fn) {
  fn_attr(E, fn, "target-cpu", E->cpu);
  fn_attr(E, fn, "target-features", E->features);
  /* LLVM vectorises 8 floats wide on AVX-512 CPUs unless told otherwise;
   * 16 wide runs the polynomial-heavy kernels (gelu and its gradient,
   * cross-entropy) 15-30% faster and the column sums 10-20% (measured on
   * the GPT bench's kernels), and none measured slower. */
  if (strstr(E->features, "+avx512f")) fn_attr(E, fn, "prefer-vector-width", "512");
  enum_attr(E, fn, LLVMAttributeFunctionIndex, "nounwind");
}

/* Every value of the element first, then the stores: an output may share
 * its argument with an input it replaces (lower_inplace.c), which must be
 * read before it is overwritten. */
static void store_all(Emit *E, const Idx *I) {
  for (int i = 0; i < E->k->nstore; i++) em_eval(E, E->k->store[i].node, I);
  for (int i = 0; i < E->k->nstore; i++) em_store_node(E, E->k->store[i].node, I);
}

/* Collects into pts[] the positions along the inner (last) axis where a
 * concat on that axis switches sides, for node v evaluated at inner
 * position c + off: through elementwise ops, reshapes and broadcasts that
 * keep the last axis, and into both sides of concats. */
static void concat_splits(Emit *E, int v, int64_t off, int64_t inner, int64_t *pts, int *n) {
  const IrNode *nd = &E->g->node[v];
  if (!cg_is_member(E->k, v) || *n >= 16 || nd->shape.rank == 0 || nd->shape.d[nd->shape.rank - 1] != inner) return;
  int last = nd->shape.rank - 1;
  if (nd->op == OP_CONCAT && nd->attr.axis == last) {
    int64_t na = E->g->node[nd->in[0]].shape.d[last];
    pts[(*n)++] = off + na;
    concat_splits(E, nd->in[0], off, inner, pts, n);
    concat_splits(E, nd->in[1], off + na, inner, pts, n);
  } else if (ir_op_pattern(nd->op) == PAT_ELEMWISE || nd->op == OP_RESHAPE || nd->op == OP_BROADCAST) {
    int nin = nd->op == OP_STRAIGHT_THROUGH ? 1 : nd->nin;
    for (int j = 0; j < nin; j++) concat_splits(E, nd->in[j], off, inner, pts, n);
  }
}

/* The inner loop [0, inner) cut at the concat switch points (sorted,
 * unique, inside): cuts[0] = 0 ... cuts[n] = inner. Returns n. */
static int inner_segments(Emit *E, int64_t inner, int64_t *cuts) {
  const IrShape *s = &E->g->node[E->k->root].shape;
  int n = 0;
  int64_t pts[20];
  if (s->rank > 0 && s->d[s->rank - 1] == inner)
    for (int i = 0; i < E->k->nstore; i++) concat_splits(E, E->k->store[i].node, 0, inner, pts, &n);
  int m = 0;
  cuts[m++] = 0;
  for (int64_t next = 0;;) { /* ascending, without repeats */
    int64_t best = inner;
    for (int i = 0; i < n; i++)
      if (pts[i] > next && pts[i] < best) best = pts[i];
    if (best >= inner) break;
    cuts[m++] = next = best;
  }
  cuts[m] = inner;
  return m;
}

/* Whether v has one value along each row of the loop: a constant, a
 * broadcast that stretches axes of 1 over the last 'tail' axes (those the
 * row spans), or elementwise arithmetic of such values. */
static bool row_invariant(Emit *E, int v, int tail) {
  const IrNode *nd = &E->g->node[v];
  if (nd->op == OP_CONST) return true;
  if (!cg_is_member(E->k, v)) return false;
  if (nd->op == OP_BROADCAST) {
    const IrShape *in = &E->g->node[nd->in[0]].shape;
    if (in->rank != nd->shape.rank) return false;
    for (int j = in->rank - tail; j < in->rank; j++)
      if (in->d[j] != 1) return false;
    return true;
  }
  if (ir_op_pattern(nd->op) != PAT_ELEMWISE || nd->op == OP_STRAIGHT_THROUGH) return false;
  for (int j = 0; j < nd->nin; j++)
    if (!row_invariant(E, nd->in[j], tail)) return false;
  return true;
}

/* A row update written in place: the kernel's one store is its root
 * where(c, a, t) into t's own buffer (t loaded from the argument it is
 * stored to, at the same index), with c constant along each row (a KV
 * cache row written at position pos). A row whose c is false would store
 * t over itself, so the kernel skips it. Returns c, or -1. */
static int row_update_guard(Emit *E) {
  const CgKernel *k = E->k;
  const IrNode *r = &E->g->node[k->root];
  if (k->nstore != 1 || k->store[0].node != k->root || r->op != OP_WHERE) return -1;
  int t = r->in[2];
  if (E->load_arg[t] != k->store[0].arg || !ir_shape_eq(&E->g->node[t].shape, &r->shape)) return -1;
  int tail = 0; /* the trailing axes a row spans */
  for (int64_t span = 1; span < k->inner && tail < r->shape.rank; tail++) span *= r->shape.d[r->shape.rank - 1 - tail];
  return row_invariant(E, r->in[0], tail) ? r->in[0] : -1;
}

/* LOOP: flat, i in [begin * inner, min(end * inner, total)); or rows x
 * inner, row r (offset by the window's first sample) and c in [0, inner),
 * split where concats switch sides so each piece reads one side; or, in a
 * tiled window, rows of plane positions [p0, p0 + tile). */
static void loop_kernel(Emit *E, LLVMValueRef begin, LLVMValueRef end) {
  const CgKernel *k = E->k;
  Loop lr, lc;
  if (k->flat) {
    LLVMValueRef lo = LLVMBuildNSWMul(B, begin, em_i64(E, k->inner), "");
    LLVMValueRef hi = em_min_i64(E, LLVMBuildNSWMul(B, end, em_i64(E, k->inner), ""), em_i64(E, k->total));
    em_loop_open(E, &lc, lo, hi, 0, NULL);
    Idx I = em_idx1(lc.iv, k->total);
    store_all(E, &I);
    em_loop_close(E, &lc, NULL, NULL, false);
    return;
  }
  if (k->tile > 0) { /* rows of the window's sample, positions [p0, p0 + tile) of each */
    em_loop_open(E, &lr, begin, end, 0, NULL);
    LLVMValueRef row = LLVMBuildNSWAdd(B, lr.iv, LLVMBuildNSWMul(B, E->n0, em_i64(E, k->sample / k->plane), ""), "");
    em_loop_open(E, &lc, em_i64(E, 0), em_i64(E, k->tile), 0, NULL);
    Idx I = em_idx1(row, k->total / k->plane);
    em_idx_push(&I, LLVMBuildNSWAdd(B, E->p0, lc.iv, ""), k->plane);
    store_all(E, &I);
    em_loop_close(E, &lc, NULL, NULL, false);
    em_loop_close(E, &lr, NULL, NULL, false);
    return;
  }
  em_loop_open(E, &lr, begin, end, 0, NULL);
  LLVMValueRef row = lr.iv;
  if (k->nc) row = LLVMBuildNSWAdd(B, row, LLVMBuildNSWMul(B, E->n0, em_i64(E, k->sample / k->inner), ""), "");
  int64_t cuts[24];
  int nseg = inner_segments(E, k->inner, cuts);
  int guard = row_update_guard(E);
  LLVMBasicBlockRef skip = NULL;
  if (guard >= 0) {
    Idx I0 = em_idx1(row, k->total / k->inner);
    em_idx_push(&I0, em_i64(E, 0), k->inner);
    LLVMValueRef c = em_eval(E, guard, &I0);
    c = LLVMBuildICmp(B, LLVMIntNE, c, LLVMConstNull(LLVMTypeOf(c)), "");
    LLVMBasicBlockRef upd = LLVMAppendBasicBlockInContext(E->ctx, E->fn, "row.update");
    skip = LLVMAppendBasicBlockInContext(E->ctx, E->fn, "row.next");
    LLVMBuildCondBr(B, c, upd, skip);
    LLVMPositionBuilderAtEnd(B, upd);
  }
  for (int sg = 0; sg < nseg; sg++) {
    em_loop_open(E, &lc, em_i64(E, cuts[sg]), em_i64(E, cuts[sg + 1]), 0, NULL);
    int mark = E->nrange;
    if (nseg > 1) em_range_put(E, lc.iv, cuts[sg], cuts[sg + 1]);
    Idx I = em_idx1(row, k->total / k->inner);
    em_idx_push(&I, lc.iv, k->inner);
    store_all(E, &I);
    E->nrange = mark;
    em_loop_close(E, &lc, NULL, NULL, false);
  }
  if (skip) {
    LLVMBuildBr(B, skip);
    LLVMMoveBasicBlockAfter(skip, LLVMGetInsertBlock(B));
    LLVMPositionBuilderAtEnd(B, skip);
  }
  em_loop_close(E, &lr, NULL, NULL, false);
}

int em_kernel(Emit *E, const CgKernel *k) {
  E->k = k;
  E->err[0] = 0;
  E->ncache = 0;
  E->nrange = 0;
  for (int i = 0; i < k->nload; i++) /* (all -1 between kernels: cg_module_new) */ E->load_arg[k->load[i].node] = k->load[i].arg;

  /* body(ptr noalias a0, ..., ptr ctx, i64 begin, i64 end) */
  int np = k->narg + 3;
  LLVMTypeRef *pt = malloc(sizeof(LLVMTypeRef) * (size_t)np);
  for (int i = 0; i < k->narg + 1; i++) pt[i] = E->ptr;
  pt[k->narg + 1] = pt[k->narg + 2] = E->i64;
  char name[96];
  snprintf(name, sizeof name, "%s.body", k->name);
  LLVMValueRef body = LLVMAddFunction(E->mod, name, LLVMFunctionType(E->vd, pt, (unsigned)np, 0));
  free(pt);
  LLVMSetLinkage(body, LLVMInternalLinkage);
  target_attrs(E, body);
  enum_attr(E, body, LLVMAttributeFunctionIndex, "alwaysinline");
  /* Inlined, N noalias arguments become N alias scopes on every access,
   * and LLVM's alias queries over them cost O(N^3) in all: a loop over
   * 1,000 parameters took minutes to compile. Past a few dozen buffers the
   * vectoriser gives up on the kernel's alias checks anyway. */
  bool noalias = k->narg <= CG_NOALIAS_MAX_ARGS;
  for (int i = 0; i < k->narg; i++) {
    if (noalias) enum_attr(E, body, (unsigned)i + 1, "noalias");
    enum_attr(E, body, (unsigned)i + 1, "nocapture");
  }
  E->fn = body;
  LLVMPositionBuilderAtEnd(B, LLVMAppendBasicBlockInContext(E->ctx, body, "entry"));
  E->argp = malloc(sizeof(LLVMValueRef) * (size_t)(k->narg + 1));
  for (int i = 0; i < k->narg; i++) E->argp[i] = LLVMGetParam(body, (unsigned)i);
  E->ctxp = LLVMGetParam(body, (unsigned)k->narg);
  LLVMValueRef begin = LLVMGetParam(body, (unsigned)k->narg + 1), end = LLVMGetParam(body, (unsigned)k->narg + 2);
  E->n0 = k->base_arg >= 0 ? em_load(E, k->base_arg, E->i64, em_i64(E, 0)) : em_i64(E, 0);
  E->p0 = em_i64(E, 0);
  if (k->tile > 0) { /* chunk number b: sample b / tiles, first position (b % tiles) * tile */
    LLVMValueRef tiles = em_i64(E, k->plane / k->tile);
    E->p0 = LLVMBuildNSWMul(B, LLVMBuildURem(B, E->n0, tiles, ""), em_i64(E, k->tile), "");
    E->n0 = LLVMBuildUDiv(B, E->n0, tiles, "");
  }
  switch (k->kind) {
  case CG_KERNEL_LOOP: loop_kernel(E, begin, end); break;
  case CG_KERNEL_REDUCE: em_kernel_reduce(E, begin, end); break;
  case CG_KERNEL_SOFTMAX: em_kernel_softmax(E, begin, end); break;
  case CG_KERNEL_LAYER_NORM: em_kernel_layer_norm(E, begin, end); break;
  case CG_KERNEL_GROUP_NORM: em_kernel_group_norm(E, begin, end); break;
  case CG_KERNEL_CROSS_ENTROPY: em_kernel_cross_entropy(E, begin, end); break;
  case CG_KERNEL_IM2COL: em_kernel_im2col(E, begin, end); break;
  case CG_KERNEL_PACK: em_kernel_pack(E, begin, end); break;
  case CG_KERNEL_COL2IM: em_kernel_col2im(E, begin, end); break;
  case CG_KERNEL_SCATTER_ADD: em_kernel_scatter_add(E, begin, end); break;
  case CG_KERNEL_GUMBEL: em_kernel_gumbel(E, begin, end); break;
  case CG_KERNEL_WINO_WEIGHT: em_kernel_wino_weight(E, begin, end); break;
  case CG_KERNEL_WINO_INPUT: em_kernel_wino_input(E, begin, end); break;
  case CG_KERNEL_WINO_OUTPUT: em_kernel_wino_output(E, begin, end); break;
  case CG_KERNEL_WINO_DY: em_kernel_wino_dy(E, begin, end); break;
  case CG_KERNEL_WINO_WGRAD: em_kernel_wino_wgrad(E, begin, end); break;
  case CG_KERNEL_ATTENTION:
  case CG_KERNEL_ATTENTION_BWD: em_kernel_attention(E, begin, end); break;
  case CG_KERNEL_PHASE_WEIGHT: em_kernel_phase_weight(E, begin, end); break;
  case CG_KERNEL_PHASE_IN: em_kernel_phase_in(E, begin, end); break;
  case CG_KERNEL_PHASE_OUT: em_kernel_phase_out(E, begin, end); break;
  }
  LLVMBuildRetVoid(B);
  free(E->argp);
  E->argp = NULL;

  /* the RtKernelFn entry point */
  LLVMTypeRef et[4] = {E->ptr, E->ptr, E->i64, E->i64};
  LLVMValueRef entry = LLVMAddFunction(E->mod, k->name, LLVMFunctionType(E->vd, et, 4, 0));
  target_attrs(E, entry);
  LLVMPositionBuilderAtEnd(B, LLVMAppendBasicBlockInContext(E->ctx, entry, "entry"));
  LLVMValueRef *args = malloc(sizeof(LLVMValueRef) * (size_t)np);
  for (int i = 0; i < k->narg; i++) {
    LLVMValueRef at = em_i64(E, i);
    LLVMValueRef slot = LLVMBuildInBoundsGEP2(B, E->ptr, LLVMGetParam(entry, 0), &at, 1, "");
    args[i] = LLVMBuildLoad2(B, E->ptr, slot, "");
  }
  args[k->narg] = LLVMGetParam(entry, 1);
  args[k->narg + 1] = LLVMGetParam(entry, 2);
  args[k->narg + 2] = LLVMGetParam(entry, 3);
  LLVMBuildCall2(B, LLVMGlobalGetValueType(body), body, args, (unsigned)np, "");
  LLVMBuildRetVoid(B);
  free(args);
  E->k = NULL;
  return E->err[0] ? -1 : 0;
}
