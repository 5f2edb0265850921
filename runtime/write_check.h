/* write_check.h - whether what the trainer wrote to a stream (its result on stdout, a
 * log, predictions) reached the file: a full disk or /dev/full is an error with a message
 * naming the file, not exit 0 with an empty file. */
#ifndef MLCRT_WRITE_CHECK_H
#define MLCRT_WRITE_CHECK_H

#include <stdio.h>

/* Flushes f and checks its error flag. On failure prints one line to err,
 *   error: cannot write WHAT 'NAME': REASON
 * NAME being path, or when path is NULL the file behind f's descriptor (e.g. /dev/full
 * for a redirected stdout; "standard output" where it cannot be found), and returns -1;
 * 0 when everything was written. */
int mlcrt_check_written(FILE *f, const char *what, const char *path, FILE *err);

#endif
