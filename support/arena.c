/* arena.c - bump allocator; see arena.h. */
#include "arena.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct ArenaChunk {
    ArenaChunk *next;
    size_t used, cap;
    _Alignas(16) unsigned char data[];
};

enum { ARENA_CHUNK = 1 << 16 };

/* A chunk arena_rewind kept that holds size bytes, taken off the spare list; NULL if none. */
static ArenaChunk *spare_chunk(Arena *a, size_t size) {
    for (ArenaChunk **p = &a->spare; *p; p = &(*p)->next)
        if ((*p)->cap >= size) {
            ArenaChunk *c = *p;
            *p = c->next;
            return c;
        }
    return NULL;
}

void *arena_alloc(Arena *a, size_t size) {
    size = (size + 15) & ~(size_t)15;
    ArenaChunk *c = a->head;
    if (!c || c->used + size > c->cap) {
        c = spare_chunk(a, size);
        if (!c) {
            size_t cap = size > ARENA_CHUNK ? size : ARENA_CHUNK;
            c = malloc(sizeof(ArenaChunk) + cap);
            if (!c) mlc_out_of_memory(sizeof(ArenaChunk) + cap);
            c->cap = cap;
        }
        c->next = a->head;
        c->used = 0;
        a->head = c;
    }
    void *p = c->data + c->used;
    c->used += size;
    memset(p, 0, size);
    return p;
}

void *arena_realloc(Arena *a, void *p, size_t old_size, size_t new_size) {
    void *q = arena_alloc(a, new_size);
    if (p && old_size) memcpy(q, p, old_size < new_size ? old_size : new_size);
    return q;
}

char *arena_strndup(Arena *a, const char *s, size_t n) {
    char *d = arena_alloc(a, n + 1);
    memcpy(d, s, n);
    d[n] = 0;
    return d;
}

char *arena_strdup(Arena *a, const char *s) { return arena_strndup(a, s, strlen(s)); }

char *arena_printf(Arena *a, const char *fmt, ...) {
    va_list ap, ap2;
    va_start(ap, fmt);
    va_copy(ap2, ap);
    /* Measuring with a real (small) buffer rather than vsnprintf(NULL, 0, ...): gcc 12
     * with -fsanitize=undefined misreports the NULL form as a null format (-Werror). */
    char small[128];
    int n = vsnprintf(small, sizeof small, fmt, ap);
    va_end(ap);
    if (n < 0) mlc_die("arena_printf: bad format '%s'", fmt);
    char *s = arena_alloc(a, (size_t)n + 1);
    if ((size_t)n < sizeof small) memcpy(s, small, (size_t)n + 1);
    else vsnprintf(s, (size_t)n + 1, fmt, ap2);
    va_end(ap2);
    return s;
}

static void free_chunks(ArenaChunk *c) {
    while (c) {
        ArenaChunk *n = c->next;
        free(c);
        c = n;
    }
}

void arena_free(Arena *a) {
    free_chunks(a->head);
    free_chunks(a->spare);
    a->head = a->spare = NULL;
}

void arena_rewind(Arena *a) {
    while (a->head) {
        ArenaChunk *c = a->head;
        a->head = c->next;
        c->next = a->spare;
        a->spare = c;
    }
}

void mlc_out_of_memory(size_t size) {
    char more[64] = "";
    if (size) snprintf(more, sizeof more, " (asking for %zu bytes more)", size);
    fprintf(stderr,
            "mlc: error: out of memory%s: the model's graphs need more memory than this machine gives "
            "(docs/language.md, Limits)\n",
            more);
    fflush(stderr);
    _Exit(1);
}

void mlc_die_at(const char *file, int line, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "mlc: internal error at %s:%d: ", file, line);
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n(this is a bug in mlc, not in your model)\n");
    va_end(ap);
    abort();
}
