/* cmd_bpe.c — `dalc bpe`: learn a BPE tokenizer for captions, and use it
 * (runtime/data/bpe.h).
 *
 *   dalc bpe train (FILE.txt... | --data SPEC [--examples N] [--seed S]) --vocab V -o TOK.json
 *   dalc bpe encode --tokenizer TOK.json [--len L [--vocab V]] (TEXT... | --from FILE.txt) [-o IDS.npy]
 *   dalc bpe decode --tokenizer TOK.json ID...
 *
 * Text files hold one caption per line. --data takes a captioned dataset
 * (shapes, fashion-mnist[:test], folder:PATH) and reads the captions of its
 * first N examples (default 10000). encode prints one line of ids per
 * text; with --len, as the GPT takes them: cut at L, padded with V +
 * position (V: --vocab, else the vocabulary the tokenizer was trained
 * for); with -o (which needs --len) it writes them as an i32
 * [texts, L] .npy file instead (one row per line of --from, a blank line
 * all pads), ready for `--data npy:text=IDS.npy`. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/data/bpe.h"
#include "runtime/data/data.h"
#include "runtime/io/npy.h"
#include "tools/cli.h"

static const char bpe_usage[] =
    "usage: dalc bpe train (FILE.txt... | --data SPEC [--examples N] [--seed S]) --vocab V -o TOK.json\n"
    "       dalc bpe encode --tokenizer TOK.json [--len L [--vocab V]] (TEXT... | --from FILE.txt) [-o IDS.npy]\n"
    "       dalc bpe decode --tokenizer TOK.json ID...\n";

typedef struct {
  char **text;
  int64_t n, cap;
} Texts;

static int add_text(Texts *t, const char *s) {
  if (t->n == t->cap) {
    t->cap = t->cap ? 2 * t->cap : 1024;
    char **more = realloc(t->text, sizeof *more * (size_t)t->cap);
    if (!more) return -1;
    t->text = more;
  }
  if (!(t->text[t->n] = strdup(s))) return -1;
  t->n++;
  return 0;
}

static void free_texts(Texts *t) {
  for (int64_t i = 0; i < t->n; i++) free(t->text[i]);
  free(t->text);
}

static int read_lines(Texts *t, const char *path) {
  FILE *f = fopen(path, "r");
  if (!f) {
    cli_error("%s: cannot open: %s", path, strerror(errno));
    return -1;
  }
  char line[4096];
  int rc = 0;
  while (rc == 0 && fgets(line, sizeof line, f)) rc = add_text(t, line);
  fclose(f);
  if (rc) cli_error("out of memory reading %s", path);
  return rc;
}

/* The captions of examples 0..n-1 of a dataset opened for a stand-in
 * entry with one 16x16 image input. */
static int read_dataset(Texts *t, const char *spec, int64_t n, uint64_t seed) {
  static const RtArgSpec x = {.name = "x", .dtype = RT_F32, .rank = 4, .dim = {64, 3, 16, 16}};
  static const RtEntrySpec entry = {.name = "captions", .ninput = 1, .input = &x};
  RtErr e;
  RtDataset *d = rt_data_open(spec, &entry, seed, &e);
  if (!d) {
    cli_error("%s", e.msg);
    return -1;
  }
  RtTensor *img = rt_tensor_new(RT_F32, 4, x.dim, &e);
  int rc = img ? 0 : -1;
  for (int64_t step = 0; rc == 0 && step * 64 < n; step++) {
    if (rt_data_fill(d, (uint64_t)step, &img, &e)) rc = -1;
    for (int64_t j = 0; rc == 0 && j < 64 && step * 64 + j < n; j++) {
      const char *c = rt_data_caption(d, j);
      if (!c) {
        cli_error("dataset %s has no captions", spec);
        rc = -2;
      } else {
        rc = add_text(t, c);
      }
    }
  }
  if (rc == -1) cli_error("%s", e.msg);
  rt_tensor_free(img);
  rt_data_free(d);
  return rc ? -1 : 0;
}

static int parse_int(const char *s, const char *flag, long long lo, long long hi, long long *out) {
  char *end;
  errno = 0;
  long long v = strtoll(s, &end, 10);
  if (errno || end == s || *end || v < lo || v > hi) {
    cli_error("%s expects an integer in [%lld, %lld], got '%s'", flag, lo, hi, s);
    return -1;
  }
  *out = v;
  return 0;
}

int cmd_bpe(int argc, char **argv) {
  if (argc < 1 || (strcmp(argv[0], "train") && strcmp(argv[0], "encode") && strcmp(argv[0], "decode"))) {
    fputs(bpe_usage, stderr);
    return 1;
  }
  const char *mode = argv[0], *out = NULL, *tok = NULL, *data = NULL, *from = NULL;
  long long vocab = -1, len = -1, examples = 10000, seed = 0;
  char **pos = calloc((size_t)argc + 1, sizeof *pos);
  int npos = 0, rc = 0;
  for (int i = 1; i < argc && rc == 0; i++) {
    const char *a = argv[i];
    bool has = i + 1 < argc;
    if (!strcmp(a, "--vocab") && has) rc = parse_int(argv[++i], a, 2, 1 << 30, &vocab);
    else if (!strcmp(a, "--len") && has) rc = parse_int(argv[++i], a, 1, 1 << 30, &len);
    else if (!strcmp(a, "--examples") && has) rc = parse_int(argv[++i], a, 1, 1ll << 40, &examples);
    else if (!strcmp(a, "--seed") && has) rc = parse_int(argv[++i], a, 0, 1ll << 62, &seed);
    else if (!strcmp(a, "-o") && has) out = argv[++i];
    else if (!strcmp(a, "--tokenizer") && has) tok = argv[++i];
    else if (!strcmp(a, "--data") && has) data = argv[++i];
    else if (!strcmp(a, "--from") && has) from = argv[++i];
    else if (a[0] == '-' && a[1] && !(a[1] >= '0' && a[1] <= '9')) {
      cli_error("bpe %s: unknown option or missing value '%s'", mode, a);
      rc = -1;
    } else pos[npos++] = argv[i];
  }
  RtErr e;
  RtBpe *b = NULL;
  Texts t = {0};
  if (rc) {
  } else if (!strcmp(mode, "train")) {
    if (vocab < 0 || !out || (!data && npos == 0) || (data && npos > 0)) {
      cli_error("bpe train needs --vocab V, -o TOK.json and either text files or --data SPEC");
      rc = -1;
    }
    for (int i = 0; i < npos && rc == 0; i++) rc = read_lines(&t, pos[i]);
    if (rc == 0 && data) rc = read_dataset(&t, data, examples, (uint64_t)seed);
    if (rc == 0 && !(b = rt_bpe_train((const char *const *)t.text, t.n, (int)vocab, &e))) {
      cli_error("%s", e.msg);
      rc = -1;
    }
    if (rc == 0 && rt_bpe_save(b, out, &e)) {
      cli_error("%s", e.msg);
      rc = -1;
    }
    if (rc == 0)
      printf("%s: %d ids (the unknown id, bytes and merges) learned from %lld texts\n", out, rt_bpe_size(b),
             (long long)t.n);
  } else {
    if (!tok) {
      cli_error("bpe %s needs --tokenizer TOK.json", mode);
      rc = -1;
    } else if (!(b = rt_bpe_load(tok, &e))) {
      cli_error("%s", e.msg);
      rc = -1;
    } else if ((vocab >= 0 && len < 0) || (vocab >= 0 && vocab < rt_bpe_size(b))) {
      cli_error("bpe %s: --vocab goes with --len, and must be at least the tokenizer's %d ids", mode, rt_bpe_size(b));
      rc = -1;
    } else if (len >= 0 && vocab < 0) {
      vocab = rt_bpe_vocab(b); /* the vocabulary it was made for */
    }
  }
  if (rc == 0 && !strcmp(mode, "encode")) {
    if (from) rc = read_lines(&t, from);
    for (int i = 0; i < npos && rc == 0; i++) rc = add_text(&t, pos[i]);
    if (rc == 0 && out && len < 0) {
      cli_error("bpe encode -o needs --len (the rows of the array have one length)");
      rc = -1;
    }
    RtTensor *arr = NULL;
    if (rc == 0 && out && !(arr = rt_tensor_new(RT_I32, 2, (int64_t[]){t.n, len}, &e))) {
      cli_error("%s", e.msg);
      rc = -1;
    }
    int64_t cut = 0;
    for (int64_t i = 0; i < t.n && rc == 0; i++) {
      int64_t n = len >= 0 ? len : rt_bpe_encode(b, t.text[i], NULL, 0), over = 0;
      int32_t *ids = arr ? rt_i32(arr) + i * len : malloc(sizeof *ids * (size_t)(n + 1));
      if (len >= 0) over = rt_bpe_encode_padded(b, t.text[i], (int)vocab, ids, n);
      else rt_bpe_encode(b, t.text[i], ids, n);
      cut += over > 0;
      if (!arr) {
        for (int64_t k = 0; k < n; k++) printf("%s%d", k ? " " : "", ids[k]);
        putchar('\n');
        free(ids);
      }
    }
    if (cut) fprintf(stderr, "dalc: warning: %lld of %lld texts are longer than --len %lld tokens; cut\n",
                     (long long)cut, (long long)t.n, len);
    if (rc == 0 && arr) {
      if (rt_npy_write(out, arr, &e)) {
        cli_error("%s", e.msg);
        rc = -1;
      } else {
        printf("%s: i32[%lld, %lld]\n", out, (long long)t.n, len);
      }
    }
    rt_tensor_free(arr);
  } else if (rc == 0 && !strcmp(mode, "decode")) {
    int32_t *ids = malloc(sizeof *ids * (size_t)(npos + 1));
    long long v = 0;
    for (int i = 0; i < npos && rc == 0; i++) {
      rc = parse_int(pos[i], "an id", -(1ll << 31), (1ll << 31) - 1, &v);
      ids[i] = (int32_t)v;
    }
    if (rc == 0) {
      char *text = rt_bpe_decode(b, ids, npos);
      printf("%s\n", text);
      free(text);
    }
    free(ids);
  }
  rt_bpe_free(b);
  free_texts(&t);
  free(pos);
  return rc ? 1 : 0;
}
