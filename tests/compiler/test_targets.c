/* test_targets.c - the split between the op table (semantics) and the targets (code):
 *   - every op with code of its own has an emitter on every registered target, and no
 *     target has a row for an op whose code the kind emitters write (it would never run);
 *   - no file under compiler/ops/ includes a header of compiler/targets/ or names a
 *     target, so the op rules cannot grow target-dependent parts again;
 *   - each check catches what it is for (a table with a row removed, an include added). */
#include <criterion/criterion.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "c_emitters.h"
#include "ops.h"
#include "target.h"

/* Whether op has code of its own, which some target's table must print. */
static int has_own_code(Op op) {
    OpKind k = op_info[op].kind;
    return (k == K_SPECIAL || k == K_UPDATE) && !(op_info[op].rules->flags & OPF_LOWERED);
}

/* The ops table gets wrong for target `name`: missing emitters, and rows for ops without
 * code of their own. Appends a line per problem to msg; returns the count. */
static int table_problems(const char *name, const OpEmitter *table, char *msg, size_t cap) {
    int bad = 0;
    for (int op = 0; op < OP_COUNT; op++) {
        const char *what = NULL;
        if (has_own_code((Op)op) && !table[op].emit) what = "has no emitter";
        else if (!has_own_code((Op)op) && (table[op].emit || table[op].workspace)) what = "has a row that never runs";
        if (!what) continue;
        size_t used = strlen(msg);
        snprintf(msg + used, cap - used, "%s: op %s %s\n", name, op_info[op].name, what);
        bad++;
    }
    return bad;
}

Test(targets, every_op_with_code_has_an_emitter_on_every_target) {
    char msg[4096] = "";
    int ntargets = 0, bad = 0, with_code = 0;
    for (int i = 0; targets[i]; i++, ntargets++)
        bad += table_problems(targets[i]->name, targets[i]->emitters, msg, sizeof msg);
    for (int op = 0; op < OP_COUNT; op++) with_code += has_own_code((Op)op);
    cr_assert(target_by_name("c") && target_by_name("cuda") && ntargets >= 2, "c and cuda are registered (targets.c)");
    cr_assert_eq(with_code,
                 30 + 4 /* attention and its three backward ops */ + 3 /* argmax, upsample_bilinear(_bwd) */ +
                     1 /* param_ema */ + 1 /* sgd_plain_update */,
                 "ops with code of their own: %d (ops.def changed? update this count)", with_code);
    cr_assert_eq(bad, 0, "%s", msg);
}

/* The check above fails when a row goes missing, or when an elementwise op gets one. */
Test(targets, table_check_catches_a_missing_or_stray_row) {
    OpEmitter copy[OP_COUNT];
    memcpy(copy, c_emitters, sizeof copy);
    char msg[512] = "";
    cr_assert_eq(table_problems("c", copy, msg, sizeof msg), 0, "%s", msg);
    copy[OP_conv2d].emit = NULL;
    copy[OP_add].emit = copy[OP_transpose].emit;
    cr_assert_eq(table_problems("c", copy, msg, sizeof msg), 2);
    cr_assert_str_eq(msg, "c: op add has a row that never runs\nc: op conv2d has no emitter\n");
}

Test(targets, found_by_name_and_kind) {
    for (int i = 0; targets[i]; i++) {
        cr_assert_eq(target_by_name(targets[i]->name), targets[i]);
        cr_assert_eq(target_of_kind(targets[i]->kind), targets[i]);
    }
    cr_assert_null(target_by_name("metal"));
    cr_assert_str_eq(target_c.src_ext, ".c");
    cr_assert_str_eq(target_cuda.src_ext, ".cu");
}

/* ---- compiler/ops/ knows no target ---- */

#define MAX_HEADERS 128

typedef struct Names {
    int n;
    char name[MAX_HEADERS][64];
} Names;

/* The file names of the headers under dir, recursively. */
static void collect_headers(const char *dir, Names *out) {
    DIR *d = opendir(dir);
    cr_assert_not_null(d, "cannot open %s", dir);
    for (struct dirent *de; (de = readdir(d));) {
        if (de->d_name[0] == '.') continue;
        char path[1024];
        snprintf(path, sizeof path, "%s/%s", dir, de->d_name);
        struct stat st;
        cr_assert_eq(stat(path, &st), 0);
        size_t len = strlen(de->d_name);
        if (S_ISDIR(st.st_mode)) collect_headers(path, out);
        else if (len > 2 && !strcmp(de->d_name + len - 2, ".h") && out->n < MAX_HEADERS)
            snprintf(out->name[out->n++], sizeof out->name[0], "%s", de->d_name);
    }
    closedir(d);
}

/* Lines of `text` (file `file`) that include a target's header or name a target kind;
 * appended to msg, counted. */
static int target_references(const char *file, const char *text, const Names *headers, char *msg, size_t cap) {
    int bad = 0, line = 1;
    for (const char *p = text; *p; line++) {
        const char *eol = strchr(p, '\n');
        size_t len = eol ? (size_t)(eol - p) : strlen(p);
        char l[512];
        snprintf(l, sizeof l, "%.*s", (int)(len < sizeof l ? len : sizeof l - 1), p);
        const char *inc = strstr(l, "#include \"");
        int hit = strstr(l, "TARGET_") != NULL || strstr(l, "TargetKind") != NULL;
        if (inc) {
            char name[256];
            if (sscanf(inc + 10, "%255[^\"]", name) == 1) {
                const char *base = strrchr(name, '/') ? strrchr(name, '/') + 1 : name;
                hit |= strstr(name, "targets/") != NULL;
                for (int i = 0; i < headers->n; i++) hit |= !strcmp(base, headers->name[i]);
            }
        }
        if (hit) {
            size_t used = strlen(msg);
            snprintf(msg + used, cap - used, "%s:%d: %s\n", file, line, l);
            bad++;
        }
        p = eol ? eol + 1 : p + len;
    }
    return bad;
}

static char *slurp(const char *path) {
    FILE *f = fopen(path, "rb");
    cr_assert_not_null(f, "cannot read %s", path);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    rewind(f);
    char *s = malloc((size_t)n + 1);
    cr_assert_eq(fread(s, 1, (size_t)n, f), (size_t)n);
    s[n] = 0;
    fclose(f);
    return s;
}

Test(targets, op_rules_include_no_target_header) {
    Names headers = {0};
    collect_headers(MLC_SOURCE_ROOT "/compiler/targets", &headers);
    cr_assert_geq(headers.n, 4, "emit.h, target.h, c_emitters.h, cuda_emitters.h at least");
    DIR *d = opendir(MLC_SOURCE_ROOT "/compiler/ops");
    cr_assert_not_null(d);
    char msg[4096] = "";
    int files = 0, bad = 0;
    for (struct dirent *de; (de = readdir(d));) {
        if (de->d_name[0] == '.') continue;
        char path[1024];
        snprintf(path, sizeof path, "%s/%s", MLC_SOURCE_ROOT "/compiler/ops", de->d_name);
        char *text = slurp(path);
        bad += target_references(de->d_name, text, &headers, msg, sizeof msg);
        free(text);
        files++;
    }
    closedir(d);
    cr_assert_geq(files, 14, "ops.h, ops.def, ops.c and the rule files");
    cr_assert_eq(bad, 0, "compiler/ops/ must not depend on a target:\n%s", msg);
}

/* The scan above finds an include of a target's header, by name or by path, and a target
 * kind; the op table's own headers pass. */
Test(targets, include_check_catches_a_target_header) {
    Names headers = {0};
    collect_headers(MLC_SOURCE_ROOT "/compiler/targets", &headers);
    char msg[1024] = "";
    const char *text =
        "#include \"ops.h\"\n#include \"emit.h\"\n#include \"../targets/c/foo.h\"\n"
        "#include \"cuda_emitters.h\"\nif (t == TARGET_C) {}\n#include \"ir.h\"\n";
    cr_assert_eq(target_references("x.c", text, &headers, msg, sizeof msg), 4, "%s", msg);
    cr_assert_str_eq(msg,
                     "x.c:2: #include \"emit.h\"\nx.c:3: #include \"../targets/c/foo.h\"\n"
                     "x.c:4: #include \"cuda_emitters.h\"\nx.c:5: if (t == TARGET_C) {}\n");
}

/* ---- math in scalar text: neutral names, each target's spelling ---- */

/* The functions scalar text t calls that are not in op_math_names, appended to msg. */
static int foreign_calls(const char *what, const char *t, char *msg, size_t cap) {
    int bad = 0;
    for (const char *p = t; p && *p; p++) {
        if (!(*p == '_' || (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z'))) continue;
        if (p > t && (p[-1] == '_' || (p[-1] >= 'a' && p[-1] <= 'z') || (p[-1] >= 'A' && p[-1] <= 'Z') ||
                      (p[-1] >= '0' && p[-1] <= '9')))
            continue;
        size_t n = 0;
        while (p[n] == '_' || (p[n] >= 'a' && p[n] <= 'z') || (p[n] >= 'A' && p[n] <= 'Z') ||
               (p[n] >= '0' && p[n] <= '9'))
            n++;
        if (p[n] != '(') continue;
        int known = 0;
        for (int i = 0; op_math_names[i]; i++)
            known |= strlen(op_math_names[i]) == n && !strncmp(p, op_math_names[i], n);
        if (!known) {
            size_t used = strlen(msg);
            snprintf(msg + used, cap - used, "%s calls %.*s\n", what, (int)n, p);
            bad++;
        }
    }
    return bad;
}

Test(targets, scalar_text_calls_only_neutral_math_names) {
    char msg[2048] = "";
    int bad = 0, calls = 0;
    for (int op = 0; op < OP_COUNT; op++) {
        const OpRules *r = op_info[op].rules;
        const char *texts[] = {r->expr,         r->red_init,     r->red_step, r->red_fin,
                               r->red_pre_init, r->red_pre_step, r->gen_expr};
        for (size_t i = 0; i < sizeof texts / sizeof texts[0]; i++) {
            bad += foreign_calls(op_info[op].name, texts[i], msg, sizeof msg);
            calls += texts[i] && op_text_calls_math(texts[i]);
        }
    }
    cr_assert_eq(bad, 0, "%s", msg);
    cr_assert_eq(calls, 18,
                 "texts calling math: %d (exp log sqrt rsqrt tanh sigmoid elu elu_slope gelu gelu_slope, "
                 "abs sin cos pow softplus, round_bf16, logsumexp's step and final value)",
                 calls);
    cr_assert_eq(foreign_calls("x", "expf(%0) + exp(%1) + my_exp(%0)", msg, sizeof msg), 2);
}

Test(targets, every_target_spells_every_math_name) {
    Arena a = {0};
    for (int i = 0; targets[i]; i++) {
        EmitCtx e = {.arena = &a, .target = targets[i]};
        for (int k = 0; op_math_names[k]; k++) {
            const char *call = arena_printf(&a, "%s(x)", op_math_names[k]);
            const char *s = target_math(&e, call);
            cr_expect_str_neq(s, call, "%s leaves %s as it is", targets[i]->name, call);
            cr_expect(!op_text_calls_math(s), "%s: %s -> %s", targets[i]->name, call, s);
        }
    }
    EmitCtx c = {.arena = &a, .target = &target_c};
    cr_assert_str_eq(target_math(&c, "(1.0f / (1.0f + exp(-v3))) + my_exp(x) + expo(y) + t_exp[i] + sqrt(log(z))"),
                     "(1.0f / (1.0f + mlc_expf(-v3))) + my_exp(x) + expo(y) + t_exp[i] + sqrtf(logf(z))");
    cr_assert(op_text_calls_math("(1.0f / sqrt(%0))"));
    cr_assert(!op_text_calls_math("(%0 > 0.0f ? %0 : 0.0f)"));
    cr_assert(!op_text_calls_math("t_exp(%0)"));
    arena_free(&a);
}

/* ---- the per-element loop, as each target writes it ---- */

/* What `body` writes inside node `id`'s loop l on target t: the function's text, then
 * (CUDA) the kernels', then (CUDA) the call's preparation. */
static char *loop_text(const Target *t, const Graph *g, const char **buf, ElemLoop *l, int id) {
    Arena a = {0};
    FILE *body = tmpfile(), *decls = tmpfile(), *prep = tmpfile();
    cr_assert(body && decls && prep);
    EmitCtx e = {.arena = &a, .g = g, .target = t, .body = body, .decls = decls, .prep = prep, .indent = 1, .buf = buf};
    loop_begin(&e, id, l);
    emit_math(&e, "y[i] = sqrt(%s[o]) * lr_scale;", buf[0]);
    loop_end(&e, id, l);
    char *out = malloc(8192);
    size_t n = 0;
    FILE *parts[3] = {body, decls, prep};
    for (int k = 0; k < 3; k++) {
        rewind(parts[k]);
        n += fread(out + n, 1, 4000, parts[k]);
        fclose(parts[k]);
    }
    out[n] = 0;
    arena_free(&a);
    return out;
}

Test(targets, elementwise_loop_on_each_target) {
    Arena a = {0};
    Graph *g = graph_new(&a, MODE_TRAIN, 4);
    int64_t d[2] = {3, 5};
    int x = graph_add_source(g, OP_param, shape_make(2, d, 0), DT_F32, "w", NULL);
    int y = graph_add(g, OP_transpose, &x, 1, ATTRS(AV(A_PERM, ((AttrVal){.perm = {1, 0}}))), NULL);
    const char *buf[2] = {"p_w", "t1"};
    ElemLoop l = {.rank = 2, .size = {"3", "B*5"}, .var = {"o", "i"}, .par = LOOP_SERIAL};
    l.scalar[l.nscalar++] = (LoopScalar){"float", "lr_scale", "lr * 2.0f", 1};
    l.scalar[l.nscalar++] = (LoopScalar){"float", "k", "0.5f", 0};
    l.buf[l.nbuf++] = (LoopBuf){"y", y, 1};
    char *c = loop_text(&target_c, g, buf, &l, y);
    cr_assert_str_eq(c,
                     "    {\n"
                     "        const float lr_scale = lr * 2.0f;\n"
                     "        const float k = 0.5f;\n"
                     "        float *restrict y = t1;\n"
                     "        for (long o = 0; o < (long)(3); o++)\n"
                     "            for (long i = 0; i < (long)(B*5); i++) {\n"
                     "                y[i] = sqrtf(p_w[o]) * lr_scale;\n"
                     "            }\n"
                     "    }\n");
    free(c);
    char *cu = loop_text(&target_cuda, g, buf, &l, y);
    cr_assert_str_eq(
        cu,
        "    k0_transpose<<<mlc_grid((3) * (B*5)), MLC_BLOCK, 0, stream>>>(B, t1, p_w, self->dev_scalars);\n"
        "    MLC_LAUNCH_CHECK(stream);\n"
        "/* %1 = transpose -> f32[5, 3] */\n"
        "static __global__ void k0_transpose(const long B, float *t1, const float *p_w, const mlc_scalar *sc_) {\n"
        "    (void)B;\n"
        "    const long count_ = (long)((3) * (B*5));\n"
        "    for (long k_ = blockIdx.x * (long)blockDim.x + threadIdx.x; k_ < count_; k_ += (long)gridDim.x * blockDim.x) {\n"
        "        const float lr_scale = sc_[0].f;\n"
        "        const float k = 0.5f;\n"
        "        float *const y = t1;\n"
        "        long r_ = k_;\n"
        "        const long i = r_ % (long)(B*5); r_ /= (long)(B*5);\n"
        "        const long o = r_;\n"
        "        y[i] = sqrtf(p_w[o]) * lr_scale;\n"
        "    }\n"
        "}\n"
        "\n"
        "    self->scalars[0].f = lr * 2.0f; /* lr_scale */\n");
    free(cu);
    /* a parallel flat loop on C */
    ElemLoop f = {.rank = 1, .size = {"B*5"}, .var = {"i"}, .par = LOOP_PARALLEL_SIMD};
    f.scalar[f.nscalar++] = (LoopScalar){"float", "lr_scale", "lr_scale", 1};
    char *p = loop_text(&target_c, g, buf, &f, y);
    cr_assert_str_eq(p,
                     "    #pragma omp parallel for simd if (parallel: (B*5) > 32768)\n"
                     "    for (long i = 0; i < (long)(B*5); i++) {\n"
                     "        y[i] = sqrtf(p_w[o]) * lr_scale;\n"
                     "    }\n");
    free(p);
    arena_free(&a);
}
