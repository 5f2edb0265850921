/* diag.c - printing user diagnostics with the source line and a caret; see diag.h. */
#include "diag.h"

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

_Thread_local jmp_buf *diag_jmp;
_Thread_local FILE *diag_out;
_Thread_local int diag_errors;

static FILE *out(void) { return diag_out ? diag_out : stderr; }

/* A diagnostic stays a few lines however long the input: a name, string or other word of
 * a message longer than WORD_MAX bytes shows its first WORD_HEAD and last WORD_TAIL bytes
 * around "..." (the tail is what tells `stage1.block2.conv1.weight` from `...bias`), and a
 * source line longer than LINE_WINDOW bytes the window of it around the caret. */
enum { WORD_MAX = 96, WORD_HEAD = 64, WORD_TAIL = 24, LINE_WINDOW = 120 };

/* Whether byte c continues a UTF-8 character (a cut must not split one). */
static int utf8_cont(char c) { return ((unsigned char)c & 0xC0) == 0x80; }

/* Prints the n bytes at p, shortened when longer than WORD_MAX. */
static void put_word(const char *p, size_t n) {
    if (n <= WORD_MAX) {
        fprintf(out(), "%.*s", (int)n, p);
        return;
    }
    size_t head = WORD_HEAD, tail = n - WORD_TAIL;
    while (head > 0 && utf8_cont(p[head])) head--;
    while (tail < n && utf8_cont(p[tail])) tail++;
    fprintf(out(), "%.*s...%.*s", (int)head, p, (int)(n - tail), p + tail);
}

/* Prints text with each long word shortened. A quoted part ('name' or "a string") counts as
 * one word, spaces and all: its quote opens it at the start or after a space, '(' or '[',
 * so the apostrophe of "model's" opens none. */
static void put_text(const char *text) {
    for (const char *p = text; *p;) {
        const char *q = (*p == '\'' || *p == '"') && (p == text || strchr(" ([", p[-1])) ? strchr(p + 1, *p) : NULL;
        if (q) {
            fputc(*p, out());
            put_word(p + 1, (size_t)(q - p - 1));
            fputc(*q, out());
            p = q + 1;
        } else if (*p != ' ' && (p == text || p[-1] == ' ')) {
            size_t n = strcspn(p, " ");
            put_word(p, n);
            p += n;
        } else {
            fputc(*p++, out());
        }
    }
}

static void print_line_and_caret(const SrcLoc *loc) {
    const SrcFile *f = loc->file;
    if (!f || !f->text || loc->line < 1) return;
    const char *p = f->text;
    for (int l = 1; l < loc->line && *p; p++)
        if (*p == '\n') l++;
    const char *e = p;
    while (*e && *e != '\n') e++;
    size_t len = (size_t)(e - p), c = loc->col > 1 ? (size_t)loc->col - 1 : 0;
    if (c > len) c = len;
    size_t lo = 0, hi = len; /* the window shown: all of a short line */
    if (len > LINE_WINDOW) {
        lo = c > LINE_WINDOW / 2 ? c - LINE_WINDOW / 2 : 0;
        if (lo > len - LINE_WINDOW) lo = len - LINE_WINDOW;
        hi = lo + LINE_WINDOW;
        while (lo > 0 && utf8_cont(p[lo])) lo--;
        while (hi < len && utf8_cont(p[hi])) hi++;
    }
    fprintf(out(), "%5d | %s%.*s%s\n      | %s", loc->line, lo ? "..." : "", (int)(hi - lo), p + lo,
            hi < len ? "..." : "", lo ? "   " : "");
    for (size_t i = lo; i < c; i++) fputc(p[i] == '\t' ? '\t' : ' ', out());
    size_t n = loc->len > 0 ? (size_t)loc->len : 1;
    if (len > LINE_WINDOW && n > hi - c) n = hi > c ? hi - c : 1; /* the underline ends with the window */
    fputc('^', out());
    for (size_t i = 1; i < n; i++) fputc('~', out());
    fputc('\n', out());
}

static void print_at(const SrcLoc *loc, const char *kind, const char *fmt, va_list ap) {
    if (loc && loc->file) fprintf(out(), "%s:%d:%d: %s: ", loc->file->name, loc->line, loc->col, kind);
    else fprintf(out(), "mlc: %s: ", kind);
    va_list ap2;
    va_copy(ap2, ap);
    char small[512];
    int n = vsnprintf(small, sizeof small, fmt, ap);
    char *text = n >= (int)sizeof small ? malloc((size_t)n + 1) : NULL;
    if (text) vsnprintf(text, (size_t)n + 1, fmt, ap2);
    va_end(ap2);
    put_text(text ? text : small); /* without memory for a long one: its first 511 bytes */
    free(text);
    fputc('\n', out());
    if (loc) print_line_and_caret(loc);
}

static void note(const SrcLoc *loc, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    print_at(loc, "note", fmt, ap);
    va_end(ap);
}

/* Whether the call notes of l and of its caller m would read the same: one block, called
 * from one place. */
static int same_call(const SrcLoc *l, const SrcLoc *m) {
    const SrcLoc *a = l->called_from, *b = m->called_from;
    int same_block =
        l->block_name == m->block_name || (l->block_name && m->block_name && !strcmp(l->block_name, m->block_name));
    return same_block && a->file == b->file && a->line == b->line && a->col == b->col;
}

static void call_notes(const SrcLoc *loc) {
    for (const SrcLoc *l = loc; l && l->called_from; l = l->called_from) {
        /* A recursive block calls itself from one place many times: one note, counted. */
        int repeats = 0;
        while (l->called_from->called_from && same_call(l, l->called_from)) l = l->called_from, repeats++;
        if (repeats)
            note(l->called_from, "in block '%s' called from here (%d times in a row)",
                 l->block_name ? l->block_name : "?", repeats + 1);
        else note(l->called_from, "in block '%s' called from here", l->block_name ? l->block_name : "?");
    }
}

static _Noreturn void finish(const SrcLoc *loc, const char *hint) {
    if (hint) {
        fputs("hint: ", out());
        put_text(hint);
        fputc('\n', out());
    }
    call_notes(loc);
    fflush(out());
    diag_errors++;
    if (diag_jmp) longjmp(*diag_jmp, 1);
    exit(1);
}

void diag_warning(const SrcLoc *loc, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    print_at(loc, "warning", fmt, ap);
    va_end(ap);
    call_notes(loc);
    fflush(out());
}

void diag_error(const SrcLoc *loc, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    print_at(loc, "error", fmt, ap);
    va_end(ap);
    finish(loc, NULL);
}

void diag_error_hint(const SrcLoc *loc, const char *hint, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    print_at(loc, "error", fmt, ap);
    va_end(ap);
    finish(loc, hint);
}

void diag_error_file(const char *path, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fprintf(out(), "%s: error: ", path);
    vfprintf(out(), fmt, ap);
    fputc('\n', out());
    va_end(ap);
    finish(NULL, NULL);
}

/* Edit distance counting a swap of two neighbouring letters as one edit ("reul" is one
 * edit from "relu"): the typo people make most. */
static int edit_distance(const char *a, const char *b) {
    size_t n = strlen(a), m = strlen(b);
    if (n > 63 || m > 63) return INT_MAX; /* too long to be a typo of each other: never near */
    int d[64][64];
    for (size_t i = 0; i <= n; i++) d[i][0] = (int)i;
    for (size_t j = 0; j <= m; j++) d[0][j] = (int)j;
    for (size_t i = 1; i <= n; i++)
        for (size_t j = 1; j <= m; j++) {
            int c = d[i - 1][j - 1] + (a[i - 1] != b[j - 1]);
            if (d[i - 1][j] + 1 < c) c = d[i - 1][j] + 1;
            if (d[i][j - 1] + 1 < c) c = d[i][j - 1] + 1;
            if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] && d[i - 2][j - 2] + 1 < c)
                c = d[i - 2][j - 2] + 1;
            d[i][j] = c;
        }
    return d[n][m];
}

const char *diag_nearest(const char *name, const char *const *cands, int n) {
    const char *best = NULL;
    int best_d = 1 << 30;
    for (int i = 0; i < n; i++) {
        int d = edit_distance(name, cands[i]);
        if (d < best_d) best_d = d, best = cands[i];
    }
    /* A plausible typo: at most a third of the name's letters, and at least one. */
    int limit = (int)strlen(name) / 3;
    if (limit < 1) limit = 1;
    return best_d <= limit ? best : NULL;
}

SrcFile *srcfile_from_string(const char *name, const char *text) {
    SrcFile *f = calloc(1, sizeof *f);
    if (!f) return NULL;
    f->name = strdup(name);
    f->len = strlen(text);
    f->text = strdup(text);
    return f;
}

SrcFile *srcfile_read(const char *path) {
    FILE *fp = fopen(path, "rb");
    if (!fp) return NULL;
    size_t cap = 4096, len = 0;
    char *buf = malloc(cap);
    size_t n;
    while (buf && (n = fread(buf + len, 1, cap - len - 1, fp)) > 0) {
        len += n;
        if (len + 1 == cap) {
            char *nb = realloc(buf, cap *= 2);
            if (!nb) free(buf);
            buf = nb;
        }
    }
    int err = ferror(fp);
    fclose(fp);
    if (!buf || err) {
        free(buf);
        errno = err ? EIO : ENOMEM;
        return NULL;
    }
    buf[len] = 0;
    SrcFile *f = calloc(1, sizeof *f);
    f->name = strdup(path);
    f->text = buf;
    f->len = len;
    return f;
}

void srcfile_free(SrcFile *f) {
    if (!f) return;
    free((char *)f->name);
    free((char *)f->text);
    free(f);
}
