/* test_parser.c - Criterion tests for the frontend: lexer, parser, AST printer, and the
 * exact text of syntax diagnostics (file:line:col, message, source line, caret). */
#include <criterion/criterion.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ast.h"
#include "lexer.h"

/* ---- harness --------------------------------------------------------------------------
 * Every parse uses one arena and SrcFiles that live until the test ends (AST locations
 * point at them); fini frees it all so ASan's leak checker stays quiet. */

static Arena arena;
enum { MAX_FILES = 64 };
static SrcFile *files[MAX_FILES];
static int nfiles;
static char *strings[4096];
static int nstrings;

static void cleanup(void) {
    arena_free(&arena);
    /* Fuzz tests recycle file slots themselves; what is left here is still owned. */
    for (int i = 0; i < nfiles; i++) {
        if (!files[i]) continue;
        free((char *)files[i]->text);
        free(files[i]);
    }
    nfiles = 0;
    for (int i = 0; i < nstrings; i++) free(strings[i]);
    nstrings = 0;
    diag_jmp = NULL;
    diag_out = NULL;
}

TestSuite(frontend, .fini = cleanup);

static char *keep(char *s) {
    if (nstrings < (int)(sizeof strings / sizeof strings[0])) strings[nstrings++] = s;
    return s;
}

/* A file holding exactly `len` bytes of `text` (which may contain NULs). */
static SrcFile *make_file(const char *text, size_t len) {
    cr_assert_lt(nfiles, MAX_FILES);
    SrcFile *f = calloc(1, sizeof *f);
    char *copy = malloc(len + 1);
    memcpy(copy, text, len);
    copy[len] = 0;
    f->name = "t.mdl";
    f->text = copy;
    f->len = len;
    files[nfiles++] = f;
    return f;
}

/* Parses; returns the program, or NULL with *err set to the diagnostic text. */
static Program *try_parse_n(const char *text, size_t len, char **err) {
    SrcFile *f = make_file(text, len);
    char *buf = NULL;
    size_t size = 0;
    FILE *mem = open_memstream(&buf, &size);
    diag_out = mem;
    Program *volatile prog = NULL;
    jmp_buf jb;
    if (DIAG_TRY(jb)) prog = parse_program(&arena, f);
    diag_jmp = NULL;
    diag_out = NULL;
    fclose(mem);
    *err = keep(buf);
    return prog;
}

static Program *try_parse(const char *text, char **err) { return try_parse_n(text, strlen(text), err); }

static char *print_program(const Program *p) {
    char *buf = NULL;
    size_t size = 0;
    FILE *mem = open_memstream(&buf, &size);
    ast_print(mem, p);
    fclose(mem);
    return keep(buf);
}

/* Parses text that must be valid and returns the program. */
static Program *parse_ok(const char *text) {
    char *err;
    Program *p = try_parse(text, &err);
    cr_assert_not_null(p, "unexpected parse error for:\n%s\n%s", text, err);
    cr_assert_str_empty(err);
    return p;
}

/* The canonical print of valid text. */
static char *print_of(const char *text) { return print_program(parse_ok(text)); }

/* The diagnostic for text that must be rejected. */
static char *error_of(const char *text) {
    char *err;
    Program *p = try_parse(text, &err);
    cr_assert_null(p, "expected a parse error for:\n%s", text);
    return err;
}

#define ASSERT_ERROR(src, expected) cr_assert_str_eq(error_of(src), expected, "for source: %s", src)

static Token *lex_ok(const char *text, int *n) {
    SrcFile *f = make_file(text, strlen(text));
    jmp_buf jb;
    Token *volatile toks = NULL;
    if (DIAG_TRY(jb)) toks = lex_file(&arena, f, n);
    diag_jmp = NULL;
    cr_assert_not_null(toks, "lexing failed for %s", text);
    return toks;
}

static const char sample[] =
    "# comment to end of line\n"
    "model mlp\n"
    "input image: f32[B, 784]          # dims: integer literal or a name (B)\n"
    "input label: i32[B]\n"
    "param w: f32[784, 10] = normal(0, 0.01)   # initializer optional\n"
    "h = relu(dense(image, 256, name = \"fc1\"))  # calls: positional then keyword args\n"
    "y = f(x) + x                       # expressions\n"
    "logits = dense(h, 10)\n"
    "output logits\n"
    "loss cross_entropy(logits, label)\n"
    "block basic(x, c, stride = 1) {    # params may have defaults (any expr)\n"
    "    h = relu(conv2d(x, c, 3, stride = stride, pad = 1))\n"
    "    if stride != 1 { s = conv2d(x, c, 1, stride = stride) } else { s = x }\n"
    "    return relu(h + s)\n"
    "}\n"
    "train {\n"
    "    batch     = 64\n"
    "    epochs    = 5\n"
    "    optimizer = adam(lr = 1e-3)\n"
    "    seed      = 1\n"
    "}\n";

static const char sample_printed[] =
    "model mlp\n"
    "input image: f32[B, 784]\n"
    "input label: i32[B]\n"
    "param w: f32[784, 10] = normal(0, 0.01)\n"
    "h = relu(dense(image, 256, name = \"fc1\"))\n"
    "y = (f(x) + x)\n"
    "logits = dense(h, 10)\n"
    "output logits\n"
    "loss cross_entropy(logits, label)\n"
    "block basic(x, c, stride = 1) {\n"
    "    h = relu(conv2d(x, c, 3, stride = stride, pad = 1))\n"
    "    if (stride != 1) {\n"
    "        s = conv2d(x, c, 1, stride = stride)\n"
    "    } else {\n"
    "        s = x\n"
    "    }\n"
    "    return relu((h + s))\n"
    "}\n"
    "train {\n"
    "    batch = 64\n"
    "    epochs = 5\n"
    "    optimizer = adam(lr = 0.001)\n"
    "    seed = 1\n"
    "}\n";

/* ---- lexer -------------------------------------------------------------------------- */

Test(frontend, lex_every_token_kind) {
    const char *src =
        "name 42 0.5 \"s\" ( ) [ ] { } , : = ; + - * / // % == != < <= > >= "
        "and or not model input param output loss return if else block train for in";
    // clang-format off
    static const TokKind want[] = {
        TK_IDENT, TK_INT, TK_FLOAT, TK_STRING, TK_LPAREN, TK_RPAREN, TK_LBRACKET,
        TK_RBRACKET, TK_LBRACE, TK_RBRACE, TK_COMMA, TK_COLON, TK_ASSIGN, TK_SEMI,
        TK_PLUS, TK_MINUS, TK_STAR, TK_SLASH, TK_SLASHSLASH, TK_PERCENT, TK_EQ, TK_NE, TK_LT, TK_LE, TK_GT, TK_GE,
        TK_AND, TK_OR, TK_NOT, TK_MODEL, TK_INPUT, TK_PARAM, TK_OUTPUT, TK_LOSS,
        TK_RETURN, TK_IF, TK_ELSE, TK_BLOCK, TK_TRAIN, TK_FOR, TK_IN, TK_EOF,
    };
    // clang-format on
    int n;
    Token *t = lex_ok(src, &n);
    int nwant = (int)(sizeof want / sizeof want[0]);
    cr_assert_eq(n, nwant);
    cr_assert_eq(nwant, TK_COUNT, "every kind is listed once");
    for (int i = 0; i < n; i++) cr_assert_eq(t[i].kind, want[i], "token %d", i);
    cr_assert_eq(t[1].ival, 42);
    cr_assert_float_eq(t[2].fval, 0.5, 0);
    cr_assert_str_eq(t[3].sval, "s");
    cr_assert_eq(t[3].loc.len, 3); /* the quotes are part of the token */
    cr_assert_eq(t[18].loc.len, 2);
    cr_assert_eq(strncmp(t[18].text, "//", 2), 0);
    cr_assert_eq(t[20].loc.len, 2);
    cr_assert_eq(strncmp(t[20].text, "==", 2), 0);
}

Test(frontend, lex_numbers) {
    int n;
    Token *t = lex_ok("1e-3 0.5 1. .5 3e2 1E+2 0 9223372036854775807 007", &n);
    cr_assert_eq(n, 10);
    const double f[] = {1e-3, 0.5, 1.0, 0.5, 300.0, 100.0};
    for (int i = 0; i < 6; i++) {
        cr_assert_eq(t[i].kind, TK_FLOAT, "token %d", i);
        cr_assert_float_eq(t[i].fval, f[i], 0, "token %d", i);
    }
    cr_assert_eq(t[6].kind, TK_INT);
    cr_assert_eq(t[6].ival, 0);
    cr_assert_eq(t[7].ival, INT64_MAX);
    cr_assert_eq(t[8].ival, 7);
    cr_assert_eq(t[3].loc.len, 2);
}

Test(frontend, lex_identifiers_and_keywords) {
    int n;
    Token *t = lex_ok("models _x1 true false If notx and_ or", &n);
    cr_assert_eq(n, 9);
    for (int i = 0; i < 7; i++) cr_assert_eq(t[i].kind, TK_IDENT, "token %d", i);
    cr_assert_eq(t[7].kind, TK_OR);
    cr_assert_eq(t[0].loc.len, 6);
    /* No dots in names: `a.b` is a name followed by an unexpected '.'. */
    ASSERT_ERROR("x = a.b",
                 "t.mdl:1:6: error: unexpected character '.'\n"
                 "    1 | x = a.b\n"
                 "      |      ^\n");
}

Test(frontend, lex_strings_and_escapes) {
    int n;
    Token *t = lex_ok("\"a\\\"b\\\\c\\nd\" \"\" \"h\xC3\xA9\tx\"", &n);
    cr_assert_eq(n, 4);
    cr_assert_str_eq(t[0].sval, "a\"b\\c\nd");
    cr_assert_eq(t[0].loc.len, 12);
    cr_assert_str_eq(t[1].sval, "");
    cr_assert_str_eq(t[2].sval, "h\xC3\xA9\tx");
}

/* x = "<n copies of piece>": a string of n times the piece's resolved length. */
static char *long_string_source(const char *piece, int n) {
    size_t k = strlen(piece);
    char *s = malloc(8 + k * (size_t)n);
    cr_assert_not_null(s);
    size_t len = 0;
    len += (size_t)sprintf(s, "x = \"");
    for (int i = 0; i < n; i++, len += k) memcpy(s + len, piece, k);
    strcpy(s + len, "\"");
    return keep(s);
}

/* docs/language.md: a string has at most 65536 characters, a literal too (escapes
 * counting as the character they make); a 1 MB literal was accepted. */
Test(frontend, lex_string_limit) {
    int n;
    Token *t = lex_ok(long_string_source("a", 65536), &n);
    cr_assert_eq(strlen(t[2].sval), 65536);
    t = lex_ok(long_string_source("\\n", 65536), &n);
    cr_assert_eq(strlen(t[2].sval), 65536);
    const char *want = "t.mdl:1:5: error: this string has 65537 characters, more than the 65536 a string may have\n";
    char *err = error_of(long_string_source("a", 65537));
    cr_assert(!strncmp(err, want, strlen(want)), "%.200s", err);
    err = error_of(long_string_source("\\n", 65537));
    cr_assert(!strncmp(err, want, strlen(want)), "%.200s", err);
    want = "t.mdl:1:5: error: this string has 1000000 characters, more than the 65536 a string may have\n";
    err = error_of(long_string_source("a", 1000000));
    cr_assert(!strncmp(err, want, strlen(want)), "%.200s", err);
}

Test(frontend, lex_comments_semicolons_and_locations) {
    int n;
    Token *t = lex_ok("# only a comment\n\tx = 1; # trailing\r\n  yy\n", &n);
    cr_assert_eq(n, 6);
    cr_assert_eq(t[0].kind, TK_IDENT);
    cr_assert_eq(t[0].loc.line, 2);
    cr_assert_eq(t[0].loc.col, 2); /* a tab counts as one column */
    cr_assert_eq(t[2].loc.col, 6);
    cr_assert_eq(t[3].kind, TK_SEMI);
    cr_assert_eq(t[4].loc.line, 3);
    cr_assert_eq(t[4].loc.col, 3);
    cr_assert_eq(t[4].loc.len, 2);
    /* End of file sits just after the last token, not on the empty last line. */
    cr_assert_eq(t[5].kind, TK_EOF);
    cr_assert_eq(t[5].loc.line, 3);
    cr_assert_eq(t[5].loc.col, 5);
}

Test(frontend, lex_empty_file) {
    int n;
    Token *t = lex_ok("", &n);
    cr_assert_eq(n, 1);
    cr_assert_eq(t[0].kind, TK_EOF);
    cr_assert_eq(t[0].loc.line, 1);
    cr_assert_eq(t[0].loc.col, 1);
    Program *p = parse_ok("  # nothing\n;;\n");
    cr_assert_eq(p->stmts.n, 0);
}

Test(frontend, tok_kind_names) {
    cr_assert_str_eq(tok_kind_name(TK_EOF), "end of file");
    cr_assert_str_eq(tok_kind_name(TK_IDENT), "identifier");
    cr_assert_str_eq(tok_kind_name(TK_LE), "'<='");
    cr_assert_str_eq(tok_kind_name(TK_TRAIN), "'train'");
    cr_assert_str_eq(tok_kind_name(TK_COUNT), "?");
}

/* ---- parsing ------------------------------------------------------------------------ */

Test(frontend, sample_prints_canonically) { cr_assert_str_eq(print_of(sample), sample_printed); }

Test(frontend, sample_structure) {
    Program *p = parse_ok(sample);
    cr_assert_eq(p->stmts.n, 11);
    static const StmtKind kinds[] = {ST_MODEL,  ST_INPUT,  ST_INPUT, ST_PARAM, ST_ASSIGN, ST_ASSIGN,
                                     ST_ASSIGN, ST_OUTPUT, ST_LOSS,  ST_BLOCK, ST_TRAIN};
    for (int i = 0; i < 11; i++) cr_assert_eq(p->stmts.items[i]->kind, kinds[i], "stmt %d", i);

    Stmt *in = p->stmts.items[1];
    cr_assert_str_eq(in->name, "image");
    cr_assert_str_eq(in->type->dtype, "f32");
    cr_assert_eq(in->type->rank, 2);
    cr_assert_str_eq(in->type->dims[0].name, "B");
    cr_assert_null(in->type->dims[1].name);
    cr_assert_eq(in->type->dims[1].value, 784);

    Stmt *h = p->stmts.items[4];
    Expr *relu = h->value;
    cr_assert_eq(relu->kind, EX_CALL);
    cr_assert_str_eq(relu->name, "relu");
    cr_assert_eq(relu->nargs, 1);
    Expr *dense = relu->args[0].value;
    cr_assert_eq(dense->nargs, 3);
    cr_assert_null(dense->args[0].keyword);
    cr_assert_str_eq(dense->args[2].keyword, "name");
    cr_assert_eq(dense->args[2].value->kind, EX_STRING);
    cr_assert_str_eq(dense->args[2].value->sval, "fc1");

    Stmt *blk = p->stmts.items[9];
    cr_assert_str_eq(blk->name, "basic");
    cr_assert_eq(blk->nparams, 3);
    cr_assert_null(blk->params[0].default_value);
    cr_assert_str_eq(blk->params[2].name, "stride");
    cr_assert_eq(blk->params[2].default_value->kind, EX_INT);
    cr_assert_eq(blk->params[2].default_value->ival, 1);
    cr_assert_eq(blk->body.n, 3);
    Stmt *iff = blk->body.items[1];
    cr_assert_eq(iff->kind, ST_IF);
    cr_assert_eq(iff->value->op, OP_NE);
    cr_assert_eq(iff->body.n, 1);
    cr_assert_eq(iff->else_body.n, 1);
    cr_assert_eq(blk->body.items[2]->kind, ST_RETURN);

    Stmt *tr = p->stmts.items[10];
    cr_assert_eq(tr->settings.n, 4);
    cr_assert_eq(tr->settings.items[2]->kind, ST_ASSIGN);
    cr_assert_str_eq(tr->settings.items[2]->name, "optimizer");
    Expr *adam = tr->settings.items[2]->value;
    cr_assert_str_eq(adam->args[0].keyword, "lr");
    cr_assert_float_eq(adam->args[0].value->fval, 1e-3, 0);
}

Test(frontend, precedence) {
    static const char *const cases[][2] = {
        {"x = a + b * c", "x = (a + (b * c))\n"},
        {"x = a * b + c", "x = ((a * b) + c)\n"},
        {"x = a - b - c", "x = ((a - b) - c)\n"},
        {"x = a / b / c", "x = ((a / b) / c)\n"},
        {"x = a // b % c * d", "x = (((a // b) % c) * d)\n"},
        {"x = a + b // c", "x = (a + (b // c))\n"},
        {"x = (a + b) * c", "x = ((a + b) * c)\n"},
        {"x = -a * b", "x = (-a * b)\n"},
        {"x = -(a * b)", "x = -(a * b)\n"},
        {"x = a - -b", "x = (a - -b)\n"},
        {"x = - - a", "x = --a\n"},
        {"x = a + b < c * d", "x = ((a + b) < (c * d))\n"},
        {"x = a == b and c != d or e", "x = (((a == b) and (c != d)) or e)\n"},
        {"x = a or b and c", "x = (a or (b and c))\n"},
        {"x = not a and b", "x = ((not a) and b)\n"},
        {"x = not a == b", "x = (not (a == b))\n"},
        {"x = not not a", "x = (not (not a))\n"},
        {"x = -(not a)", "x = -(not a)\n"},
        {"x = a * (not b)", "x = (a * (not b))\n"},
        {"x = a <= b", "x = (a <= b)\n"},
        {"x = a >= b", "x = (a >= b)\n"},
        {"x = a > -b", "x = (a > -b)\n"},
        {"x = [a + 1, [b], []]", "x = [(a + 1), [b], []]\n"},
        {"x = f()", "x = f()\n"},
        {"x = f (a)", "x = f(a)\n"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        cr_assert_str_eq(print_of(cases[i][0]), cases[i][1], "for source: %s", cases[i][0]);
    }
}

/* The language has no indexing: a '[' right after an expression says so where it is,
 * rather than reading `y = w` and a statement `[0]`. */
Test(frontend, error_indexing) {
    ASSERT_ERROR("y = w[0]",
                 "t.mdl:1:6: error: unexpected '[' after an expression: indexing is not part of the language\n"
                 "    1 | y = w[0]\n"
                 "      |      ^\n"
                 "hint: to take part of a tensor along an axis, use slice(x, axis, start, end)\n");
    ASSERT_ERROR("x = f(a + b, k = c * d)[0]",
                 "t.mdl:1:24: error: unexpected '[' after an expression: indexing is not part of the language\n"
                 "    1 | x = f(a + b, k = c * d)[0]\n"
                 "      |                        ^\n"
                 "hint: to take part of a tensor along an axis, use slice(x, axis, start, end)\n");
    /* a list of lists and a shape still parse */
    parse_ok("p = pad(x, [[0, 0], [1, 1]])\ninput image: f32[B, 784]");
}

/* Block parameters: those with a default come last, as in Python. */
Test(frontend, error_block_parameter_defaults) {
    parse_ok("block f(x, y = 1, z = 2) { return x }");
    ASSERT_ERROR("block f(x = 1, y) { return x }",
                 "t.mdl:1:16: error: parameter 'y' has no default but follows 'x', which has one; parameters with "
                 "defaults come last\n"
                 "    1 | block f(x = 1, y) { return x }\n"
                 "      |                ^\n");
}

/* In a block, a statement after 'return' in the same body is dead code: an error. A
 * return inside an if may be followed by more of the enclosing body. */
Test(frontend, error_statement_after_return) {
    parse_ok("block f(x) { if x > 1 { return x } return 2 * x }");
    ASSERT_ERROR("block f(x) { return x  h = 1 }",
                 "t.mdl:1:24: error: statement after return: it would never run\n"
                 "    1 | block f(x) { return x  h = 1 }\n"
                 "      |                        ^\n");
    ASSERT_ERROR("block f(x) {\n    if x > 1 {\n        return x\n        y = 2\n    }\n    return x\n}",
                 "t.mdl:4:9: error: statement after return: it would never run\n"
                 "    4 |         y = 2\n"
                 "      |         ^\n");
}

Test(frontend, literals_print_back_exactly) {
    cr_assert_str_eq(print_of("x = [.5, 1., 3e2, 1E+2, 1e-3, 0.1, 1e20, 1e-7, 0, 007]"),
                     "x = [0.5, 1.0, 300.0, 100.0, 0.001, 0.1, 1e+20, 1e-07, 0, 7]\n");
    cr_assert_str_eq(print_of("s = \"q\\\"b\\\\n\\n\""), "s = \"q\\\"b\\\\n\\n\"\n");
}

Test(frontend, statements_and_separators) {
    cr_assert_str_eq(print_of("model m; input x: f32[2] param b: f32 y = x output y"),
                     "model m\ninput x: f32[2]\nparam b: f32\ny = x\noutput y\n");
    /* A bare expression statement gets a ';' before it so it cannot glue on. */
    cr_assert_str_eq(print_of("a = b; (c + 1); -d"), "a = b;\n(c + 1);\n-d\n");
    cr_assert_str_eq(print_of("true"), "true\n");
    Program *p = parse_ok("x = true y = false");
    cr_assert_eq(p->stmts.n, 2);
    cr_assert_eq(p->stmts.items[0]->value->kind, EX_NAME);
    cr_assert_str_eq(p->stmts.items[1]->value->name, "false");
}

Test(frontend, if_else_chains) {
    const char *src = "if a { x = 1 } else if b { x = 2 } else if c { } else { x = 3; y = 4 }";
    cr_assert_str_eq(print_of(src),
                     "if a {\n    x = 1\n} else if b {\n    x = 2\n} else if c {\n"
                     "} else {\n    x = 3\n    y = 4\n}\n");
    Program *p = parse_ok(src);
    Stmt *s = p->stmts.items[0];
    cr_assert_eq(s->else_body.n, 1);
    Stmt *s2 = s->else_body.items[0];
    cr_assert_eq(s2->kind, ST_IF);
    cr_assert_str_eq(s2->value->name, "b");
    cr_assert_eq(s2->else_body.items[0]->kind, ST_IF);
    cr_assert_eq(s2->else_body.items[0]->body.n, 0);
    cr_assert_str_eq(print_of("if a { }"), "if a {\n}\n");
}

Test(frontend, for_loops) {
    cr_assert_str_eq(print_of("for i in range(3) { x = f(x, name = \"l\" + i) }"),
                     "for i in range(3) {\n    x = f(x, name = (\"l\" + i))\n}\n");
    Program *p = parse_ok("for c in [16, 32] { if c > 16 { y = 1 } }");
    Stmt *s = p->stmts.items[0];
    cr_assert_eq(s->kind, ST_FOR);
    cr_assert_str_eq(s->name, "c");
    cr_assert_eq(s->value->kind, EX_LIST);
    cr_assert_eq(s->body.n, 1);
    cr_assert_eq(s->body.items[0]->kind, ST_IF);
    ASSERT_ERROR("for in range(3) { }",
                 "t.mdl:1:5: error: expected a loop variable after 'for', found 'in'\n"
                 "    1 | for in range(3) { }\n"
                 "      |     ^~\n");
    ASSERT_ERROR("for i range(3) { }",
                 "t.mdl:1:7: error: expected 'in' after the loop variable, found 'range'\n"
                 "    1 | for i range(3) { }\n"
                 "      |       ^~~~~\n");
    ASSERT_ERROR("for i in range(3) { x = 1",
                 "t.mdl:1:26: error: expected '}' at the end of the 'for' body, found end of file\n"
                 "    1 | for i in range(3) { x = 1\n"
                 "      |                          ^\n");
}

Test(frontend, type_dimensions_are_expressions) {
    cr_assert_str_eq(print_of("param g: f32[1, ch, 2 * ch // 4, B]"), "param g: f32[1, ch, ((2 * ch) // 4), B]\n");
    Program *p = parse_ok("input x: f32[B, n + 1]");
    TypeExpr *t = p->stmts.items[0]->type;
    cr_assert_eq(t->rank, 2);
    cr_assert_str_eq(t->dims[0].name, "B");
    cr_assert_null(t->dims[0].expr);
    cr_assert_not_null(t->dims[1].expr);
    cr_assert_eq(t->dims[1].expr->kind, EX_BINARY);
}

Test(frontend, blocks_and_train) {
    cr_assert_str_eq(print_of("block f() { return 1 } block g(a = [1, 2], b = -1) { y = a }"),
                     "block f() {\n    return 1\n}\n"
                     "block g(a = [1, 2], b = -1) {\n    y = a\n}\n");
    cr_assert_str_eq(print_of("train { } train { a = 1; b = \"x\" ; }"),
                     "train {\n}\ntrain {\n    a = 1\n    b = \"x\"\n}\n");
    Program *p = parse_ok("param w: f32[3]");
    cr_assert_null(p->stmts.items[0]->value);
    p = parse_ok("input s: f32");
    cr_assert_eq(p->stmts.items[0]->type->rank, 0);
}

Test(frontend, locations) {
    Program *p = parse_ok(
        "model m\n"
        "h = relu(a +\n"
        "\t  b * c, k = 1)\n"
        "block f(x, y = 2) {\n"
        "  return -x\n"
        "}\n"
        "input i: f32[N, 3]\n");
    Stmt *m = p->stmts.items[0];
    cr_assert_eq(m->loc.line, 1);
    cr_assert_eq(m->loc.col, 1);
    cr_assert_eq(m->loc.len, 5);
    cr_assert_eq(m->name_loc.col, 7);
    cr_assert_eq(m->name_loc.len, 1);

    Stmt *h = p->stmts.items[1];
    cr_assert_eq(h->loc.line, 2);
    cr_assert_eq(h->loc.col, 1);
    Expr *call = h->value;
    cr_assert_eq(call->loc.line, 2); /* the callee name */
    cr_assert_eq(call->loc.col, 5);
    cr_assert_eq(call->loc.len, 4);
    Expr *plus = call->args[0].value;
    cr_assert_eq(plus->kind, EX_BINARY);
    cr_assert_eq(plus->loc.line, 2); /* the operator */
    cr_assert_eq(plus->loc.col, 12);
    cr_assert_eq(plus->loc.len, 1);
    Expr *times = plus->rhs;
    cr_assert_eq(times->loc.line, 3);
    cr_assert_eq(times->loc.col, 6); /* tab = 1 column */
    cr_assert_eq(times->lhs->loc.col, 4);
    cr_assert_eq(call->args[1].kw_loc.line, 3);
    cr_assert_eq(call->args[1].kw_loc.col, 11);
    cr_assert_eq(call->args[1].value->loc.col, 15);

    Stmt *blk = p->stmts.items[2];
    cr_assert_eq(blk->loc.line, 4);
    cr_assert_eq(blk->name_loc.col, 7);
    cr_assert_eq(blk->params[1].loc.col, 12);
    cr_assert_eq(blk->params[1].default_value->loc.col, 16);
    Stmt *ret = blk->body.items[0];
    cr_assert_eq(ret->loc.line, 5);
    cr_assert_eq(ret->loc.col, 3);
    cr_assert_eq(ret->loc.len, 6);
    cr_assert_eq(ret->value->kind, EX_UNARY);
    cr_assert_eq(ret->value->loc.col, 10);

    Stmt *in = p->stmts.items[3];
    cr_assert_eq(in->type->loc.line, 7);
    cr_assert_eq(in->type->loc.col, 10);
    cr_assert_eq(in->type->loc.len, 3);
    cr_assert_eq(in->type->dims[0].loc.col, 14);
    cr_assert_eq(in->type->dims[1].loc.col, 17);
    cr_assert_eq(in->loc.file, p->file);
    cr_assert_str_eq(in->loc.file->name, "t.mdl");
}

/* ---- errors: the whole diagnostic, caret line included ------------------------------ */

Test(frontend, error_expected_after_arguments) {
    ASSERT_ERROR("y = f(a foo)",
                 "t.mdl:1:9: error: expected ')' after arguments, found 'foo'\n"
                 "    1 | y = f(a foo)\n"
                 "      |         ^~~\n");
    ASSERT_ERROR("y = f(a",
                 "t.mdl:1:8: error: expected ')' after arguments, found end of file\n"
                 "    1 | y = f(a\n"
                 "      |        ^\n");
    ASSERT_ERROR("y = f(a \"s\" )",
                 "t.mdl:1:9: error: expected ')' after arguments, found '\"s\"'\n"
                 "    1 | y = f(a \"s\" )\n"
                 "      |         ^~~\n");
}

Test(frontend, error_lexical) {
    ASSERT_ERROR("x = @",
                 "t.mdl:1:5: error: unexpected character '@'\n"
                 "    1 | x = @\n"
                 "      |     ^\n");
    ASSERT_ERROR("x = \"ab\ncd\"",
                 "t.mdl:1:5: error: unterminated string\n"
                 "    1 | x = \"ab\n"
                 "      |     ^~~\n");
    ASSERT_ERROR("x = \"abc",
                 "t.mdl:1:5: error: unterminated string\n"
                 "    1 | x = \"abc\n"
                 "      |     ^~~~\n");
    ASSERT_ERROR("x = \"abc\\",
                 "t.mdl:1:5: error: unterminated string\n"
                 "    1 | x = \"abc\\\n"
                 "      |     ^~~~~\n");
    ASSERT_ERROR("x = \"a\\tb\"",
                 "t.mdl:1:7: error: unknown escape '\\t' in string\n"
                 "    1 | x = \"a\\tb\"\n"
                 "      |       ^~\n");
    ASSERT_ERROR("x = 1e + 2",
                 "t.mdl:1:5: error: invalid number '1e'\n"
                 "    1 | x = 1e + 2\n"
                 "      |     ^~\n");
    ASSERT_ERROR("x = 1e-",
                 "t.mdl:1:5: error: invalid number '1e-'\n"
                 "    1 | x = 1e-\n"
                 "      |     ^~~\n");
    ASSERT_ERROR("x = 12abc",
                 "t.mdl:1:5: error: invalid number '12abc'\n"
                 "    1 | x = 12abc\n"
                 "      |     ^~~~~\n");
    ASSERT_ERROR("x = 1.2.3",
                 "t.mdl:1:5: error: invalid number '1.2.3'\n"
                 "    1 | x = 1.2.3\n"
                 "      |     ^~~~~\n");
    ASSERT_ERROR("a = 1\nx = 99999999999999999999",
                 "t.mdl:2:5: error: integer literal '99999999999999999999' is too large\n"
                 "    2 | x = 99999999999999999999\n"
                 "      |     ^~~~~~~~~~~~~~~~~~~~\n");
    ASSERT_ERROR("x = 1e999",
                 "t.mdl:1:5: error: float literal '1e999' is out of range\n"
                 "    1 | x = 1e999\n"
                 "      |     ^~~~~\n");
    ASSERT_ERROR("x = \xC3\xA9",
                 "t.mdl:1:5: error: unexpected character '\xC3\xA9' (U+00E9)\n"
                 "    1 | x = \xC3\xA9\n"
                 "      |     ^\n");
}

/* Bytes a terminal would act on, or could not show, are shown escaped in the excerpt, and
 * the caret stays under them (an escape is 4 columns). */
Test(frontend, error_bad_bytes) {
    ASSERT_ERROR("x = \x01",
                 "t.mdl:1:5: error: unexpected byte 0x01\n"
                 "    1 | x = \\x01\n"
                 "      |     ^~~~\n");
    ASSERT_ERROR("x = \xFF",
                 "t.mdl:1:5: error: unexpected byte 0xFF\n"
                 "    1 | x = \\xff\n"
                 "      |     ^~~~\n");
    ASSERT_ERROR("# ok \xC3\xA9 but \xC3(\n",
                 "t.mdl:1:13: error: unexpected byte 0xC3\n"
                 "    1 | # ok \xC3\xA9 but \\xc3(\n"
                 "      |            ^~~~\n");
    ASSERT_ERROR("s = \"a\x02\"",
                 "t.mdl:1:7: error: unexpected byte 0x02\n"
                 "    1 | s = \"a\\x02\"\n"
                 "      |       ^~~~\n");
    /* A NUL inside the file is reported, not taken as the end of the text, and shown. */
    char *err;
    Program *p = try_parse_n("x = 1\0y", 7, &err);
    cr_assert_null(p);
    cr_assert_str_eq(err,
                     "t.mdl:1:6: error: unexpected byte 0x00\n"
                     "    1 | x = 1\\x00y\n"
                     "      |      ^~~~\n");
}

/* An escape sequence (ESC [ 31 m: red) or invalid UTF-8 anywhere in the line shown, even
 * past the error, reaches the terminal escaped; so do invisible characters in a message. */
Test(frontend, error_excerpts_escape_terminal_bytes) {
    ASSERT_ERROR("h = \"\x1b[31mred\" + 1",
                 "t.mdl:1:6: error: unexpected byte 0x1B\n"
                 "    1 | h = \"\\x1b[31mred\" + 1\n"
                 "      |      ^~~~\n");
    ASSERT_ERROR("h = @ # \xff\xfe \x1b[2J",
                 "t.mdl:1:5: error: unexpected character '@'\n"
                 "    1 | h = @ # \\xff\\xfe \\x1b[2J\n"
                 "      |     ^\n");
    /* U+202E (right-to-left override) would reorder what follows it on the screen */
    ASSERT_ERROR("h = \xe2\x80\xae",
                 "t.mdl:1:5: error: unexpected character '\\xe2\\x80\\xae' (U+202E)\n"
                 "    1 | h = \\xe2\\x80\\xae\n"
                 "      |     ^~~~~~~~~~~~\n");
    /* the caret counts a multibyte character as one column */
    ASSERT_ERROR("h = \"caf\xC3\xA9\" + @",
                 "t.mdl:1:15: error: unexpected character '@'\n"
                 "    1 | h = \"caf\xC3\xA9\" + @\n"
                 "      |              ^\n");
}

/* A byte-order mark may start a file (it is skipped: columns count from after it); one
 * anywhere else is named. */
Test(frontend, byte_order_mark) {
    Program *p = parse_ok("\xEF\xBB\xBFmodel m\ny = 1\n");
    cr_assert_not_null(p);
    ASSERT_ERROR("\xEF\xBB\xBFy = @",
                 "t.mdl:1:5: error: unexpected character '@'\n"
                 "    1 | y = @\n"
                 "      |     ^\n");
    ASSERT_ERROR("y = 1\n\xEF\xBB\xBFz = 2",
                 "t.mdl:2:1: error: unexpected byte-order mark (U+FEFF): one may only start the file\n"
                 "    2 | \\xef\\xbb\\xbfz = 2\n"
                 "      | ^~~~~~~~~~~~\n");
}

/* CRLF line ends work (the CR is not shown); a lone CR is refused, shown escaped. */
Test(frontend, line_endings) {
    parse_ok("model m\r\ny = 1\r\n# comment\r\nz = 2\r\n");
    ASSERT_ERROR("y = 1\r\nz = @\r\n",
                 "t.mdl:2:5: error: unexpected character '@'\n"
                 "    2 | z = @\n"
                 "      |     ^\n");
    ASSERT_ERROR("model m\ry = 1\r",
                 "t.mdl:1:8: error: line endings: lone CR (a carriage return without a line feed after it); "
                 "expected LF or CRLF line endings\n"
                 "    1 | model m\\x0dy = 1\\x0d\n"
                 "      |        ^~~~\n");
    ASSERT_ERROR("# old Mac\ry = 1\r",
                 "t.mdl:1:10: error: line endings: lone CR (a carriage return without a line feed after it); "
                 "expected LF or CRLF line endings\n"
                 "    1 | # old Mac\\x0dy = 1\\x0d\n"
                 "      |          ^~~~\n");
}

/* From line 100000 on the line number is wider than 5 digits: the caret line's gutter
 * widens with it. */
Test(frontend, wide_line_numbers_keep_the_caret_aligned) {
    size_t n = 1000000;
    char *src = keep(malloc(n + 8));
    memset(src, '\n', n);
    strcpy(src + n, "y = @");
    ASSERT_ERROR(src,
                 "t.mdl:1000001:5: error: unexpected character '@'\n"
                 "1000001 | y = @\n"
                 "        |     ^\n");
}

Test(frontend, error_hints_for_other_languages) {
    ASSERT_ERROR("x = !a",
                 "t.mdl:1:5: error: unexpected character '!'\n"
                 "    1 | x = !a\n"
                 "      |     ^\n"
                 "hint: use 'not' for negation\n");
    ASSERT_ERROR("x = a && b",
                 "t.mdl:1:7: error: unexpected character '&'\n"
                 "    1 | x = a && b\n"
                 "      |       ^\n"
                 "hint: use 'and'\n");
    ASSERT_ERROR("x = a || b",
                 "t.mdl:1:7: error: unexpected character '|'\n"
                 "    1 | x = a || b\n"
                 "      |       ^\n"
                 "hint: use 'or'\n");
}

Test(frontend, error_statements) {
    ASSERT_ERROR(") = 3",
                 "t.mdl:1:1: error: expected a statement, found ')'\n"
                 "    1 | ) = 3\n"
                 "      | ^\n");
    ASSERT_ERROR("x = 1\n  else",
                 "t.mdl:2:3: error: expected a statement, found 'else'\n"
                 "    2 |   else\n"
                 "      |   ^~~~\n");
    ASSERT_ERROR("block a() { block b() {} }",
                 "t.mdl:1:13: error: a block cannot be defined inside another block\n"
                 "    1 | block a() { block b() {} }\n"
                 "      |             ^~~~~\n");
    ASSERT_ERROR("block a() { if c { block b() {} } }",
                 "t.mdl:1:20: error: a block cannot be defined inside another block\n"
                 "    1 | block a() { if c { block b() {} } }\n"
                 "      |                    ^~~~~\n");
    ASSERT_ERROR("if c { block b() {} }",
                 "t.mdl:1:8: error: a block can only be defined at the top level\n"
                 "    1 | if c { block b() {} }\n"
                 "      |        ^~~~~\n");
    ASSERT_ERROR("model",
                 "t.mdl:1:6: error: expected a model name after 'model', found end of file\n"
                 "    1 | model\n"
                 "      |      ^\n");
    ASSERT_ERROR("input x f32[3]",
                 "t.mdl:1:9: error: expected ':' after the input name, found 'f32'\n"
                 "    1 | input x f32[3]\n"
                 "      |         ^~~\n");
    ASSERT_ERROR("param 3: f32",
                 "t.mdl:1:7: error: expected a parameter name after 'param', found '3'\n"
                 "    1 | param 3: f32\n"
                 "      |       ^\n");
    ASSERT_ERROR("input x: [3]",
                 "t.mdl:1:10: error: expected a type such as f32[N], found '['\n"
                 "    1 | input x: [3]\n"
                 "      |          ^\n");
    ASSERT_ERROR(
        "input x: f32[3,]",
        "t.mdl:1:16: error: expected a dimension (an integer, B, or a compile-time integer expression), found ']'\n"
        "    1 | input x: f32[3,]\n"
        "      |                ^\n");
    ASSERT_ERROR("input x: f32[3 4]",
                 "t.mdl:1:16: error: expected ',' or ']' after a dimension, found '4'\n"
                 "    1 | input x: f32[3 4]\n"
                 "      |                ^\n");
    ASSERT_ERROR("param w: f32[2] = ",
                 "t.mdl:1:18: error: expected an expression, found end of file\n"
                 "    1 | param w: f32[2] = \n"
                 "      |                  ^\n");
}

Test(frontend, error_if_block_train) {
    ASSERT_ERROR("if x y = 1",
                 "t.mdl:1:6: error: expected '{' after the condition, found 'y'\n"
                 "    1 | if x y = 1\n"
                 "      |      ^\n");
    ASSERT_ERROR("if x { y = 1 \n\n",
                 "t.mdl:1:13: error: expected '}' at the end of the 'if' body, found end of file\n"
                 "    1 | if x { y = 1 \n"
                 "      |             ^\n");
    ASSERT_ERROR("if x { } else z",
                 "t.mdl:1:15: error: expected '{' or 'if' after 'else', found 'z'\n"
                 "    1 | if x { } else z\n"
                 "      |               ^\n");
    ASSERT_ERROR("if x { } else { ",
                 "t.mdl:1:16: error: expected '}' at the end of the 'else' body, found end of file\n"
                 "    1 | if x { } else { \n"
                 "      |                ^\n");
    ASSERT_ERROR("if x { ) }",
                 "t.mdl:1:8: error: expected a statement, found ')'\n"
                 "    1 | if x { ) }\n"
                 "      |        ^\n");
    ASSERT_ERROR("block",
                 "t.mdl:1:6: error: expected a block name after 'block', found end of file\n"
                 "    1 | block\n"
                 "      |      ^\n");
    ASSERT_ERROR("block f {",
                 "t.mdl:1:9: error: expected '(' after the block name, found '{'\n"
                 "    1 | block f {\n"
                 "      |         ^\n");
    ASSERT_ERROR("block f(1) {}",
                 "t.mdl:1:9: error: expected a parameter name, found '1'\n"
                 "    1 | block f(1) {}\n"
                 "      |         ^\n");
    ASSERT_ERROR("block f(a b) {}",
                 "t.mdl:1:11: error: expected ',' or ')' after a parameter, found 'b'\n"
                 "    1 | block f(a b) {}\n"
                 "      |           ^\n");
    ASSERT_ERROR("block f(a, a) {}",
                 "t.mdl:1:12: error: parameter 'a' given twice\n"
                 "    1 | block f(a, a) {}\n"
                 "      |            ^\n");
    ASSERT_ERROR("block f(a) x",
                 "t.mdl:1:12: error: expected '{' after the block parameters, found 'x'\n"
                 "    1 | block f(a) x\n"
                 "      |            ^\n");
    ASSERT_ERROR("block f(a) { return a",
                 "t.mdl:1:22: error: expected '}' at the end of the block body, found end of file\n"
                 "    1 | block f(a) { return a\n"
                 "      |                      ^\n");
    ASSERT_ERROR("train a = 1",
                 "t.mdl:1:7: error: expected '{' after 'train', found 'a'\n"
                 "    1 | train a = 1\n"
                 "      |       ^\n");
    ASSERT_ERROR("train { a 3 }",
                 "t.mdl:1:11: error: expected '=' after the setting name, found '3'\n"
                 "    1 | train { a 3 }\n"
                 "      |           ^\n");
    ASSERT_ERROR("train { 3 }",
                 "t.mdl:1:9: error: expected a setting name or '}', found '3'\n"
                 "    1 | train { 3 }\n"
                 "      |         ^\n");
}

Test(frontend, error_expressions) {
    ASSERT_ERROR("y = f(a = 1, b)",
                 "t.mdl:1:14: error: positional argument after keyword argument\n"
                 "    1 | y = f(a = 1, b)\n"
                 "      |              ^\n");
    ASSERT_ERROR("y = f(x = 1, x = 2)",
                 "t.mdl:1:14: error: keyword argument 'x' given twice\n"
                 "    1 | y = f(x = 1, x = 2)\n"
                 "      |              ^\n");
    ASSERT_ERROR("x = (a b",
                 "t.mdl:1:8: error: expected ')' after expression, found 'b'\n"
                 "    1 | x = (a b\n"
                 "      |        ^\n");
    ASSERT_ERROR("x = [a b",
                 "t.mdl:1:8: error: expected ']' after list elements, found 'b'\n"
                 "    1 | x = [a b\n"
                 "      |        ^\n");
    ASSERT_ERROR("x = a < b < c",
                 "t.mdl:1:11: error: comparison operators cannot be chained\n"
                 "    1 | x = a < b < c\n"
                 "      |           ^\n"
                 "hint: combine comparisons with 'and'\n");
    ASSERT_ERROR("x = a * not b",
                 "t.mdl:1:9: error: expected an expression, found 'not'\n"
                 "    1 | x = a * not b\n"
                 "      |         ^~~\n");
    ASSERT_ERROR("x = model",
                 "t.mdl:1:5: error: expected an expression, found 'model'\n"
                 "    1 | x = model\n"
                 "      |     ^~~~~\n");
    ASSERT_ERROR("x = f(,)",
                 "t.mdl:1:7: error: expected an expression, found ','\n"
                 "    1 | x = f(,)\n"
                 "      |       ^\n");
}

/* ---- robustness --------------------------------------------------------------------- */

static char *repeat(const char *s, int n, const char *tail) {
    size_t k = strlen(s), t = strlen(tail);
    char *buf = malloc(k * (size_t)n + t + 1);
    for (int i = 0; i < n; i++) memcpy(buf + k * (size_t)i, s, k);
    memcpy(buf + k * (size_t)n, tail, t + 1);
    return keep(buf);
}

Test(frontend, deep_nesting_is_an_error_not_a_crash) {
    char *err;
    cr_assert_null(try_parse(repeat("(", 100000, ""), &err));
    cr_assert(strstr(err, "t.mdl:1:257: error: expression nested more than 256 levels deep\n") == err, "%s", err);
    cr_assert_null(try_parse(repeat("x = -", 1, repeat("-", 100000, "a")), &err));
    cr_assert(strstr(err, "error: expression nested more than 256 levels deep\n"), "%s", err);
    cr_assert_null(try_parse(repeat("f(", 100000, ""), &err));
    cr_assert(strstr(err, "error: expression nested more than 256 levels deep\n"), "%s", err);
    cr_assert_null(try_parse(repeat("not ", 100000, ""), &err));
    cr_assert(strstr(err, "error: expression nested more than 256 levels deep\n"), "%s", err);
    cr_assert_null(try_parse(repeat("[", 100000, ""), &err));
    cr_assert(strstr(err, "error: expression nested more than 256 levels deep\n"), "%s", err);
    /* A long flat chain builds a tall tree too, so it is bounded as well. */
    cr_assert_null(try_parse(repeat("a + ", 100000, "a"), &err));
    cr_assert(strstr(err,
                     "t.mdl:1:1027: error: expression nested more than 256 levels deep (each operator of a chain "
                     "like a + b + c is a level)\n") == err,
              "%s", err);
    cr_assert(strstr(err, "hint: split a long chain into parts"), "%s", err);
    cr_assert_null(try_parse(repeat("if a { ", 100000, ""), &err));
    cr_assert(strstr(err, "t.mdl:1:1798: error: statements nested more than 256 levels deep\n") == err, "%s", err);
    /* Bodies and expressions share the one budget, and the message says how many bodies
     * took part: 100 parentheses inside 200 ifs pass it. */
    cr_assert_null(try_parse(repeat("if a { ", 200, repeat("(", 100, "")), &err));
    cr_assert(strstr(err,
                     "error: expression nested more than 256 levels deep, counting the 200 if, for and block "
                     "bodies around it\n"),
              "%s", err);

    /* Reasonable nesting is fine: 200 parentheses, a 200-term sum, 100 nested ifs. */
    char *src = keep(malloc(1000));
    strcpy(src, "x = ");
    strcat(strcat(strcat(src, repeat("(", 200, "")), "a"), repeat(")", 200, ""));
    cr_assert_str_eq(print_of(src), "x = a\n");
    Program *p = parse_ok(repeat("a + ", 199, "a"));
    cr_assert_eq(p->stmts.items[0]->value->kind, EX_BINARY);
    p = parse_ok(repeat("if a { ", 100, repeat("}", 100, "")));
    cr_assert_eq(p->stmts.items[0]->body.items[0]->kind, ST_IF);
}

/* B is the batch size in shapes and arithmetic alike: no statement may bind the name. */
Test(frontend, error_batch_cannot_be_bound) {
    ASSERT_ERROR("B = 3",
                 "t.mdl:1:1: error: B is the batch size; it cannot be assigned\n"
                 "    1 | B = 3\n"
                 "      | ^\n");
    ASSERT_ERROR("for B in [1, 2] { }",
                 "t.mdl:1:5: error: B is the batch size; it cannot be a loop variable\n"
                 "    1 | for B in [1, 2] { }\n"
                 "      |     ^\n");
    ASSERT_ERROR("block f(x, B) { return x }",
                 "t.mdl:1:12: error: B is the batch size; it cannot be a block parameter\n"
                 "    1 | block f(x, B) { return x }\n"
                 "      |            ^\n");
    ASSERT_ERROR("input B: f32[B, 4]",
                 "t.mdl:1:7: error: B is the batch size; it cannot be an input's name\n"
                 "    1 | input B: f32[B, 4]\n"
                 "      |       ^\n");
    ASSERT_ERROR("param B: f32[4]",
                 "t.mdl:1:7: error: B is the batch size; it cannot be a parameter's name\n"
                 "    1 | param B: f32[4]\n"
                 "      |       ^\n");
    /* reading B, and names that merely start with it, stay fine */
    Program *p = parse_ok("Bx = 3\nb = B * 2\nfor Bi in [1] { }\ntrain { batch = 4 }\n");
    cr_assert_eq(p->stmts.n, 4);
}

/* true and false are the booleans: rebinding one (true = false) would silently invert every
 * `if true` and `bias = true` after it, so no statement may bind them. */
Test(frontend, error_booleans_cannot_be_bound) {
    ASSERT_ERROR("true = false",
                 "t.mdl:1:1: error: 'true' is a boolean value; it cannot be assigned\n"
                 "    1 | true = false\n"
                 "      | ^~~~\n");
    ASSERT_ERROR("for false in [1, 2] { }",
                 "t.mdl:1:5: error: 'false' is a boolean value; it cannot be a loop variable\n"
                 "    1 | for false in [1, 2] { }\n"
                 "      |     ^~~~~\n");
    ASSERT_ERROR("block f(x, true = false) { return x }",
                 "t.mdl:1:12: error: 'true' is a boolean value; it cannot be a block parameter\n"
                 "    1 | block f(x, true = false) { return x }\n"
                 "      |            ^~~~\n");
    ASSERT_ERROR("param false: f32[4]",
                 "t.mdl:1:7: error: 'false' is a boolean value; it cannot be a parameter's name\n"
                 "    1 | param false: f32[4]\n"
                 "      |       ^~~~~\n");
    Program *p = parse_ok("trueish = true\nfalse_ = not false\n");
    cr_assert_eq(p->stmts.n, 2);
}

/* Every block call takes name = "..." as its scope, so a parameter called `name` could
 * never be passed by keyword (and with a default would quietly keep it). */
Test(frontend, error_block_parameter_called_name) {
    ASSERT_ERROR("block f(x, name = \"a\") { return x }",
                 "t.mdl:1:12: error: a block parameter cannot be called 'name': name = \"...\" in a call is the "
                 "call's scope\n"
                 "    1 | block f(x, name = \"a\") { return x }\n"
                 "      |            ^~~~\n"
                 "hint: give the parameter another name, e.g. 'layer_name'\n");
}

/* A nonzero literal that a double cannot hold is refused at both ends of the range; a
 * double's denormal (1e-320) is a number, which lowering checks where it becomes an f32. */
Test(frontend, float_literals_out_of_range) {
    ASSERT_ERROR("x = 1e-400",
                 "t.mdl:1:5: error: float literal '1e-400' is out of range\n"
                 "    1 | x = 1e-400\n"
                 "      |     ^~~~~~\n");
    Program *p = parse_ok("x = 0e-400\ny = 1e-320\n");
    cr_assert_eq(p->stmts.items[0]->value->fval, 0.0);
    cr_assert_gt(p->stmts.items[1]->value->fval, 0.0);
}

/* A diagnostic stays short however long the line or the token: the source line shows a
 * window of 120 bytes around the caret (with "..." where it is cut), the caret still under
 * the culprit; a long quoted token in the message shows its first 64 and last 24 bytes. */
Test(frontend, error_excerpts_are_bounded) {
    /* the caret at column 205: the window is the line's last 120 bytes */
    char *src = repeat(" ", 200, "@");
    char *want = keep(malloc(1024));
    snprintf(want, 1024,
             "t.mdl:1:201: error: unexpected character '@'\n"
             "    1 | ...%s\n"
             "      |    %s^\n",
             repeat(" ", 119, "@"), repeat(" ", 119, ""));
    ASSERT_ERROR(src, want);
    /* a 201-byte invalid number at column 5: the window is the line's first 120 bytes */
    src = repeat("a", 200, "");
    src = keep(strcat(strcpy(malloc(256), "x = 1"), src));
    snprintf(want, 1024,
             "t.mdl:1:5: error: invalid number '1%s...%s'\n"
             "    1 | x = 1%s...\n"
             "      |     ^%s\n",
             repeat("a", 63, ""), repeat("a", 24, ""), repeat("a", 115, ""), repeat("~", 115, ""));
    ASSERT_ERROR(src, want);
    /* the whole diagnostic of a 100,000-byte line is a few hundred bytes */
    char *err;
    cr_assert_null(try_parse(repeat(" ", 100000, "x = @"), &err));
    cr_assert_lt(strlen(err), 400, "%s", err);
}

/* Printing is canonical: parse(print(x)) prints the same as x. */
static void assert_round_trip(const char *src) {
    char *once = print_of(src);
    char *twice = print_of(once);
    cr_assert_str_eq(twice, once, "round trip of:\n%s", src);
}

Test(frontend, round_trip) {
    assert_round_trip(sample);
    assert_round_trip(sample_printed);
    static const char *const srcs[] = {
        "x = -(not a) * [1., -2, \"s\\\"\"] / (a or b and not c)",
        "if a { } else if b { if c { x = 1 } else { y = -0.25e-3 } } else { z = f(k = 1) }",
        "a = b; (c); -d; [e]; f(g)",
        "input s: f32; [a]",
        "block f(a = not b, c = 1e300) { return -(-a) } train { x = 1 y = [] }",
        "x = 0.1 + 0.2 + 1e-300 + 123456.789 + 4.9e-324",
    };
    for (size_t i = 0; i < sizeof srcs / sizeof srcs[0]; i++) assert_round_trip(srcs[i]);
}

/* Parses arbitrary bytes: it must either succeed (and then round-trip) or report exactly
 * one diagnostic that starts with the file name. Reaching the end of this at all proves
 * nothing crashed or overflowed. */
static void parse_anything(const char *text, size_t len) {
    char *err;
    Program *p = try_parse_n(text, len, &err);
    if (p) {
        cr_assert_str_empty(err);
        char *once = print_program(p);
        cr_assert_str_eq(print_of(once), once, "round trip of %.*s", (int)len, text);
    } else {
        cr_assert(strncmp(err, "t.mdl:", 6) == 0, "bad diagnostic: %s", err);
        cr_assert(strstr(err, ": error: "), "%s", err);
    }
    /* Release this input's memory so thousands of cases stay small. */
    arena_free(&arena);
    cleanup();
}

Test(frontend, every_prefix_of_sample_parses_or_errors_cleanly) {
    size_t n = strlen(sample);
    int ok = 0;
    for (size_t i = 0; i <= n; i++) {
        char *err;
        Program *p = try_parse_n(sample, i, &err);
        ok += p != NULL;
        if (!p) cr_assert(strncmp(err, "t.mdl:", 6) == 0, "prefix %zu: %s", i, err);
        cleanup();
    }
    /* Some prefixes are complete programs (e.g. ending after `model mlp`), most are not. */
    cr_assert_gt(ok, 10);
    cr_assert_lt(ok, (int)n / 2);
}

static uint64_t rng_state = 0x9E3779B97F4A7C15ull;
static uint32_t rng(void) {
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (uint32_t)(rng_state >> 11);
}

Test(frontend, random_bytes_never_crash) {
    char buf[64];
    for (int iter = 0; iter < 3000; iter++) {
        size_t len = rng() % sizeof buf;
        for (size_t i = 0; i < len; i++) {
            /* Mostly printable so the lexer gets past the first byte now and then. */
            uint32_t r = rng();
            buf[i] = (char)(r % 4 ? 32 + r / 4 % 95 : r / 4 % 256);
        }
        parse_anything(buf, len);
    }
}

Test(frontend, random_token_soup_never_crashes) {
    // clang-format off
    static const char *const words[] = {
        "model", "input", "param", "output", "loss", "return", "if", "else", "block", "train",
        "and", "or", "not", "x", "f", "true", "1", "2.5", ".5", "\"s\"", "(", ")", "[", "]",
        "{", "}", ",", ":", "=", ";", "+", "-", "*", "/", "==", "!=", "<", "<=", ">", ">=",
        "f32", "\n", "# c\n",
    };
    // clang-format on
    int nwords = (int)(sizeof words / sizeof words[0]), parsed = 0;
    char buf[512];
    for (int iter = 0; iter < 5000; iter++) {
        size_t len = 0;
        int ntok = 1 + (int)(rng() % 24);
        for (int k = 0; k < ntok; k++) {
            const char *w = words[rng() % (uint32_t)nwords];
            size_t wl = strlen(w);
            memcpy(buf + len, w, wl);
            len += wl;
            buf[len++] = ' ';
        }
        char *err;
        Program *p = try_parse_n(buf, len, &err);
        parsed += p != NULL;
        arena_free(&arena);
        cleanup();
        parse_anything(buf, len);
    }
    /* The soup must reach the successful paths too, or the round-trip check is idle. */
    cr_assert_gt(parsed, 50);
}
