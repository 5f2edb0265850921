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
 * source line wider than LINE_WINDOW columns the window of it around the caret. */
enum { WORD_MAX = 96, WORD_HEAD = 64, WORD_TAIL = 24, LINE_WINDOW = 120 };

/* Whether byte c continues a UTF-8 character (a cut must not split one). */
static int utf8_cont(char c) { return ((unsigned char)c & 0xC0) == 0x80; }

int diag_utf8_len(const char *s, size_t n, unsigned *cp_out) {
    const unsigned char *p = (const unsigned char *)s;
    if (n == 0) return 0;
    unsigned c = p[0], cp, min;
    int len;
    if (c < 0x80) len = 1, cp = c, min = 0;
    else if (c >= 0xC2 && c <= 0xDF) len = 2, cp = c & 0x1F, min = 0x80;
    else if (c >= 0xE0 && c <= 0xEF) len = 3, cp = c & 0x0F, min = 0x800;
    else if (c >= 0xF0 && c <= 0xF4) len = 4, cp = c & 0x07, min = 0x10000;
    else return 0;
    if ((size_t)len > n) return 0;
    for (int i = 1; i < len; i++) {
        if ((p[i] & 0xC0) != 0x80) return 0;
        cp = (cp << 6) | (p[i] & 0x3Fu);
    }
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return 0;
    if (cp_out) *cp_out = cp;
    return len;
}

/* Characters a terminal would act on or that do not show: C0 and C1 controls (ESC starts
 * colour and cursor sequences), DEL, zero-width characters, the line and paragraph
 * separators, the bidirectional marks and overrides (which reorder what is shown), and
 * U+FEFF (a byte-order mark). A tab is shown as itself. */
static int invisible(unsigned cp) {
    return (cp < 0x20 && cp != '\t') || (cp >= 0x7F && cp <= 0x9F) || cp == 0x061C || (cp >= 0x200B && cp <= 0x200F) ||
           (cp >= 0x2028 && cp <= 0x202E) || (cp >= 0x2060 && cp <= 0x2069) || cp == 0xFEFF;
}

/* The unit of text at p (n bytes left, n > 0) as diagnostics show it: a character shown as
 * itself, one column wide (printable ASCII, a tab, a visible UTF-8 character), or, for a
 * byte that is not valid UTF-8 or a character in `invisible`, its bytes as `\xNN` escapes,
 * 4 columns each. Returns the unit's length in bytes; *width gets its columns. */
static size_t shown_unit(const char *p, size_t n, size_t *width) {
    unsigned cp;
    int len = diag_utf8_len(p, n, &cp);
    if (len == 0) { /* a byte that starts no character: escaped alone */
        *width = 4;
        return 1;
    }
    *width = invisible(cp) ? 4 * (size_t)len : 1;
    return (size_t)len;
}

/* Prints the n bytes at p as `shown_unit` says: never a raw control byte or invalid UTF-8. */
static void put_shown(const char *p, size_t n) {
    for (size_t i = 0, w; i < n;) {
        size_t k = shown_unit(p + i, n - i, &w);
        if (w == 1) fwrite(p + i, 1, k, out());
        else
            for (size_t j = 0; j < k; j++) fprintf(out(), "\\x%02x", (unsigned char)p[i + j]);
        i += k;
    }
}

/* Prints the n bytes at p, shortened when longer than WORD_MAX. */
static void put_word(const char *p, size_t n) {
    if (n <= WORD_MAX) {
        put_shown(p, n);
        return;
    }
    size_t head = WORD_HEAD, tail = n - WORD_TAIL;
    while (head > 0 && utf8_cont(p[head])) head--;
    while (tail < n && utf8_cont(p[tail])) tail++;
    put_shown(p, head);
    fputs("...", out());
    put_shown(p + tail, n - tail);
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
            /* up to the next space or quote, which start no UTF-8 character's middle */
            size_t n = strcspn(p, " '\"");
            put_shown(p, n ? n : 1);
            p += n ? n : 1;
        }
    }
}

/* The columns the bytes [from, to) of a line take when shown (from at a unit's start). */
static size_t shown_width(const char *p, size_t from, size_t to) {
    size_t cols = 0;
    for (size_t i = from, w; i < to; cols += w) i += shown_unit(p + i, to - i, &w);
    return cols;
}

/* The first unit boundary of the line p[0..len) at or after `from` whose shown width from
 * `from` reaches `cols` (or len). */
static size_t skip_cols(const char *p, size_t from, size_t len, size_t cols) {
    size_t i = from, w;
    for (size_t done = 0; i < len && done < cols; done += w) i += shown_unit(p + i, len - i, &w);
    return i;
}

/* The last unit boundary of p[0..len) at or after `from` within `cols` columns of it. */
static size_t fit_cols(const char *p, size_t from, size_t len, size_t cols) {
    size_t i = from, w;
    for (size_t done = 0; i < len; done += w) {
        size_t k = shown_unit(p + i, len - i, &w);
        if (done + w > cols) break;
        i += k;
    }
    return i;
}

/* Where line `line` of f starts, and (in *len) its length without its end: a '\n', and the
 * '\r' before it in a CRLF file. A byte-order mark starting the file is no part of line 1,
 * as the lexer skips it. */
static const char *find_line(const SrcFile *f, int line, size_t *len) {
    const char *p = f->text, *end = f->text + f->len;
    if (f->len >= 3 && !memcmp(p, "\xEF\xBB\xBF", 3)) p += 3;
    for (int l = 1; l < line && p < end; l++) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        p = nl ? nl + 1 : end;
    }
    const char *e = memchr(p, '\n', (size_t)(end - p));
    *len = (size_t)((e ? e : end) - p);
    if (e && *len > 0 && p[*len - 1] == '\r') --*len;
    return p;
}

/* The source line and a caret under the location, in columns as shown: a multibyte
 * character is one column and an escaped byte its escape's width, so the caret stays under
 * what it points at. Columns in `file:line:col` count bytes. */
static void print_line_and_caret(const SrcLoc *loc) {
    const SrcFile *f = loc->file;
    if (!f || !f->text || loc->line < 1) return;
    size_t len;
    const char *p = find_line(f, loc->line, &len);
    size_t c = 0, want = loc->col > 1 ? (size_t)loc->col - 1 : 0;
    for (size_t w; c < len;) { /* the unit holding byte `want`, or the line's end */
        size_t k = shown_unit(p + c, len - c, &w);
        if (c + k > want) break;
        c += k;
    }
    size_t lo = 0, hi = len; /* the window shown: all of a short line */
    size_t total = shown_width(p, 0, len);
    if (total > LINE_WINDOW) {
        size_t before = shown_width(p, 0, c), from = before > LINE_WINDOW / 2 ? before - LINE_WINDOW / 2 : 0;
        if (from > total - LINE_WINDOW) from = total - LINE_WINDOW;
        lo = skip_cols(p, 0, len, from);
        if (c < lo) lo = c;
        hi = fit_cols(p, lo, len, LINE_WINDOW);
    }
    char digits[16];
    int gutter = snprintf(digits, sizeof digits, "%d", loc->line);
    if (gutter < 5) gutter = 5;
    fprintf(out(), "%*d | %s", gutter, loc->line, lo ? "..." : "");
    put_shown(p + lo, hi - lo);
    fprintf(out(), "%s\n%*s | %s", hi < len ? "..." : "", gutter, "", lo ? "   " : "");
    for (size_t i = lo, w; i < c;) {
        size_t k = shown_unit(p + i, len - i, &w);
        if (p[i] == '\t') fputc('\t', out());
        else fprintf(out(), "%*s", (int)w, "");
        i += k;
    }
    size_t n = loc->len > 0 ? (size_t)loc->len : 1, stop = c + n < hi ? c + n : hi;
    size_t cols = c < stop ? shown_width(p, c, stop) : 0;
    if (c + n > len && hi == len) cols += c + n - (c > len ? c : len); /* past the line's end */
    fputc('^', out());
    for (size_t i = 1; i < cols; i++) fputc('~', out());
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

/* One call note from l on: the call site of l's block, merged with the calls just above it
 * that read the same (a recursive block calling itself from one place). Returns the
 * location the next note starts from; *repeats gets how many calls this note stands for. */
static const SrcLoc *call_note_at(const SrcLoc *l, int *repeats) {
    *repeats = 1;
    while (l->called_from->called_from && same_call(l, l->called_from)) l = l->called_from, ++*repeats;
    return l;
}

/* A chain of more call notes than this shows its innermost CALLS_INNER and outermost
 * CALLS_OUTER, and one line counting those left out, so that an error in blocks nested 20
 * deep stays about a dozen lines. */
enum { CALLS_INNER = 2, CALLS_OUTER = 1 };

static void call_notes(const SrcLoc *loc) {
    int total = 0, repeats;
    for (const SrcLoc *l = loc; l && l->called_from; l = call_note_at(l, &repeats)->called_from) total++;
    int shown = total > CALLS_INNER + CALLS_OUTER + 1 ? CALLS_INNER : total, k = 0, left_out = 0;
    for (const SrcLoc *l = loc; l && l->called_from; k++) {
        const SrcLoc *m = call_note_at(l, &repeats);
        const char *name = m->block_name ? m->block_name : "?";
        l = m->called_from;
        if (k >= shown && k < total - CALLS_OUTER) {
            left_out += repeats;
            continue;
        }
        if (left_out) fprintf(out(), "note: ... %d more block calls in between\n", left_out);
        left_out = 0;
        if (repeats > 1) note(m->called_from, "in block '%s' called from here (%d times in a row)", name, repeats);
        else note(m->called_from, "in block '%s' called from here", name);
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
        /* a rewrite of every letter is no typo ('f' of 'h', though one edit apart) */
        size_t longer = strlen(cands[i]) > strlen(name) ? strlen(cands[i]) : strlen(name);
        if ((size_t)d >= longer) continue;
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
