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
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/data/bpe.h"
#include "runtime/data/data.h"
#include "runtime/exe/exe.h"
#include "runtime/io/npy.h"
#include "tools/cli.h"

static const char bpe_usage[] =
    "usage: dalc bpe train (FILE.txt... | --data SPEC [--examples N] [--seed S]) --vocab V -o TOK.json\n"
    "       dalc bpe encode --tokenizer TOK.json [--len L [--vocab V]] (TEXT... | --from FILE.txt) [-o IDS.npy]\n"
    "       dalc bpe decode --tokenizer TOK.json ID...\n";

/* The captions of examples 0..n-1 of a dataset opened for a stand-in
 * entry with one 16x16 image input. */
static int read_dataset(CliTexts *t, const char *spec, int64_t n, uint64_t seed) {
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
        rc = cli_texts_add(t, c) ? -2 : 0;
      }
    }
  }
  if (rc == -1) cli_error("%s", e.msg);
  rt_tensor_free(img);
  rt_data_free(d);
  return rc ? -1 : 0;
}

/* The command line of every mode; numbers 0 = not given. */
typedef struct {
  const char *mode, *out, *tok, *data, *from;
  uint64_t vocab, len, examples, seed;
  char **pos; /* the arguments that are not options: files, texts or ids */
  int npos;
} BpeArgs;

/* argv[1..argc) (argv[0] is the mode) into a; pos must hold argc entries.
 * A negative number is an argument (an id for decode), not an option. */
static int parse_bpe_args(int argc, char **argv, BpeArgs *a) {
  const RtExeOpt opts[] = {{"-o", .str = &a->out},
                           {"--tokenizer", .str = &a->tok},
                           {"--data", .str = &a->data},
                           {"--from", .str = &a->from},
                           {"--vocab", .num = &a->vocab, .lo = 2, .hi = 1u << 30},
                           {"--len", .num = &a->len, .lo = 1, .hi = 1u << 30},
                           {"--examples", .num = &a->examples, .lo = 1, .hi = 1ull << 40},
                           {"--seed", .num = &a->seed}};
  for (int i = 1; i < argc; i++) {
    RtErr e;
    int m = rt_exe_opts(argc, argv, &i, opts, (int)(sizeof opts / sizeof *opts), &e);
    if (m < 0) {
      cli_error("bpe %s: %s", a->mode, e.msg);
      return -1;
    }
    if (m > 0) continue;
    const char *arg = argv[i];
    if (arg[0] == '-' && arg[1] && !(arg[1] >= '0' && arg[1] <= '9')) {
      cli_error("bpe %s: unknown option '%s'", a->mode, arg);
      return -1;
    }
    a->pos[a->npos++] = argv[i];
  }
  return 0;
}

/* `bpe train`: a tokenizer learned from text files or a dataset's captions. */
static int bpe_train(const BpeArgs *a) {
  if (!a->vocab || !a->out || (!a->data && a->npos == 0) || (a->data && a->npos > 0)) {
    cli_error("bpe train needs --vocab V, -o TOK.json and either text files or --data SPEC");
    return -1;
  }
  CliTexts t = {0};
  RtBpe *b = NULL;
  RtErr e;
  int rc = 0;
  for (int i = 0; i < a->npos && rc == 0; i++) rc = cli_texts_read(&t, a->pos[i], false);
  if (rc == 0 && a->data) rc = read_dataset(&t, a->data, a->examples ? (int64_t)a->examples : 10000, a->seed);
  if (rc == 0 &&
      (!(b = rt_bpe_train((const char *const *)t.text, t.n, (int)a->vocab, &e)) || rt_bpe_save(b, a->out, &e))) {
    cli_error("%s", e.msg);
    rc = -1;
  }
  if (rc == 0)
    printf("%s: %d ids (the unknown id, bytes and merges) learned from %lld texts\n", a->out, rt_bpe_size(b),
           (long long)t.n);
  rt_bpe_free(b);
  cli_texts_free(&t);
  return rc;
}

/* The tokenizer of --tokenizer, for encode and decode; with --len, *vocab
 * is the model's text vocabulary (--vocab, else the tokenizer's own). */
static RtBpe *load_tokenizer(const BpeArgs *a, int64_t *vocab) {
  RtErr e;
  RtBpe *b = NULL;
  if (!a->tok) {
    cli_error("bpe %s needs --tokenizer TOK.json", a->mode);
  } else if (!(b = rt_bpe_load(a->tok, &e))) {
    cli_error("%s", e.msg);
  } else if (a->vocab && (!a->len || a->vocab < (uint64_t)rt_bpe_size(b))) {
    cli_error("bpe %s: --vocab goes with --len, and must be at least the tokenizer's %d ids", a->mode, rt_bpe_size(b));
    rt_bpe_free(b);
    b = NULL;
  }
  if (b) *vocab = a->vocab ? (int64_t)a->vocab : rt_bpe_vocab(b); /* the vocabulary it was made for */
  return b;
}

/* Encodes every text; with --len as the GPT takes them (cut at len, then
 * pads), into arr's rows when -o is given, else printed a line each. */
static int encode_texts(const RtBpe *b, const CliTexts *t, int64_t len, int64_t vocab, RtTensor *arr) {
  int64_t cut = 0;
  for (int64_t i = 0; i < t->n; i++) {
    int64_t n = len ? len : rt_bpe_encode(b, t->text[i], NULL, 0);
    int32_t *ids = arr ? rt_i32(arr) + i * len : malloc(sizeof *ids * (size_t)(n + 1));
    if (!ids) {
      cli_error("out of memory");
      return -1;
    }
    if (len)
      cut += rt_bpe_encode_padded(b, t->text[i], (int)vocab, ids, n) > 0;
    else
      rt_bpe_encode(b, t->text[i], ids, n);
    if (!arr) {
      for (int64_t k = 0; k < n; k++) printf("%s%d", k ? " " : "", ids[k]);
      putchar('\n');
      free(ids);
    }
  }
  if (cut)
    fprintf(stderr, "dalc: warning: %lld of %lld texts are longer than --len %lld tokens; cut\n", (long long)cut,
            (long long)t->n, (long long)len);
  return 0;
}

/* `bpe encode`: the ids of texts (arguments or lines of --from), printed or
 * (-o, with --len) written as an i32 [texts, len] .npy file. */
static int bpe_encode(const BpeArgs *a) {
  int64_t vocab = 0, len = (int64_t)a->len;
  RtBpe *b = load_tokenizer(a, &vocab);
  if (!b) return -1;
  CliTexts t = {0};
  RtTensor *arr = NULL;
  RtErr e;
  int rc = a->from ? cli_texts_read(&t, a->from, false) : 0;
  for (int i = 0; i < a->npos && rc == 0; i++) rc = cli_texts_add(&t, a->pos[i]);
  if (rc == 0 && a->out && !len) {
    cli_error("bpe encode -o needs --len (the rows of the array have one length)");
    rc = -1;
  }
  if (rc == 0 && a->out && !(arr = rt_tensor_new(RT_I32, 2, (int64_t[]){t.n, len}, &e))) {
    cli_error("%s", e.msg);
    rc = -1;
  }
  if (rc == 0) rc = encode_texts(b, &t, len, vocab, arr);
  if (rc == 0 && arr) {
    if (rt_npy_write(a->out, arr, &e)) {
      cli_error("%s", e.msg);
      rc = -1;
    } else {
      printf("%s: i32[%lld, %lld]\n", a->out, (long long)t.n, (long long)len);
    }
  }
  rt_tensor_free(arr);
  rt_bpe_free(b);
  cli_texts_free(&t);
  return rc;
}

/* `bpe decode`: the text of the ids given as arguments. */
static int bpe_decode(const BpeArgs *a) {
  int64_t vocab = 0;
  RtBpe *b = load_tokenizer(a, &vocab);
  if (!b) return -1;
  int32_t *ids = malloc(sizeof *ids * (size_t)(a->npos + 1));
  int rc = 0;
  if (!ids) {
    cli_error("out of memory");
    rc = -1;
  }
  for (int i = 0; i < a->npos && rc == 0; i++) {
    uint64_t id = 0;
    RtErr e;
    if (rt_exe_u64_in("an id", a->pos[i], 0, INT32_MAX, &id, &e)) {
      cli_error("bpe decode: %s", e.msg);
      rc = -1;
    }
    ids[i] = (int32_t)id;
  }
  if (rc == 0) {
    char *text = rt_bpe_decode(b, ids, a->npos);
    printf("%s\n", text);
    free(text);
  }
  free(ids);
  rt_bpe_free(b);
  return rc;
}

int cmd_bpe(int argc, char **argv) {
  static const struct {
    const char *mode;
    int (*run)(const BpeArgs *);
  } modes[] = {{"train", bpe_train}, {"encode", bpe_encode}, {"decode", bpe_decode}};
  if (cli_wants_help(argc, argv)) {
    fputs(bpe_usage, stdout);
    return 0;
  }
  int m = 0, n = (int)(sizeof modes / sizeof *modes);
  while (argc >= 1 && m < n && strcmp(argv[0], modes[m].mode)) m++;
  if (argc < 1 || m == n) {
    fputs(bpe_usage, stderr);
    return 1;
  }
  BpeArgs a = {.mode = argv[0], .pos = calloc((size_t)argc + 1, sizeof(char *))};
  int rc = a.pos ? parse_bpe_args(argc, argv, &a) : -1;
  if (rc == 0) rc = modes[m].run(&a);
  free(a.pos);
  return rc ? 1 : 0;
}
