/* op_eval.h — the scalar meaning of every elementwise op (ops.def rows
 * with PAT_ELEMWISE), defined once. The reference executor (ir/ref/),
 * constant folding (passes/fold.c) and the frontend's compile-time
 * arithmetic (frontend/eval_builtin.c) call these functions; the LLVM
 * emitter (codegen/llvm/emit_elem.c, emit_math.c) computes the same
 * values in f32 code and tests/test_op_eval.c checks it against them.
 *
 * Precision. An f32 op is computed in double on its f32 operands and
 * rounded once to f32 (op_eval_*_f32). For + - * / sqrt that is the
 * correctly rounded f32 result (double has more than 2*24+2 bits, so the
 * double rounding is harmless), and the JIT must match it bit for bit; so
 * must neg abs relu max min rsqrt pow cast, comparisons and where. The
 * transcendental ops exp log tanh sigmoid gelu silu are emitted as
 * straight-line f32 polynomials, which agree with op_eval to within
 * OP_EVAL_ULP_BOUND units in the last place, or to within
 * OP_EVAL_ABS_FLOOR absolutely (results that differ only below the
 * smallest normal float, where an ulp is meaningless).
 *
 * NaN semantics: NaN propagates, as in PyTorch. Every f32 op whose input
 * is NaN returns NaN (relu(NaN) = NaN, max(NaN, 1) = min(1, NaN) = NaN),
 * except where the op's value does not depend on that input
 * (where(c, a, NaN) with c true is a) and the conversions: a comparison
 * with NaN is false except NE (IEEE), and cast of NaN to i32 is 0.
 *
 * i32 semantics: + - * and neg/abs wrap (two's complement, as numpy's
 * int32); DIV is floor division, Python's //, with INT32_MIN // -1
 * wrapping to INT32_MIN and division by zero reported (never computed);
 * f32 -> i32 casts truncate toward zero and saturate.
 *
 * Module prefix: op_eval_.
 */
#ifndef DAL_OP_EVAL_H
#define DAL_OP_EVAL_H

#include <stdbool.h>
#include <stdint.h>

#include "ir/ir.h"

/* GELU, tanh approximation (PyTorch approximate="tanh"):
 *   gelu(x) = 0.5 x (1 + tanh(K (x + C x^3))) = x sigmoid(2 K (x + C x^3)).
 * The second form is what op_eval and the JIT compute: it is the same
 * function without the cancellation in 1 + tanh(u) for negative x. The
 * constants live here only; the gradient rule and the emitter use them. */
#define OP_EVAL_GELU_K 0.7978845608028654 /* sqrt(2/pi) */
#define OP_EVAL_GELU_C 0.044715

/* The JIT's transcendental ops vs op_eval (see above). tests/test_op_eval.c
 * prints the largest distance it measures on its special values (exp, log,
 * sigmoid, gelu, silu 1 ulp, tanh 0) and on a sweep of 4000 arguments
 * ±(1e-6 .. 100) (exp, log, tanh 1 ulp; sigmoid, gelu 2; silu 3: its
 * product with x rounds once more). */
#define OP_EVAL_ULP_BOUND 4
#define OP_EVAL_ABS_FLOOR 1.17549435e-38 /* FLT_MIN */

/* How far (in ulp, see above) the JIT's f32 code for 'op' may be from
 * op_eval: OP_EVAL_ULP_BOUND for the transcendental ops, 0 (bit for bit)
 * for every other op. */
int op_eval_ulp_bound(IrOp op);

/* How an elementwise op computes: its scalar function below. */
typedef enum {
  OP_EVAL_NONE,     /* not elementwise: no scalar meaning */
  OP_EVAL_UNARY,    /* op_eval_unary_*: f32, and i32 where OPF_I32 */
  OP_EVAL_BINARY,   /* op_eval_binary_*: f32, and i32 where OPF_I32 */
  OP_EVAL_COMPARE,  /* op_eval_compare: f32 or i32 operands, i32 0/1 out */
  OP_EVAL_WHERE,    /* op_eval_where */
  OP_EVAL_CAST,     /* op_eval_cast_* */
  OP_EVAL_IDENTITY  /* the first input (OPF_IDENTITY: stop_gradient, straight_through) */
} OpEvalKind;

/* The kind of 'op'; OP_EVAL_NONE exactly for the ops that are not
 * PAT_ELEMWISE (tests/test_op_eval.c checks this for every op). */
OpEvalKind op_eval_kind(IrOp op);

/* Unary f32 op of 'x' in double, not rounded: the frontend's numbers are
 * doubles. NAN for an op that is not OP_EVAL_UNARY. */
double op_eval_unary_f64(IrOp op, double x);
/* The f32 result: op_eval_unary_f64 on x, rounded once. */
float op_eval_unary_f32(IrOp op, float x);
/* Binary f32 op (ADD SUB MUL DIV MAX MIN POW) in double, not rounded. */
double op_eval_binary_f64(IrOp op, double a, double b);
float op_eval_binary_f32(IrOp op, float a, float b);

/* i32 NEG and ABS (wrapping: -INT32_MIN is INT32_MIN); 0 for other ops. */
int32_t op_eval_unary_i32(IrOp op, int32_t x);
/* i32 ADD SUB MUL DIV MAX MIN into *out; false (and *out untouched) for
 * DIV by zero or an op without an i32 meaning. */
bool op_eval_binary_i32(IrOp op, int32_t a, int32_t b, int32_t *out);

/* LT LE GT GE EQ NE -> 1 or 0; exact for f32 and i32 operands given as
 * doubles. 0 for an op that is not a comparison. */
int32_t op_eval_compare(IrOp op, double a, double b);

/* where(cond, a, b) for one element, any dtype given as double. */
double op_eval_where(int32_t cond, double a, double b);

/* f32 -> i32: toward zero, saturating, NaN -> 0. i32 -> f32: nearest. */
int32_t op_eval_cast_f32_i32(float x);
float op_eval_cast_i32_f32(int32_t x);

#endif
