/* lower_winograd.c — 3x3 stride-1 convolutions through Winograd F(2x2,3x3),
 * and the rule that picks them.
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
 * then the group's epilogue loop (bias, residual, ...) as in the im2col
 * path. 2.25x fewer multiplies than direct/im2col (16 per 4 outputs
 * instead of 36), for transforms that read and write O(16/4) floats per
 * input and output element. A conv_transpose2d with a 3x3 kernel and
 * stride 1 is the conv2d of its input with the weight transposed ([C, O]
 * -> [O, C]) and flipped, padded 2 - pad: the weight kernel does the flip.
 *
 * Chunks follow the im2col path's budget (cg_set_col_budget) for V + M:
 * whole samples, or one sample's blocks of tile rows. */
#include <string.h>

#include "codegen/lower_impl.h"

/* A Winograd kernel of 'kind' over conv cv, reading src and writing dst
 * (V or M: col_arg; x, w or y: x_arg / dst_arg). */
static CgKernel *wino_kernel(Lower *L, CgKernelKind kind, int gi, int root, const CgConv *cv, const char *what) {
  CgKernel *k = cg_low_kernel(L, kind, gi, root);
  cg_low_name_kernel(L, k, what);
  k->conv = *cv;
  return k;
}

int cg_low_winograd(Lower *L, int gi, int root, const int *epi, int nepi, bool store_root) {
  const IrGraph *g = L->g;
  const IrNode *r = &g->node[root];
  bool flip = r->op == OP_CONV_TRANSPOSE2D;
  CgConv cv = cg_low_conv_geom(g, root);
  if (flip) cv.pad = (int)cv.KH - 1 - cv.pad; /* the equivalent conv2d */
  L->conv_winograd++;
  int64_t th = (cv.OH + 1) / 2, tw = (cv.OW + 1) / 2;
  int x = cg_low_home(L, r->in[0]), w = cg_low_home(L, r->in[1]);
  int c = cg_low_gemm_target(L, root, epi, nepi, store_root);
  if (cv.N * cv.O * cv.OH * cv.OW == 0) {
    L->stored[root] = true;
    return cg_low_epilogue(L, gi, root, epi, nepi);
  }
  CgChunks ch = cg_low_plan_chunks(cv.N, th, tw, 16 * (cv.C + cv.O) * 4);
  int64_t T = ch.tile ? ch.tile : ch.nc * th * tw; /* tiles per chunk: the GEMMs' N */
  int U = cg_low_arena(L, -1, 16 * cv.O * cv.C, "winograd U");
  int V = cg_low_arena(L, -1, 16 * cv.C * T, "winograd V");
  int M = cg_low_arena(L, -1, 16 * cv.O * T, "winograd M");

  CgKernel *k = wino_kernel(L, CG_KERNEL_WINO_WEIGHT, gi, root, &cv, "wino_weight");
  k->wino_flip = flip;
  k->x_arg = cg_low_arg(L, k, w);
  k->dst_arg = cg_low_arg(L, k, U);
  if (cg_low_finish_step(L, k, -1, cv.O) < 0) return -1;

  RtGemm gm = {.batch = 16, .m = (int)cv.O, .n = (int)T, .k = (int)cv.C};
  gm.lda = (int)cv.C;
  gm.ldb = gm.ldc = (int)T;
  gm.stride_a = cv.O * cv.C;
  gm.stride_b = cv.C * T;
  gm.stride_c = cv.O * T;
  bool single = ch.nchunk == 1;
  int first_in = -1, first_out = -1, in_base = -1, out_base = -1;
  for (int64_t i = 0; i < ch.nchunk; i++) {
    int64_t b = cg_low_chunk_base(&ch, i);
    if (i == 0) {
      k = wino_kernel(L, CG_KERNEL_WINO_INPUT, gi, root, &cv, "wino_input");
      k->nc = ch.nc;
      k->tile = ch.tile;
      k->plane = th * tw;
      k->wino_t = T;
      k->x_arg = cg_low_arg(L, k, x);
      k->col_arg = cg_low_arg(L, k, V);
      first_in = cg_low_finish_step(L, k, single ? -1 : cg_low_const(L, -1, b), ch.nc * cv.C);
      if (first_in < 0) return -1;
      if (!single) in_base = L->kern[L->step[first_in].kernel].base_arg;
    } else {
      cg_low_repeat_step(L, first_in, in_base, b);
    }
    if (cg_low_gemm_step(L, "conv2d winograd", gm, U, V, M) < 0) return -1;
    if (i == 0) {
      k = wino_kernel(L, CG_KERNEL_WINO_OUTPUT, gi, root, &cv, "wino_output");
      k->nc = ch.nc;
      k->tile = ch.tile;
      k->plane = th * tw;
      k->wino_t = T;
      k->col_arg = cg_low_arg(L, k, M);
      k->dst_arg = cg_low_arg(L, k, c);
      first_out = cg_low_finish_step(L, k, single ? -1 : cg_low_const(L, -1, b), ch.nc * cv.O);
      if (first_out < 0) return -1;
      if (!single) out_base = L->kern[L->step[first_out].kernel].base_arg;
    } else {
      cg_low_repeat_step(L, first_out, out_base, b);
    }
  }
  L->stored[root] = true;
  return cg_low_epilogue(L, gi, root, epi, nepi);
}
