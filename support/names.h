/* names.h - a string-keyed table of ints in an arena (open addressing, FNV-1a).
 *
 * For lookups by name that would otherwise scan a whole graph per query (a parameter
 * defined twice, a persistent tensor's slab slot): with thousands of layers those scans
 * made compiles quadratic. Keys are not copied: they must outlive the table (arena
 * strings do). */
#ifndef MLC_NAMES_H
#define MLC_NAMES_H

#include "arena.h"

typedef struct NameTable {
    Arena *arena;
    const char **keys;
    int *vals;
    int cap, n; /* cap: a power of two, or 0 before the first insert */
} NameTable;

/* An empty table allocating from a. */
NameTable names_new(Arena *a);
/* The value stored under key, or -1. */
int names_get(const NameTable *t, const char *key);
/* Stores val under key, replacing any value there. */
void names_put(NameTable *t, const char *key, int val);

#endif
