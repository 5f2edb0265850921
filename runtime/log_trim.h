/* log_trim.h - the log of a resumed run, cut back to the checkpoint it resumes from. */
#ifndef MLCRT_LOG_TRIM_H
#define MLCRT_LOG_TRIM_H

#include <stddef.h>

/* Drops from the training log at path (CSV starting with header, its first line with
 * the newline; JSON lines where header is NULL) every row of a step after last_step, and
 * a last line without its newline, replacing the file atomically when anything is
 * dropped. A file with any other line (not a log, or one in another format or of another
 * kind of model) is refused and left as it is. mid_epoch: the checkpoint lies inside an epoch, so
 * an epoch row at last_step is the partial summary of a run --max-steps stopped there,
 * and goes too (the resumed run writes that epoch's row when it ends). A log that is no
 * regular file (a pipe, a terminal) cannot be cut back and is left alone. *seconds gets
 * the seconds of the last step or eval row kept (the run's time up to its checkpoint, from
 * which the resumed run's rows go on), 0 when none. 0, or -1 with msg saying why. */
int mlcrt_log_trim(const char *path, const char *header, long long last_step, int mid_epoch, double *seconds, char *msg,
                   size_t cap);

#endif
