/* ast.h - the syntax tree of a .mdl file, as the parser builds it.
 *
 * The AST is a faithful picture of the source: no names are resolved and no shapes are
 * known here (that is lowering's job, compiler/lower/lower.c). Every node keeps the location of
 * the token that names it so later errors can point at it. All nodes live in an Arena. */
#ifndef MLC_AST_H
#define MLC_AST_H

#include "arena.h"
#include "diag.h"

typedef struct Expr Expr;
typedef struct Stmt Stmt;

/* The most bytes a string may hold (docs/language.md, Limits): a literal (the lexer) and
 * a string made at compile time ("layer" + 3, compiler/lower/lower.c). */
enum { MAX_STRING = 65536 };

typedef enum ExprKind {
    EX_INT,    /* 42             ival */
    EX_FLOAT,  /* 1e-3, 0.5      fval */
    EX_STRING, /* "fc1"          sval */
    EX_NAME,   /* h, B, true     name */
    EX_CALL,   /* f(a, k = v)    name, args[nargs] (each arg may carry a keyword) */
    EX_BINARY, /* a + b          op, lhs, rhs; op is one of + - * / == != < <= > >= and or */
    EX_UNARY,  /* -a, not a      op ('-' or '!'), lhs */
    EX_LIST,   /* [a, b, c]      args[nargs] (no keywords) */
} ExprKind;

typedef struct Arg {
    const char *keyword; /* NULL for a positional argument */
    SrcLoc kw_loc;       /* location of the keyword, when there is one */
    Expr *value;
} Arg;

struct Expr {
    ExprKind kind;
    SrcLoc loc; /* for a binary op, the operator; for a call, the callee name */
    long long ival;
    double fval;
    const char *sval; /* EX_STRING contents, escapes resolved */
    const char *name; /* EX_NAME, EX_CALL */
    int op;           /* EX_BINARY / EX_UNARY: the BinOp below */
    Expr *lhs, *rhs;
    Arg *args;
    int nargs;
};

typedef enum BinOp {
    OP_ADD = '+',
    OP_SUB = '-',
    OP_MUL = '*',
    OP_DIV = '/',
    OP_MOD = '%',
    OP_LT = '<',
    OP_GT = '>',
    OP_NOT = '!',
    OP_EQ = 256,
    OP_NE,
    OP_LE,
    OP_GE,
    OP_AND,
    OP_OR,
    OP_FLOORDIV, /* // */
} BinOp;

/* How an operator is written in the source ("+", "//", "and"). */
const char *binop_text(int op);

/* A tensor type: `f32[B, 784]`. A dimension is an integer literal or a name (B). */
typedef struct TypeDim {
    long long value;   /* when name == NULL and expr == NULL */
    const char *name;  /* e.g. "B", or a compile-time integer's name */
    struct Expr *expr; /* any other compile-time integer expression: f32[1, 2 * ch] */
    SrcLoc loc;
} TypeDim;

typedef struct TypeExpr {
    const char *dtype; /* "f32" or "i32" as written; lowering checks it */
    SrcLoc loc;
    TypeDim *dims;
    int rank;
} TypeExpr;

typedef enum StmtKind {
    ST_MODEL,  /* model NAME                          name */
    ST_INPUT,  /* input NAME: TYPE                    name, type */
    ST_PARAM,  /* param NAME: TYPE [= INIT-CALL]      name, type, value (may be NULL) */
    ST_ASSIGN, /* NAME = EXPR                         name, value */
    ST_OUTPUT, /* output EXPR                         value */
    ST_LOSS,   /* loss EXPR                           value */
    ST_RETURN, /* return EXPR   (in a block body)     value */
    ST_IF,     /* if EXPR { body } [else { else_body }]  value=cond, body, else_body */
    ST_FOR,    /* for NAME in EXPR { body }            name, value=the list, body */
    ST_BLOCK,  /* block NAME(p, q = 1) { body }       name, params, body */
    ST_TRAIN,  /* train { key = EXPR ... }            settings: each an ST_ASSIGN */
    ST_EXPR,   /* a bare expression statement (rare; lowering rejects if useless) */
} StmtKind;

typedef struct BlockParam {
    const char *name;
    SrcLoc loc;
    Expr *default_value; /* NULL when the parameter has no default */
} BlockParam;

typedef struct StmtList {
    Stmt **items;
    int n;
} StmtList;

struct Stmt {
    StmtKind kind;
    SrcLoc loc; /* the keyword, or the assigned name */
    const char *name;
    SrcLoc name_loc;
    TypeExpr *type;
    Expr *value;
    StmtList body, else_body, settings;
    BlockParam *params;
    int nparams;
};

typedef struct Program {
    const SrcFile *file;
    StmtList stmts; /* in source order */
} Program;

/* Parses a whole file. On a syntax error prints a diagnostic (diag.h) and longjmps /
 * exits as diag_error does; the caller sets DIAG_TRY. Never crashes on any input. */
Program *parse_program(Arena *a, const SrcFile *file);

/* Prints the AST back as canonical .mdl text (used by tests and --dump-ast). */
void ast_print(FILE *out, const Program *p);

#endif
