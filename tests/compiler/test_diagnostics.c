/* test_diagnostics.c - the exact text of user errors, and a no-crash sweep.
 *
 * 1. Each tests/compiler/errors/NAME.mdl is compiled through the library (parse_program +
 *    compile_model under DIAG_TRY, diag_out = an open_memstream); the whole diagnostic text
 *    must equal errors/NAME.err (location, message, source line, caret, hint, notes).
 *    MLC_UPDATE_GOLDEN=1 rewrites the .err files from the current output.
 * 2. No-crash sweep: every line prefix of samples/mlp.mdl and the test models, every
 *    single-token deletion and duplication, and every number replaced by an edge value
 *    (0, -1, 1, 3.5, 99999999999, 1e300) must either compile or stop with a
 *    diagnostic; never abort, crash, hang or exit without a message. Each input runs in a
 *    forked child so one crash does not hide the others; failures print the exact input. */
#include <criterion/criterion.h>
#include <ctype.h>
#include <dirent.h>
#include <signal.h>

#include "ctest_util.h"

/* ---- 1. exact diagnostics ---- */

/* Every case the suite promises; each must exist with its .err. */
// clang-format off
static const char *const required[] = {
    "unknown_op",      /* misspelled relu, with did-you-mean */
    "unknown_name",    /* unknown name, with did-you-mean */
    "add_shape",       /* broadcast mismatch in add: both shapes printed */
    "matmul_inner",    /* matmul inner dimensions */
    "matmul_batch",        /* matmul batch dimensions that do not broadcast */
    "reshape_batch_part",  /* reshape to B / 2: not B times a whole number */
    "output_merged_batch", /* an output [B*8, 4]: the batch must be on its own */
    "conv_merged_batch",   /* conv2d of [B*2, C, H, W] */
    "ce_tokens",           /* per-token cross_entropy with labels of another length */
    "arg_type",        /* wrong argument type */
    "missing_arg",     /* missing argument */
    "unknown_keyword", /* unknown keyword argument, with suggestion */
    "loss_not_scalar", /* loss must be a scalar */
    "in_block",        /* error inside a block: note naming the call site */
    "nested_block",    /* two levels of blocks: two notes */
    "param_twice",     /* parameter defined twice */
    "input_twice",     /* input declared twice: where the first one is */
    "dense_twice",     /* two dense layers with the same name */
    "train_key",       /* unknown train setting */
    "syntax",          /* a syntax error from the parser */
    "int_overflow",     /* 2^32 * 2^32 in an argument: overflow, not a wrapped size */
    "int_div_overflow", /* INT64_MIN / -1 */
    "dim_too_large",    /* an input dimension past the documented limit */
    "tensor_too_large", /* a parameter whose element count passes the limit */
    "conv_too_large",   /* an op whose result passes the limit */
    "conv_scratch_too_large", /* a dilated conv's padded scratch per thread passes the limit */
    "floordiv_number",  /* // on a number: integers only, with a hint */
    "for_not_list",     /* for over a number: what to write instead */
    "dim_not_integer",  /* a parameter dimension computed to a number, inside a block */
    "recursion",        /* unbounded recursion: one counted note, not 63 */
    "recursion_default", /* a default that calls its own block: the same limit, not a crash */
    "block_no_return",  /* a call whose path has no return: the note names that call */
    "unknown_keyword_list", /* no near name: the hint lists the valid ones */
    "attention_shape",  /* attention's q and k of different widths: all three shapes */
    "attention_causal", /* causal = 1: a boolean expected */
    "nested_calls_steps", /* blocks nested 20 deep, no layers: the step limit; 3 of 20 notes */
    "nested_calls_nodes", /* the same with a layer each: the node limit */
};
// clang-format on

static void check_error_file(const char *stem) {
    char mdl[1024], err[1024], msg[4096];
    snprintf(mdl, sizeof mdl, "%s/errors/%s.mdl", MLC_TEST_DIR, stem);
    snprintf(err, sizeof err, "%s/errors/%s.err", MLC_TEST_DIR, stem);
    SrcFile *src = ct_load_src(mdl);
    cr_assert_not_null(src, "cannot read %s", mdl);
    Arena arena = {0};
    CtCompile r = ct_compile(&arena, src, (DumpOptions){0});
    cr_expect(r.errored, "%s: compiled without an error", mdl);
    cr_expect_null(r.m);
    cr_expect_neq(strlen(r.diag), 0, "%s: no diagnostic text", mdl);
    int bad = ct_golden_compare(err, r.diag, msg, sizeof msg);
    char *got = strdup(r.diag);
    ct_compile_free(&r);
    arena_free(&arena);
    srcfile_free(src);
    cr_assert_eq(bad, 0, "%s\nfull output:\n%s", msg, got);
    free(got);
}

Test(diagnostics, required_cases) {
    for (size_t i = 0; i < sizeof required / sizeof required[0]; i++) check_error_file(required[i]);
}

/* Any further .mdl in errors/ is checked too, and every .mdl must have its .err. */
Test(diagnostics, all_error_files) {
    DIR *d = opendir(MLC_TEST_DIR "/errors");
    cr_assert_not_null(d);
    struct dirent *e;
    int n = 0;
    while ((e = readdir(d))) {
        size_t l = strlen(e->d_name);
        if (l < 5 || strcmp(e->d_name + l - 4, ".mdl")) continue;
        char stem[256];
        snprintf(stem, sizeof stem, "%.*s", (int)(l - 4), e->d_name);
        check_error_file(stem);
        n++;
    }
    closedir(d);
    cr_assert_geq(n, (int)(sizeof required / sizeof required[0]));
}

/* Diagnostics from a string, for the few cases best written inline. */
static char *diag_of(const char *text) {
    SrcFile *src = srcfile_from_string("t.mdl", text);
    Arena arena = {0};
    CtCompile r = ct_compile(&arena, src, (DumpOptions){0});
    char *out = strdup(r.errored ? r.diag : "<compiled>");
    ct_compile_free(&r);
    arena_free(&arena);
    srcfile_free(src);
    return out;
}

Test(diagnostics, whole_file_errors) {
    char *s = diag_of("model m\ninput x: f32[B, 4]\n");
    cr_expect_str_eq(s, "t.mdl: error: the model has neither an 'output' nor a 'loss' statement\n");
    free(s);
    s = diag_of("model m\ninput x: f32[B, 4]\ninput y: i32[B]\noutput dense(x, 3)\n");
    cr_expect_str_eq(s, "t.mdl: error: the model has no 'loss' statement, so it cannot be trained\n");
    free(s);
}

/* Outputs: [B, ...] f32 tensors, each name once; a model needs one. */
Test(diagnostics, output_errors) {
    const char *head = "model m\ninput x: f32[B, 4]\ninput y: i32[B]\nl = dense(x, 3)\n";
    char src[512];
    snprintf(src, sizeof src, "%soutput mean(l, axis = 0)\nloss cross_entropy(l, y)\n", head);
    char *s = diag_of(src);
    cr_expect_str_eq(s,
                     "t.mdl:5:8: error: an output must be f32[B, ...] or i32[B, ...] (the batch first), found f32[3]\n"
                     "    5 | output mean(l, axis = 0)\n      |        ^~~~\n");
    free(s);
    snprintf(src, sizeof src, "%soutput l\noutput l\nloss cross_entropy(l, y)\n", head);
    s = diag_of(src);
    cr_expect_str_eq(s, "t.mdl:6:1: error: 'l' is an output twice\n    6 | output l\n      | ^~~~~~\n");
    free(s);
    snprintf(src, sizeof src, "%sloss cross_entropy(l, y)\n", head);
    s = diag_of(src);
    cr_expect_str_eq(s, "t.mdl: error: the model has no 'output' statement\n");
    free(s);
}

/* The first line of the diagnostic for `body` between a header and trailer that use h. */
static char *first_line_of(const char *body) {
    char src[2048];
    snprintf(src, sizeof src, "model m\ninput x: f32[B, 4]\ninput y: i32[B]\n%s\noutput h\nloss cross_entropy(h, y)\n",
             body);
    char *s = diag_of(src);
    s[strcspn(s, "\n")] = 0;
    return s;
}

/* range's arguments are named as the docs' forms name them (range(n), range(start, stop,
 * step)); a keyword cannot say which is which, so none is taken; its limit is a range's, not
 * a loop's (a for over a longer list literal runs). */
Test(diagnostics, range_arguments) {
    static const char *const cases[][2] = {
        {"for n in range(2.0) { }\nh = dense(x, 3)",
         "t.mdl:4:16: error: range: argument 'n' must be an integer, found a number"},
        {"for n in range(0, 2.0) { }\nh = dense(x, 3)",
         "t.mdl:4:19: error: range: argument 'stop' must be an integer, found a number"},
        {"for n in range(stop = 3) { }\nh = dense(x, 3)",
         "t.mdl:4:16: error: range takes its arguments by position, found 'stop ='"},
        {"for n in range() { }\nh = dense(x, 3)", "t.mdl:4:10: error: range: missing argument 'n'"},
        {"r = range(65537)\nh = dense(x, 3)",
         "t.mdl:4:5: error: range: 65537 items, more than the 65536 a range may have"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *s = first_line_of(cases[i][0]);
        cr_expect_str_eq(s, cases[i][1], "%s", cases[i][0]);
        free(s);
    }
}

/* A boolean is no integer: dense(x, true) is a misplaced flag, never 1 unit. Every integer
 * argument refuses it, and every flag refuses an integer. */
Test(diagnostics, booleans_are_not_integers) {
    static const char *const cases[][2] = {
        {"h = dense(x, true)", "t.mdl:4:14: error: dense: argument 'units' must be an integer, found a boolean"},
        {"h = dense(slice(x, 1, false, 3), 3)",
         "t.mdl:4:23: error: slice: argument 'start' must be an integer, found a boolean"},
        {"h = dense(sum(reshape(x, [B, 2, 2]), true), 3)",
         "t.mdl:4:38: error: sum: argument 'axis' must be an integer, found a boolean"},
        {"h = dense(concat([x, x], true), 3)",
         "t.mdl:4:26: error: concat: argument 'axis' must be an integer, found a boolean"},
        {"for n in range(true) { }\nh = dense(x, 3)",
         "t.mdl:4:16: error: range: argument 'n' must be an integer, found a boolean"},
        {"h = dense(mean(x, 1, 1), 3)",
         "t.mdl:4:22: error: mean: argument 'keepdims' must be true or false, found an integer"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *s = first_line_of(cases[i][0]);
        cr_expect_str_eq(s, cases[i][1], "%s", cases[i][0]);
        free(s);
    }
}

/* A keyword reaches every parameter of a block, the 70th too (the lookup once saw the first
 * 64 only: "block f has no parameter named 'p69'"). */
Test(diagnostics, keywords_reach_every_block_parameter) {
    char params[1024] = "", body[1200];
    for (int i = 0; i < 70; i++) snprintf(params + strlen(params), sizeof params - strlen(params), ", p%d = 1", i);
    snprintf(body, sizeof body, "block f(x%s) { return dense(x, p69 + p64) }\nh = f(x, p69 = 2, p64 = 3)", params);
    char *s = first_line_of(body);
    cr_expect_str_eq(s, "<compiled>");
    free(s);
}

/* A model whose layer is named with n letters, under "model NAME" (n_model letters of m). */
static char *named_layer_model(int n, int n_model) {
    char *src = malloc((size_t)n + (size_t)n_model + 256);
    cr_assert_not_null(src);
    size_t len = (size_t)sprintf(src, "model ");
    memset(src + len, 'm', (size_t)n_model), len += (size_t)n_model;
    len += (size_t)sprintf(src + len, "\ninput x: f32[B, 4]\ninput y: i32[B]\nl = dense(x, 3, name = \"");
    memset(src + len, 'a', (size_t)n), len += (size_t)n;
    strcpy(src + len, "\")\noutput l\nloss cross_entropy(l, y)\n");
    return src;
}

static void expect_diag_start(int n, int n_model, const char *want) {
    char *src = named_layer_model(n, n_model), *s = diag_of(src);
    cr_expect(!strncmp(s, want, strlen(want)), "%.300s", s);
    free(s), free(src);
}

/* A checkpoint stores a name after a u16 length (docs/checkpoint.md): a model whose
 * tensor or model name is longer compiled and trained, and then its trainer could not
 * save. Adam's state of layer NAME is NAME.weight.adam_m: NAME may have 65521 bytes. */
Test(diagnostics, checkpoint_name_limit) {
    expect_diag_start(65521, 1, "<compiled>");
    expect_diag_start(65522, 1,
                      "t.mdl:4:5: error: the tensor name "
                      "'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa...aaaaaaaaaa.weight.adam_m' "
                      "would have 65536 bytes, more than the 65535 a checkpoint can store (a shorter layer name?)\n");
    expect_diag_start(65536, 1, "t.mdl:4:5: error: the tensor name 'aaaaaaaa");
    expect_diag_start(1, 65536,
                      "t.mdl:1:7: error: the model name has 65536 bytes, more than the 65535 a checkpoint can store\n");
}

/* A successful compile prints nothing. */
Test(diagnostics, clean_compile_is_silent) {
    char *s = diag_of(
        "model m\ninput x: f32[B, 4]\ninput y: i32[B]\nlogits = dense(x, 3)\n"
        "output logits\nloss cross_entropy(logits, y)\n");
    cr_expect_str_eq(s, "<compiled>");
    free(s);
}

/* Reshapes that keep the batch outermost (only 1s before it) are views that keep each
 * sample whole, and compile; [2, B, 784] -> [B, 1568] and its kin are errors/reshape_batch_*. */
Test(diagnostics, reshape_batch_outermost_compiles) {
    static const char *const ok[] = {
        "reshape(reshape(image, [B * 784]), [B, 784])",
        "reshape(reshape(image, [B * 2, 392]), [B, 784])",
        "reshape(reshape(image, [1, B * 2, 392]), [B, 784])",
        "reshape(reshape(image, [B * 28, 28]), [B, 28, 28])",
    };
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        char src[512];
        snprintf(src, sizeof src,
                 "model m\ninput image: f32[B, 784]\ninput label: i32[B]\nh = flatten(%s)\n"
                 "logits = dense(h, 10)\noutput logits\nloss cross_entropy(logits, label)\n",
                 ok[i]);
        char *s = diag_of(src);
        cr_expect_str_eq(s, "<compiled>", "%s", ok[i]);
        free(s);
    }
}

/* A compile that succeeds with warnings: their text. */
static char *warnings_of(const char *text) {
    SrcFile *src = srcfile_from_string("t.mdl", text);
    Arena arena = {0};
    CtCompile r = ct_compile(&arena, src, (DumpOptions){0});
    cr_assert_not_null(r.m, "does not compile:\n%s", r.diag);
    char *out = strdup(r.diag);
    ct_compile_free(&r);
    arena_free(&arena);
    srcfile_free(src);
    return out;
}

/* A layer the loss does not depend on: one warning for its parameters, at the call, with
 * the block's call site; the model still compiles. */
Test(diagnostics, untrained_parameters_warn) {
    char *s = warnings_of(
        "model m\ninput x: f32[B, 4]\ninput y: i32[B]\n"
        "block head(x) {\n    return dense(x, 8)\n}\n"
        "unused = head(x)\nh = dense(x, 3)\noutput h\nloss cross_entropy(h, y)\n");
    cr_expect_str_eq(s,
                     "t.mdl:5:12: warning: the loss does not depend on 'head1.dense1.weight', 'head1.dense1.bias', "
                     "so training never changes them\n"
                     "    5 |     return dense(x, 8)\n"
                     "      |            ^~~~~\n"
                     "t.mdl:7:10: note: in block 'head' called from here\n"
                     "    7 | unused = head(x)\n"
                     "      |          ^~~~\n");
    free(s);
}

/* `freeze` that matches every parameter: a warning at the first pattern (the run trains
 * nothing, and `ema` averages nothing); freezing some of them says nothing. */
Test(diagnostics, freezing_every_parameter_warns) {
    const char *head =
        "model m\ninput x: f32[B, 4]\ninput y: i32[B]\nh = dense(relu(dense(x, 8, name = \"a\")), 3)\n"
        "output h\nloss cross_entropy(h, y)\n";
    char text[512];
    snprintf(text, sizeof text, "%strain { freeze = [\"a.*\", \"dense1.*\"] }\n", head);
    char *s = warnings_of(text);
    cr_expect_str_eq(s,
                     "t.mdl:7:19: warning: freeze: every parameter is frozen, so training changes none of them\n"
                     "    7 | train { freeze = [\"a.*\", \"dense1.*\"] }\n"
                     "      |                   ^~~~~\n");
    free(s);
    snprintf(text, sizeof text, "%strain { freeze = \"a.*\" }\n", head);
    s = warnings_of(text);
    cr_expect_str_eq(s, "");
    free(s);
}

/* An input neither the loss nor an output depends on: a warning at its name (the trainer
 * would refuse the model, its input matching no field of the data). An input only an
 * output reads, or only the loss, is used. */
Test(diagnostics, unused_input_warns) {
    char *s = warnings_of(
        "model m\ninput x: f32[B, 4]\ninput y: i32[B]\ninput extra: f32[B, 3]\n"
        "dead = dense(extra, 2)\nh = dense(x, 3)\noutput h\nloss cross_entropy(h, y)\n");
    cr_expect_str_eq(s,
                     "t.mdl:4:7: warning: input 'extra' is never used\n"
                     "    4 | input extra: f32[B, 3]\n"
                     "      |       ^~~~~\n"
                     "t.mdl:5:8: warning: the loss does not depend on 'dense1.weight', 'dense1.bias', so training "
                     "never changes them\n"
                     "    5 | dead = dense(extra, 2)\n"
                     "      |        ^~~~~\n");
    free(s);
    s = warnings_of(
        "model m\ninput x: f32[B, 4]\ninput y: i32[B]\ninput z: f32[B, 4]\n"
        "h = dense(x, 3)\noutput h\noutput z\nloss cross_entropy(h, y)\n");
    cr_expect_str_eq(s, "");
    free(s);
}

/* ---- 2. no-crash sweep ---- */

typedef enum Outcome { OK_COMPILED = 0, OK_DIAGNOSED = 1, BAD_SILENT = 2, BAD_CRASH = 3 } Outcome;

/* Child: compile; exit 10 compiled, 11 diagnosed, 12 stopped without text. Anything
 * else is a failure: a signal (abort from mlc_die, a segfault, the 20 s alarm) or another
 * exit status (e.g. a sanitizer's report, exit 1 from diag_error without DIAG_TRY). */
enum { EXIT_COMPILED = 10, EXIT_DIAGNOSED = 11, EXIT_SILENT = 12 };
static _Noreturn void child_compile(const char *text) {
    alarm(20);
    /* mlc_die prints to stderr: keep the sweep's output readable */
    if (!freopen("/dev/null", "w", stderr)) _exit(4);
    SrcFile *src = srcfile_from_string("fuzz.mdl", text);
    Arena arena = {0};
    CtCompile r = ct_compile(&arena, src, (DumpOptions){.after = DUMP_AFTER_ALL, .final = 1});
    int st = r.m ? EXIT_COMPILED : (r.errored && r.diag[0] ? EXIT_DIAGNOSED : EXIT_SILENT);
    _exit(st);
}

static Outcome try_child(void (*child)(const char *), const char *text, int *sig) {
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    cr_assert_geq(pid, 0);
    if (pid == 0) {
        child(text);
        _exit(EXIT_COMPILED);
    }
    int st;
    waitpid(pid, &st, 0);
    *sig = 0;
    if (WIFSIGNALED(st)) {
        *sig = WTERMSIG(st);
        return BAD_CRASH;
    }
    int code = WEXITSTATUS(st);
    if (code == EXIT_COMPILED) return OK_COMPILED;
    if (code == EXIT_DIAGNOSED) return OK_DIAGNOSED;
    if (code == EXIT_SILENT) return BAD_SILENT;
    *sig = -code; /* an unexpected exit status */
    return BAD_CRASH;
}

static Outcome try_input(const char *text, int *sig) { return try_child(child_compile, text, sig); }

/* Token spans of a .mdl text (names, numbers, strings, one-char punctuation); comments
 * and blanks are skipped. */
typedef struct Tok {
    int start, len;
} Tok;

static int tokenize(const char *s, Tok *t, int cap) {
    int n = 0, i = 0;
    while (s[i] && n < cap) {
        if (s[i] == '#') {
            while (s[i] && s[i] != '\n') i++;
            continue;
        }
        if (isspace((unsigned char)s[i])) {
            i++;
            continue;
        }
        int j = i;
        if (isalnum((unsigned char)s[i]) || s[i] == '_' || s[i] == '.') {
            while (isalnum((unsigned char)s[j]) || s[j] == '_' || s[j] == '.' ||
                   ((s[j] == '-' || s[j] == '+') && j > i && (s[j - 1] == 'e' || s[j - 1] == 'E') &&
                    isdigit((unsigned char)s[i])))
                j++;
        } else if (s[i] == '"') {
            j++;
            while (s[j] && s[j] != '"' && s[j] != '\n') j++;
            if (s[j] == '"') j++;
        } else {
            j++;
        }
        t[n].start = i;
        t[n].len = j - i;
        n++;
        i = j;
    }
    return n;
}

typedef struct Sweep {
    int inputs, compiled, diagnosed, bad;
} Sweep;

static void report(Sweep *sw, const char *what, const char *text, Outcome o, int sig) {
    if (o == OK_COMPILED) sw->compiled++;
    else if (o == OK_DIAGNOSED) sw->diagnosed++;
    else {
        sw->bad++;
        if (sw->bad <= 20)
            printf("NO-CRASH SWEEP FAILURE (%s): %s\n---- input ----\n%s\n---- end ----\n", what,
                   o == BAD_CRASH ? (sig == SIGALRM ? "hang (killed after 20 s)"
                                     : sig < 0      ? "unexpected exit status (sanitizer report?)"
                                                    : strsignal(sig))
                                  : "stopped without a diagnostic",
                   text);
    }
    sw->inputs++;
}

static void sweep_file(const char *path, Sweep *sw) {
    size_t len = 0;
    char *text = ct_read_file(path, &len);
    cr_assert_not_null(text, "cannot read %s", path);
    char *buf = malloc(2 * len + 16);
    int sig;
    char what[256];
    /* every prefix by lines (including the empty file) */
    for (size_t i = 0; i <= len; i++) {
        if (i != 0 && text[i - 1] != '\n' && i != len) continue;
        memcpy(buf, text, i);
        buf[i] = 0;
        snprintf(what, sizeof what, "%s: first %zu bytes", ct_basename(path), i);
        report(sw, what, buf, try_input(buf, &sig), sig);
    }
    /* token deletions and duplications */
    Tok toks[2048];
    int nt = tokenize(text, toks, 2048);
    for (int k = 0; k < nt; k++) {
        for (int dup = 0; dup < 2; dup++) {
            size_t a = (size_t)toks[k].start, l = (size_t)toks[k].len, o = 0;
            memcpy(buf, text, a + (dup ? l : 0));
            o = a + (dup ? l : 0);
            if (dup) buf[o++] = ' ';
            memcpy(buf + o, text + a + (dup ? 0 : l), len - a - (dup ? 0 : l));
            o += len - a - (dup ? 0 : l);
            buf[o] = 0;
            snprintf(what, sizeof what, "%s: token %d '%.*s' %s", ct_basename(path), k, (int)l, text + a,
                     dup ? "duplicated" : "deleted");
            report(sw, what, buf, try_input(buf, &sig), sig);
        }
    }
    /* every number replaced by an edge value (zero, negative, huge, fractional) */
    static const char *const edge[] = {"0", "-1", "1", "3.5", "99999999999", "1e300"};
    free(buf);
    buf = malloc(len + 64);
    for (int k = 0; k < nt; k++) {
        if (!isdigit((unsigned char)text[toks[k].start])) continue;
        for (size_t v = 0; v < sizeof edge / sizeof edge[0]; v++) {
            size_t a = (size_t)toks[k].start, l = (size_t)toks[k].len, el = strlen(edge[v]);
            memcpy(buf, text, a);
            memcpy(buf + a, edge[v], el);
            memcpy(buf + a + el, text + a + l, len - a - l + 1);
            snprintf(what, sizeof what, "%s: number %d '%.*s' -> %s", ct_basename(path), k, (int)l, text + a, edge[v]);
            report(sw, what, buf, try_input(buf, &sig), sig);
        }
    }
    free(buf);
    free(text);
}

Test(diagnostics, no_crash_sweep, .timeout = 600) {
    const char *files[] = {MLC_SOURCE_ROOT "/samples/mlp.mdl", MLC_TEST_DIR "/data/tiny.mdl",
                           MLC_TEST_DIR "/data/blocks.mdl", MLC_TEST_DIR "/data/adamw.mdl",
                           MLC_TEST_DIR "/data/seqops.mdl"};
    Sweep sw = {0};
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) sweep_file(files[i], &sw);
    printf("no-crash sweep: %d inputs, %d compiled, %d diagnosed, %d failures\n", sw.inputs, sw.compiled, sw.diagnosed,
           sw.bad);
    fflush(stdout);
    cr_expect_gt(sw.diagnosed, 0, "the mutations never produced an error: the sweep tests nothing");
    cr_expect_gt(sw.compiled, 0);
    cr_assert_eq(sw.bad, 0, "%d inputs crashed or stopped silently (printed above)", sw.bad);
}

/* The sweep's harness tells the outcomes apart: an abort (what mlc_die does) or a segfault
 * is a crash, an exit without text is silent, and real inputs of each good kind work. */
static void child_abort(const char *t) {
    (void)t;
    signal(SIGABRT, SIG_DFL);
    abort();
}
static void child_segv(const char *t) {
    (void)t;
    signal(SIGSEGV, SIG_DFL); /* not a sanitizer's handler */
    raise(SIGSEGV);
}
static void child_exit1(const char *t) {
    (void)t;
    _exit(1);
}
static void child_silent(const char *t) {
    (void)t;
    _exit(EXIT_SILENT);
}

Test(diagnostics, sweep_harness_detects_failures) {
    int sig;
    cr_assert_eq(try_child(child_abort, "", &sig), BAD_CRASH);
    cr_assert_eq(sig, SIGABRT);
    cr_assert_eq(try_child(child_segv, "", &sig), BAD_CRASH);
    cr_assert_eq(sig, SIGSEGV);
    cr_assert_eq(try_child(child_silent, "", &sig), BAD_SILENT);
    cr_assert_eq(try_child(child_exit1, "", &sig), BAD_CRASH);
    cr_assert_eq(sig, -1);
    cr_assert_eq(try_input("model m\ninput x: f32[B, 4]\ninput y: i32[B]\nl = dense(x, 3)\noutput l\n"
                           "loss cross_entropy(l, y)\n",
                           &sig),
                 OK_COMPILED);
    cr_assert_eq(try_input("model m\nloss (\n", &sig), OK_DIAGNOSED);
}
