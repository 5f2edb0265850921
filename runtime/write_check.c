/* write_check.c - see write_check.h. */
#include "write_check.h"

#include <errno.h>
#include <string.h>
#include <unistd.h>

/* The path of the file open as fd, from /proc (Linux); fallback when there is none. */
static const char *fd_name(int fd, char *buf, size_t cap, const char *fallback) {
    char link[64];
    snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
    ssize_t n = fd >= 0 ? readlink(link, buf, cap - 1) : -1;
    if (n <= 0) return fallback;
    buf[n] = '\0';
    return buf;
}

int mlcrt_check_written(FILE *f, const char *what, const char *path, FILE *err) {
    errno = 0;
    int flushed = fflush(f) == 0;
    int e = errno;
    if (flushed && !ferror(f)) return 0;
    char name[4096];
    if (!path) path = fd_name(fileno(f), name, sizeof name, "standard output");
    /* a failure of an earlier flush leaves only the error flag: its errno is gone */
    fprintf(err, "error: cannot write %s '%s': %s\n", what, path,
            flushed || !e ? "an earlier write failed (disk full or device error)" : strerror(e));
    fflush(err);
    return -1;
}
