/* test_ir_golden.c - the IR text (ir_print, through compile_model's DumpOptions) after
 * lowering (train step and eval), after autodiff and the final train-step + eval graphs,
 * compared with golden files tests/compiler/golden/<model>.<stage>.ir.
 *
 * A change in lowering, a gradient rule, the optimizer, DCE or the printer shows up here
 * as a diff; the message names the first differing line. After an intended change,
 * regenerate with
 *     MLC_UPDATE_GOLDEN=1 meson test -C build compiler_ir_golden
 * and review the diff of tests/compiler/golden/ in git. */
#include <criterion/criterion.h>

#include "ctest_util.h"

typedef struct Stage {
    const char *name;
    DumpOptions want;
} Stage;

static const Stage stages[] = {
    {"lower", {.after = DUMP_AFTER(PASS_lower)}},
    {"autodiff", {.after = DUMP_AFTER(PASS_autodiff)}},
    {"final", {.final = 1}},
};

static void check_model(const char *mdl_path, const char *golden_stem) {
    for (size_t s = 0; s < sizeof stages / sizeof stages[0]; s++) {
        SrcFile *src = ct_load_src(mdl_path);
        cr_assert_not_null(src, "cannot read %s", mdl_path);
        Arena arena = {0};
        CtCompile r = ct_compile(&arena, src, stages[s].want);
        cr_assert_not_null(r.m, "%s does not compile:\n%s", mdl_path, r.diag);
        cr_assert_str_eq(r.diag, "", "%s: unexpected diagnostics:\n%s", mdl_path, r.diag);
        cr_assert_neq(strlen(r.dump), 0, "%s: no IR dump for stage %s", mdl_path, stages[s].name);
        char gpath[1024], msg[4096];
        snprintf(gpath, sizeof gpath, "%s/golden/%s.%s.ir", MLC_TEST_DIR, golden_stem, stages[s].name);
        int bad = ct_golden_compare(gpath, r.dump, msg, sizeof msg);
        ct_compile_free(&r);
        arena_free(&arena);
        srcfile_free(src);
        cr_assert_eq(bad, 0, "%s", msg);
    }
}

Test(ir_golden, mlp) { check_model(MLC_SOURCE_ROOT "/samples/mlp.mdl", "mlp"); }
Test(ir_golden, tiny) { check_model(MLC_TEST_DIR "/data/tiny.mdl", "tiny"); }
Test(ir_golden, blocks) { check_model(MLC_TEST_DIR "/data/blocks.mdl", "blocks"); }
Test(ir_golden, adamw) { check_model(MLC_TEST_DIR "/data/adamw.mdl", "adamw"); }
/* conv + batch norm: the eval graph in final is after fold_bn */
Test(ir_golden, convbn) { check_model(MLC_TEST_DIR "/data/convbn.mdl", "convbn"); }
/* every layout op, both poolings, dropout, leaky_relu and elu: each op's attributes */
Test(ir_golden, layers) { check_model(MLC_TEST_DIR "/data/layers.mdl", "layers"); }
/* i32[B, 8] tokens, B*8 dimensions, folded and transposed matmuls, tied weights, the
 * per-token loss */
Test(ir_golden, token_mlp) { check_model(MLC_TEST_DIR "/data/token_mlp.mdl", "token_mlp"); }

/* The dump is a pure function of the input: compiling twice gives the same text. */
Test(ir_golden, deterministic) {
    char *first = NULL;
    for (int k = 0; k < 2; k++) {
        SrcFile *src = ct_load_src(MLC_TEST_DIR "/data/blocks.mdl");
        cr_assert_not_null(src);
        Arena arena = {0};
        CtCompile r = ct_compile(&arena, src, (DumpOptions){.after = DUMP_AFTER_ALL, .final = 1});
        cr_assert_not_null(r.m);
        if (!k) first = strdup(r.dump);
        else cr_assert_str_eq(r.dump, first);
        ct_compile_free(&r);
        arena_free(&arena);
        srcfile_free(src);
    }
    free(first);
}

/* The comparison itself: a one-line change is reported with its line number. */
Test(ir_golden, mismatch_is_reported) {
    if (ct_update_golden()) return; /* in update mode the comparison writes instead */
    char *dir = ct_tmpdir("golden");
    cr_assert_not_null(dir);
    char path[600], msg[4096];
    snprintf(path, sizeof path, "%s/g.ir", dir);
    cr_assert_eq(ct_write_file(path, "a\nb\nc\n"), 0);
    cr_assert_eq(ct_golden_compare(path, "a\nb\nc\n", msg, sizeof msg), 0);
    cr_assert_eq(ct_golden_compare(path, "a\nB\nc\n", msg, sizeof msg), 1);
    cr_assert(strstr(msg, "@@ line 2 @@") && strstr(msg, "-b\n") && strstr(msg, "+B"), "%s", msg);
    cr_assert_eq(ct_golden_compare(path, "a\nb\n", msg, sizeof msg), 1);
    cr_assert(strstr(msg, "@@ line 3 @@") && strstr(msg, "<end of output>"), "%s", msg);
    ct_rmdir(dir);
    free(dir);
}
