/* fuzz_util.c — the harnesses' private folder and small helpers (fuzz.h). */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tests/fuzz/fuzz.h"

static char dir_path[512];
static char path_buf[1024];

/* Removes the folder and the files the harnesses wrote into it (flat). */
static void remove_dir(void) {
  DIR *d = opendir(dir_path);
  if (d) {
    struct dirent *ent;
    while ((ent = readdir(d)))
      if (strcmp(ent->d_name, ".") != 0 && strcmp(ent->d_name, "..") != 0) unlink(fuzz_path(ent->d_name));
    closedir(d);
  }
  rmdir(dir_path);
}

const char *fuzz_dir(void) {
  if (dir_path[0]) return dir_path;
  const char *tmp = getenv("TMPDIR");
  snprintf(dir_path, sizeof dir_path, "%s/dal-fuzz-XXXXXX", tmp && *tmp ? tmp : "/tmp");
  if (!mkdtemp(dir_path)) {
    dir_path[0] = 0;
    return NULL;
  }
  atexit(remove_dir);
  return dir_path;
}

const char *fuzz_path(const char *name) {
  snprintf(path_buf, sizeof path_buf, "%s/%s", fuzz_dir(), name);
  return path_buf;
}

const char *fuzz_write(const char *name, const void *data, size_t n) {
  if (!fuzz_dir()) return NULL;
  const char *path = fuzz_path(name);
  FILE *f = fopen(path, "wb");
  if (!f) return NULL;
  size_t put = n ? fwrite(data, 1, n, f) : 0;
  if (fclose(f) != 0 || put != n) return NULL;
  return path;
}

char *fuzz_strndup(const uint8_t *data, size_t n) {
  char *s = malloc(n + 1);
  if (!s) abort();
  memcpy(s, data, n);
  s[n] = 0;
  return s;
}

void fuzz_split(const uint8_t *data, size_t n, const char *sep, size_t seplen, const uint8_t **a, size_t *an,
                const uint8_t **b, size_t *bn) {
  *a = data;
  *an = n;
  *b = data + n;
  *bn = 0;
  for (size_t i = 0; i + seplen <= n; i++)
    if (memcmp(data + i, sep, seplen) == 0) {
      *an = i;
      *b = data + i + seplen;
      *bn = n - i - seplen;
      return;
    }
}

int fuzz_refused(const char *msg) {
  if (!msg || !*msg) {
    fputs("fuzz: a parser refused an input without a message\n", stderr);
    abort();
  }
  return FUZZ_REFUSED;
}
