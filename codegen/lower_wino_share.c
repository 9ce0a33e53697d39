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
 * where a training step's memory peaks. So before the first Winograd conv
 * is lowered, the candidates are decided on a trial lowering of the graph
 * with the rule off (only when two candidates share a weight): a conv
 * shares only if the U kept alive fits under the trial's peak of live
 * bytes at every step it newly spans (unless cg_set_wino_share_check
 * (false)), so the arena's lower bound never grows; then a second trial
 * with those decisions must not give a larger arena (the packing is
 * heuristic), else nothing is shared. Lifetimes in the plan
 * itself need nothing more: the arena planner (mem_plan_rt) keeps a
 * buffer from the first step naming it to the last, so the later GEMM
 * steps naming U keep it.
 *
 * Measured on the dVAE bench training step (forced sharing of all 16
 * input gradients): the 16 weight kernels saved are ~0.4% of the step
 * (DAL_PROFILE: 63 -> 40 ms over 4 runs), about what the permuted GEMMs
 * (10 steps per chunk instead of one batch of 16) lose, while the arena
 * grows 265.3 -> 302.2 MiB and peak RSS 454.6 -> 492.8 MiB. With the
 * check nothing there is shared: every U but one would raise the lower
 * bound (they cross the forward/backward boundary), and that one (64
 * channels, 0.25 MiB) the packed arena, by 0.2 MiB. */
#include <stdlib.h>
#include <string.h>

#include "codegen/lower_impl.h"
#include "passes/memplan.h"

struct CgWinoShare {
  int *from;      /* (g->n) per conv: the conv whose U it reads (decided), or -1 */
  int *u;         /* (g->n) per conv that computed its own U: that buffer, or -1 */
  int *ustep;     /* (g->n) ... and the step of its weight kernel (steps keep their
                     numbers to the end; buffers do not: lower_inplace.c renumbers) */
  int weight_kernels, shared;
  int64_t saved, added;
};

static int share_check = -1; /* -1: not set yet (DAL_WINO_SHARE_ALL decides) */
/* Inside decide()'s verifying lowering: the decisions it lowers with. */
static _Thread_local const int *verifying;

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

/* Bytes live at each step of plan p (live[0 .. nstep]), as the arena
 * planner sees them (mem_plan_rt): an arena buffer from the first step
 * naming it to the last, sizes rounded to MEM_ALIGN; and each buffer's
 * first and last step (-1: no step names it). */
static int64_t *live_bytes(const RtPlan *p, int *first, int *last) {
  int64_t *live = calloc((size_t)p->nstep + 2, sizeof *live);
  for (int b = 0; b < p->nbuf; b++) first[b] = last[b] = -1;
  for (int s = 0; s < p->nstep; s++)
    for (int k = 0; k < p->step[s].narg; k++) {
      int b = p->step[s].arg[k];
      if (first[b] < 0) first[b] = s;
      last[b] = s;
    }
  for (int b = 0; b < p->nbuf; b++)
    if (p->buf[b].kind == RT_BUF_ARENA) {
      int64_t bytes = (p->buf[b].bytes + MEM_ALIGN - 1) / MEM_ALIGN * MEM_ALIGN;
      live[first[b] < 0 ? 0 : first[b]] += bytes;
      live[(last[b] < 0 ? 0 : last[b]) + 1] -= bytes;
    }
  for (int s = 1; s <= p->nstep; s++) live[s] += live[s - 1];
  return live;
}

/* Decides every conv's source, in group order (the order lowering
 * follows), on a trial: g lowered with the rule off, where each candidate
 * has its own U buffer, live from its weight kernel's step to its last
 * GEMM's. Per weight node: the last conv that computed its own U and the
 * step where that U is last read so far. A later candidate on the same
 * weight shares it if the bytes live at every step between that one and
 * its own weight kernel, plus U (and the U kept alive by earlier
 * decisions), stay within the trial's peak (or the check is off); from
 * its weight kernel on, the shared U takes the place of its own. Else it
 * computes its own and becomes the source for the ones after it. */
static void decide(Lower *L, CgWinoShare *S) {
  const IrGraph *g = L->g;
  const FusePlan *fp = L->fp;
  if (!fuse_rule_on(&fp->opt, FUSE_RULE_WINO_SHARE_U)) return;
  if (verifying) {
    memcpy(S->from, verifying, sizeof(int) * (size_t)g->n);
    return;
  }
  int *src = malloc(((size_t)g->n + 1) * sizeof *src), *end = malloc(((size_t)g->n + 1) * sizeof *end);
  bool pair = false; /* two candidates on one weight: else no trial at all */
  for (int v = 0; v < g->n; v++) src[v] = -1;
  for (int gi = 0; gi < fp->ngroup && !pair; gi++) {
    int v = fp->group[gi].root;
    if (fp->group[gi].kind != FUSE_OPAQUE || !candidate(L, v)) continue;
    pair = src[g->node[v].in[1]] >= 0;
    src[g->node[v].in[1]] = v;
  }
  for (int v = 0; v < g->n; v++) src[v] = -1;
  FusePlan off = *fp; /* shallow: the trial only reads it */
  off.opt.rules_off |= 1u << FUSE_RULE_WINO_SHARE_U;
  RtErr e;
  CgLowered *t = pair ? cg_lower(g, &off, NULL, &e) : NULL;
  if (!t) { /* nothing to share, or no trial: nothing shared */
    free(src);
    free(end);
    return;
  }
  const RtPlan *p = &t->plan;
  int *first = malloc(((size_t)p->nbuf + 1) * sizeof *first), *last = malloc(((size_t)p->nbuf + 1) * sizeof *last);
  int64_t *live = live_bytes(p, first, last), peak = 0;
  for (int s = 0; s <= p->nstep; s++) peak = live[s] > peak ? live[s] : peak;
  int64_t top = peak;
  bool check = check_on();
  for (int gi = 0; gi < fp->ngroup; gi++) {
    int v = fp->group[gi].root, ws = t->wino_u_step[v];
    if (fp->group[gi].kind != FUSE_OPAQUE || !candidate(L, v) || ws < 0) continue;
    int u = p->step[ws].arg[t->kernel[p->step[ws].kernel].dst_arg]; /* its U in the trial */
    int w = g->node[v].in[1], f = src[w];
    int64_t bytes = (u_bytes(g, v) + MEM_ALIGN - 1) / MEM_ALIGN * MEM_ALIGN;
    bool fits = f >= 0;
    for (int s = f >= 0 ? end[w] + 1 : 0; s < first[u] && fits && check; s++) fits = live[s] + bytes <= peak;
    if (!fits) {
      src[w] = v;
      end[w] = last[u];
      continue;
    }
    for (int s = end[w] + 1; s < first[u]; s++) {
      live[s] += bytes;
      if (live[s] > top) top = live[s];
    }
    end[w] = last[u];
    S->from[v] = f;
  }
  S->added = top - peak;
  /* The arena itself is packed by heuristics: a lower bound that does not
   * grow can still come with a larger arena. Lower once more with these
   * decisions and keep them only if the arena is no larger. */
  bool any = false;
  for (int v = 0; v < g->n; v++) any |= S->from[v] >= 0;
  if (any && check) {
    verifying = S->from;
    CgLowered *with = cg_lower(g, fp, NULL, &e);
    verifying = NULL;
    if (!with || with->plan.arena_bytes > p->arena_bytes) {
      for (int v = 0; v < g->n; v++) S->from[v] = -1;
      S->added = 0;
    }
    cg_lowered_free(with);
  }
  free(first);
  free(last);
  free(live);
  free(src);
  free(end);
  cg_lowered_free(t);
}

/* The state, made and decided on first use. */
static CgWinoShare *state(Lower *L) {
  if (L->wino) return L->wino;
  CgWinoShare *S = cg_pool_alloc(L->pool, sizeof *S);
  S->from = cg_pool_alloc(L->pool, sizeof(int) * (size_t)(L->g->n + 1));
  S->u = cg_pool_alloc(L->pool, sizeof(int) * (size_t)(L->g->n + 1));
  S->ustep = cg_pool_alloc(L->pool, sizeof(int) * (size_t)(L->g->n + 1));
  for (int v = 0; v < L->g->n; v++) S->from[v] = S->u[v] = S->ustep[v] = -1;
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
  if (m != 2) return;
  S->u[root] = u;
  S->ustep[root] = L->nstep - 1; /* the weight kernel, just finished */
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
      if (len >= best) best = len, bd = d, bda = da;
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
  out->wino_u_step = cg_pool_alloc(L->pool, sizeof(int) * (size_t)(L->g->n + 1));
  for (int v = 0; v < L->g->n; v++) {
    out->wino_u_from[v] = -1;
    out->wino_u_step[v] = S ? S->ustep[v] : -1;
  }
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
