/* trainer_flags.h - the trainer's command line: its options after parsing, the parser and
 * --help, all read from the table in settings.def. Private to libmlcrt's trainer (not
 * installed); tests use it to check the table against the docs. */
#ifndef MLCRT_TRAINER_FLAGS_H
#define MLCRT_TRAINER_FLAGS_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "mlc_model.h"

enum {
#define MLC_MODE(NAME, ARGS, EXPECT, HELP) MODE_##NAME,
#include "settings.def"
    MODE_COUNT
};

/* --progress's choices, in settings.def's order. */
enum { PROGRESS_AUTO, PROGRESS_ALWAYS, PROGRESS_NEVER };

/* --mean / --std: one value for all channels or one per channel. */
typedef struct mlcrt_channels {
    int n; /* 0: not given */
    float v[4];
} mlcrt_channels;

/* Every flag's value after defaults, the model's train { } defaults and argv, in that
 * order. Zero means "none" for limits and optional paths. */
typedef struct trainer_opts {
    int mode;
    const char *ckpt_arg, *file_arg; /* eval / predict positionals */
    const char *data_dir;
    int epochs, batch, threads; /* threads 0: OpenMP's default */
    int accum;                  /* micro-batches of `batch` samples per optimizer step, at most MLC_MAX_ACCUM */
    float lr;
    int schedule; /* mlcrt_schedule_kind */
    float warmup, gamma;
    int step_size; /* 0: max(1, epochs / 3) */
    uint64_t seed;
    int64_t train_limit, test_limit, max_steps, val;
    mlcrt_channels mean, std;
    int norm_flags; /* --mean / --std given on the command line (not the model's default) */
    const char *augment;
    int no_prefetch;
    const char *save_path, *load_path, *resume_path;
    int64_t save_every;
    int save_every_steps; /* 1: save_every counts steps, 0: epochs */
    const char *log_path;
    int log_jsonl;
    int64_t log_every;
    int progress;
    int top;
    int quiet, help;
    int version; /* --version (build_info.c) */
    int check_finite;
    int ema;         /* eval, predict: the parameters' moving averages (ema_weights.c) */
    int epochs_flag; /* --epochs given on the command line (--max-steps alone sets the length) */
    /* language models: validation every N steps, and the sample mode's settings */
    int64_t eval_every;
    const char *prompt;
    int sample_tokens, top_k;
    float temperature;
    float comm_timeout; /* seconds a data-parallel collective may wait (dist.h) */
    int no_overlap;     /* all-reduce after the backward, not bucket by bucket during it */
    int sync_bn;        /* batch-norm statistics over the global batch (dist.h) */
} trainer_opts;

/* How a flag's value is read (settings.def describes each kind). */
typedef enum flag_kind {
    FLAG_SWITCH,
    FLAG_PATH,
    FLAG_TEXT,
    FLAG_INT,
    FLAG_THREADS,
    FLAG_COUNT,
    FLAG_SEED,
    FLAG_POS,
    FLAG_NONNEG,
    FLAG_LIST,
    FLAG_POS_LIST,
    FLAG_CHOICE,
    FLAG_SAVE_EVERY,
    FLAG_AUGMENT
} flag_kind;

/* One MLC_FLAG row of settings.def. */
typedef struct flag_row {
    const char *flag;
    flag_kind kind;
    size_t offset; /* of the member of trainer_opts it sets */
    const char *arg, *choices, *def, *key, *section, *help;
} flag_row;

/* One MLC_MODE row. */
typedef struct mode_row {
    const char *name, *args, *expect, *help;
} mode_row;

extern const flag_row mlcrt_flags[];
extern const int mlcrt_n_flags;
extern const mode_row mlcrt_modes[MODE_COUNT];

/* Fills o from the table's defaults and the model's train { } defaults, then argv. On a
 * bad command line prints one `error:` line on err and returns -1; stops at --help
 * (o->help set). prog is argv[0] as usage messages show it. */
int mlcrt_parse_flags(int argc, char **argv, const mlc_model_api *api, trainer_opts *o, const char *prog, FILE *err);

/* A token model's refusal of the settings only images have (--mean/--std, --augment,
 * --val; the flag's or the model's train { } value alike): flags the model refuses, so
 * exit status 1 (docs/trainer.md), not the command line's 2. 1 after an `error:` line on
 * err, else 0. */
int mlcrt_check_token_flags(const trainer_opts *o, const mlc_model_api *api, FILE *err);

/* The modes flag (as settings.def spells it) means something in, bit MODE_x for mode x; 0
 * for a flag the mode table lacks. */
unsigned mlcrt_flag_modes(const char *flag);

/* --help: modes, then every flag under its section, with the model's defaults. */
void mlcrt_usage(FILE *f, const char *prog, const mlc_model_api *api);

#endif
