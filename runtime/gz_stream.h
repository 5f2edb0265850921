/* gz_stream.h - a data file read as it is, or decompressed when it is gzip (it starts with
 * 1f 8b), by zlib's inflate directly rather than gzread, for what gzread cannot say: where
 * the gzip data ends. gzread ignores bytes after the last member, so a .gz with trailing
 * garbage would pass where the same garbage after a raw file is refused; here both are
 * seen. Members one after another (gzip's own concatenation) read as one stream. */
#ifndef MLCRT_GZ_STREAM_H
#define MLCRT_GZ_STREAM_H

#include <stdint.h>
#include <stdio.h>
#include <zlib.h>

typedef struct {
    FILE *f;
    int gz;             /* gzip: the file starts with 1f 8b */
    int member_done;    /* inflate reached the end of a member; the next bytes decide */
    int cut;            /* the file ended inside a gzip member (its header, data or trailer): after
                         * a short read, a .gz cut short rather than a complete file holding
                         * less than its header declares */
    int64_t garbage_at; /* -1, or the file offset of bytes after the last member that are none */
    int64_t in_off;     /* bytes of the file read so far */
    z_stream z;
    char err[160]; /* the message of a failed read */
    unsigned char in[1 << 16];
} mlcrt_gz_stream;

/* Opens path (a regular file: the caller checked). 0, or -1 with errno set. */
int mlcrt_gz_open(mlcrt_gz_stream *s, const char *path);

/* Reads up to len bytes: the count (less than len at the end of the data), or -1 on a
 * read or decompression error, with s->err saying which (zlib's words, and where in the
 * file for corrupt gzip data). */
int64_t mlcrt_gz_read(mlcrt_gz_stream *s, void *buf, int64_t len);

void mlcrt_gz_close(mlcrt_gz_stream *s);

#endif
