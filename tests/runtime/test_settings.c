/* test_settings.c - the table of settings (runtime/settings.def) against the docs and the
 * runtime: docs/language.md documents every train { } key, docs/trainer.md every mode and
 * flag and no flag the table lacks, and the table's choices match the code they index. */
#include <criterion/criterion.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "schedule.h"
#include "testutil.h"
#include "trainer_flags.h"

static char *read_doc(const char *name) {
    char path[1024];
    size_t n;
    snprintf(path, sizeof path, "%s/docs/%s", MLC_SOURCE_ROOT, name);
    char *text = (char *)tu_read(path, &n); /* freed at exit */
    cr_assert_not_null(text, "cannot read %s", path);
    text[n] = '\0';
    return text;
}

/* The train { } keys of the table: "schedule(warmup)" is documented as `warmup`. */
static int table_keys(const char **keys) {
    static char inner[64][32];
    static const char *const all[] = {
#define MLC_FLAG(FIELD, FLAG, KIND, ARG, CHOICES, DEFAULT, KEY, SECTION, HELP) KEY,
#define MLC_KEY(KEY, DEFAULT, HELP) KEY,
#include "settings.def"
    };
    int n = 0;
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) {
        const char *k = all[i], *paren = strchr(k, '(');
        if (!k[0]) continue;
        if (paren) {
            snprintf(inner[n], sizeof inner[n], "%.*s", (int)(strcspn(paren + 1, ")")), paren + 1);
            k = inner[n];
        }
        keys[n++] = k;
    }
    return n;
}

/* The first key with no table row "| `KEY`" in language.md's `## train { }` section (up to
 * the next `## ` heading), or NULL. */
static const char *key_missing(const char *doc, const char *const *keys, int n) {
    const char *start = strstr(doc, "\n## train { }");
    cr_assert_not_null(start, "language.md has no '## train { }' section");
    const char *end = strstr(start + 1, "\n## ");
    size_t len = end ? (size_t)(end - start) : strlen(start);
    for (int i = 0; i < n; i++) {
        char row[64];
        snprintf(row, sizeof row, "\n| `%s`", keys[i]);
        const char *hit = strstr(start, row);
        if (!hit || hit >= start + len) return keys[i];
    }
    return NULL;
}

static int flag_char(char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-'; }

/* Whether doc names flag in a code span: "`--flag" followed by anything a flag name
 * cannot go on with (so `--log-format` does not count for --log). */
static int doc_names_flag(const char *doc, const char *flag) {
    char span[64];
    snprintf(span, sizeof span, "`%s", flag);
    for (const char *p = strstr(doc, span); p; p = strstr(p + 1, span))
        if (!flag_char(p[strlen(span)])) return 1;
    return 0;
}

/* The first mode or flag of the table trainer.md does not name, or NULL. A mode is named
 * as it is run: "./net NAME" ("./net [NAME]" for the default one). */
static const char *flag_missing(const char *doc) {
    static char mode[64];
    for (int m = 0; m < MODE_COUNT; m++) {
        char run[64], run_default[64];
        snprintf(run, sizeof run, "./net %s", mlcrt_modes[m].name);
        snprintf(run_default, sizeof run_default, "./net [%s]", mlcrt_modes[m].name);
        if (!strstr(doc, run) && !strstr(doc, run_default))
            return snprintf(mode, sizeof mode, "mode %s", mlcrt_modes[m].name), mode;
    }
    for (int i = 0; i < mlcrt_n_flags; i++)
        if (!doc_names_flag(doc, mlcrt_flags[i].flag)) return mlcrt_flags[i].flag;
    return NULL;
}

/* The first "`--name" in doc that is no flag of the table, or NULL. */
static const char *unknown_flag(const char *doc) {
    static char name[64];
    for (const char *p = strstr(doc, "`--"); p; p = strstr(p + 1, "`--")) {
        size_t len = 1;
        while (flag_char(p[len]) && len < sizeof name) len++;
        snprintf(name, sizeof name, "%.*s", (int)(len - 1), p + 1);
        int known = 0;
        for (int i = 0; i < mlcrt_n_flags; i++) known |= strcmp(mlcrt_flags[i].flag, name) == 0;
        if (!known) return name;
    }
    return NULL;
}

/* doc with every occurrence of from replaced by to (same length). */
static char *replaced(const char *doc, const char *from, const char *to) {
    char *s = strdup(doc);
    cr_assert_eq(strlen(from), strlen(to));
    for (char *p = strstr(s, from); p; p = strstr(p + 1, from)) memcpy(p, to, strlen(to));
    return s;
}

Test(settings, language_md_documents_every_train_key) {
    const char *keys[64];
    int n = table_keys(keys);
    cr_assert_geq(n, 13); /* batch .. std, the schedule's three arguments, optimizer, clip_norm */
    char *doc = read_doc("language.md");
    const char *miss = key_missing(doc, keys, n);
    cr_assert_null(miss, "docs/language.md: the train { } section has no row for `%s`", miss);
}

Test(settings, trainer_md_documents_every_mode_and_flag) {
    char *doc = read_doc("trainer.md");
    const char *miss = flag_missing(doc);
    cr_assert_null(miss, "docs/trainer.md does not name %s", miss);
    const char *extra = unknown_flag(doc);
    cr_assert_null(extra, "docs/trainer.md names %s, which the trainer does not have", extra);
}

/* The checks above can fail: each reports a name deleted from a copy of the docs. */
Test(settings, checks_report_what_the_docs_lack) {
    const char *keys[64];
    int n = table_keys(keys);
    char *lang = read_doc("language.md"), *tr = read_doc("trainer.md");
    char *no_warmup = replaced(lang, "| `warmup`", "| `wArmup`");
    cr_assert_str_eq(key_missing(no_warmup, keys, n), "warmup");
    char *no_gamma = replaced(tr, "`--gamma", "`--gAmma");
    cr_assert_str_eq(flag_missing(no_gamma), "--gamma");
    cr_assert_str_eq(unknown_flag(no_gamma), "--g");
    char *no_log = replaced(tr, "`--log", "`--loq"); /* every mention, --log-format's too */
    cr_assert_str_eq(flag_missing(no_log), "--log");
    char *no_eval = replaced(tr, "./net eval", "./net evil");
    cr_assert_str_eq(flag_missing(no_eval), "mode eval");
    free(no_warmup);
    free(no_gamma);
    free(no_log);
    free(no_eval);
}

/* --schedule's choices are indices into mlcrt_schedule_kind, whose names schedule.c has. */
Test(settings, schedule_choices_match_schedule_c) {
    const flag_row *f = NULL;
    for (int i = 0; i < mlcrt_n_flags; i++)
        if (strcmp(mlcrt_flags[i].flag, "--schedule") == 0) f = &mlcrt_flags[i];
    cr_assert_not_null(f);
    char want[128] = "";
    for (int k = 0; k < 4; k++)
        snprintf(want + strlen(want), sizeof want - strlen(want), "%s%s", k ? "," : "", mlcrt_schedule_name(k));
    cr_assert_str_eq(f->choices, want);
}
