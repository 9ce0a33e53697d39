/* emit_direct.c — the kernels of the direct strided convolutions (see
 * codegen/lower_direct.c for the grids and codegen/lower.h's CgKernel for
 * the fields): the weight layout, the input onto phase grids, the grids
 * back to the output. */
#include "codegen/llvm/emit.h"

#define B (E->b)

/* Fills arg[base + i] for i in [lo, hi) with 0. */
static void zeros(Emit *E, int arg, LLVMValueRef base, LLVMValueRef lo, LLVMValueRef hi) {
  Loop l;
  em_loop_open(E, &l, lo, hi, 0, NULL);
  em_store(E, arg, em_f32(E, 0), em_iadd(E, base, l.iv));
  em_loop_close(E, &l, NULL, NULL, false);
}

/* Output channel o per iteration: for each shift (dy, dx), sub-tap (a, b)
 * and channel c, w[o, c, a + s dy, b + s dx] (ph_tr: w[c, o, ...]) <-> Ws
 * at [(dy, dx)][o][(a, b)][c] (ph_tr: [(dy, dx)][(a, b)][o][c]); w -> Ws,
 * or Ws -> w if ph_inv. The shifts and sub-taps are unrolled. */
void em_kernel_phase_weight(Emit *E, LLVMValueRef begin, LLVMValueRef end) {
  const CgKernel *k = E->k;
  const CgConv *cv = &k->conv;
  int64_t s = cv->stride, ss = s * s, C = cv->C, O = cv->O, KH = cv->KH, KW = cv->KW, mh = KH / s, mw = KW / s;
  Loop lo, lc;
  em_loop_open(E, &lo, begin, end, 0, NULL);
  LLVMValueRef o = lo.iv;
  for (int64_t sh = 0; sh < mh * mw; sh++)
    for (int64_t ab = 0; ab < ss; ab++) {
      int64_t ky = ab / s + s * (sh / mw), kx = ab % s + s * (sh % mw);
      em_loop_open(E, &lc, em_i64(E, 0), em_i64(E, C), 0, NULL);
      LLVMValueRef c = lc.iv, wi, si;
      if (k->ph_tr) {
        wi = em_iaddc(E, em_imulc(E, em_iadd(E, em_imulc(E, c, O), o), KH * KW), ky * KW + kx);
        si = em_iadd(E, em_imulc(E, em_iaddc(E, o, (sh * ss + ab) * O), C), c);
      } else {
        wi = em_iaddc(E, em_imulc(E, em_iadd(E, em_imulc(E, o, C), c), KH * KW), ky * KW + kx);
        si = em_iadd(E, em_imulc(E, em_iaddc(E, em_imulc(E, em_iaddc(E, o, sh * O), ss), ab), C), c);
      }
      if (k->ph_inv) em_store(E, k->dst_arg, em_load(E, k->x_arg, E->f32, si), wi);
      else em_store(E, k->dst_arg, em_load(E, k->x_arg, E->f32, wi), si);
      em_loop_close(E, &lc, NULL, NULL, false);
    }
  em_loop_close(E, &lo, NULL, NULL, false);
}

/* Iteration (ph, c, j), ph = (a, b): grid plane [ph][c][j] (ph_r x ph_w)
 * of sample n0 + j: position (r, t) = src[c, step r + a - off, step t + b -
 * off], or 0 outside src's C x H x W. Each row is a zero run, a run of
 * (strided) reads and another zero run. The last iteration also zeroes the
 * ph_slack elements after the last plane. */
void em_kernel_phase_in(Emit *E, LLVMValueRef begin, LLVMValueRef end) {
  const CgKernel *k = E->k;
  const CgConv *cv = &k->conv;
  int64_t C = cv->C, H = cv->H, W = cv->W, n = k->ph_n, st = k->ph_step, off = k->ph_off, R = k->ph_r, Tw = k->ph_w;
  int64_t nc = k->nc, S = R * Tw, total = n * n * C * nc;
  Loop li, lr, lt;
  em_loop_open(E, &li, begin, end, 0, NULL);
  LLVMValueRef it = li.iv;
  LLVMValueRef ph = em_udivc(E, it, C * nc), c = em_uremc(E, em_udivc(E, it, nc), C), j = em_uremc(E, it, nc);
  LLVMValueRef a = em_udivc(E, ph, n), b = em_uremc(E, ph, n);
  LLVMValueRef plane = em_imulc(E, em_iadd(E, em_imulc(E, em_iadd(E, E->n0, j), C), c), H * W);
  LLVMValueRef dst = em_imulc(E, it, S);
  /* columns t with 0 <= st t + b - off < W: [lo, hi) */
  LLVMValueRef lo = em_udivc(E, LLVMBuildNSWSub(B, em_i64(E, off + st - 1), b, ""), st);
  LLVMValueRef hi = em_udivc(E, LLVMBuildNSWSub(B, em_i64(E, W + off + st - 1), b, ""), st);
  hi = em_min_i64(E, hi, em_i64(E, Tw));
  lo = em_min_i64(E, lo, hi);
  LLVMValueRef xoff = LLVMBuildNSWSub(B, b, em_i64(E, off), "");
  em_loop_open(E, &lr, em_i64(E, 0), em_i64(E, R), 0, NULL);
  LLVMValueRef iy = LLVMBuildNSWSub(B, em_iadd(E, em_imulc(E, lr.iv, st), a), em_i64(E, off), "");
  LLVMValueRef rowok = LLVMBuildAnd(B, LLVMBuildICmp(B, LLVMIntSGE, iy, em_i64(E, 0), ""),
                                    LLVMBuildICmp(B, LLVMIntSLT, iy, em_i64(E, H), ""), "");
  LLVMValueRef iyc = em_min_i64(E, em_max_i64(E, iy, em_i64(E, 0)), em_i64(E, H - 1));
  LLVMValueRef src = em_iadd(E, em_iadd(E, plane, em_imulc(E, iyc, W)), xoff);
  LLVMValueRef row = em_iadd(E, dst, em_imulc(E, lr.iv, Tw));
  zeros(E, k->dst_arg, row, em_i64(E, 0), lo);
  em_loop_open(E, &lt, lo, hi, 0, NULL);
  LLVMValueRef v = em_load(E, k->x_arg, E->f32, em_iadd(E, src, em_imulc(E, lt.iv, st)));
  em_store(E, k->dst_arg, LLVMBuildSelect(B, rowok, v, em_f32(E, 0), ""), em_iadd(E, row, lt.iv));
  em_loop_close(E, &lt, NULL, NULL, false);
  zeros(E, k->dst_arg, row, hi, em_i64(E, Tw));
  em_loop_close(E, &lr, NULL, NULL, false);
  if (k->ph_slack > 0) {
    LLVMBasicBlockRef tail = LLVMAppendBasicBlockInContext(E->ctx, E->fn, "phase.slack");
    LLVMBasicBlockRef next = LLVMAppendBasicBlockInContext(E->ctx, E->fn, "phase.next");
    LLVMBuildCondBr(B, LLVMBuildICmp(B, LLVMIntEQ, it, em_i64(E, total - 1), ""), tail, next);
    LLVMPositionBuilderAtEnd(B, tail);
    zeros(E, k->dst_arg, em_i64(E, total * S), em_i64(E, 0), em_i64(E, k->ph_slack));
    LLVMBuildBr(B, next);
    LLVMPositionBuilderAtEnd(B, next);
  }
  em_loop_close(E, &li, NULL, NULL, false);
}

/* Iteration (j, o): output plane dst[n0 + j, o] (OH x OW), Y + off = n u +
 * e, X + off = n v + f: from grid plane [(e, f)][o][j] at (u, v). */
void em_kernel_phase_out(Emit *E, LLVMValueRef begin, LLVMValueRef end) {
  const CgKernel *k = E->k;
  const CgConv *cv = &k->conv;
  int64_t O = cv->O, OH = cv->OH, OW = cv->OW, n = k->ph_n, off = k->ph_off, nc = k->nc, S = k->ph_r * k->ph_w;
  Loop li, ly, lx;
  em_loop_open(E, &li, begin, end, 0, NULL);
  LLVMValueRef j = em_udivc(E, li.iv, O), o = em_uremc(E, li.iv, O);
  LLVMValueRef dst = em_imulc(E, em_iadd(E, em_imulc(E, E->n0, O), li.iv), OH * OW);
  LLVMValueRef sbase = em_imulc(E, em_iadd(E, em_imulc(E, o, nc), j), S); /* plane [0][o][j] */
  em_loop_open(E, &ly, em_i64(E, 0), em_i64(E, OH), 0, NULL);
  LLVMValueRef yy = em_iaddc(E, ly.iv, off);
  LLVMValueRef e = em_uremc(E, yy, n), u = em_udivc(E, yy, n);
  LLVMValueRef srow = em_iadd(E, em_iadd(E, sbase, em_imulc(E, e, n * O * nc * S)), em_imulc(E, u, k->ph_w));
  LLVMValueRef drow = em_iadd(E, dst, em_imulc(E, ly.iv, OW));
  em_loop_open(E, &lx, em_i64(E, 0), em_i64(E, OW), 0, NULL);
  LLVMValueRef xx = em_iaddc(E, lx.iv, off);
  LLVMValueRef f = em_uremc(E, xx, n), v = em_udivc(E, xx, n);
  LLVMValueRef at = em_iadd(E, em_iadd(E, srow, em_imulc(E, f, O * nc * S)), v);
  em_store(E, k->dst_arg, em_load(E, k->x_arg, E->f32, at), em_iadd(E, drow, lx.iv));
  em_loop_close(E, &lx, NULL, NULL, false);
  em_loop_close(E, &ly, NULL, NULL, false);
  em_loop_close(E, &li, NULL, NULL, false);
}
