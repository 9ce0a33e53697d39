/* lower_direct.c — convolutions without im2col (-fconv=direct; cg_conv_pick).
 *
 * 1x1, stride 1, no padding: x[n] is already the [C, P] operand.
 *   conv2d            y[n] [O, P] = w [O, C] @ x[n]                one batched GEMM
 *   conv_transpose2d  y[n] [O, P] = w^T (w [C, O]) @ x[n]          one batched GEMM
 *   conv2d_bw_weight  dw [O, C] = sum_n dy[n] [O, P] @ x[n]^T      GEMMs accumulating
 *                                                                  over the batch
 *
 * Stride s >= 2 with KH = s mh, KW = s mw (the dVAE's 4x4 stride 2): the
 * phase decomposition. Tap (ky, kx) = (a + s dy, b + s dx) of a conv2d
 * reads x[s (oy + dy) + a - p]: the (a, b) phase of the input, shifted by
 * (dy, dx). So the input is copied once into s*s phase grids of R x Tw
 * positions per sample (R = OH + mh - 1, Tw = OW + mw - 1; PHASE_IN), and
 * for each of the mh*mw shifts one GEMM over all phases and channels reads
 * the grids at that shift (a view: the GEMM's B offset), accumulating
 * into the output on the same grid (its last mh - 1 rows and mw - 1
 * columns are discarded):
 *
 *   conv2d            Z [O, nc S] += Ws[dy,dx] [O, s s C] @ Xp(+dy Tw + dx) [s s C, nc S]
 *                     then PHASE_OUT copies Z's valid part to y
 *   conv_transpose2d  output Y + p = s u + e takes the taps ky = e + s dy from
 *                     input u - dy: x copied once onto a grid padded by m - 1
 *                     (PHASE_IN), and per shift one GEMM for all s*s output phases:
 *                     Z [s s O, nc S] += Ws[dy,dx] [s s O, C] @ Xpad(+shift) [C, nc S]
 *                     then PHASE_OUT interleaves the phases into y
 *   conv2d_bw_weight  x as conv2d's phase grids, dy on the same grid (zeros off it):
 *                     Gs[dy,dx] [O, s s C] += D [O, nc S] @ Xp(+shift)^T, over chunks,
 *                     then PHASE_WEIGHT (inverse) lays Gs out as dw [O, C, KH, KW]
 *
 * PHASE_WEIGHT lays w out as Ws, the GEMMs' A, once per step. Against
 * im2col: the input is copied once instead of mh*mw times, and the
 * transposed conv writes each output once instead of col2im's scatter;
 * the price is mh*mw GEMMs of K = s*s*C (conv2d) or C (transposed) instead
 * of one of K = C KH KW, and the grids' extra positions. Chunks of whole
 * samples keep a chunk's grids within the col budget (cg_set_col_budget);
 * one sample is never split. */
#include "codegen/lower_impl.h"

/* ---- 1x1 ---- */

static int direct_1x1(Lower *L, int gi, int root, const int *epi, int nepi, bool store_root) {
  const IrGraph *g = L->g;
  const IrNode *r = &g->node[root];
  CgConv cv = cg_low_conv_geom(g, root);
  int64_t P = cv.OH * cv.OW;
  int x = cg_low_home(L, r->in[0]), w = cg_low_home(L, r->in[1]);
  int c = cg_low_gemm_target(L, root, epi, nepi, store_root);
  RtGemm gm = {.batch = (int)cv.N, .m = (int)cv.O, .n = (int)P, .k = (int)cv.C};
  if (r->op == OP_CONV2D_BACKWARD_WEIGHT) {
    /* dw = dy[0] x[0]^T, then + dy[n] x[n]^T for n >= 1 (batch items in
     * order into one C) */
    gm = (RtGemm){.batch = 1, .trans_b = 1, .m = (int)cv.O, .n = (int)cv.C, .k = (int)P};
    gm.lda = gm.ldb = (int)P;
    gm.ldc = (int)cv.C;
    if (cv.O * cv.C > 0 && P == 0) return cg_low_err(L, "conv2d_backward_weight of an empty plane");
    if (cv.O * cv.C * P > 0 && cv.N > 0) {
      if (cg_low_gemm_step(L, "conv2d_backward_weight 1x1", gm, w, x, c) < 0) return -1;
      if (cv.N > 1) {
        gm.batch = (int)(cv.N - 1);
        gm.stride_a = cv.O * P;
        gm.stride_b = cv.C * P;
        gm.off_a = cv.O * P;
        gm.off_b = cv.C * P;
        gm.beta = 1.0f;
        if (cg_low_gemm_step(L, "conv2d_backward_weight 1x1", gm, w, x, c) < 0) return -1;
      }
    }
  } else {
    gm.trans_a = r->op == OP_CONV_TRANSPOSE2D;
    gm.lda = (int)(gm.trans_a ? cv.O : cv.C);
    gm.ldb = gm.ldc = (int)P;
    gm.stride_b = cv.C * P;
    gm.stride_c = cv.O * P;
    if (cv.N * cv.O * P > 0 && cg_low_gemm_step(L, gm.trans_a ? "conv_transpose2d 1x1" : "conv2d 1x1", gm, w, x, c) < 0)
      return -1;
  }
  cg_low_mark_stored(L, root);
  return cg_low_epilogue(L, gi, root, epi, nepi);
}

/* ---- the phase decomposition ---- */

/* A phase kernel of 'kind' named 'what', with the grid geometry. */
static CgKernel *phase_kernel(Lower *L, CgKernelKind kind, int gi, int root, const char *what, int n, int step,
                              int off, int64_t R, int64_t Tw) {
  CgKernel *k = cg_low_kernel(L, kind, gi, root);
  cg_low_name_kernel(L, k, what);
  k->ph_n = n;
  k->ph_step = step;
  k->ph_off = off;
  k->ph_r = R;
  k->ph_w = Tw;
  return k;
}

/* PHASE_IN of samples [n0, n0 + nc) of src ([N, C, H, W]) into grids dst
 * ([n * n, C, nc, R, Tw] + slack); returns its step. */
static int phase_in(Lower *L, int gi, int root, int src, int dst, int64_t C, int64_t H, int64_t W, int n, int step,
                    int off, int64_t R, int64_t Tw, int64_t slack, int64_t nc, int base) {
  CgKernel *k = phase_kernel(L, CG_KERNEL_PHASE_IN, gi, root, "phase_in", n, step, off, R, Tw);
  k->conv.C = C;
  k->conv.H = H;
  k->conv.W = W;
  k->nc = nc;
  k->ph_slack = slack;
  k->x_arg = cg_low_arg(L, k, src);
  k->dst_arg = cg_low_arg(L, k, dst);
  return cg_low_finish_step(L, k, base, (int64_t)n * n * C * nc);
}

/* PHASE_OUT of grids src ([n * n, O, nc, R, Tw]) into samples [n0, n0 + nc)
 * of dst ([N, O, OH, OW]); returns its step. */
static int phase_out(Lower *L, int gi, int root, int src, int dst, const CgConv *cv, int n, int off, int64_t R,
                     int64_t Tw, int64_t nc, int base) {
  CgKernel *k = phase_kernel(L, CG_KERNEL_PHASE_OUT, gi, root, "phase_out", n, n, off, R, Tw);
  k->conv.O = cv->O;
  k->conv.OH = cv->OH;
  k->conv.OW = cv->OW;
  k->nc = nc;
  k->x_arg = cg_low_arg(L, k, src);
  k->dst_arg = cg_low_arg(L, k, dst);
  return cg_low_finish_step(L, k, base, nc * cv->O);
}

/* PHASE_WEIGHT between w and Ws (see CgKernel). */
static int phase_weight(Lower *L, int gi, int root, int src, int dst, const CgConv *cv, bool tr, bool inv) {
  CgKernel *k = phase_kernel(L, CG_KERNEL_PHASE_WEIGHT, gi, root, inv ? "phase_weight_grad" : "phase_weight",
                             cv->stride, cv->stride, 0, 0, 0);
  k->conv = *cv;
  k->ph_tr = tr;
  k->ph_inv = inv;
  k->x_arg = cg_low_arg(L, k, src);
  k->dst_arg = cg_low_arg(L, k, dst);
  return cg_low_finish_step(L, k, -1, cv->O);
}

/* A chunk-repeated kernel step: the first chunk's (made by the caller) or
 * a repeat of it for chunk start b. */
typedef struct {
  int first, base_arg;
} Repeat;

static int chunk_base(Lower *L, bool single, int64_t b) { return single ? -1 : cg_low_const(L, -1, b); }

static void remember(Lower *L, Repeat *r, int step, bool single) {
  r->first = step;
  r->base_arg = single ? -1 : L->kern[L->step[step].kernel].base_arg;
}

static int direct_phase(Lower *L, int gi, int root, const int *epi, int nepi, bool store_root) {
  const IrGraph *g = L->g;
  const IrNode *r = &g->node[root];
  CgConv cv = cg_low_conv_geom(g, root);
  int s = cv.stride, p = cv.pad;
  int64_t mh = cv.KH / s, mw = cv.KW / s, ss = (int64_t)s * s, nsh = mh * mw;
  bool tr = r->op == OP_CONV_TRANSPOSE2D, bw = r->op == OP_CONV2D_BACKWARD_WEIGHT;
  /* the grid: output positions (conv2d, backward weight) or per-phase
   * output positions (transposed), plus mh - 1 rows and mw - 1 columns */
  int64_t UH = tr ? (cv.OH + p + s - 1) / s : cv.OH, UW = tr ? (cv.OW + p + s - 1) / s : cv.OW;
  int64_t R = UH + mh - 1, Tw = UW + mw - 1, S = R * Tw, slack = (mh - 1) * Tw + (mw - 1);
  int64_t in_rows = tr ? cv.C : ss * cv.C, out_rows = tr ? ss * cv.O : cv.O; /* grid rows of B and of Z (or D) */
  int x = cg_low_home(L, r->in[0]), w = cg_low_home(L, r->in[1]);
  int c = cg_low_gemm_target(L, root, epi, nepi, store_root);
  cg_low_mark_stored(L, root);
  if (cv.N == 0 || cv.O * cv.C == 0 || (!bw && cv.OH * cv.OW == 0)) {
    if (bw) return cg_low_err(L, "conv2d_backward_weight with an empty batch or plane");
    return cg_low_epilogue(L, gi, root, epi, nepi);
  }
  CgChunks ch = cg_low_plan_chunks(cv.N, 1, 1, (in_rows + out_rows) * S * 4);
  int64_t nc = ch.nc, NS = nc * S;
  bool single = ch.nchunk == 1;
  int grid = cg_low_arena(L, -1, in_rows * NS + slack, "phase grids");
  int z = cg_low_arena(L, -1, out_rows * NS, bw ? "phase dy" : "phase out");
  int ws = cg_low_arena(L, -1, nsh * ss * cv.O * cv.C, "phase weights");
  if (!bw && phase_weight(L, gi, root, w, ws, &cv, tr, false) < 0) return -1;
  Repeat in = {-1, -1}, in2 = {-1, -1}, out = {-1, -1};
  for (int64_t i = 0; i < ch.nchunk; i++) {
    int64_t b = i * nc;
    if (i == 0) {
      int st = tr ? phase_in(L, gi, root, x, grid, cv.C, cv.H, cv.W, 1, 1, (int)mh - 1, R, Tw, slack, nc, chunk_base(L, single, b))
                  : phase_in(L, gi, root, x, grid, cv.C, cv.H, cv.W, s, s, p, R, Tw, slack, nc, chunk_base(L, single, b));
      if (st < 0) return -1;
      remember(L, &in, st, single);
      if (bw) { /* dy onto the output grid: the zeros make the grids' extra positions add nothing */
        st = phase_in(L, gi, root, w, z, cv.O, cv.OH, cv.OW, 1, 1, 0, R, Tw, 0, nc, chunk_base(L, single, b));
        if (st < 0) return -1;
        remember(L, &in2, st, single);
      }
    } else {
      cg_low_repeat_step(L, in.first, in.base_arg, b);
      if (bw) cg_low_repeat_step(L, in2.first, in2.base_arg, b);
    }
    for (int64_t sh = 0; sh < nsh; sh++) {
      int64_t dy = sh / mw, dx = sh % mw;
      RtGemm gm = {.batch = 1};
      if (bw) { /* Gs[sh] [O, ss C] (+)= D [O, NS] @ grids(+shift)^T */
        gm.trans_b = 1;
        gm.m = (int)cv.O, gm.n = (int)(ss * cv.C), gm.k = (int)NS;
        gm.lda = gm.ldb = (int)NS;
        gm.ldc = (int)(ss * cv.C);
        gm.off_b = dy * Tw + dx;
        gm.off_c = sh * cv.O * ss * cv.C;
        gm.beta = i > 0 ? 1.0f : 0.0f;
        if (cg_low_gemm_step(L, "conv2d_backward_weight phase", gm, z, grid, ws) < 0) return -1;
        continue;
      }
      gm.m = (int)out_rows, gm.n = (int)NS, gm.k = (int)in_rows;
      gm.lda = (int)in_rows;
      gm.ldb = gm.ldc = (int)NS;
      gm.off_a = sh * out_rows * in_rows;
      gm.off_b = tr ? (mh - 1 - dy) * Tw + (mw - 1 - dx) : dy * Tw + dx;
      gm.beta = sh > 0 ? 1.0f : 0.0f;
      if (cg_low_gemm_step(L, tr ? "conv_transpose2d phase" : "conv2d phase", gm, ws, grid, z) < 0) return -1;
    }
    if (bw) continue;
    if (i == 0) {
      int st = phase_out(L, gi, root, z, c, &cv, tr ? s : 1, tr ? p : 0, R, Tw, nc, chunk_base(L, single, b));
      if (st < 0) return -1;
      remember(L, &out, st, single);
    } else {
      cg_low_repeat_step(L, out.first, out.base_arg, b);
    }
  }
  if (bw && phase_weight(L, gi, root, ws, c, &cv, false, true) < 0) return -1;
  return cg_low_epilogue(L, gi, root, epi, nepi);
}

int cg_low_direct(Lower *L, int gi, int root, const int *epi, int nepi, bool store_root) {
  if (L->g->node[root].op == OP_CONV2D_BACKWARD_WEIGHT) L->wgrad_direct++;
  else L->conv_direct++;
  CgConv cv = cg_low_conv_geom(L->g, root);
  if (cv.stride == 1) return direct_1x1(L, gi, root, epi, nepi, store_root);
  return direct_phase(L, gi, root, epi, nepi, store_root);
}
