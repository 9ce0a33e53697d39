/* lower_gemm.c — matmul and the convolutions as GEMM steps plus kernels.
 *
 *   matmul            GEMM (batched by strides; a rank-2 b is shared, and with
 *                     an untransposed a the batch folds into M)
 *   conv2d            im2col (col [nc, C*KH*KW, OH*OW]) + batched GEMM
 *                     w [O, CKK] @ col[j]; 1x1/stride 1/no pad reads x directly
 *   conv_transpose2d  batched GEMM w^T [O*KH*KW, C] @ x[j] into col, then col2im
 *                     adds each tap into its output plane (one plane per iteration)
 *   conv2d_bw_weight  im2col (col [CKK, nc*P]) and dy as [O, nc*P], one GEMM
 *                     dy @ col^T per chunk, accumulating (beta = 1) after the first
 *
 * A 3x3 stride-1 conv2d or conv_transpose2d that cg_conv_pick sends to
 * Winograd goes to lower_winograd.c instead, and a convolution it sends
 * to the direct path to lower_direct.c (both share the chunking, GEMM-step
 * and epilogue helpers below, declared in lower_impl.h).
 *
 * When the whole batch's col buffer would exceed the budget (see
 * cg_set_col_budget), samples go in chunks of nc (a divisor of N), or, for
 * when one sample's col is over the budget, in tiles: one sample's block
 * of output rows (a divisor of OH; for conv_transpose2d, of input rows) at
 * a time, so that each chunk's col is written and read while it is still
 * in the caches. The same kernels run once per chunk, reading the chunk's
 * first sample (or its chunk number, for tiles) from a one-element constant
 * buffer, and conv2d outputs go through a scratch buffer that the epilogue
 * loop copies into place. The epilogue (bias, activation, ...) is fused
 * into the loop that reads the GEMM's result. */
#include <stdio.h>
#include <string.h>

#include "codegen/lower_impl.h"
#include "runtime/sched/gemm_small.h"

/* 4 MiB: a chunk's col stays in the caches between its im2col and its GEMM
 * (this machine: ~60 GB/s up to 4 MiB, ~10 GB/s from DRAM past 16 MiB).
 * dVAE bench step, 2 threads: GEMMs 100 -> 115 GFLOP/s, im2col -20%,
 * step 2.94 -> 2.73 s against the 64 MiB budget of whole-sample chunks. */
static int64_t col_budget = 4ll << 20;

void cg_set_col_budget(int64_t bytes) { col_budget = bytes; }

/* The largest divisor of N whose chunk stays within the col budget (>= 1). */
static int64_t chunk_of(int64_t N, int64_t bytes_per_sample) {
  for (int64_t d = N; d > 1; d--)
    if (N % d == 0 && d * bytes_per_sample <= col_budget) return d;
  return 1;
}

/* CgChunks for N samples of OH x OW output positions, bytes_per_pos bytes of
 * scratch per (sample, position). */
CgChunks cg_low_plan_chunks(int64_t N, int64_t OH, int64_t OW, int64_t bytes_per_pos) {
  int64_t per_sample = bytes_per_pos * OH * OW;
  if (per_sample <= col_budget || OH <= 1) {
    int64_t nc = chunk_of(N, per_sample);
    return (CgChunks){nc, 0, N / nc};
  }
  int64_t rows = 1;
  for (int64_t d = OH - 1; d > 1; d--)
    if (OH % d == 0 && d * OW * bytes_per_pos <= col_budget) {
      rows = d;
      break;
    }
  return (CgChunks){1, rows * OW, N * (OH / rows)};
}

/* The int64 a chunk's kernels find at their base argument: its first
 * sample, or in tiles its chunk number (see CgKernel.tile). */
int64_t cg_low_chunk_base(const CgChunks *ch, int64_t c) { return ch->tile ? c : c * ch->nc; }

static int64_t max1(int64_t v) { return v > 1 ? v : 1; }

static int check_int(Lower *L, int64_t v, const char *what) {
  if (v > 2147483647) return cg_low_err(L, "%s of %lld is too large for a GEMM call", what, (long long)v);
  return 0;
}

int cg_low_gemm_step(Lower *L, const char *name, RtGemm gm, int a, int b, int c) {
  if (check_int(L, gm.m, "M") < 0 || check_int(L, gm.n, "N") < 0 || check_int(L, gm.k, "K") < 0) return -1;
  RtStep *s = cg_low_step(L, RT_STEP_GEMM, name);
  int *arg = cg_pool_alloc(L->pool, 3 * sizeof(int));
  arg[0] = a;
  arg[1] = b;
  arg[2] = c;
  s->narg = 3;
  s->arg = arg;
  gm.lda = (int)max1(gm.lda);
  gm.ldb = (int)max1(gm.ldb);
  gm.ldc = (int)max1(gm.ldc);
  gm.alpha = 1.0f;
  s->gemm = gm;
  return 0;
}

/* Runs kernel step 'first' (just appended) again for chunk n0: the same
 * function and args, with the chunk-start buffer swapped. */
void cg_low_repeat_step(Lower *L, int first, int base_arg, int64_t n0) {
  RtStep copy = L->step[first];
  int *arg = cg_pool_alloc(L->pool, sizeof(int) * (size_t)(copy.narg + 1));
  memcpy(arg, copy.arg, sizeof(int) * (size_t)copy.narg);
  arg[base_arg] = cg_low_const(L, -1, n0);
  RtStep *s = cg_low_step_pooled(L, RT_STEP_KERNEL, copy.name); /* the first step's name, shared */
  s->kernel = copy.kernel;
  s->range = copy.range;
  s->narg = copy.narg;
  s->arg = arg;
}

void cg_low_name_kernel(Lower *L, CgKernel *k, const char *what) {
  snprintf(k->name, sizeof k->name, "%sk%d_%s", L->prefix, (int)(k - L->kern), what);
}

/* Finishes a data-movement kernel over `range` iterations, reading its
 * chunk's start from buffer `base` (-1: none). Returns its step index. */
int cg_low_finish_step(Lower *L, CgKernel *k, int base, int64_t range) {
  if (base >= 0) k->base_arg = cg_low_arg(L, k, base);
  k->range = range;
  if (cg_low_finish_kernel(L, k) < 0) return -1;
  return L->nstep - 1;
}

/* An im2col kernel for chunk start n0 (base buffer, or -1 = 0): col
 * element (q, j, pos) at q * sq + j * sj + pos; tile > 0: a tiled window
 * (see CgKernel.tile). Returns its step index. */
static int im2col(Lower *L, int gi, int root, const CgConv *cv, int x, int col, int64_t nc, int base,
                  int64_t sq, int64_t sj, int64_t tile) {
  CgKernel *k = cg_low_kernel(L, CG_KERNEL_IM2COL, gi, root);
  cg_low_name_kernel(L, k, "im2col");
  k->conv = *cv;
  k->nc = nc;
  k->tile = tile;
  k->plane = cv->OH * cv->OW;
  k->col_sq = sq;
  k->col_sj = sj;
  k->x_arg = cg_low_arg(L, k, x);
  k->col_arg = cg_low_arg(L, k, col);
  return cg_low_finish_step(L, k, base, cv->C * cv->KH * cv->KW);
}

/* A pack kernel: samples [n0, n0 + nc) of src (each (A, P)) into dst;
 * tile > 0: positions [p0, p0 + tile) of one sample. */
static int pack(Lower *L, int gi, int root, int src, int dst, int64_t A, int64_t P, bool t, int64_t nc, int base,
                int64_t tile) {
  CgKernel *k = cg_low_kernel(L, CG_KERNEL_PACK, gi, root);
  cg_low_name_kernel(L, k, t ? "pack_t" : "pack");
  k->pack_a = A;
  k->pack_p = P;
  k->pack_t = t;
  k->nc = nc;
  k->tile = tile;
  k->plane = P;
  k->x_arg = cg_low_arg(L, k, src);
  k->dst_arg = cg_low_arg(L, k, dst);
  return cg_low_finish_step(L, k, base, nc * A);
}

/* The epilogue loop over the root's shape (root loaded from its buffer). */
int cg_low_epilogue(Lower *L, int gi, int root, const int *epi, int nepi) {
  if (nepi == 0) return 0;
  CgKernel *k = cg_low_loop_kernel(L, gi, root, epi, nepi, root);
  cg_low_loop_geometry(L, k);
  if (k->range <= 0) {
    L->nkern--;
    for (int i = 0; i < nepi; i++) {
      cg_low_home(L, epi[i]);
      cg_low_mark_stored(L, epi[i]);
    }
    return 0;
  }
  return cg_low_finish_kernel(L, k);
}

/* A windowed loop over samples [n0, n0 + nc) (tile > 0: a tiled window)
 * of a conv2d root whose value comes from the chunk's GEMM output
 * 'src_buf'. Returns its step index, or -1 (error) / -2 (empty, nothing
 * added). */
static int window_loop(Lower *L, int gi, int root, const int *epi, int nepi, bool store_root, int src_buf,
                       const CgConv *cv, int64_t nc, int base, int64_t tile) {
  CgKernel *k = cg_low_loop_kernel(L, gi, root, epi, nepi, root);
  if (store_root) {
    cg_low_room(L, k, 0, 0, 1);
    for (int i = k->nstore; i > 0; i--) k->store[i] = k->store[i - 1];
    k->store[0].node = root;
    k->nstore++;
  }
  k->src = CG_SRC_OFFSET;
  k->nc = nc;
  k->sample = cv->O * cv->OH * cv->OW;
  k->tile = tile;
  k->plane = cv->OH * cv->OW;
  k->src_arg = cg_low_arg(L, k, src_buf);
  k->base_arg = cg_low_arg(L, k, base);
  cg_low_loop_geometry(L, k);
  if (k->range <= 0 || k->nstore == 0) {
    L->nkern--;
    return -2;
  }
  if (cg_low_finish_kernel(L, k) < 0) return -1;
  return L->nstep - 1;
}

/* Where the GEMM writes the root: its own buffer if stored, else straight
 * into the single epilogue member's (the epilogue then runs in place;
 * not when that is persistent state updated in place, which the epilogue
 * still reads), else a scratch buffer. */
int cg_low_gemm_target(Lower *L, int root, const int *epi, int nepi, bool store_root) {
  const IrGraph *g = L->g;
  if (!store_root && nepi == 1 && g->node[epi[0]].dtype == IR_F32 &&
      ir_numel(&g->node[epi[0]].shape) == ir_numel(&g->node[root].shape) &&
      !(L->home[epi[0]] >= 0 && L->buf[L->home[epi[0]]].kind == RT_BUF_STATE)) {
    L->home[root] = cg_low_home(L, epi[0]);
    return L->home[root];
  }
  return cg_low_home(L, root);
}

/* A matmul whose A operand is a layer_norm folded into it: the GEMM step
 * reads the layer_norm's x as A, normalises its rows with gamma and beta
 * (args 3, 4) and eps (RtGemm.ln), and no kernel or buffer holds the
 * layer_norm. The fold guarantees one block of rows: batch 1, lda == k. */
static int ln_matmul(Lower *L, int root, RtGemm gm, int c) {
  const IrNode *r = &L->g->node[root], *ln = &L->g->node[r->in[0]];
  _Static_assert(FUSE_LN_MAX_ROWS <= RT_GEMM_SMALL_MAX_M, "folded GEMMs are small-M GEMMs");
  _Static_assert(FUSE_LN_MAX_ELEMS == RT_GEMM_LN_MAX_ELEMS, "the fold and the scheduler agree");
  if (gm.batch != 1 || gm.trans_a || gm.lda != gm.k)
    return cg_low_err(L, "internal: layer_norm %%%d folded into a GEMM that is not one block of rows", r->in[0]);
  gm.ln = 1;
  gm.ln_eps = ln->attr.eps;
  if ((int64_t)gm.m * gm.n > 0) {
    int x = cg_low_home(L, ln->in[0]), gamma = cg_low_home(L, ln->in[1]), beta = cg_low_home(L, ln->in[2]);
    if (cg_low_gemm_step(L, "matmul (layer_norm prologue)", gm, x, cg_low_home(L, r->in[1]), c) < 0) return -1;
    RtStep *s = &L->step[L->nstep - 1];
    int *arg = cg_pool_alloc(L->pool, 5 * sizeof(int));
    memcpy(arg, s->arg, 3 * sizeof(int));
    arg[3] = gamma;
    arg[4] = beta;
    s->narg = 5;
    s->arg = arg;
  }
  cg_low_mark_stored(L, root);
  return 0;
}

static int lower_matmul(Lower *L, int root, const int *epi, int nepi, bool store_root, int gi) {
  const IrGraph *g = L->g;
  const IrNode *r = &g->node[root];
  const IrShape *as = &g->node[r->in[0]].shape, *bs = &g->node[r->in[1]].shape;
  int ra = as->rank, rb = bs->rank;
  int ta = r->attr.trans_a, tb = r->attr.trans_b;
  int64_t M = ta ? as->d[ra - 1] : as->d[ra - 2], K = ta ? as->d[ra - 2] : as->d[ra - 1];
  int64_t N = tb ? bs->d[rb - 2] : bs->d[rb - 1], batch = 1;
  for (int i = 0; i < ra - 2; i++) batch *= as->d[i];
  bool shared = rb == 2;
  int c = cg_low_gemm_target(L, root, epi, nepi, store_root);
  RtGemm gm = {.batch = (int)batch, .trans_a = ta, .trans_b = tb, .m = (int)M, .n = (int)N, .k = (int)K};
  gm.lda = (int)(ta ? M : K);
  gm.ldb = (int)(tb ? K : N);
  gm.ldc = (int)N;
  gm.stride_a = M * K;
  gm.stride_b = shared ? 0 : K * N;
  gm.stride_c = M * N;
  if (shared && !ta && batch > 1) { /* one tall GEMM: [batch*M, K] @ [K, N] */
    if (check_int(L, batch * M, "M") < 0) return -1;
    gm.m = (int)(batch * M);
    gm.batch = 1;
  }
  if (check_int(L, batch, "batch") < 0) return -1;
  const FusePlan *fp = L->fp;
  if (fp->ln_into && fp->ln_into[r->in[0]] == root) /* ln-prologue (passes/fuse_ln.c) */
    return ln_matmul(L, root, gm, c) < 0 ? -1 : cg_low_epilogue(L, gi, root, epi, nepi);
  if (batch * M * N > 0 && cg_low_gemm_step(L, "matmul", gm, cg_low_home(L, r->in[0]), cg_low_home(L, r->in[1]), c) < 0)
    return -1;
  cg_low_mark_stored(L, root);
  return cg_low_epilogue(L, gi, root, epi, nepi);
}

CgConv cg_low_conv_geom(const IrGraph *g, int root) {
  const IrNode *r = &g->node[root];
  const int64_t *x = g->node[r->in[0]].shape.d, *w = g->node[r->in[1]].shape.d, *o = r->shape.d;
  CgConv cv = {.N = x[0], .C = x[1], .H = x[2], .W = x[3], .stride = r->attr.stride, .pad = r->attr.pad};
  switch (r->op) {
  case OP_CONV2D: cv.O = w[0], cv.KH = w[2], cv.KW = w[3], cv.OH = o[2], cv.OW = o[3]; break;
  case OP_CONV_TRANSPOSE2D: cv.O = w[1], cv.KH = w[2], cv.KW = w[3], cv.OH = o[2], cv.OW = o[3]; break;
  case OP_CONV2D_BACKWARD_WEIGHT: { /* root is w [O, C, KH, KW], in[1] is dy [N, O, OH, OW] */
    const int64_t *dy = g->node[r->in[1]].shape.d;
    cv.O = o[0], cv.KH = o[2], cv.KW = o[3], cv.OH = dy[2], cv.OW = dy[3];
    break;
  }
  case OP_INPUT: case OP_PARAM: case OP_STATE: case OP_CONST: case OP_IOTA: case OP_GUMBEL: case OP_NEG:
  case OP_ABS: case OP_EXP: case OP_LOG: case OP_SQRT: case OP_RSQRT: case OP_TANH: case OP_SIGMOID:
  case OP_RELU: case OP_GELU: case OP_SILU: case OP_CAST: case OP_STOP_GRADIENT: case OP_ADD: case OP_SUB: case OP_MUL:
  case OP_DIV: case OP_MAX: case OP_MIN: case OP_POW: case OP_LT: case OP_LE: case OP_GT: case OP_GE:
  case OP_EQ: case OP_NE: case OP_WHERE: case OP_STRAIGHT_THROUGH: case OP_SUM: case OP_REDUCE_MAX:
  case OP_ARGMAX: case OP_SOFTMAX: case OP_LOG_SOFTMAX: case OP_RESHAPE: case OP_PERMUTE: case OP_BROADCAST:
  case OP_SLICE: case OP_CONCAT: case OP_GATHER: case OP_GATHER_BACKWARD: case OP_ONEHOT: case OP_MATMUL:
  case OP_GROUP_NORM: case OP_LAYER_NORM: case OP_CROSS_ENTROPY: case OP_ATTENTION: case OP_ATTENTION_BACKWARD: case OP_COUNT:
    break; /* not a convolution: conv_geom is only asked about the three above */
  }
  return cv;
}

static int lower_conv2d(Lower *L, int root, const int *epi, int nepi, bool store_root, int gi) {
  const IrGraph *g = L->g;
  const IrNode *r = &g->node[root];
  CgConvAlgo algo = cg_conv_pick(g, root, L->conv_algo, NULL);
  if (cg_conv_is_winograd(algo)) return cg_low_winograd(L, gi, root, epi, nepi, store_root);
  if (algo == CG_CONV_DIRECT) return cg_low_direct(L, gi, root, epi, nepi, store_root);
  L->conv_im2col++;
  CgConv cv = cg_low_conv_geom(g, root);
  int64_t CKK = cv.C * cv.KH * cv.KW, P = cv.OH * cv.OW;
  int x = cg_low_home(L, r->in[0]), w = cg_low_home(L, r->in[1]);
  RtGemm gm = {.m = (int)cv.O, .n = (int)P, .k = (int)CKK, .lda = (int)CKK, .ldb = (int)P, .ldc = (int)P};
  gm.stride_a = 0;
  gm.stride_c = cv.O * P;
  if (cv.KH == 1 && cv.KW == 1 && cv.stride == 1 && cv.pad == 0) { /* x[n] is already [C, P] */
    int c = cg_low_gemm_target(L, root, epi, nepi, store_root);
    gm.batch = (int)cv.N;
    gm.stride_b = cv.C * P;
    if (cv.N * cv.O * P > 0 && cg_low_gemm_step(L, "conv2d 1x1", gm, w, x, c) < 0) return -1;
    cg_low_mark_stored(L, root);
    return cg_low_epilogue(L, gi, root, epi, nepi);
  }
  CgChunks ch = cg_low_plan_chunks(cv.N, cv.OH, cv.OW, CKK * 4);
  int64_t nc = ch.nc, T = ch.tile ? ch.tile : P; /* positions per sample in a chunk */
  int col = cg_low_arena(L, -1, nc * CKK * T, "im2col");
  gm.batch = (int)nc;
  gm.n = gm.ldb = gm.ldc = (int)T;
  gm.stride_b = CKK * T;
  gm.stride_c = cv.O * T;
  if (ch.nchunk == 1) {
    int c = cg_low_gemm_target(L, root, epi, nepi, store_root);
    if (im2col(L, gi, root, &cv, x, col, nc, -1, P, CKK * P, 0) < 0) return -1;
    if (cg_low_gemm_step(L, "conv2d", gm, w, col, c) < 0) return -1;
    cg_low_mark_stored(L, root);
    return cg_low_epilogue(L, gi, root, epi, nepi);
  }
  int tmp = cg_low_arena(L, -1, nc * cv.O * T, "conv2d chunk");
  int first_im = -1, first_ep = -1, im_base = -1, ep_base = -1;
  for (int64_t c = 0; c < ch.nchunk; c++) {
    int64_t b = cg_low_chunk_base(&ch, c);
    if (c == 0) {
      first_im = im2col(L, gi, root, &cv, x, col, nc, cg_low_const(L, -1, b), T, CKK * T, ch.tile);
      if (first_im < 0) return -1;
      im_base = L->kern[L->step[first_im].kernel].base_arg;
    } else {
      cg_low_repeat_step(L, first_im, im_base, b);
    }
    if (cg_low_gemm_step(L, "conv2d", gm, w, col, tmp) < 0) return -1;
    if (c == 0) {
      first_ep = window_loop(L, gi, root, epi, nepi, store_root, tmp, &cv, nc, cg_low_const(L, -1, b), ch.tile);
      if (first_ep == -1) return -1;
      if (first_ep >= 0) ep_base = L->kern[L->step[first_ep].kernel].base_arg;
    } else if (first_ep >= 0) {
      cg_low_repeat_step(L, first_ep, ep_base, b);
    }
  }
  if (store_root) cg_low_mark_stored(L, root);
  return 0;
}

/* A col2im kernel for samples [n0, n0 + nc) (base buffer, or -1 = 0) into
 * dst: one (sample, output channel) plane per iteration; tile > 0: the
 * taps of one sample's block of input rows (see CgKernel.tile). */
static int col2im(Lower *L, int gi, int root, const CgConv *cv, int col, int dst, int64_t nc, int base, int64_t sq,
                  int64_t sj, int64_t tile) {
  CgKernel *k = cg_low_kernel(L, CG_KERNEL_COL2IM, gi, root);
  cg_low_name_kernel(L, k, "col2im");
  k->conv = *cv;
  k->nc = nc;
  k->tile = tile;
  k->plane = cv->H * cv->W;
  k->col_sq = sq;
  k->col_sj = sj;
  k->col_arg = cg_low_arg(L, k, col);
  k->dst_arg = cg_low_arg(L, k, dst);
  return cg_low_finish_step(L, k, base, nc * cv->O);
}

static int lower_conv_transpose(Lower *L, int root, const int *epi, int nepi, bool store_root, int gi) {
  const IrGraph *g = L->g;
  const IrNode *r = &g->node[root];
  CgConvAlgo algo = cg_conv_pick(g, root, L->conv_algo, NULL);
  if (cg_conv_is_winograd(algo)) return cg_low_winograd(L, gi, root, epi, nepi, store_root);
  if (algo == CG_CONV_DIRECT) return cg_low_direct(L, gi, root, epi, nepi, store_root);
  L->conv_im2col++;
  CgConv cv = cg_low_conv_geom(g, root);
  int64_t OKK = cv.O * cv.KH * cv.KW, HW = cv.H * cv.W;
  int x = cg_low_home(L, r->in[0]), w = cg_low_home(L, r->in[1]);
  /* chunks of input positions: tiles are blocks of input rows, whose taps
   * col2im adds into the output planes zeroed by the sample's first tile */
  CgChunks ch = cg_low_plan_chunks(cv.N, cv.H, cv.W, (OKK + cv.C) * 4);
  int64_t nc = ch.nc, T = ch.tile ? ch.tile : HW; /* input positions per sample in a chunk */
  bool single = ch.nchunk == 1;
  int col = cg_low_arena(L, -1, nc * OKK * T, "col2im");
  int c = cg_low_gemm_target(L, root, epi, nepi, store_root);
  RtGemm gm = {.batch = (int)nc, .trans_a = 1, .m = (int)OKK, .n = (int)T, .k = (int)cv.C};
  gm.lda = (int)OKK;
  gm.ldb = (int)T;
  gm.ldc = (int)T;
  gm.stride_b = cv.C * T;
  gm.stride_c = OKK * T;
  int xs = single ? x : cg_low_arena(L, -1, nc * cv.C * T, "conv_transpose2d chunk");
  int first_pk = -1, first_ci = -1, pk_base = -1, ci_base = -1;
  for (int64_t k = 0; k < ch.nchunk; k++) {
    int64_t b = cg_low_chunk_base(&ch, k);
    if (!single && k == 0) {
      first_pk = pack(L, gi, root, x, xs, cv.C, HW, false, nc, cg_low_const(L, -1, b), ch.tile);
      if (first_pk < 0) return -1;
      pk_base = L->kern[L->step[first_pk].kernel].base_arg;
    } else if (!single) {
      cg_low_repeat_step(L, first_pk, pk_base, b);
    }
    if (OKK * T > 0 && cg_low_gemm_step(L, "conv_transpose2d", gm, w, xs, col) < 0) return -1;
    if (k == 0) {
      first_ci = col2im(L, gi, root, &cv, col, c, nc, single ? -1 : cg_low_const(L, -1, b), T, OKK * T, ch.tile);
      if (first_ci < 0) return -1;
      if (!single) ci_base = L->kern[L->step[first_ci].kernel].base_arg;
    } else {
      cg_low_repeat_step(L, first_ci, ci_base, b);
    }
  }
  cg_low_mark_stored(L, root);
  return cg_low_epilogue(L, gi, root, epi, nepi);
}

static int lower_conv_bw_weight(Lower *L, int root, const int *epi, int nepi, bool store_root, int gi) {
  const IrGraph *g = L->g;
  const IrNode *r = &g->node[root];
  CgConvAlgo algo = cg_conv_pick(g, root, L->conv_algo, NULL);
  if (algo == CG_CONV_DIRECT) return cg_low_direct(L, gi, root, epi, nepi, store_root);
  if (cg_conv_is_winograd(algo)) return cg_low_winograd_bw_weight(L, gi, root, epi, nepi, store_root);
  L->wgrad_im2col++;
  CgConv cv = cg_low_conv_geom(g, root);
  int64_t CKK = cv.C * cv.KH * cv.KW, P = cv.OH * cv.OW;
  int x = cg_low_home(L, r->in[0]), dy = cg_low_home(L, r->in[1]);
  CgChunks ch = cg_low_plan_chunks(cv.N, cv.OH, cv.OW, (CKK + cv.O) * 4);
  int64_t nc = ch.nc, T = ch.tile ? ch.tile : P; /* positions per sample in a chunk */
  bool single = ch.nchunk == 1;
  int col = cg_low_arena(L, -1, CKK * nc * T, "im2col");
  int dyp = cv.N == 1 && !ch.tile ? dy : cg_low_arena(L, -1, cv.O * nc * T, "dy packed");
  int c = cg_low_gemm_target(L, root, epi, nepi, store_root);
  RtGemm gm = {.batch = 1, .trans_b = 1, .m = (int)cv.O, .n = (int)CKK, .k = (int)(nc * T)};
  gm.lda = (int)(nc * T);
  gm.ldb = (int)(nc * T);
  gm.ldc = (int)CKK;
  int first_im = -1, first_pk = -1, im_base = -1, pk_base = -1;
  for (int64_t k = 0; k < ch.nchunk; k++) {
    int64_t b = cg_low_chunk_base(&ch, k);
    if (k == 0) {
      first_im = im2col(L, gi, root, &cv, x, col, nc, single ? -1 : cg_low_const(L, -1, b), nc * T, T, ch.tile);
      if (first_im < 0) return -1;
      if (!single) im_base = L->kern[L->step[first_im].kernel].base_arg;
      if (dyp != dy) {
        first_pk = pack(L, gi, root, dy, dyp, cv.O, P, true, nc, single ? -1 : cg_low_const(L, -1, b), ch.tile);
        if (first_pk < 0) return -1;
        if (!single) pk_base = L->kern[L->step[first_pk].kernel].base_arg;
      }
    } else {
      cg_low_repeat_step(L, first_im, im_base, b);
      cg_low_repeat_step(L, first_pk, pk_base, b);
    }
    gm.beta = k == 0 ? 0.0f : 1.0f;
    if (cg_low_gemm_step(L, "conv2d_backward_weight", gm, dyp, col, c) < 0) return -1;
  }
  cg_low_mark_stored(L, root);
  return cg_low_epilogue(L, gi, root, epi, nepi);
}

int cg_low_gemm_group(Lower *L, int gi, const int *epi, int nepi, bool store_root) {
  int root = -1;
  const FuseGroup *G = &L->fp->group[gi];
  for (int i = 0; i < G->n; i++)
    if (ir_op_pattern(L->g->node[G->node[i]].op) == PAT_OPAQUE) root = G->node[i];
  switch (L->g->node[root].op) {
  case OP_MATMUL: return lower_matmul(L, root, epi, nepi, store_root, gi);
  case OP_CONV2D: return lower_conv2d(L, root, epi, nepi, store_root, gi);
  case OP_CONV_TRANSPOSE2D: return lower_conv_transpose(L, root, epi, nepi, store_root, gi);
  case OP_CONV2D_BACKWARD_WEIGHT: return lower_conv_bw_weight(L, root, epi, nepi, store_root, gi);
  case OP_INPUT: case OP_PARAM: case OP_STATE: case OP_CONST: case OP_IOTA: case OP_GUMBEL: case OP_NEG:
  case OP_ABS: case OP_EXP: case OP_LOG: case OP_SQRT: case OP_RSQRT: case OP_TANH: case OP_SIGMOID:
  case OP_RELU: case OP_GELU: case OP_SILU: case OP_CAST: case OP_STOP_GRADIENT: case OP_ADD: case OP_SUB: case OP_MUL:
  case OP_DIV: case OP_MAX: case OP_MIN: case OP_POW: case OP_LT: case OP_LE: case OP_GT: case OP_GE:
  case OP_EQ: case OP_NE: case OP_WHERE: case OP_STRAIGHT_THROUGH: case OP_SUM: case OP_REDUCE_MAX:
  case OP_ARGMAX: case OP_SOFTMAX: case OP_LOG_SOFTMAX: case OP_RESHAPE: case OP_PERMUTE: case OP_BROADCAST:
  case OP_SLICE: case OP_CONCAT: case OP_GATHER: case OP_GATHER_BACKWARD: case OP_ONEHOT: case OP_GROUP_NORM:
  case OP_LAYER_NORM: case OP_CROSS_ENTROPY: case OP_ATTENTION: case OP_ATTENTION_BACKWARD: case OP_COUNT: break;
  }
  return cg_low_err(L, "group %d: %s is not a GEMM op", gi, ir_op_name(L->g->node[root].op));
}
