/* test_shape.c — op tables, shape helpers and every shape rule of ops.def.
 *
 * The rules are tested through ir_infer with a table of cases: each gives an
 * op, its input dtypes and shapes and its attributes, and either the exact
 * result dtype and shape or a fragment of the expected message. A coverage
 * test makes sure every op has at least one accepted and one refused case. */
#include <string.h>

#include "ir/ir.h"
#include "tests/util.h"

/* ---- case table ---- */

typedef struct {
  int line;         /* where the case is written, for failure messages */
  IrOp op;
  int nin;
  IrDType dt[IR_MAX_IN];
  IrShape sh[IR_MAX_IN];
  IrAttr attr;
  const char *err;  /* NULL: must succeed with want_dt/want; else a message fragment */
  IrDType want_dt;
  IrShape want;
} Case;

#define SH(...) {.rank = (int)(sizeof((int64_t[]){__VA_ARGS__}) / sizeof(int64_t)), .d = {__VA_ARGS__}}
#define SCALAR {.rank = 0}
#define F IR_F32
#define I IR_I32
#define IN1(t0, s0) .nin = 1, .dt = {t0}, .sh = {s0}
#define IN2(t0, s0, t1, s1) .nin = 2, .dt = {t0, t1}, .sh = {s0, s1}
#define IN3(t0, s0, t1, s1, t2, s2) .nin = 3, .dt = {t0, t1, t2}, .sh = {s0, s1, s2}
#define IN4(t0, s0, t1, s1, t2, s2, t3, s3) .nin = 4, .dt = {t0, t1, t2, t3}, .sh = {s0, s1, s2, s3}
#define IN6(s0, s1, s3, s4) .nin = 6, .dt = {F, F, F, I, F, F}, .sh = {s0, s1, s1, s3, s4, s4}
#define A(...) .attr = {__VA_ARGS__}
#define OK(OPX, WDT, WSH, ...) {.line = __LINE__, .op = OPX, .want_dt = WDT, .want = WSH, __VA_ARGS__}
#define BAD(OPX, MSG, ...) {.line = __LINE__, .op = OPX, .err = MSG, __VA_ARGS__}
/* An f32-only unary op: accepted on f32, refused on i32. */
#define UNARY_F32(OPX, NAME)                                     \
  OK(OPX, F, SH(2, 3), IN1(F, SH(2, 3))),                        \
  BAD(OPX, NAME ": the input must be f32, got i32", IN1(I, SH(2, 3)))
/* A same-shape binary op on f32 and i32 with result dtype RES (0: the inputs'). */
#define BINARY(OPX, NAME, RES)                                                         \
  OK(OPX, RES ? I : F, SH(2, 3), IN2(F, SH(2, 3), F, SH(2, 3))),                       \
  OK(OPX, I, SH(4), IN2(I, SH(4), I, SH(4))),                                          \
  BAD(OPX, NAME ": shapes differ: [2, 3] and [3]", IN2(F, SH(2, 3), F, SH(3))),        \
  BAD(OPX, NAME ": dtypes differ: f32 and i32", IN2(F, SH(3), I, SH(3)))

static const Case cases[] = {
    /* leaves */
    OK(OP_INPUT, F, SH(2, 3), A(.dtype = F, .shape = SH(2, 3))),
    OK(OP_INPUT, I, SCALAR, A(.dtype = I, .shape = SCALAR)),
    BAD(OP_INPUT, "input: shape has rank 7; ranks go from 0 to 6", A(.shape = {.rank = 7})),
    BAD(OP_INPUT, "input: shape [2, 0] has dimension 1 < 1", A(.shape = SH(2, 0))),
    BAD(OP_INPUT, "input: unknown dtype 5", A(.dtype = (IrDType)5, .shape = SH(2))),
    BAD(OP_INPUT, "input: expects 0 inputs, got 1", IN1(F, SH(2)), A(.shape = SH(2))),
    OK(OP_PARAM, F, SH(16, 3, 3, 3),
        A(.shape = SH(16, 3, 3, 3), .init = IR_INIT_UNIFORM, .init_a = -0.19, .init_b = 0.19)),
    OK(OP_PARAM, F, SH(8), A(.shape = SH(8), .init = IR_INIT_NORMAL, .init_a = 0, .init_b = 0.02)),
    BAD(OP_PARAM, "param: parameters are f32, got i32", A(.dtype = I, .shape = SH(2))),
    OK(OP_STATE, F, SH(3, 4), A(.shape = SH(3, 4))),
    OK(OP_STATE, F, SH(), A(.shape = SH())),
    BAD(OP_STATE, "state: state is f32, got i32", A(.dtype = I, .shape = SH(2))),
    BAD(OP_PARAM, "low <= high, got uniform(1, -1)",
        A(.shape = SH(2), .init = IR_INIT_UNIFORM, .init_a = 1, .init_b = -1)),
    BAD(OP_PARAM, "std >= 0, got normal(0, -1)", A(.shape = SH(2), .init = IR_INIT_NORMAL, .init_b = -1)),
    BAD(OP_PARAM, "param: unknown init kind 9", A(.shape = SH(2), .init = (IrInitKind)9)),
    OK(OP_CONST, I, SH(4), A(.dtype = I, .shape = SH(4), .value = 3)),
    OK(OP_CONST, F, SCALAR, A(.dtype = F, .value = -1e30)),
    BAD(OP_CONST, "const: i32 value 2.5 is not a 32-bit integer", A(.dtype = I, .shape = SH(4), .value = 2.5)),
    BAD(OP_CONST, "const: i32 value 3e+09 is not a 32-bit integer", A(.dtype = I, .value = 3e9)),
    OK(OP_IOTA, I, SH(3, 4), A(.shape = SH(3, 4), .axis = 1)),
    BAD(OP_IOTA, "iota: axis 2 is out of range for rank 2 (expected 0..1)", A(.shape = SH(3, 4), .axis = 2)),
    BAD(OP_IOTA, "iota: axis 0 is out of range: a scalar has no axes", A(.shape = SCALAR)),
    OK(OP_GUMBEL, F, SH(2, 64, 4, 4), A(.shape = SH(2, 64, 4, 4), .salt = 7)),
    BAD(OP_GUMBEL, "gumbel: shape [2, -1] has dimension 1 < 1", A(.shape = SH(2, -1))),
    BAD(OP_GUMBEL, "gumbel: shape [1048576, 1048576, 1024] has more than 2^48 elements",
        A(.shape = SH(1 << 20, 1 << 20, 1 << 10))),

    /* elementwise unary */
    OK(OP_NEG, I, SH(3), IN1(I, SH(3))),
    OK(OP_NEG, F, SCALAR, IN1(F, SCALAR)),
    BAD(OP_NEG, "neg: expects 1 input, got 2", IN2(F, SH(3), F, SH(3))),
    OK(OP_ABS, F, SH(2, 2), IN1(F, SH(2, 2))),
    BAD(OP_ABS, "abs: input 0 has unknown dtype 3", IN1((IrDType)3, SH(2))),
    UNARY_F32(OP_EXP, "exp"),
    UNARY_F32(OP_LOG, "log"),
    UNARY_F32(OP_SQRT, "sqrt"),
    UNARY_F32(OP_RSQRT, "rsqrt"),
    UNARY_F32(OP_TANH, "tanh"),
    UNARY_F32(OP_SIGMOID, "sigmoid"),
    UNARY_F32(OP_RELU, "relu"),
    UNARY_F32(OP_GELU, "gelu"),
    UNARY_F32(OP_SILU, "silu"),
    OK(OP_CAST, I, SH(2, 3), IN1(F, SH(2, 3)), A(.dtype = I)),
    OK(OP_CAST, F, SH(5), IN1(I, SH(5)), A(.dtype = F)),
    BAD(OP_CAST, "cast: unknown target dtype 7", IN1(F, SH(2)), A(.dtype = (IrDType)7)),
    OK(OP_STOP_GRADIENT, I, SH(7), IN1(I, SH(7))),
    BAD(OP_STOP_GRADIENT, "stop_gradient: input 0 has rank -1; ranks go from 0 to 6", IN1(F, {.rank = -1})),

    /* elementwise binary */
    BINARY(OP_ADD, "add", 0),
    BINARY(OP_SUB, "sub", 0),
    BINARY(OP_MUL, "mul", 0),
    BINARY(OP_DIV, "div", 0),
    BINARY(OP_MAX, "max", 0),
    BINARY(OP_MIN, "min", 0),
    BINARY(OP_LT, "lt", 1),
    BINARY(OP_LE, "le", 1),
    BINARY(OP_GT, "gt", 1),
    BINARY(OP_GE, "ge", 1),
    BINARY(OP_EQ, "eq", 1),
    BINARY(OP_NE, "ne", 1),
    OK(OP_POW, F, SH(2, 3), IN2(F, SH(2, 3), F, SH(2, 3))),
    BAD(OP_POW, "pow: expects f32 operands, got i32", IN2(I, SH(3), I, SH(3))),
    BAD(OP_POW, "pow: shapes differ: [3] and [1]", IN2(F, SH(3), F, SH(1))),
    OK(OP_WHERE, F, SH(2, 3), IN3(I, SH(2, 3), F, SH(2, 3), F, SH(2, 3))),
    OK(OP_WHERE, I, SH(4), IN3(I, SH(4), I, SH(4), I, SH(4))),
    BAD(OP_WHERE, "where: the condition must be i32, got f32", IN3(F, SH(4), F, SH(4), F, SH(4))),
    BAD(OP_WHERE, "where: branches have different dtypes: f32 and i32", IN3(I, SH(4), F, SH(4), I, SH(4))),
    BAD(OP_WHERE, "where: shapes differ: condition [4], a [4], b [1]", IN3(I, SH(4), F, SH(4), F, SH(1))),
    OK(OP_STRAIGHT_THROUGH, F, SH(4, 64, 4, 4), IN2(F, SH(4, 64, 4, 4), F, SH(4, 64, 4, 4))),
    BAD(OP_STRAIGHT_THROUGH, "straight_through: expects f32 operands, got i32", IN2(I, SH(4), I, SH(4))),
    BAD(OP_STRAIGHT_THROUGH, "straight_through: shapes differ: [4, 2] and [2, 4]", IN2(F, SH(4, 2), F, SH(2, 4))),

    /* reductions */
    OK(OP_SUM, F, SH(3), IN1(F, SH(2, 3, 4)), A(.axes = 0x5)),
    OK(OP_SUM, F, SH(1, 3, 1), IN1(F, SH(2, 3, 4)), A(.axes = 0x5, .keepdim = 1)),
    OK(OP_SUM, I, SCALAR, IN1(I, SH(2, 3)), A(.axes = 0x3)),
    OK(OP_SUM, F, SH(2, 3), IN1(F, SH(2, 3)), A(.axes = 0)),
    BAD(OP_SUM, "sum: axes mask 0x8 names axis 3 but the input [2, 3, 4] has rank 3",
        IN1(F, SH(2, 3, 4)), A(.axes = 0x8)),
    BAD(OP_SUM, "sum: keepdim must be 0 or 1, got 2", IN1(F, SH(2)), A(.axes = 1, .keepdim = 2)),
    OK(OP_REDUCE_MAX, I, SH(2, 1), IN1(I, SH(2, 5)), A(.axes = 0x2, .keepdim = 1)),
    BAD(OP_REDUCE_MAX, "reduce_max: axes mask 0x80000000 names axis 31", IN1(F, SH(2)), A(.axes = 0x80000000u)),
    OK(OP_ARGMAX, I, SH(4, 4, 4), IN1(F, SH(4, 64, 4, 4)), A(.axis = 1)),
    OK(OP_ARGMAX, I, SH(2, 1), IN1(I, SH(2, 5)), A(.axis = 1, .keepdim = 1)),
    BAD(OP_ARGMAX, "argmax: axis 2 is out of range for rank 2 (expected 0..1)", IN1(F, SH(2, 5)), A(.axis = 2)),
    BAD(OP_ARGMAX, "argmax: axis 0 is out of range: a scalar has no axes", IN1(F, SCALAR)),
    OK(OP_SOFTMAX, F, SH(2, 5), IN1(F, SH(2, 5)), A(.axis = 1)),
    BAD(OP_SOFTMAX, "softmax: the input must be f32, got i32", IN1(I, SH(2, 5)), A(.axis = 1)),
    OK(OP_LOG_SOFTMAX, F, SH(3, 7), IN1(F, SH(3, 7)), A(.axis = 0)),
    BAD(OP_LOG_SOFTMAX, "log_softmax: axis -1 is out of range for rank 2", IN1(F, SH(3, 7)), A(.axis = -1)),

    /* data movement */
    OK(OP_RESHAPE, F, SH(3, 2), IN1(F, SH(2, 3)), A(.shape = SH(3, 2))),
    OK(OP_RESHAPE, I, SCALAR, IN1(I, SH(1, 1)), A(.shape = SCALAR)),
    BAD(OP_RESHAPE, "reshape: cannot reshape [2, 3] (6 elements) to [4, 2] (8 elements)", IN1(F, SH(2, 3)),
        A(.shape = SH(4, 2))),
    BAD(OP_RESHAPE, "reshape: target shape [6, 0] has dimension 1 < 1", IN1(F, SH(2, 3)), A(.shape = SH(6, 0))),
    OK(OP_PERMUTE, F, SH(4, 2, 3), IN1(F, SH(2, 3, 4)), A(.perm = {2, 0, 1})),
    OK(OP_PERMUTE, I, SCALAR, IN1(I, SCALAR)),
    BAD(OP_PERMUTE, "permute: perm [0, 0, 1] is not a permutation of 0..2 for input [2, 3, 4]", IN1(F, SH(2, 3, 4)),
        A(.perm = {0, 0, 1})),
    BAD(OP_PERMUTE, "permute: perm [0, 3] is not a permutation of 0..1", IN1(F, SH(2, 3)), A(.perm = {0, 3})),
    OK(OP_BROADCAST, F, SH(4, 3), IN1(F, SH(1, 3)), A(.shape = SH(4, 3))),
    BAD(OP_BROADCAST, "broadcast: cannot broadcast [2, 3] to [4, 3]: dimension 0 is 2, not 1 or 4", IN1(F, SH(2, 3)),
        A(.shape = SH(4, 3))),
    BAD(OP_BROADCAST, "broadcast: target [4, 3] has rank 2 but the input [3] has rank 1", IN1(F, SH(3)),
        A(.shape = SH(4, 3))),
    OK(OP_SLICE, F, SH(2, 6), IN1(F, SH(5, 6)), A(.start = {1, 0}, .stop = {3, 6})),
    OK(OP_SLICE, I, SH(1), IN1(I, SH(9)), A(.start = {8}, .stop = {9})),
    BAD(OP_SLICE, "slice: axis 1: [2:2] of [5, 6] is empty or out of range (need 0 <= start < stop <= 6)",
        IN1(F, SH(5, 6)), A(.start = {0, 2}, .stop = {5, 2})),
    BAD(OP_SLICE, "slice: axis 0: [0:6] of [5, 6]", IN1(F, SH(5, 6)), A(.start = {0, 0}, .stop = {6, 6})),
    BAD(OP_SLICE, "slice: axis 0: [-1:2]", IN1(F, SH(5)), A(.start = {-1}, .stop = {2})),
    OK(OP_CONCAT, F, SH(2, 7), IN2(F, SH(2, 3), F, SH(2, 4)), A(.axis = 1)),
    OK(OP_CONCAT, I, SH(5, 3), IN2(I, SH(2, 3), I, SH(3, 3)), A(.axis = 0)),
    BAD(OP_CONCAT, "concat: dimension 0 differs: [2, 3] and [3, 4] (concatenating along axis 1)",
        IN2(F, SH(2, 3), F, SH(3, 4)), A(.axis = 1)),
    BAD(OP_CONCAT, "concat: dtypes differ: f32 and i32", IN2(F, SH(2), I, SH(2))),
    BAD(OP_CONCAT, "concat: ranks differ: [2] and [2, 1]", IN2(F, SH(2), F, SH(2, 1))),
    BAD(OP_CONCAT, "concat: axis 1 is out of range for rank 1", IN2(F, SH(2), F, SH(2)), A(.axis = 1)),
    OK(OP_GATHER, F, SH(2, 3, 4), IN2(F, SH(10, 4), I, SH(2, 3))),
    OK(OP_GATHER, F, SH(5), IN2(F, SH(10), I, SH(5))),
    BAD(OP_GATHER, "gather: the indices must be i32, got f32", IN2(F, SH(10, 4), F, SH(2))),
    BAD(OP_GATHER, "gather: the table must be f32, got i32", IN2(I, SH(10, 4), I, SH(2))),
    BAD(OP_GATHER, "gather: the table must have rank >= 1, got []", IN2(F, SCALAR, I, SH(2))),
    BAD(OP_GATHER, "gather: the result [1048576, 1099511627776] has more than 2^48 elements",
        IN2(F, SH(2, INT64_C(1) << 40), I, SH(1 << 20))),
    BAD(OP_GATHER, "gather: result rank 7", IN2(F, SH(2, 2, 2, 2), I, SH(2, 2, 2, 2))),
    OK(OP_GATHER_BACKWARD, F, SH(10, 4), IN2(I, SH(2, 3), F, SH(2, 3, 4)), A(.shape = SH(10, 4))),
    OK(OP_GATHER_BACKWARD, F, SH(7), IN2(I, SH(5), F, SH(5)), A(.shape = SH(7))),
    BAD(OP_GATHER_BACKWARD, "gather_backward: gradient [2, 3, 5] does not match indices [2, 3] and table [10, 4]"
        " (expected [2, 3, 4])", IN2(I, SH(2, 3), F, SH(2, 3, 5)), A(.shape = SH(10, 4))),
    BAD(OP_GATHER_BACKWARD, "gather_backward: the indices must be i32, got f32", IN2(F, SH(2), F, SH(2, 4)),
        A(.shape = SH(10, 4))),
    BAD(OP_GATHER_BACKWARD, "gather_backward: the gradient must be f32, got i32", IN2(I, SH(2), I, SH(2, 4)),
        A(.shape = SH(10, 4))),
    BAD(OP_GATHER_BACKWARD, "gather_backward: table shape must have rank >= 1, got a scalar",
        IN2(I, SH(2), F, SH(2)), A(.shape = SCALAR)),
    BAD(OP_GATHER_BACKWARD, "gather_backward: table shape [0, 4] has dimension 0 < 1", IN2(I, SH(2), F, SH(2, 4)),
        A(.shape = SH(0, 4))),
    BAD(OP_GATHER_BACKWARD, "gather_backward: gradient rank 7", IN2(I, SH(2, 2, 2, 2), F, SH(2, 2, 2, 2)),
        A(.shape = SH(9, 2, 2, 2))),
    OK(OP_ONEHOT, F, SH(2, 3, 5), IN1(I, SH(2, 3)), A(.depth = 5, .axis = 2)),
    OK(OP_ONEHOT, F, SH(5, 2, 3), IN1(I, SH(2, 3)), A(.depth = 5, .axis = 0)),
    OK(OP_ONEHOT, F, SH(4), IN1(I, SCALAR), A(.depth = 4)),
    BAD(OP_ONEHOT, "onehot: depth must be >= 1, got 0", IN1(I, SH(2))),
    BAD(OP_ONEHOT, "onehot: the indices must be i32, got f32", IN1(F, SH(2)), A(.depth = 3)),
    BAD(OP_ONEHOT, "onehot: axis 3 is out of range for rank 3", IN1(I, SH(2, 3)), A(.depth = 3, .axis = 3)),
    BAD(OP_ONEHOT, "onehot: result rank 7 exceeds the maximum 6", IN1(I, SH(1, 1, 1, 1, 1, 1)), A(.depth = 3)),

    /* compute-heavy */
    OK(OP_MATMUL, F, SH(4, 23, 64), IN2(F, SH(4, 23, 32), F, SH(32, 64))),
    OK(OP_MATMUL, F, SH(4, 23, 64), IN2(F, SH(4, 23, 32), F, SH(64, 32)), A(.trans_b = 1)),
    OK(OP_MATMUL, F, SH(4, 23, 64), IN2(F, SH(4, 32, 23), F, SH(4, 32, 64)), A(.trans_a = 1)),
    OK(OP_MATMUL, F, SH(2, 3, 5, 5), IN2(F, SH(2, 3, 5, 8), F, SH(2, 3, 5, 8)), A(.trans_b = 1)),
    OK(OP_MATMUL, F, SH(7, 9), IN2(F, SH(3, 7), F, SH(9, 3)), A(.trans_a = 1, .trans_b = 1)),
    BAD(OP_MATMUL, "matmul: inner dimensions differ: [4, 23, 32] @ [64, 32]", IN2(F, SH(4, 23, 32), F, SH(64, 32))),
    BAD(OP_MATMUL, "matmul: inner dimensions differ: [4, 23, 32] @ [32, 64] (tb=1)",
        IN2(F, SH(4, 23, 32), F, SH(32, 64)), A(.trans_b = 1)),
    BAD(OP_MATMUL, "matmul: inner dimensions differ: [3, 4] @ [3, 4] (ta=1, tb=1)", IN2(F, SH(3, 4), F, SH(3, 4)),
        A(.trans_a = 1, .trans_b = 1)),
    BAD(OP_MATMUL, "matmul: batch dimensions differ: [4, 23, 32] @ [5, 32, 8]", IN2(F, SH(4, 23, 32), F, SH(5, 32, 8))),
    BAD(OP_MATMUL, "matmul: b [2, 4, 32, 8] must be rank 2 or have a's rank 3",
        IN2(F, SH(4, 23, 32), F, SH(2, 4, 32, 8))),
    BAD(OP_MATMUL, "matmul: a must have rank >= 2, got [32]", IN2(F, SH(32), F, SH(32, 8))),
    BAD(OP_MATMUL, "matmul: expects f32 operands, got i32 @ f32", IN2(I, SH(2, 2), F, SH(2, 2))),
    BAD(OP_MATMUL, "matmul: trans_a must be 0 or 1, got 3", IN2(F, SH(2, 2), F, SH(2, 2)), A(.trans_a = 3)),
    OK(OP_CONV2D, F, SH(4, 32, 8, 8), IN2(F, SH(4, 16, 16, 16), F, SH(32, 16, 4, 4)), A(.stride = 2, .pad = 1)),
    OK(OP_CONV2D, F, SH(1, 8, 5, 5), IN2(F, SH(1, 3, 7, 7), F, SH(8, 3, 3, 3)), A(.stride = 1)),
    OK(OP_CONV2D, F, SH(2, 4, 3, 2), IN2(F, SH(2, 1, 5, 3), F, SH(4, 1, 1, 1)), A(.stride = 2)),
    BAD(OP_CONV2D, "conv2d: input has 3 channels but weight expects 4", IN2(F, SH(1, 3, 8, 8), F, SH(16, 4, 3, 3)),
        A(.stride = 1, .pad = 1)),
    BAD(OP_CONV2D, "conv2d: kernel 5x5 is larger than the padded input 3x3 (pad 0)",
        IN2(F, SH(1, 3, 3, 3), F, SH(8, 3, 5, 5)),
        A(.stride = 1)),
    BAD(OP_CONV2D, "conv2d: stride must be >= 1, got 0", IN2(F, SH(1, 3, 8, 8), F, SH(8, 3, 3, 3))),
    BAD(OP_CONV2D, "conv2d: pad must be >= 0, got -1",
        IN2(F, SH(1, 3, 8, 8), F, SH(8, 3, 3, 3)), A(.stride = 1, .pad = -1)),
    BAD(OP_CONV2D, "conv2d: input must be [N, C, H, W], got [3, 8, 8]", IN2(F, SH(3, 8, 8), F, SH(8, 3, 3, 3)),
        A(.stride = 1)),
    BAD(OP_CONV2D, "conv2d: weight must be [O, C, kh, kw], got [8, 3, 3]", IN2(F, SH(1, 3, 8, 8), F, SH(8, 3, 3)),
        A(.stride = 1)),
    OK(OP_CONV_TRANSPOSE2D, F, SH(4, 16, 16, 16), IN2(F, SH(4, 32, 8, 8), F, SH(32, 16, 4, 4)),
        A(.stride = 2, .pad = 1)),
    OK(OP_CONV_TRANSPOSE2D, F, SH(1, 2, 5, 7), IN2(F, SH(1, 3, 3, 5), F, SH(3, 2, 3, 3)), A(.stride = 1)),
    BAD(OP_CONV_TRANSPOSE2D, "conv_transpose2d: input has 3 channels but weight expects 4",
        IN2(F, SH(1, 3, 8, 8), F, SH(4, 3, 4, 4)), A(.stride = 2, .pad = 1)),
    BAD(OP_CONV_TRANSPOSE2D, "conv_transpose2d: output would be -1x-1", IN2(F, SH(1, 1, 1, 1), F, SH(1, 1, 1, 1)),
        A(.stride = 1, .pad = 1)),
    BAD(OP_CONV_TRANSPOSE2D, "conv_transpose2d: output of input [1, 1, 1099511627776, 1]"
        " with stride 1048576 is too large",
        IN2(F, SH(1, 1, INT64_C(1) << 40, 1), F, SH(1, 1, 1, 1)), A(.stride = 1 << 20)),
    BAD(OP_CONV_TRANSPOSE2D, "conv_transpose2d: weight must be [C, O, kh, kw]", IN2(F, SH(1, 3, 8, 8), F, SH(3, 4)),
        A(.stride = 1)),
    OK(OP_CONV2D_BACKWARD_WEIGHT, F, SH(32, 16, 4, 4), IN2(F, SH(4, 16, 16, 16), F, SH(4, 32, 8, 8)),
        A(.shape = SH(32, 16, 4, 4), .stride = 2, .pad = 1)),
    OK(OP_CONV2D_BACKWARD_WEIGHT, F, SH(8, 3, 3, 3), IN2(F, SH(1, 3, 8, 7), F, SH(1, 8, 3, 3)),
        A(.shape = SH(8, 3, 3, 3), .stride = 2)),
    BAD(OP_CONV2D_BACKWARD_WEIGHT, "conv2d_backward_weight: gradient [1, 8, 4, 3] is not what conv2d of input"
        " [1, 3, 8, 7] with weight [8, 3, 3, 3], stride 2, pad 0 gives",
        IN2(F, SH(1, 3, 8, 7), F, SH(1, 8, 4, 3)), A(.shape = SH(8, 3, 3, 3), .stride = 2)),
    BAD(OP_CONV2D_BACKWARD_WEIGHT, "conv2d_backward_weight: gradient [1, 4, 3, 3] is not what",
        IN2(F, SH(1, 3, 8, 7), F, SH(1, 4, 3, 3)), A(.shape = SH(8, 3, 3, 3), .stride = 2)),
    BAD(OP_CONV2D_BACKWARD_WEIGHT, "conv2d_backward_weight: expects f32 input and gradient, got f32 and i32",
        IN2(F, SH(1, 3, 8, 8), I, SH(1, 8, 6, 6)), A(.shape = SH(8, 3, 3, 3), .stride = 1)),
    BAD(OP_CONV2D_BACKWARD_WEIGHT, "conv2d_backward_weight: input must be [N, C, H, W], got [3, 8, 8]",
        IN2(F, SH(3, 8, 8), F, SH(1, 8, 6, 6)), A(.shape = SH(8, 3, 3, 3), .stride = 1)),
    BAD(OP_CONV2D_BACKWARD_WEIGHT, "conv2d_backward_weight: gradient must be [N, O, OH, OW], got [8, 6, 6]",
        IN2(F, SH(1, 3, 8, 8), F, SH(8, 6, 6)), A(.shape = SH(8, 3, 3, 3), .stride = 1)),
    BAD(OP_CONV2D_BACKWARD_WEIGHT, "conv2d_backward_weight: weight shape must be [O, C, kh, kw], got [8, 3, 3]",
        IN2(F, SH(1, 3, 8, 8), F, SH(1, 8, 6, 6)), A(.shape = SH(8, 3, 3), .stride = 1)),
    BAD(OP_CONV2D_BACKWARD_WEIGHT, "conv2d_backward_weight: stride must be >= 1, got 0",
        IN2(F, SH(1, 3, 8, 8), F, SH(1, 8, 6, 6)), A(.shape = SH(8, 3, 3, 3))),
    BAD(OP_CONV2D_BACKWARD_WEIGHT, "conv2d_backward_weight: pad must be >= 0, got -2",
        IN2(F, SH(1, 3, 8, 8), F, SH(1, 8, 6, 6)), A(.shape = SH(8, 3, 3, 3), .stride = 1, .pad = -2)),
    OK(OP_GROUP_NORM, F, SH(2, 6, 4, 4), IN3(F, SH(2, 6, 4, 4), F, SH(6), F, SH(6)), A(.groups = 3, .eps = 1e-5f)),
    OK(OP_GROUP_NORM, F, SH(2, 6), IN3(F, SH(2, 6), F, SH(6), F, SH(6)), A(.groups = 6)),
    BAD(OP_GROUP_NORM, "group_norm: 6 channels are not divisible into 4 groups",
        IN3(F, SH(2, 6, 4, 4), F, SH(6), F, SH(6)),
        A(.groups = 4, .eps = 1e-5f)),
    BAD(OP_GROUP_NORM, "group_norm: gamma must be [6], got [4]",
        IN3(F, SH(2, 6, 4, 4), F, SH(4), F, SH(6)), A(.groups = 3)),
    BAD(OP_GROUP_NORM, "group_norm: groups must be >= 1, got 0", IN3(F, SH(2, 6, 4, 4), F, SH(6), F, SH(6))),
    BAD(OP_GROUP_NORM, "group_norm: eps must be finite and >= 0, got -1", IN3(F, SH(2, 6), F, SH(6), F, SH(6)),
        A(.groups = 1, .eps = -1)),
    BAD(OP_GROUP_NORM, "group_norm: input must be [N, C, ...], got [6]",
        IN3(F, SH(6), F, SH(6), F, SH(6)), A(.groups = 1)),
    OK(OP_ATTENTION, F, SH(2, 3, 5, 9), IN4(F, SH(2, 3, 5, 8), F, SH(2, 3, 7, 8), F, SH(2, 3, 7, 8), I, SH(5, 7)),
       A(.value = 0.5)),
    OK(OP_ATTENTION, F, SH(4, 1, 33), IN4(F, SH(4, 1, 32), F, SH(4, 9, 32), F, SH(4, 9, 32), I, SH(1, 9))),
    BAD(OP_ATTENTION, "attention: the mask [7, 5] must be [n, m] = [5, 7]",
        IN4(F, SH(2, 5, 8), F, SH(2, 7, 8), F, SH(2, 7, 8), I, SH(7, 5))),
    BAD(OP_ATTENTION, "attention: v [2, 7, 4] must have k's shape [2, 7, 8]",
        IN4(F, SH(2, 5, 8), F, SH(2, 7, 8), F, SH(2, 7, 4), I, SH(5, 7))),
    BAD(OP_ATTENTION, "attention: leading dimensions differ: q [2, 5, 8], k [3, 7, 8]",
        IN4(F, SH(2, 5, 8), F, SH(3, 7, 8), F, SH(3, 7, 8), I, SH(5, 7))),
    BAD(OP_ATTENTION, "attention: the mask must be i32, got f32",
        IN4(F, SH(2, 5, 8), F, SH(2, 7, 8), F, SH(2, 7, 8), F, SH(5, 7))),
    BAD(OP_ATTENTION, "attention: q must have rank >= 3, got [5, 8]",
        IN4(F, SH(5, 8), F, SH(7, 8), F, SH(7, 8), I, SH(5, 7))),
    BAD(OP_ATTENTION, "attention: scale must be finite", IN4(F, SH(1, 5, 8), F, SH(1, 7, 8), F, SH(1, 7, 8), I, SH(5, 7)),
        A(.value = 1.0 / 0.0)),
    OK(OP_ATTENTION_BACKWARD, F, SH(2, 3, 19, 8), IN6(SH(2, 3, 5, 8), SH(2, 3, 7, 8), SH(5, 7), SH(2, 3, 5, 9))),
    BAD(OP_ATTENTION_BACKWARD, "attention_backward: the output [2, 3, 5, 8] must be attention's output shape [2, 3, 5, 9]",
        IN6(SH(2, 3, 5, 8), SH(2, 3, 7, 8), SH(5, 7), SH(2, 3, 5, 8))),
    OK(OP_LAYER_NORM, F, SH(2, 5, 8), IN3(F, SH(2, 5, 8), F, SH(8), F, SH(8)), A(.eps = 1e-5f)),
    BAD(OP_LAYER_NORM, "layer_norm: beta must be [8], got [5]", IN3(F, SH(2, 5, 8), F, SH(8), F, SH(5))),
    BAD(OP_LAYER_NORM, "layer_norm: the input must be f32, got i32", IN3(I, SH(2, 8), F, SH(8), F, SH(8))),
    BAD(OP_LAYER_NORM, "layer_norm: input must be [..., C], got a scalar", IN3(F, SCALAR, F, SH(1), F, SH(1))),
    OK(OP_CROSS_ENTROPY, F, SH(4, 5), IN2(F, SH(4, 5, 10), I, SH(4, 5))),
    OK(OP_CROSS_ENTROPY, F, SCALAR, IN2(F, SH(10), I, SCALAR)),
    BAD(OP_CROSS_ENTROPY, "cross_entropy: target shape [4] does not match logits [4, 5, 10]"
        " without its last axis ([4, 5])",
        IN2(F, SH(4, 5, 10), I, SH(4))),
    BAD(OP_CROSS_ENTROPY, "cross_entropy: the target must be i32, got f32", IN2(F, SH(4, 10), F, SH(4))),
    BAD(OP_CROSS_ENTROPY, "cross_entropy: logits must have rank >= 1, got []", IN2(F, SCALAR, I, SCALAR)),
};
#define NCASES ((int)(sizeof cases / sizeof cases[0]))

static char *type_text(IrDType t, const IrShape *s, char *buf, size_t size) {
  char sh[160];
  snprintf(buf, size, "%s%s", ir_dtype_name(t), ir_shape_str(s, sh, sizeof sh));
  return buf;
}

START_TEST(shape_rule_case) {
  const Case *c = &cases[_i];
  IrDType t = (IrDType)-1;
  IrShape s;
  memset(&s, 0x55, sizeof s);
  char err[512] = "unset";
  bool ok = ir_infer(c->op, c->dt, c->sh, c->nin, &c->attr, &t, &s, err, sizeof err);
  if (!c->err) {
    char got[200], want[200];
    ck_assert_msg(ok, "line %d: %s refused: %s", c->line, ir_op_name(c->op), err);
    ck_assert_msg(t == c->want_dt && ir_shape_eq(&s, &c->want), "line %d: %s gave %s, expected %s", c->line,
                  ir_op_name(c->op), type_text(t, &s, got, sizeof got),
                  type_text(c->want_dt, &c->want, want, sizeof want));
    /* Dims past the rank are zeroed, so results compare bytewise. */
    for (int i = s.rank; i < IR_MAX_RANK; i++) ck_assert_int_eq(s.d[i], 0);
  } else {
    ck_assert_msg(!ok, "line %d: %s accepted a case that should fail with \"%s\"", c->line, ir_op_name(c->op), c->err);
    ck_assert_msg(strstr(err, c->err) != NULL, "line %d: message \"%s\" lacks \"%s\"", c->line, err, c->err);
    size_t n = strlen(ir_op_name(c->op));
    ck_assert_msg(strncmp(err, ir_op_name(c->op), n) == 0 && err[n] == ':',
                  "line %d: message \"%s\" does not start with \"%s:\"", c->line, err, ir_op_name(c->op));
  }
}
END_TEST

/* Every op in ops.def has at least one accepted and one refused case. */
START_TEST(every_op_has_cases) {
  int good[OP_COUNT] = {0}, bad[OP_COUNT] = {0};
  for (int i = 0; i < NCASES; i++) {
    ck_assert_int_lt(cases[i].op, OP_COUNT);
    (cases[i].err ? bad : good)[cases[i].op]++;
  }
  for (int op = 0; op < OP_COUNT; op++) {
    ck_assert_msg(good[op] > 0, "no successful shape case for %s", ir_op_name((IrOp)op));
    ck_assert_msg(bad[op] > 0, "no failing shape case for %s", ir_op_name((IrOp)op));
  }
}
END_TEST

/* Every op refuses a wrong number of inputs, naming itself. */
START_TEST(every_op_checks_arity) {
  IrDType dt[IR_MAX_IN + 1] = {F, F, F, F};
  IrShape sh[IR_MAX_IN + 1] = {SH(2), SH(2), SH(2), SH(2)};
  for (int op = 0; op < OP_COUNT; op++) {
    char err[256], want[64];
    int nin = ir_op_arity((IrOp)op) + 1;
    snprintf(want, sizeof want, "%s: expects %d input", ir_op_name((IrOp)op), nin - 1);
    ck_assert(!ir_infer((IrOp)op, dt, sh, nin, NULL, NULL, NULL, err, sizeof err));
    ck_assert_msg(strstr(err, want) == err, "%s: got \"%s\"", ir_op_name((IrOp)op), err);
  }
}
END_TEST

START_TEST(infer_edge_cases) {
  char err[64] = "x";
  IrDType t;
  IrShape s;
  char want[64];
  snprintf(want, sizeof want, "?: unknown op %d", (int)OP_COUNT);
  ck_assert(!ir_infer(OP_COUNT, NULL, NULL, 0, NULL, &t, &s, err, sizeof err));
  ck_assert_str_eq(err, want);
  /* A NULL attr means all zero (a scalar gumbel); a NULL err buffer is fine. */
  ck_assert(ir_infer(OP_GUMBEL, NULL, NULL, 0, NULL, &t, &s, NULL, 0));
  ck_assert(t == IR_F32 && s.rank == 0);
  ck_assert(!ir_infer(OP_IOTA, NULL, NULL, 0, NULL, &t, &s, NULL, 0));
  IrDType in = IR_F32;
  IrShape sh = SH(3);
  ck_assert(ir_infer(OP_RELU, &in, &sh, 1, NULL, &t, &s, NULL, 0));
  ck_assert(t == IR_F32 && s.rank == 1 && s.d[0] == 3);
  /* A message longer than the buffer is cut, not overrun. */
  char tiny[12];
  IrShape big = SH(2, 3, 4, 5), other = SH(7);
  IrDType two[2] = {F, F};
  IrShape shs[2] = {big, other};
  ck_assert(!ir_infer(OP_ADD, two, shs, 2, NULL, &t, &s, tiny, sizeof tiny));
  ck_assert_uint_eq(strlen(tiny), sizeof tiny - 1);
  ck_assert_str_eq(tiny, "add: shapes");
}
END_TEST

/* ---- shape helpers ---- */

START_TEST(shape_helpers) {
  IrShape a = ir_shape_make(3, (int64_t[]){2, 3, 4}), b = SH(2, 3, 4), s0 = ir_shape_make(0, NULL);
  ck_assert_int_eq(ir_numel(&a), 24);
  ck_assert_int_eq(ir_numel(&s0), 1);
  ck_assert(ir_shape_eq(&a, &b));
  b.d[5] = 99; /* past the rank: ignored */
  ck_assert(ir_shape_eq(&a, &b));
  b.d[2] = 5;
  ck_assert(!ir_shape_eq(&a, &b));
  IrShape r2 = SH(2, 3);
  ck_assert(!ir_shape_eq(&a, &r2));
  for (int i = 3; i < IR_MAX_RANK; i++) ck_assert_int_eq(a.d[i], 0);
  IrShape bad = ir_shape_make(7, (int64_t[]){1, 1, 1, 1, 1, 1, 1});
  ck_assert_int_eq(bad.rank, 7);
  ck_assert_int_eq(ir_numel(&bad), -1);
  char buf[64];
  ck_assert_str_eq(ir_shape_str(&a, buf, sizeof buf), "[2, 3, 4]");
  ck_assert_str_eq(ir_shape_str(&s0, buf, sizeof buf), "[]");
  ck_assert_str_eq(ir_shape_str(&bad, buf, sizeof buf), "<rank 7>");
  char small[6];
  ck_assert_str_eq(ir_shape_str(&a, small, sizeof small), "[2, 3");
  IrShape huge = SH(INT64_C(1) << 40, 1000000);
  ck_assert_str_eq(ir_shape_str(&huge, buf, sizeof buf), "[1099511627776, 1000000]");
}
END_TEST

/* ---- op table ---- */

START_TEST(op_table) {
  ck_assert_str_eq(ir_op_name(OP_INPUT), "input");
  ck_assert_str_eq(ir_op_name(OP_CONV_TRANSPOSE2D), "conv_transpose2d");
  ck_assert_str_eq(ir_op_name(OP_CROSS_ENTROPY), "cross_entropy");
  ck_assert_str_eq(ir_op_name(OP_COUNT), "?");
  ck_assert_int_eq(ir_op_arity(OP_INPUT), 0);
  ck_assert_int_eq(ir_op_arity(OP_EXP), 1);
  ck_assert_int_eq(ir_op_arity(OP_MATMUL), 2);
  ck_assert_int_eq(ir_op_arity(OP_WHERE), 3);
  ck_assert_int_eq(ir_op_arity(OP_GROUP_NORM), 3);
  ck_assert_int_eq(ir_op_arity(OP_COUNT), -1);
  ck_assert_int_eq(ir_op_pattern(OP_ADD), PAT_ELEMWISE);
  ck_assert_int_eq(ir_op_pattern(OP_BROADCAST), PAT_BROADCAST);
  ck_assert_int_eq(ir_op_pattern(OP_RESHAPE), PAT_INJECTIVE);
  ck_assert_int_eq(ir_op_pattern(OP_SUM), PAT_REDUCE);
  ck_assert_int_eq(ir_op_pattern(OP_MATMUL), PAT_OPAQUE);
  ck_assert_int_eq(ir_op_pattern(OP_COUNT), PAT_OPAQUE);
  ck_assert_str_eq(ir_dtype_name(IR_F32), "f32");
  ck_assert_str_eq(ir_dtype_name(IR_I32), "i32");
  ck_assert_str_eq(ir_dtype_name((IrDType)9), "?");
  ck_assert_int_eq(ir_op_from_name("matmul"), OP_MATMUL);
  ck_assert_int_eq(ir_op_from_name("nope"), -1);
  ck_assert_int_eq(ir_op_from_name(""), -1);
  ck_assert_int_eq(ir_op_from_name(NULL), -1);
  /* Names are unique and round-trip; arities fit IrNode.in. */
  for (int op = 0; op < OP_COUNT; op++) {
    ck_assert_int_eq(ir_op_from_name(ir_op_name((IrOp)op)), op);
    ck_assert(ir_op_arity((IrOp)op) >= 0 && ir_op_arity((IrOp)op) <= IR_MAX_IN);
    ck_assert(ir_op_pattern((IrOp)op) >= PAT_ELEMWISE && ir_op_pattern((IrOp)op) <= PAT_OPAQUE);
  }
  /* The flags column agrees with the other columns where they overlap. */
  for (int i = 0; i < OP_COUNT; i++) {
    IrOp op = (IrOp)i;
    const char *n = ir_op_name(op);
    bool elem = ir_op_pattern(op) == PAT_ELEMWISE;
    ck_assert_msg(!ir_op_is_leaf(op) || ir_op_arity(op) == 0, "%s: a leaf has no inputs", n);
    ck_assert_msg(!ir_op_is_bound(op) || ir_op_is_leaf(op), "%s: bound but not a leaf", n);
    ck_assert_msg(!ir_op_is_rowwise(op) || ir_op_is_reduction(op), "%s: row-wise but not PAT_REDUCE", n);
    ck_assert_msg(!ir_op_is_view(op) || ir_op_arity(op) == 1, "%s: a view has one input", n);
    ck_assert_msg(!ir_op_takes_i32(op) || elem, "%s: OPF_I32 is for elementwise ops", n);
    ck_assert_msg(!ir_op_is_identity(op) || elem, "%s: OPF_IDENTITY is for elementwise ops", n);
    ck_assert_msg(!ir_op_is_gemm(op) || ir_op_pattern(op) == PAT_OPAQUE, "%s: a GEMM op is opaque", n);
    ck_assert_msg(!elem || ir_op_is_epilogue(op), "%s: every elementwise op may sit in an epilogue", n);
  }
  ck_assert(ir_op_is_leaf(OP_CONST) && !ir_op_is_bound(OP_CONST) && ir_op_is_bound(OP_STATE));
  ck_assert(ir_op_is_reduction(OP_CROSS_ENTROPY) && !ir_op_is_rowwise(OP_SUM) && ir_op_is_rowwise(OP_SOFTMAX));
  ck_assert_int_eq((int)ir_op_flags((IrOp)OP_COUNT), 0);
}
END_TEST

static Suite *shape_suite(void) {
  Suite *s = suite_create("shape");
  TCase *tc = tcase_create("rules");
  tcase_add_loop_test(tc, shape_rule_case, 0, NCASES);
  tcase_add_test(tc, every_op_has_cases);
  tcase_add_test(tc, every_op_checks_arity);
  tcase_add_test(tc, infer_edge_cases);
  suite_add_tcase(s, tc);
  tc = tcase_create("helpers");
  tcase_add_test(tc, shape_helpers);
  tcase_add_test(tc, op_table);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) { return tu_run_suite(shape_suite()); }
