/* log_trim.c - a resumed run's log holds no row the checkpoint did not reach (log_trim.h).
 *
 * A run killed after its last checkpoint has logged steps (and perhaps an epoch) that the
 * resumed run trains again; appended to, the log would hold those rows twice. The rows
 * are kept up to the checkpoint's step, the rest (and a line cut short by the kill) are
 * dropped, and the log is replaced atomically before the resumed run appends. */
#include "log_trim.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "atomic_file.h"

/* The step of a log line: the third CSV field, or JSON's "step":N; -1 for the CSV header
 * (kept) and for a line without one. */
static long long line_step(const char *line, int jsonl) {
    if (jsonl) {
        const char *p = strstr(line, "\"step\":");
        return p ? strtoll(p + 7, NULL, 10) : -1;
    }
    const char *p = strchr(line, ',');
    p = p ? strchr(p + 1, ',') : NULL;
    if (!p || p[1] < '0' || p[1] > '9') return -1;
    return strtoll(p + 1, NULL, 10);
}

/* An epoch row: CSV's first field, or JSON's "kind". */
static int epoch_row(const char *line, int jsonl) {
    return jsonl ? strstr(line, "\"kind\":\"epoch\"") != NULL : strncmp(line, "epoch,", 6) == 0;
}

int mlcrt_log_trim(const char *path, long long last_step, int mid_epoch, int jsonl, char *msg, size_t cap) {
    /* opening a FIFO to read it would wait for a writer that never comes */
    struct stat pre;
    if (stat(path, &pre) == 0 && !S_ISREG(pre.st_mode)) return 0;
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(msg, cap, "cannot read log '%s': %s", path, strerror(errno));
        return -1;
    }
    size_t len = 0, size = 1 << 16;
    char *buf = malloc(size + 1);
    for (size_t n; buf && (n = fread(buf + len, 1, size - len, f)) > 0;) {
        len += n;
        if (len == size) {
            char *bigger = realloc(buf, 2 * size + 1);
            if (!bigger) {
                free(buf);
                buf = NULL;
                break;
            }
            buf = bigger, size *= 2;
        }
    }
    int bad = ferror(f);
    fclose(f);
    if (!buf || bad) {
        free(buf);
        snprintf(msg, cap, "cannot read log '%s': %s", path, bad ? "read error" : "out of memory");
        return -1;
    }
    buf[len] = 0;
    /* keep whole lines (ending in '\n') up to the step; the rest moves out in place */
    size_t out = 0, dropped = 0;
    for (size_t at = 0; at < len;) {
        char *nl = memchr(buf + at, '\n', len - at);
        if (!nl) break; /* a line the kill cut short */
        size_t n = (size_t)(nl - (buf + at)) + 1;
        *nl = 0;
        long long step = line_step(buf + at, jsonl);
        *nl = '\n';
        int keep = at == 0 && !jsonl ? 1 : step >= 0 && step <= last_step;
        if (keep && mid_epoch && step == last_step && epoch_row(buf + at, jsonl)) keep = 0;
        if (keep) {
            memmove(buf + out, buf + at, n);
            out += n;
        } else {
            dropped++;
        }
        at += n;
    }
    int status = 0;
    if (out != len) /* unchanged logs are not rewritten */
        status = mlcrt_write_atomic(path, buf, out, "log", msg, cap) ? -1 : 0;
    free(buf);
    (void)dropped;
    return status;
}
