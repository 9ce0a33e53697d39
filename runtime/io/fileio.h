/* fileio.h — crash-safe file writing for the runtime (npy, checkpoints).
 *
 * A file is written to a temporary file in the same directory, flushed with
 * fsync and renamed over 'path', so a reader sees either the old file or the
 * complete new one, never a partial file. On failure the temporary file is
 * removed and any old file at 'path' is left untouched. A 'path' that is a
 * device or FIFO (/dev/null, /dev/stdout) is written in place instead, and
 * a failed write is reported the same way.
 * Module prefix: rt_.
 */
#ifndef DAL_RT_FILEIO_H
#define DAL_RT_FILEIO_H

#include <stddef.h>
#include <stdio.h>

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

/* ---- checks before work and checked streams (fileio_guard.c) ---- */

/* Whether 'path' can be written, checked before any work so that a long
 * run does not fail at its first write: an existing non-regular file (a
 * device such as /dev/null) must be writable; otherwise 'path' must not be
 * a directory and its directory must exist and take a new file (tried by
 * creating and removing one, which also catches read-only file systems and
 * root on them). 'flag' names the option in the message:
 * "--checkpoint /x/y.safetensors: cannot write in /x: No such file or directory". */
int rt_check_writable(const char *flag, const char *path, RtErr *e);

/* Flushes a stdio stream written with fprintf/fputs and reports a failure
 * of any write since the last check ("PATH: write failed: No space left on
 * device"); rt_stream_close does the same and closes f (NULL is a no-op). */
int rt_stream_check(FILE *f, const char *path, RtErr *e);
int rt_stream_close(FILE *f, const char *path, RtErr *e);

/* An advisory lock (flock, exclusive) on the file "<path>.lock", held until
 * rt_lock_release, which removes the file. flock locks belong to the open
 * file, so a process that dies (even by SIGKILL) releases its lock and a
 * stale lock file never blocks anyone: the next taker just locks it. The
 * holder writes its pid into the file; when another process holds the
 * lock, NULL with a message naming 'path', 'what' and that pid. On a file
 * system without flock a warning goes to stderr and the run goes on
 * without the lock. */
typedef struct RtLock RtLock;
RtLock *rt_lock_take(const char *path, const char *what, RtErr *e);
void rt_lock_release(RtLock *l); /* NULL is a no-op */

#endif
