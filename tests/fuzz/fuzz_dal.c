/* fuzz_dal.c — the .dal frontend: source text to verified IR.
 *
 * Input: the main file's text, then optionally a NUL byte and the text of
 * a second file, written as nn.dal beside it (what `import "nn.dal"`
 * reads: the models' seeds import it). The main file is loaded from the
 * harness's folder, so its imports resolve there; a source that could
 * reach outside it (a string starting with '/', or a "../" / "/.." path
 * part) is skipped. Every entry of the first config is traced and the
 * graph checked with ir_verify. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "frontend/frontend.h"
#include "tests/fuzz/fuzz.h"

#define DAL_MAX_INPUT 8192

/* Whether any string in the text could name a file outside the folder. */
static bool escapes(const uint8_t *s, size_t n) {
  for (size_t i = 0; i + 1 < n; i++) {
    if (s[i] == '"' && s[i + 1] == '/') return true;
    if (s[i] == '.' && s[i + 1] == '.' && ((i + 2 < n && s[i + 2] == '/') || (i > 0 && s[i - 1] == '/')))
      return true;
  }
  return false;
}

int fuzz_dal(const uint8_t *data, size_t n) {
  if (n > DAL_MAX_INPUT || escapes(data, n)) return FUZZ_SKIPPED;
  const uint8_t *main_text, *lib;
  size_t main_n, lib_n;
  fuzz_split(data, n, "", 1, &main_text, &main_n, &lib, &lib_n);
  if (!fuzz_write("nn.dal", lib, lib_n) || !fuzz_dir()) return FUZZ_SKIPPED;
  char *src = fuzz_strndup(main_text, main_n);
  char *name = strdup(fuzz_path("main.dal")), *err = NULL;
  FeProgram *p = fe_load_string(name, src, NULL, &err);
  int rc = FUZZ_ACCEPTED;
  if (!p) {
    rc = fuzz_refused(err);
  } else {
    for (int i = 0; i < fe_entry_count(p) && rc == FUZZ_ACCEPTED; i++) {
      IrGraph *g = fe_lower_entry(p, i, &err);
      if (!g) {
        rc = fuzz_refused(err);
        break;
      }
      char why[512];
      if (!ir_verify(g, why, sizeof why)) {
        /* the frontend promised a well-formed graph */
        fprintf(stderr, "fuzz_dal: entry %s: the traced graph fails ir_verify: %s\n", fe_entry_name(p, i), why);
        abort();
      }
      ir_graph_free(g);
    }
    fe_free(p);
  }
  free(err);
  free(name);
  free(src);
  return rc;
}
