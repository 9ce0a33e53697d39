/* emit.h — the kernel emitter's shared state and helpers (internal to
 * codegen/llvm).
 *
 *   emit_index.c   flat indices as mixed-radix digits; unravel / ravel
 *   emit_loop.c    counted loops with carried values; vectorize metadata
 *   emit_math.c    exp, log, tanh, sigmoid, gelu as float polynomials
 *   emit_elem.c    the elemental evaluator: a node's value at an index
 *   emit_kernel.c  function scaffolding, LOOP kernels, dispatch
 *   emit_rows.c    reduce, softmax, layer/group norm, cross-entropy kernels
 *   emit_conv.c    im2col, pack, col2im values, scatter-add, gumbel
 *   emit_winograd.c  Winograd F(2x2,3x3) weight, input and output transforms
 *                    (and the weight gradient's dy and dw transforms)
 *   emit_attention.c attention and its backward: calls into runtime/sched/attention.h
 *   emit_direct.c  the direct strided convolutions' weight layout and phase grids
 */
#ifndef DAL_CODEGEN_LLVM_EMIT_H
#define DAL_CODEGEN_LLVM_EMIT_H

#include <llvm-c/Core.h>
#include <stdbool.h>

#include "codegen/lower.h"

/* A flat index written as mixed-radix digits, most significant first:
 * flat = ((v[0] * ext[1] + v[1]) * ext[2] + v[2]) ... Kernels build indices
 * from their loop variables, so an op that needs per-dimension indices
 * finds them without dividing when the digits line up with the dims. */
typedef struct {
  LLVMValueRef v[IR_MAX_RANK + 2];
  int64_t ext[IR_MAX_RANK + 2];
  int n;
} Idx;

/* A node's value at an index, kept while the loop body that computed it
 * is open. */
typedef struct {
  int node;
  Idx idx;
  LLVMValueRef val;
} CacheEntry;

typedef struct {
  LLVMBasicBlockRef pre, head, exit;
  LLVMValueRef iv, hi;
  int nacc;
  LLVMValueRef acc[4], init[4];
  int cache_mark;
} Loop;

typedef struct {
  LLVMContextRef ctx;
  LLVMModuleRef mod;
  LLVMBuilderRef b;
  LLVMTypeRef f32, f64, i1, i32, i64, ptr, vd;
  const char *cpu, *features;
  const IrGraph *g;
  const CgKernel *k;
  LLVMValueRef fn;     /* the kernel's body function */
  LLVMValueRef *argp;  /* (k->narg) buffer base pointers */
  LLVMValueRef ctxp;   /* const RtRunCtx * */
  LLVMValueRef n0;     /* first sample of the kernel's window (i64) */
  LLVMValueRef p0;     /* first position of a tiled window (i64; else 0) */
  int *load_arg;       /* node -> argument it is loaded from, or -1 */
  CacheEntry *cache;
  int ncache, capcache;
  /* Values known to lie in [lo, hi): loop variables of split inner loops
   * and what concat derives from them, so a concat inside such a loop
   * reads just the side it is on. */
  struct {
    LLVMValueRef v;
    int64_t lo, hi;
  } range[32];
  int nrange;
  char err[256];       /* first internal error (lowering and emitter disagree) */
} Emit;

/* ---- emit_index.c ---- */
Idx em_idx1(LLVMValueRef v, int64_t ext);
/* Appends a digit (most significant first). */
void em_idx_push(Idx *I, LLVMValueRef v, int64_t ext);
/* An index over 'shape' from per-dimension values d[0 .. rank). */
Idx em_idx_dims(LLVMValueRef *d, const IrShape *shape);
LLVMValueRef em_idx_flat(Emit *E, const Idx *I);
/* Per-dimension values of I over 'shape' into d[0 .. rank). */
void em_idx_unravel(Emit *E, const Idx *I, const IrShape *shape, LLVMValueRef *d);
bool em_idx_eq(const Idx *a, const Idx *b);

/* ---- emit_loop.c ---- */
LLVMValueRef em_i64(Emit *E, int64_t v);
LLVMValueRef em_i32(Emit *E, int32_t v);
LLVMValueRef em_f32(Emit *E, double v);
/* i64 index arithmetic with constants (no signed wrap: indices are in range):
 * a * c, a + b, a + c, a / c and a % c (unsigned; c == 1 folds away). */
LLVMValueRef em_imulc(Emit *E, LLVMValueRef a, int64_t c);
LLVMValueRef em_iadd(Emit *E, LLVMValueRef a, LLVMValueRef b);
LLVMValueRef em_iaddc(Emit *E, LLVMValueRef a, int64_t c);
LLVMValueRef em_udivc(Emit *E, LLVMValueRef a, int64_t c);
LLVMValueRef em_uremc(Emit *E, LLVMValueRef a, int64_t c);
/* Opens `for (iv = lo; iv < hi; iv++)` carrying nacc values (initial
 * values init[]); the builder is left in the body, with l->iv and
 * l->acc[] usable. */
void em_loop_open(Emit *E, Loop *l, LLVMValueRef lo, LLVMValueRef hi, int nacc, const LLVMValueRef *init);
/* Closes the loop with the carried values' next values; out[] (may be
 * NULL) gets their values after the loop. vectorize: attach
 * llvm.loop.vectorize.enable (needed for float reductions, which the
 * vectoriser otherwise refuses to reassociate). */
void em_loop_close(Emit *E, Loop *l, const LLVMValueRef *next, LLVMValueRef *out, bool vectorize);
/* Calls an overloaded intrinsic on type ty. */
LLVMValueRef em_intrinsic(Emit *E, const char *name, LLVMTypeRef ty, LLVMValueRef *args, int n);
LLVMValueRef em_min_i64(Emit *E, LLVMValueRef a, LLVMValueRef b);
LLVMValueRef em_max_i64(Emit *E, LLVMValueRef a, LLVMValueRef b);
/* Typed element pointer into argument 'arg' at flat index i. */
LLVMValueRef em_elem_ptr(Emit *E, int arg, LLVMTypeRef ty, LLVMValueRef i);
LLVMValueRef em_load(Emit *E, int arg, LLVMTypeRef ty, LLVMValueRef i);
void em_store(Emit *E, int arg, LLVMValueRef v, LLVMValueRef i);

/* ---- emit_math.c: float32 in, float32 out ---- */
LLVMValueRef em_exp(Emit *E, LLVMValueRef x);
LLVMValueRef em_log(Emit *E, LLVMValueRef x);
LLVMValueRef em_tanh(Emit *E, LLVMValueRef x);
LLVMValueRef em_sigmoid(Emit *E, LLVMValueRef x);
LLVMValueRef em_gelu(Emit *E, LLVMValueRef x);
LLVMValueRef em_fma(Emit *E, LLVMValueRef a, LLVMValueRef b, LLVMValueRef c);
/* Float max as an order-preserving i32 key (NaN above everything), so a
 * max reduction is an integer max, which vectorises without fast-math. */
LLVMValueRef em_max_key(Emit *E, LLVMValueRef x);
LLVMValueRef em_key_value(Emit *E, LLVMValueRef key);
LLVMValueRef em_key_of_neg_inf(Emit *E);

/* ---- emit_elem.c ---- */
/* Records that v lies in [lo, hi) (ignored when the table is full). */
void em_range_put(Emit *E, LLVMValueRef v, int64_t lo, int64_t hi);
/* The value of node v at index I (f32 or i32). */
LLVMValueRef em_eval(Emit *E, int v, const Idx *I);
void em_cache_put(Emit *E, int v, const Idx *I, LLVMValueRef val);
LLVMTypeRef em_type_of(Emit *E, int v);
/* Stores node v's value at I into its argument (looked up in k->store). */
void em_store_node(Emit *E, int v, const Idx *I);
void em_fail(Emit *E, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* ---- emit_rows.c ---- */
void em_kernel_reduce(Emit *E, LLVMValueRef begin, LLVMValueRef end);
void em_kernel_softmax(Emit *E, LLVMValueRef begin, LLVMValueRef end);
void em_kernel_layer_norm(Emit *E, LLVMValueRef begin, LLVMValueRef end);
void em_kernel_group_norm(Emit *E, LLVMValueRef begin, LLVMValueRef end);
void em_kernel_cross_entropy(Emit *E, LLVMValueRef begin, LLVMValueRef end);

/* ---- emit_conv.c ---- */
void em_kernel_im2col(Emit *E, LLVMValueRef begin, LLVMValueRef end);
void em_kernel_pack(Emit *E, LLVMValueRef begin, LLVMValueRef end);
void em_kernel_col2im(Emit *E, LLVMValueRef begin, LLVMValueRef end);
void em_kernel_scatter_add(Emit *E, LLVMValueRef begin, LLVMValueRef end);
void em_kernel_gumbel(Emit *E, LLVMValueRef begin, LLVMValueRef end);

/* ---- emit_attention.c ---- */
void em_kernel_attention(Emit *E, LLVMValueRef begin, LLVMValueRef end);

/* ---- emit_winograd.c ---- */
void em_kernel_wino_weight(Emit *E, LLVMValueRef begin, LLVMValueRef end);
void em_kernel_wino_input(Emit *E, LLVMValueRef begin, LLVMValueRef end);
void em_kernel_wino_output(Emit *E, LLVMValueRef begin, LLVMValueRef end);
void em_kernel_wino_dy(Emit *E, LLVMValueRef begin, LLVMValueRef end);
void em_kernel_wino_wgrad(Emit *E, LLVMValueRef begin, LLVMValueRef end);

/* ---- emit_direct.c ---- */
void em_kernel_phase_weight(Emit *E, LLVMValueRef begin, LLVMValueRef end);
void em_kernel_phase_in(Emit *E, LLVMValueRef begin, LLVMValueRef end);
void em_kernel_phase_out(Emit *E, LLVMValueRef begin, LLVMValueRef end);

/* ---- emit_kernel.c ---- */
/* Adds kernel k (an RtKernelFn named k->name) to E->mod. Returns 0, or -1
 * with E->err set. */
int em_kernel(Emit *E, const CgKernel *k);

#endif
