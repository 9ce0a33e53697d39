/* eval.h — the tracer: runs .dal code at compile time.
 *
 * Numbers, booleans, strings, lists and functions are ordinary values;
 * every tensor operation appends nodes to an IrGraph and yields a tensor
 * value (a node id). Loops unroll, calls inline, `if` picks a branch.
 *
 * Errors unwind: ev_error formats the diagnostic (with the chain of calls)
 * and longjmps to the innermost ev_protect. Everything the evaluator
 * allocates lives in an arena (the program's for global values, one per
 * lowering otherwise), so unwinding leaks nothing.
 *
 * Files: eval_value.c (values, names, errors), eval_expr.c (expressions,
 * operators, indexing, calls), eval_stmt.c (statements, functions, entries),
 * eval_tensor.c (tensor helpers shared by operators and builtins),
 * eval_builtin.c (the built-in functions).
 *
 * Prefix: ev_.
 */
#ifndef DAL_FRONTEND_EVAL_H
#define DAL_FRONTEND_EVAL_H

#include <setjmp.h>
#include <stdbool.h>
#include <stdint.h>

#include "frontend/arena.h"
#include "frontend/ast.h"
#include "frontend/fe_limits.h"
#include "ir/ir.h"


typedef enum {
  V_NONE, V_BOOL, V_INT, V_FLOAT, V_STR, V_LIST, V_DTYPE, V_FUNC, V_BUILTIN, V_TENSOR, V_MODULE
} ValKind;

struct EvGlobals;

typedef struct ValList ValList;

typedef struct {
  ValKind kind;
  union {
    bool b;
    int64_t i;
    double f;
    const char *s;
    const ValList *list;
    IrDType dtype;
    const AstDef *fn;
    int builtin; /* index into ev_builtins */
    int t;       /* node id in the graph being traced */
    struct EvGlobals *module; /* V_MODULE: the names of a module (`import "f.dal" as m`) */
  };
} Value;

/* Lists are immutable once built. */
struct ValList {
  int n;
  Value v[];
};

/* ---- global names ---- */
typedef enum {
  G_BUILTIN, /* a built-in function (user definitions may shadow it) */
  G_PREDEF,  /* f32, i32, None */
  G_BATCH,   /* B */
  G_CONFIG,  /* a key of the selected config, or of another one (then not ready) */
  G_LET,     /* a global let (not ready until evaluated) */
  G_DEF,     /* a function */
  G_MODULE   /* `import "path" as NAME` (not ready until loaded, after the config) */
} EvGlobalKind;

typedef struct {
  const char *name;
  EvGlobalKind kind;
  bool ready;         /* the value is known */
  Value v;
  SrcLoc loc;         /* where it is defined (line 0 for built-ins) */
  const char *config; /* G_CONFIG: a config that defines it */
} EvGlobal;

typedef struct EvGlobals {
  EvGlobal *slot; /* open addressing; name NULL = empty */
  int cap, n;
  /* A module's: what its parameter names get in front when the importer
   * calls into it (the alias, "vae"); NULL for the main program. */
  const char *prefix;
} EvGlobals;

/* The global called 'name', or NULL. */
EvGlobal *ev_global_find(const EvGlobals *gl, const char *name);
/* The global called 'name', inserted (zeroed, name set) if missing. */
EvGlobal *ev_global_put(FeArena *a, EvGlobals *gl, const char *name);

/* ---- evaluation state ---- */

/* A name that was local to a `with` block which has ended: using it after
 * the block is an error that says so. */
typedef struct {
  const char *name;
  SrcLoc with;      /* the `with` keyword of its block */
  const char *path; /* the block's path as written ("stages.0.down") */
} EvEnded;

/* A user-function call in progress and its locals. A `with` block is a
 * scope: the locals it adds are dropped at its end (into 'ended'). */
typedef struct EvFrame {
  const AstDef *def;
  SrcLoc call; /* the call site (line 0 for an entry) */
  const char **name;
  Value *val;
  int n;
  EvEnded *ended;
  int nended;
  /* A hash index of name[] once the frame has many locals (NULL before):
   * open addressing, each slot 1 + an index into name[] or 0 if empty.
   * Slots left by locals a `with` block dropped are stale (their index is
   * >= n, or names another local) and skipped; the index is rebuilt when
   * half full. */
  int *slot;
  int slot_cap, slot_used;
  Value ret;       /* the returned value (V_NONE until a return) */
  SrcLoc ret_loc;  /* the return statement that produced it */
  struct EvFrame *parent;
} EvFrame;

typedef struct Ev {
  FeArena *arena;        /* values made while evaluating */
  EvGlobals *globals;
  IrGraph *g;            /* NULL while evaluating configs and lets: no tensors */
  FeArena *keep;         /* the program's arena: what outlives this evaluation (g's call sites) */
  EvFrame *frame;        /* innermost call; NULL at global level */
  int depth;             /* user-function calls in progress */
  int nest;              /* expressions and statements in progress (FE_MAX_EVAL_NEST) */
  uintptr_t stack_base;  /* the C stack where evaluation began (FE_MAX_EVAL_STACK) */
  int64_t steps;
  int64_t value_bytes;   /* lists and strings built so far (FE_MAX_VALUE_BYTES) */
  EvGlobals params;      /* the graph's PARAM and STATE nodes by name (v.t the node) */
  int ngumbel;           /* GUMBEL nodes made so far (each one's salt) */
  const char *scope;     /* parameter name scope ("" at the top) */
  const char **freeze;   /* freeze() patterns of the entry being traced */
  SrcLoc *freeze_loc;
  int nfreeze;
  jmp_buf *jmp;          /* where ev_error goes */
  char *error;           /* malloc'd diagnostic after an error */
} Ev;

/* Runs fn(ev, ud) so that ev_error returns here: true on success, false
 * with ev->error set after an error. */
bool ev_protect(Ev *ev, void (*fn)(Ev *ev, void *ud), void *ud);

/* Reports an error at 'loc' with the chain of calls and unwinds. */
_Noreturn void ev_error(Ev *ev, SrcLoc loc, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Counts one evaluation step; errors out past FE_MAX_STEPS. */
void ev_step(Ev *ev, SrcLoc loc);
/* Counts 'bytes' more of lists and strings built; errors out past
 * FE_MAX_VALUE_BYTES. */
void ev_charge(Ev *ev, int64_t bytes, SrcLoc loc);
/* Enters one more level of evaluation (an expression or a statement);
 * errors out past FE_MAX_EVAL_NEST. ev_leave undoes it (an error unwinds
 * past it: ev_protect's caller resets nothing, as the Ev is not reused). */
void ev_enter(Ev *ev, SrcLoc loc);
static inline void ev_leave(Ev *ev) { ev->nest--; }

/* ---- values (eval_value.c) ---- */
Value ev_none(void);
Value ev_bool(bool b);
Value ev_int(int64_t i);
Value ev_float(double f);
Value ev_str(const char *s);
Value ev_tensor(int id);
Value ev_dtype(IrDType t);
/* A list of n elements (set by the caller); errors at 'loc' if n is over
 * FE_MAX_LIST_LEN or the evaluation's lists and strings are over
 * FE_MAX_VALUE_BYTES. */
ValList *ev_list_new(Ev *ev, int64_t n, SrcLoc loc);
/* The string a + b, with the same checks (FE_MAX_STR_LEN). */
const char *ev_str_concat(Ev *ev, const char *a, const char *b, SrcLoc loc);
Value ev_list(const ValList *l);

bool ev_is_number(Value v); /* int or float (not bool) */
double ev_number(Value v);  /* int or float as a double */
/* "int", "float", "tensor", ... */
const char *ev_kind_name(ValKind k);
/* The value for messages: "int 3", "tensor f32[4, 8]", "list [1, 2]". In
 * the arena. */
const char *ev_describe(Ev *ev, Value v);
/* The graph node of a tensor value. */
const IrNode *ev_node(Ev *ev, Value v);
/* "f32[4, 8]" (or "f32" for rank 0) into buf. */
const char *ev_type_str(IrDType t, const IrShape *s, char *buf, size_t size);

/* Locals of the current frame. */
Value *ev_local_find(Ev *ev, const char *name);
void ev_local_set(Ev *ev, const char *name, Value v);
/* Resolves a name: locals, then globals (config, B, lets, functions,
 * built-ins). Errors at 'loc' if unknown ("unknown WHAT 'x'", what being
 * "name" or "function"), suggesting a near name. */
Value ev_lookup(Ev *ev, const char *name, SrcLoc loc, const char *what);

/* Conversions that error at 'loc' describing 'what' ("argument 'axis' of
 * sum", "the shape"). */
int64_t ev_to_int(Ev *ev, Value v, SrcLoc loc, const char *what);
double ev_to_number(Ev *ev, Value v, SrcLoc loc, const char *what);
bool ev_to_bool(Ev *ev, Value v, SrcLoc loc, const char *what);
/* A list of positive ints (at most IR_MAX_RANK of them) as a shape. */
IrShape ev_to_shape(Ev *ev, Value v, SrcLoc loc, const char *what);
/* An axis in [-rank, rank) normalised to [0, rank). */
int ev_to_axis(Ev *ev, Value v, int rank, SrcLoc loc, const char *what);

/* ---- expressions (eval_expr.c) ---- */
Value ev_expr(Ev *ev, const AstExpr *e);
/* Applies a binary or unary operator to values (tensors become nodes). */
Value ev_binary(Ev *ev, AstOp op, Value a, Value b, SrcLoc loc);
Value ev_unary(Ev *ev, AstOp op, Value a, SrcLoc loc);

/* Arguments of a call, as written and as bound to a parameter list. */
typedef struct {
  SrcLoc loc;          /* the call */
  const char *name;    /* what is called, for messages */
  int npos;            /* positional arguments */
  Value *pos;
  SrcLoc *pos_loc;
  int nkw;             /* keyword arguments */
  const char **kw_name;
  Value *kw;
  SrcLoc *kw_loc;
  /* Filled by ev_bind_args: one per declared parameter. */
  int narg;
  const char *const *param; /* the parameter names */
  Value *arg;          /* V_NONE if not given */
  bool *given;
  SrcLoc *arg_loc;     /* where each was given (the call if not) */
} EvCall;

/* Evaluates the arguments of call expression 'call' into c (c->loc set). */
void ev_eval_args(Ev *ev, const AstExpr *call, EvCall *c);
/* Binds c's positional and keyword arguments to the parameter names
 * 'params' (n of them, the first 'nreq' required). Errors on too many
 * arguments, unknown or repeated keywords and missing required ones. */
void ev_bind_args(Ev *ev, EvCall *c, const char *const *params, int n, int nreq);
/* Calls a function value with evaluated arguments. */
Value ev_call_value(Ev *ev, Value fn, EvCall *c);

/* ---- statements and functions (eval_stmt.c) ---- */
/* Runs a user function: binds c's arguments to its parameters, checks
 * typed ones, executes the body in a new frame, returns its value. */
Value ev_call_def(Ev *ev, const AstDef *def, EvCall *c);
/* The value of `with path { ...; value }` (an EX_WITH expression): the
 * block runs as a scope and its last statement gives the value. */
Value ev_with_expr(Ev *ev, const AstExpr *e);
/* Traces entry 'def' into ev->g (inputs, body, checked output). */
void ev_lower_entry(Ev *ev, const AstDef *def);
/* Evaluates a tensor type's dimensions into a shape. */
IrShape ev_type_shape(Ev *ev, const AstType *t);

/* ---- tensors (eval_tensor.c) ---- */
/* Errors unless a graph is being traced ("what" names the operation). */
IrGraph *ev_graph(Ev *ev, SrcLoc loc, const char *what);
/* Checks a builder result: on -1 reports g->error at 'loc'. Also enforces
 * FE_MAX_NODES. Returns id. */
int ev_check(Ev *ev, int id, SrcLoc loc);
/* A tensor operand: a tensor as is, a number as a rank-0 CONST of dtype 't'. */
int ev_as_tensor(Ev *ev, Value v, IrDType t, SrcLoc loc, const char *what);
/* Elementwise binary op with broadcasting; numbers take the other side's dtype. */
Value ev_tensor_binary(Ev *ev, IrOp op, Value a, Value b, SrcLoc loc);
/* Bit mask of reduction axes from an int, a list of ints or None (all). */
uint32_t ev_axes(Ev *ev, Value axis, int rank, SrcLoc loc, const char *what);
/* SUM / REDUCE_MAX / mean over axes. */
Value ev_reduce(Ev *ev, IrOp op, int x, uint32_t axes, bool keepdim, SrcLoc loc);
Value ev_mean(Ev *ev, int x, uint32_t axes, bool keepdim, SrcLoc loc);
/* One evaluated index of x[...]: an integer (slice false, lo) or a slice
 * with optional bounds. */
typedef struct {
  bool slice, has_lo, has_hi;
  int64_t lo, hi;
  SrcLoc loc;
} EvIndex;

/* x[ix...] on a tensor: SLICE, then RESHAPE if integer indices drop axes. */
Value ev_index_tensor(Ev *ev, Value x, const EvIndex *ix, int n, SrcLoc loc);

/* ---- built-in functions (eval_builtin.c) ---- */
typedef Value (*EvBuiltinFn)(Ev *ev, EvCall *c);

typedef struct {
  const char *name;
  const char *params[6]; /* parameter names; NULL-terminated */
  int nreq;              /* how many are required; -1: the function binds its own arguments */
  EvBuiltinFn fn;
} EvBuiltin;

extern const EvBuiltin ev_builtins[];
extern const int ev_builtin_count;

#endif
