/* lexer.c - the .mdl tokenizer; see lexer.h.
 *
 * A single forward pass over the bytes. Positions are tracked as (line, column) while
 * scanning so every token and every error gets an exact location without a second pass.
 * Columns count bytes; diag.c draws the caret under what they point at as the line is shown
 * (a multibyte character one column, an escaped byte four). */
#include "lexer.h"

#include "ast.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef struct Lexer {
    Arena *arena;
    const SrcFile *file;
    const char *src; /* file->text */
    size_t len, pos;
    int line, col; /* of src[pos] */
    Token *toks;
    int n, cap;
} Lexer;

// clang-format off
static const struct {
    const char *word;
    TokKind kind;
} keywords[] = {
    {"and", TK_AND},       {"or", TK_OR},         {"not", TK_NOT},
    {"model", TK_MODEL},   {"input", TK_INPUT},   {"param", TK_PARAM},
    {"output", TK_OUTPUT}, {"loss", TK_LOSS},     {"return", TK_RETURN},
    {"if", TK_IF},         {"else", TK_ELSE},     {"block", TK_BLOCK},
    {"for", TK_FOR},       {"in", TK_IN},
    {"train", TK_TRAIN},
};
// clang-format on

const char *tok_kind_name(TokKind k) {
    // clang-format off
    static const char *const names[TK_COUNT] = {
        [TK_EOF] = "end of file", [TK_IDENT] = "identifier", [TK_INT] = "integer",
        [TK_FLOAT] = "number", [TK_STRING] = "string",
        [TK_LPAREN] = "'('", [TK_RPAREN] = "')'", [TK_LBRACKET] = "'['",
        [TK_RBRACKET] = "']'", [TK_LBRACE] = "'{'", [TK_RBRACE] = "'}'",
        [TK_COMMA] = "','", [TK_COLON] = "':'", [TK_ASSIGN] = "'='", [TK_SEMI] = "';'",
        [TK_PLUS] = "'+'", [TK_MINUS] = "'-'", [TK_STAR] = "'*'", [TK_SLASH] = "'/'",
        [TK_SLASHSLASH] = "'//'", [TK_PERCENT] = "'%'",
        [TK_EQ] = "'=='", [TK_NE] = "'!='", [TK_LT] = "'<'", [TK_LE] = "'<='",
        [TK_GT] = "'>'", [TK_GE] = "'>='",
        [TK_AND] = "'and'", [TK_OR] = "'or'", [TK_NOT] = "'not'",
        [TK_MODEL] = "'model'", [TK_INPUT] = "'input'", [TK_PARAM] = "'param'",
        [TK_OUTPUT] = "'output'", [TK_LOSS] = "'loss'", [TK_RETURN] = "'return'",
        [TK_IF] = "'if'", [TK_ELSE] = "'else'", [TK_BLOCK] = "'block'",
        [TK_TRAIN] = "'train'", [TK_FOR] = "'for'", [TK_IN] = "'in'",
    };
    // clang-format on
    return (unsigned)k < TK_COUNT && names[k] ? names[k] : "?";
}

static int peek(const Lexer *L, size_t ahead) {
    /* Past the end reads as -1 so a check like `== '='` can never match garbage. */
    return L->pos + ahead < L->len ? (unsigned char)L->src[L->pos + ahead] : -1;
}

static void advance(Lexer *L) {
    if (L->src[L->pos] == '\n') {
        L->line++;
        L->col = 1;
    } else {
        L->col++;
    }
    L->pos++;
}

static SrcLoc here(const Lexer *L, int len) {
    return (SrcLoc){.file = L->file, .line = L->line, .col = L->col, .len = len > 0 ? len : 1};
}

static int is_ident_start(int c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_'; }
static int is_digit(int c) { return c >= '0' && c <= '9'; }
static int is_ident_char(int c) { return is_ident_start(c) || is_digit(c); }

/* Length of the valid UTF-8 character at src[pos] (its code point in *cp), or 0 if the
 * bytes there are not valid UTF-8. */
static int utf8_len(const Lexer *L, unsigned *cp) { return diag_utf8_len(L->src + L->pos, L->len - L->pos, cp); }

/* Refuses a CR that no LF follows. CRLF files work; a lone CR (classic Mac OS line ends)
 * would make the whole file one line, every location after it wrong. */
static void check_lone_cr(Lexer *L) {
    if (peek(L, 0) == '\r' && peek(L, 1) != '\n') {
        SrcLoc loc = here(L, 1);
        diag_error(&loc,
                   "line endings: lone CR (a carriage return without a line feed after it); expected LF or "
                   "CRLF line endings");
    }
}

/* A byte-order mark past the file's start: an editor's stray, anywhere (code, comments
 * and strings alike). */
static void check_bom(Lexer *L, int n, unsigned cp) {
    if (n <= 0 || cp != 0xFEFF) return;
    SrcLoc loc = here(L, n);
    diag_error(&loc, "unexpected byte-order mark (U+FEFF): one may only start the file");
}

/* Rejects the byte at pos if it may not appear in a comment or string: a control byte
 * (other than tab, and CR so CRLF files work), a byte that does not start valid UTF-8, or
 * a byte-order mark. Returns the byte count of the character otherwise. Strings check for
 * CR themselves. */
static int check_text_char(Lexer *L) {
    int c = peek(L, 0);
    unsigned cp = 0;
    int n = utf8_len(L, &cp);
    check_lone_cr(L);
    check_bom(L, n, cp);
    if ((c < 0x20 && c != '\t' && c != '\r') || c == 0x7F || n == 0) {
        SrcLoc loc = here(L, 1);
        diag_error(&loc, "unexpected byte 0x%02X", (unsigned)c);
    }
    return n;
}

static Token *push(Lexer *L, TokKind kind, SrcLoc loc, size_t start) {
    if (L->n == L->cap) {
        int ncap = L->cap ? L->cap * 2 : 256;
        L->toks = arena_realloc(L->arena, L->toks, sizeof(Token) * (size_t)L->cap, sizeof(Token) * (size_t)ncap);
        L->cap = ncap;
    }
    Token *t = &L->toks[L->n++];
    memset(t, 0, sizeof *t);
    t->kind = kind;
    t->loc = loc;
    t->text = L->src + start;
    return t;
}

/* ident: [A-Za-z_][A-Za-z0-9_]* ; keywords are identifiers with a reserved spelling. */
static void lex_ident(Lexer *L) {
    size_t start = L->pos;
    SrcLoc loc = here(L, 0);
    while (is_ident_char(peek(L, 0))) advance(L);
    size_t n = L->pos - start;
    loc.len = (int)n;
    TokKind kind = TK_IDENT;
    for (size_t i = 0; i < sizeof keywords / sizeof keywords[0]; i++)
        if (strlen(keywords[i].word) == n && memcmp(keywords[i].word, L->src + start, n) == 0) kind = keywords[i].kind;
    push(L, kind, loc, start);
}

/* number: digits [ '.' digits* ] [ exponent ]  |  '.' digits [ exponent ]
 * exponent: [eE] [+-]? digits
 * Anything glued to a number (letters, another '.') makes the whole run an invalid number,
 * so `1e`, `12abc` and `1.2.3` are reported as one token rather than split confusingly. */
static void lex_number(Lexer *L) {
    size_t start = L->pos;
    SrcLoc loc = here(L, 0);
    int is_float = 0, bad = 0;
    while (is_digit(peek(L, 0))) advance(L);
    if (peek(L, 0) == '.') {
        is_float = 1;
        advance(L);
        while (is_digit(peek(L, 0))) advance(L);
    }
    if (peek(L, 0) == 'e' || peek(L, 0) == 'E') {
        is_float = 1;
        advance(L);
        if (peek(L, 0) == '+' || peek(L, 0) == '-') advance(L);
        if (!is_digit(peek(L, 0))) bad = 1;
        while (is_digit(peek(L, 0))) advance(L);
    }
    if (is_ident_char(peek(L, 0)) || peek(L, 0) == '.') bad = 1;
    if (bad) {
        while (is_ident_char(peek(L, 0)) || peek(L, 0) == '.') advance(L);
        loc.len = (int)(L->pos - start);
        diag_error(&loc, "invalid number '%.*s'", loc.len, L->src + start);
    }
    size_t n = L->pos - start;
    loc.len = (int)n;
    /* strtoll/strtod need a NUL-terminated copy: the source may continue with digits of
     * something else only in error cases, but copying keeps the conversion obviously exact. */
    char *text = arena_strndup(L->arena, L->src + start, n);
    Token *t;
    errno = 0;
    if (is_float) {
        double v = strtod(text, NULL);
        /* too large, or so small that it became 0: either way not the number written */
        if (errno == ERANGE && (isinf(v) || v == 0)) diag_error(&loc, "float literal '%s' is out of range", text);
        t = push(L, TK_FLOAT, loc, start);
        t->fval = v;
    } else {
        long long v = strtoll(text, NULL, 10);
        if (errno == ERANGE) diag_error(&loc, "integer literal '%s' is too large", text);
        t = push(L, TK_INT, loc, start);
        t->ival = v;
    }
}

/* string: '"' ( char | '\"' | '\\' | '\n' )* '"' on one line. */
static void lex_string(Lexer *L) {
    size_t start = L->pos;
    SrcLoc loc = here(L, 0);
    advance(L); /* opening quote */
    /* The resolved contents are never longer than the raw text. */
    size_t end = L->pos;
    while (end < L->len && L->src[end] != '\n' && L->src[end] != '"') end += L->src[end] == '\\' ? 2 : 1;
    size_t cap = end - L->pos;
    char *buf = arena_alloc(L->arena, cap + 1);
    size_t out = 0;
    for (;;) {
        int c = peek(L, 0);
        if (c < 0 || c == '\n' || c == '\r') {
            /* Underline what there is of the string, up to the end of the line. */
            loc.len = (int)(L->pos - start);
            diag_error(&loc, "unterminated string");
        }
        if (c == '"') break;
        if (c == '\\') {
            int e = peek(L, 1);
            char r = e == '"' ? '"' : e == '\\' ? '\\' : e == 'n' ? '\n' : 0;
            if (!r) {
                if (e < 0 || e == '\n' || e == '\r') {
                    loc.len = (int)(L->pos + 1 - start);
                    diag_error(&loc, "unterminated string");
                }
                SrcLoc eloc = here(L, 2);
                if (e >= 0x20 && e < 0x7F) diag_error(&eloc, "unknown escape '\\%c' in string", e);
                advance(L);
                check_text_char(L); /* reports a control or non-UTF-8 byte precisely */
                diag_error(&eloc, "unknown escape in string");
            }
            if (out < cap) buf[out++] = r;
            advance(L);
            advance(L);
            continue;
        }
        int n = check_text_char(L);
        for (int i = 0; i < n; i++) {
            if (out < cap) buf[out++] = L->src[L->pos];
            advance(L);
        }
    }
    advance(L); /* closing quote */
    buf[out] = 0;
    loc.len = (int)(L->pos - start);
    if (out > MAX_STRING)
        diag_error(&loc, "this string has %zu characters, more than the %d a string may have", out, MAX_STRING);
    Token *t = push(L, TK_STRING, loc, start);
    t->sval = buf;
}

static void skip_comment(Lexer *L) {
    while (peek(L, 0) >= 0 && peek(L, 0) != '\n') {
        int n = check_text_char(L);
        for (int i = 0; i < n; i++) advance(L);
    }
}

/* Punctuation, longest match first (`==` before `=`). Returns 0 if c starts none. */
static int lex_punct(Lexer *L) {
    // clang-format off
    static const struct {
        const char *s;
        TokKind kind;
    } puncts[] = {
        {"==", TK_EQ}, {"!=", TK_NE}, {"<=", TK_LE}, {">=", TK_GE}, {"//", TK_SLASHSLASH},
        {"(", TK_LPAREN}, {")", TK_RPAREN}, {"[", TK_LBRACKET}, {"]", TK_RBRACKET},
        {"{", TK_LBRACE}, {"}", TK_RBRACE}, {",", TK_COMMA}, {":", TK_COLON},
        {"=", TK_ASSIGN}, {";", TK_SEMI}, {"+", TK_PLUS}, {"-", TK_MINUS},
        {"*", TK_STAR}, {"/", TK_SLASH}, {"%", TK_PERCENT}, {"<", TK_LT}, {">", TK_GT},
    };
    // clang-format on
    for (size_t i = 0; i < sizeof puncts / sizeof puncts[0]; i++) {
        size_t n = strlen(puncts[i].s);
        if (L->pos + n <= L->len && memcmp(L->src + L->pos, puncts[i].s, n) == 0) {
            size_t start = L->pos;
            SrcLoc loc = here(L, (int)n);
            for (size_t k = 0; k < n; k++) advance(L);
            push(L, puncts[i].kind, loc, start);
            return 1;
        }
    }
    return 0;
}

static _Noreturn void unexpected(Lexer *L) {
    int c = peek(L, 0);
    SrcLoc loc = here(L, 1);
    /* Common habits from other languages get a pointer to the .mdl spelling. */
    if (c == '!') diag_error_hint(&loc, "use 'not' for negation", "unexpected character '!'");
    if (c == '&' && peek(L, 1) == '&') diag_error_hint(&loc, "use 'and'", "unexpected character '&'");
    if (c == '|' && peek(L, 1) == '|') diag_error_hint(&loc, "use 'or'", "unexpected character '|'");
    if (c > 0x20 && c < 0x7F) diag_error(&loc, "unexpected character '%c'", c);
    unsigned cp;
    int n = utf8_len(L, &cp);
    if (c >= 0x80 && n > 0) loc.len = n; /* the whole character */
    check_bom(L, n, cp);
    /* The code point tells a look-alike (U+2212 for '-') or an invisible character apart. */
    if (c >= 0x80 && n > 0) diag_error(&loc, "unexpected character '%.*s' (U+%04X)", n, L->src + L->pos, cp);
    diag_error(&loc, "unexpected byte 0x%02X", (unsigned)c);
}

Token *lex_file(Arena *a, const SrcFile *file, int *ntoks) {
    Lexer L = {.arena = a, .file = file, .src = file->text, .len = file->len, .line = 1, .col = 1};
    /* A UTF-8 byte-order mark (editors on Windows write one) is skipped: columns of line 1
     * count from after it, as diag.c shows that line without it. */
    if (L.len >= 3 && !memcmp(L.src, "\xEF\xBB\xBF", 3)) L.pos = 3;
    /* Where the end-of-file token goes: just after the last real token, so "expected ')'
     * ..., found end of file" points where the ')' is missing rather than at a blank line. */
    SrcLoc end = here(&L, 1);
    for (;;) {
        int c = peek(&L, 0);
        if (c < 0) break;
        if (c == ' ' || c == '\t' || c == '\n' || c == '\r') {
            check_lone_cr(&L);
            advance(&L);
        } else if (c == '#') {
            skip_comment(&L);
        } else {
            if (is_ident_start(c)) lex_ident(&L);
            else if (is_digit(c) || (c == '.' && is_digit(peek(&L, 1)))) lex_number(&L);
            else if (c == '"') lex_string(&L);
            else if (!lex_punct(&L)) unexpected(&L);
            /* Tokens never span lines, so the end is on the token's own line. */
            const Token *t = &L.toks[L.n - 1];
            end = t->loc;
            end.col += t->loc.len;
            end.len = 1;
        }
    }
    Token *t = push(&L, TK_EOF, end, L.pos);
    t->loc.len = 1;
    *ntoks = L.n;
    return L.toks;
}
