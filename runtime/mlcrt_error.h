/* mlcrt_error.h - error codes and message helpers shared by the runtime library.
 *
 * Library functions never print or exit: they return one of the codes below and, on
 * failure, write a one-line message into a caller-provided buffer. Messages name the
 * file (as the caller spelled it), the byte offset or field, and what was expected
 * versus what was found, e.g.
 *   train-images-idx3-ubyte.gz: byte 3: expected dimension count 3, found 1
 * Only mlcrt_main (the standalone trainer) turns them into printed errors and an exit
 * status. */
#ifndef MLCRT_ERROR_H
#define MLCRT_ERROR_H

#include <stddef.h>

/* A message buffer of this size always holds a complete runtime message. */
#define MLCRT_MSG_SIZE 1024

typedef enum mlcrt_status {
    MLCRT_OK = 0,
    MLCRT_EIO = 1,       /* cannot open / read / write a file */
    MLCRT_EFORMAT = 2,   /* malformed contents (magic, header fields, trailing data) */
    MLCRT_ETRUNC = 3,    /* file ends before the data it declares */
    MLCRT_EMISMATCH = 4, /* well-formed but does not fit (shapes, counts, names) */
    MLCRT_ECRC = 5,      /* checksum mismatch */
    MLCRT_ENOMEM = 6,    /* allocation failure */
    MLCRT_EARG = 7       /* invalid argument from the caller */
} mlcrt_status;

/* Formats the message into msg (when msg is not NULL and cap > 0) and returns code. */
int mlcrt_fail(char *msg, size_t cap, int code, const char *fmt, ...) __attribute__((format(printf, 4, 5)));

/* A short constant name for a status code ("I/O error", "format error", ...). */
const char *mlcrt_strerror(int code);

#endif
