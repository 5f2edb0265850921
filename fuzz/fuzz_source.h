/* fuzz_source.h - what the .mdl harnesses share: the input as a source file named
 * fuzz.mdl, diagnostics to /dev/null (MLC_FUZZ_VERBOSE: to stderr), and the diagnostics'
 * global state and the arena reset for the next input. run gets the input's length too
 * (fuzz_compile picks the target by it). */
#ifndef MLC_FUZZ_SOURCE_H
#define MLC_FUZZ_SOURCE_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "arena.h"
#include "diag.h"

static FILE *fuzz_sink; /* /dev/null */

static inline void fuzz_source(const uint8_t *data, size_t size, void (*run)(Arena *, const SrcFile *, size_t)) {
    if (!fuzz_sink && !(fuzz_sink = fopen("/dev/null", "w"))) abort();
    char *text = malloc(size + 1);
    if (!text) abort();
    memcpy(text, data, size);
    text[size] = '\0';
    SrcFile *src = srcfile_from_string("fuzz.mdl", text);
    free(text);
    diag_out = getenv("MLC_FUZZ_VERBOSE") ? NULL : fuzz_sink;
    Arena arena = {0};
    run(&arena, src, size);
    diag_jmp = NULL;
    diag_errors = 0;
    arena_free(&arena);
    srcfile_free(src);
}

#endif
