/* emit_loop.c — constants, counted loops with carried values, intrinsic
 * calls and buffer access for the kernel emitter. */
#include <llvm-c/DebugInfo.h>
#include <string.h>

#include "codegen/llvm/emit.h"

LLVMValueRef em_i64(Emit *E, int64_t v) { return LLVMConstInt(E->i64, (unsigned long long)v, 1); }
LLVMValueRef em_i32(Emit *E, int32_t v) { return LLVMConstInt(E->i32, (unsigned long long)(int64_t)v, 1); }
LLVMValueRef em_f32(Emit *E, double v) { return LLVMConstReal(E->f32, v); }

LLVMValueRef em_imulc(Emit *E, LLVMValueRef a, int64_t c) { return LLVMBuildNSWMul(E->b, a, em_i64(E, c), ""); }
LLVMValueRef em_iadd(Emit *E, LLVMValueRef a, LLVMValueRef b) { return LLVMBuildNSWAdd(E->b, a, b, ""); }
LLVMValueRef em_iaddc(Emit *E, LLVMValueRef a, int64_t c) { return LLVMBuildNSWAdd(E->b, a, em_i64(E, c), ""); }
LLVMValueRef em_udivc(Emit *E, LLVMValueRef a, int64_t c) {
  return c == 1 ? a : LLVMBuildUDiv(E->b, a, em_i64(E, c), "");
}
LLVMValueRef em_uremc(Emit *E, LLVMValueRef a, int64_t c) {
  return c == 1 ? em_i64(E, 0) : LLVMBuildURem(E->b, a, em_i64(E, c), "");
}

/* The loop shape is a guarded do-while, which is what LLVM's loop passes
 * expect after rotation:
 *   pre:  br (lo < hi), head, exit
 *   head: iv = phi [lo, pre], [iv + 1, latch]; body...
 *   latch: br (iv + 1 < hi), head, exit
 *   exit: carried values = phi [init, pre], [next, latch] */
void em_loop_open(Emit *E, Loop *l, LLVMValueRef lo, LLVMValueRef hi, int nacc, const LLVMValueRef *init) {
  memset(l, 0, sizeof *l);
  l->pre = LLVMGetInsertBlock(E->b);
  l->hi = hi;
  l->nacc = nacc;
  l->cache_mark = E->ncache;
  LLVMValueRef guard = LLVMBuildICmp(E->b, LLVMIntSLT, lo, hi, "");
  l->head = LLVMAppendBasicBlockInContext(E->ctx, E->fn, "loop");
  l->exit = LLVMAppendBasicBlockInContext(E->ctx, E->fn, "loop.end");
  LLVMBuildCondBr(E->b, guard, l->head, l->exit);
  LLVMPositionBuilderAtEnd(E->b, l->head);
  l->iv = LLVMBuildPhi(E->b, E->i64, "i");
  LLVMAddIncoming(l->iv, &lo, &l->pre, 1);
  for (int a = 0; a < nacc; a++) {
    l->init[a] = init[a];
    l->acc[a] = LLVMBuildPhi(E->b, LLVMTypeOf(init[a]), "acc");
    LLVMAddIncoming(l->acc[a], &l->init[a], &l->pre, 1);
  }
}

static void vectorize_md(Emit *E, LLVMValueRef br) {
  LLVMMetadataRef tmp = LLVMTemporaryMDNode(E->ctx, NULL, 0);
  const char *key = "llvm.loop.vectorize.enable";
  LLVMMetadataRef on[2] = {LLVMMDStringInContext2(E->ctx, key, strlen(key)),
                           LLVMValueAsMetadata(LLVMConstInt(E->i1, 1, 0))};
  LLVMMetadataRef self[2] = {tmp, LLVMMDNodeInContext2(E->ctx, on, 2)};
  LLVMMetadataRef id = LLVMMDNodeInContext2(E->ctx, self, 2);
  LLVMMetadataReplaceAllUsesWith(tmp, id); /* the loop id refers to itself */
  LLVMSetMetadata(br, LLVMGetMDKindIDInContext(E->ctx, "llvm.loop", 9), LLVMMetadataAsValue(E->ctx, id));
}

void em_loop_close(Emit *E, Loop *l, const LLVMValueRef *next, LLVMValueRef *out, bool vectorize) {
  LLVMBasicBlockRef latch = LLVMGetInsertBlock(E->b);
  LLVMBasicBlockRef exit = l->exit;
  /* blocks made inside the body were appended after the exit block; keep
   * the exit last so the function reads top to bottom */
  LLVMMoveBasicBlockAfter(exit, LLVMGetLastBasicBlock(E->fn));
  LLVMValueRef ivn = LLVMBuildNSWAdd(E->b, l->iv, em_i64(E, 1), "");
  LLVMValueRef c = LLVMBuildICmp(E->b, LLVMIntSLT, ivn, l->hi, "");
  LLVMValueRef br = LLVMBuildCondBr(E->b, c, l->head, exit);
  if (vectorize) vectorize_md(E, br);
  LLVMAddIncoming(l->iv, &ivn, &latch, 1);
  for (int a = 0; a < l->nacc; a++) LLVMAddIncoming(l->acc[a], (LLVMValueRef *)&next[a], &latch, 1);
  LLVMPositionBuilderAtEnd(E->b, exit);
  for (int a = 0; a < l->nacc; a++) {
    LLVMValueRef phi = LLVMBuildPhi(E->b, LLVMTypeOf(l->init[a]), "");
    LLVMValueRef vals[2] = {l->init[a], next[a]};
    LLVMBasicBlockRef from[2] = {l->pre, latch};
    LLVMAddIncoming(phi, vals, from, 2);
    if (out) out[a] = phi;
  }
  E->ncache = l->cache_mark; /* values computed in the body do not dominate the exit */
}

LLVMValueRef em_intrinsic(Emit *E, const char *name, LLVMTypeRef ty, LLVMValueRef *args, int n) {
  unsigned id = LLVMLookupIntrinsicID(name, strlen(name));
  LLVMValueRef decl = LLVMGetIntrinsicDeclaration(E->mod, id, &ty, 1);
  LLVMTypeRef fty = LLVMIntrinsicGetType(E->ctx, id, &ty, 1);
  return LLVMBuildCall2(E->b, fty, decl, args, (unsigned)n, "");
}

LLVMValueRef em_min_i64(Emit *E, LLVMValueRef a, LLVMValueRef b) {
  return LLVMBuildSelect(E->b, LLVMBuildICmp(E->b, LLVMIntSLT, a, b, ""), a, b, "");
}

LLVMValueRef em_max_i64(Emit *E, LLVMValueRef a, LLVMValueRef b) {
  return LLVMBuildSelect(E->b, LLVMBuildICmp(E->b, LLVMIntSGT, a, b, ""), a, b, "");
}

LLVMValueRef em_elem_ptr(Emit *E, int arg, LLVMTypeRef ty, LLVMValueRef i) {
  return LLVMBuildInBoundsGEP2(E->b, ty, E->argp[arg], &i, 1, "");
}

LLVMValueRef em_load(Emit *E, int arg, LLVMTypeRef ty, LLVMValueRef i) {
  LLVMValueRef v = LLVMBuildLoad2(E->b, ty, em_elem_ptr(E, arg, ty, i), "");
  LLVMSetAlignment(v, 4);
  return v;
}

void em_store(Emit *E, int arg, LLVMValueRef v, LLVMValueRef i) {
  LLVMValueRef s = LLVMBuildStore(E->b, v, em_elem_ptr(E, arg, LLVMTypeOf(v), i));
  LLVMSetAlignment(s, 4);
}
