/* emit_winograd.c — the transform kernels of Winograd F(m x m, 3x3),
 * m = 2 or 4 (CgKernel.wino_m; see codegen/lower_winograd.c for the
 * layouts), over tiles of a = m + 2 inputs. F(2x2,3x3):
 *
 *   B^T = | 1  0 -1  0 |    G = | 1    0    0  |    A^T = | 1  1  1  0 |
 *         | 0  1  1  0 |        | 1/2  1/2  1/2 |          | 0  1 -1 -1 |
 *         | 0 -1  1  0 |        | 1/2 -1/2  1/2 |
 *         | 0  1  0 -1 |        | 0    0    1  |
 *
 * F(4x4,3x3) (interpolation points 0, 1, -1, 2, -2, infinity): B4T, G4
 * and A4T below. Each 2-D transform is the 1-D one down the columns, then
 * along the rows, in float32. Position e = a r + s of the a x a grid is
 * plane e of U, V, M. The weight gradient's transforms are the transposes
 * of the output and weight ones: D = A dy A^T (m x m -> a x a) and
 * dw = G^T dU G (a x a -> 3x3). */
#include <stdlib.h>

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

/* ---- F(2x2,3x3)'s 1-D transforms, by hand ---- */

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

/* ---- F(4x4,3x3)'s, from the matrices ---- */

static const double B4T[6][6] = {{4, 0, -5, 0, 1, 0},  {0, -4, -4, 1, 1, 0}, {0, 4, -4, -1, 1, 0},
                                 {0, -2, -1, 2, 1, 0}, {0, 2, -1, -2, 1, 0}, {0, 4, 0, -5, 0, 1}};
static const double G4[6][3] = {{1.0 / 4, 0, 0},          {-1.0 / 6, -1.0 / 6, -1.0 / 6}, {-1.0 / 6, 1.0 / 6, -1.0 / 6},
                                {1.0 / 24, 1.0 / 12, 1.0 / 6}, {1.0 / 24, -1.0 / 12, 1.0 / 6}, {0, 0, 1}};
static const double A4T[4][6] = {{1, 1, 1, 1, 1, 0}, {0, 1, -1, 2, -2, 0}, {0, 1, 1, 4, 4, 0}, {0, 1, -1, 8, -8, 1}};

/* out[i * so] = sum_j M(i, j) in[j * si], i < rows, j < cols, where M(i, j)
 * = mat[i * ri + j * rj] (rj = 1, ri = cols: the matrix; ri = 1, rj = its
 * row length: its transpose). Zero terms are skipped, +-1 ones add. */
static void mat_apply(Emit *E, const double *mat, int ri, int rj, int rows, int cols, LLVMValueRef *in, int si,
                      LLVMValueRef *out, int so) {
  for (int i = 0; i < rows; i++) {
    LLVMValueRef acc = NULL;
    for (int j = 0; j < cols; j++) {
      double c = mat[i * ri + j * rj];
      if (c == 0) continue;
      LLVMValueRef x = in[j * si];
      if (!acc) acc = c == 1 ? x : c == -1 ? LLVMBuildFNeg(B, x, "") : LLVMBuildFMul(B, x, em_f32(E, c), "");
      else if (c == 1) acc = fadd(E, acc, x);
      else if (c == -1) acc = fsub(E, acc, x);
      else acc = fadd(E, acc, LLVMBuildFMul(B, x, em_f32(E, c), ""));
    }
    out[i * so] = acc ? acc : em_f32(E, 0);
  }
}

/* ---- the 1-D transforms for tile size m ---- */

/* a -> a: B^T (bt4 takes one stride: the callers' si == so) */
static void tf_bt(Emit *E, int m, LLVMValueRef *in, int si, LLVMValueRef *out, int so) {
  if (m == 2) bt4(E, in, si, out);
  else mat_apply(E, &B4T[0][0], 6, 1, 6, 6, in, si, out, so);
}
/* 3 -> a: G */
static void tf_g(Emit *E, int m, LLVMValueRef *in, int si, LLVMValueRef *out, int so) {
  if (m == 2) g3(E, in, si, out, so);
  else mat_apply(E, &G4[0][0], 3, 1, 6, 3, in, si, out, so);
}
/* a -> m: A^T */
static void tf_at(Emit *E, int m, LLVMValueRef *in, int si, LLVMValueRef *out, int so) {
  if (m == 2) at4(E, in, si, out, so);
  else mat_apply(E, &A4T[0][0], 6, 1, 4, 6, in, si, out, so);
}
/* m -> a: A */
static void tf_a(Emit *E, int m, LLVMValueRef *in, int si, LLVMValueRef *out, int so) {
  if (m == 2) a2(E, in, si, out, so);
  else mat_apply(E, &A4T[0][0], 1, 6, 6, 4, in, si, out, so);
}
/* a -> 3: G^T */
static void tf_gt(Emit *E, int m, LLVMValueRef *in, int si, LLVMValueRef *out, int so) {
  if (m == 2) gt4(E, in, si, out, so);
  else mat_apply(E, &G4[0][0], 1, 3, 3, 6, in, si, out, so);
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

/* Output channel o per iteration, every input channel c: the 3x3 kernel
 * g = w[o, c] (flipped: w[c, o] turned by 180 degrees) -> U[e, o, c]. */
void em_kernel_wino_weight(Emit *E, LLVMValueRef begin, LLVMValueRef end) {
  const CgKernel *k = E->k;
  const CgConv *cv = &k->conv;
  int64_t C = cv->C, O = cv->O;
  int m = k->wino_m, a = m + 2;
  Loop lo, lc;
  em_loop_open(E, &lo, begin, end, 0, NULL);
  em_loop_open(E, &lc, em_i64(E, 0), em_i64(E, C), 0, NULL);
  LLVMValueRef base = k->wino_flip ? em_imulc(E, em_iadd(E, em_imulc(E, lc.iv, O), lo.iv), 9) : em_imulc(E, em_iadd(E, em_imulc(E, lo.iv, C), lc.iv), 9);
  LLVMValueRef g[9], t[18], u[36];
  for (int i = 0; i < 9; i++) g[i] = em_load(E, k->x_arg, E->f32, em_iaddc(E, base, k->wino_flip ? 8 - i : i));
  for (int x = 0; x < 3; x++) tf_g(E, m, g + x, 3, t + x, 3);     /* t [a][3] = G g */
  for (int r = 0; r < a; r++) tf_g(E, m, t + 3 * r, 1, u + a * r, 1); /* u [a][a] = t G^T */
  LLVMValueRef at = em_iadd(E, em_imulc(E, lo.iv, C), lc.iv);
  for (int e = 0; e < a * a; e++) em_store(E, k->dst_arg, u[e], em_iaddc(E, at, e * O * C));
  em_loop_close(E, &lc, NULL, NULL, false);
  em_loop_close(E, &lo, NULL, NULL, false);
}

/* Rule wino-prologue: what computing x at (n, c, ., .) from group_norm
 * wino_gn needs, per (sample, channel) iteration: its mean and rstd (from
 * the statistics kernel) and gamma and beta. The norm is applied as the
 * group_norm kernel applies it, fma((h - mean) rstd, gamma, beta), so x is
 * bit for bit the value an unfused plan stores (and a remat copy read by
 * the backward recomputes). */
typedef struct {
  LLVMValueRef n, c, mean, rstd, gamma, beta;
} Prologue;

static Prologue prologue_of(Emit *E, LLVMValueRef n, LLVMValueRef c) {
  const CgKernel *k = E->k;
  const IrNode *gn = &E->g->node[k->wino_gn];
  int64_t C = gn->shape.d[1], G = gn->attr.groups;
  LLVMValueRef at = em_imulc(E, em_iadd(E, em_imulc(E, n, G), em_udivc(E, c, C / G)), 2);
  Idx Ic = em_idx1(c, C);
  LLVMValueRef mean = em_load(E, k->stats_arg, E->f32, at), rstd = em_load(E, k->stats_arg, E->f32, em_iaddc(E, at, 1));
  return (Prologue){n, c, mean, rstd, em_eval(E, gn->in[1], &Ic), em_eval(E, gn->in[2], &Ic)};
}

/* x at (n, c, iy, ix), in the image: its members evaluated on the
 * group_norm's value there (h: the loaded value). */
static LLVMValueRef prologue_x(Emit *E, const Prologue *p, LLVMValueRef h, LLVMValueRef iy, LLVMValueRef ix) {
  const CgKernel *k = E->k;
  LLVMValueRef d[4] = {p->n, p->c, iy, ix};
  Idx I = em_idx_dims(d, &E->g->node[k->wino_gn].shape);
  LLVMValueRef y = em_fma(E, LLVMBuildFMul(B, LLVMBuildFSub(B, h, p->mean, ""), p->rstd, ""), p->gamma, p->beta);
  em_cache_put(E, k->wino_gn, &I, y);
  return em_eval(E, k->wino_x, &I);
}

/* Iteration (j, c): every tile of the chunk's sample n0 + j, channel c:
 * its a x a input block d from (m ty - p, m tx - p), zero outside the
 * image, -> V[e, c, j tps + tile] (tiles counted from the window's first,
 * p0). With wino_pro, x is computed from the group_norm's input (see
 * CgKernel.wino_pro). */
void em_kernel_wino_input(Emit *E, LLVMValueRef begin, LLVMValueRef end) {
  const CgKernel *k = E->k;
  const CgConv *cv = &k->conv;
  int64_t C = cv->C, H = cv->H, W = cv->W, p = cv->pad, T = k->wino_t;
  int m = k->wino_m, a = m + 2;
  int64_t tw = (cv->OW + m - 1) / m, th = (cv->OH + m - 1) / m, tps = k->tile > 0 ? k->tile : th * tw;
  Loop li, lr, lx;
  em_loop_open(E, &li, begin, end, 0, NULL);
  LLVMValueRef j = em_udivc(E, li.iv, C), c = em_uremc(E, li.iv, C);
  LLVMValueRef plane = em_imulc(E, em_iadd(E, em_imulc(E, em_iadd(E, E->n0, j), C), c), H * W);
  Prologue pro;
  if (k->wino_pro) pro = prologue_of(E, em_iadd(E, E->n0, j), c);
  LLVMValueRef vbase = em_iadd(E, em_imulc(E, c, T), em_imulc(E, j, tps));
  LLVMValueRef ty0 = em_udivc(E, E->p0, tw);
  em_loop_open(E, &lr, em_i64(E, 0), em_i64(E, tps / tw), 0, NULL);
  LLVMValueRef iy0 = em_iaddc(E, em_imulc(E, em_iadd(E, ty0, lr.iv), m), -p);
  LLVMValueRef rowok[6], rowat[6], rowy[6];
  for (int dy = 0; dy < a; dy++) {
    LLVMValueRef iy = em_iaddc(E, iy0, dy);
    rowok[dy] = inside(E, iy, H);
    rowy[dy] = clamp(E, iy, H);
    rowat[dy] = em_iadd(E, plane, em_imulc(E, rowy[dy], W));
  }
  LLVMValueRef vrow = em_iadd(E, vbase, em_imulc(E, lr.iv, tw));
  em_loop_open(E, &lx, em_i64(E, 0), em_i64(E, tw), 0, NULL);
  LLVMValueRef ix0 = em_iaddc(E, em_imulc(E, lx.iv, m), -p), colok[6], colat[6];
  for (int dx = 0; dx < a; dx++) {
    LLVMValueRef ix = em_iaddc(E, ix0, dx);
    colok[dx] = inside(E, ix, W);
    colat[dx] = clamp(E, ix, W);
  }
  LLVMValueRef d[36], t[36], v[36];
  for (int dy = 0; dy < a; dy++)
    for (int dx = 0; dx < a; dx++) {
      LLVMValueRef val = em_load(E, k->x_arg, E->f32, em_iadd(E, rowat[dy], colat[dx]));
      if (k->wino_pro) val = prologue_x(E, &pro, val, rowy[dy], colat[dx]);
      d[a * dy + dx] = LLVMBuildSelect(B, LLVMBuildAnd(B, rowok[dy], colok[dx], ""), val, em_f32(E, 0), "");
    }
  for (int x = 0; x < a; x++) tf_bt(E, m, d + x, a, t + x, a);     /* t = B^T d (down the columns) */
  for (int r = 0; r < a; r++) tf_bt(E, m, t + a * r, 1, v + a * r, 1); /* v = t B (along the rows) */
  LLVMValueRef at = em_iadd(E, vrow, lx.iv);
  for (int e = 0; e < a * a; e++) em_store(E, k->col_arg, v[e], em_iaddc(E, at, e * C * T));
  em_loop_close(E, &lx, NULL, NULL, false);
  em_loop_close(E, &lr, NULL, NULL, false);
  em_loop_close(E, &li, NULL, NULL, false);
}

/* (oy + i < OH) for the tile's row offset i, or NULL where every tile
 * row has it (i below the last tile row's height). */
static LLVMValueRef edge_ok(Emit *E, LLVMValueRef o, int i, int64_t n, int m) {
  int64_t last = n - m * ((n + m - 1) / m - 1); /* rows of the last tile, 1..m */
  return i < last ? NULL : LLVMBuildICmp(B, LLVMIntSLT, em_iaddc(E, o, i), em_i64(E, n), "");
}

/* The m x m outputs y of one tile, at rows oy + r and columns ox + s of
 * plane (n, o): each stored node evaluated there (the root's value is y;
 * the group's epilogue members are computed from it and what they load),
 * then stored where the position lies inside the OH x OW plane. Positions
 * outside it are evaluated at clamped coordinates, so nothing reads out of
 * bounds and every value dominates the conditional stores after it. */
static void store_tile(Emit *E, LLVMValueRef n, LLVMValueRef o, LLVMValueRef oy, LLVMValueRef ox,
                       LLVMValueRef *y) {
  const CgKernel *k = E->k;
  const CgConv *cv = &k->conv;
  int m = k->wino_m, ns = k->nstore;
  LLVMValueRef row_ok[4], col_ok[4], ry[4], cx[4];
  for (int r = 0; r < m; r++) {
    row_ok[r] = edge_ok(E, oy, r, cv->OH, m);
    ry[r] = row_ok[r] ? clamp(E, em_iaddc(E, oy, r), cv->OH) : em_iaddc(E, oy, r);
    col_ok[r] = edge_ok(E, ox, r, cv->OW, m);
    cx[r] = col_ok[r] ? clamp(E, em_iaddc(E, ox, r), cv->OW) : em_iaddc(E, ox, r);
  }
  Idx I[16];
  LLVMValueRef *val = malloc(sizeof(LLVMValueRef) * (size_t)(m * m * ns + 1));
  for (int e = 0; e < m * m; e++) {
    LLVMValueRef d[4] = {n, o, ry[e / m], cx[e % m]};
    I[e] = em_idx_dims(d, &E->g->node[k->root].shape);
    em_cache_put(E, k->root, &I[e], y[e]);
    for (int i = 0; i < ns; i++) val[e * ns + i] = em_eval(E, k->store[i].node, &I[e]);
  }
  for (int e = 0; e < m * m; e++) {
    LLVMValueRef a = row_ok[e / m], b = col_ok[e % m], ok = a && b ? LLVMBuildAnd(B, a, b, "") : a ? a : b;
    LLVMValueRef at = em_idx_flat(E, &I[e]);
    for (int i = 0; i < ns; i++) store_if(E, ok, k->store[i].arg, val[e * ns + i], at);
  }
  free(val);
}

/* Iteration (j, o): every tile of sample n0 + j, output channel o: mm from
 * M[e, o, j tps + tile] -> the m x m outputs y[n0 + j, o, m ty + r, m tx + s]
 * that lie inside the OH x OW plane, through the kernel's stores (y itself
 * and/or the group's epilogue at y's index). */
void em_kernel_wino_output(Emit *E, LLVMValueRef begin, LLVMValueRef end) {
  const CgKernel *k = E->k;
  const CgConv *cv = &k->conv;
  int64_t O = cv->O, OH = cv->OH, OW = cv->OW, T = k->wino_t;
  int m = k->wino_m, a = m + 2;
  int64_t tw = (OW + m - 1) / m, th = (OH + m - 1) / m, tps = k->tile > 0 ? k->tile : th * tw;
  Loop li, lr, lx;
  em_loop_open(E, &li, begin, end, 0, NULL);
  LLVMValueRef j = em_udivc(E, li.iv, O), o = em_uremc(E, li.iv, O), n = em_iadd(E, E->n0, j);
  LLVMValueRef mbase = em_iadd(E, em_imulc(E, o, T), em_imulc(E, j, tps));
  LLVMValueRef ty0 = em_udivc(E, E->p0, tw);
  em_loop_open(E, &lr, em_i64(E, 0), em_i64(E, tps / tw), 0, NULL);
  LLVMValueRef oy = em_imulc(E, em_iadd(E, ty0, lr.iv), m);
  LLVMValueRef mrow = em_iadd(E, mbase, em_imulc(E, lr.iv, tw));
  em_loop_open(E, &lx, em_i64(E, 0), em_i64(E, tw), 0, NULL);
  LLVMValueRef mv[36], t[24], y[16];
  LLVMValueRef at = em_iadd(E, mrow, lx.iv);
  for (int e = 0; e < a * a; e++) mv[e] = em_load(E, k->col_arg, E->f32, em_iaddc(E, at, e * O * T));
  for (int x = 0; x < a; x++) tf_at(E, m, mv + x, a, t + x, a);     /* t [m][a] = A^T mv */
  for (int r = 0; r < m; r++) tf_at(E, m, t + a * r, 1, y + m * r, 1); /* y [m][m] = t A */
  store_tile(E, n, o, oy, em_imulc(E, lx.iv, m), y);
  em_loop_close(E, &lx, NULL, NULL, false);
  em_loop_close(E, &lr, NULL, NULL, false);
  em_loop_close(E, &li, NULL, NULL, false);
}

/* Iteration (j, o): every tile of sample n0 + j, output channel o: the
 * m x m block of dy at (m ty, m tx), zero outside the OH x OW plane, ->
 * D[e, o, j tps + tile] = (A dy A^T)[e] (tiles counted from the window's
 * first). */
void em_kernel_wino_dy(Emit *E, LLVMValueRef begin, LLVMValueRef end) {
  const CgKernel *k = E->k;
  const CgConv *cv = &k->conv;
  int64_t O = cv->O, OH = cv->OH, OW = cv->OW, T = k->wino_t;
  int m = k->wino_m, a = m + 2;
  int64_t tw = (OW + m - 1) / m, th = (OH + m - 1) / m, tps = k->tile > 0 ? k->tile : th * tw;
  Loop li, lr, lx;
  em_loop_open(E, &li, begin, end, 0, NULL);
  LLVMValueRef j = em_udivc(E, li.iv, O), o = em_uremc(E, li.iv, O);
  LLVMValueRef plane = em_imulc(E, em_iadd(E, em_imulc(E, em_iadd(E, E->n0, j), O), o), OH * OW);
  LLVMValueRef dbase = em_iadd(E, em_imulc(E, o, T), em_imulc(E, j, tps));
  LLVMValueRef ty0 = em_udivc(E, E->p0, tw);
  em_loop_open(E, &lr, em_i64(E, 0), em_i64(E, tps / tw), 0, NULL);
  LLVMValueRef oy = em_imulc(E, em_iadd(E, ty0, lr.iv), m), rowok[4], rowat[4];
  for (int r = 0; r < m; r++) {
    LLVMValueRef iy = em_iaddc(E, oy, r);
    rowok[r] = inside(E, iy, OH);
    rowat[r] = em_iadd(E, plane, em_imulc(E, clamp(E, iy, OH), OW));
  }
  LLVMValueRef drow = em_iadd(E, dbase, em_imulc(E, lr.iv, tw));
  em_loop_open(E, &lx, em_i64(E, 0), em_i64(E, tw), 0, NULL);
  LLVMValueRef ox = em_imulc(E, lx.iv, m), colok[4], colat[4];
  for (int s = 0; s < m; s++) {
    LLVMValueRef ix = em_iaddc(E, ox, s);
    colok[s] = inside(E, ix, OW);
    colat[s] = clamp(E, ix, OW);
  }
  LLVMValueRef d[16], t[24], v[36];
  for (int r = 0; r < m; r++)
    for (int s = 0; s < m; s++) {
      LLVMValueRef val = em_load(E, k->x_arg, E->f32, em_iadd(E, rowat[r], colat[s]));
      d[m * r + s] = LLVMBuildSelect(B, LLVMBuildAnd(B, rowok[r], colok[s], ""), val, em_f32(E, 0), "");
    }
  for (int x = 0; x < m; x++) tf_a(E, m, d + x, m, t + x, m);     /* t [a][m] = A dy (down the columns) */
  for (int r = 0; r < a; r++) tf_a(E, m, t + m * r, 1, v + a * r, 1); /* v [a][a] = t A^T (along the rows) */
  LLVMValueRef at = em_iadd(E, drow, lx.iv);
  for (int e = 0; e < a * a; e++) em_store(E, k->col_arg, v[e], em_iaddc(E, at, e * O * T));
  em_loop_close(E, &lx, NULL, NULL, false);
  em_loop_close(E, &lr, NULL, NULL, false);
  em_loop_close(E, &li, NULL, NULL, false);
}

/* Output channel o per iteration, every input channel c: dU[e, o, c] (the
 * a x a grid) -> dw[o, c] = G^T dU G (3x3). */
void em_kernel_wino_wgrad(Emit *E, LLVMValueRef begin, LLVMValueRef end) {
  const CgKernel *k = E->k;
  const CgConv *cv = &k->conv;
  int64_t C = cv->C, O = cv->O;
  int m = k->wino_m, a = m + 2;
  Loop lo, lc;
  em_loop_open(E, &lo, begin, end, 0, NULL);
  em_loop_open(E, &lc, em_i64(E, 0), em_i64(E, C), 0, NULL);
  LLVMValueRef at = em_iadd(E, em_imulc(E, lo.iv, C), lc.iv);
  LLVMValueRef u[36], t[18], g[9];
  for (int e = 0; e < a * a; e++) u[e] = em_load(E, k->x_arg, E->f32, em_iaddc(E, at, e * O * C));
  for (int x = 0; x < a; x++) tf_gt(E, m, u + x, a, t + x, a);     /* t [3][a] = G^T u */
  for (int r = 0; r < 3; r++) tf_gt(E, m, t + a * r, 1, g + 3 * r, 1); /* g [3][3] = t G */
  LLVMValueRef base = em_imulc(E, at, 9);
  for (int i = 0; i < 9; i++) em_store(E, k->dst_arg, g[i], em_iaddc(E, base, i));
  em_loop_close(E, &lc, NULL, NULL, false);
  em_loop_close(E, &lo, NULL, NULL, false);
}
