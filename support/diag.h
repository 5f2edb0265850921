/* diag.h - user-facing diagnostics: `file:line:col: error: message`, the line, a caret.
 *
 * User errors (bad .mdl, wrong shapes) go through diag_error, which prints and then
 * longjmps to the recovery point the driver set with DIAG_TRY (or exits with status 1
 * when none is set). Internal errors use mlc_die from arena.h instead. */
#ifndef MLC_DIAG_H
#define MLC_DIAG_H

#include <setjmp.h>
#include <stddef.h>
#include <stdio.h>

typedef struct SrcFile {
    const char *name; /* as the user named it */
    const char *text; /* whole file, NUL-terminated */
    size_t len;
} SrcFile;

typedef struct SrcLoc SrcLoc;
struct SrcLoc {
    const SrcFile *file;
    int line, col; /* 1-based */
    int len;       /* characters to underline, at least 1 */
    /* For code inlined from a block: the call site, so an error names both places. */
    const SrcLoc *called_from;
    const char *block_name; /* the block whose body this location is in, or NULL */
};

/* The diagnostics state is per thread, so compilations in different threads of one process
 * neither share a recovery point nor each other's output (compiler_reentrant tests it). */
extern _Thread_local jmp_buf *diag_jmp; /* where diag_error jumps after printing; NULL: exit(1) */
extern _Thread_local FILE *diag_out;    /* NULL means stderr */
extern _Thread_local int diag_errors;   /* how many errors were printed */

#define DIAG_TRY(buf) (diag_jmp = &(buf), setjmp(buf) == 0)

_Noreturn void diag_error(const SrcLoc *loc, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Same, followed by a `hint: ...` line (hint may be NULL). */
_Noreturn void diag_error_hint(const SrcLoc *loc, const char *hint, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* A warning: printed like an error (location, line, caret, call notes), then compiling
 * goes on. */
void diag_warning(const SrcLoc *loc, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* An error about a file as a whole (cannot open, empty); loc-less. */
_Noreturn void diag_error_file(const char *path, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* The candidate nearest to `name` by edit distance, or NULL if none is close enough
 * to be a plausible typo. */
const char *diag_nearest(const char *name, const char *const *cands, int n);

/* The length of the valid UTF-8 character starting s (n bytes left), its code point in
 * *cp (when cp is not NULL); 0 where the bytes are not valid UTF-8 (overlong forms,
 * surrogates and truncated sequences included). */
int diag_utf8_len(const char *s, size_t n, unsigned *cp);

/* Reads a whole file; NULL (and errno set) on failure. */
SrcFile *srcfile_read(const char *path);
SrcFile *srcfile_from_string(const char *name, const char *text);
void srcfile_free(SrcFile *f);

#endif
