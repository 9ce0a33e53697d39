/* bind.h — giving a graph's inputs and parameters their tensors.
 *
 * Every backend runs an IrGraph on tensors bound to its INPUT and PARAM
 * nodes. These helpers check user-supplied tensors against the nodes (with
 * errors that name the file and the tensor) and make parameters from their
 * initialisers when no checkpoint is given. Module prefix: cg_.
 */
#ifndef DAL_IR_REF_BIND_H
#define DAL_IR_REF_BIND_H

#include "ir/ir.h"
#include "runtime/core/tensor.h"

/* Fills out[i] for g->param[i]: taken from 'file' (a safetensors list read
 * from 'file_name'; each parameter must be present, f32, and of the node's
 * shape; the tensor is copied; STATE nodes absent from the file start at
 * zero) or, when file is NULL, made with the node's
 * initialiser from 'seed' (the same values for the same name and seed, in
 * any graph). On failure frees what it made and returns -1. */
int cg_bind_params(const IrGraph *g, const RtTensorList *file, const char *file_name,
                   uint64_t seed, RtTensor **out, RtErr *e);

/* Checks that t (from 'source', e.g. a file name) fits INPUT i of g. */
int cg_check_input(const IrGraph *g, int i, const RtTensor *t, const char *source, RtErr *e);

/* Frees n tensors (NULL entries allowed). */
void cg_free_tensors(RtTensor **t, int n);

/* Makes a tensor with the dtype and shape of node id. */
RtTensor *cg_tensor_for_node(const IrGraph *g, int id, RtErr *e);

#endif
