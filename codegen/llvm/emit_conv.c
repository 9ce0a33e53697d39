/* emit_conv.c — the kernels around GEMM-lowered convolutions (im2col,
 * packing a chunk of samples, the col2im gather), gather_backward's
 * scatter-add and the Gumbel-noise kernel. */
#include "codegen/llvm/emit.h"

#define B (E->b)

static LLVMValueRef lt(Emit *E, LLVMValueRef a, LLVMValueRef b) { return LLVMBuildICmp(B, LLVMIntSLT, a, b, ""); }

/* [*lo, *hi): the i in [0, count) with 0 <= i s + off < limit (off may be
 * negative), as runtime values; empty ranges have lo == hi. */
static void valid_range(Emit *E, LLVMValueRef off, int64_t s, int64_t limit, int64_t count, LLVMValueRef *lo,
                        LLVMValueRef *hi) {
  LLVMValueRef zero = em_i64(E, 0);
  LLVMValueRef a = LLVMBuildNSWSub(B, zero, off, ""); /* i >= ceil(-off / s) */
  LLVMValueRef l = em_udivc(E, em_iaddc(E, em_max_i64(E, a, zero), s - 1), s);
  LLVMValueRef bnum = LLVMBuildNSWSub(B, em_i64(E, limit - 1), off, ""); /* i <= floor((limit-1-off) / s) */
  LLVMValueRef h = em_iaddc(E, em_udivc(E, em_max_i64(E, bnum, zero), s), 1);
  h = LLVMBuildSelect(B, lt(E, bnum, zero), zero, em_min_i64(E, h, em_i64(E, count)), "");
  l = em_min_i64(E, l, em_i64(E, count));
  *lo = l;
  *hi = em_max_i64(E, h, l);
}

/* Fills col[base + ox] for ox in [lo, hi) with 0. */
static void zero_run(Emit *E, int arg, LLVMValueRef base, LLVMValueRef lo, LLVMValueRef hi) {
  Loop l;
  em_loop_open(E, &l, lo, hi, 0, NULL);
  em_store(E, arg, em_f32(E, 0), em_iadd(E, base, l.iv));
  em_loop_close(E, &l, NULL, NULL, false);
}

/* im2col of a stride-1 convolution whose output rows are as wide as its
 * input's (OW == W, "same" padding): the window's part of col row (q, j)
 * is the input plane shifted by (ky - p) W + (kx - p), so it is one
 * contiguous copy (a memcpy-like loop) between zero runs for the rows in
 * the padding, after which the one or two columns per row that the shift
 * wrapped around from the neighbouring row are zeroed. */
static void im2col_same(Emit *E, LLVMValueRef c, LLVMValueRef ky, LLVMValueRef kx, LLVMValueRef j,
                        LLVMValueRef crow0, int64_t rows) {
  const CgKernel *k = E->k;
  const CgConv *cv = &k->conv;
  int64_t p = cv->pad, W = cv->W, HW = cv->H * cv->W, OW = cv->OW;
  LLVMValueRef y0 = em_udivc(E, E->p0, OW), yend = em_iaddc(E, y0, rows);
  LLVMValueRef shift =
      em_iadd(E, em_imulc(E, LLVMBuildNSWSub(B, ky, em_i64(E, p), ""), W), LLVMBuildNSWSub(B, kx, em_i64(E, p), ""));
  /* output rows whose input row oy - p + ky is inside: [vlo, vhi) */
  LLVMValueRef vlo = em_min_i64(E, em_max_i64(E, LLVMBuildNSWSub(B, em_i64(E, p), ky, ""), y0), yend);
  LLVMValueRef vhi = em_min_i64(E, em_max_i64(E, LLVMBuildNSWSub(B, em_i64(E, cv->H + p), ky, ""), vlo), yend);
  LLVMValueRef clo = em_imulc(E, LLVMBuildNSWSub(B, vlo, y0, ""), OW), chi = em_imulc(E, LLVMBuildNSWSub(B, vhi, y0, ""), OW);
  /* the copy reads inside the plane: window position l + p0 + shift in [0, HW) */
  LLVMValueRef start = em_iadd(E, E->p0, shift);
  LLVMValueRef a = em_min_i64(E, em_max_i64(E, clo, LLVMBuildNSWSub(B, em_i64(E, 0), start, "")), chi);
  LLVMValueRef b = em_max_i64(E, em_min_i64(E, chi, LLVMBuildNSWSub(B, em_i64(E, HW), start, "")), a);
  LLVMValueRef plane = em_imulc(E, em_iadd(E, em_imulc(E, em_iadd(E, E->n0, j), cv->C), c), HW);
  zero_run(E, k->col_arg, crow0, em_i64(E, 0), a);
  Loop l, ly;
  em_loop_open(E, &l, a, b, 0, NULL);
  em_store(E, k->col_arg, em_load(E, k->x_arg, E->f32, em_iadd(E, em_iadd(E, plane, start), l.iv)), em_iadd(E, crow0, l.iv));
  em_loop_close(E, &l, NULL, NULL, false);
  zero_run(E, k->col_arg, crow0, b, em_i64(E, rows * OW));
  /* columns ox with ox - p + kx outside [0, W): [0, left) and [right, OW) */
  LLVMValueRef left =
      em_min_i64(E, em_max_i64(E, LLVMBuildNSWSub(B, em_i64(E, p), kx, ""), em_i64(E, 0)), em_i64(E, OW));
  LLVMValueRef right =
      em_min_i64(E, em_max_i64(E, LLVMBuildNSWSub(B, em_i64(E, W + p), kx, ""), em_i64(E, 0)), em_i64(E, OW));
  em_loop_open(E, &ly, vlo, vhi, 0, NULL);
  LLVMValueRef rb = em_iadd(E, crow0, em_imulc(E, LLVMBuildNSWSub(B, ly.iv, y0, ""), OW));
  zero_run(E, k->col_arg, rb, em_i64(E, 0), left);
  zero_run(E, k->col_arg, rb, right, em_i64(E, OW));
  em_loop_close(E, &ly, NULL, NULL, false);
}

/* One (c, ky, kx) row of col per iteration q: for each sample j of the
 * chunk and output position (oy, ox), x[n0 + j, c, oy s - p + ky, ox s - p + kx]
 * or 0 in the padding (in a tiled window, the output rows from p0 / OW on,
 * tile / OW of them). Each output row splits into a zero run, a run of
 * (strided) reads and another zero run, so the reads vectorise. */
void em_kernel_im2col(Emit *E, LLVMValueRef begin, LLVMValueRef end) {
  const CgKernel *k = E->k;
  const CgConv *cv = &k->conv;
  int64_t s = cv->stride, p = cv->pad;
  Loop lq, lj, ly, lx;
  em_loop_open(E, &lq, begin, end, 0, NULL);
  LLVMValueRef c = em_udivc(E, lq.iv, cv->KH * cv->KW), r = em_uremc(E, lq.iv, cv->KH * cv->KW);
  LLVMValueRef ky = em_udivc(E, r, cv->KW), kx = em_uremc(E, r, cv->KW);
  /* ox with 0 <= ox s - p + kx < W is [lo, hi) */
  LLVMValueRef lo, hi;
  valid_range(E, LLVMBuildNSWSub(B, kx, em_i64(E, p), ""), s, cv->W, cv->OW, &lo, &hi);
  em_loop_open(E, &lj, em_i64(E, 0), em_i64(E, k->nc), 0, NULL);
  int64_t rows = k->tile > 0 ? k->tile / cv->OW : cv->OH;
  if (s == 1 && cv->OW == cv->W) {
    im2col_same(E, c, ky, kx, lj.iv, em_iadd(E, em_imulc(E, lq.iv, k->col_sq), em_imulc(E, lj.iv, k->col_sj)), rows);
    em_loop_close(E, &lj, NULL, NULL, false);
    em_loop_close(E, &lq, NULL, NULL, false);
    return;
  }
  LLVMValueRef n = em_iadd(E, E->n0, lj.iv);
  LLVMValueRef y0 = em_udivc(E, E->p0, cv->OW);
  em_loop_open(E, &ly, em_i64(E, 0), em_i64(E, rows), 0, NULL);
  LLVMValueRef oy = em_iadd(E, y0, ly.iv);
  LLVMValueRef iy = em_iadd(E, LLVMBuildNSWSub(B, em_imulc(E, oy, s), em_i64(E, p), ""), ky);
  LLVMValueRef rowok = LLVMBuildAnd(B, LLVMBuildICmp(B, LLVMIntSGE, iy, em_i64(E, 0), ""), lt(E, iy, em_i64(E, cv->H)), "");
  LLVMValueRef iyc = em_min_i64(E, em_max_i64(E, iy, em_i64(E, 0)), em_i64(E, cv->H - 1));
  LLVMValueRef xrow = em_imulc(E, em_iadd(E, em_imulc(E, em_iadd(E, em_imulc(E, n, cv->C), c), cv->H), iyc), cv->W);
  xrow = em_iadd(E, xrow, LLVMBuildNSWSub(B, kx, em_i64(E, p), ""));
  LLVMValueRef crow = em_iadd(E, em_iadd(E, em_imulc(E, lq.iv, k->col_sq), em_imulc(E, lj.iv, k->col_sj)), em_imulc(E, ly.iv, cv->OW));
  zero_run(E, k->col_arg, crow, em_i64(E, 0), lo);
  em_loop_open(E, &lx, lo, hi, 0, NULL);
  LLVMValueRef v = em_load(E, k->x_arg, E->f32, em_iadd(E, xrow, em_imulc(E, lx.iv, s)));
  em_store(E, k->col_arg, LLVMBuildSelect(B, rowok, v, em_f32(E, 0), ""), em_iadd(E, crow, lx.iv));
  em_loop_close(E, &lx, NULL, NULL, false);
  zero_run(E, k->col_arg, crow, hi, em_i64(E, cv->OW));
  em_loop_close(E, &ly, NULL, NULL, false);
  em_loop_close(E, &lj, NULL, NULL, false);
  em_loop_close(E, &lq, NULL, NULL, false);
}

/* Iteration t = (j, a): row a of sample n0 + j, P elements (in a tiled
 * window the tile from p0), copied to (j, a) of dst, or to (a, j) when
 * transposed. */
void em_kernel_pack(Emit *E, LLVMValueRef begin, LLVMValueRef end) {
  const CgKernel *k = E->k;
  int64_t A = k->pack_a, P = k->pack_p, len = k->tile > 0 ? k->tile : P;
  Loop lt_, lp;
  em_loop_open(E, &lt_, begin, end, 0, NULL);
  LLVMValueRef j = em_udivc(E, lt_.iv, A), a = em_uremc(E, lt_.iv, A);
  LLVMValueRef src = em_iadd(E, em_imulc(E, em_iadd(E, em_imulc(E, em_iadd(E, E->n0, j), A), a), P), E->p0);
  LLVMValueRef dst = k->pack_t ? em_imulc(E, em_iadd(E, em_imulc(E, a, k->nc), j), len) : em_imulc(E, lt_.iv, len);
  em_loop_open(E, &lp, em_i64(E, 0), em_i64(E, len), 0, NULL);
  em_store(E, k->dst_arg, em_load(E, k->x_arg, E->f32, em_iadd(E, src, lp.iv)), em_iadd(E, dst, lp.iv));
  em_loop_close(E, &lp, NULL, NULL, false);
  em_loop_close(E, &lt_, NULL, NULL, false);
}

/* Plane t = (j, o) of a transposed convolution's output, sample n0 + j:
 * zeroed, then every tap (ky, kx) of every input position (iy, ix) added
 * at (iy s - p + ky, ix s - p + kx) if that is inside the plane. One thread
 * owns a plane, so there are no write races. In a tiled window only the
 * input rows [p0 / W, (p0 + tile) / W) add their taps (col counted from
 * p0), and only the sample's first tile (p0 = 0) zeroes the plane. */
void em_kernel_col2im(Emit *E, LLVMValueRef begin, LLVMValueRef end) {
  const CgKernel *k = E->k;
  const CgConv *cv = &k->conv;
  int64_t s = cv->stride, p = cv->pad, P = cv->OH * cv->OW;
  Loop lt_, ly, lx, li, lj;
  em_loop_open(E, &lt_, begin, end, 0, NULL);
  LLVMValueRef j = em_udivc(E, lt_.iv, cv->O), o = em_uremc(E, lt_.iv, cv->O);
  LLVMValueRef plane = em_imulc(E, em_iadd(E, em_imulc(E, em_iadd(E, E->n0, j), cv->O), o), P);
  LLVMValueRef y0 = em_udivc(E, E->p0, cv->W), yend = em_iaddc(E, y0, k->tile > 0 ? k->tile / cv->W : cv->H);
  if (k->tile > 0) {
    LLVMBasicBlockRef zero = LLVMAppendBasicBlockInContext(E->ctx, E->fn, "col2im.zero");
    LLVMBasicBlockRef taps = LLVMAppendBasicBlockInContext(E->ctx, E->fn, "col2im.taps");
    LLVMBuildCondBr(B, LLVMBuildICmp(B, LLVMIntEQ, E->p0, em_i64(E, 0), ""), zero, taps);
    LLVMPositionBuilderAtEnd(B, zero);
    zero_run(E, k->dst_arg, plane, em_i64(E, 0), em_i64(E, P));
    LLVMBuildBr(B, taps);
    LLVMPositionBuilderAtEnd(B, taps);
  } else {
    zero_run(E, k->dst_arg, plane, em_i64(E, 0), em_i64(E, P));
  }
  em_loop_open(E, &ly, em_i64(E, 0), em_i64(E, cv->KH), 0, NULL);
  LLVMValueRef ylo, yhi, xlo, xhi;
  valid_range(E, LLVMBuildNSWSub(B, ly.iv, em_i64(E, p), ""), s, cv->OH, cv->H, &ylo, &yhi);
  ylo = em_max_i64(E, ylo, y0);
  yhi = em_max_i64(E, em_min_i64(E, yhi, yend), ylo);
  em_loop_open(E, &lx, em_i64(E, 0), em_i64(E, cv->KW), 0, NULL);
  valid_range(E, LLVMBuildNSWSub(B, lx.iv, em_i64(E, p), ""), s, cv->OW, cv->W, &xlo, &xhi);
  LLVMValueRef q = em_iadd(E, em_imulc(E, em_iadd(E, em_imulc(E, o, cv->KH), ly.iv), cv->KW), lx.iv);
  LLVMValueRef cbase = em_iadd(E, em_imulc(E, q, k->col_sq), em_imulc(E, j, k->col_sj));
  /* output offset of input (iy, ix): (iy s + ky - p) OW + ix s + kx - p */
  LLVMValueRef obase = em_iadd(E, plane, em_iadd(E, em_imulc(E, LLVMBuildNSWSub(B, ly.iv, em_i64(E, p), ""), cv->OW),
                                         LLVMBuildNSWSub(B, lx.iv, em_i64(E, p), "")));
  em_loop_open(E, &li, ylo, yhi, 0, NULL);
  LLVMValueRef crow = em_iadd(E, cbase, em_imulc(E, LLVMBuildNSWSub(B, li.iv, y0, ""), cv->W));
  LLVMValueRef orow = em_iadd(E, obase, em_imulc(E, li.iv, s * cv->OW));
  em_loop_open(E, &lj, xlo, xhi, 0, NULL);
  LLVMValueRef at = em_iadd(E, orow, em_imulc(E, lj.iv, s));
  LLVMValueRef v = LLVMBuildFAdd(B, em_load(E, k->dst_arg, E->f32, at), em_load(E, k->col_arg, E->f32, em_iadd(E, crow, lj.iv)), "");
  em_store(E, k->dst_arg, v, at);
  em_loop_close(E, &lj, NULL, NULL, false);
  em_loop_close(E, &li, NULL, NULL, false);
  em_loop_close(E, &lx, NULL, NULL, false);
  em_loop_close(E, &ly, NULL, NULL, false);
  em_loop_close(E, &lt_, NULL, NULL, false);
}

/* Table columns [j0, j1) per iteration: zeroed, then every grad row i
 * added into row idx[i] in order of i (the reference's order, so the
 * result is the same bit for bit); threads own disjoint columns, so no two
 * write the same element. An index outside [0, V) adds nothing. */
void em_kernel_scatter_add(Emit *E, LLVMValueRef begin, LLVMValueRef end) {
  const CgKernel *k = E->k;
  const IrNode *r = &E->g->node[k->root];
  int64_t row = k->sc_row, V = k->sc_v, n = k->sc_n;
  Loop li, lv, lj, ln;
  em_loop_open(E, &li, begin, end, 0, NULL);
  LLVMValueRef j0 = em_imulc(E, li.iv, k->sc_cols);
  LLVMValueRef j1 = em_min_i64(E, em_iaddc(E, j0, k->sc_cols), em_i64(E, row));
  em_loop_open(E, &lv, em_i64(E, 0), em_i64(E, V), 0, NULL);
  zero_run(E, k->table_arg, em_imulc(E, lv.iv, row), j0, j1);
  em_loop_close(E, &lv, NULL, NULL, false);
  em_loop_open(E, &ln, em_i64(E, 0), em_i64(E, n), 0, NULL);
  Idx Ii = em_idx1(ln.iv, n);
  LLVMValueRef kk = LLVMBuildSExt(B, em_eval(E, r->in[0], &Ii), E->i64, "");
  LLVMValueRef ok = LLVMBuildAnd(B, LLVMBuildICmp(B, LLVMIntSGE, kk, em_i64(E, 0), ""), lt(E, kk, em_i64(E, V)), "");
  LLVMBasicBlockRef then = LLVMAppendBasicBlockInContext(E->ctx, E->fn, "scatter");
  LLVMBasicBlockRef cont = LLVMAppendBasicBlockInContext(E->ctx, E->fn, "scatter.next");
  LLVMBuildCondBr(B, ok, then, cont);
  LLVMPositionBuilderAtEnd(B, then);
  int mark = E->ncache;
  em_loop_open(E, &lj, j0, j1, 0, NULL);
  Idx Ig = em_idx1(ln.iv, n);
  em_idx_push(&Ig, lj.iv, row);
  LLVMValueRef at = em_iadd(E, em_imulc(E, kk, row), lj.iv);
  LLVMValueRef sum = LLVMBuildFAdd(B, em_load(E, k->table_arg, E->f32, at), em_eval(E, r->in[1], &Ig), "");
  em_store(E, k->table_arg, sum, at);
  em_loop_close(E, &lj, NULL, NULL, false);
  E->ncache = mark;
  LLVMBuildBr(B, cont);
  LLVMPositionBuilderAtEnd(B, cont);
  em_loop_close(E, &ln, NULL, NULL, false);
  em_loop_close(E, &li, NULL, NULL, false);
}

/* Elements [it C, min((it + 1) C, total)) per iteration, by the runtime's
 * rt_gumbel_fill_range (runtime/core/rng.h), so the noise is the reference's. */
void em_kernel_gumbel(Emit *E, LLVMValueRef begin, LLVMValueRef end) {
  const CgKernel *k = E->k;
  LLVMTypeRef pt[6] = {E->ptr, E->i64, E->i64, E->i64, E->i32, E->i64};
  LLVMTypeRef fty = LLVMFunctionType(E->vd, pt, 6, 0);
  LLVMValueRef fn = LLVMGetNamedFunction(E->mod, "rt_gumbel_fill_range");
  if (!fn) fn = LLVMAddFunction(E->mod, "rt_gumbel_fill_range", fty);
  LLVMValueRef seed = LLVMBuildLoad2(B, E->i64, E->ctxp, "");
  LLVMValueRef one = em_i64(E, 1);
  LLVMValueRef step = LLVMBuildLoad2(B, E->i64, LLVMBuildInBoundsGEP2(B, E->i64, E->ctxp, &one, 1, ""), "");
  Loop l;
  em_loop_open(E, &l, begin, end, 0, NULL);
  LLVMValueRef lo = em_imulc(E, l.iv, k->inner);
  LLVMValueRef hi = em_min_i64(E, em_iaddc(E, lo, k->inner), em_i64(E, k->total));
  LLVMValueRef args[6] = {em_elem_ptr(E, k->out_arg, E->f32, lo), lo, LLVMBuildNSWSub(B, hi, lo, ""), seed,
                          LLVMConstInt(E->i32, k->salt, 0), step};
  LLVMBuildCall2(B, fty, fn, args, 6, "");
  em_loop_close(E, &l, NULL, NULL, false);
}
