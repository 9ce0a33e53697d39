/* op_table.c — name, arity and fusion-pattern tables generated from ops.def.
 *
 * Each table is one expansion of the OP X-macro, so it has exactly one entry
 * per IrOp in enum order; the static asserts below catch a table that falls
 * out of step with OP_COUNT. */
#include "ir/ir.h"

#include <string.h>

static const char *const op_names[] = {
#define OP(name, text, arity, pattern, rule, backward) text,
#include "ops.def"
#undef OP
};

static const signed char op_arities[] = {
#define OP(name, text, arity, pattern, rule, backward) arity,
#include "ops.def"
#undef OP
};

static const unsigned char op_patterns[] = {
#define OP(name, text, arity, pattern, rule, backward) pattern,
#include "ops.def"
#undef OP
};

_Static_assert(sizeof op_names / sizeof op_names[0] == OP_COUNT, "op_names must have OP_COUNT entries");
_Static_assert(sizeof op_arities / sizeof op_arities[0] == OP_COUNT, "op_arities must have OP_COUNT entries");
_Static_assert(sizeof op_patterns / sizeof op_patterns[0] == OP_COUNT, "op_patterns must have OP_COUNT entries");

static bool op_valid(IrOp op) { return (unsigned)op < (unsigned)OP_COUNT; }

/* Text name of 'op' ("conv2d"); "?" for a value outside IrOp. */
const char *ir_op_name(IrOp op) { return op_valid(op) ? op_names[op] : "?"; }

/* Number of inputs 'op' takes; -1 for a value outside IrOp. */
int ir_op_arity(IrOp op) { return op_valid(op) ? op_arities[op] : -1; }

/* Fusion kind of 'op'; PAT_OPAQUE (the safe answer) for a value outside IrOp. */
IrPattern ir_op_pattern(IrOp op) { return op_valid(op) ? (IrPattern)op_patterns[op] : PAT_OPAQUE; }

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
