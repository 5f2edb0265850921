/* trainer_flags.c - the trainer's command line, read from settings.def: the table's
 * defaults, then the model's train { } defaults, then argv (one `error:` line for the
 * first mistake), and --help. What a flag does is trainer.c's business, not this file's. */
#include "trainer_flags.h"

#include "data.h"
#include "mlcrt_error.h"
#include "schedule.h"
#include "text_data.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

const mode_row mlcrt_modes[MODE_COUNT] = {
#define MLC_MODE(NAME, ARGS, EXPECT, HELP) {#NAME, ARGS, EXPECT, HELP},
#include "settings.def"
};

// clang-format off
const flag_row mlcrt_flags[] = {
#define MLC_FLAG(FIELD, FLAG, KIND, ARG, CHOICES, DEFAULT, KEY, SECTION, HELP)                \
    {FLAG, KIND, offsetof(trainer_opts, FIELD), ARG, CHOICES, DEFAULT, KEY, SECTION, HELP},
#include "settings.def"
};
// clang-format on
const int mlcrt_n_flags = (int)(sizeof mlcrt_flags / sizeof mlcrt_flags[0]);

/* The C type of the trainer_opts member each kind writes. set_value writes through an
 * offset, so check_field_types makes a row whose FIELD has another type fail to compile
 * (incompatible pointer types) instead of corrupting the options. */
typedef int FLAG_SWITCH_type, FLAG_INT_type, FLAG_THREADS_type, FLAG_CHOICE_type;
typedef const char *FLAG_PATH_type, *FLAG_AUGMENT_type, *FLAG_TEXT_type;
typedef int64_t FLAG_COUNT_type, FLAG_SAVE_EVERY_type;
typedef uint64_t FLAG_SEED_type;
typedef float FLAG_POS_type, FLAG_NONNEG_type;
typedef mlcrt_channels FLAG_LIST_type, FLAG_POS_LIST_type;

__attribute__((unused)) static inline void check_field_types(trainer_opts *o) {
#define MLC_FLAG(FIELD, FLAG, KIND, ...) \
    {                                    \
        KIND##_type *p = &o->FIELD;      \
        (void)p;                         \
    }
#include "settings.def"
}

static int bad_value(FILE *err, const char *flag, const char *expected, const char *val) {
    fprintf(err, "error: %s: expected %s, found '%s'\n", flag, expected, val);
    return -1;
}

/* An integer in 1..max, decimal digits only; 0 on success. strtoll alone would also take
 * leading blanks and a sign (" 1", "+1") while refusing a trailing blank. */
static int read_int(const char *s, int64_t max, int64_t *v) {
    char *end;
    errno = 0;
    long long x = strtoll(s, &end, 10);
    if (*s < '0' || *s > '9' || *end != '\0' || errno == ERANGE || x < 1 || x > max) return -1;
    *v = x;
    return 0;
}

/* A value read_int refused: a positive integer past max says what max is. */
static int bad_int(FILE *err, const char *flag, int64_t max, const char *val) {
    int digits = *val != '\0', nonzero = 0;
    for (const char *p = val; *p; p++) {
        digits &= *p >= '0' && *p <= '9';
        nonzero |= *p > '0' && *p <= '9';
    }
    char range[64];
    snprintf(range, sizeof range, "an integer from 1 to %lld", (long long)max);
    return bad_value(err, flag, digits && nonzero ? range : "a positive integer", val);
}

/* A float's range, as the messages state it: a value is 0 or of a magnitude a float holds
 * as a normal number, so that what is read is what is used (1e-50 would become 0, and a
 * learning rate of 0 or a division by a temperature of 0). */
#define NUM_MIN 1.2e-38 /* above FLT_MIN, 1.1755e-38 */
#define NUM_MAX 3.0e38  /* below FLT_MAX, 3.4028e38 */
#define NUM_RANGE "1.2e-38 to 3e+38"

/* A finite float: > 0 when positive, >= 0 otherwise, unless any_sign. 0, -1 for no such
 * number, -2 for a number of the right sign outside the range. */
static int read_num(const char *s, int positive, int any_sign, float *v) {
    char *end;
    errno = 0;
    double x = strtod(s, &end);
    if (*s == '\0' || *end != '\0' || isnan(x)) return -1;
    if (errno == ERANGE) return -2; /* past even a double's range (1e-400 reads as 0) */
    if (!any_sign && (positive ? !(x > 0) : x < 0)) return -1;
    if (fabs(x) > NUM_MAX || (x != 0 && fabs(x) < NUM_MIN)) return -2;
    *v = (float)x;
    return 0;
}

/* 1 to 4 comma-separated numbers; read_num's results. */
static int read_channels(const char *s, int positive, mlcrt_channels *c) {
    mlcrt_channels r = {0, {0}};
    for (const char *p = s;; p++) {
        char num[64];
        size_t len = strcspn(p, ",");
        if (r.n == 4 || len >= sizeof num) return -1;
        memcpy(num, p, len);
        num[len] = '\0';
        int bad = read_num(num, 1, !positive, &r.v[r.n++]);
        if (bad) return bad;
        p += len;
        if (*p == '\0') break;
    }
    *c = r;
    return 0;
}

/* The index of word s in the comma-separated choices, or -1. */
static int read_choice(const char *choices, const char *s) {
    int i = 0;
    for (const char *p = choices;; i++) {
        size_t len = strcspn(p, ",");
        if (strlen(s) == len && strncmp(p, s, len) == 0) return i;
        if (p[len] == '\0') return -1;
        p += len + 1;
    }
}

/* "a,b,c" as "a, b or c". */
static void choices_text(const char *choices, char *buf, size_t cap) {
    const char *last = strrchr(choices, ',');
    size_t n = 0;
    buf[0] = '\0';
    for (const char *p = choices; *p && n + 4 < cap; p++) {
        if (*p != ',') {
            buf[n++] = *p;
            continue;
        }
        const char *sep = p == last ? " or " : ", ";
        size_t len = strlen(sep);
        if (n + len >= cap) break;
        memcpy(buf + n, sep, len);
        n += len;
    }
    buf[n] = '\0';
}

/* Reads val into the member row f names; flag is the flag as the user wrote it. */
static int set_value(const flag_row *f, const char *flag, const char *val, trainer_opts *o, FILE *err) {
    void *field = (char *)o + f->offset;
    int64_t n = 0;
    switch (f->kind) {
    case FLAG_SWITCH: *(int *)field = 1; return 0;
    case FLAG_PATH:
        if (*val == '\0') return bad_value(err, flag, "a path", val);
        *(const char **)field = val;
        return 0;
    case FLAG_TEXT: *(const char **)field = val; return 0;
    case FLAG_INT:
    case FLAG_THREADS:
    case FLAG_COUNT:
        if (read_int(val, f->kind == FLAG_INT ? INT_MAX : f->kind == FLAG_THREADS ? 4096 : INT64_MAX, &n))
            return bad_int(err, flag, f->kind == FLAG_INT ? INT_MAX : f->kind == FLAG_THREADS ? 4096 : INT64_MAX, val);
        if (f->kind == FLAG_COUNT) *(int64_t *)field = n;
        else *(int *)field = (int)n;
        return 0;
    case FLAG_SEED: {
        char *end;
        errno = 0;
        unsigned long long x = strtoull(val, &end, 10);
        if (*val < '0' || *val > '9' || *end != '\0' || errno == ERANGE)
            return bad_value(err, flag, "a non-negative integer", val);
        *(uint64_t *)field = x;
        return 0;
    }
    case FLAG_POS:
    case FLAG_NONNEG: {
        int bad = read_num(val, f->kind == FLAG_POS, 0, (float *)field);
        if (bad == -2)
            return bad_value(
                err, flag, f->kind == FLAG_POS ? "a positive number from " NUM_RANGE : "0 or a number from " NUM_RANGE,
                val);
        if (bad) return bad_value(err, flag, f->kind == FLAG_POS ? "a positive number" : "a non-negative number", val);
        return 0;
    }
    case FLAG_LIST:
    case FLAG_POS_LIST: {
        int bad = read_channels(val, f->kind == FLAG_POS_LIST, (mlcrt_channels *)field);
        if (bad == -2)
            return bad_value(err, flag,
                             f->kind == FLAG_POS_LIST ? "1 to 4 comma-separated positive numbers from " NUM_RANGE
                                                      : "1 to 4 comma-separated numbers, each 0 or from " NUM_RANGE
                                                        " in magnitude",
                             val);
        if (bad)
            return bad_value(err, flag,
                             f->kind == FLAG_POS_LIST ? "1 to 4 comma-separated positive numbers"
                                                      : "1 to 4 comma-separated numbers",
                             val);
        return 0;
    }
    case FLAG_CHOICE: {
        int k = read_choice(f->choices, val);
        if (k < 0) {
            char text[256];
            choices_text(f->choices, text, sizeof text);
            return bad_value(err, flag, text, val);
        }
        *(int *)field = k;
        return 0;
    }
    case FLAG_SAVE_EVERY: {
        char num[32];
        size_t len = strlen(val);
        int steps = 0;
        snprintf(num, sizeof num, "%s", val);
        if (len > 0 && len < sizeof num && (val[len - 1] == 's' || val[len - 1] == 'e')) {
            steps = val[len - 1] == 's';
            num[len - 1] = '\0';
        }
        if (num[0] < '0' || num[0] > '9' || read_int(num, INT64_MAX, &n))
            return bad_value(err, flag, "N, Ne (epochs) or Ns (steps) with N >= 1", val);
        *(int64_t *)field = n;
        o->save_every_steps = steps;
        return 0;
    }
    case FLAG_AUGMENT: {
        mlcrt_augment aug;
        char msg[MLCRT_MSG_SIZE];
        if (mlcrt_augment_parse(val, &aug, msg, sizeof msg) != MLCRT_OK) {
            fprintf(err, "error: %s\n", msg);
            return -1;
        }
        *(const char **)field = val;
        return 0;
    }
    }
    return -1;
}

static const flag_row *find_flag(const char *flag) {
    for (int i = 0; i < mlcrt_n_flags; i++)
        if (strcmp(mlcrt_flags[i].flag, flag) == 0) return &mlcrt_flags[i];
    return NULL;
}

/* The table's defaults, then the model's train { } values (zero or NULL in the api: the
 * table's default stays). */
static void set_defaults(const mlc_model_api *api, trainer_opts *o) {
    memset(o, 0, sizeof *o);
    for (int i = 0; i < mlcrt_n_flags; i++) {
        const flag_row *f = &mlcrt_flags[i];
        if (f->def[0] && set_value(f, f->flag, f->def, o, stderr)) {
            fprintf(stderr, "%s:%d: settings.def: bad default for %s\n", __FILE__, __LINE__, f->flag);
            abort();
        }
    }
    if (api->default_epochs > 0) o->epochs = api->default_epochs;
    if (api->default_batch > 0) o->batch = api->default_batch;
    if (api->default_accum > 0) o->accum = api->default_accum;
    o->seed = api->default_seed; /* 0 is a seed like any other */
    o->lr = api->optimizer.lr;
    int sched = api->schedule ? mlcrt_schedule_parse(api->schedule) : -1;
    if (sched >= 0) o->schedule = sched;
    if (api->warmup_epochs > 0) o->warmup = api->warmup_epochs;
    if (api->step_size > 0) o->step_size = api->step_size;
    if (api->step_gamma > 0) o->gamma = api->step_gamma;
    o->augment = api->augment;
    if (api->n_norm > 0 && api->n_norm <= 4) {
        o->mean.n = o->std.n = api->n_norm;
        memcpy(o->mean.v, api->norm_mean, sizeof o->mean.v);
        memcpy(o->std.v, api->norm_std, sizeof o->std.v);
    }
}

/* A schedule setting the run's schedule (the flag's, or else the model's) has no use for
 * is refused, as a flag of another mode is, rather than taken and ignored: warm-up is
 * step's and cosine's (onecycle has its own), the decay's size and factor step's. */
static int check_schedule_flags(const char *const *given, int schedule, FILE *err) {
    static const struct {
        const char *flag;
        unsigned schedules; /* a bit per mlcrt_schedule_kind */
        const char *which;
    } uses[] = {{"--warmup", 1u << MLCRT_SCHED_STEP | 1u << MLCRT_SCHED_COSINE, "step and cosine"},
                {"--step-size", 1u << MLCRT_SCHED_STEP, "step"},
                {"--gamma", 1u << MLCRT_SCHED_STEP, "step"}};
    for (size_t i = 0; i < sizeof uses / sizeof uses[0]; i++)
        if (given[find_flag(uses[i].flag) - mlcrt_flags] && !(uses[i].schedules >> schedule & 1)) {
            fprintf(err, "error: %s: the schedule is %s, which does not use it (%s do%s; --schedule chooses)\n",
                    uses[i].flag, mlcrt_schedule_name(schedule), uses[i].which, strchr(uses[i].which, ' ') ? "" : "es");
            return 1;
        }
    return 0;
}

/* A --top-k beyond a token model's vocabulary (it was taken as all of it): a value out of
 * its range, refused with the command line's other errors (status 2). */
static int check_top_k(const trainer_opts *o, const mlc_model_api *api, FILE *err) {
    mlcrt_lm_shape lm;
    char msg[MLCRT_MSG_SIZE];
    if (o->top_k > 0 && mlcrt_lm_shape_of(api, &lm, msg, sizeof msg) == MLCRT_OK && o->top_k > lm.vocab) {
        fprintf(err, "error: --top-k: expected 1 to %lld (model '%s' has a vocabulary of %lld), found %d\n",
                (long long)lm.vocab, api->name, (long long)lm.vocab, o->top_k);
        return 1;
    }
    return 0;
}

int mlcrt_check_token_flags(const trainer_opts *o, const mlc_model_api *api, FILE *err) {
    if (!mlcrt_is_token_model(api)) return 0;
    if (o->mean.n) {
        fprintf(err, "error: --mean/--std: model '%s' reads tokens, which are not normalised\n", api->name);
        return 1;
    }
    if (o->mode == MODE_train && o->augment && *o->augment && strcmp(o->augment, "none") != 0) {
        fprintf(err, "error: --augment: model '%s' reads tokens, which are not augmented\n", api->name);
        return 1;
    }
    if (o->mode == MODE_train && o->val) {
        fprintf(err,
                "error: --val: model '%s' reads tokens; its validation windows come from the corpus (the last 10 %% "
                "of a text file, or val.bin)\n",
                api->name);
        return 1;
    }
    return 0;
}

/* The modes each flag means something in (a bit per mode). Every flag has a row (the
 * tests check it), so a new flag is placed rather than accepted and ignored in a mode
 * that never reads it, as --lr in eval and --data in predict were. --ema is placed by
 * trainer.c, which says why it is eval's and predict's. */
#define IN_MODE(m) (1u << MODE_##m)
#define TRAINING IN_MODE(train)
#define EVAL_PREDICT (IN_MODE(eval) | IN_MODE(predict))
#define ALL_MODES ((1u << MODE_COUNT) - 1)
static const struct {
    const char *flag;
    unsigned modes;
} mode_flags[] = {
    /* data: eval reads the test split, predict an image file of its own */
    {"--data", TRAINING | IN_MODE(eval)},
    {"--train-limit", TRAINING},
    {"--test-limit", TRAINING | IN_MODE(eval)},
    {"--val", TRAINING},
    {"--mean", TRAINING | EVAL_PREDICT},
    {"--std", TRAINING | EVAL_PREDICT},
    {"--augment", TRAINING},
    {"--no-prefetch", TRAINING},
    {"--check-finite", TRAINING}, /* evaluation is not checked */
    /* training */
    {"--epochs", TRAINING},
    {"--batch", TRAINING | EVAL_PREDICT}, /* sample runs one window at a time */
    {"--accum", TRAINING},
    {"--lr", TRAINING},
    {"--schedule", TRAINING},
    {"--warmup", TRAINING},
    {"--step-size", TRAINING},
    {"--gamma", TRAINING},
    {"--seed", TRAINING | IN_MODE(sample)}, /* eval and predict draw nothing */
    {"--threads", ALL_MODES},
    {"--max-steps", TRAINING},
    {"--eval-every", TRAINING},
    /* checkpoints */
    {"--save", TRAINING},
    {"--save-every", TRAINING},
    {"--resume", TRAINING},
    {"--load", TRAINING},
    {"--ema", ALL_MODES},
    /* output: eval, predict and sample print their results and nothing else */
    {"--log", TRAINING},
    {"--log-format", TRAINING},
    {"--log-every", TRAINING},
    {"--progress", TRAINING},
    {"--top", IN_MODE(predict)},
    {"--quiet", TRAINING},
    {"--help", ALL_MODES},
    {"--version", ALL_MODES},
    /* sample */
    {"--prompt", IN_MODE(sample)},
    {"--tokens", IN_MODE(sample)},
    {"--temperature", IN_MODE(sample)},
    {"--top-k", IN_MODE(sample)},
    /* data-parallel: every mode runs under mpirun; only training overlaps or has batch norm's
     * training statistics */
    {"--comm-timeout", ALL_MODES},
    {"--no-overlap", TRAINING},
    {"--sync-bn", TRAINING},
};

unsigned mlcrt_flag_modes(const char *flag) {
    for (size_t i = 0; i < sizeof mode_flags / sizeof mode_flags[0]; i++)
        if (strcmp(mode_flags[i].flag, flag) == 0) return mode_flags[i].modes;
    return 0;
}

/* 0, or -1 after the error, when a flag given is for another mode. */
static int check_modes(const char *const *given, int mode, FILE *err) {
    for (size_t i = 0; i < sizeof mode_flags / sizeof mode_flags[0]; i++) {
        const flag_row *f = find_flag(mode_flags[i].flag);
        if (!f) {
            fprintf(stderr, "%s:%d: mode_flags names %s, which settings.def lacks\n", __FILE__, __LINE__,
                    mode_flags[i].flag);
            abort();
        }
        if (!given[f - mlcrt_flags] || (mode_flags[i].modes >> mode & 1)) continue;
        /* "train, eval or predict" */
        char list[128] = "";
        size_t n = 0;
        unsigned left = mode_flags[i].modes;
        for (int m = 0; m < MODE_COUNT; m++) {
            if (!(left >> m & 1)) continue;
            left &= ~(1u << m);
            n += (size_t)snprintf(list + n, sizeof list - n, "%s%s",
                                  !n     ? ""
                                  : left ? ", "
                                         : " or ",
                                  mlcrt_modes[m].name);
        }
        fprintf(err, "error: %s applies to %s, not %s\n", f->flag, list, mlcrt_modes[mode].name);
        return -1;
    }
    return 0;
}

/* --top K given: a classifier's top K of its classes, which it must have (the default
 * alone is cut to the class count). 0, or -1 after the error. */
static int check_top(const mlc_model_api *api, int top, FILE *err) {
    if (!api->classifier) {
        fprintf(err, "error: --top: model '%s' is no classifier (predict prints every value of its outputs)\n",
                api->name);
        return -1;
    }
    int64_t classes = api->outputs[api->cls_output].numel;
    if (top > classes) {
        fprintf(err, "error: --top: expected 1 to %lld (model '%s' has %lld classes), found '%d'\n", (long long)classes,
                api->name, (long long)classes, top);
        return -1;
    }
    return 0;
}

static int count_words(const char *s) {
    int n = 0;
    for (const char *p = s; *p; p++) n += *p != ' ' && (p == s || p[-1] == ' ');
    return n;
}

int mlcrt_parse_flags(int argc, char **argv, const mlc_model_api *api, trainer_opts *o, const char *prog, FILE *err) {
    set_defaults(api, o);
    int first = 1;
    for (int m = 0; argc > 1 && argv[1] && m < MODE_COUNT; m++)
        if (strcmp(argv[1], mlcrt_modes[m].name) == 0) o->mode = m, first = 2;
    const mode_row *mode = &mlcrt_modes[o->mode];
    int npos = 0, maxpos = count_words(mode->args);
    /* each flag's value as given, to refuse a second one: `--save a --save b` would write
     * only b, and `--epochs 1 ... --epochs 20` run one of them without a word */
    const char *given[sizeof mlcrt_flags / sizeof mlcrt_flags[0]] = {0};
    for (int i = first; i < argc; i++) {
        const char *a = argv[i];
        if (strncmp(a, "--", 2) != 0 && strcmp(a, "-h") != 0) {
            if (npos >= maxpos) {
                fprintf(err, "error: unexpected argument '%s' (see --help)\n", a);
                return -1;
            }
            if (npos++ == 0) o->ckpt_arg = a;
            else o->file_arg = a;
            continue;
        }
        /* `--flag VALUE` or `--flag=VALUE` */
        char flag[64];
        const char *val = NULL, *eq = strchr(a, '=');
        size_t len = eq ? (size_t)(eq - a) : strlen(a);
        if (len >= sizeof flag) len = sizeof flag - 1;
        memcpy(flag, a, len);
        flag[len] = '\0';
        if (eq) val = eq + 1;
        const flag_row *f = find_flag(strcmp(flag, "-h") == 0 ? "--help" : flag);
        if (!f) {
            fprintf(err, "error: unknown flag '%s' (see --help)\n", flag);
            return -1;
        }
        if (f->kind == FLAG_SWITCH && val) {
            fprintf(err, "error: %s: takes no value, found '%s'\n", flag, val);
            return -1;
        }
        if (f->kind != FLAG_SWITCH && !val) {
            if (i + 1 >= argc) {
                fprintf(err, "error: %s: missing value\n", flag);
                return -1;
            }
            /* `--data --epochs 1`: the value forgotten, not a path named --epochs */
            char next[64];
            snprintf(next, sizeof next, "%.*s", (int)strcspn(argv[i + 1], "="), argv[i + 1]);
            if (find_flag(next)) {
                fprintf(err, "error: %s: missing value (found the flag '%s')\n", flag, next);
                return -1;
            }
            val = argv[++i];
        }
        const char **prev = &given[f - mlcrt_flags];
        if (*prev) {
            if (f->kind == FLAG_SWITCH) fprintf(err, "error: %s: given twice (give it once)\n", flag);
            else fprintf(err, "error: %s: given twice ('%s', then '%s'; give it once)\n", flag, *prev, val);
            return -1;
        }
        *prev = val ? val : "";
        if (set_value(f, flag, val, o, err)) return -1;
        if (f->kind == FLAG_LIST || f->kind == FLAG_POS_LIST)
            o->norm_flags = 1; /* a checkpoint's normalisation must then agree (trainer.c) */
        if (strcmp(f->flag, "--epochs") == 0) o->epochs_flag = 1;
        if (o->help) return 0;
    }
    if (check_modes(given, o->mode, err)) return -1;
    if (given[find_flag("--save-every") - mlcrt_flags] && !o->save_path) {
        fprintf(err, "error: --save-every: needs --save, the checkpoint it writes\n");
        return -1;
    }
    if (npos < maxpos) {
        fprintf(err, "error: %s: expected %s (usage: %s %s %s [flags])\n", mode->name, mode->expect, prog, mode->name,
                mode->args);
        return -1;
    }
    if (given[find_flag("--top") - mlcrt_flags] && check_top(api, o->top, err)) return -1;
    if (check_schedule_flags(given, o->schedule, err)) return -1;
    /* a collective's first wait for the other ranks already takes milliseconds: a timeout
     * below one ended every run at its start */
    if (o->comm_timeout < 0.01f) {
        fprintf(err, "error: --comm-timeout: expected at least 0.01 seconds, found '%s'\n",
                given[find_flag("--comm-timeout") - mlcrt_flags]);
        return -1;
    }
    /* dropout's Philox counter holds the micro-batch in 8 bits (docs/trainer.md, --accum):
     * a 257th would draw the first one's masks again */
    if (o->accum > MLC_MAX_ACCUM) {
        fprintf(err, "error: --accum: expected 1 to %d micro-batches a step (dropout tells no more apart), found %d\n",
                MLC_MAX_ACCUM, o->accum);
        return -1;
    }
    if (o->check_finite && !api->set_check_finite) {
        fprintf(err, "error: --check-finite: model '%s' (target %s) cannot check its values\n", api->name, api->target);
        return -1;
    }
    if (o->load_path && o->resume_path) {
        fprintf(err,
                "error: --load and --resume cannot be combined (--resume also loads the "
                "weights)\n");
        return -1;
    }
    if (o->mean.n != o->std.n) {
        fprintf(err, "error: --mean and --std: expected the same number of values, found %d and %d\n", o->mean.n,
                o->std.n);
        return -1;
    }
    if (mlcrt_is_token_model(api) && check_top_k(o, api, err)) return -1;
    return 0;
}

/* " (default V)" for --help, or "" where the default is "none". */
static void default_text(const flag_row *f, const trainer_opts *d, char *buf, size_t cap) {
    const void *field = (const char *)d + f->offset;
    char v[256] = "";
    switch (f->kind) {
    case FLAG_SWITCH: break;
    case FLAG_PATH:
    case FLAG_TEXT:
    case FLAG_AUGMENT: {
        const char *s = *(const char *const *)field;
        if (s && *s && strcmp(s, "none") != 0) snprintf(v, sizeof v, "%s", s);
        break;
    }
    case FLAG_INT:
    case FLAG_THREADS:
        if (*(const int *)field) snprintf(v, sizeof v, "%d", *(const int *)field);
        break;
    case FLAG_CHOICE: {
        const char *p = f->choices;
        for (int k = *(const int *)field; k > 0 && strchr(p, ','); k--) p = strchr(p, ',') + 1;
        snprintf(v, sizeof v, "%.*s", (int)strcspn(p, ","), p);
        break;
    }
    case FLAG_COUNT:
    case FLAG_SAVE_EVERY:
        if (*(const int64_t *)field)
            snprintf(v, sizeof v, "%lld%s", (long long)*(const int64_t *)field,
                     f->kind == FLAG_SAVE_EVERY && d->save_every_steps ? "s" : "");
        break;
    case FLAG_SEED: snprintf(v, sizeof v, "%llu", (unsigned long long)*(const uint64_t *)field); break;
    case FLAG_POS:
    case FLAG_NONNEG:
        if (*(const float *)field) snprintf(v, sizeof v, "%g", (double)*(const float *)field);
        break;
    case FLAG_LIST:
    case FLAG_POS_LIST: {
        const mlcrt_channels *c = field;
        size_t n = 0;
        for (int i = 0; i < c->n && n < sizeof v; i++)
            n += (size_t)snprintf(v + n, sizeof v - n, "%s%g", i ? "," : "", (double)c->v[i]);
        break;
    }
    }
    if (v[0]) snprintf(buf, cap, " (default %s)", v);
    else buf[0] = '\0';
}

/* "  LEFT  text", the text wrapped at 80 columns under itself. */
static void help_item(FILE *f, const char *left, const char *text) {
    enum { INDENT = 22, WIDTH = 80 };
    int col, first = 1;
    if ((int)strlen(left) > INDENT - 3) /* a long LEFT: the text starts on the next line */
        fprintf(f, "  %s\n", left), col = fprintf(f, "%*s", INDENT, "");
    else col = fprintf(f, "  %-*s ", INDENT - 3, left);
    for (const char *p = text; *p;) {
        if (*p == ' ') {
            p++;
            continue;
        }
        int w = (int)strcspn(p, " ");
        if (!first && col + 1 + w > WIDTH) {
            col = fprintf(f, "\n%*s", INDENT, "") - 1;
        } else if (!first) {
            fputc(' ', f);
            col++;
        }
        col += fprintf(f, "%.*s", w, p);
        p += w;
        first = 0;
    }
    fputc('\n', f);
}

void mlcrt_usage(FILE *f, const char *prog, const mlc_model_api *api) {
    trainer_opts d;
    set_defaults(api, &d);
    for (int m = 0; m < MODE_COUNT; m++) {
        const mode_row *r = &mlcrt_modes[m];
        fprintf(f, "%s %s %s%s%s%s%s [flags]\n", m ? "      " : "usage:", prog, m ? "" : "[", r->name, m ? "" : "]",
                r->args[0] ? " " : "", r->args);
    }
    fprintf(f, "\nmodes (model '%s'):\n", api->name);
    for (int m = 0; m < MODE_COUNT; m++) {
        char left[64];
        const mode_row *r = &mlcrt_modes[m];
        snprintf(left, sizeof left, "%s%s%s", r->name, r->args[0] ? " " : "", r->args);
        help_item(f, left, r->help);
    }
    const char *section = "";
    for (int i = 0; i < mlcrt_n_flags; i++) {
        const flag_row *r = &mlcrt_flags[i];
        char left[64], text[512], def[300];
        if (strcmp(r->section, section) != 0) fprintf(f, "\n%s:\n", section = r->section);
        snprintf(left, sizeof left, "%s%s%s", r->flag, r->arg[0] ? " " : "", r->arg);
        default_text(r, &d, def, sizeof def);
        snprintf(text, sizeof text, "%s%s", r->help, def);
        help_item(f, left, text);
    }
}
