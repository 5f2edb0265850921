/* parser.c - recursive-descent parser from tokens (lexer.h) to the AST (ast.h).
 *
 * Each parse function has its grammar rule in a comment above it. Newlines mean nothing;
 * statements are self-delimiting (each begins with a keyword or `NAME =`, or is a bare
 * expression), and a `;` may separate them. The first error is reported with diag_error
 * and ends the parse (no recovery: files are small and one clear message beats a cascade).
 *
 * Recursion depth is bounded (MAX_DEPTH) so hostile input such as ten thousand '(' gives
 * an error instead of a stack overflow, here and in every later pass that walks the tree. */
#include <string.h>

#include "ast.h"
#include "lexer.h"

enum { MAX_DEPTH = 256 };

typedef struct Parser {
    Arena *arena;
    Token *toks;
    int ntoks, pos;
    int depth;    /* current nesting of expressions and statement bodies, one budget */
    int bodies;   /* how many of those levels are statement bodies (if, for, block) */
    int in_block; /* inside a `block` body: a nested block definition is an error */
} Parser;

static Expr *parse_expr(Parser *P);
static StmtList parse_body(Parser *P, const char *what);

/* ---- token helpers ---------------------------------------------------------------- */

static Token *cur(Parser *P) { return &P->toks[P->pos]; }
static Token *peek_at(Parser *P, int k) {
    int i = P->pos + k;
    return &P->toks[i < P->ntoks ? i : P->ntoks - 1]; /* the EOF token repeats forever */
}
static int at(Parser *P, TokKind k) { return cur(P)->kind == k; }
static Token *next(Parser *P) {
    Token *t = cur(P);
    if (t->kind != TK_EOF) P->pos++;
    return t;
}
static int accept(Parser *P, TokKind k) {
    if (!at(P, k)) return 0;
    next(P);
    return 1;
}

/* How a token is named in "found ...": its text as written, or "end of file". */
static const char *describe(Parser *P, const Token *t) {
    if (t->kind == TK_EOF) return "end of file";
    return arena_printf(P->arena, "'%.*s'", t->loc.len, t->text);
}

/* Reports `expected WHAT, found TOKEN` at the current token. */
static _Noreturn void expected(Parser *P, const char *what) {
    diag_error(&cur(P)->loc, "expected %s, found %s", what, describe(P, cur(P)));
}

static Token *expect(Parser *P, TokKind k, const char *what) {
    if (!at(P, k)) expected(P, what);
    return next(P);
}

static const char *tok_str(Parser *P, const Token *t) { return arena_strndup(P->arena, t->text, (size_t)t->loc.len); }

/* The bodies an expression sits in share its budget: the bound is on the tree's height,
 * which is what mlc's recursive walks follow. An expression's error says so when they do. */
static const char *bodies_around(Parser *P) {
    if (!P->bodies) return "";
    return arena_printf(P->arena, ", counting the %d if, for and block bod%s around it", P->bodies,
                        P->bodies == 1 ? "y" : "ies");
}

/* Enters one level of nesting opened by the token `t`; the caller leaves with
 * P->depth-- (or by restoring a saved depth). */
static void enter(Parser *P, const char *what, const Token *t) {
    if (++P->depth > MAX_DEPTH)
        diag_error(&t->loc, "%s nested more than %d levels deep%s", what, MAX_DEPTH,
                   strcmp(what, "statements") ? bodies_around(P) : "");
}

/* Enters one statement body (or the `if` of an `else if`), a level of the same budget. */
static void enter_body(Parser *P, const Token *t) {
    enter(P, "statements", t);
    P->bodies++;
}

static void leave_body(Parser *P) { P->depth--, P->bodies--; }

/* Enters the level of a binary operator of a chain (a + b + c): the tree the chain builds
 * is as tall as the chain is long, and the passes that walk it recurse as deep. */
static void enter_operator(Parser *P, const Token *op) {
    if (++P->depth > MAX_DEPTH)
        diag_error_hint(&op->loc, "split a long chain into parts: s1 = a1 + ... + a100, s2 = ..., then s1 + s2",
                        "expression nested more than %d levels deep%s (each operator of a chain like a + b + c "
                        "is a level)",
                        MAX_DEPTH, bodies_around(P));
}

/* ---- lists that grow in the arena ----------------------------------------------- */

static void *grow(Parser *P, void *items, int n, int *cap, size_t elem) {
    if (n < *cap) return items;
    int ncap = *cap ? *cap * 2 : 4;
    items = arena_realloc(P->arena, items, elem * (size_t)*cap, elem * (size_t)ncap);
    *cap = ncap;
    return items;
}

static Expr *new_expr(Parser *P, ExprKind kind, SrcLoc loc) {
    Expr *e = ARENA_NEW(P->arena, Expr);
    e->kind = kind;
    e->loc = loc;
    return e;
}

static Stmt *new_stmt(Parser *P, StmtKind kind, SrcLoc loc) {
    Stmt *s = ARENA_NEW(P->arena, Stmt);
    s->kind = kind;
    s->loc = loc;
    return s;
}

/* ---- expressions ------------------------------------------------------------------ */

/* Can this token begin an expression? Decides between a bare expression statement and
 * "expected a statement". */
static int starts_expr(TokKind k) {
    return k == TK_INT || k == TK_FLOAT || k == TK_STRING || k == TK_IDENT || k == TK_LPAREN || k == TK_LBRACKET ||
           k == TK_MINUS || k == TK_NOT;
}

/* args: [ arg { ',' arg } ]      (the '(' is already consumed; consumes the ')')
 * arg:  NAME '=' expr | expr     (keyword arguments come after all positional ones) */
static void parse_args(Parser *P, Expr *call) {
    int cap = 0, seen_keyword = 0;
    if (accept(P, TK_RPAREN)) return;
    for (;;) {
        Arg arg = {0};
        if (at(P, TK_IDENT) && peek_at(P, 1)->kind == TK_ASSIGN) {
            Token *kw = next(P);
            next(P); /* '=' */
            arg.keyword = tok_str(P, kw);
            arg.kw_loc = kw->loc;
            for (int i = 0; i < call->nargs; i++)
                if (call->args[i].keyword && strcmp(call->args[i].keyword, arg.keyword) == 0)
                    diag_error(&kw->loc, "keyword argument '%s' given twice", arg.keyword);
            seen_keyword = 1;
        } else if (seen_keyword) {
            diag_error(&cur(P)->loc, "positional argument after keyword argument");
        }
        arg.value = parse_expr(P);
        call->args = grow(P, call->args, call->nargs, &cap, sizeof(Arg));
        call->args[call->nargs++] = arg;
        if (accept(P, TK_RPAREN)) return;
        if (!accept(P, TK_COMMA)) expected(P, "')' after arguments");
    }
}

/* atom: INT | FLOAT | STRING | NAME [ '(' args ')' ] | '(' expr ')'
 *     | '[' [ expr { ',' expr } ] ']' */
static Expr *parse_atom(Parser *P) {
    Token *t = cur(P);
    Expr *e;
    switch (t->kind) {
    case TK_INT:
        next(P);
        e = new_expr(P, EX_INT, t->loc);
        e->ival = t->ival;
        return e;
    case TK_FLOAT:
        next(P);
        e = new_expr(P, EX_FLOAT, t->loc);
        e->fval = t->fval;
        return e;
    case TK_STRING:
        next(P);
        e = new_expr(P, EX_STRING, t->loc);
        e->sval = t->sval;
        return e;
    case TK_IDENT:
        next(P);
        /* A call is a name immediately followed by '('. */
        e = new_expr(P, at(P, TK_LPAREN) ? EX_CALL : EX_NAME, t->loc);
        e->name = tok_str(P, t);
        if (e->kind == EX_CALL) {
            enter(P, "expression", next(P));
            parse_args(P, e);
            P->depth--;
        }
        return e;
    case TK_LPAREN:
        next(P);
        enter(P, "expression", t);
        e = parse_expr(P);
        P->depth--;
        expect(P, TK_RPAREN, "')' after expression");
        return e;
    case TK_LBRACKET: {
        next(P);
        enter(P, "expression", t);
        e = new_expr(P, EX_LIST, t->loc);
        int cap = 0;
        if (!accept(P, TK_RBRACKET)) {
            for (;;) {
                Expr *item = parse_expr(P);
                e->args = grow(P, e->args, e->nargs, &cap, sizeof(Arg));
                e->args[e->nargs++] = (Arg){.value = item};
                if (accept(P, TK_RBRACKET)) break;
                if (!accept(P, TK_COMMA)) expected(P, "']' after list elements");
            }
        }
        P->depth--;
        return e;
    }
    default: expected(P, "an expression");
    }
}

/* primary: atom, never followed by '['. The language has no indexing; without this check
 * `y = w[0]` would read as `y = w` and a statement `[0]`, whose error points elsewhere. */
static Expr *parse_primary(Parser *P) {
    Expr *e = parse_atom(P);
    if (at(P, TK_LBRACKET))
        diag_error_hint(&cur(P)->loc, "to take part of a tensor along an axis, use slice(x, axis, start, end)",
                        "unexpected '[' after an expression: indexing is not part of the language");
    return e;
}

/* unary: '-' unary | primary */
static Expr *parse_unary(Parser *P) {
    if (!at(P, TK_MINUS)) return parse_primary(P);
    Token *op = next(P);
    enter(P, "expression", op);
    Expr *e = new_expr(P, EX_UNARY, op->loc);
    e->op = OP_SUB;
    e->lhs = parse_unary(P);
    P->depth--;
    return e;
}

static Expr *binary(Parser *P, Token *op, int bop, Expr *lhs, Expr *rhs) {
    Expr *e = new_expr(P, EX_BINARY, op->loc);
    e->op = bop;
    e->lhs = lhs;
    e->rhs = rhs;
    return e;
}

/* The left-associative levels below build left-leaning trees in a loop; each operator
 * counts as one level of nesting so the tree's height stays bounded as well. */

/* mul: unary { ('*' | '/' | '//' | '%') unary } */
static Expr *parse_mul(Parser *P) {
    int saved = P->depth;
    Expr *e = parse_unary(P);
    while (at(P, TK_STAR) || at(P, TK_SLASH) || at(P, TK_SLASHSLASH) || at(P, TK_PERCENT)) {
        Token *op = next(P);
        enter_operator(P, op);
        int bop = op->kind == TK_STAR      ? OP_MUL
                  : op->kind == TK_SLASH   ? OP_DIV
                  : op->kind == TK_PERCENT ? OP_MOD
                                           : OP_FLOORDIV;
        e = binary(P, op, bop, e, parse_unary(P));
    }
    P->depth = saved;
    return e;
}

/* add: mul { ('+' | '-') mul } */
static Expr *parse_add(Parser *P) {
    int saved = P->depth;
    Expr *e = parse_mul(P);
    while (at(P, TK_PLUS) || at(P, TK_MINUS)) {
        Token *op = next(P);
        enter_operator(P, op);
        e = binary(P, op, op->kind == TK_PLUS ? OP_ADD : OP_SUB, e, parse_mul(P));
    }
    P->depth = saved;
    return e;
}

static int comparison_op(TokKind k) {
    switch (k) {
    case TK_EQ: return OP_EQ;
    case TK_NE: return OP_NE;
    case TK_LT: return OP_LT;
    case TK_LE: return OP_LE;
    case TK_GT: return OP_GT;
    case TK_GE: return OP_GE;
    default: return 0;
    }
}

/* cmp: add [ ('==' | '!=' | '<' | '<=' | '>' | '>=') add ]
 * Non-associative: `a < b < c` is an error rather than a silent surprise. */
static Expr *parse_cmp(Parser *P) {
    Expr *e = parse_add(P);
    int op = comparison_op(cur(P)->kind);
    if (!op) return e;
    Token *t = next(P);
    e = binary(P, t, op, e, parse_add(P));
    if (comparison_op(cur(P)->kind))
        diag_error_hint(&cur(P)->loc, "combine comparisons with 'and'", "comparison operators cannot be chained");
    return e;
}

/* not: 'not' not | cmp */
static Expr *parse_not(Parser *P) {
    if (!at(P, TK_NOT)) return parse_cmp(P);
    Token *op = next(P);
    enter(P, "expression", op);
    Expr *e = new_expr(P, EX_UNARY, op->loc);
    e->op = OP_NOT;
    e->lhs = parse_not(P);
    P->depth--;
    return e;
}

/* and: not { 'and' not } */
static Expr *parse_and(Parser *P) {
    int saved = P->depth;
    Expr *e = parse_not(P);
    while (at(P, TK_AND)) {
        Token *op = next(P);
        enter_operator(P, op);
        e = binary(P, op, OP_AND, e, parse_not(P));
    }
    P->depth = saved;
    return e;
}

/* expr: and { 'or' and } */
static Expr *parse_expr(Parser *P) {
    int saved = P->depth;
    Expr *e = parse_and(P);
    while (at(P, TK_OR)) {
        Token *op = next(P);
        enter_operator(P, op);
        e = binary(P, op, OP_OR, e, parse_and(P));
    }
    P->depth = saved;
    return e;
}

/* ---- types -------------------------------------------------------------------------- */

/* type: NAME [ '[' dim { ',' dim } ']' ]     dim: INT | NAME
 * Without brackets the type is a scalar (rank 0); lowering decides whether that is allowed. */
static TypeExpr *parse_type(Parser *P) {
    Token *t = expect(P, TK_IDENT, "a type such as f32[N]");
    TypeExpr *ty = ARENA_NEW(P->arena, TypeExpr);
    ty->dtype = tok_str(P, t);
    ty->loc = t->loc;
    if (!accept(P, TK_LBRACKET)) return ty;
    int cap = 0;
    for (;;) {
        Token *d = cur(P);
        TypeDim dim = {.loc = d->loc};
        TokKind after = peek_at(P, 1)->kind;
        int alone = after == TK_COMMA || after == TK_RBRACKET; /* a literal or a name by itself */
        if (d->kind == TK_INT && alone) {
            dim.value = d->ival;
            next(P);
        } else if (d->kind == TK_IDENT && alone) {
            dim.name = tok_str(P, d);
            next(P);
        } else if (starts_expr(d->kind)) {
            dim.expr = parse_expr(P);
        } else {
            expected(P, "a dimension (an integer, B, or a compile-time integer expression)");
        }
        ty->dims = grow(P, ty->dims, ty->rank, &cap, sizeof(TypeDim));
        ty->dims[ty->rank++] = dim;
        if (accept(P, TK_RBRACKET)) return ty;
        if (!accept(P, TK_COMMA)) expected(P, "',' or ']' after a dimension");
    }
}

/* ---- statements --------------------------------------------------------------------- */

static Token *expect_name(Parser *P, const char *what) { return expect(P, TK_IDENT, what); }

static int token_is(const Token *t, const char *word) {
    return t->loc.len == (int)strlen(word) && !strncmp(t->text, word, (size_t)t->loc.len);
}

/* Names with a fixed meaning, which no statement may bind. B is the batch size in shapes
 * and in arithmetic alike: a binding would make the two disagree (f32[B, 4] the batch,
 * x * B the bound value). true and false are the booleans: `true = false` would silently
 * invert every `if true` and `bias = true` after it. */
static void not_reserved_name(const Token *name, const char *what) {
    if (token_is(name, "B")) diag_error(&name->loc, "B is the batch size; it cannot be %s", what);
    if (token_is(name, "true") || token_is(name, "false"))
        diag_error(&name->loc, "'%.*s' is a boolean value; it cannot be %s", name->loc.len, name->text, what);
}

/* decl: ('input' | 'param') NAME ':' type [ '=' expr ]    (only param takes '= expr') */
static Stmt *parse_decl(Parser *P, StmtKind kind) {
    Token *kw = next(P);
    int is_param = kind == ST_PARAM;
    Stmt *s = new_stmt(P, kind, kw->loc);
    Token *name = expect_name(P, is_param ? "a parameter name after 'param'" : "an input name after 'input'");
    not_reserved_name(name, is_param ? "a parameter's name" : "an input's name");
    s->name = tok_str(P, name);
    s->name_loc = name->loc;
    expect(P, TK_COLON, is_param ? "':' after the parameter name" : "':' after the input name");
    s->type = parse_type(P);
    if (is_param && accept(P, TK_ASSIGN)) s->value = parse_expr(P);
    return s;
}

/* if: 'if' expr '{' stmts '}' [ 'else' ( '{' stmts '}' | if ) ]
 * `else if` is kept as an else_body holding the one nested ST_IF. */
static Stmt *parse_if(Parser *P) {
    Token *kw = next(P);
    Stmt *s = new_stmt(P, ST_IF, kw->loc);
    s->value = parse_expr(P);
    expect(P, TK_LBRACE, "'{' after the condition");
    s->body = parse_body(P, "'}' at the end of the 'if' body");
    /* Python's `elif` is a name here; unflagged, the error would land on the '{' after its
     * condition. (`elif = ...` is an assignment and stays one.) */
    if (at(P, TK_IDENT) && cur(P)->loc.len == 4 && !memcmp(cur(P)->text, "elif", 4) && peek_at(P, 1)->kind != TK_ASSIGN)
        diag_error_hint(&cur(P)->loc, "if a { ... } else if b { ... }", "expected 'else if', found 'elif'");
    if (!accept(P, TK_ELSE)) return s;
    if (at(P, TK_IF)) {
        enter_body(P, cur(P));
        Stmt *inner = parse_if(P);
        leave_body(P);
        s->else_body.items = ARENA_ARRAY(P->arena, Stmt *, 1);
        s->else_body.items[0] = inner;
        s->else_body.n = 1;
        return s;
    }
    expect(P, TK_LBRACE, "'{' or 'if' after 'else'");
    s->else_body = parse_body(P, "'}' at the end of the 'else' body");
    return s;
}

/* for: 'for' NAME 'in' expr '{' stmts '}' */
static Stmt *parse_for(Parser *P) {
    Token *kw = next(P);
    Stmt *s = new_stmt(P, ST_FOR, kw->loc);
    Token *name = expect_name(P, "a loop variable after 'for'");
    not_reserved_name(name, "a loop variable");
    s->name = tok_str(P, name);
    s->name_loc = name->loc;
    expect(P, TK_IN, "'in' after the loop variable");
    s->value = parse_expr(P);
    expect(P, TK_LBRACE, "'{' after the list to loop over");
    s->body = parse_body(P, "'}' at the end of the 'for' body");
    return s;
}

/* block: 'block' NAME '(' [ param { ',' param } ] ')' '{' stmts '}'
 * param: NAME [ '=' expr ] */
static Stmt *parse_block(Parser *P) {
    Token *kw = next(P);
    if (P->in_block) diag_error(&kw->loc, "a block cannot be defined inside another block");
    if (P->depth > 0) diag_error(&kw->loc, "a block can only be defined at the top level");
    Stmt *s = new_stmt(P, ST_BLOCK, kw->loc);
    Token *name = expect_name(P, "a block name after 'block'");
    s->name = tok_str(P, name);
    s->name_loc = name->loc;
    expect(P, TK_LPAREN, "'(' after the block name");
    int cap = 0;
    if (!accept(P, TK_RPAREN)) {
        for (;;) {
            Token *pn = expect_name(P, "a parameter name");
            not_reserved_name(pn, "a block parameter");
            /* every call takes name = "..." as its scope, so such a parameter could never be
             * given by keyword, and with a default it would silently keep the default */
            if (token_is(pn, "name"))
                diag_error_hint(&pn->loc, "give the parameter another name, e.g. 'layer_name'",
                                "a block parameter cannot be called 'name': name = \"...\" in a call is the call's "
                                "scope");
            BlockParam bp = {.name = tok_str(P, pn), .loc = pn->loc};
            for (int i = 0; i < s->nparams; i++)
                if (strcmp(s->params[i].name, bp.name) == 0)
                    diag_error(&pn->loc, "parameter '%s' given twice", bp.name);
            if (accept(P, TK_ASSIGN)) bp.default_value = parse_expr(P);
            /* As in Python: a call fills parameters from the left, so one without a default
             * after one with a default could only ever be given by name. */
            const BlockParam *last = s->nparams ? &s->params[s->nparams - 1] : NULL;
            if (!bp.default_value && last && last->default_value)
                diag_error(&pn->loc,
                           "parameter '%s' has no default but follows '%s', which has one; parameters "
                           "with defaults come last",
                           bp.name, last->name);
            s->params = grow(P, s->params, s->nparams, &cap, sizeof(BlockParam));
            s->params[s->nparams++] = bp;
            if (accept(P, TK_RPAREN)) break;
            if (!accept(P, TK_COMMA)) expected(P, "',' or ')' after a parameter");
        }
    }
    expect(P, TK_LBRACE, "'{' after the block parameters");
    P->in_block = 1;
    s->body = parse_body(P, "'}' at the end of the block body");
    P->in_block = 0;
    return s;
}

/* train: 'train' '{' { NAME '=' expr [ ';' ] } '}' */
static Stmt *parse_train(Parser *P) {
    Token *kw = next(P);
    Stmt *s = new_stmt(P, ST_TRAIN, kw->loc);
    expect(P, TK_LBRACE, "'{' after 'train'");
    int cap = 0;
    for (;;) {
        while (accept(P, TK_SEMI)) {
        }
        if (accept(P, TK_RBRACE)) return s;
        Token *name = expect_name(P, "a setting name or '}'");
        Stmt *set = new_stmt(P, ST_ASSIGN, name->loc);
        set->name = tok_str(P, name);
        set->name_loc = name->loc;
        expect(P, TK_ASSIGN, "'=' after the setting name");
        set->value = parse_expr(P);
        s->settings.items = grow(P, s->settings.items, s->settings.n, &cap, sizeof(Stmt *));
        s->settings.items[s->settings.n++] = set;
    }
}

/* stmt: 'model' NAME | decl | 'output' expr | 'loss' expr | 'return' expr | if | for | block
 *     | train | NAME '=' expr | expr */
static Stmt *parse_stmt(Parser *P) {
    Token *t = cur(P);
    Stmt *s;
    switch (t->kind) {
    case TK_MODEL: {
        next(P);
        s = new_stmt(P, ST_MODEL, t->loc);
        Token *name = expect_name(P, "a model name after 'model'");
        s->name = tok_str(P, name);
        s->name_loc = name->loc;
        return s;
    }
    case TK_INPUT: return parse_decl(P, ST_INPUT);
    case TK_PARAM: return parse_decl(P, ST_PARAM);
    case TK_OUTPUT:
    case TK_LOSS:
    case TK_RETURN:
        next(P);
        s = new_stmt(P, t->kind == TK_OUTPUT ? ST_OUTPUT : t->kind == TK_LOSS ? ST_LOSS : ST_RETURN, t->loc);
        s->value = parse_expr(P);
        /* Python's `return a, b` would otherwise read as a statement after the return. */
        if (t->kind == TK_RETURN && at(P, TK_COMMA)) diag_error(&cur(P)->loc, "a block returns one value, found ','");
        return s;
    case TK_IF: return parse_if(P);
    case TK_FOR: return parse_for(P);
    case TK_BLOCK: return parse_block(P);
    case TK_TRAIN: return parse_train(P);
    case TK_IDENT:
        if (peek_at(P, 1)->kind == TK_ASSIGN) {
            not_reserved_name(t, "assigned");
            next(P);
            next(P);
            s = new_stmt(P, ST_ASSIGN, t->loc);
            s->name = tok_str(P, t);
            s->name_loc = t->loc;
            s->value = parse_expr(P);
            return s;
        }
        break;
    default:
        if (!starts_expr(t->kind)) expected(P, "a statement");
    }
    s = new_stmt(P, ST_EXPR, t->loc);
    s->value = parse_expr(P);
    return s;
}

/* stmts: { stmt | ';' }   ending at `end` (TK_RBRACE in a body, TK_EOF at top level) */
static StmtList parse_stmts(Parser *P, TokKind end, const char *what) {
    StmtList list = {0};
    int cap = 0;
    for (;;) {
        while (accept(P, TK_SEMI)) {
        }
        if (at(P, end)) return list;
        /* Inside a body, running out of file means the '}' is missing. */
        if (at(P, TK_EOF)) expected(P, what);
        /* In a block, what follows a 'return' in the same body would never run. (At the top
         * level 'return' itself is the error, which lowering reports.) */
        if (P->in_block && list.n && list.items[list.n - 1]->kind == ST_RETURN)
            diag_error(&cur(P)->loc, "statement after return: it would never run");
        Stmt *s = parse_stmt(P);
        list.items = grow(P, list.items, list.n, &cap, sizeof(Stmt *));
        list.items[list.n++] = s;
    }
}

/* body: stmts '}'     (the '{' is already consumed) */
static StmtList parse_body(Parser *P, const char *what) {
    enter_body(P, &P->toks[P->pos - 1]);
    StmtList list = parse_stmts(P, TK_RBRACE, what);
    next(P); /* '}' */
    leave_body(P);
    return list;
}

/* program: stmts EOF */
Program *parse_program(Arena *a, const SrcFile *file) {
    Parser P = {.arena = a};
    P.toks = lex_file(a, file, &P.ntoks);
    Program *prog = ARENA_NEW(a, Program);
    prog->file = file;
    prog->stmts = parse_stmts(&P, TK_EOF, "a statement");
    return prog;
}
