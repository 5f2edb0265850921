/* log_trim.h - the log of a resumed run, cut back to the checkpoint it resumes from. */
#ifndef MLCRT_LOG_TRIM_H
#define MLCRT_LOG_TRIM_H

#include <stddef.h>

/* Drops from the training log at path (CSV with its header, or JSON lines) every row of a
 * step after last_step, and a last line without its newline, replacing the file
 * atomically when anything is dropped. mid_epoch: the checkpoint lies inside an epoch, so
 * an epoch row at last_step is the partial summary of a run --max-steps stopped there,
 * and goes too (the resumed run writes that epoch's row when it ends). A log that is no
 * regular file (a pipe, a terminal) cannot be cut back and is left alone. 0, or -1 with
 * msg saying why. */
int mlcrt_log_trim(const char *path, long long last_step, int mid_epoch, int jsonl, char *msg, size_t cap);

#endif
