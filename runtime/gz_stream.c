/* gz_stream.c - see gz_stream.h. */
#include "gz_stream.h"

#include <errno.h>
#include <string.h>

int mlcrt_gz_open(mlcrt_gz_stream *s, const char *path) {
    memset(s, 0, sizeof *s);
    s->garbage_at = -1;
    s->f = fopen(path, "rb");
    if (!s->f) return -1;
    int c0 = getc(s->f), c1 = c0 == EOF ? EOF : getc(s->f);
    s->gz = c0 == 0x1f && c1 == 0x8b;
    rewind(s->f);
    if (s->gz && inflateInit2(&s->z, 15 + 16) != Z_OK) { /* 15 + 16: a gzip wrapper, as gzip writes */
        fclose(s->f);
        s->f = NULL;
        errno = ENOMEM;
        return -1;
    }
    return 0;
}

/* Tops up the input buffer to at least `want` bytes where the file has them; the bytes
 * buffered after. */
static unsigned refill(mlcrt_gz_stream *s, unsigned want) {
    if (s->z.avail_in >= want) return s->z.avail_in;
    memmove(s->in, s->z.next_in ? s->z.next_in : s->in, s->z.avail_in);
    size_t n = fread(s->in + s->z.avail_in, 1, sizeof s->in - s->z.avail_in, s->f);
    s->in_off += (int64_t)n;
    s->z.next_in = s->in;
    s->z.avail_in += (unsigned)n;
    return s->z.avail_in;
}

static int64_t fail(mlcrt_gz_stream *s, const char *what) {
    snprintf(s->err, sizeof s->err, "%s", what);
    return -1;
}

int64_t mlcrt_gz_read(mlcrt_gz_stream *s, void *buf, int64_t len) {
    if (!s->gz) {
        size_t n = fread(buf, 1, (size_t)len, s->f);
        if (n < (size_t)len && ferror(s->f)) return fail(s, strerror(errno ? errno : EIO));
        return (int64_t)n;
    }
    int64_t got = 0;
    while (got < len && !s->cut && s->garbage_at < 0) {
        if (s->member_done) { /* another member follows, or nothing may */
            unsigned have = refill(s, 2);
            if (ferror(s->f)) return fail(s, strerror(errno ? errno : EIO));
            if (have == 0) break; /* the end of the file: the end of the data */
            if (have < 2 || s->z.next_in[0] != 0x1f || s->z.next_in[1] != 0x8b) {
                s->garbage_at = s->in_off - (int64_t)have;
                break;
            }
            inflateReset(&s->z);
            s->member_done = 0;
        }
        if (refill(s, 1) == 0) {
            if (ferror(s->f)) return fail(s, strerror(errno ? errno : EIO));
            s->cut = 1; /* inside a member, and the file is over */
            break;
        }
        int64_t want = len - got;
        s->z.next_out = (unsigned char *)buf + got;
        s->z.avail_out = want > (1 << 30) ? 1u << 30 : (unsigned)want;
        unsigned before = s->z.avail_out;
        int r = inflate(&s->z, Z_NO_FLUSH);
        got += before - s->z.avail_out;
        if (r == Z_STREAM_END) s->member_done = 1;
        else if (r == Z_DATA_ERROR || r == Z_NEED_DICT || r == Z_MEM_ERROR || r == Z_STREAM_ERROR) {
            snprintf(s->err, sizeof s->err, "corrupt gzip data at byte %lld of the compressed file: %s",
                     (long long)(s->in_off - s->z.avail_in), s->z.msg ? s->z.msg : "inflate failed");
            return -1;
        }
        /* Z_OK or Z_BUF_ERROR: more input or more output space, which the loop gives */
    }
    return got;
}

void mlcrt_gz_close(mlcrt_gz_stream *s) {
    if (s->gz) inflateEnd(&s->z);
    if (s->f) fclose(s->f);
    s->f = NULL;
}
