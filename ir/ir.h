/* ir.h — dal's graph IR: SSA nodes with static shapes and dtypes.
 *
 * A graph is an array of nodes in topological order (every input id is
 * smaller than the node's own id). Node ids are indices into that array and
 * are the only way nodes refer to each other, so iteration order is always
 * deterministic. A graph is one entry function, fully inlined: its INPUT
 * nodes are the entry's arguments (in signature order), its PARAM nodes the
 * parameters it reads, and its outputs the values it returns.
 *
 * Module prefix: ir_. The IR depends on nothing else in dal.
 */
#ifndef DAL_IR_H
#define DAL_IR_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#define IR_MAX_RANK 6
#define IR_MAX_IN   6

typedef enum { IR_F32, IR_I32 } IrDType;

/* Where a node came from in .dal source. 'file' is owned by whoever made the
 * graph (the frontend interns file names for the life of the program);
 * line and col are 1-based, 0 meaning unknown. */
typedef struct {
  const char *file;
  int line, col;
} SrcLoc;

/* The user-function calls a node was made in: where its function was
 * called, then where that caller was called, up to the entry (up NULL).
 * Owned by whoever made the graph, like SrcLoc.file (the frontend keeps
 * them for the life of the program). --check-numerics names them after a
 * library function's line (runtime/core/numerics.h). */
typedef struct IrCallSite {
  SrcLoc at;
  const struct IrCallSite *up;
} IrCallSite;

typedef struct {
  int rank;
  int64_t d[IR_MAX_RANK];
} IrShape;

typedef enum {
#define OP(name, text, arity, pattern, flags, rule, backward) OP_##name,
#include "ir/ops.def"
#undef OP
  OP_COUNT
} IrOp;

/* Op properties: the flags column of ops.def (documented there). */
typedef enum {
  OPF_LEAF = 1u << 0,
  OPF_VIEW = 1u << 1,
  OPF_ROWWISE = 1u << 3,
  OPF_EPILOGUE = 1u << 4,
  OPF_GEMM = 1u << 5,
  OPF_I32 = 1u << 6,
  OPF_IDENTITY = 1u << 7,
  OPF_BOUND = 1u << 8
} IrOpFlag;

/* Fusion pattern kinds; the order matters (see ops.def). */
typedef enum {
  PAT_ELEMWISE,
  PAT_BROADCAST,
  PAT_INJECTIVE,
  PAT_REDUCE,
  PAT_OPAQUE
} IrPattern;

/* Parameter initialisers (PARAM nodes). kaiming/xavier are resolved to
 * UNIFORM bounds by the frontend. */
typedef enum {
  IR_INIT_ZEROS,
  IR_INIT_ONES,
  IR_INIT_NORMAL,   /* a = mean, b = std */
  IR_INIT_UNIFORM   /* a = low,  b = high */
} IrInitKind;

/* Attributes. One flat struct: each op reads only the fields its line in
 * ops.def names; unused fields are zero. */
typedef struct {
  IrShape shape;               /* INPUT PARAM STATE CONST IOTA GUMBEL RESHAPE BROADCAST
                                  GATHER_BACKWARD CONV2D_BACKWARD_WEIGHT: result shape */
  IrDType dtype;               /* INPUT CONST: result dtype; CAST: target dtype */
  double value;                /* CONST: fill value; ATTENTION ATTENTION_BACKWARD: the scores' scale */
  int axis;                    /* IOTA ARGMAX SOFTMAX LOG_SOFTMAX CONCAT ONEHOT */
  uint32_t axes;               /* SUM REDUCE_MAX: bit i set = reduce axis i */
  int keepdim;                 /* SUM REDUCE_MAX ARGMAX */
  int perm[IR_MAX_RANK];       /* PERMUTE */
  int64_t start[IR_MAX_RANK];  /* SLICE */
  int64_t stop[IR_MAX_RANK];   /* SLICE */
  int64_t depth;               /* ONEHOT */
  int stride, pad;             /* CONV2D CONV_TRANSPOSE2D CONV2D_BACKWARD_WEIGHT */
  int groups;                  /* GROUP_NORM */
  float eps;                   /* GROUP_NORM LAYER_NORM */
  int trans_a, trans_b;        /* MATMUL */
  uint32_t salt;               /* GUMBEL: distinguishes noise sources within a step */
  IrInitKind init;             /* PARAM */
  double init_a, init_b;       /* PARAM: see IrInitKind */
  bool frozen;                 /* PARAM: not trained (no gradient, no optimizer state, no decay) */
  bool transient;              /* STATE: scratch kept from one run to the next (a sampler's KV
                                  cache), never saved in checkpoints */
} IrAttr;

typedef struct {
  IrOp op;
  IrDType dtype;
  IrShape shape;
  int nin;
  int in[IR_MAX_IN];
  IrAttr attr;
  SrcLoc loc;
  const IrCallSite *calls;     /* the calls it was made in (NULL: the entry's own body, or not
                                  from source); the graph's 'calls' when it was built */
  char *name;                  /* INPUT and PARAM: the argument / full parameter name; else NULL */
} IrNode;

typedef struct {
  char *name;                  /* entry function name */
  bool train;                  /* training entry (returns a scalar loss) */
  IrNode *node;
  int n, cap;
  int *input;  int ninput;     /* INPUT node ids, in signature order */
  int *param;  int nparam;     /* persistent tensors: PARAM and STATE node ids, in order of first use */
  int *output; int noutput;    /* returned node ids */
  char **output_name;          /* one per output ("out", or names given by the entry) */
  /* Persistent-state updates of a training step: after the graph has run,
   * the tensor bound to node update_target[i] (a PARAM or STATE node) takes
   * the value of node update_value[i] (same dtype and shape). */
  int *update_target, *update_value;
  int nupdate;
  char error[512];             /* last builder error message (without location) */
  SrcLoc error_loc;            /* where it happened */
  const IrCallSite *calls;     /* stamped on every node built while set (IrNode.calls): the
                                  frontend's current calls; a pass sets a node's own while it
                                  rewrites or differentiates that node */
} IrGraph;

/* ---- op table queries (ir/op_table.c) ---- */
const char *ir_op_name(IrOp op);
int ir_op_arity(IrOp op);
IrPattern ir_op_pattern(IrOp op);
/* The op's flags column (IrOpFlag bits); 0 for a value outside IrOp. */
unsigned ir_op_flags(IrOp op);
/* One flag each, as ops.def documents them. */
bool ir_op_is_leaf(IrOp op);      /* OPF_LEAF: INPUT PARAM STATE CONST */
bool ir_op_is_view(IrOp op);      /* OPF_VIEW: RESHAPE PERMUTE SLICE BROADCAST */
bool ir_op_is_reduction(IrOp op); /* pattern PAT_REDUCE */
bool ir_op_is_rowwise(IrOp op);   /* OPF_ROWWISE: SOFTMAX LOG_SOFTMAX */
bool ir_op_is_epilogue(IrOp op);  /* OPF_EPILOGUE */
bool ir_op_is_gemm(IrOp op);      /* OPF_GEMM */
bool ir_op_takes_i32(IrOp op);    /* OPF_I32 */
bool ir_op_is_identity(IrOp op);  /* OPF_IDENTITY */
bool ir_op_is_bound(IrOp op);     /* OPF_BOUND: INPUT PARAM STATE */
const char *ir_dtype_name(IrDType t);
/* Finds an op by its text name; -1 if none. */
int ir_op_from_name(const char *name);

/* ---- shapes (ir/shape.c) ---- */
int64_t ir_numel(const IrShape *s);
bool ir_shape_eq(const IrShape *a, const IrShape *b);
IrShape ir_shape_make(int rank, const int64_t *d);
/* Writes "[2, 3, 4]" into buf; returns buf. */
char *ir_shape_str(const IrShape *s, char *buf, size_t size);
/* Runs op's shape rule (ops.def) on inputs with dtypes in_dtype[0..nin) and
 * shapes in_shape[0..nin): on success writes the result's dtype and shape
 * and returns true; on misuse writes a message that starts with the op's
 * name ("reshape: cannot reshape [2, 3] (6 elements) to [4, 2] (8 elements)")
 * into err and returns false. Axes in attr must already be in 0..rank-1
 * (ir_build normalises negative ones); out-of-range axes are rejected. */
bool ir_infer(IrOp op, const IrDType *in_dtype, const IrShape *in_shape, int nin,
              const IrAttr *attr, IrDType *out_dtype, IrShape *out_shape, char *err, size_t size);

/* ---- graph construction (ir/graph.c, ir/builder.c) ----
 * Every builder call infers the result's dtype and shape with the op's
 * shape rule. On misuse it returns -1, leaves the graph unchanged, and puts
 * a message in g->error and the location in g->error_loc; it never exits. */
IrGraph *ir_graph_new(const char *name);
void ir_graph_free(IrGraph *g);
/* Makes room for n nodes in all, so building up to n grows nothing (a
 * rewrite knows its size in advance). False only when out of memory. */
bool ir_graph_reserve(IrGraph *g, int n);
/* Puts a printf-style message in g->error and 'loc' in g->error_loc;
 * returns -1 so builders and passes can 'return ir_graph_fail(...)'. */
__attribute__((format(printf, 3, 4))) int ir_graph_fail(IrGraph *g, SrcLoc loc, const char *fmt, ...);

/* The general form: op with inputs and attributes (attr may be NULL = all zero).
 * attr is copied; negative axes (attr.axis, attr.perm) count from the end and
 * are stored as 0..rank-1. INPUT and PARAM need a name: use ir_input,
 * ir_param or ir_build_named. */
int ir_build(IrGraph *g, IrOp op, const int *in, int nin, const IrAttr *attr, SrcLoc loc);
/* ir_build for any op, with the node's name: required (non-empty, unique in
 * g) for INPUT and PARAM, which plain ir_build refuses; must be NULL for
 * every other op. Lets a pass copy a graph node by node. */
int ir_build_named(IrGraph *g, IrOp op, const int *in, int nin, const IrAttr *attr, SrcLoc loc,
                   const char *name);
/* ir_build_named without the search for an INPUT or PARAM of the same name
 * (linear in the graph's leaves): for copying the leaves of a valid graph
 * one to one (passes/rewrite.c), where the caller vouches that 'name' is
 * not in g yet. Everything else is checked as ir_build_named does. */
int ir_build_copied(IrGraph *g, IrOp op, const int *in, int nin, const IrAttr *attr, SrcLoc loc,
                    const char *name);

int ir_input(IrGraph *g, const char *name, IrDType t, IrShape s, SrcLoc loc);
/* Returns the existing node if a PARAM of that name is already in g (error
 * if its shape differs). */
int ir_param(IrGraph *g, const char *name, IrShape s, IrInitKind init, double a, double b, SrcLoc loc);
/* Persistent non-trainable state (zeros at start); returns the existing
 * node if one of that name is in g (error if its shape differs). */
int ir_state(IrGraph *g, const char *name, IrShape s, SrcLoc loc);
/* ir_input, ir_param and ir_state for a caller that keeps its own index of
 * the names (the frontend): no search of g's leaves, which is linear in
 * their number and so quadratic over a graph with many. 'had' is the node
 * already called 'name' (its shape is checked as ir_param / ir_state do),
 * or -1: then the caller vouches that no leaf of g has that name. */
int ir_input_indexed(IrGraph *g, const char *name, IrDType t, IrShape s, SrcLoc loc);
int ir_param_indexed(IrGraph *g, int had, const char *name, IrShape s, IrInitKind init, double a, double b,
                     SrcLoc loc);
int ir_state_indexed(IrGraph *g, int had, const char *name, IrShape s, SrcLoc loc);
/* After a step, 'target' (PARAM or STATE) becomes 'value'. -1 on misuse. */
int ir_add_update(IrGraph *g, int target, int value, SrcLoc loc);
int ir_const(IrGraph *g, IrDType t, IrShape s, double value, SrcLoc loc);
int ir_scalar(IrGraph *g, IrDType t, double value, SrcLoc loc);   /* rank-0 CONST */
/* Elementwise unary ops without attributes (NEG ... GELU, STOP_GRADIENT);
 * CAST needs attr.dtype, so it goes through ir_build. */
int ir_unary(IrGraph *g, IrOp op, int x, SrcLoc loc);
/* Binary ops with numpy broadcasting: ranks are aligned on the right and
 * size-1 dims stretched, inserting RESHAPE/BROADCAST nodes as needed. */
int ir_binary(IrGraph *g, IrOp op, int a, int b, SrcLoc loc);
int ir_where(IrGraph *g, int cond, int a, int b, SrcLoc loc);          /* broadcasts all three */
/* ir_reshape, ir_broadcast_to and ir_permute return x itself (adding no
 * node) when x already has that shape / the permutation is the identity. */
int ir_reshape(IrGraph *g, int x, IrShape s, SrcLoc loc);
int ir_broadcast_to(IrGraph *g, int x, IrShape s, SrcLoc loc);         /* numpy rules, any ranks */
int ir_permute(IrGraph *g, int x, const int *perm, SrcLoc loc);
int ir_reduce(IrGraph *g, IrOp op, int x, uint32_t axes, bool keepdim, SrcLoc loc);

/* Replaces the outputs; names (or any NULL entry) default to "out" for a
 * single output, "out<i>" otherwise. On a bad id or a repeated name it sets
 * g->error and changes nothing. */
void ir_set_outputs(IrGraph *g, const int *ids, const char *const *names, int n);

/* ---- checking and printing (ir/verify.c, ir/print.c, ir/dot.c) ---- */
/* Re-checks every invariant (topological order, arity, shape rules,
 * input/param/output lists). Returns true if valid; else writes why into err. */
bool ir_verify(const IrGraph *g, char *err, size_t size);
void ir_print(const IrGraph *g, FILE *out);
void ir_print_dot(const IrGraph *g, FILE *out);
/* Total f32 elements over the graph's PARAM nodes. */
int64_t ir_param_count(const IrGraph *g);

#endif
