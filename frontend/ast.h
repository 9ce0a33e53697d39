/* ast.h — the syntax tree of a .dal file.
 *
 * Every node carries the SrcLoc of its first token (binary and unary
 * operators: of the operator; indexing: of the '['), with the file name
 * interned by the loader. Nodes, arrays and strings all live in the
 * program's arena and are never freed one by one.
 *
 * Prefix: ast_.
 */
#ifndef DAL_FRONTEND_AST_H
#define DAL_FRONTEND_AST_H

#include <stdbool.h>
#include <stdint.h>

#include "frontend/arena.h"
#include "ir/ir.h"

/* Operators, binary then unary. */
typedef enum {
  AST_ADD, AST_SUB, AST_MUL, AST_DIV, AST_IDIV, AST_MOD, AST_MATMUL, AST_POW,
  AST_EQ, AST_NE, AST_LT, AST_LE, AST_GT, AST_GE,
  AST_AND, AST_OR,
  AST_NEG, AST_POS, AST_NOT
} AstOp;

/* The operator as written in source ("+", "//", "not", ...). */
const char *ast_op_text(AstOp op);

typedef struct AstExpr AstExpr;
typedef struct AstStmt AstStmt;

typedef struct {
  AstExpr **v;
  int n;
} AstExprVec;

/* One call argument; 'name' is NULL for a positional one. */
typedef struct {
  const char *name;
  AstExpr *value;
  SrcLoc loc;
} AstArg;

typedef struct {
  AstArg *v;
  int n;
} AstArgVec;

/* One index inside x[...]: a plain index (lo) or a slice lo:hi, where
 * either bound may be NULL. */
typedef struct {
  bool slice;
  AstExpr *lo, *hi;
  SrcLoc loc;
} AstIndex;

typedef struct {
  AstIndex *v;
  int n;
} AstIndexVec;

typedef struct {
  AstStmt **v;
  int n;
} AstBlock;

/* One step of a `with` path: '.name' or '[index]'. */
typedef struct {
  const char *name; /* NULL for an index */
  AstExpr *index;
  SrcLoc loc;
} AstPathPart;

typedef struct {
  AstPathPart *v;
  int n;
} AstPath;

typedef enum {
  EX_INT, EX_FLOAT, EX_BOOL, EX_STR, EX_NAME, EX_LIST,
  EX_UNARY, EX_BINARY, EX_CALL, EX_INDEX, EX_ATTR, EX_WITH
} AstExprKind;

/* Expressions nest at most FE_MAX_EXPR_DEPTH deep (frontend/fe_limits.h: the
 * parser refuses deeper ones), so everything that walks them recursively
 * has bounded depth. */

struct AstExpr {
  AstExprKind kind;
  SrcLoc loc;
  int depth; /* 1 for a leaf, else 1 + the deepest child */
  union {
    int64_t ival;    /* EX_INT */
    double fval;     /* EX_FLOAT */
    bool bval;       /* EX_BOOL */
    const char *str; /* EX_STR: the text; EX_NAME: the name */
    AstExprVec list; /* EX_LIST */
    struct {
      AstOp op;
      AstExpr *a, *b; /* EX_UNARY: b is NULL */
    } op;
    struct {
      AstExpr *fn;
      AstArgVec args;
    } call;
    struct {
      AstExpr *x;
      AstIndexVec idx;
    } index;
    struct {
      AstExpr *x;       /* a module */
      const char *name; /* one of its definitions */
    } attr;             /* EX_ATTR: x.name */
    struct {
      AstPath path;
      AstBlock body;    /* its last statement gives the value */
    } with;             /* EX_WITH: `with path { ...; value }` as an expression */
  };
};

/* int, float, or a tensor type f32[d0, d1, ...] / i32[...] (no dims: a
 * rank-0 tensor). */
typedef enum { TY_INT, TY_FLOAT, TY_TENSOR } AstTypeKind;

typedef struct {
  AstTypeKind kind;
  IrDType dtype;  /* TY_TENSOR */
  AstExprVec dim; /* TY_TENSOR: one expression per dimension */
  SrcLoc loc;
} AstType;

typedef enum {
  ST_ASSIGN, /* name = a */
  ST_AUG,    /* name op= a (op is AST_ADD, AST_SUB or AST_MUL) */
  ST_PARAM,  /* param name: a (shape) = b (initialiser call) */
  ST_STATE,  /* state name: a (shape) */
  ST_RETURN, /* return a */
  ST_FOR,    /* for name in a..b body; b NULL: for name in a (a list) body */
  ST_IF,     /* if a body else orelse (orelse may hold one ST_IF: else if) */
  ST_WITH,   /* with path body */
  ST_EXPR,   /* a, evaluated for its effects */
  ST_UNPACK  /* targets = a (a list with one element per target) */
} AstStmtKind;

/* One name on the left of `a, b = ...`. */
typedef struct {
  const char *name;
  SrcLoc loc;
} AstTarget;

typedef struct {
  AstTarget *v;
  int n;
} AstTargetVec;

struct AstStmt {
  AstStmtKind kind;
  SrcLoc loc;
  const char *name;
  AstOp op;
  AstExpr *a, *b;
  AstBlock body, orelse;
  AstPath path;
  AstTargetVec targets; /* ST_UNPACK */
};

/* A function parameter: name [: type] [= default]. */
typedef struct {
  const char *name;
  AstType *type;    /* NULL: untyped */
  AstExpr *dflt;    /* NULL: required */
  SrcLoc loc;
} AstParam;

typedef struct {
  AstParam *v;
  int n;
} AstParamVec;

typedef enum { DEF_PLAIN, DEF_TRAIN, DEF_INFER } AstDefKind;

struct EvGlobals;

typedef struct {
  const char *name;
  SrcLoc loc; /* of the name */
  AstDefKind kind;
  AstParamVec params;
  AstType *ret; /* NULL: not declared */
  AstBlock body;
  struct EvGlobals *globals; /* the names it sees: its program's (set by the loader) */
} AstDef;

/* `NAME = expr` in a config block, or `let NAME = expr`. */
typedef struct {
  const char *name;
  AstExpr *value;
  SrcLoc loc; /* of the name */
} AstBinding;

typedef struct {
  AstBinding *v;
  int n;
} AstBindingVec;

typedef struct {
  const char *name;
  SrcLoc loc; /* of the name */
  AstBindingVec keys;
} AstConfig;

typedef enum { ITEM_IMPORT, ITEM_CONFIG, ITEM_LET, ITEM_DEF } AstItemKind;

typedef struct {
  AstItemKind kind;
  SrcLoc loc;
  const char *alias; /* ITEM_IMPORT: `import "path" as NAME` (a module), else NULL */
  const char *module_path; /* a module's path resolved against its importer (set by the loader) */
  union {
    const char *import; /* the path as written */
    AstConfig *config;
    AstBinding *let;
    AstDef *def;
  };
} AstItem;

typedef struct {
  AstItem **v;
  int n;
} AstItemVec;

typedef struct {
  const char *file;
  AstItemVec items;
} AstFile;

/* ---- constructors (ast.c); everything is allocated in 'a' ---- */
AstExpr *ast_expr(FeArena *a, AstExprKind kind, SrcLoc loc);
AstExpr *ast_binary(FeArena *a, AstOp op, AstExpr *l, AstExpr *r, SrcLoc loc);
AstExpr *ast_unary(FeArena *a, AstOp op, AstExpr *x, SrcLoc loc);
AstStmt *ast_stmt(FeArena *a, AstStmtKind kind, SrcLoc loc);
/* Sets e->depth from its children's depths (for calls, indexing, lists). */
void ast_set_depth(AstExpr *e);

/* ---- debug printing (ast.c) ----
 * The tree as S-expressions, one item per line, e.g.
 *   (def f (x:f32[B,d] n=3) -> f32 (block (= y (+ x 1)) (return y)))
 * Used by the parser tests and for debugging. malloc'd. */
char *ast_dump(const AstFile *f);
/* One expression in the same notation. malloc'd. */
char *ast_dump_expr(const AstExpr *e);

#endif
