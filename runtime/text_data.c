/* text_data.c - token corpora (a text file read as bytes, or train.bin/val.bin of uint16
 * ids), their train/validation splits and window gathering (text_data.h). */
#include "text_data.h"

#include "file_kind.h"
#include "io_bind.h"
#include "mlcrt_error.h"
#include "rng.h"

#include <errno.h>
#include <sys/stat.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int mlcrt_is_token_model(const mlc_model_api *api) {
    for (int i = 0; i < api->n_inputs; i++)
        if (api->inputs[i].dtype == MLC_I32 && api->inputs[i].numel > 1) return 1;
    return 0;
}

static int scores_fit(const mlc_io_desc *d, int64_t window) {
    return d->rank == 2 && d->dims[0] == window && d->dims[1] > 0;
}

int mlcrt_lm_shape_of(const mlc_model_api *api, mlcrt_lm_shape *s, char *msg, size_t cap) {
    mlcrt_binding b;
    int rc = mlcrt_bind_inputs(api, &b, msg, cap);
    if (rc) return rc;
    const mlc_io_desc *tok = &api->inputs[b.image_input];
    s->window = tok->numel;
    s->logits_output = -1;
    /* the scores the loss's cross_entropy reads; another output of the same shape (features,
     * a second head) would give a wrong vocabulary, and sample would draw from it */
    if (api->cls_output >= 0 && scores_fit(&api->outputs[api->cls_output], s->window))
        s->logits_output = api->cls_output;
    int fits = 0; /* else the only output that can hold per-token scores */
    for (int k = 0; k < api->n_outputs && s->logits_output < 0; k++) fits += scores_fit(&api->outputs[k], s->window);
    for (int k = 0; k < api->n_outputs && s->logits_output < 0 && fits == 1; k++)
        if (scores_fit(&api->outputs[k], s->window)) s->logits_output = k;
    if (fits > 1)
        return mlcrt_fail(msg, cap, MLCRT_EMISMATCH,
                          "model '%s' has %d outputs f32[%lld, *] and its loss is no cross_entropy of one of them: "
                          "which holds the per-token scores is unknown",
                          api->name, fits, (long long)s->window);
    if (s->logits_output < 0)
        return mlcrt_fail(msg, cap, MLCRT_EMISMATCH,
                          "model '%s' has no output of per-token scores f32[%lld, V] for its "
                          "input '%s' of %lld tokens",
                          api->name, (long long)s->window, tok->name, (long long)s->window);
    s->vocab = api->outputs[s->logits_output].dims[1];
    return MLCRT_OK;
}

/* The whole file at path, a regular file holding `what`, into *buf (*len bytes). A FIFO or
 * a device is refused unopened: /dev/zero would be read until memory runs out. */
static int read_file(const char *path, const char *what, uint8_t **buf, int64_t *len, char *msg, size_t cap) {
    int rc = mlcrt_check_regular(path, what, msg, cap);
    if (rc) return rc;
    FILE *f = fopen(path, "rb");
    if (!f) return mlcrt_fail(msg, cap, MLCRT_EIO, "%s: cannot open: %s", path, strerror(errno));
    size_t n = 0, alloc = 1 << 16;
    uint8_t *b = malloc(alloc);
    for (;;) {
        if (b && n == alloc) {
            uint8_t *nb = realloc(b, alloc *= 2);
            if (!nb) free(b);
            b = nb;
        }
        if (!b) {
            fclose(f);
            return mlcrt_fail(msg, cap, MLCRT_ENOMEM, "%s: out of memory after %zu bytes", path, n);
        }
        size_t got = fread(b + n, 1, alloc - n, f);
        n += got;
        if (got == 0) break;
    }
    int bad = ferror(f);
    fclose(f);
    if (bad) {
        free(b);
        return mlcrt_fail(msg, cap, MLCRT_EIO, "%s: read error", path);
    }
    *buf = b;
    *len = (int64_t)n;
    return MLCRT_OK;
}

/* MLCRT_OK when token i (id) is in the model's vocabulary, else a message naming it. */
static int check_vocab(const char *path, const char *what, int64_t i, unsigned id, int64_t vocab, char *msg,
                       size_t cap) {
    if (id < vocab) return MLCRT_OK;
    return mlcrt_fail(msg, cap, MLCRT_EMISMATCH, "%s: %s %lld is %u, expected ids below the model's vocabulary of %lld",
                      path, what, (long long)i, id, (long long)vocab);
}

/* A text file's split: bytes widened to uint16 tokens. The validation split is the last
 * n / 10 bytes (integer division), the training split the rest. */
static int load_text_file(const char *path, int val, const mlcrt_lm_shape *s, mlcrt_text *t, char *msg, size_t cap) {
    uint8_t *b = NULL;
    int64_t n = 0;
    int rc = read_file(path, "a text file", &b, &n, msg, cap);
    if (rc) return rc;
    int64_t need = 10 * (s->window + 1);
    if (n == 0) rc = mlcrt_fail(msg, cap, MLCRT_ETRUNC, "%s: empty file, expected text", path);
    else if (n < need)
        rc = mlcrt_fail(msg, cap, MLCRT_ETRUNC,
                        "%s: %lld bytes, expected at least %lld (its last 10 %% is the "
                        "validation split, which needs a window of T+1 = %lld tokens)",
                        path, (long long)n, (long long)need, (long long)(s->window + 1));
    for (int64_t i = 0; rc == MLCRT_OK && i < n; i++) /* both splits: the whole file */
        rc = check_vocab(path, "byte", i, b[i], s->vocab, msg, cap);
    int64_t train_n = n - n / 10, first = val ? train_n : 0;
    t->n_ids = val ? n - train_n : train_n;
    if (rc == MLCRT_OK && !(t->ids = malloc((size_t)t->n_ids * sizeof *t->ids)))
        rc = mlcrt_fail(msg, cap, MLCRT_ENOMEM, "%s: out of memory for %lld tokens", path, (long long)t->n_ids);
    for (int64_t i = 0; rc == MLCRT_OK && i < t->n_ids; i++) t->ids[i] = b[first + i];
    free(b);
    return rc;
}

/* DIR/train.bin or DIR/val.bin: little-endian uint16 ids. */
static int load_token_file(const char *dir, int val, const mlcrt_lm_shape *s, mlcrt_text *t, char *msg, size_t cap) {
    char path[4096];
    mlcrt_join_path(path, sizeof path, dir, val ? "val.bin" : "train.bin");
    uint8_t *b = NULL;
    int64_t n = 0;
    int rc = read_file(path, "a file of uint16 token ids", &b, &n, msg, cap);
    if (rc) return rc;
    if (n == 0) rc = mlcrt_fail(msg, cap, MLCRT_ETRUNC, "%s: empty file, expected uint16 token ids", path);
    else if (n % 2)
        rc = mlcrt_fail(msg, cap, MLCRT_EFORMAT, "%s: %lld bytes, expected uint16 token ids (an even size)", path,
                        (long long)n);
    else if (n / 2 < s->window + 1)
        rc = mlcrt_fail(msg, cap, MLCRT_ETRUNC, "%s: %lld tokens, expected at least a window of T+1 = %lld", path,
                        (long long)(n / 2), (long long)(s->window + 1));
    t->n_ids = n / 2;
    if (rc == MLCRT_OK && !(t->ids = malloc((size_t)t->n_ids * sizeof *t->ids)))
        rc = mlcrt_fail(msg, cap, MLCRT_ENOMEM, "%s: out of memory for %lld tokens", path, (long long)t->n_ids);
    for (int64_t i = 0; rc == MLCRT_OK && i < t->n_ids; i++) {
        t->ids[i] = (uint16_t)(b[2 * i] | (b[2 * i + 1] << 8));
        rc = check_vocab(path, "token", i, t->ids[i], s->vocab, msg, cap);
    }
    free(b);
    return rc;
}

int mlcrt_text_load(mlc_dataset *ds, const char *path, int val, const mlcrt_lm_shape *s, int64_t limit, char *msg,
                    size_t cap) {
    memset(ds, 0, sizeof *ds);
    struct stat st;
    if (stat(path, &st) != 0) /* names a dangling link as such */
        return mlcrt_check_regular(path, "a text file", msg, cap);
    mlcrt_text *t = calloc(1, sizeof *t);
    if (!t) return mlcrt_fail(msg, cap, MLCRT_ENOMEM, "%s: out of memory", path);
    t->window = s->window;
    int rc;
    if (S_ISDIR(st.st_mode)) {
        char p[4096];
        snprintf(p, sizeof p, "%s/train.bin", path);
        int has_train = stat(p, &st) == 0;
        snprintf(p, sizeof p, "%s/val.bin", path);
        rc = has_train && stat(p, &st) == 0
                 ? load_token_file(path, val, s, t, msg, cap)
                 : mlcrt_fail(msg, cap, MLCRT_EIO,
                              "%s: no token corpus here: expected a text file, or a directory "
                              "with train.bin and val.bin (uint16 token ids)",
                              path);
    } else {
        rc = load_text_file(path, val, s, t, msg, cap);
    }
    /* an epoch: as many windows as the split holds side by side */
    int64_t n = (t->n_ids - 1) / t->window;
    if (val && n > MLCRT_VAL_WINDOWS) n = MLCRT_VAL_WINDOWS;
    if (limit > 0 && n > limit) n = limit;
    if (rc == MLCRT_OK && val && !(t->starts = malloc((size_t)n * sizeof *t->starts)))
        rc = mlcrt_fail(msg, cap, MLCRT_ENOMEM, "%s: out of memory", path);
    for (int64_t i = 0; rc == MLCRT_OK && val && i < n; i++) /* evenly spaced, first and last */
        t->starts[i] = n > 1 ? i * (t->n_ids - 1 - t->window) / (n - 1) : 0;
    if (rc) {
        mlcrt_text_free(t);
        return rc;
    }
    ds->n = n;
    ds->sample_rank = 1;
    ds->sample_dims[0] = t->window;
    ds->sample_numel = t->window;
    ds->text = t;
    return MLCRT_OK;
}

int64_t mlcrt_text_window_start(uint64_t seed, uint64_t epoch, uint64_t index, int64_t n_starts) {
    static const uint64_t tag = 0x57494e444f5753ull; /* "WINDOWS" */
    uint32_t ctr[4] = {(uint32_t)index, (uint32_t)(index >> 32), (uint32_t)epoch, (uint32_t)(epoch >> 32)};
    uint64_t k = seed ^ tag;
    uint32_t key[2] = {(uint32_t)k, (uint32_t)(k >> 32)};
    uint32_t r[4];
    mlc_philox4x32_10(ctr, key, r);
    return (int64_t)((((uint64_t)r[0] << 32) | r[1]) % (uint64_t)n_starts);
}

void mlcrt_text_gather(const mlcrt_text *t, const int64_t *perm, int64_t start, int n, int32_t *bx, int32_t *by,
                       uint64_t seed, uint64_t epoch) {
    int64_t T = t->window;
    for (int i = 0; i < n; i++) {
        int64_t s = t->first + (perm ? perm[start + i] : start + i);
        int64_t w = t->starts ? t->starts[s] : mlcrt_text_window_start(seed, epoch, (uint64_t)s, t->n_ids - T);
        for (int64_t j = 0; j < T; j++) {
            bx[i * T + j] = t->ids[w + j];
            by[i * T + j] = t->ids[w + j + 1];
        }
    }
}

void mlcrt_text_free(mlcrt_text *t) {
    if (!t) return;
    free(t->ids);
    free(t->starts);
    free(t);
}
