/* exp_log_softmax.c — an example pass plugin: exp(log_softmax(x, axis))
 * becomes softmax(x, axis).
 *
 * Where it fires: the dVAE's KL term (models/dvae.dal, kl_to_uniform)
 * computes logp = log_softmax(logits) and then exp(logp); the gradient of a
 * log_softmax (passes/grad_reduce.c) is gy - exp(y) * sum(gy), the same
 * exp again, which `cse` merges with the first. This pass turns that one
 * exp node into a softmax of the logits; the log_softmax stays, as
 * logp + log(K) still reads it.
 *
 * Semantics: softmax(x) is exp(log_softmax(x)) up to rounding (a few ulp;
 * tests/scripts/plugin_pass.sh compares the outputs with the reference
 * executor to a tolerance).
 *
 * How it is built, loaded and run (docs/writing-a-pass.md walks through it):
 *   make                   # also builds build/examples/passes/exp_log_softmax.so
 *   dalc models/dvae.dal --config tiny --fn loss --grad --emit=ir \
 *     --plugin=build/examples/passes/exp_log_softmax.so \
 *     --passes=cse,fold,algebra,exp_log_softmax,cse,dce --stats
 */
#include "passes/plugin.h"
#include "passes/rewrite.h"

/* Called by pass_rewrite for each node of the old graph in id order, with
 * 'n's inputs already naming nodes of the new graph; returns the id of the
 * node that stands for 'n' in the new graph. 'ctx' is unused
 * (pass_rewrite passes its last argument through). */
static int rewrite_node(PassRewrite *rw, const IrNode *n, void *ctx) {
  (void)ctx;
  if (n->op == OP_EXP) {
    const IrNode *arg = pass_rw_node(rw, n->in[0]);
    if (arg->op == OP_LOG_SOFTMAX) {
      IrAttr attr = {0};
      attr.axis = arg->attr.axis;
      /* -1 with rw->dst->error set if the builder refuses it */
      return ir_build(rw->dst, OP_SOFTMAX, arg->in, 1, &attr, n->loc);
    }
  }
  return pass_rw_copy(rw, n);
}

/* The pass: rebuilds g with every exp(log_softmax(x)) replaced. The old exp
 * node is not used any more, and the log_softmax perhaps not either: `dce`
 * drops what is left dead. Returns 0, or -1 with g->error set. */
static int exp_log_softmax_run(IrGraph *g) {
  return pass_rewrite(g, "exp_log_softmax", rewrite_node, NULL);
}

/* The plugin's entry: registers the pass by name. */
static int init(char *why, size_t size) {
  static const Pass pass = {
      "exp_log_softmax",
      "rewrite exp(log_softmax(x)) into softmax(x) (example plugin, examples/passes/)",
      exp_log_softmax_run,
  };
  return pass_register(&pass, why, size);
}

DAL_PLUGIN_DEFINE("exp_log_softmax", init)
