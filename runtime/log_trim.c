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

/* The kinds of row a log holds (trainer.c's log_row and log_eval). */
static const char *const row_kinds[] = {"step", "epoch", "eval"};
#define N_ROW_KINDS (sizeof row_kinds / sizeof row_kinds[0])

/* The kind of row a line is in the log's format (CSV: "kind,", JSON: {"kind":"kind"),
 * an index of row_kinds, or -1. */
static int row_kind(const char *line, int jsonl) {
    for (size_t k = 0; k < N_ROW_KINDS; k++) {
        char lead[32];
        snprintf(lead, sizeof lead, jsonl ? "{\"kind\":\"%s\"," : "%s,", row_kinds[k]);
        if (strncmp(line, lead, strlen(lead)) == 0) return (int)k;
    }
    return -1;
}

/* The step of a row: the third CSV field, or JSON's "step":N; -1 if it has none. */
static long long line_step(const char *line, int jsonl) {
    const char *p;
    if (jsonl) {
        p = strstr(line, "\"step\":");
        p = p ? p + 7 : NULL;
    } else {
        p = strchr(line, ',');
        p = p ? strchr(p + 1, ',') : NULL;
        p = p ? p + 1 : NULL;
    }
    if (!p || *p < '0' || *p > '9') return -1;
    return strtoll(p, NULL, 10);
}

/* A row's seconds: the last CSV field, or JSON's "seconds":S; 0 if it has none. */
static double line_seconds(const char *line, int jsonl) {
    const char *p = jsonl ? strstr(line, "\"seconds\":") : strrchr(line, ',');
    return p ? strtod(p + (jsonl ? 10 : 1), NULL) : 0.0;
}

/* Whether the n bytes at s (a last line without its newline) could be the start of a row:
 * what a kill leaves when it cuts one short. */
static int row_start(const char *s, size_t n, int jsonl) {
    if (memchr(s, 0, n)) return 0;
    for (size_t k = 0; k < N_ROW_KINDS; k++) {
        char lead[32];
        int m = snprintf(lead, sizeof lead, jsonl ? "{\"kind\":\"%s\"," : "%s,", row_kinds[k]);
        if (strncmp(s, lead, n < (size_t)m ? n : (size_t)m) == 0) return 1;
    }
    return 0;
}

/* The start of a line as msg can quote it: printable ASCII, at most 40 characters. */
static void quote_line(const char *s, size_t n, char *out, size_t cap) {
    size_t k = 0;
    for (; k < n && k < 40 && k + 4 < cap; k++) out[k] = s[k] >= 32 && s[k] < 127 ? s[k] : '?';
    if (k < n && k + 4 < cap) memcpy(out + k, "...", 3), k += 3;
    out[k] = 0;
}

/* "error" with the line at s quoted: this file is not a log of this run's format, and is
 * left as it is. */
static void not_a_log(const char *path, size_t line_no, const char *s, size_t n, const char *header, char *msg,
                      size_t cap) {
    char found[48];
    quote_line(s, n, found, sizeof found);
    if (header && line_no == 1)
        snprintf(msg, cap,
                 "%s: line 1: expected this model's CSV log header '%.*s', found '%s' (a log in another format, or "
                 "not a log: give --log another file, or the --log-format it was written with)",
                 path, (int)strcspn(header, "\n"), header, found);
    else
        snprintf(msg, cap,
                 "%s: line %zu: expected a %s row (step, epoch or eval), found '%s' (a log in another format, or "
                 "not a log: give --log another file, or the --log-format it was written with)",
                 path, line_no, header ? "CSV log" : "JSON log", found);
}

int mlcrt_log_trim(const char *path, const char *header, long long last_step, int mid_epoch, double *seconds, char *msg,
                   size_t cap) {
    const int jsonl = header == NULL;
    *seconds = 0;
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
    /* Every line must be a row of this log's format (after the CSV header), and a last
     * line without its newline the start of one: anything else is another file, or a log
     * written with another --log-format, which cutting back would destroy. Whole rows up
     * to the step are kept; the rest moves out in place. */
    size_t out = 0, line_no = 0;
    for (size_t at = 0; at < len;) {
        char *nl = memchr(buf + at, '\n', len - at);
        size_t n = nl ? (size_t)(nl - (buf + at)) + 1 : len - at;
        line_no++;
        int keep;
        if (!nl) { /* a line the kill cut short */
            if (!(jsonl || line_no > 1 ? row_start(buf + at, n, jsonl) : strncmp(buf + at, header, n) == 0)) {
                not_a_log(path, line_no, buf + at, n, header, msg, cap);
                free(buf);
                return -1;
            }
            keep = 0;
        } else {
            *nl = 0;
            int header_line = !jsonl && line_no == 1;
            int ok = strlen(buf + at) == n - 1 && /* no NUL byte */
                     (header_line ? strncmp(buf + at, header, n - 1) == 0 && header[n - 1] == '\n'
                                  : row_kind(buf + at, jsonl) >= 0 && line_step(buf + at, jsonl) >= 0);
            long long step = header_line ? -1 : line_step(buf + at, jsonl);
            int epoch = !header_line && row_kind(buf + at, jsonl) == 1;
            double secs = header_line ? 0 : line_seconds(buf + at, jsonl);
            *nl = '\n';
            if (!ok) {
                not_a_log(path, line_no, buf + at, n - 1, header, msg, cap);
                free(buf);
                return -1;
            }
            keep = header_line || step <= last_step;
            if (keep && mid_epoch && step == last_step && epoch) keep = 0;
            /* step and eval rows count from the run's start, epoch rows the epoch alone */
            if (keep && !header_line && !epoch) *seconds = secs;
        }
        if (keep) {
            memmove(buf + out, buf + at, n);
            out += n;
        }
        at += n;
    }
    int status = 0;
    if (out != len) /* unchanged logs are not rewritten */
        status = mlcrt_write_atomic(path, buf, out, "log", msg, cap) ? -1 : 0;
    free(buf);
    return status;
}
