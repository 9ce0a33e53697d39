/* optimizer.h — optimizers lowered to IR: one training step (forward,
 * backward, update) becomes one graph whose parameters and optimizer state
 * are persistent tensors updated in place after each run (IrGraph's update
 * list).
 *
 * Module prefix: opt_.
 */
#ifndef DAL_PASSES_OPTIMIZER_H
#define DAL_PASSES_OPTIMIZER_H

#include <stdbool.h>

#include "ir/ir.h"

typedef struct {
  double beta1, beta2, eps, weight_decay;
  double clip_norm; /* > 0: clip the global gradient norm to this before the update */
  /* Which params get weight decay: default rank >= 2 ("matrices"); NULL = that default. */
  bool (*decays)(const IrNode *param, void *ctx);
  void *decays_ctx;
} AdamWOptions;

/* Appends to g one AdamW step with PyTorch's torch.optim.AdamW semantics
 * (bias correction; decoupled weight decay p -= lr*wd*p, before the moment
 * step) for params[i] (PARAM nodes) with gradient grads[i] (f32 nodes of the
 * same shape), i < n:
 *
 *   STATE "opt.step" (scalar)              t = opt.step + 1 (f32: exact to 2^24 steps)
 *   STATE "opt.bc1_sum", "opt.bc2_sum"     S_t = 1 + beta S_(t-1): 1 - beta^t = (1 - beta) S_t
 *   STATE "opt.m.<name>", "opt.v.<name>"   first and second moments (zeros at start)
 *   INPUT "opt.lr" (scalar f32)            appended last to g->input, so the
 *                                          driver can schedule the learning rate
 *
 *   g'  = g * min(clip / (norm + 1e-6), 1)   with clip_norm > 0, norm = sqrt(sum of g_i^2)
 *   m   = beta1 m + (1 - beta1) g'
 *   v   = beta2 v + (1 - beta2) g'^2
 *   p  *= 1 - lr wd                          (params 'decays' accepts, when wd > 0)
 *   p  -= lr / (1 - beta1^t) * m / (sqrt(v) / sqrt(1 - beta2^t) + eps)
 *
 * with the bias corrections computed in the graph without cancellation (see
 * adamw.c), and an update for
 * every param, moment and the step count. With clip_norm > 0 the outputs
 * also get "opt.grad_norm" (the norm before clipping, appended last; the
 * clipping matches torch.nn.utils.clip_grad_norm_).
 *
 * Everything is plain elementwise IR plus one sum per parameter for the
 * norm, so fusion can make each parameter's update a single kernel. Call it
 * once per graph. Returns 0, or -1 with g->error set: bad options, a param
 * that is not a PARAM or is listed twice or already has an update, a
 * gradient of the wrong dtype or shape, a name already taken (opt.lr,
 * opt.step, opt.bc1_sum, opt.bc2_sum, opt.m.*, opt.v.*, opt.grad_norm); in those cases g is unchanged. */
int opt_adamw(IrGraph *g, const int *params, const int *grads, int n, const AdamWOptions *o);

/* Turns a training entry (g->train, output 0 the scalar loss) into one
 * training step: the gradient of every trainable PARAM (autodiff), one
 * AdamW update of each, and the outputs [loss] (plus "opt.grad_norm" when
 * clipping). Returns 0, or -1 with g->error set. */
int opt_train_step(IrGraph *g, const AdamWOptions *o);

#endif
