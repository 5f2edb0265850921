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

/* "cannot write WHAT 'NAME': REASON" into msg: the reason errno e gives, or with e 0 (an
 * earlier failed flush leaves only the error flag: its errno is gone) a general one. */
static void failure(char *msg, size_t cap, const char *what, const char *path, int e) {
    snprintf(msg, cap, "cannot write %s '%s': %s", what, path,
             e ? strerror(e) : "an earlier write failed (disk full or device error)");
}

/* msg to err as one line; -1 */
static int print_failure(FILE *err, const char *msg) {
    fprintf(err, "error: %s\n", msg);
    fflush(err);
    return -1;
}

int mlcrt_written(FILE *f, const char *what, const char *path, int close_it, char *msg, size_t cap) {
    char name[4096];
    if (!path) path = fd_name(fileno(f), name, sizeof name, "standard output"); /* before fclose takes the fd */
    errno = 0;
    int flushed = fflush(f) == 0;
    int e = errno, ok = flushed && !ferror(f);
    if (close_it) {
        errno = 0;
        /* EBADF: there was no descriptor (a closed stdout), and the flush had nothing to write */
        if (fclose(f) && ok && errno != EBADF) ok = 0, flushed = 0, e = errno;
    }
    if (ok) return 0;
    failure(msg, cap, what, path, flushed ? 0 : e);
    return -1;
}

int mlcrt_write_ok(FILE *f, const char *what, const char *path, FILE *err) {
    if (!ferror(f)) return 0;
    int e = errno; /* the failed write's, before anything else sets it */
    char name[4096], msg[4400];
    failure(msg, sizeof msg, what, path ? path : fd_name(fileno(f), name, sizeof name, "standard output"), e);
    return print_failure(err, msg);
}

int mlcrt_check_written(FILE *f, const char *what, const char *path, FILE *err) {
    char msg[4400];
    if (!mlcrt_written(f, what, path, 0, msg, sizeof msg)) return 0;
    return print_failure(err, msg);
}
