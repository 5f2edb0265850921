/* fuzz_mdl.c - libFuzzer harness for the compiler's front end through lowering: each input
 * is a .mdl source, parsed, its train { } read, lowered into the train-step and eval
 * graphs and verified (no passes, no emission). A user error is a diagnostic that
 * longjmps back here (support/diag.c); a crash, a sanitizer report or an mlc_die (an
 * internal error: abort) is a finding. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "arena.h"
#include "diag.h"
#include "ir.h"
#include "lower.h"
#include "ast.h"

/* Everything between setjmp and longjmp lives here, so no local of the caller changes in
 * between (as in driver/main.c's compile). */
static void lower_all(Arena *arena, const SrcFile *src) {
    jmp_buf on_error;
    if (!DIAG_TRY(on_error)) return;
    Program *prog = parse_program(arena, src);
    ModelSpec spec;
    memset(&spec, 0, sizeof spec);
    lower_spec(arena, prog, &spec);
    ir_verify(lower_program(arena, prog, &spec, MODE_TRAIN), "lower");
    ir_verify(lower_program(arena, prog, &spec, MODE_EVAL), "lower");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static FILE *sink;
    if (!sink && !(sink = fopen("/dev/null", "w"))) abort();
    char *text = malloc(size + 1);
    if (!text) abort();
    memcpy(text, data, size);
    text[size] = '\0';
    SrcFile *src = srcfile_from_string("fuzz.mdl", text);
    free(text);
    diag_out = getenv("MLC_FUZZ_VERBOSE") ? NULL : sink;
    Arena arena = {0};
    lower_all(&arena, src);
    /* the diagnostics' global state, reset for the next input */
    diag_jmp = NULL;
    diag_errors = 0;
    arena_free(&arena);
    srcfile_free(src);
    return 0;
}
