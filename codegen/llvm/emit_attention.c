/* emit_attention.c — the attention kernels: the parallel range is the
 * (batch, head) items, and the body hands [begin, end) to the runtime's
 * rt_attn_forward / rt_attn_backward (runtime/sched/attention.h) with the
 * sizes and the scale as constants. The tiled loops live there, in C, so
 * the JIT and AOT executables share one implementation. */
#include "codegen/llvm/emit.h"

#define B (E->b)

void em_kernel_attention(Emit *E, LLVMValueRef begin, LLVMValueRef end) {
  const CgKernel *k = E->k;
  bool bwd = k->kind == CG_KERNEL_ATTENTION_BWD;
  int nptr = bwd ? 7 : 5; /* out, q, k, v, mask (, y, dy) */
  LLVMTypeRef pt[13];
  LLVMValueRef args[13];
  int n = 0;
  for (int i = 0; i < nptr; i++) pt[i] = E->ptr;
  args[n++] = E->argp[k->out_arg];
  for (int i = 0; i < nptr - 1; i++) args[n++] = E->argp[k->attn_arg[i]];
  for (int i = 0; i < 3; i++) pt[n] = E->i64, n++;
  args[nptr] = em_i64(E, k->attn_n);
  args[nptr + 1] = em_i64(E, k->attn_m);
  args[nptr + 2] = em_i64(E, k->attn_d);
  pt[n] = E->f32;
  args[n++] = em_f32(E, k->attn_scale);
  pt[n] = E->i64;
  args[n++] = begin;
  pt[n] = E->i64;
  args[n++] = end;
  const char *name = bwd ? "rt_attn_backward" : "rt_attn_forward";
  LLVMTypeRef fty = LLVMFunctionType(E->vd, pt, (unsigned)n, 0);
  LLVMValueRef fn = LLVMGetNamedFunction(E->mod, name);
  if (!fn) fn = LLVMAddFunction(E->mod, name, fty);
  LLVMBuildCall2(B, fty, fn, args, (unsigned)n, "");
}
