/* ckpt.c - checkpoint save / load (see ckpt.h).
 *
 * File format, version 4. All integers little-endian; offsets are from the file start.
 *
 *   offset 0   magic        8 bytes  "MLCCKPT\0"
 *          8   version      u32      4
 *         12   header_bytes u32      bytes from offset 0 to the end of the tensor table
 *         16   model name   u16 length + bytes (no terminator)
 *              step         i64      optimizer step counter (api->get_step)
 *              epoch        i64      training position: epochs completed
 *              epoch_pos    i64      samples of the current epoch already trained on
 *              data_seed    u64      seed of the shuffle and augmentation streams
 *              train_n      i64      training samples per epoch (0: unknown)
 *              loss_sum     f64      sum of loss * batch size over the current epoch
 *              correct      i64      correctly classified training samples so far in it
 *              n_norm       u32      input normalisation: 0 none, else values per list
 *              norm_mean    f32[4]   --mean (unused entries 0)
 *              norm_std     f32[4]   --std (unused entries 0)
 *              run_start    i64      the step counter the run began at (0; after --load, the
 *                                    loaded counter): what the run's own steps count from
 *              count        u32      number of tensors
 *              count times:
 *                name       u16 length + bytes
 *                dtype      u8       0 = f32, 1 = i32 (mlc_dtype)
 *                rank       u8       0..MLC_MAX_RANK
 *                dims       i64[rank]
 *                offset     u64      where the tensor's data starts
 *                size       u64      data bytes = numel * 4
 *   zero padding up to a multiple of 64
 *   tensor data in table order, each starting at a multiple of 64 (zero padding
 *   between), elements as little-endian 4-byte words
 *   crc32        u32      zlib crc32 of every byte before it
 *
 * Nothing depends on time, paths or memory addresses, so identical model states give
 * byte-identical files. The loader insists on exactly this layout (offsets included),
 * rejects trailing bytes and verifies the CRC before looking at the model. Versions 3
 * (without run_start) and 2 (without n_norm, norm_mean, norm_std either) are still read:
 * no normalisation for 2; for both, the run's start is found from its position (trainer.c). */
#include "ckpt.h"

#include "atomic_file.h"
#include "file_kind.h"
#include "mlcrt_error.h"

#include <errno.h>
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <zlib.h>

static const char ckpt_magic[8] = {'M', 'L', 'C', 'C', 'K', 'P', 'T', '\0'};

/* step, epoch, epoch_pos, data_seed, train_n, loss_sum, correct: seven 8-byte fields. */
#define CKPT_STATE_BYTES 56
/* The data settings (version 3): n_norm, then four means and four stds. */
#define CKPT_DATA_BYTES 36
/* run_start (version 4) */
#define CKPT_RUN_BYTES 8

static uint64_t align64(uint64_t x) { return (x + 63) & ~(uint64_t)63; }

/* ---- little-endian encoding ---- */

static void put_u16(uint8_t *p, uint16_t v) {
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}
static void put_u32(uint8_t *p, uint32_t v) {
    for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> (8 * i));
}
static void put_u64(uint8_t *p, uint64_t v) {
    for (int i = 0; i < 8; i++) p[i] = (uint8_t)(v >> (8 * i));
}
static uint16_t get_u16(const uint8_t *p) { return (uint16_t)(p[0] | (p[1] << 8)); }
static uint32_t get_u32(const uint8_t *p) {
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}
static uint64_t get_u64(const uint8_t *p) {
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--) v = (v << 8) | p[i];
    return v;
}

static uint32_t crc_of(const uint8_t *p, uint64_t n) {
    uLong c = crc32(0L, Z_NULL, 0);
    while (n > 0) {
        uInt chunk = n > (1u << 30) ? (1u << 30) : (uInt)n;
        c = crc32(c, p, chunk);
        p += chunk;
        n -= chunk;
    }
    return (uint32_t)c;
}

static const char *dtype_name(int d) { return d == MLC_F32 ? "f32" : d == MLC_I32 ? "i32" : "unknown"; }

static void format_shape(char *buf, size_t cap, int rank, const int64_t *dims) {
    size_t k = 0;
    k += (size_t)snprintf(buf + k, cap - k, "[");
    for (int i = 0; i < rank && k < cap; i++)
        k += (size_t)snprintf(buf + k, cap - k, "%s%lld", i ? ", " : "", (long long)dims[i]);
    if (k < cap) snprintf(buf + k, cap - k, "]");
}

/* ---- save ---- */

static uint64_t header_size(const mlc_model_api *api) {
    uint64_t h = 16 + 2 + strlen(api->name) + CKPT_STATE_BYTES + CKPT_DATA_BYTES + CKPT_RUN_BYTES + 4;
    for (int i = 0; i < api->n_tensors; i++)
        h += 2 + strlen(api->tensors[i].name) + 1 + 1 + 8 * (uint64_t)api->tensors[i].rank + 8 + 8;
    return h;
}

/* Builds the whole file in memory. */
static int encode(const mlc_model_api *api, void *model, const mlcrt_train_state *st, const char *path, uint8_t **out,
                  uint64_t *out_len, char *msg, size_t cap) {
    if (strlen(api->name) > MLCRT_CKPT_MAX_NAME)
        return mlcrt_fail(msg, cap, MLCRT_EARG, "cannot write checkpoint '%s': model name longer than %d bytes", path,
                          MLCRT_CKPT_MAX_NAME);
    uint64_t hdr = header_size(api);
    if (hdr > 0xFFFFFFFFu)
        return mlcrt_fail(msg, cap, MLCRT_EARG, "cannot write checkpoint '%s': tensor table too large", path);
    uint64_t end = align64(hdr);
    for (int i = 0; i < api->n_tensors; i++) {
        const mlc_tensor_desc *t = &api->tensors[i];
        if (strlen(t->name) > MLCRT_CKPT_MAX_NAME)
            return mlcrt_fail(msg, cap, MLCRT_EARG,
                              "cannot write checkpoint '%s': tensor %d's name has %zu bytes, more than the %d a "
                              "checkpoint holds",
                              path, i, strlen(t->name), MLCRT_CKPT_MAX_NAME);
        if (t->rank < 0 || t->rank > MLC_MAX_RANK)
            return mlcrt_fail(msg, cap, MLCRT_EARG, "cannot write checkpoint '%s': tensor %d has rank %d (0 to %d)",
                              path, i, t->rank, MLC_MAX_RANK);
        end = align64(end) + 4 * (uint64_t)t->numel;
    }
    uint64_t total = end + 4;
    uint8_t *buf = calloc(1, (size_t)total);
    if (!buf)
        return mlcrt_fail(msg, cap, MLCRT_ENOMEM, "cannot write checkpoint '%s': out of memory for %llu bytes", path,
                          (unsigned long long)total);
    uint8_t *p = buf;
    memcpy(p, ckpt_magic, 8);
    put_u32(p + 8, MLCRT_CKPT_VERSION);
    put_u32(p + 12, (uint32_t)hdr);
    p += 16;
    size_t len = strlen(api->name);
    put_u16(p, (uint16_t)len);
    memcpy(p + 2, api->name, len);
    p += 2 + len;
    mlcrt_train_state no_run;
    memset(&no_run, 0, sizeof no_run);
    if (!st) { /* NAME_save: no run, but the normalisation the weights go with */
        if (api->norm_of) {
            const mlcrt_norm *norm = api->norm_of(model);
            no_run.n_norm = norm->n;
            memcpy(no_run.norm_mean, norm->mean, sizeof no_run.norm_mean);
            memcpy(no_run.norm_std, norm->std, sizeof no_run.norm_std);
        }
        st = &no_run;
    }
    uint64_t loss_bits;
    memcpy(&loss_bits, &st->loss_sum, 8);
    put_u64(p, (uint64_t)api->get_step(model));
    put_u64(p + 8, (uint64_t)st->epoch);
    put_u64(p + 16, (uint64_t)st->epoch_pos);
    put_u64(p + 24, st->seed);
    put_u64(p + 32, (uint64_t)st->train_samples);
    put_u64(p + 40, loss_bits);
    put_u64(p + 48, (uint64_t)st->correct);
    p += CKPT_STATE_BYTES;
    int nn = st->n_norm >= 0 && st->n_norm <= 4 ? st->n_norm : 0;
    put_u32(p, (uint32_t)nn);
    for (int i = 0; i < nn; i++) {
        uint32_t mb, sb;
        memcpy(&mb, &st->norm_mean[i], 4);
        memcpy(&sb, &st->norm_std[i], 4);
        put_u32(p + 4 + 4 * i, mb);
        put_u32(p + 20 + 4 * i, sb);
    }
    put_u64(p + CKPT_DATA_BYTES, (uint64_t)st->run_start);
    put_u32(p + CKPT_DATA_BYTES + CKPT_RUN_BYTES, (uint32_t)api->n_tensors);
    p += CKPT_DATA_BYTES + CKPT_RUN_BYTES + 4;
    uint64_t off = align64(hdr);
    for (int i = 0; i < api->n_tensors; i++) {
        const mlc_tensor_desc *t = &api->tensors[i];
        len = strlen(t->name);
        put_u16(p, (uint16_t)len);
        memcpy(p + 2, t->name, len);
        p += 2 + len;
        p[0] = (uint8_t)t->dtype;
        p[1] = (uint8_t)t->rank;
        p += 2;
        for (int d = 0; d < t->rank; d++, p += 8) put_u64(p, (uint64_t)t->dims[d]);
        off = align64(off);
        put_u64(p, off);
        put_u64(p + 8, 4 * (uint64_t)t->numel);
        p += 16;
        off += 4 * (uint64_t)t->numel;
    }
    /* Data: read each tensor into place, then byte-swap into little-endian order. */
    off = align64(hdr);
    for (int i = 0; i < api->n_tensors; i++) {
        const mlc_tensor_desc *t = &api->tensors[i];
        off = align64(off);
        uint32_t *tmp = malloc((size_t)(t->numel > 0 ? t->numel : 1) * 4);
        if (!tmp) {
            free(buf);
            return mlcrt_fail(msg, cap, MLCRT_ENOMEM, "cannot write checkpoint '%s': out of memory", path);
        }
        api->read_tensor(model, i, tmp);
        for (int64_t k = 0; k < t->numel; k++) put_u32(buf + off + 4 * (uint64_t)k, tmp[k]);
        free(tmp);
        off += 4 * (uint64_t)t->numel;
    }
    put_u32(buf + end, crc_of(buf, end));
    *out = buf;
    *out_len = total;
    return MLCRT_OK;
}

int mlcrt_ckpt_save(const mlc_model_api *api, void *model, const char *path, char *msg, size_t cap) {
    return mlcrt_ckpt_save_state(api, model, NULL, path, msg, cap);
}

int mlcrt_ckpt_check_writable(const char *path, char *msg, size_t cap) {
    /* a save replaces what is at path: a checkpoint is what it may replace, not a
     * source file or a program that a mistyped --save names (`--save net.mdl`) */
    struct stat st;
    if (stat(path, &st) == 0 && S_ISREG(st.st_mode) && st.st_size > 0) {
        char head[9] = "";
        FILE *f = fopen(path, "rb");
        size_t n = f ? fread(head, 1, 8, f) : 0;
        if (f) fclose(f);
        if (f && memcmp(head, ckpt_magic, n) != 0) {
            mlcrt_printable(head, n);
            return mlcrt_fail(msg, cap, MLCRT_EIO,
                              "cannot write checkpoint '%s': the file there is no mlc checkpoint (it begins '%s') and "
                              "a save would replace it; remove it or choose another path",
                              path, head);
        }
    }
    return mlcrt_check_atomic_writable(path, "checkpoint", msg, cap);
}

int mlcrt_ckpt_save_state(const mlc_model_api *api, void *model, const mlcrt_train_state *st, const char *path,
                          char *msg, size_t cap) {
    uint8_t *buf = NULL;
    uint64_t len = 0;
    int rc = encode(api, model, st, path, &buf, &len, msg, cap);
    if (rc) return rc;
    rc = mlcrt_write_atomic(path, buf, len, "checkpoint", msg, cap);
    free(buf);
    return rc;
}

/* ---- load ---- */

static int read_file(const char *path, uint8_t **out, uint64_t *len, char *msg, size_t cap) {
    /* looked at before opening: opening a FIFO without a writer would wait forever */
    struct stat pre;
    if (stat(path, &pre) == 0 && !S_ISREG(pre.st_mode))
        return mlcrt_fail(msg, cap, MLCRT_EIO, "cannot read checkpoint '%s': expected a regular file, found %s", path,
                          mlcrt_file_kind_name((unsigned)pre.st_mode));
    FILE *f = fopen(path, "rb");
    if (!f) return mlcrt_fail(msg, cap, MLCRT_EIO, "cannot read checkpoint '%s': %s", path, strerror(errno));
    struct stat st;
    if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode)) {
        int e = errno;
        fclose(f);
        return mlcrt_fail(msg, cap, MLCRT_EIO, "cannot read checkpoint '%s': %s", path,
                          S_ISREG(st.st_mode) ? strerror(e) : "not a regular file");
    }
    uint64_t n = (uint64_t)st.st_size;
    uint8_t *buf = malloc((size_t)(n ? n : 1));
    if (!buf) {
        fclose(f);
        return mlcrt_fail(msg, cap, MLCRT_ENOMEM, "cannot read checkpoint '%s': out of memory", path);
    }
    if (n && fread(buf, 1, (size_t)n, f) != (size_t)n) {
        int e = errno;
        free(buf);
        fclose(f);
        return mlcrt_fail(msg, cap, MLCRT_EIO, "cannot read checkpoint '%s': %s", path, e ? strerror(e) : "short read");
    }
    fclose(f);
    *out = buf;
    *len = n;
    return MLCRT_OK;
}

typedef struct ckpt_entry {
    const uint8_t *name;
    uint16_t name_len;
    uint8_t dtype, rank;
    int64_t dims[MLC_MAX_RANK];
    uint64_t offset, size;
} ckpt_entry;

/* Whether checkpoint entry e is named name. */
static int entry_named(const ckpt_entry *e, const char *name) {
    return e->name_len == strlen(name) && memcmp(e->name, name, e->name_len) == 0;
}

/* ": 'NAME' is in the checkpoint alone (...)" for the first tensor one of the two lists
 * lacks, into out (empty when each has the other's names). A tensor count alone does not
 * say what differs: another optimizer, freeze or ema gives a model other state tensors. */
static void name_a_stray_tensor(const mlc_model_api *api, const ckpt_entry *ent, uint32_t count, char *out,
                                size_t cap) {
    static const char why[] =
        "(a checkpoint holds every tensor of its model, the optimizer's and --ema's state "
        "included: another optimizer, freeze or ema makes other ones)";
    char nm[128];
    for (uint32_t i = 0; i < count; i++) {
        int found = 0;
        for (int k = 0; k < api->n_tensors && !found; k++) found = entry_named(&ent[i], api->tensors[k].name);
        if (!found) {
            snprintf(out, cap, ": '%s' is in the checkpoint alone %s",
                     mlcrt_shown(nm, sizeof nm, ent[i].name, ent[i].name_len), why);
            return;
        }
    }
    for (int k = 0; k < api->n_tensors; k++) {
        int found = 0;
        for (uint32_t i = 0; i < count && !found; i++) found = entry_named(&ent[i], api->tensors[k].name);
        if (!found) {
            snprintf(out, cap, ": '%s' is in the model alone %s", api->tensors[k].name, why);
            return;
        }
    }
}

/* Whether a name ends in ".momentum", sgd's velocity state. */
static int momentum_named(const char *name, size_t len) {
    static const char suffix[] = ".momentum";
    const size_t n = sizeof suffix - 1;
    return len > n && memcmp(name + len - n, suffix, n) == 0;
}

/* Before sgd without momentum had an op of its own (sgd_plain_update), its parameters each
 * had a '.momentum' state that held the last gradient and that nothing read; checkpoints
 * of such models hold them. A model without any '.momentum' tensor drops the checkpoint's
 * (in place, keeping the order of the rest) and returns how many entries remain: the
 * velocity of a run that had momentum is dropped the same way, as PyTorch's SGD with
 * momentum 0 ignores a loaded momentum_buffer. */
static uint32_t drop_unread_momentum(const mlc_model_api *api, ckpt_entry *ent, uint32_t count) {
    for (int k = 0; k < api->n_tensors; k++)
        if (momentum_named(api->tensors[k].name, strlen(api->tensors[k].name))) return count;
    uint32_t kept = 0;
    for (uint32_t i = 0; i < count; i++)
        if (!momentum_named((const char *)ent[i].name, ent[i].name_len)) ent[kept++] = ent[i];
    return kept;
}

/* Header cursor with bounds checking against the declared header size. */
typedef struct cursor {
    const uint8_t *buf;
    uint64_t pos, end, file_len;
    const char *path;
    char *msg;
    size_t cap;
} cursor;

static int need(cursor *c, uint64_t n, const char *what) {
    if (c->pos + n <= c->end) return MLCRT_OK;
    if (c->end == c->file_len)
        return mlcrt_fail(c->msg, c->cap, MLCRT_ETRUNC, "%s: byte %llu: file ends inside the header (reading %s)",
                          c->path, (unsigned long long)c->file_len, what);
    return mlcrt_fail(c->msg, c->cap, MLCRT_EFORMAT, "%s: byte %llu: %s runs past the declared header size %llu",
                      c->path, (unsigned long long)c->pos, what, (unsigned long long)c->end);
}

/* The training state's own consistency, whatever the run: counts are never negative,
 * the position lies within the epoch it counts (train_n 0: a checkpoint saved without a
 * training state, position 0), at most every sample of it was classified correctly, and
 * the running loss is a number. at: the byte offset of the step field. A resumed run
 * that trusted these would index past its permutation or loop for 2^62 epochs. */
static int check_state_fields(int64_t step, const mlcrt_train_state *ts, uint64_t at, uint64_t run_at, const char *path,
                              char *msg, size_t cap) {
    const struct {
        const char *name;
        int64_t v;
        unsigned off;
    } counts[] = {{"step", step, 0},
                  {"epoch", ts->epoch, 8},
                  {"epoch_pos", ts->epoch_pos, 16},
                  {"train_n", ts->train_samples, 32},
                  {"correct", ts->correct, 48}};
    for (size_t i = 0; i < sizeof counts / sizeof counts[0]; i++)
        if (counts[i].v < 0)
            return mlcrt_fail(msg, cap, MLCRT_EFORMAT, "%s: byte %llu: %s: expected a count of at least 0, found %lld",
                              path, (unsigned long long)(at + counts[i].off), counts[i].name, (long long)counts[i].v);
    /* The others are bounded by the run below; the step counter only by this: no run
     * reaches 2^62 steps, and a counter below it cannot wrap as a run adds to it. */
    if (step > INT64_C(1) << 62)
        return mlcrt_fail(msg, cap, MLCRT_EFORMAT, "%s: byte %llu: step: expected a count of at most 2^62, found %lld",
                          path, (unsigned long long)at, (long long)step);
    if (ts->epoch_pos > ts->train_samples)
        return mlcrt_fail(msg, cap, MLCRT_EFORMAT,
                          "%s: byte %llu: epoch_pos: expected 0 to %lld (train_n, the samples "
                          "of an epoch), found %lld",
                          path, (unsigned long long)(at + 16), (long long)ts->train_samples, (long long)ts->epoch_pos);
    if (ts->correct > ts->epoch_pos)
        return mlcrt_fail(msg, cap, MLCRT_EFORMAT,
                          "%s: byte %llu: correct: expected 0 to %lld (epoch_pos, the samples "
                          "trained on in this epoch), found %lld",
                          path, (unsigned long long)(at + 48), (long long)ts->epoch_pos, (long long)ts->correct);
    if (!isfinite(ts->loss_sum))
        return mlcrt_fail(msg, cap, MLCRT_EFORMAT, "%s: byte %llu: loss_sum: expected a finite number, found %g", path,
                          (unsigned long long)(at + 40), ts->loss_sum);
    /* a run starts at or before the counter it has reached */
    if (ts->has_run_start && (ts->run_start < 0 || ts->run_start > step))
        return mlcrt_fail(msg, cap, MLCRT_EFORMAT,
                          "%s: byte %llu: run_start: expected 0 to %lld (step, the counter the run has reached), "
                          "found %lld",
                          path, (unsigned long long)run_at, (long long)step, (long long)ts->run_start);
    return MLCRT_OK;
}

int mlcrt_ckpt_check_resume(const mlcrt_train_state *st, int64_t step, int64_t train_n, int epochs, const char *path,
                            char *msg, size_t cap) {
    if (st->train_samples != train_n)
        return mlcrt_fail(msg, cap, MLCRT_EMISMATCH,
                          "%s: train_n: expected %lld training samples per epoch (this run's "
                          "--data, --train-limit and --val), found %lld",
                          path, (long long)train_n, (long long)st->train_samples);
    if (st->epoch > epochs)
        return mlcrt_fail(msg, cap, MLCRT_EMISMATCH,
                          "%s: epoch: expected 0 to %d (this run's --epochs), found %lld "
                          "epochs completed",
                          path, epochs, (long long)st->epoch);
    /* Every epoch of a non-empty training set takes at least one optimizer step (more
     * with --load, which carries the step counter over), whatever --batch and --accum. */
    int64_t min_step = train_n > 0 ? st->epoch + (st->epoch_pos > 0) : 0;
    if (step < min_step)
        return mlcrt_fail(msg, cap, MLCRT_EMISMATCH,
                          "%s: step: expected at least %lld optimizer steps for %lld epochs "
                          "and %lld samples, found %lld",
                          path, (long long)min_step, (long long)st->epoch, (long long)st->epoch_pos, (long long)step);
    return MLCRT_OK;
}

int mlcrt_ckpt_load(const mlc_model_api *api, void *model, const char *path, char *msg, size_t cap) {
    return mlcrt_ckpt_load_state(api, model, NULL, path, msg, cap);
}

int mlcrt_ckpt_load_state(const mlc_model_api *api, void *model, mlcrt_train_state *state, const char *path, char *msg,
                          size_t cap) {
    uint8_t *buf = NULL;
    uint64_t len = 0;
    ckpt_entry *ent = NULL;
    uint32_t *scratch = NULL;
    char nm[128]; /* a name from the file as a message shows it (mlcrt_shown) */
    int rc = read_file(path, &buf, &len, msg, cap);
    if (rc) return rc;

    if (len < 16) {
        if (len < 8 || memcmp(buf, ckpt_magic, 8) == 0) {
            rc = mlcrt_fail(msg, cap, MLCRT_ETRUNC, "%s: byte %llu: file ends inside the 16-byte preamble", path,
                            (unsigned long long)len);
            goto out;
        }
    }
    if (memcmp(buf, ckpt_magic, 8) != 0) {
        rc = mlcrt_fail(msg, cap, MLCRT_EFORMAT, "%s: byte 0: expected magic \"MLCCKPT\\0\": not an mlc checkpoint",
                        path);
        goto out;
    }
    uint32_t version = get_u32(buf + 8);
    if (version == 1) {
        rc = mlcrt_fail(msg, cap, MLCRT_EFORMAT,
                        "%s: byte 8: expected version %u, found 1 (version-1 checkpoints "
                        "hold no training position and are no longer read)",
                        path, MLCRT_CKPT_VERSION);
        goto out;
    }
    if (version < 2 || version > MLCRT_CKPT_VERSION) {
        rc = mlcrt_fail(msg, cap, MLCRT_EFORMAT, "%s: byte 8: expected version 2 to %u, found %u", path,
                        MLCRT_CKPT_VERSION, version);
        goto out;
    }
    /* Version 2 has no data settings: they read as none. */
    const int data_bytes = version == 2 ? 0 : CKPT_DATA_BYTES;
    /* Versions 2 and 3 have no run_start: the trainer finds it from the position. */
    const int run_bytes = version >= 4 ? CKPT_RUN_BYTES : 0;
    uint64_t hdr = get_u32(buf + 12);
    cursor c = {buf, 16, hdr < len ? hdr : len, len, path, msg, cap};
    if (hdr < 16 + 2 + CKPT_STATE_BYTES + (uint64_t)data_bytes + (uint64_t)run_bytes + 4) {
        rc = mlcrt_fail(msg, cap, MLCRT_EFORMAT, "%s: byte 12: header size %llu is smaller than the minimum %d", path,
                        (unsigned long long)hdr, 16 + 2 + CKPT_STATE_BYTES + data_bytes + run_bytes + 4);
        goto out;
    }

    /* Model name, step, count. */
    if ((rc = need(&c, 2, "the model name length"))) goto out;
    uint16_t mlen = get_u16(buf + c.pos);
    c.pos += 2;
    if ((rc = need(&c, mlen, "the model name"))) goto out;
    const uint8_t *mname = buf + c.pos;
    c.pos += mlen;
    if ((rc = need(&c, CKPT_STATE_BYTES, "the training state"))) goto out;
    int64_t step = (int64_t)get_u64(buf + c.pos);
    mlcrt_train_state ts;
    ts.epoch = (int64_t)get_u64(buf + c.pos + 8);
    ts.epoch_pos = (int64_t)get_u64(buf + c.pos + 16);
    ts.seed = get_u64(buf + c.pos + 24);
    ts.train_samples = (int64_t)get_u64(buf + c.pos + 32);
    uint64_t loss_bits = get_u64(buf + c.pos + 40);
    memcpy(&ts.loss_sum, &loss_bits, 8);
    ts.correct = (int64_t)get_u64(buf + c.pos + 48);
    const uint64_t state_at = c.pos;
    c.pos += CKPT_STATE_BYTES;
    ts.has_data_settings = version >= 3;
    ts.n_norm = 0;
    memset(ts.norm_mean, 0, sizeof ts.norm_mean);
    memset(ts.norm_std, 0, sizeof ts.norm_std);
    if (data_bytes) {
        if ((rc = need(&c, CKPT_DATA_BYTES, "the data settings"))) goto out;
        uint32_t nn = get_u32(buf + c.pos);
        if (nn > 4) {
            rc = mlcrt_fail(msg, cap, MLCRT_EFORMAT,
                            "%s: byte %llu: n_norm: expected 0 to 4 normalisation values, found %u", path,
                            (unsigned long long)c.pos, nn);
            goto out;
        }
        ts.n_norm = (int)nn;
        for (uint32_t i = 0; i < nn; i++) {
            uint32_t mb = get_u32(buf + c.pos + 4 + 4 * i), sb = get_u32(buf + c.pos + 20 + 4 * i);
            memcpy(&ts.norm_mean[i], &mb, 4);
            memcpy(&ts.norm_std[i], &sb, 4);
            /* the bounds --mean and --std have (trainer_flags.c): what they divide by and
             * subtract turns every input into a number */
            if (!isfinite(ts.norm_mean[i])) {
                rc = mlcrt_fail(msg, cap, MLCRT_EFORMAT,
                                "%s: byte %llu: norm_mean[%u]: expected a finite number, found %g", path,
                                (unsigned long long)(c.pos + 4 + 4 * i), i, (double)ts.norm_mean[i]);
                goto out;
            }
            if (!(ts.norm_std[i] >= FLT_MIN) || !isfinite(ts.norm_std[i])) {
                rc = mlcrt_fail(msg, cap, MLCRT_EFORMAT,
                                "%s: byte %llu: norm_std[%u]: expected a finite number of at least %g, found %g", path,
                                (unsigned long long)(c.pos + 20 + 4 * i), i, (double)FLT_MIN, (double)ts.norm_std[i]);
                goto out;
            }
        }
        c.pos += CKPT_DATA_BYTES;
    }
    ts.has_run_start = run_bytes != 0;
    ts.run_start = 0;
    const uint64_t run_at = c.pos;
    if (run_bytes) {
        if ((rc = need(&c, CKPT_RUN_BYTES, "run_start"))) goto out;
        ts.run_start = (int64_t)get_u64(buf + c.pos);
        c.pos += CKPT_RUN_BYTES;
    }
    if ((rc = need(&c, 4, "the tensor count"))) goto out;
    uint32_t count = get_u32(buf + c.pos);
    c.pos += 4;
    if (count > (hdr - c.pos) / 20 + 1) { /* each entry needs at least 20 bytes */
        rc = mlcrt_fail(msg, cap, MLCRT_EFORMAT, "%s: byte %llu: tensor count %u does not fit in a %llu-byte header",
                        path, (unsigned long long)(c.pos - 4), count, (unsigned long long)hdr);
        goto out;
    }
    /* The table grows as entries are read: a short file that declares a 4 GiB header
     * and a count to match costs no more than its own bytes. */
    uint32_t ent_cap = 0;
    uint64_t expect_off = align64(hdr);
    for (uint32_t i = 0; i < count; i++) {
        if (i == ent_cap) {
            ent_cap = ent_cap ? (ent_cap > count / 2 ? count : 2 * ent_cap) : (count < 64 ? count : 64);
            ckpt_entry *grown = realloc(ent, (size_t)ent_cap * sizeof *ent);
            if (!grown) {
                rc = mlcrt_fail(msg, cap, MLCRT_ENOMEM, "%s: out of memory", path);
                goto out;
            }
            ent = grown;
        }
        ckpt_entry *e = &ent[i];
        if ((rc = need(&c, 2, "a tensor name length"))) goto out;
        e->name_len = get_u16(buf + c.pos);
        c.pos += 2;
        if ((rc = need(&c, (uint64_t)e->name_len + 2, "a tensor name, dtype and rank"))) goto out;
        e->name = buf + c.pos;
        c.pos += e->name_len;
        e->dtype = buf[c.pos];
        e->rank = buf[c.pos + 1];
        if (e->rank > MLC_MAX_RANK) {
            rc = mlcrt_fail(msg, cap, MLCRT_EFORMAT, "%s: byte %llu: tensor '%s': expected rank 0..%d, found %u", path,
                            (unsigned long long)(c.pos + 1), mlcrt_shown(nm, sizeof nm, e->name, e->name_len),
                            MLC_MAX_RANK, e->rank);
            goto out;
        }
        if (e->dtype != MLC_F32 && e->dtype != MLC_I32) {
            rc = mlcrt_fail(msg, cap, MLCRT_EFORMAT, "%s: byte %llu: tensor '%s': unknown dtype code %u", path,
                            (unsigned long long)c.pos, mlcrt_shown(nm, sizeof nm, e->name, e->name_len), e->dtype);
            goto out;
        }
        c.pos += 2;
        if ((rc = need(&c, 8 * (uint64_t)e->rank + 16, "tensor dims, offset and size"))) goto out;
        uint64_t numel = 1;
        for (int d = 0; d < e->rank; d++) {
            e->dims[d] = (int64_t)get_u64(buf + c.pos + 8 * (uint64_t)d);
            if (e->dims[d] < 0 || (e->dims[d] > 0 && numel > (UINT64_MAX / 8) / (uint64_t)e->dims[d])) {
                rc = mlcrt_fail(msg, cap, MLCRT_EFORMAT, "%s: byte %llu: tensor '%s': invalid dimension %lld", path,
                                (unsigned long long)(c.pos + 8 * (uint64_t)d),
                                mlcrt_shown(nm, sizeof nm, e->name, e->name_len), (long long)e->dims[d]);
                goto out;
            }
            numel *= (uint64_t)e->dims[d];
        }
        c.pos += 8 * (uint64_t)e->rank;
        e->offset = get_u64(buf + c.pos);
        e->size = get_u64(buf + c.pos + 8);
        expect_off = align64(expect_off);
        if (e->offset != expect_off && hdr > len) {
            /* the table was read whole from the file, so the field that puts the data past
             * its end is the header size (a file cut short ends inside the table instead) */
            rc = mlcrt_fail(msg, cap, MLCRT_EFORMAT,
                            "%s: byte 12: header size %llu is larger than the file (%llu bytes)", path,
                            (unsigned long long)hdr, (unsigned long long)len);
            goto out;
        }
        if (e->offset != expect_off || e->size != 4 * numel) {
            rc = mlcrt_fail(msg, cap, MLCRT_EFORMAT,
                            "%s: byte %llu: tensor '%s': expected data at offset %llu with "
                            "%llu bytes, found offset %llu with %llu bytes",
                            path, (unsigned long long)c.pos, mlcrt_shown(nm, sizeof nm, e->name, e->name_len),
                            (unsigned long long)expect_off, (unsigned long long)(4 * numel),
                            (unsigned long long)e->offset, (unsigned long long)e->size);
            goto out;
        }
        c.pos += 16;
        expect_off += e->size;
    }
    if (c.pos != hdr) {
        rc = mlcrt_fail(msg, cap, MLCRT_EFORMAT,
                        "%s: byte 12: header size says %llu bytes, the tensor table ends at "
                        "byte %llu",
                        path, (unsigned long long)hdr, (unsigned long long)c.pos);
        goto out;
    }
    uint64_t data_end = count ? expect_off : align64(hdr);
    uint64_t expect_len = data_end + 4;
    if (len < expect_len) {
        rc = mlcrt_fail(msg, cap, MLCRT_ETRUNC,
                        "%s: byte %llu: file ends early: expected %llu bytes (%u tensors and "
                        "a 4-byte CRC)",
                        path, (unsigned long long)len, (unsigned long long)expect_len, count);
        goto out;
    }
    if (len > expect_len) {
        rc = mlcrt_fail(msg, cap, MLCRT_EFORMAT,
                        "%s: byte %llu: unexpected trailing data: expected %llu bytes, found "
                        "%llu",
                        path, (unsigned long long)expect_len, (unsigned long long)expect_len, (unsigned long long)len);
        goto out;
    }
    uint32_t stored = get_u32(buf + data_end), actual = crc_of(buf, data_end);
    if (stored != actual) {
        rc = mlcrt_fail(msg, cap, MLCRT_ECRC,
                        "%s: byte %llu: CRC mismatch: stored %08x, computed %08x (file is "
                        "corrupt)",
                        path, (unsigned long long)data_end, stored, actual);
        goto out;
    }

    /* The file is intact: is its training state possible, does it fit this model? */
    if ((rc = check_state_fields(step, &ts, state_at, run_at, path, msg, cap))) goto out;
    if (mlen != strlen(api->name) || memcmp(mname, api->name, mlen) != 0) {
        rc = mlcrt_fail(msg, cap, MLCRT_EMISMATCH, "%s: checkpoint is for model '%s', this model is '%s'", path,
                        mlcrt_shown(nm, sizeof nm, mname, mlen), api->name);
        goto out;
    }
    count = drop_unread_momentum(api, ent, count);
    if (count != (uint32_t)api->n_tensors) {
        char which[400] = "";
        name_a_stray_tensor(api, ent, count, which, sizeof which);
        rc = mlcrt_fail(msg, cap, MLCRT_EMISMATCH, "%s: checkpoint has %u tensors, model '%s' has %d%s", path, count,
                        api->name, api->n_tensors, which);
        goto out;
    }
    int64_t max_numel = 1;
    for (uint32_t i = 0; i < count; i++) {
        const ckpt_entry *e = &ent[i];
        const mlc_tensor_desc *t = &api->tensors[i];
        if (!entry_named(e, t->name)) {
            rc = mlcrt_fail(msg, cap, MLCRT_EMISMATCH, "%s: tensor %u: checkpoint has '%s', model expects '%s'", path,
                            i, mlcrt_shown(nm, sizeof nm, e->name, e->name_len), t->name);
            goto out;
        }
        if (e->dtype != (uint8_t)t->dtype) {
            rc = mlcrt_fail(msg, cap, MLCRT_EMISMATCH, "%s: tensor '%s': checkpoint has dtype %s, model expects %s",
                            path, t->name, dtype_name(e->dtype), dtype_name(t->dtype));
            goto out;
        }
        int same = e->rank == t->rank;
        for (int d = 0; same && d < t->rank; d++) same = e->dims[d] == t->dims[d];
        if (!same) {
            char a[256], b[256];
            format_shape(a, sizeof a, e->rank, e->dims);
            format_shape(b, sizeof b, t->rank, t->dims);
            rc = mlcrt_fail(msg, cap, MLCRT_EMISMATCH, "%s: tensor '%s': checkpoint has shape %s, model expects %s",
                            path, t->name, a, b);
            goto out;
        }
        if (t->numel > max_numel) max_numel = t->numel;
    }

    /* Everything validated: now, and only now, modify the model (when there is one). */
    if (!model) {
        if (state) *state = ts;
        goto out;
    }
    scratch = malloc((size_t)max_numel * 4);
    if (!scratch) {
        rc = mlcrt_fail(msg, cap, MLCRT_ENOMEM, "%s: out of memory", path);
        goto out;
    }
    for (uint32_t i = 0; i < count; i++) {
        const uint8_t *p = buf + ent[i].offset;
        int64_t n = api->tensors[i].numel;
        for (int64_t k = 0; k < n; k++) scratch[k] = get_u32(p + 4 * (uint64_t)k);
        api->write_tensor(model, (int)i, scratch);
    }
    api->set_step(model, step);
    if (api->norm_of) { /* what the weights go with: the file's, or for an older one the .mdl's */
        mlcrt_norm *norm = api->norm_of(model);
        norm->n = ts.has_data_settings ? ts.n_norm : api->n_norm;
        memcpy(norm->mean, ts.has_data_settings ? ts.norm_mean : api->norm_mean, sizeof norm->mean);
        memcpy(norm->std, ts.has_data_settings ? ts.norm_std : api->norm_std, sizeof norm->std);
    }
    if (state) *state = ts;
out:
    free(scratch);
    free(ent);
    free(buf);
    return rc;
}
