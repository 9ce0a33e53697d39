/* program.h — what a loaded program holds (the FeProgram of frontend.h),
 * shared by the loader (load.c) and the public API (program.c).
 *
 * Prefix: fe_.
 */
#ifndef DAL_FRONTEND_PROGRAM_H
#define DAL_FRONTEND_PROGRAM_H

#include "frontend/arena.h"
#include "frontend/ast.h"
#include "frontend/eval.h"
#include "frontend/frontend.h"

/* One loaded source file. */
typedef struct {
  const char *name; /* as shown in diagnostics (relative to the importer) */
  const char *real; /* canonical path, to recognise a file imported twice */
  const char *text;
} FeFile;

struct FeProgram {
  FeArena arena;       /* AST, names, texts and global values */
  FeFile *files;
  int nfiles;
  AstItem **items;     /* every file's configs, lets and defs in load order
                          (an import's items where the import stands) */
  int nitems;
  AstConfig **configs;
  int nconfigs;
  int selected;        /* index into configs; -1 if there are none */
  AstDef **entries;    /* @train and @infer functions, in load order */
  int nentries;
  const char **const_name; /* the selected config's constants, for fe_constant_* */
  Value *const_value;
  int nconst;
  EvGlobals globals;
  const FeProgram *parent; /* the program that imported this one as a module, or NULL */
  FeProgram **modules;     /* the modules it imports (`import "f.dal" as m`), in load order */
  int nmodules;
};

/* Loads 'path' (with 'text' as its contents, or read from disk if NULL) and
 * everything it imports into p: files, items, configs and entries. Checks
 * imports (missing files, cycles), duplicate definitions and the entries'
 * signatures. False with *err set on error. */
bool fe_load_sources(FeProgram *p, const char *path, const char *text, char **err);

#endif
