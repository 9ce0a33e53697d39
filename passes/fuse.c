/* fuse.c — fuse_plan: partitions a graph into kernels (see fuse.h; the
 * rules are in fuse_rules.c, sibling merges in fuse_merge.c, the printers
 * in fuse_print.c).
 *
 * One round places every node in decreasing id order. A group may take a
 * reduction's row values before the reduction itself (a two-pass kernel in
 * the making, FuseGrowing.pending); if the reduction then cannot join,
 * those row values would be recomputed for every element. So after a round
 * every such unfinished crossing is banned, with the reason, and the round
 * runs again from scratch. Each repeat bans at least one more BROADCAST or
 * ONEHOT node, so the loop ends; in practice after one or two rounds.
 *
 * The groups are then put in topological order (Kahn's algorithm, the
 * ready group with the lowest last member first, so the order depends on
 * the graph alone). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "passes/fuse_internal.h"

/* Grows *a (elements of 'size' bytes, capacity *cap) to hold n + 1. */
static bool grow(Fuser *f, void **a, int *cap, int n, size_t size) {
  if (n < *cap) return true;
  int c = *cap ? *cap * 2 : 8;
  void *b = realloc(*a, (size_t)c * size);
  if (!b) {
    f->oom = true;
    return false;
  }
  *a = b;
  *cap = c;
  return true;
}

int fuse_add_group(Fuser *f, int v) {
  if (!grow(f, (void **)&f->gs, &f->gscap, f->ngs, sizeof *f->gs)) return -1;
  FuseGrowing *G = &f->gs[f->ngs];
  memset(G, 0, sizeof *G);
  G->last = v;
  return f->ngs++;
}

void fuse_add_member(Fuser *f, int gi, int v) {
  FuseGrowing *G = &f->gs[gi];
  if (grow(f, (void **)&G->mem, &G->memcap, G->nmem, sizeof *G->mem)) G->mem[G->nmem++] = v;
}

void fuse_add_cross(Fuser *f, int gi, int v) {
  FuseGrowing *G = &f->gs[gi];
  if (grow(f, (void **)&G->cross, &G->crosscap, G->ncross, sizeof *G->cross)) G->cross[G->ncross++] = v;
}

void fuse_refuse(Fuser *f, int producer, int consumer, const char *why, FuseRule rule) {
  if (!grow(f, (void **)&f->ref, &f->refcap, f->nref, sizeof *f->ref)) return;
  FuseRefusal *r = &f->ref[f->nref++];
  r->producer = producer;
  r->consumer = consumer;
  r->rule = rule;
  snprintf(r->why, sizeof r->why, "%s", why);
}

static void free_round(Fuser *f) {
  for (int i = 0; i < f->ngs; i++) {
    free(f->gs[i].mem);
    free(f->gs[i].cross);
  }
  f->ngs = 0;
  f->nref = 0;
}

static void fuser_free(Fuser *f) {
  free_round(f);
  free(f->gs);
  free(f->ref);
  free(f->use_off);
  free(f->use);
  free(f->must_out);
  free(f->freev);
  free(f->rowred);
  if (f->ban)
    for (int v = 0; v < f->n; v++) free(f->ban[v]);
  free(f->ban);
  free(f->grp);
  free(f->inmark);
  free(f->lvl);
  free(f->ident);
  free(f->seen[0]);
  free(f->seen[1]);
  free(f->stack);
  free(f->joined_by);
}

/* Consumer lists, outputs and the graph facts. */
static bool fuser_init(Fuser *f, const IrGraph *g, const FuseOptions *o) {
  int n = g->n;
  f->g = g;
  f->n = n;
  f->opt = o ? *o : (FuseOptions){.enabled = true};
  size_t nn = (size_t)n + 1;
  f->use_off = calloc(nn + 1, sizeof *f->use_off);
  f->must_out = calloc(nn, sizeof *f->must_out);
  f->freev = calloc(nn, sizeof *f->freev);
  f->rowred = calloc(nn, sizeof *f->rowred);
  f->ban = calloc(nn, sizeof *f->ban);
  f->grp = calloc(nn, sizeof *f->grp);
  f->inmark = calloc(nn, sizeof *f->inmark);
  f->lvl = calloc(nn, sizeof *f->lvl);
  f->ident = calloc(nn, sizeof *f->ident);
  f->seen[0] = calloc(nn, sizeof *f->seen[0]);
  f->seen[1] = calloc(nn, sizeof *f->seen[1]);
  f->stack = calloc(2 * nn, sizeof *f->stack);
  f->joined_by = calloc(nn, sizeof *f->joined_by);
  if (!f->use_off || !f->must_out || !f->freev || !f->rowred || !f->ban || !f->grp || !f->inmark || !f->lvl || !f->ident ||
      !f->seen[0] || !f->seen[1] || !f->stack || !f->joined_by)
    return false;
  int nuse = 0;
  for (int v = 0; v < n; v++) {
    const IrNode *x = &g->node[v];
    for (int k = 0; k < x->nin; k++) f->use_off[x->in[k] + 1]++;
    nuse += x->nin;
  }
  for (int v = 0; v < n; v++) f->use_off[v + 1] += f->use_off[v];
  f->use = malloc(((size_t)nuse + 1) * sizeof *f->use);
  int *fill = calloc(nn, sizeof *fill);
  if (!f->use || !fill) {
    free(fill);
    return false;
  }
  for (int v = 0; v < n; v++) {
    const IrNode *x = &g->node[v];
    for (int k = 0; k < x->nin; k++) {
      int u = x->in[k];
      f->use[f->use_off[u] + fill[u]++] = (FuseUse){v, k};
    }
  }
  free(fill);
  for (int i = 0; i < g->noutput; i++) f->must_out[g->output[i]] = true;
  for (int i = 0; i < g->nupdate; i++) f->must_out[g->update_value[i]] = true;
  fuse_graph_facts(f);
  return true;
}

/* Bans the crossings of every group left waiting for its reduction.
 * Returns whether it banned any. */
static bool ban_unfinished(Fuser *f) {
  bool any = false;
  for (int gi = 0; gi < f->ngs; gi++) {
    const FuseGrowing *G = &f->gs[gi];
    if (G->pending < 0) continue;
    int t = G->pending;
    for (int i = 0; i < G->ncross; i++) {
      int c = G->cross[i];
      if (f->ban[c]) continue;
      char why[160];
      snprintf(why, sizeof why,
               "a row value of %%%d (%s), which cannot join this kernel: it would be recomputed for every element", t,
               ir_op_name(f->g->node[t].op));
      f->ban[c] = malloc(strlen(why) + 1);
      if (!f->ban[c]) {
        f->oom = true;
        return false;
      }
      strcpy(f->ban[c], why);
      any = true;
    }
  }
  return any;
}

static void run_round(Fuser *f) {
  free_round(f);
  for (int v = 0; v < f->n; v++) f->grp[v] = -1, f->joined_by[v] = -1, f->inmark[v] = 0;
  for (int p = f->n - 1; p >= 0 && !f->oom; p--) fuse_place(f, p);
}

static int cmp_refusal(const void *a, const void *b) {
  const FuseRefusal *x = a, *y = b;
  if (x->producer != y->producer) return x->producer < y->producer ? -1 : 1;
  return (x->consumer > y->consumer) - (x->consumer < y->consumer);
}

static int cmp_int(const void *a, const void *b) {
  int x = *(const int *)a, y = *(const int *)b;
  return (x > y) - (x < y);
}

/* Members, root, outs and ins of plan group k (growing group G). */
static bool fill_group(const Fuser *f, const FuseGrowing *G, FuseGroup *out, const int *group_of, int k,
                       int *mark) {
  const IrGraph *g = f->g;
  out->kind = G->kind;
  out->root = G->red >= 0 ? G->red : G->opq >= 0 ? G->opq : G->last;
  out->n = G->nmem;
  out->node = malloc(((size_t)G->nmem + 1) * sizeof *out->node);
  out->out = malloc(((size_t)G->nmem + 1) * sizeof *out->out);
  out->in = malloc(((size_t)G->nmem * IR_MAX_IN + 1) * sizeof *out->in);
  if (!out->node || !out->out || !out->in) return false;
  memcpy(out->node, G->mem, (size_t)G->nmem * sizeof *out->node);
  qsort(out->node, (size_t)out->n, sizeof *out->node, cmp_int);
  out->nout = out->nin = 0;
  for (int i = 0; i < out->n; i++) {
    int v = out->node[i];
    bool escapes = f->must_out[v];
    for (int u = f->use_off[v]; u < f->use_off[v + 1] && !escapes; u++) escapes = group_of[f->use[u].node] != k;
    if (escapes) out->out[out->nout++] = v;
    const IrNode *x = &g->node[v];
    for (int j = 0; j < x->nin; j++) {
      int u = x->in[j];
      if (group_of[u] != k && mark[u] != k) {
        mark[u] = k;
        out->in[out->nin++] = u;
      }
    }
  }
  qsort(out->in, (size_t)out->nin, sizeof *out->in, cmp_int);
  return true;
}

/* pos[gi] = the plan index of live group gi (dead ones: -1). Returns the
 * number of live groups, -1 if they are not acyclic (the rules exclude
 * it), -2 if out of memory. */
static int order_groups(const Fuser *f, int *pos) {
  int ng = f->ngs, nlive = 0;
  const IrGraph *g = f->g;
  int *indeg = calloc((size_t)ng + 1, sizeof *indeg), *first = calloc((size_t)ng + 2, sizeof *first);
  int *fill = calloc((size_t)ng + 1, sizeof *fill);
  int *last = malloc(((size_t)ng + 1) * sizeof *last), *order = malloc(((size_t)ng + 1) * sizeof *order);
  bool *dead = calloc((size_t)ng + 1, sizeof *dead);
  int *succ = NULL;
  int result = -2;
  if (!indeg || !first || !fill || !last || !order || !dead) goto done;
  for (int v = 0; v < f->n; v++)
    for (int k = 0; k < g->node[v].nin; k++) {
      int a = f->grp[g->node[v].in[k]], b = f->grp[v];
      if (a != b) first[a + 1]++, indeg[b]++;
    }
  for (int gi = 0; gi < ng; gi++) first[gi + 1] += first[gi];
  succ = malloc(((size_t)first[ng] + 1) * sizeof *succ);
  if (!succ) goto done;
  for (int v = 0; v < f->n; v++)
    for (int k = 0; k < g->node[v].nin; k++) {
      int a = f->grp[g->node[v].in[k]], b = f->grp[v];
      if (a != b) succ[first[a] + fill[a]++] = b;
    }
  /* ready groups in order of their last member */
  int live = 0;
  for (int gi = 0; gi < ng; gi++) {
    pos[gi] = -1;
    last[gi] = f->gs[gi].last;
    dead[gi] = f->gs[gi].dead;
    live += !dead[gi];
  }
  nlive = fuse_topo_order(ng, first, succ, indeg, last, dead, order);
  if (nlive < 0) goto done;
  for (int k = 0; k < nlive; k++) pos[order[k]] = k;
  result = nlive == live ? nlive : -1;
done:
  free(indeg);
  free(first);
  free(fill);
  free(last);
  free(order);
  free(dead);
  free(succ);
  return result;
}

/* The plan from the last round; NULL if out of memory, or (*cyclic set) if
 * the groups are not acyclic. */
static FusePlan *build_plan(const Fuser *f, bool *cyclic) {
  int n = f->n, ngs = f->ngs;
  *cyclic = false;
  int *pos = malloc(((size_t)ngs + 1) * sizeof *pos);
  if (!pos) return NULL;
  int ng = order_groups(f, pos);
  if (ng < 0) {
    *cyclic = ng == -1;
    free(pos);
    return NULL;
  }
  FusePlan *p = calloc(1, sizeof *p);
  int *mark = malloc(((size_t)n + 1) * sizeof *mark);
  bool ok = p && mark;
  if (ok) {
    p->ngroup = ng;
    p->group = calloc((size_t)ng + 1, sizeof *p->group);
    p->group_of = malloc(((size_t)n + 1) * sizeof *p->group_of);
    p->level = malloc(((size_t)n + 1) * sizeof *p->level);
    p->refused = malloc(((size_t)f->nref + 1) * sizeof *p->refused);
    p->joined_by = malloc((size_t)n + 1);
    p->opt = f->opt;
    ok = p->group && p->group_of && p->level && p->refused && p->joined_by;
  }
  if (ok) {
    for (int v = 0; v < n; v++) {
      p->group_of[v] = pos[f->grp[v]];
      p->level[v] = f->lvl[v];
      p->joined_by[v] = f->joined_by[v];
      mark[v] = -1;
    }
    for (int gi = 0; gi < ngs && ok; gi++)
      if (pos[gi] >= 0) ok = fill_group(f, &f->gs[gi], &p->group[pos[gi]], p->group_of, pos[gi], mark);
  }
  if (ok) {
    FuseRefusal *r = malloc(((size_t)f->nref + 1) * sizeof *r);
    ok = r != NULL;
    if (ok) {
      if (f->nref > 0) memcpy(r, f->ref, (size_t)f->nref * sizeof *r);
      qsort(r, (size_t)f->nref, sizeof *r, cmp_refusal);
      for (int i = 0; i < f->nref; i++) {
        p->refused[i].producer = r[i].producer;
        p->refused[i].consumer = r[i].consumer;
        p->refused[i].rule = r[i].rule;
        snprintf(p->refused[i].why, sizeof p->refused[i].why, "%s", r[i].why);
      }
      p->nrefused = f->nref;
      free(r);
    }
  }
  free(mark);
  free(pos);
  if (!ok) {
    fuse_plan_free(p);
    return NULL;
  }
  return p;
}

FusePlan *fuse_plan(const IrGraph *g, const FuseOptions *o) {
  if (!g) return NULL;
  Fuser f;
  memset(&f, 0, sizeof f);
  FusePlan *p = NULL;
  bool cyclic = false;
  if (fuser_init(&f, g, o)) {
    do run_round(&f);
    while (!f.oom && ban_unfinished(&f));
    if (!f.oom) p = build_plan(&f, &cyclic);
    if (p && !cyclic && fuse_ln_prologue(g, p) < 0) {
      fuse_plan_free(p);
      p = NULL;
    }
    if (cyclic) {
      /* The rules exclude this; should it ever happen, one group per
       * node is still a correct plan (the tests check for it). */
      f.opt.enabled = false;
      run_round(&f);
      if (!f.oom) p = build_plan(&f, &cyclic);
    }
  }
  fuser_free(&f);
  return p;
}

void fuse_plan_free(FusePlan *p) {
  if (!p) return;
  for (int k = 0; p->group && k < p->ngroup; k++) {
    free(p->group[k].node);
    free(p->group[k].out);
    free(p->group[k].in);
  }
  free(p->group);
  free(p->group_of);
  free(p->refused);
  free(p->level);
  free(p->joined_by);
  free(p->ln_into);
  free(p);
}

int fuse_kernel_count(const FusePlan *p) {
  int k = 0;
  for (int i = 0; p && i < p->ngroup; i++)
    k += p->group[i].kind != FUSE_LEAF && !(p->ln_into && p->ln_into[p->group[i].root] >= 0);
  return k;
}
