/* frontend.h — dal's frontend: .dal source in, traced IR graphs out.
 *
 * fe_load_file / fe_load_string parse a file and its imports, check the
 * definitions, pick a configuration and evaluate its constants and the
 * global lets. fe_lower_entry then traces one entry function (@train or
 * @infer) into a fresh IrGraph (see docs/language.md for the language).
 *
 * Lifetimes. File names are interned for the life of the FeProgram: every
 * SrcLoc.file in the AST and in the graphs that fe_lower_entry builds points
 * into the program, and the program also keeps each file's text so that
 * fe_format_diag can show the source line. So an IrGraph may outlive its
 * program only if nobody reads its node locations afterwards; free the
 * program last. The functions are not thread-safe with respect to one
 * program; separate programs may be used from separate threads.
 *
 * Errors. Every user error (syntax, names, types, shapes, configs, imports)
 * makes the call return NULL and sets *err to a malloc'd diagnostic:
 *
 *   file:line:col: error: message
 *       the source line
 *           ^
 *     in call to NAME at file:line:col        (one per enclosing call)
 *
 * The caller frees *err. Nothing here exits or aborts on bad input.
 *
 * Module prefix: fe_.
 */
#ifndef DAL_FRONTEND_H
#define DAL_FRONTEND_H

#include <stdbool.h>
#include <stdint.h>

#include "ir/ir.h"

typedef struct FeProgram FeProgram;

typedef struct {
  const char *config; /* NULL: first config in the file */
  int64_t batch;      /* > 0 overrides the config's `batch` */
} FeOptions;

/* Parse and check a file and its imports and evaluate the config and global
 * lets. 'opt' may be NULL (first config, its own batch). On error: NULL, and
 * *err = malloc'd diagnostic text (file:line:col: error: ..., source line,
 * caret). */
FeProgram *fe_load_file(const char *path, const FeOptions *opt, char **err);
/* The same for source text in memory; 'filename' names it in diagnostics and
 * is the base for its imports (relative to its directory, or to the current
 * directory if it has none). */
FeProgram *fe_load_string(const char *filename, const char *source, const FeOptions *opt, char **err);
void fe_free(FeProgram *p);

int fe_config_count(const FeProgram *p);
const char *fe_config_name(const FeProgram *p, int i);
/* The selected config's name, or "" if the file defines none. */
const char *fe_config_selected(const FeProgram *p);

/* The selected config's constants, for `dalc info` (name, value as text):
 * its keys in order (`batch` with the --batch override applied), then `B`
 * if the batch size is known. */
int fe_constant_count(const FeProgram *p);
const char *fe_constant_name(const FeProgram *p, int i);
char *fe_constant_value(const FeProgram *p, int i); /* malloc'd */

/* Entry functions (@train / @infer), in the order they are defined (an
 * imported file's definitions come where its import stands). */
/* The numeric value of a global constant (a key of the selected config or a
 * global let) called 'name': true and *out set if it exists and is a
 * number (or a boolean, as 0/1), else false. Used for settings a model
 * declares, such as its learning rate and optimizer constants. */
bool fe_global_number(const FeProgram *p, const char *name, double *out);

/* A fingerprint of the program's source: "fnv1a64:" and 16 hex digits of
 * the FNV-1a hash of every file's text it loaded (imports and modules
 * included, in load order). Model files record it (runtime/io/checkpoint.h).
 * The string lives as long as p. */
const char *fe_source_hash(FeProgram *p);

int fe_entry_count(const FeProgram *p);
const char *fe_entry_name(const FeProgram *p, int i);
bool fe_entry_is_train(const FeProgram *p, int i);
int fe_entry_find(const FeProgram *p, const char *name); /* -1 if none */

/* Trace entry i into a new graph (g->name, g->train set; inputs in
 * signature order; one output named after the entry). NULL + *err on error.
 * The caller frees the graph with ir_graph_free. */
IrGraph *fe_lower_entry(FeProgram *p, int i, char **err);

/* Format a diagnostic for any location (used by later passes too):
 * "file:line:col: error: message\n" then the source line and a caret, if
 * the file's text is known (a live program's file, or readable from disk).
 * With line 0 it is "file: error: message\n"; with no file "error: ...".
 * malloc'd. */
char *fe_format_diag(SrcLoc loc, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
