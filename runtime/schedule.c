/* schedule.c - learning-rate schedules (see schedule.h). Computed in double from the
 * global step only. */
#include "schedule.h"

#include <math.h>
#include <string.h>

#define PI_VAL 3.14159265358979323846

static const char *const names[] = {"constant", "step", "cosine", "onecycle"};

int mlcrt_schedule_parse(const char *name) {
    for (int i = 0; i < 4; i++)
        if (name && strcmp(name, names[i]) == 0) return i;
    return -1;
}

const char *mlcrt_schedule_name(int kind) { return kind >= 0 && kind < 4 ? names[kind] : "?"; }

float mlcrt_schedule_lr(const mlcrt_schedule *s, int64_t step) {
    double lr = s->lr, t = (double)step, total = (double)s->total_steps;
    if (step < 0) t = 0;
    switch (s->kind) {
    case MLCRT_SCHED_CONSTANT: return s->lr;
    case MLCRT_SCHED_ONECYCLE: {
        double up = 0.3 * total, lo = lr / 25.0, fin = lr / 1e4;
        if (total <= 0) return s->lr;
        if (t < up) return (float)(lo + (lr - lo) * t / up);
        double span = total - up, f = span > 0 ? (t - up) / span : 1.0;
        if (f > 1) f = 1;
        return (float)(fin + (lr - fin) * 0.5 * (1.0 + cos(PI_VAL * f)));
    }
    default: break;
    }
    double w = (double)(s->warmup_steps > 0 ? s->warmup_steps : 0);
    if (t < w) return (float)(lr * (t + 1.0) / w);
    if (s->kind == MLCRT_SCHED_STEP) {
        int64_t k = s->step_steps > 0 ? (step - (int64_t)w) / s->step_steps : 0;
        return (float)(lr * pow((double)s->gamma, (double)k));
    }
    /* cosine */
    double span = total - w, f = span > 0 ? (t - w) / span : 1.0;
    if (f > 1) f = 1;
    return (float)(0.5 * lr * (1.0 + cos(PI_VAL * f)));
}
