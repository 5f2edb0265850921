/* test_error_style.c - one error style everywhere (issue 14): a set of bad inputs to mlc
 * (options, .mdl files: every .mdl of tests/compiler/errors), to `mlc build`, and to a
 * built trainer (flags, data, checkpoints), each of which must fail with messages of the
 * form
 *     PLACE: error: what was expected     (PLACE: file:line:col, a file, or the program)
 *     error: what was expected            (the trainer)
 * on one line. A compiler diagnostic may go on with its source line, caret, `hint:` and
 * `note:` lines (docs/language.md); nothing else may appear, and nothing may crash. */
#include <criterion/criterion.h>
#include <dirent.h>
#include <regex.h>
#include <string.h>
#include <sys/stat.h>

#include "ctest_util.h"

#ifndef MLC_EXE
#error "MLC_EXE must be defined"
#endif

/* The first line's style: an optional place (no spaces), then "error: " and a message. */
static int is_error_line(const char *line, size_t len) {
    static regex_t re;
    static int ready;
    if (!ready) {
        cr_assert_eq(regcomp(&re, "^([^ ]+: )?error: [^ ].*$", REG_EXTENDED | REG_NOSUB), 0);
        ready = 1;
    }
    char buf[2048];
    snprintf(buf, sizeof buf, "%.*s", (int)len, line);
    return regexec(&re, buf, 0, NULL, 0) == 0;
}

/* A line after a compiler diagnostic's first: the source line (" NN | ..."), the caret
 * line ("    | ^~~"), a hint or a note (located or not). */
static int is_follow_line(const char *line, size_t len) {
    if (len > 6 && !strncmp(line, "hint: ", 6)) return 1;
    if (strstr(line, ": note: ") && (size_t)(strstr(line, ": note: ") - line) < len) return 1;
    if (len > 6 && !strncmp(line, "note: ", 6)) return 1;
    size_t i = 0;
    while (i < len && line[i] == ' ') i++;
    while (i < len && line[i] >= '0' && line[i] <= '9') i++;
    while (i < len && line[i] == ' ') i++;
    return i < len && line[i] == '|';
}

/* Runs argv, expects a failure (exit 1 or 2) whose output has the style. */
static void check(char *const *argv, int compiler) {
    char *out = NULL, what[512] = "";
    for (int i = 0; argv[i]; i++)
        snprintf(what + strlen(what), sizeof what - strlen(what), "%s%s", i ? " " : "", argv[i]);
    int st = ct_run(argv, &out);
    cr_assert_not_null(out);
    cr_expect(st == 1 || st == 2, "%s: exit status %d (a failure is 1 or 2, not a crash):\n%s", what, st, out);
    int line = 0, errors = 0;
    for (const char *p = out; *p; line++) {
        const char *e = strchr(p, '\n');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        cr_expect(e != NULL, "%s: the output does not end in a newline:\n%s", what, out);
        int ok = is_error_line(p, len) ? (errors++, 1) : compiler && line > 0 && is_follow_line(p, len);
        cr_expect(ok, "%s: line %d is not in the error style: '%.*s'", what, line + 1, (int)len, p);
        p += len + (e ? 1 : 0);
    }
    cr_expect_gt(errors, 0, "%s: no error line", what);
    cr_expect(compiler || (errors == 1 && line == 1), "%s: %d lines, %d errors (one line expected):\n%s", what, line,
              errors, out);
    free(out);
}

Test(error_style, mlc_options_and_files) {
    char *cases[][6] = {
        {MLC_EXE, NULL},
        {MLC_EXE, "--bogus", "x.mdl", NULL},
        {MLC_EXE, "--target", "metal", MLC_SOURCE_ROOT "/samples/mlp.mdl", NULL},
        {MLC_EXE, "--batch", "0", MLC_SOURCE_ROOT "/samples/mlp.mdl", NULL},
        {MLC_EXE, "--dump-ir=nonsense", MLC_SOURCE_ROOT "/samples/mlp.mdl", NULL},
        {MLC_EXE, "/nonexistent/net.mdl", NULL},
        {MLC_EXE, "build", MLC_SOURCE_ROOT "/samples/mlp.mdl", NULL},
        {MLC_EXE, "--mem-budget", "lots", MLC_SOURCE_ROOT "/samples/mlp.mdl", NULL},
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) check(cases[k], 1);
}

Test(error_style, every_bad_mdl, .timeout = 300) {
    DIR *d = opendir(MLC_TEST_DIR "/errors");
    cr_assert_not_null(d);
    struct dirent *de;
    int n = 0;
    while ((de = readdir(d))) {
        size_t l = strlen(de->d_name);
        if (l < 5 || strcmp(de->d_name + l - 4, ".mdl")) continue;
        char path[1024];
        snprintf(path, sizeof path, "%s/errors/%s", MLC_TEST_DIR, de->d_name);
        char *argv[] = {MLC_EXE, path, "-o", "/dev/null", NULL};
        check(argv, 1);
        n++;
    }
    closedir(d);
    cr_assert_gt(n, 40, "only %d .mdl files in tests/compiler/errors", n);
}

/* A trainer: samples/mlp.mdl, built once; bad flags, data and checkpoints. */
Test(error_style, trainer_flags_data_and_checkpoints, .timeout = 600) {
    /* mlc build links an uninstrumented trainer, which the sanitized libraries cannot be */
    if (MLC_TEST_SANITIZE[0]) cr_skip_test("mlc build's trainer cannot link the sanitized runtime");
    char *dir = ct_tmpdir("errstyle");
    cr_assert_not_null(dir);
    char bin[700], junk[720], empty[720];
    snprintf(bin, sizeof bin, "%s/mlp", dir);
    snprintf(junk, sizeof junk, "%s/junk.ckpt", dir);
    snprintf(empty, sizeof empty, "%s/empty", dir);
    cr_assert_eq(ct_write_file(junk, "not a checkpoint\n"), 0);
    cr_assert_eq(mkdir(empty, 0755), 0);
    char *build[] = {MLC_EXE, "build", MLC_SOURCE_ROOT "/samples/mlp.mdl", "-o", bin, NULL}, *out = NULL;
    int st = ct_run(build, &out);
    cr_assert_eq(st, 0, "mlc build failed:\n%s", out);
    free(out);
    char *cases[][6] = {
        {bin, "--epochs", "0", NULL},
        {bin, "--lr", "fast", NULL},
        {bin, "--bogus", NULL},
        {bin, "--schedule", "sometimes", NULL},
        {bin, "--data", "/nonexistent", NULL},
        {bin, "--data", empty, NULL},
        {bin, "eval", NULL},
        {bin, "eval", junk, NULL},
        {bin, "eval", "/nonexistent.ckpt", NULL},
        {bin, "predict", junk, "/etc/hostname", NULL},
        {bin, "--ema", NULL},
        {bin, "--resume", junk, NULL},
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) check(cases[k], 0);
    ct_rmdir(dir);
    free(dir);
}
