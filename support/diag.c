/* diag.c - printing user diagnostics with the source line and a caret; see diag.h. */
#include "diag.h"

#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

_Thread_local jmp_buf *diag_jmp;
_Thread_local FILE *diag_out;
_Thread_local int diag_errors;

static FILE *out(void) { return diag_out ? diag_out : stderr; }

static void print_line_and_caret(const SrcLoc *loc) {
    const SrcFile *f = loc->file;
    if (!f || !f->text || loc->line < 1) return;
    const char *p = f->text;
    for (int l = 1; l < loc->line && *p; p++)
        if (*p == '\n') l++;
    const char *e = p;
    while (*e && *e != '\n') e++;
    fprintf(out(), "%5d | %.*s\n      | ", loc->line, (int)(e - p), p);
    for (int i = 1; i < loc->col && p + i - 1 < e; i++) fputc(p[i - 1] == '\t' ? '\t' : ' ', out());
    int n = loc->len > 0 ? loc->len : 1;
    fputc('^', out());
    for (int i = 1; i < n; i++) fputc('~', out());
    fputc('\n', out());
}

static void print_at(const SrcLoc *loc, const char *kind, const char *fmt, va_list ap) {
    if (loc && loc->file) fprintf(out(), "%s:%d:%d: %s: ", loc->file->name, loc->line, loc->col, kind);
    else fprintf(out(), "mlc: %s: ", kind);
    vfprintf(out(), fmt, ap);
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
    if (hint) fprintf(out(), "hint: %s\n", hint);
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
    if (n > 63 || m > 63) return 99;
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
