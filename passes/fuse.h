/* fuse.h — the fusion plan: a partition of a graph's nodes into kernels.
 *
 * The fusion pass (passes/fuse.c) decides which nodes share a kernel;
 * codegen emits one kernel (or library call) per group; the memory planner
 * allocates one buffer per group output. The plan is an analysis: it does
 * not change the graph. Module prefix: fuse_.
 */
#ifndef DAL_PASSES_FUSE_H
#define DAL_PASSES_FUSE_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "ir/ir.h"

typedef enum {
  FUSE_LEAF,    /* one INPUT, PARAM, STATE or CONST node: a buffer, no kernel */
  FUSE_LOOP,    /* elementwise / broadcast / injective members, at most one
                   reduction (softmax-like row ops count as one): one loop nest */
  FUSE_OPAQUE   /* one PAT_OPAQUE op (matmul, conv, norms, gumbel, ...) plus
                   the elementwise epilogue fused into it, if any */
} FuseKind;

typedef struct {
  FuseKind kind;
  int root;   /* the member that defines the group's iteration space: its
                 last reduction or opaque op, else its last member */
  int n;
  int *node;  /* members, in increasing id (topological) order */
  int nout;
  int *out;   /* members whose values are read outside the group, are
                 graph outputs or update values: each gets a buffer */
  int nin;
  int *in;    /* non-member nodes that members read: the kernel's inputs */
} FuseGroup;

/* Where a member is evaluated inside its group's loop nest (FusePlan.level).
 * The domain of a group is the root's shape for a FUSE_OPAQUE group and for
 * a FUSE_LOOP group without a reduction; for a FUSE_LOOP group whose root is
 * a reduction R it is R's input shape (for cross_entropy, the logits'), cut
 * into rows: one row per element of R's output (SUM, REDUCE_MAX, ARGMAX,
 * CROSS_ENTROPY) or per vector along attr.axis (SOFTMAX, LOG_SOFTMAX). */
typedef enum {
  FUSE_AT_ELEM, /* once per element of the domain (leaf groups: always this) */
  FUSE_AT_ROW,  /* once per row: R, the members computed from R's result at
                   its shape (the reduced-shape epilogue) and other values of
                   that shape the epilogue reads (e.g. cross_entropy's target) */
  FUSE_AT_ANY   /* cheap to repeat: depends on no loop index (a scalar chain),
                   only on constants and indices (a broadcast constant, an iota
                   mask), or is a view (reshape, permute, slice, broadcast) of
                   a value in memory: evaluated wherever it is read; never an out */
} FuseLevel;

/* The fusion rules by name (passes/fuse_rule_table.c holds the table:
 * name, default, one-line description). The switches come first, in the
 * order of their bits in FuseOptions.rules_off / rules_on; each join of a
 * producer into a group is allowed by exactly one switch (fuse_rules.c,
 * join_rule), so with every switch but in-place off each node is a kernel
 * of its own, as with -fno-fuse. The constraints after them keep a plan
 * correct: they cannot be switched, and are named only so that
 * --explain-fusion can say which one refused an edge. Order matters:
 * FUSE_RULE_NSWITCH separates the two. */
typedef enum {
  FUSE_RULE_ELEMENTWISE,     /* elementwise and movement ops into the loop that reads them */
  FUSE_RULE_RECOMPUTE,       /* views, constants and scalars recomputed in each reader */
  FUSE_RULE_SIBLINGS,        /* loops sharing a view or constant merged (multi-output) */
  FUSE_RULE_REDUCE_PROLOGUE, /* the work feeding a reduction computed in its row loop */
  FUSE_RULE_REDUCE_EPILOGUE, /* a reduction takes the loop that reads its result */
  FUSE_RULE_TWO_PASS,        /* a row value read back at the input shape: a second sweep */
  FUSE_RULE_EPILOGUE,        /* matmul, conv, norms, gumbel take an elementwise epilogue */
  FUSE_RULE_IN_PLACE,        /* (codegen) an output stored over an input that dies there */
  FUSE_RULE_ATTENTION,       /* (graph rewrite, passes/attention.h) matmul-softmax-matmul as one attention op */
  FUSE_RULE_REMAT,           /* (pass remat) cheap values recomputed after the memory peak */
  FUSE_RULE_LN_PROLOGUE,     /* a layer_norm read only by a small-M GEMM is computed in the GEMM step */
  FUSE_RULE_WINO_SHARE_U,    /* (codegen) a Winograd conv reads another's weight transform U on its weight */
  FUSE_RULE_WINO_EPILOGUE,   /* (codegen) a Winograd conv's output transform evaluates its group's epilogue */
  FUSE_RULE_WINO_PROLOGUE,   /* (codegen) a Winograd conv's input transform evaluates its elementwise producer */
  FUSE_RULE_NSWITCH,         /* the constraints follow */
  FUSE_RULE_NO_DUPLICATION = FUSE_RULE_NSWITCH, /* one group computes each node */
  FUSE_RULE_OPAQUE_OPERANDS, /* an opaque op reads its operands from memory */
  FUSE_RULE_NO_CYCLES,       /* no path leaves a group and comes back */
  FUSE_RULE_EXPANSION,       /* only cheap values are read through an expanding edge */
  FUSE_RULE_OUTS,            /* returned and updated values are stored once per element */
  FUSE_RULE_ONE_REDUCTION,   /* at most one reduction (row space) per kernel */
  FUSE_RULE_ROWS_IN_ORDER,   /* nothing per row is permuted, sliced or gathered */
  FUSE_RULE_DATA_DEPENDENT,  /* gather tables and indices are read from memory */
  FUSE_RULE_EPILOGUE_SHAPE,  /* an opaque op's epilogue is elementwise at its shape */
  FUSE_RULE_KERNEL_INPUTS,   /* a kernel reads at most FUSE_MAX_INPUTS buffers */
  FUSE_RULE_COUNT
} FuseRule;

typedef struct {
  const char *name;  /* stable: what --fuse-rule and --explain-fusion say */
  bool is_switch;    /* false: a constraint, always on */
  bool default_on;
  const char *help;  /* one line */
} FuseRuleInfo;

/* The table, indexed by FuseRule (FUSE_RULE_COUNT rows). */
extern const FuseRuleInfo fuse_rule_info[FUSE_RULE_COUNT];

typedef struct {
  bool enabled;      /* false (-fno-fuse): every node is its own group */
  bool single_pass;  /* true: no two-pass groups (a reduction's result read
                        back at its input's shape always starts a new group);
                        the same as rule two-pass off */
  /* Added after the first version of this header. Zero (the default)
   * leaves every rule at its default. */
  uint32_t rules_off; /* bit r: switch r off (--fuse-rule=-NAME) */
  uint32_t rules_on;  /* bit r: switch r on (--fuse-rule=+NAME); off wins */
  /* Added later still. A codegen switch carried with the plan like
   * in-place: how convolutions are lowered (dalc -fconv), a CgConvAlgo
   * (codegen/lower.h) plus 1; 0: the process-wide default. */
  int conv_algo;
} FuseOptions;

/* Is rule r on under o (NULL: the defaults)? Constraints always are. */
bool fuse_rule_on(const FuseOptions *o, FuseRule r);
/* The rule called name, or -1. */
int fuse_rule_find(const char *name);
/* Applies a --fuse-rule value to o: a comma list of +NAME / -NAME, left to
 * right (each also undoes an earlier opposite). +NAME of a fusion rule
 * while o->enabled is false (-fno-fuse) re-enables fusion with every other
 * fusion switch off, so "-fno-fuse --fuse-rule=+epilogue" fuses epilogues
 * only. Returns 0, or -1 with a message in err (an unknown name lists the
 * switches; a constraint cannot be switched). o is unchanged on error. */
int fuse_rule_apply(FuseOptions *o, const char *spec, char *err, size_t size);
/* The rule table as text, one rule a line (dalc fuse-rules). */
void fuse_rule_print(FILE *out);

typedef struct {
  int ngroup;
  FuseGroup *group;  /* in a valid execution order (topological over groups) */
  int *group_of;     /* group index of every node of the graph */
  int nrefused;      /* refused producer->consumer edges, for --explain-fusion */
  struct {
    int producer, consumer;
    char why[160];
    int rule;        /* the FuseRule that refused it */
  } *refused;
  /* Added after the first version of this header (fields above unchanged): */
  FuseLevel *level;  /* (g->n) each node's level in its group; NULL in plans
                        not made by fuse_plan */
  signed char *joined_by; /* (g->n) the switch (FuseRule) that let each node
                        join its group, -1 for a group's first member; NULL
                        in plans not made by fuse_plan */
  FuseOptions opt;   /* the options the plan was made with (lowering reads
                        the codegen switches, e.g. in-place, from here);
                        zero in plans not made by fuse_plan: the defaults */
  int *ln_into;      /* (g->n) rule ln-prologue: for a layer_norm folded into
                        the prologue of the matmul that reads it, that
                        matmul (its own group is then lowered to nothing);
                        -1 for every other node. NULL: nothing folded */
} FusePlan;


/* Partitions g's nodes. Deterministic: ties are broken by node id.
 *
 * Besides fuse.h's struct invariants, a plan from fuse_plan guarantees
 * (the rules, each with its refusal reason, are in passes/fuse_rules.c):
 *  - no duplication: every node is computed by one group only; other
 *    groups read it from its buffer (it is an out). Loop groups over the
 *    same shape that share a view or a constant-like input may be merged
 *    into one multi-output group;
 *  - a FUSE_LOOP group has no opaque op and at most one reduction (SUM,
 *    REDUCE_MAX, ARGMAX, SOFTMAX, LOG_SOFTMAX, CROSS_ENTROPY), its root.
 *    The ELEM members R depends on are its prologue (evaluated inside R's
 *    loop over a row); the ROW members come after R, once per row. Any
 *    other ELEM member makes a two-pass group: a second sweep over the row
 *    after R, reading R's row values through a BROADCAST (or ONEHOT) that
 *    expands exactly R's reduced axes (e.g. x - max(x) or e / sum(e) along
 *    rows). Only SUM, REDUCE_MAX, ARGMAX and CROSS_ENTROPY roots have ROW
 *    members or two passes; a SOFTMAX / LOG_SOFTMAX group is all ELEM;
 *  - a FUSE_OPAQUE group is one opaque op (the root) plus, possibly, an
 *    elementwise epilogue at the root's shape (ELEM members: elementwise
 *    ops, RESHAPE, BROADCAST; ANY members), evaluated after the op, reading
 *    its result at the same index. The root's operands are never members.
 *    The root is an out only if it is read outside the group or returned;
 *  - every out is at ELEM or ROW and is indexed by the loop: an ELEM out
 *    has the domain's element count and the domain's flat index, a ROW out
 *    the row count and the row's flat index (its shape may differ by a
 *    reshape). So one loop nest stores every out exactly once.
 * Returns NULL only if out of memory. */
FusePlan *fuse_plan(const IrGraph *g, const FuseOptions *o);
void fuse_plan_free(FusePlan *p);
/* Rule ln-prologue (passes/fuse_ln.c): a layer_norm whose value is read
 * by nothing but operand A of one matmul (not transposed, B a shared
 * rank-2 weight, so A's rows are the GEMM's M rows in one block) with at
 * most FUSE_LN_MAX_ROWS rows is folded into that GEMM step: the step
 * normalises the few rows itself (RtGemm.ln) and the layer_norm's kernel
 * and buffer disappear. These are the KV-cached decode steps' GEMMs, run
 * by the small-M kernel (runtime/sched/gemm_small.h, the same bound), whose
 * A rows fit in L1 (at most FUSE_LN_MAX_ELEMS elements). A training step's layer_norm is never folded: its
 * 1000s of rows go to OpenBLAS, which would then read a scratch copy of A
 * as large as the buffer saved, and its value is kept for the matmul's
 * weight gradient anyway (a second reader), so the kernel and buffer stay.
 * Sets p->ln_into (allocating it); returns how many were folded, -1 if out
 * of memory. */
/* Rule kernel-inputs: the buffers one kernel may read (the models' kernels
 * read at most 8). LLVM's compile time grows with the square of a kernel's
 * loads: a loop adding up N parameters, one kernel, took minutes. */
#define FUSE_MAX_INPUTS 256

#define FUSE_LN_MAX_ROWS 32
#define FUSE_LN_MAX_ELEMS 8192 /* rows x features: 32 KiB, L1 (RT_GEMM_LN_MAX_ELEMS) */
int fuse_ln_prologue(const IrGraph *g, FusePlan *p);
/* Why layer_norm ln (read by matmul mm) was not folded: NULL if it was or
 * if the pair is not a candidate at all (mm does not read ln as A). */
const char *fuse_ln_refusal(const IrGraph *g, const FusePlan *p, int ln, int mm, char *buf, size_t size);

/* Number of groups that need a kernel or library call (not FUSE_LEAF), not
 * counting layer_norms folded into a GEMM (ln-prologue). */
int fuse_kernel_count(const FusePlan *p);
/* One line per refused edge: "%12 -> %15 (softmax): why", the op being
 * the producer's. */
void fuse_explain(const IrGraph *g, const FusePlan *p, FILE *out);
/* Kahn's algorithm over items 0..n-1 with successors succ[first[i] ..
 * first[i+1]) and in-degrees indeg[] (consumed): writes the items to
 * order[] (leaving out those with skip[i], which must have no edges; skip
 * may be NULL), ready items taken smallest key[] first. Returns how many
 * were ordered (fewer than the items not skipped means a cycle), -1 if out
 * of memory. */
int fuse_topo_order(int n, const int *first, const int *succ, int *indeg, const int *key, const bool *skip,
                    int *order);
/* The graph in Graphviz with one cluster per group. */
void fuse_print_dot(const IrGraph *g, const FusePlan *p, FILE *out);

#endif
