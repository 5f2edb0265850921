/* test_reentrant.c - the compiler keeps no state between compilations or across threads:
 * each model compiled and emitted (C and CUDA) in four threads at once, and again one
 * after another, gives byte for byte the same source and the same diagnostics as compiling
 * it alone first. A model with an error is among them, so one thread's diagnostic (a
 * longjmp to its own recovery point) runs while the others compile, and every thread then
 * compiles that model again and again, all at once. */
#include <criterion/criterion.h>
#include <pthread.h>

#include "ctest_util.h"
#include "target.h"

static const char *const models[] = {
    MLC_SOURCE_ROOT "/samples/lenet.mdl",
    MLC_SOURCE_ROOT "/samples/resnet.mdl",
    MLC_TEST_DIR "/data/allops.mdl",
    MLC_TEST_DIR "/errors/add_shape.mdl",
};
enum { NMODELS = sizeof models / sizeof models[0] };

typedef struct Job {
    const char *path;
    TargetKind target;
    char *out; /* the emitted source, or the diagnostic text after "error:" */
} Job;

static char *compile_to_text(const char *path, TargetKind target) {
    Arena a = {0};
    SrcFile *src = srcfile_read(path);
    cr_assert_not_null(src, "cannot read %s", path);
    CompileOptions o = {.target = target};
    CtCompile r = ct_compile_with(&a, src, (DumpOptions){0}, &o);
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    if (r.m) (target == TARGET_C ? &target_c : &target_cuda)->emit_source(r.m, f, "model.h");
    else fprintf(f, "error:%s", r.diag);
    fclose(f);
    ct_compile_free(&r);
    srcfile_free(src);
    arena_free(&a);
    return text;
}

/* Compiles its model, then the model with the error REPEATS times: the threads' recovery
 * points and diagnostic streams are in use at the same moments. */
enum { REPEATS = 300 };
static char *expected_error;
static pthread_barrier_t start;

static void *run_job(void *arg) {
    Job *j = arg;
    pthread_barrier_wait(&start);
    j->out = compile_to_text(j->path, j->target);
    for (int k = 0; k < REPEATS; k++) {
        char *e = compile_to_text(models[NMODELS - 1], TARGET_C);
        int same = !strcmp(e, expected_error);
        free(e);
        if (!same) {
            free(j->out);
            j->out = strdup("a diagnostic differed from the one compiled alone");
            break;
        }
    }
    return NULL;
}

Test(reentrant, threads_and_repeats_give_the_same_output, .timeout = 600) {
    char *alone[2][NMODELS];
    for (int t = 0; t < 2; t++)
        for (int i = 0; i < NMODELS; i++) alone[t][i] = compile_to_text(models[i], t ? TARGET_CUDA : TARGET_C);
    cr_assert(!strncmp(alone[0][NMODELS - 1], "error:", 6), "add_shape.mdl compiled");
    expected_error = alone[0][NMODELS - 1];
    cr_assert_eq(pthread_barrier_init(&start, NULL, NMODELS), 0);
    for (int t = 0; t < 2; t++) {
        Job jobs[NMODELS];
        pthread_t th[NMODELS];
        for (int i = 0; i < NMODELS; i++) {
            jobs[i] = (Job){models[i], t ? TARGET_CUDA : TARGET_C, NULL};
            cr_assert_eq(pthread_create(&th[i], NULL, run_job, &jobs[i]), 0);
        }
        for (int i = 0; i < NMODELS; i++) {
            cr_assert_eq(pthread_join(th[i], NULL), 0);
            cr_expect_str_eq(jobs[i].out, alone[t][i], "%s (%s): a compilation in a thread differs from one alone",
                             models[i], t ? "cuda" : "c");
            free(jobs[i].out);
            char *again = compile_to_text(models[i], t ? TARGET_CUDA : TARGET_C);
            cr_expect_str_eq(again, alone[t][i], "%s: a second compilation differs from the first", models[i]);
            free(again);
        }
    }
    pthread_barrier_destroy(&start);
    for (int t = 0; t < 2; t++)
        for (int i = 0; i < NMODELS; i++) free(alone[t][i]);
}
