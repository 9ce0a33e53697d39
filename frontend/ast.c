/* ast.c — AST constructors and the S-expression printer (see ast.h). */
#include "frontend/ast.h"

#include <stdio.h>
#include <string.h>

static const char *const op_text[] = {
    [AST_ADD] = "+",   [AST_SUB] = "-",  [AST_MUL] = "*",  [AST_DIV] = "/",  [AST_IDIV] = "//",
    [AST_MOD] = "%",   [AST_MATMUL] = "@", [AST_POW] = "**", [AST_EQ] = "==", [AST_NE] = "!=",
    [AST_LT] = "<",    [AST_LE] = "<=",  [AST_GT] = ">",   [AST_GE] = ">=",  [AST_AND] = "and",
    [AST_OR] = "or",   [AST_NEG] = "-",  [AST_POS] = "+",  [AST_NOT] = "not",
};

const char *ast_op_text(AstOp op) { return op_text[op]; }

AstExpr *ast_expr(FeArena *a, AstExprKind kind, SrcLoc loc) {
  AstExpr *e = fe_arena_alloc(a, sizeof *e);
  e->kind = kind;
  e->loc = loc;
  e->depth = 1;
  return e;
}

AstExpr *ast_binary(FeArena *a, AstOp op, AstExpr *l, AstExpr *r, SrcLoc loc) {
  AstExpr *e = ast_expr(a, EX_BINARY, loc);
  e->op.op = op;
  e->op.a = l;
  e->op.b = r;
  ast_set_depth(e);
  return e;
}

AstExpr *ast_unary(FeArena *a, AstOp op, AstExpr *x, SrcLoc loc) {
  AstExpr *e = ast_expr(a, EX_UNARY, loc);
  e->op.op = op;
  e->op.a = x;
  ast_set_depth(e);
  return e;
}

AstStmt *ast_stmt(FeArena *a, AstStmtKind kind, SrcLoc loc) {
  AstStmt *s = fe_arena_alloc(a, sizeof *s);
  s->kind = kind;
  s->loc = loc;
  return s;
}

static int deeper(int d, const AstExpr *e) { return e && e->depth > d ? e->depth : d; }

void ast_set_depth(AstExpr *e) {
  int d = 0;
  switch (e->kind) {
  case EX_LIST:
    for (int i = 0; i < e->list.n; i++) d = deeper(d, e->list.v[i]);
    break;
  case EX_UNARY:
  case EX_BINARY: d = deeper(deeper(d, e->op.a), e->op.b); break;
  case EX_CALL:
    d = deeper(d, e->call.fn);
    for (int i = 0; i < e->call.args.n; i++) d = deeper(d, e->call.args.v[i].value);
    break;
  case EX_INDEX:
    d = deeper(d, e->index.x);
    for (int i = 0; i < e->index.idx.n; i++) d = deeper(deeper(d, e->index.idx.v[i].lo), e->index.idx.v[i].hi);
    break;
  case EX_ATTR: d = deeper(d, e->attr.x); break;
  default: break;
  }
  e->depth = d + 1;
}

/* ---- printer ---- */

static void dump_expr(FeBuf *b, const AstExpr *e);
static void dump_block(FeBuf *b, const AstBlock *blk);
static void dump_path(FeBuf *b, const AstPath *p);

/* A float prints with a '.' or an exponent so it never reads as an int. */
static void dump_float(FeBuf *b, double v) {
  char t[64];
  snprintf(t, sizeof t, "%g", v);
  fe_buf_puts(b, t);
  if (!strpbrk(t, ".eni")) fe_buf_puts(b, ".0");
}

static void dump_index(FeBuf *b, const AstIndex *ix) {
  if (!ix->slice) {
    dump_expr(b, ix->lo);
    return;
  }
  if (ix->lo) dump_expr(b, ix->lo);
  fe_buf_puts(b, ":");
  if (ix->hi) dump_expr(b, ix->hi);
}

static void dump_expr(FeBuf *b, const AstExpr *e) {
  switch (e->kind) {
  case EX_INT: fe_buf_printf(b, "%lld", (long long)e->ival); break;
  case EX_FLOAT: dump_float(b, e->fval); break;
  case EX_BOOL: fe_buf_puts(b, e->bval ? "true" : "false"); break;
  case EX_STR: fe_buf_printf(b, "\"%s\"", e->str); break;
  case EX_NAME: fe_buf_puts(b, e->str); break;
  case EX_LIST:
    fe_buf_puts(b, "[");
    for (int i = 0; i < e->list.n; i++) {
      if (i) fe_buf_puts(b, " ");
      dump_expr(b, e->list.v[i]);
    }
    fe_buf_puts(b, "]");
    break;
  case EX_UNARY:
    fe_buf_printf(b, "(%s ", ast_op_text(e->op.op));
    dump_expr(b, e->op.a);
    fe_buf_puts(b, ")");
    break;
  case EX_BINARY:
    fe_buf_printf(b, "(%s ", ast_op_text(e->op.op));
    dump_expr(b, e->op.a);
    fe_buf_puts(b, " ");
    dump_expr(b, e->op.b);
    fe_buf_puts(b, ")");
    break;
  case EX_CALL:
    fe_buf_puts(b, "(call ");
    dump_expr(b, e->call.fn);
    for (int i = 0; i < e->call.args.n; i++) {
      const AstArg *a = &e->call.args.v[i];
      fe_buf_puts(b, " ");
      if (a->name) fe_buf_printf(b, "%s=", a->name);
      dump_expr(b, a->value);
    }
    fe_buf_puts(b, ")");
    break;
  case EX_INDEX:
    fe_buf_puts(b, "(index ");
    dump_expr(b, e->index.x);
    for (int i = 0; i < e->index.idx.n; i++) {
      fe_buf_puts(b, " ");
      dump_index(b, &e->index.idx.v[i]);
    }
    fe_buf_puts(b, ")");
    break;
  case EX_ATTR:
    fe_buf_puts(b, "(. ");
    dump_expr(b, e->attr.x);
    fe_buf_printf(b, " %s)", e->attr.name);
    break;
  case EX_WITH:
    fe_buf_puts(b, "(with ");
    dump_path(b, &e->with.path);
    fe_buf_puts(b, " ");
    dump_block(b, &e->with.body);
    fe_buf_puts(b, ")");
    break;
  }
}

static void dump_type(FeBuf *b, const AstType *t) {
  if (t->kind == TY_INT) {
    fe_buf_puts(b, "int");
    return;
  }
  if (t->kind == TY_FLOAT) {
    fe_buf_puts(b, "float");
    return;
  }
  fe_buf_puts(b, t->dtype == IR_F32 ? "f32" : "i32");
  if (!t->dim.n) return;
  fe_buf_puts(b, "[");
  for (int i = 0; i < t->dim.n; i++) {
    if (i) fe_buf_puts(b, ",");
    dump_expr(b, t->dim.v[i]);
  }
  fe_buf_puts(b, "]");
}

static void dump_stmt(FeBuf *b, const AstStmt *s);

static void dump_block(FeBuf *b, const AstBlock *blk) {
  fe_buf_puts(b, "(block");
  for (int i = 0; i < blk->n; i++) {
    fe_buf_puts(b, " ");
    dump_stmt(b, blk->v[i]);
  }
  fe_buf_puts(b, ")");
}

static void dump_path(FeBuf *b, const AstPath *p) {
  for (int i = 0; i < p->n; i++) {
    if (p->v[i].name) {
      fe_buf_printf(b, "%s%s", i ? "." : "", p->v[i].name);
    } else {
      fe_buf_puts(b, "[");
      dump_expr(b, p->v[i].index);
      fe_buf_puts(b, "]");
    }
  }
}

static void dump_stmt(FeBuf *b, const AstStmt *s) {
  switch (s->kind) {
  case ST_ASSIGN:
    fe_buf_printf(b, "(= %s ", s->name);
    dump_expr(b, s->a);
    break;
  case ST_AUG:
    fe_buf_printf(b, "(%s= %s ", ast_op_text(s->op), s->name);
    dump_expr(b, s->a);
    break;
  case ST_PARAM:
    fe_buf_printf(b, "(param %s ", s->name);
    dump_expr(b, s->a);
    fe_buf_puts(b, " ");
    dump_expr(b, s->b);
    break;
  case ST_STATE:
    fe_buf_printf(b, "(state %s ", s->name);
    dump_expr(b, s->a);
    break;
  case ST_RETURN:
    fe_buf_puts(b, "(return ");
    dump_expr(b, s->a);
    break;
  case ST_FOR:
    fe_buf_printf(b, "(for %s ", s->name);
    dump_expr(b, s->a);
    if (s->b) {
      fe_buf_puts(b, " ");
      dump_expr(b, s->b);
    }
    fe_buf_puts(b, " ");
    dump_block(b, &s->body);
    break;
  case ST_IF:
    fe_buf_puts(b, "(if ");
    dump_expr(b, s->a);
    fe_buf_puts(b, " ");
    dump_block(b, &s->body);
    if (s->orelse.n) {
      fe_buf_puts(b, " ");
      dump_block(b, &s->orelse);
    }
    break;
  case ST_WITH:
    fe_buf_puts(b, "(with ");
    dump_path(b, &s->path);
    fe_buf_puts(b, " ");
    dump_block(b, &s->body);
    break;
  case ST_EXPR:
    fe_buf_puts(b, "(expr ");
    dump_expr(b, s->a);
    break;
  case ST_UNPACK:
    fe_buf_puts(b, "(= (");
    for (int i = 0; i < s->targets.n; i++) fe_buf_printf(b, "%s%s", i ? " " : "", s->targets.v[i].name);
    fe_buf_puts(b, ") ");
    dump_expr(b, s->a);
    break;
  }
  fe_buf_puts(b, ")");
}

static void dump_def(FeBuf *b, const AstDef *d) {
  fe_buf_puts(b, "(def ");
  if (d->kind != DEF_PLAIN) fe_buf_puts(b, d->kind == DEF_TRAIN ? "@train " : "@infer ");
  fe_buf_printf(b, "%s (", d->name);
  for (int i = 0; i < d->params.n; i++) {
    const AstParam *p = &d->params.v[i];
    fe_buf_printf(b, "%s%s", i ? " " : "", p->name);
    if (p->type) {
      fe_buf_puts(b, ":");
      dump_type(b, p->type);
    }
    if (p->dflt) {
      fe_buf_puts(b, "=");
      dump_expr(b, p->dflt);
    }
  }
  fe_buf_puts(b, ")");
  if (d->ret) {
    fe_buf_puts(b, " -> ");
    dump_type(b, d->ret);
  }
  fe_buf_puts(b, " ");
  dump_block(b, &d->body);
  fe_buf_puts(b, ")");
}

char *ast_dump(const AstFile *f) {
  FeBuf b = {0};
  for (int i = 0; i < f->items.n; i++) {
    const AstItem *it = f->items.v[i];
    switch (it->kind) {
    case ITEM_IMPORT:
      if (it->alias)
        fe_buf_printf(&b, "(import \"%s\" as %s)", it->import, it->alias);
      else
        fe_buf_printf(&b, "(import \"%s\")", it->import);
      break;
    case ITEM_CONFIG:
      fe_buf_printf(&b, "(config %s", it->config->name);
      for (int k = 0; k < it->config->keys.n; k++) {
        fe_buf_printf(&b, " (%s ", it->config->keys.v[k].name);
        dump_expr(&b, it->config->keys.v[k].value);
        fe_buf_puts(&b, ")");
      }
      fe_buf_puts(&b, ")");
      break;
    case ITEM_LET:
      fe_buf_printf(&b, "(let %s ", it->let->name);
      dump_expr(&b, it->let->value);
      fe_buf_puts(&b, ")");
      break;
    case ITEM_DEF: dump_def(&b, it->def); break;
    }
    fe_buf_puts(&b, "\n");
  }
  return fe_buf_take(&b);
}

char *ast_dump_expr(const AstExpr *e) {
  FeBuf b = {0};
  dump_expr(&b, e);
  return fe_buf_take(&b);
}
