/* test_runtime.c — the runtime basics: tensors and their printed summary,
 * .npy, safetensors, atomic writes, Philox and Gumbel noise, parameter
 * initialisation. Interop is checked against numpy (/usr/bin/python3) in
 * both directions. */
#include <dirent.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "runtime/core/init.h"
#include "runtime/core/rng.h"
#include "runtime/core/tensor.h"
#include "runtime/exe/exe.h"
#include "runtime/io/fileio.h"
#include "runtime/io/npy.h"
#include "runtime/io/safetensors.h"
#include "tests/util.h"

/* ---- helpers ---- */

static void write_bytes(const char *path, const void *data, size_t n) {
  FILE *f = fopen(path, "wb");
  ck_assert_msg(f != NULL, "cannot write %s", path);
  ck_assert_uint_eq(fwrite(data, 1, n, f), n);
  fclose(f);
}

/* Runs a Python script (given as text) with /usr/bin/python3; returns its
 * exit status. The script sees the test's temporary directory as D. */
static int run_py(const char *script) {
  char *p = tu_path("script.py");
  FILE *f = fopen(p, "w");
  ck_assert(f != NULL);
  fprintf(f, "import numpy as np, json, struct, sys, os\nD = %s%s%s\n%s\n", "'", tu_tmpdir(), "'", script);
  fclose(f);
  int rc = tu_sh("/usr/bin/python3 %s", p);
  free(p);
  return rc;
}

/* Number of directory entries in the temp subdirectory 'dir' (no . and ..). */
static int count_entries(const char *dir) {
  DIR *d = opendir(dir);
  ck_assert_msg(d != NULL, "cannot open %s", dir);
  int n = 0;
  struct dirent *de;
  while ((de = readdir(d)) != NULL)
    if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0) n++;
  closedir(d);
  return n;
}

static RtTensor *new_tensor(RtDType t, int rank, const int64_t *dim) {
  RtErr e = {{0}};
  RtTensor *x = rt_tensor_new(t, rank, dim, &e);
  ck_assert_msg(x != NULL, "%s", e.msg);
  return x;
}

/* Fills a tensor with distinct, exactly representable values. */
static void fill_pattern(RtTensor *x, int salt) {
  int64_t n = rt_tensor_numel(x);
  for (int64_t i = 0; i < n; i++) {
    if (x->dtype == RT_F32) rt_f32(x)[i] = (float)(i * 0.25 - 3.0 + salt);
    else rt_i32(x)[i] = (int32_t)(i * 7 - 100 + salt);
  }
}

static void assert_same_tensor(const RtTensor *a, const RtTensor *b) {
  ck_assert_int_eq(a->dtype, b->dtype);
  ck_assert_int_eq(a->rank, b->rank);
  for (int i = 0; i < a->rank; i++) ck_assert_int_eq(a->dim[i], b->dim[i]);
  ck_assert(memcmp(a->data, b->data, rt_tensor_bytes(a)) == 0);
}

/* The message must name the file (and 'also', if given). */
static void assert_msg_has(const RtErr *e, const char *path, const char *also) {
  ck_assert_msg(strstr(e->msg, path) != NULL, "message lacks the path %s: %s", path, e->msg);
  if (also) ck_assert_msg(strstr(e->msg, also) != NULL, "message lacks '%s': %s", also, e->msg);
}

/* ---- tensors ---- */

START_TEST(tensor_alloc) {
  int64_t d[3] = {2, 3, 4};
  RtTensor *x = new_tensor(RT_F32, 3, d);
  ck_assert_int_eq(rt_tensor_numel(x), 24);
  ck_assert_uint_eq(rt_tensor_bytes(x), 96);
  ck_assert_uint_eq((uintptr_t)x->data % 64, 0);
  for (int i = 0; i < 24; i++) ck_assert(rt_f32(x)[i] == 0.0f);
  char buf[64];
  ck_assert_str_eq(rt_shape_str(x->rank, x->dim, buf, sizeof buf), "[2, 3, 4]");
  ck_assert_str_eq(rt_shape_str(0, NULL, buf, sizeof buf), "[]");
  ck_assert_str_eq(rt_shape_str(3, d, buf, 5), "[2, ");
  rt_tensor_free(x);

  RtTensor *s = new_tensor(RT_I32, 0, NULL);
  ck_assert_int_eq(rt_tensor_numel(s), 1);
  ck_assert_uint_eq(rt_tensor_bytes(s), 4);
  ck_assert_int_eq(rt_i32(s)[0], 0);
  rt_tensor_free(s);

  int64_t z[2] = {3, 0};
  RtTensor *empty = new_tensor(RT_F32, 2, z);
  ck_assert_int_eq(rt_tensor_numel(empty), 0);
  ck_assert_ptr_nonnull(empty->data);
  rt_tensor_free(empty);
  rt_tensor_free(NULL);

  ck_assert_uint_eq(rt_dtype_size(RT_F32), 4);
  ck_assert_uint_eq(rt_dtype_size(RT_I32), 4);
  ck_assert_str_eq(rt_dtype_name(RT_F32), "f32");
  ck_assert_str_eq(rt_dtype_name(RT_I32), "i32");
}
END_TEST

START_TEST(tensor_errors) {
  RtErr e = {{0}};
  int64_t d[RT_MAX_RANK + 1] = {1, 1, 1, 1, 1, 1, 1};
  ck_assert_ptr_null(rt_tensor_new(RT_F32, RT_MAX_RANK + 1, d, &e));
  ck_assert_msg(strstr(e.msg, "rank 7") != NULL, "%s", e.msg);
  ck_assert_ptr_null(rt_tensor_new(RT_F32, -1, d, &e));
  ck_assert_msg(strstr(e.msg, "rank -1") != NULL, "%s", e.msg);
  int64_t neg[2] = {4, -2};
  ck_assert_ptr_null(rt_tensor_new(RT_F32, 2, neg, &e));
  ck_assert_msg(strstr(e.msg, "negative") && strstr(e.msg, "[4, -2]"), "%s", e.msg);
  int64_t big[3] = {1LL << 30, 1LL << 30, 1LL << 30};
  ck_assert_ptr_null(rt_tensor_new(RT_F32, 3, big, &e));
  ck_assert_msg(strstr(e.msg, "too large"), "%s", e.msg);
  int64_t huge[1] = {INT64_MAX};
  ck_assert_ptr_null(rt_tensor_new(RT_I32, 1, huge, &e));
  ck_assert_msg(strstr(e.msg, "too large"), "%s", e.msg);
  /* Just over INT64_MAX bytes in total, without overflowing size_t. */
  int64_t over[2] = {1LL << 61, 1};
  ck_assert_ptr_null(rt_tensor_new(RT_F32, 2, over, &e));
  ck_assert_msg(strstr(e.msg, "too large"), "%s", e.msg);
  ck_assert_ptr_null(rt_tensor_new((RtDType)7, 0, NULL, &e));
  ck_assert_msg(strstr(e.msg, "dtype"), "%s", e.msg);
  /* e may be NULL. */
  ck_assert_ptr_null(rt_tensor_new(RT_F32, 2, neg, NULL));
  ck_assert_int_eq(rt_err(NULL, "x %d", 1), -1);
}
END_TEST

/* The summary `run` and `dalc run` print for an output (rt_exe_summarise). */
static char *summary_of(const char *name, const RtTensor *t) {
  char *text = NULL;
  size_t size = 0;
  FILE *f = open_memstream(&text, &size);
  ck_assert(f != NULL);
  rt_exe_summarise(f, name, t);
  fclose(f);
  return text;
}

START_TEST(tensor_summary) {
  RtTensor *empty = new_tensor(RT_F32, 2, (int64_t[]){0, 3});
  char *s = summary_of("x", empty);
  ck_assert_str_eq(s, "x: f32[0, 3]  (empty)\n");
  ck_assert_msg(!strstr(s, "nan") && !strstr(s, "inf"), "empty tensor summarised as '%s'", s);
  free(s);
  rt_tensor_free(empty);
  RtTensor *m = new_tensor(RT_F32, 2, (int64_t[]){2, 2});
  memcpy(m->data, (float[]){-1, 0, 1, 4}, 4 * sizeof(float));
  s = summary_of("y", m);
  ck_assert_str_eq(s, "y: f32[2, 2]  min -1  max 4  mean 1\n");
  free(s);
  rt_tensor_free(m);
  RtTensor *one = new_tensor(RT_I32, 0, NULL);
  rt_i32(one)[0] = 7;
  s = summary_of("z", one);
  ck_assert_str_eq(s, "z: i32 = 7\n");
  free(s);
  rt_tensor_free(one);
}
END_TEST

START_TEST(tensor_list) {
  RtTensorList *l = rt_list_new();
  int64_t d[1] = {3};
  for (int i = 0; i < 20; i++) {
    char name[16];
    snprintf(name, sizeof name, "t%d", i);
    RtTensor *x = new_tensor(RT_I32, 1, d);
    rt_i32(x)[0] = i;
    rt_list_put(l, name, x);
  }
  ck_assert_int_eq(l->n, 20);
  ck_assert_str_eq(l->name[7], "t7");
  ck_assert_int_eq(rt_i32(rt_list_get(l, "t13"))[0], 13);
  ck_assert_ptr_null(rt_list_get(l, "t20"));
  /* Replacing keeps the position and frees the old tensor (ASan checks). */
  RtTensor *r = new_tensor(RT_F32, 0, NULL);
  rt_list_put(l, "t5", r);
  ck_assert_int_eq(l->n, 20);
  ck_assert_ptr_eq(l->tensor[5], r);
  ck_assert_ptr_eq(rt_list_get(l, "t5"), r);
  rt_list_put(l, "t5", r); /* same tensor again: must not be freed */
  ck_assert_int_eq(rt_f32(rt_list_get(l, "t5"))[0], 0);
  rt_list_free(l);
  rt_list_free(NULL);
}
END_TEST

/* ---- .npy ---- */

START_TEST(npy_roundtrip) {
  for (int dt = 0; dt < 2; dt++) {
    for (int rank = 0; rank <= 4; rank++) {
      int64_t d[4] = {2, 3, 1, 5};
      RtTensor *x = new_tensor(dt ? RT_I32 : RT_F32, rank, d);
      fill_pattern(x, rank);
      char name[32];
      snprintf(name, sizeof name, "rt_%d_%d.npy", dt, rank);
      char *p = tu_path(name);
      RtErr e = {{0}};
      ck_assert_msg(rt_npy_write(p, x, &e) == 0, "%s", e.msg);
      size_t size;
      char *raw = tu_read_file(p, &size);
      ck_assert_ptr_nonnull(raw);
      /* Header padded so that the data starts at a multiple of 64. */
      ck_assert_uint_eq((size - rt_tensor_bytes(x)) % 64, 0);
      ck_assert_int_eq(raw[size - rt_tensor_bytes(x) - 1], '\n');
      free(raw);
      RtTensor *y = NULL;
      ck_assert_msg(rt_npy_read(p, &y, &e) == 0, "%s", e.msg);
      assert_same_tensor(x, y);
      rt_tensor_free(x);
      rt_tensor_free(y);
      free(p);
    }
  }
}
END_TEST

/* Files written by numpy, including dtypes that dal converts. Each is
 * compared with the <f4/<i4 array numpy itself converts to. */
START_TEST(npy_from_numpy) {
  int rc = run_py(
      "rng = np.random.default_rng(5)\n"
      "def save(name, a, expect, version=None):\n"
      "    p = os.path.join(D, name)\n"
      "    if version is None: np.save(p, a)\n"
      "    else:\n"
      "        with open(p, 'wb') as f: np.lib.format.write_array(f, a, version=version)\n"
      "    np.save(os.path.join(D, 'want_' + name), expect)\n"
      "a = rng.standard_normal((3, 4)).astype(np.float32)\n"
      "save('f4.npy', a, a)\n"
      "a = rng.standard_normal((2, 3, 2))\n"
      "save('f8.npy', a, a.astype(np.float32))\n"
      "a = np.array([-2**31, -5, 0, 7, 2**31 - 1], dtype=np.int64)\n"
      "save('i8.npy', a, a.astype(np.int32))\n"
      "a = np.arange(-6, 6, dtype=np.int32).reshape(3, 2, 2)\n"
      "save('i4.npy', a, a)\n"
      "a = np.array([-32768, 3, 32767], dtype=np.int16)\n"
      "save('i2.npy', a, a.astype(np.int32))\n"
      "a = np.array([0, 1, 200, 255], dtype=np.uint8)\n"
      "save('u1.npy', a, a.astype(np.int32))\n"
      "a = np.array([4000000000 // 2, 0], dtype=np.uint64)\n"
      "save('u8.npy', a, a.astype(np.int32))\n"
      "a = np.array([[True, False], [False, True]])\n"
      "save('b1.npy', a, a.astype(np.int32))\n"
      "a = np.array([1.5, -0.0, 65504, 6e-8, np.inf, 1e-5], dtype=np.float16)\n"
      "save('f2.npy', a, a.astype(np.float32))\n"
      "a = np.float64(2.5)\n"
      "save('scalar.npy', np.array(a), np.array(a, dtype=np.float32))\n"
      "a = np.zeros((0, 3), dtype=np.float32)\n"
      "save('empty.npy', a, a)\n"
      "a = np.arange(64, dtype=np.int64).reshape(2, 2, 2, 2, 2, 2)\n"
      "save('rank6.npy', a, a.astype(np.int32))\n"
      "a = rng.standard_normal(7).astype(np.float32)\n"
      "save('v2.npy', a, a, version=(2, 0))\n"
      "a = np.arange(6, dtype=np.float32).reshape(2, 3)[:, ::2]\n"
      "save('strided.npy', a, np.ascontiguousarray(a))\n");
  ck_assert_int_eq(rc, 0);
  const char *names[] = {"f4",  "f8", "i8",     "i4",    "i2",    "u1", "u8",
                         "b1",  "f2", "scalar", "empty", "rank6", "v2", "strided"};
  for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
    char name[64];
    snprintf(name, sizeof name, "%s.npy", names[i]);
    char *p = tu_path(name);
    snprintf(name, sizeof name, "want_%s.npy", names[i]);
    char *pw = tu_path(name);
    RtTensor *got = NULL, *want = NULL;
    RtErr e = {{0}};
    ck_assert_msg(rt_npy_read(p, &got, &e) == 0, "%s: %s", names[i], e.msg);
    ck_assert_msg(rt_npy_read(pw, &want, &e) == 0, "%s: %s", names[i], e.msg);
    assert_same_tensor(got, want);
    rt_tensor_free(got);
    rt_tensor_free(want);
    free(p);
    free(pw);
  }
}
END_TEST

/* Files written by dal, checked by numpy (the script exits non-zero on any
 * mismatch). */
START_TEST(npy_to_numpy) {
  int64_t d3[3] = {2, 3, 4}, d1[1] = {5};
  RtTensor *a = new_tensor(RT_F32, 3, d3), *b = new_tensor(RT_I32, 1, d1), *c = new_tensor(RT_F32, 0, NULL);
  fill_pattern(a, 0);
  fill_pattern(b, 1);
  rt_f32(c)[0] = -1.75f;
  RtErr e = {{0}};
  char *pa = tu_path("dal_a.npy"), *pb = tu_path("dal_b.npy"), *pc = tu_path("dal_c.npy");
  ck_assert_msg(rt_npy_write(pa, a, &e) == 0, "%s", e.msg);
  ck_assert_msg(rt_npy_write(pb, b, &e) == 0, "%s", e.msg);
  ck_assert_msg(rt_npy_write(pc, c, &e) == 0, "%s", e.msg);
  int rc = run_py(
      "a = np.load(os.path.join(D, 'dal_a.npy'))\n"
      "assert a.dtype == np.float32 and a.shape == (2, 3, 4), (a.dtype, a.shape)\n"
      "assert np.array_equal(a.ravel(), (np.arange(24) * 0.25 - 3.0).astype(np.float32))\n"
      "b = np.load(os.path.join(D, 'dal_b.npy'))\n"
      "assert b.dtype == np.int32 and b.shape == (5,), (b.dtype, b.shape)\n"
      "assert np.array_equal(b, np.arange(5) * 7 - 99)\n"
      "c = np.load(os.path.join(D, 'dal_c.npy'))\n"
      "assert c.dtype == np.float32 and c.shape == () and c == -1.75, c\n");
  ck_assert_int_eq(rc, 0);
  rt_tensor_free(a);
  rt_tensor_free(b);
  rt_tensor_free(c);
  free(pa);
  free(pb);
  free(pc);
}
END_TEST

/* Writes a .npy file by hand: version 'major', header text 'dict' (padded
 * to a multiple of 64 unless 'raw_hlen' >= 0 overrides the length field),
 * then 'ndata' bytes of data. */
static char *make_npy(const char *name, int major, const char *dict, long raw_hlen, size_t ndata) {
  char *p = tu_path(name);
  size_t pre = major == 1 ? 10 : 12, dl = strlen(dict);
  size_t total = (pre + dl + 1 + 63) / 64 * 64;
  size_t hlen = total - pre;
  unsigned char *buf = calloc(1, total + ndata);
  memcpy(buf, "\x93NUMPY", 6);
  buf[6] = (unsigned char)major;
  uint32_t field = raw_hlen >= 0 ? (uint32_t)raw_hlen : (uint32_t)hlen;
  for (size_t i = 0; i < pre - 8; i++) buf[8 + i] = (unsigned char)(field >> (8 * i));
  memset(buf + pre, ' ', hlen);
  memcpy(buf + pre, dict, dl);
  buf[total - 1] = '\n';
  for (size_t i = 0; i < ndata; i++) buf[total + i] = (unsigned char)i;
  write_bytes(p, buf, total + ndata);
  free(buf);
  return p;
}

static void expect_npy_error(const char *path, const char *also) {
  RtTensor *x = (RtTensor *)&x; /* must be reset to NULL */
  RtErr e = {{0}};
  ck_assert_msg(rt_npy_read(path, &x, &e) == -1, "%s was accepted", path);
  ck_assert_ptr_null(x);
  assert_msg_has(&e, path, also);
}

START_TEST(npy_corrupt) {
  char *p;
  /* A valid file first, so the helper is known to be right. */
  p = make_npy("ok.npy", 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }", -1, 24);
  RtTensor *x = NULL;
  RtErr e = {{0}};
  ck_assert_msg(rt_npy_read(p, &x, &e) == 0, "%s", e.msg);
  ck_assert_int_eq(x->dim[1], 3);
  rt_tensor_free(x);
  free(p);
  p = make_npy("ok3.npy", 3, "{'descr':'<i4','shape':(4,),'fortran_order':False}", -1, 16);
  ck_assert_msg(rt_npy_read(p, &x, &e) == 0, "%s", e.msg);
  rt_tensor_free(x);
  free(p);

  p = tu_path("magic.npy");
  write_bytes(p, "\x93NUMPZ\x01\x00\x10\x00{}", 12);
  expect_npy_error(p, "bad magic");
  free(p);
  p = tu_path("short.npy");
  write_bytes(p, "\x93NUMPY\x01", 7);
  expect_npy_error(p, NULL);
  free(p);
  p = tu_path("empty_file.npy");
  write_bytes(p, "", 0);
  expect_npy_error(p, "bad magic");
  free(p);
  p = make_npy("version.npy", 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (1,), }", -1, 4);
  {
    FILE *f = fopen(p, "r+b");
    fseek(f, 6, SEEK_SET);
    fputc(9, f);
    fclose(f);
  }
  expect_npy_error(p, "version 9.0");
  free(p);
  p = make_npy("trunc_header.npy", 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (1,), }", 5000, 4);
  expect_npy_error(p, "truncated");
  free(p);
  p = make_npy("trunc_header2.npy", 2, "{'descr': '<f4', 'fortran_order': False, 'shape': (1,), }", 0x7fffffff, 0);
  expect_npy_error(p, "truncated");
  free(p);

  const struct {
    const char *file, *dict, *also;
    size_t ndata;
  } cases[] = {
      {"dict1.npy", "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), ", "malformed", 24},
      {"dict2.npy", "{'descr': '<f4' 'fortran_order': False, 'shape': (2, 3)}", "malformed", 24},
      {"dict3.npy", "{'descr': '<f4', 'fortran_order': Maybe, 'shape': (2, 3)}", "True or False", 24},
      {"dict4.npy", "{'descr': '<f4', 'fortran_order': False, 'shape': (2, x)}", "malformed", 24},
      {"dict5.npy", "{'descr': '<f4', 'fortran_order': False}", "missing key 'shape'", 0},
      {"dict6.npy", "{'descr': '<f4', 'fortran_order': False, 'shape': (2,), 'extra': 1}", "unexpected key", 8},
      {"dict7.npy", "{'descr': '<f4', 'descr': '<f4', 'fortran_order': False, 'shape': (2,)}", "twice", 8},
      {"dict8.npy", "{'descr': '<f4, 'fortran_order': False, 'shape': (2,)}", "malformed", 8},
      {"dict9.npy", "not a dict at all", "malformed", 0},
      {"dict10.npy", "{'descr': '<f4', 'fortran_order': False, 'shape': (-2, 3)}", "negative", 0},
      {"dict11.npy", "{'descr': '<f4', 'fortran_order': False, 'shape': (99999999999999999999,)}", "too large", 0},
      {"dict12.npy", "{'descr': '<f4', 'fortran_order': False, 'shape': (2,)} trailing", "after the dict", 8},
      {"dtype1.npy", "{'descr': '<c8', 'fortran_order': False, 'shape': (2,), }", "unsupported dtype '<c8'", 16},
      {"dtype2.npy", "{'descr': '>f4', 'fortran_order': False, 'shape': (2,), }", "big-endian", 8},
      {"dtype3.npy", "{'descr': '|O', 'fortran_order': False, 'shape': (2,), }", "unsupported dtype", 16},
      {"dtype4.npy", "{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (2,), }", "structured", 8},
      {"fortran.npy", "{'descr': '<f4', 'fortran_order': True, 'shape': (2, 3), }", "Fortran", 24},
      {"rank7.npy", "{'descr': '<f4', 'fortran_order': False, 'shape': (1,1,1,1,1,1,1), }", "rank", 4},
      {"data_short.npy", "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }", "needs 24", 20},
      {"data_long.npy", "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }", "needs 24", 28},
      {"data_f8.npy", "{'descr': '<f8', 'fortran_order': False, 'shape': (4,), }", "needs 32", 16},
      /* A shape that would need exabytes: rejected before any allocation. */
      {"huge.npy", "{'descr': '<f4', 'fortran_order': False, 'shape': (1099511627776, 1099511627776), }", "too large", 8},
      {"huge2.npy", "{'descr': '<f4', 'fortran_order': False, 'shape': (1099511627776, 4), }", "needs", 8},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    p = make_npy(cases[i].file, 1, cases[i].dict, -1, cases[i].ndata);
    expect_npy_error(p, cases[i].also);
    free(p);
  }

  /* Values that do not survive the conversion to f32 / i32. */
  int rc = run_py("np.save(os.path.join(D, 'big_i8.npy'), np.array([1, 2**31], dtype=np.int64))\n"
                  "np.save(os.path.join(D, 'neg_i8.npy'), np.array([-2**31 - 1], dtype=np.int64))\n"
                  "np.save(os.path.join(D, 'big_u8.npy'), np.array([2**64 - 1], dtype=np.uint64))\n"
                  "np.save(os.path.join(D, 'big_u4.npy'), np.array([2**32 - 1], dtype=np.uint32))\n"
                  "np.save(os.path.join(D, 'big_f8.npy'), np.array([0.0, 1e300]))\n");
  ck_assert_int_eq(rc, 0);
  const char *bad[][2] = {{"big_i8.npy", "flat index 1"},
                          {"neg_i8.npy", "-2147483649"},
                          {"big_u8.npy", "18446744073709551615"},
                          {"big_u4.npy", "4294967295"},
                          {"big_f8.npy", "f32"}};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    p = tu_path(bad[i][0]);
    expect_npy_error(p, bad[i][1]);
    free(p);
  }
  p = tu_path("does_not_exist.npy");
  expect_npy_error(p, "cannot open");
  free(p);
  expect_npy_error(tu_tmpdir(), "not a regular file");
}
END_TEST

/* ---- safetensors ---- */

static RtTensorList *sample_list(void) {
  RtTensorList *l = rt_list_new();
  int64_t d2[2] = {2, 3}, d1[1] = {4}, d0[2] = {0, 5}, d4[4] = {2, 1, 2, 3};
  RtTensor *a = new_tensor(RT_F32, 2, d2), *b = new_tensor(RT_I32, 1, d1), *c = new_tensor(RT_F32, 0, NULL),
           *z = new_tensor(RT_F32, 2, d0), *w = new_tensor(RT_I32, 4, d4);
  fill_pattern(a, 0);
  fill_pattern(b, 1);
  rt_f32(c)[0] = 42.5f;
  fill_pattern(w, 2);
  /* Not in alphabetical order: the file keeps list order. */
  rt_list_put(l, "enc.conv.weight", a);
  rt_list_put(l, "codebook", b);
  rt_list_put(l, "scale", c);
  rt_list_put(l, "zero \"sized\"", z);
  rt_list_put(l, "blocks.0.w", w);
  return l;
}

static void assert_same_list(const RtTensorList *a, const RtTensorList *b) {
  ck_assert_int_eq(a->n, b->n);
  for (int i = 0; i < a->n; i++) {
    ck_assert_str_eq(a->name[i], b->name[i]);
    assert_same_tensor(a->tensor[i], b->tensor[i]);
  }
}

/* What the reference implementation checks when it opens a file, in
 * Python: 8-byte aligned header, JSON, dtypes, tensors tiling the buffer. */
static const char *py_st_check =
    "def st_load(p):\n"
    "    raw = open(p, 'rb').read()\n"
    "    n, = struct.unpack('<Q', raw[:8])\n"
    "    assert (8 + n) % 8 == 0, n\n"
    "    hdr = json.loads(raw[8:8 + n].decode('utf-8'))\n"
    "    assert all(isinstance(v, str) for v in hdr.pop('__metadata__', {}).values())\n"
    "    buf = raw[8 + n:]\n"
    "    at, out = 0, {}\n"
    "    for name, info in sorted(hdr.items(), key=lambda kv: kv[1]['data_offsets']):\n"
    "        b, e = info['data_offsets']\n"
    "        assert b == at, (name, b, at)\n"
    "        dt = {'F32': np.float32, 'I32': np.int32}[info['dtype']]\n"
    "        count = int(np.prod(info['shape'], dtype=np.int64))\n"
    "        assert e - b == count * 4\n"
    "        out[name] = np.frombuffer(buf[b:e], dtype=dt).reshape(info['shape'])\n"
    "        at = e\n"
    "    assert at == len(buf)\n"
    "    return out, list(hdr)\n";

START_TEST(st_roundtrip) {
  RtTensorList *l = sample_list();
  char *p = tu_path("rt.safetensors");
  RtErr e = {{0}};
  ck_assert_msg(rt_safetensors_write(p, l, &e) == 0, "%s", e.msg);
  RtTensorList *r = NULL;
  ck_assert_msg(rt_safetensors_read(p, &r, &e) == 0, "%s", e.msg);
  assert_same_list(l, r);
  rt_list_free(r);
  /* An empty list is a valid file too. */
  RtTensorList *none = rt_list_new();
  char *pe = tu_path("none.safetensors");
  ck_assert_msg(rt_safetensors_write(pe, none, &e) == 0, "%s", e.msg);
  ck_assert_msg(rt_safetensors_read(pe, &r, &e) == 0, "%s", e.msg);
  ck_assert_int_eq(r->n, 0);
  rt_list_free(r);
  rt_list_free(none);

  /* Python reads dal's file by the reference rules, in list order. */
  char script[4096];
  snprintf(script, sizeof script,
           "%s"
           "t, order = st_load(os.path.join(D, 'rt.safetensors'))\n"
           "assert order == ['enc.conv.weight', 'codebook', 'scale', 'zero \"sized\"', 'blocks.0.w'], order\n"
           "assert np.array_equal(t['enc.conv.weight'], (np.arange(6) * 0.25 - 3).reshape(2, 3))\n"
           "assert t['enc.conv.weight'].dtype == np.float32\n"
           "assert t['codebook'].dtype == np.int32 and np.array_equal(t['codebook'], np.arange(4) * 7 - 99)\n"
           "assert t['scale'].shape == () and t['scale'] == 42.5\n"
           "assert t['zero \"sized\"'].shape == (0, 5)\n"
           "assert np.array_equal(t['blocks.0.w'].ravel(), np.arange(12) * 7 - 98)\n"
           "t, order = st_load(os.path.join(D, 'none.safetensors'))\n"
           "assert t == {}\n",
           py_st_check);
  ck_assert_int_eq(run_py(script), 0);
  rt_list_free(l);
  free(p);
  free(pe);
}
END_TEST

/* A file written by a small Python writer (header keys not in data order,
 * with metadata) reads back exactly. */
START_TEST(st_from_python) {
  int rc = run_py(
      "rng = np.random.default_rng(3)\n"
      "ts = {'b.weight': rng.standard_normal((3, 2)).astype(np.float32),\n"
      "      'a.bias': np.arange(5, dtype=np.int32) - 2,\n"
      "      'c': np.array(1.25, dtype=np.float32)}\n"
      "hdr, data, at = {'__metadata__': {'format': 'pt', 'note': 'x'}}, b'', 0\n"
      "for k, v in ts.items():\n"
      "    raw = v.tobytes()\n"
      "    hdr[k] = {'dtype': 'F32' if v.dtype == np.float32 else 'I32', 'shape': list(v.shape),\n"
      "              'data_offsets': [at, at + len(raw)]}\n"
      "    data += raw; at += len(raw)\n"
      "h = json.dumps(dict(sorted(hdr.items()))).encode()\n"
      "h += b' ' * (-len(h) % 8)\n"
      "open(os.path.join(D, 'py.safetensors'), 'wb').write(struct.pack('<Q', len(h)) + h + data)\n"
      "for k, v in ts.items(): np.save(os.path.join(D, k + '.npy'), v)\n");
  ck_assert_int_eq(rc, 0);
  char *p = tu_path("py.safetensors");
  RtTensorList *l = NULL;
  RtErr e = {{0}};
  ck_assert_msg(rt_safetensors_read(p, &l, &e) == 0, "%s", e.msg);
  ck_assert_int_eq(l->n, 3);
  /* Data-buffer order, which is the writer's order. */
  ck_assert_str_eq(l->name[0], "b.weight");
  ck_assert_str_eq(l->name[1], "a.bias");
  ck_assert_str_eq(l->name[2], "c");
  for (int i = 0; i < 3; i++) {
    char name[64];
    snprintf(name, sizeof name, "%s.npy", l->name[i]);
    char *pn = tu_path(name);
    RtTensor *want = NULL;
    ck_assert_msg(rt_npy_read(pn, &want, &e) == 0, "%s", e.msg);
    assert_same_tensor(l->tensor[i], want);
    rt_tensor_free(want);
    free(pn);
  }
  rt_list_free(l);
  free(p);
}
END_TEST

/* An 8-byte length, the header text, then 'nbuf' data bytes. If 'hlen' is
 * non-negative it replaces the true header length. */
static char *make_st(const char *name, const char *json, long hlen, size_t nbuf) {
  char *p = tu_path(name);
  size_t jl = strlen(json);
  unsigned char *buf = calloc(1, 8 + jl + nbuf);
  uint64_t field = hlen >= 0 ? (uint64_t)hlen : jl;
  for (int i = 0; i < 8; i++) buf[i] = (unsigned char)(field >> (8 * i));
  memcpy(buf + 8, json, jl);
  write_bytes(p, buf, 8 + jl + nbuf);
  free(buf);
  return p;
}

static void expect_st_error(const char *path, const char *also) {
  RtTensorList *l = (RtTensorList *)&l; /* must be reset to NULL */
  RtErr e = {{0}};
  ck_assert_msg(rt_safetensors_read(path, &l, &e) == -1, "%s was accepted", path);
  ck_assert_ptr_null(l);
  assert_msg_has(&e, path, also);
}

START_TEST(st_corrupt) {
  /* The helper makes valid files. */
  char *p = make_st("ok.safetensors",
                    "{\"x\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                    "\"__metadata__\":{\"a\":\"b\"}}",
                    -1, 8);
  RtTensorList *l = NULL;
  RtErr e = {{0}};
  ck_assert_msg(rt_safetensors_read(p, &l, &e) == 0, "%s", e.msg);
  ck_assert_int_eq(l->n, 1);
  rt_list_free(l);
  free(p);

  p = tu_path("tiny.safetensors");
  write_bytes(p, "\x05\x00\x00", 3);
  expect_st_error(p, "shorter than");
  free(p);
  p = make_st("hlen.safetensors", "{}", 1000, 0);
  expect_st_error(p, "header length 1000");
  free(p);
  p = make_st("hlen2.safetensors", "{}", 0x7fffffffffffffffL, 0);
  expect_st_error(p, "exceeds");
  free(p);

  const char *good_x = "\"x\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}";
  char json[512];
  const struct {
    const char *file, *json, *also;
    size_t nbuf;
  } cases[] = {
      {"json1.safetensors", "{\"x\":{\"dtype\":\"F32\",", "not valid JSON", 8},
      {"json2.safetensors", "[1, 2]", "not a JSON object", 0},
      {"json3.safetensors", "{} {}", "after the JSON", 0},
      {"json4.safetensors", "", "not valid JSON", 0},
      {"dtype1.safetensors", "{\"w.h\":{\"dtype\":\"F16\",\"shape\":[2],\"data_offsets\":[0,4]}}", "'w.h'", 4},
      {"dtype2.safetensors", "{\"w.h\":{\"shape\":[2],\"data_offsets\":[0,8]}}", "'w.h'", 8},
      {"entry.safetensors", "{\"w.h\":[1]}", "'w.h'", 0},
      {"shape1.safetensors", "{\"w.h\":{\"dtype\":\"F32\",\"shape\":[-2],\"data_offsets\":[0,8]}}", "'w.h'", 8},
      {"shape2.safetensors", "{\"w.h\":{\"dtype\":\"F32\",\"shape\":[2.5],\"data_offsets\":[0,8]}}", "'w.h'", 8},
      {"shape3.safetensors", "{\"w.h\":{\"dtype\":\"F32\",\"shape\":\"2\",\"data_offsets\":[0,8]}}", "'w.h'", 8},
      {"shape4.safetensors", "{\"w.h\":{\"dtype\":\"F32\",\"shape\":[1,1,1,1,1,1,1],\"data_offsets\":[0,4]}}",
       "rank 7", 4},
      {"shape5.safetensors",
       "{\"w.h\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296],\"data_offsets\":[0,8]}}", "too large", 8},
      {"shape6.safetensors", "{\"w.h\":{\"dtype\":\"F32\",\"shape\":[1e300],\"data_offsets\":[0,8]}}", "'w.h'", 8},
      {"off1.safetensors", "{\"w.h\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,16]}}", "past the end", 8},
      {"off2.safetensors", "{\"w.h\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,4]}}", "needs 8", 8},
      {"off3.safetensors", "{\"w.h\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,0]}}", "'w.h'", 8},
      {"off4.safetensors", "{\"w.h\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0]}}", "'w.h'", 8},
      {"off5.safetensors", "{\"w.h\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[-8,0]}}", "'w.h'", 8},
      {"gap.safetensors", "{\"w.h\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}", "belong to no tensor",
       12},
      {"tail.safetensors", "{\"w.h\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", "belong to no tensor",
       12},
      {"meta1.safetensors", "{\"__metadata__\":{\"format\":3}}", "__metadata__", 0},
      {"meta2.safetensors", "{\"__metadata__\":[]}", "__metadata__", 0},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    p = make_st(cases[i].file, cases[i].json, -1, cases[i].nbuf);
    expect_st_error(p, cases[i].also);
    free(p);
  }
  snprintf(json, sizeof json, "{%s,\"y\":{\"dtype\":\"I32\",\"shape\":[1],\"data_offsets\":[4,8]}}", good_x);
  p = make_st("overlap.safetensors", json, -1, 8);
  expect_st_error(p, "overlaps");
  free(p);
  snprintf(json, sizeof json, "{%s,%s}", good_x, good_x);
  p = make_st("dup.safetensors", json, -1, 8);
  expect_st_error(p, "'x' appears twice");
  free(p);
  p = tu_path("missing.safetensors");
  expect_st_error(p, "cannot open");
  free(p);
}
END_TEST

START_TEST(st_write_errors) {
  RtErr e = {{0}};
  char *p = tu_path("bad_write.safetensors");
  RtTensorList *l = rt_list_new();
  rt_list_put(l, "__metadata__", new_tensor(RT_F32, 0, NULL));
  ck_assert_int_eq(rt_safetensors_write(p, l, &e), -1);
  assert_msg_has(&e, p, "__metadata__");
  rt_list_free(l);
  /* Duplicate names can only come from editing the list by hand. */
  l = sample_list();
  free(l->name[1]);
  l->name[1] = strdup("scale");
  ck_assert_int_eq(rt_safetensors_write(p, l, &e), -1);
  assert_msg_has(&e, p, "'scale' appears twice");
  rt_list_free(l);
  struct stat st;
  ck_assert_int_ne(stat(p, &st), 0); /* nothing was written */
  free(p);
}
END_TEST

/* ---- atomic writes ---- */

START_TEST(atomic_basic) {
  char *dir = tu_path("atomic");
  ck_assert_int_eq(mkdir(dir, 0755), 0);
  char path[512];
  snprintf(path, sizeof path, "%s/out.bin", dir);
  RtErr e = {{0}};
  RtChunk c[3] = {{"abc", 3}, {"", 0}, {"defg", 4}};
  ck_assert_msg(rt_write_file_atomic(path, c, 3, &e) == 0, "%s", e.msg);
  size_t n;
  char *got = tu_read_file(path, &n);
  ck_assert_uint_eq(n, 7);
  ck_assert_str_eq(got, "abcdefg");
  free(got);
  /* Overwrite: new content, still a single file in the directory. */
  RtChunk c2[1] = {{"xy", 2}};
  ck_assert_msg(rt_write_file_atomic(path, c2, 1, &e) == 0, "%s", e.msg);
  got = tu_read_file(path, &n);
  ck_assert_str_eq(got, "xy");
  free(got);
  ck_assert_int_eq(count_entries(dir), 1);
  /* Permissions follow the umask like any new file, not mkstemp's 0600. */
  struct stat st;
  ck_assert_int_eq(stat(path, &st), 0);
  mode_t um = umask(022);
  umask(um);
  ck_assert_int_eq(st.st_mode & 0777, 0666 & ~um);

  /* Streaming writer: an aborted write leaves the old file and no temp. */
  RtAtomicFile *f = rt_atomic_open(path, &e);
  ck_assert_ptr_nonnull(f);
  ck_assert_int_eq(rt_atomic_write(f, "zzzz", 4, &e), 0);
  ck_assert_int_eq(count_entries(dir), 2); /* the temp file exists meanwhile */
  rt_atomic_abort(f);
  got = tu_read_file(path, &n);
  ck_assert_str_eq(got, "xy");
  free(got);
  ck_assert_int_eq(count_entries(dir), 1);
  rt_atomic_abort(NULL);

  /* Temporaries of killed writers go at the next successful write of the
   * same path: a dead pid's (beyond any pid_max) is removed; a live
   * process's (the parent's), another file's and a look-alike are kept. */
  char stale[600], live[600], other[600], odd[600];
  snprintf(stale, sizeof stale, "%s.tmp.2147483646.0", path);
  snprintf(live, sizeof live, "%s.tmp.%ld.3", path, (long)getppid());
  snprintf(other, sizeof other, "%s/other.bin.tmp.2147483646.0", dir);
  snprintf(odd, sizeof odd, "%s.tmp.notapid", path);
  const char *kept[] = {live, other, odd};
  tu_write_file(stale, "torn");
  for (int i = 0; i < 3; i++) tu_write_file(kept[i], "keep");
  ck_assert_msg(rt_write_file_atomic(path, c2, 1, &e) == 0, "%s", e.msg);
  ck_assert_int_eq(access(stale, F_OK), -1);
  for (int i = 0; i < 3; i++) ck_assert_msg(access(kept[i], F_OK) == 0, "%s was removed", kept[i]);
  ck_assert_int_eq(count_entries(dir), 4);
  for (int i = 0; i < 3; i++) unlink(kept[i]);
  free(dir);
}
END_TEST

/* Failures at each stage keep the old file intact and leave no temp file:
 * creating the temp file (missing directory), writing (file size limit),
 * renaming (target is a directory). */
START_TEST(atomic_failures) {
  char *dir = tu_path("atomic_fail");
  ck_assert_int_eq(mkdir(dir, 0755), 0);
  char path[512], sub[512], nodir[512];
  snprintf(path, sizeof path, "%s/old.npy", dir);
  snprintf(sub, sizeof sub, "%s/adir", dir);
  snprintf(nodir, sizeof nodir, "%s/no/such/dir/x.npy", dir);
  RtErr e = {{0}};
  RtTensor *small = new_tensor(RT_F32, 0, NULL);
  rt_f32(small)[0] = 7.0f;
  ck_assert_msg(rt_npy_write(path, small, &e) == 0, "%s", e.msg);
  size_t old_size;
  char *old = tu_read_file(path, &old_size);

  ck_assert_int_eq(rt_npy_write(nodir, small, &e), -1);
  assert_msg_has(&e, nodir, NULL);

  /* Writing: the file size limit makes write() fail with EFBIG part way
   * (this works even as root, unlike an unwritable directory). The limit
   * is lifted again below, for CK_FORK=no runs. */
  void (*old_handler)(int) = signal(SIGXFSZ, SIG_IGN);
  struct rlimit old_lim, lim = {65536, 65536};
  ck_assert_int_eq(getrlimit(RLIMIT_FSIZE, &old_lim), 0);
  lim.rlim_max = old_lim.rlim_max;
  ck_assert_int_eq(setrlimit(RLIMIT_FSIZE, &lim), 0);
  int64_t d[1] = {100000};
  RtTensor *big = new_tensor(RT_F32, 1, d);
  ck_assert_int_eq(rt_npy_write(path, big, &e), -1);
  assert_msg_has(&e, path, "write failed");
  RtTensorList *l = rt_list_new();
  rt_list_put(l, "big", big);
  ck_assert_int_eq(rt_safetensors_write(path, l, &e), -1);
  assert_msg_has(&e, path, "write failed");
  rt_list_free(l);
  ck_assert_int_eq(setrlimit(RLIMIT_FSIZE, &old_lim), 0);
  signal(SIGXFSZ, old_handler);
  size_t n;
  char *now = tu_read_file(path, &n);
  ck_assert_uint_eq(n, old_size);
  ck_assert(memcmp(now, old, n) == 0);
  free(now);
  ck_assert_int_eq(count_entries(dir), 1);

  /* Renaming onto a non-empty directory fails after the data is written. */
  ck_assert_int_eq(mkdir(sub, 0755), 0);
  char inner[600];
  snprintf(inner, sizeof inner, "%s/keep", sub);
  tu_write_file(inner, "keep");
  ck_assert_int_eq(rt_npy_write(sub, small, &e), -1);
  assert_msg_has(&e, sub, "rename");
  ck_assert_int_eq(count_entries(dir), 2);
  ck_assert_int_eq(count_entries(sub), 1);

  if (geteuid() != 0) { /* root ignores directory permissions */
    ck_assert_int_eq(chmod(dir, 0555), 0);
    ck_assert_int_eq(rt_npy_write(path, small, &e), -1);
    assert_msg_has(&e, path, "temporary");
    ck_assert_int_eq(chmod(dir, 0755), 0);
    now = tu_read_file(path, &n);
    ck_assert(n == old_size && memcmp(now, old, n) == 0);
    free(now);
  }
  free(old);
  rt_tensor_free(small);
  free(dir);
}
END_TEST


/* ---- Philox and Gumbel noise ---- */

START_TEST(philox_kat) {
  /* Known-answer vectors from Random123 (kat_vectors, philox4x32_10). */
  const uint32_t cases[3][10] = {
      {0, 0, 0, 0, 0, 0, 0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8},
      {0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff, 0x408f276d, 0x41c83b0e,
       0xa20bc7c6, 0x6d5451fd},
      {0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344, 0xa4093822, 0x299f31d0, 0xd16cfe09, 0x94fdcceb,
       0x5001e420, 0x24126ea1},
  };
  for (int c = 0; c < 3; c++) {
    uint32_t out[4];
    rt_philox4x32_10(cases[c], cases[c] + 4, out);
    for (int k = 0; k < 4; k++)
      ck_assert_msg(out[k] == cases[c][6 + k], "vector %d word %d: %08x, want %08x", c, k, out[k], cases[c][6 + k]);
    /* four at once: the same words as one call per counter (word 0 wraps) */
    uint32_t four[4][4];
    rt_philox4x32_10_x4(cases[c], cases[c] + 4, four);
    for (int j = 0; j < 4; j++) {
      uint32_t ctr[4] = {cases[c][0] + (uint32_t)j, cases[c][1], cases[c][2], cases[c][3]};
      rt_philox4x32_10(ctr, cases[c] + 4, out);
      ck_assert_msg(memcmp(out, four[j], sizeof out) == 0, "vector %d, counter + %d: x4 differs", c, j);
    }
  }
}
END_TEST

START_TEST(gumbel_stats) {
  enum { N = 200000 };
  float *g = malloc(N * sizeof *g);
  rt_gumbel_fill(g, N, 1234, 7, 3);
  double sum = 0, sq = 0;
  /* u lies in [2^-25, 1 - 2^-25], which bounds every value. */
  const double lo = -log(-log(0x1p-25)), hi = -log(-log1p(-0x1p-25));
  for (int i = 0; i < N; i++) {
    ck_assert_msg(g[i] >= lo - 1e-5 && g[i] <= hi + 1e-5, "g[%d] = %g", i, g[i]);
    sum += g[i];
  }
  double mean = sum / N;
  for (int i = 0; i < N; i++) sq += (g[i] - mean) * (g[i] - mean);
  double var = sq / (N - 1);
  ck_assert_msg(fabs(mean - 0.5772156649) < 0.01, "mean %g", mean);
  ck_assert_msg(fabs(var - M_PI * M_PI / 6) < 0.03, "variance %g", var);
  /* The CDF exp(-exp(-x)) at 0 is 1/e. */
  int below = 0;
  for (int i = 0; i < N; i++) below += g[i] < 0;
  ck_assert_msg(fabs((double)below / N - exp(-1.0)) < 0.005, "P(g < 0) = %g", (double)below / N);
  free(g);
}
END_TEST

static int count_equal(const float *a, const float *b, int n) {
  int k = 0;
  for (int i = 0; i < n; i++) k += a[i] == b[i];
  return k;
}

START_TEST(gumbel_determinism) {
  enum { N = 4096 };
  static float a[N], b[N], c[N];
  const uint64_t seed = 0x123456789abcdefULL;
  rt_gumbel_fill(a, N, seed, 2, 10);
  rt_gumbel_fill(b, N, seed, 2, 10);
  ck_assert_int_eq(count_equal(a, b, N), N);
  /* Any split into ranges gives the same numbers (thread independence). */
  rt_gumbel_fill_range(c, 0, 1000, seed, 2, 10);
  rt_gumbel_fill_range(c + 1000, 1000, 7, seed, 2, 10);
  rt_gumbel_fill_range(c + 1007, 1007, N - 1007, seed, 2, 10);
  ck_assert_int_eq(count_equal(a, c, N), N);
  /* Every input changes the stream, including the high half of the seed. */
  rt_gumbel_fill(b, N, seed, 3, 10);
  ck_assert_int_lt(count_equal(a, b, N), 10);
  rt_gumbel_fill(b, N, seed, 2, 11);
  ck_assert_int_lt(count_equal(a, b, N), 10);
  rt_gumbel_fill(b, N, seed + 1, 2, 10);
  ck_assert_int_lt(count_equal(a, b, N), 10);
  rt_gumbel_fill(b, N, seed ^ (1ULL << 40), 2, 10);
  ck_assert_int_lt(count_equal(a, b, N), 10);
  /* Elements differ from each other. */
  ck_assert_int_lt(count_equal(a, a + 1, N - 1), 10);
  /* Only the low 32 bits of the step count. */
  rt_gumbel_fill(b, N, seed, 2, 10 + (1ULL << 32));
  ck_assert_int_eq(count_equal(a, b, N), N);
}
END_TEST

/* The documented formulas, implemented again in Python, give the same
 * values (including a counter above 2^32, where the high word is used). */
static const char *py_philox =
    "M = 0xffffffff\n"
    "def philox(c, k):\n"
    "    c, k = list(c), list(k)\n"
    "    for r in range(10):\n"
    "        if r:\n"
    "            k = [(k[0] + 0x9E3779B9) & M, (k[1] + 0xBB67AE85) & M]\n"
    "        p0, p1 = 0xD2511F53 * c[0], 0xCD9E8D57 * c[2]\n"
    "        c = [(p1 >> 32) ^ c[1] ^ k[0], p1 & M, (p0 >> 32) ^ c[3] ^ k[1], p0 & M]\n"
    "    return c\n"
    "def key(seed): return [seed & M, seed >> 32]\n"
    "def x53(lo, hi): return ((((hi << 32) | lo) >> 11) + 0.5) * 2.0**-53\n"
    "def fnv(s):\n"
    "    h = 2166136261\n"
    "    for ch in s.encode(): h = ((h ^ ch) * 16777619) & M\n"
    "    return h\n"
    "import math\n"
    "idx = [0, 1, 2, 99, 2**32 + 5]\n"
    "seed, salt, step = 0xfeedface12345678, 9, 77\n"
    "g = []\n"
    "for i in idx:\n"
    "    w = philox([i & M, i >> 32, salt, step], key(seed))\n"
    "    g.append(-math.log(-math.log(((w[0] >> 8) + 0.5) * 2.0**-24)))\n"
    "nrm, uni = [], []\n"
    "for i in idx:\n"
    "    w = philox([i & M, i >> 32, fnv('enc.blocks.0.conv.weight'), 0xffffffff], key(seed))\n"
    "    u1, u2 = x53(w[0], w[1]), x53(w[2], w[3])\n"
    "    nrm.append(0.25 + 0.02 * math.sqrt(-2 * math.log(u1)) * math.cos(2 * math.pi * u2))\n"
    "    uni.append(-0.5 + 1.5 * u1)\n"
    "np.save(os.path.join(D, 'py_rng.npy'), np.array([g, nrm, uni], dtype=np.float32))\n";

START_TEST(rng_matches_spec) {
  ck_assert_int_eq(run_py(py_philox), 0);
  char *p = tu_path("py_rng.npy");
  RtTensor *want = NULL;
  RtErr e = {{0}};
  ck_assert_msg(rt_npy_read(p, &want, &e) == 0, "%s", e.msg);
  ck_assert_int_eq(want->dim[1], 5);
  const int64_t idx[5] = {0, 1, 2, 99, (1LL << 32) + 5};
  const uint64_t seed = 0xfeedface12345678ULL;
  float got[3][5];
  for (int k = 0; k < 5; k++) {
    rt_gumbel_fill_range(&got[0][k], idx[k], 1, seed, 9, 77);
    rt_init_fill_range(&got[1][k], idx[k], 1, RT_INIT_NORMAL, 0.25, 0.02, seed, "enc.blocks.0.conv.weight");
    rt_init_fill_range(&got[2][k], idx[k], 1, RT_INIT_UNIFORM, -0.5, 1.0, seed, "enc.blocks.0.conv.weight");
  }
  for (int r = 0; r < 3; r++)
    for (int k = 0; k < 5; k++)
      ck_assert_msg(fabsf(got[r][k] - rt_f32(want)[r * 5 + k]) <= 1e-6f * fmaxf(1.0f, fabsf(got[r][k])),
                    "row %d element %d: %.9g, python %.9g", r, k, got[r][k], rt_f32(want)[r * 5 + k]);
  rt_tensor_free(want);
  free(p);
}
END_TEST

/* ---- parameter initialisation ---- */

static void moments(const float *p, int n, double *mean, double *std, double *mn, double *mx) {
  double s = 0, q = 0;
  *mn = INFINITY;
  *mx = -INFINITY;
  for (int i = 0; i < n; i++) {
    s += p[i];
    if (p[i] < *mn) *mn = p[i];
    if (p[i] > *mx) *mx = p[i];
  }
  *mean = s / n;
  for (int i = 0; i < n; i++) q += (p[i] - *mean) * (p[i] - *mean);
  *std = sqrt(q / (n - 1));
}

START_TEST(init_stats) {
  enum { N = 200000 };
  float *p = malloc(N * sizeof *p);
  double mean, std, mn, mx;

  for (int i = 0; i < N; i++) p[i] = 5.0f;
  rt_init_fill(p, N, RT_INIT_ZEROS, 0, 0, 1, "w");
  moments(p, N, &mean, &std, &mn, &mx);
  ck_assert(mn == 0.0 && mx == 0.0);
  rt_init_fill(p, N, RT_INIT_ONES, 0, 0, 1, "w");
  moments(p, N, &mean, &std, &mn, &mx);
  ck_assert(mn == 1.0 && mx == 1.0);

  rt_init_fill(p, N, RT_INIT_NORMAL, 0.5, 2.0, 42, "dec.conv.weight");
  moments(p, N, &mean, &std, &mn, &mx);
  ck_assert_msg(fabs(mean - 0.5) < 0.03, "normal mean %g", mean);
  ck_assert_msg(fabs(std - 2.0) < 0.02, "normal std %g", std);
  int within = 0;
  for (int i = 0; i < N; i++) within += fabs(p[i] - 0.5) < 2.0;
  ck_assert_msg(fabs((double)within / N - 0.682689) < 0.005, "P(|z| < 1) = %g", (double)within / N);
  ck_assert_msg(mn < 0.5 - 3.5 * 2.0 && mx > 0.5 + 3.5 * 2.0, "tails too short: [%g, %g]", mn, mx);

  rt_init_fill(p, N, RT_INIT_UNIFORM, -3.0, 1.0, 42, "dec.conv.weight");
  moments(p, N, &mean, &std, &mn, &mx);
  ck_assert_msg(mn >= -3.0 && mx <= 1.0, "uniform range [%g, %g]", mn, mx);
  ck_assert_msg(mn < -2.999 && mx > 0.999, "uniform does not cover its range: [%g, %g]", mn, mx);
  ck_assert_msg(fabs(mean + 1.0) < 0.01, "uniform mean %g", mean);
  ck_assert_msg(fabs(std - 4.0 / sqrt(12.0)) < 0.01, "uniform std %g", std);
  int low_quarter = 0;
  for (int i = 0; i < N; i++) low_quarter += p[i] < -2.0;
  ck_assert_msg(fabs((double)low_quarter / N - 0.25) < 0.005, "P(x < -2) = %g", (double)low_quarter / N);
  free(p);
}
END_TEST

START_TEST(init_determinism) {
  enum { N = 2048 };
  static float a[N], b[N], c[N];
  ck_assert_uint_eq(rt_init_stream(""), 2166136261u);
  ck_assert_uint_eq(rt_init_stream("a"), 0xe40c292cu);
  ck_assert_uint_eq(rt_init_stream("foobar"), 0xbf9cf968u);

  /* A parameter's values do not depend on what else is initialised, or in
   * which order. */
  rt_init_fill(a, N, RT_INIT_NORMAL, 0, 1, 7, "layer.1.w");
  rt_init_fill(c, N, RT_INIT_NORMAL, 0, 1, 7, "layer.0.w");
  rt_init_fill(b, N, RT_INIT_NORMAL, 0, 1, 7, "layer.1.w");
  ck_assert_int_eq(count_equal(a, b, N), N);
  ck_assert_int_lt(count_equal(a, c, N), 10); /* other names: other values */
  rt_init_fill(c, N, RT_INIT_NORMAL, 0, 1, 8, "layer.1.w");
  ck_assert_int_lt(count_equal(a, c, N), 10); /* other seeds: other values */
  rt_init_fill(c, N, RT_INIT_NORMAL, 0, 1, 7 | (1ULL << 33), "layer.1.w");
  ck_assert_int_lt(count_equal(a, c, N), 10);
  /* Split fills agree with the whole. */
  rt_init_fill_range(c, 0, 100, RT_INIT_NORMAL, 0, 1, 7, "layer.1.w");
  rt_init_fill_range(c + 100, 100, N - 100, RT_INIT_NORMAL, 0, 1, 7, "layer.1.w");
  ck_assert_int_eq(count_equal(a, c, N), N);
  /* A longer tensor of the same name starts with the same values. */
  static float longer[2 * N];
  rt_init_fill(longer, 2 * N, RT_INIT_NORMAL, 0, 1, 7, "layer.1.w");
  ck_assert_int_eq(count_equal(a, longer, N), N);
  /* Scaling is affine in (a, b): same underlying draws. */
  rt_init_fill(c, N, RT_INIT_NORMAL, 3, 2, 7, "layer.1.w");
  for (int i = 0; i < N; i++) ck_assert_msg(fabsf(c[i] - (3 + 2 * a[i])) < 1e-5f, "element %d", i);
  /* Noise and init streams do not coincide. */
  rt_gumbel_fill(c, N, 7, rt_init_stream("layer.1.w"), 0);
  rt_init_fill(b, N, RT_INIT_UNIFORM, 0, 1, 7, "layer.1.w");
  ck_assert_int_lt(count_equal(b, c, N), 10);
}
END_TEST

static Suite *runtime_suite(void) {
  Suite *s = suite_create("runtime");
  TCase *tc = tcase_create("tensor");
  tcase_add_test(tc, tensor_alloc);
  tcase_add_test(tc, tensor_errors);
  tcase_add_test(tc, tensor_list);
  tcase_add_test(tc, tensor_summary);
  suite_add_tcase(s, tc);
  tc = tcase_create("npy");
  tcase_add_test(tc, npy_roundtrip);
  tcase_add_test(tc, npy_from_numpy);
  tcase_add_test(tc, npy_to_numpy);
  tcase_add_test(tc, npy_corrupt);
  suite_add_tcase(s, tc);
  tc = tcase_create("safetensors");
  tcase_add_test(tc, st_roundtrip);
  tcase_add_test(tc, st_from_python);
  tcase_add_test(tc, st_corrupt);
  tcase_add_test(tc, st_write_errors);
  suite_add_tcase(s, tc);
  tc = tcase_create("fileio");
  tcase_add_test(tc, atomic_basic);
  tcase_add_test(tc, atomic_failures);
  suite_add_tcase(s, tc);
  tc = tcase_create("rng");
  tcase_add_test(tc, philox_kat);
  tcase_add_test(tc, gumbel_stats);
  tcase_add_test(tc, gumbel_determinism);
  tcase_add_test(tc, rng_matches_spec);
  suite_add_tcase(s, tc);
  tc = tcase_create("init");
  tcase_add_test(tc, init_stats);
  tcase_add_test(tc, init_determinism);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) { return tu_run_suite(runtime_suite()); }
