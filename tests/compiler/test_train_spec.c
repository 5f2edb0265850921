/* test_train_spec.c - the train { } section: what each setting becomes in the model's
 * spec and in the generated mlc_model_api, and the errors for bad settings. */
#include <criterion/criterion.h>
#include <string.h>

#include "ctest_util.h"
#include "target.h"

static const char *head =
    "model t\ninput x: f32[B, 3]\ninput y: i32[B]\nlogits = dense(x, 2)\noutput logits\n"
    "loss cross_entropy(logits, y)\n";

/* Compiles head + `train`; returns the result (diag holds the error text, if any). */
static CtCompile compile_train(Arena *a, SrcFile **src, const char *train) {
    char buf[2048];
    snprintf(buf, sizeof buf, "%strain {\n%s\n}\n", head, train);
    *src = srcfile_from_string("t.mdl", buf);
    return ct_compile(a, *src, (DumpOptions){0});
}

Test(train_spec, settings_reach_the_spec_and_the_api) {
    Arena a = {0};
    SrcFile *src;
    CtCompile r = compile_train(&a, &src,
                                "batch = 32\nepochs = 3\nseed = 9\n"
                                "optimizer = adamw(lr = 0.002, beta2 = 0.99, weight_decay = 0.05)\n"
                                "schedule = step(size = 2, gamma = 0.5, warmup = 0.5)\nclip_norm = 1.5\n"
                                "augment = \"crop:2,flip\"\nmean = [0.5, -0.25]\nstd = [0.2, 0.1]");
    cr_assert_not_null(r.m, "%s", r.diag);
    const ModelSpec *s = &r.m->spec;
    cr_assert_eq(s->batch, 32);
    cr_assert_eq(s->epochs, 3);
    cr_assert_eq(s->seed, 9);
    cr_assert_str_eq(s->opt.kind, "adamw");
    cr_assert_float_eq(s->opt.lr, 0.002, 1e-12);
    cr_assert_float_eq(s->opt.beta2, 0.99, 1e-12);
    cr_assert_float_eq(s->opt.weight_decay, 0.05, 1e-12);
    cr_assert_str_eq(s->schedule, "step");
    cr_assert_eq(s->step_size, 2);
    cr_assert_float_eq(s->step_gamma, 0.5, 1e-12);
    cr_assert_float_eq(s->warmup, 0.5, 1e-12);
    cr_assert_float_eq(s->opt.clip_norm, 1.5, 1e-12);
    cr_assert_str_eq(s->augment, "crop:2,flip");
    cr_assert_eq(s->n_norm, 2);
    cr_assert_float_eq(s->norm_std[1], 0.1, 1e-12);

    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    target_c.emit_source(r.m, f, "t.h");
    fclose(f);
    // clang-format off
    static const char *want[] = {
        ".optimizer = {\"adamw\", 0.002f, 0.0f, 0.9f, 0.99f, 1e-08f, 0.05f}",
        ".schedule = \"step\"", ".warmup_epochs = 0.5f", ".step_size = 2", ".step_gamma = 0.5f",
        ".augment = \"crop:2,flip\"", ".n_norm = 2", ".norm_mean = {0.5f, -0.25f, 0.0f, 0.0f}",
        ".norm_std = {0.2f, 0.1f, 0.0f, 0.0f}", ".default_batch = 32", ".default_epochs = 3",
    };
    // clang-format on
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++)
        cr_expect(strstr(text, want[i]) != NULL, "the generated api lacks %s", want[i]);
    free(text);
    ct_compile_free(&r);
    srcfile_free(src);
    arena_free(&a);
}

static void expect_error(const char *train, const char *message) {
    Arena a = {0};
    SrcFile *src;
    CtCompile r = compile_train(&a, &src, train);
    cr_assert_null(r.m, "'%s' compiled", train);
    cr_expect(strstr(r.diag, message) != NULL, "for '%s' expected '%s' in:\n%s", train, message, r.diag);
    ct_compile_free(&r);
    srcfile_free(src);
    arena_free(&a);
}

Test(train_spec, bad_settings) {
    expect_error("schedule = cosinus", "t.mdl:8:12: error: unknown schedule");
    expect_error("schedule = constant(warmup = 1)", "t.mdl:8:21: error: constant takes no settings\n");
    expect_error("schedule = onecycle(warmup = 1)", "t.mdl:8:21: error: onecycle takes no settings\n");
    expect_error("schedule = step(3, 0.1)", "t.mdl:8:17: error: step: give its settings by name, e.g. size = 3\n");
    expect_error("schedule = cosine(1)", "t.mdl:8:19: error: cosine: give its settings by name, e.g. warmup = 1\n");
    expect_error("schedule = cosine(size = 2)", "error: cosine has no setting 'size'\n");
    expect_error("schedule = \"cosine\"", "t.mdl:8:12: error: schedule is a name or a call, not a string\n");
    expect_error("batch = 10 / 4",
                 "t.mdl:8:9: error: batch must be an integer from 1 to 1048576, found the number 2.5\n");
    expect_error("accum = 257", "t.mdl:8:9: error: accum must be an integer from 1 to 256, found 257\n");
    expect_error("accum = 257", "hint: dropout tells no more micro-batches of a step apart\n");
    expect_error("accum = 0", "t.mdl:8:9: error: accum must be an integer from 1 to 256, found 0\n");
    expect_error("batch = 1048577", "t.mdl:8:9: error: batch must be an integer from 1 to 1048576, found 1048577\n");
    expect_error("epochs = \"3\"", "error: epochs must be an integer from 1 to 1000000000, found a string\n");
    expect_error("schedule = step(sise = 2)", "error: step has no setting 'sise'\n");
    expect_error("schedule = step(sise = 2)", "hint: did you mean 'size'?");
    expect_error("optimizer = adam(momentum = 0.9)", "error: adam has no setting 'momentum'");
    expect_error("optimizer = sgd(lr = 0)", "error: lr must be above 0");
    expect_error("optimizer = sgd(nesterov = true)",
                 "t.mdl:8:28: error: sgd: nesterov = true needs a momentum above 0\n");
    expect_error("optimizer = adam(beta1 = 1.5)", "error: adam: 'beta1' must be below 1");
    expect_error("mean = [0.5, 0.5]\nstd = 0.2", "error: mean and std must give the same number of channels (2 and 1)");
    expect_error("std = 0", "error: std must be above 0");
    expect_error("augment = crop", "error: augment must be a string");
    expect_error("augment = \"crop:4,rotate\"",
                 "t.mdl:8:11: error: augment: expected crop:N (N in 1..64), flip or none, found 'rotate'");
    expect_error("augment = \"\"", "t.mdl:8:11: error: augment: expected crop:N (N in 1..64), flip or none, found ''");
    expect_error("epocs = 3", "hint: did you mean 'epochs'?");
    expect_error("mean = 0.286", "t.mdl:8:8: error: mean needs std, one value per channel");
    expect_error("std = 0.3", "t.mdl:8:7: error: std needs mean, one value per channel");
    expect_error("freeze = [\"dense1.w*\", \"fc.*\"]", "t.mdl:8:24: error: freeze: 'fc.*' matches no parameter");
    expect_error("freeze = []", "t.mdl:8:10: error: freeze: the list is empty");
    expect_error("no_decay = [1]", "t.mdl:8:13: error: no_decay takes parameter names or patterns, as strings");
}

/* Model names whose NAME_create, NAME_destroy, ... are (or are reserved for) functions of
 * the libraries a trainer links are refused at the name; names that only begin alike are
 * kept. `model pthread` used to build a trainer that hung at its first batch. */
Test(train_spec, library_model_names_are_reserved) {
    static const char *const bad[] = {"pthread", "pthread_mutex", "timer", "sem",      "mtx",   "cnd_x",   "thrd",
                                      "tss",     "omp",           "acc",   "OpenBLAS", "cblas", "MPI_Comm"};
    static const char *const ok[] = {"semantic", "timers", "accuracy", "mytimer", "author"};
    char buf[1024];
    for (size_t i = 0; i < sizeof bad / sizeof bad[0] + sizeof ok / sizeof ok[0]; i++) {
        int is_bad = i < sizeof bad / sizeof bad[0];
        const char *name = is_bad ? bad[i] : ok[i - sizeof bad / sizeof bad[0]];
        snprintf(buf, sizeof buf, "model %s\n%s", name, strchr(head, '\n') + 1);
        Arena a = {0};
        SrcFile *src = srcfile_from_string("t.mdl", buf);
        CtCompile r = ct_compile(&a, src, (DumpOptions){0});
        char want[256];
        snprintf(want, sizeof want, "t.mdl:1:7: error: the model name '%s' is reserved\n", name);
        if (is_bad)
            cr_expect(r.m == NULL && strstr(r.diag, want) && strstr(r.diag, "hint: its functions "), "%s:\n%s", name,
                      r.diag);
        else cr_expect_not_null(r.m, "%s:\n%s", name, r.diag);
        ct_compile_free(&r);
        srcfile_free(src);
        arena_free(&a);
    }
}

/* freeze: the parameter gets neither a gradient nor an update (nor optimizer state);
 * no_decay: its update has weight decay 0, the others keep the optimizer's. */
Test(train_spec, freeze_and_no_decay) {
    Arena a = {0};
    SrcFile *src;
    CtCompile r = compile_train(&a, &src,
                                "optimizer = adamw(weight_decay = 0.1)\nfreeze = \"dense1.bias\"\n"
                                "no_decay = \"biases_and_norms\"");
    cr_assert_not_null(r.m, "%s", r.diag);
    const Graph *g = r.m->train;
    int updates = 0;
    for (int i = 0; i < g->n; i++) {
        const Node *n = &g->nodes[i];
        if (n->op == OP_state)
            cr_expect(strncmp(n->name, "dense1.bias", 11), "state %s of a frozen parameter", n->name);
        if (n->op != OP_adam_update) continue;
        const Node *p = &g->nodes[n->in[0]];
        cr_expect_str_eq(p->name, "dense1.weight");
        cr_expect_float_eq(attr_f(n, A_WEIGHT_DECAY), 0.1, 1e-12);
        updates++;
    }
    cr_expect_eq(updates, 1);
    ct_compile_free(&r);
    srcfile_free(src);

    r = compile_train(&a, &src, "optimizer = sgd(weight_decay = 0.1)\nno_decay = [\"*.weight\"]");
    cr_assert_not_null(r.m, "%s", r.diag);
    g = r.m->train;
    updates = 0;
    for (int i = 0; i < g->n; i++) {
        const Node *n = &g->nodes[i];
        if (n->op != OP_sgd_plain_update) continue;
        int weight = !strcmp(g->nodes[n->in[0]].name, "dense1.weight");
        cr_expect_float_eq(attr_f(n, A_WEIGHT_DECAY), weight ? 0.0 : 0.1, 1e-12, "%s", g->nodes[n->in[0]].name);
        updates++;
    }
    cr_expect_eq(updates, 2);
    ct_compile_free(&r);
    srcfile_free(src);
    arena_free(&a);
}

/* Every train { } key that runtime/settings.def gives a default takes that default as its
 * value and leaves the spec as without the key: the table's (and so the docs' and the
 * trainer's) default is the compiler's. */
Test(train_spec, table_defaults_are_the_defaults) {
    static const struct {
        const char *key, *def;
    } rows[] = {
#define MLC_FLAG(FIELD, FLAG, KIND, ARG, CHOICES, DEFAULT, KEY, SECTION, HELP) {KEY, DEFAULT},
#define MLC_KEY(KEY, DEFAULT, HELP) {KEY, DEFAULT},
#include "settings.def"
    };
    Arena a = {0};
    SrcFile *src0;
    CtCompile r0 = compile_train(&a, &src0, "");
    cr_assert_not_null(r0.m, "%s", r0.diag);
    const ModelSpec *s0 = &r0.m->spec;
    int tested = 0;
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        if (!rows[i].key[0] || strchr(rows[i].key, '(') || !rows[i].def[0]) continue;
        char train[256];
        snprintf(train, sizeof train, "%s = %s", rows[i].key, rows[i].def);
        SrcFile *src;
        CtCompile r = compile_train(&a, &src, train);
        cr_assert_not_null(r.m, "'%s': %s", train, r.diag);
        const ModelSpec *s = &r.m->spec;
        cr_expect(s->batch == s0->batch && s->epochs == s0->epochs && s->seed == s0->seed && s->accum == s0->accum,
                  "%s", train);
        cr_expect_str_eq(s->schedule, s0->schedule, "%s", train);
        cr_expect_str_eq(s->opt.kind, s0->opt.kind, "%s", train);
        cr_expect(s->opt.lr == s0->opt.lr && s->opt.beta1 == s0->opt.beta1 && s->opt.beta2 == s0->opt.beta2 &&
                      s->opt.eps == s0->opt.eps && s->opt.weight_decay == s0->opt.weight_decay,
                  "%s", train);
        ct_compile_free(&r);
        srcfile_free(src);
        tested++;
    }
    cr_assert_eq(tested, 6); /* batch, accum, epochs, schedule, seed, optimizer */
    ct_compile_free(&r0);
    srcfile_free(src0);
    arena_free(&a);
}

/* A batch_norm over one value per channel and sample (after dense) needs training batches
 * of two samples: min_train_batch 2 in the model and its API; over a convolution's
 * channels (H x W values each) any batch will do: 1. */
Test(train_spec, min_train_batch_from_batch_norm) {
    const char *models[2][2] = {
        {"model d\ninput x: f32[B, 3]\ninput y: i32[B]\nlogits = dense(batch_norm(dense(x, 4)), 2)\noutput logits\n"
         "loss cross_entropy(logits, y)\n",
         "2"},
        {"model c\ninput x: f32[B, 1, 4, 4]\ninput y: i32[B]\nh = relu(batch_norm(conv2d(x, 2, 3, pad = 1)))\n"
         "logits = dense(flatten(h), 2)\noutput logits\nloss cross_entropy(logits, y)\n",
         "1"},
    };
    for (int i = 0; i < 2; i++) {
        Arena a = {0};
        SrcFile *src = srcfile_from_string("t.mdl", models[i][0]);
        CtCompile r = ct_compile(&a, src, (DumpOptions){0});
        cr_assert_not_null(r.m, "%s", r.diag);
        cr_assert_eq(r.m->min_train_batch, atoi(models[i][1]));
        char *text = NULL;
        size_t len = 0;
        FILE *f = open_memstream(&text, &len);
        emit_api_struct(r.m, f, "c");
        fclose(f);
        char want[64];
        snprintf(want, sizeof want, "    .min_train_batch = %s,\n", models[i][1]);
        cr_assert_not_null(strstr(text, want), "%s", text);
        free(text);
        ct_compile_free(&r);
        arena_free(&a);
        srcfile_free(src);
    }
}
