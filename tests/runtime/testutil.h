/* testutil.h - small file helpers shared by the runtime tests (temp dirs, whole-file
 * read/write). Header-only: each test executable includes it once. */
#ifndef MLCRT_TESTUTIL_H
#define MLCRT_TESTUTIL_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mlc_model.h"
#include "trainer.h"

/* Everything the helpers (and tests, through tu_track) allocate is released at exit, so
 * sanitizer builds report only leaks of the code under test. */
typedef struct tu_owned {
    void *p;
    void (*release)(void *);
} tu_owned;
static tu_owned tu_owned_list[256];
static int tu_owned_n;

static void tu_release_all(void) {
    while (tu_owned_n > 0) {
        tu_owned *o = &tu_owned_list[--tu_owned_n];
        o->release(o->p);
    }
}

/* Registers p to be released by release(p) at exit; returns p. */
static inline void *tu_track(void *p, void (*release)(void *)) {
    if (tu_owned_n == 0) atexit(tu_release_all);
    if (!p || tu_owned_n == (int)(sizeof tu_owned_list / sizeof tu_owned_list[0])) abort();
    tu_owned_list[tu_owned_n].p = p;
    tu_owned_list[tu_owned_n].release = release;
    tu_owned_n++;
    return p;
}

/* A fresh directory under /tmp (name freed at exit). */
static inline char *tu_tmpdir(void) {
    char *d = tu_track(malloc(64), free);
    if (!d) abort();
    strcpy(d, "/tmp/mlcrt-test-XXXXXX");
    if (!mkdtemp(d)) abort();
    return d;
}

static inline char *tu_path(const char *dir, const char *name) {
    size_t n = strlen(dir) + strlen(name) + 2;
    char *p = tu_track(malloc(n), free);
    if (!dir || !name) abort();
    snprintf(p, n, "%s/%s", dir, name);
    return p;
}

static inline uint8_t *tu_read(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    *len = 0;
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *b = tu_track(malloc((size_t)n + 1), free);
    if (fread(b, 1, (size_t)n, f) != (size_t)n) abort();
    fclose(f);
    *len = (size_t)n;
    return b;
}

static inline void tu_write(const char *path, const void *p, size_t n) {
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(p, 1, n, f) != n) abort();
    fclose(f);
}

static inline void tu_rmrf(const char *dir) {
    char cmd[256];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0) { /* best effort */
    }
}

/* Runs the trainer (mlcrt_main_io) in-process on a NULL-terminated argument list, with
 * argv[0] = prog, capturing its exit status, stdout and stderr. */
typedef struct run_result {
    int status;
    char out[32768], err[2048];
} run_result;

static inline void tu_slurp(FILE *f, char *buf, size_t cap) {
    size_t n = 0;
    if (f) {
        rewind(f);
        n = fread(buf, 1, cap - 1, f);
        fclose(f);
    }
    buf[n] = '\0';
}

static inline void tu_run(run_result *r, const mlc_model_api *api, const char *prog, const char *const *args) {
    char *argv[64];
    int argc = 0;
    argv[argc++] = (char *)prog;
    while (*args && argc < 63) argv[argc++] = (char *)*args++;
    argv[argc] = NULL;
    FILE *out = tmpfile(), *err = tmpfile();
    r->status = out && err ? mlcrt_main_io(argc, argv, api, out, err) : -1;
    tu_slurp(out, r->out, sizeof r->out);
    tu_slurp(err, r->err, sizeof r->err);
}

/* Trainer output without its timing fields (from "  time" to the end of each line), so
 * two runs' epoch lines can be compared exactly. */
static inline void tu_strip_times(const char *in, char *out, size_t cap) {
    size_t k = 0;
    while (*in && k + 1 < cap) {
        const char *t = strstr(in, "  time ");
        const char *nl = strchr(in, '\n');
        if (!nl) nl = in + strlen(in);
        const char *stop = t && t < nl ? t : nl;
        while (in < stop && k + 1 < cap) out[k++] = *in++;
        if (k + 1 < cap) out[k++] = '\n';
        in = *nl ? nl + 1 : nl;
    }
    out[k] = '\0';
}

#endif
