/* fuzz_compile.c - libFuzzer harness for the whole compiler: each input is a .mdl source
 * compiled as `mlc net.mdl -o net.c` does it (parse, lower, differentiate, optimizer
 * update, passes, fusion, memory plans), then emitted to /dev/null, for the C target or,
 * for inputs of odd length, the CUDA target; with --precision bf16 for lengths 2 and 3
 * modulo 4. fuzz_mdl stops after lowering and so runs
 * many more inputs a second; this one reaches what a model that lowers can still break.
 * A user error is a diagnostic that longjmps back here; a crash, a sanitizer report or
 * an mlc_die (an internal error: abort) is a finding. */
#include "ast.h"
#include "fuzz_source.h"
#include "model.h"
#include "target.h"

/* Everything between setjmp and longjmp lives here, as in driver/main.c's compile. */
static void compile_all(Arena *arena, const SrcFile *src, size_t size) {
    const TargetKind kind = size % 2 ? TARGET_CUDA : TARGET_C;
    jmp_buf on_error;
    if (!DIAG_TRY(on_error)) return;
    Program *prog = parse_program(arena, src);
    CompileOptions co = {.target = kind, .threads = 2, .bf16 = size % 4 >= 2};
    DumpOptions dump = {0};
    ModelIR *m = compile_model_opts(arena, prog, &co, &dump);
    emit_header(m, fuzz_sink);
    target_of_kind(kind)->emit_source(m, fuzz_sink, "fuzz.h");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    fuzz_source(data, size, compile_all);
    return 0;
}
