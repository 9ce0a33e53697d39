/* bind.c — checking and making the tensors a graph runs on (see bind.h). */
#include "ir/ref/bind.h"

#include <string.h>

#include "runtime/core/init.h"

/* The IR's initialiser kinds and dtypes are passed to the runtime by value. */
_Static_assert((int)IR_INIT_ZEROS == (int)RT_INIT_ZEROS && (int)IR_INIT_ONES == (int)RT_INIT_ONES &&
                   (int)IR_INIT_NORMAL == (int)RT_INIT_NORMAL && (int)IR_INIT_UNIFORM == (int)RT_INIT_UNIFORM,
               "IrInitKind and RtInitKind must agree");

static RtDType rt_dtype_of(IrDType t) { return t == IR_I32 ? RT_I32 : RT_F32; }

static bool same_shape(const IrShape *s, const RtTensor *t) {
  if (s->rank != t->rank) return false;
  for (int i = 0; i < s->rank; i++)
    if (s->d[i] != t->dim[i]) return false;
  return true;
}

RtTensor *cg_tensor_for_node(const IrGraph *g, int id, RtErr *e) {
  const IrNode *n = &g->node[id];
  return rt_tensor_new(rt_dtype_of(n->dtype), n->shape.rank, n->shape.d, e);
}

/* Describes a node's type as "f32[4, 3, 16, 16]". */
static const char *type_str(const IrNode *n, char *buf, size_t size) {
  char shape[128];
  ir_shape_str(&n->shape, shape, sizeof shape);
  snprintf(buf, size, "%s%s", ir_dtype_name(n->dtype), n->shape.rank ? shape : "");
  return buf;
}

static const char *tensor_type_str(const RtTensor *t, char *buf, size_t size) {
  char shape[128];
  rt_shape_str(t->rank, t->dim, shape, sizeof shape);
  snprintf(buf, size, "%s%s", rt_dtype_name(t->dtype), t->rank ? shape : "");
  return buf;
}

int cg_check_input(const IrGraph *g, int i, const RtTensor *t, const char *source, RtErr *e) {
  const IrNode *n = &g->node[g->input[i]];
  char want[160], got[160];
  if (t->dtype != rt_dtype_of(n->dtype) || !same_shape(&n->shape, t))
    return rt_err(e, "%s: input '%s' of %s must be %s, got %s", source, n->name, g->name,
                  type_str(n, want, sizeof want), tensor_type_str(t, got, sizeof got));
  return 0;
}

void cg_free_tensors(RtTensor **t, int n) {
  for (int i = 0; i < n; i++) {
    rt_tensor_free(t[i]);
    t[i] = NULL;
  }
}

int cg_bind_params(const IrGraph *g, const RtTensorList *file, const char *file_name,
                   uint64_t seed, RtTensor **out, RtErr *e) {
  for (int i = 0; i < g->nparam; i++) out[i] = NULL;
  for (int i = 0; i < g->nparam; i++) {
    const IrNode *n = &g->node[g->param[i]];
    char want[160], got[160];
    out[i] = cg_tensor_for_node(g, g->param[i], e);
    if (!out[i]) goto fail;
    if (file) {
      const RtTensor *t = rt_list_get(file, n->name);
      if (!t && n->op == OP_STATE) continue; /* optimizer state starts at zero */
      if (!t) {
        rt_err(e, "%s: missing parameter '%s' (%s)", file_name, n->name, type_str(n, want, sizeof want));
        goto fail;
      }
      if (t->dtype != RT_F32 || !same_shape(&n->shape, t)) {
        rt_err(e, "%s: parameter '%s' must be %s, got %s", file_name, n->name,
               type_str(n, want, sizeof want), tensor_type_str(t, got, sizeof got));
        goto fail;
      }
      memcpy(out[i]->data, t->data, rt_tensor_bytes(t));
    } else {
      rt_init_fill(rt_f32(out[i]), rt_tensor_numel(out[i]), (RtInitKind)n->attr.init, n->attr.init_a,
                   n->attr.init_b, seed, n->name);
    }
  }
  return 0;
fail:
  cg_free_tensors(out, g->nparam);
  return -1;
}
