/* test_codegen_c.c - the C target's output: clean under libclang and cc -Werror, and
 * numerically equal to the reference interpreter.
 *
 * For samples/mlp.mdl and the .mdl files in tests/compiler/data/ the model's source and header are
 * written (write_model_sources) to a temp dir, then
 *   (a) libclang parses the .c with -std=c11 -Wall -Wextra -fopenmp: no diagnostic of
 *       severity warning or above (skipped when meson found no libclang: HAVE_LIBCLANG=0);
 *   (b) `cc -std=c11 -Wall -Wextra -Wpedantic -Werror -fopenmp -c` exits 0;
 *   (c) a small driver linked with the generated code and the runtime (libmlcrt, OpenBLAS)
 *       creates the model, prints its tensors, runs forward() on a fixed batch, then one
 *       train_step() and prints the tensors again. The test evaluates the eval graph and
 *       the train graph with the reference interpreter (double) on the same parameters and
 *       inputs and compares: forward output, the train step's loss and training-mode
 *       output, and for plain SGD (no momentum, no weight decay) the updated parameters
 *       p - lr * grad. Error measure per element: |c - r| / max(|r|, mean |r| over the
 *       tensor) <= 1e-5. The floor keeps elements near 0 (a logit of -0.018 among logits of
 *       size ~1, computed as a float sum of ~1000 products) from turning float rounding of
 *       the tensor's scale into a large relative error;
 *   (d) conv models give bit-identical train steps on 1, 2 and 3 threads;
 *   (e) fused epilogues give bit-identical results to the unfused code (--check-finite's),
 *       and --check-finite names a NaN made inside a conv's epilogue; the fast functions
 *       hold no check, their --check-finite copies check every op that can make a NaN;
 *   (f) `mlc --debug` output: #line directives into the .mdl for every node, -Werror
 *       clean, bit-identical numbers to the normal build;
 *   (g) `--precision bf16` models against the interpreter on the same graph (round_bf16
 *       where precision.c puts it): a value just beside a bf16 rounding boundary can
 *       round the other way in float than in double, a step of 2^-8 that the layers
 *       after it spread over their sample. So each tensor's median error must meet
 *       1e-5 (a C target that did not round would be ~1e-3 off nearly everywhere) and
 *       its largest 5e-2; and the train steps are bit-identical on 1, 2 and 3 threads. */
#include <criterion/criterion.h>
#include <math.h>

#include "ctest_util.h"
#include "driver.h"
#include "interp.h"
#include "report.h"
#include "target.h"

#if HAVE_LIBCLANG
#include <clang-c/Index.h>
#endif

#ifndef MLC_RUNTIME_INC
#error "MLC_RUNTIME_INC must be defined"
#endif
#ifndef MLC_RUNTIME_LIB_DIR
#error "MLC_RUNTIME_LIB_DIR must be defined"
#endif
#define OPENBLAS_INC "/usr/include/x86_64-linux-gnu/openblas-pthread"
#define TOL 1e-5

// clang-format off
static const char *const models[] = {
    MLC_SOURCE_ROOT "/samples/mlp.mdl",
    MLC_TEST_DIR "/data/tiny.mdl",
    MLC_TEST_DIR "/data/blocks.mdl",
    MLC_TEST_DIR "/data/adamw.mdl",
    MLC_TEST_DIR "/data/convnet.mdl",
    MLC_TEST_DIR "/data/convwide.mdl",
    MLC_TEST_DIR "/data/convb1.mdl",
    MLC_TEST_DIR "/data/convseg.mdl",
    MLC_TEST_DIR "/data/convcv.mdl",
    MLC_TEST_DIR "/data/clip.mdl",
    MLC_TEST_DIR "/data/decoupled.mdl",
    MLC_TEST_DIR "/data/convbn.mdl",
    MLC_TEST_DIR "/data/allops.mdl",
    MLC_TEST_DIR "/data/activations.mdl",
    MLC_TEST_DIR "/data/rows.mdl",
    MLC_TEST_DIR "/data/convepi.mdl",
    MLC_TEST_DIR "/data/densesq.mdl",
    MLC_TEST_DIR "/data/poolrelu.mdl",
    MLC_TEST_DIR "/data/token_mlp.mdl",
    MLC_TEST_DIR "/data/token_attn.mdl",
    MLC_TEST_DIR "/data/token_merged.mdl",
    MLC_TEST_DIR "/data/accum_mlp.mdl",
    MLC_TEST_DIR "/data/multiout.mdl",
    MLC_TEST_DIR "/data/seqops.mdl",
    MLC_SOURCE_ROOT "/samples/autoencoder.mdl",
    MLC_TEST_DIR "/data/conv1d.mdl",
    MLC_TEST_DIR "/data/convt.mdl",
    MLC_TEST_DIR "/data/tokens_cls.mdl",
    MLC_TEST_DIR "/data/attention.mdl",
    MLC_TEST_DIR "/data/resample.mdl",
    MLC_TEST_DIR "/data/ema.mdl",
    MLC_TEST_DIR "/data/ema_mlp.mdl",
};
// clang-format on
enum { NMODELS = sizeof models / sizeof models[0] };

/* A compiled model and its emitted source in a temp dir. */
typedef struct Emitted {
    Arena arena;
    SrcFile *src;
    ModelIR *m;
    char *dir;
    char c_path[600], h_path[600];
} Emitted;

/* --conv-algo and --precision bf16 for the models emit_model compiles (a test sets them
 * before, and back after) */
static ConvAlgo emit_conv_algo = CONV_ALGO_AUTO;
static int emit_bf16;
#define BF16_MAX_ERR 5e-2

/* Compiles src (`mdl` names it in messages) and writes its source and header to a temp
 * dir. debug: as `mlc --debug` (unfused, no buffer reuse, #line into the .mdl). */
static void emit_src_debug(SrcFile *src, const char *mdl, Emitted *e, int debug) {
    memset(e, 0, sizeof *e);
    e->src = src;
    cr_assert_not_null(e->src, "cannot read %s", mdl);
    const CompileOptions o = {.target = TARGET_C, .debug = debug, .conv_algo = emit_conv_algo, .bf16 = emit_bf16};
    CtCompile r = ct_compile_with(&e->arena, e->src, (DumpOptions){0}, &o);
    cr_assert_not_null(r.m, "%s does not compile:\n%s", mdl, r.diag);
    ct_compile_free(&r);
    e->m = r.m;
    e->dir = ct_tmpdir("codegen");
    cr_assert_not_null(e->dir);
    snprintf(e->c_path, sizeof e->c_path, "%s/%s.c", e->dir, e->m->spec.name);
    cr_assert_eq(write_model_sources(e->m, &target_c, e->c_path, e->h_path, sizeof e->h_path), 0);
}

static void emit_model_debug(const char *mdl, Emitted *e, int debug) {
    emit_src_debug(ct_load_src(mdl), mdl, e, debug);
}

static void emit_model(const char *mdl, Emitted *e) { emit_model_debug(mdl, e, 0); }

static void emitted_free(Emitted *e) {
    ct_rmdir(e->dir);
    free(e->dir);
    arena_free(&e->arena);
    srcfile_free(e->src);
}

/* The API's input and output tables: names, dtypes, per-sample shapes, whether inference
 * reads an input, and which output and input make a classifier. */
Test(codegen_c, io_tables) {
    Emitted e;
    emit_model(MLC_TEST_DIR "/data/multiout.mdl", &e);
    const ModelIR *m = e.m;
    cr_assert_eq(m->ninputs, 2);
    cr_assert_str_eq(m->inputs[0].name, "x");
    cr_assert_eq(m->inputs[0].dtype, DT_F32);
    cr_assert_eq(m->inputs[0].sample_numel, 6);
    cr_assert_eq(m->inputs[0].eval_reads, 1);
    cr_assert_str_eq(m->inputs[1].name, "y");
    cr_assert_eq(m->inputs[1].dtype, DT_I32);
    cr_assert_eq(m->inputs[1].sample_numel, 1);
    cr_assert_eq(m->inputs[1].eval_reads, 0);
    cr_assert_eq(m->noutputs, 3);
    cr_assert_str_eq(m->outputs[0].name, "logits");
    cr_assert_str_eq(m->outputs[1].name, "output1");
    cr_assert_str_eq(m->outputs[2].name, "h");
    cr_assert_eq(m->outputs[2].sample_numel, 5);
    cr_assert_eq(m->cls_output, 0);
    cr_assert_eq(m->cls_label, 1);
    char *c = ct_read_file(e.c_path, NULL);
    cr_assert(strstr(c,
                     "static const mlc_io_desc multiout_outputs[3] = {\n    {\"logits\", MLC_F32, 1, {4}, 4, 1},\n"
                     "    {\"output1\", MLC_F32, 1, {4}, 4, 1},\n    {\"h\", MLC_F32, 1, {5}, 5, 1},\n};\n"));
    cr_assert(strstr(c, "    .classifier = 1, .cls_output = 0, .cls_label = 1,\n"));
    free(c);
    emitted_free(&e);

    emit_model(MLC_SOURCE_ROOT "/samples/autoencoder.mdl", &e);
    m = e.m;
    cr_assert_eq(m->ninputs, 1);
    cr_assert_str_eq(m->inputs[0].name, "image");
    cr_assert_eq(m->noutputs, 1);
    cr_assert_str_eq(m->outputs[0].name, "recon");
    cr_assert_eq(m->outputs[0].sample_numel, 784);
    cr_assert_eq(m->cls_output, -1);
    c = ct_read_file(e.c_path, NULL);
    cr_assert(strstr(c, "    .classifier = 0, .cls_output = -1, .cls_label = -1,\n"));
    free(c);
    emitted_free(&e);
}

/* Token inputs i32[B, 8]: per-sample shape [8] on both sides of the API; per-token
 * cross_entropy over [B, 8, 16] logits does not make a classifier (the trainer reports
 * its loss), but names the scores (cls_output): the trainer's vocabulary and what sample
 * draws from, whatever the order of the outputs. */
Test(codegen_c, io_tables_tokens) {
    Emitted e;
    emit_model(MLC_TEST_DIR "/data/token_mlp.mdl", &e);
    const ModelIR *m = e.m;
    cr_assert_eq(m->ninputs, 2);
    cr_assert_eq(m->inputs[0].dtype, DT_I32);
    cr_assert_eq(m->inputs[0].sample_numel, 8);
    cr_assert_eq(m->inputs[0].eval_reads, 1);
    cr_assert_eq(m->inputs[1].sample_numel, 8);
    cr_assert_eq(m->inputs[1].eval_reads, 0);
    cr_assert_eq(m->outputs[0].sample_numel, 128);
    cr_assert_eq(m->cls_output, 0);
    cr_assert_eq(m->cls_label, 1);
    cr_assert_eq(m->classifier, 0);
    char *c = ct_read_file(e.c_path, NULL);
    cr_assert(strstr(c,
                     "static const mlc_io_desc token_mlp_inputs[2] = {\n    {\"tokens\", MLC_I32, 1, {8}, 8, 1},\n"
                     "    {\"targets\", MLC_I32, 1, {8}, 8, 0},\n};\n"));
    cr_assert(strstr(
        c, "static const mlc_io_desc token_mlp_outputs[1] = {\n    {\"logits\", MLC_F32, 2, {8, 16}, 128, 1},\n};\n"));
    cr_assert(strstr(c, "    .classifier = 0, .cls_output = 0, .cls_label = 1,\n"));
    free(c);
    emitted_free(&e);
}

/* ---- (a) libclang ---- */

#if HAVE_LIBCLANG
Test(codegen_c, libclang_clean, .timeout = 300) {
    for (int k = 0; k < NMODELS; k++) {
        Emitted e;
        emit_model(models[k], &e);
        const char *args[] = {"-std=c11",
                              "-Wall",
                              "-Wextra",
                              "-fopenmp",
                              "-I" MLC_RUNTIME_INC,
                              "-I" OPENBLAS_INC,
                              "-D_POSIX_C_SOURCE=200809L"};
        CXIndex idx = clang_createIndex(0, 0);
        CXTranslationUnit tu = clang_parseTranslationUnit(idx, e.c_path, args, sizeof args / sizeof args[0], NULL, 0,
                                                          CXTranslationUnit_None);
        cr_assert_not_null(tu, "libclang could not parse %s", e.c_path);
        unsigned n = clang_getNumDiagnostics(tu), bad = 0;
        for (unsigned i = 0; i < n; i++) {
            CXDiagnostic d = clang_getDiagnostic(tu, i);
            if (clang_getDiagnosticSeverity(d) >= CXDiagnostic_Warning) {
                CXString s = clang_formatDiagnostic(d, clang_defaultDiagnosticDisplayOptions());
                printf("%s: %s\n", ct_basename(models[k]), clang_getCString(s));
                clang_disposeString(s);
                bad++;
            }
            clang_disposeDiagnostic(d);
        }
        clang_disposeTranslationUnit(tu);
        clang_disposeIndex(idx);
        fflush(stdout);
        char keep[700];
        snprintf(keep, sizeof keep, "%s", e.c_path);
        emitted_free(&e);
        cr_expect_eq(bad, 0, "%s: %u libclang diagnostics of severity >= warning in the generated %s (printed above)",
                     models[k], bad, keep);
    }
}
#endif

/* ---- (b) cc -Werror ---- */

/* `cc -Werror` on e's source; 0 when it compiles. */
static int cc_werror(const Emitted *e, char **out) {
    char obj[700];
    snprintf(obj, sizeof obj, "%s/model.o", e->dir);
    char *argv[] = {"cc",
                    "-std=c11",
                    "-Wall",
                    "-Wextra",
                    "-Wpedantic", /* ISO C: no empty braces or arrays (a user may build with -pedantic-errors) */
                    "-Werror",
                    "-fopenmp",
                    "-D_POSIX_C_SOURCE=200809L",
                    "-I" MLC_RUNTIME_INC,
                    "-I" OPENBLAS_INC,
                    "-c",
                    (char *)e->c_path,
                    "-o",
                    obj,
                    NULL};
    return ct_run(argv, out);
}

Test(codegen_c, cc_werror_clean, .timeout = 300) {
    for (int k = 0; k < NMODELS; k++) {
        Emitted e;
        emit_model(models[k], &e);
        char *out = NULL;
        int st = cc_werror(&e, &out);
        emitted_free(&e);
        cr_expect_eq(st, 0, "%s: cc -Werror failed (exit %d):\n%s", models[k], st, out);
        free(out);
    }
}

/* ---- (c) generated code vs the interpreter ---- */

/* The drivers' inputs, one buffer each for a batch of n: an f32 input a smooth signal, an
 * i32 input labels (i32[B]: below output 0's per-sample count) or tokens (i32[B, T]:
 * below the size of output 0's last axis); bind_sources gives the interpreter the same. */
#define DRIVER_INPUTS                                                                                               \
    "    void *in[8] = {0};\n"                                                                                      \
    "    for (int i = 0; i < api->n_inputs && i < 8; i++) {\n"                                                      \
    "        const mlc_io_desc *d = &api->inputs[i];\n"                                                             \
    "        long long k = d->numel * n;\n"                                                                         \
    "        long long range = d->rank ? api->outputs[0].dims[api->outputs[0].rank - 1] : api->outputs[0].numel;\n" \
    "        if (d->dtype == MLC_I32) {\n"                                                                          \
    "            int *v = malloc(sizeof(int) * (size_t)k);\n"                                                       \
    "            for (long long j = 0; j < k; j++) v[j] = (int)((j * 7 + 3) % range);\n"                            \
    "            in[i] = v;\n"                                                                                      \
    "        } else {\n"                                                                                            \
    "            float *v = malloc(sizeof(float) * (size_t)k);\n"                                                   \
    "            for (long long j = 0; j < k; j++) v[j] = (float)sin(0.37 * (double)j + 0.1);\n"                    \
    "            in[i] = v;\n"                                                                                      \
    "        }\n"                                                                                                   \
    "    }\n"                                                                                                       \
    "    const void *const *x = (const void *const *)in;\n"
#define DRIVER_FREE_INPUTS "    for (int i = 0; i < 8; i++) free(in[i]);\n"

/* The driver: generic over the model through its mlc_model_api. Inputs are a fixed
 * formula both sides compute; everything is printed with %.9g (exact for floats). */
static const char driver_src[] =
    "#include <math.h>\n"
    "#include <stdio.h>\n"
    "#include <stdlib.h>\n"
    "#include \"mlc_model.h\"\n"
    "extern const mlc_model_api MLC_MODEL_API;\n"
    "static void dump(const mlc_model_api *api, void *m, const char *tag) {\n"
    "    for (int i = 0; i < api->n_tensors; i++) {\n"
    "        const mlc_tensor_desc *t = &api->tensors[i];\n"
    "        float *v = malloc(sizeof(float) * (size_t)t->numel);\n"
    "        api->read_tensor(m, i, v);\n"
    "        printf(\"%s %s %lld\", tag, t->name, (long long)t->numel);\n"
    "        for (long long j = 0; j < t->numel; j++) printf(\" %.9g\", v[j]);\n"
    "        printf(\"\\n\");\n"
    "        free(v);\n"
    "    }\n"
    "}\n"
    "static void vec(const char *tag, const float *v, long long n) {\n"
    "    printf(\"%s %lld\", tag, n);\n"
    "    for (long long j = 0; j < n; j++) printf(\" %.9g\", v[j]);\n"
    "    printf(\"\\n\");\n"
    "}\n"
    /* an i32 output (argmax) holds int32_t in its float-sized slots */
    "static void out0(const mlc_model_api *api, const char *tag, const float *v, long long n) {\n"
    "    if (api->outputs[0].dtype != MLC_I32) { vec(tag, v, n); return; }\n"
    "    const int *iv = (const int *)(const void *)v;\n"
    "    printf(\"%s %lld\", tag, n);\n"
    "    for (long long j = 0; j < n; j++) printf(\" %d\", iv[j]);\n"
    "    printf(\"\\n\");\n"
    "}\n"
    "int main(int argc, char **argv) {\n"
    "    const mlc_model_api *api = &MLC_MODEL_API;\n"
    "    int n = atoi(argv[1]);\n"
    "    float lr = (float)atof(argv[2]);\n"
    "    api->set_threads(2);\n"
    "    void *m = api->create(5, n);\n"
    "    if (!m) return 3;\n"
    "    long long no = api->outputs[0].numel * n;\n"
    "    float *out = malloc(sizeof(float) * (size_t)no);\n" DRIVER_INPUTS
    "    dump(api, m, \"T0\");\n"
    "    api->forward(m, x, n, (float *[MLC_MAX_OUTPUTS]){out});\n"
    "    out0(api, \"FWD\", out, no);\n"
    "    printf(\"EVAL %.9g\\n\", api->eval_loss(m, x, n));\n"
    "    float loss = api->train_step(m, x, n, lr, (float *[MLC_MAX_OUTPUTS]){out});\n"
    "    printf(\"LOSS %.9g\\n\", loss);\n"
    "    out0(api, \"TOUT\", out, no);\n"
    "    dump(api, m, \"T1\");\n"
    "    api->destroy(m);\n" DRIVER_FREE_INPUTS
    "    free(out);\n"
    "    return 0;\n"
    "}\n";

/* Finds the line starting with `tag` (and " name " when name != NULL) and parses its
 * numbers into a malloc'd array; *n gets the count. */
static double *parse_line(const char *out, const char *tag, const char *name, int64_t *n) {
    char key[512];
    snprintf(key, sizeof key, "%s %s%s", tag, name ? name : "", name ? " " : "");
    const char *p = out;
    for (;;) {
        if (!strncmp(p, key, strlen(key))) break;
        p = strchr(p, '\n');
        if (!p) return NULL;
        p++;
    }
    p += strlen(key);
    char *end;
    long long cnt = strtoll(p, &end, 10);
    double *v = malloc(sizeof(double) * (size_t)(cnt ? cnt : 1));
    p = end;
    for (long long i = 0; i < cnt; i++) {
        v[i] = strtod(p, &end);
        p = end;
    }
    *n = cnt;
    return v;
}

/* Relative error with the tensor's mean magnitude as the floor (see the header). */
static double rel_scaled(double c, double r, double scale) { return fabs(c - r) / fmax(fmax(fabs(r), scale), 1e-12); }

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Max error of c vs r over n values; prints the worst element. Under emit_bf16 (header,
 * (g)): the median error, or the max where that is above BF16_MAX_ERR. */
static double compare(const char *what, const double *c, const double *r, int64_t n) {
    double worst = 0, scale = 0;
    for (int64_t i = 0; i < n; i++) scale += fabs(r[i]) / (double)n;
#define rel(c, r) rel_scaled(c, r, scale)
    int64_t wi = 0;
    double *errs = emit_bf16 ? malloc(sizeof(double) * (size_t)(n + 1)) : NULL;
    for (int64_t i = 0; i < n; i++) {
        const double e = isnan(c[i]) ? INFINITY : rel(c[i], r[i]);
        if (e > worst) worst = e, wi = i;
        if (errs) errs[i] = e;
    }
    double median = 0;
    if (errs) {
        qsort(errs, (size_t)n, sizeof *errs, cmp_double);
        median = n ? errs[n / 2] : 0;
        free(errs);
    }
    printf("  %-28s %6lld values, max rel err %.3e", what, (long long)n, worst);
    if (emit_bf16) printf(", median %.3e", median);
    if (n) printf(" (at %lld: generated %.9g, interpreter %.9g)", (long long)wi, c[wi], r[wi]);
    printf("\n");
    if (emit_bf16) return worst > BF16_MAX_ERR ? worst : median;
    return worst;
#undef rel
}

/* Sets the interpreter's sources from the driver's output: params by name, the data
 * input from the formula, the labels likewise. */
static void bind_sources(Interp *it, const ModelIR *m, const char *out, int n) {
    const Graph *g = it->g;
    for (int id = 0; id < g->n; id++) {
        const Node *nd = &g->nodes[id];
        int64_t cnt = shape_numel(&nd->shape);
        if (nd->op == OP_param || nd->op == OP_state) {
            int64_t k;
            double *v = parse_line(out, "T0", nd->name, &k);
            cr_assert_not_null(v, "driver printed no tensor %s", nd->name);
            cr_assert_eq(k, cnt, "%s: %lld values, the graph has %lld", nd->name, (long long)k, (long long)cnt);
            memcpy(it->vals[id], v, sizeof(double) * (size_t)cnt);
            free(v);
        } else if (nd->op == OP_input && nd->dtype == DT_F32) {
            cr_assert_eq(cnt, (int64_t)n * (cnt / n));
            for (int64_t i = 0; i < cnt; i++) it->vals[id][i] = (float)sin(0.37 * (double)i + 0.1);
        } else if (nd->op == OP_input) { /* labels i32[B] index output 0's sample, tokens i32[B, T] its last axis */
            const Shape *os = &m->outputs[0].shape;
            int64_t range = nd->shape.rank > 1 ? os->d[os->rank - 1] : m->outputs[0].sample_numel;
            for (int64_t i = 0; i < cnt; i++) it->vals[id][i] = (double)((i * 7 + 3) % range);
        }
    }
}

/* Builds `src` as a driver linked with the emitted model and runs it with the batch size
 * and learning rate as arguments; returns its output (malloc'd). cflag: an extra compiler
 * flag for the generated code and driver ("-march=native": the model's own loops built for
 * this machine; the kernel library is always built so, runtime/meson.build), or NULL. */
static char *run_driver_at(const Emitted *e, const char *mdl, const char *src, const char *cflag, int n) {
    const ModelIR *m = e->m;
    char drv[700], exe[700], def[300];
    snprintf(drv, sizeof drv, "%s/driver.c", e->dir);
    snprintf(exe, sizeof exe, "%s/driver", e->dir);
    snprintf(def, sizeof def, "-DMLC_MODEL_API=%s_api", m->spec.name);
    cr_assert_eq(ct_write_file(drv, src), 0);
    /* MLC_TEST_SANITIZE: "-fsanitize=..." in sanitizer builds (libmlcrt.a is instrumented) */
    char san[] = MLC_TEST_SANITIZE, noop[] = "-DMLC_TEST_NO_SANITIZE";
    char flag[64];
    snprintf(flag, sizeof flag, "%s", cflag ? cflag : "-DMLC_TEST_NO_FLAG");
    char *cc_argv[] = {"cc",
                       "-std=c11",
                       "-O2",
                       "-fopenmp",
                       "-D_POSIX_C_SOURCE=200809L",
                       "-I" MLC_RUNTIME_INC,
                       "-I" OPENBLAS_INC,
                       def,
                       san[0] ? san : noop,
                       flag,
                       (char *)e->c_path,
                       drv,
                       "-o",
                       exe,
                       "-L" MLC_RUNTIME_LIB_DIR,
                       "-lmlckernels",
                       "-lmlcrt",
                       "-lopenblas",
                       "-lz",
                       "-lm",
                       NULL};
    char *log = NULL;
    int st = ct_run(cc_argv, &log);
    cr_assert_eq(st, 0, "%s: building the driver failed:\n%s", mdl, log);
    free(log);
    char nbuf[32], lrbuf[32];
    snprintf(nbuf, sizeof nbuf, "%d", n);
    snprintf(lrbuf, sizeof lrbuf, "%.9g", m->spec.opt.lr);
    char *run_argv[] = {exe, nbuf, lrbuf, NULL};
    char *out = NULL;
    st = ct_run(run_argv, &out);
    cr_assert_eq(st, 0, "%s: the driver failed (status %d):\n%.2000s", mdl, st, out);
    return out;
}

/* The driver run at the batch the model was compiled for. */
static char *run_driver(const Emitted *e, const char *mdl, const char *src, const char *cflag) {
    return run_driver_at(e, mdl, src, cflag, e->m->spec.batch);
}

/* run_batch > 0: the code compiled for the .mdl's batch runs a smaller batch of
 * run_batch, against the interpreter on the model compiled for run_batch (sizes that
 * follow the run-time B, such as B*8, must not be the compile-time ones). */
static void numeric_check_at(const char *mdl, const char *cflag, int run_batch) {
    Emitted e;
    emit_model(mdl, &e);
    const ModelIR *m = e.m;
    Arena ref_arena = {0};
    if (run_batch > 0) {
        CtCompile r = ct_compile_opts(&ref_arena, e.src, (DumpOptions){0}, run_batch, 0);
        cr_assert_not_null(r.m, "%s does not compile at batch %d:\n%s", mdl, run_batch, r.diag);
        ct_compile_free(&r);
        m = r.m;
    }
    int n = m->spec.batch;
    char *out = run_driver_at(&e, mdl, driver_src, cflag, n);

    printf("%s (batch %d, optimizer %s%s%s):\n", ct_basename(mdl), n, m->spec.opt.kind, cflag ? ", " : "",
           cflag ? cflag : "");
    double worst = 0;
    int64_t k;

    /* forward, evaluation mode */
    Interp *ev = interp_new(m->eval);
    bind_sources(ev, m, out, n);
    interp_run(ev);
    double *fwd = parse_line(out, "FWD", NULL, &k);
    cr_assert_not_null(fwd);
    cr_assert_eq(k, shape_numel(&m->eval->nodes[m->eval->outputs[0]].shape));
    worst = fmax(worst, compare("forward output", fwd, ev->vals[m->eval->outputs[0]], k));
    free(fwd);
    interp_free(ev);

    /* the loss in evaluation mode */
    Interp *el = interp_new(m->eval_loss);
    bind_sources(el, m, out, n);
    interp_run(el);
    const char *elp = strstr(out, "EVAL ");
    cr_assert_not_null(elp);
    double eloss = strtod(elp + 5, NULL);
    worst = fmax(worst, compare("eval_loss", &eloss, el->vals[m->eval_loss->loss], 1));
    interp_free(el);

    /* one train step: loss and training-mode output before the update */
    Interp *tr = interp_new(m->train);
    bind_sources(tr, m, out, n);
    interp_run(tr);
    const char *lp = strstr(out, "LOSS ");
    cr_assert_not_null(lp);
    double l = strtod(lp + 5, NULL);
    worst = fmax(worst, compare("train_step loss", &l, tr->vals[m->train->loss], 1));
    if (m->train->nout) {
        double *tout = parse_line(out, "TOUT", NULL, &k);
        cr_assert_not_null(tout);
        cr_assert_eq(k, shape_numel(&m->train->nodes[m->train->outputs[0]].shape));
        worst = fmax(worst, compare("train_step output", tout, tr->vals[m->train->outputs[0]], k));
        free(tout);
    }

    /* plain SGD: every parameter moved to p - lr * grad (a model without parameters, no
     * gradient slab, has no update nodes: noparams.mdl) */
    const int has_params = m->grad_floats > 0;
    const OptimizerSpec *o = &m->spec.opt;
    if (!strcmp(o->kind, "sgd") && o->momentum == 0 && o->weight_decay == 0) {
        const Graph *g = m->train;
        int nchecked = 0;
        for (int id = 0; id < g->n; id++) {
            const Node *nd = &g->nodes[id];
            if (nd->op != OP_sgd_plain_update) continue;
            const Node *p = &g->nodes[nd->in[0]];
            int64_t cnt = shape_numel(&p->shape);
            double *after = parse_line(out, "T1", p->name, &k);
            cr_assert_not_null(after);
            cr_assert_eq(k, cnt);
            double *want = malloc(sizeof(double) * (size_t)cnt);
            for (int64_t i = 0; i < cnt; i++) want[i] = tr->vals[nd->in[0]][i] - o->lr * tr->vals[nd->in[1]][i];
            char what[128];
            snprintf(what, sizeof what, "updated %s", p->name);
            worst = fmax(worst, compare(what, after, want, cnt));
            free(after);
            free(want);
            nchecked++;
        }
        if (has_params) cr_expect_gt(nchecked, 0, "no sgd_plain_update nodes in the train graph");
    }
    /* Adam's first step (m = v = 0, t = 1) moves p by lr * g / (|g| + eps); with L2
     * decay g includes wd * p, with decoupled decay (AdamW) p first shrinks by lr * wd. */
    if (strcmp(o->kind, "sgd") != 0) {
        const Graph *g = m->train;
        int nchecked = 0;
        for (int id = 0; id < g->n; id++) {
            const Node *nd = &g->nodes[id];
            if (nd->op != OP_adam_update) continue;
            const Node *p = &g->nodes[nd->in[0]];
            int64_t cnt = shape_numel(&p->shape);
            double *after = parse_line(out, "T1", p->name, &k);
            cr_assert_not_null(after);
            double *want = malloc(sizeof(double) * (size_t)cnt);
            double wd = attr_f(nd, A_WEIGHT_DECAY), eps = attr_f(nd, A_EPS);
            int64_t skipped = 0;
            for (int64_t i = 0; i < cnt; i++) {
                double pv = tr->vals[nd->in[0]][i], gv = tr->vals[nd->in[1]][i];
                double ge = attr_i(nd, A_DECOUPLED) ? gv : gv + wd * pv;
                if (attr_i(nd, A_DECOUPLED)) want[i] = pv * (1 - o->lr * wd) - o->lr * gv / (fabs(gv) + eps);
                else want[i] = pv - o->lr * ge / (fabs(ge) + eps);
                /* g / (|g| + eps) is ill-conditioned where |g| is near eps: float rounding of
                 * a 1e-9 gradient moves it a lot. Such elements are not compared. */
                if (fabs(ge) < 1e4 * eps) want[i] = after[i], skipped++;
            }
            char what[128];
            snprintf(what, sizeof what, "adam%s step of %s (%lld tiny-gradient elements skipped)",
                     attr_i(nd, A_DECOUPLED) ? "w" : "", p->name, (long long)skipped);
            worst = fmax(worst, compare(what, after, want, cnt));
            free(after);
            free(want);
            nchecked++;
        }
        if (has_params) cr_expect_gt(nchecked, 0, "no adam_update nodes in the train graph");
    }
    interp_free(tr);
    fflush(stdout);
    free(out);
    emitted_free(&e);
    arena_free(&ref_arena);
    cr_assert_leq(worst, TOL, "%s: generated code differs from the interpreter by %.3e (> %g)", mdl, worst, TOL);
}

static void numeric_check_flag(const char *mdl, const char *cflag) { numeric_check_at(mdl, cflag, 0); }

/* Inference with every parameter and running statistic set to values far from their
 * initial ones (the train step's check above sees running means 0 and variances 1):
 * the driver writes them through write_tensor, prints them back, runs forward(). */
static void numeric_check(const char *mdl) { numeric_check_flag(mdl, NULL); }

static const char eval_driver_src[] =
    "#include <math.h>\n"
    "#include <stdio.h>\n"
    "#include <stdlib.h>\n"
    "#include <string.h>\n"
    "#include \"mlc_model.h\"\n"
    "extern const mlc_model_api MLC_MODEL_API;\n"
    "int main(int argc, char **argv) {\n"
    "    const mlc_model_api *api = &MLC_MODEL_API;\n"
    "    int n = atoi(argv[1]);\n"
    "    (void)argc;\n"
    "    api->set_threads(2);\n"
    "    void *m = api->create(5, n);\n"
    "    if (!m) return 3;\n"
    "    for (int i = 0; i < api->n_tensors; i++) {\n"
    "        const mlc_tensor_desc *t = &api->tensors[i];\n"
    "        size_t len = strlen(t->name);\n"
    "        int var = len >= 11 && !strcmp(t->name + len - 11, \"running_var\");\n"
    "        float *v = malloc(sizeof(float) * (size_t)t->numel);\n"
    "        for (long long j = 0; j < t->numel; j++) {\n"
    "            double u = 0.5 + 0.5 * sin(1.7 * (double)j + 0.9 * (double)i + 0.3);\n"
    "            v[j] = (float)(var ? 0.1 + 1.9 * u : 2.0 * u - 1.0);\n"
    "        }\n"
    "        api->write_tensor(m, i, v);\n"
    "        api->read_tensor(m, i, v);\n"
    "        printf(\"T0 %s %lld\", t->name, (long long)t->numel);\n"
    "        for (long long j = 0; j < t->numel; j++) printf(\" %.9g\", v[j]);\n"
    "        printf(\"\\n\");\n"
    "        free(v);\n"
    "    }\n"
    "    long long ni = api->inputs[0].numel * n, no = api->outputs[0].numel * n;\n"
    "    float *x = malloc(sizeof(float) * (size_t)ni), *out = malloc(sizeof(float) * (size_t)no);\n"
    "    for (long long i = 0; i < ni; i++) x[i] = (float)sin(0.37 * (double)i + 0.1);\n"
    "    api->forward(m, (const void *[]){x, NULL}, n, (float *[MLC_MAX_OUTPUTS]){out});\n"
    "    printf(\"FWD %lld\", no);\n"
    "    for (long long j = 0; j < no; j++) printf(\" %.9g\", out[j]);\n"
    "    printf(\"\\n\");\n"
    "    api->destroy(m);\n"
    "    free(x); free(out);\n"
    "    return 0;\n"
    "}\n";

/* The public calls of a model (NAME_create ... NAME_evaluate) as a library user makes
 * them: NAME_evaluate over more samples than max_batch goes in batches the buffers hold
 * (it once took the .mdl's batch of 64 on a model created for 4), and a batch outside
 * 1..max_batch is refused with a line and NaN, not written past the buffers. */
static const char public_api_driver_src[] =
    "#include <math.h>\n"
    "#include <stdio.h>\n"
    "#include <stdlib.h>\n"
    "#include \"mlc_model.h\"\n"
    "typedef struct mlp_model mlp_model;\n"
    "mlp_model *mlp_create(uint64_t seed, int max_batch);\n"
    "void mlp_destroy(mlp_model *m);\n"
    "float mlp_train_step(mlp_model *m, const void *const *inputs, int n, float lr, float *const *outputs);\n"
    "void mlp_forward(mlp_model *m, const void *const *inputs, int n, float *const *outputs);\n"
    "float mlp_eval_loss(mlp_model *m, const void *const *inputs, int n);\n"
    "double mlp_evaluate(mlp_model *m, const void *const *inputs, int count);\n"
    "int main(void) {\n"
    "    enum { N = 200 };\n"
    "    static float img[N * 784], out[N * 10];\n"
    "    static int lab[N];\n"
    "    for (int i = 0; i < N * 784; i++) img[i] = (float)(0.5 + 0.5 * sin(0.37 * i));\n"
    "    for (int i = 0; i < N; i++) lab[i] = (i * 7) % 10;\n"
    "    const void *in[2] = {img, lab};\n"
    "    mlp_model *small = mlp_create(3, 4), *big = mlp_create(3, N);\n"
    "    printf(\"EVAL %.9g %.9g\\n\", mlp_evaluate(small, in, N), mlp_evaluate(big, in, N));\n"
    "    out[40] = 7.0f;\n"
    "    mlp_forward(small, in, 5, (float *[MLC_MAX_OUTPUTS]){out});\n"
    "    printf(\"UNTOUCHED %g\\n\", out[40]);\n"
    "    printf(\"STEP %g %g\\n\", mlp_train_step(small, in, 0, 0.1f, NULL), mlp_eval_loss(small, in, -1));\n"
    "    fflush(stdout);\n"
    "    mlp_destroy(small);\n"
    "    mlp_destroy(big);\n"
    "    return 0;\n"
    "}\n";

Test(codegen_c, public_calls_keep_to_max_batch, .timeout = 300) {
    const char *mdl = MLC_SOURCE_ROOT "/samples/mlp.mdl";
    Emitted e;
    emit_model(mdl, &e);
    char *out = run_driver(&e, mdl, public_api_driver_src, NULL);
    double a = -1, b = -2;
    const char *ev = strstr(out, "EVAL ");
    cr_assert(ev && sscanf(ev, "EVAL %lf %lf", &a, &b) == 2, "%s", out);
    cr_expect_eq(a, b, "evaluate in batches of 4 gave %.9g, in one batch %.9g", a, b);
    cr_expect(strstr(out,
                     "error: mlp_forward: a batch of 5 samples, expected 1 to 4 (the max_batch the model was "
                     "created with)\n"),
              "%s", out);
    cr_expect(strstr(out, "UNTOUCHED 7\n"), "%s", out);
    cr_expect(strstr(out, "error: mlp_train_step: a batch of 0 samples, expected 1 to 4"), "%s", out);
    cr_expect(strstr(out, "error: mlp_eval_loss: a batch of -1 samples, expected 1 to 4"), "%s", out);
    cr_expect(strstr(out, "STEP nan nan\n") || strstr(out, "STEP -nan -nan\n"), "%s", out);
    free(out);
    emitted_free(&e);
}

/* A program that sets OpenBLAS's threads after create (its own GEMMs) gets the model's
 * results of one thread, and its count back after each call: the model's GEMMs ran
 * multi-threaded there, and summed some products in another order (mlp's loss moved). */
static const char blas_driver_src[] =
    "#include <math.h>\n"
    "#include <stdio.h>\n"
    "#include <stdlib.h>\n"
    "#include \"mlc_model.h\"\n"
    "void openblas_set_num_threads(int n);\n"
    "int openblas_get_num_threads(void);\n"
    "typedef struct mlp_model mlp_model;\n"
    "mlp_model *mlp_create(uint64_t seed, int max_batch);\n"
    "void mlp_destroy(mlp_model *m);\n"
    "float mlp_train_step(mlp_model *m, const void *const *inputs, int n, float lr, float *const *outputs);\n"
    "void mlp_forward(mlp_model *m, const void *const *inputs, int n, float *const *outputs);\n"
    "float mlp_eval_loss(mlp_model *m, const void *const *inputs, int n);\n"
    "static float img[48 * 784], out[48 * 10];\n"
    "static int lab[48];\n"
    "static void run(int blas) {\n"
    "    mlp_model *m = mlp_create(5, 48);\n"
    "    if (blas) openblas_set_num_threads(blas);\n"
    "    float loss = 0;\n"
    "    for (int s = 0; s < 3; s++) loss = mlp_train_step(m, (const void *[]){img, lab}, 48, 0.01f, NULL);\n"
    "    mlp_forward(m, (const void *[]){img, NULL}, 48, (float *[]){out});\n"
    "    float ev = mlp_eval_loss(m, (const void *[]){img, lab}, 48);\n"
    "    double sum = 0;\n"
    "    for (int i = 0; i < 48 * 10; i++) sum += out[i];\n"
    "    printf(\"RUN %.9g %.9g %.17g THREADS %d\\n\", loss, ev, sum, openblas_get_num_threads());\n"
    "    mlp_destroy(m);\n"
    "}\n"
    "int main(void) {\n"
    "    for (int i = 0; i < 48 * 784; i++) img[i] = (float)(0.5 + 0.5 * sin(0.37 * i));\n"
    "    for (int i = 0; i < 48; i++) lab[i] = i % 10;\n"
    "    run(0);\n"
    "    run(3);\n"
    "    return 0;\n"
    "}\n";

Test(codegen_c, openblas_threads_set_by_the_program, .timeout = 300) {
    const char *mdl = MLC_SOURCE_ROOT "/samples/mlp.mdl";
    Emitted e;
    emit_model(mdl, &e);
    char *out = run_driver(&e, mdl, blas_driver_src, NULL);
    char one[200] = "", three[200] = "";
    const char *a = strstr(out, "RUN "), *b = a ? strstr(a + 1, "RUN ") : NULL;
    cr_assert(a && b, "%s", out);
    snprintf(one, sizeof one, "%.*s", (int)strcspn(a, "T"), a);
    snprintf(three, sizeof three, "%.*s", (int)strcspn(b, "T"), b);
    cr_expect_str_eq(three, one, "with 3 OpenBLAS threads set by the program:\n%s", out);
    cr_expect(strstr(a, "THREADS 1\n") == strstr(a, "THREADS"), "%s", out);
    cr_expect(strstr(b, "THREADS 3\n"), "the program's count was not given back:\n%s", out);
    free(out);
    emitted_free(&e);
}

/* Every text of want is in out. */
static void expect_lines(const char *out, const char *const *want, size_t n) {
    for (size_t i = 0; i < n; i++) cr_expect(strstr(out, want[i]), "%s\n---\n%s", want[i], out);
}

/* out has a line "TAG nan" (or -nan). */
static void expect_nan(const char *out, char tag) {
    char line[16];
    snprintf(line, sizeof line, "\n%c ", tag);
    const char *at = strstr(out, line);
    cr_expect(at && (strncmp(at + 3, "nan", 3) == 0 || strncmp(at + 3, "-nan", 4) == 0), "%c: %s", tag, out);
}

/* Labels outside 0..classes-1 are refused by every public call that reads them (one_hot
 * of such a label matches no class: the loss was plain logsumexp, and train_step updated
 * with it), and so is a NULL label (it crashed), save and load a NULL path; create says
 * why it returns NULL; evaluate of no samples is NaN, not 0; a NaN or infinite lr is refused
 * by train_step and update (it made every parameter NaN). */
static const char labels_driver_src[] =
    "#include <math.h>\n"
    "#include <stdio.h>\n"
    "#include <string.h>\n"
    "#include \"mlc_model.h\"\n"
    "typedef struct mlp_model mlp_model;\n"
    "mlp_model *mlp_create(uint64_t seed, int max_batch);\n"
    "void mlp_destroy(mlp_model *m);\n"
    "float mlp_train_step(mlp_model *m, const void *const *inputs, int n, float lr, float *const *outputs);\n"
    "float mlp_forward_backward(mlp_model *m, const void *const *inputs, int n, float *const *outputs);\n"
    "void mlp_update(mlp_model *m, float lr);\n"
    "float mlp_eval_loss(mlp_model *m, const void *const *inputs, int n);\n"
    "double mlp_evaluate(mlp_model *m, const void *const *inputs, int count);\n"
    "int mlp_save(mlp_model *m, const char *path);\n"
    "int mlp_load(mlp_model *m, const char *path);\n"
    "extern const mlc_model_api mlp_api;\n"
    "int main(void) {\n"
    "    static float img[2 * 784], w0[784 * 256], w1[784 * 256];\n"
    "    for (int i = 0; i < 2 * 784; i++) img[i] = (float)(0.5 + 0.5 * sin(0.37 * i));\n"
    "    int l10[2] = {3, 10}, lneg[2] = {-1, 0}, ok[2] = {1, 2};\n"
    "    mlp_model *m = mlp_create(1, 2);\n"
    "    mlp_api.read_tensor(m, 0, w0);\n"
    "    printf(\"A %g\\n\", mlp_eval_loss(m, (const void *[]){img, l10}, 2));\n"
    "    printf(\"B %g\\n\", mlp_train_step(m, (const void *[]){img, lneg}, 2, 0.1f, NULL));\n"
    "    printf(\"C %g\\n\", mlp_forward_backward(m, (const void *[]){img, l10}, 2, NULL));\n"
    "    printf(\"D %g\\n\", mlp_evaluate(m, (const void *[]){img, l10}, 2));\n"
    "    mlp_api.read_tensor(m, 0, w1);\n"
    "    printf(\"UNCHANGED %d\\n\", memcmp(w0, w1, sizeof w0) == 0);\n"
    "    printf(\"OK %d\\n\", isfinite(mlp_eval_loss(m, (const void *[]){img, ok}, 2)));\n"
    "    printf(\"E %g %g\\n\", mlp_evaluate(m, (const void *[]){img, ok}, 0),\n"
    "           mlp_evaluate(m, (const void *[]){img, ok}, -3));\n"
    "    const void *nolabel[2] = {img, NULL};\n"
    "    printf(\"F %g %g %g %g\\n\", mlp_eval_loss(m, nolabel, 2), mlp_train_step(m, nolabel, 2, 0.1f, NULL),\n"
    "           mlp_forward_backward(m, nolabel, 2, NULL), mlp_evaluate(m, nolabel, 2));\n"
    "    printf(\"G %d %d\\n\", mlp_save(m, NULL), mlp_load(m, NULL));\n"
    "    mlp_api.read_tensor(m, 0, w0);\n"
    "    printf(\"H %g\\n\", mlp_train_step(m, (const void *[]){img, ok}, 2, NAN, NULL));\n"
    "    mlp_update(m, INFINITY);\n"
    "    mlp_api.read_tensor(m, 0, w1);\n"
    "    printf(\"LR UNCHANGED %d\\n\", memcmp(w0, w1, sizeof w0) == 0);\n"
    "    fflush(stdout);\n"
    "    printf(\"NULL %d %d\\n\", mlp_create(1, 0) == NULL, mlp_create(1, -1) == NULL);\n"
    "    mlp_destroy(m);\n"
    "    return 0;\n"
    "}\n";

Test(codegen_c, public_calls_refuse_labels_outside_the_classes, .timeout = 300) {
    const char *mdl = MLC_SOURCE_ROOT "/samples/mlp.mdl";
    Emitted e;
    emit_model(mdl, &e);
    char *out = run_driver(&e, mdl, labels_driver_src, NULL);
    static const char *const want[] = {
        "error: mlp_eval_loss: input 'label': sample 1 has label 10, expected 0..9\n",
        "error: mlp_train_step: input 'label': sample 0 has label -1, expected 0..9\n",
        "error: mlp_forward_backward: input 'label': sample 1 has label 10, expected 0..9\n",
        "error: mlp_evaluate: input 'label': sample 1 has label 10, expected 0..9\n",
        "UNCHANGED 1\n",
        "OK 1\n",
        "error: mlp_evaluate: a count of 0 samples, expected at least 1\n",
        "error: mlp_evaluate: a count of -3 samples, expected at least 1\n",
        "error: mlp_eval_loss: input 'label' is NULL, and this call reads it\n",
        "error: mlp_train_step: input 'label' is NULL, and this call reads it\n",
        "error: mlp_forward_backward: input 'label' is NULL, and this call reads it\n",
        "error: mlp_evaluate: input 'label' is NULL, and this call reads it\n",
        "error: mlp_save: the path is NULL\n",
        "error: mlp_load: the path is NULL\n",
        "G -1 -1\n",
        "error: mlp_train_step: lr nan, expected a finite number\n",
        "error: mlp_update: lr inf, expected a finite number\n",
        "LR UNCHANGED 1\n",
        "error: mlp_create: max_batch 0, expected at least 1\n",
        "error: mlp_create: max_batch -1, expected at least 1\n",
        "NULL 1 1\n",
    };
    expect_lines(out, want, sizeof want / sizeof want[0]);
    for (const char *k = "ABCDH"; *k; k++) expect_nan(out, *k);
    cr_expect(strstr(out, "\nE nan nan\n") || strstr(out, "\nE -nan -nan\n"), "%s", out);
    const char *f = strstr(out, "\nF ");
    cr_expect(f && strspn(f + 3, "-nan ") >= 15, "%s", out); /* four NaNs, whatever their signs */
    free(out);
    emitted_free(&e);
}

/* NAME_evaluate from the caller's arrays for any model, in batches (of 2 here, 5 samples:
 * 2 + 2 + 1): every input advanced by its own per-sample size. It once advanced the
 * labels by one value a sample (a token model's later batches read the wrong targets)
 * and returned -1, silently, for inputs other than one image and one label. The
 * reference: each sample on its own through the public calls. LIB (a -D flag) is the
 * model's name. */
static const char evaluate_driver_src[] =
    "#include <math.h>\n"
    "#include <stdio.h>\n"
    "#include <stdlib.h>\n"
    "#include \"mlc_model.h\"\n"
    "#define CAT2(a, b) a##b\n"
    "#define CAT(a, b) CAT2(a, b)\n"
    "#define FN(x) CAT(LIB, x)\n"
    "typedef struct FN(_model) model_t;\n"
    "model_t *FN(_create)(uint64_t seed, int max_batch);\n"
    "void FN(_forward)(model_t *m, const void *const *inputs, int n, float *const *outputs);\n"
    "float FN(_eval_loss)(model_t *m, const void *const *inputs, int n);\n"
    "double FN(_evaluate)(model_t *m, const void *const *inputs, int count);\n"
    "void FN(_destroy)(model_t *m);\n"
    "extern const mlc_model_api FN(_api);\n"
    "int main(void) {\n"
    "    const mlc_model_api *api = &FN(_api);\n"
    "    enum { n = 5 };\n" DRIVER_INPUTS
    "    model_t *m = FN(_create)(3, 2);\n"
    "    static float out[64];\n"
    "    double ref = 0;\n"
    "    for (int s = 0; s < n; s++) {\n"
    "        const void *one[8] = {0};\n"
    "        for (int i = 0; i < api->n_inputs; i++) one[i] = (const float *)in[i] + s * api->inputs[i].numel;\n"
    "        if (!api->classifier) {\n"
    "            ref += FN(_eval_loss)(m, one, 1);\n"
    "            continue;\n"
    "        }\n"
    "        float *outs[8] = {0};\n"
    "        outs[api->cls_output] = out;\n"
    "        FN(_forward)(m, one, 1, outs);\n"
    "        int best = 0;\n"
    "        for (int j = 1; j < api->outputs[api->cls_output].numel; j++) best = out[j] > out[best] ? j : best;\n"
    "        ref += best == *(const int *)one[api->cls_label];\n"
    "    }\n"
    "    printf(\"EVAL %.9g %.9g %d\\n\", FN(_evaluate)(m, x, n), ref / n, api->classifier);\n"
    "    fflush(stdout);\n"
    "    FN(_destroy)(m);\n" DRIVER_FREE_INPUTS
    "    return 0;\n"
    "}\n";

static void evaluate_check(SrcFile *src, const char *mdl, int classifier) {
    Emitted e;
    emit_src_debug(src, mdl, &e, 0);
    char flag[64];
    snprintf(flag, sizeof flag, "-DLIB=%s", e.m->spec.name);
    char *out = run_driver(&e, mdl, evaluate_driver_src, flag);
    double got = 0, want = -1;
    int cls = -1;
    const char *at = strstr(out, "EVAL ");
    cr_assert(at && sscanf(at, "EVAL %lf %lf %d", &got, &want, &cls) == 3, "%s: %s", mdl, out);
    cr_expect_eq(cls, classifier, "%s", mdl);
    cr_expect(fabs(got - want) <= 1e-6 * fabs(want), "%s: evaluate %.9g, sample by sample %.9g\n%s", mdl, got, want,
              out);
    free(out);
    emitted_free(&e);
}

Test(codegen_c, evaluate_token_model_in_batches, .timeout = 300) {
    const char *mdl = MLC_TEST_DIR "/data/token_mlp.mdl";
    evaluate_check(ct_load_src(mdl), mdl, 0);
}
Test(codegen_c, evaluate_two_f32_inputs, .timeout = 300) {
    evaluate_check(srcfile_from_string("two.mdl",
                                       "model two\ninput image: f32[B, 6]\ninput aux: f32[B, 4]\n"
                                       "input label: i32[B]\nlogits = dense(image, 4, name = \"fc\") + aux\n"
                                       "output logits\nloss cross_entropy(logits, label)\n"
                                       "train { batch = 8  optimizer = sgd(lr = 0.1) }\n"),
                   "two.mdl", 1);
}
Test(codegen_c, evaluate_labels_per_position, .timeout = 300) {
    evaluate_check(srcfile_from_string("seg.mdl",
                                       "model seg\ninput image: f32[B, 6]\ninput label: i32[B, 3]\n"
                                       "logits = reshape(dense(image, 12, name = \"fc\"), [B, 3, 4])\n"
                                       "output logits\nloss cross_entropy(logits, label)\n"
                                       "train { batch = 8  optimizer = sgd(lr = 0.1) }\n"),
                   "seg.mdl", 0);
}

/* A batch_norm after a dense layer cannot normalise one sample (variance 0): the library's
 * training calls refuse a batch of one as the trainer refuses flags that make one, and
 * leave the model as it was; forward takes one sample. */
static const char min_batch_driver_src[] =
    "#include <math.h>\n"
    "#include <stdio.h>\n"
    "#include <string.h>\n"
    "#include \"bnd.h\"\n"
    "int main(void) {\n"
    "    static float img[2 * 6], w0[64], w1[64], out[8];\n"
    "    for (int i = 0; i < 2 * 6; i++) img[i] = (float)sin(0.37 * i);\n"
    "    int lab[2] = {1, 2};\n"
    "    const void *in[2] = {img, lab};\n"
    "    bnd_model *m = bnd_create(1, 2);\n"
    "    printf(\"MIN %d\\n\", bnd_api.min_train_batch);\n"
    "    bnd_api.read_tensor(m, 0, w0);\n"
    "    printf(\"A %g\\n\", bnd_train_step(m, in, 1, 0.1f, NULL));\n"
    "    printf(\"B %g\\n\", bnd_forward_backward(m, in, 1, NULL));\n"
    "    bnd_api.read_tensor(m, 0, w1);\n"
    "    printf(\"UNCHANGED %d\\n\", memcmp(w0, w1, sizeof(float) * (size_t)bnd_api.tensors[0].numel) == 0);\n"
    "    bnd_forward(m, in, 1, (float *[MLC_MAX_OUTPUTS]){out});\n"
    "    printf(\"OK %d\\n\", isfinite(bnd_train_step(m, in, 2, 0.1f, NULL)));\n"
    "    bnd_destroy(m);\n"
    "    return 0;\n"
    "}\n";

Test(codegen_c, public_training_calls_refuse_batches_below_min_train_batch, .timeout = 300) {
    Emitted e;
    emit_src_debug(srcfile_from_string("bnd.mdl",
                                       "model bnd\ninput image: f32[B, 6]\ninput label: i32[B]\n"
                                       "h = batch_norm(dense(image, 5, name = \"fc1\"), name = \"bn1\")\n"
                                       "logits = dense(relu(h), 4, name = \"fc2\")\n"
                                       "output logits\nloss cross_entropy(logits, label)\n"
                                       "train { batch = 8  optimizer = sgd(lr = 0.1) }\n"),
                   "bnd.mdl", &e, 0);
    char *out = run_driver(&e, "bnd.mdl", min_batch_driver_src, NULL);
    static const char *const want[] = {
        "MIN 2\n",
        "error: bnd_train_step: a batch of 1 sample, expected at least 2 (a batch_norm with one value per channel "
        "and sample: the variance of one sample is 0)\n",
        "error: bnd_forward_backward: a batch of 1 sample, expected at least 2",
        "UNCHANGED 1\n",
        "OK 1\n",
    };
    expect_lines(out, want, sizeof want / sizeof want[0]);
    expect_nan(out, 'A');
    expect_nan(out, 'B');
    free(out);
    emitted_free(&e);
}

/* A C++ program includes the generated header as it is and links with the C object: the
 * header and the runtime headers it includes declare everything extern "C" (without it the
 * link failed: undefined reference to 'mlp_create(unsigned long, int)'). Skipped where
 * no C++ compiler runs. */
static const char cpp_caller_src[] =
    "#include <cstdio>\n"
    "#include <vector>\n"
    "#include \"mlp.h\"\n"
    "int main() {\n"
    "    mlp_model *m = mlp_create(1, 2);\n"
    "    std::vector<float> img(2 * 784, 0.5f), out(2 * 10);\n"
    "    std::vector<int32_t> lab = {3, 4};\n"
    "    const void *in[2] = {img.data(), lab.data()};\n"
    "    float *outs[1] = {out.data()};\n"
    "    mlp_forward(m, in, 2, outs);\n"
    "    std::printf(\"CPP %d %d %d\\n\", mlp_api.n_inputs, mlp_eval_loss(m, in, 2) > 0.0f, out[0] == out[10]);\n"
    "    mlp_destroy(m);\n"
    "    return 0;\n"
    "}\n";

Test(codegen_c, cpp_caller_includes_the_header, .timeout = 300) {
    char *log = NULL;
    char *probe[] = {"c++", "--version", NULL};
    int st = ct_run(probe, &log);
    free(log);
    if (st != 0) cr_skip_test("no C++ compiler (c++) to run");
    const char *mdl = MLC_SOURCE_ROOT "/samples/mlp.mdl";
    Emitted e;
    emit_model(mdl, &e);
    char obj[700], cpp[700], exe[700];
    snprintf(obj, sizeof obj, "%s/mlp.o", e.dir);
    snprintf(cpp, sizeof cpp, "%s/main.cpp", e.dir);
    snprintf(exe, sizeof exe, "%s/main_cpp", e.dir);
    cr_assert_eq(ct_write_file(cpp, cpp_caller_src), 0);
    char san[] = MLC_TEST_SANITIZE, noop[] = "-DMLC_TEST_NO_SANITIZE";
    char *cc_argv[] = {"cc",
                       "-std=c11",
                       "-O1",
                       "-fopenmp",
                       "-D_POSIX_C_SOURCE=200809L",
                       "-I" MLC_RUNTIME_INC,
                       "-I" OPENBLAS_INC,
                       san[0] ? san : noop,
                       "-c",
                       e.c_path,
                       "-o",
                       obj,
                       NULL};
    st = ct_run(cc_argv, &log);
    cr_assert_eq(st, 0, "cc: %s", log);
    free(log);
    char *cxx_argv[] = {"c++",
                        "-std=c++17",
                        "-Wall",
                        "-Wextra",
                        "-Werror",
                        "-fopenmp",
                        san[0] ? san : noop,
                        "-I" MLC_RUNTIME_INC,
                        cpp,
                        obj,
                        "-o",
                        exe,
                        "-L" MLC_RUNTIME_LIB_DIR,
                        "-lmlckernels",
                        "-lmlcrt",
                        "-lopenblas",
                        "-lz",
                        "-lm",
                        "-pthread",
                        NULL};
    st = ct_run(cxx_argv, &log);
    cr_assert_eq(st, 0, "c++ could not build a caller of mlp.h:\n%s", log);
    free(log);
    char *run_argv[] = {exe, NULL};
    st = ct_run(run_argv, &log);
    cr_expect_eq(st, 0, "%s", log);
    cr_expect(strstr(log, "CPP 2 1 1\n"), "%s", log);
    free(log);
    emitted_free(&e);
}

static void eval_random_state_check(const char *mdl) {
    Emitted e;
    emit_model(mdl, &e);
    const ModelIR *m = e.m;
    char *out = run_driver(&e, mdl, eval_driver_src, NULL);
    Interp *ev = interp_new(m->eval);
    bind_sources(ev, m, out, m->spec.batch);
    interp_run(ev);
    int64_t k;
    double *fwd = parse_line(out, "FWD", NULL, &k);
    cr_assert_not_null(fwd);
    cr_assert_eq(k, shape_numel(&m->eval->nodes[m->eval->outputs[0]].shape));
    printf("%s (batch %d, random parameters and running statistics):\n", ct_basename(mdl), m->spec.batch);
    double worst = compare("forward output", fwd, ev->vals[m->eval->outputs[0]], k);
    fflush(stdout);
    free(fwd);
    interp_free(ev);
    free(out);
    emitted_free(&e);
    cr_assert_leq(worst, TOL, "%s: generated code differs from the interpreter by %.3e (> %g)", mdl, worst, TOL);
}

/* fold_bn's output (scaled weights, folded shifts, with and without a conv bias) and the
 * batch norms it leaves, as C */
Test(codegen_c, eval_random_state_convbn, .timeout = 300) { eval_random_state_check(MLC_TEST_DIR "/data/convbn.mdl"); }
Test(codegen_c, eval_random_state_convnet, .timeout = 300) {
    eval_random_state_check(MLC_TEST_DIR "/data/convnet.mdl");
}
Test(codegen_c, eval_random_state_convepi, .timeout = 300) {
    eval_random_state_check(MLC_TEST_DIR "/data/convepi.mdl");
}

Test(codegen_c, numeric_tiny, .timeout = 300) { numeric_check(MLC_TEST_DIR "/data/tiny.mdl"); }
Test(codegen_c, numeric_mlp, .timeout = 300) { numeric_check(MLC_SOURCE_ROOT "/samples/mlp.mdl"); }
Test(codegen_c, numeric_blocks, .timeout = 300) { numeric_check(MLC_TEST_DIR "/data/blocks.mdl"); }
Test(codegen_c, numeric_adamw, .timeout = 300) { numeric_check(MLC_TEST_DIR "/data/adamw.mdl"); }
/* betas near 1: the first step is lr * g / (|g| + eps) only if the moments' weights are
 * 1 - beta in double (1 - float(beta) made it 0.93 of that: err 7e-2 against TOL) */
Test(codegen_c, numeric_adam_betas_near_one, .timeout = 300) { numeric_check(MLC_TEST_DIR "/data/adam_betas.mdl"); }
Test(codegen_c, numeric_convnet, .timeout = 300) { numeric_check(MLC_TEST_DIR "/data/convnet.mdl"); }
Test(codegen_c, numeric_clip, .timeout = 300) { numeric_check(MLC_TEST_DIR "/data/clip.mdl"); }
Test(codegen_c, numeric_decoupled, .timeout = 300) { numeric_check(MLC_TEST_DIR "/data/decoupled.mdl"); }
Test(codegen_c, numeric_densesq, .timeout = 300) { numeric_check(MLC_TEST_DIR "/data/densesq.mdl"); }
Test(codegen_c, numeric_conv1d, .timeout = 300) { numeric_check(MLC_TEST_DIR "/data/conv1d.mdl"); }
Test(codegen_c, numeric_convt, .timeout = 300) { numeric_check(MLC_TEST_DIR "/data/convt.mdl"); }
Test(codegen_c, numeric_tokens_cls, .timeout = 300) { numeric_check(MLC_TEST_DIR "/data/tokens_cls.mdl"); }
/* two parameters whose gradients are one node: the slab holds it twice (grad_slab.c) */
Test(codegen_c, numeric_shared_grads, .timeout = 300) { numeric_check(MLC_TEST_DIR "/data/accum_mlp.mdl"); }
/* several outputs, one of them an expression */
Test(codegen_c, numeric_multiout, .timeout = 300) { numeric_check(MLC_TEST_DIR "/data/multiout.mdl"); }
/* no label input, sigmoid output, mse loss: not a classifier */
Test(codegen_c, numeric_autoencoder, .timeout = 300) { numeric_check(MLC_SOURCE_ROOT "/samples/autoencoder.mdl"); }
/* The conv kernels' blocking paths and tail cases (convwide, convseg), batch 1 (convb1);
 * the model's loops built for this machine too. */
Test(codegen_c, numeric_convwide, .timeout = 300) { numeric_check(MLC_TEST_DIR "/data/convwide.mdl"); }
Test(codegen_c, numeric_convb1, .timeout = 300) { numeric_check(MLC_TEST_DIR "/data/convb1.mdl"); }
/* row reductions over a middle and the last axis fused into their readers, a logsumexp
 * on its own (softmax), one_hot read by mse and by the cross-entropy */
Test(codegen_c, numeric_allops, .timeout = 300) { numeric_check(MLC_TEST_DIR "/data/allops.mdl"); }
/* no parameters (an empty update) and an output that is an input */
Test(codegen_c, numeric_noparams, .timeout = 300) { numeric_check(MLC_TEST_DIR "/data/noparams.mdl"); }
/* train { ema = d }: after each of 5 train steps every "<p>.ema" must be p after the
 * first step, then d * ema + (1 - d) * p, computed here in double from the parameters the
 * driver printed after each step. */
static const char ema_driver_src[] =
    "#include <math.h>\n"
    "#include <stdio.h>\n"
    "#include <stdlib.h>\n"
    "#include \"mlc_model.h\"\n"
    "extern const mlc_model_api MLC_MODEL_API;\n"
    "int main(int argc, char **argv) {\n"
    "    const mlc_model_api *api = &MLC_MODEL_API;\n"
    "    int n = atoi(argv[1]);\n"
    "    float lr = (float)atof(argv[2]);\n"
    "    void *m = api->create(5, n);\n"
    "    if (!m) return 3;\n" DRIVER_INPUTS
    "    for (int k = 1; k <= 5; k++) {\n"
    "        api->train_step(m, x, n, lr, NULL);\n"
    "        for (int i = 0; i < api->n_tensors; i++) {\n"
    "            const mlc_tensor_desc *t = &api->tensors[i];\n"
    "            float *v = malloc(sizeof(float) * (size_t)t->numel);\n"
    "            api->read_tensor(m, i, v);\n"
    "            printf(\"S%d %s %lld\", k, t->name, (long long)t->numel);\n"
    "            for (long long j = 0; j < t->numel; j++) printf(\" %.9g\", v[j]);\n"
    "            printf(\"\\n\");\n"
    "            free(v);\n"
    "        }\n"
    "    }\n"
    "    api->destroy(m);\n" DRIVER_FREE_INPUTS
    "    return 0;\n"
    "}\n";

Test(codegen_c, ema_follows_the_parameters, .timeout = 300) {
    const char *mdl = MLC_TEST_DIR "/data/ema.mdl";
    Emitted e;
    emit_model(mdl, &e);
    const ModelIR *m = e.m;
    double d = m->spec.opt.ema;
    cr_assert_eq(d, 0.75);
    char *out = run_driver_at(&e, mdl, ema_driver_src, NULL, m->spec.batch);
    int checked = 0;
    double worst = 0;
    for (int i = 0; i < m->npers; i++) {
        const Persistent *p = &m->pers[i];
        if (!p->is_param) continue;
        char ema_name[256], tag[8];
        snprintf(ema_name, sizeof ema_name, "%s.ema", p->name);
        cr_assert_geq(model_find_persistent(m, ema_name), 0, "no tensor %s", ema_name);
        int64_t cnt = shape_numel(&p->shape), k1, k2;
        double *want = NULL;
        for (int k = 1; k <= 5; k++) {
            snprintf(tag, sizeof tag, "S%d", k);
            double *pv = parse_line(out, tag, p->name, &k1), *ev = parse_line(out, tag, ema_name, &k2);
            cr_assert(pv && ev && k1 == cnt && k2 == cnt, "%s: step %d not printed", p->name, k);
            if (!want) want = calloc((size_t)cnt, sizeof *want);
            for (int64_t j = 0; j < cnt; j++) want[j] = k == 1 ? pv[j] : d * want[j] + (1 - d) * pv[j];
            char what[320];
            snprintf(what, sizeof what, "%s after step %d", ema_name, k);
            worst = fmax(worst, compare(what, ev, want, cnt));
            /* the parameters move, so the average differs from the last of them */
            if (k == 5) cr_expect_gt(fabs(ev[0] - pv[0]), 1e-6, "%s: the average is the parameter itself", ema_name);
            free(pv);
            free(ev);
        }
        free(want);
        checked++;
    }
    cr_assert_eq(checked, 4, "l1 and l2, weight and bias");
    free(out);
    emitted_free(&e);
    cr_assert_leq(worst, TOL, "%s: the moving averages differ from the formula by %.3e", mdl, worst);
}

/* argmax's i32 output against the interpreter's indices; bilinear upsampling forward and
 * (through c1's update) its gradient */
Test(codegen_c, numeric_resample, .timeout = 300) { numeric_check(MLC_TEST_DIR "/data/resample.mdl"); }
/* layer_norm, rms_norm, embedding (shared with an output projection), causal_mask, where */
Test(codegen_c, numeric_seqops, .timeout = 300) { numeric_check(MLC_TEST_DIR "/data/seqops.mdl"); }
/* fused attention: causal, plain and cross (S != T, E != D), forward and backward */
Test(codegen_c, numeric_attention, .timeout = 300) { numeric_check(MLC_TEST_DIR "/data/attention.mdl"); }
Test(codegen_c, numeric_activations, .timeout = 300) { numeric_check(MLC_TEST_DIR "/data/activations.mdl"); }
/* row reductions two levels deep, under a mean that keeps an inner loop */
Test(codegen_c, numeric_rows, .timeout = 300) { numeric_check(MLC_TEST_DIR "/data/rows.mdl"); }
Test(codegen_c, numeric_convseg, .timeout = 300) { numeric_check(MLC_TEST_DIR "/data/convseg.mdl"); }
Test(codegen_c, numeric_convnet_native, .timeout = 300) {
    numeric_check_flag(MLC_TEST_DIR "/data/convnet.mdl", "-march=native");
}
Test(codegen_c, numeric_convwide_native, .timeout = 300) {
    numeric_check_flag(MLC_TEST_DIR "/data/convwide.mdl", "-march=native");
}
/* overlapping max pooling: its backward must not take over its input's buffer */
/* i32[B, T] tokens, batched and folded matmuls, dense on [B, T, D], reshape through B*8,
 * weight tying and the per-token cross_entropy */
Test(codegen_c, numeric_token_mlp, .timeout = 300) { numeric_check(MLC_TEST_DIR "/data/token_mlp.mdl"); }
/* strided-batched GEMMs: both operands batched, transposed, shared by the batch (stride
 * 0) and broadcast over B */
Test(codegen_c, numeric_token_attn, .timeout = 300) { numeric_check(MLC_TEST_DIR "/data/token_attn.mdl"); }
/* layout ops and reductions along and beside a merged batch dimension B*8 */
Test(codegen_c, numeric_token_merged, .timeout = 300) { numeric_check(MLC_TEST_DIR "/data/token_merged.mdl"); }
/* compiled for batch 3 or 4, run on 2 samples: every B*T size from the run-time B */
Test(codegen_c, numeric_token_smaller_batch, .timeout = 300) {
    numeric_check_at(MLC_TEST_DIR "/data/token_merged.mdl", NULL, 2);
    numeric_check_at(MLC_TEST_DIR "/data/token_attn.mdl", NULL, 2);
    numeric_check_at(MLC_TEST_DIR "/data/token_mlp.mdl", NULL, 2);
}
Test(codegen_c, numeric_poolov, .timeout = 300) { numeric_check(MLC_TEST_DIR "/data/poolov.mdl"); }
/* relu_pool.c's mask on dy before a 3x3 / stride 3 pooling backward, beside overlapping
 * windows it leaves alone */
Test(codegen_c, numeric_poolrelu, .timeout = 300) { numeric_check(MLC_TEST_DIR "/data/poolrelu.mdl"); }
Test(codegen_c, numeric_convseg_native, .timeout = 300) {
    numeric_check_flag(MLC_TEST_DIR "/data/convseg.mdl", "-march=native");
}
/* Conv epilogues (fuse.c) on each sample's output: bias, activation, residual adds,
 * a per-sample scale, grouped and strided convs, batch 37; generic and -march=native
 * epilogue loops. */
Test(codegen_c, numeric_convepi, .timeout = 300) { numeric_check(MLC_TEST_DIR "/data/convepi.mdl"); }
Test(codegen_c, numeric_convepi_native, .timeout = 300) {
    numeric_check_flag(MLC_TEST_DIR "/data/convepi.mdl", "-march=native");
}

/* ---- (d) results independent of the thread count ----
 * The conv routines split work over the OpenMP team so that every value is computed in
 * an order fixed by the batch size alone (the weight gradient: per-chunk partial sums
 * added in chunk order), so three train steps give bit-identical losses and parameters
 * on 1, 2 and 3 threads (and on a second run). */
static const char thread_driver_src[] =
    "#include <math.h>\n"
    "#include <stdio.h>\n"
    "#include <stdlib.h>\n"
    "#include <string.h>\n"
    "#include \"mlc_model.h\"\n"
    "extern const mlc_model_api MLC_MODEL_API;\n"
    "int main(int argc, char **argv) {\n"
    "    const mlc_model_api *api = &MLC_MODEL_API;\n"
    "    int n = api->default_batch;\n"
    "    if (argc < 2) return 2;\n"
    "    api->set_threads(atoi(argv[1]));\n"
    "    void *m = api->create(5, n);\n"
    "    if (!m) return 3;\n" DRIVER_INPUTS
    "    for (int s = 0; s < 3; s++) printf(\"loss %a\\n\", api->train_step(m, x, n, api->optimizer.lr, NULL));\n" CT_DRIVER_PRINT_TENSORS
    "    api->destroy(m);\n" DRIVER_FREE_INPUTS
    "    return 0;\n"
    "}\n";

static void thread_invariance_check(const char *mdl) {
    Emitted e;
    emit_model(mdl, &e);
    char drv[700], exe[700], def[300];
    snprintf(drv, sizeof drv, "%s/threads.c", e.dir);
    snprintf(exe, sizeof exe, "%s/threads", e.dir);
    snprintf(def, sizeof def, "-DMLC_MODEL_API=%s_api", e.m->spec.name);
    cr_assert_eq(ct_write_file(drv, thread_driver_src), 0);
    char san[] = MLC_TEST_SANITIZE, noop[] = "-DMLC_TEST_NO_SANITIZE";
    char *cc_argv[] = {"cc",
                       "-std=c11",
                       "-O2",
                       "-fopenmp",
                       "-D_POSIX_C_SOURCE=200809L",
                       "-I" MLC_RUNTIME_INC,
                       "-I" OPENBLAS_INC,
                       def,
                       san[0] ? san : noop,
                       e.c_path,
                       drv,
                       "-o",
                       exe,
                       "-L" MLC_RUNTIME_LIB_DIR,
                       "-lmlckernels",
                       "-lmlcrt",
                       "-lopenblas",
                       "-lz",
                       "-lm",
                       NULL};
    char *log = NULL;
    int st = ct_run(cc_argv, &log);
    cr_assert_eq(st, 0, "%s: building the driver failed:\n%s", mdl, log);
    free(log);
    char *first = NULL;
    const char *threads[] = {"1", "2", "3", "2"};
    for (int i = 0; i < 4; i++) {
        char t[8];
        snprintf(t, sizeof t, "%s", threads[i]);
        char *run_argv[] = {exe, t, NULL};
        char *out = NULL;
        st = ct_run(run_argv, &out);
        cr_assert_eq(st, 0, "%s: the driver failed on %s threads (status %d):\n%.2000s", mdl, t, st, out);
        if (!first) {
            first = out;
            continue;
        }
        cr_expect_str_eq(out, first, "%s: 3 train steps on %s threads differ from those on 1 thread", mdl, t);
        free(out);
    }
    free(first);
    emitted_free(&e);
}

/* batched and folded GEMMs: mlc_sgemm_batched splits entries or rows by the team size */
Test(codegen_c, token_thread_count_invariant, .timeout = 300) {
    thread_invariance_check(MLC_TEST_DIR "/data/token_attn.mdl");
    thread_invariance_check(MLC_TEST_DIR "/data/token_mlp.mdl");
}

/* Row norms, embedding lookups and their gradients over rows of tokens: large enough
 * (16 x 64 rows of 64) that their loops run on a team of threads. */
Test(codegen_c, seq_thread_count_invariant, .timeout = 300) {
    thread_invariance_check(MLC_TEST_DIR "/data/seqwide.mdl");
}

/* Dense layers whose products OpenBLAS would take to its small-matrix kernels when cut
 * in two: the autoencoder's 64 x 32 x 256 input gradient (mlc_kernels.h, GEMM). */
Test(codegen_c, gemm_thread_count_invariant, .timeout = 300) {
    thread_invariance_check(MLC_SOURCE_ROOT "/samples/autoencoder.mdl");
    thread_invariance_check(MLC_SOURCE_ROOT "/samples/mlp.mdl");
}

Test(codegen_c, conv_thread_count_invariant, .timeout = 300) {
    thread_invariance_check(MLC_TEST_DIR "/data/convwide.mdl");
    thread_invariance_check(MLC_TEST_DIR "/data/convnet.mdl");
    thread_invariance_check(MLC_TEST_DIR "/data/convseg.mdl");
    thread_invariance_check(MLC_TEST_DIR "/data/convepi.mdl");
}

/* Winograd convolutions (--conv-algo auto: the 32 -> 32 layer's forward and input
 * gradient; winograd: every op of every layer) against the interpreter, and their train
 * steps the same bits on 1, 2 and 3 threads. The source must call each kernel the choice
 * implies (and, forced, no direct one), or the test would pass on the wrong kernels. */
static void winograd_check(const char *mdl, ConvAlgo algo, const char *const *must_call, const char *never) {
    emit_conv_algo = algo;
    Emitted e;
    emit_model(mdl, &e);
    char *src = ct_read_file(e.c_path, NULL);
    cr_assert_not_null(src);
    for (const char *const *m = must_call; *m; m++)
        cr_assert_not_null(strstr(src, *m), "%s with --conv-algo %d does not call %s", mdl, algo, *m);
    if (never) cr_assert_null(strstr(src, never), "%s with --conv-algo %d calls %s", mdl, algo, never);
    free(src);
    emitted_free(&e);
    numeric_check(mdl);
    thread_invariance_check(mdl);
    emit_conv_algo = CONV_ALGO_AUTO;
}

/* --precision bf16 (header, (g)): a dense model (SGD: the updates are checked too), a
 * conv net with batch norm, Winograd layers (its weight-gradient products see rounded
 * inputs), attention; the rounding is in the code, and the train steps of the models whose
 * kernels are mlc's own do not depend on the thread count (OpenBLAS's GEMMs may split
 * their sums by threads: the mlp is bit-identical at one thread count, not across). */
static void bf16_check(const char *mdl, int threads_invariant) {
    emit_bf16 = 1;
    Emitted e;
    emit_model(mdl, &e);
    char *src = ct_read_file(e.c_path, NULL);
    cr_assert_not_null(src);
    cr_assert_not_null(strstr(src, "mlc_round_bf16("), "%s with --precision bf16 does not round", mdl);
    free(src);
    emitted_free(&e);
    numeric_check(mdl);
    if (threads_invariant) thread_invariance_check(mdl);
    emit_bf16 = 0;
}
Test(codegen_c, bf16_mlp, .timeout = 300) { bf16_check(MLC_SOURCE_ROOT "/samples/mlp.mdl", 0); }
Test(codegen_c, bf16_convnet, .timeout = 300) { bf16_check(MLC_TEST_DIR "/data/convnet.mdl", 1); }
Test(codegen_c, bf16_winograd, .timeout = 300) {
    emit_conv_algo = CONV_ALGO_WINOGRAD;
    bf16_check(MLC_TEST_DIR "/data/convwino4.mdl", 1);
    emit_conv_algo = CONV_ALGO_AUTO;
}
Test(codegen_c, bf16_attention, .timeout = 300) { bf16_check(MLC_TEST_DIR "/data/attention.mdl", 1); }
/* one_hot read through a merging view: stored, not recomputed (fuse.c, merges_dims) */
Test(codegen_c, numeric_onehot_view, .timeout = 300) { numeric_check(MLC_TEST_DIR "/data/onehot_view.mdl"); }
Test(codegen_c, bf16_onehot_view, .timeout = 300) { bf16_check(MLC_TEST_DIR "/data/onehot_view.mdl", 0); }

/* auto: the 7x7 32 -> 32 layer's forward and input gradient by F(4x4, 3x3), which runs
 * them in sample groups; its weight gradient direct (7x7's edge tiles) */
Test(codegen_c, winograd_auto, .timeout = 300) {
    const char *must[] = {"mlc_wino4_conv2d_bwd_data", "mlc_conv2d_bwd_filter(", NULL};
    winograd_check(MLC_TEST_DIR "/data/convwino.mdl", CONV_ALGO_AUTO, must, NULL);
}
/* forced: no convolution runs direct */
Test(codegen_c, winograd_forced, .timeout = 300) {
    const char *must[] = {"mlc_wino_conv2d_fwd", "mlc_wino_conv2d_bwd_filter(", NULL};
    winograd_check(MLC_TEST_DIR "/data/convwino.mdl", CONV_ALGO_WINOGRAD, must, "mlc_conv2d_");
}

/* F(4x4, 3x3): auto takes it for the 16- and 32-channel layers' forward and input
 * gradients and F(2x2, 3x3) for the 32 -> 32 layer's weight gradient, the stem stays
 * direct; winograd4 for every layer's forward and input gradient (the stem's input
 * gradient is not computed), with F(2x2, 3x3)'s weight gradients (a batch of 3 is no
 * sample group: mlc_wino_dw_algo), nothing direct */
Test(codegen_c, winograd4_auto, .timeout = 300) {
    const char *must[] = {"mlc_wino4_conv2d_bwd_data", "mlc_wino_conv2d_bwd_filter(", "mlc_conv2d_fwd(", NULL};
    winograd_check(MLC_TEST_DIR "/data/convwino4.mdl", CONV_ALGO_AUTO, must, NULL);
}
/* Sample groups (8x8 and 7x7 outputs): F(4x4, 3x3)'s layout chosen when the step runs
 * (mlc_wino_spt), the epilogues run over each group's samples, the weight gradients in 5
 * chunks of groups, F(2x2, 3x3)'s for the 7x7 layers and F(4x4, 3x3)'s for the 8x8
 * 16 -> 16 ones; against the interpreter at the compiled batch (4 groups of 8 and one of
 * 3) and at 2 samples, and the same bits on 1, 2 and 3 threads */
Test(codegen_c, winograd4_sample_groups, .timeout = 300) {
    const char *must[] = {"mlc_wino_spt(",
                          "mlc_wino4_conv2d_fwd_sample",
                          "mlc_wino4_conv2d_bwd_data_sample",
                          "{.spt = 8, .slots = self->slots, .red = 5,",
                          "mlc_wino_conv2d_bwd_filter(",
                          "mlc_wino4_conv2d_bwd_filter(",
                          NULL};
    winograd_check(MLC_TEST_DIR "/data/convwino4g.mdl", CONV_ALGO_AUTO, must, NULL);
    numeric_check_at(MLC_TEST_DIR "/data/convwino4g.mdl", NULL, 2);
}
Test(codegen_c, winograd4_forced, .timeout = 300) {
    const char *must[] = {"mlc_wino4_conv2d_fwd", "mlc_wino_conv2d_bwd_filter(", NULL};
    winograd_check(MLC_TEST_DIR "/data/convwino4.mdl", CONV_ALGO_WINOGRAD4, must, "mlc_conv2d_");
}

/* the direct kernel with vectors over output channels (--conv-algo direct: Winograd would
 * take the 3x3 stride-1 layers): against the interpreter, and the same bits on 1, 2 and 3
 * threads */
Test(codegen_c, numeric_convcv, .timeout = 300) {
    const char *must[] = {"mlc_conv2d_fwd", "mlc_conv2d_bwd_data", NULL};
    winograd_check(MLC_TEST_DIR "/data/convcv.mdl", CONV_ALGO_DIRECT, must, "mlc_wino");
}

/* attention's kernels split query blocks (dk, dv: key blocks) over the team; each row is
 * one thread's, summed in a fixed order. Its model is large enough to run on the team. */
Test(codegen_c, attention_thread_count_invariant, .timeout = 300) {
    thread_invariance_check(MLC_TEST_DIR "/data/attention.mdl");
}

/* ---- (e) epilogues: the same numbers as the unfused code, NaNs still named ----
 * With --check-finite a GEMM or conv with an epilogue runs plain (the whole op), is
 * checked, then the group runs as its own loop nest, checking each value. That is the
 * unfused computation, so the fused code must give bit-identical outputs, losses and
 * parameters; and a NaN made inside a conv's epilogue is named by its op and line. */
static const char checked_driver_src[] =
    "#include <math.h>\n"
    "#include <stdio.h>\n"
    "#include <stdlib.h>\n"
    "#include \"mlc_model.h\"\n"
    "extern const mlc_model_api MLC_MODEL_API;\n"
    "int main(int argc, char **argv) {\n"
    "    const mlc_model_api *api = &MLC_MODEL_API;\n"
    "    int n = api->default_batch;\n"
    "    if (argc < 2) return 2;\n"
    "    api->set_threads(2);\n"
    "    void *m = api->create(5, n);\n"
    "    if (!m) return 3;\n"
    "    api->set_check_finite(m, atoi(argv[1]));\n"
    "    long long ni = api->inputs[0].numel * n, no = api->outputs[0].numel * n;\n"
    "    float *x = malloc(sizeof(float) * (size_t)ni), *out = calloc((size_t)no, sizeof(float));\n"
    "    int *y = malloc(sizeof(int) * (size_t)n);\n"
    "    for (long long i = 0; i < ni; i++) x[i] = (float)sin(0.37 * (double)i + 0.1);\n"
    "    for (int i = 0; i < n; i++) y[i] = (int)((i * 7 + 3) % api->outputs[0].numel);\n"
    "    api->forward(m, (const void *[]){x, NULL}, n, (float *[MLC_MAX_OUTPUTS]){out});\n"
    "    printf(\"forward\");\n"
    "    for (long long j = 0; j < no; j++) printf(\" %a\", out[j]);\n"
    "    printf(\"\\n\");\n"
    "    fflush(stdout);\n"
    "    for (int s = 0; s < 3; s++) printf(\"loss %a\\n\", api->train_step(m, (const void *[]){x, y}, n, api->optimizer.lr, NULL));\n" CT_DRIVER_PRINT_TENSORS
    "    api->destroy(m);\n"
    "    free(x); free(y); free(out);\n"
    "    return 0;\n"
    "}\n";

/* The driver's output with --check-finite off and on (malloc'd, in out[0], out[1]). */
static void run_checked_driver(const Emitted *e, const char *mdl, char **out) {
    char drv[700], exe[700], def[300];
    snprintf(drv, sizeof drv, "%s/checked.c", e->dir);
    snprintf(exe, sizeof exe, "%s/checked", e->dir);
    snprintf(def, sizeof def, "-DMLC_MODEL_API=%s_api", e->m->spec.name);
    cr_assert_eq(ct_write_file(drv, checked_driver_src), 0);
    char san[] = MLC_TEST_SANITIZE, noop[] = "-DMLC_TEST_NO_SANITIZE";
    char *cc_argv[] = {"cc",
                       "-std=c11",
                       "-O2",
                       "-fopenmp",
                       "-D_POSIX_C_SOURCE=200809L",
                       "-I" MLC_RUNTIME_INC,
                       "-I" OPENBLAS_INC,
                       def,
                       san[0] ? san : noop,
                       (char *)e->c_path,
                       drv,
                       "-o",
                       exe,
                       "-L" MLC_RUNTIME_LIB_DIR,
                       "-lmlckernels",
                       "-lmlcrt",
                       "-lopenblas",
                       "-lz",
                       "-lm",
                       NULL};
    char *log = NULL;
    int st = ct_run(cc_argv, &log);
    cr_assert_eq(st, 0, "%s: building the driver failed:\n%s", mdl, log);
    free(log);
    for (int check = 0; check < 2; check++) {
        char flag[2] = {(char)('0' + check), 0};
        char *run_argv[] = {exe, flag, NULL};
        st = ct_run(run_argv, &out[check]);
        cr_assert_eq(st, 0, "%s: the driver failed with check_finite %d (status %d):\n%.2000s", mdl, check, st,
                     out[check]);
    }
}

static void fused_equals_checked(const char *mdl) {
    Emitted e;
    emit_model(mdl, &e);
    int conv_epilogues = 0;
    for (int id = 0; id < e.m->eval->n; id++)
        conv_epilogues += e.m->eval->nodes[id].op == OP_conv2d && e.m->eval_fuse.epilogue[id] >= 0;
    cr_assert_gt(conv_epilogues, 0, "%s: no conv epilogue to test", mdl);
    char *out[2];
    run_checked_driver(&e, mdl, out);
    cr_expect_str_eq(out[1], out[0], "%s: the fused code and the --check-finite (unfused) code differ", mdl);
    free(out[0]);
    free(out[1]);
    emitted_free(&e);
}

Test(codegen_c, conv_epilogue_equals_unfused, .timeout = 300) {
    fused_equals_checked(MLC_TEST_DIR "/data/convepi.mdl");
    fused_equals_checked(MLC_TEST_DIR "/data/convwide.mdl");
}

Test(codegen_c, check_finite_names_an_op_in_a_conv_epilogue, .timeout = 300) {
    Emitted e;
    emit_model(MLC_TEST_DIR "/data/convnan.mdl", &e);
    char *out[2];
    run_checked_driver(&e, "convnan.mdl", out);
    const char *want = "error: %10 = log (convnan.mdl:10:5) produced NaN at element 0\n";
    cr_expect_null(strstr(out[0], "error:"), "without --check-finite nothing is checked:\n%s", out[0]);
    cr_expect(strstr(out[0], "loss nan") || strstr(out[0], "loss -nan"), "the loss is not NaN:\n%s", out[0]);
    char *first = strstr(out[1], want);
    cr_expect_not_null(first, "--check-finite does not name the log:\n%s", out[1]);
    cr_expect(first && strstr(first + 1, want), "the train step does not name the log too:\n%s", out[1]);
    free(out[0]);
    free(out[1]);
    emitted_free(&e);
}

/* The body of `static TYPE name(` in text (malloc'd; NULL if there is none): its lines up
 * to the closing brace in column 0. */
static char *function_body(const char *text, const char *name) {
    char want[128];
    snprintf(want, sizeof want, " %s(", name);
    for (const char *p = strstr(text, want); p; p = strstr(p + 1, want)) {
        const char *line = p;
        while (line > text && line[-1] != '\n') line--;
        const char *open = strchr(p, '\n'), *end = open ? strstr(open, "\n}\n") : NULL;
        if (strncmp(line, "static ", 7) || !end || open[-1] != '{') continue;
        return strndup(open, (size_t)(end - open));
    }
    return NULL;
}

static int count_of(const char *text, const char *what) {
    int n = 0;
    for (const char *p = strstr(text, what); p; p = strstr(p + 1, what)) n++;
    return n;
}

/* The fast functions check nothing: --check-finite runs the train step's checked copies,
 * which the runtime's entry points (api_forward_backward, api_update) choose. The copy of
 * forward_backward scans the f32 inputs, the output of each op outside a fused group and
 * each value a group makes, except where the op keeps finite values finite (relu, step,
 * expand, max_pool2d, the dropout mask: OPF_KEEPS_FINITE): 43 checks in lenet's; the
 * copy of update runs update and scans the 8 parameters its Adam steps wrote. Evaluation
 * has no copy. */
Test(codegen_c, fast_functions_have_no_checks, .timeout = 120) {
    Emitted e;
    emit_model(MLC_SOURCE_ROOT "/samples/lenet.mdl", &e);
    char *text = ct_read_file(e.c_path, NULL);
    cr_assert_not_null(text);
    static const struct {
        const char *fast, *checked;
        int ops;
    } fns[] = {{"forward_backward", "forward_backward_checked", 43}, {"update", "update_checked", 8}};
    for (size_t k = 0; k < sizeof fns / sizeof fns[0]; k++) {
        char *fast = function_body(text, fns[k].fast), *checked = function_body(text, fns[k].checked);
        cr_assert_not_null(fast, "no %s", fns[k].fast);
        cr_assert_not_null(checked, "no %s", fns[k].checked);
        cr_expect_eq(count_of(fast, "check_finite") + count_of(fast, "mlc_nonfinite"), 0, "%s checks values:\n%s",
                     fns[k].fast, fast);
        int checks = count_of(checked, "mlc_check_finite(") + count_of(checked, "mlc_nonfinite(");
        cr_expect_eq(checks, fns[k].ops, "%s has %d checks, not %d", fns[k].checked, checks, fns[k].ops);
        free(fast);
        free(checked);
    }
    free(text);
    emitted_free(&e);
}

/* The optimizer updates of a run share one OpenMP team (targets/c/optim.c), opened after
 * the step constants that later updates outside it use too; an update below the team's
 * threshold, or one between moving averages, is where it was. */
Test(codegen_c, optimizer_updates_share_one_team, .timeout = 300) {
    Emitted e;
    emit_model(MLC_SOURCE_ROOT "/samples/mlp.mdl", &e);
    char *text = ct_read_file(e.c_path, NULL), *u = function_body(text, "update");
    cr_assert_not_null(u);
    cr_expect_eq(count_of(u, "#pragma omp"), 1, "mlp: one team for its six updates:\n%s", u);
    cr_expect_eq(count_of(u, "mlc_adam_update("), 6);
    const char *konst = strstr(u, "const mlc_adam_step"), *team = strstr(u, "#pragma omp parallel\n"),
               *first = strstr(u, "mlc_adam_update(");
    cr_expect(konst && team && first && konst < team && team < first, "mlp: constants, team, updates:\n%s", u);
    free(u);
    free(text);
    emitted_free(&e);
    /* ema_mlp: fc1.weight's update in a team, each other alone, the averages between */
    emit_model(MLC_TEST_DIR "/data/ema_mlp.mdl", &e);
    text = ct_read_file(e.c_path, NULL), u = function_body(text, "update");
    cr_assert_not_null(u);
    cr_expect_eq(count_of(u, "#pragma omp parallel\n"), 1, "ema_mlp: one team:\n%s", u);
    cr_expect_eq(count_of(u, "one OpenMP team for the 1 update below (37632 floats)"), 1, "%s", u);
    cr_expect_eq(count_of(u, "const mlc_adam_step"), 1, "%s", u);
    free(u);
    free(text);
    emitted_free(&e);
    numeric_check(MLC_TEST_DIR "/data/ema_mlp.mdl");
}

/* A generated trainer reads like a hand-written one: forward_backward is marked in its
 * two sections, and each backward value's comment says whose gradient it is (autodiff
 * records it; the passes that renumber nodes keep it pointing at the same value): a
 * parameter by its name, another value as %N (op), which the forward computes above
 * unless it is a reshape or broadcast, which have no code. */
Test(codegen_c, backward_values_say_whose_gradient_they_are, .timeout = 120) {
    Emitted e;
    emit_model(MLC_SOURCE_ROOT "/samples/lenet.mdl", &e);
    char *text = ct_read_file(e.c_path, NULL);
    cr_assert_not_null(text);
    char *fb = function_body(text, "forward_backward");
    cr_assert_not_null(fb);
    const char *fwd = strstr(fb, "/* ---- forward and loss ---- */");
    const char *bwd = strstr(fb, "/* ---- backward: the gradients, into the gradient slab ---- */");
    cr_assert(fwd && bwd && fwd < bwd, "forward_backward's sections are missing or out of order");
    const char *key = ", the gradient of ";
    int params = 0, values = 0;
    for (const char *p = strstr(fb, key); p; p = strstr(p + 1, key)) {
        const char *w = p + strlen(key);
        cr_expect(p > bwd, "a gradient named before the backward section");
        char def[96];
        if (*w != '%') { /* a parameter: the preamble binds it under its name */
            snprintf(def, sizeof def, "/* %.*s */", (int)strcspn(w, " "), w);
            cr_expect_not_null(strstr(fb, def), "%.40s: no parameter of that name", w);
            params++;
            continue;
        }
        int of = atoi(w + 1);
        char op[32] = "";
        const char *paren = strchr(w, '(');
        if (paren) snprintf(op, sizeof op, "%.*s", (int)strcspn(paren + 1, ")"), paren + 1);
        snprintf(def, sizeof def, "%%%d = %s ", of, op);
        const char *at = strstr(fb, def);
        cr_expect(!strcmp(op, "reshape") || !strcmp(op, "expand") || (at && at < bwd),
                  "%%%d (%s), named as a gradient's value, is not a forward value above it", of, op);
        values++;
    }
    /* lenet's backward: 6 parameters' gradients by name (the conv biases' are sums over
     * [C, 1, 1], the gradient of the bias's reshape) and the values between its layers */
    cr_expect_eq(params, 6, "%d parameter gradients named", params);
    cr_expect_geq(values, 3, "%d other gradients named", values);
    free(fb);
    free(text);
    emitted_free(&e);
}

/* ---- (f) mlc --debug ----
 * Unfused and without buffer reuse, every line of a node's code preceded by a #line
 * naming the .mdl line it came from (an absolute path, for gdb from any directory), the
 * generated lines after it by their own line in the .c. It compiles with -Werror, and its
 * forward outputs, losses and updated parameters are bit-identical to the normal build's
 * (the checked driver prints them exactly, %a): fusion changes where values live, not the
 * operations or their order. */
Test(codegen_c, debug_build_has_line_directives_and_the_same_results, .timeout = 300) {
    const char *mdl = MLC_TEST_DIR "/data/convepi.mdl";
    Emitted plain, debug;
    emit_model_debug(mdl, &plain, 0);
    emit_model_debug(mdl, &debug, 1);
    cr_assert_eq(debug.m->train_fuse.ngroups + debug.m->train_fuse.nepilogues, 0, "--debug fused nodes");
    char *text = ct_read_file(debug.c_path, NULL);
    cr_assert_not_null(text);
    /* every node with code of the train step names its .mdl line: the six conv layers
     * (lines 16-21), the dense layer (22) and the loss (25) among them */
    const Graph *g = debug.m->train;
    int layers[] = {16, 17, 18, 19, 20, 21, 22, 25};
    for (size_t k = 0; k < sizeof layers / sizeof layers[0]; k++) {
        char want[64];
        snprintf(want, sizeof want, "\n#line %d \"/", layers[k]);
        const char *at = strstr(text, want);
        cr_expect_not_null(at, "no #line %d into the .mdl", layers[k]);
        const char *end = at ? strchr(at + 1, '\n') : NULL;
        cr_expect(end && end - at > 14 && !strncmp(end - 13, "/convepi.mdl\"", 13), "#line %d: %.80s", layers[k], at);
    }
    for (int id = 0; id < g->n; id++) {
        if (debug.m->train_fuse.at[id] != id || !g->nodes[id].loc.line) continue;
        char want[64];
        snprintf(want, sizeof want, "\n#line %d \"/", g->nodes[id].loc.line);
        cr_expect_not_null(strstr(text, want), "%%%d (line %d) has no #line", id, g->nodes[id].loc.line);
    }
    /* the lines after a node's code are the .c's own again: `#line N "convepi.c"` on line N - 1 */
    int line = 1, backs = 0;
    for (const char *p = text; *p; p++) {
        if (*p != '\n') continue;
        line++;
        int n, end = 0;
        if (sscanf(p + 1, "#line %d \"convepi.c\"%n", &n, &end) == 1 && end > 0) {
            cr_expect_eq(n, line + 1, "#line %d \"convepi.c\" stands on line %d", n, line);
            backs++;
        }
    }
    cr_expect_gt(backs, 3, "no #line back to the .c between the functions");
    free(text);
    char *log = NULL;
    int st = cc_werror(&debug, &log);
    cr_expect_eq(st, 0, "cc -Werror failed on the --debug source:\n%s", log);
    free(log);
    char *out_plain[2], *out_debug[2];
    run_checked_driver(&plain, "convepi.mdl", out_plain);
    run_checked_driver(&debug, "convepi.mdl (--debug)", out_debug);
    cr_expect_str_eq(out_debug[0], out_plain[0], "the --debug build's numbers differ from the normal build's");
    cr_expect_str_eq(out_debug[1], out_plain[1], "with --check-finite too");
    for (int k = 0; k < 2; k++) free(out_plain[k]), free(out_debug[k]);
    emitted_free(&plain);
    emitted_free(&debug);
}

/* ---- (g) the API's training settings are the flags' ----
 * Every trainer flag that a train { } key gives a default (runtime/settings.def, KEY
 * column) reaches the trainer through the generated mlc_model_api. For each such row,
 * `values` says how to set it both ways; a model setting all of them in train { } and
 * parsed with no flags must give the trainer exactly the options (the row's FIELD of
 * trainer_opts) that a model without them gives with the flags. A keyed row with no line
 * here fails, naming it: the API field, emit_api_struct and set_defaults need it too. */
static const struct {
    const char *key, *mdl, *flags;
} keyed_values[] = {
    {"epochs", "epochs = 3", "--epochs 3"},
    {"batch", "batch = 32", "--batch 32"},
    {"accum", "accum = 2", "--accum 2"},
    {"lr", "lr = 0.003", "--lr 0.003"},
    {"schedule", "schedule = step(size = 2, gamma = 0.5, warmup = 0.25)", "--schedule step"},
    {"schedule(warmup)", "", "--warmup 0.25"},
    {"schedule(size)", "", "--step-size 2"},
    {"schedule(gamma)", "", "--gamma 0.5"},
    {"seed", "seed = 9", "--seed 9"},
    {"mean", "mean = [0.25]", "--mean 0.25"},
    {"std", "std = [0.5]", "--std 0.5"},
    {"augment", "augment = \"crop:2,flip\"", "--augment crop:2,flip"},
};

static const char keyed_driver_src[] =
    "#include <stdio.h>\n"
    "#include \"trainer_flags.h\"\n"
    "extern const mlc_model_api MLC_MODEL_API;\n"
    "static void text(const char *s) { printf(\"%s\\n\", s ? s : \"(none)\"); }\n"
    "static void bytes(const void *p, size_t n) {\n"
    "    for (size_t i = 0; i < n; i++) printf(\"%02x\", ((const unsigned char *)p)[i]);\n"
    "    printf(\"\\n\");\n"
    "}\n"
    "#define SHOW(F) (_Generic(o.F, const char *: 1, default: 0) ? text(*(const char *const *)(const void *)&o.F) \\\n"
    "                                                              : bytes(&o.F, sizeof o.F))\n"
    "int main(int argc, char **argv) {\n"
    "    trainer_opts o;\n"
    "    if (mlcrt_parse_flags(argc, argv, &MLC_MODEL_API, &o, \"t\", stderr)) return 1;\n"
    "#define MLC_FLAG(FIELD, FLAG, KIND, ARG, CHOICES, DEFAULT, KEY, SECTION, HELP) \\\n"
    "    if (KEY[0]) printf(\"%s \", FLAG), SHOW(FIELD);\n"
    "#include \"settings.def\"\n"
    "    return 0;\n"
    "}\n";

/* Builds the model `train` (a train { } body) with the driver; its output for `flags`. */
static char *keyed_options(const char *dir, const char *train, const char *flags) {
    char mdl[4096], c_path[700], drv[700], exe[700], hdr[700];
    snprintf(mdl, sizeof mdl,
             "model keyed\ninput image: f32[B, 4]\ninput label: i32[B]\nlogits = dense(image, 3)\noutput logits\n"
             "loss cross_entropy(logits, label)\ntrain {\n%s\n}\n",
             train);
    Arena a = {0};
    SrcFile *src = srcfile_from_string("keyed.mdl", mdl);
    CtCompile r = ct_compile(&a, src, (DumpOptions){0});
    cr_assert_not_null(r.m, "%s", r.diag);
    snprintf(c_path, sizeof c_path, "%s/keyed.c", dir);
    cr_assert_eq(write_model_sources(r.m, &target_c, c_path, hdr, sizeof hdr), 0);
    snprintf(drv, sizeof drv, "%s/driver.c", dir);
    snprintf(exe, sizeof exe, "%s/driver", dir);
    cr_assert_eq(ct_write_file(drv, keyed_driver_src), 0);
    char san[] = MLC_TEST_SANITIZE, noop[] = "-DMLC_TEST_NO_SANITIZE"; /* libmlcrt.a is instrumented there */
    char *cc_argv[] = {"cc",
                       "-std=c11",
                       "-fopenmp",
                       san[0] ? san : noop,
                       "-D_POSIX_C_SOURCE=200809L",
                       "-I" MLC_RUNTIME_INC,
                       "-I" OPENBLAS_INC,
                       "-DMLC_MODEL_API=keyed_api",
                       c_path,
                       drv,
                       "-o",
                       exe,
                       "-L" MLC_RUNTIME_LIB_DIR,
                       "-lmlckernels",
                       "-lmlcrt",
                       "-lopenblas",
                       "-lz",
                       "-lm",
                       "-pthread",
                       NULL};
    char *log = NULL;
    cr_assert_eq(ct_run(cc_argv, &log), 0, "building the driver failed:\n%s", log);
    free(log);
    char *run_argv[64] = {exe};
    int n = 1;
    char words[1024];
    snprintf(words, sizeof words, "%s", flags);
    for (char *w = strtok(words, " "); w && n < 63; w = strtok(NULL, " ")) run_argv[n++] = w;
    run_argv[n] = NULL;
    char *out = NULL;
    cr_assert_eq(ct_run(run_argv, &out), 0, "the driver failed:\n%s", out);
    ct_compile_free(&r);
    srcfile_free(src);
    arena_free(&a);
    return out;
}

Test(codegen_c, api_train_settings_are_the_flags, .timeout = 300) {
    static const char *keys[] = {
#define MLC_FLAG(FIELD, FLAG, KIND, ARG, CHOICES, DEFAULT, KEY, SECTION, HELP) KEY,
#include "settings.def"
    };
    char train[2048] = "", flags[1024] = "";
    int keyed = 0;
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
        if (!keys[i][0]) continue;
        keyed++;
        size_t k = 0;
        while (k < sizeof keyed_values / sizeof keyed_values[0] && strcmp(keyed_values[k].key, keys[i])) k++;
        cr_expect(k < sizeof keyed_values / sizeof keyed_values[0],
                  "settings.def's train { } key '%s' has no case here (keyed_values)", keys[i]);
        if (k == sizeof keyed_values / sizeof keyed_values[0]) continue;
        if (keyed_values[k].mdl[0]) strcat(strcat(train, keyed_values[k].mdl), "\n");
        strcat(strcat(flags, " "), keyed_values[k].flags);
    }
    cr_assert_eq(keyed, (int)(sizeof keyed_values / sizeof keyed_values[0]),
                 "keyed_values has rows settings.def lacks");
    char *dir = ct_tmpdir("keyed");
    cr_assert_not_null(dir);
    char *from_api = keyed_options(dir, train, "");
    char *from_flags = keyed_options(dir, "", flags);
    char *plain = keyed_options(dir, "", "");
    /* line by line: "--flag value", the same from the key and the flag, and not the
     * default (the case changes every option) */
    const char *p = plain, *q = from_api, *f = from_flags;
    int lines = 0;
    for (; *p && *q && *f; lines++) {
        const char *pe = strchr(p, '\n'), *qe = strchr(q, '\n'), *fe = strchr(f, '\n');
        cr_assert(pe && qe && fe);
        cr_expect(qe - q == fe - f && !strncmp(q, f, (size_t)(qe - q)), "from train { }: %.*s; from the flag: %.*s",
                  (int)(qe - q), q, (int)(fe - f), f);
        cr_expect(pe - p != qe - q || strncmp(p, q, (size_t)(pe - p)), "this option is its default: %.*s",
                  (int)(pe - p), p);
        p = pe + 1, q = qe + 1, f = fe + 1;
    }
    cr_expect_eq(lines, keyed, "the driver printed %d options:\n%s", lines, from_api);
    free(from_api);
    free(from_flags);
    free(plain);
    ct_rmdir(dir);
    free(dir);
}

/* --report's convolution table names each conv op's algorithm: under auto the 32 -> 32
 * layer's forward and input gradient run Winograd, its weight gradient and the 1-channel
 * layer stay direct; F(2x2, 3x3)'s products are 16 per tile and channel pair (4x4 tiles
 * of the 7x7 output, 3 samples, 32 x 32 channels: 2 * 16 * 48 * 1024 FLOPs). */
/* mdl's --report, as text to free */
static char *report_text(const char *mdl) {
    Emitted e;
    emit_model(mdl, &e);
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    print_report(f, e.m);
    fclose(f);
    emitted_free(&e);
    return text;
}

Test(codegen_c, winograd_report_names_each_algorithm) {
    char *text = report_text(MLC_TEST_DIR "/data/convwino.mdl");
    cr_assert_not_null(strstr(text, "  train      %4     conv2d             3x3 s1 1->32 7x7             direct   "),
                       "%s", text);
    cr_assert_not_null(strstr(text, "3x3 s1 32->32 7x7            wino4x4          2709504         884736\n"), "%s",
                       text);
    cr_assert_not_null(strstr(text, "conv2d_bwd_filter  3x3 s1 32->32 7x7            direct   "), "%s", text);
    free(text);
}

/* F(4x4, 3x3)'s products are 36 per 4x4 tile and channel pair: 16 tiles cover the 14x14
 * output, 3 samples, 16 x 16 channels: 2 * 36 * 48 * 256 FLOPs. Auto runs the 32 -> 32
 * layer's weight gradient with F(2x2, 3x3) (36 tiles, 16 products each), the 16 -> 16
 * one's direct. */
Test(codegen_c, winograd4_report_counts_its_products) {
    char *text = report_text(MLC_TEST_DIR "/data/convwino4.mdl");
    char want[128];
    snprintf(want, sizeof want, "%-28s %-9s %14.0f %14.0f\n", "3x3 s1 16->16 14x14", "wino4x4",
             2.0 * 16 * 16 * 9 * 196 * 3, 2.0 * 36 * 48 * 256);
    cr_assert_not_null(strstr(text, want), "%s", text);
    cr_assert_not_null(strstr(text, "conv2d_bwd_filter  3x3 s1 16->16 14x14          direct   "), "%s", text);
    snprintf(want, sizeof want, "conv2d_bwd_filter  %-28s %-9s %14.0f %14.0f\n", "3x3 s1 32->32 12x12", "wino2x2",
             2.0 * 32 * 32 * 9 * 144 * 3, 2.0 * 16 * 36 * 3 * 1024);
    cr_assert_not_null(strstr(text, want), "%s", text);
    free(text);
}

/* ---- user text in the generated code ----
 * Paths can hold anything and names may hold '-' and '.', so what the user wrote reaches
 * the generated C escaped, and two names that make one identifier get two. */

Test(codegen_c, user_text_is_escaped_for_strings_and_comments) {
    Arena a = {0};
    /* string literals: '"' and '\' escaped, control and non-ASCII bytes in octal, no trigraph */
    cr_expect_str_eq(c_str(&a,
                           "a\"b\\c\nd?\?/e\x7f\xc3\xa9"
                           "1"),
                     "a\\\"b\\\\c\\012d?\\?/e\\177\\303\\2511");
    /* comments: the pairs that end or open one broken, newlines and control bytes spelled out */
    cr_expect_str_eq(c_comment(&a, "x*/y/*z//w\n\t\"\\"), "x* /y/ *z//w\\n\\011\"\\");
    cr_expect_str_eq(c_comment(&a, "/*/"), "/ * /");
    /* the usual text is returned as it is */
    const char *plain = "fc1.weight (mlp.mdl:8) a-b";
    cr_expect_eq(c_str(&a, plain), plain);
    cr_expect_eq(c_comment(&a, plain), plain);
    arena_free(&a);
}

/* A .mdl whose path holds '"', '\', a newline, "??=" or "*" "/" compiles to C that cc
 * takes with -Werror, plain and --debug; the header comments name it escaped as comment
 * text, the --check-finite strings and the #line directives as string literals (cc reads
 * the #line name back as the path itself). */
Test(codegen_c, weird_source_paths_compile_with_werror, .timeout = 300) {
    static const struct {
        const char *path, *comment, *str, *line;
    } cases[] = {
        {"d*/we\"ird.mdl", "from d* /we\"ird.mdl", "\"we\\\"ird.mdl:", "/d*/we\\\"ird.mdl\""},
        {"back\\slash.mdl", "from back\\slash.mdl", "\"back\\\\slash.mdl:", "/back\\\\slash.mdl\""},
        {"new\nline?\?=.mdl", "from new\\nline?\?=.mdl", "\"new\\012line?\\?=.mdl:", "/new\\012line?\\?=.mdl\""},
    };
    char *text = ct_read_file(MLC_TEST_DIR "/data/tiny.mdl", NULL);
    cr_assert_not_null(text);
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++)
        for (int debug = 0; debug < 2; debug++) {
            Emitted e;
            emit_src_debug(srcfile_from_string(cases[k].path, text), cases[k].path, &e, debug);
            char *out = NULL, *c = ct_read_file(e.c_path, NULL), *h = ct_read_file(e.h_path, NULL);
            int st = cc_werror(&e, &out);
            cr_expect_eq(st, 0, "%s%s: cc -Werror failed (exit %d):\n%s", cases[k].path, debug ? " --debug" : "", st,
                         out);
            cr_expect(strstr(c, cases[k].comment), "%s: the .c's first line: %.100s", cases[k].path, c);
            cr_expect(strstr(h, cases[k].comment), "%s: the .h's first line: %.100s", cases[k].path, h);
            cr_expect(strstr(c, cases[k].str), "%s: no check naming %s", cases[k].path, cases[k].str);
            if (debug) cr_expect(strstr(c, cases[k].line), "%s: no #line naming %s", cases[k].path, cases[k].line);
            free(out);
            free(c);
            free(h);
            emitted_free(&e);
        }
    free(text);
}

/* The line of text that declares pointer `ident` ("float *const ident = "), or NULL. */
static const char *declaration(const char *text, const char *ident) {
    char want[128];
    snprintf(want, sizeof want, "float *const %s = ", ident);
    return strstr(text, want);
}

/* Whether the declaration of `ident` says it is tensor `name` in its comment. */
static int declares(const char *text, const char *ident, const char *name) {
    const char *d = declaration(text, ident), *end = d ? strchr(d, '\n') : NULL;
    char want[128];
    snprintf(want, sizeof want, "/* %s */", name);
    return end && (size_t)(end - d) > strlen(want) && !strncmp(end - strlen(want), want, strlen(want));
}

#define COLLIDING_MDL(OPT)                    \
    "model coll\n"                            \
    "input x: f32[B, 6]\n"                    \
    "input y: i32[B]\n"                       \
    "h = relu(dense(x, 5, name = \"a-b\"))\n" \
    "h = relu(dense(h, 5, name = \"a.b\"))\n" \
    "logits = dense(h, 4, name = \"a_b\")\n"  \
    "output logits\n"                         \
    "loss cross_entropy(logits, y)\n"         \
    "train {\n    batch = 8\n    optimizer = " OPT "\n    seed = 3\n}\n"

/* "a-b", "a.b" and "a_b" make one identifier: the parameters, their gradients and Adam's
 * state take _2 and _3 in slab order, each pointer's comment names its tensor, and cc
 * takes the file with -Werror (it used to stop at a redefinition of p_a_b_weight). With
 * plain SGD the generated train step matches the interpreter, parameter by parameter. */
Test(codegen_c, names_that_make_one_identifier_get_suffixes, .timeout = 300) {
    Emitted e;
    emit_src_debug(srcfile_from_string("coll.mdl", COLLIDING_MDL("adam(lr = 1e-3)")), "coll.mdl", &e, 0);
    char *out = NULL, *c = ct_read_file(e.c_path, NULL);
    int st = cc_werror(&e, &out);
    cr_expect_eq(st, 0, "cc -Werror failed (exit %d):\n%s", st, out);
    static const char *const layers[] = {"a-b", "a.b", "a_b"}, *const suffix[] = {"", "_2", "_3"};
    static const char *const tensors[] = {"weight", "bias", "weight.adam_m", "bias.adam_v"};
    for (int l = 0; l < 3; l++)
        for (int t = 0; t < 4; t++) {
            char ident[96], name[96];
            snprintf(name, sizeof name, "%s.%s", layers[l], tensors[t]);
            snprintf(ident, sizeof ident, "p_a_b_%s%s", c_ident(&e.arena, tensors[t]), suffix[l]);
            cr_expect(declares(c, ident, name), "%s is not declared as %s", name, ident);
            if (t < 2) {
                ident[0] = 'g';
                char grad[112];
                snprintf(grad, sizeof grad, "the gradient of %s", name);
                cr_expect(declares(c, ident, grad), "%s's gradient is not declared as %s", name, ident);
            }
        }
    cr_expect_null(declaration(c, "p_a_b_weight_4"), "a fourth a_b weight");
    free(out);
    free(c);
    emitted_free(&e);

    /* numbers: each tensor reads and writes its own slot */
    char *dir = ct_tmpdir("coll"), path[600];
    cr_assert_not_null(dir);
    snprintf(path, sizeof path, "%s/coll.mdl", dir);
    cr_assert_eq(ct_write_file(path, COLLIDING_MDL("sgd(lr = 0.1)")), 0);
    numeric_check(path);
    ct_rmdir(dir);
    free(dir);
}
