/* emit_winograd.c — the three transform kernels of Winograd F(2x2,3x3)
 * (see codegen/lower_winograd.c for the layouts):
 *
 *   B^T = | 1  0 -1  0 |    G = | 1    0    0  |    A^T = | 1  1  1  0 |
 *         | 0  1  1  0 |        | 1/2  1/2  1/2 |          | 0  1 -1 -1 |
 *         | 0 -1  1  0 |        | 1/2 -1/2  1/2 |
 *         | 0  1  0 -1 |        | 0    0    1  |
 *
 * Each 2-D transform is the 1-D one down the columns, then along the rows,
 * in float32. Position e = 4 r + s of the 4x4 grid is plane e of U, V, M.
 * The weight gradient's transforms are the transposes of the output and
 * weight ones: D = A dy A^T (2x2 -> 4x4) and dw = G^T dU G (4x4 -> 3x3). */
#include "codegen/llvm/emit.h"

#define B (E->b)

static LLVMValueRef fadd(Emit *E, LLVMValueRef a, LLVMValueRef b) { return LLVMBuildFAdd(B, a, b, ""); }
static LLVMValueRef fsub(Emit *E, LLVMValueRef a, LLVMValueRef b) { return LLVMBuildFSub(B, a, b, ""); }

/* 0 <= v < limit */
static LLVMValueRef inside(Emit *E, LLVMValueRef v, int64_t limit) {
  return LLVMBuildAnd(B, LLVMBuildICmp(B, LLVMIntSGE, v, em_i64(E, 0), ""),
                      LLVMBuildICmp(B, LLVMIntSLT, v, em_i64(E, limit), ""), "");
}
static LLVMValueRef clamp(Emit *E, LLVMValueRef v, int64_t limit) {
  return em_min_i64(E, em_max_i64(E, v, em_i64(E, 0)), em_i64(E, limit - 1));
}

/* out[0..4) = B^T in[0..4), in[i] at in[i * s], out likewise. */
static void bt4(Emit *E, LLVMValueRef *in, int s, LLVMValueRef *out) {
  LLVMValueRef a0 = in[0], a1 = in[s], a2 = in[2 * s], a3 = in[3 * s];
  out[0] = fsub(E, a0, a2);
  out[s] = fadd(E, a1, a2);
  out[2 * s] = fsub(E, a2, a1);
  out[3 * s] = fsub(E, a1, a3);
}

/* out[0..4) = G in[0..3), in[i] at in[i * si], out[i] at out[i * so]. */
static void g3(Emit *E, LLVMValueRef *in, int si, LLVMValueRef *out, int so) {
  LLVMValueRef a = in[0], b = in[si], c = in[2 * si], half = em_f32(E, 0.5);
  LLVMValueRef h = LLVMBuildFMul(B, fadd(E, a, c), half, ""), q = LLVMBuildFMul(B, b, half, "");
  out[0] = a;
  out[so] = fadd(E, h, q);
  out[2 * so] = fsub(E, h, q);
  out[3 * so] = c;
}

/* out[0..2) = A^T in[0..4), strides si, so. */
static void at4(Emit *E, LLVMValueRef *in, int si, LLVMValueRef *out, int so) {
  LLVMValueRef a0 = in[0], a1 = in[si], a2 = in[2 * si], a3 = in[3 * si];
  out[0] = fadd(E, fadd(E, a0, a1), a2);
  out[so] = fsub(E, fsub(E, a1, a2), a3);
}

/* out[0..4) = A in[0..2) (A = (A^T)^T), strides si, so. */
static void a2(Emit *E, LLVMValueRef *in, int si, LLVMValueRef *out, int so) {
  LLVMValueRef a0 = in[0], a1 = in[si];
  out[0] = a0;
  out[so] = fadd(E, a0, a1);
  out[2 * so] = fsub(E, a0, a1);
  out[3 * so] = LLVMBuildFNeg(B, a1, "");
}

/* out[0..3) = G^T in[0..4), strides si, so. */
static void gt4(Emit *E, LLVMValueRef *in, int si, LLVMValueRef *out, int so) {
  LLVMValueRef a0 = in[0], a1 = in[si], a2 = in[2 * si], a3 = in[3 * si], half = em_f32(E, 0.5);
  LLVMValueRef h = LLVMBuildFMul(B, fadd(E, a1, a2), half, "");
  out[0] = fadd(E, a0, h);
  out[so] = LLVMBuildFMul(B, fsub(E, a1, a2), half, "");
  out[2 * so] = fadd(E, h, a3);
}

/* Output channel o per iteration, every input channel c: the 3x3 kernel
 * g = w[o, c] (flipped: w[c, o] turned by 180 degrees) -> U[e, o, c]. */
void em_kernel_wino_weight(Emit *E, LLVMValueRef begin, LLVMValueRef end) {
  const CgKernel *k = E->k;
  const CgConv *cv = &k->conv;
  int64_t C = cv->C, O = cv->O;
  Loop lo, lc;
  em_loop_open(E, &lo, begin, end, 0, NULL);
  em_loop_open(E, &lc, em_i64(E, 0), em_i64(E, C), 0, NULL);
  LLVMValueRef base = k->wino_flip ? em_imulc(E, em_iadd(E, em_imulc(E, lc.iv, O), lo.iv), 9) : em_imulc(E, em_iadd(E, em_imulc(E, lo.iv, C), lc.iv), 9);
  LLVMValueRef g[9], t[12], u[16];
  for (int i = 0; i < 9; i++) g[i] = em_load(E, k->x_arg, E->f32, em_iaddc(E, base, k->wino_flip ? 8 - i : i));
  for (int x = 0; x < 3; x++) g3(E, g + x, 3, t + x, 3);     /* t [4][3] = G g */
  for (int r = 0; r < 4; r++) g3(E, t + 3 * r, 1, u + 4 * r, 1); /* u [4][4] = t G^T */
  LLVMValueRef at = em_iadd(E, em_imulc(E, lo.iv, C), lc.iv);
  for (int e = 0; e < 16; e++) em_store(E, k->dst_arg, u[e], em_iaddc(E, at, e * O * C));
  em_loop_close(E, &lc, NULL, NULL, false);
  em_loop_close(E, &lo, NULL, NULL, false);
}

/* Iteration (j, c): every tile of the chunk's sample n0 + j, channel c:
 * its 4x4 input block d from (2 ty - p, 2 tx - p), zero outside the image,
 * -> V[e, c, j tps + tile] (tiles counted from the window's first, p0). */
void em_kernel_wino_input(Emit *E, LLVMValueRef begin, LLVMValueRef end) {
  const CgKernel *k = E->k;
  const CgConv *cv = &k->conv;
  int64_t C = cv->C, H = cv->H, W = cv->W, p = cv->pad, T = k->wino_t;
  int64_t tw = (cv->OW + 1) / 2, th = (cv->OH + 1) / 2, tps = k->tile > 0 ? k->tile : th * tw;
  Loop li, lr, lx;
  em_loop_open(E, &li, begin, end, 0, NULL);
  LLVMValueRef j = em_udivc(E, li.iv, C), c = em_uremc(E, li.iv, C);
  LLVMValueRef plane = em_imulc(E, em_iadd(E, em_imulc(E, em_iadd(E, E->n0, j), C), c), H * W);
  LLVMValueRef vbase = em_iadd(E, em_imulc(E, c, T), em_imulc(E, j, tps));
  LLVMValueRef ty0 = em_udivc(E, E->p0, tw);
  em_loop_open(E, &lr, em_i64(E, 0), em_i64(E, tps / tw), 0, NULL);
  LLVMValueRef iy0 = em_iaddc(E, em_imulc(E, em_iadd(E, ty0, lr.iv), 2), -p);
  LLVMValueRef rowok[4], rowat[4];
  for (int dy = 0; dy < 4; dy++) {
    LLVMValueRef iy = em_iaddc(E, iy0, dy);
    rowok[dy] = inside(E, iy, H);
    rowat[dy] = em_iadd(E, plane, em_imulc(E, clamp(E, iy, H), W));
  }
  LLVMValueRef vrow = em_iadd(E, vbase, em_imulc(E, lr.iv, tw));
  em_loop_open(E, &lx, em_i64(E, 0), em_i64(E, tw), 0, NULL);
  LLVMValueRef ix0 = em_iaddc(E, em_imulc(E, lx.iv, 2), -p), colok[4], colat[4];
  for (int dx = 0; dx < 4; dx++) {
    LLVMValueRef ix = em_iaddc(E, ix0, dx);
    colok[dx] = inside(E, ix, W);
    colat[dx] = clamp(E, ix, W);
  }
  LLVMValueRef d[16], t[16], v[16];
  for (int dy = 0; dy < 4; dy++)
    for (int dx = 0; dx < 4; dx++) {
      LLVMValueRef val = em_load(E, k->x_arg, E->f32, em_iadd(E, rowat[dy], colat[dx]));
      d[4 * dy + dx] = LLVMBuildSelect(B, LLVMBuildAnd(B, rowok[dy], colok[dx], ""), val, em_f32(E, 0), "");
    }
  for (int x = 0; x < 4; x++) bt4(E, d + x, 4, t + x);     /* t = B^T d (down the columns) */
  for (int r = 0; r < 4; r++) bt4(E, t + 4 * r, 1, v + 4 * r); /* v = t B (along the rows) */
  LLVMValueRef at = em_iadd(E, vrow, lx.iv);
  for (int e = 0; e < 16; e++) em_store(E, k->col_arg, v[e], em_iaddc(E, at, e * C * T));
  em_loop_close(E, &lx, NULL, NULL, false);
  em_loop_close(E, &lr, NULL, NULL, false);
  em_loop_close(E, &li, NULL, NULL, false);
}

/* Stores v at dst[i] if cond (NULL: always). */
static void store_if(Emit *E, LLVMValueRef cond, int arg, LLVMValueRef v, LLVMValueRef i) {
  if (!cond) {
    em_store(E, arg, v, i);
    return;
  }
  LLVMBasicBlockRef then = LLVMAppendBasicBlockInContext(E->ctx, E->fn, "wino.store");
  LLVMBasicBlockRef next = LLVMAppendBasicBlockInContext(E->ctx, E->fn, "wino.next");
  LLVMBuildCondBr(B, cond, then, next);
  LLVMPositionBuilderAtEnd(B, then);
  em_store(E, arg, v, i);
  LLVMBuildBr(B, next);
  LLVMPositionBuilderAtEnd(B, next);
}

/* Iteration (j, o): every tile of sample n0 + j, output channel o: m from
 * M[e, o, j tps + tile] -> the 2x2 outputs y[n0 + j, o, 2 ty + a, 2 tx + b]
 * that lie inside the OH x OW plane. */
void em_kernel_wino_output(Emit *E, LLVMValueRef begin, LLVMValueRef end) {
  const CgKernel *k = E->k;
  const CgConv *cv = &k->conv;
  int64_t O = cv->O, OH = cv->OH, OW = cv->OW, T = k->wino_t;
  int64_t tw = (OW + 1) / 2, th = (OH + 1) / 2, tps = k->tile > 0 ? k->tile : th * tw;
  Loop li, lr, lx;
  em_loop_open(E, &li, begin, end, 0, NULL);
  LLVMValueRef j = em_udivc(E, li.iv, O), o = em_uremc(E, li.iv, O);
  LLVMValueRef plane = em_imulc(E, em_iadd(E, em_imulc(E, em_iadd(E, E->n0, j), O), o), OH * OW);
  LLVMValueRef mbase = em_iadd(E, em_imulc(E, o, T), em_imulc(E, j, tps));
  LLVMValueRef ty0 = em_udivc(E, E->p0, tw);
  em_loop_open(E, &lr, em_i64(E, 0), em_i64(E, tps / tw), 0, NULL);
  LLVMValueRef oy = em_imulc(E, em_iadd(E, ty0, lr.iv), 2);
  LLVMValueRef row_ok = OH % 2 ? LLVMBuildICmp(B, LLVMIntSLT, em_iaddc(E, oy, 1), em_i64(E, OH), "") : NULL;
  LLVMValueRef yrow = em_iadd(E, plane, em_imulc(E, oy, OW));
  LLVMValueRef mrow = em_iadd(E, mbase, em_imulc(E, lr.iv, tw));
  em_loop_open(E, &lx, em_i64(E, 0), em_i64(E, tw), 0, NULL);
  LLVMValueRef m[16], t[8], y[4];
  LLVMValueRef at = em_iadd(E, mrow, lx.iv);
  for (int e = 0; e < 16; e++) m[e] = em_load(E, k->col_arg, E->f32, em_iaddc(E, at, e * O * T));
  for (int x = 0; x < 4; x++) at4(E, m + x, 4, t + x, 4);     /* t [2][4] = A^T m */
  for (int r = 0; r < 2; r++) at4(E, t + 4 * r, 1, y + 2 * r, 1); /* y [2][2] = t A */
  LLVMValueRef ox = em_imulc(E, lx.iv, 2), yat = em_iadd(E, yrow, ox);
  LLVMValueRef col_ok = OW % 2 ? LLVMBuildICmp(B, LLVMIntSLT, em_iaddc(E, ox, 1), em_i64(E, OW), "") : NULL;
  LLVMValueRef both = row_ok && col_ok ? LLVMBuildAnd(B, row_ok, col_ok, "") : row_ok ? row_ok : col_ok;
  em_store(E, k->dst_arg, y[0], yat);
  store_if(E, col_ok, k->dst_arg, y[1], em_iaddc(E, yat, 1));
  store_if(E, row_ok, k->dst_arg, y[2], em_iaddc(E, yat, OW));
  store_if(E, both, k->dst_arg, y[3], em_iaddc(E, yat, OW + 1));
  em_loop_close(E, &lx, NULL, NULL, false);
  em_loop_close(E, &lr, NULL, NULL, false);
  em_loop_close(E, &li, NULL, NULL, false);
}

/* Iteration (j, o): every tile of sample n0 + j, output channel o: the 2x2
 * block of dy at (2 ty, 2 tx), zero outside the OH x OW plane, -> D[e, o,
 * j tps + tile] = (A dy A^T)[e] (tiles counted from the window's first). */
void em_kernel_wino_dy(Emit *E, LLVMValueRef begin, LLVMValueRef end) {
  const CgKernel *k = E->k;
  const CgConv *cv = &k->conv;
  int64_t O = cv->O, OH = cv->OH, OW = cv->OW, T = k->wino_t;
  int64_t tw = (OW + 1) / 2, th = (OH + 1) / 2, tps = k->tile > 0 ? k->tile : th * tw;
  Loop li, lr, lx;
  em_loop_open(E, &li, begin, end, 0, NULL);
  LLVMValueRef j = em_udivc(E, li.iv, O), o = em_uremc(E, li.iv, O);
  LLVMValueRef plane = em_imulc(E, em_iadd(E, em_imulc(E, em_iadd(E, E->n0, j), O), o), OH * OW);
  LLVMValueRef dbase = em_iadd(E, em_imulc(E, o, T), em_imulc(E, j, tps));
  LLVMValueRef ty0 = em_udivc(E, E->p0, tw);
  em_loop_open(E, &lr, em_i64(E, 0), em_i64(E, tps / tw), 0, NULL);
  LLVMValueRef oy = em_imulc(E, em_iadd(E, ty0, lr.iv), 2), rowok[2], rowat[2];
  for (int a = 0; a < 2; a++) {
    LLVMValueRef iy = em_iaddc(E, oy, a);
    rowok[a] = inside(E, iy, OH);
    rowat[a] = em_iadd(E, plane, em_imulc(E, clamp(E, iy, OH), OW));
  }
  LLVMValueRef drow = em_iadd(E, dbase, em_imulc(E, lr.iv, tw));
  em_loop_open(E, &lx, em_i64(E, 0), em_i64(E, tw), 0, NULL);
  LLVMValueRef ox = em_imulc(E, lx.iv, 2), colok[2], colat[2];
  for (int b = 0; b < 2; b++) {
    LLVMValueRef ix = em_iaddc(E, ox, b);
    colok[b] = inside(E, ix, OW);
    colat[b] = clamp(E, ix, OW);
  }
  LLVMValueRef d[4], t[8], v[16];
  for (int a = 0; a < 2; a++)
    for (int b = 0; b < 2; b++) {
      LLVMValueRef val = em_load(E, k->x_arg, E->f32, em_iadd(E, rowat[a], colat[b]));
      d[2 * a + b] = LLVMBuildSelect(B, LLVMBuildAnd(B, rowok[a], colok[b], ""), val, em_f32(E, 0), "");
    }
  for (int x = 0; x < 2; x++) a2(E, d + x, 2, t + x, 2);     /* t [4][2] = A dy (down the columns) */
  for (int r = 0; r < 4; r++) a2(E, t + 2 * r, 1, v + 4 * r, 1); /* v [4][4] = t A^T (along the rows) */
  LLVMValueRef at = em_iadd(E, drow, lx.iv);
  for (int e = 0; e < 16; e++) em_store(E, k->col_arg, v[e], em_iaddc(E, at, e * O * T));
  em_loop_close(E, &lx, NULL, NULL, false);
  em_loop_close(E, &lr, NULL, NULL, false);
  em_loop_close(E, &li, NULL, NULL, false);
}

/* Output channel o per iteration, every input channel c: dU[e, o, c] (the
 * 4x4 grid) -> dw[o, c] = G^T dU G (3x3). */
void em_kernel_wino_wgrad(Emit *E, LLVMValueRef begin, LLVMValueRef end) {
  const CgKernel *k = E->k;
  const CgConv *cv = &k->conv;
  int64_t C = cv->C, O = cv->O;
  Loop lo, lc;
  em_loop_open(E, &lo, begin, end, 0, NULL);
  em_loop_open(E, &lc, em_i64(E, 0), em_i64(E, C), 0, NULL);
  LLVMValueRef at = em_iadd(E, em_imulc(E, lo.iv, C), lc.iv);
  LLVMValueRef u[16], t[12], g[9];
  for (int e = 0; e < 16; e++) u[e] = em_load(E, k->x_arg, E->f32, em_iaddc(E, at, e * O * C));
  for (int x = 0; x < 4; x++) gt4(E, u + x, 4, t + x, 4);     /* t [3][4] = G^T u */
  for (int r = 0; r < 3; r++) gt4(E, t + 4 * r, 1, g + 3 * r, 1); /* g [3][3] = t G */
  LLVMValueRef base = em_imulc(E, at, 9);
  for (int i = 0; i < 9; i++) em_store(E, k->dst_arg, g[i], em_iaddc(E, base, i));
  em_loop_close(E, &lc, NULL, NULL, false);
  em_loop_close(E, &lo, NULL, NULL, false);
}
