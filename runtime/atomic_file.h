/* atomic_file.h - replacing a file so that a reader, a crash or a kill at any moment
 * sees either the old file or the complete new one, never a part, and leaves no
 * temporary file behind that lives on (docs/checkpoint.md, "Atomic saves"). */
#ifndef MLCRT_ATOMIC_FILE_H
#define MLCRT_ATOMIC_FILE_H

#include <stddef.h>
#include <stdint.h>

/* Writes len bytes of buf as path. Where the file system allows it the data goes to an
 * unnamed file (O_TMPFILE) that is fsync'ed and only then given a name (linkat) and
 * renamed over path, so a kill during the write leaves nothing; elsewhere to
 * PATH.tmp.<pid>.<n> (n counts the process's saves, so that two threads saving one path
 * never share a name), fsync'ed and renamed. The directory is fsync'ed after the rename.
 * A symbolic link at path is followed: its target is replaced, the link stays. A path
 * (or link target) that exists and is not a regular file (a FIFO, a device, a directory)
 * is refused: the rename would replace it, not write into it.
 * Temporary files PATH.tmp.<pid>.<n> (or PATH.tmp.<pid>, earlier versions' name) of
 * processes that no longer run (killed during a save) are removed first. On failure an
 * existing file is left untouched, nothing new remains, and msg says why, e.g.
 *   cannot write checkpoint 'x/y.ckpt': Permission denied
 * (what: "checkpoint", path as the caller spelled it). */
int mlcrt_write_atomic(const char *path, const void *buf, uint64_t len, const char *what, char *msg, size_t cap);

/* Checks, before the work that will produce it, that mlcrt_write_atomic(path) can
 * succeed: the directory of path (or of the link's target) takes a new file, path is
 * absent or a regular file. Also removes stale temporary files as a write does. Same messages. */
int mlcrt_check_atomic_writable(const char *path, const char *what, char *msg, size_t cap);

#endif
