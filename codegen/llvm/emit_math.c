/* emit_math.c — transcendental functions as straight-line float code
 * (selects, no branches, no calls), so loops that use them vectorise.
 * Polynomials and reductions follow the classic cephes single-precision
 * routines (expf, logf, tanhf): within OP_EVAL_ULP_BOUND ulp of ir/op_eval's
 * values (tests/test_op_eval.c measures it). */
#include "codegen/llvm/emit.h"
#include "ir/op_eval.h"

#define B (E->b)

static LLVMValueRef mul_f(Emit *E, LLVMValueRef a, LLVMValueRef b) { return LLVMBuildFMul(B, a, b, ""); }
static LLVMValueRef add_f(Emit *E, LLVMValueRef a, LLVMValueRef b) { return LLVMBuildFAdd(B, a, b, ""); }
static LLVMValueRef sub_f(Emit *E, LLVMValueRef a, LLVMValueRef b) { return LLVMBuildFSub(B, a, b, ""); }
static LLVMValueRef fcmp(Emit *E, LLVMRealPredicate p, LLVMValueRef a, LLVMValueRef b) {
  return LLVMBuildFCmp(B, p, a, b, "");
}
static LLVMValueRef sel(Emit *E, LLVMValueRef c, LLVMValueRef a, LLVMValueRef b) { return LLVMBuildSelect(B, c, a, b, ""); }

LLVMValueRef em_fma(Emit *E, LLVMValueRef a, LLVMValueRef b, LLVMValueRef c) {
  LLVMValueRef args[3] = {a, b, c};
  return em_intrinsic(E, "llvm.fmuladd", E->f32, args, 3);
}

/* c[0] x^(n-1) + ... + c[n-1] by Horner's rule with fused multiply-adds. */
static LLVMValueRef poly(Emit *E, LLVMValueRef x, const double *c, int n) {
  LLVMValueRef acc = em_f32(E, c[0]);
  for (int i = 1; i < n; i++) acc = em_fma(E, acc, x, em_f32(E, c[i]));
  return acc;
}

/* 2^n for an i32 n in [-126, 127]: the exponent field built directly. */
static LLVMValueRef pow2i(Emit *E, LLVMValueRef n) {
  LLVMValueRef bits = LLVMBuildShl(B, LLVMBuildAdd(B, n, em_i32(E, 127), ""), em_i32(E, 23), "");
  return LLVMBuildBitCast(B, bits, E->f32, "");
}

/* exp(x) = 2^n * exp(r), n = round(x / ln 2), r = x - n ln 2 (ln 2 split in
 * two parts so r is exact), exp(r) by a degree-7 polynomial. The scale is
 * applied in two halves so that results near the float limits (n = 128,
 * or subnormal results down to n = -150) are still right. */
LLVMValueRef em_exp(Emit *E, LLVMValueRef x) {
  static const double c[] = {1.9875691500E-4, 1.3981999507E-3, 8.3334519073E-3,
                             4.1665795894E-2, 1.6666665459E-1, 5.0000001201E-1};
  const double hi = 88.72283935546875, lo = -103.97208404541015625;
  LLVMValueRef isnan = fcmp(E, LLVMRealUNO, x, x);
  LLVMValueRef xc = sel(E, fcmp(E, LLVMRealOGT, x, em_f32(E, hi)), em_f32(E, hi), x);
  xc = sel(E, fcmp(E, LLVMRealOLT, xc, em_f32(E, lo)), em_f32(E, lo), xc);
  xc = sel(E, isnan, em_f32(E, 0), xc);
  LLVMValueRef t = mul_f(E, xc, em_f32(E, 1.44269504088896341));
  LLVMValueRef nf = em_intrinsic(E, "llvm.rint", E->f32, &t, 1);
  LLVMValueRef r = em_fma(E, nf, em_f32(E, -0.693359375), xc);
  r = em_fma(E, nf, em_f32(E, 2.12194440e-4), r);
  LLVMValueRef r2 = mul_f(E, r, r);
  LLVMValueRef p = poly(E, r, c, 6);
  p = em_fma(E, p, r2, add_f(E, r, em_f32(E, 1.0)));
  LLVMValueRef n = LLVMBuildFPToSI(B, nf, E->i32, ""); /* nf is finite and small here */
  LLVMValueRef n1 = LLVMBuildAShr(B, n, em_i32(E, 1), "");
  LLVMValueRef n2 = LLVMBuildSub(B, n, n1, "");
  LLVMValueRef y = mul_f(E, mul_f(E, p, pow2i(E, n1)), pow2i(E, n2));
  y = sel(E, fcmp(E, LLVMRealOGT, x, em_f32(E, hi)), em_f32(E, __builtin_inf()), y);
  y = sel(E, fcmp(E, LLVMRealOLT, x, em_f32(E, lo)), em_f32(E, 0), y);
  return sel(E, isnan, x, y);
}

/* log(x) = e ln 2 + log(m), x = m 2^e with m in [sqrt(1/2), sqrt(2)), log(m)
 * by a degree-9 polynomial in m - 1. Subnormal x is scaled by 2^23 first;
 * x < 0 gives NaN, 0 gives -inf, inf and NaN pass through. */
LLVMValueRef em_log(Emit *E, LLVMValueRef x) {
  static const double c[] = {7.0376836292E-2, -1.1514610310E-1, 1.1676998740E-1,
                             -1.2420140846E-1, 1.4249322787E-1, -1.6668057665E-1,
                             2.0000714765E-1, -2.4999993993E-1, 3.3333331174E-1};
  LLVMValueRef tiny = fcmp(E, LLVMRealOLT, x, em_f32(E, 1.17549435e-38));
  LLVMValueRef xs = sel(E, tiny, mul_f(E, x, em_f32(E, 8388608.0)), x);
  LLVMValueRef bits = LLVMBuildBitCast(B, xs, E->i32, "");
  LLVMValueRef ebits = LLVMBuildAnd(B, LLVMBuildLShr(B, bits, em_i32(E, 23), ""), em_i32(E, 0xff), "");
  LLVMValueRef e = LLVMBuildSub(B, ebits, sel(E, tiny, em_i32(E, 126 + 23), em_i32(E, 126)), "");
  LLVMValueRef mbits = LLVMBuildOr(B, LLVMBuildAnd(B, bits, em_i32(E, 0x007fffff), ""), em_i32(E, 0x3f000000), "");
  LLVMValueRef m = LLVMBuildBitCast(B, mbits, E->f32, ""); /* [0.5, 1) */
  LLVMValueRef small = fcmp(E, LLVMRealOLT, m, em_f32(E, 0.707106781186547524));
  e = LLVMBuildSub(B, e, LLVMBuildZExt(B, small, E->i32, ""), "");
  m = sub_f(E, sel(E, small, add_f(E, m, m), m), em_f32(E, 1.0));
  LLVMValueRef z = mul_f(E, m, m);
  LLVMValueRef y = mul_f(E, mul_f(E, poly(E, m, c, 9), m), z);
  LLVMValueRef ef = LLVMBuildSIToFP(B, e, E->f32, "");
  y = em_fma(E, ef, em_f32(E, -2.12194440e-4), y);
  y = em_fma(E, z, em_f32(E, -0.5), y);
  LLVMValueRef r = add_f(E, m, y);
  r = em_fma(E, ef, em_f32(E, 0.693359375), r);
  r = sel(E, fcmp(E, LLVMRealOEQ, x, em_f32(E, __builtin_inf())), x, r);
  r = sel(E, fcmp(E, LLVMRealOEQ, x, em_f32(E, 0)), em_f32(E, -__builtin_inf()), r);
  r = sel(E, fcmp(E, LLVMRealOLT, x, em_f32(E, 0)), em_f32(E, __builtin_nan("")), r);
  return sel(E, fcmp(E, LLVMRealUNO, x, x), x, r);
}

/* tanh: an odd polynomial for |x| < 0.625, else sign(x) (1 - 2 / (e^2|x| + 1)). */
LLVMValueRef em_tanh(Emit *E, LLVMValueRef x) {
  static const double c[] = {-5.70498872745E-3, 2.06390887954E-2, -5.37397155531E-2, 1.33314422036E-1,
                             -3.33332819422E-1};
  LLVMValueRef ax = em_intrinsic(E, "llvm.fabs", E->f32, &x, 1);
  LLVMValueRef s = mul_f(E, x, x);
  LLVMValueRef small = em_fma(E, mul_f(E, poly(E, s, c, 5), s), x, x);
  LLVMValueRef t = em_exp(E, add_f(E, ax, ax));
  LLVMValueRef big = sub_f(E, em_f32(E, 1.0), LLVMBuildFDiv(B, em_f32(E, 2.0), add_f(E, t, em_f32(E, 1.0)), ""));
  LLVMValueRef args[2] = {big, x};
  big = em_intrinsic(E, "llvm.copysign", E->f32, args, 2);
  return sel(E, fcmp(E, LLVMRealOGT, ax, em_f32(E, 0.625)), big, small);
}

/* sigmoid(hi + lo), lo a small correction to hi (NULL: none):
 * 1 / (1 + e) for hi >= 0, e / (1 + e) below, from one e = exp(-|hi + lo|)
 * = exp(-|hi|) (1 -+ lo). Never an overflowing exp, so sigmoid of a very
 * negative argument keeps its (tiny, possibly subnormal) value. */
static LLVMValueRef sigmoid_hilo(Emit *E, LLVMValueRef hi, LLVMValueRef lo) {
  LLVMValueRef ax = em_intrinsic(E, "llvm.fabs", E->f32, &hi, 1);
  LLVMValueRef e = em_exp(E, LLVMBuildFNeg(B, ax, ""));
  LLVMValueRef neg = fcmp(E, LLVMRealOLT, hi, em_f32(E, 0));
  if (lo) e = em_fma(E, e, sel(E, neg, lo, LLVMBuildFNeg(B, lo, "")), e);
  LLVMValueRef num = sel(E, neg, e, em_f32(E, 1.0));
  return LLVMBuildFDiv(B, num, add_f(E, em_f32(E, 1.0), e), "");
}

LLVMValueRef em_sigmoid(Emit *E, LLVMValueRef x) { return sigmoid_hilo(E, x, NULL); }

/* gelu(x) = x sigmoid(u), u = 2 K (x + C x^3): op_eval.h's form of
 * PyTorch's approximate="tanh" (no cancellation in 1 + tanh for negative
 * x). u is computed in double and split into f32 hi + lo, because exp
 * turns an absolute error in u into a relative one in the result, and u
 * reaches about -100 before the result underflows. */
LLVMValueRef em_gelu(Emit *E, LLVMValueRef x) {
  LLVMValueRef xd = LLVMBuildFPExt(B, x, E->f64, "");
  LLVMValueRef x3 = LLVMBuildFMul(B, LLVMBuildFMul(B, xd, xd, ""), xd, "");
  LLVMValueRef ud = LLVMBuildFAdd(B, xd, LLVMBuildFMul(B, x3, LLVMConstReal(E->f64, OP_EVAL_GELU_C), ""), "");
  ud = LLVMBuildFMul(B, ud, LLVMConstReal(E->f64, 2.0 * OP_EVAL_GELU_K), "");
  LLVMValueRef hi = LLVMBuildFPTrunc(B, ud, E->f32, "");
  LLVMValueRef lo = LLVMBuildFPTrunc(B, LLVMBuildFSub(B, ud, LLVMBuildFPExt(B, hi, E->f64, ""), ""), E->f32, "");
  LLVMValueRef ahi = em_intrinsic(E, "llvm.fabs", E->f32, &hi, 1);
  lo = sel(E, fcmp(E, LLVMRealOLT, ahi, em_f32(E, __builtin_inff())), lo, em_f32(E, 0)); /* inf, NaN: no correction */
  return mul_f(E, x, sigmoid_hilo(E, hi, lo));
}

/* key(x) = bits(x) for x >= +0, bits(x) ^ 0x7fffffff below: signed order of
 * keys is the order of the floats; NaN gets the largest key. The map is its
 * own inverse on non-NaN keys. */
LLVMValueRef em_max_key(Emit *E, LLVMValueRef x) {
  LLVMValueRef bits = LLVMBuildBitCast(B, x, E->i32, "");
  LLVMValueRef sign = LLVMBuildAShr(B, bits, em_i32(E, 31), "");
  LLVMValueRef key = LLVMBuildXor(B, bits, LLVMBuildAnd(B, sign, em_i32(E, 0x7fffffff), ""), "");
  return sel(E, fcmp(E, LLVMRealUNO, x, x), em_i32(E, 0x7fffffff), key);
}

LLVMValueRef em_key_value(Emit *E, LLVMValueRef key) {
  LLVMValueRef sign = LLVMBuildAShr(B, key, em_i32(E, 31), "");
  LLVMValueRef bits = LLVMBuildXor(B, key, LLVMBuildAnd(B, sign, em_i32(E, 0x7fffffff), ""), "");
  return LLVMBuildBitCast(B, bits, E->f32, "");
}

LLVMValueRef em_key_of_neg_inf(Emit *E) { return em_i32(E, (int32_t)(0xff800000u ^ 0x7fffffffu)); }
