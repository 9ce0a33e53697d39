/* fileio.c — atomic file writes: temp file, fsync, rename (see fileio.h). */
#include "runtime/io/fileio.h"

#include <errno.h>
#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

struct RtAtomicFile {
  int fd;
  int failed; /* a write failed: commit must not publish */
  char *path; /* destination */
  char *tmp;  /* "<path>.tmp.<pid>.<n>", same directory so rename is atomic;
               * NULL when 'path' is a device or FIFO, written in place */
};

static atomic_uint tmp_counter;

static char *str_dup(const char *s) {
  size_t n = strlen(s) + 1;
  char *p = malloc(n);
  return p ? memcpy(p, s, n) : NULL;
}

static void atomic_free(RtAtomicFile *f) {
  free(f->path);
  free(f->tmp);
  free(f);
}

RtAtomicFile *rt_atomic_open(const char *path, RtErr *e) {
  RtAtomicFile *f = calloc(1, sizeof *f);
  size_t cap = strlen(path) + 64;
  if (f) {
    f->path = str_dup(path);
    f->tmp = malloc(cap);
  }
  if (!f || !f->path || !f->tmp) {
    if (f) atomic_free(f);
    rt_err(e, "%s: out of memory", path);
    return NULL;
  }
  /* A device or FIFO (/dev/null, /dev/stdout, a pipe) is written in
   * place: renaming a file over it would replace the device itself. */
  struct stat st;
  if (stat(path, &st) == 0 && !S_ISREG(st.st_mode) && !S_ISDIR(st.st_mode)) {
    free(f->tmp);
    f->tmp = NULL;
    f->fd = open(path, O_WRONLY | O_CLOEXEC);
    if (f->fd >= 0) return f;
    rt_err(e, "%s: cannot open for writing: %s", path, strerror(errno));
    atomic_free(f);
    return NULL;
  }
  /* O_EXCL with a fresh name rather than mkstemp: the new file then gets the
   * usual 0666 & ~umask permissions instead of mkstemp's 0600. */
  for (int attempt = 0;; attempt++) {
    snprintf(f->tmp, cap, "%s.tmp.%ld.%u", path, (long)getpid(), atomic_fetch_add(&tmp_counter, 1));
    f->fd = open(f->tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
    if (f->fd >= 0) return f;
    if (errno != EEXIST || attempt == 100) break;
  }
  rt_err(e, "%s: cannot create temporary file %s: %s", path, f->tmp, strerror(errno));
  atomic_free(f);
  return NULL;
}

int rt_atomic_write(RtAtomicFile *f, const void *data, size_t size, RtErr *e) {
  if (f->failed) return rt_err(e, "%s: write after an earlier failure", f->path);
  const char *p = data;
  while (size > 0) {
    /* Large writes are split: Linux writes at most ~2 GiB per call anyway. */
    size_t chunk = size < ((size_t)1 << 30) ? size : ((size_t)1 << 30);
    ssize_t n = write(f->fd, p, chunk);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      f->failed = 1;
      return rt_err(e, "%s: write failed: %s", f->path, n < 0 ? strerror(errno) : "no progress");
    }
    p += n;
    size -= (size_t)n;
  }
  return 0;
}

void rt_atomic_abort(RtAtomicFile *f) {
  if (!f) return;
  close(f->fd);
  if (f->tmp) unlink(f->tmp);
  atomic_free(f);
}

/* Makes the rename itself durable. Best effort: some file systems refuse
 * fsync on directories, and the data is already safe at this point. */
static void sync_parent_dir(const char *path) {
  char *dir = str_dup(path);
  if (!dir) return;
  char *slash = strrchr(dir, '/');
  const char *d = ".";
  if (slash == dir) d = "/";
  else if (slash) {
    *slash = 0;
    d = dir;
  }
  int fd = open(d, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd >= 0) {
    (void)fsync(fd);
    close(fd);
  }
  free(dir);
}

/* Removes "<path>.tmp.<pid>.<n>" files left by writers that died before
 * their rename (SIGKILL, power loss): those whose process no longer
 * exists. Temporaries of live processes, this one included, are kept. */
static void remove_stale_temps(const char *path) {
  char *dir = str_dup(path);
  if (!dir) return;
  char *slash = strrchr(dir, '/');
  const char *base = slash ? slash + 1 : path, *d = ".";
  if (slash == dir) d = "/";
  else if (slash) {
    *slash = 0;
    d = dir;
  }
  size_t nb = strlen(base);
  DIR *dp = opendir(d);
  for (struct dirent *de; dp && (de = readdir(dp));) {
    const char *n = de->d_name;
    if (strncmp(n, base, nb) != 0 || strncmp(n + nb, ".tmp.", 5) != 0) continue;
    char *end;
    long pid = strtol(n + nb + 5, &end, 10);
    if (end == n + nb + 5 || *end != '.' || pid <= 0 || pid == (long)getpid()) continue;
    if (kill((pid_t)pid, 0) == 0 || errno != ESRCH) continue;
    char *full = malloc(strlen(d) + strlen(n) + 2);
    if (!full) break;
    sprintf(full, "%s/%s", d, n);
    unlink(full);
    free(full);
  }
  if (dp) closedir(dp);
  free(dir);
}

/* rt_atomic_commit of a device or FIFO: nothing to rename. */
static int commit_in_place(RtAtomicFile *f, RtErr *e) {
  int rc = f->failed ? rt_err(e, "%s: not fully written because a write failed", f->path) : 0;
  if (close(f->fd) != 0 && rc == 0) rc = rt_err(e, "%s: close failed: %s", f->path, strerror(errno));
  atomic_free(f);
  return rc;
}

int rt_atomic_commit(RtAtomicFile *f, RtErr *e) {
  if (!f->tmp) return commit_in_place(f, e);
  int rc = -1;
  if (f->failed) {
    rt_err(e, "%s: not written because an earlier write failed", f->path);
  } else if (fsync(f->fd) != 0) {
    rt_err(e, "%s: fsync failed: %s", f->path, strerror(errno));
  } else {
    int fd = f->fd;
    f->fd = -1;
    if (close(fd) != 0) rt_err(e, "%s: close failed: %s", f->path, strerror(errno));
    else if (rename(f->tmp, f->path) != 0)
      rt_err(e, "%s: cannot rename %s into place: %s", f->path, f->tmp, strerror(errno));
    else rc = 0;
  }
  if (rc == 0) {
    sync_parent_dir(f->path);
    remove_stale_temps(f->path);
    atomic_free(f);
  } else {
    if (f->fd >= 0) close(f->fd);
    unlink(f->tmp);
    atomic_free(f);
  }
  return rc;
}

int rt_write_file_atomic(const char *path, const RtChunk *chunks, int n, RtErr *e) {
  RtAtomicFile *f = rt_atomic_open(path, e);
  if (!f) return -1;
  for (int i = 0; i < n; i++) {
    if (rt_atomic_write(f, chunks[i].data, chunks[i].size, e) != 0) {
      rt_atomic_abort(f);
      return -1;
    }
  }
  return rt_atomic_commit(f, e);
}
