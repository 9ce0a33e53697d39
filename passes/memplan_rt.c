/* memplan_rt.c — arena offsets for a runtime plan's buffers from the steps
 * that use them (mem_plan_rt in memplan.h). */
#include <stdio.h>
#include <stdlib.h>

#include "passes/memplan.h"

int mem_plan_rt(RtBuffer *buf, int nbuf, const RtStep *step, int nstep, const MemInPlace *inplace, int ninplace,
                int64_t *arena_bytes, MemPlan *stats, char *err, size_t errsize) {
  MemBuffer *mb = malloc(((size_t)nbuf + 1) * sizeof *mb);
  for (int i = 0; i < nbuf; i++) mb[i] = (MemBuffer){buf[i].bytes, -1, -1, buf[i].kind != RT_BUF_ARENA};
  for (int s = 0; s < nstep; s++)
    for (int k = 0; k < step[s].narg; k++) {
      int b = step[s].arg[k];
      if (b < 0 || b >= nbuf) {
        if (err && errsize) snprintf(err, errsize, "memory plan: step %d names buffer %d of %d", s, b, nbuf);
        free(mb);
        return -1;
      }
      if (mb[b].first < 0) mb[b].first = s;
      mb[b].last = s;
    }
  for (int i = 0; i < nbuf; i++)
    if (mb[i].first < 0) mb[i].first = mb[i].last = 0;
  MemPlan p;
  int rc = mem_plan(mb, nbuf, inplace, ninplace, &p, err, errsize);
  free(mb);
  if (rc) return -1;
  for (int i = 0; i < nbuf; i++)
    if (buf[i].kind == RT_BUF_ARENA) buf[i].offset = p.offset[i];
  *arena_bytes = p.arena_bytes;
  if (stats) *stats = p;
  else mem_plan_free(&p);
  return 0;
}
