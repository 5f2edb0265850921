/* atomic_file.c - atomic whole-file replacement (see atomic_file.h). Linux's O_TMPFILE
 * and /proc/self/fd make the temporary file nameless while it is written; other systems
 * and file systems without O_TMPFILE take the named PATH.tmp.<pid>.<n> path. */
#define _GNU_SOURCE /* O_TMPFILE, AT_SYMLINK_FOLLOW */
#include "atomic_file.h"

#include "file_kind.h"
#include "mlcrt_error.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* The directory part of path ("." when none), malloc'ed. */
static char *dir_of(const char *path) {
    const char *slash = strrchr(path, '/');
    if (!slash) return strdup(".");
    if (slash == path) return strdup("/");
    char *d = malloc((size_t)(slash - path) + 1);
    if (d) {
        memcpy(d, path, (size_t)(slash - path));
        d[slash - path] = '\0';
    }
    return d;
}

/* A run of decimal digits as this file prints a number ("%ld", "%lu": no sign, blank or
 * leading zero) and at most `most`; *s moves past it. -1 for anything else. */
static long long printed_number(const char **s, long long most) {
    const char *p = *s;
    if (*p < '0' || *p > '9' || (p[0] == '0' && p[1] >= '0' && p[1] <= '9')) return -1;
    long long v = 0;
    for (; *p >= '0' && *p <= '9'; p++) {
        if (v > (most - (*p - '0')) / 10) return -1; /* past most (and never past long long) */
        v = 10 * v + (*p - '0');
    }
    *s = p;
    return v;
}

/* The pid of a temporary name's suffix as this file writes it: "<pid>.<n>" (a pid, and n
 * the process's count of saves), or "<pid>" as earlier versions wrote it, each number as
 * printed_number reads; 0 for a suffix it never writes: such a file is the user's,
 * whatever strtol would make of it. */
_Static_assert(sizeof(pid_t) == sizeof(int), "temp_pid bounds a pid by INT_MAX");
static pid_t temp_pid(const char *s) {
    long long pid = printed_number(&s, INT_MAX); /* a pid_t is an int: a larger value is no pid */
    if (pid <= 0) return 0;
    if (*s == '.') {
        s++;
        if (printed_number(&s, LLONG_MAX) < 0) return 0;
    }
    return *s ? 0 : (pid_t)pid;
}

/* PATH.tmp.<pid>.<n>: a name no other save, of this process's threads or of another
 * process, takes at the same time (two threads saving one path once shared
 * PATH.tmp.<pid>, and one renamed the other's file). */
static void temp_name(char *tmp, size_t cap, const char *target) {
    static atomic_ullong saves;
    snprintf(tmp, cap, "%s.tmp.%ld.%llu", target, (long)getpid(), (unsigned long long)atomic_fetch_add(&saves, 1));
}

/* Removes dir/BASE.tmp.<pid>.<n> (or BASE.tmp.<pid>) left by processes that no longer exist (a save killed
 * between naming its file and renaming it, or one written by the named fallback). A pid
 * that runs again is left alone: its file cannot be told from a live save. */
static void remove_stale_temps(const char *dir, const char *base) {
    DIR *d = opendir(dir);
    if (!d) return;
    size_t blen = strlen(base);
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        const char *n = e->d_name;
        if (strncmp(n, base, blen) != 0 || strncmp(n + blen, ".tmp.", 5) != 0) continue;
        pid_t pid = temp_pid(n + blen + 5);
        if (pid <= 0 || pid == getpid()) continue;
        if (kill(pid, 0) == 0 || errno != ESRCH) continue;
        size_t len = strlen(dir) + strlen(n) + 2;
        char *full = malloc(len);
        if (full) {
            snprintf(full, len, "%s/%s", dir, n);
            unlink(full);
            free(full);
        }
    }
    closedir(d);
}

/* MLCRT_OK when target is absent or a regular file. Anything else (a FIFO, a device, a
 * directory) the rename would replace, not write into: /dev/full or a named pipe given as
 * --save would become a regular file. */
static int check_kind(const char *target, const char *path, const char *what, char *msg, size_t cap) {
    struct stat st;
    /* a loop of links has no file at its end to replace: renaming onto the last link
     * reached would break the loop, silently */
    if (stat(target, &st) != 0 && errno == ELOOP)
        return mlcrt_fail(msg, cap, MLCRT_EIO, "cannot write %s '%s': %s", what, path, strerror(ELOOP));
    if (stat(target, &st) != 0 || S_ISREG(st.st_mode)) return MLCRT_OK;
    return mlcrt_fail(msg, cap, MLCRT_EIO, "cannot write %s '%s': expected a regular file, found %s", what, path,
                      mlcrt_file_kind_name((unsigned)st.st_mode));
}

static int write_all(int fd, const uint8_t *p, uint64_t n) {
    while (n > 0) {
        size_t chunk = n > (1u << 30) ? (1u << 30) : (size_t)n;
        ssize_t w = write(fd, p, chunk);
        if (w < 0) {
            if (errno == EINTR) continue;
            return -1;
        }
        p += w;
        n -= (uint64_t)w;
    }
    return 0;
}

/* Writes and fsyncs buf into fd; 0, or errno. */
static int fill(int fd, const void *buf, uint64_t len) {
    if (write_all(fd, buf, len) != 0 || fsync(fd) != 0) return errno;
    return 0;
}

/* The unnamed way: 0 when the file is at tmp (complete and fsync'ed), errno on failure,
 * -1 when O_TMPFILE is not available here (nothing was created). */
static int write_unnamed(const char *dir, const char *tmp, const void *buf, uint64_t len) {
#ifdef O_TMPFILE
    int fd = open(dir, O_TMPFILE | O_WRONLY, 0644);
    if (fd < 0) return -1; /* no O_TMPFILE on this file system (or kernel): the named way says why */
    int e = fill(fd, buf, len);
    char proc[64];
    snprintf(proc, sizeof proc, "/proc/self/fd/%d", fd);
    if (!e && linkat(AT_FDCWD, proc, AT_FDCWD, tmp, AT_SYMLINK_FOLLOW) != 0) {
        /* EEXIST: left by an earlier process with our pid (and count); ENOENT: no /proc */
        if (errno == EEXIST && unlink(tmp) == 0 && linkat(AT_FDCWD, proc, AT_FDCWD, tmp, AT_SYMLINK_FOLLOW) == 0) e = 0;
        else e = errno == ENOENT ? -1 : errno;
    }
    if (close(fd) != 0 && !e) {
        e = errno;
        unlink(tmp);
    }
    return e;
#else
    (void)dir, (void)tmp, (void)buf, (void)len;
    return -1;
#endif
}

/* The named way: 0 when the file is at tmp, errno on failure (tmp removed). */
static int write_named(const char *tmp, const void *buf, uint64_t len) {
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0) return errno;
    int e = fill(fd, buf, len);
    if (close(fd) != 0 && !e) e = errno;
    if (e) unlink(tmp);
    return e;
}

int mlcrt_write_atomic(const char *path, const void *buf, uint64_t len, const char *what, char *msg, size_t cap) {
    char *target = mlcrt_resolve_links(path), *dir = target ? dir_of(target) : NULL;
    size_t tlen = target ? strlen(target) + 48 : 0;
    char *tmp = target ? malloc(tlen) : NULL;
    int rc = MLCRT_OK;
    if (!target || !dir || !tmp) {
        rc = mlcrt_fail(msg, cap, MLCRT_ENOMEM, "cannot write %s '%s': out of memory", what, path);
        goto out;
    }
    if ((rc = check_kind(target, path, what, msg, cap)) != MLCRT_OK) goto out;
    temp_name(tmp, tlen, target);
    const char *slash = strrchr(target, '/');
    remove_stale_temps(dir, slash ? slash + 1 : target);

    int e = write_unnamed(dir, tmp, buf, len);
    if (e == -1) e = write_named(tmp, buf, len);
    if (!e && rename(tmp, target) != 0) {
        e = errno;
        unlink(tmp);
    }
    if (e) {
        rc = mlcrt_fail(msg, cap, MLCRT_EIO, "cannot write %s '%s': %s", what, path, strerror(e));
        goto out;
    }
    int dfd = open(dir, O_RDONLY);
    if (dfd >= 0) {
        /* Some file systems refuse fsync on directories (EINVAL); that is not a failure
         * of ours, the rename itself has happened. */
        if (fsync(dfd) != 0 && errno != EINVAL && errno != EBADF) {
            e = errno;
            close(dfd);
            rc = mlcrt_fail(msg, cap, MLCRT_EIO, "cannot write %s '%s': fsync of directory '%s': %s", what, path, dir,
                            strerror(e));
            goto out;
        }
        close(dfd);
    }
out:
    free(tmp);
    free(dir);
    free(target);
    return rc;
}

int mlcrt_check_atomic_writable(const char *path, const char *what, char *msg, size_t cap) {
    char *target = mlcrt_resolve_links(path), *dir = target ? dir_of(target) : NULL;
    size_t tlen = target ? strlen(target) + 48 : 0;
    char *tmp = target ? malloc(tlen) : NULL;
    int rc = MLCRT_OK;
    if (!target || !dir || !tmp) {
        rc = mlcrt_fail(msg, cap, MLCRT_ENOMEM, "cannot write %s '%s': out of memory", what, path);
        goto out;
    }
    temp_name(tmp, tlen, target);
    const char *slash = strrchr(target, '/');
    remove_stale_temps(dir, slash ? slash + 1 : target);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL, 0644);
    if (fd < 0) {
        rc = mlcrt_fail(msg, cap, MLCRT_EIO, "cannot write %s '%s': %s", what, path, strerror(errno));
        goto out;
    }
    close(fd);
    unlink(tmp);
    rc = check_kind(target, path, what, msg, cap);
out:
    free(tmp);
    free(dir);
    free(target);
    return rc;
}
