/* fuzz_file.h - the runtime's loaders read paths, not buffers: a harness writes each input
 * to one scratch file of its own (per process, removed at exit) and hands over its path.
 * Header-only; each harness includes it once. */
#ifndef MLC_FUZZ_FILE_H
#define MLC_FUZZ_FILE_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

static char fuzz_path[256];

static void fuzz_file_remove(void) { unlink(fuzz_path); }

/* Writes size bytes of data to the scratch file and returns its path. */
static const char *fuzz_file(const uint8_t *data, size_t size)
{
    if (!fuzz_path[0]) {
        const char *dir = getenv("TMPDIR");
        snprintf(fuzz_path, sizeof fuzz_path, "%s/mlc-fuzz-%ld", dir && *dir ? dir : "/tmp",
                 (long)getpid());
        atexit(fuzz_file_remove);
    }
    FILE *f = fopen(fuzz_path, "wb");
    if (!f || (size && fwrite(data, 1, size, f) != size) || fclose(f) != 0)
        abort(); /* the harness's own failure, not a finding */
    return fuzz_path;
}

#endif
