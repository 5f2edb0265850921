/* ctest_util.h - helpers shared by the compiler tests: reading files, compiling a .mdl
 * through the library with diagnostics captured, golden-file comparison, temp dirs and
 * running commands. Header-only (static functions); each test executable includes it once.
 *
 * Paths come from meson: MLC_SOURCE_ROOT (the project) and MLC_TEST_DIR (this folder). */
#ifndef MLC_CTEST_UTIL_H
#define MLC_CTEST_UTIL_H

#include <errno.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "ast.h"
#include "model.h"

#ifndef MLC_SOURCE_ROOT
#error "MLC_SOURCE_ROOT must be defined (tests/compiler/meson.build)"
#endif
#ifndef MLC_TEST_DIR
#error "MLC_TEST_DIR must be defined (tests/compiler/meson.build)"
#endif

/* text with its first `from` replaced by `to` (malloc'd), or NULL when from is absent:
 * a sample under another name (`model mlp\n` -> `model node\n`). */
static inline char *ct_replace_first(const char *text, const char *from, const char *to) {
    const char *at = strstr(text, from);
    if (!at) return NULL;
    size_t cap = strlen(text) + strlen(to) + 1;
    char *r = malloc(cap);
    if (r) snprintf(r, cap, "%.*s%s%s", (int)(at - text), text, to, at + strlen(from));
    return r;
}

/* Whole file as a NUL-terminated string (malloc'd), or NULL. */
static inline char *ct_read_file(const char *path, size_t *len_out) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    size_t cap = 4096, len = 0;
    char *buf = malloc(cap);
    size_t n;
    while (buf && (n = fread(buf + len, 1, cap - len - 1, f)) > 0) {
        len += n;
        if (cap - len < 2) {
            char *nb = realloc(buf, cap *= 2);
            if (!nb) free(buf);
            buf = nb;
        }
    }
    fclose(f);
    if (!buf) return NULL;
    buf[len] = 0;
    if (len_out) *len_out = len;
    return buf;
}

static inline int ct_write_file(const char *path, const char *text) {
    FILE *f = fopen(path, "wb");
    if (!f) return -1;
    size_t n = strlen(text);
    int ok = fwrite(text, 1, n, f) == n;
    return fclose(f) == 0 && ok ? 0 : -1;
}

static inline const char *ct_basename(const char *p) {
    const char *s = strrchr(p, '/');
    return s ? s + 1 : p;
}

/* The result of compiling one .mdl through the library. */
typedef struct CtCompile {
    ModelIR *m;  /* NULL when a diagnostic stopped compilation */
    char *diag;  /* everything printed through diag_out (malloc'd, maybe "") */
    char *dump;  /* what the DumpOptions printed (malloc'd, maybe "") */
    int errored; /* a diagnostic longjmp'd out */
} CtCompile;

/* Everything after setjmp happens in here, like compiler/driver/main.c's compile(), so no local
 * of the caller changes between setjmp and longjmp. */
static inline ModelIR *ct_compile_inner(Arena *a, const SrcFile *src, const DumpOptions *d, const CompileOptions *o,
                                        int *errored) {
    jmp_buf on_error;
    if (!DIAG_TRY(on_error)) {
        *errored = 1;
        return NULL;
    }
    Program *prog = parse_program(a, src);
    return compile_model_opts(a, prog, o, d);
}

/* Compiles `text` as a file named `name` (diagnostics print that name). The arena and the
 * SrcFile must outlive the result's ModelIR; the caller owns them. `want` selects dumps
 * (lower/autodiff/final flags; out is set here); `o` is what compile_model_opts takes. */
static inline CtCompile ct_compile_with(Arena *a, const SrcFile *src, DumpOptions want, const CompileOptions *o) {
    CtCompile r = {0};
    size_t dl = 0, ul = 0;
    FILE *diag = open_memstream(&r.diag, &dl);
    FILE *dump = open_memstream(&r.dump, &ul);
    want.out = dump;
    diag_out = diag;
    r.m = ct_compile_inner(a, src, &want, o, &r.errored);
    diag_jmp = NULL;
    diag_out = NULL;
    fclose(diag);
    fclose(dump);
    return r;
}

/* For the C target: `batch` (0: the .mdl's) and `mem_budget` (bytes, 0: none) are mlc's
 * --batch and --mem-budget. */
static inline CtCompile ct_compile_opts(Arena *a, const SrcFile *src, DumpOptions want, int batch, int64_t mem_budget) {
    CompileOptions o = {.batch = batch, .mem_budget = mem_budget, .target = TARGET_C};
    return ct_compile_with(a, src, want, &o);
}

static inline CtCompile ct_compile(Arena *a, const SrcFile *src, DumpOptions want) {
    return ct_compile_opts(a, src, want, 0, 0);
}

static inline void ct_compile_free(CtCompile *r) {
    free(r->diag);
    free(r->dump);
    r->diag = r->dump = NULL;
}

/* Text for the generated-model drivers the tests compile: inside main(), with `api` and
 * the model `m`, prints each persistent tensor (parameters, optimizer state, running
 * statistics) on a line, its name then its values exactly (%a). */
#define CT_DRIVER_PRINT_TENSORS                                                 \
    "    for (int i = 0; i < api->n_tensors; i++) {\n"                          \
    "        const mlc_tensor_desc *t = &api->tensors[i];\n"                    \
    "        float *v = malloc(sizeof(float) * (size_t)t->numel);\n"            \
    "        api->read_tensor(m, i, v);\n"                                      \
    "        printf(\"%s\", t->name);\n"                                        \
    "        for (long long j = 0; j < t->numel; j++) printf(\" %a\", v[j]);\n" \
    "        printf(\"\\n\");\n"                                                \
    "        free(v);\n"                                                        \
    "    }\n"

/* Loads a file into a SrcFile named by its basename (stable across checkouts). */
static inline SrcFile *ct_load_src(const char *path) {
    char *text = ct_read_file(path, NULL);
    if (!text) return NULL;
    SrcFile *f = srcfile_from_string(ct_basename(path), text);
    free(text);
    return f;
}

static inline int ct_update_golden(void) {
    const char *e = getenv("MLC_UPDATE_GOLDEN");
    return e && *e && strcmp(e, "0");
}

/* Compares actual text with the golden file at `path`. Returns 0 when equal. On a
 * mismatch writes to `msg` the first differing line (number, expected, actual) in a
 * unified-diff-like form with a little context. With MLC_UPDATE_GOLDEN=1 the golden is
 * (re)written instead and 0 returned. */
static inline int ct_golden_compare(const char *path, const char *actual, char *msg, size_t cap) {
    if (ct_update_golden()) {
        if (ct_write_file(path, actual)) {
            snprintf(msg, cap, "cannot write golden %s: %s", path, strerror(errno));
            return 1;
        }
        fprintf(stderr, "updated golden %s\n", path);
        return 0;
    }
    char *exp = ct_read_file(path, NULL);
    if (!exp) {
        snprintf(msg, cap, "missing golden %s (run with MLC_UPDATE_GOLDEN=1 to create it)", path);
        return 1;
    }
    if (!strcmp(exp, actual)) {
        free(exp);
        return 0;
    }
    /* find the first differing line */
    const char *a = exp, *b = actual;
    int line = 1;
    const char *la = a, *lb = b;
    while (*a && *a == *b) {
        if (*a == '\n') {
            line++;
            la = a + 1;
            lb = b + 1;
        }
        a++, b++;
    }
    const char *ea = strchr(la, '\n'), *eb = strchr(lb, '\n');
    int na = ea ? (int)(ea - la) : (int)strlen(la), nb = eb ? (int)(eb - lb) : (int)strlen(lb);
    /* one line of context before */
    const char *ctx = NULL;
    int nctx = 0;
    if (la > exp) {
        const char *p = la - 1;
        while (p > exp && p[-1] != '\n') p--;
        ctx = p;
        nctx = (int)(la - 1 - p);
    }
    snprintf(msg, cap,
             "golden mismatch: %s\n--- %s (expected)\n+++ actual\n@@ line %d @@\n%s%.*s%s-%.*s%s\n+%.*s%s\n"
             "(MLC_UPDATE_GOLDEN=1 regenerates the goldens)",
             path, path, line, ctx ? " " : "", nctx, ctx ? ctx : "", ctx ? "\n" : "", na, la,
             *la ? "" : "<end of file>", nb, lb, *lb ? "" : "<end of output>");
    free(exp);
    return 1;
}

/* A fresh temp directory (malloc'd path). */
static inline char *ct_tmpdir(const char *tag) {
    const char *t = getenv("TMPDIR");
    char *d = malloc(512);
    snprintf(d, 512, "%s/mlc-%s-XXXXXX", t && *t ? t : "/tmp", tag);
    if (!mkdtemp(d)) {
        free(d);
        return NULL;
    }
    return d;
}

/* Runs argv (execvp), stdout+stderr captured into *out (malloc'd, NUL-terminated) when
 * out != NULL, and their byte count into *out_len when that is not NULL (the output may
 * hold NUL bytes: a byte-level language model's sample). Returns the exit status,
 * 128+signal when killed, -1 when it could not run. */
static inline int ct_run_n(char *const *argv, char **out, size_t *out_len) {
    int pfd[2];
    if (out && pipe(pfd)) return -1;
    pid_t pid = fork();
    if (pid < 0) return -1;
    if (pid == 0) {
        if (out) {
            dup2(pfd[1], 1);
            dup2(pfd[1], 2);
            close(pfd[0]);
            close(pfd[1]);
        }
        execvp(argv[0], argv);
        fprintf(stderr, "cannot run %s: %s\n", argv[0], strerror(errno));
        _exit(127);
    }
    if (out) {
        close(pfd[1]);
        size_t cap = 4096, len = 0;
        char *buf = malloc(cap);
        ssize_t n;
        while ((n = read(pfd[0], buf + len, cap - len - 1)) > 0) {
            len += (size_t)n;
            if (cap - len < 2) buf = realloc(buf, cap *= 2);
        }
        close(pfd[0]);
        buf[len] = 0;
        *out = buf;
        if (out_len) *out_len = len;
    }
    int st;
    if (waitpid(pid, &st, 0) < 0) return -1;
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + (WIFSIGNALED(st) ? WTERMSIG(st) : 0);
}
static inline int ct_run(char *const *argv, char **out) { return ct_run_n(argv, out, NULL); }

/* rm -rf of a directory we created (one level deep: the tests write plain files). */
static inline void ct_rmdir(const char *dir) {
    char *argv[] = {"rm", "-rf", (char *)dir, NULL};
    if (dir) ct_run(argv, NULL);
}

#endif
