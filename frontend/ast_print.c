/* ast_print.c - prints an AST back as canonical .mdl text (tests, `--dump-ast`).
 *
 * The output is itself valid .mdl that parses back to the same tree, so printing is
 * idempotent: print(parse(print(t))) == print(t). To make precedence visible every binary
 * expression is fully parenthesized, e.g. `h = relu((a + (b * c)))`; `not x` is always
 * parenthesized because it binds more loosely than the operators it may sit inside. */
#include <stdlib.h>
#include <string.h>

#include "ast.h"

const char *binop_text(int op) {
    switch (op) {
    case OP_ADD: return "+";
    case OP_SUB: return "-";
    case OP_MUL: return "*";
    case OP_DIV: return "/";
    case OP_FLOORDIV: return "//";
    case OP_MOD: return "%";
    case OP_LT: return "<";
    case OP_GT: return ">";
    case OP_EQ: return "==";
    case OP_NE: return "!=";
    case OP_LE: return "<=";
    case OP_GE: return ">=";
    case OP_AND: return "and";
    case OP_OR: return "or";
    default: return "?";
    }
}

/* The shortest decimal form that reads back as exactly the same double, always with a
 * '.' or an exponent so it lexes as a float again. Moderate magnitudes are written
 * positionally (300.0, 0.001) rather than as %g would for few digits (3e+02). */
static void print_float(FILE *out, double v) {
    char buf[64];
    int prec = 1;
    for (; prec < 17; prec++) {
        snprintf(buf, sizeof buf, "%.*e", prec - 1, v);
        if (strtod(buf, NULL) == v) break;
    }
    int exp10 = atoi(strchr(buf, 'e') + 1);
    if (exp10 >= -4 && exp10 < 16 && exp10 + 1 > prec) prec = exp10 + 1;
    snprintf(buf, sizeof buf, "%.*g", prec, v);
    fputs(buf, out);
    if (!strpbrk(buf, ".eEni")) fputs(".0", out);
}

static void print_string(FILE *out, const char *s) {
    fputc('"', out);
    for (; *s; s++) {
        if (*s == '"' || *s == '\\') fprintf(out, "\\%c", *s);
        else if (*s == '\n') fputs("\\n", out);
        else fputc(*s, out);
    }
    fputc('"', out);
}

static void print_expr(FILE *out, const Expr *e) {
    switch (e->kind) {
    case EX_INT: fprintf(out, "%lld", e->ival); break;
    case EX_FLOAT: print_float(out, e->fval); break;
    case EX_STRING: print_string(out, e->sval); break;
    case EX_NAME: fputs(e->name, out); break;
    case EX_CALL:
    case EX_LIST:
        if (e->kind == EX_CALL) fprintf(out, "%s(", e->name);
        else fputc('[', out);
        for (int i = 0; i < e->nargs; i++) {
            if (i) fputs(", ", out);
            if (e->args[i].keyword) fprintf(out, "%s = ", e->args[i].keyword);
            print_expr(out, e->args[i].value);
        }
        fputc(e->kind == EX_CALL ? ')' : ']', out);
        break;
    case EX_BINARY:
        fputc('(', out);
        print_expr(out, e->lhs);
        fprintf(out, " %s ", binop_text(e->op));
        print_expr(out, e->rhs);
        fputc(')', out);
        break;
    case EX_UNARY:
        if (e->op == OP_NOT) {
            fputs("(not ", out);
            print_expr(out, e->lhs);
            fputc(')', out);
        } else {
            fputc('-', out);
            print_expr(out, e->lhs);
        }
        break;
    }
}

static void print_type(FILE *out, const TypeExpr *t) {
    fputs(t->dtype, out);
    if (t->rank == 0) return;
    fputc('[', out);
    for (int i = 0; i < t->rank; i++) {
        if (i) fputs(", ", out);
        if (t->dims[i].name) fputs(t->dims[i].name, out);
        else if (t->dims[i].expr) print_expr(out, t->dims[i].expr);
        else fprintf(out, "%lld", t->dims[i].value);
    }
    fputc(']', out);
}

static void print_stmts(FILE *out, const StmtList *list, int indent);

static void print_indent(FILE *out, int indent) {
    for (int i = 0; i < indent; i++) fputs("    ", out);
}

/* Prints `{`, the statements, and the closing `}` (without a newline after it). */
static void print_body(FILE *out, const StmtList *body, int indent) {
    fputs("{\n", out);
    print_stmts(out, body, indent + 1);
    print_indent(out, indent);
    fputc('}', out);
}

/* Prints one statement without indentation or newline. */
static void print_stmt(FILE *out, const Stmt *s, int indent) {
    switch (s->kind) {
    case ST_MODEL: fprintf(out, "model %s", s->name); break;
    case ST_INPUT:
    case ST_PARAM:
        fprintf(out, "%s %s: ", s->kind == ST_INPUT ? "input" : "param", s->name);
        print_type(out, s->type);
        if (s->value) {
            fputs(" = ", out);
            print_expr(out, s->value);
        }
        break;
    case ST_ASSIGN:
        fprintf(out, "%s = ", s->name);
        print_expr(out, s->value);
        break;
    case ST_OUTPUT:
    case ST_LOSS:
    case ST_RETURN:
        fputs(s->kind == ST_OUTPUT ? "output " : s->kind == ST_LOSS ? "loss " : "return ", out);
        print_expr(out, s->value);
        break;
    case ST_EXPR: print_expr(out, s->value); break;
    case ST_IF:
        /* `else if` chains print flat, as they are usually written. */
        for (;;) {
            fputs("if ", out);
            print_expr(out, s->value);
            fputc(' ', out);
            print_body(out, &s->body, indent);
            if (s->else_body.n == 0) break;
            fputs(" else ", out);
            if (s->else_body.n == 1 && s->else_body.items[0]->kind == ST_IF) {
                s = s->else_body.items[0];
                continue;
            }
            print_body(out, &s->else_body, indent);
            break;
        }
        break;
    case ST_FOR:
        fprintf(out, "for %s in ", s->name);
        print_expr(out, s->value);
        fputc(' ', out);
        print_body(out, &s->body, indent);
        break;
    case ST_BLOCK:
        fprintf(out, "block %s(", s->name);
        for (int i = 0; i < s->nparams; i++) {
            if (i) fputs(", ", out);
            fputs(s->params[i].name, out);
            if (s->params[i].default_value) {
                fputs(" = ", out);
                print_expr(out, s->params[i].default_value);
            }
        }
        fputs(") ", out);
        print_body(out, &s->body, indent);
        break;
    case ST_TRAIN:
        fputs("train ", out);
        print_body(out, &s->settings, indent);
        break;
    }
}

static void print_stmts(FILE *out, const StmtList *list, int indent) {
    for (int i = 0; i < list->n; i++) {
        print_indent(out, indent);
        print_stmt(out, list->items[i], indent);
        /* Newlines mean nothing to the parser, so a bare expression starting with '(' or
         * '-' would glue onto the statement before it (`h = f` + `(x)` reads as a call).
         * A ';' keeps them apart. */
        if (i + 1 < list->n && list->items[i + 1]->kind == ST_EXPR) fputc(';', out);
        fputc('\n', out);
    }
}

void ast_print(FILE *out, const Program *p) { print_stmts(out, &p->stmts, 0); }
