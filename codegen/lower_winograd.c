/* lower_winograd.c — 3x3 stride-1 convolutions (and their weight
 * gradients) through Winograd F(2x2,3x3) or F(4x4,3x3), and the rule that
 * picks them.
 *
 * F(2x2,3x3) below; F(4x4,3x3) is the same with 4x4 output tiles from 6x6
 * input blocks: 36 planes and GEMMs instead of 16, 36 multiplies per 16
 * outputs (4x fewer than direct) but ~15x the float32 rounding error
 * (CG_WINOGRAD4_REL_TOL), so only -fconv=winograd4 asks for it.
 *
 * Each 2x2 block of outputs (a tile) comes from a 4x4 block of inputs d:
 * y = A^T [(G g G^T) .* (B^T d B)] A. Over all tiles and channels the
 * elementwise product is 16 GEMMs, one per position e of the 4x4 grid:
 *
 *   U [16, O, C]      = G g G^T      weight kernel, once per step
 *   V [16, C, T]      = B^T d B      input kernel, per chunk of T tiles
 *   M[e] [O, T]       = U[e] @ V[e]  one GEMM step of batch 16
 *   y [N, O, OH, OW]  = A^T m A      output kernel, per chunk
 *
 * The output kernel also applies the group's epilogue (bias, residual,
 * activation: rule wino-epilogue) to each output before storing it, so
 * no loop reads y back and y itself is stored only if something else
 * reads it; with the rule off the epilogue is a loop after, as in the
 * im2col path. 2.25x fewer multiplies than direct/im2col (16 per 4 outputs
 * instead of 36), for transforms that read and write O(16/4) floats per
 * input and output element. A conv_transpose2d with a 3x3 kernel and
 * stride 1 is the conv2d of its input with the weight transposed ([C, O]
 * -> [O, C]) and flipped, padded 2 - pad: the weight kernel does the flip.
 *
 * Chunks follow the im2col path's budget (cg_set_col_budget) for V + M:
 * whole samples, or one sample's blocks of tile rows.
 *
 * The weight gradient of such a conv2d (conv2d_backward_weight(x, dy), the
 * same tiles) is the transpose of that chain: with m = U .* V per tile,
 * dm = A dy A^T, dU = sum over tiles of dm .* V and dw = G^T dU G, so
 *
 *   V  [16, C, T]     = B^T d B      the input kernel above, per chunk
 *   D  [16, O, T]     = A dy A^T     dy kernel, per chunk (zero outside OH x OW)
 *   dU[e] [O, C]     += D[e] @ V[e]^T  one GEMM step of batch 16, K = T
 *   dw [O, C, 3, 3]   = G^T dU G     weight-gradient kernel, once
 *
 * 16 multiplies per tile and channel pair instead of im2col's 36, and the
 * GEMMs reduce over the tiles (long K) as im2col's do over positions. */
#include <string.h>

#include "codegen/lower_impl.h"

/* Sets up k as a Winograd kernel over conv cv named 'what'. */
static void wino_setup(Lower *L, CgKernel *k, int root, const CgConv *cv, const char *what) {
  cg_low_name_kernel(L, k, what);
  k->conv = *cv;
  k->wino_m = cg_conv_wino_m(L->g, root, L->conv_algo, NULL);
}

/* A Winograd kernel of 'kind' over conv cv, reading src and writing dst
 * (V or M: col_arg; x, w or y: x_arg / dst_arg). */
static CgKernel *wino_kernel(Lower *L, CgKernelKind kind, int gi, int root, const CgConv *cv, const char *what) {
  CgKernel *k = cg_low_kernel(L, kind, gi, root);
  wino_setup(L, k, root, cv, what);
  return k;
}

/* What the transforms fuse. The output kernel stores, per output
 * element, the root y if store_root, and the group's epilogue members
 * epi[0 .. nepi) computed from y (nepi 0: the epilogue is a loop after
 * the kernel). The input kernel computes x from group_norm gn (>= 0, rule
 * wino-prologue; lower_wino_fuse.c) instead of reading it. */
typedef struct {
  const int *epi;
  int nepi;
  bool store_root;
  int x, gn;
} WinoFuse;

/* The output kernel: its stores (WinoFuse) are evaluated like a loop
 * kernel's, the root's value given by the transform. */
static CgKernel *output_kernel(Lower *L, int gi, int root, const CgConv *cv, const WinoFuse *o) {
  CgKernel *k = cg_low_loop_kernel(L, gi, root, o->epi, o->nepi, root);
  k->kind = CG_KERNEL_WINO_OUTPUT;
  if (o->store_root) {
    cg_low_room(L, k, 0, 0, 1);
    for (int i = k->nstore; i > 0; i--) k->store[i] = k->store[i - 1];
    k->store[0].node = root;
    k->nstore++;
  }
  wino_setup(L, k, root, cv, o->nepi ? "wino_output_epi" : "wino_output");
  return k;
}

/* A chunk's tile transform (input, dy or output kernel: 'kind', per chunk
 * rows_per_sample iterations per sample), reading buffer 'from' and
 * writing 'to' (the tile-side buffer is col_arg, the tensor side x_arg;
 * the output kernel writes its stores, 'out', instead of 'to'): the first
 * chunk (b = its first sample) makes the step, later ones repeat it at
 * their base. *first and *base carry the step between the calls. Returns
 * 0, or -1 on failure. */
static int chunk_transform(Lower *L, CgKernelKind kind, const char *what, int gi, int root, const CgConv *cv,
                           const CgChunks *ch, int64_t plane, int64_t T, int from, int to, const WinoFuse *out,
                           int64_t rows_per_sample, int64_t b, int *first, int *base) {
  if (*first >= 0) {
    cg_low_repeat_step(L, *first, *base, b);
    return 0;
  }
  bool single = ch->nchunk == 1;
  CgKernel *k = kind == CG_KERNEL_WINO_OUTPUT ? output_kernel(L, gi, root, cv, out)
                                              : wino_kernel(L, kind, gi, root, cv, what);
  k->nc = ch->nc;
  k->tile = ch->tile;
  k->plane = plane;
  k->wino_t = T;
  if (kind == CG_KERNEL_WINO_OUTPUT) {
    k->col_arg = cg_low_arg(L, k, from);
  } else {
    k->x_arg = cg_low_arg(L, k, from);
    k->col_arg = cg_low_arg(L, k, to);
    if (kind == CG_KERNEL_WINO_INPUT && out && out->gn >= 0) cg_low_wino_prologue_kernel(L, k, out->x, out->gn);
  }
  *first = cg_low_finish_step(L, k, single ? -1 : cg_low_const(L, -1, b), ch->nc * rows_per_sample);
  if (*first < 0) return -1;
  if (!single) *base = L->kern[L->step[*first].kernel].base_arg;
  return 0;
}

int cg_low_winograd(Lower *L, int gi, int root, const int *epi, int nepi, bool store_root) {
  const IrGraph *g = L->g;
  const IrNode *r = &g->node[root];
  bool flip = r->op == OP_CONV_TRANSPOSE2D;
  CgConv cv = cg_low_conv_geom(g, root);
  if (flip) cv.pad = (int)cv.KH - 1 - cv.pad; /* the equivalent conv2d */
  L->conv_winograd++;
  int m = cg_conv_wino_m(g, root, L->conv_algo, NULL), P = (m + 2) * (m + 2);
  L->winograd4 += m == 4;
  int64_t th = (cv.OH + m - 1) / m, tw = (cv.OW + m - 1) / m;
  int gn = cg_low_wino_prologue(L, r->in[0]); /* x computed by the input kernel, from gn's input */
  int x = cg_low_home(L, gn >= 0 ? g->node[gn].in[0] : r->in[0]), w = cg_low_home(L, r->in[1]);
  if (cv.N * cv.O * cv.OH * cv.OW == 0) {
    cg_low_gemm_target(L, root, epi, nepi, store_root);
    cg_low_mark_stored(L, root);
    return cg_low_epilogue(L, gi, root, epi, nepi);
  }
  /* rule wino-epilogue: the output kernel stores the epilogue (and y only
   * if stored); else y, read back by the epilogue loop */
  bool fuse = nepi > 0 && fuse_rule_on(&L->fp->opt, FUSE_RULE_WINO_EPILOGUE);
  WinoFuse out = {fuse ? epi : NULL, fuse ? nepi : 0, !fuse || store_root, r->in[0], gn};
  if (!fuse) cg_low_gemm_target(L, root, epi, nepi, store_root); /* y's buffer (maybe the epilogue's) */
  if (fuse) cg_low_wino_fused(L, root, CG_WINO_FUSED_EPILOGUE);
  CgChunks ch = cg_low_plan_chunks(cv.N, th, tw, P * (cv.C + cv.O) * 4);
  int64_t T = ch.tile ? ch.tile : ch.nc * th * tw; /* tiles per chunk: the GEMMs' N */
  bool swap; /* rule wino-share-u (lower_wino_share.c): another conv's U, maybe transposed */
  int U = cg_wino_share_find(L, root, m, &swap), shared = U >= 0;
  if (!shared) U = cg_low_arena(L, -1, P * cv.O * cv.C, "winograd U");
  int V = cg_low_arena(L, -1, P * cv.C * T, "winograd V");
  int M = cg_low_arena(L, -1, P * cv.O * T, "winograd M");

  if (!shared) {
    CgKernel *k = wino_kernel(L, CG_KERNEL_WINO_WEIGHT, gi, root, &cv, "wino_weight");
    k->wino_flip = flip;
    k->x_arg = cg_low_arg(L, k, w);
    k->dst_arg = cg_low_arg(L, k, U);
    if (cg_low_finish_step(L, k, -1, cv.O) < 0) return -1;
    cg_wino_share_note(L, root, m, U);
  }

  RtGemm gm = {.batch = P, .m = (int)cv.O, .n = (int)T, .k = (int)cv.C};
  gm.lda = (int)cv.C;
  gm.ldb = gm.ldc = (int)T;
  gm.stride_a = cv.O * cv.C;
  gm.stride_b = cv.C * T;
  gm.stride_c = cv.O * T;
  int first_in = -1, first_out = -1, in_base = -1, out_base = -1;
  for (int64_t i = 0; i < ch.nchunk; i++) {
    int64_t b = cg_low_chunk_base(&ch, i);
    if (chunk_transform(L, CG_KERNEL_WINO_INPUT, "wino_input", gi, root, &cv, &ch, th * tw, T, x, V, &out, cv.C, b,
                        &first_in, &in_base) < 0 ||
        (shared ? cg_wino_share_gemms(L, "conv2d winograd (shared U)", gm, U, V, M, swap)
                : cg_low_gemm_step(L, "conv2d winograd", gm, U, V, M)) < 0 ||
        chunk_transform(L, CG_KERNEL_WINO_OUTPUT, "wino_output", gi, root, &cv, &ch, th * tw, T, M, -1, &out,
                        cv.O, b, &first_out, &out_base) < 0)
      return -1;
  }
  if (fuse) return 0;
  cg_low_mark_stored(L, root);
  return cg_low_epilogue(L, gi, root, epi, nepi);
}

int cg_low_winograd_bw_weight(Lower *L, int gi, int root, const int *epi, int nepi, bool store_root) {
  const IrGraph *g = L->g;
  const IrNode *r = &g->node[root];
  CgConv cv = cg_low_conv_geom(g, root);
  L->wgrad_winograd++;
  int m = cg_conv_wino_m(g, root, L->conv_algo, NULL), P = (m + 2) * (m + 2);
  L->winograd4 += m == 4;
  int64_t th = (cv.OH + m - 1) / m, tw = (cv.OW + m - 1) / m;
  int x = cg_low_home(L, r->in[0]), dy = cg_low_home(L, r->in[1]);
  int c = cg_low_gemm_target(L, root, epi, nepi, store_root);
  CgChunks ch = cg_low_plan_chunks(cv.N, th, tw, P * (cv.C + cv.O) * 4);
  int64_t T = ch.tile ? ch.tile : ch.nc * th * tw;
  int V = cg_low_arena(L, -1, P * cv.C * T, "winograd V");
  int D = cg_low_arena(L, -1, P * cv.O * T, "winograd dy");
  int dU = cg_low_arena(L, -1, P * cv.O * cv.C, "winograd dU");
  /* dU[e] (O x C) = D[e] (O x T) @ V[e]^T, accumulated over the chunks */
  RtGemm gm = {.batch = P, .trans_b = 1, .m = (int)cv.O, .n = (int)cv.C, .k = (int)T};
  gm.lda = gm.ldb = (int)T;
  gm.ldc = (int)cv.C;
  gm.stride_a = cv.O * T;
  gm.stride_b = cv.C * T;
  gm.stride_c = cv.O * cv.C;
  int first_in = -1, first_dy = -1, in_base = -1, dy_base = -1;
  for (int64_t i = 0; i < ch.nchunk; i++) {
    int64_t b = cg_low_chunk_base(&ch, i);
    if (chunk_transform(L, CG_KERNEL_WINO_INPUT, "wino_input", gi, root, &cv, &ch, th * tw, T, x, V, NULL, cv.C, b,
                        &first_in, &in_base) < 0 ||
        chunk_transform(L, CG_KERNEL_WINO_DY, "wino_dy", gi, root, &cv, &ch, th * tw, T, dy, D, NULL, cv.O, b,
                        &first_dy, &dy_base) < 0)
      return -1;
    gm.beta = i == 0 ? 0.0f : 1.0f;
    if (cg_low_gemm_step(L, "conv2d_backward_weight winograd", gm, D, V, dU) < 0) return -1;
  }
  CgKernel *k = wino_kernel(L, CG_KERNEL_WINO_WGRAD, gi, root, &cv, "wino_wgrad");
  k->x_arg = cg_low_arg(L, k, dU);
  k->dst_arg = cg_low_arg(L, k, c);
  if (cg_low_finish_step(L, k, -1, cv.O) < 0) return -1;
  cg_low_mark_stored(L, root);
  return cg_low_epilogue(L, gi, root, epi, nepi);
}
