/* test_docs.c - docs/language.md against the compiler's own tables: every builtin the
 * language can call (compiler/lower/builtins.c) has a row naming it as a call with each of
 * its arguments, every op of the op table (compiler/ops/ops.def) is in the op-table section
 * that explains --dump-ir, and every keyword of the language is shown. The train { } keys
 * and trainer flags are checked against runtime/settings.def by runtime_settings. */
#include <criterion/criterion.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lower_internal.h"

static char *slurp(const char *path) {
    FILE *f = fopen(path, "rb");
    cr_assert_not_null(f, "cannot open %s", path);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *s = malloc((size_t)n + 1);
    cr_assert_eq(fread(s, 1, (size_t)n, f), (size_t)n);
    s[n] = 0;
    fclose(f);
    return s;
}

static char *language_md(void) { return slurp(MLC_SOURCE_ROOT "/docs/language.md"); }

static int word_char(char c) { return isalnum((unsigned char)c) || c == '_'; }

/* Whether `word` occurs in [s, end) as a whole word. */
static int has_word(const char *s, const char *end, const char *word) {
    size_t n = strlen(word);
    for (const char *p = s; p && p + n <= end; p = strstr(p + 1, word)) {
        p = strstr(p, word);
        if (!p || p + n > end) return 0;
        if ((p == s || !word_char(p[-1])) && !word_char(p[n])) return 1;
    }
    return 0;
}

/* The first argument of builtin b the table row [row, eol) does not name, NULL if none. */
static const char *row_lacks(const Builtin *b, const char *row, const char *eol) {
    static char arg[48];
    for (int k = 0; k < MAX_ARGS && b->sig.params[k]; k++) {
        snprintf(arg, sizeof arg, "%s", b->sig.params[k]);
        size_t n = strlen(arg);
        if (n && arg[n - 1] == '=') arg[n - 1] = 0;
        if (!has_word(row, eol, arg)) return arg;
    }
    return NULL;
}

/* The first builtin (or "name(arg)") the text does not document, NULL if none. A builtin
 * needs a table row (a line starting with '|') containing "`name(" that names each of its
 * arguments. */
static const char *missing_builtin(const char *doc) {
    static char what[192];
    for (int i = 0; i < nbuiltins; i++) {
        char call[64];
        snprintf(call, sizeof call, "`%s(", builtins[i].name);
        const char *lack = builtins[i].name;
        for (const char *p = strstr(doc, call); p && lack; p = strstr(p + 1, call)) {
            const char *bol = p;
            while (bol > doc && bol[-1] != '\n') bol--;
            if (*bol != '|') continue;
            const char *eol = strchr(p, '\n');
            const char *arg = row_lacks(&builtins[i], bol, eol ? eol : p + strlen(p));
            if (!arg) lack = NULL;
            else if (lack == builtins[i].name)
                snprintf(what, sizeof what, "%.64s(%.64s)", builtins[i].name, arg), lack = what;
        }
        if (lack) return lack;
    }
    return NULL;
}

/* The first op missing from the op-table section, NULL if none. */
static const char *missing_op(const char *doc) {
    const char *sec = strstr(doc, "## The op table");
    if (!sec) return "the section '## The op table'";
    const char *end = strstr(sec + 3, "\n## ");
    if (!end) end = sec + strlen(sec);
    for (int i = 0; i < OP_COUNT; i++)
        if (!has_word(sec, end, op_info[i].name)) return op_info[i].name;
    return NULL;
}

static const char *const keywords[] = {"model", "input", "param", "output", "loss", "return", "if", "else",
                                       "for",   "in",    "block", "train",  "and",  "or",     "not"};

/* Each keyword must be shown in use: as a whole word inside a `code span`, on a line other
 * than the list of keywords itself. */
static const char *missing_keyword(const char *doc) {
    for (size_t i = 0; i < sizeof keywords / sizeof keywords[0]; i++) {
        int shown = 0;
        for (const char *p = strchr(doc, '`'); p && !shown; p = strchr(p + 1, '`')) {
            const char *q = strchr(p + 1, '`');
            if (!q) break;
            const char *bol = p;
            while (bol > doc && bol[-1] != '\n') bol--;
            if (strncmp(bol, "- Keywords:", 11) && memchr(p, '\n', (size_t)(q - p)) == NULL)
                shown = has_word(p + 1, q, keywords[i]);
            p = q;
        }
        if (!shown) return keywords[i];
    }
    return NULL;
}

Test(docs, every_builtin_with_its_arguments) {
    char *doc = language_md();
    const char *miss = missing_builtin(doc);
    cr_expect_null(miss, "docs/language.md has no table row for `%s` (a row with `name(` naming every argument)", miss);
    free(doc);
}

Test(docs, every_op_in_the_op_table) {
    char *doc = language_md();
    const char *miss = missing_op(doc);
    cr_expect_null(miss, "docs/language.md's op table does not name the op %s", miss);
    free(doc);
}

Test(docs, every_keyword) {
    char *doc = language_md();
    const char *miss = missing_keyword(doc);
    cr_expect_null(miss, "docs/language.md does not show the keyword %s", miss);
    free(doc);
}

/* The checks can fail: a name cut out of a copy of the docs is reported. */
Test(docs, checks_report_what_the_docs_lack) {
    char *doc = language_md();
    char *p = strstr(doc, "`dense(");
    cr_assert_not_null(p);
    memcpy(p + 1, "dunce", 5);
    cr_expect_str_eq(missing_builtin(doc), "dense");
    free(doc);

    doc = language_md();
    p = strstr(doc, "`logsumexp(x, axis = -1, keepdims");
    cr_assert_not_null(p);
    memcpy(p + 27, "keepdimz", 8);
    cr_expect_str_eq(missing_builtin(doc), "logsumexp(keepdims)");
    free(doc);

    doc = language_md();
    char *sec = strstr(doc, "## The op table");
    cr_assert_not_null(sec);
    for (p = strstr(sec, "softplus"); p; p = strstr(p, "softplus")) memcpy(p, "softplux", 8);
    cr_expect_str_eq(missing_op(doc), "softplus");
    free(doc);

    doc = language_md();
    for (p = strstr(doc, "else"); p; p = strstr(p, "else")) memcpy(p, "elze", 4);
    cr_expect_str_eq(missing_keyword(doc), "else");
    free(doc);
}
