/* test_frontend.c — the .dal frontend: parsing (every construct and the
 * newline rules), diagnostics for every class of user error, imports, and
 * the graphs that tracing produces. */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "frontend/diag.h"
#include "frontend/frontend.h"
#include "frontend/parse.h"
#include "tests/util.h"

/* ---- helpers ---- */

/* Parses src as "t.dal" and returns the AST dump (malloc'd), or the
 * diagnostic prefixed with "ERROR " if it does not parse. */
static char *parse_dump(const char *src) {
  FeArena a;
  fe_arena_init(&a);
  static int owner;
  fe_diag_register("t.dal", src, &owner);
  char *err = NULL;
  AstFile *f = parse_source(&a, "t.dal", src, &err);
  char *out;
  if (f) {
    out = ast_dump(f);
  } else {
    out = malloc(strlen(err) + 7);
    sprintf(out, "ERROR %s", err);
    free(err);
  }
  fe_diag_unregister(&owner);
  fe_arena_free(&a);
  return out;
}

static void expect_parse(const char *src, const char *dump) {
  char *got = parse_dump(src);
  ck_assert_msg(strcmp(got, dump) == 0, "source:\n%s\nexpected:\n%s\ngot:\n%s", src, dump, got);
  free(got);
}

/* The one-line dump of a single `let x = EXPR`. */
static void expect_expr(const char *expr, const char *dump) {
  char src[512], want[512];
  snprintf(src, sizeof src, "let x = %s\n", expr);
  snprintf(want, sizeof want, "(let x %s)\n", dump);
  expect_parse(src, want);
}

/* Checks a diagnostic: it starts with 'head' ("t.dal:3:5: error: "),
 * contains 'fragment', and (if caret > 0) its third line has the caret in
 * column 'caret' of the source line shown on the second. */
static void check_diag(const char *err, const char *head, const char *fragment, int caret) {
  ck_assert_msg(err != NULL, "expected an error");
  ck_assert_msg(strncmp(err, head, strlen(head)) == 0, "expected the diagnostic to start with\n%s\ngot:\n%s", head,
                err);
  ck_assert_msg(strstr(err, fragment) != NULL, "expected '%s' in:\n%s", fragment, err);
  if (caret <= 0) return;
  const char *l2 = strchr(err, '\n');
  ck_assert_msg(l2 && l2[1], "no source line in:\n%s", err);
  const char *l3 = strchr(l2 + 1, '\n');
  ck_assert_msg(l3 && l3[1], "no caret line in:\n%s", err);
  l3++;
  int col = 0;
  while (l3[col] == ' ' || l3[col] == '\t') col++;
  ck_assert_msg(l3[col] == '^', "no caret in:\n%s", err);
  ck_assert_msg(col - 4 + 1 == caret, "caret at column %d, expected %d, in:\n%s", col - 4 + 1, caret, err);
}

static FeProgram *load_ok_opt(const char *src, const FeOptions *opt) {
  char *err = NULL;
  FeProgram *p = fe_load_string("t.dal", src, opt, &err);
  ck_assert_msg(p != NULL, "load failed:\n%s", err ? err : "(no message)");
  ck_assert_msg(err == NULL, "error set on success");
  return p;
}

static FeProgram *load_ok(const char *src) { return load_ok_opt(src, NULL); }

static IrGraph *lower_ok(FeProgram *p, const char *entry) {
  int i = fe_entry_find(p, entry);
  ck_assert_msg(i >= 0, "no entry %s", entry);
  char *err = NULL;
  IrGraph *g = fe_lower_entry(p, i, &err);
  ck_assert_msg(g != NULL, "lowering %s failed:\n%s", entry, err ? err : "(no message)");
  char why[512];
  ck_assert_msg(ir_verify(g, why, sizeof why), "graph of %s does not verify: %s", entry, why);
  return g;
}

/* The error from loading src and, if 'entry' is given, lowering it. */
static char *error_opt(const char *name, const char *src, const char *entry, const FeOptions *opt) {
  char *err = NULL;
  FeProgram *p = fe_load_string(name, src, opt, &err);
  if (p && entry) {
    int i = fe_entry_find(p, entry);
    ck_assert_msg(i >= 0, "no entry %s", entry);
    IrGraph *g = fe_lower_entry(p, i, &err);
    ck_assert_msg(g == NULL, "lowering %s succeeded, expected an error", entry);
  } else {
    ck_assert_msg(p == NULL, "loading succeeded, expected an error");
  }
  fe_free(p);
  ck_assert_msg(err != NULL, "no diagnostic");
  return err;
}

static char *error_of(const char *src, const char *entry) { return error_opt("t.dal", src, entry, NULL); }

static void expect_error(const char *src, const char *entry, const char *head, const char *fragment, int caret) {
  char *err = error_of(src, entry);
  check_diag(err, head, fragment, caret);
  free(err);
}

static int count_op(const IrGraph *g, IrOp op) {
  int n = 0;
  for (int i = 0; i < g->n; i++) n += g->node[i].op == op;
  return n;
}

static const IrNode *find_op(const IrGraph *g, IrOp op) {
  for (int i = 0; i < g->n; i++)
    if (g->node[i].op == op) return &g->node[i];
  ck_abort_msg("no %s node", ir_op_name(op));
  return NULL;
}

static const IrNode *param_named(const IrGraph *g, const char *name) {
  for (int i = 0; i < g->nparam; i++)
    if (strcmp(g->node[g->param[i]].name, name) == 0) return &g->node[g->param[i]];
  ck_abort_msg("no param %s", name);
  return NULL;
}

static const IrNode *output(const IrGraph *g) {
  ck_assert_int_eq(g->noutput, 1);
  return &g->node[g->output[0]];
}

/* Asserts shape s is exactly the 'rank' dimensions given. */
static void expect_shape(const IrShape *s, int rank, ...) {
  char buf[160];
  ck_assert_msg(s->rank == rank, "rank %d, expected %d (shape %s)", s->rank, rank, ir_shape_str(s, buf, sizeof buf));
  va_list ap;
  va_start(ap, rank);
  for (int i = 0; i < rank; i++) {
    long long d = va_arg(ap, long long);
    ck_assert_msg(s->d[i] == d, "dim %d is %lld, expected %lld (shape %s)", i, (long long)s->d[i], d,
                  ir_shape_str(s, buf, sizeof buf));
  }
  va_end(ap);
}

/* The text of constant 'name' of p (malloc'd). */
static char *constant(const FeProgram *p, const char *name) {
  for (int i = 0; i < fe_constant_count(p); i++)
    if (strcmp(fe_constant_name(p, i), name) == 0) return fe_constant_value(p, i);
  ck_abort_msg("no constant %s", name);
  return NULL;
}

static void expect_constant(const FeProgram *p, const char *name, const char *text) {
  char *v = constant(p, name);
  ck_assert_msg(strcmp(v, text) == 0, "constant %s is %s, expected %s", name, v, text);
  free(v);
}

/* ---- parser ---- */

START_TEST(parse_items) {
  expect_parse("import \"nn.dal\"\n"
               "config tiny { d = 8; h = 32; batch = 4 }\n"
               "config big {\n  d = 64\n  h = 2 * d\n\n  batch = 16;\n}\n"
               "let eps = 1e-5\n"
               "def f(x, n: int, s: float = 0.5, t: f32[B, d] = None) { return x }\n"
               "@infer\ndef g(x: f32[B, d]) -> f32[B, 1] { return x }\n"
               "@train\ndef h(x: i32[B], y: f32) -> f32 { return y }\n",
               "(import \"nn.dal\")\n"
               "(config tiny (d 8) (h 32) (batch 4))\n"
               "(config big (d 64) (h (* 2 d)) (batch 16))\n"
               "(let eps 1e-05)\n"
               "(def f (x n:int s:float=0.5 t:f32[B,d]=None) (block (return x)))\n"
               "(def @infer g (x:f32[B,d]) -> f32[B,1] (block (return x)))\n"
               "(def @train h (x:i32[B] y:f32) -> f32 (block (return y)))\n");
}
END_TEST

START_TEST(parse_statements) {
  expect_parse("def f(x) {\n"
               "    y = x\n"
               "    y += 1; y -= 2; y *= 3\n"
               "    param w: [4, n] = kaiming_uniform(n)\n"
               "    for i in 0..n { y = y + i }\n"
               "    for c in [1, 2] { y = y * c }\n"
               "    if a { b = 1 } else if c { b = 2 } else { b = 3 }\n"
               "    if d { e = 1 }\n"
               "    with enc.stages[s].res[r + 1] { h = g(h) }\n"
               "    g(y)\n"
               "    return y\n"
               "}\n",
               "(def f (x) (block (= y x) (+= y 1) (-= y 2) (*= y 3) (param w [4 n] (call kaiming_uniform n)) "
               "(for i 0 n (block (= y (+ y i)))) (for c [1 2] (block (= y (* y c)))) "
               "(if a (block (= b 1)) (block (if c (block (= b 2)) (block (= b 3))))) (if d (block (= e 1))) "
               "(with enc.stages[s].res[(+ r 1)] (block (= h (call g h)))) (expr (call g y)) (return y)))\n");
}
END_TEST

START_TEST(parse_precedence) {
  expect_expr("1 + 2 * 3 - 4", "(- (+ 1 (* 2 3)) 4)");
  expect_expr("-x ** 2", "(- (** x 2))");
  expect_expr("2 ** 3 ** 2", "(** 2 (** 3 2))");
  expect_expr("2 ** -1", "(** 2 (- 1))");
  expect_expr("a or b and not c == d", "(or a (and b (not (== c d))))");
  expect_expr("a @ b + c // d % e / f", "(+ (@ a b) (/ (% (// c d) e) f))");
}
END_TEST

START_TEST(parse_comparisons_do_not_chain) {
  char *got = parse_dump("let x = a < b < c\n");
  ck_assert_msg(strncmp(got, "ERROR t.dal:1:15: error: syntax error: unexpected '<'", 53) == 0, "%s", got);
  free(got);
  expect_expr("(a < b) == (c >= d)", "(== (< a b) (>= c d))");
  expect_expr("a <= b", "(<= a b)");
  expect_expr("a > b", "(> a b)");
}
END_TEST

START_TEST(parse_postfix_and_literals) {
  expect_expr("f(x, 1, k=2, flag=true)(y)", "(call (call f x 1 k=2 flag=true) y)");
  expect_expr("x[:, 1:, :-1, 2, a:b]", "(index x : 1: :(- 1) 2 a:b)");
  expect_expr("concat([a, b], 1)[:, 1:]", "(index (call concat [a b] 1) : 1:)");
  expect_expr("[1, 2.5, 3., 1e-5, 2E3, \"s\", false, []]", "[1 2.5 3.0 1e-05 2000.0 \"s\" false []]");
  expect_expr("f()", "(call f)");
  expect_expr("+x", "(+ x)");
}
END_TEST

START_TEST(parse_newline_rules) {
  /* Inside ( ) and [ ] newlines are spaces; after an operator the
   * expression continues; comments and blank lines are ignored. */
  expect_parse("let x = f(1,\n    2,   # two\n)\nlet y = [\n  1,\n  2,\n]\n\n# comment\nlet z = 1 +\n  2\n",
               "(let x (call f 1 2))\n(let y [1 2])\n(let z (+ 1 2))\n");
  /* A newline after a name, literal, ')' ']' or '}' ends the statement. */
  expect_parse("def f() {\n  a = b\n  (c)\n}\n", "(def f () (block (= a b) (expr c)))\n");
  /* '@' after an operand is matmul even without spaces; at the start of
   * an item it is a decorator. */
  expect_parse("def f(a) {\n  x = a @b\n  y = a@b; return y\n}\n@train\ndef g() -> f32 { return 1 }\n",
               "(def f (a) (block (= x (@ a b)) (= y (@ a b)) (return y)))\n(def @train g () -> f32 (block (return 1)))\n");
  /* 0..n is a range, not the float 0. */
  expect_parse("def f() { for i in 0..n { } }\n", "(def f () (block (for i 0 n (block))))\n");
  /* Statements separated by ';' on one line; empty statements are fine. */
  expect_parse("def f() { a = 1;; b = 2; }\n", "(def f () (block (= a 1) (= b 2)))\n");
  expect_parse("", "");
  expect_parse("\n\n# only a comment", "");
}
END_TEST

START_TEST(parse_errors) {
  struct {
    const char *src, *head, *fragment;
    int caret;
  } cases[] = {
      {"def f(x) {\n  y = x +\n}\n", "ERROR t.dal:3:1: error: ", "syntax error: unexpected '}'", 1},
      {"def f(x)\n{\n}\n", "ERROR t.dal:1:9: error: ", "unexpected end of line, expected '->' or '{' (a '{' must be on the same line", 9},
      {"def f(x) {\n  y = (x\n  return y\n}\n", "ERROR t.dal:3:3: error: ",
       "unexpected 'return' (the '(' at line 2, column 7 is still open)", 3},
      {"def f() {\n  if a { }\n  else { }\n}\n", "ERROR t.dal:3:3: error: ",
       "unexpected 'else' ('else' must be on the same line as the '}' before it)", 3},
      {"config a { x = 1 y = 2 }\n", "ERROR t.dal:1:18: error: ", "unexpected name 'y'", 18},
      {"let x = \"abc\n", "ERROR t.dal:1:9: error: ", "unterminated string", 9},
      {"let x = \"a\\n\"\n", "ERROR t.dal:1:9: error: ", "backslash escapes are not supported", 9},
      {"let x = 1 $ 2\n", "ERROR t.dal:1:11: error: ", "unexpected character '$'", 11},
      {"let x = 99999999999999999999\n", "ERROR t.dal:1:9: error: ", "integer literal 99999999999999999999 is too large", 9},
      {"@foo\ndef f() {}\n", "ERROR t.dal:1:1: error: ", "unknown decorator '@foo' (expected @train or @infer)", 1},
      {"def f(x: tensor) {}\n", "ERROR t.dal:1:10: error: ", "unknown type 'tensor' (expected int, float, f32 or i32)", 10},
      {"def f(x: int[3]) {}\n", "ERROR t.dal:1:10: error: ", "type 'int' takes no dimensions", 10},
      {"let = 3\n", "ERROR t.dal:1:5: error: ", "unexpected '=', expected name", 5},
      {"let x = 1\n\tlet y = )\n", "ERROR t.dal:2:10: error: ", "unexpected ')'", 10},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    char *got = parse_dump(cases[i].src);
    check_diag(got, cases[i].head, cases[i].fragment, cases[i].caret);
    free(got);
  }
  /* A tab in the source line is copied into the caret line. */
  char *got = parse_dump("let x = 1\n\tlet y = )\n");
  ck_assert_msg(strstr(got, "\n    \tlet y = )\n    \t        ^\n") != NULL, "%s", got);
  free(got);
}
END_TEST

/* The first example of docs/language.md, NUL-terminated in a malloc'd
 * buffer that *doc must free. */
static char *spec_example(char **doc) {
  *doc = tu_read_file("docs/language.md", NULL);
  ck_assert_msg(*doc != NULL, "docs/language.md not found (run from the repository root)");
  char *start = strstr(*doc, "```\n# mlp.dal");
  ck_assert_ptr_nonnull(start);
  start += 4;
  char *end = strstr(start, "```");
  ck_assert_ptr_nonnull(end);
  *end = 0;
  return start;
}

START_TEST(parse_spec_example) {
  /* The first example of docs/language.md parses. */
  char *doc;
  char *got = parse_dump(spec_example(&doc));
  ck_assert_msg(strncmp(got, "ERROR", 5) != 0, "%s", got);
  ck_assert_msg(strstr(got, "(def @train loss (x:f32[B,d_in] y:f32[B,1]) -> f32") != NULL, "%s", got);
  free(got);
  free(doc);
}
END_TEST

/* ---- errors: every class gives file:line:col, the line and a caret ---- */

START_TEST(error_names) {
  expect_error("config c { n = 2 }\n@infer\ndef f(x: f32[n]) -> f32[n] {\n    return x + foo\n}\n", "f",
               "t.dal:4:16: error: ", "unknown name 'foo'", 16);
  expect_error("def linear(x) { return x }\n@infer\ndef f(x: f32[2]) {\n    return lineer(x)\n}\n", "f",
               "t.dal:4:12: error: ", "unknown function 'lineer' (did you mean 'linear'?)", 12);
  expect_error("@infer\ndef f(x: f32[2]) {\n    return frob(x)\n}\n", "f", "t.dal:3:12: error: ",
               "unknown function 'frob'", 12);
  expect_error("@infer\ndef f(x: f32[2]) {\n    y = 3\n    return y(x)\n}\n", "f", "t.dal:4:12: error: ",
               "'y' is not a function (it is int 3)", 12);
  /* A name from another config, a let used too early, B without a batch. */
  char *err = error_opt("t.dal", "config a { x = 1 }\nconfig b { y = 2 }\nlet z = x\n", NULL,
                        &(FeOptions){.config = "b"});
  check_diag(err, "t.dal:3:9: error: ", "'x' is not defined by the selected config (config 'a' defines it)", 9);
  free(err);
  expect_error("config c { a = k }\nlet k = 1\n", NULL, "t.dal:1:16: error: ", "global 'k' is used before its value is known", 16);
  expect_error("@infer\ndef f(x: f32[B]) { return x }\n", "f", "t.dal:2:14: error: ",
               "'B' is unknown: the selected config has no `batch` key", 14);
  expect_error("let B = 3\n", NULL, "t.dal:1:5: error: ", "'B' is reserved for the batch size", 5);
}
END_TEST

START_TEST(error_arguments) {
  const char *pre = "def g(a, b) { return a }\n@infer\ndef f(x: f32[2]) {\n";
  struct {
    const char *body, *head, *fragment;
    int caret;
  } cases[] = {
      {"    return softmax(x, 1, 2)\n}\n", "t.dal:4:12: error: ", "softmax takes at most 2 arguments, got 3", 12},
      {"    return softmax(x, dim=1)\n}\n", "t.dal:4:23: error: ", "softmax has no parameter named 'dim'", 23},
      {"    return g(x)\n}\n", "t.dal:4:12: error: ", "g is missing argument 'b'", 12},
      {"    return g(x, x, x)\n}\n", "t.dal:4:12: error: ", "g takes 2 arguments, got 3", 12},
      {"    return g(x, a=x)\n}\n", "t.dal:4:17: error: ", "g got two values for parameter 'a'", 17},
      {"    return g(a=x, x)\n}\n", "t.dal:4:19: error: ", "a positional argument cannot follow keyword arguments", 19},
      {"    return exp()\n}\n", "t.dal:4:12: error: ", "exp is missing argument 'x'", 12},
      {"    return max(x, axis=0, k=1)\n}\n", "t.dal:4:27: error: ", "max has no parameter named 'k'", 27},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    char src[512];
    snprintf(src, sizeof src, "%s%s", pre, cases[i].body);
    expect_error(src, "f", cases[i].head, cases[i].fragment, cases[i].caret);
  }
}
END_TEST

START_TEST(error_types) {
  const char *pre = "config c { n = 2; batch = 2 }\n@infer\ndef f(x: f32[2], t: i32[3]) {\n";
  struct {
    const char *body, *head, *fragment;
    int caret;
  } cases[] = {
      {"    return softmax(x, axis=x)\n}\n", "t.dal:4:23: error: ",
       "argument 'axis' of softmax must be an integer, got tensor f32[2]", 23},
      {"    return zeros([0, 2])\n}\n", "t.dal:4:18: error: ",
       "argument 'shape' of zeros: dimension 0 must be positive, got 0", 18},
      {"    return zeros([2.5])\n}\n", "t.dal:4:18: error: ",
       "argument 'shape' of zeros: dimension 0 must be an integer, got float 2.5", 18},
      {"    return reshape(x, [1, x])\n}\n", "t.dal:4:23: error: ", "dimension 1 must be an integer, got tensor f32[2]", 23},
      {"    return t + 0.5\n}\n", "t.dal:4:14: error: ", "the right operand is 0.5, which does not fit an i32 tensor", 14},
      {"    return t / 2\n}\n", "t.dal:4:14: error: ", "'/' on an i32 tensor: use '//'", 14},
      {"    if x { return x }\n    return x\n}\n", "t.dal:4:8: error: ",
       "an `if` condition must be known at compile time, got a tensor f32[2]", 8},
      {"    return x and true\n}\n", "t.dal:4:12: error: ", "must be known at compile time", 12},
      {"    return [1] + 2\n}\n", "t.dal:4:16: error: ", "'+' does not apply to list [1] and int 2", 16},
      {"    return 1 // 0\n}\n", "t.dal:4:14: error: ", "division by zero", 14},
      {"    return 9223372036854775807 + 1\n}\n", "t.dal:4:32: error: ", "integer overflow in '+'", 32},
      {"    return [1, 2][2]\n}\n", "t.dal:4:19: error: ", "list index 2 is out of range for a list of 2", 19},
      {"    return x[2]\n}\n", "t.dal:4:14: error: ", "index 2 is out of range for axis 0 of size 2", 14},
      {"    return x[1:1]\n}\n", "t.dal:4:14: error: ", "the slice of axis 0 (size 2) is empty", 14},
      {"    return x[0, 0]\n}\n", "t.dal:4:13: error: ", "too many indices (2) for a tensor of rank 1", 13},
      {"    return x[x]\n}\n", "t.dal:4:14: error: ", "a tensor cannot be an index", 14},
      {"    return cast(x, 3)\n}\n", "t.dal:4:20: error: ", "argument 'dtype' of cast must be f32 or i32, got int 3", 20},
      {"    return sum(x, axis=[0, 0])\n}\n", "t.dal:4:19: error: ", "names axis 0 twice", 19},
      {"    return log(0)\n}\n", "t.dal:4:16: error: ", "log of 0: the argument must be positive", 16},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    char src[512];
    snprintf(src, sizeof src, "%s%s", pre, cases[i].body);
    expect_error(src, "f", cases[i].head, cases[i].fragment, cases[i].caret);
  }
  /* Shapes in types: a float dimension, a non-positive one. */
  expect_error("config c { n = 2 }\n@infer\ndef f(x: f32[n / 2]) { return x }\n", "f", "t.dal:3:16: error: ",
               "dimension 0 of the type must be an integer, got float 1", 16);
  expect_error("config c { n = 2 }\n@infer\ndef f(x: f32[3, n - 2]) { return x }\n", "f", "t.dal:3:19: error: ",
               "dimension 1 of the type must be positive, got 0", 19);
  /* A typed parameter of an ordinary function. */
  expect_error("def g(n: int) { return n }\n@infer\ndef f(x: f32[2]) {\n    return x * g(2.5)\n}\n", "f",
               "t.dal:4:18: error: ", "argument 'n' of g must be int, got float 2.5", 18);
  expect_error("def g(v: f32[3]) { return v }\n@infer\ndef f(x: f32[2]) {\n    return g(x)\n}\n", "f",
               "t.dal:4:14: error: ", "argument 'v' of g must be f32[3], got tensor f32[2]", 14);
  /* Tensors do not exist outside entries. */
  expect_error("let z = zeros([2])\n", NULL, "t.dal:1:9: error: ",
               "zeros makes a tensor, but tensors exist only while tracing an entry function", 9);
}
END_TEST

START_TEST(error_function_signatures) {
  /* A wrong argument is the caller's error: no "in call to" line for the
   * callee. A wrong default is the function's. */
  char *err = error_of("def g(n: int) { return n }\n@infer\ndef f(x: f32[2]) {\n    return x * g(2.5)\n}\n", "f");
  ck_assert_msg(strstr(err, "in call to") == NULL, "%s", err);
  free(err);
  err = error_of("def g(n: int = 0.5) { return n }\ndef h() { return g() }\n@infer\ndef f(x: f32[2]) {\n    return x * h()\n}\n",
                 "f");
  check_diag(err, "t.dal:1:16: error: ", "argument 'n' of g must be int, got float 0.5", 16);
  ck_assert_msg(strstr(err, "^\n  in call to g at t.dal:2:18\n  in call to h at t.dal:5:16\n") != NULL, "%s", err);
  free(err);
  /* Dimensions of a parameter's type may name other parameters. */
  FeProgram *p = load_ok("def g(x: f32[n, 2], n) { return x }\n@infer\ndef f(x: f32[3, 2]) -> f32[3, 2] { return g(x, 3) }\n");
  IrGraph *g = lower_ok(p, "f");
  ir_graph_free(g);
  fe_free(p);
  expect_error("def g(a, b, a) { return a }\n", NULL, "t.dal:1:13: error: ", "parameter 'a' of 'g' is declared twice", 13);
  /* max and min of a tensor also take keywords only. */
  p = load_ok("@infer\ndef f(x: f32[2, 3]) -> f32[2] { return max(x=x, axis=1) + min(keepdim=false, x=x, axis=-1) }\n");
  g = lower_ok(p, "f");
  ck_assert_int_eq(count_op(g, OP_REDUCE_MAX), 2);
  ir_graph_free(g);
  fe_free(p);
}
END_TEST

START_TEST(error_limits) {
  /* Nesting that would exhaust the C stack is refused with a message. */
  size_t n = 3000;
  char *src = malloc(4 * n + 64);
  strcpy(src, "let x = 1");
  for (size_t i = 0; i < n; i++) strcat(src, " + 1");
  strcat(src, "\n");
  char *err = error_of(src, NULL);
  ck_assert_msg(strncmp(err, "t.dal:1:4007: error: expression nested too deeply (more than 1000 levels)", 73) == 0, "%.200s",
                err);
  free(err);
  strcpy(src, "let x = ");
  for (size_t i = 0; i < n; i++) strcat(src, "((");
  strcat(src, "1");
  for (size_t i = 0; i < n; i++) strcat(src, "))");
  err = error_of(src, NULL);
  ck_assert_msg(strstr(err, "error: the program nests too deeply here") != NULL, "%.200s", err);
  free(err);
  free(src);
  expect_error("@infer\ndef f(x: f32[2]) {\n  l = []\n  for i in 0..5000 { l = [l] }\n  if l == l { return x }\n  return x\n}\n",
               "f", "t.dal:5:8: error: ", "'==' on lists nested more than 1000 deep", 8);
  /* Long loops and huge graphs stop with a message too. */
  expect_error("def f() {\n  k = 0\n  for i in 0..10000 { for j in 0..10000 { k += 1 } }\n  return k\n}\nlet a = f()\n",
               NULL, "t.dal:", "evaluation takes more than 5000000 steps", 0);
  /* A range longer than the steps left is refused before it starts. */
  expect_error("def f() {\n  k = 0\n  for i in 0..100000000 { k += 1 }\n  return k\n}\nlet a = f()\n", NULL,
               "t.dal:3:3: error: ", "the loop runs 100000000 times, more than the 5000000 steps", 3);
}
END_TEST

START_TEST(error_shapes_from_builder) {
  expect_error("@infer\ndef f(x: f32[2, 3], y: f32[4, 5]) {\n    return matmul(x, y)\n}\n", "f", "t.dal:3:12: error: ",
               "matmul: ", 12);
  expect_error("@infer\ndef f(x: f32[2, 3], y: f32[4, 5]) {\n    return x + y\n}\n", "f", "t.dal:3:14: error: ",
               "add: cannot broadcast [2, 3] with [4, 5]", 14);
  expect_error("@infer\ndef f(x: f32[2, 3]) {\n    return reshape(x, [4, -1])\n}\n", "f", "t.dal:3:12: error: ",
               "cannot infer the -1 dimension: f32[2, 3] has 6 elements, not a multiple of 4", 12);
  expect_error("@infer\ndef f(x: f32[2, 3]) {\n    return reshape(x, [5])\n}\n", "f", "t.dal:3:12: error: ",
               "reshape: cannot reshape [2, 3] (6 elements) to [5] (5 elements)", 12);
  expect_error("@infer\ndef f(x: i32[2, 3]) {\n    return exp(x)\n}\n", "f", "t.dal:3:12: error: ", "exp: ", 12);
}
END_TEST

START_TEST(error_call_chain) {
  char *err = error_of("def inner(x) {\n    return matmul(x, x)\n}\n"
                       "def outer(x) {\n    return inner(x) + 1\n}\n"
                       "@infer\ndef f(x: f32[2, 3]) {\n    return outer(x)\n}\n",
                       "f");
  check_diag(err, "t.dal:2:12: error: matmul: ", "matmul", 12);
  ck_assert_msg(strstr(err, "^\n  in call to inner at t.dal:5:12\n  in call to outer at t.dal:9:12\n") != NULL, "%s", err);
  free(err);
  /* A runaway recursion stops at the depth limit with a shortened chain. */
  err = error_of("def r(n) {\n    return r(n + 1)\n}\n@infer\ndef f(x: f32[2]) {\n    return r(0)\n}\n", "f");
  check_diag(err, "t.dal:2:12: error: ", "more than 200 nested calls: does 'r' call itself without end?", 12);
  ck_assert_msg(strstr(err, "  in call to r at t.dal:2:12\n") != NULL, "%s", err);
  ck_assert_msg(strstr(err, "  ... and 188 more calls\n") != NULL, "%s", err);
  free(err);
  /* A parameter declared twice under one name with another shape. */
  err = error_of("def lin(x, i, o) {\n    param weight: [o, i] = zeros()\n    return matmul(x, weight, tb=true)\n}\n"
                 "@infer\ndef f(x: f32[2, 8]) {\n    h = with head { lin(x, 8, 4) }\n    h = with head { lin(h, 4, 4) }\n"
                 "    return h\n}\n",
                 "f");
  check_diag(err, "t.dal:2:5: error: ", "param \"head.weight\": shape [4, 4] differs from its earlier use as [4, 8]", 5);
  ck_assert_msg(strstr(err, "  in call to lin at t.dal:8:21\n") != NULL, "%s", err);
  free(err);
}
END_TEST

START_TEST(error_entries) {
  expect_error("config c { batch = 2 }\n@infer\ndef f(x: f32[B, 4]) -> f32[B, 3] {\n    y = x * 2\n    return y\n}\n",
               "f", "t.dal:5:5: error: ", "entry 'f' returns f32[2, 4] but is declared to return f32[2, 3]", 5);
  expect_error("@infer\ndef f(x: f32[2]) -> i32[2] {\n    return x\n}\n", "f", "t.dal:3:5: error: ",
               "entry 'f' returns f32[2] but is declared to return i32[2]", 5);
  expect_error("@infer\ndef f(x, y: f32[2]) {\n    return y\n}\n", NULL, "t.dal:2:7: error: ",
               "parameter 'x' of @infer entry 'f' needs a tensor type", 7);
  expect_error("@train\ndef f(x: int) -> f32 {\n    return x\n}\n", NULL, "t.dal:2:10: error: ",
               "parameter 'x' of @train entry 'f' must be a tensor", 10);
  expect_error("@infer\ndef f(x: f32[2] = 1) {\n    return x\n}\n", NULL, "t.dal:2:19: error: ",
               "entry parameters cannot have default values", 19);
  expect_error("@train\ndef loss(x: f32[2]) -> f32[2] {\n    return x\n}\n", NULL, "t.dal:2:24: error: ",
               "@train entry 'loss' must return a scalar loss", 24);
  expect_error("config c { batch = 2 }\n@train\ndef loss(x: f32[B, 4]) {\n   return x\n}\n", "loss",
               "t.dal:4:4: error: ", "@train entry 'loss' must return a scalar f32 loss, but returns f32[2, 4]", 4);
  expect_error("@infer\ndef f(x: f32[2]) {\n    y = x\n}\n", "f", "t.dal:2:5: error: ", "entry 'f' returns nothing", 5);
  expect_error("@infer\ndef f(x: f32[2]) {\n    return 3\n}\n", "f", "t.dal:3:5: error: ",
               "entry 'f' must return a tensor, got int 3", 5);
}
END_TEST

START_TEST(error_configs) {
  const char *src = "config tiny { n = 1 }\nconfig bench { n = 2 }\n";
  char *err = error_opt("t.dal", src, NULL, &(FeOptions){.config = "huge"});
  ck_assert_str_eq(err, "t.dal: error: unknown config 'huge' (available: tiny, bench)\n");
  free(err);
  err = error_opt("t.dal", "let a = 1\n", NULL, &(FeOptions){.config = "x"});
  ck_assert_str_eq(err, "t.dal: error: unknown config 'x': the file defines no configs\n");
  free(err);
  expect_error("config c { name = \"x\" }\n", NULL, "t.dal:1:19: error: ",
               "config value 'name' must be a number or a boolean, got string \"x\"", 19);
  expect_error("config c { xs = [1, 2] }\n", NULL, "t.dal:1:17: error: ", "config value 'xs' must be a number", 17);
  expect_error("config c { batch = 2.5 }\n", NULL, "t.dal:1:20: error: ",
               "config key 'batch' is the batch size: it must be a positive integer, got float 2.5", 20);
  expect_error("config c { a = 1; a = 2 }\n", NULL, "t.dal:1:19: error: ", "duplicate key 'a' in config 'c'", 19);
  expect_error("config c { a = 1 }\nconfig c { a = 2 }\n", NULL, "t.dal:2:8: error: ", "duplicate config 'c'", 8);
}
END_TEST

START_TEST(error_duplicates) {
  char *err = error_of("def f() { return 1 }\ndef f() { return 2 }\n", NULL);
  check_diag(err, "t.dal:2:5: error: ", "duplicate definition of 'f'", 5);
  ck_assert_msg(strstr(err, "^\nt.dal:1:5: note: first defined here\n    def f() { return 1 }\n        ^\n") != NULL, "%s",
                err);
  free(err);
  err = error_of("config c { n = 1 }\nlet n = 2\n", NULL);
  check_diag(err, "t.dal:2:5: error: ", "duplicate definition of 'n'", 5);
  ck_assert_msg(strstr(err, "t.dal:1:12: note: first defined here\n") != NULL, "%s", err);
  free(err);
  err = error_of("let n = 2\nconfig c { n = 1 }\n", NULL);
  check_diag(err, "t.dal:2:12: error: ", "duplicate definition of 'n'", 12);
  ck_assert_msg(strstr(err, "t.dal:1:5: note: first defined here\n") != NULL, "%s", err);
  free(err);
  /* The same key in two configs is fine, and built-ins may be shadowed. */
  FeProgram *p = load_ok("config a { n = 1 }\nconfig b { n = 2 }\ndef relu(x) { return x }\n");
  fe_free(p);
}
END_TEST

/* ---- imports (real files in a temporary directory) ---- */

START_TEST(imports) {
  char *lib_dir = tu_path("lib");
  ck_assert_int_eq(tu_sh("mkdir -p '%s'", lib_dir), 0);
  char *nn = tu_path("lib/nn.dal"), *util = tu_path("lib/util.dal"), *main_file = tu_path("main.dal");
  /* main imports lib/nn.dal and lib/util.dal; nn imports util (relative to
   * itself): util is loaded once. */
  tu_write_file(util, "def twice(x) { return 2 * x }\n");
  tu_write_file(nn, "import \"util.dal\"\ndef layer(x) { return twice(x) + 1 }\n");
  tu_write_file(main_file, "import \"lib/nn.dal\"\nimport \"lib/util.dal\"\n"
                           "@infer\ndef f(x: f32[3]) -> f32[3] {\n    return layer(x)\n}\n");
  char *err = NULL;
  FeProgram *p = fe_load_file(main_file, NULL, &err);
  ck_assert_msg(p != NULL, "%s", err ? err : "");
  IrGraph *g = lower_ok(p, "f");
  ck_assert_int_eq(count_op(g, OP_MUL), 1);
  ck_assert_int_eq(count_op(g, OP_ADD), 1);
  /* Node locations point into the imported file. */
  const IrNode *mul = find_op(g, OP_MUL);
  ck_assert_msg(strstr(mul->loc.file, "lib/util.dal") != NULL, "%s", mul->loc.file);
  ck_assert_int_eq(mul->loc.line, 1);
  ck_assert_int_eq(mul->loc.col, 25);
  /* fe_format_diag shows the imported file's line. */
  char *d = fe_format_diag(mul->loc, "look %d", 1);
  ck_assert_msg(strstr(d, "util.dal:1:25: error: look 1\n    def twice(x) { return 2 * x }\n") != NULL, "%s", d);
  free(d);
  ir_graph_free(g);
  fe_free(p);

  /* A duplicate across files points at both. */
  tu_write_file(main_file, "import \"lib/util.dal\"\ndef twice(x) { return x }\n");
  err = NULL;
  p = fe_load_file(main_file, NULL, &err);
  ck_assert_ptr_null(p);
  ck_assert_msg(strstr(err, "main.dal:2:5: error: duplicate definition of 'twice'") != NULL, "%s", err);
  ck_assert_msg(strstr(err, "lib/util.dal:1:5: note: first defined here") != NULL, "%s", err);
  free(err);

  /* A missing import. */
  tu_write_file(main_file, "let a = 1\nimport \"lib/nope.dal\"\n");
  err = NULL;
  p = fe_load_file(main_file, NULL, &err);
  ck_assert_ptr_null(p);
  char head[600];
  snprintf(head, sizeof head, "%s:2:1: error: cannot open imported file '%s/lib/nope.dal': No such file or directory",
           main_file, tu_tmpdir());
  check_diag(err, head, "nope.dal", 1);
  free(err);

  /* A missing top file. */
  char *none = tu_path("none.dal");
  err = NULL;
  ck_assert_ptr_null(fe_load_file(none, NULL, &err));
  snprintf(head, sizeof head, "%s: error: cannot open file: No such file or directory\n", none);
  ck_assert_str_eq(err, head);
  free(err);

  /* A cycle: a -> b -> a. */
  char *a = tu_path("a.dal"), *b = tu_path("b.dal");
  tu_write_file(a, "import \"b.dal\"\n");
  tu_write_file(b, "\nimport \"a.dal\"\n");
  err = NULL;
  ck_assert_ptr_null(fe_load_file(a, NULL, &err));
  snprintf(head, sizeof head, "%s:2:1: error: import cycle: %s -> %s -> %s\n", b, a, b, a);
  check_diag(err, head, "import cycle", 1);
  free(err);
  /* fe_load_string resolves imports relative to its file name. */
  err = NULL;
  p = fe_load_string(main_file, "import \"lib/util.dal\"\n@infer\ndef g(x: f32[2]) { return twice(x) }\n", NULL, &err);
  ck_assert_msg(p != NULL, "%s", err ? err : "");
  g = lower_ok(p, "g");
  ir_graph_free(g);
  fe_free(p);
  free(lib_dir), free(nn), free(util), free(main_file), free(none), free(a), free(b);
}
END_TEST

/* The param (or state) node called 'name' in g, or NULL. */
static const IrNode *persistent(const IrGraph *g, const char *name) {
  for (int i = 0; i < g->nparam; i++)
    if (strcmp(g->node[g->param[i]].name, name) == 0) return &g->node[g->param[i]];
  return NULL;
}

START_TEST(modules) {
  char *dir = tu_path("mods");
  ck_assert_int_eq(tu_sh("mkdir -p '%s/lib'", dir), 0);
  char *lib = tu_path("mods/lib/enc.dal"), *top = tu_path("mods/top.dal"), *self = tu_path("mods/self.dal");
  /* A module with its own configs, lets, defs and an entry; its B is the importer's. */
  tu_write_file(lib, "config small { k = 3; batch = 7 }\nconfig big { k = 5; batch = 7 }\n"
                     "let twice_k = 2 * k\n"
                     "def proj(x) {\n    w = with p { param w: [k, 2] = ones(); w }\n    return matmul(x, w, tb=true)\n}\n"
                     "@infer\ndef enc(x: f32[B, 2]) -> f32[B, k] { return proj(x) }\n");
  tu_write_file(top, "import \"lib/enc.dal\" as m\nconfig small { batch = 4 }\nconfig big { batch = 4 }\n"
                     "let width = m.twice_k\n"
                     "def proj(x) { return x }\n" /* no clash: the module has its own names */
                     "@infer\ndef f(x: f32[B, 2]) -> f32[B, width] {\n"
                     "    h = m.enc(x)\n    h2 = with outer { m.proj(x) }\n    return concat([h, h2], 1)\n}\n");
  char *err = NULL;
  FeProgram *p = fe_load_file(top, &(FeOptions){.config = "big"}, &err);
  ck_assert_msg(p != NULL, "%s", err ? err : "");
  ck_assert_int_eq(fe_entry_count(p), 1); /* the module's entry is not the importer's */
  IrGraph *g = lower_ok(p, "f");
  ck_assert_int_eq(g->node[g->output[0]].shape.d[0], 4);  /* B from the importer */
  ck_assert_int_eq(g->node[g->output[0]].shape.d[1], 10); /* config big: k = 5 */
  const IrNode *w = persistent(g, "m.p.w"), *w2 = persistent(g, "outer.m.p.w");
  ck_assert_msg(w && w2, "parameters are named under the alias (and the caller's scope)");
  ck_assert_int_eq(w->shape.d[0], 5);
  ck_assert_int_eq(g->nparam, 2);
  ir_graph_free(g);
  const char *h1 = fe_source_hash(p);
  ck_assert_msg(strncmp(h1, "fnv1a64:", 8) == 0 && strlen(h1) == 24, "%s", h1);
  char hash[64];
  snprintf(hash, sizeof hash, "%s", h1);
  fe_free(p);
  /* The hash covers the module's text too. */
  tu_write_file(lib, "config small { k = 3 }\nconfig big { k = 5 }\nlet twice_k = 2 * k\n"
                     "def proj(x) {\n    w = with p { param w: [k, 2] = ones(); w }\n    return matmul(x, w, tb=true)\n}\n"
                     "@infer\ndef enc(x: f32[B, 2]) -> f32[B, k] { return proj(x) }\n");
  p = fe_load_file(top, &(FeOptions){.config = "big"}, &err);
  ck_assert_msg(p != NULL, "%s", err ? err : "");
  ck_assert_str_ne(fe_source_hash(p), hash);
  fe_free(p);

  /* A config the module lacks: its error, then where it was imported. */
  tu_write_file(top, "import \"lib/enc.dal\" as m\nconfig other { batch = 4 }\n");
  err = NULL;
  ck_assert_ptr_null(fe_load_file(top, NULL, &err));
  ck_assert_msg(strstr(err, "unknown config 'other' (available: small, big)") != NULL, "%s", err);
  ck_assert_msg(strstr(err, "in module 'm' imported at") != NULL && strstr(err, "top.dal:1:1") != NULL, "%s", err);
  free(err);
  /* Unknown members, members of a non-module, a module importing itself. */
  tu_write_file(top, "import \"lib/enc.dal\" as m\nconfig small { batch = 4 }\n"
                     "@infer\ndef f(x: f32[B, 2]) { return m.nope(x) }\n"
                     "@infer\ndef g(x: f32[B, 2]) { return x.shape }\n");
  p = fe_load_file(top, NULL, &err);
  ck_assert_msg(p != NULL, "%s", err ? err : "");
  err = NULL;
  ck_assert_ptr_null(fe_lower_entry(p, fe_entry_find(p, "f"), &err));
  ck_assert_msg(strstr(err, "top.dal:4:32: error: module 'm' has no definition 'nope'") != NULL, "%s", err);
  free(err);
  err = NULL;
  ck_assert_ptr_null(fe_lower_entry(p, fe_entry_find(p, "g"), &err));
  ck_assert_msg(strstr(err, "only a module") != NULL, "%s", err);
  free(err);
  fe_free(p);
  tu_write_file(self, "import \"self.dal\" as me\n");
  err = NULL;
  ck_assert_ptr_null(fe_load_file(self, NULL, &err));
  ck_assert_msg(strstr(err, "module cycle") != NULL, "%s", err);
  free(err);
  free(dir), free(lib), free(top), free(self);
}
END_TEST

START_TEST(state_and_assign) {
  FeProgram *p = load_ok("config c { batch = 2 }\n"
                         "def step(x, pos) {\n"
                         "    k = with cache { state k: [B, 4]; k }\n"
                         "    k2 = where(iota([1, 4], 1) == pos, x, k)\n"
                         "    assign(k, k2)\n"
                         "    return k2\n}\n"
                         "@infer\ndef f(x: f32[B, 1], pos: i32) -> f32[B, 4] { return step(x, pos) }\n"
                         "@infer\ndef twice(x: f32[B, 1]) {\n    k = with cache { state k: [B, 4]; k }\n"
                         "    assign(k, 1)\n    assign(k, 2)\n    return x\n}\n"
                         "@infer\ndef notstate(x: f32[B, 4]) {\n    assign(x, x)\n    return x\n}\n"
                         "@infer\ndef badshape(x: f32[B, 3]) {\n    k = with cache { state k: [B, 4]; k }\n"
                         "    assign(k, x)\n    return x\n}\n");
  IrGraph *g = lower_ok(p, "f");
  const IrNode *k = persistent(g, "cache.k");
  ck_assert_ptr_nonnull(k);
  ck_assert_int_eq(k->op, OP_STATE);
  ck_assert(k->attr.transient);
  ck_assert_int_eq(g->nupdate, 1);
  ck_assert_int_eq(g->node[g->update_target[0]].op, OP_STATE);
  ck_assert_int_eq(g->update_value[0], g->output[0]);
  ir_graph_free(g);
  char *err = NULL;
  ck_assert_ptr_null(fe_lower_entry(p, fe_entry_find(p, "twice"), &err));
  ck_assert_msg(strstr(err, "updated twice") != NULL, "%s", err);
  free(err), err = NULL;
  ck_assert_ptr_null(fe_lower_entry(p, fe_entry_find(p, "notstate"), &err));
  ck_assert_msg(strstr(err, "assign: the first argument must be a tensor declared with `state`") != NULL, "%s", err);
  free(err), err = NULL;
  ck_assert_ptr_null(fe_lower_entry(p, fe_entry_find(p, "badshape"), &err));
  ck_assert_msg(strstr(err, "does not match") != NULL, "%s", err);
  free(err);
  fe_free(p);
}
END_TEST

START_TEST(freeze_params) {
  FeProgram *p = load_ok("config c { batch = 2 }\n"
                         "def lin(x) { param w: [3, 3] = ones()\n    return matmul(x, w) }\n"
                         "@train\ndef loss(x: f32[B, 3]) -> f32 {\n"
                         "    freeze(\"enc.*\")\n"
                         "    h = with enc { lin(x) }\n    h = with dec { lin(h) }\n    return sum(h)\n}\n"
                         "@train\ndef none(x: f32[B, 3]) -> f32 {\n    freeze(\"nope.*\")\n"
                         "    h = with enc { lin(x) }\n    return sum(h)\n}\n"
                         "@train\ndef notstr(x: f32[B, 3]) -> f32 {\n    freeze(3)\n    return sum(x)\n}\n");
  IrGraph *g = lower_ok(p, "loss");
  ck_assert(persistent(g, "enc.w")->attr.frozen);
  ck_assert(!persistent(g, "dec.w")->attr.frozen);
  ir_graph_free(g);
  char *err = NULL;
  ck_assert_ptr_null(fe_lower_entry(p, fe_entry_find(p, "none"), &err));
  ck_assert_msg(strstr(err, "t.dal:13:5: error: freeze: no parameter of 'none' matches \"nope.*\"") != NULL, "%s", err);
  free(err), err = NULL;
  ck_assert_ptr_null(fe_lower_entry(p, fe_entry_find(p, "notstr"), &err));
  ck_assert_msg(strstr(err, "non-empty string") != NULL, "%s", err);
  free(err);
  fe_free(p);
}
END_TEST

START_TEST(format_diag) {
  char *d = fe_format_diag((SrcLoc){NULL, 0, 0}, "plain %s", "message");
  ck_assert_str_eq(d, "error: plain message\n");
  free(d);
  d = fe_format_diag((SrcLoc){"x.dal", 0, 0}, "about the file");
  ck_assert_str_eq(d, "x.dal: error: about the file\n");
  free(d);
  /* A file nobody loaded is read from disk; a line past its end is left out. */
  char *f = tu_path("disk.dal");
  tu_write_file(f, "line one\n  line two\n");
  d = fe_format_diag((SrcLoc){f, 2, 3}, "here");
  char want[600];
  snprintf(want, sizeof want, "%s:2:3: error: here\n      line two\n      ^\n", f);
  ck_assert_str_eq(d, want);
  free(d);
  d = fe_format_diag((SrcLoc){f, 9, 1}, "past the end");
  snprintf(want, sizeof want, "%s:9:1: error: past the end\n", f);
  ck_assert_str_eq(d, want);
  free(d);
  free(f);
  /* While a program lives its in-memory source is used. */
  FeProgram *p = load_ok("let a = 1\nlet b = 2\n");
  d = fe_format_diag((SrcLoc){"t.dal", 2, 5}, "b");
  ck_assert_str_eq(d, "t.dal:2:5: error: b\n    let b = 2\n        ^\n");
  free(d);
  fe_free(p);
}
END_TEST

/* ---- lowering: the graphs that tracing builds ---- */

START_TEST(lower_basic) {
  FeProgram *p = load_ok("config c { n = 4; batch = 2 }\n"
                         "@infer\ndef f(x: f32[B, n], y: f32[n]) -> f32[B, n] {\n    return relu(x * 2 + y)\n}\n");
  ck_assert_int_eq(fe_entry_count(p), 1);
  ck_assert_str_eq(fe_entry_name(p, 0), "f");
  ck_assert(!fe_entry_is_train(p, 0));
  ck_assert_int_eq(fe_entry_find(p, "nope"), -1);
  IrGraph *g = lower_ok(p, "f");
  ck_assert_str_eq(g->name, "f");
  ck_assert(!g->train);
  ck_assert_int_eq(g->ninput, 2);
  ck_assert_str_eq(g->node[g->input[0]].name, "x");
  ck_assert_str_eq(g->node[g->input[1]].name, "y");
  expect_shape(&g->node[g->input[0]].shape, 2, 2LL, 4LL);
  ck_assert_str_eq(g->output_name[0], "f");
  const IrNode *out = output(g);
  ck_assert_int_eq(out->op, OP_RELU);
  expect_shape(&out->shape, 2, 2LL, 4LL);
  /* The number became a rank-0 f32 CONST; y was broadcast over B. */
  const IrNode *k = find_op(g, OP_CONST);
  ck_assert_int_eq(k->dtype, IR_F32);
  ck_assert_int_eq(k->shape.rank, 0);
  ck_assert(k->attr.value == 2.0);
  ck_assert_int_eq(count_op(g, OP_MUL), 1);
  ck_assert_int_eq(count_op(g, OP_ADD), 1);
  ck_assert_int_ge(count_op(g, OP_BROADCAST), 1);
  /* Node locations: the MUL is the '*' on line 4. */
  const IrNode *mul = find_op(g, OP_MUL);
  ck_assert_str_eq(mul->loc.file, "t.dal");
  ck_assert_int_eq(mul->loc.line, 4);
  ck_assert_int_eq(mul->loc.col, 19);
  ir_graph_free(g);
  fe_free(p);
}
END_TEST

static const char *const PARAMS_SRC =
    "def lin(x, i, o) {\n"
    "    param weight: [o, i] = kaiming_uniform(i)\n"
    "    param bias: [o] = zeros()\n"
    "    return matmul(x, weight, tb=true) + bias\n"
    "}\n"
    "@infer\n"
    "def f(x: f32[2, 8]) -> f32[2, 2] {\n"
    "    h = x\n"
    "    for s in 0..2 {\n"
    "        with enc.stages[s].down { h = lin(h, 8, 8) }\n"
    "    }\n"
    "    with head { h = lin(h, 8, 2) }\n"
    "    with head { h = h + 0 * lin(x, 8, 2) }\n" /* the same names: the same tensors */
    "    param w: [3, 5] = xavier_uniform(5, 3)\n"
    "    param e: [4] = normal(0, 0.02)\n"
    "    param o: [4] = ones()\n"
    "    param u: [4] = uniform(-2, 3)\n"
    "    with scoped[\"x\"] { param v: [1] = zeros() }\n"
    "    return h\n"
    "}\n";

START_TEST(lower_params) {
  FeProgram *p = load_ok(PARAMS_SRC);
  IrGraph *g = lower_ok(p, "f");
  ck_assert_int_eq(g->nparam, 11);
  const char *order[] = {"enc.stages.0.down.weight", "enc.stages.0.down.bias", "enc.stages.1.down.weight",
                         "enc.stages.1.down.bias",   "head.weight",            "head.bias",
                         "w",                        "e",                      "o",
                         "u",                        "scoped.x.v"};
  for (int i = 0; i < 11; i++) ck_assert_str_eq(g->node[g->param[i]].name, order[i]);
  const IrNode *w = param_named(g, "enc.stages.1.down.weight");
  expect_shape(&w->shape, 2, 8LL, 8LL);
  ck_assert_int_eq(w->attr.init, IR_INIT_UNIFORM);
  ck_assert(fabs(w->attr.init_b - 1 / sqrt(8.0)) < 1e-12 && fabs(w->attr.init_a + 1 / sqrt(8.0)) < 1e-12);
  const IrNode *hw = param_named(g, "head.weight");
  expect_shape(&hw->shape, 2, 2LL, 8LL);
  ck_assert_int_eq(param_named(g, "head.bias")->attr.init, IR_INIT_ZEROS);
  const IrNode *xa = param_named(g, "w");
  ck_assert(fabs(xa->attr.init_b - sqrt(6.0 / 8.0)) < 1e-12 && xa->attr.init_a == -xa->attr.init_b);
  const IrNode *e = param_named(g, "e");
  ck_assert_int_eq(e->attr.init, IR_INIT_NORMAL);
  ck_assert(e->attr.init_a == 0 && e->attr.init_b == 0.02);
  ck_assert_int_eq(param_named(g, "o")->attr.init, IR_INIT_ONES);
  const IrNode *u = param_named(g, "u");
  ck_assert(u->attr.init == IR_INIT_UNIFORM && u->attr.init_a == -2 && u->attr.init_b == 3);
  ck_assert_int_eq(count_op(g, OP_MATMUL), 4);
  ir_graph_free(g);
  fe_free(p);
}
END_TEST

START_TEST(lower_control_flow) {
  FeProgram *p = load_ok("config c { n = 3 }\n"
                         "def shape_of(k) { return zeros([k]) }\n"
                         "@infer\ndef f(x: f32[4]) -> f32[4] {\n"
                         "    y = x\n"
                         "    for i in 0..n { y = y + i }\n"         /* 3 ADDs, i left at 2 */
                         "    for v in [1, 2] { y = y * v }\n"       /* 2 MULs */
                         "    for j in 5..2 { y = tanh(y) }\n"       /* never runs */
                         "    if n > 2 { y = exp(y) } else { y = log(y) }\n"
                         "    if false { y = tanh(y) } else if i == 2 { y = sigmoid(y) } else { y = abs(y) }\n"
                         "    k = 0\n"
                         "    for s in range(1, 10, 3) { k += s }\n" /* 1 + 4 + 7 */
                         "    if k != 12 { return shape_of(k) }\n"
                         "    return y\n"
                         "}\n");
  IrGraph *g = lower_ok(p, "f");
  ck_assert_int_eq(count_op(g, OP_ADD), 3);
  ck_assert_int_eq(count_op(g, OP_MUL), 2);
  ck_assert_int_eq(count_op(g, OP_TANH), 0);
  ck_assert_int_eq(count_op(g, OP_EXP), 1);
  ck_assert_int_eq(count_op(g, OP_LOG), 0);
  ck_assert_int_eq(count_op(g, OP_SIGMOID), 1);
  ck_assert_int_eq(output(g)->op, OP_SIGMOID);
  ir_graph_free(g);
  fe_free(p);
}
END_TEST

START_TEST(lower_calls) {
  FeProgram *p = load_ok("def make(n, m=3, k=n + 1) { return zeros([n, m, k]) }\n"
                         "def apply(fn, x) { return fn(x) }\n"
                         "@infer\ndef f() -> f32[2, 5, 3] { return make(2, k=3, m=5) }\n"
                         "@infer\ndef g() -> f32[2, 3, 3] { return make(2) }\n"
                         "@infer\ndef h(x: f32[2]) -> f32[2] { return apply(relu, apply(exp, x)) }\n");
  IrGraph *g = lower_ok(p, "f");
  ck_assert_int_eq(output(g)->op, OP_CONST);
  ir_graph_free(g);
  g = lower_ok(p, "g");
  expect_shape(&output(g)->shape, 3, 2LL, 3LL, 3LL);
  ir_graph_free(g);
  g = lower_ok(p, "h");
  ck_assert_int_eq(output(g)->op, OP_RELU);
  ck_assert_int_eq(g->node[output(g)->in[0]].op, OP_EXP);
  ir_graph_free(g);
  fe_free(p);
}
END_TEST

START_TEST(lower_broadcast_and_slices) {
  FeProgram *p = load_ok("config c { batch = 2 }\n"
                         "@infer\ndef bc(x: f32[B, 1, 4], y: f32[3, 1]) -> f32[B, 3, 4] { return x - y }\n"
                         "@infer\ndef sl(x: f32[4, 6, 8]) -> f32[4, 3] { return x[1, 2:, :-2][:, 3:] }\n"
                         "@infer\ndef last(x: f32[4, 6, 8]) -> f32[4, 6] { return x[:, :, -1] }\n"
                         "@infer\ndef whole(x: f32[4, 6]) -> f32[4, 6] { return x[:, -100:100] }\n"
                         "@infer\ndef lists(x: f32[4]) -> f32[3] { return x[[0, 1, 3][-1] - 2:] }\n");
  IrGraph *g = lower_ok(p, "bc");
  expect_shape(&output(g)->shape, 3, 2LL, 3LL, 4LL);
  ck_assert_int_eq(output(g)->op, OP_SUB);
  ck_assert_int_ge(count_op(g, OP_BROADCAST), 2);
  ir_graph_free(g);

  g = lower_ok(p, "sl");
  ck_assert_int_eq(count_op(g, OP_SLICE), 2);
  const IrNode *s = find_op(g, OP_SLICE);
  ck_assert(s->attr.start[0] == 1 && s->attr.stop[0] == 2);
  ck_assert(s->attr.start[1] == 2 && s->attr.stop[1] == 6);
  ck_assert(s->attr.start[2] == 0 && s->attr.stop[2] == 6);
  ck_assert_int_eq(count_op(g, OP_RESHAPE), 1); /* the integer index drops axis 0 */
  expect_shape(&output(g)->shape, 2, 4LL, 3LL);
  ir_graph_free(g);

  g = lower_ok(p, "last");
  s = find_op(g, OP_SLICE);
  ck_assert(s->attr.start[2] == 7 && s->attr.stop[2] == 8);
  expect_shape(&output(g)->shape, 2, 4LL, 6LL);
  ir_graph_free(g);

  g = lower_ok(p, "whole"); /* clamped to the whole axis: no node at all */
  ck_assert_int_eq(g->n, 1);
  ir_graph_free(g);

  g = lower_ok(p, "lists");
  s = find_op(g, OP_SLICE);
  ck_assert(s->attr.start[0] == 1 && s->attr.stop[0] == 4);
  ir_graph_free(g);
  fe_free(p);
}
END_TEST

START_TEST(lower_reductions_and_builtins) {
  FeProgram *p = load_ok(
      "@train\ndef loss(x: f32[2, 3]) -> f32 { return mean(x ** 2) }\n"
      "@infer\ndef rows(x: f32[2, 3]) -> f32[2, 1] { return mean(x, axis=-1, keepdim=true) }\n"
      "@infer\ndef mx(x: f32[2, 3]) -> f32[3] { return max(x, axis=0) - min(x, 0) }\n"
      "@infer\ndef am(x: f32[2, 3]) -> i32[2] { return argmax(x, axis=1) }\n"
      "@infer\ndef noise() -> f32[2] { return gumbel([2]) + gumbel([2]) }\n"
      "@infer\ndef mask() -> i32[3, 3] { return causal_mask(3) }\n"
      "@infer\ndef ints(t: i32[4]) -> i32[4] { return (t + 1) // 2 + t % 3 }\n"
      "@infer\ndef misc(x: f32[2, 3], ids: i32[2]) -> f32[2, 3, 5] {\n"
      "    a = transpose(permute(x, [1, 0]), 0, 1)\n"
      "    b = concat([a, x, a], axis=-1)[:, :3]\n"
      "    c = where(x > 0, b, 0.5) + cast(cast(x, i32), f32) + softmax(x) + log_softmax(x, axis=0)\n"
      "    d = broadcast_to(reshape(c, [2, 3, -1]), [2, 3, 5])\n"
      "    e = onehot(ids, 3, axis=1)\n"
      "    return d + reshape(e, [2, 3, 1]) * maximum(1, 2) + reshape(stop_gradient(x), [2, 3, 1])\n"
      "}\n");
  IrGraph *g = lower_ok(p, "loss");
  ck_assert(g->train);
  ck_assert_int_eq(count_op(g, OP_POW), 0); /* x ** 2 is x * x */
  const IrNode *sum = find_op(g, OP_SUM);
  ck_assert_int_eq(sum->attr.axes, 3);
  ck_assert_int_eq(sum->attr.keepdim, 0);
  /* mean = sum * (1/6) */
  const IrNode *out = output(g);
  ck_assert_int_eq(out->op, OP_MUL);
  ck_assert_int_eq(out->shape.rank, 0);
  const IrNode *k = &g->node[out->in[1]];
  ck_assert(k->op == OP_CONST && fabs(k->attr.value - 1.0 / 6) < 1e-15);
  ir_graph_free(g);

  g = lower_ok(p, "rows");
  sum = find_op(g, OP_SUM);
  ck_assert(sum->attr.axes == 2 && sum->attr.keepdim == 1);
  ir_graph_free(g);

  g = lower_ok(p, "mx");
  ck_assert_int_eq(count_op(g, OP_REDUCE_MAX), 2);
  ck_assert_int_eq(count_op(g, OP_NEG), 2);
  ir_graph_free(g);

  g = lower_ok(p, "am");
  ck_assert_int_eq(find_op(g, OP_ARGMAX)->attr.axis, 1);
  ir_graph_free(g);

  g = lower_ok(p, "noise");
  ck_assert_int_eq(count_op(g, OP_GUMBEL), 2);
  ck_assert_int_eq(g->node[0].attr.salt, 0);
  int second = -1;
  for (int i = 1; i < g->n && second < 0; i++)
    if (g->node[i].op == OP_GUMBEL) second = i;
  ck_assert_int_eq(g->node[second].attr.salt, 1);
  ir_graph_free(g);

  g = lower_ok(p, "mask");
  ck_assert_int_eq(count_op(g, OP_IOTA), 2);
  ck_assert_int_eq(output(g)->op, OP_GE);
  ck_assert_int_eq(g->node[output(g)->in[0]].attr.axis, 0); /* row >= column */
  ck_assert_int_eq(g->node[output(g)->in[1]].attr.axis, 1);
  ir_graph_free(g);

  g = lower_ok(p, "ints");
  ck_assert_int_eq(count_op(g, OP_DIV), 2); /* // and the one inside % */
  ck_assert_int_eq(find_op(g, OP_CONST)->dtype, IR_I32);
  ir_graph_free(g);

  g = lower_ok(p, "misc");
  ck_assert_int_eq(count_op(g, OP_CONCAT), 2);
  ck_assert_int_eq(find_op(g, OP_CONCAT)->attr.axis, 1);
  ck_assert_int_eq(count_op(g, OP_CAST), 2);
  ck_assert_int_eq(find_op(g, OP_SOFTMAX)->attr.axis, 1);
  ck_assert_int_eq(find_op(g, OP_LOG_SOFTMAX)->attr.axis, 0);
  ck_assert_int_eq(find_op(g, OP_ONEHOT)->attr.depth, 3);
  ck_assert_int_eq(count_op(g, OP_WHERE), 1);
  ck_assert_int_eq(count_op(g, OP_STOP_GRADIENT), 1);
  ir_graph_free(g);
  fe_free(p);
}
END_TEST

START_TEST(lower_nn_ops) {
  FeProgram *p = load_ok(
      "@infer\ndef f(x: f32[2, 3, 8, 8], w: f32[4, 3, 3, 3], wt: f32[4, 2, 4, 4], g: f32[4], b: f32[4],\n"
      "      t: f32[10, 6], ids: i32[2, 5], y: i32[2, 5]) -> f32[2, 5] {\n"
      "    h = conv2d(x, w, stride=2, pad=1)\n"
      "    h = group_norm(h, 2, g, b, eps=1e-6)\n"
      "    u = conv_transpose2d(h, wt, stride=2, pad=1)\n"
      "    e = embedding(t, ids)\n"
      "    ln = layer_norm(e, ones([6]), zeros([6]))\n"
      "    q = matmul(ln, ln, tb=true) + 0 * sum(u)\n"
      "    return cross_entropy(q, y, weights=2.0)\n"
      "}\n");
  IrGraph *g = lower_ok(p, "f");
  const IrNode *c = find_op(g, OP_CONV2D);
  ck_assert(c->attr.stride == 2 && c->attr.pad == 1);
  expect_shape(&c->shape, 4, 2LL, 4LL, 4LL, 4LL);
  const IrNode *gn = find_op(g, OP_GROUP_NORM);
  ck_assert(gn->attr.groups == 2 && fabsf(gn->attr.eps - 1e-6f) < 1e-12f);
  expect_shape(&find_op(g, OP_CONV_TRANSPOSE2D)->shape, 4, 2LL, 2LL, 8LL, 8LL);
  expect_shape(&find_op(g, OP_GATHER)->shape, 3, 2LL, 5LL, 6LL);
  ck_assert(fabsf(find_op(g, OP_LAYER_NORM)->attr.eps - 1e-5f) < 1e-12f);
  ck_assert_int_eq(find_op(g, OP_MATMUL)->attr.trans_b, 1);
  ck_assert_int_eq(output(g)->op, OP_MUL);
  ck_assert_int_eq(g->node[output(g)->in[0]].op, OP_CROSS_ENTROPY);
  ir_graph_free(g);
  fe_free(p);
}
END_TEST

static const char *const CONFIG_SRC = "config tiny { d = 8; batch = 4; lr = 1e-3; wide = d > 4 }\n"
                                      "config big { d = 64; batch = 16; lr = 0.1; wide = true }\n"
                                      "let h = 2 * d\n"
                                      "@infer\ndef f(x: f32[B, d]) -> f32[B, h] { return concat([x, x], 1) }\n";

START_TEST(lower_configs_and_batch) {
  FeProgram *p = load_ok(CONFIG_SRC);
  ck_assert_int_eq(fe_config_count(p), 2);
  ck_assert_str_eq(fe_config_name(p, 0), "tiny");
  ck_assert_str_eq(fe_config_name(p, 1), "big");
  ck_assert_str_eq(fe_config_selected(p), "tiny");
  ck_assert_int_eq(fe_constant_count(p), 5);
  const char *names[] = {"d", "batch", "lr", "wide", "B"};
  for (int i = 0; i < 5; i++) ck_assert_str_eq(fe_constant_name(p, i), names[i]);
  expect_constant(p, "lr", "0.001");
  expect_constant(p, "wide", "true");
  expect_constant(p, "B", "4");
  IrGraph *g = lower_ok(p, "f");
  expect_shape(&g->node[g->input[0]].shape, 2, 4LL, 8LL);
  expect_shape(&output(g)->shape, 2, 4LL, 16LL);
  ir_graph_free(g);
  fe_free(p);

  p = load_ok_opt(CONFIG_SRC, &(FeOptions){.config = "big", .batch = 3});
  ck_assert_str_eq(fe_config_selected(p), "big");
  expect_constant(p, "batch", "3");
  expect_constant(p, "B", "3");
  expect_constant(p, "lr", "0.1");
  g = lower_ok(p, "f");
  expect_shape(&g->node[g->input[0]].shape, 2, 3LL, 64LL);
  ir_graph_free(g);
  fe_free(p);

  /* --batch gives B even without a `batch` key. */
  p = load_ok_opt("@infer\ndef f(x: f32[B]) -> f32[B] { return x }\n", &(FeOptions){.batch = 5});
  ck_assert_str_eq(fe_config_selected(p), "");
  expect_constant(p, "B", "5");
  g = lower_ok(p, "f");
  expect_shape(&output(g)->shape, 1, 5LL);
  ir_graph_free(g);
  fe_free(p);
}
END_TEST

START_TEST(compile_time_arithmetic) {
  /* Python's rules: // floors, % takes the divisor's sign, / gives a float,
   * ** of ints is an int. */
  FeProgram *p = load_ok("config c {\n"
                         "  a = 7 // -2; b = -7 % 3; c = 2 ** 10; d = 7 / 2; e = min(3, 1, 2); f = 1 < 2 and not false\n"
                         "  g = max([4, 9, 2]); h = 7.5 // 2; i = -7.5 % 2; j = sqrt(16); k = abs(-3); l = 2 ** -1\n"
                         "  m = len([1, 2] + [3] * 2); n = sum([1, 2, 3]); o = int(-2.7); p = float(3); q = 10 - 2 - 3\n"
                         "  r = [1, 2] == [1, 2]; s = \"a\" + \"b\" == \"ab\"; t = 1e300 * 10 > 0; u = relu(-2) + maximum(1, 2.5)\n"
                         "}\n");
  const char *want[][2] = {{"a", "-4"},   {"b", "2"},    {"c", "1024"}, {"d", "3.5"},  {"e", "1"},   {"f", "true"},
                           {"g", "9"},    {"h", "3"},    {"i", "0.5"},  {"j", "4"},    {"k", "3"},   {"l", "0.5"},
                           {"m", "4"},    {"n", "6"},    {"o", "-2"},   {"p", "3"},    {"q", "5"},   {"r", "true"},
                           {"s", "true"}, {"t", "true"}, {"u", "2.5"}};
  for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) expect_constant(p, want[i][0], want[i][1]);
  fe_free(p);
}
END_TEST

START_TEST(lower_models) {
  /* The project's models lower at every configuration (when present). */
  const char *files[] = {"models/gpt.dal", "models/dvae.dal", "models/dalle.dal"};
  for (int f = 0; f < 3; f++) {
    if (access(files[f], R_OK) != 0) continue;
    const char *configs[] = {"tiny", "bench", "paper"};
    for (int c = 0; c < 3; c++) {
      char *err = NULL;
      FeProgram *p = fe_load_file(files[f], &(FeOptions){.config = configs[c]}, &err);
      ck_assert_msg(p != NULL, "%s", err ? err : "");
      ck_assert_int_ge(fe_entry_count(p), 1);
      for (int i = 0; i < fe_entry_count(p); i++) {
        IrGraph *g = lower_ok(p, fe_entry_name(p, i));
        ck_assert_int_ge(g->nparam, 1);
        ck_assert(g->train == fe_entry_is_train(p, i));
        ir_graph_free(g);
      }
      fe_free(p);
    }
  }
}
END_TEST

START_TEST(lower_spec_example) {
  /* The example of docs/language.md traces as the text says, next to a
   * copy of models/nn.dal. */
  char *nn = tu_read_file("models/nn.dal", NULL);
  if (!nn) return;
  char *doc;
  char *example = spec_example(&doc);
  char *dir = tu_path("spec");
  ck_assert_int_eq(tu_sh("mkdir -p '%s'", dir), 0);
  char *nn_copy = tu_path("spec/nn.dal"), *mlp = tu_path("spec/mlp.dal");
  tu_write_file(nn_copy, nn);
  tu_write_file(mlp, example);
  char *err = NULL;
  FeProgram *p = fe_load_file(mlp, &(FeOptions){.config = "tiny"}, &err);
  ck_assert_msg(p != NULL, "%s", err ? err : "");
  IrGraph *g = lower_ok(p, "predict");
  ck_assert_int_eq(g->ninput, 1);
  expect_shape(&g->node[g->input[0]].shape, 2, 4LL, 8LL);
  expect_shape(&param_named(g, "fc1.weight")->shape, 2, 32LL, 8LL);
  expect_shape(&param_named(g, "fc1.bias")->shape, 1, 32LL);
  expect_shape(&param_named(g, "fc2.weight")->shape, 2, 1LL, 32LL);
  expect_shape(&param_named(g, "fc2.bias")->shape, 1, 1LL);
  ck_assert_str_eq(g->output_name[0], "predict");
  expect_shape(&output(g)->shape, 2, 4LL, 1LL);
  ir_graph_free(g);
  g = lower_ok(p, "loss");
  ck_assert(g->train);
  ck_assert_int_eq(output(g)->shape.rank, 0);
  ir_graph_free(g);
  fe_free(p);
  free(nn), free(doc), free(dir), free(nn_copy), free(mlp);
}
END_TEST

/* ---- the ergonomics of issue 10: unpacking, split, inf, `with` scopes, shape-driven layers ---- */

START_TEST(parse_unpack_with_inf) {
  expect_parse("def f(x) {\n    q, k, v = split(x, 3)\n    h = with fc { linear(x, 4) }\n    y = x + with a.b[0] { g(x); h }\n}\n",
               "(def f (x) (block (= (q k v) (call split x 3)) (= h (with fc (block (expr (call linear x 4))))) "
               "(= y (+ x (with a.b[0] (block (expr (call g x)) (expr h)))))))\n");
  expect_expr("where(m, x, -inf)", "(call where m x (- inf))");
  char *got = parse_dump("def f(x) {\n    a, b, a = x\n}\n");
  check_diag(got, "ERROR t.dal:2:11: error: ", "'a' appears twice on the left of '='", 11);
  free(got);
  got = parse_dump("def f(x) {\n    a, a = x\n}\n");
  check_diag(got, "ERROR t.dal:2:8: error: ", "'a' appears twice on the left of '='", 8);
  free(got);
}
END_TEST

START_TEST(unpack_and_split) {
  FeProgram *p = load_ok("@infer\ndef f(x: f32[2, 12]) -> f32[2, 4] {\n"
                         "    q, k, v = split(x, 3)\n"
                         "    a, b, c = split(x, [2, 4, 6], axis=-1)\n"
                         "    r, s = split(x, 2, axis=0)\n"
                         "    return q * k + v + 0 * sum(a) + 0 * sum(b) + 0 * sum(c) + 0 * sum(r) + 0 * sum(s)\n}\n");
  IrGraph *g = lower_ok(p, "f");
  ck_assert_int_eq(count_op(g, OP_SLICE), 8);
  int seen = 0;
  for (int i = 0; i < g->n; i++) {
    const IrNode *n = &g->node[i];
    if (n->op != OP_SLICE) continue;
    /* In order: thirds of axis 1, then sizes 2, 4, 6, then halves of axis 0. */
    static const int64_t want[8][4] = {{0, 0, 2, 4},  {0, 4, 2, 8}, {0, 8, 2, 12}, {0, 0, 2, 2},
                                       {0, 2, 2, 6},  {0, 6, 2, 12}, {0, 0, 1, 12}, {1, 0, 2, 12}};
    ck_assert_msg(n->attr.start[0] == want[seen][0] && n->attr.start[1] == want[seen][1] &&
                      n->attr.stop[0] == want[seen][2] && n->attr.stop[1] == want[seen][3],
                  "slice %d: [%lld:%lld, %lld:%lld]", seen, (long long)n->attr.start[0], (long long)n->attr.stop[0],
                  (long long)n->attr.start[1], (long long)n->attr.stop[1]);
    seen++;
  }
  expect_shape(&output(g)->shape, 2, 2LL, 4LL);
  ir_graph_free(g);
  fe_free(p);
  /* Unpacking works on any list; a split into one part is the tensor itself. */
  p = load_ok("def pair() { return [1, 2.5] }\nlet s = 0\n"
              "@infer\ndef f(x: f32[3]) -> f32[3] {\n    a, b = pair()\n    y = split(x, 1)[0]\n    return y * b + a\n}\n");
  g = lower_ok(p, "f");
  ck_assert_int_eq(count_op(g, OP_SLICE), 0);
  ir_graph_free(g);
  fe_free(p);

  const char *head = "@infer\ndef f(x: f32[2, 12]) {\n";
  char src[512];
  struct {
    const char *body, *at, *fragment;
    int caret;
  } bad[] = {
      {"    q, k = split(x, 5)\n", "t.dal:3:21: error: ",
       "split: axis 1 of tensor f32[2, 12] has size 12, which does not divide into 5 equal parts", 21},
      {"    q, k = split(x, [5, 5])\n", "t.dal:3:21: error: ",
       "split: the sizes list [5, 5] add up to 10, but axis 1 of tensor f32[2, 12] has size 12", 21},
      {"    q, k = split(x, [13, 1])\n", "t.dal:3:21: error: ",
       "split: size 0 is 13, more than axis 1 of tensor f32[2, 12] holds (12)", 21},
      {"    q, k = split(x, [12, 0])\n", "t.dal:3:21: error: ", "split: size 1 must be a positive integer, got int 0", 21},
      {"    q, k = split(x, 0)\n", "t.dal:3:21: error: ", "split: the number of parts must be positive, got 0", 21},
      {"    q, k = split(x, 2, axis=2)\n", "t.dal:3:24: error: ", "out of range for a tensor of rank 2", 24},
      {"    q, k = split(x, 3)\n", "t.dal:3:12: error: ", "cannot unpack a list of 3 elements into 2 names", 12},
      {"    q, k = x\n", "t.dal:3:12: error: ", "cannot unpack tensor f32[2, 12] into 2 names (it must be a list of 2)", 12},
      {"    q, k = split(3, 2)\n", "t.dal:3:18: error: ", "argument 'x' of split must be a tensor, got int 3", 18},
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    snprintf(src, sizeof src, "%s%s    return x\n}\n", head, bad[i].body);
    expect_error(src, "f", bad[i].at, bad[i].fragment, bad[i].caret);
  }
}
END_TEST

START_TEST(inf_literal) {
  /* inf is a float; -inf is unary minus on it, usable wherever a number is. */
  FeProgram *p = load_ok("config c { a = -inf; b = inf > 1e308; d = 2 * inf; e = max(-inf, 3); batch = 2 }\n"
                         "@infer\ndef f(x: f32[B, 4]) -> f32[B, 4] {\n"
                         "    return softmax(where(iota([1, 4], 1) <= 1, x, -inf))\n}\n");
  expect_constant(p, "a", "-inf");
  expect_constant(p, "b", "true");
  expect_constant(p, "d", "inf");
  expect_constant(p, "e", "3");
  IrGraph *g = lower_ok(p, "f");
  find_op(g, OP_WHERE);
  int neg_inf = 0;
  for (int i = 0; i < g->n; i++)
    neg_inf += g->node[i].op == OP_CONST && g->node[i].dtype == IR_F32 && isinf(g->node[i].attr.value) &&
               g->node[i].attr.value < 0;
  ck_assert_int_eq(neg_inf, 1);
  ir_graph_free(g);
  fe_free(p);
  /* An infinity fits no integer. */
  expect_error("@infer\ndef f(x: i32[3]) {\n    return where(x > 0, x, -inf)\n}\n", "f", "t.dal:3:28: error: ",
               "argument 'b' of where is -inf, which does not fit an i32 tensor", 28);
  expect_error("@infer\ndef f(x: f32[3]) {\n    return x + full([3], inf, dtype=i32)\n}\n", "f",
               "t.dal:3:26: error: ", "full: inf is not a whole number", 26);
  expect_error("config c { n = int(-inf) }\n", NULL, "t.dal:1:20: error: ", "int: -inf does not fit an integer", 20);
  expect_error("@infer\ndef f(x: f32[3]) {\n    return reshape(x, [inf])\n}\n", "f", "t.dal:3:23: error: ",
               "dimension 0 must be an integer, got float inf", 23);
}
END_TEST

START_TEST(with_scopes) {
  /* Outer names are visible and assignable inside a `with` block; a name
   * first bound inside is local to it; the block's value is its last
   * expression, a nested `with` included. */
  FeProgram *p = load_ok("def lin(x, o) {\n    param weight: [o, shape(x)[-1]] = ones()\n    return matmul(x, weight, tb=true)\n}\n"
                         "let K = 7\n"
                         "@infer\ndef f(x: f32[2, 8]) -> f32[2, 3] {\n"
                         "    h = x\n"
                         "    with enc {\n"
                         "        K = 2\n"                    /* local to the block: the global K is untouched */
                         "        for i in 0..K { h = with layer[i] { lin(h, 8) } }\n"
                         "        tmp = h\n"
                         "    }\n"
                         "    y = with head { n = K - 4; with inner { lin(h, n) } }\n"
                         "    return y\n}\n");
  IrGraph *g = lower_ok(p, "f");
  ck_assert_int_eq(g->nparam, 3);
  ck_assert_ptr_nonnull(param_named(g, "enc.layer.0.weight"));
  ck_assert_ptr_nonnull(param_named(g, "enc.layer.1.weight"));
  expect_shape(&param_named(g, "head.inner.weight")->shape, 2, 3LL, 8LL); /* n = 7 - 4: K is the global again */
  ir_graph_free(g);
  fe_free(p);
  /* A `return` inside a `with` statement returns from the function. */
  p = load_ok("@infer\ndef f(x: f32[2]) -> f32[2] {\n    with a { return x * 2 }\n    return x\n}\n");
  g = lower_ok(p, "f");
  ck_assert_int_eq(output(g)->op, OP_MUL);
  ir_graph_free(g);
  fe_free(p);

  /* An inner name used after its block: where it was bound, and what to do. */
  expect_error("@infer\ndef f(x: f32[2]) {\n    with enc.stages[1] { h = x * 2 }\n    return h\n}\n", "f",
               "t.dal:4:12: error: ",
               "'h' was bound inside `with enc.stages[1]` (line 3) and is local to that block; bind it before the "
               "block, or take the block's value: h = with enc.stages[1] { ... }",
               12);
  expect_error("@infer\ndef f(x: f32[2]) {\n    y = with a { h = x }\n    return y\n}\n", "f", "t.dal:3:18: error: ",
               "a `with` block used as a value must end with an expression, which is its value", 18);
  expect_error("@infer\ndef f(x: f32[2]) {\n    y = with a { }\n    return y\n}\n", "f", "t.dal:3:9: error: ",
               "a `with` block used as a value must end with an expression", 9);
  expect_error("@infer\ndef f(x: f32[2]) {\n    y = with a { return x; x }\n    return y\n}\n", "f",
               "t.dal:3:18: error: ", "`return` inside a `with` block used as a value", 18);
  expect_error("let z = with a { 1 }\n", NULL, "t.dal:1:9: error: ", "`with` is only allowed inside a function", 9);
}
END_TEST

/* A copy of models/nn.dal next to 'main' (its text), loaded with config c;
 * NULL if the models are not there. */
static FeProgram *with_nn(const char *main_src) {
  char *nn = tu_read_file("models/nn.dal", NULL);
  if (!nn) return NULL;
  char *dir = tu_path("nnuse");
  ck_assert_int_eq(tu_sh("mkdir -p '%s'", dir), 0);
  char *nn_copy = tu_path("nnuse/nn.dal"), *main_file = tu_path("nnuse/main.dal");
  tu_write_file(nn_copy, nn);
  tu_write_file(main_file, main_src);
  char *err = NULL;
  FeProgram *p = fe_load_file(main_file, NULL, &err);
  ck_assert_msg(p != NULL, "%s", err ? err : "");
  free(nn), free(dir), free(nn_copy), free(main_file);
  return p;
}

START_TEST(layers_read_widths) {
  /* linear(x, n_out) and the other layers of nn.dal read the input width
   * from x; the older linear(x, n_in, n_out) gives the same parameters. */
  FeProgram *p = with_nn("import \"nn.dal\"\nconfig c { batch = 2 }\n"
                         "@infer\ndef f(x: f32[B, 5, 8], img: f32[B, 3, 8, 8]) -> f32[B, 5, 4] {\n"
                         "    h = with fc1 { linear(x, 6) }\n"
                         "    h = with ln { layer_norm_layer(h) }\n"
                         "    h = with fc2 { linear(h, 6, 4) }\n"
                         "    c = with conv { conv(img, 16, k=3, pad=1) }\n"
                         "    r = with res { resblock(c, 4) }\n"
                         "    u = with up { conv_transpose(r, 2) }\n"
                         "    return h + 0 * sum(u)\n}\n"
                         "@infer\ndef wrong(x: f32[B, 5, 8]) {\n    return linear(x, 7, 4)\n}\n");
  if (!p) return;
  IrGraph *g = lower_ok(p, "f");
  expect_shape(&param_named(g, "fc1.weight")->shape, 2, 6LL, 8LL);
  expect_shape(&param_named(g, "fc2.weight")->shape, 2, 4LL, 6LL);
  expect_shape(&param_named(g, "fc2.bias")->shape, 1, 4LL);
  expect_shape(&param_named(g, "conv.weight")->shape, 4, 16LL, 3LL, 3LL, 3LL);
  expect_shape(&param_named(g, "res.norm1.weight")->shape, 1, 16LL);
  expect_shape(&param_named(g, "res.conv2.weight")->shape, 4, 16LL, 16LL, 3LL, 3LL);
  expect_shape(&param_named(g, "up.weight")->shape, 4, 16LL, 2LL, 4LL, 4LL);
  expect_shape(&param_named(g, "ln.weight")->shape, 1, 6LL);
  ir_graph_free(g);
  /* The older form with a width that is not x's: matmul says so. */
  char *err = NULL;
  ck_assert_ptr_null(fe_lower_entry(p, fe_entry_find(p, "wrong"), &err));
  ck_assert_msg(strstr(err, "error: matmul: inner dimensions differ") != NULL && strstr(err, "in call to linear") != NULL,
                "%s", err);
  free(err);
  fe_free(p);
}
END_TEST

START_TEST(gpt_helpers_take_sizes_from_shapes) {
  /* gpt.dal's layers read the batch, sequence length and width from their
   * inputs, so a caller may use them at another batch size than B and any
   * sequence length: here one row of 3 positions, and one decode step. */
  if (access("models/gpt.dal", R_OK) != 0) return;
  char *cwd = getcwd(NULL, 0);
  char *src_path = tu_path("gptuse.dal");
  char src[1024];
  snprintf(src, sizeof src,
           "import \"%s/models/gpt.dal\"\n"
           "@infer\ndef short(x: f32[1, 3, d]) -> f32[1, 3, V] { return transformer(x) }\n"
           "@infer\ndef step1(token: i32[1], pos: i32) -> f32[1, 1, V] {\n"
           "    return transformer(embed_image_token(token, pos), \"step\", pos)\n}\n",
           cwd);
  tu_write_file(src_path, src);
  char *err = NULL;
  FeProgram *p = fe_load_file(src_path, &(FeOptions){.config = "tiny"}, &err);
  ck_assert_msg(p != NULL, "%s", err ? err : "");
  expect_constant(p, "B", "4");
  IrGraph *g = lower_ok(p, "short");
  expect_shape(&param_named(g, "blocks.0.attn.qkv.weight")->shape, 2, 96LL, 32LL);
  expect_shape(&output(g)->shape, 3, 1LL, 3LL, 64LL + 8 + 64);
  ir_graph_free(g);
  g = lower_ok(p, "step1");
  expect_shape(&persistent(g, "blocks.1.attn.cache.k_all")->shape, 4, 1LL, 2LL, 23LL, 16LL);
  expect_shape(&output(g)->shape, 3, 1LL, 1LL, 64LL + 8 + 64);
  ir_graph_free(g);
  fe_free(p);
  free(cwd), free(src_path);
}
END_TEST

/* fe_global_number reads config keys and global lets, nothing else. */
START_TEST(global_numbers) {
  FeOptions opt = {.config = "big", .batch = 0};
  FeProgram *p = load_ok_opt("config small { lr = 1e-3; batch = 2 }\nconfig big { lr = 3e-4; batch = 8; fancy = true }\n"
                             "let beta2 = 0.95\nlet half = lr / 2\ndef f(x) { return x }\n",
                             &opt);
  double v = -1;
  ck_assert(fe_global_number(p, "lr", &v) && v == 3e-4);
  ck_assert(fe_global_number(p, "half", &v) && v == 1.5e-4);
  ck_assert(fe_global_number(p, "beta2", &v) && v == 0.95);
  ck_assert(fe_global_number(p, "fancy", &v) && v == 1);
  ck_assert(fe_global_number(p, "B", &v) && v == 8);
  ck_assert(!fe_global_number(p, "f", &v));
  ck_assert(!fe_global_number(p, "nosuch", &v));
  ck_assert(!fe_global_number(p, "exp", &v));
  fe_free(p);
}
END_TEST

/* ---- issue 12: resource limits and the faults a hostile probe found ---- */

/* An entry around 'body' (statements before `return x`), x: f32[4]. */
static char *entry_src(const char *body) {
  const char *head = "@infer\ndef f(x: f32[4]) -> f32[4] {\n", *tail = "  return x\n}\n";
  char *s = malloc(strlen(head) + strlen(body) + strlen(tail) + 1);
  sprintf(s, "%s%s%s", head, body, tail);
  return s;
}

static void expect_entry_error(const char *body, const char *head, const char *fragment) {
  char *src = entry_src(body);
  char *err = error_of(src, "f");
  check_diag(err, head, fragment, 0);
  free(err);
  free(src);
}

/* Row 1: a -1 after dimensions whose product overflows int64 was a SIGFPE. */
START_TEST(limit_reshape_overflow) {
  expect_entry_error("  y = reshape(x, [4294967296, 4294967296, -1])\n", "t.dal:3:18: error: ",
                     "reshape: the target shape list [4294967296, 4294967296, -1] has more than 2^48 elements");
  expect_entry_error("  y = reshape(x, [-1, 9223372036854775807, 2])\n", "t.dal:3:18: error: ", "more than 2^48 elements");
  expect_entry_error("  y = reshape(x, [281474976710656, 2, -1])\n", "t.dal:3:18: error: ", "more than 2^48 elements");
  /* Shapes the builder checks say the same. */
  expect_entry_error("  y = zeros([4294967296, 4294967296])\n", "t.dal:3:7: error: ", "has more than 2^48 elements");
  expect_entry_error("  y = broadcast_to(x, [65536, 65536, 65536, 4])\n", "t.dal:3:7: error: ",
                     "has more than 2^48 elements");
  expect_entry_error("  y = causal_mask(4294967296)\n", "t.dal:3:7: error: ", "has more than 2^48 elements");
  expect_entry_error("  y = onehot(cast(x, i32), 9223372036854775807)\n", "t.dal:3:7: error: ", "more than 2^48 elements");
  /* and a -1 that fits still works */
  FeProgram *p = load_ok("@infer\ndef f(x: f32[4]) -> f32[2, 2] {\n  return reshape(x, [-1, 2])\n}\n");
  IrGraph *g = lower_ok(p, "f");
  expect_shape(&output(g)->shape, 2, 2, 2);
  ir_graph_free(g);
  fe_free(p);
}
END_TEST

/* Row 2: lists and strings that double in a loop grew to gigabytes. */
START_TEST(limit_lists_and_strings) {
  expect_entry_error("  s = [1]\n  for i in 0..60 { s = s + s }\n", "t.dal:4:26: error: ",
                     "a list of 16777216 elements is longer than the 10000000 a list may have");
  expect_entry_error("  s = \"ab\"\n  for i in 0..60 { s = s + s }\n", "t.dal:4:26: error: ",
                     "a string of 2097152 bytes is longer than the 1048576 a string may have");
  expect_entry_error("  s = [1] * 10 ** 8\n", "t.dal:3:11: error: ", "list repetition too long");
  expect_entry_error("  s = [1, 2] * 4611686018427387904\n", "t.dal:3:14: error: ", "list repetition too long");
  expect_entry_error("  s = range(100000000)\n", "t.dal:3:7: error: ", "range of 100000000 elements is too long");
  /* No list is too long, but copying a growing one each time adds up. */
  expect_entry_error("  s = []\n  for i in 0..1000000 { s = s + [i] }\n", "t.dal:4:31: error: ",
                     "the lists and strings built at compile time take more than 512 MiB in all");
  /* Parameter name scopes are strings too. */
  expect_entry_error("  s = \"a\"\n  for i in 0..20 { s = s + s }\n  with m[s] { with n[s] { param w: [1] = zeros() } }\n",
                     "t.dal:5:3: error: ", "the parameter name scope has 1048578 bytes, more than the 1048576 a string may have");
}
END_TEST

/* Row 4 (n_res = 2**62): an empty loop body ran for ever (no steps counted). */
START_TEST(limit_loop_steps) {
  expect_error("let n_res = 2 ** 62\ndef g(n) {\n  for i in 0..n { }\n  return 1\n}\nlet a = g(n_res)\n", NULL,
               "t.dal:3:3: error: ", "the loop runs 4611686018427387904 times, more than the 5000000 steps", 3);
  expect_error("def g() {\n  for i in -9223372036854775807 - 1..9223372036854775807 { }\n  return 1\n}\nlet a = g()\n",
               NULL, "t.dal:2:3: error: ", "the loop runs 18446744073709551615 times", 3);
  /* Iterations count even when the body is empty, and over a list too. */
  expect_error("def g() {\n  l = range(10000)\n  for i in 0..1000 { for x in l { } }\n  return 1\n}\nlet a = g()\n", NULL,
               "t.dal:", "evaluation takes more than 5000000 steps", 0);
  expect_error("def g() {\n  for i in 0..4000 { for j in 0..4000 { } }\n  return 1\n}\nlet a = g()\n", NULL,
               "t.dal:", "steps", 0);
}
END_TEST

/* Deep recursion through deep expressions overflowed the C stack (each of
 * the 200 calls allowed nests its 1,000-level expression). */
START_TEST(limit_eval_nesting) {
  for (int kind = 0; kind < 3; kind++) {
    FeBuf b = {0};
    fe_buf_puts(&b, "def id(v) { return v }\ndef g(n) {\n  return ");
    int d = 990 / (kind == 1 ? 2 : 1);
    for (int i = 0; i < d; i++) fe_buf_puts(&b, kind == 0 ? "[" : kind == 1 ? "id(" : "(1 + ");
    fe_buf_puts(&b, "g(n + 1)");
    for (int i = 0; i < d; i++) fe_buf_puts(&b, kind == 0 ? "]" : ")");
    fe_buf_puts(&b, "\n}\nlet a = g(0)\n");
    char *src = fe_buf_take(&b);
    char *err = error_of(src, NULL);
    check_diag(err, "t.dal:3:", "evaluation nests too deeply (more than 4000 levels or 2048 KiB of stack", 0);
    ck_assert_msg(strstr(err, "in call to g") != NULL, "%.300s", err);
    free(err);
    free(src);
  }
  /* Plain recursion is still the call limit. */
  expect_error("def g(n) { return g(n + 1) }\nlet a = g(0)\n", NULL, "t.dal:1:19: error: ",
               "more than 200 nested calls: does 'g' call itself without end?", 19);
}
END_TEST

/* Row 3: sources are regular files of bounded size; a FIFO, a device or a
 * directory is refused without reading (or blocking). */
START_TEST(limit_source_files) {
  char *fifo = tu_path("src.fifo"), *big = tu_path("big.dal"), *main_file = tu_path("imp.dal");
  ck_assert_int_eq(tu_sh("rm -f '%s' && mkfifo '%s'", fifo, fifo), 0);
  const char *what[] = {"/dev/zero", fifo, tu_tmpdir()};
  for (int i = 0; i < 3; i++) {
    char *err = NULL;
    ck_assert(fe_load_file(what[i], NULL, &err) == NULL);
    ck_assert_msg(err && strstr(err, "not a regular file") && strstr(err, what[i]) == err, "%s: %s", what[i], err);
    free(err);
    char src[512];
    snprintf(src, sizeof src, "import \"%s\"\n@infer\ndef f(x: f32[1]) -> f32[1] { return x }\n", what[i]);
    tu_write_file(main_file, src);
    err = NULL;
    ck_assert(fe_load_file(main_file, NULL, &err) == NULL);
    ck_assert_msg(err && strstr(err, "imp.dal:1:1: error: cannot open imported file") &&
                      strstr(err, "not a regular file"),
                  "%s", err);
    free(err);
    snprintf(src, sizeof src, "import \"%s\" as m\n@infer\ndef f(x: f32[1]) -> f32[1] { return x }\n", what[i]);
    tu_write_file(main_file, src);
    err = NULL;
    ck_assert(fe_load_file(main_file, NULL, &err) == NULL);
    ck_assert_msg(err && strstr(err, "not a regular file"), "%s", err);
    free(err);
  }
  /* A diagnostic located in a FIFO shows no source line (and does not wait for a writer). */
  char *d = fe_format_diag((SrcLoc){fifo, 2, 1}, "look");
  ck_assert_msg(strstr(d, "src.fifo:2:1: error: look\n") && !strchr(strchr(d, '\n') + 1, '\n'), "%s", d);
  free(d);
  /* A file over the size limit is refused by its size (a sparse file: nothing is read). */
  ck_assert_int_eq(tu_sh("truncate -s 17M '%s'", big), 0);
  char *err = NULL;
  ck_assert(fe_load_file(big, NULL, &err) == NULL);
  ck_assert_msg(err && strstr(err, "the file has 17825792 bytes, more than the 16 MiB a source file may have"), "%s",
                err);
  free(err);
  free(fifo);
  free(big);
  free(main_file);
}
END_TEST

/* Row 4: 40,000 parameters from a loop (quadratic before: 24 s to trace
 * here); a limit on the count; shared and clashing names still found. */
START_TEST(limit_parameters) {
  FeProgram *p = load_ok("@train\ndef f(x: f32[1]) -> f32 {\n  s = sum(x)\n"
                         "  for i in 0..40000 { with p[i] { param w: [1] = zeros()\n s = s + sum(w) } }\n"
                         "  for i in 0..40000 { with p[i] { param w: [1] = zeros() } }\n  return s\n}\n");
  IrGraph *g = lower_ok(p, "f");
  ck_assert_int_eq(g->nparam, 40000);
  ck_assert_str_eq(g->node[g->param[39999]].name, "p.39999.w");
  ir_graph_free(g);
  fe_free(p);
  expect_entry_error("  for i in 0..100001 { with p[i] { param w: [1] = zeros() } }\n", "t.dal:3:36: error: ",
                     "the entry declares more than 100000 parameters");
  expect_entry_error("  for i in 0..2 { with p[i % 1] { param w: [1 + i] = zeros() } }\n", "t.dal:3:35: error: ",
                     "param \"p.0.w\": shape [2] differs from its earlier use as [1]");
  expect_entry_error("  state w: [2]\n  param w: [3] = zeros()\n", "t.dal:4:3: error: ",
                     "param \"w\": shape [3] differs from its earlier use as [2]");
  expect_entry_error("  param w: [2] = zeros()\n  state w: [2]\n", "t.dal:4:3: error: ",
                     "state \"w\": shape [2] clashes with the earlier param [2]");
  /* Many entry inputs and many locals. */
  FeBuf b = {0};
  fe_buf_puts(&b, "@infer\ndef f(");
  for (int i = 0; i < 20000; i++) fe_buf_printf(&b, "%sx%d: f32[1]", i ? ", " : "", i);
  fe_buf_puts(&b, ") -> f32[1] {\n");
  for (int i = 0; i < 2000; i++) fe_buf_printf(&b, "  y%d = x%d\n", i, 19999 - i);
  fe_buf_puts(&b, "  return y1999 + x0\n}\n");
  char *src = fe_buf_take(&b);
  p = load_ok(src);
  g = lower_ok(p, "f");
  ck_assert_int_eq(g->ninput, 20000);
  ck_assert_int_eq(count_op(g, OP_ADD), 1);
  ck_assert_str_eq(g->node[find_op(g, OP_ADD)->in[0]].name, "x18000");
  ir_graph_free(g);
  fe_free(p);
  free(src);
  expect_error("@infer\ndef f(a: f32[1], b: f32[1], a: f32[1]) -> f32[1] { return a }\n", NULL, "t.dal:2:29: error: ",
               "parameter 'a' of 'f' is declared twice", 29);
}
END_TEST

/* Row 16: abs of the smallest int, and "did you mean" for calls. */
START_TEST(limit_small_ones) {
  expect_error("let a = abs(-9223372036854775807 - 1)\n", NULL, "t.dal:1:34: error: ", "integer overflow in 'abs'", 34);
  /* abs of an int is an int (it indexes a list), of a float a float */
  FeProgram *p = load_ok("let a = [5, 6, 7][abs(-2)]\nlet b = abs(-9223372036854775807) - 9223372036854775806\n"
                         "let c = abs(-2.5)\n");
  double v;
  ck_assert(fe_global_number(p, "a", &v) && v == 7);
  ck_assert(fe_global_number(p, "b", &v) && v == 1);
  ck_assert(fe_global_number(p, "c", &v) && v == 2.5);
  fe_free(p);
  expect_entry_error("  y = conv(x)\n", "t.dal:3:7: error: ", "unknown function 'conv' (did you mean 'conv2d'?)");
  /* None, f32 and other values are never offered for a call ... */
  char *src = entry_src("  y = Nome(x)\n");
  char *err = error_of(src, "f");
  ck_assert_msg(strstr(err, "unknown function 'Nome'") && !strstr(err, "did you mean"), "%s", err);
  free(err);
  free(src);
  src = entry_src("  n32 = 3\n  y = n33(x)\n");
  err = error_of(src, "f");
  ck_assert_msg(strstr(err, "unknown function 'n33'") && !strstr(err, "did you mean"), "%s", err);
  free(err);
  free(src);
  /* ... but a near function is, a local one too; and a name may still be None. */
  expect_entry_error("  sq = sqrt\n  y = sw(x)\n", "t.dal:4:7: error: ", "unknown function 'sw' (did you mean 'sq'?)");
  expect_entry_error("  y = Nome\n", "t.dal:3:7: error: ", "unknown name 'Nome' (did you mean 'None'?)");
}
END_TEST

int main(void) {
  Suite *s = suite_create("frontend");
  TCase *parse = tcase_create("parse");
  tcase_add_test(parse, parse_items);
  tcase_add_test(parse, parse_statements);
  tcase_add_test(parse, parse_precedence);
  tcase_add_test(parse, parse_comparisons_do_not_chain);
  tcase_add_test(parse, parse_postfix_and_literals);
  tcase_add_test(parse, parse_newline_rules);
  tcase_add_test(parse, parse_errors);
  tcase_add_test(parse, parse_spec_example);
  tcase_add_test(parse, parse_unpack_with_inf);
  suite_add_tcase(s, parse);

  TCase *errors = tcase_create("errors");
  tcase_add_test(errors, error_names);
  tcase_add_test(errors, error_arguments);
  tcase_add_test(errors, error_types);
  tcase_add_test(errors, error_function_signatures);
  tcase_add_test(errors, error_limits);
  tcase_add_test(errors, error_shapes_from_builder);
  tcase_add_test(errors, error_call_chain);
  tcase_add_test(errors, error_entries);
  tcase_add_test(errors, error_configs);
  tcase_add_test(errors, error_duplicates);
  tcase_add_test(errors, imports);
  tcase_add_test(errors, modules);
  tcase_add_test(errors, state_and_assign);
  tcase_add_test(errors, freeze_params);
  tcase_add_test(errors, format_diag);
  suite_add_tcase(s, errors);

  TCase *lower = tcase_create("lower");
  tcase_set_timeout(lower, 30);
  tcase_add_test(lower, lower_basic);
  tcase_add_test(lower, lower_params);
  tcase_add_test(lower, lower_control_flow);
  tcase_add_test(lower, lower_calls);
  tcase_add_test(lower, lower_broadcast_and_slices);
  tcase_add_test(lower, lower_reductions_and_builtins);
  tcase_add_test(lower, lower_nn_ops);
  tcase_add_test(lower, lower_configs_and_batch);
  tcase_add_test(lower, compile_time_arithmetic);
  tcase_add_test(lower, lower_models);
  tcase_add_test(lower, lower_spec_example);
  tcase_add_test(lower, global_numbers);
  tcase_add_test(lower, unpack_and_split);
  tcase_add_test(lower, inf_literal);
  tcase_add_test(lower, with_scopes);
  tcase_add_test(lower, layers_read_widths);
  tcase_add_test(lower, gpt_helpers_take_sizes_from_shapes);
  suite_add_tcase(s, lower);

  TCase *limits = tcase_create("limits");
  tcase_set_timeout(limits, 60);
  tcase_add_test(limits, limit_reshape_overflow);
  tcase_add_test(limits, limit_lists_and_strings);
  tcase_add_test(limits, limit_loop_steps);
  tcase_add_test(limits, limit_eval_nesting);
  tcase_add_test(limits, limit_source_files);
  tcase_add_test(limits, limit_parameters);
  tcase_add_test(limits, limit_small_ones);
  suite_add_tcase(s, limits);
  return tu_run_suite(s);
}
