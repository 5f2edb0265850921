/* test_accum.c - gradient accumulation end to end: a generated C model in the runtime's
 * trainer, one optimizer step on the same 64 Fashion-MNIST samples as
 *     --batch 64              (the reference)
 *     --accum 4 --batch 16    (four forward_backward calls, the gradients averaged, one update)
 * must give the same parameters up to float rounding: the same math, summed in another
 * order. Two wrong variants must not: summing the micro-batch gradients instead of
 * averaging them (for plain SGD's first step that is --batch 64 at 4x the lr) and four
 * optimizer steps of 16 (--batch 16). The models have no dropout or batch norm: batch
 * statistics legitimately differ per micro-batch. Skipped without the data set. */
#include <criterion/criterion.h>
#include <math.h>

#include "ctest_util.h"

#ifndef MLC_EXE
#error "MLC_EXE must be defined (the mlc executable built by meson)"
#endif
#define DATA_DIR "/usr/share/datasets/fashion-mnist"
#define OPENBLAS_INC "/usr/include/x86_64-linux-gnu/openblas-pthread"

/* `drv train ARGS`: the trainer; `drv init SEED`: the parameters as created; `drv dump
 * CKPT`: those of a checkpoint. Parameters print as one line of %a values. */
static const char driver_src[] =
    "#include <stdio.h>\n"
    "#include <stdlib.h>\n"
    "#include <string.h>\n"
    "#include \"mlc_model.h\"\n"
    "extern const mlc_model_api MLC_MODEL_API;\n"
    "int main(int argc, char **argv) {\n"
    "    const mlc_model_api *api = &MLC_MODEL_API;\n"
    "    if (argc >= 2 && !strcmp(argv[1], \"train\")) return mlcrt_main(argc - 1, argv + 1, api);\n"
    "    if (argc < 3) return 2;\n"
    "    void *m = api->create(strcmp(argv[1], \"init\") ? 1 : strtoull(argv[2], NULL, 10), 1);\n"
    "    if (!m || (!strcmp(argv[1], \"dump\") && mlcrt_load(api, m, argv[2]))) return 3;\n"
    "    for (int i = 0; i < api->n_tensors; i++) {\n"
    "        const mlc_tensor_desc *t = &api->tensors[i];\n"
    "        if (!t->is_param) continue;\n"
    "        float *v = malloc(sizeof(float) * (size_t)t->numel);\n"
    "        api->read_tensor(m, i, v);\n"
    "        for (long long j = 0; j < t->numel; j++) printf(\"%a \", v[j]);\n"
    "        free(v);\n"
    "    }\n"
    "    printf(\"\\n\");\n"
    "    api->destroy(m);\n"
    "    return 0;\n"
    "}\n";

typedef struct Params {
    double *v;
    int n;
} Params;

static Params parse(const char *text) {
    Params p = {malloc(sizeof(double) * (strlen(text) / 2 + 1)), 0};
    char *end;
    for (const char *s = text;; s = end) {
        double x = strtod(s, &end);
        if (end == s) break;
        p.v[p.n++] = x;
    }
    return p;
}

static char *run_ok(char **argv) {
    char *out = NULL;
    int st = ct_run(argv, &out);
    cr_assert_eq(st, 0, "%s %s failed (status %d):\n%.3000s", argv[0], argv[1], st, out);
    return out;
}

/* One optimizer step on 64 samples with `flags` (NULL-terminated), its parameters. */
static Params step(const char *drv, const char *dir, const char *tag, const char *const *flags) {
    char ckpt[700];
    snprintf(ckpt, sizeof ckpt, "%s/%s.ckpt", dir, tag);
    char *argv[32] = {(char *)drv, "train", "--data", DATA_DIR, "--train-limit", "64", "--test-limit", "64",
                      "--epochs",  "1",     "--seed", "3",      "--threads",     "2",  "--quiet",      "--save",
                      ckpt};
    int n = 17;
    for (int i = 0; flags[i]; i++) argv[n++] = (char *)flags[i];
    argv[n] = NULL;
    free(run_ok(argv));
    char *dump[] = {(char *)drv, "dump", ckpt, NULL};
    char *out = run_ok(dump);
    Params p = parse(out);
    free(out);
    return p;
}

/* max |a - b| over the largest change the reference step made to any parameter. */
static double rel_diff(const Params *a, const Params *b, const Params *init) {
    double diff = 0, scale = 0;
    for (int i = 0; i < a->n; i++) {
        diff = fmax(diff, fabs(a->v[i] - b->v[i]));
        scale = fmax(scale, fabs(a->v[i] - init->v[i]));
    }
    cr_assert_gt(scale, 0, "the reference step changed no parameter");
    return diff / scale;
}

static void accum_matches_big_batch(const char *mdl, const char *lr4) {
    char *dir = ct_tmpdir("accum");
    cr_assert_not_null(dir);
    const char *name = strrchr(mdl, '/') + 1;
    char src[700], drv_c[700], drv[700], def[300];
    snprintf(src, sizeof src, "%s/%.*s.c", dir, (int)(strlen(name) - 4), name);
    snprintf(drv_c, sizeof drv_c, "%s/driver.c", dir);
    snprintf(drv, sizeof drv, "%s/driver", dir);
    snprintf(def, sizeof def, "-DMLC_MODEL_API=%.*s_api", (int)(strlen(name) - 4), name);
    char *emit[] = {MLC_EXE, (char *)mdl, "-o", src, NULL};
    free(run_ok(emit));
    cr_assert_eq(ct_write_file(drv_c, driver_src), 0);
    char san[] = MLC_TEST_SANITIZE, noop[] = "-DMLC_TEST_NO_SANITIZE";
    char *cc[] = {"cc",
                  "-std=c11",
                  "-O2",
                  "-fopenmp",
                  "-D_POSIX_C_SOURCE=200809L",
                  "-I" MLC_RUNTIME_INC,
                  "-I" OPENBLAS_INC,
                  def,
                  san[0] ? san : noop,
                  src,
                  drv_c,
                  "-o",
                  drv,
                  "-L" MLC_RUNTIME_LIB_DIR,
                  "-lmlckernels",
                  "-lmlcrt",
                  "-lopenblas",
                  "-lz",
                  "-lm",
                  NULL};
    free(run_ok(cc));

    char *init_argv[] = {drv, "init", "3", NULL};
    char *io = run_ok(init_argv);
    Params init = parse(io);
    free(io);
    static const char *const big[] = {"--batch", "64", NULL}, *const accum[] = {"--batch", "16", "--accum", "4", NULL},
                             *const small[] = {"--batch", "16", NULL};
    const char *sum[] = {"--batch", "64", "--lr", lr4, NULL};
    Params a = step(drv, dir, "big", big), b = step(drv, dir, "accum", accum);
    Params s = step(drv, dir, "sum", sum), m = step(drv, dir, "small", small);
    cr_assert(init.n > 0 && a.n == init.n && b.n == a.n && s.n == a.n && m.n == a.n, "%s: parameter counts differ",
              mdl);
    /* A float sum of k terms is off by about k ulps at worst, and here the summation
     * orders differ over at most 64 samples: 1e-5 of the step is ~80 float epsilons. */
    double d = rel_diff(&a, &b, &init), ds = rel_diff(&a, &s, &init), dm = rel_diff(&a, &m, &init);
    cr_log_info("%s: accum %g, sum %g, small steps %g (of the step)", mdl, d, ds, dm);
    cr_expect_leq(d, 1e-5, "%s: --accum 4 --batch 16 differs from --batch 64 by %g of the step", mdl, d);
    cr_expect_gt(ds, 0.5, "%s: summing instead of averaging changed the step by only %g", mdl, ds);
    cr_expect_gt(dm, 0.01, "%s: four steps of 16 came within %g of one step of 64", mdl, dm);
    free(init.v), free(a.v), free(b.v), free(s.v), free(m.v);
    ct_rmdir(dir);
    free(dir);
}

static int data_present(void) { return access(DATA_DIR "/train-images-idx3-ubyte.gz", R_OK) == 0; }

Test(accum, mlp_matches_big_batch, .timeout = 300) {
    if (!data_present()) cr_skip_test("%s not installed", DATA_DIR);
    accum_matches_big_batch(MLC_TEST_DIR "/data/accum_mlp.mdl", "0.4");
}

Test(accum, conv_matches_big_batch, .timeout = 300) {
    if (!data_present()) cr_skip_test("%s not installed", DATA_DIR);
    accum_matches_big_batch(MLC_TEST_DIR "/data/accum_conv.mdl", "0.2");
}
