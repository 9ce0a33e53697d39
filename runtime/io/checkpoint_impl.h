/* checkpoint_impl.h — what checkpoint.c shares with checkpoint_ema.c.
 * Internal to the runtime. */
#ifndef DAL_RT_CHECKPOINT_IMPL_H
#define DAL_RT_CHECKPOINT_IMPL_H

#include "runtime/io/checkpoint.h"
#include "runtime/io/safetensors.h"

/* The metadata of a checkpoint of p (checkpoint.h's list). */
RtMeta *rt_checkpoint_meta(const RtProgram *p, const RtCheckpointInfo *info);
/* Whether a and b have the same dtype and shape. */
bool rt_same_type(const RtTensor *a, const RtTensor *b);
/* 0 if file tensor t fits state tensor s (named 'name'), else an error
 * naming 'path', the tensor and both types. */
int rt_checkpoint_check_fits(const RtTensor *t, const RtTensor *s, const char *name, const char *path, RtErr *e);

#endif
