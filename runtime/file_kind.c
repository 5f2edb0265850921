/* file_kind.c - see file_kind.h. */
#define _XOPEN_SOURCE 700 /* realpath */
#include "file_kind.h"

#include "mlcrt_error.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

const char *mlcrt_file_kind_name(unsigned mode) {
    if (S_ISREG(mode)) return "a regular file";
    if (S_ISDIR(mode)) return "a directory";
    if (S_ISFIFO(mode)) return "a FIFO (named pipe)";
    if (S_ISCHR(mode)) return "a character device";
    if (S_ISBLK(mode)) return "a block device";
    if (S_ISSOCK(mode)) return "a socket";
    return "a special file";
}

int mlcrt_dangling_link(const char *path, char *target, size_t cap) {
    struct stat st;
    /* a loop (ELOOP) is no dangling link: strerror says what it is */
    if (cap < 1 || lstat(path, &st) != 0 || !S_ISLNK(st.st_mode) || stat(path, &st) == 0 || errno != ENOENT) return 0;
    ssize_t n = readlink(path, target, cap - 1);
    target[n > 0 ? n : 0] = '\0';
    return 1;
}

int mlcrt_check_regular(const char *path, const char *what, char *msg, size_t cap) {
    struct stat st;
    if (stat(path, &st) != 0) {
        int e = errno;
        char target[1024];
        if (mlcrt_dangling_link(path, target, sizeof target))
            return mlcrt_fail(msg, cap, MLCRT_EIO, "%s: cannot open: symbolic link to '%s', which does not exist", path,
                              target);
        return mlcrt_fail(msg, cap, MLCRT_EIO, "%s: cannot open: %s", path, strerror(e));
    }
    if (!S_ISREG(st.st_mode))
        return mlcrt_fail(msg, cap, MLCRT_EIO, "%s: expected %s, found %s", path, what,
                          mlcrt_file_kind_name((unsigned)st.st_mode));
    return MLCRT_OK;
}

void mlcrt_printable(char *buf, size_t n) { mlcrt_shown(buf, n + 1, buf, n); }

const char *mlcrt_shown(char *dst, size_t cap, const void *src, size_t n) {
    const unsigned char *s = src;
    size_t k = n < cap ? n : cap - 4; /* room for "..." and the '\0' where it is cut */
    for (size_t i = 0; i < k; i++) dst[i] = s[i] < 0x20 || s[i] >= 0x7f ? '.' : (char)s[i];
    if (k < n) memcpy(dst + k, "...", 3), k += 3;
    dst[k] = '\0';
    return dst;
}

char *mlcrt_resolve_links(const char *path) {
    char *p = strdup(path);
    for (int hops = 0; p && hops < 40; hops++) {
        struct stat st;
        if (lstat(p, &st) != 0 || !S_ISLNK(st.st_mode)) break;
        char target[4096];
        ssize_t n = readlink(p, target, sizeof target - 1);
        if (n <= 0) break;
        target[n] = '\0';
        const char *slash = strrchr(p, '/');
        size_t keep = target[0] == '/' || !slash ? 0 : (size_t)(slash - p) + 1;
        char *next = malloc(keep + (size_t)n + 1);
        if (next) {
            memcpy(next, p, keep);
            memcpy(next + keep, target, (size_t)n + 1);
        }
        free(p);
        p = next;
    }
    return p;
}

/* The resolved directory of path (realpath of all but its last name) and its last name,
 * into dir_out and *name; 0 when the directory cannot be resolved. */
static int split_resolved(const char *path, char *dir_out, const char **name) {
    const char *slash = strrchr(path, '/');
    *name = slash ? slash + 1 : path;
    char dir[PATH_MAX];
    size_t n = slash ? (size_t)(slash - path) : 0;
    if (n >= sizeof dir) return 0;
    if (slash) memcpy(dir, path, n), dir[n] = 0;
    else strcpy(dir, ".");
    if (slash && n == 0) strcpy(dir, "/");
    return realpath(dir, dir_out) != NULL;
}

int mlcrt_same_file(const char *a, const char *b) {
    struct stat sa, sb;
    int ea = stat(a, &sa) == 0, eb = stat(b, &sb) == 0;
    if (ea && eb) return sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
    if (ea != eb) return 0; /* one exists, the other does not */
    /* neither exists yet: the names they would create, through dangling links (a log
     * written through L.log -> S.ckpt, and a save renamed onto S.ckpt) */
    char *ra = mlcrt_resolve_links(a), *rb = mlcrt_resolve_links(b);
    char da[PATH_MAX], db[PATH_MAX];
    const char *na, *nb;
    int same = ra && rb && split_resolved(ra, da, &na) && split_resolved(rb, db, &nb) && strcmp(da, db) == 0 &&
               strcmp(na, nb) == 0;
    free(ra);
    free(rb);
    return same;
}
