/* conv_choice.c — which algorithm computes each convolution (lower.h
 * cg_conv_pick): im2col + GEMM (lower_gemm.c), Winograd F(2x2,3x3) or
 * F(4x4,3x3) (lower_winograd.c) or the direct path (lower_direct.c), from the conv's
 * shape, stride, padding and kind, under dalc's -fconv.
 *
 * The AUTO rule, and what it rests on (DAL_PROFILE=1 of the dVAE bench
 * step, both algorithms in one `bench --compare` run, 2 threads, per conv
 * the GEMMs plus the copy kernels around them):
 *  - Winograd F(2x2,3x3) for 3x3 stride-1 convs and their weight
 *    gradients with C, O >= 16 and >= 64 output positions: 2.25x fewer
 *    multiplies than im2col, for transforms that cost little next to the
 *    GEMMs once those are not thin. In an entry that does not train
 *    (encode, tokens, decode: no gradient, no optimizer) F(4x4,3x3)
 *    instead: 4x fewer multiplies than im2col, for a float32 error up to
 *    ~1.1e-5 per conv (bound CG_WINOGRAD4_REL_TOL), which an inference
 *    output tolerates (the paper forward: 10% faster than F(2x2)); a
 *    training step keeps F(2x2,3x3), whose error stays near 5e-7, so that
 *    AdamW's sign-sensitive first steps match the reference;
 *  - direct for 1x1 stride-1 unpadded conv2d and conv_transpose2d: the
 *    GEMMs are im2col's, without its copy or col2im (the backward-data
 *    1x1s of the bench: 20% faster); not for their weight gradient, whose
 *    direct GEMMs take one sample's positions as K (64 at 8x8) and ran
 *    15-20% slower than im2col's one GEMM over the batch;
 *  - direct for a strided conv2d (kernel a multiple of the stride) whose
 *    phase grid adds at most 3% positions to the output, (OH + KH/s - 1)
 *    (OW + KW/s - 1) <= 1.03 OH OW (outputs of about 100x100 and up): the
 *    GEMMs compute the grid's extra rows and columns too, which the saved
 *    im2col copy (about 3% of the GEMM's time) pays for on large planes
 *    only. Measured, direct against im2col: paper encoder 128x128 outputs
 *    (1.6% more positions) 3.6% faster, 64x64 (3.1%) even, 32x32 at
 *    C = 512 (6.3%) 14% slower; bench 32x32 at C = 64 (6.3%) 5% faster,
 *    16x16 (13%) 11% slower, 8x8 (27%) 21% slower;
 *  - im2col for strided conv_transpose2d and weight gradients: their
 *    direct forms measured 8-50% slower on every bench shape (the
 *    transposed conv's grid adds a halo of one input row and column
 *    around every phase, 13% to 56% more positions);
 *  - im2col for the rest. -fconv=direct forces the direct path wherever it
 *    applies (that is how the numbers above were measured).
 * Those rules stand where the measured conv table (conv_table.h, `dalc
 * tune-conv`) has no row for the shape; where it has one, AUTO takes the
 * fastest algorithm measured there among those the rules' accuracy limit
 * allows. */
#include <stdatomic.h>
#include <string.h>

#include "codegen/conv_table.h"
#include "codegen/lower_impl.h"

static _Atomic int conv_algo = CG_CONV_AUTO;

void cg_set_conv_algo(CgConvAlgo a) { atomic_store(&conv_algo, (int)a); }
CgConvAlgo cg_conv_algo(void) { return (CgConvAlgo)atomic_load(&conv_algo); }

static const char *const algo_names[] = {"auto", "im2col", "winograd", "direct", "winograd4"};

bool cg_conv_algo_parse(const char *name, CgConvAlgo *a) {
  for (int i = 0; i < 5; i++)
    if (!strcmp(name, algo_names[i])) {
      *a = (CgConvAlgo)i;
      return true;
    }
  return false;
}

CgConvAlgo cg_conv_algo_of(const FuseOptions *o) {
  if (o && o->conv_algo >= 1 && o->conv_algo <= 5) return (CgConvAlgo)(o->conv_algo - 1);
  return cg_conv_algo();
}

const char *cg_conv_algo_flag(CgConvAlgo a) { return algo_names[a]; }

const char *cg_conv_algo_name(CgConvAlgo a) {
  switch (a) {
  case CG_CONV_WINOGRAD: return "winograd F(2x2,3x3)";
  case CG_CONV_WINOGRAD4: return "winograd F(4x4,3x3)";
  case CG_CONV_DIRECT: return "direct";
  case CG_CONV_IM2COL:
  case CG_CONV_AUTO: break;
  }
  return "im2col + GEMM";
}

/* The smallest channel counts and output positions for which AUTO picks
 * Winograd: the 16 GEMMs have M = O and K = C, so thin ones run far below
 * OpenBLAS's roof and the transforms' memory traffic dominates. */
#define AUTO_MIN_CHANNELS 16
#define AUTO_MIN_POSITIONS 64
/* The largest phase grid, in percent of the output positions, for which
 * AUTO sends a strided conv2d to the direct path (see the top). */
#define AUTO_MAX_GRID_PCT 103

/* Whether Winograd can compute cv (of a conv2d, conv_transpose2d or a
 * weight gradient with some output positions: else dw = 0, which im2col's
 * GEMM writes). */
static bool winograd_can(IrOp op, const CgConv *cv) {
  if (op == OP_CONV2D_BACKWARD_WEIGHT && cv->N * cv->OH * cv->OW == 0) return false;
  return cv->KH == 3 && cv->KW == 3 && cv->stride == 1 && cv->pad <= 2;
}

/* Whether the direct path can compute cv; *kind gets which form. */
static bool direct_can(const CgConv *cv, const char **kind) {
  if (cv->KH == 1 && cv->KW == 1 && cv->stride == 1 && cv->pad == 0) {
    *kind = "1x1 stride 1: GEMMs on x";
    return true;
  }
  if (cv->stride >= 2 && cv->KH == cv->KW && cv->KH % cv->stride == 0) {
    *kind = "stride s, kernel a multiple of s: phase grids";
    return true;
  }
  *kind = "not 1x1 stride 1 pad 0, nor stride s >= 2 with a square kernel that is a multiple of s";
  return false;
}

/* AUTO on a shape the measured table holds: the fastest measured
 * algorithm among those that apply (no F(4x4,3x3) in a training step). */
static CgConvAlgo table_pick(const CgConvTableRow *row, bool wino, bool direct, bool train, const char **why) {
  bool ok[CG_CONV_TABLE_NALGO] = {false, true, wino, direct, wino && !train};
  CgConvAlgo best = CG_CONV_IM2COL;
  for (int a = 1; a < CG_CONV_TABLE_NALGO; a++)
    if (ok[a] && row->ms[a] >= 0 && (row->ms[best] < 0 || row->ms[a] < row->ms[best])) best = (CgConvAlgo)a;
  static _Thread_local char buf[200];
  int n = snprintf(buf, sizeof buf, "auto: measured (conv table):");
  for (int a = 1; a < CG_CONV_TABLE_NALGO && n < (int)sizeof buf; a++)
    if (ok[a] && row->ms[a] >= 0)
      n += snprintf(buf + n, sizeof buf - (size_t)n, " %s %.3g ms", algo_names[a], row->ms[a]);
  *why = buf;
  return best;
}

CgConvAlgo cg_conv_pick(const IrGraph *g, int v, CgConvAlgo algo, const char **why) {
  const char *dummy;
  if (!why) why = &dummy;
  IrOp op = g->node[v].op;
  if (op != OP_CONV2D && op != OP_CONV_TRANSPOSE2D && op != OP_CONV2D_BACKWARD_WEIGHT) {
    *why = "not a convolution";
    return CG_CONV_IM2COL;
  }
  CgConv cv = cg_low_conv_geom(g, v);
  bool wino = winograd_can(op, &cv);
  const char *dkind;
  bool direct = direct_can(&cv, &dkind);
  switch (algo) {
  case CG_CONV_IM2COL: *why = "-fconv=im2col"; return CG_CONV_IM2COL;
  case CG_CONV_WINOGRAD:
    *why = wino ? "-fconv=winograd" : "-fconv=winograd, but not 3x3, stride 1, pad <= 2";
    return wino ? CG_CONV_WINOGRAD : CG_CONV_IM2COL;
  case CG_CONV_WINOGRAD4:
    *why = wino ? "-fconv=winograd4" : "-fconv=winograd4, but not 3x3, stride 1, pad <= 2";
    return wino ? CG_CONV_WINOGRAD4 : CG_CONV_IM2COL;
  case CG_CONV_DIRECT:
    *why = direct ? "-fconv=direct" : "-fconv=direct, but not 1x1 stride 1 pad 0 nor strided with a multiple kernel";
    return direct ? CG_CONV_DIRECT : CG_CONV_IM2COL;
  case CG_CONV_AUTO: break;
  }
  const CgConvTableRow *row = cg_conv_table_find(g, v);
  if (row) return table_pick(row, wino, direct, g->train, why);
  if (direct && cv.stride == 1) {
    if (op == OP_CONV2D_BACKWARD_WEIGHT) {
      *why = "auto: 1x1 weight gradient: im2col's one GEMM over the batch beats per-sample GEMMs";
      return CG_CONV_IM2COL;
    }
    *why = "auto: 1x1 stride 1 pad 0, GEMMs on x without im2col";
    return CG_CONV_DIRECT;
  }
  if (direct) {
    int64_t grid = (cv.OH + cv.KH / cv.stride - 1) * (cv.OW + cv.KW / cv.stride - 1);
    if (op != OP_CONV2D) {
      *why = "auto: strided transposed conv or weight gradient: im2col measured faster";
      return CG_CONV_IM2COL;
    }
    if (grid * 100 > cv.OH * cv.OW * AUTO_MAX_GRID_PCT) {
      *why = "auto: strided conv2d whose phase grid adds more than 3% positions";
      return CG_CONV_IM2COL;
    }
    *why = "auto: strided conv2d on phase grids (at most 3% extra positions)";
    return CG_CONV_DIRECT;
  }
  if (!wino) {
    *why = "auto: neither Winograd (3x3 stride 1) nor direct (1x1, or strided with a multiple kernel)";
    return CG_CONV_IM2COL;
  }
  if (cv.C < AUTO_MIN_CHANNELS || cv.O < AUTO_MIN_CHANNELS) {
    *why = "auto: fewer than 16 input or output channels";
    return CG_CONV_IM2COL;
  }
  if (cv.OH * cv.OW < AUTO_MIN_POSITIONS) {
    *why = "auto: fewer than 64 output positions";
    return CG_CONV_IM2COL;
  }
  if (!g->train) {
    *why = "auto: 3x3 stride 1, C, O >= 16, >= 64 positions, in an entry that does not train";
    return CG_CONV_WINOGRAD4;
  }
  *why = "auto: 3x3 stride 1, C, O >= 16, >= 64 positions, in a training step";
  return CG_CONV_WINOGRAD;
}

bool cg_conv_is_winograd(CgConvAlgo a) { return a == CG_CONV_WINOGRAD || a == CG_CONV_WINOGRAD4; }

int cg_conv_wino_m(const IrGraph *g, int v, CgConvAlgo algo, const char **why) {
  CgConvAlgo a = cg_conv_pick(g, v, algo, why);
  return a == CG_CONV_WINOGRAD4 ? 4 : a == CG_CONV_WINOGRAD ? 2 : 0;
}

bool cg_conv_choose(const IrGraph *g, int v, const char **why) {
  return cg_conv_is_winograd(cg_conv_pick(g, v, cg_conv_algo(), why));
}

void cg_conv_print_choices(const IrGraph *g, CgConvAlgo algo, FILE *out) {
  for (int v = 0; v < g->n; v++) {
    IrOp op = g->node[v].op;
    if (op != OP_CONV2D && op != OP_CONV_TRANSPOSE2D && op != OP_CONV2D_BACKWARD_WEIGHT) continue;
    const char *why;
    CgConvAlgo a = cg_conv_pick(g, v, algo, &why);
    CgConv cv = cg_low_conv_geom(g, v);
    fprintf(out, "; conv %%%d %s [%lld,%lld,%lld,%lld] -> [%lld,%lld,%lld,%lld] k%lldx%lld s%d p%d: %s (%s)\n", v,
            ir_op_name(op), (long long)cv.N, (long long)cv.C, (long long)cv.H, (long long)cv.W, (long long)cv.N,
            (long long)cv.O, (long long)cv.OH, (long long)cv.OW, (long long)cv.KH, (long long)cv.KW, cv.stride, cv.pad,
            cg_conv_algo_name(a), why);
  }
}
