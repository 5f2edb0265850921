/* lexer.h - turns the text of a .mdl file into an array of tokens.
 *
 * The whole file is tokenized up front (files are small) so the parser can look ahead
 * freely. Newlines and `#` comments are dropped: the grammar does not need them. Every
 * token keeps its SrcLoc (1-based line and column, tabs counting as one column, len =
 * bytes of the token) so diagnostics can point at it. A lexical error (stray character,
 * unterminated string, bad number) is reported with diag_error, which longjmps. */
#ifndef MLC_LEXER_H
#define MLC_LEXER_H

#include "arena.h"
#include "diag.h"

typedef enum TokKind {
    TK_EOF, /* always the last token; its loc is just past the last real token */
    TK_IDENT,
    TK_INT,
    TK_FLOAT,
    TK_STRING,
    /* punctuation */
    TK_LPAREN,
    TK_RPAREN,
    TK_LBRACKET,
    TK_RBRACKET,
    TK_LBRACE,
    TK_RBRACE,
    TK_COMMA,
    TK_COLON,
    TK_ASSIGN,
    TK_SEMI,
    TK_PLUS,
    TK_MINUS,
    TK_STAR,
    TK_SLASH,
    TK_SLASHSLASH,
    TK_PERCENT,
    TK_EQ,
    TK_NE,
    TK_LT,
    TK_LE,
    TK_GT,
    TK_GE,
    /* operator keywords */
    TK_AND,
    TK_OR,
    TK_NOT,
    /* statement keywords */
    TK_MODEL,
    TK_INPUT,
    TK_PARAM,
    TK_OUTPUT,
    TK_LOSS,
    TK_RETURN,
    TK_IF,
    TK_ELSE,
    TK_BLOCK,
    TK_TRAIN,
    TK_FOR,
    TK_IN,
    TK_COUNT
} TokKind;

typedef struct Token {
    TokKind kind;
    SrcLoc loc;       /* loc.len is the length of the token's text in bytes */
    const char *text; /* points into the source; loc.len bytes, not NUL-terminated */
    long long ival;   /* TK_INT */
    double fval;      /* TK_FLOAT */
    const char *sval; /* TK_STRING: contents with escapes resolved (arena, NUL-terminated) */
} Token;

/* Tokenizes all of `file`. Returns an arena array of *ntoks tokens, the last of which is
 * TK_EOF. On a lexical error calls diag_error (longjmp or exit). Reads exactly file->len
 * bytes, so an embedded NUL is reported rather than silently ending the file. */
Token *lex_file(Arena *a, const SrcFile *file, int *ntoks);

/* A short human name for a token kind, as used in messages: "identifier", "'('", "'and'". */
const char *tok_kind_name(TokKind k);

#endif
