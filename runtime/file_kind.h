/* file_kind.h - what a data path turned out to be, for messages that say so: a missing
 * file, a dangling symbolic link, a directory, a FIFO or a device where a regular file
 * was expected. */
#ifndef MLCRT_FILE_KIND_H
#define MLCRT_FILE_KIND_H

#include <stddef.h>

/* MLCRT_OK when path is a regular file (after following links). Otherwise fails with
 *   PATH: cannot open: No such file or directory
 *   PATH: cannot open: symbolic link to 'T', which does not exist
 *   PATH: expected WHAT, found a FIFO (named pipe)      (directory, character device, ...)
 * (what: e.g. "an IDX file"). A FIFO or a device is refused before anything opens it:
 * opening a FIFO without a writer would wait forever, and /dev/zero never ends. */
int mlcrt_check_regular(const char *path, const char *what, char *msg, size_t cap);

/* 1 when path is a symbolic link whose target does not exist (target: the link's text,
 * at most cap - 1 bytes); 0 otherwise. */
int mlcrt_dangling_link(const char *path, char *target, size_t cap);

/* 1 when paths a and b name one file: both exist and are the same inode (through links
 * and hard links), or neither exists and both resolve (through dangling links too) to
 * the same name in the same directory; 0 otherwise. Two outputs of a run, or an output
 * and an input, that name one file would overwrite each other without a word. */
int mlcrt_same_file(const char *a, const char *b);

/* Follows symbolic links at path (relative ones from the link's directory), at most 40
 * as the kernel does: the file a write to path creates or replaces. Returns a malloc'ed
 * path (a copy of path when it is no link); NULL only when out of memory. A loop or an
 * unreadable link stops the walk at the path reached. */
char *mlcrt_resolve_links(const char *path);

/* The first n bytes of buf as a message shows them, in place: printable ASCII as it is,
 * anything else as '.'; then a '\0' at buf[n] (buf holds n + 1 bytes). */
void mlcrt_printable(char *buf, size_t n);
/* The n bytes at src as a message shows them, into dst (cap > 4 bytes): as
 * mlcrt_printable, cut to cap - 1 bytes with "..." at the end where they do not fit.
 * Returns dst. For names read from a file: a byte from it never reaches the terminal raw. */
const char *mlcrt_shown(char *dst, size_t cap, const void *src, size_t n);

/* "a directory", "a FIFO (named pipe)", "a character device", ... for a stat mode. */
const char *mlcrt_file_kind_name(unsigned mode);

#endif
