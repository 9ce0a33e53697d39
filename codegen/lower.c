/* lower.c — the lowering driver: buffers (inputs, state, outputs,
 * constants, arena), steps and kernels, one call per fusion group, and the
 * plan assembled and memory-planned at the end. Liveness, recomputed
 * expansions and state updates are in lower_state.c. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codegen/lower_impl.h"
#include "passes/memplan.h"

int cg_low_err(Lower *L, const char *fmt, ...) {
  char msg[900];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  return rt_err(L->e, "codegen (%s): %s", L->g->name ? L->g->name : "?", msg);
}

/* Ops whose input index is the output's flat index (so a value read
 * through them is read at the same place it is written). */
bool cg_low_identity_op(IrOp op) { return ir_op_pattern(op) == PAT_ELEMWISE || op == OP_RESHAPE; }

bool cg_low_bound_leaf(IrOp op) { return ir_op_is_bound(op); }

/* ---- buffers ---- */

/* A new buffer named 'pooled' (a string in L's pool, shared, or NULL). */
static int add_buffer(Lower *L, RtBufKind kind, RtDType dt, int rank, const int64_t *dim, int64_t bytes,
                      const char *pooled) {
  if (L->nbuf == L->capbuf) {
    L->capbuf = L->capbuf ? 2 * L->capbuf : 64;
    L->buf = realloc(L->buf, sizeof(RtBuffer) * (size_t)L->capbuf);
  }
  RtBuffer *b = &L->buf[L->nbuf];
  memset(b, 0, sizeof *b);
  b->kind = kind;
  b->dtype = dt;
  b->rank = rank;
  for (int i = 0; i < rank; i++) b->dim[i] = dim[i];
  b->bytes = bytes;
  b->name = pooled;
  return L->nbuf++;
}

static int new_buffer(Lower *L, RtBufKind kind, RtDType dt, int rank, const int64_t *dim, int64_t bytes,
                      const char *name) {
  return add_buffer(L, kind, dt, rank, dim, bytes, name ? cg_pool_strdup(L->pool, name) : NULL);
}

static int node_buffer(Lower *L, RtBufKind kind, int v, const char *name) {
  const IrNode *nd = &L->g->node[v];
  return new_buffer(L, kind, (RtDType)nd->dtype, nd->shape.rank, nd->shape.d, ir_numel(&nd->shape) * 4, name);
}

int cg_low_arena(Lower *L, int node, int64_t elems, const char *name) {
  char nm[64];
  if (!name) {
    snprintf(nm, sizeof nm, "%%%d", node);
    name = nm;
  }
  int b = node >= 0 ? node_buffer(L, RT_BUF_ARENA, node, name)
                    : new_buffer(L, RT_BUF_ARENA, RT_F32, 1, &elems, elems * 4, name);
  return b; /* its offset comes from the memory planner */
}

int cg_low_const(Lower *L, int node, int64_t value) {
  if (node < 0) {
    int64_t two = 2; /* one int64, seen as two i32 words */
    if (!L->n0_name) L->n0_name = cg_pool_strdup(L->pool, "n0"); /* one copy for the many chunk starts */
    int b = add_buffer(L, RT_BUF_CONST, RT_I32, 1, &two, 8, L->n0_name);
    int64_t *d = cg_pool_alloc(L->pool, 8);
    *d = value;
    L->buf[b].data = d;
    return b;
  }
  const IrNode *nd = &L->g->node[node];
  char nm[64];
  snprintf(nm, sizeof nm, "const %g", nd->attr.value);
  int b = node_buffer(L, RT_BUF_CONST, node, nm);
  int64_t n = ir_numel(&nd->shape);
  void *d = cg_pool_alloc(L->pool, (size_t)(n * 4));
  for (int64_t i = 0; i < n; i++) {
    if (nd->dtype == IR_I32) ((int32_t *)d)[i] = (int32_t)nd->attr.value;
    else ((float *)d)[i] = (float)nd->attr.value;
  }
  L->buf[b].data = d;
  return b;
}

int cg_low_home(Lower *L, int node) {
  if (L->home[node] < 0)
    L->home[node] = L->g->node[node].op == OP_CONST ? cg_low_const(L, node, 0) : cg_low_arena(L, node, 0, NULL);
  return L->home[node];
}

/* ---- steps and kernels ---- */

RtStep *cg_low_step(Lower *L, RtStepKind kind, const char *name) {
  return cg_low_step_pooled(L, kind, cg_pool_strdup(L->pool, name));
}

RtStep *cg_low_step_pooled(Lower *L, RtStepKind kind, const char *name) {
  if (L->nstep == L->capstep) {
    L->capstep = L->capstep ? 2 * L->capstep : 64;
    L->step = realloc(L->step, sizeof(RtStep) * (size_t)L->capstep);
  }
  RtStep *s = &L->step[L->nstep++];
  memset(s, 0, sizeof *s);
  s->kind = kind;
  s->name = name;
  s->kernel = -1;
  s->src = L->src;
  s->calls = L->calls;
  s->backward = L->backward;
  return s;
}

void cg_low_copy(Lower *L, int src, int dst, const char *why) {
  RtStep *s = cg_low_step(L, RT_STEP_COPY, why);
  int *a = cg_pool_alloc(L->pool, 2 * sizeof(int));
  a[0] = src;
  a[1] = dst;
  s->narg = 2;
  s->arg = a;
}

CgKernel *cg_low_kernel(Lower *L, CgKernelKind kind, int gi, int root) {
  if (L->nkern == L->capkern) {
    L->capkern = L->capkern ? 2 * L->capkern : 32;
    L->kern = realloc(L->kern, sizeof(CgKernel) * (size_t)L->capkern);
  }
  CgKernel *k = &L->kern[L->nkern];
  memset(k, 0, sizeof *k);
  k->kind = kind;
  k->group = gi;
  k->root = root;
  k->base_arg = k->src_arg = k->x_arg = k->col_arg = k->dst_arg = -1;
  k->idx_arg = k->grad_arg = k->table_arg = k->out_arg = -1;
  k->member = cg_pool_alloc(L->pool, sizeof(uint64_t) * (size_t)L->words);
  const FuseGroup *G = &L->fp->group[gi];
  int cap = G->n + G->nin + 16 < 64 ? G->n + G->nin + 16 : 64;
  k->caparg = k->capload = cap;
  k->capstore = G->n + 1 < 64 ? G->n + 1 : 64;
  k->arg = cg_pool_alloc(L->pool, sizeof(int) * (size_t)k->caparg);
  k->load = cg_pool_alloc(L->pool, sizeof(CgNodeArg) * (size_t)k->capload);
  k->store = cg_pool_alloc(L->pool, sizeof(CgNodeArg) * (size_t)k->capstore);
  snprintf(k->name, sizeof k->name, "%sk%d_%s", L->prefix, L->nkern, ir_op_name(L->g->node[root].op));
  L->nkern++;
  return k;
}

/* a (n used of *cap, each 'size' bytes) with room for 'more' more. */
static void *grow(Lower *L, void *a, int n, int more, int *cap, size_t size) {
  if (n + more <= *cap) return a;
  int c = 2 * *cap;
  if (c < n + more) c = n + more;
  void *b = cg_pool_alloc(L->pool, size * (size_t)c);
  memcpy(b, a, size * (size_t)n);
  *cap = c;
  return b;
}

void cg_low_room(Lower *L, CgKernel *k, int args, int loads, int stores) {
  k->arg = grow(L, k->arg, k->narg, args, &k->caparg, sizeof *k->arg);
  k->load = grow(L, k->load, k->nload, loads, &k->capload, sizeof *k->load);
  k->store = grow(L, k->store, k->nstore, stores, &k->capstore, sizeof *k->store);
}

int cg_low_arg(Lower *L, CgKernel *k, int b) {
  for (int i = 0; i < k->narg; i++)
    if (k->arg[i] == b) return i;
  cg_low_room(L, k, 1, 0, 0);
  k->arg[k->narg] = b;
  return k->narg++;
}

/* The node the kernel computes structurally rather than elementally. */
static int provided_root(const CgKernel *k) {
  if (k->kind == CG_KERNEL_LOOP) return k->src != CG_SRC_NONE ? k->root : -1;
  return k->root;
}

/* Marks what evaluating v needs: members recurse into their inputs (never
 * gather_backward's... only elemental ops are members), other nodes are
 * loaded from their buffer. */
static int need(Lower *L, CgKernel *k, bool *seen, int *nseen, int v, int provided) {
  if (seen[v] || v == provided) return 0;
  seen[v] = true;
  L->seen_list[(*nseen)++] = v;
  const IrNode *nd = &L->g->node[v];
  if (nd->op == OP_CONST) return 0;
  if (!cg_is_member(k, v) && L->home[v] < 0 && L->remat[L->fp->group_of[v]]) {
    const FuseGroup *G = &L->fp->group[L->fp->group_of[v]]; /* recompute it here */
    for (int i = 0; i < G->n; i++)
      if (G->node[i] != k->root) cg_set_member(k, G->node[i], true);
  }
  if (cg_is_member(k, v)) {
    int nin = nd->op == OP_STRAIGHT_THROUGH ? 1 : nd->nin; /* the soft input is never read */
    for (int j = 0; j < nin; j++)
      if (need(L, k, seen, nseen, nd->in[j], provided) < 0) return -1;
    return 0;
  }
  if (L->home[v] < 0) return cg_low_err(L, "internal: kernel %s reads %%%d, which has no buffer", k->name, v);
  int arg = cg_low_arg(L, k, L->home[v]);
  cg_low_room(L, k, 0, 1, 0);
  k->load[k->nload].node = v;
  k->load[k->nload].arg = arg;
  k->nload++;
  return 0;
}

int cg_low_finish_kernel(Lower *L, CgKernel *k) {
  int provided = provided_root(k);
  bool *seen = L->seen; /* cleared below: no pass over all nodes per kernel */
  int nseen = 0, rc = 0;
  for (int i = 0; i < k->nstore && rc == 0; i++) {
    k->store[i].arg = cg_low_arg(L, k, cg_low_home(L, k->store[i].node));
    if (k->store[i].node != provided) rc = need(L, k, seen, &nseen, k->store[i].node, provided);
  }
  switch (k->kind) {
  case CG_KERNEL_REDUCE:
  case CG_KERNEL_SOFTMAX:
  case CG_KERNEL_LAYER_NORM:
  case CG_KERNEL_GROUP_NORM:
  case CG_KERNEL_CROSS_ENTROPY:
  case CG_KERNEL_SCATTER_ADD:
  case CG_KERNEL_ATTENTION:
  case CG_KERNEL_ATTENTION_BWD: {
    const IrNode *r = &L->g->node[k->root];
    for (int j = 0; j < r->nin && rc == 0; j++) rc = need(L, k, seen, &nseen, r->in[j], provided);
    break;
  }
  default: break;
  }
  for (int i = 0; i < nseen; i++) seen[L->seen_list[i]] = false;
  if (rc < 0) return -1;
  for (int i = 0; i < k->nstore; i++) cg_low_mark_stored(L, k->store[i].node);
  RtStep *s = cg_low_step(L, RT_STEP_KERNEL, k->name);
  s->kernel = (int)(k - L->kern);
  s->range = k->range;
  s->narg = k->narg;
  s->arg = k->arg;
  return 0;
}

void cg_low_mark_stored(Lower *L, int v) {
  L->stored[v] = true;
  L->stored_bits[v >> 6] |= UINT64_C(1) << (v & 63);
}

/* ---- the driver ---- */

static int setup_buffers(Lower *L) {
  const IrGraph *g = L->g;
  for (int i = 0; i < g->ninput; i++) {
    int v = g->input[i];
    L->home[v] = node_buffer(L, RT_BUF_INPUT, v, g->node[v].name);
    L->buf[L->home[v]].index = i;
  }
  for (int i = 0; i < g->nparam; i++) {
    int v = g->param[i];
    L->home[v] = node_buffer(L, RT_BUF_STATE, v, g->node[v].name);
  }
  L->out_buf = cg_pool_alloc(L->pool, sizeof(int) * (size_t)(g->noutput + 1));
  for (int k = 0; k < g->noutput; k++) {
    int v = g->output[k];
    const char *nm = g->output_name && g->output_name[k] ? g->output_name[k] : "out";
    int b = node_buffer(L, RT_BUF_OUTPUT, v, nm);
    L->buf[b].index = k;
    L->out_buf[k] = b;
    IrOp op = g->node[v].op;
    cg_low_set_src(L, v);
    if (cg_low_bound_leaf(op) || op == OP_CONST) cg_low_copy(L, cg_low_home(L, v), b, "output");
    else if (L->home[v] < 0) L->home[v] = b;
  }
  for (int k = 0; k < g->nupdate; k++) {
    int t = g->update_target[k], v = g->update_value[k];
    IrOp op = g->node[v].op;
    if (cg_low_bound_leaf(op) || op == OP_CONST || L->home[v] >= 0) continue;
    if (cg_low_update_in_place(L, t, v)) L->home[v] = L->home[t];
  }
  return 0;
}

/* The plan's index checks (runtime/sched/plan.h): i32 inputs that a live
 * gather, onehot or cross_entropy reads as indices directly (through
 * reshapes at most); one per input and limit. */
static void index_checks(Lower *L, RtPlan *pl) {
  const IrGraph *g = L->g;
  RtIndexCheck *ck = cg_pool_alloc(L->pool, sizeof *ck * (size_t)(g->n + 1));
  int n = 0;
  for (int v = 0; v < g->n; v++) {
    const IrNode *nd = &g->node[v];
    if (!L->live[v]) continue;
    int idx;
    int64_t limit;
    char what[160];
    if (nd->op == OP_GATHER) {
      const IrNode *table = &g->node[nd->in[0]];
      idx = nd->in[1];
      limit = table->shape.d[0];
      snprintf(what, sizeof what, "rows of %s", table->op == OP_PARAM && table->name ? table->name : "the table");
    } else if (nd->op == OP_ONEHOT) {
      idx = nd->in[0];
      limit = nd->attr.depth;
      snprintf(what, sizeof what, "depth of a onehot");
    } else if (nd->op == OP_CROSS_ENTROPY) {
      const IrShape *ls = &g->node[nd->in[0]].shape;
      idx = nd->in[1];
      limit = ls->d[ls->rank - 1];
      snprintf(what, sizeof what, "classes of a cross_entropy");
    } else {
      continue;
    }
    while (g->node[idx].op == OP_RESHAPE) idx = g->node[idx].in[0];
    if (g->node[idx].op != OP_INPUT) continue;
    int input = 0;
    while (input < g->ninput && g->input[input] != idx) input++;
    bool dup = input == g->ninput;
    for (int c = 0; c < n && !dup; c++) dup = ck[c].input == input && ck[c].limit == limit;
    if (!dup) ck[n++] = (RtIndexCheck){input, limit, cg_pool_strdup(L->pool, what)};
  }
  pl->ncheck = n;
  pl->check = ck;
}

CgLowered *cg_lower(const IrGraph *g, const FusePlan *p, const char *prefix, RtErr *e) {
  char verr[512];
  if (!ir_verify(g, verr, sizeof verr)) {
    rt_err(e, "codegen (%s): invalid graph: %s", g->name ? g->name : "?", verr);
    return NULL;
  }
  Lower L = {.g = g, .fp = p, .e = e, .prefix = prefix ? prefix : "", .conv_algo = cg_conv_algo_of(&p->opt)};
  L.pool = cg_pool_new();
  for (int v = 0; v < g->n; v++)
    if (p->group_of[v] < 0 || p->group_of[v] >= p->ngroup) {
      cg_low_err(&L, "fusion plan puts %%%d in group %d of %d", v, p->group_of[v], p->ngroup);
      cg_pool_free(L.pool);
      return NULL;
    }
  /* first guesses at the plan's size (training steps reach a buffer per
   * node and steps in the thousands): the arrays grow from there */
  L.capbuf = g->n + 64;
  L.capstep = 2 * p->ngroup + 64;
  L.capkern = p->ngroup + 32;
  L.buf = malloc(sizeof(RtBuffer) * (size_t)L.capbuf);
  L.step = malloc(sizeof(RtStep) * (size_t)L.capstep);
  L.kern = malloc(sizeof(CgKernel) * (size_t)L.capkern);
  L.live = cg_pool_alloc(L.pool, (size_t)g->n + 1);
  L.needed = cg_pool_alloc(L.pool, (size_t)g->n + 1);
  L.stored = cg_pool_alloc(L.pool, (size_t)g->n + 1);
  L.words = g->n / 64 + 1;
  L.stored_bits = cg_pool_alloc(L.pool, sizeof(uint64_t) * (size_t)L.words);
  L.nonident = cg_pool_alloc(L.pool, sizeof(uint64_t) * (size_t)L.words);
  L.base_bits = cg_pool_alloc(L.pool, sizeof(uint64_t) * (size_t)L.words);
  L.base_gi = -1;
  L.upd_gi = -1;
  L.seen = cg_pool_alloc(L.pool, (size_t)g->n + 1);
  L.seen_list = cg_pool_alloc(L.pool, sizeof(int) * (size_t)(g->n + 1));
  for (int v = 0; v < g->n; v++)
    if (!cg_low_identity_op(g->node[v].op)) L.nonident[v >> 6] |= UINT64_C(1) << (v & 63);
  L.home = cg_pool_alloc(L.pool, sizeof(int) * (size_t)(g->n + 1));
  for (int v = 0; v < g->n; v++) L.home[v] = -1;
  cg_low_find_consumers(&L);
  cg_low_find_live(&L);
  cg_low_find_remat(&L);
  int rc = setup_buffers(&L);
  for (int gi = 0; gi < p->ngroup && rc == 0; gi++) {
    const FuseGroup *G = &p->group[gi];
    bool any = false;
    for (int k = 0; k < G->n; k++) any |= L.live[G->node[k]];
    if (G->kind == FUSE_LEAF || !any) continue;
    if (p->ln_into && p->ln_into[G->root] >= 0) continue; /* its matmul's GEMM step computes it */
    cg_low_set_src(&L, G->root);
    rc = cg_low_group(&L, gi);
    for (int k = 0; k < g->noutput && rc == 0; k++) {
      int v = g->output[k];
      if (p->group_of[v] == gi && L.home[v] != L.out_buf[k]) cg_low_copy(&L, cg_low_home(&L, v), L.out_buf[k], "output");
    }
  }
  int in_place = 0;
  int64_t in_place_bytes = 0;
  if (rc == 0) {
    cg_low_set_src(&L, -1);
    cg_low_update_copies(&L);
    in_place = cg_low_in_place(&L, &in_place_bytes);
    cg_low_writes(&L);
    cg_low_dedupe(&L);
  }
  if (rc != 0) {
    free(L.buf);
    free(L.step);
    free(L.kern);
    cg_pool_free(L.pool);
    return NULL;
  }

  CgLowered *out = cg_pool_alloc(L.pool, sizeof *out);
  out->g = g;
  out->pool = L.pool;
  out->nkernel = L.nkern;
  /* the grown arrays become the pool's as they are */
  cg_pool_adopt(L.pool, L.kern);
  cg_pool_adopt(L.pool, L.buf);
  cg_pool_adopt(L.pool, L.step);
  out->kernel = L.kern ? L.kern : cg_pool_alloc(L.pool, sizeof(CgKernel));
  out->fn = cg_pool_alloc(L.pool, sizeof(RtKernelFn) * (size_t)(L.nkern + 1));
  const char **names = cg_pool_alloc(L.pool, sizeof(char *) * (size_t)(L.nkern + 1));
  for (int i = 0; i < L.nkern; i++) names[i] = out->kernel[i].name;
  RtPlan *pl = &out->plan;
  pl->name = cg_pool_strdup(L.pool, g->name ? g->name : "entry");
  pl->nbuf = L.nbuf;
  RtBuffer *bufs = L.buf ? L.buf : cg_pool_alloc(L.pool, sizeof(RtBuffer));
  pl->buf = bufs;
  pl->nstep = L.nstep;
  pl->step = L.step ? L.step : cg_pool_alloc(L.pool, sizeof(RtStep));
  pl->nkernel = L.nkern;
  pl->kernel = out->fn;
  pl->kernel_name = names;
  pl->ninput = g->ninput;
  pl->noutput = g->noutput;
  index_checks(&L, pl);
  /* arena offsets: the memory planner packs the intermediates by lifetime */
  char err[256];
  MemPlan mp;
  if (mem_plan_rt(bufs, pl->nbuf, pl->step, pl->nstep, NULL, 0, &pl->arena_bytes, &mp, err, sizeof err) < 0) {
    rt_err(e, "codegen (%s): memory planning: %s", pl->name, err);
    cg_pool_free(out->pool);
    return NULL;
  }
  out->arena_lower_bound = mp.lower_bound;
  out->arena_no_reuse = mp.no_reuse_bytes + in_place_bytes; /* the merged-away outputs count too */
  out->in_place = in_place;
  out->conv_winograd = L.conv_winograd;
  out->conv_im2col = L.conv_im2col;
  out->wgrad_winograd = L.wgrad_winograd;
  out->wgrad_im2col = L.wgrad_im2col;
  out->winograd4 = L.winograd4;
  out->wino_epilogue = L.wino_epilogue;
  out->wino_prologue = L.wino_prologue;
  out->wino_fused = L.wino_fused;
  out->conv_direct = L.conv_direct;
  out->wgrad_direct = L.wgrad_direct;
  cg_wino_share_finish(&L, out);
  mem_plan_free(&mp);
  return out;
}

void cg_lowered_free(CgLowered *l) {
  if (l) cg_pool_free(l->pool);
}

static const char *buf_kind_name(RtBufKind k) {
  switch (k) {
  case RT_BUF_ARENA: return "arena";
  case RT_BUF_INPUT: return "input";
  case RT_BUF_OUTPUT: return "output";
  case RT_BUF_STATE: return "state";
  case RT_BUF_CONST: return "const";
  }
  return "?";
}

void cg_lowered_print(const CgLowered *l, FILE *out) {
  const RtPlan *p = &l->plan;
  fprintf(out, "plan %s: %d buffers, %d steps, %d kernels, arena %lld bytes\n", p->name, p->nbuf, p->nstep,
          p->nkernel, (long long)p->arena_bytes);
  for (int b = 0; b < p->nbuf; b++) {
    const RtBuffer *B = &p->buf[b];
    char sh[160];
    rt_shape_str(B->rank, B->dim, sh, sizeof sh);
    fprintf(out, "  b%d %s %s%s", b, buf_kind_name(B->kind), rt_dtype_name(B->dtype), sh);
    if (B->kind == RT_BUF_ARENA) fprintf(out, " @%lld", (long long)B->offset);
    if (B->kind == RT_BUF_INPUT || B->kind == RT_BUF_OUTPUT) fprintf(out, " #%d", B->index);
    if (B->name) fprintf(out, " \"%s\"", B->name);
    fputc('\n', out);
  }
  for (int s = 0; s < p->nstep; s++) {
    const RtStep *S = &p->step[s];
    if (S->kind == RT_STEP_KERNEL) fprintf(out, "  kernel %s range=%lld", p->kernel_name[S->kernel], (long long)S->range);
    else if (S->kind == RT_STEP_GEMM)
      fprintf(out, "  gemm %s batch=%d m=%d n=%d k=%d ta=%d tb=%d beta=%g%s", S->name, S->gemm.batch, S->gemm.m,
              S->gemm.n, S->gemm.k, S->gemm.trans_a, S->gemm.trans_b, S->gemm.beta,
              S->gemm.ln ? " ln-prologue" : "");
    else fprintf(out, "  copy (%s)", S->name);
    fputs(" (", out);
    for (int a = 0; a < S->narg; a++) fprintf(out, "%sb%d", a ? ", " : "", S->arg[a]);
    fputs(")\n", out);
  }
}
