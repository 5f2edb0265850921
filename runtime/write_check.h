/* write_check.h - whether what the trainer (or mlc) wrote to a stream (its result on
 * stdout, a log, predictions) reached the file: a full disk or /dev/full is an error with
 * a message naming the file, not exit 0 with an empty file. */
#ifndef MLCRT_WRITE_CHECK_H
#define MLCRT_WRITE_CHECK_H

#include <stddef.h>
#include <stdio.h>

/* Flushes f and checks its error flag, then closes f when close_it (a closed stdout that
 * nothing was written to is no failure). 0 when everything was written; else -1 with
 *   cannot write WHAT 'NAME': REASON
 * in msg, NAME being path, or when path is NULL the file behind f's descriptor (e.g.
 * /dev/full for a redirected stdout; "standard output" where it cannot be found). */
int mlcrt_written(FILE *f, const char *what, const char *path, int close_it, char *msg, size_t cap);

/* mlcrt_written without closing f; on failure prints its message to err as one line,
 *   error: cannot write WHAT 'NAME': REASON */
int mlcrt_check_written(FILE *f, const char *what, const char *path, FILE *err);

/* Right after a write to f: 0 while f has no error; else -1, and the message of
 * mlcrt_check_written printed to err with the reason that write's errno gives (a later
 * flush would find only the error flag). For output written piece by piece: a program
 * stops at the first piece that fails rather than computing the rest for nothing. */
int mlcrt_write_ok(FILE *f, const char *what, const char *path, FILE *err);

#endif
