/* names.c - see names.h. */
#include "names.h"

#include <stdint.h>
#include <string.h>

static uint32_t hash(const char *s) {
    uint32_t h = 2166136261u;
    for (; *s; s++) h = (h ^ (uint8_t)*s) * 16777619u;
    return h;
}

NameTable names_new(Arena *a) { return (NameTable){.arena = a}; }

/* The slot of key, or the empty slot where it would go. */
static int slot(const NameTable *t, const char *key) {
    uint32_t mask = (uint32_t)t->cap - 1, i = hash(key) & mask;
    while (t->keys[i] && strcmp(t->keys[i], key)) i = (i + 1) & mask;
    return (int)i;
}

int names_get(const NameTable *t, const char *key) {
    if (!t->cap) return -1;
    int i = slot(t, key);
    return t->keys[i] ? t->vals[i] : -1;
}

void names_put(NameTable *t, const char *key, int val) {
    if (2 * (t->n + 1) > t->cap) {                                           /* at most half full: probes stay short */
        NameTable big = {.arena = t->arena, .cap = t->cap ? 2 * t->cap : 8}; /* small: a scope per block call */
        big.keys = ARENA_ARRAY(t->arena, const char *, big.cap);
        big.vals = ARENA_ARRAY(t->arena, int, big.cap);
        for (int i = 0; i < t->cap; i++)
            if (t->keys[i]) names_put(&big, t->keys[i], t->vals[i]);
        *t = big;
    }
    int i = slot(t, key);
    if (!t->keys[i]) t->keys[i] = key, t->n++;
    t->vals[i] = val;
}
