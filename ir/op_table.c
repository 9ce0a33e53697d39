/* op_table.c — name, arity, fusion-pattern and flag tables generated from
 * ops.def, and the queries on them.
 *
 * Each table is one expansion of the OP X-macro, so it has exactly one entry
 * per IrOp in enum order by construction (no count to check). */
#include "ir/ir.h"

#include <string.h>

static const char *const op_names[] = {
#define OP(name, text, arity, pattern, flags, rule, backward) text,
#include "ir/ops.def"
#undef OP
};

static const signed char op_arities[] = {
#define OP(name, text, arity, pattern, flags, rule, backward) arity,
#include "ir/ops.def"
#undef OP
};

static const unsigned char op_patterns[] = {
#define OP(name, text, arity, pattern, flags, rule, backward) pattern,
#include "ir/ops.def"
#undef OP
};

static const unsigned short op_flags[] = {
#define OP(name, text, arity, pattern, flags, rule, backward) flags,
#include "ir/ops.def"
#undef OP
};

static bool op_valid(IrOp op) { return (unsigned)op < (unsigned)OP_COUNT; }

/* Text name of 'op' ("conv2d"); "?" for a value outside IrOp. */
const char *ir_op_name(IrOp op) { return op_valid(op) ? op_names[op] : "?"; }

/* Number of inputs 'op' takes; -1 for a value outside IrOp. */
int ir_op_arity(IrOp op) { return op_valid(op) ? op_arities[op] : -1; }

/* Fusion kind of 'op'; PAT_OPAQUE (the safe answer) for a value outside IrOp. */
IrPattern ir_op_pattern(IrOp op) { return op_valid(op) ? (IrPattern)op_patterns[op] : PAT_OPAQUE; }

unsigned ir_op_flags(IrOp op) { return op_valid(op) ? op_flags[op] : 0u; }

static bool has(IrOp op, IrOpFlag f) { return (ir_op_flags(op) & (unsigned)f) != 0; }
bool ir_op_is_leaf(IrOp op) { return has(op, OPF_LEAF); }
bool ir_op_is_view(IrOp op) { return has(op, OPF_VIEW); }
bool ir_op_is_reduction(IrOp op) { return ir_op_pattern(op) == PAT_REDUCE; }
bool ir_op_is_rowwise(IrOp op) { return has(op, OPF_ROWWISE); }
bool ir_op_is_epilogue(IrOp op) { return has(op, OPF_EPILOGUE); }
bool ir_op_is_gemm(IrOp op) { return has(op, OPF_GEMM); }
bool ir_op_takes_i32(IrOp op) { return has(op, OPF_I32); }
bool ir_op_is_identity(IrOp op) { return has(op, OPF_IDENTITY); }
bool ir_op_is_bound(IrOp op) { return has(op, OPF_BOUND); }

/* "f32" / "i32"; "?" for a value outside IrDType. */
const char *ir_dtype_name(IrDType t) {
  switch (t) {
  case IR_F32: return "f32";
  case IR_I32: return "i32";
  }
  return "?";
}

/* The op whose text name is 'name', or -1 (also for NULL). */
int ir_op_from_name(const char *name) {
  if (!name) return -1;
  for (int i = 0; i < OP_COUNT; i++)
    if (strcmp(op_names[i], name) == 0) return i;
  return -1;
}
