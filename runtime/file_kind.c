/* file_kind.c - see file_kind.h. */
#include "file_kind.h"

#include "mlcrt_error.h"

#include <errno.h>
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
    if (cap < 1 || lstat(path, &st) != 0 || !S_ISLNK(st.st_mode) || stat(path, &st) == 0) return 0;
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
