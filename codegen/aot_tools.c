/* aot_tools.c — the AOT build's dealings with the system (aot_impl.h): a
 * temporary directory, where the runtime is, and running the C compiler. */
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "codegen/aot_impl.h"

extern char **environ;

char *cg_aot_tempdir(RtErr *e) {
  const char *base = getenv("TMPDIR");
  if (!base || !*base) base = "/tmp";
  size_t n = strlen(base) + 32;
  char *dir = malloc(n);
  if (!dir) {
    rt_err(e, "out of memory");
    return NULL;
  }
  snprintf(dir, n, "%s/dalc-aot-XXXXXX", base);
  if (!mkdtemp(dir)) {
    rt_err(e, "cannot create a temporary directory under %s: %s", base, strerror(errno));
    free(dir);
    return NULL;
  }
  return dir;
}

void cg_aot_remove_dir(const char *dir) {
  DIR *d = opendir(dir);
  if (d) {
    struct dirent *ent;
    while ((ent = readdir(d))) {
      if (!strcmp(ent->d_name, ".") || !strcmp(ent->d_name, "..")) continue;
      char path[PATH_MAX];
      snprintf(path, sizeof path, "%s/%s", dir, ent->d_name);
      unlink(path);
    }
    closedir(d);
  }
  rmdir(dir);
}

static int exists(const char *path) {
  struct stat st;
  return stat(path, &st) == 0;
}

int cg_aot_locate(const CgAotOptions *o, char *lib, size_t libsize, char *inc, size_t incsize, RtErr *e) {
  char self[PATH_MAX] = "";
  if (!o->runtime_lib || !o->include_dir) {
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    if (n <= 0) return rt_err(e, "cannot find the running program (/proc/self/exe): %s", strerror(errno));
    self[n] = 0;
    char *slash = strrchr(self, '/');
    if (slash) *slash = 0; /* self: the folder of the program, e.g. build/ */
  }
  if (o->runtime_lib) snprintf(lib, libsize, "%s", o->runtime_lib);
  else snprintf(lib, libsize, "%s/libruntime.a", self);
  if (o->include_dir) {
    snprintf(inc, incsize, "%s", o->include_dir);
  } else {
    char *slash = strrchr(self, '/');
    if (slash) *slash = 0; /* the repository: the program's folder's parent */
    snprintf(inc, incsize, "%s", slash ? self : ".");
  }
  if (!exists(lib))
    return rt_err(e, "the runtime library %s is missing: AOT executables link it (build it with make)", lib);
  char header[PATH_MAX + 32];
  snprintf(header, sizeof header, "%s/runtime/sched/plan_program.h", inc);
  if (!exists(header)) return rt_err(e, "the runtime's headers are missing: there is no %s", header);
  return 0;
}

int cg_aot_spawn(char *const *argv, RtErr *e) {
  pid_t pid;
  int err = posix_spawnp(&pid, argv[0], NULL, NULL, argv, environ);
  if (err) return rt_err(e, "cannot run %s: %s", argv[0], strerror(err));
  int status;
  while (waitpid(pid, &status, 0) < 0)
    if (errno != EINTR) return rt_err(e, "waiting for %s: %s", argv[0], strerror(errno));
  if (WIFEXITED(status) && WEXITSTATUS(status) == 0) return 0;
  char cmd[700] = "";
  size_t at = 0;
  for (int i = 0; argv[i] && at < sizeof cmd; i++)
    at += (size_t)snprintf(cmd + at, sizeof cmd - at, "%s%s", i ? " " : "", argv[i]);
  if (WIFEXITED(status)) return rt_err(e, "`%s` failed with exit status %d", cmd, WEXITSTATUS(status));
  return rt_err(e, "`%s` was killed by signal %d", cmd, WTERMSIG(status));
}
