/* lower.h — from an IR graph and its fusion plan to an RtPlan and the
 * kernels the plan calls.
 *
 * Lowering decides everything about a compiled entry except the machine
 * code: the buffers (inputs, outputs, persistent state by name, constants,
 * arena intermediates and scratch), the steps in order (kernels, GEMMs,
 * copies), and for every kernel a CgKernel that says what it computes. The
 * LLVM emitter (codegen/llvm) turns each CgKernel into one function with
 * the RtKernelFn signature; nothing here depends on LLVM.
 *
 * How a fusion group becomes steps (see lower_group.c):
 *   - no reduction, no opaque op: one CG_KERNEL_LOOP over the root's shape
 *     storing every needed member whose index is the root's (reached from
 *     the root through elementwise/reshape edges only);
 *   - a reduction or row op root (sum, reduce_max, argmax, softmax,
 *     log_softmax, layer_norm, group_norm, cross_entropy): one row kernel
 *     that evaluates its prologue inline, and stores prologue members at
 *     the input index and epilogue members at the output index;
 *   - matmul: a GEMM step, then a LOOP kernel for the epilogue;
 *   - conv2d: im2col kernel + GEMM (+ epilogue loop); conv_transpose2d:
 *     GEMM + a col2im kernel (+ epilogue loop); a 3x3 stride-1 one of
 *     either may instead go through Winograd F(2x2,3x3) or F(4x4,3x3)
 *     (lower_winograd.c: weight, input and output transform kernels around
 *     16 or 36 batched GEMMs), and a 1x1 or strided one (and a
 *     conv2d_backward_weight) through the direct path (lower_direct.c:
 *     GEMMs on x, or on phase grids of x read at shifted offsets, without
 *     im2col); the choice per conv is cg_conv_pick's (conv_choice.c);
 *     conv2d_backward_weight: im2col + GEMM (accumulating over chunks of
 *     samples), or for a 3x3 stride-1 one Winograd (input and dy
 *     transforms, batched GEMMs accumulating dU, a dw transform);
 *     gather_backward: a scatter-add kernel; gumbel: a kernel that
 *     calls rt_gumbel_fill_range; attention and attention_backward: a
 *     kernel that calls rt_attn_forward / rt_attn_backward
 *     (runtime/sched/attention.h) over the (batch, head) items. Each is followed by an epilogue loop if
 *     the group has one (not a Winograd conv: its output kernel applies the epilogue, rule
 *     wino-epilogue; and a relu(group_norm) read only by a Winograd conv is computed by its
 *     input kernel from the norm's statistics, rule wino-prologue, lower_wino_fuse.c);
 *   - a needed member the main kernel cannot store (its index differs from
 *     the root's) gets a LOOP kernel of its own after the main one (e.g. a
 *     two-pass group's second sweep, reading the stored reduction).
 * Around that (lower.c):
 *   - a group of cheap expansions (a broadcast causal mask, a broadcast
 *     scale) read only by elemental kernels is recomputed inside them
 *     instead of being written out;
 *   - a group that only reshapes a write-once buffer aliases it;
 *   - state updates are written in place by their kernel when nothing
 *     reads the old value afterwards, else copied at the end (through
 *     staging buffers when updates read each other's targets: every
 *     update sees the values from before any of them);
 *   - an elementwise LOOP kernel stores an output over an input buffer
 *     that dies there, through one argument for both (lower_inplace.c);
 *   - kernels with identical code share one function (lower_dedupe.c);
 *   - arena offsets are placed at the end by passes/memplan.h's
 *     mem_plan_rt from the steps' uses (in-place pairs are one buffer by
 *     then, so every kernel argument stays noalias).
 * Data-dependent indices never make a kernel read or write out of bounds:
 * an out-of-range gather index reads zeros, an out-of-range onehot index
 * gives a zero row, an out-of-range cross_entropy target gives NaN, a
 * gather_backward index out of range adds nothing, and integer division by
 * zero gives 0 (the reference executor reports these as errors instead).
 * Indices that come straight from an entry's inputs are checked before the
 * plan runs (RtPlan.check), so bad input data is an error there too.
 *
 * Module prefix: cg_.
 */
#ifndef DAL_CODEGEN_LOWER_H
#define DAL_CODEGEN_LOWER_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "ir/ir.h"
#include "passes/fuse.h"
#include "runtime/sched/plan.h"
#include "runtime/core/rt_error.h"

typedef enum {
  CG_KERNEL_LOOP,          /* elemental loop over the root's shape (rows x inner, or flat) */
  CG_KERNEL_REDUCE,        /* root SUM / REDUCE_MAX / ARGMAX: one output element per iteration */
  CG_KERNEL_SOFTMAX,       /* root SOFTMAX / LOG_SOFTMAX: one row along the axis per iteration */
  CG_KERNEL_LAYER_NORM,    /* one row of the last axis per iteration */
  CG_KERNEL_GROUP_NORM,    /* one (sample, group) per iteration */
  CG_KERNEL_CROSS_ENTROPY, /* one row of logits per iteration */
  CG_KERNEL_IM2COL,        /* conv input samples -> col: one (c, ky, kx) row per iteration */
  CG_KERNEL_PACK,          /* a chunk of samples copied out, optionally as (A, nc, P) */
  CG_KERNEL_COL2IM,        /* conv_transpose2d: col -> one (sample, channel) output plane per iteration */
  CG_KERNEL_SCATTER_ADD,   /* gather_backward: a block of table columns per iteration */
  CG_KERNEL_GUMBEL,        /* rt_gumbel_fill_range over a block of elements per iteration */
  CG_KERNEL_WINO_WEIGHT,   /* Winograd U = G g G^T: one output channel o (all C) per iteration */
  CG_KERNEL_WINO_INPUT,    /* Winograd V = B^T d B: one (sample, channel) of the chunk per iteration */
  CG_KERNEL_WINO_OUTPUT,   /* Winograd y = A^T m A: one (sample, output channel) per iteration */
  CG_KERNEL_WINO_DY,       /* Winograd D = A dy A^T: one (sample, output channel) per iteration */
  CG_KERNEL_WINO_WGRAD,    /* Winograd dw = G^T dU G: one output channel o (all C) per iteration */
  CG_KERNEL_ATTENTION,     /* rt_attn_forward over a block of (batch, head) items per iteration */
  CG_KERNEL_ATTENTION_BWD, /* rt_attn_backward, likewise */
  CG_KERNEL_PHASE_WEIGHT,  /* direct strided conv: w <-> per-shift weights; one output channel per iteration */
  CG_KERNEL_PHASE_IN,      /* direct strided conv: x -> phase grids; one (phase, channel, sample) per iteration */
  CG_KERNEL_PHASE_OUT      /* direct strided conv: grids -> y; one (sample, output channel) per iteration */
} CgKernelKind;

/* A node whose value a kernel reads from, or writes to, kernel argument 'arg'. */
typedef struct {
  int node;
  int arg;
} CgNodeArg;

/* How a LOOP kernel gets its root's value when the root is not computed
 * elementally. */
typedef enum {
  CG_SRC_NONE,    /* the root is an ordinary member (or loaded) */
  CG_SRC_OFFSET   /* root at global flat index i = src[i - n0 * sample], sample =
                     the root's elements per sample (conv2d output chunks); in a
                     tiled window, (sample n0, row r, position p0 + c) at
                     src[r * tile + c] */
} CgRootSrc;

/* A convolution's geometry: x [N, C, H, W], w, output [N, O, OH, OW]. */
typedef struct {
  int64_t N, C, H, W, O, KH, KW, OH, OW;
  int stride, pad;
} CgConv;

typedef struct {
  CgKernelKind kind;
  char name[64];       /* the LLVM function's name (unique in its module) */
  const char *signature; /* its code's canonical description (lower_dedupe.c): kernels
                            with equal signatures, of any graphs, compile to the same code */
  int group;           /* the fusion group it comes from */
  int root;            /* the node that defines the iteration space */
  int64_t range;       /* parallel iterations (the step's range), >= 1 */
  int narg;
  int *arg;            /* buffer ids, distinct; the function's args[i] */

  /* Elemental evaluation (LOOP and the row kernels; loads also serve the
   * special kernels): members are computed inline from their inputs, loaded
   * nodes are read from their argument, CONST nodes are always inlined. */
  uint64_t *member;    /* a bitset over the graph's nodes (cg_is_member) */
  int caparg, capload, capstore; /* room in arg, load, store (they grow: cg_low_room) */
  int nload;
  CgNodeArg *load;
  int nstore;
  CgNodeArg *store;    /* stored at the iteration index (LOOP); in row kernels
                          store[0 .. nprologue) at the input index (prologue members,
                          in the pass that visits every input element once) and the
                          rest (the root, epilogue members) at the output index */
  int nprologue;

  /* LOOP: iteration space = the root's elements as rows x inner; if flat,
   * one digit over all 'total' elements, 'inner' of them per iteration.
   * REDUCE: inner > 0 selects column mode (the innermost axis is kept):
   * each iteration reduces 'inner' consecutive outputs at once, reading
   * consecutive inputs; inner == 0: one output per iteration. */
  bool flat;
  int64_t inner, total;
  /* A window of samples (conv chunks): the kernel covers samples
   * [n0, n0 + nc) of the root, n0 read as an int64 from argument base_arg
   * (-1: n0 = 0). The root's elements per sample are 'sample'.
   * With tile > 0 the window is one sample's run of 'tile' consecutive
   * positions of each plane of 'plane' positions (a block of output rows
   * of a convolution; nc = 1): the int64 at base_arg is then a chunk
   * number b, the sample n0 = b / (plane / tile) and the first position
   * p0 = (b % (plane / tile)) * tile. */
  int base_arg;
  int64_t nc, sample;
  int64_t tile, plane;
  CgRootSrc src;
  int src_arg;         /* CG_SRC_OFFSET: the GEMM's output for the chunk */

  /* IM2COL and COL2IM: geometry, and col's layout: element (q, j, pos) of
   * col at q * col_sq + j * col_sj + pos, q over (c, ky, kx) (IM2COL) or
   * (o, ky, kx) (COL2IM), j the sample in the chunk, pos over the output
   * (IM2COL) or input (COL2IM) positions. COL2IM adds each tap into its
   * output position of dst (plane zeroed first). A tiled IM2COL (tile > 0,
   * plane = OH * OW, tile a multiple of OW) fills the output rows of its
   * window only, pos counted from p0; a tiled COL2IM (plane = H * W) adds
   * the taps of its window's input rows, and zeroes the planes only in the
   * sample's first tile. */
  CgConv conv;
  int64_t col_sq, col_sj;
  int x_arg, col_arg;  /* IM2COL: input and col; COL2IM: col */

  /* PACK: dst = src samples [n0, n0 + nc), each (A, P); transposed: dst is
   * (A, nc, P), else (nc, A, P). Tiled (tile > 0, plane = P): positions
   * [p0, p0 + tile) of each row a, so dst is (A, nc, tile) or (nc, A, tile). */
  int64_t pack_a, pack_p;
  bool pack_t;
  int dst_arg;

  /* SCATTER_ADD: table (V, row) from idx (n) and grad (n, row), columns
   * [it * cols, min((it + 1) * cols, row)) per iteration 'it'. */
  int64_t sc_n, sc_v, sc_row, sc_cols;
  int idx_arg, grad_arg, table_arg;

  /* GUMBEL: out (total) with attr.salt, 'inner' elements per iteration. */
  int out_arg;
  uint32_t salt;

  /* WINO_*: F(2x2,3x3) over 'conv' seen as a stride-1 conv2d with a 3x3
   * kernel and padding conv.pad (a conv_transpose2d's equivalent conv2d:
   * pad 2 - pad, weight flipped and transposed, wino_flip). Output tiles:
   * th = ceil(OH / 2) rows of tw = ceil(OW / 2); a chunk covers samples
   * [n0, n0 + nc), all tiles, or (tile > 0, plane = th * tw) one sample's
   * tiles [p0, p0 + tile), tile a multiple of tw; wino_t tiles per chunk.
   * WINO_WEIGHT: x_arg = w ([O, C, 3, 3], flipped: [C, O, 3, 3]) ->
   * dst_arg = U [16, O, C]. WINO_INPUT: x_arg = x [N, C, H, W] -> col_arg =
   * V [16, C, wino_t] (a chunk's tiles in order). WINO_OUTPUT: col_arg = M
   * [16, O, wino_t] -> y [N, O, OH, OW], through its stores: y (the root)
   * and/or the group's epilogue members evaluated at y's index (rule
   * wino-epilogue), as a LOOP kernel's, y given by the transform. The weight gradient
   * (conv2d_backward_weight, conv its forward conv2d): WINO_INPUT as above;
   * WINO_DY: x_arg = dy [N, O, OH, OW] -> col_arg = D [16, O, wino_t];
   * WINO_WGRAD: x_arg = dU [16, O, C] -> dst_arg = dw [O, C, 3, 3]. */
  bool wino_flip;
  int64_t wino_t;
  /* Rule wino-prologue (lower_wino_fuse.c): a WINO_INPUT with wino_pro
   * computes its x, node wino_x, per element from group_norm wino_gn
   * (the value (h - mean) rstd gamma + beta, h = x_arg, its input) through
   * the kernel's members, mean and rstd of (sample n, group g) read from
   * stats_arg at 2 (n G + g) and 2 (n G + g) + 1. A GROUP_NORM kernel with
   * gn_stats stores just those statistics there (no output). */
  bool wino_pro, gn_stats;
  int wino_gn, wino_x, stats_arg;
  int wino_m;          /* the output tile: F(2x2,3x3) or F(4x4,3x3); 'a' = wino_m + 2 and
                          the a x a planes (16 or 36) replace 4 and 16 above */

  /* ATTENTION(_BWD): range = the (batch, head) items, each q [n, d], k and
   * v [m, d]; attn_arg[i] is input i's argument (q, k, v, mask, and for
   * the backward y and dy), out_arg the result's. */
  int64_t attn_n, attn_m, attn_d;
  double attn_scale;
  int attn_arg[6];

  /* PHASE_*: the direct path of a stride-s convolution whose kernel is a
   * multiple of s (lower_direct.c): values live on grids of ph_r x ph_w
   * positions per sample (a chunk of nc samples: [.., nc, ph_r, ph_w]).
   * PHASE_IN: x_arg = x [N, C, H, W] (samples n0 ..) -> dst_arg = grids
   * [ph_n * ph_n, C, nc, ph_r, ph_w]: grid (a, b) position (r, t) holds
   * x[c, ph_step r + a - ph_off, ph_step t + b - ph_off] (0 outside x),
   * then ph_slack zeros. PHASE_OUT: x_arg = grids [ph_n * ph_n, O, nc,
   * ph_r, ph_w] -> dst_arg = y [N, O, OH, OW]: y[Y, X] from grid
   * ((Y + ph_off) % ph_n, (X + ph_off) % ph_n) at ((Y + ph_off) / ph_n,
   * (X + ph_off) / ph_n). PHASE_WEIGHT: between w ([O, C, KH, KW], or
   * [C, O, KH, KW] if ph_tr) and Ws [shift (dy, dx)][O][sub-tap (a, b)][C]
   * (the per-shift GEMM operands; conv.KH = s mh): w -> Ws, or Ws -> w
   * when ph_inv (a weight gradient). */
  int64_t ph_r, ph_w, ph_slack;
  int ph_n, ph_step, ph_off;
  bool ph_tr, ph_inv;
} CgKernel;

/* How convolutions are lowered (dalc -fconv=...; codegen/conv_choice.c).
 * AUTO: cg_conv_pick's cost rule; IM2COL: im2col + GEMM everywhere (a 1x1
 * stride-1 unpadded conv2d, whose im2col is the identity, still reads x
 * as it is); WINOGRAD, WINOGRAD4: Winograd F(2x2,3x3) or F(4x4,3x3) for
 * every convolution it can compute, im2col for the rest; DIRECT: the
 * direct path (lower_direct.c) for every convolution it can compute,
 * im2col for the rest. The order is the names' (cg_conv_algo_parse) and
 * FuseOptions.conv_algo's (value + 1). */
typedef enum { CG_CONV_AUTO, CG_CONV_IM2COL, CG_CONV_WINOGRAD, CG_CONV_DIRECT, CG_CONV_WINOGRAD4 } CgConvAlgo;

/* Process-wide default, like cg_set_col_budget (AUTO unless set): what a
 * fusion plan whose options leave conv_algo at 0 is lowered with. dalc
 * puts -fconv in its FuseOptions instead, so that programs compiled in
 * one process (bench --compare's variants) may differ. */
void cg_set_conv_algo(CgConvAlgo a);
CgConvAlgo cg_conv_algo(void);
/* "auto", "im2col", "winograd", "direct" or "winograd4" -> *a; false for
 * anything else. */
bool cg_conv_algo_parse(const char *name, CgConvAlgo *a);
/* a's -fconv name: "auto", "im2col", "winograd", "direct" or "winograd4". */
const char *cg_conv_algo_flag(CgConvAlgo a);
/* The algorithm a plan made with options o is lowered with (o may be NULL). */
CgConvAlgo cg_conv_algo_of(const FuseOptions *o);

/* How conv node v (conv2d, conv_transpose2d or conv2d_backward_weight) is
 * computed under 'algo': CG_CONV_IM2COL, CG_CONV_WINOGRAD (F(2x2,3x3)),
 * CG_CONV_WINOGRAD4 (F(4x4,3x3)) or CG_CONV_DIRECT (never AUTO); *why (may
 * be NULL) gets a short reason.
 *  - Winograd: a 3x3 kernel, stride 1 and pad <= 2 (a weight gradient also
 *    some output positions); AUTO also wants C >= 16 and O >= 16 (below
 *    that the GEMMs are too thin to pay for the transforms) and >= 8x8
 *    output positions, and takes F(2x2,3x3) in training steps and
 *    F(4x4,3x3) in entries that do not train (F(4x4,3x3)'s float32 error,
 *    CG_WINOGRAD4_REL_TOL, is above the 1e-5 asked of a training step,
 *    whose AdamW update amplifies it; an inference output tolerates it).
 *  - under AUTO, a conv whose shape the measured conv table holds
 *    (cg_conv_table_*, `dalc tune-conv`) takes the fastest algorithm it
 *    measured among those the rules above allow, instead of the rules.
 *  - direct: a 1x1 stride-1 unpadded convolution (plain GEMMs on x, no
 *    im2col, no col2im), or a stride-s >= 2 one with a square kernel whose
 *    side is a multiple of s (the phase decomposition, lower_direct.c);
 *    AUTO takes it for 1x1 conv2d and conv_transpose2d, and for a strided
 *    conv2d whose phase grid adds at most 3% positions to its output
 *    (conv_choice.c has the measurements behind the rule). */
CgConvAlgo cg_conv_pick(const IrGraph *g, int v, CgConvAlgo algo, const char **why);
/* Whether a picked algorithm is one of the Winograd ones. */
bool cg_conv_is_winograd(CgConvAlgo a);
/* The Winograd output tile cg_conv_pick gives v under 'algo': 0 (not
 * Winograd), 2 (F(2x2,3x3)) or 4 (F(4x4,3x3)). */
int cg_conv_wino_m(const IrGraph *g, int v, CgConvAlgo algo, const char **why);
/* Whether v is lowered through Winograd under the process-wide default. */
bool cg_conv_choose(const IrGraph *g, int v, const char **why);
/* One line per convolution of g (conv2d, conv_transpose2d and
 * conv2d_backward_weight): its shape and the algorithm 'algo' gives it. */
void cg_conv_print_choices(const IrGraph *g, CgConvAlgo algo, FILE *out);
/* The name of a picked algorithm: "im2col + GEMM", "winograd F(2x2,3x3)",
 * "winograd F(4x4,3x3)", "direct". */
const char *cg_conv_algo_name(CgConvAlgo a);

/* The largest relative error of Winograd F(2x2,3x3) against the reference
 * executor (which computes in double) that the tests accept: max-abs
 * difference over max-abs of the reference output. The f32 transforms add
 * a few roundings per output; measured on every 3x3 conv of the dVAE tiny,
 * bench and paper configs (inputs uniform in [-2.5, 2.5]): 1.3e-7 .. 7.8e-7,
 * growing slowly with C (tests/test_conv_algo.c prints them). */
#define CG_WINOGRAD_REL_TOL 5e-6
/* The same for F(4x4,3x3) (-fconv=winograd4), and for the dVAE tiny's
 * gradients and AdamW step under it: its transforms have larger
 * coefficients (up to 8 and 1/24), so float32 rounding grows ~15x.
 * Measured on the same shapes, forward, backward-data and weight gradient:
 * 1.5e-6 .. 1.1e-5; the dVAE tiny gradients 5.2e-6, its AdamW step 2.9e-5
 * (the step divides by sqrt(v): the test's eps 1e-3 amplifies). Above the
 * 1e-5 the project asks of a training step, so AUTO picks it only in
 * entries that do not train. (The
 * points 0, +-1, +-1/2 instead of 0, +-1, +-2 measured no better.) */
#define CG_WINOGRAD4_REL_TOL 5e-5

/* The axes of x (shape) as alternating runs of kept and reduced axes
 * (size-1 axes dropped): ext[b] elements each, red[b] if reduced. Returns
 * the number of runs. Lowering and the emitter agree on it. */
int cg_reduce_blocks(const IrShape *x, uint32_t axes, int64_t *ext, bool *red);

/* A lowered entry: the plan (kernel addresses still NULL) and its kernels. */
typedef struct {
  const IrGraph *g;    /* borrowed: must outlive this */
  RtPlan plan;
  int nkernel;
  CgKernel *kernel;    /* plan.kernel_name[i] == kernel[i].name */
  RtKernelFn *fn;      /* (nkernel) plan.kernel points here; filled by the JIT */
  int64_t arena_lower_bound, arena_no_reuse; /* the memory plan's bound and no-reuse sum */
  int in_place;        /* elementwise kernels storing an output over an input that dies there */
  int conv_winograd, conv_im2col; /* convolutions (conv2d, conv_transpose2d) by algorithm */
  int conv_direct;     /* conv2d and conv_transpose2d through the direct path */
  int wgrad_winograd, wgrad_im2col, wgrad_direct; /* weight gradients (conv2d_backward_weight) by algorithm */
  int winograd4;       /* of the Winograd ones above (both kinds), those through F(4x4,3x3) */
  /* Rule wino-share-u (codegen/lower_wino_share.c): */
  int wino_weight_kernels; /* Winograd weight transforms (U = G g G^T kernels) in the plan */
  int wino_shared;     /* Winograd convs reading another conv's U instead (no weight kernel) */
  int64_t wino_share_saved; /* bytes of U those convs did not compute */
  int64_t wino_share_added; /* growth of the arena's lower bound (the most bytes live at
                               one step) from the U kept alive */
  int *wino_u_from;    /* (g->n) per conv node: the conv whose U it reads, else -1 */
  int *wino_u_step;    /* (g->n) per conv node computing its own U (F(2x2,3x3)): the
                          step of its weight kernel (U is that kernel's dst_arg), else -1 */
  int wino_epilogue;   /* Winograd convs whose output transform stores the group's epilogue (rule
                          wino-epilogue): no epilogue loop */
  int wino_prologue;   /* Winograd input transforms that compute their elementwise x on the fly
                          (rule wino-prologue): x is neither stored nor read from memory */
  const signed char *wino_fused; /* (g->n) per conv node, CG_WINO_FUSED_* bits: what its
                          transforms fused; NULL if no conv fused anything */
  void *pool;          /* every allocation above */
} CgLowered;

/* CgLowered.wino_fused bits. */
#define CG_WINO_FUSED_EPILOGUE 1 /* the output transform applies the group's epilogue */
#define CG_WINO_FUSED_PROLOGUE 2 /* the input transform computes x from a group_norm */

/* --explain-fusion: one line per Winograd conv of g lowered under plan p,
 * saying what its transforms fused (rules wino-epilogue, wino-prologue),
 * and why not where its input is a relu(group_norm) left in memory. */
void cg_wino_fuse_explain(const IrGraph *g, const FusePlan *p, FILE *out);

/* Lowers g with plan p (groups in p's order). 'prefix' (may be NULL) starts
 * every kernel name, to keep names unique across modules. Returns NULL with
 * e->msg set if the graph is invalid or the plan breaks fuse.h's contract
 * (a group with two reductions, an opaque op inside a loop group, ...). */
CgLowered *cg_lower(const IrGraph *g, const FusePlan *p, const char *prefix, RtErr *e);
void cg_lowered_free(CgLowered *l);

/* Bytes one im2col/col buffer may take before a convolution is split into
 * chunks of samples, or tiles of output rows (default 4 MiB, so a chunk's
 * col stays in cache from its im2col to its GEMM); process-wide, a tuning
 * knob (tests change it to exercise chunking). */
void cg_set_col_budget(int64_t bytes);

/* Rule wino-share-u (--fuse-rule=+wino-share-u, codegen/lower_wino_share.c):
 * an F(2x2,3x3) convolution reads the Winograd weight transform U of an
 * earlier one on the same weight node instead of computing its own: a
 * training step's input gradient (conv_transpose2d(dy, w)) reads its
 * forward conv2d's U transposed, planes permuted (G rev(g) = S G g, S
 * swapping rows 0 and 3). That keeps U alive from the forward to the
 * backward; with the check on (the default) a conv shares only if the U
 * kept alive does not raise the planned peak of live bytes; off (tests,
 * measurements): every candidate shares. Process-wide, like the col
 * budget; until set, on unless the environment has DAL_WINO_SHARE_ALL=1. */
void cg_set_wino_share_check(bool on);
/* One line per conv of l reading another's U: "; conv %b reads the U of %f". */
void cg_wino_share_print(const CgLowered *l, FILE *out);

/* Prints the plan: buffers, then steps with their arguments. */
void cg_lowered_print(const CgLowered *l, FILE *out);

/* ---- a fusion plan from an explicit grouping (codegen/fuse_basic.c) ---- */

/* Groups given by group_of[node] (any ints; equal = same group); INPUT,
 * PARAM, STATE and CONST nodes are always leaf groups of their own.
 * Computes members, root, in, out and kind, and orders the groups
 * topologically (ties by smallest member id). NULL with a message in err if
 * the groups form a cycle. Free with fuse_plan_free (passes/fuse.h). */
FusePlan *cg_fuse_from_groups(const IrGraph *g, const int *group_of, char *err, size_t errsize);

/* Whether node v is a member of kernel k (k->member is a bitset: a kernel
 * of a group with thousands of kernels costs n/64 words, not n bytes). */
static inline bool cg_is_member(const CgKernel *k, int v) {
  return (k->member[v >> 6] >> (v & 63)) & 1;
}

static inline void cg_set_member(CgKernel *k, int v, bool on) {
  uint64_t bit = UINT64_C(1) << (v & 63);
  k->member[v >> 6] = on ? k->member[v >> 6] | bit : k->member[v >> 6] & ~bit;
}

#endif
