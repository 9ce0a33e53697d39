/* fileio.h — crash-safe file writing for the runtime (npy, checkpoints).
 *
 * A file is written to a temporary file in the same directory, flushed with
 * fsync and renamed over 'path', so a reader sees either the old file or the
 * complete new one, never a partial file. On failure the temporary file is
 * removed and any old file at 'path' is left untouched.
 * Module prefix: rt_.
 */
#ifndef DAL_RT_FILEIO_H
#define DAL_RT_FILEIO_H

#include <stddef.h>

#include "runtime/core/rt_error.h"

/* Streaming writer: rt_atomic_open, any number of rt_atomic_write, then
 * exactly one of rt_atomic_commit or rt_atomic_abort (both free 'f'). */
typedef struct RtAtomicFile RtAtomicFile;

/* Creates the temporary file next to 'path'; NULL (with a message naming
 * 'path') if it cannot. */
RtAtomicFile *rt_atomic_open(const char *path, RtErr *e);
/* Appends 'size' bytes. After a failure the writer remembers the error and
 * rt_atomic_commit refuses to publish the file. */
int rt_atomic_write(RtAtomicFile *f, const void *data, size_t size, RtErr *e);
/* fsyncs, closes and renames the temporary file to 'path'. On any failure
 * (including an earlier failed write) the temporary file is removed and the
 * old file is kept. After a success, temporaries of 'path' left by writers
 * that were killed mid-write (their process is gone) are removed. Frees 'f'
 * either way. */
int rt_atomic_commit(RtAtomicFile *f, RtErr *e);
/* Discards the temporary file; the old file is kept. Frees 'f'. NULL is a no-op. */
void rt_atomic_abort(RtAtomicFile *f);

/* One piece of a file written in a single call. */
typedef struct {
  const void *data;
  size_t size;
} RtChunk;

/* Writes the concatenation of chunks[0..n) to 'path' atomically. */
int rt_write_file_atomic(const char *path, const RtChunk *chunks, int n, RtErr *e);

#endif
