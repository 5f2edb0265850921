/* schedule.h - learning-rate schedules, as a pure function of the global step (so a
 * resumed run continues the same curve). Formulas: docs/trainer.md. */
#ifndef MLCRT_SCHEDULE_H
#define MLCRT_SCHEDULE_H

#include <stdint.h>

typedef enum mlcrt_schedule_kind {
    MLCRT_SCHED_CONSTANT = 0,
    MLCRT_SCHED_STEP = 1,
    MLCRT_SCHED_COSINE = 2,
    MLCRT_SCHED_ONECYCLE = 3
} mlcrt_schedule_kind;

typedef struct mlcrt_schedule {
    mlcrt_schedule_kind kind;
    float lr;             /* base (peak) learning rate */
    int64_t total_steps;  /* steps of the whole run (epochs x steps per epoch) */
    int64_t warmup_steps; /* step and cosine: linear warm-up over these first steps */
    int64_t step_steps;   /* step: decay every this many steps (> 0) */
    float gamma;          /* step: decay factor */
} mlcrt_schedule;

/* "constant", "step", "cosine", "onecycle" -> kind; -1 for anything else. */
int mlcrt_schedule_parse(const char *name);
const char *mlcrt_schedule_name(int kind);

/* The learning rate of step `step` (0-based, global over the run):
 *   constant  lr
 *   warm-up   (step and cosine, step < W) lr * (step + 1) / W
 *   step      lr * gamma^floor((step - W) / step_steps)
 *   cosine    lr * (1 + cos(pi * (step - W) / (total - W))) / 2
 *   onecycle  U = 0.3 total; step < U: lr/25 + (lr - lr/25) * step / U; then
 *             lr/1e4 + (lr - lr/1e4) * (1 + cos(pi * (step - U) / (total - U))) / 2 */
float mlcrt_schedule_lr(const mlcrt_schedule *s, int64_t step);

#endif
