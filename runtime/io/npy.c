/* npy.c — reading and writing NumPy .npy files (see npy.h).
 *
 * Layout: "\x93NUMPY", major, minor, a little-endian header length (u16 in
 * version 1, u32 in 2 and 3), an ASCII Python dict literal
 *   {'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }
 * padded with spaces and a final '\n' so the data starts at a multiple of 64,
 * then the raw array data in C order.
 */
#include "runtime/io/npy.h"

#include "runtime/core/numerics.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "runtime/io/fileio.h"

_Static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "npy.c assumes a little-endian host");

static const char npy_magic[6] = {'\x93', 'N', 'U', 'M', 'P', 'Y'};

/* ---- header dict parser ---- */

typedef struct {
  const char *s; /* header text, NUL-terminated */
  size_t pos;
  const char *path;
  RtErr *e;
} HdrParser;

typedef struct {
  char descr[16];
  int fortran;
  int rank;
  int64_t dim[RT_MAX_RANK];
} NpyHeader;

static int hdr_fail(HdrParser *p, const char *what) {
  return rt_err(p->e, "%s: malformed .npy header: %s at offset %zu", p->path, what, p->pos);
}

static void hdr_skip_space(HdrParser *p) {
  while (p->s[p->pos] == ' ' || p->s[p->pos] == '\t' || p->s[p->pos] == '\n' || p->s[p->pos] == '\r')
    p->pos++;
}

/* Consumes 'c' (after blanks) if it is next; returns whether it was. */
static int hdr_accept(HdrParser *p, char c) {
  hdr_skip_space(p);
  if (p->s[p->pos] != c) return 0;
  p->pos++;
  return 1;
}

/* string = "'" chars "'" | '"' chars '"'   (no escapes: npy never needs them) */
static int hdr_string(HdrParser *p, char *out, size_t cap) {
  hdr_skip_space(p);
  char q = p->s[p->pos];
  if (q != '\'' && q != '"') return hdr_fail(p, "expected a quoted string");
  size_t start = ++p->pos;
  while (p->s[p->pos] && p->s[p->pos] != q) {
    if (p->s[p->pos] == '\\') return hdr_fail(p, "escape sequences are not supported");
    p->pos++;
  }
  if (!p->s[p->pos]) return hdr_fail(p, "unterminated string");
  size_t len = p->pos - start;
  p->pos++;
  if (len >= cap) return hdr_fail(p, "string too long");
  memcpy(out, p->s + start, len);
  out[len] = 0;
  return 0;
}

/* bool = "True" | "False" */
static int hdr_bool(HdrParser *p, int *out) {
  hdr_skip_space(p);
  if (strncmp(p->s + p->pos, "True", 4) == 0) {
    *out = 1;
    p->pos += 4;
    return 0;
  }
  if (strncmp(p->s + p->pos, "False", 5) == 0) {
    *out = 0;
    p->pos += 5;
    return 0;
  }
  return hdr_fail(p, "expected True or False");
}

/* int = digits ["L"]   (Python 2 wrote long dimensions with an L suffix) */
static int hdr_int(HdrParser *p, int64_t *out) {
  hdr_skip_space(p);
  const char *s = p->s;
  if (s[p->pos] == '-') return hdr_fail(p, "negative dimension");
  if (s[p->pos] < '0' || s[p->pos] > '9') return hdr_fail(p, "expected a dimension");
  int64_t v = 0;
  while (s[p->pos] >= '0' && s[p->pos] <= '9') {
    int d = s[p->pos] - '0';
    if (v > (INT64_MAX - d) / 10) return hdr_fail(p, "dimension too large");
    v = v * 10 + d;
    p->pos++;
  }
  if (s[p->pos] == 'L') p->pos++;
  *out = v;
  return 0;
}

/* shape = "(" [int {"," int} [","]] ")" */
static int hdr_shape(HdrParser *p, NpyHeader *h) {
  if (!hdr_accept(p, '(')) return hdr_fail(p, "expected '(' starting the shape");
  h->rank = 0;
  if (hdr_accept(p, ')')) return 0;
  for (;;) {
    int64_t d = 0;
    if (hdr_int(p, &d)) return -1;
    if (h->rank == RT_MAX_RANK)
      return rt_err(p->e, "%s: array rank exceeds dal's maximum of %d", p->path, RT_MAX_RANK);
    h->dim[h->rank++] = d;
    if (hdr_accept(p, ')')) return 0;
    if (!hdr_accept(p, ',')) return hdr_fail(p, "expected ',' or ')' in the shape");
    if (hdr_accept(p, ')')) return 0;
  }
}

/* dict = "{" key ":" value {"," key ":" value} [","] "}"  with the keys
 * descr, fortran_order and shape each exactly once. */
static int hdr_parse(HdrParser *p, NpyHeader *h) {
  int seen_descr = 0, seen_fortran = 0, seen_shape = 0;
  if (!hdr_accept(p, '{')) return hdr_fail(p, "expected '{'");
  while (!hdr_accept(p, '}')) {
    char key[32];
    if (hdr_string(p, key, sizeof key)) return -1;
    if (!hdr_accept(p, ':')) return hdr_fail(p, "expected ':' after a key");
    int *seen;
    if (strcmp(key, "descr") == 0) {
      seen = &seen_descr;
      hdr_skip_space(p);
      if (p->s[p->pos] == '[')
        return rt_err(p->e, "%s: structured arrays are not supported (descr is a list)", p->path);
      if (hdr_string(p, h->descr, sizeof h->descr)) return -1;
    } else if (strcmp(key, "fortran_order") == 0) {
      seen = &seen_fortran;
      if (hdr_bool(p, &h->fortran)) return -1;
    } else if (strcmp(key, "shape") == 0) {
      seen = &seen_shape;
      if (hdr_shape(p, h)) return -1;
    } else {
      return rt_err(p->e, "%s: malformed .npy header: unexpected key '%s'", p->path, key);
    }
    if (*seen) return rt_err(p->e, "%s: malformed .npy header: key '%s' appears twice", p->path, key);
    *seen = 1;
    if (hdr_accept(p, '}')) break;
    if (!hdr_accept(p, ',')) return hdr_fail(p, "expected ',' or '}'");
  }
  hdr_skip_space(p);
  if (p->s[p->pos]) return hdr_fail(p, "unexpected text after the dict");
  if (!seen_descr || !seen_fortran || !seen_shape)
    return rt_err(p->e, "%s: malformed .npy header: missing key '%s'", p->path,
                  !seen_descr ? "descr" : !seen_fortran ? "fortran_order" : "shape");
  return 0;
}

/* ---- dtypes ---- */

typedef enum { NK_FLOAT, NK_INT, NK_UINT, NK_BOOL } NpyKind;

typedef struct {
  char code[3]; /* descr without the byte-order character */
  NpyKind kind;
  int size;
} NpyType;

static const NpyType npy_types[] = {
    {"f4", NK_FLOAT, 4}, {"f8", NK_FLOAT, 8}, {"f2", NK_FLOAT, 2}, {"i4", NK_INT, 4},
    {"i8", NK_INT, 8},   {"i2", NK_INT, 2},   {"i1", NK_INT, 1},   {"u1", NK_UINT, 1},
    {"u2", NK_UINT, 2},  {"u4", NK_UINT, 4},  {"u8", NK_UINT, 8},  {"b1", NK_BOOL, 1},
};

static const NpyType *npy_type(const char *descr, const char *path, RtErr *e) {
  char order = descr[0];
  const char *code = descr + (order ? 1 : 0);
  for (size_t i = 0; i < sizeof npy_types / sizeof npy_types[0]; i++) {
    const NpyType *t = &npy_types[i];
    if (strcmp(code, t->code) != 0) continue;
    /* '|' (not applicable) and '=' (native, i.e. little here) are fine too;
     * byte order does not matter for single bytes. */
    if (order == '<' || order == '=' || order == '|' || (order == '>' && t->size == 1)) return t;
    if (order == '>') {
      rt_err(e, "%s: big-endian dtype '%s' is not supported (save it as '<%s')", path, descr, code);
      return NULL;
    }
    break;
  }
  rt_err(e,
         "%s: unsupported dtype '%s' (dal reads <f4 <f8 <f2 and <i4 <i8 <i2 |i1 <u8 <u4 <u2 |u1 "
         "|b1)",
         path, descr);
  return NULL;
}

/* IEEE binary16 -> binary32; exact for every value, NaN payloads kept. */
static float half_to_float(uint16_t h) {
  uint32_t sign = (uint32_t)(h >> 15) << 31, exp = (h >> 10) & 0x1f, man = h & 0x3ff, bits;
  if (exp == 0x1f) {
    bits = sign | 0x7f800000u | (man << 13);
  } else if (exp != 0) {
    bits = sign | ((exp + 112) << 23) | (man << 13);
  } else if (man == 0) {
    bits = sign;
  } else { /* subnormal half: normalise */
    int shift = 0;
    while (!(man & 0x400)) {
      man <<= 1;
      shift++;
    }
    bits = sign | ((uint32_t)(113 - shift) << 23) | ((man & 0x3ff) << 13);
  }
  float f;
  memcpy(&f, &bits, 4);
  return f;
}

/* Converts n elements of type 't' from src into dst (f32 or i32); 'first' is
 * the flat index of src[0], for messages. */
static int convert(void *dst, const unsigned char *src, int64_t n, const NpyType *t, int64_t first,
                   const char *path, RtErr *e) {
  float *df = dst;
  int32_t *di = dst;
  for (int64_t i = 0; i < n; i++) {
    const unsigned char *s = src + i * t->size;
    if (t->kind == NK_FLOAT) {
      if (t->size == 2) {
        uint16_t h;
        memcpy(&h, s, 2);
        df[i] = half_to_float(h);
      } else { /* f8 */
        double v;
        memcpy(&v, s, 8);
        float f = (float)v;
        if (isinf(f) && isfinite(v))
          return rt_err(e, "%s: value %g at flat index %lld does not fit in f32", path, v,
                        (long long)(first + i));
        df[i] = f;
      }
      continue;
    }
    if (t->kind == NK_BOOL) {
      di[i] = s[0] != 0;
      continue;
    }
    int64_t v;
    if (t->kind == NK_INT) {
      int8_t v1;
      int16_t v2;
      int32_t v4;
      switch (t->size) {
      case 1: memcpy(&v1, s, 1); v = v1; break;
      case 2: memcpy(&v2, s, 2); v = v2; break;
      case 4: memcpy(&v4, s, 4); v = v4; break;
      default: memcpy(&v, s, 8); break;
      }
    } else {
      uint8_t v1;
      uint16_t v2;
      uint32_t v4;
      uint64_t v8;
      switch (t->size) {
      case 1: memcpy(&v1, s, 1); v = v1; break;
      case 2: memcpy(&v2, s, 2); v = v2; break;
      case 4: memcpy(&v4, s, 4); v = v4; break;
      default:
        memcpy(&v8, s, 8);
        if (v8 > INT32_MAX)
          return rt_err(e, "%s: value %llu at flat index %lld does not fit in i32", path,
                        (unsigned long long)v8, (long long)(first + i));
        v = (int64_t)v8;
        break;
      }
    }
    if (v < INT32_MIN || v > INT32_MAX)
      return rt_err(e, "%s: value %lld at flat index %lld does not fit in i32", path, (long long)v,
                    (long long)(first + i));
    di[i] = (int32_t)v;
  }
  return 0;
}

/* ---- reading ---- */

static uint32_t le_u16(const unsigned char *b) { return (uint32_t)b[0] | (uint32_t)b[1] << 8; }
static uint32_t le_u32(const unsigned char *b) { return le_u16(b) | le_u16(b + 2) << 16; }

/* Reads the data part: 'n' elements of 't' into x->data. */
static int read_data(FILE *f, RtTensor *x, const NpyType *t, const char *path, RtErr *e) {
  int64_t n = rt_tensor_numel(x);
  if (t->size == 4 && (t->kind == NK_FLOAT || t->kind == NK_INT)) { /* <f4, <i4: no conversion */
    size_t bytes = rt_tensor_bytes(x);
    if (fread(x->data, 1, bytes, f) != bytes)
      return rt_err(e, "%s: read error in the array data: %s", path, ferror(f) ? strerror(errno) : "unexpected end of file");
    return 0;
  }
  enum { BLOCK = 16384 }; /* elements converted per read */
  unsigned char *buf = malloc((size_t)BLOCK * (size_t)t->size);
  if (!buf) return rt_err(e, "%s: out of memory", path);
  int rc = 0;
  for (int64_t done = 0; done < n && rc == 0; done += BLOCK) {
    int64_t m = n - done < BLOCK ? n - done : BLOCK;
    if (fread(buf, (size_t)t->size, (size_t)m, f) != (size_t)m)
      rc = rt_err(e, "%s: read error in the array data: %s", path, ferror(f) ? strerror(errno) : "unexpected end of file");
    else
      rc = convert((char *)x->data + done * 4, buf, m, t, done, path, e);
  }
  free(buf);
  return rc;
}

static int npy_read_file(FILE *f, const char *path, RtTensor **out, RtErr *e) {
  struct stat st;
  if (fstat(fileno(f), &st) != 0) return rt_err(e, "%s: cannot stat: %s", path, strerror(errno));
  if (!S_ISREG(st.st_mode)) return rt_err(e, "%s: not a regular file", path);
  uint64_t fsize = (uint64_t)st.st_size;

  unsigned char pre[12];
  size_t got = fread(pre, 1, sizeof pre, f);
  if (got < 8 || memcmp(pre, npy_magic, 6) != 0) {
    if (got >= 6 && memcmp(pre, npy_magic, 6) == 0)
      return rt_err(e, "%s: truncated .npy file (%llu bytes, shorter than the preamble)", path,
                    (unsigned long long)fsize);
    return rt_err(e, "%s: not a .npy file (bad magic)", path);
  }
  int major = pre[6], minor = pre[7];
  uint64_t hstart, hlen;
  if (major == 1) {
    if (got < 10) return rt_err(e, "%s: truncated .npy header (file has %llu bytes)", path, (unsigned long long)fsize);
    hstart = 10;
    hlen = le_u16(pre + 8);
  } else if (major == 2 || major == 3) {
    if (got < 12) return rt_err(e, "%s: truncated .npy header (file has %llu bytes)", path, (unsigned long long)fsize);
    hstart = 12;
    hlen = le_u32(pre + 8);
  } else {
    return rt_err(e, "%s: unsupported .npy format version %d.%d", path, major, minor);
  }
  if (hstart + hlen > fsize)
    return rt_err(e, "%s: truncated .npy header (it says %llu bytes, the file has only %llu after the preamble)",
                  path, (unsigned long long)hlen, (unsigned long long)(fsize - hstart));

  char *text = malloc(hlen + 1);
  if (!text) return rt_err(e, "%s: out of memory", path);
  if (fseek(f, (long)hstart, SEEK_SET) != 0 || fread(text, 1, hlen, f) != hlen) {
    free(text);
    return rt_err(e, "%s: read error in the .npy header", path);
  }
  text[hlen] = 0;
  if (strlen(text) != hlen) {
    free(text);
    return rt_err(e, "%s: malformed .npy header: contains a NUL byte", path);
  }
  NpyHeader h = {0};
  HdrParser p = {text, 0, path, e};
  int rc = hdr_parse(&p, &h);
  free(text);
  if (rc) return -1;
  if (h.fortran)
    return rt_err(e, "%s: Fortran-order arrays are not supported (save with np.ascontiguousarray)", path);
  const NpyType *t = npy_type(h.descr, path, e);
  if (!t) return -1;

  /* Check the size against the file before allocating anything, so a
   * corrupt shape cannot ask for an absurd amount of memory. */
  char sbuf[160];
  uint64_t need = (uint64_t)t->size;
  for (int i = 0; i < h.rank; i++)
    if (__builtin_mul_overflow(need, (uint64_t)h.dim[i], &need))
      return rt_err(e, "%s: shape %s is too large", path, rt_shape_str(h.rank, h.dim, sbuf, sizeof sbuf));
  uint64_t have = fsize - hstart - hlen;
  if (have != need)
    return rt_err(e, "%s: the data is %llu bytes but shape %s of '%s' needs %llu", path,
                  (unsigned long long)have, rt_shape_str(h.rank, h.dim, sbuf, sizeof sbuf), h.descr,
                  (unsigned long long)need);
  RtTensor *x = rt_tensor_new(t->kind == NK_FLOAT ? RT_F32 : RT_I32, h.rank, h.dim, e);
  if (!x) {
    if (e) {
      char msg[sizeof e->msg];
      snprintf(msg, sizeof msg, "%s", e->msg);
      rt_err(e, "%s: %s", path, msg);
    }
    return -1;
  }
  if (read_data(f, x, t, path, e) != 0) {
    rt_tensor_free(x);
    return -1;
  }
  *out = x;
  return 0;
}

int rt_npy_read(const char *path, RtTensor **out, RtErr *e) {
  *out = NULL;
  FILE *f = fopen(path, "rb");
  if (!f) return rt_err(e, "%s: cannot open: %s", path, strerror(errno));
  int rc = npy_read_file(f, path, out, e);
  fclose(f);
  return rc;
}

/* ---- writing ---- */

int rt_npy_write(const char *path, const RtTensor *t, RtErr *e) {
  if (!t || rt_dtype_size(t->dtype) == 0 || t->rank < 0 || t->rank > RT_MAX_RANK)
    return rt_err(e, "%s: cannot write an invalid tensor", path);
  char head[320]; /* preamble + header: at most ~200 bytes for rank 6 */
  int n = snprintf(head, sizeof head, "%c%c%c%c%c%c%c%c--{'descr': '%s', 'fortran_order': False, 'shape': (",
                   npy_magic[0], npy_magic[1], npy_magic[2], npy_magic[3], npy_magic[4], npy_magic[5], 1, 0,
                   t->dtype == RT_F32 ? "<f4" : "<i4");
  for (int i = 0; i < t->rank; i++)
    n += snprintf(head + n, sizeof head - (size_t)n, "%lld%s", (long long)t->dim[i],
                  t->rank == 1 ? "," : i + 1 < t->rank ? ", " : "");
  n += snprintf(head + n, sizeof head - (size_t)n, "), }");
  /* Pad with spaces so that the data starts at a multiple of 64 ('\n' last). */
  int total = (n + 1 + 63) / 64 * 64;
  memset(head + n, ' ', (size_t)(total - n - 1));
  head[total - 1] = '\n';
  int hlen = total - 10;
  head[8] = (char)(hlen & 0xff);
  head[9] = (char)(hlen >> 8);
  RtChunk chunks[2] = {{head, (size_t)total}, {t->data, rt_tensor_bytes(t)}};
  if (rt_write_file_atomic(path, chunks, 2, e)) return -1;
  rt_numerics_warn_written(path, NULL, t);
  return 0;
}
