/* fuzz_mdl.c - libFuzzer harness for the compiler's front end through lowering: each input
 * is a .mdl source, parsed, its train { } read, lowered into the train-step and eval
 * graphs and verified (no passes, no emission). A user error is a diagnostic that
 * longjmps back here (support/diag.c); a crash, a sanitizer report or an mlc_die (an
 * internal error: abort) is a finding. */
#include "ast.h"
#include "fuzz_source.h"
#include "ir.h"
#include "lower.h"

/* Everything between setjmp and longjmp lives here, so no local of the caller changes in
 * between (as in driver/main.c's compile). */
static void lower_all(Arena *arena, const SrcFile *src, size_t size) {
    (void)size;
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
    fuzz_source(data, size, lower_all);
    return 0;
}
