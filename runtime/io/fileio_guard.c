/* fileio_guard.c — checks that come before the work: output paths that
 * can be written, checked stdio streams, and the advisory lock a training
 * run holds on its checkpoint (see fileio.h). */
#include "runtime/io/fileio.h"

#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

/* The directory part of 'path' into buf: "." for a bare name, "/" for "/x". */
static void dir_of(const char *path, char *buf, size_t size) {
  const char *slash = strrchr(path, '/');
  if (!slash) snprintf(buf, size, ".");
  else if (slash == path) snprintf(buf, size, "/");
  else snprintf(buf, size, "%.*s", (int)(slash - path), path);
}

int rt_check_writable(const char *flag, const char *path, RtErr *e) {
  static atomic_uint probe_counter;
  if (!*path) return rt_err(e, "%s: the path is empty", flag);
  struct stat st;
  if (stat(path, &st) == 0) {
    if (S_ISDIR(st.st_mode)) return rt_err(e, "%s %s: is a directory, not a file", flag, path);
    if (!S_ISREG(st.st_mode)) { /* a device or FIFO is written in place */
      if (access(path, W_OK) != 0) return rt_err(e, "%s %s: cannot write: %s", flag, path, strerror(errno));
      return 0;
    }
  }
  char dir[4096], probe[4200];
  dir_of(path, dir, sizeof dir);
  /* Creating a file is the only test that sees everything: permissions,
   * a read-only mount, a missing or non-directory parent. Named as the
   * atomic writer names its temporaries, so one left by a killed process
   * is swept away by the next write of 'path' like theirs. */
  snprintf(probe, sizeof probe, "%s.tmp.%ld.%u", path, (long)getpid(), atomic_fetch_add(&probe_counter, 1));
  int fd = open(probe, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0) return rt_err(e, "%s %s: cannot write in %s: %s", flag, path, dir, strerror(errno));
  close(fd);
  unlink(probe);
  return 0;
}

int rt_stream_check(FILE *f, const char *path, RtErr *e) {
  errno = 0;
  if (fflush(f) != 0) return rt_err(e, "%s: write failed: %s", path, strerror(errno ? errno : EIO));
  if (ferror(f)) return rt_err(e, "%s: write failed: %s", path, strerror(EIO));
  return 0;
}

int rt_stream_close(FILE *f, const char *path, RtErr *e) {
  if (!f) return 0;
  int rc = rt_stream_check(f, path, e);
  errno = 0;
  if (fclose(f) != 0 && rc == 0) rc = rt_err(e, "%s: close failed: %s", path, strerror(errno ? errno : EIO));
  return rc;
}

struct RtLock {
  int fd;     /* -1: the file system has no flock, nothing is held */
  char *path; /* "<path>.lock" */
};

/* The pid the holder wrote into lock file 'fd', or 0 if unreadable. */
static long holder_pid(int fd) {
  char buf[32];
  ssize_t n = pread(fd, buf, sizeof buf - 1, 0);
  if (n <= 0) return 0;
  buf[n] = 0;
  return strtol(buf, NULL, 10);
}

RtLock *rt_lock_take(const char *path, const char *what, RtErr *e) {
  RtLock *l = calloc(1, sizeof *l);
  size_t n = strlen(path) + 6;
  if (l) l->path = malloc(n);
  if (!l || !l->path) {
    free(l);
    rt_err(e, "%s: out of memory", path);
    return NULL;
  }
  snprintf(l->path, n, "%s.lock", path);
  /* A releaser removes the file while it holds the lock: the file locked
   * here may have been removed (and another created) between open and
   * flock, so the lock counts only if the path still names it. */
  bool reported = false;
  for (int attempt = 0; attempt < 100 && !reported; attempt++) {
    int fd = open(l->path, O_RDWR | O_CREAT | O_CLOEXEC, 0666);
    if (fd < 0) {
      rt_err(e, "%s: cannot create the lock file %s: %s", path, l->path, strerror(errno));
      reported = true;
      break;
    }
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
      int err = errno;
      long pid = err == EWOULDBLOCK ? holder_pid(fd) : 0;
      close(fd);
      if (err == EINTR) continue;
      if (err != EWOULDBLOCK) {
        /* A file system without flock (some network or FUSE ones): the
         * run goes on unguarded rather than not at all. */
        fprintf(stderr, "warning: %s: cannot lock %s (%s): a second process writing %s would go unnoticed\n", path,
                l->path, strerror(err), what);
        l->fd = -1;
        return l;
      }
      reported = true;
      if (pid > 0) {
        rt_err(e, "%s: another process (pid %ld) is writing %s; it holds the lock %s until it ends", path, pid, what,
               l->path);
      } else {
        rt_err(e, "%s: another process is writing %s; it holds the lock %s until it ends", path, what, l->path);
      }
      continue;
    }
    struct stat a, b;
    if (fstat(fd, &a) == 0 && stat(l->path, &b) == 0 && a.st_dev == b.st_dev && a.st_ino == b.st_ino) {
      char pid[32];
      int len = snprintf(pid, sizeof pid, "%ld\n", (long)getpid());
      /* Best effort: without the pid the lock still holds; others just
       * cannot name its holder. */
      bool named = ftruncate(fd, 0) == 0 && pwrite(fd, pid, (size_t)len, 0) == len;
      (void)named;
      l->fd = fd;
      return l;
    }
    close(fd);
  }
  if (!reported) rt_err(e, "%s: cannot take the lock %s (it keeps being replaced)", path, l->path);
  free(l->path);
  free(l);
  return NULL;
}

void rt_lock_release(RtLock *l) {
  if (!l) return;
  if (l->fd >= 0) {
    unlink(l->path); /* while still holding the lock (see rt_lock_take) */
    close(l->fd);
  }
  free(l->path);
  free(l);
}
