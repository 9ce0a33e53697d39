/* caption_fit.c — setting a caption in a band of a given width (see
 * image_grid.h): wrapped at spaces (a word wider than the band is broken
 * between characters), then set smaller, and as the last resort cut with
 * an ellipsis. Text is measured with cairo's toy text API. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/draw/image_grid_impl.h"

static const char ELLIPSIS[] = "\xe2\x80\xa6"; /* U+2026 in UTF-8 */

void rt_caption_font(cairo_t *cr, double size) {
  cairo_select_font_face(cr, "DejaVu Sans", CAIRO_FONT_SLANT_NORMAL, CAIRO_FONT_WEIGHT_NORMAL);
  cairo_set_font_size(cr, size);
}

int rt_caption_text_height(void) { return (int)ceil(2 * RT_CAPTION_PX * RT_CAPTION_LINE); }

/* Length of the valid UTF-8 sequence at s (at most n bytes), 0 if invalid. */
static int utf8_len(const unsigned char *s, size_t n) {
  int len = s[0] < 0x80 ? 1 : s[0] >= 0xc2 && s[0] <= 0xdf ? 2 : s[0] >= 0xe0 && s[0] <= 0xef ? 3
                         : s[0] >= 0xf0 && s[0] <= 0xf4 ? 4 : 0;
  if (len == 0 || (size_t)len > n) return 0;
  for (int k = 1; k < len; k++)
    if ((s[k] & 0xc0) != 0x80) return 0;
  if (len == 3 && ((s[0] == 0xe0 && s[1] < 0xa0) || (s[0] == 0xed && s[1] >= 0xa0))) return 0; /* overlong, surrogate */
  if (len == 4 && ((s[0] == 0xf0 && s[1] < 0x90) || (s[0] == 0xf4 && s[1] >= 0x90))) return 0; /* overlong, > U+10FFFF */
  return len;
}

/* A copy of 'caption' that cairo can draw: invalid UTF-8 bytes become '?',
 * control characters spaces, and the ends are trimmed. NULL: out of memory. */
static char *clean_copy(const char *caption) {
  size_t n = caption ? strlen(caption) : 0;
  char *out = malloc(n + 1);
  if (!out) return NULL;
  size_t k = 0;
  for (size_t i = 0; i < n;) {
    const unsigned char *s = (const unsigned char *)caption + i;
    int len = utf8_len(s, n - i);
    if (len == 0) {
      out[k++] = '?';
      i++;
    } else {
      if (len == 1 && (s[0] < 0x20 || s[0] == 0x7f)) {
        out[k++] = ' ';
      } else {
        memcpy(out + k, s, (size_t)len);
        k += (size_t)len;
      }
      i += (size_t)len;
    }
  }
  while (k > 0 && out[k - 1] == ' ') k--;
  out[k] = 0;
  size_t lead = strspn(out, " ");
  memmove(out, out + lead, k - lead + 1);
  return out;
}

/* How wide s[0..n) (followed by 'tail', may be "") is drawn: from its
 * leftmost ink or origin to its rightmost ink or advance. */
static double extent(cairo_t *cr, const char *s, size_t n, const char *tail, char *scratch) {
  memcpy(scratch, s, n);
  strcpy(scratch + n, tail);
  cairo_text_extents_t t;
  cairo_text_extents(cr, scratch, &t);
  return fmax(t.x_advance, t.x_bearing + t.width) - fmin(0.0, t.x_bearing);
}

static size_t next_char(const char *s, size_t i) {
  i++;
  while (((unsigned char)s[i] & 0xc0) == 0x80) i++;
  return i;
}

/* The end of the line that starts at s[pos] (not a space): as many whole
 * words as fit in 'width', or, if the first word alone is too wide, as
 * many of its characters as fit (at least one). Trailing spaces excluded. */
static size_t line_end(cairo_t *cr, const char *s, size_t pos, double width, char *scratch) {
  size_t end = pos, e = pos;
  while (s[e]) {
    size_t w = e;
    while (s[w] == ' ') w++;
    size_t we = w;
    while (s[we] && s[we] != ' ') we++;
    if (extent(cr, s + pos, we - pos, "", scratch) > width) break;
    end = e = we;
  }
  if (end > pos) return end;
  end = next_char(s, pos); /* the first word is too wide: break it */
  while (s[end] && s[end] != ' ') {
    size_t c = next_char(s, end);
    if (extent(cr, s + pos, c - pos, "", scratch) > width) break;
    end = c;
  }
  return end;
}

static size_t skip_spaces(const char *s, size_t i) {
  while (s[i] == ' ') i++;
  return i;
}

/* The longest prefix of s (cut between characters, trailing spaces
 * dropped) that fits in 'width' with an ellipsis after it; may be empty. */
static size_t ellipsis_cut(cairo_t *cr, const char *s, double width, char *scratch) {
  size_t best = 0;
  for (size_t i = 0; s[i];) {
    i = next_char(s, i);
    size_t k = i;
    while (k > 0 && s[k - 1] == ' ') k--;
    if (extent(cr, s, k, ELLIPSIS, scratch) > width) break;
    best = k;
  }
  return best;
}

static int add_line(RtCaptionFit *fit, const char *s, size_t n, bool ellipsis) {
  char *l = malloc(n + sizeof ELLIPSIS);
  if (!l) return -1;
  memcpy(l, s, n);
  strcpy(l + n, ellipsis ? ELLIPSIS : "");
  fit->line[fit->lines++] = l;
  return 0;
}

/* Sets 'text' at fit->size in at most max_lines lines; 0 when it all fit,
 * 1 when not (fit then holds nothing), -1 out of memory. With 'force' the
 * last line takes the rest, cut with an ellipsis. */
static int set_lines(cairo_t *cr, const char *text, double width, int max_lines, bool force, RtCaptionFit *fit,
                     char *scratch) {
  size_t pos = 0;
  while (text[pos]) {
    if (fit->lines == max_lines - 1 && force) {
      size_t end = line_end(cr, text, pos, width, scratch);
      if (!text[skip_spaces(text, end)]) return add_line(fit, text + pos, end - pos, false);
      fit->ellipsis = true;
      return add_line(fit, text + pos, ellipsis_cut(cr, text + pos, width, scratch), true);
    }
    if (fit->lines == max_lines) {
      rt_caption_fit_free(fit);
      return 1;
    }
    size_t end = line_end(cr, text, pos, width, scratch);
    if (add_line(fit, text + pos, end - pos, false) != 0) return -1;
    pos = skip_spaces(text, end);
  }
  return 0;
}

int rt_caption_fit_cr(cairo_t *cr, const char *caption, int width, int height, RtCaptionFit *fit, RtErr *e) {
  *fit = (RtCaptionFit){.size = RT_CAPTION_PX};
  char *text = clean_copy(caption);
  char *scratch = text ? malloc(strlen(text) + sizeof ELLIPSIS) : NULL;
  int rc = text && scratch ? 0 : -1;
  double w = width < 1 ? 1 : width;
  for (double size = RT_CAPTION_PX; rc == 0 && text[0] && size >= RT_CAPTION_MIN_PX; size -= 1) {
    int max_lines = (int)floor(height / (size * RT_CAPTION_LINE));
    max_lines = max_lines < 1 ? 1 : max_lines > RT_CAPTION_MAX_LINES ? RT_CAPTION_MAX_LINES : max_lines;
    rt_caption_font(cr, size);
    fit->size = size;
    rc = set_lines(cr, text, w, max_lines, size - 1 < RT_CAPTION_MIN_PX, fit, scratch);
    if (rc != 1) break;
    rc = 0; /* did not fit: one pixel smaller */
  }
  free(scratch);
  free(text);
  if (rc != 0) {
    rt_caption_fit_free(fit);
    return rt_err(e, "caption: out of memory");
  }
  if (cairo_status(cr) != CAIRO_STATUS_SUCCESS) {
    rt_caption_fit_free(fit);
    return rt_err(e, "caption: cairo: %s", cairo_status_to_string(cairo_status(cr)));
  }
  return 0;
}

int rt_caption_fit(const char *caption, int width, RtCaptionFit *fit, RtErr *e) {
  cairo_surface_t *s = cairo_image_surface_create(CAIRO_FORMAT_RGB24, 1, 1);
  cairo_t *cr = cairo_create(s);
  int rc = rt_caption_fit_cr(cr, caption, width, rt_caption_text_height(), fit, e);
  cairo_destroy(cr);
  cairo_surface_destroy(s);
  return rc;
}

void rt_caption_fit_free(RtCaptionFit *fit) {
  for (int i = 0; i < fit->lines; i++) free(fit->line[i]);
  *fit = (RtCaptionFit){.size = fit->size};
}
