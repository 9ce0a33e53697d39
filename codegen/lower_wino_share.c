/* lower_wino_share.c — rule wino-share-u: a Winograd F(2x2,3x3)
 * convolution reads the weight transform U of an earlier one on the same
 * weight node instead of computing its own.
 *
 * In a training step a 3x3 stride-1 conv2d(x, w) has as input gradient
 * conv_transpose2d(dy, w), which lower_winograd.c computes as the conv2d
 * of dy with w transposed ([C, O]) and turned by 180 degrees. Turning g
 * reverses its rows and columns, and for F(2x2,3x3)'s G (emit_winograd.c)
 * G rev(g) = S G g, S swapping rows 0 and 3 (G's rows 1 and 2 are
 * symmetric, and the emitter's sums are the same floats in either order).
 * So the backward's U' [16, C, O] is the forward's U [16, O, C] with
 *
 *   U'[plane (r, s)] = U[plane (sigma r, sigma s)]^T,  sigma: 0 <-> 3,
 *
 * and its GEMMs can read U with trans_a and planes permuted: runs of
 * planes whose source planes are also evenly spaced become one batched
 * GEMM step each (RtGemm offsets and strides; 10 steps for the 16 planes).
 * Two convs with the same flip (a recomputed forward) read U as it is, in
 * one step. F(4x4,3x3) has no such permutation (its points 2 and -2
 * become 1/2 and -1/2 under reversal): those convs compute their own U.
 *
 * The cost is memory: U (16/9 of the weight) then lives from the first
 * conv to the last one reading it, across the forward/backward boundary
 * where a training step's memory peaks. Before the first Winograd conv is
 * lowered, the candidates are decided in group order on the memory
 * planner's group-level picture (mem_graph_buffers with the in-place
 * merges, as passes/remat.c sees it): a conv shares only if the bytes live
 * at every group its U would newly span, plus U, stay within the peak
 * (unless cg_set_wino_share_check(false)); a shared U counts as live from
 * then on. Lifetimes in the plan itself need nothing more: the arena
 * planner (mem_plan_rt) keeps a buffer from the first step naming it to
 * the last, so the later GEMM steps naming U keep it. */
#include <stdlib.h>
#include <string.h>

#include "codegen/lower_impl.h"
#include "passes/memplan.h"

struct CgWinoShare {
  int *from;      /* (g->n) per conv: the conv whose U it reads (decided), or -1 */
  int *u;         /* (g->n) per conv that computed its own U: that buffer, or -1 */
  int weight_kernels, shared;
  int64_t saved, added;
};

static int share_check = -1; /* -1: not set yet (DAL_WINO_SHARE_ALL decides) */

void cg_set_wino_share_check(bool on) { share_check = on; }

static bool check_on(void) {
  if (share_check < 0) {
    const char *env = getenv("DAL_WINO_SHARE_ALL");
    share_check = !(env && *env && strcmp(env, "0") != 0);
  }
  return share_check;
}

/* The U of conv v: O x C per plane, 16 planes of f32. */
static int64_t u_bytes(const IrGraph *g, int v) {
  CgConv cv = cg_low_conv_geom(g, v);
  return 16 * cv.O * cv.C * 4;
}

/* Whether v is a conv lower_winograd.c lowers through F(2x2,3x3) with a
 * weight transform (conv2d or conv_transpose2d, live, not empty). */
static bool candidate(Lower *L, int v) {
  const IrNode *nd = &L->g->node[v];
  if ((nd->op != OP_CONV2D && nd->op != OP_CONV_TRANSPOSE2D) || !L->live[v]) return false;
  CgConv cv = cg_low_conv_geom(L->g, v);
  return cv.N * cv.O * cv.OH * cv.OW > 0 && cg_conv_wino_m(L->g, v, L->conv_algo, NULL) == 2;
}

/* Bytes live at each kernel step of the group-level plan (live[nstep + 1],
 * steps as in MemGraphBuffers) and each group's step (gstep[ngroup], -1
 * for leaves). Returns the step count, or -1 if planning failed. */
static int live_bytes(const IrGraph *g, const FusePlan *fp, int64_t **live_out, int **gstep_out) {
  char err[256];
  MemGraphBuffers b;
  if (mem_graph_buffers(g, fp, NULL, &b, err, sizeof err)) return -1;
  MemPlan plan;
  if (mem_plan(b.buf, b.nbuf, b.inplace, b.ninplace, &plan, err, sizeof err)) {
    mem_graph_buffers_free(&b);
    return -1;
  }
  int n = b.nstep;
  int64_t *delta = calloc((size_t)n + 2, sizeof *delta);
  int *first = malloc(((size_t)b.nbuf + 1) * sizeof *first), *last = malloc(((size_t)b.nbuf + 1) * sizeof *last);
  for (int i = 0; i < b.nbuf; i++) first[i] = n + 1, last[i] = -1;
  for (int i = 0; i < b.nbuf; i++) { /* an in-place chain is one storage over its members' union */
    if (b.buf[i].pinned) continue;
    int r = plan.share[i];
    if (b.buf[i].first < first[r]) first[r] = b.buf[i].first;
    if (b.buf[i].last > last[r]) last[r] = b.buf[i].last;
  }
  for (int r = 0; r < b.nbuf; r++)
    if (last[r] >= 0) {
      int64_t bytes = (b.buf[r].bytes + MEM_ALIGN - 1) / MEM_ALIGN * MEM_ALIGN;
      delta[first[r]] += bytes;
      delta[last[r] + 1] -= bytes;
    }
  for (int s = 1; s <= n; s++) delta[s] += delta[s - 1];
  int *gstep = malloc(((size_t)fp->ngroup + 1) * sizeof *gstep);
  for (int i = 0; i < fp->ngroup; i++) gstep[i] = -1;
  for (int s = 0; s < n; s++) gstep[b.step_group[s]] = s;
  free(first);
  free(last);
  mem_plan_free(&plan);
  mem_graph_buffers_free(&b);
  *live_out = delta;
  *gstep_out = gstep;
  return n;
}

/* Decides every conv's source, in group order (the order lowering follows):
 * per weight node, the last conv that computed its own U and the step
 * where that U is last read so far; a later candidate on the same weight
 * shares it if keeping U alive over the steps in between fits under the
 * peak (or the check is off), else computes its own and becomes the
 * source for the ones after it. */
static void decide(Lower *L, CgWinoShare *S) {
  const IrGraph *g = L->g;
  const FusePlan *fp = L->fp;
  if (!fuse_rule_on(&fp->opt, FUSE_RULE_WINO_SHARE_U)) return;
  int *src = malloc(((size_t)g->n + 1) * sizeof *src), *end = malloc(((size_t)g->n + 1) * sizeof *end);
  bool pair = false; /* two candidates on one weight: else no planning at all */
  for (int v = 0; v < g->n; v++) src[v] = -1;
  for (int gi = 0; gi < fp->ngroup && !pair; gi++) {
    int v = fp->group[gi].root;
    if (fp->group[gi].kind != FUSE_OPAQUE || !candidate(L, v)) continue;
    pair = src[g->node[v].in[1]] >= 0;
    src[g->node[v].in[1]] = v;
  }
  for (int v = 0; v < g->n; v++) src[v] = -1;
  bool check = check_on();
  int64_t *live;
  int *gstep;
  int n = pair ? live_bytes(g, fp, &live, &gstep) : -1;
  if (n < 0) { /* nothing to share, or no picture of the memory: nothing shared */
    free(src);
    free(end);
    return;
  }
  int64_t peak = 0;
  for (int s = 0; s <= n; s++) peak = live[s] > peak ? live[s] : peak;
  int64_t top = peak;
  for (int gi = 0; gi < fp->ngroup; gi++) {
    int v = fp->group[gi].root, s = gstep[gi];
    if (fp->group[gi].kind != FUSE_OPAQUE || s < 0 || !candidate(L, v)) continue;
    int w = g->node[v].in[1], f = src[w];
    int64_t bytes = u_bytes(g, v);
    bool fits = f >= 0;
    for (int t = f >= 0 ? end[w] + 1 : s; t < s && fits && check; t++) fits = live[t] + bytes <= peak;
    if (!fits) {
      src[w] = v;
      end[w] = s;
      continue;
    }
    for (int t = end[w] + 1; t < s; t++) {
      live[t] += bytes;
      if (live[t] > top) top = live[t];
    }
    end[w] = s;
    S->from[v] = f;
  }
  S->added = top - peak;
  free(src);
  free(end);
  free(live);
  free(gstep);
}

/* The state, made and decided on first use. */
static CgWinoShare *state(Lower *L) {
  if (L->wino) return L->wino;
  CgWinoShare *S = cg_pool_alloc(L->pool, sizeof *S);
  S->from = cg_pool_alloc(L->pool, sizeof(int) * (size_t)(L->g->n + 1));
  S->u = cg_pool_alloc(L->pool, sizeof(int) * (size_t)(L->g->n + 1));
  for (int v = 0; v < L->g->n; v++) S->from[v] = S->u[v] = -1;
  L->wino = S;
  decide(L, S);
  return S;
}

int cg_wino_share_find(Lower *L, int root, int m, bool *swap) {
  CgWinoShare *S = state(L);
  int f = S->from[root];
  *swap = false;
  if (m != 2 || f < 0 || S->u[f] < 0) return -1;
  *swap = L->g->node[f].op != L->g->node[root].op;
  S->shared++;
  S->saved += u_bytes(L->g, root);
  return S->u[f];
}

void cg_wino_share_note(Lower *L, int root, int m, int u) {
  CgWinoShare *S = state(L);
  S->weight_kernels++;
  if (m == 2) S->u[root] = u;
}

/* Plane e = 4 r + s of the reader's U' -> the plane of the shared U it is
 * (transposed): sigma on both r and s when swap. */
static int source_plane(int e, bool swap) {
  static const int sigma[4] = {3, 1, 2, 0};
  return swap ? 4 * sigma[e / 4] + sigma[e % 4] : e;
}

int cg_wino_share_gemms(Lower *L, const char *name, RtGemm gm, int u, int v, int mbuf, bool swap) {
  int P = gm.batch;
  bool done[16] = {false};
  int64_t plane = (int64_t)gm.m * gm.k; /* one plane of U (either orientation) */
  for (int e0 = 0; e0 < P; e0++) {
    if (done[e0]) continue;
    /* the longest run e0, e0 + d, ... of planes not yet issued whose
     * sources are e0's + 0, da, 2 da, ... (da >= 0: strides are never
     * negative) */
    int best = 1, bd = 1, bda = 0, a0 = source_plane(e0, swap);
    for (int e1 = e0 + 1; e1 < P; e1++) {
      int d = e1 - e0, da = source_plane(e1, swap) - a0, len = 1;
      if (done[e1] || da < 0) continue;
      while (e0 + len * d < P && !done[e0 + len * d] && source_plane(e0 + len * d, swap) == a0 + len * da) len++;
      if (len > best) best = len, bd = d, bda = da;
    }
    RtGemm s = gm;
    s.batch = best;
    s.off_a = gm.off_a + a0 * plane;
    s.off_b = gm.off_b + e0 * gm.stride_b;
    s.off_c = gm.off_c + e0 * gm.stride_c;
    s.stride_a = best > 1 ? bda * plane : 0;
    s.stride_b = best > 1 ? bd * gm.stride_b : 0;
    s.stride_c = best > 1 ? bd * gm.stride_c : 0;
    if (swap) { /* A = U[plane] [C, O] read as its transpose [O, C] */
      s.trans_a = 1;
      s.lda = gm.m;
    }
    for (int i = 0; i < best; i++) done[e0 + i * bd] = true;
    if (cg_low_gemm_step(L, name, s, u, v, mbuf) < 0) return -1;
  }
  return 0;
}

void cg_wino_share_finish(Lower *L, CgLowered *out) {
  CgWinoShare *S = L->wino;
  out->wino_u_from = cg_pool_alloc(L->pool, sizeof(int) * (size_t)(L->g->n + 1));
  for (int v = 0; v < L->g->n; v++) out->wino_u_from[v] = -1;
  if (!S) return;
  out->wino_weight_kernels = S->weight_kernels;
  out->wino_shared = S->shared;
  out->wino_share_saved = S->saved;
  out->wino_share_added = S->added;
  for (int v = 0; v < L->g->n; v++)
    if (S->from[v] >= 0 && S->u[S->from[v]] >= 0) out->wino_u_from[v] = S->from[v];
}

void cg_wino_share_print(const CgLowered *l, FILE *out) {
  for (int v = 0; l->wino_u_from && v < l->g->n; v++)
    if (l->wino_u_from[v] >= 0)
      fprintf(out, "; conv %%%d %s reads the Winograd U of %%%d %s (wino-share-u)\n", v, ir_op_name(l->g->node[v].op),
              l->wino_u_from[v], ir_op_name(l->g->node[l->wino_u_from[v]].op));
}
