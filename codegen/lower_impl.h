/* lower_impl.h — state shared by the lowering files (internal to codegen):
 * lower.c (buffers, steps, kernels, the driver), lower_state.c (liveness,
 * recomputed expansions, state updates), lower_group.c
 * (a fusion group's kernels), lower_gemm.c (GEMM-based ops) and
 * lower_inplace.c (outputs written over dying inputs) and lower_dedupe.c
 * (kernels with the same code share a function). */
#ifndef DAL_CODEGEN_LOWER_IMPL_H
#define DAL_CODEGEN_LOWER_IMPL_H

#include "codegen/lower.h"
#include "codegen/pool.h"


typedef struct CgWinoShare CgWinoShare; /* lower_wino_share.c */

typedef struct {
  const IrGraph *g;
  const FusePlan *fp;
  CgPool *pool;
  RtErr *e;
  const char *prefix;
  int *cons_first, *cons;  /* consumers of node v: cons[cons_first[v] .. cons_first[v+1]) */
  bool *live;              /* the node's value is computed by the plan */
  bool *needed;            /* ... and must be in a buffer (read by another group, an
                              output, an update value) */
  int *home;               /* the buffer holding a node's value, or -1 */
  int *out_buf;            /* graph output k -> its RT_BUF_OUTPUT buffer */
  RtBuffer *buf;
  int nbuf, capbuf;
  RtStep *step;
  int nstep, capstep;
  CgKernel *kern;
  int nkern, capkern;
  bool *stored;            /* scratch per group: node already stored by an earlier kernel
                              (set through cg_low_mark_stored) */
  uint64_t *stored_bits;   /* ... the same as a bitset */
  uint64_t *nonident;      /* bitset: nodes whose op is not cg_low_identity_op */
  int words;               /* words of a bitset over the nodes */
  int base_gi;             /* the group whose elemental members base_bits holds, or -1 */
  uint64_t *base_bits;     /* ... (bitset; lower_group.c set_members) */
  int base_lo, base_hi;    /* ... its words that may be non-zero */
  bool *seen;              /* scratch for cg_low_finish_kernel, all false between kernels */
  int upd_gi;              /* cg_low_update_in_place: the group upd_* describe, or -1 */
  bool upd_ok;             /* ... no reduction in it, every needed member at the root's index */
  bool *upd_back;          /* ... (nodes) the members reached from its root through identity edges */
  int *upd_list, upd_n;    /* ... the entries set in upd_back */
  bool *upd_seen;          /* ... (nodes) scratch for the walk forward from a target */
  int *upd_queue;          /* ... (nodes) */
  bool *upd_kept;          /* ... (nodes) a graph output or an update value */
  int *seen_list;          /* ... the entries it set */
  int conv_winograd, conv_im2col, conv_direct; /* convolutions lowered by each algorithm */
  int wgrad_winograd, wgrad_im2col, wgrad_direct; /* conv2d_backward_weight likewise */
  int winograd4;           /* of the Winograd ones, through F(4x4,3x3) */
  int wino_epilogue, wino_prologue; /* Winograd convs whose output transform applies the group's
                              epilogue, and whose input transform computes x (lower_winograd.c) */
  int *wino_stats;         /* per group_norm folded by wino-prologue: its statistics buffer
                              (NULL until the first; lower_wino_fuse.c) */
  signed char *wino_fused; /* per node, CgLowered.wino_fused (NULL until the first) */
  CgConvAlgo conv_algo;    /* the plan's -fconv (cg_conv_algo_of) */
  const char *n0_name;     /* "n0" in the pool: the name of every chunk-start constant */
  bool *remat;             /* per group: a cheap expansion (a broadcast mask, a scaled
                              constant) recomputed inside its consumers' kernels
                              instead of being written out */
  CgWinoShare *wino;       /* rule wino-share-u (lower_wino_share.c); NULL until the
                              first Winograd conv asks */
  const char *src;         /* the .dal source of the steps being made (RtStep.src), in the pool */
  const char *calls;       /* ... the calls it was reached through (RtStep.calls) */
  int backward;            /* ... and whether they belong to the gradient (RtStep.backward) */
} Lower;

/* ---- lower.c ---- */
int cg_low_err(Lower *L, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* A new arena buffer for a node-shaped value (dtype, shape of 'node'), or
 * of 'elems' f32 elements if node < 0. Returns its id. */
int cg_low_arena(Lower *L, int node, int64_t elems, const char *name);
/* A constant buffer: the CONST node's value filled in (node >= 0), or one
 * int64 holding 'value' (node < 0). */
int cg_low_const(Lower *L, int node, int64_t value);
/* The buffer holding node's value, made (arena) if it has none yet; CONST
 * nodes get a filled constant buffer. */
int cg_low_home(Lower *L, int node);
RtStep *cg_low_step(Lower *L, RtStepKind kind, const char *name);
/* cg_low_step with a name already in L's pool (shared, not copied). */
RtStep *cg_low_step_pooled(Lower *L, RtStepKind kind, const char *name);
/* A new kernel of 'kind' for group 'gi' rooted at 'root', with an
 * all-false member array; its name is prefix + number + root op. */
CgKernel *cg_low_kernel(Lower *L, CgKernelKind kind, int gi, int root);
/* The argument index of buffer b in k (added if new). */
int cg_low_arg(Lower *L, CgKernel *k, int b);
/* Works out k's loads from its stores and members (and for row kernels the
 * root's inputs), sets the args, and appends the kernel's step. */
int cg_low_finish_kernel(Lower *L, CgKernel *k);
bool cg_low_identity_op(IrOp op);
/* Makes room in k for 'args' more arguments, 'loads' more loads and
 * 'stores' more stores (the arrays start small: a group lowered to
 * thousands of kernels must not give each room for the whole group). */
void cg_low_room(Lower *L, CgKernel *k, int args, int loads, int stores);
/* Marks v stored by a kernel of the current group (L->stored and stored_bits). */
void cg_low_mark_stored(Lower *L, int v);
bool cg_low_bound_leaf(IrOp op); /* INPUT, PARAM, STATE: bound by the caller */
/* A copy step: buffer src's bytes into dst ('why' names it in dumps). */
void cg_low_copy(Lower *L, int src, int dst, const char *why);

/* ---- lower_state.c ---- */
void cg_low_find_consumers(Lower *L);
/* Fills live[] (computed by the plan) and needed[] (must be in a buffer). */
void cg_low_find_live(Lower *L);
/* Fills remat[] and clears needed[] of the values recomputed instead. */
void cg_low_find_remat(Lower *L);
/* Whether update value v may be computed straight into target t's buffer. */
bool cg_low_update_in_place(Lower *L, int t, int v);
/* The copy steps of the updates not done in place, after everything else. */
void cg_low_update_copies(Lower *L);

/* ---- lower_group.c ---- */
int cg_low_group(Lower *L, int gi);
/* Marks in fwd[] the members of gi that depend on 'root' only through
 * identity edges (their value at an index needs the root at that same
 * index); root excluded. */
void cg_low_fwd_from(Lower *L, int gi, int root, bool *fwd);
/* A LOOP kernel storing 'stores' (n) over the shape of 'root'; members:
 * group gi's members not yet stored; 'provided' (or -1) is the group's
 * heavy root, whose value the kernel gets some other way. Returns the
 * kernel (not finished: the caller may set a window or source) or NULL. */
CgKernel *cg_low_loop_kernel(Lower *L, int gi, int root, const int *stores, int n, int provided);
/* Sets a LOOP kernel's iteration geometry (flat or rows x inner, window). */
void cg_low_loop_geometry(Lower *L, CgKernel *k);

/* ---- lower_inplace.c ---- */
/* Lets elementwise LOOP kernels store an output into the storage of an
 * input that dies there (the two buffers become one; the output's buffer
 * is dropped from the plan). Returns the number of pairs merged and their
 * bytes in *merged_bytes. Runs after every step exists, before dedupe. */
int cg_low_in_place(Lower *L, int64_t *merged_bytes);

/* ---- lower_dedupe.c ---- */
/* Makes kernels with identical code share one function (steps remapped,
 * kernel list compacted). */
void cg_low_dedupe(Lower *L);

/* ---- lower_gemm.c ---- */
/* Lowers a group whose root is MATMUL, CONV2D, CONV_TRANSPOSE2D or
 * CONV2D_BACKWARD_WEIGHT: the GEMM steps and the kernels around them,
 * storing the epilogue members in epi[0..nepi) and the root if store_root. */
int cg_low_gemm_group(Lower *L, int gi, const int *epi, int nepi, bool store_root);

/* How a convolution's samples are cut into chunks: nc whole samples at a
 * time, or, when one sample is over the col budget, one sample's blocks of
 * 'rows' output rows (tile = rows * OW positions of each plane). */
typedef struct {
  int64_t nc, tile, nchunk;
} CgChunks;

/* Chunks for N samples of OH x OW output positions, bytes_per_pos bytes of
 * scratch per (sample, position). */
CgChunks cg_low_plan_chunks(int64_t N, int64_t OH, int64_t OW, int64_t bytes_per_pos);
/* The int64 a chunk's kernels find at their base argument: its first
 * sample, or in tiles its chunk number (see CgKernel.tile). */
int64_t cg_low_chunk_base(const CgChunks *ch, int64_t c);
/* A GEMM step c = a @ b (alpha 1; leading dimensions at least 1). */
int cg_low_gemm_step(Lower *L, const char *name, RtGemm gm, int a, int b, int c);
/* Runs kernel step 'first' again with the chunk-start buffer (argument
 * base_arg) holding n0. */
void cg_low_repeat_step(Lower *L, int first, int base_arg, int64_t n0);
/* Names k prefix + "k<number>_" + what. */
void cg_low_name_kernel(Lower *L, CgKernel *k, const char *what);
/* Finishes a data-movement kernel of 'range' iterations reading its
 * chunk's start from buffer 'base' (-1: none); returns its step index. */
int cg_low_finish_step(Lower *L, CgKernel *k, int base, int64_t range);
/* The epilogue loop over the root's shape, the root loaded from its buffer. */
int cg_low_epilogue(Lower *L, int gi, int root, const int *epi, int nepi);
/* The buffer a GEMM-like op writes its root to (see lower_gemm.c). */
int cg_low_gemm_target(Lower *L, int root, const int *epi, int nepi, bool store_root);
/* conv2d / conv_transpose2d / conv2d_backward_weight geometry of root. */
CgConv cg_low_conv_geom(const IrGraph *g, int root);

/* ---- lower_winograd.c ---- */
/* Lowers conv2d or conv_transpose2d root (cg_conv_choose said yes) through
 * Winograd F(2x2,3x3), then the group's epilogue. */
int cg_low_winograd(Lower *L, int gi, int root, const int *epi, int nepi, bool store_root);
/* Lowers conv2d_backward_weight root (cg_conv_choose said yes) through
 * Winograd F(2x2,3x3), then the group's epilogue. */
int cg_low_winograd_bw_weight(Lower *L, int gi, int root, const int *epi, int nepi, bool store_root);

/* ---- lower_wino_share.c ---- */
/* Rule wino-share-u: the buffer holding the Winograd U (of weight node
 * w = in[1]) that F(2x2,3x3) conv 'root' reads instead of computing its
 * own, or -1 (then it computes U itself and records it with
 * cg_wino_share_note). *swap says whether that U is the other flip's
 * (conv2d vs conv_transpose2d): read transposed and plane-permuted. */
int cg_wino_share_find(Lower *L, int root, int m, bool *swap);
/* Records that conv 'root' (tile m) computed its own U into buffer u, by
 * the weight kernel whose step was the last one added. */
void cg_wino_share_note(Lower *L, int root, int m, int u);
/* The GEMM steps M[e] = U'[e] @ V[e] of a conv whose U' is shared U u
 * (gm as for a U of its own: batch over the planes, A = U'[e] [O, C]):
 * u read transposed with its planes permuted when swap. */
int cg_wino_share_gemms(Lower *L, const char *name, RtGemm gm, int u, int v, int mbuf, bool swap);
/* Copies the counters into the lowered entry (cg_lower, at the end). */
void cg_wino_share_finish(Lower *L, CgLowered *out);
/* ---- lower_wino_fuse.c ---- */
/* Rule wino-prologue: the group_norm whose elementwise epilogue x (read
 * by nothing but one Winograd convolution, as its input) that convolution's
 * input transform computes on the fly; -1 if x is not folded so. */
int cg_low_wino_prologue(Lower *L, int x);
/* Lowers group gi to the statistics of its group_norm if its one out is
 * folded into a Winograd input transform (cg_low_wino_prologue). Returns
 * 1 if it did, 0 if the group is not such a group, -1 on failure. */
int cg_low_wino_stats_group(Lower *L, int gi);
/* Makes Winograd input kernel k compute its x (folded into it, from
 * group_norm gn) instead of reading it: k->x_arg becomes gn's input. */
void cg_low_wino_prologue_kernel(Lower *L, CgKernel *k, int x, int gn);
/* Records in wino_fused that conv node v's transforms fused 'what'
 * (CG_WINO_FUSED_EPILOGUE or _PROLOGUE) and counts it. */
void cg_low_wino_fused(Lower *L, int v, int what);

/* ---- lower_numerics.c ---- */
/* The steps made from now on come from node's source location (-1: none). */
void cg_low_set_src(Lower *L, int node);
/* Fills every step's written buffers (RtStep.write); after the in-place
 * merges (buffer ids final), before dedupe (each step's own kernel). */
void cg_low_writes(Lower *L);

/* ---- lower_direct.c ---- */
/* Lowers conv2d, conv_transpose2d or conv2d_backward_weight root
 * (cg_conv_pick said direct) without im2col, then the group's epilogue. */
int cg_low_direct(Lower *L, int gi, int root, const int *epi, int nepi, bool store_root);

#endif
