/* parser.y — the .dal grammar (bison, pure, with locations).
 *
 * Builds the AST of ast.h in the ParseState's arena. The grammar rule is in
 * a comment above each group of actions (docs/language.md has the same
 * grammar in prose). TERM is a statement terminator: ';' or a newline that
 * the lexer turned into one (see lexer.l). Syntax errors are reported by
 * yyreport_syntax_error below as "syntax error: unexpected X, expected Y";
 * the parser stops at the first error.
 */
%require "3.8"
%define api.pure full
%locations
%define parse.error custom
%define parse.lac full

%code top {
/* The parser's stack bounds the nesting of brackets and blocks. */
#include "frontend/fe_limits.h"
#define YYMAXDEPTH FE_MAX_PARSE_DEPTH
}
%param {yyscan_t scanner}
%parse-param {ParseState *ps}

%code requires {
#include "frontend/parse.h"
#ifndef YY_TYPEDEF_YY_SCANNER_T
#define YY_TYPEDEF_YY_SCANNER_T
typedef void *yyscan_t;
#endif
}

%code {
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "frontend/diag.h"
#include "frontend/frontend.h"
#include "lexer.h"

static void yyerror(YYLTYPE *loc, yyscan_t scanner, ParseState *ps, const char *msg);

/* The SrcLoc of a bison location. */
#define LOC(l) ((SrcLoc){ps->file, (l).first_line, (l).first_column})
#define A (ps->arena)

/* Sets e's depth; false after an error if it nests too deeply to be
 * evaluated safely. */
static bool nested(ParseState *ps, AstExpr *e);

/* The type named 'name' ("int", "float", "f32", "i32"); NULL after an error. */
static AstType *make_type(ParseState *ps, const char *name, SrcLoc loc, AstExprVec dims, bool has_dims);
}

%union {
  int64_t i;
  double f;
  const char *s;
  AstExpr *e;
  AstExprVec ev;
  AstArg arg;
  AstArgVec av;
  AstIndex ix;
  AstIndexVec iv;
  AstStmt *st;
  AstBlock blk;
  AstPath path;
  AstTargetVec tv;
  AstType *ty;
  AstParam par;
  AstParamVec pv;
  AstDef *def;
  AstBinding bind;
  AstBindingVec bv;
  AstItem *item;
  AstItemVec items;
  AstDefKind dk;
}

%token <s> NAME "name" STRING "string" DECORATOR "decorator"
%token <i> INT "integer"
%token <f> FLOAT "float"
%token IMPORT "'import'" AS "'as'" STATE "'state'" CONFIG "'config'" LET "'let'" DEF "'def'" PARAM "'param'"
%token RETURN "'return'" FOR "'for'" IN "'in'" IF "'if'" ELSE "'else'" WITH "'with'"
%token AND "'and'" OR "'or'" NOT "'not'" TRUE "'true'" FALSE "'false'"
%token ARROW "'->'" DOTDOT "'..'" PLUSEQ "'+='" MINUSEQ "'-='" STAREQ "'*='"
%token EQ "'=='" NE "'!='" LE "'<='" GE "'>='" IDIV "'//'" POW "'**'"
%token TERM "end of statement"

%type <e> expr postfix primary opt_default
%type <ev> exprs expr_list
%type <arg> arg
%type <av> args arg_list
%type <ix> index
%type <iv> indices
%type <st> stmt opt_stmt if_stmt
%type <blk> block stmt_list
%type <path> path
%type <tv> targets
%type <ty> type opt_type ret
%type <par> param
%type <pv> params param_list
%type <def> def
%type <bind> opt_binding
%type <bv> binding_list
%type <item> item opt_item
%type <items> item_list
%type <dk> decorator

%left OR
%left AND
%precedence NOT
%nonassoc EQ NE '<' LE '>' GE
%left '+' '-'
%left '*' '/' IDIV '%' '@'
%precedence UNARY
%right POW

%%

/* file = item { TERM item }     (empty items allowed) */
file
  : item_list                         { ps->result->items = $1; }
  ;

item_list
  : opt_item                          { $$ = (AstItemVec){0}; if ($1) FE_PUSH(A, $$.v, $$.n, $1); }
  | item_list TERM opt_item           { $$ = $1; if ($3) FE_PUSH(A, $$.v, $$.n, $3); }
  ;

opt_item
  : %empty                            { $$ = NULL; }
  | item                              { $$ = $1; }
  ;

/* item = "import" STRING [ "as" NAME ] | "config" NAME "{" bindings "}" | "let" NAME "=" expr | def */
item
  : IMPORT STRING                     {
      $$ = fe_arena_alloc(A, sizeof *$$);
      *$$ = (AstItem){.kind = ITEM_IMPORT, .loc = LOC(@1), .import = $2};
    }
  | IMPORT STRING AS NAME             {
      $$ = fe_arena_alloc(A, sizeof *$$);
      *$$ = (AstItem){.kind = ITEM_IMPORT, .loc = LOC(@1), .import = $2, .alias = $4};
    }
  | CONFIG NAME '{' binding_list '}'  {
      AstConfig *c = fe_arena_alloc(A, sizeof *c);
      *c = (AstConfig){.name = $2, .loc = LOC(@2), .keys = $4};
      $$ = fe_arena_alloc(A, sizeof *$$);
      *$$ = (AstItem){.kind = ITEM_CONFIG, .loc = LOC(@1), .config = c};
    }
  | LET NAME '=' expr                 {
      AstBinding *b = fe_arena_alloc(A, sizeof *b);
      *b = (AstBinding){.name = $2, .value = $4, .loc = LOC(@2)};
      $$ = fe_arena_alloc(A, sizeof *$$);
      *$$ = (AstItem){.kind = ITEM_LET, .loc = LOC(@1), .let = b};
    }
  | def                               {
      $$ = fe_arena_alloc(A, sizeof *$$);
      *$$ = (AstItem){.kind = ITEM_DEF, .loc = $1->loc, .def = $1};
    }
  ;

/* bindings = [ NAME "=" expr ] { TERM [ NAME "=" expr ] } */
binding_list
  : opt_binding                       { $$ = (AstBindingVec){0}; if ($1.name) FE_PUSH(A, $$.v, $$.n, $1); }
  | binding_list TERM opt_binding     { $$ = $1; if ($3.name) FE_PUSH(A, $$.v, $$.n, $3); }
  ;

opt_binding
  : %empty                            { $$ = (AstBinding){0}; }
  | NAME '=' expr                     { $$ = (AstBinding){.name = $1, .value = $3, .loc = LOC(@1)}; }
  ;

/* def = [ "@train" | "@infer" ] "def" NAME "(" [ params ] ")" [ "->" type ] block */
def
  : decorator DEF NAME '(' params ')' ret block {
      $$ = fe_arena_alloc(A, sizeof *$$);
      *$$ = (AstDef){.name = $3, .loc = LOC(@3), .kind = $1, .params = $5, .ret = $7, .body = $8};
    }
  ;

decorator
  : %empty                            { $$ = DEF_PLAIN; }
  | DECORATOR                         {
      if (strcmp($1, "train") == 0) $$ = DEF_TRAIN;
      else if (strcmp($1, "infer") == 0) $$ = DEF_INFER;
      else {
        parse_error(ps, LOC(@1), "unknown decorator '@%s' (expected @train or @infer)", $1);
        YYABORT;
      }
    }
  ;

/* params = param { "," param } [ "," ] */
params
  : %empty                            { $$ = (AstParamVec){0}; }
  | param_list                        { $$ = $1; }
  | param_list ','                    { $$ = $1; }
  ;

param_list
  : param                             { $$ = (AstParamVec){0}; FE_PUSH(A, $$.v, $$.n, $1); }
  | param_list ',' param              { $$ = $1; FE_PUSH(A, $$.v, $$.n, $3); }
  ;

/* param = NAME [ ":" type ] [ "=" expr ] */
param
  : NAME opt_type opt_default         { $$ = (AstParam){.name = $1, .type = $2, .dflt = $3, .loc = LOC(@1)}; }
  ;

opt_type
  : %empty                            { $$ = NULL; }
  | ':' type                          { $$ = $2; }
  ;

opt_default
  : %empty                            { $$ = NULL; }
  | '=' expr                          { $$ = $2; }
  ;

ret
  : %empty                            { $$ = NULL; }
  | ARROW type                        { $$ = $2; }
  ;

/* type = "int" | "float" | dtype [ "[" expr { "," expr } "]" ]      dtype = "f32" | "i32" */
type
  : NAME                              { if (!($$ = make_type(ps, $1, LOC(@1), (AstExprVec){0}, false))) YYABORT; }
  | NAME '[' expr_list ']'            { if (!($$ = make_type(ps, $1, LOC(@1), $3, true))) YYABORT; }
  ;

/* block = "{" stmt { TERM stmt } "}"     (empty statements allowed) */
block
  : '{' stmt_list '}'                 { $$ = $2; }
  ;

stmt_list
  : opt_stmt                          { $$ = (AstBlock){0}; if ($1) FE_PUSH(A, $$.v, $$.n, $1); }
  | stmt_list TERM opt_stmt           { $$ = $1; if ($3) FE_PUSH(A, $$.v, $$.n, $3); }
  ;

opt_stmt
  : %empty                            { $$ = NULL; }
  | stmt                              { $$ = $1; }
  ;

/* stmt = NAME "=" expr | NAME { "," NAME } "=" expr | NAME ("+=" | "-=" | "*=") expr */
stmt
  : NAME '=' expr                     { $$ = ast_stmt(A, ST_ASSIGN, LOC(@1)); $$->name = $1; $$->a = $3; }
  | targets '=' expr                  { $$ = ast_stmt(A, ST_UNPACK, $1.v[0].loc); $$->targets = $1; $$->a = $3; }
  | NAME PLUSEQ expr                  { $$ = ast_stmt(A, ST_AUG, LOC(@1)); $$->name = $1; $$->op = AST_ADD; $$->a = $3; }
  | NAME MINUSEQ expr                 { $$ = ast_stmt(A, ST_AUG, LOC(@1)); $$->name = $1; $$->op = AST_SUB; $$->a = $3; }
  | NAME STAREQ expr                  { $$ = ast_stmt(A, ST_AUG, LOC(@1)); $$->name = $1; $$->op = AST_MUL; $$->a = $3; }
/*      | "param" NAME ":" expr "=" expr       (shape, then the initialiser call) */
  | PARAM NAME ':' expr '=' expr      {
      $$ = ast_stmt(A, ST_PARAM, LOC(@1));
      $$->name = $2;
      $$->a = $4;
      $$->b = $6;
    }
/*      | "state" NAME ":" expr                (persistent, not trainable: its shape) */
  | STATE NAME ':' expr               { $$ = ast_stmt(A, ST_STATE, LOC(@1)); $$->name = $2; $$->a = $4; }
/*      | "return" expr */
  | RETURN expr                       { $$ = ast_stmt(A, ST_RETURN, LOC(@1)); $$->a = $2; }
/*      | "for" NAME "in" expr ".." expr block | "for" NAME "in" expr block */
  | FOR NAME IN expr DOTDOT expr block {
      $$ = ast_stmt(A, ST_FOR, LOC(@1));
      $$->name = $2;
      $$->a = $4;
      $$->b = $6;
      $$->body = $7;
    }
  | FOR NAME IN expr block            {
      $$ = ast_stmt(A, ST_FOR, LOC(@1));
      $$->name = $2;
      $$->a = $4;
      $$->body = $5;
    }
/*      | if_stmt | "with" path block | expr     (a `with` expression on its own is the statement) */
  | if_stmt                           { $$ = $1; }
  | expr                              {
      if ($1->kind == EX_WITH) {
        $$ = ast_stmt(A, ST_WITH, $1->loc);
        $$->path = $1->with.path;
        $$->body = $1->with.body;
      } else {
        $$ = ast_stmt(A, ST_EXPR, $1->loc);
        $$->a = $1;
      }
    }
  ;

/* targets = NAME "," NAME { "," NAME }      (the names of `a, b = expr`, each once) */
targets
  : NAME ',' NAME                     {
      if (strcmp($1, $3) == 0) {
        parse_error(ps, LOC(@3), "'%s' appears twice on the left of '='", $3);
        YYABORT;
      }
      $$ = (AstTargetVec){0};
      FE_PUSH(A, $$.v, $$.n, ((AstTarget){$1, LOC(@1)}));
      FE_PUSH(A, $$.v, $$.n, ((AstTarget){$3, LOC(@3)}));
    }
  | targets ',' NAME                  {
      for (int i = 0; i < $1.n; i++)
        if (strcmp($1.v[i].name, $3) == 0) {
          parse_error(ps, LOC(@3), "'%s' appears twice on the left of '='", $3);
          YYABORT;
        }
      $$ = $1;
      FE_PUSH(A, $$.v, $$.n, ((AstTarget){$3, LOC(@3)}));
    }
  ;

/* if_stmt = "if" expr block [ "else" ( block | if_stmt ) ] */
if_stmt
  : IF expr block                     { $$ = ast_stmt(A, ST_IF, LOC(@1)); $$->a = $2; $$->body = $3; }
  | IF expr block ELSE block          { $$ = ast_stmt(A, ST_IF, LOC(@1)); $$->a = $2; $$->body = $3; $$->orelse = $5; }
  | IF expr block ELSE if_stmt        {
      $$ = ast_stmt(A, ST_IF, LOC(@1));
      $$->a = $2;
      $$->body = $3;
      FE_PUSH(A, $$->orelse.v, $$->orelse.n, $5);
    }
  ;

/* path = NAME { "." NAME | "[" expr "]" } */
path
  : NAME                              { $$ = (AstPath){0}; FE_PUSH(A, $$.v, $$.n, ((AstPathPart){$1, NULL, LOC(@1)})); }
  | path '.' NAME                     { $$ = $1; FE_PUSH(A, $$.v, $$.n, ((AstPathPart){$3, NULL, LOC(@3)})); }
  | path '[' expr ']'                 { $$ = $1; FE_PUSH(A, $$.v, $$.n, ((AstPathPart){NULL, $3, LOC(@3)})); }
  ;

/* expr = expr ("or" | "and") expr | "not" expr | expr compare expr | expr ("+" | "-") expr
 *      | expr ("*" | "/" | "//" | "%" | "@") expr | ("-" | "+") expr | expr "**" expr | postfix
 * (precedence from loosest to tightest as listed; "**" is right-associative
 * and binds tighter than unary minus; comparisons do not chain) */
expr
  : expr OR expr                      { $$ = ast_binary(A, AST_OR, $1, $3, LOC(@2)); if (!nested(ps, $$)) YYABORT; }
  | expr AND expr                     { $$ = ast_binary(A, AST_AND, $1, $3, LOC(@2)); if (!nested(ps, $$)) YYABORT; }
  | NOT expr                          { $$ = ast_unary(A, AST_NOT, $2, LOC(@1)); if (!nested(ps, $$)) YYABORT; }
  | expr EQ expr                      { $$ = ast_binary(A, AST_EQ, $1, $3, LOC(@2)); if (!nested(ps, $$)) YYABORT; }
  | expr NE expr                      { $$ = ast_binary(A, AST_NE, $1, $3, LOC(@2)); if (!nested(ps, $$)) YYABORT; }
  | expr '<' expr                     { $$ = ast_binary(A, AST_LT, $1, $3, LOC(@2)); if (!nested(ps, $$)) YYABORT; }
  | expr LE expr                      { $$ = ast_binary(A, AST_LE, $1, $3, LOC(@2)); if (!nested(ps, $$)) YYABORT; }
  | expr '>' expr                     { $$ = ast_binary(A, AST_GT, $1, $3, LOC(@2)); if (!nested(ps, $$)) YYABORT; }
  | expr GE expr                      { $$ = ast_binary(A, AST_GE, $1, $3, LOC(@2)); if (!nested(ps, $$)) YYABORT; }
  | expr '+' expr                     { $$ = ast_binary(A, AST_ADD, $1, $3, LOC(@2)); if (!nested(ps, $$)) YYABORT; }
  | expr '-' expr                     { $$ = ast_binary(A, AST_SUB, $1, $3, LOC(@2)); if (!nested(ps, $$)) YYABORT; }
  | expr '*' expr                     { $$ = ast_binary(A, AST_MUL, $1, $3, LOC(@2)); if (!nested(ps, $$)) YYABORT; }
  | expr '/' expr                     { $$ = ast_binary(A, AST_DIV, $1, $3, LOC(@2)); if (!nested(ps, $$)) YYABORT; }
  | expr IDIV expr                    { $$ = ast_binary(A, AST_IDIV, $1, $3, LOC(@2)); if (!nested(ps, $$)) YYABORT; }
  | expr '%' expr                     { $$ = ast_binary(A, AST_MOD, $1, $3, LOC(@2)); if (!nested(ps, $$)) YYABORT; }
  | expr '@' expr                     { $$ = ast_binary(A, AST_MATMUL, $1, $3, LOC(@2)); if (!nested(ps, $$)) YYABORT; }
  | '-' expr %prec UNARY              { $$ = ast_unary(A, AST_NEG, $2, LOC(@1)); if (!nested(ps, $$)) YYABORT; }
  | '+' expr %prec UNARY              { $$ = ast_unary(A, AST_POS, $2, LOC(@1)); if (!nested(ps, $$)) YYABORT; }
  | expr POW expr                     { $$ = ast_binary(A, AST_POW, $1, $3, LOC(@2)); if (!nested(ps, $$)) YYABORT; }
  | postfix                           { $$ = $1; }
  ;

/* postfix = primary { "(" [ args ] ")" | "[" index { "," index } "]" | "." NAME } */
postfix
  : primary                           { $$ = $1; }
  | postfix '(' args ')'              { $$ = ast_expr(A, EX_CALL, $1->loc); $$->call.fn = $1; $$->call.args = $3; if (!nested(ps, $$)) YYABORT; }
  | postfix '[' indices ']'           { $$ = ast_expr(A, EX_INDEX, LOC(@2)); $$->index.x = $1; $$->index.idx = $3; if (!nested(ps, $$)) YYABORT; }
  | postfix '.' NAME                  { $$ = ast_expr(A, EX_ATTR, LOC(@3)); $$->attr.x = $1; $$->attr.name = $3; if (!nested(ps, $$)) YYABORT; }
  ;

/* args = arg { "," arg } [ "," ]      arg = expr | NAME "=" expr */
args
  : %empty                            { $$ = (AstArgVec){0}; }
  | arg_list                          { $$ = $1; }
  | arg_list ','                      { $$ = $1; }
  ;

arg_list
  : arg                               { $$ = (AstArgVec){0}; FE_PUSH(A, $$.v, $$.n, $1); }
  | arg_list ',' arg                  { $$ = $1; FE_PUSH(A, $$.v, $$.n, $3); }
  ;

arg
  : expr                              { $$ = (AstArg){.name = NULL, .value = $1, .loc = $1->loc}; }
  | NAME '=' expr                     { $$ = (AstArg){.name = $1, .value = $3, .loc = LOC(@1)}; }
  ;

/* index = expr | [ expr ] ":" [ expr ] */
indices
  : index                             { $$ = (AstIndexVec){0}; FE_PUSH(A, $$.v, $$.n, $1); }
  | indices ',' index                 { $$ = $1; FE_PUSH(A, $$.v, $$.n, $3); }
  ;

index
  : expr                              { $$ = (AstIndex){.slice = false, .lo = $1, .loc = $1->loc}; }
  | ':'                               { $$ = (AstIndex){.slice = true, .loc = LOC(@1)}; }
  | expr ':'                          { $$ = (AstIndex){.slice = true, .lo = $1, .loc = $1->loc}; }
  | ':' expr                          { $$ = (AstIndex){.slice = true, .hi = $2, .loc = LOC(@1)}; }
  | expr ':' expr                     { $$ = (AstIndex){.slice = true, .lo = $1, .hi = $3, .loc = $1->loc}; }
  ;

/* primary = NAME | INT | FLOAT | STRING | "true" | "false" | "[" [ exprs ] "]" | "(" expr ")"
 *         | "with" path block       (its value: the value of the block's last statement) */
primary
  : NAME                              { $$ = ast_expr(A, EX_NAME, LOC(@1)); $$->str = $1; }
  | INT                               { $$ = ast_expr(A, EX_INT, LOC(@1)); $$->ival = $1; }
  | FLOAT                             { $$ = ast_expr(A, EX_FLOAT, LOC(@1)); $$->fval = $1; }
  | STRING                            { $$ = ast_expr(A, EX_STR, LOC(@1)); $$->str = $1; }
  | TRUE                              { $$ = ast_expr(A, EX_BOOL, LOC(@1)); $$->bval = true; }
  | FALSE                             { $$ = ast_expr(A, EX_BOOL, LOC(@1)); $$->bval = false; }
  | '[' exprs ']'                     { $$ = ast_expr(A, EX_LIST, LOC(@1)); $$->list = $2; if (!nested(ps, $$)) YYABORT; }
  | '(' expr ')'                      { $$ = $2; }
  | WITH path block                   { $$ = ast_expr(A, EX_WITH, LOC(@1)); $$->with.path = $2; $$->with.body = $3; }
  ;

/* exprs = [ expr { "," expr } [ "," ] ] */
exprs
  : %empty                            { $$ = (AstExprVec){0}; }
  | expr_list                         { $$ = $1; }
  | expr_list ','                     { $$ = $1; }
  ;

expr_list
  : expr                              { $$ = (AstExprVec){0}; FE_PUSH(A, $$.v, $$.n, $1); }
  | expr_list ',' expr                { $$ = $1; FE_PUSH(A, $$.v, $$.n, $3); }
  ;

%%

static AstType *make_type(ParseState *ps, const char *name, SrcLoc loc, AstExprVec dims, bool has_dims) {
  AstType *t = fe_arena_alloc(A, sizeof *t);
  t->loc = loc;
  if (strcmp(name, "f32") == 0 || strcmp(name, "i32") == 0) {
    t->kind = TY_TENSOR;
    t->dtype = name[0] == 'f' ? IR_F32 : IR_I32;
    t->dim = dims;
    return t;
  }
  if (strcmp(name, "int") == 0 || strcmp(name, "float") == 0) {
    if (has_dims) {
      parse_error(ps, loc, "type '%s' takes no dimensions (tensor types are f32[...] and i32[...])", name);
      return NULL;
    }
    t->kind = name[0] == 'i' ? TY_INT : TY_FLOAT;
    return t;
  }
  parse_error(ps, loc, "unknown type '%s' (expected int, float, f32 or i32)", name);
  return NULL;
}

static bool nested(ParseState *ps, AstExpr *e) {
  ast_set_depth(e);
  if (e->depth <= FE_MAX_EXPR_DEPTH) return true;
  parse_error(ps, e->loc, FE_MSG_EXPR_DEPTH, FE_MAX_EXPR_DEPTH);
  return false;
}

void parse_error(ParseState *ps, SrcLoc loc, const char *fmt, ...) {
  if (ps->error) return;
  FeBuf b = {0};
  va_list ap;
  va_start(ap, fmt);
  fe_diag_vappend(&b, "error", loc, fmt, ap);
  va_end(ap);
  ps->error = fe_buf_take(&b);
}

/* How a token is named in messages. A TERM is "end of line" or "';'"
 * depending on where it came from. */
static const char *token_text(const ParseState *ps, yysymbol_kind_t k, bool lookahead) {
  if (k == YYSYMBOL_TERM) return lookahead ? (ps->newline_term ? "end of line" : "';'") : "newline or ';'";
  if (k == YYSYMBOL_YYEOF) return "end of file";
  return yysymbol_name(k);
}

static int yyreport_syntax_error(const yypcontext_t *ctx, yyscan_t scanner, ParseState *ps) {
  (void)scanner;
  if (ps->error) return 0;
  const YYLTYPE *l = yypcontext_location(ctx);
  yysymbol_kind_t tok = yypcontext_token(ctx);
  FeBuf msg = {0};
  fe_buf_printf(&msg, "syntax error: unexpected %s", token_text(ps, tok, true));
  if (tok == YYSYMBOL_NAME && ps->last_name) fe_buf_printf(&msg, " '%s'", ps->last_name);
  /* List what would have been accepted, if that is a short list. */
  enum { MAX_EXPECTED = 6 };
  yysymbol_kind_t expected[MAX_EXPECTED];
  int n = yypcontext_expected_tokens(ctx, expected, MAX_EXPECTED);
  if (n > 0 && n < MAX_EXPECTED) {
    fe_buf_puts(&msg, ", expected ");
    for (int i = 0; i < n; i++)
      fe_buf_printf(&msg, "%s%s", i == 0 ? "" : i + 1 == n ? " or " : ", ", token_text(ps, expected[i], false));
  }
  /* Hints for the usual causes. */
  int open = ps->depth < 32 ? ps->depth : 32;
  if (open > 0)
    fe_buf_printf(&msg, " (the '%c' at line %d, column %d is still open)", ps->open_char[open - 1],
                  ps->open[open - 1].line, ps->open[open - 1].col);
  else if (tok == YYSYMBOL_ELSE && ps->newline_term)
    fe_buf_puts(&msg, " ('else' must be on the same line as the '}' before it)");
  else if (tok == YYSYMBOL_TERM && ps->newline_term)
    for (int i = 0; i < n && i < MAX_EXPECTED; i++)
      if (strcmp(yysymbol_name(expected[i]), "'{'") == 0) fe_buf_puts(&msg, " (a '{' must be on the same line as what it opens)");
  char *text = fe_buf_take(&msg);
  parse_error(ps, LOC(*l), "%s", text);
  free(text);
  return 0;
}

static void yyerror(YYLTYPE *loc, yyscan_t scanner, ParseState *ps, const char *msg) {
  (void)scanner;
  /* The only message that reaches here is bison's stack overflow. */
  if (strcmp(msg, "memory exhausted") == 0)
    parse_error(ps, LOC(*loc), FE_MSG_PARSE_DEPTH, FE_MAX_PARSE_DEPTH);
  else
    parse_error(ps, LOC(*loc), "%s", msg);
}

AstFile *parse_source(FeArena *arena, const char *file, const char *text, char **err) {
  ParseState ps = {.arena = arena, .file = file, .line = 1, .col = 1};
  ps.result = fe_arena_alloc(arena, sizeof *ps.result);
  ps.result->file = file;
  yyscan_t scanner;
  if (yylex_init_extra(&ps, &scanner)) {
    *err = fe_format_diag((SrcLoc){file, 0, 0}, "cannot start the lexer");
    return NULL;
  }
  YY_BUFFER_STATE buf = yy_scan_string(text, scanner);
  int rc = yyparse(scanner, &ps);
  yy_delete_buffer(buf, scanner);
  yylex_destroy(scanner);
  if (rc != 0 || ps.error) {
    *err = ps.error ? ps.error : fe_format_diag((SrcLoc){file, 0, 0}, "syntax error");
    return NULL;
  }
  return ps.result;
}
