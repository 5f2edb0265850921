/* fuzz_file.h - the runtime's loaders read paths, not buffers: a harness writes each input
 * to one scratch file of its own (per process, removed at exit) and hands over its path.
 * Header-only; each harness includes it once (static inline: a harness may use one half only). */
#ifndef MLC_FUZZ_FILE_H
#define MLC_FUZZ_FILE_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

static char fuzz_path[256];

static inline void fuzz_file_remove(void) { unlink(fuzz_path); }

/* Writes size bytes of data to the scratch file and returns its path. */
static inline const char *fuzz_file(const uint8_t *data, size_t size) {
    if (!fuzz_path[0]) {
        const char *dir = getenv("TMPDIR");
        snprintf(fuzz_path, sizeof fuzz_path, "%s/mlc-fuzz-%ld", dir && *dir ? dir : "/tmp", (long)getpid());
        atexit(fuzz_file_remove);
    }
    FILE *f = fopen(fuzz_path, "wb");
    if (!f || (size && fwrite(data, 1, size, f) != size) || fclose(f) != 0)
        abort(); /* the harness's own failure, not a finding */
    return fuzz_path;
}

static char fuzz_dir_path[256], fuzz_dir_files[2][300];

static inline void fuzz_dir_remove(void) {
    for (int i = 0; i < 2; i++)
        if (fuzz_dir_files[i][0]) unlink(fuzz_dir_files[i]);
    rmdir(fuzz_dir_path);
}

/* For readers of a directory: writes size bytes of data to file `name` of one scratch
 * directory of the process's own (slot 0 or 1: at most two names, removed at exit) and
 * returns the directory's path. */
static inline const char *fuzz_dir_file(int slot, const char *name, const uint8_t *data, size_t size) {
    if (!fuzz_dir_path[0]) {
        const char *dir = getenv("TMPDIR");
        snprintf(fuzz_dir_path, sizeof fuzz_dir_path, "%s/mlc-fuzz-dir-%ld", dir && *dir ? dir : "/tmp",
                 (long)getpid());
        if (mkdir(fuzz_dir_path, 0700) != 0) abort();
        atexit(fuzz_dir_remove);
    }
    snprintf(fuzz_dir_files[slot], sizeof fuzz_dir_files[slot], "%s/%s", fuzz_dir_path, name);
    FILE *f = fopen(fuzz_dir_files[slot], "wb");
    if (!f || (size && fwrite(data, 1, size, f) != size) || fclose(f) != 0) abort();
    return fuzz_dir_path;
}

#endif
