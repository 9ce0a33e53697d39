/* remat.c — rematerialisation (remat.h): recompute cheap values next to
 * their readers after the memory peak instead of keeping them alive
 * across it.
 *
 * One round: plan g (fusion plan, the memory planner's buffers and
 * in-place merges), find the step where the most arena bytes are live (the
 * peak), and list the stored values live across it that can be recomputed:
 * each is produced before the peak, read before it only, and read after it
 * ("late"), and its recipe (the value and the cheap nodes it is made of,
 * back to leaves or to values still live at its first late reader anyway)
 * is small. Then rewrite a copy of g so that every late reader of a listed
 * value reads a copy of its recipe, built just before the reader (readers
 * a few kernel steps apart share one copy), and plan the rewritten graph:
 * it is kept if its peak is lower.
 * All the listed values are tried at once, then one at a time from the
 * largest, until one lowers the peak; the rounds repeat on the new peak.
 */
#include <stdlib.h>
#include <string.h>

#include "passes/memplan.h"
#include "passes/passes.h"
#include "passes/remat.h"
#include "passes/rewrite.h"

#define REMAT_MAX_ROUNDS 32  /* kept rewrites */
#define REMAT_MAX_RECIPE 12  /* nodes one value's recipe may hold */
#define REMAT_MAX_NORMS 2    /* norms one recipe may hold */
#define REMAT_MAX_TRIES 8    /* single values tried when the batch does not lower the peak */
#define REMAT_SHARE_STEPS 4  /* late readers this many kernel steps apart share one copy */

/* A graph planned: its buffers with kernel steps, and the peak. */
typedef struct {
  FusePlan *fp;
  MemGraphBuffers b;
  int *step_of;       /* [g->n] the step of the node's group; -1 for leaves */
  int64_t peak_bytes; /* the planner's lower bound: the most bytes live at one step */
  int peak;           /* the first step where they are */
} Planned;

static void planned_free(Planned *p) {
  if (p->fp) fuse_plan_free(p->fp);
  mem_graph_buffers_free(&p->b);
  free(p->step_of);
  memset(p, 0, sizeof *p);
}

static int64_t round_up(int64_t bytes) { return (bytes + MEM_ALIGN - 1) / MEM_ALIGN * MEM_ALIGN; }

/* Plans g under fo into *p. Returns 0, or -1 with g->error. */
static int plan_graph(IrGraph *g, const FuseOptions *fo, Planned *p) {
  memset(p, 0, sizeof *p);
  char err[256];
  if (!(p->fp = fuse_plan(g, fo))) {
    snprintf(g->error, sizeof g->error, "remat: the fusion plan failed (out of memory)");
    return -1;
  }
  if (mem_graph_buffers(g, p->fp, NULL, &p->b, err, sizeof err)) {
    snprintf(g->error, sizeof g->error, "remat: %s", err);
    planned_free(p);
    return -1;
  }
  int nstep = p->b.nstep, nbuf = p->b.nbuf;
  int *share = malloc(((size_t)nbuf + 1) * sizeof *share);
  if (mem_plan_share(p->b.buf, nbuf, p->b.inplace, p->b.ninplace, share, err, sizeof err) < 0) {
    snprintf(g->error, sizeof g->error, "remat: %s", err);
    free(share);
    planned_free(p);
    return -1;
  }
  p->step_of = malloc(((size_t)g->n + 1) * sizeof *p->step_of);
  int *group_step = malloc(((size_t)p->fp->ngroup + 1) * sizeof *group_step);
  int *cfirst = malloc(((size_t)nbuf + 1) * sizeof *cfirst), *clast = malloc(((size_t)nbuf + 1) * sizeof *clast);
  int64_t *live = calloc((size_t)nstep + 2, sizeof *live);
  for (int i = 0; i < p->fp->ngroup; i++) group_step[i] = -1;
  for (int s = 0; s < nstep; s++) group_step[p->b.step_group[s]] = s;
  for (int v = 0; v < g->n; v++) p->step_of[v] = group_step[p->fp->group_of[v]];
  /* the in-place chains' intervals, then bytes live per step */
  for (int i = 0; i < nbuf; i++) cfirst[i] = nstep + 1, clast[i] = -1;
  for (int i = 0; i < nbuf; i++) {
    if (p->b.buf[i].pinned) continue;
    int r = share[i];
    if (p->b.buf[i].first < cfirst[r]) cfirst[r] = p->b.buf[i].first;
    if (p->b.buf[i].last > clast[r]) clast[r] = p->b.buf[i].last;
  }
  for (int r = 0; r < nbuf; r++)
    if (clast[r] >= 0) {
      live[cfirst[r]] += round_up(p->b.buf[r].bytes);
      live[clast[r] + 1] -= round_up(p->b.buf[r].bytes);
    }
  int64_t run = 0;
  for (int s = 0; s <= nstep; s++) {
    run += live[s];
    if (run > p->peak_bytes) p->peak_bytes = run, p->peak = s;
  }
  free(share);
  free(group_step);
  free(cfirst);
  free(clast);
  free(live);
  return 0;
}

/* Ops worth recomputing: no GEMM, no reduction of its own beyond a norm's,
 * no data-dependent or random values. */
static bool cheap(IrOp op) {
  if (op == OP_GROUP_NORM || op == OP_LAYER_NORM) return true;
  if (ir_op_is_leaf(op)) return false;
  if (op == OP_RESHAPE || op == OP_PERMUTE || op == OP_BROADCAST || op == OP_SLICE || op == OP_IOTA) return true;
  return ir_op_pattern(op) == PAT_ELEMWISE;
}

static int64_t node_flops(const IrNode *x) {
  if (x->op == OP_GROUP_NORM || x->op == OP_LAYER_NORM) return 8 * ir_numel(&x->shape);
  if (ir_op_is_view(x->op)) return 0;
  return ir_numel(&x->shape);
}

/* The users of every node, as a CSR: the users of v are user[first[v] .. first[v+1]). */
typedef struct {
  int *first, *user;
} Users;

static void users_make(const IrGraph *g, Users *u) {
  u->first = calloc((size_t)g->n + 2, sizeof *u->first);
  int total = 0;
  for (int v = 0; v < g->n; v++) total += g->node[v].nin;
  u->user = malloc(((size_t)total + 1) * sizeof *u->user);
  for (int v = 0; v < g->n; v++)
    for (int k = 0; k < g->node[v].nin; k++) u->first[g->node[v].in[k] + 1]++;
  for (int v = 0; v < g->n; v++) u->first[v + 1] += u->first[v];
  int *fill = calloc((size_t)g->n + 1, sizeof *fill);
  for (int v = 0; v < g->n; v++)
    for (int k = 0; k < g->node[v].nin; k++) {
      int x = g->node[v].in[k];
      u->user[u->first[x] + fill[x]++] = v;
    }
  free(fill);
}

static void users_free(Users *u) {
  free(u->first);
  free(u->user);
}

/* What one round looks at. */
typedef struct {
  const IrGraph *g;
  const Planned *p;
  Users u;
  bool *kept;     /* [g->n] outputs and update values: never recomputed */
  char *in_recipe; /* [g->n] scratch for one recipe */
  int nrecipe, nnorm;
} Scan;

/* Adds v and what it is made of to the current recipe, stopping at leaves
 * and at stored values that are still live at step 'late'. False if the
 * recipe would need a node that is not cheap, or grows too large. */
static bool collect(Scan *sc, int v, int late, bool top) {
  const IrGraph *g = sc->g;
  const IrNode *x = &g->node[v];
  if (ir_op_is_leaf(x->op)) return true;
  int b = sc->p->b.buf_of_node[v];
  if (!top && b >= 0 && (sc->p->b.buf[b].pinned || sc->p->b.buf[b].last >= late)) return true;
  if (sc->in_recipe[v]) return true;
  if (!cheap(x->op) || sc->kept[v] || sc->nrecipe == REMAT_MAX_RECIPE) return false;
  if (x->op == OP_GROUP_NORM || x->op == OP_LAYER_NORM) {
    if (sc->nnorm == REMAT_MAX_NORMS) return false;
    sc->nnorm++;
  }
  sc->in_recipe[v] = 1;
  sc->nrecipe++;
  for (int k = 0; k < x->nin; k++)
    if (!collect(sc, x->in[k], late, false)) return false;
  return true;
}

/* The first step after the peak that reads v; -1 if none does, or if a
 * reader runs at the peak itself (v is live there whatever happens). */
static int late_step(const Scan *sc, int v) {
  int pk = sc->p->peak, late = -1;
  for (int k = sc->u.first[v]; k < sc->u.first[v + 1]; k++) {
    int s = sc->p->step_of[sc->u.user[k]];
    if (s == pk) return -1;
    if (s > pk && (late < 0 || s < late)) late = s;
  }
  return late;
}

typedef struct {
  int node;
  int64_t bytes;
} Candidate;

static int by_bytes(const void *a, const void *b) {
  const Candidate *x = a, *y = b;
  if (x->bytes != y->bytes) return x->bytes > y->bytes ? -1 : 1;
  return x->node - y->node;
}

/* The stored values live across the peak that can be recomputed after it,
 * largest first, into cand (g->n entries); returns how many. */
static int candidates(const IrGraph *g, const Planned *p, Candidate *cand) {
  Scan sc = {.g = g, .p = p};
  users_make(g, &sc.u);
  sc.kept = calloc((size_t)g->n + 1, sizeof *sc.kept);
  sc.in_recipe = calloc((size_t)g->n + 1, 1);
  for (int i = 0; i < g->noutput; i++) sc.kept[g->output[i]] = true;
  for (int i = 0; i < g->nupdate; i++) sc.kept[g->update_value[i]] = true;
  int n = 0, pk = p->peak;
  for (int i = 0; i < p->b.nbuf; i++) {
    const MemBuffer *mb = &p->b.buf[i];
    int v = p->b.node[i];
    if (mb->pinned || mb->first >= pk || mb->last <= pk || !cheap(g->node[v].op) || sc.kept[v]) continue;
    int late = late_step(&sc, v);
    if (late < 0) continue;
    sc.nrecipe = sc.nnorm = 0;
    if (collect(&sc, v, late, true)) cand[n++] = (Candidate){v, mb->bytes};
    memset(sc.in_recipe, 0, (size_t)g->n);
  }
  qsort(cand, (size_t)n, sizeof *cand, by_bytes);
  users_free(&sc.u);
  free(sc.kept);
  free(sc.in_recipe);
  return n;
}

/* ---- the rewrite ---- */

typedef struct {
  const Planned *p;
  const char *redo;  /* [src n] values whose late readers read a copy */
  const char *part;  /* [src n] nodes copied into those copies (redo included) */
  int *copy;         /* [src n] the dst id of a node's latest copy, -1 until built */
  int *copy_step;    /* [src n] the step of the reader that copy was built for */
  int added;
  int64_t flops;
} Rewrite;

/* The dst id of the copy of src node v for a reader at step 'step': the
 * latest copy if it was built for a reader at most REMAT_SHARE_STEPS
 * steps away (so readers close together share one recomputation), else a new
 * one (so a copy never lives across a long stretch of the step again). */
static int copy_of(PassRewrite *rw, Rewrite *r, int v, int step) {
  if (!r->part[v]) return rw->map[v];
  if (r->copy[v] >= 0 && abs(step - r->copy_step[v]) <= REMAT_SHARE_STEPS) return r->copy[v];
  IrNode n = rw->src->node[v];
  for (int k = 0; k < n.nin; k++)
    if ((n.in[k] = copy_of(rw, r, n.in[k], step)) < 0) return -1;
  int id = ir_build(rw->dst, n.op, n.in, n.nin, &n.attr, n.loc);
  if (id >= 0) {
    r->copy[v] = id;
    r->copy_step[v] = step;
    r->added++;
    r->flops += node_flops(&n);
  }
  return id;
}

/* pass_rewrite hands the callback a copy of the node, not a pointer into
 * src; the walk's position is tracked here instead. */
typedef struct {
  Rewrite *r;
  int at; /* the src id being copied */
} Walk;

static int walk_node(PassRewrite *rw, const IrNode *n, void *ctx) {
  Walk *w = ctx;
  Rewrite *r = w->r;
  int v = w->at++;
  const IrNode *src = &rw->src->node[v];
  IrNode m = *n;
  if (r->p->step_of[v] > r->p->peak)
    for (int k = 0; k < m.nin; k++)
      if (r->redo[src->in[k]] && (m.in[k] = copy_of(rw, r, src->in[k], r->p->step_of[v])) < 0) return -1;
  return pass_rw_copy(rw, &m);
}

/* A rewritten copy of g (g itself unchanged) in which the late readers of
 * the values marked in redo (their recipes in part) read copies; NULL with
 * g->error on failure. */
static IrGraph *rewritten(IrGraph *g, const Planned *p, const char *redo, const char *part, Rewrite *out) {
  Rewrite r = {.p = p, .redo = redo, .part = part};
  r.copy = malloc(((size_t)g->n + 1) * sizeof *r.copy);
  r.copy_step = malloc(((size_t)g->n + 1) * sizeof *r.copy_step);
  for (int v = 0; v < g->n; v++) r.copy[v] = r.copy_step[v] = -1;
  Walk w = {&r, 0};
  IrGraph *t = pass_rewritten(g, "remat", walk_node, &w);
  free(r.copy);
  free(r.copy_step);
  if (!t) return NULL;
  if (pass_dce(t)) {
    snprintf(g->error, sizeof g->error, "%s", t->error);
    ir_graph_free(t);
    return NULL;
  }
  *out = r;
  return t;
}

/* Marks in redo the values cand[from..to) and in part their recipes (as
 * 'candidates' found them: the same plan, the same late steps). */
static void mark(const IrGraph *g, const Planned *p, const Candidate *cand, int from, int to, char *redo,
                 char *part) {
  Scan sc = {.g = g, .p = p};
  users_make(g, &sc.u);
  sc.kept = calloc((size_t)g->n + 1, sizeof *sc.kept);
  sc.in_recipe = calloc((size_t)g->n + 1, 1);
  memset(redo, 0, (size_t)g->n);
  memset(part, 0, (size_t)g->n);
  for (int i = from; i < to; i++) {
    int v = cand[i].node, late = late_step(&sc, v);
    sc.nrecipe = sc.nnorm = 0;
    collect(&sc, v, late, true);
    redo[v] = 1;
    for (int x = 0; x < g->n; x++) part[x] |= sc.in_recipe[x];
    memset(sc.in_recipe, 0, (size_t)g->n);
  }
  users_free(&sc.u);
  free(sc.kept);
  free(sc.in_recipe);
}

/* Moves t's contents into g and frees what g held. */
static void take(IrGraph *g, IrGraph *t) {
  IrGraph old = *g;
  *g = *t;
  *t = old;
  ir_graph_free(t);
}

/* One round: the values live across p's peak rewritten to be recomputed,
 * all at once, else one at a time (the largest first); the first rewrite
 * whose plan has a lower peak replaces g and p. Returns 1 if one did, 0 if
 * none, -1 with g->error on failure. */
static int round_once(IrGraph *g, const FuseOptions *fo, Planned *p, PassRematStats *s) {
  Candidate *cand = malloc(((size_t)g->n + 1) * sizeof *cand);
  char *redo = malloc((size_t)g->n + 1), *part = malloc((size_t)g->n + 1);
  int nc = candidates(g, p, cand), result = 0;
  for (int t = nc > 1 ? -1 : 0; t < nc && t < REMAT_MAX_TRIES && result == 0; t++) {
    int from = t < 0 ? 0 : t, to = t < 0 ? nc : t + 1;
    mark(g, p, cand, from, to, redo, part);
    Rewrite r;
    IrGraph *trial = rewritten(g, p, redo, part, &r);
    Planned q;
    if (!trial) {
      result = -1;
    } else if (plan_graph(trial, fo, &q)) {
      snprintf(g->error, sizeof g->error, "%s", trial->error);
      ir_graph_free(trial);
      result = -1;
    } else if (q.peak_bytes < p->peak_bytes) {
      take(g, trial);
      planned_free(p);
      *p = q;
      s->rounds++;
      s->nvalues += to - from;
      s->nrecomputed += r.added;
      s->flops += r.flops;
      result = 1;
    } else {
      planned_free(&q);
      ir_graph_free(trial);
    }
  }
  free(cand);
  free(redo);
  free(part);
  return result;
}

int pass_remat_opts(IrGraph *g, const FuseOptions *fo, PassRematStats *st) {
  PassRematStats s = {0};
  FuseOptions defaults = {.enabled = true};
  if (!fo) fo = &defaults;
  if (st) *st = s;
  if (!fo->enabled) return 0;
  Planned p;
  if (plan_graph(g, fo, &p)) return -1;
  s.peak_before = p.peak_bytes;
  int rc = 0;
  for (int i = 0; i < REMAT_MAX_ROUNDS && (rc = round_once(g, fo, &p, &s)) == 1; i++) {
  }
  s.peak_after = p.peak_bytes;
  planned_free(&p);
  if (rc < 0) return -1;
  if (st) *st = s;
  return 0;
}

int pass_remat(IrGraph *g) { return pass_remat_opts(g, NULL, NULL); }

void pass_remat_print(const PassRematStats *st, FILE *out) {
  const double mib = 1024.0 * 1024.0;
  fprintf(out,
          "remat:   %d values recomputed after the peak (%d nodes added, +%.1f MFLOP per run); "
          "planned peak %.2f MiB -> %.2f MiB (%.2f MiB saved)\n",
          st->nvalues, st->nrecomputed, (double)st->flops / 1e6, (double)st->peak_before / mib,
          (double)st->peak_after / mib, (double)(st->peak_before - st->peak_after) / mib);
}
