/* parse.h — the parser's entry point, and the state that the flex lexer
 * (lexer.l) and the bison parser (parser.y) share through the scanner's
 * extra data and the parser's parameter.
 *
 * Prefixes: parse_ (parser), lex_ (lexer helpers).
 */
#ifndef DAL_FRONTEND_PARSE_H
#define DAL_FRONTEND_PARSE_H

#include <stdbool.h>

#include "frontend/arena.h"
#include "frontend/ast.h"

typedef struct {
  FeArena *arena;   /* where the AST goes */
  const char *file; /* interned name, for every SrcLoc */
  int line, col;    /* position of the next character, 1-based */
  int depth;        /* open '(' and '[': newlines inside them are spaces */
  SrcLoc open[32];  /* where the outermost 32 of them were opened */
  char open_char[32]; /* and which bracket each is */
  const char *last_name; /* text of the last name token, for messages */
  bool can_end;     /* the last token can end a statement (Go's rule) */
  bool newline_term; /* the last statement terminator was a newline, not ';' */
  AstFile *result;
  char *error;      /* malloc'd diagnostic once something failed */
} ParseState;

/* Parses 'text', the contents of 'file' (an interned name). Returns the AST,
 * allocated in 'arena', or NULL with *err set to a malloc'd diagnostic. The
 * text must be registered with fe_diag_register for the diagnostic to show
 * the source line. */
AstFile *parse_source(FeArena *arena, const char *file, const char *text, char **err);

/* Records the first error (later ones are consequences). */
void parse_error(ParseState *ps, SrcLoc loc, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

#endif
